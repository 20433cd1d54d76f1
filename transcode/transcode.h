/*
 * transcode/transcode.h — decode once, scale and encode per rung
 * (DESIGN.md §1).  The settings of the module.
 */
#ifndef WEIR_TRANSCODE_H
#define WEIR_TRANSCODE_H

#include "core/core.h"

typedef struct weir_transcode_settings {
    int enabled;                    /* transcode.enabled */
    int64_t workers;                /* 0: one per CPU core */
    int profile;                    /* index into weir_transcode_profile_names */
    char *ladder;                   /* profile "default" (owned by the weir_conf) */
    char *ladder_low;               /* profile "low" */
    char *ladder_high;              /* profile "high" */
} weir_transcode_settings;

extern const weir_conf_table weir_transcode_conf_table;

/* "default", "low", "high", NULL. */
extern const char *const weir_transcode_profile_names[];

/* The ladder text of the profile called name (borrowed from s), or NULL for
 * an unknown name. */
const char *weir_transcode_profile_ladder(const weir_transcode_settings *s, const char *name);

#endif
