/*
 * ingest/rtmp/rtmp_flv.c — FLV audio/video tag bodies (legacy and
 * Enhanced RTMP), onMetaData, timestamp unwrapping.  What is accepted and
 * the error policy are in rtmp_flv.h.
 *
 * Codecs are rows of const tables (legacy ids, E-RTMP FourCCs); parsing
 * dispatches on the row, so adding a codec is adding a row.  Every read goes
 * through the bounds-checked cursor of rtmp_buf.h.
 *
 * Byte layouts (FLV 10.1 annex E; Enhanced RTMP v1/v2):
 *
 *   legacy video  [frame:4 codec:4] [AVCPacketType] [CTS:SI24] data...
 *   E-RTMP video  [1 frame:3 ptype:4] {ModEx...} [FourCC:32] [CTS:SI24]? data...
 *   legacy audio  [format:4 rate:2 size:1 type:1] [AACPacketType]? data...
 *   E-RTMP audio  [9:4 ptype:4] {ModEx...} [FourCC:32] data...
 *
 *   ModEx entry   [size-1:8 (255 -> [size-1:16])] data[size] [modExType:4 ptype:4]
 */
#include "ingest/rtmp/rtmp_flv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/mem.h>

#include "ingest/rtmp/rtmp_buf.h"

/* Frame types (high nibble / 3 bits). */
enum { FT_KEY = 1, FT_INTER = 2, FT_DISPOSABLE = 3, FT_GENERATED_KEY = 4, FT_COMMAND = 5 };
/* E-RTMP packet types, video. */
enum { VPT_SEQ_START = 0, VPT_CODED = 1, VPT_SEQ_END = 2, VPT_CODED_X = 3, VPT_METADATA = 4,
       VPT_MPEG2TS_SEQ_START = 5, VPT_MULTITRACK = 6, VPT_MODEX = 7 };
/* E-RTMP packet types, audio. */
enum { APT_SEQ_START = 0, APT_CODED = 1, APT_SEQ_END = 2, APT_MULTICHANNEL = 4,
       APT_MULTITRACK = 5, APT_MODEX = 7 };
/* Legacy packet types (AVCPacketType, AACPacketType). */
enum { LPT_SEQ_HEADER = 0, LPT_NALU = 1, LPT_EOS = 2 };

#define SOUND_FORMAT_MP3    2
#define SOUND_FORMAT_EX     9
#define SOUND_FORMAT_AAC    10
#define SOUND_FORMAT_MP3_8K 14

typedef struct codec_row {
    uint32_t key;               /* legacy codec id, or FourCC */
    enum AVCodecID id;
    int has_cts;                /* coded frames carry an SI24 CTS */
    int (*check_config)(const uint8_t *rec, size_t len);
} codec_row;

static int check_avcc(const uint8_t *p, size_t n) { return n >= 7 && p[0] == 1 ? 0 : AVERROR_INVALIDDATA; }
static int check_hvcc(const uint8_t *p, size_t n) { return n >= 23 && p[0] == 1 ? 0 : AVERROR_INVALIDDATA; }
/* marker bit 1, version 1 */
static int check_av1c(const uint8_t *p, size_t n) { return n >= 4 && p[0] == 0x81 ? 0 : AVERROR_INVALIDDATA; }
static int check_any(const uint8_t *p, size_t n) { (void)p; (void)n; return 0; }
static int check_asc(const uint8_t *p, size_t n) { return weir_flv_parse_asc(p, n, NULL, NULL, NULL); }
static int check_opus_head(const uint8_t *p, size_t n)
{
    return n >= 19 && memcmp(p, "OpusHead", 8) == 0 && p[9] != 0 ? 0 : AVERROR_INVALIDDATA;
}

static const codec_row legacy_video[] = {
    { 7,  AV_CODEC_ID_H264, 1, check_avcc },
    { 12, AV_CODEC_ID_HEVC, 1, check_hvcc },
};

static const codec_row ex_video[] = {
    { WEIR_FLV_FOURCC('a', 'v', 'c', '1'), AV_CODEC_ID_H264, 1, check_avcc },
    { WEIR_FLV_FOURCC('h', 'v', 'c', '1'), AV_CODEC_ID_HEVC, 1, check_hvcc },
    { WEIR_FLV_FOURCC('a', 'v', '0', '1'), AV_CODEC_ID_AV1,  0, check_av1c },
    { WEIR_FLV_FOURCC('v', 'p', '0', '9'), AV_CODEC_ID_VP9,  0, check_any },
    { WEIR_FLV_FOURCC('v', 'p', '0', '8'), AV_CODEC_ID_VP8,  0, check_any },
};

static const codec_row ex_audio[] = {
    { WEIR_FLV_FOURCC('m', 'p', '4', 'a'), AV_CODEC_ID_AAC,  0, check_asc },
    { WEIR_FLV_FOURCC('O', 'p', 'u', 's'), AV_CODEC_ID_OPUS, 0, check_opus_head },
    { WEIR_FLV_FOURCC('.', 'm', 'p', '3'), AV_CODEC_ID_MP3,  0, check_any },
};

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

static const codec_row *find_row(const codec_row *rows, size_t n, uint32_t key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (rows[i].key == key)
            return &rows[i];
    return NULL;
}

static void tag_reset(weir_flv_tag *tag, enum AVMediaType media)
{
    memset(tag, 0, sizeof *tag);
    tag->media = media;
    tag->codec_id = AV_CODEC_ID_NONE;
}

/* The rest of the body, from the cursor, is the tag's payload. */
static void tag_rest(weir_flv_tag *tag, const uint8_t *body, const weir_rtmp_rd *rd)
{
    tag->offset = (size_t)(rd->p - body);
    tag->size = weir_rtmp_rd_left(rd);
}

/* CONFIG or FRAME/SKIP for the payload at the cursor. */
static int tag_config(weir_flv_tag *tag, const codec_row *row, const uint8_t *body,
                      const weir_rtmp_rd *rd)
{
    int ret;

    tag->kind = WEIR_FLV_CONFIG;
    tag_rest(tag, body, rd);
    if ((ret = row->check_config(body + tag->offset, tag->size)) < 0)
        return ret;
    return 0;
}

static void tag_frame(weir_flv_tag *tag, const uint8_t *body, const weir_rtmp_rd *rd)
{
    tag_rest(tag, body, rd);
    tag->kind = tag->size ? WEIR_FLV_FRAME : WEIR_FLV_SKIP;
}

static int read_si24(weir_rtmp_rd *rd, int32_t *v)
{
    uint32_t u;
    int ret = weir_rtmp_rd_be24(rd, &u);

    if (ret == 0)
        *v = (int32_t)(u ^ 0x800000u) - 0x800000;  /* sign-extend 24 bits */
    return ret;
}

/* Skips ModEx entries; *ptype (in/out) is the packet type that follows.
 * `modex` is the packet type value meaning "ModEx" for this media. */
static int skip_modex(weir_rtmp_rd *rd, uint8_t modex, uint8_t *ptype)
{
    const uint8_t *skip;
    uint8_t b, u8;
    uint16_t u16;
    size_t size;
    int ret;

    while (*ptype == modex) {
        if ((ret = weir_rtmp_rd_u8(rd, &u8)) < 0)
            return ret;
        size = (size_t)u8 + 1;
        if (size == 256) {
            if ((ret = weir_rtmp_rd_be16(rd, &u16)) < 0)
                return ret;
            size = (size_t)u16 + 1;
        }
        if ((ret = weir_rtmp_rd_bytes(rd, size, &skip)) < 0 ||
            (ret = weir_rtmp_rd_u8(rd, &b)) < 0)
            return ret;
        *ptype = b & 0x0F;
    }
    return 0;
}

/* ---- video ------------------------------------------------------------------ */

static int parse_video_legacy(const uint8_t *body, weir_rtmp_rd *rd, uint8_t b0,
                              weir_flv_tag *tag)
{
    const codec_row *row = find_row(legacy_video, COUNT(legacy_video), b0 & 0x0F);
    uint8_t ptype;
    int ret;

    if (!row)
        return AVERROR_PATCHWELCOME;
    tag->codec_id = row->id;
    if ((ret = weir_rtmp_rd_u8(rd, &ptype)) < 0 || (ret = read_si24(rd, &tag->cts)) < 0)
        return ret;
    switch (ptype) {
    case LPT_SEQ_HEADER:
        tag->cts = 0;
        return tag_config(tag, row, body, rd);
    case LPT_NALU:
        tag_frame(tag, body, rd);
        return 0;
    case LPT_EOS:
        tag->kind = WEIR_FLV_EOS;
        tag->cts = 0;
        return 0;
    }
    return AVERROR_INVALIDDATA;
}

static int parse_video_ex(const uint8_t *body, weir_rtmp_rd *rd, uint8_t b0, weir_flv_tag *tag)
{
    const codec_row *row;
    uint8_t ptype = b0 & 0x0F;
    uint32_t fourcc;
    int ret;

    if ((ret = skip_modex(rd, VPT_MODEX, &ptype)) < 0)
        return ret;
    if (ptype == VPT_MULTITRACK)
        return AVERROR_PATCHWELCOME;
    if ((ret = weir_rtmp_rd_be32(rd, &fourcc)) < 0)
        return ret;
    tag->fourcc = fourcc;
    if (!(row = find_row(ex_video, COUNT(ex_video), fourcc)))
        return AVERROR_PATCHWELCOME;
    tag->codec_id = row->id;
    if ((b0 >> 4 & 7) == FT_COMMAND && ptype != VPT_SEQ_START && ptype != VPT_SEQ_END &&
        ptype != VPT_METADATA) {
        tag->kind = WEIR_FLV_SKIP;
        return 0;
    }
    switch (ptype) {
    case VPT_SEQ_START:
        return tag_config(tag, row, body, rd);
    case VPT_CODED:
        if (row->has_cts && (ret = read_si24(rd, &tag->cts)) < 0)
            return ret;
        tag_frame(tag, body, rd);
        return 0;
    case VPT_CODED_X:
        tag_frame(tag, body, rd);
        return 0;
    case VPT_SEQ_END:
        tag->kind = WEIR_FLV_EOS;
        return 0;
    case VPT_METADATA:
    case VPT_MPEG2TS_SEQ_START:
        tag->kind = WEIR_FLV_SKIP;
        return 0;
    }
    return AVERROR_INVALIDDATA;
}

int weir_flv_parse_video(const uint8_t *body, size_t len, weir_flv_tag *tag)
{
    weir_rtmp_rd rd = weir_rtmp_rd_init(body, len);
    uint8_t b0, ft;
    int ret;

    tag_reset(tag, AVMEDIA_TYPE_VIDEO);
    if ((ret = weir_rtmp_rd_u8(&rd, &b0)) < 0)
        return ret;
    if (b0 & 0x80) {
        ft = b0 >> 4 & 7;
        ret = parse_video_ex(body, &rd, b0, tag);
    } else {
        ft = b0 >> 4;
        if (ft == FT_COMMAND) {     /* a 1-byte video command, any codec */
            tag->kind = WEIR_FLV_SKIP;
            return 0;
        }
        ret = parse_video_legacy(body, &rd, b0, tag);
    }
    if (ret < 0)
        return ret;
    if (ft < FT_KEY || ft > FT_COMMAND)
        return AVERROR_INVALIDDATA;
    tag->keyframe = tag->kind == WEIR_FLV_FRAME && (ft == FT_KEY || ft == FT_GENERATED_KEY);
    return 0;
}

/* ---- audio ------------------------------------------------------------------ */

static int parse_audio_ex(const uint8_t *body, weir_rtmp_rd *rd, uint8_t b0, weir_flv_tag *tag)
{
    const codec_row *row;
    uint8_t ptype = b0 & 0x0F;
    uint32_t fourcc;
    int ret;

    if ((ret = skip_modex(rd, APT_MODEX, &ptype)) < 0)
        return ret;
    if (ptype == APT_MULTITRACK)
        return AVERROR_PATCHWELCOME;
    if ((ret = weir_rtmp_rd_be32(rd, &fourcc)) < 0)
        return ret;
    tag->fourcc = fourcc;
    if (!(row = find_row(ex_audio, COUNT(ex_audio), fourcc)))
        return AVERROR_PATCHWELCOME;
    tag->codec_id = row->id;
    switch (ptype) {
    case APT_SEQ_START:
        return tag_config(tag, row, body, rd);
    case APT_CODED:
        tag_frame(tag, body, rd);
        return 0;
    case APT_SEQ_END:
        tag->kind = WEIR_FLV_EOS;
        return 0;
    case APT_MULTICHANNEL:
        tag->kind = WEIR_FLV_SKIP;
        return 0;
    }
    return AVERROR_INVALIDDATA;
}

int weir_flv_parse_audio(const uint8_t *body, size_t len, weir_flv_tag *tag)
{
    static const int rates[4] = { 5512, 11025, 22050, 44100 };
    static const codec_row aac = { SOUND_FORMAT_AAC, AV_CODEC_ID_AAC, 0, check_asc };
    weir_rtmp_rd rd = weir_rtmp_rd_init(body, len);
    uint8_t b0, ptype;
    int ret;

    tag_reset(tag, AVMEDIA_TYPE_AUDIO);
    if ((ret = weir_rtmp_rd_u8(&rd, &b0)) < 0)
        return ret;
    switch (b0 >> 4) {
    case SOUND_FORMAT_EX:
        ret = parse_audio_ex(body, &rd, b0, tag);
        break;
    case SOUND_FORMAT_AAC:
        tag->codec_id = AV_CODEC_ID_AAC;
        if ((ret = weir_rtmp_rd_u8(&rd, &ptype)) < 0)
            return ret;
        if (ptype == LPT_SEQ_HEADER)
            ret = tag_config(tag, &aac, body, &rd);
        else if (ptype == LPT_NALU)
            tag_frame(tag, body, &rd);
        else
            ret = AVERROR_INVALIDDATA;
        break;
    case SOUND_FORMAT_MP3:
    case SOUND_FORMAT_MP3_8K:
        tag->codec_id = AV_CODEC_ID_MP3;
        tag_frame(tag, body, &rd);
        break;
    default:
        return AVERROR_PATCHWELCOME;
    }
    if (ret < 0)
        return ret;
    if (b0 >> 4 != SOUND_FORMAT_EX) {
        tag->flags_rate = (b0 >> 4) == SOUND_FORMAT_MP3_8K ? 8000 : rates[b0 >> 2 & 3];
        tag->flags_channels = (b0 & 1) ? 2 : 1;
    }
    tag->keyframe = tag->kind == WEIR_FLV_FRAME;
    return 0;
}

/* ---- codec parameters --------------------------------------------------------- */

typedef struct bitrd {
    const uint8_t *p;
    size_t bits, pos;
} bitrd;

static int bits_get(bitrd *b, int n, uint32_t *v)
{
    uint32_t x = 0;
    int i;

    if ((size_t)n > b->bits - b->pos)
        return AVERROR_INVALIDDATA;
    for (i = 0; i < n; i++, b->pos++)
        x = x << 1 | (b->p[b->pos >> 3] >> (7 - (b->pos & 7)) & 1);
    *v = x;
    return 0;
}

static int asc_object_type(bitrd *b, uint32_t *aot)
{
    uint32_t ext;
    int ret;

    if ((ret = bits_get(b, 5, aot)) < 0)
        return ret;
    if (*aot == 31) {
        if ((ret = bits_get(b, 6, &ext)) < 0)
            return ret;
        *aot = 32 + ext;
    }
    return 0;
}

static int asc_sample_rate(bitrd *b, uint32_t *rate)
{
    static const uint32_t rates[13] = {
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350
    };
    uint32_t idx;
    int ret;

    if ((ret = bits_get(b, 4, &idx)) < 0)
        return ret;
    if (idx == 15)
        return bits_get(b, 24, rate);
    if (idx >= 13)
        return AVERROR_INVALIDDATA;
    *rate = rates[idx];
    return 0;
}

int weir_flv_parse_asc(const uint8_t *asc, size_t len, int *sample_rate, int *channels,
                       int *object_type)
{
    /* channelConfiguration -> channels; 0: a PCE in the stream decides;
     * -1: reserved */
    static const int chans[16] = { 0, 1, 2, 3, 4, 5, 6, 8, -1, -1, -1, 7, 8, 24, 8, -1 };
    bitrd b = { asc, len * 8, 0 };
    uint32_t aot, rate, cfg, core_aot;
    int ret, nch;

    if ((ret = asc_object_type(&b, &aot)) < 0 || (ret = asc_sample_rate(&b, &rate)) < 0 ||
        (ret = bits_get(&b, 4, &cfg)) < 0)
        return ret;
    if (aot == 0 || rate == 0 || chans[cfg] < 0)
        return AVERROR_INVALIDDATA;
    nch = chans[cfg];
    if (aot == 5 || aot == 29) {    /* explicit SBR (HE-AAC) / PS (HE-AACv2) */
        if ((ret = asc_sample_rate(&b, &rate)) < 0 || (ret = asc_object_type(&b, &core_aot)) < 0)
            return ret;
        if (rate == 0)
            return AVERROR_INVALIDDATA;
        if (aot == 29 && nch == 1)
            nch = 2;                /* parametric stereo decodes to stereo */
    }
    if (sample_rate)
        *sample_rate = (int)rate;
    if (channels)
        *channels = nch;
    if (object_type)
        *object_type = (int)aot;
    return 0;
}

/* MPEG audio frame header -> rate, channels, layer.  0 or INVALIDDATA. */
static int mpa_header(const uint8_t *p, size_t n, int *rate, int *channels, int *layer)
{
    static const int rates[3] = { 44100, 48000, 32000 };
    uint32_t h;
    int version, lay, ri;

    if (n < 4)
        return AVERROR_INVALIDDATA;
    h = AV_RB32(p);
    version = h >> 19 & 3;      /* 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1 */
    lay = h >> 17 & 3;          /* 1: III, 2: II, 3: I */
    ri = h >> 10 & 3;
    if ((h & 0xFFE00000u) != 0xFFE00000u || version == 1 || lay == 0 || ri == 3 ||
        (h >> 12 & 15) == 15)
        return AVERROR_INVALIDDATA;
    *rate = rates[ri] >> (version == 3 ? 0 : version == 2 ? 1 : 2);
    *channels = (h >> 6 & 3) == 3 ? 1 : 2;
    *layer = 4 - lay;
    return 0;
}

static int set_extradata(AVCodecParameters *par, const uint8_t *p, size_t n)
{
    av_freep(&par->extradata);
    par->extradata_size = 0;
    if (!n)
        return 0;
    if (n > INT32_MAX - AV_INPUT_BUFFER_PADDING_SIZE)
        return AVERROR(EINVAL);
    if (!(par->extradata = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE)))
        return AVERROR(ENOMEM);
    memcpy(par->extradata, p, n);
    par->extradata_size = (int)n;
    return 0;
}

static void set_channels(AVCodecParameters *par, int n)
{
    av_channel_layout_uninit(&par->ch_layout);
    if (n > 0)
        av_channel_layout_default(&par->ch_layout, n);
}

static int audio_codecpar(const weir_flv_tag *tag, const uint8_t *rec, AVCodecParameters *par)
{
    int rate = 0, nch = 0, aot = 0, layer = 0, ret;

    switch (tag->codec_id) {
    case AV_CODEC_ID_AAC:
        if ((ret = weir_flv_parse_asc(rec, tag->size, &rate, &nch, &aot)) < 0)
            return ret;
        if (nch == 0)
            nch = tag->flags_channels ? tag->flags_channels : 2;
        par->profile = aot - 1;     /* FF_PROFILE_AAC_* are object type - 1 */
        break;
    case AV_CODEC_ID_OPUS:
        if ((ret = check_opus_head(rec, tag->size)) < 0)
            return ret;
        rate = 48000;               /* Opus always decodes at 48 kHz */
        nch = rec[9];
        break;
    case AV_CODEC_ID_MP3:
        if (mpa_header(rec, tag->size, &rate, &nch, &layer) == 0) {
            par->codec_id = layer == 1 ? AV_CODEC_ID_MP1 :
                            layer == 2 ? AV_CODEC_ID_MP2 : AV_CODEC_ID_MP3;
        } else if (tag->flags_rate) {
            rate = tag->flags_rate;
            nch = tag->flags_channels;
        } else {
            return AVERROR_INVALIDDATA;
        }
        break;
    default:
        return AVERROR(EINVAL);
    }
    par->sample_rate = rate;
    set_channels(par, nch);
    return 0;
}

int weir_flv_tag_codecpar(const weir_flv_tag *tag, const uint8_t *body, AVCodecParameters *par)
{
    const uint8_t *rec = body + tag->offset;
    int mp3_frame = tag->kind == WEIR_FLV_FRAME && tag->codec_id == AV_CODEC_ID_MP3;
    int ret;

    if (tag->kind != WEIR_FLV_CONFIG && !mp3_frame)
        return AVERROR(EINVAL);
    par->codec_type = tag->media;
    par->codec_id = tag->codec_id;
    if (tag->media == AVMEDIA_TYPE_AUDIO && (ret = audio_codecpar(tag, rec, par)) < 0)
        return ret;
    if (mp3_frame)
        return set_extradata(par, NULL, 0);
    return set_extradata(par, rec, tag->size);
}

int weir_flv_tag_packet(const weir_flv_tag *tag, AVBufferRef *buf, const uint8_t *body,
                        int64_t dts_ms, AVPacket *pkt)
{
    const uint8_t *data = body + tag->offset;
    int ret;

    av_packet_unref(pkt);
    if (tag->kind != WEIR_FLV_FRAME || tag->size > INT32_MAX - AV_INPUT_BUFFER_PADDING_SIZE)
        return AVERROR(EINVAL);
    if (buf) {
        if (data < buf->data ||
            (size_t)(data - buf->data) + tag->size + AV_INPUT_BUFFER_PADDING_SIZE > buf->size)
            return AVERROR(EINVAL);
        if (!(pkt->buf = av_buffer_ref(buf)))
            return AVERROR(ENOMEM);
        pkt->data = (uint8_t *)data;
        pkt->size = (int)tag->size;
    } else {
        if ((ret = av_new_packet(pkt, (int)tag->size)) < 0)
            return ret;
        memcpy(pkt->data, data, tag->size);
    }
    pkt->dts = dts_ms;
    pkt->pts = dts_ms + tag->cts;
    if (tag->keyframe)
        pkt->flags |= AV_PKT_FLAG_KEY;
    return 0;
}

/* ---- onMetaData --------------------------------------------------------------- */

/* A codec id given as a number (legacy id, or a FourCC as a number, as OBS
 * sends for E-RTMP) or as a 4-character string. */
static uint32_t meta_codec_id(const weir_amf_value *v)
{
    if (!v)
        return 0;
    if (v->type == WEIR_AMF_NUMBER && v->u.number >= 0 && v->u.number <= UINT32_MAX)
        return (uint32_t)v->u.number;
    if ((v->type == WEIR_AMF_STRING || v->type == WEIR_AMF_LONG_STRING) && v->u.str.len == 4)
        return AV_RB32(v->u.str.ptr);
    return 0;
}

int weir_flv_metadata_parse(const weir_amf_doc *doc, weir_flv_metadata *md)
{
    const weir_amf_value *v, *o = NULL, *s;
    const char *name, *enc;

    memset(md, 0, sizeof *md);
    for (v = doc->first; v; v = v->next) {
        name = weir_amf_string(v);
        if (name && strcmp(name, "onMetaData") == 0) {
            o = v->next;
            break;
        }
    }
    if (!o || (o->type != WEIR_AMF_OBJECT && o->type != WEIR_AMF_ECMA_ARRAY))
        return AVERROR(ENOENT);
    weir_amf_get_number(o, "width", &md->width);
    weir_amf_get_number(o, "height", &md->height);
    if (weir_amf_get_number(o, "framerate", &md->framerate) < 0)
        weir_amf_get_number(o, "fps", &md->framerate);
    weir_amf_get_number(o, "videodatarate", &md->video_kbps);
    weir_amf_get_number(o, "audiodatarate", &md->audio_kbps);
    weir_amf_get_number(o, "audiosamplerate", &md->audio_sample_rate);
    if (weir_amf_get_number(o, "audiochannels", &md->audio_channels) < 0 &&
        (s = weir_amf_get(o, "stereo")) && s->type == WEIR_AMF_BOOLEAN)
        md->audio_channels = s->u.boolean ? 2 : 1;
    md->video_codec_id = meta_codec_id(weir_amf_get(o, "videocodecid"));
    md->audio_codec_id = meta_codec_id(weir_amf_get(o, "audiocodecid"));
    if ((enc = weir_amf_get_string(o, "encoder")))
        snprintf(md->encoder, sizeof md->encoder, "%s", enc);
    return 0;
}

/* ---- timestamps ---------------------------------------------------------------- */

void weir_rtmp_ts_unwrap_init(weir_rtmp_ts_unwrap *u)
{
    memset(u, 0, sizeof *u);
}

int64_t weir_rtmp_ts_unwrap_next(weir_rtmp_ts_unwrap *u, uint32_t ts)
{
    uint32_t d;
    int64_t step;

    if (!u->started) {
        u->started = 1;
        u->last_raw = u->last_out = ts;
        return ts;
    }
    /* The difference mod 2^32, read as signed: the nearest congruent value. */
    d = ts - (uint32_t)u->last_raw;
    step = d < 0x80000000u ? (int64_t)d : (int64_t)d - ((int64_t)1 << 32);
    u->last_raw += step;
    if (u->last_raw > u->last_out)
        u->last_out = u->last_raw;
    return u->last_out;
}
