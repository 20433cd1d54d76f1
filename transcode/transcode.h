/*
 * transcode/transcode.h — decode once, scale and encode per rung
 * (DESIGN.md §1).
 *
 * A weir_transcoder watches the bus.  Every stream published under a
 * user-facing name S (weir_stream_name_valid) gets a live job that publishes
 * the ABR renditions of S as one bus stream "S/abr": one video track per
 * rendition, highest first, then one audio track shared by all, in the ISO
 * form (avcC/hvcC extradata, 4-byte length-prefixed NAL units) and in the
 * source's time bases.  Keyframes of every video track fall on the same
 * pts: the segment boundaries (docs/operations.md, "Transcoding").  The job
 * ends when S ends, and ends S/abr.
 *
 * File jobs (weir_transcoder_file) run the same pipeline over a media file
 * read at full speed and hand the renditions to a sink instead of the bus.
 *
 * Every job holds a place in one worker pool (transcode/pool.c): capacity is
 * transcode.workers, counted in what one core encodes in real time; a live
 * job that does not fit is degraded or queued (transcode.overload); file
 * jobs wait for capacity and give it up while a live job needs it.  Each job
 * runs on a thread of its own, with one more thread per encoded rung.
 */
#ifndef WEIR_TRANSCODE_H
#define WEIR_TRANSCODE_H

#include <jansson.h>

#include "core/core.h"
#include "core/metrics.h"

typedef struct weir_transcode_settings {
    int enabled;                    /* transcode.enabled */
    int64_t workers;                /* capacity in workers; 0: one per CPU core */
    int overload;                   /* index into weir_transcode_overload_names */
    double worker_rate;             /* Mpx/s one worker encodes in real time (veryfast) */
    int profile;                    /* index into weir_transcode_profile_names */
    char *ladder;                   /* profile "default" (owned by the weir_conf) */
    char *ladder_low;               /* profile "low" */
    char *ladder_high;              /* profile "high" */
} weir_transcode_settings;

extern const weir_conf_table weir_transcode_conf_table;

/* "default", "low", "high", NULL. */
extern const char *const weir_transcode_profile_names[];

/* "degrade", "queue", NULL: what a live job that does not fit gets. */
extern const char *const weir_transcode_overload_names[];

/* The ladder text of the profile called name (borrowed from s), or NULL for
 * an unknown name. */
const char *weir_transcode_profile_ladder(const weir_transcode_settings *s, const char *name);

/* The name of the renditions stream of source `name`: "<name>/abr". */
#define WEIR_TRANSCODE_SUFFIX "/abr"

typedef struct weir_transcoder weir_transcoder;

typedef struct weir_transcoder_opts {
    weir_bus *bus;                              /* borrowed; outlives the transcoder */
    weir_loop *loop;                            /* borrowed, may be NULL (not used yet) */
    const weir_transcode_settings *settings;    /* read during weir_transcoder_new only */
    int64_t segment_duration_ms;                /* packager.segment_duration */
    weir_metrics *metrics;                      /* may be NULL: no metrics */
    int queue_len;                              /* packets queued per source; 0: 1024 */
    /* Optional: the profile a stream asked for (its stream key's), by name
     * into name (cap bytes); 0, or a negative AVERROR / "" for the default
     * (transcode.profile).  Called on the job's thread, before its ladder is
     * decided; it may block briefly (a database lookup).  An unknown name is
     * logged and the default used. */
    int (*stream_profile)(void *arg, const char *stream, char *name, size_t cap);
    void *stream_profile_arg;
} weir_transcoder_opts;

/* Starts watching opts->bus (NULL: file jobs only); streams published
 * earlier are not picked up (create the transcoder before ingest starts).  *out (OUT) is the caller's:
 * weir_transcoder_free.  Returns 0, AVERROR(EINVAL) for a profile that does
 * not parse (config validation makes that a bug), AVERROR(ENOMEM). */
int weir_transcoder_new(const weir_transcoder_opts *opts, weir_transcoder **out);

/* ---- file jobs ------------------------------------------------------------ */

/* Where a file job's renditions go.  The callbacks are made one at a time
 * (never concurrently), from the job's threads, and never after done. */
typedef struct weir_transcode_sink {
    /* Once per output track, 0, 1, ... in order, all before the first
     * packet: video renditions highest first, then the audio.  par (ISO
     * form, as on the bus) is borrowed for the call.  A negative AVERROR
     * fails the job. */
    int (*track)(void *arg, int index, const AVCodecParameters *par, AVRational time_base);
    /* Every output packet, in non-decreasing dts across tracks (hence in dts
     * order per rendition); stream_index is the track.  Borrowed: take a
     * reference (av_packet_ref) to keep it.  A negative AVERROR fails the
     * job. */
    int (*packet)(void *arg, const AVPacket *pkt);
    /* Optional: every decoded source video frame the job keeps (in pts
     * order, from the first one the renditions start with), borrowed for the
     * call, with its time base (f->pts, else best_effort_timestamp).  Called
     * on the job's own thread, possibly while another thread is in packet:
     * what it touches must be its own (weir_thumbs).  It should be quick:
     * the job waits for it. */
    void (*frame)(void *arg, const AVFrame *f, AVRational time_base);
    /* Optional: percent of the file read, 0..100, each time it grows; 100
     * comes once the job is done. */
    void (*progress)(void *arg, int percent);
    /* Optional, and the last call: 0 (done), AVERROR_EXIT (cancelled), or
     * the error that failed the job. */
    void (*done)(void *arg, int result);
    void *arg;
} weir_transcode_sink;

typedef struct weir_transcode_file_opts {
    const char *input;              /* a path libavformat opens; copied */
    const char *name;               /* in logs, the API and metrics; NULL: the input's base name */
    const char *profile;            /* a profile name; NULL: transcode.profile */
    int64_t segment_duration_ms;    /* keyframe spacing; 0: the transcoder's */
    weir_transcode_sink sink;       /* copied; packet and track are required */
} weir_transcode_file_opts;

/* Starts a file job: the same pipeline as a live stream's, reading opts->input
 * as fast as the workers go, with keyframes at segment boundaries computed
 * as for a live stream.  It waits for capacity behind every live job and
 * gives its capacity up while a live job needs it.  *id (OUT, may be NULL)
 * names it in weir_transcoder_cancel and the API.  The job's result comes to
 * sink.done: a file libavformat cannot open, or with no decodable video or
 * audio, fails with AVERROR_INVALIDDATA (logged with the path and reason).
 * Returns 0, AVERROR(EINVAL) for an unknown profile or a missing callback,
 * AVERROR(ENOMEM). */
int weir_transcoder_file(weir_transcoder *t, const weir_transcode_file_opts *opts,
                         uint64_t *id);

/* Cancels job id (live or file): it ends as "cancelled" (a live job ends its
 * S/abr; the stream itself goes on untranscoded).  0, or AVERROR(ENOENT)
 * when no such job is running.  Any thread but the job's own callbacks. */
int weir_transcoder_cancel(weir_transcoder *t, uint64_t id);

/* ---- state -------------------------------------------------------------- */

/* ---- thumbnails (transcode/thumbs.c) ------------------------------------------
 *
 * A VOD asset's poster and storyboard, made from decoded frames — those a
 * file job decodes anyway (sink.frame), or a pass over the keyframes of a
 * file (weir_thumbs_scan_file) when the asset is not transcoded:
 *
 *   poster.jpg       the first frame at or after POSTER (10 % of the length,
 *                    at least 1 s in when the file is longer than 1 s), at most
 *                    1280 wide, keeping the display aspect ratio
 *   storyboard.jpg   a sprite sheet: one tile (tile_width wide) every
 *                    interval, in rows of WEIR_STORYBOARD_COLUMNS
 *   storyboard.vtt   WebVTT: one cue per tile, "storyboard.jpg#xywh=x,y,w,h",
 *                    covering the whole length
 *
 * JPEG through libavcodec's mjpeg encoder, scaling by libswscale. */

#define WEIR_STORYBOARD_COLUMNS 10
#define WEIR_POSTER_MAX_WIDTH 1280

/* The layout of a storyboard (pure; weir_storyboard_layout). */
typedef struct weir_storyboard {
    int tile_w, tile_h;             /* even, >= 2 */
    int columns, rows, tiles;       /* tiles <= max_tiles; rows * columns >= tiles */
    int64_t duration_ms;
    int64_t interval_ms;            /* one tile every interval, from 0 */
} weir_storyboard;

/* The layout for a picture of width x height (display aspect: sar, {0,1}
 * for square) lasting duration_ms: tiles of tile_w (at most the picture's
 * width), one every interval — whole seconds, at least min_interval_ms, and
 * long enough that at most max_tiles cover the duration.  0, or
 * AVERROR(EINVAL) for a size, duration or limit that is not positive. */
int weir_storyboard_layout(int width, int height, AVRational sar, int64_t duration_ms,
                           int tile_w, int max_tiles, int64_t min_interval_ms,
                           weir_storyboard *out);

/* Writes the WebVTT of layout sb, its cues naming `image` (e.g.
 * "storyboard.jpg"), into buf (cap bytes, NUL-terminated).  Returns the
 * length, or AVERROR(ENOSPC) when it does not fit. */
int weir_storyboard_vtt(const weir_storyboard *sb, const char *image, char *buf, size_t cap);

/* The poster's time: 10 % of duration_ms, at least 1 s when the media is
 * longer than 1 s.  Pure. */
int64_t weir_poster_time_ms(int64_t duration_ms);

typedef struct weir_thumbs weir_thumbs;

typedef struct weir_thumbs_opts {
    const char *dir;                /* where the three files go (exists); copied */
    int64_t duration_ms;            /* the media's length (> 0) */
    int tile_width;                 /* storyboard tiles; 0: 160 */
    int max_tiles;                  /* 0: 100 */
    int64_t min_interval_ms;        /* 0: 1 s */
} weir_thumbs_opts;

/* *out (OUT): the caller's, weir_thumbs_free.  0 or AVERROR(EINVAL/ENOMEM). */
int weir_thumbs_new(const weir_thumbs_opts *opts, weir_thumbs **out);

/* A decoded video frame (borrowed) with its time base: taken for the poster
 * or a tile when it is the first at or after their time.  Frames in pts
 * order.  The shape of weir_transcode_sink.frame (arg: the weir_thumbs).
 * Errors (ENOMEM, an encoder that does not open) are kept for finish. */
void weir_thumbs_frame(void *thumbs, const AVFrame *f, AVRational time_base);

/* Decodes the keyframes of the first video track of path (nothing else is
 * decoded) into weir_thumbs_frame.  0, or an AVERROR for a file that does
 * not open or has no video. */
int weir_thumbs_scan_file(weir_thumbs *t, const char *path);

/* Writes poster.jpg, storyboard.jpg and storyboard.vtt (each to a temporary
 * name, then renamed).  Tiles no frame reached repeat the last frame before
 * them.  0; AVERROR_INVALIDDATA when no frame came at all; another AVERROR. */
int weir_thumbs_finish(weir_thumbs *t);

void weir_thumbs_free(weir_thumbs *t);

/* Every job as a JSON array, the last 16 that ended first, then the others:
 * id, kind (live|file), stream, state (queued, waiting, probing, running,
 * done, failed, cancelled), admission (the pool's view: cost in workers),
 * ladder decisions, per-rendition counters, fps and speed, progress (file
 * jobs).  A new reference for the caller, or NULL on ENOMEM.  Any thread. */
json_t *weir_transcoder_jobs_json(weir_transcoder *t);

/* {"pool": {capacity, used, overload, ...}, "jobs": weir_transcoder_jobs_json}:
 * what GET /api/v1/transcode/jobs shows.  arg is the weir_transcoder (the
 * shape of weir_control_opts' transcode_jobs callback).  A new reference, or
 * NULL on ENOMEM.  Any thread. */
json_t *weir_transcoder_status_json(void *arg);

/* Stops watching, cancels every job (their S/abr streams end), joins their
 * threads and frees everything.  Not from a bus watcher.  NULL is a no-op. */
void weir_transcoder_free(weir_transcoder *t);

#endif
