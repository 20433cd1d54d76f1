/*
 * app/vod.h — private to app/: the processing function uploads get
 * (weir_control_opts.process).  app/vod.c has the picture.
 */
#ifndef WEIR_APP_VOD_H
#define WEIR_APP_VOD_H

#include <pthread.h>

#include "app/app.h"

typedef struct weir_vod_opts {
    weir_transcoder *transcoder;                /* NULL: uploads are remuxed */
    const weir_packager_settings *packager;     /* borrowed, outlive the weir_vod */
    const weir_uploads_settings *uploads;
} weir_vod_opts;

typedef struct weir_vod {
    weir_vod_opts o;
    pthread_mutex_t lock;           /* guards stopping and runs; cond signals a run's end */
    pthread_cond_t cond;
    int stopping;
    struct vod_run *runs;           /* file jobs being waited for */
    int ready;                      /* initialised */
} weir_vod;

/* 0 or AVERROR(ENOMEM). */
int weir_vod_init(weir_vod *v, const weir_vod_opts *opts);

/* weir_upload_process_fn; arg: the weir_vod. */
int weir_vod_process(void *arg, const char *input, const char *asset_dir, int64_t probed_ms,
                     int64_t *duration_ms, void (*progress)(void *parg, int percent), void *parg);

/* Shutdown: cancels the running file jobs (their uploads return to the
 * queue) and refuses new ones.  Before the processing threads are joined
 * (weir_control_stop).  A weir_vod never initialised is fine. */
void weir_vod_stop(weir_vod *v);

/* After the processing threads are joined.  Idempotent. */
void weir_vod_destroy(weir_vod *v);

#endif
