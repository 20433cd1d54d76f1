/*
 * core/log.h — structured logging.
 *
 * One line per event.  Every line carries a timestamp, a level, a module tag
 * and an event name, then key=value fields:
 *
 *   ts=2026-11-29T03:40:00.123Z level=info module=http event=listening port=8080
 *
 * or, with log.format=json, one JSON object per line with the same keys.
 *
 * Fields are typed (WL_STR, WL_INT, ...) so the JSON form needs no guessing.
 * Secrets never reach the sink: WL_SECRET prints only "[redacted]", and a
 * WL_STR whose key names a secret (key, stream_key, token, secret, password,
 * passphrase, authorization, ...) is redacted too, as a second line of
 * defence against a careless call site.
 *
 * A line is formatted into a stack buffer and written with one write(2), so
 * lines from different threads never interleave.
 *
 * Use:
 *   weir_log_info("http", "listening", WL_INT("port", port), WL_STR("addr", a));
 */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum weir_log_level {
    WEIR_LOG_ERROR = 0,
    WEIR_LOG_WARN  = 1,
    WEIR_LOG_INFO  = 2,
    WEIR_LOG_DEBUG = 3,
    WEIR_LOG_TRACE = 4,
} weir_log_level;

typedef enum weir_log_format {
    WEIR_LOG_TEXT = 0,      /* logfmt: key=value */
    WEIR_LOG_JSON = 1,      /* one JSON object per line */
} weir_log_format;

typedef enum weir_log_ftype {
    WEIR_LF_NONE = 0,       /* placeholder, skipped */
    WEIR_LF_STR,
    WEIR_LF_INT,
    WEIR_LF_UINT,
    WEIR_LF_DOUBLE,
    WEIR_LF_BOOL,
    WEIR_LF_SECRET,         /* value never printed */
} weir_log_ftype;

typedef struct weir_log_field {
    const char *key;
    weir_log_ftype type;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
    } v;
} weir_log_field;

#define WL_STR(k, x)    ((weir_log_field){ .key = (k), .type = WEIR_LF_STR,    .v.s = (x) })
#define WL_INT(k, x)    ((weir_log_field){ .key = (k), .type = WEIR_LF_INT,    .v.i = (long long)(x) })
#define WL_UINT(k, x)   ((weir_log_field){ .key = (k), .type = WEIR_LF_UINT,   .v.u = (unsigned long long)(x) })
#define WL_DOUBLE(k, x) ((weir_log_field){ .key = (k), .type = WEIR_LF_DOUBLE, .v.d = (double)(x) })
#define WL_BOOL(k, x)   ((weir_log_field){ .key = (k), .type = WEIR_LF_BOOL,   .v.i = !!(x) })
#define WL_SECRET(k, x) ((weir_log_field){ .key = (k), .type = WEIR_LF_SECRET, .v.s = (x) })
/* An FFmpeg-style negative error code, printed as err=<text>. */
#define WL_ERR(e)       WL_STR("err", weir_log_strerror(e, (char[64]){0}, 64))

/* The sink receives a whole formatted line including the trailing newline. */
typedef void (*weir_log_sink_fn)(void *arg, const char *line, size_t len);

/* Process-wide settings; set once at start-up before threads exist. */
void weir_log_set_level(weir_log_level level);
void weir_log_set_format(weir_log_format format);
/* NULL sink restores stderr.  Tests use this to capture lines. */
void weir_log_set_sink(weir_log_sink_fn fn, void *arg);
/* "error", "warn", "info", "debug", "trace" -> level; -1 if unknown. */
int  weir_log_level_parse(const char *name);

int  weir_log_enabled(weir_log_level level);

/* Formats and emits one line.  `fields` may be NULL when n == 0.  Strings are
 * borrowed for the duration of the call only. */
void weir_log_emit(weir_log_level level, const char *module, const char *event,
                   const weir_log_field *fields, size_t n);

/* Formats one line into buf (always NUL-terminated, truncated with "..." at
 * cap).  Returns the length.  Exposed for tests and the fuzzer. */
size_t weir_log_format_line(char *buf, size_t cap, weir_log_format format,
                            int64_t unix_ms, weir_log_level level,
                            const char *module, const char *event,
                            const weir_log_field *fields, size_t n);

/* av_strerror into buf; returns buf. */
const char *weir_log_strerror(int err, char *buf, size_t cap);

/* 1 if a field with this key must never be printed in clear. */
int weir_log_key_is_secret(const char *key);

/* The leading {0} placeholder keeps the array non-empty when no fields are
 * given; the emitter skips it. */
#define weir_log(level, module, event, ...)                                     \
    do {                                                                        \
        if (weir_log_enabled(level)) {                                          \
            const weir_log_field weir__lf[] = { { 0 }, __VA_ARGS__ };           \
            weir_log_emit((level), (module), (event), weir__lf,                 \
                          sizeof weir__lf / sizeof weir__lf[0]);                \
        }                                                                       \
    } while (0)

#define weir_log_error(m, e, ...) weir_log(WEIR_LOG_ERROR, m, e, __VA_ARGS__)
#define weir_log_warn(m, e, ...)  weir_log(WEIR_LOG_WARN,  m, e, __VA_ARGS__)
#define weir_log_info(m, e, ...)  weir_log(WEIR_LOG_INFO,  m, e, __VA_ARGS__)
#define weir_log_debug(m, e, ...) weir_log(WEIR_LOG_DEBUG, m, e, __VA_ARGS__)
#define weir_log_trace(m, e, ...) weir_log(WEIR_LOG_TRACE, m, e, __VA_ARGS__)

#endif
