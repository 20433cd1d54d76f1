/*
 * transcode/thumbs.c — a VOD asset's poster and storyboard (the interface
 * and the files are described in transcode.h).
 *
 *   decoded frame (the transcode job's, or a keyframe of a scan)
 *     first frame: layout decided (tile size, interval, sheet), sheet allocated
 *     t >= poster time, no poster yet -> sws -> mjpeg -> bytes kept
 *     t >= tile i's time, tile i empty -> sws straight into the sheet's cell i
 *   finish: empty tiles repeat the last drawn one (a file shorter than it
 *     said), no poster yet -> the last frame; sheet -> mjpeg; three files
 *
 * The sheet is one YUVJ420P picture the size of every cell; frames are
 * scaled into their cell in place (even offsets keep the chroma planes
 * aligned), so a frame is never copied whole.  Only the last frame before
 * the poster's time is referenced, so a decoder's buffers are not held.
 *
 * Times are the frames' pts less the first frame's: a file's media time.
 */
#include "transcode/transcode.h"

#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#define MODULE "thumbs"
#define TILE_WIDTH_DEFAULT 160
#define MAX_TILES_DEFAULT 100
#define MIN_INTERVAL_DEFAULT 1000       /* ms */
#define JPEG_QUALITY 4                  /* mjpeg qscale: 2 (best) .. 31 */
#define VTT_CUE_MAX 96                  /* one cue's text, generously */

/* ---- layout (pure) ------------------------------------------------------------ */

static int even_down(int v)
{
    return v < 2 ? 2 : v & ~1;
}

/* Height of a picture width wide with the display aspect of w x h, sar. */
static int height_for(int width, int w, int h, AVRational sar)
{
    int64_t num = (int64_t)width * h * (sar.num > 0 ? sar.den : 1);
    int64_t den = (int64_t)w * (sar.num > 0 ? sar.num : 1);
    return even_down((int)((num + den / 2) / den));
}

int weir_storyboard_layout(int width, int height, AVRational sar, int64_t duration_ms,
                           int tile_w, int max_tiles, int64_t min_interval_ms,
                           weir_storyboard *out)
{
    if (width < 2 || height < 2 || duration_ms <= 0 || tile_w < 2 || max_tiles < 1 ||
        min_interval_ms <= 0)
        return AVERROR(EINVAL);
    memset(out, 0, sizeof *out);
    /* Never wider than the picture's display width. */
    int display_w = sar.num > 0 && sar.den > 0
                    ? (int)av_rescale(width, sar.num, sar.den) : width;
    out->tile_w = even_down(tile_w < display_w ? tile_w : display_w);
    out->tile_h = height_for(out->tile_w, width, height, sar);
    /* Whole seconds, so that the cues read well; long enough for max_tiles. */
    int64_t interval = min_interval_ms;
    int64_t need = (duration_ms + max_tiles - 1) / max_tiles;
    if (need > interval)
        interval = need;
    interval = (interval + 999) / 1000 * 1000;
    out->interval_ms = interval;
    out->duration_ms = duration_ms;
    out->tiles = (int)((duration_ms + interval - 1) / interval);
    out->columns = out->tiles < WEIR_STORYBOARD_COLUMNS ? out->tiles : WEIR_STORYBOARD_COLUMNS;
    out->rows = (out->tiles + out->columns - 1) / out->columns;
    return 0;
}

static int vtt_time(char *buf, size_t cap, int64_t ms)
{
    uint64_t u = ms < 0 ? 0 : (uint64_t)ms;
    return snprintf(buf, cap, "%02" PRIu64 ":%02u:%02u.%03u", u / 3600000,
                    (unsigned)(u / 60000 % 60), (unsigned)(u / 1000 % 60), (unsigned)(u % 1000));
}

int weir_storyboard_vtt(const weir_storyboard *sb, const char *image, char *buf, size_t cap)
{
    size_t len = 0;
    int n = snprintf(buf, cap, "WEBVTT\n");
    if (n < 0 || (size_t)n >= cap)
        return AVERROR(ENOSPC);
    len = (size_t)n;
    for (int i = 0; i < sb->tiles; i++) {
        char from[48], to[48];
        int64_t start = i * sb->interval_ms;
        int64_t end = start + sb->interval_ms;
        if (end > sb->duration_ms || i == sb->tiles - 1)
            end = sb->duration_ms;      /* the last cue ends with the media */
        vtt_time(from, sizeof from, start);
        vtt_time(to, sizeof to, end);
        n = snprintf(buf + len, cap - len, "\n%s --> %s\n%s#xywh=%d,%d,%d,%d\n", from, to, image,
                     i % sb->columns * sb->tile_w, i / sb->columns * sb->tile_h, sb->tile_w,
                     sb->tile_h);
        if (n < 0 || (size_t)n >= cap - len)
            return AVERROR(ENOSPC);
        len += (size_t)n;
    }
    return (int)len;
}

int64_t weir_poster_time_ms(int64_t duration_ms)
{
    int64_t t = duration_ms / 10;
    return duration_ms > 1000 && t < 1000 ? 1000 : t;
}

/* ---- the thumbnails of one asset ------------------------------------------------ */

struct weir_thumbs {
    weir_thumbs_opts o;
    char dir[4096];
    int err;                        /* the first error; reported by finish */
    int have_first;
    int64_t first_ms;
    weir_storyboard sb;
    AVFrame *sheet;                 /* YUVJ420P, columns x rows cells */
    int drawn;                      /* tiles 0 .. drawn-1 hold a frame */
    struct SwsContext *sws;         /* cached per source and target size */
    AVFrame *last;                  /* the last frame, while there is no poster */
    AVPacket *poster;               /* the poster's JPEG, once made */
};

int weir_thumbs_new(const weir_thumbs_opts *opts, weir_thumbs **out)
{
    weir_thumbs *t;

    if (!opts->dir || opts->duration_ms <= 0 || strlen(opts->dir) >= sizeof t->dir)
        return AVERROR(EINVAL);
    if (!(t = calloc(1, sizeof *t)))
        return AVERROR(ENOMEM);
    t->o = *opts;
    strcpy(t->dir, opts->dir);
    t->o.dir = t->dir;
    if (t->o.tile_width <= 0)
        t->o.tile_width = TILE_WIDTH_DEFAULT;
    if (t->o.max_tiles <= 0)
        t->o.max_tiles = MAX_TILES_DEFAULT;
    if (t->o.min_interval_ms <= 0)
        t->o.min_interval_ms = MIN_INTERVAL_DEFAULT;
    *out = t;
    return 0;
}

void weir_thumbs_free(weir_thumbs *t)
{
    if (!t)
        return;
    av_frame_free(&t->sheet);
    av_frame_free(&t->last);
    av_packet_free(&t->poster);
    sws_freeContext(t->sws);
    free(t);
}

/* Scales f into the w x h picture whose planes start at dst (YUVJ420P). */
static int scale_into(weir_thumbs *t, const AVFrame *f, uint8_t *const dst[4],
                      const int stride[4], int w, int h)
{
    t->sws = sws_getCachedContext(t->sws, f->width, f->height, f->format, w, h,
                                  AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL, NULL, NULL);
    if (!t->sws)
        return AVERROR(EINVAL);
    int r = sws_scale(t->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                      dst, stride);
    return r < 0 ? r : 0;
}

/* One picture as a JPEG: *out (OUT) a new packet, the caller's. */
static int encode_jpeg(const AVFrame *pic, AVPacket **out)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *enc = NULL;
    AVPacket *pkt = NULL;
    int r;

    if (!codec)
        return AVERROR_ENCODER_NOT_FOUND;
    if (!(enc = avcodec_alloc_context3(codec)) || !(pkt = av_packet_alloc())) {
        r = AVERROR(ENOMEM);
        goto out;
    }
    enc->width = pic->width;
    enc->height = pic->height;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational){ 1, 25 };
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * JPEG_QUALITY;
    if ((r = avcodec_open2(enc, codec, NULL)) < 0)
        goto out;
    AVFrame *f = av_frame_clone(pic);
    if (!f) {
        r = AVERROR(ENOMEM);
        goto out;
    }
    f->quality = enc->global_quality;
    f->pict_type = AV_PICTURE_TYPE_I;
    r = avcodec_send_frame(enc, f);
    av_frame_free(&f);
    if (r >= 0)
        r = avcodec_send_frame(enc, NULL);
    if (r >= 0)
        r = avcodec_receive_packet(enc, pkt);
    if (r >= 0) {
        *out = pkt;
        pkt = NULL;
    }
out:
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    return r;
}

static int make_poster(weir_thumbs *t, const AVFrame *f)
{
    AVRational sar = f->sample_aspect_ratio;
    int display_w = sar.num > 0 && sar.den > 0
                    ? (int)av_rescale(f->width, sar.num, sar.den) : f->width;
    int w = even_down(display_w < WEIR_POSTER_MAX_WIDTH ? display_w : WEIR_POSTER_MAX_WIDTH);
    int h = height_for(w, f->width, f->height, sar);
    AVFrame *pic = av_frame_alloc();
    int r;

    if (!pic)
        return AVERROR(ENOMEM);
    pic->format = AV_PIX_FMT_YUVJ420P;
    pic->width = w;
    pic->height = h;
    if ((r = av_frame_get_buffer(pic, 0)) >= 0 &&
        (r = scale_into(t, f, pic->data, pic->linesize, w, h)) >= 0)
        r = encode_jpeg(pic, &t->poster);
    av_frame_free(&pic);
    return r;
}

/* The first frame decides the layout and allocates the sheet. */
static int start(weir_thumbs *t, const AVFrame *f)
{
    int r = weir_storyboard_layout(f->width, f->height, f->sample_aspect_ratio,
                                   t->o.duration_ms, t->o.tile_width, t->o.max_tiles,
                                   t->o.min_interval_ms, &t->sb);
    if (r < 0)
        return r;
    if (!(t->sheet = av_frame_alloc()))
        return AVERROR(ENOMEM);
    t->sheet->format = AV_PIX_FMT_YUVJ420P;
    t->sheet->width = t->sb.columns * t->sb.tile_w;
    t->sheet->height = t->sb.rows * t->sb.tile_h;
    if ((r = av_frame_get_buffer(t->sheet, 0)) < 0)
        return r;
    /* Cells no tile fills (the last row's tail) are black, not noise. */
    memset(t->sheet->data[0], 16, (size_t)t->sheet->linesize[0] * t->sheet->height);
    memset(t->sheet->data[1], 128, (size_t)t->sheet->linesize[1] * t->sheet->height / 2);
    memset(t->sheet->data[2], 128, (size_t)t->sheet->linesize[2] * t->sheet->height / 2);
    return 0;
}

/* The planes of cell i of the sheet. */
static void cell(const weir_thumbs *t, int i, uint8_t *dst[4], int stride[4])
{
    int x = i % t->sb.columns * t->sb.tile_w, y = i / t->sb.columns * t->sb.tile_h;
    const AVFrame *s = t->sheet;
    dst[0] = s->data[0] + (size_t)y * s->linesize[0] + x;
    dst[1] = s->data[1] + (size_t)(y / 2) * s->linesize[1] + x / 2;
    dst[2] = s->data[2] + (size_t)(y / 2) * s->linesize[2] + x / 2;
    dst[3] = NULL;
    for (int p = 0; p < 3; p++)
        stride[p] = s->linesize[p];
    stride[3] = 0;
}

static void copy_cell(weir_thumbs *t, int from, int to)
{
    uint8_t *src[4], *dst[4];
    int ss[4], ds[4];
    cell(t, from, src, ss);
    cell(t, to, dst, ds);
    av_image_copy(dst, ds, (const uint8_t **)src, ss, AV_PIX_FMT_YUVJ420P, t->sb.tile_w,
                  t->sb.tile_h);
}

void weir_thumbs_frame(void *arg, const AVFrame *f, AVRational tb)
{
    weir_thumbs *t = arg;
    int64_t ts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    int r = 0;

    if (t->err < 0 || ts == AV_NOPTS_VALUE || f->width < 2 || f->height < 2)
        return;
    int64_t ms = av_rescale_q(ts, tb, (AVRational){ 1, 1000 });
    if (!t->have_first) {
        if ((r = start(t, f)) < 0)
            goto fail;
        t->have_first = 1;
        t->first_ms = ms;
    }
    ms -= t->first_ms;
    if (!t->poster) {
        if (ms >= weir_poster_time_ms(t->o.duration_ms)) {
            if ((r = make_poster(t, f)) < 0)
                goto fail;
            av_frame_free(&t->last);
        } else {
            if (!t->last && !(t->last = av_frame_alloc())) {
                r = AVERROR(ENOMEM);
                goto fail;
            }
            av_frame_unref(t->last);
            if ((r = av_frame_ref(t->last, f)) < 0)
                goto fail;
        }
    }
    /* A frame later than several tiles' times (sparse keyframes) fills each. */
    int first = t->drawn;
    while (t->drawn < t->sb.tiles && t->drawn * t->sb.interval_ms <= ms) {
        if (t->drawn == first) {
            uint8_t *dst[4];
            int stride[4];
            cell(t, t->drawn, dst, stride);
            if ((r = scale_into(t, f, dst, stride, t->sb.tile_w, t->sb.tile_h)) < 0)
                goto fail;
        } else {
            copy_cell(t, first, t->drawn);
        }
        t->drawn++;
    }
    return;
fail:
    t->err = r;
}

int weir_thumbs_scan_file(weir_thumbs *t, const char *path)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int r, v;

    if (!pkt || !f) {
        r = AVERROR(ENOMEM);
        goto out;
    }
    if ((r = avformat_open_input(&fmt, path, NULL, NULL)) < 0 ||
        (r = avformat_find_stream_info(fmt, NULL)) < 0)
        goto out;
    if ((r = v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0)) < 0)
        goto out;
    const AVCodec *codec = avcodec_find_decoder(fmt->streams[v]->codecpar->codec_id);
    if (!codec) {
        r = AVERROR_DECODER_NOT_FOUND;
        goto out;
    }
    if (!(dec = avcodec_alloc_context3(codec))) {
        r = AVERROR(ENOMEM);
        goto out;
    }
    if ((r = avcodec_parameters_to_context(dec, fmt->streams[v]->codecpar)) < 0)
        goto out;
    dec->pkt_timebase = fmt->streams[v]->time_base;
    dec->skip_frame = AVDISCARD_NONKEY;     /* the cheap pass: keyframes only */
    if ((r = avcodec_open2(dec, codec, NULL)) < 0)
        goto out;
    for (int eof = 0; !eof;) {
        if ((r = av_read_frame(fmt, pkt)) == AVERROR_EOF) {
            eof = 1;
            r = avcodec_send_packet(dec, NULL);
        } else if (r < 0) {
            goto out;
        } else if (pkt->stream_index != v || !(pkt->flags & AV_PKT_FLAG_KEY)) {
            av_packet_unref(pkt);
            continue;
        } else {
            r = avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA)
            goto out;
        while ((r = avcodec_receive_frame(dec, f)) >= 0) {
            if (f->pts == AV_NOPTS_VALUE)
                f->pts = f->best_effort_timestamp;
            weir_thumbs_frame(t, f, fmt->streams[v]->time_base);
            av_frame_unref(f);
        }
        if (r != AVERROR(EAGAIN) && r != AVERROR_EOF && r < 0 && r != AVERROR_INVALIDDATA)
            goto out;
    }
    r = 0;
out:
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return r;
}

/* Writes len bytes to dir/name through a temporary name. */
static int write_file(const weir_thumbs *t, const char *name, const void *p, size_t len)
{
    char path[4200], tmp[4210];
    FILE *fp;
    int r = 0;

    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(fp = fopen(tmp, "wb")))
        return AVERROR(errno);
    if (fwrite(p, 1, len, fp) != len)
        r = AVERROR(EIO);
    if (fclose(fp) != 0 && r == 0)
        r = AVERROR(errno);
    if (r == 0 && rename(tmp, path) < 0)
        r = AVERROR(errno);
    if (r < 0)
        unlink(tmp);
    return r;
}

int weir_thumbs_finish(weir_thumbs *t)
{
    AVPacket *sheet = NULL;
    char *vtt = NULL;
    int r;

    if (t->err < 0)
        return t->err;
    if (!t->drawn)
        return AVERROR_INVALIDDATA;
    if (!t->poster && (r = make_poster(t, t->last)) < 0)
        return r;
    for (int i = t->drawn; i < t->sb.tiles; i++)
        copy_cell(t, t->drawn - 1, i);
    size_t cap = 16 + (size_t)t->sb.tiles * VTT_CUE_MAX;
    if (!(vtt = malloc(cap)))
        return AVERROR(ENOMEM);
    if ((r = weir_storyboard_vtt(&t->sb, "storyboard.jpg", vtt, cap)) < 0)
        goto out;
    size_t vlen = (size_t)r;
    if ((r = encode_jpeg(t->sheet, &sheet)) < 0)
        goto out;
    if ((r = write_file(t, "poster.jpg", t->poster->data, (size_t)t->poster->size)) < 0 ||
        (r = write_file(t, "storyboard.jpg", sheet->data, (size_t)sheet->size)) < 0 ||
        (r = write_file(t, "storyboard.vtt", vtt, vlen)) < 0)
        goto out;
    weir_log_info(MODULE, "poster and storyboard written", WL_STR("dir", t->dir),
                  WL_INT("tiles", t->sb.tiles), WL_INT("interval_ms", t->sb.interval_ms));
out:
    if (r < 0)
        weir_log_error(MODULE, "cannot write thumbnails", WL_STR("dir", t->dir), WL_ERR(r));
    av_packet_free(&sheet);
    free(vtt);
    return r < 0 ? r : 0;
}
