/*
 * transcode/transcode.c — the module's settings.  Each profile is one string
 * in the grammar of ladder.h; the table's check hook parses it whenever a
 * value is loaded, so `weir config check` names a bad token with its file
 * and line, and a running weir only ever holds ladders that parse.
 */
#include "transcode/transcode.h"
#include "transcode/ladder.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define K(field) offsetof(weir_transcode_settings, field)
#define LADDER_TEXT_MAX 500         /* `weir config dump` prints values up to 511 bytes */

const char *const weir_transcode_profile_names[] = { "default", "low", "high", NULL };
const char *const weir_transcode_overload_names[] = { "degrade", "queue", NULL };

static const weir_conf_key transcode_keys[] = {
    { "transcode.enabled", WEIR_CONF_BOOL, K(enabled), "false", 0, 0, NULL,
      "transcode every published stream into an ABR ladder (costs CPU: see docs/operations.md)",
      0 },
    { "transcode.workers", WEIR_CONF_INT, K(workers), "0", 0, 256, NULL,
      "transcode capacity in workers (one worker: what one core encodes in real time); "
      "0 means one per CPU core", 0 },
    { "transcode.overload", WEIR_CONF_ENUM, K(overload), "degrade", 0, 0,
      weir_transcode_overload_names,
      "a live stream that does not fit the workers: degrade (drop top renditions) or queue "
      "(wait, untranscoded and unplayed, for capacity)", 0 },
    { "transcode.worker_rate", WEIR_CONF_DOUBLE, K(worker_rate), "70", 0.001, 100000, NULL,
      "megapixels per second one worker encodes in real time with x264 veryfast "
      "(calibrate: docs/operations.md)", 0 },
    { "transcode.profile", WEIR_CONF_ENUM, K(profile), "default", 0, 0,
      weir_transcode_profile_names,
      "the profile streams get: default (transcode.ladder), low or high", 0 },
    { "transcode.ladder", WEIR_CONF_STRING, K(ladder),
      "source; 720p:1280x720@2800k/30; 480p:854x480@1400k/30; 360p:640x360@800k/30; "
      "audio:aac@128k/48000/2", 0, 0, NULL,
      "profile default: rungs separated by ';' (grammar in docs/operations.md)", 0 },
    { "transcode.ladder_low", WEIR_CONF_STRING, K(ladder_low),
      "480p:854x480@1200k/30; 360p:640x360@700k/30; 240p:426x240@350k/30; "
      "audio:aac@96k/48000/2", 0, 0, NULL, "profile low", 0 },
    { "transcode.ladder_high", WEIR_CONF_STRING, K(ladder_high),
      "1080p:1920x1080@5000k/60; 720p:1280x720@3000k/60; 480p:854x480@1400k/30; "
      "360p:640x360@800k/30; audio:aac@128k/48000/2", 0, 0, NULL, "profile high", 0 },
};

/* Every transcode.ladder* key must parse as a ladder. */
static int check_key(const weir_conf_key *key, const char *text, char *why, size_t whycap)
{
    weir_ladder_profile profile;
    if (strncmp(key->name, "transcode.ladder", 16) != 0)
        return 0;
    if (strlen(text) > LADDER_TEXT_MAX) {
        snprintf(why, whycap, "longer than %d characters", LADDER_TEXT_MAX);
        return -1;
    }
    return weir_ladder_parse(text, &profile, why, whycap) < 0 ? -1 : 0;
}

const weir_conf_table weir_transcode_conf_table = {
    .module = "transcode",
    .keys = transcode_keys,
    .nkeys = sizeof transcode_keys / sizeof transcode_keys[0],
    .check = check_key,
};

const char *weir_transcode_profile_ladder(const weir_transcode_settings *s, const char *name)
{
    const char *const ladders[] = { s->ladder, s->ladder_low, s->ladder_high };
    for (int i = 0; weir_transcode_profile_names[i]; i++)
        if (strcmp(weir_transcode_profile_names[i], name) == 0)
            return ladders[i];
    return NULL;
}
