/*
 * libFuzzer target: the MPEG-TS writer (packager/ts) on what the bus hands
 * it, which came from the network: the avcC and AudioSpecificConfig
 * extradata, and length-prefixed access units.
 *
 * Input: [avcC length] avcC [ASC length] ASC  sample...  Each sample is
 * [flags] [size hi] [size lo] bytes: flags bit 0 audio, bit 1 key.  Every
 * piece is an exact-size heap copy (no padding), so a read past it is an
 * ASan report.  Checks: weir_ts_supported agrees with weir_ts_mux_new; a
 * segment is whole 188-byte packets starting with PAT and PMT; a failed
 * call leaves the output as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>

#include "packager/ts.h"

#define MAX_SAMPLES 64

static AVCodecParameters *par_of(enum AVCodecID id, const uint8_t *d, size_t n)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    if (!par)
        return NULL;
    par->codec_id = id;
    par->codec_type = avcodec_get_type(id);
    if (n && (par->extradata = malloc(n))) {
        memcpy(par->extradata, d, n);
        par->extradata_size = (int)n;
    }
    return par;
}

static void par_free(AVCodecParameters *par)
{
    if (!par)
        return;
    free(par->extradata);
    par->extradata = NULL;
    par->extradata_size = 0;
    avcodec_parameters_free(&par);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AVCodecParameters *v = NULL, *a = NULL;
    weir_ts_sample s[MAX_SAMPLES];
    uint8_t *copies[MAX_SAMPLES];
    weir_ts_mux *m = NULL;
    weir_bytes out = { 0 };
    size_t off = 0, n = 0, vl, al;
    int r;

    if (size < 2 || (vl = data[0]) > size - 1)
        return 0;
    off = 1 + vl;
    if (off >= size || (al = data[off]) > size - off - 1)
        return 0;
    v = par_of(AV_CODEC_ID_H264, data + 1, vl);
    a = par_of(AV_CODEC_ID_AAC, data + off + 1, al);
    off += 1 + al;
    if (!v || !a)
        goto done;
    r = weir_ts_mux_new(v, a, &m);
    if ((r == 0) != (weir_ts_supported(v) && weir_ts_supported(a)))
        abort();
    if (r < 0)
        goto done;
    while (n < MAX_SAMPLES && size - off >= 3) {
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        int flags = data[off];
        off += 3;
        if (len > size - off)
            len = size - off;
        copies[n] = malloc(len ? len : 1);
        if (!copies[n])
            break;
        memcpy(copies[n], data + off, len);
        s[n] = (weir_ts_sample){ .data = copies[n], .size = len, .audio = flags & 1,
                                 .key = !!(flags & 2), .dts = (int64_t)n * 3000,
                                 .pts = (int64_t)n * 3000 + (flags >> 2) * 1500 };
        n++;
        off += len;
    }
    r = weir_ts_mux_segment(m, s, n, &out);
    if (r < 0 && out.len != 0)
        abort();
    if (r == 0 && (out.len % 188 != 0 || out.len < 2 * 188 || out.data[0] != 0x47 ||
                   (out.data[1] & 0x1F) != 0 || out.data[2] != 0))
        abort();
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
done:
    weir_ts_mux_free(m);
    weir_bytes_free(&out);
    par_free(v);
    par_free(a);
    return 0;
}
