"""RTMP ingest through `weir serve`: stream keys decide who may publish and
under which name; the API sees the stream and can kick it; bad input closes
only that connection."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, assert_no_sanitizer_report, free_port, run_tests  # noqa: E402

WEIR = sys.argv[1]


def cli(data_dir, *args):
    return weirtest.cli(WEIR, data_dir, *args)


def ffmpeg(url, seconds=2.0, wait=True):
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-c:a", "aac", "-f", "flv", url]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if wait:
        p.wait(timeout=60)
    return p


def serve(*extra):
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", *extra)
    w.rtmp = rtmp
    return w


def wait_for(fn, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return None


def test_key_publishes_and_names_the_stream():
    w = serve()
    try:
        w.wait_ready()
        key = cli(w.data_dir, "keys", "create", "cam1").stdout.strip()
        token = cli(w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/{key}", seconds=3, wait=False)

        def live():
            s, _, b = w.request("GET", "/api/v1/streams/cam1", headers=auth)
            return json.loads(b) if s == 200 and json.loads(b).get("codecs") else None
        stream = wait_for(live)
        assert stream, w.logs()
        assert stream["protocol"] == "rtmp" and stream["codecs"] == ["h264", "aac"], stream
        assert stream["resolution"] == "320x240", stream
        assert p.wait(timeout=60) == 0, p.stderr.read()
        # The key itself never reaches the logs; the stream name does.
        assert key not in w.logs() and key[3:] not in w.logs()
        assert "stream=cam1" in w.stderr()
        s, _, b = w.request("GET", "/metrics")
        assert 'weir_received_bytes_total{protocol="rtmp"}' in b.decode(), b
    finally:
        w.close()


def test_wrong_and_revoked_keys_are_refused():
    w = serve()
    try:
        w.wait_ready()
        key = cli(w.data_dir, "keys", "create", "cam2").stdout.strip()
        bad = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/{bad}")
        assert p.returncode != 0
        assert wait_for(lambda: "unknown or revoked stream key" in w.stderr()), w.stderr()
        assert cli(w.data_dir, "keys", "revoke", "cam2").returncode == 0
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/{key}")
        assert p.returncode != 0
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        w.close()


def test_kick_from_the_api():
    w = serve("--set", "ingest.auth=open")
    try:
        w.wait_ready()
        token = cli(w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/kickme", seconds=20, wait=False)
        assert wait_for(lambda: w.request("GET", "/api/v1/streams/kickme",
                                          headers=auth)[0] == 200), w.logs()
        s, _, _ = w.request("DELETE", "/api/v1/streams/kickme", headers=auth)
        assert s == 202, s
        t0 = time.monotonic()
        p.wait(timeout=15)
        assert time.monotonic() - t0 < 10
        assert wait_for(lambda: w.request("GET", "/api/v1/streams/kickme",
                                          headers=auth)[0] == 404)
        assert "publisher kicked" in w.stderr()
    finally:
        w.close()


def test_duplicate_publisher_is_rejected():
    w = serve("--set", "ingest.auth=open")
    try:
        w.wait_ready()
        first = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/dup", seconds=6, wait=False)
        assert wait_for(lambda: "stream=dup" in w.stderr())
        second = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/dup", seconds=2)
        assert second.returncode != 0
        assert "stream already has a publisher" in w.stderr()
        assert first.wait(timeout=30) == 0
    finally:
        w.close()


def test_duplicate_publisher_takes_over_when_configured():
    w = serve("--set", "ingest.auth=open", "--set", "ingest.on_duplicate=takeover")
    try:
        w.wait_ready()
        first = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/dup", seconds=20, wait=False)
        assert wait_for(lambda: "stream=dup" in w.stderr())
        second = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/dup", seconds=2, wait=False)
        assert second.wait(timeout=30) == 0, second.stderr.read()
        # The first was disconnected long before its 20 s were up.
        assert first.wait(timeout=10) is not None
        assert "taking over stream" in w.stderr() and "publisher kicked" in w.stderr()
    finally:
        w.close()


def test_garbage_closes_only_that_connection():
    w = serve("--set", "ingest.auth=open")
    try:
        w.wait_ready()
        # Not RTMP at all: wrong version byte.
        with socket.create_connection(("127.0.0.1", w.rtmp), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\0" * 2000)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        assert wait_for(lambda: "bad handshake" in w.stderr()), w.stderr()
        # A silent connection is dropped by the handshake timeout...
        silent = socket.create_connection(("127.0.0.1", w.rtmp), timeout=5)
        # ...while a real publisher still works.
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/ok", seconds=1.5)
        assert p.returncode == 0
        silent.close()
        assert w.request("GET", "/healthz")[0] == 200
    finally:
        w.close()


def test_transcode_keeps_up_with_a_live_publisher():
    # A small ladder over a live 320x240 publisher on this (2-core) machine:
    # the job must read the source as fast as it comes (no skip) and finish.
    w = serve("--set", "ingest.auth=open", "--set", "transcode.enabled=true",
              "--set", "transcode.ladder=source; 180p:320x180@300k; 90p:160x90@120k; "
                       "audio:aac@96k/48000/2")
    try:
        w.wait_ready()
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/cam1", seconds=4, wait=False)
        assert p.wait(timeout=60) == 0, p.stderr.read()
        assert wait_for(lambda: "event=\"job ended\"" in w.stderr(), timeout=20), w.logs()
        logs = w.stderr()
        assert "event=ladder stream=cam1" in logs, logs
        ended = [line for line in logs.splitlines() if "event=\"job ended\"" in line][0]
        assert "state=done" in ended and "source_skips=0 " in ended, ended
        assert "late_drops=0" in ended, ended
        s, _, b = w.request("GET", "/metrics")
        assert 'weir_transcode_jobs{state="done"} 1' in b.decode(), b
        assert 'weir_transcode_workers{kind="used"} 0' in b.decode(), b
        # The job and the pool, in the API.
        token = cli(w.data_dir, "tokens", "create", "--scope", "read").stdout.strip()
        s, _, b = w.request("GET", "/api/v1/transcode/jobs",
                            headers={"Authorization": f"Bearer {token}"})
        assert s == 200, b
        st = json.loads(b)
        assert st["enabled"] and st["pool"]["capacity"] > 0 and st["pool"]["used"] == 0, st
        job = st["jobs"][0]
        assert job["kind"] == "live" and job["stream"] == "cam1" and job["state"] == "done", job
        assert job["admission"]["cost"] > 0 and job["ladder"]["profile"] == "default", job
        assert [r["name"] for r in job["renditions"]] == ["source", "180p", "90p"], job
    finally:
        w.close()


def test_sigterm_with_a_publisher_connected():
    w = serve("--set", "ingest.auth=open")
    try:
        w.wait_ready()
        p = ffmpeg(f"rtmp://127.0.0.1:{w.rtmp}/live/live1", seconds=20, wait=False)
        assert wait_for(lambda: "event=tracks" in w.stderr()), w.stderr()
        rc, took = w.stop()
        assert rc == 0 and took < 5, (rc, took, w.stderr())
        assert "event=unpublished stream=live1" in w.stderr()
        p.wait(timeout=10)
    finally:
        w.close()


run_tests([
    test_key_publishes_and_names_the_stream,
    test_wrong_and_revoked_keys_are_refused,
    test_kick_from_the_api,
    test_duplicate_publisher_is_rejected,
    test_duplicate_publisher_takes_over_when_configured,
    test_garbage_closes_only_that_connection,
    test_transcode_keeps_up_with_a_live_publisher,
    test_sigterm_with_a_publisher_connected,
])
