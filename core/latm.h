/*
 * core/latm.h — AAC in LATM/LOAS (ISO/IEC 14496-3 1.7) to raw AAC frames
 * and an AudioSpecificConfig, the form the bus carries (DESIGN.md §1).
 *
 * Broadcast encoders, and ffmpeg with -mpegts_flags latm, put AAC in
 * MPEG-TS as LOAS: an AudioSyncStream of frames, each
 *
 *   syncword 0x2B7 (11 bits) | audioMuxLengthBytes (13) | AudioMuxElement(1)
 *
 * where the AudioMuxElement carries, now and then, a StreamMuxConfig (with
 * the AudioSpecificConfig inside, not byte-aligned), then the payload length
 * and the raw access unit, again at any bit offset.  libavformat hands such
 * a track over as AV_CODEC_ID_AAC_LATM, one LOAS frame per packet.
 *
 * Only the common case is taken, the one every encoder we know of sends:
 * one program, one layer, one subframe per element, all streams with the
 * same time framing, frameLengthType 0 (variable payload length), an ASC
 * without a program_config_element.  Anything else is AVERROR_PATCHWELCOME
 * and the caller drops the track; malformed input is AVERROR_INVALIDDATA.
 * Every read is bounds-checked (the input comes from the network).
 */
#ifndef WEIR_CORE_LATM_H
#define WEIR_CORE_LATM_H

#include <stddef.h>
#include <stdint.h>

#define WEIR_LATM_ASC_MAX 64        /* bytes: the ASCs taken here are 2-7 */

typedef struct weir_latm {
    /* the last StreamMuxConfig's, valid when asc_len > 0 */
    uint8_t asc[WEIR_LATM_ASC_MAX];
    int asc_len;
    int sample_rate, channels;      /* from the ASC (the core's, before SBR) */
    int object_type;                /* audioObjectType: 2 AAC-LC, 5 SBR, 29 PS, ... */
    int config_changed;             /* set when a config differing from the last came */
    /* per StreamMuxConfig, kept for elements that reuse it */
    int mux_version, crc_present;
    uint32_t other_data_bits;
} weir_latm;

/*
 * One LOAS frame (syncword first) in buf.  On 0, `out` (the caller's, cap
 * bytes; len bytes always suffice) holds one raw AAC access unit of
 * *payload_len (OUT) bytes, and st the config it belongs to.
 * AVERROR(EAGAIN): no config seen yet (an element that reuses one we never
 * had: drop it).  Trailing bytes after the frame are ignored.  st starts
 * zeroed.
 */
int weir_latm_loas_frame(weir_latm *st, const uint8_t *buf, size_t len, uint8_t *out,
                         size_t cap, size_t *payload_len);

#endif
