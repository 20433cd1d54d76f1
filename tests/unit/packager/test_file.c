/*
 * Unit tests: weir_packager_package_file — a media file into a VOD asset.
 * Real inputs made with the ffmpeg CLI (MP4 in ISO form; MPEG-TS in Annex B
 * and ADTS form), read back through libavformat's HLS and DASH demuxers.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "packager/packager.h"

static const weir_packager_settings cfg = {
    .segment_duration = 2000, .part_duration = 500, .window = 6, .linger = 0,
    .low_latency = 1, .record = 0,
};

static char tmp[64];

static void setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/weir-file-XXXXXX");
    cr_assert(mkdtemp(tmp));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(file, .init = setup, .fini = teardown);

static void make(const char *name, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -y "
             "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000 "
             "%s %s/%s", args, tmp, name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Frames of the first video stream, read through a demuxer. */
static int frames(const char *url, const char *demuxer)
{
    AVFormatContext *fmt = NULL;
    AVDictionary *opts = NULL;
    AVPacket *pkt = av_packet_alloc();
    int n = 0, v;

    av_dict_set(&opts, "allowed_extensions", "ALL", 0);
    cr_assert_eq(avformat_open_input(&fmt, url, av_find_input_format(demuxer), &opts), 0, "%s",
                 url);
    av_dict_free(&opts);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    cr_assert_geq(v, 0);
    while (av_read_frame(fmt, pkt) == 0) {
        n += pkt->stream_index == v;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[65536];
    size_t n;
    cr_assert(f, "%s", path);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int last_percent;
static void on_progress(void *arg, int percent)
{
    (void)arg;
    cr_assert_geq(percent, last_percent, "progress never goes back");
    last_percent = percent;
}

static void package_and_check(const char *input_name, const char *args)
{
    char in[128], dir[128], url[192];
    int64_t ms = 0;

    make(input_name, args);
    snprintf(in, sizeof in, "%s/%s", tmp, input_name);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    last_percent = 0;
    cr_assert_eq(weir_packager_package_file(in, dir, &cfg, &ms, on_progress, NULL), 0);
    cr_assert_eq(last_percent, 100);
    cr_assert(ms >= 4900 && ms <= 5100, "duration %lld ms", (long long)ms);

    snprintf(url, sizeof url, "%s/v0.m3u8", dir);
    const char *pl = slurp(url);
    cr_assert(strstr(pl, "#EXT-X-PLAYLIST-TYPE:VOD\n") && strstr(pl, "#EXT-X-ENDLIST\n"), "%s", pl);
    cr_assert(strstr(pl, "v0_1.m4s") && strstr(pl, "v0_3.m4s") && !strstr(pl, "v0_4.m4s"));
    cr_assert(!strstr(pl, "#EXT-X-PART"), "no parts in a VOD");
    snprintf(url, sizeof url, "%s/index.mpd", dir);
    cr_assert(strstr(slurp(url), "type=\"static\""));
    cr_assert(access(url, F_OK) == 0);
    snprintf(url, sizeof url, "%s/asset.json", dir);
    cr_assert(access(url, F_OK) != 0, "asset.json is the caller's");

    snprintf(url, sizeof url, "%s/index.m3u8", dir);
    cr_assert_eq(frames(url, "hls"), 125, "every frame of 5 s at 25 fps");
    snprintf(url, sizeof url, "%s/index.mpd", dir);
    cr_assert_eq(frames(url, "dash"), 125);
}

Test(file, mp4_becomes_hls_and_dash)
{
    package_and_check("in.mp4", "-t 5 -c:v libx264 -g 50 -bf 2 -c:a aac");
}

Test(file, mpegts_in_annexb_and_adts_form_is_converted)
{
    package_and_check("in.ts", "-t 5 -c:v libx264 -g 50 -c:a aac -f mpegts");
}

Test(file, not_media_is_invalid_data)
{
    char in[128], dir[128];
    snprintf(in, sizeof in, "%s/notes.txt", tmp);
    FILE *f = fopen(in, "w");
    fputs("this is not a video\n", f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    cr_assert_eq(weir_packager_package_file(in, dir, &cfg, NULL, NULL, NULL),
                 AVERROR_INVALIDDATA);
}

Test(file, truncated_mp4_fails_cleanly)
{
    char in[128], dir[128], cmd[256];
    make("whole.mp4", "-t 3 -c:v libx264 -c:a aac");
    snprintf(cmd, sizeof cmd, "head -c 20000 %s/whole.mp4 > %s/cut.mp4", tmp, tmp);
    cr_assert_eq(system(cmd), 0);
    snprintf(in, sizeof in, "%s/cut.mp4", tmp);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    cr_assert_lt(weir_packager_package_file(in, dir, &cfg, NULL, NULL, NULL), 0);
}

Test(file, audio_only_mp3_has_nothing_cmaf_carries)
{
    char in[128], dir[128], cmd[256];
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine -t 2 "
             "-c:a libmp3lame %s/a.mp3", tmp);
    cr_assert_eq(system(cmd), 0);
    snprintf(in, sizeof in, "%s/a.mp3", tmp);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    cr_assert_eq(weir_packager_package_file(in, dir, &cfg, NULL, NULL, NULL),
                 AVERROR_INVALIDDATA);
}

Test(file, hls_ts_adds_a_ts_folder)
{
    weir_packager_settings ts_cfg = cfg;
    char in[128], dir[128], url[192];
    int64_t ms = 0;

    ts_cfg.hls_ts = 1;
    make("in.mp4", "-t 5 -c:v libx264 -g 50 -bf 2 -c:a aac");
    snprintf(in, sizeof in, "%s/in.mp4", tmp);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    cr_assert_eq(weir_packager_package_file(in, dir, &ts_cfg, &ms, NULL, NULL), 0);

    snprintf(url, sizeof url, "%s/ts/v0.m3u8", dir);
    const char *pl = slurp(url);
    cr_assert(strstr(pl, "#EXT-X-VERSION:3\n") && strstr(pl, "#EXT-X-PLAYLIST-TYPE:VOD\n") &&
              strstr(pl, "#EXT-X-ENDLIST\n"), "%s", pl);
    cr_assert(strstr(pl, "v0_1.ts") && strstr(pl, "v0_3.ts") && !strstr(pl, "v0_4.ts"), "%s", pl);
    cr_assert(!strstr(pl, "#EXT-X-MAP"), "%s", pl);
    snprintf(url, sizeof url, "%s/ts/index.m3u8", dir);
    pl = slurp(url);
    cr_assert(strstr(pl, "mp4a.40.2") && strstr(pl, "\nv0.m3u8\n"), "%s", pl);
    cr_assert_eq(frames(url, "hls"), 125, "every frame of 5 s at 25 fps, over TS");
    /* The CMAF asset is untouched by it. */
    snprintf(url, sizeof url, "%s/index.m3u8", dir);
    cr_assert_eq(frames(url, "hls"), 125);
}

/* weir_packager_vod: an MP4's packets pushed as a transcode job's sink
 * would (the video twice, as two renditions, then the audio). */
Test(file, pushed_packets_become_a_vod_with_every_rendition)
{
    char in[128], dir[128], url[192];
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    weir_packager_vod *vod;
    int64_t ms = 0;

    make("push.mp4", "-t 5 -c:v libx264 -g 50 -bf 0 -c:a aac");
    snprintf(in, sizeof in, "%s/push.mp4", tmp);
    snprintf(dir, sizeof dir, "%s/asset", tmp);
    cr_assert_eq(avformat_open_input(&fmt, in, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    int a = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    cr_assert(v >= 0 && a >= 0);

    cr_assert_eq(weir_packager_vod_new(dir, &cfg, &vod), 0);
    cr_assert_eq(weir_packager_vod_track(vod, 1, fmt->streams[v]->codecpar,
                                         fmt->streams[v]->time_base), AVERROR(EINVAL),
                 "tracks come in order");
    for (int t = 0; t < 2; t++)
        cr_assert_eq(weir_packager_vod_track(vod, t, fmt->streams[v]->codecpar,
                                             fmt->streams[v]->time_base), 0);
    cr_assert_eq(weir_packager_vod_track(vod, 2, fmt->streams[a]->codecpar,
                                         fmt->streams[a]->time_base), 0);
    while (av_read_frame(fmt, pkt) == 0) {
        if (pkt->stream_index == v) {
            pkt->stream_index = 0;
            cr_assert_eq(weir_packager_vod_packet(vod, pkt), 0);
            pkt->stream_index = 1;
        } else {
            pkt->stream_index = 2;
        }
        cr_assert_eq(weir_packager_vod_packet(vod, pkt), 0);
        av_packet_unref(pkt);
    }
    cr_assert_eq(weir_packager_vod_track(vod, 3, fmt->streams[a]->codecpar,
                                         fmt->streams[a]->time_base), AVERROR(EINVAL),
                 "no track after the first packet");
    cr_assert_eq(weir_packager_vod_end(vod, &ms), 0);
    weir_packager_vod_free(vod);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    cr_assert(ms >= 4900 && ms <= 5100, "duration %lld ms", (long long)ms);

    snprintf(url, sizeof url, "%s/index.m3u8", dir);
    const char *master = slurp(url);
    int variants = 0;
    for (const char *p = master; (p = strstr(p, "#EXT-X-STREAM-INF:")); p++)
        variants++;
    cr_assert_eq(variants, 2, "%s", master);
    cr_assert_eq(frames(url, "hls"), 125);
    snprintf(url, sizeof url, "%s/v1.m3u8", dir);
    cr_assert(strstr(slurp(url), "#EXT-X-ENDLIST\n"));
    snprintf(url, sizeof url, "%s/index.mpd", dir);
    cr_assert_eq(frames(url, "dash"), 125);

    /* Nothing pushed: nothing to package. */
    cr_assert_eq(weir_packager_vod_new(dir, &cfg, &vod), 0);
    cr_assert_eq(weir_packager_vod_end(vod, NULL), AVERROR_INVALIDDATA);
    weir_packager_vod_free(vod);
}
