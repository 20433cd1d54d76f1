/*
 * transcode/transcoder.c — the module's front: a bus watcher that starts a
 * job (transcode/pipeline.c) on a thread of its own for every stream
 * published under a user-facing name, and reaps the jobs that ended.
 *
 *   weir_bus_publish("cam1") --watcher, publisher's thread--> subscribe (no
 *       packet missed), spawn the job thread --> weir_pipeline_run --> ends
 *       with "cam1" --> reaped by the next watcher call, jobs_json or free
 *
 * Locks: t->lock guards the job list.  The watcher takes it on the
 * publisher's thread; nothing holds it while calling a bus function that
 * could call the watcher back (weir_bus_publish happens on job threads,
 * which never take t->lock).
 */
#include "transcode/transcode.h"
#include "transcode/ladder.h"
#include "transcode/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "transcode"
#define HISTORY_MAX 16                  /* ended jobs still listed by jobs_json */

typedef struct job {
    weir_pipeline *p;
    pthread_t thread;
    atomic_int finished;
    struct job *next;
} job;

struct weir_transcoder {
    weir_bus *bus;
    weir_ladder_profile profile;
    int64_t segment_ms;
    int queue_len;
    weir_metric *jobs_metric, *speed_metric, *frames_metric, *errors_metric;

    pthread_mutex_t lock;
    job *jobs;
    json_t *history;                    /* the last HISTORY_MAX reaped jobs, oldest first */
    uint64_t started, reaped_done, reaped_failed;
};

static void *job_main(void *arg)
{
    job *j = arg;
    weir_pipeline_run(j->p);
    atomic_store(&j->finished, 1);
    return NULL;
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
        if (weir_pipeline_get_state(j->p) == WEIR_PIPELINE_FAILED)
            t->reaped_failed++;
        else
            t->reaped_done++;
        json_array_append_new(t->history, weir_pipeline_json(j->p));
        if (json_array_size(t->history) > HISTORY_MAX)
            json_array_remove(t->history, 0);
        *link = j->next;
        weir_pipeline_free(j->p);
        free(j);
    }
}

static void start_job(weir_transcoder *t, weir_stream *s)
{
    weir_pipeline_opts opts = { .bus = t->bus, .source = s, .profile = &t->profile,
                                .segment_ms = t->segment_ms, .queue_len = t->queue_len };
    job *j = calloc(1, sizeof *j);
    int ret = j ? weir_pipeline_new(&opts, &j->p) : AVERROR(ENOMEM);
    if (ret >= 0) {
        ret = -pthread_create(&j->thread, NULL, job_main, j);
        ret = ret ? AVERROR(-ret) : 0;
    }
    if (ret < 0) {
        weir_log_error(MODULE, "cannot start a job", WL_STR("stream", weir_stream_name(s)),
                       WL_ERR(ret));
        if (j)
            weir_pipeline_free(j->p);
        free(j);
        return;
    }
    j->next = t->jobs;
    t->jobs = j;
    t->started++;
}

static void on_bus(void *arg, weir_bus_event ev, weir_stream *s)
{
    weir_transcoder *t = arg;
    if (ev != WEIR_BUS_PUBLISHED || !weir_stream_name_valid(weir_stream_name(s)))
        return;                     /* S/abr and other derived streams are not sources */
    pthread_mutex_lock(&t->lock);
    reap(t);
    start_job(t, s);
    pthread_mutex_unlock(&t->lock);
}

/* weir_transcode_jobs{state}: jobs by state; finished ones as counted when reaped. */
static void collect_jobs(void *arg, weir_metric *m)
{
    weir_transcoder *t = arg;
    double n[WEIR_PIPELINE_CANCELLED + 1] = { 0 };
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next)
        n[weir_pipeline_get_state(j->p)]++;
    n[WEIR_PIPELINE_DONE] += (double)t->reaped_done;
    n[WEIR_PIPELINE_FAILED] += (double)t->reaped_failed;
    pthread_mutex_unlock(&t->lock);
    for (int s = 0; s <= WEIR_PIPELINE_CANCELLED; s++)
        weir_metric_emit(m, (const char *const[]){ weir_pipeline_state_name(s), NULL }, n[s]);
}

/* Per live job, from its JSON (scrape time only):
 *   weir_transcode_speed{stream}                   media seconds per second
 *   weir_transcode_frames_total{stream,rendition}  frames encoded (passthrough: 0)
 *   weir_transcode_decode_errors_total{stream}     packets the decoder rejected */
static void collect_job_series(void *arg, weir_metric *m)
{
    weir_transcoder *t = arg;
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next) {
        weir_pipeline_state st = weir_pipeline_get_state(j->p);
        if (st != WEIR_PIPELINE_RUNNING)
            continue;
        json_t *o = weir_pipeline_json(j->p);
        const char *stream = json_string_value(json_object_get(o, "stream"));
        if (m == t->speed_metric) {
            weir_metric_emit(m, (const char *const[]){ stream, NULL },
                             json_number_value(json_object_get(o, "speed")));
        } else if (m == t->errors_metric) {
            weir_metric_emit(m, (const char *const[]){ stream, NULL },
                             json_number_value(json_object_get(o, "decode_errors")));
        } else {
            json_t *r;
            size_t i;
            json_array_foreach(json_object_get(o, "renditions"), i, r)
                weir_metric_emit(m, (const char *const[]){
                                     stream, json_string_value(json_object_get(r, "name")), NULL },
                                 json_number_value(json_object_get(r, "frames")));
        }
        json_decref(o);
    }
    pthread_mutex_unlock(&t->lock);
}

static int register_metrics(weir_transcoder *t, weir_metrics *reg)
{
    int ret;
    if ((ret = weir_metric_callback(reg, "weir_transcode_jobs",
                                    "transcode jobs by state (done and failed: since start)",
                                    WEIR_METRIC_GAUGE, (const char *const[]){ "state", NULL },
                                    collect_jobs, t, &t->jobs_metric)) < 0 ||
        (ret = weir_metric_callback(reg, "weir_transcode_speed",
                                    "media seconds transcoded per second, per running job",
                                    WEIR_METRIC_GAUGE, (const char *const[]){ "stream", NULL },
                                    collect_job_series, t, &t->speed_metric)) < 0 ||
        (ret = weir_metric_callback(reg, "weir_transcode_frames_total",
                                    "frames encoded per rendition of a running job",
                                    WEIR_METRIC_COUNTER,
                                    (const char *const[]){ "stream", "rendition", NULL },
                                    collect_job_series, t, &t->frames_metric)) < 0 ||
        (ret = weir_metric_callback(reg, "weir_transcode_decode_errors_total",
                                    "source packets the decoder rejected, per running job",
                                    WEIR_METRIC_COUNTER, (const char *const[]){ "stream", NULL },
                                    collect_job_series, t, &t->errors_metric)) < 0)
        return ret;
    return 0;
}

static void unregister_metrics(weir_transcoder *t)
{
    weir_metric_unregister(t->jobs_metric);
    weir_metric_unregister(t->speed_metric);
    weir_metric_unregister(t->frames_metric);
    weir_metric_unregister(t->errors_metric);
}

int weir_transcoder_new(const weir_transcoder_opts *opts, weir_transcoder **out)
{
    const weir_transcode_settings *s = opts->settings;
    char why[256];
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
    const char *name = weir_transcode_profile_names[s->profile];
    if ((ret = weir_ladder_parse(weir_transcode_profile_ladder(s, name), &t->profile, why,
                                 sizeof why)) < 0) {
        weir_log_error(MODULE, "bad ladder", WL_STR("profile", name), WL_STR("reason", why));
        goto fail;
    }
    if (opts->metrics && (ret = register_metrics(t, opts->metrics)) < 0)
        goto fail;
    if ((ret = weir_bus_watch(t->bus, on_bus, t)) < 0)
        goto fail;
    weir_log_info(MODULE, "transcoder started", WL_STR("profile", name),
                  WL_INT("segment_ms", t->segment_ms));
    *out = t;
    return 0;
fail:
    unregister_metrics(t);
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
        json_array_append_new(a, weir_pipeline_json(j->p));
    pthread_mutex_unlock(&t->lock);
    return a;
}

void weir_transcoder_free(weir_transcoder *t)
{
    if (!t)
        return;
    weir_bus_unwatch(t->bus, on_bus, t);        /* no new job after this */
    unregister_metrics(t);
    pthread_mutex_lock(&t->lock);
    for (job *j = t->jobs; j; j = j->next)
        weir_pipeline_stop(j->p);
    for (job *j = t->jobs; j; j = j->next)
        pthread_join(j->thread, NULL);
    while (t->jobs) {
        job *j = t->jobs;
        t->jobs = j->next;
        weir_pipeline_free(j->p);
        free(j);
    }
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_destroy(&t->lock);
    json_decref(t->history);
    free(t);
}
