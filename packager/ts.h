/*
 * packager/ts.h — MPEG-TS HLS (packager.hls_ts), for players that predate
 * fMP4 in HLS.  Private to the packager.
 *
 * Two layers:
 *
 *   weir_ts_mux_*   the writer: pure bytes, no clocks, no I/O (like cmaf.h).
 *                   One per rendition, kept across segments, so continuity
 *                   counters and PCR run on from segment to segment.
 *   ts_*            the presentation side (ts.c): the segmenter (pres.c)
 *                   hands over each track's samples as it cuts them and says
 *                   when a track's segment ends; once every track of a
 *                   segment is cut, each rendition (a video track plus the
 *                   first audio track, or the audio track alone) becomes one
 *                   TS segment with the CMAF segment's number and start.
 *
 *   /live/<name>/ts/index.m3u8      master, EXT-X-VERSION 3, no EXT-X-MAP
 *   /live/<name>/ts/<id>.m3u8       media playlist per rendition (id: v0, v1, or a0)
 *   /live/<name>/ts/<id>_<n>.ts     segment n (the CMAF segment n's instant)
 *
 * Everything runs on the loop thread (pres.h); nothing locks.
 */
#ifndef WEIR_PACKAGER_TS_H
#define WEIR_PACKAGER_TS_H

#include "packager/cmaf.h"
#include "packager/pres.h"

/* ---- the writer --------------------------------------------------------- */

#define WEIR_TS_PID_PMT   0x1000
#define WEIR_TS_PID_VIDEO 0x0100
#define WEIR_TS_PID_AUDIO 0x0101

typedef struct weir_ts_mux weir_ts_mux;

/* 1 if the TS writer carries this codec (H.264 with avcC extradata, AAC
 * with an AudioSpecificConfig it can turn into ADTS headers). */
int weir_ts_supported(const AVCodecParameters *par);

/* A writer for one program of a video and/or an audio elementary stream
 * (either may be NULL, not both); the parameters are borrowed for the
 * call only (the writer keeps what it needs).  PCR rides on the video PID,
 * or on the audio PID without video.  0, AVERROR(EINVAL) for codecs or
 * extradata it cannot carry (see weir_ts_supported), AVERROR(ENOMEM). */
int weir_ts_mux_new(const AVCodecParameters *video, const AVCodecParameters *audio,
                    weir_ts_mux **out /* OUT */);
void weir_ts_mux_free(weir_ts_mux *m);     /* NULL is a no-op */

typedef struct weir_ts_sample {
    const uint8_t *data;            /* borrowed; the bus's form (cmaf.h's table) */
    size_t size;
    int64_t dts, pts;               /* 90 kHz; written modulo 2^33 */
    int audio;                      /* 0: the video stream, 1: the audio stream */
    int key;                        /* video: IDR (parameter sets go in front) */
} weir_ts_sample;

/* Appends one segment to out: PAT, PMT, then the samples (n >= 0) in the
 * order given, which must be by decode time across both streams.  A video
 * access unit is one PES (AUD first, SPS/PPS before keyframes, Annex B);
 * consecutive audio frames share a PES (ADTS each) for up to 100 ms.  On
 * failure out is left as it was and the writer's counters are unchanged. */
int weir_ts_mux_segment(weir_ts_mux *m, const weir_ts_sample *s, size_t n, weir_bytes *out);

/* ---- the presentation side (called by pres.c and record.c) -------------- */

typedef struct pkg_ts pkg_ts;

/* p->ts for a new presentation with settings->hls_ts (after its tracks
 * exist).  Renditions whose codecs TS cannot carry are left out (logged);
 * with none left p->ts stays NULL.  0 or AVERROR(ENOMEM). */
int ts_new(pkg_pres *p);
void ts_free(pkg_ts *ts);          /* NULL is a no-op */

/* pres.c, as track t cuts a part: the TS side takes pkts[0..n-1] (decode
 * order) and sets each slot to NULL.  0 or AVERROR(ENOMEM). */
int ts_take(pkg_pres *p, pkg_track *t, AVPacket **pkts, int n);
/* pres.c, as track t ends a segment: s is its CMAF segment (complete or
 * about to be), or NULL when the track had nothing in it.  Muxes and
 * publishes every TS segment that became whole.  After pres_pause set
 * p->paused, it expects one last call per track (pres_pause's) and then
 * flushes whatever is still queued. */
void ts_cut(pkg_pres *p, pkg_track *t, const pkg_segment *s, int64_t now_unix_ms);

/* pres.c: the playlists ended (EXT-X-ENDLIST now). */
void ts_ended(pkg_pres *p, int64_t now_unix_ms);
/* pres.c: the publisher is back with the tracks' new codec parameters
 * (pres_resume): new writers, and the next segments are a new
 * discontinuity sequence.  0 or AVERROR (the TS variant cannot carry the
 * new parameters: the caller drops it). */
int ts_resume(pkg_pres *p, int64_t now_unix_ms);

/* The object at `file` under ts/ ("index.m3u8", "v0.m3u8", "v0_12.ts").
 * Errors as weir_object_lookup_fn (ESTALE once out of the window). */
int ts_lookup(pkg_pres *p, const char *file, weir_object *out);

/* record.c, at the end of a recording: the ts/ playlists (VOD, ENDLIST). */
void ts_rec_end(pkg_pres *p);

#endif
