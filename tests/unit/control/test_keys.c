/*
 * Unit tests for control's stream keys and API tokens on a real SQLite file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "control/control.h"
#include "control/keys/keys.h"

static char dir[] = "/tmp/weir-keys-XXXXXX";
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

TestSuite(keys, .init = setup, .fini = teardown);

Test(keys, create_lookup_revoke)
{
    char key[WEIR_CRED_LEN + 1], name[128];

    cr_assert_eq(weir_keys_create(db, "cam1", "roof", key), 0);
    cr_assert_eq(strlen(key), WEIR_CRED_LEN);
    cr_assert(strncmp(key, "wk_", 3) == 0, "%s", key);
    cr_assert_eq(strspn(key + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 WEIR_CRED_LEN - 3, "not URL-safe: %s", key);
    cr_assert_eq(weir_keys_lookup(db, key, name, sizeof name), 0);
    cr_assert_str_eq(name, "cam1");

    /* One active key per stream. */
    char again[WEIR_CRED_LEN + 1];
    cr_assert_eq(weir_keys_create(db, "cam1", NULL, again), AVERROR(EEXIST));

    cr_assert_eq(weir_keys_revoke(db, "cam1"), 0);
    cr_assert_eq(weir_keys_lookup(db, key, name, sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_revoke(db, "cam1"), AVERROR(ENOENT));
    /* After revoking, the stream can get a new key; the old stays dead. */
    cr_assert_eq(weir_keys_create(db, "cam1", NULL, again), 0);
    cr_assert_str_neq(again, key);
    cr_assert_eq(weir_keys_lookup(db, key, name, sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_lookup(db, again, name, sizeof name), 0);
}

Test(keys, malformed_and_forged_keys_are_refused)
{
    char key[WEIR_CRED_LEN + 1], forged[WEIR_CRED_LEN + 1], name[64];

    cr_assert_eq(weir_keys_create(db, "cam2", NULL, key), 0);
    cr_assert_eq(weir_keys_lookup(db, "", name, sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_lookup(db, "cam2", name, sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_lookup(db, NULL, name, sizeof name), AVERROR(EACCES));
    /* Right id, wrong secret. */
    memcpy(forged, key, sizeof forged);
    forged[WEIR_CRED_LEN - 1] = forged[WEIR_CRED_LEN - 1] == 'A' ? 'B' : 'A';
    cr_assert_eq(weir_keys_lookup(db, forged, name, sizeof name), AVERROR(EACCES));
    /* A token is not a key. */
    memcpy(forged, key, sizeof forged);
    forged[1] = 't';
    cr_assert_eq(weir_keys_lookup(db, forged, name, sizeof name), AVERROR(EACCES));
    /* Too long, bad characters. */
    cr_assert_eq(weir_keys_lookup(db, "wk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", name,
                                  sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_lookup(db, "wk_AAAAAAAA!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", name,
                                  sizeof name), AVERROR(EACCES));
    cr_assert_eq(weir_keys_create(db, "bad name", NULL, key), AVERROR(EINVAL));
    cr_assert_eq(weir_keys_create(db, "", NULL, key), AVERROR(EINVAL));
}

/* A stolen database must not contain the secrets. */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    int found = 0;
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
        found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
    free(buf);
    fclose(f);
    return found;
}

Test(keys, database_holds_no_secret)
{
    char key[WEIR_CRED_LEN + 1], token[WEIR_CRED_LEN + 1], id[9], path[256];
    const char *files[] = { "weir.db", "weir.db-wal" };

    cr_assert_eq(weir_keys_create(db, "cam3", NULL, key), 0);
    cr_assert_eq(weir_tokens_create(db, WEIR_SCOPE_READ, "ci", token, id), 0);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        /* The secret part is everything after the 8-char id. */
        cr_assert_not(file_contains(path, key + 11), "key secret found in %s", path);
        cr_assert_not(file_contains(path, token + 11), "token secret found in %s", path);
    }
    /* The id part is stored (it is the lookup index): proof we looked in the
     * right files. */
    char idpart[9];
    int seen = 0;
    memcpy(idpart, key + 3, 8);
    idpart[8] = '\0';
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        seen |= file_contains(path, idpart);
    }
    cr_assert(seen, "key id %s not found in the database files", idpart);
}

Test(keys, list_never_shows_keys)
{
    char key[WEIR_CRED_LEN + 1];
    json_t *rows;
    char *text;

    cr_assert_eq(weir_keys_create(db, "a", "first", key), 0);
    cr_assert_eq(weir_keys_list(db, &rows), 0);
    cr_assert_eq(json_array_size(rows), 1);
    text = json_dumps(rows, 0);
    cr_assert_null(strstr(text, key + 3), "%s", text);
    cr_assert(strstr(text, "\"first\""), "%s", text);
    free(text);
    json_decref(rows);
}

/* Ids are typed on command lines: none may start like an option. */
Test(keys, ids_never_start_with_a_dash)
{
    char token[WEIR_CRED_LEN + 1], id[9];
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(weir_tokens_create(db, WEIR_SCOPE_READ, NULL, token, id), 0);
        cr_assert(id[0] != '-' && id[0] != '_', "id %s", id);
    }
}

Test(keys, tokens_and_scopes)
{
    char token[WEIR_CRED_LEN + 1], id[9];
    weir_scope scope = WEIR_SCOPE_NONE;

    cr_assert_eq(weir_tokens_create(db, WEIR_SCOPE_NONE, NULL, token, id), AVERROR(EINVAL));
    cr_assert_eq(weir_tokens_create(db, WEIR_SCOPE_WRITE, "deploy", token, id), 0);
    cr_assert(strncmp(token, "wt_", 3) == 0);
    cr_assert_eq(weir_tokens_verify(db, token, &scope), 0);
    cr_assert_eq(scope, WEIR_SCOPE_WRITE);
    cr_assert_eq(weir_tokens_revoke(db, id), 0);
    cr_assert_eq(weir_tokens_verify(db, token, &scope), AVERROR(EACCES));
    cr_assert_eq(weir_tokens_revoke(db, id), AVERROR(ENOENT));
    cr_assert_eq(weir_scope_parse("admin"), WEIR_SCOPE_ADMIN);
    cr_assert_eq(weir_scope_parse("root"), WEIR_SCOPE_NONE);
}

Test(keys, a_key_can_name_a_transcode_profile)
{
    char key[WEIR_CRED_LEN + 1], profile[32] = "x";
    json_t *rows;

    cr_assert_eq(weir_keys_create_with_profile(db, "cam1", NULL, "low", NULL, key), 0);
    cr_assert_eq(weir_keys_profile(db, "cam1", profile, sizeof profile), 0);
    cr_assert_str_eq(profile, "low");
    cr_assert_eq(weir_keys_create(db, "cam2", NULL, key), 0);
    cr_assert_eq(weir_keys_profile(db, "cam2", profile, sizeof profile), 0);
    cr_assert_str_eq(profile, "", "no profile: the default");
    cr_assert_eq(weir_keys_profile(db, "cam3", profile, sizeof profile), AVERROR(ENOENT));
    cr_assert_eq(weir_keys_create_with_profile(db, "cam4", NULL, "Has Space", NULL, key),
                 AVERROR(EINVAL));
    cr_assert_eq(weir_keys_create_with_profile(db, "cam4", NULL, "sixteen-chars-xx", NULL,
                                               key),
                 AVERROR(EINVAL));
    cr_assert_eq(weir_keys_list(db, &rows), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "profile")),
                     "low");
    json_decref(rows);

    /* A revoked key's profile goes with it. */
    cr_assert_eq(weir_keys_revoke(db, "cam1"), 0);
    cr_assert_eq(weir_keys_profile(db, "cam1", profile, sizeof profile), AVERROR(ENOENT));
}

/* A database made before profiles existed gets the column, its keys none. */
Test(keys, profiles_migrate_an_old_database)
{
    char old[128], url[160], key[WEIR_CRED_LEN + 1], profile[32] = "x";
    weir_dbpool *v1;
    snprintf(old, sizeof old, "%s/old", dir);
    cr_assert_eq(mkdir(old, 0700), 0);
    snprintf(url, sizeof url, "sqlite:%s/weir.db", old);
    cr_assert_eq(weir_dbpool_open(&(weir_dbpool_opts){
                     .url = url, .migrations = weir_keys_migrations, .nmigrations = 1,
                     .housekeep_ms = -1 }, &v1), 0);
    weir_dbpool_close(v1);
    cr_assert_eq(weir_control_open_db(&settings, old, &v1), 0);
    cr_assert_eq(weir_keys_create(v1, "cam1", NULL, key), 0);
    cr_assert_eq(weir_keys_profile(v1, "cam1", profile, sizeof profile), 0);
    cr_assert_str_eq(profile, "");
    weir_dbpool_close(v1);
}

/* Migration 4: a key may carry its own SRT passphrase.  It comes back only
 * from the publish lookup; a listing says whether one is set. */
Test(keys, a_key_can_carry_its_own_srt_passphrase)
{
    char key[WEIR_CRED_LEN + 1], other[WEIR_CRED_LEN + 1], name[128];
    char pass[WEIR_KEY_SRT_PASSPHRASE_MAX + 1];
    json_t *rows;
    char *dump;

    cr_assert_eq(weir_keys_create_with_profile(db, "enc", NULL, NULL, "correct horse battery",
                                               key), 0);
    cr_assert_eq(weir_keys_create(db, "plain", NULL, other), 0);
    memset(pass, 'x', sizeof pass);
    cr_assert_eq(weir_keys_lookup_publish(db, key, name, sizeof name, pass), 0);
    cr_assert_str_eq(name, "enc");
    cr_assert_str_eq(pass, "correct horse battery");
    memset(pass, 'x', sizeof pass);
    cr_assert_eq(weir_keys_lookup_publish(db, other, name, sizeof name, pass), 0);
    cr_assert_str_eq(name, "plain");
    cr_assert_str_eq(pass, "", "no passphrase: srt.passphrase applies");

    cr_assert_eq(weir_keys_list(db, &rows), 0);
    dump = json_dumps(rows, 0);
    cr_assert_null(strstr(dump, "correct horse"), "the listing never holds the passphrase");
    free(dump);
    cr_assert(json_is_true(json_object_get(json_array_get(rows, 0), "srt_passphrase_set")));
    cr_assert(json_is_false(json_object_get(json_array_get(rows, 1), "srt_passphrase_set")));
    json_decref(rows);

    /* Set, change and clear on the active key. */
    cr_assert_eq(weir_keys_set_srt_passphrase(db, "plain", "0123456789"), 0);
    cr_assert_eq(weir_keys_lookup_publish(db, other, name, sizeof name, pass), 0);
    cr_assert_str_eq(pass, "0123456789");
    cr_assert_eq(weir_keys_set_srt_passphrase(db, "enc", NULL), 0);
    cr_assert_eq(weir_keys_lookup_publish(db, key, name, sizeof name, pass), 0);
    cr_assert_str_eq(pass, "");
    cr_assert_eq(weir_keys_set_srt_passphrase(db, "nobody", "0123456789"), AVERROR(ENOENT));

    /* SRT's bounds: 10 to 79 bytes. */
    cr_assert_eq(weir_keys_set_srt_passphrase(db, "plain", "short"), AVERROR(EINVAL));
    cr_assert_eq(weir_keys_set_srt_passphrase(db, "plain",
                                              "0123456789012345678901234567890123456789"
                                              "0123456789012345678901234567890123456789"),
                 AVERROR(EINVAL));
    cr_assert_eq(weir_keys_create_with_profile(db, "bad", NULL, NULL, "123456789", key),
                 AVERROR(EINVAL));
    cr_assert_eq(weir_keys_srt_passphrase_valid("0123456789"), 1);
    cr_assert_eq(weir_keys_srt_passphrase_valid("012345678"), 0);

    /* A revoked key's passphrase publishes nothing. */
    cr_assert_eq(weir_keys_revoke(db, "plain"), 0);
    cr_assert_eq(weir_keys_lookup_publish(db, other, name, sizeof name, pass), AVERROR(EACCES));
}
