/*
 * core/metrics.h — Prometheus metrics: counters, gauges, histograms,
 * summaries and scrape-time callbacks, rendered as text format 0.0.4.
 *
 * A registry (weir_metrics) holds metric *families*.  A family has a name,
 * help text, a type and 0..WEIR_METRICS_MAX_LABELS label names.  Each tuple
 * of label values gets a *child* that holds the numbers:
 *
 *   weir_metrics --+-- family "weir_http_requests_total" {method, code}
 *                  |     +-- child {GET, 200}   <- weir_counter_inc(child)
 *                  |     +-- child {POST, 500}
 *                  +-- family "weir_pool_connections" (callback: values are
 *                        computed by a function when /metrics is scraped)
 *
 * Costs, and where locks are:
 *   - weir_metric_with() looks a tuple up under the family's mutex and may
 *     allocate.  Callers on hot paths look their child up once and keep the
 *     pointer; children live as long as their family.
 *   - weir_counter_add/inc, weir_gauge_set/add and weir_histogram_observe are
 *     lock-free (C11 atomics only).  Counters and histograms are sharded
 *     across WEIR_METRICS_SHARDS cache lines; a thread always writes the same
 *     shard, so threads counting into one child rarely share a line.  The
 *     scrape adds the shards up.
 *   - weir_summary_observe is lock-free as well except once per age bucket
 *     (window/5, 2 minutes by default) when it recycles the oldest bucket,
 *     and the first time a value range is seen (one malloc).  See metrics.c
 *     for the sketch behind summary quantiles and their 1% error bound.
 *   - Registration, weir_metric_unregister and weir_metrics_render take the
 *     registry's mutex.  Collect functions of callback metrics run under it:
 *     they must not register, unregister or render on the same registry.
 *
 * Rendering: families in registration order, children in creation order
 * (callback samples in the order they are emitted).  A family with no
 * samples (labels but no child yet, or a callback that emitted nothing) is
 * left out altogether, as the Go client does.  Counters should end in
 * `_total` and carry a unit (`_seconds`, `_bytes`); promtool checks this,
 * this library does not.
 *
 * Limits: a family holds at most weir_metrics_set_max_children() children
 * (default WEIR_METRICS_MAX_CHILDREN_DEFAULT).  Beyond that weir_metric_with
 * returns NULL and the refusal is counted in the built-in counter
 * weir_metrics_label_sets_dropped_total{metric="<family>"}, so a label
 * explosion (say, one label per client address) cannot eat memory.  Every
 * update function accepts a NULL child and does nothing, so
 * `weir_counter_inc(weir_metric_with(m, v))` needs no check.
 *
 * Errors are 0 or a negative AVERROR code: AVERROR(EINVAL) for a bad name,
 * label, help text or parameter, AVERROR(EEXIST) when a family already
 * exposes one of the names the new one would, AVERROR(ENOMEM).
 */
#ifndef WEIR_CORE_METRICS_H
#define WEIR_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

/* What /metrics answers with in its Content-Type header. */
#define WEIR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define WEIR_METRICS_MAX_LABELS            8
#define WEIR_METRICS_MAX_CHILDREN_DEFAULT  10000
#define WEIR_METRICS_MAX_BUCKETS           64      /* histogram bounds, without +Inf */
#define WEIR_METRICS_MAX_QUANTILES         16
#define WEIR_METRICS_SUMMARY_WINDOW_MS     600000  /* 10 minutes */
#define WEIR_METRICS_SHARDS                8       /* power of two */

typedef enum weir_metric_type {
    WEIR_METRIC_COUNTER = 0,
    WEIR_METRIC_GAUGE,
    WEIR_METRIC_HISTOGRAM,
    WEIR_METRIC_SUMMARY,
} weir_metric_type;

typedef struct weir_metrics weir_metrics;            /* a registry */
typedef struct weir_metric weir_metric;              /* a family */
typedef struct weir_metric_child weir_metric_child;  /* one label-value tuple */

/* Request latencies in seconds: .0005 .001 .0025 .005 .01 .025 .05 .1 .25
 * .5 1 2.5 5 10 (WEIR_METRICS_DURATION_NBUCKETS values). */
#define WEIR_METRICS_DURATION_NBUCKETS 14
extern const double weir_metrics_duration_buckets[WEIR_METRICS_DURATION_NBUCKETS];

/* ---- registry ------------------------------------------------------------ */

/* A new, empty registry owned by the caller (weir_metrics_free), or NULL on
 * ENOMEM.  It uses weir_clock_system until weir_metrics_set_clock. */
weir_metrics *weir_metrics_new(void);

/* Frees the registry, its families and their children.  No other thread may
 * use any of them during or after the call.  NULL is a no-op. */
void weir_metrics_free(weir_metrics *reg);

/* The process-wide registry the app serves on /metrics, created on first
 * call (thread-safe) and never freed.  NULL only if that creation failed
 * (ENOMEM); later calls then return NULL too. */
weir_metrics *weir_metrics_default(void);

/* The clock summaries read to age their windows; copied.  Call before any
 * summary observation (tests inject a clock they step by hand). */
void weir_metrics_set_clock(weir_metrics *reg, const weir_clock *clock);

/* Children per family from now on; 0 restores the default.  Children that
 * already exist are kept. */
void weir_metrics_set_max_children(weir_metrics *reg, size_t max);

/* Renders every family as text format 0.0.4.  On 0, *out (OUT) is a
 * malloc'd, NUL-terminated text of *len bytes that the caller free()s.
 * AVERROR(ENOMEM) leaves *out NULL. */
int weir_metrics_render(weir_metrics *reg, char **out, size_t *len);

/* ---- families -------------------------------------------------------------
 *
 * name matches [a-zA-Z_:][a-zA-Z0-9_:]* and is copied.  help is UTF-8 text
 * (copied; "" omits the # HELP line).  labels is a NULL-terminated list of
 * label names (copied), or NULL for none: [a-zA-Z_][a-zA-Z0-9_]*, no "__"
 * prefix, no repeats, at most WEIR_METRICS_MAX_LABELS.  On 0, *out (OUT)
 * points at the family, owned by the registry: valid until
 * weir_metric_unregister or weir_metrics_free.
 */
int weir_metric_counter(weir_metrics *reg, const char *name, const char *help,
                        const char *const *labels, weir_metric **out);
int weir_metric_gauge(weir_metrics *reg, const char *name, const char *help,
                      const char *const *labels, weir_metric **out);

/* buckets: nbuckets strictly increasing upper bounds, copied; a final +Inf
 * may be given or left out (it is always exposed).  buckets NULL selects
 * weir_metrics_duration_buckets.  No label may be named "le". */
int weir_metric_histogram(weir_metrics *reg, const char *name, const char *help,
                          const char *const *labels,
                          const double *buckets, size_t nbuckets,
                          weir_metric **out);

/* quantiles: nq strictly increasing values in [0, 1], copied; NULL selects
 * 0.5, 0.9, 0.99.  Quantiles cover the last window_ms (0 selects
 * WEIR_METRICS_SUMMARY_WINDOW_MS) give or take a fifth of it; _sum and
 * _count cover all time, as Prometheus expects.  No label may be named
 * "quantile". */
int weir_metric_summary(weir_metrics *reg, const char *name, const char *help,
                        const char *const *labels,
                        const double *quantiles, size_t nq, int64_t window_ms,
                        weir_metric **out);

/* A counter or gauge family whose samples are computed at each render:
 * fn(arg, m) calls weir_metric_emit() once per sample.  fn runs on the
 * rendering thread with the registry's mutex held (see the top of this file);
 * arg is borrowed and must stay valid until weir_metric_unregister(m) or
 * weir_metrics_free.  type is WEIR_METRIC_COUNTER or WEIR_METRIC_GAUGE. */
typedef void (*weir_metric_collect_fn)(void *arg, weir_metric *m);
int weir_metric_callback(weir_metrics *reg, const char *name, const char *help,
                         weir_metric_type type, const char *const *labels,
                         weir_metric_collect_fn fn, void *arg,
                         weir_metric **out);

/* A histogram family whose buckets are filled at each render by fn, which
 * calls weir_metric_emit_histogram() once per label set: for counts another
 * component keeps (the database pool's acquire times).  buckets as for
 * weir_metric_histogram. */
int weir_metric_histogram_callback(weir_metrics *reg, const char *name, const char *help,
                                   const char *const *labels, const double *buckets,
                                   size_t nbuckets, weir_metric_collect_fn fn, void *arg,
                                   weir_metric **out);
/* Only inside such a collect function: counts has one entry per bucket plus
 * +Inf, each the observations in that bucket alone (not cumulative); sum is
 * the sum of the observations. */
void weir_metric_emit_histogram(weir_metric *m, const char *const *label_values,
                                const uint64_t *counts, double sum);

/* Only inside m's collect function: one sample.  label_values is a
 * NULL-terminated list with one value per label name (NULL when the family
 * has none), borrowed for the call.  A sample with the wrong number of
 * values or invalid UTF-8 is skipped. */
void weir_metric_emit(weir_metric *m, const char *const *label_values, double value);

/* Removes the family from its registry and frees it with its children.
 * Once it returns, m's collect function is never called again (so a module
 * unregisters its callbacks before freeing their arg).  No other thread may
 * be using m or its children.  NULL is a no-op. */
void weir_metric_unregister(weir_metric *m);

/* Label-set refusals because m reached its child limit. */
uint64_t weir_metric_dropped(const weir_metric *m);

/* ---- children -------------------------------------------------------------
 *
 * The child for one tuple of label values: label_values is NULL-terminated,
 * one UTF-8 value per label name, in the family's order (values are copied;
 * "" is a value).  The same tuple always gives the same child, owned by the
 * family.  For a family without labels, pass NULL (or an empty list): never
 * NULL then.  Returns NULL for the wrong number of values, invalid UTF-8, a
 * callback family, ENOMEM, or when the family is at its child limit (see
 * above).  Takes the family's mutex: look a child up once and keep it.
 */
weir_metric_child *weir_metric_with(weir_metric *m, const char *const *label_values);

/* Hot path: lock-free, any thread.  c may be NULL (no-op).  Calling one
 * type's function on another type's child is a bug (asserted; no-op with
 * NDEBUG). */

/* v >= 0; a negative or NaN v is ignored (counters only go up). */
void weir_counter_add(weir_metric_child *c, double v);
static inline void weir_counter_inc(weir_metric_child *c) { weir_counter_add(c, 1.0); }

void weir_gauge_set(weir_metric_child *c, double v);
void weir_gauge_add(weir_metric_child *c, double v);   /* v may be negative */
static inline void weir_gauge_inc(weir_metric_child *c) { weir_gauge_add(c, 1.0); }
static inline void weir_gauge_dec(weir_metric_child *c) { weir_gauge_add(c, -1.0); }

/* v lands in the first bucket whose bound is >= v (+Inf for NaN). */
void weir_histogram_observe(weir_metric_child *c, double v);

/* Lock-free except as described at the top; reads the registry's clock. */
void weir_summary_observe(weir_metric_child *c, double v);

/* A counter's or gauge's current value; for a histogram or summary, its
 * observation count.  NaN for NULL.  Mostly for tests. */
double weir_metric_value(weir_metric_child *c);

#endif
