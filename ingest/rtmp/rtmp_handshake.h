/*
 * ingest/rtmp/rtmp_handshake.h — the server side of the RTMP handshake.
 *
 *   client                         server
 *   C0 (1: version 3) + C1 (1536)  ->
 *                                  <-  S0 (1) + S1 (1536) + S2 (1536)
 *   C2 (1536)                      ->
 *   chunk stream ...               <-> chunk stream ...
 *
 * State machine (weir_rtmp_handshake):
 *
 *   [WAIT_C0C1] --C0 (first byte) != 3--> [FAILED]
 *        |
 *        | 1537 bytes: S0+S1+S2 appended to out       weir_rtmp_handshake_feed
 *        v                                            (-> weir_rtmp_handshake_respond)
 *   [WAIT_C2] --1536 bytes--> [DONE]                  weir_rtmp_handshake_feed
 *                             (bytes after C2 are chunk stream: *consumed
 *                              stops at the end of C2)
 *
 * Two flavours, chosen by what C1 holds:
 *
 * Plain (RTMP 1.0 §5.2): S1 = our time, four zero bytes, random; S2 = C1
 * echoed verbatim.  (The spec would put our read time in S2's second word;
 * librtmp compares S2 with its C1 byte for byte and complains if they
 * differ, and nobody reads that word, so we echo exactly.)  OBS and
 * librtmp-based tools (GStreamer rtmpsink) use this: their C1 version
 * field is zero.
 *
 * Digest (the "complex" Flash handshake; FFmpeg always uses it): C1's
 * version field is non-zero and C1 carries a 32-byte HMAC-SHA256 digest at
 * an offset derived from C1 itself, keyed with the first 30 bytes of the
 * Flash Player key ("Genuine Adobe Flash Player 001").  Two layouts exist:
 *
 *   scheme 0: offset = (C1[8]+C1[9]+C1[10]+C1[11]) % 728 + 12
 *             (digest block first; librtmp "offset 1", FFmpeg's plain RTMP)
 *   scheme 1: offset = (C1[772]+C1[773]+C1[774]+C1[775]) % 728 + 776
 *             (key block first; FFmpeg's RTMPE layout)
 *
 * The digest covers C1 without its 32 digest bytes.  If either scheme
 * verifies, we answer in kind: S1 gets a non-zero version and its own
 * digest at the same scheme, keyed with the 36-byte Flash Media Server key
 * ("Genuine Adobe Flash Media Server 001"); S2 is 1504 random bytes
 * followed by HMAC-SHA256(key = HMAC-SHA256(FMS key, 68 bytes incl. the 32
 * constant bytes), C1's digest), S2[0..1504)).  That is what FFmpeg
 * verifies when it plays from a server, and what Flash Player expects.
 * If neither verifies (version set but no digest), we fall back to the
 * plain answer, which every client accepts.
 *
 * C2 is not validated, only counted.  A client's C2 is supposed to echo S1
 * (plain) or carry a digest keyed by our S1 digest (digest flavour), but
 * FFmpeg as a publisher echoes S1 even in digest mode, some hardware
 * encoders send zeros, and rejecting would buy nothing: the handshake
 * protects nothing (the keys are public), authentication happens later
 * with the stream key.  So any 1536 bytes complete the handshake.
 *
 * Randomness and time are injected (weir_rtmp_random_fn, server_time), so
 * tests are deterministic; weir_rtmp_random_openssl is the real source.
 * HMAC-SHA256 comes from OpenSSL (EVP_MAC).
 *
 * Errors: AVERROR_INVALIDDATA for a C0 that is not version 3 (an HTTP
 * request on the RTMP port shows up here at once, from its first byte);
 * AVERROR_PATCHWELCOME for version 6/8 (RTMPE/RTMPTE, encrypted RTMP, not
 * supported); AVERROR(ENOMEM); AVERROR_EXTERNAL if OpenSSL or the random
 * source fails.
 */
#ifndef WEIR_INGEST_RTMP_HANDSHAKE_H
#define WEIR_INGEST_RTMP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/rtmp/rtmp_buf.h"

#define WEIR_RTMP_VERSION        3
#define WEIR_RTMP_HANDSHAKE_SIZE 1536   /* C1, C2, S1, S2 */
#define WEIR_RTMP_DIGEST_LEN     32

typedef enum weir_rtmp_hs_scheme {
    WEIR_RTMP_HS_PLAIN    = -1,         /* no (valid) digest in C1 */
    WEIR_RTMP_HS_SCHEME_0 = 0,          /* digest offset from C1[8..11] */
    WEIR_RTMP_HS_SCHEME_1 = 1,          /* digest offset from C1[772..775] */
} weir_rtmp_hs_scheme;

/* Fills buf[0..len) with random bytes; 0 or a negative error. */
typedef int (*weir_rtmp_random_fn)(void *arg, uint8_t *buf, size_t len);

/* OpenSSL RAND_bytes; arg is unused. */
int weir_rtmp_random_openssl(void *arg, uint8_t *buf, size_t len);

/* The public keys of the digest handshake, for clients and tests:
 * 62 bytes ("Genuine Adobe Flash Player 001" + 32 constant bytes) and 68
 * bytes ("Genuine Adobe Flash Media Server 001" + the same 32 bytes).
 * Signing C1/S1 uses the first 30 / 36 bytes only. */
extern const uint8_t weir_rtmp_fp_key[62];
extern const uint8_t weir_rtmp_fms_key[68];
#define WEIR_RTMP_FP_KEY_TEXT_LEN  30
#define WEIR_RTMP_FMS_KEY_TEXT_LEN 36

/* HMAC-SHA256 of data[0..len) under key into out[32].  0 or AVERROR_EXTERNAL. */
int weir_rtmp_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data,
                          size_t len, uint8_t out[WEIR_RTMP_DIGEST_LEN]);

/* Where a scheme puts the digest in a 1536-byte C1/S1: 12..771 or 776..1535
 * minus 32, so the digest always fits in its half. */
size_t weir_rtmp_digest_offset(const uint8_t c1[WEIR_RTMP_HANDSHAKE_SIZE], weir_rtmp_hs_scheme scheme);

/* HMAC over c1 without its 32 digest bytes at `offset`, keyed with
 * key[0..key_len).  For signing and verifying C1 and S1. */
int weir_rtmp_digest_compute(const uint8_t c1[WEIR_RTMP_HANDSHAKE_SIZE], size_t offset,
                             const uint8_t *key, size_t key_len,
                             uint8_t out[WEIR_RTMP_DIGEST_LEN]);

/* Which scheme C1's digest verifies under (Flash Player key), or
 * WEIR_RTMP_HS_PLAIN.  A C1 whose version field is zero is plain without
 * looking further.  0 with *scheme (OUT), or AVERROR_EXTERNAL. */
int weir_rtmp_c1_scheme(const uint8_t c1[WEIR_RTMP_HANDSHAKE_SIZE], weir_rtmp_hs_scheme *scheme);

/* The pure core: from C0+C1 (1537 bytes, borrowed) writes S0+S1+S2 (3073
 * bytes) into s0s1s2 (caller's array) and, when scheme is not NULL, the
 * flavour chosen into *scheme (OUT).  server_time goes into S1's first word
 * (milliseconds, any epoch).  Errors as in the header comment. */
int weir_rtmp_handshake_respond(const uint8_t *c0c1, uint32_t server_time,
                                weir_rtmp_random_fn random, void *random_arg,
                                uint8_t *s0s1s2, weir_rtmp_hs_scheme *scheme);

typedef enum weir_rtmp_hs_state {
    WEIR_RTMP_HS_WAIT_C0C1 = 0,
    WEIR_RTMP_HS_WAIT_C2,
    WEIR_RTMP_HS_DONE,
    WEIR_RTMP_HS_FAILED,
} weir_rtmp_hs_state;

/* Incremental driver, plain data (about 1.6 KiB), one per connection. */
typedef struct weir_rtmp_handshake {
    weir_rtmp_hs_state state;
    int err;                                    /* FAILED: the error */
    weir_rtmp_hs_scheme scheme;                 /* known after C1 */
    weir_rtmp_random_fn random;
    void *random_arg;
    uint32_t server_time;
    uint8_t c0c1[1 + WEIR_RTMP_HANDSHAKE_SIZE]; /* collected C0+C1 */
    size_t got;                                 /* bytes of the current stage */
} weir_rtmp_handshake;

/* random NULL -> weir_rtmp_random_openssl. */
void weir_rtmp_handshake_init(weir_rtmp_handshake *hs, weir_rtmp_random_fn random,
                              void *random_arg, uint32_t server_time);

/* Takes bytes from data[0..len) (borrowed) up to the end of C2;
 * *consumed (OUT) says how many — the rest belongs to the chunk stream.
 * When C0+C1 are complete, appends S0+S1+S2 to out (send them).
 * Returns 1 once the handshake is done (C2 received), 0 when more bytes
 * are needed, or an error (sticky; close the connection). */
int weir_rtmp_handshake_feed(weir_rtmp_handshake *hs, const uint8_t *data, size_t len,
                             size_t *consumed, weir_rtmp_buf *out);

#endif
