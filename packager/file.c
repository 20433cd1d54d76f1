/*
 * packager/file.c — a media file packaged as a VOD asset: the live path
 * (pres.c cuts, record.c writes) driven by a demuxer instead of the bus.
 *
 *   avformat reads packets -> weir_norm (Annex B, ADTS -> the bus's form)
 *     -> held until every track's parameters are known -> pres_packet
 *   end of file -> pres_end -> VOD playlists and MPD written (synchronously)
 *
 * Runs on the caller's thread; blocking by design (a worker's job).
 *
 * weir_packager_vod_* is the same end without the demuxer: a caller that
 * already has packets in the bus's form (a transcode job's sink) declares
 * the tracks, pushes packets in dts order and ends it.
 */
#include "packager/pres.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>

#define HOLD_MAX 4096               /* packets held while a track's parameters are unknown */

typedef struct file_job {
    AVFormatContext *fmt;
    weir_norm *norm[WEIR_STREAM_MAX_TRACKS];
    int bus[WEIR_STREAM_MAX_TRACKS];        /* input stream -> track index, or -1 */
    int ntracks;
    AVPacket **held;
    int nheld;
    pkg_pres *pres;
} file_job;

/* Every selected track knows its parameters. */
static int all_known(const file_job *j)
{
    for (unsigned i = 0; i < j->fmt->nb_streams && i < WEIR_STREAM_MAX_TRACKS; i++)
        if (j->norm[i] && !weir_norm_par(j->norm[i]))
            return 0;
    return 1;
}

static int start(file_job *j, const weir_packager_settings *cfg, const char *dir, int *result)
{
    const AVCodecParameters *pars[WEIR_STREAM_MAX_TRACKS];
    AVRational tbs[WEIR_STREAM_MAX_TRACKS];
    int n = 0, r;

    for (unsigned i = 0; i < j->fmt->nb_streams && i < WEIR_STREAM_MAX_TRACKS; i++) {
        j->bus[i] = -1;
        if (!j->norm[i] || !weir_norm_par(j->norm[i]))
            continue;
        pars[n] = weir_norm_par(j->norm[i]);
        tbs[n] = j->fmt->streams[i]->time_base;
        j->bus[i] = n++;
    }
    if ((r = pres_new("vod", cfg, pars, tbs, n, 0, 1, &j->pres)) < 0)
        return r == AVERROR(EINVAL) ? AVERROR_INVALIDDATA : r;
    return rec_start(j->pres, dir, "vod", NULL, result);
}

static int feed(file_job *j, AVPacket *pkt)
{
    int in = pkt->stream_index;
    int64_t ms;

    if (j->bus[in] < 0)
        return 0;
    pkt->stream_index = j->bus[in];
    /* The presentation's clock is the media's: a VOD has no wall clock. */
    ms = pkt->dts == AV_NOPTS_VALUE ? 0
         : av_rescale_q(pkt->dts, j->fmt->streams[in]->time_base, (AVRational){ 1, 1000 });
    return pres_packet(j->pres, pkt, ms);
}

static int feed_held(file_job *j)
{
    int r = 0;
    for (int i = 0; i < j->nheld && r >= 0; i++)
        r = feed(j, j->held[i]);
    return r;
}

static void job_free(file_job *j)
{
    for (int i = 0; i < j->nheld; i++)
        av_packet_free(&j->held[i]);
    free(j->held);
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++)
        weir_norm_free(j->norm[i]);
    pres_free(j->pres);
    avformat_close_input(&j->fmt);
}

/* The asset's length: the end of the key track's last recorded segment. */
static int64_t pres_duration_ms(const pkg_pres *p)
{
    const pkg_track *t = &p->tracks[p->key];
    return t->nrec ? av_rescale(t->rec[t->nrec - 1].start_ts + t->rec[t->nrec - 1].duration_ts,
                                1000, t->timescale)
                   : 0;
}

int weir_packager_package_file(const char *input, const char *asset_dir,
                               const weir_packager_settings *settings, int64_t *duration_ms,
                               void (*progress)(void *arg, int percent), void *arg)
{
    weir_packager_settings cfg = *settings;
    file_job j = { 0 };
    AVPacket *pkt = av_packet_alloc();
    int r, result = AVERROR(EIO), last_percent = -1;

    cfg.low_latency = 0;            /* a VOD: no parts listed, nothing held */
    cfg.window = 1000000;           /* pres_listed: every segment */
    if (!pkt)
        return AVERROR(ENOMEM);
    if ((r = avformat_open_input(&j.fmt, input, NULL, NULL)) < 0 ||
        (r = avformat_find_stream_info(j.fmt, NULL)) < 0) {
        r = r == AVERROR(ENOMEM) ? r : AVERROR_INVALIDDATA;
        goto out;
    }
    for (unsigned i = 0; i < j.fmt->nb_streams && i < WEIR_STREAM_MAX_TRACKS; i++) {
        const AVCodecParameters *par = j.fmt->streams[i]->codecpar;
        if (par->codec_type != AVMEDIA_TYPE_VIDEO && par->codec_type != AVMEDIA_TYPE_AUDIO)
            continue;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO &&
            (j.fmt->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC))
            continue;           /* cover art */
        if ((r = weir_norm_new(par, j.fmt->streams[i]->time_base, &j.norm[i])) < 0)
            goto out;
    }
    if (mkdir(asset_dir, 0750) < 0 && errno != EEXIST) {
        r = AVERROR(errno);
        goto out;
    }
    while ((r = av_read_frame(j.fmt, pkt)) >= 0) {
        int in = pkt->stream_index;
        if (in >= WEIR_STREAM_MAX_TRACKS || !j.norm[in]) {
            av_packet_unref(pkt);
            continue;
        }
        if ((r = weir_norm_packet(j.norm[in], pkt)) < 0) {
            av_packet_unref(pkt);
            if (r == AVERROR(ENOMEM))
                goto out;
            continue;           /* a malformed packet: dropped, like live */
        }
        if (!j.pres) {
            /* Hold packets until every track's parameters are known. */
            AVPacket **grown;
            if (!all_known(&j) && j.nheld < HOLD_MAX) {
                if (!(grown = realloc(j.held, (size_t)(j.nheld + 1) * sizeof *grown))) {
                    r = AVERROR(ENOMEM);
                    goto out;
                }
                j.held = grown;
                if (!(j.held[j.nheld] = av_packet_clone(pkt))) {
                    r = AVERROR(ENOMEM);
                    goto out;
                }
                j.nheld++;
                av_packet_unref(pkt);
                continue;
            }
            if ((r = start(&j, &cfg, asset_dir, &result)) < 0 || (r = feed_held(&j)) < 0)
                goto out;
        }
        r = feed(&j, pkt);
        av_packet_unref(pkt);
        if (r < 0)
            goto out;
        if (progress && j.fmt->duration > 0 && j.fmt->pb) {
            int64_t size = avio_size(j.fmt->pb), pos = avio_tell(j.fmt->pb);
            int percent = size > 0 ? (int)(pos * 100 / size) : 0;
            if (percent > 99)
                percent = 99;
            if (percent != last_percent)
                progress(arg, last_percent = percent);
        }
    }
    if (r != AVERROR_EOF)
        goto out;
    if (!j.pres && ((r = start(&j, &cfg, asset_dir, &result)) < 0 || (r = feed_held(&j)) < 0))
        goto out;
    if (!j.pres->started) {
        r = AVERROR_INVALIDDATA;        /* no keyframe on the key track */
        goto out;
    }
    pres_end(j.pres, 0);    /* writes the playlists; with no pool, before it returns */
    r = result;
    if (duration_ms)
        *duration_ms = pres_duration_ms(j.pres);
    if (r == 0 && progress)
        progress(arg, 100);
out:
    av_packet_free(&pkt);
    job_free(&j);
    return r;
}

/* ---- pushed packets ------------------------------------------------------------ */

struct weir_packager_vod {
    weir_packager_settings cfg;
    char dir[4096];
    AVCodecParameters *pars[WEIR_STREAM_MAX_TRACKS];
    AVRational tbs[WEIR_STREAM_MAX_TRACKS];
    int ntracks;
    pkg_pres *pres;
    int result;                     /* rec_start's: the last file's write */
};

int weir_packager_vod_new(const char *asset_dir, const weir_packager_settings *settings,
                          weir_packager_vod **out)
{
    weir_packager_vod *v = calloc(1, sizeof *v);

    if (!v)
        return AVERROR(ENOMEM);
    if (strlen(asset_dir) >= sizeof v->dir) {
        free(v);
        return AVERROR(ENAMETOOLONG);
    }
    strcpy(v->dir, asset_dir);
    v->cfg = *settings;
    v->cfg.low_latency = 0;         /* as in weir_packager_package_file */
    v->cfg.window = 1000000;
    v->result = AVERROR(EIO);
    *out = v;
    return 0;
}

int weir_packager_vod_track(void *arg, int index, const AVCodecParameters *par, AVRational tb)
{
    weir_packager_vod *v = arg;

    if (v->pres || index != v->ntracks || index >= WEIR_STREAM_MAX_TRACKS)
        return AVERROR(EINVAL);
    if (!(v->pars[index] = avcodec_parameters_alloc()))
        return AVERROR(ENOMEM);
    v->tbs[index] = tb;
    v->ntracks++;
    return avcodec_parameters_copy(v->pars[index], par);
}

int weir_packager_vod_packet(void *arg, const AVPacket *pkt)
{
    weir_packager_vod *v = arg;
    int r;

    if (pkt->stream_index < 0 || pkt->stream_index >= v->ntracks)
        return AVERROR(EINVAL);
    if (!v->pres) {
        if ((r = pres_new("vod", &v->cfg, (const AVCodecParameters *const *)v->pars, v->tbs,
                          v->ntracks, 0, 1, &v->pres)) < 0)
            return r == AVERROR(EINVAL) ? AVERROR_INVALIDDATA : r;
        if (mkdir(v->dir, 0750) < 0 && errno != EEXIST)
            return AVERROR(errno);
        if ((r = rec_start(v->pres, v->dir, "vod", NULL, &v->result)) < 0)
            return r;
    }
    /* The presentation's clock is the media's, as for a file. */
    int64_t ms = pkt->dts == AV_NOPTS_VALUE ? 0
                 : av_rescale_q(pkt->dts, v->tbs[pkt->stream_index], (AVRational){ 1, 1000 });
    return pres_packet(v->pres, pkt, ms);
}

int weir_packager_vod_end(weir_packager_vod *v, int64_t *duration_ms)
{
    if (!v->pres || !v->pres->started)
        return AVERROR_INVALIDDATA;     /* no packet, or no keyframe on the key track */
    pres_end(v->pres, 0);               /* no pool: the files are written before it returns */
    if (duration_ms)
        *duration_ms = pres_duration_ms(v->pres);
    return v->result;
}

void weir_packager_vod_free(weir_packager_vod *v)
{
    if (!v)
        return;
    pres_free(v->pres);
    for (int i = 0; i < v->ntracks; i++)
        avcodec_parameters_free(&v->pars[i]);
    free(v);
}
