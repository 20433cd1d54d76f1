/*
 * ingest/rtmp/rtmp_server.c — RTMP on the loop: a raw-socket libwebsockets
 * vhost; the loop's listener (core/loop.h) adopts each accepted socket into
 * it.  This file is only socket plumbing and timeouts; the protocol is in
 * rtmp_session.c.
 *
 *   RAW_ADOPT      new connection: a session, the handshake timeout
 *   RAW_RX         bytes to the session; the idle timeout restarts
 *   RAW_WRITEABLE  the session's pending bytes, in one write
 *   RAW_CLOSE      the session ends its stream and lets go
 */
#include "ingest/ingest.h"
#include "ingest/rtmp/rtmp_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libavutil/error.h>

#define RTMP_PROTOCOL "weir-rtmp"

struct weir_rtmp_server {
    weir_loop *loop;
    struct lws_vhost *vhost;
    weir_ingest_settings settings;
    rtmp_env env;
    int port;
    int publishers;
};

/* lws per-session data: just the session pointer (the session outlives the
 * socket when an authorisation is in flight). */
typedef struct conn {
    rtmp_session *session;
    struct lws *wsi;
    int64_t timeout_set_us;     /* when the idle timeout was last pushed back */
} conn;

/* Pushing the idle timeout back re-sorts lws's timer list: on a publisher
 * sending 80 messages a second, once a second is plenty. */
#define IDLE_REFRESH_US 1000000

static void want_write(void *c)
{
    lws_callback_on_writable(((conn *)c)->wsi);
}

static void close_soon(void *c)
{
    /* Let what is queued (an onStatus error) go out first. */
    lws_set_timeout(((conn *)c)->wsi, PENDING_TIMEOUT_USER_OK, 1);
}

static void remote_of(struct lws *wsi, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[64] = "?";
    int port = 0;

    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    }
    snprintf(buf, cap, "%s:%d", host, port);
}

static int set_idle(weir_rtmp_server *srv, struct lws *wsi, const rtmp_session *s)
{
    /* Until it publishes, the handshake timeout bounds the whole setup. */
    int64_t ms = s && rtmp_session_publishing(s) ? srv->settings.rtmp_idle_timeout
                                                 : srv->settings.rtmp_handshake_timeout;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)((ms + 999) / 1000));
    return 0;
}

static int rtmp_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    weir_rtmp_server *srv = vh ? lws_vhost_user(vh) : NULL;
    conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT: {
        char remote[64];
        if (!srv || !c)
            return -1;
        remote_of(wsi, remote, sizeof remote);
        c->wsi = wsi;
        c->session = rtmp_session_new(&srv->env, c, remote);
        if (!c->session)
            return -1;
        weir_log_debug("rtmp", "connection", WL_STR("remote", remote));
        /* The handshake timeout covers everything up to publishing. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                        (int)((srv->settings.rtmp_handshake_timeout + 999) / 1000));
        return 0;
    }
    case LWS_CALLBACK_RAW_RX:
        if (!c || !c->session || rtmp_session_rx(c->session, in, len) < 0)
            return 0;       /* the session asked to close (close_soon) */
        if (rtmp_session_publishing(c->session)) {
            int64_t now = lws_now_usecs();
            if (now - c->timeout_set_us >= IDLE_REFRESH_US) {
                c->timeout_set_us = now;
                set_idle(srv, wsi, c->session);
            }
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE: {
        size_t n;
        const uint8_t *p;
        unsigned char *buf;
        if (!c || !c->session)
            return 0;
        p = rtmp_session_pending(c->session, &n);
        if (!n)
            return 0;
        if (!(buf = malloc(LWS_PRE + n)))
            return -1;
        memcpy(buf + LWS_PRE, p, n);
        /* lws buffers whatever the socket does not take now. */
        if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n) {
            free(buf);
            return -1;
        }
        free(buf);
        rtmp_session_sent(c->session, n);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE:
        if (c && c->session) {
            rtmp_session_closed(c->session);
            c->session = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols rtmp_protocols[] = {
    { .name = RTMP_PROTOCOL, .callback = rtmp_callback, .per_session_data_size = sizeof(conn),
      .rx_buffer_size = 65536 },
    { 0 }
};

int weir_rtmp_server_new(const weir_rtmp_opts *opts, weir_rtmp_server **out)
{
    struct lws_context_creation_info info;
    weir_rtmp_server *srv = calloc(1, sizeof *srv);

    if (!srv)
        return AVERROR(ENOMEM);
    if (opts->settings->auth == WEIR_INGEST_AUTH_KEYS && !opts->auth) {
        free(srv);
        return AVERROR(EINVAL);
    }
    srv->loop = opts->loop;
    srv->settings = *opts->settings;
    srv->env = (rtmp_env){
        .loop = opts->loop, .bus = opts->bus, .settings = &srv->settings,
        .auth = opts->auth, .auth_ctx = opts->auth_ctx, .publishers = &srv->publishers,
        .publishers_gauge = opts->publishers,
        .rx_bytes = opts->rx_bytes, .want_write = want_write, .close = close_soon,
    };
    weir_gauge_set(srv->env.publishers_gauge, 0);

    memset(&info, 0, sizeof info);
    info.vhost_name = "weir-rtmp";
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = rtmp_protocols;
    info.user = srv;
    info.options = LWS_SERVER_OPTION_ONLY_RAW | LWS_SERVER_OPTION_DISABLE_IPV6;
    srv->vhost = lws_create_vhost(weir_loop_lws(opts->loop), &info);
    if (!srv->vhost) {
        weir_log_error("rtmp", "cannot create the RTMP vhost");
        free(srv);
        return AVERROR(EIO);
    }
    srv->port = weir_loop_listen(opts->loop, opts->addr, opts->port, srv->vhost, 0,
                                 RTMP_PROTOCOL);
    if (srv->port < 0) {
        int r = srv->port;
        free(srv);
        return r;
    }
    weir_log_info("rtmp", "listening", WL_INT("port", srv->port),
                  WL_STR("auth", srv->settings.auth == WEIR_INGEST_AUTH_OPEN ? "open" : "keys"));
    *out = srv;
    return 0;
}

int weir_rtmp_server_port(const weir_rtmp_server *srv) { return srv->port; }
int weir_rtmp_server_publishers(const weir_rtmp_server *srv) { return srv->publishers; }

void weir_rtmp_server_free(weir_rtmp_server *srv)
{
    free(srv);
}
