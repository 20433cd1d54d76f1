/*
 * Unit tests for ingest/rtmp/rtmp_chunk: the chunk stream reader from hand
 * made byte sequences (every header format, 1/2/3-byte basic headers,
 * extended timestamps on fmt 0 and on type-3 continuations with and without
 * the repeat, chunk size changes mid-message, interleaved csids, abort,
 * limits), every way of splitting the input, the writer round-tripping
 * through the reader, the control messages, and acknowledgement tracking.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>

#include "tests/unit/ingest/bytevec.h"
#include "ingest/rtmp/rtmp_chunk.h"

/* ---- helpers --------------------------------------------------------------- */

#define MAXMSG 256

typedef struct got {
    weir_rtmp_msg m[MAXMSG];
    int n;
    int err;            /* the reader's error, 0 if none */
} got;

static void got_free(got *g)
{
    for (int i = 0; i < g->n; i++)
        av_buffer_unref(&g->m[i].buf);
    g->n = 0;
}

/* Feeds in pieces of `split` bytes (0: all at once), collecting messages. */
static void feed_split(weir_rtmp_reader *r, const uint8_t *p, size_t len, size_t split, got *g)
{
    size_t off = 0;

    g->err = 0;
    while (off < len) {
        size_t n = split && len - off > split ? split : len - off, used, o2 = 0;
        weir_rtmp_msg msg;
        int ret;
        for (;;) {
            ret = weir_rtmp_reader_read(r, p + off + o2, n - o2, &used, &msg);
            o2 += used;
            if (ret < 0) {
                g->err = ret;
                return;
            }
            if (ret == 0) {
                cr_assert_eq(o2, n, "0 returned with input left");
                break;
            }
            cr_assert_lt(g->n, MAXMSG);
            cr_assert_not_null(msg.buf);
            cr_assert_eq(msg.data, msg.buf->data);
            cr_assert_geq((size_t)msg.buf->size, msg.len + AV_INPUT_BUFFER_PADDING_SIZE);
            for (int i = 0; i < AV_INPUT_BUFFER_PADDING_SIZE; i++)
                cr_assert_eq(msg.data[msg.len + i], 0, "padding not zeroed");
            g->m[g->n++] = msg;
        }
        off += n;
    }
}

static weir_rtmp_reader *reader(const weir_rtmp_reader_opts *o)
{
    weir_rtmp_reader *r;
    cr_assert_eq(weir_rtmp_reader_new(o, &r), 0);
    return r;
}

/* Whole input through a fresh reader in one call. */
static void run(const uint8_t *p, size_t len, size_t split, got *g)
{
    weir_rtmp_reader *r = reader(NULL);
    feed_split(r, p, len, split, g);
    weir_rtmp_reader_free(r);
}


static void basic(vec *v, int fmt, uint32_t csid)
{
    if (csid < 64) {
        put8(v, (uint8_t)(fmt << 6 | csid));
    } else if (csid < 320) {
        put8(v, (uint8_t)(fmt << 6));
        put8(v, (uint8_t)(csid - 64));
    } else {
        put8(v, (uint8_t)(fmt << 6 | 1));
        put8(v, (uint8_t)((csid - 64) & 0xFF));
        put8(v, (uint8_t)((csid - 64) >> 8));
    }
}

static void fmt0(vec *v, uint32_t csid, uint32_t ts, uint32_t len, uint8_t type, uint32_t msid)
{
    basic(v, 0, csid);
    put24(v, ts >= 0xFFFFFF ? 0xFFFFFF : ts);
    put24(v, len);
    put8(v, type);
    putle32(v, msid);
    if (ts >= 0xFFFFFF)
        put32(v, ts);
}

static void fmt1(vec *v, uint32_t csid, uint32_t dts, uint32_t len, uint8_t type)
{
    basic(v, 1, csid);
    put24(v, dts >= 0xFFFFFF ? 0xFFFFFF : dts);
    put24(v, len);
    put8(v, type);
    if (dts >= 0xFFFFFF)
        put32(v, dts);
}

static void fmt2(vec *v, uint32_t csid, uint32_t dts)
{
    basic(v, 2, csid);
    put24(v, dts >= 0xFFFFFF ? 0xFFFFFF : dts);
    if (dts >= 0xFFFFFF)
        put32(v, dts);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* Set Chunk Size on csid 2. */
static void set_chunk(vec *v, uint32_t size)
{
    fmt0(v, 2, 0, 4, WEIR_RTMP_MSG_SET_CHUNK_SIZE, 0);
    put32(v, size);
}

/* Input fed at every split size from 1 to 19 and whole must give the same
 * messages as `expect` (fields and payload). */
static void check_all_splits(const vec *in, const got *expect)
{
    static const size_t splits[] = { 1, 2, 3, 4, 5, 7, 11, 13, 17, 19, 64, 129, 0 };
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        got g = { 0 };
        run(in->d, in->n, splits[s], &g);
        cr_assert_eq(g.err, expect->err, "split %zu: err %d", splits[s], g.err);
        cr_assert_eq(g.n, expect->n, "split %zu: %d messages", splits[s], g.n);
        for (int i = 0; i < g.n; i++) {
            cr_assert_eq(g.m[i].type, expect->m[i].type);
            cr_assert_eq(g.m[i].timestamp, expect->m[i].timestamp);
            cr_assert_eq(g.m[i].stream_id, expect->m[i].stream_id);
            cr_assert_eq(g.m[i].csid, expect->m[i].csid);
            cr_assert_eq(g.m[i].len, expect->m[i].len);
            cr_assert(memcmp(g.m[i].data, expect->m[i].data, g.m[i].len) == 0);
        }
        got_free(&g);
    }
}

/* ---- header formats ------------------------------------------------------------ */

Test(rtmp_chunk, fmt0_single_chunk)
{
    /* csid 3, ts 1000, len 5, type 20 (command), stream id 1 (little endian) */
    static const uint8_t in[] = {
        0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x05, 0x14, 0x01, 0x00, 0x00, 0x00,
        'h', 'e', 'l', 'l', 'o',
    };
    got g = { 0 };

    run(in, sizeof in, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.m[0].csid, 3);
    cr_assert_eq(g.m[0].timestamp, 1000);
    cr_assert_eq(g.m[0].len, 5);
    cr_assert_eq(g.m[0].type, 20);
    cr_assert_eq(g.m[0].stream_id, 1);
    cr_assert(memcmp(g.m[0].data, "hello", 5) == 0);
    got_free(&g);
}

static void fmt1_fmt2_fmt3_deltas_accumulate(void)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 4, 1000, 2, 8, 1);  put(v, "a0", 2);
    fmt1(v, 4, 20, 3, 9);       put(v, "b01", 3);    /* 1020, new len/type */
    fmt2(v, 4, 30);             put(v, "c01", 3);    /* 1050, same len/type */
    basic(v, 3, 4);             put(v, "d01", 3);    /* 1080: fmt 3 reuses delta 30 */
    basic(v, 3, 4);             put(v, "e01", 3);    /* 1110 */
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 5);
    const uint32_t ts[] = { 1000, 1020, 1050, 1080, 1110 };
    const uint8_t ty[] = { 8, 9, 9, 9, 9 };
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(g.m[i].timestamp, ts[i], "msg %d ts %u", i, g.m[i].timestamp);
        cr_assert_eq(g.m[i].type, ty[i]);
        cr_assert_eq(g.m[i].stream_id, 1, "fmt 1-3 keep the stream id");
        cr_assert_eq(g.m[i].len, i == 0 ? 2u : 3u);
        cr_assert_eq(g.m[i].data[0], 'a' + i);
    }
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void fmt3_new_message_after_fmt0_reuses_its_timestamp_as_delta(void)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 5, 40, 1, 8, 1);  put8(v, 1);
    basic(v, 3, 5);           put8(v, 2);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.m[1].timestamp, 80, "FFmpeg's convention: delta = fmt 0 timestamp");
    got_free(&g);
    free(v);
}

Test(rtmp_chunk, basic_header_forms)
{
    static const uint32_t csids[] = { 2, 3, 63, 64, 65, 319, 320, 1000, 65599 };
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    for (size_t i = 0; i < sizeof csids / sizeof csids[0]; i++) {
        fmt0(v, csids[i], (uint32_t)i, 1, 20, 0);
        put8(v, (uint8_t)i);
    }
    /* csid 100 written in the 3-byte form is still csid 100 */
    put8(v, 0x01); put8(v, 100 - 64); put8(v, 0);
    put24(v, 0); put24(v, 1); put8(v, 20); putle32(v, 0); put8(v, 0xAA);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 10);
    for (size_t i = 0; i < 9; i++) {
        cr_assert_eq(g.m[i].csid, csids[i]);
        cr_assert_eq(g.m[i].data[0], i);
    }
    cr_assert_eq(g.m[9].csid, 100);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void multi_chunk_message_default_size(void)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[300];
    got g = { 0 };

    fill(payload, sizeof payload, 1);
    fmt0(v, 6, 0, 300, 9, 1);
    put(v, payload, 128);
    basic(v, 3, 6); put(v, payload + 128, 128);
    basic(v, 3, 6); put(v, payload + 256, 44);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.m[0].len, 300);
    cr_assert(memcmp(g.m[0].data, payload, 300) == 0);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void zero_length_message(void)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 3, 7, 0, 20, 0);
    basic(v, 3, 3);             /* another empty one */
    fmt0(v, 3, 9, 1, 20, 0); put8(v, 'x');
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.m[0].len, 0);
    cr_assert_eq(g.m[1].len, 0);
    cr_assert_eq(g.m[1].timestamp, 14);
    cr_assert_eq(g.m[2].data[0], 'x');
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

/* ---- extended timestamps -------------------------------------------------------- */

/* A 300-byte message at ts (>= 0xFFFFFF) on csid 6, continuations with or
 * without the repeated extended timestamp. */
static void ext_message(vec *v, uint32_t ts, const uint8_t *payload, int repeat)
{
    fmt0(v, 6, ts, 300, 9, 1);
    put(v, payload, 128);
    basic(v, 3, 6); if (repeat) put32(v, ts); put(v, payload + 128, 128);
    basic(v, 3, 6); if (repeat) put32(v, ts); put(v, payload + 256, 44);
}

static void extended_timestamp_fmt0_with_repeat_on_type3(void)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[300];
    got g = { 0 };

    fill(payload, sizeof payload, 3);
    ext_message(v, 0x01020304, payload, 1);     /* FFmpeg, librtmp, OBS */
    fmt0(v, 3, 5, 1, 20, 0); put8(v, 'z');
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.m[0].timestamp, 0x01020304);
    cr_assert_eq(g.m[0].len, 300);
    cr_assert(memcmp(g.m[0].data, payload, 300) == 0);
    cr_assert_eq(g.m[1].data[0], 'z');
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void extended_timestamp_fmt0_without_repeat_on_type3(void)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[300];
    got g = { 0 };

    fill(payload, sizeof payload, 3);
    ext_message(v, 0x01020304, payload, 0);     /* the other school */
    fmt0(v, 3, 5, 1, 20, 0); put8(v, 'z');
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.m[0].timestamp, 0x01020304);
    cr_assert(memcmp(g.m[0].data, payload, 300) == 0);
    cr_assert_eq(g.m[1].data[0], 'z');
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void extended_timestamp_short_tail_without_repeat(void)
{
    /* 130 bytes: the continuation chunk has only 2 payload bytes, so the 4
     * bytes the heuristic looks at run into the next chunk's header. */
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[130];
    got g = { 0 };

    fill(payload, sizeof payload, 9);
    fmt0(v, 6, 0x7FFFFFFF, 130, 9, 1);
    put(v, payload, 128);
    basic(v, 3, 6); put(v, payload + 128, 2);
    fmt0(v, 4, 1, 1, 8, 1); put8(v, 'a');
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.m[0].len, 130);
    cr_assert(memcmp(g.m[0].data, payload, 130) == 0);
    cr_assert_eq(g.m[1].csid, 4);
    cr_assert_eq(g.m[1].data[0], 'a');
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

/* The worst case of the heuristic: the short tail itself looks like the start
 * of the timestamp, so the reader has already taken bytes of the next
 * chunk's header when it sees the mismatch, and must read them again. */
static void extended_timestamp_tail_matching_prefix(void)
{
    static const struct { uint32_t ts; size_t tail; } cases[] = {
        { 0x7FFFFFFF, 1 }, { 0x7FFFFFFF, 2 }, { 0x12345678, 3 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vec *v = calloc(1, sizeof *v);
        uint8_t payload[131], ts[4];
        size_t len = 128 + cases[c].tail;
        got g = { 0 };

        AV_WB32(ts, cases[c].ts);
        fill(payload, sizeof payload, 1);
        memcpy(payload + 128, ts, cases[c].tail);     /* tail == timestamp prefix */
        fmt0(v, 6, cases[c].ts, (uint32_t)len, 9, 1);
        put(v, payload, 128);
        basic(v, 3, 6); put(v, payload + 128, cases[c].tail);
        fmt0(v, 4, 1, 2, 8, 1); put(v, "ok", 2);       /* 0x04 != next ts byte */
        run(v->d, v->n, 0, &g);
        cr_assert_eq(g.err, 0, "case %zu", c);
        cr_assert_eq(g.n, 2, "case %zu", c);
        cr_assert_eq(g.m[0].len, len);
        cr_assert(memcmp(g.m[0].data, payload, len) == 0);
        cr_assert_eq(g.m[1].csid, 4);
        cr_assert(memcmp(g.m[1].data, "ok", 2) == 0);
        check_all_splits(v, &g);
        got_free(&g);
        free(v);
    }
}

static void extended_timestamp_short_tail_does_not_wait(void)
{
    /* Nothing follows the 2-byte tail (the client waits for our answer):
     * the message must come out anyway, as the bytes differ from the
     * timestamp. */
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[130];
    got g = { 0 };

    fill(payload, sizeof payload, 9);
    payload[128] = 0x55;    /* != 0x7F, the first byte of the timestamp */
    fmt0(v, 6, 0x7FFFFFFF, 130, 20, 0);
    put(v, payload, 128);
    basic(v, 3, 6); put(v, payload + 128, 2);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 1);
    cr_assert(memcmp(g.m[0].data, payload, 130) == 0);
    got_free(&g);
    run(v->d, v->n, 1, &g);
    cr_assert_eq(g.n, 1);
    got_free(&g);
    free(v);
}

static void extended_timestamp_short_tail_with_repeat(void)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[130];
    got g = { 0 };

    fill(payload, sizeof payload, 9);
    fmt0(v, 6, 0xFFFFFFFF, 130, 9, 1);
    put(v, payload, 128);
    basic(v, 3, 6); put32(v, 0xFFFFFFFF); put(v, payload + 128, 2);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.m[0].timestamp, 0xFFFFFFFF);
    cr_assert(memcmp(g.m[0].data, payload, 130) == 0);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

Test(rtmp_chunk, extended_delta_fmt1_fmt2_and_fmt3_new_message)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 4, 100, 1, 8, 1);        put8(v, 1);
    fmt1(v, 4, 0x01000000, 1, 8);    put8(v, 2);   /* extended delta */
    basic(v, 3, 4); put32(v, 0x01000000); put8(v, 3);  /* fmt 3 new message: ext present */
    fmt2(v, 4, 5);                   put8(v, 4);
    basic(v, 3, 4);                  put8(v, 5);   /* no ext any more */
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 5);
    cr_assert_eq(g.m[0].timestamp, 100);
    cr_assert_eq(g.m[1].timestamp, 100 + 0x01000000);
    cr_assert_eq(g.m[2].timestamp, 100 + 2u * 0x01000000);
    cr_assert_eq(g.m[3].timestamp, 105 + 2u * 0x01000000);
    cr_assert_eq(g.m[4].timestamp, 110 + 2u * 0x01000000);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

static void timestamp_wraps_mod_2_32(void)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 4, 0xFFFFFFF0u, 1, 8, 1); put8(v, 1);
    fmt2(v, 4, 0x20);                 put8(v, 2);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.m[1].timestamp, 0x10);
    got_free(&g);
    free(v);
}

/* ---- chunk size ------------------------------------------------------------------- */

Test(rtmp_chunk, set_chunk_size_applies_mid_message)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[600];
    got g = { 0 };

    fill(payload, sizeof payload, 5);
    fmt0(v, 6, 0, 600, 9, 1);
    put(v, payload, 128);           /* first chunk at 128 */
    set_chunk(v, 200);              /* on csid 2, between chunks of csid 6 */
    basic(v, 3, 6); put(v, payload + 128, 200);
    set_chunk(v, 4096);
    basic(v, 3, 6); put(v, payload + 328, 272);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.m[0].type, WEIR_RTMP_MSG_SET_CHUNK_SIZE, "control messages are delivered too");
    cr_assert_eq(g.m[2].len, 600);
    cr_assert(memcmp(g.m[2].data, payload, 600) == 0);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

Test(rtmp_chunk, set_chunk_size_limits)
{
    static const uint32_t bad[] = { 0, 0x80000000u, 0xFFFFFFFFu };
    for (size_t i = 0; i < 3; i++) {
        vec *v = calloc(1, sizeof *v);
        got g = { 0 };
        set_chunk(v, bad[i]);
        run(v->d, v->n, 0, &g);
        cr_assert_eq(g.err, AVERROR_INVALIDDATA, "size %u", bad[i]);
        free(v);
    }
    {
        vec *v = calloc(1, sizeof *v);
        weir_rtmp_reader *r = reader(NULL);
        got g = { 0 };
        set_chunk(v, 1);                    /* legal, if silly */
        fmt0(v, 3, 0, 3, 20, 0);
        put8(v, 'a'); basic(v, 3, 3); put8(v, 'b'); basic(v, 3, 3); put8(v, 'c');
        /* Set Chunk Size 0x7FFFFFFF, itself in 1-byte chunks */
        fmt0(v, 2, 0, 4, WEIR_RTMP_MSG_SET_CHUNK_SIZE, 0);
        put8(v, 0x7F);
        for (int i = 0; i < 3; i++) {
            basic(v, 3, 2);
            put8(v, 0xFF);
        }
        feed_split(r, v->d, v->n, 0, &g);
        cr_assert_eq(g.err, 0);
        cr_assert_eq(g.n, 3);
        cr_assert(memcmp(g.m[1].data, "abc", 3) == 0);
        cr_assert_eq(weir_rtmp_reader_chunk_size(r), 0x7FFFFFFF);
        got_free(&g);
        weir_rtmp_reader_free(r);
        free(v);
    }
    {
        /* Set Chunk Size shorter than 4 bytes */
        vec *v = calloc(1, sizeof *v);
        got g = { 0 };
        fmt0(v, 2, 0, 2, 1, 0); put8(v, 0); put8(v, 1);
        run(v->d, v->n, 0, &g);
        cr_assert_eq(g.err, AVERROR_INVALIDDATA);
        free(v);
    }
}

/* ---- interleaving and abort -------------------------------------------------------- */

Test(rtmp_chunk, many_interleaved_csids)
{
    enum { N = 20, LEN = 400 };
    vec *v = calloc(1, sizeof *v);
    static uint8_t payload[N][LEN];
    got g = { 0 };

    for (int c = 0; c < N; c++)
        fill(payload[c], LEN, (uint8_t)c);
    /* first chunk of every message, then second chunks, ... round robin */
    for (int k = 0; k * 128 < LEN; k++) {
        for (int c = 0; c < N; c++) {
            size_t off = (size_t)k * 128, n = LEN - off < 128 ? LEN - off : 128;
            uint32_t csid = (uint32_t)(c < 10 ? 3 + c : 300 + c);
            if (k == 0)
                fmt0(v, csid, (uint32_t)c * 10, LEN, 9, 1);
            else
                basic(v, 3, csid);
            put(v, payload[c] + off, n);
        }
    }
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, N);
    for (int c = 0; c < N; c++) {
        cr_assert_eq(g.m[c].timestamp, (uint32_t)c * 10);
        cr_assert(memcmp(g.m[c].data, payload[c], LEN) == 0);
    }
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

Test(rtmp_chunk, abort_drops_partial_message)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[200];
    got g = { 0 };

    fill(payload, sizeof payload, 1);
    fmt0(v, 6, 10, 200, 9, 1);
    put(v, payload, 128);                       /* partial on csid 6 */
    fmt0(v, 2, 0, 4, WEIR_RTMP_MSG_ABORT, 0);
    put32(v, 6);
    fmt0(v, 6, 20, 3, 9, 1); put(v, "new", 3);  /* a fmt 0 is legal again */
    fmt0(v, 2, 0, 4, WEIR_RTMP_MSG_ABORT, 0);   /* aborting an idle csid: no-op */
    put32(v, 77);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.m[0].type, WEIR_RTMP_MSG_ABORT);
    cr_assert_eq(g.m[1].len, 3);
    cr_assert_eq(g.m[1].timestamp, 20);
    cr_assert(memcmp(g.m[1].data, "new", 3) == 0);
    check_all_splits(v, &g);
    got_free(&g);
    free(v);
}

/* ---- protocol errors and limits ------------------------------------------------------- */

static void fmt123_on_unknown_csid_rejected(void)
{
    for (int fmt = 1; fmt <= 3; fmt++) {
        vec *v = calloc(1, sizeof *v);
        got g = { 0 };
        if (fmt == 1) fmt1(v, 5, 0, 1, 8);
        if (fmt == 2) fmt2(v, 5, 0);
        if (fmt == 3) basic(v, 3, 5);
        put8(v, 0);
        run(v->d, v->n, 0, &g);
        cr_assert_eq(g.err, AVERROR_INVALIDDATA, "fmt %d", fmt);
        free(v);
    }
}

static void new_header_inside_message_rejected(void)
{
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[128] = { 0 };
    got g = { 0 };

    fmt0(v, 6, 0, 200, 9, 1);
    put(v, payload, 128);
    fmt1(v, 6, 5, 10, 9);
    put(v, payload, 10);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, AVERROR_INVALIDDATA);
    free(v);
}

static void oversize_message_rejected(void)
{
    weir_rtmp_reader_opts o = { .max_message = 1000 };
    weir_rtmp_reader *r = reader(&o);
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    fmt0(v, 6, 0, 1000, 9, 1);      /* at the limit: fine */
    for (int i = 0; i < 1000; i++) {
        if (i && i % 128 == 0)
            basic(v, 3, 6);
        put8(v, (uint8_t)i);
    }
    fmt0(v, 6, 0, 1001, 9, 1);
    feed_split(r, v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.err, AVERROR(EMSGSIZE));
    /* sticky */
    size_t used;
    weir_rtmp_msg m;
    cr_assert_eq(weir_rtmp_reader_read(r, v->d, v->n, &used, &m), AVERROR(EMSGSIZE));
    cr_assert_eq(used, 0);
    got_free(&g);
    weir_rtmp_reader_free(r);
    free(v);

    /* default: 8 MiB */
    v = calloc(1, sizeof *v);
    fmt0(v, 6, 0, WEIR_RTMP_DEFAULT_MAX_MESSAGE + 1, 9, 1);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, AVERROR(EMSGSIZE));
    free(v);
}

static void too_many_csids_rejected(void)
{
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    for (uint32_t c = 0; c < WEIR_RTMP_DEFAULT_MAX_CSIDS; c++) {
        fmt0(v, 3 + c, 0, 1, 8, 1);
        put8(v, 1);
    }
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, WEIR_RTMP_DEFAULT_MAX_CSIDS);
    got_free(&g);
    fmt0(v, 1000, 0, 1, 8, 1);
    put8(v, 1);
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, AVERROR(ENOBUFS));
    got_free(&g);
    free(v);
}

static void pending_bytes_limit(void)
{
    /* Partial messages on many csids count together. */
    weir_rtmp_reader_opts o = { .max_pending = 300 * 1024 };
    weir_rtmp_reader *r = reader(&o);
    vec *v = calloc(1, sizeof *v);
    static uint8_t zeros[128];
    got g = { 0 };

    for (uint32_t c = 0; c < 6; c++) {          /* each claims 100 KiB */
        fmt0(v, 3 + c, 0, 100 * 1024, 9, 1);
        put(v, zeros, 128);
    }
    feed_split(r, v->d, v->n, 0, &g);
    /* 64 KiB buffers to start: the fifth exceeds 300 KiB */
    cr_assert_eq(g.err, AVERROR(ENOBUFS));
    weir_rtmp_reader_free(r);
    free(v);
}

static void big_header_costs_nothing_until_bytes_arrive(void)
{
    /* 64 csids each announcing 8 MiB, 1 payload byte each: fine (the 16 MiB
     * pending limit counts buffers, which grow with the data). */
    vec *v = calloc(1, sizeof *v);
    got g = { 0 };

    for (uint32_t c = 0; c < 64; c++) {
        fmt0(v, 3 + c, 0, WEIR_RTMP_DEFAULT_MAX_MESSAGE, 9, 1);
        put8(v, 0);
        /* fill the rest of the first chunk so the next header is aligned */
        for (int i = 1; i < 128; i++)
            put8(v, 0);
    }
    run(v->d, v->n, 0, &g);
    cr_assert_eq(g.err, 0);
    cr_assert_eq(g.n, 0);
    free(v);
}

/* ---- writer ---------------------------------------------------------------------- */

Test(rtmp_chunk, writer_round_trips_around_chunk_boundaries)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 127, 128, 129, 255, 256, 257, 383, 384, 385, 1000, 4095, 4096, 4097, 20000 };
    static const uint32_t chunk_sizes[] = { 128, 1, 3, 4096, 60000 };
    static const uint32_t csids[] = { 2, 63, 64, 319, 320, 65599 };
    static const uint32_t stamps[] = { 0, 1000, 0xFFFFFE, 0xFFFFFF, 0x12345678, 0xFFFFFFFF };
    static uint8_t payload[20000 + 32];
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;

    fill(payload, sizeof payload, 42);
    for (size_t c = 0; c < sizeof chunk_sizes / sizeof chunk_sizes[0]; c++) {
        for (size_t t = 0; t < sizeof stamps / sizeof stamps[0]; t++) {
            weir_rtmp_writer w;
            weir_rtmp_reader *r = reader(NULL);
            got g = { 0 };
            int n = 0;

            weir_rtmp_writer_init(&w);
            weir_rtmp_buf_reset(&out);
            if (chunk_sizes[c] != 128)
                cr_assert_eq(weir_rtmp_write_set_chunk_size(&w, &out, chunk_sizes[c]), 0);
            cr_assert_eq(w.chunk_size, chunk_sizes[c]);
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                if (chunk_sizes[c] < 4 && sizes[s] > 4096)
                    continue;   /* keep the 1-byte chunk case fast */
                uint32_t csid = csids[(s + t) % (sizeof csids / sizeof csids[0])];
                cr_assert_eq(weir_rtmp_write_message(&w, &out, csid, 9, (uint32_t)s, stamps[t] + (uint32_t)s,
                                                     payload + s, sizes[s]), 0);
                n++;
            }
            feed_split(r, out.data, out.len, 1 + (c * 7 + t * 3) % 23, &g);
            cr_assert_eq(g.err, 0);
            int base = chunk_sizes[c] != 128;
            cr_assert_eq(g.n, n + base);
            for (int i = 0, s = 0; i < n; i++, s++) {
                while (chunk_sizes[c] < 4 && sizes[s] > 4096)
                    s++;
                const weir_rtmp_msg *m = &g.m[i + base];
                cr_assert_eq(m->len, sizes[s], "chunk %u size %zu", chunk_sizes[c], sizes[s]);
                cr_assert_eq(m->timestamp, stamps[t] + (uint32_t)s);
                cr_assert_eq(m->stream_id, (uint32_t)s);
                cr_assert_eq(m->csid, csids[(s + t) % (sizeof csids / sizeof csids[0])]);
                cr_assert(memcmp(m->data, payload + s, sizes[s]) == 0);
            }
            got_free(&g);
            weir_rtmp_reader_free(r);
        }
    }
    weir_rtmp_buf_free(&out);
}

static void writer_bytes(void)
{
    weir_rtmp_writer w;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    static const uint8_t expect[] = {
        /* Window Acknowledgement Size 2500000 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x26, 0x25, 0xA0,
        /* Set Peer Bandwidth 2500000, dynamic */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x26, 0x25, 0xA0, 0x02,
        /* Set Chunk Size 4096 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x10, 0x00,
        /* User Control: Stream Begin 1 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        /* Acknowledgement 123456 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0xE2, 0x40,
        /* Ping Response 0xCAFE */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x07, 0x00, 0x00, 0xCA, 0xFE,
    };

    weir_rtmp_writer_init(&w);
    cr_assert_eq(weir_rtmp_write_window_ack_size(&w, &out, 2500000), 0);
    cr_assert_eq(weir_rtmp_write_set_peer_bandwidth(&w, &out, 2500000, WEIR_RTMP_BW_DYNAMIC), 0);
    cr_assert_eq(weir_rtmp_write_set_chunk_size(&w, &out, 4096), 0);
    cr_assert_eq(weir_rtmp_write_user_control(&w, &out, WEIR_RTMP_UC_STREAM_BEGIN, 1), 0);
    cr_assert_eq(weir_rtmp_write_ack(&w, &out, 123456), 0);
    cr_assert_eq(weir_rtmp_write_user_control(&w, &out, WEIR_RTMP_UC_PING_RESPONSE, 0xCAFE), 0);
    cr_assert_eq(out.len, sizeof expect);
    cr_assert(memcmp(out.data, expect, sizeof expect) == 0);

    cr_assert_eq(weir_rtmp_write_set_chunk_size(&w, &out, 0), AVERROR(EINVAL));
    cr_assert_eq(weir_rtmp_write_set_chunk_size(&w, &out, 0x80000000u), AVERROR(EINVAL));
    cr_assert_eq(w.chunk_size, 4096);
    cr_assert_eq(weir_rtmp_write_set_peer_bandwidth(&w, &out, 1, 3), AVERROR(EINVAL));
    cr_assert_eq(weir_rtmp_write_message(&w, &out, 1, 20, 0, 0, NULL, 0), AVERROR(EINVAL));
    cr_assert_eq(weir_rtmp_write_message(&w, &out, 65600, 20, 0, 0, NULL, 0), AVERROR(EINVAL));
    weir_rtmp_buf_free(&out);
}

static void writer_extended_timestamp_bytes(void)
{
    weir_rtmp_writer w;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    uint8_t payload[130] = { 0 };

    weir_rtmp_writer_init(&w);
    cr_assert_eq(weir_rtmp_write_message(&w, &out, 6, 9, 1, 0x01000000, payload, sizeof payload), 0);
    /* 1 + 11 + 4 + 128 + (1 + 4) + 2 */
    cr_assert_eq(out.len, 151);
    cr_assert_eq(AV_RB24(out.data + 1), 0xFFFFFF);
    cr_assert_eq(AV_RB32(out.data + 12), 0x01000000);
    cr_assert_eq(out.data[144], 0xC6);
    cr_assert_eq(AV_RB32(out.data + 145), 0x01000000, "repeated on the fmt 3 chunk");
    weir_rtmp_buf_free(&out);
}

/* ---- control message parsing, acknowledgements, callback API ------------------------- */

Test(rtmp_chunk, parse_control)
{
    uint8_t ucb[10] = { 0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8 };
    weir_rtmp_msg m = { .data = ucb, .len = sizeof ucb };
    uint16_t ev;
    uint32_t a, b;
    uint8_t lt;

    cr_assert_eq(weir_rtmp_parse_user_control(&m, &ev, &a, &b), 0);
    cr_assert_eq(ev, WEIR_RTMP_UC_SET_BUFFER_LENGTH);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 3000);
    m.len = 6;
    cr_assert_eq(weir_rtmp_parse_user_control(&m, &ev, &a, &b), AVERROR_INVALIDDATA);
    ucb[1] = WEIR_RTMP_UC_PING_REQUEST;
    cr_assert_eq(weir_rtmp_parse_user_control(&m, &ev, &a, NULL), 0);
    cr_assert_eq(a, 1);
    m.len = 1;
    cr_assert_eq(weir_rtmp_parse_user_control(&m, &ev, &a, NULL), AVERROR_INVALIDDATA);
    m.len = 5;
    ucb[4] = 2;
    cr_assert_eq(weir_rtmp_parse_peer_bandwidth(&m, &a, &lt), 0);
    cr_assert_eq(a, 0x00060000u);
    cr_assert_eq(lt, 2);
    m.len = 3;
    cr_assert_eq(weir_rtmp_parse_u32(&m, &a), AVERROR_INVALIDDATA);
    cr_assert_eq(weir_rtmp_parse_peer_bandwidth(&m, &a, &lt), AVERROR_INVALIDDATA);
}

Test(rtmp_chunk, ack_window)
{
    weir_rtmp_reader *r = reader(NULL);
    vec *v = calloc(1, sizeof *v);
    uint8_t payload[1000] = { 0 };
    uint32_t seq;
    got g = { 0 };

    cr_assert_eq(weir_rtmp_reader_ack_due(r, &seq), 0, "no window yet");
    fmt0(v, 2, 0, 4, WEIR_RTMP_MSG_WINDOW_ACK_SIZE, 0);
    put32(v, 500);
    fmt0(v, 3, 0, 100, 20, 0);
    put(v, payload, 100);
    feed_split(r, v->d, v->n, 0, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(weir_rtmp_reader_bytes(r), v->n);
    cr_assert_eq(weir_rtmp_reader_ack_due(r, &seq), 0);
    got_free(&g);

    v->n = 0;
    fmt0(v, 3, 0, 400, 20, 0);
    for (int off = 0; off < 400; off += 128) {
        if (off)
            basic(v, 3, 3);
        put(v, payload, 400 - off < 128 ? 400 - off : 128);
    }
    weir_rtmp_reader_add_bytes(r, 3073);    /* the handshake */
    feed_split(r, v->d, v->n, 0, &g);
    cr_assert_eq(weir_rtmp_reader_ack_due(r, &seq), 1);
    cr_assert_eq(seq, (uint32_t)weir_rtmp_reader_bytes(r));
    cr_assert_eq(weir_rtmp_reader_ack_due(r, &seq), 0, "window restarts");
    got_free(&g);
    weir_rtmp_reader_free(r);
    free(v);
}

typedef struct cb_state {
    int n;
    int stop_at;
} cb_state;

static int on_msg(void *arg, weir_rtmp_msg *msg)
{
    cb_state *s = arg;
    av_buffer_unref(&msg->buf);
    if (++s->n == s->stop_at)
        return AVERROR_EXIT;
    return 0;
}

Test(rtmp_chunk, callback_feed)
{
    weir_rtmp_reader *r = reader(NULL);
    vec *v = calloc(1, sizeof *v);
    cb_state s = { 0, 0 };

    for (int i = 0; i < 5; i++) {
        fmt0(v, 3, (uint32_t)i, 2, 20, 0);
        put(v, "hi", 2);
    }
    cr_assert_eq(weir_rtmp_reader_feed(r, v->d, v->n, on_msg, &s), 0);
    cr_assert_eq(s.n, 5);
    s = (cb_state){ 0, 2 };
    cr_assert_eq(weir_rtmp_reader_feed(r, v->d, v->n, on_msg, &s), AVERROR_EXIT);
    cr_assert_eq(s.n, 2);
    weir_rtmp_reader_free(r);
    free(v);
}

Test(rtmp_chunk, garbage_never_crashes)
{
    /* A quick deterministic smoke run; the fuzzer does the real work. */
    uint8_t buf[4096];
    unsigned seed = 1;

    for (int iter = 0; iter < 300; iter++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        buf[0] = 0x03;  /* start with a plausible header */
        got g = { 0 };
        run(buf, sizeof buf, 1 + iter % 50, &g);
        got_free(&g);
    }
}

Test(rtmp_chunk, header_formats_and_timestamp_deltas)
{
    fmt1_fmt2_fmt3_deltas_accumulate();
    fmt3_new_message_after_fmt0_reuses_its_timestamp_as_delta();
    timestamp_wraps_mod_2_32();
}

Test(rtmp_chunk, multi_chunk_and_empty_messages)
{
    multi_chunk_message_default_size();
    zero_length_message();
}

Test(rtmp_chunk, extended_timestamp_on_type3_continuations)
{
    extended_timestamp_fmt0_with_repeat_on_type3();
    extended_timestamp_fmt0_without_repeat_on_type3();
}

Test(rtmp_chunk, extended_timestamp_short_continuation_tail)
{
    extended_timestamp_short_tail_without_repeat();
    extended_timestamp_short_tail_does_not_wait();
    extended_timestamp_short_tail_with_repeat();
    extended_timestamp_tail_matching_prefix();
}

Test(rtmp_chunk, protocol_violations_rejected)
{
    fmt123_on_unknown_csid_rejected();
    new_header_inside_message_rejected();
}

Test(rtmp_chunk, limits)
{
    oversize_message_rejected();
    too_many_csids_rejected();
    pending_bytes_limit();
    big_header_costs_nothing_until_bytes_arrive();
}

Test(rtmp_chunk, writer_exact_bytes)
{
    writer_bytes();
    writer_extended_timestamp_bytes();
}
