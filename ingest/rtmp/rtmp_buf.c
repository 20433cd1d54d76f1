/*
 * ingest/rtmp/rtmp_buf.c — see rtmp_buf.h.
 */
#include "ingest/rtmp/rtmp_buf.h"

#include <errno.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/mem.h>

void weir_rtmp_buf_reset(weir_rtmp_buf *b)
{
    b->len = 0;
    b->err = 0;
}

void weir_rtmp_buf_free(weir_rtmp_buf *b)
{
    av_freep(&b->data);
    b->len = b->cap = 0;
    b->err = 0;
}

int weir_rtmp_buf_reserve(weir_rtmp_buf *b, size_t n)
{
    size_t want, cap;
    uint8_t *p;

    if (b->err)
        return b->err;
    if (n <= b->cap - b->len)
        return 0;
    if (n > WEIR_RTMP_BUF_MAX - b->len)
        goto fail;
    want = b->len + n;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > WEIR_RTMP_BUF_MAX)
        cap = WEIR_RTMP_BUF_MAX;
    p = av_realloc(b->data, cap);
    if (!p)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->err = AVERROR(ENOMEM);
    return b->err;
}

int weir_rtmp_buf_append(weir_rtmp_buf *b, const void *p, size_t n)
{
    int ret = weir_rtmp_buf_reserve(b, n);

    if (ret < 0)
        return ret;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int weir_rtmp_buf_put_u8(weir_rtmp_buf *b, uint8_t v)
{
    return weir_rtmp_buf_append(b, &v, 1);
}

int weir_rtmp_buf_put_be16(weir_rtmp_buf *b, uint16_t v)
{
    uint8_t t[2];
    AV_WB16(t, v);
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_rtmp_buf_put_be24(weir_rtmp_buf *b, uint32_t v)
{
    uint8_t t[3];
    AV_WB24(t, v);
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_rtmp_buf_put_be32(weir_rtmp_buf *b, uint32_t v)
{
    uint8_t t[4];
    AV_WB32(t, v);
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_rtmp_buf_put_le32(weir_rtmp_buf *b, uint32_t v)
{
    uint8_t t[4];
    AV_WL32(t, v);
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_rtmp_rd_bytes(weir_rtmp_rd *r, size_t n, const uint8_t **p)
{
    if (weir_rtmp_rd_left(r) < n)
        return AVERROR_INVALIDDATA;
    *p = r->p;
    r->p += n;
    return 0;
}

int weir_rtmp_rd_u8(weir_rtmp_rd *r, uint8_t *v)
{
    const uint8_t *p;
    int ret = weir_rtmp_rd_bytes(r, 1, &p);
    if (ret == 0)
        *v = p[0];
    return ret;
}

int weir_rtmp_rd_be16(weir_rtmp_rd *r, uint16_t *v)
{
    const uint8_t *p;
    int ret = weir_rtmp_rd_bytes(r, 2, &p);
    if (ret == 0)
        *v = AV_RB16(p);
    return ret;
}

int weir_rtmp_rd_be24(weir_rtmp_rd *r, uint32_t *v)
{
    const uint8_t *p;
    int ret = weir_rtmp_rd_bytes(r, 3, &p);
    if (ret == 0)
        *v = AV_RB24(p);
    return ret;
}

int weir_rtmp_rd_be32(weir_rtmp_rd *r, uint32_t *v)
{
    const uint8_t *p;
    int ret = weir_rtmp_rd_bytes(r, 4, &p);
    if (ret == 0)
        *v = AV_RB32(p);
    return ret;
}

int weir_rtmp_rd_be64(weir_rtmp_rd *r, uint64_t *v)
{
    const uint8_t *p;
    int ret = weir_rtmp_rd_bytes(r, 8, &p);
    if (ret == 0)
        *v = AV_RB64(p);
    return ret;
}
