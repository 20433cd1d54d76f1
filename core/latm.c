/*
 * core/latm.c — see latm.h.  Field names follow ISO/IEC 14496-3 (1.7.3,
 * AudioMuxElement and StreamMuxConfig; 1.6.2.1, AudioSpecificConfig).
 *
 * Reading: a bit reader that never reads past the frame; any overrun marks
 * it bad and the whole frame is refused with AVERROR_INVALIDDATA.
 */
#include "core/latm.h"

#include <errno.h>
#include <string.h>

#include <libavutil/error.h>

#define LOAS_SYNC 0x2B7

typedef struct bits {
    const uint8_t *p;
    size_t n;               /* bits in p */
    size_t pos;
    int bad;                /* read past the end */
} bits;

static uint32_t get(bits *b, int n)
{
    uint32_t v = 0;

    if (b->bad || b->n - b->pos < (size_t)n) {
        b->bad = 1;
        return 0;
    }
    for (int i = 0; i < n; i++, b->pos++)
        v = v << 1 | (uint32_t)(b->p[b->pos >> 3] >> (7 - (b->pos & 7)) & 1);
    return v;
}

static void skip(bits *b, size_t n)
{
    if (b->bad || b->n - b->pos < n)
        b->bad = 1;
    else
        b->pos += n;
}

/* LatmGetValue(): 2 bits of byte count - 1, then the bytes. */
static uint32_t latm_value(bits *b)
{
    int bytes = (int)get(b, 2) + 1;
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | get(b, 8);
    return v;
}

static int object_type(bits *b)
{
    int t = (int)get(b, 5);
    return t == 31 ? 32 + (int)get(b, 6) : t;
}

static int sample_rate(bits *b)
{
    static const int rates[13] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                   22050, 16000, 12000, 11025, 8000, 7350 };
    uint32_t i = get(b, 4);
    if (i == 15)
        return (int)get(b, 24);
    return i < 13 ? rates[i] : -1;
}

/* AudioSpecificConfig() at b's position, for the object types whose
 * config is GASpecificConfig (AAC main/LC/SSR/LTP/scalable, ER AAC, and
 * SBR/PS signalled explicitly over them).  No sync extension follows in
 * LATM version 0 (its length is not known), as libavcodec reads it too. */
static int parse_asc(bits *b, weir_latm *st)
{
    int aot = object_type(b), sr, ch;

    sr = sample_rate(b);
    ch = (int)get(b, 4);
    st->object_type = aot;
    if (aot == 5 || aot == 29) {        /* explicit SBR / PS: the core follows */
        if (sample_rate(b) <= 0)
            return AVERROR_INVALIDDATA;
        aot = object_type(b);
    }
    if (b->bad || sr <= 0)
        return AVERROR_INVALIDDATA;
    switch (aot) {
    case 1: case 2: case 3: case 4: case 6: case 7:
    case 17: case 19: case 20: case 21: case 22: case 23:
        break;
    default:
        return AVERROR_PATCHWELCOME;    /* CELP, HVXC, ALS, USAC, ...: not AAC */
    }
    if (ch == 0 || ch > 7)
        return AVERROR_PATCHWELCOME;    /* a program_config_element; 8+ reserved */
    get(b, 1);                          /* frameLengthFlag */
    if (get(b, 1))                      /* dependsOnCoreCoder */
        get(b, 14);                     /* coreCoderDelay */
    int ext = (int)get(b, 1);
    if (aot == 6 || aot == 20)
        get(b, 3);                      /* layerNr */
    if (ext) {
        if (aot == 22)
            get(b, 16);                 /* numOfSubFrame 5, layer_length 11 */
        if (aot == 17 || aot == 19 || aot == 20 || aot == 23)
            get(b, 3);                  /* the three resilience flags */
        get(b, 1);                      /* extensionFlag3 */
    }
    if (ch == 7)
        ch = 8;
    st->sample_rate = sr;
    st->channels = ch;
    return b->bad ? AVERROR_INVALIDDATA : 0;
}

/* Copies bits [from, to) of b as bytes, zero-padded at the end. */
static int copy_bits(const bits *b, size_t from, size_t to, uint8_t *out, size_t cap)
{
    bits r = { b->p, to, from, 0 };
    size_t n = to - from, len = (n + 7) / 8;

    if (len > cap)
        return AVERROR_INVALIDDATA;
    memset(out, 0, len);
    for (size_t i = 0; n >= 8; i++, n -= 8)
        out[i] = (uint8_t)get(&r, 8);
    if (n)
        out[len - 1] = (uint8_t)(get(&r, (int)n) << (8 - n));
    return (int)len;
}

static int stream_mux_config(bits *b, weir_latm *st)
{
    uint8_t asc[WEIR_LATM_ASC_MAX];
    size_t start, end;
    int r, len;

    st->mux_version = (int)get(b, 1);
    if (st->mux_version && get(b, 1))
        return AVERROR_PATCHWELCOME;    /* audioMuxVersionA: reserved */
    if (st->mux_version)
        latm_value(b);                  /* taraBufferFullness */
    if (!get(b, 1) || get(b, 6) != 0 || get(b, 4) != 0 || get(b, 3) != 0)
        return b->bad ? AVERROR_INVALIDDATA : AVERROR_PATCHWELCOME;
    /* allStreamsSameTimeFraming, numSubFrames 0, numProgram 0, numLayer 0 */
    if (st->mux_version) {
        uint32_t asc_bits = latm_value(b);
        if (b->bad || asc_bits > b->n - b->pos)
            return AVERROR_INVALIDDATA;
        start = b->pos;
        if ((r = parse_asc(b, st)) < 0)
            return r;
        if (b->pos - start > asc_bits)
            return AVERROR_INVALIDDATA;
        end = b->pos;
        b->pos = start + asc_bits;      /* fill bits after the config */
    } else {
        start = b->pos;
        if ((r = parse_asc(b, st)) < 0)
            return r;
        end = b->pos;
    }
    if (get(b, 3) != 0)                 /* frameLengthType */
        return b->bad ? AVERROR_INVALIDDATA : AVERROR_PATCHWELCOME;
    get(b, 8);                          /* latmBufferFullness */
    st->other_data_bits = 0;
    if (get(b, 1)) {                    /* otherDataPresent */
        if (st->mux_version) {
            st->other_data_bits = latm_value(b);
        } else {
            int esc, n = 0;
            do {
                esc = (int)get(b, 1);
                st->other_data_bits = st->other_data_bits << 8 | get(b, 8);
            } while (esc && ++n < 4 && !b->bad);
            if (esc)
                return AVERROR_INVALIDDATA;
        }
    }
    st->crc_present = (int)get(b, 1);
    if (st->crc_present)
        get(b, 8);                      /* crcCheckSum */
    if (b->bad || (len = copy_bits(b, start, end, asc, sizeof asc)) < 2)
        return AVERROR_INVALIDDATA;
    if (len != st->asc_len || memcmp(asc, st->asc, (size_t)len)) {
        memcpy(st->asc, asc, (size_t)len);
        st->asc_len = len;
        st->config_changed = 1;
    }
    return 0;
}

int weir_latm_loas_frame(weir_latm *st, const uint8_t *buf, size_t len, uint8_t *out,
                         size_t cap, size_t *payload_len)
{
    bits b = { buf, 0, 0, 0 };
    size_t plen = 0, start;
    uint32_t t;
    int r;

    if (len < 3 || (buf[0] << 3 | buf[1] >> 5) != LOAS_SYNC)
        return AVERROR_INVALIDDATA;
    b.n = 8 * (3 + (size_t)((buf[1] & 0x1f) << 8 | buf[2]));
    if (b.n > 8 * len)
        return AVERROR_INVALIDDATA;
    b.pos = 24;
    if (!get(&b, 1)) {                  /* useSameStreamMux == 0: a config */
        if ((r = stream_mux_config(&b, st)) < 0) {
            st->asc_len = 0;            /* what follows cannot be trusted either */
            return r;
        }
    } else if (!st->asc_len) {
        return AVERROR(EAGAIN);
    }
    do {                                /* PayloadLengthInfo, frameLengthType 0 */
        t = get(&b, 8);
        plen += t;
    } while (t == 255 && !b.bad);
    if (b.bad || plen == 0 || plen > cap || 8 * plen > b.n - b.pos)
        return AVERROR_INVALIDDATA;
    start = b.pos;
    if (copy_bits(&b, start, start + 8 * plen, out, cap) < 0)
        return AVERROR_INVALIDDATA;
    skip(&b, 8 * plen);
    skip(&b, (size_t)st->other_data_bits);
    if (b.bad)
        return AVERROR_INVALIDDATA;
    *payload_len = plen;
    return 0;
}
