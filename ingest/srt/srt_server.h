/*
 * ingest/srt/srt_server.h — the SRT listener (private to ingest/).
 *
 * The server's public API is in ingest/ingest.h; nothing outside ingest/
 * includes this header.
 *
 * srt://HOST:srt.port?streamid=#!::r=live/<stream-key>,m=publish (or the
 * plain live/<stream-key>): libsrt in live mode, MPEG-TS payload demuxed by
 * libavformat.  Each publish becomes a stream on the bus named after the
 * key's stream (or, with ingest.auth=open, the key itself), with tracks in a
 * 1/1000 (ms) time base like RTMP's.
 */
#ifndef WEIR_INGEST_SRT_SERVER_H
#define WEIR_INGEST_SRT_SERVER_H

#include "ingest/ingest.h"


#endif
