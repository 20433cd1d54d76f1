/*
 * control/uploads/store.c — the uploads' rows and single-use URLs in the
 * database.  The states and who moves them are in uploads.h; every change
 * of state is one UPDATE guarded by the state it expects, so two actors
 * (a PATCH and a DELETE, two nodes claiming a job) never both win.
 */
#include "control/uploads/uploads.h"
#include "control/keys/keys.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <libavutil/error.h>

/* Version 3: the keys' schema has 1 and 2 (control.c applies them in order). */
const weir_db_migration weir_uploads_migration = {
    3,
    "CREATE TABLE uploads ("
    "  id TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL,"
    "  length BIGINT NOT NULL,"
    "  received BIGINT NOT NULL DEFAULT 0,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  filename TEXT NOT NULL DEFAULT '',"
    "  metadata TEXT NOT NULL DEFAULT '',"
    "  url_id TEXT,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  lease_owner TEXT,"
    "  lease_until BIGINT,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  reason TEXT);"
    "CREATE INDEX uploads_state ON uploads(state, updated_at);"
    "CREATE TABLE upload_urls ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  salt BLOB NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  used_at BIGINT,"
    "  upload_id TEXT);"
};

#define ROW_COLUMNS "id, state, length, received, name, filename, metadata, url_id," \
                    " created_at, updated_at, expires_at, attempts"

/* ---- helpers ------------------------------------------------------------- */

/* Prepares sql and binds its parameters from a format: 's' text, 'i' int64. */
static int prep(weir_db *db, weir_db_stmt **st, const char *sql, const char *types, va_list ap)
{
    int r = weir_db_prepare(db, sql, st);
    for (int i = 0; r >= 0 && types[i]; i++)
        r = types[i] == 's' ? weir_db_bind_text(*st, i + 1, va_arg(ap, const char *))
                            : weir_db_bind_int64(*st, i + 1, va_arg(ap, int64_t));
    return r;
}

/* One statement without rows; *changes (may be NULL) gets the rows touched. */
static int run(weir_db *db, int64_t *changes, const char *sql, const char *types, ...)
{
    weir_db_stmt *st = NULL;
    va_list ap;
    int r;

    va_start(ap, types);
    r = prep(db, &st, sql, types, ap);
    va_end(ap);
    if (r >= 0)
        r = weir_db_step(st);
    if (r >= 0 && changes)
        *changes = weir_db_changes(db);
    weir_db_finalize(st);
    return r < 0 ? r : 0;
}

static int acquire(weir_dbpool *pool, weir_db **db)
{
    int r = weir_dbpool_acquire(pool, db);
    if (r < 0)
        weir_log_error("uploads", "no database connection", WL_ERR(r));
    return r;
}

static void copy_text(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v ? v : "");
}

static void row_read(weir_db_stmt *st, weir_upload_row *o)
{
    copy_text(o->id, sizeof o->id, weir_db_col_text(st, 0));
    copy_text(o->state, sizeof o->state, weir_db_col_text(st, 1));
    o->length = weir_db_col_int64(st, 2);
    o->received = weir_db_col_int64(st, 3);
    copy_text(o->name, sizeof o->name, weir_db_col_text(st, 4));
    copy_text(o->filename, sizeof o->filename, weir_db_col_text(st, 5));
    copy_text(o->metadata, sizeof o->metadata, weir_db_col_text(st, 6));
    copy_text(o->url_id, sizeof o->url_id, weir_db_col_text(st, 7));
    o->created_at = weir_db_col_int64(st, 8);
    o->updated_at = weir_db_col_int64(st, 9);
    o->expires_at = weir_db_col_int64(st, 10);
    o->attempts = weir_db_col_int64(st, 11);
}

/* Reads one row by id on an acquired connection. */
static int row_get(weir_db *db, const char *id, weir_upload_row *out)
{
    weir_db_stmt *st = NULL;
    int r = weir_db_prepare(db, "SELECT " ROW_COLUMNS " FROM uploads WHERE id = $1", &st);
    if (r >= 0)
        r = weir_db_bind_text(st, 1, id);
    if (r >= 0)
        r = weir_db_step(st);
    if (r == 1) {
        row_read(st, out);
        r = 0;
    } else if (r == 0) {
        r = AVERROR(ENOENT);
    }
    weir_db_finalize(st);
    return r;
}

/* ---- single-use URLs ----------------------------------------------------- */

int weir_upload_store_url_create(weir_dbpool *pool, const char *name, int64_t now,
                                 int64_t expires, char token_out[WEIR_CRED_LEN + 1],
                                 char id_out[9])
{
    weir_cred c;
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    if ((r = weir_cred_make("wu_", &c)) < 0)
        return r;
    if ((r = acquire(pool, &db)) < 0)
        goto out;
    r = weir_db_prepare(db, "INSERT INTO upload_urls (id, name, salt, hash, created_at,"
                            " expires_at) VALUES ($1, $2, $3, $4, $5, $6)", &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, c.id);
    if (r >= 0) r = weir_db_bind_text(st, 2, name ? name : "");
    if (r >= 0) r = weir_db_bind_blob(st, 3, c.salt, sizeof c.salt);
    if (r >= 0) r = weir_db_bind_blob(st, 4, c.hash, sizeof c.hash);
    if (r >= 0) r = weir_db_bind_int64(st, 5, now);
    if (r >= 0) r = weir_db_bind_int64(st, 6, expires);
    if (r >= 0) r = weir_db_step(st);
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    if (r >= 0) {
        memcpy(token_out, c.text, sizeof c.text);
        memcpy(id_out, c.id, sizeof c.id);
        r = 0;
    }
out:
    OPENSSL_cleanse(&c, sizeof c);
    return r;
}

/* Verifies a URL token on db.  0 with its id, expiry, use and upload;
 * AVERROR(EACCES) if it is not one of ours. */
static int url_find(weir_db *db, const char *token, char id[9], int64_t *expires,
                    int *used, char upload_id[WEIR_UPLOAD_ID_LEN + 1])
{
    weir_db_stmt *st = NULL;
    const char *secret;
    int r, ok = 0;

    if (weir_cred_split("wu_", token, id, &secret) < 0)
        return AVERROR(EACCES);
    r = weir_db_prepare(db, "SELECT salt, hash, expires_at, used_at, upload_id"
                            " FROM upload_urls WHERE id = $1", &st);
    if (r >= 0)
        r = weir_db_bind_text(st, 1, id);
    if (r >= 0 && (r = weir_db_step(st)) == 1) {
        size_t sl, hl;
        const void *salt = weir_db_col_blob(st, 0, &sl);
        const void *hash = weir_db_col_blob(st, 1, &hl);
        ok = salt && hash && weir_cred_matches(salt, sl, hash, hl, secret);
        *expires = weir_db_col_int64(st, 2);
        *used = !weir_db_col_is_null(st, 3);
        copy_text(upload_id, WEIR_UPLOAD_ID_LEN + 1, weir_db_col_text(st, 4));
    }
    weir_db_finalize(st);
    if (r < 0)
        return r;
    return ok ? 0 : AVERROR(EACCES);
}

int weir_upload_store_url_check(weir_dbpool *pool, const char *token,
                                char id_out[WEIR_UPLOAD_ID_LEN + 1])
{
    char id[9];
    int64_t expires;
    int used = 0, r;
    weir_db *db;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = url_find(db, token, id, &expires, &used, id_out);
    weir_dbpool_release(pool, db);
    return r;
}

/* ---- rows ---------------------------------------------------------------- */

int weir_upload_store_create(weir_dbpool *pool, weir_upload_row *row, const char *url_token,
                             int64_t now)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    if ((r = weir_db_begin(db)) < 0)
        goto out;
    row->url_id[0] = '\0';
    if (url_token) {
        char bound[WEIR_UPLOAD_ID_LEN + 1];
        int64_t expires, changed = 0;
        int used;
        if ((r = url_find(db, url_token, row->url_id, &expires, &used, bound)) < 0)
            goto rollback;
        if (used) {
            r = AVERROR(EEXIST);
            goto rollback;
        }
        if (expires <= now) {
            r = AVERROR(EACCES);
            goto rollback;
        }
        r = run(db, &changed, "UPDATE upload_urls SET used_at = $1, upload_id = $2"
                              " WHERE id = $3 AND used_at IS NULL", "iss", now, row->id,
                row->url_id);
        if (r >= 0 && changed != 1)
            r = AVERROR(EEXIST);
        if (r < 0)
            goto rollback;
    }
    r = weir_db_prepare(db, "INSERT INTO uploads (id, state, length, received, name, filename,"
                            " metadata, url_id, created_at, updated_at, expires_at)"
                            " VALUES ($1, 'uploading', $2, 0, $3, $4, $5, $6, $7, $7, $8)", &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, row->id);
    if (r >= 0) r = weir_db_bind_int64(st, 2, row->length);
    if (r >= 0) r = weir_db_bind_text(st, 3, row->name);
    if (r >= 0) r = weir_db_bind_text(st, 4, row->filename);
    if (r >= 0) r = weir_db_bind_text(st, 5, row->metadata);
    if (r >= 0) r = weir_db_bind_text(st, 6, row->url_id[0] ? row->url_id : NULL);
    if (r >= 0) r = weir_db_bind_int64(st, 7, now);
    if (r >= 0) r = weir_db_bind_int64(st, 8, row->expires_at);
    if (r >= 0) r = weir_db_step(st);
    weir_db_finalize(st);
    if (r < 0)
        goto rollback;
    if ((r = weir_db_commit(db)) < 0)
        goto rollback;
    snprintf(row->state, sizeof row->state, "uploading");
    row->received = 0;
    row->created_at = row->updated_at = now;
    weir_dbpool_release(pool, db);
    return 0;
rollback:
    weir_db_rollback(db);
out:
    weir_dbpool_release(pool, db);
    return r;
}

int weir_upload_store_get(weir_dbpool *pool, const char *id, weir_upload_row *out)
{
    weir_db *db;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = row_get(db, id, out);
    weir_dbpool_release(pool, db);
    return r;
}

int weir_upload_store_advance(weir_dbpool *pool, const char *id, int64_t from, int64_t to,
                              int64_t now, int64_t expires_at, int *queued)
{
    weir_db *db;
    int64_t changed = 0;
    int r;

    *queued = 0;
    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = run(db, &changed,
            "UPDATE uploads SET received = $1, updated_at = $2, expires_at = $3,"
            " state = CASE WHEN $1 = length THEN 'queued' ELSE 'uploading' END"
            " WHERE id = $4 AND state = 'uploading' AND received = $5 AND $1 <= length",
            "iiisi", to, now, expires_at, id, from);
    if (r >= 0 && changed == 1) {
        weir_upload_row row;
        if (row_get(db, id, &row) == 0 && strcmp(row.state, "queued") == 0)
            *queued = 1;
    }
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return changed == 1 ? 0 : AVERROR(ENOENT);
}

int weir_upload_store_expire(weir_dbpool *pool, int64_t now,
                             char (*busy)[WEIR_UPLOAD_ID_LEN + 1], size_t nbusy,
                             char (**ids)[WEIR_UPLOAD_ID_LEN + 1], size_t *n)
{
    char (*found)[WEIR_UPLOAD_ID_LEN + 1] = NULL;
    size_t nfound = 0, cap = 0, kept = 0;
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    *ids = NULL;
    *n = 0;
    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = weir_db_prepare(db, "SELECT id FROM uploads WHERE state = 'uploading'"
                            " AND expires_at <= $1 ORDER BY expires_at LIMIT 1000", &st);
    if (r >= 0)
        r = weir_db_bind_int64(st, 1, now);
    while (r >= 0 && (r = weir_db_step(st)) == 1) {
        const char *id = weir_db_col_text(st, 0);
        int skip = !id;
        for (size_t i = 0; !skip && i < nbusy; i++)
            skip = strcmp(busy[i], id) == 0;
        if (skip)
            continue;
        if (nfound == cap) {
            size_t c = cap ? cap * 2 : 16;
            void *grown = realloc(found, c * sizeof *found);
            if (!grown) {
                r = AVERROR(ENOMEM);
                break;
            }
            found = grown;
            cap = c;
        }
        copy_text(found[nfound++], sizeof found[0], id);
    }
    weir_db_finalize(st);
    for (size_t i = 0; r >= 0 && i < nfound; i++) {
        int64_t changed = 0;
        r = run(db, &changed, "UPDATE uploads SET state = 'expired', updated_at = $1"
                              " WHERE id = $2 AND state = 'uploading' AND expires_at <= $1",
                "is", now, found[i]);
        if (r >= 0 && changed == 1)
            memcpy(found[kept++], found[i], sizeof found[0]);
    }
    if (r >= 0)
        r = run(db, NULL, "DELETE FROM upload_urls WHERE used_at IS NULL AND expires_at <= $1",
                "i", now);
    weir_dbpool_release(pool, db);
    if (r < 0) {
        free(found);
        return r;
    }
    *ids = found;
    *n = kept;
    return 0;
}

int weir_upload_store_claim(weir_dbpool *pool, const char *owner, int64_t now,
                            int64_t lease_ms, weir_upload_row *out)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    char id[WEIR_UPLOAD_ID_LEN + 1] = "";
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    if ((r = weir_db_begin(db)) < 0)
        goto out;
    r = weir_db_prepare(db, "SELECT id FROM uploads WHERE state = 'queued'"
                            " OR (state = 'processing' AND lease_until <= $1)"
                            " ORDER BY updated_at LIMIT 1", &st);
    if (r >= 0)
        r = weir_db_bind_int64(st, 1, now);
    if (r >= 0 && (r = weir_db_step(st)) == 1)
        copy_text(id, sizeof id, weir_db_col_text(st, 0));
    weir_db_finalize(st);
    if (r < 0 || !id[0])
        goto rollback;
    r = run(db, &changed, "UPDATE uploads SET state = 'processing', lease_owner = $1,"
                          " lease_until = $2, attempts = attempts + 1, updated_at = $3"
                          " WHERE id = $4 AND (state = 'queued'"
                          " OR (state = 'processing' AND lease_until <= $3))",
            "siis", owner, now + lease_ms, now, id);
    if (r >= 0 && changed == 1)
        r = row_get(db, id, out);
    if (r < 0 || changed != 1)
        goto rollback;
    if ((r = weir_db_commit(db)) < 0)
        goto rollback;
    weir_dbpool_release(pool, db);
    return 1;
rollback:
    weir_db_rollback(db);
out:
    weir_dbpool_release(pool, db);
    return r < 0 ? r : 0;
}

int weir_upload_store_renew(weir_dbpool *pool, const char *id, const char *owner, int64_t until)
{
    weir_db *db;
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = run(db, &changed, "UPDATE uploads SET lease_until = $1 WHERE id = $2"
                          " AND state = 'processing' AND lease_owner = $3", "iss", until, id,
            owner);
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return changed == 1 ? 0 : AVERROR(ENOENT);
}

int weir_upload_store_finish(weir_dbpool *pool, const char *id, const char *owner,
                             const char *state, const char *reason, int64_t now)
{
    weir_db *db;
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = run(db, &changed, "UPDATE uploads SET state = $1, reason = $2, updated_at = $3,"
                          " lease_owner = NULL, lease_until = NULL WHERE id = $4"
                          " AND state = 'processing' AND lease_owner = $5", "ssiss", state,
            reason, now, id, owner);
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return changed == 1 ? 0 : AVERROR(ENOENT);
}

int weir_upload_store_release(weir_dbpool *pool, const char *id, const char *owner, int64_t now)
{
    weir_db *db;
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    /* The claim that is handed back did not fail: it does not count. */
    r = run(db, &changed, "UPDATE uploads SET state = 'queued', updated_at = $1,"
                          " lease_owner = NULL, lease_until = NULL, attempts = attempts - 1"
                          " WHERE id = $2 AND state = 'processing' AND lease_owner = $3", "iss",
            now, id, owner);
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return changed == 1 ? 0 : AVERROR(ENOENT);
}

int weir_upload_store_delete(weir_dbpool *pool, const char *id, int64_t now)
{
    weir_db *db;
    weir_upload_row row;
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = run(db, &changed, "UPDATE uploads SET state = 'deleted', updated_at = $1"
                          " WHERE id = $2 AND state NOT IN ('processing', 'deleted')", "is",
            now, id);
    if (r >= 0 && changed == 0) {
        r = row_get(db, id, &row);
        if (r >= 0)
            r = strcmp(row.state, "processing") == 0 ? AVERROR(EBUSY) : AVERROR(ENOENT);
    }
    weir_dbpool_release(pool, db);
    return r;
}
