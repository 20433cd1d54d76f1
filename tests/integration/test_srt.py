"""SRT ingest through `weir serve`: a stream key created with `weir keys`
publishes over SRT (ffmpeg, access-control stream id) and the API sees it."""
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
        assert p.wait(timeout=60) == 0, p.stderr.read()
        assert key not in w.logs() and key[3:] not in w.logs()
    finally:
        w.close()


run_tests([test_srt_publish_with_a_key])
