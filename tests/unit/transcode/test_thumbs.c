/*
 * Unit tests for transcode/thumbs: the storyboard's layout (tile size,
 * interval, the tile bound), the WebVTT it writes (parsed back here: cues
 * contiguous from 0 to the end, each naming its own cell), the poster's
 * time, and weir_thumbs fed synthetic frames: the three files it writes
 * decode back (mjpeg) at the sizes the layout says, and each tile shows
 * the frame it was due.
 */
#include <criterion/criterion.h>

#include "transcode/transcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

static weir_storyboard layout(int w, int h, AVRational sar, int64_t ms)
{
    weir_storyboard sb;
    cr_assert_eq(weir_storyboard_layout(w, h, sar, ms, 160, 100, 1000, &sb), 0);
    return sb;
}

Test(storyboard, tiles_keep_the_display_aspect_and_never_exceed_the_picture)
{
    weir_storyboard sb = layout(1920, 1080, (AVRational){ 0, 1 }, 60000);
    cr_assert_eq(sb.tile_w, 160);
    cr_assert_eq(sb.tile_h, 90);
    sb = layout(320, 240, (AVRational){ 0, 1 }, 2000);
    cr_assert_eq(sb.tile_w, 160);
    cr_assert_eq(sb.tile_h, 120);
    /* Anamorphic 720x576 at 16:11 displays as 1047x576: 160 x 88. */
    sb = layout(720, 576, (AVRational){ 16, 11 }, 2000);
    cr_assert_eq(sb.tile_w, 160);
    cr_assert_eq(sb.tile_h, 88);
    /* Portrait, and a picture narrower than a tile. */
    sb = layout(1080, 1920, (AVRational){ 1, 1 }, 2000);
    cr_assert_eq(sb.tile_h, 284);
    sb = layout(97, 55, (AVRational){ 0, 1 }, 2000);
    cr_assert_eq(sb.tile_w, 96);
    cr_assert_eq(sb.tile_h % 2, 0);
}

Test(storyboard, the_interval_grows_in_whole_seconds_to_bound_the_tiles)
{
    weir_storyboard sb = layout(640, 360, (AVRational){ 0, 1 }, 2000);
    cr_assert_eq(sb.interval_ms, 1000);
    cr_assert_eq(sb.tiles, 2);
    cr_assert_eq(sb.columns, 2);
    cr_assert_eq(sb.rows, 1);
    sb = layout(640, 360, (AVRational){ 0, 1 }, 2500);
    cr_assert_eq(sb.tiles, 3);          /* the last second is a partial one */
    sb = layout(640, 360, (AVRational){ 0, 1 }, 100000);
    cr_assert_eq(sb.interval_ms, 1000);
    cr_assert_eq(sb.tiles, 100);
    cr_assert_eq(sb.columns, 10);
    cr_assert_eq(sb.rows, 10);
    sb = layout(640, 360, (AVRational){ 0, 1 }, 100001);
    cr_assert_eq(sb.interval_ms, 2000);
    cr_assert_eq(sb.tiles, 51);
    cr_assert_eq(sb.rows, 6);
    /* Two hours: still at most 100 tiles. */
    sb = layout(640, 360, (AVRational){ 0, 1 }, 7200000);
    cr_assert_eq(sb.interval_ms, 72000);
    cr_assert_leq(sb.tiles, 100);
    cr_assert_geq((int64_t)sb.tiles * sb.interval_ms, 7200000);
    weir_storyboard bad;
    cr_assert_lt(weir_storyboard_layout(640, 360, (AVRational){ 0, 1 }, 0, 160, 100, 1000, &bad),
                 0);
    cr_assert_lt(weir_storyboard_layout(0, 360, (AVRational){ 0, 1 }, 10, 160, 100, 1000, &bad),
                 0);
    cr_assert_lt(weir_storyboard_layout(640, 360, (AVRational){ 0, 1 }, 10, 160, 0, 1000, &bad),
                 0);
}

static int64_t parse_ts(const char *s)
{
    int h, m, sec, ms;
    cr_assert_eq(sscanf(s, "%d:%d:%d.%d", &h, &m, &sec, &ms), 4, "%s", s);
    return ((int64_t)h * 3600 + m * 60 + sec) * 1000 + ms;
}

/* Parses the VTT back: cues contiguous from 0 to duration, cell i at its
 * place in the sheet. */
static void check_vtt(const weir_storyboard *sb, const char *vtt)
{
    cr_assert_eq(strncmp(vtt, "WEBVTT\n\n", 8), 0);
    const char *p = vtt + 8;
    int64_t expect = 0;
    int i = 0;
    while (*p) {
        char a[32], b[32];
        int x, y, w, h, used = 0;
        cr_assert_eq(sscanf(p, "%31s --> %31s\nstoryboard.jpg#xywh=%d,%d,%d,%d\n%n", a, b, &x,
                            &y, &w, &h, &used), 6, "cue %d: %.60s", i, p);
        cr_assert_gt(used, 0);
        cr_assert_eq(parse_ts(a), expect, "cue %d", i);
        cr_assert_gt(parse_ts(b), parse_ts(a));
        expect = parse_ts(b);
        cr_assert_eq(x, i % sb->columns * sb->tile_w);
        cr_assert_eq(y, i / sb->columns * sb->tile_h);
        cr_assert_eq(w, sb->tile_w);
        cr_assert_eq(h, sb->tile_h);
        p += used;
        if (*p == '\n')
            p++;
        i++;
    }
    cr_assert_eq(i, sb->tiles);
    cr_assert_eq(expect, sb->duration_ms);
}

Test(storyboard, vtt_cues_cover_the_duration)
{
    static char buf[65536];
    const int64_t durations[] = { 1, 999, 2000, 2500, 61234, 100001, 3725500 };
    for (size_t k = 0; k < sizeof durations / sizeof durations[0]; k++) {
        weir_storyboard sb = layout(640, 360, (AVRational){ 0, 1 }, durations[k]);
        int n = weir_storyboard_vtt(&sb, "storyboard.jpg", buf, sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq((size_t)n, strlen(buf));
        check_vtt(&sb, buf);
    }
    weir_storyboard sb = layout(640, 360, (AVRational){ 0, 1 }, 3725500);
    cr_assert_eq(weir_storyboard_vtt(&sb, "storyboard.jpg", buf, sizeof buf), (int)strlen(buf));
    cr_assert(strstr(buf, "01:02:04.000 --> 01:02:05.500\n"), "%s", buf);
    cr_assert_eq(weir_storyboard_vtt(&sb, "storyboard.jpg", buf, 64), AVERROR(ENOSPC));
}

Test(storyboard, poster_time)
{
    cr_assert_eq(weir_poster_time_ms(2000), 1000);
    cr_assert_eq(weir_poster_time_ms(60000), 6000);
    cr_assert_eq(weir_poster_time_ms(800), 80);
}

/* ---- weir_thumbs over synthetic frames ---------------------------------------- */

/* A YUV420P frame whose luma is `level` everywhere. */
static AVFrame *flat(int w, int h, int level, int64_t pts)
{
    AVFrame *f = av_frame_alloc();
    cr_assert(f);
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    cr_assert_geq(av_frame_get_buffer(f, 0), 0);
    for (int y = 0; y < h; y++)
        memset(f->data[0] + y * f->linesize[0], level, (size_t)w);
    for (int y = 0; y < h / 2; y++) {
        memset(f->data[1] + y * f->linesize[1], 128, (size_t)w / 2);
        memset(f->data[2] + y * f->linesize[2], 128, (size_t)w / 2);
    }
    f->pts = pts;
    return f;
}

/* Decodes dir/name (a JPEG) into a new frame. */
static AVFrame *decode_jpeg(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "%s", path);
    static uint8_t data[1 << 20];
    size_t n = fread(data, 1, sizeof data, fp);
    fclose(fp);
    cr_assert_gt(n, 100);
    cr_assert(data[0] == 0xFF && data[1] == 0xD8, "%s is not a JPEG", name);
    const AVCodec *c = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *dec = avcodec_alloc_context3(c);
    cr_assert_eq(avcodec_open2(dec, c, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    cr_assert_eq(av_new_packet(pkt, (int)n), 0);
    memcpy(pkt->data, data, n);
    AVFrame *f = av_frame_alloc();
    cr_assert_eq(avcodec_send_packet(dec, pkt), 0);
    cr_assert_eq(avcodec_receive_frame(dec, f), 0);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return f;
}

static int luma_at(const AVFrame *f, int x, int y)
{
    return f->data[0][y * f->linesize[0] + x];
}

/* The frames are limited range (16..235); JPEGs are full range. */
static int full(int limited)
{
    return (limited - 16) * 255 / 219;
}

Test(thumbs, frames_become_a_poster_a_sheet_and_a_vtt)
{
    char dir[] = "/tmp/weir-thumbs-XXXXXX";
    cr_assert(mkdtemp(dir));
    weir_thumbs *t;
    /* 3.5 s at 25 fps, 320x240; the frame at second s has luma 40 + 50 s. */
    cr_assert_eq(weir_thumbs_new(&(weir_thumbs_opts){ .dir = dir, .duration_ms = 3500 }, &t), 0);
    for (int i = 0; i < 88; i++) {
        AVFrame *f = flat(320, 240, 40 + 50 * (i / 25), 1000 + i * 40);   /* pts from 1 s */
        weir_thumbs_frame(t, f, (AVRational){ 1, 1000 });
        av_frame_free(&f);
    }
    cr_assert_eq(weir_thumbs_finish(t), 0);
    weir_thumbs_free(t);

    AVFrame *poster = decode_jpeg(dir, "poster.jpg");
    cr_assert_eq(poster->width, 320);
    cr_assert_eq(poster->height, 240);
    /* Poster at 1 s of media time: the second second's level. */
    cr_assert_leq(abs(luma_at(poster, 160, 120) - full(90)), 3, "%d", luma_at(poster, 160, 120));
    av_frame_free(&poster);

    AVFrame *sheet = decode_jpeg(dir, "storyboard.jpg");
    cr_assert_eq(sheet->width, 4 * 160);
    cr_assert_eq(sheet->height, 120);
    for (int i = 0; i < 4; i++)
        cr_assert_leq(abs(luma_at(sheet, i * 160 + 80, 60) - full(40 + 50 * i)), 3, "tile %d: %d", i,
                      luma_at(sheet, i * 160 + 80, 60));
    av_frame_free(&sheet);

    char path[512], vtt[4096] = "";
    snprintf(path, sizeof path, "%s/storyboard.vtt", dir);
    FILE *fp = fopen(path, "r");
    cr_assert(fp);
    size_t n = fread(vtt, 1, sizeof vtt - 1, fp);
    fclose(fp);
    vtt[n] = '\0';
    weir_storyboard sb = layout(320, 240, (AVRational){ 0, 1 }, 3500);
    check_vtt(&sb, vtt);

    const char *files[] = { "poster.jpg", "storyboard.jpg", "storyboard.vtt" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        cr_assert_eq(unlink(path), 0);
    }
    cr_assert_eq(rmdir(dir), 0);        /* nothing else (no temporary files) was left */
}

Test(thumbs, a_wide_picture_is_scaled_to_the_poster_limit_and_no_frame_is_an_error)
{
    char dir[] = "/tmp/weir-thumbs-XXXXXX";
    cr_assert(mkdtemp(dir));
    weir_thumbs *t;
    cr_assert_eq(weir_thumbs_new(&(weir_thumbs_opts){ .dir = dir, .duration_ms = 500 }, &t), 0);
    cr_assert_eq(weir_thumbs_finish(t), AVERROR_INVALIDDATA);
    AVFrame *f = flat(1920, 1080, 100, 0);
    weir_thumbs_frame(t, f, (AVRational){ 1, 90000 });
    av_frame_free(&f);
    cr_assert_eq(weir_thumbs_finish(t), 0);     /* the poster's time never came: the last frame */
    weir_thumbs_free(t);
    AVFrame *poster = decode_jpeg(dir, "poster.jpg");
    cr_assert_eq(poster->width, WEIR_POSTER_MAX_WIDTH);
    cr_assert_eq(poster->height, 720);
    av_frame_free(&poster);
    AVFrame *sheet = decode_jpeg(dir, "storyboard.jpg");
    cr_assert_eq(sheet->width, 160);
    cr_assert_eq(sheet->height, 90);
    av_frame_free(&sheet);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -r %s", dir);
    cr_assert_eq(system(cmd), 0);
}
