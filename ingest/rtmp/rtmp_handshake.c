/*
 * ingest/rtmp/rtmp_handshake.c — see rtmp_handshake.h for the handshake,
 * its state machine, the digest schemes and the C2 policy.
 */
#include "ingest/rtmp/rtmp_handshake.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>

#define HS WEIR_RTMP_HANDSHAKE_SIZE
#define DIGEST WEIR_RTMP_DIGEST_LEN

/* The 32 bytes both keys end with, as published with the Flash handshake
 * (rtmpdump, FFmpeg, every RTMP server since). */
#define KEY_TAIL \
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, \
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, \
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE

const uint8_t weir_rtmp_fp_key[62] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ',
    'F', 'l', 'a', 's', 'h', ' ', 'P', 'l', 'a', 'y', 'e', 'r', ' ',
    '0', '0', '1', KEY_TAIL
};

const uint8_t weir_rtmp_fms_key[68] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ',
    'F', 'l', 'a', 's', 'h', ' ', 'M', 'e', 'd', 'i', 'a', ' ',
    'S', 'e', 'r', 'v', 'e', 'r', ' ', '0', '0', '1', KEY_TAIL
};

/* S1's version field in the digest flavour: any value whose first byte is
 * >= 3 tells FFmpeg to look for our digest. */
static const uint8_t server_version[4] = { 0x05, 0x00, 0x03, 0x01 };

int weir_rtmp_random_openssl(void *arg, uint8_t *buf, size_t len)
{
    (void)arg;
    if (len > INT32_MAX || RAND_bytes(buf, (int)len) != 1)
        return AVERROR_EXTERNAL;
    return 0;
}

/* HMAC-SHA256 over the concatenation of two byte ranges. */
static int hmac2(const uint8_t *key, size_t key_len, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen, uint8_t out[DIGEST])
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t outlen = 0;
    int ret = AVERROR_EXTERNAL;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(ctx = EVP_MAC_CTX_new(mac)))
        goto fail;
    if (!EVP_MAC_init(ctx, key, key_len, params) ||
        (alen && !EVP_MAC_update(ctx, a, alen)) ||
        (blen && !EVP_MAC_update(ctx, b, blen)) ||
        !EVP_MAC_final(ctx, out, &outlen, DIGEST) || outlen != DIGEST)
        goto fail;
    ret = 0;
fail:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ret;
}

int weir_rtmp_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data,
                          size_t len, uint8_t out[DIGEST])
{
    return hmac2(key, key_len, data, len, NULL, 0, out);
}

size_t weir_rtmp_digest_offset(const uint8_t c1[HS], weir_rtmp_hs_scheme scheme)
{
    size_t base = scheme == WEIR_RTMP_HS_SCHEME_1 ? 772 : 8;
    unsigned sum = (unsigned)c1[base] + c1[base + 1] + c1[base + 2] + c1[base + 3];

    return sum % 728 + base + 4;
}

int weir_rtmp_digest_compute(const uint8_t c1[HS], size_t offset, const uint8_t *key,
                             size_t key_len, uint8_t out[DIGEST])
{
    if (offset > HS - DIGEST)
        return AVERROR(EINVAL);
    return hmac2(key, key_len, c1, offset, c1 + offset + DIGEST, HS - offset - DIGEST, out);
}

/* Constant-time-ish compare; the secret is public, but it costs nothing. */
static int digest_eq(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    int i;

    for (i = 0; i < DIGEST; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

int weir_rtmp_c1_scheme(const uint8_t c1[HS], weir_rtmp_hs_scheme *scheme)
{
    static const weir_rtmp_hs_scheme order[2] = { WEIR_RTMP_HS_SCHEME_0, WEIR_RTMP_HS_SCHEME_1 };
    uint8_t d[DIGEST];
    size_t off;
    int i, ret;

    *scheme = WEIR_RTMP_HS_PLAIN;
    if (AV_RB32(c1 + 4) == 0)
        return 0;
    for (i = 0; i < 2; i++) {
        off = weir_rtmp_digest_offset(c1, order[i]);
        if ((ret = weir_rtmp_digest_compute(c1, off, weir_rtmp_fp_key,
                                            WEIR_RTMP_FP_KEY_TEXT_LEN, d)) < 0)
            return ret;
        if (digest_eq(d, c1 + off)) {
            *scheme = order[i];
            return 0;
        }
    }
    return 0;
}

static int check_c0(uint8_t c0)
{
    if (c0 == WEIR_RTMP_VERSION)
        return 0;
    if (c0 == 6 || c0 == 8)     /* RTMPE, RTMPTE */
        return AVERROR_PATCHWELCOME;
    return AVERROR_INVALIDDATA;
}

/* Digest-flavour S1 and S2, for a C1 whose digest verified. */
static int respond_digest(const uint8_t *c1, weir_rtmp_hs_scheme scheme,
                          uint8_t *s1, uint8_t *s2)
{
    uint8_t key[DIGEST];
    size_t c_off = weir_rtmp_digest_offset(c1, scheme), s_off;
    int ret;

    memcpy(s1 + 4, server_version, sizeof server_version);
    s_off = weir_rtmp_digest_offset(s1, scheme);
    if ((ret = weir_rtmp_digest_compute(s1, s_off, weir_rtmp_fms_key,
                                        WEIR_RTMP_FMS_KEY_TEXT_LEN, s1 + s_off)) < 0)
        return ret;
    if ((ret = weir_rtmp_hmac_sha256(weir_rtmp_fms_key, sizeof weir_rtmp_fms_key,
                                     c1 + c_off, DIGEST, key)) < 0)
        return ret;
    return weir_rtmp_hmac_sha256(key, DIGEST, s2, HS - DIGEST, s2 + HS - DIGEST);
}

int weir_rtmp_handshake_respond(const uint8_t *c0c1, uint32_t server_time,
                                weir_rtmp_random_fn random, void *random_arg,
                                uint8_t *s0s1s2, weir_rtmp_hs_scheme *scheme)
{
    const uint8_t *c1 = c0c1 + 1;
    uint8_t *s1 = s0s1s2 + 1, *s2 = s0s1s2 + 1 + HS;
    weir_rtmp_hs_scheme sc;
    int ret;

    if (!random)
        random = weir_rtmp_random_openssl;
    if ((ret = check_c0(c0c1[0])) < 0)
        return ret;
    if ((ret = weir_rtmp_c1_scheme(c1, &sc)) < 0)
        return ret;
    s0s1s2[0] = WEIR_RTMP_VERSION;
    AV_WB32(s1, server_time);
    AV_WB32(s1 + 4, 0);
    if ((ret = random(random_arg, s1 + 8, HS - 8)) < 0)
        return AVERROR_EXTERNAL;
    if (sc == WEIR_RTMP_HS_PLAIN) {
        memcpy(s2, c1, HS);
    } else {
        if ((ret = random(random_arg, s2, HS - DIGEST)) < 0)
            return AVERROR_EXTERNAL;
        if ((ret = respond_digest(c1, sc, s1, s2)) < 0)
            return ret;
    }
    if (scheme)
        *scheme = sc;
    return 0;
}

void weir_rtmp_handshake_init(weir_rtmp_handshake *hs, weir_rtmp_random_fn random,
                              void *random_arg, uint32_t server_time)
{
    memset(hs, 0, sizeof *hs);
    hs->state = WEIR_RTMP_HS_WAIT_C0C1;
    hs->scheme = WEIR_RTMP_HS_PLAIN;
    hs->random = random ? random : weir_rtmp_random_openssl;
    hs->random_arg = random_arg;
    hs->server_time = server_time;
}

int weir_rtmp_handshake_feed(weir_rtmp_handshake *hs, const uint8_t *data, size_t len,
                             size_t *consumed, weir_rtmp_buf *out)
{
    uint8_t s0s1s2[1 + 2 * HS];
    size_t take;
    int ret;

    *consumed = 0;
    switch (hs->state) {
    case WEIR_RTMP_HS_FAILED:
        return hs->err;
    case WEIR_RTMP_HS_DONE:
        return 1;
    case WEIR_RTMP_HS_WAIT_C0C1:
        take = sizeof hs->c0c1 - hs->got;
        if (take > len)
            take = len;
        if (take)
            memcpy(hs->c0c1 + hs->got, data, take);
        hs->got += take;
        *consumed += take;
        if (hs->got >= 1 && (ret = check_c0(hs->c0c1[0])) < 0)
            goto fail;
        if (hs->got < sizeof hs->c0c1)
            return 0;
        if ((ret = weir_rtmp_handshake_respond(hs->c0c1, hs->server_time, hs->random,
                                               hs->random_arg, s0s1s2, &hs->scheme)) < 0)
            goto fail;
        if ((ret = weir_rtmp_buf_append(out, s0s1s2, sizeof s0s1s2)) < 0)
            goto fail;
        hs->state = WEIR_RTMP_HS_WAIT_C2;
        hs->got = 0;
        len -= take;    /* C2 may be in the same read */
        /* fall through */
    case WEIR_RTMP_HS_WAIT_C2:
        take = HS - hs->got;
        if (take > len)
            take = len;
        hs->got += take;
        *consumed += take;
        if (hs->got < HS)
            return 0;
        hs->state = WEIR_RTMP_HS_DONE;
        return 1;
    }
    return AVERROR_BUG;
fail:
    hs->state = WEIR_RTMP_HS_FAILED;
    hs->err = ret;
    return ret;
}
