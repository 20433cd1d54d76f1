/*
 * packager/pres.h — one live presentation: the tracks of one bus stream cut
 * into CMAF parts and segments, and the playlists that list them.  Private
 * to the packager.
 *
 *   bus packets --pres_packet()--> per track: pending samples
 *        key track decides boundaries (segment: keyframe after the target;
 *        part: every part_duration)
 *        every track cuts its pending samples at each boundary, once it has
 *        a sample at or after it (so every sample's duration is known)
 *   --> part (moof+mdat, weir_buf) --> segment complete: whole-segment buf,
 *       window trimmed, playlists rebuilt (pres_render_*)
 *
 * Segment numbers and boundary instants are the same on every track.  The
 * key track is the first video track (the bus's key track), else track 0.
 *
 * A publisher that comes back before the presentation is dropped
 * (packager.reconnect_grace + packager.linger) continues the same
 * presentation (pres_resume): segment numbers and the media clock go on, and
 * a new "epoch" begins — new codec parameters, a new init segment named
 * after the epoch's first segment number, EXT-X-DISCONTINUITY and EXT-X-MAP
 * in HLS, a new Period in DASH.  The media clock stays on the wall clock
 * (media time = wall time since the first publish), so PROGRAM-DATE-TIME and
 * the MPD's availability times stay true across the gap.
 *
 * Everything here runs on the loop thread; nothing locks.
 *
 * Times: "ms" fields are milliseconds on the presentation's media clock
 * (0 = the first sample); "ts" fields are in the track's timescale.
 */
#ifndef WEIR_PACKAGER_PRES_H
#define WEIR_PACKAGER_PRES_H

#include "packager/packager.h"
#include "packager/cmaf.h"
#include "core/work.h"

#define PRES_BOUNDARIES 256         /* decided but not yet cut by every track */

/* One publish of one track: what a player needs to decode its segments.
 * Segments hold a reference; the track holds the current one. */
typedef struct pkg_epoch {
    int refs;
    int64_t number;                 /* its first segment number: init "<id>_i<number>.mp4" */
    int64_t start_ms;               /* media time of its first keyframe (0 for the first) */
    int64_t period_ms;              /* media time where its DASH Period starts: where the
                                       key track's media stopped before this publish (0
                                       for the first); see dash.c */
    int seq;                        /* discontinuity sequence number: 0, 1, ... */
    weir_buf *init;
    char codecs[64];                /* RFC 6381 */
    int width, height;              /* video */
    int sample_rate, channels;      /* audio */
} pkg_epoch;

typedef struct pkg_part {
    weir_buf *buf;                  /* [styp] moof mdat */
    int64_t start_ts, duration_ts;
    int independent;                /* starts with a keyframe */
} pkg_part;

typedef struct pkg_segment {
    int64_t number;
    int64_t start_ts, duration_ts;
    pkg_epoch *epoch;               /* reference */
    pkg_part *parts;
    int nparts, cap;
    weir_buf *whole;                /* the parts back to back; set when complete */
    int complete;
} pkg_segment;

/* A segment as playlists describe it (kept for every segment of a
 * recording, after its bytes left memory). */
typedef struct pkg_span {
    int64_t number, start_ts, duration_ts;
} pkg_span;

typedef struct pkg_rec pkg_rec;

typedef struct pkg_track {
    char id[16];                    /* "v0", "v1", "a0": file names and DASH ids */
    int is_video;
    AVCodecParameters *par;         /* owned */
    AVRational tb;                  /* of the bus packets */
    uint32_t timescale;
    char codecs[64];                /* RFC 6381 */
    weir_buf *init;                 /* init segment (of the current epoch) */
    pkg_epoch *epoch;               /* the current one (reference) */
    weir_cmaf_track cmaf;

    /* The part being built: packet references, in decode order. */
    AVPacket **pend;
    int npend, cappend;
    int64_t last_duration_ts;       /* for the final sample at end of stream */
    uint32_t frag_seq;
    uint64_t cut;                   /* boundaries consumed (absolute index) */
    int keyed;                      /* its first keyframe was seen */
    /* Composition delay (B-frames: pts - dts of the first keyframe).  Decode
     * times are moved later by it and composition offsets earlier (negative
     * ones, trun v1), so a segment's tfdt is its earliest presentation time,
     * as CMAF and the DASH SegmentTimeline want, and A/V sync is kept. */
    int64_t shift_ts;

    /* Segments, oldest first; the last one may be in progress. */
    pkg_segment **segs;
    int nsegs, capsegs;

    /* For the playlists. */
    uint64_t bytes_total;
    int64_t duration_total_ts;
    int64_t peak_bps;
    int64_t max_segment_ms;
    int64_t frames_total;           /* samples in complete segments */
    uint64_t segs_cut;              /* segment boundaries consumed */
    int64_t first_number;           /* the presentation's, see pkg_pres */
    weir_buf *playlist;             /* media playlist, rebuilt per segment (per part with LL) */
    weir_buf *playlist_delta;       /* the same, with EXT-X-SKIP (_HLS_skip=YES) */
    pkg_span *rec;                  /* every segment so far, when recording */
    int nrec, caprec;
    uint64_t playlist_etag;
} pkg_track;

typedef struct pkg_pres {
    char name[WEIR_BUS_NAME_MAX + 1];
    const weir_packager_settings *settings;
    int64_t created_unix_ms;
    int64_t ast_unix_ms;            /* wall clock of media time 0 */

    /* Segment numbers start here; the init segments are named after it
     * (<track>_i<first_number>.mp4).  Live presentations start at their
     * creation time in half-seconds (packager.c: first_number), so a stream
     * published again under the same name, even after a restart, never
     * reuses a URL that caches keep "immutable" for a year. */
    int64_t first_number;
    int64_t epoch_unix_ms;          /* when the current epoch's publisher came */
    int epoch_seq;                  /* the current epoch's discontinuity sequence */
    int64_t resume_at_ms;           /* resumed: media time floor for the first keyframe */
    pkg_track tracks[WEIR_STREAM_MAX_TRACKS];
    int ntracks;
    int map[WEIR_STREAM_MAX_TRACKS];    /* bus track -> tracks[] index, or -1 */
    int key;                        /* key track index */
    int64_t base_ms;                /* bus time of media time 0, in ms */
    int started;

    /* Boundaries decided by the key track: boundary i lives at
     * [i % PRES_BOUNDARIES] while some track has not cut it. */
    struct { int64_t ms; int segment; } bq[PRES_BOUNDARIES];
    uint64_t nboundaries;
    int64_t seg_start_ms;           /* media time of the current segment's start */
    int parts_in_seg;               /* part boundaries since it */
    int64_t part_target_ms;         /* EXT-X-PART-INF: the longest part the grid makes
                                       (whole frames), fixed once a frame's duration is known */
    int64_t segments_done;          /* segments complete on every track */

    int paused;                     /* the publisher left; everything is cut */
    int ended;                      /* ... and is not coming back: EXT-X-ENDLIST */
    int64_t target_s;               /* EXT-X-TARGETDURATION, only grows */
    weir_buf *master, *mpd;
    uint64_t version;               /* bumped whenever anything is rebuilt */
    void (*on_change)(void *arg, const char *name);     /* after each rebuild */
    void *change_arg;
    /* The recording's asset.json was written ("asset.created" for state
     * recording, "asset.state" for ready/failed); asset borrowed.  NULL: none. */
    void (*on_asset)(void *arg, const char *type, const json_t *asset);
    void *asset_arg;
    pkg_rec *rec;                   /* recording to disk, or NULL */
    char rec_id[WEIR_BUS_NAME_MAX + 32];    /* the last recording's asset id, for DVR */
    struct pkg_ts *ts;              /* MPEG-TS variant (packager.hls_ts, ts.h), or NULL */
    int64_t updated_unix_ms;        /* when it was */
} pkg_pres;

/* A new presentation for the stream's tracks (codec parameters and time
 * bases as the bus subscriber sees them).  Tracks with codecs CMAF cannot
 * carry are left out (logged).  0, AVERROR(EINVAL) when no track is left,
 * AVERROR(ENOMEM). */
int pres_new(const char *name, const weir_packager_settings *settings,
             const AVCodecParameters *const *pars, const AVRational *tbs, int ntracks,
             int64_t now_unix_ms, int64_t first_number, pkg_pres **out /* OUT */);
void pres_free(pkg_pres *p);
/* The stream's publisher is back (p is paused or ended): continue p with the new
 * tracks as a new epoch.  The tracks must match p's — the same packaged
 * tracks in the same order of kinds, audio at the same sample rate —
 * otherwise AVERROR(EINVAL) and p is untouched (start a new presentation).
 * Playlists turn live again at once. */
int pres_resume(pkg_pres *p, const AVCodecParameters *const *pars, const AVRational *tbs,
                int ntracks, int64_t now_unix_ms);

/* Feeds one bus packet (borrowed; the presentation takes its own
 * reference).  Packets of left-out tracks are ignored.  0 or AVERROR. */
int pres_packet(pkg_pres *p, const AVPacket *pkt, int64_t now_unix_ms);
/* The publisher left: cut what is pending into a last segment (and finish
 * the recording), but keep the playlists live — an encoder reconnecting
 * resumes them (pres_resume) and players keep polling meanwhile. */
int pres_pause(pkg_pres *p, int64_t now_unix_ms);
/* The stream ended (pausing first if needed): mark the playlists ended
 * (EXT-X-ENDLIST, static MPD). */
int pres_end(pkg_pres *p, int64_t now_unix_ms);

/* The object at `file` ("index.m3u8", "v0.m3u8", "v0_i<first_number>.mp4",
 * "v0_12.m4s", "v0_12.3.m4s" (part 3 of segment 12), "index.mpd"); q may be
 * NULL.  See weir_object_lookup_fn for the errors. */
int pres_lookup(pkg_pres *p, const char *file, const weir_object_query *q, weir_object *out);

/* packager/hls.c and packager/dash.c: render into a new weir_buf. */
weir_buf *pres_render_master(const pkg_pres *p);
weir_buf *pres_render_media(const pkg_pres *p, const pkg_track *t, int skip);
weir_buf *pres_render_mpd(const pkg_pres *p, int64_t now_unix_ms);
/* The recording's playlists: every segment, EXT-X-PLAYLIST-TYPE:VOD and
 * EXT-X-ENDLIST; a static MPD from 0. */
weir_buf *pres_render_vod_media(const pkg_pres *p, const pkg_track *t);
weir_buf *pres_render_vod_mpd(const pkg_pres *p);

/* packager/record.c: a presentation's recording (packager.record).  Files
 * are written on the blocking-work pool (synchronously once the pool is
 * shut down, during exit), each to a temporary name then renamed:
 *
 *   <data_dir>/vod/<id>/asset.json          state "recording", then "ready"
 *   <data_dir>/vod/<id>/<track>_i<first>.mp4, <track>_<n>.m4s
 *   <data_dir>/vod/<id>/index.m3u8, <track>.m3u8, index.mpd    at the end
 *
 * rec_start is called once the tracks are known; rec_segment for each
 * complete segment; rec_end once, after which the recording finishes on its
 * own (asset.json turns "ready" when every file is written) and p->rec is
 * NULL. */
/* dir: the asset's folder (created by the first write); work NULL: every
 * write happens at once, on the calling thread.  result NULL: a recording,
 * which writes its asset.json; otherwise *result gets 0 or an AVERROR once
 * the last file is written (with work NULL: before rec_end returns). */
int rec_start(pkg_pres *p, const char *dir, const char *id, weir_work *work, int *result);
void rec_segment(pkg_pres *p, pkg_track *t, const pkg_segment *s);
void rec_end(pkg_pres *p, int64_t now_unix_ms);
/* Writes buf (a new reference is taken) as <dir>/<name> of p's recording;
 * name may have one folder ("ts/v0_12.ts"), created as needed.  No-op
 * without a recording; buf NULL marks the recording failed. */
void rec_file(pkg_pres *p, const char *name, weir_buf *buf);

/* The complete segments in memory that live playlists list:
 * t->segs[first .. first + n - 1], the last `window` of them. */
void pres_listed(const pkg_pres *p, const pkg_track *t, int *first, int *n);

/* One segment as a live playlist lists it: in memory (seg), or with
 * packager.dvr_window only in the recording on disk (seg NULL; its URL
 * redirects there). */
typedef struct pkg_listed {
    int64_t number, start_ts, duration_ts;
    const pkg_epoch *epoch;
    const pkg_segment *seg;
} pkg_listed;

/* What t's live playlists list, oldest first: pres_listed's window, or with
 * packager.dvr_window every complete segment that starts within it (older
 * ones from the recording).  *out is malloc'd (NULL when *n is 0).
 * 0 or AVERROR(ENOMEM). */
int pres_listing(const pkg_pres *p, const pkg_track *t, pkg_listed **out, int *n);
/* Where track t stands: the number of the segment being built (or the next
 * one) and how many of its parts exist. */
void pres_live_edge(const pkg_track *t, int64_t *msn, int *parts);
/* An init segment's file name, "v0_i<epoch number>.mp4": of the track's
 * current epoch (pres_init_name) or of epoch e. */
#define PRES_INIT_NAME_MAX 48
void pres_init_name(const pkg_pres *p, const pkg_track *t, char buf[PRES_INIT_NAME_MAX]);
void pres_epoch_init_name(const pkg_track *t, const pkg_epoch *e, char buf[PRES_INIT_NAME_MAX]);
/* Peak and average bits per second of a track so far. */
int64_t pres_track_avg_bps(const pkg_track *t);
/* Frames per second of a video track so far (0 when unknown). */
double pres_track_fps(const pkg_track *t);

/* *out = a new reference to b with these headers' facts; AVERROR(ENOENT)
 * when b is NULL (not rendered yet). */
int pkg_give(weir_object *out, weir_buf *b, const char *type, weir_cache_class cache,
             int64_t max_age_ms, int64_t mtime_ms, uint64_t etag);
/* b's bytes as a new weir_buf (NULL when r < 0 or out of memory); frees b. */
weir_buf *pkg_finish(weir_bytes *b, int r);
/* Appends printf output to b.  0 or AVERROR(ENOMEM). */
int pkg_printf(weir_bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


#endif
