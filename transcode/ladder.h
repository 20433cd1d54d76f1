/*
 * transcode/ladder.h — private to transcode/: the ABR ladder.  A profile (a
 * list of rungs and an audio target, parsed from one config string) meets a
 * source (what the decoder sees) and yields a plan: which renditions to
 * produce, at what size, frame rate and bitrate, and what to do with the
 * audio.  weir_ladder_decide is a pure function; the pipeline only carries
 * the plan out.
 *
 * Profile grammar (one string; items separated by ';', blanks ignored):
 *
 *   ladder  := item (';' item)*
 *   item    := 'source' | rung | audio
 *   rung    := NAME ':' W 'x' H '@' RATE ['/' FPS] (',' KEY '=' VALUE)*
 *              KEY: maxrate (RATE), bufsize (RATE), codec (h264|hevc|av1),
 *                   preset, tune, profile, level (e.g. 3.1)
 *   audio   := 'audio:' CODEC '@' RATE ['/' SAMPLE_RATE ['/' CHANNELS]]
 *              CODEC: aac
 *   RATE    := number with optional k or M: 800k, 2.8M, 96000 (bits/s)
 *   NAME    := 1..31 of [A-Za-z0-9_-], not "source" or "audio", unique
 *
 *   e.g. "source; 720p:1280x720@2800k/30; 480p:854x480@1400k; audio:aac@128k/48000/2"
 *
 * Decision rules (weir_ladder_decide):
 *   1. The W x H box of a rung is oriented like the source: for a portrait
 *      source a landscape box is turned, so "720p" means 720 on the short side.
 *   2. The picture is fitted into the box keeping the source's display aspect
 *      ratio; both sides are rounded to even numbers and never exceed the box
 *      or the source.  A rung whose box would enlarge the source (scale > 1)
 *      is dropped: never upscale.
 *   3. When every rung is dropped, the smallest one is kept at the source's
 *      size (even), its bitrates scaled down by the ratio of pixels.
 *   4. A source rung passes the source video through (H.264 and HEVC only).
 *   5. Frame rate: capped at the rung's fps (frames are then decimated); a
 *      source slower than the cap scales the rung's bitrates by
 *      source_fps / cap, never below half.
 *   6. A rung's bitrate never exceeds the source's, when that is known.
 *   7. Audio passes through when the source is AAC at the target sample rate,
 *      with no more than the target channels and (when known) at most 1.5x
 *      the target bitrate; otherwise it is encoded once, shared by every
 *      rendition, at the target rate and min(source, target) channels.
 *   8. Renditions are ordered highest first (pixels, then bitrate; the source
 *      first among equals).
 */
#ifndef WEIR_TRANSCODE_LADDER_H
#define WEIR_TRANSCODE_LADDER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libavcodec/avcodec.h>

#define WEIR_LADDER_MAX_RUNGS 7     /* the bus carries 8 tracks; one is audio */
#define WEIR_LADDER_NAME_MAX  31

/* One video rung as configured. */
typedef struct weir_ladder_rung {
    char name[WEIR_LADDER_NAME_MAX + 1];
    int source;                     /* 1: pass the source through; the rest is unused */
    int max_width, max_height;      /* the box */
    int64_t bitrate;                /* bits/s */
    int64_t maxrate;                /* bits/s; default: bitrate */
    int64_t bufsize;                /* bits; default: 2 x maxrate */
    AVRational max_fps;             /* {0,1}: no cap */
    enum AVCodecID codec;           /* H264 (default), HEVC, AV1 */
    char preset[16];                /* default "veryfast" (x264/x265), "10" (SVT-AV1) */
    char tune[16];                  /* "" : none */
    char profile[16];               /* "" : the encoder's choice */
    int level;                      /* 31 for 3.1; 0: the encoder's choice */
} weir_ladder_rung;

typedef struct weir_ladder_audio {
    enum AVCodecID codec;           /* AAC */
    int64_t bitrate;                /* bits/s */
    int sample_rate;
    int channels;
} weir_ladder_audio;

typedef struct weir_ladder_profile {
    weir_ladder_rung rungs[WEIR_LADDER_MAX_RUNGS];
    int nrungs;
    weir_ladder_audio audio;        /* default aac@128k/48000/2 */
} weir_ladder_profile;

/* Parses text (grammar above) into *out (OUT).  Returns 0, or
 * AVERROR(EINVAL) with a reason naming the bad token in why (NUL-terminated,
 * truncated to whycap).  Checks everything, including that the encoder a
 * rung needs exists in this FFmpeg. */
int weir_ladder_parse(const char *text, weir_ladder_profile *out, char *why, size_t whycap);

/* What the job knows about its source; 0 / {0,1} / AV_CODEC_ID_NONE for
 * unknown. */
typedef struct weir_ladder_source {
    int has_video;
    enum AVCodecID vcodec;
    int width, height;
    AVRational sar;                 /* sample aspect ratio; {0,1}: square */
    AVRational fps;
    int64_t vbitrate;
    int has_audio;
    enum AVCodecID acodec;
    int sample_rate, channels;
    int64_t abitrate;
} weir_ladder_source;

typedef struct weir_rendition {
    char name[WEIR_LADDER_NAME_MAX + 1];
    int source;                     /* passthrough: no encoder */
    enum AVCodecID codec;
    const char *encoder;            /* static: "libx264", ...; NULL for the source */
    int width, height;
    AVRational fps;                 /* output rate; {0,1} when the source's is unknown */
    int decimate;                   /* 1: drop frames to stay at or under fps */
    int64_t bitrate, maxrate, bufsize;
    char preset[16], tune[16], profile[16];
    int level;
} weir_rendition;

typedef enum weir_ladder_audio_mode {
    WEIR_LADDER_AUDIO_NONE = 0,     /* the source has no audio */
    WEIR_LADDER_AUDIO_COPY,
    WEIR_LADDER_AUDIO_ENCODE,
} weir_ladder_audio_mode;

typedef struct weir_ladder_plan {
    weir_rendition video[WEIR_LADDER_MAX_RUNGS];
    int nvideo;
    struct {
        char name[WEIR_LADDER_NAME_MAX + 1];
        const char *reason;         /* static text */
    } dropped[WEIR_LADDER_MAX_RUNGS];
    int ndropped;
    weir_ladder_audio_mode audio_mode;
    weir_ladder_audio audio;        /* what the audio track will be (ENCODE) */
    const char *audio_reason;       /* static text */
} weir_ladder_plan;

/* Applies the rules above.  Returns 0; AVERROR(ENOTSUP) when the source has
 * video and no rung can be made of it (a profile with only a source rung and
 * a source codec that cannot pass through); AVERROR(EINVAL) when the source
 * has video of unknown size (decode a frame first).  *out (OUT) is filled. */
int weir_ladder_decide(const weir_ladder_source *src, const weir_ladder_profile *profile,
                       weir_ladder_plan *out);

/* The decisions as JSON for the API: a new reference owned by the caller,
 * or NULL on ENOMEM.  src may be NULL. */
json_t *weir_ladder_plan_json(const weir_ladder_source *src, const weir_ladder_plan *plan);

/* One log line with every decision for `stream`. */
void weir_ladder_plan_log(const char *stream, const weir_ladder_plan *plan);

#endif
