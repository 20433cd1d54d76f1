/*
 * packager/record.c — a live presentation recorded to disk as a VOD asset.
 * See pres.h for the files and the calls.
 *
 *   loop thread                              blocking-work pool
 *   rec_start   -> asset.json "recording" ─┐
 *   rec_segment -> init (once), segment ───┼──> write to a temporary name,
 *   rec_end     -> playlists, MPD ──────────┘    fsync, rename
 *   each write done (loop): pending--; when the end was seen and nothing is
 *   pending: asset.json "ready" (or "failed"), then the recording is freed.
 *
 * Each asset.json, once it is on disk, is also told to the presentation's
 * on_asset listener (the app hands it to /api/v1/events): "asset.created"
 * with state "recording", "asset.state" with "ready" or "failed" — after
 * the write, so a client that hears of it finds the same object at
 * GET /api/v1/assets/ID.
 *
 * The recording owns its state once rec_end returns: the presentation may
 * be freed while files are still being written.
 */
#include "packager/pres.h"
#include "packager/ts.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define REC_PATH_MAX 1024

struct pkg_rec {
    char id[WEIR_BUS_NAME_MAX + 32];
    char name[WEIR_BUS_NAME_MAX + 1];
    char dir[REC_PATH_MAX];
    weir_work *work;
    int pending;                    /* writes submitted, not done */
    int ended, failed, finished;
    int64_t started_unix_ms;
    int64_t duration_ms;
    int inits_written;              /* bit per track */
    int own_asset_json;             /* write asset.json (recordings; not for files) */
    int has_ts;                     /* a ts/ variant (packager.hls_ts) is written too */
    int *result;                    /* sync mode: set to 0 or an AVERROR at the end */
    void (*on_asset)(void *arg, const char *type, const json_t *asset);
    void *asset_arg;
};

typedef struct rec_write {
    pkg_rec *rec;
    char path[REC_PATH_MAX + 64];   /* dir + "/" + a file name */
    weir_buf *buf;
    int err;                        /* errno, set by run */
    int last;                       /* asset.json "ready": frees rec when done */
    json_t *asset;                  /* asset.json's object, told to on_asset once written */
} rec_write;

/* Worker: dir, then tmp file, fsync, rename (a reader never sees half a file). */
static void write_run(void *arg)
{
    rec_write *w = arg;
    char tmp[sizeof w->path + 8];
    size_t off = 0, dirlen = strlen(w->rec->dir);
    char *sub;
    int fd;

    if (mkdir(w->rec->dir, 0750) < 0 && errno != EEXIST) {
        w->err = errno;
        return;
    }
    /* One folder level inside the asset ("ts/"): made on first use. */
    if ((sub = strrchr(w->path + dirlen + 1, '/'))) {
        *sub = '\0';
        if (mkdir(w->path, 0750) < 0 && errno != EEXIST)
            w->err = errno;
        *sub = '/';
        if (w->err)
            return;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        w->err = errno;
        return;
    }
    while (off < w->buf->size) {
        ssize_t n = write(fd, w->buf->data + off, w->buf->size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EIO;
            break;
        }
        off += (size_t)n;
    }
    if (!w->err && fsync(fd) < 0)
        w->err = errno;
    close(fd);
    if (!w->err && rename(tmp, w->path) < 0)
        w->err = errno;
    if (w->err)
        unlink(tmp);
}

static void finish_if_done(pkg_rec *rec);

static void rec_free(pkg_rec *rec)
{
    if (rec->own_asset_json)
        weir_log_info("packager", rec->failed ? "recording failed" : "recording ready",
                      WL_STR("asset", rec->id), WL_STR("stream", rec->name),
                      WL_INT("duration_ms", rec->duration_ms));
    if (rec->result)
        *rec->result = rec->failed ? AVERROR(EIO) : 0;
    free(rec);
}

/* Loop: one write less in flight. */
static void write_done(void *arg)
{
    rec_write *w = arg;
    pkg_rec *rec = w->rec;

    if (w->err) {
        rec->failed = 1;
        weir_log_error("packager", "recording write failed", WL_STR("asset", rec->id),
                       WL_STR("path", w->path), WL_STR("err", strerror(w->err)));
    }
    weir_buf_unref(w->buf);
    rec->pending--;
    if (w->asset) {
        const char *state = json_string_value(json_object_get(w->asset, "state"));
        if (!w->err && rec->on_asset)
            rec->on_asset(rec->asset_arg, state && strcmp(state, "recording") == 0
                                          ? "asset.created" : "asset.state", w->asset);
        json_decref(w->asset);
    }
    if (w->last) {
        rec_free(rec);
        free(w);
        return;
    }
    free(w);
    finish_if_done(rec);
}

/* Writes buf (a new reference is taken) as rec->dir/name.  asset: the
 * object asset.json holds (its reference is taken), or NULL. */
static void submit_asset(pkg_rec *rec, const char *name, weir_buf *buf, int last, json_t *asset)
{
    rec_write *w = calloc(1, sizeof *w);

    if (!w || !buf) {
        free(w);
        json_decref(asset);
        rec->failed = 1;
        return;
    }
    w->rec = rec;
    w->asset = asset;
    snprintf(w->path, sizeof w->path, "%s/%s", rec->dir, name);
    w->buf = weir_buf_ref(buf);
    w->last = last;
    rec->pending++;
    if (!rec->work || weir_work_submit(rec->work, write_run, write_done, w) < 0) {
        /* The pool is full or shutting down (exit): write here. */
        write_run(w);
        write_done(w);
    }
}

static void submit(pkg_rec *rec, const char *name, weir_buf *buf, int last)
{
    submit_asset(rec, name, buf, last, NULL);
}

/* asset.json: what GET /api/v1/assets lists.  *obj (OUT, caller decrefs):
 * the same as an object, for the listener. */
static weir_buf *asset_json(const pkg_rec *rec, const char *state, json_t **obj)
{
    char created[WEIR_ISO8601_LEN], url[sizeof rec->id + 32];
    json_t *o;
    char *text;
    weir_buf *b = NULL;

    weir_clock_iso8601(rec->started_unix_ms, created);
    o = json_pack("{ss ss ss ss ss sf}", "id", rec->id, "state", state, "source", "live",
                  "name", rec->name, "created", created,
                  "duration_s", (double)rec->duration_ms / 1000.0);
    if (!o)
        return NULL;
    snprintf(url, sizeof url, "/vod/%s/index.m3u8", rec->id);
    json_object_set_new(o, "hls", json_string(url));
    snprintf(url, sizeof url, "/vod/%s/index.mpd", rec->id);
    json_object_set_new(o, "dash", json_string(url));
    if (rec->has_ts) {
        snprintf(url, sizeof url, "/vod/%s/ts/index.m3u8", rec->id);
        json_object_set_new(o, "hls_ts", json_string(url));
    }
    if ((text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)))) {
        b = weir_buf_copy(text, strlen(text));
        free(text);
    }
    if (b)
        *obj = o;
    else
        json_decref(o);
    return b;
}

static void finish_if_done(pkg_rec *rec)
{
    json_t *o = NULL;
    weir_buf *b;

    if (!rec->ended || rec->pending > 0 || rec->finished)
        return;
    rec->finished = 1;
    if (!rec->own_asset_json) {
        rec_free(rec);
        return;
    }
    b = asset_json(rec, rec->failed ? "failed" : "ready", &o);
    if (!b) {
        weir_log_error("packager", "recording not finished: out of memory",
                       WL_STR("asset", rec->id));
        free(rec);
        return;
    }
    submit_asset(rec, "asset.json", b, 1, o);
    weir_buf_unref(b);
}

int rec_start(pkg_pres *p, const char *dir, const char *id, weir_work *work, int *result)
{
    pkg_rec *rec = calloc(1, sizeof *rec);
    json_t *o = NULL;
    weir_buf *b;

    if (!rec)
        return AVERROR(ENOMEM);
    if (snprintf(rec->dir, sizeof rec->dir, "%s", dir) >= (int)sizeof rec->dir) {
        free(rec);
        return AVERROR(ENAMETOOLONG);
    }
    snprintf(rec->id, sizeof rec->id, "%s", id);
    snprintf(p->rec_id, sizeof p->rec_id, "%s", id);
    snprintf(rec->name, sizeof rec->name, "%s", p->name);
    rec->work = work;
    rec->result = result;
    rec->own_asset_json = !result;
    rec->started_unix_ms = p->epoch_unix_ms;
    rec->has_ts = p->ts != NULL;
    rec->on_asset = p->on_asset;
    rec->asset_arg = p->asset_arg;
    p->rec = rec;
    if (rec->own_asset_json && (b = asset_json(rec, "recording", &o))) {
        submit_asset(rec, "asset.json", b, 0, o);
        weir_buf_unref(b);
    }
    return 0;
}

void rec_segment(pkg_pres *p, pkg_track *t, const pkg_segment *s)
{
    pkg_rec *rec = p->rec;
    int ti = (int)(t - p->tracks);
    char name[64];

    if (!rec)
        return;
    if (!(rec->inits_written & (1 << ti))) {
        pres_init_name(p, t, name);
        submit(rec, name, t->init, 0);
        rec->inits_written |= 1 << ti;
    }
    if (t->nrec == t->caprec) {
        int cap = t->caprec ? t->caprec * 2 : 64;
        pkg_span *grown = realloc(t->rec, (size_t)cap * sizeof *grown);
        if (!grown) {
            rec->failed = 1;
            return;
        }
        t->rec = grown;
        t->caprec = cap;
    }
    t->rec[t->nrec++] = (pkg_span){ s->number, s->start_ts, s->duration_ts };
    snprintf(name, sizeof name, "%s_%" PRId64 ".m4s", t->id, s->number);
    submit(rec, name, s->whole, 0);
    if (ti == p->key)           /* from its own start: a resumed presentation's goes on */
        rec->duration_ms = av_rescale(s->start_ts + s->duration_ts - t->rec[0].start_ts, 1000,
                                      t->timescale);
}

void rec_file(pkg_pres *p, const char *name, weir_buf *buf)
{
    if (p->rec)
        submit(p->rec, name, buf, 0);
}

void rec_end(pkg_pres *p, int64_t now_unix_ms)
{
    pkg_rec *rec = p->rec;
    char name[64];
    weir_buf *b;

    if (!rec)
        return;
    (void)now_unix_ms;
    ts_rec_end(p);                  /* the ts/ playlists, while p->rec is set */
    p->rec = NULL;
    if ((b = pres_render_master(p))) {
        submit(rec, "index.m3u8", b, 0);
        weir_buf_unref(b);
    } else {
        rec->failed = 1;
    }
    for (int i = 0; i < p->ntracks; i++) {
        snprintf(name, sizeof name, "%s.m3u8", p->tracks[i].id);
        if ((b = pres_render_vod_media(p, &p->tracks[i]))) {
            submit(rec, name, b, 0);
            weir_buf_unref(b);
        } else {
            rec->failed = 1;
        }
    }
    if ((b = pres_render_vod_mpd(p))) {
        submit(rec, "index.mpd", b, 0);
        weir_buf_unref(b);
    } else {
        rec->failed = 1;
    }
    rec->ended = 1;
    finish_if_done(rec);
}
