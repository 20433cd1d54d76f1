/*
 * libFuzzer target: the SRT stream id parser (ingest/srt/srt_streamid).
 *
 * Checks: no crash or over-read on any bytes; on success app and key are
 * non-empty, NUL-terminated inside their buffers, free of control
 * characters, and the app never holds a '/'; on failure a reason is set.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/srt/srt_streamid.h"

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    assert(n < cap);
    for (size_t i = 0; i < n; i++)
        assert((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_srt_streamid id;
    /* A private copy: the parser must not read past size. */
    char *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (weir_srt_streamid_parse(buf, size, &id) == 0) {
        check_text(id.app, sizeof id.app);
        check_text(id.key, sizeof id.key);
        check_text(id.user, sizeof id.user);
        assert(id.app[0] && id.key[0]);
        assert(!strchr(id.app, '/'));
        assert(size <= WEIR_SRT_STREAMID_MAX);
        assert(id.mode <= WEIR_SRT_MODE_BIDIRECTIONAL);
    } else {
        assert(id.why);
    }
    free(buf);
    return 0;
}
