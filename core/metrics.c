/*
 * core/metrics.c — Prometheus metrics.
 *
 * Layout in memory:
 *
 *   weir_metrics --first--> family --next--> family --next--> ... (registry mutex)
 *                             |
 *                             +--first--> child --next--> child ... (append-only,
 *                             |           published with release stores, so the
 *                             |           renderer walks it without the family mutex)
 *                             +--table:   hash of label values -> child (family mutex)
 *
 * Counters.  One child owns WEIR_METRICS_SHARDS cache lines; a thread picks a
 * shard once (round robin, kept in a thread-local) and always writes that
 * one.  A shard keeps whole increments in an integer (one fetch_add: the
 * common inc() never loops) and fractional ones as double bits updated by
 * compare-and-swap.  The value is the sum of every shard's integer and
 * double, taken at scrape time.  Histograms are sharded the same way: a
 * shard is the sum (double bits) then one non-cumulative count per bucket,
 * the last being +Inf; the scrape adds shards up and makes the counts
 * cumulative, and _count is the +Inf bucket, so the two always agree.
 *
 * Summaries.  Quantiles come from a log-bucketed sketch (the idea of
 * DDSketch): a value v > 0 is counted in bucket i = ceil(log_g |v|) with
 * g = (1 + a) / (1 - a), a = SK_ALPHA = 1%; the bucket's estimate
 * 2 g^i / (g + 1) is within a of every value in it.  Negative values use a
 * mirrored set of buckets and |v| < SK_MIN counts as 0, so one array of
 * "keys" is ordered like the values:
 *
 *   key:   0 ... nidx-1 | nidx | nidx+1 ... 2*nidx
 *   value: -SK_MAX .. -SK_MIN |  0   | SK_MIN .. SK_MAX   (clamped beyond)
 *
 * Counts are 32-bit atomics in pages of SK_PAGE keys, allocated on first use
 * (one CAS publishes a page; the loser frees its copy), so memory follows
 * the range of values actually seen: latencies spanning three decades touch
 * about six pages.  An observation is a clock read, a log() and two atomic
 * adds: no mutex, unlike a sorted-sample design (CKMS, or a sorted buffer)
 * that needs one per observation.  The price is the 1% relative error, which
 * is inside what a dashboard can show anyway; estimates are printed to four
 * significant digits.
 *
 * The window slides in AGE_BUCKETS steps.  Time is cut into "epochs" of
 * window/AGE_BUCKETS; epoch e is counted in slot e % AGE_BUCKETS, which
 * remembers its epoch.  The first observer of a new epoch finds an old tag
 * and recycles the slot (zeroes its pages) under the child's rotate mutex:
 * once per epoch per slot, rarely contended.  The scrape merges the slots
 * whose epoch lies in the last AGE_BUCKETS epochs, so quantiles cover
 * between 4/5 of the window and the whole of it.  _sum and _count are kept
 * like a counter and cover all time.
 *
 * Invariants:
 *   1. A child, once published on its family's list, is fully initialised
 *      and lives until its family is freed; child pointers never move.
 *   2. Lock order: registry mutex, then a family mutex (a collect function
 *      may call weir_metric_with), then nothing.  A summary's rotate mutex
 *      is taken with no other lock of this file held.
 *   3. Update paths take no lock except the summary's rotate mutex (above)
 *      and never allocate except a summary page (above).
 *   4. What is rendered is always parseable: names and label names are
 *      validated at registration, label values and help are checked UTF-8
 *      and escaped, and numbers go through fmt_double.
 *
 * Scrape consistency: shards are read one by one with relaxed loads while
 * other threads keep counting, so a scrape may see an observation in a
 * bucket but not yet in _sum.  Prometheus tolerates that; every client that
 * does not stop the world does the same.
 */
#include "core/metrics.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#define CACHELINE     64
#define AGE_BUCKETS   5
#define SK_ALPHA      0.01      /* relative error of summary quantiles */
#define SK_MIN        1e-9      /* |v| below this is counted as 0 */
#define SK_MAX        1e18      /* |v| above this is counted as SK_MAX */
#define SK_PAGE       64        /* keys per lazily allocated page */
#define SK_DIGITS     4         /* significant digits printed for quantiles */

#define DROPPED_NAME  "weir_metrics_label_sets_dropped_total"

_Static_assert((WEIR_METRICS_SHARDS & (WEIR_METRICS_SHARDS - 1)) == 0,
               "WEIR_METRICS_SHARDS must be a power of two");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(uint64_t) == sizeof(double), "double must be 64 bits");

const double weir_metrics_duration_buckets[WEIR_METRICS_DURATION_NBUCKETS] = {
    .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
};

static const double default_quantiles[] = { 0.5, 0.9, 0.99 };

/* One cache line of a counter (or of a summary's _count and _sum). */
typedef struct shard {
    _Alignas(CACHELINE) _Atomic uint64_t n;   /* whole increments */
    _Atomic uint64_t d;                       /* double bits: other increments */
} shard;

_Static_assert(sizeof(shard) == CACHELINE, "a shard is one cache line");

/* One age bucket of a summary's sketch. */
typedef struct sk_slot {
    _Atomic int64_t epoch;                  /* INT64_MIN: never used */
    _Atomic(_Atomic uint32_t *) page[];     /* sk_npages, NULL until used */
} sk_slot;

typedef struct summary_data {
    pthread_mutex_t rotate;
    sk_slot *slot[AGE_BUCKETS];
} summary_data;

struct weir_metric_child {
    weir_metric *fam;
    weir_metric_type type;
    _Atomic(weir_metric_child *) next;  /* creation order; set once */
    weir_metric_child *hnext;           /* hash chain; family mutex */
    uint64_t hash;
    char *key;              /* label values, NUL-terminated, back to back */
    char *labels;           /* rendered pairs, a="x",b="y"; "" without labels */
    shard *shards;          /* counter, summary (_count, _sum) */
    unsigned char *hist;    /* histogram: WEIR_METRICS_SHARDS x hist_stride */
    summary_data *sum;      /* summary sketch */
    _Atomic uint64_t gauge; /* gauge: double bits */
};

typedef struct sbuf {
    char *data;
    size_t len, cap;
    int err;
    size_t samples;         /* sample lines written */
} sbuf;

struct weir_metric {
    weir_metrics *reg;
    weir_metric *next;                      /* registry list; registry mutex */
    weir_metric_type type;
    char *name, *help;
    char *label[WEIR_METRICS_MAX_LABELS];
    size_t nlabels;

    double bound[WEIR_METRICS_MAX_BUCKETS]; /* histogram, without +Inf */
    size_t nbounds, hist_stride;

    double quantile[WEIR_METRICS_MAX_QUANTILES];
    size_t nq;
    int64_t age_us;                         /* summary: one epoch */
    double sk_lng, sk_inv, sk_gamma;        /* log(g), 1/log(g), g */
    int sk_imin, sk_imax;
    size_t sk_nidx, sk_npages;

    weir_metric_collect_fn fn;              /* callback families */
    void *arg;
    sbuf *emit_to;                          /* set while fn runs */

    pthread_mutex_t lock;                   /* table, last, nchildren */
    weir_metric_child **table;
    size_t tsize, nchildren;
    _Atomic(weir_metric_child *) first;
    weir_metric_child *last;
    weir_metric_child *solo;                /* the child of a label-less family */
    _Atomic uint64_t dropped;
};

struct weir_metrics {
    pthread_mutex_t lock;                   /* family list, renders */
    weir_metric *first, *last;
    weir_clock clock;
    _Atomic size_t max_children;
};

/* ---- small helpers ------------------------------------------------------- */

static inline uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* This thread's shard: assigned round robin on first use. */
static _Atomic unsigned next_shard;
static _Thread_local unsigned my_shard = UINT_MAX;

static inline unsigned shard_index(void)
{
    if (my_shard == UINT_MAX)
        my_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed)
                   & (WEIR_METRICS_SHARDS - 1);
    return my_shard;
}

/* Zeroed memory in whole cache lines, aligned to one; released with free(). */
static void *zalloc_lines(size_t size)
{
    size = (size + CACHELINE - 1) / CACHELINE * CACHELINE;
    void *p = aligned_alloc(CACHELINE, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

/* Number of entries before the NULL, looking at no more than max + 1. */
static size_t count_list(const char *const *v, size_t max)
{
    size_t n = 0;
    if (!v)
        return 0;
    while (n <= max && v[n])
        n++;
    return n;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool valid_metric_name(const char *s)
{
    if (!s || !(is_alpha(*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

/* Names starting with "__" are reserved for Prometheus itself. */
static bool valid_label_name(const char *s)
{
    if (!s || !(is_alpha(*s) || *s == '_') || (s[0] == '_' && s[1] == '_'))
        return false;
    for (s++; *s; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_'))
            return false;
    return true;
}

/* Well-formed UTF-8: no overlong forms, surrogates or code points past
 * U+10FFFF.  Prometheus rejects a whole scrape over one bad byte. */
static bool utf8_valid(const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    while (*p) {
        uint32_t cp, min;
        int n;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if ((*p & 0xe0) == 0xc0) {
            n = 1; cp = *p & 0x1f; min = 0x80;
        } else if ((*p & 0xf0) == 0xe0) {
            n = 2; cp = *p & 0x0f; min = 0x800;
        } else if ((*p & 0xf8) == 0xf0) {
            n = 3; cp = *p & 0x07; min = 0x10000;
        } else {
            return false;
        }
        for (int i = 1; i <= n; i++) {      /* stops at the NUL: 0 is no continuation */
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

/* ---- text buffer --------------------------------------------------------- */

static void sb_reserve(sbuf *b, size_t extra)
{
    if (b->err)
        return;
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->err = AVERROR(ENOMEM);
        return;
    }
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->err)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

/* Backslash and newline always; the double quote too inside label values. */
static void sb_escaped(sbuf *b, const char *s, bool quote)
{
    for (const char *run = s;; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && quote)
            rep = "\\\"";
        else if (*s)
            continue;
        sb_put(b, run, (size_t)(s - run));
        if (!rep)
            return;
        sb_puts(b, rep);
        run = s + 1;
    }
}

/* Prometheus parses numbers with Go's ParseFloat: "+Inf", "-Inf", "NaN",
 * and any decimal or exponent form.  Whole numbers print without a fraction
 * or exponent; others with the fewest digits that read back exactly. */
static void fmt_double(char buf[40], double v)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        strcpy(buf, "0");                   /* also for -0 */
    } else if (fabs(v) < 1e15 && v == trunc(v)) {
        snprintf(buf, 40, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, 40, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void sb_double(sbuf *b, double v)
{
    char buf[40];
    fmt_double(buf, v);
    sb_puts(b, buf);
}

/* a="x",b="y" for the family's label names and these values. */
static void sb_label_pairs(sbuf *b, const weir_metric *m, const char *const *values)
{
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i)
            sb_putc(b, ',');
        sb_puts(b, m->label[i]);
        sb_puts(b, "=\"");
        sb_escaped(b, values[i], true);
        sb_putc(b, '"');
    }
}

/* name+suffix{labels,xname="xval"} value */
static void sb_sample(sbuf *b, const weir_metric *m, const char *suffix,
                      const char *labels, const char *xname, const char *xval,
                      double v)
{
    sb_puts(b, m->name);
    sb_puts(b, suffix);
    if (*labels || xname) {
        sb_putc(b, '{');
        sb_puts(b, labels);
        if (xname) {
            if (*labels)
                sb_putc(b, ',');
            sb_puts(b, xname);
            sb_puts(b, "=\"");
            sb_puts(b, xval);
            sb_putc(b, '"');
        }
        sb_putc(b, '}');
    }
    sb_putc(b, ' ');
    sb_double(b, v);
    sb_putc(b, '\n');
    b->samples++;
}

/* ---- summary sketch ------------------------------------------------------ */

static void sk_geometry(weir_metric *m)
{
    m->sk_gamma = (1 + SK_ALPHA) / (1 - SK_ALPHA);
    m->sk_lng = log(m->sk_gamma);
    m->sk_inv = 1 / m->sk_lng;
    m->sk_imin = (int)floor(log(SK_MIN) * m->sk_inv);
    m->sk_imax = (int)ceil(log(SK_MAX) * m->sk_inv);
    m->sk_nidx = (size_t)(m->sk_imax - m->sk_imin + 1);
    m->sk_npages = (2 * m->sk_nidx + 1 + SK_PAGE - 1) / SK_PAGE;
}

/* Keys ascend with values; NaN is never passed in. */
static size_t sk_key(const weir_metric *m, double v)
{
    double a = fabs(v);
    if (a < SK_MIN)
        return m->sk_nidx;
    double li = ceil(log(a) * m->sk_inv);
    int i = li < m->sk_imin ? m->sk_imin : li > m->sk_imax ? m->sk_imax : (int)li;
    size_t off = (size_t)(i - m->sk_imin);
    return v > 0 ? m->sk_nidx + 1 + off : m->sk_nidx - 1 - off;
}

static double sk_value(const weir_metric *m, size_t key)
{
    if (key == m->sk_nidx)
        return 0;
    size_t off = key > m->sk_nidx ? key - m->sk_nidx - 1 : m->sk_nidx - 1 - key;
    double x = 2 * exp(((double)off + m->sk_imin) * m->sk_lng) / (m->sk_gamma + 1);
    return key > m->sk_nidx ? x : -x;
}

static void summary_free(summary_data *s, size_t npages)
{
    if (!s)
        return;
    for (int k = 0; k < AGE_BUCKETS; k++) {
        if (!s->slot[k])
            continue;
        for (size_t p = 0; p < npages; p++)
            free((void *)atomic_load_explicit(&s->slot[k]->page[p], memory_order_relaxed));
        free(s->slot[k]);
    }
    pthread_mutex_destroy(&s->rotate);
    free(s);
}

static summary_data *summary_new(const weir_metric *m)
{
    summary_data *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->rotate, NULL);
    for (int k = 0; k < AGE_BUCKETS; k++) {
        sk_slot *slot = calloc(1, sizeof *slot + m->sk_npages * sizeof slot->page[0]);
        if (!slot)
            goto fail;
        atomic_init(&slot->epoch, INT64_MIN);
        for (size_t p = 0; p < m->sk_npages; p++)
            atomic_init(&slot->page[p], NULL);
        s->slot[k] = slot;
    }
    return s;
fail:
    summary_free(s, m->sk_npages);
    return NULL;
}

/* Page p of slot, allocated if no thread did yet; NULL on ENOMEM. */
static _Atomic uint32_t *sk_page(sk_slot *slot, size_t p)
{
    _Atomic uint32_t *page = atomic_load_explicit(&slot->page[p], memory_order_acquire);
    if (page)
        return page;
    _Atomic uint32_t *fresh = malloc(SK_PAGE * sizeof *fresh);
    if (!fresh)
        return NULL;
    for (int i = 0; i < SK_PAGE; i++)
        atomic_init(&fresh[i], 0);
    if (atomic_compare_exchange_strong_explicit(&slot->page[p], &page, fresh,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);
    return page;                            /* another thread's page */
}

/* Hands slot over to epoch e, emptied.  An observer still counting into the
 * old epoch may land one count in the new one: a boundary blur the sketch's
 * error already covers. */
static void sk_recycle(summary_data *s, sk_slot *slot, int64_t e, size_t npages)
{
    pthread_mutex_lock(&s->rotate);
    if (atomic_load_explicit(&slot->epoch, memory_order_relaxed) < e) {
        for (size_t p = 0; p < npages; p++) {
            _Atomic uint32_t *page = atomic_load_explicit(&slot->page[p], memory_order_acquire);
            if (!page)
                continue;
            for (int i = 0; i < SK_PAGE; i++)
                atomic_store_explicit(&page[i], 0, memory_order_relaxed);
        }
        atomic_store_explicit(&slot->epoch, e, memory_order_release);
    }
    pthread_mutex_unlock(&s->rotate);
}

/* The slots holding the window that ends in epoch e. */
static size_t sk_live(const summary_data *s, int64_t e, sk_slot *live[AGE_BUCKETS])
{
    size_t n = 0;
    for (int k = 0; k < AGE_BUCKETS; k++) {
        int64_t tag = atomic_load_explicit(&s->slot[k]->epoch, memory_order_acquire);
        if (tag <= e && tag > e - AGE_BUCKETS)
            live[n++] = s->slot[k];
    }
    return n;
}

/* Counts of keys [p*SK_PAGE, (p+1)*SK_PAGE) summed over the live slots. */
static void sk_page_counts(sk_slot *const *live, size_t nlive, size_t p, uint64_t cnt[SK_PAGE])
{
    memset(cnt, 0, SK_PAGE * sizeof cnt[0]);
    for (size_t k = 0; k < nlive; k++) {
        _Atomic uint32_t *page = atomic_load_explicit(&live[k]->page[p], memory_order_acquire);
        if (!page)
            continue;
        for (int i = 0; i < SK_PAGE; i++)
            cnt[i] += atomic_load_explicit(&page[i], memory_order_relaxed);
    }
}

/* out[j] = estimate of quantile j over the window at `now`; NaN if empty.
 * Nearest rank: quantile q of n values is the smallest value with at least
 * q*n values at or below it (so q = 0 is the minimum, q = 1 the maximum). */
static void sk_quantiles(const weir_metric *m, const summary_data *s, int64_t now, double *out)
{
    sk_slot *live[AGE_BUCKETS];
    size_t nlive = sk_live(s, floor_div(now, m->age_us), live);
    uint64_t cnt[SK_PAGE], total = 0, cum = 0;
    size_t j = 0, lastkey = SIZE_MAX;

    for (size_t i = 0; i < m->nq; i++)
        out[i] = NAN;
    for (size_t p = 0; p < m->sk_npages && nlive; p++) {
        sk_page_counts(live, nlive, p, cnt);
        for (int i = 0; i < SK_PAGE; i++)
            total += cnt[i];
    }
    if (!total)
        return;
    for (size_t p = 0; p < m->sk_npages && j < m->nq; p++) {
        sk_page_counts(live, nlive, p, cnt);
        for (int i = 0; i < SK_PAGE && j < m->nq; i++) {
            if (!cnt[i])
                continue;
            lastkey = p * SK_PAGE + (size_t)i;
            cum += cnt[i];
            while (j < m->nq && (double)cum >= m->quantile[j] * (double)total)
                out[j++] = sk_value(m, lastkey);
        }
    }
    /* Counts can shrink under a concurrent recycle: the rest is the max. */
    for (; j < m->nq && lastkey != SIZE_MAX; j++)
        out[j] = sk_value(m, lastkey);
}

static double round_sig(double v, int digits)
{
    char buf[40];
    if (!isfinite(v) || v == 0)
        return v;
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return strtod(buf, NULL);
}

/* ---- children ------------------------------------------------------------ */

static uint64_t hash_values(const char *const *v, size_t n)
{
    uint64_t h = 14695981039346656037u;    /* FNV-1a; a 0 byte ends each value */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i];; p++) {
            h = (h ^ *p) * 1099511628211u;
            if (!*p)
                break;
        }
    }
    return h;
}

static bool key_equals(const char *key, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, v[i]) != 0)
            return false;
        key += strlen(key) + 1;
    }
    return true;
}

static void child_free(weir_metric_child *c)
{
    if (!c)
        return;
    free(c->key);
    free(c->labels);
    free(c->shards);
    free(c->hist);
    summary_free(c->sum, c->fam->sk_npages);
    free(c);
}

static weir_metric_child *child_new(weir_metric *m, const char *const *values, uint64_t hash)
{
    weir_metric_child *c = calloc(1, sizeof *c);
    sbuf lb = { 0 };
    size_t keylen = 0;

    if (!c)
        return NULL;
    c->fam = m;
    c->type = m->type;
    c->hash = hash;
    atomic_init(&c->next, NULL);
    atomic_init(&c->gauge, dbl_bits(0));

    for (size_t i = 0; i < m->nlabels; i++)
        keylen += strlen(values[i]) + 1;
    if (!(c->key = malloc(keylen + 1)))
        goto fail;
    for (size_t i = 0, off = 0; i < m->nlabels; i++) {
        size_t l = strlen(values[i]) + 1;
        memcpy(c->key + off, values[i], l);
        off += l;
    }
    sb_reserve(&lb, 64);
    sb_label_pairs(&lb, m, values);
    c->labels = lb.data;
    if (lb.err)
        goto fail;

    switch (m->type) {
    case WEIR_METRIC_COUNTER:
    case WEIR_METRIC_SUMMARY:
        if (!(c->shards = zalloc_lines(WEIR_METRICS_SHARDS * sizeof(shard))))
            goto fail;
        for (int s = 0; s < WEIR_METRICS_SHARDS; s++) {
            atomic_init(&c->shards[s].n, 0);
            atomic_init(&c->shards[s].d, dbl_bits(0));
        }
        if (m->type == WEIR_METRIC_SUMMARY && !(c->sum = summary_new(m)))
            goto fail;
        break;
    case WEIR_METRIC_HISTOGRAM: {
        size_t words = WEIR_METRICS_SHARDS * m->hist_stride / sizeof(uint64_t);
        if (!(c->hist = zalloc_lines(WEIR_METRICS_SHARDS * m->hist_stride)))
            goto fail;
        for (size_t w = 0; w < words; w++)
            atomic_init((_Atomic uint64_t *)c->hist + w, 0);
        break;
    }
    case WEIR_METRIC_GAUGE:
        break;
    }
    return c;
fail:
    child_free(c);
    return NULL;
}

static weir_metric_child *child_find(const weir_metric *m, uint64_t hash,
                                     const char *const *values)
{
    if (!m->tsize)
        return NULL;
    for (weir_metric_child *c = m->table[hash & (m->tsize - 1)]; c; c = c->hnext)
        if (c->hash == hash && key_equals(c->key, values, m->nlabels))
            return c;
    return NULL;
}

/* Adds c to the hash table (growing it at load 1) and to the end of the
 * list, where the renderer can see it.  Family mutex held. */
static int child_link(weir_metric *m, weir_metric_child *c)
{
    if (m->nchildren >= m->tsize) {
        size_t nsize = m->tsize ? m->tsize * 2 : 16;
        weir_metric_child **nt = calloc(nsize, sizeof *nt);
        if (!nt)
            return AVERROR(ENOMEM);
        for (size_t i = 0; i < m->tsize; i++) {
            for (weir_metric_child *x = m->table[i], *nx; x; x = nx) {
                nx = x->hnext;
                x->hnext = nt[x->hash & (nsize - 1)];
                nt[x->hash & (nsize - 1)] = x;
            }
        }
        free(m->table);
        m->table = nt;
        m->tsize = nsize;
    }
    c->hnext = m->table[c->hash & (m->tsize - 1)];
    m->table[c->hash & (m->tsize - 1)] = c;
    if (m->last)
        atomic_store_explicit(&m->last->next, c, memory_order_release);
    else
        atomic_store_explicit(&m->first, c, memory_order_release);
    m->last = c;
    m->nchildren++;
    return 0;
}

weir_metric_child *weir_metric_with(weir_metric *m, const char *const *values)
{
    weir_metric_child *c;
    size_t n;
    uint64_t hash;

    if (!m || m->fn)
        return NULL;
    n = count_list(values, m->nlabels);
    if (n != m->nlabels)
        return NULL;
    if (n == 0)
        return m->solo;
    for (size_t i = 0; i < n; i++)
        if (!utf8_valid(values[i]))
            return NULL;
    hash = hash_values(values, n);

    pthread_mutex_lock(&m->lock);
    c = child_find(m, hash, values);
    if (c)
        goto out;
    if (m->nchildren >= atomic_load_explicit(&m->reg->max_children, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
        goto out;
    }
    c = child_new(m, values, hash);
    if (c && child_link(m, c) < 0) {
        child_free(c);
        c = NULL;
    }
out:
    pthread_mutex_unlock(&m->lock);
    return c;
}

/* ---- hot path ------------------------------------------------------------ */

/* A child of the wrong type is a caller's bug: assert, else ignore. */
#define CHECK_CHILD(c, t)                                       \
    do {                                                        \
        if (!(c))                                               \
            return;                                             \
        assert((c)->type == (t) && "metric of another type");   \
        if ((c)->type != (t))                                   \
            return;                                             \
    } while (0)

void weir_counter_add(weir_metric_child *c, double v)
{
    CHECK_CHILD(c, WEIR_METRIC_COUNTER);
    if (!(v >= 0))
        return;
    shard *s = &c->shards[shard_index()];
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v)   /* whole, below 2^53 */
        atomic_fetch_add_explicit(&s->n, (uint64_t)v, memory_order_relaxed);
    else
        atomic_add_double(&s->d, v);
}

void weir_gauge_set(weir_metric_child *c, double v)
{
    CHECK_CHILD(c, WEIR_METRIC_GAUGE);
    atomic_store_explicit(&c->gauge, dbl_bits(v), memory_order_relaxed);
}

void weir_gauge_add(weir_metric_child *c, double v)
{
    CHECK_CHILD(c, WEIR_METRIC_GAUGE);
    atomic_add_double(&c->gauge, v);
}

void weir_histogram_observe(weir_metric_child *c, double v)
{
    CHECK_CHILD(c, WEIR_METRIC_HISTOGRAM);
    const weir_metric *m = c->fam;
    size_t lo = 0, hi = m->nbounds;
    while (lo < hi) {                       /* first bound >= v; NaN: none */
        size_t mid = (lo + hi) / 2;
        if (v <= m->bound[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    _Atomic uint64_t *h = (_Atomic uint64_t *)(c->hist + shard_index() * m->hist_stride);
    atomic_fetch_add_explicit(&h[1 + lo], 1, memory_order_relaxed);
    atomic_add_double(&h[0], v);
}

void weir_summary_observe(weir_metric_child *c, double v)
{
    CHECK_CHILD(c, WEIR_METRIC_SUMMARY);
    const weir_metric *m = c->fam;
    shard *s = &c->shards[shard_index()];

    atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
    atomic_add_double(&s->d, v);
    if (isnan(v))
        return;

    int64_t e = floor_div(weir_clock_now_us(&m->reg->clock), m->age_us);
    sk_slot *slot = c->sum->slot[(size_t)(e - floor_div(e, AGE_BUCKETS) * AGE_BUCKETS)];
    int64_t tag = atomic_load_explicit(&slot->epoch, memory_order_acquire);
    if (tag != e) {
        if (tag > e)                        /* our clock read is already stale */
            return;
        sk_recycle(c->sum, slot, e, m->sk_npages);
    }
    size_t key = sk_key(m, v);
    _Atomic uint32_t *page = sk_page(slot, key / SK_PAGE);
    if (page)                               /* ENOMEM: only the quantiles miss it */
        atomic_fetch_add_explicit(&page[key % SK_PAGE], 1, memory_order_relaxed);
}

/* ---- reading ------------------------------------------------------------- */

static void shards_read(const weir_metric_child *c, uint64_t *n, double *d)
{
    *n = 0;
    *d = 0;
    for (int s = 0; s < WEIR_METRICS_SHARDS; s++) {
        *n += atomic_load_explicit(&c->shards[s].n, memory_order_relaxed);
        *d += bits_dbl(atomic_load_explicit(&c->shards[s].d, memory_order_relaxed));
    }
}

/* Non-cumulative counts per bucket (+Inf last) and the sum, over shards. */
static void hist_read(const weir_metric_child *c, uint64_t *cnt, double *sum)
{
    const weir_metric *m = c->fam;
    memset(cnt, 0, (m->nbounds + 1) * sizeof cnt[0]);
    *sum = 0;
    for (int s = 0; s < WEIR_METRICS_SHARDS; s++) {
        _Atomic uint64_t *h = (_Atomic uint64_t *)(c->hist + (size_t)s * m->hist_stride);
        *sum += bits_dbl(atomic_load_explicit(&h[0], memory_order_relaxed));
        for (size_t i = 0; i <= m->nbounds; i++)
            cnt[i] += atomic_load_explicit(&h[1 + i], memory_order_relaxed);
    }
}

double weir_metric_value(weir_metric_child *c)
{
    uint64_t n, cnt[WEIR_METRICS_MAX_BUCKETS + 1];
    double d;

    if (!c)
        return NAN;
    switch (c->type) {
    case WEIR_METRIC_COUNTER:
        shards_read(c, &n, &d);
        return (double)n + d;
    case WEIR_METRIC_GAUGE:
        return bits_dbl(atomic_load_explicit(&c->gauge, memory_order_relaxed));
    case WEIR_METRIC_HISTOGRAM:
        hist_read(c, cnt, &d);
        n = 0;
        for (size_t i = 0; i <= c->fam->nbounds; i++)
            n += cnt[i];
        return (double)n;
    case WEIR_METRIC_SUMMARY:
        shards_read(c, &n, &d);
        return (double)n;
    }
    return NAN;
}

/* ---- rendering ----------------------------------------------------------- */

static const char *const type_names[] = {
    [WEIR_METRIC_COUNTER]   = "counter",
    [WEIR_METRIC_GAUGE]     = "gauge",
    [WEIR_METRIC_HISTOGRAM] = "histogram",
    [WEIR_METRIC_SUMMARY]   = "summary",
};

/* cnt: m->nbounds + 1 per-bucket (not cumulative) counts, +Inf last. */
static void put_histogram(sbuf *b, const weir_metric *m, const char *labels,
                          const uint64_t *cnt, double sum)
{
    uint64_t cum = 0;
    char le[40];

    for (size_t i = 0; i < m->nbounds; i++) {
        cum += cnt[i];
        fmt_double(le, m->bound[i]);
        sb_sample(b, m, "_bucket", labels, "le", le, (double)cum);
    }
    cum += cnt[m->nbounds];
    sb_sample(b, m, "_bucket", labels, "le", "+Inf", (double)cum);
    sb_sample(b, m, "_sum", labels, NULL, NULL, sum);
    sb_sample(b, m, "_count", labels, NULL, NULL, (double)cum);
}

static void render_histogram(sbuf *b, const weir_metric *m, const weir_metric_child *c)
{
    uint64_t cnt[WEIR_METRICS_MAX_BUCKETS + 1];
    double sum;

    hist_read(c, cnt, &sum);
    put_histogram(b, m, c->labels, cnt, sum);
}

static void render_summary(sbuf *b, const weir_metric *m, const weir_metric_child *c)
{
    double q[WEIR_METRICS_MAX_QUANTILES], sum;
    char qs[40];
    uint64_t n;

    sk_quantiles(m, c->sum, weir_clock_now_us(&m->reg->clock), q);
    for (size_t j = 0; j < m->nq; j++) {
        fmt_double(qs, m->quantile[j]);
        sb_sample(b, m, "", c->labels, "quantile", qs, round_sig(q[j], SK_DIGITS));
    }
    shards_read(c, &n, &sum);
    sb_sample(b, m, "_sum", c->labels, NULL, NULL, sum);
    sb_sample(b, m, "_count", c->labels, NULL, NULL, (double)n);
}

static void render_child(sbuf *b, const weir_metric *m, const weir_metric_child *c)
{
    uint64_t n;
    double d;

    switch (m->type) {
    case WEIR_METRIC_COUNTER:
        shards_read(c, &n, &d);
        sb_sample(b, m, "", c->labels, NULL, NULL, (double)n + d);
        break;
    case WEIR_METRIC_GAUGE:
        sb_sample(b, m, "", c->labels, NULL, NULL,
                  bits_dbl(atomic_load_explicit(&c->gauge, memory_order_relaxed)));
        break;
    case WEIR_METRIC_HISTOGRAM:
        render_histogram(b, m, c);
        break;
    case WEIR_METRIC_SUMMARY:
        render_summary(b, m, c);
        break;
    }
}

/* A family without samples is left out, header included. */
static void render_family(sbuf *b, weir_metric *m)
{
    size_t mark = b->len, before = b->samples;

    if (*m->help) {
        sb_puts(b, "# HELP ");
        sb_puts(b, m->name);
        sb_putc(b, ' ');
        sb_escaped(b, m->help, false);
        sb_putc(b, '\n');
    }
    sb_puts(b, "# TYPE ");
    sb_puts(b, m->name);
    sb_putc(b, ' ');
    sb_puts(b, type_names[m->type]);
    sb_putc(b, '\n');

    if (m->fn) {
        m->emit_to = b;
        m->fn(m->arg, m);
        m->emit_to = NULL;
    } else {
        for (weir_metric_child *c = atomic_load_explicit(&m->first, memory_order_acquire);
             c; c = atomic_load_explicit(&c->next, memory_order_acquire))
            render_child(b, m, c);
    }
    if (b->samples == before && !b->err) {
        b->len = mark;
        b->data[mark] = '\0';
    }
}

void weir_metric_emit(weir_metric *m, const char *const *values, double value)
{
    if (!m)
        return;
    assert(m->emit_to && "weir_metric_emit outside a collect function");
    if (!m->emit_to || count_list(values, m->nlabels) != m->nlabels)
        return;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!utf8_valid(values[i]))
            return;

    sbuf *b = m->emit_to;
    sb_puts(b, m->name);
    if (m->nlabels) {
        sb_putc(b, '{');
        sb_label_pairs(b, m, values);
        sb_putc(b, '}');
    }
    sb_putc(b, ' ');
    sb_double(b, value);
    sb_putc(b, '\n');
    b->samples++;
}

void weir_metric_emit_histogram(weir_metric *m, const char *const *values,
                                const uint64_t *counts, double sum)
{
    sbuf labels = { 0 };

    if (!m)
        return;
    assert(m->emit_to && m->type == WEIR_METRIC_HISTOGRAM);
    if (!m->emit_to || m->type != WEIR_METRIC_HISTOGRAM ||
        count_list(values, m->nlabels) != m->nlabels)
        return;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!utf8_valid(values[i]))
            return;
    sb_reserve(&labels, 64);
    if (m->nlabels)
        sb_label_pairs(&labels, m, values);
    if (!labels.err)
        put_histogram(m->emit_to, m, labels.data ? labels.data : "", counts, sum);
    free(labels.data);
}

int weir_metrics_render(weir_metrics *reg, char **out, size_t *len)
{
    sbuf b = { 0 };
    int ret;

    *out = NULL;
    *len = 0;
    sb_reserve(&b, 4096);
    pthread_mutex_lock(&reg->lock);
    for (weir_metric *m = reg->first; m && !b.err; m = m->next)
        render_family(&b, m);
    pthread_mutex_unlock(&reg->lock);
    if (b.err) {
        ret = b.err;
        goto fail;
    }
    *out = b.data;
    *len = b.len;
    return 0;
fail:
    free(b.data);
    return ret;
}

/* ---- families ------------------------------------------------------------ */

typedef struct family_spec {
    weir_metric_type type;
    const char *name, *help;
    const char *const *labels;
    const double *bounds;
    size_t nbounds;
    const double *quantiles;
    size_t nq;
    int64_t window_ms;
    weir_metric_collect_fn fn;
    void *arg;
} family_spec;

/* Does a+a2 spell the same as b+b2? */
static bool cat_equals(const char *a, const char *a2, const char *b, const char *b2)
{
    for (;;) {
        if (!*a) {
            a = a2;
            a2 = "";
        }
        if (!*b) {
            b = b2;
            b2 = "";
        }
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++;
        b++;
    }
}

/* Suffixes of the names a family's samples and # TYPE line use. */
static size_t exposed_suffixes(weir_metric_type type, const char *out[4])
{
    static const char *const hist[] = { "", "_bucket", "_sum", "_count" };
    static const char *const summ[] = { "", "_sum", "_count" };
    switch (type) {
    case WEIR_METRIC_HISTOGRAM:
        memcpy(out, hist, sizeof hist);
        return 4;
    case WEIR_METRIC_SUMMARY:
        memcpy(out, summ, sizeof summ);
        return 3;
    default:
        out[0] = "";
        return 1;
    }
}

/* Would a and b expose a sample name in common?  (A counter "x_count" next
 * to a summary "x" would make the text ambiguous.) */
static bool families_clash(const weir_metric *a, const weir_metric *b)
{
    const char *sa[4], *sb[4];
    size_t na = exposed_suffixes(a->type, sa), nb = exposed_suffixes(b->type, sb);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (cat_equals(a->name, sa[i], b->name, sb[j]))
                return true;
    return false;
}

static void family_free(weir_metric *m)
{
    if (!m)
        return;
    for (weir_metric_child *c = atomic_load_explicit(&m->first, memory_order_relaxed), *nx;
         c; c = nx) {
        nx = atomic_load_explicit(&c->next, memory_order_relaxed);
        child_free(c);
    }
    free(m->table);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->label[i]);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int check_labels(const family_spec *s, size_t n)
{
    const char *reserved = s->type == WEIR_METRIC_HISTOGRAM ? "le"
                         : s->type == WEIR_METRIC_SUMMARY ? "quantile" : NULL;
    if (n > WEIR_METRICS_MAX_LABELS)
        return AVERROR(EINVAL);
    for (size_t i = 0; i < n; i++) {
        if (!valid_label_name(s->labels[i]) || (reserved && !strcmp(s->labels[i], reserved)))
            return AVERROR(EINVAL);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(s->labels[i], s->labels[k]))
                return AVERROR(EINVAL);
    }
    return 0;
}

/* Copies the validated bounds (a trailing +Inf dropped) into m. */
static int setup_histogram(weir_metric *m, const family_spec *s)
{
    const double *b = s->bounds ? s->bounds : weir_metrics_duration_buckets;
    size_t n = s->bounds ? s->nbounds : WEIR_METRICS_DURATION_NBUCKETS;

    if (n && isinf(b[n - 1]) && b[n - 1] > 0)
        n--;
    if (n > WEIR_METRICS_MAX_BUCKETS)
        return AVERROR(EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i && !(b[i] > b[i - 1])))
            return AVERROR(EINVAL);
    memcpy(m->bound, b, n * sizeof b[0]);
    m->nbounds = n;
    m->hist_stride = ((n + 2) * sizeof(uint64_t) + CACHELINE - 1) / CACHELINE * CACHELINE;
    return 0;
}

static int setup_summary(weir_metric *m, const family_spec *s)
{
    const double *q = s->quantiles ? s->quantiles : default_quantiles;
    size_t n = s->quantiles ? s->nq : sizeof default_quantiles / sizeof default_quantiles[0];
    int64_t window_ms = s->window_ms ? s->window_ms : WEIR_METRICS_SUMMARY_WINDOW_MS;

    if (n > WEIR_METRICS_MAX_QUANTILES || window_ms < 0 || window_ms > INT64_MAX / 1000)
        return AVERROR(EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!(q[i] >= 0 && q[i] <= 1) || (i && !(q[i] > q[i - 1])))
            return AVERROR(EINVAL);
    memcpy(m->quantile, q, n * sizeof q[0]);
    m->nq = n;
    m->age_us = window_ms * 1000 / AGE_BUCKETS;
    if (m->age_us < 1)
        m->age_us = 1;
    sk_geometry(m);
    return 0;
}

static int family_register(weir_metrics *reg, const family_spec *s, weir_metric **out)
{
    weir_metric *m = NULL;
    size_t nlabels;
    int ret;

    if (out)
        *out = NULL;
    if (!reg || !valid_metric_name(s->name) || !s->help || !utf8_valid(s->help))
        return AVERROR(EINVAL);
    nlabels = count_list(s->labels, WEIR_METRICS_MAX_LABELS);
    if ((ret = check_labels(s, nlabels)) < 0)
        return ret;

    if (!(m = calloc(1, sizeof *m)))
        return AVERROR(ENOMEM);
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->first, NULL);
    atomic_init(&m->dropped, 0);
    m->reg = reg;
    m->type = s->type;
    m->fn = s->fn;
    m->arg = s->arg;
    ret = AVERROR(ENOMEM);
    if (!(m->name = strdup(s->name)) || !(m->help = strdup(s->help)))
        goto fail;
    for (; m->nlabels < nlabels; m->nlabels++)
        if (!(m->label[m->nlabels] = strdup(s->labels[m->nlabels])))
            goto fail;

    ret = 0;
    if (s->type == WEIR_METRIC_HISTOGRAM)
        ret = setup_histogram(m, s);
    else if (s->type == WEIR_METRIC_SUMMARY)
        ret = setup_summary(m, s);
    if (ret < 0)
        goto fail;

    if (!nlabels && !s->fn) {
        ret = AVERROR(ENOMEM);
        if (!(m->solo = child_new(m, NULL, 0)) || child_link(m, m->solo) < 0) {
            child_free(m->solo);
            goto fail;
        }
    }

    pthread_mutex_lock(&reg->lock);
    for (weir_metric *o = reg->first; o; o = o->next) {
        if (families_clash(o, m)) {
            pthread_mutex_unlock(&reg->lock);
            ret = AVERROR(EEXIST);
            goto fail;
        }
    }
    if (reg->last)
        reg->last->next = m;
    else
        reg->first = m;
    reg->last = m;
    pthread_mutex_unlock(&reg->lock);

    if (out)
        *out = m;
    return 0;
fail:
    family_free(m);
    return ret;
}

int weir_metric_counter(weir_metrics *reg, const char *name, const char *help,
                        const char *const *labels, weir_metric **out)
{
    family_spec s = { .type = WEIR_METRIC_COUNTER, .name = name, .help = help, .labels = labels };
    return family_register(reg, &s, out);
}

int weir_metric_gauge(weir_metrics *reg, const char *name, const char *help,
                      const char *const *labels, weir_metric **out)
{
    family_spec s = { .type = WEIR_METRIC_GAUGE, .name = name, .help = help, .labels = labels };
    return family_register(reg, &s, out);
}

int weir_metric_histogram(weir_metrics *reg, const char *name, const char *help,
                          const char *const *labels,
                          const double *buckets, size_t nbuckets, weir_metric **out)
{
    family_spec s = { .type = WEIR_METRIC_HISTOGRAM, .name = name, .help = help,
                      .labels = labels, .bounds = buckets, .nbounds = nbuckets };
    return family_register(reg, &s, out);
}

int weir_metric_summary(weir_metrics *reg, const char *name, const char *help,
                        const char *const *labels,
                        const double *quantiles, size_t nq, int64_t window_ms,
                        weir_metric **out)
{
    family_spec s = { .type = WEIR_METRIC_SUMMARY, .name = name, .help = help,
                      .labels = labels, .quantiles = quantiles, .nq = nq,
                      .window_ms = window_ms };
    return family_register(reg, &s, out);
}

int weir_metric_callback(weir_metrics *reg, const char *name, const char *help,
                         weir_metric_type type, const char *const *labels,
                         weir_metric_collect_fn fn, void *arg, weir_metric **out)
{
    family_spec s = { .type = type, .name = name, .help = help, .labels = labels,
                      .fn = fn, .arg = arg };
    if (out)
        *out = NULL;
    if (!fn || (type != WEIR_METRIC_COUNTER && type != WEIR_METRIC_GAUGE))
        return AVERROR(EINVAL);
    return family_register(reg, &s, out);
}

int weir_metric_histogram_callback(weir_metrics *reg, const char *name, const char *help,
                                   const char *const *labels, const double *buckets,
                                   size_t nbuckets, weir_metric_collect_fn fn, void *arg,
                                   weir_metric **out)
{
    family_spec s = { .type = WEIR_METRIC_HISTOGRAM, .name = name, .help = help,
                      .labels = labels, .bounds = buckets, .nbounds = nbuckets,
                      .fn = fn, .arg = arg };
    if (out)
        *out = NULL;
    if (!fn)
        return AVERROR(EINVAL);
    return family_register(reg, &s, out);
}

void weir_metric_unregister(weir_metric *m)
{
    if (!m)
        return;
    weir_metrics *reg = m->reg;
    pthread_mutex_lock(&reg->lock);
    for (weir_metric **pp = &reg->first, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp != m)
            continue;
        *pp = m->next;
        if (reg->last == m)
            reg->last = prev;
        break;
    }
    pthread_mutex_unlock(&reg->lock);
    family_free(m);
}

uint64_t weir_metric_dropped(const weir_metric *m)
{
    return m ? atomic_load_explicit(&m->dropped, memory_order_relaxed) : 0;
}

/* ---- registry ------------------------------------------------------------ */

/* The built-in family: runs under the registry mutex, so it may walk the list. */
static void collect_dropped(void *arg, weir_metric *self)
{
    weir_metrics *reg = arg;
    for (weir_metric *m = reg->first; m; m = m->next) {
        uint64_t d = atomic_load_explicit(&m->dropped, memory_order_relaxed);
        if (d)
            weir_metric_emit(self, (const char *const[]){ m->name, NULL }, (double)d);
    }
}

weir_metrics *weir_metrics_new(void)
{
    weir_metrics *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    reg->clock = weir_clock_system;
    atomic_init(&reg->max_children, WEIR_METRICS_MAX_CHILDREN_DEFAULT);
    if (weir_metric_callback(reg, DROPPED_NAME,
                             "Label sets refused because the metric family had reached its child limit.",
                             WEIR_METRIC_COUNTER, (const char *const[]){ "metric", NULL },
                             collect_dropped, reg, NULL) < 0) {
        weir_metrics_free(reg);
        return NULL;
    }
    return reg;
}

void weir_metrics_free(weir_metrics *reg)
{
    if (!reg)
        return;
    for (weir_metric *m = reg->first, *nx; m; m = nx) {
        nx = m->next;
        family_free(m);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static weir_metrics *default_reg;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    default_reg = weir_metrics_new();
}

weir_metrics *weir_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_reg;
}

void weir_metrics_set_clock(weir_metrics *reg, const weir_clock *clock)
{
    reg->clock = *clock;
}

void weir_metrics_set_max_children(weir_metrics *reg, size_t max)
{
    atomic_store_explicit(&reg->max_children,
                          max ? max : WEIR_METRICS_MAX_CHILDREN_DEFAULT,
                          memory_order_relaxed);
}
