/*
 * core/bus.c — the stream bus.  The design, the subscriber state machine and
 * the invariants visible to callers are in bus.h; this file adds how they are
 * kept.
 *
 * Locks.  bus->lock guards the name table (bus->streams, each stream's
 * bus_next, bus->count).  stream->lock guards everything else that changes in
 * a stream and in its subscribers.  When both are needed the order is
 * bus->lock, then stream->lock (only weir_bus_free does so); weir_stream_end
 * takes them one after the other, never nested.
 *
 * References to a stream:
 *   - the name table holds one while the stream is published;
 *   - the publisher holds one from weir_bus_publish to weir_stream_end;
 *   - every subscriber holds one;
 *   - weir_bus_find hands out one more to its caller.
 * So a stream is freed only once it is off the table and has no subscriber.
 *
 * Packet slots.  Queues and the GOP cache are arrays of AVPacket*.  A slot's
 * AVPacket is allocated the first time it is used and then reused: filling a
 * slot is av_packet_ref (new reference, no copy of the data), emptying it is
 * av_packet_unref or av_packet_move_ref.  An empty slot holds a blank packet.
 */
#include "core/bus.h"
#include "core/clock.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

typedef struct weir_track {
    AVCodecParameters *par;     /* owned */
    AVRational time_base;
} weir_track;

typedef struct bus_watcher {
    weir_bus_watch_fn fn;
    void *arg;
    struct bus_watcher *next;
} bus_watcher;

struct weir_bus {
    /* Watchers run under watch_lock held for reading, so unwatch (a writer)
     * returns only once none runs; readers are preferred, so a watcher that
     * publishes (reading again) cannot deadlock against a waiting writer. */
    pthread_rwlock_t watch_lock;
    bus_watcher *watchers;
    pthread_mutex_t lock;
    weir_stream *streams;       /* published streams, linked by bus_next */
    size_t count;
    atomic_uint_least64_t skips;    /* every subscriber's skips, for metrics */
};

struct weir_stream {
    atomic_int refs;
    char name[WEIR_BUS_NAME_MAX + 1];   /* immutable */
    weir_stream *bus_next;              /* guarded by bus->lock */

    pthread_mutex_t lock;
    /* Everything below is guarded by lock. */
    weir_bus *bus;              /* NULL once ended */
    bool ended;
    atomic_int ntracks;         /* written under lock, read anywhere */
    weir_track tracks[WEIR_STREAM_MAX_TRACKS];
    int key_track;              /* -1 until the first write; tracks are frozen after */
    weir_sub *subs;             /* linked by weir_sub.next */

    weir_publisher_info publisher;  /* who publishes; see weir_stream_set_publisher */
    int64_t started_us;         /* CLOCK_MONOTONIC at publish */
    uint64_t packets, bytes;    /* written so far */

    AVPacket **gop;             /* gop_max slots; gop[0] is a restart point */
    int gop_max;
    int gop_count;
};

struct weir_sub {
    weir_stream *stream;        /* the sub's own reference */
    void (*notify)(void *arg);
    void *arg;
    atomic_int ntracks;         /* written under stream->lock, read anywhere */
    weir_track tracks[WEIR_STREAM_MAX_TRACKS];

    /* Guarded by stream->lock. */
    weir_sub *next;
    AVPacket **ring;            /* cap slots; count of them from head are queued */
    int cap;
    int head;
    int count;
    bool waiting_key;           /* the WAITING_KEY state of bus.h */
    weir_sub_stats stats;
};

/* ---- packet slots --------------------------------------------------------- */

/* Puts a new reference to src into the empty slot *slot. */
static int slot_ref(AVPacket **slot, const AVPacket *src)
{
    if (!*slot && !(*slot = av_packet_alloc()))
        return AVERROR(ENOMEM);
    return av_packet_ref(*slot, src);   /* leaves *slot blank on failure */
}

static void slots_free(AVPacket **slots, int n)
{
    if (!slots)
        return;
    for (int i = 0; i < n; i++)
        av_packet_free(&slots[i]);
    free(slots);
}

static void tracks_free(weir_track *tracks)
{
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++)
        avcodec_parameters_free(&tracks[i].par);
}

/* Fills the empty track dst with a copy of par.  On failure dst->par may be
 * left allocated; tracks_free releases it. */
static int track_copy(weir_track *dst, const AVCodecParameters *par, AVRational time_base)
{
    dst->par = avcodec_parameters_alloc();
    if (!dst->par)
        return AVERROR(ENOMEM);
    dst->time_base = time_base;
    return avcodec_parameters_copy(dst->par, par);
}

/* ---- GOP cache (stream->lock held) ----------------------------------------- */

static void gop_clear(weir_stream *s)
{
    for (int i = 0; i < s->gop_count; i++)
        av_packet_unref(s->gop[i]);
    s->gop_count = 0;
}

/* Keeps invariant 3: the cache restarts at every restart point, and a GOP
 * longer than the cache is thrown away (late joiners then wait for the next
 * restart point instead of starting mid-GOP). */
static void gop_add(weir_stream *s, const AVPacket *pkt, bool restart)
{
    if (restart)
        gop_clear(s);
    if (s->gop_count == 0 && !restart)
        return;
    if (s->gop_count == s->gop_max) {
        gop_clear(s);
        return;
    }
    if (slot_ref(&s->gop[s->gop_count], pkt) < 0) {
        gop_clear(s);
        return;
    }
    s->gop_count++;
}

/* ---- subscriber queue (stream->lock held) ---------------------------------- */

/* Drops every queued packet; counted in stats.dropped. */
static void sub_flush(weir_sub *sub)
{
    for (int i = 0; i < sub->count; i++)
        av_packet_unref(sub->ring[(sub->head + i) % sub->cap]);
    sub->stats.dropped += (uint64_t)sub->count;
    sub->head = 0;
    sub->count = 0;
}

/* LIVE -> WAITING_KEY: the subscriber will receive nothing until the next
 * restart point. */
static void sub_skip(weir_sub *sub)
{
    sub_flush(sub);
    sub->stats.skips++;
    if (sub->stream->bus)
        atomic_fetch_add(&sub->stream->bus->skips, 1);
    sub->waiting_key = true;
}

/* Offers one packet to one subscriber.  Never waits for it. */
static void sub_offer(weir_sub *sub, const AVPacket *pkt, bool restart)
{
    if (sub->count == sub->cap)
        sub_skip(sub);
    if (sub->waiting_key && !restart) {
        sub->stats.dropped++;
        return;
    }
    int tail = (sub->head + sub->count) % sub->cap;
    if (slot_ref(&sub->ring[tail], pkt) < 0) {
        /* It misses this packet, so what follows may not decode: skip. */
        sub_skip(sub);
        sub->stats.dropped++;
        return;
    }
    sub->waiting_key = false;
    sub->count++;
    if (sub->count == 1 && sub->notify)
        sub->notify(sub->arg);
}

/* ---- stream lifetime ----------------------------------------------------- */

static void stream_free(weir_stream *s)
{
    assert(!s->subs);   /* every sub holds a reference */
    gop_clear(s);
    slots_free(s->gop, s->gop_max);
    tracks_free(s->tracks);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int stream_new(const char *name, const weir_stream_opts *opts, weir_stream **out)
{
    int gop_max = opts ? opts->gop_cache_max : 0;
    if (gop_max == 0)
        gop_max = WEIR_STREAM_GOP_CACHE_DEFAULT;
    if (gop_max < 0)
        gop_max = 0;

    weir_stream *s = calloc(1, sizeof *s);
    if (!s)
        return AVERROR(ENOMEM);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return AVERROR(ENOMEM);
    }
    atomic_init(&s->refs, 1);
    atomic_init(&s->ntracks, 0);
    strcpy(s->name, name);      /* length checked by the caller */
    s->key_track = -1;
    s->gop_max = gop_max;
    if (gop_max > 0 && !(s->gop = calloc((size_t)gop_max, sizeof *s->gop)))
        goto fail;
    *out = s;
    return 0;
fail:
    stream_free(s);
    return AVERROR(ENOMEM);
}

/* Enters the ended state and wakes every subscriber.  Returns the bus the
 * stream was published on, or NULL when it had already ended.  Lock held. */
static weir_bus *stream_mark_ended(weir_stream *s)
{
    weir_bus *bus = s->bus;
    if (s->ended)
        return NULL;
    s->ended = true;
    s->bus = NULL;
    gop_clear(s);   /* nobody can join mid-GOP any more */
    for (weir_sub *sub = s->subs; sub; sub = sub->next)
        if (sub->notify)
            sub->notify(sub->arg);
    return bus;
}

void weir_stream_ref(weir_stream *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void weir_stream_unref(weir_stream *s)
{
    if (!s)
        return;
    int before = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel);
    assert(before > 0);
    if (before == 1)
        stream_free(s);
}

const char *weir_stream_name(const weir_stream *s)
{
    return s->name;
}

int weir_stream_ntracks(const weir_stream *s)
{
    return atomic_load(&s->ntracks);
}

/* ---- bus ----------------------------------------------------------------- */

weir_bus *weir_bus_new(void)
{
    pthread_rwlockattr_t attr;
    weir_bus *bus = calloc(1, sizeof *bus);
    if (!bus)
        return NULL;
    if (pthread_rwlockattr_init(&attr) != 0)
        goto fail;
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
    int r = pthread_rwlock_init(&bus->watch_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (r != 0)
        goto fail;
    if (pthread_mutex_init(&bus->lock, NULL) != 0) {
        pthread_rwlock_destroy(&bus->watch_lock);
        goto fail;
    }
    return bus;
fail:
    free(bus);
    return NULL;
}

int weir_bus_watch(weir_bus *bus, weir_bus_watch_fn fn, void *arg)
{
    bus_watcher *w = malloc(sizeof *w);
    if (!w)
        return AVERROR(ENOMEM);
    w->fn = fn;
    w->arg = arg;
    pthread_rwlock_wrlock(&bus->watch_lock);
    w->next = bus->watchers;
    bus->watchers = w;
    pthread_rwlock_unlock(&bus->watch_lock);
    return 0;
}

void weir_bus_unwatch(weir_bus *bus, weir_bus_watch_fn fn, void *arg)
{
    bus_watcher *gone = NULL;
    pthread_rwlock_wrlock(&bus->watch_lock);
    for (bus_watcher **link = &bus->watchers; *link; link = &(*link)->next)
        if ((*link)->fn == fn && (*link)->arg == arg) {
            gone = *link;
            *link = gone->next;
            break;
        }
    pthread_rwlock_unlock(&bus->watch_lock);
    free(gone);
}

/* Tells every watcher.  No bus or stream lock held. */
static void bus_notify_watchers(weir_bus *bus, weir_bus_event ev, weir_stream *s)
{
    pthread_rwlock_rdlock(&bus->watch_lock);
    for (bus_watcher *w = bus->watchers; w; w = w->next)
        w->fn(w->arg, ev, s);
    pthread_rwlock_unlock(&bus->watch_lock);
}

void weir_bus_free(weir_bus *bus)
{
    if (!bus)
        return;
    pthread_mutex_lock(&bus->lock);
    while (bus->streams) {
        weir_stream *s = bus->streams;
        bus->streams = s->bus_next;
        s->bus_next = NULL;
        bus->count--;
        pthread_mutex_lock(&s->lock);
        stream_mark_ended(s);
        pthread_mutex_unlock(&s->lock);
        weir_stream_unref(s);   /* the table's reference */
    }
    pthread_mutex_unlock(&bus->lock);
    pthread_mutex_destroy(&bus->lock);
    while (bus->watchers) {
        bus_watcher *w = bus->watchers;
        bus->watchers = w->next;
        free(w);
    }
    pthread_rwlock_destroy(&bus->watch_lock);
    free(bus);
}

/* Returns the published stream called name, or NULL.  bus->lock held. */
static weir_stream *bus_lookup(weir_bus *bus, const char *name)
{
    for (weir_stream *s = bus->streams; s; s = s->bus_next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static bool name_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strnlen(name, WEIR_BUS_NAME_MAX + 1);
    return len > 0 && len <= WEIR_BUS_NAME_MAX;
}

int weir_bus_publish(weir_bus *bus, const char *name, const weir_stream_opts *opts,
                     weir_stream **out)
{
    weir_stream *s = NULL;
    if (!name_valid(name))
        return AVERROR(EINVAL);
    int ret = stream_new(name, opts, &s);
    if (ret < 0)
        return ret;

    pthread_mutex_lock(&bus->lock);
    if (bus_lookup(bus, name)) {
        pthread_mutex_unlock(&bus->lock);
        ret = AVERROR(EEXIST);
        goto fail;
    }
    s->bus = bus;               /* not shared yet: no stream lock needed */
    s->started_us = weir_clock_mono_us();
    s->bus_next = bus->streams;
    bus->streams = s;
    bus->count++;
    weir_stream_ref(s);         /* one for the table, one for the publisher */
    pthread_mutex_unlock(&bus->lock);
    bus_notify_watchers(bus, WEIR_BUS_PUBLISHED, s);
    *out = s;
    return 0;
fail:
    weir_stream_unref(s);
    return ret;
}

weir_stream *weir_bus_find(weir_bus *bus, const char *name)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&bus->lock);
    weir_stream *s = bus_lookup(bus, name);
    if (s)
        weir_stream_ref(s);     /* safe: the table's reference keeps s alive */
    pthread_mutex_unlock(&bus->lock);
    return s;
}

int weir_stream_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

int weir_bus_list(weir_bus *bus, weir_stream ***out, size_t *n)
{
    weir_stream **list;
    size_t i = 0;

    pthread_mutex_lock(&bus->lock);
    list = calloc(bus->count ? bus->count : 1, sizeof *list);
    if (!list) {
        pthread_mutex_unlock(&bus->lock);
        return AVERROR(ENOMEM);
    }
    for (weir_stream *s = bus->streams; s; s = s->bus_next) {
        weir_stream_ref(s);
        list[i++] = s;
    }
    pthread_mutex_unlock(&bus->lock);
    *out = list;
    *n = i;
    return 0;
}

void weir_bus_list_free(weir_stream **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        weir_stream_unref(list[i]);
    free(list);
}

uint64_t weir_bus_skips(weir_bus *bus)
{
    return atomic_load(&bus->skips);
}

size_t weir_bus_count(weir_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    size_t n = bus->count;
    pthread_mutex_unlock(&bus->lock);
    return n;
}

/* Takes s off the table and drops the table's reference. */
static void bus_remove(weir_bus *bus, weir_stream *s)
{
    pthread_mutex_lock(&bus->lock);
    weir_stream **link = &bus->streams;
    while (*link && *link != s)
        link = &(*link)->bus_next;
    assert(*link == s);
    *link = s->bus_next;
    s->bus_next = NULL;
    bus->count--;
    pthread_mutex_unlock(&bus->lock);
    weir_stream_unref(s);
}

/* ---- publisher ----------------------------------------------------------- */

/* Appends track `index` to the stream and to every subscriber, all or
 * none.  Lock held; the caller checked that the track list is still open. */
static int stream_append_track(weir_stream *s, int index, const AVCodecParameters *par,
                               AVRational time_base)
{
    int ret;
    if ((ret = track_copy(&s->tracks[index], par, time_base)) < 0)
        goto fail;
    for (weir_sub *sub = s->subs; sub; sub = sub->next) {
        assert(atomic_load(&sub->ntracks) == index);
        if ((ret = track_copy(&sub->tracks[index], par, time_base)) < 0)
            goto fail;
    }
    for (weir_sub *sub = s->subs; sub; sub = sub->next)
        atomic_store(&sub->ntracks, index + 1);
    atomic_store(&s->ntracks, index + 1);
    return 0;
fail:
    avcodec_parameters_free(&s->tracks[index].par);
    for (weir_sub *sub = s->subs; sub; sub = sub->next)
        avcodec_parameters_free(&sub->tracks[index].par);
    return ret;
}

int weir_stream_add_track(weir_stream *s, const AVCodecParameters *par, AVRational time_base)
{
    int ret;
    if (!par)
        return AVERROR(EINVAL);
    pthread_mutex_lock(&s->lock);
    int n = atomic_load(&s->ntracks);
    if (s->ended)
        ret = AVERROR(EPIPE);
    else if (s->key_track >= 0 || n == WEIR_STREAM_MAX_TRACKS)
        ret = AVERROR(EINVAL);      /* the track list is frozen or full */
    else
        ret = stream_append_track(s, n, par, time_base);
    pthread_mutex_unlock(&s->lock);
    return ret < 0 ? ret : n;
}

/* The first video track, else track 0. */
static int pick_key_track(const weir_stream *s, int ntracks)
{
    for (int i = 0; i < ntracks; i++)
        if (s->tracks[i].par->codec_type == AVMEDIA_TYPE_VIDEO)
            return i;
    return 0;
}

int weir_stream_write(weir_stream *s, const AVPacket *pkt)
{
    int ret = 0;
    if (!pkt || !pkt->buf)
        return AVERROR(EINVAL);
    pthread_mutex_lock(&s->lock);
    int ntracks = atomic_load(&s->ntracks);
    if (s->ended) {
        ret = AVERROR(EPIPE);
        goto out;
    }
    if (pkt->stream_index < 0 || pkt->stream_index >= ntracks) {
        ret = AVERROR(EINVAL);
        goto out;
    }
    if (s->key_track < 0)
        s->key_track = pick_key_track(s, ntracks);
    bool restart = pkt->stream_index == s->key_track && (pkt->flags & AV_PKT_FLAG_KEY);
    s->packets++;
    s->bytes += (uint64_t)pkt->size;
    gop_add(s, pkt, restart);
    for (weir_sub *sub = s->subs; sub; sub = sub->next)
        sub_offer(sub, pkt, restart);
out:
    pthread_mutex_unlock(&s->lock);
    return ret;
}

void weir_stream_set_publisher(weir_stream *s, const weir_publisher_info *info)
{
    pthread_mutex_lock(&s->lock);
    s->publisher = *info;
    pthread_mutex_unlock(&s->lock);
}

void weir_stream_info_get(weir_stream *s, weir_stream_info *info)
{
    pthread_mutex_lock(&s->lock);
    info->publisher = s->publisher;
    info->uptime_us = weir_clock_mono_us() - s->started_us;
    info->packets = s->packets;
    info->bytes = s->bytes;
    info->subscribers = 0;
    for (weir_sub *sub = s->subs; sub; sub = sub->next)
        info->subscribers++;
    info->ended = s->ended;
    pthread_mutex_unlock(&s->lock);
}

int weir_stream_track_get(weir_stream *s, int track, AVCodecParameters *dst,
                          AVRational *time_base)
{
    int r = AVERROR(EINVAL);
    pthread_mutex_lock(&s->lock);
    if (track >= 0 && track < atomic_load(&s->ntracks)) {
        r = avcodec_parameters_copy(dst, s->tracks[track].par);
        if (time_base)
            *time_base = s->tracks[track].time_base;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int weir_stream_kick(weir_stream *s)
{
    int r = AVERROR(ENOTSUP);

    /* Under the lock, so the publisher cannot end (and free what kick_arg
     * points to) while kick runs. */
    pthread_mutex_lock(&s->lock);
    if (!s->ended && s->publisher.kick) {
        s->publisher.kick(s->publisher.kick_arg);
        r = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int weir_stream_publisher_stats(weir_stream *s, weir_publisher_stat *out, int max)
{
    int n = 0;

    /* Under the lock, like kick: stats_arg outlives the call. */
    pthread_mutex_lock(&s->lock);
    if (!s->ended && s->publisher.stats && max > 0)
        n = s->publisher.stats(s->publisher.stats_arg, out, max);
    pthread_mutex_unlock(&s->lock);
    return n < 0 ? 0 : n > max ? max : n;
}

void weir_stream_end(weir_stream *s)
{
    pthread_mutex_lock(&s->lock);
    weir_bus *bus = stream_mark_ended(s);   /* NULL if weir_bus_free got here first */
    pthread_mutex_unlock(&s->lock);
    if (bus) {
        bus_remove(bus, s);
        bus_notify_watchers(bus, WEIR_BUS_ENDED, s);
    }
    weir_stream_unref(s);   /* the publisher's reference */
}

/* ---- subscriber ---------------------------------------------------------- */

static void sub_free(weir_sub *sub)
{
    slots_free(sub->ring, sub->cap);
    tracks_free(sub->tracks);
    free(sub);
}

static int sub_new(const weir_sub_opts *opts, weir_sub **out)
{
    int cap = opts ? opts->queue_len : 0;
    if (cap < 0)
        return AVERROR(EINVAL);
    if (cap == 0)
        cap = WEIR_SUB_QUEUE_DEFAULT;

    weir_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return AVERROR(ENOMEM);
    atomic_init(&sub->ntracks, 0);
    sub->cap = cap;
    sub->notify = opts ? opts->notify : NULL;
    sub->arg = opts ? opts->arg : NULL;
    if (!(sub->ring = calloc((size_t)cap, sizeof *sub->ring)))
        goto fail;
    *out = sub;
    return 0;
fail:
    sub_free(sub);
    return AVERROR(ENOMEM);
}

/* Snapshots the tracks and pre-fills the queue from the GOP cache when it
 * fits; otherwise the sub waits for the next restart point.  Lock held; the
 * sub is not linked yet. */
static int sub_attach(weir_stream *s, weir_sub *sub)
{
    int ret;
    int ntracks = atomic_load(&s->ntracks);
    for (int i = 0; i < ntracks; i++)
        if ((ret = track_copy(&sub->tracks[i], s->tracks[i].par, s->tracks[i].time_base)) < 0)
            return ret;
    atomic_store(&sub->ntracks, ntracks);

    sub->waiting_key = true;
    if (s->gop_count == 0 || s->gop_count > sub->cap)
        return 0;
    for (int i = 0; i < s->gop_count; i++)
        if ((ret = slot_ref(&sub->ring[i], s->gop[i])) < 0)
            return ret;         /* sub_free releases what was filled */
    sub->count = s->gop_count;
    sub->waiting_key = false;
    return 0;
}

int weir_stream_subscribe(weir_stream *s, const weir_sub_opts *opts, weir_sub **out)
{
    weir_sub *sub = NULL;
    int ret = sub_new(opts, &sub);
    if (ret < 0)
        return ret;
    pthread_mutex_lock(&s->lock);
    if ((ret = sub_attach(s, sub)) < 0) {
        pthread_mutex_unlock(&s->lock);
        goto fail;
    }
    weir_stream_ref(s);
    sub->stream = s;
    sub->next = s->subs;
    s->subs = sub;
    pthread_mutex_unlock(&s->lock);
    *out = sub;
    return 0;
fail:
    sub_free(sub);
    return ret;
}

int weir_sub_ntracks(const weir_sub *sub)
{
    return atomic_load(&sub->ntracks);
}

const AVCodecParameters *weir_sub_codecpar(const weir_sub *sub, int track, AVRational *time_base)
{
    if (track < 0 || track >= atomic_load(&sub->ntracks))
        return NULL;
    if (time_base)
        *time_base = sub->tracks[track].time_base;
    return sub->tracks[track].par;
}

int weir_sub_read(weir_sub *sub, AVPacket *out)
{
    weir_stream *s = sub->stream;
    int ret = 0;
    av_packet_unref(out);
    pthread_mutex_lock(&s->lock);
    if (sub->count == 0) {
        ret = s->ended ? AVERROR_EOF : AVERROR(EAGAIN);
        goto out;
    }
    av_packet_move_ref(out, sub->ring[sub->head]);
    sub->head = (sub->head + 1) % sub->cap;
    sub->count--;
    sub->stats.delivered++;
out:
    pthread_mutex_unlock(&s->lock);
    return ret;
}

void weir_sub_stats_get(weir_sub *sub, weir_sub_stats *st)
{
    pthread_mutex_lock(&sub->stream->lock);
    *st = sub->stats;
    pthread_mutex_unlock(&sub->stream->lock);
}

void weir_sub_close(weir_sub *sub)
{
    if (!sub)
        return;
    weir_stream *s = sub->stream;
    pthread_mutex_lock(&s->lock);
    weir_sub **link = &s->subs;
    while (*link != sub)
        link = &(*link)->next;
    *link = sub->next;
    pthread_mutex_unlock(&s->lock);
    sub_free(sub);
    weir_stream_unref(s);
}
