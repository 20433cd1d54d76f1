/*
 * transcode/pool.c — admission control for transcode jobs (pool.h).
 *
 * What a worker is.  Jobs do not share a fixed set of threads: a live job
 * runs for as long as its stream does, so each job keeps its own threads
 * (pipeline.c).  What the pool shares out is CPU, counted in workers: one
 * worker is what one core encodes in real time.  transcode.workers (0: one
 * per core) is the capacity.  A job's cost is what its plan takes in real
 * time, in the same unit:
 *
 *   cost = ( sum over encoded renditions of  w * h * fps * preset * codec
 *            + [any encoded] source w * h * fps * (DECODE + SCALE * n_scaled) )
 *          / rate  +  [audio encoded] AUDIO
 *
 * rate (transcode.worker_rate, default WEIR_POOL_WORKER_RATE) is the pixels
 * per second one core encodes with libx264 preset veryfast at ladder
 * bitrates.  Calibration (docs/operations.md, "Transcoding", has the
 * commands): ffmpeg 5.1 with -threads 1 encoding 10 s of testsrc2 at 30 fps,
 * CPU seconds (user + sys, best of two) less those of generating the
 * frames alone, on this project's 2-core AMD EPYC VM:
 *
 *   720p @ 2800k  3.34 s  12.1 ns/px      480p @ 1400k  1.78 s  14.5 ns/px
 *   360p @  800k  1.15 s  16.6 ns/px      240p @  400k  0.55 s  17.9 ns/px
 *
 * 13.7 ns per pixel over the four, so about 70 Mpx/s per core (a 720p30
 * rendition is 0.39 workers; small ones are underestimated by up to 20%,
 * big ones overestimated by 15%).  Relative to veryfast, at 720p:
 * ultrafast 0.25, superfast 0.6, faster 1.6, fast 2.2, medium 2.4 (slower
 * ones extrapolated).  Decoding the 720p H.264 source took 2.5 ns/px (0.18
 * of an encoded pixel) and a bicubic downscale 0.6 ns per source pixel
 * (0.04).  HEVC and AV1 factors are guesses, not measurements.
 *
 * Ticket states (weir_pool_state):
 *
 *   NEW --admit: fits (live degrade: always, after fitting)--> ADMITTED
 *   NEW --admit: does not fit (live queue, file)--> WAITING
 *   WAITING --dispatch: its turn and it fits--> ADMITTED
 *   ADMITTED (file) --a live job needs the capacity: preempt--> PREEMPTED
 *   PREEMPTED --dispatch--> ADMITTED
 *   any --weir_pool_release--> RELEASED (its reservation returns; dispatch)
 *   any --weir_pool_leave--> (released, then freed)
 *
 *   transition               function
 *   NEW -> ADMITTED|WAITING  weir_pool_admit
 *   WAITING -> ADMITTED      dispatch_locked (from leave, admit)
 *   ADMITTED -> PREEMPTED    preempt_locked (from admit of a live ticket)
 *   PREEMPTED -> ADMITTED    dispatch_locked
 *
 * Invariants (pool->lock):
 *   1. used == the sum of reserved over ADMITTED tickets; every other
 *      ticket reserves nothing.
 *   2. Live before file: no file ticket is admitted while a live ticket
 *      waits, and a live ticket that needs capacity takes it from admitted
 *      file tickets, newest first.
 *   3. First come, first served within a class: dispatch admits waiting
 *      tickets in the order they joined (a preempted file job keeps its
 *      place), and stops at the first that does not fit.
 *   4. A ticket fits when its reservation is at most what is free, or when
 *      nothing at all is admitted: a job bigger than the whole pool still
 *      runs, alone.  A file job reserves min(cost, capacity).
 */
#include "transcode/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/rational.h>

#define DECODE_WEIGHT 0.18              /* per source pixel, relative to veryfast encoding */
#define SCALE_WEIGHT  0.04              /* per source pixel, per rendition that is scaled */
#define AUDIO_WORKERS 0.01              /* one AAC encoder, 48 kHz stereo */
#define DEFAULT_FPS   30.0              /* when neither the source nor the rung knows */

struct weir_pool_ticket {
    weir_pool *pool;
    weir_pool_class cls;
    weir_pool_state state;
    double cost;                        /* workers, of the plan as admitted or asked */
    double reserved;                    /* > 0 only while ADMITTED */
    int cancelled;
    unsigned preemptions;
    weir_pool_ticket *prev, *next;      /* the pool's list, in the order they joined */
};

struct weir_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;                /* broadcast on every admission and cancel */
    double capacity, rate, used;
    weir_pool_overload overload;
    weir_pool_ticket *head, *tail;
    uint64_t degraded, preempted, queued;
};

const char *weir_pool_state_name(weir_pool_state s)
{
    static const char *const names[] = { "new", "waiting", "admitted", "preempted",
                                         "released" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

const char *weir_pool_overload_name(weir_pool_overload o)
{
    return o == WEIR_POOL_QUEUE ? "queue" : "degrade";
}

/* ---- cost ---------------------------------------------------------------------- */

typedef struct preset_weight {
    const char *preset;
    double weight;
} preset_weight;

/* x264 (and x265, before its codec factor), relative to veryfast. */
static const preset_weight preset_weights[] = {
    { "ultrafast", 0.25 }, { "superfast", 0.6 }, { "veryfast", 1.0 }, { "faster", 1.6 },
    { "fast", 2.2 }, { "medium", 2.4 }, { "slow", 3.5 }, { "slower", 6.0 },
    { "veryslow", 12.0 }, { "placebo", 30.0 },
};

static double rendition_weight(const weir_rendition *r)
{
    double w = 1.0;
    for (size_t i = 0; i < sizeof preset_weights / sizeof preset_weights[0]; i++)
        if (strcmp(preset_weights[i].preset, r->preset) == 0)
            w = preset_weights[i].weight;
    switch (r->codec) {
    case AV_CODEC_ID_HEVC: return 4.0 * w;
    case AV_CODEC_ID_AV1:  return 3.0;      /* SVT-AV1 presets: not weighed */
    default:               return w;
    }
}

static double fps_or(AVRational q, double fallback)
{
    return q.num > 0 && q.den > 0 ? av_q2d(q) : fallback;
}

double weir_pool_plan_cost(const weir_ladder_source *src, const weir_ladder_plan *plan,
                           double rate)
{
    double src_fps = fps_or(src->fps, DEFAULT_FPS);
    double src_px = (double)src->width * src->height * src_fps;
    double px = 0, per_src = 0;
    int encoded = 0;

    for (int i = 0; i < plan->nvideo; i++) {
        const weir_rendition *r = &plan->video[i];
        if (r->source)
            continue;
        encoded = 1;
        px += (double)r->width * r->height * fps_or(r->fps, src_fps) * rendition_weight(r);
        if (r->width != src->width || r->height != src->height)
            per_src += SCALE_WEIGHT;
    }
    if (encoded)
        px += src_px * (DECODE_WEIGHT + per_src);
    return px / (rate > 0 ? rate : WEIR_POOL_WORKER_RATE) +
           (plan->audio_mode == WEIR_LADDER_AUDIO_ENCODE ? AUDIO_WORKERS : 0.0);
}

int weir_pool_fit(const weir_ladder_source *src, weir_ladder_plan *plan, double budget,
                  double rate)
{
    int dropped = 0;
    while (plan->nvideo > 1 && weir_pool_plan_cost(src, plan, rate) > budget) {
        int top = plan->video[0].source ? 1 : 0;    /* the source rung stays */
        if (plan->ndropped < WEIR_LADDER_MAX_RUNGS) {
            memcpy(plan->dropped[plan->ndropped].name, plan->video[top].name,
                   sizeof plan->dropped[0].name);
            plan->dropped[plan->ndropped++].reason = "over capacity";
        }
        memmove(&plan->video[top], &plan->video[top + 1],
                (size_t)(plan->nvideo - top - 1) * sizeof plan->video[0]);
        plan->nvideo--;
        dropped++;
    }
    return dropped;
}

/* ---- the pool ---------------------------------------------------------------------- */

int weir_pool_new(double capacity, double rate, weir_pool_overload overload, weir_pool **out)
{
    if (!(capacity > 0))
        return AVERROR(EINVAL);
    weir_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return AVERROR(ENOMEM);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->capacity = capacity;
    pool->rate = rate > 0 ? rate : WEIR_POOL_WORKER_RATE;
    pool->overload = overload;
    *out = pool;
    return 0;
}

void weir_pool_free(weir_pool *pool)
{
    if (!pool)
        return;
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

int weir_pool_join(weir_pool *pool, weir_pool_class cls, weir_pool_ticket **out)
{
    weir_pool_ticket *t = calloc(1, sizeof *t);
    if (!t)
        return AVERROR(ENOMEM);
    t->pool = pool;
    t->cls = cls;
    pthread_mutex_lock(&pool->lock);
    t->prev = pool->tail;
    if (pool->tail)
        pool->tail->next = t;
    else
        pool->head = t;
    pool->tail = t;
    pthread_mutex_unlock(&pool->lock);
    *out = t;
    return 0;
}

/* What the ticket reserves once admitted (invariant 4). */
static double need_of(const weir_pool *pool, const weir_pool_ticket *t)
{
    return t->cls == WEIR_POOL_FILE && t->cost > pool->capacity ? pool->capacity : t->cost;
}

/* Invariant 4.  lock held. */
static int fits_locked(const weir_pool *pool, double need)
{
    return need <= pool->capacity - pool->used + 1e-9 || pool->used <= 1e-9;
}

static void reserve_locked(weir_pool *pool, weir_pool_ticket *t)
{
    t->reserved = need_of(pool, t);
    pool->used += t->reserved;
    t->state = WEIR_POOL_ADMITTED;
}

static void unreserve_locked(weir_pool *pool, weir_pool_ticket *t)
{
    pool->used -= t->reserved;
    if (pool->used < 1e-9)
        pool->used = 0;                 /* no drift below zero from rounding */
    t->reserved = 0;
}

static int waiting(const weir_pool_ticket *t)
{
    return t->state == WEIR_POOL_WAITING || t->state == WEIR_POOL_PREEMPTED;
}

static int live_waiting_locked(const weir_pool *pool)
{
    for (const weir_pool_ticket *t = pool->head; t; t = t->next)
        if (t->cls == WEIR_POOL_LIVE && waiting(t))
            return 1;
    return 0;
}

/* Invariants 2 and 3: admits waiting live tickets in order, then, when none
 * is left waiting, waiting file tickets in order.  lock held. */
static void dispatch_locked(weir_pool *pool)
{
    int admitted = 0;
    for (int cls = WEIR_POOL_LIVE; cls <= WEIR_POOL_FILE; cls++) {
        if (cls == WEIR_POOL_FILE && live_waiting_locked(pool))
            break;
        for (weir_pool_ticket *t = pool->head; t; t = t->next) {
            if ((int)t->cls != cls || !waiting(t) || t->cancelled)
                continue;
            if (!fits_locked(pool, need_of(pool, t)))
                break;
            reserve_locked(pool, t);
            admitted = 1;
        }
    }
    if (admitted)
        pthread_cond_broadcast(&pool->cond);
}

/* Takes capacity from admitted file tickets, newest first, until need fits
 * or none is left (invariant 2).  lock held. */
static void preempt_locked(weir_pool *pool, double need)
{
    for (weir_pool_ticket *t = pool->tail; t && !fits_locked(pool, need); t = t->prev) {
        if (t->cls != WEIR_POOL_FILE || t->state != WEIR_POOL_ADMITTED)
            continue;
        unreserve_locked(pool, t);
        t->state = WEIR_POOL_PREEMPTED;
        t->preemptions++;
        pool->preempted++;
    }
}

void weir_pool_release(weir_pool_ticket *t)
{
    weir_pool *pool = t->pool;
    pthread_mutex_lock(&pool->lock);
    unreserve_locked(pool, t);
    t->state = WEIR_POOL_RELEASED;
    dispatch_locked(pool);
    pthread_mutex_unlock(&pool->lock);
}

void weir_pool_leave(weir_pool_ticket *t)
{
    if (!t)
        return;
    weir_pool *pool = t->pool;
    pthread_mutex_lock(&pool->lock);
    unreserve_locked(pool, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        pool->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        pool->tail = t->prev;
    dispatch_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    free(t);
}

/* An admitted ticket asks again (a live job that waited re-probes): the plan
 * is fitted to the reservation, which then follows the plan's cost. */
static int readmit_locked(weir_pool *pool, weir_pool_ticket *t, const weir_ladder_source *src,
                          weir_ladder_plan *plan)
{
    if (t->cls == WEIR_POOL_LIVE)
        weir_pool_fit(src, plan, t->reserved, pool->rate);
    t->cost = weir_pool_plan_cost(src, plan, pool->rate);
    unreserve_locked(pool, t);
    reserve_locked(pool, t);
    dispatch_locked(pool);
    return 1;
}

static int admit_live_locked(weir_pool *pool, weir_pool_ticket *t,
                             const weir_ladder_source *src, weir_ladder_plan *plan)
{
    double full = weir_pool_plan_cost(src, plan, pool->rate);
    if (pool->overload == WEIR_POOL_DEGRADE) {
        preempt_locked(pool, full);
        double free_now = pool->capacity - pool->used;
        if (full > free_now + 1e-9 && weir_pool_fit(src, plan, free_now, pool->rate) > 0)
            pool->degraded++;
        t->cost = weir_pool_plan_cost(src, plan, pool->rate);
        reserve_locked(pool, t);
        return 1;
    }
    if (full > pool->capacity && weir_pool_fit(src, plan, pool->capacity, pool->rate) > 0)
        pool->degraded++;
    t->cost = weir_pool_plan_cost(src, plan, pool->rate);
    int ahead = live_waiting_locked(pool);
    if (!ahead)
        preempt_locked(pool, t->cost);
    if (!ahead && fits_locked(pool, t->cost)) {
        reserve_locked(pool, t);
        return 1;
    }
    t->state = WEIR_POOL_WAITING;
    preempt_locked(pool, pool->capacity + 1);  /* files wait while a live job does */
    dispatch_locked(pool);                      /* what they freed may be its turn */
    if (t->state == WEIR_POOL_ADMITTED)
        return 1;
    pool->queued++;
    return 0;
}

static int admit_file_locked(weir_pool *pool, weir_pool_ticket *t,
                             const weir_ladder_source *src, const weir_ladder_plan *plan)
{
    t->cost = weir_pool_plan_cost(src, plan, pool->rate);
    t->state = WEIR_POOL_WAITING;
    dispatch_locked(pool);
    if (t->state == WEIR_POOL_WAITING)
        pool->queued++;
    while (t->state != WEIR_POOL_ADMITTED && !t->cancelled)
        pthread_cond_wait(&pool->cond, &pool->lock);
    return t->cancelled ? AVERROR_EXIT : 1;
}

int weir_pool_admit(weir_pool_ticket *t, const weir_ladder_source *src, weir_ladder_plan *plan)
{
    weir_pool *pool = t->pool;
    int ret;
    pthread_mutex_lock(&pool->lock);
    if (t->cancelled || t->state == WEIR_POOL_RELEASED)
        ret = AVERROR_EXIT;
    else if (t->state == WEIR_POOL_ADMITTED)
        ret = readmit_locked(pool, t, src, plan);
    else if (t->cls == WEIR_POOL_LIVE)
        ret = admit_live_locked(pool, t, src, plan);
    else
        ret = admit_file_locked(pool, t, src, plan);
    pthread_mutex_unlock(&pool->lock);
    return ret;
}

int weir_pool_poll(weir_pool_ticket *t)
{
    pthread_mutex_lock(&t->pool->lock);
    int admitted = t->state == WEIR_POOL_ADMITTED;
    pthread_mutex_unlock(&t->pool->lock);
    return admitted;
}

int weir_pool_checkpoint(weir_pool_ticket *t)
{
    weir_pool *pool = t->pool;
    pthread_mutex_lock(&pool->lock);
    while (t->state == WEIR_POOL_PREEMPTED && !t->cancelled)
        pthread_cond_wait(&pool->cond, &pool->lock);
    int ret = t->cancelled ? AVERROR_EXIT : 0;
    pthread_mutex_unlock(&pool->lock);
    return ret;
}

void weir_pool_cancel(weir_pool_ticket *t)
{
    pthread_mutex_lock(&t->pool->lock);
    t->cancelled = 1;
    pthread_cond_broadcast(&t->pool->cond);
    pthread_mutex_unlock(&t->pool->lock);
}

weir_pool_state weir_pool_ticket_state(weir_pool_ticket *t)
{
    pthread_mutex_lock(&t->pool->lock);
    weir_pool_state s = t->state;
    pthread_mutex_unlock(&t->pool->lock);
    return s;
}

json_t *weir_pool_ticket_json(weir_pool_ticket *t)
{
    pthread_mutex_lock(&t->pool->lock);
    json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:i}",
                          "class", t->cls == WEIR_POOL_LIVE ? "live" : "file",
                          "admission", weir_pool_state_name(t->state), "cost", t->cost,
                          "reserved", t->reserved, "preemptions", (int)t->preemptions);
    pthread_mutex_unlock(&t->pool->lock);
    return o;
}

void weir_pool_stats_get(weir_pool *pool, weir_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&pool->lock);
    out->capacity = pool->capacity;
    out->used = pool->used;
    out->rate = pool->rate;
    out->overload = pool->overload;
    for (const weir_pool_ticket *t = pool->head; t; t = t->next) {
        if (t->state == WEIR_POOL_ADMITTED)
            out->running++;
        else if (waiting(t) && t->cls == WEIR_POOL_LIVE)
            out->waiting_live++;
        else if (waiting(t))
            out->waiting_file++;
    }
    out->degraded = pool->degraded;
    out->preempted = pool->preempted;
    out->queued = pool->queued;
    pthread_mutex_unlock(&pool->lock);
}

json_t *weir_pool_json(weir_pool *pool)
{
    weir_pool_stats st;
    weir_pool_stats_get(pool, &st);
    return json_pack("{s:f, s:f, s:f, s:s, s:i, s:i, s:i, s:I, s:I, s:I}",
                     "capacity", st.capacity, "used", st.used,
                     "worker_rate_mpx", st.rate / 1e6,
                     "overload", weir_pool_overload_name(st.overload), "running", st.running,
                     "waiting_live", st.waiting_live, "waiting_file", st.waiting_file,
                     "degraded", (json_int_t)st.degraded, "preempted", (json_int_t)st.preempted,
                     "queued", (json_int_t)st.queued);
}
