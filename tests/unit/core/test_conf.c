/*
 * Unit tests for core/conf: tables, YAML loading, --set, errors naming
 * file:line and key, dump round trip, the shipped config/weir.yml.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct demo {
    int64_t port;
    double ratio;
    int on;
    char *name;
    int mode;
    int64_t timeout;
    int64_t size;
    char *secret;
} demo;

static const char *const modes[] = { "fast", "slow", NULL };

#define K(f) offsetof(demo, f)
static const weir_conf_key demo_keys[] = {
    { "net.port", WEIR_CONF_INT, K(port), "8080", 1, 65535, NULL, "port", 0 },
    { "net.ratio", WEIR_CONF_DOUBLE, K(ratio), "0.5", 0, 1, NULL, "ratio", 0 },
    { "net.on", WEIR_CONF_BOOL, K(on), "true", 0, 0, NULL, "on", 0 },
    { "name", WEIR_CONF_STRING, K(name), "weir", 0, 0, NULL, "name", 0 },
    { "net.mode", WEIR_CONF_ENUM, K(mode), "fast", 0, 0, modes, "mode", 0 },
    { "net.timeout", WEIR_CONF_DURATION, K(timeout), "30s", 0, 3600000, NULL, "timeout", 0 },
    { "net.size", WEIR_CONF_SIZE, K(size), "1MiB", 0, 0, NULL, "size", 0 },
    { "net.secret", WEIR_CONF_STRING, K(secret), "hunter2", 0, 0, NULL, "secret",
      WEIR_CONF_SECRET },
};
static const weir_conf_table demo_table = { .module = "demo", .keys = demo_keys,
                                            .nkeys = sizeof demo_keys / sizeof demo_keys[0] };

static weir_conf *conf;
static demo d;
static weir_conf_errors errs;

static void setup(void)
{
    memset(&d, 0, sizeof d);
    conf = weir_conf_new();
    cr_assert_not_null(conf);
    cr_assert_eq(weir_conf_register(conf, &demo_table, &d), 0);
}

static void teardown(void)
{
    weir_conf_free(conf);
    weir_conf_errors_free(&errs);
}

static int load(const char *text)
{
    return weir_conf_load_string(conf, "t.yml", text, strlen(text), &errs);
}

static int has_error(const char *line)
{
    for (size_t i = 0; i < errs.n; i++)
        if (strcmp(errs.lines[i], line) == 0)
            return 1;
    return 0;
}

TestSuite(conf, .init = setup, .fini = teardown);

Test(conf, defaults_are_applied_at_register)
{
    cr_assert_eq(d.port, 8080);
    cr_assert_float_eq(d.ratio, 0.5, 1e-12);
    cr_assert_eq(d.on, 1);
    cr_assert_str_eq(d.name, "weir");
    cr_assert_eq(d.mode, 0);
    cr_assert_eq(d.timeout, 30000);
    cr_assert_eq(d.size, 1048576);
}

Test(conf, nested_yaml_sets_values)
{
    cr_assert_eq(load("name: edge-1\nnet:\n  port: 1935\n  on: no\n  mode: slow\n"
                      "  timeout: 250ms\n  size: 64k\n  ratio: 0.25\n"), 0);
    cr_assert_eq(errs.n, 0);
    cr_assert_eq(d.port, 1935);
    cr_assert_eq(d.on, 0);
    cr_assert_eq(d.mode, 1);
    cr_assert_eq(d.timeout, 250);
    cr_assert_eq(d.size, 65536);
    cr_assert_float_eq(d.ratio, 0.25, 1e-12);
    cr_assert_str_eq(d.name, "edge-1");
}

Test(conf, dotted_keys_work_at_top_level)
{
    cr_assert_eq(load("net.port: 2000\n"), 0);
    cr_assert_eq(d.port, 2000);
}

Test(conf, errors_name_file_line_and_key)
{
    int n = load("net:\n  port: 0\n  ratio: 2\n  on: maybe\n  mode: medium\n"
                 "  timeout: soon\n  prot: 1\nbogus: x\n");
    cr_assert_eq(n, 7, "got %d errors", n);
    cr_assert(has_error("t.yml:2: net.port: must be between 1 and 65535"));
    cr_assert(has_error("t.yml:3: net.ratio: must be between 0 and 1"));
    cr_assert(has_error("t.yml:4: net.on: expected true or false"));
    cr_assert(has_error("t.yml:5: net.mode: must be one of fast, slow"));
    cr_assert(has_error("t.yml:6: net.timeout: expected a duration such as 500ms, 30s, 10m"));
    cr_assert(has_error("t.yml:7: net.prot: unknown key (did you mean net.port?)"));
    cr_assert(has_error("t.yml:8: bogus: unknown key"));
    /* A rejected value leaves the previous one in place. */
    cr_assert_eq(d.port, 8080);
}

Test(conf, structure_errors)
{
    cr_assert_gt(load("- a\n- b\n"), 0);
    cr_assert(has_error("t.yml:1: expected a mapping of settings at the top level"));
    weir_conf_errors_free(&errs);
    cr_assert_gt(load("net: 5\n"), 0);
    cr_assert(has_error("t.yml:1: net: is a section; expected a mapping of keys"));
    weir_conf_errors_free(&errs);
    cr_assert_gt(load("net:\n  port:\n    deep: 1\n"), 0);
    cr_assert(has_error("t.yml:2: net.port: expected an integer, not a mapping"));
    weir_conf_errors_free(&errs);
    cr_assert_gt(load("net:\n  port: [1, 2]\n"), 0);
    cr_assert(has_error("t.yml:2: net.port: expected an integer, not a list"));
}

Test(conf, duplicate_key_in_one_file)
{
    cr_assert_eq(load("net:\n  port: 1\n  port: 2\n"), 1);
    cr_assert(has_error("t.yml:3: net.port: set twice in this file"));
}

Test(conf, yaml_syntax_error_has_a_line)
{
    cr_assert_eq(load("net:\n  port: 1\n bad: [\n"), 1);
    cr_assert_eq(errs.n, 1);
    cr_assert(strncmp(errs.lines[0], "t.yml:", 6) == 0, "%s", errs.lines[0]);
    cr_assert(strstr(errs.lines[0], "YAML syntax error"), "%s", errs.lines[0]);
}

Test(conf, empty_document_is_fine)
{
    cr_assert_eq(load(""), 0);
    cr_assert_eq(load("# only a comment\n"), 0);
    cr_assert_eq(d.port, 8080);
}

Test(conf, set_overrides_file)
{
    cr_assert_eq(load("net:\n  port: 1000\n"), 0);
    cr_assert_eq(weir_conf_set(conf, "net.port=2000", &errs), 0);
    cr_assert_eq(d.port, 2000);
    cr_assert_eq(weir_conf_set(conf, "name=", &errs), 0);
    cr_assert_str_eq(d.name, "");
    cr_assert_eq(weir_conf_set(conf, "net.port=x", &errs), 1);
    cr_assert(has_error("--set: net.port: expected an integer"));
    cr_assert_eq(weir_conf_set(conf, "net.nope=1", &errs), 1);
    cr_assert(has_error("--set: net.nope: unknown key (did you mean net.mode?)") ||
              has_error("--set: net.nope: unknown key (did you mean net.on?)"));
    cr_assert_eq(weir_conf_set(conf, "noequals", &errs), 1);
    cr_assert_eq(d.port, 2000);
}

Test(conf, units)
{
    cr_assert_eq(weir_conf_set(conf, "net.timeout=1.5s", &errs), 0);
    cr_assert_eq(d.timeout, 1500);
    cr_assert_eq(weir_conf_set(conf, "net.timeout=2m", &errs), 0);
    cr_assert_eq(d.timeout, 120000);
    cr_assert_eq(weir_conf_set(conf, "net.timeout=7", &errs), 0);   /* bare = seconds */
    cr_assert_eq(d.timeout, 7000);
    cr_assert_eq(weir_conf_set(conf, "net.timeout=2h", &errs), 1);  /* over 1h */
    cr_assert_eq(weir_conf_set(conf, "net.size=2GB", &errs), 0);
    cr_assert_eq(d.size, 2000000000);
    cr_assert_eq(weir_conf_set(conf, "net.size=3MiB", &errs), 0);
    cr_assert_eq(d.size, 3 * 1048576);
    cr_assert_eq(weir_conf_set(conf, "net.size=12 parsecs", &errs), 1);
}

Test(conf, registering_a_key_twice_fails)
{
    demo other;
    cr_assert_eq(weir_conf_register(conf, &demo_table, &other), AVERROR(EEXIST));
}

/* A table whose check hook accepts only words of one letter repeated. */
typedef struct checked { char *word; int64_t n; } checked;

static int check_word(const weir_conf_key *key, const char *text, char *why, size_t whycap)
{
    if (strcmp(key->name, "chk.word") != 0)
        return 0;
    for (const char *p = text; *p; p++)
        if (*p != text[0]) {
            snprintf(why, whycap, "bad letter '%c' at %d", *p, (int)(p - text));
            return -1;
        }
    return 0;
}

static const weir_conf_key checked_keys[] = {
    { "chk.word", WEIR_CONF_STRING, offsetof(checked, word), "aaa", 0, 0, NULL, "w", 0 },
    { "chk.n", WEIR_CONF_INT, offsetof(checked, n), "1", 0, 9, NULL, "n", 0 },
};
static const weir_conf_table checked_table = {
    .module = "chk", .keys = checked_keys, .nkeys = 2, .check = check_word,
};

Test(conf, a_table_check_hook_rejects_values_with_their_place)
{
    static checked c;
    cr_assert_eq(weir_conf_register(conf, &checked_table, &c), 0);
    cr_assert_str_eq(c.word, "aaa");
    cr_assert_eq(load("chk:\n  n: 3\n  word: bbab\n"), 1);
    cr_assert(has_error("t.yml:3: chk.word: bad letter 'a' at 2"), "%s", errs.lines[0]);
    cr_assert_str_eq(c.word, "aaa");             /* the refused value was not stored */
    cr_assert_eq(c.n, 3);
    cr_assert_eq(weir_conf_set(conf, "chk.word=xx", &errs), 0);
    cr_assert_str_eq(c.word, "xx");
    cr_assert_eq(weir_conf_set(conf, "chk.word=xy", &errs), 1);
    cr_assert(has_error("--set: chk.word: bad letter 'y' at 1"));
}

static char *dump_to_string(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    weir_conf_dump(conf, f);
    fclose(f);
    return buf;
}

Test(conf, dump_round_trips_and_hides_secrets)
{
    char *text;
    demo d2;
    weir_conf *c2 = weir_conf_new();
    weir_conf_errors e2 = { 0 };

    cr_assert_eq(weir_conf_set(conf, "name=a: b # c", &errs), 0);
    cr_assert_eq(weir_conf_set(conf, "net.timeout=90s", &errs), 0);
    text = dump_to_string();
    cr_assert_null(strstr(text, "hunter2"), "secret leaked:\n%s", text);
    cr_assert(strstr(text, "timeout: 90s"), "%s", text);

    memset(&d2, 0, sizeof d2);
    cr_assert_eq(weir_conf_register(c2, &demo_table, &d2), 0);
    /* Everything loads back but the secret, which is refused by name. */
    cr_assert_eq(weir_conf_load_string(c2, "dump", text, strlen(text), &e2), 1);
    cr_assert(strstr(e2.lines[0], "net.secret: is a secret"), "%s", e2.lines[0]);
    cr_assert_str_eq(d2.name, "a: b # c");
    cr_assert_eq(d2.timeout, 90000);
    cr_assert_eq(d2.port, d.port);
    cr_assert_eq(d2.size, d.size);
    /* The redacted secret is refused, not taken for the password. */
    cr_assert_str_eq(d2.secret, "hunter2");
    cr_assert_eq(weir_conf_set(c2, "net.secret=[redacted]", &e2), 1);
    cr_assert_str_eq(d2.secret, "hunter2");
    free(text);
    weir_conf_errors_free(&e2);
    weir_conf_free(c2);
}

/* config/weir.yml documents the defaults; it must say exactly what the
 * tables say, key for key. */
Test(shipped, weir_yml_matches_builtin_defaults)
{
    const char *root = getenv("WEIR_SOURCE_ROOT");
    char path[4096];
    weir_core_settings a, b;
    weir_conf *defaults = weir_conf_new(), *file = weir_conf_new();
    weir_conf_errors e = { 0 };

    cr_assert_not_null(root, "WEIR_SOURCE_ROOT not set");
    snprintf(path, sizeof path, "%s/config/weir.yml", root);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    cr_assert_eq(weir_conf_register(defaults, &weir_core_conf_table, &a), 0);
    cr_assert_eq(weir_conf_register(file, &weir_core_conf_table, &b), 0);
    /* The file also holds other modules' keys; unknown-key errors for those
     * are expected here, so count only errors about core keys. */
    weir_conf_load_file(file, path, &e);
    for (size_t i = 0; i < e.n; i++)
        cr_assert(strstr(e.lines[i], "unknown key"), "%s", e.lines[i]);
    for (size_t i = 0; i < weir_core_conf_table.nkeys; i++) {
        const weir_conf_key *k = &weir_core_conf_table.keys[i];
        char v1[256], v2[256];
        weir_conf_value_string(defaults, k, v1, sizeof v1);
        weir_conf_value_string(file, k, v2, sizeof v2);
        cr_assert_str_eq(v1, v2, "%s: default %s, weir.yml says %s", k->name, v1, v2);
    }
    weir_conf_errors_free(&e);
    weir_conf_free(defaults);
    weir_conf_free(file);
}
