"""llhls: how soon a held LL-HLS request is answered after its part's last
frame.  A 640x360 30 fps push (1 s GOP, x264 zerolatency, ffmpeg -re) feeds
weir with 0.5 s parts.  For each new part, N clients send the blocking
playlist request for it (_HLS_msn/_HLS_part) before it exists; each answer's
arrival time minus the part's end on the wall clock (its segment's
PROGRAM-DATE-TIME plus the parts before it and itself) is one sample.  The
same run reads weir's CPU time (from /proc) while the requests are held.

    llhls_delivery_ms: p50=X p99=Y parts=P requests=R   (lower is better)
    llhls_cpu: weir=X%   of one core with N requests held across the run

No peer: nginx and the other servers here cannot hold a playlist request
until a part exists, so there is nothing to put beside the figure.
argv[1]: the weir binary; argv[2]: N (default 200)."""
import datetime
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import cpu_seconds, free_port

WINDOW = 20.0


def fetch(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def part_end(text, msn, part):
    """Unix seconds at which part `part` of segment `msn` ends, from the
    playlist: the PROGRAM-DATE-TIME before its parts plus their durations."""
    lines = text.splitlines()
    pdt = None
    t = None
    for line in lines:
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = datetime.datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
            t = pdt.timestamp()
        m = re.match(r'#EXT-X-PART:DURATION=([\d.]+),URI="v0_(\d+)\.(\d+)\.m4s"', line)
        if m and t is not None:
            t += float(m.group(1))
            if int(m.group(2)) == msn and int(m.group(3)) == part:
                return t
    return None


def main():
    weir = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    tmp = tempfile.mkdtemp(prefix="weir-bench-llhls-")
    http, rtmp = free_port(), free_port()
    srv = subprocess.Popen([weir, "serve", "--set", f"http.port={http}",
                            "--set", f"rtmp.port={rtmp}", "--set", f"srt.port={free_port()}",
                            "--set", f"data_dir={tmp}/var", "--set", "ingest.auth=open",
                            "--set", "http.access_log=false", "--set", "log.level=warn"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    push = None
    base = f"http://127.0.0.1:{http}/live/cam"
    try:
        time.sleep(1)
        push = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                                 "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                                 "-t", str(WINDOW + 20), "-c:v", "libx264", "-preset",
                                 "ultrafast", "-tune", "zerolatency", "-g", "30",
                                 "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/cam"])
        for _ in range(100):
            try:
                if "#EXT-X-PRELOAD-HINT" in fetch(f"{base}/v0.m3u8"):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        samples, parts = [], 0
        cpu0, t0 = cpu_seconds([srv.pid]), time.monotonic()
        while time.monotonic() - t0 < WINDOW:
            text = fetch(f"{base}/v0.m3u8")
            msn, part = map(int, re.search(r'PRELOAD-HINT:TYPE=PART,URI="v0_(\d+)\.(\d+)',
                                            text).groups())
            got = []
            lock = threading.Lock()

            def one():
                body = fetch(f"{base}/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}")
                now = time.time()
                with lock:
                    got.append((now, body))
            threads = [threading.Thread(target=one) for _ in range(n)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            end = part_end(got[0][1], msn, part)
            if end is None:
                continue
            parts += 1
            samples += [(now - end) * 1000 for now, _ in got]
        cpu = (cpu_seconds([srv.pid]) - cpu0) / (time.monotonic() - t0) * 100
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"llhls_delivery_ms: p50={p50:.0f} p99={p99:.0f} parts={parts} "
              f"requests={len(samples)}")
        print(f"llhls_cpu: weir={cpu:.1f}% of one core with {n} requests held per part")
    finally:
        for p in (push, srv):
            if p:
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    main()
