/*
 * control/assets/assets.h — the VOD asset catalogue (GET/DELETE
 * /api/v1/assets).
 *
 * An asset is a folder <vod_dir>/<id>/ holding asset.json (written by
 * whoever produced it: the packager's recordings, control/uploads for
 * uploaded files) and the asset's playlists and segments.  The folder is the source of truth, so a
 * recording finished during shutdown, or copied in by hand, is listed.
 * Blocking (directory scans, file reads): call from the work pool.
 */
#ifndef WEIR_CONTROL_ASSETS_H
#define WEIR_CONTROL_ASSETS_H

#include <jansson.h>

/* 1 if id is a valid asset id: 1..128 of [A-Za-z0-9_-]. */
int weir_asset_id_valid(const char *id);

/* *out (OUT, caller decrefs): a JSON array of the assets' asset.json
 * objects, newest first.  Folders without a readable asset.json are
 * skipped.  0 or AVERROR. */
int weir_assets_list(const char *vod_dir, json_t **out);

/* One asset's object.  0, AVERROR(ENOENT), or AVERROR. */
int weir_assets_get(const char *vod_dir, const char *id, json_t **out);

/* Deletes the asset's folder.  AVERROR(ENOENT); AVERROR(EBUSY) while it is
 * still being recorded or processed (state "recording" or "processing"). */
int weir_assets_delete(const char *vod_dir, const char *id);

struct weir_uploads;
struct weir_events;

/* The one way an asset goes, for DELETE /api/v1/assets/{id} and for the
 * recordings' retention (retention.h): an upload's row and partial file
 * first (uploads may be NULL: not wired, or the caller knows it is a
 * recording), so that no PATCH or job brings the folder back; then the
 * folder (weir_assets_delete); then asset.deleted {id} (events may be NULL).
 * Blocking.  Errors as weir_assets_delete's. */
int weir_assets_remove(const char *vod_dir, const char *id, struct weir_uploads *uploads,
                       struct weir_events *events);

/* Recordings a previous run left in state "recording" (it crashed or was
 * killed mid-publish) become "failed" with a reason: nobody will finish
 * them, and DELETE and the retention refuse a recording still "recording".
 * Call at start-up, before anything can start a recording (a live one
 * would be taken for such a leftover).  Returns how many it marked. */
int weir_assets_recover(const char *vod_dir);

/* Writes the asset's asset.json (asset is borrowed), creating its folder:
 * to a temporary name, fsync'd, then renamed, so a reader sees the old or
 * the new object, whole.  0 or AVERROR. */
int weir_assets_write(const char *vod_dir, const char *id, const json_t *asset);

#endif
