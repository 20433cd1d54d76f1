"""SRT ingest through `weir serve`: a stream key created with `weir keys`
publishes over SRT (ffmpeg, access-control stream id) and the API sees it,
with the link's statistics in the API and on /metrics while it is live (and
gone from /metrics when it ends); a wrong key is refused inside the SRT
handshake by the real key store."""
import json
import os
import re
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


def test_srt_publish_with_a_key():
    srt = free_port(socket.SOCK_DGRAM)
    w = Weir(WEIR, "--set", f"srt.port={srt}", "--set", f"rtmp.port={free_port()}")
    try:
        w.wait_ready()
        key = cli(w.data_dir, "keys", "create", "field1").stdout.strip()
        token = cli(w.data_dir, "tokens", "create", "--scope", "read").stdout.strip()
        url = f"srt://127.0.0.1:{srt}?streamid=#!::r=live/{key},m=publish"
        p = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                              "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                              "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "4",
                              "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                              "-c:a", "aac", "-f", "mpegts", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        auth = {"Authorization": f"Bearer {token}"}
        seen = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15 and not seen:
            s, _, b = w.request("GET", "/api/v1/streams/field1", headers=auth)
            if s == 200 and json.loads(b).get("codecs"):
                seen = json.loads(b)
            time.sleep(0.1)
        assert seen, w.logs()
        assert seen["protocol"] == "srt" and "h264" in seen["codecs"], seen
        transport, metrics = None, ""
        # sampled every second from connect: the first sample may precede any media
        while time.monotonic() - t0 < 15 and not (transport and transport["receive_rate_mbps"] > 0
                                                 and "weir_srt_rtt" in metrics):
            s, _, b = w.request("GET", "/api/v1/streams/field1", headers=auth)
            transport = json.loads(b).get("transport") if s == 200 else None
            metrics = w.request("GET", "/metrics")[2].decode()
            time.sleep(0.2)
        assert transport and transport["receive_rate_mbps"] > 0, transport
        for name in ("rtt_ms", "packets_lost", "packets_retransmitted", "packets_dropped",
                     "receive_buffer_ms"):
            assert transport[name] >= 0, transport
        for family in ("weir_srt_rtt_seconds", "weir_srt_receive_bytes_per_second",
                       "weir_srt_received_packets_lost_total"):
            assert f'{family}{{stream="field1"}}' in metrics, metrics
        assert p.wait(timeout=60) == 0, p.stderr.read()
        t1 = time.monotonic()
        while time.monotonic() - t1 < 10 and 'stream="field1"' in metrics:
            metrics = w.request("GET", "/metrics")[2].decode()
            time.sleep(0.2)
        assert 'stream="field1"' not in metrics, "the ended stream's series stayed"
        rx = re.search(r'weir_received_bytes_total\{protocol="srt"\} (\S+)', metrics)
        assert rx and float(rx.group(1)) > 100000, metrics
        assert key not in w.logs() and key[3:] not in w.logs()
    finally:
        w.close()


def test_srt_wrong_key_refused_in_the_handshake():
    srt = free_port(socket.SOCK_DGRAM)
    w = Weir(WEIR, "--set", f"srt.port={srt}", "--set", f"rtmp.port={free_port()}")
    try:
        w.wait_ready()
        cli(w.data_dir, "keys", "create", "field2")
        url = f"srt://127.0.0.1:{srt}?streamid=#!::r=live/wk_not_a_key_at_all,m=publish"
        p = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                            "-i", "testsrc=size=160x120:rate=25", "-t", "1", "-c:v", "libx264",
                            "-f", "mpegts", url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        assert p.returncode != 0
        logs = w.logs()
        assert 'reason="unknown or revoked stream key" reject=1401' in logs, logs
        assert "closing connection" not in logs, logs
        assert "wk_not_a_key_at_all" not in logs
    finally:
        w.close()


def srt_ffmpeg(url, seconds, *extra):
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                             "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                             "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(seconds),
                             "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                             "-c:a", "aac", *extra, "-f", "mpegts", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def gauge(metrics, protocol):
    m = re.search(r'weir_publishers_connected\{protocol="%s"\} (\S+)' % protocol, metrics)
    return float(m.group(1)) if m else None


def test_srt_per_key_passphrase():
    """A key made through the API with its own SRT passphrase (the real key
    store, migration 4): ffmpeg with it publishes and counts in
    weir_publishers_connected{protocol="srt"}; without it ffmpeg is refused;
    the passphrase is in no API answer and no log line."""
    srt = free_port(socket.SOCK_DGRAM)
    w = Weir(WEIR, "--set", f"srt.port={srt}", "--set", f"rtmp.port={free_port()}")
    secret = "field passphrase 7"
    try:
        w.wait_ready()
        token = cli(w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        s, _, b = w.request("POST", "/api/v1/keys",
                            json.dumps({"name": "field3", "srt_passphrase": secret}).encode(),
                            headers=auth)
        assert s == 201, b
        created = json.loads(b)
        assert created["srt_passphrase_set"] is True and secret not in b.decode(), created
        key = created["key"]
        s, _, b = w.request("GET", "/api/v1/keys", headers=auth)
        assert s == 200 and secret not in b.decode(), b
        assert gauge(w.request("GET", "/metrics")[2].decode(), "srt") == 0
        url = f"srt://127.0.0.1:{srt}?streamid=#!::r=live/{key},m=publish"

        bare = srt_ffmpeg(url, 2)
        assert bare.wait(timeout=60) != 0, "published without the key's passphrase"

        p = srt_ffmpeg(url + "&passphrase=" + secret, 4)
        t0, live = time.monotonic(), None
        while time.monotonic() - t0 < 15 and not live:
            live = gauge(w.request("GET", "/metrics")[2].decode(), "srt") == 1
            time.sleep(0.1)
        assert live, w.logs()
        assert p.wait(timeout=60) == 0, p.stderr.read()
        t1 = time.monotonic()
        while time.monotonic() - t1 < 10 and gauge(w.request("GET", "/metrics")[2].decode(),
                                                   "srt") != 0:
            time.sleep(0.2)
        assert gauge(w.request("GET", "/metrics")[2].decode(), "srt") == 0
        logs = w.logs()
        assert "reject=1011" in logs or "UNSECURE" in logs or "Password" in logs, logs
        assert secret not in logs and key[3:] not in logs
    finally:
        w.close()


def test_srt_pts_wrap_keeps_segments():
    """A TS whose PTS/PCR cross 2^33 about 2-4 s in (ffmpeg -output_ts_offset
    95440): the packager goes on cutting 1 s segments through the wrap."""
    srt = free_port(socket.SOCK_DGRAM)
    w = Weir(WEIR, "--set", f"srt.port={srt}", "--set", f"rtmp.port={free_port()}",
             "--set", "ingest.auth=open", "--set", "packager.segment_duration=1s",
             "--set", "packager.part_duration=500ms", "--set", "packager.window=30",
             "--set", "packager.linger=60s")
    try:
        w.wait_ready()
        p = srt_ffmpeg(f"srt://127.0.0.1:{srt}?streamid=live/wrap", 10,
                       "-output_ts_offset", "95440")
        assert p.wait(timeout=60) == 0, p.stderr.read()
        time.sleep(1)
        s, _, b = w.request("GET", "/live/wrap/v0.m3u8")
        assert s == 200, (s, w.logs())
        text = b.decode()
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
        # 10 s of media in 1 s segments; the last may be short
        assert len(durations) >= 9, text
        for d in durations[:-1]:
            assert 0.9 <= d <= 1.1, text
        assert 9 <= sum(durations) <= 11, text
    finally:
        w.close()


run_tests([test_srt_publish_with_a_key, test_srt_wrong_key_refused_in_the_handshake,
           test_srt_per_key_passphrase, test_srt_pts_wrap_keeps_segments])
