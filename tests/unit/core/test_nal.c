/*
 * Unit tests for core/nal: Annex B -> ISO against what libavformat's MP4
 * writer makes of the same bitstream.
 *
 * Each case encodes one second of testsrc with the ffmpeg CLI (libx264 or
 * libx265) to a raw Annex B file, then remuxes that very file into MP4 with
 * -c copy, so both hold the same NAL units.  Both are read back with
 * libavformat.  The avcC/hvcC built from the first Annex B access unit must
 * equal the MP4's sample entry byte for byte, and every converted access
 * unit must equal the MP4's sample (the MP4 writer keeps AUDs, which we
 * drop, so they are filtered out of the MP4 side before comparing).  HEVC is
 * written with -tag:v hvc1: for hev1 the MP4 writer sets array_completeness
 * to 0 (parameter sets may also come in-band), for hvc1 to 1, as we do.
 *
 * Then malformed input: garbage, missing and truncated parameter sets,
 * every prefix of a real access unit, oversized NAL units.
 */
#include <criterion/criterion.h>

#include "core/nal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/intreadwrite.h>

#define MAX_PKTS 64

typedef struct media {
    AVCodecParameters *par;
    AVPacket *pkt[MAX_PKTS];
    int n;
} media;

typedef struct nal_case {
    enum AVCodecID codec;
    const char *encode;     /* encoder and pixel format options */
    int profile;            /* expected profile_idc / general_profile_idc */
    int chroma, depth;      /* expected chroma_format_idc, bit depth */
} nal_case;

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/weir-nal.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void run(const char *cmd)
{
    int r = system(cmd);
    cr_assert_eq(r, 0, "failed (%d): %s", r, cmd);
}

/* <dir>/v.<ext> (Annex B) and <dir>/v.mp4, holding the same NAL units. */
static void encode(const nal_case *c, const char **annexb_fmt)
{
    int hevc = c->codec == AV_CODEC_ID_HEVC;
    char cmd[1024];

    *annexb_fmt = hevc ? "hevc" : "h264";
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -y -hide_banner -loglevel error -f lavfi"
             " -i testsrc=size=160x120:rate=25 -t 1 %s %s -f %s '%s/v.%s'"
             " %s",
             c->encode, hevc ? "" : "-bsf:v h264_mp4toannexb", *annexb_fmt, dir, *annexb_fmt,
             hevc ? "2>/dev/null" : "");     /* libx265 prints its banner on stderr */
    run(cmd);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -y -hide_banner -loglevel error -r 25 -i '%s/v.%s' -c:v copy %s"
             " -f mp4 '%s/v.mp4'",
             dir, *annexb_fmt, hevc ? "-tag:v hvc1" : "", dir);
    run(cmd);
}

static void read_media(const char *path, const char *fmt_name, media *m)
{
    const AVInputFormat *ifmt = fmt_name ? av_find_input_format(fmt_name) : NULL;
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();

    memset(m, 0, sizeof *m);
    cr_assert_eq(avformat_open_input(&fmt, path, ifmt, NULL), 0, "%s", path);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    cr_assert_eq(fmt->nb_streams, 1);
    cr_assert_not_null(m->par = avcodec_parameters_alloc());
    cr_assert_eq(avcodec_parameters_copy(m->par, fmt->streams[0]->codecpar), 0);
    while (av_read_frame(fmt, pkt) >= 0) {
        cr_assert_lt(m->n, MAX_PKTS);
        m->pkt[m->n++] = av_packet_clone(pkt);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
}

static void free_media(media *m)
{
    for (int i = 0; i < m->n; i++)
        av_packet_free(&m->pkt[i]);
    avcodec_parameters_free(&m->par);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len,
                         const char *what)
{
    if (got_len == want_len && !memcmp(got, want, want_len))
        return;
    char g[130] = "", w[130] = "";
    size_t at = 0;
    while (at < got_len && at < want_len && got[at] == want[at])
        at++;
    size_t from = at > 16 ? at - 16 : 0;
    for (size_t i = from; i < got_len && i < from + 64; i++)
        snprintf(g + 2 * (i - from), 3, "%02x", got[i]);
    for (size_t i = from; i < want_len && i < from + 64; i++)
        snprintf(w + 2 * (i - from), 3, "%02x", want[i]);
    cr_assert_fail("%s differs at byte %zu (shown from %zu):\n got  %zu: %s\n want %zu: %s",
                   what, at, from, got_len, g, want_len, w);
}

static int nal_type(enum AVCodecID codec, const uint8_t *nal)
{
    return codec == AV_CODEC_ID_HEVC ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
}

/* An ISO sample as we write it: without AUDs (counted in *auds), and
 * without zero bytes at the end of its last NAL unit (counted in *zeros).
 * Those are the zero_byte of the next access unit's 4-byte start code: the
 * HEVC parser splits Annex B access units at 00 00 01 and leaves that 00 at
 * the end of the previous one, and the MP4 writer (FFmpeg 5.1) keeps it in
 * the last NAL unit's length.  In the byte stream format it is
 * trailing_zero_8bits, not NAL data (HEVC B.2.2, 7.4.2: a NAL unit never
 * ends in 00), and decoders skip it, so we leave it out.  Anything else must
 * match byte for byte.  Caller frees. */
static uint8_t *normalise(enum AVCodecID codec, const AVPacket *pkt, size_t *len, int *auds,
                          int *zeros)
{
    uint8_t *out = malloc((size_t)pkt->size);
    size_t n = 0;

    cr_assert_not_null(out);
    for (int off = 0; off < pkt->size;) {
        cr_assert_leq(off + 4, pkt->size);
        uint32_t l = AV_RB32(pkt->data + off);
        const uint8_t *nal = pkt->data + off + 4;
        cr_assert_leq(l, (uint32_t)(pkt->size - off - 4), "bad length in the MP4 sample");
        off += 4 + (int)l;
        if (nal_type(codec, nal) == (codec == AV_CODEC_ID_HEVC ? 35 : 9)) {
            (*auds)++;
            continue;
        }
        if (off == pkt->size)
            while (l > 1 && nal[l - 1] == 0) {
                l--;
                (*zeros)++;
            }
        AV_WB32(out + n, l);
        memcpy(out + n + 4, nal, l);
        n += 4 + l;
    }
    *len = n;
    return out;
}

/* The record's profile, chroma format and bit depth are what the encoder was
 * asked for (so the High / Rext fields were really exercised). */
static void check_fields(const nal_case *c, const uint8_t *rec, size_t len)
{
    if (c->codec == AV_CODEC_ID_H264) {
        cr_assert_eq(rec[1], c->profile);
        if (c->chroma >= 0) {
            size_t off = 6, nsps = rec[5] & 0x1f, npps;
            for (size_t i = 0; i < nsps; i++)
                off += 2 + AV_RB16(rec + off);
            npps = rec[off++];
            for (size_t i = 0; i < npps; i++)
                off += 2 + AV_RB16(rec + off);
            cr_assert_eq(off + 4, len, "High profile: the chroma/bit depth fields are missing");
            cr_assert_eq(rec[off] & 3, c->chroma);
            cr_assert_eq((rec[off + 1] & 7) + 8, c->depth);
        }
    } else {
        cr_assert_eq(rec[1] & 0x1f, c->profile);
        cr_assert_eq(rec[16] & 3, c->chroma);
        cr_assert_eq((rec[17] & 7) + 8, c->depth);
        cr_assert_eq(rec[21] & 3, 3, "lengthSizeMinusOne");
        cr_assert_eq(rec[22], 3, "VPS, SPS, PPS arrays");
        cr_assert_eq(rec[23], 0x80 | 32, "array_completeness=1, VPS");
    }
}

static void check_case(const nal_case *c)
{
    const char *fmt_name;
    char path[128];
    media ab, mp4;
    uint8_t *rec, *iso;
    size_t rec_len, iso_len;
    int auds = 0, zeros = 0;

    make_dir();
    encode(c, &fmt_name);
    snprintf(path, sizeof path, "%s/v.%s", dir, fmt_name);
    read_media(path, fmt_name, &ab);
    snprintf(path, sizeof path, "%s/v.mp4", dir);
    read_media(path, NULL, &mp4);
    remove_dir();
    cr_assert_eq(ab.par->codec_id, c->codec);
    cr_assert_eq(ab.n, 25);
    cr_assert_eq(mp4.n, ab.n);

    /* The sample entry, from the first access unit's parameter sets. */
    cr_assert(weir_nal_is_annexb(ab.pkt[0]->data, (size_t)ab.pkt[0]->size));
    cr_assert_eq(weir_nal_config_from_annexb(c->codec, ab.pkt[0]->data,
                                             (size_t)ab.pkt[0]->size, &rec, &rec_len), 0);
    for (size_t i = rec_len; i < rec_len + AV_INPUT_BUFFER_PADDING_SIZE; i++)
        cr_assert_eq(rec[i], 0, "padding not zeroed");
    assert_bytes(rec, rec_len, mp4.par->extradata, (size_t)mp4.par->extradata_size,
                 c->codec == AV_CODEC_ID_H264 ? "avcC" : "hvcC");
    check_fields(c, rec, rec_len);
    av_free(rec);

    /* Every access unit, stateless and through a converter. */
    weir_nal_conv *conv;
    AVCodecParameters *par = avcodec_parameters_alloc();
    cr_assert_eq(weir_nal_conv_new(ab.par, &conv), 0);
    for (int i = 0; i < ab.n; i++) {
        size_t want_len;
        uint8_t *want = normalise(c->codec, mp4.pkt[i], &want_len, &auds, &zeros);
        char what[64];

        snprintf(what, sizeof what, "access unit %d", i);
        cr_assert_eq(weir_nal_annexb_to_iso(ab.pkt[i]->data, (size_t)ab.pkt[i]->size, &iso,
                                            &iso_len), 0);
        assert_bytes(iso, iso_len, want, want_len, what);
        av_free(iso);

        AVPacket *pkt = av_packet_clone(ab.pkt[i]);
        int64_t pts = pkt->pts, dts = pkt->dts;
        int flags = pkt->flags;
        cr_assert_eq(weir_nal_conv_packet(conv, pkt), 0);
        assert_bytes(pkt->data, (size_t)pkt->size, want, want_len, what);
        cr_assert_not_null(pkt->buf);
        cr_assert_eq(pkt->pts, pts);
        cr_assert_eq(pkt->dts, dts);
        cr_assert_eq(pkt->flags, flags);
        av_packet_free(&pkt);
        free(want);
    }
    cr_assert_eq(weir_nal_conv_par(conv, par), 0);
    assert_bytes(par->extradata, (size_t)par->extradata_size, mp4.par->extradata,
                 (size_t)mp4.par->extradata_size, "converter's extradata");
    cr_assert_eq(par->width, 160);
    weir_nal_conv_free(conv);
    if (c->codec == AV_CODEC_ID_H264)
        cr_assert_eq(zeros, 0, "the H.264 MP4 samples had trailing zero bytes");
    if (strstr(c->encode, "aud=1"))
        cr_assert_eq(auds, ab.n, "the encoder wrote no AUDs: the case tests nothing");

    /* No extradata: the first keyframe provides it. */
    av_freep(&ab.par->extradata);
    ab.par->extradata_size = 0;
    cr_assert_eq(weir_nal_conv_new(ab.par, &conv), 0);
    cr_assert_eq(weir_nal_conv_par(conv, par), AVERROR(EAGAIN));
    AVPacket *pkt = av_packet_clone(ab.pkt[0]);
    cr_assert_eq(weir_nal_conv_packet(conv, pkt), 0);
    cr_assert_eq(weir_nal_conv_par(conv, par), 0);
    assert_bytes(par->extradata, (size_t)par->extradata_size, mp4.par->extradata,
                 (size_t)mp4.par->extradata_size, "extradata from the first keyframe");
    av_packet_free(&pkt);
    weir_nal_conv_free(conv);

    /* ISO already (the MP4's track): a pass-through. */
    cr_assert_eq(weir_nal_conv_new(mp4.par, &conv), 0);
    pkt = av_packet_clone(mp4.pkt[1]);
    const uint8_t *before = pkt->data;
    cr_assert_eq(weir_nal_conv_packet(conv, pkt), 0);
    cr_assert_eq(pkt->data, before);
    cr_assert_eq(weir_nal_conv_par(conv, par), 0);
    assert_bytes(par->extradata, (size_t)par->extradata_size, mp4.par->extradata,
                 (size_t)mp4.par->extradata_size, "pass-through extradata");
    av_packet_free(&pkt);
    weir_nal_conv_free(conv);

    avcodec_parameters_free(&par);
    free_media(&ab);
    free_media(&mp4);
}

/* ---- real streams ---------------------------------------------------------------- */

Test(nal, h264_high444)
{
    /* testsrc is RGB: libx264 picks 4:4:4, High 4:4:4 Predictive (244). */
    check_case(&(nal_case){ AV_CODEC_ID_H264, "-c:v libx264", 244, 3, 8 });
}

Test(nal, h264_high)
{
    check_case(&(nal_case){ AV_CODEC_ID_H264, "-pix_fmt yuv420p -c:v libx264", 100, 1, 8 });
}

Test(nal, h264_high10)
{
    check_case(&(nal_case){ AV_CODEC_ID_H264, "-pix_fmt yuv420p10le -c:v libx264", 110, 1, 10 });
}

Test(nal, h264_baseline)
{
    check_case(&(nal_case){ AV_CODEC_ID_H264,
                            "-pix_fmt yuv420p -c:v libx264 -profile:v baseline", 66, -1, 8 });
}

Test(nal, h264_auds_dropped)
{
    check_case(&(nal_case){ AV_CODEC_ID_H264,
                            "-pix_fmt yuv420p -c:v libx264 -x264-params aud=1", 100, 1, 8 });
}

Test(nal, hevc_main)
{
    check_case(&(nal_case){ AV_CODEC_ID_HEVC, "-pix_fmt yuv420p -c:v libx265", 1, 1, 8 });
}

Test(nal, hevc_main10)
{
    check_case(&(nal_case){ AV_CODEC_ID_HEVC, "-pix_fmt yuv420p10le -c:v libx265", 2, 1, 10 });
}

Test(nal, hevc_rext_444)
{
    check_case(&(nal_case){ AV_CODEC_ID_HEVC, "-pix_fmt yuv444p -c:v libx265", 4, 3, 8 });
}

Test(nal, hevc_auds_dropped_and_no_wpp)
{
    check_case(&(nal_case){ AV_CODEC_ID_HEVC,
                            "-pix_fmt yuv420p -c:v libx265 -x265-params aud=1:wpp=0", 1, 1, 8 });
}

/* ---- by hand -------------------------------------------------------------------- */

Test(nal, is_annexb)
{
    cr_assert(weir_nal_is_annexb((const uint8_t *)"\0\0\1\x65", 4));
    cr_assert(weir_nal_is_annexb((const uint8_t *)"\0\0\0\1\x65", 5));
    cr_assert(weir_nal_is_annexb((const uint8_t *)"\0\0\1", 3));
    cr_assert_not(weir_nal_is_annexb((const uint8_t *)"\0\0\0\0\1", 5));
    cr_assert_not(weir_nal_is_annexb((const uint8_t *)"\1\x64\0\x1f", 4));   /* avcC */
    cr_assert_not(weir_nal_is_annexb((const uint8_t *)"\0\0", 2));
    cr_assert_not(weir_nal_is_annexb(NULL, 0));
}

Test(nal, conversion_by_hand)
{
    /* leading zero, 4-byte start code, AUD, trailing zeros, an emulation
     * prevention byte that stays, a 3-byte start code, an empty NAL. */
    static const uint8_t in[] = {
        0, 0, 0, 0, 1, 0x09, 0xf0,
        0, 0, 0, 1, 0x65, 0x88, 0x00, 0x00, 0x03, 0x01, 0x42, 0, 0,
        0, 0, 1, 0x41, 0x9a,
        0, 0, 1, 0, 0, 0, 1, 0x06, 0x05,
    };
    static const uint8_t want[] = {
        0, 0, 0, 7, 0x65, 0x88, 0x00, 0x00, 0x03, 0x01, 0x42,
        0, 0, 0, 2, 0x41, 0x9a,
        0, 0, 0, 2, 0x06, 0x05,
    };
    uint8_t *out;
    size_t n;

    cr_assert_eq(weir_nal_annexb_to_iso(in, sizeof in, &out, &n), 0);
    assert_bytes(out, n, want, sizeof want, "by hand");
    av_free(out);
}

Test(nal, hevc_aud_by_shape)
{
    static const uint8_t in[] = { 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x26, 0x01, 0xaf };
    static const uint8_t want[] = { 0, 0, 0, 3, 0x26, 0x01, 0xaf };
    uint8_t *out;
    size_t n;

    cr_assert_eq(weir_nal_annexb_to_iso(in, sizeof in, &out, &n), 0);
    assert_bytes(out, n, want, sizeof want, "HEVC AUD");
    av_free(out);
}

Test(nal, malformed_conversion)
{
    uint8_t *out = NULL;
    size_t n;

    /* not Annex B (ISO already, text, bytes before the start code) */
    cr_assert_eq(weir_nal_annexb_to_iso((const uint8_t *)"\0\0\0\2\x65\x88", 6, &out, &n),
                 AVERROR_INVALIDDATA);
    cr_assert_eq(weir_nal_annexb_to_iso((const uint8_t *)"hello", 5, &out, &n),
                 AVERROR_INVALIDDATA);
    cr_assert_eq(weir_nal_annexb_to_iso((const uint8_t *)"\x07\0\0\1\x65", 5, &out, &n),
                 AVERROR_INVALIDDATA);
    /* nothing but start codes, zeros and AUDs */
    cr_assert_eq(weir_nal_annexb_to_iso((const uint8_t *)"\0\0\1", 3, &out, &n),
                 AVERROR_INVALIDDATA);
    cr_assert_eq(weir_nal_annexb_to_iso((const uint8_t *)"\0\0\1\0\0\0\0\1\x09\x10", 10, &out, &n),
                 AVERROR_INVALIDDATA);
    cr_assert_eq(weir_nal_annexb_to_iso(NULL, 0, &out, &n), AVERROR_INVALIDDATA);
    cr_assert_null(out);
}

/* Start code + NAL, appended. */
static size_t add_nal(uint8_t *buf, size_t off, const uint8_t *nal, size_t len)
{
    memcpy(buf + off, "\0\0\0\1", 4);
    memcpy(buf + off + 4, nal, len);
    return off + 4 + len;
}

/* The first access unit of a fresh encode, Annex B. */
static AVPacket *first_au(enum AVCodecID codec)
{
    nal_case c = { codec, codec == AV_CODEC_ID_HEVC ? "-pix_fmt yuv420p -c:v libx265"
                                                    : "-pix_fmt yuv420p -c:v libx264", 0, 0, 0 };
    const char *fmt_name;
    char path[128];
    media m;

    make_dir();
    encode(&c, &fmt_name);
    snprintf(path, sizeof path, "%s/v.%s", dir, fmt_name);
    read_media(path, fmt_name, &m);
    remove_dir();
    AVPacket *pkt = av_packet_clone(m.pkt[0]);
    free_media(&m);
    return pkt;
}

/* The access unit's NAL units, for rebuilding it without some. */
typedef struct nals {
    const uint8_t *p[32];
    size_t len[32];
    int type[32];
    int n;
} nals;

static void split(enum AVCodecID codec, const AVPacket *au, nals *out)
{
    uint8_t *iso;
    size_t n;
    static uint8_t keep[1 << 20];

    cr_assert_eq(weir_nal_annexb_to_iso(au->data, (size_t)au->size, &iso, &n), 0);
    cr_assert_leq(n, sizeof keep);
    memcpy(keep, iso, n);
    av_free(iso);
    out->n = 0;
    for (size_t off = 0; off < n; out->n++) {
        cr_assert_lt(out->n, 32);
        out->len[out->n] = AV_RB32(keep + off);
        out->p[out->n] = keep + off + 4;
        out->type[out->n] = nal_type(codec, keep + off + 4);
        off += 4 + out->len[out->n];
    }
}

/* The access unit without NAL units of type `drop`, and with those of type
 * `cut` truncated to cut_len bytes. */
static size_t rebuild(const nals *ns, int drop, int cut, size_t cut_len, uint8_t *buf)
{
    size_t off = 0;
    for (int i = 0; i < ns->n; i++) {
        if (ns->type[i] == drop)
            continue;
        off = add_nal(buf, off, ns->p[i],
                      ns->type[i] == cut ? FFMIN(cut_len, ns->len[i]) : ns->len[i]);
    }
    return off;
}

static void expect_invalid(enum AVCodecID codec, const uint8_t *buf, size_t len, const char *what)
{
    uint8_t *rec = NULL;
    size_t n;
    int r = weir_nal_config_from_annexb(codec, buf, len, &rec, &n);
    cr_assert_eq(r, AVERROR_INVALIDDATA, "%s: %d", what, r);
    cr_assert_null(rec);
}

static uint8_t work[1 << 20];

Test(nal, h264_missing_and_truncated_parameter_sets)
{
    AVPacket *au = first_au(AV_CODEC_ID_H264);
    nals ns;
    size_t n;

    split(AV_CODEC_ID_H264, au, &ns);
    n = rebuild(&ns, -1, -1, 0, work);
    uint8_t *rec;
    size_t rec_len;
    cr_assert_eq(weir_nal_config_from_annexb(AV_CODEC_ID_H264, work, n, &rec, &rec_len), 0);
    av_free(rec);
    expect_invalid(AV_CODEC_ID_H264, work, rebuild(&ns, 7, -1, 0, work), "no SPS");
    expect_invalid(AV_CODEC_ID_H264, work, rebuild(&ns, 8, -1, 0, work), "no PPS");
    expect_invalid(AV_CODEC_ID_H264, work, rebuild(&ns, -1, 7, 3, work), "SPS of 3 bytes");
    expect_invalid(AV_CODEC_ID_H264, work, rebuild(&ns, -1, 7, 4, work), "SPS without its id");
    cr_assert_eq(weir_nal_config_from_annexb(AV_CODEC_ID_MPEG4, au->data, (size_t)au->size,
                                             &rec, &rec_len), AVERROR(EINVAL));
    av_packet_free(&au);
}

Test(nal, hevc_missing_and_truncated_parameter_sets)
{
    AVPacket *au = first_au(AV_CODEC_ID_HEVC);
    nals ns;

    split(AV_CODEC_ID_HEVC, au, &ns);
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, 32, -1, 0, work), "no VPS");
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, 33, -1, 0, work), "no SPS");
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, 34, -1, 0, work), "no PPS");
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, -1, 33, 10, work), "SPS cut in its PTL");
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, -1, 33, 17, work), "SPS cut before depths");
    expect_invalid(AV_CODEC_ID_HEVC, work, rebuild(&ns, -1, 34, 3, work), "PPS cut");
    /* the H.264 parser on HEVC data finds no SPS (type 7 is not where it looks) */
    expect_invalid(AV_CODEC_ID_H264, au->data, (size_t)au->size, "HEVC as H.264");
    av_packet_free(&au);
}

/* Every prefix of a real access unit, for both parsers: only 0 or
 * AVERROR_INVALIDDATA, and (under ASan) no read past the prefix. */
static void prefixes(enum AVCodecID codec)
{
    AVPacket *au = first_au(codec);

    for (int len = 0; len <= au->size; len++) {
        uint8_t *copy = malloc((size_t)len + 1), *out;    /* exact size: ASan sees overreads */
        size_t n;
        int r;

        cr_assert_not_null(copy);
        memcpy(copy, au->data, (size_t)len);
        for (int k = 0; k < 2; k++) {
            r = weir_nal_config_from_annexb(k ? AV_CODEC_ID_HEVC : AV_CODEC_ID_H264, copy,
                                            (size_t)len, &out, &n);
            cr_assert(r == 0 || r == AVERROR_INVALIDDATA, "prefix %d: %d", len, r);
            if (!r)
                av_free(out);
        }
        r = weir_nal_annexb_to_iso(copy, (size_t)len, &out, &n);
        cr_assert(r == 0 || r == AVERROR_INVALIDDATA, "prefix %d: %d", len, r);
        if (!r)
            av_free(out);
        free(copy);
    }
    av_packet_free(&au);
}

Test(nal, h264_every_prefix, .timeout = 60) { prefixes(AV_CODEC_ID_H264); }
Test(nal, hevc_every_prefix, .timeout = 60) { prefixes(AV_CODEC_ID_HEVC); }

Test(nal, garbage)
{
    uint32_t x = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % 300);
        uint8_t *buf = malloc(len + 1), *out;
        size_t n;
        cr_assert_not_null(buf);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245 + 12345;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (round & 1 && len >= 4)
            memcpy(buf, "\0\0\0\1", 4);   /* Annex B framing around garbage */
        for (int k = 0; k < 2; k++) {
            int r = weir_nal_config_from_annexb(k ? AV_CODEC_ID_HEVC : AV_CODEC_ID_H264, buf,
                                                len, &out, &n);
            cr_assert(r == AVERROR_INVALIDDATA || r == 0);
            if (!r)
                av_free(out);
        }
        int r = weir_nal_annexb_to_iso(buf, len, &out, &n);
        cr_assert(r == AVERROR_INVALIDDATA || r == 0);
        if (!r) {
            for (size_t off = 0; off < n; off += 4 + AV_RB32(out + off))
                cr_assert_leq(off + 4 + AV_RB32(out + off), n);
            av_free(out);
        }
        free(buf);
    }
}

Test(nal, parameter_set_too_long_for_a_record)
{
    size_t len = 70000;
    uint8_t *buf = calloc(1, len + 16), *rec;
    size_t n;

    cr_assert_not_null(buf);
    memcpy(buf, "\0\0\0\1\x67\x64\0\x1f", 8);
    memset(buf + 8, 0xaa, len - 8);
    memcpy(buf + len, "\0\0\0\1\x68\xeb", 6);
    cr_assert_eq(weir_nal_config_from_annexb(AV_CODEC_ID_H264, buf, len + 6, &rec, &n),
                 AVERROR_INVALIDDATA);
    free(buf);
}

Test(nal, converter_drops_malformed_packets)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    weir_nal_conv *conv;
    AVPacket *pkt = av_packet_alloc();

    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    cr_assert_eq(weir_nal_conv_new(par, &conv), 0);
    cr_assert_eq(av_new_packet(pkt, 6), 0);
    memcpy(pkt->data, "garbag", 6);
    cr_assert_eq(weir_nal_conv_packet(conv, pkt), AVERROR_INVALIDDATA);
    cr_assert_eq(weir_nal_conv_par(conv, par), AVERROR(EAGAIN));
    weir_nal_conv_free(conv);

    /* AAC: a pass-through whatever the bytes */
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_AAC;
    cr_assert_eq(weir_nal_conv_new(par, &conv), 0);
    cr_assert_eq(weir_nal_conv_packet(conv, pkt), 0);
    cr_assert_eq(weir_nal_conv_par(conv, par), 0);
    weir_nal_conv_free(conv);
    weir_nal_conv_free(NULL);
    av_packet_free(&pkt);
    avcodec_parameters_free(&par);
}
