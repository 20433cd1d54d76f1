"""MPEG-TS HLS (packager.hls_ts) end to end: ffmpeg pushes RTMP into `weir
serve`; beside the CMAF HLS the origin serves a TS master, TS media playlists
and TS segments.  Checked with ffprobe / ffmpeg, against the CMAF variant's
numbers and times, and through the recording (packager.record) and an
upload as VOD."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, run_tests  # noqa: E402

WEIR = sys.argv[1]
SECONDS = 12         # of media pushed; keyframe every second, segments of 1 s
FPS = 25
state = {}


def push(url, seconds):
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS),
            "-bf", "2", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def get(path, headers=None, method="GET"):
    return state["weir"].request(method, path, headers=headers)


def api(method, path, scope="read"):
    status, h, body = get(path, {"Authorization": f"Bearer {state[scope]}"}, method)
    return status, json.loads(body) if body else None


def wait_for(fn, timeout=20):
    return weirtest.wait_for(fn, timeout)


def media_segments(playlist):
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def ffprobe_json(path, *args):
    r = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not r.stderr.strip(), r.stderr
    return json.loads(r.stdout)


def setup():
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", "packager.segment_duration=1s", "--set", "packager.window=5",
             "--set", "packager.linger=60s", "--set", "packager.hls_ts=true",
             "--set", "packager.record=true")
    state["weir"] = w
    w.wait_ready()
    for scope in ("read", "write"):
        state[scope] = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope",
                                    scope).stdout.strip()
    state["pub"] = push(f"rtmp://127.0.0.1:{rtmp}/live/cam1", SECONDS)


def test_ts_master_describes_the_stream():
    status, headers, body = wait_for(
        lambda: (r := get("/live/cam1/ts/index.m3u8"))[0] == 200 and r)
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["cache-control"].startswith("public, max-age=")
    text = body.decode()
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-VERSION:3" in lines, text
    assert not any(line.startswith("#EXT-X-MEDIA:") for line in lines), text
    inf = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(inf) == 1, text
    assert re.search(r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"', inf[0]), inf[0]
    assert "RESOLUTION=320x240" in inf[0]
    bw = int(re.search(r"[:,]BANDWIDTH=(\d+)", inf[0]).group(1))
    assert 50000 < bw < 10_000_000, inf[0]
    assert lines[lines.index(inf[0]) + 1] == "v0.m3u8"
    # The page's stream list names the TS variant too.
    streams = json.loads(get("/live/index.json")[2])["streams"]
    assert streams[0]["hls_ts"] == "/live/cam1/ts/index.m3u8", streams


def playlists():
    """The TS and CMAF media playlists of v0, fetched back to back until both
    list the same window (a TS segment follows its CMAF one by an audio
    frame or so)."""
    def same():
        ts = get("/live/cam1/ts/v0.m3u8")[2].decode()
        cmaf = get("/live/cam1/v0.m3u8")[2].decode()
        seq = [re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", t).group(1) for t in (ts, cmaf)]
        cmaf_segs = [s for s in media_segments(cmaf) if s.endswith(".m4s")]
        ts_segs = media_segments(ts)
        return (len(ts_segs) >= 4 and seq[0] == seq[1] and len(ts_segs) == len(cmaf_segs)
                and (ts, cmaf))
    return wait_for(same)


def test_ts_media_playlist_matches_cmaf():
    ts, cmaf = playlists()
    assert "#EXT-X-VERSION:3" in ts, ts
    for tag in ("#EXT-X-MAP", "#EXT-X-PART", "#EXT-X-PRELOAD-HINT", "#EXT-X-SERVER-CONTROL",
                "#EXT-X-ENDLIST"):
        assert tag not in ts, (tag, ts)
    assert "#EXT-X-TARGETDURATION:1" in ts, ts
    segs = media_segments(ts)
    numbers = [int(re.match(r"v0_(\d+)\.ts$", s).group(1)) for s in segs]
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", ts).group(1))
    assert numbers == list(range(first, first + len(numbers))), segs
    # The same PROGRAM-DATE-TIME for the same segment number.
    def pdts(text, ext):
        out, when = {}, None
        for line in text.splitlines():
            if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                when = line.split(":", 1)[1]
            elif line.endswith(ext) and "." not in line[:-len(ext)].split("_")[-1]:
                out[int(line[3:-len(ext)])] = when
        return out
    t, c = pdts(ts, ".ts"), pdts(cmaf, ".m4s")
    assert t and all(t[n] == c[n] for n in t if n in c), (t, c)
    state["numbers"] = numbers


def test_ts_segments_decode_and_start_where_cmaf_does():
    numbers = state["numbers"]
    cmaf_pl = get("/live/cam1/v0.m3u8")[2].decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', cmaf_pl).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        for n in numbers:
            status, h, body = get(f"/live/cam1/ts/v0_{n}.ts")
            assert status == 200, (n, status)
            assert h["content-type"] == "video/mp2t"
            assert h["cache-control"] == "public, max-age=31536000, immutable"
            assert len(body) % 188 == 0 and body[0] == 0x47
            path = os.path.join(tmp, f"{n}.ts")
            with open(path, "wb") as f:
                f.write(body)
            info = ffprobe_json(path, "-show_streams", "-count_frames", "-show_entries",
                                "packet=pts_time,flags,codec_type")
            codecs = sorted(s["codec_name"] for s in info["streams"])
            assert codecs == ["aac", "h264"], codecs
            video = next(s for s in info["streams"] if s["codec_name"] == "h264")
            assert video["width"] == 320 and video["height"] == 240
            assert FPS - 1 <= int(video["nb_read_frames"]) <= FPS + 1, video
            vpk = [p for p in info["packets"] if p["codec_type"] == "video"]
            assert vpk[0]["flags"].startswith("K"), vpk[0]
            ts_start = min(float(p["pts_time"]) for p in vpk)
            # The CMAF segment with the same number, behind its init segment.
            cpath = os.path.join(tmp, f"{n}.mp4")
            with open(cpath, "wb") as f:
                f.write(get(f"/live/cam1/{init}")[2])
                f.write(get(f"/live/cam1/v0_{n}.m4s")[2])
            cinfo = ffprobe_json(cpath, "-show_entries", "packet=pts_time")
            cmaf_start = min(float(p["pts_time"]) for p in cinfo["packets"])
            assert abs(ts_start - cmaf_start) <= 1.0 / FPS + 1e-6, (n, ts_start, cmaf_start)


def test_ffmpeg_plays_the_ts_variant_live():
    w = state["weir"]
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error",
                        "-i", f"http://127.0.0.1:{w.port}/live/cam1/ts/index.m3u8",
                        "-t", "2", "-map", "0", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    errors = [line for line in r.stderr.splitlines() if "rror" in line]
    assert not errors, errors


def test_end_closes_the_ts_playlists_and_old_segments_are_gone():
    pub = state["pub"]
    assert pub.wait(timeout=60) == 0, pub.stderr.read()
    wait_for(lambda: b"#EXT-X-ENDLIST" in get("/live/cam1/ts/v0.m3u8")[2])
    # 12 s of 1 s segments, a window of 5 and 2 more kept: older ones are gone.
    text = get("/live/cam1/ts/v0.m3u8")[2].decode()
    oldest = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    assert get(f"/live/cam1/ts/v0_{oldest - 3}.ts")[0] == 410
    assert get("/live/cam1/ts/v0_1.ts")[0] == 404
    assert get("/live/cam1/ts/a0.m3u8")[0] == 404
    assert get("/live/cam1/ts/x/v0.m3u8")[0] == 404


def test_the_recording_has_a_ts_variant():
    def ready():
        status, body = api("GET", "/api/v1/assets")
        assets = body["assets"]
        return assets and assets[0]["state"] == "ready" and assets[0]
    a = wait_for(ready)
    base = f"/vod/{a['id']}/ts"
    assert a["hls_ts"] == f"{base}/index.m3u8", a
    status, h, body = get(f"{base}/index.m3u8")
    assert status == 200 and h["content-type"] == "application/vnd.apple.mpegurl", status
    assert b"#EXT-X-VERSION:3" in body and b"v0.m3u8" in body
    status, h, body = get(f"{base}/v0.m3u8")
    text = body.decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    segs = media_segments(text)
    assert len(segs) >= SECONDS - 1, text
    status, h, seg = get(f"{base}/{segs[1]}")
    assert status == 200 and h["content-type"] == "video/mp2t"
    assert h["cache-control"] == "public, max-age=31536000, immutable"
    w = state["weir"]
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames", "-of", "json",
                        f"http://127.0.0.1:{w.port}{base}/index.m3u8"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    frames = int(json.loads(r.stdout)["streams"][0]["nb_read_frames"])
    assert SECONDS * FPS - 6 <= frames <= SECONDS * FPS + 1, frames
    # GStreamer's hlsdemux + tsdemux decode it to the end: every frame ffprobe saw.
    g = subprocess.run(["gst-launch-1.0", "-v", "uridecodebin",
                        f"uri=http://127.0.0.1:{w.port}{base}/index.m3u8", "name=d",
                        "d.", "!", "queue", "!", "video/x-raw", "!", "fakesink", "name=vs",
                        "silent=false", "d.", "!", "queue", "!", "audio/x-raw", "!", "fakesink"],
                       capture_output=True, text=True, timeout=120)
    assert g.returncode == 0, g.stderr[-2000:]
    gst_frames = sum(1 for line in g.stdout.splitlines() if "vs" in line and "chain" in line)
    assert gst_frames == frames, (gst_frames, frames)
    assert get(f"/vod/{a['id']}/ts/../asset.json")[0] == 404
    # Deleting the asset takes its ts/ folder with it.
    status, body = api("DELETE", f"/api/v1/assets/{a['id']}", scope="write")
    assert status == 200, body
    assert not os.path.exists(os.path.join(w.data_dir, "vod", a["id"]))


def test_an_upload_has_a_ts_variant():
    w = state["weir"]
    clip = os.path.join(w.tmp.name, "clip.mp4")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"testsrc=size=320x240:rate={FPS}", "-f", "lavfi", "-i", "sine",
                    "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS),
                    "-c:a", "aac", clip], check=True, timeout=60)
    r = subprocess.run([WEIR, "upload", clip, "--server", f"http://127.0.0.1:{w.port}",
                        "--token", state["write"]], capture_output=True, text=True, timeout=60)
    weirtest.assert_no_sanitizer_report(r.stderr)
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()

    def ready():
        status, a = api("GET", f"/api/v1/assets/{aid}")
        return status == 200 and a["state"] in ("ready", "failed") and a
    a = wait_for(ready, timeout=60)
    assert a["state"] == "ready", a
    assert a["hls_ts"] == f"/vod/{aid}/ts/index.m3u8", a
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames,codec_name", "-of", "json",
                        f"http://127.0.0.1:{w.port}{a['hls_ts']}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["streams"][0]
    assert st["codec_name"] == "h264" and int(st["nb_read_frames"]) == 3 * FPS, st


def teardown():
    w = state["weir"]
    rc, _ = w.stop()
    logs = w.logs()
    w.close()
    assert rc == 0, logs


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_ts_master_describes_the_stream,
                   test_ts_media_playlist_matches_cmaf,
                   test_ts_segments_decode_and_start_where_cmaf_does,
                   test_ffmpeg_plays_the_ts_variant_live,
                   test_end_closes_the_ts_playlists_and_old_segments_are_gone,
                   test_the_recording_has_a_ts_variant,
                   test_an_upload_has_a_ts_variant])
    finally:
        teardown()
