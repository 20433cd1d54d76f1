/*
 * transcode/transcode.h — decode once, scale and encode per rung
 * (DESIGN.md §1).  For now: the settings of the worker pool.
 */
#ifndef WEIR_TRANSCODE_H
#define WEIR_TRANSCODE_H

#include "core/core.h"

typedef struct weir_transcode_settings {
    int64_t workers;                /* 0: one per CPU core */
} weir_transcode_settings;

extern const weir_conf_table weir_transcode_conf_table;

#endif
