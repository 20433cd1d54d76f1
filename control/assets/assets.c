/*
 * control/assets/assets.c — see assets.h.
 */
#include "control/assets/assets.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/error.h>

#define ASSET_PATH_MAX 4096

int weir_asset_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static json_t *load(const char *vod_dir, const char *id)
{
    char path[ASSET_PATH_MAX];
    json_t *o;

    snprintf(path, sizeof path, "%s/%s/asset.json", vod_dir, id);
    o = json_load_file(path, 0, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Newest first: by "created", which is ISO 8601 and so sorts as text. */
static int newest_first(const void *a, const void *b)
{
    const char *ca = json_string_value(json_object_get(*(json_t *const *)a, "created"));
    const char *cb = json_string_value(json_object_get(*(json_t *const *)b, "created"));
    return strcmp(cb ? cb : "", ca ? ca : "");
}

int weir_assets_list(const char *vod_dir, json_t **out)
{
    json_t **items = NULL, *arr;
    size_t n = 0, cap = 0;
    struct dirent *d;
    DIR *dir = opendir(vod_dir);

    if (!(arr = json_array())) {
        if (dir)
            closedir(dir);
        return AVERROR(ENOMEM);
    }
    while (dir && (d = readdir(dir))) {
        json_t *o;
        if (!weir_asset_id_valid(d->d_name) || !(o = load(vod_dir, d->d_name)))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 32;
            json_t **grown = realloc(items, c * sizeof *grown);
            if (!grown) {
                json_decref(o);
                break;
            }
            items = grown;
            cap = c;
        }
        items[n++] = o;
    }
    if (dir)
        closedir(dir);
    if (n)
        qsort(items, n, sizeof *items, newest_first);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
    *out = arr;
    return 0;
}

int weir_assets_get(const char *vod_dir, const char *id, json_t **out)
{
    json_t *o;
    if (!weir_asset_id_valid(id) || !(o = load(vod_dir, id)))
        return AVERROR(ENOENT);
    *out = o;
    return 0;
}

/* Removes a folder of plain files: no recursion, no link followed (a
 * subfolder other than the one the caller removed first fails it).
 * A symlink in place of the folder is refused, never followed (EPERM).
 * 0, AVERROR(ENOENT) when there is no such folder, another AVERROR. */
static int remove_flat(const char *path)
{
    char file[ASSET_PATH_MAX + 512];
    struct dirent *d;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

    if (!dir) {
        r = AVERROR(errno);
        if (fd >= 0)
            close(fd);
        return r == AVERROR(ELOOP) || r == AVERROR(ENOTDIR) ? AVERROR(EPERM) : r;
    }
    while ((d = readdir(dir))) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        snprintf(file, sizeof file, "%s/%s", path, d->d_name);
        if (unlink(file) < 0 && r == 0)
            r = AVERROR(errno);
    }
    closedir(dir);
    if (rmdir(path) < 0 && r == 0)
        r = AVERROR(errno);
    return r;
}

int weir_assets_delete(const char *vod_dir, const char *id)
{
    char path[ASSET_PATH_MAX], file[ASSET_PATH_MAX + 256];
    const char *state;
    json_t *o;
    int r = 0, r2;

    if (!weir_asset_id_valid(id) || !(o = load(vod_dir, id)))
        return AVERROR(ENOENT);
    state = json_string_value(json_object_get(o, "state"));
    if (state && (strcmp(state, "recording") == 0 || strcmp(state, "processing") == 0))
        r = AVERROR(EBUSY);
    json_decref(o);
    if (r < 0)
        return r;
    snprintf(path, sizeof path, "%s/%s", vod_dir, id);
    /* The MPEG-TS variant's folder (packager.hls_ts), then the asset's. */
    snprintf(file, sizeof file, "%s/ts", path);
    if ((r = remove_flat(file)) == AVERROR(ENOENT))
        r = 0;
    r2 = remove_flat(path);
    return r < 0 ? r : r2;
}

int weir_assets_write(const char *vod_dir, const char *id, const json_t *asset)
{
    char dir[ASSET_PATH_MAX], path[ASSET_PATH_MAX + 32], tmp[ASSET_PATH_MAX + 32];
    char *text;
    size_t len, off = 0;
    int fd, r = 0;

    if (!weir_asset_id_valid(id))
        return AVERROR(EINVAL);
    if (snprintf(dir, sizeof dir, "%s/%s", vod_dir, id) >= (int)sizeof dir)
        return AVERROR(ENAMETOOLONG);
    if ((mkdir(vod_dir, 0750) < 0 && errno != EEXIST) || (mkdir(dir, 0750) < 0 && errno != EEXIST))
        return AVERROR(errno);
    snprintf(path, sizeof path, "%s/asset.json", dir);
    snprintf(tmp, sizeof tmp, "%s/.asset.json.tmp", dir);
    if (!(text = json_dumps(asset, JSON_COMPACT | JSON_REAL_PRECISION(6))))
        return AVERROR(ENOMEM);
    len = strlen(text);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
        r = AVERROR(errno);
        free(text);
        return r;
    }
    while (off < len && r == 0) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            r = n < 0 ? AVERROR(errno) : AVERROR(EIO);
        else
            off += (size_t)n;
    }
    free(text);
    if (r == 0 && fsync(fd) < 0)
        r = AVERROR(errno);
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = AVERROR(errno);
    if (r < 0)
        unlink(tmp);
    return r;
}

int weir_assets_recover(const char *vod_dir)
{
    json_t *all = NULL, *o;
    size_t i;
    int n = 0;

    if (weir_assets_list(vod_dir, &all) < 0)
        return 0;               /* no vod folder yet: nothing to recover */
    json_array_foreach(all, i, o) {
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *state = json_string_value(json_object_get(o, "state"));
        const char *source = json_string_value(json_object_get(o, "source"));

        if (!id || !weir_asset_id_valid(id) || !state || strcmp(state, "recording") != 0 ||
            !source || strcmp(source, "live") != 0)
            continue;
        json_object_set_new(o, "state", json_string("failed"));
        json_object_set_new(o, "reason",
                            json_string("the server stopped while this was being recorded"));
        if (weir_assets_write(vod_dir, id, o) < 0) {
            weir_log_warn("assets", "cannot mark an unfinished recording failed",
                          WL_STR("asset", id));
            continue;
        }
        weir_log_warn("assets", "unfinished recording from a previous run marked failed",
                      WL_STR("asset", id));
        n++;
    }
    json_decref(all);
    return n;
}
