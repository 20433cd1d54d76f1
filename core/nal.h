/*
 * core/nal.h — H.264 / HEVC bitstream forms: Annex B <-> ISO (length-prefixed).
 *
 * Everything on the bus uses the ISO form whatever fed it (DESIGN.md §1:
 * nothing downstream knows which protocol or encoder produced a stream):
 *
 *   extradata   AVCDecoderConfigurationRecord (avcC) / HEVCDecoderConfigurationRecord (hvcC)
 *   packets     NAL units, each preceded by a 4-byte big-endian length
 *
 * RTMP already delivers that form.  MPEG-TS over SRT and libx264/libx265 with
 * global headers deliver Annex B (start codes 00 00 01 / 00 00 00 01, and
 * parameter sets as NAL units in the extradata or in-band before keyframes).
 * A weir_nal_conv turns one such stream into the ISO form.
 *
 * Pure functions over bytes: the input comes from the network, so every
 * length is checked and malformed input is AVERROR_INVALIDDATA, never an
 * out-of-bounds read.  Errors are 0 or a negative AVERROR code.
 */
#ifndef WEIR_CORE_NAL_H
#define WEIR_CORE_NAL_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

/* 1 if buf starts with an Annex B start code (00 00 01 or 00 00 00 01). */
int weir_nal_is_annexb(const uint8_t *buf, size_t len);

/* Builds an avcC (codec AV_CODEC_ID_H264) or hvcC (AV_CODEC_ID_HEVC) record
 * from the parameter sets (SPS/PPS, and VPS for HEVC) found in the Annex B
 * buffer buf.  *out (OUT) is av_malloc'd with AV_INPUT_BUFFER_PADDING_SIZE
 * zeroed bytes after *out_len, so it can become AVCodecParameters.extradata.
 * AVERROR_INVALIDDATA when a required parameter set is missing or malformed;
 * AVERROR(EINVAL) for another codec. */
int weir_nal_config_from_annexb(enum AVCodecID codec, const uint8_t *buf, size_t len,
                                uint8_t **out, size_t *out_len);

/* Converts one Annex B access unit into 4-byte length-prefixed NAL units.
 * Access unit delimiters are dropped; parameter sets are kept in-band (the
 * sample entry is then still correct: decoders accept repeated ones).
 * Without a codec, an AUD is recognised by its exact shape (09 xxx10000 for
 * H.264, 46 01 xxx10000 for HEVC), which no conforming NAL unit of the other
 * codec has; the converter below knows the codec and goes by NAL type.
 * Zero bytes before a start code are not NAL data and are left out.
 * *out (OUT) is av_malloc'd (with padding) and owned by the caller.
 * AVERROR_INVALIDDATA when buf is not Annex B (bytes other than zeros
 * before the first start code) or holds no NAL unit but AUDs. */
int weir_nal_annexb_to_iso(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len);

/* Stateful conversion of one track, for ingest and encoders.
 *
 *   weir_nal_conv_new(par)           par: the track as its source describes it
 *   weir_nal_conv_packet(c, pkt)     rewrites pkt in place (new refcounted buffer)
 *   weir_nal_conv_par(c, par)        the ISO codec parameters, once known
 *
 * When the source's extradata is already ISO (avcC/hvcC) or the codec is not
 * H.264/HEVC, the converter is a pass-through.  When the extradata is Annex B
 * or empty, the config record is built from it or from the parameter sets of
 * the first keyframe; weir_nal_conv_par returns AVERROR(EAGAIN) until then. */
typedef struct weir_nal_conv weir_nal_conv;

int weir_nal_conv_new(const AVCodecParameters *par, weir_nal_conv **out /* OUT */);
/* pkt is rewritten in place: data, size and buf replaced; timestamps and
 * flags kept.  AVERROR_INVALIDDATA for a malformed packet (drop it). */
int weir_nal_conv_packet(weir_nal_conv *c, AVPacket *pkt);
/* Copies the ISO codec parameters into par (caller-owned), extradata
 * included.  0, AVERROR(EAGAIN) before the parameter sets were seen. */
int weir_nal_conv_par(const weir_nal_conv *c, AVCodecParameters *par);
void weir_nal_conv_free(weir_nal_conv *c);   /* NULL is a no-op */

#endif
