/*
 * control/keys/keys.c — see keys.h.  Stream keys and API tokens share the
 * credential code (make, split, hash, verify); only their tables differ.
 */
#include "control/keys/keys.h"
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <libavutil/error.h>

#define ID_BYTES      6
#define SECRET_BYTES  24
#define SALT_BYTES    16
#define ID_CHARS      8         /* base64url of 6 bytes */
#define SECRET_CHARS  32        /* base64url of 24 bytes */
#define HASH_BYTES    32
/* Recording "last used" is a write; once a minute per credential is enough. */
#define LAST_USED_EVERY_MS 60000

const weir_db_migration weir_keys_migrations[] = {
    { 1,
      "CREATE TABLE stream_keys ("
      "  id TEXT PRIMARY KEY,"
      "  stream TEXT NOT NULL,"
      "  note TEXT NOT NULL DEFAULT '',"
      "  salt BLOB NOT NULL,"
      "  hash BLOB NOT NULL,"
      "  created_at BIGINT NOT NULL,"
      "  last_used_at BIGINT,"
      "  revoked_at BIGINT);"
      "CREATE UNIQUE INDEX stream_keys_active ON stream_keys(stream)"
      "  WHERE revoked_at IS NULL;"
      "CREATE TABLE api_tokens ("
      "  id TEXT PRIMARY KEY,"
      "  name TEXT NOT NULL DEFAULT '',"
      "  scope TEXT NOT NULL,"
      "  salt BLOB NOT NULL,"
      "  hash BLOB NOT NULL,"
      "  created_at BIGINT NOT NULL,"
      "  last_used_at BIGINT,"
      "  revoked_at BIGINT);" },
    /* The transcode profile a stream asks for ('': transcode.profile). */
    { 2, "ALTER TABLE stream_keys ADD COLUMN profile TEXT NOT NULL DEFAULT '';" },
    /* (3 is uploads'.)  The key's own SRT passphrase, NULL: srt.passphrase
     * applies.  Kept as given, unlike the key itself: libsrt needs the
     * passphrase to derive the stream's encryption key at every handshake. */
    { 4, "ALTER TABLE stream_keys ADD COLUMN srt_passphrase TEXT;" },
};
const size_t weir_keys_nmigrations = sizeof weir_keys_migrations / sizeof weir_keys_migrations[0];

/* ---- credentials --------------------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* n must be a multiple of 3; writes n / 3 * 4 chars and a NUL. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = b64url[v >> 18 & 63];
        *out++ = b64url[v >> 12 & 63];
        *out++ = b64url[v >> 6 & 63];
        *out++ = b64url[v & 63];
    }
    *out = '\0';
}

static int is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(b64url, s[i]))
            return 0;
    return 1;
}

typedef weir_cred cred;

static int hash_secret(const unsigned char *salt, const char *secret, unsigned char *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, salt, SALT_BYTES) &&
             EVP_DigestUpdate(md, secret, SECRET_CHARS) &&
             EVP_DigestFinal_ex(md, out, &len) && len == HASH_BYTES;
    EVP_MD_CTX_free(md);
    return ok ? 0 : AVERROR(EIO);
}

int weir_cred_make(const char *prefix, weir_cred *c)
{
    unsigned char id[ID_BYTES], secret[SECRET_BYTES];
    char secret_text[SECRET_CHARS + 1];

    /* The id is typed on command lines (`weir tokens revoke ID`): never let
     * it start with '-' or '_', which would read as an option. */
    do {
        if (RAND_bytes(id, sizeof id) != 1)
            return AVERROR(EIO);
        b64url_encode(id, sizeof id, c->id);
    } while (c->id[0] == '-' || c->id[0] == '_');
    if (RAND_bytes(secret, sizeof secret) != 1 || RAND_bytes(c->salt, sizeof c->salt) != 1)
        return AVERROR(EIO);
    b64url_encode(secret, sizeof secret, secret_text);
    snprintf(c->text, sizeof c->text, "%s%s%s", prefix, c->id, secret_text);
    OPENSSL_cleanse(secret, sizeof secret);
    return hash_secret(c->salt, secret_text, c->hash);
}

/* Splits "wk_<id><secret>" after checking its shape.  0 or -1. */
int weir_cred_split(const char *prefix, const char *text, char id[ID_CHARS + 1],
                    const char **secret)
{
    size_t plen = strlen(prefix);
    if (!text || strlen(text) != WEIR_CRED_LEN || strncmp(text, prefix, plen) != 0 ||
        !is_b64url(text + plen, ID_CHARS + SECRET_CHARS))
        return -1;
    memcpy(id, text + plen, ID_CHARS);
    id[ID_CHARS] = '\0';
    *secret = text + plen + ID_CHARS;
    return 0;
}

int weir_cred_matches(const void *salt, size_t salt_len, const void *hash, size_t hash_len,
                      const char *secret)
{
    unsigned char h[HASH_BYTES];
    if (salt_len != SALT_BYTES || hash_len != HASH_BYTES || hash_secret(salt, secret, h) < 0)
        return 0;
    return CRYPTO_memcmp(h, hash, HASH_BYTES) == 0;
}

/* ---- small DB helpers ---------------------------------------------------- */

/* Runs one statement that returns no rows, with text/int64 parameters given
 * as a format: 's' text, 'i' int64.  Returns 0 or a negative code; *changes
 * (if not NULL) gets the rows changed. */
static int db_run(weir_db *db, const char *sql, int64_t *changes, const char *types, ...)
{
    weir_db_stmt *st = NULL;
    va_list ap;
    int r = weir_db_prepare(db, sql, &st);

    va_start(ap, types);
    for (int i = 0; r >= 0 && types[i]; i++)
        r = types[i] == 's' ? weir_db_bind_text(st, i + 1, va_arg(ap, const char *))
                            : weir_db_bind_int64(st, i + 1, va_arg(ap, int64_t));
    va_end(ap);
    if (r >= 0)
        r = weir_db_step(st);
    if (r > 0)
        r = 0;
    if (r >= 0 && changes)
        *changes = weir_db_changes(db);
    weir_db_finalize(st);
    return r;
}

static int acquire(weir_dbpool *pool, weir_db **db)
{
    int r = weir_dbpool_acquire(pool, db);
    if (r < 0)
        weir_log_error("keys", "no database connection", WL_ERR(r));
    return r;
}

/* Inserts a new credential row.  sql takes $1 id, $2 and $3 the table's two
 * text columns, $4 salt, $5 hash, $6 created_at, $7 a third text column
 * when x is not NULL, and then $8 the nullable y (stream keys only). */
static int cred_insert(weir_dbpool *pool, const char *sql, const cred *c, const char *a,
                       const char *b, const char *x, const char *y)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = weir_db_prepare(db, sql, &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, c->id);
    if (r >= 0) r = weir_db_bind_text(st, 2, a);
    if (r >= 0) r = weir_db_bind_text(st, 3, b);
    if (r >= 0) r = weir_db_bind_blob(st, 4, c->salt, sizeof c->salt);
    if (r >= 0) r = weir_db_bind_blob(st, 5, c->hash, sizeof c->hash);
    if (r >= 0) r = weir_db_bind_int64(st, 6, weir_clock_unix_ms());
    if (r >= 0 && x) r = weir_db_bind_text(st, 7, x);
    if (r >= 0 && x) r = weir_db_bind_text(st, 8, y);  /* NULL binds SQL NULL */
    if (r >= 0) r = weir_db_step(st);
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    return r < 0 ? r : 0;
}

/* Revokes the active credential(s) matching sql's $2; AVERROR(ENOENT) if
 * none.  sql takes $1 revoked_at, $2 the key value. */
static int cred_revoke(weir_dbpool *pool, const char *sql, const char *value)
{
    weir_db *db;
    int64_t changed = 0;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = db_run(db, sql, &changed, "is", weir_clock_unix_ms(), value);
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return changed ? 0 : AVERROR(ENOENT);
}

/* ---- stream keys --------------------------------------------------------- */

int weir_keys_profile_valid(const char *profile)
{
    size_t n = profile ? strlen(profile) : 0;
    if (n > WEIR_KEY_PROFILE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", profile[i]))
            return 0;
    return 1;
}

int weir_keys_srt_passphrase_valid(const char *passphrase)
{
    size_t n = passphrase ? strlen(passphrase) : 0;
    return n >= WEIR_KEY_SRT_PASSPHRASE_MIN && n <= WEIR_KEY_SRT_PASSPHRASE_MAX;
}

int weir_keys_create_with_profile(weir_dbpool *pool, const char *name, const char *note,
                                  const char *profile, const char *srt_passphrase,
                                  char key_out[WEIR_CRED_LEN + 1])
{
    cred c;
    int r;

    if (!weir_stream_name_valid(name) || !weir_keys_profile_valid(profile) ||
        (srt_passphrase && !weir_keys_srt_passphrase_valid(srt_passphrase)))
        return AVERROR(EINVAL);
    if ((r = weir_cred_make("wk_", &c)) < 0)
        return r;
    r = cred_insert(pool, "INSERT INTO stream_keys (id, stream, note, salt, hash, created_at,"
                          " profile, srt_passphrase) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &c, name, note ? note : "", profile ? profile : "", srt_passphrase);
    if (r >= 0) {       /* AVERROR(EEXIST) otherwise: the stream has an active key */
        memcpy(key_out, c.text, sizeof c.text);
        weir_log_info("keys", "stream key created", WL_STR("stream", name),
                      WL_STR("profile", profile ? profile : ""),
                      WL_BOOL("srt_passphrase", srt_passphrase != NULL));
    }
    OPENSSL_cleanse(&c, sizeof c);
    return r;
}

int weir_keys_create(weir_dbpool *pool, const char *name, const char *note,
                     char key_out[WEIR_CRED_LEN + 1])
{
    return weir_keys_create_with_profile(pool, name, note, NULL, NULL, key_out);
}

int weir_keys_set_srt_passphrase(weir_dbpool *pool, const char *name, const char *passphrase)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    int64_t changed = 0;
    int r;

    if (passphrase && !weir_keys_srt_passphrase_valid(passphrase))
        return AVERROR(EINVAL);
    if ((r = acquire(pool, &db)) < 0)
        return r;
    /* Bound by hand: a NULL text binds SQL NULL (no passphrase). */
    r = weir_db_prepare(db, "UPDATE stream_keys SET srt_passphrase = $1"
                            " WHERE stream = $2 AND revoked_at IS NULL", &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, passphrase);
    if (r >= 0) r = weir_db_bind_text(st, 2, name);
    if (r >= 0) r = weir_db_step(st);
    if (r >= 0)
        changed = weir_db_changes(db);
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    if (!changed)
        return AVERROR(ENOENT);
    weir_log_info("keys", "srt passphrase changed", WL_STR("stream", name),
                  WL_BOOL("set", passphrase != NULL));
    return 0;
}

int weir_keys_profile(weir_dbpool *pool, const char *name, char *out, size_t cap)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = weir_db_prepare(db, "SELECT profile FROM stream_keys"
                            " WHERE stream = $1 AND revoked_at IS NULL", &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, name);
    if (r >= 0) r = weir_db_step(st);
    if (r == 1) {
        const char *v = weir_db_col_text(st, 0);
        snprintf(out, cap, "%s", v ? v : "");
        r = 0;
    } else if (r >= 0) {
        r = AVERROR(ENOENT);
    }
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    return r;
}

/* Looks a credential up by id in `table`; on a match copies column `col`
 * (stream or scope), and the nullable column `col2` when out2 is not NULL
 * ("" for NULL), and records the use. */
static int cred_lookup(weir_dbpool *pool, const char *table, const char *col,
                       const char *prefix, const char *text, char *out, size_t cap,
                       const char *col2, char *out2, size_t cap2)
{
    char id[ID_CHARS + 1], sql[256];
    const char *secret;
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r, ok = 0;
    int64_t last_used = 0, now = weir_clock_unix_ms();

    if (weir_cred_split(prefix, text, id, &secret) < 0)
        return AVERROR(EACCES);
    if ((r = acquire(pool, &db)) < 0)
        return r;
    snprintf(sql, sizeof sql, "SELECT salt, hash, %s, last_used_at, %s FROM %s"
                              " WHERE id = $1 AND revoked_at IS NULL", col,
             out2 ? col2 : "NULL", table);
    r = weir_db_prepare(db, sql, &st);
    if (r >= 0) r = weir_db_bind_text(st, 1, id);
    if (r >= 0) r = weir_db_step(st);
    if (r == 1) {
        size_t sl, hl;
        const void *salt = weir_db_col_blob(st, 0, &sl);
        const void *hash = weir_db_col_blob(st, 1, &hl);
        const char *v = weir_db_col_text(st, 2);
        ok = salt && hash && v && weir_cred_matches(salt, sl, hash, hl, secret);
        if (ok)
            snprintf(out, cap, "%s", v);
        if (ok && out2) {
            const char *v2 = weir_db_col_is_null(st, 4) ? NULL : weir_db_col_text(st, 4);
            snprintf(out2, cap2, "%s", v2 ? v2 : "");
        }
        last_used = weir_db_col_is_null(st, 3) ? 0 : weir_db_col_int64(st, 3);
    }
    weir_db_finalize(st);
    if (ok && now - last_used >= LAST_USED_EVERY_MS) {
        snprintf(sql, sizeof sql, "UPDATE %s SET last_used_at = $1 WHERE id = $2", table);
        db_run(db, sql, NULL, "is", now, id);     /* best effort */
    }
    weir_dbpool_release(pool, db);
    if (r < 0)
        return r;
    return ok ? 0 : AVERROR(EACCES);
}

int weir_keys_lookup(weir_dbpool *pool, const char *key, char *name_out, size_t cap)
{
    return cred_lookup(pool, "stream_keys", "stream", "wk_", key, name_out, cap, NULL, NULL, 0);
}

int weir_keys_lookup_publish(weir_dbpool *pool, const char *key, char *name_out, size_t cap,
                             char srt_passphrase_out[WEIR_KEY_SRT_PASSPHRASE_MAX + 1])
{
    return cred_lookup(pool, "stream_keys", "stream", "wk_", key, name_out, cap,
                       "srt_passphrase", srt_passphrase_out, WEIR_KEY_SRT_PASSPHRASE_MAX + 1);
}

int weir_keys_revoke(weir_dbpool *pool, const char *name)
{
    int r = cred_revoke(pool, "UPDATE stream_keys SET revoked_at = $1"
                              " WHERE stream = $2 AND revoked_at IS NULL", name);
    if (r >= 0)
        weir_log_info("keys", "stream key revoked", WL_STR("stream", name));
    return r;
}

static json_t *json_time_or_null(weir_db_stmt *st, int col)
{
    return weir_db_col_is_null(st, col) ? json_null()
                                        : json_integer(weir_db_col_int64(st, col));
}

/* Runs a SELECT and turns each row into an object with the given keys;
 * columns are: text..., then times (unix ms or NULL). */
static int list_rows(weir_dbpool *pool, const char *sql, const char *const *text_keys,
                     int ntext, const char *const *time_keys, int ntime, json_t **out)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    json_t *arr = json_array();
    int r;

    if (!arr)
        return AVERROR(ENOMEM);
    if ((r = acquire(pool, &db)) < 0) {
        json_decref(arr);
        return r;
    }
    r = weir_db_prepare(db, sql, &st);
    while (r >= 0 && (r = weir_db_step(st)) == 1) {
        json_t *row = json_object();
        for (int i = 0; row && i < ntext; i++) {
            const char *v = weir_db_col_text(st, i);
            json_object_set_new(row, text_keys[i], v ? json_string(v) : json_null());
        }
        for (int i = 0; row && i < ntime; i++)
            json_object_set_new(row, time_keys[i], json_time_or_null(st, ntext + i));
        if (!row || json_array_append_new(arr, row) < 0)
            r = AVERROR(ENOMEM);
    }
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    if (r < 0) {
        json_decref(arr);
        return r;
    }
    *out = arr;
    return 0;
}

int weir_keys_list(weir_dbpool *pool, json_t **out)
{
    static const char *const text[] = { "stream", "note", "profile", "srt_passphrase_set" };
    static const char *const times[] = { "created", "last_used", "revoked" };
    json_t *row;
    size_t i;
    /* Whether a passphrase is set, never the passphrase: it leaves the
     * database only for the SRT handshake (weir_keys_lookup_publish). */
    int r = list_rows(pool, "SELECT stream, note, profile,"
                            " CASE WHEN srt_passphrase IS NULL THEN '' ELSE 'y' END,"
                            " created_at, last_used_at, revoked_at"
                            " FROM stream_keys ORDER BY stream, created_at",
                      text, 4, times, 3, out);
    if (r < 0)
        return r;
    json_array_foreach(*out, i, row) {
        const char *set = json_string_value(json_object_get(row, "srt_passphrase_set"));
        json_object_set_new(row, "srt_passphrase_set", json_boolean(set && *set));
    }
    return 0;
}

int weir_keys_count_active(weir_dbpool *pool, int64_t *count)
{
    weir_db *db;
    weir_db_stmt *st = NULL;
    int r;

    if ((r = acquire(pool, &db)) < 0)
        return r;
    r = weir_db_prepare(db, "SELECT COUNT(*) FROM stream_keys WHERE revoked_at IS NULL", &st);
    if (r >= 0 && (r = weir_db_step(st)) == 1) {
        *count = weir_db_col_int64(st, 0);
        r = 0;
    } else if (r >= 0) {
        r = AVERROR(EIO);
    }
    weir_db_finalize(st);
    weir_dbpool_release(pool, db);
    return r;
}

/* ---- API tokens ----------------------------------------------------------- */

static const char *const scope_names[] = {
    [WEIR_SCOPE_NONE] = "none", [WEIR_SCOPE_READ] = "read",
    [WEIR_SCOPE_WRITE] = "write", [WEIR_SCOPE_ADMIN] = "admin",
};

const char *weir_scope_name(weir_scope s)
{
    return (unsigned)s <= WEIR_SCOPE_ADMIN ? scope_names[s] : "none";
}

weir_scope weir_scope_parse(const char *name)
{
    for (int i = WEIR_SCOPE_READ; i <= WEIR_SCOPE_ADMIN; i++)
        if (name && strcmp(name, scope_names[i]) == 0)
            return (weir_scope)i;
    return WEIR_SCOPE_NONE;
}

int weir_tokens_create(weir_dbpool *pool, weir_scope scope, const char *name,
                       char token_out[WEIR_CRED_LEN + 1], char id_out[9])
{
    cred c;
    int r;

    if (scope == WEIR_SCOPE_NONE)
        return AVERROR(EINVAL);
    if ((r = weir_cred_make("wt_", &c)) < 0)
        return r;
    r = cred_insert(pool, "INSERT INTO api_tokens (id, name, scope, salt, hash, created_at)"
                          " VALUES ($1, $2, $3, $4, $5, $6)", &c, name ? name : "",
                    weir_scope_name(scope), NULL, NULL);
    if (r >= 0) {
        memcpy(token_out, c.text, sizeof c.text);
        memcpy(id_out, c.id, sizeof c.id);
        weir_log_info("keys", "api token created", WL_STR("id", id_out),
                      WL_STR("scope", weir_scope_name(scope)));
    }
    OPENSSL_cleanse(&c, sizeof c);
    return r;
}

int weir_tokens_verify(weir_dbpool *pool, const char *token, weir_scope *scope_out)
{
    char scope[16];
    int r = cred_lookup(pool, "api_tokens", "scope", "wt_", token, scope, sizeof scope, NULL,
                        NULL, 0);
    if (r < 0)
        return r;
    *scope_out = weir_scope_parse(scope);
    return *scope_out == WEIR_SCOPE_NONE ? AVERROR(EACCES) : 0;
}

int weir_tokens_revoke(weir_dbpool *pool, const char *id)
{
    return cred_revoke(pool, "UPDATE api_tokens SET revoked_at = $1"
                             " WHERE id = $2 AND revoked_at IS NULL", id);
}

int weir_tokens_list(weir_dbpool *pool, json_t **out)
{
    static const char *const text[] = { "id", "name", "scope" };
    static const char *const times[] = { "created", "last_used", "revoked" };
    return list_rows(pool, "SELECT id, name, scope, created_at, last_used_at, revoked_at"
                           " FROM api_tokens ORDER BY created_at",
                     text, 3, times, 3, out);
}
