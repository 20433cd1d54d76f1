/*
 * Unit tests for core/metrics: the exposition text byte for byte, escaping,
 * number formatting, validation, label counts, the child cap, histogram and
 * summary arithmetic, the summary window on an injected clock, exact totals
 * under threads, callbacks, and promtool's verdict on a rendered sample.
 */
#include <criterion/criterion.h>

#include "core/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- helpers ------------------------------------------------------------- */

static int64_t fake_now_us(void *arg) { return *(int64_t *)arg; }

static weir_metrics *new_reg(int64_t *now)
{
    weir_metrics *reg = weir_metrics_new();
    cr_assert_not_null(reg);
    if (now) {
        weir_clock clock = { .now_us = fake_now_us, .arg = now };
        weir_metrics_set_clock(reg, &clock);
    }
    return reg;
}

/* The rendered text; the caller frees it. */
static char *render(weir_metrics *reg)
{
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(weir_metrics_render(reg, &text, &len), 0);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

/* The value of the sample line that starts with `series` then a space. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; *p;) {
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    cr_assert_fail("no sample \"%s\" in:\n%s", series, text);
    return NAN;
}

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; *p;) {
        if (!strncmp(p, line, n) && p[n] == '\n')
            return 1;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static void assert_near(double got, double want, double rel, const char *what)
{
    cr_assert(fabs(got - want) <= rel * fabs(want),
              "%s: got %.17g, want %.17g within %g", what, got, want, rel);
}

/* ---- the sample registry shared by the golden and promtool tests --------- */

static void collect_pool(void *arg, weir_metric *m)
{
    const int *counts = arg;
    weir_metric_emit(m, L("idle"), counts[0]);
    weir_metric_emit(m, L("busy"), counts[1]);
}

static const int pool_counts[2] = { 3, 2 };

static void build_sample(weir_metrics *reg)
{
    weir_metric *req, *temp, *unused, *lat, *size, *pool;

    cr_assert_eq(weir_metric_counter(reg, "weir_test_requests_total", "Requests served.",
                                     L("method", "code"), &req), 0);
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_temperature_celsius", "Core temperature.",
                                   NULL, &temp), 0);
    cr_assert_eq(weir_metric_counter(reg, "weir_test_unused_total", "Never touched: left out.",
                                     L("x"), &unused), 0);
    cr_assert_eq(weir_metric_histogram(reg, "weir_test_latency_seconds", "Request latency.",
                                       NULL, (const double[]){ 0.1, 0.5, 1 }, 3, &lat), 0);
    cr_assert_eq(weir_metric_summary(reg, "weir_test_chunk_size_bytes", "Chunk sizes.",
                                     L("track"), (const double[]){ 0.5, 0.9 }, 2, 0, &size), 0);
    cr_assert_eq(weir_metric_callback(reg, "weir_test_pool_connections",
                                      "Pool connections by state.", WEIR_METRIC_GAUGE,
                                      L("state"), collect_pool, (void *)pool_counts, &pool), 0);

    weir_counter_add(weir_metric_with(req, L("GET", "200")), 3);
    weir_counter_inc(weir_metric_with(req, L("POST", "500")));
    weir_counter_inc(weir_metric_with(req, L("GET", "200")));
    weir_gauge_set(weir_metric_with(temp, NULL), -12.5);

    weir_metric_child *h = weir_metric_with(lat, NULL);
    weir_histogram_observe(h, 0.0625);
    weir_histogram_observe(h, 0.5);
    weir_histogram_observe(h, 0.75);
    weir_histogram_observe(h, 3);

    weir_metric_child *s = weir_metric_with(size, L("video"));
    weir_summary_observe(s, 1000);
    weir_summary_observe(s, 2000);
    weir_summary_observe(s, 3000);
}

static const char golden[] =
    "# HELP weir_test_requests_total Requests served.\n"
    "# TYPE weir_test_requests_total counter\n"
    "weir_test_requests_total{method=\"GET\",code=\"200\"} 4\n"
    "weir_test_requests_total{method=\"POST\",code=\"500\"} 1\n"
    "# HELP weir_test_temperature_celsius Core temperature.\n"
    "# TYPE weir_test_temperature_celsius gauge\n"
    "weir_test_temperature_celsius -12.5\n"
    "# HELP weir_test_latency_seconds Request latency.\n"
    "# TYPE weir_test_latency_seconds histogram\n"
    "weir_test_latency_seconds_bucket{le=\"0.1\"} 1\n"
    "weir_test_latency_seconds_bucket{le=\"0.5\"} 2\n"
    "weir_test_latency_seconds_bucket{le=\"1\"} 3\n"
    "weir_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
    "weir_test_latency_seconds_sum 4.3125\n"
    "weir_test_latency_seconds_count 4\n"
    "# HELP weir_test_chunk_size_bytes Chunk sizes.\n"
    "# TYPE weir_test_chunk_size_bytes summary\n"
    "weir_test_chunk_size_bytes{track=\"video\",quantile=\"0.5\"} 2019\n"
    "weir_test_chunk_size_bytes{track=\"video\",quantile=\"0.9\"} 3012\n"
    "weir_test_chunk_size_bytes_sum{track=\"video\"} 6000\n"
    "weir_test_chunk_size_bytes_count{track=\"video\"} 3\n"
    "# HELP weir_test_pool_connections Pool connections by state.\n"
    "# TYPE weir_test_pool_connections gauge\n"
    "weir_test_pool_connections{state=\"idle\"} 3\n"
    "weir_test_pool_connections{state=\"busy\"} 2\n";

/* ---- tests --------------------------------------------------------------- */

Test(metrics, golden_text)
{
    int64_t now = 0;
    weir_metrics *reg = new_reg(&now);
    build_sample(reg);
    char *text = render(reg);
    cr_assert_str_eq(text, golden);
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, empty_registry_renders_nothing)
{
    weir_metrics *reg = new_reg(NULL);
    char *text = render(reg);
    cr_assert_str_eq(text, "");
    free(text);
    weir_metrics_free(reg);
    cr_assert_str_eq(WEIR_METRICS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

Test(metrics, escaping)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *g, *nohelp;
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_escape",
                                   "a \\ backslash\nsecond line with \"quotes\"",
                                   L("path"), &g), 0);
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_nohelp", "", NULL, &nohelp), 0);
    weir_gauge_set(weir_metric_with(g, L("C:\\dir\n\"x\"")), 1);
    weir_gauge_set(weir_metric_with(g, L("caf\xc3\xa9")), 2);

    char *text = render(reg);
    cr_assert_str_eq(text,
        "# HELP weir_test_escape a \\\\ backslash\\nsecond line with \"quotes\"\n"
        "# TYPE weir_test_escape gauge\n"
        "weir_test_escape{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n"
        "weir_test_escape{path=\"caf\xc3\xa9\"} 2\n"
        "# TYPE weir_test_nohelp gauge\n"
        "weir_test_nohelp 0\n");
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, number_formatting)
{
    static const struct { double v; const char *text; } cases[] = {
        { 0.1, "0.1" },
        { 1.0 / 3, "0.3333333333333333" },
        { 123456789, "123456789" },
        { -42, "-42" },
        { 1e20, "1e+20" },
        { 2.5e-7, "2.5e-07" },
        { -0.0, "0" },
        { NAN, "NaN" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
        { 9007199254740993.0, "9007199254740992" },
    };
    weir_metrics *reg = new_reg(NULL);
    weir_metric *g;
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_value", "Values.", L("i"), &g), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%zu", i);
        weir_gauge_set(weir_metric_with(g, L(idx)), cases[i].v);
    }
    char *text = render(reg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "weir_test_value{i=\"%zu\"} %s", i, cases[i].text);
        cr_assert(has_line(text, line), "missing \"%s\" in:\n%s", line, text);
    }
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, name_validation)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *m = (weir_metric *)&m;
    const int einval = AVERROR(EINVAL);

    static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        cr_assert_eq(weir_metric_counter(reg, bad_names[i], "h", NULL, &m), einval,
                     "accepted name \"%s\"", bad_names[i]);
    cr_assert_null(m, "*out must be NULL after a failure");
    cr_assert_eq(weir_metric_counter(reg, NULL, "h", NULL, &m), einval);

    static const char *const bad_labels[] = { "__x", "1a", "a:b", "a-b", "" };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        cr_assert_eq(weir_metric_counter(reg, "weir_ok_total", "h", L(bad_labels[i]), &m),
                     einval, "accepted label \"%s\"", bad_labels[i]);
    cr_assert_eq(weir_metric_counter(reg, "weir_ok_total", "h", L("a", "a"), &m), einval);
    cr_assert_eq(weir_metric_counter(reg, "weir_ok_total", "h",
                                     L("a", "b", "c", "d", "e", "f", "g", "h", "i"), &m), einval);
    cr_assert_eq(weir_metric_counter(reg, "weir_ok_total", NULL, NULL, &m), einval);
    cr_assert_eq(weir_metric_counter(reg, "weir_ok_total", "bad \xff utf-8", NULL, &m), einval);

    /* Reserved labels per type: "le" is fine on a summary, not on a histogram. */
    cr_assert_eq(weir_metric_histogram(reg, "weir_h", "h", L("le"), NULL, 0, &m), einval);
    cr_assert_eq(weir_metric_summary(reg, "weir_s", "h", L("quantile"), NULL, 0, 0, &m), einval);
    cr_assert_eq(weir_metric_summary(reg, "weir_s1", "h", L("le"), NULL, 0, 0, &m), 0);
    cr_assert_eq(weir_metric_histogram(reg, "weir_h1", "h", L("quantile"), NULL, 0, &m), 0);

    /* Bad parameters. */
    cr_assert_eq(weir_metric_histogram(reg, "weir_h2", "h", NULL, (const double[]){ 1, 1 }, 2, &m), einval);
    cr_assert_eq(weir_metric_histogram(reg, "weir_h2", "h", NULL, (const double[]){ 2, 1 }, 2, &m), einval);
    cr_assert_eq(weir_metric_histogram(reg, "weir_h2", "h", NULL, (const double[]){ NAN }, 1, &m), einval);
    cr_assert_eq(weir_metric_summary(reg, "weir_s2", "h", NULL, (const double[]){ 1.5 }, 1, 0, &m), einval);
    cr_assert_eq(weir_metric_summary(reg, "weir_s2", "h", NULL, (const double[]){ 0.9, 0.5 }, 2, 0, &m), einval);
    cr_assert_eq(weir_metric_summary(reg, "weir_s2", "h", NULL, NULL, 0, -1, &m), einval);
    cr_assert_eq(weir_metric_callback(reg, "weir_c", "h", WEIR_METRIC_HISTOGRAM, NULL,
                                      collect_pool, NULL, &m), einval);
    cr_assert_eq(weir_metric_callback(reg, "weir_c", "h", WEIR_METRIC_GAUGE, NULL, NULL, NULL, &m), einval);

    /* Good names, then duplicates and clashing sample names. */
    cr_assert_eq(weir_metric_counter(reg, "weir:ok_total", "h", L("_a", "b1"), &m), 0);
    cr_assert_eq(weir_metric_gauge(reg, "_x", "h", NULL, &m), 0);
    cr_assert_eq(weir_metric_gauge(reg, "weir:ok_total", "h", NULL, &m), AVERROR(EEXIST));
    cr_assert_eq(weir_metric_histogram(reg, "weir_lat", "h", NULL, NULL, 0, &m), 0);
    cr_assert_eq(weir_metric_counter(reg, "weir_lat_count", "h", NULL, &m), AVERROR(EEXIST));
    cr_assert_eq(weir_metric_summary(reg, "weir_lat_bucket", "h", NULL, NULL, 0, 0, &m), AVERROR(EEXIST));
    cr_assert_eq(weir_metric_gauge(reg, "weir_lat_bucket_sum", "h", NULL, &m), 0);
    cr_assert_eq(weir_metric_counter(reg, "weir_metrics_label_sets_dropped_total", "h", NULL, &m),
                 AVERROR(EEXIST), "the built-in family's name is taken");
    weir_metrics_free(reg);
}

Test(metrics, label_counts)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *two, *none, *cb;
    cr_assert_eq(weir_metric_counter(reg, "weir_two_total", "h", L("a", "b"), &two), 0);
    cr_assert_eq(weir_metric_counter(reg, "weir_none_total", "h", NULL, &none), 0);
    cr_assert_eq(weir_metric_callback(reg, "weir_cb", "h", WEIR_METRIC_GAUGE, NULL,
                                      collect_pool, NULL, &cb), 0);

    cr_assert_null(weir_metric_with(two, NULL));
    cr_assert_null(weir_metric_with(two, L("x")));
    cr_assert_null(weir_metric_with(two, L("x", "y", "z")));
    cr_assert_null(weir_metric_with(two, L("x", "bad \xc0\xaf")), "overlong UTF-8 accepted");
    weir_metric_child *c = weir_metric_with(two, L("x", "y"));
    cr_assert_not_null(c);
    cr_assert_eq(weir_metric_with(two, L("x", "y")), c, "same tuple, other child");
    cr_assert_neq(weir_metric_with(two, L("y", "x")), c);
    cr_assert_neq(weir_metric_with(two, L("x", "")), c);

    weir_metric_child *solo = weir_metric_with(none, NULL);
    cr_assert_not_null(solo);
    cr_assert_eq(weir_metric_with(none, (const char *const[]){ NULL }), solo);
    cr_assert_null(weir_metric_with(none, L("x")));
    cr_assert_null(weir_metric_with(cb, NULL), "callback families have no children");
    weir_metrics_free(reg);
}

Test(metrics, child_cap)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *m;
    weir_metrics_set_max_children(reg, 3);
    cr_assert_eq(weir_metric_counter(reg, "weir_by_ip_total", "h", L("ip"), &m), 0);
    weir_metric_child *a = weir_metric_with(m, L("1.1.1.1"));
    cr_assert_not_null(a);
    cr_assert_not_null(weir_metric_with(m, L("2.2.2.2")));
    cr_assert_not_null(weir_metric_with(m, L("3.3.3.3")));
    cr_assert_null(weir_metric_with(m, L("4.4.4.4")));
    cr_assert_null(weir_metric_with(m, L("5.5.5.5")));
    cr_assert_eq(weir_metric_with(m, L("1.1.1.1")), a, "existing children stay reachable");
    cr_assert_eq(weir_metric_dropped(m), 2);

    /* NULL children are no-ops on every update path. */
    weir_counter_inc(weir_metric_with(m, L("6.6.6.6")));
    weir_gauge_set(NULL, 1);
    weir_gauge_add(NULL, 1);
    weir_histogram_observe(NULL, 1);
    weir_summary_observe(NULL, 1);
    cr_assert(isnan(weir_metric_value(NULL)));
    weir_counter_inc(a);

    char *text = render(reg);
    cr_assert_str_eq(text,
        "# HELP weir_metrics_label_sets_dropped_total Label sets refused because the metric family had reached its child limit.\n"
        "# TYPE weir_metrics_label_sets_dropped_total counter\n"
        "weir_metrics_label_sets_dropped_total{metric=\"weir_by_ip_total\"} 3\n"
        "# HELP weir_by_ip_total h\n"
        "# TYPE weir_by_ip_total counter\n"
        "weir_by_ip_total{ip=\"1.1.1.1\"} 1\n"
        "weir_by_ip_total{ip=\"2.2.2.2\"} 0\n"
        "weir_by_ip_total{ip=\"3.3.3.3\"} 0\n");
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, counter_and_gauge_values)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *c, *g;
    cr_assert_eq(weir_metric_counter(reg, "weir_c_total", "h", NULL, &c), 0);
    cr_assert_eq(weir_metric_gauge(reg, "weir_g", "h", NULL, &g), 0);
    weir_metric_child *cc = weir_metric_with(c, NULL), *gc = weir_metric_with(g, NULL);
    weir_counter_add(cc, 2);
    weir_counter_add(cc, 0.25);
    weir_counter_add(cc, -5);        /* ignored */
    weir_counter_add(cc, NAN);       /* ignored */
    weir_counter_inc(cc);
    cr_assert_eq(weir_metric_value(cc), 3.25);
    weir_gauge_set(gc, 10);
    weir_gauge_add(gc, -2.5);
    weir_gauge_inc(gc);
    weir_gauge_dec(gc);
    weir_gauge_dec(gc);
    cr_assert_eq(weir_metric_value(gc), 6.5);
    char *text = render(reg);
    cr_assert_eq(sample(text, "weir_c_total"), 3.25);
    cr_assert_eq(sample(text, "weir_g"), 6.5);
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, histogram_buckets)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *h, *hinf, *hdef;
    cr_assert_eq(weir_metric_histogram(reg, "weir_h", "h", L("k"),
                                       (const double[]){ 1, 2, 5 }, 3, &h), 0);
    cr_assert_eq(weir_metric_histogram(reg, "weir_hinf", "h", NULL,
                                       (const double[]){ 1, INFINITY }, 2, &hinf), 0);
    cr_assert_eq(weir_metric_histogram(reg, "weir_hdef", "h", NULL, NULL, 0, &hdef), 0);

    weir_metric_child *c = weir_metric_with(h, L("v"));
    static const double obs[] = { -3, 0, 1, 1.5, 2, 2.5, 5, 100 };
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        weir_histogram_observe(c, obs[i]);
    weir_histogram_observe(weir_metric_with(hinf, NULL), 7);
    weir_histogram_observe(weir_metric_with(hdef, NULL), 0.003);
    cr_assert_eq(weir_metric_value(c), 8);

    char *text = render(reg);
    /* le is inclusive: 1 is counted in le="1", 2 in le="2", 5 in le="5". */
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"1\"}"), 3);
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"2\"}"), 5);
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"5\"}"), 7);
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"+Inf\"}"), 8);
    cr_assert_eq(sample(text, "weir_h_sum{k=\"v\"}"), 109);
    cr_assert_eq(sample(text, "weir_h_count{k=\"v\"}"), 8);

    /* An explicit +Inf bound is not exposed twice. */
    cr_assert(strstr(text, "weir_hinf_bucket{le=\"1\"} 0\n"
                           "weir_hinf_bucket{le=\"+Inf\"} 1\n"
                           "weir_hinf_sum 7\n"
                           "weir_hinf_count 1\n"), "%s", text);
    /* Default buckets: the 14 duration bounds, 0.003 falls in le="0.005". */
    cr_assert_eq(sample(text, "weir_hdef_bucket{le=\"0.0025\"}"), 0);
    cr_assert_eq(sample(text, "weir_hdef_bucket{le=\"0.005\"}"), 1);
    cr_assert_eq(sample(text, "weir_hdef_bucket{le=\"10\"}"), 1);
    int nb = 0;
    for (const char *p = text; (p = strstr(p, "weir_hdef_bucket{")); p++)
        nb++;
    cr_assert_eq(nb, WEIR_METRICS_DURATION_NBUCKETS + 1);
    free(text);

    /* NaN goes to +Inf only and makes the sum NaN. */
    weir_histogram_observe(c, NAN);
    text = render(reg);
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"5\"}"), 7);
    cr_assert_eq(sample(text, "weir_h_bucket{k=\"v\",le=\"+Inf\"}"), 9);
    cr_assert(isnan(sample(text, "weir_h_sum{k=\"v\"}")));
    free(text);
    weir_metrics_free(reg);
}

/* 1..1000 in a scrambled order: the sketch does not depend on order. */
Test(metrics, summary_quantiles)
{
    int64_t now = 0;
    weir_metrics *reg = new_reg(&now);
    weir_metric *s;
    cr_assert_eq(weir_metric_summary(reg, "weir_s", "h", L("k"),
                                     (const double[]){ 0, 0.5, 0.9, 0.99, 1 }, 5, 0, &s), 0);
    weir_metric_child *c = weir_metric_with(s, L("seq")), *z = weir_metric_with(s, L("signed"));
    for (int i = 0; i < 1000; i++)
        weir_summary_observe(c, (double)((i * 367) % 1000 + 1));   /* 367 is prime to 1000 */
    static const double signed_obs[] = { 10, -5, 0, 5, -50 };   /* nearest rank of 5 */
    for (size_t i = 0; i < 5; i++)
        weir_summary_observe(z, signed_obs[i]);
    cr_assert_eq(weir_metric_value(c), 1000);

    char *text = render(reg);
    const double tol = 0.0106;   /* 1% sketch error + 4 printed digits */
    assert_near(sample(text, "weir_s{k=\"seq\",quantile=\"0\"}"), 1, tol, "q0");
    assert_near(sample(text, "weir_s{k=\"seq\",quantile=\"0.5\"}"), 500, tol, "q0.5");
    assert_near(sample(text, "weir_s{k=\"seq\",quantile=\"0.9\"}"), 900, tol, "q0.9");
    assert_near(sample(text, "weir_s{k=\"seq\",quantile=\"0.99\"}"), 990, tol, "q0.99");
    assert_near(sample(text, "weir_s{k=\"seq\",quantile=\"1\"}"), 1000, tol, "q1");
    cr_assert_eq(sample(text, "weir_s_sum{k=\"seq\"}"), 500500);
    cr_assert_eq(sample(text, "weir_s_count{k=\"seq\"}"), 1000);

    assert_near(sample(text, "weir_s{k=\"signed\",quantile=\"0\"}"), -50, tol, "signed q0");
    cr_assert_eq(sample(text, "weir_s{k=\"signed\",quantile=\"0.5\"}"), 0);      /* 3rd of 5 */
    assert_near(sample(text, "weir_s{k=\"signed\",quantile=\"0.9\"}"), 10, tol, "signed q0.9");
    assert_near(sample(text, "weir_s{k=\"signed\",quantile=\"1\"}"), 10, tol, "signed q1");
    free(text);
    weir_metrics_free(reg);
}

/* The relative error bound holds across the whole range, tiny to huge. */
Test(metrics, summary_relative_error)
{
    int64_t now = 0;
    weir_metrics *reg = new_reg(&now);
    weir_metric *s;
    cr_assert_eq(weir_metric_summary(reg, "weir_s", "h", L("i"),
                                     (const double[]){ 0.5 }, 1, 0, &s), 0);
    double v[200];
    for (int i = 0; i < 200; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        v[i] = 1.234e-8 * pow(10, i * 25.0 / 200);   /* 1.2e-8 .. 1e17 */
        weir_summary_observe(weir_metric_with(s, L(idx)), v[i]);
    }
    char *text = render(reg);
    for (int i = 0; i < 200; i++) {
        char series[64];
        snprintf(series, sizeof series, "weir_s{i=\"%d\",quantile=\"0.5\"}", i);
        assert_near(sample(text, series), v[i], 0.0106, series);
    }
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, summary_window)
{
    const int64_t min = 60 * 1000000LL;
    int64_t now = 1000 * min;   /* any origin */
    const int64_t t0 = now;
    weir_metrics *reg = new_reg(&now);
    weir_metric *s;
    cr_assert_eq(weir_metric_summary(reg, "weir_s", "h", NULL,
                                     (const double[]){ 0.5, 1 }, 2, 10 * 60 * 1000, &s), 0);
    weir_metric_child *c = weir_metric_with(s, NULL);
    char *text;

    weir_summary_observe(c, 10);                  /* epoch 0 of 2-minute epochs */
    now = t0 + 9 * min;                           /* epoch 4: window is epochs 0..4 */
    text = render(reg);
    assert_near(sample(text, "weir_s{quantile=\"1\"}"), 10, 0.0106, "10 still in window");
    free(text);

    weir_summary_observe(c, 20);                  /* epoch 4 */
    now = t0 + 10 * min;                          /* epoch 5: epoch 0 has left */
    text = render(reg);
    assert_near(sample(text, "weir_s{quantile=\"0.5\"}"), 20, 0.0106, "10 expired");
    assert_near(sample(text, "weir_s{quantile=\"1\"}"), 20, 0.0106, "20 remains");
    cr_assert_eq(sample(text, "weir_s_sum"), 30, "sum covers all time");
    cr_assert_eq(sample(text, "weir_s_count"), 2, "count covers all time");
    free(text);

    now = t0 + 19 * min;                          /* epoch 9: epoch 4 has left */
    text = render(reg);
    cr_assert(isnan(sample(text, "weir_s{quantile=\"0.5\"}")), "%s", text);
    cr_assert(isnan(sample(text, "weir_s{quantile=\"1\"}")));
    free(text);

    /* Epoch 9 reuses epoch 4's slot, which must come back empty. */
    weir_summary_observe(c, 7);
    text = render(reg);
    assert_near(sample(text, "weir_s{quantile=\"1\"}"), 7, 0.0106, "recycled slot");
    cr_assert_eq(sample(text, "weir_s_count"), 3);
    free(text);
    weir_metrics_free(reg);
}

/* ---- threads ------------------------------------------------------------- */

#define NTHREADS 8
#define NINCS    1000000
#define NSLOW    100000

typedef struct thread_ctx {
    pthread_barrier_t *start;
    weir_metric *labeled;
    weir_metric_child *counter, *hist, *gauge, *summary;
    int id;
} thread_ctx;

static void *hammer(void *arg)
{
    thread_ctx *t = arg;
    char own[16];
    snprintf(own, sizeof own, "t%d", t->id);
    pthread_barrier_wait(t->start);
    for (int i = 0; i < NINCS; i++) {
        weir_counter_inc(t->counter);
        weir_histogram_observe(t->hist, (double)(i % 4));   /* buckets 0,1,2,+Inf */
    }
    for (int i = 0; i < NSLOW; i++) {
        weir_gauge_add(t->gauge, 1);
        weir_summary_observe(t->summary, 1);
        if (i % 1000 == 0) {
            weir_counter_inc(weir_metric_with(t->labeled, L("shared")));
            weir_counter_inc(weir_metric_with(t->labeled, L(own)));
        }
    }
    return NULL;
}

Test(metrics, threads_exact_totals, .timeout = 120)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *c, *h, *g, *s, *lab;
    cr_assert_eq(weir_metric_counter(reg, "weir_c_total", "h", NULL, &c), 0);
    cr_assert_eq(weir_metric_histogram(reg, "weir_h", "h", NULL, (const double[]){ 0, 1, 2 }, 3, &h), 0);
    cr_assert_eq(weir_metric_gauge(reg, "weir_g", "h", NULL, &g), 0);
    cr_assert_eq(weir_metric_summary(reg, "weir_s", "h", NULL, NULL, 0, 0, &s), 0);
    cr_assert_eq(weir_metric_counter(reg, "weir_lab_total", "h", L("who"), &lab), 0);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS + 1);
    pthread_t th[NTHREADS];
    thread_ctx ctx[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        ctx[i] = (thread_ctx){ .start = &start, .labeled = lab, .id = i,
                               .counter = weir_metric_with(c, NULL), .hist = weir_metric_with(h, NULL),
                               .gauge = weir_metric_with(g, NULL), .summary = weir_metric_with(s, NULL) };
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &ctx[i]), 0);
    }
    pthread_barrier_wait(&start);
    /* Scrapes while the threads count: values only grow. */
    double last = 0;
    for (int i = 0; i < 20; i++) {
        char *text = render(reg);
        double v = sample(text, "weir_c_total");
        cr_assert_geq(v, last);
        last = v;
        free(text);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);

    char *text = render(reg);
    const double n = (double)NTHREADS * NINCS;
    cr_assert_eq(sample(text, "weir_c_total"), n);
    cr_assert_eq(sample(text, "weir_h_bucket{le=\"0\"}"), n / 4);
    cr_assert_eq(sample(text, "weir_h_bucket{le=\"1\"}"), n / 2);
    cr_assert_eq(sample(text, "weir_h_bucket{le=\"2\"}"), n * 3 / 4);
    cr_assert_eq(sample(text, "weir_h_bucket{le=\"+Inf\"}"), n);
    cr_assert_eq(sample(text, "weir_h_count"), n);
    cr_assert_eq(sample(text, "weir_h_sum"), n / 4 * (0 + 1 + 2 + 3));
    cr_assert_eq(sample(text, "weir_g"), (double)NTHREADS * NSLOW);
    cr_assert_eq(sample(text, "weir_s_count"), (double)NTHREADS * NSLOW);
    cr_assert_eq(sample(text, "weir_s_sum"), (double)NTHREADS * NSLOW);
    assert_near(sample(text, "weir_s{quantile=\"0.5\"}"), 1, 0.0106, "summary median");
    cr_assert_eq(sample(text, "weir_lab_total{who=\"shared\"}"), (double)NTHREADS * NSLOW / 1000);
    for (int i = 0; i < NTHREADS; i++) {
        char series[64];
        snprintf(series, sizeof series, "weir_lab_total{who=\"t%d\"}", i);
        cr_assert_eq(sample(text, series), NSLOW / 1000);
    }
    free(text);
    weir_metrics_free(reg);
}

/* ---- callbacks ----------------------------------------------------------- */

typedef struct cb_state {
    int calls;
} cb_state;

static void collect_calls(void *arg, weir_metric *m)
{
    cb_state *st = arg;
    st->calls++;
    weir_metric_emit(m, L("a\"b"), st->calls);
    weir_metric_emit(m, L("x", "extra"), 99);   /* wrong count: skipped */
    weir_metric_emit(m, NULL, 98);              /* wrong count: skipped */
}

static void collect_nothing(void *arg, weir_metric *m)
{
    (void)m;
    ((cb_state *)arg)->calls++;
}

static void collect_plain(void *arg, weir_metric *m)
{
    (void)arg;
    weir_metric_emit(m, NULL, 1700000000.5);
}

Test(metrics, callbacks)
{
    weir_metrics *reg = new_reg(NULL);
    cb_state st = { 0 }, quiet = { 0 };
    weir_metric *calls, *nothing, *plain;
    cr_assert_eq(weir_metric_callback(reg, "weir_calls_total", "Collect calls.", WEIR_METRIC_COUNTER,
                                      L("k"), collect_calls, &st, &calls), 0);
    cr_assert_eq(weir_metric_callback(reg, "weir_nothing", "Emits nothing.", WEIR_METRIC_GAUGE,
                                      NULL, collect_nothing, &quiet, &nothing), 0);
    cr_assert_eq(weir_metric_callback(reg, "weir_start_time_seconds", "Start time.", WEIR_METRIC_GAUGE,
                                      NULL, collect_plain, NULL, &plain), 0);
    cr_assert_eq(st.calls, 0, "collect functions run only at render");

    char *text = render(reg);
    cr_assert_eq(st.calls, 1);
    cr_assert_eq(quiet.calls, 1);
    cr_assert_str_eq(text,
        "# HELP weir_calls_total Collect calls.\n"
        "# TYPE weir_calls_total counter\n"
        "weir_calls_total{k=\"a\\\"b\"} 1\n"
        "# HELP weir_start_time_seconds Start time.\n"
        "# TYPE weir_start_time_seconds gauge\n"
        "weir_start_time_seconds 1700000000.5\n");
    free(text);

    text = render(reg);
    cr_assert_eq(st.calls, 2);
    cr_assert_eq(sample(text, "weir_calls_total{k=\"a\\\"b\"}"), 2);
    free(text);

    weir_metric_unregister(calls);
    weir_metric_unregister(plain);
    text = render(reg);
    cr_assert_eq(st.calls, 2, "unregistered callback was called");
    cr_assert_eq(quiet.calls, 3);
    cr_assert_str_eq(text, "");
    free(text);

    /* The name is free again. */
    cr_assert_eq(weir_metric_gauge(reg, "weir_calls_total", "h", NULL, &calls), 0);
    weir_metrics_free(reg);
}

static void collect_hist(void *arg, weir_metric *m)
{
    static const uint64_t counts[] = { 2, 0, 3, 1 };    /* per bucket, +Inf last */
    (void)arg;
    weir_metric_emit_histogram(m, (const char *const[]){ "db", NULL }, counts, 4.5);
}

Test(metrics, histogram_callback)
{
    weir_metrics *reg = new_reg(NULL);
    weir_metric *h;
    static const double bounds[] = { 0.001, 0.01, 0.1 };
    char *text;

    cr_assert_eq(weir_metric_histogram_callback(reg, "weir_wait_seconds", "Waits.", L("pool"),
                                                bounds, 3, collect_hist, NULL, &h), 0);
    cr_assert_eq(weir_metric_histogram_callback(reg, "weir_x_seconds", "x", NULL, bounds, 3,
                                                NULL, NULL, &h), AVERROR(EINVAL));
    text = render(reg);
    cr_assert_str_eq(text,
        "# HELP weir_wait_seconds Waits.\n"
        "# TYPE weir_wait_seconds histogram\n"
        "weir_wait_seconds_bucket{pool=\"db\",le=\"0.001\"} 2\n"
        "weir_wait_seconds_bucket{pool=\"db\",le=\"0.01\"} 2\n"
        "weir_wait_seconds_bucket{pool=\"db\",le=\"0.1\"} 5\n"
        "weir_wait_seconds_bucket{pool=\"db\",le=\"+Inf\"} 6\n"
        "weir_wait_seconds_sum{pool=\"db\"} 4.5\n"
        "weir_wait_seconds_count{pool=\"db\"} 6\n");
    free(text);
    weir_metrics_free(reg);
}

Test(metrics, default_registry)
{
    weir_metrics *a = weir_metrics_default(), *b = weir_metrics_default();
    weir_metric *m;
    cr_assert_not_null(a);
    cr_assert_eq(a, b);
    cr_assert_eq(weir_metric_counter(a, "weir_default_total", "h", NULL, &m), 0);
    weir_counter_inc(weir_metric_with(m, NULL));
    char *text = render(a);
    cr_assert_eq(sample(text, "weir_default_total"), 1);
    free(text);
}

/* ---- promtool ------------------------------------------------------------ */

Test(metrics, promtool_accepts_output)
{
    /* scripts/setup installs it; a missing promtool is a failure, not a skip. */
    cr_assert_eq(system("command -v promtool >/dev/null 2>&1"), 0,
                 "promtool not installed (Debian package prometheus; run scripts/setup)");

    int64_t now = 0;
    weir_metrics *reg = new_reg(&now);
    weir_metric *m, *esc, *nan;
    build_sample(reg);
    /* Add what the golden sample lacks: escapes, odd numbers, a drop. */
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_escape_info", "Back\\slash and\nnewline.",
                                   L("path"), &esc), 0);
    weir_gauge_set(weir_metric_with(esc, L("C:\\dir\n\"x\"")), 1);
    cr_assert_eq(weir_metric_gauge(reg, "weir_test_odd_ratio", "Odd numbers.", L("v"), &nan), 0);
    weir_gauge_set(weir_metric_with(nan, L("nan")), NAN);
    weir_gauge_set(weir_metric_with(nan, L("inf")), INFINITY);
    weir_gauge_set(weir_metric_with(nan, L("ninf")), -INFINITY);
    weir_gauge_set(weir_metric_with(nan, L("tiny")), 2.5e-300);
    weir_gauge_set(weir_metric_with(nan, L("big")), 1e300);
    weir_metrics_set_max_children(reg, 1);
    cr_assert_eq(weir_metric_counter(reg, "weir_test_peers_total", "Peers.", L("ip"), &m), 0);
    weir_counter_inc(weir_metric_with(m, L("a")));
    cr_assert_null(weir_metric_with(m, L("b")));

    char *text = render(reg);
    char in[] = "/tmp/weir_metrics_XXXXXX";
    int fd = mkstemp(in);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char cmd[256], out[4096] = "";
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", in);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(in);
    cr_assert_eq(rc, 0, "promtool failed:\n%s\non:\n%s", out, text);
    cr_assert_str_eq(out, "", "promtool complained:\n%s\non:\n%s", out, text);
    free(text);
    weir_metrics_free(reg);
}
