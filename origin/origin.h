/*
 * origin/origin.h — serves playlists, parts and segments over HTTP
 * (DESIGN.md §1).  For now: the origin settings.
 */
#ifndef WEIR_ORIGIN_H
#define WEIR_ORIGIN_H

#include "core/core.h"

typedef struct weir_origin_settings {
    char *cors_origin;              /* Access-Control-Allow-Origin on media responses */
} weir_origin_settings;

extern const weir_conf_table weir_origin_conf_table;

#endif
