/*
 * core/log.c — see log.h.  Formatting is pure (weir_log_format_line) so it can
 * be tested and fuzzed without a clock or a file descriptor.
 */
#include "core/log.h"
#include "core/clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>

/* Longest line we emit; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 4096

static weir_log_level log_level = WEIR_LOG_INFO;
static weir_log_format log_format = WEIR_LOG_TEXT;
static weir_log_sink_fn log_sink;
static void *log_sink_arg;

static const char *const level_names[] = {
    [WEIR_LOG_ERROR] = "error",
    [WEIR_LOG_WARN]  = "warn",
    [WEIR_LOG_INFO]  = "info",
    [WEIR_LOG_DEBUG] = "debug",
    [WEIR_LOG_TRACE] = "trace",
};

/* Keys whose values are secrets wherever they appear.  A key matches when it
 * equals one of these or ends in "_<name>" (stream_key, api_token, ...). */
static const char *const secret_keys[] = {
    "key", "token", "secret", "password", "passphrase", "authorization",
    "cookie", "credential", "credentials", "master_key",
};

void weir_log_set_level(weir_log_level level) { log_level = level; }
void weir_log_set_format(weir_log_format format) { log_format = format; }

void weir_log_set_sink(weir_log_sink_fn fn, void *arg)
{
    log_sink = fn;
    log_sink_arg = arg;
}

int weir_log_enabled(weir_log_level level) { return level <= log_level; }

int weir_log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *weir_log_strerror(int err, char *buf, size_t cap)
{
    if (av_strerror(err, buf, cap) < 0)
        snprintf(buf, cap, "error %d", err);
    return buf;
}

int weir_log_key_is_secret(const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
        const char *s = secret_keys[i];
        size_t slen = strlen(s);
        if (strcasecmp(key, s) == 0)
            return 1;
        if (klen > slen && key[klen - slen - 1] == '_' &&
            strcasecmp(key + klen - slen, s) == 0)
            return 1;
    }
    return 0;
}

/* An append-only writer into a fixed buffer that remembers truncation. */
typedef struct out {
    char *buf;
    size_t cap, len;        /* cap includes room for the NUL */
    int truncated;
} out;

static void put(out *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room) {
        n = room;
        o->truncated = 1;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void putf(out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* logfmt: bare when safe, otherwise double-quoted with escapes. */
static void put_text_value(out *o, const char *s)
{
    int bare = *s != '\0';
    for (const char *p = s; *p && bare; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            bare = 0;
    if (bare) {
        puts_(o, s);
        return;
    }
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            put(o, e, 2);
        } else if (*p == '\n') {
            puts_(o, "\\n");
        } else if (*p < ' ' || *p == 0x7f) {
            putf(o, "\\x%02x", *p);
        } else {
            put(o, (const char *)p, 1);
        }
    }
    put(o, "\"", 1);
}

/* JSON string: escapes per RFC 8259; bytes >= 0x80 pass through. */
static void put_json_string(out *o, const char *s)
{
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            put(o, e, 2);
        } else if (*p == '\n') {
            puts_(o, "\\n");
        } else if (*p < ' ' || *p == 0x7f) {
            putf(o, "\\u%04x", *p);
        } else {
            put(o, (const char *)p, 1);
        }
    }
    put(o, "\"", 1);
}

static void put_key(out *o, weir_log_format fmt, const char *key)
{
    if (fmt == WEIR_LOG_JSON) {
        put(o, ",", 1);
        put_json_string(o, key);
        put(o, ":", 1);
    } else {
        put(o, " ", 1);
        put_text_value(o, key);
        put(o, "=", 1);
    }
}

static void put_str(out *o, weir_log_format fmt, const char *s)
{
    if (fmt == WEIR_LOG_JSON)
        put_json_string(o, s);
    else
        put_text_value(o, s);
}

static void put_field(out *o, weir_log_format fmt, const weir_log_field *f)
{
    const char *key = f->key ? f->key : "?";
    put_key(o, fmt, key);
    switch (f->type) {
    case WEIR_LF_STR:
        if (weir_log_key_is_secret(key))
            put_str(o, fmt, "[redacted]");
        else
            put_str(o, fmt, f->v.s ? f->v.s : "(null)");
        break;
    case WEIR_LF_SECRET:
        put_str(o, fmt, "[redacted]");
        break;
    case WEIR_LF_INT:
        putf(o, "%lld", f->v.i);
        break;
    case WEIR_LF_UINT:
        putf(o, "%llu", f->v.u);
        break;
    case WEIR_LF_DOUBLE:
        /* JSON has no NaN or infinity. */
        if (f->v.d != f->v.d || f->v.d > 1e308 || f->v.d < -1e308)
            put_str(o, fmt, "nan");
        else
            putf(o, "%.6g", f->v.d);
        break;
    case WEIR_LF_BOOL:
        puts_(o, f->v.i ? "true" : "false");
        break;
    case WEIR_LF_NONE:
        break;
    }
}

static void put_timestamp(out *o, int64_t unix_ms)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    char tmp[32];
    gmtime_r(&secs, &tm);
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    puts_(o, tmp);
    putf(o, ".%03dZ", (int)(unix_ms % 1000));
}

size_t weir_log_format_line(char *buf, size_t cap, weir_log_format fmt,
                            int64_t unix_ms, weir_log_level level,
                            const char *module, const char *event,
                            const weir_log_field *fields, size_t n)
{
    out o = { .buf = buf, .cap = cap };
    const char *lname = (unsigned)level <= WEIR_LOG_TRACE ? level_names[level] : "?";

    if (cap < 8) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    o.cap = cap - 4;          /* keep room for "...\n" */
    if (fmt == WEIR_LOG_JSON) {
        puts_(&o, "{\"ts\":\"");
        put_timestamp(&o, unix_ms);
        puts_(&o, "\",\"level\":\"");
        puts_(&o, lname);
        puts_(&o, "\",\"module\":");
        put_json_string(&o, module);
        puts_(&o, ",\"event\":");
        put_json_string(&o, event);
    } else {
        puts_(&o, "ts=");
        put_timestamp(&o, unix_ms);
        puts_(&o, " level=");
        puts_(&o, lname);
        puts_(&o, " module=");
        put_text_value(&o, module);
        puts_(&o, " event=");
        put_text_value(&o, event);
    }
    for (size_t i = 0; i < n; i++)
        if (fields[i].type != WEIR_LF_NONE)
            put_field(&o, fmt, &fields[i]);
    if (fmt == WEIR_LOG_JSON && !o.truncated)
        put(&o, "}", 1);

    o.cap = cap;
    if (o.truncated) {
        /* A cut JSON line is not JSON any more; say so plainly in both forms. */
        puts_(&o, "...");
    }
    put(&o, "\n", 1);
    buf[o.len] = '\0';
    return o.len;
}

void weir_log_emit(weir_log_level level, const char *module, const char *event,
                   const weir_log_field *fields, size_t n)
{
    char line[LOG_LINE_MAX];
    size_t len;

    if (!weir_log_enabled(level))
        return;
    len = weir_log_format_line(line, sizeof line, log_format, weir_clock_unix_ms(),
                               level, module, event, fields, n);
    if (log_sink) {
        log_sink(log_sink_arg, line, len);
        return;
    }
    /* One write per line: lines from different threads never interleave. */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}
