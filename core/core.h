/*
 * core/core.h — the one header other modules include for the foundations:
 *
 *   log.h    structured one-line-per-event logging, secrets redacted
 *   conf.h   configuration as data (tables, YAML, --set, dump)
 *   clock.h  injectable time sources
 *   loop.h   the libwebsockets event loop, timers, cross-thread posting
 *   http.h   the HTTP server shared by the origin and the API
 *   bus.h    the stream bus: refcounted AVPackets, one publisher, N subscribers
 *   buf.h    refcounted byte buffers; the objects the packager hands the origin
 *   nal.h    H.264/HEVC Annex B -> ISO (avcC/hvcC, length-prefixed NAL units)
 *   norm.h   one demuxed track into the bus form (Annex B, ADTS -> ISO)
 *
 * plus the settings that belong to the process as a whole.
 */
#ifndef WEIR_CORE_H
#define WEIR_CORE_H

#include "core/log.h"
#include "core/conf.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/http.h"
#include "core/bus.h"
#include "core/buf.h"
#include "core/nal.h"
#include "core/norm.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "0.0.0"
#endif

/* Process-wide settings (config keys data_dir, http.*, log.*, shutdown.*). */
typedef struct weir_core_settings {
    char *data_dir;
    char *http_addr;
    int64_t http_port;
    int64_t http_max_body;          /* bytes */
    int64_t http_keepalive;         /* ms */
    int64_t http_max_header;        /* bytes */
    int http_access_log;            /* a line per request */
    int64_t http_send_timeout;      /* ms */
    int64_t http_ws_max_queue;      /* messages per WebSocket client */
    int64_t http_max_connections;   /* open at once; more are closed at once */
    int64_t http_rate_limit;        /* requests/s per client address; 0: off */
    char *http_tls_cert;            /* PEM paths; "" = plain HTTP */
    char *http_tls_key;
    int http_h2;                    /* offer h2 by ALPN on the TLS port */
    int64_t http_h2_max_streams;    /* HTTP/2 streams in flight per connection */
    int64_t http_h2c_port;          /* cleartext h2 (prior knowledge) port; 0: off */
    int log_level;                  /* weir_log_level */
    int log_format;                 /* weir_log_format */
    int64_t shutdown_timeout;       /* ms */
} weir_core_settings;

extern const weir_conf_table weir_core_conf_table;

/* Applies log.level and log.format. */
void weir_core_apply_log_settings(const weir_core_settings *s);

#endif
