"""The origin's HTTP side end to end: large bodies sent straight to the socket
(sendfile from memfd buffers) over keep-alive, ranges, slow and vanishing
readers; the VOD cache; http.max_connections, http.max_header_size and
http.rate_limit; HTTPS with a self-signed certificate made by the openssl CLI.
VOD files are written into data_dir/vod/<asset>/ by the test itself."""
import http.client
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import Weir, run_tests  # noqa: E402

WEIR = sys.argv[1]
BIG = os.urandom(300_000)          # past the 64 KiB memfd threshold and the 16 KiB inline one
SMALL = os.urandom(20_000)


def put_vod(w, name, body, asset="a1"):
    d = os.path.join(w.data_dir, "vod", asset)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "." + name)
    with open(tmp, "wb") as f:
        f.write(body)
    os.rename(tmp, os.path.join(d, name))      # as the recorder does: never half a file


def raw_request(port, path, extra=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    return s


def read_response(s):
    """(status, headers, body) of one Content-Length response on socket s."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"closed before the headers: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(headers["content-length"])
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk, f"closed after {len(rest)} of {n} body bytes"
        rest += chunk
    assert len(rest) == n, (len(rest), n)      # nothing after the body
    return int(lines[0].split()[1]), headers, rest


def test_large_and_small_bodies_in_turn_on_one_connection():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        put_vod(w, "v0_1.m4s", BIG)
        put_vod(w, "v0_2.m4s", SMALL)
        c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
        for i in range(6):      # cold (worker read), then cached hits
            for name, body in (("v0_1.m4s", BIG), ("v0_2.m4s", SMALL)):
                c.request("GET", f"/vod/a1/{name}")
                r = c.getresponse()
                got = r.read()
                assert r.status == 200 and got == body, (i, name, r.status, len(got))
        c.request("GET", "/vod/a1/v0_1.m4s", headers={"Range": "bytes=100000-299999"})
        r = c.getresponse()
        got = r.read()
        assert r.status == 206 and got == BIG[100000:300000], (r.status, len(got))
        assert r.getheader("content-range") == "bytes 100000-299999/300000"
        etag = r.getheader("etag")
        c.request("GET", "/vod/a1/v0_1.m4s", headers={"If-None-Match": etag})
        r = c.getresponse()
        assert r.status == 304 and r.read() == b"", r.status
        c.request("HEAD", "/vod/a1/v0_1.m4s")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"" and r.getheader("content-length") == "300000"
        c.request("GET", "/healthz")        # the connection is still in step
        assert c.getresponse().status == 200
        c.close()
    finally:
        w.close()


def test_slow_reader_gets_every_byte_and_a_vanished_one_costs_nothing():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        big = os.urandom(4_000_000)         # far more than the socket buffers hold
        put_vod(w, "v0_1.m4s", big)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.settimeout(5)
        s.connect(("127.0.0.1", w.port))
        s.sendall(b"GET /vod/a1/v0_1.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)                     # the server fills what it can, then waits
        status, _, body = read_response(s)
        assert status == 200 and body == big, (status, len(body))
        s.close()
        # From the cache, slowly again, on a fresh connection each time.
        # (Known issue, not asserted here: a keep-alive request that
        # arrives just as the tail of a slow answer drains can be lost by
        # lws 4.1 until the keep-alive timeout; main has it too.
        # core/http.c's tail_wait narrows the window, it does not close it.)
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            s.settimeout(5)
            s.connect(("127.0.0.1", w.port))
            s.sendall(b"GET /vod/a1/v0_1.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
            status, _, body = read_response(s)
            assert status == 200 and body == big
            s.close()
        # Ten clients that hang up after the first bytes.
        for _ in range(10):
            s = raw_request(w.port, "/vod/a1/v0_1.m4s")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()                       # RST with bytes unread
        status, _, body = w.request("GET", "/vod/a1/v0_1.m4s")
        assert status == 200 and body == big
        assert w.proc.poll() is None
    finally:
        w.close()


def test_vod_cache_notices_replacement_and_deletion_at_once():
    w = Weir(WEIR)                          # origin.vod_cache_valid: 10s
    try:
        w.wait_ready()
        put_vod(w, "v0_1.m4s", BIG)
        assert w.request("GET", "/vod/a1/v0_1.m4s")[2] == BIG
        assert w.request("GET", "/vod/a1/v0_1.m4s")[2] == BIG     # a hit
        other = os.urandom(len(BIG))
        put_vod(w, "v0_1.m4s", other)       # a recording replaced (rename over it)
        assert w.request("GET", "/vod/a1/v0_1.m4s")[2] == other
        os.remove(os.path.join(w.data_dir, "vod", "a1", "v0_1.m4s"))   # an asset deleted
        assert w.request("GET", "/vod/a1/v0_1.m4s")[0] == 404
    finally:
        w.close()


def test_vod_cache_rereads_a_file_rewritten_in_place_after_its_validity():
    w = Weir(WEIR, "--set", "origin.vod_cache_valid=300ms")
    try:
        w.wait_ready()
        put_vod(w, "v0_1.m4s", BIG)
        assert w.request("GET", "/vod/a1/v0_1.m4s")[2] == BIG
        other = os.urandom(len(BIG))
        with open(os.path.join(w.data_dir, "vod", "a1", "v0_1.m4s"), "r+b") as f:
            f.write(other)                  # same inode: only the expiry notices
        time.sleep(0.5)
        assert w.request("GET", "/vod/a1/v0_1.m4s")[2] == other
    finally:
        w.close()


def test_max_connections_closes_new_ones_and_counts_them():
    w = Weir(WEIR, "--set", "http.max_connections=3")
    try:
        w.wait_ready()
        time.sleep(0.2)                     # wait_ready's connection is gone
        held = []
        for _ in range(3):
            s = raw_request(w.port, "/healthz")
            assert read_response(s)[0] == 200
            held.append(s)
        for _ in range(3):                  # the fourth: closed, never answered
            s = raw_request(w.port, "/healthz")
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            s.close()
        held.pop().close()
        time.sleep(0.2)
        status, _, body = w.request("GET", "/metrics")
        assert status == 200, status
        line = [l for l in body.decode().splitlines()
                if l.startswith("weir_http_connections_refused_total")]
        assert line and float(line[0].split()[1]) == 3, line
        # One log line for the burst, not one per connection.
        logged = [l for l in w.stderr().splitlines() if "too many open" in l]
        assert len(logged) == 1, logged
        for s in held:
            s.close()
    finally:
        w.close()


def test_header_size_limit():
    w = Weir(WEIR, "--set", "http.max_header_size=2KiB")
    try:
        w.wait_ready()
        s = raw_request(w.port, "/healthz", b"X-Fill: " + b"a" * 1000 + b"\r\n")
        assert read_response(s)[0] == 200   # under the limit: served
        s.close()
        s = raw_request(w.port, "/healthz", b"X-Fill: " + b"a" * 4000 + b"\r\n")
        try:
            # lws refuses headers past max_http_header_data by closing.
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        w.close()


def test_rate_limit_answers_429_then_recovers():
    w = Weir(WEIR, "--set", "http.rate_limit=5")
    try:
        w.wait_ready()
        time.sleep(1.2)                     # wait_ready's requests are forgotten
        c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
        got = []
        for _ in range(12):
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            got.append((r.status, r.getheader("retry-after")))
        ok = [g for g in got if g[0] == 200]
        limited = [g for g in got if g[0] == 429]
        # A burst of one second's worth, then 429 with Retry-After.
        assert 5 <= len(ok) <= 6 and len(ok) + len(limited) == 12, got
        assert got[-1] == (429, "1"), got
        time.sleep(1.1)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        assert r.status == 200
        c.close()
    finally:
        w.close()


def test_rate_limit_off_by_default():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
        for _ in range(50):
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            assert r.status == 200
        c.close()
    finally:
        w.close()


def test_https_with_a_self_signed_certificate():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        w = Weir(WEIR, "--set", f"http.tls_cert={cert}", "--set", f"http.tls_key={key}")
        try:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            ctx.set_alpn_protocols(["http/1.1"])     # http.client speaks HTTP/1.1 only
            deadline = time.monotonic() + 15
            while True:
                try:
                    c = http.client.HTTPSConnection("127.0.0.1", w.port, context=ctx, timeout=5)
                    c.request("GET", "/healthz")
                    break
                except OSError:
                    assert time.monotonic() < deadline, w.logs()
                    time.sleep(0.1)
            r = c.getresponse()
            assert r.status == 200 and b'"ok"' in r.read()
            assert c.sock.selected_alpn_protocol() == "http/1.1"
            put_vod(w, "v0_1.m4s", BIG)
            for _ in range(3):              # through lws_write and TLS, never sendfile
                c.request("GET", "/vod/a1/v0_1.m4s")
                r = c.getresponse()
                assert r.status == 200 and r.read() == BIG
            c.request("GET", "/vod/a1/v0_1.m4s", headers={"Range": "bytes=-1000"})
            r = c.getresponse()
            assert r.status == 206 and r.read() == BIG[-1000:]
            etag = r.getheader("etag")
            c.request("GET", "/vod/a1/v0_1.m4s", headers={"If-None-Match": etag})
            r = c.getresponse()
            assert r.status == 304 and r.read() == b""
            c.request("HEAD", "/vod/a1/v0_1.m4s")
            r = c.getresponse()
            assert r.status == 200 and r.read() == b""
            c.close()
            # Plain HTTP on the TLS port gets no HTTP answer.
            s = raw_request(w.port, "/healthz")
            try:
                assert not s.recv(100).startswith(b"HTTP/1.1 200")
            except ConnectionResetError:
                pass
            s.close()
        finally:
            w.close()


def test_tls_key_without_cert_is_refused_at_start():
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([WEIR, "serve", "--set", "http.port=1", "--set",
                            f"http.tls_cert={d}/missing.pem", "--set", f"data_dir={d}/var"],
                           capture_output=True, text=True, timeout=15)
        assert r.returncode != 0
        assert "tls" in r.stderr.lower(), r.stderr


run_tests([
    test_large_and_small_bodies_in_turn_on_one_connection,
    test_slow_reader_gets_every_byte_and_a_vanished_one_costs_nothing,
    test_vod_cache_notices_replacement_and_deletion_at_once,
    test_vod_cache_rereads_a_file_rewritten_in_place_after_its_validity,
    test_max_connections_closes_new_ones_and_counts_them,
    test_header_size_limit,
    test_rate_limit_answers_429_then_recovers,
    test_rate_limit_off_by_default,
    test_https_with_a_self_signed_certificate,
    test_tls_key_without_cert_is_refused_at_start,
])
