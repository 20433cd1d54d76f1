"""weir serve end to end: /healthz, routing errors, limits, keep-alive,
SIGTERM/SIGINT shutdown, JSON logs, a port already in use."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import Weir, free_port, run_tests  # noqa: E402

WEIR = sys.argv[1]


def weir_version():
    out = subprocess.run([WEIR, "version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def test_healthz_and_clean_sigterm():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        status, headers, body = w.json("/healthz")
        assert status == 200, status
        assert headers["content-type"] == "application/json", headers
        assert body["status"] == "ok", body
        assert body["version"] == weir_version(), body
        assert 0 <= body["uptime_s"] < 60, body
        rc, took = w.stop(signal.SIGTERM)
        assert rc == 0, (rc, w.logs())
        assert took < 5, took
        logs = w.logs()
        assert "event=\"shutting down\"" in logs and "event=stopped" in logs, logs
    finally:
        w.close()


def test_sigint_is_clean_too():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        rc, took = w.stop(signal.SIGINT)
        assert rc == 0 and took < 5, (rc, took)
    finally:
        w.close()


def test_errors_and_head():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        status, _, body = w.request("GET", "/no/such/thing")
        assert status == 404 and json.loads(body)["error"] == "not found", (status, body)
        status, _, body = w.request("DELETE", "/healthz")
        assert status == 405, status
        status, headers, body = w.request("HEAD", "/healthz")
        assert status == 200 and body == b"", (status, body)
        assert int(headers["content-length"]) > 0, headers
    finally:
        w.close()


def test_body_limit():
    w = Weir(WEIR, "--set", "http.max_body=1KiB")
    try:
        w.wait_ready()
        status, _, _ = w.request("POST", "/healthz", body=b"x" * 4096)
        assert status == 413, status
        # The server is still fine afterwards.
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        w.close()


def test_keepalive_then_shutdown_closes_idle_connections():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        # One keep-alive connection that made a request and now sits idle,
        # one that never sent anything.
        idle = socket.create_connection(("127.0.0.1", w.port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = idle.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first
        silent = socket.create_connection(("127.0.0.1", w.port))
        rc, took = w.stop(signal.SIGTERM)
        assert rc == 0, (rc, w.logs())
        assert took < 5, took
        idle.settimeout(2)
        assert idle.recv(4096) == b""      # closed by the server
        # No new connections once stopped.
        try:
            socket.create_connection(("127.0.0.1", w.port), timeout=1).close()
            raise AssertionError("still accepting after shutdown")
        except OSError:
            pass
        silent.close()
        idle.close()
    finally:
        w.close()


def test_idle_keepalive_connections_time_out():
    """A kept-alive connection is closed after http.keepalive_timeout of
    idleness (weir's own sweep, not lws's timer list), a busy one is not,
    and a request that stalls halfway through its headers is cut too."""
    w = Weir(WEIR, "--set", "http.keepalive_timeout=1s")
    try:
        w.wait_ready()

        def get(sock):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = sock.recv(4096)
            assert got.startswith(b"HTTP/1.1 200"), got

        def closed_after(sock, limit):
            """Seconds until the server closes sock (recv gives b"")."""
            t0 = time.monotonic()
            sock.settimeout(limit)
            assert sock.recv(4096) == b"", "unexpected bytes"
            return time.monotonic() - t0

        idle = socket.create_connection(("127.0.0.1", w.port))
        get(idle)
        assert 0.9 < closed_after(idle, 5) < 2.3    # timeout + one sweep at most
        busy = socket.create_connection(("127.0.0.1", w.port))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:      # a request every 0.4 s keeps it open
            get(busy)
            time.sleep(0.4)
        get(busy)
        assert 0.9 < closed_after(busy, 5) < 2.3
        stalled = socket.create_connection(("127.0.0.1", w.port))
        get(stalled)
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost:")    # and nothing more
        assert closed_after(stalled, 12) < 11                # lws's header timeout or ours
        for s in (idle, busy, stalled):
            s.close()
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        w.close()


def test_json_logs():
    w = Weir(WEIR, "--set", "log.format=json")
    try:
        w.wait_ready()
        w.stop()
        lines = [l for l in w.stderr().splitlines() if l.strip()]
        assert lines, "no log lines"
        events = [json.loads(l) for l in lines]      # every line is JSON
        assert all({"ts", "level", "module", "event"} <= e.keys() for e in events), events
        assert any(e["event"] == "started" for e in events), events
    finally:
        w.close()


def test_port_in_use_fails_clearly():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([WEIR, "serve", "--set", f"http.port={port}",
                            "--set", "data_dir=" + os.path.join("/tmp", f"weir-it-{port}")],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0, r
        assert "Sanitizer" not in r.stderr, r.stderr
        assert "cannot listen" in r.stderr and str(port) in r.stderr, r.stderr


run_tests([
    test_healthz_and_clean_sigterm,
    test_sigint_is_clean_too,
    test_errors_and_head,
    test_body_limit,
    test_keepalive_then_shutdown_closes_idle_connections,
    test_idle_keepalive_connections_time_out,
    test_json_logs,
    test_port_in_use_fails_clearly,
])
