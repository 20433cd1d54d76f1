/*
 * Unit tests for the REST API: weir_api_call() end to end over a real SQLite
 * database and a real bus, and the OpenAPI document covering every route.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <libavutil/error.h>

#include "control/control.h"
#include "control/api/api.h"

static char dir[] = "/tmp/weir-api-XXXXXX";
static weir_dbpool *db;
static weir_bus *bus;
static weir_api *api;
static char tok_read[64], tok_write[64], tok_admin[64];
static weir_dbpool_settings settings = {
    .url = "", .min_idle = 1, .max_size = 4, .acquire_timeout = 5000,
    .idle_timeout = 600000, .max_lifetime = 1800000, .validation_timeout = 5000,
};

static void bearer(char *out, size_t cap, weir_scope scope)
{
    char token[WEIR_CRED_LEN + 1], id[9];
    cr_assert_eq(weir_tokens_create(db, scope, "test", token, id), 0);
    snprintf(out, cap, "Bearer %s", token);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(weir_control_open_db(&settings, dir, &db), 0);
    cr_assert_not_null(bus = weir_bus_new());
    cr_assert_eq(weir_api_new(&(weir_api_opts){ .db = db, .bus = bus }, &api), 0);
    bearer(tok_read, sizeof tok_read, WEIR_SCOPE_READ);
    bearer(tok_write, sizeof tok_write, WEIR_SCOPE_WRITE);
    bearer(tok_admin, sizeof tok_admin, WEIR_SCOPE_ADMIN);
}

static void teardown(void)
{
    char cmd[128];
    weir_api_free(api);
    weir_bus_free(bus);
    weir_dbpool_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* One call; returns the parsed body (caller decrefs) and the status. */
static json_t *call(const char *method, const char *path, const char *auth, const char *body,
                    int *status, const char **ctype)
{
    char *out = NULL;
    const char *ct = NULL;
    json_error_t err;
    json_t *j;

    cr_assert_eq(weir_api_call(api, method, path, auth, body, body ? strlen(body) : 0, status,
                               &out, &ct), 0);
    j = json_loads(out, 0, &err);
    cr_assert_not_null(j, "not JSON: %s", out);
    if (ctype)
        *ctype = ct;
    free(out);
    return j;
}

static void expect_problem(const char *method, const char *path, const char *auth,
                           const char *body, int want)
{
    int status;
    const char *ct;
    json_t *j = call(method, path, auth, body, &status, &ct);
    cr_assert_eq(status, want, "%s %s: %d", method, path, status);
    cr_assert_str_eq(ct, "application/problem+json");
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), want);
    cr_assert(json_is_string(json_object_get(j, "title")));
    cr_assert_gt(strlen(json_string_value(json_object_get(j, "detail"))), 10);
    json_decref(j);
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, auth_is_required_and_scoped)
{
    int status;
    json_t *j;

    expect_problem("GET", "/api/v1/streams", NULL, NULL, 401);
    expect_problem("GET", "/api/v1/streams", "Basic abc", NULL, 401);
    expect_problem("GET", "/api/v1/streams",
                   "Bearer wt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 401);
    j = call("GET", "/api/v1/version", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "version")), WEIR_VERSION);
    json_decref(j);
    /* A read-only token can't change anything. */
    expect_problem("POST", "/api/v1/keys", tok_read, "{\"name\":\"x\"}", 403);
    expect_problem("DELETE", "/api/v1/keys/x", tok_read, NULL, 403);
    expect_problem("DELETE", "/api/v1/streams/x", tok_read, NULL, 403);
    expect_problem("GET", "/api/v1/tokens", tok_write, NULL, 403);
    expect_problem("GET", "/api/v1/nope", tok_read, NULL, 404);
    expect_problem("PUT", "/api/v1/keys", tok_admin, NULL, 405);
}

Test(api, keys_through_the_api)
{
    int status;
    json_t *j;
    char key[64], name[64];

    expect_problem("POST", "/api/v1/keys", tok_write, "not json", 400);
    expect_problem("POST", "/api/v1/keys", tok_write, "{\"name\":\"has space\"}", 400);
    j = call("POST", "/api/v1/keys", tok_write, "{\"name\":\"cam1\",\"note\":\"roof\"}", &status,
             NULL);
    cr_assert_eq(status, 201);
    snprintf(key, sizeof key, "%s", json_string_value(json_object_get(j, "key")));
    json_decref(j);
    /* The key the API handed out is the one ingest will accept. */
    cr_assert_eq(weir_keys_lookup(db, key, name, sizeof name), 0);
    cr_assert_str_eq(name, "cam1");
    expect_problem("POST", "/api/v1/keys", tok_write, "{\"name\":\"cam1\"}", 409);

    j = call("GET", "/api/v1/keys", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "keys")), 1);
    json_decref(j);

    j = call("DELETE", "/api/v1/keys/cam1", tok_write, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    json_decref(j);
    cr_assert_eq(weir_keys_lookup(db, key, name, sizeof name), AVERROR(EACCES));
    expect_problem("DELETE", "/api/v1/keys/cam1", tok_write, NULL, 404);
}

/* A key's own SRT passphrase: accepted at creation and by PATCH, checked
 * for SRT's bounds, and never shown, only whether it is set. */
Test(api, a_key_can_carry_an_srt_passphrase)
{
    int status;
    json_t *j;
    char key[64], name[64], pass[WEIR_KEY_SRT_PASSPHRASE_MAX + 1], *dump;

    expect_problem("POST", "/api/v1/keys", tok_write,
                   "{\"name\":\"enc\",\"srt_passphrase\":\"short\"}", 400);
    expect_problem("POST", "/api/v1/keys", tok_write,
                   "{\"name\":\"enc\",\"srt_passphrase\":12345678901}", 400);
    expect_problem("POST", "/api/v1/keys", tok_write,
                   "{\"name\":\"enc\",\"srt_passphrase\":"
                   "\"01234567890123456789012345678901234567890123456789012345678901234567890123456789\"}",
                   400);
    j = call("POST", "/api/v1/keys", tok_write,
             "{\"name\":\"enc\",\"srt_passphrase\":\"correct horse battery\"}", &status, NULL);
    cr_assert_eq(status, 201);
    cr_assert(json_is_true(json_object_get(j, "srt_passphrase_set")));
    cr_assert_null(json_object_get(j, "srt_passphrase"));
    snprintf(key, sizeof key, "%s", json_string_value(json_object_get(j, "key")));
    json_decref(j);
    cr_assert_eq(weir_keys_lookup_publish(db, key, name, sizeof name, pass), 0);
    cr_assert_str_eq(pass, "correct horse battery");

    j = call("GET", "/api/v1/keys", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    dump = json_dumps(j, 0);
    cr_assert_null(strstr(dump, "horse"), "the passphrase was listed: %s", dump);
    free(dump);
    cr_assert(json_is_true(json_object_get(json_array_get(json_object_get(j, "keys"), 0),
                                           "srt_passphrase_set")));
    json_decref(j);

    /* PATCH changes and clears it; bad values and unknown streams fail. */
    j = call("PATCH", "/api/v1/keys/enc", tok_write, "{\"srt_passphrase\":\"another one!\"}",
             &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert(json_is_true(json_object_get(j, "srt_passphrase_set")));
    json_decref(j);
    cr_assert_eq(weir_keys_lookup_publish(db, key, name, sizeof name, pass), 0);
    cr_assert_str_eq(pass, "another one!");
    expect_problem("PATCH", "/api/v1/keys/enc", tok_write, "{\"srt_passphrase\":\"123\"}", 400);
    expect_problem("PATCH", "/api/v1/keys/enc", tok_write, "{}", 400);
    expect_problem("PATCH", "/api/v1/keys/enc", tok_read, "{\"srt_passphrase\":null}", 403);
    expect_problem("PATCH", "/api/v1/keys/nobody", tok_write,
                   "{\"srt_passphrase\":\"0123456789\"}", 404);
    j = call("PATCH", "/api/v1/keys/enc", tok_write, "{\"srt_passphrase\":null}", &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert(json_is_false(json_object_get(j, "srt_passphrase_set")));
    json_decref(j);
    cr_assert_eq(weir_keys_lookup_publish(db, key, name, sizeof name, pass), 0);
    cr_assert_str_eq(pass, "");
}

/* A stand-in for the transcoder: the app wires the real one. */
static int cancelled_id;

static json_t *fake_status(void *arg)
{
    return json_pack("{s:{s:f}, s:[{s:I, s:s, s:s}]}", "pool", "capacity", *(double *)arg,
                     "jobs", "id", (json_int_t)7, "kind", "file", "state", "running");
}

static int fake_cancel(void *arg, uint64_t id)
{
    (void)arg;
    if (id != 7)
        return AVERROR(ENOENT);
    cancelled_id = (int)id;
    return 0;
}

Test(api, a_key_can_ask_for_a_transcode_profile)
{
    static const char *const profiles[] = { "default", "low", "high", NULL };
    int status;
    json_t *j;
    char profile[32];
    weir_api *with;

    cr_assert_eq(weir_api_new(&(weir_api_opts){ .db = db, .bus = bus,
                                                .transcode_profiles = profiles }, &with), 0);
    weir_api *plain = api;
    api = with;
    expect_problem("POST", "/api/v1/keys", tok_write, "{\"name\":\"cam1\",\"profile\":\"huge\"}",
                   400);
    expect_problem("POST", "/api/v1/keys", tok_write, "{\"name\":\"cam1\",\"profile\":7}", 400);
    j = call("POST", "/api/v1/keys", tok_write, "{\"name\":\"cam1\",\"profile\":\"low\"}",
             &status, NULL);
    cr_assert_eq(status, 201);
    cr_assert_str_eq(json_string_value(json_object_get(j, "profile")), "low");
    json_decref(j);
    cr_assert_eq(weir_keys_profile(db, "cam1", profile, sizeof profile), 0);
    cr_assert_str_eq(profile, "low");
    j = call("GET", "/api/v1/keys", tok_read, NULL, &status, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "keys"),
                                                                      0), "profile")), "low");
    json_decref(j);
    api = plain;
    weir_api_free(with);
}

Test(api, transcode_jobs)
{
    int status;
    json_t *j;
    double capacity = 2;
    weir_api *with;

    /* Transcoding off: an empty list. */
    j = call("GET", "/api/v1/transcode/jobs", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert(json_is_false(json_object_get(j, "enabled")));
    cr_assert(json_is_null(json_object_get(j, "pool")));
    cr_assert_eq(json_array_size(json_object_get(j, "jobs")), 0);
    json_decref(j);
    expect_problem("DELETE", "/api/v1/transcode/jobs/7", tok_write, NULL, 404);

    cr_assert_eq(weir_api_new(&(weir_api_opts){ .db = db, .bus = bus,
                                                .transcode_status = fake_status,
                                                .transcode_cancel = fake_cancel,
                                                .transcode_arg = &capacity }, &with), 0);
    weir_api *plain = api;
    api = with;
    expect_problem("GET", "/api/v1/transcode/jobs", NULL, NULL, 401);
    j = call("GET", "/api/v1/transcode/jobs", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert(json_is_true(json_object_get(j, "enabled")));
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(j, "pool"), "capacity")),
                       2.0, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(j, "jobs"), 0),
                                                    "id")), 7);
    json_decref(j);

    expect_problem("DELETE", "/api/v1/transcode/jobs/7", tok_read, NULL, 403);
    expect_problem("DELETE", "/api/v1/transcode/jobs/8", tok_write, NULL, 404);
    expect_problem("DELETE", "/api/v1/transcode/jobs/x7", tok_write, NULL, 404);
    j = call("DELETE", "/api/v1/transcode/jobs/7", tok_write, NULL, &status, NULL);
    cr_assert_eq(status, 202);
    cr_assert_eq(cancelled_id, 7);
    json_decref(j);
    api = plain;
    weir_api_free(with);
}

Test(api, tokens_through_the_api)
{
    int status;
    json_t *j;
    char auth[80], id[16];

    j = call("POST", "/api/v1/tokens", tok_admin, "{\"scope\":\"read\",\"name\":\"grafana\"}",
             &status, NULL);
    cr_assert_eq(status, 201);
    snprintf(auth, sizeof auth, "Bearer %s", json_string_value(json_object_get(j, "token")));
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    j = call("GET", "/api/v1/version", auth, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    json_decref(j);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tokens/%s", id);
    j = call("DELETE", path, tok_admin, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    json_decref(j);
    expect_problem("GET", "/api/v1/version", auth, NULL, 401);
    expect_problem("POST", "/api/v1/tokens", tok_admin, "{\"scope\":\"root\"}", 400);
}

static int kicked;
static void kick(void *arg) { (void)arg; kicked++; }

static int transport_stats(void *arg, weir_publisher_stat *out, int max)
{
    (void)arg;
    cr_assert_geq(max, 2);
    out[0] = (weir_publisher_stat){ "rtt_ms", 12.5 };
    out[1] = (weir_publisher_stat){ "packets_lost", 3 };
    return 2;
}

static weir_stream *publish_h264(const char *name, int with_kick)
{
    weir_stream *s;
    AVCodecParameters *par = avcodec_parameters_alloc();
    weir_publisher_info pi = { .protocol = "rtmp", .remote = "127.0.0.1:5000",
                               .encoder = "obs", .framerate = { 30, 1 } };

    cr_assert_eq(weir_bus_publish(bus, name, NULL, &s), 0);
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    par->width = 1280;
    par->height = 720;
    cr_assert_geq(weir_stream_add_track(s, par, (AVRational){ 1, 1000 }), 0);
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_AAC;
    par->width = par->height = 0;
    par->sample_rate = 48000;
    av_channel_layout_default(&par->ch_layout, 2);
    cr_assert_geq(weir_stream_add_track(s, par, (AVRational){ 1, 1000 }), 0);
    avcodec_parameters_free(&par);
    if (with_kick) {
        pi.kick = kick;
        pi.kick_arg = NULL;
        pi.stats = transport_stats;
    }
    weir_stream_set_publisher(s, &pi);
    return s;
}

Test(api, streams_from_the_bus)
{
    weir_stream *s = publish_h264("cam1", 1), *t = publish_h264("cam2", 0);
    int status;
    json_t *j, *streams, *one;

    j = call("GET", "/api/v1/streams", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    streams = json_object_get(j, "streams");
    cr_assert_eq(json_array_size(streams), 2);
    json_decref(j);

    j = call("GET", "/api/v1/streams/cam1", tok_read, NULL, &status, NULL);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "live");
    cr_assert_str_eq(json_string_value(json_object_get(j, "protocol")), "rtmp");
    cr_assert_str_eq(json_string_value(json_object_get(j, "resolution")), "1280x720");
    cr_assert_float_eq(json_real_value(json_object_get(j, "fps")), 30.0, 1e-9);
    one = json_object_get(j, "codecs");
    cr_assert_str_eq(json_string_value(json_array_get(one, 0)), "h264");
    cr_assert_str_eq(json_string_value(json_array_get(one, 1)), "aac");
    one = json_array_get(json_object_get(j, "tracks"), 1);
    cr_assert_eq(json_integer_value(json_object_get(one, "channels")), 2);
    one = json_object_get(j, "transport");
    cr_assert_float_eq(json_real_value(json_object_get(one, "rtt_ms")), 12.5, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(one, "packets_lost")), 3, 1e-9);
    json_decref(j);
    j = call("GET", "/api/v1/streams/cam2", tok_read, NULL, &status, NULL);
    cr_assert_null(json_object_get(j, "transport"), "a publisher without statistics");
    json_decref(j);

    expect_problem("GET", "/api/v1/streams/none", tok_read, NULL, 404);
    kicked = 0;
    j = call("DELETE", "/api/v1/streams/cam1", tok_write, NULL, &status, NULL);
    cr_assert_eq(status, 202);
    cr_assert_eq(kicked, 1);
    json_decref(j);
    expect_problem("DELETE", "/api/v1/streams/cam2", tok_write, NULL, 409);
    weir_stream_end(s);
    weir_stream_end(t);
}

/* ---- the OpenAPI document covers the router ------------------------------- */

/* Finds key in a YAML mapping node; NULL if absent. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

Test(openapi, every_route_is_documented)
{
    const weir_api_route_desc *routes;
    size_t n = weir_api_routes(&routes);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *paths;
    static const weir_api_route_desc outside[] = {
        { "GET", "/healthz" }, { "GET", "/metrics" }, { "GET", "/api/v1/openapi.yaml" },
        /* tus (control/uploads) */
        { "POST", "/api/v1/uploads" }, { "OPTIONS", "/api/v1/uploads" },
        { "HEAD", "/api/v1/uploads/{id}" }, { "PATCH", "/api/v1/uploads/{id}" },
        { "DELETE", "/api/v1/uploads/{id}" }, { "OPTIONS", "/api/v1/uploads/{id}" },
        /* the WebSocket (control/events) */
        { "GET", "/api/v1/events" },
    };
    const size_t noutside = sizeof outside / sizeof outside[0];

    cr_assert_gt(n, 5);
    /* The embedded copy is what the server serves; it is docs/openapi.yaml. */
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)weir_openapi_yaml,
                                 weir_openapi_yaml_len);
    cr_assert(yaml_parser_load(&parser, &doc), "openapi.yaml does not parse");
    paths = map_get(&doc, yaml_document_get_root_node(&doc), "paths");
    cr_assert_not_null(paths);
    for (size_t i = 0; i < n + noutside; i++) {
        const weir_api_route_desc *r = i < n ? &routes[i] : &outside[i - n];
        char method[16];
        size_t k;
        for (k = 0; r->method[k] && k < sizeof method - 1; k++)
            method[k] = (char)(r->method[k] - 'A' + 'a');
        method[k] = '\0';
        yaml_node_t *path = map_get(&doc, paths, r->pattern);
        cr_assert_not_null(path, "%s is not in docs/openapi.yaml", r->pattern);
        cr_assert_not_null(map_get(&doc, path, method), "%s %s is not in docs/openapi.yaml",
                           r->method, r->pattern);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}
