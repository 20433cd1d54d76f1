/*
 * Unit tests for ingest/srt/srt_auth, the SRT handshake's key table.
 *
 * The loop is a queue the test runs by hand (fake_post), the key store
 * remembers each request and the test answers it when it likes, and the
 * clock is stepped by hand: no threads and no sleeps, except one test where
 * a second thread answers while a caller waits (it waits for the caller to
 * be waiting, not for time to pass).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <libavutil/error.h>

#include "ingest/srt/srt_auth.h"

#define QMAX 128

typedef struct fake {
    /* the loop */
    void (*fn[QMAX])(void *);
    void *arg[QMAX];
    int nposted, nrun;
    /* the key store */
    weir_publish_auth_done done[QMAX];
    void *done_arg[QMAX];
    char key[QMAX][64];
    int calls, answered;
    /* the clock */
    int64_t now;
} fake;

static fake f;

static int fake_post(void *ctx, void (*fn)(void *), void *arg)
{
    fake *p = ctx;
    cr_assert_lt(p->nposted, QMAX);
    p->fn[p->nposted] = fn;
    p->arg[p->nposted++] = arg;
    return 0;
}

static void run_loop(void)
{
    while (f.nrun < f.nposted) {
        int i = f.nrun++;
        f.fn[i](f.arg[i]);
    }
}

static int fake_auth(void *ctx, const char *key, weir_publish_auth_done done, void *arg)
{
    fake *p = ctx;
    cr_assert_lt(p->calls, QMAX);
    snprintf(p->key[p->calls], sizeof p->key[0], "%s", key);
    p->done[p->calls] = done;
    p->done_arg[p->calls++] = arg;
    return 0;
}

/* The store answers its request number i. */
static void answer(int i, int result, const char *stream)
{
    f.done[i](f.done_arg[i], result, stream, NULL);
    f.answered++;
}

static int64_t fake_now(void *arg) { return ((fake *)arg)->now; }

static weir_clock clock_ = { fake_now, &f };

static weir_srt_auth *new_table(int max_inflight, int64_t budget_us)
{
    weir_srt_auth *a;
    memset(&f, 0, sizeof f);
    cr_assert_eq(weir_srt_auth_new(&(weir_srt_auth_opts){
        .post = fake_post, .post_ctx = &f, .auth = fake_auth, .auth_ctx = &f,
        .clock = &clock_, .ttl_us = 5000000, .max_inflight = max_inflight,
        .budget_us = budget_us,
    }, &a), 0);
    return a;
}

static char name[WEIR_BUS_NAME_MAX + 1];

Test(srt_auth, a_valid_key_is_checked_once_then_reused_until_ttl)
{
    weir_srt_auth *a = new_table(8, 0);

    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    cr_assert_eq(weir_srt_auth_inflight(a), 1);
    /* asking again while it runs starts nothing new */
    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    run_loop();
    cr_assert_eq(f.calls, 1);
    cr_assert_str_eq(f.key[0], "k1");
    answer(0, 0, "cam1");
    cr_assert_eq(weir_srt_auth_inflight(a), 0);
    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), 0);
    cr_assert_str_eq(name, "cam1");
    f.now += 4999999;
    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), 0);
    run_loop();
    cr_assert_eq(f.calls, 1, "the answer was not reused");
    f.now += 1;
    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    run_loop();
    cr_assert_eq(f.calls, 2, "an expired answer was reused");
    answer(1, AVERROR(EACCES), NULL);       /* revoked meanwhile */
    cr_assert_eq(weir_srt_auth_check(a, "k1", 0, 0, NULL, name, NULL), AVERROR(EACCES));
    weir_srt_auth_close(a);
}

Test(srt_auth, a_refused_key_is_remembered)
{
    weir_srt_auth *a = new_table(8, 0);

    weir_srt_auth_check(a, "bad", 0, 0, NULL, name, NULL);
    run_loop();
    answer(0, AVERROR(EACCES), NULL);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(weir_srt_auth_check(a, "bad", 0, 0, NULL, name, NULL), AVERROR(EACCES));
    run_loop();
    cr_assert_eq(f.calls, 1);
    weir_srt_auth_close(a);
}

Test(srt_auth, store_errors_are_not_kept)
{
    weir_srt_auth *a = new_table(8, 0);

    weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL);
    run_loop();
    answer(0, AVERROR(EIO), NULL);
    /* the next caller asks again rather than taking the error */
    cr_assert_eq(weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL), AVERROR(EAGAIN),
                 "an error answer was reused instead of asking again");
    run_loop();
    cr_assert_eq(f.calls, 2);
    answer(1, 0, "cam");
    cr_assert_eq(weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL), 0);
    weir_srt_auth_close(a);
}

Test(srt_auth, bad_answers_from_the_store)
{
    weir_srt_auth *a = new_table(8, 0);
    char longname[300];

    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL);
    weir_srt_auth_check(a, "k2", 0, 0, NULL, name, NULL);
    run_loop();
    answer(0, 0, longname);
    answer(1, 0, NULL);
    cr_assert_eq(weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL), AVERROR(EAGAIN),
                 "a malformed answer was kept");
    run_loop();
    answer(2, 0, "ok");
    cr_assert_eq(weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL), 0);
    weir_srt_auth_close(a);
}

Test(srt_auth, in_flight_checks_are_bounded)
{
    weir_srt_auth *a = new_table(2, 0);

    cr_assert_eq(weir_srt_auth_check(a, "a", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    cr_assert_eq(weir_srt_auth_check(a, "b", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    cr_assert_eq(weir_srt_auth_check(a, "c", 0, 0, NULL, name, NULL), AVERROR(EBUSY));
    cr_assert_eq(weir_srt_auth_inflight(a), 2);
    run_loop();
    cr_assert_eq(f.calls, 2, "a refused check reached the store");
    answer(0, AVERROR(EACCES), NULL);
    cr_assert_eq(weir_srt_auth_check(a, "c", 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
    cr_assert_eq(weir_srt_auth_inflight(a), 2);
    run_loop();
    answer(1, 0, "b");
    answer(2, 0, "c");
    cr_assert_eq(weir_srt_auth_inflight(a), 0);
    weir_srt_auth_close(a);
}

Test(srt_auth, the_table_forgets_the_oldest_answer_first)
{
    weir_srt_auth *a = new_table(8, 0);
    char key[16];

    for (int i = 0; i < 65; i++) {
        snprintf(key, sizeof key, "key%d", i);
        f.now += 1000;
        cr_assert_eq(weir_srt_auth_check(a, key, 0, 0, NULL, name, NULL), AVERROR(EAGAIN));
        run_loop();
        answer(i, 0, key);
    }
    cr_assert_eq(weir_srt_auth_check(a, "key64", 0, 0, NULL, name, NULL), 0);
    cr_assert_eq(weir_srt_auth_check(a, "key1", 0, 0, NULL, name, NULL), 0);
    cr_assert_eq(weir_srt_auth_check(a, "key0", 0, 0, NULL, name, NULL), AVERROR(EAGAIN),
                 "key0 was the oldest: it should have been forgotten");
    run_loop();
    answer(65, 0, "key0");
    weir_srt_auth_close(a);
}

Test(srt_auth, an_answer_already_there_needs_no_wait_and_no_budget)
{
    weir_srt_auth *a = new_table(8, 0);

    weir_srt_auth_check(a, "k", 0, 0, NULL, name, NULL);
    run_loop();
    answer(0, 0, "cam");
    /* budgeted with an empty budget: a known answer still comes back */
    cr_assert_eq(weir_srt_auth_check(a, "k", 1000000, 1, NULL, name, NULL), 0);
    weir_srt_auth_close(a);
}

Test(srt_auth, an_empty_budget_means_no_wait)
{
    weir_srt_auth *a = new_table(8, 0);
    int64_t t0 = weir_clock_mono_us();

    /* 10 s asked for, nothing answers, no budget: back at once */
    cr_assert_eq(weir_srt_auth_check(a, "k", 10000000, 1, NULL, name, NULL), AVERROR(EAGAIN));
    cr_assert_lt(weir_clock_mono_us() - t0, 2000000);
    run_loop();
    answer(0, 0, "cam");
    weir_srt_auth_close(a);
}

Test(srt_auth, a_stopped_waiter_returns)
{
    weir_srt_auth *a = new_table(8, 0);
    atomic_int stop = 1;

    cr_assert_eq(weir_srt_auth_check(a, "k", 10000000, 0, &stop, name, NULL), AVERROR_EXIT);
    run_loop();
    answer(0, 0, "cam");
    weir_srt_auth_close(a);
}

Test(srt_auth, keys_too_long_for_a_stream_id_are_refused_without_asking)
{
    weir_srt_auth *a = new_table(8, 0);
    char key[600];

    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    cr_assert_eq(weir_srt_auth_check(a, key, 0, 0, NULL, name, NULL), AVERROR(EACCES));
    cr_assert_eq(weir_srt_auth_check(a, NULL, 0, 0, NULL, name, NULL), AVERROR(EACCES));
    run_loop();
    cr_assert_eq(f.calls, 0);
    weir_srt_auth_close(a);
}

Test(srt_auth, close_with_checks_in_flight)
{
    weir_srt_auth *a = new_table(8, 0);

    weir_srt_auth_check(a, "posted", 0, 0, NULL, name, NULL);    /* posted, not yet run */
    weir_srt_auth_check(a, "asked", 0, 0, NULL, name, NULL);
    f.nrun = 0;
    f.fn[1](f.arg[1]);          /* "asked" reaches the store */
    f.nrun = 2;
    weir_srt_auth_close(a);     /* the requests keep the table alive */
    f.fn[0](f.arg[0]);          /* "posted" runs after close: not asked */
    cr_assert_eq(f.calls, 1);
    answer(0, 0, "cam");        /* the store answers late: no use after free (ASan) */
}

/* A caller waits with a real deadline; another thread answers once the
 * request reached the store.  Event-driven: no sleep decides the outcome. */
typedef struct waiter {
    weir_srt_auth *a;
    int r;
    char name[WEIR_BUS_NAME_MAX + 1];
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->r = weir_srt_auth_check(w->a, "k", 30000000, 0, NULL, w->name, NULL);
    return NULL;
}

static int inline_post(void *ctx, void (*fn)(void *), void *arg)
{
    (void)ctx;
    fn(arg);        /* the "loop" is the caller: the request reaches the store at once */
    return 0;
}

static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;

static int locked_auth(void *ctx, const char *key, weir_publish_auth_done done, void *arg)
{
    pthread_mutex_lock(&store_mu);
    int r = fake_auth(ctx, key, done, arg);
    pthread_mutex_unlock(&store_mu);
    return r;
}

Test(srt_auth, a_waiter_wakes_on_the_answer)
{
    weir_srt_auth *a;
    pthread_t t;
    waiter w = { 0 };

    memset(&f, 0, sizeof f);
    cr_assert_eq(weir_srt_auth_new(&(weir_srt_auth_opts){
        .post = inline_post, .auth = locked_auth, .auth_ctx = &f,
    }, &a), 0);
    w.a = a;
    cr_assert_eq(pthread_create(&t, NULL, wait_thread, &w), 0);
    for (;;) {
        pthread_mutex_lock(&store_mu);
        int asked = f.calls;
        pthread_mutex_unlock(&store_mu);
        if (asked)
            break;
        sched_yield();
    }
    answer(0, 0, "cam9");
    pthread_join(t, NULL);
    cr_assert_eq(w.r, 0);
    cr_assert_str_eq(w.name, "cam9");
    weir_srt_auth_close(a);
}

/* A key's own passphrase rides with its answer, is reused with it, and is
 * gone when the answer expires into a new check. */
Test(srt_auth, the_answer_carries_the_keys_passphrase)
{
    weir_srt_auth *a = new_table(8, 0);
    char pass[WEIR_SRT_PASSPHRASE_MAX + 1];
    char toolong[WEIR_SRT_PASSPHRASE_MAX + 2];

    weir_srt_auth_check(a, "enc", 0, 0, NULL, name, pass);
    weir_srt_auth_check(a, "plain", 0, 0, NULL, name, pass);
    run_loop();
    f.done[0](f.done_arg[0], 0, "cam1", "correct horse battery");
    f.done[1](f.done_arg[1], 0, "cam2", NULL);
    memset(pass, 'x', sizeof pass);
    cr_assert_eq(weir_srt_auth_check(a, "enc", 0, 0, NULL, name, pass), 0);
    cr_assert_str_eq(name, "cam1");
    cr_assert_str_eq(pass, "correct horse battery");
    cr_assert_eq(weir_srt_auth_check(a, "plain", 0, 0, NULL, name, pass), 0);
    cr_assert_str_eq(name, "cam2");
    cr_assert_str_eq(pass, "", "no passphrase of its own");

    /* Expired: the next check starts clean, and a passphrase removed from
     * the key meanwhile is not served from the old answer. */
    f.now += 5000000;
    cr_assert_eq(weir_srt_auth_check(a, "enc", 0, 0, NULL, name, pass), AVERROR(EAGAIN));
    run_loop();
    f.done[2](f.done_arg[2], 0, "cam1", NULL);
    cr_assert_eq(weir_srt_auth_check(a, "enc", 0, 0, NULL, name, pass), 0);
    cr_assert_str_eq(pass, "");

    /* Longer than SRT accepts: a store fault, not a silently cut secret. */
    memset(toolong, 'p', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    weir_srt_auth_check(a, "long", 0, 0, NULL, name, pass);
    run_loop();
    f.done[3](f.done_arg[3], 0, "cam3", toolong);
    cr_assert_eq(weir_srt_auth_check(a, "long", 0, 0, NULL, name, pass), AVERROR(EAGAIN),
                 "a store fault is asked again, not kept");
    weir_srt_auth_close(a);
}
