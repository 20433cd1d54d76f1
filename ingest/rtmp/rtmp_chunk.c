/*
 * ingest/rtmp/rtmp_chunk.c — chunk stream reader and writer.  The wire
 * format, the reader's state diagram, the extended-timestamp policy and the
 * limits are in rtmp_chunk.h; this file adds how they are kept.
 *
 * Header bytes (at most 3 + 11 + 4) are collected one at a time into
 * r->hdr, so a header split across reads at any byte is no special case.
 * Payload bytes are copied in runs straight into the message's buffer.
 *
 * The type-3 heuristic may find that bytes it took for a repeated extended
 * timestamp were payload, and, when the message has fewer than 4 bytes left,
 * that some of them were already the next chunk's header.  Those bytes go
 * to a small pushback queue that is read before any new input.  It never
 * holds more than 4 bytes: each pass of the heuristic takes k <= 4 bytes and
 * gives back at most k - 1 (a continuation chunk has at least one payload
 * byte), so the queue shrinks while it is being re-read.
 *
 * Invariants:
 *   1. r->pending == sum of cs[i].cap over all chunk streams.
 *   2. A chunk stream has buf != NULL only while partial.
 *   3. 0 < chunk_left <= chunk_size while in PAYLOAD; a chunk never runs
 *      past the end of its message.
 *   4. Chunk stream slots are only created by a fmt 0 header.
 */
#include "ingest/rtmp/rtmp_chunk.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <libavcodec/avcodec.h>     /* AV_INPUT_BUFFER_PADDING_SIZE */
#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/mem.h>

#define PAD AV_INPUT_BUFFER_PADDING_SIZE
#define EXT_TS_FIELD 0xFFFFFFu
/* Messages up to this size get their whole buffer at once; larger ones grow. */
#define SMALL_MESSAGE (64u << 10)

enum { ST_BASIC, ST_HEADER, ST_EXT, ST_PAYLOAD };

typedef struct chunk_stream {
    uint32_t csid;
    uint32_t timestamp;     /* of the message in progress, or the last one */
    uint32_t delta;         /* reused by a fmt 3 new message */
    uint32_t len;
    uint32_t stream_id;
    uint32_t ext_value;     /* extended field of the last fmt 0/1/2 (or fmt 3 new) header */
    uint8_t type;
    bool ext;               /* the last fmt 0/1/2 header had an extended timestamp */
    bool partial;           /* a message is in progress */
    uint32_t got;           /* payload bytes of it received */
    AVBufferRef *buf;       /* its payload, cap + PAD bytes */
    size_t cap;
} chunk_stream;

struct weir_rtmp_reader {
    int err;                /* sticky */
    int state;
    uint32_t chunk_size;
    uint32_t max_message, max_csids, max_pending;

    chunk_stream *cs;
    uint32_t ncs, cs_alloc;
    uint32_t cur;           /* index into cs of the chunk being read */

    uint8_t hdr[3 + 11 + 4];
    uint8_t hdr_len, need;  /* bytes in hdr, bytes the current stage needs */
    uint8_t basic_len;      /* 1..3 */
    uint8_t fmt;
    uint32_t chunk_left;    /* payload bytes left in this chunk */

    uint8_t pb[8];          /* pushback queue, read before new input */
    uint8_t pb_pos, pb_len;
    uint8_t spill[4];       /* bytes one step() gives back */
    uint8_t spill_len;

    size_t pending;         /* bytes allocated for partial messages */
    uint64_t bytes;         /* consumed input */
    uint64_t acked;         /* bytes at the last acknowledgement */
    uint32_t window;        /* peer's Window Acknowledgement Size, 0: none */
};

static const uint8_t msg_header_len[4] = { 11, 7, 3, 0 };

int weir_rtmp_reader_new(const weir_rtmp_reader_opts *opts, weir_rtmp_reader **out)
{
    weir_rtmp_reader *r;

    *out = NULL;
    if (opts && opts->max_message > WEIR_RTMP_MAX_MESSAGE_LEN)
        return AVERROR(EINVAL);
    if (!(r = av_mallocz(sizeof *r)))
        return AVERROR(ENOMEM);
    r->chunk_size = WEIR_RTMP_DEFAULT_CHUNK_SIZE;
    r->max_message = opts && opts->max_message ? opts->max_message : WEIR_RTMP_DEFAULT_MAX_MESSAGE;
    r->max_csids = opts && opts->max_csids ? opts->max_csids : WEIR_RTMP_DEFAULT_MAX_CSIDS;
    r->max_pending = opts && opts->max_pending ? opts->max_pending : WEIR_RTMP_DEFAULT_MAX_PENDING;
    r->state = ST_BASIC;
    r->need = 1;
    *out = r;
    return 0;
}

static void cs_drop(weir_rtmp_reader *r, chunk_stream *cs)
{
    av_buffer_unref(&cs->buf);
    r->pending -= cs->cap;
    cs->cap = 0;
    cs->partial = false;
    cs->got = 0;
}

void weir_rtmp_reader_free(weir_rtmp_reader *r)
{
    uint32_t i;

    if (!r)
        return;
    for (i = 0; i < r->ncs; i++)
        cs_drop(r, &r->cs[i]);
    av_free(r->cs);
    av_free(r);
}

uint32_t weir_rtmp_reader_chunk_size(const weir_rtmp_reader *r) { return r->chunk_size; }
uint64_t weir_rtmp_reader_bytes(const weir_rtmp_reader *r) { return r->bytes; }
void weir_rtmp_reader_add_bytes(weir_rtmp_reader *r, uint64_t n) { r->bytes += n; }

int weir_rtmp_reader_ack_due(weir_rtmp_reader *r, uint32_t *seq)
{
    if (!r->window || r->bytes - r->acked < r->window)
        return 0;
    r->acked = r->bytes;
    *seq = (uint32_t)r->bytes;
    return 1;
}

/* Index of csid's slot, or -1. */
static int cs_find(const weir_rtmp_reader *r, uint32_t csid)
{
    uint32_t i;

    if (r->cur < r->ncs && r->cs[r->cur].csid == csid)
        return (int)r->cur;
    for (i = 0; i < r->ncs; i++)
        if (r->cs[i].csid == csid)
            return (int)i;
    return -1;
}

static int cs_create(weir_rtmp_reader *r, uint32_t csid)
{
    chunk_stream *cs;

    if (r->ncs >= r->max_csids)
        return AVERROR(ENOBUFS);
    if (r->ncs == r->cs_alloc) {
        uint32_t n = r->cs_alloc ? r->cs_alloc * 2 : 8;
        if (n > r->max_csids)
            n = r->max_csids;
        cs = av_realloc_array(r->cs, n, sizeof *cs);
        if (!cs)
            return AVERROR(ENOMEM);
        r->cs = cs;
        r->cs_alloc = n;
    }
    cs = &r->cs[r->ncs];
    memset(cs, 0, sizeof *cs);
    cs->csid = csid;
    return (int)r->ncs++;
}

/* Makes room for `more` payload bytes in the message in progress. */
static int cs_reserve(weir_rtmp_reader *r, chunk_stream *cs, size_t more)
{
    size_t want = (size_t)cs->got + more, cap;
    int ret;

    if (want <= cs->cap && cs->buf)
        return 0;
    assert(want <= cs->len);
    if (cs->len <= SMALL_MESSAGE) {
        cap = cs->len;
    } else {
        cap = cs->cap ? cs->cap * 2 : SMALL_MESSAGE;
        if (cap < want)
            cap = want;
        if (cap > cs->len)
            cap = cs->len;
    }
    if (r->pending - cs->cap + cap > r->max_pending)
        return AVERROR(ENOBUFS);
    if ((ret = av_buffer_realloc(&cs->buf, cap + PAD)) < 0)
        return ret;
    r->pending = r->pending - cs->cap + cap;
    cs->cap = cap;
    return 0;
}

static int cs_append(weir_rtmp_reader *r, chunk_stream *cs, const uint8_t *p, size_t n)
{
    int ret;

    assert(n <= r->chunk_left);
    if ((ret = cs_reserve(r, cs, n)) < 0)
        return ret;
    memcpy(cs->buf->data + cs->got, p, n);
    cs->got += (uint32_t)n;
    r->chunk_left -= (uint32_t)n;
    return 0;
}

/* The control messages that change how we read. */
static int apply_control(weir_rtmp_reader *r, const weir_rtmp_msg *msg)
{
    uint32_t v;
    int i, ret;

    if (msg->type != WEIR_RTMP_MSG_SET_CHUNK_SIZE && msg->type != WEIR_RTMP_MSG_ABORT &&
        msg->type != WEIR_RTMP_MSG_WINDOW_ACK_SIZE)
        return 0;
    if ((ret = weir_rtmp_parse_u32(msg, &v)) < 0)
        return ret;
    switch (msg->type) {
    case WEIR_RTMP_MSG_SET_CHUNK_SIZE:
        if (v == 0 || v > WEIR_RTMP_MAX_CHUNK_SIZE)
            return AVERROR_INVALIDDATA;
        r->chunk_size = v;
        break;
    case WEIR_RTMP_MSG_ABORT:
        if ((i = cs_find(r, v)) >= 0)
            cs_drop(r, &r->cs[i]);
        break;
    case WEIR_RTMP_MSG_WINDOW_ACK_SIZE:
        r->window = v;
        break;
    }
    return 0;
}

/* The message on the current chunk stream is complete: hand it out. */
static int emit(weir_rtmp_reader *r, weir_rtmp_msg *msg)
{
    chunk_stream *cs = &r->cs[r->cur];
    int ret;

    if ((ret = cs_reserve(r, cs, 0)) < 0)   /* a 0-byte message has no buffer yet */
        return ret;
    memset(cs->buf->data + cs->len, 0, PAD);
    msg->type = cs->type;
    msg->stream_id = cs->stream_id;
    msg->timestamp = cs->timestamp;
    msg->csid = cs->csid;
    msg->buf = cs->buf;
    msg->data = cs->buf->data;
    msg->len = cs->len;
    cs->buf = NULL;
    r->pending -= cs->cap;
    cs->cap = 0;
    cs->partial = false;
    cs->got = 0;
    if ((ret = apply_control(r, msg)) < 0) {
        av_buffer_unref(&msg->buf);
        memset(msg, 0, sizeof *msg);
        return ret;
    }
    return 1;
}

/* A chunk's payload is complete: back to BASIC, and out with the message
 * if it was the last chunk. */
static int chunk_done(weir_rtmp_reader *r, weir_rtmp_msg *msg)
{
    chunk_stream *cs = &r->cs[r->cur];

    r->state = ST_BASIC;
    r->need = 1;
    r->hdr_len = 0;
    if (cs->got == cs->len)
        return emit(r, msg);
    return 0;
}

/* Header complete (v: the timestamp or delta, from the 24-bit field or the
 * extended one).  Applies it to the chunk stream and starts the payload. */
static int header_done(weir_rtmp_reader *r, uint32_t v, bool has_ext, weir_rtmp_msg *msg)
{
    chunk_stream *cs = &r->cs[r->cur];
    const uint8_t *h = r->hdr + r->basic_len;
    uint32_t left;

    switch (r->fmt) {
    case 0:
        cs->timestamp = v;
        cs->delta = v;
        cs->len = AV_RB24(h + 3);
        cs->type = h[6];
        cs->stream_id = AV_RL32(h + 7);
        break;
    case 1:
        cs->delta = v;
        cs->timestamp += v;
        cs->len = AV_RB24(h + 3);
        cs->type = h[6];
        break;
    case 2:
        cs->delta = v;
        cs->timestamp += v;
        break;
    case 3:
        if (cs->partial)
            break;          /* continuation: nothing changes */
        if (has_ext) {
            cs->delta = v;
            cs->ext_value = v;
        }
        cs->timestamp += cs->delta;
        break;
    }
    if (r->fmt < 3) {
        cs->ext = has_ext;
        cs->ext_value = has_ext ? v : 0;
    }
    if (!cs->partial) {
        if (cs->len > r->max_message)
            return AVERROR(EMSGSIZE);
        cs->partial = true;
        cs->got = 0;
    }
    left = cs->len - cs->got;
    r->chunk_left = left < r->chunk_size ? left : r->chunk_size;
    r->state = ST_PAYLOAD;
    if (r->chunk_left == 0)     /* a 0-byte message */
        return chunk_done(r, msg);
    return 0;
}

static int basic_done(weir_rtmp_reader *r)
{
    uint32_t csid = r->hdr[0] & 0x3F;
    int i;

    r->fmt = r->hdr[0] >> 6;
    if (csid == 0)
        csid = 64 + r->hdr[1];
    else if (csid == 1)
        csid = 64 + r->hdr[1] + 256u * r->hdr[2];
    i = cs_find(r, csid);
    if (i < 0) {
        if (r->fmt != 0)
            return AVERROR_INVALIDDATA;     /* no header to inherit from */
        if ((i = cs_create(r, csid)) < 0)
            return i;
    } else if (r->fmt != 3 && r->cs[i].partial) {
        return AVERROR_INVALIDDATA;         /* new header inside a message */
    }
    r->cur = (uint32_t)i;
    r->need = r->basic_len + msg_header_len[r->fmt];
    r->state = ST_HEADER;
    return 0;
}

/* Message header complete: is an extended timestamp next? */
static int msg_header_done(weir_rtmp_reader *r, weir_rtmp_msg *msg)
{
    chunk_stream *cs = &r->cs[r->cur];
    uint32_t field = 0;
    bool ext;

    if (r->fmt < 3) {
        field = AV_RB24(r->hdr + r->basic_len);
        ext = field == EXT_TS_FIELD;
    } else {
        ext = cs->ext;
    }
    if (!ext)
        return header_done(r, field, false, msg);
    r->need += 4;
    r->state = ST_EXT;
    return 0;
}

/* One more byte of an extended timestamp arrived.  For a continuation chunk
 * decide whether these bytes repeat the timestamp or are payload. */
static int ext_byte(weir_rtmp_reader *r, weir_rtmp_msg *msg)
{
    chunk_stream *cs = &r->cs[r->cur];
    uint8_t off = (uint8_t)(r->need - 4), k = (uint8_t)(r->hdr_len - off), t;
    uint8_t expect[4];
    uint32_t left;
    int ret;

    if (!(r->fmt == 3 && cs->partial)) {
        if (k < 4)
            return 0;
        return header_done(r, AV_RB32(r->hdr + off), true, msg);
    }
    AV_WB32(expect, cs->ext_value);
    if (memcmp(r->hdr + off, expect, k) == 0) {
        if (k < 4)
            return 0;
        return header_done(r, cs->ext_value, true, msg);    /* repeated: skip it */
    }
    /* Payload after all. */
    left = cs->len - cs->got;
    r->chunk_left = left < r->chunk_size ? left : r->chunk_size;
    r->state = ST_PAYLOAD;
    t = k < r->chunk_left ? k : (uint8_t)r->chunk_left;
    if ((ret = cs_append(r, cs, r->hdr + off, t)) < 0)
        return ret;
    assert(t >= 1 && k - t <= (int)sizeof r->spill);
    memcpy(r->spill, r->hdr + off + t, k - t);
    r->spill_len = k - t;
    if (r->chunk_left == 0)
        return chunk_done(r, msg);
    return 0;
}

/* Runs the state machine over p[0..n).  *used (OUT): bytes taken.  Returns
 * 1 (message out), 0 (source exhausted, or bytes spilled for re-reading),
 * or an error. */
static int step(weir_rtmp_reader *r, const uint8_t *p, size_t n, size_t *used,
                weir_rtmp_msg *msg)
{
    size_t i = 0, take;
    int ret = 0;

    while (i < n) {
        if (r->state == ST_PAYLOAD) {
            take = n - i < r->chunk_left ? n - i : r->chunk_left;
            if ((ret = cs_append(r, &r->cs[r->cur], p + i, take)) < 0)
                break;
            i += take;
            if (r->chunk_left == 0 && (ret = chunk_done(r, msg)) != 0)
                break;
            continue;
        }
        r->hdr[r->hdr_len++] = p[i++];
        if (r->state == ST_EXT) {
            ret = ext_byte(r, msg);
            if (ret != 0 || r->spill_len)
                break;
            continue;
        }
        if (r->hdr_len < r->need)
            continue;
        if (r->state == ST_BASIC) {
            if (r->hdr_len == 1) {
                uint8_t low = r->hdr[0] & 0x3F;
                r->basic_len = low == 0 ? 2 : low == 1 ? 3 : 1;
                if (r->basic_len > 1) {
                    r->need = r->basic_len;
                    continue;
                }
            }
            if ((ret = basic_done(r)) < 0)
                break;
            if (r->hdr_len < r->need)
                continue;
        }
        /* ST_HEADER, complete (possibly empty for fmt 3) */
        if ((ret = msg_header_done(r, msg)) != 0)
            break;
    }
    *used = i;
    return ret;
}

int weir_rtmp_reader_read(weir_rtmp_reader *r, const uint8_t *data, size_t len,
                          size_t *consumed, weir_rtmp_msg *msg)
{
    size_t used;
    int ret, from_pb;

    *consumed = 0;
    memset(msg, 0, sizeof *msg);
    if (r->err)
        return r->err;
    for (;;) {
        from_pb = r->pb_pos < r->pb_len;
        if (from_pb) {
            ret = step(r, r->pb + r->pb_pos, r->pb_len - r->pb_pos, &used, msg);
            r->pb_pos += (uint8_t)used;
        } else {
            if (*consumed == len)
                return 0;
            ret = step(r, data + *consumed, len - *consumed, &used, msg);
            *consumed += used;
            r->bytes += used;
        }
        if (r->spill_len) {
            /* spilled bytes come before whatever of the queue is unread */
            uint8_t rest = from_pb ? (uint8_t)(r->pb_len - r->pb_pos) : 0;
            uint8_t tmp[sizeof r->pb];

            assert(r->spill_len + rest <= (int)sizeof r->pb);
            memcpy(tmp, r->spill, r->spill_len);
            memcpy(tmp + r->spill_len, r->pb + r->pb_pos, rest);
            memcpy(r->pb, tmp, r->spill_len + rest);
            r->pb_pos = 0;
            r->pb_len = r->spill_len + rest;
            r->spill_len = 0;
        } else if (r->pb_pos == r->pb_len) {
            r->pb_pos = r->pb_len = 0;
        }
        if (ret < 0) {
            r->err = ret;
            return ret;
        }
        if (ret == 1)
            return 1;
    }
}

int weir_rtmp_reader_feed(weir_rtmp_reader *r, const uint8_t *data, size_t len,
                          weir_rtmp_msg_cb cb, void *arg)
{
    weir_rtmp_msg msg;
    size_t used, off = 0;
    int ret;

    for (;;) {
        ret = weir_rtmp_reader_read(r, off ? data + off : data, len - off, &used, &msg);
        off += used;
        if (ret <= 0)
            return ret;
        if ((ret = cb(arg, &msg)) < 0)
            return ret;
    }
}

/* ---- writer ------------------------------------------------------------- */

void weir_rtmp_writer_init(weir_rtmp_writer *w)
{
    w->chunk_size = WEIR_RTMP_DEFAULT_CHUNK_SIZE;
}

static size_t put_basic(uint8_t *p, uint8_t fmt, uint32_t csid)
{
    if (csid < 64) {
        p[0] = (uint8_t)(fmt << 6 | csid);
        return 1;
    }
    if (csid < 64 + 256) {
        p[0] = (uint8_t)(fmt << 6);
        p[1] = (uint8_t)(csid - 64);
        return 2;
    }
    p[0] = (uint8_t)(fmt << 6 | 1);
    p[1] = (uint8_t)((csid - 64) & 0xFF);
    p[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

int weir_rtmp_write_message(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t csid,
                            uint8_t type, uint32_t stream_id, uint32_t timestamp,
                            const uint8_t *payload, size_t len)
{
    uint8_t h[3 + 11 + 4];
    size_t n, off, take, nchunks;
    bool ext = timestamp >= EXT_TS_FIELD;
    int ret;

    if (csid < WEIR_RTMP_CSID_MIN || csid > WEIR_RTMP_CSID_MAX || len > WEIR_RTMP_MAX_MESSAGE_LEN ||
        w->chunk_size == 0)
        return AVERROR(EINVAL);
    nchunks = len ? (len + w->chunk_size - 1) / w->chunk_size : 1;
    if ((ret = weir_rtmp_buf_reserve(out, sizeof h + len + (nchunks - 1) * 7)) < 0)
        return ret;

    n = put_basic(h, 0, csid);
    AV_WB24(h + n, ext ? EXT_TS_FIELD : timestamp);
    AV_WB24(h + n + 3, (uint32_t)len);
    h[n + 6] = type;
    AV_WL32(h + n + 7, stream_id);
    n += 11;
    if (ext) {
        AV_WB32(h + n, timestamp);
        n += 4;
    }
    weir_rtmp_buf_append(out, h, n);
    for (off = 0;;) {
        take = len - off < w->chunk_size ? len - off : w->chunk_size;
        weir_rtmp_buf_append(out, payload + off, take);
        off += take;
        if (off >= len)
            break;
        n = put_basic(h, 3, csid);
        if (ext) {
            AV_WB32(h + n, timestamp);
            n += 4;
        }
        weir_rtmp_buf_append(out, h, n);
    }
    return out->err;
}

static int write_control(weir_rtmp_writer *w, weir_rtmp_buf *out, uint8_t type,
                         const uint8_t *payload, size_t len)
{
    return weir_rtmp_write_message(w, out, WEIR_RTMP_CSID_CONTROL, type, 0, 0, payload, len);
}

static int write_control_u32(weir_rtmp_writer *w, weir_rtmp_buf *out, uint8_t type, uint32_t v)
{
    uint8_t p[4];

    AV_WB32(p, v);
    return write_control(w, out, type, p, sizeof p);
}

int weir_rtmp_write_set_chunk_size(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t size)
{
    int ret;

    if (size == 0 || size > WEIR_RTMP_MAX_CHUNK_SIZE)
        return AVERROR(EINVAL);
    if ((ret = write_control_u32(w, out, WEIR_RTMP_MSG_SET_CHUNK_SIZE, size)) < 0)
        return ret;
    w->chunk_size = size;
    return 0;
}

int weir_rtmp_write_abort(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t csid)
{
    return write_control_u32(w, out, WEIR_RTMP_MSG_ABORT, csid);
}

int weir_rtmp_write_ack(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t seq)
{
    return write_control_u32(w, out, WEIR_RTMP_MSG_ACK, seq);
}

int weir_rtmp_write_window_ack_size(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t size)
{
    return write_control_u32(w, out, WEIR_RTMP_MSG_WINDOW_ACK_SIZE, size);
}

int weir_rtmp_write_set_peer_bandwidth(weir_rtmp_writer *w, weir_rtmp_buf *out,
                                       uint32_t size, uint8_t limit_type)
{
    uint8_t p[5];

    if (limit_type > WEIR_RTMP_BW_DYNAMIC)
        return AVERROR(EINVAL);
    AV_WB32(p, size);
    p[4] = limit_type;
    return write_control(w, out, WEIR_RTMP_MSG_SET_PEER_BW, p, sizeof p);
}

int weir_rtmp_write_user_control(weir_rtmp_writer *w, weir_rtmp_buf *out,
                                 uint16_t event, uint32_t value)
{
    uint8_t p[6];

    AV_WB16(p, event);
    AV_WB32(p + 2, value);
    return write_control(w, out, WEIR_RTMP_MSG_USER_CONTROL, p, sizeof p);
}

/* ---- parsing control messages --------------------------------------------- */

int weir_rtmp_parse_u32(const weir_rtmp_msg *msg, uint32_t *value)
{
    if (msg->len < 4)
        return AVERROR_INVALIDDATA;
    *value = AV_RB32(msg->data);
    return 0;
}

int weir_rtmp_parse_peer_bandwidth(const weir_rtmp_msg *msg, uint32_t *size, uint8_t *limit_type)
{
    if (msg->len < 5)
        return AVERROR_INVALIDDATA;
    *size = AV_RB32(msg->data);
    *limit_type = msg->data[4];
    return 0;
}

int weir_rtmp_parse_user_control(const weir_rtmp_msg *msg, uint16_t *event,
                                 uint32_t *value, uint32_t *extra)
{
    if (msg->len < 2)
        return AVERROR_INVALIDDATA;
    *event = AV_RB16(msg->data);
    *value = 0;
    if (extra)
        *extra = 0;
    switch (*event) {
    case WEIR_RTMP_UC_SET_BUFFER_LENGTH:
        if (msg->len < 10)
            return AVERROR_INVALIDDATA;
        if (extra)
            *extra = AV_RB32(msg->data + 6);
        /* fall through */
    case WEIR_RTMP_UC_STREAM_BEGIN:
    case WEIR_RTMP_UC_STREAM_EOF:
    case WEIR_RTMP_UC_STREAM_DRY:
    case WEIR_RTMP_UC_STREAM_IS_RECORDED:
    case WEIR_RTMP_UC_PING_REQUEST:
    case WEIR_RTMP_UC_PING_RESPONSE:
        if (msg->len < 6)
            return AVERROR_INVALIDDATA;
        *value = AV_RB32(msg->data + 2);
        return 0;
    default:
        /* Other events (buffer empty/ready from Flash players) carry what
         * they like; the event type is all a server needs. */
        if (msg->len >= 6)
            *value = AV_RB32(msg->data + 2);
        return 0;
    }
}
