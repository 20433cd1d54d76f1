/*
 * control/api/api.c — see api.h.  The route table is data; each handler is a
 * blocking function from a call to a status and a JSON body.
 */
#include "control/api/api.h"
#include "control/keys/keys.h"
#include "control/assets/assets.h"
#include "control/events/events.h"
#include "control/uploads/uploads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <openssl/crypto.h>

#define API_PREFIX      "/api/v1/"
#define PROBLEM_TYPE    "application/problem+json"
#define PARAM_MAX       128

struct weir_api {
    weir_api_opts opts;
};

typedef struct api_call {
    weir_api *api;
    const char *method;
    char param[PARAM_MAX];          /* the {name} of the pattern, if any */
    const char *body;
    size_t body_len;
    weir_scope scope;               /* of the caller's token */
    /* result */
    int status;
    json_t *json;                   /* success body */
    const char *detail;             /* problem detail, when status >= 400 */
} api_call;

typedef struct api_route {
    const char *method;
    const char *pattern;
    weir_scope scope;               /* least scope allowed to call it */
    int (*fn)(api_call *c);
} api_route;

/* ---- responses ------------------------------------------------------------- */

static int ok(api_call *c, int status, json_t *json)
{
    if (!json)
        return AVERROR(ENOMEM);
    c->status = status;
    c->json = json;
    return 0;
}

static int problem(api_call *c, int status, const char *detail)
{
    c->status = status;
    c->detail = detail;
    return 0;
}

static const char *status_title(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 503: return "Service Unavailable";
    default:  return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* RFC 9457 problem details. */
static char *problem_body(int status, const char *detail)
{
    json_t *p = json_pack("{ss ss si ss}", "type", "about:blank", "title",
                          status_title(status), "status", status, "detail", detail);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return text;
}

/* ---- handlers: version and streams --------------------------------------- */

static int get_version(api_call *c)
{
    return ok(c, 200, json_pack("{ss}", "version", WEIR_VERSION));
}

static json_t *track_json(const AVCodecParameters *par, AVRational framerate)
{
    const char *type = av_get_media_type_string(par->codec_type);
    json_t *t = json_pack("{ss ss}", "type", type ? type : "unknown",
                          "codec", avcodec_get_name(par->codec_id));
    if (!t)
        return NULL;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
        json_object_set_new(t, "width", json_integer(par->width));
        json_object_set_new(t, "height", json_integer(par->height));
        if (framerate.num > 0 && framerate.den > 0)
            json_object_set_new(t, "fps", json_real(av_q2d(framerate)));
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
        json_object_set_new(t, "sample_rate", json_integer(par->sample_rate));
        json_object_set_new(t, "channels", json_integer(par->ch_layout.nb_channels));
    }
    if (par->bit_rate > 0)
        json_object_set_new(t, "bitrate", json_integer(par->bit_rate));
    return t;
}

/* One stream as the API shows it.  Renditions and viewers are reported as
 * they are today: no transcoder or origin subscribes yet. */
static json_t *stream_json(weir_stream *s)
{
    weir_stream_info info;
    AVCodecParameters *par = avcodec_parameters_alloc();
    json_t *o, *tracks = json_array(), *codecs = json_array();
    weir_publisher_stat stats[16];
    double uptime;
    int n;

    weir_stream_info_get(s, &info);
    uptime = (double)info.uptime_us / 1e6;
    o = json_pack("{ss ss ss ss ss sf sf si sI sI}",
                  "name", weir_stream_name(s), "state", info.ended ? "ended" : "live",
                  "protocol", info.publisher.protocol, "remote", info.publisher.remote,
                  "encoder", info.publisher.encoder, "uptime_s", uptime,
                  "bitrate_in", uptime > 0 ? (double)info.bytes * 8 / uptime : 0.0,
                  "subscribers", info.subscribers, "packets_in", (json_int_t)info.packets,
                  "bytes_in", (json_int_t)info.bytes);
    if (!o || !par || !tracks || !codecs)
        goto fail;
    for (int i = 0; i < weir_stream_ntracks(s); i++) {
        if (weir_stream_track_get(s, i, par, NULL) < 0)
            continue;
        json_array_append_new(tracks, track_json(par, info.publisher.framerate));
        json_array_append_new(codecs, json_string(avcodec_get_name(par->codec_id)));
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && !json_object_get(o, "resolution")) {
            json_object_set_new(o, "resolution", json_sprintf("%dx%d", par->width, par->height));
            if (info.publisher.framerate.num > 0 && info.publisher.framerate.den > 0)
                json_object_set_new(o, "fps", json_real(av_q2d(info.publisher.framerate)));
        }
    }
    json_object_set_new(o, "tracks", tracks);
    json_object_set_new(o, "codecs", codecs);
    if ((n = weir_stream_publisher_stats(s, stats, sizeof stats / sizeof stats[0])) > 0) {
        json_t *t = json_object();
        for (int i = 0; t && i < n; i++)
            json_object_set_new(t, stats[i].name, json_real(stats[i].value));
        json_object_set_new(o, "transport", t);
    }
    json_object_set_new(o, "bitrate_out", json_integer(0));
    json_object_set_new(o, "renditions", json_array());
    json_object_set_new(o, "viewers", json_integer(0));
    avcodec_parameters_free(&par);
    return o;
fail:
    json_decref(o);
    json_decref(tracks);
    json_decref(codecs);
    avcodec_parameters_free(&par);
    return NULL;
}

static int list_streams(api_call *c)
{
    weir_stream **list;
    size_t n;
    json_t *arr = json_array();
    int r = weir_bus_list(c->api->opts.bus, &list, &n);

    if (r < 0 || !arr) {
        json_decref(arr);
        return r < 0 ? r : AVERROR(ENOMEM);
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, stream_json(list[i]));
    weir_bus_list_free(list, n);
    return ok(c, 200, json_pack("{so}", "streams", arr));
}

static int get_stream(api_call *c)
{
    weir_stream *s = weir_bus_find(c->api->opts.bus, c->param);
    json_t *o;
    if (!s)
        return problem(c, 404, "no live stream with that name");
    o = stream_json(s);
    weir_stream_unref(s);
    return ok(c, 200, o);
}

static int kick_stream(api_call *c)
{
    weir_stream *s = weir_bus_find(c->api->opts.bus, c->param);
    int r;
    if (!s)
        return problem(c, 404, "no live stream with that name");
    r = weir_stream_kick(s);
    weir_stream_unref(s);
    if (r == AVERROR(ENOTSUP))
        return problem(c, 409, "this stream's publisher cannot be disconnected");
    weir_log_info("api", "publisher kicked", WL_STR("stream", c->param));
    return ok(c, 202, json_pack("{ss ss}", "name", c->param, "state", "disconnecting"));
}

/* ---- handlers: assets ---------------------------------------------------- */

static int list_assets(api_call *c)
{
    json_t *arr, *a;
    size_t i;
    int r;
    if (!c->api->opts.vod_dir)
        return ok(c, 200, json_pack("{s[]}", "assets"));
    if ((r = weir_assets_list(c->api->opts.vod_dir, &arr)) < 0)
        return r;
    if (c->api->opts.uploads)
        json_array_foreach(arr, i, a)
            weir_uploads_overlay(c->api->opts.uploads, a);
    return ok(c, 200, json_pack("{so}", "assets", arr));
}

static int get_asset(api_call *c)
{
    json_t *o;
    if (!c->api->opts.vod_dir || weir_assets_get(c->api->opts.vod_dir, c->param, &o) < 0)
        return problem(c, 404, "no asset with that id");
    if (c->api->opts.uploads)
        weir_uploads_overlay(c->api->opts.uploads, o);
    return ok(c, 200, o);
}

static int delete_asset(api_call *c)
{
    int r;

    if (!c->api->opts.vod_dir)
        return problem(c, 404, "no asset with that id");
    /* The path retention takes too (control/assets/retention.c). */
    r = weir_assets_remove(c->api->opts.vod_dir, c->param, c->api->opts.uploads,
                           c->api->opts.events);
    if (r == AVERROR(ENOENT))
        return problem(c, 404, "no asset with that id");
    if (r == AVERROR(EBUSY))
        return problem(c, 409, "the asset is still being recorded or processed");
    if (r < 0)
        return r;
    weir_log_info("api", "asset deleted", WL_STR("asset", c->param));
    return ok(c, 200, json_pack("{ss ss}", "id", c->param, "state", "deleted"));
}

/* ---- handlers: transcode jobs ---------------------------------------------- */

static int list_transcode_jobs(api_call *c)
{
    const weir_api_opts *o = &c->api->opts;
    if (!o->transcode_status)
        return ok(c, 200, json_pack("{s:b, s:n, s:[]}", "enabled", 0, "pool", "jobs"));
    json_t *st = o->transcode_status(o->transcode_arg);
    if (!st)
        return AVERROR(ENOMEM);
    json_object_set_new(st, "enabled", json_true());
    return ok(c, 200, st);
}

static int cancel_transcode_job(api_call *c)
{
    const weir_api_opts *o = &c->api->opts;
    char *end;
    unsigned long long id = strtoull(c->param, &end, 10);
    if (*end || c->param[0] < '0' || c->param[0] > '9')
        return problem(c, 404, "no running transcode job with that id");
    if (!o->transcode_cancel || o->transcode_cancel(o->transcode_arg, id) < 0)
        return problem(c, 404, "no running transcode job with that id");
    weir_log_info("api", "transcode job cancelled", WL_UINT("id", id));
    return ok(c, 202, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "cancelling"));
}

/* ---- handlers: keys and tokens --------------------------------------------- */

static int list_keys(api_call *c)
{
    json_t *arr;
    int r = weir_keys_list(c->api->opts.db, &arr);
    return r < 0 ? r : ok(c, 200, json_pack("{so}", "keys", arr));
}

/* Parses the JSON object body; problem 400 (and NULL) if it is not one. */
static json_t *body_object(api_call *c)
{
    json_error_t err;
    json_t *o = c->body_len ? json_loadb(c->body, c->body_len, 0, &err) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        problem(c, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* 1 if profile (NULL: none asked) names a transcode profile. */
static int profile_ok(const weir_api_opts *o, const json_t *v, const char **profile)
{
    *profile = json_string_value(v);
    if (!v || json_is_null(v))
        return 1;
    if (!*profile || !weir_keys_profile_valid(*profile))
        return 0;
    for (int i = 0; o->transcode_profiles && o->transcode_profiles[i]; i++)
        if (strcmp(o->transcode_profiles[i], *profile) == 0)
            return 1;
    return !o->transcode_profiles;
}

/* 1 if v (absent or null: none) is an SRT passphrase of 10-79 bytes. */
static int srt_passphrase_ok(const json_t *v, const char **passphrase)
{
    *passphrase = NULL;
    if (!v || json_is_null(v))
        return 1;
    *passphrase = json_string_value(v);
    /* A JSON string with an embedded NUL would be cut short by libsrt. */
    return *passphrase && strlen(*passphrase) == json_string_length(v) &&
           weir_keys_srt_passphrase_valid(*passphrase);
}

/* jansson frees its strings without wiping them: wipe the passphrase's copy
 * in the parsed body first (the raw body is wiped in http_call_free). */
static void wipe_json_string(const char *v)
{
    if (v)
        OPENSSL_cleanse((char *)v, strlen(v));
}

#define SRT_PASSPHRASE_PROBLEM "\"srt_passphrase\" must be a string of 10-79 bytes, or null"

static int create_key(api_call *c)
{
    char key[WEIR_CRED_LEN + 1];
    json_t *in = body_object(c);
    const char *name, *note, *profile, *srt_passphrase;
    int r;

    if (!in)
        return 0;
    name = json_string_value(json_object_get(in, "name"));
    note = json_string_value(json_object_get(in, "note"));
    if (!weir_stream_name_valid(name)) {
        json_decref(in);
        return problem(c, 400, "\"name\" must be 1-64 characters of A-Z a-z 0-9 _ -");
    }
    if (!profile_ok(&c->api->opts, json_object_get(in, "profile"), &profile)) {
        json_decref(in);
        return problem(c, 400, "\"profile\" must name a transcode profile "
                               "(default, low, high)");
    }
    if (!srt_passphrase_ok(json_object_get(in, "srt_passphrase"), &srt_passphrase)) {
        json_decref(in);
        return problem(c, 400, SRT_PASSPHRASE_PROBLEM);
    }
    r = weir_keys_create_with_profile(c->api->opts.db, name, note, profile, srt_passphrase,
                                      key);
    wipe_json_string(srt_passphrase);   /* stored; only "set or not" is answered */
    if (r == AVERROR(EEXIST)) {
        json_decref(in);
        return problem(c, 409, "that stream already has a key; revoke it first");
    }
    if (r >= 0)
        r = ok(c, 201, json_pack("{ss ss ss ss sb}", "name", name, "key", key, "note",
                                 note ? note : "", "profile", profile ? profile : "",
                                 "srt_passphrase_set", srt_passphrase != NULL));
    json_decref(in);
    OPENSSL_cleanse(key, sizeof key);
    return r;
}

/* PATCH {"srt_passphrase": "..." | null}: the one thing of a key that
 * changes without a new key.  Publishers connected now keep their link; the
 * new passphrase applies from their next handshake (after the key table's
 * few seconds of reuse, srt_auth.h). */
static int update_key(api_call *c)
{
    json_t *in = body_object(c), *v;
    const char *srt_passphrase;
    int r;

    if (!in)
        return 0;
    if (!(v = json_object_get(in, "srt_passphrase"))) {
        json_decref(in);
        return problem(c, 400, "nothing to change: send \"srt_passphrase\" (a string or null)");
    }
    if (!srt_passphrase_ok(v, &srt_passphrase)) {
        json_decref(in);
        return problem(c, 400, SRT_PASSPHRASE_PROBLEM);
    }
    r = weir_keys_set_srt_passphrase(c->api->opts.db, c->param, srt_passphrase);
    wipe_json_string(srt_passphrase);
    json_decref(in);
    if (r == AVERROR(ENOENT))
        return problem(c, 404, "that stream has no active key");
    return r < 0 ? r : ok(c, 200, json_pack("{ss sb}", "name", c->param, "srt_passphrase_set",
                                            srt_passphrase != NULL));
}

static int revoke_key(api_call *c)
{
    int r = weir_keys_revoke(c->api->opts.db, c->param);
    if (r == AVERROR(ENOENT))
        return problem(c, 404, "that stream has no active key");
    return r < 0 ? r : ok(c, 200, json_pack("{ss ss}", "name", c->param, "state", "revoked"));
}

static int list_tokens(api_call *c)
{
    json_t *arr;
    int r = weir_tokens_list(c->api->opts.db, &arr);
    return r < 0 ? r : ok(c, 200, json_pack("{so}", "tokens", arr));
}

static int create_token(api_call *c)
{
    char token[WEIR_CRED_LEN + 1], id[9];
    json_t *in = body_object(c);
    weir_scope scope;
    const char *name;
    int r;

    if (!in)
        return 0;
    scope = weir_scope_parse(json_string_value(json_object_get(in, "scope")));
    name = json_string_value(json_object_get(in, "name"));
    if (scope == WEIR_SCOPE_NONE) {
        json_decref(in);
        return problem(c, 400, "\"scope\" must be read, write or admin");
    }
    r = weir_tokens_create(c->api->opts.db, scope, name, token, id);
    if (r >= 0)
        r = ok(c, 201, json_pack("{ss ss ss}", "id", id, "token", token, "scope",
                                 weir_scope_name(scope)));
    json_decref(in);
    return r;
}

/* ---- handlers: single-use upload URLs ------------------------------------- */

static int create_upload_url(api_call *c)
{
    char token[WEIR_CRED_LEN + 1], id[9], url[128], expires[WEIR_ISO8601_LEN];
    json_t *in = NULL;
    const char *name = NULL;
    int64_t expires_ms;
    int r;

    if (!c->api->opts.uploads)
        return problem(c, 404, "uploads are not served here");
    if (c->body_len && !(in = body_object(c)))
        return 0;
    name = json_string_value(json_object_get(in, "name"));
    if (name && strlen(name) > WEIR_UPLOAD_NAME_MAX) {
        json_decref(in);
        return problem(c, 400, "\"name\" is too long");
    }
    r = weir_uploads_url_create(c->api->opts.uploads, name, token, id, &expires_ms);
    json_decref(in);
    if (r < 0)
        return r;
    snprintf(url, sizeof url, "/api/v1/uploads?token=%s", token);
    weir_clock_iso8601(expires_ms, expires);
    r = ok(c, 201, json_pack("{ss ss ss}", "id", id, "url", url, "expires", expires));
    OPENSSL_cleanse(token, sizeof token);
    OPENSSL_cleanse(url, sizeof url);
    return r;
}

static int revoke_token(api_call *c)
{
    int r = weir_tokens_revoke(c->api->opts.db, c->param);
    if (r == AVERROR(ENOENT))
        return problem(c, 404, "no active token with that id");
    return r < 0 ? r : ok(c, 200, json_pack("{ss ss}", "id", c->param, "state", "revoked"));
}

static const api_route routes[] = {
    { "GET",    "/api/v1/version",        WEIR_SCOPE_READ,  get_version },
    { "GET",    "/api/v1/streams",        WEIR_SCOPE_READ,  list_streams },
    { "GET",    "/api/v1/streams/{name}", WEIR_SCOPE_READ,  get_stream },
    { "DELETE", "/api/v1/streams/{name}", WEIR_SCOPE_WRITE, kick_stream },
    { "GET",    "/api/v1/assets",         WEIR_SCOPE_READ,  list_assets },
    { "GET",    "/api/v1/assets/{id}",    WEIR_SCOPE_READ,  get_asset },
    { "DELETE", "/api/v1/assets/{id}",    WEIR_SCOPE_WRITE, delete_asset },
    { "POST",   "/api/v1/uploads/urls",   WEIR_SCOPE_WRITE, create_upload_url },
    { "GET",    "/api/v1/transcode/jobs", WEIR_SCOPE_READ,  list_transcode_jobs },
    { "DELETE", "/api/v1/transcode/jobs/{id}", WEIR_SCOPE_WRITE, cancel_transcode_job },
    { "GET",    "/api/v1/keys",           WEIR_SCOPE_READ,  list_keys },
    { "POST",   "/api/v1/keys",           WEIR_SCOPE_WRITE, create_key },
    { "PATCH",  "/api/v1/keys/{name}",    WEIR_SCOPE_WRITE, update_key },
    { "DELETE", "/api/v1/keys/{name}",    WEIR_SCOPE_WRITE, revoke_key },
    { "GET",    "/api/v1/tokens",         WEIR_SCOPE_ADMIN, list_tokens },
    { "POST",   "/api/v1/tokens",         WEIR_SCOPE_ADMIN, create_token },
    { "DELETE", "/api/v1/tokens/{id}",    WEIR_SCOPE_ADMIN, revoke_token },
};
#define NROUTES (sizeof routes / sizeof routes[0])

size_t weir_api_routes(const weir_api_route_desc **out)
{
    static weir_api_route_desc desc[NROUTES];
    for (size_t i = 0; i < NROUTES; i++)
        desc[i] = (weir_api_route_desc){ routes[i].method, routes[i].pattern };
    *out = desc;
    return NROUTES;
}

/* ---- matching ------------------------------------------------------------ */

/* Matches path against a pattern with at most one "{param}" segment.  On a
 * match the segment's value goes to param.  1 or 0. */
static int pattern_match(const char *pattern, const char *path, char *param)
{
    const char *brace = strchr(pattern, '{');
    size_t plen;

    if (!brace)
        return strcmp(pattern, path) == 0;
    plen = (size_t)(brace - pattern);
    if (strncmp(pattern, path, plen) != 0)
        return 0;
    path += plen;
    {
        const char *end = strchr(path, '/');
        size_t vlen = end ? (size_t)(end - path) : strlen(path);
        if (vlen == 0 || vlen >= PARAM_MAX || end)
            return 0;
        memcpy(param, path, vlen);
        param[vlen] = '\0';
    }
    return 1;
}

/* Finds the route; *path_known tells 404 from 405. */
static const api_route *route_find(const char *method, const char *path, char *param,
                                   int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!pattern_match(routes[i].pattern, path, param))
            continue;
        *path_known = 1;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
            return &routes[i];
    }
    return NULL;
}

/* "Bearer <token>" -> token, or NULL. */
static const char *bearer(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    authorization += 7;
    while (*authorization == ' ')
        authorization++;
    return *authorization ? authorization : NULL;
}

int weir_api_call(weir_api *api, const char *method, const char *path,
                  const char *authorization, const void *body, size_t len,
                  int *status, char **body_out, const char **ctype_out)
{
    api_call c = { .api = api, .method = method, .body = body, .body_len = len };
    const api_route *rt;
    const char *token;
    int known, r = 0;

    rt = route_find(method, path, c.param, &known);
    if (!rt) {
        problem(&c, known ? 405 : 404, known ? "that method is not allowed here"
                                              : "no such API endpoint");
    } else if (!(token = bearer(authorization))) {
        problem(&c, 401, "send an API token: Authorization: Bearer <token> "
                         "(create one with `weir tokens create`)");
    } else if ((r = weir_tokens_verify(api->opts.db, token, &c.scope)) < 0) {
        if (r == AVERROR(EACCES))
            problem(&c, 401, "the API token is unknown or revoked");
        r = r == AVERROR(EACCES) ? 0 : r;
    } else if (c.scope < rt->scope) {
        problem(&c, 403, rt->scope == WEIR_SCOPE_ADMIN ? "this needs an admin token"
                                                       : "this needs a write or admin token");
    } else {
        r = rt->fn(&c);
    }
    if (r < 0) {
        weir_log_error("api", "call failed", WL_STR("method", method), WL_STR("path", path),
                       WL_ERR(r));
        json_decref(c.json);
        c.json = NULL;
        problem(&c, r == AVERROR(ETIMEDOUT) ? 503 : 500,
                r == AVERROR(ETIMEDOUT) ? "the database is busy; try again"
                                        : "internal error; see the server log");
    }
    *status = c.status;
    if (c.status >= 400) {
        *body_out = problem_body(c.status, c.detail);
        *ctype_out = PROBLEM_TYPE;
    } else {
        *body_out = json_dumps(c.json, JSON_COMPACT | JSON_REAL_PRECISION(10));
        *ctype_out = "application/json";
    }
    json_decref(c.json);
    return *body_out ? 0 : AVERROR(ENOMEM);
}

/* ---- HTTP glue (loop thread) ----------------------------------------------- */

typedef struct http_call {
    weir_api *api;
    weir_http_deferred *d;
    char method[8];
    char path[512];
    char authorization[256];
    void *body;
    size_t body_len;
    /* result */
    int r, status;
    char *out;
    const char *ctype;
} http_call;

static void http_call_free(http_call *hc)
{
    if (hc->body)       /* may carry a secret (an SRT passphrase) */
        OPENSSL_cleanse(hc->body, hc->body_len);
    free(hc->body);
    free(hc->out);
    free(hc);
}

static void run_call(void *arg)            /* worker */
{
    http_call *hc = arg;
    hc->r = weir_api_call(hc->api, hc->method, hc->path,
                          hc->authorization[0] ? hc->authorization : NULL,
                          hc->body, hc->body_len, &hc->status, &hc->out, &hc->ctype);
}

static void call_done(void *arg)           /* loop */
{
    http_call *hc = arg;
    weir_http_req *req = hc->d ? weir_http_resume(hc->d) : NULL;

    if (req) {
        if (hc->r < 0) {
            weir_http_respond_error(req, 500, "internal error");
        } else {
            if (hc->status == 401)
                weir_http_add_header(req, "www-authenticate", "Bearer realm=\"weir\"");
            weir_http_add_header(req, "cache-control", "no-store");
            weir_http_respond(req, hc->status, hc->ctype, hc->out, strlen(hc->out));
        }
    }
    http_call_free(hc);
}

static int api_http(weir_http_req *req, void *arg)
{
    weir_api *api = arg;
    http_call *hc = calloc(1, sizeof *hc);
    size_t len;
    const void *body = weir_http_req_body(req, &len);
    int r;

    if (!hc)
        return AVERROR(ENOMEM);
    hc->api = api;
    snprintf(hc->method, sizeof hc->method, "%s", weir_http_req_method(req));
    if (strlen(weir_http_req_path(req)) >= sizeof hc->path) {
        free(hc);
        return weir_http_respond_error(req, 414, "path too long");
    }
    snprintf(hc->path, sizeof hc->path, "%s", weir_http_req_path(req));
    if (weir_http_req_header(req, "authorization", hc->authorization,
                             sizeof hc->authorization) < 0)
        hc->authorization[0] = '\0';
    if (len && !(hc->body = malloc(len))) {
        free(hc);
        return AVERROR(ENOMEM);
    }
    if (len)
        memcpy(hc->body, body, len);
    hc->body_len = len;

    /* Submit first: call_done runs on this loop, so not before we return. */
    if ((r = weir_work_submit(api->opts.work, run_call, call_done, hc)) < 0) {
        http_call_free(hc);
        weir_http_add_header(req, "retry-after", "1");
        return weir_http_respond_error(req, 503, "server busy; try again");
    }
    hc->d = weir_http_defer(req);
    return hc->d ? 0 : AVERROR(ENOMEM);
}

static int openapi_http(weir_http_req *req, void *arg)
{
    (void)arg;
    weir_http_add_header(req, "cache-control", "max-age=300");
    return weir_http_respond(req, 200, "application/yaml", weir_openapi_yaml,
                             weir_openapi_yaml_len);
}

int weir_api_new(const weir_api_opts *opts, weir_api **out)
{
    weir_api *api = calloc(1, sizeof *api);
    int r = 0;

    if (!api)
        return AVERROR(ENOMEM);
    api->opts = *opts;
    if (opts->http) {
        /* The API's exact paths under a module's mount come before it. */
        if ((r = weir_http_route(opts->http, "GET", "/api/v1/openapi.yaml", 0,
                                 openapi_http, api)) < 0 ||
            (r = weir_http_route(opts->http, NULL, "/api/v1/uploads/urls", 0,
                                 api_http, api)) < 0 ||
            (opts->mount && (r = opts->mount(opts->mount_arg)) < 0) ||
            (r = weir_http_route(opts->http, NULL, API_PREFIX, 1, api_http, api)) < 0) {
            free(api);
            return r;
        }
    }
    *out = api;
    return 0;
}

void weir_api_set_uploads(weir_api *api, struct weir_uploads *uploads)
{
    api->opts.uploads = uploads;
}

void weir_api_free(weir_api *api)
{
    free(api);
}
