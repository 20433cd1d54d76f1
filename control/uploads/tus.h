/*
 * control/uploads/tus.h — private to control/: the tus 1.0.0 header
 * grammar, as pure functions (no I/O), for the upload server and its
 * fuzzer.  Everything here reads bytes a client sent: each parser accepts
 * exactly the grammar below and refuses the rest with AVERROR(EINVAL).
 *
 *   Tus-Resumable    1.0.0                     (the only version served)
 *   Upload-Offset    1*18DIGIT                 (no sign, no spaces, < 2^63)
 *   Upload-Length    1*18DIGIT
 *   Upload-Metadata  pair *("," pair)          pair = key [" " base64]
 *                    key: 1..64 printable ASCII, no space or comma, unique;
 *                    base64: standard alphabet, padded or not
 *   Upload-Checksum  algorithm " " base64(digest)
 *                    algorithm: sha1 | sha256 | md5 (else AVERROR(ENOSYS))
 */
#ifndef WEIR_CONTROL_UPLOADS_TUS_H
#define WEIR_CONTROL_UPLOADS_TUS_H

#include <stddef.h>
#include <stdint.h>

#define WEIR_TUS_VERSION    "1.0.0"
#define WEIR_TUS_EXTENSIONS "creation,creation-with-upload,termination,expiration,checksum"
#define WEIR_TUS_CHECKSUMS  "sha1,sha256,md5"

#define WEIR_TUS_META_KEY_MAX   64
#define WEIR_TUS_META_MAX       4096    /* header bytes */

/* 0 when text is exactly a decimal size (see above), with *out set;
 * AVERROR(EINVAL) otherwise. */
int weir_tus_parse_size(const char *text, int64_t *out);

/* Calls fn for each pair, in order, with the key (not NUL-terminated) and
 * the decoded value (NUL-terminated for convenience; vlen excludes it;
 * val is "" when the pair has no value).  Both are valid for the call only.
 * fn returns 0 to go on or a negative code, which the parse returns.
 * AVERROR(EINVAL) for bad grammar or a repeated key. */
typedef int (*weir_tus_meta_fn)(void *arg, const char *key, size_t klen,
                                const char *val, size_t vlen);
int weir_tus_metadata_parse(const char *header, weir_tus_meta_fn fn, void *arg);

typedef enum weir_tus_algo {
    WEIR_TUS_SHA1 = 0,
    WEIR_TUS_SHA256,
    WEIR_TUS_MD5,
} weir_tus_algo;

typedef struct weir_tus_checksum {
    weir_tus_algo algo;
    uint8_t digest[32];
    size_t len;                     /* the algorithm's digest size */
} weir_tus_checksum;

/* 0; AVERROR(ENOSYS) for an algorithm not served; AVERROR(EINVAL) for bad
 * grammar or a digest of the wrong size. */
int weir_tus_checksum_parse(const char *header, weir_tus_checksum *out);
const char *weir_tus_algo_name(weir_tus_algo algo);

/* Standard base64 (with padding) of n bytes into out (4 * ceil(n/3) + 1
 * bytes); returns out. */
char *weir_tus_base64(const void *in, size_t n, char *out);

/* RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a Unix time in
 * ms, for Upload-Expires.  out: 30 bytes. */
void weir_tus_http_date(int64_t unix_ms, char out[30]);

#endif
