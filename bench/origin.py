"""origin: requests per second for what players fetch, weir's origin against
nginx serving the same bytes from files (sendfile on, 1 worker, keep-alive,
no access log on either side).  A live stream is pushed into weir (ffmpeg -re
-c copy of a 640x360 ~1 Mbit/s clip, looped); the bytes weir serves are
fetched once and written to nginx's root, so both serve identical responses.

    origin_playlist_rps: weir=X peer=Y ratio=Z   a live media playlist (~1 KB), from memory
    origin_segment_rps:  weir=X peer=Y ratio=Z   a 2 s media segment (~250 KB), from memory
    origin_vod_rps:      weir=X peer=Y ratio=Z   the same segment from a recording on disk

wrk -t1 -c32 -d4s, median of RUNS runs; ratio = weir/nginx.  weir runs one
I/O loop, nginx one worker.  argv[1]: the weir binary."""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_port, nginx_binary, nginx_conf

RUNS = 3


def wrk(url):
    out = subprocess.run(["wrk", "-t1", "-c32", "-d4s", url], capture_output=True, text=True,
                         timeout=60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or "Non-2xx" in out:
        raise SystemExit(f"wrk failed on {url}:\n{out}")
    return float(m.group(1))


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


def wait_for(fn, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out: {fn}")


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-bench-origin-")
    os.chmod(tmp, 0o755)            # nginx's worker runs as another user
    clip = os.path.join(tmp, "clip.flv")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine", "-t", "20",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1M", "-g", "60",
                    "-c:a", "aac", "-f", "flv", clip], check=True)
    http, rtmp = free_port(), free_port()
    srv = subprocess.Popen([weir, "serve", "--set", f"http.port={http}",
                            "--set", f"rtmp.port={rtmp}", "--set", f"srt.port={free_port()}",
                            "--set", f"data_dir={tmp}/var", "--set", "ingest.auth=open",
                            "--set", "http.access_log=false", "--set", "packager.record=true",
                            "--set", "log.level=warn"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    push = None
    nginx = None
    try:
        base = f"http://127.0.0.1:{http}"
        wait_for(lambda: fetch(f"{base}/healthz"))
        push = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                                 "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                                 f"rtmp://127.0.0.1:{rtmp}/live/cam"])
        # Wait until three segments exist, then take the middle one.
        pl = wait_for(lambda: (t := fetch(f"{base}/live/cam/v0.m3u8").decode()).count(
            "#EXTINF") >= 3 and t)
        segs = re.findall(r"^(v0_\d+\.m4s)$", pl, re.M)
        seg = fetch(f"{base}/live/cam/{segs[-2]}")
        pl_path = "/live/cam/v0.m3u8"
        asset = os.listdir(f"{tmp}/var/vod")[0]
        vod_path = f"/vod/{asset}/{segs[-2]}"
        wait_for(lambda: fetch(base + vod_path))

        root = os.path.join(tmp, "root")
        os.makedirs(root)
        with open(os.path.join(root, "seg.m4s"), "wb") as f:
            f.write(seg)
        with open(os.path.join(root, "pl.m3u8"), "wb") as f:
            f.write(fetch(base + pl_path))
        nport = free_port()
        conf = nginx_conf(tmp, f"""http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  types {{ video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }}
  server {{ listen 127.0.0.1:{nport}; root {root};
    location / {{ add_header Cache-Control "public, max-age=1"; }} }}
}}
""", 1024)
        nginx = subprocess.Popen([nginx_binary(), "-c", conf, "-p", tmp],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer = f"http://127.0.0.1:{nport}"
        wait_for(lambda: fetch(f"{peer}/pl.m3u8"))

        def newest_segment():
            # A live segment stays listed ~16 s: take the newest before each
            # measurement so it cannot fall out of the window meanwhile.
            text = fetch(base + pl_path).decode()
            return base + "/live/cam/" + re.findall(r"^(v0_\d+\.m4s)$", text, re.M)[-1]

        cases = [("origin_playlist_rps", lambda: base + pl_path, peer + "/pl.m3u8"),
                 ("origin_segment_rps", newest_segment, peer + "/seg.m4s"),
                 ("origin_vod_rps", lambda: base + vod_path, peer + "/seg.m4s")]
        for name, w_url, n_url in cases:
            w = statistics.median(wrk(w_url()) for _ in range(RUNS))
            n = statistics.median(wrk(n_url) for _ in range(RUNS))
            print(f"{name}: weir={w:.0f} peer={n:.0f} ratio={w / n:.2f}"
                  f"  ({len(seg) // 1024} KiB segment)" if "segment" in name or "vod" in name
                  else f"{name}: weir={w:.0f} peer={n:.0f} ratio={w / n:.2f}", flush=True)
    finally:
        for p in (push, nginx, srv):
            if p:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
