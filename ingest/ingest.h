/*
 * ingest/ingest.h — protocols in, streams on the bus out (DESIGN.md §1).
 *
 * For now this module holds the ingest settings every protocol shares;
 * RTMP (ingest/rtmp/), SRT (ingest/srt/) and uploads (ingest/upload/) plug
 * in here as each lands.
 */
#ifndef WEIR_INGEST_H
#define WEIR_INGEST_H

#include "core/core.h"

typedef enum weir_ingest_auth {
    WEIR_INGEST_AUTH_KEYS = 0,      /* publishing needs a valid stream key */
    WEIR_INGEST_AUTH_OPEN = 1,      /* development: the key is the stream name */
} weir_ingest_auth;

typedef enum weir_ingest_duplicate {
    WEIR_INGEST_DUP_REJECT = 0,     /* a second publisher on a live name is refused */
    WEIR_INGEST_DUP_TAKEOVER = 1,   /* the new one replaces the old */
} weir_ingest_duplicate;

typedef struct weir_ingest_settings {
    int64_t rtmp_port;
    int64_t srt_port;
    int auth;                       /* weir_ingest_auth */
    int on_duplicate;               /* weir_ingest_duplicate */
    int64_t max_publishers;
    int64_t rtmp_handshake_timeout; /* ms */
    int64_t rtmp_idle_timeout;      /* ms */
    int64_t rtmp_max_message;       /* bytes */
    int64_t rtmp_chunk_size;        /* bytes, what we send with */
    int64_t srt_latency;            /* ms */
    char *srt_passphrase;           /* secret; "" = no encryption */
    int64_t srt_max_connections;
    int64_t srt_max_streamid;       /* bytes */
    int64_t srt_idle_timeout;       /* ms */
    int srt_pbkeylen;               /* index into "0", "16", "24", "32": see weir_ingest_srt_pbkeylen */
    int64_t srt_auth_wait;          /* ms */
    int64_t srt_max_bitrate;        /* bits/s */
    int64_t srt_max_bitrate_window; /* ms */
} weir_ingest_settings;

/* srt.pbkeylen in bytes (0, 16, 24 or 32). */
int weir_ingest_srt_pbkeylen(const weir_ingest_settings *s);

extern const weir_conf_table weir_ingest_conf_table;

/*
 * Publish authorisation, as ingest needs it.  With ingest.auth=keys a
 * protocol asks "which stream does this key publish?" and waits for the
 * answer without blocking the loop.  The control plane provides the function
 * (weir_control_authorize_publish); the app hands it to ingest, so ingest
 * depends on this signature only, not on control/.
 *
 * done(arg, 0, stream, srt_passphrase) on success, done(arg, AVERROR(EACCES),
 * NULL, NULL) for an unknown or revoked key, another negative code if the
 * store failed; done runs on the loop thread, exactly once, after the call
 * returned 0.  The call itself returns 0 or a negative code (then done never
 * runs).  srt_passphrase is the key's own SRT passphrase (NULL: none, the
 * server-wide srt.passphrase applies): a secret, borrowed for the call only,
 * wiped by the caller afterwards; protocols other than SRT ignore it.
 */
#define WEIR_SRT_PASSPHRASE_MAX 79      /* bytes; SRTO_PASSPHRASE's bound */
typedef void (*weir_publish_auth_done)(void *arg, int result, const char *stream,
                                       const char *srt_passphrase);
typedef int (*weir_publish_auth_fn)(void *ctx, const char *key,
                                    weir_publish_auth_done done, void *arg);

/* ---- RTMP ------------------------------------------------------------------
 *
 * rtmp://HOST:rtmp.port/live/<stream-key>: our own implementation
 * (handshake, chunk stream, AMF0, FLV and Enhanced RTMP tags) on the loop as
 * raw TCP.  Each publish becomes a stream on the bus named after the key's
 * stream (or, with ingest.auth=open, the key itself).
 */
typedef struct weir_rtmp_server weir_rtmp_server;

typedef struct weir_rtmp_opts {
    weir_loop *loop;
    weir_bus *bus;
    const weir_ingest_settings *settings;   /* copied */
    const char *addr;                       /* NULL: all addresses */
    int port;                               /* 0: any free port (tests) */
    weir_publish_auth_fn auth;              /* required with ingest.auth=keys */
    void *auth_ctx;
    /* optional: weir_publishers_connected{protocol="rtmp"} and
     * weir_received_bytes_total{protocol="rtmp"}; the app owns the
     * families, shared by every protocol */
    weir_metric_child *publishers;
    weir_metric_child *rx_bytes;
} weir_rtmp_opts;

/* Starts listening.  0 or a negative code (logged). */
int weir_rtmp_server_new(const weir_rtmp_opts *opts, weir_rtmp_server **out);
int weir_rtmp_server_port(const weir_rtmp_server *srv);
/* Publishers connected now. */
int weir_rtmp_server_publishers(const weir_rtmp_server *srv);
/* Frees the server; call after the loop stopped and its context is gone. */
void weir_rtmp_server_free(weir_rtmp_server *srv);

/* ---- SRT -------------------------------------------------------------------
 *
 * srt://HOST:srt.port?streamid=#!::r=live/<stream-key>,m=publish (or the
 * plain live/<stream-key>): libsrt (gnutls flavour) in live mode on its own
 * thread, MPEG-TS demuxed by libavformat, one demux thread per publisher.
 */
typedef struct weir_srt_server weir_srt_server;

typedef struct weir_srt_opts {
    weir_loop *loop;                        /* auth runs here; nothing else does */
    weir_bus *bus;
    const weir_ingest_settings *settings;   /* copied: auth, on_duplicate, max_publishers */
    const char *addr;                       /* IPv4 literal; NULL: all addresses */
    int port;                               /* 0: any free port (tests) */
    weir_publish_auth_fn auth;              /* required with ingest.auth=keys */
    void *auth_ctx;
    const char *passphrase;                 /* copied; NULL or "": no encryption, else 10..79 bytes; a secret */
    int64_t latency_ms;                     /* SRTO_LATENCY; 0: 120 */
    int64_t max_connections;                /* SRT connections at once, any state; 0: 64 */
    int64_t max_streamid;                   /* bytes, <= 512; 0: 512 */
    int64_t idle_timeout_ms;                /* no data for this long closes; 0: 10000 */
    int pbkeylen;                           /* AES key bytes with a passphrase: 0 (the
                                               caller's, else 16), 16, 24, 32 */
    int64_t auth_wait_ms;                   /* the most a handshake waits for the key
                                               store; 0: 100; < 0: never (decide after
                                               accept) */
    int64_t max_bitrate;                    /* bits/s a publisher may send, averaged
                                               over max_bitrate_window_ms; above it
                                               the publisher is disconnected; 0: 100 M */
    int64_t max_bitrate_window_ms;          /* 0: 5000; at least 1000 */
    weir_metrics *metrics;                  /* optional: per-publisher link statistics,
                                               weir_srt_* {stream}, and the
                                               bitrate-limit counter */
    /* optional: weir_publishers_connected{protocol="srt"} and
     * weir_received_bytes_total{protocol="srt"} (families owned by the app) */
    weir_metric_child *publishers;
    weir_metric_child *rx_bytes;
} weir_srt_opts;

/* Binds and starts the SRT thread.  0 and *out (OUT, owned by the caller,
 * freed with weir_srt_server_free), or a negative code (logged). */
int weir_srt_server_new(const weir_srt_opts *opts, weir_srt_server **out);
/* The bound UDP port. */
int weir_srt_server_port(const weir_srt_server *srv);
/* Publishers on the bus now.  Any thread. */
int weir_srt_server_publishers(const weir_srt_server *srv);
/* Stops listening, asks every connection to stop, joins every SRT thread,
 * ends their streams and frees the server.  Call after weir_loop_run
 * returned and BEFORE weir_work_free / weir_loop_free: once it returns no
 * SRT thread posts to the loop any more (an authorisation still in flight
 * finds its connection stopped and only drops its reference).  NULL is a
 * no-op. */
void weir_srt_server_free(weir_srt_server *srv);

#endif
