/*
 * libFuzzer target: AMF0 decoding (ingest/rtmp/rtmp_amf), then re-encoding.
 *
 * Input: [limits] AMF0 bytes...  Byte 0 picks tight or default limits so
 * the depth/value/string limits get exercised too.
 *
 * Checks: a successful decode re-encodes; the encoding decodes again, to an
 * equal tree, and encodes to the very same bytes (decode . encode is the
 * identity on trees; encode . decode normalises, e.g. booleans to 0/1).
 * The command, connect and onMetaData helpers run over every tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/rtmp/rtmp_amf.h"
#include "ingest/rtmp/rtmp_flv.h"

static int encode(const weir_amf_doc *doc, weir_rtmp_buf *out)
{
    const weir_amf_value *v;

    for (v = doc->first; v; v = v->next)
        weir_amf_put_value(out, v);
    return out->err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_amf_limits tight = { .max_depth = 4, .max_values = 64, .max_string = 32 };
    const weir_amf_limits *lim;
    weir_amf_doc a, b;
    weir_rtmp_buf e1 = WEIR_RTMP_BUF_INIT, e2 = WEIR_RTMP_BUF_INIT;
    weir_amf_command cmd;
    weir_amf_connect conn;
    weir_flv_metadata md;
    const weir_amf_value *x, *y;

    if (size < 1)
        return 0;
    lim = data[0] & 1 ? &tight : NULL;
    if (weir_amf_decode(data + 1, size - 1, lim, &a) < 0)
        return 0;
    if (weir_amf_command_parse(&a, &cmd) == 0)
        weir_amf_connect_parse(&cmd, &conn);
    weir_flv_metadata_parse(&a, &md);

    if (encode(&a, &e1) < 0)
        abort();
    if (weir_amf_decode(e1.data, e1.len, lim, &b) < 0)
        abort();
    if (a.count != b.count)
        abort();
    for (x = a.first, y = b.first; x; x = x->next, y = y->next)
        if (!weir_amf_equal(x, y))
            abort();
    if (encode(&b, &e2) < 0 || e1.len != e2.len || (e1.len && memcmp(e1.data, e2.data, e1.len) != 0))
        abort();

    weir_amf_doc_free(&a);
    weir_amf_doc_free(&b);
    weir_rtmp_buf_free(&e1);
    weir_rtmp_buf_free(&e2);
    return 0;
}
