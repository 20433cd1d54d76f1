/*
 * core/http.h — the HTTP server shared by the origin and the API.
 *
 * A libwebsockets vhost listening on http.addr:http.port with one protocol.
 * Modules add routes (method + exact path or prefix); a request is matched
 * against them in the order they were added.
 *
 * Request life, per connection (h1) or stream (h2):
 *
 *   IDLE --headers--> [BODY: collect up to http.max_body] --> HANDLER
 *   HANDLER --weir_http_respond()--> SENDING --all written--> IDLE (keep-alive)
 *
 * Streaming routes (uploads) run the handler on the headers and hand the
 * body over in pieces as it arrives; see "streaming request bodies" below.
 *
 * A response is built once into one buffer, status line, headers and body
 * together, and goes out in a single lws_write() on HTTP/1.1 (DESIGN.md §3:
 * one write served 1.25-1.35x nginx, two writes 0.73x).  HTTP/2 needs the
 * headers as their own frame: there the headers go as a HEADERS frame and
 * the body as DATA frames within the peer's flow-control window, all from
 * the stream's WRITEABLE (see http.c, "HTTP/2").  Each h2 stream has its
 * own request state; handlers cannot tell the two apart (but see
 * weir_http_req_h2() about custom request headers).
 *
 * Handlers run on the loop thread.  Most respond before returning.  One that
 * must wait (for the database, on the blocking-work pool) calls
 * weir_http_defer(), returns 0, and later, on the loop thread, gets the
 * request back with weir_http_resume() and responds then; the request, its
 * path and its body stay valid until it responds.  If the client went away
 * in between, weir_http_resume() returns NULL.
 *
 * Draining (SIGTERM): weir_http_drain() closes idle keep-alive connections,
 * lets in-flight requests finish with "Connection: close", and calls back
 * once no connection is left.
 */
#ifndef WEIR_CORE_HTTP_H
#define WEIR_CORE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/buf.h"

typedef struct weir_http weir_http;
typedef struct weir_http_req weir_http_req;

typedef struct weir_http_opts {
    const char *addr;           /* listen address; NULL or "" = all */
    int port;                   /* 0: any free port, see weir_http_port() */
    int64_t max_body;           /* bytes; larger bodies get 413 */
    int64_t keepalive_ms;       /* idle keep-alive connections close after this */
    int access_log;             /* log a line per request (module=access) */
    int64_t send_timeout_ms;    /* a client that takes nothing for this long is dropped */
    int ws_max_queue;           /* messages waiting per WebSocket client; 0: 256 */
    /* Origins whose pages may open a WebSocket here: "*" (or NULL) for any,
     * else a comma-separated list as origin.cors_origins.  A request
     * without Origin (not a browser) or from this server's own host is
     * always let through: the route's accept() still decides. */
    const char *ws_origins;
    /* Limits (see "limits" below).  max_connections: 0 = unlimited;
     * rate_limit: requests/s per client address, 0 = off. */
    int64_t max_connections;
    int64_t rate_limit;
    /* PEM paths: both set, the port speaks HTTPS only, HTTP/2 or HTTP/1.1
     * as ALPN picks (offered: h2, http/1.1).  NULL or "": plain HTTP/1.1. */
    const char *tls_cert, *tls_key;
    /* Offer h2 by ALPN when TLS is on (else http/1.1 only). */
    int h2;
    /* HTTP/2 streams in flight on one connection (SETTINGS_MAX_CONCURRENT_
     * STREAMS); 0: HTTP_H2_STREAMS_DEFAULT. */
    int h2_max_streams;
    /* > 0: also listen there for cleartext HTTP/2 with prior knowledge
     * only (no HTTP/1.1, no TLS), for a TLS-terminating proxy in front. */
    int h2c_port;
    /* Optional.  metrics: the server registers weir_http_requests_total
     * {route,code} and weir_http_request_duration_seconds{route} there.
     * rx_bytes/tx_bytes: counters to add request-body and response bytes to
     * (the app's weir_*_bytes_total{protocol="http"}). */
    weir_metrics *metrics;
    weir_metric_child *rx_bytes, *tx_bytes;
} weir_http_opts;

/* Limits.  A connection arriving while max_connections are open is closed
 * before it is read (weir_http_connections_refused_total, a log line at most
 * once a second).  HTTP/2 streams count as connections of their own.  With
 * rate_limit, each client address has a token bucket of rate_limit tokens
 * refilled at rate_limit per second; a request finding it empty gets 429
 * with Retry-After before any handler runs.  Buckets live in a fixed table
 * (HTTP_RATE_SLOTS): when it is full the longest-idle address is forgotten,
 * so a flood of distinct addresses makes the limit lenient, never memory
 * unbounded.  Request headers past the loop's max_http_header are refused
 * by lws itself (the connection is closed). */

/* Returns 0 when it responded, or a negative AVERROR: the server then answers
 * 500 (if nothing was sent) and logs the error once. */
typedef int (*weir_http_handler)(weir_http_req *req, void *arg);

/* Starts listening.  NULL on failure (logged: address in use, ...). */
weir_http *weir_http_new(weir_loop *loop, const weir_http_opts *opts);
/* Frees the server object.  Call after the loop stopped (connections are
 * closed by weir_loop_free). */
void weir_http_free(weir_http *http);

/* method: "GET", "POST", ... or NULL for any; GET routes also answer HEAD.
 * path: exact, or a prefix when it ends in '/' and prefix is set.
 * The strings are borrowed and must outlive the server.  0 or AVERROR(ENOMEM). */
int weir_http_route(weir_http *http, const char *method, const char *path, int prefix,
                    weir_http_handler fn, void *arg);

/* Stop serving: see the header comment.  done(arg) runs on the loop. */
void weir_http_drain(weir_http *http, void (*done)(void *arg), void *arg);
size_t weir_http_connections(const weir_http *http);
/* The bound port (useful when opts.port was 0). */
int weir_http_port(const weir_http *http);

/* ---- answering later --------------------------------------------------- */

typedef struct weir_http_deferred weir_http_deferred;

/* From a handler: the response will come later.  Returns a handle that must
 * be passed to weir_http_resume() exactly once, on the loop thread; NULL on
 * ENOMEM (the handler should then respond 503 itself). */
weir_http_deferred *weir_http_defer(weir_http_req *req);
/* Frees the handle.  Returns the request, on which the caller must now call
 * weir_http_respond*(), or NULL if the connection closed meanwhile. */
weir_http_req *weir_http_resume(weir_http_deferred *d);

/* ---- streaming request bodies ------------------------------------------
 *
 * Uploads are far larger than http.max_body.  A route added with
 * weir_http_route_stream() runs its handler as soon as the headers are in,
 * before any body byte, and max_body does not apply to it.  The body waits
 * (the server stops reading the socket and holds what it already read)
 * until the handler takes it with weir_http_body_stream(), at once or on a
 * request it got back from weir_http_resume() (after asking the database,
 * say):
 *
 *   headers -> handler -+-> [defer ... resume] -> weir_http_body_stream(sink)
 *                       |        -> data()* -> end(req) -> respond or defer
 *                       |           pause/resume: backpressure
 *                       |           the connection drops before end: gone()
 *                       +-> respond without taking the body
 *
 * Once a request is answered its sink hears nothing more.  Body bytes still
 * unread then are read and dropped when they are few (up to 4 MiB), so the
 * connection lives on and a client still sending reads the answer; past
 * that, the answer says "Connection: close" and the connection closes after
 * it (unread bytes must never be read as the next request).
 *
 * Sink calls run on the loop thread and never inside the call that caused
 * them: weir_http_body_stream() and weir_http_body_resume() deliver held
 * bytes on a later loop turn.  Once a sink is attached, responses to the
 * request are written on the next writable turn, as after weir_http_resume().
 * The request pointer stays valid until end() or gone(). */
typedef struct weir_http_body_sink {
    /* Body bytes, in order; p is valid for the call only.  Return 0 to go on,
     * or a negative AVERROR to stop: no sink call follows, and unless the
     * sink responded first the server answers 500. */
    int (*data)(void *arg, const void *p, size_t len);
    /* Content-Length bytes were delivered (at once, for an empty body).  The
     * sink must now respond or defer, as a handler does; it hears nothing
     * more about this request. */
    void (*end)(void *arg, weir_http_req *req);
    /* The connection closed before end: the request is gone; no call follows. */
    void (*gone)(void *arg);
} weir_http_body_sink;

/* As weir_http_route(), for a streaming route (see above). */
int weir_http_route_stream(weir_http *http, const char *method, const char *path, int prefix,
                           weir_http_handler fn, void *arg);

/* Takes the body of a request on a streaming route: sink and arg are
 * borrowed until end() or gone().  Once per request, before it responded.
 * 0, or AVERROR(EINVAL) (not a streaming route, already taken or answered). */
int weir_http_body_stream(weir_http_req *req, const weir_http_body_sink *sink, void *arg);
/* Backpressure: stop reading the request body from the socket / go on.  A
 * paused sink gets no data() (end() may still come once everything was
 * delivered). */
void weir_http_body_pause(weir_http_req *req);
void weir_http_body_resume(weir_http_req *req);

/* ---- WebSocket routes -------------------------------------------------
 *
 * A path answered by upgrading to WebSocket (RFC 6455) on the same vhost
 * and port as every other route; lws's ws role does the framing.  Messages
 * go one way, server to client (text); what a client sends is read and
 * ignored (control frames are answered by lws).
 *
 *   GET + Upgrade: websocket --origin check (403)--> accept(req): 0, or an
 *     HTTP status answered as {"error"} before the upgrade (401, 403, ...)
 *   --101--> open(ws, req): headers still readable; 0, or AVERROR: closed
 *   weir_http_ws_send*()*  queued, written when the socket takes them;
 *     past ws_max_queue unsent the client is dropped (logged once)
 *   client gone, weir_http_ws_close(), or the server draining -> closed(ws)
 *
 * A request without "Upgrade: websocket" to the path gets 426.  Every call
 * runs on the loop thread; ws is valid from open() until closed() returns. */
typedef struct weir_http_ws weir_http_ws;

typedef struct weir_http_ws_handler {
    int (*accept)(void *arg, weir_http_req *req);
    int (*open)(void *arg, weir_http_ws *ws, weir_http_req *req);
    void (*closed)(void *arg, weir_http_ws *ws);
} weir_http_ws_handler;

/* path: exact.  h and the strings are borrowed for the server's life. */
int weir_http_ws_route(weir_http *http, const char *path, const weir_http_ws_handler *h,
                       void *arg);
/* A per-client pointer for the route's own use (NULL until set). */
void weir_http_ws_set_user(weir_http_ws *ws, void *user);
void *weir_http_ws_user(const weir_http_ws *ws);
/* Queues one text message, copied.  0; AVERROR(EPIPE) once the client is
 * closing (it was dropped, or closed); AVERROR(ENOMEM). */
int weir_http_ws_send(weir_http_ws *ws, const char *text, size_t len);
/* The same for a message shared by many clients without a copy: msg holds
 * LWS_PRE bytes of headroom, then the text (msg->size - LWS_PRE bytes).
 * The headroom is scratch space for lws's frame header, rewritten at each
 * write, so one buffer serves every client of the loop thread in turn.
 * msg is borrowed (the queue takes its own reference). */
int weir_http_ws_send_buf(weir_http_ws *ws, weir_buf *msg);
/* Starts a clean close (code 1000 or 4000-4999, a short reason): messages
 * already queued go first.  closed() follows. */
void weir_http_ws_close(weir_http_ws *ws, int code, const char *reason);
/* Is a page from `origin` (the Origin header) allowed by `list` ("*" or
 * NULL: any; else comma-separated origins)?  A page of `host` (the Host
 * header; NULL or "" if none) always is.  1 or 0. */
int weir_http_origin_allowed(const char *list, const char *origin, const char *host);
/* Open WebSocket clients on the server. */
size_t weir_http_ws_clients(const weir_http *http);

/* ---- inside a handler -------------------------------------------------- */

const char *weir_http_req_method(const weir_http_req *req);   /* "GET", ... */
const char *weir_http_req_path(const weir_http_req *req);     /* decoded, no query */
/* 1 when the request came on an HTTP/2 stream, else 0.  (libwebsockets
 * 4.1 keeps no request header it has no token for on HTTP/2: custom
 * headers, tus's among them, read as absent there.) */
int weir_http_req_h2(const weir_http_req *req);
/* Request body (POST/PUT/PATCH) or NULL; *len gets its size. */
const void *weir_http_req_body(const weir_http_req *req, size_t *len);
/* The request's Content-Length: >= 0, or -1 when it has none (or a bad one). */
int64_t weir_http_req_content_length(const weir_http_req *req);
/* Copies a request header value (case-insensitive name) into buf.  Returns
 * its length, or -1 if absent or longer than cap - 1. */
int weir_http_req_header(const weir_http_req *req, const char *name, char *buf, size_t cap);
/* Copies the value of query argument `name` into buf; -1 if absent. */
int weir_http_req_query(const weir_http_req *req, const char *name, char *buf, size_t cap);

/* Adds a response header for the next weir_http_respond().  Both strings are
 * copied.  0, or AVERROR(ENOSPC) past the header budget. */
int weir_http_add_header(weir_http_req *req, const char *name, const char *value);

/* Sends the response: status, Content-Type (may be NULL when len == 0), the
 * body copied into the single output buffer (omitted for HEAD).  Once per
 * request.  0 or a negative AVERROR. */
int weir_http_respond(weir_http_req *req, int status, const char *content_type,
                      const void *body, size_t len);
/* Sends body->data[off .. off+len-1] without copying it: the connection
 * holds a reference to body until the last byte is written, and writes it
 * in pieces as the socket takes them (a slow reader costs no memory, and
 * one that stops reading is dropped after send_timeout).  Small bodies go
 * out with the headers in one write, as weir_http_respond does.  body is
 * borrowed (the function takes its own reference). */
int weir_http_respond_buf(weir_http_req *req, int status, const char *content_type,
                          weir_buf *body, size_t off, size_t len);

/* ---- streamed responses ------------------------------------------------
 *
 * For a body produced while it is sent (a low-latency DASH segment whose
 * CMAF chunks are still being cut): Transfer-Encoding: chunked on HTTP/1.1,
 * DATA frames (no Content-Length) on HTTP/2.
 * The request must have been deferred (weir_http_defer); the handle stays
 * with the caller, who reaches the request through weir_http_deferred_req
 * (NULL once the client has gone) and frees the handle with
 * weir_http_resume when done.  Loop thread only.
 *
 *   weir_http_stream_begin(req, 200, type)    status and headers
 *   weir_http_stream_write(req, piece)*       a reference is queued (at most
 *                                             32 unsent: AVERROR(ENOSPC))
 *   weir_http_stream_end(req)                 the last chunk */
weir_http_req *weir_http_deferred_req(weir_http_deferred *d);
int weir_http_stream_begin(weir_http_req *req, int status, const char *content_type);
int weir_http_stream_write(weir_http_req *req, weir_buf *piece);
int weir_http_stream_end(weir_http_req *req);

/* Compact JSON body; obj is borrowed. */
int weir_http_respond_json(weir_http_req *req, int status, const json_t *obj);
/* {"error": message} with the given status. */
int weir_http_respond_error(weir_http_req *req, int status, const char *message);

#endif
