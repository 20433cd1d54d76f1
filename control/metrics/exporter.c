/*
 * control/metrics/exporter.c — see exporter.h.
 */
#include "control/metrics/exporter.h"

#include <errno.h>
#include <stdlib.h>

#include <libavutil/error.h>

static int metrics_get(weir_http_req *req, void *arg)
{
    weir_exporter *e = arg;
    char *text;
    size_t len;
    int r = weir_metrics_render(e->reg, &text, &len);

    if (r < 0)
        return r;
    weir_http_add_header(req, "cache-control", "no-store");
    r = weir_http_respond(req, 200, WEIR_METRICS_CONTENT_TYPE, text, len);
    free(text);
    return r;
}

static void live_streams(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_metric_emit(m, NULL, (double)weir_bus_count(e->bus));
}

static void bus_skips(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_metric_emit(m, NULL, (double)weir_bus_skips(e->bus));
}

static void pool_connections(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_dbpool_stats st;
    weir_dbpool_stats_get(e->db, &st);
    weir_metric_emit(m, (const char *const[]){ "active", NULL }, st.active);
    weir_metric_emit(m, (const char *const[]){ "idle", NULL }, st.idle);
    weir_metric_emit(m, (const char *const[]){ "pending", NULL }, st.pending);
}

static void pool_waiting(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_dbpool_stats st;
    weir_dbpool_stats_get(e->db, &st);
    weir_metric_emit(m, NULL, st.waiting);
}

static void pool_events(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_dbpool_stats st;
    weir_dbpool_stats_get(e->db, &st);
    weir_metric_emit(m, (const char *const[]){ "acquired", NULL }, (double)st.acquired);
    weir_metric_emit(m, (const char *const[]){ "timeout", NULL }, (double)st.timeouts);
    weir_metric_emit(m, (const char *const[]){ "created", NULL }, (double)st.created);
    weir_metric_emit(m, (const char *const[]){ "closed", NULL }, (double)st.closed);
    weir_metric_emit(m, (const char *const[]){ "validation_failed", NULL },
                     (double)st.validation_failures);
    weir_metric_emit(m, (const char *const[]){ "connect_failed", NULL },
                     (double)st.connect_failures);
    weir_metric_emit(m, (const char *const[]){ "leak", NULL }, (double)st.leaks);
}

static void pool_acquire_seconds(void *arg, weir_metric *m)
{
    weir_exporter *e = arg;
    weir_dbpool_stats st;
    weir_dbpool_stats_get(e->db, &st);
    weir_metric_emit_histogram(m, NULL, st.acquire_us_buckets, (double)st.acquire_us_sum / 1e6);
}

typedef struct callback_def {
    const char *name, *help;
    weir_metric_type type;
    const char *const *labels;
    weir_metric_collect_fn fn;
    int needs_db;
} callback_def;

static const char *const state_label[] = { "state", NULL };
static const char *const event_label[] = { "event", NULL };

static const callback_def callbacks[] = {
    { "weir_live_streams", "Streams being published now", WEIR_METRIC_GAUGE, NULL,
      live_streams, 0 },
    { "weir_bus_skips_total",
      "Times a slow subscriber was skipped forward to the next keyframe",
      WEIR_METRIC_COUNTER, NULL, bus_skips, 0 },
    { "weir_db_pool_connections", "Database connections by state", WEIR_METRIC_GAUGE,
      state_label, pool_connections, 1 },
    { "weir_db_pool_waiting", "Callers waiting for a database connection", WEIR_METRIC_GAUGE,
      NULL, pool_waiting, 1 },
    { "weir_db_pool_events_total",
      "Database pool events: acquired, timeout, created, closed, validation_failed, "
      "connect_failed, leak", WEIR_METRIC_COUNTER, event_label, pool_events, 1 },
};

/* The pool's own acquire-time buckets (dbpool.h), in seconds. */
static double acquire_bounds[WEIR_DBPOOL_ACQ_BUCKETS - 1];

int weir_exporter_init(weir_exporter *e, weir_metrics *reg, weir_http *http, weir_bus *bus,
                       weir_dbpool *db)
{
    weir_metric *start;
    int r;

    e->reg = reg;
    e->bus = bus;
    e->db = db;
    e->nfamilies = 0;
    if ((r = weir_metric_gauge(reg, "process_start_time_seconds",
                               "Start time of the process since the Unix epoch", NULL,
                               &start)) < 0)
        return r;
    weir_gauge_set(weir_metric_with(start, NULL), (double)weir_clock_unix_ms() / 1000.0);
    for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++) {
        const callback_def *d = &callbacks[i];
        if ((d->needs_db && !db) || (!d->needs_db && !bus))
            continue;
        r = weir_metric_callback(reg, d->name, d->help, d->type, d->labels, d->fn, e,
                                 &e->families[e->nfamilies]);
        if (r < 0)
            return r;
        e->nfamilies++;
    }
    if (db) {
        for (int i = 0; i < WEIR_DBPOOL_ACQ_BUCKETS - 1; i++)
            acquire_bounds[i] = (double)weir_dbpool_acq_bucket_us[i] / 1e6;
        r = weir_metric_histogram_callback(reg, "weir_db_pool_acquire_seconds",
                                           "Time callers waited to acquire a database connection",
                                           NULL, acquire_bounds, WEIR_DBPOOL_ACQ_BUCKETS - 1,
                                           pool_acquire_seconds, e, &e->families[e->nfamilies]);
        if (r < 0)
            return r;
        e->nfamilies++;
    }
    return weir_http_route(http, "GET", "/metrics", 0, metrics_get, e);
}

void weir_exporter_fini(weir_exporter *e)
{
    for (int i = 0; i < e->nfamilies; i++)
        weir_metric_unregister(e->families[i]);
    e->nfamilies = 0;
}
