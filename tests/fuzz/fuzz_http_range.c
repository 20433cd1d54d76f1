/*
 * libFuzzer target: the HTTP Range header parser (origin/origin.h).
 *
 * Input: 8 bytes of body size, then the header value.  Checks: no crash or
 * over-read; a satisfiable range lies inside the body and is not empty;
 * only 0, 1 or AVERROR(ERANGE) come back.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "origin/origin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t body = 0, start = 0, len = 0;
    char *value;
    int r;

    if (size < 8)
        return 0;
    memcpy(&body, data, 8);
    body %= (uint64_t)1 << 40;
    if (!(value = malloc(size - 8 + 1)))
        return 0;
    memcpy(value, data + 8, size - 8);
    value[size - 8] = '\0';
    r = weir_origin_parse_range(value, body, &start, &len);
    assert(r == 0 || r == 1 || r == AVERROR(ERANGE));
    if (r == 0) {
        assert(len > 0);
        assert(start < body && len <= body - start);
    }
    free(value);
    return 0;
}
