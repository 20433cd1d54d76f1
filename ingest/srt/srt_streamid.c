/*
 * ingest/srt/srt_streamid.c — see srt_streamid.h for the accepted forms.
 *
 * One pass over a bounded input: check the bytes, pick the form, then (for
 * "#!::") walk the comma-separated pairs and remember each known key once.
 * Nothing is allocated; every output lives in the caller's struct.
 */
#include "ingest/srt/srt_streamid.h"

#include <errno.h>
#include <string.h>

#include <libavutil/error.h>

#define AC_PREFIX "#!::"

typedef struct span {
    const char *p;
    size_t n;
    int set;
} span;

static int span_is(span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static int refuse(weir_srt_streamid *out, int err, const char *why)
{
    out->why = why;
    return err;
}

/* "<app>/<key>" into out->app and out->key. */
static int split_resource(span r, weir_srt_streamid *out)
{
    const char *slash = memchr(r.p, '/', r.n);
    size_t app_n;

    if (!slash)
        return refuse(out, AVERROR(EINVAL), "resource is not <app>/<key>");
    app_n = (size_t)(slash - r.p);
    if (app_n == 0)
        return refuse(out, AVERROR(EINVAL), "empty application");
    if (app_n + 1 == r.n)
        return refuse(out, AVERROR(EINVAL), "empty stream key");
    memcpy(out->app, r.p, app_n);
    out->app[app_n] = '\0';
    memcpy(out->key, slash + 1, r.n - app_n - 1);
    out->key[r.n - app_n - 1] = '\0';
    return 0;
}

/* A key=value pair of the access-control form.  Known keys are kept in
 * their span; a repeat is refused. */
static int take_pair(span item, span *r, span *m, span *u, span *s, span *t, span *h,
                     weir_srt_streamid *out)
{
    const char *eq = memchr(item.p, '=', item.n);
    span k, v;
    span *slot = NULL;

    if (!eq)
        return refuse(out, AVERROR(EINVAL), "item is not key=value");
    k = (span){ item.p, (size_t)(eq - item.p), 1 };
    v = (span){ eq + 1, item.n - k.n - 1, 1 };
    if (k.n == 0)
        return refuse(out, AVERROR(EINVAL), "empty key");
    if (span_is(k, "r"))      slot = r;
    else if (span_is(k, "m")) slot = m;
    else if (span_is(k, "u")) slot = u;
    else if (span_is(k, "s")) slot = s;
    else if (span_is(k, "t")) slot = t;
    else if (span_is(k, "h")) slot = h;
    else if (k.n == 1)
        return refuse(out, AVERROR(EINVAL), "reserved single-letter key");
    else
        return 0;           /* custom key (user_*, company_*): tolerated */
    if (slot->set)
        return refuse(out, AVERROR(EINVAL), "repeated key");
    *slot = v;
    return 0;
}

static int parse_access_control(const char *p, size_t n, weir_srt_streamid *out)
{
    span r = { 0 }, m = { 0 }, u = { 0 }, s = { 0 }, t = { 0 }, h = { 0 };
    size_t i = 0;
    int ret;

    while (i < n) {
        const char *comma = memchr(p + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - p) : n;
        if (end > i &&
            (ret = take_pair((span){ p + i, end - i, 1 }, &r, &m, &u, &s, &t, &h, out)) < 0)
            return ret;
        i = end + 1;
    }
    if (!r.set || r.n == 0)
        return refuse(out, AVERROR(EINVAL), "no resource (r=)");
    if (!m.set || span_is(m, "request"))
        out->mode = WEIR_SRT_MODE_REQUEST;
    else if (span_is(m, "publish"))
        out->mode = WEIR_SRT_MODE_PUBLISH;
    else if (span_is(m, "bidirectional"))
        out->mode = WEIR_SRT_MODE_BIDIRECTIONAL;
    else
        return refuse(out, AVERROR(EINVAL), "unknown mode (m=)");
    if (t.set && !span_is(t, "stream"))
        return refuse(out, AVERROR(EINVAL), "type (t=) is not stream");
    if (u.set) {
        memcpy(out->user, u.p, u.n);
        out->user[u.n] = '\0';
    }
    out->access_control = 1;
    return split_resource(r, out);
}

int weir_srt_streamid_parse(const char *sid, size_t len, weir_srt_streamid *out)
{
    memset(out, 0, sizeof *out);
    if (len > WEIR_SRT_STREAMID_MAX)
        return refuse(out, AVERROR(E2BIG), "stream id longer than 512 bytes");
    if (len == 0)
        return refuse(out, AVERROR(EINVAL), "empty stream id");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sid[i];
        if (c < 0x20 || c == 0x7f)
            return refuse(out, AVERROR(EINVAL), "control character in stream id");
    }
    if (len >= 2 && sid[0] == '#' && sid[1] == '!') {
        if (len < strlen(AC_PREFIX) || memcmp(sid, AC_PREFIX, strlen(AC_PREFIX)) != 0)
            return refuse(out, AVERROR(EINVAL), "only the #!:: access-control form is supported");
        return parse_access_control(sid + strlen(AC_PREFIX), len - strlen(AC_PREFIX), out);
    }
    out->mode = WEIR_SRT_MODE_PUBLISH;
    return split_resource((span){ sid, len, 1 }, out);
}

const char *weir_srt_mode_name(weir_srt_mode mode)
{
    static const char *const names[] = { "request", "publish", "bidirectional" };
    return (unsigned)mode < sizeof names / sizeof names[0] ? names[mode] : "?";
}
