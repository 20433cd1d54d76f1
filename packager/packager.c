/*
 * packager/packager.c — watches the bus, keeps one presentation per live
 * stream, answers the origin's lookups.  See packager.h.
 *
 *   publisher thread                      loop thread
 *   weir_bus_publish -> on_publish ------> attach: subscribe (notify = on_notify)
 *   weir_stream_write -> on_notify ------> drain: weir_sub_read until EAGAIN,
 *                      (weir_loop_post,              pres_packet each packet
 *                       once per wake)    EOF: pres_pause, grace timer, pres_end,
 *                                          linger timer, then free
 *
 * A stream's first packet fixes its tracks; the presentation is created then.
 * When the publisher leaves, the playlists stay live for
 * packager.reconnect_grace (players keep polling), then end (EXT-X-ENDLIST)
 * and keep serving for packager.linger.  A publisher that takes the name
 * again in either time continues the presentation (pres_resume:
 * a discontinuity, numbers go on) when its tracks match, so players ride
 * through an encoder's reconnect; otherwise it replaces it.
 */
#include "packager/packager.h"
#include "packager/pres.h"
#include "packager/ts.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

static const weir_conf_key packager_keys[] = {
    { "packager.segment_duration", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, segment_duration), "2s", 500, 30000, NULL,
      "target segment length; segments are cut at the first keyframe after it", 0 },
    { "packager.part_duration", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, part_duration), "500ms", 200, 1000, NULL,
      "CMAF fragment (LL-HLS part) length inside a segment; segment_duration must be a "
      "whole multiple of it", 0 },
    { "packager.window", WEIR_CONF_INT, offsetof(weir_packager_settings, window),
      "6", 3, 100, NULL, "segments listed in live playlists and MPDs", 0 },
    { "packager.reconnect_grace", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, reconnect_grace), "10s", 0, 600000, NULL,
      "after the publisher leaves, how long playlists stay live (no EXT-X-ENDLIST) so players "
      "keep polling while an encoder reconnects; 0 ends them at once", 0 },
    { "packager.linger", WEIR_CONF_DURATION, offsetof(weir_packager_settings, linger),
      "30s", 0, 3600000, NULL,
      "how long an ended stream's playlists (with EXT-X-ENDLIST) stay served; a publisher "
      "back under the name meanwhile continues the presentation after a discontinuity", 0 },
    { "packager.low_latency", WEIR_CONF_BOOL, offsetof(weir_packager_settings, low_latency),
      "true", 0, 0, NULL,
      "Low-Latency HLS: list parts, hold _HLS_msn/_HLS_part requests, preload hints", 0 },
    { "packager.record", WEIR_CONF_BOOL, offsetof(weir_packager_settings, record),
      "false", 0, 0, NULL,
      "record every live stream to data_dir/vod/ as a VOD asset (HLS and DASH), listed at "
      "GET /api/v1/assets; kept until deleted or until packager.record_max_age or "
      "packager.record_max_bytes removes them", 0 },
    { "packager.record_max_age", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, record_max_age), "0s", 0, 3153600000000.0, NULL,
      "recordings are deleted this long after they ended, oldest first (0: no age limit); "
      "never one still being written or one a live DVR window reads from; uploads never", 0 },
    { "packager.record_max_bytes", WEIR_CONF_SIZE,
      offsetof(weir_packager_settings, record_max_bytes), "0", 0, 1e18, NULL,
      "total size of the recordings in data_dir/vod/: above it the oldest finished ones are "
      "deleted until it fits (0: no size limit); uploads neither count nor go", 0 },
    { "packager.record_sweep_interval", WEIR_CONF_DURATION,
      offsetof(weir_packager_settings, record_sweep_interval), "60s", 100, 3600000, NULL,
      "how often the recordings on disk are measured (weir_recordings_bytes) and the two "
      "limits above applied", 0 },
    { "packager.dvr_window", WEIR_CONF_DURATION, offsetof(weir_packager_settings, dvr_window),
      "0s", 0, 86400000, NULL,
      "DVR: live playlists and MPDs list this much of the stream (0: just packager.window); "
      "older segments are served from the recording, so it needs packager.record", 0 },
    { "packager.hls_ts", WEIR_CONF_BOOL, offsetof(weir_packager_settings, hls_ts),
      "false", 0, 0, NULL,
      "also serve HLS over MPEG-TS (H.264 + AAC, for old devices) at /live/<name>/ts/index.m3u8, "
      "same segment boundaries and numbers as CMAF; recordings and uploaded files get a ts/ "
      "folder too", 0 },
};

const weir_conf_table weir_packager_conf_table = {
    .module = "packager",
    .keys = packager_keys,
    .nkeys = sizeof packager_keys / sizeof packager_keys[0],
};

int weir_packager_settings_check(const weir_packager_settings *s)
{
    if (s->segment_duration % s->part_duration != 0) {
        fprintf(stderr, "packager.segment_duration (%lld ms) must be a whole multiple of "
                "packager.part_duration (%lld ms)\n", (long long)s->segment_duration,
                (long long)s->part_duration);
        return -1;
    }
    if (s->dvr_window > 0 && !s->record) {
        fprintf(stderr, "packager.dvr_window needs packager.record=true: DVR serves older "
                "segments from the recording on disk\n");
        return -1;
    }
    return 0;
}

/* One watched stream, from publish to the end of its linger time. */
typedef struct entry {
    struct entry *next;
    weir_packager *pk;
    char name[WEIR_BUS_NAME_MAX + 1];
    weir_stream *stream;            /* reference until attached */
    weir_sub *sub;
    pkg_pres *pres;                 /* NULL until the first packet */
    pkg_pres *prev;                 /* the name's ended presentation, to resume */
    atomic_bool posted;             /* a drain is queued on the loop */
    int ended;
    weir_timer linger;
} entry;

struct weir_packager {
    weir_loop *loop;
    weir_bus *bus;
    weir_work *work;
    char *data_dir;
    int abr;                        /* package "<name>/abr", not "<name>" */
    const weir_packager_settings *settings;
    entry *entries;                 /* loop thread only */
    size_t count;
    void (*on_change)(void *arg, const char *name);
    void *change_arg;
    void (*on_asset)(void *arg, const char *type, const json_t *asset);
    void *asset_arg;
};

void weir_packager_on_change(weir_packager *pk, void (*fn)(void *arg, const char *name),
                             void *arg)
{
    pk->on_change = fn;
    pk->change_arg = arg;
}

void weir_packager_on_asset(weir_packager *pk,
                            void (*fn)(void *arg, const char *type, const json_t *asset),
                            void *arg)
{
    pk->on_asset = fn;
    pk->asset_arg = arg;
}

static void entry_free(entry *e)
{
    weir_sub_close(e->sub);
    weir_stream_unref(e->stream);
    pres_free(e->pres);
    pres_free(e->prev);
    free(e);
}

static void entry_unlink(weir_packager *pk, entry *e)
{
    for (entry **pp = &pk->entries; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            pk->count--;
            return;
        }
}

/* The live (or lingering) entry serving name, the newest one first. */
static entry *find(weir_packager *pk, const char *name, size_t len)
{
    for (entry *e = pk->entries; e; e = e->next)
        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

static void on_linger_done(weir_timer *t)
{
    entry *e = (entry *)((char *)t - offsetof(entry, linger));
    weir_log_info("packager", "presentation removed", WL_STR("stream", e->name));
    entry_unlink(e->pk, e);
    entry_free(e);
}

/* <data_dir>/vod/<name>-<start unix ms>/: the id is readable, unique per
 * publish, and only [A-Za-z0-9_-], so it is safe in URLs and paths. */
static void start_recording(weir_packager *pk, pkg_pres *p)
{
    char vod[4096], dir[sizeof vod + WEIR_BUS_NAME_MAX + 40], id[WEIR_BUS_NAME_MAX + 32];

    snprintf(id, sizeof id, "%s-%lld", p->name, (long long)p->epoch_unix_ms);
    snprintf(vod, sizeof vod, "%s/vod", pk->data_dir);
    snprintf(dir, sizeof dir, "%s/%s", vod, id);
    if (mkdir(vod, 0750) < 0 && errno != EEXIST) {
        weir_log_error("packager", "cannot record: cannot create data_dir/vod",
                       WL_STR("path", vod), WL_STR("err", strerror(errno)));
        return;
    }
    if (rec_start(p, dir, id, pk->work, NULL) == 0)
        weir_log_info("packager", "recording", WL_STR("stream", p->name), WL_STR("asset", id));
}

/* Half-seconds since 2024-01-01: segments last 0.5 s at least, so a name
 * published again, even after a restart, starts past every number its
 * earlier presentations used; and it stays below 2^31 until 2058, for
 * players that keep segment numbers in 32 bits (FFmpeg's DASH demuxer). */
static int64_t first_number(int64_t now_unix_ms)
{
    const int64_t epoch_ms = 1704067200000LL;     /* 2024-01-01T00:00:00Z */
    return now_unix_ms > epoch_ms ? (now_unix_ms - epoch_ms) / 500 + 1 : 1;
}

static int start_pres(entry *e)
{
    const AVCodecParameters *pars[WEIR_STREAM_MAX_TRACKS];
    AVRational tbs[WEIR_STREAM_MAX_TRACKS];
    int n = weir_sub_ntracks(e->sub), r;

    for (int i = 0; i < n && i < WEIR_STREAM_MAX_TRACKS; i++)
        pars[i] = weir_sub_codecpar(e->sub, i, &tbs[i]);
    int64_t now = weir_clock_unix_ms();
    if (e->prev) {
        if (pres_resume(e->prev, pars, tbs, n, now) == 0) {
            e->pres = e->prev;
            e->prev = NULL;
            if (e->pk->settings->record && e->pk->data_dir && e->pk->work)
                start_recording(e->pk, e->pres);
            return 0;
        }
        weir_log_info("packager", "publisher back with other tracks: a new presentation",
                      WL_STR("stream", e->name));
        pres_free(e->prev);
        e->prev = NULL;
    }
    r = pres_new(e->name, e->pk->settings, pars, tbs, n, now, first_number(now), &e->pres);
    if (r < 0) {
        weir_log_warn("packager", "stream not packaged: no track CMAF can carry",
                      WL_STR("stream", e->name), WL_INT("tracks", n));
        return r;
    }
    e->pres->on_change = e->pk->on_change;
    e->pres->change_arg = e->pk->change_arg;
    e->pres->on_asset = e->pk->on_asset;
    e->pres->asset_arg = e->pk->asset_arg;
    if (e->pk->settings->record && e->pk->data_dir && e->pk->work)
        start_recording(e->pk, e->pres);
    weir_log_info("packager", "packaging", WL_STR("stream", e->name),
                  WL_INT("tracks", e->pres->ntracks));
    return 0;
}

/* No publisher came back within packager.reconnect_grace: the playlists
 * end (EXT-X-ENDLIST, static MPD) and linger. */
static void on_grace_done(weir_timer *t)
{
    entry *e = (entry *)((char *)t - offsetof(entry, linger));
    /* (prev: a returning publisher left again before its first packet.) */
    pkg_pres *p = e->pres ? e->pres : e->prev;

    if (p) {
        pres_end(p, weir_clock_unix_ms());
        weir_log_info("packager", "stream ended", WL_STR("stream", e->name));
    }
    weir_timer_start(e->pk->loop, &e->linger, e->pk->settings->linger * 1000, on_linger_done);
}

static void finish(entry *e)
{
    e->ended = 1;
    weir_sub_close(e->sub);
    e->sub = NULL;
    if (e->pres) {
        pres_pause(e->pres, weir_clock_unix_ms());
        weir_log_info("packager", "publisher left; playlists stay live for a reconnect",
                      WL_STR("stream", e->name),
                      WL_INT("grace_ms", e->pk->settings->reconnect_grace));
    }
    weir_timer_start(e->pk->loop, &e->linger, e->pk->settings->reconnect_grace * 1000,
                     on_grace_done);
}

/* On the loop: everything queued for this subscriber. */
static void drain(void *arg)
{
    entry *e = arg;
    AVPacket *pkt = av_packet_alloc();
    int r;

    atomic_store(&e->posted, false);
    if (!pkt || e->ended) {
        av_packet_free(&pkt);
        return;
    }
    while ((r = weir_sub_read(e->sub, pkt)) == 0) {
        if (!e->pres && start_pres(e) < 0) {
            r = AVERROR_EOF;            /* nothing to package: stop listening */
            break;
        }
        if ((r = pres_packet(e->pres, pkt, weir_clock_unix_ms())) < 0) {
            weir_log_error("packager", "packaging failed", WL_STR("stream", e->name), WL_ERR(r));
            r = AVERROR_EOF;
            break;
        }
    }
    av_packet_free(&pkt);
    if (r == AVERROR_EOF)
        finish(e);
}

/* Publisher's thread, stream lock held: only queue a drain. */
static void on_notify(void *arg)
{
    entry *e = arg;
    if (!atomic_exchange(&e->posted, true))
        weir_loop_post(e->pk->loop, drain, e);
}

/* On the loop: subscribe to a newly published stream. */
static void attach(void *arg)
{
    entry *e = arg, *old;
    weir_packager *pk = e->pk;

    /* A new publisher of the name takes over what still lingers; its
     * presentation is resumed at the first packet if the tracks match. */
    while ((old = find(pk, e->name, strlen(e->name)))) {
        weir_timer_stop(&old->linger);
        entry_unlink(pk, old);
        if (!old->ended) {
            weir_sub_close(old->sub), old->sub = NULL;
            if (old->pres)
                pres_end(old->pres, weir_clock_unix_ms());
        }
        if (old->pres && !e->prev)
            e->prev = old->pres, old->pres = NULL;
        entry_free(old);
    }
    e->next = pk->entries;
    pk->entries = e;
    pk->count++;
    atomic_store(&e->posted, true);     /* until the first drain below */
    if (weir_stream_subscribe(e->stream, &(weir_sub_opts){ .notify = on_notify, .arg = e },
                              &e->sub) < 0) {
        weir_log_error("packager", "cannot subscribe", WL_STR("stream", e->name));
        finish(e);
        return;
    }
    weir_stream_unref(e->stream);
    e->stream = NULL;
    drain(e);
}

/* The playback name a bus stream is packaged under, or NULL when it is not
 * packaged: with a ladder the transcoder's "cam1/abr" plays as "cam1" and
 * the source "cam1" itself is not packaged; without one, "cam1" is. */
static const char *playback_name(const weir_packager *pk, const char *bus_name, char *buf,
                                 size_t cap)
{
    const char *slash = strchr(bus_name, '/');

    if (!pk->abr)
        return weir_stream_name_valid(bus_name) ? bus_name : NULL;
    if (!slash || strcmp(slash, "/abr") != 0 || (size_t)(slash - bus_name) >= cap)
        return NULL;
    memcpy(buf, bus_name, (size_t)(slash - bus_name));
    buf[slash - bus_name] = '\0';
    return weir_stream_name_valid(buf) ? buf : NULL;
}

/* Publisher's thread, inside weir_bus_publish. */
static void on_publish(void *arg, weir_bus_event ev, weir_stream *s)
{
    weir_packager *pk = arg;
    char buf[WEIR_BUS_NAME_MAX + 1];
    const char *name;
    entry *e;

    if (ev != WEIR_BUS_PUBLISHED)
        return;                 /* the end arrives through the subscription */
    if (!(name = playback_name(pk, weir_stream_name(s), buf, sizeof buf)))
        return;
    if (!(e = calloc(1, sizeof *e)))
        return;
    e->pk = pk;
    snprintf(e->name, sizeof e->name, "%s", name);
    weir_stream_ref(s);
    e->stream = s;
    if (weir_loop_post(pk->loop, attach, e) < 0) {
        weir_stream_unref(s);
        free(e);
    }
}

int weir_packager_new(const weir_packager_opts *opts, weir_packager **out)
{
    weir_packager *pk = calloc(1, sizeof *pk);
    int r;

    if (!pk)
        return AVERROR(ENOMEM);
    pk->loop = opts->loop;
    pk->bus = opts->bus;
    pk->work = opts->work;
    pk->abr = opts->abr;
    if (opts->data_dir && !(pk->data_dir = strdup(opts->data_dir))) {
        free(pk);
        return AVERROR(ENOMEM);
    }
    pk->settings = opts->settings;
    if ((r = weir_bus_watch(opts->bus, on_publish, pk)) < 0) {
        free(pk->data_dir);
        free(pk);
        return r;
    }
    *out = pk;
    return 0;
}

void weir_packager_free(weir_packager *pk)
{
    if (!pk)
        return;
    /* The loop is gone by now, and its timers with it: just free. */
    while (pk->entries) {
        entry *e = pk->entries;
        pk->entries = e->next;
        entry_free(e);
    }
    free(pk->data_dir);
    free(pk);
}

size_t weir_packager_count(const weir_packager *pk)
{
    return pk->count;
}

/* A recording is in use while it is written (p->rec) and, with DVR, while
 * any presentation still served redirects into it (p->rec_id, kept after
 * the recording finished, until the linger ends). */
static int add_in_use(json_t *ids, const pkg_pres *p, int dvr)
{
    if (!p || !p->rec_id[0] || (!p->rec && !dvr))
        return 0;
    return json_array_append_new(ids, json_string(p->rec_id));
}

json_t *weir_packager_recordings_in_use(weir_packager *pk)
{
    json_t *ids = json_array();
    int dvr = pk->settings->dvr_window > 0;

    if (!ids)
        return NULL;
    for (entry *e = pk->entries; e; e = e->next)
        if (add_in_use(ids, e->pres, dvr) < 0 || add_in_use(ids, e->prev, dvr) < 0) {
            json_decref(ids);
            return NULL;
        }
    return ids;
}

/* index.json: {"streams": [{"name", "hls", "dash", "ended"}]}, newest first. */
static int list_json(weir_packager *pk, weir_object *out)
{
    json_t *arr = json_array(), *doc = json_pack("{so}", "streams", arr);
    char url[WEIR_BUS_NAME_MAX + 32], *text;
    int r = AVERROR(ENOMEM);

    if (!doc)
        return r;
    for (entry *e = pk->entries; e; e = e->next) {
        const pkg_pres *p = e->pres ? e->pres : e->prev;
        if (!p || !p->master)
            continue;           /* nothing playable yet */
        json_t *s = json_pack("{ss sb}", "name", e->name, "ended", e->ended);
        snprintf(url, sizeof url, "/live/%s/index.m3u8", e->name);
        json_object_set_new(s, "hls", json_string(url));
        snprintf(url, sizeof url, "/live/%s/index.mpd", e->name);
        json_object_set_new(s, "dash", json_string(url));
        if (e->pres->ts) {
            snprintf(url, sizeof url, "/live/%s/ts/index.m3u8", e->name);
            json_object_set_new(s, "hls_ts", json_string(url));
        }
        json_array_append_new(arr, s);
    }
    if ((text = json_dumps(doc, JSON_COMPACT))) {
        *out = (weir_object){
            .body = weir_buf_copy(text, strlen(text)), .content_type = "application/json",
            .cache = WEIR_CACHE_LIVE, .max_age_ms = 0, .mtime_ms = weir_clock_unix_ms(),
            .etag = (uint64_t)weir_clock_unix_ms(),
        };
        r = out->body ? 0 : AVERROR(ENOMEM);
        free(text);
    }
    json_decref(doc);
    return r;
}

int weir_packager_lookup(void *arg, const char *path, const weir_object_query *q,
                         weir_object *out)
{
    weir_packager *pk = arg;
    const char *slash = strchr(path, '/');
    entry *e;

    if (strcmp(path, "index.json") == 0)
        return list_json(pk, out);
    if (!slash)
        return AVERROR(ENOENT);
    /* "<name>/<file>", or "<name>/ts/<file>" for the MPEG-TS variant. */
    int in_ts = strncmp(slash + 1, "ts/", 3) == 0;
    if (strchr(slash + 1 + (in_ts ? 3 : 0), '/'))
        return AVERROR(ENOENT);
    e = find(pk, path, (size_t)(slash - path));
    if (!e || !(e->pres || e->prev))
        return AVERROR(ENOENT);
    /* Until the returning publisher's first packet, the ended
     * presentation keeps answering. */
    pkg_pres *p = e->pres ? e->pres : e->prev;
    return in_ts ? ts_lookup(p, slash + 4, out) : pres_lookup(p, slash + 1, q, out);
}
