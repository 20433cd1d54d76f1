/*
 * core/http.c — see http.h.
 *
 * One lws protocol on one listening vhost.  lws allocates a `conn` per
 * connection when it binds the connection to our protocol; a connection
 * carries one request at a time (HTTP/1.1 keep-alive, no pipelining beyond
 * what lws serialises for us).
 *
 *   LWS_CALLBACK_HTTP              request line + headers parsed: route it, or
 *                                  start collecting a body
 *   LWS_CALLBACK_HTTP_BODY         body bytes (bounded by max_body)
 *   LWS_CALLBACK_HTTP_BODY_COMPLETION  body done: run the handler
 *   LWS_CALLBACK_HTTP_DROP_PROTOCOL / CLOSED_HTTP  connection gone
 *
 * A streaming route (weir_http_route_stream) runs its handler on
 * LWS_CALLBACK_HTTP and turns the body into sink calls:
 *
 *   headers: handler (the body keeps arriving meanwhile)
 *   HTTP_BODY: to the sink when it is attached, not paused and nothing is
 *              held; otherwise appended to req->body (held)
 *   weir_http_body_stream / _resume: held bytes, and end() if the body is
 *              complete, go out from the conn's `deliver` timer
 *   rx (lws_rx_flow_control) is off while the sink is paused, or while no
 *              sink takes bytes and HTTP_STREAM_HOLD_PAUSE are held; see
 *              rx_update.  (Turning rx off as the headers arrive would be
 *              simpler, but lws 4.1 then keeps body bytes that came with
 *              the headers until more arrive: a small body would hang.)
 *   BODY_COMPLETION: end() at once when nothing is held, else from `deliver`
 *   closed before end(): gone()
 *
 * Invariant: bytes reach the sink in order, because live bytes go straight
 * through only while nothing is held.  A response made while body bytes are
 * still unread either drops the rest as it comes (discard; the request
 * finishes once both the response is written and the body is in) or, past
 * HTTP_DISCARD_MAX, closes the connection after it (close_after).
 *
 * HTTP/1.1 in clear or over TLS; HTTP/2 over TLS (ALPN "h2,http/1.1") and
 * on http.h2c_port (prior knowledge).  One h2 stream is one lws child wsi
 * with its own conn, and every response path branches to the h2_* group
 * at its top: see "HTTP/2".  The h1 paths below never see an h2 stream.
 *
 * Large bodies on plain HTTP/1.1 bypass lws_write: see "direct sends".
 */
#include "core/http.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <libavutil/error.h>

#define HTTP_PATH_MAX       2048
#define HTTP_HEADER_BUDGET  4096    /* bytes reserved for response headers */
#define HTTP_EXTRA_MAX      16      /* handler-added response headers */
#define HTTP_SERVER_NAME    "weir"
#define HTTP_CODES_CACHED   8       /* per route: status -> counter child */
#define HTTP_INLINE_MAX     (16 * 1024) /* bodies up to this go out with the headers */
#define HTTP_STREAM_QUEUE   32          /* pieces of a streamed response not yet sent */
#define HTTP_CHUNK          (1024 * 1024) /* larger ones: one write per WRITEABLE */
/* Streamed bodies: what may pile up while a sink is not taking bytes.  lws
 * stops reading when told, so only what it had already read arrives; more
 * than this means it did not stop, and the connection is dropped. */
#define HTTP_STREAM_HOLD_MAX (1024 * 1024)
#define HTTP_STREAM_HOLD_PAUSE (256 * 1024)   /* held bytes that stop reading */
/* A streamed request answered before its body was read: up to this much of
 * the rest is read and dropped, so the connection lives on and the client,
 * still sending, gets to read the answer (closing with unread bytes makes
 * the kernel reset the connection, and the answer can be lost); past it the
 * connection closes after the answer. */
#define HTTP_DISCARD_MAX    (4 * 1024 * 1024)
#define HTTP_RATE_SLOTS     8192    /* client addresses with a rate bucket */
#define HTTP_RATE_PROBE     8       /* slots looked at per address */

/* Metric children of one route label, looked up once (loop thread only). */
typedef struct route_metrics {
    const char *label;              /* the route's path, or "unmatched" */
    weir_metric_child *duration;
    struct { int status; weir_metric_child *child; } codes[HTTP_CODES_CACHED];
} route_metrics;

typedef struct route {
    const char *method;             /* NULL: any */
    const char *path;
    size_t len;
    int prefix;
    int stream;                     /* weir_http_route_stream: handler on headers */
    weir_http_handler fn;
    void *arg;
    route_metrics *metrics;
} route;

/* Handler-added response headers live in the request's own arena, so
 * adding one costs no malloc (most media responses carry eight). */
#define HTTP_EXTRA_BYTES    2048
typedef struct extra_header {
    char *name;                     /* with trailing ':' as lws wants it; in extra_buf */
    char *value;
    int vlen;
} extra_header;

struct weir_http_req {
    weir_http *http;
    struct lws *wsi;
    const char *method;
    char path[HTTP_PATH_MAX];
    unsigned char *body;
    size_t body_len, body_cap;
    int responded;
    int deferred;                   /* handler took weir_http_defer() */
    int resumed;                    /* respond through WRITEABLE (see weir_http_resume) */
    int status;
    size_t sent;                    /* response bytes, headers included */
    int64_t t0_us;                  /* headers arrived */
    const route *rt;                /* matched route, or NULL */
    extra_header extra[HTTP_EXTRA_MAX];
    int nextra;
    size_t extra_used;              /* bytes of extra_buf taken */
    char extra_buf[HTTP_EXTRA_BYTES];
    /* Streaming routes only.  body/body_len above hold bytes not yet given
     * to the sink. */
    int64_t body_expected;          /* Content-Length */
    int64_t body_seen;              /* bytes lws handed us */
    int body_complete;              /* every byte arrived */
    const weir_http_body_sink *sink;    /* attached, until end/gone/abort */
    void *sink_arg;
    int body_taken;                 /* weir_http_body_stream was called */
    int body_paused;                /* by the sink */
    int rx_off;                     /* we told lws to stop reading */
    int discard;                    /* answered: the rest of the body is dropped */
    int written;                    /* discard: the response is out, the body is not */
    int close_after;                /* the response ends the connection */
    int dispatched;                 /* the handler ran (non-streaming routes) */
};

/* lws per-session data: one per connection. */
typedef struct conn {
    struct conn *prev, *next;       /* weir_http.conns */
    struct lws *wsi;
    int linked;
    int in_request;                 /* between headers and response */
    weir_http_deferred *deferred;   /* handle held by whoever answers later */
    unsigned char *out;             /* built response waiting for WRITEABLE */
    size_t out_len;
    weir_buf *chunks[HTTP_STREAM_QUEUE];    /* streamed response: pieces to send */
    int nchunks;
    int streaming;                  /* chunked response in progress */
    int stream_ended;               /* no more pieces: send the last chunk */
    weir_buf *body;                 /* large body being sent from a shared buffer */
    const uint8_t *body_ptr;        /* next byte to send */
    size_t body_left;
    int direct;                     /* out and body go straight to the socket (see
                                     * "direct sends"); out_off: bytes of out sent */
    size_t out_off;
    int blocked;                    /* direct: the socket was full at least once */
    int tail_wait;                  /* direct: all sent; finish on the next WRITEABLE */
    weir_timer deliver;             /* streamed body: held bytes to the sink */
    int64_t idle_us;                /* kept alive between requests since; 0: not idle
                                     * (see "idle keep-alive connections") */
    int h2;                         /* an HTTP/2 stream (see "HTTP/2") */
    size_t piece_off;               /* h2 streamed response: bytes of chunks[0] sent */
    uint64_t peer;                  /* client address as a rate-table key; 0: unknown */
    weir_http_req req;
} conn;

/* One client address's token bucket (http.rate_limit). */
typedef struct rate_slot {
    uint64_t key;                   /* 0: free */
    double tokens;
    int64_t last_us;
} rate_slot;

struct weir_http_deferred {
    conn *c;                        /* NULL once the connection closed */
};

static conn *conn_of(weir_http_req *req)
{
    return (conn *)((char *)req - offsetof(conn, req));
}

/* A WebSocket route: the plain GET route of the same path (426, metrics and
 * the access log's route label) is routes[route]. */
typedef struct ws_route {
    const char *path;
    const weir_http_ws_handler *h;
    void *arg;
    size_t route;
} ws_route;

/* lws per-session data of the "weir" (WebSocket) protocol: one client. */
struct weir_http_ws {
    struct weir_http_ws *prev, *next;   /* weir_http.clients */
    weir_http *http;
    struct lws *wsi;
    const ws_route *rt;
    void *user;
    weir_buf **q;                   /* ring of queued messages, http->ws_max slots */
    size_t qhead, qlen;
    int linked;
    int closing;                    /* no more sends: dropped, or closing */
    int close_code;                 /* > 0: send a close frame once the queue is out */
    char close_reason[64];
};

struct weir_http {
    weir_loop *loop;
    struct lws_vhost *vhost;
    weir_http_opts opts;
    int port;                       /* bound port */
    route *routes;
    size_t nroutes;

    weir_metric *requests, *durations;  /* NULL without opts.metrics */
    route_metrics unmatched;
    weir_metric_child *refused;         /* connections past max_connections */
    int64_t refused_unlogged;           /* since the last log line */
    int64_t refused_logged_us;
    rate_slot *rate;                    /* HTTP_RATE_SLOTS, with opts.rate_limit */
    weir_timer idle_sweep;              /* closes idle keep-alive connections */
    /* lws's header names ("if-none-match:"), their lengths without the
     * colon (0: not a header), read once: weir_http_req_header compares
     * lengths before names, not every name of lws's ~100 tokens. */
    struct { const char *name; size_t len; } tokens[WSI_TOKEN_COUNT];
    /* build_response's buffer for answers written at once (see there). */
    unsigned char scratch[LWS_PRE + HTTP_HEADER_BUDGET + HTTP_INLINE_MAX];

    conn *conns;
    size_t nconns;
    ws_route *ws_routes;
    size_t nws_routes;
    size_t ws_max;                  /* queued messages per client */
    weir_http_ws *clients;
    size_t nclients;
    weir_http_req upg;              /* an upgrade request, for accept() and open() */
    int draining;
    void (*drained)(void *arg);
    void *drained_arg;
};

/* ---- connection bookkeeping ----------------------------------------- */

static void conn_link(weir_http *http, conn *c)
{
    if (c->linked)
        return;
    c->prev = NULL;
    c->next = http->conns;
    if (http->conns)
        http->conns->prev = c;
    http->conns = c;
    c->linked = 1;
    http->nconns++;
}

/* Draining: done once no HTTP connection and no WebSocket client is left. */
static void drain_check(weir_http *http)
{
    if (http->draining && http->nconns == 0 && http->nclients == 0 && http->drained) {
        void (*done)(void *) = http->drained;
        http->drained = NULL;
        done(http->drained_arg);
    }
}

static void req_reset(weir_http_req *req)
{
    free(req->body);
    req->body = NULL;
    req->body_len = req->body_cap = 0;
    req->nextra = 0;
    req->extra_used = 0;
    req->responded = 0;
    req->deferred = 0;
    req->resumed = 0;
    req->status = 0;
    req->sent = 0;
    req->rt = NULL;
    req->path[0] = '\0';
    req->method = NULL;
    req->body_expected = req->body_seen = 0;
    req->body_complete = 0;
    req->sink = NULL;
    req->sink_arg = NULL;
    req->body_taken = req->body_paused = req->close_after = 0;
    req->discard = req->written = req->rx_off = 0;
    req->dispatched = 0;
}

static void conn_unlink(weir_http *http, conn *c)
{
    weir_timer_stop(&c->deliver);
    if (c->req.sink) {
        const weir_http_body_sink *sink = c->req.sink;
        c->req.sink = NULL;
        sink->gone(c->req.sink_arg);
    }
    if (c->deferred) {
        c->deferred->c = NULL;      /* the answer, when it comes, goes nowhere */
        c->deferred = NULL;
    }
    free(c->out);
    c->out = NULL;
    c->direct = c->blocked = c->tail_wait = 0;
    c->out_off = 0;
    weir_buf_unref(c->body);
    c->body = NULL;
    for (int i = 0; i < c->nchunks; i++)
        weir_buf_unref(c->chunks[i]);
    c->nchunks = 0;
    c->streaming = c->stream_ended = 0;
    c->piece_off = 0;
    c->peer = 0;
    req_reset(&c->req);
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        http->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->linked = 0;
    http->nconns--;
    drain_check(http);
}

/* ---- limits ------------------------------------------------------------ */

/* A new connection while max_connections are open: refused, counted, and
 * logged at most once a second (a flood must not become a log flood). */
static int conn_refuse(weir_http *http)
{
    int64_t now = lws_now_usecs();

    weir_counter_inc(http->refused);
    http->refused_unlogged++;
    if (now - http->refused_logged_us >= 1000000) {
        weir_log_warn("http", "connection refused: too many open",
                      WL_INT("max_connections", http->opts.max_connections),
                      WL_INT("refused", http->refused_unlogged));
        http->refused_unlogged = 0;
        http->refused_logged_us = now;
    }
    return -1;
}

/* The client address of wsi as a nonzero key (its network connection's
 * peer, for an HTTP/2 stream), or 0 when it cannot be read. */
static uint64_t peer_key(struct lws *wsi)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    uint64_t h = 1469598103934665603ull;        /* FNV-1a over the address bytes */
    const unsigned char *p;
    size_t n;
    int fd = lws_get_socket_fd(lws_get_network_wsi(wsi));

    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        p = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        n = 4;
    } else if (ss.ss_family == AF_INET6) {
        p = (const unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        n = 16;
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Takes a token from the request's client bucket.  0: go on; otherwise the
 * seconds to tell the client to wait (Retry-After). */
static int rate_take(weir_http *http, conn *c)
{
    double rate = (double)http->opts.rate_limit;
    int64_t now = lws_now_usecs();
    rate_slot *slot = NULL, *oldest = NULL;
    size_t at;

    if (!http->rate)
        return 0;
    if (!c->peer && !(c->peer = peer_key(c->wsi)))
        return 0;                   /* no address: nothing to key on */
    at = (size_t)(c->peer % HTTP_RATE_SLOTS);
    for (int i = 0; i < HTTP_RATE_PROBE && !slot; i++) {
        rate_slot *s = &http->rate[(at + (size_t)i) % HTTP_RATE_SLOTS];
        if (s->key == c->peer)
            slot = s;
        else if (!oldest || s->key == 0 || (oldest->key && s->last_us < oldest->last_us))
            oldest = s;
    }
    if (!slot) {                    /* new address: a full bucket */
        slot = oldest;
        slot->key = c->peer;
        slot->tokens = rate;
        slot->last_us = now;
    }
    slot->tokens += rate * (double)(now - slot->last_us) / 1e6;
    if (slot->tokens > rate)
        slot->tokens = rate;
    slot->last_us = now;
    if (slot->tokens >= 1.0) {
        slot->tokens -= 1.0;
        return 0;
    }
    return (int)((1.0 - slot->tokens) / rate) + 1;
}

/* ---- request accessors ---------------------------------------------- */

const char *weir_http_req_method(const weir_http_req *req) { return req->method; }
const char *weir_http_req_path(const weir_http_req *req) { return req->path; }

int weir_http_req_h2(const weir_http_req *req)
{
    return lws_get_network_wsi(req->wsi) != req->wsi;
}

const void *weir_http_req_body(const weir_http_req *req, size_t *len)
{
    if (req->rt && req->rt->stream) {       /* held bytes are not a body */
        *len = 0;
        return NULL;
    }
    *len = req->body_len;
    return req->body;
}

int64_t weir_http_req_content_length(const weir_http_req *req)
{
    char text[32], *end;
    long long n;

    if (lws_hdr_copy(req->wsi, text, sizeof text, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return -1;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    n = strtoll(text, &end, 10);
    return errno || *end ? -1 : (int64_t)n;
}

int weir_http_req_header(const weir_http_req *req, const char *name, char *buf, size_t cap)
{
    /* lws keeps well-known headers by token and the rest as custom headers
     * (named with the trailing colon). */
    size_t nlen = strlen(name);
    char key[128];
    int n, klen;

    if (cap > 0x7fffffff)
        cap = 0x7fffffff;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        if (req->http->tokens[t].len != nlen ||
            strncasecmp(req->http->tokens[t].name, name, nlen) != 0)
            continue;
        if (lws_hdr_total_length(req->wsi, (enum lws_token_indexes)t) <= 0)
            return -1;
        n = lws_hdr_copy(req->wsi, buf, (int)cap, (enum lws_token_indexes)t);
        return n < 0 ? -1 : n;
    }
    klen = snprintf(key, sizeof key, "%s:", name);
    if (klen <= 0 || (size_t)klen >= sizeof key)
        return -1;
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (lws_hdr_custom_length(req->wsi, key, klen) < 0)
        return -1;
    n = lws_hdr_custom_copy(req->wsi, buf, (int)cap, key, klen);
    return n < 0 ? -1 : n;
}

int weir_http_req_query(const weir_http_req *req, const char *name, char *buf, size_t cap)
{
    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "%s=", name);
    const char *v;
    size_t vlen;

    if (plen <= 0 || (size_t)plen >= sizeof prefix || cap > 0x7fffffff)
        return -1;
    if (lws_hdr_total_length(req->wsi, WSI_TOKEN_HTTP_URI_ARGS) <= 0)
        return -1;              /* no query at all: the common case */
    v = lws_get_urlarg_by_name(req->wsi, prefix, buf, (int)cap);
    if (!v)
        return -1;
    /* lws copies "name=value" into buf and points past the name. */
    vlen = strlen(v);
    memmove(buf, v, vlen + 1);
    return (int)vlen;
}

int weir_http_add_header(weir_http_req *req, const char *name, const char *value)
{
    extra_header *h;
    size_t nlen = strlen(name), vlen = strlen(value);

    if (req->nextra == HTTP_EXTRA_MAX ||
        nlen + vlen + 3 > sizeof req->extra_buf - req->extra_used)
        return AVERROR(ENOSPC);
    h = &req->extra[req->nextra];
    h->name = req->extra_buf + req->extra_used;
    memcpy(h->name, name, nlen);
    h->name[nlen] = ':';
    h->name[nlen + 1] = '\0';
    h->value = h->name + nlen + 2;
    memcpy(h->value, value, vlen + 1);
    h->vlen = (int)vlen;
    req->extra_used += nlen + vlen + 3;
    req->nextra++;
    return 0;
}

/* ---- responses ------------------------------------------------------- */

#define HTTP_CHUNKED ((size_t)-1)     /* build_response: a streamed body */

static void rx_update(weir_http_req *req);
static int h2_respond(weir_http_req *req, int status, const char *content_type,
                      weir_buf *body, const void *copy, size_t off, size_t len);
static int h2_stream_begin(weir_http_req *req, int status, const char *content_type);
static int h2_wsi(struct lws *wsi);
static int direct_ok(struct lws *wsi);
static int direct_send(weir_http *http, conn *c, struct lws *wsi);

/* A streamed request is answered: the sink hears no more, and the unread
 * rest of the body is dropped or the connection closes after the answer. */
static void stream_answered(weir_http_req *req)
{
    if (!req->rt || !req->rt->stream)
        return;
    req->sink = NULL;
    if (req->body_seen >= req->body_expected || req->close_after)
        return;
    if (req->body_expected - req->body_seen <= HTTP_DISCARD_MAX) {
        req->discard = 1;
        req->body_len = 0;
        req->body_paused = 0;
    } else {
        req->close_after = 1;
    }
    rx_update(req);
}

static int is_head(const weir_http_req *req)
{
    return req->method && strcmp(req->method, "HEAD") == 0;
}

/* Content-Length.  A direct send (conn.direct) bypasses lws_write, so lws
 * must not count the body down (lws_add_http_header_content_length would
 * make it expect those bytes through lws_write): it gets a plain header. */
static int add_content_length(weir_http_req *req, size_t len, unsigned char **p,
                              unsigned char *end)
{
    char text[24];
    int n;

    if (!conn_of(req)->direct)
        return lws_add_http_header_content_length(req->wsi, len, p, end);
    n = snprintf(text, sizeof text, "%zu", len);
    return lws_add_http_header_by_token(req->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                        (const unsigned char *)text, n, p, end);
}

/* Builds status line, headers and body into one malloc'd buffer with LWS_PRE
 * bytes of headroom.  *out_len counts from buf + LWS_PRE. */
static int build_response(weir_http_req *req, int status, const char *content_type,
                          const void *body, size_t len, int scratch_ok,
                          unsigned char **out, size_t *out_len)
{
    struct lws *wsi = req->wsi;
    size_t body_out = is_head(req) || !body ? 0 : len;
    size_t need = LWS_PRE + HTTP_HEADER_BUDGET + body_out;
    unsigned char *buf, *start, *p, *end;

    /* scratch_ok: the caller writes the answer and is done with it before
     * returning, so the server's scratch buffer serves (loop thread only;
     * lws copies what the socket does not take): playlists and other
     * small answers cost no malloc. */
    if (scratch_ok && need <= sizeof req->http->scratch)
        buf = req->http->scratch;
    else if (!(buf = malloc(need)))
        return AVERROR(ENOMEM);
    start = p = buf + LWS_PRE;
    end = start + HTTP_HEADER_BUDGET;

    if (lws_add_http_header_status(wsi, (unsigned)status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SERVER,
                                     (const unsigned char *)HTTP_SERVER_NAME,
                                     (int)strlen(HTTP_SERVER_NAME), &p, end) ||
        (content_type &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                      (const unsigned char *)content_type,
                                      (int)strlen(content_type), &p, end)) ||
        (len != HTTP_CHUNKED && add_content_length(req, len, &p, end)) ||
        (len == HTTP_CHUNKED &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                      (const unsigned char *)"chunked", 7, &p, end)))
        goto fail;
    for (int i = 0; i < req->nextra; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)req->extra[i].name,
                                        (const unsigned char *)req->extra[i].value,
                                        req->extra[i].vlen, &p, end))
            goto fail;
    if ((req->http->draining || req->close_after) &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                     (const unsigned char *)"close", 5, &p, end))
        goto fail;
    if (lws_finalize_http_header(wsi, &p, end))
        goto fail;
    if (body_out)
        memcpy(p, body, body_out);
    *out = buf;
    *out_len = (size_t)(p - start) + body_out;
    return 0;
fail:
    if (buf != req->http->scratch)
        free(buf);
    return AVERROR(ENOSPC);     /* headers over HTTP_HEADER_BUDGET */
}

int weir_http_respond(weir_http_req *req, int status, const char *content_type,
                      const void *body, size_t len)
{
    unsigned char *buf;
    size_t n;
    int r;

    if (req->responded)
        return AVERROR(EINVAL);
    if (req == &req->http->upg && h2_wsi(req->wsi)) {
        /* A WebSocket refused on an h2 stream (ws_decide): lws resets the
         * stream; no HTTP answer can be written there. */
        req->responded = 1;
        req->status = status;
        return 0;
    }
    if (req != &req->http->upg && conn_of(req)->h2)
        return h2_respond(req, status, content_type, NULL, body, 0, len);
    req->responded = 1;
    req->status = status;
    stream_answered(req);
    if ((r = build_response(req, status, content_type, body, len, !req->resumed, &buf, &n)) < 0)
        goto fail;
    weir_counter_add(req->http->opts.tx_bytes, (double)n);
    req->sent = n;
    if (req->resumed) {
        /* Outside the connection's own callback: write when lws says so. */
        conn *c = conn_of(req);
        c->out = buf;
        c->out_len = n;
        lws_callback_on_writable(req->wsi);
        return 0;
    }
    /* Status line, headers and body leave in one write (see the header). */
    if (lws_write(req->wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) < 0)
        r = AVERROR(EIO);
    if (buf != req->http->scratch)
        free(buf);
fail:
    if (r < 0)
        weir_log_warn("http", "response not sent", WL_STR("path", req->path),
                      WL_INT("status", status), WL_ERR(r));
    return r;
}

int weir_http_respond_buf(weir_http_req *req, int status, const char *content_type,
                          weir_buf *body, size_t off, size_t len)
{
    conn *c = conn_of(req);
    unsigned char *buf;
    size_t n;
    int r;

    if (off > body->size || len > body->size - off)
        return AVERROR(EINVAL);
    if (c->h2)
        return h2_respond(req, status, content_type, body, NULL, off, len);
    if (len <= HTTP_INLINE_MAX || is_head(req))
        return weir_http_respond(req, status, content_type, body->data + off, len);
    if (req->responded)
        return AVERROR(EINVAL);
    req->responded = 1;
    req->status = status;
    stream_answered(req);
    c->direct = direct_ok(req->wsi);
    if ((r = build_response(req, status, content_type, NULL, len, 0, &buf, &n)) < 0) {
        c->direct = 0;
        weir_log_warn("http", "response not sent", WL_STR("path", req->path),
                      WL_INT("status", status), WL_ERR(r));
        return r;
    }
    weir_counter_add(req->http->opts.tx_bytes, (double)(n + len));
    req->sent = n + len;
    c->body = weir_buf_ref(body);
    c->body_ptr = body->data + off;
    c->body_left = len;
    if (c->direct) {
        c->out = buf;
        c->out_len = n;
        c->out_off = 0;
        if (req->resumed || lws_partial_buffered(req->wsi)) {
            lws_callback_on_writable(req->wsi);
            return 0;
        }
        /* Inside the connection's callback: start at once; what the socket
         * does not take now goes on WRITEABLE.  A socket error is the
         * client's doing (it hung up): the connection closes as the
         * request finishes, and the handler has nothing to report. */
        if (direct_send(req->http, c, req->wsi) < 0) {
            free(c->out);
            c->out = NULL;
            weir_buf_unref(c->body);
            c->body = NULL;
            c->direct = c->blocked = c->tail_wait = 0;
            req->close_after = 1;
        }
        return 0;
    }
    if (req->resumed) {
        c->out = buf;
        c->out_len = n;
    } else {
        r = lws_write(req->wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP);
        free(buf);
        if (r < 0)
            return AVERROR(EIO);
    }
    lws_callback_on_writable(req->wsi);
    return 0;
}

/* ---- direct sends ------------------------------------------------------
 *
 * Large bodies on plain HTTP/1.1 skip lws_write: headers go out with
 * send(MSG_MORE) and the body with sendfile(2) from the buffer's memfd, or,
 * for a buffer in plain memory (under 64 KiB: an LL-HLS part), headers and
 * body in one sendmsg(2); straight on the socket, resuming at the same
 * byte on WRITEABLE.  Measured on a 258 KiB segment (bench/origin.py):
 * lws_write copies the whole body into the socket and, when the socket
 * takes only part of it, mallocs and copies the rest into its own buffer;
 * sendfile hands the kernel the pages, and a partial send costs nothing.
 * Only where lws adds nothing to the bytes: not over TLS (it encrypts) and
 * not on an HTTP/2 stream (it frames), and only while lws has nothing of
 * its own queued for the socket. */
static int direct_ok(struct lws *wsi)
{
    return !lws_is_ssl(wsi) && lws_get_network_wsi(wsi) == wsi && lws_get_socket_fd(wsi) >= 0;
}

/* Sends what is left of out, then of the body.  Returns 1 when all is out,
 * 0 when the socket is full (WRITEABLE comes back here), -1 on error. */
static int direct_send(weir_http *http, conn *c, struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi);
    ssize_t n;

    while (c->out && c->body_left && c->body->fd < 0) {
        /* A body in plain memory goes with the headers in one call.  (On
         * loopback the kernel sizes the send buffer in megabytes, so a
         * test cannot make this partial; the arithmetic below is what
         * resumes it elsewhere.) */
        struct iovec iov[2] = {
            { c->out + LWS_PRE + c->out_off, c->out_len - c->out_off },
            { (void *)c->body_ptr, c->body_left },
        };
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
        size_t head;

        n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto blocked;
        head = (size_t)n < iov[0].iov_len ? (size_t)n : iov[0].iov_len;
        c->out_off += head;
        c->body_ptr += (size_t)n - head;
        c->body_left -= (size_t)n - head;
        if (c->out_off == c->out_len) {
            free(c->out);
            c->out = NULL;
        }
    }
    while (c->out) {
        n = send(fd, c->out + LWS_PRE + c->out_off, c->out_len - c->out_off,
                 MSG_DONTWAIT | MSG_NOSIGNAL | (c->body_left ? MSG_MORE : 0));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto blocked;
        c->out_off += (size_t)n;
        if (c->out_off == c->out_len) {
            free(c->out);
            c->out = NULL;
        }
    }
    while (c->body_left) {
        if (c->body->fd >= 0) {
            off_t at = (off_t)(weir_buf_fd_off(c->body) + (uint64_t)(c->body_ptr - c->body->data));
            n = sendfile(fd, c->body->fd, &at, c->body_left);
        } else {
            n = send(fd, c->body_ptr, c->body_left, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto blocked;
        c->body_ptr += n;
        c->body_left -= (size_t)n;
    }
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    weir_buf_unref(c->body);
    c->body = NULL;
    c->direct = 0;
    if (c->blocked) {
        /* The tail still fills the socket buffer.  Finishing now would
         * leave lws waiting for POLLOUT in its between-requests state until
         * the client drained it, and lws 4.1 loses a request that arrives
         * in that same wake-up (the connection then idles until the
         * keep-alive timeout; main's lws_write path shows it every time
         * after a deferred answer to a slow reader).  Finishing on the next
         * POLLOUT, when the client has taken most of it, makes the loss
         * rarer (release build: 12 slow answers each followed at once by a
         * request, none lost; before, most were); it does not rule it out,
         * and the sanitizer build, slower, still lost one. */
        c->blocked = 0;
        c->tail_wait = 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    return 1;
blocked:
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return -1;
    c->blocked = 1;
    /* Progress so far; a client that stops reading is dropped after send_timeout. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                    (int)((http->opts.send_timeout_ms + 999) / 1000));
    lws_callback_on_writable(wsi);
    return 0;
}

/* On WRITEABLE: the next piece of a large body, straight from the shared
 * buffer.  On HTTP/1.1 without chunked encoding lws sends the bytes as they
 * are and writes nothing before them, so they need no LWS_PRE headroom and
 * no copy.  Returns 1 when the body is done, 0 for more, -1 on error. */
static int send_body_chunk(weir_http *http, conn *c, struct lws *wsi)
{
    size_t n = c->body_left < HTTP_CHUNK ? c->body_left : HTTP_CHUNK;
    int last = n == c->body_left;

    if (lws_write(wsi, (unsigned char *)c->body_ptr, n,
                  last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
        return -1;
    c->body_ptr += n;
    c->body_left -= n;
    if (!last) {
        /* Progress: a client that stops reading is dropped after send_timeout. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                        (int)((http->opts.send_timeout_ms + 999) / 1000));
        lws_callback_on_writable(wsi);
        return 0;
    }
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    weir_buf_unref(c->body);
    c->body = NULL;
    return 1;
}

/* ---- streamed responses (chunked) ------------------------------------ */

weir_http_req *weir_http_deferred_req(weir_http_deferred *d)
{
    return d->c ? &d->c->req : NULL;
}

int weir_http_stream_begin(weir_http_req *req, int status, const char *content_type)
{
    conn *c = conn_of(req);
    unsigned char *buf;
    size_t n;
    int r;

    if (req->responded || !req->deferred)
        return AVERROR(EINVAL);
    if (c->h2)
        return h2_stream_begin(req, status, content_type);
    if ((r = build_response(req, status, content_type, NULL, HTTP_CHUNKED, 0, &buf, &n)) < 0)
        return r;
    req->responded = 1;
    req->resumed = 1;               /* everything goes out on WRITEABLE */
    req->status = status;
    req->sent = n;
    weir_counter_add(req->http->opts.tx_bytes, (double)n);
    c->out = buf;
    c->out_len = n;
    c->streaming = 1;
    if (is_head(req))
        c->stream_ended = 1;        /* headers only */
    lws_callback_on_writable(req->wsi);
    return 0;
}

int weir_http_stream_write(weir_http_req *req, weir_buf *piece)
{
    conn *c = conn_of(req);

    if (!c->streaming || c->stream_ended)
        return AVERROR(EINVAL);
    if (is_head(req) || piece->size == 0)
        return 0;
    if (c->nchunks == HTTP_STREAM_QUEUE)
        return AVERROR(ENOSPC);
    c->chunks[c->nchunks++] = weir_buf_ref(piece);
    lws_callback_on_writable(req->wsi);
    return 0;
}

int weir_http_stream_end(weir_http_req *req)
{
    conn *c = conn_of(req);

    if (!c->streaming)
        return AVERROR(EINVAL);
    c->stream_ended = 1;
    lws_callback_on_writable(req->wsi);
    return 0;
}

/* On WRITEABLE: the next piece as one chunk ("<hex size>\r\n" piece
 * "\r\n"), or the last chunk.  Returns 1 when the response is done, 0 for
 * more (or nothing to send yet), -1 on error. */
static int send_stream_chunk(weir_http *http, conn *c, struct lws *wsi)
{
    static const char last[] = "0\r\n\r\n";
    unsigned char *buf;
    weir_buf *piece;
    int head, w;

    if (c->nchunks == 0) {
        if (!c->stream_ended)
            return 0;               /* woken again by the next write or the end */
        unsigned char tail[LWS_PRE + sizeof last];
        memcpy(tail + LWS_PRE, last, sizeof last - 1);
        if (lws_write(wsi, tail + LWS_PRE, sizeof last - 1, LWS_WRITE_HTTP_FINAL) < 0)
            return -1;
        c->streaming = 0;
        return 1;
    }
    piece = c->chunks[0];
    memmove(c->chunks, c->chunks + 1, (size_t)--c->nchunks * sizeof *c->chunks);
    /* Framed in a copy: pieces are parts (tens of KiB), and lws needs the
     * chunk header and the bytes in one write to keep them together. */
    buf = malloc(LWS_PRE + 16 + piece->size + 2);
    if (!buf) {
        weir_buf_unref(piece);
        return -1;
    }
    head = snprintf((char *)buf + LWS_PRE, 16, "%zx\r\n", piece->size);
    memcpy(buf + LWS_PRE + head, piece->data, piece->size);
    memcpy(buf + LWS_PRE + head + piece->size, "\r\n", 2);
    w = lws_write(wsi, buf + LWS_PRE, (size_t)head + piece->size + 2, LWS_WRITE_HTTP);
    weir_counter_add(http->opts.tx_bytes, (double)(head + piece->size + 2));
    c->req.sent += (size_t)head + piece->size + 2;
    free(buf);
    weir_buf_unref(piece);
    if (w < 0)
        return -1;
    if (c->nchunks || c->stream_ended)
        lws_callback_on_writable(wsi);
    return 0;
}

weir_http_deferred *weir_http_defer(weir_http_req *req)
{
    conn *c = conn_of(req);
    weir_http_deferred *d;

    if (req->responded || req->deferred || !(d = malloc(sizeof *d)))
        return NULL;
    d->c = c;
    c->deferred = d;
    req->deferred = 1;
    /* Whoever holds the request bounds its wait (the work pool's job, the
     * origin's hold timer); lws's own idle timeout must not cut it short. */
    lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
    return d;
}

weir_http_req *weir_http_resume(weir_http_deferred *d)
{
    conn *c = d->c;
    free(d);
    if (!c)
        return NULL;
    c->deferred = NULL;
    c->req.deferred = 0;            /* it may be deferred again (streaming routes) */
    c->req.resumed = 1;
    return &c->req;
}

int weir_http_respond_json(weir_http_req *req, int status, const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
    int r;
    if (!text)
        return AVERROR(ENOMEM);
    r = weir_http_respond(req, status, "application/json", text, strlen(text));
    free(text);
    return r;
}

int weir_http_respond_error(weir_http_req *req, int status, const char *message)
{
    json_t *obj = json_pack("{ss}", "error", message);
    int r;
    if (!obj)
        return AVERROR(ENOMEM);
    r = weir_http_respond_json(req, status, obj);
    json_decref(obj);
    return r;
}

/* ---- HTTP/2 -------------------------------------------------------------
 *
 * Over TLS, ALPN may pick h2 (on http.h2c_port every connection is h2,
 * a vhost of its own: see h2c_listen).  lws then runs the connection as a
 * network wsi that carries one child wsi per stream, each bound to
 * "weir-http" with a conn of its own: a stream is a connection here (its
 * own request state, counted against max_connections), and many go on at
 * once over one socket.
 *
 * What differs is the framing, so every response path branches to this
 * group at its top when c->h2 (the h1 paths stay as they are):
 *
 *   respond / respond_buf / stream_begin: HPACK'd headers (lws's header
 *     helpers encode for h2 when the wsi is a stream) into c->out, and the
 *     body as a weir_buf reference in c->body (a copy for respond(); the
 *     shared buffer itself for respond_buf), then ask for WRITEABLE:
 *     answers always leave from the stream's WRITEABLE, never from inside
 *     the request callback, whether deferred or not
 *   WRITEABLE: c->out as a HEADERS frame (END_STREAM when no body follows:
 *     HEAD, 304, empty), then DATA frames from c->body or from the queued
 *     pieces of a streamed response (no chunked encoding: each piece is
 *     DATA), the last with END_STREAM
 *
 * DATA frames are at most H2_FRAME bytes (the frame size every peer must
 * take) and at most the peer's flow-control window
 * (lws_get_peer_write_allowance): one lws_write makes one frame here, and
 * nothing relies on lws to split a write or to hold back what the window
 * does not allow (a peer resets a stream that overruns it).  With no window
 * left the stream waits, without asking for WRITEABLE: lws calls it again
 * when the peer's WINDOW_UPDATE arrives (test_origin_h2.py: 16 KiB windows,
 * and a peer that never opens one).  lws writes its 9-byte frame header into the LWS_PRE
 * bytes before the payload, so a piece of a shared buffer is copied into
 * scratch first: writing in place would scribble over bytes other
 * responses are sending.
 *
 * Connection-specific headers (Connection, Transfer-Encoding, Upgrade,
 * Keep-Alive) are not allowed in h2 and are left out; header names go out
 * lower-case, as h2 requires (nghttp2 resets a stream with an upper-case
 * one). */

#define HTTP_H2_STREAMS_DEFAULT 128
#define H2_FRAME        16384       /* SETTINGS_MAX_FRAME_SIZE's initial value */
#define H2_TURN_MAX     (4 * H2_FRAME)  /* DATA per WRITEABLE, so streams take turns */

static int h2_wsi(struct lws *wsi)
{
    /* A stream is a child of the network connection; h1 is its own. */
    return lws_get_network_wsi(wsi) != wsi;
}

static int h2_header_banned(const char *name, size_t len)
{
    static const char *const banned[] = {
        "connection", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection",
    };
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strlen(banned[i]) == len && strncasecmp(banned[i], name, len) == 0)
            return 1;
    return 0;
}

/* HPACK'd status and headers into a malloc'd buffer with LWS_PRE headroom.
 * len: the body's size, or HTTP_CHUNKED (none known: a streamed answer). */
static int h2_headers(weir_http_req *req, int status, const char *content_type, size_t len,
                      unsigned char **out, size_t *out_len)
{
    struct lws *wsi = req->wsi;
    unsigned char *buf = malloc(LWS_PRE + HTTP_HEADER_BUDGET), *start, *p, *end;
    char text[24], name[128];
    int n;

    if (!buf)
        return AVERROR(ENOMEM);
    start = p = buf + LWS_PRE;
    end = start + HTTP_HEADER_BUDGET;
    /* Content-Length as a plain header: lws's own counting of it would
     * turn our DATA writes into END_STREAM on its own schedule. */
    n = snprintf(text, sizeof text, "%zu", len);
    if (lws_add_http_header_status(wsi, (unsigned)status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SERVER,
                                     (const unsigned char *)HTTP_SERVER_NAME,
                                     (int)strlen(HTTP_SERVER_NAME), &p, end) ||
        (content_type &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                      (const unsigned char *)content_type,
                                      (int)strlen(content_type), &p, end)) ||
        (len != HTTP_CHUNKED &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                      (const unsigned char *)text, n, &p, end)))
        goto fail;
    for (int i = 0; i < req->nextra; i++) {
        const char *nm = req->extra[i].name;
        size_t nlen = strlen(nm) - 1;           /* without the ':' */
        if (h2_header_banned(nm, nlen) || nlen + 2 > sizeof name)
            continue;
        for (size_t k = 0; k <= nlen; k++)
            name[k] = (char)(nm[k] >= 'A' && nm[k] <= 'Z' ? nm[k] - 'A' + 'a' : nm[k]);
        name[nlen + 1] = '\0';
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)req->extra[i].value,
                                        req->extra[i].vlen, &p, end))
            goto fail;
    }
    if (lws_finalize_http_header(wsi, &p, end))
        goto fail;
    *out = buf;
    *out_len = (size_t)(p - start);
    return 0;
fail:
    free(buf);
    return AVERROR(ENOSPC);     /* headers over HTTP_HEADER_BUDGET */
}

/* weir_http_respond (copy: the bytes to copy) and weir_http_respond_buf
 * (body: shared, referenced) on a stream.  Queued for WRITEABLE. */
static int h2_respond(weir_http_req *req, int status, const char *content_type,
                      weir_buf *body, const void *copy, size_t off, size_t len)
{
    conn *c = conn_of(req);
    size_t body_out = is_head(req) ? 0 : len;
    unsigned char *hdr;
    size_t n;
    int r;

    if (req->responded)
        return AVERROR(EINVAL);
    if ((r = h2_headers(req, status, content_type, len, &hdr, &n)) < 0)
        goto fail;
    if (body_out) {
        if (body) {
            c->body = weir_buf_ref(body);
            c->body_ptr = body->data + off;
        } else if ((c->body = weir_buf_copy(copy, body_out))) {
            c->body_ptr = c->body->data;
        } else {
            free(hdr);
            r = AVERROR(ENOMEM);
            goto fail;
        }
    }
    c->body_left = body_out;
    c->out = hdr;
    c->out_len = n;
    req->responded = 1;
    req->status = status;
    req->sent = n + body_out;
    weir_counter_add(req->http->opts.tx_bytes, (double)(n + body_out));
    stream_answered(req);
    lws_callback_on_writable(req->wsi);
    return 0;
fail:
    weir_log_warn("http", "response not sent", WL_STR("path", req->path),
                  WL_INT("status", status), WL_ERR(r));
    return r;
}

static int h2_stream_begin(weir_http_req *req, int status, const char *content_type)
{
    conn *c = conn_of(req);
    unsigned char *hdr;
    size_t n;
    int r;

    if ((r = h2_headers(req, status, content_type, HTTP_CHUNKED, &hdr, &n)) < 0)
        return r;
    req->responded = 1;
    req->resumed = 1;
    req->status = status;
    req->sent = n;
    weir_counter_add(req->http->opts.tx_bytes, (double)n);
    c->out = hdr;
    c->out_len = n;
    c->streaming = 1;
    c->piece_off = 0;
    if (is_head(req))
        c->stream_ended = 1;
    lws_callback_on_writable(req->wsi);
    return 0;
}

/* One DATA frame of up to `room` bytes from p (copied to scratch, see
 * above); final: END_STREAM.  0 or -1. */
static int h2_data(weir_http *http, struct lws *wsi, const uint8_t *p, size_t n, int final)
{
    unsigned char *buf = http->scratch;

    if (n)
        memcpy(buf + LWS_PRE, p, n);
    return lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0
           ? -1 : 0;
}

/* The next DATA frame's payload size: window, frame size, this turn. */
static size_t h2_room(struct lws *wsi, size_t turn_left)
{
    lws_fileofs_t allow = lws_get_peer_write_allowance(wsi);
    size_t room = turn_left < H2_FRAME ? turn_left : H2_FRAME;

    if (allow >= 0 && (size_t)allow < room)
        room = (size_t)allow;
    return room;
}

/* WRITEABLE on a stream.  1: the response is done; 0: more to come (or
 * waiting for the peer's window, or for pieces); -1: error. */
static int h2_writeable(weir_http *http, conn *c, struct lws *wsi)
{
    size_t turn = H2_TURN_MAX;

    if (c->out) {
        int end = !c->body_left && !c->streaming;
        int w;

        if (c->streaming && c->stream_ended && c->nchunks == 0)
            end = 1;                /* HEAD, or nothing was ever written */
        w = lws_write(wsi, c->out + LWS_PRE, c->out_len,
                      LWS_WRITE_HTTP_HEADERS | (end ? LWS_WRITE_H2_STREAM_END : 0));
        free(c->out);
        c->out = NULL;
        if (w < 0)
            return -1;
        if (end) {
            c->streaming = 0;
            return 1;
        }
    }
    while (turn && !lws_send_pipe_choked(wsi)) {
        size_t room = h2_room(wsi, turn), n;
        const uint8_t *p;
        int final;

        if (c->body_left) {
            n = c->body_left < room ? c->body_left : room;
            p = c->body_ptr;
            final = n == c->body_left;
        } else if (c->streaming && c->nchunks) {
            weir_buf *piece = c->chunks[0];
            size_t left = piece->size - c->piece_off;
            n = left < room ? left : room;
            p = piece->data + c->piece_off;
            final = n == left && c->stream_ended && c->nchunks == 1;
        } else if (c->streaming && c->stream_ended) {
            /* Every piece went out before the end was known. */
            if (h2_data(http, wsi, NULL, 0, 1) < 0)
                return -1;
            c->streaming = 0;
            return 1;
        } else if (c->streaming) {
            return 0;               /* woken by the next piece or the end */
        } else {
            break;
        }
        if (n == 0) {
            /* No window.  Asking for WRITEABLE now would have lws call
             * back at once, again and again (a stalled client pinned a
             * core); its WINDOW_UPDATE handling asks for us instead. */
            lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                            (int)((http->opts.send_timeout_ms + 999) / 1000));
            return 0;
        }
        if (h2_data(http, wsi, p, n, final) < 0)
            return -1;
        turn -= n;
        if (c->body_left) {
            c->body_ptr += n;
            c->body_left -= n;
            if (!c->body_left) {
                weir_buf_unref(c->body);
                c->body = NULL;
            }
        } else {
            weir_buf *piece = c->chunks[0];
            c->piece_off += n;
            c->req.sent += n;
            weir_counter_add(http->opts.tx_bytes, (double)n);
            if (c->piece_off == piece->size) {
                weir_buf_unref(piece);
                memmove(c->chunks, c->chunks + 1, (size_t)--c->nchunks * sizeof *c->chunks);
                c->piece_off = 0;
            }
        }
        if (final) {
            c->streaming = 0;
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
            return 1;
        }
    }
    if (!c->body_left && !c->streaming)
        return 1;                   /* cannot happen: the last write was final */
    /* Progress: a client that stops reading is dropped after send_timeout. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                    (int)((http->opts.send_timeout_ms + 999) / 1000));
    lws_callback_on_writable(wsi);
    return 0;
}

/* ---- routing ---------------------------------------------------------- */

static int route_add(weir_http *http, const char *method, const char *path, int prefix,
                     int stream, weir_http_handler fn, void *arg)
{
    route *grown = realloc(http->routes, (http->nroutes + 1) * sizeof *grown);
    if (!grown)
        return AVERROR(ENOMEM);
    http->routes = grown;
    http->routes[http->nroutes++] = (route){
        .method = method, .path = path, .len = strlen(path),
        .prefix = prefix, .stream = stream, .fn = fn, .arg = arg,
    };
    if (http->requests) {
        route_metrics *m = calloc(1, sizeof *m);
        if (!m)
            return AVERROR(ENOMEM);
        m->label = path;
        m->duration = weir_metric_with(http->durations, (const char *const[]){ path, NULL });
        http->routes[http->nroutes - 1].metrics = m;
    }
    return 0;
}

int weir_http_route(weir_http *http, const char *method, const char *path, int prefix,
                    weir_http_handler fn, void *arg)
{
    return route_add(http, method, path, prefix, 0, fn, arg);
}

int weir_http_route_stream(weir_http *http, const char *method, const char *path, int prefix,
                           weir_http_handler fn, void *arg)
{
    return route_add(http, method, path, prefix, 1, fn, arg);
}

static int method_matches(const route *rt, const char *method)
{
    if (!rt->method || strcmp(rt->method, method) == 0)
        return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

static int path_matches(const route *rt, const char *path)
{
    if (rt->prefix)
        return strncmp(path, rt->path, rt->len) == 0;
    return strcmp(path, rt->path) == 0;
}

/* The first route for the request's path and method; *path_seen tells 404
 * from 405 when there is none. */
static const route *route_find(const weir_http *http, const weir_http_req *req,
                               int *path_seen)
{
    *path_seen = 0;
    for (size_t i = 0; i < http->nroutes; i++) {
        const route *rt = &http->routes[i];
        if (!path_matches(rt, req->path))
            continue;
        *path_seen = 1;
        if (method_matches(rt, req->method))
            return rt;
    }
    return NULL;
}

/* Runs the route's handler; answers 500 itself when it fails. */
static void run_handler(weir_http_req *req, const route *rt)
{
    int r;

    req->rt = rt;
    r = rt->fn(req, rt->arg);
    if (r >= 0 && ((!req->responded && (req->deferred || req->sink)) ||
                   (req->deferred && conn_of(req)->streaming)))
        return;                 /* answered later (or streaming); see weir_http_resume() */
    if (r < 0) {
        weir_log_error("http", "handler failed", WL_STR("method", req->method),
                       WL_STR("path", req->path), WL_ERR(r));
        if (!req->responded)
            weir_http_respond_error(req, 500, "internal error");
    } else if (!req->responded) {
        weir_log_error("http", "handler did not respond", WL_STR("path", req->path));
        weir_http_respond_error(req, 500, "internal error");
    }
    req->sink = NULL;           /* failed after taking the body: no more calls */
    if (req->deferred && conn_of(req)->deferred) {
        /* Failed after deferring: the handle's holder gets a dead one. */
        conn_of(req)->deferred->c = NULL;
        conn_of(req)->deferred = NULL;
    }
}

/* Finds the handler and runs it; answers 404/405/500 itself. */
static void dispatch(weir_http *http, weir_http_req *req)
{
    int path_seen;
    const route *rt = route_find(http, req, &path_seen);

    req->dispatched = 1;
    if (rt)
        run_handler(req, rt);
    else if (path_seen)
        weir_http_respond_error(req, 405, "method not allowed");
    else
        weir_http_respond_error(req, 404, "not found");
}

/* Counts a finished request in the metrics and the debug log. */
static void account(weir_http *http, weir_http_req *req)
{
    int64_t us = lws_now_usecs() - req->t0_us;
    route_metrics *m = req->rt && req->rt->metrics ? req->rt->metrics : &http->unmatched;
    weir_metric_child *code = NULL;

    if (http->opts.access_log) {
        /* The path never has the query (where playback tokens travel). */
        char client[64] = "", ua[256] = "";
        lws_get_peer_simple(req->wsi, client, sizeof client);
        if (weir_http_req_header(req, "user-agent", ua, sizeof ua) < 0)
            ua[0] = '\0';
        weir_log_info("access", "request", WL_STR("client", client),
                      WL_STR("method", req->method), WL_STR("path", req->path),
                      WL_INT("status", req->status), WL_UINT("bytes", req->sent),
                      WL_INT("us", us), WL_STR("ua", ua),
                      WL_STR("proto", h2_wsi(req->wsi) ? "h2" : "h1"));
    }
    if (!http->requests)
        return;
    weir_histogram_observe(m->duration, (double)us / 1e6);
    for (int i = 0; i < HTTP_CODES_CACHED && !code; i++) {
        if (m->codes[i].status == req->status) {
            code = m->codes[i].child;
        } else if (m->codes[i].status == 0) {
            char text[8];
            snprintf(text, sizeof text, "%d", req->status);
            code = weir_metric_with(http->requests, (const char *const[]){ m->label, text, NULL });
            m->codes[i].status = req->status;
            m->codes[i].child = code;
        }
    }
    if (!code) {        /* more distinct codes than cached: look it up */
        char text[8];
        snprintf(text, sizeof text, "%d", req->status);
        code = weir_metric_with(http->requests, (const char *const[]){ m->label, text, NULL });
    }
    weir_counter_inc(code);
}

/* After the response: keep-alive or close.  Returns the callback's result. */
static int finish(weir_http *http, conn *c, struct lws *wsi)
{
    int close_now = c->req.close_after;

    if (c->h2 && (c->out || c->body || c->streaming))
        return 0;                   /* an h2 answer still queued: WRITEABLE finishes */
    if (c->req.discard && !c->req.body_complete) {
        c->req.written = 1;         /* on_stream_complete finishes */
        return 0;
    }
    if (c->req.responded)
        account(http, &c->req);
    c->in_request = 0;
    weir_timer_stop(&c->deliver);
    if (c->req.rx_off)
        lws_rx_flow_control(wsi, 1);    /* for the next request */
    req_reset(&c->req);
    if (close_now)
        return -1;          /* body bytes left unread: they must not become a request */
    if (http->draining) {
        /* The client was told "Connection: close"; make sure it happens
         * even if it does not hang up itself. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, 1);
    }
    if (lws_http_transaction_completed(wsi))
        return -1;
    /* c is gone: lws rebinds the connection to our protocol for the next
     * request, with a fresh conn. */
    if (!http->draining && lws_get_network_wsi(wsi) == wsi &&
        (c = lws_wsi_user(wsi)) != NULL) {
        /* HTTP/1.1 kept alive: our sweep times it out, not lws (see
         * "idle keep-alive connections"). */
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        c->idle_us = lws_now_usecs();
    }
    return 0;
}

/* ---- idle keep-alive connections -------------------------------------
 *
 * lws times an idle keep-alive connection out with an entry in its one
 * sorted timer list, inserted after the last entry due earlier: every
 * request walks the list past every other idle connection.  Measured
 * (bench/origin.py's playlist, perf): 6% of the server's CPU with 32
 * connections, 45% with 1000.  So finish() takes that entry out again at
 * once, and this sweep, once a second, closes the connections idle for
 * http.keepalive_timeout: a walk of the connection list per second instead
 * of per request.  A request that starts clears idle_us; lws's own timeouts
 * still guard a connection from accept to its first request and a request
 * whose headers stall. */
#define HTTP_IDLE_SWEEP_US  (1000 * 1000)

static void idle_sweep(weir_timer *t)
{
    weir_http *http = (weir_http *)((char *)t - offsetof(weir_http, idle_sweep));
    int64_t now = lws_now_usecs(), limit = http->opts.keepalive_ms * 1000;

    for (conn *c = http->conns; c; c = c->next)
        if (c->idle_us && !c->in_request && now - c->idle_us >= limit) {
            c->idle_us = 0;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
        }
    weir_timer_start(http->loop, &http->idle_sweep, HTTP_IDLE_SWEEP_US, idle_sweep);
}

static const char *request_method(struct lws *wsi)
{
    static const struct { enum lws_token_indexes tok; const char *name; } methods[] = {
        { WSI_TOKEN_GET_URI, "GET" },       { WSI_TOKEN_POST_URI, "POST" },
        { WSI_TOKEN_HEAD_URI, "HEAD" },     { WSI_TOKEN_PUT_URI, "PUT" },
        { WSI_TOKEN_PATCH_URI, "PATCH" },   { WSI_TOKEN_DELETE_URI, "DELETE" },
        { WSI_TOKEN_OPTIONS_URI, "OPTIONS" },
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0)
            return methods[i].name;
    return NULL;
}

/* A request is over for the connection's callback when nothing more will
 * come from this call: answered and written, or waiting on someone. */
static int after_handler(weir_http *http, conn *c, struct lws *wsi)
{
    weir_http_req *req = &c->req;

    if (!req->responded && (req->deferred || req->sink || req->body_taken))
        return 0;
    if (c->out || c->body || c->streaming || c->tail_wait)
        return 0;                   /* the response leaves on WRITEABLE */
    return finish(http, c, wsi);
}

/* ---- streaming bodies ------------------------------------------------- */

/* Reads the socket or not, as the request now needs. */
static void rx_update(weir_http_req *req)
{
    int off = !req->body_complete && !req->discard && !req->close_after &&
              (req->body_paused || (!req->sink && req->body_len >= HTTP_STREAM_HOLD_PAUSE));
    if (off == req->rx_off)
        return;
    req->rx_off = off;
    lws_rx_flow_control(req->wsi, !off);
}

/* The sink returned an error: no more calls to it; the connection closes,
 * after the response if one was made (it is queued: sinks answer through
 * WRITEABLE).  Returns the lws callback result for the current callback. */
static void stream_abort(conn *c)
{
    weir_http_req *req = &c->req;

    req->sink = NULL;
    if (!req->responded)
        weir_http_respond_error(req, 500, "internal error");
}

/* Every byte is in and delivered: the sink's turn to answer. */
static void stream_end(conn *c)
{
    weir_http_req *req = &c->req;
    const weir_http_body_sink *sink = req->sink;

    req->sink = NULL;
    sink->end(req->sink_arg, req);
    if (!req->responded && !req->deferred) {
        weir_log_error("http", "body sink did not respond", WL_STR("path", req->path));
        weir_http_respond_error(req, 500, "internal error");
    }
}

/* Timer: held bytes, then end() when the body is complete. */
static void deliver_held(weir_timer *t)
{
    conn *c = (conn *)((char *)t - offsetof(conn, deliver));
    weir_http_req *req = &c->req;

    if (!req->sink || req->body_paused)
        return;
    if (req->body_len) {
        size_t n = req->body_len;
        req->body_len = 0;          /* the sink may pause and get more held */
        if (req->sink->data(req->sink_arg, req->body, n) < 0) {
            stream_abort(c);
            return;
        }
        if (req->body_len)          /* cannot happen: nothing arrives meanwhile */
            return;
        rx_update(req);
    }
    if (req->sink && req->body_complete)
        stream_end(c);
}

static void deliver_soon(conn *c)
{
    weir_timer_start(c->req.http->loop, &c->deliver, 0, deliver_held);
}

int weir_http_body_stream(weir_http_req *req, const weir_http_body_sink *sink, void *arg)
{
    conn *c = conn_of(req);

    if (!req->rt || !req->rt->stream || req->body_taken || req->responded || !req->wsi)
        return AVERROR(EINVAL);
    req->sink = sink;
    req->sink_arg = arg;
    req->body_taken = 1;
    req->resumed = 1;               /* answers go out on WRITEABLE */
    rx_update(req);
    if (req->body_len || req->body_complete)
        deliver_soon(c);
    return 0;
}

void weir_http_body_pause(weir_http_req *req)
{
    if (req->body_paused || req->body_complete)
        return;
    req->body_paused = 1;
    rx_update(req);
}

void weir_http_body_resume(weir_http_req *req)
{
    if (!req->body_paused)
        return;
    req->body_paused = 0;
    rx_update(req);
    if (req->sink && (req->body_len || req->body_complete))
        deliver_soon(conn_of(req));
}

/* Headers of a request on a streaming route: hold the body, run the handler. */
static int on_stream_request(weir_http *http, conn *c, struct lws *wsi, const route *rt)
{
    weir_http_req *req = &c->req;
    char te[32];

    req->rt = rt;
    if (lws_hdr_copy(wsi, te, sizeof te, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* Chunked uploads would need their own framing here; tus clients
         * send Content-Length. */
        req->close_after = 1;
        weir_http_respond_error(req, 411, "send the body with a Content-Length");
        return finish(http, c, wsi);
    }
    req->body_expected = weir_http_req_content_length(req);
    if (req->body_expected < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        req->close_after = 1;
        weir_http_respond_error(req, 400, "bad Content-Length");
        return finish(http, c, wsi);
    }
    if (req->body_expected < 0)
        req->body_expected = 0;
    req->body_complete = req->body_expected == 0;
    run_handler(req, rt);
    return after_handler(http, c, wsi);
}

/* Body bytes for a streaming route.  Returns the lws callback result. */
static int on_stream_body(weir_http *http, conn *c, const void *in, size_t len)
{
    weir_http_req *req = &c->req;

    req->body_seen += (int64_t)len;
    weir_counter_add(http->opts.rx_bytes, (double)len);
    if (req->close_after || req->responded)
        return 0;                   /* answered already: dropped */
    if (req->sink && !req->body_paused && req->body_len == 0) {
        if (req->sink->data(req->sink_arg, in, len) < 0)
            stream_abort(c);
        return 0;
    }
    if (req->body_len + len > HTTP_STREAM_HOLD_MAX) {
        weir_log_warn("http", "request body not held back; closing", WL_STR("path", req->path));
        return -1;
    }
    if (req->body_len + len > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        unsigned char *grown;
        while (cap < req->body_len + len)
            cap *= 2;
        if (!(grown = realloc(req->body, cap)))
            return -1;
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    rx_update(req);
    return 0;
}

static int on_stream_complete(weir_http *http, conn *c, struct lws *wsi)
{
    weir_http_req *req = &c->req;

    req->body_complete = 1;
    rx_update(req);
    if (req->discard)
        return req->written ? finish(http, c, wsi) : 0;
    if (req->sink && !req->body_paused && req->body_len == 0)
        stream_end(c);
    return after_handler(http, c, wsi);
}

/* ---- requests ---------------------------------------------------------- */

/* Headers are in.  Returns the lws callback result. */
static int on_request(weir_http *http, conn *c, struct lws *wsi, const char *uri, size_t len)
{
    weir_http_req *req = &c->req;
    const route *rt;
    char clen[32];
    int has_body, path_seen, wait;

    req_reset(req);
    req->http = http;
    req->wsi = wsi;
    req->t0_us = lws_now_usecs();
    c->in_request = 1;
    c->idle_us = 0;
    c->h2 = h2_wsi(wsi);
    req->method = request_method(wsi);
    if (len >= sizeof req->path) {
        snprintf(req->path, sizeof req->path, "%.64s...", uri);
        weir_http_respond_error(req, 414, "URI too long");
        return finish(http, c, wsi);
    }
    memcpy(req->path, uri, len);
    req->path[len] = '\0';
    if (!req->method) {
        weir_http_respond_error(req, 405, "method not allowed");
        return finish(http, c, wsi);
    }
    if (http->rate && (wait = rate_take(http, c)) > 0) {
        char after[16];
        snprintf(after, sizeof after, "%d", wait);
        weir_http_add_header(req, "Retry-After", after);
        weir_http_respond_error(req, 429, "too many requests");
        return finish(http, c, wsi);
    }
    if ((rt = route_find(http, req, &path_seen)) && rt->stream)
        return on_stream_request(http, c, wsi, rt);

    has_body = lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
               strtoll(clen, NULL, 10) > 0;
    if (has_body) {
        long long n = strtoll(clen, NULL, 10);
        if (n > http->opts.max_body) {
            weir_log_info("http", "body too large", WL_STR("path", req->path),
                          WL_INT("bytes", n), WL_INT("max", http->opts.max_body));
            weir_http_respond_error(req, 413, "request body too large");
            if (c->h2) {
                /* The 413 leaves from WRITEABLE, and only this stream
                 * ends.  Up to HTTP_DISCARD_MAX of the body is read and
                 * dropped first (on_body): lws 4.1 answers DATA for a
                 * stream it closed with GOAWAY, which would reset every
                 * stream of the connection, the 413 included, under a
                 * client still sending.  Past it, the stream closes after
                 * the answer. */
                req->dispatched = 1;
                if (n <= HTTP_DISCARD_MAX)
                    req->discard = 1;
                else
                    req->close_after = 1;
                return 0;
            }
            /* The unread body would be taken for the next request: close. */
            return -1;
        }
        return 0;       /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    dispatch(http, req);
    return after_handler(http, c, wsi);
}

static int on_body(weir_http *http, conn *c, const void *in, size_t len)
{
    weir_http_req *req = &c->req;
    if (len == 0)
        return 0;                   /* lws reports empty bodies too: body stays NULL */
    if (req->rt && req->rt->stream)
        return on_stream_body(http, c, in, len);
    if (req->responded)
        return 0;                   /* h2: answered 413 at the headers */
    if (req->body_len + len > (size_t)http->opts.max_body) {
        weir_http_respond_error(req, 413, "request body too large");
        return -1;
    }
    if (req->body_len + len > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap * 2 : 4096;
        unsigned char *grown;
        while (cap < req->body_len + len)
            cap *= 2;
        if (cap > (size_t)http->opts.max_body)
            cap = (size_t)http->opts.max_body;
        if (!(grown = realloc(req->body, cap)))
            return -1;
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, in, len);
    req->body_len += len;
    weir_counter_add(http->opts.rx_bytes, (double)len);
    return 0;
}

/* ---- WebSocket routes ------------------------------------------------------
 *
 * lws does the upgrade and the framing.  A connection arrives as HTTP on
 * "weir-http"; when its headers ask for "Upgrade: websocket", lws asks
 * that protocol first (HTTP_CONFIRM_UPGRADE), where the route, the origin
 * and the route's accept() decide: a refusal is an ordinary HTTP answer
 * and the connection closes after it.  Accepted, lws binds the connection
 * to the "weir" protocol (the vhost's default for upgrades that name no
 * subprotocol; a client naming "weir" gets it too) and calls ESTABLISHED
 * there, where the client is set up while the request headers are still
 * readable.  From then on:
 *
 *   send -> ring of weir_buf references -> SERVER_WRITEABLE: one message
 *   per turn -> queue empty and close asked: close frame, hang up
 *   ring full: the client is not reading; it is dropped (logged once)
 *   CLOSED: closed(), references released, unlinked
 */

#define HTTP_WS_QUEUE_DEFAULT 256

static const ws_route *ws_route_find(const weir_http *http, const char *path)
{
    for (size_t i = 0; i < http->nws_routes; i++)
        if (strcmp(http->ws_routes[i].path, path) == 0)
            return &http->ws_routes[i];
    return NULL;
}

/* The plain GET of a WebSocket path. */
static int ws_plain(weir_http_req *req, void *arg)
{
    (void)arg;
    weir_http_add_header(req, "Upgrade", "websocket");
    return weir_http_respond_error(req, 426, "this path speaks WebSocket only");
}

int weir_http_ws_route(weir_http *http, const char *path, const weir_http_ws_handler *h,
                       void *arg)
{
    ws_route *grown = realloc(http->ws_routes, (http->nws_routes + 1) * sizeof *grown);
    int r;

    if (!grown)
        return AVERROR(ENOMEM);
    http->ws_routes = grown;
    if ((r = route_add(http, "GET", path, 0, 0, ws_plain, NULL)) < 0)
        return r;
    http->ws_routes[http->nws_routes++] = (ws_route){
        .path = path, .h = h, .arg = arg, .route = http->nroutes - 1,
    };
    return 0;
}

int weir_http_origin_allowed(const char *list, const char *origin, const char *host)
{
    size_t n = strlen(origin), hlen = host ? strlen(host) : 0;

    if (!list || strcmp(list, "*") == 0)
        return 1;
    /* This host's own page: "http://" or "https://" followed by Host. */
    if (hlen) {
        const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                           : strncmp(origin, "https://", 8) == 0 ? origin + 8 : NULL;
        if (rest && strcmp(rest, host) == 0)
            return 1;
    }
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *q = p;
        while (len && *q == ' ')
            q++, len--;
        while (len && q[len - 1] == ' ')
            len--;
        if (len && len == n && memcmp(q, origin, len) == 0)
            return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

/* An upgrade from a browser's page (it has Origin) must be allowed by
 * ws_origins; one without Origin is not a page and goes on to accept(). */
static int ws_origin_ok(const weir_http *http, struct lws *wsi)
{
    char origin[256], host[256];

    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
        return 1;
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
        return 0;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
        host[0] = '\0';
    return weir_http_origin_allowed(http->opts.ws_origins, origin, host);
}

/* http->upg as the request of the upgrade on wsi (headers readable). */
static weir_http_req *ws_req(weir_http *http, struct lws *wsi, const ws_route *rt,
                             const char *path)
{
    weir_http_req *req = &http->upg;

    req_reset(req);
    req->http = http;
    req->wsi = wsi;
    req->method = "GET";
    req->t0_us = lws_now_usecs();
    req->rt = rt ? &http->routes[rt->route] : NULL;
    snprintf(req->path, sizeof req->path, "%s", path);
    return req;
}

/* The path of a WebSocket upgrade: GET's on HTTP/1.1.  On HTTP/2 (RFC 8441
 * extended CONNECT, which browsers use because lws 4.1 advertises
 * SETTINGS_ENABLE_CONNECT_PROTOCOL) lws keeps it only as :path, query
 * included.  Its length, or <= 0. */
static int ws_path(struct lws *wsi, char *path, size_t cap)
{
    int n = lws_hdr_copy(wsi, path, (int)cap, WSI_TOKEN_GET_URI);
    char *q;

    if (n > 0 || !h2_wsi(wsi))
        return n;
    if ((n = lws_hdr_copy(wsi, path, (int)cap, WSI_TOKEN_HTTP_COLON_PATH)) > 0 &&
        (q = strchr(path, '?'))) {
        *q = '\0';
        n = (int)(q - path);
    }
    return n;
}

/* May the WebSocket upgrade on wsi to path go ahead?  0, or the status of
 * the refusal, answered (on HTTP/1.1; see weir_http_respond about h2)
 * and accounted here. */
static int ws_decide(weir_http *http, struct lws *wsi, const char *path)
{
    const ws_route *rt = ws_route_find(http, path);
    weir_http_req *req = ws_req(http, wsi, rt, path);
    int status = 0;
    const char *msg = NULL;

    req->close_after = 1;
    if (!rt) {
        status = 404;
        msg = "no WebSocket here";
    } else if (http->draining) {
        status = 503;
        msg = "shutting down";
    } else if (!ws_origin_ok(http, wsi)) {
        status = 403;
        msg = "this origin may not open a WebSocket here";
    } else if ((status = rt->h->accept(rt->arg, req)) == 0) {
        req_reset(req);
        return 0;
    }
    if (status <= 0)
        status = 500;
    if (!req->responded)
        weir_http_respond_error(req, status, msg ? msg : "refused");
    account(http, req);
    req_reset(req);
    return status;
}

/* HTTP_CONFIRM_UPGRADE: 0 lets lws upgrade; -1 hangs up after a refusal
 * written here.  (lws also offers ">0: answered, keep the connection", but
 * a refused upgrade is rare and closing after it leaves nothing of the
 * upgrade's state behind.) */
static int ws_confirm(weir_http *http, struct lws *wsi, char *up)
{
    char path[HTTP_PATH_MAX];

    if (up && strcasecmp(up, "h2c") == 0) {
        /* lws 4.1 answers "Upgrade: h2c" with 101 and then never answers
         * the request that carried it.  The upgrade is optional (RFC 7540
         * 3.2): blanking the value, which lws reads again after this
         * callback, makes it carry on as a plain HTTP/1.1 request. */
        up[0] = '\0';
        return 0;
    }
    if (!up || strcasecmp(up, "websocket") != 0)
        return 0;                   /* not ours: lws decides */
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0)
        return -1;                  /* not a GET, or a path too long */
    return ws_decide(http, wsi, path) ? -1 : 0;
}

static void ws_link(weir_http *http, weir_http_ws *ws)
{
    ws->prev = NULL;
    ws->next = http->clients;
    if (http->clients)
        http->clients->prev = ws;
    http->clients = ws;
    ws->linked = 1;
    http->nclients++;
}

/* The client is gone: closed() and everything it held. */
static void ws_unlink(weir_http *http, weir_http_ws *ws)
{
    if (!ws->linked)
        return;
    ws->closing = 1;
    ws->rt->h->closed(ws->rt->arg, ws);
    for (size_t i = 0; i < ws->qlen; i++)
        weir_buf_unref(ws->q[(ws->qhead + i) % http->ws_max]);
    free(ws->q);
    ws->q = NULL;
    ws->qlen = 0;
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        http->clients = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->linked = 0;
    http->nclients--;
    drain_check(http);
}

/* ESTABLISHED: the 101 is out and the headers are still attached. */
static int ws_established(weir_http *http, weir_http_ws *ws, struct lws *wsi)
{
    char path[HTTP_PATH_MAX];
    weir_http_req *req;
    int r;

    memset(ws, 0, sizeof *ws);
    if (ws_path(wsi, path, sizeof path) <= 0)
        return -1;
    if (h2_wsi(wsi) && ws_decide(http, wsi, path)) {
        /* An h2 stream (RFC 8441) never passes HTTP_CONFIRM_UPGRADE, so
         * its route, origin and accept() are decided here; refused, the
         * client sees the WebSocket open and close at once (1008).
         * Refusing earlier, in FILTER_PROTOCOL_CONNECTION, leaves the
         * client waiting and leaks 224 bytes in lws 4.1 per refusal. */
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)"refused", 7);
        return -1;
    }
    if (!(ws->rt = ws_route_find(http, path)))
        return -1;                  /* cannot happen: ws_decide found it */
    ws->http = http;
    ws->wsi = wsi;
    if (!(ws->q = calloc(http->ws_max, sizeof *ws->q)))
        return -1;
    req = ws_req(http, wsi, ws->rt, path);
    req->responded = 1;
    req->status = 101;
    ws_link(http, ws);
    r = ws->rt->h->open(ws->rt->arg, ws, req);
    account(http, req);
    req_reset(req);
    if (r < 0) {
        /* No closed() for a client that never opened. */
        const ws_route *rt = ws->rt;
        ws->linked = 0;
        if (ws->prev)
            ws->prev->next = ws->next;
        else
            http->clients = ws->next;
        if (ws->next)
            ws->next->prev = ws->prev;
        http->nclients--;
        free(ws->q);
        ws->q = NULL;
        weir_log_warn("http", "WebSocket client refused after upgrade",
                      WL_STR("path", rt->path), WL_ERR(r));
        return -1;
    }
    /* The client is bounded by its queue, not by lws's idle timeout. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    return 0;
}

/* SERVER_WRITEABLE: one queued message, or the close once all are out. */
static int ws_writeable(weir_http *http, weir_http_ws *ws, struct lws *wsi)
{
    if (ws->qlen) {
        weir_buf *m = ws->q[ws->qhead];
        size_t len = m->size - LWS_PRE;
        int w;

        ws->q[ws->qhead] = NULL;
        ws->qhead = (ws->qhead + 1) % http->ws_max;
        ws->qlen--;
        w = lws_write(wsi, m->data + LWS_PRE, len, LWS_WRITE_TEXT);
        weir_counter_add(http->opts.tx_bytes, (double)len);
        weir_buf_unref(m);
        if (w < (int)len)
            return -1;
        if (ws->qlen || ws->close_code)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws->close_code) {
        lws_close_reason(wsi, (enum lws_close_status)ws->close_code,
                         (unsigned char *)ws->close_reason, strlen(ws->close_reason));
        return -1;
    }
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                       void *in, size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    weir_http *http = vh ? lws_vhost_user(vh) : NULL;
    weir_http_ws *ws = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return http && ws ? ws_established(http, ws, wsi) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return http && ws && ws->linked ? ws_writeable(http, ws, wsi) : 0;
    case LWS_CALLBACK_RECEIVE:
        return 0;                   /* one-way: what the client says is dropped */
    case LWS_CALLBACK_CLOSED:
        if (http && ws)
            ws_unlink(http, ws);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

void weir_http_ws_set_user(weir_http_ws *ws, void *user) { ws->user = user; }
void *weir_http_ws_user(const weir_http_ws *ws) { return ws->user; }
size_t weir_http_ws_clients(const weir_http *http) { return http->nclients; }

int weir_http_ws_send_buf(weir_http_ws *ws, weir_buf *msg)
{
    weir_http *http = ws->http;

    if (ws->closing || !ws->linked)
        return AVERROR(EPIPE);
    if (msg->size < LWS_PRE)
        return AVERROR(EINVAL);
    if (ws->qlen == http->ws_max) {
        char client[64] = "";
        lws_get_peer_simple(ws->wsi, client, sizeof client);
        weir_log_warn("http", "WebSocket client not reading; dropped", WL_STR("client", client),
                      WL_STR("path", ws->rt->path), WL_UINT("queued", ws->qlen));
        ws->closing = 1;
        /* Its socket takes nothing, so no close frame would get through. */
        lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return AVERROR(EPIPE);
    }
    ws->q[(ws->qhead + ws->qlen) % http->ws_max] = weir_buf_ref(msg);
    ws->qlen++;
    lws_callback_on_writable(ws->wsi);
    return 0;
}

int weir_http_ws_send(weir_http_ws *ws, const char *text, size_t len)
{
    weir_buf *m = weir_buf_new(LWS_PRE + len);
    int r;

    if (!m)
        return AVERROR(ENOMEM);
    memcpy(m->data + LWS_PRE, text, len);
    r = weir_http_ws_send_buf(ws, m);
    weir_buf_unref(m);
    return r;
}

void weir_http_ws_close(weir_http_ws *ws, int code, const char *reason)
{
    if (ws->closing || !ws->linked)
        return;
    ws->closing = 1;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason ? reason : "");
    lws_callback_on_writable(ws->wsi);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    weir_http *http = vh ? lws_vhost_user(vh) : NULL;
    conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_BIND_PROTOCOL:
        if (http && c) {
            if (!c->linked && http->opts.max_connections > 0 &&
                http->nconns >= (size_t)http->opts.max_connections)
                return conn_refuse(http);
            c->wsi = wsi;
            conn_link(http, c);
        }
        break;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (http && c)
            conn_unlink(http, c);
        break;
    case LWS_CALLBACK_HTTP:
        if (!http || !c)
            return -1;
        c->wsi = wsi;
        conn_link(http, c);
        return on_request(http, c, wsi, in ? in : "/", in ? strlen(in) : 1);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return http ? ws_confirm(http, wsi, in) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return c && http ? on_body(http, c, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!http || !c)
            return -1;
        if (c->req.rt && c->req.rt->stream)
            return on_stream_complete(http, c, wsi);
        /* lws also completes an empty body ("Content-Length: 0") of a request
         * that was dispatched on its headers and is still waiting. */
        if (c->req.dispatched) {
            if (!c->req.discard)
                return 0;
            c->req.body_complete = 1;   /* h2 413: the dropped body is in */
            return c->req.written ? finish(http, c, wsi) : 0;
        }
        dispatch(http, &c->req);
        return after_handler(http, c, wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!http || !c || (!c->out && !c->body && !c->streaming && !c->tail_wait))
            break;
        if (c->h2) {
            int done = h2_writeable(http, c, wsi);
            return done < 0 ? -1 : done ? finish(http, c, wsi) : 0;
        }
        if (c->tail_wait) {
            c->tail_wait = 0;
            return finish(http, c, wsi);
        }
        if (c->direct) {
            int done = direct_send(http, c, wsi);
            return done < 0 ? -1 : done ? finish(http, c, wsi) : 0;
        }
        if (c->out) {
            int more = c->body || c->streaming;
            int w = lws_write(wsi, c->out + LWS_PRE, c->out_len,
                              more ? LWS_WRITE_HTTP : LWS_WRITE_HTTP_FINAL);
            free(c->out);
            c->out = NULL;
            if (w < 0)
                return -1;
            if (more) {
                lws_callback_on_writable(wsi);
                return 0;
            }
            return finish(http, c, wsi);
        }
        if (c->streaming) {
            int done = send_stream_chunk(http, c, wsi);
            return done < 0 ? -1 : done ? finish(http, c, wsi) : 0;
        }
        switch (send_body_chunk(http, c, wsi)) {
        case 0:
            return 0;
        case 1:
            return finish(http, c, wsi);
        default:
            return -1;
        }
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols http_protocols[] = {
    { .name = "weir-http", .callback = http_callback, .per_session_data_size = sizeof(conn) },
    { .name = "weir", .callback = ws_callback, .per_session_data_size = sizeof(weir_http_ws) },
    { 0 }
};
/* "weir" is the vhost's default protocol for WebSocket upgrades that name
 * none (HTTP still starts on protocols[0], as the loop adopts it there). */
static const struct lws_protocol_vhost_options ws_default = { NULL, NULL, "default", "" };
static const struct lws_protocol_vhost_options ws_pvo = { NULL, &ws_default, "weir", "" };

/* lws's own SETTINGS but for the stream limit (its 24 makes a player's or a
 * CDN's burst of part and segment requests queue, or open more
 * connections).  [0] says "use these". */
static void h2_settings(struct lws_context_creation_info *info, const weir_http_opts *opts)
{
    info->http2_settings[0] = 1;
    info->http2_settings[H2SET_HEADER_TABLE_SIZE] = 65536;
    info->http2_settings[H2SET_ENABLE_PUSH] = 0;
    info->http2_settings[H2SET_MAX_CONCURRENT_STREAMS] =
        (uint32_t)(opts->h2_max_streams > 0 ? opts->h2_max_streams : HTTP_H2_STREAMS_DEFAULT);
    info->http2_settings[H2SET_INITIAL_WINDOW_SIZE] = 0;   /* lws sends WINDOW_UPDATEs */
    info->http2_settings[H2SET_MAX_FRAME_SIZE] = H2_FRAME;
    info->http2_settings[H2SET_MAX_HEADER_LIST_SIZE] = 4096;
}

/* http.h2c_port: cleartext HTTP/2 with prior knowledge (RFC 9113 3.3), for
 * a TLS-terminating CDN or proxy in front.  A port of its own, because
 * lws 4.1's LWS_SERVER_OPTION_H2_PRIOR_KNOWLEDGE makes every connection of
 * its vhost h2: an HTTP/1.1 client there gets no answer.  Same protocols,
 * routes and server object (the vhost's user), so a stream here is served
 * exactly as one that came over TLS.  base: the main vhost's info. */
static int h2c_listen(weir_http *http, const struct lws_context_creation_info *base)
{
    struct lws_context_creation_info info;
    struct lws_vhost *vh;
    int port;

    memset(&info, 0, sizeof info);
    info.vhost_name = "weir-h2c";
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = base->protocols;
    info.pvo = base->pvo;
    info.user = http;
    info.keepalive_timeout = base->keepalive_timeout;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_H2_PRIOR_KNOWLEDGE;
    h2_settings(&info, &http->opts);
    if (!(vh = lws_create_vhost(weir_loop_lws(http->loop), &info))) {
        weir_log_error("http", "cannot create the h2c vhost");
        return AVERROR(ENOMEM);
    }
    port = weir_loop_listen(http->loop, http->opts.addr, http->opts.h2c_port, vh, 1,
                            http_protocols[0].name);
    if (port < 0)
        return port;
    weir_log_info("http", "listening", WL_INT("port", port), WL_STR("protocol", "h2c"));
    return 0;
}

weir_http *weir_http_new(weir_loop *loop, const weir_http_opts *opts)
{
    struct lws_context_creation_info info;
    weir_http *http = calloc(1, sizeof *http);

    if (!http)
        return NULL;
    http->loop = loop;
    http->opts = *opts;
    http->ws_max = opts->ws_max_queue > 0 ? (size_t)opts->ws_max_queue : HTTP_WS_QUEUE_DEFAULT;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *tn = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        size_t n = tn ? strlen(tn) : 0;
        if (n > 1 && tn[n - 1] == ':') {
            http->tokens[t].name = tn;
            http->tokens[t].len = n - 1;
        }
    }
    if (opts->metrics) {
        if (weir_metric_counter(opts->metrics, "weir_http_requests_total",
                                "HTTP requests answered, by route and status code",
                                (const char *const[]){ "route", "code", NULL },
                                &http->requests) < 0 ||
            weir_metric_histogram(opts->metrics, "weir_http_request_duration_seconds",
                                  "Time from request headers to response written to the socket",
                                  (const char *const[]){ "route", NULL }, NULL, 0,
                                  &http->durations) < 0) {
            weir_log_error("http", "cannot register metrics");
            free(http);
            return NULL;
        }
        weir_metric *refused;
        if (weir_metric_counter(opts->metrics, "weir_http_connections_refused_total",
                                "HTTP connections closed on arrival: http.max_connections "
                                "were open", NULL, &refused) < 0) {
            weir_log_error("http", "cannot register metrics");
            free(http);
            return NULL;
        }
        http->refused = weir_metric_with(refused, NULL);
        http->unmatched.label = "unmatched";
        http->unmatched.duration = weir_metric_with(http->durations,
                                                    (const char *const[]){ "unmatched", NULL });
    }

    if (opts->rate_limit > 0 && !(http->rate = calloc(HTTP_RATE_SLOTS, sizeof *http->rate))) {
        free(http);
        return NULL;
    }
    memset(&info, 0, sizeof info);
    info.vhost_name = "weir-http";
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;  /* the loop listens; see loop.h */
    info.protocols = http_protocols;
    info.pvo = &ws_pvo;
    info.user = http;
    info.keepalive_timeout = (int)((opts->keepalive_ms + 999) / 1000);
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (opts->tls_cert && *opts->tls_cert) {
        if (!opts->tls_key || !*opts->tls_key) {
            weir_log_error("http", "http.tls_cert needs http.tls_key");
            free(http->rate);
            free(http);
            return NULL;
        }
        /* lws looks for the flag on the vhost too before it makes the
         * vhost's SSL_CTX. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = opts->tls_cert;
        info.ssl_private_key_filepath = opts->tls_key;
        /* h2 first: every response path has an h2 branch (see "HTTP/2"). */
        info.alpn = opts->h2 ? "h2,http/1.1" : "http/1.1";
        h2_settings(&info, opts);
    }
    http->vhost = lws_create_vhost(weir_loop_lws(loop), &info);
    if (!http->vhost) {
        weir_log_error("http", "cannot create the HTTP vhost (TLS certificate or key?)",
                       WL_STR("tls_cert", opts->tls_cert ? opts->tls_cert : ""));
        free(http->rate);
        free(http);
        return NULL;
    }
    http->port = weir_loop_listen(loop, opts->addr, opts->port, http->vhost, 1,
                                  http_protocols[0].name);
    if (http->port < 0) {
        free(http->rate);
        free(http);     /* the vhost goes with the context */
        return NULL;
    }
    if (http->opts.keepalive_ms <= 0)
        http->opts.keepalive_ms = 5000;     /* lws's default, as info.keepalive_timeout */
    weir_timer_start(loop, &http->idle_sweep, HTTP_IDLE_SWEEP_US, idle_sweep);
    weir_log_info("http", "listening", WL_STR("addr", opts->addr && *opts->addr ? opts->addr
                                                                                : "0.0.0.0"),
                  WL_INT("port", http->port), WL_INT("tls", info.ssl_cert_filepath != NULL));
    if (opts->h2c_port > 0 && h2c_listen(http, &info) < 0) {
        free(http->rate);
        free(http);
        return NULL;
    }
    return http;
}

void weir_http_free(weir_http *http)
{
    if (!http)
        return;
    /* Connections, and the idle sweep's timer, are gone with the context
     * (the loop is freed first); nothing may point back here. */
    for (conn *c = http->conns; c; c = c->next)
        req_reset(&c->req);
    req_reset(&http->upg);
    for (size_t i = 0; i < http->nroutes; i++)
        free(http->routes[i].metrics);
    free(http->routes);
    free(http->ws_routes);
    free(http->rate);
    free(http);
}

void weir_http_drain(weir_http *http, void (*done)(void *arg), void *arg)
{
    http->draining = 1;
    http->drained = done;
    http->drained_arg = arg;
    /* WebSocket clients get a clean close after what is queued for them. */
    for (weir_http_ws *ws = http->clients; ws; ws = ws->next)
        weir_http_ws_close(ws, 1001, "server shutting down");
    if (http->nconns == 0 && http->nclients == 0) {
        http->drained = NULL;
        done(arg);
        return;
    }
    /* Idle keep-alive connections go now; busy ones close after their
     * response (see finish()). */
    for (conn *c = http->conns; c; c = c->next)
        if (!c->in_request)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
}

size_t weir_http_connections(const weir_http *http) { return http->nconns; }
int weir_http_port(const weir_http *http) { return http->port; }
