/*
 * Unit tests for core/http's streaming request bodies (weir_http_route_stream):
 * bodies past http.max_body reach the sink in order with backpressure, a
 * deferred handler takes the body later, answers without taking it close
 * the connection, a client that goes away mid-body is reported once, and a
 * sink's error answer reaches the client.  Real loop, loopback sockets.
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

#define BIG (3 * 1024 * 1024 + 17)      /* far past max_body */
#define PAUSE_EVERY (200 * 1024)

typedef struct sctx {
    weir_loop *loop;
    weir_http *http;
    weir_timer guard, unpause, later;
    weir_http_req *req;             /* while the sink holds it */
    weir_http_deferred *d;
    /* what the server saw */
    int64_t bytes;
    uint32_t sum;                   /* order-sensitive checksum of the bytes */
    int pauses, ends, gones, handlers;
    int64_t since_pause;
    /* test knobs */
    int defer_first;                /* take the body only after a deferral */
    int refuse;                     /* answer 401 without taking the body */
    int fail_after;                 /* data() answers 507 and fails past this many bytes */
    /* client side */
    char reply[8192];
    size_t reply_len;
    int closed_by_server;
    int client_error;
} sctx;

static void on_guard(weir_timer *t)
{
    weir_loop_stop(t->loop);        /* a hanging test fails instead */
}

static void stop_loop(void *arg)
{
    weir_loop_stop(arg);
}

static uint32_t mix(uint32_t sum, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + p[i];
    return sum;
}

static void unpause(weir_timer *t)
{
    sctx *s = (sctx *)((char *)t - offsetof(sctx, unpause));
    if (s->req)
        weir_http_body_resume(s->req);
}

static int sink_data(void *arg, const void *p, size_t len)
{
    sctx *s = arg;
    s->bytes += (int64_t)len;
    s->sum = mix(s->sum, p, len);
    if (s->fail_after && s->bytes > s->fail_after) {
        weir_http_respond_error(s->req, 507, "disk full");
        s->req = NULL;
        return AVERROR(ENOSPC);
    }
    s->since_pause += (int64_t)len;
    if (s->since_pause >= PAUSE_EVERY) {
        /* "The disk is busy": no bytes until the write finished. */
        s->since_pause = 0;
        s->pauses++;
        weir_http_body_pause(s->req);
        weir_timer_start(s->loop, &s->unpause, 2000, unpause);
    }
    return 0;
}

static void sink_end(void *arg, weir_http_req *req)
{
    sctx *s = arg;
    char text[64];
    s->ends++;
    s->req = NULL;
    weir_timer_stop(&s->unpause);
    snprintf(text, sizeof text, "%lld %u", (long long)s->bytes, s->sum);
    weir_http_respond(req, 200, "text/plain", text, strlen(text));
}

static void sink_gone(void *arg)
{
    sctx *s = arg;
    s->gones++;
    s->req = NULL;
    weir_timer_stop(&s->unpause);
    weir_loop_stop(s->loop);
}

static const weir_http_body_sink sink = { sink_data, sink_end, sink_gone };

static void take_later(weir_timer *t)
{
    sctx *s = (sctx *)((char *)t - offsetof(sctx, later));
    weir_http_req *req = weir_http_resume(s->d);
    s->d = NULL;
    if (!req)
        return;
    s->req = req;
    cr_assert_eq(weir_http_body_stream(req, &sink, s), 0);
}

static int upload(weir_http_req *req, void *arg)
{
    sctx *s = arg;
    s->handlers++;
    if (s->refuse)
        return weir_http_respond_error(req, 401, "no");
    if (s->defer_first) {
        /* As if the database were asked first: the body must wait. */
        if (!(s->d = weir_http_defer(req)))
            return AVERROR(ENOMEM);
        weir_timer_start(s->loop, &s->later, 30000, take_later);
        return 0;
    }
    s->req = req;
    return weir_http_body_stream(req, &sink, s);
}

static void setup(sctx *s)
{
    signal(SIGPIPE, SIG_IGN);       /* the server may close while we send */
    s->loop = weir_loop_new(NULL);
    s->http = weir_http_new(s->loop, &(weir_http_opts){ .addr = "127.0.0.1", .port = 0,
                                                        .max_body = 1024,
                                                        .keepalive_ms = 5000 });
    cr_assert_not_null(s->http);
    cr_assert_eq(weir_http_route_stream(s->http, "PATCH", "/up", 0, upload, s), 0);
    weir_timer_start(s->loop, &s->guard, 20 * 1000000, on_guard);
}

static void teardown_ctx(sctx *s)
{
    weir_timer_stop(&s->guard);
    weir_loop_free(s->loop);
    weir_http_free(s->http);
}

/* ---- the client (its own thread) ----------------------------------------- */

typedef struct client_job {
    sctx *s;
    int requests;                   /* sent one after the other on one connection */
    size_t body_len;
    size_t send_only;               /* send this much of the body, then stop (0: all) */
    int read_after;                 /* with send_only: read the answer, else hang up */
    int stop_after;                 /* stop the loop when done */
} client_job;

static int connect_to(sctx *s)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)weir_http_port(s->http)) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_sec = 10 };     /* a stuck server fails the test, not hangs it */
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response (headers + Content-Length body) into s->reply. */
static int read_response(int fd, sctx *s)
{
    size_t start = s->reply_len;
    for (;;) {
        char *hdr_end, *cl;
        ssize_t n;
        s->reply[s->reply_len] = '\0';
        if ((hdr_end = strstr(s->reply + start, "\r\n\r\n")) &&
            (cl = strstr(s->reply + start, "content-length: "))) {
            size_t want = (size_t)atoi(cl + 16);
            if (s->reply_len - (size_t)(hdr_end + 4 - s->reply) >= want)
                return 0;
        }
        n = read(fd, s->reply + s->reply_len, sizeof s->reply - 1 - s->reply_len);
        if (n <= 0)
            return -1;
        s->reply_len += (size_t)n;
    }
}

static void *client(void *arg)
{
    client_job *j = arg;
    sctx *s = j->s;
    unsigned char *body = malloc(j->body_len ? j->body_len : 1);
    int fd = connect_to(s);
    char head[256];

    for (size_t i = 0; i < j->body_len; i++)
        body[i] = (unsigned char)(i * 7 + i / 251);
    if (fd < 0) {
        s->client_error = 1;
        goto out;
    }
    for (int r = 0; r < j->requests; r++) {
        size_t sent = 0, len = j->send_only ? j->send_only : j->body_len;
        snprintf(head, sizeof head, "PATCH /up HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 j->body_len);
        if (write_all(fd, head, strlen(head)) < 0) {
            s->client_error = 1;
            break;
        }
        /* Uneven pieces, so the server sees every kind of boundary. */
        while (sent < len) {
            size_t n = len - sent < 65521 ? len - sent : 65521;
            if (write_all(fd, body + sent, n) < 0)
                break;
            sent += n;
        }
        if (j->send_only && !j->read_after)
            break;
        if (read_response(fd, s) < 0) {
            s->closed_by_server = 1;
            break;
        }
    }
    if (!j->send_only || j->read_after) {
        /* Does the server keep the connection or close it? */
        struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
        char b;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (read(fd, &b, 1) == 0)
            s->closed_by_server = 1;
    }
    close(fd);
out:
    free(body);
    if (j->stop_after)
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

static uint32_t expected_sum(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    uint32_t sum;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + i / 251);
    sum = mix(0, b, n);
    free(b);
    return sum;
}

/* ---- tests ---------------------------------------------------------------- */

/* A test that hangs fails instead (the guard timer stops the loop after 20 s,
 * the client's socket times out after 10 s). */
TestSuite(http_stream, .timeout = 60);

Test(http_stream, big_body_in_order_with_backpressure_and_keepalive)
{
    sctx s = { 0 };
    client_job j = { .requests = 2, .body_len = BIG, .stop_after = 1 };
    char want[64];

    setup(&s);
    run(&s, &j);
    cr_assert_eq(s.client_error, 0);
    cr_assert_eq(s.ends, 2);
    cr_assert_eq(s.gones, 0);
    cr_assert_eq(s.bytes, 2 * (int64_t)BIG);
    cr_assert_gt(s.pauses, 10);
    /* Both answers on one connection, the first one's sums alone. */
    cr_assert(strncmp(s.reply, "HTTP/1.1 200", 12) == 0, "%s", s.reply);
    snprintf(want, sizeof want, "\r\n\r\n%d %u", BIG, expected_sum(BIG));
    cr_assert(strstr(s.reply, want), "%s", s.reply);
    cr_assert(strstr(strstr(s.reply, want) + 4, "HTTP/1.1 200"), "%s", s.reply);
    cr_assert(!strstr(s.reply, "connection: close"), "%s", s.reply);
    teardown_ctx(&s);
}

Test(http_stream, deferred_handler_takes_the_body_later)
{
    sctx s = { .defer_first = 1 };
    client_job j = { .requests = 1, .body_len = 300000, .stop_after = 1 };
    char want[64];

    setup(&s);
    run(&s, &j);
    cr_assert_eq(s.ends, 1);
    cr_assert_eq(s.bytes, 300000);
    snprintf(want, sizeof want, "\r\n\r\n300000 %u", expected_sum(300000));
    cr_assert(strstr(s.reply, want), "%s", s.reply);
    cr_assert_eq(s.closed_by_server, 0, "keep-alive after a streamed body");
    teardown_ctx(&s);
}

Test(http_stream, small_body_after_a_deferral)
{
    sctx s = { .defer_first = 1 };
    client_job j = { .requests = 1, .body_len = 10, .stop_after = 1 };

    setup(&s);
    run(&s, &j);
    cr_assert_eq(s.ends, 1);
    cr_assert(strstr(s.reply, "\r\n\r\n10 "), "%s", s.reply);
    teardown_ctx(&s);
}

Test(http_stream, empty_body)
{
    sctx e = { 0 };
    client_job k = { .requests = 2, .body_len = 0, .stop_after = 1 };
    setup(&e);
    run(&e, &k);
    cr_assert_eq(e.ends, 2);
    cr_assert(strstr(e.reply, "\r\n\r\n0 0"), "%s", e.reply);
    teardown_ctx(&e);
}

Test(http_stream, an_answer_without_taking_a_small_body_drops_it_and_keeps_alive)
{
    sctx s = { .refuse = 1 };
    client_job j = { .requests = 2, .body_len = 200000, .stop_after = 1 };

    setup(&s);
    run(&s, &j);
    cr_assert(strncmp(s.reply, "HTTP/1.1 401", 12) == 0, "%s", s.reply);
    cr_assert(!strstr(s.reply, "connection: close"), "%s", s.reply);
    cr_assert_eq(s.closed_by_server, 0);
    cr_assert_eq(s.handlers, 2, "the body was not read as a request");
    cr_assert(strstr(s.reply + 12, "HTTP/1.1 401"), "%s", s.reply);
    cr_assert_eq(s.bytes, 0);
    teardown_ctx(&s);
}

Test(http_stream, an_answer_without_taking_a_big_body_closes_the_connection)
{
    sctx s = { .refuse = 1 };
    client_job j = { .requests = 1, .body_len = 64 << 20, .send_only = 100000,
                     .read_after = 1, .stop_after = 1 };

    setup(&s);
    run(&s, &j);
    cr_assert(strncmp(s.reply, "HTTP/1.1 401", 12) == 0, "%s", s.reply);
    cr_assert(strstr(s.reply, "connection: close\r\n"), "%s", s.reply);
    cr_assert_eq(s.closed_by_server, 1);
    cr_assert_eq(s.handlers, 1);
    teardown_ctx(&s);
}

Test(http_stream, a_client_gone_mid_body_is_reported_once)
{
    sctx s = { 0 };
    client_job j = { .requests = 1, .body_len = BIG, .send_only = 500000 };

    setup(&s);
    run(&s, &j);                    /* sink_gone stops the loop */
    cr_assert_eq(s.gones, 1);
    cr_assert_eq(s.ends, 0);
    cr_assert_leq(s.bytes, 500000);
    cr_assert_eq(s.sum, expected_sum((size_t)s.bytes), "what arrived arrived in order");
    teardown_ctx(&s);
}

Test(http_stream, a_sink_error_answer_reaches_the_client_and_closes)
{
    sctx s = { .fail_after = 100000 };
    client_job j = { .requests = 1, .body_len = BIG, .stop_after = 1 };

    setup(&s);
    run(&s, &j);
    cr_assert(strncmp(s.reply, "HTTP/1.1 507", 12) == 0, "%s", s.reply);
    cr_assert_eq(s.ends, 0);
    cr_assert_eq(s.gones, 0);
    cr_assert_eq(s.closed_by_server, 0, "the rest of the body was dropped");
    cr_assert_leq(s.bytes, 100000 + 65536 + (1 << 20));
    teardown_ctx(&s);
}

Test(http_stream, a_pause_just_before_the_end_does_not_strand_the_tail)
{
    /* The sink pauses at every PAUSE_EVERY bytes; bodies that end just past
     * a pause leave their last bytes inside lws when it stops reading. */
    static const size_t sizes[] = { PAUSE_EVERY, PAUSE_EVERY + 1, PAUSE_EVERY + 100,
                                    PAUSE_EVERY + 4095, 2 * PAUSE_EVERY + 70000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sctx s = { .defer_first = (int)(i & 1) };
        client_job j = { .requests = 1, .body_len = sizes[i], .stop_after = 1 };
        char want[64];

        setup(&s);
        run(&s, &j);
        cr_assert_eq(s.ends, 1, "size %zu", sizes[i]);
        snprintf(want, sizeof want, "\r\n\r\n%zu %u", sizes[i], expected_sum(sizes[i]));
        cr_assert(strstr(s.reply, want), "size %zu: %s", sizes[i], s.reply);
        teardown_ctx(&s);
    }
}

/* ---- an empty body on an ordinary route ------------------------------------ */

typedef struct once {
    weir_loop *loop;
    weir_http_deferred *d;
    weir_timer later;
    int calls;
} once;

static void answer_later(weir_timer *t)
{
    once *o = (once *)((char *)t - offsetof(once, later));
    weir_http_req *req = weir_http_resume(o->d);
    if (req)
        weir_http_respond(req, 200, "text/plain", "once", 4);
}

static int deferring(weir_http_req *req, void *arg)
{
    once *o = arg;
    o->calls++;
    if (!(o->d = weir_http_defer(req)))
        return AVERROR(ENOMEM);
    weir_timer_start(o->loop, &o->later, 20000, answer_later);
    return 0;
}

/* Reads one response on a thread while the loop runs, then stops it. */
typedef struct reader_arg {
    sctx *s;
    int fd;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *a = arg;
    if (read_response(a->fd, a->s) < 0)
        a->s->client_error = 1;
    weir_loop_post(a->s->loop, stop_loop, a->s->loop);
    return NULL;
}

Test(http_stream, a_deferred_post_with_an_empty_body_runs_its_handler_once)
{
    /* lws completes "Content-Length: 0" bodies after the headers were
     * dispatched: that must not run the handler a second time. */
    sctx s = { 0 };
    once o = { 0 };
    reader_arg a = { &s, -1 };
    pthread_t t;
    const char *r = "POST /once HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";

    setup(&s);
    o.loop = s.loop;
    cr_assert_eq(weir_http_route(s.http, "POST", "/once", 0, deferring, &o), 0);
    a.fd = connect_to(&s);
    cr_assert_geq(a.fd, 0);
    cr_assert_eq(write_all(a.fd, r, strlen(r)), 0);
    pthread_create(&t, NULL, reader, &a);
    weir_loop_run(s.loop);
    pthread_join(t, NULL);
    close(a.fd);
    cr_assert_eq(s.client_error, 0);
    cr_assert_eq(o.calls, 1);
    cr_assert(strncmp(s.reply, "HTTP/1.1 200", 12) == 0, "%s", s.reply);
    cr_assert(strstr(s.reply, "\r\n\r\nonce"), "%s", s.reply);
    teardown_ctx(&s);
}
