/*
 * core/bus.h — the stream bus: one publisher, many subscribers per named stream.
 *
 * Ingest publishes a stream (codec parameters per track, then compressed
 * AVPackets); transcode, the packager and anything else subscribe to it.
 * Publishing a packet gives every subscriber a new reference to the same
 * AVBufferRef data: the media bytes are never copied.
 *
 *   publisher --write--> [stream "live/abc"] --+--> sub A queue --> read
 *                         GOP cache             +--> sub B queue --> read
 *                                               +--> sub C queue --> read
 *
 * Each subscriber has a bounded queue.  The publisher NEVER waits for a
 * subscriber: when a queue is full, the subscriber is "skipped": its queued
 * packets are dropped and it receives nothing more until the next keyframe of
 * the key track, so what it does receive always decodes.  Skips and dropped
 * packets are counted (weir_sub_stats_get).
 *
 * Key track: the first video track, or track 0 when there is no video.  It is
 * decided at the first weir_stream_write; tracks cannot be added after that.
 * A "restart point" is a packet of the key track with AV_PKT_FLAG_KEY.  In an
 * audio-only stream every packet is a restart point.
 *
 * A subscriber's state machine:
 *
 *            subscribe, GOP cache fits the queue (pre-filled)
 *        +-------------------------------------------------+
 *        |                                                 v
 *   [subscribe]--(no cache / too big)-->[WAITING_KEY]--restart point-->[LIVE]
 *                                             ^                         |
 *                                             +---- queue full (skip) --+
 *   any state --stream ended--> reads drain the queue, then AVERROR_EOF
 *
 *   transition                         function
 *   subscribe -> LIVE or WAITING_KEY   weir_stream_subscribe
 *   WAITING_KEY -> LIVE                weir_stream_write (restart point)
 *   LIVE -> WAITING_KEY (skip)         weir_stream_write (queue full)
 *   -> ended                           weir_stream_end, weir_bus_free
 *
 * Invariants:
 *   1. A subscriber's first packet, and its first packet after every skip, is
 *      a restart point.  Packets it receives keep the publisher's order.
 *   2. For every packet offered to a subscriber after it subscribed (written
 *      by the publisher or pre-filled from the GOP cache), exactly one of:
 *      delivered by weir_sub_read, counted in `dropped`, or still queued.
 *      So a subscriber that subscribed before the first write and has read
 *      to AVERROR_EOF has delivered + dropped == packets written.
 *   3. The GOP cache holds the packets since the last restart point, starting
 *      with that restart point, or nothing (before the first restart point,
 *      after a GOP longer than gop_cache_max, after the stream ended).
 *   4. No bus function blocks on a consumer.  The only waits are on a
 *      stream's mutex, which every function holds briefly.
 *
 * Waking consumers: weir_sub_opts.notify is edge-triggered.  It fires when a
 * push finds the queue empty (also right after a skip emptied it) and once at
 * end-of-stream, so a consumer reads until AVERROR(EAGAIN) after each
 * notify, and before its first wait.
 *
 * Threads: the publisher (one thread at a time calls add_track/write/end),
 * each subscriber (one thread at a time per weir_sub) and the bus functions
 * may all run on different threads.  Each stream has one mutex guarding its
 * subscriber list, queues and GOP cache; the bus has one mutex for its name
 * table.  Streams are refcounted; a weir_stream pointer stays valid for as
 * long as its holder keeps a reference.
 *
 * Errors are 0 or a negative AVERROR code.
 */
#ifndef WEIR_CORE_BUS_H
#define WEIR_CORE_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>   /* AVPacket, AVCodecParameters */

#define WEIR_BUS_NAME_MAX             255   /* bytes, without the NUL */
#define WEIR_STREAM_MAX_TRACKS        8
#define WEIR_STREAM_GOP_CACHE_DEFAULT 1024  /* packets */
#define WEIR_SUB_QUEUE_DEFAULT        256   /* packets */

typedef struct weir_bus weir_bus;
typedef struct weir_stream weir_stream;
typedef struct weir_sub weir_sub;

typedef struct weir_stream_opts {
    int gop_cache_max;  /* packets; 0 -> default 1024; <0 disables cache */
} weir_stream_opts;

typedef struct weir_sub_opts {
    int queue_len;                       /* 0 -> default 256 */
    void (*notify)(void *arg);           /* optional: called when the queue goes empty->non-empty or on end-of-stream; called WITH the stream lock held, from the publisher's thread: must not block and must not call bus functions */
    void *arg;
} weir_sub_opts;

typedef struct weir_sub_stats {
    uint64_t delivered;  /* packets returned by weir_sub_read */
    uint64_t skips;      /* times the subscriber was skipped forward (queue full) */
    uint64_t dropped;    /* packets it never received: flushed from its queue, or
                            discarded while it waited for a restart point */
} weir_sub_stats;

/* ---- bus: the table of published names ---------------------------------- */

/* Returns a new, empty bus owned by the caller (free with weir_bus_free),
 * or NULL on ENOMEM. */
weir_bus *weir_bus_new(void);

/* Frees the bus.  Streams still published are ended first (their subscribers
 * drain, then read AVERROR_EOF; their publishers get AVERROR(EPIPE) from
 * weir_stream_write and must still call weir_stream_end to drop their
 * reference).  Stream and subscriber objects stay valid for as long as they
 * hold references; they no longer point at the bus.  Call it only when no
 * other thread calls weir_bus_* on this bus or weir_stream_end on its
 * streams.  NULL is a no-op. */
void weir_bus_free(weir_bus *bus);

/* Publishes a new stream named `name` (1..WEIR_BUS_NAME_MAX bytes, copied).
 * opts may be NULL (defaults).  On 0, *out (OUT) holds the publisher's
 * reference: the caller adds tracks, writes, and finally calls
 * weir_stream_end exactly once, which drops that reference.
 * Returns AVERROR(EEXIST) when that name already has a publisher,
 * AVERROR(EINVAL) for a bad name or opts, AVERROR(ENOMEM). */
int weir_bus_publish(weir_bus *bus, const char *name, const weir_stream_opts *opts /* may be NULL */, weir_stream **out);

/* Returns a new reference to the stream published as `name`, which the caller
 * drops with weir_stream_unref, or NULL when there is none. */
weir_stream *weir_bus_find(weir_bus *bus, const char *name);

/* Number of streams currently published (published and not yet ended). */
size_t weir_bus_count(weir_bus *bus);
/* 1 if name is a valid user-facing stream name (it appears in playback
 * URLs): 1..64 of [A-Za-z0-9_-].  The bus itself takes any 1..255 bytes. */
int weir_stream_name_valid(const char *name);
/* Every published stream, each with a new reference: *out is a malloc'd
 * array of *n streams; release with weir_bus_list_free(). */
int weir_bus_list(weir_bus *bus, weir_stream ***out, size_t *n);
void weir_bus_list_free(weir_stream **list, size_t n);
/* Skips of every subscriber on this bus so far (a metric). */
uint64_t weir_bus_skips(weir_bus *bus);

/* ---- watchers: streams coming and going ---------------------------------- */

typedef enum weir_bus_event {
    WEIR_BUS_PUBLISHED = 1,     /* weir_bus_publish succeeded; no track added yet */
    WEIR_BUS_ENDED,             /* weir_stream_end took the name off the bus */
} weir_bus_event;

/* A watcher.  It runs on the publisher's thread with no bus or stream lock
 * held: for PUBLISHED inside weir_bus_publish, after the name is taken and
 * before the publisher gets the stream (so a subscription made here misses
 * no packet); for ENDED inside weir_stream_end, after subscribers were woken
 * and the name freed.  s is valid for the call; weir_stream_ref it to keep
 * it.  fn may call bus functions (subscribe, even publish) except
 * weir_bus_watch and weir_bus_unwatch, and should return quickly: the
 * publisher waits for it.  weir_bus_free ends streams without ENDED events. */
typedef void (*weir_bus_watch_fn)(void *arg, weir_bus_event ev, weir_stream *s);

/* Adds the watcher fn(arg, ...) for streams published or ended from now on.
 * Streams published earlier are not replayed: a caller that needs them calls
 * weir_bus_list after weir_bus_watch and copes with seeing a stream twice.
 * Any thread.  Returns 0 or AVERROR(ENOMEM). */
int weir_bus_watch(weir_bus *bus, weir_bus_watch_fn fn, void *arg);

/* Removes the watcher added as (fn, arg).  Once it returns, fn is not
 * running for it and never runs again, so arg may be freed.  Any thread
 * except inside a watcher.  A pair that is not watching is a no-op. */
void weir_bus_unwatch(weir_bus *bus, weir_bus_watch_fn fn, void *arg);

/* ---- stream: the publisher's side ---------------------------------------- */

/* Adds a track.  par is copied (the caller keeps its own); time_base is the
 * unit of the track's packet timestamps.  Existing subscribers get the track
 * too.  Returns the track index (0, 1, ...), or AVERROR(EINVAL) once packets
 * were written, when WEIR_STREAM_MAX_TRACKS tracks exist or par is NULL;
 * AVERROR(EPIPE) after the stream ended; AVERROR(ENOMEM). */
int weir_stream_add_track(weir_stream *s, const AVCodecParameters *par, AVRational time_base);

/* Offers pkt to every subscriber and to the GOP cache.  pkt->stream_index is
 * the track; pkt must be refcounted (pkt->buf set).  The bus takes its own
 * references; the caller keeps its packet (and unrefs it as usual).  Returns
 * AVERROR(EINVAL) for a bad track or an unrefcounted packet, AVERROR(EPIPE)
 * after the stream ended.  Never blocks on a subscriber.  A subscriber the
 * bus cannot give a reference to (ENOMEM) is skipped as if its queue were
 * full; the publisher still gets 0. */
int weir_stream_write(weir_stream *s, const AVPacket *pkt);

/* The publisher is done: the name is freed on the bus at once (a new
 * publisher may take it), subscribers drain their queues then read
 * AVERROR_EOF, the GOP cache is released, and the publisher's reference is
 * dropped — s must not be used afterwards unless the caller holds another
 * reference.  Call exactly once per weir_bus_publish. */
/* What the publisher tells the API about itself.  kick(kick_arg), if set, is
 * called by weir_stream_kick() from any thread, with the stream's lock held
 * (so never after weir_stream_end returned): it must only ask the publisher
 * to stop (e.g. weir_loop_post) and return, calling no bus function. */
/* One transport statistic of a publisher: name is a static string
 * ("rtt_ms", "packets_lost", ...). */
typedef struct weir_publisher_stat {
    const char *name;
    double value;
} weir_publisher_stat;

typedef struct weir_publisher_info {
    char protocol[16];          /* "rtmp", "srt", ... */
    char remote[64];            /* peer address "1.2.3.4:5678" */
    char encoder[64];           /* as the encoder names itself, or "" */
    AVRational framerate;       /* {0,1} when unknown */
    void (*kick)(void *arg);
    void *kick_arg;
    /* Optional: the transport's statistics (SRT's RTT, loss, ...).  Called
     * like kick: from weir_stream_publisher_stats, any thread, with the
     * stream's lock held, never after weir_stream_end returned; fills at
     * most max entries of out and returns how many; must not block or call
     * bus functions. */
    int (*stats)(void *arg, weir_publisher_stat *out, int max);
    void *stats_arg;
} weir_publisher_info;

void weir_stream_set_publisher(weir_stream *s, const weir_publisher_info *info);   /* copied */

typedef struct weir_stream_info {
    weir_publisher_info publisher;
    int64_t uptime_us;          /* since publish */
    uint64_t packets, bytes;    /* written so far */
    int subscribers;
    int ended;
} weir_stream_info;

void weir_stream_info_get(weir_stream *s, weir_stream_info *info /* OUT */);
/* Copies track `track`'s codec parameters into dst (caller-owned).  0 or
 * AVERROR(EINVAL) for a bad track. */
int weir_stream_track_get(weir_stream *s, int track, AVCodecParameters *dst,
                          AVRational *time_base /* OUT, may be NULL */);
/* Asks the publisher to disconnect.  0, or AVERROR(ENOTSUP) when it set no
 * kick function (or the stream ended). */
int weir_stream_kick(weir_stream *s);
/* The publisher's transport statistics into out (OUT, at most max): how
 * many, 0 when it reports none or the stream ended. */
int weir_stream_publisher_stats(weir_stream *s, weir_publisher_stat *out, int max);
void weir_stream_end(weir_stream *s);

/* The stream's name; owned by the stream, valid while the caller holds a
 * reference. */
const char *weir_stream_name(const weir_stream *s);

/* Number of tracks added so far. */
int weir_stream_ntracks(const weir_stream *s);

/* Takes one more reference to s; any thread. */
void weir_stream_ref(weir_stream *s);

/* Drops one reference; at zero the stream is freed, with its tracks and every
 * packet in its GOP cache.  Any thread.  NULL is a no-op. */
void weir_stream_unref(weir_stream *s);

/* ---- subscriber side ----------------------------------------------------- */

/* Subscribes to s; opts may be NULL (defaults).  On 0, *out (OUT) is owned by
 * the caller and freed with weir_sub_close; the sub holds its own stream
 * reference, so the caller may drop its own.  The sub gets a snapshot of the
 * stream's codec parameters, and its queue is pre-filled from the GOP cache
 * when the cached GOP fits (otherwise it starts at the next restart point).
 * notify is not called for the pre-fill: read until AVERROR(EAGAIN) right
 * after subscribing.  Subscribing to an ended stream succeeds; its reads
 * return AVERROR_EOF.  Returns AVERROR(EINVAL) for queue_len < 0,
 * AVERROR(ENOMEM). */
int weir_stream_subscribe(weir_stream *s, const weir_sub_opts *opts /* may be NULL */, weir_sub **out);

/* Number of tracks in the sub's snapshot.  Tracks added by a publisher after
 * the subscription (possible only before its first packet) are appended, so
 * the count is final once weir_sub_read has returned a packet. */
int weir_sub_ntracks(const weir_sub *sub);

/* Codec parameters of a track, or NULL for a bad track index.  Also stores
 * the track's time base in *time_base (OUT) when not NULL.
 * snapshot taken at subscribe; owned by the sub, valid until weir_sub_close */
const AVCodecParameters *weir_sub_codecpar(const weir_sub *sub, int track, AVRational *time_base /* OUT, may be NULL */);

/* Takes the oldest queued packet.  Whatever *out held is unreferenced first.
 * 0: *out holds a new reference the caller must av_packet_unref;
 * AVERROR(EAGAIN): nothing yet (wait for notify, or poll);
 * AVERROR_EOF: the stream ended and the queue is drained.  Never blocks on
 * the publisher beyond the stream mutex. */
int weir_sub_read(weir_sub *sub, AVPacket *out);

/* Copies the sub's counters into *st (OUT). */
void weir_sub_stats_get(weir_sub *sub, weir_sub_stats *st);

/* Unsubscribes and frees the sub: its queued packets and codec parameters
 * are released and its stream reference dropped.  Once it returns, notify is
 * never called for this sub again, so notify's arg may be freed.  Must not
 * run concurrently with other calls on the same sub.  NULL is a no-op. */
void weir_sub_close(weir_sub *sub);                /* frees its queue and drops its stream reference */

#endif /* WEIR_CORE_BUS_H */
