/*
 * core/nal.c — Annex B <-> ISO (length-prefixed) H.264 / HEVC, see nal.h.
 *
 * Four layers, each only using the one above it:
 *
 *   scan      Annex B byte stream -> NAL units.  A NAL unit runs from the
 *             byte after a start code (00 00 01) to the next start code;
 *             zero bytes before a start code are trailing_zero_8bits or the
 *             first byte of a 4-byte start code, never NAL data (a NAL
 *             unit's last byte is never 00: H.264 7.4.1, HEVC 7.4.2).
 *             Emulation prevention bytes (00 00 03) are payload and stay.
 *   bits      an RBSP (emulation prevention removed) read bit by bit with
 *             exp-Golomb codes; reading past the end sets `err` and reads
 *             zeros, so parsers check once at the end of a section.
 *   records   avcC (ISO 14496-15 5.3.3.1) and hvcC (8.3.3.1) from the
 *             parameter sets, with the few fields that need a parse of the
 *             SPS (and, for hvcC, the VPS and PPS).
 *   conv      one track's state machine:
 *
 *        new(par)
 *           |--- not H.264/HEVC, or ISO extradata ------------> PASS
 *           |--- Annex B extradata with parameter sets -------> READY
 *           `--- empty / no parameter sets -------------------> WAITING
 *        WAITING --packet whose parameter sets build a record--> READY
 *
 *      state     packet()                       par()
 *      PASS      untouched                      the source's parameters
 *      WAITING   converted (kept by caller)     AVERROR(EAGAIN)
 *      READY     converted                      source's, ISO extradata
 *
 *   transition          function
 *   -> PASS/READY/WAIT  weir_nal_conv_new (conv_start)
 *   WAITING -> READY    weir_nal_conv_packet (conv_try_config)
 *
 * Invariants:
 *   1. Every read of input bytes is bounded by a length checked first; the
 *      bit reader never reads past its RBSP (err instead).
 *   2. Every loop over a count read from the input is bounded by the
 *      spec's maximum for that count, checked before the loop.
 *   3. Outputs are av_malloc'd with AV_INPUT_BUFFER_PADDING_SIZE zeroed
 *      bytes after them, and are only handed out on success.
 */
#include "core/nal.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include <libavutil/intreadwrite.h>
#include <libavutil/mem.h>

/* NAL unit types used here. */
enum {
    H264_NAL_SPS = 7, H264_NAL_PPS = 8, H264_NAL_AUD = 9, H264_NAL_SPS_EXT = 13,
    HEVC_NAL_VPS = 32, HEVC_NAL_SPS = 33, HEVC_NAL_PPS = 34, HEVC_NAL_AUD = 35,
};

#define PS_LEN_MAX 0xffff       /* 16-bit NAL length in avcC/hvcC */

/* ---- scan ------------------------------------------------------------------------ */

typedef struct scan {
    const uint8_t *buf;
    size_t len;
    size_t pos;             /* the first byte after a start code, or len */
} scan;

/* Offset of the next 00 00 01 at or after `from`, or len. */
static size_t find_start(const uint8_t *buf, size_t len, size_t from)
{
    size_t i = from + 2;

    while (i < len) {
        const uint8_t *one = memchr(buf + i, 1, len - i);
        if (!one)
            return len;
        i = (size_t)(one - buf);
        if (buf[i - 1] == 0 && buf[i - 2] == 0)
            return i - 2;
        i++;
    }
    return len;
}

/* The buffer must be leading_zero_8bits then a start code (H.264 B.1). */
static int scan_init(scan *s, const uint8_t *buf, size_t len)
{
    size_t first;

    if (!buf || len < 3)
        return AVERROR_INVALIDDATA;
    first = find_start(buf, len, 0);
    if (first == len)
        return AVERROR_INVALIDDATA;
    for (size_t i = 0; i < first; i++)
        if (buf[i])
            return AVERROR_INVALIDDATA;
    *s = (scan){ .buf = buf, .len = len, .pos = first + 3 };
    return 0;
}

/* 1 and the next non-empty NAL unit, or 0 at the end. */
static int scan_next(scan *s, const uint8_t **nal, size_t *nal_len)
{
    while (s->pos < s->len) {
        size_t start = s->pos, end = find_start(s->buf, s->len, start);
        s->pos = end < s->len ? end + 3 : s->len;
        while (end > start && s->buf[end - 1] == 0)
            end--;
        if (end > start) {
            *nal = s->buf + start;
            *nal_len = end - start;
            return 1;
        }
    }
    return 0;
}

int weir_nal_is_annexb(const uint8_t *buf, size_t len)
{
    if (!buf || len < 3)
        return 0;
    if (buf[0] == 0 && buf[1] == 0 && buf[2] == 1)
        return 1;
    return len >= 4 && buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 1;
}

/* ---- bits ------------------------------------------------------------------------ */

typedef struct bits {
    const uint8_t *p;
    size_t nbits, pos;
    int err;
} bits;

static uint32_t get_bits(bits *b, int n)     /* n <= 32 */
{
    uint32_t v = 0;

    if (b->nbits - b->pos < (size_t)n || b->pos > b->nbits) {
        b->err = 1;
        b->pos = b->nbits;
        return 0;
    }
    for (int i = 0; i < n; i++, b->pos++)
        v = (v << 1) | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
    return v;
}

static void skip_bits(bits *b, size_t n)
{
    if (b->nbits - b->pos < n) {
        b->err = 1;
        b->pos = b->nbits;
    } else {
        b->pos += n;
    }
}

/* ue(v) up to 2^32 - 2; longer codes are errors. */
static uint32_t get_ue(bits *b)
{
    int zeros = 0;

    while (!get_bits(b, 1)) {
        if (b->err || ++zeros > 31) {
            b->err = 1;
            return 0;
        }
    }
    return (uint32_t)(((uint64_t)1 << zeros) - 1 + get_bits(b, zeros));
}

static int64_t get_se(bits *b)
{
    uint32_t k = get_ue(b);
    return (k & 1) ? (int64_t)(k / 2) + 1 : -(int64_t)(k / 2);
}

/* An ue(v) that must be <= max (spec ranges bound every loop: invariant 2). */
static uint32_t get_ue_max(bits *b, uint32_t max)
{
    uint32_t v = get_ue(b);
    if (v > max) {
        b->err = 1;
        return 0;
    }
    return v;
}

/* The RBSP of nal after its `hdr` header bytes: emulation prevention bytes
 * (the 03 of 00 00 03) removed.  *out is av_malloc'd. */
static int to_rbsp(const uint8_t *nal, size_t len, size_t hdr, uint8_t **out, size_t *out_len)
{
    uint8_t *r;
    size_t n = 0;
    int zeros = 0;

    if (len <= hdr)
        return AVERROR_INVALIDDATA;
    if (!(r = av_malloc(len - hdr + AV_INPUT_BUFFER_PADDING_SIZE)))
        return AVERROR(ENOMEM);
    for (size_t i = hdr; i < len; i++) {
        if (zeros >= 2 && nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        r[n++] = nal[i];
    }
    *out = r;
    *out_len = n;
    return 0;
}

/* ---- parameter set lists ---------------------------------------------------------- */

#define PS_MAX 256              /* the most of one kind a record may carry */

typedef struct ps_list {
    const uint8_t *nal[PS_MAX];
    uint16_t len[PS_MAX];
    int n, max;                 /* max: the record's own limit for this kind */
} ps_list;

/* Adds nal unless an identical one is there (in-band repeats). */
static int ps_add(ps_list *l, const uint8_t *nal, size_t len)
{
    if (len > PS_LEN_MAX)
        return AVERROR_INVALIDDATA;
    for (int i = 0; i < l->n; i++)
        if (l->len[i] == len && !memcmp(l->nal[i], nal, len))
            return 0;
    if (l->n >= l->max)
        return AVERROR_INVALIDDATA;
    l->nal[l->n] = nal;
    l->len[l->n++] = (uint16_t)len;
    return 0;
}

static size_t ps_bytes(const ps_list *l)
{
    size_t n = 0;
    for (int i = 0; i < l->n; i++)
        n += 2 + l->len[i];
    return n;
}

static uint8_t *ps_write(uint8_t *p, const ps_list *l)
{
    for (int i = 0; i < l->n; i++) {
        AV_WB16(p, l->len[i]);
        memcpy(p + 2, l->nal[i], l->len[i]);
        p += 2 + l->len[i];
    }
    return p;
}

/* ---- avcC --------------------------------------------------------------------------- */

typedef struct avc_sps {
    uint8_t profile, compat, level;
    uint32_t chroma_format, bit_depth_luma_m8, bit_depth_chroma_m8;
} avc_sps;

/* Profiles whose SPS carries chroma_format_idc and bit depths (H.264
 * 7.3.2.1.1); for them avcC carries them too (ISO 14496-15 5.3.3.1.1 lists
 * 100, 110, 122, 144; 144 left H.264 in 2006 and 244 replaced it). */
static int avc_high(uint8_t profile)
{
    static const uint8_t high[] = { 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135 };
    return memchr(high, profile, sizeof high) != NULL;
}

static int avc_parse_sps(const uint8_t *nal, size_t len, avc_sps *sps)
{
    uint8_t *rbsp = NULL;
    size_t n;
    bits b;
    int r;

    if ((nal[0] & 0x80) || (r = to_rbsp(nal, len, 1, &rbsp, &n)) < 0)
        return AVERROR_INVALIDDATA;
    b = (bits){ .p = rbsp, .nbits = n * 8 };
    sps->profile = (uint8_t)get_bits(&b, 8);
    sps->compat = (uint8_t)get_bits(&b, 8);
    sps->level = (uint8_t)get_bits(&b, 8);
    get_ue_max(&b, 31);                                 /* seq_parameter_set_id */
    sps->chroma_format = 1;
    sps->bit_depth_luma_m8 = sps->bit_depth_chroma_m8 = 0;
    if (avc_high(sps->profile)) {
        if ((sps->chroma_format = get_ue_max(&b, 3)) == 3)
            skip_bits(&b, 1);                           /* separate_colour_plane_flag */
        sps->bit_depth_luma_m8 = get_ue_max(&b, 6);
        sps->bit_depth_chroma_m8 = get_ue_max(&b, 6);
    }
    av_free(rbsp);
    return b.err ? AVERROR_INVALIDDATA : 0;
}

static int write_avcc(const ps_list *sps, const ps_list *pps, const ps_list *ext,
                      uint8_t **out, size_t *out_len)
{
    avc_sps s;
    size_t size;
    uint8_t *rec, *p;
    int high, r;

    if (!sps->n || !pps->n)
        return AVERROR_INVALIDDATA;
    if ((r = avc_parse_sps(sps->nal[0], sps->len[0], &s)) < 0)
        return r;
    high = avc_high(s.profile);
    size = 6 + ps_bytes(sps) + 1 + ps_bytes(pps) + (high ? 4 + ps_bytes(ext) : 0);
    if (!(rec = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE)))
        return AVERROR(ENOMEM);
    p = rec;
    *p++ = 1;                                   /* configurationVersion */
    *p++ = s.profile;
    *p++ = s.compat;
    *p++ = s.level;
    *p++ = 0xfc | 3;                            /* lengthSizeMinusOne */
    *p++ = 0xe0 | (uint8_t)sps->n;
    p = ps_write(p, sps);
    *p++ = (uint8_t)pps->n;
    p = ps_write(p, pps);
    if (high) {
        *p++ = 0xfc | (uint8_t)s.chroma_format;
        *p++ = 0xf8 | (uint8_t)s.bit_depth_luma_m8;
        *p++ = 0xf8 | (uint8_t)s.bit_depth_chroma_m8;
        *p++ = (uint8_t)ext->n;
        p = ps_write(p, ext);
    }
    assert(p == rec + size);
    *out = rec;
    *out_len = size;
    return 0;
}

static int avcc_from_annexb(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    ps_list sps = { .max = 31 }, pps = { .max = 255 }, ext = { .max = 255 };
    const uint8_t *nal;
    size_t n;
    scan s;
    int r;

    if ((r = scan_init(&s, buf, len)) < 0)
        return r;
    while (scan_next(&s, &nal, &n)) {
        switch (nal[0] & 0x1f) {
        case H264_NAL_SPS:     r = n < 4 ? AVERROR_INVALIDDATA : ps_add(&sps, nal, n); break;
        case H264_NAL_PPS:     r = n < 2 ? AVERROR_INVALIDDATA : ps_add(&pps, nal, n); break;
        case H264_NAL_SPS_EXT: r = ps_add(&ext, nal, n); break;
        default:               r = 0;
        }
        if (r < 0)
            return r;
    }
    return write_avcc(&sps, &pps, &ext, out, out_len);
}

/* ---- hvcC --------------------------------------------------------------------------- */

#define HEVC_MAX_SUB_LAYERS 7

typedef struct hvcc {
    uint8_t ptl[12];            /* general_profile_space .. general_level_idc, as coded */
    uint32_t chroma_format, bit_depth_luma_m8, bit_depth_chroma_m8;
    uint32_t min_spatial_segmentation;  /* 4096 + 1: none seen */
    int parallelism;            /* -1: no PPS parsed yet */
    int temporal_layers, temporal_id_nested;
} hvcc;

/* profile_tier_level(1, max_sub_layers_minus1) (HEVC 7.3.3); the general
 * part (12 bytes, byte aligned where it starts in VPS and SPS) into ptl. */
static void hevc_ptl(bits *b, unsigned max_sub_layers_m1, uint8_t ptl[12])
{
    int profile_present[HEVC_MAX_SUB_LAYERS] = { 0 }, level_present[HEVC_MAX_SUB_LAYERS] = { 0 };

    for (int i = 0; i < 12; i++)
        ptl[i] = (uint8_t)get_bits(b, 8);
    for (unsigned i = 0; i < max_sub_layers_m1; i++) {
        profile_present[i] = (int)get_bits(b, 1);
        level_present[i] = (int)get_bits(b, 1);
    }
    if (max_sub_layers_m1 > 0)
        skip_bits(b, 2 * (8 - max_sub_layers_m1));      /* reserved_zero_2bits */
    for (unsigned i = 0; i < max_sub_layers_m1; i++)
        skip_bits(b, (profile_present[i] ? 88 : 0) + (level_present[i] ? 8 : 0));
}

static void hevc_scaling_list_data(bits *b)
{
    for (int size_id = 0; size_id < 4; size_id++) {
        for (int matrix_id = 0; matrix_id < 6; matrix_id += size_id == 3 ? 3 : 1) {
            if (!get_bits(b, 1)) {                      /* scaling_list_pred_mode_flag */
                get_ue(b);                              /* scaling_list_pred_matrix_id_delta */
                continue;
            }
            int coefs = FFMIN(64, 1 << (4 + (size_id << 1)));
            if (size_id > 1)
                get_se(b);                              /* scaling_list_dc_coef_minus8 */
            for (int i = 0; i < coefs && !b->err; i++)
                get_se(b);                              /* scaling_list_delta_coef */
        }
    }
}

/* st_ref_pic_set(idx) of an SPS (HEVC 7.3.7); num_delta_pocs[] of the sets
 * before it are needed for inter prediction, and idx's is stored. */
static void hevc_st_rps(bits *b, unsigned idx, unsigned num_delta_pocs[64])
{
    if (idx && get_bits(b, 1)) {                        /* inter_ref_pic_set_prediction_flag */
        unsigned ref = num_delta_pocs[idx - 1], n = 0;  /* delta_idx_minus1 is 0 in an SPS */
        skip_bits(b, 1);                                /* delta_rps_sign */
        get_ue(b);                                      /* abs_delta_rps_minus1 */
        for (unsigned j = 0; j <= ref && !b->err; j++) {
            int used = (int)get_bits(b, 1);
            if (used || get_bits(b, 1))                 /* use_delta_flag */
                n++;
        }
        num_delta_pocs[idx] = n;
        return;
    }
    unsigned neg = get_ue_max(b, 16), pos = get_ue_max(b, 16);
    if (neg + pos > 16) {
        b->err = 1;
        return;
    }
    for (unsigned i = 0; i < neg + pos && !b->err; i++) {
        get_ue(b);                                      /* delta_poc_s0/s1_minus1 */
        skip_bits(b, 1);                                /* used_by_curr_pic_flag */
    }
    num_delta_pocs[idx] = neg + pos;
}

static void hevc_sub_layer_hrd(bits *b, unsigned cpb_cnt, int sub_pic)
{
    for (unsigned k = 0; k <= cpb_cnt && !b->err; k++) {
        get_ue(b);                                      /* bit_rate_value_minus1 */
        get_ue(b);                                      /* cpb_size_value_minus1 */
        if (sub_pic) {
            get_ue(b);                                  /* cpb_size_du_value_minus1 */
            get_ue(b);                                  /* bit_rate_du_value_minus1 */
        }
        skip_bits(b, 1);                                /* cbr_flag */
    }
}

/* hrd_parameters(1, max_sub_layers_m1) (HEVC E.2.2). */
static void hevc_hrd(bits *b, unsigned max_sub_layers_m1)
{
    int nal = (int)get_bits(b, 1), vcl = (int)get_bits(b, 1), sub_pic = 0;

    if (nal || vcl) {
        if ((sub_pic = (int)get_bits(b, 1)))
            skip_bits(b, 8 + 5 + 1 + 5);    /* tick_divisor .. dpb_output_delay_du_length */
        skip_bits(b, 4 + 4);                /* bit_rate_scale, cpb_size_scale */
        if (sub_pic)
            skip_bits(b, 4);                /* cpb_size_du_scale */
        skip_bits(b, 5 + 5 + 5);            /* the three *_length_minus1 */
    }
    for (unsigned i = 0; i <= max_sub_layers_m1 && !b->err; i++) {
        int fixed_general = (int)get_bits(b, 1), fixed_cvs = 1, low_delay = 0;
        unsigned cpb_cnt = 0;
        if (!fixed_general)
            fixed_cvs = (int)get_bits(b, 1);
        if (fixed_cvs)
            get_ue(b);                      /* elemental_duration_in_tc_minus1 */
        else
            low_delay = (int)get_bits(b, 1);
        if (!low_delay)
            cpb_cnt = get_ue_max(b, 31);
        if (nal)
            hevc_sub_layer_hrd(b, cpb_cnt, sub_pic);
        if (vcl)
            hevc_sub_layer_hrd(b, cpb_cnt, sub_pic);
    }
}

/* vui_parameters() (HEVC E.2.1): only min_spatial_segmentation_idc is
 * needed.  4097 when absent. */
static uint32_t hevc_vui_min_spatial_segmentation(bits *b, unsigned max_sub_layers_m1)
{
    if (get_bits(b, 1) && get_bits(b, 8) == 255)        /* aspect_ratio_info, idc */
        skip_bits(b, 32);                               /* sar_width, sar_height */
    if (get_bits(b, 1))                                 /* overscan_info_present_flag */
        skip_bits(b, 1);
    if (get_bits(b, 1)) {                               /* video_signal_type_present_flag */
        skip_bits(b, 4);
        if (get_bits(b, 1))                             /* colour_description_present_flag */
            skip_bits(b, 24);
    }
    if (get_bits(b, 1)) {                               /* chroma_loc_info_present_flag */
        get_ue(b);
        get_ue(b);
    }
    skip_bits(b, 3);            /* neutral_chroma, field_seq, frame_field_info_present */
    if (get_bits(b, 1))                                 /* default_display_window_flag */
        for (int i = 0; i < 4; i++)
            get_ue(b);
    if (get_bits(b, 1)) {                               /* vui_timing_info_present_flag */
        skip_bits(b, 64);                               /* num_units_in_tick, time_scale */
        if (get_bits(b, 1))                             /* poc_proportional_to_timing */
            get_ue(b);
        if (get_bits(b, 1))                             /* vui_hrd_parameters_present */
            hevc_hrd(b, max_sub_layers_m1);
    }
    if (!get_bits(b, 1))                                /* bitstream_restriction_flag */
        return 4097;
    skip_bits(b, 3);
    return get_ue_max(b, 4095);
}

/* The SPS up to and including the VUI (HEVC 7.3.2.2.1).  The first SPS gives
 * the profile, chroma and bit depths; every SPS may lower the segmentation. */
static int hevc_parse_sps(const uint8_t *nal, size_t len, hvcc *h, int first)
{
    unsigned num_delta_pocs[64] = { 0 };
    uint8_t *rbsp = NULL, ptl[12];
    unsigned sub_m1, chroma, luma, chr, poc_lsb_bits, n_rps;
    size_t n;
    bits b;
    int r;

    if ((r = to_rbsp(nal, len, 2, &rbsp, &n)) < 0)
        return r;
    b = (bits){ .p = rbsp, .nbits = n * 8 };
    skip_bits(&b, 4);                                   /* sps_video_parameter_set_id */
    sub_m1 = get_bits(&b, 3);
    int nested = (int)get_bits(&b, 1);
    if (sub_m1 >= HEVC_MAX_SUB_LAYERS)
        b.err = 1;
    hevc_ptl(&b, sub_m1, ptl);
    get_ue_max(&b, 15);                                 /* sps_seq_parameter_set_id */
    if ((chroma = get_ue_max(&b, 3)) == 3)
        skip_bits(&b, 1);                               /* separate_colour_plane_flag */
    get_ue(&b);                                         /* pic_width_in_luma_samples */
    get_ue(&b);                                         /* pic_height_in_luma_samples */
    if (get_bits(&b, 1))                                /* conformance_window_flag */
        for (int i = 0; i < 4; i++)
            get_ue(&b);
    luma = get_ue_max(&b, 7);       /* the spec allows 8; hvcC's 3 bits do not */
    chr = get_ue_max(&b, 7);
    poc_lsb_bits = get_ue_max(&b, 12) + 4;
    if (b.err)
        goto done;                  /* everything hvcC needs from the fixed part */
    if (first) {
        memcpy(h->ptl, ptl, sizeof ptl);
        h->chroma_format = chroma;
        h->bit_depth_luma_m8 = luma;
        h->bit_depth_chroma_m8 = chr;
        h->temporal_id_nested = nested;
    }
    h->temporal_layers = FFMAX(h->temporal_layers, (int)sub_m1 + 1);

    /* The rest only leads to the VUI's min_spatial_segmentation_idc.  Some
     * encoders write broken VUIs: failing here leaves it unknown (0), which
     * hvcC allows, rather than refusing the stream. */
    for (unsigned i = get_bits(&b, 1) ? 0 : sub_m1; i <= sub_m1 && !b.err; i++)
        for (int k = 0; k < 3; k++)
            get_ue(&b);             /* max_dec_pic_buffering, num_reorder, latency */
    for (int i = 0; i < 6; i++)
        get_ue(&b);                 /* coding / transform block sizes and depths */
    if (get_bits(&b, 1) && get_bits(&b, 1))             /* scaling_list_enabled, data present */
        hevc_scaling_list_data(&b);
    skip_bits(&b, 2);               /* amp_enabled_flag, sample_adaptive_offset_enabled_flag */
    if (get_bits(&b, 1)) {                              /* pcm_enabled_flag */
        skip_bits(&b, 8);
        get_ue(&b);
        get_ue(&b);
        skip_bits(&b, 1);
    }
    n_rps = get_ue_max(&b, 64);
    for (unsigned i = 0; i < n_rps && !b.err; i++)
        hevc_st_rps(&b, i, num_delta_pocs);
    if (get_bits(&b, 1)) {                              /* long_term_ref_pics_present_flag */
        unsigned lt = get_ue_max(&b, 32);
        for (unsigned i = 0; i < lt && !b.err; i++)
            skip_bits(&b, poc_lsb_bits + 1);
    }
    skip_bits(&b, 2);               /* sps_temporal_mvp_enabled, strong_intra_smoothing */
    if (get_bits(&b, 1) && !b.err) {                    /* vui_parameters_present_flag */
        uint32_t seg = hevc_vui_min_spatial_segmentation(&b, sub_m1);
        if (!b.err)
            h->min_spatial_segmentation = FFMIN(h->min_spatial_segmentation, seg);
    }
    b.err = 0;
done:
    av_free(rbsp);
    return b.err ? AVERROR_INVALIDDATA : 0;
}

static int hevc_parse_vps(const uint8_t *nal, size_t len, hvcc *h)
{
    unsigned sub_m1;

    if (len < 4)
        return AVERROR_INVALIDDATA;
    /* vps_id u(4), base_layer flags u(2), max_layers_minus1 u(6), then
     * vps_max_sub_layers_minus1 u(3): no emulation prevention can occur
     * in the two bytes after the header. */
    sub_m1 = (nal[3] >> 1) & 7;
    if (sub_m1 >= HEVC_MAX_SUB_LAYERS)
        return AVERROR_INVALIDDATA;
    h->temporal_layers = FFMAX(h->temporal_layers, (int)sub_m1 + 1);
    return 0;
}

/* The PPS up to tiles_enabled_flag and entropy_coding_sync_enabled_flag
 * (HEVC 7.3.2.3.1), for parallelismType. */
static int hevc_parse_pps(const uint8_t *nal, size_t len, hvcc *h)
{
    uint8_t *rbsp = NULL;
    size_t n;
    bits b;
    int r, tiles, wpp, type;

    if ((r = to_rbsp(nal, len, 2, &rbsp, &n)) < 0)
        return r;
    b = (bits){ .p = rbsp, .nbits = n * 8 };
    get_ue_max(&b, 63);                 /* pps_pic_parameter_set_id */
    get_ue_max(&b, 15);                 /* pps_seq_parameter_set_id */
    skip_bits(&b, 7);                   /* dependent_slice_segments .. cabac_init_present */
    get_ue(&b);                         /* num_ref_idx_l0_default_active_minus1 */
    get_ue(&b);                         /* num_ref_idx_l1_default_active_minus1 */
    get_se(&b);                         /* init_qp_minus26 */
    skip_bits(&b, 2);                   /* constrained_intra_pred, transform_skip_enabled */
    if (get_bits(&b, 1))                /* cu_qp_delta_enabled_flag */
        get_ue(&b);
    get_se(&b);                         /* pps_cb_qp_offset */
    get_se(&b);                         /* pps_cr_qp_offset */
    skip_bits(&b, 4);                   /* chroma_qp_offsets_present .. transquant_bypass */
    tiles = (int)get_bits(&b, 1);
    wpp = (int)get_bits(&b, 1);
    av_free(rbsp);
    if (b.err)
        return AVERROR_INVALIDDATA;
    /* 14496-15 8.3.3.1.2: 1 slices, 2 tiles, 3 wavefront, 0 mixed or unknown. */
    type = tiles && wpp ? 0 : wpp ? 3 : tiles ? 2 : 1;
    h->parallelism = h->parallelism < 0 || h->parallelism == type ? type : 0;
    return 0;
}

static int write_hvcc(const ps_list *vps, const ps_list *sps, const ps_list *pps,
                      uint8_t **out, size_t *out_len)
{
    const ps_list *arrays[] = { vps, sps, pps };
    static const uint8_t types[] = { HEVC_NAL_VPS, HEVC_NAL_SPS, HEVC_NAL_PPS };
    hvcc h = { .min_spatial_segmentation = 4097, .parallelism = -1 };
    size_t size = 23;
    uint8_t *rec, *p;
    int r;

    if (!vps->n || !sps->n || !pps->n)
        return AVERROR_INVALIDDATA;
    for (int i = 0; i < vps->n; i++)
        if ((r = hevc_parse_vps(vps->nal[i], vps->len[i], &h)) < 0)
            return r;
    for (int i = 0; i < sps->n; i++)
        if ((r = hevc_parse_sps(sps->nal[i], sps->len[i], &h, i == 0)) < 0)
            return r;
    for (int i = 0; i < pps->n; i++)
        if ((r = hevc_parse_pps(pps->nal[i], pps->len[i], &h)) < 0)
            return r;
    if (h.min_spatial_segmentation > 4095)
        h.min_spatial_segmentation = 0;
    if (!h.min_spatial_segmentation || h.parallelism < 0)
        h.parallelism = 0;      /* no restriction promised: nothing to exploit */
    for (int i = 0; i < 3; i++)
        size += 3 + ps_bytes(arrays[i]);
    if (!(rec = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE)))
        return AVERROR(ENOMEM);
    p = rec;
    *p++ = 1;                                           /* configurationVersion */
    memcpy(p, h.ptl, 12);                               /* profile_space .. level_idc */
    p += 12;
    AV_WB16(p, 0xf000 | h.min_spatial_segmentation);
    p += 2;
    *p++ = 0xfc | (uint8_t)h.parallelism;
    *p++ = 0xfc | (uint8_t)h.chroma_format;
    *p++ = 0xf8 | (uint8_t)h.bit_depth_luma_m8;
    *p++ = 0xf8 | (uint8_t)h.bit_depth_chroma_m8;
    AV_WB16(p, 0);                                      /* avgFrameRate: unknown */
    p += 2;
    /* constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3 */
    *p++ = (uint8_t)((h.temporal_layers & 7) << 3 | h.temporal_id_nested << 2 | 3);
    *p++ = 3;                                           /* numOfArrays */
    for (int i = 0; i < 3; i++) {
        *p++ = 0x80 | types[i];                         /* array_completeness = 1 */
        AV_WB16(p, arrays[i]->n);
        p = ps_write(p + 2, arrays[i]);
    }
    assert(p == rec + size);
    *out = rec;
    *out_len = size;
    return 0;
}

static int hvcc_from_annexb(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    ps_list vps = { .max = 16 }, sps = { .max = 16 }, pps = { .max = 64 };
    const uint8_t *nal;
    size_t n;
    scan s;
    int r;

    if ((r = scan_init(&s, buf, len)) < 0)
        return r;
    while (scan_next(&s, &nal, &n)) {
        if (n < 3 || (nal[0] & 0x80) || (nal[1] & 7) == 0)
            continue;           /* no room for a payload, or not a NAL header */
        if (((nal[0] & 1) << 5 | nal[1] >> 3) != 0)
            continue;           /* nuh_layer_id > 0: an enhancement layer's */
        switch ((nal[0] >> 1) & 0x3f) {
        case HEVC_NAL_VPS: r = ps_add(&vps, nal, n); break;
        case HEVC_NAL_SPS: r = ps_add(&sps, nal, n); break;
        case HEVC_NAL_PPS: r = ps_add(&pps, nal, n); break;
        default:           r = 0;
        }
        if (r < 0)
            return r;
    }
    return write_hvcc(&vps, &sps, &pps, out, out_len);
}

int weir_nal_config_from_annexb(enum AVCodecID codec, const uint8_t *buf, size_t len,
                                uint8_t **out, size_t *out_len)
{
    switch (codec) {
    case AV_CODEC_ID_H264: return avcc_from_annexb(buf, len, out, out_len);
    case AV_CODEC_ID_HEVC: return hvcc_from_annexb(buf, len, out, out_len);
    default:               return AVERROR(EINVAL);
    }
}

/* ---- Annex B -> ISO ------------------------------------------------------------------ */

/* An access unit delimiter of `codec`, or with AV_CODEC_ID_NONE of either:
 * then by its exact shape, which cannot be mistaken across the two codecs
 * in a conforming stream.  An H.264 AUD is 09 followed by primary_pic_type
 * and the stop bit (xxx10000); read as HEVC that is nuh_temporal_id_plus1
 * = 0, which HEVC forbids.  An HEVC AUD is 46 01 then pic_type and the stop
 * bit; read as H.264, 46 is an SEI with nal_ref_idc 2, which H.264
 * forbids. */
static int is_aud(enum AVCodecID codec, const uint8_t *nal, size_t len)
{
    switch (codec) {
    case AV_CODEC_ID_H264: return (nal[0] & 0x1f) == H264_NAL_AUD;
    case AV_CODEC_ID_HEVC: return ((nal[0] >> 1) & 0x3f) == HEVC_NAL_AUD;
    default:
        return (len == 2 && nal[0] == 0x09 && (nal[1] & 0x1f) == 0x10) ||
               (len == 3 && nal[0] == 0x46 && nal[1] == 0x01 && (nal[2] & 0x1f) == 0x10);
    }
}

static int to_iso(enum AVCodecID codec, const uint8_t *buf, size_t len,
                  uint8_t **out, size_t *out_len)
{
    const uint8_t *nal;
    size_t n, size = 0;
    uint8_t *iso, *p;
    scan s;
    int r;

    /* Each NAL costs at least 3 bytes of start code and gains 4 of length,
     * so the output is below 2 * len: keep that an int (AVPacket.size). */
    if (len > INT_MAX / 2 - AV_INPUT_BUFFER_PADDING_SIZE)
        return AVERROR(EINVAL);
    if ((r = scan_init(&s, buf, len)) < 0)
        return r;
    while (scan_next(&s, &nal, &n))
        if (!is_aud(codec, nal, n))
            size += 4 + n;
    if (!size)
        return AVERROR_INVALIDDATA;
    if (!(iso = av_malloc(size + AV_INPUT_BUFFER_PADDING_SIZE)))
        return AVERROR(ENOMEM);
    scan_init(&s, buf, len);
    p = iso;
    while (scan_next(&s, &nal, &n)) {
        if (is_aud(codec, nal, n))
            continue;
        AV_WB32(p, (uint32_t)n);
        memcpy(p + 4, nal, n);
        p += 4 + n;
    }
    assert(p == iso + size);
    memset(p, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    *out = iso;
    *out_len = size;
    return 0;
}

int weir_nal_annexb_to_iso(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    return to_iso(AV_CODEC_ID_NONE, buf, len, out, out_len);
}

/* ---- conv ------------------------------------------------------------------------------- */

enum conv_state { CONV_PASS, CONV_WAITING, CONV_READY };

struct weir_nal_conv {
    enum conv_state state;
    AVCodecParameters *par;     /* the source's; ISO extradata once READY */
};

/* Annex B buf -> par's extradata, when it holds the parameter sets. */
static int conv_try_config(weir_nal_conv *c, const uint8_t *buf, size_t len)
{
    uint8_t *rec;
    size_t n;
    int r = weir_nal_config_from_annexb(c->par->codec_id, buf, len, &rec, &n);

    if (r < 0)
        return r;
    av_freep(&c->par->extradata);
    c->par->extradata = rec;
    c->par->extradata_size = (int)n;
    c->state = CONV_READY;
    return 0;
}

static int conv_start(weir_nal_conv *c)
{
    const AVCodecParameters *p = c->par;
    int r;

    c->state = CONV_PASS;
    if (p->codec_id != AV_CODEC_ID_H264 && p->codec_id != AV_CODEC_ID_HEVC)
        return 0;
    if (p->extradata_size > 0 && p->extradata[0] == 1)
        return 0;                       /* configurationVersion 1: ISO already */
    c->state = CONV_WAITING;
    if (p->extradata_size > 0 &&
        (r = conv_try_config(c, p->extradata, (size_t)p->extradata_size)) == AVERROR(ENOMEM))
        return r;
    if (c->state == CONV_WAITING) {
        av_freep(&c->par->extradata);   /* neither form: the packets will tell */
        c->par->extradata_size = 0;
    }
    return 0;
}

int weir_nal_conv_new(const AVCodecParameters *par, weir_nal_conv **out)
{
    weir_nal_conv *c;
    int r = AVERROR(ENOMEM);

    if (!par)
        return AVERROR(EINVAL);
    if (!(c = av_mallocz(sizeof *c)) || !(c->par = avcodec_parameters_alloc()))
        goto fail;
    if ((r = avcodec_parameters_copy(c->par, par)) < 0 || (r = conv_start(c)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    weir_nal_conv_free(c);
    return r;
}

int weir_nal_conv_packet(weir_nal_conv *c, AVPacket *pkt)
{
    AVBufferRef *buf;
    uint8_t *iso;
    size_t n;
    int r;

    if (c->state == CONV_PASS)
        return 0;
    if (!pkt->data || pkt->size <= 0)
        return AVERROR_INVALIDDATA;
    if (c->state == CONV_WAITING &&
        conv_try_config(c, pkt->data, (size_t)pkt->size) == AVERROR(ENOMEM))
        return AVERROR(ENOMEM);
    if ((r = to_iso(c->par->codec_id, pkt->data, (size_t)pkt->size, &iso, &n)) < 0)
        return r;
    if (!(buf = av_buffer_create(iso, n + AV_INPUT_BUFFER_PADDING_SIZE, NULL, NULL, 0))) {
        av_free(iso);
        return AVERROR(ENOMEM);
    }
    av_buffer_unref(&pkt->buf);
    pkt->buf = buf;
    pkt->data = buf->data;
    pkt->size = (int)n;
    return 0;
}

int weir_nal_conv_par(const weir_nal_conv *c, AVCodecParameters *par)
{
    if (c->state == CONV_WAITING)
        return AVERROR(EAGAIN);
    return avcodec_parameters_copy(par, c->par);
}

void weir_nal_conv_free(weir_nal_conv *c)
{
    if (!c)
        return;
    avcodec_parameters_free(&c->par);
    av_free(c);
}
