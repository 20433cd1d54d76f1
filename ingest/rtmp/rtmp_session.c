/*
 * ingest/rtmp/rtmp_session.c — see rtmp_session.h for the state machine.
 *
 * Lifetime.  A session is refcounted: the connection holds one reference
 * until the socket closes; an authorisation in flight on the work pool and a
 * kick posted from another thread hold one each.  So whatever answers late
 * finds the session still there, sees it closed, and lets it go.
 */
#include "ingest/rtmp/rtmp_session.h"
#include "ingest/rtmp/rtmp_amf.h"
#include "ingest/rtmp/rtmp_chunk.h"
#include "ingest/rtmp/rtmp_flv.h"
#include "ingest/rtmp/rtmp_handshake.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#define SESSION_STREAM_ID   1           /* the message stream createStream hands out */
#define CSID_STATUS         5           /* onStatus on the publish stream */
#define WINDOW_ACK_SIZE     2500000
#define PENDING_MAX         64          /* frames held while tracks are announced */
#define TAKEOVER_RETRY_US   50000
#define TAKEOVER_TRIES      40          /* 2 s */

typedef enum state {
    S_HANDSHAKE, S_CONNECTING, S_CONNECTED, S_AUTHORIZING, S_PUBLISHING, S_CLOSING,
} state;

static const char *const state_names[] = {
    "handshake", "connecting", "connected", "authorizing", "publishing", "closing",
};

typedef struct pending_pkt {
    AVPacket *pkt;
    enum AVMediaType media;
} pending_pkt;

struct rtmp_session {
    atomic_int refs;
    rtmp_env env;
    void *conn;                 /* NULL once the socket closed */
    char remote[64];
    state st;
    int err;                    /* why it is closing */

    weir_rtmp_handshake hs;
    weir_rtmp_reader *reader;
    weir_rtmp_writer writer;
    weir_rtmp_buf out;
    size_t out_off;

    char app[64];
    char key[128];              /* a secret: never logged */
    char name[65];              /* the stream it publishes */
    uint32_t publish_msid;
    weir_stream *stream;
    int counted;                /* in env->publishers */
    weir_timer takeover;
    int takeover_tries;
    int64_t started_us;

    weir_flv_metadata md;
    int have_md;
    AVCodecParameters *par[2];  /* [0] video, [1] audio: configurations seen */
    int track[2];               /* bus track index, -1 none */
    int started;                /* tracks frozen on the bus */
    pending_pkt pending[PENDING_MAX];
    int npending;
    weir_rtmp_ts_unwrap ts[2];
    uint64_t packets, dropped;
    int warned_config_change;
};

static int media_index(enum AVMediaType t) { return t == AVMEDIA_TYPE_VIDEO ? 0 : 1; }

/* ---- lifetime --------------------------------------------------------------- */

static void session_ref(rtmp_session *s) { atomic_fetch_add(&s->refs, 1); }

static void session_free(rtmp_session *s)
{
    for (int i = 0; i < s->npending; i++)
        av_packet_free(&s->pending[i].pkt);
    avcodec_parameters_free(&s->par[0]);
    avcodec_parameters_free(&s->par[1]);
    weir_rtmp_reader_free(s->reader);
    weir_rtmp_buf_free(&s->out);
    memset(s->key, 0, sizeof s->key);
    free(s);
}

static void session_unref(rtmp_session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1)
        session_free(s);
}

rtmp_session *rtmp_session_new(const rtmp_env *env, void *conn, const char *remote)
{
    rtmp_session *s = calloc(1, sizeof *s);
    weir_rtmp_reader_opts ro = { .max_message = (uint32_t)env->settings->rtmp_max_message };

    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->env = *env;
    s->conn = conn;
    snprintf(s->remote, sizeof s->remote, "%s", remote);
    s->track[0] = s->track[1] = -1;
    s->started_us = weir_clock_mono_us();
    weir_rtmp_handshake_init(&s->hs, NULL, NULL, (uint32_t)(weir_clock_unix_ms() & 0xffffffff));
    weir_rtmp_writer_init(&s->writer);
    if (weir_rtmp_reader_new(&ro, &s->reader) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* ---- output ------------------------------------------------------------------ */

const uint8_t *rtmp_session_pending(rtmp_session *s, size_t *len)
{
    *len = s->out.len - s->out_off;
    return s->out.data + s->out_off;
}

void rtmp_session_sent(rtmp_session *s, size_t n)
{
    s->out_off += n;
    if (s->out_off >= s->out.len) {
        weir_rtmp_buf_reset(&s->out);
        s->out_off = 0;
    }
}

static void flush(rtmp_session *s)
{
    if (s->conn && s->out.len > s->out_off)
        s->env.want_write(s->conn);
}

/* A command message (AMF0) on csid/msid. */
static int send_command(rtmp_session *s, uint32_t csid, uint32_t msid, const weir_rtmp_buf *body)
{
    if (body->err)
        return body->err;
    return weir_rtmp_write_message(&s->writer, &s->out, csid, WEIR_RTMP_MSG_COMMAND_AMF0, msid,
                                   0, body->data, body->len);
}

static int send_status(rtmp_session *s, const char *level, const char *code, const char *desc)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    int r;
    weir_amf_build_on_status(&b, level, code, desc, s->name[0] ? s->name : NULL);
    r = send_command(s, CSID_STATUS, s->publish_msid, &b);
    weir_rtmp_buf_free(&b);
    flush(s);
    return r;
}

/* ---- the stream on the bus ------------------------------------------------------ */

static void end_stream(rtmp_session *s)
{
    if (s->stream) {
        double secs = (double)(weir_clock_mono_us() - s->started_us) / 1e6;
        weir_log_info("rtmp", "unpublished", WL_STR("stream", s->name),
                      WL_STR("remote", s->remote), WL_DOUBLE("seconds", secs),
                      WL_UINT("packets", s->packets), WL_UINT("dropped", s->dropped));
        weir_stream_end(s->stream);     /* drops our reference */
        s->stream = NULL;
    }
    if (s->counted) {
        (*s->env.publishers)--;
        weir_gauge_dec(s->env.publishers_gauge);
        s->counted = 0;
    }
}

/* Runs on the loop: an API call asked this publisher to go. */
static void kick_on_loop(void *arg)
{
    rtmp_session *s = arg;
    if (s->conn && s->st != S_CLOSING) {
        weir_log_info("rtmp", "publisher kicked", WL_STR("stream", s->name),
                      WL_STR("remote", s->remote));
        s->st = S_CLOSING;
        s->env.close(s->conn);
    }
    session_unref(s);
}

/* Any thread, under the stream's lock (bus.h): ask the loop. */
static void kick(void *arg)
{
    rtmp_session *s = arg;
    session_ref(s);
    if (weir_loop_post(s->env.loop, kick_on_loop, s) < 0)
        session_unref(s);       /* cannot fail to drop the last ref here: the conn holds one */
}

static void set_publisher_info(rtmp_session *s)
{
    weir_publisher_info pi = { .protocol = "rtmp", .kick = kick, .kick_arg = s };
    snprintf(pi.remote, sizeof pi.remote, "%s", s->remote);
    snprintf(pi.encoder, sizeof pi.encoder, "%s", s->md.encoder);
    if (s->md.framerate > 0)
        pi.framerate = av_d2q(s->md.framerate, 1001000);
    weir_stream_set_publisher(s->stream, &pi);
}

static void fail(rtmp_session *s, int err, const char *why)
{
    if (s->st == S_CLOSING)
        return;
    weir_log_warn("rtmp", "closing connection", WL_STR("remote", s->remote),
                  WL_STR("state", state_names[s->st]), WL_STR("reason", why), WL_ERR(err));
    s->err = err;
    s->st = S_CLOSING;
    if (s->conn)
        s->env.close(s->conn);
}

static void try_publish(rtmp_session *s);

static void takeover_retry(weir_timer *t)
{
    rtmp_session *s = (rtmp_session *)((char *)t - offsetof(rtmp_session, takeover));
    try_publish(s);
}

/* The key is good: claim the name on the bus. */
static void try_publish(rtmp_session *s)
{
    int r;

    if (!s->conn || s->st != S_AUTHORIZING)
        return;
    if (*s->env.publishers >= s->env.settings->max_publishers) {
        send_status(s, "error", "NetStream.Publish.BadName", "Too many publishers.");
        fail(s, AVERROR(EBUSY), "ingest.max_publishers reached");
        return;
    }
    r = weir_bus_publish(s->env.bus, s->name, NULL, &s->stream);
    if (r == AVERROR(EEXIST) && s->env.settings->on_duplicate == WEIR_INGEST_DUP_TAKEOVER &&
        s->takeover_tries++ < TAKEOVER_TRIES) {
        if (s->takeover_tries == 1) {
            weir_stream *old = weir_bus_find(s->env.bus, s->name);
            weir_log_info("rtmp", "taking over stream", WL_STR("stream", s->name),
                          WL_STR("remote", s->remote));
            if (old) {
                weir_stream_kick(old);
                weir_stream_unref(old);
            }
        }
        weir_timer_start(s->env.loop, &s->takeover, TAKEOVER_RETRY_US, takeover_retry);
        return;
    }
    if (r == AVERROR(EEXIST)) {
        send_status(s, "error", "NetStream.Publish.BadName", "Stream already publishing.");
        fail(s, r, "stream already has a publisher");
        return;
    }
    if (r < 0) {
        send_status(s, "error", "NetStream.Publish.Failed", "Cannot publish.");
        fail(s, r, "bus publish failed");
        return;
    }
    s->st = S_PUBLISHING;
    s->counted = 1;
    (*s->env.publishers)++;
    weir_gauge_inc(s->env.publishers_gauge);
    s->started_us = weir_clock_mono_us();
    set_publisher_info(s);
    weir_rtmp_write_user_control(&s->writer, &s->out, WEIR_RTMP_UC_STREAM_BEGIN,
                                 s->publish_msid);
    send_status(s, "status", "NetStream.Publish.Start", "Start publishing.");
    weir_log_info("rtmp", "publishing", WL_STR("stream", s->name), WL_STR("remote", s->remote),
                  WL_STR("app", s->app));
}

static void on_authorized(void *arg, int result, const char *stream, const char *srt_passphrase)
{
    rtmp_session *s = arg;

    (void)srt_passphrase;       /* SRT's alone */
    if (s->conn && s->st == S_AUTHORIZING) {
        if (result < 0) {
            send_status(s, "error", "NetStream.Publish.BadName", "Unknown or revoked stream key.");
            fail(s, result, result == AVERROR(EACCES) ? "unknown or revoked stream key"
                                                      : "key store unavailable");
        } else {
            snprintf(s->name, sizeof s->name, "%s", stream);
            try_publish(s);
        }
    }
    session_unref(s);
}

/* ---- media ------------------------------------------------------------------- */

static void write_packet(rtmp_session *s, AVPacket *pkt, enum AVMediaType media)
{
    int t = s->track[media_index(media)];
    if (t < 0) {
        s->dropped++;
        return;
    }
    pkt->stream_index = t;
    if (weir_stream_write(s->stream, pkt) < 0)
        s->dropped++;
    else
        s->packets++;
}

/* Freezes the tracks (video first) and sends the frames held so far. */
static int start_tracks(rtmp_session *s)
{
    for (int i = 0; i < 2; i++) {
        if (!s->par[i])
            continue;
        if (i == 0 && s->par[0]->width == 0 && s->md.width > 0) {
            s->par[0]->width = (int)s->md.width;
            s->par[0]->height = (int)s->md.height;
        }
        s->track[i] = weir_stream_add_track(s->stream, s->par[i], (AVRational){ 1, 1000 });
        if (s->track[i] < 0)
            return s->track[i];
    }
    s->started = 1;
    weir_log_info("rtmp", "tracks", WL_STR("stream", s->name),
                  WL_STR("video", s->par[0] ? avcodec_get_name(s->par[0]->codec_id) : "none"),
                  WL_STR("audio", s->par[1] ? avcodec_get_name(s->par[1]->codec_id) : "none"),
                  WL_INT("width", s->par[0] ? s->par[0]->width : 0),
                  WL_INT("height", s->par[0] ? s->par[0]->height : 0));
    for (int i = 0; i < s->npending; i++) {
        write_packet(s, s->pending[i].pkt, s->pending[i].media);
        av_packet_free(&s->pending[i].pkt);
    }
    s->npending = 0;
    return 0;
}

/* Every announced track has its configuration, or we waited long enough. */
static int ready_to_start(const rtmp_session *s)
{
    int want_video = s->par[0] || (s->have_md && s->md.video_codec_id);
    int want_audio = s->par[1] || (s->have_md && s->md.audio_codec_id);
    if (s->npending >= PENDING_MAX)
        return 1;
    return (!want_video || s->par[0]) && (!want_audio || s->par[1]) && (s->par[0] || s->par[1]);
}

static int on_config(rtmp_session *s, const weir_flv_tag *tag, const uint8_t *body)
{
    int i = media_index(tag->media);
    AVCodecParameters *par;
    int r;

    if (s->started) {
        /* The bus's tracks are fixed; a new configuration mid-stream (an
         * encoder restart) is not followed yet. */
        if (s->track[i] >= 0 && !s->warned_config_change) {
            s->warned_config_change = 1;
            weir_log_warn("rtmp", "codec configuration repeated mid-stream; keeping the first",
                          WL_STR("stream", s->name));
        }
        return 0;
    }
    if (!(par = avcodec_parameters_alloc()))
        return AVERROR(ENOMEM);
    if ((r = weir_flv_tag_codecpar(tag, body, par)) < 0) {
        avcodec_parameters_free(&par);
        return r;
    }
    avcodec_parameters_free(&s->par[i]);
    s->par[i] = par;
    return 0;
}

static int on_media(rtmp_session *s, const weir_rtmp_msg *msg)
{
    weir_flv_tag tag;
    AVPacket *pkt;
    int64_t dts;
    int r = msg->type == WEIR_RTMP_MSG_VIDEO ? weir_flv_parse_video(msg->data, msg->len, &tag)
                                             : weir_flv_parse_audio(msg->data, msg->len, &tag);
    if (r == AVERROR_PATCHWELCOME) {
        fail(s, r, "unknown codec");
        return r;
    }
    if (r < 0) {
        fail(s, r, "malformed media message");
        return r;
    }
    if (s->st != S_PUBLISHING || tag.kind == WEIR_FLV_SKIP || tag.kind == WEIR_FLV_EOS)
        return 0;
    if (tag.kind == WEIR_FLV_CONFIG)
        return on_config(s, &tag, msg->data);

    /* A frame.  MP3 has no configuration message: its first frame is one. */
    if (!s->started && tag.media == AVMEDIA_TYPE_AUDIO && !s->par[1] &&
        tag.codec_id == AV_CODEC_ID_MP3 && (r = on_config(s, &tag, msg->data)) < 0)
        return r;
    dts = weir_rtmp_ts_unwrap_next(&s->ts[media_index(tag.media)], msg->timestamp);
    if (!(pkt = av_packet_alloc()))
        return AVERROR(ENOMEM);
    if ((r = weir_flv_tag_packet(&tag, msg->buf, msg->data, dts, pkt)) < 0) {
        av_packet_free(&pkt);
        return r;
    }
    if (s->started) {
        write_packet(s, pkt, tag.media);
        av_packet_free(&pkt);
        return 0;
    }
    s->pending[s->npending++] = (pending_pkt){ pkt, tag.media };
    return ready_to_start(s) ? start_tracks(s) : 0;
}

static int on_data(rtmp_session *s, const weir_rtmp_msg *msg)
{
    weir_amf_doc doc;
    int r = weir_amf_decode(msg->data, msg->len, NULL, &doc);

    if (r < 0)
        return 0;           /* data messages are advisory: ignore bad ones */
    if (weir_flv_metadata_parse(&doc, &s->md) == 0) {
        s->have_md = 1;
        if (s->stream)
            set_publisher_info(s);
    }
    weir_amf_doc_free(&doc);
    return 0;
}

/* ---- commands ------------------------------------------------------------------ */

static int reply_empty(rtmp_session *s, const weir_amf_command *cmd)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    int r;
    if (cmd->txid == 0)
        return 0;
    weir_amf_build_result_empty(&b, cmd->txid);
    r = send_command(s, WEIR_RTMP_CSID_COMMAND, 0, &b);
    weir_rtmp_buf_free(&b);
    return r;
}

static int on_connect(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    weir_amf_connect c;
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    static const char *const fourccs[] = { "avc1", "hvc1", "av01", NULL };
    int r;

    (void)msid;
    if (s->st != S_CONNECTING)
        return AVERROR_INVALIDDATA;
    if ((r = weir_amf_connect_parse(cmd, &c)) < 0) {
        fail(s, r, r == AVERROR_PATCHWELCOME ? "AMF3 not supported" : "bad connect");
        return r;
    }
    snprintf(s->app, sizeof s->app, "%s", c.app);
    weir_log_debug("rtmp", "connect", WL_STR("remote", s->remote), WL_STR("app", s->app),
                   WL_STR("flash_ver", c.flash_ver ? c.flash_ver : ""));
    weir_rtmp_write_window_ack_size(&s->writer, &s->out, WINDOW_ACK_SIZE);
    weir_rtmp_write_set_peer_bandwidth(&s->writer, &s->out, WINDOW_ACK_SIZE, WEIR_RTMP_BW_DYNAMIC);
    weir_rtmp_write_set_chunk_size(&s->writer, &s->out,
                                   (uint32_t)s->env.settings->rtmp_chunk_size);
    weir_amf_build_connect_result(&b, cmd->txid, &(weir_amf_connect_reply){
        .object_encoding = c.object_encoding,
        .fourcc_list = c.fourcc_list ? fourccs : NULL,
    });
    r = send_command(s, WEIR_RTMP_CSID_COMMAND, 0, &b);
    weir_rtmp_buf_reset(&b);
    weir_amf_build_on_bw_done(&b);
    if (r >= 0)
        r = send_command(s, WEIR_RTMP_CSID_COMMAND, 0, &b);
    weir_rtmp_buf_free(&b);
    s->st = S_CONNECTED;
    return r;
}

static int on_create_stream(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    int r;
    (void)msid;
    weir_amf_build_result_number(&b, cmd->txid, SESSION_STREAM_ID);
    r = send_command(s, WEIR_RTMP_CSID_COMMAND, 0, &b);
    weir_rtmp_buf_free(&b);
    return r;
}

static int on_fc_publish(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    weir_rtmp_buf b = WEIR_RTMP_BUF_INIT;
    int r = reply_empty(s, cmd);
    (void)msid;
    weir_amf_build_on_fc_publish(&b, "NetStream.Publish.Start", "FCPublish");
    if (r >= 0)
        r = send_command(s, WEIR_RTMP_CSID_COMMAND, 0, &b);
    weir_rtmp_buf_free(&b);
    return r;
}

static int on_release_stream(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    (void)msid;
    return reply_empty(s, cmd);
}

/* "key?query" -> "key": some encoders append parameters. */
static void strip_query(char *key)
{
    char *q = strchr(key, '?');
    if (q)
        *q = '\0';
}

static int on_publish(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    const char *key = cmd->args ? weir_amf_string(cmd->args) : NULL;

    if (s->st != S_CONNECTED)
        return 0;           /* a second publish on one connection: ignore */
    s->publish_msid = msid;
    if (!key || !*key || strlen(key) >= sizeof s->key) {
        send_status(s, "error", "NetStream.Publish.BadName", "Missing stream key.");
        fail(s, AVERROR(EINVAL), "publish without a stream key");
        return AVERROR(EINVAL);
    }
    if (strcmp(s->app, "live") != 0) {
        send_status(s, "error", "NetStream.Publish.BadName", "Publish to rtmp://host/live/<key>.");
        fail(s, AVERROR(EINVAL), "application is not \"live\"");
        return AVERROR(EINVAL);
    }
    snprintf(s->key, sizeof s->key, "%s", key);
    strip_query(s->key);
    s->st = S_AUTHORIZING;
    if (s->env.settings->auth == WEIR_INGEST_AUTH_OPEN) {
        if (!weir_stream_name_valid(s->key)) {
            send_status(s, "error", "NetStream.Publish.BadName",
                        "Stream names are 1-64 characters of A-Z a-z 0-9 _ -.");
            fail(s, AVERROR(EINVAL), "bad stream name");
            return AVERROR(EINVAL);
        }
        memcpy(s->name, s->key, strlen(s->key) + 1);    /* valid: at most 64 bytes */
        try_publish(s);
        return 0;
    }
    session_ref(s);
    if (s->env.auth(s->env.auth_ctx, s->key, on_authorized, s) < 0) {
        session_unref(s);
        send_status(s, "error", "NetStream.Publish.BadName", "Unknown or revoked stream key.");
        fail(s, AVERROR(EACCES), "stream key refused");
        return AVERROR(EACCES);
    }
    return 0;
}

static int on_unpublish(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid)
{
    (void)msid;
    if (s->stream) {
        end_stream(s);
        send_status(s, "status", "NetStream.Unpublish.Success", "Stop publishing.");
    }
    return strcmp(cmd->name, "FCUnpublish") == 0 ? reply_empty(s, cmd) : 0;
}

/* Dispatch by table, as nginx-rtmp does per message type. */
static const struct {
    const char *name;
    int (*fn)(rtmp_session *s, const weir_amf_command *cmd, uint32_t msid);
} commands[] = {
    { "connect",       on_connect },
    { "releaseStream", on_release_stream },
    { "FCPublish",     on_fc_publish },
    { "createStream",  on_create_stream },
    { "publish",       on_publish },
    { "FCUnpublish",   on_unpublish },
    { "deleteStream",  on_unpublish },
    { "closeStream",   on_unpublish },
};

static int on_command(rtmp_session *s, const weir_rtmp_msg *msg)
{
    weir_amf_doc doc;
    weir_amf_command cmd;
    int r = weir_amf_decode(msg->data, msg->len, NULL, &doc);

    if (r >= 0)
        r = weir_amf_command_parse(&doc, &cmd);
    if (r < 0) {
        weir_amf_doc_free(&doc);
        fail(s, r, r == AVERROR_PATCHWELCOME ? "AMF3 command" : "malformed command");
        return r;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd.name, commands[i].name) == 0) {
            r = commands[i].fn(s, &cmd, msg->stream_id);
            break;
        }
    }
    weir_amf_doc_free(&doc);
    if (r < 0 && s->st != S_CLOSING)
        fail(s, r, "command failed");
    return r;
}

/* ---- messages ---------------------------------------------------------------- */

static int on_message(void *arg, weir_rtmp_msg *msg)
{
    rtmp_session *s = arg;
    int r = 0;

    switch (msg->type) {
    case WEIR_RTMP_MSG_AUDIO:
    case WEIR_RTMP_MSG_VIDEO:
        r = on_media(s, msg);
        break;
    case WEIR_RTMP_MSG_COMMAND_AMF0:
        r = on_command(s, msg);
        break;
    case WEIR_RTMP_MSG_DATA_AMF0:
        r = on_data(s, msg);
        break;
    case WEIR_RTMP_MSG_COMMAND_AMF3:
    case WEIR_RTMP_MSG_DATA_AMF3:
        fail(s, AVERROR_PATCHWELCOME, "AMF3 messages are not supported");
        r = AVERROR_PATCHWELCOME;
        break;
    case WEIR_RTMP_MSG_USER_CONTROL: {
        uint16_t ev;
        uint32_t v;
        if (weir_rtmp_parse_user_control(msg, &ev, &v, NULL) == 0 &&
            ev == WEIR_RTMP_UC_PING_REQUEST)
            weir_rtmp_write_user_control(&s->writer, &s->out, WEIR_RTMP_UC_PING_RESPONSE, v);
        break;
    }
    default:
        break;      /* chunk size, abort, window: applied by the reader */
    }
    av_buffer_unref(&msg->buf);
    if (s->st == S_CLOSING)
        return AVERROR(ECONNRESET);
    return r < 0 ? r : 0;
}

int rtmp_session_rx(rtmp_session *s, const uint8_t *data, size_t len)
{
    uint32_t seq;
    int r;

    if (s->st == S_CLOSING)
        return s->err ? s->err : AVERROR(ECONNRESET);
    weir_counter_add(s->env.rx_bytes, (double)len);
    if (s->st == S_HANDSHAKE) {
        size_t used = 0;
        r = weir_rtmp_handshake_feed(&s->hs, data, len, &used, &s->out);
        if (r < 0) {
            fail(s, r, "bad handshake");
            return r;
        }
        weir_rtmp_reader_add_bytes(s->reader, used);
        data += used;
        len -= used;
        if (r == 1)
            s->st = S_CONNECTING;
    }
    if (s->st != S_HANDSHAKE && len) {
        r = weir_rtmp_reader_feed(s->reader, data, len, on_message, s);
        if (r < 0) {
            if (s->st != S_CLOSING)
                fail(s, r, r == AVERROR(EMSGSIZE) ? "message over rtmp.max_message_size"
                                                  : "malformed chunk stream");
            return s->err;
        }
    }
    if (weir_rtmp_reader_ack_due(s->reader, &seq))
        weir_rtmp_write_ack(&s->writer, &s->out, seq);
    if (s->out.err) {
        fail(s, s->out.err, "out of memory");
        return s->err;
    }
    flush(s);
    return 0;
}

int rtmp_session_publishing(const rtmp_session *s)
{
    return s->st == S_PUBLISHING;
}

void rtmp_session_closed(rtmp_session *s)
{
    weir_timer_stop(&s->takeover);
    end_stream(s);
    s->st = S_CLOSING;
    s->conn = NULL;
    session_unref(s);
}
