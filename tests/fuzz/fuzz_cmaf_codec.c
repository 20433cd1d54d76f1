/*
 * libFuzzer target: extradata as the CMAF writer sees it (packager/cmaf).
 *
 * Input: [selector] extradata...  selector % 5 picks the codec (H.264,
 * HEVC, AV1, AAC, Opus); selector / 5 picks the codec-string buffer size
 * and, for audio, a sample rate above 65535 (AudioSampleEntryV1).
 *
 * The extradata is an exact-size heap copy (no padding), so any read past
 * it is an ASan report.  Checks: the codec string and the init segment
 * agree on whether the record is valid; a string fits its buffer and its
 * length is returned; a failed call leaves the output untouched; the init
 * segment's top-level boxes (ftyp, moov) tile it exactly; a fragment
 * built on it carries the sample bytes at the end of its mdat.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>

#include "packager/cmaf.h"

static const enum AVCodecID ids[5] = { AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1,
                                       AV_CODEC_ID_AAC, AV_CODEC_ID_OPUS };

/* Whether p[0..n) is exactly a run of well-sized boxes of the given types. */
static int tiles(const uint8_t *p, size_t n, const char *types)
{
    size_t off = 0;

    for (; *types; types += 4) {
        if (n - off < 8)
            return 0;
        uint32_t size = AV_RB32(p + off);
        if (size < 8 || size > n - off || memcmp(p + off + 4, types, 4) != 0)
            return 0;
        off += size;
    }
    return off == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AVCodecParameters *par;
    weir_bytes out = { 0 };
    char str[64];
    size_t cap, len;
    int r1, r2;

    if (size < 1)
        return 0;
    if (!(par = avcodec_parameters_alloc()))
        return 0;
    par->codec_id = ids[data[0] % 5];
    par->codec_type = avcodec_get_type(par->codec_id);
    par->width = 640;
    par->height = 360;
    par->sample_rate = (data[0] / 5) & 1 ? 96000 : 48000;
    cap = (size_t)(data[0] / 10) % 24 + 1;
    if (size > 1) {
        if (!(par->extradata = malloc(size - 1)))
            goto done;
        memcpy(par->extradata, data + 1, size - 1);
        par->extradata_size = (int)(size - 1);
    }

    r1 = weir_cmaf_codec_string(par, str, cap);
    if (r1 >= 0 && ((size_t)r1 >= cap || strlen(str) != (size_t)r1))
        abort();
    if (r1 == AVERROR(ENOSPC)) {
        r1 = weir_cmaf_codec_string(par, str, sizeof str);
        if (r1 < 0 || (size_t)r1 >= sizeof str || (size_t)r1 < cap)
            abort();
    }

    weir_cmaf_track t = { .par = par, .timescale = 90000 };
    r2 = weir_cmaf_write_init(&t, &out);
    if ((r1 >= 0) != (r2 >= 0) || (r2 < 0 && out.len != 0))
        abort();
    if (r2 < 0)
        goto done;
    if (!tiles(out.data, out.len, "ftypmoov"))
        abort();

    len = out.len;
    weir_cmaf_sample s = { .data = data, .size = size, .duration = 3000, .cts_offset = -1,
                           .key = data[0] & 1 };
    if (weir_cmaf_write_fragment(&t, 1, 0, &s, 1, data[0] & 2, &out) < 0)
        abort();
    if (!tiles(out.data + len, out.len - len, data[0] & 2 ? "stypmoofmdat" : "moofmdat") ||
        memcmp(out.data + out.len - size, data, size) != 0)
        abort();

done:
    free(par->extradata);
    par->extradata = NULL;
    par->extradata_size = 0;
    avcodec_parameters_free(&par);
    weir_bytes_free(&out);
    return 0;
}
