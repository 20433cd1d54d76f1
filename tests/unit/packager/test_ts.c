/*
 * Unit tests: packager/ts — the MPEG-TS writer and the TS variant of a
 * presentation (packager.hls_ts).
 *
 * Real media: the ffmpeg CLI makes a short MP4 (H.264 with B-frames + AAC),
 * libavformat reads its packets, the presentation cuts CMAF and TS, and the
 * TS bytes are parsed here packet by packet (PSI, CRC, continuity counters,
 * PCR, PES timestamps, NAL types), then read back by libavformat.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "packager/ts.h"
#include "clip.h"

#define T0 1764400000000LL

/* ---- helpers ----------------------------------------------------------- */

static const weir_packager_settings settings_ts = {
    .segment_duration = 2000, .part_duration = 500, .window = 100, .linger = 0, .hls_ts = 1,
};

static pkg_pres *package(clip *c, const weir_packager_settings *cfg, int counts[8])
{
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    int n = (int)c->fmt->nb_streams;
    pkg_pres *p = NULL;
    AVPacket *pkt = av_packet_alloc();

    for (int i = 0; i < n; i++) {
        pars[i] = c->fmt->streams[i]->codecpar;
        tbs[i] = c->fmt->streams[i]->time_base;
        counts[i] = 0;
    }
    cr_assert_eq(pres_new("cam1", cfg, pars, tbs, n, T0, 1, &p), 0);
    while (av_read_frame(c->fmt, pkt) == 0) {
        counts[pkt->stream_index]++;
        int64_t now = T0 + av_rescale_q(pkt->dts, c->fmt->streams[pkt->stream_index]->time_base,
                                        (AVRational){ 1, 1000 });
        cr_assert_eq(pres_packet(p, pkt, now), 0);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return p;
}

static weir_buf *ts_get(pkg_pres *p, const char *file, int *err)
{
    weir_object o = { 0 };
    *err = ts_lookup(p, file, &o);
    if (*err == 0)
        cr_assert_str_eq(o.content_type, strstr(file, ".ts") ? "video/mp2t"
                                                             : "application/vnd.apple.mpegurl");
    return *err == 0 ? o.body : NULL;
}

static char *text_of(weir_buf *b)
{
    char *s = strndup((const char *)b->data, b->size);
    weir_buf_unref(b);
    return s;
}

/* CRC-32/MPEG-2, independent of the writer's (same parameters). */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        for (int bit = 7; bit >= 0; bit--) {
            int top = (int)(crc >> 31) ^ ((p[i] >> bit) & 1);
            crc = (crc << 1) ^ (top ? 0x04C11DB7u : 0);
        }
    return crc;
}

static int64_t read_ts(const uint8_t *b)
{
    return (int64_t)(b[0] >> 1 & 7) << 30 | (int64_t)b[1] << 22 | (int64_t)(b[2] >> 1) << 15 |
           (int64_t)b[3] << 7 | b[4] >> 1;
}

/* What the parser found in a run of TS bytes. */
typedef struct ts_facts {
    int cc[0x2000];                 /* last CC per PID, -1 none yet */
    int cc_errors;
    int pat, pmt, pmt_streams, pmt_pcr_pid;
    int pcrs, pcr_backwards;
    int64_t last_pcr;
    int video_pes, audio_pes, pes_without_pts;
    int64_t first_video_pts, first_video_dts;   /* of the run */
    int first_video_idr, first_video_rai, first_video_sps, first_video_pcr;
    int64_t pcr_after_dts;          /* PCRs greater than their PES's DTS */
    int first_pids[2];
    int adts_bad;
} ts_facts;

static void facts_init(ts_facts *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 0x2000; i++)
        f->cc[i] = -1;
    f->last_pcr = -1;
    f->first_video_pts = -1;
    f->first_pids[0] = f->first_pids[1] = -1;
}

/* The NAL types at the start of an access unit's Annex B bytes. */
static void first_au_facts(ts_facts *f, const uint8_t *es, size_t n, int nth_in_run)
{
    cr_assert(n > 5 && memcmp(es, "\0\0\0\1\x09", 5) == 0, "segment %d: AUD first", nth_in_run);
    f->first_video_idr = f->first_video_sps = 0;
    for (size_t i = 0; i + 3 < n; i++)
        if (es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1) {
            int type = es[i + 3] & 0x1F;
            f->first_video_sps |= type == 7;
            f->first_video_idr |= type == 5;
        }
}

/* Parses one segment; facts carry over from earlier segments (CC, PCR). */
static void parse_segment(ts_facts *f, const uint8_t *d, size_t n, int nth_in_run)
{
    static uint8_t first_es[4 << 20];
    size_t first_len = 0;
    int collecting = 0;         /* 1 while the segment's first video PES goes on */

    cr_assert_eq(n % 188, 0, "segment of %zu bytes", n);
    f->first_video_pts = -1;
    for (size_t off = 0; off < n; off += 188) {
        const uint8_t *pk = d + off;
        cr_assert_eq(pk[0], 0x47, "sync byte at %zu", off);
        int pid = (pk[1] & 0x1F) << 8 | pk[2], pusi = pk[1] & 0x40, afc = pk[3] >> 4 & 3;
        int cc = pk[3] & 0x0F;
        size_t p = 4;
        int64_t pcr = -1;
        int rai = 0;
        if (off / 188 < 2)
            f->first_pids[off / 188] = pid;
        cr_assert(afc != 0);
        if (afc & 1) {          /* payload: the counter moves */
            if (f->cc[pid] >= 0 && cc != ((f->cc[pid] + 1) & 0x0F))
                f->cc_errors++;
            f->cc[pid] = cc;
        }
        if (afc & 2) {
            int len = pk[4];
            cr_assert_leq(len, 183);
            if (len > 0) {
                rai = pk[5] & 0x40;
                if (pk[5] & 0x10) {
                    pcr = (int64_t)pk[6] << 25 | pk[7] << 17 | pk[8] << 9 | pk[9] << 1 |
                          pk[10] >> 7;
                    f->pcrs++;
                    if (pcr < f->last_pcr)
                        f->pcr_backwards++;
                    f->last_pcr = pcr;
                }
            }
            p = 5 + (size_t)len;
        }
        if ((afc & 1) && pid == WEIR_TS_PID_VIDEO && collecting && pusi)
            collecting = 0;
        if ((afc & 1) && pid == WEIR_TS_PID_VIDEO && collecting) {
            cr_assert_lt(first_len + 188, sizeof first_es);
            memcpy(first_es + first_len, pk + p, 188 - p);
            first_len += 188 - p;
        }
        if (!(afc & 1) || !pusi)
            continue;
        const uint8_t *pl = pk + p;
        size_t left = 188 - p;
        if (pid == 0 || pid == WEIR_TS_PID_PMT) {
            const uint8_t *sec = pl + 1 + pl[0];
            size_t slen = 3 + (size_t)((sec[1] & 0x0F) << 8 | sec[2]);
            cr_assert_leq(slen, left - 1);
            cr_assert_eq(crc32_ref(sec, slen - 4),
                         (uint32_t)sec[slen - 4] << 24 | (uint32_t)sec[slen - 3] << 16 |
                         (uint32_t)sec[slen - 2] << 8 | sec[slen - 1], "PSI CRC, pid %d", pid);
            if (pid == 0) {
                cr_assert_eq(sec[0], 0x00);
                cr_assert_eq((sec[10] & 0x1F) << 8 | sec[11], WEIR_TS_PID_PMT);
                f->pat++;
            } else {
                cr_assert_eq(sec[0], 0x02);
                f->pmt_pcr_pid = (sec[8] & 0x1F) << 8 | sec[9];
                f->pmt_streams = (int)(slen - 12 - 4) / 5;
                f->pmt++;
            }
            continue;
        }
        cr_assert(pl[0] == 0 && pl[1] == 0 && pl[2] == 1, "PES start code, pid %d", pid);
        int flags = pl[7];
        if (!(flags & 0x80)) {
            f->pes_without_pts++;
            continue;
        }
        int64_t pts = read_ts(pl + 9), dts = flags & 0x40 ? read_ts(pl + 14) : pts;
        const uint8_t *es = pl + 9 + pl[8];
        if (pid == WEIR_TS_PID_VIDEO) {
            if (pcr > dts)
                f->pcr_after_dts++;
            if (f->first_video_pts < 0) {
                f->first_video_pts = pts;
                f->first_video_dts = dts;
                f->first_video_rai = rai;
                f->first_video_pcr = pcr >= 0;
                /* Gathered across packets until the next video PES. */
                collecting = 1;
                first_len = (size_t)(pk + 188 - es);
                memcpy(first_es, es, first_len);
            }
            f->video_pes++;
        } else if (pid == WEIR_TS_PID_AUDIO) {
            if (!(es[0] == 0xFF && (es[1] & 0xF6) == 0xF0))
                f->adts_bad++;
            f->audio_pes++;
        }
    }
    if (f->first_video_pts >= 0) {
        /* AUD, then (a keyframe) SPS, PPS, SEI..., IDR. */
        first_au_facts(f, first_es, first_len, nth_in_run);
        cr_assert(f->first_video_sps, "segment %d opens with SPS", nth_in_run);
    }
}

/* ---- the presentation's TS variant -------------------------------------- */

Test(ts, segments_open_with_psi_and_a_keyframe_and_counters_run_on)
{
    clip c;
    int counts[8], err;
    weir_buf *b;
    ts_facts f;
    weir_bytes all = { 0 };

    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 7 -c:v libx264 -preset ultrafast -g 25 -bf 2 -c:a aac");
    pkg_pres *p = package(&c, &settings_ts, counts);
    cr_assert_eq(pres_end(p, T0 + 8000), 0);
    cr_assert(p->ts);
    pkg_track *v = &p->tracks[0];
    cr_assert_eq(v->nsegs, 4);

    facts_init(&f);
    for (int i = 0; i < v->nsegs; i++) {
        char name[32];
        snprintf(name, sizeof name, "v0_%lld.ts", (long long)v->segs[i]->number);
        cr_assert(b = ts_get(p, name, &err), "%s: %d", name, err);
        int pat = f.pat, pmt = f.pmt;
        parse_segment(&f, b->data, b->size, i);
        cr_assert_eq(f.first_pids[0], 0, "segment %d starts with the PAT", i);
        cr_assert_eq(f.first_pids[1], WEIR_TS_PID_PMT, "then the PMT");
        cr_assert_eq(f.pat, pat + 1);
        cr_assert_eq(f.pmt, pmt + 1);
        cr_assert(f.first_video_idr, "segment %d: first video frame is IDR", i);
        cr_assert(f.first_video_rai && f.first_video_pcr);
        /* Same instant as the CMAF segment: its start is the first
         * keyframe's presentation time on the same media clock. */
        cr_assert_eq(f.first_video_pts, v->segs[i]->start_ts, "segment %d: TS %lld CMAF %lld",
                     i, (long long)f.first_video_pts, (long long)v->segs[i]->start_ts);
        cr_assert_lt(f.first_video_dts, f.first_video_pts, "B-frames: DTS before PTS");
        cr_assert_eq(all.len % 188, 0);
        all.data = realloc(all.data, all.len + b->size);
        memcpy(all.data + all.len, b->data, b->size);
        all.len += b->size;
        weir_buf_unref(b);
    }
    cr_assert_eq(f.cc_errors, 0, "continuity counters run on across segments");
    cr_assert_eq(f.pmt_streams, 2);
    cr_assert_eq(f.pmt_pcr_pid, WEIR_TS_PID_VIDEO);
    cr_assert_geq(f.pcrs, counts[0], "a PCR on every video PES");
    cr_assert_eq(f.pcr_backwards, 0);
    cr_assert_eq(f.pcr_after_dts, 0, "PCR never past the DTS it precedes");
    cr_assert_eq(f.video_pes, counts[0]);
    cr_assert_gt(f.audio_pes, 0);
    cr_assert_eq(f.adts_bad, 0);
    cr_assert_eq(f.pes_without_pts, 0);

    /* libavformat reads every frame back, with the right codecs. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/weir-ts-out-%d.ts", (int)getpid());
    FILE *out = fopen(path, "wb");
    cr_assert(out);
    fwrite(all.data, 1, all.len, out);
    fclose(out);
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    int frames[2] = { 0, 0 };
    cr_assert_eq(avformat_open_input(&fmt, path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(fmt, NULL), 0);
    cr_assert_eq(fmt->nb_streams, 2);
    for (unsigned i = 0; i < 2; i++) {
        enum AVCodecID id = fmt->streams[i]->codecpar->codec_id;
        cr_assert(id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_AAC);
    }
    while (av_read_frame(fmt, pkt) == 0) {
        frames[fmt->streams[pkt->stream_index]->codecpar->codec_id == AV_CODEC_ID_AAC]++;
        av_packet_unref(pkt);
    }
    cr_assert_eq(frames[0], counts[0], "video frames %d of %d", frames[0], counts[0]);
    cr_assert_eq(frames[1], counts[1], "audio frames %d of %d", frames[1], counts[1]);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    unlink(path);
    free(all.data);
    pres_free(p);
    clip_free(&c);
}

Test(ts, playlists_follow_the_cmaf_window)
{
    clip c;
    int counts[8], err;
    weir_packager_settings cfg = settings_ts;
    cfg.window = 3;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=44100",
              "-t 13 -c:v libx264 -preset ultrafast -g 50 -c:a aac");
    pkg_pres *p = package(&c, &cfg, counts);

    weir_object o = { 0 };
    cr_assert_eq(pres_lookup(p, "v0.m3u8", NULL, &o), 0);
    char *cmaf = text_of(o.body);
    char *text = text_of(ts_get(p, "v0.m3u8", &err));
    cr_assert(strstr(text, "#EXT-X-VERSION:3\n"), "%s", text);
    cr_assert(!strstr(text, "EXT-X-MAP") && !strstr(text, "EXT-X-PART"), "%s", text);
    cr_assert(strstr(text, "#EXT-X-TARGETDURATION:2\n"), "%s", text);
    cr_assert(strstr(text, "#EXT-X-MEDIA-SEQUENCE:4\n"), "%s", text);
    cr_assert(strstr(text, "v0_4.ts") && strstr(text, "v0_5.ts") && strstr(text, "v0_6.ts"));
    cr_assert(!strstr(text, "v0_3.ts") && !strstr(text, "v0_7.ts"));
    cr_assert(!strstr(text, "#EXT-X-ENDLIST"));
    /* Same MEDIA-SEQUENCE and PROGRAM-DATE-TIMEs as the CMAF playlist. */
    const char *c_pdt = strstr(cmaf, "#EXT-X-PROGRAM-DATE-TIME:");
    const char *t_pdt = strstr(text, "#EXT-X-PROGRAM-DATE-TIME:");
    cr_assert(c_pdt && t_pdt);
    cr_assert_eq(strncmp(c_pdt, t_pdt, 49), 0, "%.49s vs %.49s", c_pdt, t_pdt);
    cr_assert(strstr(cmaf, "#EXT-X-MEDIA-SEQUENCE:4\n"));
    free(cmaf);
    free(text);

    cr_assert(!ts_get(p, "v0_1.ts", &err));
    cr_assert_eq(err, AVERROR(ESTALE), "fell out of the window: 410");
    cr_assert(!ts_get(p, "v0_7.ts", &err));
    cr_assert_eq(err, AVERROR(ENOENT));
    cr_assert(!ts_get(p, "v0_4.m4s", &err));
    cr_assert(!ts_get(p, "a0.m3u8", &err), "audio rides inside v0's TS");
    cr_assert(!ts_get(p, "v0_x.ts", &err));
    cr_assert(!ts_get(p, "v0_4.tsx", &err));

    text = text_of(ts_get(p, "index.m3u8", &err));
    cr_assert(strstr(text, "#EXT-X-VERSION:3\n"), "%s", text);
    cr_assert(strstr(text, ",CODECS=\"avc1."), "%s", text);
    cr_assert(strstr(text, ",mp4a.40.2\""), "%s", text);
    cr_assert(strstr(text, "RESOLUTION=160x120"), "%s", text);
    cr_assert(strstr(text, "\nv0.m3u8\n"), "%s", text);
    cr_assert(!strstr(text, "EXT-X-MEDIA:"), "%s", text);
    free(text);

    cr_assert_eq(pres_end(p, T0 + 14000), 0);
    text = text_of(ts_get(p, "v0.m3u8", &err));
    cr_assert(strstr(text, "#EXT-X-ENDLIST\n"), "%s", text);
    cr_assert(strstr(text, "v0_7.ts"), "the last segment: %s", text);
    free(text);
    pres_free(p);
    clip_free(&c);
}

Test(ts, a_second_audio_track_is_left_out)
{
    clip c;
    int counts[8], err;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000 "
              "-f lavfi -i sine=frequency=880:sample_rate=48000",
              "-t 5 -map 0 -map 1 -map 2 -c:v libx264 -preset ultrafast -g 25 -c:a aac");
    pkg_pres *p = package(&c, &settings_ts, counts);
    cr_assert_eq(p->ntracks, 3);
    cr_assert_eq(pres_end(p, T0 + 6000), 0);
    char *text = text_of(ts_get(p, "v0.m3u8", &err));
    cr_assert(strstr(text, "#EXT-X-ENDLIST\n"), "%s", text);
    cr_assert(strstr(text, "v0_3.ts\n#EXT-X-ENDLIST"), "the last segment is there: %s", text);
    free(text);
    weir_buf *b = ts_get(p, "v0_3.ts", &err);
    cr_assert(b);
    ts_facts f;
    facts_init(&f);
    parse_segment(&f, b->data, b->size, 0);
    cr_assert_eq(f.pmt_streams, 2, "video and the first audio only");
    weir_buf_unref(b);
    pres_free(p);
    clip_free(&c);
}

Test(ts, every_video_rendition_gets_its_own_ts_with_the_audio)
{
    clip c;
    int counts[8], err;
    /* Two rungs with aligned keyframes, as the transcoder publishes them. */
    clip_make(&c, "-f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 5 -filter_complex '[0:v]split[a][b];[b]scale=160:120[s]' -map '[a]' "
              "-map '[s]' -map 1 -c:v libx264 -preset ultrafast -g 25 -c:a aac");
    pkg_pres *p = package(&c, &settings_ts, counts);
    cr_assert_eq(pres_end(p, T0 + 6000), 0);
    cr_assert_eq(p->ntracks, 3);

    char *text = text_of(ts_get(p, "index.m3u8", &err));
    cr_assert(strstr(text, "RESOLUTION=320x240") && strstr(text, "RESOLUTION=160x120"), "%s",
              text);
    cr_assert(strstr(text, "\nv0.m3u8\n") && strstr(text, "\nv1.m3u8\n"), "%s", text);
    free(text);
    for (int r = 0; r < 2; r++) {
        ts_facts f;
        int vframes = 0;
        facts_init(&f);
        for (int i = 0; i < p->tracks[r].nsegs; i++) {
            char name[32];
            snprintf(name, sizeof name, "v%d_%lld.ts", r, (long long)p->tracks[r].segs[i]->number);
            weir_buf *b = ts_get(p, name, &err);
            cr_assert(b, "%s: %d", name, err);
            int before = f.video_pes;
            parse_segment(&f, b->data, b->size, i);
            vframes += f.video_pes - before;
            cr_assert(f.first_video_idr, "%s opens with an IDR", name);
            cr_assert_eq(f.first_video_pts, p->tracks[r].segs[i]->start_ts, "%s", name);
            weir_buf_unref(b);
        }
        cr_assert_eq(f.pmt_streams, 2);
        cr_assert_eq(f.cc_errors, 0, "v%d", r);
        cr_assert_eq(vframes, counts[r], "v%d: %d of %d frames", r, vframes, counts[r]);
        cr_assert_gt(f.audio_pes, 0, "v%d carries the audio", r);
    }
    pres_free(p);
    clip_free(&c);
}

Test(ts, audio_only_carries_pcr_on_audio)
{
    clip c;
    int counts[8], err;
    ts_facts f;
    clip_make(&c, "-f lavfi -i sine=sample_rate=48000", "-t 5 -c:a aac");
    pkg_pres *p = package(&c, &settings_ts, counts);
    cr_assert_eq(pres_end(p, T0 + 6000), 0);
    cr_assert(p->ts);
    facts_init(&f);
    for (int i = 0; i < p->tracks[0].nsegs; i++) {
        char name[32];
        snprintf(name, sizeof name, "a0_%lld.ts", (long long)p->tracks[0].segs[i]->number);
        weir_buf *b = ts_get(p, name, &err);
        cr_assert(b, "%s", name);
        parse_segment(&f, b->data, b->size, i);
        weir_buf_unref(b);
    }
    cr_assert_eq(f.pmt_streams, 1);
    cr_assert_eq(f.pmt_pcr_pid, WEIR_TS_PID_AUDIO);
    cr_assert_gt(f.pcrs, 0);
    cr_assert_eq(f.pcr_backwards, 0);
    cr_assert_eq(f.cc_errors, 0);
    cr_assert_eq(f.adts_bad, 0);
    char *text = text_of(ts_get(p, "index.m3u8", &err));
    cr_assert(strstr(text, "CODECS=\"mp4a.40.2\"") && !strstr(text, "RESOLUTION"), "%s", text);
    free(text);
    pres_free(p);
    clip_free(&c);
}

Test(ts, off_unless_asked_and_other_codecs_are_left_out)
{
    clip c;
    int counts[8], err;
    weir_packager_settings cfg = settings_ts;
    cfg.hls_ts = 0;
    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25", "-t 3 -c:v libx264 -preset ultrafast");
    pkg_pres *p = package(&c, &cfg, counts);
    cr_assert_null(p->ts);
    cr_assert(!ts_get(p, "index.m3u8", &err));
    cr_assert_eq(err, AVERROR(ENOENT));
    pres_free(p);
    clip_free(&c);

    /* Opus audio only: nothing TS carries, no variant, CMAF unaffected. */
    clip_make(&c, "-f lavfi -i sine=sample_rate=48000", "-t 3 -c:a libopus");
    p = package(&c, &settings_ts, counts);
    cr_assert_null(p->ts);
    cr_assert_eq(p->ntracks, 1);
    pres_free(p);
    clip_free(&c);
}

/* ---- the writer alone ----------------------------------------------------- */

static AVCodecParameters *avc_par(void)
{
    /* avcC: version 1, High@3.0, 4-byte lengths, one SPS, one PPS. */
    static const uint8_t avcc[] = {
        1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1E, 1, 0, 2, 0x68, 0xEE,
    };
    AVCodecParameters *par = avcodec_parameters_alloc();
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    par->extradata = av_mallocz(sizeof avcc + AV_INPUT_BUFFER_PADDING_SIZE);
    memcpy(par->extradata, avcc, sizeof avcc);
    par->extradata_size = sizeof avcc;
    return par;
}

static AVCodecParameters *aac_par(void)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_AAC;
    par->extradata = av_mallocz(2 + AV_INPUT_BUFFER_PADDING_SIZE);
    par->extradata[0] = 0x11;       /* AAC-LC, 48 kHz (index 3), stereo */
    par->extradata[1] = 0x90;
    par->extradata_size = 2;
    return par;
}

Test(ts_mux, adts_header_and_failure_leaves_no_trace)
{
    AVCodecParameters *v = avc_par(), *a = aac_par();
    weir_ts_mux *m = NULL;
    weir_bytes out = { 0 };
    static const uint8_t idr[] = { 0, 0, 0, 3, 0x65, 0x88, 0x84 };
    static const uint8_t bad[] = { 0, 0, 0, 9, 0x41, 0x9A };     /* length past the end */
    uint8_t aac[100];
    memset(aac, 0x21, sizeof aac);

    cr_assert(weir_ts_supported(v) && weir_ts_supported(a));
    cr_assert_eq(weir_ts_mux_new(v, a, &m), 0);
    weir_ts_sample s[3] = {
        { .data = idr, .size = sizeof idr, .dts = 0, .pts = 3600, .key = 1 },
        { .data = aac, .size = sizeof aac, .dts = 100, .pts = 100, .audio = 1 },
        { .data = aac, .size = sizeof aac, .dts = 2020, .pts = 2020, .audio = 1 },
    };
    cr_assert_eq(weir_ts_mux_segment(m, s, 3, &out), 0);
    cr_assert_eq(out.len, 5 * 188, "PAT PMT video audio (2 packets): %zu", out.len);
    /* The audio PES: two ADTS frames of 107 bytes, 48 kHz stereo LC. */
    const uint8_t *pk = out.data + 3 * 188;
    cr_assert_eq((pk[1] & 0x1F) << 8 | pk[2], WEIR_TS_PID_AUDIO);
    const uint8_t *pes = pk + 4 + ((pk[3] & 0x20) ? 1 + pk[4] : 0);
    const uint8_t *adts = pes + 9 + pes[8];
    static const uint8_t want[7] = { 0xFF, 0xF1, 0x4C, 0x80, 0x0D, 0x7F, 0xFC };
    cr_assert_eq(memcmp(adts, want, 7), 0, "%02x %02x %02x %02x %02x %02x %02x", adts[0],
                 adts[1], adts[2], adts[3], adts[4], adts[5], adts[6]);
    cr_assert_eq(memcmp(adts + 107, want, 7), 0, "the second frame shares the PES");
    cr_assert_eq(read_ts(pes + 9), 100);

    /* A malformed access unit: an error, out as it was, counters as they were. */
    size_t len = out.len;
    weir_ts_sample broken = { .data = bad, .size = sizeof bad, .dts = 3600, .pts = 3600 };
    cr_assert_eq(weir_ts_mux_segment(m, &broken, 1, &out), AVERROR(EINVAL));
    cr_assert_eq(out.len, len);
    cr_assert_eq(weir_ts_mux_segment(m, s, 1, &out), 0);
    ts_facts f;
    facts_init(&f);
    parse_segment(&f, out.data, 5 * 188, 0);
    parse_segment(&f, out.data + 5 * 188, out.len - 5 * 188, 1);
    cr_assert_eq(f.cc_errors, 0);

    weir_ts_mux_free(m);
    weir_bytes_free(&out);

    /* What TS cannot carry is refused up front. */
    a->extradata[0] = 0x29;         /* AOT 5 (SBR) with an unusable core: 0x29 -> AOT 5 */
    a->extradata_size = 1;          /* ... and cut short */
    cr_assert(!weir_ts_supported(a));
    cr_assert_eq(weir_ts_mux_new(NULL, a, &m), AVERROR(EINVAL));
    v->codec_id = AV_CODEC_ID_HEVC;
    cr_assert_eq(weir_ts_mux_new(v, NULL, &m), AVERROR(EINVAL));
    cr_assert_eq(weir_ts_mux_new(NULL, NULL, &m), AVERROR(EINVAL));
    avcodec_parameters_free(&v);
    avcodec_parameters_free(&a);
}

/* Muxing runs on the loop: how long does a segment take?  (Printed; the
 * bound is loose so a loaded machine does not fail it.) */
Test(ts_mux, a_segment_is_cheap_to_mux)
{
    AVCodecParameters *v = avc_par(), *a = aac_par();
    weir_ts_mux *m = NULL;
    weir_bytes out = { 0 };
    enum { FRAMES = 60, AUDIO = 94, FRAME = 16000 };    /* 2 s at 30 fps, ~4 Mbit/s */
    static uint8_t au[FRAME], aac[370];
    weir_ts_sample s[FRAMES + AUDIO];
    size_t n = 0;
    struct timespec t0, t1;

    au[0] = (FRAME - 4) >> 24; au[1] = (uint8_t)((FRAME - 4) >> 16);
    au[2] = (uint8_t)((FRAME - 4) >> 8); au[3] = (uint8_t)(FRAME - 4); au[4] = 0x65;
    for (int i = 0, j = 0; i < FRAMES || j < AUDIO;) {
        int64_t vt = i * 3000, at = j * 1920;
        if (i < FRAMES && (j >= AUDIO || vt <= at))
            s[n++] = (weir_ts_sample){ .data = au, .size = FRAME, .dts = vt, .pts = vt,
                                       .key = i++ == 0 };
        else
            s[n++] = (weir_ts_sample){ .data = aac, .size = sizeof aac, .dts = at, .pts = at,
                                       .audio = 1 }, j++;
    }
    cr_assert_eq(weir_ts_mux_new(v, a, &m), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 20; k++) {
        out.len = 0;
        cr_assert_eq(weir_ts_mux_segment(m, s, n, &out), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3)
                / 20;
    fprintf(stderr, "ts_mux: a 2 s segment (%zu bytes of TS) in %.0f us\n", out.len, us);
    cr_assert_lt(us, 50000, "%.0f us", us);
    weir_ts_mux_free(m);
    weir_bytes_free(&out);
    avcodec_parameters_free(&v);
    avcodec_parameters_free(&a);
}
