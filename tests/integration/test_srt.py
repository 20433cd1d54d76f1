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


run_tests([test_srt_publish_with_a_key, test_srt_wrong_key_refused_in_the_handshake])
