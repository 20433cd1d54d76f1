/*
 * Unit tests for the recordings' retention (control/assets/retention.h):
 * the selection alone (sizes, ages, busy flags -> which go, and why), then
 * one sweep over a real vod folder, with its files, metrics and the
 * recordings and uploads it must leave alone.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control/assets/assets.h"
#include "control/assets/retention.h"

#define MIN_MS 60000LL
#define NOW_MS 1800000000000LL       /* 2027-01-15, any fixed instant */

static weir_retention_item item(const char *id, int64_t age_ms, int64_t bytes, int busy)
{
    weir_retention_item it = { .ended_unix_ms = NOW_MS - age_ms, .bytes = bytes, .busy = busy };
    snprintf(it.id, sizeof it.id, "%s", id);
    return it;
}

/* The reason select gave the item named id. */
static weir_retention_reason reason_of(const weir_retention_item *items, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].id, id) == 0)
            return items[i].reason;
    cr_assert_fail("no item %s", id);
    return WEIR_RETENTION_KEEP;
}

Test(retention_select, no_limits_keep_everything)
{
    weir_retention_item it[] = { item("a", 1000 * MIN_MS, 5000, 0), item("b", MIN_MS, 7000, 0) };
    int64_t kept = -1;

    cr_assert_eq(weir_retention_select(it, 2, NOW_MS, 0, 0, &kept), 0);
    cr_assert_eq(kept, 12000);
    cr_assert_eq(it[0].reason, WEIR_RETENTION_KEEP);
    cr_assert_eq(it[1].reason, WEIR_RETENTION_KEEP);
}

Test(retention_select, age_takes_only_the_older_ones)
{
    weir_retention_item it[] = {
        item("new", 5 * MIN_MS, 100, 0), item("old", 90 * MIN_MS, 100, 0),
        item("edge", 60 * MIN_MS, 100, 0), item("older", 120 * MIN_MS, 100, 0),
    };
    int64_t kept;

    cr_assert_eq(weir_retention_select(it, 4, NOW_MS, 60 * MIN_MS, 0, &kept), 2);
    /* Sorted oldest first. */
    cr_assert_str_eq(it[0].id, "older");
    cr_assert_str_eq(it[3].id, "new");
    cr_assert_eq(reason_of(it, 4, "older"), WEIR_RETENTION_AGE);
    cr_assert_eq(reason_of(it, 4, "old"), WEIR_RETENTION_AGE);
    cr_assert_eq(reason_of(it, 4, "edge"), WEIR_RETENTION_KEEP);    /* exactly max_age: kept */
    cr_assert_eq(reason_of(it, 4, "new"), WEIR_RETENTION_KEEP);
    cr_assert_eq(kept, 200);
}

Test(retention_select, bytes_removes_oldest_first_until_it_fits)
{
    weir_retention_item it[] = {
        item("c", 10 * MIN_MS, 400, 0), item("a", 30 * MIN_MS, 300, 0),
        item("d", 1 * MIN_MS, 500, 0), item("b", 20 * MIN_MS, 200, 0),
    };
    int64_t kept;

    /* 1400 in all, 900 allowed: a (300) is not enough, a + b (500) is. */
    cr_assert_eq(weir_retention_select(it, 4, NOW_MS, 0, 900, &kept), 2);
    cr_assert_eq(reason_of(it, 4, "a"), WEIR_RETENTION_BYTES);
    cr_assert_eq(reason_of(it, 4, "b"), WEIR_RETENTION_BYTES);
    cr_assert_eq(reason_of(it, 4, "c"), WEIR_RETENTION_KEEP);
    cr_assert_eq(reason_of(it, 4, "d"), WEIR_RETENTION_KEEP);
    cr_assert_eq(kept, 900);
}

Test(retention_select, busy_ones_stay_but_count)
{
    weir_retention_item it[] = {
        item("dvr", 300 * MIN_MS, 1000, 1), item("old", 200 * MIN_MS, 100, 0),
        item("live", 0, 800, 1), item("mid", 50 * MIN_MS, 100, 0),
    };
    int64_t kept;

    /* Age takes "old" only (the older "dvr" is busy); bytes then takes
     * "mid", and can do no more: the busy ones alone are over the limit. */
    cr_assert_eq(weir_retention_select(it, 4, NOW_MS, 100 * MIN_MS, 1000, &kept), 2);
    cr_assert_eq(reason_of(it, 4, "dvr"), WEIR_RETENTION_KEEP);
    cr_assert_eq(reason_of(it, 4, "live"), WEIR_RETENTION_KEEP);
    cr_assert_eq(reason_of(it, 4, "old"), WEIR_RETENTION_AGE);
    cr_assert_eq(reason_of(it, 4, "mid"), WEIR_RETENTION_BYTES);
    cr_assert_eq(kept, 1800);
}

Test(retention_select, age_first_then_bytes_on_what_is_left)
{
    weir_retention_item it[] = {
        item("a", 100 * MIN_MS, 500, 0), item("b", 40 * MIN_MS, 500, 0),
        item("c", 30 * MIN_MS, 500, 0), item("d", 10 * MIN_MS, 500, 0),
    };
    int64_t kept;

    /* "a" goes for its age, which leaves 1500: "b" goes for bytes. */
    cr_assert_eq(weir_retention_select(it, 4, NOW_MS, 60 * MIN_MS, 1000, &kept), 2);
    cr_assert_eq(reason_of(it, 4, "a"), WEIR_RETENTION_AGE);
    cr_assert_eq(reason_of(it, 4, "b"), WEIR_RETENTION_BYTES);
    cr_assert_eq(reason_of(it, 4, "c"), WEIR_RETENTION_KEEP);
    cr_assert_eq(kept, 1000);
    cr_assert_str_eq(weir_retention_reason_name(WEIR_RETENTION_AGE), "age");
    cr_assert_str_eq(weir_retention_reason_name(WEIR_RETENTION_BYTES), "bytes");
}

Test(retention_select, equal_times_order_by_id)
{
    weir_retention_item it[] = { item("y", MIN_MS, 10, 0), item("x", MIN_MS, 10, 0) };

    cr_assert_eq(weir_retention_select(it, 2, NOW_MS, 0, 15, NULL), 1);
    cr_assert_eq(reason_of(it, 2, "x"), WEIR_RETENTION_BYTES);
    cr_assert_eq(reason_of(it, 2, "y"), WEIR_RETENTION_KEEP);
    cr_assert_eq(weir_retention_select(NULL, 0, NOW_MS, MIN_MS, 1, NULL), 0);
}

/* ---- a sweep over a real folder ---------------------------------------------- */

static char dir[] = "/tmp/weir-retention-XXXXXX";

static void write_file(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', f);
    fclose(f);
}

/* An asset folder with asset.json (its mtime age_s ago) and one segment of
 * seg bytes; with ts, a ts/ folder holding another. */
static void make_asset(const char *id, const char *source, const char *state, int64_t age_s,
                       size_t seg, int ts)
{
    char path[512];
    json_t *o = json_pack("{ss ss ss}", "id", id, "source", source, "state", state);
    struct timespec times[2];

    cr_assert_eq(weir_assets_write(dir, id, o), 0);
    json_decref(o);
    snprintf(path, sizeof path, "%s/%s/v0_1.m4s", dir, id);
    write_file(path, seg);
    if (ts) {
        snprintf(path, sizeof path, "%s/%s/ts", dir, id);
        cr_assert_eq(mkdir(path, 0750), 0);
        snprintf(path, sizeof path, "%s/%s/ts/v0_1.ts", dir, id);
        write_file(path, seg);
    }
    snprintf(path, sizeof path, "%s/%s/asset.json", dir, id);
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= age_s;
    times[1] = times[0];
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

static int exists(const char *id)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, id);
    return stat(path, &st) == 0;
}

static int64_t asset_json_size(const char *id)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/asset.json", dir, id);
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

static double sample(weir_metrics *m, const char *needle)
{
    char *text, *at;
    size_t len;
    double v = -1;

    cr_assert_eq(weir_metrics_render(m, &text, &len), 0);
    if ((at = strstr(text, needle)))
        v = strtod(at + strlen(needle), NULL);
    free(text);
    return v;
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(retention_sweep, deletes_old_and_over_size_recordings_only, .fini = cleanup)
{
    weir_metrics *m = weir_metrics_new();
    weir_retention *r;
    json_t *in_use = json_pack("[s]", "cam-dvr");

    cr_assert_not_null(mkdtemp(dir));
    make_asset("cam-old", "live", "ready", 7200, 1000, 1);       /* past max_age */
    make_asset("cam-dvr", "live", "ready", 9000, 1000, 0);       /* older, but in use */
    make_asset("cam-mid", "live", "failed", 600, 3000, 0);       /* goes for bytes */
    make_asset("cam-new", "live", "ready", 60, 3000, 0);
    make_asset("cam-live", "live", "recording", 10, 3000, 0);    /* being written */
    make_asset("upload1", "upload", "ready", 99999, 50000, 0);   /* never */
    cr_assert_eq(weir_retention_new(&(weir_retention_opts){
        .metrics = m, .vod_dir = dir, .max_age = 3600 * 1000LL, .max_bytes = 9000,
        .interval = 1000 }, &r), 0);

    weir_retention_sweep(r, in_use);
    cr_assert_not(exists("cam-old"));
    cr_assert_not(exists("cam-mid"));
    cr_assert(exists("cam-dvr"));
    cr_assert(exists("cam-new"));
    cr_assert(exists("cam-live"));
    cr_assert(exists("upload1"));
    cr_assert_eq(sample(m, "weir_recordings_expired_total{reason=\"age\"} "), 1);
    cr_assert_eq(sample(m, "weir_recordings_expired_total{reason=\"bytes\"} "), 1);
    int64_t left = 7000 + asset_json_size("cam-dvr") + asset_json_size("cam-new") +
                   asset_json_size("cam-live");
    cr_assert_eq(sample(m, "\nweir_recordings_bytes "), (double)left);

    /* Nothing more to do: the counters stay, the measure stays. */
    weir_retention_sweep(r, in_use);
    cr_assert_eq(sample(m, "weir_recordings_expired_total{reason=\"age\"} "), 1);
    cr_assert_eq(sample(m, "\nweir_recordings_bytes "), (double)left);

    /* No longer in use: the DVR's recording goes too (the oldest, by age). */
    weir_retention_sweep(r, NULL);
    cr_assert_not(exists("cam-dvr"));
    cr_assert(exists("cam-new"));
    cr_assert_eq(sample(m, "weir_recordings_expired_total{reason=\"age\"} "), 2);

    json_decref(in_use);
    weir_retention_free(r);
    weir_metrics_free(m);
}

Test(retention_sweep, no_folder_is_nothing_to_do, .fini = cleanup)
{
    char missing[600];
    weir_metrics *m = weir_metrics_new();
    weir_retention *r;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(missing, sizeof missing, "%s/vod", dir);
    cr_assert_eq(weir_retention_new(&(weir_retention_opts){
        .metrics = m, .vod_dir = missing, .max_bytes = 1, .interval = 1000 }, &r), 0);
    weir_retention_sweep(r, NULL);
    cr_assert_eq(sample(m, "\nweir_recordings_bytes "), 0);
    weir_retention_free(r);
    weir_metrics_free(m);
}
