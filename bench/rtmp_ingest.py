"""rtmp_ingest: N publishers replaying one FLV at real time (ffmpeg -re
-c copy, so the load generator does no encoding) into weir and into nginx
with libnginx-mod-rtmp (`live on`), one server at a time on the same
machine.  Measures the server's CPU time (user + system, all its processes
and threads, from /proc) over a fixed window and its resident memory above
the idle baseline, per publisher.

    rtmp_ingest_cpu: weir=X peer=Y ratio=Z   CPU-seconds per publisher-minute; ratio = peer/weir
    rtmp_ingest_rss: weir=X peer=Y ratio=Z   KiB of RSS per publisher; ratio = peer/weir

Median of RUNS runs.  argv[1]: the weir binary; argv[2] (optional): publishers."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds, free_port, nginx_binary, nginx_conf

RUNS = 3
WINDOW = 15.0           # seconds measured, after WARMUP
WARMUP = 3.0


def wait_port(port, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def tree(pid):
    """pid and its descendants (nginx: master and worker)."""
    out = [pid]
    try:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        kids = []
    for k in kids:
        out += tree(int(k))
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def make_clip(tmp):
    clip = os.path.join(tmp, "clip.flv")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1M",
                    "-g", "60", "-c:a", "aac", "-b:a", "128k", "-f", "flv", clip], check=True)
    return clip


def measure(server_argv, port, clip, n):
    srv = subprocess.Popen(server_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pubs = []
    try:
        wait_port(port)
        time.sleep(0.5)
        base_rss = rss_kib(tree(srv.pid))
        for i in range(n):
            pubs.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                 "-i", clip, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/s{i}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(WARMUP)
        pids = tree(srv.pid)
        c0, t0 = cpu_seconds(pids), time.monotonic()
        peak = 0
        while time.monotonic() - t0 < WINDOW:
            time.sleep(0.5)
            peak = max(peak, rss_kib(pids))
        c1, t1 = cpu_seconds(pids), time.monotonic()
        alive = sum(p.poll() is None for p in pubs)
        if alive != n:
            raise SystemExit(f"{server_argv[0]}: only {alive} of {n} publishers still running")
        minutes = (t1 - t0) / 60 * n
        return (c1 - c0) / minutes, (peak - base_rss) / n
    finally:
        for p in pubs:
            p.send_signal(signal.SIGINT)
        for p in pubs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.terminate()
        srv.wait()


def main():
    weir = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    nginx = nginx_binary()
    module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
    tmp = tempfile.mkdtemp(prefix="weir-bench-rtmp-")
    os.chmod(tmp, 0o755)
    clip = make_clip(tmp)
    w_cpu, w_rss, n_cpu, n_rss = [], [], [], []
    for _ in range(RUNS):
        port = free_port()
        c, r = measure([weir, "serve", "--set", f"rtmp.port={port}",
                        "--set", f"http.port={free_port()}", "--set", f"data_dir={tmp}/var",
                        "--set", "ingest.auth=open", "--set", "log.level=warn"], port, clip, n)
        w_cpu.append(c)
        w_rss.append(r)
        port = free_port()
        conf = nginx_conf(tmp, f"rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n"
                               f"  application live {{ live on; record off; }} }} }}\n",
                          1024, modules=[module])
        c, r = measure([nginx, "-c", conf, "-p", tmp], port, clip, n)
        n_cpu.append(c)
        n_rss.append(r)
    wc, nc = statistics.median(w_cpu), statistics.median(n_cpu)
    wr, nr = statistics.median(w_rss), statistics.median(n_rss)
    print(f"rtmp_ingest_cpu: weir={wc:.4f} peer={nc:.4f} ratio={nc / wc:.2f}"
          f"  (CPU-s per publisher-minute, {n} publishers, median of {RUNS};"
          f" peer nginx-rtmp 1 worker; weir CPU = {wc / nc:.2f}x nginx-rtmp)")
    print(f"rtmp_ingest_rss: weir={wr:.0f}KiB peer={nr:.0f}KiB"
          f" ratio={(nr / wr) if wr > 0 else float('inf'):.2f}  (RSS per publisher above idle)")
    shutil.rmtree(tmp, ignore_errors=True)


main()
