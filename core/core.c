/*
 * core/core.c — the settings of the process as a whole.
 */
#include "core/core.h"

#include <stddef.h>

#define K(field) offsetof(weir_core_settings, field)

static const char *const log_levels[] = { "error", "warn", "info", "debug", "trace", NULL };
static const char *const log_formats[] = { "text", "json", NULL };

static const weir_conf_key core_keys[] = {
    { "data_dir", WEIR_CONF_STRING, K(data_dir), "./var", 0, 0, NULL,
      "directory for the database, segments and uploads", 0 },
    { "http.addr", WEIR_CONF_STRING, K(http_addr), "0.0.0.0", 0, 0, NULL,
      "address the HTTP server (origin, API, metrics) listens on", 0 },
    { "http.port", WEIR_CONF_INT, K(http_port), "8080", 1, 65535, NULL,
      "TCP port of the HTTP server", 0 },
    { "http.max_body", WEIR_CONF_SIZE, K(http_max_body), "1MiB", 0, 1073741824, NULL,
      "largest request body accepted (API calls); larger ones get 413", 0 },
    { "http.keepalive_timeout", WEIR_CONF_DURATION, K(http_keepalive), "5s", 1000, 3600000,
      NULL, "idle keep-alive connections are closed after this", 0 },
    { "http.max_header_size", WEIR_CONF_SIZE, K(http_max_header), "8KiB", 1024, 65535, NULL,
      "bytes of request line and headers held per request; more is refused", 0 },
    { "http.send_timeout", WEIR_CONF_DURATION, K(http_send_timeout), "30s", 1000, 3600000, NULL,
      "a client that accepts no response bytes for this long is disconnected", 0 },
    { "http.ws_max_queue", WEIR_CONF_INT, K(http_ws_max_queue), "256", 1, 65536, NULL,
      "messages waiting for one WebSocket client (/api/v1/events); a client that falls this "
      "far behind is disconnected", 0 },
    { "http.max_connections", WEIR_CONF_INT, K(http_max_connections), "10000", 1, 1000000,
      NULL, "HTTP connections open at once; past it a new one is closed as it arrives "
      "(counted in weir_http_connections_refused_total, logged at most once a second)", 0 },
    { "http.rate_limit", WEIR_CONF_INT, K(http_rate_limit), "0", 0, 1000000, NULL,
      "requests per second one client address may make (a burst of one second's worth); "
      "more get 429 with Retry-After; 0: no limit", 0 },
    { "http.tls_cert", WEIR_CONF_STRING, K(http_tls_cert), "", 0, 0, NULL,
      "PEM certificate (chain) for HTTPS on http.port; empty: plain HTTP", 0 },
    { "http.tls_key", WEIR_CONF_STRING, K(http_tls_key), "", 0, 0, NULL,
      "PEM private key of http.tls_cert", 0 },
    { "http.h2", WEIR_CONF_BOOL, K(http_h2), "false", 0, 0, NULL,
      "offer HTTP/2 by ALPN on the HTTPS port (with HTTP/1.1 as the fallback); off by default "
      "because tus uploads need HTTP/1.1 (libwebsockets 4.1 drops their headers on HTTP/2) and "
      "a browser cannot choose: turn on where players, not browser uploads, use the port", 0 },
    { "http.h2_max_streams", WEIR_CONF_INT, K(http_h2_max_streams), "128", 1, 65536, NULL,
      "HTTP/2 (HTTPS by ALPN, or http.h2c_port): requests one connection may have in flight at "
      "once (SETTINGS_MAX_CONCURRENT_STREAMS); each stream also counts in "
      "http.max_connections", 0 },
    { "http.h2c_port", WEIR_CONF_INT, K(http_h2c_port), "0", 0, 65535, NULL,
      "also listen on this TCP port for cleartext HTTP/2 with prior knowledge only (no "
      "HTTP/1.1, no TLS), for a TLS-terminating CDN or proxy in front; 0: off", 0 },
    { "http.access_log", WEIR_CONF_BOOL, K(http_access_log), "true", 0, 0, NULL,
      "log one line per HTTP request (module=access: client, method, path, status, bytes, "
      "duration, user agent; never the query string)", 0 },
    { "log.level", WEIR_CONF_ENUM, K(log_level), "info", 0, 0, log_levels,
      "least severe level logged: error, warn, info, debug, trace", 0 },
    { "log.format", WEIR_CONF_ENUM, K(log_format), "text", 0, 0, log_formats,
      "text (key=value) or json (one object per line)", 0 },
    { "shutdown.timeout", WEIR_CONF_DURATION, K(shutdown_timeout), "4s", 0, 60000, NULL,
      "on SIGTERM/SIGINT, how long in-flight requests may take before exit", 0 },
};

const weir_conf_table weir_core_conf_table = {
    .module = "core",
    .keys = core_keys,
    .nkeys = sizeof core_keys / sizeof core_keys[0],
};

void weir_core_apply_log_settings(const weir_core_settings *s)
{
    weir_log_set_level((weir_log_level)s->log_level);
    weir_log_set_format((weir_log_format)s->log_format);
}
