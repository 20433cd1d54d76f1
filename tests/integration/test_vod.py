"""Uploads become transcoded ABR VOD: a real `weir serve` with live
transcoding off (so the file-only transcoder is what runs) and a small test
ladder.  An uploaded 320x240 clip becomes a ready asset whose HLS master and
MPD list both rungs, every rung's segments decode (ffprobe), and the poster,
the storyboard sprite and its WebVTT are served with their types, decode at
the expected sizes and cover the duration.  A server killed (SIGKILL) in the
middle of a transcode finishes the job after a restart; a clean stop hands
the job back to the queue.  A file with a codec nothing decodes fails with
its reason.  uploads.transcode=false keeps the remux, with thumbnails from a
keyframe pass."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, run_tests  # noqa: E402
from test_uploads import Tus, upload_id, wait_asset  # noqa: E402

WEIR = sys.argv[1]
LADDER = "240p:320x240@400k/25; 120p:160x120@150k/25; audio:aac@64k/48000/2"
SETS = ["--set", "transcode.enabled=false", "--set", f"transcode.ladder={LADDER}",
        "--set", "uploads.max_size=64MiB", "--set", "shutdown.timeout=2s",
        "--set", "packager.segment_duration=1s"]
state = {}


def ffmpeg(out, size, seconds, vcodec=("-c:v", "libx264", "-preset", "ultrafast", "-g", "25"),
           extra=()):
    r = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), *vcodec, "-c:a", "aac", *extra, out],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        return f.read()


def token(w, scope):
    return weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", scope).stdout.strip()


def ffprobe(args, url):
    r = subprocess.run(["ffprobe", "-v", "error", *args, "-of", "json", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (url, r.stderr)
    return json.loads(r.stdout)


def setup():
    tmp = tempfile.TemporaryDirectory(prefix="weir-vod-")
    state["tmp"] = tmp
    state["clip"] = ffmpeg(os.path.join(tmp.name, "clip.mp4"), "320x240", 2,
                           extra=("-movflags", "+faststart"))
    w = Weir(WEIR, *SETS)
    state["weir"] = w
    w.wait_ready()
    state["write"], state["read"] = token(w, "write"), token(w, "read")


def test_an_upload_becomes_a_ladder_with_thumbnails():
    w = state["weir"]
    tus = Tus(w.port, state["write"])
    aid = upload_id(tus.upload(state["clip"], 1 << 20, {"name": "ladder"}))
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "ready", a
    assert 1.9 <= a["duration_s"] <= 2.1, a
    assert "percent" not in a and "progress" not in a and "reason" not in a, a
    base = f"/vod/{aid}/"
    assert a["hls"] == base + "index.m3u8" and a["dash"] == base + "index.mpd", a
    assert a["poster"] == base + "poster.jpg", a
    assert a["storyboard"] == base + "storyboard.vtt", a
    assert a["storyboard_image"] == base + "storyboard.jpg", a

    # The master lists both rungs (never above the 320x240 source), highest first.
    s, h, body = w.request("GET", a["hls"])
    assert s == 200, s
    master = body.decode()
    sizes = re.findall(r"RESOLUTION=(\d+x\d+)", master)
    assert sizes == ["320x240", "160x120"], master
    s, _, mpd = w.request("GET", a["dash"])
    assert s == 200
    assert len(re.findall(rb'<Representation [^>]* width="', mpd)) == 2, mpd
    # Every rung's segments decode: each variant playlist, whole.
    url = f"http://127.0.0.1:{w.port}"
    variants = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert len(variants) == 2, master
    for v, size in zip(variants, sizes):
        p = ffprobe(["-count_frames", "-select_streams", "v:0",
                     "-show_entries", "stream=width,height,nb_read_frames,codec_name"],
                    url + base + v)
        st = p["streams"][0]
        assert f'{st["width"]}x{st["height"]}' == size and st["codec_name"] == "h264", st
        assert int(st["nb_read_frames"]) == 50, (v, st)
    p = ffprobe(["-count_frames", "-show_entries", "stream=codec_type,nb_read_frames"],
                url + a["dash"])
    assert sorted(s["codec_type"] for s in p["streams"]) == ["audio", "video", "video"], p

    # Poster and sprite: JPEGs of the expected sizes, with their types.
    s, h, poster = w.request("GET", a["poster"])
    assert s == 200 and h["content-type"] == "image/jpeg" and poster[:2] == b"\xff\xd8", h
    p = ffprobe(["-show_entries", "stream=codec_name,width,height"], url + a["poster"])
    assert p["streams"][0] == {"codec_name": "mjpeg", "width": 320, "height": 240}, p
    s, h, _ = w.request("GET", a["storyboard_image"])
    assert s == 200 and h["content-type"] == "image/jpeg", h
    p = ffprobe(["-show_entries", "stream=codec_name,width,height"], url + a["storyboard_image"])
    # 2 s, one tile a second, 160 px wide: two 160x120 tiles side by side.
    assert p["streams"][0] == {"codec_name": "mjpeg", "width": 320, "height": 120}, p

    # The VTT parses, its cues are contiguous and cover the duration.
    s, h, vtt = w.request("GET", a["storyboard"])
    assert s == 200 and h["content-type"] == "text/vtt", h
    check_vtt(vtt.decode(), a["duration_s"], 320, 120)


def ms(ts):
    hh, mm, rest = ts.split(":")
    return (int(hh) * 3600 + int(mm) * 60) * 1000 + round(float(rest) * 1000)


def check_vtt(text, duration_s, sheet_w, sheet_h):
    assert text.startswith("WEBVTT\n"), text
    blocks = text.strip().split("\n\n")
    assert blocks[0] == "WEBVTT" and len(blocks) > 1, text
    cues = []
    for b in blocks[1:]:
        m = re.fullmatch(r"([\d:.]+) --> ([\d:.]+)\n(\S+)", b)
        assert m, b
        cues.append(m.groups())
    end = 0
    for start, stop, ref in cues:
        assert ms(start) == end and ms(stop) > ms(start), (start, stop, text)
        end = ms(stop)
        m = re.fullmatch(r"storyboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", ref)
        assert m, ref
        x, y, cw, ch = map(int, m.groups())
        assert x + cw <= sheet_w and y + ch <= sheet_h, ref
    assert abs(end - duration_s * 1000) <= 100, (end, duration_s)


def test_an_undecodable_codec_fails_with_its_reason():
    w = state["weir"]
    tmp = state["tmp"].name
    # A video track under a codec tag no decoder knows.
    bogus = os.path.join(tmp, "bogus.mov")
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "testsrc=size=160x120:rate=25", "-t", "1", "-c:v", "rawvideo",
                        "-pix_fmt", "yuv420p", "-tag:v", "wxyz", bogus],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(bogus, "rb") as f:
        data = f.read()
    tus = Tus(w.port, state["write"])
    aid = upload_id(tus.upload(data, 1 << 20, {"name": "bogus"}))
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "failed" and "no track can be decoded" in a["reason"], a
    assert "hls" not in a and "poster" not in a, a
    # MPEG-2 video, which CMAF cannot carry, is transcoded (a remux refuses it).
    mpeg2 = ffmpeg(os.path.join(tmp, "mpeg2.ts"), "320x240", 1, vcodec=("-c:v", "mpeg2video"),
                   extra=("-f", "mpegts"))
    aid = upload_id(tus.upload(mpeg2, 1 << 20, {"name": "mpeg2"}))
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "ready" and "poster" in a, a
    assert w.proc.poll() is None


def test_audio_only_becomes_ready_without_thumbnails():
    w = state["weir"]
    m4a = os.path.join(state["tmp"].name, "a.m4a")
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "sine=sample_rate=44100", "-t", "3", "-c:a", "aac", m4a],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(m4a, "rb") as f:
        aid = upload_id(Tus(w.port, state["write"]).upload(f.read(), 1 << 20, {"name": "a"}))
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "ready" and "poster" not in a and "storyboard" not in a, a
    s, _, body = w.request("GET", a["hls"])
    assert s == 200 and 'CODECS="mp4a.40.2"' in body.decode(), body
    p = ffprobe(["-show_entries", "stream=codec_type,sample_rate"],
                f"http://127.0.0.1:{w.port}" + a["hls"])
    # The ladder's audio target: AAC at 48 kHz, resampled from 44.1 kHz.
    # (ffprobe lists the a0 playlist twice: as the group's rendition and as the variant.)
    assert {(x["codec_type"], x["sample_rate"]) for x in p["streams"]} == {("audio", "48000")}, p


def wait_processing(w, aid, timeout=60):
    """Until asset.json says processing (claimed, its progress written)."""
    path = os.path.join(w.data_dir, "vod", aid, "asset.json")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with open(path) as f:
                a = json.load(f)
        except (OSError, ValueError):
            a = {}
        if a.get("state") == "processing" and "progress" in a:
            return a
        assert a.get("state") not in ("ready", "failed"), a
        time.sleep(0.02)
    raise AssertionError(f"never processing: {a}")


def test_a_server_killed_mid_transcode_finishes_after_a_restart():
    w = state["weir"]
    # Long enough to be caught mid-transcode: 20 s at 640x480.
    big = ffmpeg(os.path.join(state["tmp"].name, "big.mp4"), "640x480", 20,
                 extra=("-movflags", "+faststart"))
    k = Weir(WEIR, *SETS, "--set", "uploads.job_lease=2s")
    state["k"] = k
    k.wait_ready()
    tus = Tus(k.port, token(k, "write"))
    aid = upload_id(tus.upload(big, 4 << 20, {"name": "killed"}))
    a = wait_processing(k, aid)
    assert 0 <= a["percent"] < 100 and a["progress"] == a["percent"], a
    k.proc.send_signal(signal.SIGKILL)
    k.proc.wait()
    k2 = Weir(WEIR, *SETS, "--set", "uploads.job_lease=2s", data_dir=k.data_dir)
    state["k2"] = k2
    k2.wait_ready()
    rd = token(k2, "read")
    a = wait_asset(k2, rd, aid, timeout=120)
    assert a["state"] == "ready", (a, k2.logs()[-3000:])
    assert 19.9 <= a["duration_s"] <= 20.1, a
    assert 'event=processing upload=' + aid + " attempt=2" in k2.stderr(), k2.stderr()[-3000:]
    url = f"http://127.0.0.1:{k2.port}"
    s, _, body = k2.request("GET", a["hls"])
    variants = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
    assert len(variants) == 2, body
    for v in variants:
        p = ffprobe(["-count_frames", "-select_streams", "v:0",
                     "-show_entries", "stream=nb_read_frames"], url + f"/vod/{aid}/" + v)
        assert int(p["streams"][0]["nb_read_frames"]) == 500, (v, p)
    # Nothing the killed attempt wrote is left beside the new files.
    files = os.listdir(os.path.join(k2.data_dir, "vod", aid))
    assert not [f for f in files if f.endswith(".tmp")], files
    state["big"] = big


def test_a_clean_stop_mid_transcode_queues_the_job_again():
    k2 = state["k2"]
    tus = Tus(k2.port, token(k2, "write"))
    aid = upload_id(tus.upload(state["big"], 4 << 20, {"name": "stopped"}))
    wait_processing(k2, aid)
    rc, took = k2.stop()
    assert rc == 0 and took < 5, (rc, took)
    assert "processing interrupted; queued again" in k2.stderr(), k2.stderr()[-2000:]
    with open(os.path.join(k2.data_dir, "vod", aid, "asset.json")) as f:
        assert json.load(f)["state"] == "queued"
    # Taken at once on the next start (no lease to wait for), first attempt again.
    k3 = Weir(WEIR, *SETS, data_dir=k2.data_dir)
    state["k3"] = k3
    k3.wait_ready()
    a = wait_asset(k3, token(k3, "read"), aid, timeout=120)
    assert a["state"] == "ready", a
    assert 'event=processing upload=' + aid + " attempt=1" in k3.stderr()


def test_remux_when_uploads_transcode_is_off():
    r = Weir(WEIR, *SETS, "--set", "uploads.transcode=false")
    state["r"] = r
    r.wait_ready()
    tus = Tus(r.port, token(r, "write"))
    rd = token(r, "read")
    aid = upload_id(tus.upload(state["clip"], 1 << 20, {"name": "remux"}))
    a = wait_asset(r, rd, aid)
    assert a["state"] == "ready", a
    s, _, body = r.request("GET", a["hls"])
    assert len(re.findall(r"RESOLUTION=", body.decode())) == 1, body    # the file's own track
    assert a["poster"] and a["storyboard"], a
    url = f"http://127.0.0.1:{r.port}"
    p = ffprobe(["-show_entries", "stream=width,height"], url + a["poster"])
    assert p["streams"][0] == {"width": 320, "height": 240}, p
    s, _, vtt = r.request("GET", a["storyboard"])
    check_vtt(vtt.decode(), a["duration_s"], 320, 120)
    # Without a transcoder, MPEG-2 video has nothing CMAF carries.
    mpeg2 = ffmpeg(os.path.join(state["tmp"].name, "mpeg2b.ts"), "320x240", 1,
                   vcodec=("-c:v", "mpeg2video"), extra=("-f", "mpegts", "-an"))
    aid = upload_id(tus.upload(mpeg2, 1 << 20, {"name": "mpeg2"}))
    a = wait_asset(r, rd, aid)
    assert a["state"] == "failed" and "nothing in the file can be packaged" in a["reason"], a


def test_an_unknown_upload_profile_stops_the_start():
    r = subprocess.run([WEIR, "serve", "--set", "uploads.profile=nosuch", "--set",
                        f"data_dir={state['tmp'].name}/np"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "uploads.profile" in r.stderr, r.stderr


def teardown():
    for key in ("r", "k3", "k2", "k", "weir"):
        w = state.get(key)
        if not w:
            continue
        if w.proc.poll() is None:
            rc, _ = w.stop()
            assert rc == 0, w.logs()
        if key == "k":
            w.proc = subprocess.Popen(["true"])     # killed on purpose: no exit status to check
            w.proc.wait()
        w.close()
    state["tmp"].cleanup()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_an_upload_becomes_a_ladder_with_thumbnails,
                   test_an_undecodable_codec_fails_with_its_reason,
                   test_audio_only_becomes_ready_without_thumbnails,
                   test_a_server_killed_mid_transcode_finishes_after_a_restart,
                   test_a_clean_stop_mid_transcode_queues_the_job_again,
                   test_remux_when_uploads_transcode_is_off,
                   test_an_unknown_upload_profile_stops_the_start])
    finally:
        teardown()
