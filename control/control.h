/*
 * control/control.h — the control plane (DESIGN.md §4): the REST API under
 * /api/v1/, /healthz, /metrics, stream keys and API tokens, the database.
 *
 * `weir serve` makes one weir_control; the CLI (`weir keys`, `weir tokens`)
 * opens the database with weir_control_open_db() and calls the same
 * functions the API handlers call, so there is one implementation of each.
 */
#ifndef WEIR_CONTROL_H
#define WEIR_CONTROL_H

#include "core/core.h"
#include "core/work.h"
#include "core/metrics.h"
#include "control/dbpool/dbpool.h"

typedef struct weir_control weir_control;

/* ---- uploads ------------------------------------------------------------------
 *
 * tus 1.0.0 resumable uploads at /api/v1/uploads (control/uploads/): the
 * bytes go to <data_dir>/uploads/<id>.part, the state to the database, and
 * each finished upload becomes a VOD asset <data_dir>/vod/<id>/ once the
 * app's processing function has packaged it (on a thread of its own).
 */
typedef struct weir_uploads_settings {
    int64_t max_size;               /* uploads.max_size: bytes per upload */
    int64_t min_free;               /* uploads.min_free: bytes the disk keeps free */
    int64_t expiry;                 /* uploads.expiry: ms an idle upload lives */
    int64_t url_ttl;                /* uploads.url_ttl: ms a single-use URL lives */
    int64_t workers;                /* uploads.workers: files processed at once (0: none) */
    int64_t job_lease;              /* uploads.job_lease: ms a processing claim lasts
                                       without renewal (a crashed node's job is retaken) */
    int transcode;                  /* uploads.transcode: the ladder (1) or a remux (0) */
    char *profile;                  /* uploads.profile: the transcode profile's name (the
                                       app checks it; owned by the weir_conf) */
} weir_uploads_settings;

extern const weir_conf_table weir_uploads_conf_table;

/* The app's processing: makes the file `input` (probed_ms long, by the
 * probe; 0 when unknown) into a VOD asset in asset_dir (which exists),
 * blocking, on a processing thread: playlists, and poster.jpg,
 * storyboard.jpg and storyboard.vtt when it can.  progress(parg, percent)
 * as it goes.  *duration_ms (OUT): the asset's length.  0;
 * AVERROR_INVALIDDATA when the file holds nothing that can be packaged;
 * AVERROR_EXIT when the app is stopping and interrupted it (the upload goes
 * back to the queue); another AVERROR. */
typedef int (*weir_upload_process_fn)(void *arg, const char *input, const char *asset_dir,
                                      int64_t probed_ms, int64_t *duration_ms,
                                      void (*progress)(void *parg, int percent), void *parg);

typedef struct weir_control_opts {
    weir_http *http;                        /* routes are added here */
    weir_work *work;                        /* blocking work (DB) runs here */
    weir_bus *bus;
    weir_dbpool *db;                        /* borrowed; see weir_control_open_db */
    weir_metrics *metrics;                  /* served at /metrics */
    const weir_clock *clock;                /* NULL: system clock */
    const char *vod_dir;                    /* VOD assets, for /api/v1/assets */
    /* Transcoding (NULL when it is off): GET /api/v1/transcode/jobs shows
     * what transcode_status returns (a new reference; any thread), DELETE
     * /api/v1/transcode/jobs/{id} calls transcode_cancel (0, or
     * AVERROR(ENOENT) for no such running job).  Both get transcode_arg.
     * The control plane knows no transcode header: the app wires these. */
    json_t *(*transcode_status)(void *arg);
    int (*transcode_cancel)(void *arg, uint64_t id);
    void *transcode_arg;
    /* The transcode profiles a stream key may name, NULL-terminated
     * (POST /api/v1/keys); NULL: any name of 1-15 [a-z0-9_-]. */
    const char *const *transcode_profiles;
    /* Uploads (all four, or none: no /api/v1/uploads). */
    weir_loop *loop;
    const char *data_dir;
    const weir_uploads_settings *uploads;   /* borrowed; outlives the control plane */
    weir_upload_process_fn process;         /* NULL: uploads are probed, not packaged */
    void *process_arg;
    /* Recordings' retention (control/assets/retention.h; needs loop, work
     * and vod_dir): the packager's settings, which the app passes on.
     * record_sweep_interval 0: no sweeper at all.  recordings_in_use runs
     * on the loop and returns a new JSON array of the asset ids not to
     * delete now (weir_packager_recordings_in_use); NULL: none. */
    int64_t record_max_age;                 /* ms; 0: no age limit */
    int64_t record_max_bytes;               /* 0: no size limit */
    int64_t record_sweep_interval;          /* ms */
    json_t *(*recordings_in_use)(void *arg);
    void *recordings_arg;
} weir_control_opts;

/* NULL on failure (logged). */
weir_control *weir_control_new(const weir_control_opts *opts);

/* Emits an event on /api/v1/events (control/events/events.h), from any
 * thread; data is borrowed.  For producers outside control/ (the
 * packager's recordings: asset.created, asset.state), so the signature is
 * a plain callback's: control is the weir_control. */
void weir_control_emit(void *control, const char *type, const json_t *data);
/* Before weir_work_free at shutdown, on the loop thread once the loop has
 * stopped: uploads take no new work and the processing threads finish their
 * file and stop.  NULL is fine. */
void weir_control_stop(weir_control *control);
void weir_control_free(weir_control *control);

/* Opens the pool for db.url ("" means sqlite:<data_dir>/weir.db) and brings
 * the schema up to date.  Blocking: at start-up or in the CLI. */
int weir_control_open_db(const weir_dbpool_settings *settings, const char *data_dir,
                         weir_dbpool **out);

/* With ingest.auth=keys and no stream key at all, creates one for stream
 * "live" and writes it, once, with the OBS settings to `out`.  Blocking. */
int weir_control_bootstrap_key(weir_dbpool *db, int rtmp_port, FILE *out);

/* Matches ingest.h's weir_publish_auth_fn: looks the key up on the work
 * pool and calls done on the loop with the stream and the key's SRT
 * passphrase (NULL when it has none; a secret, wiped when done returns).
 * ctx is the weir_control. */
int weir_control_authorize_publish(void *ctx, const char *key,
                                   void (*done)(void *arg, int result, const char *stream,
                                                const char *srt_passphrase),
                                   void *arg);

/* ---- stream keys and API tokens ----------------------------------------------
 *
 * Both are credentials of one shape, shown to a person once and then kept
 * only as a salted hash:
 *
 *   wk_<id:8><secret:32>      stream key (publishes one stream)
 *   wt_<id:8><secret:32>      API token (read, write or admin)
 *
 * id is 6 random bytes and secret 24 (192 bits), both base64url: the whole
 * is URL-safe and pastes into OBS.  The id is public and indexes the row;
 * the database keeps a 16-byte random salt and SHA-256(salt || secret), so a
 * stolen database publishes nothing.  Verification compares in constant
 * time.
 *
 * Every function here blocks on the database: call it from the work pool or
 * the CLI, never on the I/O loop.  The API handlers and `weir keys|tokens`
 * both call these.
 */
#define WEIR_CRED_LEN 43        /* "wk_" + 8 + 32 */

typedef enum weir_scope {
    WEIR_SCOPE_NONE = 0,
    WEIR_SCOPE_READ = 1,
    WEIR_SCOPE_WRITE = 2,       /* includes read */
    WEIR_SCOPE_ADMIN = 3,       /* includes write */
} weir_scope;


/* Creates a key for stream `name`.  key_out gets the key (WEIR_CRED_LEN + 1
 * bytes).  AVERROR(EEXIST) if the stream already has an active key,
 * AVERROR(EINVAL) for a bad name. */
int weir_keys_create(weir_dbpool *db, const char *name, const char *note,
                     char key_out[WEIR_CRED_LEN + 1]);
/* The same, for a stream that asks for a transcode profile (NULL or "":
 * the default, transcode.profile).  The name is not checked against the
 * profiles (the control plane does not know them; the API and CLI do);
 * AVERROR(EINVAL) unless it is 0-15 of [a-z0-9_-]. */
#define WEIR_KEY_PROFILE_MAX 15
int weir_keys_create_with_profile(weir_dbpool *db, const char *name, const char *note,
                                  const char *profile, const char *srt_passphrase,
                                  char key_out[WEIR_CRED_LEN + 1]);
int weir_keys_profile_valid(const char *profile);   /* 1 if the shape is right */
/* The profile of the stream's active key ("" for the default) into out;
 * AVERROR(ENOENT) when the stream has no active key. */
int weir_keys_profile(weir_dbpool *db, const char *name, char *out, size_t cap);
/* Which stream does this key publish?  0 and name_out filled, or
 * AVERROR(EACCES) for an unknown, malformed or revoked key.  Records the use. */
int weir_keys_lookup(weir_dbpool *db, const char *key, char *name_out, size_t cap);

/* A stream key's own SRT passphrase (migration 4): NULL in the database
 * means srt.passphrase applies.  It is a secret that has to be usable, so
 * it is stored as given (libsrt derives the stream's AES key from it at
 * every handshake); it leaves the store only through
 * weir_keys_lookup_publish, never in a listing or a log line.  10-79 bytes,
 * SRT's own bounds (SRTO_PASSPHRASE). */
#define WEIR_KEY_SRT_PASSPHRASE_MIN 10
#define WEIR_KEY_SRT_PASSPHRASE_MAX 79
int weir_keys_srt_passphrase_valid(const char *passphrase);    /* 1 if 10-79 bytes */
/* The same as weir_keys_lookup, and the key's SRT passphrase into
 * srt_passphrase_out ("" when it has none).  The caller wipes it. */
int weir_keys_lookup_publish(weir_dbpool *db, const char *key, char *name_out, size_t cap,
                             char srt_passphrase_out[WEIR_KEY_SRT_PASSPHRASE_MAX + 1]);
/* Sets (NULL: clears) the SRT passphrase of the stream's active key.
 * AVERROR(ENOENT) if it has none, AVERROR(EINVAL) for a bad passphrase. */
int weir_keys_set_srt_passphrase(weir_dbpool *db, const char *name, const char *passphrase);
/* AVERROR(ENOENT) if the stream has no active key. */
int weir_keys_revoke(weir_dbpool *db, const char *name);
/* A new JSON array of {stream, note, profile, srt_passphrase_set (bool),
 * created, last_used, revoked}; never the key, its hash or the passphrase. */
int weir_keys_list(weir_dbpool *db, json_t **out);
/* Number of keys not revoked. */
int weir_keys_count_active(weir_dbpool *db, int64_t *count);

int weir_tokens_create(weir_dbpool *db, weir_scope scope, const char *name,
                       char token_out[WEIR_CRED_LEN + 1], char id_out[9]);
/* 0 and *scope_out, or AVERROR(EACCES). */
int weir_tokens_verify(weir_dbpool *db, const char *token, weir_scope *scope_out);
int weir_tokens_revoke(weir_dbpool *db, const char *id);
int weir_tokens_list(weir_dbpool *db, json_t **out);

const char *weir_scope_name(weir_scope s);
weir_scope weir_scope_parse(const char *name);      /* WEIR_SCOPE_NONE if unknown */

#endif
