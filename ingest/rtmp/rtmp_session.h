/*
 * ingest/rtmp/rtmp_session.h — private to ingest/: one RTMP publisher
 * connection, from the first handshake byte to the end of its stream.
 *
 * The session is protocol logic only.  rtmp_server.c owns the socket (a raw
 * libwebsockets connection) and drives the session with the bytes it reads;
 * the session hands back bytes to send and says when to close.
 *
 *   [HANDSHAKE] --C0 C1 / S0 S1 S2, C2--> [CONNECTING] --connect--> [CONNECTED]
 *   [CONNECTED] --createStream, publish(key)--> [AUTHORIZING] (work pool)
 *   [AUTHORIZING] --key ok, name free--> [PUBLISHING] --media--> bus
 *   [AUTHORIZING] --bad key / name taken--> onStatus error, [CLOSING]
 *   [PUBLISHING] --FCUnpublish, deleteStream, closeStream, EOF, kick--> [CLOSING]
 *   any --malformed input, limit, timeout--> [CLOSING] (one log line)
 *
 *   transition                    function
 *   HANDSHAKE -> CONNECTING       session_rx (weir_rtmp_handshake_feed)
 *   CONNECTING -> CONNECTED       on_connect
 *   CONNECTED -> AUTHORIZING      on_publish
 *   AUTHORIZING -> PUBLISHING     on_authorized
 *   PUBLISHING -> CLOSING         on_unpublish, weir_rtmp_session_close
 *
 * Media: audio and video messages are parsed as FLV tags.  Codec
 * configurations (sequence headers) and onMetaData say which tracks the
 * stream has; frames wait in a short queue until every announced track has
 * its configuration (or the queue fills), then the tracks are added to the
 * bus stream and the frames follow, zero-copy: each AVPacket references
 * the chunk reader's message buffer.
 */
#ifndef WEIR_INGEST_RTMP_SESSION_H
#define WEIR_INGEST_RTMP_SESSION_H

#include "ingest/ingest.h"

typedef struct rtmp_session rtmp_session;

/* What the session needs from the server. */
typedef struct rtmp_env {
    weir_loop *loop;
    weir_bus *bus;
    const weir_ingest_settings *settings;
    weir_publish_auth_fn auth;
    void *auth_ctx;
    /* Publisher accounting shared by all sessions (loop thread). */
    int *publishers;
    weir_metric_child *publishers_gauge;
    weir_metric_child *rx_bytes;
    /* I/O, implemented by the server: */
    void (*want_write)(void *conn);         /* out has bytes: call back writable */
    void (*close)(void *conn);              /* close the connection soon */
} rtmp_env;

/* A new session for one accepted connection; conn is the server's handle
 * passed back to want_write/close.  remote: "1.2.3.4:5678".  NULL on ENOMEM. */
rtmp_session *rtmp_session_new(const rtmp_env *env, void *conn, const char *remote);
/* Bytes from the socket.  Returns 0, or a negative code after which the
 * connection must close (already logged). */
int rtmp_session_rx(rtmp_session *s, const uint8_t *data, size_t len);
/* Bytes to send: *len bytes at the returned pointer, valid until the next
 * call into the session; rtmp_session_sent() says how many went out. */
const uint8_t *rtmp_session_pending(rtmp_session *s, size_t *len);
void rtmp_session_sent(rtmp_session *s, size_t n);
/* The socket closed: ends the stream, drops the connection's reference.
 * The session may live on until an authorisation in flight answers. */
void rtmp_session_closed(rtmp_session *s);
/* Whether a timeout should close it now: still in handshake/connect. */
int rtmp_session_publishing(const rtmp_session *s);

#endif
