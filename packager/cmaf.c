/*
 * packager/cmaf.c — CMAF / ISO BMFF box writer for one track.
 *
 * Design
 *
 *   Everything is appended to a weir_bytes through a `wr` (writer) that
 *   remembers the length the buffer had on entry and the first error.  The
 *   put_* helpers become no-ops after an error, so box-building code reads as
 *   a straight list of fields; the public entry points check `wr.err` once at
 *   the end and, on failure, roll the buffer back to its entry length.  A box
 *   is written as begin (placeholder size + type) ... end (patch the size).
 *
 *   Codecs plug in through a const table (codec_ops): the sample entry's
 *   four-character code, the media kind, a validator + parser of the
 *   extradata (which comes from the network and is never trusted), the
 *   sample-entry writer and the RFC 6381 codec-string writer.  Every writer
 *   runs the validator first, so the writers may rely on the lengths it
 *   checked.
 *
 * Invariants
 *   1. A failed call leaves `out` exactly as it was (same len, data still
 *      valid: realloc failure keeps the old block).
 *   2. Nothing reads extradata before its codec's parse function accepted it.
 *   3. One track, track_ID 1, sample description index 1, no edit lists:
 *      decode times come from tfdt + trun durations only.
 *
 * Choices
 *   - ftyp: major `cmf2` with compatible iso6 cmfc cmf2 mp41 dash.  styp:
 *     major `msdh` with msdh cmfs cmff.  `msix` is not claimed: it promises a
 *     segment index (sidx), which these segments do not carry.
 *   - trun carries per-sample duration, size and flags (and composition
 *     offsets when any is non-zero; version 1 when any is negative).
 *   - Every AAC / Opus frame is a sync sample whatever `key` says: that is
 *     what those codecs are, and a player would refuse to start on audio
 *     marked non-sync.
 *   - AAC above 65535 Hz: AudioSampleEntryV1 (entry_version 1, samplerate
 *     1<<16) with a SamplingRateBox, inside stsd version 1 (ISO/IEC 14496-12
 *     12.2.3).
 */
#include "packager/cmaf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/error.h>

#define TRACK_ID 1u
#define MOVIE_TIMESCALE 1000u

#define TFHD_DEFAULT_BASE_IS_MOOF 0x020000u
#define TRUN_DATA_OFFSET 0x000001u
#define TRUN_DURATION 0x000100u
#define TRUN_SIZE 0x000200u
#define TRUN_FLAGS 0x000400u
#define TRUN_CTS 0x000800u

/* sample_depends_on=2 (I), is_non_sync=0 / depends_on=1, is_non_sync=1 */
#define SAMPLE_FLAGS_SYNC 0x02000000u
#define SAMPLE_FLAGS_NON_SYNC 0x01010000u

#define TAG(s) ((uint32_t)(s)[0] << 24 | (uint32_t)(s)[1] << 16 | (uint32_t)(s)[2] << 8 | (uint32_t)(s)[3])

/* ---- weir_bytes -------------------------------------------------------- */

/* Frees b's storage and zeroes it; b itself belongs to the caller. */
void weir_bytes_free(weir_bytes *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes.  On failure b is untouched. */
static int bytes_reserve(weir_bytes *b, size_t n)
{
    size_t need, cap;
    uint8_t *p;

    if (n > SIZE_MAX - b->len)
        return AVERROR(ENOMEM);
    need = b->len + n;
    if (need <= b->cap)
        return 0;
    cap = b->cap > 128 ? b->cap : 128;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (!(p = realloc(b->data, cap)))
        return AVERROR(ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

/* ---- the writer ---------------------------------------------------------- */

typedef struct wr {
    weir_bytes *b;      /* borrowed: the caller's output */
    size_t start;       /* b->len on entry; restored on failure */
    int err;            /* first error, sticky */
} wr;

static void wr_init(wr *w, weir_bytes *b)
{
    w->b = b;
    w->start = b->len;
    w->err = 0;
}

/* Ends a public call: returns 0, or the first error after rolling back. */
static int wr_finish(wr *w)
{
    if (w->err)
        w->b->len = w->start;
    return w->err;
}

static void wr_fail(wr *w, int err)
{
    if (!w->err)
        w->err = err;
}

static void put_bytes(wr *w, const void *p, size_t n)
{
    int ret;

    if (w->err || !n)
        return;
    if ((ret = bytes_reserve(w->b, n)) < 0) {
        wr_fail(w, ret);
        return;
    }
    memcpy(w->b->data + w->b->len, p, n);
    w->b->len += n;
}

static void put_zeros(wr *w, size_t n)
{
    int ret;

    if (w->err || !n)
        return;
    if ((ret = bytes_reserve(w->b, n)) < 0) {
        wr_fail(w, ret);
        return;
    }
    memset(w->b->data + w->b->len, 0, n);
    w->b->len += n;
}

static void put8(wr *w, uint8_t v) { put_bytes(w, &v, 1); }

static void put_be16(wr *w, uint16_t v)
{
    uint8_t t[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put_bytes(w, t, 2);
}

static void put_be24(wr *w, uint32_t v)
{
    uint8_t t[3] = { (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put_bytes(w, t, 3);
}

static void put_be32(wr *w, uint32_t v)
{
    uint8_t t[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put_bytes(w, t, 4);
}

static void put_be64(wr *w, uint64_t v)
{
    put_be32(w, (uint32_t)(v >> 32));
    put_be32(w, (uint32_t)v);
}

static void patch_be32(wr *w, size_t at, uint32_t v)
{
    uint8_t *p;

    if (w->err)
        return;
    p = w->b->data + at;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Opens a box; returns the offset to hand to box_end. */
static size_t box_begin(wr *w, const char *type)
{
    size_t at = w->b->len;

    put_be32(w, 0);
    put_be32(w, TAG(type));
    return at;
}

static size_t fullbox_begin(wr *w, const char *type, uint8_t version, uint32_t flags)
{
    size_t at = box_begin(w, type);

    put8(w, version);
    put_be24(w, flags);
    return at;
}

static void box_end(wr *w, size_t at)
{
    size_t size;

    if (w->err)
        return;
    size = w->b->len - at;
    if (size > UINT32_MAX) {
        wr_fail(w, AVERROR(EINVAL));
        return;
    }
    patch_be32(w, at, (uint32_t)size);
}

/* The unity matrix of mvhd and tkhd. */
static void put_matrix(wr *w)
{
    static const uint32_t m[9] = { 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000 };

    for (int i = 0; i < 9; i++)
        put_be32(w, m[i]);
}

/* ---- bounded reads over extradata --------------------------------------- */

static uint16_t rd_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint16_t rd_le16(const uint8_t *p) { return (uint16_t)(p[1] << 8 | p[0]); }

static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* An MSB-first bit reader that refuses to run past n bytes. */
typedef struct bits {
    const uint8_t *p;   /* borrowed */
    size_t n;           /* bytes */
    size_t pos;         /* bits consumed */
} bits;

static int bits_get(bits *br, int k, uint32_t *v)
{
    uint32_t x = 0;

    if (k > 32 || br->pos > br->n * 8 || (size_t)k > br->n * 8 - br->pos)
        return AVERROR(EINVAL);
    for (int i = 0; i < k; i++, br->pos++)
        x = x << 1 | ((br->p[br->pos >> 3] >> (7 - (br->pos & 7))) & 1);
    *v = x;
    return 0;
}

/* The extradata of par as a (pointer, length) pair; EINVAL when absent. */
static int extradata_of(const AVCodecParameters *par, const uint8_t **p, size_t *n)
{
    if (!par->extradata || par->extradata_size <= 0)
        return AVERROR(EINVAL);
    *p = par->extradata;
    *n = (size_t)par->extradata_size;
    return 0;
}

/* ---- H.264: avcC ----------------------------------------------------------- */

/* Checks an AVCDecoderConfigurationRecord: version 1, at least one SPS,
 * every parameter set inside the buffer.  Trailing bytes (the High-profile
 * chroma/bit-depth extension) are allowed. */
static int avcc_check(const uint8_t *p, size_t n)
{
    size_t off;
    unsigned nsps, npps;

    if (n < 7 || p[0] != 1)
        return AVERROR(EINVAL);
    if ((p[4] & 3) == 2)                 /* lengthSizeMinusOne 2 is not allowed */
        return AVERROR(EINVAL);
    nsps = p[5] & 0x1f;
    if (nsps == 0)
        return AVERROR(EINVAL);
    off = 6;
    for (unsigned i = 0; i < nsps; i++) {
        size_t len;
        if (n - off < 2)
            return AVERROR(EINVAL);
        len = rd_be16(p + off);
        off += 2;
        if (len == 0 || n - off < len)
            return AVERROR(EINVAL);
        off += len;
    }
    if (n - off < 1)
        return AVERROR(EINVAL);
    npps = p[off++];
    for (unsigned i = 0; i < npps; i++) {
        size_t len;
        if (n - off < 2)
            return AVERROR(EINVAL);
        len = rd_be16(p + off);
        off += 2;
        if (len == 0 || n - off < len)
            return AVERROR(EINVAL);
        off += len;
    }
    return 0;
}

static int avc_string(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    (void)n;
    return snprintf(buf, cap, "avc1.%02x%02x%02x", p[1], p[2], p[3]);
}

/* ---- HEVC: hvcC ------------------------------------------------------------ */

#define HVCC_FIXED 23

/* Checks an HEVCDecoderConfigurationRecord: version 1, 22 bytes of fields,
 * then numOfArrays arrays of length-prefixed NAL units, all in bounds. */
static int hvcc_check(const uint8_t *p, size_t n)
{
    size_t off = HVCC_FIXED;

    if (n < HVCC_FIXED || p[0] != 1)
        return AVERROR(EINVAL);
    if ((p[21] & 3) == 2)
        return AVERROR(EINVAL);
    for (unsigned a = 0; a < p[22]; a++) {
        unsigned nnal;
        if (n - off < 3)
            return AVERROR(EINVAL);
        nnal = rd_be16(p + off + 1);
        off += 3;
        for (unsigned i = 0; i < nnal; i++) {
            size_t len;
            if (n - off < 2)
                return AVERROR(EINVAL);
            len = rd_be16(p + off);
            off += 2;
            if (n - off < len)
                return AVERROR(EINVAL);
            off += len;
        }
    }
    return 0;
}

/* ISO/IEC 14496-15 Annex E: hvc1.[A-C]<profile>.<compat reversed>.<L|H><level>[.<constraint>...] */
static int hevc_string(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    static const char *const space[4] = { "", "A", "B", "C" };
    uint32_t compat = rd_be32(p + 2), rev = 0;
    int last = -1, len;

    (void)n;
    for (int i = 0; i < 32; i++)
        rev |= ((compat >> i) & 1u) << (31 - i);
    for (int i = 0; i < 6; i++)
        if (p[6 + i])
            last = i;
    len = snprintf(buf, cap, "hvc1.%s%u.%X.%c%u", space[p[1] >> 6], p[1] & 0x1fu, rev,
                   (p[1] & 0x20) ? 'H' : 'L', p[12]);
    for (int i = 0; i <= last && len >= 0; i++) {
        size_t used = (size_t)len < cap ? (size_t)len : cap;
        int k = snprintf(buf + used, cap - used, ".%02X", p[6 + i]);
        len = k < 0 ? k : len + k;
    }
    return len;
}

/* ---- AV1: av1C ------------------------------------------------------------- */

/* Checks an AV1CodecConfigurationRecord: marker 1, version 1, reserved
 * bits zero.  The config OBUs that follow are copied, not interpreted. */
static int av1c_check(const uint8_t *p, size_t n)
{
    if (n < 4 || p[0] != 0x81 || (p[3] & 0xe0))
        return AVERROR(EINVAL);
    return 0;
}

/* AV1 ISOBMFF binding, codecs parameter: av01.P.LLT.DD (short form). */
static int av1_string(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    unsigned depth = (p[2] & 0x40) ? ((p[2] & 0x20) ? 12 : 10) : 8;

    (void)n;
    return snprintf(buf, cap, "av01.%u.%02u%c.%02u", p[1] >> 5, p[1] & 0x1fu,
                    (p[2] & 0x80) ? 'H' : 'M', depth);
}

/* ---- AAC: AudioSpecificConfig ----------------------------------------------- */

typedef struct asc_info {
    unsigned aot;           /* first audioObjectType (5 / 29 for explicit SBR / PS) */
    unsigned sample_rate;   /* output rate: the SBR extension rate when signalled */
    unsigned channels;      /* from channelConfiguration; 0 = in a PCE */
} asc_info;

static const unsigned asc_rates[13] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                        22050, 16000, 12000, 11025, 8000, 7350 };

/* channelConfiguration -> channels (0: a program_config_element says) */
static const unsigned asc_channels[16] = { 0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0 };

static int asc_aot(bits *br, unsigned *aot)
{
    uint32_t v;
    int ret;

    if ((ret = bits_get(br, 5, &v)) < 0)
        return ret;
    if (v == 31) {
        if ((ret = bits_get(br, 6, &v)) < 0)
            return ret;
        v += 32;
    }
    *aot = v;
    return 0;
}

static int asc_rate(bits *br, unsigned *rate)
{
    uint32_t idx;
    int ret;

    if ((ret = bits_get(br, 4, &idx)) < 0)
        return ret;
    if (idx == 15)
        ret = bits_get(br, 24, &idx), *rate = idx;
    else if (idx < 13)
        *rate = asc_rates[idx];
    else
        ret = AVERROR(EINVAL);
    if (ret == 0 && *rate == 0)
        ret = AVERROR(EINVAL);
    return ret;
}

/* Parses the head of an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) far
 * enough for the sample entry and the codec string. */
static int asc_parse(const uint8_t *p, size_t n, asc_info *a)
{
    bits br = { .p = p, .n = n, .pos = 0 };
    uint32_t chan;
    unsigned inner;
    int ret;

    if ((ret = asc_aot(&br, &a->aot)) < 0 || (ret = asc_rate(&br, &a->sample_rate)) < 0 ||
        (ret = bits_get(&br, 4, &chan)) < 0)
        return ret;
    if (a->aot == 0)
        return AVERROR(EINVAL);
    a->channels = asc_channels[chan];
    if (a->aot == 5 || a->aot == 29) {
        if ((ret = asc_rate(&br, &a->sample_rate)) < 0 || (ret = asc_aot(&br, &inner)) < 0)
            return ret;
    }
    return 0;
}

/* The ASC goes into an esds descriptor, whose size field tops out at
 * 2^28 - 1; real ones are a few bytes (a PCE adds tens). */
static int aac_check(const uint8_t *p, size_t n)
{
    asc_info a;

    if (n > 0xffff)
        return AVERROR(EINVAL);
    return asc_parse(p, n, &a);
}

static int aac_string(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    asc_info a;
    int ret = asc_parse(p, n, &a);

    return ret < 0 ? ret : snprintf(buf, cap, "mp4a.40.%u", a.aot);
}

/* ---- Opus: OpusHead ---------------------------------------------------------- */

#define OPUSHEAD_FIXED 19

/* Checks an OpusHead (RFC 7845 5.1): magic, major version 0, at least one
 * channel, the mapping table present when the family is not 0. */
static int opus_check(const uint8_t *p, size_t n)
{
    if (n < OPUSHEAD_FIXED || memcmp(p, "OpusHead", 8) != 0 || (p[8] & 0xf0) || p[9] == 0)
        return AVERROR(EINVAL);
    if (p[18] != 0 && n < OPUSHEAD_FIXED + 2u + p[9])
        return AVERROR(EINVAL);
    if (p[18] == 0 && p[9] > 2)
        return AVERROR(EINVAL);
    return 0;
}

static int opus_string(const uint8_t *p, size_t n, char *buf, size_t cap)
{
    (void)p, (void)n;
    return snprintf(buf, cap, "opus");
}

/* ---- sample entries ------------------------------------------------------------- */

typedef struct codec_ops codec_ops;

struct codec_ops {
    enum AVCodecID id;
    enum AVMediaType kind;
    const char *entry;          /* sample entry type */
    const char *config;         /* its configuration box (video: copied extradata) */
    int (*check)(const uint8_t *p, size_t n);
    int (*string)(const uint8_t *p, size_t n, char *buf, size_t cap);
    void (*write_entry)(wr *w, const codec_ops *c, const weir_cmaf_track *t,
                        const uint8_t *p, size_t n);
};

/* VisualSampleEntry + the configuration record copied as it came + pasp
 * when the pixel aspect ratio is known and not square. */
static void video_entry(wr *w, const codec_ops *c, const weir_cmaf_track *t,
                        const uint8_t *p, size_t n)
{
    const AVCodecParameters *par = t->par;
    AVRational sar = par->sample_aspect_ratio;
    size_t e = box_begin(w, c->entry), cfg;

    put_zeros(w, 6);
    put_be16(w, 1);                     /* data_reference_index */
    put_zeros(w, 16);                   /* pre_defined, reserved, pre_defined[3] */
    put_be16(w, (uint16_t)par->width);
    put_be16(w, (uint16_t)par->height);
    put_be32(w, 0x00480000);            /* 72 dpi */
    put_be32(w, 0x00480000);
    put_be32(w, 0);
    put_be16(w, 1);                     /* frame_count */
    put_zeros(w, 32);                   /* compressorname */
    put_be16(w, 0x0018);
    put_be16(w, 0xffff);
    cfg = box_begin(w, c->config);
    put_bytes(w, p, n);
    box_end(w, cfg);
    if (sar.num > 0 && sar.den > 0 && sar.num != sar.den) {
        size_t pa = box_begin(w, "pasp");
        put_be32(w, (uint32_t)sar.num);
        put_be32(w, (uint32_t)sar.den);
        box_end(w, pa);
    }
    box_end(w, e);
}

/* The AudioSampleEntry fields after SampleEntry's; rates above 65535 use
 * the V1 entry (the caller writes the srat box). */
static void audio_entry_fields(wr *w, unsigned channels, unsigned rate)
{
    put_zeros(w, 6);
    put_be16(w, 1);                     /* data_reference_index */
    put_be16(w, rate > 0xffff ? 1 : 0); /* entry_version */
    put_zeros(w, 6);
    put_be16(w, (uint16_t)channels);
    put_be16(w, 16);                    /* samplesize */
    put_be32(w, 0);                     /* pre_defined, reserved */
    put_be32(w, rate > 0xffff ? 1u << 16 : rate << 16);
}

/* An MPEG-4 descriptor header with the size in the fewest 7-bit bytes. */
static void put_descr(wr *w, uint8_t tag, size_t size)
{
    int k = 1;

    while (k < 4 && (size >> (7 * k)))
        k++;
    put8(w, tag);
    for (int i = k - 1; i >= 0; i--)
        put8(w, (uint8_t)(((size >> (7 * i)) & 0x7f) | (i ? 0x80 : 0)));
}

static size_t descr_len(size_t size)
{
    size_t k = 1;

    while (k < 4 && (size >> (7 * k)))
        k++;
    return 1 + k + size;
}

static unsigned par_channels(const AVCodecParameters *par)
{
    return par->ch_layout.nb_channels > 0 ? (unsigned)par->ch_layout.nb_channels : 0;
}

/* The rate in the AAC sample entry: par's, else the ASC's. */
static unsigned aac_rate(const AVCodecParameters *par, const asc_info *a)
{
    return par->sample_rate > 0 ? (unsigned)par->sample_rate : a->sample_rate;
}

/* Whether the track needs AudioSampleEntryV1 (and so stsd version 1). */
static int needs_entry_v1(const codec_ops *c, const AVCodecParameters *par,
                          const uint8_t *p, size_t n)
{
    asc_info a;

    return c->id == AV_CODEC_ID_AAC && asc_parse(p, n, &a) == 0 && aac_rate(par, &a) > 0xffff;
}

/* mp4a + esds (ISO/IEC 14496-14 5.6, 14496-1 7.2.6.5/6). */
static void aac_entry(wr *w, const codec_ops *c, const weir_cmaf_track *t,
                      const uint8_t *p, size_t n)
{
    const AVCodecParameters *par = t->par;
    asc_info a;
    unsigned rate, channels;
    uint32_t bitrate;
    size_t e, es, dsi, dcd, esd;

    if (asc_parse(p, n, &a) < 0) {      /* checked by the caller */
        wr_fail(w, AVERROR(EINVAL));
        return;
    }
    rate = aac_rate(par, &a);
    channels = par_channels(par) ? par_channels(par) : (a.channels ? a.channels : 2);
    bitrate = par->bit_rate > 0 && par->bit_rate <= UINT32_MAX ? (uint32_t)par->bit_rate : 0;
    dsi = descr_len(n);
    dcd = descr_len(13 + dsi);
    esd = 3 + dcd + descr_len(1);

    e = box_begin(w, c->entry);
    audio_entry_fields(w, channels, rate);
    es = fullbox_begin(w, "esds", 0, 0);
    put_descr(w, 0x03, esd);            /* ES_Descriptor */
    put_be16(w, TRACK_ID);
    put8(w, 0);
    put_descr(w, 0x04, 13 + dsi);       /* DecoderConfigDescriptor */
    put8(w, 0x40);                      /* Audio ISO/IEC 14496-3 */
    put8(w, 0x05 << 2 | 1);             /* AudioStream, upStream 0, reserved 1 */
    put_be24(w, 0);                     /* bufferSizeDB */
    put_be32(w, bitrate);               /* maxBitrate */
    put_be32(w, bitrate);               /* avgBitrate */
    put_descr(w, 0x05, n);              /* DecoderSpecificInfo */
    put_bytes(w, p, n);
    put_descr(w, 0x06, 1);              /* SLConfigDescriptor */
    put8(w, 0x02);
    box_end(w, es);
    if (rate > 0xffff) {
        size_t sr = fullbox_begin(w, "srat", 0, 0);
        put_be32(w, rate);
        box_end(w, sr);
    }
    box_end(w, e);
}

/* Opus + dOps ("Encapsulation of Opus in ISO BMFF" 4.3): the OpusHead's
 * fields from Version on, big-endian, with Version 0. */
static void opus_entry(wr *w, const codec_ops *c, const weir_cmaf_track *t,
                       const uint8_t *p, size_t n)
{
    unsigned channels = p[9];
    size_t e, d;

    (void)t, (void)n;
    e = box_begin(w, c->entry);
    audio_entry_fields(w, channels, 48000);
    d = box_begin(w, "dOps");
    put8(w, 0);                         /* Version */
    put8(w, (uint8_t)channels);
    put_be16(w, rd_le16(p + 10));       /* PreSkip */
    put_be32(w, rd_le32(p + 12));       /* InputSampleRate */
    put_be16(w, rd_le16(p + 16));       /* OutputGain, same bits */
    put8(w, p[18]);                     /* ChannelMappingFamily */
    if (p[18] != 0) {
        put8(w, p[19]);                 /* StreamCount */
        put8(w, p[20]);                 /* CoupledCount */
        put_bytes(w, p + 21, channels);
    }
    box_end(w, d);
    box_end(w, e);
}

static const codec_ops codecs[] = {
    { AV_CODEC_ID_H264, AVMEDIA_TYPE_VIDEO, "avc1", "avcC", avcc_check, avc_string, video_entry },
    { AV_CODEC_ID_HEVC, AVMEDIA_TYPE_VIDEO, "hvc1", "hvcC", hvcc_check, hevc_string, video_entry },
    { AV_CODEC_ID_AV1, AVMEDIA_TYPE_VIDEO, "av01", "av1C", av1c_check, av1_string, video_entry },
    { AV_CODEC_ID_AAC, AVMEDIA_TYPE_AUDIO, "mp4a", "esds", aac_check, aac_string, aac_entry },
    { AV_CODEC_ID_OPUS, AVMEDIA_TYPE_AUDIO, "Opus", "dOps", opus_check, opus_string, opus_entry },
};

/* The ops for par's codec and its validated extradata; EINVAL for an
 * unsupported codec or extradata its parser rejects. */
static int codec_lookup(const AVCodecParameters *par, const codec_ops **c,
                        const uint8_t **p, size_t *n)
{
    int ret;

    if (!par)
        return AVERROR(EINVAL);
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        if (codecs[i].id != par->codec_id)
            continue;
        if ((ret = extradata_of(par, p, n)) < 0 || (ret = codecs[i].check(*p, *n)) < 0)
            return ret;
        *c = &codecs[i];
        return 0;
    }
    return AVERROR(EINVAL);
}

/* ---- init segment --------------------------------------------------------------- */

static int language_code(const char *lang, uint16_t *code)
{
    if (!lang)
        lang = "und";
    if (strlen(lang) != 3)
        return AVERROR(EINVAL);
    for (int i = 0; i < 3; i++)
        if (lang[i] < 'a' || lang[i] > 'z')
            return AVERROR(EINVAL);
    *code = (uint16_t)((lang[0] - 0x60) << 10 | (lang[1] - 0x60) << 5 | (lang[2] - 0x60));
    return 0;
}

static void write_ftyp(wr *w)
{
    static const char *const compat[] = { "iso6", "cmfc", "cmf2", "mp41", "dash" };
    size_t b = box_begin(w, "ftyp");

    put_be32(w, TAG("cmf2"));
    put_be32(w, 0);
    for (size_t i = 0; i < sizeof compat / sizeof compat[0]; i++)
        put_be32(w, TAG(compat[i]));
    box_end(w, b);
}

static void write_mvhd(wr *w)
{
    size_t b = fullbox_begin(w, "mvhd", 0, 0);

    put_be32(w, 0);                     /* creation_time */
    put_be32(w, 0);                     /* modification_time */
    put_be32(w, MOVIE_TIMESCALE);
    put_be32(w, 0);                     /* duration: fragmented */
    put_be32(w, 0x00010000);            /* rate 1.0 */
    put_be16(w, 0x0100);                /* volume 1.0 */
    put_zeros(w, 10);
    put_matrix(w);
    put_zeros(w, 24);                   /* pre_defined */
    put_be32(w, TRACK_ID + 1);          /* next_track_ID */
    box_end(w, b);
}

static void write_tkhd(wr *w, const codec_ops *c, const AVCodecParameters *par)
{
    int video = c->kind == AVMEDIA_TYPE_VIDEO;
    size_t b = fullbox_begin(w, "tkhd", 0, 0x000003);   /* enabled, in movie */

    put_be32(w, 0);
    put_be32(w, 0);
    put_be32(w, TRACK_ID);
    put_be32(w, 0);                     /* reserved */
    put_be32(w, 0);                     /* duration */
    put_zeros(w, 8);
    put_be16(w, 0);                     /* layer */
    put_be16(w, 0);                     /* alternate_group */
    put_be16(w, video ? 0 : 0x0100);    /* volume */
    put_be16(w, 0);
    put_matrix(w);
    put_be32(w, video ? (uint32_t)par->width << 16 : 0);
    put_be32(w, video ? (uint32_t)par->height << 16 : 0);
    box_end(w, b);
}

static void write_mdia(wr *w, const codec_ops *c, const weir_cmaf_track *t,
                       uint16_t lang, const uint8_t *p, size_t n)
{
    int video = c->kind == AVMEDIA_TYPE_VIDEO;
    const char *name = video ? "VideoHandler" : "SoundHandler";
    size_t mdia = box_begin(w, "mdia"), b, minf, dinf, dref, stbl, stsd;

    b = fullbox_begin(w, "mdhd", 0, 0);
    put_be32(w, 0);
    put_be32(w, 0);
    put_be32(w, t->timescale);
    put_be32(w, 0);
    put_be16(w, lang);
    put_be16(w, 0);
    box_end(w, b);

    b = fullbox_begin(w, "hdlr", 0, 0);
    put_be32(w, 0);
    put_be32(w, TAG(video ? "vide" : "soun"));
    put_zeros(w, 12);
    put_bytes(w, name, strlen(name) + 1);
    box_end(w, b);

    minf = box_begin(w, "minf");
    if (video) {
        b = fullbox_begin(w, "vmhd", 0, 1);
        put_zeros(w, 8);                /* graphicsmode, opcolor */
    } else {
        b = fullbox_begin(w, "smhd", 0, 0);
        put_zeros(w, 4);                /* balance, reserved */
    }
    box_end(w, b);
    dinf = box_begin(w, "dinf");
    dref = fullbox_begin(w, "dref", 0, 0);
    put_be32(w, 1);
    b = fullbox_begin(w, "url ", 0, 1);  /* media in this file */
    box_end(w, b);
    box_end(w, dref);
    box_end(w, dinf);

    stbl = box_begin(w, "stbl");
    stsd = fullbox_begin(w, "stsd", needs_entry_v1(c, t->par, p, n), 0);
    put_be32(w, 1);
    c->write_entry(w, c, t, p, n);
    box_end(w, stsd);
    b = fullbox_begin(w, "stts", 0, 0);
    put_be32(w, 0);
    box_end(w, b);
    b = fullbox_begin(w, "stsc", 0, 0);
    put_be32(w, 0);
    box_end(w, b);
    b = fullbox_begin(w, "stsz", 0, 0);
    put_be32(w, 0);                     /* sample_size */
    put_be32(w, 0);                     /* sample_count */
    box_end(w, b);
    b = fullbox_begin(w, "stco", 0, 0);
    put_be32(w, 0);
    box_end(w, b);
    box_end(w, stbl);
    box_end(w, minf);
    box_end(w, mdia);
}

/* Video needs a size that fits the 16-bit entry fields; audio a rate that
 * is not negative. */
static int par_ok(const codec_ops *c, const AVCodecParameters *par)
{
    if (c->kind == AVMEDIA_TYPE_VIDEO)
        return par->width > 0 && par->width <= 0xffff && par->height > 0 && par->height <= 0xffff;
    return par->sample_rate >= 0;
}

/* t and t->par are borrowed; appends ftyp + moov to out (caller's). */
int weir_cmaf_write_init(const weir_cmaf_track *t, weir_bytes *out)
{
    const codec_ops *c;
    const uint8_t *p;
    size_t n, moov, trak, mvex, b;
    uint16_t lang;
    wr w;
    int ret;

    if (!t || !out || !t->par || t->timescale == 0)
        return AVERROR(EINVAL);
    if ((ret = codec_lookup(t->par, &c, &p, &n)) < 0)
        return ret;
    if (!par_ok(c, t->par) || (ret = language_code(t->language, &lang)) < 0)
        return AVERROR(EINVAL);

    wr_init(&w, out);
    write_ftyp(&w);
    moov = box_begin(&w, "moov");
    write_mvhd(&w);
    trak = box_begin(&w, "trak");
    write_tkhd(&w, c, t->par);
    write_mdia(&w, c, t, lang, p, n);
    box_end(&w, trak);
    mvex = box_begin(&w, "mvex");
    b = fullbox_begin(&w, "trex", 0, 0);
    put_be32(&w, TRACK_ID);
    put_be32(&w, 1);                    /* default_sample_description_index */
    put_be32(&w, 0);
    put_be32(&w, 0);
    put_be32(&w, 0);
    box_end(&w, b);
    box_end(&w, mvex);
    box_end(&w, moov);
    return wr_finish(&w);
}

/* ---- fragments ----------------------------------------------------------------- */

static void write_styp(wr *w)
{
    static const char *const compat[] = { "msdh", "cmfs", "cmff" };
    size_t b = box_begin(w, "styp");

    put_be32(w, TAG("msdh"));
    put_be32(w, 0);
    for (size_t i = 0; i < sizeof compat / sizeof compat[0]; i++)
        put_be32(w, TAG(compat[i]));
    box_end(w, b);
}

/* Checks the samples and sums their sizes. */
static int samples_check(const weir_cmaf_sample *s, size_t n, uint64_t *payload,
                         int *any_cts, int *any_neg)
{
    uint64_t sum = 0;

    if (!s || n == 0 || n > (UINT32_MAX - 4096) / 16)
        return AVERROR(EINVAL);
    *any_cts = *any_neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].size > UINT32_MAX || (s[i].size && !s[i].data))
            return AVERROR(EINVAL);
        sum += s[i].size;
        *any_cts |= s[i].cts_offset != 0;
        *any_neg |= s[i].cts_offset < 0;
    }
    /* the whole fragment must fit a size_t (see the reserve below) */
    if (sum + 16 * (uint64_t)n + 512 > SIZE_MAX)
        return AVERROR(EINVAL);
    *payload = sum;
    return 0;
}

/* t, samples and their data are borrowed; appends [styp] moof mdat to out. */
int weir_cmaf_write_fragment(const weir_cmaf_track *t, uint32_t sequence, uint64_t base_dts,
                             const weir_cmaf_sample *samples, size_t n, int with_styp,
                             weir_bytes *out)
{
    const codec_ops *c;
    const uint8_t *p;
    size_t en, moof, traf, b, trun, offset_at, mdat_header;
    uint64_t payload, moof_size, data_offset;
    uint32_t flags;
    int any_cts, any_neg, all_sync, ret;
    wr w;

    if (!t || !out || !t->par || t->timescale == 0)
        return AVERROR(EINVAL);
    if ((ret = codec_lookup(t->par, &c, &p, &en)) < 0 ||
        (ret = samples_check(samples, n, &payload, &any_cts, &any_neg)) < 0)
        return ret;
    all_sync = c->kind == AVMEDIA_TYPE_AUDIO;
    mdat_header = payload > UINT32_MAX - 8 ? 16 : 8;

    /* One allocation for the whole fragment (samples_check bounded both). */
    if ((ret = bytes_reserve(out, (size_t)(payload + 16 * (uint64_t)n + 512))) < 0)
        return ret;
    wr_init(&w, out);
    if (with_styp)
        write_styp(&w);
    moof = box_begin(&w, "moof");
    b = fullbox_begin(&w, "mfhd", 0, 0);
    put_be32(&w, sequence);
    box_end(&w, b);
    traf = box_begin(&w, "traf");
    b = fullbox_begin(&w, "tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
    put_be32(&w, TRACK_ID);
    box_end(&w, b);
    b = fullbox_begin(&w, "tfdt", 1, 0);
    put_be64(&w, base_dts);
    box_end(&w, b);
    flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | (any_cts ? TRUN_CTS : 0);
    trun = fullbox_begin(&w, "trun", any_neg ? 1 : 0, flags);
    put_be32(&w, (uint32_t)n);
    offset_at = w.b->len;
    put_be32(&w, 0);                    /* data_offset, patched below */
    for (size_t i = 0; i < n; i++) {
        put_be32(&w, samples[i].duration);
        put_be32(&w, (uint32_t)samples[i].size);
        put_be32(&w, all_sync || samples[i].key ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC);
        if (any_cts)                    /* v0 unsigned, v1 signed: same bits */
            put_be32(&w, (uint32_t)samples[i].cts_offset);
    }
    box_end(&w, trun);
    box_end(&w, traf);
    box_end(&w, moof);
    if (w.err)
        return wr_finish(&w);

    moof_size = w.b->len - moof;
    data_offset = moof_size + mdat_header;
    if (data_offset > INT32_MAX) {
        wr_fail(&w, AVERROR(EINVAL));
        return wr_finish(&w);
    }
    patch_be32(&w, offset_at, (uint32_t)data_offset);
    if (mdat_header == 8) {
        put_be32(&w, (uint32_t)(payload + 8));
        put_be32(&w, TAG("mdat"));
    } else {
        put_be32(&w, 1);
        put_be32(&w, TAG("mdat"));
        put_be64(&w, payload + 16);
    }
    for (size_t i = 0; i < n; i++)
        put_bytes(&w, samples[i].data, samples[i].size);
    return wr_finish(&w);
}

/* ---- codec strings ------------------------------------------------------------- */

/* par is borrowed; writes a NUL-terminated string into buf (caller's). */
int weir_cmaf_codec_string(const AVCodecParameters *par, char *buf, size_t cap)
{
    const codec_ops *c;
    const uint8_t *p;
    size_t n;
    int ret;

    if (!buf)
        return AVERROR(EINVAL);
    if ((ret = codec_lookup(par, &c, &p, &n)) < 0)
        return ret;
    ret = c->string(p, n, buf, cap);
    if (ret < 0)
        return ret == AVERROR(EINVAL) ? ret : AVERROR(EINVAL);
    if ((size_t)ret >= cap) {
        if (cap)
            buf[0] = '\0';
        return AVERROR(ENOSPC);
    }
    return ret;
}
