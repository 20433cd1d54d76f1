/*
 * Unit tests for transcode/ladder: the profile grammar (and its error
 * messages) and the decision table: sizes for 16:9, 4:3, portrait, odd and
 * anamorphic sources, never upscaling, frame-rate caps, bitrate scaling,
 * audio pass-through versus encoding, audio-only and video-only sources.
 */
#include <criterion/criterion.h>

#include "transcode/ladder.h"

#include <string.h>

#define DEFAULT_LADDER \
    "source; 720p:1280x720@2800k/30; 480p:854x480@1400k/30; 360p:640x360@800k/30; " \
    "audio:aac@128k/48000/2"

static weir_ladder_profile prof;
static char why[256];

static void parse_ok(const char *text)
{
    int ret = weir_ladder_parse(text, &prof, why, sizeof why);
    cr_assert_eq(ret, 0, "parse '%s': %s", text, why);
}

/* Parsing fails and the reason contains `expect`. */
static void parse_bad(const char *text, const char *expect)
{
    weir_ladder_profile p;
    int ret = weir_ladder_parse(text, &p, why, sizeof why);
    cr_assert_eq(ret, AVERROR(EINVAL), "parse '%s' should fail", text);
    cr_assert(strstr(why, expect), "parse '%s': got '%s', expected '%s'", text, why, expect);
}

static weir_ladder_source video_src(int w, int h, int fps)
{
    return (weir_ladder_source){
        .has_video = 1, .vcodec = AV_CODEC_ID_H264, .width = w, .height = h,
        .fps = { fps, fps ? 1 : 0 },
        .has_audio = 1, .acodec = AV_CODEC_ID_AAC, .sample_rate = 48000, .channels = 2,
        .abitrate = 128000,
    };
}

static weir_ladder_plan decide(const char *ladder, const weir_ladder_source *src)
{
    weir_ladder_plan plan;
    parse_ok(ladder);
    cr_assert_eq(weir_ladder_decide(src, &prof, &plan), 0);
    return plan;
}

static void assert_rung(const weir_ladder_plan *p, int i, const char *name, int w, int h)
{
    cr_assert_lt(i, p->nvideo, "rendition %d missing", i);
    cr_assert_str_eq(p->video[i].name, name);
    cr_assert_eq(p->video[i].width, w, "%s: width %d, expected %d", name, p->video[i].width, w);
    cr_assert_eq(p->video[i].height, h, "%s: height %d, expected %d", name, p->video[i].height,
                 h);
    if (!p->video[i].source) {
        cr_assert_eq(p->video[i].width % 2, 0);
        cr_assert_eq(p->video[i].height % 2, 0);
    }
}

static int was_dropped(const weir_ladder_plan *p, const char *name)
{
    for (int i = 0; i < p->ndropped; i++)
        if (strcmp(p->dropped[i].name, name) == 0)
            return 1;
    return 0;
}

/* ---- grammar -------------------------------------------------------------- */

Test(ladder, parses_the_default_profile)
{
    parse_ok(DEFAULT_LADDER);
    cr_assert_eq(prof.nrungs, 4);
    cr_assert(prof.rungs[0].source);
    const weir_ladder_rung *r = &prof.rungs[1];
    cr_assert_str_eq(r->name, "720p");
    cr_assert_eq(r->max_width, 1280);
    cr_assert_eq(r->max_height, 720);
    cr_assert_eq(r->bitrate, 2800000);
    cr_assert_eq(r->maxrate, 2800000);
    cr_assert_eq(r->bufsize, 5600000);
    cr_assert_eq(r->max_fps.num, 30);
    cr_assert_eq(r->max_fps.den, 1);
    cr_assert_eq(r->codec, AV_CODEC_ID_H264);
    cr_assert_str_eq(r->preset, "veryfast");
    cr_assert_eq(prof.audio.codec, AV_CODEC_ID_AAC);
    cr_assert_eq(prof.audio.bitrate, 128000);
    cr_assert_eq(prof.audio.sample_rate, 48000);
    cr_assert_eq(prof.audio.channels, 2);
}

Test(ladder, parses_options_and_blanks)
{
    parse_ok("  hi : 1920 x 1080 @ 5.5M / 29.97 , maxrate=6M, bufsize=12000k, preset=fast,"
             "tune=zerolatency, profile=high, level=4.1 ;; lo:640x360@96000;");
    cr_assert_eq(prof.nrungs, 2);
    const weir_ladder_rung *r = &prof.rungs[0];
    cr_assert_str_eq(r->name, "hi");
    cr_assert_eq(r->bitrate, 5500000);
    cr_assert_eq(r->maxrate, 6000000);
    cr_assert_eq(r->bufsize, 12000000);
    cr_assert_eq(r->max_fps.num, 30000);
    cr_assert_eq(r->max_fps.den, 1001);
    cr_assert_str_eq(r->preset, "fast");
    cr_assert_str_eq(r->tune, "zerolatency");
    cr_assert_str_eq(r->profile, "high");
    cr_assert_eq(r->level, 41);
    cr_assert_eq(prof.rungs[1].bitrate, 96000);
    cr_assert_eq(prof.rungs[1].max_fps.num, 0);
    /* No audio item: the default target. */
    cr_assert_eq(prof.audio.bitrate, 128000);
}

Test(ladder, accepts_hevc_and_av1_when_the_encoder_exists)
{
    int have265 = avcodec_find_encoder_by_name("libx265") != NULL;
    int ret = weir_ladder_parse("h:1280x720@2M,codec=hevc,level=4", &prof, why, sizeof why);
    cr_assert_eq(ret == 0, have265, "%s", why);
    if (have265) {
        cr_assert_eq(prof.rungs[0].codec, AV_CODEC_ID_HEVC);
        cr_assert_eq(prof.rungs[0].level, 40);
    } else {
        cr_assert(strstr(why, "libx265"));
    }
    int havesvt = avcodec_find_encoder_by_name("libsvtav1") != NULL;
    ret = weir_ladder_parse("a:1280x720@2M,codec=av1,preset=8", &prof, why, sizeof why);
    cr_assert_eq(ret == 0, havesvt, "%s", why);
}

Test(ladder, errors_name_the_item_and_the_problem)
{
    parse_bad("", "no video rung");
    parse_bad("audio:aac@128k", "no video rung");
    parse_bad("source; source", "item 2 'source': 'source' given twice");
    parse_bad("source; 720p:1280x720", "item 2 '720p:1280x720': expected NAME:WxH@BITRATE");
    parse_bad("720p:1280*720@2M", "bad size '1280*720'");
    parse_bad("720p:1280x720@fast", "bad bitrate 'fast'");
    parse_bad("720p:1280x720@2G", "bad bitrate '2G'");
    parse_bad("720p:1280x720@1", "bitrate '1' out of range");
    parse_bad("720p:1280x7@2M", "height '7' out of range");
    parse_bad("720p:1280x720@2M/0", "fps '0' out of range");
    parse_bad("720p:1280x720@2M/x", "bad fps 'x'");
    parse_bad("720p:1280x720@2M,preset=turbo", "bad preset 'turbo' for h264");
    parse_bad("720p:1280x720@2M,tune=fast", "bad tune 'fast'");
    parse_bad("720p:1280x720@2M,profile=high10", "bad profile 'high10'");
    parse_bad("720p:1280x720@2M,level=3.3", "level '3.3' is not a h264 level");
    parse_bad("720p:1280x720@2M,codec=vp9", "bad codec 'vp9'");
    parse_bad("720p:1280x720@2M,color=red", "unknown option 'color'");
    parse_bad("720p:1280x720@2M,maxrate", "needs key=value");
    parse_bad("720p:1280x720@2M,maxrate=1M", "maxrate is below the bitrate");
    parse_bad("a b:1280x720@2M", "bad rung name 'a b'");
    parse_bad("source:1280x720@2M", "bad rung name 'source'");
    parse_bad("x:640x360@1M; x:320x180@500k", "rung name 'x' used twice");
    parse_bad("a:64x64@1M;b:64x64@1M;c:64x64@1M;d:64x64@1M;e:64x64@1M;f:64x64@1M;"
              "g:64x64@1M;h:64x64@1M", "more than 7 video rungs");
    parse_bad("source; audio:mp3@128k", "bad audio codec 'mp3'");
    parse_bad("source; audio:aac@128k/44000", "sample rate 44000 is not an AAC rate");
    parse_bad("source; audio:aac@128k/48000/9", "channels '9' out of range");
    parse_bad("source; audio:aac@128k/48000/2/1", "too many '/' fields");
    parse_bad("source; audio:aac@1M", "audio bitrate '1M' out of range");
    parse_bad("source; audio:aac@128k; audio:aac@96k", "audio given twice");
    parse_bad("banana", "item 1 'banana': expected 'source'");
}

/* ---- video decisions -------------------------------------------------------- */

Test(ladder, landscape_16_9_keeps_every_rung)
{
    weir_ladder_source src = video_src(1920, 1080, 30);
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.nvideo, 4);
    assert_rung(&p, 0, "source", 1920, 1080);
    cr_assert(p.video[0].source);
    cr_assert_null(p.video[0].encoder);
    assert_rung(&p, 1, "720p", 1280, 720);
    assert_rung(&p, 2, "480p", 854, 480);
    assert_rung(&p, 3, "360p", 640, 360);
    cr_assert_str_eq(p.video[1].encoder, "libx264");
    cr_assert_eq(p.video[1].bitrate, 2800000);
    cr_assert_eq(p.video[1].decimate, 0);
    cr_assert_eq(p.ndropped, 0);
}

Test(ladder, source_4_3_fits_boxes_by_height_and_drops_upscales)
{
    weir_ladder_source src = video_src(640, 480, 30);
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.nvideo, 3);
    assert_rung(&p, 0, "source", 640, 480);
    assert_rung(&p, 1, "480p", 640, 480);       /* box 854x480: scale 1, kept */
    assert_rung(&p, 2, "360p", 480, 360);
    cr_assert(was_dropped(&p, "720p"));
    cr_assert_str_eq(p.dropped[0].reason, "above the source (would upscale)");
}

Test(ladder, portrait_turns_the_box)
{
    weir_ladder_source src = video_src(720, 1280, 30);
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.nvideo, 4);
    assert_rung(&p, 0, "source", 720, 1280);
    assert_rung(&p, 1, "720p", 720, 1280);
    assert_rung(&p, 2, "480p", 480, 854);
    assert_rung(&p, 3, "360p", 360, 640);
}

Test(ladder, odd_source_sizes_give_even_renditions)
{
    weir_ladder_source src = video_src(1281, 721, 30);
    weir_ladder_plan p = decide("source; 720p:1280x720@2800k; 360p:640x360@800k; "
                                "x:333x333@300k", &src);
    assert_rung(&p, 0, "source", 1281, 721);    /* passed through as it is */
    assert_rung(&p, 1, "720p", 1280, 720);
    assert_rung(&p, 2, "360p", 640, 360);
    assert_rung(&p, 3, "x", 332, 188);          /* 333 wide box: even, inside it */

    /* One pixel smaller than the box is already an upscale. */
    src = video_src(1279, 719, 30);
    p = decide("source; 720p:1280x720@2800k", &src);
    cr_assert_eq(p.nvideo, 1);
    cr_assert(was_dropped(&p, "720p"));

    src = video_src(321, 181, 30);
    p = decide("r:256x144@300k", &src);
    assert_rung(&p, 0, "r", 256, 144);
}

Test(ladder, anamorphic_source_uses_the_display_aspect)
{
    weir_ladder_source src = video_src(720, 576, 25);
    src.sar = (AVRational){ 64, 45 };           /* 16:9 PAL: 1024x576 displayed */
    weir_ladder_plan p = decide("360p:640x360@800k", &src);
    assert_rung(&p, 0, "360p", 640, 360);
}

Test(ladder, all_rungs_above_the_source_keep_the_smallest_at_source_size)
{
    weir_ladder_source src = video_src(320, 180, 30);
    weir_ladder_plan p = decide("720p:1280x720@2800k/30; 480p:854x480@1400k/30", &src);
    cr_assert_eq(p.nvideo, 1);
    assert_rung(&p, 0, "480p", 320, 180);
    /* 854x480 -> 320x180 is (480/180)^2 fewer pixels: bitrates follow. */
    cr_assert_float_eq((double)p.video[0].bitrate, 1400000.0 * (180.0 / 480) * (180.0 / 480),
                       1000.0);
    cr_assert_eq(p.ndropped, 1);
    cr_assert_str_eq(p.dropped[0].name, "720p");

    /* Odd source: the kept rung is still even and inside the source. */
    src = video_src(321, 181, 30);
    p = decide("720p:1280x720@2800k", &src);
    assert_rung(&p, 0, "720p", 320, 180);
}

Test(ladder, all_rungs_above_the_source_with_a_source_rung_keep_only_the_source)
{
    weir_ladder_source src = video_src(426, 240, 30);
    weir_ladder_plan p = decide("source; 720p:1280x720@2800k; 480p:854x480@1400k", &src);
    cr_assert_eq(p.nvideo, 1);
    assert_rung(&p, 0, "source", 426, 240);
    cr_assert_eq(p.ndropped, 2);
}

Test(ladder, fps_is_capped_and_bitrate_follows_slower_sources)
{
    weir_ladder_source src = video_src(1280, 720, 60);
    weir_ladder_plan p = decide("a:1280x720@3M/30; b:640x360@1M", &src);
    cr_assert_eq(p.video[0].fps.num, 30);
    cr_assert_eq(p.video[0].decimate, 1);
    cr_assert_eq(p.video[0].bitrate, 3000000);   /* at its cap: unchanged */
    cr_assert_eq(p.video[1].fps.num, 60);        /* no cap: the source's rate */
    cr_assert_eq(p.video[1].decimate, 0);

    src = video_src(1280, 720, 25);
    p = decide("a:1280x720@3M/30", &src);
    cr_assert_eq(p.video[0].fps.num, 25);
    cr_assert_eq(p.video[0].decimate, 0);
    cr_assert_eq(p.video[0].bitrate, 2500000);
    cr_assert_eq(p.video[0].maxrate, 2500000);
    cr_assert_eq(p.video[0].bufsize, 5000000);

    src = video_src(1280, 720, 5);                /* never below half */
    p = decide("a:1280x720@3M/30", &src);
    cr_assert_eq(p.video[0].bitrate, 1500000);

    src = video_src(1280, 720, 0);                /* unknown: decimate to the cap */
    p = decide("a:1280x720@3M/30; b:640x360@1M", &src);
    cr_assert_eq(p.video[0].fps.num, 30);
    cr_assert_eq(p.video[0].decimate, 1);
    cr_assert_eq(p.video[0].bitrate, 3000000);
    cr_assert_eq(p.video[1].fps.num, 0);
}

Test(ladder, ntsc_rates_compare_exactly)
{
    weir_ladder_source src = video_src(1280, 720, 0);
    src.fps = (AVRational){ 60000, 1001 };
    weir_ladder_plan p = decide("a:1280x720@3M/29.97", &src);
    cr_assert_eq(p.video[0].fps.num, 30000);
    cr_assert_eq(p.video[0].fps.den, 1001);
    cr_assert_eq(p.video[0].decimate, 1);
}

Test(ladder, bitrate_never_exceeds_the_source)
{
    weir_ladder_source src = video_src(1280, 720, 30);
    src.vbitrate = 1000000;
    weir_ladder_plan p = decide("source; a:1280x720@3M; b:640x360@800k", &src);
    cr_assert_eq(p.video[1].bitrate, 1000000);
    cr_assert_eq(p.video[1].maxrate, 1000000);
    cr_assert_eq(p.video[2].bitrate, 800000);
}

Test(ladder, renditions_are_ordered_highest_first)
{
    weir_ladder_source src = video_src(1920, 1080, 30);
    weir_ladder_plan p = decide("lo:640x360@800k; mid:1280x720@2M; source; "
                                "mid_hq:1280x720@4M", &src);
    assert_rung(&p, 0, "source", 1920, 1080);
    assert_rung(&p, 1, "mid_hq", 1280, 720);
    assert_rung(&p, 2, "mid", 1280, 720);
    assert_rung(&p, 3, "lo", 640, 360);
}

Test(ladder, source_rung_needs_a_packageable_codec)
{
    weir_ladder_source src = video_src(640, 360, 30);
    src.vcodec = AV_CODEC_ID_VP8;
    weir_ladder_plan p = decide("source; lo:640x360@800k", &src);
    cr_assert_eq(p.nvideo, 1);
    assert_rung(&p, 0, "lo", 640, 360);
    cr_assert(was_dropped(&p, "source"));

    parse_ok("source");
    cr_assert_eq(weir_ladder_decide(&src, &prof, &p), AVERROR(ENOTSUP));

    src = video_src(640, 360, 30);
    src.vcodec = AV_CODEC_ID_HEVC;
    p = decide("source", &src);
    cr_assert_eq(p.video[0].codec, AV_CODEC_ID_HEVC);
}

Test(ladder, unknown_video_size_is_refused)
{
    weir_ladder_source src = video_src(0, 0, 30);
    weir_ladder_plan p;
    parse_ok(DEFAULT_LADDER);
    cr_assert_eq(weir_ladder_decide(&src, &prof, &p), AVERROR(EINVAL));
}

/* ---- audio decisions -------------------------------------------------------- */

Test(ladder, aac_at_the_target_rate_passes_through)
{
    weir_ladder_source src = video_src(1280, 720, 30);
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_COPY);
    cr_assert_eq(p.audio.sample_rate, 48000);

    src.channels = 1;                            /* mono under a stereo target */
    src.abitrate = 0;                            /* unknown bitrate */
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_COPY);
    cr_assert_eq(p.audio.channels, 1);

    src.channels = 2;
    src.abitrate = 192000;                       /* 1.5x the target: still fine */
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_COPY);
}

Test(ladder, other_audio_is_encoded_once)
{
    weir_ladder_source src = video_src(1280, 720, 30);
    src.sample_rate = 44100;
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_ENCODE);
    cr_assert_eq(p.audio.codec, AV_CODEC_ID_AAC);
    cr_assert_eq(p.audio.sample_rate, 48000);
    cr_assert_eq(p.audio.bitrate, 128000);
    cr_assert(strstr(p.audio_reason, "sample rate"));

    src = video_src(1280, 720, 30);
    src.acodec = AV_CODEC_ID_OPUS;
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_ENCODE);
    cr_assert_str_eq(p.audio_reason, "the source is not AAC");

    src = video_src(1280, 720, 30);
    src.channels = 6;
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_ENCODE);
    cr_assert_eq(p.audio.channels, 2);

    src = video_src(1280, 720, 30);
    src.abitrate = 320000;
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_ENCODE);

    src = video_src(1280, 720, 30);
    src.acodec = AV_CODEC_ID_MP3;
    src.channels = 1;
    p = decide("source; audio:aac@96k/44100/2", &src);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_ENCODE);
    cr_assert_eq(p.audio.sample_rate, 44100);
    cr_assert_eq(p.audio.channels, 1);           /* never upmixed */
    cr_assert_eq(p.audio.bitrate, 96000);
}

Test(ladder, audio_only_and_video_only_sources)
{
    weir_ladder_source src = { .has_audio = 1, .acodec = AV_CODEC_ID_AAC,
                               .sample_rate = 48000, .channels = 2 };
    weir_ladder_plan p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.nvideo, 0);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_COPY);

    src = video_src(1280, 720, 30);
    src.has_audio = 0;
    p = decide(DEFAULT_LADDER, &src);
    cr_assert_eq(p.nvideo, 4);
    cr_assert_eq(p.audio_mode, WEIR_LADDER_AUDIO_NONE);
}

/* ---- reporting ------------------------------------------------------------ */

Test(ladder, json_describes_every_decision)
{
    weir_ladder_source src = video_src(640, 480, 60);
    src.sample_rate = 44100;
    weir_ladder_plan p = decide("source; 720p:1280x720@2800k/30; 360p:640x360@800k/30,"
                                "level=3.1,profile=main", &src);
    json_t *j = weir_ladder_plan_json(&src, &p);
    cr_assert_not_null(j);
    json_t *r = json_object_get(j, "renditions");
    cr_assert_eq(json_array_size(r), 2);
    json_t *lo = json_array_get(r, 1);
    cr_assert_str_eq(json_string_value(json_object_get(lo, "name")), "360p");
    cr_assert_eq(json_integer_value(json_object_get(lo, "width")), 480);
    cr_assert_eq(json_integer_value(json_object_get(lo, "height")), 360);
    cr_assert_float_eq(json_real_value(json_object_get(lo, "fps")), 30.0, 1e-9);
    cr_assert(json_is_true(json_object_get(lo, "decimate")));
    cr_assert_str_eq(json_string_value(json_object_get(lo, "encoder")), "libx264");
    cr_assert_str_eq(json_string_value(json_object_get(lo, "level")), "3.1");
    cr_assert_str_eq(json_string_value(json_object_get(lo, "profile")), "main");
    cr_assert(json_is_true(json_object_get(json_array_get(r, 0), "passthrough")));
    json_t *d = json_array_get(json_object_get(j, "dropped"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "name")), "720p");
    json_t *a = json_object_get(j, "audio");
    cr_assert_str_eq(json_string_value(json_object_get(a, "mode")), "encode");
    cr_assert_eq(json_integer_value(json_object_get(a, "sample_rate")), 48000);
    json_t *sv = json_object_get(json_object_get(j, "source"), "video");
    cr_assert_eq(json_integer_value(json_object_get(sv, "width")), 640);
    json_decref(j);
    weir_ladder_plan_log("cam1", &p);            /* must not crash; goes to stderr */
}
