"""transcode: one 4-rung ladder (720p source -> 720/480/360/240, libx264
veryfast, the same bitrates, no B-frames, no scene cuts) run by weir's
pipeline on a file (bench/transcode_file.c, built here against the
optimised build in build/) and by one ffmpeg process with `split`.  Prints

    transcode_wall: weir=Xs peer=Ys ratio=Z
    transcode_cpu: weir=Xs peer=Ys ratio=Z

ratio = peer/weir: above 1, weir is faster / cheaper.  Each figure is the
median of 3 runs.  Not yet here (issue 6): PSNR per rung and the
four-processes peer.  argv[1] (the weir binary bench/run passes) is not
used; optional argv[2]: a clip to use instead of the generated 10 s 720p30."""
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNGS = [("720p", 1280, 720, 2800), ("480p", 854, 480, 1400), ("360p", 640, 360, 800),
         ("240p", 426, 240, 400)]
RUNS = 3


def build_driver(tmp):
    subprocess.run(["ninja", "-C", os.path.join(ROOT, "build"), "--quiet",
                    "transcode/libweir_transcode.a", "core/libweir_core.a"], check=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libavformat", "libavcodec",
                            "libavutil", "libswscale", "libswresample", "libwebsockets",
                            "jansson", "yaml-0.1"],
                           check=True, capture_output=True, text=True).stdout
    exe = os.path.join(tmp, "transcode_file")
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-O2", "-D_GNU_SOURCE", "-I", ROOT,
                    os.path.join(ROOT, "bench", "transcode_file.c"),
                    os.path.join(ROOT, "build", "transcode", "libweir_transcode.a"),
                    os.path.join(ROOT, "build", "core", "libweir_core.a"),
                    *shlex.split(flags), "-lpthread", "-lm", "-o", exe], check=True)
    return exe


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    c0, t0 = child_cpu(), time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.monotonic() - t0, child_cpu() - c0, out


def main():
    tmp = tempfile.mkdtemp(prefix="weir-bench-transcode-")
    try:
        exe = build_driver(tmp)
        clip = sys.argv[2] if len(sys.argv) > 2 else os.path.join(tmp, "src.mp4")
        if len(sys.argv) <= 2:
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i",
                            "sine=sample_rate=48000", "-t", "10", "-c:v", "libx264",
                            "-preset", "veryfast", "-g", "60", "-c:a", "aac", clip], check=True)
        ladder = "; ".join(f"{n}:{w}x{h}@{k}k,preset=veryfast" for n, w, h, k in RUNGS)
        ladder += "; audio:aac@128k/48000/2"
        split = f"[0:v]split={len(RUNGS)}" + "".join(f"[s{i}]" for i in range(len(RUNGS)))
        split += ";" + ";".join(f"[s{i}]scale={w}:{h}:flags=bicubic[o{i}]"
                                for i, (_, w, h, _) in enumerate(RUNGS))
        ff = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", clip, "-filter_complex", split]
        for i, (_, _, _, k) in enumerate(RUNGS):
            ff += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{k}k",
                   "-maxrate", f"{k}k", "-bufsize", f"{2 * k}k", "-bf", "0",
                   "-x264-params", "scenecut=0", "-f", "null", "-"]
        weir, peer = [], []
        for _ in range(RUNS):
            wall, cpu, out = timed([exe, clip, ladder])
            if "state=done" not in out:
                sys.exit(f"transcode_file failed: {out}")
            weir.append((wall, cpu))
            peer.append(timed(ff)[:2])
        for i, name in enumerate(["wall", "cpu"]):
            w = statistics.median(x[i] for x in weir)
            p = statistics.median(x[i] for x in peer)
            print(f"transcode_{name}: weir={w:.2f}s peer={p:.2f}s ratio={p / w:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
