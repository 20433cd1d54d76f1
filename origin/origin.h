/*
 * origin/origin.h — serves what the packager produced to players and caches
 * (DESIGN.md §1).
 *
 *   GET|HEAD /live/<name>/<file>   from a lookup function (the packager's
 *                                  in-memory store, wired by the app)
 *   GET|HEAD /vod/<asset>/<file>   from vod_dir, read on the work pool into
 *                                  a cache (origin.vod_cache_size): hits are
 *                                  answered on the loop, sent with sendfile
 *                                  from the buffer's memfd like live segments
 *   GET|HEAD /time                 ISO 8601 UTC, for DASH UTCTiming
 *   GET|HEAD /, /web/<file>        the dashboard page from origin.web_dir, read
 *                                  into memory at start (hls.js from its npm
 *                                  install in web/node_modules: hls.js, tus-js-client)
 *   OPTIONS  (any media path)      CORS preflight
 *
 * Every media response carries Cache-Control by the object's class,
 * ETag/Last-Modified (conditional requests answer 304), Accept-Ranges and
 * single byte ranges (206/416), and the CORS headers.  Paths are checked
 * before any lookup: only [A-Za-z0-9_.-] components, none starting with
 * '.', so nothing outside the store is reachable.
 *
 * LL-HLS: a lookup answering AVERROR(EAGAIN) (a playlist asked for with
 * _HLS_msn/_HLS_part that does not reach that part yet, a preload-hinted
 * part) holds the request, without a thread and without polling, until
 * weir_origin_changed() says the stream moved on; after hold_timeout it
 * gets 503, as RFC 8216bis 6.2.5.2 asks.
 *
 * Runs on the loop thread, like the lookup it calls.
 */
#ifndef WEIR_ORIGIN_H
#define WEIR_ORIGIN_H

#include <stdint.h>

#include "core/core.h"
#include "core/work.h"

typedef struct weir_origin_settings {
    char *cors_origins;             /* "*" or a comma-separated list of allowed origins */
    int64_t master_max_age;         /* ms, Cache-Control of master playlists */
    char *web_dir;                  /* the dashboard's files */
    int64_t max_held;               /* held LL-HLS requests at once */
    int64_t vod_cache_size;         /* bytes of VOD files kept in memory; 0: none */
    int64_t vod_cache_valid;        /* ms a cached VOD file is served before it is reread */
} weir_origin_settings;

extern const weir_conf_table weir_origin_conf_table;

typedef struct weir_origin weir_origin;

typedef struct weir_origin_opts {
    weir_loop *loop;
    weir_http *http;
    const weir_origin_settings *settings;   /* borrowed */
    weir_object_lookup_fn live;             /* /live/ mount */
    void *live_arg;
    int64_t hold_timeout_ms;                /* held requests get 503 after this */
    const char *vod_dir;                    /* /vod/<asset>/<file> is read from here */
    weir_work *work;                        /* where files are read */
} weir_origin_opts;

int weir_origin_new(const weir_origin_opts *opts, weir_origin **out /* OUT */);
/* Frees the origin and what it still holds.  Call after the loop stopped. */
void weir_origin_free(weir_origin *o);

/* The producer behind the /live/ mount changed stream `name` (a
 * weir_packager_on_change callback): held requests for it are looked up
 * again and answered when they can be.  Loop thread. */
void weir_origin_changed(void *origin, const char *name);

/* Parses a Range header value against a body of `size` bytes.  Returns 0
 * with [*start, *start + *len) for one satisfiable range; 1 when the header
 * should be ignored (not bytes=, several ranges, malformed) and the whole
 * body sent; AVERROR(ERANGE) when it is unsatisfiable (416). */
int weir_origin_parse_range(const char *value, uint64_t size, uint64_t *start, uint64_t *len);

#endif
