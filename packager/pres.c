/*
 * packager/pres.c — the segmenter: bus packets in, CMAF parts and segments
 * out.  See pres.h for the picture.
 */
#include "packager/pres.h"
#include "packager/ts.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#define VIDEO_TIMESCALE 90000
#define WINDOW_SPARE    2           /* segments kept past the listed window (410 after) */

static const AVRational ms_tb = { 1, 1000 };

static int64_t ts_to_ms(const pkg_track *t, int64_t ts)
{
    return av_rescale(ts, 1000, t->timescale);
}

/* ---- tracks ------------------------------------------------------------ */

static int cmaf_supported(const AVCodecParameters *par)
{
    switch (par->codec_id) {
    case AV_CODEC_ID_H264: case AV_CODEC_ID_HEVC: case AV_CODEC_ID_AV1:
    case AV_CODEC_ID_AAC: case AV_CODEC_ID_OPUS:
        return 1;
    default:
        return 0;
    }
}

static void epoch_unref(pkg_epoch *e)
{
    if (e && --e->refs == 0) {
        weir_buf_unref(e->init);
        free(e);
    }
}

static pkg_epoch *epoch_ref(pkg_epoch *e)
{
    e->refs++;
    return e;
}

/* The codec setup of one publish of a track: its own copy of the codec
 * parameters (*par_out) and an epoch with the init segment written.  0 or
 * AVERROR; nothing is kept on failure. */
static int epoch_new(const AVCodecParameters *par, uint32_t timescale, int64_t number,
                     AVCodecParameters **par_out, pkg_epoch **out)
{
    AVCodecParameters *copy = avcodec_parameters_alloc();
    pkg_epoch *e = calloc(1, sizeof *e);
    weir_bytes init = { 0 };
    int r = AVERROR(ENOMEM);

    if (!copy || !e || avcodec_parameters_copy(copy, par) < 0)
        goto fail;
    e->refs = 1;
    e->number = number;
    e->width = copy->width;
    e->height = copy->height;
    e->sample_rate = copy->sample_rate;
    e->channels = copy->ch_layout.nb_channels;
    if ((r = weir_cmaf_codec_string(copy, e->codecs, sizeof e->codecs)) < 0 ||
        (r = weir_cmaf_write_init(&(weir_cmaf_track){ .par = copy, .timescale = timescale },
                                  &init)) < 0)
        goto fail;
    if (!(e->init = weir_buf_copy(init.data, init.len))) {
        r = AVERROR(ENOMEM);
        goto fail;
    }
    weir_bytes_free(&init);
    *par_out = copy;
    *out = e;
    return 0;
fail:
    weir_bytes_free(&init);
    avcodec_parameters_free(&copy);
    free(e);
    return r;
}

/* Makes (par, e) the track's current codec setup; takes both. */
static void track_set_epoch(pkg_track *t, AVCodecParameters *par, pkg_epoch *e)
{
    avcodec_parameters_free(&t->par);
    epoch_unref(t->epoch);
    weir_buf_unref(t->init);
    t->par = par;
    t->epoch = e;
    t->init = weir_buf_ref(e->init);
    t->cmaf = (weir_cmaf_track){ .par = t->par, .timescale = t->timescale };
    snprintf(t->codecs, sizeof t->codecs, "%s", e->codecs);
}

static int track_init(pkg_track *t, const char *id, const AVCodecParameters *par, AVRational tb,
                      int64_t first_number)
{
    AVCodecParameters *copy;
    pkg_epoch *e;
    int r;

    snprintf(t->id, sizeof t->id, "%s", id);
    t->is_video = par->codec_type == AVMEDIA_TYPE_VIDEO;
    t->tb = tb;
    t->timescale = t->is_video ? VIDEO_TIMESCALE
                 : par->sample_rate > 0 ? (uint32_t)par->sample_rate : 48000;
    t->first_number = first_number;
    if ((r = epoch_new(par, t->timescale, first_number, &copy, &e)) < 0)
        return r;
    track_set_epoch(t, copy, e);
    return 0;
}

static void segment_free(pkg_segment *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nparts; i++)
        weir_buf_unref(s->parts[i].buf);
    free(s->parts);
    weir_buf_unref(s->whole);
    epoch_unref(s->epoch);
    free(s);
}

static void track_clear(pkg_track *t)
{
    for (int i = 0; i < t->npend; i++)
        av_packet_free(&t->pend[i]);
    free(t->pend);
    for (int i = 0; i < t->nsegs; i++)
        segment_free(t->segs[i]);
    free(t->segs);
    avcodec_parameters_free(&t->par);
    weir_buf_unref(t->init);
    epoch_unref(t->epoch);
    weir_buf_unref(t->playlist);
    weir_buf_unref(t->playlist_delta);
    free(t->rec);
    memset(t, 0, sizeof *t);
}

int pres_new(const char *name, const weir_packager_settings *settings,
             const AVCodecParameters *const *pars, const AVRational *tbs, int ntracks,
             int64_t now_unix_ms, int64_t first_number, pkg_pres **out)
{
    pkg_pres *p = calloc(1, sizeof *p);
    int nv = 0, na = 0, r = 0;

    if (!p)
        return AVERROR(ENOMEM);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->settings = settings;
    p->created_unix_ms = now_unix_ms;
    p->epoch_unix_ms = now_unix_ms;
    p->first_number = first_number;
    p->key = -1;
    p->target_s = (settings->segment_duration + 999) / 1000;
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++)
        p->map[i] = -1;
    for (int i = 0; i < ntracks && i < WEIR_STREAM_MAX_TRACKS; i++) {
        const AVCodecParameters *par = pars[i];
        char id[16];
        if (!cmaf_supported(par)) {
            weir_log_warn("packager", "track left out: codec not packaged",
                          WL_STR("stream", name), WL_INT("track", i),
                          WL_STR("codec", avcodec_get_name(par->codec_id)));
            continue;
        }
        if (par->codec_type == AVMEDIA_TYPE_VIDEO)
            snprintf(id, sizeof id, "v%d", nv++);
        else
            snprintf(id, sizeof id, "a%d", na++);
        pkg_track *t = &p->tracks[p->ntracks];
        if ((r = track_init(t, id, par, tbs[i], first_number)) < 0) {
            weir_log_warn("packager", "track left out: bad codec parameters",
                          WL_STR("stream", name), WL_INT("track", i),
                          WL_STR("codec", avcodec_get_name(par->codec_id)), WL_ERR(r));
            track_clear(t);
            if (r == AVERROR(ENOMEM))
                goto fail;
            continue;
        }
        p->map[i] = p->ntracks;
        p->ntracks++;
        if (p->key < 0 && t->is_video)
            p->key = p->ntracks - 1;
    }
    if (p->ntracks == 0) {
        r = AVERROR(EINVAL);
        goto fail;
    }
    if (p->key < 0)
        p->key = 0;
    if (settings->hls_ts && (r = ts_new(p)) < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    pres_free(p);
    return r;
}

void pres_free(pkg_pres *p)
{
    if (!p)
        return;
    if (p->rec)
        pres_end(p, weir_clock_unix_ms());  /* finishes the recording */
    for (int i = 0; i < p->ntracks; i++)
        track_clear(&p->tracks[i]);
    ts_free(p->ts);
    weir_buf_unref(p->master);
    weir_buf_unref(p->mpd);
    free(p);
}

/* ---- a publisher coming back ------------------------------------------- */

static void publish(pkg_pres *p, int segment_done, int64_t now_unix_ms);

/* Media time (ms) where the last segment of any track ends. */
static int64_t end_ms(const pkg_pres *p)
{
    int64_t end = 0;
    for (int i = 0; i < p->ntracks; i++) {
        const pkg_track *t = &p->tracks[i];
        if (t->nsegs > 0) {
            const pkg_segment *s = t->segs[t->nsegs - 1];
            int64_t e = av_rescale(s->start_ts + s->duration_ts, 1000, t->timescale);
            if (e > end)
                end = e;
        }
    }
    return end;
}

/* Media time (ms, rounded down) where the key track's last segment ends: the
 * start of the next epoch's DASH Period, so that no Period ends in a stretch
 * without media (dash.c says why).  The end of any track when the key track
 * has none in memory. */
static int64_t key_end_ms(const pkg_pres *p)
{
    const pkg_track *t = &p->tracks[p->key];
    if (t->nsegs == 0)
        return end_ms(p);
    const pkg_segment *s = t->segs[t->nsegs - 1];
    return av_rescale_rnd(s->start_ts + s->duration_ts, 1000, t->timescale, AV_ROUND_DOWN);
}

int pres_resume(pkg_pres *p, const AVCodecParameters *const *pars, const AVRational *tbs,
                int ntracks, int64_t now_unix_ms)
{
    AVCodecParameters *npar[WEIR_STREAM_MAX_TRACKS] = { 0 };
    pkg_epoch *nep[WEIR_STREAM_MAX_TRACKS] = { 0 };
    int map[WEIR_STREAM_MAX_TRACKS], n = 0, r = 0;
    int64_t next = 0;

    if (!p->paused)
        return AVERROR(EINVAL);
    for (int i = 0; i < p->ntracks; i++) {
        pkg_track *t = &p->tracks[i];
        int64_t after = t->nsegs ? t->segs[t->nsegs - 1]->number + 1
                                 : t->first_number + (int64_t)t->segs_cut;
        if (after > next)
            next = after;
    }
    /* Match the packaged tracks, in order: same kinds, audio at the same
     * rate (its timescale, which every listed segment is timed in). */
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++)
        map[i] = -1;
    for (int i = 0; i < ntracks && i < WEIR_STREAM_MAX_TRACKS && r == 0; i++) {
        const AVCodecParameters *par = pars[i];
        if (!cmaf_supported(par))
            continue;
        pkg_track *t = n < p->ntracks ? &p->tracks[n] : NULL;
        if (!t || t->is_video != (par->codec_type == AVMEDIA_TYPE_VIDEO) ||
            (!t->is_video && (uint32_t)par->sample_rate != t->timescale)) {
            r = AVERROR(EINVAL);
            break;
        }
        r = epoch_new(par, t->timescale, next, &npar[n], &nep[n]);
        map[i] = n++;
    }
    if (r == 0 && n != p->ntracks)
        r = AVERROR(EINVAL);
    if (r < 0) {
        for (int i = 0; i < n; i++) {
            avcodec_parameters_free(&npar[i]);
            epoch_unref(nep[i]);
        }
        return r;
    }

    p->epoch_seq++;
    int64_t period_ms = key_end_ms(p);
    for (int i = 0; i < p->ntracks; i++) {
        pkg_track *t = &p->tracks[i];
        nep[i]->seq = p->epoch_seq;
        nep[i]->period_ms = period_ms;
        track_set_epoch(t, npar[i], nep[i]);
        t->keyed = 0;
        t->cut = p->nboundaries;
        t->segs_cut = (uint64_t)(next - t->first_number);
        t->nrec = 0;                /* a recording, if any, starts afresh */
    }
    for (int i = 0; i < WEIR_STREAM_MAX_TRACKS; i++) {
        p->map[i] = map[i];
        if (map[i] >= 0)
            p->tracks[map[i]].tb = tbs[i];
    }
    p->epoch_unix_ms = now_unix_ms;
    p->resume_at_ms = end_ms(p);
    p->started = 0;
    p->parts_in_seg = 0;
    p->paused = 0;
    p->ended = 0;
    if (p->ts && ts_resume(p, now_unix_ms) < 0) {
        weir_log_warn("packager", "hls_ts: the TS variant ends here (new codec setup not "
                      "carried)", WL_STR("stream", p->name));
        ts_free(p->ts);
        p->ts = NULL;
    }
    publish(p, 1, now_unix_ms);         /* live again: no EXT-X-ENDLIST */
    weir_log_info("packager", "publisher back: the presentation goes on after a discontinuity",
                  WL_STR("stream", p->name), WL_INT("discontinuity", p->epoch_seq),
                  WL_INT("next_segment", next));
    return 0;
}

/* ---- small helpers shared with hls.c and dash.c ------------------------ */

weir_buf *pkg_finish(weir_bytes *b, int r)
{
    weir_buf *out = r < 0 ? NULL : weir_buf_copy(b->data, b->len);
    weir_bytes_free(b);
    return out;
}

int pkg_printf(weir_bytes *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return AVERROR(EINVAL);
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown)
            return AVERROR(ENOMEM);
        b->data = grown;
        b->cap = cap;
    }
}

void pres_epoch_init_name(const pkg_track *t, const pkg_epoch *e, char buf[PRES_INIT_NAME_MAX])
{
    snprintf(buf, PRES_INIT_NAME_MAX, "%.15s_i%" PRId64 ".mp4", t->id, e->number);
}

void pres_init_name(const pkg_pres *p, const pkg_track *t, char buf[PRES_INIT_NAME_MAX])
{
    (void)p;
    pres_epoch_init_name(t, t->epoch, buf);
}

void pres_listed(const pkg_pres *p, const pkg_track *t, int *first, int *n)
{
    int complete = t->nsegs;
    if (complete > 0 && !t->segs[complete - 1]->complete)
        complete--;
    *n = complete < p->settings->window ? complete : (int)p->settings->window;
    *first = complete - *n;
}

int pres_listing(const pkg_pres *p, const pkg_track *t, pkg_listed **out, int *n)
{
    int first, listed, from = 0, k = 0;
    pkg_listed *l;

    *out = NULL;
    *n = 0;
    pres_listed(p, t, &first, &listed);
    if (p->settings->dvr_window > 0) {
        /* Every complete segment that starts within dvr_window of the end:
         * those in memory, and before them those only the recording has. */
        int complete = first + listed;
        int64_t start_min = INT64_MIN;
        int64_t before = t->nsegs > 0 ? t->segs[0]->number : INT64_MAX;
        if (complete > 0) {
            const pkg_segment *last = t->segs[complete - 1];
            start_min = last->start_ts + last->duration_ts -
                        av_rescale(p->settings->dvr_window, t->timescale, 1000);
        }
        for (first = 0; first < complete && t->segs[first]->start_ts < start_min; first++)
            ;
        listed = complete - first;
        for (int i = 0; i < t->nrec; i++)
            if (t->rec[i].start_ts >= start_min && t->rec[i].number < before && k++ == 0)
                from = i;
    }
    if (k + listed == 0)
        return 0;
    if (!(l = malloc((size_t)(k + listed) * sizeof *l)))
        return AVERROR(ENOMEM);
    for (int i = 0; i < k; i++) {
        const pkg_span *sp = &t->rec[from + i];
        l[i] = (pkg_listed){ sp->number, sp->start_ts, sp->duration_ts, t->epoch, NULL };
    }
    for (int i = 0; i < listed; i++) {
        const pkg_segment *sg = t->segs[first + i];
        l[k + i] = (pkg_listed){ sg->number, sg->start_ts, sg->duration_ts, sg->epoch, sg };
    }
    *out = l;
    *n = k + listed;
    return 0;
}

int64_t pres_track_avg_bps(const pkg_track *t)
{
    if (t->duration_total_ts <= 0)
        return 0;
    return (int64_t)av_rescale((int64_t)t->bytes_total * 8, t->timescale, t->duration_total_ts);
}

double pres_track_fps(const pkg_track *t)
{
    if (!t->is_video || t->duration_total_ts <= 0)
        return 0;
    return (double)t->frames_total * t->timescale / (double)t->duration_total_ts;
}

/* ---- cutting ------------------------------------------------------------ */

/* The packet's decode time in the track's timescale, on the media clock,
 * shifted by the track's composition delay (see pkg_track.shift_ts). */
static int64_t pkt_ts(const pkg_pres *p, const pkg_track *t, const AVPacket *pkt)
{
    return av_rescale_q(pkt->dts, t->tb, (AVRational){ 1, (int)t->timescale }) -
           av_rescale(p->base_ms, t->timescale, 1000) + t->shift_ts;
}

static pkg_segment *open_segment(pkg_track *t, int64_t start_ts)
{
    pkg_segment *s;

    if (t->nsegs > 0 && !t->segs[t->nsegs - 1]->complete)
        return t->segs[t->nsegs - 1];
    if (t->nsegs == t->capsegs) {
        int cap = t->capsegs ? t->capsegs * 2 : 16;
        pkg_segment **grown = realloc(t->segs, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        t->segs = grown;
        t->capsegs = cap;
    }
    if (!(s = calloc(1, sizeof *s)))
        return NULL;
    /* Numbered by the segment boundaries behind it, so every track agrees
     * even if one of them had nothing to put in some segment. */
    s->number = t->first_number + (int64_t)t->segs_cut;
    s->start_ts = start_ts;
    s->epoch = epoch_ref(t->epoch);
    t->segs[t->nsegs++] = s;
    return s;
}

static int add_part(pkg_segment *s, const pkg_part *part)
{
    if (s->nparts == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        pkg_part *grown = realloc(s->parts, (size_t)cap * sizeof *grown);
        if (!grown)
            return AVERROR(ENOMEM);
        s->parts = grown;
        s->cap = cap;
    }
    s->parts[s->nparts++] = *part;
    s->duration_ts += part->duration_ts;
    return 0;
}

/* Keeps the newest window + WINDOW_SPARE complete segments (and the one in
 * progress, if any). */
static void trim_window(pkg_pres *p, pkg_track *t)
{
    int complete = t->nsegs - (t->nsegs > 0 && !t->segs[t->nsegs - 1]->complete);
    int drop = complete - ((int)p->settings->window + WINDOW_SPARE);

    if (drop <= 0)
        return;
    for (int i = 0; i < drop; i++)
        segment_free(t->segs[i]);
    memmove(t->segs, t->segs + drop, (size_t)(t->nsegs - drop) * sizeof *t->segs);
    t->nsegs -= drop;
}

/* Re-renders what a new part or segment changed and tells the listener
 * (the origin wakes the requests it holds).  A segment changes every
 * playlist (bandwidth, window); a part, with low latency, only the media
 * playlists, which list parts and report on each other. */
static void publish(pkg_pres *p, int segment_done, int64_t now_unix_ms)
{
    weir_buf *b;

    p->version++;
    p->updated_unix_ms = now_unix_ms;
    for (int i = 0; i < p->ntracks; i++) {
        pkg_track *t = &p->tracks[i];
        if ((b = pres_render_media(p, t, 0))) {
            weir_buf_unref(t->playlist);
            t->playlist = b;
        }
        if (p->settings->low_latency && (b = pres_render_media(p, t, 1))) {
            weir_buf_unref(t->playlist_delta);
            t->playlist_delta = b;
        }
    }
    /* The master needs every track's bandwidth: wait for a segment on each. */
    for (int i = 0; segment_done && i < p->ntracks; i++)
        if (p->tracks[i].duration_total_ts == 0)
            segment_done = 0;
    if (segment_done && (b = pres_render_master(p))) {
        weir_buf_unref(p->master);
        p->master = b;
    }
    if (segment_done && (b = pres_render_mpd(p, now_unix_ms))) {
        weir_buf_unref(p->mpd);
        p->mpd = b;
    }
    if (p->on_change)
        p->on_change(p->change_arg, p->name);
}

static int complete_segment(pkg_pres *p, pkg_track *t, pkg_segment *s, int64_t now_unix_ms)
{
    size_t total = 0, off = 0;
    int64_t ms;

    for (int i = 0; i < s->nparts; i++)
        total += s->parts[i].buf->size;
    if (!(s->whole = weir_buf_new(total)))
        return AVERROR(ENOMEM);
    for (int i = 0; i < s->nparts; i++) {
        memcpy(s->whole->data + off, s->parts[i].buf->data, s->parts[i].buf->size);
        off += s->parts[i].buf->size;
    }
    s->complete = 1;

    t->bytes_total += total;
    t->duration_total_ts += s->duration_ts;
    if (s->duration_ts > 0) {
        int64_t bps = av_rescale((int64_t)total * 8, t->timescale, s->duration_ts);
        if (bps > t->peak_bps)
            t->peak_bps = bps;
    }
    ms = ts_to_ms(t, s->duration_ts);
    if (ms > t->max_segment_ms)
        t->max_segment_ms = ms;
    /* EXTINF rounded must not exceed TARGETDURATION (RFC 8216 4.4.3.1). */
    if ((ms + 500) / 1000 > p->target_s) {
        weir_log_warn("packager", "segment longer than the target; keyframe interval too long?",
                      WL_STR("stream", p->name), WL_INT("segment_ms", ms),
                      WL_INT("target_ms", p->settings->segment_duration));
        p->target_s = (ms + 500) / 1000;
    }
    rec_segment(p, t, s);
    trim_window(p, t);
    publish(p, 1, now_unix_ms);
    return 0;
}

/* Turns the track's pending samples into one part.  next_ts: decode time of
 * the sample that follows them (-1 at end of stream).  ends_segment: the
 * part is the last of its segment. */
static int track_cut(pkg_pres *p, pkg_track *t, int64_t next_ts, int ends_segment,
                     int64_t now_unix_ms)
{
    weir_cmaf_sample *samples = NULL;
    weir_bytes frag = { 0 };
    pkg_segment *seg = NULL;
    pkg_part part = { 0 };
    int64_t first_ts;
    int n = t->npend, r = 0;

    if (n == 0)
        goto close;
    if (!(samples = calloc((size_t)n, sizeof *samples)))
        return AVERROR(ENOMEM);
    first_ts = pkt_ts(p, t, t->pend[0]);
    for (int i = 0; i < n; i++) {
        const AVPacket *pkt = t->pend[i];
        int64_t dts = pkt_ts(p, t, pkt);
        int64_t next = i + 1 < n ? pkt_ts(p, t, t->pend[i + 1]) : next_ts;
        int64_t dur = next >= 0 ? next - dts : t->last_duration_ts;
        if (dur <= 0 || dur > UINT32_MAX)
            dur = t->last_duration_ts > 0 ? t->last_duration_ts : 1;
        t->last_duration_ts = dur;
        samples[i] = (weir_cmaf_sample){
            .data = pkt->data, .size = (size_t)pkt->size, .duration = (uint32_t)dur,
            .cts_offset = (int32_t)(av_rescale_q(pkt->pts - pkt->dts, t->tb,
                                                 (AVRational){ 1, (int)t->timescale }) -
                                    t->shift_ts),
            .key = !t->is_video || (pkt->flags & AV_PKT_FLAG_KEY),
        };
        part.duration_ts += dur;
    }
    if (!(seg = open_segment(t, first_ts))) {
        r = AVERROR(ENOMEM);
        goto out;
    }
    r = weir_cmaf_write_fragment(&t->cmaf, ++t->frag_seq, (uint64_t)first_ts, samples,
                                 (size_t)n, seg->nparts == 0, &frag);
    if (r < 0)
        goto out;
    part.start_ts = first_ts;
    part.independent = samples[0].key;
    if (!(part.buf = weir_buf_copy(frag.data, frag.len)) || (r = add_part(seg, &part)) < 0) {
        weir_buf_unref(part.buf);
        r = AVERROR(ENOMEM);
        goto out;
    }
    /* The TS variant takes the packets (the slots turn NULL). */
    if (p->ts && (r = ts_take(p, t, t->pend, n)) < 0)
        goto out;
    t->frames_total += n;       /* counted now, used once the segment is complete */
    for (int i = 0; i < n; i++)
        av_packet_free(&t->pend[i]);
    t->npend = 0;
close:
    if (ends_segment && p->ts)
        ts_cut(p, t, t->nsegs > 0 && !t->segs[t->nsegs - 1]->complete ? t->segs[t->nsegs - 1]
                                                                    : NULL, now_unix_ms);
    if (ends_segment && t->nsegs > 0 && !t->segs[t->nsegs - 1]->complete)
        r = complete_segment(p, t, t->segs[t->nsegs - 1], now_unix_ms);
    else if (r >= 0 && n > 0 && p->settings->low_latency)
        publish(p, 0, now_unix_ms);
out:
    free(samples);
    weir_bytes_free(&frag);
    return r;
}

static void push_boundary(pkg_pres *p, int64_t ms, int segment)
{
    uint64_t oldest = p->nboundaries;

    for (int i = 0; i < p->ntracks; i++)
        if (p->tracks[i].cut < oldest)
            oldest = p->tracks[i].cut;
    /* A track so far behind that its boundary would be overwritten (it sent
     * nothing for minutes) skips ahead; its samples land in a longer part. */
    if (p->nboundaries - oldest >= PRES_BOUNDARIES)
        for (int i = 0; i < p->ntracks; i++)
            if (p->nboundaries - p->tracks[i].cut >= PRES_BOUNDARIES)
                p->tracks[i].cut = p->nboundaries - PRES_BOUNDARIES + 1;
    p->bq[p->nboundaries % PRES_BOUNDARIES].ms = ms;
    p->bq[p->nboundaries % PRES_BOUNDARIES].segment = segment;
    p->nboundaries++;
}

int pres_packet(pkg_pres *p, const AVPacket *pkt, int64_t now_unix_ms)
{
    pkg_track *t;
    AVPacket *ref;
    int64_t ms;
    int ti, key, r;

    if (pkt->stream_index < 0 || pkt->stream_index >= WEIR_STREAM_MAX_TRACKS || p->paused)
        return 0;
    if ((ti = p->map[pkt->stream_index]) < 0 || pkt->dts == AV_NOPTS_VALUE ||
        pkt->pts == AV_NOPTS_VALUE)
        return 0;
    t = &p->tracks[ti];
    key = !t->is_video || (pkt->flags & AV_PKT_FLAG_KEY);
    ms = av_rescale_q(pkt->dts, t->tb, ms_tb);
    if (!p->started) {
        /* Media time 0 is the key track's first keyframe. */
        if (ti != p->key || !key)
            return 0;
        p->started = 1;
        if (p->epoch_seq == 0) {
            p->base_ms = ms;
            p->ast_unix_ms = now_unix_ms;
        } else {
            /* Back after a gap: this keyframe sits where the wall clock
             * says, never before what was already served. */
            int64_t at = now_unix_ms - p->ast_unix_ms;
            if (at < p->resume_at_ms)
                at = p->resume_at_ms;
            p->base_ms = ms - at;
        }
        /* The segment starts at this keyframe's presentation time. */
        p->seg_start_ms = ms - p->base_ms + av_rescale_q(pkt->pts - pkt->dts, t->tb, ms_tb);
        for (int i = 0; i < p->ntracks; i++)
            p->tracks[i].epoch->start_ms = p->epoch_seq ? p->seg_start_ms : 0;
    }
    ms -= p->base_ms;
    if (ms < 0)
        return 0;               /* before media time 0 */
    if (!t->keyed) {
        /* A fragment must start with a sync sample: a rendition joined
         * mid-GOP waits for its first keyframe. */
        if (!key)
            return 0;
        t->keyed = 1;
        t->shift_ts = av_rescale_q(pkt->pts - pkt->dts, t->tb,
                                   (AVRational){ 1, (int)t->timescale });
    }
    if (ti == p->key && (t->npend > 0 || t->nsegs > 0)) {
        /* Segments: the first keyframe whose presentation time is a segment
         * duration past the last cut, the rule the transcoder forces its
         * keyframes by, so every rung cuts at the same instant.  Parts: on
         * a grid from the segment start (k x part_duration), so they never
         * drift; a part can run past the grid line to the next frame. */
        int64_t pts_ms = av_rescale_q(pkt->pts, t->tb, ms_tb) - p->base_ms;
        if (key && pts_ms - p->seg_start_ms >= p->settings->segment_duration) {
            push_boundary(p, pts_ms, 1);
            p->seg_start_ms = pts_ms;
            p->parts_in_seg = 0;
        } else if (ms + ts_to_ms(t, t->shift_ts) - p->seg_start_ms >=
                   (p->parts_in_seg + 1) * p->settings->part_duration) {
            /* (decode time + the composition delay: the same clock as the
             * segment start, a keyframe's presentation time) */
            push_boundary(p, ms, 0);
            p->parts_in_seg++;
        }
        if (!p->part_target_ms && t->last_duration_ts > 0) {
            /* The longest part the grid can make: whole frames covering
             * part_duration (25 fps: 13 x 40 = 520 ms; 30 fps: 500 ms). */
            double frame = (double)t->last_duration_ts * 1000.0 / t->timescale;
            double frames = ceil((double)p->settings->part_duration / frame - 1e-6);
            p->part_target_ms = (int64_t)ceil(frames * frame - 1e-6);
        }
    }
    /* Cut at every boundary this sample reaches: its decode time ends the
     * pending samples' last duration.  The key track cuts at the sample
     * that made the boundary (a keyframe's decode time may precede the
     * presentation time the boundary carries). */
    while (t->cut < p->nboundaries &&
           (ti == p->key || ms >= p->bq[t->cut % PRES_BOUNDARIES].ms)) {
        int segment = p->bq[t->cut % PRES_BOUNDARIES].segment;
        if ((r = track_cut(p, t, pkt_ts(p, t, pkt), segment, now_unix_ms)) < 0)
            return r;
        t->cut++;
        if (segment)
            t->segs_cut++;
    }
    if (t->npend == t->cappend) {
        int cap = t->cappend ? t->cappend * 2 : 64;
        AVPacket **grown = realloc(t->pend, (size_t)cap * sizeof *grown);
        if (!grown)
            return AVERROR(ENOMEM);
        t->pend = grown;
        t->cappend = cap;
    }
    if (!(ref = av_packet_clone(pkt)))
        return AVERROR(ENOMEM);
    t->pend[t->npend++] = ref;
    return 0;
}

/* Cuts track t's pending samples at every boundary it has not reached, as
 * pres_packet would have once later samples came. */
static int track_catch_up(pkg_pres *p, pkg_track *t, int64_t now_unix_ms)
{
    while (t->cut < p->nboundaries) {
        int64_t b_ms = p->bq[t->cut % PRES_BOUNDARIES].ms;
        int segment = p->bq[t->cut % PRES_BOUNDARIES].segment;
        int k = 0, kept, nrest, r;

        while (k < t->npend &&
               av_rescale_q(t->pend[k]->dts, t->tb, ms_tb) - p->base_ms < b_ms)
            k++;
        /* track_cut takes pend[0..npend): hand it the first k, then put
         * the rest back behind whatever it did not take. */
        nrest = t->npend - k;
        t->npend = k;
        r = track_cut(p, t, nrest > 0 ? pkt_ts(p, t, t->pend[k]) : -1, segment, now_unix_ms);
        kept = t->npend;
        memmove(t->pend + kept, t->pend + k, (size_t)nrest * sizeof *t->pend);
        t->npend = kept + nrest;
        if (r < 0)
            return r;
        t->cut++;
        if (segment)
            t->segs_cut++;
    }
    return 0;
}

int pres_pause(pkg_pres *p, int64_t now_unix_ms)
{
    int ret = 0;

    if (p->paused || p->ended)
        return 0;
    /* A track behind the key track (audio arrives later than video) has not
     * cut the last boundaries yet: cut them now, at the same instants, so
     * segment N is the same span on every track and no track skips a
     * number (a playlist's sequence numbers must run on without gaps). */
    for (int i = 0; i < p->ntracks; i++) {
        int r = track_catch_up(p, &p->tracks[i], now_unix_ms);
        if (r < 0)
            ret = r;
    }
    p->paused = 1;
    for (int i = 0; i < p->ntracks; i++) {
        int r = track_cut(p, &p->tracks[i], -1, 1, now_unix_ms);
        if (r < 0)
            ret = r;
    }
    publish(p, 1, now_unix_ms);
    rec_end(p, now_unix_ms);            /* a publisher back makes a new recording */
    return ret;
}

int pres_end(pkg_pres *p, int64_t now_unix_ms)
{
    int ret;

    if (p->ended)
        return 0;
    ret = pres_pause(p, now_unix_ms);
    p->ended = 1;
    /* Re-render: EXT-X-ENDLIST appears, the MPD turns static. */
    publish(p, 1, now_unix_ms);
    ts_ended(p, now_unix_ms);
    return ret;
}

/* ---- lookup ------------------------------------------------------------- */

static uint64_t etag_of(const pkg_pres *p, uint64_t what)
{
    /* Unique per presentation instance: a republished name gets new tags. */
    return ((uint64_t)p->created_unix_ms * 0x9E3779B97F4A7C15ull) ^ what;
}

static pkg_track *find_track(pkg_pres *p, const char *id, size_t len)
{
    for (int i = 0; i < p->ntracks; i++)
        if (strlen(p->tracks[i].id) == len && memcmp(p->tracks[i].id, id, len) == 0)
            return &p->tracks[i];
    return NULL;
}

int pkg_give(weir_object *out, weir_buf *b, const char *type, weir_cache_class cache,
             int64_t max_age_ms, int64_t mtime_ms, uint64_t etag)
{
    if (!b)
        return AVERROR(ENOENT);
    *out = (weir_object){
        .body = weir_buf_ref(b), .content_type = type, .cache = cache,
        .max_age_ms = max_age_ms, .mtime_ms = mtime_ms, .etag = etag,
    };
    return 0;
}

void pres_live_edge(const pkg_track *t, int64_t *msn, int *parts)
{
    const pkg_segment *last = t->nsegs ? t->segs[t->nsegs - 1] : NULL;

    if (!last) {
        *msn = t->first_number + (int64_t)t->segs_cut;
        *parts = 0;
    } else if (last->complete) {
        *msn = last->number + 1;
        *parts = 0;
    } else {
        *msn = last->number;
        *parts = last->nparts;
    }
}

/* Blocking reload (RFC 8216bis 6.2.5.2): 1 when t's playlist already holds
 * segment msn (part `part`, or the whole segment when part < 0), 0 when it
 * will, AVERROR(EINVAL) when msn is more than two segments ahead. */
static int playlist_reaches(const pkg_pres *p, const pkg_track *t, int64_t msn, int64_t part)
{
    int64_t edge;
    int parts;

    if (p->ended || !p->settings->low_latency)
        return 1;
    pres_live_edge(t, &edge, &parts);
    if (msn > edge + 2)
        return AVERROR(EINVAL);
    if (msn < edge)
        return 1;
    return msn == edge && part >= 0 && part < parts;
}

static pkg_segment *find_segment(const pkg_track *t, int64_t n)
{
    for (int i = 0; i < t->nsegs; i++)
        if (t->segs[i]->number == n)
            return t->segs[i];
    return NULL;
}

/* The epoch whose init segment is named after number n: the current one or
 * one a kept segment belongs to. */
static const pkg_epoch *find_epoch(const pkg_track *t, int64_t n)
{
    if (t->epoch->number == n)
        return t->epoch;
    for (int i = 0; i < t->nsegs; i++)
        if (t->segs[i]->epoch->number == n)
            return t->segs[i]->epoch;
    return NULL;
}

/* "12.m4s" -> n 12, part -1; "12.3.m4s" -> n 12, part 3.  0 or -1. */
static int parse_media_name(const char *s, int64_t *n, int64_t *part)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    *n = strtoll(s, &end, 10);
    *part = -1;
    if (*end == '.' && end[1] >= '0' && end[1] <= '9') {
        *part = strtoll(end + 1, &end, 10);
        if (*part > 100000)
            return -1;
    }
    return strcmp(end, ".m4s") == 0 && *n > 0 ? 0 : -1;
}

/* Is segment n in the track's recording (spans ascend by number)? */
static int recorded(const pkg_track *t, int64_t n)
{
    int lo = 0, hi = t->nrec - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->rec[mid].number == n)
            return 1;
        if (t->rec[mid].number < n)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

/* A 301 to the recording's copy of segment n (record.c's file name). */
static int give_redirect(const pkg_pres *p, const pkg_track *t, int64_t n, weir_object *out)
{
    char url[sizeof p->rec_id + 64];
    int len = snprintf(url, sizeof url, "/vod/%s/%s_%" PRId64 ".m4s", p->rec_id, t->id, n);

    *out = (weir_object){
        .body = weir_buf_copy(url, (size_t)len), .content_type = "text/plain",
        .cache = WEIR_CACHE_IMMUTABLE, .mtime_ms = p->created_unix_ms,
        .etag = etag_of(p, ((uint64_t)n << 24) ^ 0xD7), .redirect = 1,
    };
    return out->body ? 0 : AVERROR(ENOMEM);
}

static int lookup_media(pkg_pres *p, pkg_track *t, int64_t n, int64_t part, weir_object *out)
{
    const char *type = t->is_video ? "video/iso.segment" : "audio/mp4";
    uint64_t tag = ((uint64_t)n << 24) ^ ((uint64_t)(part + 1) << 8) ^ (uint64_t)(t - p->tracks);
    pkg_segment *s = find_segment(t, n);
    int64_t edge;
    int parts;

    if (s && part < 0 && s->complete)
        return pkg_give(out, s->whole, type, WEIR_CACHE_IMMUTABLE, 0,
                    p->ast_unix_ms + ts_to_ms(t, s->start_ts + s->duration_ts), etag_of(p, tag));
    if (s && part >= 0 && part < s->nparts)
        return pkg_give(out, s->parts[part].buf, type, WEIR_CACHE_IMMUTABLE, 0,
                    p->ast_unix_ms + ts_to_ms(t, s->parts[part].start_ts + s->parts[part].duration_ts),
                    etag_of(p, tag));
    if (t->nsegs > 0 && n < t->segs[0]->number && n >= t->first_number) {
        /* DVR: older segments live on in the recording. */
        if (p->settings->dvr_window > 0 && part < 0 && p->rec_id[0] && recorded(t, n))
            return give_redirect(p, t, n, out);
        return AVERROR(ESTALE);
    }
    /* The next part (what EXT-X-PRELOAD-HINT names) is held until it exists;
     * so is the segment being cut (and the next), which low-latency DASH
     * asks for early (availabilityTimeOffset) and gets part by part.  Not
     * while the publisher is away: the next number, if it ever comes,
     * starts another epoch (another DASH Period, another init segment), and
     * a player asking for it as the continuation of this one would get
     * media it cannot place. */
    pres_live_edge(t, &edge, &parts);
    if (p->settings->low_latency && !p->paused &&
        ((part >= 0 && ((n == edge && part == parts) || (n == edge + 1 && part == 0))) ||
         (part < 0 && (n == edge || n == edge + 1))))
        return AVERROR(EAGAIN);
    return AVERROR(ENOENT);
}

int pres_lookup(pkg_pres *p, const char *file, const weir_object_query *q, weir_object *out)
{
    int64_t live_age = p->settings->segment_duration / 2, n, part;
    const char *us, *dot;
    char *end;
    pkg_track *t;
    int r;

    if (strcmp(file, "index.m3u8") == 0)
        return pkg_give(out, p->master, "application/vnd.apple.mpegurl", WEIR_CACHE_MASTER, 0,
                    p->updated_unix_ms, etag_of(p, p->version));
    if (strcmp(file, "index.mpd") == 0)
        return pkg_give(out, p->mpd, "application/dash+xml", WEIR_CACHE_LIVE, live_age,
                    p->updated_unix_ms, etag_of(p, p->version));
    dot = strrchr(file, '.');
    if (!dot)
        return AVERROR(ENOENT);
    if (strcmp(dot, ".m3u8") == 0) {
        if (!(t = find_track(p, file, (size_t)(dot - file))))
            return AVERROR(ENOENT);
        if (q && q->msn >= 0 && (r = playlist_reaches(p, t, q->msn, q->part)) <= 0)
            return r < 0 ? r : AVERROR(EAGAIN);
        if (p->settings->low_latency)
            live_age = p->settings->part_duration / 2;
        return pkg_give(out, q && q->skip && t->playlist_delta ? t->playlist_delta : t->playlist,
                    "application/vnd.apple.mpegurl", WEIR_CACHE_LIVE, live_age,
                    p->updated_unix_ms, etag_of(p, p->version * 2 + (q && q->skip)));
    }
    if (!(us = strchr(file, '_')) || !(t = find_track(p, file, (size_t)(us - file))))
        return AVERROR(ENOENT);
    if (us[1] == 'i') {
        const pkg_epoch *e;
        n = strtoll(us + 2, &end, 10);
        if (strcmp(end, ".mp4") != 0 || !(e = find_epoch(t, n)))
            return AVERROR(ENOENT);
        return pkg_give(out, e->init, t->is_video ? "video/mp4" : "audio/mp4", WEIR_CACHE_IMMUTABLE,
                    0, p->created_unix_ms,
                    etag_of(p, ((uint64_t)n << 8) ^ (uint64_t)(t - p->tracks) ^ 0x80));
    }
    if (parse_media_name(us + 1, &n, &part) < 0)
        return AVERROR(ENOENT);
    return lookup_media(p, t, n, part, out);
}
