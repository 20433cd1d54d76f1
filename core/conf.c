/*
 * core/conf.c — see conf.h.
 *
 * Flow of one value:  text (table default | YAML scalar | --set) -> parse by
 * type -> range check -> store at base + offset.  All three sources go
 * through conf_apply(), so a default, a file and an override can never be
 * validated differently.
 */
#include "core/conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>
#include <libavutil/error.h>

#define CONF_MAX_ERRORS   100
#define CONF_MAX_DEPTH    8
#define CONF_MAX_FILE     (1 << 20)     /* a config file is small; refuse huge ones */
#define CONF_REDACTED     "[redacted]"  /* what dump prints for a secret */

typedef struct conf_entry {
    const weir_conf_key *key;
    const weir_conf_table *table;
    void *base;
} conf_entry;

struct weir_conf {
    conf_entry *entries;
    size_t n, cap;
};

/* ---- errors ---------------------------------------------------------- */

static void conf_error(weir_conf_errors *errs, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    char **grown;

    if (!errs || errs->n >= CONF_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    grown = realloc(errs->lines, (errs->n + 1) * sizeof *grown);
    if (!grown)
        return;
    errs->lines = grown;
    if ((errs->lines[errs->n] = strdup(line)))
        errs->n++;
}

void weir_conf_errors_free(weir_conf_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

void weir_conf_errors_print(const weir_conf_errors *errs, FILE *out)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(out, "%s\n", errs->lines[i]);
}

/* ---- the registry ----------------------------------------------------- */

weir_conf *weir_conf_new(void)
{
    return calloc(1, sizeof(weir_conf));
}

static void *slot(const conf_entry *e)
{
    return (char *)e->base + e->key->offset;
}

void weir_conf_free(weir_conf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->n; i++) {
        if (conf->entries[i].key->type == WEIR_CONF_STRING) {
            char **s = slot(&conf->entries[i]);
            free(*s);
            *s = NULL;
        }
    }
    free(conf->entries);
    free(conf);
}

static const conf_entry *find_entry(const weir_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->n; i++)
        if (strcmp(conf->entries[i].key->name, name) == 0)
            return &conf->entries[i];
    return NULL;
}

const weir_conf_key *weir_conf_find(const weir_conf *conf, const char *name)
{
    const conf_entry *e = find_entry(conf, name);
    return e ? e->key : NULL;
}

/* "http" is a section when some key starts with "http.". */
static int is_section(const weir_conf *conf, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < conf->n; i++) {
        const char *k = conf->entries[i].key->name;
        if (strncmp(k, name, len) == 0 && k[len] == '.')
            return 1;
    }
    return 0;
}

/* Levenshtein distance, capped: only used to suggest a near key. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

static const char *suggest(const weir_conf *conf, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;          /* only suggest within two edits */
    for (size_t i = 0; i < conf->n; i++) {
        size_t d = edit_distance(name, conf->entries[i].key->name);
        if (d < best_d) {
            best_d = d;
            best = conf->entries[i].key->name;
        }
    }
    return best;
}

static void unknown_key(const weir_conf *conf, weir_conf_errors *errs,
                        const char *where, const char *name)
{
    const char *near = suggest(conf, name);
    if (near)
        conf_error(errs, "%s: %s: unknown key (did you mean %s?)", where, name, near);
    else
        conf_error(errs, "%s: %s: unknown key", where, name);
}

/* ---- parsing values by type ------------------------------------------ */

typedef union conf_value {
    int64_t i;
    double d;
    int b;
    const char *s;
} conf_value;

/* Splits "12.5ms" into 12.5 and "ms".  Returns 0, or -1 if no number. */
static int split_number(const char *text, double *num, const char **unit)
{
    char *end;
    errno = 0;
    *num = strtod(text, &end);
    if (end == text || errno == ERANGE || !isfinite(*num))
        return -1;
    while (*end == ' ')
        end++;
    *unit = end;
    return 0;
}

static int parse_int(const char *text, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, int *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(text, no[i]) == 0)  { *out = 0; return 0; }
    }
    return -1;
}

typedef struct unit { const char *name; double scale; } unit;

static const unit duration_units[] = {        /* to milliseconds */
    { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
    { "h", 3600000 }, { "d", 86400000 },
};

static const unit size_units[] = {            /* to bytes */
    { "", 1 }, { "b", 1 },
    { "k", 1024 }, { "kib", 1024 }, { "kb", 1000 },
    { "m", 1048576 }, { "mib", 1048576 }, { "mb", 1e6 },
    { "g", 1073741824 }, { "gib", 1073741824 }, { "gb", 1e9 },
};

static int parse_scaled(const char *text, const unit *units, size_t nunits, int64_t *out)
{
    double num;
    const char *u;
    if (split_number(text, &num, &u) < 0)
        return -1;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(u, units[i].name) == 0) {
            double v = num * units[i].scale;
            if (v < -9.2e18 || v > 9.2e18)
                return -1;
            *out = (int64_t)llround(v);
            return 0;
        }
    }
    return -1;
}

static const char *type_hint(const weir_conf_key *k)
{
    switch (k->type) {
    case WEIR_CONF_INT:      return "expected an integer";
    case WEIR_CONF_DOUBLE:   return "expected a number";
    case WEIR_CONF_BOOL:     return "expected true or false";
    case WEIR_CONF_STRING:   return "expected a string";
    case WEIR_CONF_ENUM:     return "expected one of the listed values";
    case WEIR_CONF_DURATION: return "expected a duration such as 500ms, 30s, 10m";
    case WEIR_CONF_SIZE:     return "expected a size such as 4096, 64k, 1MiB";
    }
    return "bad value";
}

/* Parses text for key into *v.  On failure writes a reason and returns -1. */
static int parse_value(const weir_conf_key *k, const char *text, conf_value *v,
                       char *why, size_t whycap)
{
    double num = 0;
    int r = 0;

    switch (k->type) {
    case WEIR_CONF_STRING:
        v->s = text;
        return 0;
    case WEIR_CONF_BOOL:
        r = parse_bool(text, &v->b);
        break;
    case WEIR_CONF_ENUM:
        for (int i = 0; k->choices[i]; i++) {
            if (strcmp(text, k->choices[i]) == 0) {
                v->b = i;
                return 0;
            }
        }
        {
            size_t off = (size_t)snprintf(why, whycap, "must be one of");
            for (int i = 0; k->choices[i] && off < whycap; i++)
                off += (size_t)snprintf(why + off, whycap - off, "%s %s",
                                        i ? "," : "", k->choices[i]);
        }
        return -1;
    case WEIR_CONF_INT:
        r = parse_int(text, &v->i);
        num = (double)v->i;
        break;
    case WEIR_CONF_DOUBLE: {
        const char *u;
        r = split_number(text, &v->d, &u) < 0 || *u ? -1 : 0;
        num = v->d;
        break;
    }
    case WEIR_CONF_DURATION:
        r = parse_scaled(text, duration_units,
                         sizeof duration_units / sizeof duration_units[0], &v->i);
        num = (double)v->i;
        break;
    case WEIR_CONF_SIZE:
        r = parse_scaled(text, size_units, sizeof size_units / sizeof size_units[0], &v->i);
        num = (double)v->i;
        break;
    }
    if (r < 0) {
        snprintf(why, whycap, "%s", type_hint(k));
        return -1;
    }
    if (k->min != k->max && (num < k->min || num > k->max)) {
        char lo[32], hi[32];
        /* Print the bounds in the key's own units. */
        if (k->type == WEIR_CONF_DOUBLE) {
            snprintf(lo, sizeof lo, "%g", k->min);
            snprintf(hi, sizeof hi, "%g", k->max);
        } else if (k->type == WEIR_CONF_DURATION) {
            snprintf(lo, sizeof lo, "%gms", k->min);
            snprintf(hi, sizeof hi, "%gms", k->max);
        } else {
            snprintf(lo, sizeof lo, "%.0f", k->min);
            snprintf(hi, sizeof hi, "%.0f", k->max);
        }
        snprintf(why, whycap, "must be between %s and %s", lo, hi);
        return -1;
    }
    return 0;
}

static int store_value(const conf_entry *e, const conf_value *v)
{
    void *p = slot(e);
    switch (e->key->type) {
    case WEIR_CONF_INT:
    case WEIR_CONF_DURATION:
    case WEIR_CONF_SIZE:
        *(int64_t *)p = v->i;
        break;
    case WEIR_CONF_DOUBLE:
        *(double *)p = v->d;
        break;
    case WEIR_CONF_BOOL:
    case WEIR_CONF_ENUM:
        *(int *)p = v->b;
        break;
    case WEIR_CONF_STRING: {
        char *copy = strdup(v->s);
        if (!copy)
            return AVERROR(ENOMEM);
        free(*(char **)p);
        *(char **)p = copy;
        break;
    }
    }
    return 0;
}

/* The one path every value takes.  Returns 0, 1 on a reported error, or a
 * negative AVERROR on ENOMEM. */
static int conf_apply(const conf_entry *e, const char *text, const char *where,
                      weir_conf_errors *errs)
{
    conf_value v;
    char why[256];

    if ((e->key->flags & WEIR_CONF_SECRET) && strcmp(text, CONF_REDACTED) == 0) {
        conf_error(errs, "%s: %s: is a secret that `weir config dump` hid; "
                         "write the real value", where, e->key->name);
        return 1;
    }
    if (parse_value(e->key, text, &v, why, sizeof why) < 0 ||
        (e->table->check && e->table->check(e->key, text, why, sizeof why) < 0)) {
        conf_error(errs, "%s: %s: %s", where, e->key->name, why);
        return 1;
    }
    return store_value(e, &v);
}

int weir_conf_register(weir_conf *conf, const weir_conf_table *table, void *base)
{
    for (size_t i = 0; i < table->nkeys; i++)
        if (find_entry(conf, table->keys[i].name))
            return AVERROR(EEXIST);
    if (conf->n + table->nkeys > conf->cap) {
        size_t cap = (conf->n + table->nkeys) * 2;
        conf_entry *grown = realloc(conf->entries, cap * sizeof *grown);
        if (!grown)
            return AVERROR(ENOMEM);
        conf->entries = grown;
        conf->cap = cap;
    }
    for (size_t i = 0; i < table->nkeys; i++) {
        conf_entry *e = &conf->entries[conf->n++];
        int r;
        e->key = &table->keys[i];
        e->table = table;
        e->base = base;
        if (e->key->type == WEIR_CONF_STRING)
            *(char **)slot(e) = NULL;
        r = conf_apply(e, e->key->def, table->module, NULL);
        if (r != 0)
            return r < 0 ? r : AVERROR(EINVAL);
    }
    return 0;
}

/* ---- YAML -------------------------------------------------------------- */

typedef struct yaml_walk {
    weir_conf *conf;
    yaml_document_t *doc;
    const char *file;
    weir_conf_errors *errs;
    unsigned char *seen;        /* per entry: already set by this file */
    int nerr;
    int oom;
} yaml_walk;

static int count_error(yaml_walk *w) { return ++w->nerr; }

static void walk_mapping(yaml_walk *w, yaml_node_t *map, const char *prefix, int depth);

static void walk_pair(yaml_walk *w, yaml_node_t *knode, yaml_node_t *vnode,
                      const char *prefix, int depth)
{
    char name[256], where[512];
    const conf_entry *e;
    unsigned line = (unsigned)knode->start_mark.line + 1;

    snprintf(where, sizeof where, "%s:%u", w->file, line);
    if (knode->type != YAML_SCALAR_NODE) {
        conf_error(w->errs, "%s: %s: keys must be plain names", where, *prefix ? prefix : "(top)");
        count_error(w);
        return;
    }
    if ((size_t)snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "",
                         (const char *)knode->data.scalar.value) >= sizeof name) {
        conf_error(w->errs, "%s: %.64s...: key too long", where, name);
        count_error(w);
        return;
    }
    e = find_entry(w->conf, name);
    if (!e) {
        if (!is_section(w->conf, name)) {
            unknown_key(w->conf, w->errs, where, name);
            count_error(w);
        } else if (vnode->type != YAML_MAPPING_NODE) {
            conf_error(w->errs, "%s: %s: is a section; expected a mapping of keys", where, name);
            count_error(w);
        } else {
            walk_mapping(w, vnode, name, depth + 1);
        }
        return;
    }
    if (vnode->type != YAML_SCALAR_NODE) {
        conf_error(w->errs, "%s: %s: %s, not a %s", where, name, type_hint(e->key),
                   vnode->type == YAML_MAPPING_NODE ? "mapping" : "list");
        count_error(w);
        return;
    }
    if (w->seen[e - w->conf->entries]) {
        conf_error(w->errs, "%s: %s: set twice in this file", where, name);
        count_error(w);
        return;
    }
    w->seen[e - w->conf->entries] = 1;
    {
        int r = conf_apply(e, (const char *)vnode->data.scalar.value, where, w->errs);
        if (r < 0)
            w->oom = 1;
        else if (r > 0)
            count_error(w);
    }
}

static void walk_mapping(yaml_walk *w, yaml_node_t *map, const char *prefix, int depth)
{
    if (depth > CONF_MAX_DEPTH) {
        conf_error(w->errs, "%s:%u: %s: nested too deeply", w->file,
                   (unsigned)map->start_mark.line + 1, prefix);
        count_error(w);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        if (k && v)
            walk_pair(w, k, v, prefix, depth);
    }
}

int weir_conf_load_string(weir_conf *conf, const char *where,
                          const char *text, size_t len, weir_conf_errors *errs)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    yaml_walk w = { .conf = conf, .doc = &doc, .file = where, .errs = errs };

    if (!yaml_parser_initialize(&parser))
        return AVERROR(ENOMEM);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        conf_error(errs, "%s:%u: YAML syntax error: %s", where,
                   (unsigned)parser.problem_mark.line + 1,
                   parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return 1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        if (root->type != YAML_MAPPING_NODE) {
            conf_error(errs, "%s:%u: expected a mapping of settings at the top level",
                       where, (unsigned)root->start_mark.line + 1);
            w.nerr = 1;
        } else if (!(w.seen = calloc(conf->n + 1, 1))) {
            w.oom = 1;
        } else {
            walk_mapping(&w, root, "", 0);
        }
    }
    free(w.seen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return w.oom ? AVERROR(ENOMEM) : w.nerr;
}

int weir_conf_load_file(weir_conf *conf, const char *path, weir_conf_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0;
    int r;

    if (!f) {
        conf_error(errs, "%s: cannot open: %s", path, strerror(errno));
        return 1;
    }
    text = malloc(CONF_MAX_FILE + 1);
    if (!text) {
        fclose(f);
        return AVERROR(ENOMEM);
    }
    len = fread(text, 1, CONF_MAX_FILE + 1, f);
    if (ferror(f) || len > CONF_MAX_FILE) {
        conf_error(errs, "%s: %s", path, ferror(f) ? "read error" : "larger than 1 MiB");
        r = 1;
    } else {
        r = weir_conf_load_string(conf, path, text, len, errs);
    }
    free(text);
    fclose(f);
    return r;
}

int weir_conf_set(weir_conf *conf, const char *assignment, weir_conf_errors *errs)
{
    const char *eq = strchr(assignment, '=');
    char name[256];
    const conf_entry *e;

    if (!eq || eq == assignment) {
        conf_error(errs, "--set: %s: expected section.key=value", assignment);
        return 1;
    }
    if ((size_t)(eq - assignment) >= sizeof name) {
        conf_error(errs, "--set: key too long");
        return 1;
    }
    memcpy(name, assignment, (size_t)(eq - assignment));
    name[eq - assignment] = '\0';
    if (!(e = find_entry(conf, name))) {
        unknown_key(conf, errs, "--set", name);
        return 1;
    }
    return conf_apply(e, eq + 1, "--set", errs);
}

/* ---- dump -------------------------------------------------------------- */

static const char *format_scaled(int64_t v, const unit *units, size_t n,
                                 char *buf, size_t cap)
{
    /* Largest unit that divides the value exactly, so text round-trips. */
    const char *best = units[0].name;
    double best_scale = units[0].scale;
    for (size_t i = 1; i < n; i++) {
        double s = units[i].scale;
        if (v != 0 && s > best_scale && fmod((double)v, s) == 0) {
            best = units[i].name;
            best_scale = s;
        }
    }
    snprintf(buf, cap, "%lld%s", (long long)((double)v / best_scale), best);
    return buf;
}

const char *weir_conf_value_string(const weir_conf *conf, const weir_conf_key *key,
                                   char *buf, size_t cap)
{
    const conf_entry *e = find_entry(conf, key->name);
    const void *p;

    if (!e) {
        snprintf(buf, cap, "?");
        return buf;
    }
    p = slot(e);
    switch (key->type) {
    case WEIR_CONF_INT:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)p);
        break;
    case WEIR_CONF_DOUBLE:
        snprintf(buf, cap, "%g", *(const double *)p);
        break;
    case WEIR_CONF_BOOL:
        snprintf(buf, cap, "%s", *(const int *)p ? "true" : "false");
        break;
    case WEIR_CONF_ENUM:
        snprintf(buf, cap, "%s", key->choices[*(const int *)p]);
        break;
    case WEIR_CONF_STRING: {
        const char *s = *(char *const *)p;
        snprintf(buf, cap, "%s", s ? s : "");
        break;
    }
    case WEIR_CONF_DURATION:
        /* Units after the bare "" entry, smallest first: ms, s, m, h, d. */
        format_scaled(*(const int64_t *)p, duration_units + 1,
                      sizeof duration_units / sizeof duration_units[0] - 1, buf, cap);
        break;
    case WEIR_CONF_SIZE: {
        static const unit binary[] = { { "", 1 }, { "KiB", 1024 },
                                       { "MiB", 1048576 }, { "GiB", 1073741824 } };
        format_scaled(*(const int64_t *)p, binary, 4, buf, cap);
        break;
    }
    }
    return buf;
}

/* Quotes a string for YAML when a plain scalar would change its meaning. */
static void dump_scalar(FILE *out, const weir_conf_key *k, const char *text)
{
    int quote = k->type == WEIR_CONF_STRING &&
                (*text == '\0' || strpbrk(text, ":#'\"{}[],&*!|>%@`\\") ||
                 text[0] == ' ' || text[0] == '-' || text[0] == '?' ||
                 parse_bool(text, &(int){ 0 }) == 0 || strcasecmp(text, "null") == 0 ||
                 strcmp(text, "~") == 0);
    if (!quote) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void dump_key(FILE *out, const weir_conf *conf, const weir_conf_key *k,
                     const char *indent, const char *shown_name)
{
    char buf[512];
    const char *v = weir_conf_value_string(conf, k, buf, sizeof buf);

    fprintf(out, "%s# %s\n%s%s: ", indent, k->help, indent, shown_name);
    /* An empty secret is no secret, and printing it keeps the dump loadable. */
    if ((k->flags & WEIR_CONF_SECRET) && *v)
        fputs("\"" CONF_REDACTED "\"", out);
    else
        dump_scalar(out, k, v);
    fputc('\n', out);
}

/* Same section: "http.port" and "http.addr" share the "http" before the dot. */
static int same_section(const char *a, const char *b)
{
    const char *da = strchr(a, '.'), *db = strchr(b, '.');
    return da && db && da - a == db - b && strncmp(a, b, (size_t)(da - a)) == 0;
}

void weir_conf_dump(const weir_conf *conf, FILE *out)
{
    /* Top-level keys first, then each section once, in the order its first
     * key was registered, with all of its keys in table order. */
    for (size_t i = 0; i < conf->n; i++)
        if (!strchr(conf->entries[i].key->name, '.'))
            dump_key(out, conf, conf->entries[i].key, "", conf->entries[i].key->name);

    for (size_t i = 0; i < conf->n; i++) {
        const char *name = conf->entries[i].key->name;
        const char *dot = strchr(name, '.');
        int first = 1;

        if (!dot)
            continue;
        for (size_t j = 0; j < i && first; j++)
            if (same_section(conf->entries[j].key->name, name))
                first = 0;
        if (!first)
            continue;
        fprintf(out, "\n%.*s:\n", (int)(dot - name), name);
        for (size_t j = i; j < conf->n; j++) {
            const weir_conf_key *k = conf->entries[j].key;
            if (same_section(k->name, name))
                dump_key(out, conf, k, "  ", k->name + (dot - name) + 1);
        }
    }
}
