/*
 * app/serve.c — `weir serve`: build the modules, run the loop, shut down.
 *
 *   start:   config -> logging -> data_dir -> loop (+signals) -> work pool ->
 *            database (migrations, first key) -> bus -> transcoder (live when
 *            transcode.enabled; file jobs only when just uploads.transcode) ->
 *            packager -> http -> origin -> control (API, uploads) -> rtmp -> srt
 *   SIGTERM/SIGINT (first):  stop accepting; drain HTTP; deadline timer
 *   drained or deadline:     stop the loop, free everything, exit 0
 *   second signal:           stop the loop at once
 */
#include "app/app.h"
#include "app/vod.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* Threads for blocking work (database, file probing). */
#define SERVE_WORK_THREADS 4

typedef struct server {
    weir_settings settings;
    weir_loop *loop;
    weir_work *work;
    weir_dbpool *db;
    weir_bus *bus;
    weir_metrics *metrics;          /* the process-wide registry */
    weir_metric *rx, *tx;           /* weir_{received,sent}_bytes_total{protocol} */
    weir_metric_child *http_rx, *http_tx, *rtmp_rx, *srt_rx;
    weir_metric *publishers;        /* weir_publishers_connected{protocol} */
    weir_metric_child *rtmp_publishers, *srt_publishers;
    weir_http *http;
    weir_packager *packager;
    weir_origin *origin;
    weir_rtmp_server *rtmp;
    weir_srt_server *srt;
    weir_transcoder *transcoder;    /* NULL unless transcode.enabled or uploads.transcode */
    weir_vod vod;                   /* what uploads become (app/vod.c) */
    weir_control *control;
    weir_timer deadline;
    int stopping;
    char vod_dir[4096];
} server;

int weir_app_make_dirs(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Byte counters shared by every protocol; each module gets its child. */
static int register_io_metrics(server *srv)
{
    static const char *const proto[] = { "protocol", NULL };
    if (weir_metric_counter(srv->metrics, "weir_received_bytes_total",
                            "Bytes received from clients and publishers (HTTP: request bodies)",
                            proto, &srv->rx) < 0 ||
        weir_metric_counter(srv->metrics, "weir_sent_bytes_total",
                            "Bytes sent to clients (HTTP: whole responses)", proto, &srv->tx) < 0)
        return -1;
    srv->http_rx = weir_metric_with(srv->rx, (const char *const[]){ "http", NULL });
    srv->http_tx = weir_metric_with(srv->tx, (const char *const[]){ "http", NULL });
    srv->rtmp_rx = weir_metric_with(srv->rx, (const char *const[]){ "rtmp", NULL });
    srv->srt_rx = weir_metric_with(srv->rx, (const char *const[]){ "srt", NULL });
    if (weir_metric_gauge(srv->metrics, "weir_publishers_connected",
                          "Publishers connected and publishing, by protocol", proto,
                          &srv->publishers) < 0)
        return -1;
    srv->rtmp_publishers = weir_metric_with(srv->publishers, (const char *const[]){ "rtmp", NULL });
    srv->srt_publishers = weir_metric_with(srv->publishers, (const char *const[]){ "srt", NULL });
    weir_gauge_set(srv->rtmp_publishers, 0);
    weir_gauge_set(srv->srt_publishers, 0);
    return 0;
}

/* The transcoder asks, on a job's thread, which profile a stream's key
 * names; transcode and control know nothing of each other. */
static int stream_profile(void *db, const char *stream, char *name, size_t cap)
{
    return weir_keys_profile(db, stream, name, cap);
}

/* Which recordings the retention must leave alone (loop thread). */
static json_t *recordings_in_use(void *packager)
{
    return weir_packager_recordings_in_use(packager);
}

static int cancel_transcode(void *transcoder, uint64_t id)
{
    return weir_transcoder_cancel(transcoder, id);
}

static void on_drained(void *arg)
{
    server *srv = arg;
    weir_log_info("app", "drained");
    weir_timer_stop(&srv->deadline);
    weir_loop_stop(srv->loop);
}

static void on_deadline(weir_timer *t)
{
    server *srv = (server *)((char *)t - offsetof(server, deadline));
    weir_log_warn("app", "shutdown timeout; closing remaining connections",
                  WL_UINT("connections", weir_http_connections(srv->http)));
    weir_loop_stop(srv->loop);
}

static void on_signal(void *arg, int signo)
{
    server *srv = arg;

    if (srv->stopping) {
        weir_log_warn("app", "second signal; stopping now", WL_STR("signal", strsignal(signo)));
        weir_loop_stop(srv->loop);
        return;
    }
    srv->stopping = 1;
    weir_log_info("app", "shutting down", WL_STR("signal", strsignal(signo)),
                  WL_INT("timeout_ms", srv->settings.core.shutdown_timeout));
    weir_loop_stop_accepting(srv->loop);
    weir_timer_start(srv->loop, &srv->deadline, srv->settings.core.shutdown_timeout * 1000,
                     on_deadline);
    weir_http_drain(srv->http, on_drained, srv);
}
/* Descriptors: one per connection (http.max_connections), one per large
 * buffer (core/buf.h memfds), two per cached VOD file.  The soft limit is
 * often 1024 while the hard one is far higher: take the hard one, and say
 * so when it is still below what the settings ask for. */
static void raise_fd_limit(const weir_core_settings *core)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)core->http_max_connections + WEIR_BUF_FILE_MAX_OPEN + 1024;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        weir_log_warn("app", "open file limit below what http.max_connections needs; raise ulimit -n",
                      WL_UINT("limit", (uint64_t)rl.rlim_cur), WL_UINT("wanted", (uint64_t)want));
}


int weir_cmd_serve(const weir_cli *cli)
{
    server srv = { 0 };
    weir_conf *conf = weir_conf_new();
    weir_core_settings *core = &srv.settings.core;
    int rc = 1, r;

    if (!conf || weir_app_load_config(conf, &srv.settings, cli) < 0)
        goto out;
    weir_core_apply_log_settings(core);
    /* A peer hanging up mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    raise_fd_limit(core);
    if ((r = weir_app_make_dirs(core->data_dir)) < 0) {
        weir_log_error("app", "cannot create data_dir", WL_STR("path", core->data_dir),
                       WL_STR("err", strerror(-r)));
        goto out;
    }
    snprintf(srv.vod_dir, sizeof srv.vod_dir, "%s/vod", core->data_dir);
    srv.loop = weir_loop_new(&(weir_loop_opts){ .max_http_header = (int)core->http_max_header });
    if (!srv.loop)
        goto out;
    /* Before any thread exists, so every thread inherits the blocked mask. */
    if (weir_loop_watch_signals(srv.loop, on_signal, &srv) < 0)
        goto out;
    if (!(srv.work = weir_work_new(srv.loop, SERVE_WORK_THREADS, 0)))
        goto out;
    if (weir_control_open_db(&srv.settings.db, core->data_dir, &srv.db) < 0)
        goto out;
    if (srv.settings.ingest.auth == WEIR_INGEST_AUTH_KEYS &&
        weir_control_bootstrap_key(srv.db, (int)srv.settings.ingest.rtmp_port, stdout) < 0)
        goto out;
    if (!(srv.bus = weir_bus_new()))
        goto out;
    srv.metrics = weir_metrics_default();
    if (register_io_metrics(&srv) < 0)
        goto out;
    if (srv.settings.uploads.transcode &&
        !weir_transcode_profile_ladder(&srv.settings.transcode, srv.settings.uploads.profile)) {
        weir_log_error("app", "uploads.profile names no transcode profile",
                       WL_STR("profile", srv.settings.uploads.profile));
        goto out;
    }
    /* Before ingest, so that they see every stream published.  Without live
     * transcoding, uploads still get a transcoder of file jobs, with no bus. */
    if ((srv.settings.transcode.enabled || srv.settings.uploads.transcode) &&
        weir_transcoder_new(&(weir_transcoder_opts){
            .bus = srv.settings.transcode.enabled ? srv.bus : NULL,
            .loop = srv.loop, .settings = &srv.settings.transcode,
            .segment_duration_ms = srv.settings.packager.segment_duration,
            .metrics = srv.metrics,
            .stream_profile = stream_profile, .stream_profile_arg = srv.db,
        }, &srv.transcoder) < 0)
        goto out;
    if (weir_vod_init(&srv.vod, &(weir_vod_opts){
            .transcoder = srv.transcoder, .packager = &srv.settings.packager,
            .uploads = &srv.settings.uploads,
        }) < 0)
        goto out;
    if (weir_packager_new(&(weir_packager_opts){
            .loop = srv.loop, .bus = srv.bus, .settings = &srv.settings.packager,
            .metrics = srv.metrics, .work = srv.work, .data_dir = core->data_dir,
            .abr = srv.settings.transcode.enabled,
        }, &srv.packager) < 0)
        goto out;
    srv.http = weir_http_new(srv.loop, &(weir_http_opts){
        .addr = core->http_addr,
        .port = (int)core->http_port,
        .max_body = core->http_max_body,
        .keepalive_ms = core->http_keepalive,
        .access_log = core->http_access_log,
        .send_timeout_ms = core->http_send_timeout,
        .ws_max_queue = (int)core->http_ws_max_queue,
        .ws_origins = srv.settings.origin.cors_origins,
        .max_connections = core->http_max_connections,
        .rate_limit = core->http_rate_limit,
        .tls_cert = core->http_tls_cert,
        .tls_key = core->http_tls_key,
        .h2 = core->http_h2,
        .h2_max_streams = (int)core->http_h2_max_streams,
        .h2c_port = (int)core->http_h2c_port,
        .metrics = srv.metrics,
        .rx_bytes = srv.http_rx,
        .tx_bytes = srv.http_tx,
    });
    if (!srv.http)
        goto out;
    if (weir_origin_new(&(weir_origin_opts){
            .loop = srv.loop, .http = srv.http, .settings = &srv.settings.origin,
            .live = weir_packager_lookup, .live_arg = srv.packager,
            /* RFC 8216bis 6.2.5.2: three target durations */
            .hold_timeout_ms = 3 * srv.settings.packager.segment_duration,
            .vod_dir = srv.vod_dir, .work = srv.work,
        }, &srv.origin) < 0)
        goto out;
    weir_packager_on_change(srv.packager, weir_origin_changed, srv.origin);
    srv.control = weir_control_new(&(weir_control_opts){
        .http = srv.http, .work = srv.work, .bus = srv.bus, .db = srv.db,
        .metrics = srv.metrics, .vod_dir = srv.vod_dir,
        .loop = srv.loop, .data_dir = core->data_dir, .uploads = &srv.settings.uploads,
        .process = weir_vod_process, .process_arg = &srv.vod,
        /* The API's transcode view is the live one's (file jobs show as
         * the assets' progress). */
        .transcode_status = srv.settings.transcode.enabled ? weir_transcoder_status_json : NULL,
        .transcode_cancel = srv.settings.transcode.enabled ? cancel_transcode : NULL,
        .transcode_arg = srv.transcoder,
        .transcode_profiles = weir_transcode_profile_names,
        .record_max_age = srv.settings.packager.record_max_age,
        .record_max_bytes = srv.settings.packager.record_max_bytes,
        .record_sweep_interval = srv.settings.packager.record_sweep_interval,
        .recordings_in_use = recordings_in_use, .recordings_arg = srv.packager,
    });
    if (!srv.control)
        goto out;
    /* Recordings' asset.json changes go out as the uploads' do. */
    weir_packager_on_asset(srv.packager, weir_control_emit, srv.control);
    if (srv.settings.packager.record && !srv.settings.packager.record_max_age &&
        !srv.settings.packager.record_max_bytes)
        weir_log_info("app", "recordings are kept until deleted: set packager.record_max_age "
                      "or packager.record_max_bytes to bound their disk use");
    if (weir_rtmp_server_new(&(weir_rtmp_opts){
            .loop = srv.loop, .bus = srv.bus, .settings = &srv.settings.ingest,
            .port = (int)srv.settings.ingest.rtmp_port,
            .auth = weir_control_authorize_publish, .auth_ctx = srv.control,
            .publishers = srv.rtmp_publishers, .rx_bytes = srv.rtmp_rx,
        }, &srv.rtmp) < 0)
        goto out;
    if (weir_srt_server_new(&(weir_srt_opts){
            .loop = srv.loop, .bus = srv.bus, .settings = &srv.settings.ingest,
            .port = (int)srv.settings.ingest.srt_port,
            .auth = weir_control_authorize_publish, .auth_ctx = srv.control,
            .passphrase = srv.settings.ingest.srt_passphrase,
            .latency_ms = srv.settings.ingest.srt_latency,
            .max_connections = srv.settings.ingest.srt_max_connections,
            .max_streamid = srv.settings.ingest.srt_max_streamid,
            .idle_timeout_ms = srv.settings.ingest.srt_idle_timeout,
            .pbkeylen = weir_ingest_srt_pbkeylen(&srv.settings.ingest),
            .auth_wait_ms = srv.settings.ingest.srt_auth_wait ? srv.settings.ingest.srt_auth_wait
                                                               : -1,
            .max_bitrate = srv.settings.ingest.srt_max_bitrate,
            .max_bitrate_window_ms = srv.settings.ingest.srt_max_bitrate_window,
            .metrics = srv.metrics, .publishers = srv.srt_publishers, .rx_bytes = srv.srt_rx,
        }, &srv.srt) < 0)
        goto out;

    weir_log_info("app", "started", WL_STR("version", WEIR_VERSION),
                  WL_STR("data_dir", core->data_dir), WL_INT("http_port", core->http_port),
                  WL_STR("ingest_auth", srv.settings.ingest.auth == WEIR_INGEST_AUTH_OPEN
                                        ? "open" : "keys"));
    if (srv.settings.ingest.auth == WEIR_INGEST_AUTH_OPEN)
        weir_log_warn("app", "ingest.auth=open: anyone can publish; use only for development");

    weir_loop_run(srv.loop);
    weir_log_info("app", "stopped");
    rc = 0;
out:
    /* SRT threads first (they post to the loop), then the workers: their
     * completions are posted to the loop, which runs them as it is freed. */
    weir_srt_server_free(srv.srt);
    weir_vod_stop(&srv.vod);            /* file jobs cancelled: their uploads are queued again */
    weir_control_stop(srv.control);     /* uploads: no new work; processing finishes */
    weir_vod_destroy(&srv.vod);
    weir_work_stop(srv.work);
    weir_loop_free(srv.loop);       /* closes every connection */
    weir_work_free(srv.work);       /* after the loop: what it ran as it closed may submit */
    weir_packager_free(srv.packager);   /* after the loop ran what was posted to it */
    weir_origin_free(srv.origin);
    weir_control_free(srv.control);
    weir_rtmp_server_free(srv.rtmp);
    weir_http_free(srv.http);
    weir_transcoder_free(srv.transcoder);   /* jobs end their renditions */
    weir_bus_free(srv.bus);
    weir_dbpool_close(srv.db);
    weir_conf_free(conf);
    return rc;
}
