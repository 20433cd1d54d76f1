/*
 * Unit tests: packager/pres — the segmenter and the playlists it renders.
 *
 * Real media: the ffmpeg CLI makes a short MP4 (H.264 with B-frames + AAC),
 * libavformat reads its packets, the presentation cuts them, and libavformat
 * reads the segments back.  Wall-clock times are passed in by the test.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "packager/pres.h"
#include "clip.h"

#define T0 1764400000000LL      /* a fixed "now" in Unix ms */

static const weir_packager_settings settings_2s = {
    .segment_duration = 2000, .part_duration = 500, .window = 3, .linger = 0,
};

/* Feeds the whole clip as if it arrived in real time from t0 (Unix ms);
 * counts packets fed per track into counts[]. */
static void feed(pkg_pres *p, clip *c, int64_t t0, int counts[8])
{
    AVPacket *pkt = av_packet_alloc();

    for (unsigned i = 0; i < c->fmt->nb_streams; i++)
        counts[i] = 0;
    cr_assert_geq(av_seek_frame(c->fmt, -1, 0, AVSEEK_FLAG_BACKWARD), 0);
    while (av_read_frame(c->fmt, pkt) == 0) {
        counts[pkt->stream_index]++;
        int64_t now = t0 + av_rescale_q(pkt->dts, c->fmt->streams[pkt->stream_index]->time_base,
                                        (AVRational){ 1, 1000 });
        cr_assert_eq(pres_packet(p, pkt, now), 0);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
}

static int clip_tracks(clip *c, const AVCodecParameters *pars[8], AVRational tbs[8])
{
    int n = (int)c->fmt->nb_streams;
    for (int i = 0; i < n; i++) {
        pars[i] = c->fmt->streams[i]->codecpar;
        tbs[i] = c->fmt->streams[i]->time_base;
    }
    return n;
}

/* Feeds the whole clip; returns packets fed per track (in *counts). */
static pkg_pres *package(clip *c, const weir_packager_settings *cfg, int counts[8])
{
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int n = clip_tracks(c, pars, tbs);
    pkg_pres *p = NULL;

    cr_assert_eq(pres_new("cam1", cfg, pars, tbs, n, T0, 1, &p), 0);
    feed(p, c, T0, counts);
    return p;
}

static weir_buf *lookup(pkg_pres *p, const char *file, int *err)
{
    weir_object o = { 0 };
    *err = pres_lookup(p, file, NULL, &o);
    return *err == 0 ? o.body : NULL;
}

/* Writes init (of the epoch numbered `init`) + segments first..last of
 * track id to a file and counts the frames libavformat reads back. */
static int frames_in_epoch(pkg_pres *p, const char *id, int64_t init, int64_t first,
                           int64_t last)
{
    char path[64], name[32];
    int err, frames = 0;
    weir_buf *b;
    FILE *f;
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();

    snprintf(path, sizeof path, "/tmp/weir-pres-out-%d.mp4", (int)getpid());
    cr_assert(f = fopen(path, "wb"));
    snprintf(name, sizeof name, "%s_i%lld.mp4", id, (long long)init);
    cr_assert(b = lookup(p, name, &err), "%s: %d", name, err);
    fwrite(b->data, 1, b->size, f);
    weir_buf_unref(b);
    for (int64_t n = first; n <= last; n++) {
        snprintf(name, sizeof name, "%s_%lld.m4s", id, (long long)n);
        cr_assert(b = lookup(p, name, &err), "%s: %d", name, err);
        fwrite(b->data, 1, b->size, f);
        weir_buf_unref(b);
    }
    fclose(f);
    cr_assert_eq(avformat_open_input(&fmt, path, NULL, NULL), 0);
    while (av_read_frame(fmt, pkt) == 0) {
        frames++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    unlink(path);
    return frames;
}

static int frames_in(pkg_pres *p, const char *id, int64_t first, int64_t last)
{
    return frames_in_epoch(p, id, 1, first, last);
}

Test(pres, cuts_aligned_segments_at_keyframes_with_parts)
{
    clip c;
    int counts[8];
    weir_packager_settings cfg = settings_2s;
    cfg.window = 100;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 7 -c:v libx264 -preset ultrafast -g 25 -bf 2 -c:a aac");
    pkg_pres *p = package(&c, &cfg, counts);
    cr_assert_eq(pres_end(p, T0 + 8000), 0);

    cr_assert_eq(p->ntracks, 2);
    pkg_track *v = &p->tracks[0], *a = &p->tracks[1];
    cr_assert_str_eq(v->id, "v0");
    cr_assert_str_eq(a->id, "a0");
    /* 7 s at 2 s per segment: 2, 2, 2, 1. */
    cr_assert_eq(v->nsegs, 4);
    cr_assert_eq(a->nsegs, 4);
    for (int i = 0; i < 4; i++) {
        pkg_segment *sv = v->segs[i], *sa = a->segs[i];
        cr_assert(sv->complete && sa->complete);
        cr_assert_eq(sv->number, i + 1);
        cr_assert_eq(sa->number, i + 1);
        cr_assert(sv->parts[0].independent, "segment %d starts with a keyframe", i + 1);
        if (i < 3) {
            cr_assert_eq(sv->duration_ts, 2 * 90000, "segment %d: %lld", i + 1,
                         (long long)sv->duration_ts);
            cr_assert_eq(sv->nparts, 4, "2 s / 0.5 s parts: %d", sv->nparts);
        }
        /* The segment is its parts back to back, styp first. */
        size_t total = 0;
        for (int k = 0; k < sv->nparts; k++)
            total += sv->parts[k].buf->size;
        cr_assert_eq(sv->whole->size, total);
        cr_assert_eq(memcmp(sv->whole->data + 4, "styp", 4), 0);
        /* Audio cuts within one AAC frame of the video cut (after the
         * first segment: AAC priming makes audio start ~60 ms late). */
        if (i == 0)
            continue;
        int64_t vms = sv->start_ts / 90, ams = sa->start_ts * 1000 / 48000;
        cr_assert(llabs(vms - ams) <= 22, "segment %d: video %lld ms audio %lld ms", i + 1,
                  (long long)vms, (long long)ams);
    }
    /* Every packet comes back out of the segments. */
    cr_assert_eq(frames_in(p, "v0", 1, 4), counts[0]);
    cr_assert_eq(frames_in(p, "a0", 1, 4), counts[1]);
    pres_free(p);
    clip_free(&c);
}

Test(pres, playlists_list_the_window_and_old_segments_are_gone)
{
    clip c;
    int counts[8], err;
    weir_buf *b;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=44100",
              "-t 13 -c:v libx264 -preset ultrafast -g 50 -c:a aac");
    pkg_pres *p = package(&c, &settings_2s, counts);

    /* Live: segments 1..6 complete (7 in progress), window 3. */
    cr_assert(b = lookup(p, "v0.m3u8", &err));
    char *text = strndup((const char *)b->data, b->size);
    weir_buf_unref(b);
    cr_assert(strstr(text, "#EXT-X-MEDIA-SEQUENCE:4\n"), "%s", text);
    cr_assert(strstr(text, "v0_4.m4s\nv0_4") == NULL);
    cr_assert(strstr(text, "v0_4.m4s") && strstr(text, "v0_5.m4s") && strstr(text, "v0_6.m4s"));
    cr_assert(!strstr(text, "v0_3.m4s") && !strstr(text, "v0_7.m4s"));
    cr_assert(!strstr(text, "#EXT-X-ENDLIST"));
    cr_assert(strstr(text, "#EXT-X-TARGETDURATION:2\n"));
    free(text);

    cr_assert(!lookup(p, "v0_1.m4s", &err));
    cr_assert_eq(err, AVERROR(ESTALE), "fell out of the window: 410");
    cr_assert(!lookup(p, "v0_7.m4s", &err));
    cr_assert_eq(err, AVERROR(ENOENT), "in progress: 404");
    cr_assert(!lookup(p, "v0_99.m4s", &err));
    cr_assert_eq(err, AVERROR(ENOENT));
    cr_assert(!lookup(p, "v7_1.m4s", &err));
    cr_assert(!lookup(p, "v0_-1.m4s", &err));
    cr_assert(!lookup(p, "v0_1x.m4s", &err));

    cr_assert(b = lookup(p, "index.m3u8", &err));
    text = strndup((const char *)b->data, b->size);
    weir_buf_unref(b);
    cr_assert(strstr(text, "RESOLUTION=160x120"), "%s", text);
    cr_assert(strstr(text, "mp4a.40.2"), "%s", text);
    free(text);

    cr_assert_eq(pres_end(p, T0 + 14000), 0);
    cr_assert(b = lookup(p, "v0.m3u8", &err));
    cr_assert(memmem(b->data, b->size, "#EXT-X-ENDLIST", 14));
    weir_buf_unref(b);
    cr_assert(b = lookup(p, "index.mpd", &err));
    cr_assert(memmem(b->data, b->size, "type=\"static\"", 13));
    weir_buf_unref(b);
    pres_free(p);
    clip_free(&c);
}

Test(pres, long_gop_makes_long_segments_and_a_truthful_target)
{
    clip c;
    int counts[8], err;
    weir_buf *b;
    /* Keyframes every 4 s with a 2 s target: segments run to the keyframe. */
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25",
              "-t 9 -c:v libx264 -preset ultrafast -g 100 -keyint_min 100 -sc_threshold 0");
    pkg_pres *p = package(&c, &settings_2s, counts);
    cr_assert_eq(pres_end(p, T0 + 10000), 0);
    pkg_track *v = &p->tracks[0];
    cr_assert_eq(v->segs[0]->duration_ts, 4 * 90000);
    cr_assert_eq(p->target_s, 4);
    cr_assert(b = lookup(p, "v0.m3u8", &err));
    cr_assert(memmem(b->data, b->size, "#EXT-X-TARGETDURATION:4\n", 24));
    weir_buf_unref(b);
    /* Video only: the master has no audio group. */
    cr_assert(b = lookup(p, "index.m3u8", &err));
    cr_assert(!memmem(b->data, b->size, "AUDIO=", 6));
    weir_buf_unref(b);
    pres_free(p);
    clip_free(&c);
}

Test(pres, audio_only_is_cut_by_time)
{
    clip c;
    int counts[8];
    clip_make(&c, "-f lavfi -i sine=sample_rate=48000", "-t 5 -c:a aac");
    pkg_pres *p = package(&c, &settings_2s, counts);
    cr_assert_eq(pres_end(p, T0 + 6000), 0);
    pkg_track *a = &p->tracks[0];
    cr_assert_eq(p->ntracks, 1);
    cr_assert(!a->is_video);
    cr_assert_geq(a->nsegs, 3);
    for (int i = 0; i < a->nsegs - 1; i++) {
        int64_t ms = a->segs[i]->duration_ts * 1000 / 48000;
        cr_assert(ms >= 2000 && ms < 2030, "segment %d: %lld ms", i + 1, (long long)ms);
    }
    cr_assert_eq(frames_in(p, "a0", 1, a->nsegs), counts[0]);
    pres_free(p);
    clip_free(&c);
}

Test(pres, unsupported_tracks_are_left_out)
{
    clip c;
    const AVCodecParameters *pars[1];
    AVRational tbs[1];
    pkg_pres *p = NULL;
    clip_make(&c, "-f lavfi -i sine=sample_rate=48000", "-t 1 -c:a libmp3lame");
    pars[0] = c.fmt->streams[0]->codecpar;
    tbs[0] = c.fmt->streams[0]->time_base;
    cr_assert_eq(pres_new("x", &settings_2s, pars, tbs, 1, T0, 1, &p), AVERROR(EINVAL));
    cr_assert_null(p);
    clip_free(&c);
}

static char *text_of(pkg_pres *p, const char *file, const weir_object_query *q, int *err)
{
    weir_object o = { 0 };
    char *text = NULL;
    if ((*err = pres_lookup(p, file, q, &o)) == 0) {
        text = strndup((const char *)o.body->data, o.body->size);
        weir_object_clear(&o);
    }
    return text;
}

Test(pres, low_latency_lists_parts_hints_and_holds_what_is_not_there_yet)
{
    clip c;
    int counts[8], err;
    weir_packager_settings cfg = settings_2s;
    cfg.low_latency = 1;
    cfg.window = 10;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 25.3 -c:v libx264 -preset ultrafast -g 50 -c:a aac");
    pkg_pres *p = package(&c, &cfg, counts);
    pkg_track *v = &p->tracks[0];
    int64_t edge;
    int parts;
    pres_live_edge(v, &edge, &parts);
    cr_assert_eq(edge, 13, "segments 1..12 complete, 13 in progress");
    cr_assert_gt(parts, 0);

    char *pl = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(pl, "%d", err);
    cr_assert(strstr(pl, "#EXT-X-VERSION:9\n"), "%s", pl);
    /* PART-TARGET: parts end on frames, so at 25 fps the grid makes 13
     * frames (520 ms) or 12 (480 ms). */
    cr_assert(strstr(pl, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,"
                         "PART-HOLD-BACK=1.560\n"), "%s", pl);
    cr_assert(strstr(pl, "#EXT-X-PART-INF:PART-TARGET=0.520\n"));
    cr_assert(strstr(pl, "#EXT-X-PART:DURATION=0.52000,URI=\"v0_13.0.m4s\",INDEPENDENT=YES\n"),
              "%s", pl);
    char hint[80];
    snprintf(hint, sizeof hint, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0_13.%d.m4s\"\n", parts);
    cr_assert(strstr(pl, hint), "%s", pl);
    cr_assert(strstr(pl, "#EXT-X-RENDITION-REPORT:URI=\"a0.m3u8\",LAST-MSN=13,LAST-PART="),
              "%s", pl);
    /* Parts only for the last few segments. */
    cr_assert(!strstr(pl, "v0_5.0.m4s"));
    cr_assert(strstr(pl, "v0_11.0.m4s") && strstr(pl, "v0_12.0.m4s"));
    /* Every part is at most PART-TARGET and at least 85% of it (the
     * spec's floor, except for a segment's last part). */
    for (const char *x = pl; (x = strstr(x, "#EXT-X-PART:DURATION=")); x++) {
        double d = strtod(x + 21, NULL);
        cr_assert_leq(d, 0.52 + 1e-9, "%s", x);
        cr_assert_geq(d, 0.85 * 0.52, "%s", x);
    }
    free(pl);

    /* Parts are served; the next one is held; beyond that is unknown. */
    weir_buf *b;
    cr_assert(b = lookup(p, "v0_13.0.m4s", &err));
    cr_assert_eq(memcmp(b->data + 4, "styp", 4), 0, "a segment's first part carries styp");
    weir_buf_unref(b);
    cr_assert(b = lookup(p, "v0_12.1.m4s", &err));
    cr_assert_eq(memcmp(b->data + 4, "moof", 4), 0);
    weir_buf_unref(b);
    char name[32];
    snprintf(name, sizeof name, "v0_13.%d.m4s", parts);
    cr_assert(!lookup(p, name, &err));
    cr_assert_eq(err, AVERROR(EAGAIN));
    snprintf(name, sizeof name, "v0_13.%d.m4s", parts + 1);
    cr_assert(!lookup(p, name, &err));
    cr_assert_eq(err, AVERROR(ENOENT));
    /* The segment being cut, asked for whole (low-latency DASH), is held:
     * the origin streams it part by part. */
    cr_assert(!lookup(p, "v0_13.m4s", &err));
    cr_assert_eq(err, AVERROR(EAGAIN));
    cr_assert(!lookup(p, "v0_15.m4s", &err));
    cr_assert_eq(err, AVERROR(ENOENT));

    /* Blocking reload. */
    weir_object_query q = { .msn = 13, .part = parts - 1, .skip = 0 };
    cr_assert(pl = text_of(p, "v0.m3u8", &q, &err));
    free(pl);
    q.part = parts;
    cr_assert(!text_of(p, "v0.m3u8", &q, &err));
    cr_assert_eq(err, AVERROR(EAGAIN));
    q = (weir_object_query){ .msn = 13, .part = -1 };
    cr_assert(!text_of(p, "v0.m3u8", &q, &err));
    cr_assert_eq(err, AVERROR(EAGAIN), "segment 13 is not complete");
    q = (weir_object_query){ .msn = 16, .part = 0 };
    cr_assert(!text_of(p, "v0.m3u8", &q, &err));
    cr_assert_eq(err, AVERROR(EINVAL), "more than two segments ahead: 400");
    q = (weir_object_query){ .msn = 12, .part = -1 };
    cr_assert(pl = text_of(p, "v0.m3u8", &q, &err));
    free(pl);

    /* Delta playlist: 10 segments of 2 s listed, CAN-SKIP-UNTIL 12 s. */
    q = (weir_object_query){ .msn = -1, .part = -1, .skip = 1 };
    cr_assert(pl = text_of(p, "v0.m3u8", &q, &err));
    cr_assert(strstr(pl, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "%s", pl);
    cr_assert(!strstr(pl, "v0_6.m4s") && strstr(pl, "v0_7.m4s"), "%s", pl);
    free(pl);

    /* Once ended, nothing is held and the hint is gone. */
    cr_assert_eq(pres_end(p, T0 + 30000), 0);
    q = (weir_object_query){ .msn = 14, .part = 0 };
    cr_assert(pl = text_of(p, "v0.m3u8", &q, &err));
    cr_assert(!strstr(pl, "PRELOAD-HINT") && strstr(pl, "#EXT-X-ENDLIST"));
    free(pl);
    pres_free(p);
    clip_free(&c);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *x = hay; (x = strstr(x, needle)); x += strlen(needle))
        n++;
    return n;
}

/* A publisher that drops and comes back (an encoder's reconnect) continues
 * the presentation: numbers go on, HLS marks the discontinuity with the new
 * init segment, DASH opens a Period where the wall clock says. */
Test(pres, a_publisher_back_continues_after_a_discontinuity)
{
    clip c;
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int counts[8], err;
    weir_packager_settings cfg = settings_2s;
    cfg.window = 10;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 6 -c:v libx264 -preset ultrafast -g 50 -c:a aac");
    int n = clip_tracks(&c, pars, tbs);
    pkg_pres *p = package(&c, &cfg, counts);
    cr_assert_eq(pres_resume(p, pars, tbs, n, T0 + 7000), AVERROR(EINVAL), "still publishing");
    /* The publisher leaves: everything is cut, the playlists stay live. */
    cr_assert_eq(pres_pause(p, T0 + 6000), 0);
    char *live = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(live && strstr(live, "v0_3.m4s") && !strstr(live, "#EXT-X-ENDLIST"), "%s", live);
    free(live);
    int64_t last = p->tracks[0].segs[p->tracks[0].nsegs - 1]->number;
    cr_assert_eq(last, 3, "6 s in 2 s segments");

    /* Back 4 s later, with timestamps from 0 again. */
    cr_assert_eq(pres_resume(p, pars, tbs, n, T0 + 10000), 0);
    char *pl = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(pl && !strstr(pl, "#EXT-X-ENDLIST"), "live again at once: %s", pl);
    free(pl);
    feed(p, &c, T0 + 10000, counts);
    cr_assert_eq(pres_end(p, T0 + 16000), 0);

    pl = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(pl, "%d", err);
    cr_assert(strstr(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                         "#EXT-X-MAP:URI=\"v0_i1.mp4\"\n"), "%s", pl);
    cr_assert_eq(count_of(pl, "#EXT-X-DISCONTINUITY\n"), 1, "%s", pl);
    const char *d = strstr(pl, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"v0_i4.mp4\"\n"
                               "#EXT-X-PROGRAM-DATE-TIME:");
    cr_assert(d, "%s", pl);
    cr_assert(strstr(d, "v0_4.m4s") && !strstr(d, "v0_3.m4s"), "%s", pl);
    /* PROGRAM-DATE-TIME after the gap: the wall clock of the comeback. */
    char when[WEIR_ISO8601_LEN];
    weir_clock_iso8601(T0 + 10000, when);
    cr_assert(strstr(d, when), "%s not in %s", when, d);
    free(pl);

    /* Both epochs decode, each with its own init segment. */
    cr_assert_eq(frames_in_epoch(p, "v0", 1, 1, 3), counts[0]);
    cr_assert_eq(frames_in_epoch(p, "v0", 4, 4, 6), counts[0]);
    cr_assert_eq(frames_in_epoch(p, "a0", 4, 4, 6), counts[1]);

    /* The MPD (static now) has a Period per epoch.  The second starts where
     * the first one's media ends (6 s: three 2 s segments), not where its own
     * media starts (10 s on the media clock, its epoch's tfdt): the 4 s
     * without media open the new Period, where dash.js looks ahead past them,
     * instead of closing the old one, where it stalls (dash.c). */
    char *mpd = text_of(p, "index.mpd", NULL, &err);
    cr_assert(mpd, "%d", err);
    cr_assert_eq(count_of(mpd, "<Period "), 2, "%s", mpd);
    cr_assert(strstr(mpd, "<Period id=\"1\" start=\"PT0.000S\">"), "%s", mpd);
    const char *p2 = strstr(mpd, "<Period id=\"4\" start=\"PT6.000S\">");
    cr_assert(p2, "%s", mpd);
    cr_assert(strstr(p2, "initialization=\"$RepresentationID$_i4.mp4\" "
                         "media=\"$RepresentationID$_$Number$.m4s\" startNumber=\"4\" "
                         "presentationTimeOffset=\"540000\""), "%s", p2);
    cr_assert(strstr(p2, "<S t=\"900000\""), "%s", p2);
    cr_assert(strstr(p2, "presentationTimeOffset=\"288000\""), "%s", p2);   /* audio */
    free(mpd);
    pres_free(p);
    clip_free(&c);
}

/* The window slides past the old epoch: the discontinuity sequence counts
 * it, and the header's MAP is the new epoch's. */
Test(pres, the_discontinuity_sequence_counts_discontinuities_that_left_the_window)
{
    clip c;
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int counts[8], err;
    weir_packager_settings cfg = settings_2s;       /* window 3 */
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25",
              "-t 8 -c:v libx264 -preset ultrafast -g 50");
    int n = clip_tracks(&c, pars, tbs);
    pkg_pres *p = package(&c, &cfg, counts);
    pres_end(p, T0 + 8000);
    cr_assert_eq(pres_resume(p, pars, tbs, n, T0 + 8500), 0);
    feed(p, &c, T0 + 8500, counts);
    char *pl = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(pl, "%d", err);
    cr_assert(strstr(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                         "#EXT-X-MAP:URI=\"v0_i5.mp4\"\n"), "%s", pl);
    cr_assert(!strstr(pl, "#EXT-X-DISCONTINUITY\n"), "%s", pl);
    free(pl);
    /* The old init stays while a kept segment (3, past the window, still
     * served) needs it. */
    weir_buf *b = lookup(p, "v0_i1.mp4", &err);
    cr_assert(b, "%d", err);
    weir_buf_unref(b);
    cr_assert_eq(p->tracks[0].segs[0]->number, 3);
    cr_assert_eq(p->tracks[0].segs[0]->epoch->number, 1);
    b = lookup(p, "v0_i2.mp4", &err);
    cr_assert_null(b);
    cr_assert_eq(err, AVERROR(ENOENT));
    pres_free(p);
    clip_free(&c);
}

/* The live MPD's Period for a comeback starts where the media before it
 * ended, and stays there once the old Period has left the window: a
 * Period@start that moved between MPD updates would move the whole Period
 * under a player's feet. */
Test(pres, the_period_after_a_comeback_starts_where_the_old_media_ended_and_stays)
{
    clip c;
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int counts[8], err;
    weir_packager_settings cfg = settings_2s;       /* window 3 */
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25",
              "-t 8 -c:v libx264 -preset ultrafast -g 50");
    int n = clip_tracks(&c, pars, tbs);
    pkg_pres *p = package(&c, &cfg, counts);
    cr_assert_eq(pres_pause(p, T0 + 8000), 0);      /* 4 segments, media to 8 s */
    cr_assert_eq(pres_resume(p, pars, tbs, n, T0 + 8500), 0);
    feed(p, &c, T0 + 8500, counts);                 /* 4 more: segment 5 on */
    char *mpd = text_of(p, "index.mpd", NULL, &err);
    cr_assert(mpd, "%d", err);
    cr_assert(strstr(mpd, "type=\"dynamic\""), "%s", mpd);
    cr_assert_eq(count_of(mpd, "<Period "), 1, "the old Period left the window: %s", mpd);
    const char *p2 = strstr(mpd, "<Period id=\"5\" start=\"PT8.000S\">");
    cr_assert(p2, "%s", mpd);
    cr_assert(strstr(p2, "presentationTimeOffset=\"720000\""), "%s", p2);
    /* Its media starts after the outage: at the comeback, 8.5 s or later. */
    const char *t = strstr(p2, "<S t=\"");
    cr_assert(t, "%s", p2);
    cr_assert_geq(strtoll(t + 6, NULL, 10), 765000, "%s", p2);
    free(mpd);
    pres_free(p);
    clip_free(&c);
}

Test(pres, a_publisher_back_with_other_tracks_is_not_resumed)
{
    clip av, a;
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int counts[8], err;
    clip_make(&av, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 3 -c:v libx264 -preset ultrafast -g 50 -c:a aac");
    clip_make(&a, "-f lavfi -i sine=sample_rate=44100", "-t 1 -c:a aac");
    pkg_pres *p = package(&av, &settings_2s, counts);
    pres_end(p, T0 + 3000);
    int n = clip_tracks(&a, pars, tbs);
    cr_assert_eq(pres_resume(p, pars, tbs, n, T0 + 4000), AVERROR(EINVAL));
    char *pl = text_of(p, "v0.m3u8", NULL, &err);
    cr_assert(pl && strstr(pl, "#EXT-X-ENDLIST"), "untouched: %s", pl);
    free(pl);
    pres_free(p);
    clip_free(&av);
    clip_free(&a);
}
