/*
 * Unit tests for control/dbpool on a real SQLite file: the connection set-up
 * (WAL, foreign keys, synchronous), the weir_db_* calls and error mapping,
 * transactions across connections, and migrations.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "core/core.h"
#include "control/dbpool/dbpool.h"

static char dir[64];
static char url[128];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/weir-db-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(url, sizeof url, "sqlite:%s/weir.db", dir);
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(sqlite, .init = mkdir_tmp, .fini = rm_tmp);

static weir_dbpool_settings settings = {
    .url = "", .min_idle = 2, .max_size = 4, .acquire_timeout = 5000,
    .idle_timeout = 600000, .max_lifetime = 1800000, .validation_timeout = 5000,
};

static int open_with(const weir_db_migration *m, size_t n, weir_dbpool **p)
{
    return weir_dbpool_open(&(weir_dbpool_opts){ .url = url, .settings = &settings,
                                                 .migrations = m, .nmigrations = n,
                                                 .housekeep_ms = -1 }, p);
}

static weir_dbpool *open_pool(const weir_db_migration *m, size_t n)
{
    weir_dbpool *p = NULL;
    int r = open_with(m, n, &p);
    cr_assert_eq(r, 0, "open %s: %d", url, r);
    return p;
}

/* The first column of the first row of sql, as text ("" for no row). */
static const char *query1(weir_db *db, const char *sql, char *buf, size_t cap)
{
    weir_db_stmt *st;
    int r;

    buf[0] = '\0';
    cr_assert_eq(weir_db_prepare(db, sql, &st), 0, "%s: %s", sql, weir_db_errmsg(db));
    r = weir_db_step(st);
    cr_assert_geq(r, 0, "%s: %s", sql, weir_db_errmsg(db));
    if (r == 1 && weir_db_col_text(st, 0))
        snprintf(buf, cap, "%s", weir_db_col_text(st, 0));
    weir_db_finalize(st);
    return buf;
}

static int64_t count(weir_db *db, const char *table)
{
    char sql[128], buf[32];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
    return atoll(query1(db, sql, buf, sizeof buf));
}

static const weir_db_migration people[] = {
    { 1, "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, photo BLOB)" },
};

Test(sqlite, connections_use_wal_foreign_keys_and_synchronous_normal)
{
    weir_dbpool *p = open_pool(NULL, 0);
    weir_db *db;
    char buf[64];

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_str_eq(query1(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    cr_assert_str_eq(query1(db, "PRAGMA foreign_keys", buf, sizeof buf), "1");
    cr_assert_str_eq(query1(db, "PRAGMA synchronous", buf, sizeof buf), "1");   /* NORMAL */
    cr_assert_str_eq(query1(db, "PRAGMA busy_timeout", buf, sizeof buf), "5000");
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, unique_and_primary_key_violations_are_eexist)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *db;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (id, name) VALUES (1, 'ada')"), 0);
    cr_assert_eq(weir_db_changes(db), 1);
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (id, name) VALUES (2, 'ada')"),
                 AVERROR(EEXIST));
    cr_assert(strstr(weir_db_errmsg(db), "UNIQUE"), "%s", weir_db_errmsg(db));
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (id, name) VALUES (1, 'bob')"),
                 AVERROR(EEXIST));

    weir_db_stmt *st;
    cr_assert_eq(weir_db_prepare(db, "INSERT INTO people (name) VALUES ($1)", &st), 0);
    cr_assert_eq(weir_db_bind_text(st, 1, "ada"), 0);
    cr_assert_eq(weir_db_step(st), AVERROR(EEXIST));
    /* The statement is usable again after the error. */
    cr_assert_eq(weir_db_bind_text(st, 1, "cy"), 0);
    cr_assert_eq(weir_db_step(st), 0);
    weir_db_finalize(st);
    /* Other constraints are not EEXIST. */
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (id) VALUES (9)"), AVERROR(EINVAL));
    cr_assert_eq(count(db, "people"), 2);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, parameters_values_and_errors)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *db;
    weir_db_stmt *st;
    const unsigned char photo[] = { 0, 1, 2, 0xff, 0 };
    const void *blob;
    size_t len;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    /* $2 before $1, and $1 twice: bound by number, not position. */
    cr_assert_eq(weir_db_prepare(db, "INSERT INTO people (photo, id, name)"
                                     " VALUES ($2, $1, 'n' || $1)", &st), 0);
    cr_assert_eq(weir_db_bind_int64(st, 1, 7), 0);
    cr_assert_eq(weir_db_bind_blob(st, 2, photo, sizeof photo), 0);
    cr_assert_eq(weir_db_bind_int64(st, 3, 1), AVERROR(EINVAL));
    cr_assert(strstr(weir_db_errmsg(db), "$3"), "%s", weir_db_errmsg(db));
    cr_assert_eq(weir_db_step(st), 0);
    cr_assert_eq(weir_db_changes(db), 1);
    /* Re-run with other values: a zero-length blob, then SQL NULL. */
    cr_assert_eq(weir_db_bind_int64(st, 1, 8), 0);
    cr_assert_eq(weir_db_bind_blob(st, 2, NULL, 0), 0);
    cr_assert_eq(weir_db_step(st), 0);
    cr_assert_eq(weir_db_bind_int64(st, 1, 9), 0);
    cr_assert_eq(weir_db_bind_text(st, 2, NULL), 0);
    cr_assert_eq(weir_db_step(st), 0);
    weir_db_finalize(st);

    cr_assert_eq(weir_db_prepare(db, "SELECT id, name, photo FROM people ORDER BY id", &st), 0);
    cr_assert_eq(weir_db_step(st), 1);
    cr_assert_eq(weir_db_col_int64(st, 0), 7);
    cr_assert_str_eq(weir_db_col_text(st, 1), "n7");
    blob = weir_db_col_blob(st, 2, &len);
    cr_assert_eq(len, sizeof photo);
    cr_assert_eq(memcmp(blob, photo, len), 0);
    cr_assert_eq(weir_db_step(st), 1);
    blob = weir_db_col_blob(st, 2, &len);
    cr_assert_not_null(blob, "zero-length blob is not NULL");
    cr_assert_eq(len, 0);
    cr_assert_eq(weir_db_col_is_null(st, 2), 0);
    cr_assert_eq(weir_db_step(st), 1);
    cr_assert(weir_db_col_is_null(st, 2));
    cr_assert_null(weir_db_col_blob(st, 2, &len));
    cr_assert_null(weir_db_col_text(st, 2));
    cr_assert_eq(weir_db_step(st), 0);
    weir_db_finalize(st);
    weir_db_finalize(NULL);

    cr_assert_eq(weir_db_prepare(db, "SELEC 1", &st), AVERROR(EINVAL));
    cr_assert_null(st);
    cr_assert(strstr(weir_db_errmsg(db), "syntax"), "%s", weir_db_errmsg(db));
    cr_assert_eq(weir_db_prepare(db, "", &st), AVERROR(EINVAL));
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, two_connections_see_each_others_commits)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *a, *b;

    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &b), 0);
    cr_assert_neq(a, b);
    cr_assert_eq(weir_db_exec(a, "INSERT INTO people (name) VALUES ('ada')"), 0);
    cr_assert_eq(count(b, "people"), 1);

    cr_assert_eq(weir_db_begin(b), 0);
    cr_assert_eq(weir_db_exec(b, "INSERT INTO people (name) VALUES ('bob')"), 0);
    cr_assert_eq(count(a, "people"), 1, "uncommitted row visible");
    cr_assert_eq(weir_db_commit(b), 0);
    cr_assert_eq(count(a, "people"), 2);

    cr_assert_eq(weir_db_begin(a), 0);
    cr_assert_eq(weir_db_exec(a, "DELETE FROM people"), 0);
    cr_assert_eq(weir_db_changes(a), 2);
    cr_assert_eq(weir_db_rollback(a), 0);
    cr_assert_eq(count(b, "people"), 2);
    weir_dbpool_release(p, a);
    weir_dbpool_release(p, b);
    weir_dbpool_close(p);
}

Test(sqlite, writer_held_past_the_busy_timeout_is_ebusy)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *a, *b;
    int64_t t0;

    cr_assert_eq(weir_dbpool_acquire(p, &a), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &b), 0);
    cr_assert_eq(weir_db_exec(b, "PRAGMA busy_timeout = 100"), 0);   /* not 5 s here */
    cr_assert_eq(weir_db_begin(a), 0);
    t0 = weir_clock_mono_us();
    cr_assert_eq(weir_db_begin(b), AVERROR(EBUSY));
    cr_assert_geq(weir_clock_mono_us() - t0, 100000);
    cr_assert_eq(weir_db_commit(a), 0);
    cr_assert_eq(weir_db_begin(b), 0);
    cr_assert_eq(weir_db_commit(b), 0);
    weir_dbpool_evict(p, b);        /* its busy timeout was changed */
    weir_dbpool_release(p, a);
    weir_dbpool_close(p);
}

Test(sqlite, release_inside_a_transaction_rolls_back)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *db, *again;

    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(weir_db_begin(db), 0);
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (name) VALUES ('ada')"), 0);
    weir_dbpool_release(p, db);
    cr_assert_eq(weir_dbpool_acquire(p, &again), 0);
    cr_assert_eq(again, db, "most recently used first");
    cr_assert_eq(count(again, "people"), 0);
    cr_assert_eq(weir_db_begin(again), 0, "not left inside a transaction");
    cr_assert_eq(weir_db_commit(again), 0);
    weir_dbpool_release(p, again);
    weir_dbpool_close(p);
}

/* Writers on several threads: the busy timeout serialises them, none fails. */
typedef struct writer {
    weir_dbpool *p;
    int id, errors;
} writer;

static void *write_rows(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < 100; i++) {
        weir_db *db;
        weir_db_stmt *st = NULL;
        char name[32];
        int r = weir_dbpool_acquire(w->p, &db);
        if (r < 0) {
            w->errors++;
            continue;
        }
        snprintf(name, sizeof name, "w%d-%d", w->id, i);
        if ((r = weir_db_begin(db)) == 0 &&
            (r = weir_db_prepare(db, "INSERT INTO people (name) VALUES ($1)", &st)) == 0 &&
            (r = weir_db_bind_text(st, 1, name)) == 0 &&
            (r = weir_db_step(st)) == 0) {
            weir_db_finalize(st);
            st = NULL;
            r = weir_db_commit(db);
        }
        weir_db_finalize(st);
        if (r < 0) {
            w->errors++;
            weir_db_rollback(db);
        }
        weir_dbpool_release(w->p, db);
    }
    return NULL;
}

Test(sqlite, concurrent_writers_all_commit)
{
    weir_dbpool *p = open_pool(people, 1);
    pthread_t th[4];
    writer w[4];
    weir_db *db;

    for (int i = 0; i < 4; i++) {
        w[i] = (writer){ .p = p, .id = i };
        pthread_create(&th[i], NULL, write_rows, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].errors, 0);
    }
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(count(db, "people"), 400);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, memory_database_with_one_connection)
{
    weir_dbpool_settings one = settings;
    weir_dbpool *p = NULL;
    weir_db *db;

    one.min_idle = 1;
    one.max_size = 1;
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){ .url = "sqlite::memory:", .settings = &one,
                                                      .migrations = people, .nmigrations = 1,
                                                      .housekeep_ms = -1 }, &p), 0);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(weir_db_exec(db, "INSERT INTO people (name) VALUES ('ada')"), 0);
    cr_assert_eq(count(db, "people"), 1);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, idle_connection_is_validated_on_a_real_database)
{
    weir_dbpool *p = open_pool(people, 1);
    weir_db *db;
    weir_dbpool_stats st;

    /* The system clock, and a real pause past the bypass window. */
    usleep((WEIR_DBPOOL_VALIDATE_AFTER_MS + 20) * 1000);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(count(db, "people"), 0);
    weir_dbpool_release(p, db);
    weir_dbpool_stats_get(p, &st);
    cr_assert_eq(st.validation_failures, 0);
    cr_assert_eq(st.closed, 0);
    weir_dbpool_close(p);
}

/* ---- migrations ---------------------------------------------------------- */

static const weir_db_migration three[] = {
    { 1, "CREATE TABLE t (a INTEGER)" },
    { 2, "ALTER TABLE t ADD COLUMN b TEXT" },
    { 3, "INSERT INTO t (a, b) VALUES (1, 'x'); INSERT INTO t (a, b) VALUES (2, 'y')" },
};

Test(sqlite, migrations_apply_once_in_order)
{
    weir_dbpool *p = open_pool(three, 3);
    weir_db *db;
    char buf[64];

    weir_dbpool_close(p);
    p = open_pool(three, 3);            /* again: nothing re-runs */
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(count(db, "t"), 2);
    cr_assert_eq(count(db, "schema_version"), 3);
    cr_assert_str_eq(query1(db, "SELECT group_concat(version) FROM"
                                " (SELECT version FROM schema_version ORDER BY rowid)",
                            buf, sizeof buf), "1,2,3");
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);

    /* An older build (knows 1..2) still opens a newer database. */
    p = open_pool(three, 2);
    weir_dbpool_close(p);
}

Test(sqlite, failing_migration_leaves_the_previous_version)
{
    const weir_db_migration bad[] = {
        three[0],
        { 2, "CREATE TABLE u (x); INSERT INTO nosuch VALUES (1)" },
    };
    const weir_db_migration good[] = {
        three[0],
        { 2, "CREATE TABLE u (x); INSERT INTO u VALUES (1)" },
    };
    weir_dbpool *p = NULL;
    weir_db *db;
    char buf[64];

    cr_assert_eq(open_with(bad, 2, &p), AVERROR(EINVAL));
    cr_assert_null(p);
    p = open_pool(bad, 1);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_str_eq(query1(db, "SELECT MAX(version) FROM schema_version", buf, sizeof buf), "1");
    cr_assert_str_eq(query1(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'u'",
                            buf, sizeof buf), "0", "half a migration was kept");
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);

    p = open_pool(good, 2);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(count(db, "u"), 1);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}

Test(sqlite, migrations_out_of_order_are_refused)
{
    const weir_db_migration m[] = { three[1], three[0] };
    const weir_db_migration zero[] = { { 0, "SELECT 1" } };
    weir_dbpool *p = NULL;

    cr_assert_eq(open_with(m, 2, &p), AVERROR(EINVAL));
    cr_assert_eq(open_with(zero, 1, &p), AVERROR(EINVAL));
    cr_assert_null(p);
}

/* Two processes' worth of pools opening one new database at once: each
 * migration runs once. */
static void *open_close(void *arg)
{
    weir_dbpool *p = NULL;
    *(int *)arg = open_with(three, 3, &p);
    weir_dbpool_close(p);
    return NULL;
}

Test(sqlite, concurrent_opens_migrate_once)
{
    pthread_t th[4];
    int r[4];
    weir_dbpool *p;
    weir_db *db;

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, open_close, &r[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(r[i], 0);
    }
    p = open_pool(three, 3);
    cr_assert_eq(weir_dbpool_acquire(p, &db), 0);
    cr_assert_eq(count(db, "t"), 2);
    cr_assert_eq(count(db, "schema_version"), 3);
    weir_dbpool_release(p, db);
    weir_dbpool_close(p);
}
