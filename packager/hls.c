/*
 * packager/hls.c — HLS playlists (RFC 8216) for a presentation: the master
 * playlist and one media playlist per track, over the CMAF segments.
 *
 *   index.m3u8   EXT-X-STREAM-INF per video track (CODECS, BANDWIDTH measured
 *                peak, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE, AUDIO group)
 *                EXT-X-MEDIA per audio track
 *   v0.m3u8 ...  live sliding window: MEDIA-SEQUENCE, EXT-X-MAP,
 *                PROGRAM-DATE-TIME, EXTINF; EXT-X-ENDLIST once ended
 */
#include "packager/pres.h"

#include <inttypes.h>

#define AUDIO_GROUP "audio"

static weir_buf *finish(weir_bytes *b, int r)
{
    weir_buf *out = r < 0 ? NULL : weir_buf_copy(b->data, b->len);
    weir_bytes_free(b);
    return out;
}

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
    return finish(&b, r);
}

weir_buf *pres_render_media(const pkg_pres *p, const pkg_track *t)
{
    weir_bytes b = { 0 };
    char when[WEIR_ISO8601_LEN];
    int first, n, r;

    pres_listed(p, t, &first, &n);
    r = pkg_printf(&b,
                   "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRId64 "\n"
                   "#EXT-X-MEDIA-SEQUENCE:%" PRId64 "\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n"
                   "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"%s_init.mp4\"\n",
                   p->target_s, n > 0 ? t->segs[first]->number : (int64_t)1, t->id);
    for (int i = first; i < first + n && r >= 0; i++) {
        const pkg_segment *s = t->segs[i];
        weir_clock_iso8601(p->ast_unix_ms + av_rescale(s->start_ts, 1000, t->timescale), when);
        r = pkg_printf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:%.3f,\n%s_%" PRId64 ".m4s\n",
                       when, (double)s->duration_ts / t->timescale, t->id, s->number);
    }
    if (r >= 0 && p->ended)
        r = pkg_printf(&b, "#EXT-X-ENDLIST\n");
    return finish(&b, r);
}
