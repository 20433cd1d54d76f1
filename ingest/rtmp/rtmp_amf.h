/*
 * ingest/rtmp/rtmp_amf.h — AMF0: decoding command and data messages into a
 * small tree, and encoding the replies a server sends.
 *
 * Decoding.  An RTMP command message (type 20) or data message (type 18) is
 * a sequence of AMF0 values: "connect", 1, {app: "live", ...}, ...
 * weir_amf_decode turns the whole body into a weir_amf_doc: the top-level
 * values in order, each a weir_amf_value node.  Objects and arrays hold
 * their children as a linked list, in wire order, duplicates kept.
 *
 * Why our own tagged tree and not jansson's json_t: AMF0 has distinctions
 * JSON lacks and that RTMP peers rely on — null vs undefined, object vs ECMA
 * array vs strict array, dates with a time zone, NaN and infinite numbers
 * (json_real refuses them), strings that are not valid UTF-8 or hold NULs
 * (json_string refuses them).  Mapping to json_t would lose those and make
 * decode -> encode lossy.  Our tree is also bounded by construction: every
 * node and string of one decode lives in one arena freed at once
 * (weir_amf_doc_free), whose size is capped by the limits below.
 *
 * Limits (weir_amf_limits; a 0 field takes the default):
 *   max_depth   32    nesting of objects/arrays (OBS's connect uses 2)
 *   max_values  8192  values in one decode, every level counted
 *   max_string  65536 bytes in one string, long string or property name
 * So one decode allocates at most about max_values nodes plus the length of
 * its input, whatever the input claims.
 *
 * Markers: number, boolean, string, object, null, undefined, ECMA array,
 * object end, strict array, date, long string are decoded.  Markers that
 * exist in AMF0 but that no live publisher sends — movieclip, reference,
 * unsupported, recordset, XML document, typed object, and 0x11, the switch
 * to AMF3 — fail with AVERROR_PATCHWELCOME ("valid, not supported"), so the
 * session can log them apart from garbage; an unknown marker or truncated
 * input fails with AVERROR_INVALIDDATA.
 *
 * Encoding.  Replies are small and fixed in shape, so they are written
 * straight into a weir_rtmp_buf with weir_amf_put_* and the builders at the
 * end (no tree needed).  weir_amf_put_value re-encodes a decoded tree;
 * decode(encode(tree)) equals tree.  Every put returns 0, AVERROR(ENOMEM)
 * or AVERROR(EINVAL) (a key or string too long for its length field),
 * which also sticks in buf->err (see rtmp_buf.h).
 *
 * Strings in the tree are NUL-terminated copies (in the arena); their len
 * fields count bytes without the terminator, as they may contain NULs.
 */
#ifndef WEIR_INGEST_RTMP_AMF_H
#define WEIR_INGEST_RTMP_AMF_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/rtmp/rtmp_buf.h"

#define WEIR_AMF_DEFAULT_MAX_DEPTH   32
#define WEIR_AMF_DEFAULT_MAX_VALUES  8192
#define WEIR_AMF_DEFAULT_MAX_STRING  65536

/* Types are the AMF0 markers of their wire form. */
typedef enum weir_amf_type {
    WEIR_AMF_NUMBER       = 0x00,
    WEIR_AMF_BOOLEAN      = 0x01,
    WEIR_AMF_STRING       = 0x02,
    WEIR_AMF_OBJECT       = 0x03,
    WEIR_AMF_NULL         = 0x05,
    WEIR_AMF_UNDEFINED    = 0x06,
    WEIR_AMF_ECMA_ARRAY   = 0x08,
    WEIR_AMF_STRICT_ARRAY = 0x0A,
    WEIR_AMF_DATE         = 0x0B,
    WEIR_AMF_LONG_STRING  = 0x0C,
} weir_amf_type;

#define WEIR_AMF_OBJECT_END  0x09   /* marker, never a value */
#define WEIR_AMF_AVMPLUS     0x11   /* switch to AMF3: rejected */

typedef struct weir_amf_value weir_amf_value;
struct weir_amf_value {
    weir_amf_type type;
    const char *key;            /* property name inside an OBJECT or ECMA_ARRAY, else NULL */
    uint32_t key_len;
    const weir_amf_value *next; /* next sibling (next top-level value, property or item) */
    union {
        double number;          /* NUMBER */
        int boolean;            /* BOOLEAN: 0 or 1 */
        struct {
            const char *ptr;    /* NUL-terminated */
            uint32_t len;
        } str;                  /* STRING, LONG_STRING */
        struct {
            const weir_amf_value *first;
            uint32_t count;     /* children actually present */
            uint32_t declared;  /* ECMA_ARRAY: its (advisory) count field; STRICT_ARRAY: == count */
        } list;                 /* OBJECT, ECMA_ARRAY, STRICT_ARRAY */
        struct {
            double ms;          /* milliseconds since 1970-01-01 UTC */
            int16_t tz;         /* reserved time-zone field, kept for round trips */
        } date;                 /* DATE */
    } u;
};

typedef struct weir_amf_limits {
    int max_depth;              /* 0 -> WEIR_AMF_DEFAULT_MAX_DEPTH */
    uint32_t max_values;        /* 0 -> WEIR_AMF_DEFAULT_MAX_VALUES */
    uint32_t max_string;        /* 0 -> WEIR_AMF_DEFAULT_MAX_STRING */
} weir_amf_limits;

typedef struct weir_amf_arena weir_amf_arena;

typedef struct weir_amf_doc {
    const weir_amf_value *first;    /* top-level values, linked by next */
    uint32_t count;
    weir_amf_arena *arena;          /* private: owns every node and string */
} weir_amf_doc;

/* Decodes all of data[0..len) as a sequence of AMF0 values into *doc (OUT).
 * data is borrowed for the call only: the tree copies what it keeps.
 * lim may be NULL (defaults).  On 0 the caller owns the doc and frees it
 * with weir_amf_doc_free; on error *doc is empty and needs no free (but
 * freeing it is harmless).  Errors: AVERROR_INVALIDDATA (truncated, unknown
 * marker, stray object end), AVERROR_PATCHWELCOME (unsupported AMF0 marker
 * or AMF3), AVERROR(E2BIG) (a limit), AVERROR(ENOMEM).  An empty input
 * decodes to an empty doc. */
int weir_amf_decode(const uint8_t *data, size_t len, const weir_amf_limits *lim,
                    weir_amf_doc *doc);

/* Frees everything the doc owns and empties it.  NULL or empty: no-op. */
void weir_amf_doc_free(weir_amf_doc *doc);

/* The i-th top-level value, or NULL. */
const weir_amf_value *weir_amf_doc_at(const weir_amf_doc *doc, uint32_t i);

/* Property `key` (exact, NUL-terminated) of an OBJECT or ECMA_ARRAY: the
 * first match, or NULL if absent or obj is not one of those (or NULL). */
const weir_amf_value *weir_amf_get(const weir_amf_value *obj, const char *key);
/* Its value if it is a STRING or LONG_STRING, else NULL.  Owned by the doc. */
const char *weir_amf_get_string(const weir_amf_value *obj, const char *key);
/* 0 and *out (OUT) if it is a NUMBER, else AVERROR(ENOENT). */
int weir_amf_get_number(const weir_amf_value *obj, const char *key, double *out);
/* String of a STRING/LONG_STRING value, else NULL. */
const char *weir_amf_string(const weir_amf_value *v);

/* Deep equality (types, keys, order, NaN equal to NaN).  For tests and the
 * fuzzer's round trip. */
int weir_amf_equal(const weir_amf_value *a, const weir_amf_value *b);

/* ---- commands ------------------------------------------------------------- */

/* The fixed head of a command message: name, transaction id, command
 * object, then the arguments.  All pointers borrow from the doc. */
typedef struct weir_amf_command {
    const char *name;               /* "connect", "createStream", "publish", ... */
    double txid;                    /* transaction id; 0 when absent */
    const weir_amf_value *object;   /* command object: an OBJECT, or NULL (null/absent) */
    const weir_amf_value *args;     /* first argument after the command object, linked by next; may be NULL */
} weir_amf_command;

/* Fills *cmd (OUT).  AVERROR_INVALIDDATA unless the first value is a string
 * and the second, when present, a number. */
int weir_amf_command_parse(const weir_amf_doc *doc, weir_amf_command *cmd);

/* What a publisher says about itself in `connect`.  Strings borrow from the
 * doc; absent ones are NULL. */
typedef struct weir_amf_connect {
    const char *app;                /* required: "live" in rtmp://host/live/key */
    const char *tc_url;             /* "rtmp://host:1935/live" */
    const char *flash_ver;          /* "FMLE/3.0 (compatible; FMSc/1.0)" from OBS */
    const char *swf_url;
    const char *type;               /* "nonprivate" */
    double object_encoding;         /* 0 (AMF0) unless given */
    const weir_amf_value *fourcc_list;  /* E-RTMP: STRICT_ARRAY of codec FourCCs, or NULL */
} weir_amf_connect;

/* From a parsed "connect" command.  AVERROR_INVALIDDATA when there is no
 * command object or no string `app`; AVERROR_PATCHWELCOME when the client
 * asks for AMF3 (objectEncoding 3). */
int weir_amf_connect_parse(const weir_amf_command *cmd, weir_amf_connect *out);

/* ---- encoding ------------------------------------------------------------ */

int weir_amf_put_number(weir_rtmp_buf *b, double v);
int weir_amf_put_bool(weir_rtmp_buf *b, int v);
/* STRING when len <= 65535, else LONG_STRING. */
int weir_amf_put_stringn(weir_rtmp_buf *b, const char *s, size_t len);
int weir_amf_put_string(weir_rtmp_buf *b, const char *s);
int weir_amf_put_null(weir_rtmp_buf *b);
int weir_amf_put_undefined(weir_rtmp_buf *b);
int weir_amf_put_date(weir_rtmp_buf *b, double ms, int16_t tz);
/* Object / ECMA array: begin, then (key, value) pairs, then end. */
int weir_amf_put_object_begin(weir_rtmp_buf *b);
int weir_amf_put_ecma_begin(weir_rtmp_buf *b, uint32_t count);
/* A property name (no marker); len must be <= 65535 (AVERROR(EINVAL)). */
int weir_amf_put_key(weir_rtmp_buf *b, const char *key);
int weir_amf_put_object_end(weir_rtmp_buf *b);
/* Strict array header; then exactly `count` values. */
int weir_amf_put_strict_array_begin(weir_rtmp_buf *b, uint32_t count);
/* Re-encodes a decoded value (and its children). */
int weir_amf_put_value(weir_rtmp_buf *b, const weir_amf_value *v);

/* ---- replies (command message bodies) ------------------------------------- */

/* Each appends one complete command message body to b.  String arguments
 * are borrowed, NUL-terminated and non-NULL unless marked otherwise.  0 or
 * the buffer's sticky error. */

typedef struct weir_amf_connect_reply {
    const char *fms_ver;            /* NULL -> "FMS/3,5,7,7009" */
    double capabilities;            /* 0 -> 31 */
    double object_encoding;         /* echo of the client's; normally 0 */
    const char *const *fourcc_list; /* E-RTMP: NULL-terminated FourCCs we accept, or NULL to omit */
} weir_amf_connect_reply;

/* "_result", txid, {fmsVer, capabilities[, fourCcList]},
 *   {level: "status", code: "NetConnection.Connect.Success",
 *    description: "Connection succeeded.", objectEncoding} */
int weir_amf_build_connect_result(weir_rtmp_buf *b, double txid, const weir_amf_connect_reply *r);

/* "_result", txid, null, <number>: the reply to createStream (stream id). */
int weir_amf_build_result_number(weir_rtmp_buf *b, double txid, double value);

/* "_result", txid, null, undefined: the reply to releaseStream, FCPublish,
 * FCUnpublish and other calls whose answer carries nothing. */
int weir_amf_build_result_empty(weir_rtmp_buf *b, double txid);

/* "_error", txid, null, {level: "error", code, description}. */
int weir_amf_build_error(weir_rtmp_buf *b, double txid, const char *code,
                         const char *description);

/* "onStatus", 0, null, {level, code, description}: e.g. level "status",
 * code "NetStream.Publish.Start".  details, when not NULL, adds a
 * `details` string (the stream name, as FMS does). */
int weir_amf_build_on_status(weir_rtmp_buf *b, const char *level, const char *code,
                             const char *description, const char *details);

/* "onFCPublish", 0, null, {code, description}: the answer Flash Media
 * Encoder (and OBS, which copies it) waits for after FCPublish. */
int weir_amf_build_on_fc_publish(weir_rtmp_buf *b, const char *code, const char *description);

/* "onBWDone", 0, null: tells a Flash-era client that bandwidth detection
 * is over, so it does not wait for it. */
int weir_amf_build_on_bw_done(weir_rtmp_buf *b);

#endif
