/*
 * transcode/transcode.h — decode once, scale and encode per rung
 * (DESIGN.md §1).
 *
 * A weir_transcoder watches the bus.  Every stream published under a
 * user-facing name S (weir_stream_name_valid) gets a job that publishes the
 * ABR renditions of S as one bus stream "S/abr": one video track per
 * rendition, highest first, then one audio track shared by all, in the ISO
 * form (avcC/hvcC extradata, 4-byte length-prefixed NAL units) and in the
 * source's time bases.  Keyframes of every video track fall on the same
 * pts: the segment boundaries (docs/operations.md, "Transcoding").  The job
 * ends when S ends, and ends S/abr.
 *
 * For now each job runs on a thread of its own and encodes its rungs one
 * after another on it (each encoder is multi-threaded); there is no pool or
 * admission control yet.
 */
#ifndef WEIR_TRANSCODE_H
#define WEIR_TRANSCODE_H

#include <jansson.h>

#include "core/core.h"
#include "core/metrics.h"

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

/* The name of the renditions stream of source `name`: "<name>/abr". */
#define WEIR_TRANSCODE_SUFFIX "/abr"

typedef struct weir_transcoder weir_transcoder;

typedef struct weir_transcoder_opts {
    weir_bus *bus;                              /* borrowed; outlives the transcoder */
    weir_loop *loop;                            /* borrowed, may be NULL (not used yet) */
    const weir_transcode_settings *settings;    /* read during weir_transcoder_new only */
    int64_t segment_duration_ms;                /* packager.segment_duration */
    weir_metrics *metrics;                      /* may be NULL: no metrics */
    int queue_len;                              /* packets queued per source; 0: 1024 */
} weir_transcoder_opts;

/* Starts watching opts->bus; streams published earlier are not picked up
 * (create the transcoder before ingest starts).  *out (OUT) is the caller's:
 * weir_transcoder_free.  Returns 0, AVERROR(EINVAL) for a profile that does
 * not parse (config validation makes that a bug), AVERROR(ENOMEM). */
int weir_transcoder_new(const weir_transcoder_opts *opts, weir_transcoder **out);

/* Every job as a JSON array, the last 16 that ended first, then the live
 * ones: stream, state, ladder decisions, per-rendition counters, speed.  A new
 * reference for the caller, or NULL on ENOMEM.  Any thread. */
json_t *weir_transcoder_jobs_json(weir_transcoder *t);

/* Stops watching, cancels every job (their S/abr streams end), joins their
 * threads and frees everything.  Not from a bus watcher.  NULL is a no-op. */
void weir_transcoder_free(weir_transcoder *t);

#endif
