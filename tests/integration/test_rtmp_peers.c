/*
 * Real RTMP publishers against weir's RTMP server, in process: ffmpeg
 * (-f flv), GStreamer flvmux ! rtmpsink (librtmp, OBS's ancestor) and
 * flvmux ! rtmp2sink push a short clip; a subscriber on the bus checks that
 * the packets arrive with the right codecs, keyframes first, and DTS that
 * never goes back on any track.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "tests/integration/bus_watch.h"

typedef struct peer_run {
    weir_loop *loop;
    weir_bus *bus;
    weir_rtmp_server *rtmp;
    weir_timer tick, guard;
    const char *name;
    pid_t child;
    int child_status, child_done;
    bus_watch w;                /* what arrived */
} peer_run;

static void stop(peer_run *p) { weir_loop_stop(p->loop); }

static void on_guard(weir_timer *t)
{
    peer_run *p = (peer_run *)((char *)t - offsetof(peer_run, guard));
    stop(p);
}

static void on_tick(weir_timer *t)
{
    peer_run *p = (peer_run *)((char *)t - offsetof(peer_run, tick));

    bus_watch_poll(&p->w);
    if (!p->child_done && waitpid(p->child, &p->child_status, WNOHANG) == p->child)
        p->child_done = 1;
    if (p->child_done && (p->w.eof || !p->w.sub)) {
        stop(p);
        return;
    }
    weir_timer_start(p->loop, &p->tick, 10000, on_tick);
}

static void run_peer(peer_run *p, const char *name, const char *cmd_fmt)
{
    weir_ingest_settings settings = {
        .auth = WEIR_INGEST_AUTH_OPEN, .max_publishers = 8, .rtmp_handshake_timeout = 10000,
        .rtmp_idle_timeout = 10000, .rtmp_max_message = 8 << 20, .rtmp_chunk_size = 4096,
    };
    char cmd[2048];

    memset(p, 0, sizeof *p);
    p->name = name;
    cr_assert_not_null(p->loop = weir_loop_new(NULL));
    cr_assert_not_null(p->bus = weir_bus_new());
    p->w.bus = p->bus;
    p->w.name = p->name;
    cr_assert_eq(weir_rtmp_server_new(&(weir_rtmp_opts){
        .loop = p->loop, .bus = p->bus, .settings = &settings, .addr = "127.0.0.1", .port = 0,
    }, &p->rtmp), 0);
    snprintf(cmd, sizeof cmd, cmd_fmt, weir_rtmp_server_port(p->rtmp), name);
    p->child = peer_spawn(cmd);
    cr_assert_geq(p->child, 0);
    weir_timer_start(p->loop, &p->tick, 10000, on_tick);
    weir_timer_start(p->loop, &p->guard, 60 * 1000000, on_guard);
    weir_loop_run(p->loop);
    weir_timer_stop(&p->tick);
    weir_timer_stop(&p->guard);
    peer_reap(p->child, &p->child_done, &p->child_status);
    bus_watch_close(&p->w);
    weir_loop_free(p->loop);
    weir_rtmp_server_free(p->rtmp);
    weir_bus_free(p->bus);
}

static void check_h264_aac(const peer_run *p, const char *who)
{
    cr_assert(WIFEXITED(p->child_status) && WEXITSTATUS(p->child_status) == 0,
              "%s exited with status %d", who, p->child_status);
    cr_assert(p->w.eof, "%s: the stream never ended on the bus", who);
    cr_assert_eq(p->w.ntracks, 2, "%s: %d tracks", who, p->w.ntracks);
    cr_assert_eq(p->w.codec[0], AV_CODEC_ID_H264, "%s: video %d", who, p->w.codec[0]);
    cr_assert_eq(p->w.codec[1], AV_CODEC_ID_AAC, "%s: audio %d", who, p->w.codec[1]);
    cr_assert_geq(p->w.packets[0], 40, "%s: %d video packets", who, p->w.packets[0]);
    cr_assert_geq(p->w.packets[1], 40, "%s: %d audio packets", who, p->w.packets[1]);
    cr_assert(p->w.first_key[0], "%s: first video packet is not a keyframe", who);
    cr_assert_eq(p->w.dts_backwards, 0, "%s: DTS went backwards %d times", who, p->w.dts_backwards);
}

Test(rtmp_peers, ffmpeg, .timeout = 90)
{
    peer_run p;
    run_peer(&p, "ff",
             "ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=320x240:rate=25"
             " -f lavfi -i sine=frequency=440:sample_rate=48000 -t 2.5 -c:v libx264"
             " -preset ultrafast -g 25 -bf 2 -c:a aac -f flv rtmp://127.0.0.1:%d/live/%s");
    check_h264_aac(&p, "ffmpeg");
}

static const char gst_pipeline[] =
    "gst-launch-1.0 -q videotestsrc num-buffers=60 is-live=true"
    " ! video/x-raw,width=320,height=240,framerate=25/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse"
    " ! flvmux name=m streamable=true ! %s location=rtmp://127.0.0.1:%%d/live/%%s"
    " audiotestsrc num-buffers=120 is-live=true ! avenc_aac ! aacparse ! m.";

Test(rtmp_peers, gstreamer_rtmpsink_librtmp, .timeout = 90)
{
    peer_run p;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, gst_pipeline, "rtmpsink");
    run_peer(&p, "gst1", cmd);
    check_h264_aac(&p, "rtmpsink");
}

Test(rtmp_peers, gstreamer_rtmp2sink, .timeout = 90)
{
    peer_run p;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, gst_pipeline, "rtmp2sink");
    run_peer(&p, "gst2", cmd);
    check_h264_aac(&p, "rtmp2sink");
}
