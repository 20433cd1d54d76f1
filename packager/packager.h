/*
 * packager/packager.h — CMAF segments, HLS and DASH (DESIGN.md §1).
 *
 * The packager watches the bus.  Every stream published under a playback
 * name (weir_stream_name_valid) becomes a presentation (with a transcoder:
 * every "<name>/abr" it publishes, one video track per rung): the packager
 * subscribes, cuts each track into CMAF parts and segments at the key
 * track's keyframes, and keeps the live window, the HLS playlists and the
 * DASH MPD in memory as refcounted buffers.  The origin reads them through
 * weir_packager_lookup (a weir_object_lookup_fn), so it never depends on the
 * packager's types.
 *
 *   /live/<name>/index.m3u8          HLS master (CMAF)
 *   /live/<name>/<track>.m3u8        HLS media playlist, e.g. v0.m3u8, a0.m3u8
 *   /live/<name>/<track>_i<N>.mp4    init segment (N: the first segment's number)
 *   /live/<name>/<track>_<n>.m4s     media segment n
 *   /live/<name>/<track>_<n>.<k>.m4s part k of segment n (LL-HLS)
 *   /live/<name>/index.mpd           DASH MPD over the same files
 *   /live/<name>/ts/index.m3u8       HLS master over MPEG-TS (packager.hls_ts), with
 *   /live/<name>/ts/<v0>.m3u8, ts/<v0>_<n>.ts   one TS rendition per video track
 *   /live/index.json                 the playable streams (for the page at /)
 *
 * With packager.record, every presentation is also written to
 * <data_dir>/vod/<name>-<unix ms>/ (see pres.h, rec_*) as it goes, and
 * becomes a VOD asset (asset.json "ready") when the stream ends.
 *
 * Threads: bus notifications arrive on publisher threads and are posted to
 * the loop; everything else runs on the loop thread.
 */
#ifndef WEIR_PACKAGER_H
#define WEIR_PACKAGER_H

#include "core/core.h"
#include "core/work.h"

#include <jansson.h>

typedef struct weir_packager_settings {
    int64_t segment_duration;       /* ms; segments are cut at the first keyframe after it */
    int64_t part_duration;          /* ms; CMAF fragments inside a segment */
    int64_t window;                 /* segments listed in live playlists */
    int64_t reconnect_grace;        /* ms playlists stay live after the publisher left */
    int64_t linger;                 /* ms an ended stream's playlists stay served */
    int low_latency;                /* LL-HLS: parts, blocking reload, preload hints */
    int record;                     /* each live stream also becomes a VOD asset */
    int64_t dvr_window;             /* ms of a live stream playlists list (needs record) */
    int hls_ts;                     /* also MPEG-TS HLS under ts/ (packager/ts.h) */
    /* Retention of recordings: applied by the control plane's sweeper
     * (control/assets/retention.h), which the app hands these to. */
    int64_t record_max_age;         /* ms after a recording ended; 0: no limit */
    int64_t record_max_bytes;       /* all recordings together; 0: no limit */
    int64_t record_sweep_interval;  /* ms between two sweeps */
} weir_packager_settings;

extern const weir_conf_table weir_packager_conf_table;

/* Cross-key checks conf tables cannot express (part divides segment).
 * 0, or -1 after printing the reason. */
int weir_packager_settings_check(const weir_packager_settings *s);

typedef struct weir_packager weir_packager;

typedef struct weir_packager_opts {
    weir_loop *loop;
    weir_bus *bus;
    const weir_packager_settings *settings;     /* borrowed, outlives the packager */
    weir_metrics *metrics;                      /* may be NULL */
    weir_work *work;                            /* recordings are written here */
    const char *data_dir;                       /* recordings go to <data_dir>/vod/<id>/ */
    int abr;            /* a transcoder publishes "<name>/abr" (one track per rendition):
                           package that under <name>, and not the source itself */
} weir_packager_opts;

/* Starts watching opts->bus (register before publishers run).  0 or AVERROR. */
int weir_packager_new(const weir_packager_opts *opts, weir_packager **out /* OUT */);
/* Frees every presentation.  Call after the loop stopped and the bus is
 * quiet (after weir_loop_free has run the posted work).  NULL is a no-op. */
void weir_packager_free(weir_packager *p);

/* weir_object_lookup_fn for the origin's /live/ mount: path is
 * "<name>/<file>". */
int weir_packager_lookup(void *packager, const char *path, const weir_object_query *q,
                         weir_object *out);

/* fn(arg, name) runs on the loop whenever stream `name`'s playlists changed
 * (a part or a segment is out): the origin answers the requests it held. */
void weir_packager_on_change(weir_packager *pk, void (*fn)(void *arg, const char *name),
                             void *arg);

/* fn(arg, type, asset) runs on the loop each time a recording's asset.json
 * is on disk: type "asset.created" (state "recording") or "asset.state"
 * ("ready", "failed"); asset (borrowed) is the object written, the shape
 * GET /api/v1/assets/ID answers.  Set before publishers run. */
void weir_packager_on_asset(weir_packager *pk,
                            void (*fn)(void *arg, const char *type, const json_t *asset),
                            void *arg);

/* Loop thread: a new JSON array of the asset ids of the recordings that
 * must not be deleted now: those being written, and with
 * packager.dvr_window those a served presentation's DVR redirects into.
 * NULL on ENOMEM. */
json_t *weir_packager_recordings_in_use(weir_packager *pk);

/* Packages a media file as a VOD asset, blocking (call it from a worker):
 * every track CMAF can carry is cut into segments as a live stream would
 * be, and asset_dir gets what a recording gets (init and media segments,
 * VOD playlists, a static MPD; see pres.h), except asset.json, which
 * belongs to the caller.  H.264/HEVC in Annex B form (MPEG-TS, raw
 * streams) are converted.  *duration_ms (OUT, may be NULL): the asset's
 * length.  progress(arg, percent), if set, is called as the file is read.
 * 0, AVERROR_INVALIDDATA (not media, or nothing CMAF can carry), or
 * another AVERROR. */
int weir_packager_package_file(const char *input, const char *asset_dir,
                               const weir_packager_settings *settings, int64_t *duration_ms,
                               void (*progress)(void *arg, int percent), void *arg);

/* The same, pushed instead of read: a caller with packets already in the
 * bus's form (a transcode job's sink: ISO-form H.264/HEVC, raw AAC) makes a
 * weir_packager_vod for asset_dir (created on the first packet), declares
 * every track (0, 1, ... in order) before the first packet, pushes packets
 * in non-decreasing dts across tracks, and ends it, which writes the VOD
 * playlists and the static MPD listing every video track as a rendition.
 * Blocking: every file is written on the calling thread.  track and packet
 * have the shape of weir_transcode_sink's callbacks (arg: the vod); packets
 * are borrowed.  0 or a negative AVERROR; end: AVERROR_INVALIDDATA when
 * nothing (or no keyframe) came, and *duration_ms (OUT, may be NULL). */
typedef struct weir_packager_vod weir_packager_vod;
int weir_packager_vod_new(const char *asset_dir, const weir_packager_settings *settings,
                          weir_packager_vod **out /* OUT: weir_packager_vod_free */);
int weir_packager_vod_track(void *vod, int index, const AVCodecParameters *par, AVRational tb);
int weir_packager_vod_packet(void *vod, const AVPacket *pkt);
int weir_packager_vod_end(weir_packager_vod *vod, int64_t *duration_ms);
void weir_packager_vod_free(weir_packager_vod *vod);

/* Number of live presentations (for tests and the API). */
size_t weir_packager_count(const weir_packager *p);

#endif
