/*
 * packager/packager.h — CMAF segments, HLS and DASH (DESIGN.md §1).
 * For now: the packager settings.
 */
#ifndef WEIR_PACKAGER_H
#define WEIR_PACKAGER_H

#include "core/core.h"

typedef struct weir_packager_settings {
    int64_t segment_duration;       /* ms; segments are cut at the first keyframe after it */
} weir_packager_settings;

extern const weir_conf_table weir_packager_conf_table;

#endif
