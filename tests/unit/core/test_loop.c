/*
 * Unit tests for core/loop and core/http: timers, cross-thread posting,
 * listening, and an HTTP round trip on the real loop (loopback only).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#include <libavutil/error.h>

typedef struct ctx {
    weir_loop *loop;
    weir_timer timer, guard;
    int fired;
    int posted;
    int post_failed;                /* written by the poster thread */
    pthread_t thread;
} ctx;

static void on_guard(weir_timer *t)
{
    /* A test that hangs fails instead. */
    weir_loop_stop(t->loop);
}

static void on_timer(weir_timer *t)
{
    ctx *c = (ctx *)((char *)t - offsetof(ctx, timer));
    c->fired++;
    weir_loop_stop(t->loop);
}

Test(loop, timer_fires_once)
{
    ctx c = { 0 };
    c.loop = weir_loop_new(NULL);
    cr_assert_not_null(c.loop);
    weir_timer_start(c.loop, &c.guard, 5 * 1000000, on_guard);
    weir_timer_start(c.loop, &c.timer, 1000, on_timer);
    weir_loop_run(c.loop);
    cr_assert_eq(c.fired, 1);
    weir_timer_stop(&c.guard);
    weir_loop_free(c.loop);
}

Test(loop, stopped_timer_does_not_fire)
{
    ctx c = { 0 };
    weir_timer second = { 0 };
    c.loop = weir_loop_new(NULL);
    weir_timer_start(c.loop, &second, 1000, on_timer);
    weir_timer_stop(&second);
    weir_timer_start(c.loop, &c.guard, 50000, on_guard);
    weir_loop_run(c.loop);
    cr_assert_eq(c.fired, 0);
    weir_loop_free(c.loop);
}

#define POSTS 1000

static void on_post(void *arg)
{
    ctx *c = arg;
    if (++c->posted == POSTS)
        weir_loop_stop(c->loop);
}

static void *poster(void *arg)
{
    ctx *c = arg;
    /* Criterion asserts belong on the test's own thread: count here. */
    for (int i = 0; i < POSTS; i++)
        if (weir_loop_post(c->loop, on_post, c) != 0)
            c->post_failed++;
    return NULL;
}

Test(loop, posts_from_another_thread_run_on_the_loop)
{
    ctx c = { 0 };
    c.loop = weir_loop_new(NULL);
    weir_timer_start(c.loop, &c.guard, 10 * 1000000, on_guard);
    pthread_create(&c.thread, NULL, poster, &c);
    weir_loop_run(c.loop);
    pthread_join(c.thread, NULL);
    cr_assert_eq(c.post_failed, 0);
    cr_assert_eq(c.posted, POSTS, "ran %d of %d", c.posted, POSTS);
    weir_timer_stop(&c.guard);
    weir_loop_free(c.loop);
}

/* ---- HTTP round trip ---------------------------------------------------- */

typedef struct hctx {
    weir_loop *loop;
    weir_http *http;
    weir_timer guard;
    char reply[4096];
    size_t reply_len;
    char body_seen[64];
    int client_error;
} hctx;

static void stop_loop(void *arg)
{
    weir_loop_stop(arg);
}

static int echo(weir_http_req *req, void *arg)
{
    hctx *h = arg;
    size_t len;
    const char *body = weir_http_req_body(req, &len);
    char hdr[64], q[64];

    snprintf(h->body_seen, sizeof h->body_seen, "%.*s", (int)len, body ? body : "");
    if (weir_http_req_header(req, "x-test", hdr, sizeof hdr) < 0)
        strcpy(hdr, "-");
    if (weir_http_req_query(req, "q", q, sizeof q) < 0)
        strcpy(q, "-");
    weir_http_add_header(req, "x-reply", hdr);
    return weir_http_respond(req, 201, "text/plain", q, strlen(q));
}

/* Sends one raw request from a client thread, reads until `until` shows up
 * in the reply (or the server closes), then stops the loop. */
typedef struct exchange {
    hctx *h;
    const char *request;
    const char *until;
} exchange;

static void *client(void *arg)
{
    exchange *x = arg;
    hctx *h = x->h;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)weir_http_port(h->http)) };
    size_t len = strlen(x->request);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, x->request, len) != (ssize_t)len)
        h->client_error = 1;
    while ((n = read(fd, h->reply + h->reply_len, sizeof h->reply - 1 - h->reply_len)) > 0) {
        h->reply_len += (size_t)n;
        h->reply[h->reply_len] = '\0';
        if (strstr(h->reply, x->until))
            break;
    }
    close(fd);
    weir_loop_post(h->loop, stop_loop, h->loop);
    return NULL;
}

Test(http, round_trip_on_an_ephemeral_port)
{
    hctx h = { 0 };
    pthread_t t;

    h.loop = weir_loop_new(NULL);
    h.http = weir_http_new(h.loop, &(weir_http_opts){ .addr = "127.0.0.1", .port = 0,
                                                      .max_body = 1024,
                                                      .keepalive_ms = 5000 });
    cr_assert_not_null(h.http);
    cr_assert_gt(weir_http_port(h.http), 0);
    cr_assert_eq(weir_http_route(h.http, "POST", "/echo", 0, echo, &h), 0);
    weir_timer_start(h.loop, &h.guard, 10 * 1000000, on_guard);
    exchange x = { &h, "POST /echo?q=hello HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n"
                       "Content-Length: 5\r\n\r\nabcde", "\r\n\r\nhello" };
    pthread_create(&t, NULL, client, &x);
    weir_loop_run(h.loop);
    pthread_join(t, NULL);

    cr_assert_eq(h.client_error, 0);
    cr_assert(strncmp(h.reply, "HTTP/1.1 201", 12) == 0, "%s", h.reply);
    cr_assert(strstr(h.reply, "x-reply: yes\r\n"), "%s", h.reply);
    cr_assert(strstr(h.reply, "content-length: 5\r\n"), "%s", h.reply);
    cr_assert(strstr(h.reply, "\r\n\r\nhello"), "%s", h.reply);
    cr_assert_str_eq(h.body_seen, "abcde");
    weir_timer_stop(&h.guard);
    weir_loop_free(h.loop);
    weir_http_free(h.http);
}

/* ---- deferred responses --------------------------------------------------- */

typedef struct dctx {
    hctx h;
    weir_http_deferred *d;
    pthread_t worker;
} dctx;

static void answer_on_loop(void *arg)
{
    dctx *x = arg;
    weir_http_req *req = weir_http_resume(x->d);
    if (req)
        weir_http_respond(req, 200, "text/plain", "later", 5);
}

static void *worker(void *arg)
{
    dctx *x = arg;
    usleep(20000);                  /* "the database" */
    weir_loop_post(x->h.loop, answer_on_loop, x);
    return NULL;
}

static int slow(weir_http_req *req, void *arg)
{
    dctx *x = arg;
    x->d = weir_http_defer(req);
    if (!x->d)
        return AVERROR(ENOMEM);
    pthread_create(&x->worker, NULL, worker, x);
    return 0;
}

Test(http, deferred_response_from_another_thread)
{
    dctx x = { 0 };
    pthread_t t;

    x.h.loop = weir_loop_new(NULL);
    x.h.http = weir_http_new(x.h.loop, &(weir_http_opts){ .addr = "127.0.0.1", .port = 0,
                                                          .max_body = 1024,
                                                          .keepalive_ms = 5000 });
    cr_assert_not_null(x.h.http);
    weir_http_route(x.h.http, "GET", "/slow", 0, slow, &x);
    weir_timer_start(x.h.loop, &x.h.guard, 10 * 1000000, on_guard);
    exchange ex = { &x.h, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", "\r\n\r\nlater" };
    pthread_create(&t, NULL, client, &ex);
    weir_loop_run(x.h.loop);
    pthread_join(t, NULL);
    pthread_join(x.worker, NULL);
    cr_assert_eq(x.h.client_error, 0);
    cr_assert(strncmp(x.h.reply, "HTTP/1.1 200", 12) == 0, "%s", x.h.reply);
    cr_assert(strstr(x.h.reply, "\r\n\r\nlater"), "%s", x.h.reply);
    weir_timer_stop(&x.h.guard);
    weir_loop_free(x.h.loop);
    weir_http_free(x.h.http);
}
