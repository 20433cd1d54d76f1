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

#endif
