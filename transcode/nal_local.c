/*
 * transcode/nal_local.c — TEMPORARY stand-in for core/nal.c, which is being
 * written on another branch.  It implements the parts of core/nal.h that
 * the transcoder needs, for H.264 only (HEVC: AVERROR_PATCHWELCOME), so the
 * pipeline and its tests work before core/nal.c lands.  Delete this file
 * and its line in transcode/meson.build when core/nal.c is merged: the
 * pipeline codes against core/nal.h and needs no other change.
 */
#include "core/nal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/mem.h>

#define H264_NAL_SPS 7
#define H264_NAL_PPS 8
#define H264_NAL_AUD 9
#define MAX_PARAM_SETS 8

typedef struct nal_unit {
    const uint8_t *data;
    size_t len;
} nal_unit;

int weir_nal_is_annexb(const uint8_t *buf, size_t len)
{
    return (len >= 3 && buf[0] == 0 && buf[1] == 0 && buf[2] == 1) ||
           (len >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 1);
}

/* The next NAL unit at or after *pos: skips its start code, ends before the
 * next one (trailing zero bytes dropped).  0 when there is none left. */
static int next_nal(const uint8_t *buf, size_t len, size_t *pos, nal_unit *out)
{
    size_t i = *pos;
    while (i + 3 <= len && !(buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1))
        i++;
    if (i + 3 > len)
        return 0;
    size_t start = i + 3, end = start;
    while (end + 3 <= len && !(buf[end] == 0 && buf[end + 1] == 0 && buf[end + 2] == 1))
        end++;
    if (end + 3 > len)
        end = len;
    *pos = end;
    while (end > start && buf[end - 1] == 0)
        end--;
    out->data = buf + start;
    out->len = end - start;
    return 1;
}

/* ---- a minimal SPS reader, for the avcC high-profile extension ----------- */

typedef struct bits {
    const uint8_t *p;
    size_t len, pos;                /* in bits */
} bits;

static int bit(bits *b)
{
    if (b->pos >= b->len)
        return -1;
    int v = (b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1;
    b->pos++;
    return v;
}

static int ue(bits *b)
{
    int zeros = 0, v;
    while ((v = bit(b)) == 0)
        if (++zeros > 31)
            return -1;
    if (v < 0)
        return -1;
    unsigned long long x = 1;
    for (int i = 0; i < zeros; i++) {
        if ((v = bit(b)) < 0)
            return -1;
        x = (x << 1) | (unsigned)v;
    }
    return x - 1 > 255 ? -1 : (int)(x - 1);
}

/* chroma_format_idc and bit depths of an SPS NAL (with its header byte). */
static int sps_chroma(const nal_unit *sps, int *chroma, int *luma8, int *chroma8)
{
    uint8_t rbsp[64];
    size_t n = 0;
    for (size_t i = 1; i < sps->len && n < sizeof rbsp; i++) {
        if (i >= 3 && sps->data[i] == 3 && sps->data[i - 1] == 0 && sps->data[i - 2] == 0)
            continue;               /* emulation prevention */
        rbsp[n++] = sps->data[i];
    }
    bits b = { rbsp, n * 8, 24 };   /* after profile, constraints, level */
    *chroma = 1;
    *luma8 = *chroma8 = 0;
    if (ue(&b) < 0)                 /* seq_parameter_set_id */
        return AVERROR_INVALIDDATA;
    int profile = rbsp[0];
    if (profile == 100 || profile == 110 || profile == 122 || profile == 244 ||
        profile == 44 || profile == 83 || profile == 86 || profile == 118 || profile == 128 ||
        profile == 138 || profile == 139 || profile == 134 || profile == 135) {
        if ((*chroma = ue(&b)) < 0)
            return AVERROR_INVALIDDATA;
        if (*chroma == 3 && bit(&b) < 0)
            return AVERROR_INVALIDDATA;
        if ((*luma8 = ue(&b)) < 0 || (*chroma8 = ue(&b)) < 0)
            return AVERROR_INVALIDDATA;
    }
    return 0;
}

/* ---- avcC ------------------------------------------------------------------ */

static int write_avcc(const nal_unit *sps, int nsps, const nal_unit *pps, int npps,
                      uint8_t **out, size_t *out_len)
{
    size_t size = 7 + 4;
    int chroma, luma8, chroma8, ret;

    if (nsps == 0 || npps == 0 || sps[0].len < 4)
        return AVERROR_INVALIDDATA;
    for (int i = 0; i < nsps; i++)
        size += 2 + sps[i].len;
    for (int i = 0; i < npps; i++)
        size += 2 + pps[i].len;
    if ((ret = sps_chroma(&sps[0], &chroma, &luma8, &chroma8)) < 0)
        return ret;
    uint8_t *p = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE), *w = p;
    if (!p)
        return AVERROR(ENOMEM);
    int profile = sps[0].data[1];
    *w++ = 1;
    *w++ = sps[0].data[1];
    *w++ = sps[0].data[2];
    *w++ = sps[0].data[3];
    *w++ = 0xff;                    /* 4-byte NAL lengths */
    *w++ = 0xe0 | (uint8_t)nsps;
    for (int i = 0; i < nsps; i++) {
        *w++ = (uint8_t)(sps[i].len >> 8);
        *w++ = (uint8_t)sps[i].len;
        memcpy(w, sps[i].data, sps[i].len);
        w += sps[i].len;
    }
    *w++ = (uint8_t)npps;
    for (int i = 0; i < npps; i++) {
        *w++ = (uint8_t)(pps[i].len >> 8);
        *w++ = (uint8_t)pps[i].len;
        memcpy(w, pps[i].data, pps[i].len);
        w += pps[i].len;
    }
    if (profile != 66 && profile != 77 && profile != 88) {
        *w++ = 0xfc | (uint8_t)chroma;
        *w++ = 0xf8 | (uint8_t)luma8;
        *w++ = 0xf8 | (uint8_t)chroma8;
        *w++ = 0;                   /* no SPS extensions */
    }
    *out = p;
    *out_len = (size_t)(w - p);
    return 0;
}

int weir_nal_config_from_annexb(enum AVCodecID codec, const uint8_t *buf, size_t len,
                                uint8_t **out, size_t *out_len)
{
    nal_unit sps[MAX_PARAM_SETS], pps[MAX_PARAM_SETS], nal;
    int nsps = 0, npps = 0;
    size_t pos = 0;

    if (codec == AV_CODEC_ID_HEVC)
        return AVERROR_PATCHWELCOME;        /* core/nal.c does HEVC */
    if (codec != AV_CODEC_ID_H264)
        return AVERROR(EINVAL);
    while (next_nal(buf, len, &pos, &nal)) {
        if (nal.len == 0 || nal.len > 0xffff)
            continue;
        int type = nal.data[0] & 0x1f;
        if (type == H264_NAL_SPS && nsps < MAX_PARAM_SETS)
            sps[nsps++] = nal;
        else if (type == H264_NAL_PPS && npps < MAX_PARAM_SETS)
            pps[npps++] = nal;
    }
    return write_avcc(sps, nsps, pps, npps, out, out_len);
}

int weir_nal_annexb_to_iso(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    size_t pos = 0, size = 0;
    nal_unit nal;

    while (next_nal(buf, len, &pos, &nal))
        if (nal.len && (nal.data[0] & 0x1f) != H264_NAL_AUD)
            size += 4 + nal.len;
    uint8_t *p = av_malloc(size + AV_INPUT_BUFFER_PADDING_SIZE), *w = p;
    if (!p)
        return AVERROR(ENOMEM);
    pos = 0;
    while (next_nal(buf, len, &pos, &nal)) {
        if (!nal.len || (nal.data[0] & 0x1f) == H264_NAL_AUD)
            continue;
        *w++ = (uint8_t)(nal.len >> 24);
        *w++ = (uint8_t)(nal.len >> 16);
        *w++ = (uint8_t)(nal.len >> 8);
        *w++ = (uint8_t)nal.len;
        memcpy(w, nal.data, nal.len);
        w += nal.len;
    }
    memset(w, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    *out = p;
    *out_len = size;
    return 0;
}

/* ---- the stateful converter ------------------------------------------------ */

struct weir_nal_conv {
    AVCodecParameters *par;         /* ISO once known */
    int passthrough;
    int have_config;
};

int weir_nal_conv_new(const AVCodecParameters *par, weir_nal_conv **out)
{
    weir_nal_conv *c = calloc(1, sizeof *c);
    int ret = AVERROR(ENOMEM);
    if (!c || !(c->par = avcodec_parameters_alloc()))
        goto fail;
    if ((ret = avcodec_parameters_copy(c->par, par)) < 0)
        goto fail;
    int h26x = par->codec_id == AV_CODEC_ID_H264 || par->codec_id == AV_CODEC_ID_HEVC;
    int annexb = par->extradata_size == 0 ||
                 weir_nal_is_annexb(par->extradata, (size_t)par->extradata_size);
    if (!h26x || !annexb) {
        c->passthrough = c->have_config = 1;
    } else if (par->codec_id == AV_CODEC_ID_HEVC) {
        ret = AVERROR_PATCHWELCOME;
        goto fail;
    } else if (par->extradata_size > 0) {
        uint8_t *cfg;
        size_t n;
        if ((ret = weir_nal_config_from_annexb(par->codec_id, par->extradata,
                                               (size_t)par->extradata_size, &cfg, &n)) < 0)
            goto fail;
        av_freep(&c->par->extradata);
        c->par->extradata = cfg;
        c->par->extradata_size = (int)n;
        c->have_config = 1;
    }
    *out = c;
    return 0;
fail:
    weir_nal_conv_free(c);
    return ret;
}

int weir_nal_conv_packet(weir_nal_conv *c, AVPacket *pkt)
{
    uint8_t *iso;
    size_t n;
    int ret;

    if (c->passthrough)
        return 0;
    if (!weir_nal_is_annexb(pkt->data, (size_t)pkt->size))
        return AVERROR_INVALIDDATA;
    if (!c->have_config &&
        weir_nal_config_from_annexb(c->par->codec_id, pkt->data, (size_t)pkt->size, &iso,
                                    &n) == 0) {
        av_freep(&c->par->extradata);
        c->par->extradata = iso;
        c->par->extradata_size = (int)n;
        c->have_config = 1;
    }
    if ((ret = weir_nal_annexb_to_iso(pkt->data, (size_t)pkt->size, &iso, &n)) < 0)
        return ret;
    AVBufferRef *buf = av_buffer_create(iso, n + AV_INPUT_BUFFER_PADDING_SIZE,
                                        av_buffer_default_free, NULL, 0);
    if (!buf) {
        av_free(iso);
        return AVERROR(ENOMEM);
    }
    av_buffer_unref(&pkt->buf);
    pkt->buf = buf;
    pkt->data = iso;
    pkt->size = (int)n;
    return 0;
}

int weir_nal_conv_par(const weir_nal_conv *c, AVCodecParameters *par)
{
    if (!c->have_config)
        return AVERROR(EAGAIN);
    return avcodec_parameters_copy(par, c->par);
}

void weir_nal_conv_free(weir_nal_conv *c)
{
    if (!c)
        return;
    avcodec_parameters_free(&c->par);
    free(c);
}
