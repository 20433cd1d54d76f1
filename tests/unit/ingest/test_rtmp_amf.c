/*
 * Unit tests for ingest/rtmp/rtmp_amf: every AMF0 type decoded and
 * re-encoded byte for byte, the limits, rejected markers (AMF3 switch,
 * reference), truncation at every offset, an OBS `connect` built by hand,
 * and the reply builders against hand-written bytes.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/intfloat.h>
#include <libavutil/intreadwrite.h>

#include "tests/unit/ingest/bytevec.h"
#include "ingest/rtmp/rtmp_amf.h"

/* ---- raw AMF0 writers, independent of the encoder under test ----------------- */

static void raw_num(vec *v, double d) { uint8_t t[8]; put8(v, 0x00); AV_WB64(t, av_double2int(d)); put(v, t, 8); }
static void raw_str(vec *v, const char *s) { put8(v, 0x02); put16(v, (uint16_t)strlen(s)); put(v, s, strlen(s)); }
static void raw_key(vec *v, const char *s) { put16(v, (uint16_t)strlen(s)); put(v, s, strlen(s)); }
static void raw_end(vec *v) { put8(v, 0); put8(v, 0); put8(v, 0x09); }

static vec *vnew(void)
{
    vec *v = calloc(1, sizeof *v);
    cr_assert_not_null(v);
    return v;
}

/* Decodes, re-encodes, and checks the bytes come back identical and that the
 * re-decoded tree equals the first. */
static void round_trip(const uint8_t *p, size_t n, const weir_amf_limits *lim)
{
    weir_amf_doc a, b;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    const weir_amf_value *x, *y;

    cr_assert_eq(weir_amf_decode(p, n, lim, &a), 0);
    for (x = a.first; x; x = x->next)
        cr_assert_eq(weir_amf_put_value(&out, x), 0);
    cr_assert_eq(out.len, n, "re-encoded %zu bytes, expected %zu", out.len, n);
    cr_assert(memcmp(out.data, p, n) == 0, "re-encoding differs");
    cr_assert_eq(weir_amf_decode(out.data, out.len, lim, &b), 0);
    cr_assert_eq(a.count, b.count);
    for (x = a.first, y = b.first; x; x = x->next, y = y->next)
        cr_assert(weir_amf_equal(x, y));
    weir_amf_doc_free(&a);
    weir_amf_doc_free(&b);
    weir_rtmp_buf_free(&out);
}

/* ---- every type ------------------------------------------------------------ */

Test(rtmp_amf, every_type_round_trips)
{
    vec *v = vnew();
    weir_amf_doc doc;
    const weir_amf_value *x, *c;
    static char longs[70000];

    raw_num(v, 3.5);
    raw_num(v, -0.0);
    raw_num(v, NAN);
    raw_num(v, -INFINITY);
    put8(v, 0x01); put8(v, 0x01);                   /* true */
    put8(v, 0x01); put8(v, 0x00);                   /* false */
    raw_str(v, "");
    put8(v, 0x02); put16(v, 3); put(v, "a\0b", 3);  /* embedded NUL */
    put8(v, 0x05);                                  /* null */
    put8(v, 0x06);                                  /* undefined */
    put8(v, 0x0B); { uint8_t t[8]; AV_WB64(t, av_double2int(1.7e12)); put(v, t, 8); } put16(v, 0xFFC4);
    put8(v, 0x0C); put32(v, 5); put(v, "hello", 5); /* long string, short content */
    put8(v, 0x03);                                  /* object */
      raw_key(v, "a"); raw_num(v, 1);
      raw_key(v, "b"); put8(v, 0x03); raw_key(v, "c"); raw_str(v, "d"); raw_end(v);
      raw_key(v, ""); put8(v, 0x05);                /* a property named "" */
      raw_key(v, "a"); raw_num(v, 2);               /* duplicate key kept */
    raw_end(v);
    put8(v, 0x08); put32(v, 7);                     /* ECMA array, count 7 (advisory) */
      raw_key(v, "x"); put8(v, 0x06);
    raw_end(v);
    put8(v, 0x08); put32(v, 0); raw_end(v);         /* empty ECMA array */
    put8(v, 0x0A); put32(v, 3);                     /* strict array */
      raw_num(v, 1); raw_str(v, "two"); put8(v, 0x0A); put32(v, 0);
    put8(v, 0x03); raw_end(v);                      /* empty object */
    round_trip(v->d, v->n, NULL);

    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(doc.count, 17);
    x = weir_amf_doc_at(&doc, 0);
    cr_assert_eq(x->type, WEIR_AMF_NUMBER);
    cr_assert_eq(x->u.number, 3.5);
    cr_assert(signbit(weir_amf_doc_at(&doc, 1)->u.number));
    cr_assert(isnan(weir_amf_doc_at(&doc, 2)->u.number));
    cr_assert(isinf(weir_amf_doc_at(&doc, 3)->u.number));
    cr_assert_eq(weir_amf_doc_at(&doc, 4)->u.boolean, 1);
    cr_assert_eq(weir_amf_doc_at(&doc, 5)->u.boolean, 0);
    x = weir_amf_doc_at(&doc, 7);
    cr_assert_eq(x->u.str.len, 3);
    cr_assert(memcmp(x->u.str.ptr, "a\0b", 4) == 0, "NUL-terminated copy");
    cr_assert_eq(weir_amf_doc_at(&doc, 8)->type, WEIR_AMF_NULL);
    cr_assert_eq(weir_amf_doc_at(&doc, 9)->type, WEIR_AMF_UNDEFINED);
    x = weir_amf_doc_at(&doc, 10);
    cr_assert_eq(x->type, WEIR_AMF_DATE);
    cr_assert_eq(x->u.date.ms, 1.7e12);
    cr_assert_eq(x->u.date.tz, -60);
    x = weir_amf_doc_at(&doc, 11);
    cr_assert_eq(x->type, WEIR_AMF_LONG_STRING);
    cr_assert_str_eq(weir_amf_string(x), "hello");
    x = weir_amf_doc_at(&doc, 12);
    cr_assert_eq(x->type, WEIR_AMF_OBJECT);
    cr_assert_eq(x->u.list.count, 4);
    double d;
    cr_assert_eq(weir_amf_get_number(x, "a", &d), 0);
    cr_assert_eq(d, 1, "first duplicate wins");
    cr_assert_str_eq(weir_amf_get_string(weir_amf_get(x, "b"), "c"), "d");
    cr_assert_eq(weir_amf_get(x, "")->type, WEIR_AMF_NULL);
    cr_assert_null(weir_amf_get(x, "zz"));
    cr_assert_eq(weir_amf_get_number(x, "b", &d), AVERROR(ENOENT));
    x = weir_amf_doc_at(&doc, 13);
    cr_assert_eq(x->type, WEIR_AMF_ECMA_ARRAY);
    cr_assert_eq(x->u.list.declared, 7);
    cr_assert_eq(x->u.list.count, 1);
    cr_assert_eq(weir_amf_get(x, "x")->type, WEIR_AMF_UNDEFINED);
    x = weir_amf_doc_at(&doc, 15);
    cr_assert_eq(x->type, WEIR_AMF_STRICT_ARRAY);
    cr_assert_eq(x->u.list.count, 3);
    c = x->u.list.first->next;
    cr_assert_str_eq(weir_amf_string(c), "two");
    cr_assert_null(c->key);
    cr_assert_eq(c->next->type, WEIR_AMF_STRICT_ARRAY);
    cr_assert_null(weir_amf_doc_at(&doc, 17));
    weir_amf_doc_free(&doc);
    weir_amf_doc_free(&doc);    /* twice is harmless */

    /* A real long string (> 65535), under a raised limit. */
    v->n = 0;
    memset(longs, 'q', sizeof longs);
    put8(v, 0x0C); put32(v, sizeof longs); put(v, longs, sizeof longs);
    weir_amf_limits lim = { .max_string = 100000 };
    round_trip(v->d, v->n, &lim);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), AVERROR(E2BIG), "default max_string");
    free(v);
}

Test(rtmp_amf, encoder_writes_each_type)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    weir_amf_doc doc;
    static char big[70001];

    memset(big, 'z', sizeof big - 1);
    weir_amf_put_number(&b, 42);
    weir_amf_put_bool(&b, 7);
    weir_amf_put_string(&b, "s");
    weir_amf_put_stringn(&b, big, sizeof big - 1);
    weir_amf_put_null(&b);
    weir_amf_put_undefined(&b);
    weir_amf_put_date(&b, 5, 0);
    weir_amf_put_ecma_begin(&b, 1);
    weir_amf_put_key(&b, "k");
    weir_amf_put_strict_array_begin(&b, 1);
    weir_amf_put_bool(&b, 0);
    weir_amf_put_object_end(&b);
    cr_assert_eq(b.err, 0);
    weir_amf_limits lim = { .max_string = 1 << 20 };
    cr_assert_eq(weir_amf_decode(b.data, b.len, &lim, &doc), 0);
    cr_assert_eq(doc.count, 8);
    cr_assert_eq(weir_amf_doc_at(&doc, 1)->u.boolean, 1);
    cr_assert_eq(weir_amf_doc_at(&doc, 3)->type, WEIR_AMF_LONG_STRING);
    cr_assert_eq(weir_amf_doc_at(&doc, 3)->u.str.len, sizeof big - 1);
    cr_assert_eq(weir_amf_get(weir_amf_doc_at(&doc, 7), "k")->type, WEIR_AMF_STRICT_ARRAY);
    weir_amf_doc_free(&doc);

    /* A key longer than 16 bits cannot be written: sticky EINVAL. */
    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_put_object_begin(&b), 0);
    cr_assert_eq(weir_amf_put_key(&b, big), AVERROR(EINVAL));
    cr_assert_eq(weir_amf_put_number(&b, 1), AVERROR(EINVAL));
    cr_assert_eq(b.err, AVERROR(EINVAL));
    weir_rtmp_buf_free(&b);
}

/* ---- limits and rejected input -------------------------------------------------- */

static vec *nested(int depth)
{
    vec *v = vnew();
    for (int i = 0; i < depth; i++) {
        put8(v, i % 3 == 2 ? 0x0A : 0x03);
        if (i % 3 == 2)
            put32(v, 1);        /* strict array of one: the next level */
        else
            raw_key(v, "k");
    }
    raw_num(v, 1);
    for (int i = depth - 1; i >= 0; i--)
        if (i % 3 != 2)
            raw_end(v);
    return v;
}

Test(rtmp_amf, depth_limit)
{
    weir_amf_doc doc;
    vec *v = nested(WEIR_AMF_DEFAULT_MAX_DEPTH);

    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    weir_amf_doc_free(&doc);
    round_trip(v->d, v->n, NULL);
    free(v);
    v = nested(WEIR_AMF_DEFAULT_MAX_DEPTH + 1);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), AVERROR(E2BIG));
    cr_assert_null(doc.first);
    weir_amf_doc_free(&doc);
    weir_amf_limits lim = { .max_depth = 4 };
    free(v);
    v = nested(4);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), 0);
    weir_amf_doc_free(&doc);
    free(v);
    v = nested(5);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));
    /* 10000 levels: rejected at the limit, long before the stack is at risk */
    free(v);
    v = nested(10000);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), AVERROR(E2BIG));
    free(v);
}

Test(rtmp_amf, value_and_string_limits)
{
    weir_amf_doc doc;
    vec *v = vnew();
    weir_amf_limits lim = { .max_values = 10, .max_string = 8 };

    put8(v, 0x0A); put32(v, 9);
    for (int i = 0; i < 9; i++)
        put8(v, 0x05);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), 0, "array + 9 = 10 values");
    weir_amf_doc_free(&doc);
    put8(v, 0x05);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));

    /* A strict array claiming more elements than the budget fails before
     * reading them; one claiming more than the bytes left is truncated. */
    v->n = 0;
    put8(v, 0x0A); put32(v, 11);
    for (int i = 0; i < 11; i++)
        put8(v, 0x05);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));
    v->n = 0;
    put8(v, 0x0A); put32(v, 0xFFFFFFFF); put8(v, 0x05);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), AVERROR_INVALIDDATA);

    /* Objects count toward the budget too: 10 properties. */
    v->n = 0;
    put8(v, 0x03);
    for (int i = 0; i < 10; i++) { raw_key(v, "k"); put8(v, 0x05); }
    raw_end(v);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));

    v->n = 0;
    raw_str(v, "12345678");
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), 0);
    weir_amf_doc_free(&doc);
    raw_str(v, "123456789");
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));
    v->n = 0;
    put8(v, 0x03); raw_key(v, "123456789"); put8(v, 0x05); raw_end(v);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG), "keys too");
    v->n = 0;
    put8(v, 0x0C); put32(v, 9); put(v, "123456789", 9);
    cr_assert_eq(weir_amf_decode(v->d, v->n, &lim, &doc), AVERROR(E2BIG));
    free(v);
}

Test(rtmp_amf, unsupported_and_bad_markers)
{
    static const uint8_t patchwelcome[] = { 0x04, 0x07, 0x0D, 0x0E, 0x0F, 0x10, 0x11 };
    weir_amf_doc doc;
    uint8_t in[16] = { 0 };

    for (size_t i = 0; i < sizeof patchwelcome; i++) {
        in[0] = patchwelcome[i];
        cr_assert_eq(weir_amf_decode(in, sizeof in, NULL, &doc), AVERROR_PATCHWELCOME,
                     "marker 0x%02x", patchwelcome[i]);
    }
    for (int m = 0x12; m < 0x100; m++) {
        in[0] = (uint8_t)m;
        cr_assert_eq(weir_amf_decode(in, sizeof in, NULL, &doc), AVERROR_INVALIDDATA);
    }
    in[0] = 0x09;
    cr_assert_eq(weir_amf_decode(in, 1, NULL, &doc), AVERROR_INVALIDDATA, "stray object end");

    /* AMF3 inside an object (what a Flash client with objectEncoding 3 sends) */
    vec *v = vnew();
    raw_str(v, "connect"); raw_num(v, 1);
    put8(v, 0x03); raw_key(v, "app"); put8(v, 0x11); put8(v, 0x06); put8(v, 0x03); put8(v, 'a');
    raw_end(v);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), AVERROR_PATCHWELCOME);
    cr_assert_null(doc.first);
    free(v);

    cr_assert_eq(weir_amf_decode(NULL, 0, NULL, &doc), 0, "empty input, empty doc");
    cr_assert_eq(doc.count, 0);
    weir_amf_doc_free(&doc);
}

/* ---- OBS connect -------------------------------------------------------------------- */

/* What OBS (librtmp) sends, plus the E-RTMP fourCcList of OBS 30+. */
static vec *obs_connect(size_t *boundaries, int *nb)
{
    vec *v = vnew();
    int n = 0;

    raw_str(v, "connect");                   boundaries[n++] = v->n;
    raw_num(v, 1);                           boundaries[n++] = v->n;
    put8(v, 0x03);
    raw_key(v, "app");      raw_str(v, "live");
    raw_key(v, "type");     raw_str(v, "nonprivate");
    raw_key(v, "flashVer"); raw_str(v, "FMLE/3.0 (compatible; FMSc/1.0)");
    raw_key(v, "swfUrl");   raw_str(v, "rtmp://127.0.0.1:1935/live");
    raw_key(v, "tcUrl");    raw_str(v, "rtmp://127.0.0.1:1935/live");
    raw_key(v, "fourCcList");
    put8(v, 0x0A); put32(v, 3); raw_str(v, "av01"); raw_str(v, "hvc1"); raw_str(v, "avc1");
    raw_end(v);                              boundaries[n++] = v->n;
    *nb = n;
    return v;
}

Test(rtmp_amf, obs_connect_decodes)
{
    size_t bounds[4];
    int nb;
    vec *v = obs_connect(bounds, &nb);
    weir_amf_doc doc;
    weir_amf_command cmd;
    weir_amf_connect c;

    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_str_eq(cmd.name, "connect");
    cr_assert_eq(cmd.txid, 1);
    cr_assert_not_null(cmd.object);
    cr_assert_null(cmd.args);
    cr_assert_eq(weir_amf_connect_parse(&cmd, &c), 0);
    cr_assert_str_eq(c.app, "live");
    cr_assert_str_eq(c.tc_url, "rtmp://127.0.0.1:1935/live");
    cr_assert_str_eq(c.flash_ver, "FMLE/3.0 (compatible; FMSc/1.0)");
    cr_assert_str_eq(c.swf_url, "rtmp://127.0.0.1:1935/live");
    cr_assert_str_eq(c.type, "nonprivate");
    cr_assert_eq(c.object_encoding, 0);
    cr_assert_not_null(c.fourcc_list);
    cr_assert_eq(c.fourcc_list->u.list.count, 3);
    cr_assert_str_eq(weir_amf_string(c.fourcc_list->u.list.first->next), "hvc1");
    round_trip(v->d, v->n, NULL);
    weir_amf_doc_free(&doc);
    free(v);
}

Test(rtmp_amf, truncation_at_every_offset)
{
    size_t bounds[4];
    int nb;
    vec *v = obs_connect(bounds, &nb);
    weir_amf_doc doc;

    for (size_t k = 0; k < v->n; k++) {
        int at_boundary = k == 0;
        for (int i = 0; i < nb; i++)
            at_boundary |= bounds[i] == k;
        /* a copy of exactly k bytes, so ASan sees any over-read */
        uint8_t *p = malloc(k ? k : 1);
        memcpy(p, v->d, k);
        int ret = weir_amf_decode(p, k, NULL, &doc);
        if (at_boundary) {
            cr_assert_eq(ret, 0, "k=%zu", k);
        } else {
            cr_assert_eq(ret, AVERROR_INVALIDDATA, "k=%zu ret=%d", k, ret);
            cr_assert_null(doc.first);
        }
        weir_amf_doc_free(&doc);
        free(p);
    }
    free(v);
}

Test(rtmp_amf, command_and_connect_errors)
{
    vec *v = vnew();
    weir_amf_doc doc;
    weir_amf_command cmd;
    weir_amf_connect c;

    raw_num(v, 1);                              /* name must be a string */
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), AVERROR_INVALIDDATA);
    weir_amf_doc_free(&doc);

    v->n = 0;
    raw_str(v, "x"); raw_str(v, "y");           /* txid must be a number */
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), AVERROR_INVALIDDATA);
    weir_amf_doc_free(&doc);

    v->n = 0;
    raw_str(v, "publish"); raw_num(v, 5); put8(v, 0x05); raw_str(v, "key"); raw_str(v, "live");
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_null(cmd.object);
    cr_assert_str_eq(weir_amf_string(cmd.args), "key");
    cr_assert_str_eq(weir_amf_string(cmd.args->next), "live");
    cr_assert_eq(weir_amf_connect_parse(&cmd, &c), AVERROR_INVALIDDATA, "no command object");
    weir_amf_doc_free(&doc);

    v->n = 0;
    raw_str(v, "connect"); raw_num(v, 1);
    put8(v, 0x03); raw_key(v, "tcUrl"); raw_str(v, "rtmp://x/live"); raw_end(v);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_eq(weir_amf_connect_parse(&cmd, &c), AVERROR_INVALIDDATA, "no app");
    weir_amf_doc_free(&doc);

    v->n = 0;
    raw_str(v, "connect"); raw_num(v, 1);
    put8(v, 0x03); raw_key(v, "app"); raw_str(v, "live");
    raw_key(v, "objectEncoding"); raw_num(v, 3); raw_end(v);
    cr_assert_eq(weir_amf_decode(v->d, v->n, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_eq(weir_amf_connect_parse(&cmd, &c), AVERROR_PATCHWELCOME, "AMF3 requested");
    weir_amf_doc_free(&doc);
    free(v);
}

/* ---- replies ---------------------------------------------------------------------- */

Test(rtmp_amf, connect_result_bytes)
{
    static const char expect[] =
        "\x02\x00\x07" "_result"
        "\x00\x3F\xF0\x00\x00\x00\x00\x00\x00"                  /* 1.0 */
        "\x03"
          "\x00\x06" "fmsVer" "\x02\x00\x0E" "FMS/3,5,7,7009"
          "\x00\x0C" "capabilities" "\x00\x40\x3F\x00\x00\x00\x00\x00\x00"   /* 31.0 */
        "\x00\x00\x09"
        "\x03"
          "\x00\x05" "level" "\x02\x00\x06" "status"
          "\x00\x04" "code" "\x02\x00\x1D" "NetConnection.Connect.Success"
          "\x00\x0B" "description" "\x02\x00\x15" "Connection succeeded."
          "\x00\x0E" "objectEncoding" "\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x09";
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    weir_amf_connect_reply r = { 0 };

    cr_assert_eq(weir_amf_build_connect_result(&b, 1, &r), 0);
    cr_assert_eq(b.len, sizeof expect - 1, "len %zu", b.len);
    cr_assert(memcmp(b.data, expect, sizeof expect - 1) == 0);

    /* with the E-RTMP codec list */
    static const char *const list[] = { "hvc1", "av01", NULL };
    weir_amf_doc doc;
    weir_rtmp_buf_reset(&b);
    r.fourcc_list = list;
    cr_assert_eq(weir_amf_build_connect_result(&b, 1, &r), 0);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    const weir_amf_value *l = weir_amf_get(weir_amf_doc_at(&doc, 2), "fourCcList");
    cr_assert_eq(l->type, WEIR_AMF_STRICT_ARRAY);
    cr_assert_eq(l->u.list.count, 2);
    cr_assert_str_eq(weir_amf_string(l->u.list.first), "hvc1");
    weir_amf_doc_free(&doc);
    weir_rtmp_buf_free(&b);
}

Test(rtmp_amf, other_replies)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    weir_amf_doc doc;
    weir_amf_command cmd;
    const weir_amf_value *info;

    cr_assert_eq(weir_amf_build_result_number(&b, 4, 1), 0);
    static const char create_stream[] =
        "\x02\x00\x07" "_result" "\x00\x40\x10\x00\x00\x00\x00\x00\x00" "\x05"
        "\x00\x3F\xF0\x00\x00\x00\x00\x00\x00";
    cr_assert_eq(b.len, sizeof create_stream - 1);
    cr_assert(memcmp(b.data, create_stream, b.len) == 0);

    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_build_result_empty(&b, 2), 0);
    cr_assert_eq(b.len, 10 + 9 + 1 + 1);
    cr_assert_eq(b.data[b.len - 1], 0x06);

    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_build_on_status(&b, "status", "NetStream.Publish.Start",
                                          "Start publishing", "cam1"), 0);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_str_eq(cmd.name, "onStatus");
    cr_assert_eq(cmd.txid, 0);
    cr_assert_null(cmd.object);
    info = cmd.args;
    cr_assert_str_eq(weir_amf_get_string(info, "level"), "status");
    cr_assert_str_eq(weir_amf_get_string(info, "code"), "NetStream.Publish.Start");
    cr_assert_str_eq(weir_amf_get_string(info, "description"), "Start publishing");
    cr_assert_str_eq(weir_amf_get_string(info, "details"), "cam1");
    weir_amf_doc_free(&doc);

    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_build_error(&b, 5, "NetStream.Publish.BadName", "Bad key"), 0);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_str_eq(cmd.name, "_error");
    cr_assert_eq(cmd.txid, 5);
    cr_assert_str_eq(weir_amf_get_string(cmd.args, "level"), "error");
    cr_assert_str_eq(weir_amf_get_string(cmd.args, "code"), "NetStream.Publish.BadName");
    weir_amf_doc_free(&doc);

    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_build_on_fc_publish(&b, "NetStream.Publish.Start", "cam1"), 0);
    cr_assert_eq(weir_amf_decode(b.data, b.len, NULL, &doc), 0);
    cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
    cr_assert_str_eq(cmd.name, "onFCPublish");
    cr_assert_str_eq(weir_amf_get_string(cmd.args, "code"), "NetStream.Publish.Start");
    weir_amf_doc_free(&doc);

    weir_rtmp_buf_reset(&b);
    cr_assert_eq(weir_amf_build_on_bw_done(&b), 0);
    static const char bw[] = "\x02\x00\x08" "onBWDone" "\x00\x00\x00\x00\x00\x00\x00\x00\x00" "\x05";
    cr_assert_eq(b.len, sizeof bw - 1);
    cr_assert(memcmp(b.data, bw, b.len) == 0);
    weir_rtmp_buf_free(&b);
}
