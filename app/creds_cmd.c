/*
 * app/creds_cmd.c — `weir keys ...` and `weir tokens ...`.
 *
 * The new secret goes alone on standard output, so `key=$(weir keys create
 * cam1)` works; everything said to the person goes to standard error.
 */
#include "app/app.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>

static void print_time(json_t *v)
{
    char buf[32];
    time_t t;
    struct tm tm;

    if (!json_is_integer(v)) {
        printf("%-20s", "-");
        return;
    }
    t = (time_t)(json_integer_value(v) / 1000);
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-20s", buf);
}

/* Prints rows as a table (or JSON with --json). */
static void print_list(json_t *rows, const char *key_col, int json)
{
    size_t i;
    json_t *row;

    if (json) {
        char *text = json_dumps(rows, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
        return;
    }
    printf("%-24s %-20s %-20s %-8s %s\n", strcmp(key_col, "id") == 0 ? "ID" : "STREAM",
           "CREATED", "LAST USED", "STATE", strcmp(key_col, "id") == 0 ? "SCOPE NAME" : "NOTE");
    json_array_foreach(rows, i, row) {
        printf("%-24s ", json_string_value(json_object_get(row, key_col)));
        print_time(json_object_get(row, "created"));
        putchar(' ');
        print_time(json_object_get(row, "last_used"));
        printf(" %-8s ", json_is_null(json_object_get(row, "revoked")) ? "active" : "revoked");
        if (strcmp(key_col, "id") == 0)
            printf("%s %s\n", json_string_value(json_object_get(row, "scope")),
                   json_string_value(json_object_get(row, "name")));
        else {
            const char *profile = json_string_value(json_object_get(row, "profile"));
            printf("%s%s%s%s%s\n", json_string_value(json_object_get(row, "note")),
                   profile && *profile ? " [profile " : "", profile && *profile ? profile : "",
                   profile && *profile ? "]" : "",
                   json_is_true(json_object_get(row, "srt_passphrase_set"))
                       ? " [srt passphrase]" : "");
        }
    }
}

/* Loads the config and opens the database the server would use. */
static int open_db(const weir_cli *cli, weir_conf **conf, weir_settings *s, weir_dbpool **db)
{
    if (!(*conf = weir_conf_new()) || weir_app_load_config(*conf, s, cli) < 0)
        return -1;
    weir_core_apply_log_settings(&s->core);
    weir_log_set_level(WEIR_LOG_WARN);      /* the CLI speaks for itself */
    if (weir_app_make_dirs(s->core.data_dir) < 0) {
        fprintf(stderr, "weir: cannot create data_dir %s\n", s->core.data_dir);
        return -1;
    }
    return weir_control_open_db(&s->db, s->core.data_dir, db) < 0 ? -1 : 0;
}

/* What differs between `weir keys` and `weir tokens`; the rest is shared. */
typedef struct creds_kind {
    const char *usage;
    const char *list_key;           /* the column that names a row: "stream" or "id" */
    int create_args;                /* positional arguments of `create` */
    int (*create)(const weir_cli *cli, const weir_settings *s, weir_dbpool *db);
    int (*list)(weir_dbpool *db, json_t **out);
    int (*revoke)(weir_dbpool *db, const char *which);
    const char *not_found;          /* revoke of nothing active */
} creds_kind;

/* 1 if name is a transcode profile (or not given). */
static int profile_known(const char *name)
{
    for (int i = 0; name && weir_transcode_profile_names[i]; i++)
        if (strcmp(weir_transcode_profile_names[i], name) == 0)
            return 1;
    return !name;
}

static int create_key(const weir_cli *cli, const weir_settings *s, weir_dbpool *db)
{
    char key[WEIR_CRED_LEN + 1];
    if (!profile_known(cli->profile)) {
        fprintf(stderr, "weir: --profile must be default, low or high\n");
        return AVERROR(EINVAL);
    }
    int r = weir_keys_create_with_profile(db, cli->args[1], cli->note, cli->profile, NULL,
                                          key);

    if (r == AVERROR(EINVAL))
        fprintf(stderr, "weir: stream names are 1-64 characters of A-Z a-z 0-9 _ -\n");
    else if (r == AVERROR(EEXIST))
        fprintf(stderr, "weir: stream %s already has a key; `weir keys revoke %s` first\n",
                cli->args[1], cli->args[1]);
    else if (r < 0)
        fprintf(stderr, "weir: cannot create the key: %s\n", av_err2str(r));
    if (r < 0)
        return r;
    fprintf(stderr, "Stream key for \"%s\" (shown once; weir keeps only its hash).\n"
                    "Publish to rtmp://<host>:%d/live with this key:\n",
            cli->args[1], (int)s->ingest.rtmp_port);
    printf("%s\n", key);
    return 0;
}

static int create_token(const weir_cli *cli, const weir_settings *s, weir_dbpool *db)
{
    char token[WEIR_CRED_LEN + 1], id[9];
    int r = weir_tokens_create(db, weir_scope_parse(cli->scope), cli->name, token, id);

    (void)s;
    if (r < 0) {
        fprintf(stderr, "weir: cannot create the token: %s\n", av_err2str(r));
        return r;
    }
    fprintf(stderr, "API token %s, scope %s (shown once; weir keeps only its hash).\n"
                    "Use it as: Authorization: Bearer <token>\n", id, cli->scope);
    printf("%s\n", token);
    return 0;
}

static const creds_kind keys_kind = {
    .usage = "usage: weir keys create STREAM [--note TEXT] [--profile NAME]"
             " | weir keys list [--json]"
             " | weir keys revoke STREAM\n",
    .list_key = "stream", .create_args = 2, .create = create_key, .list = weir_keys_list,
    .revoke = weir_keys_revoke, .not_found = "that stream has no active key",
};

static const creds_kind tokens_kind = {
    .usage = "usage: weir tokens create --scope read|write|admin [--name TEXT]"
             " | weir tokens list [--json] | weir tokens revoke ID\n",
    .list_key = "id", .create_args = 1, .create = create_token, .list = weir_tokens_list,
    .revoke = weir_tokens_revoke, .not_found = "no active token with that id",
};

static int run_creds(const weir_cli *cli, const creds_kind *k)
{
    weir_settings s = { 0 };
    weir_conf *conf = NULL;
    weir_dbpool *db = NULL;
    const char *sub = cli->nargs ? cli->args[0] : "";
    int create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0;
    int revoke = strcmp(sub, "revoke") == 0;
    int rc = 1, r = 0;

    if (!((create && cli->nargs == k->create_args) || (list && cli->nargs == 1) ||
          (revoke && cli->nargs == 2)) ||
        (create && k == &tokens_kind && weir_scope_parse(cli->scope) == WEIR_SCOPE_NONE)) {
        fputs(k->usage, stderr);
        return 2;
    }
    if (open_db(cli, &conf, &s, &db) < 0)
        goto out;
    if (create) {
        r = k->create(cli, &s, db);
    } else if (list) {
        json_t *rows;
        if ((r = k->list(db, &rows)) < 0) {
            fprintf(stderr, "weir: cannot list: %s\n", av_err2str(r));
        } else {
            print_list(rows, k->list_key, cli->json);
            json_decref(rows);
        }
    } else {
        r = k->revoke(db, cli->args[1]);
        if (r < 0)
            fprintf(stderr, "weir: %s\n", r == AVERROR(ENOENT) ? k->not_found : av_err2str(r));
        else
            fprintf(stderr, "Revoked %s.\n", cli->args[1]);
    }
    rc = r < 0 ? 1 : 0;
out:
    weir_dbpool_close(db);
    weir_conf_free(conf);
    return rc;
}

int weir_cmd_keys(const weir_cli *cli) { return run_creds(cli, &keys_kind); }
int weir_cmd_tokens(const weir_cli *cli) { return run_creds(cli, &tokens_kind); }
