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
 */
#include "packager/pres.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static weir_buf *finish(weir_bytes *b, int r)
{
    weir_buf *out = r < 0 ? NULL : weir_buf_copy(b->data, b->len);
    weir_bytes_free(b);
    return out;
}

/* The segments an MPD lists for t: the live window, or every recorded one.
 * *out is malloc'd (caller frees); NULL with *n 0 when there are none. */
static pkg_span *spans_of(const pkg_pres *p, const pkg_track *t, int vod, int *n)
{
    pkg_span *out;
    int first;

    if (vod) {
        *n = t->nrec;
        if (!*n || !(out = malloc((size_t)*n * sizeof *out)))
            return *n = 0, NULL;
        memcpy(out, t->rec, (size_t)*n * sizeof *out);
        return out;
    }
    pres_listed(p, t, &first, n);
    if (!*n || !(out = malloc((size_t)*n * sizeof *out)))
        return *n = 0, NULL;
    for (int i = 0; i < *n; i++) {
        const pkg_segment *s = t->segs[first + i];
        out[i] = (pkg_span){ s->number, s->start_ts, s->duration_ts };
    }
    return out;
}

/* SegmentTemplate + SegmentTimeline.  A static MPD starts its period at
 * the first listed segment (presentationTimeOffset). */
static int timeline(weir_bytes *b, const pkg_pres *p, const pkg_track *t, const pkg_span *sp,
                    int n, int is_static)
{
    int r;

    r = pkg_printf(b,
                   "        <SegmentTemplate timescale=\"%" PRIu32 "\" "
                   "initialization=\"$RepresentationID$_i%" PRId64 ".mp4\" "
                   "media=\"$RepresentationID$_$Number$.m4s\" startNumber=\"%" PRId64 "\"",
                   t->timescale, t->first_number, n > 0 ? sp[0].number : t->first_number);
    if (r >= 0 && is_static && n > 0)
        r = pkg_printf(b, " presentationTimeOffset=\"%" PRId64 "\"", sp[0].start_ts);
    /* Low-latency DASH: a segment may be asked for once its first CMAF
     * chunk (part) exists; the origin streams the rest as it is cut. */
    if (r >= 0 && !is_static && p->settings->low_latency)
        r = pkg_printf(b, " availabilityTimeOffset=\"%.3f\" availabilityTimeComplete=\"false\"",
                       (double)(p->settings->segment_duration - p->settings->part_duration) /
                           1000.0);
    if (r >= 0)
        r = pkg_printf(b, ">\n          <SegmentTimeline>\n");
    for (int i = 0; i < n && r >= 0; i++) {
        const pkg_span *s = &sp[i];
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

static int adaptation_set(weir_bytes *b, const pkg_pres *p, int video, int id, int vod)
{
    int r = 0, opened = 0;

    for (int i = 0; i < p->ntracks && r >= 0; i++) {
        const pkg_track *t = &p->tracks[i];
        if (t->is_video != video)
            continue;
        if (!opened) {
            r = pkg_printf(b, "    <AdaptationSet id=\"%d\" contentType=\"%s\" mimeType=\"%s\" "
                           "segmentAlignment=\"true\" startWithSAP=\"1\">\n", id,
                           video ? "video" : "audio", video ? "video/mp4" : "audio/mp4");
            opened = 1;
        }
        if (r < 0)
            break;
        r = pkg_printf(b, "      <Representation id=\"%s\" codecs=\"%s\" bandwidth=\"%" PRId64 "\"",
                       t->id, t->codecs, t->peak_bps > 0 ? t->peak_bps : 1);
        if (r >= 0 && video)
            r = pkg_printf(b, " width=\"%d\" height=\"%d\"", t->par->width, t->par->height);
        if (r >= 0 && video && pres_track_fps(t) > 0)
            r = pkg_printf(b, " frameRate=\"%.0f\"", pres_track_fps(t));
        if (r >= 0 && !video)
            r = pkg_printf(b, " audioSamplingRate=\"%d\">\n        <AudioChannelConfiguration "
                           "schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" "
                           "value=\"%d\"/>\n", t->par->sample_rate, t->par->ch_layout.nb_channels);
        else if (r >= 0)
            r = pkg_printf(b, ">\n");
        if (r >= 0) {
            int n;
            pkg_span *sp = spans_of(p, t, vod, &n);
            r = timeline(b, p, t, sp, n, vod || p->ended);
            free(sp);
        }
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

/* Milliseconds the key track's listed (or recorded) segments cover. */
static int64_t listed_ms(const pkg_pres *p, int vod)
{
    const pkg_track *key = &p->tracks[p->key];
    int64_t ms = 0;
    int n;
    pkg_span *sp = spans_of(p, key, vod, &n);

    for (int i = 0; i < n; i++)
        ms += av_rescale(sp[i].duration_ts, 1000, key->timescale);
    free(sp);
    return ms;
}

static weir_buf *render_mpd(const pkg_pres *p, int64_t now_unix_ms, int vod)
{
    const weir_packager_settings *cfg = p->settings;
    weir_bytes b = { 0 };
    char ast[WEIR_ISO8601_LEN], pub[WEIR_ISO8601_LEN], seg[32], depth[32], delay[32], total[32];
    int r;

    weir_clock_iso8601(p->ast_unix_ms, ast);
    weir_clock_iso8601(now_unix_ms, pub);
    duration(cfg->segment_duration, seg);
    duration(cfg->segment_duration * cfg->window, depth);
    duration(cfg->segment_duration * 3, delay);
    r = pkg_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                   "profiles=\"urn:mpeg:dash:profile:isoff-live:2011,"
                   "urn:mpeg:dash:profile:cmaf:2019\" minBufferTime=\"%s\"", seg);
    if (r >= 0 && !p->ended && !vod) {
        r = pkg_printf(&b, " type=\"dynamic\" availabilityStartTime=\"%s\" publishTime=\"%s\" "
                       "minimumUpdatePeriod=\"%s\" timeShiftBufferDepth=\"%s\" "
                       "suggestedPresentationDelay=\"%s\">\n", ast, pub, seg, depth, delay);
    } else if (r >= 0) {
        duration(listed_ms(p, vod), total);
        r = pkg_printf(&b, " type=\"static\" mediaPresentationDuration=\"%s\">\n", total);
    }
    if (r >= 0 && !p->ended && !vod && cfg->low_latency)
        r = pkg_printf(&b, "  <ServiceDescription id=\"0\">\n"
                       "    <Latency target=\"%lld\" min=\"%lld\" max=\"%lld\"/>\n"
                       "    <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n"
                       "  </ServiceDescription>\n",
                       (long long)(3 * cfg->part_duration), (long long)(2 * cfg->part_duration),
                       (long long)(cfg->segment_duration + 3 * cfg->part_duration));
    if (r >= 0)
        r = pkg_printf(&b, "  <Period id=\"0\" start=\"PT0S\">\n");
    if (r >= 0)
        r = adaptation_set(&b, p, 1, 0, vod);
    if (r >= 0)
        r = adaptation_set(&b, p, 0, 1, vod);
    if (r >= 0)
        r = pkg_printf(&b, "  </Period>\n");
    if (r >= 0 && !p->ended && !vod)
        r = pkg_printf(&b, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" "
                       "value=\"/time\"/>\n");
    if (r >= 0)
        r = pkg_printf(&b, "</MPD>\n");
    return finish(&b, r);
}

weir_buf *pres_render_mpd(const pkg_pres *p, int64_t now_unix_ms)
{
    return render_mpd(p, now_unix_ms, 0);
}

weir_buf *pres_render_vod_mpd(const pkg_pres *p)
{
    return render_mpd(p, p->updated_unix_ms, 1);
}
