/*
 * libFuzzer target: the tus header parsers (control/uploads/tus.h) —
 * Upload-Offset / Upload-Length, Upload-Metadata, Upload-Checksum.
 *
 * Input: one byte choosing the parser, then the header value.  Checks: no
 * crash or over-read; only the documented codes come back; what a success
 * reports is within the grammar (sizes >= 0, keys 1..64 bytes without
 * space or comma, digests of the algorithm's size).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "control/uploads/tus.h"

static int check_pair(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)arg;
    assert(klen >= 1 && klen <= WEIR_TUS_META_KEY_MAX);
    assert(!memchr(key, ' ', klen) && !memchr(key, ',', klen));
    assert(vlen < WEIR_TUS_META_MAX && val[vlen] == '\0');
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_tus_checksum c;
    int64_t v;
    char *text;
    int r;

    if (size < 1)
        return 0;
    if (!(text = malloc(size)))
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        r = weir_tus_parse_size(text, &v);
        assert(r == 0 || r == AVERROR(EINVAL));
        assert(r < 0 || v >= 0);
        break;
    case 1:
        r = weir_tus_metadata_parse(text, check_pair, NULL);
        assert(r == 0 || r == AVERROR(EINVAL));
        break;
    default:
        r = weir_tus_checksum_parse(text, &c);
        assert(r == 0 || r == AVERROR(EINVAL) || r == AVERROR(ENOSYS));
        assert(r < 0 || c.len == (c.algo == WEIR_TUS_SHA1 ? 20u : c.algo == WEIR_TUS_MD5 ? 16u : 32u));
        break;
    }
    free(text);
    return 0;
}
