/*
 * Unit tests for core/latm: LOAS frames written bit by bit here, as an
 * encoder writes them (ISO/IEC 14496-3 1.7), against the parser.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>

#include "core/latm.h"

typedef struct bw {
    uint8_t b[2048];
    size_t pos;             /* bits */
} bw;

static void put(bw *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, w->pos++)
        if (v >> i & 1)
            w->b[w->pos >> 3] |= (uint8_t)(0x80 >> (w->pos & 7));
}

/* A LOAS frame: a config (AAC-LC, 48 kHz, stereo: ASC 0x11 0x90) unless
 * same_mux, then `plen` payload bytes of value i & 0xff.  knobs: programs
 * (numProgram), other data bits. */
static size_t frame(uint8_t *out, int same_mux, size_t plen, int programs, int other_bits)
{
    bw w;
    size_t len;

    memset(&w, 0, sizeof w);
    put(&w, 0x2B7, 11);
    put(&w, 0, 13);                     /* length: filled below */
    put(&w, same_mux, 1);
    if (!same_mux) {
        put(&w, 0, 1);                  /* audioMuxVersion */
        put(&w, 1, 1);                  /* allStreamsSameTimeFraming */
        put(&w, 0, 6);                  /* numSubFrames */
        put(&w, (uint32_t)programs, 4);
        put(&w, 0, 3);                  /* numLayer */
        put(&w, 2, 5);                  /* AAC-LC */
        put(&w, 3, 4);                  /* 48000 */
        put(&w, 2, 4);                  /* stereo */
        put(&w, 0, 3);                  /* GASpecificConfig: 3 flags */
        put(&w, 0, 3);                  /* frameLengthType */
        put(&w, 0xff, 8);               /* latmBufferFullness */
        put(&w, other_bits > 0, 1);
        if (other_bits > 0) {
            put(&w, 0, 1);
            put(&w, (uint32_t)other_bits, 8);
        }
        put(&w, 0, 1);                  /* crcCheckPresent */
    }
    for (size_t n = plen; ; n -= 255) {
        put(&w, n >= 255 ? 255 : (uint32_t)n, 8);
        if (n < 255)
            break;
    }
    for (size_t i = 0; i < plen; i++)
        put(&w, (uint32_t)(i & 0xff), 8);
    put(&w, 0, other_bits);
    len = (w.pos + 7) / 8;
    w.b[1] |= (uint8_t)((len - 3) >> 8);
    w.b[2] = (uint8_t)(len - 3);
    memcpy(out, w.b, len);
    return len;
}

Test(latm, config_then_same_mux_frames)
{
    weir_latm st;
    uint8_t in[2048], out[2048];
    size_t n, plen = 0;

    memset(&st, 0, sizeof st);
    n = frame(in, 1, 10, 0, 0);
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), AVERROR(EAGAIN),
                 "a frame reusing a config never seen");

    n = frame(in, 0, 300, 0, 0);        /* 255 + 45: two length bytes */
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), 0);
    cr_assert_eq(plen, 300);
    for (size_t i = 0; i < plen; i++)
        cr_assert_eq(out[i], i & 0xff, "byte %zu", i);
    cr_assert_eq(st.asc_len, 2);
    cr_assert_eq(st.asc[0], 0x11);
    cr_assert_eq(st.asc[1], 0x90);
    cr_assert_eq(st.sample_rate, 48000);
    cr_assert_eq(st.channels, 2);
    cr_assert_eq(st.object_type, 2);

    n = frame(in, 1, 7, 0, 0);
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), 0);
    cr_assert_eq(plen, 7);
    cr_assert_eq(out[6], 6);

    n = frame(in, 0, 20, 0, 12);        /* other data after the payload */
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), 0);
    cr_assert_eq(plen, 20);
    cr_assert_eq(out[19], 19);
}

Test(latm, refusals)
{
    weir_latm st;
    uint8_t in[2048], out[2048];
    size_t n, plen = 0;

    memset(&st, 0, sizeof st);
    n = frame(in, 0, 50, 1, 0);         /* two programs */
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen),
                 AVERROR_PATCHWELCOME);
    n = frame(in, 0, 50, 0, 0);
    for (size_t cut = 0; cut < n; cut++)
        cr_assert_eq(weir_latm_loas_frame(&st, in, cut, out, sizeof out, &plen),
                     AVERROR_INVALIDDATA, "cut at %zu", cut);
    in[0] ^= 0x80;                      /* no syncword */
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), AVERROR_INVALIDDATA);
    in[0] ^= 0x80;
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, 10, &plen), AVERROR_INVALIDDATA,
                 "a payload larger than the caller's buffer");
    cr_assert_eq(weir_latm_loas_frame(&st, in, n, out, sizeof out, &plen), 0);
}

/* Real LOAS from ffmpeg's latm muxer (the fuzz seed): every whole frame
 * parses, and its payload decodes with libavcodec's AAC decoder under the
 * parsed ASC to 1024 samples: the bits were cut at the right places. */
Test(latm, ffmpeg_loas_decodes_as_plain_aac)
{
    char path[4096];
    uint8_t in[4096], out[4096];
    const char *root = getenv("WEIR_SOURCE_ROOT");
    FILE *f;
    size_t len, off = 0;
    int decoded = 0;
    weir_latm st;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();

    memset(&st, 0, sizeof st);
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/latm/aac_lc_48k.loas", root ? root : ".");
    cr_assert_not_null(f = fopen(path, "rb"), "%s", path);
    len = fread(in, 1, sizeof in, f);
    fclose(f);
    while (len - off >= 3) {
        size_t n = 3 + (size_t)((in[off + 1] & 0x1f) << 8 | in[off + 2]), plen = 0;
        if (n > len - off)
            break;                      /* the seed is cut mid-frame */
        cr_assert_eq(weir_latm_loas_frame(&st, in + off, n, out, sizeof out, &plen), 0,
                     "frame at %zu", off);
        off += n;
        if (!dec) {
            cr_assert_eq(st.sample_rate, 48000);
            cr_assert_not_null(dec = avcodec_alloc_context3(avcodec_find_decoder(AV_CODEC_ID_AAC)));
            cr_assert_not_null(dec->extradata = av_mallocz((size_t)st.asc_len +
                                                           AV_INPUT_BUFFER_PADDING_SIZE));
            memcpy(dec->extradata, st.asc, (size_t)st.asc_len);
            dec->extradata_size = st.asc_len;
            cr_assert_eq(avcodec_open2(dec, NULL, NULL), 0);
        }
        cr_assert_eq(av_new_packet(pkt, (int)plen), 0);
        memcpy(pkt->data, out, plen);
        cr_assert_eq(avcodec_send_packet(dec, pkt), 0, "payload of the frame before %zu", off);
        av_packet_unref(pkt);
        while (avcodec_receive_frame(dec, frame) == 0) {
            cr_assert_eq(frame->nb_samples, 1024);
            decoded++;
        }
    }
    cr_assert_geq(decoded, 3, "%d frames decoded", decoded);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
}
