/*
 * libFuzzer target: the YAML config loader (core/conf) over a table with
 * every value type, then --set style assignments and a dump of the result.
 * Finds crashes, leaks and undefined behaviour under ASan+UBSan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct f_settings {
    int64_t i, dur, size;
    double d;
    int b, e;
    char *s;
} f_settings;

static const char *const choices[] = { "a", "bb", NULL };

#define K(f) offsetof(f_settings, f)
static const weir_conf_key keys[] = {
    { "top", WEIR_CONF_STRING, K(s), "x", 0, 0, NULL, "s", 0 },
    { "a.i", WEIR_CONF_INT, K(i), "1", -5, 5000, NULL, "i", 0 },
    { "a.b.dur", WEIR_CONF_DURATION, K(dur), "1s", 0, 0, NULL, "dur", 0 },
    { "a.size", WEIR_CONF_SIZE, K(size), "1k", 0, 0, NULL, "size", 0 },
    { "c.d", WEIR_CONF_DOUBLE, K(d), "0.5", -1, 1, NULL, "d", 0 },
    { "c.flag", WEIR_CONF_BOOL, K(b), "on", 0, 0, NULL, "b", 0 },
    { "c.mode", WEIR_CONF_ENUM, K(e), "a", 0, 0, choices, "e", 0 },
};
static const weir_conf_table table = { .module = "fuzz", .keys = keys,
                                       .nkeys = sizeof keys / sizeof keys[0] };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    f_settings s;
    weir_conf *conf = weir_conf_new();
    weir_conf_errors errs = { 0 };
    FILE *devnull;

    if (!conf)
        return 0;
    memset(&s, 0, sizeof s);
    if (weir_conf_register(conf, &table, &s) == 0) {
        weir_conf_load_string(conf, "fuzz.yml", (const char *)data, size, &errs);
        /* The same bytes as one --set assignment (NUL-terminated copy). */
        char *assign = malloc(size + 1);
        if (assign) {
            memcpy(assign, data, size);
            assign[size] = '\0';
            weir_conf_set(conf, assign, &errs);
            free(assign);
        }
        devnull = fopen("/dev/null", "w");
        if (devnull) {
            weir_conf_dump(conf, devnull);
            weir_conf_errors_print(&errs, devnull);
            fclose(devnull);
        }
    }
    weir_conf_errors_free(&errs);
    weir_conf_free(conf);
    return 0;
}
