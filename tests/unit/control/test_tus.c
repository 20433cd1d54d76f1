/*
 * Unit tests for control/uploads/tus: the tus 1.0.0 header grammar.
 */
#include <criterion/criterion.h>
#include <string.h>

#include <libavutil/error.h>

#include "control/uploads/tus.h"

Test(tus, sizes)
{
    int64_t v = -1;

    cr_assert_eq(weir_tus_parse_size("0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(weir_tus_parse_size("138392", &v), 0);
    cr_assert_eq(v, 138392);
    cr_assert_eq(weir_tus_parse_size("999999999999999999", &v), 0);     /* 18 digits */
    cr_assert_eq(v, 999999999999999999LL);
    static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3",
                                       "9999999999999999999", "12a", NULL };
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(weir_tus_parse_size(bad[i], &v), AVERROR(EINVAL), "'%s'", bad[i]);
    cr_assert_eq(weir_tus_parse_size(NULL, &v), AVERROR(EINVAL));
}

typedef struct seen {
    char keys[8][72];
    char vals[8][256];
    size_t vlens[8];
    int n;
} seen;

static int collect(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    seen *s = arg;
    cr_assert_lt(s->n, 8);
    memcpy(s->keys[s->n], key, klen);
    s->keys[s->n][klen] = '\0';
    memcpy(s->vals[s->n], val, vlen + 1);
    s->vlens[s->n++] = vlen;
    return 0;
}

Test(tus, metadata)
{
    seen s = { 0 };

    /* tus-js-client's form; a key without a value; spaces around pairs. */
    cr_assert_eq(weir_tus_metadata_parse("filename Y2xpcC5tcDQ=,is_confidential, name bXkgY2xpcA== ",
                                         collect, &s), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.keys[0], "filename");
    cr_assert_str_eq(s.vals[0], "clip.mp4");
    cr_assert_str_eq(s.keys[1], "is_confidential");
    cr_assert_eq(s.vlens[1], 0);
    cr_assert_str_eq(s.keys[2], "name");
    cr_assert_str_eq(s.vals[2], "my clip");

    /* Unpadded base64 and binary values (NUL inside) pass through. */
    memset(&s, 0, sizeof s);
    cr_assert_eq(weir_tus_metadata_parse("a YQ,b AAE=", collect, &s), 0);
    cr_assert_str_eq(s.vals[0], "a");
    cr_assert_eq(s.vlens[1], 2);
    cr_assert_eq(s.vals[1][0], 0);
    cr_assert_eq(s.vals[1][1], 1);

    static const char *const bad[] = {
        "",                         /* no pair */
        ",a YQ==",                  /* empty key */
        "a YQ==,",                  /* trailing comma */
        "a YQ==,a YQ==",            /* repeated key */
        "a Y",                      /* 6 bits */
        "a Y===",                   /* too much padding */
        "a YQ=",                    /* padding that does not complete the quantum */
        "a Y*Q=",                   /* not base64 */
        "a YQ== b",                 /* a third field */
        "k\x01y YQ==",              /* control byte in the key */
        "k\xc3\xa9 YQ==",           /* non-ASCII key */
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(weir_tus_metadata_parse(bad[i], collect, &s), AVERROR(EINVAL), "'%s'",
                     bad[i]);

    /* A key of 64 characters is fine, 65 is not. */
    char key[80];
    memset(key, 'k', 64);
    strcpy(key + 64, " YQ==");
    cr_assert_eq(weir_tus_metadata_parse(key, NULL, NULL), 0);
    memset(key, 'k', 65);
    strcpy(key + 65, " YQ==");
    cr_assert_eq(weir_tus_metadata_parse(key, NULL, NULL), AVERROR(EINVAL));
}

static int refuse(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)arg; (void)key; (void)klen; (void)val; (void)vlen;
    return AVERROR(ERANGE);
}

Test(tus, metadata_callback_error_is_returned)
{
    cr_assert_eq(weir_tus_metadata_parse("a YQ==", refuse, NULL), AVERROR(ERANGE));
}

Test(tus, checksums)
{
    weir_tus_checksum c;

    /* sha1 of "hello". */
    cr_assert_eq(weir_tus_checksum_parse("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=", &c), 0);
    cr_assert_eq(c.algo, WEIR_TUS_SHA1);
    cr_assert_eq(c.len, 20);
    cr_assert_eq(c.digest[0], 0xaa);
    cr_assert_eq(c.digest[19], 0x4d);
    cr_assert_str_eq(weir_tus_algo_name(c.algo), "sha1");
    cr_assert_eq(weir_tus_checksum_parse("md5 XUFAKrxLKna5cZ2REBfFkg==", &c), 0);
    cr_assert_eq(c.algo, WEIR_TUS_MD5);
    cr_assert_eq(weir_tus_checksum_parse(
                     "sha256 LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", &c), 0);
    cr_assert_eq(c.len, 32);

    cr_assert_eq(weir_tus_checksum_parse("crc32 AAAAAA==", &c), AVERROR(ENOSYS));
    static const char *const bad[] = {
        "sha1", "sha1 ", " qvTGHdzF6KLavt4PO0gs2a6pQ00=", "sha1 qvTG",     /* short digest */
        "sha1 XUFAKrxLKna5cZ2REBfFkg==",                                    /* md5's size */
        "sha1  qvTGHdzF6KLavt4PO0gs2a6pQ00=", "sh\x01 AAAA", NULL,
    };
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(weir_tus_checksum_parse(bad[i], &c), AVERROR(EINVAL), "'%s'", bad[i]);
}

Test(tus, base64_round_trip)
{
    char out[64];
    cr_assert_str_eq(weir_tus_base64("clip.mp4", 8, out), "Y2xpcC5tcDQ=");
    cr_assert_str_eq(weir_tus_base64("ab", 2, out), "YWI=");
    cr_assert_str_eq(weir_tus_base64("abc", 3, out), "YWJj");
    cr_assert_str_eq(weir_tus_base64("", 0, out), "");
}

Test(tus, http_date)
{
    char d[30];
    weir_tus_http_date(784111777000LL, d);
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
}
