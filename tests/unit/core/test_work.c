/*
 * Unit tests for core/work: the pool for blocking work, without a loop
 * (done on the worker) and with a real weir_loop (done on the loop thread).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <libavutil/error.h>

#include "core/core.h"
#include "core/work.h"

/* A gate a job can block on until the test opens it. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    int entered;                /* jobs that reached the gate */
} gate;

static gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

static void gate_pass(void)
{
    pthread_mutex_lock(&g.lock);
    g.entered++;
    pthread_cond_broadcast(&g.cond);
    while (!g.open)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
}

static void gate_wait_entered(int n)
{
    pthread_mutex_lock(&g.lock);
    while (g.entered < n)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&g.lock);
    g.open = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

typedef struct job {
    int id;
    atomic_int ran, done;
    pthread_t run_thread, done_thread;
    int order;                  /* position in which run started */
} job;

static atomic_int run_seq;
static atomic_int dones;

static void job_run(void *arg)
{
    job *j = arg;
    j->run_thread = pthread_self();
    j->order = atomic_fetch_add(&run_seq, 1);
    atomic_fetch_add(&j->ran, 1);
}

static void job_done(void *arg)
{
    job *j = arg;
    cr_assert_eq(atomic_load(&j->ran), 1, "done before run");
    j->done_thread = pthread_self();
    atomic_fetch_add(&j->done, 1);
    atomic_fetch_add(&dones, 1);
}

static void gated_run(void *arg)
{
    gate_pass();
    job_run(arg);
}

Test(work, runs_every_job_then_done_on_the_worker)
{
    enum { N = 200 };
    static job jobs[N];
    weir_work *w = weir_work_new(NULL, 3, 0);

    cr_assert_not_null(w);
    for (int i = 0; i < N; i++)
        cr_assert_eq(weir_work_submit(w, job_run, job_done, &jobs[i]), 0);
    weir_work_free(w);     /* drains: every job ran and finished */
    for (int i = 0; i < N; i++) {
        cr_assert_eq(atomic_load(&jobs[i].ran), 1);
        cr_assert_eq(atomic_load(&jobs[i].done), 1);
        cr_assert(pthread_equal(jobs[i].run_thread, jobs[i].done_thread));
        cr_assert(!pthread_equal(jobs[i].run_thread, pthread_self()));
    }
}

Test(work, one_thread_starts_jobs_in_order_and_done_may_be_null)
{
    enum { N = 50 };
    static job jobs[N];
    weir_work *w = weir_work_new(NULL, 1, 0);

    for (int i = 0; i < N; i++)
        cr_assert_eq(weir_work_submit(w, job_run, NULL, &jobs[i]), 0);
    weir_work_free(w);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].order, i);
        cr_assert_eq(atomic_load(&jobs[i].done), 0);
    }
}

Test(work, full_queue_refuses_with_eagain)
{
    static job blocker, q1, q2, extra;
    weir_work *w = weir_work_new(NULL, 1, 2);

    cr_assert_eq(weir_work_submit(w, gated_run, job_done, &blocker), 0);
    gate_wait_entered(1);                   /* the only worker is busy */
    cr_assert_eq(weir_work_submit(w, job_run, job_done, &q1), 0);
    cr_assert_eq(weir_work_submit(w, job_run, job_done, &q2), 0);
    cr_assert_eq(weir_work_queued(w), 2);
    cr_assert_eq(weir_work_submit(w, job_run, job_done, &extra), AVERROR(EAGAIN));
    gate_open();
    weir_work_free(w);
    cr_assert_eq(atomic_load(&q1.done) + atomic_load(&q2.done) + atomic_load(&blocker.done), 3);
    cr_assert_eq(atomic_load(&extra.ran), 0);
}

Test(work, bad_sizes_are_refused)
{
    cr_assert_null(weir_work_new(NULL, 0, 0));
    cr_assert_null(weir_work_new(NULL, 1, -1));
    weir_work_free(NULL);
}

/* After free has begun, submit says ESHUTDOWN, from a job as from outside,
 * and what was queued before still runs. */
typedef struct resubmit {
    weir_work *w;
    int r;
} resubmit;

static void resubmit_run(void *arg)
{
    resubmit *rs = arg;
    gate_pass();
    static job never;
    rs->r = weir_work_submit(rs->w, job_run, NULL, &never);
}

static void *free_thread(void *arg)
{
    weir_work_free(arg);
    return NULL;
}

Test(work, submit_after_free_began_is_eshutdown)
{
    static job queued[20];
    resubmit rs = { 0 };
    pthread_t t;
    int r, n = 0;

    rs.w = weir_work_new(NULL, 1, 0);
    cr_assert_eq(weir_work_submit(rs.w, resubmit_run, NULL, &rs), 0);
    gate_wait_entered(1);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(weir_work_submit(rs.w, job_run, job_done, &queued[i]), 0);
    cr_assert_eq(pthread_create(&t, NULL, free_thread, rs.w), 0);
    /* The pool cannot be freed while its job waits at the gate, so polling
     * it until free has begun is safe.  Jobs accepted meanwhile still run;
     * once the queue is full, EAGAIN until free begins. */
    static job late[WEIR_WORK_QUEUE_DEFAULT];
    while ((r = weir_work_submit(rs.w, job_run, NULL, &late[n])) == 0 || r == AVERROR(EAGAIN))
        if (r == 0)
            n++;
    cr_assert_eq(r, AVERROR(ESHUTDOWN));
    gate_open();
    pthread_join(t, NULL);
    cr_assert_eq(rs.r, AVERROR(ESHUTDOWN));
    for (int i = 0; i < 20; i++)
        cr_assert_eq(atomic_load(&queued[i].done), 1);
    for (int i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&late[i].ran), 1);
}

/* With a loop, done runs on the loop thread (this one). */
typedef struct loop_ctx {
    weir_loop *loop;
    weir_timer guard;
    int target;
} loop_ctx;

static loop_ctx lc;

static void loop_done(void *arg)
{
    job_done(arg);
    if (atomic_load(&dones) == lc.target)
        weir_loop_stop(lc.loop);
}

static void on_guard(weir_timer *t)
{
    weir_loop_stop(t->loop);
}

Test(work, done_runs_on_the_loop)
{
    enum { N = 100 };
    static job jobs[N];
    weir_work *w;

    atomic_store(&dones, 0);
    lc.loop = weir_loop_new(NULL);
    lc.target = N;
    cr_assert_not_null(lc.loop);
    w = weir_work_new(lc.loop, 2, 0);
    cr_assert_not_null(w);
    weir_timer_start(lc.loop, &lc.guard, 5 * 1000000, on_guard);
    for (int i = 0; i < N; i++)
        cr_assert_eq(weir_work_submit(w, job_run, loop_done, &jobs[i]), 0);
    weir_loop_run(lc.loop);
    weir_timer_stop(&lc.guard);
    cr_assert_eq(atomic_load(&dones), N, "only %d of %d completions", atomic_load(&dones), N);
    for (int i = 0; i < N; i++) {
        cr_assert(pthread_equal(jobs[i].done_thread, pthread_self()));
        cr_assert(!pthread_equal(jobs[i].run_thread, pthread_self()));
    }
    weir_work_free(w);
    weir_loop_free(lc.loop);
}

/* Completions of jobs still queued at free are posted, and the loop runs
 * them as it is freed: none is lost. */
Test(work, free_then_loop_free_runs_pending_completions)
{
    enum { N = 50 };
    static job jobs[N];
    weir_loop *loop = weir_loop_new(NULL);
    weir_work *w = weir_work_new(loop, 2, 0);

    atomic_store(&dones, 0);
    lc.target = -1;
    for (int i = 0; i < N; i++)
        cr_assert_eq(weir_work_submit(w, job_run, job_done, &jobs[i]), 0);
    weir_work_free(w);
    cr_assert_eq(atomic_load(&dones), 0, "a done ran off the loop");
    weir_loop_free(loop);
    cr_assert_eq(atomic_load(&dones), N);
}

/* A completion run as the loop is freed may submit again (the recorder
 * writes its asset.json when its last segment write is done): after
 * weir_work_stop it gets ESHUTDOWN from a pool that still exists, and the
 * pool is freed after the loop.  (Freeing the pool before the loop made
 * that submit a use-after-free under ASan.) */
typedef struct chained {
    weir_work *w;
    int r;
    int ran;
} chained;

static void chained_done(void *arg)
{
    chained *c = arg;
    static job never;
    c->ran = 1;
    c->r = weir_work_submit(c->w, job_run, NULL, &never);
}

static void noop_run(void *arg) { (void)arg; }

Test(work, a_completion_run_as_the_loop_is_freed_may_still_submit)
{
    weir_loop *loop = weir_loop_new(NULL);
    chained c = { 0 };

    c.w = weir_work_new(loop, 1, 0);
    cr_assert_not_null(c.w);
    cr_assert_eq(weir_work_submit(c.w, noop_run, chained_done, &c), 0);
    weir_work_stop(c.w);
    weir_work_stop(c.w);            /* twice is fine */
    cr_assert_eq(c.ran, 0, "done ran off the loop");
    weir_loop_free(loop);
    cr_assert_eq(c.ran, 1);
    cr_assert_eq(c.r, AVERROR(ESHUTDOWN));
    weir_work_free(c.w);
}
