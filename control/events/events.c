/*
 * control/events/events.c — see events.h.
 *
 * Loop thread: the client list, authorisation results, broadcast.
 * Any thread: weir_events_emit (bus watchers run on the publisher's thread,
 * uploads on workers and processing threads), which hands a finished
 * message to the loop with weir_loop_post.
 */
#include "control/events/events.h"
#include "core/http.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libavutil/error.h>

#define EVENTS_PATH "/api/v1/events"

typedef struct client client;

struct weir_events {
    weir_events_opts o;
    client *clients;                /* loop */
    atomic_int listening;           /* READY clients: emit does nothing at 0 */
    atomic_int stopped;
    int watching;
};

struct client {
    client *prev, *next;
    weir_events *ev;
    weir_http_ws *ws;               /* NULL once closed (a check may still run) */
    char token[WEIR_CRED_LEN + 1];
    int ready;
    int checking;                   /* a token check holds this client */
    int result;                     /* the check: 0 or AVERROR */
    weir_scope scope;
};

/* ---- credentials --------------------------------------------------------- */

static int token_shape(const char *t, size_t n)
{
    return n == WEIR_CRED_LEN && strncmp(t, "wt_", 3) == 0;
}

int weir_events_protocol_token(const char *list, char out[WEIR_CRED_LEN + 1])
{
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 7 && strncmp(p, "bearer.", 7) == 0 && token_shape(p + 7, len - 7)) {
            memcpy(out, p + 7, WEIR_CRED_LEN);
            out[WEIR_CRED_LEN] = '\0';
            return 0;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return -1;
}

/* The API token the upgrade request carries, into out; -1 if none of the
 * right shape.  Looked at: Authorization, Sec-WebSocket-Protocol, ?token=. */
static int credential(weir_http_req *req, char out[WEIR_CRED_LEN + 1])
{
    char buf[512];
    int n;

    if ((n = weir_http_req_header(req, "authorization", buf, sizeof buf)) > 7 &&
        strncasecmp(buf, "Bearer ", 7) == 0 && token_shape(buf + 7, (size_t)n - 7)) {
        memcpy(out, buf + 7, WEIR_CRED_LEN + 1);
        return 0;
    }
    if (weir_http_req_header(req, "sec-websocket-protocol", buf, sizeof buf) > 0 &&
        weir_events_protocol_token(buf, out) == 0)
        return 0;
    if ((n = weir_http_req_query(req, "token", buf, sizeof buf)) > 0 &&
        token_shape(buf, (size_t)n)) {
        memcpy(out, buf, WEIR_CRED_LEN + 1);
        return 0;
    }
    return -1;
}

/* ---- messages ------------------------------------------------------------ */

/* {"type","time","data"} as a buffer with the headroom weir_http_ws_send_buf
 * wants; NULL on ENOMEM. */
static weir_buf *message(weir_events *ev, const char *type, const json_t *data)
{
    char when[WEIR_ISO8601_LEN];
    json_t *o;
    char *text;
    weir_buf *m = NULL;

    (void)ev;
    weir_clock_iso8601(weir_clock_unix_ms(), when);
    o = data ? json_pack("{ss ss sO}", "type", type, "time", when, "data", (json_t *)data)
             : json_pack("{ss ss s{}}", "type", type, "time", when, "data");
    if (!o)
        return NULL;
    if ((text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)))) {
        size_t n = strlen(text);
        if ((m = weir_buf_new(LWS_PRE + n)))
            memcpy(m->data + LWS_PRE, text, n);
        free(text);
    }
    json_decref(o);
    return m;
}

typedef struct post {
    weir_events *ev;
    weir_buf *m;
} post;

static void broadcast(void *arg)        /* loop */
{
    post *p = arg;

    if (!atomic_load(&p->ev->stopped))
        for (client *c = p->ev->clients; c; c = c->next)
            if (c->ready && c->ws)
                weir_http_ws_send_buf(c->ws, p->m);     /* a slow one is dropped there */
    weir_buf_unref(p->m);
    free(p);
}

void weir_events_emit(weir_events *ev, const char *type, const json_t *data)
{
    post *p;

    if (!ev || atomic_load(&ev->stopped) || atomic_load(&ev->listening) == 0)
        return;
    if (!(p = malloc(sizeof *p)) || !(p->m = message(ev, type, data))) {
        free(p);
        return;                     /* ENOMEM: an event lost, nothing else */
    }
    p->ev = ev;
    if (weir_loop_post(ev->o.loop, broadcast, p) < 0) {
        weir_buf_unref(p->m);
        free(p);
    }
}

/* ---- clients ------------------------------------------------------------- */

static void client_free(client *c)
{
    weir_events *ev = c->ev;

    if (c->prev)
        c->prev->next = c->next;
    else
        ev->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    explicit_bzero(c->token, sizeof c->token);
    free(c);
}

static void check_run(void *arg)        /* work */
{
    client *c = arg;
    c->result = weir_tokens_verify(c->ev->o.db, c->token, &c->scope);
}

static void check_done(void *arg)       /* loop */
{
    client *c = arg;
    weir_buf *m;

    c->checking = 0;
    explicit_bzero(c->token, sizeof c->token);
    if (!c->ws) {                   /* closed while we asked */
        client_free(c);
        return;
    }
    if (c->result < 0) {
        weir_http_ws_close(c->ws, 4401, "unauthorized: unknown or revoked token");
        return;
    }
    if (c->scope < WEIR_SCOPE_READ) {
        weir_http_ws_close(c->ws, 4403, "forbidden: the token needs read scope");
        return;
    }
    c->ready = 1;
    atomic_fetch_add(&c->ev->listening, 1);
    if ((m = message(c->ev, "ready", NULL))) {
        weir_http_ws_send_buf(c->ws, m);
        weir_buf_unref(m);
    }
}

static int ws_accept(void *arg, weir_http_req *req)
{
    char token[WEIR_CRED_LEN + 1];
    (void)arg;

    if (credential(req, token) < 0) {
        weir_http_add_header(req, "WWW-Authenticate", "Bearer");
        return 401;
    }
    explicit_bzero(token, sizeof token);
    return 0;
}

static int ws_open(void *arg, weir_http_ws *ws, weir_http_req *req)
{
    weir_events *ev = arg;
    client *c = calloc(1, sizeof *c);
    int r;

    if (!c)
        return AVERROR(ENOMEM);
    c->ev = ev;
    c->ws = ws;
    if (credential(req, c->token) < 0) {
        free(c);
        return AVERROR(EACCES);     /* cannot happen: accept saw one */
    }
    c->next = ev->clients;
    if (ev->clients)
        ev->clients->prev = c;
    ev->clients = c;
    weir_http_ws_set_user(ws, c);
    c->checking = 1;
    if ((r = weir_work_submit(ev->o.work, check_run, check_done, c)) < 0) {
        c->checking = 0;
        weir_http_ws_set_user(ws, NULL);
        client_free(c);
        return r;
    }
    return 0;
}

static void ws_closed(void *arg, weir_http_ws *ws)
{
    client *c = weir_http_ws_user(ws);
    (void)arg;

    if (!c)
        return;
    if (c->ready)
        atomic_fetch_sub(&c->ev->listening, 1);
    c->ready = 0;
    c->ws = NULL;
    if (!c->checking)
        client_free(c);             /* else check_done frees it */
}

static const weir_http_ws_handler events_ws = {
    .accept = ws_accept, .open = ws_open, .closed = ws_closed,
};

/* ---- the bus --------------------------------------------------------------- */

static void on_bus(void *arg, weir_bus_event e, weir_stream *s)   /* publisher's thread */
{
    weir_events *ev = arg;
    json_t *data;

    if (atomic_load(&ev->listening) == 0)
        return;
    if (!(data = json_pack("{ss}", "name", weir_stream_name(s))))
        return;
    weir_events_emit(ev, e == WEIR_BUS_PUBLISHED ? "stream.started" : "stream.ended", data);
    json_decref(data);
}

/* ---- the module ------------------------------------------------------------ */

int weir_events_new(const weir_events_opts *opts, weir_events **out)
{
    weir_events *ev = calloc(1, sizeof *ev);
    int r;

    *out = NULL;
    if (!ev)
        return AVERROR(ENOMEM);
    ev->o = *opts;
    if ((r = weir_http_ws_route(opts->http, EVENTS_PATH, &events_ws, ev)) < 0)
        goto fail;
    if (opts->bus) {
        if ((r = weir_bus_watch(opts->bus, on_bus, ev)) < 0)
            goto fail;
        ev->watching = 1;
    }
    *out = ev;
    return 0;
fail:
    weir_log_error("events", "cannot set up " EVENTS_PATH, WL_ERR(r));
    free(ev);
    return r;
}

void weir_events_stop(weir_events *ev)
{
    if (!ev)
        return;
    atomic_store(&ev->stopped, 1);
    if (ev->watching)
        weir_bus_unwatch(ev->o.bus, on_bus, ev);
    ev->watching = 0;
}

void weir_events_free(weir_events *ev)
{
    if (!ev)
        return;
    weir_events_stop(ev);
    /* The loop is gone: its connections closed (ws_closed ran) and its
     * posted work ran.  A client still here waited on a check that the
     * work pool dropped at shutdown. */
    while (ev->clients)
        client_free(ev->clients);
    free(ev);
}
