/*
 * Unit tests for core/bus: fan-out, skip-to-keyframe, late joiners, EOF,
 * notify, buffer ownership, and a multi-threaded run.
 *
 * Packets are tagged with a sequence number: pts == dts == seq, and the first
 * bytes of the payload hold seq too, so a test can tell which packet it got.
 */
#include <criterion/criterion.h>

#include "core/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>

#define TB_VIDEO ((AVRational){ 1, 90000 })
#define TB_AUDIO ((AVRational){ 1, 48000 })

/* ---- helpers ------------------------------------------------------------- */

static AVCodecParameters *make_par(enum AVMediaType type)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    cr_assert_not_null(par);
    par->codec_type = type;
    if (type == AVMEDIA_TYPE_VIDEO) {
        par->codec_id = AV_CODEC_ID_H264;
        par->width = 1280;
        par->height = 720;
    } else {
        par->codec_id = AV_CODEC_ID_AAC;
        par->sample_rate = 48000;
    }
    return par;
}

static int add_track(weir_stream *s, enum AVMediaType type)
{
    AVCodecParameters *par = make_par(type);
    int ret = weir_stream_add_track(s, par, type == AVMEDIA_TYPE_VIDEO ? TB_VIDEO : TB_AUDIO);
    avcodec_parameters_free(&par);
    return ret;
}

/* A refcounted packet on `track` carrying seq; the caller frees it. */
static AVPacket *make_pkt(int track, int64_t seq, bool key)
{
    AVPacket *pkt = av_packet_alloc();
    cr_assert_not_null(pkt);
    cr_assert_eq(av_new_packet(pkt, 64), 0);
    memset(pkt->data, 0, 64);
    memcpy(pkt->data, &seq, sizeof seq);
    pkt->stream_index = track;
    pkt->pts = pkt->dts = seq;
    if (key)
        pkt->flags |= AV_PKT_FLAG_KEY;
    return pkt;
}

/* Writes one packet and frees the test's own reference at once. */
static void write_one(weir_stream *s, int track, int64_t seq, bool key)
{
    AVPacket *pkt = make_pkt(track, seq, key);
    cr_assert_eq(weir_stream_write(s, pkt), 0, "write seq %lld", (long long)seq);
    av_packet_free(&pkt);
}

/* Writes a video-only pattern: 'K' keyframe, 'P' other frame, seq from first. */
static void write_pattern(weir_stream *s, const char *pattern, int64_t first)
{
    for (int i = 0; pattern[i]; i++)
        write_one(s, 0, first + i, pattern[i] == 'K');
}

static int64_t payload_seq(const AVPacket *pkt)
{
    int64_t seq;
    memcpy(&seq, pkt->data, sizeof seq);
    return seq;
}

/* Reads one packet and checks it is seq (and key or not). */
static void expect_read(weir_sub *sub, int64_t seq, bool key)
{
    AVPacket *pkt = av_packet_alloc();
    int ret = weir_sub_read(sub, pkt);
    cr_assert_eq(ret, 0, "read for seq %lld returned %d", (long long)seq, ret);
    cr_assert_eq(pkt->pts, seq, "got seq %lld, want %lld", (long long)pkt->pts, (long long)seq);
    cr_assert_eq(payload_seq(pkt), seq);
    cr_assert_eq(!!(pkt->flags & AV_PKT_FLAG_KEY), key, "seq %lld key flag", (long long)seq);
    av_packet_free(&pkt);
}

static void expect_status(weir_sub *sub, int want)
{
    AVPacket *pkt = av_packet_alloc();
    int ret = weir_sub_read(sub, pkt);
    cr_assert_eq(ret, want, "read returned %d, want %d", ret, want);
    cr_assert_null(pkt->buf);
    av_packet_free(&pkt);
}

static weir_sub_stats stats_of(weir_sub *sub)
{
    weir_sub_stats st;
    weir_sub_stats_get(sub, &st);
    return st;
}

static weir_sub *subscribe(weir_stream *s, int queue_len)
{
    weir_sub *sub = NULL;
    weir_sub_opts opts = { .queue_len = queue_len };
    cr_assert_eq(weir_stream_subscribe(s, &opts, &sub), 0);
    cr_assert_not_null(sub);
    return sub;
}

/* A bus with one published video stream "live/test". */
static weir_bus *bus;
static weir_stream *stream;

static void open_video_stream(int gop_cache_max)
{
    bus = weir_bus_new();
    cr_assert_not_null(bus);
    weir_stream_opts opts = { .gop_cache_max = gop_cache_max };
    cr_assert_eq(weir_bus_publish(bus, "live/test", &opts, &stream), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_VIDEO), 0);
}

static void close_bus(void)
{
    weir_bus_free(bus);
    bus = NULL;
}

/* ---- names and publishers ------------------------------------------------ */

Test(bus, publish_find_and_name_reuse)
{
    weir_bus *b = weir_bus_new();
    weir_stream *s1 = NULL, *s2 = NULL;
    cr_assert_eq(weir_bus_count(b), 0);
    cr_assert_null(weir_bus_find(b, "a"));

    cr_assert_eq(weir_bus_publish(b, "a", NULL, &s1), 0);
    cr_assert_str_eq(weir_stream_name(s1), "a");
    cr_assert_eq(weir_bus_count(b), 1);
    cr_assert_eq(weir_bus_publish(b, "a", NULL, &s2), AVERROR(EEXIST));
    cr_assert_null(s2);
    cr_assert_eq(weir_bus_count(b), 1);

    weir_stream *found = weir_bus_find(b, "a");
    cr_assert_eq(found, s1);
    cr_assert_null(weir_bus_find(b, "b"));

    weir_stream_end(s1);    /* `found` keeps the object alive */
    cr_assert_eq(weir_bus_count(b), 0);
    cr_assert_null(weir_bus_find(b, "a"));
    cr_assert_str_eq(weir_stream_name(found), "a");

    cr_assert_eq(weir_bus_publish(b, "a", NULL, &s2), 0, "name is free after end");
    cr_assert_neq(s2, found);
    cr_assert_eq(weir_bus_find(b, "a"), s2);
    weir_stream_unref(s2);  /* the find reference */
    weir_stream_unref(found);
    weir_stream_end(s2);
    weir_bus_free(b);
}

Test(bus, bad_names)
{
    weir_bus *b = weir_bus_new();
    weir_stream *s = NULL;
    char name[WEIR_BUS_NAME_MAX + 2];

    cr_assert_eq(weir_bus_publish(b, "", NULL, &s), AVERROR(EINVAL));
    cr_assert_eq(weir_bus_publish(b, NULL, NULL, &s), AVERROR(EINVAL));
    memset(name, 'x', WEIR_BUS_NAME_MAX + 1);
    name[WEIR_BUS_NAME_MAX + 1] = '\0';
    cr_assert_eq(weir_bus_publish(b, name, NULL, &s), AVERROR(EINVAL));
    cr_assert_null(s);

    name[WEIR_BUS_NAME_MAX] = '\0';     /* exactly the maximum */
    cr_assert_eq(weir_bus_publish(b, name, NULL, &s), 0);
    cr_assert_str_eq(weir_stream_name(s), name);
    weir_stream_end(s);
    cr_assert_eq(weir_bus_count(b), 0);
    weir_bus_free(b);
}

/* ---- tracks and write validation ----------------------------------------- */

Test(bus, tracks_and_write_errors)
{
    weir_bus *b = weir_bus_new();
    weir_stream *s = NULL;
    cr_assert_eq(weir_bus_publish(b, "t", NULL, &s), 0);
    weir_stream_ref(s);     /* so s may be used after end */

    AVPacket *pkt = make_pkt(0, 0, true);
    cr_assert_eq(weir_stream_write(s, pkt), AVERROR(EINVAL), "no track 0 yet");

    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++)
        cr_assert_eq(add_track(s, i ? AVMEDIA_TYPE_AUDIO : AVMEDIA_TYPE_VIDEO), i);
    cr_assert_eq(add_track(s, AVMEDIA_TYPE_AUDIO), AVERROR(EINVAL), "too many tracks");
    cr_assert_eq(weir_stream_ntracks(s), WEIR_STREAM_MAX_TRACKS);
    cr_assert_eq(weir_stream_add_track(s, NULL, TB_VIDEO), AVERROR(EINVAL));

    pkt->stream_index = WEIR_STREAM_MAX_TRACKS;
    cr_assert_eq(weir_stream_write(s, pkt), AVERROR(EINVAL), "bad track");
    pkt->stream_index = -1;
    cr_assert_eq(weir_stream_write(s, pkt), AVERROR(EINVAL), "bad track");
    pkt->stream_index = 0;

    AVPacket plain = { 0 };     /* not refcounted */
    uint8_t bytes[8] = { 0 };
    plain.data = bytes;
    plain.size = sizeof bytes;
    cr_assert_eq(weir_stream_write(s, &plain), AVERROR(EINVAL), "unrefcounted");

    cr_assert_eq(weir_stream_write(s, pkt), 0);
    cr_assert_eq(av_buffer_get_ref_count(pkt->buf), 2, "the GOP cache holds the keyframe");
    cr_assert_eq(add_track(s, AVMEDIA_TYPE_AUDIO), AVERROR(EINVAL), "tracks frozen after write");

    weir_stream_end(s);
    cr_assert_eq(av_buffer_get_ref_count(pkt->buf), 1, "end releases the GOP cache");
    cr_assert_eq(weir_stream_write(s, pkt), AVERROR(EPIPE));
    cr_assert_eq(add_track(s, AVMEDIA_TYPE_AUDIO), AVERROR(EPIPE));
    weir_stream_unref(s);
    av_packet_free(&pkt);
    weir_bus_free(b);
}

Test(bus, bad_sub_opts)
{
    open_video_stream(0);
    weir_sub *sub = NULL;
    weir_sub_opts opts = { .queue_len = -1 };
    cr_assert_eq(weir_stream_subscribe(stream, &opts, &sub), AVERROR(EINVAL));
    cr_assert_null(sub);
    weir_stream_end(stream);
    close_bus();
}

/* ---- fan-out -------------------------------------------------------------- */

Test(bus, fan_out_zero_copy)
{
    open_video_stream(0);
    weir_sub *subs[3];
    for (int i = 0; i < 3; i++)
        subs[i] = subscribe(stream, 0);

    const char *pattern = "KPPPKPPP";
    AVPacket *sent[8];
    for (int i = 0; i < 8; i++) {
        sent[i] = make_pkt(0, i, pattern[i] == 'K');
        cr_assert_eq(weir_stream_write(stream, sent[i]), 0);
    }
    /* The test's ref + one per sub, + the GOP cache for the current GOP (4..7). */
    for (int i = 0; i < 8; i++)
        cr_assert_eq(av_buffer_get_ref_count(sent[i]->buf), 1 + 3 + (i >= 4),
                     "packet %d refcount %d", i, av_buffer_get_ref_count(sent[i]->buf));

    AVPacket *got = av_packet_alloc();
    for (int n = 0; n < 3; n++) {
        for (int i = 0; i < 8; i++) {
            cr_assert_eq(weir_sub_read(subs[n], got), 0);
            cr_assert_eq(got->pts, i);
            cr_assert_eq(got->data, sent[i]->data, "sub %d packet %d was copied", n, i);
            cr_assert_eq(got->buf->buffer, sent[i]->buf->buffer);
            cr_assert_eq(!!(got->flags & AV_PKT_FLAG_KEY), pattern[i] == 'K');
        }
        cr_assert_eq(weir_sub_read(subs[n], got), AVERROR(EAGAIN));
        weir_sub_stats st = stats_of(subs[n]);
        cr_assert_eq(st.delivered, 8);
        cr_assert_eq(st.skips, 0);
        cr_assert_eq(st.dropped, 0);
    }
    av_packet_free(&got);

    for (int i = 0; i < 3; i++)
        weir_sub_close(subs[i]);
    weir_stream_end(stream);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(av_buffer_get_ref_count(sent[i]->buf), 1);
        av_packet_free(&sent[i]);
    }
    close_bus();
}

/* ---- slow subscriber ----------------------------------------------------- */

Test(bus, slow_subscriber_skips_to_keyframe)
{
    open_video_stream(0);
    weir_sub *slow = subscribe(stream, 4);
    weir_sub *fast = subscribe(stream, 0);

    AVPacket *first = make_pkt(0, 0, true);
    cr_assert_eq(weir_stream_write(stream, first), 0);
    write_pattern(stream, "PPP", 1);    /* slow's queue is now full: 0..3 */
    /* test + slow + fast + GOP cache */
    cr_assert_eq(av_buffer_get_ref_count(first->buf), 4);

    write_pattern(stream, "P", 4);      /* overflow: 0..3 flushed, 4 dropped */
    cr_assert_eq(av_buffer_get_ref_count(first->buf), 3, "slow's queued ref released");
    weir_sub_stats st = stats_of(slow);
    cr_assert_eq(st.skips, 1);
    cr_assert_eq(st.dropped, 5);
    expect_status(slow, AVERROR(EAGAIN));

    write_pattern(stream, "P", 5);      /* still waiting for a keyframe */
    expect_status(slow, AVERROR(EAGAIN));
    write_pattern(stream, "KP", 6);
    expect_read(slow, 6, true);
    expect_read(slow, 7, false);
    expect_status(slow, AVERROR(EAGAIN));
    st = stats_of(slow);
    cr_assert_eq(st.delivered, 2);
    cr_assert_eq(st.skips, 1);
    cr_assert_eq(st.dropped, 6);
    cr_assert_eq(st.delivered + st.dropped, 8, "every written packet accounted for");

    for (int i = 0; i < 8; i++)
        expect_read(fast, i, i == 0 || i == 6);
    st = stats_of(fast);
    cr_assert_eq(st.delivered, 8);
    cr_assert_eq(st.skips, 0);
    cr_assert_eq(st.dropped, 0);

    weir_sub_close(slow);
    weir_sub_close(fast);
    weir_stream_end(stream);
    cr_assert_eq(av_buffer_get_ref_count(first->buf), 1);
    av_packet_free(&first);
    close_bus();
}

/* A subscriber that is skipped repeatedly counts each skip. */
Test(bus, repeated_skips_are_counted)
{
    open_video_stream(0);
    weir_sub *slow = subscribe(stream, 2);
    write_pattern(stream, "KPP", 0);    /* skip 1 at seq 2 */
    write_pattern(stream, "KPP", 3);    /* K delivered, P queued, skip 2 at seq 5 */
    write_pattern(stream, "K", 6);
    weir_sub_stats st = stats_of(slow);
    cr_assert_eq(st.skips, 2);
    cr_assert_eq(st.dropped, 2 + 1 + 2 + 1);
    expect_read(slow, 6, true);
    expect_status(slow, AVERROR(EAGAIN));
    weir_sub_close(slow);
    weir_stream_end(stream);
    close_bus();
}

/* ---- late joiners -------------------------------------------------------- */

Test(bus, late_joiner_gets_codecpar_and_cached_gop)
{
    open_video_stream(0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), 1);
    write_pattern(stream, "KPPKPP", 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), AVERROR(EINVAL), "frozen after write");
    cr_assert_eq(weir_stream_ntracks(stream), 2);

    weir_sub *late = subscribe(stream, 0);
    cr_assert_eq(weir_sub_ntracks(late), 2);
    AVRational tb = { 0, 0 };
    const AVCodecParameters *v = weir_sub_codecpar(late, 0, &tb);
    cr_assert_not_null(v);
    cr_assert_eq(v->codec_type, AVMEDIA_TYPE_VIDEO);
    cr_assert_eq(v->codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(v->width, 1280);
    cr_assert_eq(av_cmp_q(tb, TB_VIDEO), 0);
    const AVCodecParameters *a = weir_sub_codecpar(late, 1, NULL);
    cr_assert_not_null(a);
    cr_assert_eq(a->codec_id, AV_CODEC_ID_AAC);
    cr_assert_null(weir_sub_codecpar(late, 2, NULL));
    cr_assert_null(weir_sub_codecpar(late, -1, NULL));

    expect_read(late, 3, true);     /* the cached GOP, from its keyframe */
    expect_read(late, 4, false);
    expect_read(late, 5, false);
    expect_status(late, AVERROR(EAGAIN));
    write_pattern(stream, "P", 6);
    expect_read(late, 6, false);
    weir_sub_stats st = stats_of(late);
    cr_assert_eq(st.delivered, 4);
    cr_assert_eq(st.dropped, 0);

    /* The snapshot is the sub's: it outlives the publisher. */
    weir_stream_end(stream);
    cr_assert_eq(weir_sub_codecpar(late, 0, NULL), v);
    cr_assert_eq(v->codec_id, AV_CODEC_ID_H264);
    expect_status(late, AVERROR_EOF);
    weir_sub_close(late);
    close_bus();
}

Test(bus, late_joiner_gop_too_big_for_queue_waits)
{
    open_video_stream(0);
    write_pattern(stream, "KPPKPP", 0);     /* cached GOP: 3..5 */

    weir_sub *late = subscribe(stream, 2);
    expect_status(late, AVERROR(EAGAIN));
    write_pattern(stream, "P", 6);
    expect_status(late, AVERROR(EAGAIN));
    write_pattern(stream, "KP", 7);
    expect_read(late, 7, true);
    expect_read(late, 8, false);
    weir_sub_stats st = stats_of(late);
    cr_assert_eq(st.skips, 0, "waiting at subscribe is not a skip");
    cr_assert_eq(st.dropped, 1);
    cr_assert_eq(st.delivered, 2);
    weir_sub_close(late);
    weir_stream_end(stream);
    close_bus();
}

/* A GOP longer than the cache is not cached: late joiners wait. */
Test(bus, gop_longer_than_cache_is_not_cached)
{
    open_video_stream(3);
    write_pattern(stream, "KPPP", 0);
    weir_sub *late = subscribe(stream, 0);
    expect_status(late, AVERROR(EAGAIN));
    write_pattern(stream, "PK", 4);
    expect_read(late, 5, true);
    weir_sub_close(late);

    /* A GOP that fits the cache exactly is cached. */
    write_pattern(stream, "PP", 6);
    late = subscribe(stream, 0);
    expect_read(late, 5, true);
    expect_read(late, 6, false);
    expect_read(late, 7, false);
    weir_sub_close(late);
    weir_stream_end(stream);
    close_bus();
}

Test(bus, gop_cache_disabled)
{
    open_video_stream(-1);
    write_pattern(stream, "KP", 0);
    weir_sub *late = subscribe(stream, 0);
    expect_status(late, AVERROR(EAGAIN));
    write_pattern(stream, "PK", 2);
    expect_read(late, 3, true);
    weir_sub_close(late);
    weir_stream_end(stream);
    close_bus();
}

/* A subscriber that came before the first packet waits for a keyframe too,
 * and gets tracks the publisher adds after it subscribed. */
Test(bus, early_subscriber_starts_at_keyframe)
{
    bus = weir_bus_new();
    cr_assert_eq(weir_bus_publish(bus, "early", NULL, &stream), 0);
    weir_sub *early = subscribe(stream, 0);
    cr_assert_eq(weir_sub_ntracks(early), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_VIDEO), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), 1);
    cr_assert_eq(weir_sub_ntracks(early), 2);
    cr_assert_eq(weir_sub_codecpar(early, 1, NULL)->codec_id, AV_CODEC_ID_AAC);

    write_pattern(stream, "PPK", 0);    /* the stream started mid-GOP */
    expect_read(early, 2, true);
    cr_assert_eq(stats_of(early).dropped, 2);
    weir_sub_close(early);
    weir_stream_end(stream);
    close_bus();
}

/* ---- key track ----------------------------------------------------------- */

Test(bus, audio_only_every_packet_is_a_restart_point)
{
    bus = weir_bus_new();
    cr_assert_eq(weir_bus_publish(bus, "radio", NULL, &stream), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), 0);
    weir_sub *fast = subscribe(stream, 0);
    weir_sub *slow = subscribe(stream, 2);

    for (int i = 0; i < 5; i++)
        write_one(stream, 0, i, true);

    /* slow: 0,1 queued; 2 overflows (0,1 dropped, 2 kept); 3 queued;
     * 4 overflows (2,3 dropped, 4 kept).  Nothing is lost waiting. */
    weir_sub_stats st = stats_of(slow);
    cr_assert_eq(st.skips, 2);
    cr_assert_eq(st.dropped, 4);
    expect_read(slow, 4, true);
    expect_status(slow, AVERROR(EAGAIN));

    for (int i = 0; i < 5; i++)
        expect_read(fast, i, true);

    /* The cache holds just the last packet: a late joiner starts there. */
    weir_sub *late = subscribe(stream, 0);
    expect_read(late, 4, true);
    expect_status(late, AVERROR(EAGAIN));

    weir_sub_close(fast);
    weir_sub_close(slow);
    weir_sub_close(late);
    weir_stream_end(stream);
    close_bus();
}

/* The key track is the first video track even when audio is track 0: audio
 * packets (all flagged key) are not restart points. */
Test(bus, key_track_is_first_video_track)
{
    bus = weir_bus_new();
    cr_assert_eq(weir_bus_publish(bus, "av", NULL, &stream), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), 0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_VIDEO), 1);
    weir_sub *sub = subscribe(stream, 0);

    write_one(stream, 0, 0, true);      /* audio: dropped, waiting for video key */
    write_one(stream, 1, 1, false);     /* video P: dropped */
    write_one(stream, 1, 2, true);      /* video K: restart point */
    write_one(stream, 0, 3, true);
    expect_read(sub, 2, true);
    expect_read(sub, 3, true);
    cr_assert_eq(stats_of(sub).dropped, 2);

    weir_sub *late = subscribe(stream, 0);     /* cache: 2, 3 */
    expect_read(late, 2, true);
    expect_read(late, 3, true);
    weir_sub_close(late);
    weir_sub_close(sub);
    weir_stream_end(stream);
    close_bus();
}

/* ---- end of stream ------------------------------------------------------- */

Test(bus, eof_after_draining)
{
    open_video_stream(0);
    weir_stream_ref(stream);    /* keep the object after end */
    weir_sub *sub = subscribe(stream, 0);
    write_pattern(stream, "KPP", 0);
    weir_stream_end(stream);
    cr_assert_eq(weir_bus_count(bus), 0);

    expect_read(sub, 0, true);
    expect_read(sub, 1, false);
    expect_read(sub, 2, false);
    expect_status(sub, AVERROR_EOF);
    expect_status(sub, AVERROR_EOF);

    /* Subscribing after the end works and reads EOF at once. */
    weir_sub *after = subscribe(stream, 0);
    cr_assert_eq(weir_sub_ntracks(after), 1);
    expect_status(after, AVERROR_EOF);

    weir_sub_close(sub);
    weir_sub_close(after);
    weir_stream_unref(stream);
    close_bus();
}

Test(bus, bus_free_ends_published_streams)
{
    open_video_stream(0);
    weir_sub *sub = subscribe(stream, 0);
    write_pattern(stream, "KP", 0);
    close_bus();

    expect_read(sub, 0, true);
    expect_read(sub, 1, false);
    expect_status(sub, AVERROR_EOF);
    AVPacket *pkt = make_pkt(0, 2, false);
    cr_assert_eq(weir_stream_write(stream, pkt), AVERROR(EPIPE));
    av_packet_free(&pkt);
    weir_stream_end(stream);    /* drops the publisher's reference; no bus left */
    weir_sub_close(sub);
}

/* ---- notify -------------------------------------------------------------- */

static void count_notify(void *arg)
{
    (*(int *)arg)++;
}

Test(bus, notify_on_empty_to_non_empty_and_end)
{
    open_video_stream(0);
    write_pattern(stream, "KP", 0);     /* cached for the pre-fill */

    int calls = 0;
    weir_sub *sub = NULL;
    weir_sub_opts opts = { .notify = count_notify, .arg = &calls };
    cr_assert_eq(weir_stream_subscribe(stream, &opts, &sub), 0);
    cr_assert_eq(calls, 0, "no notify for the pre-fill");
    expect_read(sub, 0, true);
    expect_read(sub, 1, false);
    expect_status(sub, AVERROR(EAGAIN));

    write_pattern(stream, "P", 2);
    cr_assert_eq(calls, 1);
    write_pattern(stream, "PP", 3);
    cr_assert_eq(calls, 1, "queue was not empty");
    expect_read(sub, 2, false);
    write_pattern(stream, "P", 5);
    cr_assert_eq(calls, 1, "queue was still not empty");
    for (int i = 3; i < 6; i++)
        expect_read(sub, i, false);
    write_pattern(stream, "P", 6);
    cr_assert_eq(calls, 2);

    weir_stream_end(stream);
    cr_assert_eq(calls, 3, "end-of-stream notifies");
    expect_read(sub, 6, false);
    expect_status(sub, AVERROR_EOF);
    weir_sub_close(sub);
    close_bus();
}

Test(bus, no_notify_after_close)
{
    open_video_stream(0);
    int calls = 0;
    weir_sub *sub = NULL;
    weir_sub_opts opts = { .notify = count_notify, .arg = &calls };
    cr_assert_eq(weir_stream_subscribe(stream, &opts, &sub), 0);
    write_pattern(stream, "K", 0);
    cr_assert_eq(calls, 1);
    weir_sub_close(sub);
    write_pattern(stream, "KP", 1);
    weir_stream_end(stream);
    cr_assert_eq(calls, 1);
    close_bus();
}

/* ---- ownership ------------------------------------------------------------ */

/* Every reference the bus took is released: drained subs, undrained subs,
 * a skipped sub, a late joiner, the GOP cache, in every closing order. */
static void run_ownership(bool end_first)
{
    enum { N = 40 };
    open_video_stream(0);
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_AUDIO), 1);
    weir_sub *drained = subscribe(stream, 0);
    weir_sub *undrained = subscribe(stream, 0);
    weir_sub *skipped = subscribe(stream, 3);
    weir_sub *late = NULL;

    AVPacket *sent[N];
    for (int i = 0; i < N; i++) {
        bool audio = i % 3 == 2;
        sent[i] = make_pkt(audio ? 1 : 0, i, audio || i % 10 == 0);
        cr_assert_eq(weir_stream_write(stream, sent[i]), 0);
        if (i == N / 2 + 3)
            late = subscribe(stream, 0);
    }
    AVPacket *pkt = av_packet_alloc();
    int n = 0;
    while (weir_sub_read(drained, pkt) == 0)
        n++;
    cr_assert_eq(n, N);
    av_packet_free(&pkt);
    cr_assert_gt(stats_of(skipped).skips, 0);

    if (end_first)
        weir_stream_end(stream);
    weir_sub_close(drained);
    weir_sub_close(undrained);
    weir_sub_close(skipped);
    weir_sub_close(late);
    if (!end_first)
        weir_stream_end(stream);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(av_buffer_get_ref_count(sent[i]->buf), 1, "packet %d still referenced", i);
        av_packet_free(&sent[i]);
    }
    close_bus();
}

Test(bus, ownership_close_subs_then_end)
{
    run_ownership(false);
}

Test(bus, ownership_end_then_close_subs)
{
    run_ownership(true);
}

/* ---- threads ------------------------------------------------------------- */

enum { THREADED_PACKETS = 20000, THREADED_SUBS = 4, GOP = 60 };

/* Packet seq: every third packet is audio (track 1, always key); video
 * keyframes every GOP packets. */
static bool seq_is_audio(int64_t seq)
{
    return seq % 3 == 2;
}

static bool seq_is_restart(int64_t seq)
{
    return !seq_is_audio(seq) && seq % GOP == 0;
}

typedef struct reader {
    weir_sub *sub;
    bool slow;
    atomic_int *published;      /* packets the publisher has written so far */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
    uint64_t received;
    bool bad_order, bad_restart, bad_payload;
} reader;

/* notify: must not block; only signals the reader's own condition. */
static void reader_notify(void *arg)
{
    reader *r = arg;
    pthread_mutex_lock(&r->lock);
    r->woken = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void reader_wait(reader *r)
{
    pthread_mutex_lock(&r->lock);
    while (!r->woken)
        pthread_cond_wait(&r->cond, &r->lock);
    r->woken = false;
    pthread_mutex_unlock(&r->lock);
}

static void check_packet(reader *r, const AVPacket *pkt, int64_t last)
{
    int64_t seq = pkt->pts;
    if (seq <= last)
        r->bad_order = true;
    /* A gap means packets were dropped: we must resume at a restart point. */
    if (seq != last + 1 && !seq_is_restart(seq))
        r->bad_restart = true;
    if (payload_seq(pkt) != seq || pkt->stream_index != (seq_is_audio(seq) ? 1 : 0))
        r->bad_payload = true;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    AVPacket *pkt = av_packet_alloc();
    int64_t last = -1;
    if (r->slow)    /* let the queue overflow for sure before reading */
        while (atomic_load(r->published) < THREADED_PACKETS / 4)
            sched_yield();
    for (;;) {
        int ret = weir_sub_read(r->sub, pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret == AVERROR(EAGAIN)) {
            reader_wait(r);
            continue;
        }
        check_packet(r, pkt, last);
        last = pkt->pts;
        r->received++;
        av_packet_unref(pkt);
        if (r->slow)
            nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
    }
    av_packet_free(&pkt);
    return NULL;
}

typedef struct publisher {
    weir_stream *stream;
    atomic_int published;
} publisher;

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    for (int64_t seq = 0; seq < THREADED_PACKETS; seq++) {
        bool audio = seq_is_audio(seq);
        AVPacket *pkt = make_pkt(audio ? 1 : 0, seq, audio || seq_is_restart(seq));
        if (weir_stream_write(p->stream, pkt) != 0)
            abort();
        av_packet_free(&pkt);
        atomic_store(&p->published, (int)seq + 1);
    }
    weir_stream_end(p->stream);
    return NULL;
}

/* Late joiners come and go while the stream runs. */
static void *churn_main(void *arg)
{
    publisher *p = arg;
    AVPacket *pkt = av_packet_alloc();
    while (atomic_load(&p->published) < THREADED_PACKETS) {
        weir_stream *s = weir_bus_find(bus, "threads");
        if (!s)
            break;
        weir_sub *sub = NULL;
        weir_sub_opts opts = { .queue_len = 512 };
        if (weir_stream_subscribe(s, &opts, &sub) != 0)
            abort();
        weir_stream_unref(s);
        int ret = weir_sub_read(sub, pkt);
        if (ret == 0 && !seq_is_restart(pkt->pts))
            abort();    /* a joiner must start at a restart point */
        av_packet_unref(pkt);
        weir_sub_close(sub);
    }
    av_packet_free(&pkt);
    return NULL;
}

Test(bus, threaded_publisher_and_readers, .timeout = 60)
{
    bus = weir_bus_new();
    publisher pub = { 0 };
    atomic_init(&pub.published, 0);
    cr_assert_eq(weir_bus_publish(bus, "threads", NULL, &pub.stream), 0);
    cr_assert_eq(add_track(pub.stream, AVMEDIA_TYPE_VIDEO), 0);
    cr_assert_eq(add_track(pub.stream, AVMEDIA_TYPE_AUDIO), 1);

    reader readers[THREADED_SUBS];
    pthread_t threads[THREADED_SUBS + 2];
    memset(readers, 0, sizeof readers);
    for (int i = 0; i < THREADED_SUBS; i++) {
        reader *r = &readers[i];
        r->slow = i == 0;
        r->published = &pub.published;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        weir_sub_opts opts = { .queue_len = r->slow ? 16 : 1024,
                               .notify = reader_notify, .arg = r };
        cr_assert_eq(weir_stream_subscribe(pub.stream, &opts, &r->sub), 0);
    }
    for (int i = 0; i < THREADED_SUBS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, reader_main, &readers[i]), 0);
    cr_assert_eq(pthread_create(&threads[THREADED_SUBS], NULL, churn_main, &pub), 0);
    cr_assert_eq(pthread_create(&threads[THREADED_SUBS + 1], NULL, publisher_main, &pub), 0);
    for (int i = 0; i < THREADED_SUBS + 2; i++)
        pthread_join(threads[i], NULL);

    cr_assert_eq(weir_bus_count(bus), 0);
    for (int i = 0; i < THREADED_SUBS; i++) {
        reader *r = &readers[i];
        weir_sub_stats st = stats_of(r->sub);
        cr_log_info("reader %d%s: delivered %llu dropped %llu skips %llu", i,
                    r->slow ? " (slow)" : "", (unsigned long long)st.delivered,
                    (unsigned long long)st.dropped, (unsigned long long)st.skips);
        cr_assert_not(r->bad_order, "reader %d: out of order", i);
        cr_assert_not(r->bad_restart, "reader %d: resumed off a keyframe", i);
        cr_assert_not(r->bad_payload, "reader %d: wrong payload", i);
        cr_assert_eq(st.delivered, r->received, "reader %d", i);
        cr_assert_eq(st.delivered + st.dropped, THREADED_PACKETS,
                     "reader %d: delivered %llu + dropped %llu", i,
                     (unsigned long long)st.delivered, (unsigned long long)st.dropped);
        cr_assert_eq(st.skips > 0, st.dropped > 0, "reader %d: drops without a skip", i);
        if (r->slow) {
            cr_assert_gt(st.skips, 0, "the slow reader was never skipped");
            cr_assert_gt(st.delivered, 0);
        }
        weir_sub_close(r->sub);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
    }
    close_bus();
}

/* ---- watchers -------------------------------------------------------------- */

typedef struct watch_log {
    char events[16][64];            /* "+name" published, "-name" ended */
    int n;
    int ntracks_at_publish;
    weir_sub *sub;                  /* subscribed from the PUBLISHED callback */
    int republish;                  /* publish "<name>/out" from the callback */
    weir_stream *out;
} watch_log;

static void watcher(void *arg, weir_bus_event ev, weir_stream *s)
{
    watch_log *w = arg;
    if (w->n < 16)
        snprintf(w->events[w->n++], sizeof w->events[0], "%c%s",
                 ev == WEIR_BUS_PUBLISHED ? '+' : '-', weir_stream_name(s));
    if (ev != WEIR_BUS_PUBLISHED || strstr(weir_stream_name(s), "/out"))
        return;
    w->ntracks_at_publish = weir_stream_ntracks(s);
    weir_sub_opts opts = { .queue_len = 64 };
    cr_assert_eq(weir_stream_subscribe(s, &opts, &w->sub), 0);
    if (w->republish) {
        char name[300];
        snprintf(name, sizeof name, "%s/out", weir_stream_name(s));
        cr_assert_eq(weir_bus_publish(bus, name, NULL, &w->out), 0);
    }
}

Test(bus, watchers_see_publish_and_end_and_miss_no_packet)
{
    watch_log w1 = { .republish = 1 }, w2 = { 0 };
    bus = weir_bus_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, &w1), 0);
    cr_assert_eq(weir_bus_watch(bus, watcher, &w2), 0);

    cr_assert_eq(weir_bus_publish(bus, "cam", NULL, &stream), 0);
    cr_assert_not_null(w1.sub);
    cr_assert_eq(w1.ntracks_at_publish, 0);
    cr_assert_not_null(w1.out, "a watcher may publish");
    cr_assert_eq(add_track(stream, AVMEDIA_TYPE_VIDEO), 0);
    write_pattern(stream, "KPPKP", 0);
    weir_stream_end(stream);

    /* The subscription made inside PUBLISHED got the track and every packet. */
    cr_assert_eq(weir_sub_ntracks(w1.sub), 1);
    AVPacket *pkt = av_packet_alloc();
    int n = 0, r;
    while ((r = weir_sub_read(w1.sub, pkt)) == 0)
        cr_assert_eq(pkt->pts, n++);
    cr_assert_eq(r, AVERROR_EOF);
    cr_assert_eq(n, 5);
    av_packet_free(&pkt);

    /* Both saw "+cam", the nested "+cam/out" and "-cam", in order. */
    for (int i = 0; i < 2; i++) {
        watch_log *w = i ? &w2 : &w1;
        cr_assert_eq(w->n, 3, "watcher %d saw %d events", i, w->n);
        cr_assert_str_eq(w->events[0], "+cam");
        cr_assert_str_eq(w->events[1], "+cam/out");
        cr_assert_str_eq(w->events[2], "-cam");
    }
    weir_sub_close(w1.sub);
    weir_sub_close(w2.sub);

    /* Unwatched: no more calls.  Unwatching an unknown pair is harmless. */
    weir_bus_unwatch(bus, watcher, &w2);
    weir_bus_unwatch(bus, watcher, &w2);
    weir_bus_unwatch(bus, watcher, &w1);
    cr_assert_eq(weir_bus_publish(bus, "cam2", NULL, &stream), 0);
    weir_stream_end(stream);
    cr_assert_eq(w1.n, 3);
    cr_assert_eq(w2.n, 3);
    weir_stream_end(w1.out);
    close_bus();
}

Test(bus, watchers_left_at_free_are_released)
{
    watch_log w = { 0 };
    bus = weir_bus_new();
    cr_assert_eq(weir_bus_watch(bus, watcher, &w), 0);
    close_bus();
}

/* ---- publisher statistics ------------------------------------------------ */

static int stats_calls;

static int some_stats(void *arg, weir_publisher_stat *out, int max)
{
    stats_calls++;
    for (int i = 0; i < 3 && i < max; i++)
        out[i] = (weir_publisher_stat){ "n", (double)i + *(int *)arg };
    return 3;
}

Test(bus, publisher_stats_while_live_only)
{
    weir_publisher_stat st[4];
    int base = 10;

    open_video_stream(0);
    cr_assert_eq(weir_stream_publisher_stats(stream, st, 4), 0, "no stats function");
    weir_stream_set_publisher(stream, &(weir_publisher_info){ .protocol = "srt",
                                                              .stats = some_stats,
                                                              .stats_arg = &base });
    cr_assert_eq(weir_stream_publisher_stats(stream, st, 4), 3);
    cr_assert_float_eq(st[2].value, 12.0, 1e-9);
    cr_assert_eq(weir_stream_publisher_stats(stream, st, 2), 2, "more than max reported");
    cr_assert_eq(weir_stream_publisher_stats(stream, st, 0), 0);
    weir_stream_ref(stream);
    weir_stream_end(stream);
    stats_calls = 0;
    cr_assert_eq(weir_stream_publisher_stats(stream, st, 4), 0);
    cr_assert_eq(stats_calls, 0, "stats called after the publisher ended");
    weir_stream_unref(stream);
    stream = NULL;
    close_bus();
}
