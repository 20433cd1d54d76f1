/*
 * control/dbpool/db.c — the weir_db_* calls, dispatched to the connection's
 * backend (driver.h), and schema migrations written on top of them.
 *
 * Migrations.  A table schema_version holds one row per applied version.
 * Each pending migration runs in its own transaction:
 *
 *   BEGIN -> [lock_schema] -> read MAX(version) -> already there? ROLLBACK
 *         -> exec(sql) -> INSERT schema_version -> COMMIT
 *   any failure -> ROLLBACK, stop: the schema stays at the previous version
 *
 * Reading the version inside the transaction, under the write lock (SQLite's
 * BEGIN IMMEDIATE, or the backend's lock_schema), is what makes two
 * processes opening the same database at once apply each migration once.
 */
#include "control/dbpool/driver.h"

#include <errno.h>

#include <libavutil/error.h>

#include "core/clock.h"
#include "core/log.h"

#define CALL(fn, ...) (drv->fn ? drv->fn(__VA_ARGS__) : AVERROR(ENOSYS))

int weir_db_exec(weir_db *db, const char *sql)
{
    const weir_db_driver *drv = db->drv;
    return CALL(exec, db->conn, sql);
}

int weir_db_prepare(weir_db *db, const char *sql, weir_db_stmt **out)
{
    const weir_db_driver *drv = db->drv;
    int r;

    *out = NULL;
    if ((r = CALL(prepare, db->conn, sql, out)) < 0)
        return r;
    (*out)->drv = drv;
    (*out)->db = db;
    return 0;
}

int weir_db_bind_text(weir_db_stmt *st, int i, const char *v)
{
    const weir_db_driver *drv = st->drv;
    return CALL(bind_text, st, i, v);
}

int weir_db_bind_int64(weir_db_stmt *st, int i, int64_t v)
{
    const weir_db_driver *drv = st->drv;
    return CALL(bind_int64, st, i, v);
}

int weir_db_bind_blob(weir_db_stmt *st, int i, const void *p, size_t n)
{
    const weir_db_driver *drv = st->drv;
    return CALL(bind_blob, st, i, p, n);
}

int weir_db_step(weir_db_stmt *st)
{
    const weir_db_driver *drv = st->drv;
    return CALL(step, st);
}

const char *weir_db_col_text(weir_db_stmt *st, int col)
{
    return st->drv->col_text ? st->drv->col_text(st, col) : NULL;
}

int64_t weir_db_col_int64(weir_db_stmt *st, int col)
{
    return st->drv->col_int64 ? st->drv->col_int64(st, col) : 0;
}

const void *weir_db_col_blob(weir_db_stmt *st, int col, size_t *len)
{
    *len = 0;
    return st->drv->col_blob ? st->drv->col_blob(st, col, len) : NULL;
}

int weir_db_col_is_null(weir_db_stmt *st, int col)
{
    return st->drv->col_is_null ? st->drv->col_is_null(st, col) : 1;
}

void weir_db_finalize(weir_db_stmt *st)
{
    if (st && st->drv->finalize)
        st->drv->finalize(st);
}

int64_t weir_db_changes(weir_db *db)
{
    return db->drv->changes ? db->drv->changes(db->conn) : 0;
}

int weir_db_begin(weir_db *db)
{
    const weir_db_driver *drv = db->drv;
    return CALL(begin, db->conn);
}

int weir_db_commit(weir_db *db)
{
    const weir_db_driver *drv = db->drv;
    return CALL(commit, db->conn);
}

int weir_db_rollback(weir_db *db)
{
    const weir_db_driver *drv = db->drv;
    return CALL(rollback, db->conn);
}

const char *weir_db_errmsg(weir_db *db)
{
    const char *s = db->drv->errmsg ? db->drv->errmsg(db->conn) : NULL;
    return s ? s : "";
}

/* ---- migrations ---------------------------------------------------------- */

/* Highest applied version, 0 for none. */
static int schema_version(weir_db *db, int64_t *out)
{
    weir_db_stmt *st = NULL;
    int r;

    *out = 0;
    if ((r = weir_db_prepare(db, "SELECT MAX(version) FROM schema_version", &st)) < 0)
        goto fail;
    if ((r = weir_db_step(st)) < 0)
        goto fail;
    if (r == 1 && !weir_db_col_is_null(st, 0))
        *out = weir_db_col_int64(st, 0);
    r = 0;
fail:
    weir_db_finalize(st);
    return r;
}

static int record_version(weir_db *db, int version)
{
    weir_db_stmt *st = NULL;
    int r;

    if ((r = weir_db_prepare(db, "INSERT INTO schema_version (version, applied_at)"
                                 " VALUES ($1, $2)", &st)) < 0)
        goto fail;
    if ((r = weir_db_bind_int64(st, 1, version)) < 0 ||
        (r = weir_db_bind_int64(st, 2, weir_clock_unix_ms())) < 0)
        goto fail;
    r = weir_db_step(st);
    if (r > 0)
        r = 0;
fail:
    weir_db_finalize(st);
    return r;
}

/* One migration in its own transaction.  *applied: 1 if it ran now. */
static int migrate_one(weir_db *db, const weir_db_migration *m, int64_t *current, int *applied)
{
    const weir_db_driver *drv = db->drv;
    int r, began = 0;

    *applied = 0;
    if ((r = weir_db_begin(db)) < 0)
        goto fail;
    began = 1;
    if (drv->lock_schema && (r = drv->lock_schema(db->conn)) < 0)
        goto fail;
    if ((r = schema_version(db, current)) < 0)
        goto fail;
    if (*current >= m->version)
        return weir_db_rollback(db);    /* another process was first */
    if ((r = weir_db_exec(db, m->sql)) < 0 ||
        (r = record_version(db, m->version)) < 0 ||
        (r = weir_db_commit(db)) < 0)
        goto fail;
    *current = m->version;
    *applied = 1;
    return 0;

fail:
    weir_log_error("dbpool", "migration failed", WL_INT("version", m->version),
                   WL_STR("db_error", weir_db_errmsg(db)), WL_ERR(r));
    if (began)
        weir_db_rollback(db);   /* the failure may already have ended it: harmless */
    return r;
}

int weir_db__migrate(weir_db *db, const weir_db_migration *m, size_t n)
{
    int64_t current = 0;
    int r, applied, count = 0;

    for (size_t i = 0; i < n; i++) {
        if (m[i].version < 1 || (i > 0 && m[i].version <= m[i - 1].version) || !m[i].sql) {
            weir_log_error("dbpool", "migrations must have versions 1..N, ascending",
                           WL_INT("index", (int64_t)i), WL_INT("version", m[i].version));
            return AVERROR(EINVAL);
        }
    }
    if ((r = weir_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                              " version BIGINT PRIMARY KEY,"
                              " applied_at BIGINT NOT NULL)")) < 0) {
        weir_log_error("dbpool", "cannot create schema_version",
                       WL_STR("db_error", weir_db_errmsg(db)), WL_ERR(r));
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        if (current >= m[i].version)
            continue;                   /* known applied: skip the transaction */
        if ((r = migrate_one(db, &m[i], &current, &applied)) < 0)
            return r;
        if (applied) {
            count++;
            weir_log_info("dbpool", "migration applied", WL_INT("version", m[i].version));
        }
    }
    if (n > 0 && current > m[n - 1].version)
        weir_log_warn("dbpool", "database schema is newer than this build",
                      WL_INT("schema_version", current),
                      WL_INT("known_version", m[n - 1].version));
    if (count)
        weir_log_info("dbpool", "schema up to date", WL_INT("version", current));
    return 0;
}
