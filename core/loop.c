/*
 * core/loop.c — see loop.h.
 */
#include "core/loop.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libavutil/error.h>

#define LOOP_MAX_LISTENERS  8
#define LOOP_ACCEPT_BATCH   64      /* accepts per wake-up, for fairness */

/* What a raw-file wsi on the loop's vhost is watching. */
typedef struct watch {
    enum { WATCH_SIGNALS, WATCH_LISTENER } kind;
    struct lws *wsi;
    int fd;
    struct lws_vhost *target;       /* listener: where accepted sockets go */
    int http;
    const char *protocol;
    int port;
} watch;

typedef struct posted {
    struct posted *next;
    void (*fn)(void *arg);
    void *arg;
} posted;

#define LOOP_SERV_BUF (256 * 1024)

struct weir_loop {
    struct lws_context *ctx;
    struct lws_vhost *vhost;            /* private, non-listening */
    volatile int stopping;
    atomic_int closing;                 /* weir_loop_free under way: no more wakes or timers */

    pthread_mutex_t lock;               /* guards the posted queue */
    posted *head, *tail;

    watch signals;
    void (*on_signal)(void *arg, int signo);
    void *signal_arg;

    watch listeners[LOOP_MAX_LISTENERS];
    int nlisteners;
};

static void drain_posted(weir_loop *loop)
{
    posted *list;

    pthread_mutex_lock(&loop->lock);
    list = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->lock);

    while (list) {
        posted *next = list->next;
        list->fn(list->arg);
        free(list);
        list = next;
    }
}

static void read_signal(weir_loop *loop, watch *w)
{
    struct signalfd_siginfo si;
    ssize_t n = read(w->fd, &si, sizeof si);
    if (n != (ssize_t)sizeof si)
        return;
    if (loop->on_signal)
        loop->on_signal(loop->signal_arg, (int)si.ssi_signo);
}

static void accept_ready(watch *w)
{
    for (int i = 0; i < LOOP_ACCEPT_BATCH; i++) {
        lws_sock_file_fd_type fd;
        struct lws *wsi;
        int one = 1;
        int s = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (s < 0) {
            if (errno == EMFILE || errno == ENFILE)
                weir_log_warn("loop", "accept failed: out of file descriptors",
                              WL_INT("port", w->port));
            return;     /* EAGAIN: drained; anything else: try next wake-up */
        }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd.sockfd = s;
        wsi = lws_adopt_descriptor_vhost(w->target,
                                         LWS_ADOPT_SOCKET |
                                         (w->http ? LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL : 0),
                                         fd, w->protocol, NULL);
        if (!wsi)   /* lws closes the socket when adoption fails */
            weir_log_warn("loop", "connection not adopted", WL_INT("port", w->port));
    }
}

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    weir_loop *loop = vh ? lws_vhost_user(vh) : NULL;
    watch *w = wsi ? lws_get_opaque_user_data(wsi) : NULL;

    (void)user; (void)in; (void)len;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (loop)
            drain_posted(loop);
        break;
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!loop || !w)
            break;
        if (w->kind == WATCH_SIGNALS)
            read_signal(loop, w);
        else
            accept_ready(w);
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (w) {
            w->wsi = NULL;
            w->fd = -1;         /* lws closed it */
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Hands fd to lws as a raw file on the loop's vhost.  On success lws owns fd. */
static int watch_fd(weir_loop *loop, watch *w, int fd)
{
    lws_sock_file_fd_type d;
    d.filefd = fd;
    w->fd = fd;
    w->wsi = lws_adopt_descriptor_vhost(loop->vhost, LWS_ADOPT_RAW_FILE_DESC, d,
                                        "weir-loop", NULL);
    if (!w->wsi)
        return AVERROR(EIO);
    lws_set_opaque_user_data(w->wsi, w);
    return 0;
}

static const struct lws_protocols loop_protocols[] = {
    { .name = "weir-loop", .callback = loop_callback },
    { 0 }
};

/* lws's own log lines, carried into ours. */
static void lws_log_emit(int level, const char *line)
{
    weir_log_level l = level & LLL_ERR ? WEIR_LOG_ERROR
                     : level & LLL_WARN ? WEIR_LOG_WARN : WEIR_LOG_DEBUG;
    char msg[512];
    size_t n = strlen(line);

    if (n >= sizeof msg)
        n = sizeof msg - 1;
    memcpy(msg, line, n);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    msg[n] = '\0';
    weir_log(l, "lws", "message", WL_STR("msg", msg));
}

weir_loop *weir_loop_new(const weir_loop_opts *opts)
{
    struct lws_context_creation_info info;
    weir_loop *loop = calloc(1, sizeof *loop);

    if (!loop)
        return NULL;
    loop->signals.fd = -1;
    pthread_mutex_init(&loop->lock, NULL);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    memset(&info, 0, sizeof info);
    /* SSL global init: the HTTP vhost may serve TLS (http.tls_cert). */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.gid = -1;
    info.uid = -1;
    /* lws drains what a socket did not take of a write in pieces of this
     * size, one per POLLOUT; its 4 KiB default made a 250 KiB segment cost
     * ~60 send() calls and polls (measured with strace -c). */
    info.pt_serv_buf_size = LOOP_SERV_BUF;
    info.max_http_header_data = (unsigned short)(opts && opts->max_http_header > 0 &&
                                                 opts->max_http_header <= 65535
                                                 ? opts->max_http_header : 4096);
    loop->ctx = lws_create_context(&info);
    if (!loop->ctx) {
        weir_log_error("loop", "lws_create_context failed");
        goto fail;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "weir-loop";
    /* Not a server vhost: lws picks the vhost for an HTTP request by port,
     * and the HTTP server's vhost must be the only one that matches. */
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop_protocols;
    info.user = loop;
    loop->vhost = lws_create_vhost(loop->ctx, &info);
    if (!loop->vhost) {
        weir_log_error("loop", "cannot create the loop vhost");
        goto fail;
    }
    return loop;

fail:
    weir_loop_free(loop);
    return NULL;
}

void weir_loop_free(weir_loop *loop)
{
    if (!loop)
        return;
    /* Work posted after the loop stopped (completions from worker threads
     * that were joined) still runs, so whatever it owns is freed. */
    drain_posted(loop);
    atomic_store(&loop->closing, 1);
    if (loop->ctx)
        lws_context_destroy(loop->ctx);     /* closes every watched fd */
    loop->ctx = NULL;
    /* Closing connections ends their streams, whose consumers post once
     * more: run that too (timers it starts are no-ops now). */
    drain_posted(loop);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

struct lws_context *weir_loop_lws(weir_loop *loop) { return loop->ctx; }

int weir_loop_run(weir_loop *loop)
{
    while (!loop->stopping)
        if (lws_service(loop->ctx, 0) < 0)
            break;
    return 0;
}

void weir_loop_stop(weir_loop *loop)
{
    loop->stopping = 1;
    lws_cancel_service(loop->ctx);
}

int weir_loop_listen(weir_loop *loop, const char *addr, int port, struct lws_vhost *vhost,
                     int http, const char *protocol)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    socklen_t salen = sizeof sa;
    watch *w;
    int fd = -1, one = 1, r;

    if (loop->nlisteners == LOOP_MAX_LISTENERS)
        return AVERROR(ENOSPC);
    if (addr && *addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        weir_log_error("loop", "bad listen address", WL_STR("addr", addr));
        return AVERROR(EINVAL);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return AVERROR(errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        r = AVERROR(errno);
        weir_log_error("loop", "cannot listen", WL_STR("addr", addr && *addr ? addr : "0.0.0.0"),
                       WL_INT("port", port), WL_ERR(r));
        close(fd);
        return r;
    }
    w = &loop->listeners[loop->nlisteners];
    *w = (watch){ .kind = WATCH_LISTENER, .target = vhost, .http = http,
                  .protocol = protocol, .port = ntohs(sa.sin_port) };
    if ((r = watch_fd(loop, w, fd)) < 0) {
        close(fd);
        return r;
    }
    loop->nlisteners++;
    return w->port;
}

void weir_loop_stop_accepting(weir_loop *loop)
{
    for (int i = 0; i < loop->nlisteners; i++) {
        watch *w = &loop->listeners[i];
        if (w->wsi)
            lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
}

int weir_loop_post(weir_loop *loop, void (*fn)(void *arg), void *arg)
{
    posted *p = malloc(sizeof *p);
    if (!p)
        return AVERROR(ENOMEM);
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;

    pthread_mutex_lock(&loop->lock);
    if (loop->tail)
        loop->tail->next = p;
    else
        loop->head = p;
    loop->tail = p;
    pthread_mutex_unlock(&loop->lock);

    if (!atomic_load(&loop->closing))
        lws_cancel_service(loop->ctx);
    return 0;
}

int weir_loop_watch_signals(weir_loop *loop, void (*on_signal)(void *arg, int signo),
                            void *arg)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return AVERROR(EINVAL);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return AVERROR(errno);
    loop->on_signal = on_signal;
    loop->signal_arg = arg;
    loop->signals.kind = WATCH_SIGNALS;
    if (watch_fd(loop, &loop->signals, fd) < 0) {
        weir_log_error("loop", "cannot watch the signal descriptor");
        close(fd);
        return AVERROR(EIO);
    }
    return 0;
}

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    weir_timer *t = (weir_timer *)sul;      /* sul is the first member */
    t->fn(t);
}

void weir_timer_start(weir_loop *loop, weir_timer *t, int64_t delay_us, weir_timer_fn fn)
{
    t->loop = loop;
    t->fn = fn;
    if (!atomic_load(&loop->closing))
        lws_sul_schedule(loop->ctx, 0, &t->sul, timer_fire, delay_us);
}

void weir_timer_stop(weir_timer *t)
{
    if (t->loop && !atomic_load(&t->loop->closing))
        lws_sul_cancel(&t->sul);
}
