/*
 * control/events/events.h — private to control/: GET /api/v1/events, a
 * WebSocket that pushes what happens on this node, so the dashboard and
 * scripts need not poll.
 *
 * Every message is one JSON text frame:
 *
 *   {"type": "asset.state", "time": "2026-11-29T10:00:00.000Z", "data": {...}}
 *
 *   ready            the connection is authorised; events follow
 *   stream.started   {name}           a stream was published on the bus
 *   stream.ended     {name}
 *   asset.created    {asset}          an upload began (state uploading), or a
 *                                     recording did (state recording: the packager,
 *                                     through weir_control_emit)
 *   asset.state      {asset}          queued, processing (percent), ready,
 *                                     failed (reason): GET /api/v1/assets/ID's object
 *   upload.progress  {id, offset, length}   a PATCH was acknowledged
 *   asset.deleted    {id}             DELETE of the asset or of its upload, or the
 *                                     recordings' retention (weir_assets_remove)
 *
 * A client's life:
 *
 *   upgrade request --no credential--> 401 (no upgrade)
 *     | credential: Authorization: Bearer T, Sec-WebSocket-Protocol
 *     | "weir, bearer.T" (browsers cannot set headers), or ?token=T
 *     v
 *   101 -> PENDING --token checked on the work pool--> READY ("ready" sent)
 *                  \--unknown token or no read scope--> closed 4401 / 4403
 *   READY: every event emitted from now on, in order
 *
 * The token is checked after the upgrade because the database must not be
 * asked on the loop thread and lws cannot hold an upgrade open; a PENDING
 * client gets nothing.  Tokens are never logged (the access log has no
 * query string).
 *
 * weir_events_emit is the one call the rest of the control plane makes:
 * any thread, cheap when nobody listens (one atomic load), otherwise one
 * JSON dump and one post to the loop, where the single buffer is queued to
 * every client without a copy.
 */
#ifndef WEIR_CONTROL_EVENTS_H
#define WEIR_CONTROL_EVENTS_H

#include "control/control.h"

typedef struct weir_events weir_events;

typedef struct weir_events_opts {
    weir_loop *loop;
    weir_http *http;            /* the route is added here */
    weir_work *work;            /* token checks */
    weir_dbpool *db;
    weir_bus *bus;              /* stream.started / stream.ended; may be NULL */
} weir_events_opts;

/* Loop thread, at start-up.  0 or AVERROR. */
int weir_events_new(const weir_events_opts *opts, weir_events **out /* OUT */);
/* Before the loop is freed: no more events are taken (the bus watcher is
 * removed; emits from other threads are dropped).  NULL is fine. */
void weir_events_stop(weir_events *ev);
/* After the loop is freed.  NULL is fine. */
void weir_events_free(weir_events *ev);

/* Any thread.  data is borrowed (serialised before return).  ev NULL is a
 * no-op, so modules call it whether or not events are wired. */
void weir_events_emit(weir_events *ev, const char *type, const json_t *data);

/* The token in a Sec-WebSocket-Protocol list ("weir, bearer.wt_..."): 0
 * and out (NUL-terminated), or -1 when no item is "bearer." and a token of
 * the right shape.  Exposed for the fuzz target. */
int weir_events_protocol_token(const char *list, char out[WEIR_CRED_LEN + 1]);

#endif
