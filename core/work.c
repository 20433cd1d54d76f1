/*
 * core/work.c — the pool for blocking work.  The job life cycle and the
 * invariants callers see are in work.h; this file adds how they are kept.
 *
 * One mutex guards the queue, its length and the stopping flag; one
 * condition variable wakes idle workers.  A job is a small heap node, taken
 * off the queue under the lock and run outside it.  Completion is handed to
 * the loop with weir_loop_post(done, arg) directly: the node is freed before
 * run even starts, so nothing of the pool is touched on the loop.
 *
 * Shutdown: weir_work_stop sets `stopping` under the lock (so every later
 * submit sees it and gets ESHUTDOWN) and wakes every worker.  A worker exits
 * only when the queue is empty and stopping is set, so the queue drains
 * first (invariant 1); then stop joins them.  weir_work_free frees the pool
 * later, once nothing can submit any more (after the loop is freed).
 */
#include "core/work.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libavutil/error.h>

#include "core/log.h"

typedef struct work_job {
    struct work_job *next;
    void (*run)(void *arg);
    void (*done)(void *arg);
    void *arg;
} work_job;

struct weir_work {
    weir_loop *loop;            /* borrowed; NULL: done runs on the worker */
    int max_queued;

    pthread_mutex_t lock;
    pthread_cond_t wake;        /* a job was queued, or stopping was set */
    work_job *head, *tail;      /* guarded by lock */
    int queued;                 /* guarded by lock */
    int stopping;               /* guarded by lock */

    int nthreads;               /* threads started */
    pthread_t threads[];
};

/* weir_loop_post only fails on ENOMEM.  Running done here instead would
 * break the promise that it runs on the loop, so wait for memory: log once,
 * then retry with a growing pause.  A worker is allowed to block. */
static void post_done(weir_work *w, work_job *job)
{
    int64_t pause_us = 1000;
    int logged = 0;

    while (weir_loop_post(w->loop, job->done, job->arg) < 0) {
        if (!logged++)
            weir_log_error("work", "cannot post a completion to the loop; retrying",
                           WL_ERR(AVERROR(ENOMEM)));
        nanosleep(&(struct timespec){ .tv_sec = pause_us / 1000000,
                                      .tv_nsec = pause_us % 1000000 * 1000 }, NULL);
        if (pause_us < 100000)
            pause_us *= 2;
    }
}

static void *worker_main(void *arg)
{
    weir_work *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        work_job *job;

        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->head)
            break;                      /* stopping and drained */
        job = w->head;
        w->head = job->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);

        job->run(job->arg);
        if (job->done) {
            if (w->loop)
                post_done(w, job);
            else
                job->done(job->arg);
        }
        free(job);

        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

weir_work *weir_work_new(weir_loop *loop, int threads, int max_queued)
{
    weir_work *w;
    int r;

    if (threads < 1 || max_queued < 0) {
        weir_log_error("work", "bad pool size", WL_INT("threads", threads),
                       WL_INT("max_queued", max_queued));
        return NULL;
    }
    w = calloc(1, sizeof *w + (size_t)threads * sizeof w->threads[0]);
    if (!w)
        goto fail_nomem;
    w->loop = loop;
    w->max_queued = max_queued ? max_queued : WEIR_WORK_QUEUE_DEFAULT;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        goto fail_nomem;
    }
    if (pthread_cond_init(&w->wake, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        goto fail_nomem;
    }
    for (; w->nthreads < threads; w->nthreads++) {
        char name[16];
        if ((r = pthread_create(&w->threads[w->nthreads], NULL, worker_main, w)) != 0) {
            weir_log_error("work", "cannot start a worker thread", WL_ERR(AVERROR(r)));
            weir_work_free(w);          /* joins those already started */
            return NULL;
        }
        snprintf(name, sizeof name, "weir-work-%d", w->nthreads);
        pthread_setname_np(w->threads[w->nthreads], name);    /* cosmetic: top, gdb */
    }
    return w;

fail_nomem:
    weir_log_error("work", "cannot create the work pool", WL_ERR(AVERROR(ENOMEM)));
    return NULL;
}

int weir_work_submit(weir_work *w, void (*run)(void *arg), void (*done)(void *arg), void *arg)
{
    work_job *job = malloc(sizeof *job);
    int r = 0;

    if (!job)
        return AVERROR(ENOMEM);
    job->next = NULL;
    job->run = run;
    job->done = done;
    job->arg = arg;

    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        r = AVERROR(ESHUTDOWN);
    } else if (w->queued >= w->max_queued) {
        r = AVERROR(EAGAIN);
    } else {
        if (w->tail)
            w->tail->next = job;
        else
            w->head = job;
        w->tail = job;
        w->queued++;
        pthread_cond_signal(&w->wake);
        job = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(job);
    return r;
}

int weir_work_queued(weir_work *w)
{
    int n;
    pthread_mutex_lock(&w->lock);
    n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void weir_work_stop(weir_work *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);

    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    w->nthreads = 0;                        /* a second stop joins nothing */
    assert(!w->head && w->queued == 0);     /* the workers drained it */
}

void weir_work_free(weir_work *w)
{
    if (!w)
        return;
    weir_work_stop(w);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
