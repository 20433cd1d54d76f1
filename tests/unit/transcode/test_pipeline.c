/*
 * Unit tests for transcode/pipeline through the transcoder: a tiny clip
 * made by the ffmpeg CLI (320x180 H.264 with keyframes at irregular places,
 * B-frames, AAC) is published on a bus as ingest would (ISO form, 1/1000
 * time base); the test reads "cam1/abr" and checks the tracks, the aligned
 * keyframes at the segment boundaries, dts order, the avcC extradata, that
 * the renditions decode, and that corrupt packets do not stop the job.
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

/* ---- the clip ------------------------------------------------------------------ */

static char dir[64];

/* extra: more output options, e.g. "-vn" for an audio-only clip. */
static void make_clip_opts(const char *path, const char *video, const char *audio,
                           const char *keyframes, double seconds, const char *extra)
{
    char cmd[1024];
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0)
        cr_skip_test("the ffmpeg CLI is not installed");
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -f lavfi -i %s -f lavfi -i %s -t %.2f "
             "-c:v libx264 -preset veryfast -bf 2 -pix_fmt yuv420p "
             "-x264-params keyint=1000:min-keyint=1000:scenecut=0 -force_key_frames %s "
             "-c:a aac -b:a 96k -ac 2 %s %s",
             video, audio, seconds, keyframes, extra, path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void make_clip(const char *path, const char *video, const char *audio,
                      const char *keyframes, double seconds)
{
    make_clip_opts(path, video, audio, keyframes, seconds, "");
}

static void setup(void)
{
    strcpy(dir, "/tmp/weir-tc-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- what the source carried ----------------------------------------------------- */

typedef struct source_log {
    int64_t frame_pts[MAX_PKTS];        /* video pts, ms, in file order */
    int nframes;
    int64_t key_pts[64];
    int nkeys;
} source_log;

/* Publishes the file as stream `name` (1/1000 time base, like RTMP ingest).
 * corrupt: a list of video packet numbers whose payload gets bytes flipped,
 * terminated by -1 (NULL: none).  stop_after > 0: only that many packets,
 * and the stream is left published (*left gets it). */
static void publish_part(weir_bus *bus, const char *name, const char *path,
                         const int *corrupt, source_log *log, int stop_after,
                         weir_stream **left)
{
    AVFormatContext *fmt = NULL;
    weir_stream *s;
    int map[MAX_TRACKS];

    cr_assert_eq(avformat_open_input(&fmt, path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    cr_assert_eq(weir_bus_publish(bus, name, NULL, &s), 0);
    weir_publisher_info info = { .protocol = "test" };
    for (unsigned i = 0; i < fmt->nb_streams && i < MAX_TRACKS; i++) {
        AVStream *st = fmt->streams[i];
        map[i] = weir_stream_add_track(s, st->codecpar, MS);
        cr_assert_geq(map[i], 0);
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
            info.framerate = st->avg_frame_rate;
    }
    weir_stream_set_publisher(s, &info);

    AVPacket *pkt = av_packet_alloc();
    int vno = 0, written = 0;
    while ((stop_after <= 0 || written++ < stop_after) && av_read_frame(fmt, pkt) >= 0) {
        AVStream *st = fmt->streams[pkt->stream_index];
        av_packet_rescale_ts(pkt, st->time_base, MS);
        pkt->stream_index = map[pkt->stream_index];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
            log->frame_pts[log->nframes++] = pkt->pts;
            if (pkt->flags & AV_PKT_FLAG_KEY)
                log->key_pts[log->nkeys++] = pkt->pts;
            for (int i = 0; corrupt && corrupt[i] >= 0; i++)
                if (corrupt[i] == vno) {
                    cr_assert_eq(av_packet_make_writable(pkt), 0);
                    for (int b = 8; b < pkt->size && b < 200; b += 3)
                        pkt->data[b] ^= 0x5a;
                }
            vno++;
        }
        cr_assert_eq(weir_stream_write(s, pkt), 0);
        av_packet_unref(pkt);
        av_usleep(1000);                /* a live source trickles in */
    }
    av_packet_free(&pkt);
    if (stop_after > 0)
        *left = s;
    else
        weir_stream_end(s);
    avformat_close_input(&fmt);
}

static void publish_file(weir_bus *bus, const char *name, const char *path,
                         const int *corrupt, source_log *log)
{
    publish_part(bus, name, path, corrupt, log, 0, NULL);
}

/* ---- what came out -------------------------------------------------------------- */

typedef struct out_log {
    pthread_mutex_t lock;
    weir_sub *sub;                      /* subscribed when "cam1/abr" was published */
    AVPacket *pkts[MAX_PKTS];
    int n;
} out_log;

static out_log outl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void watcher(void *arg, weir_bus_event ev, weir_stream *s)
{
    (void)arg;
    if (ev != WEIR_BUS_PUBLISHED || strcmp(weir_stream_name(s), "cam1/abr") != 0)
        return;
    weir_sub_opts opts = { .queue_len = 100000 };
    pthread_mutex_lock(&outl.lock);
    cr_assert_eq(weir_stream_subscribe(s, &opts, &outl.sub), 0);
    pthread_mutex_unlock(&outl.lock);
}

/* Reads cam1/abr to its end (30 s at most). */
static void collect_output(void)
{
    int64_t deadline = av_gettime_relative() + 30000000;
    AVPacket *pkt = av_packet_alloc();
    for (;;) {
        cr_assert_lt(av_gettime_relative(), deadline, "cam1/abr did not end in time");
        pthread_mutex_lock(&outl.lock);
        weir_sub *sub = outl.sub;
        pthread_mutex_unlock(&outl.lock);
        if (!sub) {
            av_usleep(10000);
            continue;
        }
        int r = weir_sub_read(sub, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r == AVERROR(EAGAIN)) {
            av_usleep(5000);
            continue;
        }
        cr_assert_eq(r, 0);
        cr_assert_lt(outl.n, MAX_PKTS);
        outl.pkts[outl.n++] = av_packet_clone(pkt);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
}

static void free_output(void)
{
    for (int i = 0; i < outl.n; i++)
        av_packet_free(&outl.pkts[i]);
    outl.n = 0;
    weir_sub_close(outl.sub);
    outl.sub = NULL;
}

/* Runs a transcoder with `ladder` over the clip; fills outl and log; returns
 * the jobs' JSON (caller decrefs). */
static json_t *run_job(const char *clip, const char *ladder, int64_t segment_ms,
                       const int *corrupt, source_log *log)
{
    weir_bus *bus = weir_bus_new();
    weir_transcoder *t;
    weir_transcode_settings s = { .enabled = 1, .profile = 0, .ladder = (char *)ladder };

    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    weir_transcoder_opts opts = { .bus = bus, .settings = &s, .segment_duration_ms = segment_ms,
                                  .queue_len = 100000 };
    cr_assert_eq(weir_transcoder_new(&opts, &t), 0);
    publish_file(bus, "cam1", clip, corrupt, log);
    collect_output();
    json_t *jobs = weir_transcoder_jobs_json(t);
    weir_transcoder_free(t);
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
    return jobs;
}

/* ---- checks ------------------------------------------------------------------------ */

/* The segment rule of pipeline.c: the first candidate, then the first
 * candidate at least segment_ms after the previous boundary. */
static int boundaries(const int64_t *cand, int n, int64_t segment_ms, int64_t *out)
{
    int64_t sorted[MAX_PKTS];
    int nb = 0;
    memcpy(sorted, cand, (size_t)n * sizeof *cand);
    for (int i = 1; i < n; i++)         /* pts order (the file is in decode order) */
        for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            int64_t x = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = x;
        }
    for (int i = 0; i < n; i++)
        if (nb == 0 || sorted[i] - out[nb - 1] >= segment_ms)
            out[nb++] = sorted[i];
    return nb;
}

static int keyframes_of(int track, int64_t *out)
{
    int n = 0;
    for (int i = 0; i < outl.n; i++)
        if (outl.pkts[i]->stream_index == track && (outl.pkts[i]->flags & AV_PKT_FLAG_KEY))
            out[n++] = outl.pkts[i]->pts;
    return n;
}

static int packets_of(int track)
{
    int n = 0;
    for (int i = 0; i < outl.n; i++)
        n += outl.pkts[i]->stream_index == track;
    return n;
}

static void assert_same_keys(int track, const int64_t *expect, int n)
{
    int64_t keys[MAX_PKTS];
    int nk = keyframes_of(track, keys);
    char got[512] = "", want[512] = "";
    for (int i = 0; i < nk; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %lld", (long long)keys[i]);
    for (int i = 0; i < n; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), " %lld", (long long)expect[i]);
    char first[256] = "";
    for (int i = 0, k = 0; i < outl.n && k < 6; i++)
        if (outl.pkts[i]->stream_index == track && ++k)
            snprintf(first + strlen(first), sizeof first - strlen(first), " %lld%s",
                     (long long)outl.pkts[i]->pts,
                     outl.pkts[i]->flags & AV_PKT_FLAG_KEY ? "K" : "");
    cr_assert_str_eq(got, want, "track %d keyframes:%s, expected:%s (%d packets:%s ...)", track,
                     got, want, packets_of(track), first);
}

/* dts never goes back, per track and across tracks. */
static void assert_dts_order(void)
{
    AVRational tb[MAX_TRACKS];
    int64_t last[MAX_TRACKS];
    int seen[MAX_TRACKS] = { 0 };
    int n = weir_sub_ntracks(outl.sub);
    for (int t = 0; t < n; t++)
        weir_sub_codecpar(outl.sub, t, &tb[t]);
    const AVPacket *prev = NULL;
    for (int i = 0; i < outl.n; i++) {
        const AVPacket *p = outl.pkts[i];
        int t = p->stream_index;
        cr_assert_neq(p->dts, AV_NOPTS_VALUE);
        if (seen[t])
            cr_assert_gt(p->dts, last[t], "track %d: dts %lld after %lld", t,
                         (long long)p->dts, (long long)last[t]);
        seen[t] = 1;
        last[t] = p->dts;
        if (prev)
            cr_assert_geq(av_compare_ts(p->dts, tb[t], prev->dts, tb[prev->stream_index]), 0,
                          "packet %d (track %d dts %lld) before the previous one", i, t,
                          (long long)p->dts);
        prev = p;
    }
}

/* Decodes every packet of track; returns the frames; asserts no error. */
static int decode_track(int track)
{
    const AVCodecParameters *par = weir_sub_codecpar(outl.sub, track, NULL);
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    int frames = 0;
    cr_assert_eq(avcodec_parameters_to_context(dec, par), 0);
    cr_assert_eq(avcodec_open2(dec, codec, NULL), 0);
    for (int i = 0; i <= outl.n; i++) {
        if (i < outl.n && outl.pkts[i]->stream_index != track)
            continue;
        cr_assert_eq(avcodec_send_packet(dec, i < outl.n ? outl.pkts[i] : NULL), 0,
                     "track %d packet %d does not decode", track, i);
        while (avcodec_receive_frame(dec, f) == 0) {
            if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
                cr_assert_eq(f->width, par->width);
                cr_assert_eq(f->height, par->height);
            }
            frames++;
            av_frame_unref(f);
        }
    }
    av_frame_free(&f);
    avcodec_free_context(&dec);
    return frames;
}

static void assert_video_track(int t, int w, int h)
{
    const AVCodecParameters *par = weir_sub_codecpar(outl.sub, t, NULL);
    cr_assert_not_null(par);
    cr_assert_eq(par->codec_type, AVMEDIA_TYPE_VIDEO);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(par->width, w, "track %d: width %d, expected %d", t, par->width, w);
    cr_assert_eq(par->height, h, "track %d: height %d, expected %d", t, par->height, h);
    cr_assert_gt(par->extradata_size, 7);
    cr_assert_eq(par->extradata[0], 1, "track %d: extradata is not avcC", t);
    cr_assert_eq(par->extradata[4], 0xff, "track %d: NAL lengths are not 4 bytes", t);
    /* ISO packets: the first 4 bytes are a length, not a start code. */
    for (int i = 0; i < outl.n; i++)
        if (outl.pkts[i]->stream_index == t) {
            const uint8_t *d = outl.pkts[i]->data;
            uint32_t len = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | d[2] << 8 | d[3];
            cr_assert_leq(len + 4, (uint32_t)outl.pkts[i]->size, "track %d: not ISO", t);
        }
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 120);

/* ---- tests ------------------------------------------------------------------------- */

Test(pipeline, source_and_two_rungs_align_on_source_keyframes)
{
    char clip[128];
    source_log log = { 0 };
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "testsrc2=size=320x180:rate=30", "sine=frequency=440:sample_rate=48000",
              "0,0.5,1.2,2.1,2.6", 3.0);

    json_t *jobs = run_job(clip, "source; a:256x144@300k,preset=ultrafast; "
                                 "b:160x90@150k,preset=ultrafast; audio:aac@128k/48000/2",
                           1000, NULL, &log);
    cr_assert_eq(weir_sub_ntracks(outl.sub), 4);
    assert_video_track(0, 320, 180);
    assert_video_track(1, 256, 144);
    assert_video_track(2, 160, 90);
    AVRational atb;
    const AVCodecParameters *apar = weir_sub_codecpar(outl.sub, 3, &atb);
    cr_assert_eq(apar->codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(atb.den, 1000, "AAC 96k at 48 kHz passes through in the source time base");

    /* Keyframes: the source rung keeps all of its own; the encoded rungs have
     * exactly the source keyframes that start a segment. */
    int64_t expect[64];
    int ne = boundaries(log.key_pts, log.nkeys, 1000, expect);
    cr_assert_eq(log.nkeys, 5, "the clip has %d keyframes", log.nkeys);
    cr_assert_eq(ne, 3);
    assert_same_keys(0, log.key_pts, log.nkeys);
    assert_same_keys(1, expect, ne);
    assert_same_keys(2, expect, ne);

    assert_dts_order();
    cr_assert_eq(packets_of(0), log.nframes);
    cr_assert_eq(packets_of(1), log.nframes);
    cr_assert_eq(decode_track(1), log.nframes);
    cr_assert_eq(decode_track(2), log.nframes);
    cr_assert_eq(decode_track(0), log.nframes);
    cr_assert_gt(decode_track(3), 100);

    json_t *job = json_array_get(jobs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    cr_assert_eq(json_array_size(json_object_get(job, "renditions")), 3);
    json_decref(jobs);
    free_output();
}

Test(pipeline, without_a_source_rung_boundaries_follow_the_clock)
{
    char clip[128];
    source_log log = { 0 };
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "testsrc2=size=320x180:rate=30", "sine=frequency=440:sample_rate=44100",
              "0,0.5,1.2,2.1,2.6", 3.0);

    json_t *jobs = run_job(clip, "a:320x180@400k,preset=ultrafast; "
                                 "b:160x90@150k/15,preset=ultrafast; audio:aac@96k/48000/2",
                           1000, NULL, &log);
    cr_assert_eq(weir_sub_ntracks(outl.sub), 3);
    assert_video_track(0, 320, 180);
    assert_video_track(1, 160, 90);

    int64_t expect[64];
    int ne = boundaries(log.frame_pts, log.nframes, 1000, expect);
    cr_assert_eq(ne, 3);
    assert_same_keys(0, expect, ne);
    assert_same_keys(1, expect, ne);

    /* b is capped at 15 fps: about half the frames, the boundaries kept. */
    int nb = packets_of(1);
    cr_assert(nb >= log.nframes / 2 - 2 && nb <= log.nframes / 2 + 3, "b: %d frames", nb);
    cr_assert_eq(packets_of(0), log.nframes);

    /* 44.1 kHz source audio is encoded once to 48 kHz AAC. */
    AVRational atb;
    const AVCodecParameters *apar = weir_sub_codecpar(outl.sub, 2, &atb);
    cr_assert_eq(apar->codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(apar->sample_rate, 48000);
    cr_assert_eq(atb.den, 48000);
    cr_assert_gt(apar->extradata_size, 1);

    assert_dts_order();
    cr_assert_eq(decode_track(0), log.nframes);
    cr_assert_eq(decode_track(1), nb);
    int aframes = decode_track(2);
    cr_assert(aframes >= 3 * 48000 / 1024 - 2, "%d audio frames", aframes);
    json_decref(jobs);
    free_output();
}

Test(pipeline, corrupt_packets_are_survived)
{
    char clip[128];
    source_log log = { 0 };
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "testsrc2=size=320x180:rate=30", "sine=frequency=440:sample_rate=48000",
              "0,1.5", 3.0);
    const int corrupt[] = { 20, 21, 22, 45, 46, 60, -1 };

    json_t *jobs = run_job(clip, "source; a:256x144@300k,preset=ultrafast; "
                                 "b:160x90@150k,preset=ultrafast", 1000, corrupt, &log);
    cr_assert_eq(weir_sub_ntracks(outl.sub), 4);

    /* The job ran to the end of the source and kept the rungs aligned. */
    json_t *job = json_array_get(jobs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    int64_t expect[64];
    int ne = boundaries(log.key_pts, log.nkeys, 1000, expect);
    assert_same_keys(1, expect, ne);
    assert_same_keys(2, expect, ne);
    for (int t = 1; t <= 2; t++) {
        int n = packets_of(t);
        cr_assert_geq(n, log.nframes - 10, "track %d: %d of %d frames", t, n, log.nframes);
        int64_t last = 0;
        for (int i = 0; i < outl.n; i++)
            if (outl.pkts[i]->stream_index == t)
                last = outl.pkts[i]->pts;
        cr_assert_geq(last, 2800, "track %d ends at %lld", t, (long long)last);
        cr_assert_geq(decode_track(t), n);
    }
    assert_dts_order();
    json_decref(jobs);
    free_output();
}

Test(pipeline, audio_only_source_passes_its_audio)
{
    char clip[128];
    source_log log = { 0 };
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip_opts(clip, "testsrc2=size=320x180:rate=30", "sine=frequency=440:sample_rate=48000",
                   "0", 2.0, "-vn");

    json_t *jobs = run_job(clip, "source; a:256x144@300k; audio:aac@128k/48000/2", 1000, NULL,
                           &log);
    cr_assert_eq(log.nframes, 0);
    cr_assert_eq(weir_sub_ntracks(outl.sub), 1);
    AVRational tb;
    const AVCodecParameters *par = weir_sub_codecpar(outl.sub, 0, &tb);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(tb.den, 1000);                  /* copied */
    cr_assert_geq(packets_of(0), 2 * 48000 / 1024 - 2);
    assert_dts_order();
    json_t *job = json_array_get(jobs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(jobs);
    free_output();
}

Test(pipeline, freeing_the_transcoder_cancels_a_live_job)
{
    char clip[128];
    source_log log = { 0 };
    weir_stream *live;
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "testsrc2=size=320x180:rate=30", "sine=frequency=440:sample_rate=44100",
              "0,1", 3.0);

    weir_bus *bus = weir_bus_new();
    weir_transcoder *t;
    weir_transcode_settings s = { .enabled = 1,
                                  .ladder = "a:256x144@300k; b:160x90@150k; audio:aac@96k" };
    weir_metrics *reg = weir_metrics_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, NULL), 0);
    weir_transcoder_opts opts = { .bus = bus, .settings = &s, .segment_duration_ms = 1000,
                                  .queue_len = 100000, .metrics = reg };
    cr_assert_eq(weir_transcoder_new(&opts, &t), 0);
    publish_part(bus, "cam1", clip, NULL, &log, 120, &live);
    /* While the job runs, /metrics shows it... */
    char *text = NULL;
    size_t len;
    for (int i = 0; i < 3000; i++) {
        free(text);
        cr_assert_eq(weir_metrics_render(reg, &text, &len), 0);
        if (strstr(text, "weir_transcode_frames_total{stream=\"cam1\",rendition=\"b\"}"))
            break;
        av_usleep(10000);
    }
    cr_assert(strstr(text, "weir_transcode_jobs{state=\"running\"} 1"), "%s", text);
    cr_assert(strstr(text, "weir_transcode_speed{stream=\"cam1\"}"), "%s", text);
    cr_assert(strstr(text, "weir_transcode_frames_total{stream=\"cam1\",rendition=\"a\"}"),
              "%s", text);
    cr_assert(strstr(text, "weir_transcode_decode_errors_total{stream=\"cam1\"} 0"), "%s", text);
    free(text);
    /* ...then pull the plug. */
    weir_transcoder_free(t);
    cr_assert_eq(weir_metrics_render(reg, &text, &len), 0);
    cr_assert_null(strstr(text, "weir_transcode"), "%s", text);   /* unregistered */
    free(text);
    weir_metrics_free(reg);
    collect_output();                            /* cam1/abr ended with the job */
    cr_assert_gt(outl.n, 0);
    assert_dts_order();
    weir_stream_end(live);
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
    free_output();
}

/* At 5 fps, x264 medium's 40-frame lookahead holds 8 s of video: the
 * interleaver must wait for it rather than write the audio ahead. */
Test(pipeline, deep_encoder_pipelines_lose_nothing)
{
    char clip[128];
    source_log log = { 0 };
    snprintf(clip, sizeof clip, "%s/src.mp4", dir);
    make_clip(clip, "testsrc2=size=320x180:rate=5", "sine=frequency=440:sample_rate=48000",
              "0,2,4", 6.0);

    json_t *jobs = run_job(clip, "a:256x144@300k,preset=medium; audio:aac@128k/48000/2", 2000,
                           NULL, &log);
    cr_assert_eq(weir_sub_ntracks(outl.sub), 2);
    cr_assert_eq(packets_of(0), log.nframes);
    cr_assert_geq(packets_of(1), 6 * 48000 / 1024 - 2);
    assert_dts_order();
    json_t *job = json_array_get(jobs, 0);
    cr_assert_eq(json_integer_value(json_object_get(job, "late_drops")), 0);
    int64_t expect[64];
    int ne = boundaries(log.frame_pts, log.nframes, 2000, expect);
    assert_same_keys(0, expect, ne);
    json_decref(jobs);
    free_output();
}
