/*
 * libFuzzer target: the RTMP chunk stream reader (ingest/rtmp/rtmp_chunk).
 *
 * Input: [split seed] [options] chunk-stream bytes...
 *
 * Checks, beyond "no crash, no leak, no UB" under ASan+UBSan:
 *   1. Split invariance: the stream fed whole and fed in pseudo-random
 *      pieces (seeded by byte 0, down to 1 byte) yields the same messages
 *      (type, stream id, timestamp, csid, payload) and the same final error.
 *   2. Writer round trip: every message read is written again with the
 *      chunk writer (chunk size and timestamp offset from byte 1) and read
 *      back by a fresh reader unchanged.
 * The stream may carry Set Chunk Size, Abort and Window Ack Size messages,
 * which the reader applies itself; the seed corpus has them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/buffer.h>

#include "ingest/rtmp/rtmp_chunk.h"

typedef struct digest {
    uint64_t h;
    unsigned n;
    int err;
} digest;

static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001B3ull;
}

static void mix_msg(digest *d, const weir_rtmp_msg *m)
{
    mix(&d->h, &m->type, sizeof m->type);
    mix(&d->h, &m->stream_id, sizeof m->stream_id);
    mix(&d->h, &m->timestamp, sizeof m->timestamp);
    mix(&d->h, &m->csid, sizeof m->csid);
    mix(&d->h, &m->len, sizeof m->len);
    mix(&d->h, m->data, m->len);
    d->n++;
}

static const uint32_t chunk_sizes[4] = { 128, 1, 60, 4096 };

/* Writes m (after a Set Chunk Size when the chosen size is not 128) and
 * reads it back through a fresh reader: it must come back identical.  A
 * control message in m was already applied successfully by the first
 * reader, so it applies here too. */
static void round_trip(const weir_rtmp_msg *m, uint8_t opts)
{
    weir_rtmp_writer w;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    weir_rtmp_reader *r;
    weir_rtmp_msg back;
    size_t used, off = 0;
    uint32_t cs = chunk_sizes[opts >> 6];
    unsigned want = cs != 128 ? 2 : 1, got = 0;
    int ret;

    if (m->len > 65536 || weir_rtmp_reader_new(NULL, &r) < 0)
        return;
    weir_rtmp_writer_init(&w);
    if (cs != 128 && weir_rtmp_write_set_chunk_size(&w, &out, cs) < 0)
        abort();
    if (weir_rtmp_write_message(&w, &out, m->csid, m->type, m->stream_id, m->timestamp,
                                m->data, m->len) < 0)
        abort();
    for (;;) {
        ret = weir_rtmp_reader_read(r, out.data + off, out.len - off, &used, &back);
        off += used;
        if (ret < 0)
            abort();
        if (ret == 0)
            break;
        got++;
        if (got == want &&
            (back.type != m->type || back.stream_id != m->stream_id ||
             back.timestamp != m->timestamp || back.csid != m->csid || back.len != m->len ||
             memcmp(back.data, m->data, m->len) != 0))
            abort();
        av_buffer_unref(&back.buf);
    }
    if (got != want || off != out.len)
        abort();
    weir_rtmp_reader_free(r);
    weir_rtmp_buf_free(&out);
}

static void run(const uint8_t *p, size_t n, size_t seed, uint8_t opts, digest *d, int check)
{
    weir_rtmp_reader_opts o = { .max_csids = (opts & 1) ? 4 : 0,
                                .max_message = (opts & 2) ? 4096 : 0 };
    weir_rtmp_reader *r;
    weir_rtmp_msg m;
    size_t off = 0, used;
    uint32_t s = (uint32_t)seed * 2654435761u + 1;
    uint32_t ack;
    int ret = 0;

    memset(d, 0, sizeof *d);
    d->h = 0xCBF29CE484222325ull;
    if (weir_rtmp_reader_new(&o, &r) < 0)
        return;
    while (off < n) {
        size_t piece = n - off;
        if (seed) {
            s = s * 1103515245u + 12345u;
            piece = 1 + (s >> 16) % 37;
            if (piece > n - off)
                piece = n - off;
        }
        size_t end = off + piece;
        while (off < end) {
            ret = weir_rtmp_reader_read(r, p + off, end - off, &used, &m);
            off += used;
            if (ret < 0)
                goto done;
            if (ret == 0)
                break;
            mix_msg(d, &m);
            if (check)
                round_trip(&m, opts);
            av_buffer_unref(&m.buf);
            weir_rtmp_reader_ack_due(r, &ack);
        }
    }
done:
    d->err = ret < 0 ? ret : 0;
    weir_rtmp_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    digest whole, split;

    if (size < 2)
        return 0;
    run(data + 2, size - 2, 0, data[1], &whole, 1);
    run(data + 2, size - 2, (size_t)data[0] + 1, data[1], &split, 0);
    if (whole.h != split.h || whole.n != split.n || whole.err != split.err)
        abort();
    return 0;
}
