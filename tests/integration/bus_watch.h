/*
 * tests/integration/bus_watch.h — what the peer tests check on the bus: a
 * subscriber polled from a loop timer records each track's codec, whether
 * its first packet was a keyframe, packet counts, DTS going backwards (and
 * its largest step forward), and
 * the stream's form: extradata, H.264/HEVC packets that are not exactly a
 * run of 4-byte length-prefixed NAL units, AAC packets with an ADTS header.
 */
#ifndef WEIR_TEST_BUS_WATCH_H
#define WEIR_TEST_BUS_WATCH_H

#include <signal.h>
#include <string.h>
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
    int64_t max_gap[BUS_WATCH_TRACKS];  /* largest DTS step between consecutive packets */
    int64_t bytes;
    int extradata_size[BUS_WATCH_TRACKS];
    uint8_t extradata[BUS_WATCH_TRACKS][8];     /* the first bytes */
    uint32_t codec_tag[BUS_WATCH_TRACKS];
    int not_iso[BUS_WATCH_TRACKS];      /* H.264/HEVC packets not length-prefixed */
    int adts[BUS_WATCH_TRACKS];         /* AAC packets starting with the 0xFFF sync */
} bus_watch;

/* 1 if the packet is exactly a run of (4-byte big-endian length, NAL unit). */
static inline int bus_watch_iso(const uint8_t *p, int size)
{
    int off = 0;
    while (size - off >= 4) {
        uint32_t n = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                     (uint32_t)p[off + 2] << 8 | p[off + 3];
        if (n == 0 || n > (uint32_t)(size - off - 4))
            return 0;
        off += 4 + (int)n;
    }
    return off == size && size > 0;
}

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
            else if (pkt->dts - w->last_dts[t] > w->max_gap[t])
                w->max_gap[t] = pkt->dts - w->last_dts[t];
            w->last_dts[t] = pkt->dts;
            w->packets[t]++;
            if ((w->codec[t] == AV_CODEC_ID_H264 || w->codec[t] == AV_CODEC_ID_HEVC) &&
                !bus_watch_iso(pkt->data, pkt->size))
                w->not_iso[t]++;
            if (w->codec[t] == AV_CODEC_ID_AAC && pkt->size >= 2 && pkt->data[0] == 0xff &&
                (pkt->data[1] & 0xf0) == 0xf0)
                w->adts[t]++;
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
        for (int i = 0; i < w->ntracks && i < BUS_WATCH_TRACKS; i++) {
            const AVCodecParameters *par = weir_sub_codecpar(w->sub, i, NULL);
            w->codec[i] = par->codec_id;
            w->codec_tag[i] = par->codec_tag;
            w->extradata_size[i] = par->extradata_size;
            memcpy(w->extradata[i], par->extradata ? par->extradata : (const uint8_t *)"",
                   (size_t)FFMIN(par->extradata_size, 8));
        }
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
