/*
 * libFuzzer target: core/latm on arbitrary bytes as LOAS frames.
 *
 * The input is cut into frames at its own length fields (as the TS
 * demuxer's parser hands them over) and fed to one parser state, so configs
 * carry over between frames.  Checks: no crash or over-read; only 0,
 * EAGAIN, INVALIDDATA or PATCHWELCOME; a payload fits the frame; a config
 * has an ASC of 2..WEIR_LATM_ASC_MAX bytes, a positive rate, 1-8 channels.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "core/latm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_latm st;
    uint8_t *out;

    memset(&st, 0, sizeof st);
    while (size >= 3) {
        size_t n = 3 + (size_t)((data[1] & 0x1f) << 8 | data[2]), plen = 0;
        if (n > size)
            n = size;
        out = malloc(n);        /* exactly n: ASan sees any write past it */
        assert(out);
        int r = weir_latm_loas_frame(&st, data, n, out, n, &plen);
        assert(r == 0 || r == AVERROR(EAGAIN) || r == AVERROR_INVALIDDATA ||
               r == AVERROR_PATCHWELCOME);
        if (r == 0) {
            assert(plen > 0 && plen <= n);
            assert(st.asc_len >= 2 && st.asc_len <= WEIR_LATM_ASC_MAX);
            assert(st.sample_rate > 0 && st.channels >= 1 && st.channels <= 8);
        }
        free(out);
        data += n;
        size -= n;
    }
    return 0;
}
