/*
 * control/assets/retention.c — see retention.h for the design.
 */
#include "control/assets/retention.h"
#include "control/assets/assets.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/error.h>

#define RET_PATH_MAX 4096

struct weir_retention {
    weir_retention_opts o;
    char *vod_dir;
    weir_timer timer;
    int stopped;                    /* loop thread */
    atomic_bool stopping;           /* read by a sweep on the pool: leave off early */
    int in_flight;                  /* loop thread: a sweep is on the work pool */
    weir_metric *expired;           /* weir_recordings_expired_total{reason} */
    weir_metric_child *expired_age, *expired_bytes;
    weir_metric *bytes;             /* weir_recordings_bytes */
    weir_metric_child *bytes_child;
};

/* ---- selection (pure) ------------------------------------------------------ */

const char *weir_retention_reason_name(weir_retention_reason r)
{
    switch (r) {
    case WEIR_RETENTION_AGE: return "age";
    case WEIR_RETENTION_BYTES: return "bytes";
    default: return "keep";
    }
}

static int oldest_first(const void *a, const void *b)
{
    const weir_retention_item *x = a, *y = b;
    if (x->ended_unix_ms != y->ended_unix_ms)
        return x->ended_unix_ms < y->ended_unix_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

size_t weir_retention_select(weir_retention_item *items, size_t n, int64_t now_unix_ms,
                             int64_t max_age, int64_t max_bytes, int64_t *kept_bytes)
{
    int64_t total = 0;
    size_t chosen = 0;

    if (n > 1)
        qsort(items, n, sizeof *items, oldest_first);
    for (size_t i = 0; i < n; i++) {
        items[i].reason = WEIR_RETENTION_KEEP;
        if (!items[i].busy && max_age > 0 && now_unix_ms - items[i].ended_unix_ms > max_age) {
            items[i].reason = WEIR_RETENTION_AGE;
            chosen++;
        } else {
            total += items[i].bytes;    /* busy ones count: they are on the disk too */
        }
    }
    for (size_t i = 0; i < n && max_bytes > 0 && total > max_bytes; i++) {
        if (items[i].busy || items[i].reason != WEIR_RETENTION_KEEP)
            continue;
        items[i].reason = WEIR_RETENTION_BYTES;
        total -= items[i].bytes;
        chosen++;
    }
    if (kept_bytes)
        *kept_bytes = total;
    return chosen;
}

/* ---- the scan (blocking) ----------------------------------------------------- */

/* Bytes of the plain files in dir (not following links); one level of
 * subfolder (the ts/ variant) is added in. */
static int64_t folder_bytes(const char *dir, int depth)
{
    char path[RET_PATH_MAX + 512];
    int64_t sum = 0;
    struct dirent *d;
    struct stat st;
    DIR *dp = opendir(dir);

    if (!dp)
        return 0;
    while ((d = readdir(dp))) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISREG(st.st_mode))
            sum += st.st_size;
        else if (S_ISDIR(st.st_mode) && depth == 0)
            sum += folder_bytes(path, 1);
    }
    closedir(dp);
    return sum;
}

static int id_in(const json_t *ids, const char *id)
{
    size_t i;
    json_t *v;

    json_array_foreach(ids, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
            return 1;
    return 0;
}

/* The recordings in vod_dir.  *out malloc'd (NULL when *n is 0).
 * AVERROR_EXIT when *stop turned true meanwhile. */
static int scan(const char *vod_dir, const json_t *in_use, const atomic_bool *stop,
                weir_retention_item **out, size_t *n)
{
    char path[RET_PATH_MAX + 256];
    weir_retention_item *items = NULL;
    size_t cap = 0, cnt = 0;
    struct dirent *d;
    DIR *dp = opendir(vod_dir);

    *out = NULL;
    *n = 0;
    if (!dp)
        return errno == ENOENT ? 0 : AVERROR(errno);
    while ((d = readdir(dp))) {
        json_t *a;
        const char *source, *state;
        struct stat st;

        if (atomic_load(stop)) {
            free(items);
            closedir(dp);
            return AVERROR_EXIT;
        }
        if (!weir_asset_id_valid(d->d_name) || strlen(d->d_name) >= sizeof items->id)
            continue;
        if (weir_assets_get(vod_dir, d->d_name, &a) < 0)
            continue;
        source = json_string_value(json_object_get(a, "source"));
        state = json_string_value(json_object_get(a, "state"));
        snprintf(path, sizeof path, "%s/%s/asset.json", vod_dir, d->d_name);
        if (!source || strcmp(source, "live") != 0 || stat(path, &st) < 0) {
            json_decref(a);
            continue;
        }
        if (cnt == cap) {
            size_t c = cap ? cap * 2 : 32;
            weir_retention_item *grown = realloc(items, c * sizeof *grown);
            if (!grown) {
                json_decref(a);
                free(items);
                closedir(dp);
                return AVERROR(ENOMEM);
            }
            items = grown;
            cap = c;
        }
        weir_retention_item *it = &items[cnt++];
        memset(it, 0, sizeof *it);
        snprintf(it->id, sizeof it->id, "%s", d->d_name);
        it->ended_unix_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        snprintf(path, sizeof path, "%s/%s", vod_dir, d->d_name);
        it->bytes = folder_bytes(path, 0);
        it->busy = (state && strcmp(state, "recording") == 0) || (in_use && id_in(in_use, it->id));
        json_decref(a);
    }
    closedir(dp);
    *out = items;
    *n = cnt;
    return 0;
}

void weir_retention_sweep(weir_retention *r, const json_t *in_use)
{
    weir_retention_item *items;
    int64_t now = weir_clock_unix_ms(), on_disk = 0, t0 = weir_clock_mono_us();
    size_t n, gone = 0;
    int e;

    if ((e = scan(r->vod_dir, in_use, &r->stopping, &items, &n)) == AVERROR_EXIT)
        return;
    if (e < 0) {
        weir_log_error("retention", "cannot scan the recordings", WL_STR("path", r->vod_dir),
                       WL_ERR(e));
        return;
    }
    weir_retention_select(items, n, now, r->o.max_age, r->o.max_bytes, NULL);
    for (size_t i = 0; i < n; i++)
        on_disk += items[i].bytes;
    weir_gauge_set(r->bytes_child, (double)on_disk);
    for (size_t i = 0; i < n; i++) {
        weir_retention_item *it = &items[i];
        if (it->reason == WEIR_RETENTION_KEEP)
            continue;
        /* Deleting a large recording's thousands of files takes a while:
         * a shutdown does not wait for the rest (the next start goes on). */
        if (atomic_load(&r->stopping))
            break;
        e = weir_assets_remove(r->vod_dir, it->id, NULL, r->o.events);
        if (e < 0) {
            /* Taken back meanwhile (written again, say); deleted by the API
             * meanwhile (ENOENT), it is off the disk all the same. */
            if (e == AVERROR(ENOENT))
                weir_gauge_set(r->bytes_child, (double)(on_disk -= it->bytes));
            weir_log_warn("retention", "recording not expired", WL_STR("asset", it->id),
                          WL_ERR(e));
            continue;
        }
        weir_log_info("retention", "recording expired", WL_STR("asset", it->id),
                      WL_INT("age_s", (now - it->ended_unix_ms) / 1000),
                      WL_INT("bytes", it->bytes),
                      WL_STR("reason", weir_retention_reason_name(it->reason)));
        weir_counter_inc(it->reason == WEIR_RETENTION_AGE ? r->expired_age : r->expired_bytes);
        weir_gauge_set(r->bytes_child, (double)(on_disk -= it->bytes));
        gone++;
    }
    /* A sweep stats every file of every recording: its cost, for whoever
     * picks the interval on a large data_dir. */
    weir_log_debug("retention", "swept", WL_UINT("recordings", n), WL_UINT("expired", gone),
                   WL_INT("bytes", on_disk), WL_INT("took_ms", (weir_clock_mono_us() - t0) / 1000));
    free(items);
}

/* ---- the timer and the pool ---------------------------------------------------- */

typedef struct sweep_job {
    weir_retention *r;
    json_t *in_use;
} sweep_job;

static void arm(weir_retention *r);

static void sweep_run(void *arg)            /* work */
{
    sweep_job *j = arg;
    weir_retention_sweep(j->r, j->in_use);
}

static void sweep_done(void *arg)           /* loop */
{
    sweep_job *j = arg;
    weir_retention *r = j->r;

    json_decref(j->in_use);
    free(j);
    r->in_flight = 0;
    arm(r);
}

static void on_timer(weir_timer *t)
{
    weir_retention *r = (weir_retention *)((char *)t - offsetof(weir_retention, timer));
    sweep_job *j;

    if (r->stopped || r->in_flight)
        return;
    if (!(j = calloc(1, sizeof *j))) {
        arm(r);
        return;
    }
    j->r = r;
    /* Asked here, on the loop, where the packager's state lives; the
     * answer travels with the job. */
    if (r->o.in_use && !(j->in_use = r->o.in_use(r->o.in_use_arg))) {
        /* Without the list nothing is known safe to delete: skip this one. */
        free(j);
        arm(r);
        return;
    }
    if (weir_work_submit(r->o.work, sweep_run, sweep_done, j) < 0) {
        json_decref(j->in_use);
        free(j);
        arm(r);
        return;
    }
    r->in_flight = 1;
}

static void arm(weir_retention *r)
{
    if (!r->stopped)
        weir_timer_start(r->o.loop, &r->timer, r->o.interval * 1000, on_timer);
}

int weir_retention_new(const weir_retention_opts *opts, weir_retention **out)
{
    static const char *const reason[] = { "reason", NULL };
    weir_retention *r = calloc(1, sizeof *r);
    int e;

    if (!r)
        return AVERROR(ENOMEM);
    r->o = *opts;
    if (!(r->vod_dir = strdup(opts->vod_dir))) {
        free(r);
        return AVERROR(ENOMEM);
    }
    if (opts->metrics) {
        if ((e = weir_metric_counter(opts->metrics, "weir_recordings_expired_total",
                                     "Recordings deleted by retention, by the limit that "
                                     "removed them (packager.record_max_age: age, "
                                     "packager.record_max_bytes: bytes)",
                                     reason, &r->expired)) < 0 ||
            (e = weir_metric_gauge(opts->metrics, "weir_recordings_bytes",
                                   "Bytes of recordings in data_dir/vod/ at the last sweep",
                                   NULL, &r->bytes)) < 0) {
            weir_retention_free(r);
            return e;
        }
        r->expired_age = weir_metric_with(r->expired, (const char *const[]){ "age", NULL });
        r->expired_bytes = weir_metric_with(r->expired, (const char *const[]){ "bytes", NULL });
        r->bytes_child = weir_metric_with(r->bytes, NULL);
    }
    /* The first sweep soon after start, so weir_recordings_bytes is true
     * from the first minute on; then every interval. */
    if (opts->loop && opts->work)
        weir_timer_start(opts->loop, &r->timer,
                         (opts->interval < 1000 ? opts->interval : 1000) * 1000, on_timer);
    *out = r;
    return 0;
}

void weir_retention_stop(weir_retention *r)
{
    if (!r)
        return;
    r->stopped = 1;
    atomic_store(&r->stopping, true);
    if (r->o.loop)
        weir_timer_stop(&r->timer);
}

void weir_retention_free(weir_retention *r)
{
    if (!r)
        return;
    weir_metric_unregister(r->expired);
    weir_metric_unregister(r->bytes);
    free(r->vod_dir);
    free(r);
}
