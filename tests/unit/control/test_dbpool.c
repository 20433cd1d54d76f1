/*
 * Unit tests for control/dbpool's pool, in the manner of HikariCP's: a stub
 * driver (driver.h) whose connections count their holders, and an injected
 * clock stepped by hand for lifetimes, idle times and leaks.  Acquire
 * timeouts are real time by design (dbpool.h, invariant 3) and are measured
 * with CLOCK_MONOTONIC.  The real-SQLite tests are in test_db_sqlite.c.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>

#include "core/core.h"
#include "control/dbpool/dbpool.h"
#include "control/dbpool/driver.h"

/* ---- stub driver --------------------------------------------------------- */

typedef struct stub_conn {
    int id;
    atomic_int holders;         /* the test's own count: must stay 0 or 1 */
    atomic_int broken;          /* validate fails */
} stub_conn;

static atomic_int stub_ids;         /* ids handed out */
static atomic_int stub_open;        /* connected and not yet disconnected */
static atomic_int stub_max_open;    /* high-water mark of stub_open */
static atomic_int stub_refuse;      /* connect fails */
static atomic_int stub_connects;    /* attempts */
static atomic_int stub_validations;

static int stub_connect(const char *url, int64_t timeout_ms, void **out, char *err, size_t cap)
{
    stub_conn *c;
    int open, max;

    (void)url;
    (void)timeout_ms;
    atomic_fetch_add(&stub_connects, 1);
    if (atomic_load(&stub_refuse)) {
        snprintf(err, cap, "connection refused");
        return AVERROR(ECONNREFUSED);
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return AVERROR(ENOMEM);
    c->id = atomic_fetch_add(&stub_ids, 1) + 1;
    open = atomic_fetch_add(&stub_open, 1) + 1;
    max = atomic_load(&stub_max_open);
    while (open > max && !atomic_compare_exchange_weak(&stub_max_open, &max, open))
        ;
    *out = c;
    return 0;
}

static void stub_disconnect(void *conn)
{
    atomic_fetch_sub(&stub_open, 1);
    free(conn);
}

static int stub_validate(void *conn, int64_t timeout_ms)
{
    stub_conn *c = conn;
    (void)timeout_ms;
    atomic_fetch_add(&stub_validations, 1);
    return atomic_load(&c->broken) ? AVERROR(EIO) : 0;
}

static const char *stub_errmsg(void *conn)
{
    return atomic_load(&((stub_conn *)conn)->broken) ? "server closed the connection" : "";
}

static const char *const stub_schemes[] = { "stub", NULL };

static const weir_db_driver stub = {
    .name = "stub",
    .schemes = stub_schemes,
    .connect = stub_connect,
    .disconnect = stub_disconnect,
    .validate = stub_validate,
    .errmsg = stub_errmsg,
};

static stub_conn *sc(weir_db *db)
{
    return db->conn;
}

/* ---- injected clock, log capture ----------------------------------------- */

static _Atomic int64_t fake_us = 1000000000;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return atomic_load(&fake_us);
}

static const weir_clock fake_clock = { .now_us = fake_now, .arg = NULL };

static void advance_ms(int64_t ms)
{
    atomic_fetch_add(&fake_us, ms * 1000);
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[1 << 16];
static size_t loglen;

static void capture(void *arg, const char *line, size_t len)
{
    (void)arg;
    pthread_mutex_lock(&log_lock);
    if (loglen + len < sizeof logbuf) {
        memcpy(logbuf + loglen, line, len);
        loglen += len;
        logbuf[loglen] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

static int log_count(const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&log_lock);
    for (const char *s = logbuf; (s = strstr(s, needle)); s++)
        n++;
    pthread_mutex_unlock(&log_lock);
    return n;
}

static void capture_logs(void)
{
    loglen = 0;
    logbuf[0] = '\0';
    weir_log_set_sink(capture, NULL);
}

/* ---- helpers ------------------------------------------------------------- */

static weir_dbpool_settings settings(int min_idle, int max_size)
{
    return (weir_dbpool_settings){
        .url = "", .min_idle = min_idle, .max_size = max_size, .acquire_timeout = 5000,
        .idle_timeout = 600000, .max_lifetime = 1800000, .validation_timeout = 5000,
    };
}

static weir_dbpool *open_stub(const weir_dbpool_settings *s)
{
    weir_dbpool *p = NULL;
    int r = weir_dbpool_open(&(weir_dbpool_opts){
        .url = "stub://weir:hunter2@db.example/weir?sslmode=require&password=hunter3",
        .settings = s, .clock = &fake_clock, .driver = &stub, .housekeep_ms = -1,
    }, &p);
    cr_assert_eq(r, 0, "open: %d", r);
    return p;
}

static weir_dbpool_stats stats(weir_dbpool *p)
{
    weir_dbpool_stats st;
    weir_dbpool_stats_get(p, &st);
    return st;
}

static int64_t mono_ms(void)
{
    return weir_clock_mono_us() / 1000;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L }, NULL);
}

/* Waits (real time, bounded) until n callers are blocked in acquire. */
static void wait_for_waiters(weir_dbpool *p, int n)
{
    for (int i = 0; i < 5000 && stats(p).waiting < n; i++)
        sleep_ms(1);
    cr_assert_eq(stats(p).waiting, n);
}

/* ---- opening ------------------------------------------------------------- */

Test(dbpool, open_makes_min_idle_and_close_closes_all)
{
    weir_dbpool_settings s = settings(3, 5);
    weir_dbpool *p = open_stub(&s);
    weir_dbpool_stats st = stats(p);

    cr_assert_eq(st.idle, 3);
    cr_assert_eq(st.total, 3);
    cr_assert_eq(st.created, 3);
    cr_assert_eq(atomic_load(&stub_open), 3);
    weir_dbpool_close(p);
    cr_assert_eq(atomic_load(&stub_open), 0);
    weir_dbpool_close(NULL);
}

Test(dbpool, bad_settings_unknown_scheme_and_refused_connect)
{
    weir_dbpool_settings s = settings(1, 0);
    weir_dbpool *p = (weir_dbpool *)1;

    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "stub:x", .settings = &s,
                                                      .driver = &stub }, &p), AVERROR(EINVAL));
    cr_assert_null(p);
    s = settings(1, 2);
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "", .settings = &s,
                                                      .driver = &stub }, &p), AVERROR(EINVAL));
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "mysql://h/db", .settings = &s },
                                  &p), AVERROR(ENOSYS));
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "no-scheme", .settings = &s },
                                  &p), AVERROR(ENOSYS));
    atomic_store(&stub_refuse, 1);
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "stub:x", .settings = &s,
                                                      .driver = &stub }, &p),
                 AVERROR(ECONNREFUSED));
    cr_assert_null(p);
}

Test(dbpool, min_idle_above_max_size_is_clamped)
{
    weir_dbpool_settings s = settings(8, 3);
    weir_dbpool *p = open_stub(&s);
    cr_assert_eq(stats(p).total, 3);
    weir_dbpool_close(p);
}

Test(dbpool, url_password_never_logged)
{
    weir_dbpool_settings s = settings(1, 2);
    weir_dbpool *p;

    capture_logs();
    p = open_stub(&s);
    weir_dbpool_close(p);
    atomic_store(&stub_refuse, 1);
    cr_assert_lt(weir_dbpool_open(&(weir_dbpool_opts){
        .url = "stub://alice:s3cret@h/db", .settings = &s, .driver = &stub }, &p), 0);
    weir_log_set_sink(NULL, NULL);
    cr_assert_eq(log_count("hunter"), 0, "%s", logbuf);
    cr_assert_eq(log_count("s3cret"), 0, "%s", logbuf);
    cr_assert_eq(log_count("alice"), 0, "%s", logbuf);
    cr_assert_eq(log_count("stub://[redacted]@db.example/weir?sslmode=require"
                           "&password=[redacted]"), 1, "%s", logbuf);
    cr_assert_eq(log_count("stub://[redacted]@h/db"), 1, "%s", logbuf);
}

/* ---- acquiring ----------------------------------------------------------- */

Test(dbpool, acquire_times_out_at_the_timeout_when_saturated)
{
    weir_dbpool_settings s = settings(0, 2);
    weir_dbpool *p;
    weir_db *a, *b, *c = (weir_db *)1;
    int64_t t0, elapsed;

    s.acquire_timeout = 200;
    p = open_stub(&s);
    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &b), 0);
    t0 = weir_clock_mono_us();
    cr_assert_eq(weir_dbpool_acquire(p, &c), AVERROR(ETIMEDOUT));
    elapsed = weir_clock_mono_us() - t0;
    cr_assert_null(c);
    cr_assert_geq(elapsed, 200000, "failed early: %lld us", (long long)elapsed);
    /* Generous above: two loaded cores under ASan can be slow to wake. */
    cr_assert_lt(elapsed, 1200000, "failed late: %lld us", (long long)elapsed);

    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.timeouts, 1);
    cr_assert_eq(st.active, 2);
    cr_assert_eq(st.waiting, 0);
    cr_assert_eq(st.total, 2);
    weir_dbpool_release(p, b);
    cr_assert_eq(weir_dbpool_acquire(p, &c), 0);
    cr_assert_eq(c, b);
    weir_dbpool_release(p, a);
    weir_dbpool_release(p, c);
    weir_dbpool_close(p);
}

Test(dbpool, zero_timeout_fails_at_once)
{
    weir_dbpool_settings s = settings(0, 1);
    weir_dbpool *p;
    weir_db *a, *b;
    int64_t t0;

    s.acquire_timeout = 0;
    p = open_stub(&s);
    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    t0 = mono_ms();
    cr_assert_eq(weir_dbpool_acquire(p, &b), AVERROR(ETIMEDOUT));
    cr_assert_lt(mono_ms() - t0, 50);
    weir_dbpool_release(p, a);
    weir_dbpool_close(p);
}

typedef struct taker {
    weir_dbpool *p;
    weir_db *db;
    int r;
    int64_t waited_ms;
    atomic_int *seq;
    int order;
} taker;

static void *take(void *arg)
{
    taker *t = arg;
    int64_t t0 = mono_ms();
    t->r = weir_dbpool_acquire(t->p, &t->db);
    t->waited_ms = mono_ms() - t0;
    t->order = atomic_fetch_add(t->seq, 1);
    if (t->r == 0)
        weir_dbpool_release(t->p, t->db);
    return NULL;
}

/* Waiters older than 1 ms are handed released connections, oldest first
 * (wait_for_waiters polls in 1 ms steps, so both are by the release). */
Test(dbpool, waiters_are_served_first_come_first_served)
{
    weir_dbpool_settings s = settings(1, 1);
    weir_dbpool *p = open_stub(&s);
    atomic_int seq = 0;
    taker t1 = { .p = p, .seq = &seq }, t2 = { .p = p, .seq = &seq };
    pthread_t th1, th2;
    weir_db *held, *again;

    cr_assert_eq(weir_dbpool_acquire(p, &held), 0);
    pthread_create(&th1, NULL, take, &t1);
    wait_for_waiters(p, 1);
    pthread_create(&th2, NULL, take, &t2);
    wait_for_waiters(p, 2);
    weir_dbpool_release(p, held);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    cr_assert_eq(t1.r, 0);
    cr_assert_eq(t2.r, 0);
    cr_assert_eq(t1.db, held);
    cr_assert_eq(t2.db, held);
    cr_assert_lt(t1.order, t2.order);
    cr_assert_lt(t1.waited_ms, 4000);
    /* The connection came back to the pool. */
    cr_assert_eq(weir_dbpool_acquire(p, &again), 0);
    cr_assert_eq(again, held);
    weir_dbpool_release(p, again);
    cr_assert_eq(stats(p).created, 1);
    weir_dbpool_close(p);
}

Test(dbpool, refused_connects_back_off_and_time_out)
{
    weir_dbpool_settings s = settings(0, 2);
    weir_dbpool *p;
    weir_db *db;
    int64_t t0, elapsed;
    int attempts;

    s.acquire_timeout = 300;
    p = open_stub(&s);
    atomic_store(&stub_refuse, 1);
    t0 = mono_ms();
    cr_assert_eq(weir_dbpool_acquire(p, &db), AVERROR(ETIMEDOUT));
    elapsed = mono_ms() - t0;
    attempts = atomic_load(&stub_connects);
    cr_assert_geq(elapsed, 300);
    cr_assert_lt(elapsed, 600);
    /* 0, 50, 150 ms: retried, but no spin */
    cr_assert_geq(attempts, 2, "%d", attempts);
    cr_assert_leq(attempts, 5, "%d", attempts);
    cr_assert_eq(stats(p).connect_failures, (uint64_t)attempts);
    cr_assert_eq(stats(p).total, 0);

    atomic_store(&stub_refuse, 0);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);     /* once the backoff ends */
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

/* ---- validation, eviction ------------------------------------------------ */

Test(dbpool, broken_idle_connection_is_replaced)
{
    weir_dbpool_settings s = settings(1, 2);
    weir_dbpool *p = open_stub(&s);
    weir_db *db;
    stub_conn *first;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    first = sc(db);
    weir_dbpool_release(p, db);
    /* Idle for less than the bypass window: handed out unchecked. */
    advance_ms(WEIR_DBPOOL_VALIDATE_AFTER_MS - 1);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(sc(db), first);
    cr_assert_eq(atomic_load(&stub_validations), 0);
    weir_dbpool_release(p, db);

    atomic_store(&first->broken, 1);
    advance_ms(WEIR_DBPOOL_VALIDATE_AFTER_MS);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_neq(sc(db)->id, 1);
    cr_assert_eq(atomic_load(&sc(db)->broken), 0);
    cr_assert_eq(atomic_load(&stub_validations), 1);    /* the new one was not checked */

    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.validation_failures, 1);
    cr_assert_eq(st.closed, 1);
    cr_assert_eq(st.created, 2);
    cr_assert_eq(st.total, 1);
    cr_assert_eq(atomic_load(&stub_open), 1);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(dbpool, healthy_idle_connection_is_validated_and_kept)
{
    weir_dbpool_settings s = settings(1, 1);
    weir_dbpool *p = open_stub(&s);
    weir_db *db;

    advance_ms(60000);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(sc(db)->id, 1);
    cr_assert_eq(atomic_load(&stub_validations), 1);
    weir_dbpool_release(p, db);
    cr_assert_eq(stats(p).validation_failures, 0);
    weir_dbpool_close(p);
}

Test(dbpool, evict_closes_and_next_acquire_opens_a_new_one)
{
    weir_dbpool_settings s = settings(1, 1);
    weir_dbpool *p = open_stub(&s);
    weir_db *db;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    weir_dbpool_evict(p, db);
    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.total, 0);
    cr_assert_eq(st.active, 0);
    cr_assert_eq(st.closed, 1);
    cr_assert_eq(atomic_load(&stub_open), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(sc(db)->id, 2);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(dbpool, evict_makes_room_for_a_waiter)
{
    weir_dbpool_settings s = settings(1, 1);
    weir_dbpool *p = open_stub(&s);
    atomic_int seq = 0;
    taker t = { .p = p, .seq = &seq };
    pthread_t th;
    weir_db *db;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    pthread_create(&th, NULL, take, &t);
    wait_for_waiters(p, 1);
    weir_dbpool_evict(p, db);
    pthread_join(th, NULL);
    cr_assert_eq(t.r, 0);
    cr_assert_lt(t.waited_ms, 4000);
    cr_assert_eq(stats(p).created, 2);
    weir_dbpool_close(p);
}

/* ---- housekeeping -------------------------------------------------------- */

Test(dbpool, max_lifetime_retires_each_within_its_jitter)
{
    enum { N = 10 };
    const int64_t life = 1800000, spread = life / 40;     /* 30 min, 2.5% */
    weir_dbpool_settings s = settings(N, N);
    weir_dbpool *p;
    int steps_with_retirements = 0;
    uint64_t closed = 0;

    s.idle_timeout = 0;
    s.max_lifetime = life;
    p = open_stub(&s);
    advance_ms(life - spread - 1);
    weir_dbpool_housekeep(p);
    cr_assert_eq(stats(p).closed, 0, "retired before max_lifetime - 2.5%%");
    advance_ms(1);
    /* Ten steps across the jitter range: every original goes by the end,
     * and not all in the same step. */
    for (int i = 0; i < 10; i++) {
        advance_ms(spread / 10);
        weir_dbpool_housekeep(p);
        weir_dbpool_stats st = stats(p);
        if (st.closed > closed)
            steps_with_retirements++;
        closed = st.closed;
        cr_assert_eq(st.total, N, "refilled to min_idle");
    }
    cr_assert_eq(closed, N);
    cr_assert_geq(steps_with_retirements, 2, "no jitter: all expired together");
    cr_assert_eq(stats(p).created, 2 * N);
    cr_assert_eq(atomic_load(&stub_open), N);
    weir_dbpool_close(p);
}

Test(dbpool, connection_past_its_lifetime_is_retired_on_release)
{
    weir_dbpool_settings s = settings(1, 2);
    weir_dbpool *p;
    weir_db *db;

    s.max_lifetime = 60000;
    p = open_stub(&s);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    advance_ms(60000);
    weir_dbpool_housekeep(p);                   /* in use: not touched, refill to min_idle */
    cr_assert_eq(stats(p).closed, 0);
    weir_dbpool_release(p, db);
    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.closed, 1);
    cr_assert_eq(st.total, 1);
    cr_assert_eq(atomic_load(&stub_open), 1);
    /* An idle one that expires between sweeps is not handed out either. */
    advance_ms(60000);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(sc(db)->id, 3);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(dbpool, idle_timeout_retires_least_recently_used_down_to_min_idle)
{
    enum { N = 6 };
    weir_dbpool_settings s = settings(2, N);
    weir_dbpool *p;
    weir_db *db[N];
    int ids[N];

    s.idle_timeout = 60000;
    s.max_lifetime = 0;
    p = open_stub(&s);
    for (int i = 0; i < N; i++)
        cr_assert_eq(weir_dbpool_acquire(p, &db[i]), 0);
    for (int i = 0; i < N; i++) {
        ids[i] = sc(db[i])->id;
        weir_dbpool_release(p, db[i]);
        advance_ms(1);
    }
    cr_assert_eq(stats(p).idle, N);
    advance_ms(60000 - N);              /* only the first released has idled 60 s */
    weir_dbpool_housekeep(p);
    cr_assert_eq(stats(p).idle, N - 1);
    advance_ms(10);
    weir_dbpool_housekeep(p);
    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.idle, 2);
    cr_assert_eq(st.total, 2);
    cr_assert_eq(st.closed, N - 2);
    cr_assert_eq(atomic_load(&stub_open), 2);
    /* The two kept are the two most recently used. */
    weir_db *a, *b;
    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &b), 0);
    cr_assert((sc(a)->id == ids[N - 1] && sc(b)->id == ids[N - 2]) ||
              (sc(a)->id == ids[N - 2] && sc(b)->id == ids[N - 1]),
              "kept %d and %d", sc(a)->id, sc(b)->id);
    weir_dbpool_release(p, a);
    weir_dbpool_release(p, b);
    weir_dbpool_close(p);
}

Test(dbpool, housekeep_refills_to_min_idle)
{
    weir_dbpool_settings s = settings(3, 4);
    weir_dbpool *p = open_stub(&s);
    weir_db *a, *b;

    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &b), 0);
    weir_dbpool_housekeep(p);                   /* 1 idle: room for one more */
    weir_dbpool_stats st = stats(p);
    cr_assert_eq(st.idle, 2);
    cr_assert_eq(st.total, 4);
    weir_dbpool_evict(p, a);
    weir_dbpool_evict(p, b);
    weir_dbpool_housekeep(p);
    st = stats(p);
    cr_assert_eq(st.idle, 3);
    cr_assert_eq(st.total, 3);
    weir_dbpool_close(p);
}

Test(dbpool, leak_is_logged_once_with_the_site)
{
    weir_dbpool_settings s = settings(1, 2);
    weir_dbpool *p;
    weir_db *db;
    char site[512];
    int line;

    s.leak_threshold = 2000;
    p = open_stub(&s);
    capture_logs();
    line = __LINE__ + 1;
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    snprintf(site, sizeof site, "%s:%d", __FILE__, line);
    advance_ms(1999);
    weir_dbpool_housekeep(p);
    cr_assert_eq(log_count("connection leak"), 0);
    advance_ms(2);
    weir_dbpool_housekeep(p);
    advance_ms(60000);
    weir_dbpool_housekeep(p);
    weir_dbpool_release(p, db);
    weir_log_set_sink(NULL, NULL);
    cr_assert_eq(log_count("connection leak"), 1, "%s", logbuf);
    cr_assert_eq(log_count(site), 2, "site %s: %s", site, logbuf);     /* leak + returned */
    cr_assert_eq(log_count("held_ms=2001"), 1, "%s", logbuf);
    cr_assert_eq(log_count("leaked connection returned"), 1, "%s", logbuf);
    cr_assert_eq(stats(p).leaks, 1);
    weir_dbpool_close(p);
}

Test(dbpool, housekeeper_thread_reports_leaks_in_real_time)
{
    weir_dbpool_settings s = settings(1, 2);
    weir_dbpool *p = NULL;
    weir_db *db;

    s.leak_threshold = 100;             /* housekeeper runs every 100 ms */
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "stub:x", .settings = &s,
                                                      .driver = &stub }, &p), 0);
    capture_logs();
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    for (int i = 0; i < 200 && stats(p).leaks == 0; i++)
        sleep_ms(5);
    cr_assert_eq(stats(p).leaks, 1);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);               /* stops the housekeeper */
    weir_log_set_sink(NULL, NULL);
    cr_assert_eq(log_count("connection leak"), 1, "%s", logbuf);
}

Test(dbpool, acquire_histogram_counts_every_acquisition)
{
    weir_dbpool_settings s = settings(1, 1);
    weir_dbpool *p = open_stub(&s);
    weir_db *db;
    uint64_t sum = 0;

    for (int i = 0; i < 10; i++) {
        cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
        weir_dbpool_release(p, db);
    }
    weir_dbpool_stats st = stats(p);
    for (int i = 0; i < WEIR_DBPOOL_ACQ_BUCKETS; i++)
        sum += st.acquire_us_buckets[i];
    cr_assert_eq(sum, 10);
    cr_assert_eq(st.acquired, 10);
    cr_assert_eq(weir_dbpool_acq_bucket_us[0], 10);
    cr_assert_eq(weir_dbpool_acq_bucket_us[WEIR_DBPOOL_ACQ_BUCKETS - 2], 10000000);
    weir_dbpool_close(p);
}

/* ---- many threads -------------------------------------------------------- */

enum { HAMMER_THREADS = 32, HAMMER_CONNS = 8, HAMMER_CYCLES = 100000 };

static atomic_int hammer_violations, hammer_errors, hammer_stop;

typedef struct hammer_arg {
    weir_dbpool *p;
    int cycles;
    unsigned seed;
} hammer_arg;

static void *hammer_thread(void *arg)
{
    hammer_arg *h = arg;

    for (int i = 0; i < h->cycles; i++) {
        weir_db *db;
        stub_conn *c;
        if (weir_dbpool_acquire(h->p, &db) < 0) {
            atomic_fetch_add(&hammer_errors, 1);
            continue;
        }
        c = sc(db);
        if (atomic_fetch_add(&c->holders, 1) != 0)
            atomic_fetch_add(&hammer_violations, 1);
        h->seed = h->seed * 1103515245u + 12345u;
        if ((h->seed >> 16) % 16 == 0)
            sched_yield();                  /* hold it across a switch now and then */
        if (atomic_fetch_sub(&c->holders, 1) != 1)
            atomic_fetch_add(&hammer_violations, 1);
        if ((h->seed >> 16) % 1000 == 0)
            weir_dbpool_evict(h->p, db);
        else
            weir_dbpool_release(h->p, db);
    }
    return NULL;
}

/* Steps the clock and sweeps, so connections retire (lifetime, idle) while
 * they are being used, and checks the counts on the fly. */
static void *hammer_keeper(void *arg)
{
    weir_dbpool *p = arg;

    while (!atomic_load(&hammer_stop)) {
        weir_dbpool_stats st;
        advance_ms(700);
        weir_dbpool_housekeep(p);
        weir_dbpool_stats_get(p, &st);
        if (st.total > HAMMER_CONNS ||
            st.active + st.idle + st.pending + st.closing != st.total ||
            st.active < 0 || st.idle < 0 || st.pending < 0)
            atomic_fetch_add(&hammer_violations, 1);
        sleep_ms(1);
    }
    return NULL;
}

/* threads hammer conns connections for cycles acquisitions in all, while
 * the keeper retires connections under them; then checks the books. */
static weir_dbpool_stats hammer(int threads, int conns, int cycles)
{
    weir_dbpool_settings s = settings(2, conns);
    weir_dbpool *p;
    pthread_t th[HAMMER_THREADS], keeper;
    hammer_arg args[HAMMER_THREADS];
    weir_dbpool_stats st;

    cr_assert_leq(threads, HAMMER_THREADS);
    weir_log_set_level(WEIR_LOG_WARN);  /* evictions log at info */
    s.max_lifetime = 60000;             /* the keeper's clock retires them often */
    s.idle_timeout = 10000;
    s.acquire_timeout = 30000;
    p = open_stub(&s);
    pthread_create(&keeper, NULL, hammer_keeper, p);
    for (int i = 0; i < threads; i++) {
        args[i] = (hammer_arg){ .p = p, .cycles = cycles / threads,
                                .seed = (unsigned)i * 7919u + 1 };
        pthread_create(&th[i], NULL, hammer_thread, &args[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    atomic_store(&hammer_stop, 1);
    pthread_join(keeper, NULL);

    st = stats(p);
    cr_assert_eq(atomic_load(&hammer_violations), 0);
    cr_assert_eq(atomic_load(&hammer_errors), 0);
    cr_assert_eq(st.acquired, (uint64_t)(cycles / threads * threads));
    cr_assert_eq(st.timeouts, 0);
    cr_assert_eq(st.active, 0);
    cr_assert_eq(st.waiting, 0);
    cr_assert_eq(st.pending + st.closing, 0);
    cr_assert_leq(st.total, conns);
    cr_assert_leq(atomic_load(&stub_max_open), conns);
    cr_assert_eq(st.created - st.closed, (uint64_t)st.total);
    cr_assert_eq(atomic_load(&stub_open), st.total);
    weir_dbpool_close(p);
    cr_assert_eq(atomic_load(&stub_open), 0);
    return st;
}

Test(dbpool, many_threads_never_share_a_connection)
{
    weir_dbpool_stats st = hammer(HAMMER_THREADS, HAMMER_CONNS, HAMMER_CYCLES);
    cr_assert_gt(st.closed, 50, "evictions and retirements happened: %llu",
                 (unsigned long long)st.closed);
}

/* Two connections for 16 threads: most acquisitions wait, through both the
 * normal and the hand-off path. */
Test(dbpool, many_threads_on_two_connections_take_turns)
{
    weir_dbpool_stats st = hammer(16, 2, 20000);
    uint64_t waited = 0;
    for (int i = 1; i < WEIR_DBPOOL_ACQ_BUCKETS; i++)
        waited += st.acquire_us_buckets[i];
    cr_assert_gt(waited, 0, "nobody waited");
}
