"""hls.js and dash.js in headless Chromium play a live RTMP push from weir
over HTTPS, where ALPN picks HTTP/2: Low-Latency HLS (blocking playlist
reloads and held part requests on h2 streams) and low-latency DASH (segments
streamed as DATA frames while they are cut).  The certificate is self-signed
(openssl CLI); play.mjs --insecure lets Chromium take it.  The access log
proves the media went over h2."""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_players import play  # noqa: E402  (the same play.mjs runner)
from weirtest import Weir, free_port, main  # noqa: E402

WEIR = sys.argv[1]
state = {}


def setup():
    rtmp = free_port()
    state["tmp"] = tempfile.TemporaryDirectory(prefix="weir-h2-cert-")
    tmp = state["tmp"].name
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", f"http.tls_cert={cert}", "--set", f"http.tls_key={key}",
             "--set", "http.h2=true")
    state["weir"] = w
    base = f"https://localhost:{w.port}"
    state["base"] = base

    def ok(path):
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", base + path],
                           capture_output=True, text=True, timeout=10)
        return r.stdout == "200"
    t0 = time.monotonic()
    while not ok("/healthz"):
        assert w.proc.poll() is None and time.monotonic() - t0 < 15, w.logs()
        time.sleep(0.1)
    clip = os.path.join(w.tmp.name, "clip.flv")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error",
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                    "-b:v", "800k", "-g", "60", "-c:a", "aac", "-b:a", "64k", "-f", "flv", clip],
                   check=True, timeout=120)
    state["push"] = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                                      "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                                      f"rtmp://127.0.0.1:{rtmp}/live/cam1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not ok("/live/cam1/index.m3u8"):
        assert time.monotonic() - t0 < 30, "no live playlist"
        time.sleep(0.2)


def teardown():
    if "push" in state:
        state["push"].kill()
        state["push"].wait()
    if "weir" in state:
        state["weir"].finish()
    if "tmp" in state:
        state["tmp"].cleanup()


def test_ll_hls_and_ll_dash_play_over_h2():
    base = state["base"]
    for name, url, player in (("h2-ll-hls", f"{base}/live/cam1/index.m3u8", "hls"),
                              ("h2-ll-dash", f"{base}/live/cam1/index.mpd", "dash")):
        rc, res = play(name, url, player, "--low-latency", "--insecure")
        assert rc == 0 and res["pass"], (name, res.get("reason"))
        assert res["errors"]["fatal"] == [], (name, res["errors"])
        assert res["low_latency_mode"] is True, name
    logs = state["weir"].stderr()
    media = re.findall(r"module=access .*path=/live/cam1/\S+ status=(\d+) .*proto=(h\d)", logs)
    assert len(media) > 20, logs[-3000:]
    assert {p for _, p in media} == {"h2"}, [m for m in media if m[1] != "h2"][:5]
    # Held LL-HLS reloads came back 200 on h2 streams.
    assert re.search(r"path=/live/cam1/v0\.m3u8 status=200 .*proto=h2", logs)


main(setup, [test_ll_hls_and_ll_dash_play_over_h2], teardown)
