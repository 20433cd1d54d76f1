/*
 * ingest/ingest.h — protocols in, streams on the bus out (DESIGN.md §1).
 *
 * For now this module holds the ingest settings every protocol shares;
 * RTMP (ingest/rtmp/), SRT (ingest/srt/) and uploads (ingest/upload/) plug
 * in here as each lands.
 */
#ifndef WEIR_INGEST_H
#define WEIR_INGEST_H

#include "core/core.h"

typedef enum weir_ingest_auth {
    WEIR_INGEST_AUTH_KEYS = 0,      /* publishing needs a valid stream key */
    WEIR_INGEST_AUTH_OPEN = 1,      /* development: the key is the stream name */
} weir_ingest_auth;

typedef struct weir_ingest_settings {
    int64_t rtmp_port;
    int64_t srt_port;
    int auth;                       /* weir_ingest_auth */
} weir_ingest_settings;

extern const weir_conf_table weir_ingest_conf_table;

/*
 * Publish authorisation, as ingest needs it.  With ingest.auth=keys a
 * protocol asks "which stream does this key publish?" and waits for the
 * answer without blocking the loop.  The control plane provides the function
 * (weir_control_authorize_publish); the app hands it to ingest, so ingest
 * depends on this signature only, not on control/.
 *
 * done(arg, 0, stream) on success, done(arg, AVERROR(EACCES), NULL) for an
 * unknown or revoked key, another negative code if the store failed; done
 * runs on the loop thread, exactly once, after the call returned 0.  The
 * call itself returns 0 or a negative code (then done never runs).
 */
typedef void (*weir_publish_auth_done)(void *arg, int result, const char *stream);
typedef int (*weir_publish_auth_fn)(void *ctx, const char *key,
                                    weir_publish_auth_done done, void *arg);

#endif
