/*
 * core/norm.h — one track from a demuxer's form into the bus's form.
 *
 * The bus carries what RTMP and MP4 carry: H.264/HEVC as avcC/hvcC plus
 * length-prefixed NAL units, AAC as an AudioSpecificConfig plus raw frames.
 * MPEG-TS (SRT, .ts files) carries Annex B and ADTS instead.  A weir_norm
 * converts one track: H.264/HEVC through a weir_nal_conv (core/nal.h), AAC
 * through libavcodec's aac_adtstoasc, AAC in LATM/LOAS through core/latm.h
 * (it becomes plain AAC: codec AV_CODEC_ID_AAC on the bus); anything else
 * passes as demuxed.
 *
 *   weir_norm_new(par, tb)      par as the demuxer describes the track
 *   weir_norm_packet(n, pkt)    pkt rewritten in place, in the bus's form
 *   weir_norm_par(n)            the bus's parameters, once known (NULL before:
 *                               the parameter sets or the first ADTS header
 *                               have not come yet)
 *
 * One thread at a time per weir_norm.  Errors are 0 or a negative AVERROR.
 */
#ifndef WEIR_CORE_NORM_H
#define WEIR_CORE_NORM_H

#include <libavcodec/avcodec.h>

typedef struct weir_norm weir_norm;

/* 0 with *out (OUT, caller frees with weir_norm_free), or AVERROR. */
int weir_norm_new(const AVCodecParameters *par, AVRational time_base, weir_norm **out);

/* Rewrites pkt (its buffer may be replaced).  0: pkt is ready;
 * AVERROR(EAGAIN): nothing to send for it (consumed); AVERROR(ENOMEM);
 * another error: a malformed packet, consumed or to be dropped. */
int weir_norm_packet(weir_norm *n, AVPacket *pkt);

/* The track's parameters in the bus's form (owned by n, codec_tag 0), or
 * NULL while they are not known yet. */
const AVCodecParameters *weir_norm_par(const weir_norm *n);

void weir_norm_free(weir_norm *n);     /* NULL is a no-op */

#endif
