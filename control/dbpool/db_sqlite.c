/*
 * control/dbpool/db_sqlite.c — the SQLite backend.
 *
 * URL: "sqlite:" followed by what sqlite3_open_v2 takes with SQLITE_OPEN_URI:
 * a path ("sqlite:/var/lib/weir/weir.db", "sqlite:./var/weir.db"),
 * ":memory:" (a private database per connection), or a "file:" URI
 * ("sqlite:file:test?mode=memory&cache=shared").  "sqlite://" followed by an
 * absolute path is accepted too.
 *
 * Each connection is set up for many connections in one process and in
 * several processes on one file:
 *   - journal_mode=WAL: readers do not block the writer nor it them;
 *   - synchronous=NORMAL: durable across process crashes, and in WAL mode
 *     consistent across power loss (the last commits may be lost);
 *   - foreign_keys=ON;
 *   - a busy timeout of SQLITE_BUSY_MS: a writer waits for another instead of
 *     failing at once; after it, AVERROR(EBUSY);
 *   - SQLITE_OPEN_NOMUTEX: the pool gives a connection one holder at a time
 *     and its lock orders their accesses, so SQLite's per-connection mutex
 *     would be pure cost;
 *   - extended result codes, so a UNIQUE or PRIMARY KEY violation can be
 *     told from other constraints (AVERROR(EEXIST)).
 *
 * Parameters $1..$N are SQLite named parameters "$1".."$N"; SQLite numbers
 * named parameters in order of first appearance, so binding looks each name
 * up rather than trusting i to be the index.
 *
 * Transactions begin IMMEDIATE: in WAL mode a deferred transaction that
 * reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT when another
 * connection wrote in between, with no busy wait possible; taking the write
 * lock at BEGIN waits in the busy handler instead.
 */
#include "control/dbpool/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <libavutil/error.h>

#include "core/clock.h"

#define SQLITE_BUSY_MS 5000

typedef struct sq_conn {
    sqlite3 *db;
    char err[256];              /* last error text */
} sq_conn;

typedef struct sq_stmt {
    weir_db_stmt base;          /* first */
    sq_conn *c;
    sqlite3_stmt *st;
    int stepped;                /* stepped since the last reset */
} sq_stmt;

static const char *const sq_schemes[] = { "sqlite", NULL };

/* SQLite result code (extended) -> AVERROR. */
static int sq_err(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
        return AVERROR(EEXIST);
    }
    switch (rc & 0xff) {
    case SQLITE_OK:         return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:     return AVERROR(EBUSY);
    case SQLITE_NOMEM:      return AVERROR(ENOMEM);
    case SQLITE_READONLY:   return AVERROR(EROFS);
    case SQLITE_INTERRUPT:  return AVERROR(EINTR);
    case SQLITE_IOERR:      return AVERROR(EIO);
    case SQLITE_FULL:       return AVERROR(ENOSPC);
    case SQLITE_CANTOPEN:   return AVERROR(ENOENT);
    case SQLITE_PERM:
    case SQLITE_AUTH:       return AVERROR(EACCES);
    case SQLITE_TOOBIG:     return AVERROR(E2BIG);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_ERROR:      return AVERROR(EINVAL);    /* SQL error, bad statement */
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:     return AVERROR_INVALIDDATA;
    default:                return AVERROR_EXTERNAL;
    }
}

/* Records the connection's error text and maps rc. */
static int sq_fail(sq_conn *c, int rc)
{
    snprintf(c->err, sizeof c->err, "%s", sqlite3_errmsg(c->db));
    return sq_err(rc);
}

static int sq_exec_plain(sq_conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(c, rc);
}

static int sq_connect(const char *url, int64_t timeout_ms, void **out, char *err, size_t errcap)
{
    const char *path = url;
    sq_conn *c = NULL;
    int rc, r;

    (void)timeout_ms;           /* opening a local file does not wait on a peer */
    *out = NULL;
    if (strncmp(path, "sqlite:", 7) == 0)
        path += 7;
    if (strncmp(path, "//", 2) == 0)
        path += 2;
    if (!*path) {
        snprintf(err, errcap, "no path in the sqlite URL");
        return AVERROR(EINVAL);
    }
    if (!sqlite3_threadsafe()) {
        snprintf(err, errcap, "this SQLite library was built without thread support");
        return AVERROR(ENOSYS);
    }
    if (!(c = calloc(1, sizeof *c))) {
        snprintf(err, errcap, "out of memory");
        return AVERROR(ENOMEM);
    }
    rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                       SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        r = sq_err(rc);
        snprintf(err, errcap, "%s", c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQLITE_BUSY_MS);
    /* journal_mode answers with the mode it got: "memory" for in-memory
     * databases, which is fine; a file that cannot do WAL stays in its mode.
     * Switching a new file to WAL needs an exclusive lock, and when several
     * connections open a new database at once (the server and `weir keys`
     * at first start) SQLite may answer BUSY without waiting: retry for the
     * busy timeout. */
    for (int64_t deadline = weir_clock_mono_us() + SQLITE_BUSY_MS * 1000;;) {
        rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || weir_clock_mono_us() >= deadline)
            break;
        usleep(10000);
    }
    if (rc != SQLITE_OK) {
        r = sq_fail(c, rc);
        snprintf(err, errcap, "%s", c->err);
        goto fail;
    }
    if ((r = sq_exec_plain(c, "PRAGMA synchronous=NORMAL;"
                              "PRAGMA foreign_keys=ON")) < 0) {
        snprintf(err, errcap, "%s", c->err);
        goto fail;
    }
    *out = c;
    return 0;

fail:
    sqlite3_close_v2(c->db);    /* NULL is a no-op */
    free(c);
    return r;
}

static void sq_disconnect(void *conn)
{
    sq_conn *c = conn;
    /* _v2: any statement a careless caller left unfinalized is freed with
     * the connection instead of keeping it open. */
    sqlite3_close_v2(c->db);
    free(c);
}

static int sq_progress(void *arg)
{
    return weir_clock_mono_us() >= *(const int64_t *)arg;     /* nonzero: interrupt */
}

/* Reads the schema cookie from the database header: touches the file (and
 * the WAL index) without scanning anything. */
static int sq_validate(void *conn, int64_t timeout_ms)
{
    sq_conn *c = conn;
    sqlite3_stmt *st = NULL;
    int64_t deadline = weir_clock_mono_us() + timeout_ms * 1000;
    int rc;

    sqlite3_busy_timeout(c->db, (int)(timeout_ms < SQLITE_BUSY_MS ? timeout_ms : SQLITE_BUSY_MS));
    sqlite3_progress_handler(c->db, 100, sq_progress, &deadline);
    rc = sqlite3_prepare_v2(c->db, "PRAGMA schema_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        sq_fail(c, rc);
    sqlite3_finalize(st);
    sqlite3_progress_handler(c->db, 0, NULL, NULL);
    sqlite3_busy_timeout(c->db, SQLITE_BUSY_MS);
    return rc == SQLITE_INTERRUPT ? AVERROR(ETIMEDOUT) : sq_err(rc);
}

static int sq_in_transaction(void *conn)
{
    return !sqlite3_get_autocommit(((sq_conn *)conn)->db);
}

static int sq_exec(void *conn, const char *sql)     { return sq_exec_plain(conn, sql); }
static int sq_begin(void *conn)    { return sq_exec_plain(conn, "BEGIN IMMEDIATE"); }
static int sq_commit(void *conn)   { return sq_exec_plain(conn, "COMMIT"); }
static int sq_rollback(void *conn) { return sq_exec_plain(conn, "ROLLBACK"); }

static int64_t sq_changes(void *conn)
{
    return sqlite3_changes64(((sq_conn *)conn)->db);
}

static const char *sq_errmsg(void *conn)
{
    return ((sq_conn *)conn)->err;
}

static int sq_prepare(void *conn, const char *sql, weir_db_stmt **out)
{
    sq_conn *c = conn;
    sq_stmt *s = calloc(1, sizeof *s);
    int rc;

    if (!s) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return AVERROR(ENOMEM);
    }
    if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &s->st, NULL)) != SQLITE_OK || !s->st) {
        int r = rc == SQLITE_OK ? AVERROR(EINVAL) : sq_fail(c, rc);
        if (rc == SQLITE_OK)
            snprintf(c->err, sizeof c->err, "empty statement");
        sqlite3_finalize(s->st);
        free(s);
        return r;
    }
    s->c = c;
    *out = &s->base;
    return 0;
}

/* $i -> SQLite's parameter index; 0 if the statement has no $i.  Binding
 * after a step starts the statement over (SQLite refuses binds otherwise). */
static int sq_param(sq_stmt *s, int i)
{
    char name[16];
    int idx;

    if (s->stepped) {
        sqlite3_reset(s->st);
        s->stepped = 0;
    }
    snprintf(name, sizeof name, "$%d", i);
    if (i < 1 || !(idx = sqlite3_bind_parameter_index(s->st, name))) {
        snprintf(s->c->err, sizeof s->c->err, "no parameter %s in the statement", name);
        return 0;
    }
    return idx;
}

static int sq_bound(sq_stmt *s, int rc)
{
    return rc == SQLITE_OK ? 0 : sq_fail(s->c, rc);
}

static int sq_bind_text(weir_db_stmt *st, int i, const char *v)
{
    sq_stmt *s = (sq_stmt *)st;
    int idx = sq_param(s, i);
    if (!idx)
        return AVERROR(EINVAL);
    return sq_bound(s, v ? sqlite3_bind_text(s->st, idx, v, -1, SQLITE_TRANSIENT)
                         : sqlite3_bind_null(s->st, idx));
}

static int sq_bind_int64(weir_db_stmt *st, int i, int64_t v)
{
    sq_stmt *s = (sq_stmt *)st;
    int idx = sq_param(s, i);
    if (!idx)
        return AVERROR(EINVAL);
    return sq_bound(s, sqlite3_bind_int64(s->st, idx, v));
}

static int sq_bind_blob(weir_db_stmt *st, int i, const void *p, size_t n)
{
    sq_stmt *s = (sq_stmt *)st;
    int idx = sq_param(s, i);
    if (!idx)
        return AVERROR(EINVAL);
    /* zeroblob for n == 0: a NULL pointer would bind SQL NULL. */
    return sq_bound(s, n ? sqlite3_bind_blob64(s->st, idx, p, n, SQLITE_TRANSIENT)
                         : sqlite3_bind_zeroblob(s->st, idx, 0));
}

static int sq_step(weir_db_stmt *st)
{
    sq_stmt *s = (sq_stmt *)st;
    int rc = sqlite3_step(s->st);

    s->stepped = 1;
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    /* A failed statement must be reset before it can run again; the error
     * stays with the connection. */
    sq_fail(s->c, rc);
    sqlite3_reset(s->st);
    return sq_err(rc);
}

static const char *sq_col_text(weir_db_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(((sq_stmt *)st)->st, col);
}

static int64_t sq_col_int64(weir_db_stmt *st, int col)
{
    return sqlite3_column_int64(((sq_stmt *)st)->st, col);
}

static const void *sq_col_blob(weir_db_stmt *st, int col, size_t *len)
{
    sqlite3_stmt *s = ((sq_stmt *)st)->st;
    static const unsigned char empty[1];
    const void *p;

    if (sqlite3_column_type(s, col) == SQLITE_NULL) {
        *len = 0;
        return NULL;
    }
    p = sqlite3_column_blob(s, col);        /* before _bytes, as SQLite asks */
    *len = (size_t)sqlite3_column_bytes(s, col);
    return p ? p : empty;
}

static int sq_col_is_null(weir_db_stmt *st, int col)
{
    return sqlite3_column_type(((sq_stmt *)st)->st, col) == SQLITE_NULL;
}

static void sq_finalize(weir_db_stmt *st)
{
    sq_stmt *s = (sq_stmt *)st;
    sqlite3_finalize(s->st);
    free(s);
}

const weir_db_driver weir_db_driver_sqlite = {
    .name           = "sqlite",
    .schemes        = sq_schemes,
    .connect        = sq_connect,
    .disconnect     = sq_disconnect,
    .validate       = sq_validate,
    .in_transaction = sq_in_transaction,
    .exec           = sq_exec,
    .begin          = sq_begin,
    .commit         = sq_commit,
    .rollback       = sq_rollback,
    .lock_schema    = NULL,         /* BEGIN IMMEDIATE already holds the write lock */
    .changes        = sq_changes,
    .errmsg         = sq_errmsg,
    .prepare        = sq_prepare,
    .bind_text      = sq_bind_text,
    .bind_int64     = sq_bind_int64,
    .bind_blob      = sq_bind_blob,
    .step           = sq_step,
    .col_text       = sq_col_text,
    .col_int64      = sq_col_int64,
    .col_blob       = sq_col_blob,
    .col_is_null    = sq_col_is_null,
    .finalize       = sq_finalize,
};
