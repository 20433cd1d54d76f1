/*
 * control/uploads/probe.c — is an uploaded file media weir can use?
 *
 *   open (container recognised?) -> stream info (tracks?) -> decode one
 *   frame of a video or audio track (decodable?) -> read every packet to
 *   the end (truncated? damaged?) -> the facts for asset.json
 *
 * Every step reads bytes a user sent: each failure becomes a sentence for
 * asset.json's "reason", never an abort.  libavformat's own probing limits
 * (probesize, analyzeduration) bound the work before the last step; the
 * last reads the file once, without decoding.
 *
 * Only plain media containers are opened.  Playlists and the like (HLS,
 * DASH, concat, image sequences) would make the demuxer open other files
 * or URLs named inside the upload, so the format is detected first, as
 * libavformat would detect it unrestricted, and anything not on the list
 * above fails before it is opened; the open itself allows the file
 * protocol only.
 */
#include "control/uploads/uploads.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>

/* Demuxers allowed, by libavformat name (av_match_name lists). */
static const char accepted_formats[] =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,flv,avi,mpeg,mpegvideo,mp3,aac,wav,w64,"
    "ogg,flac,h264,hevc,m4v,asf,mxf,ivf,obu,nut,dv,caf,aiff";

#define DECODE_PACKETS_MAX 500      /* packets of one track tried for a first frame */
#define TRUNCATION_SLACK_S 1.0      /* media may end this much before the declared end */

static int fail(char *reason, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *reason, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
    return AVERROR_INVALIDDATA;
}

static int usable(const AVStream *s)
{
    enum AVMediaType t = s->codecpar->codec_type;
    if (t == AVMEDIA_TYPE_VIDEO)
        return !(s->disposition & AV_DISPOSITION_ATTACHED_PIC);     /* cover art */
    return t == AVMEDIA_TYPE_AUDIO;
}

/* Decodes packets of stream `si` until a frame comes out: 1, 0 (none), or
 * a negative code.  Leaves the demuxer wherever it got to. */
static int decodes(AVFormatContext *fmt, int si)
{
    const AVCodecParameters *par = fmt->streams[si]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int r, got = 0, tried = 0;

    if (!codec || !pkt || !frame || !(dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(dec, par) < 0 || avcodec_open2(dec, codec, NULL) < 0) {
        got = 0;
        goto out;
    }
    while (!got && tried < DECODE_PACKETS_MAX && (r = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == si) {
            tried++;
            if (avcodec_send_packet(dec, pkt) >= 0 && avcodec_receive_frame(dec, frame) >= 0)
                got = 1;
        }
        av_packet_unref(pkt);
    }
    if (!got && avcodec_send_packet(dec, NULL) >= 0 && avcodec_receive_frame(dec, frame) >= 0)
        got = 1;                    /* a decoder with delay: drain it */
out:
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return got;
}

static json_t *track_json(const AVStream *s)
{
    const AVCodecParameters *par = s->codecpar;
    const char *type = av_get_media_type_string(par->codec_type);
    json_t *t = json_pack("{ss ss}", "type", type ? type : "unknown",
                          "codec", avcodec_get_name(par->codec_id));

    if (!t)
        return NULL;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
        AVRational fr = s->avg_frame_rate.num > 0 ? s->avg_frame_rate : s->r_frame_rate;
        json_object_set_new(t, "width", json_integer(par->width));
        json_object_set_new(t, "height", json_integer(par->height));
        if (fr.num > 0 && fr.den > 0)
            json_object_set_new(t, "fps", json_real(av_q2d(fr)));
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
        json_object_set_new(t, "sample_rate", json_integer(par->sample_rate));
        json_object_set_new(t, "channels", json_integer(par->ch_layout.nb_channels));
    }
    if (par->bit_rate > 0)
        json_object_set_new(t, "bitrate", json_integer(par->bit_rate));
    return t;
}

static json_t *info_json(const AVFormatContext *fmt, double duration_s)
{
    json_t *o = json_pack("{ss sf}", "container", fmt->iformat->name, "duration_s", duration_s);
    json_t *tracks = json_array();

    if (!o || !tracks) {
        json_decref(o);
        json_decref(tracks);
        return NULL;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *s = fmt->streams[i];
        if (!usable(s))
            continue;
        json_array_append_new(tracks, track_json(s));
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !json_object_get(o, "resolution")) {
            AVRational fr = s->avg_frame_rate.num > 0 ? s->avg_frame_rate : s->r_frame_rate;
            json_object_set_new(o, "resolution", json_sprintf("%dx%d", s->codecpar->width,
                                                               s->codecpar->height));
            if (fr.num > 0 && fr.den > 0)
                json_object_set_new(o, "fps", json_real(av_q2d(fr)));
        }
    }
    json_object_set_new(o, "tracks", tracks);
    return o;
}

/* Reads every packet from the start: the media's end in seconds, or an
 * error other than the end of the file. */
static int read_to_end(AVFormatContext *fmt, double *end_s)
{
    AVPacket *pkt = av_packet_alloc();
    int r;

    *end_s = 0;
    if (!pkt)
        return AVERROR(ENOMEM);
    if ((r = avformat_seek_file(fmt, -1, INT64_MIN, 0, INT64_MAX, 0)) < 0 &&
        (r = av_seek_frame(fmt, -1, 0, AVSEEK_FLAG_BYTE)) < 0) {
        av_packet_free(&pkt);
        return r;
    }
    while ((r = av_read_frame(fmt, pkt)) >= 0) {
        const AVStream *s = fmt->streams[pkt->stream_index];
        int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        if (usable(s) && ts != AV_NOPTS_VALUE) {
            double t = (double)(ts + pkt->duration - (s->start_time != AV_NOPTS_VALUE
                                                      ? s->start_time : 0)) * av_q2d(s->time_base);
            if (t > *end_s)
                *end_s = t;
        }
        if (pkt->flags & AV_PKT_FLAG_CORRUPT)
            r = AVERROR_INVALIDDATA;
        av_packet_unref(pkt);
        if (r < 0)
            break;
    }
    av_packet_free(&pkt);
    return r == AVERROR_EOF ? 0 : r;
}

/* The format libavformat picks for path with nothing restricted (as the
 * packager will open it), if it is an accepted one. */
static int detect(const char *path, const AVInputFormat **out, char *reason, size_t cap)
{
    AVIOContext *pb = NULL;
    char err[AV_ERROR_MAX_STRING_SIZE];
    int r;

    *out = NULL;                    /* else it is taken as already chosen */
    if ((r = avio_open(&pb, path, AVIO_FLAG_READ)) < 0)
        return r;
    r = av_probe_input_buffer2(pb, out, path, NULL, 0, 0);
    avio_closep(&pb);
    if (r < 0 || !*out) {
        if (r == AVERROR(ENOMEM))
            return r;
        av_strerror(r < 0 ? r : AVERROR_INVALIDDATA, err, sizeof err);
        return fail(reason, cap, "not a media file: no container format recognised (%s)", err);
    }
    if (av_match_list((*out)->name, accepted_formats, ',') <= 0)
        return fail(reason, cap, "%s files are not accepted as uploads", (*out)->name);
    return 0;
}

int weir_upload_probe(const char *path, json_t **info, char *reason, size_t cap)
{
    AVFormatContext *fmt = NULL;
    const AVInputFormat *iformat = NULL;    /* av_probe_input_buffer2 keeps a set one */
    AVDictionary *opts = NULL;
    char err[AV_ERROR_MAX_STRING_SIZE];
    int r, video = -1, audio = -1, any = 0;
    double declared, end_s = 0;

    *info = NULL;
    if ((r = detect(path, &iformat, reason, cap)) < 0)
        return r;
    if (av_dict_set(&opts, "protocol_whitelist", "file", 0) < 0 ||
        av_dict_set(&opts, "format_whitelist", accepted_formats, 0) < 0) {
        av_dict_free(&opts);
        return AVERROR(ENOMEM);
    }
    r = avformat_open_input(&fmt, path, iformat, &opts);
    av_dict_free(&opts);
    if (r < 0) {
        if (r == AVERROR(ENOMEM))
            return r;
        av_strerror(r, err, sizeof err);
        return fail(reason, cap, "the %s file cannot be opened: truncated or damaged? (%s)",
                    iformat->name, err);
    }
    if ((r = avformat_find_stream_info(fmt, NULL)) < 0) {
        av_strerror(r, err, sizeof err);
        r = fail(reason, cap, "the %s file's tracks cannot be read (%s)", fmt->iformat->name,
                 err);
        goto out;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        if (!usable(fmt->streams[i]))
            continue;
        any = 1;
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && video < 0)
            video = (int)i;
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && audio < 0)
            audio = (int)i;
    }
    if (!any) {
        r = fail(reason, cap, "the %s file has no audio or video track", fmt->iformat->name);
        goto out;
    }
    /* One decodable track is enough for a probe; the packager says what it
     * can carry. */
    if (!(video >= 0 && decodes(fmt, video) == 1)) {
        int a_ok;
        if (audio >= 0 && video >= 0)
            avformat_seek_file(fmt, -1, INT64_MIN, 0, INT64_MAX, 0);
        a_ok = audio >= 0 && decodes(fmt, audio) == 1;
        if (!a_ok) {
            const AVStream *s = fmt->streams[video >= 0 ? video : audio];
            r = fail(reason, cap, "no track can be decoded (%s %s%s)",
                     av_get_media_type_string(s->codecpar->codec_type),
                     avcodec_get_name(s->codecpar->codec_id),
                     avcodec_find_decoder(s->codecpar->codec_id) ? ": damaged data"
                                                                 : ": codec not supported");
            goto out;
        }
    }
    declared = fmt->duration > 0 ? (double)fmt->duration / AV_TIME_BASE : 0;
    if ((r = read_to_end(fmt, &end_s)) < 0) {
        if (r == AVERROR(ENOMEM))
            goto out;
        av_strerror(r, err, sizeof err);
        if (declared > 0)
            r = fail(reason, cap, "the file is truncated or damaged: the media stops at %.1f s "
                                  "of %.1f s (%s)", end_s, declared, err);
        else
            r = fail(reason, cap, "the file is damaged after %.1f s (%s)", end_s, err);
        goto out;
    }
    if (declared > 0 && end_s + TRUNCATION_SLACK_S < declared) {
        r = fail(reason, cap, "the file is truncated: the media stops at %.1f s of %.1f s",
                 end_s, declared);
        goto out;
    }
    if (!(*info = info_json(fmt, declared > 0 ? declared : end_s)))
        r = AVERROR(ENOMEM);
    else
        r = 0;
out:
    avformat_close_input(&fmt);
    return r;
}
