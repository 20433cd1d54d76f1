/*
 * transcode/pipeline.h — private to transcode/: one transcode job.  It reads
 * a source — a stream S from the bus (live) or a media file through
 * libavformat (file) — decodes its video once, scales and encodes it per
 * rung of the ladder, passes or encodes the audio once, and writes
 * everything — as one bus stream "S/abr", or to a caller's sink — with video
 * tracks highest first, then audio, in the ISO form (avcC + length-prefixed
 * NAL units), with the source's time bases and timestamps.  The design and
 * the state machine are at the top of pipeline.c.
 *
 * Threads: weir_pipeline_run blocks on the calling thread (a worker) until
 * the source ends or weir_pipeline_stop; stop and json may be called from
 * any thread meanwhile.
 */
#ifndef WEIR_TRANSCODE_PIPELINE_H
#define WEIR_TRANSCODE_PIPELINE_H

#include <jansson.h>

#include "core/bus.h"
#include "transcode/ladder.h"
#include "transcode/pool.h"
#include "transcode/transcode.h"

#define WEIR_PIPELINE_SUFFIX "/abr"

typedef struct weir_pipeline weir_pipeline;

typedef struct weir_pipeline_opts {
    /* The source: one of */
    weir_stream *source;                /* live: borrowed; the job takes its own reference */
    const char *input;                  /* file: a path (copied), opened by weir_pipeline_run */
    const char *name;                   /* file: the job's name in logs (copied) */
    /* The output: one of */
    weir_bus *bus;                      /* S/abr is published here; borrowed, outlives the job */
    const weir_transcode_sink *sink;    /* copied; its done is not called (the caller's) */

    const weir_ladder_profile *profile; /* copied */
    const char *profile_name;           /* its name, for the API; may be NULL */
    int64_t segment_ms;                 /* packager.segment_duration */
    int queue_len;                      /* the source subscription's queue; 0: 1024 */
    weir_pool_ticket *ticket;           /* borrowed, outlives the job; NULL: always admitted */
} weir_pipeline_opts;

typedef enum weir_pipeline_state {
    WEIR_PIPELINE_WAITING = 0,          /* subscribed (or file not open yet), no packet yet */
    WEIR_PIPELINE_PROBING,              /* decoding until the first video frame */
    WEIR_PIPELINE_QUEUED,               /* waits for the pool; a live source is discarded */
    WEIR_PIPELINE_RUNNING,              /* S/abr published (or the sink has its tracks) */
    WEIR_PIPELINE_DONE,                 /* the source ended; S/abr ended */
    WEIR_PIPELINE_FAILED,
    WEIR_PIPELINE_CANCELLED,
} weir_pipeline_state;
#define WEIR_PIPELINE_NSTATES (WEIR_PIPELINE_CANCELLED + 1)

/* Live: subscribes to opts->source at once (call it from the bus watcher's
 * PUBLISHED event and the job misses no packet).  File: only copies the
 * options.  *out (OUT) is owned by the caller: weir_pipeline_free.  0 or a
 * negative AVERROR. */
int weir_pipeline_new(const weir_pipeline_opts *opts, weir_pipeline **out);

/* Replaces the profile (copied) before weir_pipeline_run. */
void weir_pipeline_set_profile(weir_pipeline *p, const weir_ladder_profile *profile,
                               const char *name);

/* Runs the job to its end: returns when the source ended (state DONE), on a
 * fatal error (FAILED) or after weir_pipeline_stop (CANCELLED).  Returns 0
 * or the negative AVERROR that failed it.  Call once. */
int weir_pipeline_run(weir_pipeline *p);

/* Asks run to return soon.  Any thread. */
void weir_pipeline_stop(weir_pipeline *p);

/* The job's state; QUEUED also while a file job waits for or was preempted
 * by the pool. */
weir_pipeline_state weir_pipeline_get_state(weir_pipeline *p);
const char *weir_pipeline_state_name(weir_pipeline_state s);

/* The job as JSON (state, the ladder decisions, per-rendition counters,
 * speed): a new reference for the caller, or NULL on ENOMEM.  Any thread. */
json_t *weir_pipeline_json(weir_pipeline *p);

/* Frees the job: it must not be running (run returned, or never called). */
void weir_pipeline_free(weir_pipeline *p);

#endif
