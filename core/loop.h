/*
 * core/loop.h — the event loop: libwebsockets' own loop (DESIGN.md §3).
 *
 * One lws context per process, created with explicit vhosts: the loop makes
 * a private non-listening vhost for its own plumbing, and the HTTP server
 * (and later RTMP) add their own listening vhosts.
 *
 *   other threads ──weir_loop_post()──> [mutex queue] ──lws_cancel_service()──┐
 *                                                                             v
 *   lws_service() ── EVENT_WAIT_CANCELLED ── drain queue, run each fn on the loop
 *   signalfd (SIGINT, SIGTERM) adopted as a raw file ── on_signal on the loop
 *   listening sockets, ours, adopted as raw files ── accept4() ── lws_adopt_*
 *     into the owner's vhost
 *   timers: lws sorted-usec-list entries (weir_timer), loop thread only
 *
 * Everything here runs on the loop thread except weir_loop_post(), which any
 * thread may call.  Nothing blocking may run on the loop.
 */
#ifndef WEIR_CORE_LOOP_H
#define WEIR_CORE_LOOP_H

#include <stdint.h>
#include <libwebsockets.h>

typedef struct weir_loop weir_loop;
typedef struct weir_timer weir_timer;
typedef void (*weir_timer_fn)(weir_timer *t);

/* Embed in the owner's struct; recover the owner with container-of. */
struct weir_timer {
    lws_sorted_usec_list_t sul;     /* first: lws hands us this pointer */
    weir_loop *loop;
    weir_timer_fn fn;
};

typedef struct weir_loop_opts {
    int max_http_header;        /* bytes of request headers lws will hold; 0: 4096 */
} weir_loop_opts;

/* Creates the lws context and the loop's private vhost.  opts may be NULL.
 * NULL on failure (logged). */
weir_loop *weir_loop_new(const weir_loop_opts *opts);
/* Runs any posted work still pending, then destroys the lws context
 * (closing every connection) and frees the loop.  Stop the threads that post
 * (weir_work_free) before calling it. */
void weir_loop_free(weir_loop *loop);

struct lws_context *weir_loop_lws(weir_loop *loop);

/* Runs until weir_loop_stop().  Returns 0. */
int weir_loop_run(weir_loop *loop);
/* Asks weir_loop_run() to return after the current iteration.  Loop thread
 * or any thread. */
void weir_loop_stop(weir_loop *loop);

/* Listens on addr:port (addr NULL or "" = all IPv4 addresses) and hands
 * each accepted socket to vhost: as HTTP when type is LWS_ADOPT_HTTP, else
 * as a raw socket bound to `protocol`.  The loop owns the listening socket
 * (not lws) so that it can stop accepting on shutdown while connections
 * carry on, and so that port 0 works.  Returns the bound port (> 0) or a
 * negative AVERROR (logged).  Loop thread. */
int weir_loop_listen(weir_loop *loop, const char *addr, int port, struct lws_vhost *vhost,
                     int http, const char *protocol);

/* Closes every listening socket: no new connections, while existing ones
 * carry on.  Loop thread. */
void weir_loop_stop_accepting(weir_loop *loop);

/* Runs fn(arg) on the loop thread soon.  Any thread.  Returns 0 or
 * AVERROR(ENOMEM).  arg is borrowed: fn owns whatever it points to. */
int weir_loop_post(weir_loop *loop, void (*fn)(void *arg), void *arg);

/* Delivers SIGINT and SIGTERM to on_signal on the loop thread through a
 * signalfd.  Must be called before any other thread is started, since it
 * blocks those signals for the calling thread and every thread created
 * after. */
int weir_loop_watch_signals(weir_loop *loop, void (*on_signal)(void *arg, int signo),
                            void *arg);

/* One-shot timer.  Re-arming a pending timer moves it. Loop thread only. */
void weir_timer_start(weir_loop *loop, weir_timer *t, int64_t delay_us, weir_timer_fn fn);
void weir_timer_stop(weir_timer *t);

#endif
