/*
 * ingest/rtmp/rtmp_amf.c — AMF0 decode/encode.  The format, the tree and
 * the limits are described in rtmp_amf.h; this file adds how the limits are
 * kept.
 *
 * Decoding is recursive descent over a bounds-checked cursor
 * (weir_rtmp_rd).  Recursion depth is at most max_depth, so the stack stays
 * small whatever the input.  Every node and string is bump-allocated from
 * the doc's arena; a failed decode frees the arena, so no partial tree is
 * ever handed out.  Counts read from the wire (string lengths, strict array
 * sizes) are checked against the bytes actually left before anything is
 * allocated for them: a 4-byte "1e9 elements" claim costs nothing.
 */
#include "ingest/rtmp/rtmp_amf.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/mem.h>

/* ---- arena ----------------------------------------------------------------- */

#define ARENA_BLOCK 4096

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} arena_block;

struct weir_amf_arena {
    arena_block *head;
};

static void *arena_alloc(weir_amf_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    arena_block *b = a->head;
    void *p;

    n = (n + align - 1) & ~(align - 1);
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = av_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        /* A big one-off block goes behind the head so the head's free room
         * keeps serving small nodes. */
        if (a->head && cap > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(weir_amf_arena *a)
{
    arena_block *b, *next;

    if (!a)
        return;
    for (b = a->head; b; b = next) {
        next = b->next;
        av_free(b);
    }
    av_free(a);
}

/* ---- decoding --------------------------------------------------------------- */

typedef struct dec {
    weir_rtmp_rd rd;
    weir_amf_arena *arena;
    uint32_t values;        /* decoded so far */
    uint32_t max_values;
    uint32_t max_string;
    int max_depth;
} dec;

static int dec_value(dec *d, int depth, weir_amf_value **out);

static weir_amf_value *dec_node(dec *d, weir_amf_type type)
{
    weir_amf_value *v = arena_alloc(d->arena, sizeof *v);

    if (v) {
        memset(v, 0, sizeof *v);
        v->type = type;
    }
    return v;
}

/* Copies len bytes from the cursor into a NUL-terminated arena string. */
static int dec_bytes(dec *d, uint32_t len, const char **ptr)
{
    const uint8_t *src;
    char *s;
    int ret;

    if (len > d->max_string)
        return AVERROR(E2BIG);
    if ((ret = weir_rtmp_rd_bytes(&d->rd, len, &src)) < 0)
        return ret;
    if (!(s = arena_alloc(d->arena, (size_t)len + 1)))
        return AVERROR(ENOMEM);
    memcpy(s, src, len);
    s[len] = '\0';
    *ptr = s;
    return 0;
}

/* Properties of an OBJECT or ECMA_ARRAY up to and including the end marker. */
static int dec_props(dec *d, int depth, weir_amf_value *obj)
{
    weir_amf_value *last = NULL, *child;
    uint16_t klen;
    const char *key;
    int ret;

    for (;;) {
        if ((ret = weir_rtmp_rd_be16(&d->rd, &klen)) < 0)
            return ret;
        if (klen == 0 && weir_rtmp_rd_left(&d->rd) >= 1 && d->rd.p[0] == WEIR_AMF_OBJECT_END) {
            d->rd.p++;
            return 0;
        }
        if ((ret = dec_bytes(d, klen, &key)) < 0)
            return ret;
        if ((ret = dec_value(d, depth, &child)) < 0)
            return ret;
        child->key = key;
        child->key_len = klen;
        if (last)
            last->next = child;
        else
            obj->u.list.first = child;
        last = child;
        obj->u.list.count++;
    }
}

static int dec_strict_array(dec *d, int depth, weir_amf_value *arr)
{
    weir_amf_value *last = NULL, *child;
    uint32_t n, i;
    int ret;

    if ((ret = weir_rtmp_rd_be32(&d->rd, &n)) < 0)
        return ret;
    /* Every value takes at least its marker byte. */
    if (n > weir_rtmp_rd_left(&d->rd))
        return AVERROR_INVALIDDATA;
    if (n > d->max_values - d->values)
        return AVERROR(E2BIG);
    arr->u.list.declared = n;
    for (i = 0; i < n; i++) {
        if ((ret = dec_value(d, depth, &child)) < 0)
            return ret;
        if (last)
            last->next = child;
        else
            arr->u.list.first = child;
        last = child;
        arr->u.list.count++;
    }
    return 0;
}

static int dec_value(dec *d, int depth, weir_amf_value **out)
{
    weir_amf_value *v;
    uint8_t marker, b;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int ret;

    if ((ret = weir_rtmp_rd_u8(&d->rd, &marker)) < 0)
        return ret;
    switch (marker) {
    case WEIR_AMF_NUMBER: case WEIR_AMF_BOOLEAN: case WEIR_AMF_STRING:
    case WEIR_AMF_OBJECT: case WEIR_AMF_NULL: case WEIR_AMF_UNDEFINED:
    case WEIR_AMF_ECMA_ARRAY: case WEIR_AMF_STRICT_ARRAY: case WEIR_AMF_DATE:
    case WEIR_AMF_LONG_STRING:
        break;
    case 0x04:  /* movieclip (reserved) */
    case 0x07:  /* reference */
    case 0x0D:  /* unsupported */
    case 0x0E:  /* recordset (reserved) */
    case 0x0F:  /* XML document */
    case 0x10:  /* typed object */
    case WEIR_AMF_AVMPLUS:
        return AVERROR_PATCHWELCOME;
    default:    /* includes a stray object end (0x09) */
        return AVERROR_INVALIDDATA;
    }
    if (d->values >= d->max_values)
        return AVERROR(E2BIG);
    d->values++;
    if (!(v = dec_node(d, (weir_amf_type)marker)))
        return AVERROR(ENOMEM);

    switch (marker) {
    case WEIR_AMF_NUMBER:
        if ((ret = weir_rtmp_rd_be64(&d->rd, &u64)) < 0)
            return ret;
        v->u.number = av_int2double(u64);
        break;
    case WEIR_AMF_BOOLEAN:
        if ((ret = weir_rtmp_rd_u8(&d->rd, &b)) < 0)
            return ret;
        v->u.boolean = b != 0;
        break;
    case WEIR_AMF_STRING:
        if ((ret = weir_rtmp_rd_be16(&d->rd, &u16)) < 0 ||
            (ret = dec_bytes(d, u16, &v->u.str.ptr)) < 0)
            return ret;
        v->u.str.len = u16;
        break;
    case WEIR_AMF_LONG_STRING:
        if ((ret = weir_rtmp_rd_be32(&d->rd, &u32)) < 0)
            return ret;
        if (u32 > d->max_string)
            return AVERROR(E2BIG);
        if ((ret = dec_bytes(d, u32, &v->u.str.ptr)) < 0)
            return ret;
        v->u.str.len = u32;
        break;
    case WEIR_AMF_NULL:
    case WEIR_AMF_UNDEFINED:
        break;
    case WEIR_AMF_DATE:
        if ((ret = weir_rtmp_rd_be64(&d->rd, &u64)) < 0 ||
            (ret = weir_rtmp_rd_be16(&d->rd, &u16)) < 0)
            return ret;
        v->u.date.ms = av_int2double(u64);
        v->u.date.tz = (int16_t)u16;
        break;
    case WEIR_AMF_OBJECT:
    case WEIR_AMF_ECMA_ARRAY:
    case WEIR_AMF_STRICT_ARRAY:
        if (depth + 1 > d->max_depth)
            return AVERROR(E2BIG);
        if (marker == WEIR_AMF_OBJECT) {
            ret = dec_props(d, depth + 1, v);
        } else if (marker == WEIR_AMF_ECMA_ARRAY) {
            if ((ret = weir_rtmp_rd_be32(&d->rd, &v->u.list.declared)) < 0)
                return ret;
            ret = dec_props(d, depth + 1, v);
        } else {
            ret = dec_strict_array(d, depth + 1, v);
        }
        if (ret < 0)
            return ret;
        break;
    }
    *out = v;
    return 0;
}

int weir_amf_decode(const uint8_t *data, size_t len, const weir_amf_limits *lim,
                    weir_amf_doc *doc)
{
    dec d = { 0 };
    weir_amf_value *v, *last = NULL;
    int ret;

    memset(doc, 0, sizeof *doc);
    d.rd = weir_rtmp_rd_init(data, len);
    d.max_depth = lim && lim->max_depth > 0 ? lim->max_depth : WEIR_AMF_DEFAULT_MAX_DEPTH;
    d.max_values = lim && lim->max_values ? lim->max_values : WEIR_AMF_DEFAULT_MAX_VALUES;
    d.max_string = lim && lim->max_string ? lim->max_string : WEIR_AMF_DEFAULT_MAX_STRING;
    if (!(d.arena = av_mallocz(sizeof *d.arena)))
        return AVERROR(ENOMEM);

    while (weir_rtmp_rd_left(&d.rd) > 0) {
        if ((ret = dec_value(&d, 0, &v)) < 0)
            goto fail;
        if (last)
            last->next = v;
        else
            doc->first = v;
        last = v;
        doc->count++;
    }
    doc->arena = d.arena;
    return 0;
fail:
    arena_free(d.arena);
    memset(doc, 0, sizeof *doc);
    return ret;
}

void weir_amf_doc_free(weir_amf_doc *doc)
{
    if (!doc)
        return;
    arena_free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

const weir_amf_value *weir_amf_doc_at(const weir_amf_doc *doc, uint32_t i)
{
    const weir_amf_value *v = doc->first;

    while (v && i--)
        v = v->next;
    return v;
}

/* ---- lookups ------------------------------------------------------------------ */

const weir_amf_value *weir_amf_get(const weir_amf_value *obj, const char *key)
{
    const weir_amf_value *v;
    size_t klen = strlen(key);

    if (!obj || (obj->type != WEIR_AMF_OBJECT && obj->type != WEIR_AMF_ECMA_ARRAY))
        return NULL;
    for (v = obj->u.list.first; v; v = v->next)
        if (v->key_len == klen && memcmp(v->key, key, klen) == 0)
            return v;
    return NULL;
}

const char *weir_amf_string(const weir_amf_value *v)
{
    if (!v || (v->type != WEIR_AMF_STRING && v->type != WEIR_AMF_LONG_STRING))
        return NULL;
    return v->u.str.ptr;
}

const char *weir_amf_get_string(const weir_amf_value *obj, const char *key)
{
    return weir_amf_string(weir_amf_get(obj, key));
}

int weir_amf_get_number(const weir_amf_value *obj, const char *key, double *out)
{
    const weir_amf_value *v = weir_amf_get(obj, key);

    if (!v || v->type != WEIR_AMF_NUMBER)
        return AVERROR(ENOENT);
    *out = v->u.number;
    return 0;
}

static int num_equal(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

int weir_amf_equal(const weir_amf_value *a, const weir_amf_value *b)
{
    const weir_amf_value *x, *y;

    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->key_len != b->key_len ||
        (a->key_len && memcmp(a->key, b->key, a->key_len) != 0) || !a->key != !b->key)
        return 0;
    switch (a->type) {
    case WEIR_AMF_NUMBER:
        return num_equal(a->u.number, b->u.number);
    case WEIR_AMF_BOOLEAN:
        return a->u.boolean == b->u.boolean;
    case WEIR_AMF_STRING:
    case WEIR_AMF_LONG_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case WEIR_AMF_DATE:
        return num_equal(a->u.date.ms, b->u.date.ms) && a->u.date.tz == b->u.date.tz;
    case WEIR_AMF_OBJECT:
    case WEIR_AMF_ECMA_ARRAY:
    case WEIR_AMF_STRICT_ARRAY:
        if (a->u.list.count != b->u.list.count || a->u.list.declared != b->u.list.declared)
            return 0;
        for (x = a->u.list.first, y = b->u.list.first; x && y; x = x->next, y = y->next)
            if (!weir_amf_equal(x, y))
                return 0;
        return !x && !y;
    case WEIR_AMF_NULL:
    case WEIR_AMF_UNDEFINED:
        return 1;
    }
    return 0;
}

/* ---- commands ------------------------------------------------------------------ */

int weir_amf_command_parse(const weir_amf_doc *doc, weir_amf_command *cmd)
{
    const weir_amf_value *v = doc->first;

    memset(cmd, 0, sizeof *cmd);
    if (!v || !(cmd->name = weir_amf_string(v)))
        return AVERROR_INVALIDDATA;
    if (!(v = v->next))
        return 0;
    if (v->type != WEIR_AMF_NUMBER)
        return AVERROR_INVALIDDATA;
    cmd->txid = v->u.number;
    if (!(v = v->next))
        return 0;
    if (v->type == WEIR_AMF_OBJECT || v->type == WEIR_AMF_ECMA_ARRAY)
        cmd->object = v;
    cmd->args = v->next;
    return 0;
}

int weir_amf_connect_parse(const weir_amf_command *cmd, weir_amf_connect *out)
{
    const weir_amf_value *o = cmd->object, *l;

    memset(out, 0, sizeof *out);
    if (!o || !(out->app = weir_amf_get_string(o, "app")))
        return AVERROR_INVALIDDATA;
    out->tc_url = weir_amf_get_string(o, "tcUrl");
    out->flash_ver = weir_amf_get_string(o, "flashVer");
    out->swf_url = weir_amf_get_string(o, "swfUrl");
    out->type = weir_amf_get_string(o, "type");
    weir_amf_get_number(o, "objectEncoding", &out->object_encoding);
    l = weir_amf_get(o, "fourCcList");
    if (l && l->type == WEIR_AMF_STRICT_ARRAY)
        out->fourcc_list = l;
    if (out->object_encoding == 3)
        return AVERROR_PATCHWELCOME;
    return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

int weir_amf_put_number(weir_rtmp_buf *b, double v)
{
    uint8_t t[9];

    t[0] = WEIR_AMF_NUMBER;
    AV_WB64(t + 1, av_double2int(v));
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_amf_put_bool(weir_rtmp_buf *b, int v)
{
    uint8_t t[2] = { WEIR_AMF_BOOLEAN, v ? 1 : 0 };
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_amf_put_stringn(weir_rtmp_buf *b, const char *s, size_t len)
{
    if (len > UINT32_MAX) {
        b->err = b->err ? b->err : AVERROR(EINVAL);
        return b->err;
    }
    if (len <= UINT16_MAX) {
        weir_rtmp_buf_put_u8(b, WEIR_AMF_STRING);
        weir_rtmp_buf_put_be16(b, (uint16_t)len);
    } else {
        weir_rtmp_buf_put_u8(b, WEIR_AMF_LONG_STRING);
        weir_rtmp_buf_put_be32(b, (uint32_t)len);
    }
    return weir_rtmp_buf_append(b, s, len);
}

int weir_amf_put_string(weir_rtmp_buf *b, const char *s)
{
    return weir_amf_put_stringn(b, s, strlen(s));
}

int weir_amf_put_null(weir_rtmp_buf *b)
{
    return weir_rtmp_buf_put_u8(b, WEIR_AMF_NULL);
}

int weir_amf_put_undefined(weir_rtmp_buf *b)
{
    return weir_rtmp_buf_put_u8(b, WEIR_AMF_UNDEFINED);
}

int weir_amf_put_date(weir_rtmp_buf *b, double ms, int16_t tz)
{
    uint8_t t[11];

    t[0] = WEIR_AMF_DATE;
    AV_WB64(t + 1, av_double2int(ms));
    AV_WB16(t + 9, (uint16_t)tz);
    return weir_rtmp_buf_append(b, t, sizeof t);
}

int weir_amf_put_object_begin(weir_rtmp_buf *b)
{
    return weir_rtmp_buf_put_u8(b, WEIR_AMF_OBJECT);
}

int weir_amf_put_ecma_begin(weir_rtmp_buf *b, uint32_t count)
{
    weir_rtmp_buf_put_u8(b, WEIR_AMF_ECMA_ARRAY);
    return weir_rtmp_buf_put_be32(b, count);
}

static int put_keyn(weir_rtmp_buf *b, const char *key, size_t len)
{
    if (len > UINT16_MAX) {
        b->err = b->err ? b->err : AVERROR(EINVAL);
        return b->err;
    }
    weir_rtmp_buf_put_be16(b, (uint16_t)len);
    return weir_rtmp_buf_append(b, key, len);
}

int weir_amf_put_key(weir_rtmp_buf *b, const char *key)
{
    return put_keyn(b, key, strlen(key));
}

int weir_amf_put_object_end(weir_rtmp_buf *b)
{
    static const uint8_t end[3] = { 0, 0, WEIR_AMF_OBJECT_END };
    return weir_rtmp_buf_append(b, end, sizeof end);
}

int weir_amf_put_strict_array_begin(weir_rtmp_buf *b, uint32_t count)
{
    weir_rtmp_buf_put_u8(b, WEIR_AMF_STRICT_ARRAY);
    return weir_rtmp_buf_put_be32(b, count);
}

int weir_amf_put_value(weir_rtmp_buf *b, const weir_amf_value *v)
{
    const weir_amf_value *c;

    switch (v->type) {
    case WEIR_AMF_NUMBER:
        return weir_amf_put_number(b, v->u.number);
    case WEIR_AMF_BOOLEAN:
        return weir_amf_put_bool(b, v->u.boolean);
    case WEIR_AMF_STRING:
        /* The decoder never makes a STRING longer than its 16-bit field. */
        if (v->u.str.len > UINT16_MAX) {
            b->err = b->err ? b->err : AVERROR(EINVAL);
            return b->err;
        }
        weir_rtmp_buf_put_u8(b, WEIR_AMF_STRING);
        weir_rtmp_buf_put_be16(b, (uint16_t)v->u.str.len);
        return weir_rtmp_buf_append(b, v->u.str.ptr, v->u.str.len);
    case WEIR_AMF_LONG_STRING:
        weir_rtmp_buf_put_u8(b, WEIR_AMF_LONG_STRING);
        weir_rtmp_buf_put_be32(b, v->u.str.len);
        return weir_rtmp_buf_append(b, v->u.str.ptr, v->u.str.len);
    case WEIR_AMF_NULL:
        return weir_amf_put_null(b);
    case WEIR_AMF_UNDEFINED:
        return weir_amf_put_undefined(b);
    case WEIR_AMF_DATE:
        return weir_amf_put_date(b, v->u.date.ms, v->u.date.tz);
    case WEIR_AMF_OBJECT:
    case WEIR_AMF_ECMA_ARRAY:
        if (v->type == WEIR_AMF_OBJECT)
            weir_amf_put_object_begin(b);
        else
            weir_amf_put_ecma_begin(b, v->u.list.declared);
        for (c = v->u.list.first; c; c = c->next) {
            put_keyn(b, c->key ? c->key : "", c->key_len);
            weir_amf_put_value(b, c);
        }
        return weir_amf_put_object_end(b);
    case WEIR_AMF_STRICT_ARRAY:
        weir_amf_put_strict_array_begin(b, v->u.list.count);
        for (c = v->u.list.first; c; c = c->next)
            weir_amf_put_value(b, c);
        return b->err;
    }
    b->err = b->err ? b->err : AVERROR(EINVAL);
    return b->err;
}

/* ---- replies ------------------------------------------------------------------- */

static void put_prop_string(weir_rtmp_buf *b, const char *key, const char *val)
{
    weir_amf_put_key(b, key);
    weir_amf_put_string(b, val);
}

static void put_prop_number(weir_rtmp_buf *b, const char *key, double val)
{
    weir_amf_put_key(b, key);
    weir_amf_put_number(b, val);
}

/* name, txid, null */
static void put_head(weir_rtmp_buf *b, const char *name, double txid)
{
    weir_amf_put_string(b, name);
    weir_amf_put_number(b, txid);
    weir_amf_put_null(b);
}

int weir_amf_build_connect_result(weir_rtmp_buf *b, double txid, const weir_amf_connect_reply *r)
{
    const char *const *f;
    uint32_t n = 0;

    weir_amf_put_string(b, "_result");
    weir_amf_put_number(b, txid);

    weir_amf_put_object_begin(b);
    put_prop_string(b, "fmsVer", r->fms_ver ? r->fms_ver : "FMS/3,5,7,7009");
    put_prop_number(b, "capabilities", r->capabilities ? r->capabilities : 31);
    if (r->fourcc_list) {
        for (f = r->fourcc_list; *f; f++)
            n++;
        weir_amf_put_key(b, "fourCcList");
        weir_amf_put_strict_array_begin(b, n);
        for (f = r->fourcc_list; *f; f++)
            weir_amf_put_string(b, *f);
    }
    weir_amf_put_object_end(b);

    weir_amf_put_object_begin(b);
    put_prop_string(b, "level", "status");
    put_prop_string(b, "code", "NetConnection.Connect.Success");
    put_prop_string(b, "description", "Connection succeeded.");
    put_prop_number(b, "objectEncoding", r->object_encoding);
    return weir_amf_put_object_end(b);
}

int weir_amf_build_result_number(weir_rtmp_buf *b, double txid, double value)
{
    put_head(b, "_result", txid);
    return weir_amf_put_number(b, value);
}

int weir_amf_build_result_empty(weir_rtmp_buf *b, double txid)
{
    put_head(b, "_result", txid);
    return weir_amf_put_undefined(b);
}

int weir_amf_build_error(weir_rtmp_buf *b, double txid, const char *code,
                         const char *description)
{
    put_head(b, "_error", txid);
    weir_amf_put_object_begin(b);
    put_prop_string(b, "level", "error");
    put_prop_string(b, "code", code);
    put_prop_string(b, "description", description);
    return weir_amf_put_object_end(b);
}

int weir_amf_build_on_status(weir_rtmp_buf *b, const char *level, const char *code,
                             const char *description, const char *details)
{
    put_head(b, "onStatus", 0);
    weir_amf_put_object_begin(b);
    put_prop_string(b, "level", level);
    put_prop_string(b, "code", code);
    put_prop_string(b, "description", description);
    if (details)
        put_prop_string(b, "details", details);
    return weir_amf_put_object_end(b);
}

int weir_amf_build_on_fc_publish(weir_rtmp_buf *b, const char *code, const char *description)
{
    put_head(b, "onFCPublish", 0);
    weir_amf_put_object_begin(b);
    put_prop_string(b, "code", code);
    put_prop_string(b, "description", description);
    return weir_amf_put_object_end(b);
}

int weir_amf_build_on_bw_done(weir_rtmp_buf *b)
{
    put_head(b, "onBWDone", 0);
    return b->err;
}
