/*
 * control/api/api.h — private to control/: the REST API under /api/v1/ and
 * /healthz.
 *
 * A request's path through the API:
 *
 *   loop:   weir_http route "/api/v1/" -> match the route table (404/405 here)
 *           -> copy method, path, Authorization, body into a call
 *           -> weir_work_submit(call) and weir_http_defer()
 *   worker: weir_api_call(): bearer token -> scope check -> handler (DB, bus)
 *           -> status + JSON, or an RFC 9457 problem
 *   loop:   weir_http_resume() -> one write
 *
 * weir_api_call() is the whole of the blocking part, so tests drive it
 * directly and the CLI shares the handlers' code paths through keys.h.
 */
#ifndef WEIR_CONTROL_API_H
#define WEIR_CONTROL_API_H

#include "core/core.h"
#include "core/work.h"
#include "control/dbpool/dbpool.h"

/* GET /healthz: 200 {"status":"ok","version":...,"uptime_s":...} */
typedef struct weir_api_health {
    const weir_clock *clock;
    int64_t started_us;
} weir_api_health;

int weir_api_health_init(weir_api_health *h, weir_http *http, const weir_clock *clock);

typedef struct weir_api weir_api;

typedef struct weir_api_opts {
    weir_http *http;            /* NULL: no HTTP routes (tests call weir_api_call) */
    weir_work *work;            /* where calls run; required with http */
    weir_dbpool *db;
    weir_bus *bus;
    const char *vod_dir;        /* the VOD assets (control/assets) */
    /* Transcoding (NULL when it is off): GET /api/v1/transcode/jobs shows
     * what transcode_status returns (a new reference; any thread), DELETE
     * /api/v1/transcode/jobs/{id} calls transcode_cancel (0, or
     * AVERROR(ENOENT) for no such running job).  Both get transcode_arg.
     * The control plane knows no transcode header: the app wires these. */
    json_t *(*transcode_status)(void *arg);
    int (*transcode_cancel)(void *arg, uint64_t id);
    void *transcode_arg;
    /* The transcode profiles a stream key may name, NULL-terminated
     * (POST /api/v1/keys); NULL: any name of 1-15 [a-z0-9_-]. */
    const char *const *transcode_profiles;
    struct weir_uploads *uploads;   /* NULL: no upload URLs, uploads not in assets */
    struct weir_events *events;     /* asset.deleted; NULL: none */
    /* Called between the API's own exact routes and its /api/v1/ prefix
     * route, so that a module can serve paths below /api/v1/ itself (tus
     * at /api/v1/uploads).  May be NULL. */
    int (*mount)(void *arg);
    void *mount_arg;
} weir_api_opts;

int weir_api_new(const weir_api_opts *opts, weir_api **out);
/* The uploads module, once mount has made it (NULL is fine). */
void weir_api_set_uploads(weir_api *api, struct weir_uploads *uploads);
void weir_api_free(weir_api *api);

/* Runs one call, blocking.  *body_out is malloc'd (caller frees), with its
 * content type in *ctype_out (static string). */
int weir_api_call(weir_api *api, const char *method, const char *path,
                  const char *authorization, const void *body, size_t len,
                  int *status, char **body_out, const char **ctype_out);

/* The route table, for the test that checks docs/openapi.yaml covers it. */
typedef struct weir_api_route_desc {
    const char *method;
    const char *pattern;        /* "/api/v1/streams/{name}" */
} weir_api_route_desc;
size_t weir_api_routes(const weir_api_route_desc **out);

/* docs/openapi.yaml, embedded at build time (openapi_yaml.c). */
extern const char weir_openapi_yaml[];
extern const size_t weir_openapi_yaml_len;

#endif
