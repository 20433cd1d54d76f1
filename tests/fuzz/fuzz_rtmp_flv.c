/*
 * libFuzzer target: FLV audio/video tag bodies (ingest/rtmp/rtmp_flv).
 *
 * Input: [selector] body...  Bit 0 of the selector: audio (1) or video (0).
 *
 * Checks: a parsed tag's region lies inside the body; CONFIG tags (and MP3
 * frames) turn into AVCodecParameters; FRAME tags turn into packets both
 * by reference (from a padded buffer, as the chunk reader hands them) and
 * by copy, with pts - dts equal to the CTS.  The body is also run through
 * the AudioSpecificConfig parser and the timestamp unwrapper.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/intreadwrite.h>

#include "ingest/rtmp/rtmp_flv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *body = data + 1;
    size_t len;
    weir_flv_tag t;
    AVCodecParameters *par;
    AVBufferRef *buf;
    AVPacket *pkt;
    weir_rtmp_ts_unwrap u = { 0 };
    int rate, ch, aot, ret;

    if (size < 1)
        return 0;
    len = size - 1;
    weir_flv_parse_asc(body, len, &rate, &ch, &aot);
    for (size_t i = 0; i + 4 <= len && i < 64; i += 4)
        weir_rtmp_ts_unwrap_next(&u, AV_RB32(body + i));

    ret = data[0] & 1 ? weir_flv_parse_audio(body, len, &t) : weir_flv_parse_video(body, len, &t);
    if (ret < 0)
        return 0;
    if (t.offset > len || t.size > len - t.offset)
        abort();

    if (t.kind == WEIR_FLV_CONFIG || (t.kind == WEIR_FLV_FRAME && t.codec_id == AV_CODEC_ID_MP3)) {
        if (!(par = avcodec_parameters_alloc()))
            return 0;
        ret = weir_flv_tag_codecpar(&t, body, par);
        if (ret == 0 && t.kind == WEIR_FLV_CONFIG &&
            (par->extradata_size != (int)t.size ||
             (t.size && memcmp(par->extradata, body + t.offset, t.size) != 0)))
            abort();
        avcodec_parameters_free(&par);
    }
    if (t.kind == WEIR_FLV_FRAME) {
        pkt = av_packet_alloc();
        buf = av_buffer_allocz(len + AV_INPUT_BUFFER_PADDING_SIZE);
        if (pkt && buf) {
            memcpy(buf->data, body, len);
            if (weir_flv_tag_packet(&t, buf, buf->data, 1000, pkt) < 0 ||
                pkt->size != (int)t.size || pkt->pts - pkt->dts != t.cts ||
                memcmp(pkt->data, body + t.offset, t.size) != 0)
                abort();
            if (weir_flv_tag_packet(&t, NULL, body, -5, pkt) < 0 || pkt->dts != -5 ||
                memcmp(pkt->data, body + t.offset, t.size) != 0)
                abort();
        }
        av_packet_free(&pkt);
        av_buffer_unref(&buf);
    }
    return 0;
}
