/*
 * Unit tests for ingest/rtmp/rtmp_flv: legacy H.264 (sequence header, NALUs
 * with positive and negative CTS, end of sequence), Enhanced RTMP hvc1 /
 * av01 / avc1 (SequenceStart, CodedFrames, CodedFramesX, ModEx, Metadata,
 * Multitrack), AAC AudioSpecificConfig (LC, HE, HEv2), MP3 from the frame
 * header and from the flags, unknown codecs, truncation at every offset,
 * zero-copy packets, onMetaData, and timestamp unwrapping across 2^32.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>

#include "ingest/rtmp/rtmp_flv.h"

/* A real avcC: High profile, level 3.1, one SPS, one PPS. */
static const uint8_t avcc[] = {
    0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x0A,
    0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB,
    0x01, 0x00, 0x04, 0x68, 0xEB, 0xE3, 0xCB,
};

/* hvcC: version 1 + 22 bytes of fields + 0 arrays. */
static const uint8_t hvcc[23] = { 0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x5D, 0xF0, 0x00, 0xFC,
                                  0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 0x00 };

/* av1C: marker|version, profile/level, flags, no initial delay, + a
 * sequence header OBU. */
static const uint8_t av1c[] = { 0x81, 0x08, 0x0C, 0x00, 0x0A, 0x0B, 0x00, 0x00, 0x00,
                                0x24, 0xCF, 0x7F, 0x0D, 0xBF, 0xFF, 0x30, 0x08 };

typedef struct body {
    uint8_t d[512];
    size_t n;
} body;

static void add(body *b, const void *p, size_t n)
{
    cr_assert_leq(b->n + n, sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void add8(body *b, uint8_t v) { add(b, &v, 1); }
static void add24(body *b, uint32_t v) { add8(b, v >> 16); add8(b, v >> 8); add8(b, v); }

static AVCodecParameters *par_of(const weir_flv_tag *t, const uint8_t *body)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    cr_assert_not_null(par);
    cr_assert_eq(weir_flv_tag_codecpar(t, body, par), 0);
    return par;
}

/* Every prefix of a valid body either parses or fails cleanly, and any
 * region reported lies inside the prefix. */
static void truncations(const uint8_t *p, size_t n, int video)
{
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = malloc(k ? k : 1);
        weir_flv_tag t;
        memcpy(c, p, k);
        int ret = video ? weir_flv_parse_video(c, k, &t) : weir_flv_parse_audio(c, k, &t);
        if (ret == 0)
            cr_assert_leq(t.offset + t.size, k);
        free(c);
    }
}

/* ---- legacy H.264 --------------------------------------------------------------- */

Test(rtmp_flv, avc_sequence_header)
{
    body b = { .n = 0 };
    weir_flv_tag t;

    add8(&b, 0x17); add8(&b, 0x00); add24(&b, 0);
    add(&b, avcc, sizeof avcc);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    cr_assert_eq(t.media, AVMEDIA_TYPE_VIDEO);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(t.fourcc, 0);
    cr_assert_eq(t.offset, 5);
    cr_assert_eq(t.size, sizeof avcc);

    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->codec_type, AVMEDIA_TYPE_VIDEO);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(par->extradata_size, (int)sizeof avcc);
    cr_assert(memcmp(par->extradata, avcc, sizeof avcc) == 0);
    for (int i = 0; i < AV_INPUT_BUFFER_PADDING_SIZE; i++)
        cr_assert_eq(par->extradata[sizeof avcc + i], 0);
    /* again on the same par: extradata replaced, not leaked */
    cr_assert_eq(weir_flv_tag_codecpar(&t, b.d, par), 0);
    avcodec_parameters_free(&par);
    truncations(b.d, b.n, 1);

    b.d[5] = 0;     /* configurationVersion 0 */
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), AVERROR_INVALIDDATA);
    cr_assert_eq(weir_flv_parse_video(b.d, 8, &t), AVERROR_INVALIDDATA, "short record");
}

Test(rtmp_flv, avc_nalu_cts_and_packets)
{
    body b = { .n = 0 };
    weir_flv_tag t;
    AVPacket *pkt = av_packet_alloc();

    /* keyframe, CTS +66 */
    add8(&b, 0x17); add8(&b, 0x01); add24(&b, 66);
    add(&b, "\x00\x00\x00\x02\x65\x88", 6);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.keyframe, 1);
    cr_assert_eq(t.cts, 66);
    cr_assert_eq(t.offset, 5);
    cr_assert_eq(t.size, 6);

    /* zero-copy: the packet refers to the message buffer */
    AVBufferRef *buf = av_buffer_allocz(b.n + AV_INPUT_BUFFER_PADDING_SIZE);
    memcpy(buf->data, b.d, b.n);
    cr_assert_eq(weir_flv_tag_packet(&t, buf, buf->data, 1000, pkt), 0);
    cr_assert_eq(pkt->data, buf->data + 5);
    cr_assert_eq(pkt->size, 6);
    cr_assert_eq(pkt->dts, 1000);
    cr_assert_eq(pkt->pts, 1066);
    cr_assert(pkt->flags & AV_PKT_FLAG_KEY);
    cr_assert_eq(av_buffer_get_ref_count(buf), 2);
    /* a body outside buf is refused */
    cr_assert_eq(weir_flv_tag_packet(&t, buf, b.d, 0, pkt), AVERROR(EINVAL));
    av_buffer_unref(&buf);

    /* inter frame, negative CTS -33 (0xFFFFDF) */
    b.n = 0;
    add8(&b, 0x27); add8(&b, 0x01); add24(&b, 0xFFFFDF);
    add(&b, "\x00\x00\x00\x02\x41\x9A", 6);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.keyframe, 0);
    cr_assert_eq(t.cts, -33);
    cr_assert_eq(weir_flv_tag_packet(&t, NULL, b.d, 2000, pkt), 0);  /* copy */
    cr_assert_not_null(pkt->buf);
    cr_assert(memcmp(pkt->data, "\x00\x00\x00\x02\x41\x9A", 6) == 0);
    cr_assert_eq(pkt->dts, 2000);
    cr_assert_eq(pkt->pts, 1967);
    cr_assert_eq(pkt->flags & AV_PKT_FLAG_KEY, 0);
    truncations(b.d, b.n, 1);

    /* most negative CTS */
    b.d[2] = 0x80; b.d[3] = 0; b.d[4] = 0;
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.cts, -8388608);

    /* end of sequence; empty NALU packet is skipped */
    uint8_t eos[] = { 0x17, 0x02, 0, 0, 0 };
    cr_assert_eq(weir_flv_parse_video(eos, sizeof eos, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_EOS);
    cr_assert_eq(weir_flv_tag_packet(&t, NULL, eos, 0, pkt), AVERROR(EINVAL));
    eos[1] = 1;
    cr_assert_eq(weir_flv_parse_video(eos, sizeof eos, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP);
    eos[1] = 3;
    cr_assert_eq(weir_flv_parse_video(eos, sizeof eos, &t), AVERROR_INVALIDDATA);
    /* command frame */
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x57\x00", 2, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP);
    /* frame type 0 */
    eos[0] = 0x07; eos[1] = 1;
    cr_assert_eq(weir_flv_parse_video(eos, sizeof eos, &t), AVERROR_INVALIDDATA);
    av_packet_free(&pkt);
}

Test(rtmp_flv, unknown_codecs)
{
    static const uint8_t video[] = { 0x12, 0x14, 0x15, 0x13, 0x16, 0x10, 0x1F };  /* H.263, VP6, VP6A, screen, screen2, 0, 15 */
    static const uint8_t audio[] = { 0x0F, 0x1F, 0x3F, 0x4F, 0x5F, 0x6F, 0x7F, 0x8F, 0xBF, 0xFF };
    uint8_t b[16] = { 0 };
    weir_flv_tag t;

    for (size_t i = 0; i < sizeof video; i++) {
        b[0] = video[i];
        cr_assert_eq(weir_flv_parse_video(b, sizeof b, &t), AVERROR_PATCHWELCOME, "0x%02x", video[i]);
    }
    for (size_t i = 0; i < sizeof audio; i++) {
        b[0] = audio[i];
        cr_assert_eq(weir_flv_parse_audio(b, sizeof b, &t), AVERROR_PATCHWELCOME, "0x%02x", audio[i]);
    }
    cr_assert_eq(weir_flv_parse_video(b, 0, &t), AVERROR_INVALIDDATA, "empty body");
    cr_assert_eq(weir_flv_parse_audio(b, 0, &t), AVERROR_INVALIDDATA);
    /* E-RTMP: unknown FourCC, multitrack */
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x90vp10\x00", 6, &t), AVERROR_PATCHWELCOME);
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x96\x00hvc1", 6, &t), AVERROR_PATCHWELCOME);
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\x90" "fLaC", 5, &t), AVERROR_PATCHWELCOME);
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\x95\x00mp4a", 6, &t), AVERROR_PATCHWELCOME);
}

/* ---- Enhanced RTMP video ---------------------------------------------------------- */

Test(rtmp_flv, enhanced_hevc)
{
    body b = { .n = 0 };
    weir_flv_tag t;

    add8(&b, 0x90);                 /* ExHeader, key frame, SequenceStart */
    add(&b, "hvc1", 4);
    add(&b, hvcc, sizeof hvcc);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_HEVC);
    cr_assert_eq(t.fourcc, WEIR_FLV_FOURCC('h', 'v', 'c', '1'));
    cr_assert_eq(t.offset, 5);
    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_HEVC);
    cr_assert_eq(par->extradata_size, (int)sizeof hvcc);
    avcodec_parameters_free(&par);
    truncations(b.d, b.n, 1);

    /* CodedFrames: SI24 CTS */
    b.n = 0;
    add8(&b, 0x91); add(&b, "hvc1", 4); add24(&b, 0xFFFFF6); add(&b, "\x00\x00\x00\x01\x26", 5);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.keyframe, 1);
    cr_assert_eq(t.cts, -10);
    cr_assert_eq(t.offset, 8);
    cr_assert_eq(t.size, 5);
    truncations(b.d, b.n, 1);

    /* CodedFramesX, inter: no CTS */
    b.n = 0;
    add8(&b, 0xA3); add(&b, "hvc1", 4); add(&b, "\x00\x00\x00\x01\x02", 5);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.keyframe, 0);
    cr_assert_eq(t.cts, 0);
    cr_assert_eq(t.offset, 5);

    /* SequenceEnd, Metadata, MPEG2TSSequenceStart, command frame */
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x92hvc1", 5, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_EOS);
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x94hvc1\x02\x00\x09" "colorInfo", 17, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP);
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x95hvc1\x00", 6, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP);
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\xD1hvc1\x00", 6, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP);
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x98hvc1\x00", 6, &t), AVERROR_INVALIDDATA,
                 "packet type 8 is undefined");
    /* bad hvcC */
    cr_assert_eq(weir_flv_parse_video((const uint8_t *)"\x90hvc1\x01\x01", 7, &t), AVERROR_INVALIDDATA);
}

Test(rtmp_flv, enhanced_av1_and_avc)
{
    body b = { .n = 0 };
    weir_flv_tag t;

    add8(&b, 0x90); add(&b, "av01", 4); add(&b, av1c, sizeof av1c);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_AV1);
    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_AV1);
    cr_assert_eq(par->extradata_size, (int)sizeof av1c);
    cr_assert(memcmp(par->extradata, av1c, sizeof av1c) == 0);
    avcodec_parameters_free(&par);
    truncations(b.d, b.n, 1);
    b.d[5] = 0x01;  /* marker bit missing */
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), AVERROR_INVALIDDATA);

    /* av01 CodedFrames carry no CTS */
    b.n = 0;
    add8(&b, 0x91); add(&b, "av01", 4); add(&b, "\x12\x00\x0A", 3);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.cts, 0);
    cr_assert_eq(t.offset, 5);
    cr_assert_eq(t.size, 3);

    /* avc1 over E-RTMP, with a ModEx prefix (3 bytes of nanosecond offset) */
    b.n = 0;
    add8(&b, 0x97);                 /* key frame, ModEx */
    add8(&b, 2); add(&b, "\x00\x01\x02", 3);
    add8(&b, 0x01);                 /* modExType 0, then CodedFrames */
    add(&b, "avc1", 4); add24(&b, 40); add(&b, "\x00\x00\x00\x01\x65", 5);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.cts, 40);
    cr_assert_eq(t.offset, 13);
    truncations(b.d, b.n, 1);

    /* ModEx with the 16-bit size escape */
    b.n = 0;
    add8(&b, 0x97); add8(&b, 0xFF); add8(&b, 0x01); add8(&b, 0x00);   /* size 257 */
    uint8_t pad[257] = { 0 };
    add(&b, pad, sizeof pad);
    add8(&b, 0x00);                 /* SequenceStart */
    add(&b, "avc1", 4); add(&b, avcc, sizeof avcc);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    cr_assert_eq(t.size, sizeof avcc);

    /* legacy codec id 12: HEVC in the AVC layout */
    b.n = 0;
    add8(&b, 0x1C); add8(&b, 0); add24(&b, 0); add(&b, hvcc, sizeof hvcc);
    cr_assert_eq(weir_flv_parse_video(b.d, b.n, &t), 0);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_HEVC);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
}

/* ---- audio ----------------------------------------------------------------------- */

static void check_asc(const uint8_t *asc, size_t n, int rate, int ch, int profile)
{
    body b = { .n = 0 };
    weir_flv_tag t;

    add8(&b, 0xAF); add8(&b, 0x00); add(&b, asc, n);
    cr_assert_eq(weir_flv_parse_audio(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(t.offset, 2);
    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->codec_type, AVMEDIA_TYPE_AUDIO);
    cr_assert_eq(par->sample_rate, rate, "rate %d", par->sample_rate);
    cr_assert_eq(par->ch_layout.nb_channels, ch);
    cr_assert_eq(par->profile, profile);
    cr_assert_eq(par->extradata_size, (int)n);
    cr_assert(memcmp(par->extradata, asc, n) == 0);
    avcodec_parameters_free(&par);
    truncations(b.d, b.n, 0);
}

Test(rtmp_flv, aac)
{
    weir_flv_tag t;

    check_asc((const uint8_t *)"\x12\x10", 2, 44100, 2, FF_PROFILE_AAC_LOW);
    check_asc((const uint8_t *)"\x11\x90", 2, 48000, 2, FF_PROFILE_AAC_LOW);
    check_asc((const uint8_t *)"\x11\x88", 2, 48000, 1, FF_PROFILE_AAC_LOW);
    check_asc((const uint8_t *)"\x11\xB8", 2, 48000, 8, FF_PROFILE_AAC_LOW);      /* 7.1 */
    /* HE-AAC, explicit: core 22050 stereo, SBR 44100 */
    check_asc((const uint8_t *)"\x2B\x92\x08\x00", 4, 44100, 2, FF_PROFILE_AAC_HE);
    /* HE-AACv2: PS on mono core -> stereo */
    check_asc((const uint8_t *)"\xEB\x8A\x08\x00", 4, 44100, 2, FF_PROFILE_AAC_HE_V2);
    /* explicit 24-bit frequency */
    check_asc((const uint8_t *)"\x17\x80\x01\xF4\x10", 5, 1000, 2, FF_PROFILE_AAC_LOW);

    int rate, ch, aot;
    cr_assert_eq(weir_flv_parse_asc((const uint8_t *)"\x16\x90", 2, &rate, &ch, &aot), AVERROR_INVALIDDATA,
                 "frequency index 13 is reserved");
    cr_assert_eq(weir_flv_parse_asc((const uint8_t *)"\x12\x40", 2, &rate, &ch, &aot), AVERROR_INVALIDDATA,
                 "channel configuration 8 is reserved");
    cr_assert_eq(weir_flv_parse_asc((const uint8_t *)"\x12", 1, &rate, &ch, &aot), AVERROR_INVALIDDATA);
    cr_assert_eq(weir_flv_parse_asc((const uint8_t *)"\x12\x00", 2, &rate, &ch, &aot), 0);
    cr_assert_eq(ch, 0, "config 0: a PCE decides");
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\xAF\x00\x16\x90", 4, &t), AVERROR_INVALIDDATA);

    /* raw frame */
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\xAF\x01\x21\x10\x05", 5, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.keyframe, 1);
    cr_assert_eq(t.offset, 2);
    cr_assert_eq(t.size, 3);
    AVCodecParameters *none = avcodec_parameters_alloc();
    cr_assert_eq(weir_flv_tag_codecpar(&t, (const uint8_t *)"\xAF\x01\x21\x10\x05", none),
                 AVERROR(EINVAL), "an AAC frame is no config");
    avcodec_parameters_free(&none);
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\xAF\x02\x00", 3, &t), AVERROR_INVALIDDATA);
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\xAF\x01", 2, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_SKIP, "empty frame");

    /* E-RTMP mp4a */
    body b = { .n = 0 };
    add8(&b, 0x90); add(&b, "mp4a", 4); add(&b, "\x11\x90", 2);
    cr_assert_eq(weir_flv_parse_audio(b.d, b.n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_CONFIG);
    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->sample_rate, 48000);
    avcodec_parameters_free(&par);
    cr_assert_eq(weir_flv_parse_audio((const uint8_t *)"\x91mp4a\x21", 6, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.offset, 5);
}

Test(rtmp_flv, opus)
{
    body b = { .n = 0 };
    weir_flv_tag t;

    add8(&b, 0x90); add(&b, "Opus", 4);
    add(&b, "OpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00", 19);
    cr_assert_eq(weir_flv_parse_audio(b.d, b.n, &t), 0);
    cr_assert_eq(t.codec_id, AV_CODEC_ID_OPUS);
    AVCodecParameters *par = par_of(&t, b.d);
    cr_assert_eq(par->sample_rate, 48000);
    cr_assert_eq(par->ch_layout.nb_channels, 2);
    avcodec_parameters_free(&par);
    b.d[5] = 'X';
    cr_assert_eq(weir_flv_parse_audio(b.d, b.n, &t), AVERROR_INVALIDDATA);
    truncations(b.d, b.n, 0);
}

static void check_mp3(const uint8_t *p, size_t n, enum AVCodecID id, int rate, int ch)
{
    weir_flv_tag t;

    cr_assert_eq(weir_flv_parse_audio(p, n, &t), 0);
    cr_assert_eq(t.kind, WEIR_FLV_FRAME);
    cr_assert_eq(t.keyframe, 1);
    cr_assert_eq(t.offset, 1);
    AVCodecParameters *par = par_of(&t, p);
    cr_assert_eq(par->codec_id, id);
    cr_assert_eq(par->sample_rate, rate, "rate %d", par->sample_rate);
    cr_assert_eq(par->ch_layout.nb_channels, ch);
    cr_assert_eq(par->extradata_size, 0);
    avcodec_parameters_free(&par);
    truncations(p, n, 0);
}

Test(rtmp_flv, mp3)
{
    /* flags: MP3, 44 kHz, 16 bit, stereo; frame: MPEG-1 layer III 128k 44.1k joint stereo */
    check_mp3((const uint8_t *)"\x2F\xFF\xFB\x90\x64\x00", 6, AV_CODEC_ID_MP3, 44100, 2);
    /* MPEG-1 layer III 48 kHz mono (flags lie: stereo 44k) */
    check_mp3((const uint8_t *)"\x2F\xFF\xFB\x94\xC4\x00", 6, AV_CODEC_ID_MP3, 48000, 1);
    /* MPEG-2 layer III 24 kHz */
    check_mp3((const uint8_t *)"\x2F\xFF\xF3\x64\x00\x00", 6, AV_CODEC_ID_MP3, 24000, 2);
    /* MPEG-2.5 layer III 8 kHz, format 14 */
    check_mp3((const uint8_t *)"\xE2\xFF\xE3\x28\xC0\x00", 6, AV_CODEC_ID_MP3, 8000, 1);
    /* MPEG-1 layer II */
    check_mp3((const uint8_t *)"\x2F\xFF\xFD\x90\x04\x00", 6, AV_CODEC_ID_MP2, 44100, 2);
    /* no frame sync: from the flags (22 kHz mono) */
    check_mp3((const uint8_t *)"\x28\x00\x00\x00\x00", 5, AV_CODEC_ID_MP3, 22050, 1);
    check_mp3((const uint8_t *)"\xE3\x12", 2, AV_CODEC_ID_MP3, 8000, 2);
}

/* ---- onMetaData ---------------------------------------------------------------------- */

Test(rtmp_flv, metadata)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    weir_amf_doc doc;
    weir_flv_metadata md;

    weir_amf_put_string(&b, "@setDataFrame");
    weir_amf_put_string(&b, "onMetaData");
    weir_amf_put_ecma_begin(&b, 11);
    weir_amf_put_key(&b, "duration");        weir_amf_put_number(&b, 0);
    weir_amf_put_key(&b, "width");           weir_amf_put_number(&b, 1920);
    weir_amf_put_key(&b, "height");          weir_amf_put_number(&b, 1080);
    weir_amf_put_key(&b, "videodatarate");   weir_amf_put_number(&b, 6000);
    weir_amf_put_key(&b, "framerate");       weir_amf_put_number(&b, 59.94);
    weir_amf_put_key(&b, "videocodecid");    weir_amf_put_number(&b, WEIR_FLV_FOURCC('h', 'v', 'c', '1'));
    weir_amf_put_key(&b, "audiodatarate");   weir_amf_put_number(&b, 160);
    weir_amf_put_key(&b, "audiosamplerate"); weir_amf_put_number(&b, 48000);
    weir_amf_put_key(&b, "audiochannels");   weir_amf_put_number(&b, 2);
    weir_amf_put_key(&b, "audiocodecid");    weir_amf_put_number(&b, 10);
    weir_amf_put_key(&b, "encoder");         weir_amf_put_string(&b, "obs-output module (libobs version 30.2.3)");
    weir_amf_put_object_end(&b);
    cr_assert_eq(b.err, 0);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_flv_metadata_parse(&doc, &md), 0);
    cr_assert_eq(md.width, 1920);
    cr_assert_eq(md.height, 1080);
    cr_assert_eq(md.framerate, 59.94);
    cr_assert_eq(md.video_kbps, 6000);
    cr_assert_eq(md.audio_kbps, 160);
    cr_assert_eq(md.audio_sample_rate, 48000);
    cr_assert_eq(md.audio_channels, 2);
    cr_assert_eq(md.video_codec_id, WEIR_FLV_FOURCC('h', 'v', 'c', '1'));
    cr_assert_eq(md.audio_codec_id, 10);
    cr_assert_str_eq(md.encoder, "obs-output module (libobs version 30.2.3)");
    weir_amf_doc_free(&doc);

    /* plain onMetaData with an object, fps, a string codec id, stereo flag,
     * and an encoder name longer than the field */
    weir_rtmp_buf_reset(&b);
    weir_amf_put_string(&b, "onMetaData");
    weir_amf_put_object_begin(&b);
    weir_amf_put_key(&b, "fps");          weir_amf_put_number(&b, 25);
    weir_amf_put_key(&b, "videocodecid"); weir_amf_put_string(&b, "av01");
    weir_amf_put_key(&b, "stereo");       weir_amf_put_bool(&b, 0);
    weir_amf_put_key(&b, "encoder");
    weir_amf_put_string(&b, "Lavf61.7.100 with a name much longer than sixty-four bytes, truncated");
    weir_amf_put_object_end(&b);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_flv_metadata_parse(&doc, &md), 0);
    cr_assert_eq(md.framerate, 25);
    cr_assert_eq(md.video_codec_id, WEIR_FLV_FOURCC('a', 'v', '0', '1'));
    cr_assert_eq(md.audio_channels, 1);
    cr_assert_eq(md.width, 0);
    cr_assert_eq(strlen(md.encoder), 63);
    weir_amf_doc_free(&doc);

    weir_rtmp_buf_reset(&b);
    weir_amf_put_string(&b, "onTextData");
    weir_amf_put_object_begin(&b);
    weir_amf_put_object_end(&b);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_flv_metadata_parse(&doc, &md), AVERROR(ENOENT));
    weir_amf_doc_free(&doc);
    weir_rtmp_buf_reset(&b);
    weir_amf_put_string(&b, "onMetaData");
    weir_amf_put_number(&b, 1);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_flv_metadata_parse(&doc, &md), AVERROR(ENOENT));
    weir_amf_doc_free(&doc);
    weir_rtmp_buf_free(&b);
}

/* ---- timestamps --------------------------------------------------------------------- */

Test(rtmp_flv, timestamp_unwrap)
{
    weir_rtmp_ts_unwrap u;
    const int64_t W = (int64_t)1 << 32;

    weir_rtmp_ts_unwrap_init(&u);
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0xFFFFFF00u), 0xFFFFFF00ll, "first value as is");
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0xFFFFFFF0u), 0xFFFFFFF0ll);
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0x10), W + 0x10, "wrap");
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0x05), W + 0x10, "a step back is held");
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0x30), W + 0x30);
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0xFFFFFFF0u), W + 0x30,
                 "going back across the wrap is a step back, not a jump ahead");
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&u, 0x40), W + 0x40);
    /* march through two more wraps in big steps */
    uint32_t ts = 0x40;
    int64_t last = W + 0x40;
    for (int i = 0; i < 10; i++) {
        ts += 0x70000000u;
        int64_t now = weir_rtmp_ts_unwrap_next(&u, ts);
        cr_assert_eq(now, last + 0x70000000ll);
        last = now;
    }
    cr_assert_gt(last, 3 * W);

    weir_rtmp_ts_unwrap z = { 0 };     /* zero-init works too */
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&z, 5), 5);
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&z, 0xFFFFFFFFu), 5, "-6 ms: held");
    cr_assert_eq(weir_rtmp_ts_unwrap_next(&z, 10), 10);
}
