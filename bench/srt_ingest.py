"""srt_ingest: N publishers replaying one MPEG-TS clip at real time (ffmpeg
-re -c copy, so the load generator does no encoding) over SRT, into weir
(receive, demux, Annex B/ADTS -> ISO, onto the bus) and into
srt-live-transmit relaying each stream SRT -> UDP (receive and forward only:
one process per publisher, since it serves one caller), one side at a time
on the same machine.  Measures the receivers' CPU time (user + system, all
processes and threads, from /proc) over a fixed window.

    srt_ingest_cpu: weir=X peer=Y ratio=Z   CPU-seconds per publisher-minute; ratio = peer/weir

The issue's goal is weir at most 1.2x srt-live-transmit's CPU (ratio >= 0.83)
while doing more work.  Median of RUNS runs.  argv[1]: the weir binary;
argv[2] (optional): publishers."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds

RUNS = 3
WINDOW = 15.0           # seconds measured, after WARMUP
WARMUP = 4.0


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(tmp):
    clip = os.path.join(tmp, "clip.ts")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1M",
                    "-g", "60", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", clip], check=True)
    return clip


def publisher(clip, url):
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
         "-i", clip, "-c", "copy", "-f", "mpegts", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(receivers, urls, clip):
    """CPU-seconds per publisher-minute of the receiver processes while
    len(urls) publishers push the clip."""
    pubs = []
    try:
        time.sleep(1.0)
        for u in urls:
            pubs.append(publisher(clip, u))
        time.sleep(WARMUP)
        pids = [r.pid for r in receivers]
        c0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(WINDOW)
        c1, t1 = cpu_seconds(pids), time.monotonic()
        alive = sum(p.poll() is None for p in pubs)
        if alive != len(urls):
            raise SystemExit(f"only {alive} of {len(urls)} publishers still running")
        return (c1 - c0) / ((t1 - t0) / 60 * len(urls))
    finally:
        for p in pubs:
            p.send_signal(signal.SIGINT)
        for p in pubs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for r in receivers:
            r.terminate()
        for r in receivers:
            try:
                r.wait(timeout=5)
            except subprocess.TimeoutExpired:
                r.kill()


def run_weir(weir, tmp, clip, n):
    port = free_udp_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http = s.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        rtmp = s.getsockname()[1]
    srv = subprocess.Popen([weir, "serve", "--set", f"srt.port={port}", "--set", f"http.port={http}",
                            "--set", f"rtmp.port={rtmp}", "--set", f"data_dir={tmp}/var",
                            "--set", "ingest.auth=open", "--set", "log.level=warn"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    urls = [f"srt://127.0.0.1:{port}?streamid=live/s{i}" for i in range(n)]
    return measure([srv], urls, clip)


def run_peer(clip, n):
    # Each relay forwards to a UDP socket we hold open and never read: the
    # datagrams are accepted and dropped by the kernel, as for a consumer
    # that keeps up, without ICMP errors back to the relay.
    sinks, relays, urls = [], [], []
    for i in range(n):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sinks.append(sink)
        port = free_udp_port()
        relays.append(subprocess.Popen(
            ["srt-live-transmit", "-q", "-a:yes", f"srt://127.0.0.1:{port}?mode=listener",
             f"udp://127.0.0.1:{sink.getsockname()[1]}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"srt://127.0.0.1:{port}?streamid=live/s{i}")
    try:
        return measure(relays, urls, clip)
    finally:
        for s in sinks:
            s.close()


def main():
    weir = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    tmp = tempfile.mkdtemp(prefix="weir-bench-srt-")
    clip = make_clip(tmp)
    w, p = [], []
    for _ in range(RUNS):
        w.append(run_weir(weir, tmp, clip, n))
        p.append(run_peer(clip, n))
    wc, pc = statistics.median(w), statistics.median(p)
    print(f"srt_ingest_cpu: weir={wc:.4f} peer={pc:.4f} ratio={pc / wc:.2f}"
          f"  (CPU-s per publisher-minute, {n} publishers, median of {RUNS};"
          f" peer srt-live-transmit SRT->UDP, one per publisher;"
          f" weir CPU = {wc / pc:.2f}x srt-live-transmit; goal <= 1.2x)")
    shutil.rmtree(tmp, ignore_errors=True)


main()
