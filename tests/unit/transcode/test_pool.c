/*
 * Unit tests for transcode/pool: the cost of a plan, degrading a plan to a
 * budget, and admission — degrade and queue for live jobs, file jobs that
 * wait for and yield to live ones, cancellation.  Plans come from the real
 * ladder decisions; no media is touched.
 */
#include <criterion/criterion.h>

#include "transcode/pool.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>

#define RATE WEIR_POOL_WORKER_RATE

static const weir_ladder_source src720 = {
    .has_video = 1, .vcodec = AV_CODEC_ID_H264, .width = 1280, .height = 720,
    .fps = { 30, 1 }, .has_audio = 1, .acodec = AV_CODEC_ID_AAC, .sample_rate = 48000,
    .channels = 2,
};

static void plan_of(const char *ladder, const weir_ladder_source *src, weir_ladder_plan *plan)
{
    weir_ladder_profile profile;
    char why[256];
    cr_assert_eq(weir_ladder_parse(ladder, &profile, why, sizeof why), 0, "%s", why);
    cr_assert_eq(weir_ladder_decide(src, &profile, plan), 0);
}

#define LADDER "source; 720p:1280x720@2800k/30; 480p:854x480@1400k/30; " \
               "360p:640x360@800k/30; audio:aac@128k/48000/2"

static const char *names_of(const weir_ladder_plan *plan, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < plan->nvideo; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? "," : "",
                 plan->video[i].name);
    return buf;
}

/* ---- cost -------------------------------------------------------------------------- */

Test(pool_cost, follows_pixels_preset_and_decode)
{
    weir_ladder_plan plan;
    plan_of("720p:1280x720@2800k/30", &src720, &plan);
    double px = 1280.0 * 720 * 30;
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE), px * 1.18 / RATE, 1e-9,
                       "one 720p30 rendition of a 720p30 source: encode + decode");

    plan_of("720p:1280x720@2800k/30,preset=ultrafast", &src720, &plan);
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE), px * 0.43 / RATE, 1e-9);

    /* Half the frame rate, half the encoding; the decode stays. */
    plan_of("720p:1280x720@2800k/15", &src720, &plan);
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE), px * 0.68 / RATE, 1e-9);

    /* A scaled rendition also pays for scaling the source. */
    plan_of("360p:640x360@800k/30", &src720, &plan);
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE),
                       (px / 4 + px * (0.18 + 0.04)) / RATE, 1e-9);

    /* Passing the source through costs nothing; encoding audio a little. */
    plan_of("source", &src720, &plan);
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE), 0.0, 1e-12);
    plan_of("source; audio:aac@64k/44100/1", &src720, &plan);
    cr_assert_eq(plan.audio_mode, WEIR_LADDER_AUDIO_ENCODE);
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE), 0.01, 1e-12);

    /* The default ladder on a 720p30 source: about three quarters of a core. */
    plan_of(LADDER, &src720, &plan);
    double c = weir_pool_plan_cost(&src720, &plan, RATE);
    cr_assert(c > 0.7 && c < 0.85, "cost %f", c);
    /* The unit scales with the calibration. */
    cr_assert_float_eq(weir_pool_plan_cost(&src720, &plan, RATE / 2), 2 * c, 1e-9);
}

Test(pool_cost, unknown_frame_rates_count_as_30)
{
    weir_ladder_source src = src720;
    weir_ladder_plan plan;
    src.fps = (AVRational){ 0, 1 };
    plan_of("720p:1280x720@2800k", &src, &plan);
    cr_assert_float_eq(weir_pool_plan_cost(&src, &plan, RATE), 1280.0 * 720 * 30 * 1.18 / RATE,
                       1e-9);
}

/* ---- fit ----------------------------------------------------------------------------- */

Test(pool_fit, drops_top_encoded_renditions_and_keeps_the_source)
{
    weir_ladder_plan plan;
    char names[128];
    plan_of(LADDER, &src720, &plan);
    int before = plan.ndropped;
    cr_assert_eq(weir_pool_fit(&src720, &plan, 10.0, RATE), 0);
    cr_assert_str_eq(names_of(&plan, names, sizeof names), "source,720p,480p,360p");

    /* 480p + 360p + decode fit in 0.45, 720p does not. */
    cr_assert_eq(weir_pool_fit(&src720, &plan, 0.45, RATE), 1);
    cr_assert_str_eq(names_of(&plan, names, sizeof names), "source,480p,360p");
    cr_assert_eq(plan.ndropped, before + 1);
    cr_assert_str_eq(plan.dropped[before].name, "720p");
    cr_assert_str_eq(plan.dropped[before].reason, "over capacity");
    cr_assert_leq(weir_pool_plan_cost(&src720, &plan, RATE), 0.45);

    cr_assert_eq(weir_pool_fit(&src720, &plan, 0.0, RATE), 2);
    cr_assert_str_eq(names_of(&plan, names, sizeof names), "source");
}

Test(pool_fit, without_a_source_rung_the_lowest_stays)
{
    weir_ladder_plan plan;
    char names[128];
    plan_of("720p:1280x720@2800k/30; 480p:854x480@1400k/30; 360p:640x360@800k/30", &src720,
            &plan);
    cr_assert_eq(weir_pool_fit(&src720, &plan, 0.0, RATE), 2);
    cr_assert_str_eq(names_of(&plan, names, sizeof names), "360p");
}

/* ---- admission ------------------------------------------------------------------------ */

static weir_pool *pool;

static void make_pool(double capacity, weir_pool_overload overload)
{
    cr_assert_eq(weir_pool_new(capacity, RATE, overload, &pool), 0);
}

static void free_pool(void)
{
    weir_pool_free(pool);
    pool = NULL;
}

TestSuite(pool_admit, .fini = free_pool, .timeout = 30);

Test(pool_admit, degrade_gives_a_late_stream_what_is_left)
{
    weir_ladder_plan a, b, c;
    weir_pool_ticket *ta, *tb, *tc;
    char names[128];
    weir_pool_stats st;
    make_pool(1.2, WEIR_POOL_DEGRADE);
    plan_of(LADDER, &src720, &a);
    plan_of(LADDER, &src720, &b);
    plan_of(LADDER, &src720, &c);
    double full = weir_pool_plan_cost(&src720, &a, RATE);

    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    cr_assert_str_eq(names_of(&a, names, sizeof names), "source,720p,480p,360p");

    /* 0.4 worker is left: not enough for 720p. */
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tb), 0);
    cr_assert_eq(weir_pool_admit(tb, &src720, &b), 1);
    cr_assert_str_eq(names_of(&b, names, sizeof names), "source,480p,360p");
    weir_pool_stats_get(pool, &st);
    cr_assert_eq(st.degraded, 1);
    cr_assert_leq(st.used, 1.2 + 1e-9);
    cr_assert_float_eq(st.used, full + weir_pool_plan_cost(&src720, &b, RATE), 1e-9);

    /* Nothing is left: the source alone. */
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tc), 0);
    cr_assert_eq(weir_pool_admit(tc, &src720, &c), 1);
    cr_assert_str_eq(names_of(&c, names, sizeof names), "source");
    weir_pool_stats_get(pool, &st);
    cr_assert_eq(st.running, 3);
    cr_assert_eq(st.degraded, 2);

    weir_pool_leave(ta);
    weir_pool_leave(tb);
    weir_pool_leave(tc);
    weir_pool_stats_get(pool, &st);
    cr_assert_float_eq(st.used, 0.0, 1e-12);
}

Test(pool_admit, queue_makes_a_late_stream_wait_its_turn)
{
    weir_ladder_plan a, b, c;
    weir_pool_ticket *ta, *tb, *tc;
    char names[128];
    weir_pool_stats st;
    make_pool(1.3, WEIR_POOL_QUEUE);
    plan_of(LADDER, &src720, &a);                               /* 0.77 */
    plan_of(LADDER, &src720, &b);
    plan_of("source; 720p:1280x720@2800k/30", &src720, &c);     /* 0.47 */

    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tb), 0);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tc), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    cr_assert_eq(weir_pool_admit(tb, &src720, &b), 0);
    cr_assert_eq(weir_pool_ticket_state(tb), WEIR_POOL_WAITING);
    cr_assert_str_eq(names_of(&b, names, sizeof names), "source,720p,480p,360p",
                     "queue does not degrade what fits the pool");
    /* c would fit beside a, but b came first. */
    cr_assert_eq(weir_pool_admit(tc, &src720, &c), 0);
    cr_assert_eq(weir_pool_poll(tb), 0);
    weir_pool_stats_get(pool, &st);
    cr_assert_eq(st.waiting_live, 2);
    cr_assert_eq(st.queued, 2);

    weir_pool_leave(ta);
    cr_assert_eq(weir_pool_poll(tb), 1);
    cr_assert_eq(weir_pool_poll(tc), 1);
    /* b re-probes and asks again: its reservation covers the same plan. */
    plan_of(LADDER, &src720, &b);
    cr_assert_eq(weir_pool_admit(tb, &src720, &b), 1);
    cr_assert_eq(b.nvideo, 4);
    weir_pool_stats_get(pool, &st);
    cr_assert_eq(st.running, 2);
    cr_assert_eq(st.waiting_live, 0);
    weir_pool_leave(tb);
    weir_pool_leave(tc);
}

Test(pool_admit, queue_fits_a_plan_bigger_than_the_pool_to_the_pool)
{
    weir_ladder_plan a;
    weir_pool_ticket *ta;
    char names[128];
    make_pool(0.5, WEIR_POOL_QUEUE);
    plan_of(LADDER, &src720, &a);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    cr_assert_str_eq(names_of(&a, names, sizeof names), "source,480p,360p");
    weir_pool_leave(ta);
}

Test(pool_admit, a_job_bigger_than_the_pool_runs_alone)
{
    weir_ladder_plan a, b;
    weir_pool_ticket *ta, *tb;
    make_pool(0.1, WEIR_POOL_QUEUE);
    plan_of("720p:1280x720@2800k/30", &src720, &a);
    plan_of("720p:1280x720@2800k/30", &src720, &b);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tb), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    cr_assert_eq(a.nvideo, 1);
    cr_assert_eq(weir_pool_admit(tb, &src720, &b), 0);
    weir_pool_leave(ta);
    cr_assert_eq(weir_pool_poll(tb), 1);
    weir_pool_leave(tb);
}

/* A file job's thread: admit, then checkpoints until told to stop. */
typedef struct file_job {
    weir_pool_ticket *t;
    weir_ladder_plan plan;
    int admit_ret, checkpoint_ret;
    int stop;
    int passes;                         /* checkpoints passed */
    pthread_mutex_t lock;
} file_job;

static void *file_main(void *arg)
{
    file_job *j = arg;
    j->admit_ret = weir_pool_admit(j->t, &src720, &j->plan);
    if (j->admit_ret < 0)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int stop = j->stop;
        pthread_mutex_unlock(&j->lock);
        if (stop)
            break;
        if ((j->checkpoint_ret = weir_pool_checkpoint(j->t)) < 0)
            break;
        pthread_mutex_lock(&j->lock);
        j->passes++;
        pthread_mutex_unlock(&j->lock);
        usleep(1000);
    }
    return NULL;
}

static int passes(file_job *j)
{
    pthread_mutex_lock(&j->lock);
    int n = j->passes;
    pthread_mutex_unlock(&j->lock);
    return n;
}

static void wait_state(weir_pool_ticket *t, weir_pool_state s)
{
    for (int i = 0; i < 5000 && weir_pool_ticket_state(t) != s; i++)
        usleep(1000);
    cr_assert_eq(weir_pool_ticket_state(t), s, "ticket is %s, expected %s",
                 weir_pool_state_name(weir_pool_ticket_state(t)), weir_pool_state_name(s));
}

static void start_file(file_job *j, const char *ladder, pthread_t *th)
{
    memset(j, 0, sizeof *j);
    pthread_mutex_init(&j->lock, NULL);
    plan_of(ladder, &src720, &j->plan);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_FILE, &j->t), 0);
    cr_assert_eq(pthread_create(th, NULL, file_main, j), 0);
}

static void stop_file(file_job *j, pthread_t th)
{
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_mutex_unlock(&j->lock);
    weir_pool_cancel(j->t);
    pthread_join(th, NULL);
    weir_pool_leave(j->t);
    pthread_mutex_destroy(&j->lock);
}

Test(pool_admit, a_file_job_yields_to_a_live_job_and_resumes)
{
    file_job f;
    pthread_t th;
    weir_ladder_plan live;
    weir_pool_ticket *tl;
    char names[128];
    weir_pool_stats st;
    make_pool(1.0, WEIR_POOL_DEGRADE);
    start_file(&f, LADDER, &th);
    wait_state(f.t, WEIR_POOL_ADMITTED);
    cr_assert_eq(f.plan.nvideo, 4, "file jobs are never degraded");
    while (passes(&f) < 3)
        usleep(1000);

    /* The live job takes the file job's capacity, whole ladder and all. */
    plan_of(LADDER, &src720, &live);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tl), 0);
    cr_assert_eq(weir_pool_admit(tl, &src720, &live), 1);
    cr_assert_str_eq(names_of(&live, names, sizeof names), "source,720p,480p,360p");
    cr_assert_eq(weir_pool_ticket_state(f.t), WEIR_POOL_PREEMPTED);
    int n = passes(&f);
    usleep(50000);
    cr_assert_leq(passes(&f), n + 1, "a preempted file job stops at its next checkpoint");
    weir_pool_stats_get(pool, &st);
    cr_assert_eq(st.preempted, 1);
    cr_assert_eq(st.waiting_file, 1);

    /* The stream ends: the file job goes on. */
    weir_pool_leave(tl);
    wait_state(f.t, WEIR_POOL_ADMITTED);
    n = passes(&f);
    while (passes(&f) < n + 3)
        usleep(1000);
    stop_file(&f, th);
    cr_assert_eq(f.admit_ret, 1);
}

Test(pool_admit, file_jobs_wait_for_live_ones_and_each_other)
{
    file_job f1, f2;
    pthread_t th1, th2;
    weir_ladder_plan a, b;
    weir_pool_ticket *ta, *tb;
    make_pool(1.0, WEIR_POOL_QUEUE);
    plan_of(LADDER, &src720, &a);
    plan_of(LADDER, &src720, &b);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &tb), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    cr_assert_eq(weir_pool_admit(tb, &src720, &b), 0);

    /* A small file job would fit beside a, but a live job waits. */
    start_file(&f1, "360p:640x360@800k/30", &th1);
    wait_state(f1.t, WEIR_POOL_WAITING);
    start_file(&f2, "360p:640x360@800k/30", &th2);
    wait_state(f2.t, WEIR_POOL_WAITING);

    weir_pool_leave(ta);
    cr_assert_eq(weir_pool_poll(tb), 1);
    /* No live job waits now: f1 (0.19) fits beside b (0.77), f2 does not... */
    wait_state(f1.t, WEIR_POOL_ADMITTED);
    wait_state(f2.t, WEIR_POOL_WAITING);
    weir_pool_leave(tb);
    /* ...until b is gone. */
    wait_state(f2.t, WEIR_POOL_ADMITTED);
    stop_file(&f1, th1);
    stop_file(&f2, th2);
}

Test(pool_admit, cancel_wakes_a_waiting_file_job)
{
    file_job f;
    pthread_t th;
    weir_ladder_plan a;
    weir_pool_ticket *ta;
    make_pool(1.0, WEIR_POOL_QUEUE);
    plan_of("720p:1280x720@2800k/30; 480p:854x480@1400k/30", &src720, &a);
    cr_assert_eq(weir_pool_join(pool, WEIR_POOL_LIVE, &ta), 0);
    cr_assert_eq(weir_pool_admit(ta, &src720, &a), 1);
    start_file(&f, LADDER, &th);
    wait_state(f.t, WEIR_POOL_WAITING);
    weir_pool_cancel(f.t);
    pthread_join(th, NULL);
    cr_assert_eq(f.admit_ret, AVERROR_EXIT);
    weir_pool_leave(f.t);
    pthread_mutex_destroy(&f.lock);
    weir_pool_leave(ta);
}
