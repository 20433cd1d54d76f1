/*
 * Unit tests for the RTMP session from byte sequences: the exact reply
 * sequence of the OBS publish flow (connect, releaseStream, FCPublish,
 * createStream, publish), the stream appearing on the bus with its tracks,
 * and a refused key.  No socket: the test plays the client.
 */
#include <criterion/criterion.h>
#include <string.h>

#include <libavutil/error.h>

#include "ingest/rtmp/rtmp_amf.h"
#include "ingest/rtmp/rtmp_chunk.h"
#include "ingest/rtmp/rtmp_handshake.h"
#include "ingest/rtmp/rtmp_session.h"

typedef struct fake_conn {
    int want_write, closed;
} fake_conn;

static void want_write(void *c) { ((fake_conn *)c)->want_write++; }
static void close_conn(void *c) { ((fake_conn *)c)->closed++; }

/* A stub key store: "good" publishes "cam"; the answer comes when the test
 * calls answer(), as the work pool would answer later. */
static weir_publish_auth_done pending_done;
static void *pending_arg;
static char asked_key[64];

static int stub_auth(void *ctx, const char *key, weir_publish_auth_done done, void *arg)
{
    (void)ctx;
    snprintf(asked_key, sizeof asked_key, "%s", key);
    pending_done = done;
    pending_arg = arg;
    return 0;
}

static void answer(void)
{
    weir_publish_auth_done done = pending_done;
    pending_done = NULL;
    if (strcmp(asked_key, "good") == 0)
        done(pending_arg, 0, "cam", NULL);
    else
        done(pending_arg, AVERROR(EACCES), NULL, NULL);
}

typedef struct client {
    weir_loop *loop;
    weir_bus *bus;
    weir_ingest_settings settings;
    int publishers;
    fake_conn conn;
    rtmp_session *s;
    weir_rtmp_reader *reader;       /* reads what the server sends */
    weir_rtmp_writer writer;
    /* what came back, in order: "type:name" strings */
    char seen[32][64];
    int nseen;
} client;

static void setup_client(client *c, int auth_open)
{
    memset(c, 0, sizeof *c);
    c->loop = weir_loop_new(NULL);
    c->bus = weir_bus_new();
    c->settings = (weir_ingest_settings){
        .auth = auth_open ? WEIR_INGEST_AUTH_OPEN : WEIR_INGEST_AUTH_KEYS, .max_publishers = 4,
        .rtmp_handshake_timeout = 10000, .rtmp_idle_timeout = 10000,
        .rtmp_max_message = 8 << 20, .rtmp_chunk_size = 4096,
    };
    rtmp_env env = { .loop = c->loop, .bus = c->bus, .settings = &c->settings,
                     .auth = stub_auth, .publishers = &c->publishers,
                     .want_write = want_write, .close = close_conn };
    cr_assert_not_null(c->s = rtmp_session_new(&env, &c->conn, "127.0.0.1:1234"));
    cr_assert_eq(weir_rtmp_reader_new(NULL, &c->reader), 0);
    weir_rtmp_writer_init(&c->writer);
}

static void teardown_client(client *c)
{
    rtmp_session_closed(c->s);
    weir_rtmp_reader_free(c->reader);
    weir_bus_free(c->bus);
    weir_loop_free(c->loop);
}

static int record(void *arg, weir_rtmp_msg *msg)
{
    client *c = arg;
    char what[64];
    snprintf(what, sizeof what, "%d", msg->type);
    if (msg->type == WEIR_RTMP_MSG_COMMAND_AMF0) {
        weir_amf_doc doc;
        weir_amf_command cmd;
        cr_assert_eq(weir_amf_decode(msg->data, msg->len, NULL, &doc), 0);
        cr_assert_eq(weir_amf_command_parse(&doc, &cmd), 0);
        /* onStatus: name the code; _result: the transaction id. */
        const weir_amf_value *info = cmd.args;
        const char *code = info ? weir_amf_get_string(info, "code") : NULL;
        if (code)
            snprintf(what, sizeof what, "%s:%s", cmd.name, code);
        else
            snprintf(what, sizeof what, "%s:%g", cmd.name, cmd.txid);
        weir_amf_doc_free(&doc);
    }
    cr_assert_lt(c->nseen, 32);
    snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", what);
    av_buffer_unref(&msg->buf);
    return 0;
}

/* Takes everything the session queued and parses it as the client would. */
static void pump(client *c)
{
    size_t n;
    const uint8_t *p = rtmp_session_pending(c->s, &n);
    if (n) {
        cr_assert_geq(weir_rtmp_reader_feed(c->reader, p, n, record, c), 0);
        rtmp_session_sent(c->s, n);
    }
}

static void send_raw(client *c, const uint8_t *p, size_t n)
{
    cr_assert_eq(rtmp_session_rx(c->s, p, n), 0);
}

static void handshake(client *c)
{
    uint8_t c0c1[1 + 1536] = { 3 }, c2[1536] = { 0 };
    size_t n;
    for (size_t i = 9; i < sizeof c0c1; i++)
        c0c1[i] = (uint8_t)(i * 7);
    send_raw(c, c0c1, sizeof c0c1);
    rtmp_session_pending(c->s, &n);
    cr_assert_eq(n, 1 + 1536 * 2, "S0 S1 S2 expected, got %zu bytes", n);
    rtmp_session_sent(c->s, n);
    send_raw(c, c2, sizeof c2);
}

/* Sends a command built by the caller into b. */
static void send_command(client *c, weir_rtmp_buf *b, uint32_t msid)
{
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    cr_assert_eq(b->err, 0);
    cr_assert_eq(weir_rtmp_write_message(&c->writer, &out, 3, WEIR_RTMP_MSG_COMMAND_AMF0, msid,
                                         0, b->data, b->len), 0);
    send_raw(c, out.data, out.len);
    weir_rtmp_buf_free(&out);
    weir_rtmp_buf_reset(b);
}

static void obs_flow(client *c, const char *key)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;

    handshake(c);
    weir_amf_put_string(&b, "connect");
    weir_amf_put_number(&b, 1);
    weir_amf_put_object_begin(&b);
    weir_amf_put_key(&b, "app");
    weir_amf_put_string(&b, "live");
    weir_amf_put_key(&b, "type");
    weir_amf_put_string(&b, "nonprivate");
    weir_amf_put_key(&b, "flashVer");
    weir_amf_put_string(&b, "FMLE/3.0 (compatible; FMSc/1.0)");
    weir_amf_put_key(&b, "tcUrl");
    weir_amf_put_string(&b, "rtmp://127.0.0.1:1935/live");
    weir_amf_put_object_end(&b);
    send_command(c, &b, 0);
    pump(c);

    const char *calls[] = { "releaseStream", "FCPublish" };
    for (int i = 0; i < 2; i++) {
        weir_amf_put_string(&b, calls[i]);
        weir_amf_put_number(&b, 2 + i);
        weir_amf_put_null(&b);
        weir_amf_put_string(&b, key);
        send_command(c, &b, 0);
    }
    weir_amf_put_string(&b, "createStream");
    weir_amf_put_number(&b, 4);
    weir_amf_put_null(&b);
    send_command(c, &b, 0);
    weir_amf_put_string(&b, "publish");
    weir_amf_put_number(&b, 5);
    weir_amf_put_null(&b);
    weir_amf_put_string(&b, key);
    weir_amf_put_string(&b, "live");
    send_command(c, &b, 1);
    weir_rtmp_buf_free(&b);
    pump(c);
}

static void expect_seen(const client *c, const char *const *want, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert(i < c->nseen && strcmp(c->seen[i], want[i]) == 0,
                  "reply %d: want %s, got %s", i, want[i], i < c->nseen ? c->seen[i] : "(none)");
    cr_assert_eq(c->nseen, n, "%d replies, want %d", c->nseen, n);
}

Test(rtmp_session, obs_publish_flow_replies_in_order)
{
    client c;
    static const char *const want[] = {
        "5",                                    /* Window Acknowledgement Size */
        "6",                                    /* Set Peer Bandwidth */
        "1",                                    /* Set Chunk Size */
        "_result:NetConnection.Connect.Success",
        "onBWDone:0",
        "_result:2",                            /* releaseStream */
        "_result:3",                            /* FCPublish */
        "onFCPublish:NetStream.Publish.Start",
        "_result:4",                            /* createStream -> stream 1 */
        "4",                                    /* User Control: Stream Begin */
        "onStatus:NetStream.Publish.Start",
    };

    setup_client(&c, 0);
    obs_flow(&c, "good");
    cr_assert_str_eq(asked_key, "good");
    cr_assert_null(weir_bus_find(c.bus, "cam"), "published before the key was checked");
    answer();
    pump(&c);
    expect_seen(&c, want, sizeof want / sizeof want[0]);
    cr_assert_eq(c.publishers, 1);
    weir_stream *s = weir_bus_find(c.bus, "cam");
    cr_assert_not_null(s, "the key's stream is not on the bus");
    weir_stream_unref(s);
    cr_assert_eq(c.conn.closed, 0);
    teardown_client(&c);
}

Test(rtmp_session, refused_key_gets_bad_name_and_closes)
{
    client c;
    setup_client(&c, 0);
    obs_flow(&c, "wrong");
    answer();
    pump(&c);
    cr_assert_str_eq(c.seen[c.nseen - 1], "onStatus:NetStream.Publish.BadName");
    cr_assert_eq(c.conn.closed, 1);
    cr_assert_eq(weir_bus_count(c.bus), 0);
    cr_assert_eq(c.publishers, 0);
    teardown_client(&c);
}

Test(rtmp_session, media_reaches_the_bus)
{
    client c;
    weir_rtmp_buf out = WEIR_RTMP_BUF_INIT;
    /* AVC sequence header (a minimal avcC) and one keyframe NALU; then an
     * AAC AudioSpecificConfig (LC, 48 kHz, stereo) and one raw frame. */
    static const uint8_t avc_seq[] = { 0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4,
                                       0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80 };
    static const uint8_t avc_key[] = { 0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88 };
    static const uint8_t aac_seq[] = { 0xaf, 0, 0x11, 0x90 };
    static const uint8_t aac_raw[] = { 0xaf, 1, 0x21, 0x10, 0x04 };

    setup_client(&c, 1);
    obs_flow(&c, "open1");
    cr_assert_eq(c.publishers, 1);
    weir_stream *s = weir_bus_find(c.bus, "open1");
    cr_assert_not_null(s);
    weir_rtmp_write_message(&c.writer, &out, 6, WEIR_RTMP_MSG_VIDEO, 1, 0, avc_seq, sizeof avc_seq);
    weir_rtmp_write_message(&c.writer, &out, 4, WEIR_RTMP_MSG_AUDIO, 1, 0, aac_seq, sizeof aac_seq);
    weir_rtmp_write_message(&c.writer, &out, 6, WEIR_RTMP_MSG_VIDEO, 1, 40, avc_key, sizeof avc_key);
    weir_rtmp_write_message(&c.writer, &out, 4, WEIR_RTMP_MSG_AUDIO, 1, 21, aac_raw, sizeof aac_raw);
    send_raw(&c, out.data, out.len);
    weir_rtmp_buf_free(&out);
    cr_assert_eq(weir_stream_ntracks(s), 2);
    AVCodecParameters *par = avcodec_parameters_alloc();
    cr_assert_eq(weir_stream_track_get(s, 0, par, NULL), 0);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_H264);
    cr_assert_eq(weir_stream_track_get(s, 1, par, NULL), 0);
    cr_assert_eq(par->codec_id, AV_CODEC_ID_AAC);
    cr_assert_eq(par->sample_rate, 48000);
    avcodec_parameters_free(&par);
    weir_stream_info info;
    weir_stream_info_get(s, &info);
    cr_assert_eq(info.packets, 2);
    cr_assert_str_eq(info.publisher.protocol, "rtmp");
    weir_stream_unref(s);
    teardown_client(&c);
}
