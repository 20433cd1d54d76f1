/*
 * control/assets/retention.h — private to control/: disk retention for
 * recordings (packager.record_max_age, packager.record_max_bytes).
 *
 * Recordings (assets with "source": "live") pile up in <vod_dir> until
 * something removes them.  A sweeper does, every
 * packager.record_sweep_interval:
 *
 *   loop: timer fires -> in_use() (the packager's answer: recordings being
 *         written or read by a live DVR window) -> submit a sweep
 *   work: scan <vod_dir>: every recording's bytes (its files, ts/ included)
 *         and end time (asset.json's mtime: its last write is "ready")
 *         -> weir_retention_select -> weir_assets_remove each chosen one
 *         (the path DELETE /api/v1/assets/{id} takes: files, asset.deleted)
 *         -> one log line each, weir_recordings_expired_total{reason},
 *         weir_recordings_bytes (set once measured, lowered per deletion)
 *   loop: sweep done -> timer armed again (one sweep at a time)
 *
 * Invariants:
 *   1. Uploaded assets are never chosen and never counted.
 *   2. A recording in state "recording" (still being written), or named by
 *      in_use, is never chosen; weir_assets_delete refuses the former again
 *      at the moment of deletion, so a race with the packager loses safely.
 *   3. Oldest first: first every one older than max_age ("age"), then, while
 *      the total of all recordings (in-use ones included) is above
 *      max_bytes, the oldest of the rest ("bytes").
 *
 * The sweep measures even with both limits 0, so weir_recordings_bytes is
 * there for alerts on a server that keeps everything.
 */
#ifndef WEIR_CONTROL_RETENTION_H
#define WEIR_CONTROL_RETENTION_H

#include "control/control.h"

struct weir_events;

typedef enum weir_retention_reason {
    WEIR_RETENTION_KEEP = 0,
    WEIR_RETENTION_AGE,
    WEIR_RETENTION_BYTES,
} weir_retention_reason;

/* One recording, as the scan found it. */
typedef struct weir_retention_item {
    char id[129];
    int64_t ended_unix_ms;          /* asset.json's mtime */
    int64_t bytes;
    int busy;                       /* being written or in use: never chosen */
    weir_retention_reason reason;   /* OUT of weir_retention_select */
} weir_retention_item;

/* Pure: sorts items oldest first (ties by id, so the order is stable) and
 * sets each one's reason.  max_age (ms) and max_bytes: 0 for no limit.
 * Returns how many were chosen; *kept_bytes (OUT, may be NULL): the total
 * of those not chosen. */
size_t weir_retention_select(weir_retention_item *items, size_t n, int64_t now_unix_ms,
                             int64_t max_age, int64_t max_bytes, int64_t *kept_bytes);

/* "age", "bytes" or "keep". */
const char *weir_retention_reason_name(weir_retention_reason r);

typedef struct weir_retention weir_retention;

typedef struct weir_retention_opts {
    weir_loop *loop;
    weir_work *work;
    weir_metrics *metrics;          /* may be NULL */
    struct weir_events *events;     /* asset.deleted; may be NULL */
    const char *vod_dir;            /* copied */
    int64_t max_age;                /* ms; 0: none */
    int64_t max_bytes;              /* 0: none */
    int64_t interval;               /* ms between sweeps (the first: after 1 s at most) */
    /* Loop thread: a new JSON array of asset ids not to delete now (NULL
     * from the function: nothing is deleted this time).  NULL: none. */
    json_t *(*in_use)(void *arg);
    void *in_use_arg;
} weir_retention_opts;

/* Loop thread, at start-up: registers the metrics and arms the timer.
 * 0 or AVERROR. */
int weir_retention_new(const weir_retention_opts *opts, weir_retention **out /* OUT */);
/* Loop thread, before weir_work_free: no more sweeps; one in flight
 * leaves off before its next folder or deletion (so a shutdown never waits
 * for thousands of unlinks), and its completion runs as the loop is freed.
 * NULL is fine. */
void weir_retention_stop(weir_retention *r);
/* After the loop is freed.  NULL is fine. */
void weir_retention_free(weir_retention *r);

/* Blocking: one sweep now, on the calling thread (tests).  in_use as the
 * callback would give it (borrowed; NULL: none). */
void weir_retention_sweep(weir_retention *r, const json_t *in_use);

#endif
