/*
 * core/work.h — the pool for blocking work (DESIGN.md §3).
 *
 * Nothing blocking may run on the I/O loop.  Database calls, file probing
 * and the like are submitted here instead: a small fixed set of threads runs
 * each job's run(arg); its done(arg) then runs back on the loop, where it may
 * touch loop-owned state (answer a deferred HTTP request, ...).
 *
 *   loop thread                  worker threads                 loop thread
 *   weir_work_submit ──> [FIFO queue, bounded] ──> run(arg) ──weir_loop_post──> done(arg)
 *
 * A job is one of:
 *
 *   QUEUED ──a worker takes it──> RUNNING ──run returns──> DONE POSTED ──loop──> freed
 *      ^                                                    (done(arg) runs there)
 *   weir_work_submit (0)
 *
 *   weir_work_submit returns AVERROR(EAGAIN) instead when max_queued jobs are
 *   already waiting (the caller sheds load: HTTP 503), and AVERROR(ESHUTDOWN)
 *   once weir_work_stop has begun.
 *
 * Invariants:
 *   1. Every accepted job runs exactly once, and its done (when not NULL)
 *      runs exactly once, after its run, even when weir_work_stop is called
 *      right after submitting: stop drains the queue before joining.
 *   2. Jobs start in submission order (FIFO); with several threads they may
 *      finish in any order.
 *   3. With a loop, done runs on the loop thread only, so a caller on the
 *      loop may submit first and then finish setting up what done needs
 *      before returning to the loop.  Without a loop, done runs on the
 *      worker and may run before weir_work_submit has returned.
 *
 * Threads inherit the creating thread's signal mask (see
 * weir_loop_watch_signals, which must come first).
 */
#ifndef WEIR_CORE_WORK_H
#define WEIR_CORE_WORK_H

#include "core/loop.h"

typedef struct weir_work weir_work;

#define WEIR_WORK_QUEUE_DEFAULT 1024    /* waiting jobs, when max_queued is 0 */

/* loop (borrowed; must outlive the pool): where done callbacks run, through
 * weir_loop_post.  NULL: done runs on the worker right after run (the CLI,
 * tests).  threads >= 1.  max_queued: jobs waiting for a worker beyond this
 * are refused; 0 means WEIR_WORK_QUEUE_DEFAULT.  NULL on failure (logged). */
weir_work *weir_work_new(weir_loop *loop, int threads, int max_queued);

/* Runs run(arg) on a worker, then done(arg) on the loop (done may be NULL).
 * Any thread.  arg is borrowed by the pool and handed to run and done: done
 * (or run, when done is NULL) owns whatever it points to.  On error nothing
 * was queued and arg is untouched.  Returns 0, AVERROR(EAGAIN) when the
 * queue is full, AVERROR(ESHUTDOWN) once weir_work_stop has begun,
 * AVERROR(ENOMEM). */
int weir_work_submit(weir_work *w, void (*run)(void *arg), void (*done)(void *arg), void *arg);

/* Number of jobs waiting for a worker (not counting those running).  Any
 * thread; a snapshot, for metrics. */
int weir_work_queued(weir_work *w);

/* Refuses new jobs, finishes every queued one (their done callbacks are
 * posted to the loop, which runs them when it next turns or as it is freed)
 * and joins the threads.  The pool stays allocated: a done callback run as
 * the loop is freed may still submit, and gets AVERROR(ESHUTDOWN).  Call it
 * from outside the pool's own jobs, before weir_loop_free.  Again: nothing.
 * NULL is fine. */
void weir_work_stop(weir_work *w);

/* weir_work_stop if not done yet, then frees the pool.  With a loop: after
 * weir_loop_free, since what the loop runs as it is freed may submit.  NULL
 * is fine. */
void weir_work_free(weir_work *w);

#endif
