/*
 * ingest/rtmp/rtmp_buf.h — the growable output buffer the RTMP layers write
 * into, and a bounds-checked reader for the bytes they parse.
 *
 * weir_rtmp_buf: the caller owns it (usually one per connection, reused for
 * every write: weir_rtmp_buf_reset keeps the allocation).  Writers append;
 * an allocation failure is returned AND remembered in buf->err, so a reply
 * built from ten appends can be checked once at the end, like AVBPrint.
 * After an error every append is a no-op returning the same error.
 * The buffer grows only by what our own writers append, so it is bounded by
 * the messages the server chooses to send; WEIR_RTMP_BUF_MAX is a backstop.
 *
 * weir_rtmp_rd: a cursor over borrowed bytes.  Every read checks the bytes
 * left and fails with AVERROR_INVALIDDATA rather than reading past the end;
 * the parsers of network input use nothing else to touch their input.
 */
#ifndef WEIR_INGEST_RTMP_BUF_H
#define WEIR_INGEST_RTMP_BUF_H

#include <stddef.h>
#include <stdint.h>

#define WEIR_RTMP_BUF_MAX (64u << 20)   /* bytes; appends beyond fail with ENOMEM */

typedef struct weir_rtmp_buf {
    uint8_t *data;      /* owned; av_malloc'd; NULL until the first append */
    size_t len;         /* bytes written */
    size_t cap;         /* bytes allocated */
    int err;            /* 0, or the first append error (sticky) */
} weir_rtmp_buf;

#define WEIR_RTMP_BUF_INIT { NULL, 0, 0, 0 }

/* Empties the buffer and clears err; keeps the allocation. */
void weir_rtmp_buf_reset(weir_rtmp_buf *b);
/* Frees the allocation; b is left empty and reusable. */
void weir_rtmp_buf_free(weir_rtmp_buf *b);
/* Makes room for n more bytes.  0 or AVERROR(ENOMEM) (also stored in err). */
int weir_rtmp_buf_reserve(weir_rtmp_buf *b, size_t n);
/* Appends n bytes from p (copied).  0 or the sticky error. */
int weir_rtmp_buf_append(weir_rtmp_buf *b, const void *p, size_t n);
int weir_rtmp_buf_put_u8(weir_rtmp_buf *b, uint8_t v);
int weir_rtmp_buf_put_be16(weir_rtmp_buf *b, uint16_t v);
int weir_rtmp_buf_put_be24(weir_rtmp_buf *b, uint32_t v);
int weir_rtmp_buf_put_be32(weir_rtmp_buf *b, uint32_t v);
int weir_rtmp_buf_put_le32(weir_rtmp_buf *b, uint32_t v);

typedef struct weir_rtmp_rd {
    const uint8_t *p;   /* next byte (borrowed) */
    const uint8_t *end; /* one past the last byte */
} weir_rtmp_rd;

static inline weir_rtmp_rd weir_rtmp_rd_init(const uint8_t *p, size_t len)
{
    weir_rtmp_rd r = { p, p ? p + len : p };   /* (NULL, 0) is an empty input */
    return r;
}

static inline size_t weir_rtmp_rd_left(const weir_rtmp_rd *r) { return (size_t)(r->end - r->p); }

/* Each returns 0, or AVERROR_INVALIDDATA when fewer bytes are left than it
 * needs (the cursor then does not move). */
int weir_rtmp_rd_u8(weir_rtmp_rd *r, uint8_t *v);
int weir_rtmp_rd_be16(weir_rtmp_rd *r, uint16_t *v);
int weir_rtmp_rd_be24(weir_rtmp_rd *r, uint32_t *v);
int weir_rtmp_rd_be32(weir_rtmp_rd *r, uint32_t *v);
int weir_rtmp_rd_be64(weir_rtmp_rd *r, uint64_t *v);
/* *p (OUT) points at the n bytes inside the input, which the cursor skips. */
int weir_rtmp_rd_bytes(weir_rtmp_rd *r, size_t n, const uint8_t **p);

#endif
