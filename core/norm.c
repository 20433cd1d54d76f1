/*
 * core/norm.c — see norm.h.
 */
#include "core/norm.h"
#include "core/latm.h"
#include "core/nal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/bsf.h>
#include <libavutil/mem.h>

struct weir_norm {
    weir_nal_conv *nal;             /* H.264, HEVC: Annex B -> avcC/hvcC + lengths */
    AVBSFContext *adts;             /* AAC: ADTS -> AudioSpecificConfig + raw frames */
    weir_latm *latm;                /* AAC in LATM/LOAS -> the same (core/latm.h) */
    AVCodecParameters *par;         /* the bus's parameters; NULL until known */
};

/* n->par = a copy of par, with extradata replaced when given. */
static int set_par(weir_norm *n, const AVCodecParameters *par, const uint8_t *extradata,
                   size_t extradata_len)
{
    AVCodecParameters *p = avcodec_parameters_alloc();
    int r = AVERROR(ENOMEM);

    if (!p || (r = avcodec_parameters_copy(p, par)) < 0)
        goto fail;
    p->codec_tag = 0;           /* e.g. a TS stream_type: meaningless elsewhere */
    if (extradata) {
        av_freep(&p->extradata);
        p->extradata_size = 0;
        r = AVERROR(ENOMEM);
        if (!(p->extradata = av_mallocz(extradata_len + AV_INPUT_BUFFER_PADDING_SIZE)))
            goto fail;
        memcpy(p->extradata, extradata, extradata_len);
        p->extradata_size = (int)extradata_len;
    }
    n->par = p;
    return 0;
fail:
    avcodec_parameters_free(&p);
    return r;
}

int weir_norm_new(const AVCodecParameters *par, AVRational time_base, weir_norm **out)
{
    weir_norm *n = calloc(1, sizeof *n);
    const AVBitStreamFilter *f;
    int r;

    if (!n)
        return AVERROR(ENOMEM);
    switch (par->codec_id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
        r = weir_nal_conv_new(par, &n->nal);
        /* Already in ISO form (MP4, RTMP): known at once. */
        if (r >= 0) {
            AVCodecParameters *p = avcodec_parameters_alloc();
            if (!p)
                r = AVERROR(ENOMEM);
            else if (weir_nal_conv_par(n->nal, p) == 0)
                r = set_par(n, p, NULL, 0);
            avcodec_parameters_free(&p);
        }
        break;
    case AV_CODEC_ID_AAC:
        if (!(f = av_bsf_get_by_name("aac_adtstoasc"))) {
            r = AVERROR_BSF_NOT_FOUND;
            break;
        }
        if ((r = av_bsf_alloc(f, &n->adts)) < 0 ||
            (r = avcodec_parameters_copy(n->adts->par_in, par)) < 0)
            break;
        n->adts->time_base_in = time_base;
        if ((r = av_bsf_init(n->adts)) < 0)
            break;
        if (n->adts->par_out->extradata_size >= 2)     /* the demuxer had an ASC */
            r = set_par(n, n->adts->par_out, NULL, 0);
        break;
    case AV_CODEC_ID_AAC_LATM:
        /* Parameters come with the first StreamMuxConfig in the stream. */
        r = (n->latm = calloc(1, sizeof *n->latm)) ? 0 : AVERROR(ENOMEM);
        break;
    default:
        r = set_par(n, par, NULL, 0);
        break;
    }
    if (r < 0) {
        weir_norm_free(n);
        return r;
    }
    *out = n;
    return 0;
}

void weir_norm_free(weir_norm *n)
{
    if (!n)
        return;
    weir_nal_conv_free(n->nal);
    av_bsf_free(&n->adts);
    free(n->latm);
    avcodec_parameters_free(&n->par);
    free(n);
}

const AVCodecParameters *weir_norm_par(const weir_norm *n)
{
    return n->par;
}

/* Removes side data of one type (the ASC aac_adtstoasc attaches to its
 * first packet: the bus carries it as extradata, as RTMP does). */
static void drop_side_data(AVPacket *pkt, enum AVPacketSideDataType type)
{
    int k = 0;
    for (int i = 0; i < pkt->side_data_elems; i++) {
        if (pkt->side_data[i].type == type)
            av_freep(&pkt->side_data[i].data);
        else
            pkt->side_data[k++] = pkt->side_data[i];
    }
    pkt->side_data_elems = k;
}

static int adts_packet(weir_norm *n, AVPacket *pkt)
{
    int r;

    if ((r = av_bsf_send_packet(n->adts, pkt)) < 0) {
        av_packet_unref(pkt);
        return r;
    }
    if ((r = av_bsf_receive_packet(n->adts, pkt)) < 0)
        return r;       /* EAGAIN: nothing out; other: a bad ADTS frame, consumed */
    if (!n->par) {
        size_t len = 0;
        const uint8_t *asc = av_packet_get_side_data(pkt, AV_PKT_DATA_NEW_EXTRADATA, &len);
        if (asc && len >= 2 && (r = set_par(n, n->adts->par_out, asc, len)) < 0)
            return r;
    }
    drop_side_data(pkt, AV_PKT_DATA_NEW_EXTRADATA);
    return 0;
}

/* The bus's AAC parameters from the LATM config: what RTMP's AAC sequence
 * header gives (an ASC; frames of 1024 samples). */
static int latm_par(weir_norm *n)
{
    AVCodecParameters *p = avcodec_parameters_alloc();
    int r;

    if (!p)
        return AVERROR(ENOMEM);
    p->codec_type = AVMEDIA_TYPE_AUDIO;
    p->codec_id = AV_CODEC_ID_AAC;
    p->sample_rate = n->latm->sample_rate;
    p->frame_size = 1024;
    av_channel_layout_default(&p->ch_layout, n->latm->channels);
    r = set_par(n, p, n->latm->asc, (size_t)n->latm->asc_len);
    avcodec_parameters_free(&p);
    return r;
}

/* One LOAS frame -> one raw AAC frame, in place.  A config other than the
 * first one is dropped: the bus fixed the track's parameters at its first. */
static int latm_packet(weir_norm *n, AVPacket *pkt)
{
    AVBufferRef *buf = av_buffer_alloc((size_t)pkt->size + AV_INPUT_BUFFER_PADDING_SIZE);
    size_t len = 0;
    int r;

    if (!buf)
        return AVERROR(ENOMEM);
    r = weir_latm_loas_frame(n->latm, pkt->data, (size_t)pkt->size, buf->data,
                             (size_t)pkt->size, &len);
    if (r >= 0 && !n->par)
        r = latm_par(n);
    else if (r >= 0 && (n->par->extradata_size != n->latm->asc_len ||
                        memcmp(n->par->extradata, n->latm->asc, (size_t)n->latm->asc_len)))
        r = AVERROR_INVALIDDATA;
    if (r < 0) {
        av_buffer_unref(&buf);
        av_packet_unref(pkt);
        return r;
    }
    memset(buf->data + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    av_buffer_unref(&pkt->buf);
    pkt->buf = buf;
    pkt->data = buf->data;
    pkt->size = (int)len;
    return 0;
}

int weir_norm_packet(weir_norm *n, AVPacket *pkt)
{
    AVCodecParameters *p;
    int r;

    if (n->adts)
        return adts_packet(n, pkt);
    if (n->latm)
        return latm_packet(n, pkt);
    if (!n->nal)
        return 0;
    if ((r = weir_nal_conv_packet(n->nal, pkt)) < 0 || n->par)
        return r;
    if (!(p = avcodec_parameters_alloc()))
        return AVERROR(ENOMEM);
    if (weir_nal_conv_par(n->nal, p) == 0)
        r = set_par(n, p, NULL, 0);
    avcodec_parameters_free(&p);
    return r;
}
