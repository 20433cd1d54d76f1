/*
 * Unit tests: packager/record — a presentation's recording tells its
 * on_asset listener about each asset.json once it is on disk: asset.created
 * (state "recording") first, asset.state ("ready") at the end, each with
 * the object the file holds; a write that failed tells nothing.
 *
 * Without a work pool every file is written on the calling thread, so the
 * events arrive before the calls return.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libavformat/avformat.h>

#include "packager/pres.h"
#include "clip.h"

#define T0 1764400000000LL      /* a fixed "now" in Unix ms */

static const weir_packager_settings settings_1s = {
    .segment_duration = 1000, .part_duration = 500, .window = 3, .record = 1,
};

typedef struct heard {
    int n;
    char type[4][32];
    json_t *asset[4];
} heard;

static void on_asset(void *arg, const char *type, const json_t *asset)
{
    heard *h = arg;
    cr_assert_lt(h->n, 4);
    snprintf(h->type[h->n], sizeof h->type[0], "%s", type);
    h->asset[h->n++] = json_deep_copy(asset);
}

static void heard_free(heard *h)
{
    for (int i = 0; i < h->n; i++)
        json_decref(h->asset[i]);
}

/* A 2 s clip, fed as it would arrive live from T0, recorded into dir. */
static pkg_pres *record(clip *c, const char *dir, heard *h)
{
    const AVCodecParameters *pars[8];
    AVRational tbs[8];
    AVPacket *pkt = av_packet_alloc();
    int n = (int)c->fmt->nb_streams;
    pkg_pres *p = NULL;

    for (int i = 0; i < n; i++) {
        pars[i] = c->fmt->streams[i]->codecpar;
        tbs[i] = c->fmt->streams[i]->time_base;
    }
    cr_assert_eq(pres_new("cam1", &settings_1s, pars, tbs, n, T0, 1, &p), 0);
    p->on_asset = on_asset;
    p->asset_arg = h;
    cr_assert_eq(rec_start(p, dir, "cam1-1764400000000", NULL, NULL), 0);
    while (av_read_frame(c->fmt, pkt) == 0) {
        int64_t now = T0 + av_rescale_q(pkt->dts, c->fmt->streams[pkt->stream_index]->time_base,
                                        (AVRational){ 1, 1000 });
        cr_assert_eq(pres_packet(p, pkt, now), 0);
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    cr_assert_eq(pres_end(p, T0 + 3000), 0);
    return p;
}

Test(record, asset_events_follow_asset_json)
{
    char dir[] = "/tmp/weir-rec-XXXXXX", rec[64], path[96], cmd[128];
    heard h = { 0 };
    clip c;
    json_t *disk;

    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000",
              "-t 2 -c:v libx264 -g 25 -c:a aac");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(rec, sizeof rec, "%s/cam1-1764400000000", dir);
    pres_free(record(&c, rec, &h));

    cr_assert_eq(h.n, 2);
    cr_assert_str_eq(h.type[0], "asset.created");
    cr_assert_str_eq(json_string_value(json_object_get(h.asset[0], "state")), "recording");
    cr_assert_str_eq(json_string_value(json_object_get(h.asset[0], "source")), "live");
    cr_assert_str_eq(json_string_value(json_object_get(h.asset[0], "id")), "cam1-1764400000000");
    cr_assert_str_eq(h.type[1], "asset.state");
    cr_assert_str_eq(json_string_value(json_object_get(h.asset[1], "state")), "ready");
    cr_assert_gt(json_real_value(json_object_get(h.asset[1], "duration_s")), 1.5);
    /* What the listener heard last is what GET /api/v1/assets/ID reads. */
    snprintf(path, sizeof path, "%s/asset.json", rec);
    cr_assert_not_null(disk = json_load_file(path, 0, NULL));
    cr_assert(json_equal(disk, h.asset[1]));
    json_decref(disk);

    heard_free(&h);
    clip_free(&c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(record, a_failed_write_tells_nothing)
{
    char dir[] = "/tmp/weir-rec-XXXXXX", rec[96], cmd[128];
    heard h = { 0 };
    clip c;
    FILE *f;

    clip_make(&c, "-f lavfi -i testsrc=size=160x120:rate=25", "-t 2 -c:v libx264 -g 25");
    cr_assert_not_null(mkdtemp(dir));
    /* A file where the recording's parent folder should be: no write can work. */
    snprintf(rec, sizeof rec, "%s/blocked", dir);
    cr_assert_not_null(f = fopen(rec, "w"));
    fclose(f);
    snprintf(rec, sizeof rec, "%s/blocked/cam1-1764400000000", dir);
    pres_free(record(&c, rec, &h));
    cr_assert_eq(h.n, 0);

    heard_free(&h);
    clip_free(&c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
