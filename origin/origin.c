/*
 * origin/origin.c — see origin.h.
 *
 *   request --> path check --> lookup --> 404 / 410
 *                                 |
 *                                 v
 *          If-None-Match / If-Modified-Since --> 304
 *          Range --> 206 (one range) / 416 / 200
 *          headers: Cache-Control by class, ETag, Last-Modified, CORS
 */
#include "origin/origin.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#define ORIGIN_PATH_MAX 512
#define IMMUTABLE       "public, max-age=31536000, immutable"

static const weir_conf_key origin_keys[] = {
    { "origin.cors_origins", WEIR_CONF_STRING, offsetof(weir_origin_settings, cors_origins),
      "*", 0, 0, NULL,
      "browser origins allowed to fetch media: \"*\" or a comma-separated list "
      "(Access-Control-Allow-Origin)", 0 },
    { "origin.master_max_age", WEIR_CONF_DURATION,
      offsetof(weir_origin_settings, master_max_age), "5s", 0, 3600000, NULL,
      "Cache-Control max-age of master playlists", 0 },
    { "origin.max_held", WEIR_CONF_INT, offsetof(weir_origin_settings, max_held),
      "10000", 0, 1000000, NULL,
      "LL-HLS requests held at once (blocking playlist reload, preload hints); more get 503", 0 },
    { "origin.vod_cache_size", WEIR_CONF_SIZE, offsetof(weir_origin_settings, vod_cache_size),
      "64MiB", 0, (int64_t)1 << 40, NULL,
      "VOD files kept in memory after a read (least recently used go first); a hit is "
      "answered without a disk read or a worker round trip; 0: read every request", 0 },
    { "origin.vod_cache_valid", WEIR_CONF_DURATION,
      offsetof(weir_origin_settings, vod_cache_valid), "10s", 0, 3600000, NULL,
      "how long a cached VOD file is served before it is read again (a recording "
      "replaced on disk shows after at most this)", 0 },
    { "origin.web_dir", WEIR_CONF_STRING, offsetof(weir_origin_settings, web_dir),
      "web", 0, 0, NULL,
      "folder of the dashboard served at / (scripts/setup installs its hls.js there)", 0 },
};

const weir_conf_table weir_origin_conf_table = {
    .module = "origin",
    .keys = origin_keys,
    .nkeys = sizeof origin_keys / sizeof origin_keys[0],
};

/* The dashboard's files: URL name -> path under web_dir. */
static const struct { const char *name, *path, *type; } web_files[] = {
    { "index.html", "index.html", "text/html; charset=utf-8" },
    { "app.js", "app.js", "text/javascript; charset=utf-8" },
    { "style.css", "style.css", "text/css; charset=utf-8" },
    { "hls.min.js", "node_modules/hls.js/dist/hls.min.js", "text/javascript; charset=utf-8" },
    { "tus.min.js", "node_modules/tus-js-client/dist/tus.min.js",
      "text/javascript; charset=utf-8" },
};
#define WEB_FILES (sizeof web_files / sizeof web_files[0])
#define WEB_FILE_MAX (8 << 20)

struct held;

/* A VOD file read into memory: answers on the loop until it expires (see
 * vod_cache_*).  Slots, not a list: VOD_CACHE_SLOTS is small enough that a
 * scan of the hashes costs less than a syscall. */
#define VOD_CACHE_SLOTS 512
typedef struct vod_entry {
    uint64_t hash;                  /* of path; 0: free slot */
    char *path;                     /* under vod_dir */
    int fd;                         /* the file it was read from, open */
    weir_object obj;
    int64_t read_us;                /* when it was read (expiry) */
    int64_t used_us;                /* last hit (eviction) */
} vod_entry;

struct weir_origin {
    weir_origin_opts opts;
    weir_object web[WEB_FILES];     /* body NULL: not found at start */
    struct held *held;              /* requests waiting for a part or playlist */
    size_t nheld;
    vod_entry vod[VOD_CACHE_SLOTS];
    size_t vod_bytes;               /* bodies held by vod[] */
};

/* ---- request checks ---------------------------------------------------- */

/* 1 if rel ("cam1/v0_12.m4s") is components of [A-Za-z0-9_.-], none empty
 * and none starting with '.', so no "..", no hidden files, no escapes. */
static int path_safe(const char *rel)
{
    int start = 1;

    if (!*rel || strlen(rel) >= ORIGIN_PATH_MAX)
        return 0;
    for (const char *p = rel; *p; p++) {
        char c = *p;
        if (c == '/') {
            if (start)
                return 0;       /* empty component */
            start = 1;
            continue;
        }
        if (start && c == '.')
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
        start = 0;
    }
    return !start;
}

int weir_origin_parse_range(const char *v, uint64_t size, uint64_t *start, uint64_t *len)
{
    uint64_t a = 0, b = 0;
    int have_a = 0, have_b = 0;

    if (strncmp(v, "bytes=", 6) != 0)
        return 1;
    v += 6;
    while (*v == ' ')
        v++;
    for (; *v >= '0' && *v <= '9'; v++, have_a = 1) {
        if (a > (UINT64_MAX - 9) / 10)
            return 1;
        a = a * 10 + (uint64_t)(*v - '0');
    }
    if (*v++ != '-')
        return 1;
    for (; *v >= '0' && *v <= '9'; v++, have_b = 1) {
        if (b > (UINT64_MAX - 9) / 10)
            return 1;
        b = b * 10 + (uint64_t)(*v - '0');
    }
    while (*v == ' ')
        v++;
    if (*v != '\0')
        return 1;               /* several ranges or junk: send it all */
    if (!have_a && !have_b)
        return 1;
    if (!have_a) {              /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return AVERROR(ERANGE);
        *len = b < size ? b : size;
        *start = size - *len;
        return 0;
    }
    if (have_b && b < a)
        return 1;               /* invalid: ignore (RFC 9110 14.1.1) */
    if (a >= size)
        return AVERROR(ERANGE);
    if (!have_b || b >= size)
        b = size - 1;
    *start = a;
    *len = b - a + 1;
    return 0;
}

/* ---- headers ------------------------------------------------------------ */

/* Last-Modified text.  Most answers in a second carry the same few dates
 * (a playlist's, its newest part's), so the last one formatted is kept:
 * gmtime + strftime cost more than the rest of a playlist answer's headers. */
static void http_date(int64_t unix_ms, char buf[40])
{
    static _Thread_local time_t last = -1;
    static _Thread_local char text[40];
    time_t secs = (time_t)(unix_ms / 1000);

    if (secs != last) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = secs;
    }
    memcpy(buf, text, sizeof text);
}

static int64_t parse_http_date(const char *s)
{
    struct tm tm = { 0 };
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}

/* The request headers the origin acts on, read once when the request
 * arrives (a held request is answered later, from these). */
typedef struct req_hdrs {
    char origin[256];
    char if_none_match[256];
    char if_modified_since[64];
    char range[96];
} req_hdrs;

static void read_hdrs(weir_http_req *req, req_hdrs *h)
{
    if (weir_http_req_header(req, "origin", h->origin, sizeof h->origin) < 0)
        h->origin[0] = '\0';
    if (weir_http_req_header(req, "if-none-match", h->if_none_match,
                             sizeof h->if_none_match) < 0)
        h->if_none_match[0] = '\0';
    if (weir_http_req_header(req, "if-modified-since", h->if_modified_since,
                             sizeof h->if_modified_since) < 0)
        h->if_modified_since[0] = '\0';
    if (weir_http_req_header(req, "range", h->range, sizeof h->range) < 0)
        h->range[0] = '\0';
}

/* Access-Control-Allow-Origin for this request, or NULL (not allowed). */
static const char *cors_allow(const weir_origin *o, const req_hdrs *h)
{
    const char *list = o->opts.settings->cors_origins;
    size_t n = strlen(h->origin);

    if (!list || !*list)
        return NULL;
    if (strcmp(list, "*") == 0)
        return "*";
    if (n == 0)
        return NULL;
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && memcmp(p, h->origin, len) == 0)
            return h->origin;
        p = comma ? comma + 1 : p + len;
    }
    return NULL;
}

static int add_cors(const weir_origin *o, weir_http_req *req, const req_hdrs *h)
{
    const char *allow = cors_allow(o, h);
    int r = 0;

    if (!allow)
        return 0;
    r = weir_http_add_header(req, "Access-Control-Allow-Origin", allow);
    /* Without it a cross-origin player's Resource Timing sees no sizes or
     * times, and dash.js then barely measures bandwidth for ABR. */
    if (r >= 0)
        r = weir_http_add_header(req, "Timing-Allow-Origin", allow);
    if (r >= 0 && strcmp(allow, "*") != 0)
        r = weir_http_add_header(req, "Vary", "Origin");
    if (r >= 0)
        r = weir_http_add_header(req, "Access-Control-Expose-Headers",
                                 "Content-Length, Content-Range, Date, ETag, Age");
    return r;
}

/* "public, max-age=N" without printf: this runs on every answer. */
static void max_age_text(char v[64], int64_t secs)
{
    static const char head[] = "public, max-age=";
    char digits[24];
    int n = 0;

    if (secs < 0)
        secs = 0;
    do
        digits[n++] = (char)('0' + secs % 10);
    while ((secs /= 10) > 0);
    memcpy(v, head, sizeof head - 1);
    for (int i = 0; i < n; i++)
        v[sizeof head - 1 + i] = digits[n - 1 - i];
    v[sizeof head - 1 + n] = '\0';
}

/* The ETag, "%016" PRIx64 in quotes, without printf. */
static void etag_text(char v[24], uint64_t etag)
{
    static const char hex[] = "0123456789abcdef";

    v[0] = '"';
    for (int i = 0; i < 16; i++)
        v[1 + i] = hex[(etag >> (60 - 4 * i)) & 0xf];
    v[17] = '"';
    v[18] = '\0';
}

static int add_caching(const weir_origin *o, weir_http_req *req, const weir_object *obj)
{
    char v[64], date[40];
    int r;

    switch (obj->cache) {
    case WEIR_CACHE_IMMUTABLE:
        r = weir_http_add_header(req, "Cache-Control", IMMUTABLE);
        break;
    case WEIR_CACHE_LIVE:
        max_age_text(v, obj->max_age_ms / 1000);
        r = weir_http_add_header(req, "Cache-Control", v);
        break;
    case WEIR_CACHE_MASTER:
        max_age_text(v, o->opts.settings->master_max_age / 1000);
        r = weir_http_add_header(req, "Cache-Control", v);
        break;
    default:
        r = weir_http_add_header(req, "Cache-Control", "public, max-age=86400");
        break;
    }
    if (r < 0)
        return r;
    etag_text(v, obj->etag);
    if ((r = weir_http_add_header(req, "ETag", v)) < 0)
        return r;
    http_date(obj->mtime_ms, date);
    return weir_http_add_header(req, "Last-Modified", date);
}

/* 1 when the client's copy is current (answer 304). */
static int not_modified(const req_hdrs *h, const weir_object *obj)
{
    char tag[24];
    int64_t since;

    etag_text(tag, obj->etag);
    if (h->if_none_match[0])
        return strcmp(h->if_none_match, "*") == 0 || strstr(h->if_none_match, tag) != NULL;
    if (h->if_modified_since[0] && (since = parse_http_date(h->if_modified_since)) >= 0)
        return obj->mtime_ms / 1000 <= since;
    return 0;
}

/* ---- answering ----------------------------------------------------------- */

static int serve_object(weir_origin *o, weir_http_req *req, const req_hdrs *h,
                        const weir_object *obj)
{
    uint64_t size = obj->body->size, start = 0, len = size;
    char range[96];
    int status = 200, r;

    if (obj->redirect) {
        /* Moved for good (an old live segment now in a recording): the
         * target is as immutable as the URL was. */
        char to[512];
        snprintf(to, sizeof to, "%.*s", (int)size, (const char *)obj->body->data);
        if ((r = add_cors(o, req, h)) < 0 || (r = add_caching(o, req, obj)) < 0 ||
            (r = weir_http_add_header(req, "Location", to)) < 0)
            return r;
        return weir_http_respond(req, 301, NULL, NULL, 0);
    }
    if ((r = add_cors(o, req, h)) < 0 || (r = add_caching(o, req, obj)) < 0 ||
        (r = weir_http_add_header(req, "Accept-Ranges", "bytes")) < 0)
        return r;
    if (not_modified(h, obj))
        return weir_http_respond(req, 304, NULL, NULL, 0);
    if (h->range[0]) {
        r = weir_origin_parse_range(h->range, size, &start, &len);
        if (r == AVERROR(ERANGE)) {
            snprintf(range, sizeof range, "bytes */%" PRIu64, size);
            weir_http_add_header(req, "Content-Range", range);
            return weir_http_respond(req, 416, NULL, NULL, 0);
        }
        if (r == 0) {
            status = 206;
            snprintf(range, sizeof range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start,
                     start + len - 1, size);
            if ((r = weir_http_add_header(req, "Content-Range", range)) < 0)
                return r;
        } else {
            start = 0;
            len = size;
        }
    }
    return weir_http_respond_buf(req, status, obj->content_type, obj->body, (size_t)start,
                                 (size_t)len);
}

static int respond_status(weir_origin *o, weir_http_req *req, const req_hdrs *h, int status,
                          const char *text)
{
    int r = add_cors(o, req, h);
    if (r < 0)
        return r;
    /* Errors are cacheable briefly at most: a segment may appear soon. */
    weir_http_add_header(req, "Cache-Control", status == 410 ? "public, max-age=60" : "no-cache");
    return weir_http_respond(req, status, "text/plain", text, strlen(text));
}

/* Answers a request with what a lookup returned (anything but EAGAIN). */
static int answer(weir_origin *o, weir_http_req *req, const req_hdrs *h, int r,
                  const weir_object *obj)
{
    switch (r) {
    case 0:
        return serve_object(o, req, h, obj);
    case AVERROR(ESTALE):
        return respond_status(o, req, h, 410, "gone: no longer in the live window\n");
    case AVERROR(EINVAL):
        return respond_status(o, req, h, 400, "_HLS_msn is too far ahead of the live edge\n");
    default:
        return respond_status(o, req, h, 404, "not found\n");
    }
}

/* ---- held requests (LL-HLS blocking reload, preload hints) --------------- */

typedef struct held {
    struct held *next, *prev;
    weir_origin *o;
    weir_http_deferred *d;
    char path[ORIGIN_PATH_MAX];
    weir_object_query q;
    req_hdrs h;
    weir_timer timer;
    /* A segment still being cut, streamed part by part (LL-DASH). */
    int stream;
    int begun;                      /* headers sent */
    int64_t next_part;
} held;

static void held_unlink(weir_origin *o, held *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        o->held = x->next;
    if (x->next)
        x->next->prev = x->prev;
    o->nheld--;
}

/* Answers a held request and frees it; its client may have gone. */
static void held_answer(held *x, int r, const weir_object *obj)
{
    weir_origin *o = x->o;
    weir_http_req *req;

    held_unlink(o, x);
    weir_timer_stop(&x->timer);
    if ((req = weir_http_resume(x->d))) {
        if (r == AVERROR(EAGAIN)) {
            /* RFC 8216bis 6.2.5.2: not there within the timeout. */
            weir_http_add_header(req, "Retry-After", "1");
            respond_status(o, req, &x->h, 503, "not produced in time\n");
        } else {
            answer(o, req, &x->h, r, obj);
        }
    }
    free(x);
}

/* A streamed segment is done (or its client gone): the last chunk, then
 * the handle and x are freed. */
static void stream_done(held *x)
{
    weir_http_req *req = weir_http_deferred_req(x->d);

    held_unlink(x->o, x);
    weir_timer_stop(&x->timer);
    if (req)
        weir_http_stream_end(req);
    weir_http_resume(x->d);         /* frees the handle; the stream finishes on its own */
    free(x);
}

/* Sends every part of x's segment that exists; ends the stream when the
 * segment is complete.  Returns 1 when x was answered or freed. */
static int stream_pump(held *x)
{
    weir_origin *o = x->o;
    weir_http_req *req = weir_http_deferred_req(x->d);
    char part_path[ORIGIN_PATH_MAX + 24];
    size_t base = strlen(x->path) - strlen(".m4s");

    if (!req) {                     /* the client went away */
        stream_done(x);
        return 1;
    }
    for (;;) {
        weir_object obj = { 0 };
        int r;
        snprintf(part_path, sizeof part_path, "%.*s.%lld.m4s", (int)base, x->path,
                 (long long)x->next_part);
        r = o->opts.live(o->opts.live_arg, part_path, NULL, &obj);
        if (r == AVERROR(EAGAIN))
            return 0;               /* the next part is still being cut */
        if (r < 0) {
            /* No such part: past the segment's last one (it is complete), or
             * the segment never came. */
            if (x->begun) {
                stream_done(x);
            } else {
                weir_object whole = { 0 };
                int w = o->opts.live(o->opts.live_arg, x->path, NULL, &whole);
                held_answer(x, w == AVERROR(EAGAIN) ? AVERROR(ENOENT) : w, &whole);
                weir_object_clear(&whole);
            }
            return 1;
        }
        if (!x->begun) {
            add_cors(o, req, &x->h);
            weir_http_add_header(req, "Cache-Control", "no-cache");
            if (weir_http_stream_begin(req, 200, obj.content_type) < 0) {
                weir_object_clear(&obj);
                held_answer(x, AVERROR(ENOMEM), NULL);
                return 1;
            }
            x->begun = 1;
        }
        r = weir_http_stream_write(req, obj.body);
        weir_object_clear(&obj);
        if (r < 0) {                /* a reader this far behind is dropped */
            stream_done(x);
            return 1;
        }
        x->next_part++;
        weir_timer_start(o->opts.loop, &x->timer, o->opts.hold_timeout_ms * 1000,
                         x->timer.fn);
    }
}

static void on_hold_timeout(weir_timer *t)
{
    held *x = (held *)((char *)t - offsetof(held, timer));
    if (x->begun)
        stream_done(x);
    else
        held_answer(x, AVERROR(EAGAIN), NULL);
}

void weir_origin_changed(void *arg, const char *name)
{
    weir_origin *o = arg;
    size_t len = strlen(name);
    held *x = o->held, *next;

    for (; x; x = next) {
        weir_object obj = { 0 };
        int r;
        next = x->next;
        if (strncmp(x->path, name, len) != 0 || x->path[len] != '/')
            continue;
        if (x->stream) {
            stream_pump(x);
            continue;
        }
        r = o->opts.live(o->opts.live_arg, x->path, &x->q, &obj);
        if (r == AVERROR(EAGAIN))
            continue;
        /* Answering may not free a neighbour: only x leaves the list. */
        held_answer(x, r, &obj);
        weir_object_clear(&obj);
    }
}

/* 1 if path names a whole media segment ("cam1/v0_12.m4s", not a part). */
static int is_segment(const char *path)
{
    const char *us = strrchr(path, '_'), *dot = strchr(us ? us : path, '.');
    return us && dot && strcmp(dot, ".m4s") == 0;
}

/* Holds req until the lookup can answer, or the timeout.  A segment still
 * being cut is streamed as its parts come (chunked). */
static int hold(weir_origin *o, weir_http_req *req, const req_hdrs *h, const char *path,
                const weir_object_query *q)
{
    held *x;

    if (o->nheld >= (size_t)o->opts.settings->max_held) {
        weir_log_warn("origin", "too many held requests; answering 503",
                      WL_UINT("held", o->nheld));
        weir_http_add_header(req, "Retry-After", "1");
        return respond_status(o, req, h, 503, "too many blocked requests\n");
    }
    if (!(x = calloc(1, sizeof *x)) || !(x->d = weir_http_defer(req))) {
        free(x);
        return respond_status(o, req, h, 503, "out of memory\n");
    }
    x->o = o;
    snprintf(x->path, sizeof x->path, "%s", path);
    x->q = *q;
    x->h = *h;
    x->next = o->held;
    if (o->held)
        o->held->prev = x;
    o->held = x;
    o->nheld++;
    weir_timer_start(o->opts.loop, &x->timer, o->opts.hold_timeout_ms * 1000, on_hold_timeout);
    if ((x->stream = is_segment(path)))
        stream_pump(x);
    return 0;
}

/* _HLS_msn=N&_HLS_part=M&_HLS_skip=YES|v2.  0, or -1 for a malformed one. */
static int parse_query(weir_http_req *req, weir_object_query *q)
{
    const char *names[2] = { "_HLS_msn", "_HLS_part" };
    int64_t *vals[2] = { &q->msn, &q->part };
    char v[32];

    *q = WEIR_OBJECT_QUERY_NONE;
    for (int i = 0; i < 2; i++) {
        char *end;
        if (weir_http_req_query(req, names[i], v, sizeof v) < 0)
            continue;
        if (v[0] < '0' || v[0] > '9')
            return -1;
        *vals[i] = strtoll(v, &end, 10);
        if (*end || *vals[i] < 0 || *vals[i] > ((int64_t)1 << 40))
            return -1;
    }
    if (q->part >= 0 && q->msn < 0)
        return -1;              /* _HLS_part without _HLS_msn: 400 */
    if (weir_http_req_query(req, "_HLS_skip", v, sizeof v) >= 0)
        q->skip = strcmp(v, "v2") == 0 ? 2 : strcmp(v, "YES") == 0 ? 1 : 0;
    return 0;
}

static int on_live(weir_http_req *req, void *arg)
{
    weir_origin *o = arg;
    const char *path = weir_http_req_path(req) + strlen("/live/");
    weir_object obj = { 0 };
    weir_object_query q;
    req_hdrs h;
    int r;

    read_hdrs(req, &h);
    if (strcmp(weir_http_req_method(req), "OPTIONS") == 0) {
        if ((r = add_cors(o, req, &h)) < 0)
            return r;
        weir_http_add_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
        weir_http_add_header(req, "Access-Control-Allow-Headers",
                             "Range, If-None-Match, If-Modified-Since");
        weir_http_add_header(req, "Access-Control-Max-Age", "86400");
        return weir_http_respond(req, 204, NULL, NULL, 0);
    }
    if (!path_safe(path))
        return respond_status(o, req, &h, 404, "not found\n");
    if (parse_query(req, &q) < 0)
        return respond_status(o, req, &h, 400, "malformed _HLS_msn / _HLS_part\n");
    r = o->opts.live(o->opts.live_arg, path, &q, &obj);
    if (r == AVERROR(EAGAIN))
        return hold(o, req, &h, path, &q);
    r = answer(o, req, &h, r, &obj);
    weir_object_clear(&obj);
    return r;
}

static int on_time(weir_http_req *req, void *arg)
{
    weir_origin *o = arg;
    char body[WEIR_ISO8601_LEN];
    req_hdrs h;
    int r;

    read_hdrs(req, &h);
    weir_clock_iso8601(weir_clock_unix_ms(), body);
    if ((r = add_cors(o, req, &h)) < 0 ||
        (r = weir_http_add_header(req, "Cache-Control", "no-cache, no-store")) < 0)
        return r;
    return weir_http_respond(req, 200, "text/plain", body, strlen(body));
}

/* ---- /vod/: recordings (and later uploads) on disk ------------------------ */

#define VOD_FILE_MAX ((size_t)512 << 20)

typedef struct vod_read {
    weir_origin *o;
    weir_http_deferred *d;
    req_hdrs h;
    char path[ORIGIN_PATH_MAX + 1024];
    weir_object obj;                /* filled by the worker */
    int err;                        /* AVERROR, set by the worker */
    int fd;                         /* the file, kept open for the cache; -1 */
} vod_read;

static const char *vod_type(const char *path, weir_cache_class *cache)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    *cache = WEIR_CACHE_IMMUTABLE;
    if (dot && strcmp(dot, ".m4s") == 0)
        return file[0] == 'a' ? "audio/mp4" : "video/iso.segment";
    if (dot && strcmp(dot, ".mp4") == 0)
        return "video/mp4";
    if (dot && strcmp(dot, ".ts") == 0)
        return "video/mp2t";            /* the ts/ variant (packager.hls_ts) */
    *cache = WEIR_CACHE_VOD;
    if (dot && strcmp(dot, ".m3u8") == 0)
        return "application/vnd.apple.mpegurl";
    if (dot && strcmp(dot, ".mpd") == 0)
        return "application/dash+xml";
    if (dot && strcmp(dot, ".jpg") == 0)
        return "image/jpeg";
    if (dot && strcmp(dot, ".vtt") == 0)
        return "text/vtt";
    return NULL;
}

/* Worker: the whole file into a buffer.  O_NOFOLLOW: a symlink planted in
 * the asset folder does not lead out of it. */
static void vod_read_run(void *arg)
{
    vod_read *v = arg;
    struct stat st;
    size_t off = 0;
    int fd = open(v->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        v->err = AVERROR(ENOENT);
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > VOD_FILE_MAX) {
        v->err = AVERROR(ENOENT);
        goto out;
    }
    if (!(v->obj.body = weir_buf_new((size_t)st.st_size))) {
        v->err = AVERROR(ENOMEM);
        goto out;
    }
    while (off < v->obj.body->size) {
        ssize_t n = read(fd, v->obj.body->data + off, v->obj.body->size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            v->err = AVERROR(EIO);
            goto out;
        }
        off += (size_t)n;
    }
    v->obj.mtime_ms = (int64_t)st.st_mtime * 1000;
    v->obj.etag = ((uint64_t)st.st_ino << 32) ^ ((uint64_t)st.st_mtime << 8) ^
                  (uint64_t)st.st_size;
    v->fd = fd;                     /* the cache watches it (vod_cache_get) */
    return;
out:
    close(fd);
}

/* ---- the VOD cache ----------------------------------------------------- */

static uint64_t path_hash(const char *p)
{
    uint64_t h = 1469598103934665603ull;        /* FNV-1a */
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

static void vod_drop(weir_origin *o, vod_entry *e)
{
    o->vod_bytes -= e->obj.body->size;
    weir_object_clear(&e->obj);
    close(e->fd);
    free(e->path);
    memset(e, 0, sizeof *e);
}

/* The cached object for path if it is still valid, or NULL. */
static const weir_object *vod_cache_get(weir_origin *o, const char *path)
{
    uint64_t h = path_hash(path);
    int64_t now = weir_clock_mono_us();
    struct stat st;

    for (size_t i = 0; i < VOD_CACHE_SLOTS; i++) {
        vod_entry *e = &o->vod[i];
        if (e->hash != h || strcmp(e->path, path) != 0)
            continue;
        /* Deleted (an asset's DELETE) or replaced by a rename: the inode we
         * read has no name left.  fstat on an open descriptor reads the
         * inode in memory, it does not wait for the disk. */
        if (fstat(e->fd, &st) < 0 || st.st_nlink == 0 ||
            now - e->read_us > o->opts.settings->vod_cache_valid * 1000) {
            vod_drop(o, e);         /* read again (or 404) */
            return NULL;
        }
        e->used_us = now;
        return &e->obj;
    }
    return NULL;
}

/* Keeps a new reference to a freshly read file, evicting the least recently
 * used entries to stay within origin.vod_cache_size. */
static void vod_cache_put(weir_origin *o, const char *path, int fd, const weir_object *obj)
{
    size_t size = obj->body->size, cap = (size_t)o->opts.settings->vod_cache_size;
    uint64_t h = path_hash(path);
    vod_entry *slot = NULL;

    if (size > cap / 4) {
        close(fd);
        return;                     /* one file must not flush everything else */
    }
    for (size_t i = 0; i < VOD_CACHE_SLOTS; i++)
        if (o->vod[i].hash == h && strcmp(o->vod[i].path, path) == 0)
            vod_drop(o, &o->vod[i]);    /* two reads raced: keep the newer */
    for (;;) {
        vod_entry *lru = NULL;
        slot = NULL;
        for (size_t i = 0; i < VOD_CACHE_SLOTS; i++) {
            vod_entry *e = &o->vod[i];
            if (!e->hash) {
                slot = slot ? slot : e;
                continue;
            }
            if (!lru || e->used_us < lru->used_us)
                lru = e;
        }
        if (slot && o->vod_bytes + size <= cap)
            break;
        if (!lru) {
            close(fd);
            return;
        }
        vod_drop(o, lru);
    }
    if (!(slot->path = strdup(path))) {
        close(fd);
        return;
    }
    slot->fd = fd;
    slot->hash = h;
    slot->obj = *obj;
    slot->obj.body = weir_buf_ref(obj->body);
    slot->read_us = slot->used_us = weir_clock_mono_us();
    o->vod_bytes += size;
}

/* Loop: answer the deferred request. */
static void vod_read_done(void *arg)
{
    vod_read *v = arg;
    weir_http_req *req = weir_http_resume(v->d);

    if (v->err == 0 && v->fd >= 0 && v->o->opts.settings->vod_cache_size > 0)
        vod_cache_put(v->o, v->path, v->fd, &v->obj);     /* takes the fd */
    else if (v->fd >= 0)
        close(v->fd);

    if (req) {
        if (v->err == AVERROR(ENOMEM))
            respond_status(v->o, req, &v->h, 503, "out of memory\n");
        else
            answer(v->o, req, &v->h, v->err, &v->obj);
    }
    weir_object_clear(&v->obj);
    free(v);
}

static int on_vod(weir_http_req *req, void *arg)
{
    weir_origin *o = arg;
    const char *rel = weir_http_req_path(req) + strlen("/vod/");
    const char *slash = strchr(rel, '/');
    weir_cache_class cache;
    const weir_object *hit;
    const char *type;
    vod_read *v;
    req_hdrs h;
    char path[sizeof v->path];

    read_hdrs(req, &h);
    /* "<asset>/<file>", or "<asset>/ts/<file>" (the MPEG-TS variant). */
    if (slash && strncmp(slash + 1, "ts/", 3) == 0)
        slash += 3;
    if (!o->opts.vod_dir || !path_safe(rel) || !slash || strchr(slash + 1, '/') ||
        !(type = vod_type(rel, &cache)))
        return respond_status(o, req, &h, 404, "not found\n");
    snprintf(path, sizeof path, "%s/%s", o->opts.vod_dir, rel);
    if ((hit = vod_cache_get(o, path)))
        return serve_object(o, req, &h, hit);
    if (!(v = calloc(1, sizeof *v)))
        return respond_status(o, req, &h, 503, "out of memory\n");
    v->o = o;
    v->h = h;
    v->fd = -1;
    memcpy(v->path, path, sizeof path);
    v->obj.content_type = type;
    v->obj.cache = cache;
    if (!(v->d = weir_http_defer(req))) {
        free(v);
        return respond_status(o, req, &h, 503, "out of memory\n");
    }
    if (weir_work_submit(o->opts.work, vod_read_run, vod_read_done, v) < 0) {
        /* Busy: tell the client to come back rather than read on the loop. */
        weir_http_req *r = weir_http_resume(v->d);
        free(v);
        weir_http_add_header(r, "Retry-After", "1");
        return respond_status(o, r, &h, 503, "busy\n");
    }
    return 0;
}

/* ---- the dashboard -------------------------------------------------------- */

static int serve_web(weir_origin *o, weir_http_req *req, const char *name)
{
    req_hdrs h;

    read_hdrs(req, &h);
    for (size_t i = 0; i < WEB_FILES; i++)
        if (strcmp(web_files[i].name, name) == 0 && o->web[i].body)
            return serve_object(o, req, &h, &o->web[i]);
    return respond_status(o, req, &h, 404, "not found\n");
}

static int on_index(weir_http_req *req, void *arg)
{
    return serve_web(arg, req, "index.html");
}

static int on_web(weir_http_req *req, void *arg)
{
    return serve_web(arg, req, weir_http_req_path(req) + strlen("/web/"));
}

/* Reads a small file into a new buffer; NULL (and errno) on failure. */
static weir_buf *read_file(const char *path, int64_t *mtime_ms)
{
    struct stat st;
    weir_buf *b = NULL;
    FILE *f = fopen(path, "rb");

    if (!f)
        return NULL;
    if (fstat(fileno(f), &st) < 0 || st.st_size > WEB_FILE_MAX) {
        errno = EFBIG;
        goto out;
    }
    if ((b = weir_buf_new((size_t)st.st_size)) &&
        fread(b->data, 1, b->size, f) != b->size) {
        weir_buf_unref(b);
        b = NULL;
        errno = EIO;
    }
    *mtime_ms = (int64_t)st.st_mtime * 1000;
out:
    fclose(f);
    return b;
}

/* At start, on the loop before it serves: the files are small and fixed. */
static void load_web(weir_origin *o)
{
    const char *dir = o->opts.settings->web_dir;
    char path[4096];

    for (size_t i = 0; dir && *dir && i < WEB_FILES; i++) {
        weir_object *obj = &o->web[i];
        snprintf(path, sizeof path, "%s/%s", dir, web_files[i].path);
        if (!(obj->body = read_file(path, &obj->mtime_ms))) {
            weir_log_warn("origin", "dashboard file missing; run scripts/setup",
                          WL_STR("path", path), WL_STR("err", strerror(errno)));
            continue;
        }
        obj->content_type = web_files[i].type;
        obj->cache = WEIR_CACHE_LIVE;       /* revalidated: ETag below */
        obj->max_age_ms = 0;
        obj->etag = ((uint64_t)obj->mtime_ms << 20) ^ obj->body->size;
    }
}

int weir_origin_new(const weir_origin_opts *opts, weir_origin **out)
{
    weir_origin *o = calloc(1, sizeof *o);
    int r;

    if (!o)
        return AVERROR(ENOMEM);
    o->opts = *opts;
    load_web(o);
    if ((r = weir_http_route(opts->http, "GET", "/", 0, on_index, o)) < 0 ||
        (r = weir_http_route(opts->http, "GET", "/web/", 1, on_web, o)) < 0 ||
        (r = weir_http_route(opts->http, "GET", "/live/", 1, on_live, o)) < 0 ||
        (r = weir_http_route(opts->http, "GET", "/vod/", 1, on_vod, o)) < 0 ||
        (r = weir_http_route(opts->http, "OPTIONS", "/vod/", 1, on_live, o)) < 0 ||
        (r = weir_http_route(opts->http, "OPTIONS", "/live/", 1, on_live, o)) < 0 ||
        (r = weir_http_route(opts->http, "GET", "/time", 0, on_time, o)) < 0) {
        weir_origin_free(o);
        return r;
    }
    *out = o;
    return 0;
}

void weir_origin_free(weir_origin *o)
{
    if (!o)
        return;
    /* After the loop: the connections are closed, the timers gone. */
    while (o->held) {
        held *x = o->held;
        o->held = x->next;
        weir_http_resume(x->d);     /* frees the handle; its client is gone */
        free(x);
    }
    for (size_t i = 0; i < WEB_FILES; i++)
        weir_object_clear(&o->web[i]);
    for (size_t i = 0; i < VOD_CACHE_SLOTS; i++)
        if (o->vod[i].hash)
            vod_drop(o, &o->vod[i]);
    free(o);
}
