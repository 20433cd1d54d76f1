/*
 * ingest/rtmp/rtmp_chunk.h — the RTMP chunk stream: bytes -> messages
 * (reader) and messages -> bytes (writer), plus the protocol control
 * messages.  No I/O: the session feeds whatever the socket gave it, in any
 * split, and sends whatever the writer appended.
 *
 * Wire format (RTMP 1.0 §5.3).  A message is cut into chunks of at most
 * `chunk size` payload bytes (128 until the peer sends Set Chunk Size).
 * Every chunk starts with
 *
 *   basic header   fmt:2 csid:6        csid 2..63
 *                  fmt:2 0, b1         csid 64 + b1             (64..319)
 *                  fmt:2 1, b1, b2     csid 64 + b1 + 256*b2    (64..65599)
 *   message header fmt 0: ts:24 len:24 type:8 msid:32le  (11 bytes, absolute ts)
 *                  fmt 1: dts:24 len:24 type:8           (7, same stream id)
 *                  fmt 2: dts:24                         (3, same len/type/id)
 *                  fmt 3: nothing                        (continuation, or a new
 *                                                         message like the last)
 *   extended ts    32 bits when the 24-bit field is 0xFFFFFF
 *
 * Per chunk stream id (csid) the reader remembers the last header, so
 * timestamp deltas accumulate per csid.  Chunks of different csids
 * interleave freely; messages on one csid do not.
 *
 * The reader's state machine (one chunk at a time):
 *
 *      +-> [BASIC] --1..3 bytes--> [HEADER] --0/3/7/11 bytes--> [EXT_TS] --+
 *      |                                      (no extended ts: skip) |     |
 *      |                                                              v     v
 *      +---- chunk done (message done: returned to the caller) ---- [PAYLOAD]
 *
 *   transition                       function (rtmp_chunk.c)
 *   BASIC -> HEADER                  basic_done (finds or creates the csid)
 *   HEADER -> EXT_TS or PAYLOAD      msg_header_done -> header_done
 *   EXT_TS -> PAYLOAD                ext_byte (the type-3 continuation
 *                                    heuristic, below) -> header_done
 *   PAYLOAD -> BASIC                 chunk_done; on the last chunk of a
 *                                    message emit (applies control messages),
 *                                    and weir_rtmp_reader_read returns 1
 *   any -> FAILED (sticky r->err)    every check; the connection must close
 *
 * Extended timestamps on type-3 continuation chunks.  The 2012 spec text
 * can be read either way; FFmpeg (rtmppkt.c), librtmp and therefore OBS and
 * GStreamer's rtmpsink repeat the 4-byte extended timestamp on every fmt 3
 * continuation chunk of a message whose header had one, and some other
 * implementations do not.  The reader accepts both: on a continuation
 * chunk, when the csid's last header carried an extended timestamp, it
 * looks at the next 4 bytes; if they equal that header's extended field
 * they are the repeated timestamp and are skipped, otherwise they are
 * payload (SRS takes the same approach).  When fewer than 4 payload bytes
 * remain in the message and the bytes seen so far already differ, it
 * decides "payload" at once, so a short tail cannot stall waiting for
 * bytes the peer will not send until we answer.  The one input that can
 * still stall is a short tail whose bytes happen to equal the start of
 * the timestamp, sent by a peer that does not repeat it, as the last bytes
 * before it waits for us: accepted, as it needs a >4.6-hour timestamp on a
 * command.  A fmt 3 chunk that *starts* a message always carries the
 * extended timestamp when the last header did (everyone agrees on that
 * case).  The writer always repeats it, like FFmpeg and librtmp.
 *
 * Type-3 timestamp delta after a type-0 header: the delta a fmt 3 new
 * message reuses is the last fmt 1/2 delta, or after fmt 0 the fmt 0
 * timestamp itself — FFmpeg's reader and writer both work that way, and
 * FFmpeg's writer relies on it.
 *
 * Protocol control messages the reader applies itself, before returning
 * them to the caller like any other message (so the session can log them):
 *   1 Set Chunk Size   1..2^31-1, for the chunks that follow (including the
 *                      rest of a message already in progress on another csid)
 *   2 Abort            drops the partial message on that csid
 *   5 Window Ack Size  the peer wants an Acknowledgement every N bytes; see
 *                      weir_rtmp_reader_ack_due
 *
 * Limits (weir_rtmp_reader_opts; 0 takes the default), each failing the
 * connection with its own code:
 *   max_message  8 MiB   AVERROR(EMSGSIZE).  The header allows 16 MiB - 1.
 *                        A video message is one frame: 50 Mbit/s at 30 fps
 *                        (high-end 4K contribution) averages ~210 kB a
 *                        frame, and an intra frame 20x that is ~4 MB, so
 *                        8 MiB leaves 2x headroom while keeping a
 *                        connection's worst case small.
 *   max_csids    64      AVERROR(ENOBUFS): distinct csids over the
 *                        connection's life (a slot keeps its csid's header
 *                        state).  Publishers use a handful (FFmpeg: 2, 3,
 *                        4, 6, 8).
 *   max_pending  16 MiB  AVERROR(ENOBUFS): bytes allocated for partial
 *                        messages on all csids together.
 * Buffers grow with the bytes that actually arrive (doubling, up to the
 * declared length), so a header claiming 8 MiB costs nothing until the
 * bytes come.
 *
 * Other errors: AVERROR_INVALIDDATA for protocol violations (a fmt 1/2/3
 * chunk on a csid with no previous header, a fmt 0/1/2 header in the middle
 * of a message on its csid, a bad Set Chunk Size), AVERROR(ENOMEM).
 */
#ifndef WEIR_INGEST_RTMP_CHUNK_H
#define WEIR_INGEST_RTMP_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include <libavutil/buffer.h>

#include "ingest/rtmp/rtmp_buf.h"

#define WEIR_RTMP_DEFAULT_CHUNK_SIZE  128
#define WEIR_RTMP_MAX_CHUNK_SIZE      0x7FFFFFFFu
#define WEIR_RTMP_DEFAULT_MAX_MESSAGE (8u << 20)
#define WEIR_RTMP_DEFAULT_MAX_CSIDS   64
#define WEIR_RTMP_DEFAULT_MAX_PENDING (16u << 20)
#define WEIR_RTMP_MAX_MESSAGE_LEN     0xFFFFFFu    /* the 24-bit length field */
#define WEIR_RTMP_CSID_MIN            2
#define WEIR_RTMP_CSID_MAX            65599

/* Message type ids (RTMP 1.0 §5.4, §7.1). */
enum {
    WEIR_RTMP_MSG_SET_CHUNK_SIZE   = 1,
    WEIR_RTMP_MSG_ABORT            = 2,
    WEIR_RTMP_MSG_ACK              = 3,
    WEIR_RTMP_MSG_USER_CONTROL     = 4,
    WEIR_RTMP_MSG_WINDOW_ACK_SIZE  = 5,
    WEIR_RTMP_MSG_SET_PEER_BW      = 6,
    WEIR_RTMP_MSG_AUDIO            = 8,
    WEIR_RTMP_MSG_VIDEO            = 9,
    WEIR_RTMP_MSG_DATA_AMF3        = 15,
    WEIR_RTMP_MSG_SHARED_OBJ_AMF3  = 16,
    WEIR_RTMP_MSG_COMMAND_AMF3     = 17,
    WEIR_RTMP_MSG_DATA_AMF0        = 18,
    WEIR_RTMP_MSG_SHARED_OBJ_AMF0  = 19,
    WEIR_RTMP_MSG_COMMAND_AMF0     = 20,
    WEIR_RTMP_MSG_AGGREGATE        = 22,
};

/* User Control event types (§7.1.7). */
enum {
    WEIR_RTMP_UC_STREAM_BEGIN      = 0,
    WEIR_RTMP_UC_STREAM_EOF        = 1,
    WEIR_RTMP_UC_STREAM_DRY        = 2,
    WEIR_RTMP_UC_SET_BUFFER_LENGTH = 3,
    WEIR_RTMP_UC_STREAM_IS_RECORDED = 4,
    WEIR_RTMP_UC_PING_REQUEST      = 6,
    WEIR_RTMP_UC_PING_RESPONSE     = 7,
};

/* Set Peer Bandwidth limit types (§5.4.5). */
enum {
    WEIR_RTMP_BW_HARD    = 0,
    WEIR_RTMP_BW_SOFT    = 1,
    WEIR_RTMP_BW_DYNAMIC = 2,
};

/* Chunk stream ids a server conventionally uses for what it sends. */
#define WEIR_RTMP_CSID_CONTROL 2    /* protocol control + user control */
#define WEIR_RTMP_CSID_COMMAND 3    /* command replies */

/* One complete message. */
typedef struct weir_rtmp_msg {
    uint8_t type;           /* message type id */
    uint32_t stream_id;     /* message stream id */
    uint32_t timestamp;     /* milliseconds, 32 bits, wraps (see rtmp_flv.h for unwrapping) */
    uint32_t csid;          /* chunk stream it arrived on */
    AVBufferRef *buf;       /* payload holder: the caller owns this reference.
                               buf->data[0..len) is the payload, followed by
                               AV_INPUT_BUFFER_PADDING_SIZE zero bytes, so a
                               slice of it can become an AVPacket without a
                               copy. */
    const uint8_t *data;    /* == buf->data */
    size_t len;             /* payload length (may be 0) */
} weir_rtmp_msg;

typedef struct weir_rtmp_reader_opts {
    uint32_t max_message;   /* bytes; 0 -> 8 MiB; at most 16 MiB - 1 */
    uint32_t max_csids;     /* 0 -> 64 */
    uint32_t max_pending;   /* bytes; 0 -> 16 MiB */
} weir_rtmp_reader_opts;

typedef struct weir_rtmp_reader weir_rtmp_reader;

/* A new reader (chunk size 128), owned by the caller; free with
 * weir_rtmp_reader_free.  opts may be NULL (defaults).  AVERROR(EINVAL) for
 * out-of-range opts, AVERROR(ENOMEM). */
int weir_rtmp_reader_new(const weir_rtmp_reader_opts *opts, weir_rtmp_reader **out);
/* Frees the reader and every partial message.  NULL: no-op. */
void weir_rtmp_reader_free(weir_rtmp_reader *r);

/* Pull interface.  Consumes bytes from data[0..len) (borrowed) until a
 * message completes or the input runs out; *consumed (OUT) says how many.
 *   1: *msg (OUT) holds a message; the caller owns msg->buf (av_buffer_unref).
 *      Call again with data + *consumed for the rest.
 *   0: all len bytes consumed; no message yet.  Call again when more arrive.
 *  <0: error (see the header comment); the reader stays failed: every later
 *      call returns the same error.  Close the connection.
 * Control messages that affect reading were applied before 1 is returned. */
int weir_rtmp_reader_read(weir_rtmp_reader *r, const uint8_t *data, size_t len,
                          size_t *consumed, weir_rtmp_msg *msg);

/* Callback interface over the same machinery: feeds all len bytes, calling
 * cb for each message.  cb takes ownership of msg->buf.  A negative return
 * from cb stops feeding and is returned (the reader itself is not failed:
 * the rest of the input was simply not consumed). */
typedef int (*weir_rtmp_msg_cb)(void *arg, weir_rtmp_msg *msg);
int weir_rtmp_reader_feed(weir_rtmp_reader *r, const uint8_t *data, size_t len,
                          weir_rtmp_msg_cb cb, void *arg);

/* Current incoming chunk size. */
uint32_t weir_rtmp_reader_chunk_size(const weir_rtmp_reader *r);
/* Bytes consumed since the reader was created (the count Acknowledgement
 * reports, before its 32-bit wrap). */
uint64_t weir_rtmp_reader_bytes(const weir_rtmp_reader *r);
/* The session may count the handshake's bytes too (the spec counts every
 * byte received): adds n to the byte count. */
void weir_rtmp_reader_add_bytes(weir_rtmp_reader *r, uint64_t n);
/* 1 when the peer's window (from its Window Acknowledgement Size) has been
 * filled since the last acknowledgement: *seq (OUT) is the sequence number
 * to send in an Acknowledgement (bytes received, mod 2^32), and the window
 * restarts.  0 when none is due or the peer never set a window. */
int weir_rtmp_reader_ack_due(weir_rtmp_reader *r, uint32_t *seq);

/* ---- writer ------------------------------------------------------------- */

/* Outgoing state: the chunk size the peer expects from us.  Plain data, no
 * allocation; one per connection. */
typedef struct weir_rtmp_writer {
    uint32_t chunk_size;    /* 128 until weir_rtmp_write_set_chunk_size */
} weir_rtmp_writer;

void weir_rtmp_writer_init(weir_rtmp_writer *w);

/* Appends one message as chunks to out: a fmt 0 chunk, then fmt 3
 * continuations every chunk_size bytes (each repeating the extended
 * timestamp when timestamp >= 0xFFFFFF).  payload is borrowed.
 * AVERROR(EINVAL) for a csid outside 2..65599 or len > 16 MiB - 1;
 * AVERROR(ENOMEM). */
int weir_rtmp_write_message(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t csid,
                            uint8_t type, uint32_t stream_id, uint32_t timestamp,
                            const uint8_t *payload, size_t len);

/* Protocol control messages, on csid 2, message stream 0, timestamp 0. */
/* Set Chunk Size; w->chunk_size takes the new size for later messages.
 * AVERROR(EINVAL) outside 1..2^31-1. */
int weir_rtmp_write_set_chunk_size(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t size);
int weir_rtmp_write_abort(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t csid);
int weir_rtmp_write_ack(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t seq);
int weir_rtmp_write_window_ack_size(weir_rtmp_writer *w, weir_rtmp_buf *out, uint32_t size);
int weir_rtmp_write_set_peer_bandwidth(weir_rtmp_writer *w, weir_rtmp_buf *out,
                                       uint32_t size, uint8_t limit_type);
/* User Control with one 32-bit argument: Stream Begin / EOF / Dry / Is
 * Recorded (stream id), Ping Request / Response (timestamp). */
int weir_rtmp_write_user_control(weir_rtmp_writer *w, weir_rtmp_buf *out,
                                 uint16_t event, uint32_t value);

/* ---- parsing control messages ---------------------------------------------- */

/* The 32-bit value of Set Chunk Size, Abort, Acknowledgement and Window
 * Acknowledgement Size.  AVERROR_INVALIDDATA when shorter than 4 bytes. */
int weir_rtmp_parse_u32(const weir_rtmp_msg *msg, uint32_t *value);
/* Set Peer Bandwidth: window and limit type. */
int weir_rtmp_parse_peer_bandwidth(const weir_rtmp_msg *msg, uint32_t *size, uint8_t *limit_type);
/* User Control: event type and its first 32-bit argument (0 if the event
 * has none); Set Buffer Length's second argument in *extra (may be NULL). */
int weir_rtmp_parse_user_control(const weir_rtmp_msg *msg, uint16_t *event,
                                 uint32_t *value, uint32_t *extra);

#endif
