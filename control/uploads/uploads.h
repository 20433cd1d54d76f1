/*
 * control/uploads/uploads.h — private to control/: tus 1.0.0 uploads that
 * become VOD assets.  (DESIGN.md places uploads under ingest/; they live in
 * control/ because everything they touch is the control plane's: API
 * tokens, single-use URLs and upload state in the database, problem+json
 * answers under /api/v1/, and the asset catalogue.  What is media about
 * them — probing and packaging — is libavformat here and the packager
 * through the app's processing function.)
 *
 * An upload's life (the `state` column; asset.json's `state` follows):
 *
 *   POST ──> uploading ──PATCH reaches Upload-Length──> queued ──claimed──> processing
 *              │  ^  PATCH (offset advances, fsync'd     │                 │  (lease, renewed;
 *              │  └─ before it is acknowledged)         │                 │   lapsed: retaken)
 *              │                                         │                 v
 *              ├──idle past uploads.expiry──> expired    │        ready ─or─ failed (reason)
 *              └──DELETE──> deleted <────────────────────┴────── DELETE (not while processing)
 *                                      (a node stopping mid-job: processing ──released──> queued)
 *
 *   transition                  where
 *   -> uploading                POST: store_create (+ the .part file, asset.json)
 *   uploading -> uploading      PATCH end: store_advance, after fsync
 *   uploading -> queued         store_advance when received == length
 *   queued -> processing        the job runner: store_claim (also a lapsed lease)
 *   processing -> ready|failed  store_finish, by the lease's owner only
 *   processing -> queued        store_release: the owner stopped mid-job (shutdown)
 *   uploading -> expired        the sweep: store_expire
 *   * -> deleted                DELETE /api/v1/uploads/ID, DELETE /api/v1/assets/ID
 *
 * Invariants:
 *   1. `received` only grows, and only after the bytes below it were
 *      fsync'd: a restart resumes from an acknowledged offset.  Bytes past
 *      `received` in the .part file are never trusted (they are rewritten).
 *   2. At most one PATCH writes an upload at a time (the others get 409).
 *   3. Only the lease's owner moves a processing row on; a claim bumps
 *      `attempts`, and a file claimed WEIR_UPLOAD_MAX_ATTEMPTS times fails
 *      instead of crashing a node again.
 */
#ifndef WEIR_CONTROL_UPLOADS_H
#define WEIR_CONTROL_UPLOADS_H

#include "control/control.h"
#include "control/uploads/tus.h"
#include "control/events/events.h"

#define WEIR_UPLOAD_ID_LEN 22           /* 16 random bytes, base64url */
#define WEIR_UPLOAD_MAX_ATTEMPTS 3
#define WEIR_UPLOAD_NAME_MAX 255

/* ---- the module (loop thread, except where said) ------------------------- */

typedef struct weir_uploads weir_uploads;

typedef struct weir_uploads_opts {
    weir_loop *loop;
    weir_http *http;                        /* routes: /api/v1/uploads[/ID] */
    weir_work *work;                        /* DB calls and file writes */
    weir_dbpool *db;
    const weir_uploads_settings *settings;  /* copied */
    const char *data_dir;                   /* <data_dir>/uploads, <data_dir>/vod */
    weir_upload_process_fn process;
    void *process_arg;
    weir_events *events;                    /* asset.* and upload.progress; may be NULL */
} weir_uploads_opts;

/* Registers the routes, starts the expiry sweep and the processing threads.
 * 0 or AVERROR (logged). */
int weir_uploads_new(const weir_uploads_opts *opts, weir_uploads **out /* OUT */);
/* See weir_control_stop. */
void weir_uploads_stop(weir_uploads *u);
/* After the loop is freed.  NULL is fine. */
void weir_uploads_free(weir_uploads *u);

/* Blocking (the API's workers): a single-use upload URL's token, its id and
 * when it expires (unix ms). */
int weir_uploads_url_create(weir_uploads *u, const char *name,
                            char token_out[WEIR_CRED_LEN + 1], char id_out[9],
                            int64_t *expires_ms);
/* Blocking: DELETE /api/v1/assets/ID of an upload's asset.  Marks the row
 * deleted and removes the .part file (the asset folder is the caller's).
 * AVERROR(EBUSY) while processing; 0 when there is no such upload. */
int weir_uploads_forget(weir_uploads *u, const char *id);
/* Blocking: adds "received" (bytes) to an uploading asset's object. */
void weir_uploads_overlay(weir_uploads *u, json_t *asset);

/* ---- the store (blocking: workers and the processing threads) ------------- */

extern const weir_db_migration weir_uploads_migration;

typedef struct weir_upload_row {
    char id[WEIR_UPLOAD_ID_LEN + 1];
    char state[16];
    int64_t length, received;
    char name[WEIR_UPLOAD_NAME_MAX + 1];
    char filename[WEIR_UPLOAD_NAME_MAX + 1];
    char metadata[WEIR_TUS_META_MAX + 1];   /* Upload-Metadata as sent */
    char url_id[9];                         /* "" unless created through a URL */
    int64_t created_at, updated_at, expires_at;     /* unix ms */
    int64_t attempts;
} weir_upload_row;

/* Inserts row (state uploading).  With url_token, the single-use URL is
 * spent on it in the same transaction: AVERROR(EACCES) for an unknown or
 * expired URL, AVERROR(EEXIST) for one already used. */
int weir_upload_store_create(weir_dbpool *db, weir_upload_row *row, const char *url_token,
                             int64_t now);
/* AVERROR(ENOENT) if there is no such row. */
int weir_upload_store_get(weir_dbpool *db, const char *id, weir_upload_row *out);
/* received: from -> to, only while uploading at `from`; queued when to ==
 * length (*queued = 1).  AVERROR(ENOENT) when no row matched (deleted,
 * expired, or moved by someone else). */
int weir_upload_store_advance(weir_dbpool *db, const char *id, int64_t from, int64_t to,
                              int64_t now, int64_t expires_at, int *queued);
/* The upload a URL token created: 0 and id_out (may be "" if unused), or
 * AVERROR(EACCES). */
int weir_upload_store_url_check(weir_dbpool *db, const char *token,
                                char id_out[WEIR_UPLOAD_ID_LEN + 1]);
int weir_upload_store_url_create(weir_dbpool *db, const char *name, int64_t now,
                                 int64_t expires, char token_out[WEIR_CRED_LEN + 1],
                                 char id_out[9]);
/* Marks uploads idle past their expiry `expired` and returns their ids
 * (malloc'd array of n, caller frees), skipping those in `busy` (nbusy ids
 * being written now).  Also drops single-use URLs expired unused. */
int weir_upload_store_expire(weir_dbpool *db, int64_t now, char (*busy)[WEIR_UPLOAD_ID_LEN + 1],
                             size_t nbusy, char (**ids)[WEIR_UPLOAD_ID_LEN + 1], size_t *n);
/* Claims the oldest queued upload, or a processing one whose lease lapsed:
 * 1 with *out, 0 when there is none. */
int weir_upload_store_claim(weir_dbpool *db, const char *owner, int64_t now, int64_t lease_ms,
                            weir_upload_row *out);
/* 0, or AVERROR(ENOENT) when the lease is no longer owner's. */
int weir_upload_store_renew(weir_dbpool *db, const char *id, const char *owner, int64_t until);
/* processing -> state (ready, failed); owner's lease only. */
int weir_upload_store_finish(weir_dbpool *db, const char *id, const char *owner,
                             const char *state, const char *reason, int64_t now);
/* processing -> queued, owner's lease only, the claim not counted in
 * `attempts`: a node shutting down hands a job it interrupted back, so the
 * next node (or this one, restarted) takes it at once. */
int weir_upload_store_release(weir_dbpool *db, const char *id, const char *owner, int64_t now);
/* Any state but processing -> deleted: 0, AVERROR(EBUSY) while processing,
 * AVERROR(ENOENT). */
int weir_upload_store_delete(weir_dbpool *db, const char *id, int64_t now);

/* ---- probing (blocking) -------------------------------------------------- */

/* Opens path with libavformat and checks it is media weir can use: a
 * container, at least one audio or video track with a decoder that decodes
 * a frame, and packets that reach the end the container declares.  0 and
 * *info (OUT, caller decrefs: container, tracks, duration_s, resolution,
 * fps); else AVERROR_INVALIDDATA with reason (a sentence for asset.json). */
int weir_upload_probe(const char *path, json_t **info, char *reason, size_t cap);

#endif
