/*
 * packager/cmaf.h — CMAF (ISO BMFF) boxes for one track: init segments,
 * fragments, RFC 6381 codec strings.  Private to the packager.
 *
 * Pure byte writing: no I/O, no clocks, no global state.  The segmenter
 * decides where fragments start and end; this file only turns a track
 * description and a run of samples into bytes.
 *
 *   init segment:  ftyp  moov( mvhd  trak( tkhd mdia( mdhd hdlr minf( stbl(stsd ...) ) ) )
 *                        mvex( trex ) )
 *   fragment:      [styp]  moof( mfhd  traf( tfhd tfdt trun ) )  mdat
 *
 * One track per file (CMAF), track_id 1.  A segment is one or more
 * fragments ("parts" for LL-HLS) written back to back; the first fragment of
 * a segment carries `styp`.
 *
 * Input conventions (what the bus carries, whatever the ingest protocol):
 *   H.264  extradata is an AVCDecoderConfigurationRecord (avcC); samples are
 *          NAL units with 4-byte big-endian length prefixes.
 *   HEVC   extradata is an HEVCDecoderConfigurationRecord (hvcC); samples as
 *          for H.264.
 *   AV1    extradata is an AV1CodecConfigurationRecord (av1C); samples are
 *          low-overhead OBUs (what libavcodec/FLV deliver).
 *   AAC    extradata is the AudioSpecificConfig; samples are raw frames.
 *   Opus   extradata is the OpusHead (as libavcodec keeps it); raw packets.
 * Anything else, or extradata in another form (Annex B), is AVERROR(EINVAL).
 *
 * Errors are 0 or a negative AVERROR code.
 */
#ifndef WEIR_PACKAGER_CMAF_H
#define WEIR_PACKAGER_CMAF_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

/* A growable byte string.  Zero-initialise; free with weir_bytes_free.
 * Functions that write append to it (they never truncate it). */
typedef struct weir_bytes {
    uint8_t *data;
    size_t len, cap;
} weir_bytes;

void weir_bytes_free(weir_bytes *b);

typedef struct weir_cmaf_track {
    const AVCodecParameters *par;   /* borrowed */
    uint32_t timescale;             /* units per second of every time below */
    const char *language;           /* ISO 639-2/T for mdhd, NULL = "und" */
} weir_cmaf_track;

typedef struct weir_cmaf_sample {
    const uint8_t *data;            /* borrowed; format per the table above */
    size_t size;
    uint32_t duration;              /* timescale units */
    int32_t cts_offset;             /* pts - dts in timescale units; may be < 0 */
    int key;                        /* sync sample (IDR / key frame) */
} weir_cmaf_sample;

/* Appends the init segment (ftyp + moov) for the track to out. */
int weir_cmaf_write_init(const weir_cmaf_track *t, weir_bytes *out);

/* Appends one fragment: `styp` first when with_styp, then moof + mdat
 * holding samples[0..n-1] (n >= 1) in decode order.  sequence is the mfhd
 * sequence number (1, 2, ... across the whole track); base_dts the decode
 * time of samples[0] in timescale units (tfdt, 64-bit).  Sample flags mark
 * sync samples and depends_on; negative composition offsets use trun
 * version 1. */
int weir_cmaf_write_fragment(const weir_cmaf_track *t, uint32_t sequence, uint64_t base_dts,
                             const weir_cmaf_sample *samples, size_t n, int with_styp,
                             weir_bytes *out);

/* The RFC 6381 `codecs` string for the track, from its extradata
 * ("avc1.64001f", "hvc1.1.6.L93.B0", "mp4a.40.2", "opus", "av01.0.04M.08").
 * Returns the string's length, or AVERROR(EINVAL) / AVERROR(ENOSPC). */
int weir_cmaf_codec_string(const AVCodecParameters *par, char *buf, size_t cap);

#endif
