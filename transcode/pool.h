/*
 * transcode/pool.h — private to transcode/: the worker pool's admission
 * control.  The design, the cost unit and its calibration, the ticket state
 * machine and the invariants are at the top of pool.c.
 *
 * Every job holds a ticket for its life.  Once its ladder is decided, a job
 * asks weir_pool_admit for capacity; a live job is then admitted (maybe with
 * fewer renditions) or told to wait, a file job blocks until it is admitted.
 * A file job calls weir_pool_checkpoint between packets, which blocks while
 * a live job has taken its capacity.  weir_pool_leave gives everything back.
 *
 * Threads: every function may be called from any thread; the pool has one
 * mutex and never calls out while holding it.
 */
#ifndef WEIR_TRANSCODE_POOL_H
#define WEIR_TRANSCODE_POOL_H

#include <stdint.h>

#include <jansson.h>

#include "transcode/ladder.h"

/* What one worker encodes in real time, in pixels per second at x264
 * preset veryfast: one core of the machine the calibration ran on (pool.c). */
#define WEIR_POOL_WORKER_RATE 70e6

typedef enum weir_pool_overload {
    WEIR_POOL_DEGRADE = 0,          /* a live job that does not fit loses top renditions */
    WEIR_POOL_QUEUE,                /* a live job that does not fit waits */
} weir_pool_overload;

typedef enum weir_pool_class {
    WEIR_POOL_LIVE = 0,             /* real time; beats file jobs */
    WEIR_POOL_FILE,                 /* full speed; yields to live jobs */
} weir_pool_class;

typedef enum weir_pool_state {
    WEIR_POOL_NEW = 0,              /* has not asked yet */
    WEIR_POOL_WAITING,              /* asked; waits for capacity */
    WEIR_POOL_ADMITTED,             /* holds its reservation */
    WEIR_POOL_PREEMPTED,            /* a file job whose capacity went to live jobs */
    WEIR_POOL_RELEASED,             /* the job ended; nothing reserved */
} weir_pool_state;

typedef struct weir_pool weir_pool;
typedef struct weir_pool_ticket weir_pool_ticket;

/* The cost of carrying out plan on src, in workers: the pixels per second
 * each encoded rendition produces, weighted by its codec and preset, plus
 * decoding and scaling the source once any rendition is encoded, plus the
 * audio encoder.  A plan with only the source rung costs (almost) nothing.
 * rate: pixels per second per worker (WEIR_POOL_WORKER_RATE).  Pure. */
double weir_pool_plan_cost(const weir_ladder_source *src, const weir_ladder_plan *plan,
                           double rate);

/* Drops the top encoded renditions of plan (recorded in plan->dropped with
 * the reason "over capacity") until its cost is at most budget workers or
 * one rendition is left: the source rung, or else the lowest.  Returns how
 * many it dropped.  Pure. */
int weir_pool_fit(const weir_ladder_source *src, weir_ladder_plan *plan, double budget,
                  double rate);

/* capacity: workers (> 0); rate: pixels per second per worker (0: the
 * default).  *out (OUT) is the caller's: weir_pool_free. */
int weir_pool_new(double capacity, double rate, weir_pool_overload overload, weir_pool **out);

/* Every ticket must have left.  NULL is a no-op. */
void weir_pool_free(weir_pool *pool);

/* A new ticket (state NEW, nothing reserved).  *out (OUT) belongs to the
 * caller until weir_pool_leave. */
int weir_pool_join(weir_pool *pool, weir_pool_class cls, weir_pool_ticket **out);

/* The job ended: gives the ticket's reservation back for good and admits
 * whoever may now run.  The ticket stays readable until weir_pool_leave. */
void weir_pool_release(weir_pool_ticket *t);

/* Releases (if not done yet) and frees the ticket.  NULL is a no-op. */
void weir_pool_leave(weir_pool_ticket *t);

/* Asks for the capacity plan needs; plan may lose renditions (weir_pool_fit).
 *   live, degrade: always admitted, degraded to what is free.  Returns 1.
 *   live, queue:   admitted (1) when it fits, or waiting (0): then call
 *                  weir_pool_poll until it says 1, and admit again.
 *   file:          blocks until admitted (1), or AVERROR_EXIT once
 *                  weir_pool_cancel was called.  Never degraded.
 *   a ticket already admitted: plan is fitted to its reservation; 1.
 * The ticket's owner's thread. */
int weir_pool_admit(weir_pool_ticket *t, const weir_ladder_source *src,
                    weir_ladder_plan *plan);

/* 1 once a waiting live ticket has been admitted, else 0.  Never blocks. */
int weir_pool_poll(weir_pool_ticket *t);

/* A file job between packets: returns 0 at once unless the ticket was
 * preempted, then blocks until it is admitted again (0) or cancelled
 * (AVERROR_EXIT). */
int weir_pool_checkpoint(weir_pool_ticket *t);

/* Makes a blocked or future admit / checkpoint return AVERROR_EXIT.  Any
 * thread. */
void weir_pool_cancel(weir_pool_ticket *t);

weir_pool_state weir_pool_ticket_state(weir_pool_ticket *t);

/* {"class", "admission", "cost", "reserved", "preemptions"}: a new
 * reference, NULL on ENOMEM. */
json_t *weir_pool_ticket_json(weir_pool_ticket *t);

typedef struct weir_pool_stats {
    double capacity, used;          /* workers */
    double rate;                    /* pixels per second per worker */
    weir_pool_overload overload;
    int running, waiting_live, waiting_file;   /* tickets ADMITTED; WAITING or PREEMPTED */
    uint64_t degraded, preempted, queued;      /* since start: admissions that lost
                                                * renditions, file preemptions, waits */
} weir_pool_stats;

void weir_pool_stats_get(weir_pool *pool, weir_pool_stats *out);
json_t *weir_pool_json(weir_pool *pool);
const char *weir_pool_state_name(weir_pool_state s);
const char *weir_pool_overload_name(weir_pool_overload o);

#endif
