/*
 * transcode/pipeline.c — one transcode job (the interface is pipeline.h).
 *
 *   input: bus "S" or a file --read--> video packet -+-> source rung: the packet (ISO form) -------+
 *                                   +-> decoder -> frame: boundary? per encoded rung:   |
 *                                         keep (fps cap)? -> sws -> encoder -> ISO -----+-> interleaver -> output:
 *                     audio packet -+-> copy ------------------------------------------+   (dts order)   bus "S/abr"
 *                                   +-> decoder -> swr -> fifo -> AAC encoder ---------+                 or a sink
 *
 * Inputs and outputs plug in as tables (input_ops, output_ops): the bus
 * subscription or libavformat reading a file; a bus stream or the caller's
 * sink callbacks.  The rest does not know which.  A live source paces
 * itself; a file is read as fast as the rung queues drain (they are
 * bounded), and between packets a file job passes the pool's checkpoint,
 * where it waits while a live job has taken its capacity.
 *
 * Threads: the job's thread reads, decodes, decides boundaries and
 * decimation, and hands each encoded rung its frames (references, not
 * copies) through a small bounded queue; every encoded rung scales and
 * encodes on a thread of its own.  Whoever has packets (the job's thread
 * for the source rung and audio, a rung's thread for its video) queues them
 * in the interleaver and lets it write what is due, under one mutex, so one
 * thread at a time writes to the output.
 *
 * State machine (weir_pipeline_state):
 *
 *   WAITING --first packet: tracks known, video decoder open--> PROBING
 *   PROBING --first decoded frame (no video: first packet): ladder decided,
 *             the pool admits it (maybe degraded), encoders open, output
 *             started--> RUNNING
 *   PROBING --the pool has no room for a live job (transcode.overload=queue):
 *             decoder flushed, held packets dropped--> QUEUED
 *   QUEUED  --a source keyframe after the pool admitted it--> PROBING
 *   RUNNING --the source ended: decoders, encoders and interleaver flushed,
 *             output ended--> DONE
 *   WAITING, PROBING, QUEUED --the source ended--> DONE (nothing written)
 *   any state --weir_pipeline_stop--> CANCELLED;  --setup error, ENOMEM,
 *             a file that does not read, a sink error--> FAILED
 *
 *   transition              function
 *   WAITING -> PROBING      job_start
 *   PROBING -> RUNNING      job_configure
 *   PROBING -> QUEUED       job_queue
 *   QUEUED -> PROBING       job_unqueue
 *   RUNNING -> DONE         job_finish
 *
 * Until RUNNING, packets are held (pending) so that the source rung and the
 * audio start where the decoded video starts.
 *
 * Invariants:
 *   1. Keyframes.  job_boundary marks the segment boundaries on decoded
 *      frames: the first frame, then the first eligible frame whose pts is
 *      at least the previous boundary + segment_ms.  Eligible: every frame,
 *      or with a source rung only source keyframes, so the boundaries are
 *      exactly where a packager cutting the source rung cuts.  Every encoded
 *      rung gets an IDR on exactly those frames (never decimated away) and on
 *      no other (scenecut=0, infinite keyint, no B-frames).
 *   2. Order.  Packets reach S/abr in non-decreasing dts across tracks, one
 *      thread at a time (under olock): the interleaver writes the queued
 *      packet with the smallest dts once no other track can still get an
 *      earlier one; each track keeps a lower bound ("mark") of its future
 *      dts.  Only a source track silent for SILENT_US, or an encoded one
 *      whose decoder produced nothing for STUCK_US, stops being waited for;
 *      a packet older than the last one written (possible only then) is
 *      dropped and counted.
 *   3. Errors.  A packet the decoder rejects, or a frame an encoder rejects,
 *      is dropped and counted; the job goes on.  Only setup failures and
 *      ENOMEM end it (FAILED).
 *   4. Timestamps.  Video keeps the source's time base and pts (dts == pts
 *      for encoded rungs); copied audio keeps the source's; encoded audio is
 *      in 1/sample_rate, anchored at the source's first audio pts.
 */
#include "transcode/pipeline.h"

#include "core/log.h"
#include "core/nal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/audio_fifo.h>
#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libavutil/time.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include <libavformat/avformat.h>

#define MODULE "transcode"
#define QUEUE_DEFAULT 1024              /* source subscription, packets */
#define PENDING_MAX 4096                /* packets held before the first frame */
#define SILENT_US 3000000               /* a source-fed track this far behind is ignored */
#define STUCK_US 10000000               /* an idle encoded track this far behind is ignored */
#define PUBLISH_WAIT_US 2000000         /* for a previous job's S/abr to end */
#define SRC_KEYS 64                     /* recent source keyframe pts remembered */
#define X264_KEYINT_INFINITE (1 << 30)  /* x264's X264_KEYINT_MAX_INFINITE */
#define RUNG_QUEUE 8                    /* frames waiting for a rung's encoder */

/* ---- structures ------------------------------------------------------------ */

/* One track of S/abr and its interleaving queue.  mark is a lower bound of
 * the dts of every packet the track will still get (see interleave_locked):
 * for a source-fed track, the dts of its last packet (the source's order);
 * for an encoded one, the oldest pts still inside its encoder (fly), or when
 * none is, idle_mark (what the next frame cannot precede), less the
 * encoder's priming (pad). */
typedef struct otrack {
    AVRational tb;
    AVPacket **q;                       /* ring of cap; n queued from head */
    int cap, head, n;
    int done;                           /* no more packets will come */
    int encoded;                        /* fed by an encoder, not by source packets */
    int have_mark;
    int64_t mark;                       /* source-fed: last dts */
    int64_t idle_mark, pad;             /* encoded */
    int64_t *fly;                       /* encoded: ring of fcap; fn pts sent, not out yet */
    int fcap, fhead, fn;
    atomic_uint_least64_t packets, bytes, keyframes;
} otrack;

typedef struct rung {
    weir_rendition r;
    int out;                            /* track in S/abr */
    AVCodecContext *enc;                /* NULL: the source rung */
    weir_nal_conv *conv;
    struct SwsContext *sws;
    AVFrame *frame;                     /* what goes to the encoder */
    AVPacket *pkt;
    /* The job's thread only: */
    double period;                      /* frame interval in the video time base; 0: keep all */
    double next_due;
    int have_due;
    /* The queue to the rung's thread. */
    atomic_int_least64_t media_us;      /* the last frame encoded, from the first pts */
    pthread_t thread;
    int running;                        /* thread started and not joined */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;               /* signalled on every change */
    AVFrame *q[RUNG_QUEUE];
    int qhead, qn;
    int eof, stop;                      /* no more frames: flush; stop: quit now */
    int err;                            /* a fatal error of the rung's thread */
    int sync;                           /* qlock and qcond initialised */
    struct weir_pipeline *owner;
    atomic_uint_least64_t frames, encode_errors;
} rung;

/* Where packets come from (bus_input, file_input).  All on the job's thread. */
typedef struct input_ops {
    const char *kind;                                       /* "live", "file" */
    int (*open)(weir_pipeline *p);                          /* first thing run does */
    int (*read)(weir_pipeline *p, AVPacket *pkt);           /* 0, EAGAIN, EOF, or < 0 */
    int (*ntracks)(weir_pipeline *p);                       /* once a packet was read */
    const AVCodecParameters *(*codecpar)(weir_pipeline *p, int track, AVRational *tb);
    AVRational (*framerate)(weir_pipeline *p);              /* {0,1}: unknown */
    void (*stats)(weir_pipeline *p, weir_sub_stats *st);    /* any thread */
    void (*close)(weir_pipeline *p);
} input_ops;

/* Where packets go (bus_output, sink_output). */
typedef struct output_ops {
    int (*open)(weir_pipeline *p);                          /* the job's thread */
    int (*add_track)(weir_pipeline *p, const AVCodecParameters *par, AVRational tb);
    int (*write)(weir_pipeline *p, const AVPacket *pkt);    /* olock held */
    void (*end)(weir_pipeline *p);                          /* the job's thread; once */
} output_ops;

struct weir_pipeline {
    const input_ops *in;
    const output_ops *outp;
    weir_bus *bus;
    weir_stream *src;                   /* live: our reference */
    weir_sub *sub;
    char *input;                        /* file: the path */
    AVFormatContext *fmt;               /* file: open while the job runs */
    int fmt_map[2];                     /* file: its stream of our track 0, 1; -1: none */
    int fmt_ntracks;
    int64_t fmt_start_us, fmt_duration_us;  /* AV_NOPTS_VALUE: unknown */
    int64_t fmt_size;                   /* bytes; <= 0: unknown */
    weir_transcode_sink sink;           /* sink output */
    int sink_tracks;
    weir_pool_ticket *ticket;           /* NULL: no admission control */
    char name[WEIR_BUS_NAME_MAX + 1];
    char out_name[WEIR_BUS_NAME_MAX + 1];
    char profile_name[WEIR_LADDER_NAME_MAX + 1];
    weir_ladder_profile profile;
    int64_t segment_ms;

    pthread_mutex_t lock;               /* guards wake, stop, plan_json */
    pthread_cond_t cond;
    int wake, stop;
    atomic_int stopping;                /* stop, for the file loop's quick look */
    atomic_int out_err;                 /* the output's first error (sink) */
    atomic_int result;                  /* what run returned, once DONE/FAILED/CANCELLED */
    json_t *plan_json;
    atomic_int state;
    atomic_int progress;                /* file: percent read; -1: live */
    int64_t started_us;
    atomic_int_least64_t running_us;    /* when it entered RUNNING; 0: not yet */

    /* Everything below belongs to the job's thread. */
    int vin, ain;                       /* source tracks; -1: none */
    AVRational vtb, atb;
    AVCodecParameters *vpar, *apar;     /* snapshots, owned by the sub or the fmt */
    weir_nal_conv *vconv;               /* file: the source video into the ISO form */
    AVCodecContext *vdec, *adec;
    AVFrame *dframe, *adframe;          /* decoded video, decoded audio */
    AVPacket *opkt;

    AVPacket **pending;
    int npending;

    weir_ladder_source source;
    weir_ladder_plan plan;
    weir_stream *out;
    rung rungs[WEIR_LADDER_MAX_RUNGS];
    int nrungs;
    int source_rung;                    /* index in rungs, or -1 */
    pthread_mutex_t olock;              /* guards tracks (queues, marks), last_*, newest_us */
    int64_t first_src_us, newest_us;    /* source packets read so far: first and latest dts */
    int have_src_us;
    otrack tracks[WEIR_STREAM_MAX_TRACKS];
    int ntracks;
    int last_written;                   /* a packet was written: last_dts/last_tb valid */
    int64_t last_dts;
    AVRational last_tb;

    /* boundaries */
    int64_t seg;                        /* segment_ms in the video time base */
    int64_t last_boundary;
    int have_boundary;
    int64_t last_pts;
    int have_last_pts;
    int64_t src_keys[SRC_KEYS];
    int nsrc_keys;

    /* audio */
    int aout;                           /* track in S/abr, or -1 */
    AVCodecContext *aenc;
    SwrContext *swr;
    AVAudioFifo *fifo;
    AVFrame *aframe;
    int64_t a_next_out;                 /* next encoder frame pts, 1/sample_rate */
    int64_t a_next_in;                  /* expected pts of the next decoded frame, same unit */
    int a_anchored;

    atomic_int nrungs_ready;            /* rungs[0..n) may be read by other threads */
    int64_t first_pts_us;               /* source video progress, for speed */
    int have_first_pts;
    atomic_uint_least64_t decode_errors, late_drops, frames_decoded, frames_dropped;
    atomic_int_least64_t media_us;
};

const char *weir_pipeline_state_name(weir_pipeline_state s)
{
    static const char *const names[] = { "waiting", "probing", "queued", "running", "done",
                                         "failed", "cancelled" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* The state as the job's own threads see it. */
static weir_pipeline_state state_of(weir_pipeline *p)
{
    return (weir_pipeline_state)atomic_load(&p->state);
}

weir_pipeline_state weir_pipeline_get_state(weir_pipeline *p)
{
    weir_pipeline_state s = state_of(p);
    if (p->ticket && s < WEIR_PIPELINE_DONE) {
        weir_pool_state ps = weir_pool_ticket_state(p->ticket);
        if (ps == WEIR_POOL_WAITING || ps == WEIR_POOL_PREEMPTED)
            return WEIR_PIPELINE_QUEUED;
    }
    return s;
}

static void count(atomic_uint_least64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- the interleaver --------------------------------------------------------- */

/* Queues pkt on track t; takes pkt's reference (pkt is left blank).
 * olock held. */
static int ot_push_locked(weir_pipeline *p, int t, AVPacket *pkt)
{
    otrack *o = &p->tracks[t];
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        AVPacket **q = calloc((size_t)cap, sizeof *q);
        if (!q)
            return AVERROR(ENOMEM);
        for (int i = 0; i < o->n; i++)
            q[i] = o->q[(o->head + i) % o->cap];
        free(o->q);
        o->q = q;
        o->cap = cap;
        o->head = 0;
    }
    AVPacket *slot = av_packet_alloc();
    if (!slot)
        return AVERROR(ENOMEM);
    av_packet_move_ref(slot, pkt);
    if (slot->dts == AV_NOPTS_VALUE)
        slot->dts = slot->pts;
    slot->stream_index = t;
    o->q[(o->head + o->n++) % o->cap] = slot;
    if (!o->encoded) {
        o->mark = slot->dts;
        o->have_mark = 1;
    } else if (slot->pts != AV_NOPTS_VALUE) {
        while (o->fn && o->fly[o->fhead] <= slot->pts + o->pad) {  /* this frame is out */
            o->fhead = (o->fhead + 1) % o->fcap;
            o->fn--;
        }
    }
    return 0;
}

/* An encoder of track t was given a frame at pts.  olock held. */
static int ot_sent_locked(otrack *o, int64_t pts)
{
    if (o->fn == o->fcap) {
        int cap = o->fcap ? 2 * o->fcap : 64;
        int64_t *fly = malloc((size_t)cap * sizeof *fly);
        if (!fly)
            return AVERROR(ENOMEM);
        for (int i = 0; i < o->fn; i++)
            fly[i] = o->fly[(o->fhead + i) % o->fcap];
        free(o->fly);
        o->fly = fly;
        o->fcap = cap;
        o->fhead = 0;
    }
    o->fly[(o->fhead + o->fn++) % o->fcap] = pts;
    return 0;
}

/* Track t's lower bound of future dts in microseconds; INT64_MIN when none
 * is known yet.  olock held. */
static int64_t ot_mark_us(const otrack *o)
{
    if (!o->encoded)
        return o->have_mark ? av_rescale_q(o->mark, o->tb, AV_TIME_BASE_Q) : INT64_MIN;
    if (o->fn)
        return av_rescale_q(o->fly[o->fhead] - o->pad, o->tb, AV_TIME_BASE_Q);
    return o->have_mark ? av_rescale_q(o->idle_mark, o->tb, AV_TIME_BASE_Q) : INT64_MIN;
}

/* 1 if track o, which has nothing queued, may still get a packet that goes
 * before the head packet (head_us): one with an earlier dts, or with the
 * same dts when o comes first in track order (before_head).  Ties go in
 * track order so that at every boundary the key track's keyframe leads:
 * the bus starts a waiting subscriber there, and drops what comes before.
 * A source-fed track silent for SILENT_US of the source, or an idle encoded
 * track stuck for STUCK_US, no longer holds the others (its late packets,
 * if any, are dropped by write_packet). */
static int ot_may_precede(const weir_pipeline *p, const otrack *o, int64_t head_us,
                          int before_head)
{
    int64_t mark = ot_mark_us(o);
    if (o->done || mark > head_us || (mark == head_us && !before_head))
        return 0;
    if (o->encoded && o->fn)
        return 1;                       /* frames in its encoder: they will come */
    int64_t since = mark == INT64_MIN ? p->first_src_us : mark;
    return !p->have_src_us || p->newest_us - since < (o->encoded ? STUCK_US : SILENT_US);
}

static AVPacket *ot_head(otrack *o)
{
    return o->n ? o->q[o->head] : NULL;
}

static AVPacket *ot_pop(otrack *o)
{
    AVPacket *pkt = o->q[o->head];
    o->head = (o->head + 1) % o->cap;
    o->n--;
    return pkt;
}

static int64_t us_of(int64_t ts, AVRational tb)
{
    return av_rescale_q(ts, tb, AV_TIME_BASE_Q);
}

static void write_packet(weir_pipeline *p, AVPacket *pkt)
{
    otrack *o = &p->tracks[pkt->stream_index];
    if (atomic_load(&p->out_err))
        return;                         /* the sink failed the job: nothing more goes out */
    if (pkt->dts == AV_NOPTS_VALUE ||
        (p->last_written && av_compare_ts(pkt->dts, o->tb, p->last_dts, p->last_tb) < 0)) {
        count(&p->late_drops);
        return;
    }
    if (p->outp->write(p, pkt) < 0) {
        count(&p->late_drops);
        return;
    }
    p->last_written = 1;
    p->last_dts = pkt->dts;
    p->last_tb = o->tb;
    count(&o->packets);
    atomic_fetch_add_explicit(&o->bytes, (uint64_t)pkt->size, memory_order_relaxed);
    if (pkt->flags & AV_PKT_FLAG_KEY)
        count(&o->keyframes);
}

/* Writes what invariant 2 allows, everything when all is set: the queued
 * packet with the smallest dts, as long as no track with nothing queued may
 * still get an earlier one.  olock held. */
static void interleave_locked(weir_pipeline *p, int all)
{
    for (;;) {
        int best = -1;
        for (int t = 0; t < p->ntracks; t++) {
            otrack *o = &p->tracks[t];
            AVPacket *h = ot_head(o);
            if (h && (best < 0 || av_compare_ts(h->dts, o->tb, ot_head(&p->tracks[best])->dts,
                                                p->tracks[best].tb) < 0))
                best = t;
        }
        if (best < 0)
            return;
        int64_t head_us = us_of(ot_head(&p->tracks[best])->dts, p->tracks[best].tb);
        for (int t = 0; t < p->ntracks && !all; t++)
            if (!p->tracks[t].n && ot_may_precede(p, &p->tracks[t], head_us, t < best))
                return;
        AVPacket *pkt = ot_pop(&p->tracks[best]);
        write_packet(p, pkt);
        av_packet_free(&pkt);
    }
}

static int ot_push(weir_pipeline *p, int t, AVPacket *pkt)
{
    pthread_mutex_lock(&p->olock);
    int ret = ot_push_locked(p, t, pkt);
    pthread_mutex_unlock(&p->olock);
    return ret;
}

static void interleave(weir_pipeline *p, int all)
{
    pthread_mutex_lock(&p->olock);
    interleave_locked(p, all);
    pthread_mutex_unlock(&p->olock);
}

/* An encoder of track t is about to get a frame at pts. */
static int ot_sent(weir_pipeline *p, int t, int64_t pts)
{
    pthread_mutex_lock(&p->olock);
    int ret = ot_sent_locked(&p->tracks[t], pts);
    pthread_mutex_unlock(&p->olock);
    return ret;
}

/* Encoded track t will get no packet before idle_mark once its encoder is
 * empty. */
static void ot_idle_mark(weir_pipeline *p, int t, int64_t idle_mark)
{
    pthread_mutex_lock(&p->olock);
    p->tracks[t].idle_mark = idle_mark;
    p->tracks[t].have_mark = 1;
    pthread_mutex_unlock(&p->olock);
}

/* The job read a source packet with this dts. */
static void note_source(weir_pipeline *p, int64_t dts, AVRational tb)
{
    if (dts == AV_NOPTS_VALUE)
        return;
    int64_t us = us_of(dts, tb);
    pthread_mutex_lock(&p->olock);
    if (!p->have_src_us)
        p->first_src_us = us;
    if (!p->have_src_us || us > p->newest_us)
        p->newest_us = us;
    p->have_src_us = 1;
    pthread_mutex_unlock(&p->olock);
}

/* Track t will get no more packets. */
static void ot_done(weir_pipeline *p, int t)
{
    pthread_mutex_lock(&p->olock);
    p->tracks[t].done = 1;
    pthread_mutex_unlock(&p->olock);
}

static void tracks_free(weir_pipeline *p)
{
    for (int t = 0; t < WEIR_STREAM_MAX_TRACKS; t++) {
        otrack *o = &p->tracks[t];
        while (o->n) {
            AVPacket *pkt = ot_pop(o);
            av_packet_free(&pkt);
        }
        free(o->q);
        o->q = NULL;
        free(o->fly);
        o->fly = NULL;
    }
}

/* ---- encoders ---------------------------------------------------------------- */

/* What each encoder needs so that it adds no keyframe of its own and turns
 * a forced I frame into an IDR. */
typedef struct encoder_setup {
    const char *encoder;
    const char *params_key;
    const char *params;
} encoder_setup;

static const encoder_setup encoder_setups[] = {
    { "libx264", "x264-params", "scenecut=0:open-gop=0" },
    { "libx265", "x265-params", "scenecut=0:open-gop=0:bframes=0" },
};

static int open_video_encoder(weir_pipeline *p, rung *r)
{
    const weir_rendition *v = &r->r;
    const encoder_setup *setup = NULL;
    int ret;

    for (size_t i = 0; i < sizeof encoder_setups / sizeof encoder_setups[0]; i++)
        if (strcmp(encoder_setups[i].encoder, v->encoder) == 0)
            setup = &encoder_setups[i];
    const AVCodec *codec = avcodec_find_encoder_by_name(v->encoder);
    if (!setup || !codec)
        return AVERROR(ENOSYS);
    AVCodecContext *enc = r->enc = avcodec_alloc_context3(codec);
    if (!enc)
        return AVERROR(ENOMEM);
    enc->width = v->width;
    enc->height = v->height;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->sample_aspect_ratio = (AVRational){ 1, 1 };
    enc->time_base = p->vtb;
    enc->framerate = v->fps.num > 0 ? v->fps : (AVRational){ 30, 1 };   /* for rate control */
    enc->bit_rate = v->bitrate;
    enc->rc_max_rate = v->maxrate;
    enc->rc_buffer_size = (int)FFMIN(v->bufsize, INT_MAX);
    enc->gop_size = X264_KEYINT_INFINITE;
    enc->max_b_frames = 0;
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_CLOSED_GOP;
    if (v->level)
        enc->level = v->level;
    if ((ret = av_opt_set(enc->priv_data, "preset", v->preset, 0)) < 0 ||
        (v->tune[0] && (ret = av_opt_set(enc->priv_data, "tune", v->tune, 0)) < 0) ||
        (v->profile[0] && (ret = av_opt_set(enc->priv_data, "profile", v->profile, 0)) < 0) ||
        (ret = av_opt_set(enc->priv_data, setup->params_key, setup->params, 0)) < 0 ||
        (ret = av_opt_set_int(enc->priv_data, "forced-idr", 1, 0)) < 0)
        return ret;
    if ((ret = avcodec_open2(enc, codec, NULL)) < 0)
        return ret;
    AVCodecParameters *par = avcodec_parameters_alloc();
    if (!par)
        return AVERROR(ENOMEM);
    if ((ret = avcodec_parameters_from_context(par, enc)) >= 0)
        ret = weir_nal_conv_new(par, &r->conv);
    avcodec_parameters_free(&par);
    if (ret < 0)
        return ret;
    if (!(r->frame = av_frame_alloc()) || !(r->pkt = av_packet_alloc()))
        return AVERROR(ENOMEM);
    if (v->decimate && v->fps.num > 0)
        r->period = av_q2d(av_inv_q(v->fps)) / av_q2d(p->vtb);
    return 0;
}

static void rung_free(rung *r)
{
    for (int i = 0; i < r->qn; i++)
        av_frame_free(&r->q[(r->qhead + i) % RUNG_QUEUE]);
    r->qn = 0;
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->enc);
    weir_nal_conv_free(r->conv);
    r->conv = NULL;
    sws_freeContext(r->sws);
    r->sws = NULL;
    av_frame_free(&r->frame);
}

/* Moves every packet the encoder has ready to the interleaver.  The
 * rung's thread. */
static int drain_video_encoder(weir_pipeline *p, rung *r)
{
    int ret;
    while ((ret = avcodec_receive_packet(r->enc, r->pkt)) == 0) {
        if (weir_nal_conv_packet(r->conv, r->pkt) < 0) {
            count(&r->encode_errors);
            av_packet_unref(r->pkt);
            continue;
        }
        r->pkt->dts = r->pkt->dts == AV_NOPTS_VALUE ? r->pkt->pts : r->pkt->dts;
        if ((ret = ot_push(p, r->out, r->pkt)) < 0)
            return ret;
    }
    return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : ret;
}

/* Decimation to the rung's frame rate (see rule 5 of ladder.h): a frame is
 * kept when it is no earlier than a quarter period before it is due. */
static int rung_keeps(rung *r, int64_t pts, int boundary)
{
    if (r->period <= 0)
        return 1;
    double t = (double)pts;
    if (!boundary && r->have_due && t < r->next_due - r->period / 4)
        return 0;
    if (!r->have_due || boundary || t > r->next_due + r->period)
        r->next_due = t + r->period;    /* start, boundary or gap: restart the grid */
    else
        r->next_due += r->period;
    r->have_due = 1;
    return 1;
}

/* Scales f (pts and pict_type already set) to the rung's size and encodes
 * it.  The rung's thread. */
static int encode_rung(weir_pipeline *p, rung *r, AVFrame *f)
{
    AVFrame *in = r->frame;
    int ret;

    if (f->width == r->r.width && f->height == r->r.height && f->format == AV_PIX_FMT_YUV420P) {
        if ((ret = av_frame_ref(in, f)) < 0)
            return ret;
    } else {
        r->sws = sws_getCachedContext(r->sws, f->width, f->height, f->format, r->r.width,
                                      r->r.height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL,
                                      NULL, NULL);
        if (!r->sws)
            return AVERROR(EINVAL);
        in->width = r->r.width;
        in->height = r->r.height;
        in->format = AV_PIX_FMT_YUV420P;
        if ((ret = av_frame_get_buffer(in, 0)) < 0)
            return ret;
        sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                  in->data, in->linesize);
    }
    in->pts = f->pts;
    in->pict_type = f->pict_type;
    in->key_frame = 0;
    in->sample_aspect_ratio = (AVRational){ 1, 1 };
    ret = avcodec_send_frame(r->enc, in);
    av_frame_unref(in);
    if (ret < 0) {
        count(&r->encode_errors);
        return 0;                       /* invariant 3 */
    }
    count(&r->frames);
    atomic_store(&r->media_us, us_of(f->pts, p->vtb) - p->first_pts_us);
    return drain_video_encoder(p, r);
}

/* The rung's thread: frames from the queue to the encoder until eof (then
 * flush) or stop. */
static void *rung_main(void *arg)
{
    rung *r = arg;
    weir_pipeline *p = r->owner;
    int ret = 0;

    for (;;) {
        pthread_mutex_lock(&r->qlock);
        while (!r->qn && !r->eof && !r->stop)
            pthread_cond_wait(&r->qcond, &r->qlock);
        if (r->stop || !r->qn) {
            int flush = !r->stop;
            pthread_mutex_unlock(&r->qlock);
            if (flush && avcodec_send_frame(r->enc, NULL) >= 0)
                ret = drain_video_encoder(p, r);
            break;
        }
        AVFrame *f = r->q[r->qhead];
        r->qhead = (r->qhead + 1) % RUNG_QUEUE;
        r->qn--;
        pthread_cond_broadcast(&r->qcond);
        pthread_mutex_unlock(&r->qlock);
        ret = encode_rung(p, r, f);
        av_frame_free(&f);
        if (ret < 0)
            break;
        interleave(p, 0);
    }
    pthread_mutex_lock(&r->qlock);
    r->err = ret;
    pthread_cond_broadcast(&r->qcond);
    pthread_mutex_unlock(&r->qlock);
    ot_done(p, r->out);
    interleave(p, 0);
    return NULL;
}

static int rung_start(weir_pipeline *p, rung *r)
{
    r->owner = p;
    pthread_mutex_init(&r->qlock, NULL);
    pthread_cond_init(&r->qcond, NULL);
    r->sync = 1;
    int ret = pthread_create(&r->thread, NULL, rung_main, r);
    if (ret)
        return AVERROR(ret);
    r->running = 1;
    return 0;
}

/* Hands the rung a reference to f as frame pts, an IDR when boundary; waits
 * while its queue is full.  The job's thread. */
static int rung_submit(weir_pipeline *p, rung *r, const AVFrame *f, int64_t pts, int boundary)
{
    AVFrame *ref = av_frame_clone(f);
    if (!ref)
        return AVERROR(ENOMEM);
    int ret = ot_sent(p, r->out, pts);  /* before the rung's thread can encode it */
    if (ret < 0) {
        av_frame_free(&ref);
        return ret;
    }
    ref->pts = pts;
    ref->pict_type = boundary ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    pthread_mutex_lock(&r->qlock);
    while (r->qn == RUNG_QUEUE && !r->err && r->running)
        pthread_cond_wait(&r->qcond, &r->qlock);
    ret = r->err;
    if (ret >= 0) {
        r->q[(r->qhead + r->qn++) % RUNG_QUEUE] = ref;
        ref = NULL;
        pthread_cond_broadcast(&r->qcond);
    }
    pthread_mutex_unlock(&r->qlock);
    av_frame_free(&ref);
    return ret;
}

/* Ends the rung's thread: after its queue and a flush (finish), or at once;
 * returns its error.  The job's thread. */
static int rung_join(rung *r, int finish)
{
    if (!r->running)
        return 0;
    pthread_mutex_lock(&r->qlock);
    if (finish)
        r->eof = 1;
    else
        r->stop = 1;
    pthread_cond_broadcast(&r->qcond);
    pthread_mutex_unlock(&r->qlock);
    pthread_join(r->thread, NULL);
    r->running = 0;
    return r->err;
}

/* ---- boundaries ---------------------------------------------------------------- */

static void remember_src_key(weir_pipeline *p, int64_t pts)
{
    if (pts == AV_NOPTS_VALUE)
        return;
    if (p->nsrc_keys == SRC_KEYS) {
        memmove(p->src_keys, p->src_keys + 1, (SRC_KEYS - 1) * sizeof p->src_keys[0]);
        p->nsrc_keys--;
    }
    p->src_keys[p->nsrc_keys++] = pts;
}

/* 1 if pts is a source keyframe; forgets keyframes before pts. */
static int take_src_key(weir_pipeline *p, int64_t pts)
{
    int found = 0, keep = 0;
    for (int i = 0; i < p->nsrc_keys; i++) {
        if (p->src_keys[i] == pts)
            found = 1;
        else if (p->src_keys[i] > pts)
            p->src_keys[keep++] = p->src_keys[i];
    }
    p->nsrc_keys = keep;
    return found;
}

/* Invariant 1. */
static int job_boundary(weir_pipeline *p, int64_t pts)
{
    int src_key = take_src_key(p, pts);
    int eligible = p->source_rung < 0 || src_key;
    if (p->have_boundary && !(eligible && pts - p->last_boundary >= p->seg))
        return 0;
    p->have_boundary = 1;
    p->last_boundary = pts;
    return 1;
}

/* ---- audio ------------------------------------------------------------------- */

static int open_decoder(const AVCodecParameters *par, AVRational tb, int threads,
                        AVCodecContext **out)
{
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    int ret;
    if (!codec)
        return AVERROR_DECODER_NOT_FOUND;
    AVCodecContext *dec = *out = avcodec_alloc_context3(codec);
    if (!dec)
        return AVERROR(ENOMEM);
    if ((ret = avcodec_parameters_to_context(dec, par)) < 0)
        return ret;
    dec->pkt_timebase = tb;
    if (threads) {
        dec->thread_count = 0;          /* one per core */
        dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    }
    return avcodec_open2(dec, codec, NULL);
}

static int open_audio_encoder(weir_pipeline *p)
{
    const weir_ladder_audio *a = &p->plan.audio;
    const AVCodec *codec = avcodec_find_encoder(a->codec);
    int ret;
    if (!codec)
        return AVERROR_ENCODER_NOT_FOUND;
    AVCodecContext *enc = p->aenc = avcodec_alloc_context3(codec);
    if (!enc)
        return AVERROR(ENOMEM);
    enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    enc->sample_rate = a->sample_rate;
    av_channel_layout_default(&enc->ch_layout, a->channels);
    enc->bit_rate = a->bitrate;
    enc->time_base = (AVRational){ 1, a->sample_rate };
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(enc, codec, NULL)) < 0)
        return ret;
    if (!(p->fifo = av_audio_fifo_alloc(enc->sample_fmt, a->channels, 4 * enc->frame_size)) ||
        !(p->aframe = av_frame_alloc()))
        return AVERROR(ENOMEM);
    return open_decoder(p->apar, p->atb, 0, &p->adec);
}

static int drain_audio_encoder(weir_pipeline *p)
{
    int ret;
    while ((ret = avcodec_receive_packet(p->aenc, p->opkt)) == 0)
        if ((ret = ot_push(p, p->aout, p->opkt)) < 0)
            return ret;
    return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : ret;
}

/* Encodes n samples from the fifo (n < frame_size only at the end). */
static int encode_audio_frame(weir_pipeline *p, int n)
{
    AVFrame *f = p->aframe;
    int ret;
    f->nb_samples = n;
    f->format = p->aenc->sample_fmt;
    f->sample_rate = p->aenc->sample_rate;
    if ((ret = av_channel_layout_copy(&f->ch_layout, &p->aenc->ch_layout)) < 0 ||
        (ret = av_frame_get_buffer(f, 0)) < 0)
        return ret;
    if (av_audio_fifo_read(p->fifo, (void **)f->data, n) < n) {
        av_frame_unref(f);
        return AVERROR_BUG;
    }
    f->pts = p->a_next_out;
    p->a_next_out += n;
    if ((ret = ot_sent(p, p->aout, f->pts)) < 0) {
        av_frame_unref(f);
        return ret;
    }
    ret = avcodec_send_frame(p->aenc, f);
    av_frame_unref(f);
    ot_idle_mark(p, p->aout, p->a_next_out - p->tracks[p->aout].pad);
    if (ret < 0)
        return 0;                       /* invariant 3 */
    return drain_audio_encoder(p);
}

/* Resamples a decoded frame (NULL: flush the resampler) into the fifo and
 * encodes every whole frame it then holds. */
static int audio_frame(weir_pipeline *p, AVFrame *f)
{
    int sr = p->aenc->sample_rate, ret;

    if (f && !p->swr) {
        if ((ret = swr_alloc_set_opts2(&p->swr, &p->aenc->ch_layout, p->aenc->sample_fmt, sr,
                                       &f->ch_layout, f->format, f->sample_rate, 0, NULL)) < 0 ||
            (ret = swr_init(p->swr)) < 0)
            return ret;
    }
    if (!p->swr)
        return 0;
    if (f) {
        int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp
                                                                 : f->pts;
        int64_t in = ts == AV_NOPTS_VALUE ? p->a_next_in
                                          : av_rescale_q(ts, p->atb, (AVRational){ 1, sr });
        if (!p->a_anchored) {
            p->a_next_out = p->a_next_in = in;
            p->a_anchored = 1;
        } else if (in > p->a_next_in + sr / 2) {
            p->a_next_out += in - p->a_next_in;     /* a gap in the source: keep it */
            p->a_next_in = in;
        }
        p->a_next_in += av_rescale(f->nb_samples, sr, f->sample_rate);
    }
    int room = swr_get_out_samples(p->swr, f ? f->nb_samples : 0);
    if (room > 0) {
        uint8_t **buf = NULL;
        if ((ret = av_samples_alloc_array_and_samples(&buf, NULL, p->aenc->ch_layout.nb_channels,
                                                      room, p->aenc->sample_fmt, 0)) < 0)
            return ret;
        int n = swr_convert(p->swr, buf, room, f ? (const uint8_t **)f->extended_data : NULL,
                            f ? f->nb_samples : 0);
        if (n > 0 && av_audio_fifo_write(p->fifo, (void **)buf, n) < n)
            n = AVERROR(ENOMEM);
        av_freep(&buf[0]);
        av_freep(&buf);
        if (n < 0)
            return n == AVERROR(ENOMEM) ? n : 0;
    }
    while (av_audio_fifo_size(p->fifo) >= p->aenc->frame_size)
        if ((ret = encode_audio_frame(p, p->aenc->frame_size)) < 0)
            return ret;
    return 0;
}

/* Hands every frame dec has ready to on_frame, in f (one frame per decoder:
 * audio decoded while the first video frame is being configured must not
 * overwrite it). */
static int drain_decoder(weir_pipeline *p, AVCodecContext *dec, AVFrame *f,
                         int (*on_frame)(weir_pipeline *p, AVFrame *f))
{
    int ret;
    for (;;) {
        ret = avcodec_receive_frame(dec, f);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0) {
            count(&p->decode_errors);   /* invariant 3 */
            return 0;
        }
        ret = on_frame(p, f);
        av_frame_unref(f);
        if (ret < 0)
            return ret;
    }
}

static int audio_decoded(weir_pipeline *p, AVFrame *f)
{
    return audio_frame(p, f);
}

static int audio_packet(weir_pipeline *p, AVPacket *pkt)
{
    if (p->aout < 0)
        return 0;
    if (p->plan.audio_mode == WEIR_LADDER_AUDIO_COPY) {
        AVPacket *ref = av_packet_clone(pkt);
        if (!ref)
            return AVERROR(ENOMEM);
        int ret = ot_push(p, p->aout, ref);
        av_packet_free(&ref);
        return ret;
    }
    if (avcodec_send_packet(p->adec, pkt) < 0) {
        count(&p->decode_errors);
        return 0;
    }
    return drain_decoder(p, p->adec, p->adframe, audio_decoded);
}

/* ---- setup ----------------------------------------------------------------------- */

/* WAITING -> PROBING: the track list is final once a packet was read. */
static int job_start(weir_pipeline *p)
{
    int n = p->in->ntracks(p), ret;
    p->vin = p->ain = -1;
    for (int i = 0; i < n; i++) {
        AVRational tb;
        const AVCodecParameters *par = p->in->codecpar(p, i, &tb);
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && p->vin < 0) {
            p->vin = i;
            p->vtb = tb;
            p->vpar = (AVCodecParameters *)par;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO && p->ain < 0) {
            p->ain = i;
            p->atb = tb;
            p->apar = (AVCodecParameters *)par;
        }
    }
    if (p->vin < 0 && p->ain < 0)
        return AVERROR(EINVAL);
    if (p->vin >= 0) {
        if ((ret = open_decoder(p->vpar, p->vtb, 1, &p->vdec)) < 0) {
            weir_log_error(MODULE, "cannot open the video decoder", WL_STR("stream", p->name),
                           WL_STR("codec", avcodec_get_name(p->vpar->codec_id)), WL_ERR(ret));
            return ret;
        }
        p->seg = av_rescale_q(p->segment_ms, (AVRational){ 1, 1000 }, p->vtb);
        /* A file may carry Annex B (MPEG-TS): the source rung needs ISO. */
        if (p->input && (ret = weir_nal_conv_new(p->vpar, &p->vconv)) < 0)
            return ret;
    }
    atomic_store(&p->state, WEIR_PIPELINE_PROBING);
    return 0;
}

static void describe_source(weir_pipeline *p, const AVFrame *f)
{
    weir_ladder_source *s = &p->source;
    memset(s, 0, sizeof *s);
    if (p->vin >= 0) {
        s->has_video = 1;
        s->vcodec = p->vpar->codec_id;
        s->width = f->width;
        s->height = f->height;
        s->sar = f->sample_aspect_ratio;
        s->fps = p->in->framerate(p);
        s->vbitrate = p->vpar->bit_rate;
    }
    if (p->ain >= 0) {
        s->has_audio = 1;
        s->acodec = p->apar->codec_id;
        s->sample_rate = p->apar->sample_rate;
        s->channels = p->apar->ch_layout.nb_channels;
        s->abitrate = p->apar->bit_rate;
    }
}

/* Publishes S/abr; waits a little for a previous job's S/abr to end. */
static int publish_output(weir_pipeline *p)
{
    int64_t deadline = av_gettime_relative() + PUBLISH_WAIT_US;
    for (;;) {
        int ret = weir_bus_publish(p->bus, p->out_name, NULL, &p->out);
        if (ret != AVERROR(EEXIST) || av_gettime_relative() > deadline)
            return ret;
        pthread_mutex_lock(&p->lock);
        int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return AVERROR_EXIT;
        av_usleep(10000);
    }
}

static int add_track(weir_pipeline *p, const AVCodecParameters *par, AVRational tb)
{
    int t = p->outp->add_track(p, par, tb);
    if (t >= 0) {
        p->tracks[t].tb = tb;
        p->ntracks = t + 1;
    }
    return t;
}

/* Opens every encoder the plan needs; a video encoder that fails is dropped
 * from the plan (logged), the others go on. */
static int open_encoders(weir_pipeline *p)
{
    int ret;
    p->source_rung = -1;
    for (int i = 0; i < p->plan.nvideo; i++) {
        rung *r = &p->rungs[p->nrungs];
        memset(r, 0, sizeof *r);
        r->r = p->plan.video[i];
        if (!r->r.source && (ret = open_video_encoder(p, r)) < 0) {
            weir_log_error(MODULE, "cannot open the encoder; rendition dropped",
                           WL_STR("stream", p->name), WL_STR("rendition", r->r.name),
                           WL_STR("encoder", r->r.encoder), WL_ERR(ret));
            rung_free(r);
            if (ret == AVERROR(ENOMEM))
                return ret;
            continue;
        }
        if (r->r.source)
            p->source_rung = p->nrungs;
        p->nrungs++;
    }
    if (p->plan.nvideo && !p->nrungs)
        return AVERROR(ENOSYS);
    if (p->plan.audio_mode == WEIR_LADDER_AUDIO_ENCODE && (ret = open_audio_encoder(p)) < 0) {
        weir_log_error(MODULE, "cannot open the audio encoder", WL_STR("stream", p->name),
                       WL_ERR(ret));
        return ret;
    }
    return 0;
}

static int add_tracks(weir_pipeline *p)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    int ret = 0;
    if (!par)
        return AVERROR(ENOMEM);
    for (int i = 0; i < p->nrungs && ret >= 0; i++) {
        rung *r = &p->rungs[i];
        if (r->r.source) {
            ret = p->vconv ? weir_nal_conv_par(p->vconv, par)
                           : avcodec_parameters_copy(par, p->vpar);
            if (ret >= 0 && par->width <= 0) {
                par->width = p->source.width;       /* the decoder knows, ingest did not */
                par->height = p->source.height;
            }
        } else if ((ret = weir_nal_conv_par(r->conv, par)) >= 0) {
            par->bit_rate = r->r.bitrate;
        }
        if (ret >= 0 && (ret = add_track(p, par, r->r.source ? p->vtb : r->enc->time_base)) >= 0) {
            r->out = ret;
            p->tracks[ret].encoded = !r->r.source;
        }
    }
    p->aout = -1;
    if (ret >= 0 && p->plan.audio_mode == WEIR_LADDER_AUDIO_COPY) {
        if ((ret = add_track(p, p->apar, p->atb)) >= 0)
            p->aout = ret;
    } else if (ret >= 0 && p->plan.audio_mode == WEIR_LADDER_AUDIO_ENCODE) {
        if ((ret = avcodec_parameters_from_context(par, p->aenc)) >= 0 &&
            (ret = add_track(p, par, p->aenc->time_base)) >= 0) {
            p->aout = ret;
            p->tracks[ret].encoded = 1;
            p->tracks[ret].pad = p->aenc->initial_padding;
        }
    }
    avcodec_parameters_free(&par);
    return ret < 0 ? ret : 0;
}

static int video_packet_passthrough(weir_pipeline *p, AVPacket *pkt);

/* Feeds the packets held while probing. */
static int flush_pending(weir_pipeline *p)
{
    int ret = 0;
    for (int i = 0; i < p->npending; i++) {
        AVPacket *pkt = p->pending[i];
        if (ret >= 0)
            ret = pkt->stream_index == p->vin ? video_packet_passthrough(p, pkt)
                                              : audio_packet(p, pkt);
        av_packet_free(&p->pending[i]);
    }
    p->npending = 0;
    return ret;
}

static void drop_pending(weir_pipeline *p)
{
    for (int i = 0; i < p->npending; i++)
        av_packet_free(&p->pending[i]);
    p->npending = 0;
}

/* PROBING -> QUEUED: the pool has no room yet.  Nothing is held or decoded
 * meanwhile; the source is read and dropped so that it never backs up. */
static int job_queue(weir_pipeline *p)
{
    weir_log_warn(MODULE, "no transcode capacity: the stream waits for a worker",
                  WL_STR("stream", p->name));
    drop_pending(p);
    if (p->vdec)
        avcodec_flush_buffers(p->vdec);
    if (p->adec)
        avcodec_flush_buffers(p->adec);
    atomic_store(&p->state, WEIR_PIPELINE_QUEUED);
    return 0;
}

/* QUEUED -> PROBING when pkt can start the job (a video keyframe; any
 * packet of an audio-only source) and the pool has admitted it meanwhile.
 * 1: pkt goes on as the first packet; 0: pkt is dropped. */
static int job_unqueue(weir_pipeline *p, const AVPacket *pkt)
{
    int starts = p->vin >= 0 ? pkt->stream_index == p->vin && (pkt->flags & AV_PKT_FLAG_KEY)
                             : pkt->stream_index == p->ain;
    if (!starts || !weir_pool_poll(p->ticket))
        return 0;
    weir_log_info(MODULE, "transcode capacity free: the stream starts",
                  WL_STR("stream", p->name));
    atomic_store(&p->state, WEIR_PIPELINE_PROBING);
    return 1;
}

/* The pool's say: 1 go on (the plan may have lost renditions), 0 queued,
 * < 0 cancelled while waiting. */
static int job_admit(weir_pipeline *p)
{
    if (!p->ticket)
        return 1;
    int ret = weir_pool_admit(p->ticket, &p->source, &p->plan);
    if (ret == 0)
        return job_queue(p);
    return ret;
}

/* PROBING -> RUNNING (or QUEUED).  f: the first decoded video frame, NULL
 * without video. */
static int job_configure(weir_pipeline *p, const AVFrame *f)
{
    int ret;
    describe_source(p, f);
    if ((ret = weir_ladder_decide(&p->source, &p->profile, &p->plan)) < 0) {
        weir_log_error(MODULE, "no rendition can be made of this source",
                       WL_STR("stream", p->name), WL_ERR(ret));
        return ret;
    }
    if ((ret = job_admit(p)) <= 0)
        return ret;
    weir_ladder_plan_log(p->name, &p->plan);
    if ((ret = open_encoders(p)) < 0)
        return ret;
    json_t *plan = weir_ladder_plan_json(&p->source, &p->plan);
    if (plan && p->profile_name[0])
        json_object_set_new(plan, "profile", json_string(p->profile_name));
    pthread_mutex_lock(&p->lock);
    p->plan_json = plan;
    pthread_mutex_unlock(&p->lock);
    if ((ret = p->outp->open(p)) < 0 || (ret = add_tracks(p)) < 0)
        return ret;
    for (int i = 0; i < p->nrungs; i++)
        if (p->rungs[i].enc && (ret = rung_start(p, &p->rungs[i])) < 0)
            return ret;
    atomic_store(&p->nrungs_ready, p->nrungs);
    atomic_store(&p->running_us, av_gettime_relative());
    atomic_store(&p->state, WEIR_PIPELINE_RUNNING);
    return flush_pending(p);
}

/* ---- video ------------------------------------------------------------------------ */

static int video_packet_passthrough(weir_pipeline *p, AVPacket *pkt)
{
    if (p->source_rung < 0)
        return 0;
    AVPacket *ref = av_packet_clone(pkt);
    if (!ref)
        return AVERROR(ENOMEM);
    int ret = ot_push(p, p->rungs[p->source_rung].out, ref);
    av_packet_free(&ref);
    return ret;
}

static int video_decoded(weir_pipeline *p, AVFrame *f)
{
    int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp
                                                              : f->pts;
    int ret;

    count(&p->frames_decoded);
    if (pts == AV_NOPTS_VALUE || (p->have_last_pts && pts <= p->last_pts)) {
        count(&p->frames_dropped);
        return 0;
    }
    p->have_last_pts = 1;
    p->last_pts = pts;
    if (state_of(p) == WEIR_PIPELINE_PROBING && (ret = job_configure(p, f)) < 0)
        return ret;
    if (state_of(p) != WEIR_PIPELINE_RUNNING)
        return 0;                       /* queued: frames the decoder still had */

    int64_t us = us_of(pts, p->vtb);
    if (!p->have_first_pts) {
        p->first_pts_us = us;
        p->have_first_pts = 1;
    }
    atomic_store(&p->media_us, us - p->first_pts_us);
    if (p->sink.frame)
        p->sink.frame(p->sink.arg, f, p->vtb);      /* thumbnails: the one decode, shared */

    int boundary = job_boundary(p, pts);
    for (int i = 0; i < p->nrungs; i++) {
        rung *r = &p->rungs[i];
        if (r->enc && rung_keeps(r, pts, boundary) &&
            (ret = rung_submit(p, r, f, pts, boundary)) < 0)
            return ret;
    }
    for (int i = 0; i < p->nrungs; i++)   /* frames to come have later pts */
        if (p->rungs[i].enc)
            ot_idle_mark(p, p->rungs[i].out, pts + 1);
    return 0;
}

static int hold(weir_pipeline *p, AVPacket *pkt)
{
    if (p->npending == PENDING_MAX) {
        weir_log_error(MODULE, "no decodable video", WL_STR("stream", p->name),
                       WL_INT("packets", PENDING_MAX));
        return AVERROR_INVALIDDATA;
    }
    if (!p->pending && !(p->pending = calloc(PENDING_MAX, sizeof *p->pending)))
        return AVERROR(ENOMEM);
    if (!(p->pending[p->npending] = av_packet_clone(pkt)))
        return AVERROR(ENOMEM);
    p->npending++;
    return 0;
}

static int video_packet(weir_pipeline *p, AVPacket *pkt)
{
    AVPacket *iso = pkt;                /* what the source rung gets */
    int ret = 0;
    if (pkt->flags & AV_PKT_FLAG_KEY)
        remember_src_key(p, pkt->pts);
    if (p->vconv) {
        if (!(iso = av_packet_clone(pkt)))
            return AVERROR(ENOMEM);
        if (weir_nal_conv_packet(p->vconv, iso) < 0) {
            count(&p->decode_errors);   /* malformed: not passed through */
            av_packet_free(&iso);
        }
    }
    if (iso)
        ret = state_of(p) == WEIR_PIPELINE_RUNNING ? video_packet_passthrough(p, iso)
                                                   : hold(p, iso);
    if (iso != pkt)
        av_packet_free(&iso);
    if (ret < 0)
        return ret;
    if (avcodec_send_packet(p->vdec, pkt) < 0) {
        count(&p->decode_errors);       /* invariant 3 */
        return 0;
    }
    return drain_decoder(p, p->vdec, p->dframe, video_decoded);
}

static int on_packet(weir_pipeline *p, AVPacket *pkt)
{
    int ret = 0;
    if (state_of(p) == WEIR_PIPELINE_QUEUED && !job_unqueue(p, pkt))
        return 0;
    if (pkt->stream_index == p->vin || pkt->stream_index == p->ain)
        note_source(p, pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts,
                    pkt->stream_index == p->vin ? p->vtb : p->atb);
    if (pkt->stream_index == p->vin) {
        ret = video_packet(p, pkt);
    } else if (pkt->stream_index == p->ain) {
        if (state_of(p) == WEIR_PIPELINE_RUNNING)
            ret = audio_packet(p, pkt);
        else if (p->vin < 0) {          /* audio only: nothing to probe */
            if ((ret = job_configure(p, NULL)) >= 0)
                ret = audio_packet(p, pkt);
        } else
            ret = hold(p, pkt);
    }
    if (ret >= 0 && state_of(p) == WEIR_PIPELINE_RUNNING)
        interleave(p, 0);
    return ret;
}

/* RUNNING -> DONE: drains every decoder and encoder, then the interleaver. */
static int job_finish(weir_pipeline *p)
{
    int ret = 0;
    if (p->vdec && avcodec_send_packet(p->vdec, NULL) >= 0)
        ret = drain_decoder(p, p->vdec, p->dframe, video_decoded);
    if (state_of(p) != WEIR_PIPELINE_RUNNING) {
        if (ret >= 0)
            weir_log_error(MODULE, "the source ended before a video frame decoded",
                           WL_STR("stream", p->name), WL_STR("input", p->in->kind),
                           WL_UINT("decode_errors", atomic_load(&p->decode_errors)));
        return ret < 0 ? ret : AVERROR_INVALIDDATA;
    }
    for (int i = 0; i < p->nrungs; i++) {
        int err = rung_join(&p->rungs[i], ret >= 0);
        ret = ret < 0 ? ret : err;
    }
    if (ret >= 0 && p->aenc) {
        if (avcodec_send_packet(p->adec, NULL) >= 0)
            ret = drain_decoder(p, p->adec, p->adframe, audio_decoded);
        if (ret >= 0)
            ret = audio_frame(p, NULL);
        int left = av_audio_fifo_size(p->fifo);
        if (ret >= 0 && left > 0)
            ret = encode_audio_frame(p, left);
        if (ret >= 0 && avcodec_send_frame(p->aenc, NULL) >= 0)
            ret = drain_audio_encoder(p);
    }
    for (int t = 0; t < p->ntracks; t++)
        ot_done(p, t);
    interleave(p, 1);
    return ret;
}

/* ---- inputs ---------------------------------------------------------------------- */

static void on_notify(void *arg)
{
    weir_pipeline *p = arg;
    pthread_mutex_lock(&p->lock);
    p->wake = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static int bus_open(weir_pipeline *p)
{
    (void)p;                            /* subscribed in weir_pipeline_new */
    return 0;
}

static int bus_read(weir_pipeline *p, AVPacket *pkt)
{
    return weir_sub_read(p->sub, pkt);
}

static int bus_ntracks(weir_pipeline *p)
{
    return weir_sub_ntracks(p->sub);
}

static const AVCodecParameters *bus_codecpar(weir_pipeline *p, int track, AVRational *tb)
{
    return weir_sub_codecpar(p->sub, track, tb);
}

static AVRational bus_framerate(weir_pipeline *p)
{
    weir_stream_info info;
    weir_stream_info_get(p->src, &info);
    return info.publisher.framerate;
}

static void bus_stats(weir_pipeline *p, weir_sub_stats *st)
{
    weir_sub_stats_get(p->sub, st);
}

static void bus_close(weir_pipeline *p)
{
    weir_sub_close(p->sub);             /* no notify after this */
    p->sub = NULL;
    weir_stream_unref(p->src);
    p->src = NULL;
}

static const input_ops bus_input = {
    .kind = "live", .open = bus_open, .read = bus_read, .ntracks = bus_ntracks,
    .codecpar = bus_codecpar, .framerate = bus_framerate, .stats = bus_stats,
    .close = bus_close,
};

/* Our tracks: the best video stream (not a cover picture), then the best
 * audio stream; every other stream is discarded by the demuxer. */
static void file_pick_streams(weir_pipeline *p)
{
    AVFormatContext *fmt = p->fmt;
    int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (v >= 0 && (fmt->streams[v]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        v = -1;
    int a = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, v, NULL, 0);
    p->fmt_ntracks = 0;
    if (v >= 0)
        p->fmt_map[p->fmt_ntracks++] = v;
    if (a >= 0)
        p->fmt_map[p->fmt_ntracks++] = a;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if ((int)i != v && (int)i != a)
            fmt->streams[i]->discard = AVDISCARD_ALL;
}

static int file_open(weir_pipeline *p)
{
    int ret = avformat_open_input(&p->fmt, p->input, NULL, NULL);
    const char *why = ret == AVERROR(ENOENT) || ret == AVERROR(EACCES)
                      ? "cannot open the file" : "not a media file libavformat reads";
    if (ret >= 0 && (ret = avformat_find_stream_info(p->fmt, NULL)) < 0)
        why = "cannot find the streams";
    if (ret >= 0) {
        file_pick_streams(p);
        if (!p->fmt_ntracks) {
            ret = AVERROR_INVALIDDATA;
            why = "no audio or video stream";
        }
    }
    if (ret < 0) {
        weir_log_error(MODULE, "cannot read the input file", WL_STR("job", p->name),
                       WL_STR("path", p->input), WL_STR("reason", why), WL_ERR(ret));
        return ret == AVERROR(ENOENT) || ret == AVERROR(EACCES) ? ret : AVERROR_INVALIDDATA;
    }
    p->fmt_start_us = p->fmt->start_time;
    p->fmt_duration_us = p->fmt->duration > 0 ? p->fmt->duration : AV_NOPTS_VALUE;
    p->fmt_size = p->fmt->pb ? avio_size(p->fmt->pb) : 0;
    return 0;
}

/* Percent of the file read: by time when the duration is known, else by
 * bytes.  At most 99 until the job is done. */
static void file_progress(weir_pipeline *p, const AVPacket *pkt, AVRational tb)
{
    int64_t ts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    int64_t pct = -1;
    if (ts != AV_NOPTS_VALUE && p->fmt_duration_us != AV_NOPTS_VALUE) {
        int64_t start = p->fmt_start_us != AV_NOPTS_VALUE ? p->fmt_start_us : 0;
        pct = (us_of(ts, tb) - start) * 100 / p->fmt_duration_us;
    } else if (p->fmt_size > 0) {
        pct = avio_tell(p->fmt->pb) * 100 / p->fmt_size;
    }
    pct = pct > 99 ? 99 : pct;
    if (pct <= atomic_load(&p->progress))
        return;
    atomic_store(&p->progress, (int)pct);
    if (p->sink.progress) {
        pthread_mutex_lock(&p->olock);  /* sink callbacks never run concurrently */
        p->sink.progress(p->sink.arg, (int)pct);
        pthread_mutex_unlock(&p->olock);
    }
}

static int file_read(weir_pipeline *p, AVPacket *pkt)
{
    for (;;) {
        int ret = av_read_frame(p->fmt, pkt);
        if (ret == AVERROR_EOF)
            return ret;
        if (ret < 0) {
            weir_log_error(MODULE, "the input file stopped reading", WL_STR("job", p->name),
                           WL_STR("path", p->input), WL_ERR(ret));
            return ret;
        }
        for (int t = 0; t < p->fmt_ntracks; t++)
            if (pkt->stream_index == p->fmt_map[t]) {
                file_progress(p, pkt, p->fmt->streams[pkt->stream_index]->time_base);
                pkt->stream_index = t;
                return 0;
            }
        av_packet_unref(pkt);
    }
}

static int file_ntracks(weir_pipeline *p)
{
    return p->fmt_ntracks;
}

static const AVCodecParameters *file_codecpar(weir_pipeline *p, int track, AVRational *tb)
{
    AVStream *st = p->fmt->streams[p->fmt_map[track]];
    if (tb)
        *tb = st->time_base;
    return st->codecpar;
}

static AVRational file_framerate(weir_pipeline *p)
{
    if (p->vin < 0)
        return (AVRational){ 0, 1 };
    AVStream *st = p->fmt->streams[p->fmt_map[p->vin]];
    return st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
}

static void file_stats(weir_pipeline *p, weir_sub_stats *st)
{
    (void)p;
    memset(st, 0, sizeof *st);          /* a file is never skipped */
}

static void file_close(weir_pipeline *p)
{
    avformat_close_input(&p->fmt);
}

static const input_ops file_input = {
    .kind = "file", .open = file_open, .read = file_read, .ntracks = file_ntracks,
    .codecpar = file_codecpar, .framerate = file_framerate, .stats = file_stats,
    .close = file_close,
};

/* ---- outputs ------------------------------------------------------------------------ */

static int bus_out_open(weir_pipeline *p)
{
    int ret = publish_output(p);
    if (ret < 0) {
        weir_log_error(MODULE, "cannot publish the renditions", WL_STR("stream", p->name),
                       WL_STR("output", p->out_name), WL_ERR(ret));
        return ret;
    }
    weir_publisher_info info = { .protocol = "transcode" };
    av_strlcpy(info.encoder, "weir " MODULE, sizeof info.encoder);
    if (p->nrungs)
        info.framerate = p->rungs[0].r.fps;
    weir_stream_set_publisher(p->out, &info);
    return 0;
}

static int bus_out_add_track(weir_pipeline *p, const AVCodecParameters *par, AVRational tb)
{
    return weir_stream_add_track(p->out, par, tb);
}

static int bus_out_write(weir_pipeline *p, const AVPacket *pkt)
{
    return weir_stream_write(p->out, pkt);
}

static void bus_out_end(weir_pipeline *p)
{
    if (p->out)
        weir_stream_end(p->out);
    p->out = NULL;
}

static const output_ops bus_output = {
    .open = bus_out_open, .add_track = bus_out_add_track, .write = bus_out_write,
    .end = bus_out_end,
};

static int sink_open(weir_pipeline *p)
{
    (void)p;
    return 0;
}

static int sink_add_track(weir_pipeline *p, const AVCodecParameters *par, AVRational tb)
{
    int ret = p->sink.track(p->sink.arg, p->sink_tracks, par, tb);
    return ret < 0 ? ret : p->sink_tracks++;
}

/* A sink that refuses a packet fails the job. */
static int sink_write(weir_pipeline *p, const AVPacket *pkt)
{
    int ret = p->sink.packet(p->sink.arg, pkt);
    if (ret < 0) {
        int none = 0;
        if (atomic_compare_exchange_strong(&p->out_err, &none, ret))
            weir_log_error(MODULE, "the sink refused a packet", WL_STR("job", p->name),
                           WL_ERR(ret));
        weir_pipeline_stop(p);
    }
    return ret;
}

static void sink_end(weir_pipeline *p)
{
    (void)p;                            /* the caller's done follows run */
}

static const output_ops sink_output = {
    .open = sink_open, .add_track = sink_add_track, .write = sink_write, .end = sink_end,
};

/* ---- the job --------------------------------------------------------------------- */

int weir_pipeline_new(const weir_pipeline_opts *opts, weir_pipeline **out)
{
    weir_pipeline *p = calloc(1, sizeof *p);
    int ret = AVERROR(ENOMEM);
    if (!p)
        return ret;
    if (!opts->source == !opts->input || (!opts->sink && !opts->bus) ||
        (opts->sink && (!opts->sink->track || !opts->sink->packet))) {
        free(p);
        return AVERROR(EINVAL);
    }
    const char *name = opts->source ? weir_stream_name(opts->source)
                                    : opts->name ? opts->name : opts->input;
    if (opts->source && strlen(name) + strlen(WEIR_PIPELINE_SUFFIX) > WEIR_BUS_NAME_MAX) {
        free(p);
        return AVERROR(EINVAL);
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_mutex_init(&p->olock, NULL);
    p->in = opts->source ? &bus_input : &file_input;
    p->outp = opts->sink ? &sink_output : &bus_output;
    p->bus = opts->bus;
    if (opts->sink)
        p->sink = *opts->sink;
    p->ticket = opts->ticket;
    av_strlcpy(p->name, name, sizeof p->name);
    if (!opts->sink)
        snprintf(p->out_name, sizeof p->out_name, "%s%s", name, WEIR_PIPELINE_SUFFIX);
    p->profile = *opts->profile;
    av_strlcpy(p->profile_name, opts->profile_name ? opts->profile_name : "",
               sizeof p->profile_name);
    p->segment_ms = opts->segment_ms > 0 ? opts->segment_ms : 2000;
    p->vin = p->ain = p->aout = p->source_rung = -1;
    p->started_us = av_gettime_relative();
    atomic_store(&p->progress, opts->input ? 0 : -1);
    if (!(p->dframe = av_frame_alloc()) || !(p->adframe = av_frame_alloc()) ||
        !(p->opkt = av_packet_alloc()))
        goto fail;
    if (opts->input && !(p->input = strdup(opts->input)))
        goto fail;
    if (opts->source) {
        p->src = opts->source;
        weir_stream_ref(p->src);
        weir_sub_opts so = { .queue_len = opts->queue_len > 0 ? opts->queue_len : QUEUE_DEFAULT,
                             .notify = on_notify, .arg = p };
        if ((ret = weir_stream_subscribe(p->src, &so, &p->sub)) < 0)
            goto fail;
    }
    *out = p;
    return 0;
fail:
    weir_pipeline_free(p);
    return ret;
}

void weir_pipeline_set_profile(weir_pipeline *p, const weir_ladder_profile *profile,
                               const char *name)
{
    p->profile = *profile;
    av_strlcpy(p->profile_name, name ? name : "", sizeof p->profile_name);
}

void weir_pipeline_stop(weir_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    atomic_store(&p->stopping, 1);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (p->ticket)
        weir_pool_cancel(p->ticket);    /* a file job may wait in the pool */
}

/* Waits for a notify or a stop; 1 when stopped. */
static int wait_for_packets(weir_pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->wake && !p->stop)
        pthread_cond_wait(&p->cond, &p->lock);
    p->wake = 0;
    int stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

/* The next source packet: 0, AVERROR_EOF, AVERROR_EXIT once stopped, or an
 * error.  A live job stops once it has read what its source queued; a file
 * job, which always has more, looks before each packet, and passes the
 * pool's checkpoint. */
static int next_packet(weir_pipeline *p, AVPacket *pkt)
{
    for (;;) {
        if (p->input && (atomic_load(&p->stopping) ||
                         (p->ticket && weir_pool_checkpoint(p->ticket) < 0)))
            return AVERROR_EXIT;
        int ret = p->in->read(p, pkt);
        if (ret != AVERROR(EAGAIN))
            return ret;
        if (wait_for_packets(p))
            return AVERROR_EXIT;
    }
}

/* How the run ended: the state and the result. */
static weir_pipeline_state run_end(weir_pipeline *p, int *ret)
{
    int out_err = atomic_load(&p->out_err);
    if (out_err < 0) {
        *ret = out_err;
        return WEIR_PIPELINE_FAILED;
    }
    if (*ret == AVERROR_EXIT && atomic_load(&p->stopping))
        return WEIR_PIPELINE_CANCELLED;
    return *ret < 0 ? WEIR_PIPELINE_FAILED : WEIR_PIPELINE_DONE;
}

static void log_end(weir_pipeline *p, weir_pipeline_state end, int ret)
{
    weir_sub_stats st;
    p->in->stats(p, &st);
    double wall = (double)(av_gettime_relative() - p->started_us) / 1e6;
    double media = (double)atomic_load(&p->media_us) / 1e6;
    weir_log(end == WEIR_PIPELINE_FAILED ? WEIR_LOG_ERROR : WEIR_LOG_INFO, MODULE, "job ended",
             WL_STR("stream", p->name), WL_STR("input", p->in->kind),
             WL_STR("state", weir_pipeline_state_name(end)),
             WL_DOUBLE("media_seconds", media), WL_DOUBLE("speed", wall > 0 ? media / wall : 0),
             WL_UINT("source_skips", st.skips), WL_UINT("source_dropped", st.dropped),
             WL_UINT("frames", atomic_load(&p->frames_decoded)),
             WL_UINT("decode_errors", atomic_load(&p->decode_errors)),
             WL_UINT("late_drops", atomic_load(&p->late_drops)),
             ret < 0 && ret != AVERROR_EXIT ? WL_ERR(ret) : (weir_log_field){ 0 });
}

int weir_pipeline_run(weir_pipeline *p)
{
    AVPacket *pkt = av_packet_alloc();
    int ret = pkt ? p->in->open(p) : AVERROR(ENOMEM);

    while (ret >= 0) {
        ret = next_packet(p, pkt);
        if (ret == AVERROR_EOF) {
            weir_pipeline_state st = state_of(p);
            /* Ended before it started, or while it waited: nothing to do. */
            ret = st == WEIR_PIPELINE_WAITING || st == WEIR_PIPELINE_QUEUED ? 0 : job_finish(p);
            break;
        }
        if (ret < 0)
            break;
        if (state_of(p) == WEIR_PIPELINE_WAITING)
            ret = job_start(p);
        if (ret >= 0)
            ret = on_packet(p, pkt);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    for (int i = 0; i < p->nrungs; i++)
        rung_join(&p->rungs[i], 0);     /* cancelled or failed: nothing more to encode */
    weir_pipeline_state end = run_end(p, &ret);
    if (end == WEIR_PIPELINE_DONE && p->input) {
        atomic_store(&p->progress, 100);
        if (p->sink.progress)
            p->sink.progress(p->sink.arg, 100);     /* the rung threads are gone */
    }
    atomic_store(&p->result, ret < 0 ? ret : 0);
    atomic_store(&p->state, end);       /* before the output ends: its readers may ask */
    p->outp->end(p);
    log_end(p, end, ret);
    return ret < 0 ? ret : 0;
}

static double since_running(weir_pipeline *p)
{
    int64_t t0 = atomic_load(&p->running_us);
    return t0 ? (double)(av_gettime_relative() - t0) / 1e6 : 0.0;
}

static json_t *renditions_json(weir_pipeline *p, double wall, double speed)
{
    json_t *rs = json_array();
    for (int i = 0; rs && i < atomic_load(&p->nrungs_ready); i++) {
        rung *r = &p->rungs[i];
        otrack *t = &p->tracks[r->out];
        double frames = (double)atomic_load(&r->frames);
        double media = (double)atomic_load(&r->media_us) / 1e6;
        json_array_append_new(rs, json_pack("{s:s, s:b, s:s?, s:i, s:i, s:I, s:I, s:I, s:I, "
                                            "s:f, s:f}",
                                            "name", r->r.name, "passthrough", r->r.source,
                                            "encoder", r->r.encoder,
                                            "width", r->r.width, "height", r->r.height,
                                            "frames", (json_int_t)frames,
                                            "packets", (json_int_t)atomic_load(&t->packets),
                                            "keyframes", (json_int_t)atomic_load(&t->keyframes),
                                            "encode_errors",
                                            (json_int_t)atomic_load(&r->encode_errors),
                                            "fps", wall > 0 ? frames / wall : 0.0,
                                            "speed", r->r.source ? speed
                                                     : wall > 0 ? media / wall : 0.0));
    }
    return rs;
}

json_t *weir_pipeline_json(weir_pipeline *p)
{
    double wall = since_running(p);
    double media = (double)atomic_load(&p->media_us) / 1e6;
    double speed = wall > 0 ? media / wall : 0.0;
    weir_sub_stats st;
    p->in->stats(p, &st);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:I}",
                          "kind", p->in->kind, "stream", p->name,
                          "state", weir_pipeline_state_name(weir_pipeline_get_state(p)),
                          "frames_decoded", (json_int_t)atomic_load(&p->frames_decoded),
                          "decode_errors", (json_int_t)atomic_load(&p->decode_errors),
                          "late_drops", (json_int_t)atomic_load(&p->late_drops),
                          "media_seconds", media, "speed", speed,
                          "source_skips", (json_int_t)st.skips,
                          "source_dropped", (json_int_t)st.dropped);
    json_t *rs = renditions_json(p, wall, speed);
    if (!o || !rs) {
        json_decref(o);
        json_decref(rs);
        return NULL;
    }
    if (p->out_name[0])
        json_object_set_new(o, "output", json_string(p->out_name));
    if (p->input)
        json_object_set_new(o, "progress", json_integer(atomic_load(&p->progress)));
    if (state_of(p) == WEIR_PIPELINE_FAILED)
        json_object_set_new(o, "error", json_string(av_err2str(atomic_load(&p->result))));
    if (p->ticket)
        json_object_set_new(o, "admission", weir_pool_ticket_json(p->ticket));
    json_object_set_new(o, "renditions", rs);
    pthread_mutex_lock(&p->lock);
    if (p->plan_json)
        json_object_set_new(o, "ladder", json_deep_copy(p->plan_json));
    pthread_mutex_unlock(&p->lock);
    return o;
}

void weir_pipeline_free(weir_pipeline *p)
{
    if (!p)
        return;
    if (p->in)
        p->in->close(p);
    if (p->out)
        weir_stream_end(p->out);
    for (int i = 0; i < p->nrungs; i++) {
        rung *r = &p->rungs[i];
        rung_join(r, 0);
        rung_free(r);
        if (r->sync) {
            pthread_cond_destroy(&r->qcond);
            pthread_mutex_destroy(&r->qlock);
        }
    }
    drop_pending(p);
    free(p->pending);
    tracks_free(p);
    weir_nal_conv_free(p->vconv);
    avcodec_free_context(&p->vdec);
    avcodec_free_context(&p->adec);
    avcodec_free_context(&p->aenc);
    swr_free(&p->swr);
    if (p->fifo)
        av_audio_fifo_free(p->fifo);
    av_frame_free(&p->aframe);
    av_frame_free(&p->dframe);
    av_frame_free(&p->adframe);
    av_packet_free(&p->opkt);
    json_decref(p->plan_json);
    free(p->input);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->olock);
    free(p);
}
