/*
 * Unit tests for control/uploads/store: the upload rows' states on a real
 * SQLite file — offsets that only advance from where they are, single-use
 * URLs spent once, expiry, claims with leases (a lapsed one is retaken, a
 * stale owner cannot finish), and deletes refused while processing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "control/uploads/uploads.h"

static char dir[] = "/tmp/weir-upstore-XXXXXX";
static weir_dbpool *db;
static weir_dbpool_settings settings = {
    .url = "", .min_idle = 1, .max_size = 4, .acquire_timeout = 5000,
    .idle_timeout = 600000, .max_lifetime = 1800000, .validation_timeout = 5000,
};

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(weir_control_open_db(&settings, dir, &db), 0);
}

static void teardown(void)
{
    char cmd[128];
    weir_dbpool_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(upload_store, .init = setup, .fini = teardown);

static weir_upload_row make(const char *id, int64_t length, int64_t expires_at)
{
    weir_upload_row r = { .length = length, .expires_at = expires_at };
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.name, sizeof r.name, "clip");
    return r;
}

Test(upload_store, offsets_advance_only_from_where_they_are)
{
    weir_upload_row r = make("AAAAAAAAAAAAAAAAAAAAAA", 100, 10000), got;
    int queued = -1;

    cr_assert_eq(weir_upload_store_create(db, &r, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_get(db, r.id, &got), 0);
    cr_assert_str_eq(got.state, "uploading");
    cr_assert_eq(got.received, 0);
    cr_assert_str_eq(got.name, "clip");

    cr_assert_eq(weir_upload_store_advance(db, r.id, 0, 40, 1100, 20000, &queued), 0);
    cr_assert_eq(queued, 0);
    /* A stale writer (from 0 again) loses; so does one past the length. */
    cr_assert_eq(weir_upload_store_advance(db, r.id, 0, 50, 1200, 20000, &queued),
                 AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_advance(db, r.id, 40, 101, 1200, 20000, &queued),
                 AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_advance(db, r.id, 40, 100, 1300, 20000, &queued), 0);
    cr_assert_eq(queued, 1);
    cr_assert_eq(weir_upload_store_get(db, r.id, &got), 0);
    cr_assert_str_eq(got.state, "queued");
    cr_assert_eq(got.received, 100);
    cr_assert_eq(got.expires_at, 20000);
    cr_assert_eq(weir_upload_store_get(db, "nosuch", &got), AVERROR(ENOENT));
}

Test(upload_store, a_single_use_url_creates_one_upload)
{
    char token[WEIR_CRED_LEN + 1], id[9], bound[WEIR_UPLOAD_ID_LEN + 1];
    weir_upload_row a = make("BBBBBBBBBBBBBBBBBBBBBB", 10, 10000);
    weir_upload_row b = make("CCCCCCCCCCCCCCCCCCCCCC", 10, 10000);

    cr_assert_eq(weir_upload_store_url_create(db, "partner", 1000, 5000, token, id), 0);
    cr_assert(strncmp(token, "wu_", 3) == 0);
    cr_assert_eq(weir_upload_store_url_check(db, token, bound), 0);
    cr_assert_str_eq(bound, "");
    cr_assert_eq(weir_upload_store_create(db, &a, token, 2000), 0);
    cr_assert_str_eq(a.url_id, id);
    cr_assert_eq(weir_upload_store_url_check(db, token, bound), 0);
    cr_assert_str_eq(bound, a.id);
    /* Spent: the second upload is refused and not created. */
    cr_assert_eq(weir_upload_store_create(db, &b, token, 2100), AVERROR(EEXIST));
    cr_assert_eq(weir_upload_store_get(db, b.id, &b), AVERROR(ENOENT));

    /* Unknown, tampered and expired URLs. */
    char forged[WEIR_CRED_LEN + 1];
    memcpy(forged, token, sizeof forged);
    forged[WEIR_CRED_LEN - 1] = forged[WEIR_CRED_LEN - 1] == 'A' ? 'B' : 'A';
    cr_assert_eq(weir_upload_store_url_check(db, forged, bound), AVERROR(EACCES));
    cr_assert_eq(weir_upload_store_url_check(db, "wt_nope", bound), AVERROR(EACCES));
    cr_assert_eq(weir_upload_store_url_create(db, NULL, 1000, 5000, token, id), 0);
    cr_assert_eq(weir_upload_store_create(db, &b, token, 5000), AVERROR(EACCES));
}

Test(upload_store, idle_uploads_expire_but_not_busy_ones)
{
    weir_upload_row a = make("DDDDDDDDDDDDDDDDDDDDDD", 10, 5000);
    weir_upload_row b = make("EEEEEEEEEEEEEEEEEEEEEE", 10, 5000);
    weir_upload_row c = make("FFFFFFFFFFFFFFFFFFFFFF", 10, 9000);
    char busy[1][WEIR_UPLOAD_ID_LEN + 1] = { "EEEEEEEEEEEEEEEEEEEEEE" };
    char (*ids)[WEIR_UPLOAD_ID_LEN + 1];
    size_t n;
    weir_upload_row got;

    cr_assert_eq(weir_upload_store_create(db, &a, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_create(db, &b, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_create(db, &c, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_expire(db, 6000, busy, 1, &ids, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], a.id);
    free(ids);
    cr_assert_eq(weir_upload_store_get(db, a.id, &got), 0);
    cr_assert_str_eq(got.state, "expired");
    cr_assert_eq(weir_upload_store_get(db, c.id, &got), 0);
    cr_assert_str_eq(got.state, "uploading");
    /* An expired upload takes no more bytes. */
    int queued;
    cr_assert_eq(weir_upload_store_advance(db, a.id, 0, 5, 7000, 20000, &queued),
                 AVERROR(ENOENT));
}

Test(upload_store, claims_leases_and_deletes)
{
    weir_upload_row a = make("GGGGGGGGGGGGGGGGGGGGGG", 10, 99999), got;
    int queued;

    cr_assert_eq(weir_upload_store_claim(db, "node1", 1000, 100, &got), 0, "nothing queued");
    cr_assert_eq(weir_upload_store_create(db, &a, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_advance(db, a.id, 0, 10, 1000, 99999, &queued), 0);
    cr_assert_eq(weir_upload_store_claim(db, "node1", 2000, 100, &got), 1);
    cr_assert_str_eq(got.id, a.id);
    cr_assert_eq(got.attempts, 1);
    cr_assert_str_eq(got.state, "processing");
    /* Held: nobody else gets it, and it cannot be deleted. */
    cr_assert_eq(weir_upload_store_claim(db, "node2", 2050, 100, &got), 0);
    cr_assert_eq(weir_upload_store_delete(db, a.id, 2050), AVERROR(EBUSY));
    cr_assert_eq(weir_upload_store_renew(db, a.id, "node1", 2200), 0);
    cr_assert_eq(weir_upload_store_claim(db, "node2", 2150, 100, &got), 0);
    /* node1 goes silent: once the lease lapses node2 takes over... */
    cr_assert_eq(weir_upload_store_claim(db, "node2", 2200, 100, &got), 1);
    cr_assert_eq(got.attempts, 2);
    /* ...and node1's late result does not count. */
    cr_assert_eq(weir_upload_store_renew(db, a.id, "node1", 9000), AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_finish(db, a.id, "node1", "ready", NULL, 2300),
                 AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_finish(db, a.id, "node2", "failed", "not media", 2300), 0);
    cr_assert_eq(weir_upload_store_get(db, a.id, &got), 0);
    cr_assert_str_eq(got.state, "failed");
    cr_assert_eq(weir_upload_store_claim(db, "node2", 99999, 100, &got), 0, "done is done");

    cr_assert_eq(weir_upload_store_delete(db, a.id, 3000), 0);
    cr_assert_eq(weir_upload_store_get(db, a.id, &got), 0);
    cr_assert_str_eq(got.state, "deleted");
    cr_assert_eq(weir_upload_store_delete(db, a.id, 3000), AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_delete(db, "nosuch", 3000), AVERROR(ENOENT));
}

Test(upload_store, a_released_job_is_queued_again_and_that_claim_does_not_count)
{
    weir_upload_row a = make("HHHHHHHHHHHHHHHHHHHHHH", 10, 99999), got;
    int queued;

    cr_assert_eq(weir_upload_store_create(db, &a, NULL, 1000), 0);
    cr_assert_eq(weir_upload_store_advance(db, a.id, 0, 10, 1000, 99999, &queued), 0);
    cr_assert_eq(weir_upload_store_claim(db, "node1", 2000, 60000, &got), 1);
    cr_assert_eq(got.attempts, 1);
    /* Only the lease's owner hands it back, and only while processing. */
    cr_assert_eq(weir_upload_store_release(db, a.id, "node2", 2100), AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_release(db, a.id, "node1", 2100), 0);
    cr_assert_eq(weir_upload_store_release(db, a.id, "node1", 2100), AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_get(db, a.id, &got), 0);
    cr_assert_str_eq(got.state, "queued");
    cr_assert_eq(got.attempts, 0);
    /* Taken at once, long before the old lease would have lapsed. */
    cr_assert_eq(weir_upload_store_claim(db, "node2", 2200, 60000, &got), 1);
    cr_assert_str_eq(got.id, a.id);
    cr_assert_eq(got.attempts, 1);
    cr_assert_eq(weir_upload_store_finish(db, a.id, "node1", "ready", NULL, 2300),
                 AVERROR(ENOENT));
    cr_assert_eq(weir_upload_store_finish(db, a.id, "node2", "ready", NULL, 2300), 0);
}
