/*
 * packager/hls.c — HLS playlists (RFC 8216) for a presentation: the master
 * playlist and one media playlist per track, over the CMAF segments.
 *
 *   index.m3u8   EXT-X-STREAM-INF per video track (CODECS, BANDWIDTH measured
 *                peak, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE, AUDIO group)
 *                EXT-X-MEDIA per audio track
 *   v0.m3u8 ...  live sliding window: MEDIA-SEQUENCE, EXT-X-MAP,
 *                PROGRAM-DATE-TIME, EXTINF; EXT-X-ENDLIST once ended;
 *                where a publisher came back (a new epoch, see pres.h),
 *                EXT-X-DISCONTINUITY and the new epoch's EXT-X-MAP
 */
#include "packager/pres.h"

#include <inttypes.h>

#define AUDIO_GROUP "audio"

static const pkg_track *first_audio(const pkg_pres *p)
{
    for (int i = 0; i < p->ntracks; i++)
        if (!p->tracks[i].is_video)
            return &p->tracks[i];
    return NULL;
}

weir_buf *pres_render_master(const pkg_pres *p)
{
    const pkg_track *audio = first_audio(p);
    weir_bytes b = { 0 };
    int has_video = 0, r;

    r = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (int i = 0; i < p->ntracks && r >= 0; i++) {
        const pkg_track *t = &p->tracks[i];
        if (t->is_video) {
            has_video = 1;
            continue;
        }
        r = pkg_printf(&b,
                       "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"" AUDIO_GROUP "\",NAME=\"%s\","
                       "DEFAULT=%s,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s.m3u8\"\n",
                       t->id, t == audio ? "YES" : "NO", t->par->ch_layout.nb_channels, t->id);
    }
    for (int i = 0; i < p->ntracks && r >= 0; i++) {
        const pkg_track *t = &p->tracks[i];
        int64_t peak = t->peak_bps, avg = pres_track_avg_bps(t);
        if (has_video && !t->is_video)
            continue;
        if (has_video && audio) {
            peak += audio->peak_bps;
            avg += pres_track_avg_bps(audio);
        }
        r = pkg_printf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%" PRId64 ",AVERAGE-BANDWIDTH=%" PRId64
                       ",CODECS=\"%s%s%s\"", peak, avg, t->codecs,
                       has_video && audio ? "," : "", has_video && audio ? audio->codecs : "");
        if (r >= 0 && t->is_video && t->par->width > 0)
            r = pkg_printf(&b, ",RESOLUTION=%dx%d", t->par->width, t->par->height);
        if (r >= 0 && t->is_video && pres_track_fps(t) > 0)
            r = pkg_printf(&b, ",FRAME-RATE=%.3f", pres_track_fps(t));
        if (r >= 0 && has_video && audio)
            r = pkg_printf(&b, ",AUDIO=\"" AUDIO_GROUP "\"");
        if (r >= 0)
            r = pkg_printf(&b, "\n%s.m3u8\n", t->id);
    }
    return pkg_finish(&b, r);
}

/* Segments (from the live edge) whose parts are still listed: "a few"
 * (RFC 8216bis 6.2.2 wants them for at least three target durations). */
#define PARTS_LISTED_SEGMENTS 3

static int render_parts(weir_bytes *b, const pkg_track *t, const pkg_segment *s)
{
    int r = 0;
    for (int k = 0; k < s->nparts && r >= 0; k++)
        r = pkg_printf(b, "#EXT-X-PART:DURATION=%.5f,URI=\"%s_%" PRId64 ".%d.m4s\"%s\n",
                       (double)s->parts[k].duration_ts / t->timescale, t->id, s->number, k,
                       s->parts[k].independent ? ",INDEPENDENT=YES" : "");
    return r;
}

/* The other renditions' live edges, so a player switching need not reload
 * blindly (EXT-X-RENDITION-REPORT). */
static int rendition_reports(weir_bytes *b, const pkg_pres *p, const pkg_track *self)
{
    int r = 0;
    for (int i = 0; i < p->ntracks && r >= 0; i++) {
        const pkg_track *t = &p->tracks[i];
        const pkg_segment *last = t->nsegs ? t->segs[t->nsegs - 1] : NULL;
        if (t == self || !last)
            continue;
        /* The last part that exists: in the segment being built, or the
         * final part of the last complete one. */
        if (!last->complete && last->nparts == 0) {
            if (t->nsegs < 2)
                continue;
            last = t->segs[t->nsegs - 2];
        }
        r = pkg_printf(b, "#EXT-X-RENDITION-REPORT:URI=\"%s.m3u8\",LAST-MSN=%" PRId64
                       ",LAST-PART=%d\n", t->id, last->number, last->nparts - 1);
    }
    return r;
}

/* Before a segment of another epoch than the one before it: the
 * discontinuity and its init segment. */
static int epoch_change(weir_bytes *b, const pkg_track *t, const pkg_epoch **cur,
                        const pkg_epoch *e)
{
    char init[PRES_INIT_NAME_MAX];

    if (e == *cur)
        return 0;
    *cur = e;
    pres_epoch_init_name(t, e, init);
    return pkg_printf(b, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"%s\"\n", init);
}

/* EXTINF of a number a track has no segment for: the key track's segment
 * of that number, else a whole target duration. */
static double gap_seconds(const pkg_pres *p, int64_t number)
{
    const pkg_track *k = &p->tracks[p->key];
    for (int i = 0; i < k->nsegs; i++)
        if (k->segs[i]->number == number && k->segs[i]->complete)
            return (double)k->segs[i]->duration_ts / k->timescale;
    return (double)p->target_s;
}

/* Numbers from..to-1 that track t has no segment for — it sent nothing
 * then (audio that stopped before the video's last cut, a silent track):
 * EXT-X-GAP entries, so media sequence numbers run on without a hole
 * (players count them by position).  Their URLs answer 404. */
static int render_gaps(weir_bytes *b, const pkg_pres *p, const pkg_track *t, int64_t from,
                       int64_t to)
{
    int r = 0;
    for (int64_t m = from; m < to && r >= 0; m++)
        r = pkg_printf(b, "#EXTINF:%.5f,\n#EXT-X-GAP\n%s_%" PRId64 ".m4s\n",
                       gap_seconds(p, m), t->id, m);
    return r;
}

weir_buf *pres_render_media(const pkg_pres *p, const pkg_track *t, int skip)
{
    const weir_packager_settings *cfg = p->settings;
    const pkg_segment *open = t->nsegs && !t->segs[t->nsegs - 1]->complete
                              ? t->segs[t->nsegs - 1] : NULL;
    const pkg_epoch *epoch;
    int ll = cfg->low_latency && !p->ended;
    double part_target = (p->part_target_ms ? p->part_target_ms : cfg->part_duration) / 1000.0;
    double skip_until = 6.0 * (double)p->target_s;
    weir_bytes b = { 0 };
    char when[WEIR_ISO8601_LEN];
    char init[PRES_INIT_NAME_MAX];
    int64_t next_msn;
    pkg_listed *l;
    int n, skipped = 0, next_part, r;

    if (pres_listing(p, t, &l, &n) < 0)
        return NULL;
    pres_live_edge(t, &next_msn, &next_part);
    /* The playlist starts in the epoch of its first segment. */
    epoch = n > 0 ? l[0].epoch : open ? open->epoch : t->epoch;
    pres_epoch_init_name(t, epoch, init);
    if (skip && ll) {
        /* Delta update: leave out segments more than CAN-SKIP-UNTIL before
         * the end of the playlist, but none past a discontinuity (the
         * skipped ones and the first one shown share the header's MAP and
         * discontinuity sequence) or a gap. */
        int64_t from_end = 0;
        for (int i = n - 1; i >= 0; i--) {
            from_end += l[i].duration_ts;
            if ((double)from_end / t->timescale > skip_until) {
                skipped = i + 1;
                break;
            }
        }
        for (int i = 1; i <= skipped && i < n; i++)
            if (l[i].epoch != epoch || l[i].number != l[i - 1].number + 1) {
                skipped = i - 1;
                break;
            }
    }
    r = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%" PRId64 "\n",
                   ll ? 9 : 7, p->target_s);
    if (r >= 0 && ll)
        r = pkg_printf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=%.1f,"
                       "PART-HOLD-BACK=%.3f\n#EXT-X-PART-INF:PART-TARGET=%.3f\n",
                       skip_until, 3 * part_target, part_target);
    if (r >= 0)
        r = pkg_printf(&b, "#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n#EXT-X-DISCONTINUITY-SEQUENCE:%d\n"
                       "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"%s\"\n",
                       n > 0 ? l[0].number : next_msn, epoch->seq, init);
    if (r >= 0 && skipped)
        r = pkg_printf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skipped);
    for (int i = skipped; i < n && r >= 0; i++) {
        const pkg_listed *s = &l[i];
        if (i > skipped)
            r = render_gaps(&b, p, t, l[i - 1].number + 1, s->number);
        if (r >= 0)
            r = epoch_change(&b, t, &epoch, s->epoch);
        weir_clock_iso8601(p->ast_unix_ms + av_rescale(s->start_ts, 1000, t->timescale), when);
        if (r >= 0)
            r = pkg_printf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", when);
        if (r >= 0 && ll && s->seg && i >= n - (PARTS_LISTED_SEGMENTS - 1))
            r = render_parts(&b, t, s->seg);
        if (r >= 0)
            r = pkg_printf(&b, "#EXTINF:%.5f,\n%s_%" PRId64 ".m4s\n",
                           (double)s->duration_ts / t->timescale, t->id, s->number);
    }
    if (r >= 0 && ll) {
        if (open && open->nparts > 0) {
            if (n > 0)
                r = render_gaps(&b, p, t, l[n - 1].number + 1, open->number);
            if (r >= 0)
                r = epoch_change(&b, t, &epoch, open->epoch);
            weir_clock_iso8601(p->ast_unix_ms + av_rescale(open->start_ts, 1000, t->timescale),
                               when);
            if (r >= 0)
                r = pkg_printf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", when);
            if (r >= 0)
                r = render_parts(&b, t, open);
        }
        /* No hint across a discontinuity: its part needs the new MAP,
         * which the playlist lists with the part once it exists.  Nor
         * while the publisher is away: the next part, if it comes, is the
         * next epoch's. */
        if (r >= 0 && epoch == t->epoch && !p->paused)
            r = pkg_printf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s_%" PRId64 ".%d.m4s\"\n",
                           t->id, next_msn, next_part);
        if (r >= 0)
            r = rendition_reports(&b, p, t);
    }
    if (r >= 0 && p->ended)
        r = pkg_printf(&b, "#EXT-X-ENDLIST\n");
    free(l);
    return pkg_finish(&b, r);
}

weir_buf *pres_render_vod_media(const pkg_pres *p, const pkg_track *t)
{
    char init[PRES_INIT_NAME_MAX];
    weir_bytes b = { 0 };
    int r;

    pres_init_name(p, t, init);
    r = pkg_printf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRId64 "\n"
                   "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n"
                   "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"%s\"\n",
                   p->target_s, t->nrec ? t->rec[0].number : p->first_number, init);
    for (int i = 0; i < t->nrec && r >= 0; i++)
        r = pkg_printf(&b, "#EXTINF:%.5f,\n%s_%" PRId64 ".m4s\n",
                       (double)t->rec[i].duration_ts / t->timescale, t->id, t->rec[i].number);
    if (r >= 0)
        r = pkg_printf(&b, "#EXT-X-ENDLIST\n");
    return pkg_finish(&b, r);
}
