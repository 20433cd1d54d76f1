/*
 * control/dbpool/pool.c — the connection pool.  The connection life cycle
 * and the invariants callers see are in dbpool.h; this file adds how they
 * are kept.
 *
 * Shape: HikariCP's ConcurrentBag.  The pool has max_size slots; each holds
 * at most one connection and an atomic state:
 *
 *            reserve (lock)           open ok (lock)
 *   EMPTY ───────────────> RESERVED ───────────────> IN USE <──┐ CAS, no lock
 *     ^                    (opening)                   │  ^     │ (acquire)
 *     │ closed (lock)                 store, no lock   v  │     │
 *     └─────────────────── RESERVED <───────────────  IDLE ─────┘
 *                          (closing)   retire (lock): from IN USE, or from
 *                                      IDLE via the housekeeper's CAS
 *
 *   transition              by                          lock
 *   EMPTY -> RESERVED       reserve_slot: room for one   held
 *   RESERVED -> IN USE      open_slot (for its opener)   held
 *   RESERVED -> IDLE        give_locked (refill, sweep)  held
 *   IDLE -> IN USE          borrow: CAS                  no
 *   IN USE -> IDLE          release: store               no (held when waiters)
 *   IDLE -> RESERVED        housekeep sweep: CAS         held
 *   IN USE -> RESERVED      retire (release past its lifetime, evict,
 *                           failed validation)          held
 *   RESERVED -> EMPTY       retire_finish, after disconnect returned
 *
 * Ownership.  Whoever moved a slot to IN USE or RESERVED owns it and its
 * connection: only the owner writes the connection's fields (last_used_us,
 * the lease) or hands it on.  The atomic state carries the happens-before
 * from one owner to the next.  A connection is freed only by retire_finish,
 * and a slot can leave IN USE or IDLE for RESERVED only under the lock, so a
 * thread holding the lock may read any IN USE slot's connection (the leak
 * sweep does).
 *
 * The fast path is lock-free: acquire CASes an IDLE slot (trying first the
 * slot this thread used last, then from slot 0, so low slots stay busy and
 * surplus connections age in the high ones for the idle timeout); release
 * stores IDLE and, when nobody waits, is done.  No shared counter is
 * written on it: fast acquisitions are counted per slot.  Everything else
 * takes the one mutex: waiting, opening, closing, housekeeping, statistics.
 *
 * Counting (under the lock).  ntotal = slots not EMPTY <= max_size.
 * npending: RESERVED for opening; nclosing: RESERVED for closing.  A slot
 * stays counted until its connection's disconnect has returned, so the
 * database never sees more than max_size connections from one pool
 * (invariant 2), while no driver call runs under the lock.
 *
 * Waiting (invariant 3).  A caller that finds no IDLE slot and no room
 * takes the lock, joins the waiter queue (nwaiting++), scans the slots once
 * more, then sleeps on its own condition variable.  Release stores IDLE and
 * then reads nwaiting (both seq_cst): either it sees the waiter, takes the
 * lock and wakes one, or the waiter's scan, which follows its increment,
 * sees the IDLE slot.  No wake-up is lost.
 *   Released connections are shared out in two modes, as Go's sync.Mutex
 *   does with its lock:
 *   - normal: release makes the slot IDLE and wakes the first waiter not
 *     woken yet.  Anyone may take it, that waiter or a newcomer; a waiter
 *     that loses keeps its place.  A thread that releases and acquires again
 *     takes its connection back without a context switch.
 *   - hand-off: once the oldest waiter has waited WAIT_HANDOFF_US, release
 *     keeps the slot IN USE and gives the connection to that waiter, which
 *     cannot lose it.  That bounds how long newcomers can keep it out.
 *   Strict first-come-first-served at every release would put each
 *   releasing thread to sleep behind the waiter it just woke: a lock convoy
 *   (measured with bench/dbpool_bench.c before this design: 10 to 100 times
 *   the cost per cycle with 32 threads on 2 cores).
 * Room freed below max_size goes to the oldest waiter as a reserved slot
 * (room_freed); the waiter then connects.  Waits are pthread_cond_timedwait
 * on CLOCK_MONOTONIC; a waiter looks for a connection before it checks its
 * deadline, so it fails once the deadline has passed with nothing free,
 * never before.
 *
 * Leaks.  Each connection carries its current lease: when and where it was
 * acquired, under a seqlock (lease odd while being written) so that the
 * sweep, reading under the lock while the holder runs free, sees a
 * consistent pair.  Released connections carry acquired_us = INT64_MAX.  A
 * lease is reported once: the sweep records its number in leak_lease.
 *
 * Failing connects.  After a connect fails, nobody opens another before
 * create_retry_us (backoff 50 ms doubling to 2 s, reset by a success), so a
 * database that is down costs a few attempts per second, not a spin of every
 * waiter.  Waiters that could open one wake at that time by themselves.
 *
 * Housekeeping (weir_dbpool_housekeep; the housekeeper thread runs it every
 * WEIR_DBPOOL_HOUSEKEEP_MS): under the lock, reserve every IDLE slot, retire
 * those past their lifetime or (least recently used first, down to
 * min_idle) past the idle timeout, give the others back, and read the
 * leases of IN USE slots; then, unlocked, log and close; then refill to
 * min_idle one connection at a time.  Connections in use past their
 * lifetime are retired when released.
 *
 * Clocks.  Lifetimes, idle times, the validation window and lease times use
 * the pool clock: the injected one, else CLOCK_MONOTONIC_COARSE.  The
 * acquire deadline and the acquire-time histogram use CLOCK_MONOTONIC,
 * because a thread can only sleep on real time (a frozen test clock cannot
 * make acquire hang), and are read only once an acquire has to wait.
 */
#include "control/dbpool/driver.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libavutil/error.h>

#include "core/log.h"

enum slot_state {
    S_EMPTY = 0,
    S_IDLE,
    S_IN_USE,
    S_RESERVED,
};

#define WAIT_HANDOFF_US 1000            /* a waiter this old is handed connections */
#define BACKOFF_MIN_US  50000
#define BACKOFF_MAX_US  2000000
#define LEAKS_PER_SWEEP 16              /* logged per housekeep; the rest next time */
#define NOT_HELD        INT64_MAX       /* acquired_us of a released connection */

const int64_t weir_dbpool_acq_bucket_us[WEIR_DBPOOL_ACQ_BUCKETS - 1] = {
    10, 100, 1000, 10000, 100000, 1000000, 10000000,
};

static const weir_dbpool_settings default_settings = {
    .min_idle = 2, .max_size = 10, .acquire_timeout = 30000, .idle_timeout = 600000,
    .max_lifetime = 1800000, .validation_timeout = 5000, .leak_threshold = 0,
};

static const weir_db_driver *const drivers[] = { &weir_db_driver_sqlite };

/* One per cache line: threads CAS different slots without false sharing. */
typedef struct slot {
    _Alignas(64) _Atomic int state;
    weir_db *db;                /* set and cleared under the lock while RESERVED */
    _Atomic uint64_t fast_acquired;     /* written by the slot's owner only */
} slot;

typedef struct waiter {
    struct waiter *prev, *next;
    pthread_cond_t cond;
    const char *site;
    int64_t since;              /* CLOCK_MONOTONIC: first queued; 0: cond not set up */
    int queued;                 /* in the pool's waiter list */
    int notified;               /* woken for an IDLE slot, has not looked yet */
    weir_db *db;                /* handed over: IN USE, lease begun */
    int slot;                   /* >= 0: a slot reserved for it to open one in */
} waiter;

struct weir_dbpool {
    slot *slots;                /* owned, s.max_size of them */
    _Atomic int nwaiting;       /* waiters queued; changed under the lock */
    weir_clock clock;
    weir_dbpool_settings s;     /* copy; s.url unused */
    const weir_db_driver *drv;

    pthread_mutex_t lock;
    pthread_condattr_t cattr;   /* CLOCK_MONOTONIC, for every condition here */
    char *url;                  /* owned; for the driver only */
    char *url_log;              /* owned; redacted */

    /* guarded by lock */
    waiter *wait_head, *wait_tail;
    int ntotal, npending, nclosing;
    int closing;
    int64_t create_retry_us;    /* CLOCK_MONOTONIC; no connect before it */
    int64_t backoff_us;
    uint64_t rng;
    int *scratch;               /* owned, s.max_size: the sweep's list */
    weir_dbpool_stats c;        /* counters; gauges are filled in by stats_get */

    pthread_t hk;
    int hk_started;
    pthread_cond_t hk_wake;
    int64_t hk_period_us;
};

/* The slot this thread took last (any pool: only a hint). */
static _Thread_local int last_slot;

/* ---- clocks -------------------------------------------------------------- */

/* The default pool clock.  What it times needs milliseconds at best, and it
 * is read twice per acquire/release cycle: the coarse clock costs 3 ns a
 * read here against 26 ns for CLOCK_MONOTONIC (kvm-clock). */
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

/* splitmix64: spreads lifetimes; not security-relevant.  Lock held. */
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

/* ---- leases -------------------------------------------------------------- */

/* Writes the lease (owner only): acquired_us = at (NOT_HELD to end it). */
static void lease_write(weir_db *db, int64_t at, const char *site)
{
    uint64_t l = atomic_load_explicit(&db->lease, memory_order_relaxed);

    atomic_store_explicit(&db->lease, l + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&db->acquired_us, at, memory_order_relaxed);
    atomic_store_explicit(&db->site, site, memory_order_relaxed);
    atomic_store_explicit(&db->lease, l + 2, memory_order_release);
}

/* Reads another thread's lease.  0 if it was being written. */
static int lease_read(weir_db *db, uint64_t *lease, int64_t *at, const char **site)
{
    uint64_t l1 = atomic_load_explicit(&db->lease, memory_order_acquire), l2;

    *at = atomic_load_explicit(&db->acquired_us, memory_order_relaxed);
    *site = atomic_load_explicit(&db->site, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    l2 = atomic_load_explicit(&db->lease, memory_order_relaxed);
    *lease = l1;
    return l1 == l2 && !(l1 & 1);
}

/* ---- waiters (lock held) ------------------------------------------------- */

/* front: a waiter that had its turn and lost what it took (a broken or
 * expired connection, a failed connect) goes back to the head. */
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
    atomic_fetch_add(&p->nwaiting, 1);      /* seq_cst: see "Waiting" */
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
    atomic_fetch_sub(&p->nwaiting, 1);
}

/* An IDLE slot appeared: wake the first waiter not woken yet. */
static void notify_one(weir_dbpool *p)
{
    for (waiter *w = p->wait_head; w; w = w->next) {
        if (!w->notified) {
            w->notified = 1;
            pthread_cond_signal(&w->cond);
            return;
        }
    }
}

/* ---- slots --------------------------------------------------------------- */

static int try_take(slot *s)
{
    int idle = S_IDLE;
    return atomic_load(&s->state) == S_IDLE &&
           atomic_compare_exchange_strong(&s->state, &idle, S_IN_USE);
}

/* Takes an IDLE slot: its connection is then ours (lease not begun).  Any
 * thread, lock or not. */
static weir_db *borrow(weir_dbpool *p)
{
    int n = (int)p->s.max_size, hint = last_slot;

    if (hint < n && try_take(&p->slots[hint]))
        return p->slots[hint].db;
    for (int i = 0; i < n; i++) {
        if (try_take(&p->slots[i])) {
            last_slot = i;
            return p->slots[i].db;
        }
    }
    return NULL;
}

/* Room for one more connection: an EMPTY slot becomes RESERVED for the
 * caller to open one in.  Lock held; ntotal < max_size. */
static int reserve_slot(weir_dbpool *p)
{
    for (int i = 0; i < p->s.max_size; i++) {
        if (atomic_load(&p->slots[i].state) == S_EMPTY) {
            atomic_store(&p->slots[i].state, S_RESERVED);
            p->ntotal++;
            p->npending++;
            return i;
        }
    }
    assert(!"ntotal < max_size but no EMPTY slot");
    return -1;
}

/* Room below max_size appeared: reserve it for the oldest waiters. */
static void room_freed(weir_dbpool *p)
{
    while (p->wait_head && p->ntotal < p->s.max_size &&
           weir_clock_mono_us() >= p->create_retry_us) {
        waiter *w = p->wait_head;
        waiter_remove(p, w);
        w->slot = reserve_slot(p);
        pthread_cond_signal(&w->cond);
    }
}

/* The owner of a RESERVED or IN USE slot gives its connection (released,
 * lease ended) to the oldest waiter if it has waited long, else makes it
 * IDLE and wakes a waiter.  Lock held. */
static void give_locked(weir_dbpool *p, weir_db *db, int64_t now)
{
    waiter *w = p->wait_head;
    slot *s = &p->slots[db->slot];

    if (w && weir_clock_mono_us() - w->since >= WAIT_HANDOFF_US) {
        waiter_remove(p, w);
        lease_write(db, now, w->site);
        atomic_store(&s->state, S_IN_USE);
        w->db = db;
        pthread_cond_signal(&w->cond);
        return;
    }
    atomic_store(&s->state, S_IDLE);
    notify_one(p);
}

/* ---- opening and closing ------------------------------------------------- */

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

/* Opens a connection in a slot the caller reserved.  Lock held on entry and
 * on return, dropped in between.  On success the slot holds it, still
 * RESERVED and owned by the caller; on failure the slot is EMPTY again. */
static int open_slot_locked(weir_dbpool *p, int idx, weir_db **out)
{
    int64_t life = p->s.max_lifetime * 1000, now;
    weir_db *db;
    int r;

    pthread_mutex_unlock(&p->lock);
    r = conn_open(p, &db);
    pthread_mutex_lock(&p->lock);
    p->npending--;
    if (r < 0) {
        atomic_store(&p->slots[idx].state, S_EMPTY);
        p->ntotal--;
        p->c.connect_failures++;
        p->backoff_us = p->backoff_us ? p->backoff_us * 2 : BACKOFF_MIN_US;
        if (p->backoff_us > BACKOFF_MAX_US)
            p->backoff_us = BACKOFF_MAX_US;
        p->create_retry_us = weir_clock_mono_us() + p->backoff_us;
        room_freed(p);
        return r;
    }
    now = now_us(p);
    db->pool = p;
    db->slot = idx;
    db->created_us = now;
    db->last_used_us = now;
    db->expires_us = INT64_MAX;
    if (life > 0)
        db->expires_us = now + life - (int64_t)(next_rand(p) % (uint64_t)(life / 40 + 1));
    atomic_init(&db->lease, 0);
    atomic_init(&db->acquired_us, NOT_HELD);
    atomic_init(&db->site, NULL);
    atomic_init(&db->leak_lease, 0);
    p->slots[idx].db = db;
    p->c.created++;
    p->backoff_us = 0;
    *out = db;
    return 0;
}

static void conn_close(weir_db *db)
{
    db->drv->disconnect(db->conn);
    free(db);
}

/* Closes the connection of a slot RESERVED for closing (counted in
 * nclosing), then frees the slot.  Lock not held. */
static void retire_finish(weir_dbpool *p, weir_db *db)
{
    int idx = db->slot;

    conn_close(db);
    pthread_mutex_lock(&p->lock);
    p->slots[idx].db = NULL;
    atomic_store(&p->slots[idx].state, S_EMPTY);
    p->nclosing--;
    p->ntotal--;
    p->c.closed++;
    room_freed(p);
    pthread_mutex_unlock(&p->lock);
}

/* Closes a connection the caller holds (IN USE).  Lock not held. */
static void retire(weir_dbpool *p, weir_db *db, int failed_validation)
{
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->slots[db->slot].state, S_RESERVED);
    p->nclosing++;
    p->c.validation_failures += (uint64_t)failed_validation;
    pthread_mutex_unlock(&p->lock);
    retire_finish(p, db);
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

/* A connection just taken from an IDLE slot (lease begun): usable, or
 * retired.  Lock not held.  0: keep it. */
static int check_taken(weir_dbpool *p, weir_db *db, int64_t now)
{
    int r;

    if (now >= db->expires_us) {
        retire(p, db, 0);
        return AVERROR(ESTALE);
    }
    if (now - db->last_used_us < WEIR_DBPOOL_VALIDATE_AFTER_MS * 1000 || !p->drv->validate)
        return 0;
    if ((r = p->drv->validate(db->conn, p->s.validation_timeout)) < 0) {
        weir_log_warn("dbpool", "idle connection failed validation; replacing it",
                      WL_STR("db_error", weir_db_errmsg(db)), WL_ERR(r));
        retire(p, db, 1);
    }
    return r;
}

/* Waits for a connection or room for one.  Lock held throughout (dropped
 * only while asleep).  Returns 0 and one of: *db handed over (ready: IN
 * USE, lease begun), *db taken from an IDLE slot (to check; lease begun),
 * *idx a reserved slot to open one in; or AVERROR(ETIMEDOUT, ESHUTDOWN).
 * The waiter is out of the queue on return. */
static int wait_turn(weir_dbpool *p, waiter *w, int64_t deadline, weir_db **db,
                     int *handed, int *idx)
{
    for (;;) {
        int64_t mono, until;
        struct timespec ts;

        if (w->db) {                        /* dequeued by the giver */
            *db = w->db;
            w->db = NULL;
            *handed = 1;
            return 0;
        }
        if (w->slot >= 0) {                 /* dequeued by room_freed */
            *idx = w->slot;
            w->slot = -1;
            return 0;
        }
        if (p->closing)
            break;
        if (!w->queued) {
            if (!w->since) {
                pthread_cond_init(&w->cond, &p->cattr);
                w->since = weir_clock_mono_us();
                waiter_push(p, w, 0);
            } else {
                waiter_push(p, w, 1);
            }
        }
        /* After joining the queue: see "Waiting". */
        if ((*db = borrow(p))) {
            waiter_remove(p, w);
            lease_write(*db, now_us(p), w->site);
            return 0;
        }
        mono = weir_clock_mono_us();
        if (p->ntotal < p->s.max_size && mono >= p->create_retry_us) {
            waiter_remove(p, w);
            *idx = reserve_slot(p);
            return 0;
        }
        if (mono >= deadline)
            break;
        until = deadline;
        if (p->ntotal < p->s.max_size && p->create_retry_us < until)
            until = p->create_retry_us;
        w->notified = 0;
        abs_time(&ts, until);
        pthread_cond_timedwait(&w->cond, &p->lock, &ts);
    }
    if (w->queued)
        waiter_remove(p, w);
    return p->closing ? AVERROR(ESHUTDOWN) : AVERROR(ETIMEDOUT);
}

/* Everything but the fast path.  db: a connection the fast path took and
 * that needs checking (lease begun), or NULL. */
static int acquire_slow(weir_dbpool *p, weir_db **out, const char *site, weir_db *db)
{
    int64_t t0 = weir_clock_mono_us();
    int64_t deadline = t0 + p->s.acquire_timeout * 1000;
    waiter w = { .site = site, .slot = -1 };
    int r = 0, handed = 0, idx = -1;

    for (;;) {
        /* Unlocked: check what was taken. */
        if (db && check_taken(p, db, now_us(p)) == 0)
            break;
        db = NULL;

        pthread_mutex_lock(&p->lock);
        if (idx >= 0) {
            if ((r = open_slot_locked(p, idx, &db)) == 0) {
                lease_write(db, now_us(p), site);
                atomic_store(&p->slots[idx].state, S_IN_USE);
                last_slot = idx;
                pthread_mutex_unlock(&p->lock);
                break;
            }
            idx = -1;
        }
        r = wait_turn(p, &w, deadline, &db, &handed, &idx);
        pthread_mutex_unlock(&p->lock);
        if (r < 0 || handed)
            break;
        /* else db to check, or idx to open: round again */
    }
    if (w.since)
        pthread_cond_destroy(&w.cond);      /* out of the queue: nobody signals it */
    if (r == 0 && handed)
        last_slot = db->slot;

    pthread_mutex_lock(&p->lock);
    if (r == 0)
        count_acquire(p, weir_clock_mono_us() - t0);
    else if (r == AVERROR(ETIMEDOUT))
        p->c.timeouts++;
    pthread_mutex_unlock(&p->lock);
    if (r < 0) {
        weir_log_debug("dbpool", "no connection", WL_STR("site", site), WL_ERR(r));
        return r;
    }
    *out = db;
    return 0;
}

int weir_dbpool_acquire_at(weir_dbpool *p, weir_db **out, const char *site)
{
    int64_t now = now_us(p);
    weir_db *db = borrow(p);

    *out = NULL;
    if (db) {
        lease_write(db, now, site);
        if (now < db->expires_us &&
            now - db->last_used_us < WEIR_DBPOOL_VALIDATE_AFTER_MS * 1000) {
            slot *s = &p->slots[db->slot];
            atomic_store_explicit(&s->fast_acquired,
                                  atomic_load_explicit(&s->fast_acquired, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            *out = db;
            return 0;
        }
    }
    return acquire_slow(p, out, site, db);
}

void weir_dbpool_release(weir_dbpool *p, weir_db *db)
{
    const char *site;
    int64_t now, held_us;
    int leaked;
    slot *s;

    if (!db)
        return;
    assert(db->pool == p && atomic_load(&p->slots[db->slot].state) == S_IN_USE);
    site = atomic_load_explicit(&db->site, memory_order_relaxed);
    if (p->drv->in_transaction && p->drv->in_transaction(db->conn)) {
        int r = p->drv->rollback ? p->drv->rollback(db->conn) : AVERROR(ENOSYS);
        weir_log_warn("dbpool", "connection released inside a transaction; rolled back",
                      WL_STR("site", site));
        if (r < 0) {
            weir_dbpool_evict(p, db);
            return;
        }
    }
    now = now_us(p);
    held_us = now - atomic_load_explicit(&db->acquired_us, memory_order_relaxed);
    leaked = atomic_load(&db->leak_lease) ==
             atomic_load_explicit(&db->lease, memory_order_relaxed);
    lease_write(db, NOT_HELD, NULL);
    if (now >= db->expires_us) {
        retire(p, db, 0);
    } else {
        db->last_used_us = now;
        s = &p->slots[db->slot];
        if (atomic_load(&p->nwaiting) == 0) {
            atomic_store(&s->state, S_IDLE);    /* db is not ours from here */
            if (atomic_load(&p->nwaiting) != 0) {
                pthread_mutex_lock(&p->lock);
                notify_one(p);
                pthread_mutex_unlock(&p->lock);
            }
        } else {
            pthread_mutex_lock(&p->lock);
            give_locked(p, db, now);
            pthread_mutex_unlock(&p->lock);
        }
    }
    if (leaked)
        weir_log_info("dbpool", "leaked connection returned", WL_STR("site", site),
                      WL_INT("held_ms", held_us / 1000));
}

void weir_dbpool_evict(weir_dbpool *p, weir_db *db)
{
    if (!db)
        return;
    assert(db->pool == p && atomic_load(&p->slots[db->slot].state) == S_IN_USE);
    weir_log_info("dbpool", "connection evicted",
                  WL_STR("site", atomic_load_explicit(&db->site, memory_order_relaxed)),
                  WL_STR("db_error", weir_db_errmsg(db)));
    retire(p, db, 0);
}

/* ---- housekeeping -------------------------------------------------------- */

typedef struct leak {
    const char *site;
    int64_t held_us;
} leak;

/* Reserves every IDLE slot, moves those to retire onto *dead (through
 * ->next, counted in nclosing) and gives the others back.  Lock held. */
static void sweep_idle(weir_dbpool *p, int64_t now, weir_db **dead)
{
    int64_t idle_limit = p->s.idle_timeout * 1000;
    int *idle = p->scratch, n = 0;

    for (int i = 0; i < p->s.max_size; i++) {
        int st = S_IDLE;
        if (atomic_compare_exchange_strong(&p->slots[i].state, &st, S_RESERVED))
            idle[n++] = i;
    }
    /* Least recently used first (insertion sort: n <= max_size, rare). */
    for (int i = 1; i < n; i++) {
        int v = idle[i], j = i;
        for (; j > 0 && p->slots[idle[j - 1]].db->last_used_us >
                        p->slots[v].db->last_used_us; j--)
            idle[j] = idle[j - 1];
        idle[j] = v;
    }
    for (int i = 0, left = n; i < n; i++) {
        weir_db *db = p->slots[idle[i]].db;
        int expired = now >= db->expires_us;
        int idled = idle_limit > 0 && left > p->s.min_idle &&
                    now - db->last_used_us >= idle_limit;
        if (expired || idled) {
            p->nclosing++;
            left--;
            db->next = *dead;
            *dead = db;
        } else {
            give_locked(p, db, now);
        }
    }
}

static int sweep_leaks(weir_dbpool *p, int64_t now, leak *out)
{
    int64_t limit = p->s.leak_threshold * 1000;
    int n = 0;

    if (limit <= 0)
        return 0;
    for (int i = 0; i < p->s.max_size && n < LEAKS_PER_SWEEP; i++) {
        weir_db *db;
        uint64_t lease, seen;
        int64_t at;
        const char *site;

        if (atomic_load(&p->slots[i].state) != S_IN_USE)
            continue;
        db = p->slots[i].db;        /* alive: freeing it needs this lock */
        if (!lease_read(db, &lease, &at, &site) || at == NOT_HELD || now - at < limit)
            continue;
        seen = atomic_load(&db->leak_lease);
        if (seen == lease || !atomic_compare_exchange_strong(&db->leak_lease, &seen, lease))
            continue;
        p->c.leaks++;
        out[n].site = site;
        out[n].held_us = now - at;
        n++;
    }
    return n;
}

/* Opens connections until min_idle are IDLE (within max_size), one at a
 * time.  Lock held.  Returns the first error. */
static int refill_locked(weir_dbpool *p)
{
    int idle = 0, want;

    if (p->closing || weir_clock_mono_us() < p->create_retry_us)
        return 0;
    for (int i = 0; i < p->s.max_size; i++)
        idle += atomic_load(&p->slots[i].state) == S_IDLE;
    want = (int)p->s.min_idle - idle - p->npending;
    while (want-- > 0 && p->ntotal < p->s.max_size) {
        weir_db *db;
        int r, idx = reserve_slot(p);
        if ((r = open_slot_locked(p, idx, &db)) < 0)
            return r;
        give_locked(p, db, now_us(p));
    }
    return 0;
}

void weir_dbpool_housekeep(weir_dbpool *p)
{
    leak leaks[LEAKS_PER_SWEEP];
    weir_db *dead = NULL, *db;
    int64_t now = now_us(p);
    int nleaks;

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
        retire_finish(p, db);
    }
    /* After the retirements, whose places are free only now. */
    pthread_mutex_lock(&p->lock);
    refill_locked(p);
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
    p->slots = aligned_alloc(_Alignof(slot), (size_t)p->s.max_size * sizeof *p->slots);
    p->scratch = calloc((size_t)p->s.max_size, sizeof *p->scratch);
    if (!p->slots || !p->scratch) {
        r = AVERROR(ENOMEM);
        goto fail;
    }
    for (int i = 0; i < p->s.max_size; i++) {
        atomic_init(&p->slots[i].state, S_EMPTY);
        p->slots[i].db = NULL;
        atomic_init(&p->slots[i].fast_acquired, 0);
    }
    if (!(p->drv = opts->driver ? opts->driver : driver_for(opts->url))) {
        weir_log_error("dbpool", "no database driver for this URL",
                       WL_STR("url", p->url_log));
        r = AVERROR(ENOSYS);
        goto fail;
    }
    pthread_mutex_lock(&p->lock);
    r = refill_locked(p);
    pthread_mutex_unlock(&p->lock);
    if (r < 0)
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
    uint64_t fast = 0;
    int active = 0;

    pthread_mutex_lock(&p->lock);
    *st = p->c;
    for (int i = 0; i < p->s.max_size; i++) {
        active += atomic_load(&p->slots[i].state) == S_IN_USE;
        fast += atomic_load_explicit(&p->slots[i].fast_acquired, memory_order_relaxed);
    }
    st->acquired += fast;
    st->acquire_us_buckets[0] += fast;
    st->total = p->ntotal;
    st->pending = p->npending;
    st->closing = p->nclosing;
    st->active = active;
    st->idle = p->ntotal - active - p->npending - p->nclosing;
    st->waiting = atomic_load(&p->nwaiting);
    pthread_mutex_unlock(&p->lock);
}

void weir_dbpool_close(weir_dbpool *p)
{
    int active = 0;

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

    for (int i = 0; p->slots && i < p->s.max_size; i++) {
        int st = S_IDLE;
        if (atomic_compare_exchange_strong(&p->slots[i].state, &st, S_RESERVED)) {
            conn_close(p->slots[i].db);
            p->slots[i].db = NULL;
        } else if (st != S_EMPTY) {
            active++;
        }
    }
    if (active)
        weir_log_error("dbpool", "pool closed with connections still in use; leaving them open",
                       WL_INT("in_use", active));
    if (p->drv)
        weir_log_debug("dbpool", "database pool closed", WL_STR("url", p->url_log));
    pthread_cond_destroy(&p->hk_wake);
    pthread_condattr_destroy(&p->cattr);
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p->scratch);
    free(p->url);
    free(p->url_log);
    free(p);
}
