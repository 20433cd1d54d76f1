/*
 * control/control.c — wires the control plane's pieces to the HTTP server,
 * and the thin public wrappers the CLI and ingest use.
 */
#include "control/control.h"
#include "control/api/api.h"
#include "control/assets/assets.h"
#include "control/assets/retention.h"
#include "control/events/events.h"
#include "control/keys/keys.h"
#include "control/metrics/exporter.h"
#include "control/uploads/uploads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <openssl/crypto.h>

struct weir_control {
    weir_control_opts opts;
    weir_api_health health;
    weir_api *api;
    weir_exporter exporter;
    weir_uploads *uploads;
    weir_events *events;
    weir_retention *retention;
};

/* Between the API's exact routes and its prefix (see weir_api_opts.mount). */
static int mount_uploads(void *arg)
{
    weir_control *control = arg;
    const weir_control_opts *o = &control->opts;

    return weir_uploads_new(&(weir_uploads_opts){
        .loop = o->loop, .http = o->http, .work = o->work, .db = o->db,
        .settings = o->uploads, .data_dir = o->data_dir,
        .process = o->process, .process_arg = o->process_arg, .events = control->events,
    }, &control->uploads);
}

weir_control *weir_control_new(const weir_control_opts *opts)
{
    weir_control *control = calloc(1, sizeof *control);
    const weir_clock *clock = opts->clock ? opts->clock : &weir_clock_system;
    int uploads = opts->http && opts->loop && opts->data_dir && opts->uploads;

    if (!control)
        return NULL;
    control->opts = *opts;
    /* Events before uploads, which emit them. */
    if (opts->http && opts->loop && opts->work &&
        weir_events_new(&(weir_events_opts){ .loop = opts->loop, .http = opts->http,
                                             .work = opts->work, .db = opts->db,
                                             .bus = opts->bus },
                        &control->events) < 0) {
        weir_control_free(control);
        return NULL;
    }
    if (weir_api_health_init(&control->health, opts->http, clock) < 0 ||
        weir_api_new(&(weir_api_opts){ .http = opts->http, .work = opts->work,
                                       .db = opts->db, .bus = opts->bus,
                                       .vod_dir = opts->vod_dir,
                                       .events = control->events,
                                       .transcode_status = opts->transcode_status,
                                       .transcode_cancel = opts->transcode_cancel,
                                       .transcode_arg = opts->transcode_arg,
                                       .transcode_profiles = opts->transcode_profiles,
                                       .mount = uploads ? mount_uploads : NULL,
                                       .mount_arg = control },
                     &control->api) < 0 ||
        weir_exporter_init(&control->exporter, opts->metrics, opts->http, opts->bus,
                           opts->db) < 0) {
        weir_log_error("control", "cannot set up the control plane");
        weir_control_free(control);
        return NULL;
    }
    weir_api_set_uploads(control->api, control->uploads);
    /* Before ingest exists, so no recording of this run can be taken for a
     * leftover; a directory scan, once, before the loop turns. */
    if (opts->vod_dir)
        weir_assets_recover(opts->vod_dir);
    if (opts->loop && opts->work && opts->vod_dir && opts->record_sweep_interval > 0 &&
        weir_retention_new(&(weir_retention_opts){
            .loop = opts->loop, .work = opts->work, .metrics = opts->metrics,
            .events = control->events, .vod_dir = opts->vod_dir,
            .max_age = opts->record_max_age, .max_bytes = opts->record_max_bytes,
            .interval = opts->record_sweep_interval,
            .in_use = opts->recordings_in_use, .in_use_arg = opts->recordings_arg,
        }, &control->retention) < 0) {
        weir_log_error("control", "cannot set up the recordings' retention");
        weir_control_free(control);
        return NULL;
    }
    return control;
}

void weir_control_stop(weir_control *control)
{
    if (!control)
        return;
    weir_retention_stop(control->retention);
    weir_uploads_stop(control->uploads);
    weir_events_stop(control->events);
}

void weir_control_emit(void *control, const char *type, const json_t *data)
{
    weir_control *c = control;
    if (c)
        weir_events_emit(c->events, type, data);
}

void weir_control_free(weir_control *control)
{
    if (!control)
        return;
    weir_retention_free(control->retention);
    weir_exporter_fini(&control->exporter);
    weir_api_free(control->api);
    weir_uploads_free(control->uploads);
    weir_events_free(control->events);
    free(control);
}

int weir_control_open_db(const weir_dbpool_settings *settings, const char *data_dir,
                         weir_dbpool **out)
{
    /* Every module's schema, in version order. */
    weir_db_migration migrations[8];
    size_t n = 0;
    char url[4096];
    int r;

    for (size_t i = 0; i < weir_keys_nmigrations; i++)
        migrations[n++] = weir_keys_migrations[i];
    migrations[n++] = weir_uploads_migration;
    /* Modules' versions interleave (keys 1, 2, 4; uploads 3) and the pool
     * wants them strictly ascending: a few entries, insertion sort. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && migrations[j - 1].version > migrations[j].version; j--) {
            weir_db_migration t = migrations[j];
            migrations[j] = migrations[j - 1];
            migrations[j - 1] = t;
        }

    if (settings->url && *settings->url)
        snprintf(url, sizeof url, "%s", settings->url);
    else
        snprintf(url, sizeof url, "sqlite:%s/weir.db", data_dir);
    r = weir_dbpool_open(&(weir_dbpool_opts){
        .url = url, .settings = settings,
        .migrations = migrations, .nmigrations = n,
    }, out);
    if (r < 0)
        weir_log_error("control", "cannot open the database", WL_ERR(r));
    return r;
}

int weir_control_bootstrap_key(weir_dbpool *db, int rtmp_port, FILE *out)
{
    char key[WEIR_CRED_LEN + 1];
    int64_t n = 0;
    int r;

    if ((r = weir_keys_count_active(db, &n)) < 0 || n > 0)
        return r;
    if ((r = weir_keys_create(db, "live", "created at first start", key)) < 0)
        return r;
    fprintf(out,
            "\n"
            "  weir: no stream keys yet, so here is one for stream \"live\".\n"
            "  It is shown this once; weir keeps only its hash.\n"
            "\n"
            "    OBS > Settings > Stream > Service: Custom\n"
            "      Server:      rtmp://<this host>:%d/live\n"
            "      Stream Key:  %s\n"
            "\n"
            "  Manage keys with `weir keys create|list|revoke`.\n\n",
            rtmp_port, key);
    fflush(out);
    return 0;
}

/* ---- publish authorisation on the work pool --------------------------------- */

typedef struct auth_job {
    weir_control *control;
    char key[128];                  /* secrets: wiped before free */
    char srt_passphrase[WEIR_KEY_SRT_PASSPHRASE_MAX + 1];
    void (*done)(void *arg, int result, const char *stream, const char *srt_passphrase);
    void *arg;
    int result;
    char stream[128];
} auth_job;

static void auth_run(void *arg)
{
    auth_job *j = arg;
    j->result = weir_keys_lookup_publish(j->control->opts.db, j->key, j->stream,
                                         sizeof j->stream, j->srt_passphrase);
}

static void auth_done(void *arg)
{
    auth_job *j = arg;
    j->done(j->arg, j->result, j->result < 0 ? NULL : j->stream,
            j->result < 0 || !j->srt_passphrase[0] ? NULL : j->srt_passphrase);
    OPENSSL_cleanse(j, sizeof *j);
    free(j);
}

int weir_control_authorize_publish(void *ctx, const char *key,
                                   void (*done)(void *arg, int result, const char *stream,
                                                const char *srt_passphrase),
                                   void *arg)
{
    weir_control *control = ctx;
    auth_job *j;
    int r;

    if (!key || strlen(key) >= sizeof j->key)
        return AVERROR(EACCES);
    if (!(j = calloc(1, sizeof *j)))
        return AVERROR(ENOMEM);
    j->control = control;
    memcpy(j->key, key, strlen(key) + 1);
    j->done = done;
    j->arg = arg;
    if ((r = weir_work_submit(control->opts.work, auth_run, auth_done, j)) < 0)
        free(j);
    return r;
}
