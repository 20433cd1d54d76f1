/*
 * libFuzzer target: core/nal on arbitrary bytes as Annex B.
 *
 * The input goes to weir_nal_config_from_annexb for H.264 and HEVC, to
 * weir_nal_annexb_to_iso, and as a packet through a converter of each codec
 * that starts without extradata.  Checks: no crash or over-read; only 0 or
 * AVERROR_INVALIDDATA; a record starts with configurationVersion 1 and
 * lengthSizeMinusOne 3 and is followed by zeroed padding; a converted buffer
 * is exactly a sequence of non-empty, length-prefixed NAL units that never
 * end in a zero byte.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/intreadwrite.h>

#include "core/nal.h"

static void check_record(enum AVCodecID codec, const uint8_t *rec, size_t len)
{
    assert(len >= (codec == AV_CODEC_ID_H264 ? 7u : 23u));
    assert(rec[0] == 1);
    assert((rec[codec == AV_CODEC_ID_H264 ? 4 : 21] & 3) == 3);
    for (size_t i = 0; i < AV_INPUT_BUFFER_PADDING_SIZE; i++)
        assert(rec[len + i] == 0);
}

static void check_iso(const uint8_t *iso, size_t len, size_t in_len)
{
    size_t off = 0, nal_bytes = 0;

    while (off < len) {
        assert(len - off >= 4);
        uint32_t n = AV_RB32(iso + off);
        assert(n > 0 && n <= len - off - 4);
        assert(iso[off + 4 + n - 1] != 0);
        nal_bytes += n;
        off += 4 + n;
    }
    assert(off == len && nal_bytes < in_len);
}

static void conv(enum AVCodecID codec, const uint8_t *data, size_t size)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    weir_nal_conv *c = NULL;
    AVPacket *pkt = av_packet_alloc();
    int r;

    if (!par || !pkt || size > INT_MAX / 4)
        goto done;
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = codec;
    if (weir_nal_conv_new(par, &c) < 0 || av_new_packet(pkt, (int)size) < 0)
        goto done;
    memcpy(pkt->data, data, size);
    r = weir_nal_conv_packet(c, pkt);
    assert(r == 0 || r == AVERROR_INVALIDDATA);
    if (r == 0)
        check_iso(pkt->data, (size_t)pkt->size, size);
    r = weir_nal_conv_par(c, par);
    assert(r == 0 || r == AVERROR(EAGAIN));
    if (r == 0)
        check_record(codec, par->extradata, (size_t)par->extradata_size);
done:
    weir_nal_conv_free(c);
    av_packet_free(&pkt);
    avcodec_parameters_free(&par);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum AVCodecID codecs[] = { AV_CODEC_ID_H264, AV_CODEC_ID_HEVC };
    /* A private copy of exactly size bytes: ASan catches any over-read. */
    uint8_t *buf = malloc(size ? size : 1), *out;
    size_t n;
    int r;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (int i = 0; i < 2; i++) {
        r = weir_nal_config_from_annexb(codecs[i], buf, size, &out, &n);
        assert(r == 0 || r == AVERROR_INVALIDDATA);
        if (r == 0) {
            check_record(codecs[i], out, n);
            av_free(out);
        }
        conv(codecs[i], buf, size);
    }
    r = weir_nal_annexb_to_iso(buf, size, &out, &n);
    assert(r == 0 || r == AVERROR_INVALIDDATA);
    if (r == 0) {
        check_iso(out, n, size);
        av_free(out);
    }
    free(buf);
    return 0;
}
