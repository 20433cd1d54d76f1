#include "packager/packager.h"

#include <stddef.h>

static const weir_conf_key packager_keys[] = {
    { "packager.segment_duration", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, segment_duration), "2s", 500, 30000, NULL,
      "target segment length; segments are cut at the first keyframe after it", 0 },
};

const weir_conf_table weir_packager_conf_table = {
    .module = "packager",
    .keys = packager_keys,
    .nkeys = sizeof packager_keys / sizeof packager_keys[0],
};
