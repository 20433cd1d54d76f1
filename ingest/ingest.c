#include "ingest/ingest.h"

#include <stddef.h>

#define K(field) offsetof(weir_ingest_settings, field)

static const char *const auth_modes[] = { "keys", "open", NULL };

static const weir_conf_key ingest_keys[] = {
    { "rtmp.port", WEIR_CONF_INT, K(rtmp_port), "1935", 1, 65535, NULL,
      "TCP port for RTMP publishers (OBS, ffmpeg, GStreamer)", 0 },
    { "srt.port", WEIR_CONF_INT, K(srt_port), "9000", 1, 65535, NULL,
      "UDP port for SRT publishers", 0 },
    { "ingest.auth", WEIR_CONF_ENUM, K(auth), "keys", 0, 0, auth_modes,
      "keys: publishing needs a stream key; open: any name may publish (development only)", 0 },
};

const weir_conf_table weir_ingest_conf_table = {
    .module = "ingest",
    .keys = ingest_keys,
    .nkeys = sizeof ingest_keys / sizeof ingest_keys[0],
};
