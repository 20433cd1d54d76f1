/*
 * app/vod.c — what an uploaded file becomes (weir_upload_process_fn):
 * wiring between the transcoder, the packager and the thumbnails, which
 * know nothing of each other.
 *
 *   uploads.transcode (default):
 *     transcoder file job (uploads.profile's ladder, rungs never above the
 *     source) ──sink.track/packet──> weir_packager_vod (CMAF, HLS master
 *     with every rung, static MPD)
 *                                 ──sink.frame───> weir_thumbs (the job's
 *     own decoded frames: poster, storyboard)
 *   uploads.transcode false (a remux):
 *     weir_packager_package_file, then weir_thumbs_scan_file (keyframes)
 *
 * The processing thread waits here for the file job to end.  At shutdown
 * weir_vod_stop cancels the jobs still running and refuses new ones with
 * AVERROR_EXIT, which hands the upload back to the queue for the next start.
 */
#include "app/vod.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEP_CLAIM_S 1              /* progress re-reported while a file job waits */

typedef struct vod_run {
    weir_vod *vod;
    weir_packager_vod *pkg;
    weir_thumbs *thumbs;
    void (*progress)(void *parg, int percent);
    void *parg;
    uint64_t id;                    /* the file job */
    int done, result;               /* under vod->lock */
    pthread_mutex_t plock;          /* progress calls, one at a time; guards percent */
    int percent;
    struct vod_run *next;
} vod_run;

int weir_vod_init(weir_vod *v, const weir_vod_opts *opts)
{
    memset(v, 0, sizeof *v);
    v->o = *opts;
    if (pthread_mutex_init(&v->lock, NULL) != 0)
        return AVERROR(ENOMEM);
    if (pthread_cond_init(&v->cond, NULL) != 0) {
        pthread_mutex_destroy(&v->lock);
        return AVERROR(ENOMEM);
    }
    v->ready = 1;
    return 0;
}

void weir_vod_stop(weir_vod *v)
{
    if (!v->ready)
        return;
    pthread_mutex_lock(&v->lock);
    v->stopping = 1;
    for (vod_run *r = v->runs; r; r = r->next)
        if (!r->done)
            weir_transcoder_cancel(v->o.transcoder, r->id);     /* done comes later */
    pthread_mutex_unlock(&v->lock);
}

void weir_vod_destroy(weir_vod *v)
{
    if (!v->ready)
        return;
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->lock);
    v->ready = 0;
}

/* ---- the file job's sink ---------------------------------------------------------- */

static int on_track(void *arg, int index, const AVCodecParameters *par, AVRational tb)
{
    vod_run *r = arg;
    return weir_packager_vod_track(r->pkg, index, par, tb);
}

static int on_packet(void *arg, const AVPacket *pkt)
{
    vod_run *r = arg;
    return weir_packager_vod_packet(r->pkg, pkt);
}

static void on_frame(void *arg, const AVFrame *f, AVRational tb)
{
    vod_run *r = arg;
    if (r->thumbs)
        weir_thumbs_frame(r->thumbs, f, tb);
}

/* 100 only once the playlists are written, after the job.  The job's
 * threads and the waiting thread (keep_claim) both report: one at a time. */
static void on_progress(void *arg, int percent)
{
    vod_run *r = arg;
    pthread_mutex_lock(&r->plock);
    r->percent = percent < 99 ? percent : 99;
    r->progress(r->parg, r->percent);
    pthread_mutex_unlock(&r->plock);
}

/* The uploads module renews its claim on the job when progress is
 * reported; a file job waiting for the pool (live jobs first) reports
 * nothing for as long as it waits, so the waiting thread reports the same
 * percent again, and the claim does not lapse to another node meanwhile. */
static void keep_claim(vod_run *r)
{
    pthread_mutex_lock(&r->plock);
    r->progress(r->parg, r->percent);
    pthread_mutex_unlock(&r->plock);
}

static void on_done(void *arg, int result)
{
    vod_run *r = arg;
    pthread_mutex_lock(&r->vod->lock);
    r->done = 1;
    r->result = result;
    pthread_cond_broadcast(&r->vod->cond);
    pthread_mutex_unlock(&r->vod->lock);
}

/* Starts the file job and waits for it.  AVERROR_EXIT when stopping. */
static int transcode(weir_vod *v, vod_run *r, const char *input, const char *name)
{
    weir_transcode_file_opts fo = {
        .input = input, .name = name, .profile = v->o.uploads->profile,
        .sink = { .track = on_track, .packet = on_packet, .frame = on_frame,
                  .progress = on_progress, .done = on_done, .arg = r },
    };
    int ret;

    pthread_mutex_lock(&v->lock);
    if (v->stopping) {
        pthread_mutex_unlock(&v->lock);
        return AVERROR_EXIT;
    }
    if ((ret = weir_transcoder_file(v->o.transcoder, &fo, &r->id)) < 0) {
        pthread_mutex_unlock(&v->lock);
        return ret;
    }
    r->next = v->runs;
    v->runs = r;
    while (!r->done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += KEEP_CLAIM_S;
        if (pthread_cond_timedwait(&v->cond, &v->lock, &until) == ETIMEDOUT && !r->done) {
            pthread_mutex_unlock(&v->lock);
            keep_claim(r);
            pthread_mutex_lock(&v->lock);
        }
    }
    for (vod_run **link = &v->runs; *link; link = &(*link)->next)
        if (*link == r) {
            *link = r->next;
            break;
        }
    ret = r->result;
    if (ret == AVERROR_EXIT && !v->stopping)
        ret = AVERROR(ECANCELED);   /* cancelled through the API: a failure, not a retry */
    pthread_mutex_unlock(&v->lock);
    return ret;
}

static void make_thumbs(vod_run *r, const char *input, const char *asset_dir,
                        int64_t duration_ms)
{
    int ret;
    if (!r->thumbs) {
        if (duration_ms <= 0 ||
            weir_thumbs_new(&(weir_thumbs_opts){ .dir = asset_dir, .duration_ms = duration_ms },
                            &r->thumbs) < 0)
            return;
        if ((ret = weir_thumbs_scan_file(r->thumbs, input)) < 0) {
            weir_log_warn("vod", "no thumbnails: the file's keyframes do not decode",
                          WL_STR("dir", asset_dir), WL_ERR(ret));
            return;
        }
    }
    /* Without a poster the asset still plays: logged, not failed. */
    weir_thumbs_finish(r->thumbs);
}

int weir_vod_process(void *arg, const char *input, const char *asset_dir, int64_t probed_ms,
                     int64_t *duration_ms, void (*progress)(void *parg, int percent), void *parg)
{
    weir_vod *v = arg;
    vod_run r = { .vod = v, .progress = progress, .parg = parg };
    const char *slash = strrchr(asset_dir, '/');
    int ret;

    if (pthread_mutex_init(&r.plock, NULL) != 0)
        return AVERROR(ENOMEM);

    if (!v->o.uploads->transcode || !v->o.transcoder) {
        ret = weir_packager_package_file(input, asset_dir, v->o.packager, duration_ms,
                                         progress, parg);
        if (ret >= 0)
            make_thumbs(&r, input, asset_dir, *duration_ms);
        goto out;
    }
    if ((ret = weir_packager_vod_new(asset_dir, v->o.packager, &r.pkg)) < 0)
        goto out;
    /* The file's length decides the storyboard's layout before the first
     * frame; without it (or on ENOMEM) the thumbnails come from a scan
     * afterwards. */
    if (probed_ms > 0)
        weir_thumbs_new(&(weir_thumbs_opts){ .dir = asset_dir, .duration_ms = probed_ms },
                        &r.thumbs);
    ret = transcode(v, &r, input, slash ? slash + 1 : asset_dir);
    if (ret >= 0)
        ret = weir_packager_vod_end(r.pkg, duration_ms);
    if (ret >= 0) {
        make_thumbs(&r, input, asset_dir, *duration_ms);
        progress(parg, 100);
    }
out:
    weir_thumbs_free(r.thumbs);
    weir_packager_vod_free(r.pkg);
    pthread_mutex_destroy(&r.plock);
    return ret;
}
