/*
 * Unit tests for core/http's WebSocket routes (weir_http_ws_route): an
 * upgrade that accept() refuses is a plain HTTP answer, origins are
 * checked as CORS is, messages arrive in order as text frames, a client
 * that does not read is dropped at the queue bound, draining closes
 * clients with 1001, and a plain GET gets 426.  Real loop, loopback
 * sockets, a raw RFC 6455 client written here.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#include <libavutil/error.h>

typedef struct sctx {
    weir_loop *loop;
    weir_http *http;
    weir_timer guard, flood;
    weir_http_ws *ws;
    int accepts, opens, closes, sends_refused, flooded, drained;
    int send_on_open;               /* messages queued by open() */
    int flood_size;                 /* >0: push messages this big every ms until refused */
    int drain_on_open;
    /* client side */
    char head[4096];
    char msgs[8][64];
    int nmsgs;
    int close_code;
    int server_closed;
    int client_error;
} sctx;

static void stop_loop(void *arg) { weir_loop_stop(arg); }

static void on_guard(weir_timer *t)
{
    sctx *s = (sctx *)((char *)t - offsetof(sctx, guard));
    weir_loop_stop(s->loop);
}

static int ws_accept(void *arg, weir_http_req *req)
{
    sctx *s = arg;
    char v[16];
    s->accepts++;
    return weir_http_req_header(req, "x-deny", v, sizeof v) >= 0 ? 401 : 0;
}

static void flood(weir_timer *t)
{
    sctx *s = (sctx *)((char *)t - offsetof(sctx, flood));
    weir_buf *m;

    if (!s->ws || s->flooded > 4000)
        return;
    m = weir_buf_new(LWS_PRE + (size_t)s->flood_size);
    memset(m->data, 'x', m->size);
    if (weir_http_ws_send_buf(s->ws, m) == AVERROR(EPIPE))
        s->sends_refused++;
    else
        weir_timer_start(s->loop, &s->flood, 1000, flood);
    s->flooded++;
    weir_buf_unref(m);
}

static void drained(void *arg)
{
    sctx *s = arg;
    s->drained++;
}

static int ws_open(void *arg, weir_http_ws *ws, weir_http_req *req)
{
    sctx *s = arg;
    char text[32];
    (void)req;
    s->opens++;
    s->ws = ws;
    for (int i = 0; i < s->send_on_open; i++) {
        int n = snprintf(text, sizeof text, "message %d", i);
        cr_assert_eq(weir_http_ws_send(ws, text, (size_t)n), 0);
    }
    if (s->flood_size)
        weir_timer_start(s->loop, &s->flood, 1000, flood);
    if (s->drain_on_open)
        weir_http_drain(s->http, drained, s);
    return 0;
}

static void ws_closed(void *arg, weir_http_ws *ws)
{
    sctx *s = arg;
    cr_assert_eq(ws, s->ws);
    s->ws = NULL;
    s->closes++;
}

static const weir_http_ws_handler handler = { ws_accept, ws_open, ws_closed };

static void setup(sctx *s, const char *origins, int max_queue)
{
    signal(SIGPIPE, SIG_IGN);
    s->loop = weir_loop_new(NULL);
    s->http = weir_http_new(s->loop, &(weir_http_opts){
        .addr = "127.0.0.1", .port = 0, .max_body = 1024, .keepalive_ms = 5000,
        .ws_origins = origins, .ws_max_queue = max_queue });
    cr_assert_not_null(s->http);
    cr_assert_eq(weir_http_ws_route(s->http, "/ws", &handler, s), 0);
    weir_timer_start(s->loop, &s->guard, 20 * 1000000, on_guard);
}

static void teardown_ctx(sctx *s)
{
    weir_timer_stop(&s->guard);
    weir_timer_stop(&s->flood);
    weir_loop_free(s->loop);
    weir_http_free(s->http);
}

/* ---- the client (its own thread) ------------------------------------------ */

typedef struct client_job {
    sctx *s;
    const char *extra;              /* request headers */
    int upgrade;                    /* ask for websocket */
    int read_msgs;                  /* text frames to read (then close) */
    int read_nothing_ms;            /* do not read for this long, then see if we were dropped */
    int until_close;                /* read frames until the server's close frame */
} client_job;

static int connect_to(sctx *s)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)weir_http_port(s->http)) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_sec = 10 };
    int small = 4096;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);   /* a reader that stalls fills fast */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One frame: opcode, payload (first cap-1 bytes kept, NUL-terminated). */
static int read_frame(int fd, int *opcode, char *out, size_t cap, size_t *len)
{
    unsigned char h[2], ext[8];
    uint64_t n;
    if (read_full(fd, h, 2) < 0)
        return -1;
    *opcode = h[0] & 0x0f;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (read_full(fd, ext, 2) < 0)
            return -1;
        n = (uint64_t)ext[0] << 8 | ext[1];
    } else if (n == 127) {
        if (read_full(fd, ext, 8) < 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | ext[i];
    }
    *len = (size_t)n;
    for (uint64_t i = 0; i < n; i++) {
        char c;
        if (read_full(fd, &c, 1) < 0)
            return -1;
        if (i < cap - 1)
            out[i] = c;
    }
    out[n < cap - 1 ? n : cap - 1] = '\0';
    return 0;
}

static void *client(void *arg)
{
    client_job *j = arg;
    sctx *s = j->s;
    int fd = connect_to(s);
    char req[1024];
    size_t got = 0;

    if (fd < 0) {
        s->client_error = 1;
        goto out;
    }
    snprintf(req, sizeof req,
             "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n", weir_http_port(s->http),
             j->upgrade ? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n" : "",
             j->extra ? j->extra : "");
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        s->client_error = 1;
        goto done;
    }
    /* The head, byte by byte so no frame byte is taken with it. */
    while (got < sizeof s->head - 1 && read(fd, s->head + got, 1) == 1) {
        got++;
        s->head[got] = '\0';
        if (got >= 4 && memcmp(s->head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(s->head, "HTTP/1.1 101", 12) != 0) {
        /* The body, then the end of the connection (a refusal closes it). */
        char b[512];
        ssize_t r;
        while ((r = read(fd, b, sizeof b)) > 0)
            ;
        s->server_closed = r == 0;
        goto done;
    }
    if (j->read_nothing_ms) {
        usleep((useconds_t)j->read_nothing_ms * 1000);
        /* Dropped: what is buffered runs out and then the socket ends. */
        for (;;) {
            char b[65536];
            ssize_t r = read(fd, b, sizeof b);
            if (r <= 0) {
                s->server_closed = 1;
                break;
            }
        }
        goto done;
    }
    while (s->nmsgs < j->read_msgs || j->until_close) {
        int op;
        size_t len;
        char text[64];
        if (read_frame(fd, &op, text, sizeof text, &len) < 0) {
            s->server_closed = 1;
            break;
        }
        if (op == 1 && s->nmsgs < 8) {
            memcpy(s->msgs[s->nmsgs++], text, sizeof text);
        } else if (op == 8) {
            s->close_code = len >= 2 ? ((unsigned char)text[0] << 8 | (unsigned char)text[1]) : 0;
            break;
        }
    }
done:
    close(fd);
    usleep(200 * 1000);             /* the server sees the close before the loop stops */
out:
    weir_loop_post(s->loop, stop_loop, s->loop);
    return NULL;
}

static void run(sctx *s, client_job *j)
{
    pthread_t t;
    j->s = s;
    pthread_create(&t, NULL, client, j);
    weir_loop_run(s->loop);
    pthread_join(t, NULL);
}

TestSuite(http_ws, .timeout = 60);

Test(http_ws, messages_arrive_in_order_and_the_close_is_seen_once)
{
    sctx s = { .send_on_open = 3 };
    client_job j = { .upgrade = 1, .read_msgs = 3 };

    setup(&s, NULL, 0);
    run(&s, &j);
    cr_assert_eq(s.client_error, 0);
    cr_assert(strstr(s.head, "HTTP/1.1 101") == s.head, "%s", s.head);
    cr_assert_eq(s.nmsgs, 3);
    cr_assert_str_eq(s.msgs[0], "message 0");
    cr_assert_str_eq(s.msgs[2], "message 2");
    cr_assert_eq(s.accepts, 1);
    cr_assert_eq(s.opens, 1);
    cr_assert_eq(s.closes, 1);
    cr_assert_eq(weir_http_ws_clients(s.http), 0);
    teardown_ctx(&s);
}

Test(http_ws, a_refused_upgrade_is_an_http_answer)
{
    sctx s = { 0 };
    client_job j = { .upgrade = 1, .extra = "X-Deny: 1\r\n" };

    setup(&s, NULL, 0);
    run(&s, &j);
    /* lws answers before it has read the request's version: HTTP/1.0. */
    cr_assert(strncmp(s.head + 8, " 401 ", 5) == 0, "%s", s.head);
    cr_assert(strstr(s.head, "connection: close"), "%s", s.head);
    cr_assert_eq(s.server_closed, 1);
    cr_assert_eq(s.opens, 0);
    cr_assert_eq(s.closes, 0);
    teardown_ctx(&s);
}

Test(http_ws, origins_are_checked_like_cors)
{
    sctx s = { 0 };
    client_job bad = { .upgrade = 1, .extra = "Origin: https://evil.example\r\n" };
    client_job good = { .upgrade = 1, .extra = "Origin: https://good.example\r\n" };

    setup(&s, "https://a.example, https://good.example", 0);
    run(&s, &bad);
    cr_assert(strncmp(s.head + 8, " 403 ", 5) == 0, "%s", s.head);
    cr_assert_eq(s.accepts, 0);
    teardown_ctx(&s);
    memset(&s, 0, sizeof s);        /* a fresh loop: a stopped one does not run again */
    setup(&s, "https://a.example, https://good.example", 0);
    run(&s, &good);
    cr_assert(strncmp(s.head, "HTTP/1.1 101", 12) == 0, "%s", s.head);
    cr_assert_eq(s.opens, 1);
    teardown_ctx(&s);
}

Test(http_ws, the_page_of_this_host_may_always_connect)
{
    sctx s = { 0 };
    char extra[128];
    client_job j = { .upgrade = 1, .extra = extra };

    setup(&s, "https://elsewhere.example", 0);
    snprintf(extra, sizeof extra, "Origin: http://127.0.0.1:%d\r\n", weir_http_port(s.http));
    run(&s, &j);
    cr_assert(strncmp(s.head, "HTTP/1.1 101", 12) == 0, "%s", s.head);
    teardown_ctx(&s);
}

Test(http_ws, a_client_that_does_not_read_is_dropped_at_the_queue_bound)
{
    sctx s = { .flood_size = 256 * 1024 };
    client_job j = { .upgrade = 1, .read_nothing_ms = 1500 };

    setup(&s, NULL, 4);
    run(&s, &j);
    cr_assert_eq(s.sends_refused, 1, "sends refused: %d after %d", s.sends_refused, s.flooded);
    cr_assert(s.flooded < 4000);
    cr_assert_eq(s.server_closed, 1);
    cr_assert_eq(s.closes, 1);
    teardown_ctx(&s);
}

Test(http_ws, draining_closes_clients_with_1001_after_their_queue)
{
    sctx s = { .send_on_open = 2, .drain_on_open = 1 };
    client_job j = { .upgrade = 1, .until_close = 1 };

    setup(&s, NULL, 0);
    run(&s, &j);
    cr_assert_eq(s.nmsgs, 2);
    cr_assert_eq(s.close_code, 1001);
    cr_assert_eq(s.closes, 1);
    cr_assert_eq(s.drained, 1);
    teardown_ctx(&s);
}

Test(http_ws, a_plain_get_is_426)
{
    sctx s = { 0 };
    client_job j = { .upgrade = 0 };

    setup(&s, NULL, 0);
    run(&s, &j);
    cr_assert(strncmp(s.head, "HTTP/1.1 426", 12) == 0, "%s", s.head);
    cr_assert(strstr(s.head, "upgrade: websocket") || strstr(s.head, "Upgrade: websocket"),
              "%s", s.head);
    teardown_ctx(&s);
}
