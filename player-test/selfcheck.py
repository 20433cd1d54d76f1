#!/usr/bin/env python3
"""Proves play.mjs before weir serves any media: makes short clips with the
ffmpeg CLI, packages them as HLS (fMP4 and MPEG-TS) and DASH, serves them from
a small CORS-enabled HTTP server in this process, and plays each with
hls.js / dash.js in headless Chromium through play.mjs.

    player-test/selfcheck.py [--chromium PATH] [--keep DIR] [--jobs 2] [--verbose]

Prints one line per check and a closing 'N passed, N failed'; exit 0 when all
pass.  Standard library only."""

import argparse
import concurrent.futures
import datetime
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLAY = os.path.join(HERE, "play.mjs")


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers a cross-origin player needs.  Paths under
    /nocors/ get no CORS headers, to prove the players notice."""

    def do_GET(self):
        if self.path == "/utc":   # the live MPD's UTCTiming (http-xsdate)
            now = datetime.datetime.now(datetime.timezone.utc)
            body = now.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self):
        # Playlists and MPDs of the live stream change every second.
        if self.path.endswith((".m3u8", ".mpd")):
            self.send_header("Cache-Control", "no-cache")
        self._cors()
        super().end_headers()

    def translate_path(self, path):
        if path.startswith("/nocors/"):
            path = path[len("/nocors"):]
        return super().translate_path(path)

    def _cors(self):
        if not self.path.startswith("/nocors/"):
            self.send_header("Access-Control-Allow-Origin", "*")
            # Without it Resource Timing hides transfer sizes cross-origin and
            # dash.js takes every segment for a cache hit: its ABR never learns.
            self.send_header("Timing-Allow-Origin", "*")

    def log_message(self, fmt, *args):
        pass


def ffmpeg(*args):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")


def make_media(root):
    """Two sources, each encoded once and packaged with -c copy."""
    t0 = time.monotonic()
    # 12 s, one rendition, 2 s GOPs.
    clip = os.path.join(root, "clip.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=12",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=12",
           "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
           "-c:a", "aac", "-b:a", "64k", clip)
    for kind, ext in (("fmp4", "m4s"), ("mpegts", "ts")):
        d = os.path.join(root, "hls-" + kind)
        os.makedirs(d)
        ffmpeg("-i", clip, "-c", "copy", "-f", "hls", "-hls_time", "2",
               "-hls_segment_type", kind, "-hls_playlist_type", "vod",
               "-hls_fmp4_init_filename", "init.mp4",
               "-hls_segment_filename", os.path.join(d, "seg%03d." + ext),
               os.path.join(d, "index.m3u8"))
    os.makedirs(os.path.join(root, "dash"))
    ffmpeg("-i", clip, "-c", "copy", "-f", "dash", "-seg_duration", "2",
           os.path.join(root, "dash", "index.mpd"))

    # 45 s, two renditions with keyframes every second at the same times, CBR
    # (filler) so segment sizes match the advertised bandwidths.
    abr = os.path.join(root, "abr.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=45",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=45",
           "-filter_complex", "[0:v]split=2[hi][t];[t]scale=320:180[lo]",
           "-map", "[hi]", "-map", "[lo]", "-map", "1:a",
           "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
           "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-x264-params", "nal-hrd=cbr",
           "-b:v:0", "1500k", "-minrate:v:0", "1500k", "-maxrate:v:0", "1500k", "-bufsize:v:0", "750k",
           "-b:v:1", "250k", "-minrate:v:1", "250k", "-maxrate:v:1", "250k", "-bufsize:v:1", "125k",
           "-c:a", "aac", "-b:a", "64k", abr)
    d = os.path.join(root, "hls-abr")
    os.makedirs(d)
    ffmpeg("-i", abr, "-map", "0:v:0", "-map", "0:v:1", "-map", "0:a", "-map", "0:a",
           "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
           "-hls_playlist_type", "vod", "-hls_fmp4_init_filename", "init.mp4",
           "-master_pl_name", "index.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1",
           "-hls_segment_filename", os.path.join(d, "v%v", "seg%03d.m4s"),
           os.path.join(d, "v%v", "media.m3u8"))
    os.makedirs(os.path.join(root, "dash-abr"))
    ffmpeg("-i", abr, "-map", "0:v:0", "-map", "0:v:1", "-map", "0:a", "-c", "copy",
           "-f", "dash", "-seg_duration", "1", "-adaptation_sets", "id=0,streams=v id=1,streams=a",
           os.path.join(root, "dash-abr", "index.mpd"))
    return time.monotonic() - t0


def start_live(root, base):
    """A live encode in real time (-re), 1 s segments, packaged at once as
    sliding-window HLS (fMP4) and dynamic DASH with UTCTiming.  Returns the
    ffmpeg process; the caller stops it.  tee parses its outputs' options
    twice, ':'-separated, so each colon of the UTCTiming URL gets 3 backslashes."""
    for d in ("live-hls", "live-dash"):
        os.makedirs(os.path.join(root, d))
    hls = (f"[f=hls:hls_time=1:hls_list_size=6:hls_segment_type=fmp4:hls_fmp4_init_filename=init.mp4:"
           f"hls_flags=delete_segments+independent_segments]{root}/live-hls/index.m3u8")
    dash = (f"[f=dash:seg_duration=1:window_size=6:extra_window_size=3:use_timeline=1:use_template=1:"
            f"utc_timing_url={base.replace(':', 3 * chr(92) + ':')}/utc]{root}/live-dash/index.mpd")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
           "-t", "120", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
           "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
           "-flags", "+global_header",   # else the live MPD says codecs="avc1": no video in Chromium
           "-map", "0:v", "-map", "1:a", "-f", "tee", hls + "|" + dash]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_live(root, proc, timeout=20):
    """Until both live manifests list 3 segments."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"live ffmpeg exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            with open(os.path.join(root, "live-hls", "index.m3u8")) as f:
                n_hls = f.read().count("#EXTINF")
            n_dash = len([n for n in os.listdir(os.path.join(root, "live-dash")) if n.endswith(".m4s")])
            if n_hls >= 3 and n_dash >= 6:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("live ffmpeg made no segments in time")


def play(args, base, path, player, *opts):
    cmd = ["node", PLAY, "--url", base + path, "--player", player, "--chromium", args.chromium, *opts]
    if args.verbose:
        cmd.append("--verbose")
        print("+ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - t0
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    res = json.loads(lines[-1]) if lines else None
    if args.verbose and r.stderr:
        sys.stderr.write(r.stderr)
    return r.returncode, res, r.stderr, took


def summary(res):
    if not res:
        return "no JSON"
    parts = [f"played={res.get('played_s')}s", f"startup={res.get('startup_s') or '-'}s",
             f"sizes={','.join(res.get('sizes') or [])}", f"stalls={res.get('stalls')}",
             f"nonfatal={res['errors']['non_fatal'] if res.get('errors') else '?'}"]
    if res.get("seek"):
        s = res["seek"]
        parts.append(f"seek {s.get('target')}->{s.get('landed')}")
    if res.get("abr"):
        a = res["abr"]
        parts.append(f"abr cap={a.get('cap_kbps')}kbps down@{a.get('down_at_s')}s up@{a.get('up_at_s')}s "
                     f"(capped@{a.get('capped_at_s')}s uncapped@{a.get('uncapped_at_s')}s)")
    if res.get("latency_s"):
        parts.append(f"latency={res['latency_s']}")
    return " ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=os.environ.get("WEIR_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--keep", help="make the media in this folder and keep it")
    ap.add_argument("--jobs", type=int, default=2, help="players run at once (default 2)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    missing = [what for what, ok in (
        ("ffmpeg", shutil.which("ffmpeg")), ("node", shutil.which("node")),
        (args.chromium, os.access(args.chromium, os.X_OK)),
        ("player-test/node_modules", os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core"))),
    ) if not ok]
    if missing:
        print(f"selfcheck: missing {', '.join(missing)}; run scripts/setup", file=sys.stderr)
        return 1

    tmp = None
    if args.keep:
        root = os.path.abspath(args.keep)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="weir-playercheck-")
        root = tmp.name
    server = None
    live = None
    try:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=root))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        live = start_live(root, base)   # warms up while the VOD media is made
        print(f"media made in {make_media(root):.1f}s", flush=True)
        wait_live(root, live)
        shot = os.path.join(root, "hls.png")

        def ok(res):
            return res is not None and res.get("pass") is True

        def sized(res):
            return ok(res) and res["sizes"] == ["320x180"]

        def vod_played(res):
            return ok(res) and res["live"] is False and res["played_s"] >= 6 and res["stalls"] == 0

        checks = [
            ("hls fmp4 vod + seek", "/hls-fmp4/index.m3u8", "hls",
             ["--seconds", "6", "--seek", "4", "--expect-sizes", "320x180", "--screenshot", shot],
             lambda r: vod_played(r) and abs(r["seek"]["landed"] - 4) <= 1
             and os.path.getsize(shot) > 1000),
            ("dash vod + seek", "/dash/index.mpd", "dash",
             ["--seconds", "6", "--seek", "4", "--expect-sizes", "320x180"],
             lambda r: vod_played(r) and abs(r["seek"]["landed"] - 4) <= 1),
            ("hls mpegts vod", "/hls-mpegts/index.m3u8", "hls",
             ["--seconds", "6", "--expect-sizes", "320x180"], vod_played),
            ("hls abr switch", "/hls-abr/index.m3u8", "hls",
             ["--seconds", "5", "--abr-switch", "--timeout", "90", "--expect-sizes", "640x360,320x180"],
             lambda r: ok(r) and len(r["levels"]) == 2 and len(r["level_history"]) >= 3),
            ("dash abr switch", "/dash-abr/index.mpd", "dash",
             ["--seconds", "5", "--abr-switch", "--timeout", "90", "--expect-sizes", "640x360,320x180"],
             lambda r: ok(r) and len(r["levels"]) == 2 and len(r["level_history"]) >= 3),
            ("hls live", "/live-hls/index.m3u8", "hls", ["--seconds", "5", "--expect-sizes", "320x180"],
             lambda r: sized(r) and r["live"] is True and r["latency_s"] is not None),
            ("dash live low-latency", "/live-dash/index.mpd", "dash",
             ["--seconds", "5", "--low-latency", "--live-delay", "3", "--expect-sizes", "320x180"],
             lambda r: sized(r) and r["live"] is True and r["latency_s"] is not None),
            # The failure path: no CORS headers must fail, fast, with a reason.
            ("hls without cors fails", "/nocors/hls-fmp4/index.m3u8", "hls",
             ["--seconds", "2", "--timeout", "20"],
             lambda r: r is not None and r["pass"] is False and "fatal" in (r.get("reason") or "")),
        ]
        # The ABR checks take longest: start them first, then the live ones
        # (the live encode runs until they are done).
        order = sorted(checks, key=lambda c: ("--abr-switch" not in c[3], "live" not in c[0]))
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(play, args, base, c[1], c[2], *c[3]): c for c in order}
            done = {futures[f][0]: f.result() for f in concurrent.futures.as_completed(futures)}
        passed = failed = 0
        for name, path, player, opts, judge in checks:
            rc, res, err, took = done[name]
            expect_rc = 1 if "fails" in name else 0
            good = rc == expect_rc and judge(res)
            passed += good
            failed += not good
            print(f"{'ok' if good else 'FAIL'} - {name}: {took:.1f}s {summary(res)}"
                  + ("" if good or res is None else f" reason={res.get('reason')}"), flush=True)
            if not good:
                print(f"  exit {rc}; stderr: {err.strip()[-2000:]}")
            if not good or args.verbose:
                print(f"  json: {json.dumps(res)[:4000]}")
        print(f"{passed} passed, {failed} failed")
        return 0 if failed == 0 else 1
    finally:
        if live and live.poll() is None:
            live.terminate()
            try:
                live.wait(timeout=5)
            except subprocess.TimeoutExpired:
                live.kill()
                live.wait()
        if server:
            server.shutdown()
            server.server_close()
        if tmp:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
