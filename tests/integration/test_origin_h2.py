"""HTTP/2 end to end: weir on HTTPS (a self-signed certificate made by the
openssl CLI) with ALPN h2 and http/1.1, and on http.h2c_port (cleartext h2
with prior knowledge), while ffmpeg pushes a live stream over RTMP.  The
peers are curl (built with nghttp2), nghttp (package nghttp2-client) and
Node's http2 client for a WebSocket over h2 (player-test/ws_h2.mjs):
every response path of core/http is fetched over h2 and compared byte for
byte with the HTTP/1.1 answer to the same request, including 50 streams at
once on one connection and flow-control windows smaller than a segment."""
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, main, wait_for  # noqa: E402

WEIR = sys.argv[1]
BIG = os.urandom(300_000)           # a VOD file: larger than one h2 window (64 KiB)
state = {}


def curl(path, proto="h2", method=None, headers=(), data=None, port=None, extra=()):
    """(http_version, status, headers, body) of one request with curl.
    proto: h2 / h1 (both over TLS, ALPN decides) or h2c (prior knowledge on
    http.h2c_port)."""
    w = state["weir"]
    with tempfile.TemporaryDirectory() as d:
        hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
        if proto == "h2c":
            url = f"http://127.0.0.1:{state['h2c']}{path}"
            args = ["--http2-prior-knowledge"]
        else:
            url = f"https://localhost:{port or w.port}{path}"
            args = ["--http2" if proto == "h2" else "--http1.1", "--cacert", state["cert"],
                    "--resolve", f"localhost:{port or w.port}:127.0.0.1"]
        if method == "HEAD":
            args.append("--head")
        elif method:
            args += ["-X", method]
        for h in headers:
            args += ["-H", h]
        if data is not None:
            args += ["--data-binary", "@-"]
        r = subprocess.run(["curl", "-sS", "--max-time", "20", *args, *extra, "-D", hdr,
                            "-o", body, "-w", "%{http_version} %{http_code}", url],
                           input=data, capture_output=True, timeout=30)
        assert r.returncode == 0, (path, r.returncode, r.stderr.decode())
        version, status = r.stdout.decode().split()
        with open(hdr, "rb") as f:
            lines = f.read().decode().split("\r\n")
        b = b""
        # curl makes no file for an empty body; --head writes the headers there
        if os.path.exists(body) and method != "HEAD":
            with open(body, "rb") as f:
                b = f.read()
    h = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h[k.strip().lower()] = v.strip()
    return version, int(status), h, b


def both(path, **kw):
    """The same request over h2 and over HTTP/1.1; h2's answer, after
    checking that it says HTTP/2 and has the same status and body."""
    v2, s2, h2, b2 = curl(path, "h2", **kw)
    v1, s1, h1, b1 = curl(path, "h1", **kw)
    assert (v2, v1) == ("2", "1.1"), (v2, v1)
    assert s2 == s1 and b2 == b1, (path, s2, s1, len(b2), len(b1))
    return s2, h2, b2


def push(url, seconds):
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-b:v", "1500k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def setup():
    try:
        _setup()
    except BaseException:
        teardown()
        raise


def _setup():
    tmp = tempfile.TemporaryDirectory(prefix="weir-h2-")
    state["tmp"] = tmp
    cert, key = os.path.join(tmp.name, "cert.pem"), os.path.join(tmp.name, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    state["cert"] = cert
    rtmp, h2c = free_port(), free_port()
    state["h2c"] = h2c
    w = Weir(WEIR, "--set", f"http.tls_cert={cert}", "--set", f"http.tls_key={key}",
             "--set", "http.h2=true",
             "--set", f"http.h2c_port={h2c}", "--set", f"rtmp.port={rtmp}",
             "--set", "ingest.auth=open", "--set", "packager.segment_duration=2s",
             "--set", "packager.part_duration=500ms", "--set", "packager.window=4",
             "--set", "packager.linger=60s", "--set", "http.max_body=64KiB")
    state["weir"] = w
    wait_for(lambda: _healthy(w), timeout=15)
    vod = os.path.join(w.data_dir, "vod", "a1")
    os.makedirs(vod, exist_ok=True)
    with open(os.path.join(vod, "big.m4s"), "wb") as f:
        f.write(BIG)
    state["pub"] = push(f"rtmp://127.0.0.1:{rtmp}/live/cam1", 40)
    # Two full segments, so that segment 1 is complete and immutable.
    wait_for(lambda: len(_segments()) >= 3, timeout=30)


def _healthy(w):
    if w.proc.poll() is not None:
        raise AssertionError(w.logs())
    try:
        return curl("/healthz", "h1", port=w.port)[1] == 200
    except AssertionError:
        return False


def _segments():
    _, s, _, b = curl("/live/cam1/v0.m3u8", "h1")
    if s != 200:
        return []
    return [x for x in b.decode().splitlines() if x and not x.startswith("#")]


def teardown():
    if "pub" in state:
        state["pub"].kill()
        state["pub"].wait()
    if "weir" in state:
        state["weir"].finish()
    if "tmp" in state:
        state["tmp"].cleanup()


def test_alpn_picks_h2_and_http11_still_works():
    ctx = ssl.create_default_context(cafile=state["cert"])
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", state["weir"].port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "h2"
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", state["weir"].port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
    v, s, h, b = curl("/healthz", "h2")
    assert (v, s) == ("2", 200) and json.loads(b)["status"] == "ok"
    # h2 forbids connection-specific headers; nghttp2 (curl) would reset the stream.
    assert "connection" not in h and "transfer-encoding" not in h
    v, s, h, b = curl("/healthz", "h1")
    assert (v, s) == ("1.1", 200) and json.loads(b)["status"] == "ok"


def test_h2_is_off_by_default():
    """Without http.h2 ALPN offers http/1.1 alone, so a browser's tus upload
    over HTTPS keeps working (see docs/operations.md, HTTP/2)."""
    w = Weir(WEIR, "--set", f"http.tls_cert={state['cert']}",
             "--set", f"http.tls_key={state['cert'].replace('cert.pem', 'key.pem')}")
    try:
        wait_for(lambda: _healthy(w), timeout=15)
        ctx = ssl.create_default_context(cafile=state["cert"])
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert s.selected_alpn_protocol() in ("http/1.1", None)
        v, s, _, _ = curl("/healthz", "h2", port=w.port)
        assert (v, s) == ("1.1", 200), (v, s)
    finally:
        w.finish()


def test_vod_body_range_416_304_head_404_time():
    s, h, b = both("/vod/a1/big.m4s")
    assert s == 200 and b == BIG and int(h["content-length"]) == len(BIG)
    s, h, b = both("/vod/a1/big.m4s", headers=["Range: bytes=1000-200999"])
    assert s == 206 and b == BIG[1000:201000]
    assert h["content-range"] == f"bytes 1000-200999/{len(BIG)}"
    s, h, b = both("/vod/a1/big.m4s", headers=[f"Range: bytes={len(BIG)}-"])
    assert s == 416 and h["content-range"] == f"bytes */{len(BIG)}"
    etag = h["etag"]
    s, h, b = both("/vod/a1/big.m4s", headers=[f"If-None-Match: {etag}"])
    assert s == 304 and b == b""
    s, h, b = both("/vod/a1/big.m4s", method="HEAD")
    assert s == 200 and int(h["content-length"]) == len(BIG)
    # HEAD over h2: the HEADERS frame ends the stream, no DATA follows.
    r = subprocess.run(["nghttp", "-v", "-H", ":method: HEAD",
                        f"https://127.0.0.1:{state['weir'].port}/vod/a1/big.m4s"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"recv HEADERS frame <length=\d+, flags=0x05", r.stdout), r.stdout
    assert "recv DATA frame" not in r.stdout, r.stdout
    s, h, b = both("/vod/a1/nothing.m4s")
    assert s == 404
    v, s, h, b = curl("/time", "h2")
    assert (v, s) == ("2", 200)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", b.decode().strip()), b


def test_live_playlist_and_segment():
    v, s, h, b = curl("/live/cam1/v0.m3u8", "h2")
    assert (v, s) == ("2", 200)
    assert h["content-type"] == "application/vnd.apple.mpegurl"
    assert b.startswith(b"#EXTM3U") and int(h["content-length"]) == len(b)
    seg = _segments()[0]
    s, h, body = both(f"/live/cam1/{seg}")
    # Large enough to live in a memfd (sendfile on plain h1; DATA frames here).
    assert s == 200 and len(body) > 64 * 1024 and body[4:8] == b"styp", len(body)
    assert h["cache-control"] == "public, max-age=31536000, immutable"
    s, h, b = both(f"/live/cam1/{seg}", headers=["Range: bytes=-70000"])
    assert s == 206 and b == body[-70000:]
    s, h, b = both(f"/live/cam1/{seg}", headers=[f"If-None-Match: {h['etag']}"])
    assert s == 304 and b == b""


def test_api_with_a_bearer_token_and_a_post_body():
    w = state["weir"]
    tok = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()
    v, s, h, b = curl("/api/v1/streams", "h2")
    assert (v, s) == ("2", 401) and h["www-authenticate"].startswith("Bearer")
    auth = f"Authorization: Bearer {tok}"
    v, s, h, b = curl("/api/v1/streams", "h2", headers=[auth])
    assert (v, s) == ("2", 200) and "streams" in json.loads(b)
    v, s, h, b = curl("/api/v1/keys", "h2", method="POST", data=b'{"name":"cam9"}',
                      headers=[auth, "Content-Type: application/json"])
    assert (v, s) == ("2", 201), b
    assert json.loads(b)["name"] == "cam9"
    # Over max_body: 413 on this stream; the connection lives on.
    v, s, h, b = curl("/api/v1/keys", "h2", method="POST", data=b"x" * 200_000,
                      headers=[auth, "Content-Type: application/json"])
    assert (v, s) == ("2", 413), b
    assert tok not in w.stderr()        # a secret: never logged


def _preload_hint():
    _, _, _, b = curl("/live/cam1/v0.m3u8", "h2")
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\w+)_(\d+)\.(\d+)\.m4s"', b.decode())
    assert m, b.decode()
    return int(m.group(2)), int(m.group(3))


def test_ll_hls_held_requests():
    msn, part = _preload_hint()
    t0 = time.monotonic()
    v, s, h, b = curl(f"/live/cam1/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}", "h2")
    assert (v, s) == ("2", 200)
    assert f'URI="v0_{msn}.{part}.m4s"' in b.decode(), b.decode()
    assert time.monotonic() - t0 < 2.0
    # The hinted part, asked for before it exists: held, then served.
    msn, part = _preload_hint()
    v, s, h, b = curl(f"/live/cam1/v0_{msn}.{part}.m4s", "h2")
    assert (v, s) == ("2", 200) and b"moof" in b[:64]
    assert curl(f"/live/cam1/v0_{msn}.{part}.m4s", "h1")[3] == b


def test_ll_hls_many_held_reloads_on_one_connection():
    # 50 blocking playlist reloads for the next part, all held at once as
    # streams of one connection (deferred requests, each its own conn),
    # all answered when the part is cut.
    msn, part = _preload_hint()
    w = state["weir"]
    url = f"https://localhost:{w.port}/live/cam1/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "cfg")
        with open(cfg, "w") as f:
            for i in range(50):
                f.write(f'url = "{url}"\noutput = "{d}/o{i}"\n')
        t0 = time.monotonic()
        r = subprocess.run(["curl", "-sS", "--http2", "--cacert", state["cert"],
                            "--resolve", f"localhost:{w.port}:127.0.0.1",
                            "--parallel", "--parallel-max", "50", "-K", cfg,
                            "-w", "%{num_connects} %{http_version} %{http_code}\n"],
                           capture_output=True, timeout=60)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()
        lines = r.stdout.decode().split()
        assert sum(int(x) for x in lines[0::3]) == 1, r.stdout.decode()
        assert set(lines[1::3]) == {"2"} and set(lines[2::3]) == {"200"}, lines
        for i in range(50):
            with open(f"{d}/o{i}", "rb") as f:
                assert f'URI="v0_{msn}.{part}.m4s"' in f.read().decode(), i
        assert took < 5.0, took


def test_ll_dash_streamed_segment_is_data_frames():
    msn, part = _preload_hint()
    if part > 0:
        msn += 1                        # surely not complete by the time we ask
    t0 = time.monotonic()
    v, s, h, body = curl(f"/live/cam1/v0_{msn}.m4s", "h2")
    waited = time.monotonic() - t0
    assert (v, s) == ("2", 200)
    assert "transfer-encoding" not in h and "content-length" not in h, h
    assert body[4:8] == b"styp" and waited > 0.2, (body[:8], waited)
    v, s, h, whole = curl(f"/live/cam1/v0_{msn}.m4s", "h2")
    assert s == 200 and int(h["content-length"]) == len(whole) and whole == body


def test_50_streams_on_one_connection():
    segs = _segments()
    paths = [f"/live/cam1/{segs[i % 2]}" for i in range(25)] + ["/vod/a1/big.m4s"] * 25
    want = {p: curl(p, "h1")[3] for p in set(paths)}
    w = state["weir"]
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "cfg")
        with open(cfg, "w") as f:
            for i, p in enumerate(paths):
                f.write(f'url = "https://localhost:{w.port}{p}"\noutput = "{d}/o{i}"\n')
        r = subprocess.run(["curl", "-sS", "--http2", "--cacert", state["cert"],
                            "--resolve", f"localhost:{w.port}:127.0.0.1",
                            "--parallel", "--parallel-max", "50", "-K", cfg,
                            "-w", "%{num_connects} %{http_version} %{http_code}\n"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        lines = r.stdout.decode().split()
        connects = sum(int(x) for x in lines[0::3])
        assert connects == 1, (connects, r.stdout.decode())     # one connection, 50 streams
        assert set(lines[1::3]) == {"2"} and set(lines[2::3]) == {"200"}, lines
        for i, p in enumerate(paths):
            with open(f"{d}/o{i}", "rb") as f:
                assert f.read() == want[p], (i, p)


def test_nghttp_many_streams_with_small_windows():
    # 64 KiB windows (-w/-W 16) are smaller than the file: every stream
    # waits for WINDOW_UPDATEs; a server that ignored the window would be
    # reset (FLOW_CONTROL_ERROR) by nghttp2.
    w = state["weir"]
    url = f"https://127.0.0.1:{w.port}/vod/a1/big.m4s"
    r = subprocess.run(["nghttp", "-n", "-s", "-m", "50", "-w", "16", "-W", "16", url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l.split() for l in r.stdout.splitlines() if re.match(r"\s*\d+\s+\+", l)]
    assert len(rows) == 50 and all(x[4] == "200" for x in rows), r.stdout
    # The bodies themselves, through the same small windows.
    r = subprocess.run(["nghttp", "-w", "16", "-W", "16", url], capture_output=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == BIG, len(r.stdout)


def _frame(kind, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", sid) \
        + payload


def _cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])            # utime + stime


def test_a_reader_that_opens_no_window_costs_no_cpu():
    # A raw h2 client: a 16 KiB window, a GET for 300 KB, and never a
    # WINDOW_UPDATE.  The stream must wait quietly (lws calls WRITEABLE
    # again when a WINDOW_UPDATE comes), not spin asking to write; it used
    # to take ~80% of a core.
    w = state["weir"]
    ctx = ssl.create_default_context(cafile=state["cert"])
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", w.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        assert s.selected_alpn_protocol() == "h2"
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                  _frame(4, 0, 0, struct.pack(">HI", 4, 16384)))
        path, auth = b"/vod/a1/big.m4s", b"localhost"
        # HPACK: :method GET, :scheme https (static 2, 7); :path, :authority
        # as literals with indexed names (4, 1), not added to the table.
        block = b"\x82\x87\x04" + bytes([len(path)]) + path + b"\x01" + bytes([len(auth)]) + auth
        s.sendall(_frame(1, 0x5, 1, block))            # END_STREAM | END_HEADERS
        got, acked = 0, False
        s.settimeout(0.2)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:             # the window fills
            try:
                got += len(s.recv(65536))
            except socket.timeout:
                pass
            if got and not acked:
                s.sendall(_frame(4, 1, 0, b""))         # SETTINGS ACK, nothing else
                acked = True
        c0 = _cpu_ticks(w.proc.pid)
        time.sleep(3)
        spent = _cpu_ticks(w.proc.pid) - c0
        assert 16384 < got < 20000, got                # one window's worth, and headers
        assert spent < 60, f"{spent} ticks of CPU in 3 s with a stalled stream"
    finally:
        s.close()
    assert curl("/healthz", "h2")[1] == 200


def test_h2c_prior_knowledge_port():
    v, s, h, b = curl("/vod/a1/big.m4s", "h2c")
    assert (v, s) == ("2", 200) and b == BIG
    seg = _segments()[0]
    v, s, h, b = curl(f"/live/cam1/{seg}", "h2c")
    assert (v, s) == ("2", 200) and b == curl(f"/live/cam1/{seg}", "h1")[3]
    # Only h2 there: an HTTP/1.1 request gets no HTTP answer.
    with socket.create_connection(("127.0.0.1", state["h2c"]), timeout=5) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert not c.recv(100).startswith(b"HTTP/1.1 200")
        except ConnectionResetError:
            pass


def test_h2c_upgrade_on_plain_http_is_answered_over_http11():
    # A plain listener: lws 4.1 would answer "Upgrade: h2c" with 101 and
    # then nothing; weir ignores the (optional) upgrade.
    w = Weir(WEIR)
    try:
        w.wait_ready()
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as c:
            req = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
            c.sendall(req)
            status, body = _read_h1(c)
            assert status == 200 and b'"ok"' in body
            c.sendall(b"GET /time HTTP/1.1\r\nHost: x\r\n\r\n")     # still keep-alive h1
            status, body = _read_h1(c)
            assert status == 200 and body.strip().endswith(b"Z")
        r = subprocess.run(["curl", "-sS", "--http2", "-w", " %{http_version}",
                            f"http://127.0.0.1:{w.port}/healthz"],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 0 and r.stdout.endswith(" 1.1"), r.stdout + r.stderr
    finally:
        w.finish()


def _read_h1(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    n = int(next(l.split(":", 1)[1] for l in lines if l.lower().startswith("content-length")))
    while len(rest) < n:
        rest += s.recv(65536)
    return int(lines[0].split()[1]), rest[:n]


def test_tus_upload_over_http11_and_a_clear_answer_over_h2():
    w = state["weir"]
    tok = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()
    auth = f"Authorization: Bearer {tok}"
    tus = ["Tus-Resumable: 1.0.0", auth]
    data = os.urandom(50_000)
    # libwebsockets 4.1 drops header names it does not know on h2, tus's
    # among them: the server says so (505) instead of a misleading 412.
    v, s, h, b = curl("/api/v1/uploads", "h2", method="POST", data=b"",
                      headers=tus + [f"Upload-Length: {len(data)}"])
    assert (v, s) == ("2", 505) and "HTTP/1.1" in json.loads(b)["detail"], (s, b)
    # The same upload over HTTP/1.1 on the same TLS port works.
    v, s, h, b = curl("/api/v1/uploads", "h1", method="POST", data=b"",
                      headers=tus + [f"Upload-Length: {len(data)}"])
    assert (v, s) == ("1.1", 201), b
    loc = h["location"].split("://", 1)[-1]
    loc = loc[loc.index("/"):] if not loc.startswith("/") else loc
    v, s, h, b = curl(loc, "h1", method="PATCH", data=data,
                      headers=tus + ["Upload-Offset: 0",
                                     "Content-Type: application/offset+octet-stream"])
    assert (v, s) == ("1.1", 204) and int(h["upload-offset"]) == len(data), (s, b)


def test_websocket_over_h2_extended_connect():
    # Browsers open WebSockets on the h2 connection (RFC 8441) since lws
    # advertises SETTINGS_ENABLE_CONNECT_PROTOCOL; the route's checks must
    # run there too (they run on HTTP_CONFIRM_UPGRADE for HTTP/1.1 only).
    w = state["weir"]
    tok = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", "read").stdout.strip()
    script = os.path.join(os.environ["WEIR_SOURCE_ROOT"], "player-test", "ws_h2.mjs")
    origin = f"https://127.0.0.1:{w.port}"

    def ws(path, token):
        r = subprocess.run(["node", script, origin, path, token], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    res = ws("/api/v1/events", tok)
    assert res["status"] == 200, res
    assert [json.loads(m)["type"] for m in res["messages"]][:1] == ["ready"], res
    assert "close" not in res, res
    # Refused (bad token, unknown path): closed at once with 1008, no message.
    res = ws("/api/v1/events", "not-a-token")
    assert res["messages"] == [] and res.get("close") == 1008, res
    res = ws("/api/v1/nothing", tok)
    assert res["messages"] == [] and res.get("close") == 1008, res
    logs = w.stderr()
    assert re.search(r"path=/api/v1/events status=101 .*proto=h2", logs), logs[-2000:]
    assert re.search(r"path=/api/v1/events status=401 .*proto=h2", logs), logs[-2000:]
    assert re.search(r"path=/api/v1/nothing status=404 .*proto=h2", logs), logs[-2000:]
    assert tok not in logs


def test_access_log_and_metrics_count_h2():
    w = state["weir"]
    before = _count(w, "/time")
    for _ in range(3):
        assert curl("/time", "h2")[1] == 200
    assert _count(w, "/time") == before + 3
    logs = w.stderr()
    assert re.search(r"module=access .*path=/time status=200 .*proto=h2", logs), logs[-2000:]
    assert re.search(r"module=access .*proto=h1", logs)


def _count(w, route):
    _, _, _, b = curl("/metrics", "h1")
    total = 0
    for line in b.decode().splitlines():
        if line.startswith("weir_http_requests_total{") and f'route="{route}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


main(setup, [
    test_alpn_picks_h2_and_http11_still_works,
    test_h2_is_off_by_default,
    test_vod_body_range_416_304_head_404_time,
    test_live_playlist_and_segment,
    test_api_with_a_bearer_token_and_a_post_body,
    test_ll_hls_held_requests,
    test_ll_hls_many_held_reloads_on_one_connection,
    test_ll_dash_streamed_segment_is_data_frames,
    test_50_streams_on_one_connection,
    test_nghttp_many_streams_with_small_windows,
    test_a_reader_that_opens_no_window_costs_no_cpu,
    test_h2c_prior_knowledge_port,
    test_h2c_upgrade_on_plain_http_is_answered_over_http11,
    test_tus_upload_over_http11_and_a_clear_answer_over_h2,
    test_websocket_over_h2_extended_connect,
    test_access_log_and_metrics_count_h2,
], teardown)
