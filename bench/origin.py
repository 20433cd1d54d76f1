"""origin: requests per second and p99 latency for what players fetch, weir's
origin against nginx serving the same bytes from files (one worker, sendfile,
tcp_nopush, open_file_cache, keep-alive, no access log on either side).  A
live stream is pushed into weir (ffmpeg -re -c copy of a 640x360 ~1 Mbit/s
clip, looped); the bytes weir serves are fetched once and written to nginx's
root, so both serve identical bodies.

    origin_playlist: weir=X peer=Y ratio=Z  p99 weir=.. peer=..   a live media playlist, from memory
    origin_part:     ...   an LL-HLS part (~40 KB), from memory
    origin_segment:  ...   a 2 s media segment (~250 KB), from memory
    origin_vod:      ...   a segment of the recording, from disk
    origin_h2_playlist, origin_h2_segment: the playlist and the segment over
                     cleartext HTTP/2 with prior knowledge (weir's
                     http.h2c_port, nginx's `listen ... http2`), h2load -c32
                     -m10: 32 connections with 10 streams in flight on each

The server is pinned to CPU 0 and wrk to CPU 1 (taskset; the same for both
servers), so each side has one core.  Each round measures every case on weir
then on nginx (wrk --latency -t1 -c32 -d DURATION); ROUNDS rounds alternate
the two, and the medians and their ratio are printed (ratio = weir/nginx for
requests/s).  argv[1]: the weir binary.  Environment: BENCH_ROUNDS (3),
BENCH_DURATION (4s), BENCH_CONNS (32), BENCH_CASES (comma-separated case
names to run; all by default)."""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import cpu_seconds, free_port, nginx_binary, nginx_conf

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = os.environ.get("BENCH_DURATION", "4s")
CONNS = os.environ.get("BENCH_CONNS", "32")
CASES = [c for c in os.environ.get("BENCH_CASES", "").split(",") if c]
SERVER_CPU, CLIENT_CPU = "0", "1"


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def family(pid):
    """pid and its children (nginx's worker)."""
    pids = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return pids


def wrk(url, pid):
    """(requests/s, p99 ms, server CPU us per request) of one wrk run on
    CLIENT_CPU.  The CPU cost holds up better than requests/s on a machine
    that others share: it does not count the time the server waited."""
    pids = family(pid)
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "--latency", "-t1", f"-c{CONNS}",
                          f"-d{DURATION}", url], capture_output=True, text=True,
                         timeout=120).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+(?:us|ms|s))", out, re.M)
    if not rps or not p99 or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk failed on {url}:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    cpu_us = (cpu_seconds(pids) - cpu0) * 1e6 / max(1, int(total.group(1)))
    return float(rps.group(1)), to_ms(p99.group(1)), cpu_us


def h2load(url, pid):
    """As wrk(), over HTTP/2 (h2load from nghttp2-client, prior knowledge on
    an http:// URL).  h2load reports no percentiles: the p99 column holds
    the mean request time."""
    pids = family(pid)
    cpu0 = cpu_seconds(pids)
    secs = float(DURATION.rstrip("s"))
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "h2load", "-t1", f"-c{CONNS}", "-m10",
                          "-D", f"{secs:g}", url], capture_output=True, text=True,
                         timeout=120).stdout
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not rps or not done or not mean or done.group(4) != "0" or done.group(5) != "0" \
            or "2xx" not in out or not re.search(r"status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx", out):
        raise SystemExit(f"h2load failed on {url}:\n{out}")
    cpu_us = (cpu_seconds(pids) - cpu0) * 1e6 / max(1, int(done.group(3)))
    return float(rps.group(1)), to_ms(mean.group(1)), cpu_us


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
    http, rtmp, h2c = free_port(), free_port(), free_port()
    srv = subprocess.Popen(["taskset", "-c", SERVER_CPU, weir, "serve",
                            "--set", f"http.port={http}", "--set", f"http.h2c_port={h2c}",
                            "--set", f"rtmp.port={rtmp}", "--set", f"srt.port={free_port()}",
                            "--set", f"data_dir={tmp}/var", "--set", "ingest.auth=open",
                            "--set", "http.access_log=false", "--set", "packager.record=true",
                            "--set", "packager.part_duration=400ms",
                            "--set", "log.level=warn"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    push = None
    nginx = None
    try:
        base = f"http://127.0.0.1:{http}"
        wait_for(lambda: fetch(f"{base}/healthz"))
        push = subprocess.Popen(["taskset", "-c", CLIENT_CPU, "ffmpeg", "-hide_banner",
                                 "-loglevel", "error", "-re",
                                 "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv",
                                 f"rtmp://127.0.0.1:{rtmp}/live/cam"])
        pl_path = "/live/cam/v0.m3u8"
        # Wait until three segments exist, then take the middle one.
        pl = wait_for(lambda: (t := fetch(base + pl_path).decode()).count(
            "#EXTINF") >= 3 and t)
        segs = re.findall(r"^(v0_\d+\.m4s)$", pl, re.M)
        seg = fetch(f"{base}/live/cam/{segs[-2]}")
        asset = os.listdir(f"{tmp}/var/vod")[0]
        vod_path = f"/vod/{asset}/{segs[-2]}"
        wait_for(lambda: fetch(base + vod_path))

        def parts():
            text = fetch(base + pl_path).decode()
            return re.findall(r'#EXT-X-PART:[^\n]*URI="(v0_\d+\.\d+\.m4s)"', text)

        def newest_part():
            # The complete part closest to 40 KB among the newest few; parts
            # leave the playlist after a few segments, so pick before each run.
            sized = [(abs(len(fetch(f"{base}/live/cam/{p}")) - 40000), p) for p in parts()[-5:]]
            return base + "/live/cam/" + min(sized)[1]

        part_url = newest_part()
        part = fetch(part_url)
        playlist = fetch(base + pl_path)

        root = os.path.join(tmp, "root")
        os.makedirs(root)
        for name, body in (("seg.m4s", seg), ("part.m4s", part), ("pl.m3u8", playlist)):
            with open(os.path.join(root, name), "wb") as f:
                f.write(body)
        nport, nport_h2 = free_port(), free_port()
        conf = nginx_conf(tmp, f"""http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  types {{ video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }}
  server {{ listen 127.0.0.1:{nport}; root {root};
    location / {{ add_header Cache-Control "public, max-age=1"; }} }}
  server {{ listen 127.0.0.1:{nport_h2} http2; root {root};
    http2_max_concurrent_streams 128;
    location / {{ add_header Cache-Control "public, max-age=1"; }} }}
}}
""", 1024)
        nginx = subprocess.Popen(["taskset", "-c", SERVER_CPU, nginx_binary(), "-c", conf,
                                  "-p", tmp],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer = f"http://127.0.0.1:{nport}"
        wait_for(lambda: fetch(f"{peer}/pl.m3u8"))

        def newest_segment():
            # A live segment stays listed ~16 s: take the newest before each
            # measurement so it cannot fall out of the window meanwhile.
            text = fetch(base + pl_path).decode()
            return base + "/live/cam/" + re.findall(r"^(v0_\d+\.m4s)$", text, re.M)[-1]

        base_h2, peer_h2 = f"http://127.0.0.1:{h2c}", f"http://127.0.0.1:{nport_h2}"
        cases = [("origin_playlist", lambda: base + pl_path, peer + "/pl.m3u8", len(playlist), wrk),
                 ("origin_part", newest_part, peer + "/part.m4s", len(part), wrk),
                 ("origin_segment", newest_segment, peer + "/seg.m4s", len(seg), wrk),
                 ("origin_vod", lambda: base + vod_path, peer + "/seg.m4s", len(seg), wrk),
                 ("origin_h2_playlist", lambda: base_h2 + pl_path, peer_h2 + "/pl.m3u8",
                  len(playlist), h2load),
                 ("origin_h2_segment", lambda: newest_segment().replace(base, base_h2),
                  peer_h2 + "/seg.m4s", len(seg), h2load)]
        cases = [c for c in cases if not CASES or c[0] in CASES]
        results = {name: ([], []) for name, *_ in cases}
        for r in range(ROUNDS):
            for name, w_url, n_url, _, tool in cases:
                results[name][0].append(tool(w_url(), srv.pid))
                results[name][1].append(tool(n_url, nginx.pid))
                print(f"  round {r + 1} {name}: weir={results[name][0][-1][0]:.0f} "
                      f"nginx={results[name][1][-1][0]:.0f}", file=sys.stderr, flush=True)
        for name, _, _, size, _ in cases:
            w, n = results[name]
            w_rps = statistics.median(x[0] for x in w)
            n_rps = statistics.median(x[0] for x in n)
            w_p99 = statistics.median(x[1] for x in w)
            n_p99 = statistics.median(x[1] for x in n)
            w_cpu = statistics.median(x[2] for x in w)
            n_cpu = statistics.median(x[2] for x in n)
            print(f"{name}: weir={w_rps:.0f} peer={n_rps:.0f} ratio={w_rps / n_rps:.2f}  "
                  f"p99 weir={w_p99:.2f}ms peer={n_p99:.2f}ms  "
                  f"cpu/req weir={w_cpu:.1f}us peer={n_cpu:.1f}us ratio={n_cpu / w_cpu:.2f}  "
                  f"({size} bytes)", flush=True)
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
