/*
 * control/uploads/tus.c — see tus.h.  No allocation: every parser works in
 * bounded stack buffers, since headers are bounded (WEIR_TUS_META_MAX).
 */
#include "control/uploads/tus.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>

#define META_PAIRS_MAX 64

int weir_tus_parse_size(const char *text, int64_t *out)
{
    int64_t v = 0;
    size_t n = 0;

    if (!text)
        return AVERROR(EINVAL);
    for (; text[n]; n++) {
        if (text[n] < '0' || text[n] > '9' || n == 18)
            return AVERROR(EINVAL);     /* 18 digits stay below 2^63 */
        v = v * 10 + (text[n] - '0');
    }
    if (n == 0)
        return AVERROR(EINVAL);
    *out = v;
    return 0;
}

/* ---- base64 ---------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes in[0..n) into out (cap bytes).  Padding optional, but if present
 * it must complete the last quantum.  Returns the decoded length or -1. */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t pad = 0, o = 0;
    unsigned acc = 0;
    int bits = 0;

    while (pad < 2 && n > 0 && in[n - 1] == '=') {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4 != 0)
        return -1;
    if (n % 4 == 1)
        return -1;                      /* 6 bits cannot end a byte */
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

char *weir_tus_base64(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    char *o = out;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* ---- Upload-Metadata --------------------------------------------------------- */

static int key_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ',';
}

int weir_tus_metadata_parse(const char *header, weir_tus_meta_fn fn, void *arg)
{
    struct { const char *p; size_t n; } keys[META_PAIRS_MAX];
    char val[WEIR_TUS_META_MAX];
    size_t len, nkeys = 0, i = 0;

    if (!header || (len = strlen(header)) == 0 || len > WEIR_TUS_META_MAX)
        return AVERROR(EINVAL);
    while (i <= len) {
        size_t end = i, k0, k1, v0;
        long vlen;
        int r;

        while (end < len && header[end] != ',')
            end++;
        /* One pair in header[i..end), optional spaces around it. */
        while (i < end && header[i] == ' ')
            i++;
        k0 = i;
        while (i < end && key_char_ok((unsigned char)header[i]))
            i++;
        k1 = i;
        if (k1 == k0 || k1 - k0 > WEIR_TUS_META_KEY_MAX)
            return AVERROR(EINVAL);
        if (i < end && header[i] != ' ')
            return AVERROR(EINVAL);     /* a control or non-ASCII byte in the key */
        while (i < end && header[i] == ' ')
            i++;
        v0 = i;
        while (i < end && header[i] != ' ')
            i++;
        vlen = b64_decode(header + v0, i - v0, (unsigned char *)val, sizeof val - 1);
        while (i < end && header[i] == ' ')
            i++;
        if (vlen < 0 || i != end)
            return AVERROR(EINVAL);
        val[vlen] = '\0';
        for (size_t k = 0; k < nkeys; k++)
            if (keys[k].n == k1 - k0 && memcmp(keys[k].p, header + k0, k1 - k0) == 0)
                return AVERROR(EINVAL);
        if (nkeys == META_PAIRS_MAX)
            return AVERROR(EINVAL);
        keys[nkeys].p = header + k0;
        keys[nkeys++].n = k1 - k0;
        if (fn && (r = fn(arg, header + k0, k1 - k0, val, (size_t)vlen)) < 0)
            return r;
        i = end + 1;
    }
    return 0;
}

/* ---- Upload-Checksum ---------------------------------------------------------- */

static const struct { const char *name; size_t len; } algos[] = {
    [WEIR_TUS_SHA1] = { "sha1", 20 },
    [WEIR_TUS_SHA256] = { "sha256", 32 },
    [WEIR_TUS_MD5] = { "md5", 16 },
};

const char *weir_tus_algo_name(weir_tus_algo algo)
{
    return (unsigned)algo < sizeof algos / sizeof algos[0] ? algos[algo].name : "?";
}

int weir_tus_checksum_parse(const char *header, weir_tus_checksum *out)
{
    const char *sp = header ? strchr(header, ' ') : NULL;
    unsigned char digest[64];
    size_t nlen;
    long dlen;

    if (!sp || sp == header || strlen(sp + 1) > 88)
        return AVERROR(EINVAL);
    nlen = (size_t)(sp - header);
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        if (strlen(algos[i].name) != nlen || strncmp(header, algos[i].name, nlen) != 0)
            continue;
        dlen = b64_decode(sp + 1, strlen(sp + 1), digest, sizeof digest);
        if (dlen != (long)algos[i].len)
            return AVERROR(EINVAL);
        out->algo = (weir_tus_algo)i;
        out->len = (size_t)dlen;
        memcpy(out->digest, digest, (size_t)dlen);
        return 0;
    }
    for (size_t i = 0; i < nlen; i++)
        if (!key_char_ok((unsigned char)header[i]))
            return AVERROR(EINVAL);
    return AVERROR(ENOSYS);
}

void weir_tus_http_date(int64_t unix_ms, char out[30])
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday % 100, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
}
