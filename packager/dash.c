/*
 * packager/dash.c — the DASH MPD for a presentation, over the same CMAF
 * files as HLS.
 *
 * Live: type="dynamic", one Period, one AdaptationSet per media type, a
 * SegmentTemplate with a SegmentTimeline per Representation (the exact
 * tfdt/duration of each listed segment, in the track's timescale).
 * availabilityStartTime is the wall clock of media time 0, so a segment is
 * available at AST + its end time, which is when the packager completes it.
 * Ended: type="static" over the segments still listed.
 *
 * A publisher that came back (a new epoch, pres.h) opens a new Period, with
 * its own init segment and codecs; tfdt runs on, so each Period's
 * presentationTimeOffset is its start on the media clock and the MPD
 * timeline stays the media clock (availability stays true).
 *
 * Where that Period starts matters to players.  The outage leaves a stretch
 * of the media clock with no media: from where the old publish's media ends
 * (E) to the new publish's first keyframe (S, the wall clock of its return).
 * The new Period starts at E, not at S, so the hole is at the start of the
 * new Period and never at the end of the old one:
 *
 *    Period A: [.. A's media ..]E                 (start of B = end of A)
 *    Period B:                  E.....hole.....S[.. B's media ..]
 *
 * dash.js (5.2) crosses a hole at the start of a Period: a playhead or a seek
 * (its live catch-up seeks to the live point, which runs on into the hole
 * during the outage) that lands there is moved to the first segment ahead
 * (its "seek fix").  A hole at the end of a Period is a dead end: nothing
 * there looks ahead into the next Period, and a seek into it never
 * completes.  With B at S, a catch-up seek made while the publisher was away
 * stalled the player for good at readyState 1 (issue 7).  E is stored in the
 * epoch when the publisher comes back (pkg_epoch.period_ms), so the Period's
 * start never moves while the old Period leaves the window.  The DASH-IF
 * timing model asks for no gaps at all; an outage makes one, and this is the
 * form players recover from.
 */
#include "packager/pres.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A segment as the MPD lists it. */
typedef struct span {
    int64_t number, start_ts, duration_ts;
    const pkg_epoch *epoch;
} span;

/* The segments an MPD lists for t in the period of epoch `e` (NULL: any):
 * the live window, or every recorded one (a recording has one epoch).
 * *out is malloc'd (caller frees); NULL with *n 0 when there are none. */
static span *spans_of(const pkg_pres *p, const pkg_track *t, int vod, const pkg_epoch *e,
                      int *n)
{
    span *out;
    int listed, k = 0;

    if (vod) {
        if (!t->nrec || !(out = malloc((size_t)t->nrec * sizeof *out)))
            return *n = 0, NULL;
        for (int i = 0; i < t->nrec; i++)
            out[i] = (span){ t->rec[i].number, t->rec[i].start_ts, t->rec[i].duration_ts,
                             t->epoch };
        *n = t->nrec;
        return out;
    }
    pkg_listed *l;
    if (pres_listing(p, t, &l, &listed) < 0 || !listed ||
        !(out = malloc((size_t)listed * sizeof *out))) {
        free(l);
        return *n = 0, NULL;
    }
    for (int i = 0; i < listed; i++)
        if (!e || l[i].epoch->number == e->number)
            out[k++] = (span){ l[i].number, l[i].start_ts, l[i].duration_ts, l[i].epoch };
    free(l);
    *n = k;
    return out;
}

/* SegmentTemplate + SegmentTimeline of one Representation in one Period.
 * pto: presentationTimeOffset in the track's timescale (-1: none). */
static int timeline(weir_bytes *b, const pkg_pres *p, const pkg_track *t, const pkg_epoch *e,
                    const span *sp, int n, int64_t pto, int is_static)
{
    int r;

    r = pkg_printf(b,
                   "        <SegmentTemplate timescale=\"%" PRIu32 "\" "
                   "initialization=\"$RepresentationID$_i%" PRId64 ".mp4\" "
                   "media=\"$RepresentationID$_$Number$.m4s\" startNumber=\"%" PRId64 "\"",
                   t->timescale, e->number, n > 0 ? sp[0].number : e->number);
    if (r >= 0 && pto > 0)
        r = pkg_printf(b, " presentationTimeOffset=\"%" PRId64 "\"", pto);
    /* Low-latency DASH: a segment may be asked for once its first CMAF
     * chunk (part) exists; the origin streams the rest as it is cut. */
    if (r >= 0 && !is_static && p->settings->low_latency)
        r = pkg_printf(b, " availabilityTimeOffset=\"%.3f\" availabilityTimeComplete=\"false\"",
                       (double)(p->settings->segment_duration - p->settings->part_duration) /
                           1000.0);
    if (r >= 0)
        r = pkg_printf(b, ">\n          <SegmentTimeline>\n");
    for (int i = 0; i < n && r >= 0; i++) {
        const span *s = &sp[i];
        int repeat = 0;
        /* Runs of equal durations collapse into one S with @r. */
        while (i + 1 < n && sp[i + 1].duration_ts == s->duration_ts &&
               sp[i + 1].start_ts == s->start_ts + (repeat + 1) * s->duration_ts) {
            repeat++;
            i++;
        }
        r = pkg_printf(b, "            <S t=\"%" PRId64 "\" d=\"%" PRId64 "\"", s->start_ts,
                       s->duration_ts);
        if (r >= 0 && repeat)
            r = pkg_printf(b, " r=\"%d\"", repeat);
        if (r >= 0)
            r = pkg_printf(b, "/>\n");
    }
    if (r >= 0)
        r = pkg_printf(b, "          </SegmentTimeline>\n        </SegmentTemplate>\n");
    return r;
}

/* One Period: the epoch `pe` of the key track, starting at start_ms on the
 * media clock (pe->period_ms).  first: the MPD's first Period. */
typedef struct period {
    const pkg_epoch *pe;
    int64_t start_ms;
    int first, vod, is_static;
} period;

static int adaptation_set(weir_bytes *b, const pkg_pres *p, const period *pd, int video, int id)
{
    int r = 0, opened = 0;

    for (int i = 0; i < p->ntracks && r >= 0; i++) {
        const pkg_track *t = &p->tracks[i];
        if (t->is_video != video)
            continue;
        int n;
        span *sp = spans_of(p, t, pd->vod, pd->vod ? NULL : pd->pe, &n);
        /* The track's own epoch of this Period (same number as the key
         * track's: every track of a publish starts at the same number). */
        const pkg_epoch *e = n > 0 ? sp[0].epoch : pd->pe->number == t->epoch->number
                             ? t->epoch : NULL;
        int64_t pto;
        if (!e) {
            free(sp);
            continue;
        }
        /* A static MPD's first Period starts at its first segment; every
         * other Period where it starts on the media clock. */
        pto = pd->first && pd->is_static ? (n > 0 ? sp[0].start_ts : 0)
                                        : av_rescale(pd->start_ms, t->timescale, 1000);
        if (!opened) {
            r = pkg_printf(b, "    <AdaptationSet id=\"%d\" contentType=\"%s\" mimeType=\"%s\" "
                           "segmentAlignment=\"true\" startWithSAP=\"1\">\n", id,
                           video ? "video" : "audio", video ? "video/mp4" : "audio/mp4");
            opened = 1;
        }
        if (r >= 0)
            r = pkg_printf(b, "      <Representation id=\"%s\" codecs=\"%s\" bandwidth=\"%" PRId64
                           "\"", t->id, e->codecs, t->peak_bps > 0 ? t->peak_bps : 1);
        if (r >= 0 && video)
            r = pkg_printf(b, " width=\"%d\" height=\"%d\"", e->width, e->height);
        if (r >= 0 && video && pres_track_fps(t) > 0)
            r = pkg_printf(b, " frameRate=\"%.0f\"", pres_track_fps(t));
        if (r >= 0 && !video)
            r = pkg_printf(b, " audioSamplingRate=\"%d\">\n        <AudioChannelConfiguration "
                           "schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" "
                           "value=\"%d\"/>\n", e->sample_rate, e->channels);
        else if (r >= 0)
            r = pkg_printf(b, ">\n");
        if (r >= 0)
            r = timeline(b, p, t, e, sp, n, pto, pd->is_static);
        free(sp);
        if (r >= 0)
            r = pkg_printf(b, "      </Representation>\n");
    }
    if (r >= 0 && opened)
        r = pkg_printf(b, "    </AdaptationSet>\n");
    return r;
}

/* "PT12.345S" */
static void duration(int64_t ms, char buf[32])
{
    snprintf(buf, 32, "PT%" PRId64 ".%03dS", ms / 1000, (int)(ms % 1000));
}


/* The epochs of the key track's listed segments, oldest first (at most
 * cap); the current one when nothing is listed. */
static int periods_of(const pkg_pres *p, int vod, const pkg_epoch **out, int cap)
{
    const pkg_track *key = &p->tracks[p->key];
    int n, k = 0;

    if (!vod) {
        span *sp = spans_of(p, key, 0, NULL, &n);
        for (int i = 0; i < n; i++)
            if ((k == 0 || out[k - 1] != sp[i].epoch) && k < cap)
                out[k++] = sp[i].epoch;
        free(sp);
    }
    if (k == 0)
        out[k++] = key->epoch;
    return k;
}

/* Media time (ms) of the start and the end of what the key track lists. */
static void listed_range(const pkg_pres *p, int vod, int64_t *start_ms, int64_t *end_ms)
{
    const pkg_track *key = &p->tracks[p->key];
    int n;
    span *sp = spans_of(p, key, vod, NULL, &n);

    *start_ms = n ? av_rescale(sp[0].start_ts, 1000, key->timescale) : 0;
    *end_ms = n ? av_rescale(sp[n - 1].start_ts + sp[n - 1].duration_ts, 1000, key->timescale)
                : 0;
    free(sp);
}

#define MPD_PERIODS_MAX 16

static weir_buf *render_mpd(const pkg_pres *p, int64_t now_unix_ms, int vod)
{
    const weir_packager_settings *cfg = p->settings;
    const pkg_epoch *epochs[MPD_PERIODS_MAX];
    weir_bytes b = { 0 };
    char ast[WEIR_ISO8601_LEN], pub[WEIR_ISO8601_LEN], seg[32], depth[32], delay[32], total[32];
    int is_static = p->ended || vod, nperiods, r;
    int64_t origin_ms, end_ms;

    weir_clock_iso8601(p->ast_unix_ms, ast);
    weir_clock_iso8601(now_unix_ms, pub);
    duration(cfg->segment_duration, seg);
    duration(cfg->dvr_window > 0 ? cfg->dvr_window : cfg->segment_duration * cfg->window, depth);
    duration(cfg->segment_duration * 3, delay);
    nperiods = periods_of(p, vod, epochs, MPD_PERIODS_MAX);
    listed_range(p, vod, &origin_ms, &end_ms);
    r = pkg_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                   "profiles=\"urn:mpeg:dash:profile:isoff-live:2011,"
                   "urn:mpeg:dash:profile:cmaf:2019\" minBufferTime=\"%s\"", seg);
    if (r >= 0 && !is_static) {
        r = pkg_printf(&b, " type=\"dynamic\" availabilityStartTime=\"%s\" publishTime=\"%s\" "
                       "minimumUpdatePeriod=\"%s\" timeShiftBufferDepth=\"%s\" "
                       "suggestedPresentationDelay=\"%s\">\n", ast, pub, seg, depth, delay);
    } else if (r >= 0) {
        duration(end_ms - origin_ms, total);
        r = pkg_printf(&b, " type=\"static\" mediaPresentationDuration=\"%s\">\n", total);
    }
    if (r >= 0 && !is_static && cfg->low_latency)
        r = pkg_printf(&b, "  <ServiceDescription id=\"0\">\n"
                       "    <Latency target=\"%lld\" min=\"%lld\" max=\"%lld\"/>\n"
                       "    <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n"
                       "  </ServiceDescription>\n",
                       (long long)(3 * cfg->part_duration), (long long)(2 * cfg->part_duration),
                       (long long)(cfg->segment_duration + 3 * cfg->part_duration));
    for (int k = 0; k < nperiods && r >= 0; k++) {
        /* Live: Periods sit on the media clock (AST + start); static: the
         * first starts at 0, the others where the media before them ended
         * (pkg_epoch.period_ms), counted from the first listed segment. */
        period pd = { .pe = epochs[k], .start_ms = epochs[k]->period_ms, .first = k == 0,
                      .vod = vod, .is_static = is_static };
        int64_t start = is_static ? (k == 0 ? 0 : pd.start_ms - origin_ms) : pd.start_ms;
        char at[32];
        duration(start > 0 ? start : 0, at);
        r = pkg_printf(&b, "  <Period id=\"%" PRId64 "\" start=\"%s\">\n", epochs[k]->number, at);
        if (r >= 0)
            r = adaptation_set(&b, p, &pd, 1, 0);
        if (r >= 0)
            r = adaptation_set(&b, p, &pd, 0, 1);
        if (r >= 0)
            r = pkg_printf(&b, "  </Period>\n");
    }
    if (r >= 0 && !is_static)
        r = pkg_printf(&b, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" "
                       "value=\"/time\"/>\n");
    if (r >= 0)
        r = pkg_printf(&b, "</MPD>\n");
    return pkg_finish(&b, r);
}

weir_buf *pres_render_mpd(const pkg_pres *p, int64_t now_unix_ms)
{
    return render_mpd(p, now_unix_ms, 0);
}

weir_buf *pres_render_vod_mpd(const pkg_pres *p)
{
    return render_mpd(p, p->updated_unix_ms, 1);
}
