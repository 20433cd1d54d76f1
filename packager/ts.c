/*
 * packager/ts.c — MPEG-TS segments and their HLS playlists.  See ts.h.
 *
 * Why our own TS writer and not libavformat's mpegts muxer
 *
 *   - Timestamps.  The muxer adds max_delay x 2 (1.4 s) to every PTS unless
 *     mpegts_copyts is set, and with copyts its PCR (DTS minus that delay)
 *     goes below zero at a stream's start.  Here a TS segment's PTS is the
 *     CMAF segment's presentation time exactly, so players switching
 *     variants (and the tests) see one timeline.
 *   - Segment edges.  Every segment must open with PAT, PMT and a keyframe,
 *     and end with nothing held back.  The muxer re-sends PSI through a
 *     one-shot flag, inserts h264_mp4toannexb and an ADTS sub-muxer behind
 *     the scenes, and needs flushing through an AVIOContext per segment.
 *   - Size.  What HLS needs of TS (one program, H.264 + AAC, PCR on video,
 *     CRC'd PAT/PMT, PES packetisation, ADTS) is a few hundred lines of
 *     plain byte writing, tested byte by byte (tests/unit/packager/test_ts.c).
 *
 * Codecs: H.264 and AAC only.  Apple's HLS authoring spec wants HEVC in
 * fMP4, and Opus/AV1 have no place in the players TS exists for; a
 * rendition whose video is anything else has no TS variant, and audio TS
 * cannot carry is left out of it (both logged).
 *
 * Writer layout of a segment
 *
 *   PAT (PID 0)  PMT (PID 0x1000)  PES... (video 0x100 / audio 0x101)
 *   each PES: first TS packet has PUSI; a video PES's first packet has an
 *   adaptation field with PCR (and random_access_indicator on keyframes);
 *   the last packet of a PES is padded with adaptation-field stuffing.
 *   Continuity counters (4 bits per PID) live in the writer, so they run
 *   on across segments: a player reading segment n+1 after n sees no gap.
 *   PCR = DTS - 100 ms, never below 0 and never backwards.
 *
 * Presentation side
 *
 *   pres.c track_cut --ts_take--> trk.pend (packets moved, not copied)
 *   pres.c segment end --ts_cut--> trk.q: {number, packets}
 *     every used track has segment n queued (or one lags by TS_LAG_MAX)
 *       --> per rendition: merge video + audio by DTS, weir_ts_mux_segment
 *       --> window (refcounted weir_buf), playlists re-rendered, recording
 *
 * Muxing is on the loop: it is a copy of the segment's bytes into 188-byte
 * packets.  tests/unit/packager/test_ts.c (ts_mux/a_segment_is_cheap_to_mux)
 * measures a 2 s, 1 MB segment at 0.5-0.7 ms in the debugoptimized build,
 * per rendition: small next to a segment's 2 s, not worth a thread hop.
 */
#include "packager/ts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#define TS_PACKET       188
#define TS_PTS_MASK     ((INT64_C(1) << 33) - 1)
#define PCR_LEAD        9000            /* 100 ms before the DTS it precedes */
#define AUDIO_PES_SPAN  9000            /* audio frames per PES: up to 100 ms */
#define AUDIO_PES_MAX   (32 << 10)      /* and 32 KiB */
#define STREAM_ID_VIDEO 0xE0
#define STREAM_ID_AUDIO 0xC0
#define STREAM_TYPE_H264 0x1B
#define STREAM_TYPE_ADTS 0x0F
#define NAL_MAX         (64 << 20)      /* one access unit, sanity bound */

/* ---- bytes -------------------------------------------------------------- */

static int put(weir_bytes *b, const void *data, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown)
            return AVERROR(ENOMEM);
        b->data = grown;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

/* CRC-32/MPEG-2 (polynomial 0x04C11DB7, MSB first, init ~0, no final xor),
 * the PSI section CRC of ISO/IEC 13818-1 Annex A. */
static uint32_t crc32_mpeg2(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= (uint32_t)*p++ << 24;
        for (int i = 0; i < 8; i++)
            crc = crc & 0x80000000u ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

/* ---- the writer --------------------------------------------------------- */

struct weir_ts_mux {
    int has_video, has_audio;
    uint8_t *params;                /* Annex B SPS + PPS from the avcC */
    size_t params_len;
    int nal_len;                    /* avcC lengthSizeMinusOne + 1 */
    int aac_profile, aac_freq, aac_channels;    /* for ADTS headers */
    uint8_t cc_pat, cc_pmt, cc_video, cc_audio;
    int64_t last_pcr;               /* -1 before the first */
    uint8_t psi[2][TS_PACKET];      /* PAT and PMT payloads (CC patched per use) */
    weir_bytes es;                  /* scratch: one PES payload */
};

/* avcC -> Annex B parameter sets.  The extradata came from the network: every
 * length is checked.  0 or AVERROR(EINVAL). */
static int parse_avcc(weir_ts_mux *m, const uint8_t *d, size_t n)
{
    static const uint8_t sc[4] = { 0, 0, 0, 1 };
    weir_bytes ps = { 0 };
    size_t off = 6;
    int r = AVERROR(EINVAL);

    if (n < 7 || d[0] != 1)
        return AVERROR(EINVAL);
    m->nal_len = (d[4] & 3) + 1;
    if (m->nal_len == 3)
        return AVERROR(EINVAL);     /* not a length size ISO allows */
    for (int set = 0; set < 2; set++) {
        int count;
        if (off >= n)
            goto fail;
        count = set == 0 ? d[5] & 0x1F : d[off++];
        for (int i = 0; i < count; i++) {
            size_t len;
            if (off + 2 > n)
                goto fail;
            len = (size_t)d[off] << 8 | d[off + 1];
            off += 2;
            if (len == 0 || len > n - off)
                goto fail;
            if (put(&ps, sc, 4) < 0 || put(&ps, d + off, len) < 0) {
                r = AVERROR(ENOMEM);
                goto fail;
            }
            off += len;
        }
    }
    if (!ps.len)
        goto fail;
    m->params = ps.data;
    m->params_len = ps.len;
    return 0;
fail:
    weir_bytes_free(&ps);
    return r;
}

/* Bit reader over an AudioSpecificConfig, bounds-checked: reads past the
 * end give 0 and set `over`. */
typedef struct bits { const uint8_t *d; size_t n, pos; int over; } bits;

static unsigned getbits(bits *b, int k)
{
    unsigned v = 0;
    while (k--) {
        if (b->pos >= b->n * 8) {
            b->over = 1;
            return 0;
        }
        v = v << 1 | ((b->d[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
        b->pos++;
    }
    return v;
}

static unsigned get_aot(bits *b)
{
    unsigned aot = getbits(b, 5);
    return aot == 31 ? 32 + getbits(b, 6) : aot;
}

/* AudioSpecificConfig -> the ADTS header's profile, frequency index and
 * channel configuration.  Explicit SBR/PS signalling (AOT 5, 29) is carried
 * as its AAC-LC core, which is what ADTS can describe (HE-AAC decoders find
 * the SBR data in the stream).  0 or AVERROR(EINVAL). */
static int parse_asc(weir_ts_mux *m, const uint8_t *d, size_t n)
{
    bits b = { d, n, 0, 0 };
    unsigned aot = get_aot(&b), freq = getbits(&b, 4), ch;

    if (freq == 15)
        return AVERROR(EINVAL);     /* an explicit rate ADTS cannot name */
    ch = getbits(&b, 4);
    if (aot == 5 || aot == 29) {
        if (getbits(&b, 4) == 15)   /* extension sampling frequency index */
            getbits(&b, 24);
        aot = get_aot(&b);
    }
    if (b.over || aot < 1 || aot > 4 || freq > 12 || ch == 0 || ch > 7)
        return AVERROR(EINVAL);
    m->aac_profile = (int)aot - 1;
    m->aac_freq = (int)freq;
    m->aac_channels = (int)ch;
    return 0;
}

int weir_ts_supported(const AVCodecParameters *par)
{
    weir_ts_mux probe = { 0 };
    int ok;

    if (!par)
        return 0;
    if (par->codec_id == AV_CODEC_ID_H264) {
        ok = parse_avcc(&probe, par->extradata, (size_t)par->extradata_size) == 0;
        free(probe.params);
        return ok;
    }
    if (par->codec_id == AV_CODEC_ID_AAC)
        return parse_asc(&probe, par->extradata, (size_t)par->extradata_size) == 0;
    return 0;
}

/* One PSI section (pointer field first) into a whole TS packet's payload. */
static void psi_packet(uint8_t pkt[TS_PACKET], int pid, const uint8_t *sec, size_t len)
{
    uint32_t crc = crc32_mpeg2(sec, len);

    memset(pkt, 0xFF, TS_PACKET);
    pkt[0] = 0x47;
    pkt[1] = 0x40 | (uint8_t)(pid >> 8);       /* payload_unit_start */
    pkt[2] = (uint8_t)pid;
    pkt[3] = 0x10;                             /* payload only; CC patched on use */
    pkt[4] = 0;                                /* pointer_field */
    memcpy(pkt + 5, sec, len);
    pkt[5 + len] = (uint8_t)(crc >> 24);
    pkt[6 + len] = (uint8_t)(crc >> 16);
    pkt[7 + len] = (uint8_t)(crc >> 8);
    pkt[8 + len] = (uint8_t)crc;
}

static void build_psi(weir_ts_mux *m)
{
    int pcr_pid = m->has_video ? WEIR_TS_PID_VIDEO : WEIR_TS_PID_AUDIO;
    uint8_t pat[] = {
        0x00, 0xB0, 13,                     /* table_id, section_length 13 */
        0x00, 0x01, 0xC1, 0x00, 0x00,       /* transport_stream_id 1, v0, current */
        0x00, 0x01,                         /* program_number 1 */
        0xE0 | (WEIR_TS_PID_PMT >> 8), WEIR_TS_PID_PMT & 0xFF,
    };
    uint8_t pmt[32];
    size_t n = 0;
    int streams = m->has_video + m->has_audio;

    pmt[n++] = 0x02;
    pmt[n++] = 0xB0;
    pmt[n++] = (uint8_t)(9 + 5 * streams + 4);
    pmt[n++] = 0x00; pmt[n++] = 0x01;       /* program_number 1 */
    pmt[n++] = 0xC1; pmt[n++] = 0x00; pmt[n++] = 0x00;
    pmt[n++] = 0xE0 | (uint8_t)(pcr_pid >> 8); pmt[n++] = (uint8_t)pcr_pid;
    pmt[n++] = 0xF0; pmt[n++] = 0x00;       /* program_info_length 0 */
    if (m->has_video) {
        pmt[n++] = STREAM_TYPE_H264;
        pmt[n++] = 0xE0 | (WEIR_TS_PID_VIDEO >> 8); pmt[n++] = WEIR_TS_PID_VIDEO & 0xFF;
        pmt[n++] = 0xF0; pmt[n++] = 0x00;
    }
    if (m->has_audio) {
        pmt[n++] = STREAM_TYPE_ADTS;
        pmt[n++] = 0xE0 | (WEIR_TS_PID_AUDIO >> 8); pmt[n++] = WEIR_TS_PID_AUDIO & 0xFF;
        pmt[n++] = 0xF0; pmt[n++] = 0x00;
    }
    psi_packet(m->psi[0], 0, pat, sizeof pat);
    psi_packet(m->psi[1], WEIR_TS_PID_PMT, pmt, n);
}

int weir_ts_mux_new(const AVCodecParameters *video, const AVCodecParameters *audio,
                    weir_ts_mux **out)
{
    weir_ts_mux *m;
    int r;

    if (!video && !audio)
        return AVERROR(EINVAL);
    if ((video && video->codec_id != AV_CODEC_ID_H264) ||
        (audio && audio->codec_id != AV_CODEC_ID_AAC))
        return AVERROR(EINVAL);
    if (!(m = calloc(1, sizeof *m)))
        return AVERROR(ENOMEM);
    m->last_pcr = -1;
    m->has_video = !!video;
    m->has_audio = !!audio;
    if ((video && (r = parse_avcc(m, video->extradata, (size_t)video->extradata_size)) < 0) ||
        (audio && (r = parse_asc(m, audio->extradata, (size_t)audio->extradata_size)) < 0)) {
        weir_ts_mux_free(m);
        return r;
    }
    build_psi(m);
    *out = m;
    return 0;
}

void weir_ts_mux_free(weir_ts_mux *m)
{
    if (!m)
        return;
    free(m->params);
    weir_bytes_free(&m->es);
    free(m);
}

static void put_ts(uint8_t *b, int prefix, int64_t ts)
{
    ts &= TS_PTS_MASK;
    b[0] = (uint8_t)(prefix << 4 | ((ts >> 30) & 7) << 1 | 1);
    b[1] = (uint8_t)(ts >> 22);
    b[2] = (uint8_t)(((ts >> 15) & 0x7F) << 1 | 1);
    b[3] = (uint8_t)(ts >> 7);
    b[4] = (uint8_t)((ts & 0x7F) << 1 | 1);
}

/* One PES (header + es[0..len-1]) as TS packets on pid.  pcr >= 0: carried
 * in the first packet's adaptation field; rai: random_access_indicator. */
static int put_pes(weir_bytes *out, int pid, uint8_t *cc, int stream_id, int64_t pts,
                   int64_t dts, const uint8_t *es, size_t len, int64_t pcr, int rai)
{
    uint8_t hdr[19], pkt[TS_PACKET];
    int both = (dts & TS_PTS_MASK) != (pts & TS_PTS_MASK);
    size_t hl = both ? 19 : 14, total, off = 0;
    size_t pes_len = hl - 6 + len;

    hdr[0] = 0; hdr[1] = 0; hdr[2] = 1; hdr[3] = (uint8_t)stream_id;
    /* Video may leave the length open (0); audio PES are bounded. */
    if (pes_len > 0xFFFF)
        pes_len = 0;
    hdr[4] = (uint8_t)(pes_len >> 8);
    hdr[5] = (uint8_t)pes_len;
    hdr[6] = 0x80;                          /* '10', not scrambled, no flags */
    hdr[7] = both ? 0xC0 : 0x80;            /* PTS (and DTS) present */
    hdr[8] = both ? 10 : 5;
    put_ts(hdr + 9, both ? 3 : 2, pts);
    if (both)
        put_ts(hdr + 14, 1, dts);
    total = hl + len;
    for (int first = 1; off < total; first = 0) {
        size_t af_fixed = first && (pcr >= 0 || rai) ? 1 + (pcr >= 0 ? 6 : 0) : 0;
        size_t room = TS_PACKET - 4 - (af_fixed ? 1 + af_fixed : 0);
        size_t take = total - off < room ? total - off : room, stuff = room - take, p = 4;
        int af = af_fixed || stuff;

        pkt[0] = 0x47;
        pkt[1] = (uint8_t)((first ? 0x40 : 0) | (pid >> 8));
        pkt[2] = (uint8_t)pid;
        pkt[3] = (uint8_t)((af ? 0x30 : 0x10) | (*cc & 0x0F));
        *cc = (uint8_t)((*cc + 1) & 0x0F);
        if (af_fixed) {
            pkt[p++] = (uint8_t)(af_fixed + stuff);     /* adaptation_field_length */
            pkt[p++] = (uint8_t)((rai ? 0x40 : 0) | (pcr >= 0 ? 0x10 : 0));
            if (pcr >= 0) {
                uint64_t base = (uint64_t)pcr & TS_PTS_MASK;
                pkt[p++] = (uint8_t)(base >> 25);
                pkt[p++] = (uint8_t)(base >> 17);
                pkt[p++] = (uint8_t)(base >> 9);
                pkt[p++] = (uint8_t)(base >> 1);
                pkt[p++] = (uint8_t)((base & 1) << 7 | 0x7E);  /* + reserved, ext 0 */
                pkt[p++] = 0;
            }
            memset(pkt + p, 0xFF, stuff);
            p += stuff;
        } else if (stuff) {
            pkt[p++] = (uint8_t)(stuff - 1);
            if (stuff > 1) {
                pkt[p++] = 0;                   /* no flags */
                memset(pkt + p, 0xFF, stuff - 2);
                p += stuff - 2;
            }
        }
        if (off < hl) {             /* only in the first packet: hl < room */
            memcpy(pkt + p, hdr, hl);
            memcpy(pkt + p + hl, es, take - hl);
        } else {
            memcpy(pkt + p, es + off - hl, take);
        }
        off += take;
        if (put(out, pkt, TS_PACKET) < 0)
            return AVERROR(ENOMEM);
    }
    return 0;
}

/* One access unit (length-prefixed NAL units) as Annex B into m->es: an AUD
 * first, the avcC's SPS/PPS before a keyframe that lacks them in-band. */
static int video_es(weir_ts_mux *m, const weir_ts_sample *s)
{
    static const uint8_t aud[6] = { 0, 0, 0, 1, 0x09, 0xF0 };
    static const uint8_t sc[4] = { 0, 0, 0, 1 };
    int has_sps = 0, r;
    size_t off;

    m->es.len = 0;
    if (s->size > NAL_MAX)
        return AVERROR(EINVAL);
    for (off = 0; off + (size_t)m->nal_len <= s->size;) {
        size_t len = 0;
        for (int i = 0; i < m->nal_len; i++)
            len = len << 8 | s->data[off + i];
        off += (size_t)m->nal_len;
        if (len > s->size - off)
            return AVERROR(EINVAL);
        if (len && (s->data[off] & 0x1F) == 7)
            has_sps = 1;
        off += len;
    }
    if (off != s->size)
        return AVERROR(EINVAL);
    if ((r = put(&m->es, aud, sizeof aud)) < 0 ||
        (s->key && !has_sps && (r = put(&m->es, m->params, m->params_len)) < 0))
        return r;
    for (off = 0; off < s->size;) {
        size_t len = 0;
        for (int i = 0; i < m->nal_len; i++)
            len = len << 8 | s->data[off + i];
        off += (size_t)m->nal_len;
        if (len && (s->data[off] & 0x1F) != 9 &&       /* ours replaces theirs */
            ((r = put(&m->es, sc, 4)) < 0 || (r = put(&m->es, s->data + off, len)) < 0))
            return r;
        off += len;
    }
    return 0;
}

static int adts_frame(weir_ts_mux *m, const weir_ts_sample *s)
{
    size_t flen = s->size + 7;
    uint8_t h[7];

    if (flen > 0x1FFF)
        return AVERROR(EINVAL);             /* ADTS frame length is 13 bits */
    h[0] = 0xFF;
    h[1] = 0xF1;                            /* MPEG-4, layer 0, no CRC */
    h[2] = (uint8_t)(m->aac_profile << 6 | m->aac_freq << 2 | m->aac_channels >> 2);
    h[3] = (uint8_t)((m->aac_channels & 3) << 6 | (int)(flen >> 11));
    h[4] = (uint8_t)(flen >> 3);
    h[5] = (uint8_t)((flen & 7) << 5 | 0x1F);   /* buffer fullness 0x7FF: VBR */
    h[6] = 0xFC;
    return put(&m->es, h, 7) < 0 || put(&m->es, s->data, s->size) < 0 ? AVERROR(ENOMEM) : 0;
}

static int64_t next_pcr(weir_ts_mux *m, int64_t dts)
{
    int64_t pcr = dts - PCR_LEAD;
    if (pcr < 0)
        pcr = 0;
    if (pcr < m->last_pcr)
        pcr = m->last_pcr;
    return m->last_pcr = pcr;
}

int weir_ts_mux_segment(weir_ts_mux *m, const weir_ts_sample *s, size_t n, weir_bytes *out)
{
    size_t entry_len = out->len;
    uint8_t cc[4] = { m->cc_pat, m->cc_pmt, m->cc_video, m->cc_audio };
    int64_t pcr_entry = m->last_pcr;
    uint8_t psi[TS_PACKET];
    int r = 0;

    for (int i = 0; i < 2; i++) {
        memcpy(psi, m->psi[i], TS_PACKET);
        psi[3] |= cc[i] & 0x0F;
        cc[i] = (uint8_t)((cc[i] + 1) & 0x0F);
        if ((r = put(out, psi, TS_PACKET)) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n;) {
        int64_t dts = s[i].dts < 0 ? 0 : s[i].dts, pts = s[i].pts < dts ? dts : s[i].pts;
        if (!s[i].audio) {
            if (!m->has_video) {
                r = AVERROR(EINVAL);
                goto fail;
            }
            if ((r = video_es(m, &s[i])) < 0 ||
                (r = put_pes(out, WEIR_TS_PID_VIDEO, &cc[2], STREAM_ID_VIDEO, pts, dts,
                             m->es.data, m->es.len, next_pcr(m, dts), s[i].key)) < 0)
                goto fail;
            i++;
            continue;
        }
        if (!m->has_audio) {
            r = AVERROR(EINVAL);
            goto fail;
        }
        /* A run of audio frames, up to AUDIO_PES_SPAN, in one PES. */
        m->es.len = 0;
        size_t j = i;
        do {
            if ((r = adts_frame(m, &s[j])) < 0)
                goto fail;
            j++;
        } while (j < n && s[j].audio && s[j].dts - s[i].dts < AUDIO_PES_SPAN &&
                 m->es.len + s[j].size + 7 <= AUDIO_PES_MAX);
        if ((r = put_pes(out, WEIR_TS_PID_AUDIO, &cc[3], STREAM_ID_AUDIO, pts, pts,
                         m->es.data, m->es.len, m->has_video ? -1 : next_pcr(m, dts), 1)) < 0)
            goto fail;
        i = j;
    }
    m->cc_pat = cc[0];
    m->cc_pmt = cc[1];
    m->cc_video = cc[2];
    m->cc_audio = cc[3];
    return 0;
fail:
    out->len = entry_len;
    m->last_pcr = pcr_entry;
    return r;
}

/* ---- the presentation side ---------------------------------------------- */

#define TS_LAG_MAX      4           /* segments a track may fall behind before TS goes on */
#define WINDOW_SPARE    2           /* as pres.c: kept past the listed window (410 after) */

/* One track's packets of one segment: cut, not yet muxed. */
typedef struct ts_cutseg {
    int64_t number;
    AVPacket **pkts;
    int n;
    int64_t start_ts, duration_ts;  /* the CMAF segment's (track timescale); -1: none */
} ts_cutseg;

typedef struct ts_trk {
    int used;                       /* in some rendition */
    AVPacket **pend;                /* the segment being cut */
    int npend, cappend;
    ts_cutseg q[TS_LAG_MAX + 1];    /* oldest first */
    int nq;
} ts_trk;

typedef struct ts_seg {
    int64_t number, start_ts, duration_ts;  /* main track's timescale */
    weir_buf *buf;
    int seq;                        /* discontinuity sequence (pres.h's epochs) */
} ts_seg;

typedef struct ts_rend {
    char id[16];                    /* the main track's id: "v0", or "a0" without video */
    int video, audio;               /* track indexes, -1 for none */
    int main;                       /* video, else audio: numbers and durations */
    weir_ts_mux *mux;
    ts_seg *segs;                   /* live window + WINDOW_SPARE, oldest first */
    int nsegs, capsegs;
    pkg_span *rec;                  /* every segment, when recording */
    int nrec, caprec;
    uint64_t bytes_total;
    int64_t duration_total_ts, peak_bps;
    weir_buf *playlist;
} ts_rend;

struct pkg_ts {
    ts_trk trk[WEIR_STREAM_MAX_TRACKS];
    ts_rend rend[WEIR_STREAM_MAX_TRACKS];
    int nrend;
    int64_t next;                   /* lowest segment number not muxed yet */
    int final_cuts;                 /* tracks' last cuts seen since the publisher left */
    int seq;                        /* the current epoch's discontinuity sequence */
    weir_buf *master;
    uint64_t version;
    int64_t updated_unix_ms;
};

static void free_pkts(AVPacket **pkts, int n)
{
    for (int i = 0; i < n; i++)
        av_packet_free(&pkts[i]);
    free(pkts);
}

static void cutseg_free(ts_cutseg *c)
{
    free_pkts(c->pkts, c->n);
    c->pkts = NULL;
    c->n = 0;
}

int ts_new(pkg_pres *p)
{
    pkg_ts *ts = calloc(1, sizeof *ts);
    int audio = -1, nvideo = 0;

    if (!ts)
        return AVERROR(ENOMEM);
    for (int i = 0; i < p->ntracks; i++)
        if (!p->tracks[i].is_video && audio < 0) {
            if (weir_ts_supported(p->tracks[i].par))
                audio = i;
            else
                weir_log_warn("packager", "hls_ts: audio left out of TS (AAC only)",
                              WL_STR("stream", p->name), WL_STR("track", p->tracks[i].id),
                              WL_STR("codec", avcodec_get_name(p->tracks[i].par->codec_id)));
        }
    for (int i = 0; i < p->ntracks; i++) {
        pkg_track *t = &p->tracks[i];
        if (!t->is_video)
            continue;
        nvideo++;
        if (!weir_ts_supported(t->par)) {
            weir_log_warn("packager", "hls_ts: no TS variant for this rendition (H.264 only)",
                          WL_STR("stream", p->name), WL_STR("track", t->id),
                          WL_STR("codec", avcodec_get_name(t->par->codec_id)));
            continue;
        }
        ts->rend[ts->nrend++] = (ts_rend){ .video = i, .audio = audio, .main = i };
    }
    if (nvideo == 0 && audio >= 0)
        ts->rend[ts->nrend++] = (ts_rend){ .video = -1, .audio = audio, .main = audio };
    for (int i = 0; i < ts->nrend; i++) {
        ts_rend *r = &ts->rend[i];
        int err = weir_ts_mux_new(r->video >= 0 ? p->tracks[r->video].par : NULL,
                                  r->audio >= 0 ? p->tracks[r->audio].par : NULL, &r->mux);
        if (err < 0) {
            ts_free(ts);
            return err;
        }
        snprintf(r->id, sizeof r->id, "%s", p->tracks[r->main].id);
        ts->trk[r->main].used = 1;
        if (r->audio >= 0)
            ts->trk[r->audio].used = 1;
    }
    ts->next = p->first_number;
    if (ts->nrend == 0) {
        ts_free(ts);
        return 0;
    }
    p->ts = ts;
    return 0;
}

void ts_free(pkg_ts *ts)
{
    if (!ts)
        return;
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++) {
        ts_trk *k = &ts->trk[i];
        free_pkts(k->pend, k->npend);
        for (int j = 0; j < k->nq; j++)
            cutseg_free(&k->q[j]);
    }
    for (int i = 0; i < ts->nrend; i++) {
        ts_rend *r = &ts->rend[i];
        weir_ts_mux_free(r->mux);
        for (int j = 0; j < r->nsegs; j++)
            weir_buf_unref(r->segs[j].buf);
        free(r->segs);
        free(r->rec);
        weir_buf_unref(r->playlist);
    }
    weir_buf_unref(ts->master);
    free(ts);
}

int ts_take(pkg_pres *p, pkg_track *t, AVPacket **pkts, int n)
{
    ts_trk *k = &p->ts->trk[t - p->tracks];

    if (!k->used)
        return 0;
    if (k->npend + n > k->cappend) {
        int cap = k->cappend ? k->cappend : 64;
        while (cap < k->npend + n)
            cap *= 2;
        AVPacket **grown = realloc(k->pend, (size_t)cap * sizeof *grown);
        if (!grown)
            return AVERROR(ENOMEM);
        k->pend = grown;
        k->cappend = cap;
    }
    for (int i = 0; i < n; i++) {
        k->pend[k->npend++] = pkts[i];
        pkts[i] = NULL;
    }
    return 0;
}

/* 90 kHz on the presentation's media clock (pres.c's decode times without
 * the composition shift: TS carries DTS and PTS as they are). */
static int64_t to90k(const pkg_pres *p, const pkg_track *t, int64_t ts)
{
    return av_rescale_q(ts, t->tb, (AVRational){ 1, 90000 }) - p->base_ms * 90;
}

/* ---- playlists ---------------------------------------------------------- */

static uint64_t etag_of(const pkg_pres *p, uint64_t what)
{
    /* Distinct from pres.c's tags (another salt), unique per presentation. */
    return ((uint64_t)p->created_unix_ms * 0xC2B2AE3D27D4EB4Full) ^ what;
}

static int64_t rend_avg_bps(const pkg_pres *p, const ts_rend *r)
{
    const pkg_track *t = &p->tracks[r->main];
    if (r->duration_total_ts <= 0)
        return 0;
    return av_rescale((int64_t)r->bytes_total * 8, t->timescale, r->duration_total_ts);
}

/* EXT-X-VERSION 3: floating EXTINF, nothing newer (no EXT-X-MAP, no parts). */
static weir_buf *render_master(const pkg_pres *p, const pkg_ts *ts)
{
    weir_bytes b = { 0 };
    int r = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");

    for (int i = 0; i < ts->nrend && r >= 0; i++) {
        const ts_rend *x = &ts->rend[i];
        const pkg_track *v = x->video >= 0 ? &p->tracks[x->video] : NULL;
        const pkg_track *a = x->audio >= 0 ? &p->tracks[x->audio] : NULL;
        if (x->nrec == 0 && x->nsegs == 0)
            continue;               /* nothing playable (yet) */
        r = pkg_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%" PRId64 ",AVERAGE-BANDWIDTH=%" PRId64
                       ",CODECS=\"%s%s%s\"", x->peak_bps, rend_avg_bps(p, x),
                       v ? v->codecs : "", v && a ? "," : "", a ? a->codecs : "");
        if (r >= 0 && v && v->par->width > 0)
            r = pkg_printf(&b, ",RESOLUTION=%dx%d", v->par->width, v->par->height);
        if (r >= 0 && v && pres_track_fps(v) > 0)
            r = pkg_printf(&b, ",FRAME-RATE=%.3f", pres_track_fps(v));
        if (r >= 0)
            r = pkg_printf(&b, "\n%s.m3u8\n", x->id);
    }
    return pkg_finish(&b, r);
}

static int64_t listed_first(const pkg_pres *p, const ts_rend *r)
{
    return r->nsegs > p->settings->window ? r->nsegs - p->settings->window : 0;
}

static weir_buf *render_media(const pkg_pres *p, const ts_rend *r)
{
    const pkg_track *t = &p->tracks[r->main];
    int first = (int)listed_first(p, r);
    char when[WEIR_ISO8601_LEN];
    weir_bytes b = { 0 };
    int e;

    e = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%" PRId64 "\n"
                   "#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n#EXT-X-DISCONTINUITY-SEQUENCE:%d\n"
                   "#EXT-X-INDEPENDENT-SEGMENTS\n", p->target_s,
                   r->nsegs ? r->segs[first].number : p->ts->next,
                   r->nsegs ? r->segs[first].seq : p->ts->seq);
    for (int i = first; i < r->nsegs && e >= 0; i++) {
        const ts_seg *s = &r->segs[i];
        /* A publisher came back: new codec setup, restarted counters. */
        if (i > first && s->seq != r->segs[i - 1].seq)
            e = pkg_printf(&b, "#EXT-X-DISCONTINUITY\n");
        weir_clock_iso8601(p->ast_unix_ms + av_rescale(s->start_ts, 1000, t->timescale), when);
        if (e >= 0)
            e = pkg_printf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:%.5f,\n%s_%" PRId64
                           ".ts\n", when, (double)s->duration_ts / t->timescale, r->id,
                           s->number);
    }
    if (e >= 0 && p->ended)
        e = pkg_printf(&b, "#EXT-X-ENDLIST\n");
    return pkg_finish(&b, e);
}

static weir_buf *render_vod_media(const pkg_pres *p, const ts_rend *r)
{
    const pkg_track *t = &p->tracks[r->main];
    weir_bytes b = { 0 };
    int e;

    e = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%" PRId64 "\n"
                   "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n"
                   "#EXT-X-INDEPENDENT-SEGMENTS\n", p->target_s,
                   r->nrec ? r->rec[0].number : p->first_number);
    for (int i = 0; i < r->nrec && e >= 0; i++)
        e = pkg_printf(&b, "#EXTINF:%.5f,\n%s_%" PRId64 ".ts\n",
                       (double)r->rec[i].duration_ts / t->timescale, r->id, r->rec[i].number);
    if (e >= 0)
        e = pkg_printf(&b, "#EXT-X-ENDLIST\n");
    return pkg_finish(&b, e);
}

static void publish(pkg_pres *p, int64_t now_unix_ms)
{
    pkg_ts *ts = p->ts;
    weir_buf *b;
    int all = 1;

    ts->version++;
    ts->updated_unix_ms = now_unix_ms;
    for (int i = 0; i < ts->nrend; i++) {
        ts_rend *r = &ts->rend[i];
        if ((b = render_media(p, r))) {
            weir_buf_unref(r->playlist);
            r->playlist = b;
        }
        if (r->nsegs == 0)
            all = 0;
    }
    /* Like the CMAF master: once every rendition has a measured segment. */
    if ((all || p->ended) && (b = render_master(p, ts))) {
        weir_buf_unref(ts->master);
        ts->master = b;
    }
}

/* ---- muxing ------------------------------------------------------------- */

/* Appends track ti's packets of c (borrowed: the samples point into them). */
static void add_samples(const pkg_pres *p, int ti, const ts_cutseg *c, int audio,
                        weir_ts_sample *out, size_t *n)
{
    const pkg_track *t = &p->tracks[ti];
    for (int i = 0; c && i < c->n; i++) {
        const AVPacket *pkt = c->pkts[i];
        out[(*n)++] = (weir_ts_sample){
            .data = pkt->data, .size = (size_t)pkt->size, .audio = audio,
            .dts = to90k(p, t, pkt->dts), .pts = to90k(p, t, pkt->pts),
            .key = !!(pkt->flags & AV_PKT_FLAG_KEY),
        };
    }
}

/* Decode order across both streams; video first on a tie, so a segment's
 * first PES after the PMT is its keyframe. */
static int by_dts(const void *a, const void *b)
{
    const weir_ts_sample *x = a, *y = b;
    if (x->dts != y->dts)
        return x->dts < y->dts ? -1 : 1;
    if (x->audio != y->audio)
        return x->audio - y->audio;
    /* Same stream, same DTS (a broken source): any fixed order will do. */
    return x->data < y->data ? -1 : x->data > y->data;
}

static void store(pkg_pres *p, ts_rend *r, const ts_cutseg *main, weir_buf *buf)
{
    const pkg_track *t = &p->tracks[r->main];
    int keep = (int)p->settings->window + WINDOW_SPARE;
    char name[64];

    if (r->nsegs == r->capsegs) {
        int cap = r->capsegs ? r->capsegs * 2 : 16;
        ts_seg *grown = realloc(r->segs, (size_t)cap * sizeof *grown);
        if (!grown) {
            weir_buf_unref(buf);
            return;
        }
        r->segs = grown;
        r->capsegs = cap;
    }
    r->segs[r->nsegs++] = (ts_seg){ main->number, main->start_ts, main->duration_ts, buf,
                                    p->ts->seq };
    if (r->nsegs > keep) {
        int drop = r->nsegs - keep;
        for (int i = 0; i < drop; i++)
            weir_buf_unref(r->segs[i].buf);
        memmove(r->segs, r->segs + drop, (size_t)(r->nsegs - drop) * sizeof *r->segs);
        r->nsegs -= drop;
    }
    r->bytes_total += buf->size;
    r->duration_total_ts += main->duration_ts;
    if (main->duration_ts > 0) {
        int64_t bps = av_rescale((int64_t)buf->size * 8, t->timescale, main->duration_ts);
        if (bps > r->peak_bps)
            r->peak_bps = bps;
    }
    if (!p->rec)
        return;
    if (r->nrec == r->caprec) {
        int cap = r->caprec ? r->caprec * 2 : 64;
        pkg_span *grown = realloc(r->rec, (size_t)cap * sizeof *grown);
        if (!grown)
            return;
        r->rec = grown;
        r->caprec = cap;
    }
    r->rec[r->nrec++] = (pkg_span){ main->number, main->start_ts, main->duration_ts };
    snprintf(name, sizeof name, "ts/%s_%" PRId64 ".ts", r->id, main->number);
    rec_file(p, name, buf);
}

/* Rendition r's segment from its tracks' cut packets (either may be NULL). */
static void mux_rendition(pkg_pres *p, ts_rend *r, const ts_cutseg *v, const ts_cutseg *a)
{
    const ts_cutseg *main = r->video >= 0 ? v : a;
    weir_ts_sample *samples;
    weir_bytes out = { 0 };
    size_t n = 0;
    weir_buf *buf;
    int e;

    if (!main || main->n == 0 || main->duration_ts < 0)
        return;                     /* the CMAF playlists skip it too */
    if (!(samples = calloc((size_t)(v ? v->n : 0) + (size_t)(a ? a->n : 0), sizeof *samples)))
        goto oom;
    if (r->video >= 0)
        add_samples(p, r->video, v, 0, samples, &n);
    if (r->audio >= 0)
        add_samples(p, r->audio, a, 1, samples, &n);
    qsort(samples, n, sizeof *samples, by_dts);
    e = weir_ts_mux_segment(r->mux, samples, n, &out);
    free(samples);
    if (e < 0) {
        weir_log_error("packager", "hls_ts: segment not muxed", WL_STR("stream", p->name),
                       WL_STR("rendition", r->id), WL_INT("segment", main->number), WL_ERR(e));
        weir_bytes_free(&out);
        return;
    }
    buf = weir_buf_copy(out.data, out.len);
    weir_bytes_free(&out);
    if (!buf)
        goto oom;
    store(p, r, main, buf);
    return;
oom:
    weir_log_error("packager", "hls_ts: out of memory", WL_STR("stream", p->name));
}

/* The front of track k's queue if it is segment n. */
static ts_cutseg *front(pkg_ts *ts, int ti, int64_t n)
{
    ts_trk *k = ti >= 0 ? &ts->trk[ti] : NULL;
    return k && k->nq > 0 && k->q[0].number == n ? &k->q[0] : NULL;
}

/* Muxes every segment each used track has cut; a track TS_LAG_MAX behind
 * the others is not waited for (its late segments are dropped), and at the
 * end (flush: every track made its last cut) nobody is. */
static int mux_ready(pkg_pres *p, int flush)
{
    pkg_ts *ts = p->ts;
    int done = 0;

    for (;;) {
        int64_t n = INT64_MAX;
        int all = 1, lagging = 0;
        for (int i = 0; i < p->ntracks; i++) {
            ts_trk *k = &ts->trk[i];
            if (!k->used)
                continue;
            if (k->nq == 0)
                all = 0;
            else if (k->q[0].number < n)
                n = k->q[0].number;
            if (k->nq >= TS_LAG_MAX)
                lagging = 1;
        }
        if (n == INT64_MAX || (!all && !lagging && !flush))
            return done;
        for (int i = 0; i < ts->nrend; i++) {
            ts_rend *r = &ts->rend[i];
            mux_rendition(p, r, front(ts, r->video, n), front(ts, r->audio, n));
        }
        for (int i = 0; i < p->ntracks; i++) {
            ts_trk *k = &ts->trk[i];
            if (k->used && k->nq > 0 && k->q[0].number == n) {
                cutseg_free(&k->q[0]);
                memmove(k->q, k->q + 1, (size_t)(k->nq - 1) * sizeof *k->q);
                k->nq--;
            }
        }
        ts->next = n + 1;
        done = 1;
    }
}

void ts_cut(pkg_pres *p, pkg_track *t, const pkg_segment *s, int64_t now_unix_ms)
{
    pkg_ts *ts = p->ts;
    ts_trk *k = &ts->trk[t - p->tracks];
    int64_t number = s ? s->number : t->first_number + (int64_t)t->segs_cut;

    if (p->paused)
        ts->final_cuts++;           /* every track's, used or not: the flush counts them */
    if (!k->used)
        return;
    if (number < ts->next || k->nq > TS_LAG_MAX) {
        free_pkts(k->pend, k->npend);       /* too late: TS went on without it */
    } else {
        k->q[k->nq++] = (ts_cutseg){
            .number = number, .pkts = k->pend, .n = k->npend,
            .start_ts = s ? s->start_ts : -1, .duration_ts = s ? s->duration_ts : -1,
        };
    }
    k->pend = NULL;
    k->npend = k->cappend = 0;
    if (mux_ready(p, p->paused && ts->final_cuts >= p->ntracks) || p->paused)
        publish(p, now_unix_ms);
}

void ts_ended(pkg_pres *p, int64_t now_unix_ms)
{
    if (p->ts)
        publish(p, now_unix_ms);
}

int ts_resume(pkg_pres *p, int64_t now_unix_ms)
{
    pkg_ts *ts = p->ts;
    weir_ts_mux *mux[WEIR_STREAM_MAX_TRACKS] = { 0 };
    int e = 0;

    if (!ts)
        return 0;
    /* New writers for the new codec setup (SPS/PPS, AAC config); their
     * counters restart, which the discontinuity allows. */
    for (int i = 0; i < ts->nrend && e >= 0; i++) {
        const ts_rend *r = &ts->rend[i];
        e = weir_ts_mux_new(r->video >= 0 ? p->tracks[r->video].par : NULL,
                            r->audio >= 0 ? p->tracks[r->audio].par : NULL, &mux[i]);
    }
    if (e < 0) {
        for (int i = 0; i < ts->nrend; i++)
            weir_ts_mux_free(mux[i]);
        return e;
    }
    for (int i = 0; i < ts->nrend; i++) {
        weir_ts_mux_free(ts->rend[i].mux);
        ts->rend[i].mux = mux[i];
        ts->rend[i].nrec = 0;       /* a new recording */
    }
    ts->final_cuts = 0;
    ts->seq = p->epoch_seq;
    publish(p, now_unix_ms);
    return 0;
}

/* ---- lookup and recording ----------------------------------------------- */

static ts_rend *find_rend(pkg_ts *ts, const char *id, size_t len)
{
    for (int i = 0; i < ts->nrend; i++)
        if (strlen(ts->rend[i].id) == len && memcmp(ts->rend[i].id, id, len) == 0)
            return &ts->rend[i];
    return NULL;
}

int ts_lookup(pkg_pres *p, const char *file, weir_object *out)
{
    pkg_ts *ts = p->ts;
    const char *dot = strrchr(file, '.'), *us;
    ts_rend *r;
    int64_t n;
    char *end;

    if (!ts || !dot)
        return AVERROR(ENOENT);
    if (strcmp(file, "index.m3u8") == 0)
        return pkg_give(out, ts->master, "application/vnd.apple.mpegurl", WEIR_CACHE_MASTER, 0,
                    ts->updated_unix_ms, etag_of(p, ts->version));
    if (strcmp(dot, ".m3u8") == 0) {
        if (!(r = find_rend(ts, file, (size_t)(dot - file))))
            return AVERROR(ENOENT);
        return pkg_give(out, r->playlist, "application/vnd.apple.mpegurl", WEIR_CACHE_LIVE,
                    p->settings->segment_duration / 2, ts->updated_unix_ms,
                    etag_of(p, ts->version * 64 + (uint64_t)(r - ts->rend) + 1));
    }
    if (strcmp(dot, ".ts") != 0 || !(us = strchr(file, '_')) ||
        !(r = find_rend(ts, file, (size_t)(us - file))) || us[1] < '0' || us[1] > '9')
        return AVERROR(ENOENT);
    n = strtoll(us + 1, &end, 10);
    if (end != dot)
        return AVERROR(ENOENT);
    for (int i = 0; i < r->nsegs; i++)
        if (r->segs[i].number == n) {
            const pkg_track *t = &p->tracks[r->main];
            const ts_seg *s = &r->segs[i];
            return pkg_give(out, s->buf, "video/mp2t", WEIR_CACHE_IMMUTABLE, 0,
                        p->ast_unix_ms + av_rescale(s->start_ts + s->duration_ts, 1000,
                                                    t->timescale),
                        etag_of(p, (uint64_t)n << 8 ^ (uint64_t)(r - ts->rend) << 4 ^ 0xF));
        }
    if (r->nsegs > 0 && n < r->segs[0].number && n >= p->first_number)
        return AVERROR(ESTALE);
    return AVERROR(ENOENT);
}

void ts_rec_end(pkg_pres *p)
{
    pkg_ts *ts = p->ts;
    char name[64];
    weir_buf *b;

    if (!ts)
        return;
    b = render_master(p, ts);
    rec_file(p, "ts/index.m3u8", b);            /* NULL: the recording fails */
    weir_buf_unref(b);
    for (int i = 0; i < ts->nrend; i++) {
        snprintf(name, sizeof name, "ts/%s.m3u8", ts->rend[i].id);
        b = render_vod_media(p, &ts->rend[i]);
        rec_file(p, name, b);
        weir_buf_unref(b);
    }
}
