/*
 * bench/dbpool_bench.c — the cost of one acquire/release cycle of weir's
 * connection pool, against a stub driver (no database: the pool alone).
 *
 * There is no C HikariCP to run beside it, so the peer is the pool anyone
 * would write first: one mutex, one condition variable, a free list; no
 * timeouts, lifetimes, validation, leak tracking, statistics or fairness.
 * What weir pays for those shows as a ratio below 1.
 *
 * Scenarios (each the median of RUNS runs, weir and peer alternating):
 *   uncontended   1 thread, 16 connections
 *   32t_16c       32 threads sharing 16 connections (DESIGN: more workers
 *                 than connections is the normal case)
 *   32t_4c        32 threads on 4 connections: most acquisitions wait, so
 *                 this measures the hand-off path
 *
 * Prints "dbpool_<scenario>: weir=Xns peer=Yns ratio=Z" (ns per cycle,
 * wall time / total cycles; ratio = peer/weir, above 1: weir faster).
 *
 * Built and run by bench/dbpool.py, or by hand:
 *   cc -std=c11 -O2 -D_GNU_SOURCE -I. bench/dbpool_bench.c control/dbpool/pool.c \
 *      control/dbpool/db.c control/dbpool/db_sqlite.c control/dbpool/settings.c \
 *      core/log.c core/clock.c $(pkg-config --cflags --libs sqlite3 libavutil) \
 *      -lpthread -o /tmp/dbpool_bench && /tmp/dbpool_bench
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "core/clock.h"
#include "core/log.h"
#include "control/dbpool/dbpool.h"
#include "control/dbpool/driver.h"

#define RUNS 7
#define MAX_CONNS 64

/* ---- the stub driver ----------------------------------------------------- */

static int stub_connect(const char *url, int64_t timeout_ms, void **out, char *err, size_t cap)
{
    (void)url;
    (void)timeout_ms;
    (void)err;
    (void)cap;
    *out = malloc(64);
    return *out ? 0 : AVERROR(ENOMEM);
}

static void stub_disconnect(void *conn)
{
    free(conn);
}

static int stub_validate(void *conn, int64_t timeout_ms)
{
    (void)conn;
    (void)timeout_ms;
    return 0;
}

static const char *const stub_schemes[] = { "stub", NULL };

static const weir_db_driver stub = {
    .name = "stub", .schemes = stub_schemes, .connect = stub_connect,
    .disconnect = stub_disconnect, .validate = stub_validate,
};

/* ---- the peer: a naive pool ---------------------------------------------- */

typedef struct naive_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    void *free[MAX_CONNS];
    int nfree;
} naive_pool;

static void naive_init(naive_pool *p, int conns)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->nfree = 0;
    for (int i = 0; i < conns; i++)
        stub_connect("", 0, &p->free[p->nfree++], NULL, 0);
}

static void *naive_acquire(naive_pool *p)
{
    void *c;
    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0)
        pthread_cond_wait(&p->freed, &p->lock);
    c = p->free[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    return c;
}

static void naive_release(naive_pool *p, void *c)
{
    pthread_mutex_lock(&p->lock);
    p->free[p->nfree++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

static void naive_free(naive_pool *p)
{
    for (int i = 0; i < p->nfree; i++)
        free(p->free[i]);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
}

/* ---- the runs ------------------------------------------------------------ */

typedef struct run {
    int use_weir;
    weir_dbpool *weir;
    naive_pool naive;
    long cycles;                /* per thread */
    pthread_barrier_t start;
    volatile int sink;
} run;

static void *worker(void *arg)
{
    run *r = arg;

    pthread_barrier_wait(&r->start);
    if (r->use_weir) {
        for (long i = 0; i < r->cycles; i++) {
            weir_db *db;
            if (weir_dbpool_acquire(r->weir, &db) < 0)
                abort();
            weir_dbpool_release(r->weir, db);
        }
    } else {
        for (long i = 0; i < r->cycles; i++) {
            void *c = naive_acquire(&r->naive);
            naive_release(&r->naive, c);
        }
    }
    return NULL;
}

/* ns per cycle for one run. */
static double one_run(int use_weir, int threads, int conns, long total_cycles)
{
    static run r;
    pthread_t th[64];
    int64_t t0, t1;

    memset(&r, 0, sizeof r);
    r.use_weir = use_weir;
    r.cycles = total_cycles / threads;
    if (use_weir) {
        weir_dbpool_settings s = {
            .min_idle = conns, .max_size = conns, .acquire_timeout = 60000,
            .idle_timeout = 600000, .max_lifetime = 1800000, .validation_timeout = 5000,
        };
        if (weir_dbpool_open(&(weir_dbpool_opts){ .url = "stub:", .settings = &s,
                                                  .driver = &stub }, &r.weir) < 0)
            abort();
    } else {
        naive_init(&r.naive, conns);
    }
    pthread_barrier_init(&r.start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, &r);
    pthread_barrier_wait(&r.start);
    t0 = weir_clock_mono_us();
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    t1 = weir_clock_mono_us();
    pthread_barrier_destroy(&r.start);
    if (use_weir)
        weir_dbpool_close(r.weir);
    else
        naive_free(&r.naive);
    return (double)(t1 - t0) * 1000.0 / (double)(r.cycles * threads);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void scenario(const char *name, int threads, int conns, long total_cycles)
{
    double w[RUNS], n[RUNS];

    one_run(1, threads, conns, total_cycles / 10);      /* warm up */
    one_run(0, threads, conns, total_cycles / 10);
    for (int i = 0; i < RUNS; i++) {
        w[i] = one_run(1, threads, conns, total_cycles);
        n[i] = one_run(0, threads, conns, total_cycles);
    }
    qsort(w, RUNS, sizeof w[0], cmp_double);
    qsort(n, RUNS, sizeof n[0], cmp_double);
    printf("dbpool_%s: weir=%.1fns peer=%.1fns ratio=%.2f  (median of %d; %d thread%s,"
           " %d connections, peer: mutex+condvar free list)\n",
           name, w[RUNS / 2], n[RUNS / 2], n[RUNS / 2] / w[RUNS / 2], RUNS, threads,
           threads == 1 ? "" : "s", conns);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? atol(argv[1]) : 1000000;

    weir_log_set_level(WEIR_LOG_WARN);
    scenario("uncontended", 1, 16, cycles);
    scenario("32t_16c", 32, 16, cycles);
    scenario("32t_4c", 32, 4, cycles / 4);
    return 0;
}
