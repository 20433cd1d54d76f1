/*
 * core/conf.h — configuration as data.
 *
 * Every module describes its settings once, in a const table of
 * weir_conf_key (name, type, default, range, help), in the manner of nginx's
 * ngx_command_t and FFmpeg's AVOption.  Defaults, YAML parsing, --set
 * overrides, validation, `weir config dump` and the docs all come from those
 * tables; nothing else knows the list of keys.
 *
 * A module owns a plain settings struct; its table points into it with
 * offsetof.  The app registers each (table, struct) pair, which writes the
 * defaults, then applies the YAML file, then the --set overrides, in that
 * order, each later one winning.
 *
 * Storage per type:
 *   INT, DURATION (milliseconds), SIZE (bytes)  int64_t
 *   DOUBLE                                      double
 *   BOOL, ENUM (index into choices)             int
 *   STRING                                      char * (owned by the weir_conf,
 *                                               freed by weir_conf_free)
 *
 * Errors name the place and the key: "weir.yml:12: http.port: must be
 * between 1 and 65535".  Loading collects every error rather than stopping
 * at the first, so one run of `weir config check` shows them all.
 */
#ifndef WEIR_CORE_CONF_H
#define WEIR_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum weir_conf_type {
    WEIR_CONF_INT,
    WEIR_CONF_DOUBLE,
    WEIR_CONF_BOOL,
    WEIR_CONF_STRING,
    WEIR_CONF_ENUM,
    WEIR_CONF_DURATION,     /* "250ms", "30s", "10m", "2h"; a bare number is seconds */
    WEIR_CONF_SIZE,         /* "512", "64k", "1MiB", "2GB"; a bare number is bytes */
} weir_conf_type;

#define WEIR_CONF_SECRET 0x1u   /* never printed by dump or in errors */

typedef struct weir_conf_key {
    const char *name;           /* full dotted name, e.g. "http.port" */
    weir_conf_type type;
    size_t offset;              /* offsetof() into the module's settings struct */
    const char *def;            /* default, written as in YAML */
    double min, max;            /* inclusive range in storage units; min == max: none */
    const char *const *choices; /* ENUM only: NULL-terminated */
    const char *help;
    unsigned flags;
} weir_conf_key;

typedef struct weir_conf_table {
    const char *module;
    const weir_conf_key *keys;
    size_t nkeys;
    /* Optional: checks a value beyond its type and range (a whole grammar in
     * one string, say).  Called for every value of the table's keys (the
     * defaults too) after it parsed by type and before it is stored; returns
     * 0, or -1 with a reason in why (which the error line prints after the
     * key's name).  NULL: no further checks. */
    int (*check)(const weir_conf_key *key, const char *text, char *why, size_t whycap);
} weir_conf_table;

typedef struct weir_conf weir_conf;

/* Error list filled by the loaders: one "where: key: reason" line each. */
typedef struct weir_conf_errors {
    char **lines;
    size_t n;
} weir_conf_errors;

weir_conf *weir_conf_new(void);                 /* NULL on ENOMEM */
/* Frees the conf and every string it stored into registered structs. */
void weir_conf_free(weir_conf *conf);

/* Registers a table over `base` (borrowed, must outlive conf) and writes every
 * default into it.  Returns 0, AVERROR(EEXIST) if a key is registered twice,
 * AVERROR(EINVAL) if a default does not parse (a bug in the table). */
int weir_conf_register(weir_conf *conf, const weir_conf_table *table, void *base);

/* YAML: nested mappings of scalars; "a: {b: 1}" sets "a.b".  Return 0 or the
 * number of errors appended to errs (negative AVERROR on ENOMEM). */
int weir_conf_load_file(weir_conf *conf, const char *path, weir_conf_errors *errs);
int weir_conf_load_string(weir_conf *conf, const char *where,
                          const char *text, size_t len, weir_conf_errors *errs);
/* One "section.key=value" override, as given to --set. */
int weir_conf_set(weir_conf *conf, const char *assignment, weir_conf_errors *errs);

/* Writes the effective configuration as YAML, with each key's help as a
 * comment; secrets that are set print as "[redacted]", which loading then
 * refuses (so a dump never silently becomes a wrong password). */
void weir_conf_dump(const weir_conf *conf, FILE *out);

/* Looks a key up by dotted name; NULL if unknown. */
const weir_conf_key *weir_conf_find(const weir_conf *conf, const char *name);
/* Formats a key's current value as YAML text into buf; returns buf. */
const char *weir_conf_value_string(const weir_conf *conf, const weir_conf_key *key,
                                   char *buf, size_t cap);

void weir_conf_errors_free(weir_conf_errors *errs);
void weir_conf_errors_print(const weir_conf_errors *errs, FILE *out);

#endif
