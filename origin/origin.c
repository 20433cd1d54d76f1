#include "origin/origin.h"

#include <stddef.h>

static const weir_conf_key origin_keys[] = {
    { "origin.cors_origin", WEIR_CONF_STRING, offsetof(weir_origin_settings, cors_origin),
      "*", 0, 0, NULL,
      "Access-Control-Allow-Origin sent with playlists and segments (browser players)", 0 },
};

const weir_conf_table weir_origin_conf_table = {
    .module = "origin",
    .keys = origin_keys,
    .nkeys = sizeof origin_keys / sizeof origin_keys[0],
};
