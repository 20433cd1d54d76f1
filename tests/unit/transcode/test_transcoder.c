/*
 * Unit tests for transcode/transcoder: file jobs (a tiny clip made by the
 * ffmpeg CLI, transcoded at full speed into a sink: aligned keyframes,
 * progress, MPEG-TS input, a corrupt file, cancellation) and the worker
 * pool seen through real jobs (a live stream degraded or queued when the
 * workers are full, a file job yielding to a live one).  The pool's
 * capacity is made small with transcode.worker_rate so that 320x180 clips
 * fill it.
 */
#include <criterion/criterion.h>

#include "transcode/transcode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/time.h>

#define MS ((AVRational){ 1, 1000 })
#define MAX_PKTS 4096
#define MAX_TRACKS 8

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/weir-tt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* A 320x180 H.264 + AAC clip at `path` with keyframes at `keys`
 * (-force_key_frames), B-frames and no other keyframe. */
static void make_clip(const char *path, const char *keys, double seconds)
{
    char cmd[1024];
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0)
        cr_skip_test("the ffmpeg CLI is not installed");
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x180:rate=30 "
             "-f lavfi -i sine=frequency=440:sample_rate=44100 -t %.2f "
             "-c:v libx264 -preset veryfast -bf 2 -pix_fmt yuv420p "
             "-x264-params keyint=1000:min-keyint=1000:scenecut=0 -force_key_frames %s "
             "-c:a aac -b:a 96k -ac 2 %s",
             seconds, keys, path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The clip's video keyframes (pts, stream time base), in pts order. */
static int clip_keys(const char *path, int64_t *keys, AVRational *tb)
{
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    int n = 0;
    cr_assert_eq(avformat_open_input(&fmt, path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    *tb = fmt->streams[v]->time_base;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == v && (pkt->flags & AV_PKT_FLAG_KEY))
            keys[n++] = pkt->pts;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return n;
}

/* ---- a sink that keeps everything ---------------------------------------------------- */

typedef struct sink_log {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    AVCodecParameters *par[MAX_TRACKS];
    AVRational tb[MAX_TRACKS];
    int ntracks;
    AVPacket *pkts[MAX_PKTS];
    int n;
    int progress[128];
    int nprogress;
    int done, result;
    int hold_at;                        /* > 0: progress blocks at this percent until go */
    int held, go;
    int refuse_after;                   /* > 0: packet fails after this many */
} sink_log;

static void sink_init(sink_log *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
}

static void sink_fini(sink_log *s)
{
    for (int i = 0; i < s->ntracks; i++)
        avcodec_parameters_free(&s->par[i]);
    for (int i = 0; i < s->n; i++)
        av_packet_free(&s->pkts[i]);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

static int on_track(void *arg, int index, const AVCodecParameters *par, AVRational tb)
{
    sink_log *s = arg;
    pthread_mutex_lock(&s->lock);
    cr_assert_eq(index, s->ntracks);
    cr_assert_eq(s->n, 0, "every track comes before the first packet");
    s->par[index] = avcodec_parameters_alloc();
    avcodec_parameters_copy(s->par[index], par);
    s->tb[index] = tb;
    s->ntracks++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int on_packet(void *arg, const AVPacket *pkt)
{
    sink_log *s = arg;
    pthread_mutex_lock(&s->lock);
    int ret = 0;
    if (s->refuse_after > 0 && s->n >= s->refuse_after)
        ret = AVERROR(ENOSPC);
    else if (s->n < MAX_PKTS)
        s->pkts[s->n++] = av_packet_clone(pkt);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static void on_progress(void *arg, int percent)
{
    sink_log *s = arg;
    pthread_mutex_lock(&s->lock);
    if (s->nprogress < 128)
        s->progress[s->nprogress++] = percent;
    if (s->hold_at > 0 && percent >= s->hold_at && !s->held) {
        s->held = 1;
        pthread_cond_broadcast(&s->cond);
        while (!s->go)
            pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

static void on_done(void *arg, int result)
{
    sink_log *s = arg;
    pthread_mutex_lock(&s->lock);
    s->done = 1;
    s->result = result;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static weir_transcode_sink sink_of(sink_log *s)
{
    return (weir_transcode_sink){ .track = on_track, .packet = on_packet,
                                  .progress = on_progress, .done = on_done, .arg = s };
}

/* Waits (20 s at most) for done; returns the result. */
static int wait_done(sink_log *s)
{
    int64_t deadline = av_gettime_relative() + 20000000;
    pthread_mutex_lock(&s->lock);
    while (!s->done && av_gettime_relative() < deadline) {
        pthread_mutex_unlock(&s->lock);
        av_usleep(5000);
        pthread_mutex_lock(&s->lock);
    }
    cr_assert(s->done, "the file job did not end in time");
    int r = s->result;
    pthread_mutex_unlock(&s->lock);
    return r;
}

static void wait_held(sink_log *s)
{
    pthread_mutex_lock(&s->lock);
    while (!s->held && !s->done)
        pthread_cond_wait(&s->cond, &s->lock);
    cr_assert(s->held, "progress never reached %d%%", s->hold_at);
    pthread_mutex_unlock(&s->lock);
}

static void release(sink_log *s)
{
    pthread_mutex_lock(&s->lock);
    s->go = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static int sink_keys(sink_log *s, int track, int64_t *out)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->pkts[i]->stream_index == track && (s->pkts[i]->flags & AV_PKT_FLAG_KEY))
            out[n++] = s->pkts[i]->pts;
    return n;
}

static int sink_count(sink_log *s, int track)
{
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += s->pkts[i]->stream_index == track;
    return n;
}

static void assert_sink_dts_order(sink_log *s)
{
    const AVPacket *prev = NULL;
    for (int i = 0; i < s->n; i++) {
        const AVPacket *p = s->pkts[i];
        cr_assert_neq(p->dts, AV_NOPTS_VALUE);
        if (prev)
            cr_assert_geq(av_compare_ts(p->dts, s->tb[p->stream_index], prev->dts,
                                        s->tb[prev->stream_index]), 0,
                          "packet %d (track %d) goes back in time", i, p->stream_index);
        prev = p;
    }
}

/* The pipeline's segment rule over the source keyframes (pts order). */
static int boundaries(const int64_t *keys, int n, int64_t seg, int64_t *out)
{
    int nb = 0;
    for (int i = 0; i < n; i++)
        if (nb == 0 || keys[i] - out[nb - 1] >= seg)
            out[nb++] = keys[i];
    return nb;
}

static void assert_keys_eq(const int64_t *got, int ngot, const int64_t *want, int nwant,
                           int track)
{
    char g[512] = "", w[512] = "";
    for (int i = 0; i < ngot; i++)
        snprintf(g + strlen(g), sizeof g - strlen(g), " %lld", (long long)got[i]);
    for (int i = 0; i < nwant; i++)
        snprintf(w + strlen(w), sizeof w - strlen(w), " %lld", (long long)want[i]);
    cr_assert_str_eq(g, w, "track %d keyframes:%s, expected:%s", track, g, w);
}

static weir_transcoder *new_transcoder(weir_bus *bus, const char *ladder, int64_t workers,
                                       double rate, int overload, weir_metrics *reg)
{
    weir_transcoder *t;
    weir_transcode_settings s = { .enabled = 1, .ladder = (char *)ladder, .workers = workers,
                                  .worker_rate = rate, .overload = overload };
    weir_transcoder_opts opts = { .bus = bus, .settings = &s, .segment_duration_ms = 1000,
                                  .queue_len = 100000, .metrics = reg };
    cr_assert_eq(weir_transcoder_new(&opts, &t), 0);
    return t;
}

/* The job with this id in jobs_json (a new reference), or NULL. */
static json_t *job_by_id(weir_transcoder *t, uint64_t id)
{
    json_t *jobs = weir_transcoder_jobs_json(t), *j, *found = NULL;
    size_t i;
    json_array_foreach(jobs, i, j)
        if ((uint64_t)json_integer_value(json_object_get(j, "id")) == id)
            found = json_incref(j);
    json_decref(jobs);
    return found;
}

static json_t *job_by_stream(weir_transcoder *t, const char *stream)
{
    json_t *jobs = weir_transcoder_jobs_json(t), *j, *found = NULL;
    size_t i;
    json_array_foreach(jobs, i, j)
        if (strcmp(json_string_value(json_object_get(j, "stream")), stream) == 0) {
            json_decref(found);
            found = json_incref(j);
        }
    json_decref(jobs);
    return found;
}

static const char *state_of(json_t *job)
{
    return job ? json_string_value(json_object_get(job, "state")) : "(none)";
}

/* Waits (20 s at most) for the job of `stream` to be in state. */
static void wait_stream_state(weir_transcoder *t, const char *stream, const char *state)
{
    char last[32] = "";
    for (int i = 0; i < 4000; i++) {
        json_t *j = job_by_stream(t, stream);
        snprintf(last, sizeof last, "%s", state_of(j));
        json_decref(j);
        if (strcmp(last, state) == 0)
            return;
        av_usleep(5000);
    }
    cr_assert_fail("job of %s is %s, expected %s", stream, last, state);
}

TestSuite(file_job, .init = setup, .fini = teardown, .timeout = 120);

/* ---- file jobs ------------------------------------------------------------------------- */

static const char *ladder3 = "source; a:256x144@300k,preset=ultrafast; "
                             "b:160x90@150k,preset=ultrafast; audio:aac@96k/48000/2";

Test(file_job, renditions_align_at_segment_boundaries_and_progress_reaches_100)
{
    char clip[128];
    int64_t keys[64], expect[64], got[64];
    AVRational tb;
    sink_log s;
    uint64_t id;
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "0,0.5,1.2,2.1,2.6", 3.0);
    int nkeys = clip_keys(clip, keys, &tb);
    cr_assert_eq(nkeys, 5);
    int ne = boundaries(keys, nkeys, av_rescale_q(1000, MS, tb), expect);
    cr_assert_eq(ne, 3);

    sink_init(&s);
    weir_transcoder *t = new_transcoder(NULL, ladder3, 0, 0, 0, NULL);
    weir_transcode_file_opts o = { .input = clip, .sink = sink_of(&s) };
    cr_assert_eq(weir_transcoder_file(t, &o, &id), 0);
    cr_assert_eq(wait_done(&s), 0);

    /* source, a, b, audio (44.1 kHz encoded once to 48 kHz) */
    cr_assert_eq(s.ntracks, 4);
    cr_assert_eq(s.par[0]->width, 320);
    cr_assert_eq(s.par[1]->width, 256);
    cr_assert_eq(s.par[2]->width, 160);
    cr_assert_eq(s.par[3]->codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(s.par[3]->sample_rate, 48000);
    for (int v = 0; v < 3; v++) {
        cr_assert_eq(s.tb[v].num, tb.num);
        cr_assert_eq(s.tb[v].den, tb.den, "video keeps the file's time base");
        cr_assert_eq(s.par[v]->extradata[0], 1, "track %d: avcC", v);
    }
    assert_keys_eq(got, sink_keys(&s, 0, got), keys, nkeys, 0);
    assert_keys_eq(got, sink_keys(&s, 1, got), expect, ne, 1);
    assert_keys_eq(got, sink_keys(&s, 2, got), expect, ne, 2);
    cr_assert_eq(sink_count(&s, 1), 90);
    cr_assert_eq(sink_count(&s, 2), 90);
    cr_assert_geq(sink_count(&s, 3), 3 * 48000 / 1024 - 2);
    assert_sink_dts_order(&s);

    /* Progress grows to 100, which comes last. */
    cr_assert_geq(s.nprogress, 2);
    for (int i = 1; i < s.nprogress; i++)
        cr_assert_gt(s.progress[i], s.progress[i - 1]);
    cr_assert_eq(s.progress[s.nprogress - 1], 100);

    json_t *job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "done");
    cr_assert_str_eq(json_string_value(json_object_get(job, "kind")), "file");
    cr_assert_str_eq(json_string_value(json_object_get(job, "stream")), "src.mp4");
    cr_assert_eq(json_integer_value(json_object_get(job, "progress")), 100);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "ladder"),
                                                       "profile")), "default");
    json_t *adm = json_object_get(job, "admission");
    cr_assert_str_eq(json_string_value(json_object_get(adm, "class")), "file");
    cr_assert_gt(json_real_value(json_object_get(adm, "cost")), 0);
    json_decref(job);
    weir_transcoder_free(t);
    sink_fini(&s);
}

Test(file_job, mpeg_ts_input_comes_out_in_iso_form)
{
    char mp4[128], ts[128], cmd[512];
    sink_log s;
    snprintf(mp4, sizeof mp4, "%s/src.mp4", dir);
    snprintf(ts, sizeof ts, "%s/src.ts", dir);
    make_clip(mp4, "0,1", 2.0);
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -y -i %s -c copy %s", mp4, ts);
    cr_assert_eq(system(cmd), 0);

    sink_init(&s);
    weir_transcoder *t = new_transcoder(NULL, ladder3, 0, 0, 0, NULL);
    weir_transcode_file_opts o = { .input = ts, .name = "upload-1", .sink = sink_of(&s) };
    cr_assert_eq(weir_transcoder_file(t, &o, NULL), 0);
    cr_assert_eq(wait_done(&s), 0);
    cr_assert_eq(s.ntracks, 4);
    cr_assert_eq(s.par[0]->extradata[0], 1, "the source rung's extradata is avcC");
    int n0 = 0;
    for (int i = 0; i < s.n; i++) {
        if (s.pkts[i]->stream_index != 0)
            continue;
        const uint8_t *d = s.pkts[i]->data;
        uint32_t len = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | d[2] << 8 | d[3];
        cr_assert_leq(len + 4, (uint32_t)s.pkts[i]->size, "source packet %d is not ISO", i);
        n0++;
    }
    cr_assert_eq(n0, 60);
    assert_sink_dts_order(&s);
    weir_transcoder_free(t);
    sink_fini(&s);
}

Test(file_job, a_corrupt_file_fails_with_a_clear_error)
{
    char bad[128], missing[128];
    sink_log s1, s2;
    uint64_t id;
    snprintf(bad, sizeof bad, "%s/bad.mp4", dir);
    snprintf(missing, sizeof missing, "%s/missing.mp4", dir);
    FILE *f = fopen(bad, "wb");
    for (int i = 0; i < 20000; i++)
        fputc((i * 7919 + 13) & 0xff, f);
    fclose(f);

    sink_init(&s1);
    sink_init(&s2);
    weir_transcoder *t = new_transcoder(NULL, ladder3, 0, 0, 0, NULL);
    weir_transcode_file_opts o = { .input = bad, .sink = sink_of(&s1) };
    cr_assert_eq(weir_transcoder_file(t, &o, &id), 0);
    cr_assert_eq(wait_done(&s1), AVERROR_INVALIDDATA);
    cr_assert_eq(s1.ntracks, 0);
    json_t *job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(job, "error")),
                     av_err2str(AVERROR_INVALIDDATA));
    json_decref(job);

    o = (weir_transcode_file_opts){ .input = missing, .sink = sink_of(&s2) };
    cr_assert_eq(weir_transcoder_file(t, &o, NULL), 0);
    cr_assert_eq(wait_done(&s2), AVERROR(ENOENT));

    /* Refused up front: an unknown profile, a sink without packet. */
    o = (weir_transcode_file_opts){ .input = bad, .profile = "huge", .sink = sink_of(&s2) };
    cr_assert_eq(weir_transcoder_file(t, &o, NULL), AVERROR(EINVAL));
    o = (weir_transcode_file_opts){ .input = bad, .sink = { .track = on_track } };
    cr_assert_eq(weir_transcoder_file(t, &o, NULL), AVERROR(EINVAL));
    weir_transcoder_free(t);
    sink_fini(&s1);
    sink_fini(&s2);
}

Test(file_job, cancel_and_sink_errors_end_the_job)
{
    char clip[128];
    sink_log s1, s2;
    uint64_t id;
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "0,1,2", 3.0);
    sink_init(&s1);
    sink_init(&s2);
    s1.hold_at = 30;
    s2.refuse_after = 10;
    weir_transcoder *t = new_transcoder(NULL, ladder3, 0, 0, 0, NULL);

    weir_transcode_file_opts o = { .input = clip, .sink = sink_of(&s1) };
    cr_assert_eq(weir_transcoder_file(t, &o, &id), 0);
    wait_held(&s1);
    cr_assert_eq(weir_transcoder_cancel(t, id), 0);
    release(&s1);
    cr_assert_eq(wait_done(&s1), AVERROR_EXIT);
    cr_assert_lt(s1.progress[s1.nprogress - 1], 100);
    json_t *job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "cancelled");
    json_decref(job);
    cr_assert_eq(weir_transcoder_cancel(t, id), AVERROR(ENOENT));

    o = (weir_transcode_file_opts){ .input = clip, .sink = sink_of(&s2) };
    cr_assert_eq(weir_transcoder_file(t, &o, &id), 0);
    cr_assert_eq(wait_done(&s2), AVERROR(ENOSPC));
    job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "failed");
    json_decref(job);
    weir_transcoder_free(t);
    sink_fini(&s1);
    sink_fini(&s2);
}

/* ---- live streams and the pool ------------------------------------------------------- */

/* A live publisher of a clip, a few packets at a time. */
typedef struct publisher {
    AVFormatContext *fmt;
    weir_stream *s;
    int map[MAX_TRACKS];
} publisher;

static void pub_open(publisher *p, weir_bus *bus, const char *name, const char *path)
{
    memset(p, 0, sizeof *p);
    cr_assert_eq(avformat_open_input(&p->fmt, path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(p->fmt, NULL), 0);
    cr_assert_eq(weir_bus_publish(bus, name, NULL, &p->s), 0);
    weir_publisher_info info = { .protocol = "test" };
    for (unsigned i = 0; i < p->fmt->nb_streams && i < MAX_TRACKS; i++) {
        AVStream *st = p->fmt->streams[i];
        p->map[i] = weir_stream_add_track(p->s, st->codecpar, MS);
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
            info.framerate = st->avg_frame_rate;
    }
    weir_stream_set_publisher(p->s, &info);
}

/* Writes n packets (all when n <= 0), 1 ms apart; 0 at the end of the file. */
static int pub_write(publisher *p, int n)
{
    AVPacket *pkt = av_packet_alloc();
    int written = 0, r = 0;
    while ((n <= 0 || written < n) && (r = av_read_frame(p->fmt, pkt)) >= 0) {
        AVStream *st = p->fmt->streams[pkt->stream_index];
        av_packet_rescale_ts(pkt, st->time_base, MS);
        pkt->stream_index = p->map[pkt->stream_index];
        cr_assert_eq(weir_stream_write(p->s, pkt), 0);
        av_packet_unref(pkt);
        written++;
        av_usleep(1000);
    }
    av_packet_free(&pkt);
    return r >= 0;
}

static void pub_end(publisher *p)
{
    weir_stream_end(p->s);
    avformat_close_input(&p->fmt);
}

/* Every "<name>/abr" published: its subscription. */
static struct {
    pthread_mutex_t lock;
    char name[4][64];
    weir_sub *sub[4];
    int n;
} outs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void watcher(void *arg, weir_bus_event ev, weir_stream *s)
{
    (void)arg;
    const char *name = weir_stream_name(s);
    if (ev != WEIR_BUS_PUBLISHED || !strstr(name, "/abr"))
        return;
    weir_sub_opts opts = { .queue_len = 100000 };
    weir_sub *sub;
    cr_assert_eq(weir_stream_subscribe(s, &opts, &sub), 0);
    pthread_mutex_lock(&outs.lock);
    cr_assert_lt(outs.n, 4);
    snprintf(outs.name[outs.n], sizeof outs.name[0], "%s", name);
    outs.sub[outs.n++] = sub;
    pthread_mutex_unlock(&outs.lock);
}

static weir_sub *out_sub(const char *name)
{
    weir_sub *sub = NULL;
    pthread_mutex_lock(&outs.lock);
    for (int i = 0; i < outs.n; i++)
        if (strcmp(outs.name[i], name) == 0)
            sub = outs.sub[i];
    pthread_mutex_unlock(&outs.lock);
    return sub;
}

static void outs_free(void)
{
    for (int i = 0; i < outs.n; i++)
        weir_sub_close(outs.sub[i]);
    outs.n = 0;
}

/* Reads sub to its end (20 s at most); returns the packets read and the
 * first video packet's key flag. */
static int drain(weir_sub *sub, int *first_key)
{
    int64_t deadline = av_gettime_relative() + 20000000;
    AVPacket *pkt = av_packet_alloc();
    int n = 0;
    *first_key = -1;
    for (;;) {
        cr_assert_lt(av_gettime_relative(), deadline, "the renditions did not end");
        int r = weir_sub_read(sub, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r == AVERROR(EAGAIN)) {
            av_usleep(5000);
            continue;
        }
        cr_assert_eq(r, 0);
        const AVCodecParameters *par = weir_sub_codecpar(sub, pkt->stream_index, NULL);
        if (*first_key < 0 && par->codec_type == AVMEDIA_TYPE_VIDEO)
            *first_key = !!(pkt->flags & AV_PKT_FLAG_KEY);
        n++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return n;
}

static void wait_output(const char *name)
{
    for (int i = 0; i < 4000 && !out_sub(name); i++)
        av_usleep(5000);
    cr_assert_not_null(out_sub(name), "%s was not published", name);
}

/* Waits (20 s at most) for the pool's counter `key` to be n. */
static void wait_pool(weir_transcoder *t, const char *key, int n)
{
    json_int_t v = -1;
    for (int i = 0; i < 4000; i++) {
        json_t *st = weir_transcoder_status_json(t);
        v = json_integer_value(json_object_get(json_object_get(st, "pool"), key));
        json_decref(st);
        if (v == n)
            return;
        av_usleep(5000);
    }
    cr_assert_fail("pool %s is %lld, expected %d", key, (long long)v, n);
}

TestSuite(pool, .init = setup, .fini = teardown, .timeout = 120);

Test(pool, degrade_drops_the_top_rung_when_the_workers_are_full)
{
    char clip[128];
    publisher pub;
    int first_key;
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "0,1,2", 3.0);
    weir_bus *bus = weir_bus_new();
    weir_metrics *reg = weir_metrics_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    /* a + b + decoding cost 0.83 Mpx/s, b + decoding 0.49: one worker of
     * 0.6 Mpx/s takes b only. */
    weir_transcoder *t = new_transcoder(bus, ladder3, 1, 0.6, 0, reg);

    pub_open(&pub, bus, "cam1", clip);
    pub_write(&pub, 0);
    pub_end(&pub);
    wait_output("cam1/abr");
    weir_sub *sub = out_sub("cam1/abr");
    cr_assert_gt(drain(sub, &first_key), 0);
    cr_assert_eq(weir_sub_ntracks(sub), 3, "source, b, audio");
    cr_assert_eq(weir_sub_codecpar(sub, 1, NULL)->width, 160);

    wait_stream_state(t, "cam1", "done");
    json_t *job = job_by_stream(t, "cam1");
    json_t *dropped = json_object_get(json_object_get(job, "ladder"), "dropped");
    char *text = json_dumps(dropped, JSON_COMPACT);
    cr_assert(strstr(text, "\"a\"") && strstr(text, "over capacity"), "%s", text);
    free(text);
    json_decref(job);

    char *m = NULL;
    size_t len;
    cr_assert_eq(weir_metrics_render(reg, &m, &len), 0);
    cr_assert(strstr(m, "weir_transcode_admissions_total{event=\"degraded\"} 1"), "%s", m);
    cr_assert(strstr(m, "weir_transcode_workers{kind=\"capacity\"} 1"), "%s", m);
    cr_assert(strstr(m, "weir_transcode_workers{kind=\"used\"} 0"), "%s", m);
    cr_assert(strstr(m, "weir_transcode_jobs{state=\"done\"} 1"), "%s", m);
    free(m);
    weir_transcoder_free(t);
    weir_metrics_free(reg);
    outs_free();
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
}

Test(pool, queue_holds_a_second_stream_until_the_first_ends)
{
    char clip1[128], clip2[128];
    publisher p1, p2;
    int first_key;
    snprintf(clip1, sizeof clip1, "%s/one.mp4", dir);
    snprintf(clip2, sizeof clip2, "%s/two.mp4", dir);
    make_clip(clip1, "0,1,2", 3.0);
    make_clip(clip2, "0,0.5,1,1.5,2,2.5,3,3.5", 4.0);
    weir_bus *bus = weir_bus_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    /* One job (0.66 Mpx/s) fits a worker of 0.8 Mpx/s; two do not. */
    weir_transcoder *t = new_transcoder(bus, "a:256x144@300k,preset=ultrafast", 1, 0.8, 1,
                                        NULL);

    pub_open(&p1, bus, "cam1", clip1);
    pub_write(&p1, 30);
    wait_stream_state(t, "cam1", "running");
    pub_open(&p2, bus, "cam2", clip2);
    pub_write(&p2, 40);
    wait_stream_state(t, "cam2", "queued");
    cr_assert_null(out_sub("cam2/abr"), "a queued stream is not transcoded");
    json_t *st = weir_transcoder_status_json(t);
    json_t *pool = json_object_get(st, "pool");
    cr_assert_str_eq(json_string_value(json_object_get(pool, "overload")), "queue");
    cr_assert_eq(json_integer_value(json_object_get(pool, "waiting_live")), 1);
    cr_assert_eq(json_array_size(json_object_get(st, "jobs")), 2);
    json_decref(st);

    /* cam1 ends: cam2 starts at its next keyframe, with its whole ladder. */
    pub_write(&p1, 0);
    pub_end(&p1);
    cr_assert_gt(drain(out_sub("cam1/abr"), &first_key), 0);
    wait_pool(t, "waiting_live", 0);
    pub_write(&p2, 80);
    wait_stream_state(t, "cam2", "running");
    pub_write(&p2, 0);
    pub_end(&p2);
    wait_output("cam2/abr");
    cr_assert_gt(drain(out_sub("cam2/abr"), &first_key), 20);
    cr_assert_eq(first_key, 1, "cam2/abr starts on a keyframe");
    wait_stream_state(t, "cam2", "done");
    weir_transcoder_free(t);
    outs_free();
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
}

Test(pool, a_file_job_yields_to_a_live_stream)
{
    char clip[128], live[128];
    publisher pub;
    sink_log s;
    uint64_t id;
    int first_key;
    snprintf(clip, sizeof clip, "%s/file.mp4", dir);
    snprintf(live, sizeof live, "%s/live.mp4", dir);
    make_clip(clip, "0,1,2", 3.0);
    make_clip(live, "0,1,2", 3.0);
    weir_bus *bus = weir_bus_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    /* Each job costs 0.74 Mpx/s, 0.6 of the one worker. */
    weir_transcoder *t = new_transcoder(bus, "a:320x180@300k,preset=ultrafast", 1, 1.238, 0,
                                        NULL);
    sink_init(&s);
    s.hold_at = 50;
    weir_transcode_file_opts o = { .input = clip, .sink = sink_of(&s) };
    cr_assert_eq(weir_transcoder_file(t, &o, &id), 0);
    wait_held(&s);
    json_t *job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "running");
    json_decref(job);

    /* A stream comes: it gets the whole ladder, the file job waits. */
    pub_open(&pub, bus, "cam1", live);
    pub_write(&pub, 30);
    wait_stream_state(t, "cam1", "running");
    job = job_by_id(t, id);
    cr_assert_str_eq(state_of(job), "queued");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(job, "admission"),
                                                    "preemptions")), 1);
    json_decref(job);
    release(&s);
    av_usleep(300000);
    pthread_mutex_lock(&s.lock);
    int done = s.done, last = s.progress[s.nprogress - 1];
    pthread_mutex_unlock(&s.lock);
    cr_assert(!done && last < 100, "a preempted file job does not go on (at %d%%)", last);

    /* The stream ends: the file job finishes. */
    pub_write(&pub, 0);
    pub_end(&pub);
    cr_assert_gt(drain(out_sub("cam1/abr"), &first_key), 0);
    cr_assert_eq(wait_done(&s), 0);
    cr_assert_eq(s.progress[s.nprogress - 1], 100);
    cr_assert_eq(sink_count(&s, 0), 90);
    weir_transcoder_free(t);
    sink_fini(&s);
    outs_free();
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
}

/* ---- per-stream profiles -------------------------------------------------------------- */

static int profile_of(void *arg, const char *stream, char *name, size_t cap)
{
    (void)arg;
    if (strcmp(stream, "cam1") == 0)
        snprintf(name, cap, "low");
    else if (strcmp(stream, "cam2") == 0)
        snprintf(name, cap, "bogus");
    else
        return AVERROR(ENOENT);          /* no key: the default */
    return 0;
}

Test(pool, a_stream_gets_the_profile_its_key_names)
{
    char clip[128];
    publisher pub;
    int first_key;
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "0,1", 1.5);
    weir_bus *bus = weir_bus_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    weir_transcoder *t;
    weir_transcode_settings s = {
        .enabled = 1, .ladder = "source; a:256x144@300k,preset=ultrafast",
        .ladder_low = "b:160x90@150k,preset=ultrafast",
        .ladder_high = "source; a:256x144@300k,preset=ultrafast; b:160x90@150k,preset=ultrafast",
    };
    weir_transcoder_opts opts = { .bus = bus, .settings = &s, .segment_duration_ms = 1000,
                                  .queue_len = 100000, .stream_profile = profile_of };
    cr_assert_eq(weir_transcoder_new(&opts, &t), 0);

    const char *streams[] = { "cam1", "cam2", "cam3" };
    const int widths[] = { 160, 320, 320 };     /* low; unknown: default; no key: default */
    const char *names[] = { "low", "default", "default" };
    for (int i = 0; i < 3; i++) {
        char out[64];
        pub_open(&pub, bus, streams[i], clip);
        pub_write(&pub, 0);
        pub_end(&pub);
        snprintf(out, sizeof out, "%s/abr", streams[i]);
        wait_output(out);
        cr_assert_gt(drain(out_sub(out), &first_key), 0);
        cr_assert_eq(weir_sub_codecpar(out_sub(out), 0, NULL)->width, widths[i], "%s", out);
        wait_stream_state(t, streams[i], "done");
        json_t *job = job_by_stream(t, streams[i]);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "ladder"),
                                                           "profile")), names[i]);
        json_decref(job);
    }
    weir_transcoder_free(t);
    outs_free();
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
}
