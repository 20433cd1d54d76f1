/*
 * Unit tests for ingest/rtmp/rtmp_handshake: plain echo, digest detection
 * for both schemes, S1/S2 digests checked with an independent client-side
 * implementation (OpenSSL's one-shot HMAC over copies, our own key bytes),
 * incremental feeding at any split, bad C0, and C2 not being validated.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>

#include "ingest/rtmp/rtmp_handshake.h"

#define HS 1536

/* ---- an independent client ------------------------------------------------ */

static const uint8_t key_tail[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};
#define FP_TEXT  "Genuine Adobe Flash Player 001"
#define FMS_TEXT "Genuine Adobe Flash Media Server 001"

static void hmac(const void *key, size_t klen, const uint8_t *d, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len));
    cr_assert_eq(len, 32);
}

/* Digest of a 1536-byte block with the 32 bytes at off left out. */
static void block_digest(const uint8_t *blk, size_t off, const void *key, size_t klen, uint8_t out[32])
{
    uint8_t tmp[HS - 32];
    memcpy(tmp, blk, off);
    memcpy(tmp + off, blk + off + 32, HS - off - 32);
    hmac(key, klen, tmp, sizeof tmp, out);
}

static size_t offset_of(const uint8_t *blk, int scheme)
{
    size_t base = scheme ? 772 : 8;
    return (blk[base] + blk[base + 1] + blk[base + 2] + blk[base + 3]) % 728 + base + 4;
}

/* Deterministic "random": a counter stream. */
static int counter_random(void *arg, uint8_t *buf, size_t len)
{
    unsigned *state = arg;
    for (size_t i = 0; i < len; i++) {
        *state = *state * 1664525u + 1013904223u;
        buf[i] = (uint8_t)(*state >> 24);
    }
    return 0;
}

static int failing_random(void *arg, uint8_t *buf, size_t len)
{
    (void)arg; (void)buf; (void)len;
    return -1;
}

/* C0+C1 as FFmpeg's client builds it: version 9.0.124.2 and a digest. */
static void client_c0c1(uint8_t *c0c1, int scheme, unsigned seed)
{
    uint8_t *c1 = c0c1 + 1;
    size_t off;

    c0c1[0] = 3;
    counter_random(&seed, c1, HS);
    AV_WB32(c1, 12345);
    c1[4] = 9; c1[5] = 0; c1[6] = 124; c1[7] = 2;
    off = offset_of(c1, scheme);
    block_digest(c1, off, FP_TEXT, strlen(FP_TEXT), c1 + off);
}

/* ---- tests ---------------------------------------------------------------------- */

Test(rtmp_handshake, key_constants)
{
    cr_assert_eq(strlen(FP_TEXT), WEIR_RTMP_FP_KEY_TEXT_LEN);
    cr_assert_eq(strlen(FMS_TEXT), WEIR_RTMP_FMS_KEY_TEXT_LEN);
    cr_assert(memcmp(weir_rtmp_fp_key, FP_TEXT, 30) == 0);
    cr_assert(memcmp(weir_rtmp_fp_key + 30, key_tail, 32) == 0);
    cr_assert(memcmp(weir_rtmp_fms_key, FMS_TEXT, 36) == 0);
    cr_assert(memcmp(weir_rtmp_fms_key + 36, key_tail, 32) == 0);
}

Test(rtmp_handshake, digest_offsets_stay_in_their_half)
{
    uint8_t blk[HS] = { 0 };
    for (int v = 0; v < 256; v += 5) {
        memset(blk + 8, v, 4);
        memset(blk + 772, 255 - v, 4);
        size_t a = weir_rtmp_digest_offset(blk, WEIR_RTMP_HS_SCHEME_0);
        size_t b = weir_rtmp_digest_offset(blk, WEIR_RTMP_HS_SCHEME_1);
        cr_assert(a >= 12 && a + 32 <= 772);
        cr_assert(b >= 776 && b + 32 <= HS);
        cr_assert_eq(a, offset_of(blk, 0));
        cr_assert_eq(b, offset_of(blk, 1));
    }
}

Test(rtmp_handshake, plain_echo)
{
    uint8_t c0c1[1 + HS], out[1 + 2 * HS];
    unsigned seed = 7, rs = 99;
    weir_rtmp_hs_scheme sc;

    c0c1[0] = 3;
    counter_random(&seed, c0c1 + 1, HS);
    AV_WB32(c0c1 + 1, 1000);
    AV_WB32(c0c1 + 5, 0);           /* version 0: OBS/librtmp */
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0xABCDEF01, counter_random, &rs, out, &sc), 0);
    cr_assert_eq(sc, WEIR_RTMP_HS_PLAIN);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(AV_RB32(out + 1), 0xABCDEF01, "S1 time");
    cr_assert_eq(AV_RB32(out + 5), 0, "S1 zero field");
    uint8_t rnd[HS - 8];
    rs = 99;
    counter_random(&rs, rnd, sizeof rnd);
    cr_assert(memcmp(out + 9, rnd, sizeof rnd) == 0, "S1 random from the injected source");
    cr_assert(memcmp(out + 1 + HS, c0c1 + 1, HS) == 0, "S2 echoes C1");

    /* version set but no valid digest (garbage): plain answer */
    c0c1[5] = 9;
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0, counter_random, &rs, out, &sc), 0);
    cr_assert_eq(sc, WEIR_RTMP_HS_PLAIN);
    cr_assert(memcmp(out + 1 + HS, c0c1 + 1, HS) == 0);
}

static void check_digest_answer(int scheme)
{
    uint8_t c0c1[1 + HS], out[1 + 2 * HS], d[32], key[32];
    uint8_t fms_full[68];
    unsigned rs = 5;
    weir_rtmp_hs_scheme sc;
    const uint8_t *c1 = c0c1 + 1, *s1 = out + 1, *s2 = out + 1 + HS;
    size_t c_off, s_off;

    client_c0c1(c0c1, scheme, 1234u + (unsigned)scheme);
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 77, counter_random, &rs, out, &sc), 0);
    cr_assert_eq(sc, scheme ? WEIR_RTMP_HS_SCHEME_1 : WEIR_RTMP_HS_SCHEME_0);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(AV_RB32(s1), 77);
    cr_assert_geq(s1[4], 3, "FFmpeg looks for a digest when S1's version is >= 3");

    /* S1 digest, keyed with the FMS text key, at the client's scheme */
    s_off = offset_of(s1, scheme);
    block_digest(s1, s_off, FMS_TEXT, strlen(FMS_TEXT), d);
    cr_assert(memcmp(d, s1 + s_off, 32) == 0, "S1 digest");

    /* S2: HMAC(HMAC(FMS full key, C1 digest), S2[0..1504)) at the end */
    c_off = offset_of(c1, scheme);
    memcpy(fms_full, FMS_TEXT, 36);
    memcpy(fms_full + 36, key_tail, 32);
    hmac(fms_full, sizeof fms_full, c1 + c_off, 32, key);
    hmac(key, 32, s2, HS - 32, d);
    cr_assert(memcmp(d, s2 + HS - 32, 32) == 0, "S2 signature");
    cr_assert(memcmp(s2, c1, 64) != 0, "S2 is not an echo in digest mode");
}

Test(rtmp_handshake, digest_scheme_0) { check_digest_answer(0); }
Test(rtmp_handshake, digest_scheme_1) { check_digest_answer(1); }

Test(rtmp_handshake, c1_scheme_detection)
{
    uint8_t c0c1[1 + HS];
    weir_rtmp_hs_scheme sc;

    client_c0c1(c0c1, 1, 42);
    cr_assert_eq(weir_rtmp_c1_scheme(c0c1 + 1, &sc), 0);
    cr_assert_eq(sc, WEIR_RTMP_HS_SCHEME_1);
    c0c1[1 + offset_of(c0c1 + 1, 1)] ^= 1;      /* corrupt the digest */
    cr_assert_eq(weir_rtmp_c1_scheme(c0c1 + 1, &sc), 0);
    cr_assert_eq(sc, WEIR_RTMP_HS_PLAIN);
}

/* Feeds C0 C1 C2 + some chunk-stream bytes in pieces of `split`. */
static void feed_all(size_t split, int digest)
{
    enum { EXTRA = 5 };
    uint8_t in[1 + 2 * HS + EXTRA];
    weir_rtmp_handshake hs;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    unsigned rs = 3, seed = 11;
    size_t off = 0, used;
    int ret = 0;

    if (digest)
        client_c0c1(in, 0, 9);
    else {
        in[0] = 3;
        counter_random(&seed, in + 1, HS);
        AV_WB32(in + 5, 0);
    }
    memset(in + 1 + HS, 0xEE, HS);      /* junk C2: accepted */
    memset(in + 1 + 2 * HS, 0x03, EXTRA);
    weir_rtmp_handshake_init(&hs, counter_random, &rs, 500);
    while (off < sizeof in) {
        size_t n = split && sizeof in - off > split ? split : sizeof in - off;
        ret = weir_rtmp_handshake_feed(&hs, in + off, n, &used, &out);
        cr_assert_geq(ret, 0);
        off += used;
        if (ret == 1)
            break;
        cr_assert_eq(used, n);
        if (off < 1 + HS)
            cr_assert_eq(out.len, 0, "no answer before C1 is complete");
        else
            cr_assert_eq(out.len, 1 + 2 * HS);
    }
    cr_assert_eq(ret, 1);
    cr_assert_eq(off, 1 + 2 * HS, "bytes after C2 are left for the chunk reader");
    cr_assert_eq(hs.state, WEIR_RTMP_HS_DONE);
    cr_assert_eq(hs.scheme, digest ? WEIR_RTMP_HS_SCHEME_0 : WEIR_RTMP_HS_PLAIN);
    cr_assert_eq(out.len, 1 + 2 * HS);
    /* the pure core gives the same answer */
    uint8_t expect[1 + 2 * HS];
    rs = 3;
    cr_assert_eq(weir_rtmp_handshake_respond(in, 500, counter_random, &rs, expect, NULL), 0);
    cr_assert(memcmp(out.data, expect, sizeof expect) == 0);
    /* done is done */
    cr_assert_eq(weir_rtmp_handshake_feed(&hs, in, 3, &used, &out), 1);
    cr_assert_eq(used, 0);
    weir_rtmp_buf_free(&out);
}

Test(rtmp_handshake, incremental_feeding)
{
    static const size_t splits[] = { 0, 1, 2, 7, 100, 1536, 1537, 1538, 3072, 3073 };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        feed_all(splits[i], 0);
        feed_all(splits[i], 1);
    }
}

Test(rtmp_handshake, bad_c0)
{
    weir_rtmp_handshake hs;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    size_t used;
    uint8_t c0c1[1 + HS] = { 0 };

    weir_rtmp_handshake_init(&hs, NULL, NULL, 0);
    cr_assert_eq(weir_rtmp_handshake_feed(&hs, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, &used, &out),
                 AVERROR_INVALIDDATA, "HTTP on the RTMP port fails at its first byte");
    cr_assert_eq(hs.state, WEIR_RTMP_HS_FAILED);
    cr_assert_eq(weir_rtmp_handshake_feed(&hs, c0c1, 1, &used, &out), AVERROR_INVALIDDATA, "sticky");
    cr_assert_eq(out.len, 0);

    weir_rtmp_handshake_init(&hs, NULL, NULL, 0);
    cr_assert_eq(weir_rtmp_handshake_feed(&hs, (const uint8_t *)"\x06", 1, &used, &out),
                 AVERROR_PATCHWELCOME, "RTMPE");
    c0c1[0] = 8;
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0, NULL, NULL, (uint8_t[1 + 2 * HS]){ 0 }, NULL),
                 AVERROR_PATCHWELCOME);
    c0c1[0] = 3;
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0, failing_random, NULL, (uint8_t[1 + 2 * HS]){ 0 }, NULL),
                 AVERROR_EXTERNAL);
    weir_rtmp_buf_free(&out);
}

Test(rtmp_handshake, real_random_source)
{
    uint8_t c0c1[1 + HS] = { 3 }, a[1 + 2 * HS], b[1 + 2 * HS];

    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0, NULL, NULL, a, NULL), 0);
    cr_assert_eq(weir_rtmp_handshake_respond(c0c1, 0, weir_rtmp_random_openssl, NULL, b, NULL), 0);
    cr_assert(memcmp(a + 9, b + 9, HS - 8) != 0);
}
