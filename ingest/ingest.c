#include "ingest/ingest.h"

#include <stddef.h>

#define K(field) offsetof(weir_ingest_settings, field)

static const char *const auth_modes[] = { "keys", "open", NULL };
static const char *const duplicate_modes[] = { "reject", "takeover", NULL };
static const char *const pbkeylens[] = { "0", "16", "24", "32", NULL };

static const weir_conf_key ingest_keys[] = {
    { "rtmp.port", WEIR_CONF_INT, K(rtmp_port), "1935", 1, 65535, NULL,
      "TCP port for RTMP publishers (OBS, ffmpeg, GStreamer)", 0 },
    { "srt.port", WEIR_CONF_INT, K(srt_port), "9000", 1, 65535, NULL,
      "UDP port for SRT publishers", 0 },
    { "ingest.auth", WEIR_CONF_ENUM, K(auth), "keys", 0, 0, auth_modes,
      "keys: publishing needs a stream key; open: any name may publish (development only)", 0 },
    { "ingest.on_duplicate", WEIR_CONF_ENUM, K(on_duplicate), "reject", 0, 0, duplicate_modes,
      "a second publisher on a live stream: reject it, or takeover (disconnect the first)", 0 },
    { "ingest.max_publishers", WEIR_CONF_INT, K(max_publishers), "256", 1, 100000, NULL,
      "publishers connected at once, all protocols; more are refused", 0 },
    { "rtmp.handshake_timeout", WEIR_CONF_DURATION, K(rtmp_handshake_timeout), "10s", 1000,
      600000, NULL, "an RTMP connection must finish the handshake and publish within this", 0 },
    { "rtmp.idle_timeout", WEIR_CONF_DURATION, K(rtmp_idle_timeout), "30s", 1000, 3600000, NULL,
      "an RTMP connection that sends nothing for this long is closed", 0 },
    { "rtmp.max_message_size", WEIR_CONF_SIZE, K(rtmp_max_message), "8MiB", 65536, 16777215,
      NULL, "largest RTMP message (a video frame) accepted; larger closes the connection", 0 },
    { "rtmp.chunk_size", WEIR_CONF_SIZE, K(rtmp_chunk_size), "4KiB", 128, 65536, NULL,
      "chunk size weir sends with", 0 },
    { "srt.latency", WEIR_CONF_DURATION, K(srt_latency), "120ms", 20, 10000, NULL,
      "SRT receive latency (TSBPD): more survives loss, less is closer to live", 0 },
    { "srt.passphrase", WEIR_CONF_STRING, K(srt_passphrase), "", 0, 0, NULL,
      "SRT encryption passphrase (10-79 characters); empty: no encryption", WEIR_CONF_SECRET },
    { "srt.max_connections", WEIR_CONF_INT, K(srt_max_connections), "64", 1, 10000, NULL,
      "SRT connections at once, any state; more are refused before the handshake", 0 },
    { "srt.max_streamid", WEIR_CONF_SIZE, K(srt_max_streamid), "512", 16, 512, NULL,
      "longest SRT stream id accepted (libsrt's own limit is 512)", 0 },
    { "srt.idle_timeout", WEIR_CONF_DURATION, K(srt_idle_timeout), "10s", 1000, 3600000, NULL,
      "an SRT connection that sends nothing for this long is closed", 0 },
    { "srt.pbkeylen", WEIR_CONF_ENUM, K(srt_pbkeylen), "0", 0, 0, pbkeylens,
      "AES key length in bytes with srt.passphrase: 0 takes the caller's (16 if it sets none);"
      " 16, 24 or 32 is offered to callers that set none", 0 },
    { "srt.auth_wait", WEIR_CONF_DURATION, K(srt_auth_wait), "100ms", 0, 2000, NULL,
      "longest an SRT handshake waits for the key store (the wait stalls every SRT stream on"
      " the port); slower answers are decided after accept; 0: always after accept", 0 },
    { "srt.max_bitrate", WEIR_CONF_INT, K(srt_max_bitrate), "100000000", 100000, 10000000000,
      NULL, "bits/s one SRT publisher may send, averaged over srt.max_bitrate_window;"
      " a publisher above it is disconnected", 0 },
    { "srt.max_bitrate_window", WEIR_CONF_DURATION, K(srt_max_bitrate_window), "5s", 1000,
      60000, NULL, "how long the average of srt.max_bitrate runs (bursts shorter than this pass)",
      0 },
};

int weir_ingest_srt_pbkeylen(const weir_ingest_settings *s)
{
    static const int bytes[] = { 0, 16, 24, 32 };
    return s->srt_pbkeylen >= 0 && s->srt_pbkeylen < 4 ? bytes[s->srt_pbkeylen] : -1;
}

const weir_conf_table weir_ingest_conf_table = {
    .module = "ingest",
    .keys = ingest_keys,
    .nkeys = sizeof ingest_keys / sizeof ingest_keys[0],
};
