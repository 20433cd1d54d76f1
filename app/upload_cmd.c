/*
 * app/upload_cmd.c — `weir upload FILE [--name N] [--server URL] [--token T]
 * [--resume UPLOAD_URL]`: a tus 1.0.0 client.
 *
 *   POST /api/v1/uploads (Upload-Length, Upload-Metadata)  -> Location
 *   loop: PATCH a chunk at the offset (Upload-Checksum sha1)  -> new offset
 *         a failure (connection, 5xx, 409, 460): wait, HEAD for the
 *         server's offset, go on from there; give up after RETRIES in a row
 *   print the asset id (the upload's id) on stdout
 *
 * The upload URL goes to stderr at the start, so an upload cut short (the
 * machine went down) can be finished later with --resume.  Progress: a bar
 * with rate and ETA when stderr is a terminal, a line every 10% otherwise.
 *
 * HTTP/1.1 over a plain socket, one connection per request: no TLS (put
 * weir behind a TLS terminator and run this next to it, or use any tus
 * client).  The token comes from --token or $WEIR_TOKEN.
 */
#include "app/app.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK           (16 * 1024 * 1024)  /* bytes per PATCH (a checkpoint each), default */
#define PIECE           (64 * 1024)         /* send and progress granularity */
#define RETRIES         8                   /* failures in a row before giving up */
#define IO_TIMEOUT_S    60
#define HDR_MAX         16384

typedef struct client {
    char host[256], port[8], base[512];     /* from --server */
    const char *token;
    char location[1024];                    /* the upload's URL: path?query */
    const char *path;                       /* the file */
    int fd;
    int64_t size;
    int64_t chunk;                          /* bytes per PATCH */
    int64_t rate;                           /* bytes/s at most; 0: no limit */
    int64_t rate_t0_us, rate_sent;
    /* progress */
    int tty;
    int64_t t0_us, last_draw_us, sent_at_t0;
    int last_decile;
} client;

typedef struct response {
    int status;
    char headers[HDR_MAX];                  /* lower-cased names */
    char body[1024];
} response;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- progress ------------------------------------------------------------------ */

static void human(double bytes, char *out, size_t cap)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void progress(client *c, int64_t done, int final)
{
    int64_t now = mono_us();
    double secs = (double)(now - c->t0_us) / 1e6;
    double rate = secs > (final ? 0 : 0.2) ? (double)(done - c->sent_at_t0) / secs : 0;
    int pct = c->size ? (int)(done * 100 / c->size) : 100;
    char d[32], t[32], r[32], eta[32] = "";

    human((double)done, d, sizeof d);
    human((double)c->size, t, sizeof t);
    human(rate, r, sizeof r);
    if (rate > 0 && done < c->size)
        snprintf(eta, sizeof eta, "  ETA %.0fs", (double)(c->size - done) / rate);
    if (c->tty) {
        char bar[31];
        int fill = c->size ? (int)(done * 30 / c->size) : 30;
        if (!final && now - c->last_draw_us < 100000)
            return;
        c->last_draw_us = now;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3d%%  %s / %s  %s/s%s\033[K%s", bar, pct, d, t, r, eta,
                final ? "\n" : "");
        return;
    }
    if (final || (pct / 10 > c->last_decile && pct < 100)) {
        c->last_decile = pct / 10;
        fprintf(stderr, "weir upload: %d%% (%s of %s) at %s/s%s\n", pct, d, t, r, eta);
    }
}

/* ---- HTTP ------------------------------------------------------------------- */

/* "http://host[:port][/base]" */
static int parse_server(client *c, const char *url)
{
    const char *p, *slash, *colon;
    size_t hlen;

    if (strncmp(url, "https://", 8) == 0) {
        fprintf(stderr, "weir upload: https is not supported here; use http:// next to the "
                        "server, or any tus client\n");
        return -1;
    }
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "weir upload: --server must be http://HOST[:PORT]\n");
        return -1;
    }
    p = url + 7;
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    hlen = (size_t)((colon ? colon : slash) - p);
    if (hlen == 0 || hlen >= sizeof c->host)
        return -1;
    memcpy(c->host, p, hlen);
    c->host[hlen] = '\0';
    if (colon) {
        size_t n = (size_t)(slash - colon - 1);
        if (n == 0 || n >= sizeof c->port)
            return -1;
        memcpy(c->port, colon + 1, n);
        c->port[n] = '\0';
    } else {
        snprintf(c->port, sizeof c->port, "80");
    }
    snprintf(c->base, sizeof c->base, "%s", slash);
    if (c->base[0] && c->base[strlen(c->base) - 1] == '/')
        c->base[strlen(c->base) - 1] = '\0';
    return 0;
}

static int dial(const client *c)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *a;
    struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
    int fd = -1;

    if (getaddrinfo(c->host, c->port, &hints, &res) != 0)
        return -1;
    for (a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the response head (and a short body) into r.  0 or -1. */
static int read_response(int fd, response *r)
{
    char buf[HDR_MAX + sizeof r->body];
    size_t len = 0;
    char *end = NULL, *cl;
    long want = 0;

    while (!end) {
        ssize_t n;
        if (len == sizeof buf - 1)
            return -1;
        n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    *end = '\0';
    if ((size_t)(end - buf) + 3 > sizeof r->headers)
        return -1;
    memcpy(r->headers, buf, (size_t)(end - buf));
    memcpy(r->headers + (end - buf), "\r\n", 3);
    for (char *p = r->headers; *p; p++) {
        /* Lower-case names only (up to each ':'), so lookups are simple. */
        char *colon = strchr(p, ':'), *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        for (char *q = p; colon && q < colon && q < eol; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        p = eol + 1;
    }
    if ((cl = strstr(r->headers, "\r\ncontent-length:")))
        want = strtol(cl + 17, NULL, 10);
    if (want > (long)sizeof r->body - 1)
        want = (long)sizeof r->body - 1;
    {
        size_t have = len - (size_t)(end + 4 - buf);
        memcpy(r->body, end + 4, have < (size_t)want ? have : (size_t)want);
        while ((long)have < want) {
            ssize_t n = recv(fd, r->body + have, (size_t)want - have, 0);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        r->body[have < (size_t)want ? have : (size_t)want] = '\0';
    }
    return 0;
}

/* A header's value (trimmed) into out; 0 or -1. */
static int header(const response *r, const char *name, char *out, size_t cap)
{
    char key[64];
    const char *p, *eol;
    size_t n;

    snprintf(key, sizeof key, "\r\n%s:", name);
    if (!(p = strstr(r->headers, key)))
        return -1;
    p += strlen(key);
    while (*p == ' ')
        p++;
    eol = strstr(p, "\r\n");
    n = (size_t)(eol - p);
    if (n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* What the server said, for a message. */
static const char *detail(const response *r)
{
    const char *d = strstr(r->body, "\"detail\":\"");
    static char text[512];
    size_t n = 0;

    if (!d)
        return r->body[0] ? r->body : "no details";
    for (d += 10; *d && *d != '"' && n < sizeof text - 1; d++)
        text[n++] = *d == '\\' && d[1] ? *++d : *d;
    text[n] = '\0';
    return text;
}

/* One request; the body (if any) is bytes [off, off+len) of the file, sent
 * with progress.  0 with r filled, or -1 on a connection problem. */
static int request(client *c, const char *method, const char *target, const char *extra,
                   int64_t off, int64_t len, response *r)
{
    char head[4096];
    int fd = dial(c), n;

    memset(r, 0, sizeof *r);
    if (fd < 0)
        return -1;
    n = snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: weir-upload/" WEIR_VERSION
                 "\r\nTus-Resumable: 1.0.0\r\n%s%s%s%sContent-Length: %" PRId64
                 "\r\nConnection: close\r\n\r\n",
                 method, target, c->host, c->port, c->token ? "Authorization: Bearer " : "",
                 c->token ? c->token : "", c->token ? "\r\n" : "", extra, len);
    if (n < 0 || n >= (int)sizeof head || send_all(fd, head, (size_t)n) < 0)
        goto fail;
    for (int64_t done = 0; done < len;) {
        char buf[PIECE];
        size_t want = (size_t)(len - done < PIECE ? len - done : PIECE);
        ssize_t got = pread(c->fd, buf, want, (off_t)(off + done));
        if (got <= 0) {
            fprintf(stderr, "\nweir upload: cannot read %s: %s\n", c->path,
                    got < 0 ? strerror(errno) : "file shrank");
            exit(1);
        }
        if (send_all(fd, buf, (size_t)got) < 0)
            goto fail;
        done += got;
        if (c->rate > 0) {
            /* Keep the average since the start under --limit-rate. */
            int64_t due_us, now;
            c->rate_sent += got;
            due_us = c->rate_t0_us + c->rate_sent * 1000000 / c->rate;
            if ((now = mono_us()) < due_us)
                usleep((useconds_t)(due_us - now));
        }
        progress(c, off + done, 0);
    }
    if (read_response(fd, r) < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    close(fd);
    return -1;
}

/* ---- tus ---------------------------------------------------------------------- */

static int sha1_b64(const client *c, int64_t off, int64_t len, char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE], buf[PIECE];
    unsigned int dlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL);

    for (int64_t done = 0; ok && done < len;) {
        size_t want = (size_t)(len - done < PIECE ? len - done : PIECE);
        ssize_t got = pread(c->fd, buf, want, (off_t)(off + done));
        ok = got > 0 && EVP_DigestUpdate(md, buf, (size_t)got);
        done += got > 0 ? got : 0;
    }
    ok = ok && EVP_DigestFinal_ex(md, digest, &dlen) && dlen == 20;
    EVP_MD_CTX_free(md);
    if (ok)
        EVP_EncodeBlock((unsigned char *)out, digest, 20);
    return ok ? 0 : -1;
}

static void b64(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (4 * ((n + 2) / 3) + 1 > cap)
        n = (cap - 1) / 4 * 3;
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
}

/* POST: the Location.  0, or -1 (a message was printed; fatal). */
static int create(client *c, const char *name)
{
    char extra[2048], fname[512], nm[512], meta[1200];
    const char *base = strrchr(c->path, '/') ? strrchr(c->path, '/') + 1 : c->path;
    response r;
    char target[600];

    b64(base, fname, sizeof fname);
    snprintf(meta, sizeof meta, "filename %s", fname);
    if (name) {
        b64(name, nm, sizeof nm);
        snprintf(meta + strlen(meta), sizeof meta - strlen(meta), ",name %s", nm);
    }
    snprintf(extra, sizeof extra, "Upload-Length: %" PRId64 "\r\nUpload-Metadata: %s\r\n",
             c->size, meta);
    snprintf(target, sizeof target, "%s/api/v1/uploads", c->base);
    for (int tries = 0;; tries++) {
        if (request(c, "POST", target, extra, 0, 0, &r) == 0 && r.status == 201)
            break;
        if (r.status >= 400 && r.status < 500) {
            fprintf(stderr, "weir upload: the server refused the upload (%d): %s\n", r.status,
                    detail(&r));
            return -1;
        }
        if (tries == RETRIES) {
            fprintf(stderr, "weir upload: cannot reach %s:%s%s\n", c->host, c->port,
                    r.status ? "" : " (connection failed)");
            return -1;
        }
        sleep(1u << (tries < 3 ? tries : 3));
    }
    if (header(&r, "location", c->location, sizeof c->location) < 0) {
        fprintf(stderr, "weir upload: the server gave no Location\n");
        return -1;
    }
    return 0;
}

/* The server's offset, or -1 (retry later), or -2 (fatal, printed). */
static int64_t server_offset(client *c)
{
    response r;
    char v[32];
    int64_t off;

    if (request(c, "HEAD", c->location, "", 0, 0, &r) < 0)
        return -1;
    if (r.status == 404 || r.status == 410 || r.status == 401 || r.status == 403) {
        fprintf(stderr, "\nweir upload: the upload is gone (%d)\n", r.status);
        return -2;
    }
    if (r.status != 200 && r.status != 204)
        return -1;
    if (header(&r, "upload-offset", v, sizeof v) < 0 || (off = strtoll(v, NULL, 10)) < 0 ||
        off > c->size)
        return -1;
    if (header(&r, "upload-length", v, sizeof v) == 0 && strtoll(v, NULL, 10) != c->size) {
        fprintf(stderr, "\nweir upload: that upload is for a file of another size\n");
        return -2;
    }
    return off;
}

static int send_all_chunks(client *c)
{
    int64_t off = -1;
    int failures = 0;

    for (;;) {
        response r;
        char extra[256], sum[32], v[32];
        int64_t len;

        r.status = 0;
        r.body[0] = '\0';

        if (off < 0) {
            off = server_offset(c);
            if (off == -2)
                return -1;
            if (off < 0)
                goto failed;
            c->t0_us = mono_us();
            c->sent_at_t0 = off;
        }
        if (off == c->size)
            return 0;
        len = c->size - off < c->chunk ? c->size - off : c->chunk;
        if (sha1_b64(c, off, len, sum) < 0) {
            fprintf(stderr, "\nweir upload: cannot read %s\n", c->path);
            return -1;
        }
        snprintf(extra, sizeof extra, "Content-Type: application/offset+octet-stream\r\n"
                                      "Upload-Offset: %" PRId64 "\r\nUpload-Checksum: sha1 %s\r\n",
                 off, sum);
        if (request(c, "PATCH", c->location, extra, off, len, &r) == 0 && r.status == 204 &&
            header(&r, "upload-offset", v, sizeof v) == 0) {
            off = strtoll(v, NULL, 10);
            failures = 0;
            continue;
        }
        if (r.status && r.status != 409 && r.status != 460 && r.status < 500) {
            fprintf(stderr, "\nweir upload: the server refused a chunk (%d): %s\n", r.status,
                    detail(&r));
            return -1;
        }
        off = -1;                   /* ask the server where to go on */
failed:
        if (++failures > RETRIES) {
            fprintf(stderr, "\nweir upload: giving up after %d failures in a row; finish "
                            "later with --resume %s\n", RETRIES, c->location);
            return -1;
        }
        if (c->tty)
            fprintf(stderr, "\n");
        fprintf(stderr, "weir upload: %s; resuming in %us\n",
                r.status ? detail(&r) : "connection lost", 1u << (failures < 4 ? failures : 4));
        sleep(1u << (failures < 4 ? failures : 4));
    }
}

/* "16M", "512k", "1048576": bytes (k, M, G are 1024-based); -1 if bad. */
static int64_t parse_bytes(const char *text)
{
    char *end;
    double v = strtod(text, &end);
    int64_t mul = 1;

    if (end == text || v <= 0)
        return -1;
    if (*end == 'k' || *end == 'K')
        mul = 1024;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024;
    else if (*end == 'g' || *end == 'G')
        mul = 1024 * 1024 * 1024;
    else if (*end)
        return -1;
    if (*end && end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
        return -1;
    return (int64_t)(v * (double)mul);
}

int weir_cmd_upload(const weir_cli *cli, const weir_settings *s)
{
    client c = { .fd = -1 };
    char server[300];
    struct stat st;
    const char *id, *q;

    if (cli->nargs != 1) {
        fprintf(stderr, "usage: weir upload FILE [--name NAME] [--server http://HOST:PORT] "
                        "[--token TOKEN] [--resume UPLOAD_URL] [--chunk-size SIZE] "
                        "[--limit-rate BYTES_PER_S]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    c.path = cli->args[0];
    c.chunk = cli->chunk_size ? parse_bytes(cli->chunk_size) : CHUNK;
    c.rate = cli->limit_rate ? parse_bytes(cli->limit_rate) : 0;
    if (c.chunk < 1 || c.rate < 0) {
        fprintf(stderr, "weir upload: --chunk-size and --limit-rate take sizes such as 4M, "
                        "512k\n");
        return 2;
    }
    c.rate_t0_us = mono_us();
    c.token = cli->token ? cli->token : getenv("WEIR_TOKEN");
    if (!c.token || !*c.token) {
        fprintf(stderr, "weir upload: needs an API token with write scope: --token or "
                        "$WEIR_TOKEN (weir tokens create --scope write)\n");
        return 2;
    }
    snprintf(server, sizeof server, "http://127.0.0.1:%" PRId64, s->core.http_port);
    if (parse_server(&c, cli->server ? cli->server : server) < 0)
        return 2;
    if ((c.fd = open(c.path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(c.fd, &st) < 0 ||
        !S_ISREG(st.st_mode)) {
        fprintf(stderr, "weir upload: %s: %s\n", c.path,
                c.fd < 0 ? strerror(errno) : "not a regular file");
        return 1;
    }
    c.size = st.st_size;
    c.tty = isatty(STDERR_FILENO);
    c.last_decile = -1;
    if (cli->resume) {
        /* Accept the URL as printed: absolute, or a path. */
        const char *p = strstr(cli->resume, "://") ? strchr(strstr(cli->resume, "://") + 3, '/')
                                                   : cli->resume;
        snprintf(c.location, sizeof c.location, "%s", p ? p : "");
    } else if (create(&c, cli->name) < 0) {
        close(c.fd);
        return 1;
    }
    fprintf(stderr, "weir upload: %s -> http://%s:%s%s\n", c.path, c.host, c.port, c.location);
    if (send_all_chunks(&c) < 0) {
        close(c.fd);
        return 1;
    }
    progress(&c, c.size, 1);
    close(c.fd);
    /* The asset id is the upload's: the last path segment. */
    q = strchr(c.location, '?');
    if (q)
        c.location[q - c.location] = '\0';
    id = strrchr(c.location, '/') ? strrchr(c.location, '/') + 1 : c.location;
    printf("%s\n", id);
    return 0;
}
