/*
 * control/uploads/settings.c — the uploads.* configuration keys.
 */
#include "control/control.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define K(field) offsetof(weir_uploads_settings, field)
#define DAY_MS 86400000.0
#define TIB (1024.0 * 1024 * 1024 * 1024)

static const weir_conf_key uploads_keys[] = {
    { "uploads.max_size", WEIR_CONF_SIZE, K(max_size), "10GiB", 1, 64 * TIB, NULL,
      "largest file one upload may carry; a larger Upload-Length gets 413", 0 },
    { "uploads.min_free", WEIR_CONF_SIZE, K(min_free), "1GiB", 0, 64 * TIB, NULL,
      "free space data_dir keeps: an upload or a chunk that would leave less gets 507", 0 },
    { "uploads.expiry", WEIR_CONF_DURATION, K(expiry), "24h", 1000, 365 * DAY_MS, NULL,
      "an unfinished upload that receives nothing for this long is deleted (Upload-Expires)",
      0 },
    { "uploads.url_ttl", WEIR_CONF_DURATION, K(url_ttl), "1h", 1000, 365 * DAY_MS, NULL,
      "a single-use upload URL (POST /api/v1/uploads/urls) must be used within this", 0 },
    { "uploads.workers", WEIR_CONF_INT, K(workers), "1", 0, 64, NULL,
      "uploaded files probed and packaged at once, each on its own thread; 0: none on"
      " this node (they wait, queued, for a node that has some)", 0 },
    { "uploads.job_lease", WEIR_CONF_DURATION, K(job_lease), "60s", 1000, DAY_MS, NULL,
      "a file being processed is claimed for this long and the claim renewed as it goes;"
      " after a crash another worker takes the file over once the claim lapses", 0 },
    { "uploads.transcode", WEIR_CONF_BOOL, K(transcode), "true", 0, 0, NULL,
      "transcode uploaded files into the ABR ladder of uploads.profile (whether or not"
      " transcode.enabled); false: package the file's own tracks as they are (a remux)", 0 },
    { "uploads.profile", WEIR_CONF_STRING, K(profile), "default", 0, 0, NULL,
      "the transcode profile uploads get: default (transcode.ladder), low or high", 0 },
};

/* uploads.profile names a transcode profile, which control/ does not know:
 * here only its form (that of a stream key's profile); `weir serve` checks
 * that the profile exists before it starts. */
static int check_key(const weir_conf_key *key, const char *text, char *why, size_t whycap)
{
    size_t n = strlen(text);
    if (strcmp(key->name, "uploads.profile") != 0)
        return 0;
    if (n < 1 || n > 15 || strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
        snprintf(why, whycap, "a profile name is 1 to 15 of a-z, 0-9, _ and -");
        return -1;
    }
    return 0;
}

const weir_conf_table weir_uploads_conf_table = {
    .module = "uploads",
    .keys = uploads_keys,
    .nkeys = sizeof uploads_keys / sizeof uploads_keys[0],
    .check = check_key,
};
