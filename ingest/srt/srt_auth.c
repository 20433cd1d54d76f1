/*
 * ingest/srt/srt_auth.c — the SRT handshake's key table (see srt_auth.h).
 *
 * One entry per key digest:
 *
 *   EMPTY --check: start (inflight < max)--> PENDING --answer (post'd fn)--> ANSWERED
 *     ^                                                                    |
 *     +------- reused for another key (the oldest ANSWERED goes first) ----+
 *   ANSWERED, expired or a store error --check: start again--> PENDING
 *
 *   transition            function
 *   -> PENDING            weir_srt_auth_check (start)
 *   PENDING -> ANSWERED   req_done (on the loop)
 *   ANSWERED -> reused    slot_for (inside start)
 *
 * Invariants (under `mu`):
 *   1. inflight == the number of requests posted and not yet answered ==
 *      the number of PENDING entries.  A PENDING entry is never reused, so
 *      every answer finds its entry.
 *   2. An ANSWERED entry is reused for its own key only when it holds 0 or
 *      AVERROR(EACCES) and is younger than ttl; store errors are never
 *      reused.
 *   3. budget_used is the time callers spent waiting with `budgeted` since
 *      window_start, and window_start is at most a second old.
 */
#include "ingest/srt/srt_auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>

#define ENTRIES             64
#define DEFAULT_TTL_US      5000000
#define DEFAULT_INFLIGHT    8
#define WAIT_SLICE_US       100000      /* how soon a waiter sees *stop */
#define KEY_MAX             512         /* WEIR_SRT_STREAMID_MAX: a key fits in a stream id */

enum { E_EMPTY, E_PENDING, E_ANSWERED };

typedef struct entry {
    uint8_t digest[32];
    int state;
    int result;                     /* ANSWERED: 0, AVERROR(EACCES) or a store error */
    char stream[WEIR_BUS_NAME_MAX + 1];
    char passphrase[WEIR_SRT_PASSPHRASE_MAX + 1];   /* the key's own; a secret */
    int64_t at_us;                  /* started or answered, on opts.clock */
} entry;

struct weir_srt_auth {
    atomic_int refs;
    atomic_int closed;
    weir_srt_auth_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* an answer arrived */
    entry e[ENTRIES];
    int inflight;
    int64_t window_start, budget_used;
};

typedef struct req {
    weir_srt_auth *a;               /* holds a reference */
    uint8_t digest[32];
    char key[KEY_MAX + 1];          /* a secret: wiped when done */
} req;

static void auth_unref(weir_srt_auth *a)
{
    if (atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    memset(a->e, 0, sizeof a->e);       /* passphrases */
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

static int64_t now_us(const weir_srt_auth *a) { return weir_clock_now_us(a->o.clock); }

static int digest_of(const char *key, uint8_t out[32])
{
    struct AVSHA *sha = av_sha_alloc();

    if (!sha)
        return AVERROR(ENOMEM);
    av_sha_init(sha, 256);
    av_sha_update(sha, (const uint8_t *)key, strlen(key));
    av_sha_final(sha, out);
    av_free(sha);
    return 0;
}

static entry *find(weir_srt_auth *a, const uint8_t digest[32])
{
    for (int i = 0; i < ENTRIES; i++)
        if (a->e[i].state != E_EMPTY && !memcmp(a->e[i].digest, digest, 32))
            return &a->e[i];
    return NULL;
}

/* A free entry, or the oldest answered one (invariant 1: never a pending). */
static entry *slot_for(weir_srt_auth *a)
{
    entry *best = NULL;
    for (int i = 0; i < ENTRIES; i++) {
        entry *e = &a->e[i];
        if (e->state == E_EMPTY)
            return e;
        if (e->state == E_ANSWERED && (!best || e->at_us < best->at_us))
            best = e;
    }
    return best;
}

static int reusable(const weir_srt_auth *a, const entry *e, int64_t now)
{
    return e->state == E_ANSWERED && (e->result == 0 || e->result == AVERROR(EACCES)) &&
           now - e->at_us < a->o.ttl_us;
}

/* ---- the request, on the loop ------------------------------------------------- */

static void req_done(void *arg, int result, const char *stream, const char *passphrase)
{
    req *q = arg;
    weir_srt_auth *a = q->a;
    entry *e;

    pthread_mutex_lock(&a->mu);
    a->inflight--;
    if ((e = find(a, q->digest)) && e->state == E_PENDING) {
        e->state = E_ANSWERED;
        e->result = result;
        e->at_us = now_us(a);
        e->stream[0] = '\0';
        memset(e->passphrase, 0, sizeof e->passphrase);
        if (result == 0 && passphrase &&
            snprintf(e->passphrase, sizeof e->passphrase, "%s", passphrase) >=
                (int)sizeof e->passphrase)
            e->result = AVERROR(EINVAL);    /* longer than SRT takes: a store fault */
        if (result == 0 &&
            snprintf(e->stream, sizeof e->stream, "%s", stream ? stream : "") >=
                (int)sizeof e->stream)
            e->result = AVERROR(EINVAL);    /* not a bus name: a store fault */
        if (result == 0 && !e->stream[0])
            e->result = AVERROR(EINVAL);
    }
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    memset(q->key, 0, sizeof q->key);
    free(q);
    auth_unref(a);
}

static void req_start(void *arg)
{
    req *q = arg;
    weir_srt_auth *a = q->a;

    if (atomic_load(&a->closed))
        req_done(q, AVERROR_EXIT, NULL, NULL);
    else if (a->o.auth(a->o.auth_ctx, q->key, req_done, q) < 0)
        req_done(q, AVERROR(EIO), NULL, NULL);
}

/* Under mu: makes e (found or not) PENDING and posts its request, with mu
 * released around the post (it may run the request at once). */
static int start(weir_srt_auth *a, entry *e, const uint8_t digest[32], const char *key)
{
    req *q;
    int r;

    if (a->inflight >= a->o.max_inflight || atomic_load(&a->closed))
        return AVERROR(EBUSY);
    if (!e && !(e = slot_for(a)))
        return AVERROR(EBUSY);
    if (!(q = calloc(1, sizeof *q)))
        return AVERROR(ENOMEM);
    memcpy(e->digest, digest, 32);
    memset(e->passphrase, 0, sizeof e->passphrase);    /* the old answer's, or another key's */
    e->state = E_PENDING;
    e->at_us = now_us(a);
    a->inflight++;
    q->a = a;
    memcpy(q->digest, digest, 32);
    snprintf(q->key, sizeof q->key, "%s", key);
    atomic_fetch_add(&a->refs, 1);
    pthread_mutex_unlock(&a->mu);
    r = a->o.post(a->o.post_ctx, req_start, q);
    if (r < 0)
        req_done(q, r, NULL, NULL);     /* answers the entry with the error: not kept */
    pthread_mutex_lock(&a->mu);
    return 0;
}

/* ---- checks ------------------------------------------------------------------------ */

/* How long a budgeted caller may wait now (under mu). */
static int64_t budget_left(weir_srt_auth *a)
{
    int64_t now = now_us(a);
    if (now - a->window_start >= 1000000) {
        a->window_start = now;
        a->budget_used = 0;
    }
    return a->budget_used < a->o.budget_us ? a->o.budget_us - a->budget_used : 0;
}

static void wait_answer(weir_srt_auth *a, const uint8_t digest[32], int64_t wait_us,
                        const atomic_int *stop)
{
    int64_t deadline = weir_clock_mono_us() + wait_us;
    entry *e;

    while ((e = find(a, digest)) && e->state == E_PENDING && !(stop && atomic_load(stop))) {
        int64_t left = deadline - weir_clock_mono_us();
        struct timespec ts;
        if (left <= 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        left = FFMIN(left, WAIT_SLICE_US);
        ts.tv_sec += (time_t)(left / 1000000);
        ts.tv_nsec += (long)(left % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
}

int weir_srt_auth_check(weir_srt_auth *a, const char *key, int64_t wait_us, int budgeted,
                        const atomic_int *stop, char stream[WEIR_BUS_NAME_MAX + 1],
                        char passphrase[WEIR_SRT_PASSPHRASE_MAX + 1])
{
    uint8_t digest[32];
    entry *e;
    int r;

    if (!key || strlen(key) > KEY_MAX)
        return AVERROR(EACCES);             /* no such key can exist */
    if ((r = digest_of(key, digest)) < 0)
        return r;
    pthread_mutex_lock(&a->mu);
    e = find(a, digest);
    if (!e || (e->state == E_ANSWERED && !reusable(a, e, now_us(a)))) {
        if ((r = start(a, e, digest, key)) < 0)
            goto out;
    }
    if (budgeted)
        wait_us = FFMIN(wait_us, budget_left(a));
    if (wait_us > 0 && (e = find(a, digest)) && e->state == E_PENDING) {
        int64_t t0 = weir_clock_mono_us();
        wait_answer(a, digest, wait_us, stop);
        if (budgeted)
            a->budget_used += weir_clock_mono_us() - t0;
    }
    e = find(a, digest);
    if (e && e->state == E_ANSWERED) {
        r = e->result;
        if (r == 0)
            memcpy(stream, e->stream, sizeof e->stream);
        if (r == 0 && passphrase)
            memcpy(passphrase, e->passphrase, sizeof e->passphrase);
    } else {
        r = stop && atomic_load(stop) ? AVERROR_EXIT : AVERROR(EAGAIN);
    }
out:
    pthread_mutex_unlock(&a->mu);
    memset(digest, 0, sizeof digest);
    return r;
}

int weir_srt_auth_inflight(weir_srt_auth *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->inflight;
    pthread_mutex_unlock(&a->mu);
    return n;
}

void weir_srt_auth_close(weir_srt_auth *a)
{
    if (!a)
        return;
    atomic_store(&a->closed, 1);
    auth_unref(a);
}

int weir_srt_auth_new(const weir_srt_auth_opts *opts, weir_srt_auth **out)
{
    weir_srt_auth *a;
    pthread_condattr_t ca;

    if (!opts->post || !opts->auth)
        return AVERROR(EINVAL);
    if (!(a = calloc(1, sizeof *a)))
        return AVERROR(ENOMEM);
    atomic_init(&a->refs, 1);
    a->o = *opts;
    if (!a->o.clock)
        a->o.clock = &weir_clock_system;
    if (a->o.ttl_us <= 0)
        a->o.ttl_us = DEFAULT_TTL_US;
    if (a->o.max_inflight <= 0)
        a->o.max_inflight = DEFAULT_INFLIGHT;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* waits are real time */
    pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    a->window_start = now_us(a);
    *out = a;
    return 0;
}
