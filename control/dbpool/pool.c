/*
 * control/dbpool/pool.c — the connection pool.  The connection life cycle
 * and the invariants callers see are in dbpool.h; this file adds how they
 * are kept.
 *
 * Lock.  One mutex guards every list and counter of the pool and the pool
 * fields of every weir_db.  It is never held across a driver call (connect,
 * validate, rollback, disconnect) nor a log line, so a slow database or a
 * slow log sink delays only the thread that meets it; the critical sections
 * are list operations and counter updates.
 *
 * Lists (all under the lock):
 *   idle     connections ready to hand out, most recently used at the head.
 *            Acquire pops the head, so a busy pool keeps reusing its warm
 *            connections and the surplus ones age at the tail, where the idle
 *            timeout finds them.
 *   all      every open connection (idle or in use): the leak sweep walks it.
 *   waiters  callers blocked in acquire, oldest first.  Each waiter sleeps on
 *            its own condition variable on its own stack.
 *
 * Counting.  ntotal = nidle + nactive + npending + nclosing <= max_size.
 * npending counts connections being opened: a thread that decides to open
 * one reserves it first (ntotal++, npending++) under the lock, connects
 * without the lock, then either links it or gives the reservation back.
 * nclosing counts connections unlinked from the pool whose disconnect has
 * not returned yet; their place is freed (and offered to a waiter) only
 * then.  So invariant 2 holds for what the database server sees, not only
 * for the pool's lists, without holding the lock over a connect or a
 * disconnect.
 *
 * Waiting (invariant 3).  Acquire tries, in order: pop an idle connection;
 * reserve room for a new one; wait in the queue.  Released connections are
 * shared out in two modes, as Go's sync.Mutex does with its lock:
 *   - normal: release pushes the connection on the idle list and wakes the
 *     first waiter not woken yet (give()).  Anyone may pop it, the waiter or
 *     a newcomer, and the waiter that loses keeps its place.  A thread that
 *     releases and acquires again at once just takes its connection back,
 *     so a busy pool costs no context switch per cycle.
 *   - hand-off: once the oldest waiter has waited WAIT_HANDOFF_US, release
 *     marks the connection in use for that waiter and stores it in the
 *     waiter, which then cannot lose it.  That bounds how long newcomers
 *     can keep a waiter out.
 *   Strict first-come-first-served at every release would be fairer and
 *   much slower: each release would put the releasing thread to sleep behind
 *   the waiter it just woke (measured by bench/dbpool_bench.c: a lock convoy
 *   at about 100 times the cost per cycle on 2 cores).
 * Room freed below max_size goes to the oldest waiter as a reservation
 * (room_freed()); the waiter then connects.  Waits are
 * pthread_cond_timedwait on CLOCK_MONOTONIC until the caller's deadline; a
 * waiter looks for a connection before it checks the deadline, so it fails
 * when CLOCK_MONOTONIC has reached the deadline and nothing is free, never
 * before.
 *
 * Failing connects.  After a connect fails, nobody opens another before
 * create_retry_us (backoff 50 ms doubling to 2 s, reset by a success), so a
 * database that is down costs a few attempts per second, not a spin of every
 * waiter.  Waiters that could open one wake at that time by themselves.
 *
 * Housekeeping (weir_dbpool_housekeep, every WEIR_DBPOOL_HOUSEKEEP_MS from
 * the housekeeper thread): under the lock, unlink idle connections past
 * their lifetime or idle timeout, mark leaks, reserve room for the refill;
 * then, without it, log, close and connect.  In-use connections past their
 * lifetime are retired when released.
 *
 * Clocks.  Lifetimes, idle times, the validation bypass window and leak ages
 * use the injected clock (tests step it).  The acquire deadline and the
 * acquire-time histogram use CLOCK_MONOTONIC, because a thread can only
 * sleep on real time; a frozen test clock cannot make acquire hang.
 */
#include "control/dbpool/driver.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libavutil/error.h>

#include "core/log.h"

enum conn_state {
    CONN_IDLE = 1,
    CONN_IN_USE = 2,
};

#define WAIT_HANDOFF_US 1000         /* a waiter this old is handed connections */
#define BACKOFF_MIN_US  50000
#define BACKOFF_MAX_US  2000000
#define LEAKS_PER_SWEEP 16          /* logged per housekeep; the rest next time */

const int64_t weir_dbpool_acq_bucket_us[WEIR_DBPOOL_ACQ_BUCKETS - 1] = {
    10, 100, 1000, 10000, 100000, 1000000, 10000000,
};

static const weir_dbpool_settings default_settings = {
    .min_idle = 2, .max_size = 10, .acquire_timeout = 30000, .idle_timeout = 600000,
    .max_lifetime = 1800000, .validation_timeout = 5000, .leak_threshold = 0,
};

static const weir_db_driver *const drivers[] = { &weir_db_driver_sqlite };

typedef struct waiter {
    struct waiter *prev, *next;
    pthread_cond_t cond;
    const char *site;
    int64_t since;              /* CLOCK_MONOTONIC: first queued */
    int queued;                 /* in the pool's waiter list */
    int notified;               /* woken for an idle connection, has not looked yet */
    weir_db *db;                /* handed over: already marked in use */
    int slot;                   /* room reserved for it to open one */
} waiter;

struct weir_dbpool {
    pthread_mutex_t lock;
    pthread_condattr_t cattr;   /* CLOCK_MONOTONIC, for every condition here */
    const weir_db_driver *drv;
    char *url;                  /* owned; for the driver only */
    char *url_log;              /* owned; redacted */
    weir_dbpool_settings s;     /* copy; s.url unused */
    weir_clock clock;

    /* guarded by lock */
    weir_db *idle_head, *idle_tail;
    weir_db *all;
    waiter *wait_head, *wait_tail;
    int nidle, nactive, npending, nclosing, ntotal, nwaiting;
    int64_t create_retry_us;    /* CLOCK_MONOTONIC; no connect before it */
    int64_t backoff_us;
    uint64_t rng;
    int closing;
    weir_dbpool_stats c;        /* the counters; gauges are filled in by stats_get */

    pthread_t hk;
    int hk_started;
    pthread_cond_t hk_wake;
    int64_t hk_period_us;
};

/* The default pool clock.  What it times (lifetimes, idle times, the
 * validation window, leaks) needs milliseconds at best, and it is read twice
 * per acquire/release cycle: the coarse clock costs 3 ns a read here against
 * 26 ns for CLOCK_MONOTONIC (kvm-clock), a fifth of the uncontended cycle. */
static int64_t coarse_now_us(void *arg)
{
    struct timespec ts;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const weir_clock coarse_clock = { .now_us = coarse_now_us, .arg = NULL };

static int64_t now_us(const weir_dbpool *p)
{
    return p->clock.now_us(p->clock.arg);
}

static void abs_time(struct timespec *ts, int64_t mono_us)
{
    ts->tv_sec = (time_t)(mono_us / 1000000);
    ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

/* splitmix64: spreads lifetimes; not security-relevant. */
static uint64_t next_rand(weir_dbpool *p)
{
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- URL redaction ------------------------------------------------------- */

/* A copy of url without secrets: the userinfo of scheme://userinfo@host and
 * the value of every password= parameter (URL query or libpq keyword form)
 * become "[redacted]".  NULL on ENOMEM. */
static char *redact_url(const char *url)
{
    static const char mark[] = "[redacted]";
    size_t len = strlen(url), o = 0;
    char *out = malloc(2 * len + sizeof mark + 1);
    const char *s = url, *auth = strstr(url, "://");

    if (!out)
        return NULL;
    if (auth) {
        const char *host = auth + 3, *end = host + strcspn(host, "/?#"), *at = NULL;
        for (const char *q = host; q < end; q++)
            if (*q == '@')
                at = q;
        if (at && at > host) {
            memcpy(out, url, (size_t)(host - url));
            o = (size_t)(host - url);
            memcpy(out + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
            s = at;
        }
    }
    while (*s) {
        int starts = s == url || strchr("?&; \t", s[-1]);
        if (starts && strncasecmp(s, "password=", 9) == 0) {
            memcpy(out + o, s, 9);
            o += 9;
            s += 9;
            if (*s == '\'') {
                const char *q = strchr(s + 1, '\'');
                s = q ? q + 1 : s + strlen(s);
            } else {
                s += strcspn(s, "&; \t#");
            }
            memcpy(out + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
            continue;
        }
        out[o++] = *s++;
    }
    out[o] = '\0';
    return out;
}

/* ---- lists (lock held) --------------------------------------------------- */

static void idle_push(weir_dbpool *p, weir_db *db)
{
    db->state = CONN_IDLE;
    db->prev = NULL;
    db->next = p->idle_head;
    if (p->idle_head)
        p->idle_head->prev = db;
    else
        p->idle_tail = db;
    p->idle_head = db;
    p->nidle++;
}

static void idle_remove(weir_dbpool *p, weir_db *db)
{
    assert(db->state == CONN_IDLE);
    if (db->prev)
        db->prev->next = db->next;
    else
        p->idle_head = db->next;
    if (db->next)
        db->next->prev = db->prev;
    else
        p->idle_tail = db->prev;
    db->prev = db->next = NULL;
    p->nidle--;
}

/* front: a waiter that had its turn and lost the connection it took (it
 * failed validation) goes back to the head. */
static void waiter_push(weir_dbpool *p, waiter *w, int front)
{
    if (front && p->wait_head) {
        w->prev = NULL;
        w->next = p->wait_head;
        p->wait_head->prev = w;
        p->wait_head = w;
    } else {
        w->next = NULL;
        w->prev = p->wait_tail;
        if (p->wait_tail)
            p->wait_tail->next = w;
        else
            p->wait_head = w;
        p->wait_tail = w;
    }
    w->queued = 1;
    p->nwaiting++;
}

static void waiter_remove(weir_dbpool *p, waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->wait_tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = 0;
    p->nwaiting--;
}

static void mark_in_use(weir_dbpool *p, weir_db *db, int64_t now, const char *site)
{
    db->state = CONN_IN_USE;
    db->acquired_us = now;
    db->site = site;
    db->leak_logged = 0;
    p->nactive++;
}

/* A connection opened on a reservation joins the pool.  It is in no list
 * yet: the caller marks it in use or gives it. */
static void conn_link(weir_dbpool *p, weir_db *db, int64_t now)
{
    int64_t life = p->s.max_lifetime * 1000;

    assert(p->npending > 0);
    p->npending--;
    db->pool = p;
    db->created_us = now;
    db->last_used_us = now;
    db->expires_us = INT64_MAX;
    if (life > 0)
        db->expires_us = now + life - (int64_t)(next_rand(p) % (uint64_t)(life / 40 + 1));
    db->all_prev = NULL;
    db->all_next = p->all;
    if (p->all)
        p->all->all_prev = db;
    p->all = db;
    p->c.created++;
    p->backoff_us = 0;
}

/* The connection leaves the pool; the caller then passes it to
 * conn_retire.  It keeps its place in ntotal until it is closed. */
static void conn_unlink(weir_dbpool *p, weir_db *db)
{
    if (db->all_prev)
        db->all_prev->all_next = db->all_next;
    else
        p->all = db->all_next;
    if (db->all_next)
        db->all_next->all_prev = db->all_prev;
    p->nclosing++;
}

/* Room below max_size appeared: reserve it for the oldest waiters. */
static void room_freed(weir_dbpool *p)
{
    while (p->wait_head && p->ntotal < p->s.max_size &&
           weir_clock_mono_us() >= p->create_retry_us) {
        waiter *w = p->wait_head;
        waiter_remove(p, w);
        p->ntotal++;
        p->npending++;
        w->slot = 1;
        pthread_cond_signal(&w->cond);
    }
}

/* An open connection is available: handed to the oldest waiter if it has
 * waited long, else idle, with the first waiter not yet woken woken. */
static void give(weir_dbpool *p, weir_db *db, int64_t now)
{
    waiter *w = p->wait_head;

    db->last_used_us = now;
    if (w && weir_clock_mono_us() - w->since >= WAIT_HANDOFF_US) {
        waiter_remove(p, w);
        mark_in_use(p, db, now, w->site);
        w->db = db;
        pthread_cond_signal(&w->cond);
        return;
    }
    idle_push(p, db);
    for (; w; w = w->next) {
        if (!w->notified) {
            w->notified = 1;
            pthread_cond_signal(&w->cond);
            break;
        }
    }
}

static void create_failed(weir_dbpool *p)
{
    assert(p->npending > 0);
    p->npending--;
    p->ntotal--;
    p->c.connect_failures++;
    p->backoff_us = p->backoff_us ? p->backoff_us * 2 : BACKOFF_MIN_US;
    if (p->backoff_us > BACKOFF_MAX_US)
        p->backoff_us = BACKOFF_MAX_US;
    p->create_retry_us = weir_clock_mono_us() + p->backoff_us;
}

/* ---- opening and closing (lock not held) --------------------------------- */

static int conn_open(weir_dbpool *p, weir_db **out)
{
    char err[256] = "";
    weir_db *db = calloc(1, sizeof *db);
    int r;

    *out = NULL;
    if (!db)
        return AVERROR(ENOMEM);
    db->drv = p->drv;
    if ((r = p->drv->connect(p->url, p->s.acquire_timeout, &db->conn, err, sizeof err)) < 0) {
        weir_log_warn("dbpool", "cannot open a connection", WL_STR("url", p->url_log),
                      WL_STR("db_error", err), WL_ERR(r));
        free(db);
        return r;
    }
    *out = db;
    return 0;
}

static void conn_close(weir_db *db)
{
    db->drv->disconnect(db->conn);
    free(db);
}

static void room_freed(weir_dbpool *p);

/* Closes an unlinked connection, then frees its place.  Lock not held. */
static void conn_retire(weir_dbpool *p, weir_db *db)
{
    conn_close(db);
    pthread_mutex_lock(&p->lock);
    assert(p->nclosing > 0);
    p->nclosing--;
    p->ntotal--;
    p->c.closed++;
    room_freed(p);
    pthread_mutex_unlock(&p->lock);
}

/* Opens a connection on a reservation the caller holds.  Lock held on
 * entry and on return, dropped in between.  On success it is linked; the
 * caller marks it in use or gives it. */
static int open_reserved(weir_dbpool *p, weir_db **out)
{
    int r;

    pthread_mutex_unlock(&p->lock);
    r = conn_open(p, out);
    pthread_mutex_lock(&p->lock);
    if (r < 0) {
        create_failed(p);
        room_freed(p);
        return r;
    }
    conn_link(p, *out, now_us(p));
    return 0;
}

/* ---- acquire and release ------------------------------------------------- */

static void count_acquire(weir_dbpool *p, int64_t waited_us)
{
    int i = 0;
    while (i < WEIR_DBPOOL_ACQ_BUCKETS - 1 && waited_us >= weir_dbpool_acq_bucket_us[i])
        i++;
    p->c.acquire_us_buckets[i]++;
    p->c.acquire_us_sum += (uint64_t)waited_us;
    p->c.acquired++;
}

/* Checks a connection that sat idle, without the lock.  0: keep it. */
static int check_idle(weir_dbpool *p, weir_db *db)
{
    int r = p->drv->validate ? p->drv->validate(db->conn, p->s.validation_timeout) : 0;
    if (r < 0)
        weir_log_warn("dbpool", "idle connection failed validation; replacing it",
                      WL_STR("db_error", weir_db_errmsg(db)), WL_ERR(r));
    return r;
}

/* One sleep in the queue: until woken, or the deadline, or (when room could
 * be made) the end of the connect backoff.  Lock held. */
static void wait_once(weir_dbpool *p, waiter *w, int64_t deadline, int64_t mono)
{
    int64_t until = deadline;
    struct timespec ts;

    if (!w->queued) {
        if (!w->since) {
            pthread_cond_init(&w->cond, &p->cattr);
            w->since = mono;
            waiter_push(p, w, 0);
        } else {
            waiter_push(p, w, 1);
        }
    }
    if (p->ntotal < p->s.max_size && p->create_retry_us < until)
        until = p->create_retry_us;
    w->notified = 0;
    abs_time(&ts, until);
    pthread_cond_timedwait(&w->cond, &p->lock, &ts);
}

int weir_dbpool_acquire_at(weir_dbpool *p, weir_db **out, const char *site)
{
    int64_t t0 = 0, deadline = 0, mono;     /* read once there is something to wait for */
    int64_t now = now_us(p);
    waiter w = { .site = site };
    weir_db *db = NULL;
    int r = 0, have_slot = 0;

    *out = NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (have_slot) {
            have_slot = 0;
            if (open_reserved(p, &db) < 0)
                continue;
            now = now_us(p);
            mark_in_use(p, db, now, site);
            break;
        }
        if (p->closing) {
            r = AVERROR(ESHUTDOWN);
            break;
        }
        if ((db = p->idle_head)) {
            if (w.queued)
                waiter_remove(p, &w);   /* before unlocking: not to be served twice */
            idle_remove(p, db);
            if (now >= db->expires_us) {
                conn_unlink(p, db);
                pthread_mutex_unlock(&p->lock);
                conn_retire(p, db);
                pthread_mutex_lock(&p->lock);
                now = now_us(p);
                continue;
            }
            mark_in_use(p, db, now, site);
            if (now - db->last_used_us < WEIR_DBPOOL_VALIDATE_AFTER_MS * 1000)
                break;
            if (!t0) {
                t0 = weir_clock_mono_us();
                deadline = t0 + p->s.acquire_timeout * 1000;
            }
            pthread_mutex_unlock(&p->lock);
            r = check_idle(p, db);
            pthread_mutex_lock(&p->lock);
            if (r >= 0)
                break;
            p->nactive--;
            p->c.validation_failures++;
            conn_unlink(p, db);
            pthread_mutex_unlock(&p->lock);
            conn_retire(p, db);
            pthread_mutex_lock(&p->lock);
            r = 0;
            now = now_us(p);
            continue;
        }
        mono = weir_clock_mono_us();
        if (!t0) {
            t0 = mono;
            deadline = t0 + p->s.acquire_timeout * 1000;
        }
        if (p->ntotal < p->s.max_size && mono >= p->create_retry_us) {
            if (w.queued)
                waiter_remove(p, &w);
            p->ntotal++;
            p->npending++;
            have_slot = 1;
            continue;
        }
        if (mono >= deadline) {
            r = AVERROR(ETIMEDOUT);
            break;
        }
        wait_once(p, &w, deadline, mono);
        now = now_us(p);
        if ((db = w.db))
            break;                      /* handed over, marked in use, dequeued */
        if (w.slot) {
            w.slot = 0;                 /* room reserved, dequeued */
            have_slot = 1;
        }
    }
    if (w.queued)
        waiter_remove(p, &w);
    if (r == 0)
        count_acquire(p, t0 ? weir_clock_mono_us() - t0 : 0);
    else if (r == AVERROR(ETIMEDOUT))
        p->c.timeouts++;
    pthread_mutex_unlock(&p->lock);
    if (w.since)
        pthread_cond_destroy(&w.cond);  /* nobody can signal it once dequeued */
    if (r < 0) {
        weir_log_debug("dbpool", "no connection", WL_STR("site", site), WL_ERR(r));
        return r;
    }
    *out = db;
    return 0;
}

void weir_dbpool_release(weir_dbpool *p, weir_db *db)
{
    weir_db *to_close = NULL;
    const char *site = db ? db->site : NULL;
    int64_t now, held_us;
    int leaked;

    if (!db)
        return;
    assert(db->pool == p && db->state == CONN_IN_USE);
    if (p->drv->in_transaction && p->drv->in_transaction(db->conn)) {
        int r = p->drv->rollback ? p->drv->rollback(db->conn) : AVERROR(ENOSYS);
        weir_log_warn("dbpool", "connection released inside a transaction; rolled back",
                      WL_STR("site", db->site));
        if (r < 0) {
            weir_dbpool_evict(p, db);
            return;
        }
    }
    now = now_us(p);
    pthread_mutex_lock(&p->lock);
    p->nactive--;
    leaked = db->leak_logged;
    held_us = now - db->acquired_us;   /* db may change hands once unlocked */
    if (p->closing || now >= db->expires_us) {
        conn_unlink(p, db);
        to_close = db;
    } else {
        give(p, db, now);
    }
    pthread_mutex_unlock(&p->lock);
    if (leaked)
        weir_log_info("dbpool", "leaked connection returned", WL_STR("site", site),
                      WL_INT("held_ms", held_us / 1000));
    if (to_close)
        conn_retire(p, to_close);
}

void weir_dbpool_evict(weir_dbpool *p, weir_db *db)
{
    if (!db)
        return;
    assert(db->pool == p && db->state == CONN_IN_USE);
    weir_log_info("dbpool", "connection evicted", WL_STR("site", db->site),
                  WL_STR("db_error", weir_db_errmsg(db)));
    pthread_mutex_lock(&p->lock);
    p->nactive--;
    conn_unlink(p, db);
    pthread_mutex_unlock(&p->lock);
    conn_retire(p, db);
}

/* ---- housekeeping -------------------------------------------------------- */

typedef struct leak {
    const char *site;
    int64_t held_us;
} leak;

/* Unlinks idle connections past their lifetime or idle timeout onto *dead
 * (through ->next).  Lock held. */
static void sweep_idle(weir_dbpool *p, int64_t now, weir_db **dead)
{
    int64_t idle_limit = p->s.idle_timeout * 1000;
    weir_db *db, *prev;

    for (db = p->idle_tail; db; db = prev) {
        int expired = now >= db->expires_us;
        int idled = idle_limit > 0 && p->nidle > p->s.min_idle &&
                    now - db->last_used_us >= idle_limit;
        prev = db->prev;
        if (!expired && !idled)
            continue;
        idle_remove(p, db);
        conn_unlink(p, db);
        db->next = *dead;
        *dead = db;
    }
}

static int sweep_leaks(weir_dbpool *p, int64_t now, leak *out)
{
    int64_t limit = p->s.leak_threshold * 1000;
    int n = 0;

    if (limit <= 0)
        return 0;
    for (weir_db *db = p->all; db && n < LEAKS_PER_SWEEP; db = db->all_next) {
        if (db->state != CONN_IN_USE || db->leak_logged || now - db->acquired_us < limit)
            continue;
        db->leak_logged = 1;
        p->c.leaks++;
        out[n].site = db->site;
        out[n].held_us = now - db->acquired_us;
        n++;
    }
    return n;
}

void weir_dbpool_housekeep(weir_dbpool *p)
{
    leak leaks[LEAKS_PER_SWEEP];
    weir_db *dead = NULL, *db;
    int64_t now = now_us(p);
    int nleaks, refill = 0;

    pthread_mutex_lock(&p->lock);
    if (p->closing) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    sweep_idle(p, now, &dead);
    nleaks = sweep_leaks(p, now, leaks);
    pthread_mutex_unlock(&p->lock);

    for (int i = 0; i < nleaks; i++)
        weir_log_warn("dbpool", "connection leak", WL_STR("site", leaks[i].site),
                      WL_INT("held_ms", leaks[i].held_us / 1000),
                      WL_INT("threshold_ms", p->s.leak_threshold));
    while ((db = dead)) {
        dead = db->next;
        weir_log_debug("dbpool", now >= db->expires_us ? "connection retired: max lifetime"
                                                       : "connection retired: idle timeout",
                       WL_INT("age_ms", (now - db->created_us) / 1000));
        conn_retire(p, db);
    }

    /* Refill after the retirements, whose places are free only now.  One
     * connection at a time; after a failure, give back the rest. */
    pthread_mutex_lock(&p->lock);
    if (!p->closing && weir_clock_mono_us() >= p->create_retry_us) {
        refill = (int)p->s.min_idle - p->nidle - p->npending;
        if (refill > p->s.max_size - p->ntotal)
            refill = (int)(p->s.max_size - p->ntotal);
        if (refill < 0)
            refill = 0;
        p->ntotal += refill;
        p->npending += refill;
    }
    while (refill > 0) {
        refill--;
        if (open_reserved(p, &db) < 0)
            break;
        give(p, db, now_us(p));
    }
    if (refill > 0) {
        p->npending -= refill;
        p->ntotal -= refill;
        room_freed(p);
    }
    pthread_mutex_unlock(&p->lock);
}

static void *housekeeper(void *arg)
{
    weir_dbpool *p = arg;

    pthread_mutex_lock(&p->lock);
    while (!p->closing) {
        int64_t until = weir_clock_mono_us() + p->hk_period_us;
        while (!p->closing && weir_clock_mono_us() < until) {
            struct timespec ts;
            abs_time(&ts, until);
            pthread_cond_timedwait(&p->hk_wake, &p->lock, &ts);
        }
        if (p->closing)
            break;
        pthread_mutex_unlock(&p->lock);
        weir_dbpool_housekeep(p);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- open, stats, close -------------------------------------------------- */

static const weir_db_driver *driver_for(const char *url)
{
    size_t n = strcspn(url, ":");

    if (!url[n])
        return NULL;
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        for (const char *const *s = drivers[i]->schemes; *s; s++)
            if (strlen(*s) == n && strncasecmp(url, *s, n) == 0)
                return drivers[i];
    return NULL;
}

static int check_settings(weir_dbpool_settings *s)
{
    if (s->max_size < 1 || s->max_size > 100000 || s->min_idle < 0 ||
        s->acquire_timeout < 0 || s->idle_timeout < 0 || s->max_lifetime < 0 ||
        s->validation_timeout < 1 || s->leak_threshold < 0) {
        weir_log_error("dbpool", "bad pool settings", WL_INT("max_size", s->max_size),
                       WL_INT("min_idle", s->min_idle));
        return AVERROR(EINVAL);
    }
    if (s->min_idle > s->max_size) {
        weir_log_warn("dbpool", "db.pool.min_idle is above db.pool.max_size; using max_size",
                      WL_INT("min_idle", s->min_idle), WL_INT("max_size", s->max_size));
        s->min_idle = s->max_size;
    }
    return 0;
}

static int64_t housekeep_period_us(const weir_dbpool_opts *opts, const weir_dbpool_settings *s)
{
    int64_t ms = opts->housekeep_ms ? opts->housekeep_ms : WEIR_DBPOOL_HOUSEKEEP_MS;
    /* Report a leak within 1.5 thresholds of its acquisition. */
    if (!opts->housekeep_ms && s->leak_threshold > 0 && s->leak_threshold / 2 < ms)
        ms = s->leak_threshold / 2 > 100 ? s->leak_threshold / 2 : 100;
    return ms * 1000;
}

static int open_min_idle(weir_dbpool *p)
{
    int r = 0;

    pthread_mutex_lock(&p->lock);
    while (p->nidle < p->s.min_idle) {
        weir_db *db;
        p->ntotal++;
        p->npending++;
        if ((r = open_reserved(p, &db)) < 0)
            break;
        give(p, db, now_us(p));
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

static int migrate(weir_dbpool *p, const weir_db_migration *m, size_t n)
{
    weir_db *db;
    int r;

    if ((r = weir_dbpool_acquire_at(p, &db, "weir_dbpool_open")) < 0) {
        weir_log_error("dbpool", "no connection for migrations", WL_ERR(r));
        return r;
    }
    r = weir_db__migrate(db, m, n);
    weir_dbpool_release(p, db);
    return r;
}

int weir_dbpool_open(const weir_dbpool_opts *opts, weir_dbpool **out)
{
    weir_dbpool *p;
    int r;

    *out = NULL;
    if (!opts->url || !*opts->url) {
        weir_log_error("dbpool", "no database URL");
        return AVERROR(EINVAL);
    }
    if (!(p = calloc(1, sizeof *p)))
        return AVERROR(ENOMEM);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return AVERROR(ENOMEM);
    }
    if (pthread_condattr_init(&p->cattr) != 0 ||
        pthread_condattr_setclock(&p->cattr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&p->hk_wake, &p->cattr) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return AVERROR(ENOMEM);
    }
    /* From here on weir_dbpool_close undoes whatever was done. */
    p->s = opts->settings ? *opts->settings : default_settings;
    p->s.url = NULL;
    p->clock = opts->clock ? *opts->clock : coarse_clock;
    p->rng = (uint64_t)weir_clock_mono_us() ^ (uint64_t)(uintptr_t)p;
    p->url = strdup(opts->url);
    p->url_log = redact_url(opts->url);
    if (!p->url || !p->url_log) {
        r = AVERROR(ENOMEM);
        goto fail;
    }
    if ((r = check_settings(&p->s)) < 0)
        goto fail;
    if (!(p->drv = opts->driver ? opts->driver : driver_for(opts->url))) {
        weir_log_error("dbpool", "no database driver for this URL",
                       WL_STR("url", p->url_log));
        r = AVERROR(ENOSYS);
        goto fail;
    }
    if ((r = open_min_idle(p)) < 0)
        goto fail;
    if (opts->nmigrations && (r = migrate(p, opts->migrations, opts->nmigrations)) < 0)
        goto fail;
    if (opts->housekeep_ms >= 0) {
        p->hk_period_us = housekeep_period_us(opts, &p->s);
        if ((r = pthread_create(&p->hk, NULL, housekeeper, p)) != 0) {
            r = AVERROR(r);
            goto fail;
        }
        p->hk_started = 1;
    }
    weir_log_info("dbpool", "database pool open", WL_STR("url", p->url_log),
                  WL_STR("driver", p->drv->name), WL_INT("min_idle", p->s.min_idle),
                  WL_INT("max_size", p->s.max_size));
    *out = p;
    return 0;

fail:
    weir_dbpool_close(p);
    return r;
}

void weir_dbpool_stats_get(weir_dbpool *p, weir_dbpool_stats *st)
{
    pthread_mutex_lock(&p->lock);
    *st = p->c;
    st->active = p->nactive;
    st->idle = p->nidle;
    st->pending = p->npending;
    st->closing = p->nclosing;
    st->waiting = p->nwaiting;
    st->total = p->ntotal;
    pthread_mutex_unlock(&p->lock);
}

void weir_dbpool_close(weir_dbpool *p)
{
    weir_db *idle;
    int active;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    for (waiter *w = p->wait_head; w; w = w->next)
        pthread_cond_signal(&w->cond);
    pthread_cond_signal(&p->hk_wake);
    pthread_mutex_unlock(&p->lock);
    if (p->hk_started)
        pthread_join(p->hk, NULL);

    pthread_mutex_lock(&p->lock);
    idle = p->idle_head;
    for (weir_db *db = idle; db; db = db->next) {
        conn_unlink(p, db);
        p->nidle--;
        p->c.closed++;
    }
    p->idle_head = p->idle_tail = NULL;
    active = p->nactive;
    pthread_mutex_unlock(&p->lock);

    while (idle) {
        weir_db *db = idle;
        idle = db->next;
        conn_close(db);
    }
    if (active)
        weir_log_error("dbpool", "pool closed with connections still in use; leaving them open",
                       WL_INT("in_use", active));
    if (p->drv)
        weir_log_debug("dbpool", "database pool closed", WL_STR("url", p->url_log));
    pthread_cond_destroy(&p->hk_wake);
    pthread_condattr_destroy(&p->cattr);
    pthread_mutex_destroy(&p->lock);
    free(p->url);
    free(p->url_log);
    free(p);
}
