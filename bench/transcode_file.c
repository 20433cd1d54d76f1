/*
 * bench/transcode_file.c — runs weir's transcode pipeline over a media file
 * at full speed and prints what it took:
 *
 *   transcode_file IN LADDER [SEGMENT_MS]
 *   -> transcode_file: frames=N wall=Xs cpu=Ys fps=F speed=S renditions=name:WxH:frames,...
 *
 * The file is demuxed up front and published on a bus as a live source
 * would be (1/1000 time base, ISO form as the MP4/FLV demuxers give it); a
 * transcoder job reads it, and this program reads "src/abr" to its end.
 * Timing starts at the first packet written and ends at the end of
 * src/abr.  Used by bench/transcode.py, and built with -fsanitize=thread to
 * check the pipeline's threads.
 */
#include "transcode/transcode.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libavformat/avformat.h>
#include <libavutil/time.h>

#define MS ((AVRational){ 1, 1000 })

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static weir_sub *out_sub;
static int ready;

static void on_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static void watcher(void *arg, weir_bus_event ev, weir_stream *s)
{
    (void)arg;
    if (ev != WEIR_BUS_PUBLISHED || strcmp(weir_stream_name(s), "src/abr") != 0)
        return;
    weir_sub_opts opts = { .queue_len = 1 << 20, .notify = on_notify };
    weir_sub *sub;
    if (weir_stream_subscribe(s, &opts, &sub) < 0)
        abort();
    pthread_mutex_lock(&lock);          /* not around subscribe: notify takes it */
    out_sub = sub;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: transcode_file IN LADDER [SEGMENT_MS]\n");
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    weir_log_set_level(WEIR_LOG_WARN);

    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, argv[1], NULL, NULL) < 0 ||
        avformat_find_stream_info(fmt, NULL) < 0) {
        fprintf(stderr, "transcode_file: cannot read %s\n", argv[1]);
        return 1;
    }
    /* Demux everything first, so that reading the file is not timed. */
    size_t n = 0, cap = 1024;
    AVPacket **pkts = malloc(cap * sizeof *pkts);
    AVPacket *pkt = av_packet_alloc();
    int video = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    long frames = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (fmt->streams[pkt->stream_index]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO &&
            fmt->streams[pkt->stream_index]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) {
            av_packet_unref(pkt);
            continue;
        }
        av_packet_rescale_ts(pkt, fmt->streams[pkt->stream_index]->time_base, MS);
        frames += pkt->stream_index == video;
        if (n == cap)
            pkts = realloc(pkts, (cap *= 2) * sizeof *pkts);
        pkts[n++] = av_packet_clone(pkt);
        av_packet_unref(pkt);
    }

    weir_bus *bus = weir_bus_new();
    weir_transcoder *t;
    weir_transcode_settings s = { .enabled = 1, .ladder = argv[2] };
    weir_transcoder_opts opts = { .bus = bus, .settings = &s,
                                  .segment_duration_ms = argc > 3 ? atoi(argv[3]) : 2000,
                                  .queue_len = (int)n + 16 };
    weir_bus_watch(bus, watcher, NULL);
    if (weir_transcoder_new(&opts, &t) < 0)
        return 1;

    weir_stream *src;
    int map[16];
    weir_bus_publish(bus, "src", NULL, &src);
    weir_publisher_info info = { .protocol = "file" };
    for (unsigned i = 0; i < fmt->nb_streams && i < 16; i++) {
        AVStream *st = fmt->streams[i];
        map[i] = -1;
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ||
            st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            map[i] = weir_stream_add_track(src, st->codecpar, MS);
        if ((int)i == video)
            info.framerate = st->avg_frame_rate;
    }
    weir_stream_set_publisher(src, &info);

    double cpu0 = cpu_seconds();
    int64_t t0 = av_gettime_relative();
    for (size_t i = 0; i < n; i++) {
        pkts[i]->stream_index = map[pkts[i]->stream_index];
        weir_stream_write(src, pkts[i]);
        av_packet_free(&pkts[i]);
    }
    weir_stream_end(src);

    long out_frames[8] = { 0 };
    int r;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!out_sub)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        r = weir_sub_read(out_sub, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r == AVERROR(EAGAIN)) {
            pthread_mutex_lock(&lock);
            while (!ready)
                pthread_cond_wait(&cond, &lock);
            ready = 0;
            pthread_mutex_unlock(&lock);
            continue;
        }
        if (pkt->stream_index < 8)
            out_frames[pkt->stream_index]++;
        av_packet_unref(pkt);
    }
    double wall = (double)(av_gettime_relative() - t0) / 1e6, cpu = cpu_seconds() - cpu0;

    json_t *jobs = weir_transcoder_jobs_json(t);
    json_t *job = json_array_get(jobs, json_array_size(jobs) - 1);
    json_t *ladder = json_object_get(job, "ladder");
    double media = json_real_value(json_object_get(job, "media_seconds"));
    printf("transcode_file: frames=%ld wall=%.3fs cpu=%.3fs fps=%.1f speed=%.2fx renditions=",
           frames, wall, cpu, (double)frames / wall, media / wall);
    json_t *rends = json_object_get(ladder, "renditions");
    for (size_t i = 0; i < json_array_size(rends); i++) {
        json_t *v = json_array_get(rends, i);
        printf("%s%s:%lldx%lld:%ld", i ? "," : "",
               json_string_value(json_object_get(v, "name")),
               (long long)json_integer_value(json_object_get(v, "width")),
               (long long)json_integer_value(json_object_get(v, "height")),
               out_frames[i]);
    }
    printf(" state=%s\n", json_string_value(json_object_get(job, "state")));
    json_decref(jobs);
    weir_sub_close(out_sub);
    weir_transcoder_free(t);
    weir_bus_unwatch(bus, watcher, NULL);
    weir_bus_free(bus);
    av_packet_free(&pkt);
    free(pkts);
    avformat_close_input(&fmt);
    return 0;
}
