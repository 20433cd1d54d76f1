/*
 * control/uploads/uploads.c — the tus server: requests on the loop, the
 * database and the disk on the work pool.  States and invariants are in
 * uploads.h; this file adds how one request runs.
 *
 *   loop: tus_http — parse headers (400/412/413/415 at once), reserve the
 *         upload for a PATCH (invariant 2: a second gets 409), defer
 *   work: call_run — authorise (bearer token with write scope, or the
 *         single-use URL's token from ?token=), then create / look up /
 *         check the offset / delete
 *   loop: call_done — answer, or take the body (weir_http_body_stream) into
 *         an upload_writer
 *
 * A PATCH body (and a POST's, creation-with-upload) flows
 *
 *   sink data (loop) -> w->fill ─swap─> w->out -> write_run (work: pwrite,
 *   hash) -> write_done (loop) -> next ...   fill past BUFFER_MAX: pause the
 *   socket until a write finishes
 *   end or gone -> last write -> finalize_run (work: fsync, checksum, the
 *   new offset in the database) -> finalize_done (loop: answer 204)
 *
 * so the offset a client is told was fsync'd first.  A connection lost mid
 * body still keeps what arrived (without a checksum to hold it to): tus
 * clients ask HEAD and go on from there.
 *
 * At shutdown (weir_uploads_stop) nothing more goes to the work pool:
 * writes and finalizations still pending run on the loop thread itself,
 * which at that point serves no one.
 */
#include "control/uploads/uploads.h"
#include "control/assets/assets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <libavutil/error.h>

#define UPLOADS_PATH        "/api/v1/uploads"
#define UPLOADS_PREFIX      "/api/v1/uploads/"
#define OCTETS              "application/offset+octet-stream"
#define PROBLEM_TYPE        "application/problem+json"
#define PATH_MAX_U          2048
#define WRITE_CHUNK         (256 * 1024)    /* a write job, while the body flows */
#define BUFFER_MAX          (1024 * 1024)   /* filled but unwritten: pause past this */
#define SWEEP_MAX_MS        60000
#define POLL_MS             5000            /* processing threads look for work */

typedef struct upload_writer upload_writer;

struct weir_uploads {
    weir_uploads_opts o;
    weir_uploads_settings s;
    char dir[PATH_MAX_U];           /* <data_dir>/uploads */
    char vod[PATH_MAX_U];           /* <data_dir>/vod */
    char owner[24];                 /* this process, as a lease owner */
    int stopping;
    upload_writer *writers;         /* loop: uploads being written */
    weir_timer sweep;
    int sweeping;                   /* a sweep job in flight */

    pthread_mutex_t lock;           /* guards the three below */
    pthread_cond_t wake;
    int stop_runners, kicked;
    pthread_t *runners;
    int nrunners;
};

/* ---- small things ------------------------------------------------------------ */

static int64_t now_ms(void)
{
    return weir_clock_unix_ms();
}

static int valid_upload_id(const char *id)
{
    return strlen(id) == WEIR_UPLOAD_ID_LEN && weir_asset_id_valid(id);
}

static void part_path(const weir_uploads *u, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.part", u->dir, id);
}

static int new_id(char out[WEIR_UPLOAD_ID_LEN + 1])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[16];
    do {
        unsigned acc = 0;
        int bits = 0, n = 0;
        if (RAND_bytes(b, sizeof b) != 1)
            return AVERROR(EIO);
        for (size_t i = 0; i < sizeof b; i++) {
            acc = acc << 8 | b[i];
            bits += 8;
            while (bits >= 6) {
                bits -= 6;
                out[n++] = a[acc >> bits & 63];
            }
        }
        out[n++] = a[acc << (6 - bits) & 63];
        out[n] = '\0';
    } while (out[0] == '-' || out[0] == '_');   /* typed on command lines */
    return 0;
}

/* Free bytes on data_dir's file system, or -1. */
static int64_t disk_free(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) < 0)
        return -1;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
    if (fd < 0)
        return AVERROR(errno);
    if (fsync(fd) < 0)
        r = AVERROR(errno);
    close(fd);
    return r;
}

/* Work to the pool, or, when it cannot take it (shutting down, full), right
 * here: on the loop thread, which is only acceptable because it is rare
 * and, at shutdown, serves no one any more. */
static void submit(weir_uploads *u, void (*run)(void *), void (*done)(void *), void *arg)
{
    if (!u->stopping && weir_work_submit(u->o.work, run, done, arg) == 0)
        return;
    run(arg);
    done(arg);
}

static void kick_runners(weir_uploads *u)
{
    pthread_mutex_lock(&u->lock);
    u->kicked = 1;
    pthread_cond_broadcast(&u->wake);
    pthread_mutex_unlock(&u->lock);
}

/* ---- asset.json ------------------------------------------------------------ */

/* The asset object for an upload row in `state`; extra (may be NULL) is
 * merged in (probe facts, percent, reason...). */
static int asset_write(const weir_uploads *u, const weir_upload_row *row, const char *state,
                       json_t *extra)
{
    char created[WEIR_ISO8601_LEN];
    const char *name = row->name[0] ? row->name : row->filename[0] ? row->filename : row->id;
    json_t *o;
    int r;

    weir_clock_iso8601(row->created_at, created);
    o = json_pack("{ss ss ss ss ss ss sI sf}", "id", row->id, "state", state, "source", "upload",
                  "name", name, "filename", row->filename, "created", created,
                  "size", (json_int_t)row->length, "duration_s", 0.0);
    if (!o)
        return AVERROR(ENOMEM);
    if (extra)
        json_object_update(o, extra);
    r = weir_assets_write(u->vod, row->id, o);
    /* Every state change of an asset passes here: one event each. */
    if (r >= 0)
        weir_events_emit(u->o.events, strcmp(state, "uploading") == 0 ? "asset.created"
                                                                      : "asset.state", o);
    json_decref(o);
    if (r < 0)
        weir_log_error("uploads", "cannot write asset.json", WL_STR("upload", row->id), WL_ERR(r));
    return r;
}

/* ---- answers ----------------------------------------------------------------- */

static const char *status_title(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 460: return "Checksum Mismatch";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default:  return status >= 500 ? "Internal Server Error" : "Error";
    }
}

static void tus_headers(weir_http_req *req)
{
    weir_http_add_header(req, "tus-resumable", WEIR_TUS_VERSION);
    weir_http_add_header(req, "cache-control", "no-store");
}

/* RFC 9457 problem details, with the tus headers. */
static int problem(weir_http_req *req, int status, const char *detail)
{
    json_t *p = json_pack("{ss ss si ss}", "type", "about:blank", "title", status_title(status),
                          "status", status, "detail", detail);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    int r;

    json_decref(p);
    if (!text)
        return AVERROR(ENOMEM);
    tus_headers(req);
    if (status == 401)
        weir_http_add_header(req, "www-authenticate", "Bearer realm=\"weir\"");
    if (status == 412)
        weir_http_add_header(req, "tus-version", WEIR_TUS_VERSION);
    r = weir_http_respond(req, status, PROBLEM_TYPE, text, strlen(text));
    free(text);
    return r;
}

static void add_int_header(weir_http_req *req, const char *name, int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    weir_http_add_header(req, name, text);
}

static void add_expires(weir_http_req *req, int64_t unix_ms)
{
    char date[30];
    weir_tus_http_date(unix_ms, date);
    weir_http_add_header(req, "upload-expires", date);
}

static int answer_options(weir_http_req *req, const weir_uploads *u)
{
    tus_headers(req);
    weir_http_add_header(req, "tus-version", WEIR_TUS_VERSION);
    weir_http_add_header(req, "tus-extension", WEIR_TUS_EXTENSIONS);
    weir_http_add_header(req, "tus-checksum-algorithm", WEIR_TUS_CHECKSUMS);
    add_int_header(req, "tus-max-size", u->s.max_size);
    return weir_http_respond(req, 204, NULL, NULL, 0);
}

/* ---- requests ---------------------------------------------------------------- */

typedef enum call_kind { CALL_CREATE, CALL_HEAD, CALL_PATCH, CALL_DELETE } call_kind;

typedef struct tus_call {
    weir_uploads *u;
    weir_http_deferred *d;
    call_kind kind;
    upload_writer *slot;            /* PATCH: the reservation (invariant 2) */
    char bearer[128];               /* "" or the API token */
    char url_token[64];             /* "" or the single-use URL's token */
    /* what the request says */
    int64_t length;                 /* POST: Upload-Length */
    int64_t offset;                 /* PATCH: Upload-Offset */
    int64_t body;                   /* Content-Length */
    int has_checksum;
    weir_tus_checksum checksum;
    /* the worker's answer: status 0 means "take the body" */
    int status;
    const char *detail;
    char detail_buf[192];
    weir_upload_row row;            /* id on the way in; the row on the way out */
    int fd;                         /* the .part, open for writing, when status is 0 */
} tus_call;

static int call_fail(tus_call *c, int status, const char *detail)
{
    c->status = status;
    c->detail = detail;
    return -1;
}

/* The decoded metadata values the server keeps. */
static int meta_pick(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    weir_upload_row *row = arg;
    char *dst = NULL;

    if (klen == 4 && memcmp(key, "name", 4) == 0)
        dst = row->name;
    else if (klen == 8 && memcmp(key, "filename", 8) == 0)
        dst = row->filename;
    if (!dst)
        return 0;
    if (vlen > WEIR_UPLOAD_NAME_MAX || memchr(val, '\0', vlen))
        return AVERROR(EINVAL);
    for (size_t i = 0; i < vlen; i++)
        if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f)
            return AVERROR(EINVAL);
    memcpy(dst, val, vlen + 1);
    return 0;
}

static int utf8_valid(const char *s)
{
    json_t *j = json_string(s);         /* jansson refuses invalid UTF-8 */
    json_decref(j);
    return j != NULL;
}

static int authorize(tus_call *c)
{
    weir_uploads *u = c->u;
    weir_scope scope;
    int r;

    if (c->bearer[0]) {
        r = weir_tokens_verify(u->o.db, c->bearer, &scope);
        if (r == AVERROR(EACCES))
            return call_fail(c, 401, "the API token is unknown or revoked");
        if (r < 0)
            return call_fail(c, 503, "the database is busy; try again");
        if (scope < WEIR_SCOPE_WRITE)
            return call_fail(c, 403, "uploading needs a write or admin token");
        return 0;
    }
    if (c->kind == CALL_CREATE)
        return 0;                   /* the URL is spent with the row: store_create */
    {
        char bound[WEIR_UPLOAD_ID_LEN + 1];
        r = weir_upload_store_url_check(u->o.db, c->url_token, bound);
        if (r == AVERROR(EACCES))
            return call_fail(c, 401, "the upload URL is unknown");
        if (r < 0)
            return call_fail(c, 503, "the database is busy; try again");
        if (strcmp(bound, c->row.id) != 0)
            return call_fail(c, 403, "this upload URL belongs to another upload");
    }
    return 0;
}

/* Refuses a body that would take the disk below uploads.min_free. */
static int check_space(tus_call *c, int64_t bytes)
{
    int64_t avail = disk_free(c->u->dir);
    if (avail >= 0 && avail - bytes < c->u->s.min_free) {
        weir_log_warn("uploads", "refused: disk nearly full", WL_INT("free", avail),
                      WL_INT("bytes", bytes), WL_INT("min_free", c->u->s.min_free));
        return call_fail(c, 507, "not enough disk space for this upload; try again later");
    }
    return 0;
}

static void run_create(tus_call *c)
{
    weir_uploads *u = c->u;
    weir_upload_row *row = &c->row;
    char path[PATH_MAX_U + 64];
    int64_t now = now_ms();
    int r, fd;

    if (check_space(c, row->length) < 0)
        return;
    if (new_id(row->id) < 0) {
        call_fail(c, 500, "internal error; see the server log");
        return;
    }
    row->expires_at = now + u->s.expiry;
    r = weir_upload_store_create(u->o.db, row, c->url_token[0] ? c->url_token : NULL, now);
    if (r == AVERROR(EACCES)) {
        call_fail(c, 401, "the upload URL is unknown or has expired");
        return;
    }
    if (r == AVERROR(EEXIST)) {
        call_fail(c, 403, "this upload URL was already used");
        return;
    }
    if (r < 0) {
        weir_log_error("uploads", "cannot create an upload", WL_ERR(r));
        call_fail(c, 503, "the database is busy; try again");
        return;
    }
    part_path(u, row->id, path, sizeof path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || fsync(fd) < 0 || fsync_dir(u->dir) < 0 ||
        asset_write(u, row, "uploading", NULL) < 0) {
        weir_log_error("uploads", "cannot create the upload's file", WL_STR("path", path),
                       WL_STR("err", strerror(errno)));
        if (fd >= 0)
            close(fd);
        unlink(path);
        weir_upload_store_delete(u->o.db, row->id, now);
        weir_assets_delete(u->vod, row->id);
        call_fail(c, 500, "cannot create the upload's file; see the server log");
        return;
    }
    weir_log_info("uploads", "upload created", WL_STR("upload", row->id),
                  WL_INT("length", row->length), WL_STR("name", row->name),
                  WL_BOOL("single_use_url", c->url_token[0]));
    if (c->body > 0) {
        c->fd = fd;                 /* creation-with-upload: the body follows */
        return;
    }
    close(fd);
    c->status = 201;
}

/* The row for HEAD/PATCH, or a status: 404 unknown or deleted, 410 expired. */
static int load_row(tus_call *c)
{
    int r = weir_upload_store_get(c->u->o.db, c->row.id, &c->row);
    if (r == AVERROR(ENOENT) || (r == 0 && strcmp(c->row.state, "deleted") == 0))
        return call_fail(c, 404, "no such upload");
    if (r < 0)
        return call_fail(c, 503, "the database is busy; try again");
    if (strcmp(c->row.state, "expired") == 0)
        return call_fail(c, 410, "the upload expired: nothing was sent to it for too long");
    return 0;
}

static void run_patch(tus_call *c)
{
    char path[PATH_MAX_U + 64];

    if (load_row(c) < 0)
        return;
    if (c->offset != c->row.received) {
        snprintf(c->detail_buf, sizeof c->detail_buf, "Upload-Offset is %" PRId64
                 " but the upload has %" PRId64 " bytes; ask HEAD and go on from there",
                 c->offset, c->row.received);
        call_fail(c, 409, c->detail_buf);
        return;
    }
    if (c->body > c->row.length - c->offset) {
        call_fail(c, 413, "the chunk goes past Upload-Length");
        return;
    }
    if (c->body == 0 || strcmp(c->row.state, "uploading") != 0) {
        c->status = 204;            /* nothing to write: the offset stands */
        return;
    }
    if (check_space(c, c->body) < 0)
        return;
    part_path(c->u, c->row.id, path, sizeof path);
    if ((c->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        weir_log_error("uploads", "cannot open the upload's file", WL_STR("path", path),
                       WL_STR("err", strerror(errno)));
        call_fail(c, 500, "cannot open the upload's file; see the server log");
    }
}

/* asset.deleted: tus termination removes the asset too. */
static void emit_deleted(const weir_uploads *u, const char *id)
{
    json_t *o = json_pack("{ss}", "id", id);
    weir_events_emit(u->o.events, "asset.deleted", o);
    json_decref(o);
}

static void run_delete(tus_call *c)
{
    char path[PATH_MAX_U + 64];
    int r = weir_upload_store_delete(c->u->o.db, c->row.id, now_ms());

    if (r == AVERROR(ENOENT)) {
        call_fail(c, 404, "no such upload");
        return;
    }
    if (r == AVERROR(EBUSY)) {
        call_fail(c, 409, "the upload's file is being processed; delete the asset afterwards");
        return;
    }
    if (r < 0) {
        call_fail(c, 503, "the database is busy; try again");
        return;
    }
    part_path(c->u, c->row.id, path, sizeof path);
    unlink(path);
    weir_assets_delete(c->u->vod, c->row.id);
    emit_deleted(c->u, c->row.id);
    weir_log_info("uploads", "upload deleted", WL_STR("upload", c->row.id));
    c->status = 204;
}

static void call_run(void *arg)         /* work */
{
    tus_call *c = arg;

    if (authorize(c) < 0)
        return;
    switch (c->kind) {
    case CALL_CREATE: run_create(c); break;
    case CALL_HEAD:   if (load_row(c) == 0) c->status = 200; break;
    case CALL_PATCH:  run_patch(c); break;
    case CALL_DELETE: run_delete(c); break;
    }
}

/* ---- writing a body ------------------------------------------------------------ */

struct upload_writer {
    upload_writer *next;            /* u->writers */
    weir_uploads *u;
    char id[WEIR_UPLOAD_ID_LEN + 1];
    weir_http_req *req;             /* while the body is streaming */
    weir_http_deferred *d;          /* after end, until the answer */
    int fd;
    int64_t start, length, expected;
    int64_t accepted;               /* body bytes taken from the sink */
    int64_t written;                /* body bytes in the file */
    unsigned char *fill;            /* loop: being filled */
    size_t fill_len, fill_cap;
    unsigned char *out;             /* the write job's */
    size_t out_len, out_cap;
    int in_flight, paused, ended, gone, finalizing;
    int err;                        /* errno of a failed write */
    EVP_MD_CTX *md;                 /* with Upload-Checksum */
    weir_tus_checksum want;
    int created;                    /* creation-with-upload: answer 201 */
    char location[160];
    /* finalize's answer */
    int status;
    const char *detail;
    int64_t offset, expires_at;
    int queued;
};

static void writer_unlink(upload_writer *w)
{
    for (upload_writer **p = &w->u->writers; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

static upload_writer *writer_find(weir_uploads *u, const char *id)
{
    for (upload_writer *w = u->writers; w; w = w->next)
        if (strcmp(w->id, id) == 0)
            return w;
    return NULL;
}

static void writer_free(upload_writer *w)
{
    writer_unlink(w);
    if (w->fd >= 0)
        close(w->fd);
    EVP_MD_CTX_free(w->md);
    free(w->fill);
    free(w->out);
    free(w);
}

static void write_run(void *arg)        /* work */
{
    upload_writer *w = arg;
    size_t off = 0;

    while (off < w->out_len) {
        ssize_t n = pwrite(w->fd, w->out + off, w->out_len - off,
                           (off_t)(w->start + w->written + (int64_t)off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EIO;
            break;
        }
        off += (size_t)n;
    }
    if (!w->err && w->md && !EVP_DigestUpdate(w->md, w->out, w->out_len))
        w->err = EIO;
    if (!w->err)
        w->written += (int64_t)w->out_len;
    w->out_len = 0;
}

static void flush_or_finish(upload_writer *w);

static void write_done(void *arg)       /* loop */
{
    upload_writer *w = arg;

    w->in_flight = 0;
    if (w->err && w->req) {
        /* Tell the client now; what was written before the error stays. */
        weir_log_error("uploads", "write failed", WL_STR("upload", w->id),
                       WL_STR("err", strerror(w->err)));
        problem(w->req, w->err == ENOSPC ? 507 : 500,
                w->err == ENOSPC ? "the disk is full; try again later"
                                 : "cannot write the upload's file; see the server log");
        w->req = NULL;              /* answered: the sink hears no more */
    }
    flush_or_finish(w);
}

static void start_write(upload_writer *w)
{
    unsigned char *t = w->out;
    size_t cap = w->out_cap;

    w->out = w->fill;
    w->out_cap = w->fill_cap;
    w->out_len = w->fill_len;
    w->fill = t;
    w->fill_cap = cap;
    w->fill_len = 0;
    w->in_flight = 1;
    submit(w->u, write_run, write_done, w);
}

static void finalize_run(void *arg);
static void finalize_done(void *arg);

/* After a write, or when the body ended or the client left: the next write,
 * the socket resumed, or the end. */
static void flush_or_finish(upload_writer *w)
{
    int done_receiving;

    if (w->in_flight || w->finalizing)
        return;                     /* the job owns err, written, out */
    done_receiving = w->ended || w->gone || w->err || !w->req;
    if (!w->err && w->fill_len && (w->fill_len >= WRITE_CHUNK || done_receiving)) {
        start_write(w);
        return;
    }
    if (w->paused && w->req && w->fill_len < BUFFER_MAX) {
        w->paused = 0;
        weir_http_body_resume(w->req);
    }
    if (done_receiving) {
        w->finalizing = 1;
        submit(w->u, finalize_run, finalize_done, w);
    }
}

static int sink_data(void *arg, const void *p, size_t len)
{
    upload_writer *w = arg;

    if (w->fill_len + len > w->fill_cap) {
        size_t cap = w->fill_cap ? w->fill_cap : WRITE_CHUNK;
        unsigned char *grown;
        while (cap < w->fill_len + len)
            cap *= 2;
        if (!(grown = realloc(w->fill, cap)))
            return AVERROR(ENOMEM);
        w->fill = grown;
        w->fill_cap = cap;
    }
    memcpy(w->fill + w->fill_len, p, len);
    w->fill_len += len;
    w->accepted += (int64_t)len;
    if (w->fill_len >= BUFFER_MAX && !w->paused) {
        w->paused = 1;
        weir_http_body_pause(w->req);
    }
    flush_or_finish(w);
    return 0;
}

static void sink_end(void *arg, weir_http_req *req)
{
    upload_writer *w = arg;

    w->req = NULL;
    w->ended = 1;
    if (!(w->d = weir_http_defer(req))) {
        problem(req, 503, "server busy; try again");
        w->gone = 1;                /* finalize without an answer */
    }
    flush_or_finish(w);
}

static void sink_gone(void *arg)
{
    upload_writer *w = arg;

    w->req = NULL;
    w->gone = 1;
    flush_or_finish(w);
}

static const weir_http_body_sink writer_sink = { sink_data, sink_end, sink_gone };

static void finalize_run(void *arg)     /* work */
{
    upload_writer *w = arg;
    weir_uploads *u = w->u;
    int complete = w->accepted == w->expected && !w->err;
    int64_t to = w->start + w->written, now = now_ms();
    int r;

    w->status = w->created ? 201 : 204;
    if (w->written && fsync(w->fd) < 0) {
        weir_log_error("uploads", "fsync failed", WL_STR("upload", w->id),
                       WL_STR("err", strerror(errno)));
        w->status = 500;
        w->detail = "cannot write the upload's file; see the server log";
        to = w->start;
    } else if (w->md) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        /* A chunk cut short cannot be checked against its checksum. */
        if (!complete || !EVP_DigestFinal_ex(w->md, digest, &dlen) || dlen != w->want.len ||
            memcmp(digest, w->want.digest, dlen) != 0) {
            if (complete) {
                w->status = 460;
                w->detail = "Upload-Checksum does not match the chunk; it was discarded";
            }
            to = w->start;
        }
    }
    if (w->err && w->status < 400) {
        w->status = w->err == ENOSPC ? 507 : 500;
        w->detail = w->err == ENOSPC ? "the disk is full; try again later"
                                     : "cannot write the upload's file; see the server log";
    }
    w->expires_at = now + u->s.expiry;
    w->offset = w->start;
    if (to > w->start) {
        r = weir_upload_store_advance(u->o.db, w->id, w->start, to, now, w->expires_at,
                                      &w->queued);
        if (r == 0) {
            w->offset = to;
        } else if (w->status < 400) {
            w->status = r == AVERROR(ENOENT) ? 404 : 503;
            w->detail = r == AVERROR(ENOENT) ? "the upload was deleted or expired meanwhile"
                                             : "the database is busy; try again";
        }
    }
    if (w->queued) {
        weir_upload_row row;
        if (weir_upload_store_get(u->o.db, w->id, &row) == 0)
            asset_write(u, &row, "queued", NULL);
        weir_log_info("uploads", "upload complete", WL_STR("upload", w->id),
                      WL_INT("bytes", to));
    }
    close(w->fd);
    w->fd = -1;
}

/* upload.progress: an acknowledged offset (loop). */
static void emit_progress(const upload_writer *w)
{
    json_t *o = json_pack("{ss sI sI}", "id", w->id, "offset", (json_int_t)w->offset,
                          "length", (json_int_t)w->length);
    if (o)
        weir_events_emit(w->u->o.events, "upload.progress", o);
    json_decref(o);
}

static void finalize_done(void *arg)    /* loop */
{
    upload_writer *w = arg;
    weir_http_req *req = w->d ? weir_http_resume(w->d) : NULL;

    w->d = NULL;
    if (w->queued)
        kick_runners(w->u);
    if (req) {
        if (w->status >= 400) {
            problem(req, w->status, w->detail);
        } else {
            tus_headers(req);
            add_int_header(req, "upload-offset", w->offset);
            add_expires(req, w->expires_at);
            if (w->created)
                weir_http_add_header(req, "location", w->location);
            weir_http_respond(req, w->status, NULL, NULL, 0);
        }
    }
    if (w->status < 400 && w->written)
        emit_progress(w);
    writer_free(w);
}

/* ---- the loop side of a request ----------------------------------------------- */

static void call_free(tus_call *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void location_of(const tus_call *c, char *out, size_t cap)
{
    if (c->url_token[0])
        snprintf(out, cap, UPLOADS_PREFIX "%s?token=%s", c->row.id, c->url_token);
    else
        snprintf(out, cap, UPLOADS_PREFIX "%s", c->row.id);
}

/* The worker said "take the body": hand it to a writer. */
static void take_body(tus_call *c, weir_http_req *req)
{
    weir_uploads *u = c->u;
    upload_writer *w = c->slot;
    const EVP_MD *md = NULL;

    if (!w && !(w = calloc(1, sizeof *w))) {
        problem(req, 503, "server busy; try again");
        return;
    }
    c->slot = NULL;
    if (!w->u) {                    /* a new upload (POST): not reserved yet */
        w->u = u;
        w->fd = -1;
        snprintf(w->id, sizeof w->id, "%s", c->row.id);
        w->next = u->writers;
        u->writers = w;
    }
    w->fd = c->fd;
    c->fd = -1;
    w->start = c->offset;
    w->length = c->row.length;
    w->expected = c->body;
    w->req = req;
    w->created = c->kind == CALL_CREATE;
    location_of(c, w->location, sizeof w->location);
    if (c->has_checksum) {
        w->want = c->checksum;
        md = c->checksum.algo == WEIR_TUS_SHA1 ? EVP_sha1()
           : c->checksum.algo == WEIR_TUS_SHA256 ? EVP_sha256() : EVP_md5();
        if (!(w->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(w->md, md, NULL)) {
            problem(req, 503, "server busy; try again");
            writer_free(w);
            return;
        }
    }
    if (weir_http_body_stream(req, &writer_sink, w) < 0) {
        problem(req, 500, "internal error");
        writer_free(w);
    }
}

static void call_done(void *arg)        /* loop */
{
    tus_call *c = arg;
    weir_http_req *req = weir_http_resume(c->d);
    char loc[160];

    if (!req || c->u->stopping) {
        if (req)
            problem(req, 503, "the server is shutting down; try again");
        goto out;
    }
    if (c->status == 0) {
        take_body(c, req);
        goto out;
    }
    if (c->status >= 400) {
        problem(req, c->status, c->detail);
        goto out;
    }
    tus_headers(req);
    switch (c->kind) {
    case CALL_CREATE:
        location_of(c, loc, sizeof loc);
        weir_http_add_header(req, "location", loc);
        add_expires(req, c->row.expires_at);
        if (c->body == 0 && c->length >= 0)
            add_int_header(req, "upload-offset", 0);
        break;
    case CALL_HEAD:
        add_int_header(req, "upload-offset", c->row.received);
        add_int_header(req, "upload-length", c->row.length);
        if (c->row.metadata[0])
            weir_http_add_header(req, "upload-metadata", c->row.metadata);
        if (strcmp(c->row.state, "uploading") == 0)
            add_expires(req, c->row.expires_at);
        break;
    case CALL_PATCH:
        add_int_header(req, "upload-offset", c->row.received);
        break;
    case CALL_DELETE:
        break;
    }
    weir_http_respond(req, c->status, NULL, NULL, 0);
out:
    if (c->slot)
        writer_free(c->slot);
    call_free(c);
}

/* Copies header `name` into buf; 0 absent, 1 present, -1 present but too
 * long for buf. */
static int header(weir_http_req *req, const char *name, char *buf, size_t cap)
{
    char big[8192];                 /* lws refuses longer header blocks anyway */

    if (weir_http_req_header(req, name, buf, cap) >= 0)
        return 1;
    return weir_http_req_header(req, name, big, sizeof big) >= 0 ? -1 : 0;
}

/* Headers of POST (creation). */
static int parse_create(tus_call *c, weir_http_req *req)
{
    char text[WEIR_TUS_META_MAX + 1];
    int h;

    if (header(req, "upload-defer-length", text, sizeof text) == 1 ||
        header(req, "upload-concat", text, sizeof text) == 1)
        return call_fail(c, 400, "deferred lengths and concatenation are not served; send "
                                 "Upload-Length");
    if (header(req, "upload-length", text, sizeof text) != 1)
        return call_fail(c, 400, "send Upload-Length: the file's size in bytes");
    if (weir_tus_parse_size(text, &c->length) < 0)
        return call_fail(c, 400, "Upload-Length must be a size in bytes");
    c->row.length = c->length;
    if (c->length > c->u->s.max_size) {
        snprintf(c->detail_buf, sizeof c->detail_buf,
                 "the file is larger than this server takes (uploads.max_size, %" PRId64
                 " bytes)", c->u->s.max_size);
        return call_fail(c, 413, c->detail_buf);
    }
    h = header(req, "upload-metadata", text, sizeof text);
    if (h < 0)
        return call_fail(c, 400, "Upload-Metadata is too long");
    if (h == 1) {
        if (weir_tus_metadata_parse(text, meta_pick, &c->row) < 0 ||
            !utf8_valid(c->row.name) || !utf8_valid(c->row.filename))
            return call_fail(c, 400, "Upload-Metadata must be comma-separated \"key base64\" "
                                     "pairs, keys unique; name and filename UTF-8 text");
        memcpy(c->row.metadata, text, strlen(text) + 1);
    }
    if (c->body > 0) {
        if (header(req, "content-type", text, sizeof text) != 1 || strcmp(text, OCTETS) != 0)
            return call_fail(c, 415, "a body with the creation request must be "
                                     "Content-Type: " OCTETS);
        if (c->body > c->length)
            return call_fail(c, 413, "the body goes past Upload-Length");
    }
    return 0;
}

/* Headers of PATCH. */
static int parse_patch(tus_call *c, weir_http_req *req)
{
    char text[256];
    int r;

    if (header(req, "content-type", text, sizeof text) != 1 || strcmp(text, OCTETS) != 0)
        return call_fail(c, 415, "PATCH bodies must be Content-Type: " OCTETS);
    if (header(req, "upload-offset", text, sizeof text) != 1 ||
        weir_tus_parse_size(text, &c->offset) < 0)
        return call_fail(c, 400, "send Upload-Offset: where this chunk starts, in bytes");
    if (header(req, "upload-checksum", text, sizeof text) != 0) {
        r = weir_tus_checksum_parse(text, &c->checksum);
        if (r == AVERROR(ENOSYS))
            return call_fail(c, 400, "Upload-Checksum: the algorithm is not served (sha1, "
                                     "sha256, md5 are)");
        if (r < 0)
            return call_fail(c, 400, "Upload-Checksum must be \"algorithm base64-digest\"");
        c->has_checksum = 1;
    }
    return 0;
}

/* Splits the path: "" for the collection, the id for one upload, NULL for
 * neither. */
static const char *upload_of(const char *path)
{
    if (strcmp(path, UPLOADS_PATH) == 0)
        return "";
    if (strncmp(path, UPLOADS_PREFIX, strlen(UPLOADS_PREFIX)) == 0 &&
        valid_upload_id(path + strlen(UPLOADS_PREFIX)))
        return path + strlen(UPLOADS_PREFIX);
    return NULL;
}

static int tus_http(weir_http_req *req, void *arg)
{
    weir_uploads *u = arg;
    const char *method = weir_http_req_method(req);
    const char *id = upload_of(weir_http_req_path(req));
    char text[256];
    tus_call *c;
    int r;

    if (!id)
        return problem(req, 404, "no such upload");
    if (strcmp(method, "OPTIONS") == 0)
        return answer_options(req, u);
    if (!(c = calloc(1, sizeof *c)))
        return AVERROR(ENOMEM);
    c->u = u;
    c->fd = -1;
    c->offset = 0;
    snprintf(c->row.id, sizeof c->row.id, "%s", id);
    if (!*id && strcmp(method, "POST") == 0)
        c->kind = CALL_CREATE;
    else if (*id && strcmp(method, "HEAD") == 0)
        c->kind = CALL_HEAD;
    else if (*id && strcmp(method, "PATCH") == 0)
        c->kind = CALL_PATCH;
    else if (*id && strcmp(method, "DELETE") == 0)
        c->kind = CALL_DELETE;
    else {
        call_free(c);
        weir_http_add_header(req, "allow", *id ? "HEAD, PATCH, DELETE, OPTIONS" : "POST, OPTIONS");
        return problem(req, 405, *id ? "an upload answers HEAD, PATCH and DELETE"
                                     : "create uploads with POST");
    }
    c->body = weir_http_req_content_length(req);
    if (c->body < 0)
        c->body = 0;
    if (header(req, "tus-resumable", text, sizeof text) != 1 && weir_http_req_h2(req)) {
        /* Not the client's fault: over HTTP/2 the server's HTTP library
         * (libwebsockets 4.1) drops every request header it has no name
         * for, tus's among them.  Say so, instead of a 412 that sends the
         * client looking for a header it did send. */
        call_fail(c, 505, "tus uploads need HTTP/1.1 on this server (its HTTP/2 loses tus "
                          "headers); retry over HTTP/1.1, or set http.h2=false");
    } else if (header(req, "tus-resumable", text, sizeof text) != 1 ||
        strcmp(text, WEIR_TUS_VERSION) != 0) {
        call_fail(c, 412, "send Tus-Resumable: 1.0.0 (the only version served)");
    } else if (u->stopping) {
        call_fail(c, 503, "the server is shutting down; try again");
    } else if (c->kind == CALL_CREATE) {
        parse_create(c, req);
    } else if (c->kind == CALL_PATCH) {
        parse_patch(c, req);
    }
    if (!c->status) {
        char auth[192];
        if (header(req, "authorization", auth, sizeof auth) == 1 &&
            strncasecmp(auth, "Bearer ", 7) == 0) {
            const char *t = auth + 7;
            size_t n;
            while (*t == ' ')
                t++;
            if ((n = strlen(t)) < sizeof c->bearer)     /* longer: no token of ours */
                memcpy(c->bearer, t, n + 1);
            else
                memcpy(c->bearer, "-", 2);
        }
        if (!c->bearer[0] &&
            weir_http_req_query(req, "token", c->url_token, sizeof c->url_token) < 0)
            c->url_token[0] = '\0';
        if (!c->bearer[0] && !c->url_token[0])
            call_fail(c, 401, "send an API token (Authorization: Bearer <token>, write scope) "
                              "or use a single-use upload URL");
    }
    if (!c->status && c->kind == CALL_PATCH) {
        /* Invariant 2, from the offset check to the new offset's commit. */
        if (writer_find(u, id)) {
            call_fail(c, 409, "another request is writing this upload; ask HEAD and go on");
        } else if (!(c->slot = calloc(1, sizeof *c->slot))) {
            call_fail(c, 503, "server busy; try again");
        } else {
            c->slot->u = u;
            c->slot->fd = -1;
            snprintf(c->slot->id, sizeof c->slot->id, "%s", id);
            c->slot->next = u->writers;
            u->writers = c->slot;
        }
    }
    if (c->status) {
        r = problem(req, c->status, c->detail);
        call_free(c);
        return r;
    }
    if ((r = weir_work_submit(u->o.work, call_run, call_done, c)) < 0) {
        if (c->slot)
            writer_free(c->slot);
        call_free(c);
        weir_http_add_header(req, "retry-after", "1");
        return problem(req, 503, "server busy; try again");
    }
    c->d = weir_http_defer(req);
    return c->d ? 0 : AVERROR(ENOMEM);
}

/* ---- expiry ---------------------------------------------------------------- */

typedef struct sweep_job {
    weir_uploads *u;
    char (*busy)[WEIR_UPLOAD_ID_LEN + 1];
    size_t nbusy;
    size_t expired;
} sweep_job;

static void sweep_run(void *arg)        /* work */
{
    sweep_job *j = arg;
    weir_uploads *u = j->u;
    char (*ids)[WEIR_UPLOAD_ID_LEN + 1] = NULL;
    char path[PATH_MAX_U + 64];
    size_t n = 0;

    if (weir_upload_store_expire(u->o.db, now_ms(), j->busy, j->nbusy, &ids, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        part_path(u, ids[i], path, sizeof path);
        unlink(path);
        weir_assets_delete(u->vod, ids[i]);
        weir_log_info("uploads", "upload expired", WL_STR("upload", ids[i]));
    }
    j->expired = n;
    free(ids);
}

static void sweep_arm(weir_uploads *u);

static void sweep_done(void *arg)       /* loop */
{
    sweep_job *j = arg;
    weir_uploads *u = j->u;

    free(j->busy);
    free(j);
    u->sweeping = 0;
    sweep_arm(u);
}

static void sweep_fire(weir_timer *t)
{
    weir_uploads *u = (weir_uploads *)((char *)t - offsetof(weir_uploads, sweep));
    sweep_job *j;
    size_t n = 0;

    if (u->stopping || u->sweeping)
        return;
    if (!(j = calloc(1, sizeof *j))) {
        sweep_arm(u);
        return;
    }
    j->u = u;
    for (upload_writer *w = u->writers; w; w = w->next)
        n++;
    if (n && (j->busy = calloc(n, sizeof *j->busy)))
        for (upload_writer *w = u->writers; w; w = w->next)
            memcpy(j->busy[j->nbusy++], w->id, sizeof w->id);
    if (n && !j->busy) {
        free(j);
        sweep_arm(u);
        return;
    }
    u->sweeping = 1;
    if (weir_work_submit(u->o.work, sweep_run, sweep_done, j) < 0) {
        u->sweeping = 0;
        free(j->busy);
        free(j);
        sweep_arm(u);
    }
}

static void sweep_arm(weir_uploads *u)
{
    /* A quarter of the expiry, so an upload outlives it by at most that. */
    int64_t ms = u->s.expiry / 4;
    if (ms > SWEEP_MAX_MS)
        ms = SWEEP_MAX_MS;
    if (ms < 250)
        ms = 250;
    if (!u->stopping)
        weir_timer_start(u->o.loop, &u->sweep, ms * 1000, sweep_fire);
}

/* ---- processing ------------------------------------------------------------ */

typedef struct job {
    weir_uploads *u;
    weir_upload_row row;
    json_t *info;                   /* the probe's facts */
    int percent;
    int64_t written_ms, renewed_ms; /* asset.json written, lease renewed */
} job;

static void job_progress(void *arg, int percent)
{
    job *j = arg;
    int64_t now = now_ms();

    if (now - j->renewed_ms >= j->u->s.job_lease / 3) {
        if (weir_upload_store_renew(j->u->o.db, j->row.id, j->u->owner,
                                    now + j->u->s.job_lease) < 0)
            weir_log_warn("uploads", "processing lease lost", WL_STR("upload", j->row.id));
        j->renewed_ms = now;
    }
    if (percent == j->percent || (now - j->written_ms < 500 && percent < 100))
        return;
    j->percent = percent;
    j->written_ms = now;
    /* percent and progress: the same number, under the name the API had
     * first and the one transcode jobs use. */
    json_object_set_new(j->info, "percent", json_integer(percent));
    json_object_set_new(j->info, "progress", json_integer(percent));
    asset_write(j->u, &j->row, "processing", j->info);
}

/* Ends the job in `state`; extra is merged into asset.json. */
static void job_finish(job *j, const char *state, const char *reason, json_t *extra)
{
    weir_uploads *u = j->u;
    char path[PATH_MAX_U + 64];
    int r;

    if (reason)
        json_object_set_new(extra, "reason", json_string(reason));
    json_object_del(extra, "percent");
    json_object_del(extra, "progress");
    r = weir_upload_store_finish(u->o.db, j->row.id, u->owner, state, reason, now_ms());
    if (r < 0) {
        /* Deleted, or another node holds it now: its outcome, not ours. */
        weir_log_warn("uploads", "processing result dropped: the lease is gone",
                      WL_STR("upload", j->row.id), WL_ERR(r));
        return;
    }
    /* The log line first: whoever sees the new state (the API, an event)
     * finds the line already there. */
    if (reason)
        weir_log_warn("uploads", "upload failed", WL_STR("upload", j->row.id),
                      WL_STR("reason", reason));
    else
        weir_log_info("uploads", "upload ready", WL_STR("upload", j->row.id));
    asset_write(u, &j->row, state, extra);
    part_path(u, j->row.id, path, sizeof path);
    unlink(path);
}

/* A job interrupted by a stopping app: back to the queue, and asset.json
 * says so, for the next node (or this one, restarted) to take at once. */
static void job_release(job *j)
{
    weir_uploads *u = j->u;
    int r = weir_upload_store_release(u->o.db, j->row.id, u->owner, now_ms());

    if (r < 0) {
        weir_log_warn("uploads", "cannot hand an interrupted job back; it is retaken once its"
                      " lease lapses", WL_STR("upload", j->row.id), WL_ERR(r));
        return;
    }
    json_object_del(j->info, "percent");
    json_object_del(j->info, "progress");
    asset_write(u, &j->row, "queued", j->info);
    weir_log_info("uploads", "processing interrupted; queued again", WL_STR("upload", j->row.id));
}

/* Removes what an earlier attempt left in the asset's folder (everything
 * but asset.json), so that a retried job writes into a clean one. */
static void clear_asset_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char path[PATH_MAX_U + 400];
        if (e->d_name[0] == '.' || strcmp(e->d_name, "asset.json") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* URLs of the files the processing made, into the asset. */
static void add_urls(json_t *o, const char *dir, const char *id)
{
    static const struct { const char *field, *file; } urls[] = {
        { "hls", "index.m3u8" }, { "dash", "index.mpd" }, { "poster", "poster.jpg" },
        { "storyboard", "storyboard.vtt" }, { "storyboard_image", "storyboard.jpg" },
        { "hls_ts", "ts/index.m3u8" },      /* packager.hls_ts made an MPEG-TS variant */
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char path[PATH_MAX_U + 128], url[PATH_MAX_U];
        snprintf(path, sizeof path, "%s/%s", dir, urls[i].file);
        if (access(path, R_OK) != 0)
            continue;
        snprintf(url, sizeof url, "/vod/%s/%s", id, urls[i].file);
        json_object_set_new(o, urls[i].field, json_string(url));
    }
}

static void job_run(weir_uploads *u, const weir_upload_row *row)
{
    char input[PATH_MAX_U + 64], dir[PATH_MAX_U + 64], reason[512], err[AV_ERROR_MAX_STRING_SIZE];
    job j = { .u = u, .row = *row, .percent = -1 };
    int64_t duration_ms = 0, probed_ms;
    int r;

    j.renewed_ms = now_ms();
    part_path(u, row->id, input, sizeof input);
    snprintf(dir, sizeof dir, "%s/%s", u->vod, row->id);
    weir_log_info("uploads", "processing", WL_STR("upload", row->id),
                  WL_INT("attempt", row->attempts));
    if (row->attempts > WEIR_UPLOAD_MAX_ATTEMPTS) {
        json_t *o = json_object();
        job_finish(&j, "failed", "processing was interrupted too many times; the file may "
                                 "crash the packager", o);
        json_decref(o);
        return;
    }
    r = weir_upload_probe(input, &j.info, reason, sizeof reason);
    if (r < 0) {
        json_t *o = json_object();
        if (r != AVERROR_INVALIDDATA) {
            av_strerror(r, err, sizeof err);
            snprintf(reason, sizeof reason, "the file could not be read (%s)", err);
        }
        job_finish(&j, "failed", reason, o);
        json_decref(o);
        return;
    }
    job_progress(&j, 0);
    if (!u->o.process) {
        job_finish(&j, "ready", NULL, j.info);
        json_decref(j.info);
        return;
    }
    probed_ms = (int64_t)(json_number_value(json_object_get(j.info, "duration_s")) * 1000);
    clear_asset_dir(dir);           /* an attempt interrupted earlier left files */
    r = u->o.process(u->o.process_arg, input, dir, probed_ms, &duration_ms, job_progress, &j);
    if (r == AVERROR_EXIT) {
        job_release(&j);
    } else if (r < 0) {
        if (r == AVERROR_INVALIDDATA) {
            if (u->s.transcode)
                snprintf(reason, sizeof reason, "nothing in the file can be transcoded (no "
                                                "video or audio track decodes)");
            else
                snprintf(reason, sizeof reason, "nothing in the file can be packaged (codecs:"
                                                " H.264, HEVC, AV1, AAC, Opus)");
        } else {
            av_strerror(r, err, sizeof err);
            snprintf(reason, sizeof reason, "%s failed (%s)",
                     u->s.transcode ? "transcoding" : "packaging", err);
        }
        job_finish(&j, "failed", reason, j.info);
    } else {
        json_object_set_new(j.info, "duration_s", json_real((double)duration_ms / 1000.0));
        add_urls(j.info, dir, row->id);
        job_finish(&j, "ready", NULL, j.info);
    }
    json_decref(j.info);
}

static void *runner_main(void *arg)
{
    weir_uploads *u = arg;

    for (;;) {
        weir_upload_row row;
        int r;

        pthread_mutex_lock(&u->lock);
        if (!u->stop_runners && !u->kicked) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += POLL_MS / 1000;
            pthread_cond_timedwait(&u->wake, &u->lock, &until);
        }
        u->kicked = 0;
        if (u->stop_runners) {
            pthread_mutex_unlock(&u->lock);
            break;
        }
        pthread_mutex_unlock(&u->lock);
        while ((r = weir_upload_store_claim(u->o.db, u->owner, now_ms(), u->s.job_lease,
                                            &row)) == 1) {
            job_run(u, &row);
            pthread_mutex_lock(&u->lock);
            r = u->stop_runners;
            pthread_mutex_unlock(&u->lock);
            if (r)
                break;
        }
    }
    return NULL;
}

static int runners_start(weir_uploads *u)
{
    u->kicked = 1;                  /* look at once: work left from before a restart */
    if (u->s.workers > 0 && !(u->runners = calloc((size_t)u->s.workers, sizeof *u->runners)))
        return AVERROR(ENOMEM);
    for (; u->nrunners < u->s.workers; u->nrunners++) {
        char name[16];
        if (pthread_create(&u->runners[u->nrunners], NULL, runner_main, u) != 0)
            return AVERROR(EAGAIN);
        snprintf(name, sizeof name, "weir-upload-%d", u->nrunners);
        pthread_setname_np(u->runners[u->nrunners], name);
    }
    return 0;
}

static void runners_stop(weir_uploads *u)
{
    if (!u->runners && !u->nrunners)
        return;
    pthread_mutex_lock(&u->lock);
    u->stop_runners = 1;
    pthread_cond_broadcast(&u->wake);
    pthread_mutex_unlock(&u->lock);
    /* A file being packaged is finished first: the packager cannot be
     * interrupted (see docs/operations.md). */
    for (int i = 0; i < u->nrunners; i++)
        pthread_join(u->runners[i], NULL);
    u->nrunners = 0;
    free(u->runners);
    u->runners = NULL;
}

/* ---- the module ---------------------------------------------------------------- */

int weir_uploads_new(const weir_uploads_opts *opts, weir_uploads **out)
{
    weir_uploads *u = calloc(1, sizeof *u);
    unsigned char rnd[6];
    int r;

    pthread_condattr_t ca;

    if (!u)
        return AVERROR(ENOMEM);
    if (pthread_condattr_init(&ca) != 0) {
        free(u);
        return AVERROR(ENOMEM);
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    r = pthread_cond_init(&u->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (r != 0 || pthread_mutex_init(&u->lock, NULL) != 0) {
        if (r == 0)
            pthread_cond_destroy(&u->wake);
        free(u);
        return AVERROR(ENOMEM);
    }
    u->o = *opts;
    u->s = *opts->settings;
    if (snprintf(u->dir, sizeof u->dir, "%s/uploads", opts->data_dir) >= (int)sizeof u->dir ||
        snprintf(u->vod, sizeof u->vod, "%s/vod", opts->data_dir) >= (int)sizeof u->vod) {
        weir_uploads_free(u);
        return AVERROR(ENAMETOOLONG);
    }
    if ((mkdir(u->dir, 0750) < 0 && errno != EEXIST) ||
        (mkdir(u->vod, 0750) < 0 && errno != EEXIST)) {
        r = AVERROR(errno);
        weir_log_error("uploads", "cannot create the uploads folder", WL_STR("path", u->dir),
                       WL_ERR(r));
        weir_uploads_free(u);
        return r;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        weir_uploads_free(u);
        return AVERROR(EIO);
    }
    snprintf(u->owner, sizeof u->owner, "%d-%02x%02x%02x%02x%02x%02x", (int)getpid(), rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    if ((r = weir_http_route_stream(opts->http, NULL, UPLOADS_PATH, 0, tus_http, u)) < 0 ||
        (r = weir_http_route_stream(opts->http, NULL, UPLOADS_PREFIX, 1, tus_http, u)) < 0 ||
        (r = runners_start(u)) < 0) {
        weir_log_error("uploads", "cannot start uploads", WL_ERR(r));
        weir_uploads_stop(u);
        weir_uploads_free(u);
        return r;
    }
    sweep_fire(&u->sweep);          /* expire what a stopped server left */
    *out = u;
    return 0;
}

void weir_uploads_stop(weir_uploads *u)
{
    if (!u || u->stopping)
        return;
    u->stopping = 1;
    weir_timer_stop(&u->sweep);
    runners_stop(u);
}

void weir_uploads_free(weir_uploads *u)
{
    if (!u)
        return;
    weir_uploads_stop(u);
    while (u->writers) {
        /* The loop is gone, and with it every connection: nothing more will
         * arrive for these. */
        weir_log_warn("uploads", "upload still being written at exit",
                      WL_STR("upload", u->writers->id));
        writer_free(u->writers);
    }
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* ---- for the API ------------------------------------------------------------- */

int weir_uploads_url_create(weir_uploads *u, const char *name,
                            char token_out[WEIR_CRED_LEN + 1], char id_out[9],
                            int64_t *expires_ms)
{
    int64_t now = now_ms();
    int r;

    *expires_ms = now + u->s.url_ttl;
    r = weir_upload_store_url_create(u->o.db, name, now, *expires_ms, token_out, id_out);
    if (r >= 0)
        weir_log_info("uploads", "single-use upload URL created", WL_STR("id", id_out));
    return r;
}

int weir_uploads_forget(weir_uploads *u, const char *id)
{
    char path[PATH_MAX_U + 64];
    int r;

    if (!valid_upload_id(id))
        return 0;
    r = weir_upload_store_delete(u->o.db, id, now_ms());
    if (r == AVERROR(ENOENT))
        return 0;
    if (r < 0)
        return r;
    part_path(u, id, path, sizeof path);
    unlink(path);
    return 0;
}

void weir_uploads_overlay(weir_uploads *u, json_t *asset)
{
    const char *id = json_string_value(json_object_get(asset, "id"));
    const char *state = json_string_value(json_object_get(asset, "state"));
    weir_upload_row row;

    if (!id || !state || strcmp(state, "uploading") != 0 || !valid_upload_id(id) ||
        weir_upload_store_get(u->o.db, id, &row) < 0)
        return;
    json_object_set_new(asset, "received", json_integer(row.received));
}
