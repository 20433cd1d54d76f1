/*
 * tests/unit/packager/clip.h — a short media file made by the ffmpeg CLI and
 * opened with libavformat, for the packager's unit tests (test_pres.c,
 * test_ts.c).  Header-only: each test file includes it once.
 */
#ifndef WEIR_TEST_PACKAGER_CLIP_H
#define WEIR_TEST_PACKAGER_CLIP_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libavformat/avformat.h>

typedef struct clip {
    AVFormatContext *fmt;
    char path[64];
} clip;

/* Makes an MP4 with the ffmpeg CLI (inputs, then encoding options) and
 * opens it. */
static void clip_make(clip *c, const char *inputs, const char *args)
{
    char cmd[1024];
    snprintf(c->path, sizeof c->path, "/tmp/weir-clip-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(c->path);
    cr_assert(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -hide_banner -loglevel error -y %s %s -f mp4 %s", inputs, args, c->path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    c->fmt = NULL;
    cr_assert_eq(avformat_open_input(&c->fmt, c->path, NULL, NULL), 0);
    cr_assert_geq(avformat_find_stream_info(c->fmt, NULL), 0);
}

static void clip_free(clip *c)
{
    avformat_close_input(&c->fmt);
    unlink(c->path);
}

#endif
