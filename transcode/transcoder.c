/*
 * transcode/transcoder.c — the module's front: a bus watcher that starts a
 * live job (transcode/pipeline.c) for every stream published under a
 * user-facing name, the entry point of file jobs, the worker pool every job
 * takes a ticket in (transcode/pool.c), and the jobs' bookkeeping: ids,
 * cancellation, reaping, JSON and metrics.
 *
 *   weir_bus_publish("cam1") --watcher, publisher's thread--> subscribe (no
 *       packet missed), ticket, spawn the job thread --> [stream's profile]
 *       --> weir_pipeline_run (asks the pool once the ladder is decided)
 *       --> ends with "cam1" --> ticket released --> reaped by the next
 *       watcher call, jobs_json, file job or free
 *   weir_transcoder_file --> ticket (file class), spawn the job thread -->
 *       weir_pipeline_run --> ticket released --> sink.done --> reaped
 *
 * A job's life, as the API shows it (the pipeline's states):
 *
 *   waiting -> probing -> running -> done | failed | cancelled
 *                 \-> queued -/         (queued: the pool has no room yet; a
 *                                        preempted file job shows queued too)
 *
 * Locks: t->lock guards the job list.  The watcher takes it on the
 * publisher's thread; nothing holds it while calling a bus function that
 * could call the watcher back (weir_bus_publish happens on job threads,
 * which never take t->lock).  The pool's lock comes after t->lock.
 */
#include "transcode/transcode.h"
#include "transcode/ladder.h"
#include "transcode/pipeline.h"
#include "transcode/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/avstring.h>

#define MODULE "transcode"
#define HISTORY_MAX 16                  /* ended jobs still listed by jobs_json */
#define NPROFILES 3                     /* weir_transcode_profile_names */

typedef struct job {
    uint64_t id;
    weir_pipeline *p;
    weir_pool_ticket *ticket;
    char stream[WEIR_BUS_NAME_MAX + 1]; /* live: the source, for its profile */
    weir_transcode_sink sink;           /* file: for done */
    int file;
    struct weir_transcoder *owner;
    pthread_t thread;
    atomic_int finished;
    struct job *next;
} job;

struct weir_transcoder {
    weir_bus *bus;                      /* NULL: file jobs only */
    weir_ladder_profile profiles[NPROFILES];
    int profile;                        /* the default: transcode.profile */
    int64_t segment_ms;
    int queue_len;
    int (*stream_profile)(void *arg, const char *stream, char *name, size_t cap);
    void *stream_profile_arg;
    weir_pool *pool;
    weir_metric *jobs_metric, *speed_metric, *frames_metric, *errors_metric, *fps_metric,
                *progress_metric, *workers_metric, *pool_metric;

    pthread_mutex_t lock;
    job *jobs;
    json_t *history;                    /* the last HISTORY_MAX reaped jobs, oldest first */
    uint64_t next_id;
    uint64_t reaped[WEIR_PIPELINE_NSTATES];
};

static int profile_index(const char *name)
{
    for (int i = 0; weir_transcode_profile_names[i]; i++)
        if (strcmp(weir_transcode_profile_names[i], name) == 0)
            return i;
    return -1;
}

/* A live job's profile: its stream's choice, else the default. */
static void choose_profile(weir_transcoder *t, job *j)
{
    char name[32] = "";
    int i = -1;
    if (t->stream_profile && t->stream_profile(t->stream_profile_arg, j->stream, name,
                                               sizeof name) >= 0 && name[0]) {
        if ((i = profile_index(name)) < 0)
            weir_log_warn(MODULE, "unknown profile for the stream; using the default",
                          WL_STR("stream", j->stream), WL_STR("profile", name));
    }
    if (i < 0)
        i = t->profile;
    weir_pipeline_set_profile(j->p, &t->profiles[i], weir_transcode_profile_names[i]);
}

static void *job_main(void *arg)
{
    job *j = arg;
    if (!j->file)
        choose_profile(j->owner, j);
    int ret = weir_pipeline_run(j->p);
    weir_pool_release(j->ticket);       /* the next job may start now */
    if (j->file && j->sink.done)
        j->sink.done(j->sink.arg, ret);
    atomic_store(&j->finished, 1);
    return NULL;
}

static json_t *job_json(const job *j)
{
    json_t *o = weir_pipeline_json(j->p);
    if (o)
        json_object_set_new(o, "id", json_integer((json_int_t)j->id));
    return o;
}

static void job_free(job *j)
{
    weir_pipeline_free(j->p);
    weir_pool_leave(j->ticket);
    free(j);
}

/* Joins and frees the jobs that ended.  t->lock held. */
static void reap(weir_transcoder *t)
{
    for (job **link = &t->jobs; *link;) {
        job *j = *link;
        if (!atomic_load(&j->finished)) {
            link = &j->next;
            continue;
        }
        pthread_join(j->thread, NULL);
        t->reaped[weir_pipeline_get_state(j->p)]++;
        json_array_append_new(t->history, job_json(j));
        if (json_array_size(t->history) > HISTORY_MAX)
            json_array_remove(t->history, 0);
        *link = j->next;
        job_free(j);
    }
}

/* Makes a job of opts (its pipeline subscribes now, for a live one) and
 * starts its thread.  t->lock held. */
static int start_job(weir_transcoder *t, weir_pipeline_opts *opts, const weir_transcode_sink *sink,
                     uint64_t *id)
{
    job *j = calloc(1, sizeof *j);
    int ret = j ? 0 : AVERROR(ENOMEM);
    if (ret >= 0)
        ret = weir_pool_join(t->pool, opts->input ? WEIR_POOL_FILE : WEIR_POOL_LIVE,
                             &j->ticket);
    if (ret >= 0) {
        opts->ticket = j->ticket;
        ret = weir_pipeline_new(opts, &j->p);
    }
    if (ret >= 0) {
        j->id = ++t->next_id;
        j->owner = t;
        j->file = opts->input != NULL;
        if (sink)
            j->sink = *sink;
        if (opts->source)
            av_strlcpy(j->stream, weir_stream_name(opts->source), sizeof j->stream);
        ret = -pthread_create(&j->thread, NULL, job_main, j);
        ret = ret ? AVERROR(-ret) : 0;
    }
    if (ret < 0) {
        if (j) {
            weir_pipeline_free(j->p);
            weir_pool_leave(j->ticket);
        }
        free(j);
        return ret;
    }
    j->next = t->jobs;
    t->jobs = j;
    if (id)
        *id = j->id;
    return 0;
}

static void on_bus(void *arg, weir_bus_event ev, weir_stream *s)
{
    weir_transcoder *t = arg;
    if (ev != WEIR_BUS_PUBLISHED || !weir_stream_name_valid(weir_stream_name(s)))
        return;                     /* S/abr and other derived streams are not sources */
    weir_pipeline_opts opts = { .bus = t->bus, .source = s, .profile = &t->profiles[t->profile],
                                .segment_ms = t->segment_ms, .queue_len = t->queue_len };
    pthread_mutex_lock(&t->lock);
    reap(t);
    int ret = start_job(t, &opts, NULL, NULL);
    pthread_mutex_unlock(&t->lock);
    if (ret < 0)
        weir_log_error(MODULE, "cannot start a job", WL_STR("stream", weir_stream_name(s)),
                       WL_ERR(ret));
}

int weir_transcoder_file(weir_transcoder *t, const weir_transcode_file_opts *o, uint64_t *id)
{
    int i = o->profile ? profile_index(o->profile) : t->profile;
    if (!o->input || !o->sink.track || !o->sink.packet || i < 0)
        return AVERROR(EINVAL);
    const char *base = strrchr(o->input, '/');
    weir_pipeline_opts opts = {
        .input = o->input, .name = o->name ? o->name : base ? base + 1 : o->input,
        .sink = &o->sink, .profile = &t->profiles[i],
        .profile_name = weir_transcode_profile_names[i],
        .segment_ms = o->segment_duration_ms > 0 ? o->segment_duration_ms : t->segment_ms,
    };
    uint64_t got;
    pthread_mutex_lock(&t->lock);
    reap(t);
    int ret = start_job(t, &opts, &o->sink, &got);
    pthread_mutex_unlock(&t->lock);
    if (ret < 0)
        return ret;
    weir_log_info(MODULE, "file job queued", WL_UINT("id", got), WL_STR("path", o->input),
                  WL_STR("profile", weir_transcode_profile_names[i]));
    if (id)
        *id = got;
    return 0;
}

int weir_transcoder_cancel(weir_transcoder *t, uint64_t id)
{
    int ret = AVERROR(ENOENT);
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next)
        if (j->id == id && !atomic_load(&j->finished)) {
            weir_pipeline_stop(j->p);
            ret = 0;
        }
    pthread_mutex_unlock(&t->lock);
    if (ret >= 0)
        weir_log_info(MODULE, "job cancelled", WL_UINT("id", id));
    return ret;
}

/* ---- metrics ------------------------------------------------------------------ */

/* weir_transcode_jobs{state}: jobs by state; finished ones as counted when reaped. */
static void collect_jobs(void *arg, weir_metric *m)
{
    weir_transcoder *t = arg;
    double n[WEIR_PIPELINE_NSTATES] = { 0 };
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next)
        n[weir_pipeline_get_state(j->p)]++;
    for (int s = 0; s < WEIR_PIPELINE_NSTATES; s++)
        n[s] += (double)t->reaped[s];
    pthread_mutex_unlock(&t->lock);
    for (int s = 0; s < WEIR_PIPELINE_NSTATES; s++)
        weir_metric_emit(m, (const char *const[]){ weir_pipeline_state_name(s), NULL }, n[s]);
}

static void emit_renditions(weir_transcoder *t, weir_metric *m, const char *stream, json_t *o)
{
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(o, "renditions"), i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *key = m == t->fps_metric ? "fps" : "frames";
        weir_metric_emit(m, (const char *const[]){ stream, name, NULL },
                         json_number_value(json_object_get(r, key)));
    }
}

/* Per running job, from its JSON (scrape time only):
 *   weir_transcode_speed{stream}                   media seconds per second
 *   weir_transcode_frames_total{stream,rendition}  frames encoded (passthrough: 0)
 *   weir_transcode_fps{stream,rendition}           frames encoded per second
 *   weir_transcode_decode_errors_total{stream}     packets the decoder rejected
 *   weir_transcode_progress_percent{stream}        file jobs: percent read
 * A file job's "stream" is its name. */
static void collect_job_series(void *arg, weir_metric *m)
{
    weir_transcoder *t = arg;
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next) {
        weir_pipeline_state st = weir_pipeline_get_state(j->p);
        if (st != WEIR_PIPELINE_RUNNING && !(m == t->progress_metric && j->file))
            continue;
        json_t *o = weir_pipeline_json(j->p);
        const char *stream = json_string_value(json_object_get(o, "stream"));
        const char *key = m == t->speed_metric ? "speed"
                        : m == t->errors_metric ? "decode_errors"
                        : m == t->progress_metric ? "progress" : NULL;
        if (key && (m != t->progress_metric || j->file))
            weir_metric_emit(m, (const char *const[]){ stream, NULL },
                             json_number_value(json_object_get(o, key)));
        else if (!key)
            emit_renditions(t, m, stream, o);
        json_decref(o);
    }
    pthread_mutex_unlock(&t->lock);
}

/* weir_transcode_workers{kind="capacity"|"used"} and the pool's counters. */
static void collect_pool(void *arg, weir_metric *m)
{
    weir_transcoder *t = arg;
    weir_pool_stats st;
    weir_pool_stats_get(t->pool, &st);
    if (m == t->workers_metric) {
        weir_metric_emit(m, (const char *const[]){ "capacity", NULL }, st.capacity);
        weir_metric_emit(m, (const char *const[]){ "used", NULL }, st.used);
        return;
    }
    weir_metric_emit(m, (const char *const[]){ "degraded", NULL }, (double)st.degraded);
    weir_metric_emit(m, (const char *const[]){ "queued", NULL }, (double)st.queued);
    weir_metric_emit(m, (const char *const[]){ "preempted", NULL }, (double)st.preempted);
}

typedef struct metric_def {
    const char *name, *help;
    weir_metric_type type;
    const char *const *labels;
    weir_metric_collect_fn fn;
    size_t offset;                      /* of the weir_metric * in weir_transcoder */
} metric_def;

static const char *const L_STATE[] = { "state", NULL };
static const char *const L_STREAM[] = { "stream", NULL };
static const char *const L_RENDITION[] = { "stream", "rendition", NULL };
static const char *const L_KIND[] = { "kind", NULL };
static const char *const L_EVENT[] = { "event", NULL };
#define OFF(field) offsetof(weir_transcoder, field)

static const metric_def metric_defs[] = {
    { "weir_transcode_jobs", "transcode jobs by state (done, failed, cancelled: since start)",
      WEIR_METRIC_GAUGE, L_STATE, collect_jobs, OFF(jobs_metric) },
    { "weir_transcode_speed", "media seconds transcoded per second, per running job",
      WEIR_METRIC_GAUGE, L_STREAM, collect_job_series, OFF(speed_metric) },
    { "weir_transcode_frames_total", "frames encoded per rendition of a running job",
      WEIR_METRIC_COUNTER, L_RENDITION, collect_job_series, OFF(frames_metric) },
    { "weir_transcode_fps", "frames encoded per second per rendition of a running job",
      WEIR_METRIC_GAUGE, L_RENDITION, collect_job_series, OFF(fps_metric) },
    { "weir_transcode_decode_errors_total",
      "source packets the decoder rejected, per running job", WEIR_METRIC_COUNTER, L_STREAM,
      collect_job_series, OFF(errors_metric) },
    { "weir_transcode_progress_percent", "percent of its file a file job has read",
      WEIR_METRIC_GAUGE, L_STREAM, collect_job_series, OFF(progress_metric) },
    { "weir_transcode_workers",
      "the pool's capacity and what admitted jobs reserve, in workers (one core in real time)",
      WEIR_METRIC_GAUGE, L_KIND, collect_pool, OFF(workers_metric) },
    { "weir_transcode_admissions_total",
      "live jobs degraded or queued for lack of capacity, file jobs preempted by live ones",
      WEIR_METRIC_COUNTER, L_EVENT, collect_pool, OFF(pool_metric) },
};
#define NMETRICS (sizeof metric_defs / sizeof metric_defs[0])

static weir_metric **metric_slot(weir_transcoder *t, size_t i)
{
    return (weir_metric **)((char *)t + metric_defs[i].offset);
}

static int register_metrics(weir_transcoder *t, weir_metrics *reg)
{
    for (size_t i = 0; i < NMETRICS; i++) {
        const metric_def *d = &metric_defs[i];
        int ret = weir_metric_callback(reg, d->name, d->help, d->type, d->labels, d->fn, t,
                                       metric_slot(t, i));
        if (ret < 0)
            return ret;
    }
    return 0;
}

static void unregister_metrics(weir_transcoder *t)
{
    for (size_t i = 0; i < NMETRICS; i++) {
        weir_metric_unregister(*metric_slot(t, i));
        *metric_slot(t, i) = NULL;
    }
}

/* ---- the transcoder ----------------------------------------------------------------- */

static int parse_profiles(weir_transcoder *t, const weir_transcode_settings *s)
{
    char why[256];
    for (int i = 0; i < NPROFILES; i++) {
        const char *name = weir_transcode_profile_names[i];
        const char *text = weir_transcode_profile_ladder(s, name);
        int ret;
        if (!text) {                    /* a settings struct filled by hand (tests) */
            t->profiles[i] = t->profiles[0];
            continue;
        }
        if ((ret = weir_ladder_parse(text, &t->profiles[i], why, sizeof why)) < 0) {
            weir_log_error(MODULE, "bad ladder", WL_STR("profile", name), WL_STR("reason", why));
            return ret;
        }
    }
    return 0;
}

int weir_transcoder_new(const weir_transcoder_opts *opts, weir_transcoder **out)
{
    const weir_transcode_settings *s = opts->settings;
    int ret;

    weir_transcoder *t = calloc(1, sizeof *t);
    if (!t)
        return AVERROR(ENOMEM);
    pthread_mutex_init(&t->lock, NULL);
    if (!(t->history = json_array())) {
        ret = AVERROR(ENOMEM);
        goto fail;
    }
    t->bus = opts->bus;
    t->segment_ms = opts->segment_duration_ms;
    t->queue_len = opts->queue_len;
    t->stream_profile = opts->stream_profile;
    t->stream_profile_arg = opts->stream_profile_arg;
    t->profile = s->profile >= 0 && s->profile < NPROFILES ? s->profile : 0;
    if ((ret = parse_profiles(t, s)) < 0)
        goto fail;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double workers = s->workers > 0 ? (double)s->workers : cores > 0 ? (double)cores : 1.0;
    if ((ret = weir_pool_new(workers, s->worker_rate * 1e6,
                             s->overload == 1 ? WEIR_POOL_QUEUE : WEIR_POOL_DEGRADE,
                             &t->pool)) < 0)
        goto fail;
    if (opts->metrics && (ret = register_metrics(t, opts->metrics)) < 0)
        goto fail;
    if (t->bus && (ret = weir_bus_watch(t->bus, on_bus, t)) < 0)
        goto fail;
    weir_pool_stats st;
    weir_pool_stats_get(t->pool, &st);
    weir_log_info(MODULE, "transcoder started",
                  WL_STR("profile", weir_transcode_profile_names[t->profile]),
                  WL_INT("segment_ms", t->segment_ms), WL_DOUBLE("workers", st.capacity),
                  WL_DOUBLE("worker_mpx", st.rate / 1e6),
                  WL_STR("overload", weir_pool_overload_name(st.overload)));
    *out = t;
    return 0;
fail:
    unregister_metrics(t);
    weir_pool_free(t->pool);
    json_decref(t->history);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return ret;
}

json_t *weir_transcoder_jobs_json(weir_transcoder *t)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    pthread_mutex_lock(&t->lock);
    reap(t);
    json_array_extend(a, t->history);
    for (job *j = t->jobs; j; j = j->next)
        json_array_append_new(a, job_json(j));
    pthread_mutex_unlock(&t->lock);
    return a;
}

json_t *weir_transcoder_status_json(void *arg)
{
    weir_transcoder *t = arg;
    json_t *jobs = weir_transcoder_jobs_json(t);
    json_t *pool = weir_pool_json(t->pool);
    if (!jobs || !pool) {
        json_decref(jobs);
        json_decref(pool);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "pool", pool, "jobs", jobs);
}

void weir_transcoder_free(weir_transcoder *t)
{
    if (!t)
        return;
    if (t->bus)
        weir_bus_unwatch(t->bus, on_bus, t);    /* no new job after this */
    unregister_metrics(t);
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next)
        weir_pipeline_stop(j->p);
    for (job *j = t->jobs; j; j = j->next)
        pthread_join(j->thread, NULL);
    while (t->jobs) {
        job *j = t->jobs;
        t->jobs = j->next;
        job_free(j);
    }
    pthread_mutex_unlock(&t->lock);
    weir_pool_free(t->pool);
    pthread_mutex_destroy(&t->lock);
    json_decref(t->history);
    free(t);
}
