/*
 * Golden-file tests: packager playlists and MPDs, byte for byte (in the
 * spirit of FFmpeg's FATE hlsenc tests).
 *
 * The input is synthetic and so fully deterministic: codec parameters from
 * a one-frame ffmpeg encode (for a real SPS), then packets of made-up sizes
 * on an exact 25 fps / 48 kHz clock, fed with "now" following the media
 * clock from a fixed instant.  Any change in what the renderers write shows
 * up as a diff against tests/unit/packager/golden/.  After an intended
 * change, regenerate with:
 *
 *   WEIR_UPDATE_GOLDEN=1 meson test -C build-test packager/golden
 *
 * and review the diff of the golden files like code.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "packager/pres.h"

#define T0 1764400000000LL      /* 2025-11-29T07:06:40Z */

static AVCodecParameters *video_par, *audio_par;

/* H.264 parameters (avcC with a real SPS) from a one-frame encode. */
static void make_pars(void)
{
    char path[64], cmd[512];
    AVFormatContext *fmt = NULL;

    snprintf(path, sizeof path, "/tmp/weir-golden-%d.mp4", (int)getpid());
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -y -f lavfi "
             "-i testsrc=size=320x240:rate=25 -frames:v 1 -c:v libx264 -preset ultrafast "
             "-pix_fmt yuv420p -profile:v main %s", path);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(avformat_open_input(&fmt, path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    video_par = avcodec_parameters_alloc();
    avcodec_parameters_copy(video_par, fmt->streams[0]->codecpar);
    avformat_close_input(&fmt);
    unlink(path);

    static const uint8_t asc[] = { 0x11, 0x90 };    /* AAC-LC, 48 kHz, stereo */
    audio_par = avcodec_parameters_alloc();
    audio_par->codec_type = AVMEDIA_TYPE_AUDIO;
    audio_par->codec_id = AV_CODEC_ID_AAC;
    audio_par->sample_rate = 48000;
    av_channel_layout_default(&audio_par->ch_layout, 2);
    audio_par->extradata = av_mallocz(sizeof asc + AV_INPUT_BUFFER_PADDING_SIZE);
    memcpy(audio_par->extradata, asc, sizeof asc);
    audio_par->extradata_size = sizeof asc;
}

static void free_pars(void)
{
    avcodec_parameters_free(&video_par);
    avcodec_parameters_free(&audio_par);
}

TestSuite(golden, .init = make_pars, .fini = free_pars);

static const AVRational video_tb = { 1, 90000 }, audio_tb = { 1, 48000 };

static pkg_pres *new_pres(const weir_packager_settings *cfg)
{
    const AVCodecParameters *pars[2] = { video_par, audio_par };
    AVRational tbs[2] = { video_tb, audio_tb };
    pkg_pres *p = NULL;
    cr_assert_eq(pres_new("cam1", cfg, pars, tbs, 2, T0, 1000, &p), 0);
    return p;
}

/* Feeds ms of media: 25 fps video (a keyframe every 2 s, sizes that vary
 * with the frame) and 1024-sample AAC frames, interleaved by time, the
 * wall clock at t0 + media time.  Timestamps restart at 0 per call, as a
 * new publisher's do. */
static void feed_lagged(pkg_pres *p, int64_t t0, int64_t ms, int64_t audio_lag_ms)
{
    /* Audio that arrives audio_lag_ms late: at the cut-off the last of it
     * never came. */
    int64_t nv = ms * 25 / 1000, na = (ms - audio_lag_ms) * 48 / 1024, v = 0, a = 0;
    AVPacket *pkt = av_packet_alloc();

    while (v < nv || a < na) {
        int64_t vms = v * 40, ams = a * 1024 / 48;
        int video = v < nv && (a >= na || vms <= ams + audio_lag_ms);
        int size = video ? (v % 50 == 0 ? 9000 : 1500 + (int)(v % 7) * 150) : 350;
        cr_assert_eq(av_new_packet(pkt, size), 0);
        memset(pkt->data, 0, (size_t)size);
        if (video) {
            pkt->stream_index = 0;
            pkt->dts = pkt->pts = v * 3600;
            pkt->flags = v % 50 == 0 ? AV_PKT_FLAG_KEY : 0;
            v++;
        } else {
            pkt->stream_index = 1;
            pkt->dts = pkt->pts = a * 1024;
            pkt->flags = AV_PKT_FLAG_KEY;
            a++;
        }
        cr_assert_eq(pres_packet(p, pkt, t0 + (video ? vms : ams + audio_lag_ms)), 0);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
}

static void feed(pkg_pres *p, int64_t t0, int64_t ms)
{
    feed_lagged(p, t0, ms, 0);
}

/* Compares what p serves at `file` with golden/<name>. */
static void check(pkg_pres *p, const char *file, const weir_object_query *q, const char *name)
{
    const char *root = getenv("WEIR_SOURCE_ROOT");
    char path[1024], actual[64], cmd[2200];
    weir_object o = { 0 };
    FILE *f;

    cr_assert(root, "WEIR_SOURCE_ROOT not set");
    cr_assert_eq(pres_lookup(p, file, q, &o), 0, "%s", file);
    snprintf(path, sizeof path, "%s/tests/unit/packager/golden/%s", root, name);
    if (getenv("WEIR_UPDATE_GOLDEN")) {
        cr_assert(f = fopen(path, "wb"), "%s", path);
        fwrite(o.body->data, 1, o.body->size, f);
        fclose(f);
        weir_object_clear(&o);
        return;
    }
    snprintf(actual, sizeof actual, "/tmp/weir-golden-%d-actual", (int)getpid());
    cr_assert(f = fopen(actual, "wb"));
    fwrite(o.body->data, 1, o.body->size, f);
    fclose(f);
    weir_object_clear(&o);
    snprintf(cmd, sizeof cmd, "diff -u '%s' '%s' >&2", path, actual);
    int same = system(cmd) == 0;
    /* An MPD is XML first: xmllint must parse it. */
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", actual);
    int xml_ok = !strstr(name, ".mpd") || system(cmd) == 0;
    unlink(actual);
    cr_assert(xml_ok, "%s is not well-formed XML", file);
    cr_assert(same, "%s differs from golden/%s (diff above; WEIR_UPDATE_GOLDEN=1 to accept)",
              file, name);
}

Test(golden, live_low_latency)
{
    weir_packager_settings cfg = {
        .segment_duration = 2000, .part_duration = 500, .window = 3, .low_latency = 1,
    };
    pkg_pres *p = new_pres(&cfg);
    feed(p, T0, 9300);
    check(p, "index.m3u8", NULL, "live_ll_master.m3u8");
    check(p, "v0.m3u8", NULL, "live_ll_v0.m3u8");
    check(p, "a0.m3u8", NULL, "live_ll_a0.m3u8");
    check(p, "index.mpd", NULL, "live_ll.mpd");
    pres_free(p);
}

Test(golden, live_delta_update)
{
    weir_packager_settings cfg = {
        .segment_duration = 2000, .part_duration = 500, .window = 10, .low_latency = 1,
    };
    pkg_pres *p = new_pres(&cfg);
    feed(p, T0, 20300);
    weir_object_query q = { .msn = -1, .part = -1, .skip = 1 };
    check(p, "v0.m3u8", &q, "live_delta_v0.m3u8");
    pres_free(p);
}

Test(golden, ended_then_resumed)
{
    weir_packager_settings cfg = { .segment_duration = 2000, .part_duration = 500, .window = 10 };
    const AVCodecParameters *pars[2] = { video_par, audio_par };
    AVRational tbs[2] = { video_tb, audio_tb };
    pkg_pres *p = new_pres(&cfg);

    feed(p, T0, 6000);
    cr_assert_eq(pres_end(p, T0 + 6000), 0);
    check(p, "v0.m3u8", NULL, "ended_v0.m3u8");
    check(p, "index.mpd", NULL, "ended.mpd");
    /* Back 3 s later: live again, a discontinuity, a new Period. */
    cr_assert_eq(pres_resume(p, pars, tbs, 2, T0 + 9000), 0);
    feed(p, T0 + 9000, 4100);
    check(p, "v0.m3u8", NULL, "resumed_v0.m3u8");
    check(p, "a0.m3u8", NULL, "resumed_a0.m3u8");
    check(p, "index.mpd", NULL, "resumed.mpd");
    cr_assert_eq(pres_end(p, T0 + 13100), 0);
    check(p, "index.mpd", NULL, "resumed_ended.mpd");
    pres_free(p);
}

/* The segment numbers a media playlist lists, in order; returns how many. */
static int numbers_in(pkg_pres *p, const char *file, int64_t *out, int cap)
{
    weir_object o = { 0 };
    int n = 0;
    cr_assert_eq(pres_lookup(p, file, NULL, &o), 0);
    char *text = strndup((const char *)o.body->data, o.body->size);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] != '#' && n < cap)
            out[n++] = strtoll(strchr(line, '_') + 1, NULL, 10);
    free(text);
    weir_object_clear(&o);
    return n;
}

/* The publisher leaves while audio is 1.1 s behind video: video has cut its
 * last segment (1002, from 4.0 s) but no audio sample past 4.0 s ever came.
 * Audio is cut at the same instants anyway (segment 1001 ends at the same
 * boundary), and its playlist lists 1002 as EXT-X-GAP, so both playlists
 * count the same numbers, consecutively, across the comeback (a hole breaks
 * players: hls.js counts sequence numbers by position). */
Test(golden, a_lagging_track_keeps_numbers_consecutive_across_a_pause)
{
    weir_packager_settings cfg = { .segment_duration = 2000, .part_duration = 500, .window = 10 };
    const AVCodecParameters *pars[2] = { video_par, audio_par };
    AVRational tbs[2] = { video_tb, audio_tb };
    int64_t v[32], a[32];
    pkg_pres *p = new_pres(&cfg);

    feed_lagged(p, T0, 5000, 1100);
    cr_assert_eq(pres_pause(p, T0 + 5000), 0);
    cr_assert_eq(pres_resume(p, pars, tbs, 2, T0 + 7000), 0);
    feed_lagged(p, T0 + 7000, 4100, 0);
    cr_assert_eq(pres_end(p, T0 + 11100), 0);
    int nv = numbers_in(p, "v0.m3u8", v, 32), na = numbers_in(p, "a0.m3u8", a, 32);
    cr_assert_eq(nv, na, "v0 lists %d segments, a0 %d", nv, na);
    for (int i = 0; i < nv; i++) {
        cr_assert_eq(v[i], a[i], "segment %d: v0 %lld, a0 %lld", i, (long long)v[i],
                     (long long)a[i]);
        cr_assert_eq(v[i], 1000 + i, "numbers run on: %lld at %d", (long long)v[i], i);
    }
    check(p, "a0.m3u8", NULL, "lagging_a0.m3u8");
    pres_free(p);
}
