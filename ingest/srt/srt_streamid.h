/*
 * ingest/srt/srt_streamid.h — the SRT stream id, as publishers send it.
 *
 * Two forms are accepted (DESIGN.md §5):
 *
 *   #!::r=live/<key>,m=publish[,u=...][,s=...][,t=stream][,h=...]
 *       the access-control form (Haivision SRT, docs/features/access-control.md):
 *       comma-separated key=value pairs, in any order.  Per that spec `m`
 *       defaults to "request" (the caller wants to receive), so a publisher
 *       must say m=publish; the parser reports the mode and the server refuses
 *       anything but publish.  `t` defaults to "stream".  Custom keys
 *       (user_*, company_*) are tolerated and ignored; other single-letter
 *       keys are reserved by the spec and refused, as are repeated keys
 *       (r=live/a,r=live/b must not mean either).  The nested "#!:{...}"
 *       form is refused.
 *   live/<key>
 *       the plain form (OBS, srt-live-transmit users): always a publish.
 *
 * The resource splits at its first '/' into the application ("live") and
 * the stream key (the rest; it may itself contain '/').  The key is a
 * secret: callers must never log it (WL_SECRET).
 *
 * Input bounds: at most WEIR_SRT_STREAMID_MAX (512, libsrt's own limit)
 * bytes; no control characters (< 0x20, 0x7f) and no NUL anywhere.  Bytes
 * >= 0x80 (UTF-8, as the spec allows) pass through.
 */
#ifndef WEIR_INGEST_SRT_STREAMID_H
#define WEIR_INGEST_SRT_STREAMID_H

#include <stddef.h>

#define WEIR_SRT_STREAMID_MAX 512

typedef enum weir_srt_mode {
    WEIR_SRT_MODE_REQUEST = 0,      /* the spec's default: the caller wants to play */
    WEIR_SRT_MODE_PUBLISH,
    WEIR_SRT_MODE_BIDIRECTIONAL,
} weir_srt_mode;

typedef struct weir_srt_streamid {
    char app[WEIR_SRT_STREAMID_MAX + 1];    /* "live" */
    char key[WEIR_SRT_STREAMID_MAX + 1];    /* secret: never logged */
    char user[WEIR_SRT_STREAMID_MAX + 1];   /* u=, or "" */
    weir_srt_mode mode;
    int access_control;                     /* 1: the "#!::" form */
    const char *why;                        /* on failure: a static reason, safe to log */
} weir_srt_streamid;

/* Parses sid[0..len) (need not be NUL-terminated) into *out (OUT, fully
 * overwritten; out->why is set on failure).  Returns 0, AVERROR(E2BIG) past
 * WEIR_SRT_STREAMID_MAX bytes, or AVERROR(EINVAL) for anything malformed:
 * control characters, no resource, a resource without "<app>/<key>", an
 * empty app or key, an unknown m or t value, a reserved or repeated key, the
 * nested form.  A well-formed id with m=request parses (mode tells). */
int weir_srt_streamid_parse(const char *sid, size_t len, weir_srt_streamid *out);

/* "request", "publish", "bidirectional". */
const char *weir_srt_mode_name(weir_srt_mode mode);

#endif
