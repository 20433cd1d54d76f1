/*
 * Unit tests for core/log: line format, escaping, JSON validity, secret
 * redaction, truncation, level filtering.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "core/core.h"

#define T0 1764387600123LL      /* 2025-11-29T03:40:00.123Z */

static char line[4096];

static size_t fmt(weir_log_format f, const weir_log_field *fields, size_t n)
{
    return weir_log_format_line(line, sizeof line, f, T0, WEIR_LOG_INFO, "http",
                                "listening", fields, n);
}

Test(log, text_line_shape)
{
    weir_log_field f[] = { WL_INT("port", 8080), WL_STR("addr", "0.0.0.0"),
                           WL_BOOL("tls", 0), WL_DOUBLE("load", 0.5) };
    size_t n = fmt(WEIR_LOG_TEXT, f, 4);
    cr_assert_str_eq(line, "ts=2025-11-29T03:40:00.123Z level=info module=http "
                           "event=listening port=8080 addr=0.0.0.0 tls=false load=0.5\n");
    cr_assert_eq(n, strlen(line));
}

Test(log, text_values_are_quoted_and_escaped)
{
    weir_log_field f[] = { WL_STR("msg", "two words"), WL_STR("q", "say \"hi\"\n"),
                           WL_STR("empty", ""), WL_STR("eq", "a=b") };
    fmt(WEIR_LOG_TEXT, f, 4);
    cr_assert(strstr(line, " msg=\"two words\""), "%s", line);
    cr_assert(strstr(line, " q=\"say \\\"hi\\\"\\n\""), "%s", line);
    cr_assert(strstr(line, " empty=\"\""), "%s", line);
    cr_assert(strstr(line, " eq=\"a=b\""), "%s", line);
    /* One event, one line. */
    cr_assert_eq(strchr(line, '\n'), line + strlen(line) - 1);
}

Test(log, json_line_parses)
{
    weir_log_field f[] = { WL_INT("port", -1), WL_STR("path", "/a\"b\\c\x01"),
                           WL_UINT("bytes", 1ULL << 40), WL_BOOL("ok", 1) };
    json_error_t err;
    json_t *obj;

    fmt(WEIR_LOG_JSON, f, 4);
    obj = json_loads(line, 0, &err);
    cr_assert_not_null(obj, "%s: %s", err.text, line);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "module")), "http");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "event")), "listening");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "ts")), "2025-11-29T03:40:00.123Z");
    cr_assert_eq(json_integer_value(json_object_get(obj, "port")), -1);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "path")), "/a\"b\\c\x01");
    cr_assert_eq(json_integer_value(json_object_get(obj, "bytes")), 1LL << 40);
    cr_assert(json_is_true(json_object_get(obj, "ok")));
    json_decref(obj);
}

Test(log, secrets_are_never_printed)
{
    const char *key = "live_8f14e45fceea167a5a36dedd4bea2543";
    weir_log_field f[] = { WL_SECRET("anything", key), WL_STR("stream_key", key),
                           WL_STR("token", key), WL_STR("Authorization", key),
                           WL_STR("passphrase", key), WL_STR("api_token", key) };
    for (int form = 0; form < 2; form++) {
        fmt(form ? WEIR_LOG_JSON : WEIR_LOG_TEXT, f, 6);
        cr_assert_null(strstr(line, "8f14e45f"), "secret in: %s", line);
        cr_assert(strstr(line, "[redacted]"), "%s", line);
    }
}

Test(log, secret_key_names)
{
    cr_assert(weir_log_key_is_secret("key"));
    cr_assert(weir_log_key_is_secret("stream_key"));
    cr_assert(weir_log_key_is_secret("PASSWORD"));
    cr_assert_not(weir_log_key_is_secret("keyframes"));
    cr_assert_not(weir_log_key_is_secret("monkey"));
    cr_assert_not(weir_log_key_is_secret("path"));
}

Test(log, long_lines_are_cut_not_overflowed)
{
    char big[8192];
    char small[64];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    weir_log_field f[] = { WL_STR("blob", big) };
    size_t n = weir_log_format_line(small, sizeof small, WEIR_LOG_TEXT, T0, WEIR_LOG_WARN,
                                    "m", "e", f, 1);
    cr_assert_eq(n, strlen(small));
    cr_assert_lt(n, sizeof small);
    cr_assert_str_eq(small + n - 4, "...\n", "%s", small);
}

static char captured[8192];
static size_t ncaptured;

static void capture(void *arg, const char *l, size_t len)
{
    (void)arg;
    if (ncaptured + len < sizeof captured) {
        memcpy(captured + ncaptured, l, len);
        ncaptured += len;
        captured[ncaptured] = '\0';
    }
}

Test(log, level_filter_and_sink)
{
    weir_log_set_sink(capture, NULL);
    weir_log_set_level(WEIR_LOG_WARN);
    weir_log_info("t", "hidden", WL_INT("n", 1));
    weir_log_warn("t", "shown", WL_INT("n", 2));
    weir_log_error("t", "no fields");
    weir_log_set_sink(NULL, NULL);
    weir_log_set_level(WEIR_LOG_INFO);
    cr_assert_null(strstr(captured, "hidden"));
    cr_assert(strstr(captured, "level=warn module=t event=shown n=2\n"), "%s", captured);
    cr_assert(strstr(captured, "level=error module=t event=\"no fields\"\n"), "%s", captured);
    cr_assert_eq(weir_log_level_parse("debug"), WEIR_LOG_DEBUG);
    cr_assert_eq(weir_log_level_parse("loud"), -1);
}
