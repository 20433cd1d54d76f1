/*
 * tests/integration/bus_watch.h — what the peer tests check on the bus: a
 * subscriber polled from a loop timer records each track's codec, whether
 * its first packet was a keyframe, packet counts, and DTS going backwards.
 */
#ifndef WEIR_TEST_BUS_WATCH_H
#define WEIR_TEST_BUS_WATCH_H

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

#define BUS_WATCH_TRACKS 4

typedef struct bus_watch {
    weir_bus *bus;
    const char *name;               /* the stream to watch */
    weir_sub *sub;
    int subscribed;                 /* the stream appeared at some point */
    int eof;                        /* the stream ended and was drained */
    enum AVCodecID codec[BUS_WATCH_TRACKS];
    int ntracks;
    int64_t last_dts[BUS_WATCH_TRACKS];
    int packets[BUS_WATCH_TRACKS];
    int first_key[BUS_WATCH_TRACKS];    /* first packet of the track was a keyframe */
    int dts_backwards;
    int64_t bytes;
} bus_watch;

static inline void bus_watch_drain(bus_watch *w)
{
    AVPacket *pkt = av_packet_alloc();
    int r;
    while ((r = weir_sub_read(w->sub, pkt)) == 0) {
        int t = pkt->stream_index;
        if (t >= 0 && t < BUS_WATCH_TRACKS) {
            if (w->packets[t] == 0)
                w->first_key[t] = !!(pkt->flags & AV_PKT_FLAG_KEY);
            else if (pkt->dts < w->last_dts[t])
                w->dts_backwards++;
            w->last_dts[t] = pkt->dts;
            w->packets[t]++;
            w->bytes += pkt->size;
        }
        av_packet_unref(pkt);
    }
    if (r == AVERROR_EOF)
        w->eof = 1;
    av_packet_free(&pkt);
}

/* Subscribes once the stream exists, then records whatever arrived. */
static inline void bus_watch_poll(bus_watch *w)
{
    if (!w->sub) {
        weir_stream *s = weir_bus_find(w->bus, w->name);
        if (s) {
            if (weir_stream_subscribe(s, &(weir_sub_opts){ .queue_len = 4096 }, &w->sub) == 0)
                w->subscribed = 1;
            weir_stream_unref(s);
        }
    }
    if (w->sub) {
        w->ntracks = weir_sub_ntracks(w->sub);
        for (int i = 0; i < w->ntracks && i < BUS_WATCH_TRACKS; i++)
            w->codec[i] = weir_sub_codecpar(w->sub, i, NULL)->codec_id;
        bus_watch_drain(w);
    }
}

static inline void bus_watch_close(bus_watch *w)
{
    if (w->sub)
        weir_sub_close(w->sub);
    w->sub = NULL;
}

/* The peer: cmd run by /bin/sh in a child process.  Returns its pid. */
static inline pid_t peer_spawn(const char *cmd)
{
    pid_t child = fork();
    if (child == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return child;
}

/* Kills the peer if it has not finished and collects its status. */
static inline void peer_reap(pid_t child, int *done, int *status)
{
    if (!*done) {
        kill(child, SIGKILL);
        waitpid(child, status, 0);
        *done = 1;
    }
}

#endif
