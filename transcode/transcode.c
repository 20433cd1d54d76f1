#include "transcode/transcode.h"

#include <stddef.h>

static const weir_conf_key transcode_keys[] = {
    { "transcode.workers", WEIR_CONF_INT, offsetof(weir_transcode_settings, workers),
      "0", 0, 256, NULL, "transcode worker threads; 0 means one per CPU core", 0 },
};

const weir_conf_table weir_transcode_conf_table = {
    .module = "transcode",
    .keys = transcode_keys,
    .nkeys = sizeof transcode_keys / sizeof transcode_keys[0],
};
