/*
 * transcode/ladder.c — profile parsing and the ladder decisions; the
 * grammar and the rules are in ladder.h.  Nothing here touches media: the
 * functions are pure, apart from asking FFmpeg which encoders exist.
 */
#include "transcode/ladder.h"

#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/avstring.h>
#include <libavutil/rational.h>

#define ITEM_MAX 256                    /* longest item we quote in errors */

/* ---- per-codec facts ------------------------------------------------------ */

typedef struct codec_info {
    const char *name;                   /* as written in a profile */
    enum AVCodecID id;
    const char *encoder;                /* FFmpeg encoder name */
    const char *default_preset;
    const char *const *presets;         /* NULL: a number 0..13 */
    const char *const *tunes;           /* NULL: no tune */
    const char *const *profiles;
    const int *levels;                  /* 0-terminated; NULL: no level */
} codec_info;

static const char *const x26x_presets[] = { "ultrafast", "superfast", "veryfast", "faster",
                                            "fast", "medium", "slow", "slower", "veryslow",
                                            "placebo", NULL };
static const char *const x264_tunes[] = { "film", "animation", "grain", "stillimage", "psnr",
                                          "ssim", "fastdecode", "zerolatency", NULL };
static const char *const x265_tunes[] = { "psnr", "ssim", "grain", "zerolatency",
                                          "fastdecode", "animation", NULL };
static const char *const h264_profiles[] = { "baseline", "main", "high", NULL };
static const char *const main_profile[] = { "main", NULL };
static const int h264_levels[] = { 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42,
                                   50, 51, 52, 60, 61, 62, 0 };
static const int hevc_levels[] = { 10, 20, 21, 30, 31, 40, 41, 50, 51, 52, 60, 61, 62, 0 };

static const codec_info codecs[] = {
    { "h264", AV_CODEC_ID_H264, "libx264", "veryfast", x26x_presets, x264_tunes,
      h264_profiles, h264_levels },
    { "hevc", AV_CODEC_ID_HEVC, "libx265", "veryfast", x26x_presets, x265_tunes,
      main_profile, hevc_levels },
    { "av1", AV_CODEC_ID_AV1, "libsvtav1", "10", NULL, NULL, main_profile, NULL },
};

static const codec_info *codec_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

static const codec_info *codec_by_id(enum AVCodecID id)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i].id == id)
            return &codecs[i];
    return NULL;
}

static int in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* ---- parsing -------------------------------------------------------------- */

typedef struct parser {
    char *why;
    size_t whycap;
    int index;                          /* 1-based item number, for errors */
    const char *item;                   /* the item being parsed, trimmed */
} parser;

static int fail(parser *p, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (p->item)
        snprintf(p->why, p->whycap, "item %d '%.80s': %s", p->index, p->item, reason);
    else
        snprintf(p->why, p->whycap, "%s", reason);
    return AVERROR(EINVAL);
}

/* Trims blanks at both ends of s in place; returns the new start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* A whole-string number; -1 when text is not one. */
static int parse_double(const char *text, double *out)
{
    char *end;
    if (!*text || isspace((unsigned char)*text))
        return -1;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* "800k", "2.8M", "96000": bits per second within [lo, hi]. */
static int parse_rate(parser *p, const char *what, const char *text, double lo, double hi,
                      int64_t *out)
{
    char num[64];
    size_t n = strlen(text);
    double scale = 1, v;

    if (n == 0 || n >= sizeof num)
        return fail(p, "bad %s '%s' (expected e.g. 800k, 2.8M)", what, text);
    memcpy(num, text, n + 1);
    if (num[n - 1] == 'k' || num[n - 1] == 'K')
        scale = 1e3;
    else if (num[n - 1] == 'M')
        scale = 1e6;
    if (scale != 1)
        num[n - 1] = '\0';
    if (parse_double(num, &v) < 0)
        return fail(p, "bad %s '%s' (expected e.g. 800k, 2.8M)", what, text);
    v *= scale;
    if (v < lo || v > hi)
        return fail(p, "%s '%s' out of range (%.0fk to %.0fk)", what, text, lo / 1e3, hi / 1e3);
    *out = (int64_t)llround(v);
    return 0;
}

static int parse_int_range(parser *p, const char *what, const char *text, int lo, int hi,
                           int *out)
{
    double v;
    if (parse_double(text, &v) < 0 || v != floor(v))
        return fail(p, "bad %s '%s' (expected a whole number)", what, text);
    if (v < lo || v > hi)
        return fail(p, "%s '%s' out of range (%d to %d)", what, text, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_fps(parser *p, const char *text, AVRational *out)
{
    double v;
    if (parse_double(text, &v) < 0)
        return fail(p, "bad fps '%s' (expected e.g. 30 or 29.97)", text);
    if (v < 1 || v > 240)
        return fail(p, "fps '%s' out of range (1 to 240)", text);
    /* 29.97 means 30000/1001, not 2997/100. */
    double ntsc = v * 1.001;
    if (v != floor(v) && fabs(ntsc - round(ntsc)) < 0.005)
        *out = (AVRational){ (int)round(ntsc) * 1000, 1001 };
    else
        *out = av_d2q(v, 1000000);
    return 0;
}

/* "3.1" -> 31, "4" -> 40, "31" -> 31. */
static int parse_level(parser *p, const codec_info *ci, const char *text, int *out)
{
    double v;
    int level;
    if (!ci->levels)
        return fail(p, "codec %s takes no level", ci->name);
    if (parse_double(text, &v) < 0 || v <= 0)
        return fail(p, "bad level '%s' (expected e.g. 3.1)", text);
    level = v < 10 ? (int)lround(v * 10) : (int)lround(v);
    for (const int *l = ci->levels; *l; l++)
        if (*l == level) {
            *out = level;
            return 0;
        }
    return fail(p, "level '%s' is not a %s level", text, ci->name);
}

static int check_encoder(parser *p, const codec_info *ci)
{
    if (!avcodec_find_encoder_by_name(ci->encoder))
        return fail(p, "codec %s needs the %s encoder, which this FFmpeg lacks",
                    ci->name, ci->encoder);
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WEIR_LADDER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* One ",key=value" option of a rung.  The codec is applied first (see
 * parse_rung), so the checks here know it. */
static int rung_option(parser *p, weir_ladder_rung *r, const codec_info *ci,
                       const char *key, const char *val)
{
    if (strcmp(key, "maxrate") == 0)
        return parse_rate(p, "maxrate", val, 1e4, 2e8, &r->maxrate);
    if (strcmp(key, "bufsize") == 0)
        return parse_rate(p, "bufsize", val, 1e4, 4e8, &r->bufsize);
    if (strcmp(key, "codec") == 0)
        return 0;                       /* already applied */
    if (strcmp(key, "preset") == 0) {
        if (ci->presets ? !in_list(ci->presets, val)
                        : parse_int_range(p, "preset", val, 0, 13, &(int){ 0 }) < 0)
            return fail(p, "bad preset '%s' for %s", val, ci->name);
        av_strlcpy(r->preset, val, sizeof r->preset);
        return 0;
    }
    if (strcmp(key, "tune") == 0) {
        if (!in_list(ci->tunes, val))
            return fail(p, "bad tune '%s' for %s", val, ci->name);
        av_strlcpy(r->tune, val, sizeof r->tune);
        return 0;
    }
    if (strcmp(key, "profile") == 0) {
        if (!in_list(ci->profiles, val))
            return fail(p, "bad profile '%s' for %s", val, ci->name);
        av_strlcpy(r->profile, val, sizeof r->profile);
        return 0;
    }
    if (strcmp(key, "level") == 0)
        return parse_level(p, ci, val, &r->level);
    return fail(p, "unknown option '%s' (maxrate, bufsize, codec, preset, tune, profile, "
                   "level)", key);
}

/* Splits "k=v" in place. */
static int split_option(parser *p, char *opt, char **key, char **val)
{
    char *eq = strchr(opt, '=');
    if (!eq)
        return fail(p, "option '%s' needs key=value", opt);
    *eq = '\0';
    *key = trim(opt);
    *val = trim(eq + 1);
    if (!**key || !**val)
        return fail(p, "option '%s=%s' needs key=value", *key, *val);
    return 0;
}

/* NAME ':' W 'x' H '@' RATE ['/' FPS] (',' KEY '=' VALUE)* ; buf is a
 * writable copy of the item, name already split off. */
static int parse_rung(parser *p, char *spec, weir_ladder_rung *r)
{
    char *opts = strchr(spec, ',');
    const codec_info *ci = &codecs[0];
    int ret;

    if (opts)
        *opts++ = '\0';
    spec = trim(spec);

    /* The codec first: it decides which presets, tunes and levels are valid. */
    for (char *o = opts; o;) {
        char *next = strchr(o, ',');
        char copy[ITEM_MAX], *key, *val;
        size_t n = next ? (size_t)(next - o) : strlen(o);
        if (n >= sizeof copy)
            return fail(p, "option too long");
        memcpy(copy, o, n);
        copy[n] = '\0';
        if ((ret = split_option(p, copy, &key, &val)) < 0)
            return ret;
        if (strcmp(key, "codec") == 0 && !(ci = codec_by_name(val)))
            return fail(p, "bad codec '%s' (h264, hevc, av1)", val);
        o = next ? next + 1 : NULL;
    }
    if ((ret = check_encoder(p, ci)) < 0)
        return ret;
    r->codec = ci->id;
    av_strlcpy(r->preset, ci->default_preset, sizeof r->preset);

    char *at = strchr(spec, '@');
    if (!at)
        return fail(p, "expected NAME:WxH@BITRATE[/FPS]");
    *at = '\0';
    char *size = trim(spec), *rate = trim(at + 1);
    char *x = strchr(size, 'x');
    if (!x)
        return fail(p, "bad size '%s' (expected WxH, e.g. 1280x720)", size);
    *x = '\0';
    if ((ret = parse_int_range(p, "width", trim(size), 16, 8192, &r->max_width)) < 0 ||
        (ret = parse_int_range(p, "height", trim(x + 1), 16, 8192, &r->max_height)) < 0)
        return ret;
    char *slash = strchr(rate, '/');
    if (slash) {
        *slash = '\0';
        if ((ret = parse_fps(p, trim(slash + 1), &r->max_fps)) < 0)
            return ret;
    }
    if ((ret = parse_rate(p, "bitrate", trim(rate), 1e4, 2e8, &r->bitrate)) < 0)
        return ret;

    for (char *o = opts; o;) {
        char *next = strchr(o, ',');
        char *key, *val;
        if (next)
            *next = '\0';
        if ((ret = split_option(p, o, &key, &val)) < 0 ||
            (ret = rung_option(p, r, ci, key, val)) < 0)
            return ret;
        o = next ? next + 1 : NULL;
    }
    if (!r->maxrate)
        r->maxrate = r->bitrate;
    if (r->maxrate < r->bitrate)
        return fail(p, "maxrate is below the bitrate");
    if (!r->bufsize)
        r->bufsize = 2 * r->maxrate;
    return 0;
}

/* 'audio:' CODEC '@' RATE ['/' SAMPLE_RATE ['/' CHANNELS]] */
static int parse_audio(parser *p, char *spec, weir_ladder_audio *a)
{
    char *at = strchr(spec, '@');
    char *parts[3] = { NULL };
    int ret;

    if (!at)
        return fail(p, "expected audio:aac@BITRATE[/SAMPLE_RATE[/CHANNELS]]");
    *at = '\0';
    if (strcmp(trim(spec), "aac") != 0)
        return fail(p, "bad audio codec '%s' (aac)", trim(spec));
    a->codec = AV_CODEC_ID_AAC;
    parts[0] = at + 1;
    for (int i = 1; i < 3 && parts[i - 1]; i++) {
        char *s = strchr(parts[i - 1], '/');
        if (s) {
            *s = '\0';
            parts[i] = s + 1;
        }
    }
    if (parts[2] && strchr(parts[2], '/'))
        return fail(p, "too many '/' fields");
    if ((ret = parse_rate(p, "audio bitrate", trim(parts[0]), 8e3, 5.12e5, &a->bitrate)) < 0)
        return ret;
    if (parts[1]) {
        static const int rates[] = { 8000, 11025, 12000, 16000, 22050, 24000, 32000,
                                     44100, 48000, 64000, 88200, 96000, 0 };
        if ((ret = parse_int_range(p, "sample rate", trim(parts[1]), 8000, 96000,
                                   &a->sample_rate)) < 0)
            return ret;
        int ok = 0;
        for (const int *r = rates; *r; r++)
            ok |= *r == a->sample_rate;
        if (!ok)
            return fail(p, "sample rate %d is not an AAC rate", a->sample_rate);
    }
    if (parts[2] &&
        (ret = parse_int_range(p, "channels", trim(parts[2]), 1, 8, &a->channels)) < 0)
        return ret;
    return check_encoder(p, &(codec_info){ .name = "aac", .encoder = "aac" });
}

static int parse_item(parser *p, char *item, weir_ladder_profile *out, int *seen_source,
                      int *seen_audio)
{
    if (strcmp(item, "source") == 0) {
        if ((*seen_source)++)
            return fail(p, "'source' given twice");
        if (out->nrungs == WEIR_LADDER_MAX_RUNGS)
            return fail(p, "more than %d video rungs", WEIR_LADDER_MAX_RUNGS);
        weir_ladder_rung *r = &out->rungs[out->nrungs++];
        memset(r, 0, sizeof *r);
        strcpy(r->name, "source");
        r->source = 1;
        return 0;
    }
    char *colon = strchr(item, ':');
    if (!colon)
        return fail(p, "expected 'source', NAME:WxH@BITRATE or audio:...");
    *colon = '\0';
    char *name = trim(item);
    if (strcmp(name, "audio") == 0) {
        if ((*seen_audio)++)
            return fail(p, "audio given twice");
        return parse_audio(p, colon + 1, &out->audio);
    }
    if (!valid_name(name) || strcmp(name, "source") == 0)
        return fail(p, "bad rung name '%s' (1-%d of A-Z a-z 0-9 _ -, not 'source')", name,
                    WEIR_LADDER_NAME_MAX);
    for (int i = 0; i < out->nrungs; i++)
        if (strcmp(out->rungs[i].name, name) == 0)
            return fail(p, "rung name '%s' used twice", name);
    if (out->nrungs == WEIR_LADDER_MAX_RUNGS)
        return fail(p, "more than %d video rungs", WEIR_LADDER_MAX_RUNGS);
    weir_ladder_rung *r = &out->rungs[out->nrungs];
    memset(r, 0, sizeof *r);
    av_strlcpy(r->name, name, sizeof r->name);
    r->max_fps = (AVRational){ 0, 1 };
    int ret = parse_rung(p, colon + 1, r);
    if (ret < 0)
        return ret;
    out->nrungs++;
    return 0;
}

int weir_ladder_parse(const char *text, weir_ladder_profile *out, char *why, size_t whycap)
{
    parser p = { .why = why, .whycap = whycap };
    int seen_source = 0, seen_audio = 0, ret = 0;
    char *copy;

    if (whycap)
        why[0] = '\0';
    memset(out, 0, sizeof *out);
    out->audio = (weir_ladder_audio){ AV_CODEC_ID_AAC, 128000, 48000, 2 };
    if (!text || !(copy = strdup(text)))
        return text ? AVERROR(ENOMEM) : fail(&p, "no ladder");

    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *item = trim(tok);
        char quoted[ITEM_MAX];
        p.index++;
        if (!*item)
            continue;
        av_strlcpy(quoted, item, sizeof quoted);    /* parsing cuts item up */
        p.item = quoted;
        if ((ret = parse_item(&p, item, out, &seen_source, &seen_audio)) < 0)
            goto out;
    }
    p.item = NULL;
    if (out->nrungs == 0)
        ret = fail(&p, "no video rung (give 'source' or NAME:WxH@BITRATE)");
out:
    free(copy);
    return ret;
}

/* ---- decisions ------------------------------------------------------------ */

static int even_round(double v)
{
    int n = 2 * (int)lround(v / 2);
    return n < 2 ? 2 : n;
}

static int even_floor(double v)
{
    int n = 2 * (int)floor(v / 2);
    return n < 2 ? 2 : n;
}

static int fps_known(AVRational q)
{
    return q.num > 0 && q.den > 0;
}

static void scale_rates(weir_rendition *r, double f)
{
    r->bitrate = (int64_t)llround((double)r->bitrate * f);
    r->maxrate = (int64_t)llround((double)r->maxrate * f);
    r->bufsize = (int64_t)llround((double)r->bufsize * f);
}

static void drop(weir_ladder_plan *plan, const char *name, const char *reason)
{
    av_strlcpy(plan->dropped[plan->ndropped].name, name, sizeof plan->dropped[0].name);
    plan->dropped[plan->ndropped++].reason = reason;
}

/* The box of r fitted to the display size dw x dh: the scale factor (> 1
 * means the rung would upscale) and the even output size. */
static double fit(const weir_ladder_rung *r, double dw, double dh, int *w, int *h)
{
    double bw = r->max_width, bh = r->max_height;
    if (dh > dw && bw > bh) {           /* portrait source: turn the box */
        double t = bw;
        bw = bh;
        bh = t;
    }
    double s = fmin(bw / dw, bh / dh);
    double cs = fmin(s, 1.0);
    *w = even_round(dw * cs);
    *h = even_round(dh * cs);
    if (*w > bw || *w > dw)
        *w = even_floor(fmin(bw, dw));
    if (*h > bh || *h > dh)
        *h = even_floor(fmin(bh, dh));
    return s;
}

static void encoded_rendition(const weir_ladder_rung *r, int w, int h, weir_rendition *out)
{
    memset(out, 0, sizeof *out);
    av_strlcpy(out->name, r->name, sizeof out->name);
    out->codec = r->codec;
    out->encoder = codec_by_id(r->codec)->encoder;
    out->width = w;
    out->height = h;
    out->bitrate = r->bitrate;
    out->maxrate = r->maxrate;
    out->bufsize = r->bufsize;
    av_strlcpy(out->preset, r->preset, sizeof out->preset);
    av_strlcpy(out->tune, r->tune, sizeof out->tune);
    av_strlcpy(out->profile, r->profile, sizeof out->profile);
    out->level = r->level;
}

/* Rule 5, then rule 6. */
static void decide_rate(const weir_ladder_source *src, const weir_ladder_rung *r,
                        weir_rendition *out)
{
    int cap = fps_known(r->max_fps);
    if (fps_known(src->fps)) {
        int cmp = cap ? av_cmp_q(src->fps, r->max_fps) : -1;
        if (cmp > 0) {
            out->fps = r->max_fps;
            out->decimate = 1;
        } else {
            out->fps = src->fps;
            if (cmp < 0 && cap)
                scale_rates(out, fmax(0.5, av_q2d(src->fps) / av_q2d(r->max_fps)));
        }
    } else {
        out->fps = cap ? r->max_fps : (AVRational){ 0, 1 };
        out->decimate = cap;
    }
    if (src->vbitrate > 0 && out->bitrate > src->vbitrate)
        scale_rates(out, (double)src->vbitrate / (double)out->bitrate);
}

/* Rule 8: pixels, then bitrate, the source first among equals. */
static int rendition_before(const weir_rendition *a, const weir_rendition *b)
{
    int64_t pa = (int64_t)a->width * a->height, pb = (int64_t)b->width * b->height;
    if (pa != pb)
        return pa > pb;
    if (a->source != b->source)
        return a->source;
    return a->bitrate > b->bitrate;
}

static void sort_renditions(weir_ladder_plan *plan)
{
    for (int i = 1; i < plan->nvideo; i++) {
        weir_rendition v = plan->video[i];
        int j = i;
        for (; j > 0 && rendition_before(&v, &plan->video[j - 1]); j--)
            plan->video[j] = plan->video[j - 1];
        plan->video[j] = v;
    }
}

static void decide_video(const weir_ladder_source *src, const weir_ladder_profile *prof,
                         weir_ladder_plan *plan)
{
    double dw = src->width, dh = src->height;
    const weir_ladder_rung *smallest = NULL;
    double smallest_scale = 0;

    if (src->sar.num > 0 && src->sar.den > 0)
        dw = dw * src->sar.num / src->sar.den;
    for (int i = 0; i < prof->nrungs; i++) {
        const weir_ladder_rung *r = &prof->rungs[i];
        weir_rendition *out = &plan->video[plan->nvideo];
        int w, h;

        if (r->source) {
            if (src->vcodec != AV_CODEC_ID_H264 && src->vcodec != AV_CODEC_ID_HEVC) {
                drop(plan, r->name, "the source codec cannot pass through");
                continue;
            }
            memset(out, 0, sizeof *out);
            strcpy(out->name, "source");
            out->source = 1;
            out->codec = src->vcodec;
            out->width = src->width;
            out->height = src->height;
            out->fps = fps_known(src->fps) ? src->fps : (AVRational){ 0, 1 };
            out->bitrate = out->maxrate = src->vbitrate;
            plan->nvideo++;
            continue;
        }
        double s = fit(r, dw, dh, &w, &h);
        if (s > 1 + 1e-9) {
            drop(plan, r->name, "above the source (would upscale)");
            if (!smallest || s < smallest_scale) {
                smallest = r;
                smallest_scale = s;
            }
            continue;
        }
        encoded_rendition(r, w, h, out);
        decide_rate(src, r, out);
        plan->nvideo++;
    }
    if (plan->nvideo == 0 && smallest) {            /* rule 3 */
        weir_rendition *out = &plan->video[0];
        int w, h;
        fit(smallest, dw, dh, &w, &h);
        encoded_rendition(smallest, w, h, out);
        scale_rates(out, 1 / (smallest_scale * smallest_scale));
        decide_rate(src, smallest, out);
        plan->nvideo = 1;
        plan->ndropped--;                           /* it is kept after all */
        for (int i = 0; i < plan->ndropped; i++)
            if (strcmp(plan->dropped[i].name, smallest->name) == 0)
                plan->dropped[i] = plan->dropped[plan->ndropped];
    }
    sort_renditions(plan);
}

static void decide_audio(const weir_ladder_source *src, const weir_ladder_audio *target,
                         weir_ladder_plan *plan)
{
    if (!src->has_audio) {
        plan->audio_mode = WEIR_LADDER_AUDIO_NONE;
        plan->audio_reason = "the source has no audio";
        return;
    }
    plan->audio = *target;
    plan->audio_mode = WEIR_LADDER_AUDIO_ENCODE;
    if (src->channels > 0 && src->channels < target->channels)
        plan->audio.channels = src->channels;       /* never upmix */
    if (src->acodec != AV_CODEC_ID_AAC)
        plan->audio_reason = "the source is not AAC";
    else if (src->sample_rate != target->sample_rate)
        plan->audio_reason = "the source's sample rate differs from the target";
    else if (src->channels <= 0 || src->channels > target->channels)
        plan->audio_reason = "the source has more channels than the target";
    else if (src->abitrate > 0 && 2 * src->abitrate > 3 * target->bitrate)
        plan->audio_reason = "the source's bitrate is above 1.5x the target";
    else {
        plan->audio_mode = WEIR_LADDER_AUDIO_COPY;
        plan->audio.codec = AV_CODEC_ID_AAC;
        plan->audio.sample_rate = src->sample_rate;
        plan->audio.channels = src->channels;
        plan->audio.bitrate = src->abitrate;
        plan->audio_reason = "the source is AAC at the target sample rate";
    }
}

int weir_ladder_decide(const weir_ladder_source *src, const weir_ladder_profile *profile,
                       weir_ladder_plan *out)
{
    memset(out, 0, sizeof *out);
    if (src->has_video && src->width > 0 && src->height > 0) {
        decide_video(src, profile, out);
        if (out->nvideo == 0)
            return AVERROR(ENOTSUP);
    } else if (src->has_video) {
        return AVERROR(EINVAL);                     /* the caller decodes a frame first */
    }
    decide_audio(src, &profile->audio, out);
    return 0;
}

/* ---- reporting ------------------------------------------------------------ */

static json_t *fps_json(AVRational q)
{
    return fps_known(q) ? json_real(round(av_q2d(q) * 1000) / 1000) : json_null();
}

static json_t *rendition_json(const weir_rendition *r)
{
    json_t *o = json_pack("{s:s, s:b, s:s, s:i, s:i, s:o, s:I}",
                          "name", r->name, "passthrough", r->source,
                          "codec", avcodec_get_name(r->codec),
                          "width", r->width, "height", r->height,
                          "fps", fps_json(r->fps), "bitrate", (json_int_t)r->bitrate);
    if (!o || r->source)
        return o;
    char level[24] = "";
    if (r->level)
        snprintf(level, sizeof level, "%d.%d", r->level / 10, r->level % 10);
    json_t *enc = json_pack("{s:s, s:b, s:I, s:I, s:s, s:s, s:s, s:s}",
                            "encoder", r->encoder, "decimate", r->decimate,
                            "maxrate", (json_int_t)r->maxrate, "bufsize", (json_int_t)r->bufsize,
                            "preset", r->preset, "tune", r->tune,
                            "profile", r->profile, "level", level);
    int ret = enc ? json_object_update(o, enc) : -1;
    json_decref(enc);
    if (ret < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *source_json(const weir_ladder_source *src)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (src->has_video)
        json_object_set_new(o, "video",
                            json_pack("{s:s, s:i, s:i, s:o, s:I}",
                                      "codec", avcodec_get_name(src->vcodec),
                                      "width", src->width, "height", src->height,
                                      "fps", fps_json(src->fps),
                                      "bitrate", (json_int_t)src->vbitrate));
    if (src->has_audio)
        json_object_set_new(o, "audio",
                            json_pack("{s:s, s:i, s:i, s:I}",
                                      "codec", avcodec_get_name(src->acodec),
                                      "sample_rate", src->sample_rate,
                                      "channels", src->channels,
                                      "bitrate", (json_int_t)src->abitrate));
    return o;
}

static const char *audio_mode_name(weir_ladder_audio_mode m)
{
    static const char *const names[] = { "none", "copy", "encode" };
    return names[m];
}

json_t *weir_ladder_plan_json(const weir_ladder_source *src, const weir_ladder_plan *plan)
{
    json_t *renditions = json_array(), *dropped = json_array(), *o;

    for (int i = 0; renditions && i < plan->nvideo; i++)
        json_array_append_new(renditions, rendition_json(&plan->video[i]));
    for (int i = 0; dropped && i < plan->ndropped; i++)
        json_array_append_new(dropped, json_pack("{s:s, s:s}", "name", plan->dropped[i].name,
                                                 "reason", plan->dropped[i].reason));
    o = json_pack("{s:o*, s:o*, s:{s:s, s:s, s:I, s:i, s:i, s:s}}",
                  "renditions", renditions, "dropped", dropped,
                  "audio", "mode", audio_mode_name(plan->audio_mode),
                  "codec", plan->audio_mode ? avcodec_get_name(plan->audio.codec) : "none",
                  "bitrate", (json_int_t)plan->audio.bitrate,
                  "sample_rate", plan->audio.sample_rate,
                  "channels", plan->audio.channels,
                  "reason", plan->audio_reason ? plan->audio_reason : "");
    if (o && src)
        json_object_set_new(o, "source", source_json(src));
    return o;
}

void weir_ladder_plan_log(const char *stream, const weir_ladder_plan *plan)
{
    char video[512] = "", dropped[256] = "";
    size_t off = 0;

    for (int i = 0; i < plan->nvideo && off < sizeof video; i++) {
        const weir_rendition *r = &plan->video[i];
        if (r->source)
            off += (size_t)snprintf(video + off, sizeof video - off, "%s%s=%dx%d(copy)",
                                    i ? "," : "", r->name, r->width, r->height);
        else
            off += (size_t)snprintf(video + off, sizeof video - off, "%s%s=%dx%d@%lldk/%.3gfps/%s",
                                    i ? "," : "", r->name, r->width, r->height,
                                    (long long)(r->bitrate / 1000),
                                    fps_known(r->fps) ? av_q2d(r->fps) : 0.0, r->encoder);
    }
    off = 0;
    for (int i = 0; i < plan->ndropped && off < sizeof dropped; i++)
        off += (size_t)snprintf(dropped + off, sizeof dropped - off, "%s%s(%s)", i ? "," : "",
                                plan->dropped[i].name, plan->dropped[i].reason);
    weir_log_info("transcode", "ladder", WL_STR("stream", stream), WL_STR("video", video),
                  WL_STR("dropped", dropped), WL_STR("audio", audio_mode_name(plan->audio_mode)),
                  WL_INT("audio_bitrate", plan->audio.bitrate),
                  WL_STR("audio_reason", plan->audio_reason ? plan->audio_reason : ""));
}
