/*
 * ingest/srt/srt_server.c — SRT publishers in, streams on the bus out.
 *
 * Threads and what blocks where:
 *
 *   libsrt's receiver thread   on_listen(): parses the stream id, refuses
 *                              bad ids, wrong modes, overload, wrong keys
 *                              and duplicate publishers BEFORE the handshake
 *                              completes, with SRT reject reasons.  This
 *                              thread also receives every live stream on the
 *                              port, so the only wait is for the key store:
 *                              answers from the last 5 s are reused, and a
 *                              new key waits at most srt.auth_wait (100 ms),
 *                              within srt.auth_wait of waiting per second and
 *                              8 checks in flight (srt_auth.h).  A key not
 *                              answered by then is accepted and decided by
 *                              the connection's thread (refused keys then
 *                              close after accept, without a reason).
 *   the SRT thread (one)       srt_epoll_uwait on the listener (100 ms ticks):
 *                              srt_accept, start a connection thread, reap
 *                              finished ones (pthread_join of a thread that
 *                              already said it is done: no wait), and once a
 *                              second sample every publisher's srt_bstats for
 *                              the API and /metrics.
 *   a thread per connection    authorise, claim the name, demux.  It blocks
 *                              only on its own socket (its own srt_epoll with
 *                              a 200 ms timeout, so it sees `stop`) and on
 *                              the key table while the loop runs a key check
 *                              the handshake did not see answered.  One slow or stuck
 *                              publisher therefore never delays the listener
 *                              or another publisher.  (A thread per
 *                              connection is fine for tens of publishers; a
 *                              single demux thread fed by srt_epoll would
 *                              scale further.)
 *   the loop                   runs the publish-auth function and its done
 *                              callback, which only fills in the key table
 *                              and wakes its waiters.
 *
 * A connection's state machine (all on its own thread unless noted):
 *
 *   [listen cb]--refuse (bad id, m!=publish, overload, key, duplicate)--> SRT rejects
 *        |                                                            the caller
 *        | accept (SRT thread)
 *        v
 *   AUTHORIZING --open: name valid / keys: done(0)--> CLAIMING
 *        |                                               | weir_bus_publish ok
 *        | refused, timeout, stop                        v
 *        |                                          PROBING --streams found--> HOLDING
 *        |                             EEXIST+takeover: kick, retry 50 ms x40     |
 *        |                                               |     every track's      | parameters
 *        |                                               |     known, or 5 s held  v
 *        |                                               |                    STREAMING
 *        v                                               | bad TS, codec          | EOF, idle,
 *      CLOSED <----------------------------------------- +----------------------+ kick, stop
 *        (weir_stream_end, srt_close, done=1; the SRT thread joins and frees)
 *
 *   HOLDING: the bus fixes tracks at the first write, and a track's bus
 *   parameters (avcC/hvcC, AAC's AudioSpecificConfig) may come only with its
 *   first keyframe or ADTS frame, so converted packets wait (bounded) until
 *   every track is known; tracks still unknown after the wait are dropped.
 *
 *   transition               function
 *   -> refused               on_listen
 *   -> AUTHORIZING           accept_one (starts conn_main)
 *   AUTHORIZING -> CLAIMING  authorize (weir_srt_auth_check; usually answered already)
 *   CLAIMING -> PROBING      claim
 *   PROBING -> HOLDING       demux (avformat_find_stream_info), select_tracks
 *   HOLDING -> STREAMING     on_packet -> start_stream (add_tracks, held packets out)
 *   -> CLOSED                conn_main's exit path, reap
 *
 * Invariants:
 *   1. Only the connection's thread calls bus functions for its stream and
 *      closes its socket; kick (any thread, under the stream lock) only sets
 *      `stop`, which the thread sees within 200 ms.
 *   2. Loop callbacks touch only the key table (refcounted, one reference per
 *      check in flight), never a connection or the server, so they may run
 *      after weir_srt_server_free (in weir_loop_free's drain).  A connection
 *      is freed by reap once its thread said it is done.
 *   3. Every bus packet has a DTS in 1/1000 that never goes back on its
 *      track, starting near 0 (the first DTS of the connection is the origin).
 *   4. The stream key is never logged.
 *   5. Bus packets are in the ISO form RTMP delivers: H.264/HEVC as 4-byte
 *      length-prefixed NAL units under avcC/hvcC, AAC raw under an ASC; a
 *      video track starts at a keyframe.
 */
#include "ingest/srt/srt_server.h"
#include "ingest/srt/srt_auth.h"
#include "ingest/srt/srt_streamid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/norm.h"
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <srt/access_control.h>
#include <srt/srt.h>

#define DEFAULT_LATENCY_MS      120
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_IDLE_MS         10000
#define RECV_TIMEOUT_MS         200     /* how soon a blocked read sees `stop` */
#define EPOLL_TICK_MS           100
#define AUTH_TIMEOUT_US         10000000    /* the connection's thread, after accept */
#define DEFAULT_AUTH_WAIT_MS    100         /* the handshake: below the default latency */
#define AUTH_MAX_INFLIGHT       8
#define AUTH_TTL_US             5000000
#define PROBE_TIMEOUT_US        10000000    /* connect to first packet on the bus */
#define PROBE_SIZE              (2 << 20)
#define ANALYZE_US              (2 * AV_TIME_BASE)
#define IO_BUF                  32768
#define TAKEOVER_RETRY_US       50000
#define TAKEOVER_TRIES          40      /* 2 s, as RTMP */
#define LIVE_PAYLOAD_MAX        1500    /* >= SRT live payload (1456) */
#define HOLD_MAX_MS             5000    /* media held back while parameters are unknown */
#define HOLD_MAX_PACKETS        4096
#define HOLD_MAX_BYTES          (32u << 20)
#define KEYED_RING              256     /* handshakes that set a key's passphrase */
#define DEFAULT_MAX_BITRATE     100000000   /* bits/s */
#define DEFAULT_RATE_WINDOW_MS  5000
#define RATE_SAMPLES            61      /* one a second: a window of up to 60 s */

typedef struct conn conn;

/* One second's view of a publisher's SRT link (srt_bstats), sampled by
 * the SRT thread. */
typedef struct srt_sample {
    double rtt_ms, lost, retrans, dropped, rate_mbps, buffer_ms;
} srt_sample;

/* Each statistic once: its name in the API's "transport" object, and as a
 * Prometheus family labelled by stream (a callback family, so a stream's
 * series go when it ends: no label set outlives its publisher). */
static const struct srt_stat {
    const char *api, *metric, *help;
    weir_metric_type type;
    size_t offset;                  /* into srt_sample */
    double scale;                   /* API unit -> the metric's base unit */
} srt_stats[] = {
    { "rtt_ms", "weir_srt_rtt_seconds", "Round-trip time to the SRT publisher",
      WEIR_METRIC_GAUGE, offsetof(srt_sample, rtt_ms), 1e-3 },
    { "packets_lost", "weir_srt_received_packets_lost_total",
      "SRT packets found missing on arrival (most are then retransmitted)",
      WEIR_METRIC_COUNTER, offsetof(srt_sample, lost), 1 },
    { "packets_retransmitted", "weir_srt_received_packets_retransmitted_total",
      "Retransmitted SRT packets received", WEIR_METRIC_COUNTER, offsetof(srt_sample, retrans), 1 },
    { "packets_dropped", "weir_srt_received_packets_dropped_total",
      "SRT packets given up on, too late to play: media lost",
      WEIR_METRIC_COUNTER, offsetof(srt_sample, dropped), 1 },
    { "receive_rate_mbps", "weir_srt_receive_bytes_per_second",
      "SRT receive rate over the last second", WEIR_METRIC_GAUGE,
      offsetof(srt_sample, rate_mbps), 1e6 / 8 },
    { "receive_buffer_ms", "weir_srt_receive_buffer_seconds",
      "Media in the SRT receive buffer, not yet delivered", WEIR_METRIC_GAUGE,
      offsetof(srt_sample, buffer_ms), 1e-3 },
};
#define NSTATS ((int)(sizeof srt_stats / sizeof srt_stats[0]))

typedef struct stat_arg {
    weir_srt_server *srv;
    int i;
} stat_arg;

/* One demuxer stream on its way to the bus (the connection's thread only). */
typedef struct track_in {
    int used;                       /* goes on the bus (once its parameters are known) */
    int bus;                        /* its bus track; -1 before start or when dropped */
    int video;
    int keyed;                      /* video: a keyframe came; earlier packets are dropped */
    weir_norm *norm;                /* demuxer form -> bus form (core/norm.h) */
    const AVCodecParameters *par;   /* the bus's parameters (owned by norm); NULL until known */
} track_in;

struct weir_srt_server {
    weir_loop *loop;
    weir_bus *bus;
    weir_ingest_settings settings;
    weir_srt_auth *keys;            /* ingest.auth=keys: the handshake's key table */
    int64_t auth_wait_us;           /* the most one handshake waits for the key store */
    char passphrase[80];            /* a secret: never logged */
    int pbkeylen;                   /* bytes: 0 (the caller's or 16), 16, 24, 32 */
    int64_t latency_ms, max_connections, max_streamid, idle_ms;

    SRTSOCKET lsn;
    int eid;
    int port;
    pthread_t thread;
    int thread_started;
    atomic_int quit;
    atomic_int nconns;              /* accepted, not yet reaped */
    atomic_int publishers;
    conn *conns;                    /* changed by the SRT thread only, under stats_mu */
    pthread_mutex_t stats_mu;       /* conns' links, and every conn's sample */
    int64_t sampled_us;             /* SRT thread */
    weir_metric *stat_metric[NSTATS];
    stat_arg stat_args[NSTATS];
    weir_metric_child *rx_bytes;
    weir_metric_child *publishers_gauge;
    int64_t max_bitrate, rate_window_us;
    weir_metric *over_rate_metric;      /* weir_srt_bitrate_exceeded_total */
    weir_metric_child *over_rate;

    /* Sockets whose handshake set their key's own passphrase (on_listen),
     * looked up once accepted.  A ring: a socket pushed out by 256 newer
     * handshakes reads as not set, and is closed if its key has one (fail
     * closed; the caller's retry is decided in its handshake). */
    pthread_mutex_t keyed_mu;
    SRTSOCKET keyed[KEYED_RING];
    unsigned keyed_next;
};

struct conn {
    weir_srt_server *srv;           /* valid while the thread runs */
    SRTSOCKET sock;
    int eid;                        /* this socket alone: reads wait here */
    pthread_t thread;
    atomic_int stop;                /* kick, shutdown */
    atomic_int done;                /* the thread is about to return */
    conn *next;
    char remote[64];
    weir_srt_streamid id;           /* id.key is a secret */
    char name[WEIR_BUS_NAME_MAX + 1];
    const char *why;                /* why it closed, for the one log line */
    int decided;                    /* its handshake set the key's passphrase */
    atomic_int publishing;          /* name and stream set: the SRT thread samples it */

    /* statistics */
    srt_sample sample;              /* under srv->stats_mu */
    int has_sample;                 /* under srv->stats_mu */
    uint64_t prev_bytes;            /* SRT thread: for the receive rate */
    int64_t prev_us;
    /* SRT thread: byteRecvTotal once a second, for srt.max_bitrate */
    uint64_t rate_bytes[RATE_SAMPLES];
    int64_t rate_us[RATE_SAMPLES];
    int rate_n, rate_next;
    atomic_int over_rate;           /* disconnected for srt.max_bitrate */

    /* socket reads */
    uint8_t msg[LIVE_PAYLOAD_MAX];
    int msg_len, msg_off;
    int64_t last_rx_us, deadline_us;
    uint64_t rx_bytes;

    /* the stream */
    weir_stream *stream;
    int counted;
    track_in in[WEIR_STREAM_MAX_TRACKS * 4];    /* per demuxer stream */
    int nin;
    int started;                    /* tracks added: packets go straight to the bus */
    AVPacket **held;                /* waiting for every track's parameters */
    int nheld, held_cap;
    size_t held_bytes;
    int64_t held_first_ms, held_last_ms;
    int64_t last_dts[WEIR_STREAM_MAX_TRACKS];
    int64_t origin;                 /* first DTS (ms), AV_NOPTS_VALUE until seen */
    uint64_t packets, clamped, dropped;
    int64_t started_us;
};


static void conn_free(conn *c)
{
    memset(&c->id, 0, sizeof c->id);   /* the key */
    free(c);
}

static void remote_of(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, cap, "%s:%d", host, port);
}

/* ---- listen callback: refuse before the handshake completes ----------------- */

static int refuse(SRTSOCKET ns, const char *remote, int reason, const char *why)
{
    weir_log_warn("srt", "connection refused", WL_STR("remote", remote), WL_STR("reason", why),
                  WL_INT("reject", reason));
    srt_setrejectreason(ns, reason);
    return -1;
}

/* The key's own passphrase on the caller's socket, inside the handshake:
 * libsrt then refuses a caller without it (SRT_REJ_UNSECURE) or with
 * another (SRT_REJ_BADSECRET) before any media flows.  It overrides
 * srt.passphrase, which the socket inherited from the listener. */
static int set_key_passphrase(weir_srt_server *srv, SRTSOCKET ns, const char *remote,
                              const char *passphrase)
{
    if (!passphrase[0])
        return 0;
    if (srt_setsockflag(ns, SRTO_PASSPHRASE, passphrase, (int)strlen(passphrase)) < 0 ||
        srt_setsockflag(ns, SRTO_PBKEYLEN, &srv->pbkeylen, sizeof srv->pbkeylen) < 0)
        return refuse(ns, remote, SRT_REJX_ISE, "cannot set the stream key's passphrase");
    pthread_mutex_lock(&srv->keyed_mu);
    srv->keyed[srv->keyed_next++ % KEYED_RING] = ns;
    pthread_mutex_unlock(&srv->keyed_mu);
    return 0;
}

/* Did ns's handshake set its key's passphrase?  Forgets it (once per socket). */
static int keyed_take(weir_srt_server *srv, SRTSOCKET ns)
{
    int found = 0;

    pthread_mutex_lock(&srv->keyed_mu);
    for (int i = 0; i < KEYED_RING && !found; i++)
        if (srv->keyed[i] == ns) {
            srv->keyed[i] = SRT_INVALID_SOCK;
            found = 1;
        }
    pthread_mutex_unlock(&srv->keyed_mu);
    return found;
}

/* Which stream the caller would publish, decided inside the handshake.
 * 0 and name; 1: accept and let the connection's thread finish the key
 * check; or a refusal (reject reason set, logged). */
static int listen_name(weir_srt_server *srv, SRTSOCKET ns, const char *remote,
                       const weir_srt_streamid *id, char name[WEIR_BUS_NAME_MAX + 1])
{
    char passphrase[WEIR_SRT_PASSPHRASE_MAX + 1];
    int r;

    if (srv->settings.auth == WEIR_INGEST_AUTH_OPEN) {
        if (!weir_stream_name_valid(id->key))
            return refuse(ns, remote, SRT_REJX_BAD_REQUEST,
                          "bad stream name (1-64 of A-Z a-z 0-9 _ -)");
        memcpy(name, id->key, strlen(id->key) + 1);     /* valid: at most 64 bytes */
        return 0;
    }
    r = weir_srt_auth_check(srv->keys, id->key, srv->auth_wait_us, 1, NULL, name, passphrase);
    if (r == 0) {
        r = set_key_passphrase(srv, ns, remote, passphrase);
        memset(passphrase, 0, sizeof passphrase);
        return r;
    }
    switch (r) {
    case AVERROR(EAGAIN): return 1;     /* still being checked: decided after accept */
    case AVERROR(EACCES): return refuse(ns, remote, SRT_REJX_UNAUTHORIZED,
                                        "unknown or revoked stream key");
    case AVERROR(EBUSY):  return refuse(ns, remote, SRT_REJX_OVERLOAD,
                                        "too many stream key checks at once");
    default:              return refuse(ns, remote, SRT_REJX_ISE, "key store unavailable");
    }
}

/* libsrt's receiver thread, which also receives every live stream on the
 * port: nothing here may block for long.  The key check waits at most
 * srt.auth_wait, within a budget per second (srt_auth.h), and the bus and
 * counters answer at once.  The stream id carries the key: never logged. */
static int on_listen(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
                     const char *streamid)
{
    weir_srt_server *srv = opaque;
    weir_srt_streamid *id;
    char remote[64], name[WEIR_BUS_NAME_MAX + 1];
    size_t n = streamid ? strnlen(streamid, WEIR_SRT_STREAMID_MAX + 1) : 0;
    int r = 0;

    (void)hsversion;
    remote_of(peer, remote, sizeof remote);
    if (atomic_load(&srv->quit))
        return refuse(ns, remote, SRT_REJX_DOWN, "server stopping");
    if ((int64_t)n > srv->max_streamid)
        return refuse(ns, remote, SRT_REJX_BAD_REQUEST, "stream id too long (srt.max_streamid)");
    if (atomic_load(&srv->nconns) >= srv->max_connections)
        return refuse(ns, remote, SRT_REJX_OVERLOAD, "srt.max_connections reached");
    if (atomic_load(&srv->publishers) >= srv->settings.max_publishers)
        return refuse(ns, remote, SRT_REJX_OVERLOAD, "ingest.max_publishers reached");
    if (!(id = malloc(sizeof *id)))
        return refuse(ns, remote, SRT_REJX_ISE, "out of memory");
    if (weir_srt_streamid_parse(streamid ? streamid : "", n, id) < 0)
        r = refuse(ns, remote, SRT_REJX_BAD_REQUEST, id->why);
    else if (id->mode != WEIR_SRT_MODE_PUBLISH)
        r = refuse(ns, remote, SRT_REJX_BAD_MODE,
                   id->mode == WEIR_SRT_MODE_REQUEST
                       ? "only publishing is served: send m=publish (the SRT default is request)"
                       : "only publishing is served: m=bidirectional refused");
    else if (strcmp(id->app, "live") != 0)
        r = refuse(ns, remote, SRT_REJX_NOTFOUND, "application is not \"live\"");
    else if ((r = listen_name(srv, ns, remote, id, name)) == 0 &&
             srv->settings.on_duplicate == WEIR_INGEST_DUP_REJECT) {
        weir_stream *old = weir_bus_find(srv->bus, name);
        if (old) {
            weir_stream_unref(old);
            r = refuse(ns, remote, SRT_REJX_CONFLICT, "stream already has a publisher");
        }
    }
    memset(id, 0, sizeof *id);
    free(id);
    return r < 0 ? -1 : 0;
}

/* ---- authorisation ---------------------------------------------------------- */

/* The connection's thread.  The handshake usually left the answer in the
 * key table; otherwise (the store was slow, or busy) wait for it here. */
static int authorize(conn *c)
{
    weir_srt_server *srv = c->srv;
    char passphrase[WEIR_SRT_PASSPHRASE_MAX + 1];
    int64_t deadline = weir_clock_mono_us() + AUTH_TIMEOUT_US;
    int r;

    if (srv->settings.auth == WEIR_INGEST_AUTH_OPEN) {
        if (!weir_stream_name_valid(c->id.key)) {
            c->why = "bad stream name (1-64 of A-Z a-z 0-9 _ -)";
            return AVERROR(EINVAL);
        }
        memcpy(c->name, c->id.key, strlen(c->id.key) + 1);  /* valid: at most 64 bytes */
        return 0;
    }
    for (;;) {
        int64_t left = deadline - weir_clock_mono_us();
        r = weir_srt_auth_check(srv->keys, c->id.key, FFMAX(left, 0), 0, &c->stop, c->name,
                                passphrase);
        if (r != AVERROR(EBUSY) || left <= 0 || atomic_load(&c->stop))
            break;
        usleep(TAKEOVER_RETRY_US);      /* every check slot taken: our own thread waits */
    }
    /* A key with its own passphrase that the handshake did not see answered
     * was accepted under srt.passphrase (or none): not what the key asks
     * for.  Close; the answer is in the key table now, so the caller's retry
     * is decided, and encrypted, inside its handshake. */
    if (r == 0 && passphrase[0] && !c->decided) {
        r = AVERROR(EACCES);
        c->why = "the key's passphrase was not known at the handshake (retry)";
    }
    memset(passphrase, 0, sizeof passphrase);
    if (r < 0 && !c->why)
        c->why = r == AVERROR(EACCES) ? "unknown or revoked stream key"
               : r == AVERROR_EXIT ? "stopped" : "key store unavailable";
    return r;
}

/* ---- the stream on the bus ------------------------------------------------------ */

/* Any thread, under the stream's lock: only ask (invariant 1). */
static void kick(void *arg)
{
    atomic_store(&((conn *)arg)->stop, 1);
}

static double stat_value(const srt_sample *s, int i)
{
    return *(const double *)((const char *)s + srt_stats[i].offset);
}

/* Any thread, under the stream's lock (so before weir_stream_end returned:
 * the connection is alive). */
static int publisher_stats(void *arg, weir_publisher_stat *out, int max)
{
    conn *c = arg;
    int n = 0;

    pthread_mutex_lock(&c->srv->stats_mu);
    for (int i = 0; c->has_sample && i < NSTATS && n < max; i++)
        out[n++] = (weir_publisher_stat){ srt_stats[i].api, stat_value(&c->sample, i) };
    pthread_mutex_unlock(&c->srv->stats_mu);
    return n;
}

static void set_publisher(conn *c, AVRational framerate)
{
    weir_publisher_info pi = { .protocol = "srt", .framerate = framerate, .kick = kick,
                               .kick_arg = c, .stats = publisher_stats, .stats_arg = c };
    snprintf(pi.remote, sizeof pi.remote, "%s", c->remote);
    weir_stream_set_publisher(c->stream, &pi);
}

static int claim(conn *c)
{
    weir_srt_server *srv = c->srv;
    int r;

    for (int tries = 0;; tries++) {
        if (atomic_load(&c->stop)) {
            c->why = "stopped";
            return AVERROR_EXIT;
        }
        if (atomic_load(&srv->publishers) >= srv->settings.max_publishers) {
            c->why = "ingest.max_publishers reached";
            return AVERROR(EBUSY);
        }
        r = weir_bus_publish(srv->bus, c->name, NULL, &c->stream);
        if (r != AVERROR(EEXIST) || srv->settings.on_duplicate != WEIR_INGEST_DUP_TAKEOVER ||
            tries >= TAKEOVER_TRIES)
            break;
        if (tries == 0) {
            weir_stream *old = weir_bus_find(srv->bus, c->name);
            weir_log_info("srt", "taking over stream", WL_STR("stream", c->name),
                          WL_STR("remote", c->remote));
            if (old) {
                weir_stream_kick(old);
                weir_stream_unref(old);
            }
        }
        usleep(TAKEOVER_RETRY_US);      /* our own thread: nobody else waits */
    }
    if (r < 0) {
        c->why = r == AVERROR(EEXIST) ? "stream already has a publisher" : "bus publish failed";
        return r;
    }
    c->counted = 1;
    atomic_fetch_add(&srv->publishers, 1);
    weir_gauge_inc(srv->publishers_gauge);
    c->started_us = weir_clock_mono_us();
    set_publisher(c, (AVRational){ 0, 1 });
    atomic_store(&c->publishing, 1);
    weir_log_info("srt", "publishing", WL_STR("stream", c->name), WL_STR("remote", c->remote));
    return 0;
}

/* ---- demuxing ------------------------------------------------------------------- */

/* AVIOContext read: one SRT message (up to 7 TS packets) at a time. */
static int srt_read(void *opaque, uint8_t *buf, int size)
{
    conn *c = opaque;
    int n;

    while (c->msg_off >= c->msg_len) {
        if (atomic_load(&c->stop))
            return AVERROR_EXIT;
        /* Wait in our own epoll rather than with SRTO_RCVTIMEO: libsrt
         * 1.5.1 logs a warning on every receive timeout. */
        SRT_EPOLL_EVENT ev;
        if (srt_epoll_uwait(c->eid, &ev, 1, RECV_TIMEOUT_MS) <= 0) {
            n = -1;
        } else {
            n = srt_recvmsg(c->sock, (char *)c->msg, sizeof c->msg);
        }
        if (n > 0) {
            c->msg_len = n;
            c->msg_off = 0;
            c->last_rx_us = weir_clock_mono_us();
            c->rx_bytes += (uint64_t)n;
            weir_counter_add(c->srv->rx_bytes, n);
            break;
        }
        if (n < 0 && (srt_getsockstate(c->sock) == SRTS_CONNECTED)) {
            if (weir_clock_mono_us() - c->last_rx_us > c->srv->idle_ms * 1000) {
                c->why = "idle (srt.idle_timeout)";
                return AVERROR(ETIMEDOUT);
            }
            continue;
        }
        return AVERROR_EOF;     /* the caller closed or the link broke */
    }
    n = FFMIN(size, c->msg_len - c->msg_off);
    memcpy(buf, c->msg + c->msg_off, (size_t)n);
    c->msg_off += n;
    return n;
}

/* Keeps libavformat from waiting forever on a stream that never yields. */
static int interrupted(void *opaque)
{
    conn *c = opaque;
    return atomic_load(&c->stop) || (c->deadline_us && weir_clock_mono_us() > c->deadline_us);
}

static int codec_ok(enum AVCodecID id)
{
    static const enum AVCodecID ok[] = {
        AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1, AV_CODEC_ID_AAC,
        AV_CODEC_ID_AAC_LATM, AV_CODEC_ID_MP3,
        AV_CODEC_ID_MP2, AV_CODEC_ID_AC3, AV_CODEC_ID_EAC3, AV_CODEC_ID_OPUS,
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == id)
            return 1;
    return 0;
}

/* ---- from MPEG-TS form to the bus's form ------------------------------------------ *
 *
 * MPEG-TS carries H.264/HEVC as Annex B and AAC as ADTS; the bus carries what
 * RTMP and MP4 carry, so nothing downstream knows which protocol fed a
 * stream.  core/norm.h converts each track; a track's bus parameters are
 * known once its converter has seen the parameter sets (the TS demuxer
 * usually extracted them already) or the first ADTS header. */

static int track_open(track_in *t, const AVStream *st)
{
    t->bus = -1;
    t->video = st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
    return weir_norm_new(st->codecpar, st->time_base, &t->norm);
}

static void track_close(track_in *t)
{
    weir_norm_free(t->norm);
    memset(t, 0, sizeof *t);
}

/* pkt in the bus's form, in place.  0; AVERROR(EAGAIN): nothing to write;
 * AVERROR(ENOMEM); any other error: a malformed packet, dropped. */
static int track_packet(track_in *t, AVPacket *pkt)
{
    int r = weir_norm_packet(t->norm, pkt);
    t->par = weir_norm_par(t->norm);
    return r;
}

/* ---- holding back until every track's parameters are known ------------------------ *
 *
 * The bus fixes a stream's tracks at its first write, so packets wait here
 * until every selected track has its bus parameters, at most HOLD_MAX_MS of
 * media (or HOLD_MAX_PACKETS / HOLD_MAX_BYTES).  Past that, tracks still
 * unknown are dropped (logged) and the others start. */

static int hold(conn *c, AVFormatContext *fmt, AVPacket *pkt)
{
    AVPacket *h;
    int64_t ts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;

    if (c->nheld == c->held_cap) {
        int cap = c->held_cap ? 2 * c->held_cap : 64;
        AVPacket **p = av_realloc_array(c->held, (size_t)cap, sizeof *p);
        if (!p)
            return AVERROR(ENOMEM);
        c->held = p;
        c->held_cap = cap;
    }
    if (!(h = av_packet_alloc()))
        return AVERROR(ENOMEM);
    av_packet_move_ref(h, pkt);
    c->held[c->nheld++] = h;
    c->held_bytes += (size_t)h->size;
    if (ts != AV_NOPTS_VALUE) {
        ts = av_rescale_q(ts, fmt->streams[h->stream_index]->time_base, (AVRational){ 1, 1000 });
        c->held_first_ms = FFMIN(c->held_first_ms, ts);
        c->held_last_ms = FFMAX(c->held_last_ms, ts);
    }
    return 0;
}

static int hold_full(const conn *c)
{
    return c->nheld >= HOLD_MAX_PACKETS || c->held_bytes >= HOLD_MAX_BYTES ||
           (c->held_last_ms > c->held_first_ms && c->held_last_ms - c->held_first_ms > HOLD_MAX_MS);
}

static int all_known(const conn *c)
{
    for (int i = 0; i < c->nin; i++)
        if (c->in[i].used && !c->in[i].par)
            return 0;
    return 1;
}

static void release_held(conn *c)
{
    for (int i = 0; i < c->nheld; i++)
        av_packet_free(&c->held[i]);
    av_freep(&c->held);
    c->nheld = c->held_cap = 0;
    c->held_bytes = 0;
}

/* ---- the bus side ------------------------------------------------------------------ */

/* Video first (the bus's key track is its first video track anyway). */
static int add_tracks(conn *c, AVFormatContext *fmt)
{
    static const enum AVMediaType order[] = { AVMEDIA_TYPE_VIDEO, AVMEDIA_TYPE_AUDIO };
    const AVCodecParameters *v = NULL, *a = NULL;
    AVRational fps = { 0, 1 };
    int ntracks = 0;

    for (size_t o = 0; o < 2; o++) {
        for (int i = 0; i < c->nin; i++) {
            track_in *t = &c->in[i];
            int b;
            if (!t->used || t->par->codec_type != order[o])
                continue;
            if ((b = weir_stream_add_track(c->stream, t->par, (AVRational){ 1, 1000 })) < 0) {
                c->why = "too many tracks";
                return b;
            }
            t->bus = b;
            c->last_dts[b] = INT64_MIN;
            ntracks++;
            if (t->video && !v) {
                v = t->par;
                fps = fmt->streams[i]->avg_frame_rate;
            } else if (!t->video && !a) {
                a = t->par;
            }
        }
    }
    if (!ntracks) {
        c->why = "no track's codec parameters within 5 s of media";
        return AVERROR_INVALIDDATA;
    }
    if (fps.num > 0 && fps.den > 0)
        set_publisher(c, fps);
    weir_log_info("srt", "tracks", WL_STR("stream", c->name),
                  WL_STR("video", v ? avcodec_get_name(v->codec_id) : "none"),
                  WL_STR("audio", a ? avcodec_get_name(a->codec_id) : "none"),
                  WL_INT("width", v ? v->width : 0), WL_INT("height", v ? v->height : 0));
    return 0;
}

/* Demuxer time base -> ms from the connection's first DTS; never back. */
static int write_packet(conn *c, AVFormatContext *fmt, AVPacket *pkt)
{
    int t, r;

    if (pkt->stream_index < 0 || pkt->stream_index >= c->nin ||
        (t = c->in[pkt->stream_index].bus) < 0)
        return 0;
    if (pkt->dts == AV_NOPTS_VALUE)
        pkt->dts = pkt->pts;
    if (pkt->dts == AV_NOPTS_VALUE)
        return 0;           /* nothing to place it by */
    if ((r = av_packet_make_refcounted(pkt)) < 0)
        return r;
    av_packet_rescale_ts(pkt, fmt->streams[pkt->stream_index]->time_base, (AVRational){ 1, 1000 });
    if (c->origin == AV_NOPTS_VALUE)
        c->origin = pkt->dts;
    pkt->dts -= c->origin;
    if (pkt->pts != AV_NOPTS_VALUE)
        pkt->pts -= c->origin;
    if (pkt->dts < c->last_dts[t]) {
        pkt->dts = c->last_dts[t];
        c->clamped++;
    }
    if (pkt->pts == AV_NOPTS_VALUE || pkt->pts < pkt->dts)
        pkt->pts = pkt->dts;
    c->last_dts[t] = pkt->dts;
    pkt->stream_index = t;
    if ((r = weir_stream_write(c->stream, pkt)) < 0)
        return r;
    c->packets++;
    return 0;
}

/* The wait is over: tracks still unknown are dropped, the rest go on the
 * bus, and what was held is written in the order it arrived. */
static int start_stream(conn *c, AVFormatContext *fmt)
{
    int r = 0;

    for (int i = 0; i < c->nin; i++) {
        track_in *t = &c->in[i];
        if (t->used && !t->par) {
            weir_log_warn("srt", "track dropped: its codec parameters never came",
                          WL_STR("stream", c->name),
                          WL_STR("codec", avcodec_get_name(fmt->streams[i]->codecpar->codec_id)));
            t->used = 0;
        }
    }
    if ((r = add_tracks(c, fmt)) < 0)
        return r;
    c->started = 1;
    c->deadline_us = 0;         /* from here only idle and stop end it */
    for (int i = 0; i < c->nheld && r >= 0; i++)
        r = write_packet(c, fmt, c->held[i]);
    release_held(c);
    return r;
}

/* One demuxed packet: converted, then held or written. */
static int on_packet(conn *c, AVFormatContext *fmt, AVPacket *pkt)
{
    track_in *t;
    int r;

    if (pkt->stream_index < 0 || pkt->stream_index >= c->nin ||
        !(t = &c->in[pkt->stream_index])->used || (c->started && t->bus < 0))
        return 0;
    if (t->video && !t->keyed) {
        if (!(pkt->flags & AV_PKT_FLAG_KEY)) {
            c->dropped++;       /* undecodable without the keyframe before it */
            return 0;
        }
        t->keyed = 1;
    }
    if ((r = track_packet(t, pkt)) == AVERROR(EAGAIN))
        return 0;
    if (r == AVERROR(ENOMEM))
        return r;
    if (r < 0) {
        c->dropped++;           /* malformed: lose it, keep the stream */
        return 0;
    }
    if (c->started)
        return write_packet(c, fmt, pkt);
    if ((r = hold(c, fmt, pkt)) < 0)
        return r;
    return all_known(c) || hold_full(c) ? start_stream(c, fmt) : 0;
}

/* The demuxer's audio and video streams, each with its converter. */
static int select_tracks(conn *c, AVFormatContext *fmt)
{
    int n = 0, r;

    c->nin = (int)FFMIN(fmt->nb_streams, sizeof c->in / sizeof c->in[0]);
    for (int i = 0; i < c->nin; i++) {
        const AVCodecParameters *par = fmt->streams[i]->codecpar;
        c->in[i].bus = -1;
        if (par->codec_type != AVMEDIA_TYPE_VIDEO && par->codec_type != AVMEDIA_TYPE_AUDIO)
            continue;
        if (!codec_ok(par->codec_id)) {
            c->why = "unsupported codec";
            weir_log_debug("srt", "codec", WL_STR("codec", avcodec_get_name(par->codec_id)));
            return AVERROR_PATCHWELCOME;
        }
        if ((r = track_open(&c->in[i], fmt->streams[i])) < 0) {
            c->why = "cannot set up the track's conversion";
            return r;
        }
        c->in[i].used = 1;
        n++;
    }
    if (!n) {
        c->why = "no audio or video track in the MPEG-TS";
        return AVERROR_INVALIDDATA;
    }
    return 0;
}

static int demux(conn *c)
{
    AVFormatContext *fmt = avformat_alloc_context();
    AVIOContext *pb = NULL;
    uint8_t *iobuf = av_malloc(IO_BUF);
    AVPacket *pkt = av_packet_alloc();
    int r = AVERROR(ENOMEM);

    if (!fmt || !iobuf || !pkt)
        goto fail;
    if (!(pb = avio_alloc_context(iobuf, IO_BUF, 0, c, srt_read, NULL, NULL)))
        goto fail;
    iobuf = NULL;           /* pb owns it */
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->probesize = PROBE_SIZE;
    fmt->max_analyze_duration = ANALYZE_US;
    fmt->interrupt_callback = (AVIOInterruptCB){ interrupted, c };
    c->deadline_us = weir_clock_mono_us() + PROBE_TIMEOUT_US;
    r = avformat_open_input(&fmt, NULL, av_find_input_format("mpegts"), NULL);
    if (r < 0) {
        fmt = NULL;         /* freed by avformat_open_input */
        c->why = c->why ? c->why : "not MPEG-TS";
        goto fail;
    }
    if ((r = avformat_find_stream_info(fmt, NULL)) < 0) {
        c->why = c->why ? c->why : "cannot read the MPEG-TS stream info";
        goto fail;
    }
    if ((r = select_tracks(c, fmt)) < 0)
        goto fail;
    while ((r = av_read_frame(fmt, pkt)) >= 0) {
        r = on_packet(c, fmt, pkt);
        av_packet_unref(pkt);
        if (r < 0)
            goto fail;
    }
    if (r == AVERROR_EOF && !c->started && c->nheld) {
        int e = start_stream(c, fmt);   /* a clip shorter than the wait */
        if (e < 0)
            r = e;
    }
    if (r == AVERROR_EXIT && !c->why)
        c->why = atomic_load(&c->over_rate) ? "over srt.max_bitrate"
               : atomic_load(&c->stop) ? "stopped" : "no media within 10 s";
fail:
    if (r == AVERROR_EOF && !c->started) {
        r = AVERROR_INVALIDDATA;    /* the publisher left before any media */
        c->why = "no audio or video track in the MPEG-TS";
    }
    if (r < 0 && !c->why && r != AVERROR_EOF)
        c->why = r == AVERROR(EPIPE) ? "stream ended on the bus"
               : r == AVERROR(ENOMEM) ? "out of memory" : "bad MPEG-TS";
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
    av_free(iobuf);
    release_held(c);
    for (int i = 0; i < c->nin; i++)
        track_close(&c->in[i]);
    return r == AVERROR_EOF ? 0 : r;
}

/* ---- a connection's thread -------------------------------------------------------- */

static void *conn_main(void *arg)
{
    conn *c = arg;
    int r;

    if ((r = authorize(c)) >= 0 && (r = claim(c)) >= 0)
        r = demux(c);
    if (c->stream) {
        double secs = (double)(weir_clock_mono_us() - c->started_us) / 1e6;
        atomic_store(&c->publishing, 0);
        weir_stream_end(c->stream);     /* drops our reference; no kick after this */
        c->stream = NULL;
        weir_log_info("srt", "unpublished", WL_STR("stream", c->name),
                      WL_STR("remote", c->remote), WL_DOUBLE("seconds", secs),
                      WL_UINT("packets", c->packets), WL_UINT("bytes", c->rx_bytes),
                      WL_UINT("dts_clamped", c->clamped), WL_UINT("dropped", c->dropped),
                      WL_STR("reason", r < 0 && c->why ? c->why : "publisher left"));
    }
    if (r < 0 && (!c->counted || !c->why))
        weir_log_warn("srt", "closing connection", WL_STR("remote", c->remote),
                      WL_STR("stream", c->name), WL_STR("reason", c->why ? c->why : "error"),
                      WL_ERR(r));
    if (c->counted) {
        atomic_fetch_sub(&c->srv->publishers, 1);
        weir_gauge_dec(c->srv->publishers_gauge);
    }
    c->counted = 0;
    srt_epoll_release(c->eid);
    srt_close(c->sock);
    atomic_store(&c->done, 1);
    return NULL;
}

/* The SRT thread: a caller passed on_listen and the handshake. */
static void accept_one(weir_srt_server *srv, SRTSOCKET ns, const struct sockaddr *sa)
{
    conn *c = calloc(1, sizeof *c);
    char sid[WEIR_SRT_STREAMID_MAX + 1];
    int len = sizeof sid - 1, events = SRT_EPOLL_IN | SRT_EPOLL_ERR;

    if (!c)
        goto fail;
    c->srv = srv;
    c->sock = ns;
    c->eid = -1;
    c->origin = AV_NOPTS_VALUE;
    c->held_first_ms = INT64_MAX;
    c->held_last_ms = INT64_MIN;
    c->last_rx_us = weir_clock_mono_us();
    c->decided = keyed_take(srv, ns);
    remote_of(sa, c->remote, sizeof c->remote);
    memset(sid, 0, sizeof sid);
    /* on_listen already vetted it; parse again for our copy. */
    if (srt_getsockflag(ns, SRTO_STREAMID, sid, &len) < 0 ||
        weir_srt_streamid_parse(sid, strnlen(sid, sizeof sid - 1), &c->id) < 0 ||
        (c->eid = srt_epoll_create()) < 0 ||
        srt_epoll_add_usock(c->eid, ns, &events) < 0)
        goto fail;     /* the socket is non-blocking, like its listener */
    if (pthread_create(&c->thread, NULL, conn_main, c) != 0)
        goto fail;
    pthread_mutex_lock(&srv->stats_mu);
    c->next = srv->conns;
    srv->conns = c;
    pthread_mutex_unlock(&srv->stats_mu);
    atomic_fetch_add(&srv->nconns, 1);
    weir_log_debug("srt", "connection", WL_STR("remote", c->remote));
    return;
fail:
    weir_log_warn("srt", "closing connection", WL_STR("remote", c ? c->remote : "?"),
                  WL_STR("reason", "cannot set up the connection"));
    srt_close(ns);
    if (c) {
        if (c->eid >= 0)
            srt_epoll_release(c->eid);
        conn_free(c);
    }
}

/* Joins connections whose thread is done (or, with all, every one). */
static void reap(weir_srt_server *srv, int all)
{
    conn **pp = &srv->conns;
    while (*pp) {
        conn *c = *pp;
        if (all)
            atomic_store(&c->stop, 1);
        if (!all && !atomic_load(&c->done)) {
            pp = &c->next;
            continue;
        }
        pthread_join(c->thread, NULL);
        pthread_mutex_lock(&srv->stats_mu);
        *pp = c->next;
        pthread_mutex_unlock(&srv->stats_mu);
        atomic_fetch_sub(&srv->nconns, 1);
        conn_free(c);
    }
}

/* The SRT thread, once a second, after the sample: srt.max_bitrate.  The
 * average runs over the last srt.max_bitrate_window of one-second samples
 * of byteRecvTotal (what arrived, retransmissions included: what the link
 * costs), and only once a whole window is there, so a burst at connect (the
 * encoder's first keyframe, SRT's catch-up after loss) shorter than the
 * window passes.  Over it: one warning, the counter, and the connection is
 * asked to stop (its thread ends the stream within 200 ms). */
static void check_rate(weir_srt_server *srv, conn *c, uint64_t bytes, int64_t now)
{
    int oldest;
    double bps;

    c->rate_bytes[c->rate_next] = bytes;
    c->rate_us[c->rate_next] = now;
    c->rate_next = (c->rate_next + 1) % RATE_SAMPLES;
    if (c->rate_n < RATE_SAMPLES)
        c->rate_n++;
    /* the newest sample at least a window older than now */
    oldest = -1;
    for (int k = 0; k < c->rate_n; k++) {
        int i = (c->rate_next - 1 - k + 2 * RATE_SAMPLES) % RATE_SAMPLES;
        if (now - c->rate_us[i] >= srv->rate_window_us) {
            oldest = i;
            break;
        }
    }
    if (oldest < 0 || atomic_load(&c->over_rate) || bytes < c->rate_bytes[oldest])
        return;
    bps = (double)(bytes - c->rate_bytes[oldest]) * 8e6 / (double)(now - c->rate_us[oldest]);
    if (bps <= (double)srv->max_bitrate)
        return;
    atomic_store(&c->over_rate, 1);
    weir_counter_inc(srv->over_rate);
    weir_log_warn("srt", "publisher over srt.max_bitrate: disconnecting",
                  WL_STR("stream", c->name), WL_STR("remote", c->remote),
                  WL_INT("bitrate", (int64_t)bps), WL_INT("max_bitrate", srv->max_bitrate),
                  WL_INT("window_ms", srv->rate_window_us / 1000));
    atomic_store(&c->stop, 1);
}

/* The SRT thread, once a second: every publisher's link statistics. */
static void sample_stats(weir_srt_server *srv)
{
    int64_t now = weir_clock_mono_us();

    if (now - srv->sampled_us < 1000000)
        return;
    srv->sampled_us = now;
    for (conn *c = srv->conns; c; c = c->next) {
        SRT_TRACEBSTATS p;
        srt_sample s;
        if (!atomic_load(&c->publishing) || srt_bstats(c->sock, &p, 0) < 0)
            continue;
        s = (srt_sample){ .rtt_ms = p.msRTT, .lost = p.pktRcvLossTotal,
                          .retrans = p.pktRcvRetrans, .dropped = p.pktRcvDropTotal,
                          .buffer_ms = p.msRcvBuf };
        /* bits per microsecond = Mbit/s; the first sample averages since connect */
        if (c->prev_us && now > c->prev_us && p.byteRecvTotal >= c->prev_bytes)
            s.rate_mbps = (double)(p.byteRecvTotal - c->prev_bytes) * 8 / (double)(now - c->prev_us);
        else if (!c->prev_us && p.msTimeStamp > 0)
            s.rate_mbps = (double)p.byteRecvTotal * 8 / ((double)p.msTimeStamp * 1000);
        c->prev_bytes = p.byteRecvTotal;
        c->prev_us = now;
        check_rate(srv, c, p.byteRecvTotal, now);
        pthread_mutex_lock(&srv->stats_mu);
        c->sample = s;
        c->has_sample = 1;
        pthread_mutex_unlock(&srv->stats_mu);
    }
}

/* The scrape: one sample per publishing connection. */
static void collect_stat(void *arg, weir_metric *m)
{
    const stat_arg *a = arg;
    weir_srt_server *srv = a->srv;

    pthread_mutex_lock(&srv->stats_mu);
    for (conn *c = srv->conns; c; c = c->next)
        if (c->has_sample && atomic_load(&c->publishing))
            weir_metric_emit(m, (const char *const[]){ c->name, NULL },
                             stat_value(&c->sample, a->i) * srt_stats[a->i].scale);
    pthread_mutex_unlock(&srv->stats_mu);
}

static int register_stats(weir_srt_server *srv, weir_metrics *reg)
{
    static const char *const labels[] = { "stream", NULL };
    int r;

    if (reg) {
        if ((r = weir_metric_counter(reg, "weir_srt_bitrate_exceeded_total",
                                     "SRT publishers disconnected for sending above"
                                     " srt.max_bitrate", NULL, &srv->over_rate_metric)) < 0)
            return r;
        srv->over_rate = weir_metric_with(srv->over_rate_metric, NULL);
    }

    for (int i = 0; reg && i < NSTATS; i++) {
        srv->stat_args[i] = (stat_arg){ srv, i };
        if ((r = weir_metric_callback(reg, srt_stats[i].metric, srt_stats[i].help,
                                      srt_stats[i].type, labels, collect_stat, &srv->stat_args[i],
                                      &srv->stat_metric[i])) < 0)
            return r;
    }
    return 0;
}

static void *srt_main(void *arg)
{
    weir_srt_server *srv = arg;
    SRT_EPOLL_EVENT ev[16];

    while (!atomic_load(&srv->quit)) {
        int n = srt_epoll_uwait(srv->eid, ev, 16, EPOLL_TICK_MS);
        for (int i = 0; i < n; i++) {
            if (ev[i].fd != srv->lsn)
                continue;
            /* One accept per event: the epoll is level-triggered, and an
             * accept on an empty queue makes libsrt log an error. */
            struct sockaddr_storage ss;
            int len = sizeof ss;
            SRTSOCKET ns = srt_accept(srv->lsn, (struct sockaddr *)&ss, &len);
            if (ns == SRT_INVALID_SOCK)
                continue;
            if (atomic_load(&srv->nconns) >= srv->max_connections)
                srt_close(ns);  /* raced past on_listen's check */
            else
                accept_one(srv, ns, (struct sockaddr *)&ss);
        }
        reap(srv, 0);
        sample_stats(srv);
    }
    return NULL;
}

/* ---- the server ------------------------------------------------------------------ */

static int set_int(SRTSOCKET s, SRT_SOCKOPT opt, int v)
{
    return srt_setsockflag(s, opt, &v, sizeof v) < 0 ? AVERROR(EINVAL) : 0;
}

static int listen_socket(weir_srt_server *srv, const char *addr, int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct sockaddr_storage bound;
    int len = sizeof bound, events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    int r = AVERROR(EINVAL);

    if (addr && *addr && inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        return AVERROR(EINVAL);
    if ((srv->lsn = srt_create_socket()) == SRT_INVALID_SOCK)
        return AVERROR(EIO);
    if ((r = set_int(srv->lsn, SRTO_TRANSTYPE, SRTT_LIVE)) < 0 ||
        (r = set_int(srv->lsn, SRTO_RCVSYN, 0)) < 0 ||
        (r = set_int(srv->lsn, SRTO_LATENCY, (int)srv->latency_ms)) < 0)
        return r;
    if (srv->passphrase[0] &&
        (srt_setsockflag(srv->lsn, SRTO_PASSPHRASE, srv->passphrase,
                         (int)strlen(srv->passphrase)) < 0 ||
         (r = set_int(srv->lsn, SRTO_PBKEYLEN, srv->pbkeylen)) < 0))
        return AVERROR(EINVAL);     /* inherited by every accepted socket */
    if (srt_listen_callback(srv->lsn, on_listen, srv) < 0 ||
        srt_bind(srv->lsn, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        srt_listen(srv->lsn, 16) < 0 ||
        srt_getsockname(srv->lsn, (struct sockaddr *)&bound, &len) < 0)
        return AVERROR(EADDRINUSE);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if ((srv->eid = srt_epoll_create()) < 0 || srt_epoll_add_usock(srv->eid, srv->lsn, &events) < 0)
        return AVERROR(EIO);
    return 0;
}

static int post_to_loop(void *loop, void (*fn)(void *arg), void *arg)
{
    return weir_loop_post(loop, fn, arg);
}

int weir_srt_server_new(const weir_srt_opts *opts, weir_srt_server **out)
{
    weir_srt_server *srv = calloc(1, sizeof *srv);
    size_t plen = opts->passphrase ? strlen(opts->passphrase) : 0;
    int r = AVERROR(EINVAL);

    if (!srv)
        return AVERROR(ENOMEM);
    srv->lsn = SRT_INVALID_SOCK;
    srv->eid = -1;
    pthread_mutex_init(&srv->stats_mu, NULL);
    pthread_mutex_init(&srv->keyed_mu, NULL);
    for (int i = 0; i < KEYED_RING; i++)
        srv->keyed[i] = SRT_INVALID_SOCK;
    srt_startup();
    if (opts->settings->auth == WEIR_INGEST_AUTH_KEYS && !opts->auth) {
        weir_log_error("srt", "ingest.auth=keys needs an auth function");
        goto fail;
    }
    if (plen && (plen < 10 || plen > 79)) {
        weir_log_error("srt", "srt.passphrase must be 10 to 79 characters",
                       WL_SECRET("passphrase", opts->passphrase));
        goto fail;
    }
    if (opts->pbkeylen != 0 && opts->pbkeylen != 16 && opts->pbkeylen != 24 &&
        opts->pbkeylen != 32) {
        weir_log_error("srt", "srt.pbkeylen must be 0 (auto), 16, 24 or 32",
                       WL_INT("pbkeylen", opts->pbkeylen));
        goto fail;
    }
    srv->loop = opts->loop;
    srv->bus = opts->bus;
    srv->settings = *opts->settings;
    srv->pbkeylen = opts->pbkeylen;
    srv->auth_wait_us = opts->auth_wait_ms < 0 ? 0
                        : 1000 * (opts->auth_wait_ms ? opts->auth_wait_ms : DEFAULT_AUTH_WAIT_MS);
    if (srv->settings.auth == WEIR_INGEST_AUTH_KEYS &&
        (r = weir_srt_auth_new(&(weir_srt_auth_opts){
             .post = post_to_loop, .post_ctx = opts->loop, .auth = opts->auth,
             .auth_ctx = opts->auth_ctx, .ttl_us = AUTH_TTL_US,
             .max_inflight = AUTH_MAX_INFLIGHT, .budget_us = srv->auth_wait_us,
         }, &srv->keys)) < 0)
        goto fail;
    memcpy(srv->passphrase, opts->passphrase ? opts->passphrase : "", plen + 1);
    srv->latency_ms = opts->latency_ms > 0 ? opts->latency_ms : DEFAULT_LATENCY_MS;
    srv->max_connections = opts->max_connections > 0 ? opts->max_connections
                                                     : DEFAULT_MAX_CONNECTIONS;
    srv->max_streamid = opts->max_streamid > 0 && opts->max_streamid <= WEIR_SRT_STREAMID_MAX
                        ? opts->max_streamid : WEIR_SRT_STREAMID_MAX;
    srv->idle_ms = opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : DEFAULT_IDLE_MS;
    srv->rx_bytes = opts->rx_bytes;
    srv->publishers_gauge = opts->publishers;
    srv->max_bitrate = opts->max_bitrate > 0 ? opts->max_bitrate : DEFAULT_MAX_BITRATE;
    srv->rate_window_us = 1000 * (opts->max_bitrate_window_ms > 0
                                  ? FFMAX(FFMIN(opts->max_bitrate_window_ms,
                                                (RATE_SAMPLES - 1) * 1000), 1000)
                                  : DEFAULT_RATE_WINDOW_MS);
    if ((r = register_stats(srv, opts->metrics)) < 0) {
        weir_log_error("srt", "cannot register the SRT metrics", WL_ERR(r));
        goto fail;
    }
    if ((r = listen_socket(srv, opts->addr, opts->port)) < 0) {
        weir_log_error("srt", "cannot listen", WL_INT("port", opts->port),
                       WL_STR("srt_error", srt_getlasterror_str()), WL_ERR(r));
        goto fail;
    }
    if (pthread_create(&srv->thread, NULL, srt_main, srv) != 0) {
        r = AVERROR(EAGAIN);
        goto fail;
    }
    srv->thread_started = 1;
    weir_log_info("srt", "listening", WL_INT("port", srv->port),
                  WL_STR("auth", srv->settings.auth == WEIR_INGEST_AUTH_OPEN ? "open" : "keys"),
                  WL_BOOL("encrypted", srv->passphrase[0] != '\0'),
                  WL_INT("pbkeylen", srv->pbkeylen),
                  WL_INT("latency_ms", srv->latency_ms),
                  WL_INT("max_bitrate", srv->max_bitrate));
    *out = srv;
    return 0;
fail:
    weir_srt_server_free(srv);
    return r;
}

int weir_srt_server_port(const weir_srt_server *srv) { return srv->port; }

int weir_srt_server_publishers(const weir_srt_server *srv)
{
    return atomic_load(&((weir_srt_server *)srv)->publishers);
}

void weir_srt_server_free(weir_srt_server *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->quit, 1);
    for (int i = 0; i < NSTATS; i++)
        weir_metric_unregister(srv->stat_metric[i]);    /* no scrape sees srv after this */
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    weir_metric_unregister(srv->over_rate_metric);  /* the SRT thread counted into it */
    if (srv->eid >= 0)
        srt_epoll_release(srv->eid);
    if (srv->lsn != SRT_INVALID_SOCK)
        srt_close(srv->lsn);
    reap(srv, 1);
    weir_srt_auth_close(srv->keys);     /* answers still in flight hold their own reference */
    memset(srv->passphrase, 0, sizeof srv->passphrase);
    pthread_mutex_destroy(&srv->stats_mu);
    pthread_mutex_destroy(&srv->keyed_mu);
    free(srv);
    srt_cleanup();
}
