/*
 * ingest/rtmp/rtmp_flv.h — FLV tag bodies as RTMP carries them: audio
 * (message type 8) and video (type 9) payloads in, codec parameters and
 * frame regions out.  Also the onMetaData helper and the timestamp
 * unwrapper.  Pure functions over borrowed bytes; nothing is allocated
 * except by the two functions that fill FFmpeg structures.
 *
 * A body parses into a weir_flv_tag of one kind:
 *
 *   CONFIG  codec configuration: AVCDecoderConfigurationRecord (avcC),
 *           HEVCDecoderConfigurationRecord (hvcC), AV1CodecConfigurationRecord
 *           (av1C), VPCodecConfigurationRecord (vpcC), AudioSpecificConfig,
 *           OpusHead.  weir_flv_tag_codecpar turns it into AVCodecParameters
 *           with the record as extradata (the form FFmpeg's decoders and
 *           muxers take).
 *   FRAME   a coded frame: [offset, offset + size) of the body, the
 *           keyframe flag and the composition time offset (pts - dts, ms,
 *           signed 24 bits: negative values are legal).
 *           weir_flv_tag_packet wraps it into an AVPacket without a copy.
 *   EOS     end of sequence (AVC/E-RTMP SequenceEnd).
 *   SKIP    well-formed but nothing for the bus: video command frames,
 *           E-RTMP Metadata (HDR colour info) and MPEG2TSSequenceStart,
 *           audio MultichannelConfig, empty frames.
 *
 * Supported:
 *   video legacy   CodecID 7 (H.264; AVCPacketType 0/1/2, SI24 CTS);
 *                  CodecID 12 (HEVC in the same layout: the pre-E-RTMP
 *                  convention of Chinese CDNs and encoders, as SRS accepts)
 *   video E-RTMP   IsExHeader with FourCC avc1, hvc1 (CodedFrames carry
 *                  SI24 CTS), av01, vp09, vp08 (no CTS); PacketTypes
 *                  SequenceStart, CodedFrames, CodedFramesX, SequenceEnd,
 *                  Metadata, MPEG2TSSequenceStart; ModEx prefixes skipped
 *                  (the nanosecond offset is below our ms resolution)
 *   audio legacy   SoundFormat 10 (AAC: AACPacketType 0 = ASC, 1 = raw),
 *                  2 and 14 (MP3: sample rate and channels from the first
 *                  frame header, else from the tag's flags)
 *   audio E-RTMP   SoundFormat 9 with FourCC mp4a (ASC), Opus (OpusHead),
 *                  .mp3
 * Errors:
 *   AVERROR_PATCHWELCOME  a codec we do not take (Sorenson H.263, VP6,
 *                         screen video, PCM, Nellymoser, G.711, Speex, an
 *                         unknown FourCC) and E-RTMP Multitrack: the
 *                         session logs "unknown codec" and closes.
 *   AVERROR_INVALIDDATA   truncated or malformed bodies and records.
 *
 * Timestamps: RTMP gives 32-bit milliseconds that wrap after 49.7 days,
 * per message; weir_rtmp_ts_unwrap extends them to 64 bits per track.
 * Packets from weir_flv_tag_packet are in milliseconds (time base 1/1000).
 */
#ifndef WEIR_INGEST_RTMP_FLV_H
#define WEIR_INGEST_RTMP_FLV_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "ingest/rtmp/rtmp_amf.h"

#define WEIR_FLV_FOURCC(a, b, c, d) \
    ((uint32_t)(uint8_t)(a) << 24 | (uint32_t)(uint8_t)(b) << 16 | \
     (uint32_t)(uint8_t)(c) << 8 | (uint32_t)(uint8_t)(d))

typedef enum weir_flv_kind {
    WEIR_FLV_CONFIG = 0,
    WEIR_FLV_FRAME,
    WEIR_FLV_EOS,
    WEIR_FLV_SKIP,
} weir_flv_kind;

typedef struct weir_flv_tag {
    weir_flv_kind kind;
    enum AVMediaType media;     /* AVMEDIA_TYPE_VIDEO or _AUDIO */
    enum AVCodecID codec_id;
    uint32_t fourcc;            /* E-RTMP FourCC, 0 for a legacy header */
    int keyframe;               /* FRAME: video frame type 1 or 4; always 1 for audio */
    int32_t cts;                /* FRAME: composition time offset, ms */
    size_t offset, size;        /* CONFIG: the record; FRAME: the frame data */
    /* Legacy audio header flags (0 for E-RTMP audio and for video). */
    int flags_rate;             /* 5512, 11025, 22050, 44100 (8000 for format 14) */
    int flags_channels;         /* 1 or 2 */
} weir_flv_tag;

/* Parse a video (type 9) / audio (type 8) message body (borrowed).
 * 0 with *tag (OUT) filled, or an error as in the header comment. */
int weir_flv_parse_video(const uint8_t *body, size_t len, weir_flv_tag *tag);
int weir_flv_parse_audio(const uint8_t *body, size_t len, weir_flv_tag *tag);

/* Codec parameters from a CONFIG tag, or from an MP3 FRAME (MP3 has no
 * configuration message: its first frame is the config).  body is the
 * same bytes the tag was parsed from.  Sets codec_type, codec_id, and
 * where known sample_rate, ch_layout, profile; replaces par->extradata
 * with a padded copy of the record.  Other fields are left alone: pass a
 * fresh AVCodecParameters.  AVERROR(EINVAL) for other tags,
 * AVERROR_INVALIDDATA for a bad AudioSpecificConfig / OpusHead,
 * AVERROR(ENOMEM). */
int weir_flv_tag_codecpar(const weir_flv_tag *tag, const uint8_t *body,
                          AVCodecParameters *par);

/* A packet for a FRAME tag.  Whatever pkt held is unreferenced first.
 * With buf (the message's buffer, e.g. weir_rtmp_msg.buf, which body must
 * point into, with AV_INPUT_BUFFER_PADDING_SIZE readable bytes after the
 * frame — the chunk reader guarantees both) pkt gets a new reference to it
 * and points at the frame: no copy.  With buf NULL the frame is copied.
 * dts = dts_ms, pts = dts_ms + cts, AV_PKT_FLAG_KEY from the tag; time base
 * 1/1000.  AVERROR(EINVAL) for a non-FRAME tag or a body outside buf,
 * AVERROR(ENOMEM). */
int weir_flv_tag_packet(const weir_flv_tag *tag, AVBufferRef *buf, const uint8_t *body,
                        int64_t dts_ms, AVPacket *pkt);

/* Parses an AudioSpecificConfig: sample rate (the SBR rate for explicit
 * HE-AAC), channels (0 when a program config element decides), object
 * type.  For tests and for the session's logs. */
int weir_flv_parse_asc(const uint8_t *asc, size_t len, int *sample_rate, int *channels,
                       int *object_type);

/* ---- onMetaData -------------------------------------------------------------- */

typedef struct weir_flv_metadata {
    double width, height;           /* pixels; 0 when absent */
    double framerate;               /* "framerate" or "fps"; 0 when absent */
    double video_kbps, audio_kbps;  /* videodatarate, audiodatarate */
    double audio_sample_rate;       /* audiosamplerate */
    double audio_channels;          /* audiochannels, or 2/1 from "stereo" */
    uint32_t video_codec_id;        /* 7, 12, ... or an E-RTMP FourCC; 0 when absent */
    uint32_t audio_codec_id;        /* 10, 2, ... or a FourCC; 0 when absent */
    char encoder[64];               /* "encoder", truncated; "" when absent */
} weir_flv_metadata;

/* From a decoded data message: ["@setDataFrame",] "onMetaData", {...}.
 * 0 with *md (OUT) filled (absent fields zero), AVERROR(ENOENT) when the
 * doc is not onMetaData. */
int weir_flv_metadata_parse(const weir_amf_doc *doc, weir_flv_metadata *md);

/* ---- timestamps ---------------------------------------------------------------- */

/* Per track: extends 32-bit RTMP timestamps to 64 bits across wraps. */
typedef struct weir_rtmp_ts_unwrap {
    int64_t last_raw;   /* last unwrapped value */
    int64_t last_out;   /* last value returned */
    int started;
} weir_rtmp_ts_unwrap;

/* Zero-initialising is the same as this. */
void weir_rtmp_ts_unwrap_init(weir_rtmp_ts_unwrap *u);

/* The 64-bit time of ts: the value nearest the previous one that is
 * congruent to ts mod 2^32 (so a step of up to 2^31 ms either way is a step,
 * not a wrap).  The first call returns ts itself.  The result never goes
 * below the previous result: a timestamp that steps back (an encoder's
 * jitter) is held at the last value, so DTS stays monotonic per track. */
int64_t weir_rtmp_ts_unwrap_next(weir_rtmp_ts_unwrap *u, uint32_t ts);

#endif
