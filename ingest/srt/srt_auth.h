/*
 * ingest/srt/srt_auth.h — stream key checks fast enough for the SRT handshake
 * (private to ingest/srt).
 *
 * SRT refuses a caller with a reason (SRT_REJX_UNAUTHORIZED, ...) only from
 * the listen callback, which libsrt runs on its receiver thread: the thread
 * that also receives every live stream on the port.  The key store answers
 * asynchronously (a database query on the work pool, the answer on the
 * loop).  So the callback may only wait for an answer briefly, and only so
 * often:
 *
 *   - answers (valid or refused key) are kept for `ttl_us` and reused: a
 *     caller retransmitting its handshake, reconnecting, or retrying a wrong
 *     key costs nothing;
 *   - otherwise a check is started and the caller waits for it up to
 *     `wait_us`, and, when `budgeted`, only while the last second's waiting
 *     stayed under `budget_us`: a slow store or a flood of unknown keys
 *     costs the live streams on the port at most that much receiver time
 *     per second;
 *   - at most `max_inflight` checks run at once; past that a check is not
 *     started (AVERROR(EBUSY)), so a flood cannot queue work either.
 *
 * A check that did not answer in time goes on; its answer lands in the table
 * for whoever asks next (the accepted connection's own thread, which waits
 * longer).
 *
 * Keys are held only as SHA-256 digests in the table (and, while a check is
 * in flight, in its request, wiped when done).  Never logged.
 *
 * A valid key's answer carries the key's own SRT passphrase, if it has one:
 * the listen callback sets it on the caller's socket before the handshake
 * completes (SRTO_PASSPHRASE), so a caller without it is refused by libsrt.
 * It lives only in this table, in memory: wiped when its entry is reused or
 * expires into a new check, and when the table is freed.  Never logged.
 *
 * Threads: weir_srt_auth_check from any thread (libsrt's receiver thread,
 * connection threads); the requests run on whatever `post` runs them on (the
 * loop).  The table is refcounted: every request in flight holds a
 * reference, so answers may arrive after the SRT server is gone.
 */
#ifndef WEIR_INGEST_SRT_AUTH_H
#define WEIR_INGEST_SRT_AUTH_H

#include <stdatomic.h>

#include "ingest/ingest.h"

typedef struct weir_srt_auth weir_srt_auth;

typedef struct weir_srt_auth_opts {
    /* Runs fn(arg) later on the thread where `auth` may be called (the
     * loop): weir_loop_post's shape.  0 or a negative code. */
    int (*post)(void *post_ctx, void (*fn)(void *arg), void *arg);
    void *post_ctx;
    weir_publish_auth_fn auth;
    void *auth_ctx;
    const weir_clock *clock;        /* for ttl and the budget window; NULL: system */
    int64_t ttl_us;                 /* reuse answers this long; 0: 5 s */
    int max_inflight;               /* 0: 8 */
    int64_t budget_us;              /* waiting per second when budgeted; 0: none */
} weir_srt_auth_opts;

/* 0 and *out (OUT: the owner's reference, dropped with weir_srt_auth_close). */
int weir_srt_auth_new(const weir_srt_auth_opts *opts, weir_srt_auth **out);

/* Which stream does `key` publish?  Waits at most wait_us (less when
 * budgeted and the budget is spent), and returns early when *stop becomes
 * non-zero (stop may be NULL).
 *   0                    stream (OUT) holds the stream name, and passphrase
 *                        (OUT, unless NULL) the key's own SRT passphrase
 *                        ("" for none; a secret: the caller wipes it)
 *   AVERROR(EACCES)      unknown or revoked key
 *   AVERROR(EAGAIN)      no answer yet: it is being checked
 *   AVERROR(EBUSY)       max_inflight checks already run: not started
 *   AVERROR_EXIT         *stop was set
 *   other                the key store failed (not kept: asked again next time) */
int weir_srt_auth_check(weir_srt_auth *a, const char *key, int64_t wait_us, int budgeted,
                        const atomic_int *stop, char stream[WEIR_BUS_NAME_MAX + 1],
                        char passphrase[WEIR_SRT_PASSPHRASE_MAX + 1]);

/* Checks running now (a gauge for tests and metrics). */
int weir_srt_auth_inflight(weir_srt_auth *a);

/* No more requests start (ones already posted answer AVERROR_EXIT without
 * asking the store); drops the caller's reference.  NULL is a no-op. */
void weir_srt_auth_close(weir_srt_auth *a);

#endif
