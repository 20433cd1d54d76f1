/*
 * Unit tests for packager/cmaf: the CMAF box writer.
 *
 * Round trips go through peers nobody here wrote: the ffmpeg CLI encodes a
 * short clip (H.264 with B-frames, HEVC, AV1, AAC, Opus) into an MP4,
 * libavformat's mov demuxer hands back its packets and configuration record
 * (what RTMP ingest delivers too), weir writes init + fragments, and both
 * libavformat and ffprobe read the result back: codec, size, configuration,
 * every sample's bytes, pts, dts and key flag must come back as they went in.
 * A small box walker checks the layout itself (order, sizes, trun data
 * offset, tfdt, styp, sample flags).  Codec strings come from known records,
 * and malformed records (truncated at every length, empty, Annex B) must be
 * refused without reading out of bounds (the test build runs under ASan).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/mathematics.h>

#include "packager/cmaf.h"

/* ---- scratch directory -------------------------------------------------------- */

static char dir[] = "/tmp/weir-cmaf-XXXXXX";

static void mkdir_tmp(void)
{
    strcpy(dir, "/tmp/weir-cmaf-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cmaf, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

static void path_in_dir(char *buf, size_t cap, const char *name)
{
    cr_assert_lt((size_t)snprintf(buf, cap, "%s/%s", dir, name), cap);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* ---- the source: a clip encoded by the ffmpeg CLI, demuxed by libavformat ---- */

typedef struct source {
    AVCodecParameters *par;     /* owned */
    AVRational tb;
    AVPacket *pkts[256];        /* owned */
    size_t n;
} source;

static void source_load(source *s, const char *path)
{
    AVFormatContext *fc = NULL;
    AVPacket *pkt;

    memset(s, 0, sizeof *s);
    cr_assert_eq(avformat_open_input(&fc, path, NULL, NULL), 0, "open %s", path);
    cr_assert_eq(fc->nb_streams, 1u);
    s->par = avcodec_parameters_alloc();
    cr_assert_not_null(s->par);
    cr_assert_geq(avcodec_parameters_copy(s->par, fc->streams[0]->codecpar), 0);
    s->tb = fc->streams[0]->time_base;
    for (;;) {
        pkt = av_packet_alloc();
        cr_assert_not_null(pkt);
        if (av_read_frame(fc, pkt) < 0) {
            av_packet_free(&pkt);
            break;
        }
        cr_assert_lt(s->n, sizeof s->pkts / sizeof s->pkts[0]);
        s->pkts[s->n++] = pkt;
    }
    avformat_close_input(&fc);
    cr_assert_gt(s->n, 4u);
}

static void source_free(source *s)
{
    for (size_t i = 0; i < s->n; i++)
        av_packet_free(&s->pkts[i]);
    avcodec_parameters_free(&s->par);
}

/* Encodes with the ffmpeg CLI into <dir>/<name> and loads the result.
 * Returns 0, or -1 when the encoder is not in this libavcodec. */
static int source_make(source *s, const char *encoder, const char *args, const char *name)
{
    char path[256], cmd[1024];

    if (!avcodec_find_encoder_by_name(encoder))
        return -1;
    path_in_dir(path, sizeof path, name);
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -hide_banner -loglevel error -y %s -c %s '%s'",
             args, encoder, path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    source_load(s, path);
    return 0;
}

#define VIDEO_IN "-f lavfi -i testsrc=size=160x120:rate=25 -pix_fmt yuv420p "

/* ---- packaging ------------------------------------------------------------------- */

#define MAX_FRAGS 64

typedef struct packaged {
    weir_bytes file;            /* init + fragments, owned */
    uint32_t timescale;
    int64_t dts[256], pts[256]; /* what each sample should come back as */
    int key[256];
    size_t n;
    size_t nfrag;
    size_t frag_first[MAX_FRAGS]; /* index of each fragment's first sample */
    int frag_styp[MAX_FRAGS];
} packaged;

/* Packages s with samples per_frag to a fragment; dts_shift (timescale
 * units) moves decode times later, which turns composition offsets
 * negative while presentation times stay. */
static void package(const source *s, uint32_t timescale, int64_t dts_shift, size_t per_frag,
                    packaged *pk)
{
    AVRational ts = { 1, (int)timescale };
    weir_cmaf_track t = { .par = s->par, .timescale = timescale, .language = "eng" };
    weir_cmaf_sample smp[256];
    int64_t d0 = av_rescale_q(s->pkts[0]->dts, s->tb, ts);
    int audio = s->par->codec_type == AVMEDIA_TYPE_AUDIO;

    memset(pk, 0, sizeof *pk);
    pk->timescale = timescale;
    pk->n = s->n;
    for (size_t i = 0; i < s->n; i++) {
        pk->dts[i] = av_rescale_q(s->pkts[i]->dts, s->tb, ts) - d0 + dts_shift;
        pk->pts[i] = av_rescale_q(s->pkts[i]->pts, s->tb, ts) - d0;
        pk->key[i] = audio || (s->pkts[i]->flags & AV_PKT_FLAG_KEY);
    }
    for (size_t i = 0; i < s->n; i++) {
        int64_t dur = i + 1 < s->n ? pk->dts[i + 1] - pk->dts[i]
                                   : av_rescale_q(s->pkts[i]->duration, s->tb, ts);
        cr_assert_gt(dur, 0);
        smp[i] = (weir_cmaf_sample){ .data = s->pkts[i]->data, .size = (size_t)s->pkts[i]->size,
                                     .duration = (uint32_t)dur,
                                     .cts_offset = (int32_t)(pk->pts[i] - pk->dts[i]),
                                     .key = pk->key[i] };
    }
    cr_assert_eq(weir_cmaf_write_init(&t, &pk->file), 0);
    for (size_t i = 0; i < s->n; i += per_frag) {
        size_t k = pk->nfrag++, m = s->n - i < per_frag ? s->n - i : per_frag;
        cr_assert_lt(k, MAX_FRAGS);
        pk->frag_first[k] = i;
        pk->frag_styp[k] = k % 2 == 0;
        cr_assert_eq(weir_cmaf_write_fragment(&t, (uint32_t)k + 1, (uint64_t)pk->dts[i], smp + i, m,
                                              pk->frag_styp[k], &pk->file), 0);
    }
}

/* ---- a tiny box walker --------------------------------------------------------------- */

typedef struct box {
    uint32_t type;
    size_t off, hdr, size;      /* off: from the start of the walked buffer */
} box;

#define T(s) MKBETAG((s)[0], (s)[1], (s)[2], (s)[3])

/* The boxes directly inside p[0..n): their sizes must tile it exactly. */
static size_t walk(const uint8_t *p, size_t n, size_t base, box *out, size_t max)
{
    size_t off = 0, k = 0;

    while (off < n) {
        box b = { .off = base + off, .hdr = 8 };
        cr_assert_geq(n - off, 8u, "box header cut at %zu", base + off);
        b.size = AV_RB32(p + off);
        b.type = AV_RB32(p + off + 4);
        if (b.size == 1) {
            cr_assert_geq(n - off, 16u);
            b.size = AV_RB64(p + off + 8);
            b.hdr = 16;
        }
        cr_assert_geq(b.size, b.hdr);
        cr_assert_leq(b.size, n - off, "box at %zu overruns its parent", base + off);
        cr_assert_lt(k, max);
        out[k++] = b;
        off += b.size;
    }
    cr_assert_eq(off, n);
    return k;
}

/* The children of box b in file f; the first skip bytes of its body are fields. */
static size_t children(const uint8_t *f, const box *b, size_t skip, box *out, size_t max)
{
    return walk(f + b->off + b->hdr + skip, b->size - b->hdr - skip, b->off + b->hdr + skip,
                out, max);
}

static void expect_types(const box *b, size_t n, const char *const *types)
{
    size_t k = 0;
    for (; types[k]; k++) {
        cr_assert_lt(k, n, "missing box %s", types[k]);
        cr_assert_eq(b[k].type, T(types[k]), "box %zu is not %s", k, types[k]);
    }
    cr_assert_eq(k, n, "extra boxes");
}

static const box *child(const uint8_t *f, const box *b, size_t skip, const char *type,
                        box *tmp, size_t max)
{
    size_t n = children(f, b, skip, tmp, max);
    for (size_t i = 0; i < n; i++)
        if (tmp[i].type == T(type))
            return &tmp[i];
    cr_assert_fail("no %s", type);
    return NULL;
}

static const uint8_t *body(const uint8_t *f, const box *b) { return f + b->off + b->hdr; }

/* The init segment's structure; returns the stsd box. */
static box check_init(const uint8_t *f, const box *ftyp, const box *moov, const char *entry,
                      int video)
{
    box m[8], trak[8], mdia[8], minf[8], stbl[8], tmp[8];
    static const char *const moov_t[] = { "mvhd", "trak", "mvex", NULL };
    static const char *const trak_t[] = { "tkhd", "mdia", NULL };
    static const char *const mdia_t[] = { "mdhd", "hdlr", "minf", NULL };
    static const char *const minfv_t[] = { "vmhd", "dinf", "stbl", NULL };
    static const char *const minfa_t[] = { "smhd", "dinf", "stbl", NULL };
    static const char *const stbl_t[] = { "stsd", "stts", "stsc", "stsz", "stco", NULL };
    const uint8_t *p = body(f, ftyp);

    cr_assert_eq(AV_RB32(p), T("cmf2"));
    cr_assert(memmem(p + 8, ftyp->size - 16, "iso6", 4) && memmem(p + 8, ftyp->size - 16, "cmfc", 4));
    expect_types(m, children(f, moov, 0, m, 8), moov_t);
    expect_types(trak, children(f, &m[1], 0, trak, 8), trak_t);
    cr_assert_eq(AV_RB32(body(f, &trak[0]) + 12), 1u);                  /* track_ID */
    expect_types(mdia, children(f, &trak[1], 0, mdia, 8), mdia_t);
    cr_assert_eq(AV_RB32(body(f, &mdia[1]) + 8), T(video ? "vide" : "soun"));
    expect_types(minf, children(f, &mdia[2], 0, minf, 8), video ? minfv_t : minfa_t);
    expect_types(stbl, children(f, &minf[2], 0, stbl, 8), stbl_t);
    cr_assert_eq(AV_RB32(body(f, &stbl[0]) + 4), 1u);                   /* entry_count */
    const box *se = &tmp[0];
    cr_assert_eq(children(f, &stbl[0], 8, tmp, 8), 1u);
    cr_assert_eq(se->type, T(entry));
    const box *trex = child(f, &m[2], 0, "trex", tmp + 1, 7);
    cr_assert_eq(AV_RB32(body(f, trex) + 4), 1u);
    return *se;
}

/* Walks the whole file: ftyp moov ([styp] moof mdat)...; checks each
 * fragment's mfhd, tfhd, tfdt, trun against what package() put in. */
static void check_boxes(const packaged *pk, const char *entry, int video)
{
    const uint8_t *f = pk->file.data;
    box top[3 * MAX_FRAGS + 2], traf[4], tmp[8];
    size_t n = walk(f, pk->file.len, 0, top, sizeof top / sizeof top[0]), k = 2;

    cr_assert_geq(n, 4u);
    cr_assert_eq(top[0].type, T("ftyp"));
    cr_assert_eq(top[1].type, T("moov"));
    check_init(f, &top[0], &top[1], entry, video);

    for (size_t fr = 0; fr < pk->nfrag; fr++) {
        size_t first = pk->frag_first[fr];
        size_t cnt = (fr + 1 < pk->nfrag ? pk->frag_first[fr + 1] : pk->n) - first;
        int neg = 0;

        if (pk->frag_styp[fr]) {
            cr_assert_eq(top[k].type, T("styp"), "fragment %zu: no styp", fr);
            cr_assert_eq(AV_RB32(body(f, &top[k])), T("msdh"));
            cr_assert(memmem(body(f, &top[k]), top[k].size - 8, "cmfs", 4));
            k++;
        }
        cr_assert_lt(k + 1, n);
        const box *moof = &top[k], *mdat = &top[k + 1];
        cr_assert_eq(moof->type, T("moof"));
        cr_assert_eq(mdat->type, T("mdat"));
        k += 2;

        const box *mfhd = child(f, moof, 0, "mfhd", tmp, 8);
        cr_assert_eq(AV_RB32(body(f, mfhd) + 4), fr + 1);
        const box *trafb = child(f, moof, 0, "traf", tmp, 8);
        static const char *const traf_t[] = { "tfhd", "tfdt", "trun", NULL };
        expect_types(traf, children(f, trafb, 0, traf, 4), traf_t);

        const uint8_t *tfhd = body(f, &traf[0]);
        cr_assert_eq(AV_RB32(tfhd) & 0xffffff, 0x020000u);   /* default-base-is-moof only */
        cr_assert_eq(AV_RB32(tfhd + 4), 1u);
        const uint8_t *tfdt = body(f, &traf[1]);
        cr_assert_eq(tfdt[0], 1);
        cr_assert_eq((int64_t)AV_RB64(tfdt + 4), pk->dts[first]);

        const uint8_t *trun = body(f, &traf[2]);
        uint32_t flags = AV_RB32(trun) & 0xffffff;
        for (size_t i = 0; i < cnt; i++)
            neg |= pk->pts[first + i] < pk->dts[first + i];
        cr_assert_eq(trun[0], neg ? 1 : 0, "trun version");
        cr_assert_eq(flags & 0x701, 0x701u);                 /* offset, duration, size, flags */
        cr_assert_eq(AV_RB32(trun + 4), cnt);
        int32_t data_offset = (int32_t)AV_RB32(trun + 8);
        cr_assert_eq(moof->off + (size_t)data_offset, mdat->off + mdat->hdr,
                     "data_offset does not point at the first mdat byte");
        size_t per = flags & 0x800 ? 16 : 12, sum = 0;
        cr_assert_eq(traf[2].size - traf[2].hdr, 12 + per * cnt);
        for (size_t i = 0; i < cnt; i++) {
            const uint8_t *e = trun + 12 + per * i;
            uint32_t sf = AV_RB32(e + 8);
            sum += AV_RB32(e + 4);
            cr_assert_eq(sf, pk->key[first + i] ? 0x02000000u : 0x01010000u, "sample %zu flags",
                         first + i);
            if (per == 16)
                cr_assert_eq((int64_t)(int32_t)AV_RB32(e + 12), pk->pts[first + i] - pk->dts[first + i]);
        }
        cr_assert_eq(sum, mdat->size - mdat->hdr);
    }
    cr_assert_eq(k, n, "boxes after the last fragment");
}

/* ---- reading back ---------------------------------------------------------------------- */

/* libavformat's mov demuxer keeps pts >= dts: it adds the largest negative
 * composition offset it has seen (its "dts_shift") to every pts.  A player
 * (MSE) uses the offsets as written; trun itself is checked by check_boxes. */
static int64_t lavf_pts_shift(const packaged *pk)
{
    int64_t s = 0;
    for (size_t i = 0; i < pk->n; i++)
        s = FFMAX(s, pk->dts[i] - pk->pts[i]);
    return s;
}

/* Demuxes the packaged file with libavformat and compares with s. */
static void check_demux(const source *s, const packaged *pk, const char *name)
{
    char path[256];
    AVFormatContext *fc = NULL;
    AVPacket *pkt = av_packet_alloc();
    const AVCodecParameters *in = s->par, *par;
    int64_t shift = lavf_pts_shift(pk);

    cr_assert_not_null(pkt);
    path_in_dir(path, sizeof path, name);
    write_file(path, pk->file.data, pk->file.len);
    cr_assert_eq(avformat_open_input(&fc, path, NULL, NULL), 0);
    cr_assert_eq(fc->nb_streams, 1u);
    par = fc->streams[0]->codecpar;
    cr_assert_eq(fc->streams[0]->time_base.num, 1);
    cr_assert_eq(fc->streams[0]->time_base.den, (int)pk->timescale);
    cr_assert_eq(par->codec_id, in->codec_id);
    cr_assert_eq(par->extradata_size, in->extradata_size);
    cr_assert_arr_eq(par->extradata, in->extradata, (size_t)in->extradata_size);
    if (in->codec_type == AVMEDIA_TYPE_VIDEO) {
        cr_assert_eq(par->width, in->width);
        cr_assert_eq(par->height, in->height);
    } else {
        cr_assert_eq(par->sample_rate, in->sample_rate);
        cr_assert_eq(par->ch_layout.nb_channels, in->ch_layout.nb_channels);
    }
    for (size_t i = 0; i < s->n; i++) {
        cr_assert_eq(av_read_frame(fc, pkt), 0, "packet %zu missing", i);
        cr_assert_eq(pkt->size, s->pkts[i]->size, "packet %zu size", i);
        cr_assert_arr_eq(pkt->data, s->pkts[i]->data, (size_t)pkt->size, "packet %zu data", i);
        cr_assert_eq(pkt->dts, pk->dts[i], "packet %zu dts %" PRId64 " != %" PRId64, i, pkt->dts,
                     pk->dts[i]);
        cr_assert_eq(pkt->pts, pk->pts[i] + shift, "packet %zu pts %" PRId64 " != %" PRId64, i,
                     pkt->pts, pk->pts[i] + shift);
        cr_assert_eq(!!(pkt->flags & AV_PKT_FLAG_KEY), pk->key[i], "packet %zu key", i);
        av_packet_unref(pkt);
    }
    cr_assert_eq(av_read_frame(fc, pkt), AVERROR_EOF);
    av_packet_free(&pkt);
    avformat_close_input(&fc);
}

/* Runs ffprobe on the file check_demux wrote and compares every packet. */
static void check_ffprobe(const packaged *pk, const source *s, const char *name)
{
    char path[256], out[256], cmd[1024], line[256];
    FILE *f;
    size_t i = 0;

    path_in_dir(path, sizeof path, name);
    path_in_dir(out, sizeof out, "probe.csv");
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams 0 -show_entries packet=pts,dts,size,flags "
             "-of csv=p=0 '%s' > '%s'", path, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    f = fopen(out, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f)) {
        long long pts, dts;
        int size;
        char flags[8];
        cr_assert_eq(sscanf(line, "%lld,%lld,%d,%7s", &pts, &dts, &size, flags), 4, "%s", line);
        cr_assert_lt(i, pk->n);
        cr_assert_eq(pts, pk->pts[i] + lavf_pts_shift(pk), "ffprobe packet %zu pts", i);
        cr_assert_eq(dts, pk->dts[i], "ffprobe packet %zu dts", i);
        cr_assert_eq(size, s->pkts[i]->size);
        cr_assert_eq(flags[0] == 'K', pk->key[i], "ffprobe packet %zu flags %s", i, flags);
        i++;
    }
    fclose(f);
    cr_assert_eq(i, pk->n, "ffprobe saw %zu packets of %zu", i, pk->n);
}

static void roundtrip(const source *s, uint32_t timescale, int64_t shift, size_t per_frag,
                      const char *entry)
{
    packaged pk;
    int video = s->par->codec_type == AVMEDIA_TYPE_VIDEO;

    package(s, timescale, shift, per_frag, &pk);
    if (shift)
        cr_assert_gt(lavf_pts_shift(&pk), 0, "no negative composition offsets to test");
    check_boxes(&pk, entry, video);
    check_demux(s, &pk, "out.mp4");
    check_ffprobe(&pk, s, "out.mp4");
    weir_bytes_free(&pk.file);
}

/* ---- round trips ----------------------------------------------------------------------- */

Test(cmaf, h264_bframes_roundtrip)
{
    source s;
    int has_b = 0;

    cr_assert_eq(source_make(&s, "libx264",
                             VIDEO_IN "-t 1 -bf 2 -g 12 -x264-params b-adapt=0", "h264.mp4"), 0);
    cr_assert_eq(s.par->codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(s.par->extradata[0], 1, "source extradata is not avcC");
    for (size_t i = 1; i < s.n; i++)
        has_b |= s.pkts[i]->pts < s.pkts[i - 1]->pts;
    cr_assert(has_b, "the clip has no B-frames");
    /* positive composition offsets (trun v0), one fragment per GOP-ish */
    roundtrip(&s, 90000, 0, 6, "avc1");
    source_free(&s);
}

Test(cmaf, h264_negative_cts_roundtrip)
{
    source s;

    cr_assert_eq(source_make(&s, "libx264",
                             VIDEO_IN "-t 1 -bf 2 -g 12 -x264-params b-adapt=0", "h264.mp4"), 0);
    /* decode times two frames later: I and P frames get negative offsets (trun v1) */
    roundtrip(&s, 90000, 2 * 3600, 5, "avc1");
    source_free(&s);
}

Test(cmaf, hevc_roundtrip)
{
    source s;

    if (source_make(&s, "libx265",
                    VIDEO_IN "-t 1 -tag:v hvc1 -x265-params log-level=error:bframes=2:keyint=12:b-adapt=0",
                    "hevc.mp4") < 0)
        cr_skip_test("libx265 is not available in this libavcodec");
    cr_assert_eq(s.par->codec_id, AV_CODEC_ID_HEVC);
    cr_assert_eq(s.par->extradata[0], 1, "source extradata is not hvcC");
    roundtrip(&s, 90000, 0, 6, "hvc1");
    source_free(&s);
}

Test(cmaf, av1_roundtrip)
{
    static const char *const enc[] = { "libaom-av1", "libsvtav1", "librav1e" };
    static const char *const opts[] = { "-cpu-used 8 -usage realtime", "-preset 12", "-speed 10" };
    char args[256];
    source s;
    size_t i;

    for (i = 0; i < 3; i++) {
        snprintf(args, sizeof args, VIDEO_IN "-frames:v 10 -g 5 %s", opts[i]);
        if (source_make(&s, enc[i], args, "av1.mp4") == 0)
            break;
    }
    if (i == 3)
        cr_skip_test("no AV1 encoder (libaom, libsvtav1, librav1e) in this libavcodec");
    cr_assert_eq(s.par->codec_id, AV_CODEC_ID_AV1);
    cr_assert_eq(s.par->extradata[0], 0x81, "source extradata is not av1C");
    roundtrip(&s, 90000, 0, 4, "av01");
    source_free(&s);
}

Test(cmaf, aac_roundtrip)
{
    source s;

    cr_assert_eq(source_make(&s, "aac", "-f lavfi -i sine=r=44100:d=1 -ac 2", "aac.mp4"), 0);
    cr_assert_eq(s.par->sample_rate, 44100);
    roundtrip(&s, 44100, 0, 10, "mp4a");
    source_free(&s);
}

Test(cmaf, opus_roundtrip)
{
    source s;

    if (source_make(&s, "libopus", "-f lavfi -i sine=r=48000:d=1 -ac 2", "opus.mp4") < 0)
        cr_skip_test("libopus is not available in this libavcodec");
    cr_assert_eq(s.par->extradata_size, 19);
    roundtrip(&s, 48000, 0, 10, "Opus");
    source_free(&s);
}

/* 96 kHz does not fit the 16.16 samplerate: AudioSampleEntryV1 + srat in
 * stsd version 1; libavformat takes the rate from the ASC. */
Test(cmaf, aac_96k_entry_v1)
{
    source s;
    packaged pk;
    box top[8], tmp[8];
    const uint8_t *f;

    cr_assert_eq(source_make(&s, "aac", "-f lavfi -i sine=r=96000:d=0.3 -ac 1", "aac96.mp4"), 0);
    cr_assert_eq(s.par->sample_rate, 96000);
    package(&s, 96000, 0, 100, &pk);
    f = pk.file.data;
    cr_assert_eq(walk(f, pk.file.len, 0, top, 8), 5u);    /* one fragment */
    box se = check_init(f, &top[0], &top[1], "mp4a", 0);
    const uint8_t *e = body(f, &se);
    cr_assert_eq(f[se.off - 8], 1, "stsd version");             /* stsd body: ver, flags, count */
    cr_assert_eq(AV_RB16(e + 8), 1u, "entry_version");
    cr_assert_eq(AV_RB16(e + 16), 1u, "channelcount");
    cr_assert_eq(AV_RB32(e + 24), 1u << 16, "samplerate");
    const box *srat = child(f, &se, 28, "srat", tmp, 8);
    cr_assert_eq(AV_RB32(body(f, srat) + 4), 96000u);
    check_demux(&s, &pk, "out96.mp4");
    weir_bytes_free(&pk.file);
    source_free(&s);
}

/* ---- init segment details from hand-made parameters ------------------------------------- */

/* High@3.1, one SPS, one PPS */
static const uint8_t avcc[] = {
    0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x0A,
    0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB,
    0x01, 0x00, 0x04, 0x68, 0xEB, 0xE3, 0xCB,
};

/* Main, Main tier, level 3.1, progressive/non-packed/frame-only constraints, no arrays */
static const uint8_t hvcc_main[23] = { 0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0xB0, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x5D, 0xF0, 0x00, 0xFC,
                                       0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 0x00 };

static const uint8_t av1c[] = { 0x81, 0x08, 0x0C, 0x00, 0x0A, 0x0B, 0x00, 0x00, 0x00,
                                0x24, 0xCF, 0x7F, 0x0D, 0xBF, 0xFF, 0x30, 0x08 };

static const uint8_t opushead[19] = { 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2,
                                      0x38, 0x01, 0x80, 0xBB, 0x00, 0x00, 0xFB, 0xFF, 0 };

/* A parameter set whose extradata is a padded copy of p[0..n) (NULL when n is 0). */
static AVCodecParameters *par_with(enum AVCodecID id, const uint8_t *p, size_t n)
{
    AVCodecParameters *par = avcodec_parameters_alloc();
    cr_assert_not_null(par);
    par->codec_id = id;
    par->codec_type = avcodec_get_type(id);
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
        par->width = 1280;
        par->height = 720;
    } else {
        par->sample_rate = 48000;
        av_channel_layout_default(&par->ch_layout, 2);
    }
    if (n) {
        par->extradata = av_mallocz(n + AV_INPUT_BUFFER_PADDING_SIZE);
        cr_assert_not_null(par->extradata);
        memcpy(par->extradata, p, n);
        par->extradata_size = (int)n;
    }
    return par;
}

static const char *codec_str(enum AVCodecID id, const uint8_t *p, size_t n, char *buf, size_t cap)
{
    AVCodecParameters *par = par_with(id, p, n);
    int ret = weir_cmaf_codec_string(par, buf, cap);
    avcodec_parameters_free(&par);
    cr_assert_geq(ret, 0, "codec string: %d", ret);
    cr_assert_eq((size_t)ret, strlen(buf));
    return buf;
}

Test(cmaf, opus_dops_is_big_endian_version_0)
{
    AVCodecParameters *par = par_with(AV_CODEC_ID_OPUS, opushead, sizeof opushead);
    weir_cmaf_track t = { .par = par, .timescale = 48000 };
    weir_bytes b = { 0 };
    box top[4], tmp[8];
    static const uint8_t dops[] = { 0, 2, 0x01, 0x38, 0x00, 0x00, 0xBB, 0x80, 0xFF, 0xFB, 0 };

    cr_assert_eq(weir_cmaf_write_init(&t, &b), 0);
    cr_assert_eq(walk(b.data, b.len, 0, top, 4), 2u);
    box se = check_init(b.data, &top[0], &top[1], "Opus", 0);
    cr_assert_eq(AV_RB16(body(b.data, &se) + 16), 2u);
    cr_assert_eq(AV_RB32(body(b.data, &se) + 24), 48000u << 16);
    const box *d = child(b.data, &se, 28, "dOps", tmp, 8);
    cr_assert_eq(d->size, 8 + sizeof dops);
    cr_assert_arr_eq(body(b.data, d), dops, sizeof dops);
    weir_bytes_free(&b);
    avcodec_parameters_free(&par);
}

Test(cmaf, avc1_entry_fields_and_pasp)
{
    AVCodecParameters *par = par_with(AV_CODEC_ID_H264, avcc, sizeof avcc);
    weir_cmaf_track t = { .par = par, .timescale = 90000, .language = "deu" };
    weir_bytes b = { 0 };
    box top[4], tmp[8], tk[4], md[4];

    par->sample_aspect_ratio = (AVRational){ 4, 3 };
    cr_assert_eq(weir_cmaf_write_init(&t, &b), 0);
    cr_assert_eq(walk(b.data, b.len, 0, top, 4), 2u);
    box se = check_init(b.data, &top[0], &top[1], "avc1", 1);
    const uint8_t *e = body(b.data, &se);
    cr_assert_eq(AV_RB16(e + 24), 1280u);
    cr_assert_eq(AV_RB16(e + 26), 720u);
    cr_assert_eq(children(b.data, &se, 78, tmp, 8), 2u);
    cr_assert_eq(tmp[0].type, T("avcC"));
    cr_assert_eq(tmp[0].size, 8 + sizeof avcc);
    cr_assert_arr_eq(body(b.data, &tmp[0]), avcc, sizeof avcc);
    cr_assert_eq(tmp[1].type, T("pasp"));
    cr_assert_eq(AV_RB32(body(b.data, &tmp[1])), 4u);
    cr_assert_eq(AV_RB32(body(b.data, &tmp[1]) + 4), 3u);
    /* tkhd width/height 16.16, mdhd timescale and language */
    children(b.data, &top[1], 0, tmp, 8);
    children(b.data, &tmp[1], 0, tk, 4);
    cr_assert_eq(AV_RB32(body(b.data, &tk[0]) + 76), 1280u << 16);
    cr_assert_eq(AV_RB32(body(b.data, &tk[0]) + 80), 720u << 16);
    children(b.data, &tk[1], 0, md, 4);
    cr_assert_eq(AV_RB32(body(b.data, &md[0]) + 12), 90000u);
    cr_assert_eq(AV_RB16(body(b.data, &md[0]) + 20), ('d' - 0x60) << 10 | ('e' - 0x60) << 5 | ('u' - 0x60));
    weir_bytes_free(&b);
    avcodec_parameters_free(&par);
}

/* Appending never truncates; a failing call leaves the buffer as it was. */
Test(cmaf, appends_and_rolls_back)
{
    AVCodecParameters *par = par_with(AV_CODEC_ID_H264, avcc, sizeof avcc);
    weir_cmaf_track t = { .par = par, .timescale = 90000 };
    weir_cmaf_sample smp[2] = { { .data = (const uint8_t *)"abcd", .size = 4, .duration = 3000, .key = 1 },
                                { .data = NULL, .size = 4, .duration = 3000 } };
    weir_bytes b = { 0 };
    size_t len;
    uint8_t *copy;

    cr_assert_eq(weir_cmaf_write_init(&t, &b), 0);
    len = b.len;
    cr_assert_eq(weir_cmaf_write_init(&t, &b), 0);
    cr_assert_eq(b.len, 2 * len);
    cr_assert_arr_eq(b.data, b.data + len, len);
    copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    len = b.len;
    cr_assert_eq(weir_cmaf_write_fragment(&t, 1, 0, smp, 2, 1, &b), AVERROR(EINVAL));
    cr_assert_eq(weir_cmaf_write_fragment(&t, 1, 0, smp, 0, 1, &b), AVERROR(EINVAL));
    t.timescale = 0;
    cr_assert_eq(weir_cmaf_write_fragment(&t, 1, 0, smp, 1, 1, &b), AVERROR(EINVAL));
    t.timescale = 90000;
    t.language = "EN";
    cr_assert_eq(weir_cmaf_write_init(&t, &b), AVERROR(EINVAL));
    t.language = NULL;
    par->width = 70000;
    cr_assert_eq(weir_cmaf_write_init(&t, &b), AVERROR(EINVAL));
    par->width = 1280;
    par->extradata[0] = 0;          /* no longer an avcC */
    cr_assert_eq(weir_cmaf_write_fragment(&t, 1, 0, smp, 1, 1, &b), AVERROR(EINVAL));
    cr_assert_eq(weir_cmaf_write_init(&t, &b), AVERROR(EINVAL));
    cr_assert_eq(b.len, len);
    cr_assert_arr_eq(b.data, copy, len);
    par->extradata[0] = 1;
    cr_assert_eq(weir_cmaf_write_fragment(&t, 1, 0, smp, 1, 0, &b), 0);
    cr_assert_arr_eq(b.data, copy, len);
    cr_assert_eq(AV_RB32(b.data + len + 4), T("moof"));
    free(copy);
    weir_bytes_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0u);
    weir_bytes_free(&b);            /* twice is harmless */
    avcodec_parameters_free(&par);
}

/* ---- codec strings ----------------------------------------------------------------- */

Test(cmaf, codec_strings_video)
{
    char buf[64];
    uint8_t h[23];

    cr_assert_str_eq(codec_str(AV_CODEC_ID_H264, avcc, sizeof avcc, buf, sizeof buf), "avc1.64001f");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_HEVC, hvcc_main, sizeof hvcc_main, buf, sizeof buf),
                     "hvc1.1.6.L93.B0");
    /* Main 10, High tier, level 4 (120), compat flag 2 only -> reversed 4 */
    memcpy(h, hvcc_main, sizeof h);
    h[1] = 0x22;
    h[2] = 0x20;
    h[12] = 120;
    cr_assert_str_eq(codec_str(AV_CODEC_ID_HEVC, h, sizeof h, buf, sizeof buf), "hvc1.2.4.H120.B0");
    /* profile space 1 (A), compat 0x70000000 -> E, constraint bytes up to the last non-zero */
    h[1] = 0x41;
    h[2] = 0x70;
    h[8] = 0x01;
    cr_assert_str_eq(codec_str(AV_CODEC_ID_HEVC, h, sizeof h, buf, sizeof buf), "hvc1.A1.E.L120.B0.00.01");
    /* no constraint flags at all: the field is left out */
    memset(h + 6, 0, 6);
    h[1] = 0x01;
    h[2] = 0x60;
    h[12] = 93;
    cr_assert_str_eq(codec_str(AV_CODEC_ID_HEVC, h, sizeof h, buf, sizeof buf), "hvc1.1.6.L93");

    cr_assert_str_eq(codec_str(AV_CODEC_ID_AV1, av1c, sizeof av1c, buf, sizeof buf), "av01.0.08M.08");
    static const uint8_t av1_10[4] = { 0x81, 0x2D, 0xC0, 0x00 };   /* profile 1, 5.1, High, 10 bit */
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AV1, av1_10, 4, buf, sizeof buf), "av01.1.13H.10");
    static const uint8_t av1_12[4] = { 0x81, 0x44, 0x60, 0x00 };   /* profile 2, level 4, 12 bit */
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AV1, av1_12, 4, buf, sizeof buf), "av01.2.04M.12");
}

Test(cmaf, codec_strings_audio)
{
    char buf[32];
    static const uint8_t lc[] = { 0x12, 0x10 };                  /* AOT 2, 44.1 kHz, stereo */
    static const uint8_t he[] = { 0x2B, 0x11, 0x88, 0x00 };      /* AOT 5, 24 -> 48 kHz, then AOT 2 */
    static const uint8_t hev2[] = { 0xEB, 0x09, 0x88, 0x00 };    /* AOT 29 (PS), 24 kHz, mono */
    static const uint8_t usac[] = { 0xF9, 0x46, 0x40 };          /* escape: 31 + 10 = AOT 42 */
    static const uint8_t rate_escape[] = { 0x17, 0x80, 0x1F, 0x40, 0x20 }; /* AOT 2, explicit 16000 Hz */

    cr_assert_str_eq(codec_str(AV_CODEC_ID_AAC, lc, sizeof lc, buf, sizeof buf), "mp4a.40.2");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AAC, he, sizeof he, buf, sizeof buf), "mp4a.40.5");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AAC, hev2, sizeof hev2, buf, sizeof buf), "mp4a.40.29");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AAC, usac, sizeof usac, buf, sizeof buf), "mp4a.40.42");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_AAC, rate_escape, sizeof rate_escape, buf, sizeof buf),
                     "mp4a.40.2");
    cr_assert_str_eq(codec_str(AV_CODEC_ID_OPUS, opushead, sizeof opushead, buf, sizeof buf), "opus");
}

Test(cmaf, codec_string_too_small)
{
    AVCodecParameters *par = par_with(AV_CODEC_ID_H264, avcc, sizeof avcc);
    char buf[12];

    cr_assert_eq(weir_cmaf_codec_string(par, buf, 11), AVERROR(ENOSPC));   /* needs 12 */
    cr_assert_eq(buf[0], '\0');
    cr_assert_eq(weir_cmaf_codec_string(par, buf, 0), AVERROR(ENOSPC));
    cr_assert_eq(weir_cmaf_codec_string(par, buf, 12), 11);
    avcodec_parameters_free(&par);
}

/* ---- malformed extradata -------------------------------------------------------------- */

/* Every proper prefix of a record that needs all its bytes is refused by
 * both entry points, from an exact-size heap copy so ASan sees any overread. */
static void refuse_prefixes(enum AVCodecID id, const uint8_t *p, size_t n, size_t min_ok)
{
    for (size_t k = 0; k < n; k++) {
        AVCodecParameters *par = par_with(id, NULL, 0);
        weir_cmaf_track t = { .par = par, .timescale = 1000 };
        weir_bytes b = { 0 };
        char buf[64];
        int r1, r2;

        if (k) {
            par->extradata = malloc(k);      /* no padding on purpose */
            memcpy(par->extradata, p, k);
            par->extradata_size = (int)k;
        }
        r1 = weir_cmaf_codec_string(par, buf, sizeof buf);
        r2 = weir_cmaf_write_init(&t, &b);
        if (k < min_ok) {
            cr_assert_eq(r1, AVERROR(EINVAL), "codec %d prefix %zu accepted", id, k);
            cr_assert_eq(r2, AVERROR(EINVAL), "codec %d prefix %zu accepted", id, k);
            cr_assert_eq(b.len, 0u);
        }
        free(par->extradata);
        par->extradata = NULL;
        par->extradata_size = 0;
        weir_bytes_free(&b);
        avcodec_parameters_free(&par);
    }
}

Test(cmaf, truncated_records)
{
    refuse_prefixes(AV_CODEC_ID_H264, avcc, sizeof avcc, sizeof avcc);
    refuse_prefixes(AV_CODEC_ID_HEVC, hvcc_main, sizeof hvcc_main, sizeof hvcc_main);
    refuse_prefixes(AV_CODEC_ID_AV1, av1c, sizeof av1c, 4);
    refuse_prefixes(AV_CODEC_ID_OPUS, opushead, sizeof opushead, sizeof opushead);
    static const uint8_t he[] = { 0x2B, 0x11, 0x88, 0x00 };
    refuse_prefixes(AV_CODEC_ID_AAC, he, sizeof he, 3);
    /* an hvcC with one VPS array whose NAL unit runs past the end */
    uint8_t h[23 + 3 + 2 + 4];
    memcpy(h, hvcc_main, 23);
    h[22] = 1;
    h[23] = 0xA0; h[24] = 0; h[25] = 1;     /* VPS, one NAL */
    h[26] = 0; h[27] = 4;
    memset(h + 28, 0x40, 4);
    refuse_prefixes(AV_CODEC_ID_HEVC, h, sizeof h, sizeof h);
}

static int attempt(enum AVCodecID id, const uint8_t *p, size_t n)
{
    AVCodecParameters *par = par_with(id, p, n);
    weir_cmaf_track t = { .par = par, .timescale = 1000 };
    weir_bytes b = { 0 };
    char buf[64];
    int r1 = weir_cmaf_codec_string(par, buf, sizeof buf), r2 = weir_cmaf_write_init(&t, &b);

    cr_assert_eq(r1 < 0, r2 < 0, "codec string %d vs init %d", r1, r2);
    if (r2 < 0)
        cr_assert_eq(b.len, 0u);
    weir_bytes_free(&b);
    avcodec_parameters_free(&par);
    return r2;
}

Test(cmaf, malformed_records)
{
    static const uint8_t annexb[] = { 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40,
                                      0, 0, 0, 1, 0x68, 0xEB, 0xE3, 0xCB };
    static const uint8_t annexb3[] = { 0, 0, 1, 0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60,
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x5D };
    uint8_t a[sizeof avcc];

    for (int id = 0; id < 5; id++) {
        static const enum AVCodecID ids[5] = { AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1,
                                               AV_CODEC_ID_AAC, AV_CODEC_ID_OPUS };
        cr_assert_eq(attempt(ids[id], NULL, 0), AVERROR(EINVAL), "codec %d without extradata", id);
        cr_assert_eq(attempt(ids[id], annexb, sizeof annexb), AVERROR(EINVAL), "codec %d Annex B", id);
    }
    cr_assert_eq(attempt(AV_CODEC_ID_HEVC, annexb3, sizeof annexb3), AVERROR(EINVAL));
    /* SPS count 0; SPS length 0; lengthSizeMinusOne 2; PPS length past the end */
    memcpy(a, avcc, sizeof a);
    a[5] = 0xE0;
    cr_assert_eq(attempt(AV_CODEC_ID_H264, a, sizeof a), AVERROR(EINVAL));
    memcpy(a, avcc, sizeof a);
    a[7] = 0;
    cr_assert_eq(attempt(AV_CODEC_ID_H264, a, sizeof a), AVERROR(EINVAL));
    memcpy(a, avcc, sizeof a);
    a[4] = 0xFE;
    cr_assert_eq(attempt(AV_CODEC_ID_H264, a, sizeof a), AVERROR(EINVAL));
    memcpy(a, avcc, sizeof a);
    a[20] = 0x05;
    cr_assert_eq(attempt(AV_CODEC_ID_H264, a, sizeof a), AVERROR(EINVAL));
    cr_assert_eq(attempt(AV_CODEC_ID_H264, avcc, sizeof avcc), 0);
    /* av1C marker / version */
    uint8_t v[4] = { 0x01, 0x08, 0x0C, 0x00 };
    cr_assert_eq(attempt(AV_CODEC_ID_AV1, v, 4), AVERROR(EINVAL));
    v[0] = 0x82;
    cr_assert_eq(attempt(AV_CODEC_ID_AV1, v, 4), AVERROR(EINVAL));
    /* ASC: AOT 0, reserved sampling index 13 */
    static const uint8_t aot0[] = { 0x00, 0x10 }, idx13[] = { 0x16, 0x90 };
    cr_assert_eq(attempt(AV_CODEC_ID_AAC, aot0, 2), AVERROR(EINVAL));
    cr_assert_eq(attempt(AV_CODEC_ID_AAC, idx13, 2), AVERROR(EINVAL));
    /* OpusHead: wrong magic, major version 1, family 1 without its table, 0 channels */
    uint8_t o[sizeof opushead];
    memcpy(o, opushead, sizeof o);
    o[0] = 'o';
    cr_assert_eq(attempt(AV_CODEC_ID_OPUS, o, sizeof o), AVERROR(EINVAL));
    memcpy(o, opushead, sizeof o);
    o[8] = 0x10;
    cr_assert_eq(attempt(AV_CODEC_ID_OPUS, o, sizeof o), AVERROR(EINVAL));
    memcpy(o, opushead, sizeof o);
    o[18] = 1;
    cr_assert_eq(attempt(AV_CODEC_ID_OPUS, o, sizeof o), AVERROR(EINVAL));
    memcpy(o, opushead, sizeof o);
    o[9] = 0;
    cr_assert_eq(attempt(AV_CODEC_ID_OPUS, o, sizeof o), AVERROR(EINVAL));
    /* a codec this writer does not package */
    cr_assert_eq(attempt(AV_CODEC_ID_MP3, (const uint8_t *)"\x12\x10", 2), AVERROR(EINVAL));
}
