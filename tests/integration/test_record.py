"""Recording: with packager.record on, a live stream also becomes a VOD asset
on disk, listed by the API, served under /vod/ and playable by ffmpeg as HLS
and DASH; deleting it removes its files."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, run_tests  # noqa: E402

WEIR = sys.argv[1]
state = {}


def get(path, headers=None, method="GET"):
    return state["weir"].request(method, path, headers=headers)


def api(method, path, scope="read"):
    status, h, body = get(path, {"Authorization": f"Bearer {state[scope]}"}, method)
    return status, json.loads(body) if body else None


def wait_for(fn, timeout=20):
    return weirtest.wait_for(fn, timeout)


def setup():
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", "packager.segment_duration=1s", "--set", "packager.record=true")
    state["weir"] = w
    state["rtmp"] = rtmp
    w.wait_ready()
    for scope in ("read", "write"):
        state[scope] = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope",
                                    scope).stdout.strip()
    push = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/cam1"],
        capture_output=True, text=True, timeout=60)
    assert push.returncode == 0, push.stderr


def test_the_recording_becomes_a_ready_asset():
    def ready():
        status, body = api("GET", "/api/v1/assets")
        assert status == 200, body
        assets = body["assets"]
        return assets and assets[0]["state"] == "ready" and assets
    assets = wait_for(ready)
    assert len(assets) == 1
    a = assets[0]
    assert a["source"] == "live" and a["name"] == "cam1"
    assert a["id"].startswith("cam1-")
    assert 4.0 <= a["duration_s"] <= 5.5, a
    assert a["hls"] == f"/vod/{a['id']}/index.m3u8"
    status, one = api("GET", f"/api/v1/assets/{a['id']}")
    assert status == 200 and one == a
    assert api("GET", "/api/v1/assets/nosuch")[0] == 404
    state["asset"] = a


def test_vod_playlists_list_every_segment():
    a = state["asset"]
    status, h, body = get(a["hls"])
    assert status == 200 and h["content-type"] == "application/vnd.apple.mpegurl"
    assert "public, max-age=" in h["cache-control"]
    status, h, body = get(f"/vod/{a['id']}/v0.m3u8")
    text = body.decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    segs = [line for line in text.splitlines() if line.endswith(".m4s")]
    assert len(segs) == 5, text
    numbers = [int(x[3:-4]) for x in segs]
    assert numbers == list(range(numbers[0], numbers[0] + 5)), segs
    status, h, seg = get(f"/vod/{a['id']}/{segs[2]}")
    assert status == 200 and h["content-type"] == "video/iso.segment"
    assert h["cache-control"] == "public, max-age=31536000, immutable"
    status, h, part = get(f"/vod/{a['id']}/{segs[2]}", {"Range": "bytes=0-99"})
    assert status == 206 and part == seg[:100]
    status, h, body = get(a["dash"])
    assert status == 200 and b'type="static"' in body


def test_ffmpeg_plays_the_recording():
    a = state["asset"]
    w = state["weir"]
    for path in (a["hls"], a["dash"]):
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "json",
                            f"http://127.0.0.1:{w.port}{path}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        frames = int(json.loads(r.stdout)["streams"][0]["nb_read_frames"])
        assert 120 <= frames <= 126, (path, frames)     # 5 s at 25 fps


def test_vod_paths_are_confined():
    a = state["asset"]
    for path in [f"/vod/{a['id']}/asset.json", f"/vod/{a['id']}/../../etc/passwd",
                 f"/vod/{a['id']}/.hidden.m3u8", "/vod/nosuch/index.m3u8",
                 f"/vod/{a['id']}", f"/vod/{a['id']}/x/index.m3u8"]:
        assert get(path)[0] == 404, path


def test_delete_removes_the_asset():
    a = state["asset"]
    assert api("DELETE", f"/api/v1/assets/{a['id']}", scope="read")[0] == 403
    status, body = api("DELETE", f"/api/v1/assets/{a['id']}", scope="write")
    assert status == 200, body
    assert get(a["hls"])[0] == 404
    assert api("GET", "/api/v1/assets")[1]["assets"] == []
    assert not os.path.exists(os.path.join(state["weir"].data_dir, "vod", a["id"]))


def test_a_recording_cut_short_by_a_crash_is_failed_at_restart():
    """weir killed mid-publish leaves its recording in state "recording";
    the next start marks it failed, with a reason, so DELETE (which refuses
    a recording still "recording") and the retention can remove it."""
    old = state["weir"]
    push = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "30",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "flv",
         f"rtmp://127.0.0.1:{state['rtmp']}/live/cam2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def recording():
            assets = api("GET", "/api/v1/assets")[1]["assets"]
            return [a for a in assets if a["state"] == "recording"]
        a = wait_for(recording)[0]
        assert api("DELETE", f"/api/v1/assets/{a['id']}", scope="write")[0] == 409
        old.proc.kill()
        old.proc.wait()
    finally:
        push.kill()
        push.wait()
    state["old"] = old          # its data_dir lives until the new one is done
    w = Weir(WEIR, data_dir=old.data_dir)
    state["weir"] = w
    w.wait_ready()
    status, got = api("GET", f"/api/v1/assets/{a['id']}")
    assert status == 200 and got["state"] == "failed", got
    assert "stopped while" in got["reason"], got
    assert "unfinished recording from a previous run marked failed" in w.stderr()
    status, body = api("DELETE", f"/api/v1/assets/{a['id']}", scope="write")
    assert status == 200, body


def teardown():
    state["weir"].finish()
    if "old" in state:
        state["old"].close()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_the_recording_becomes_a_ready_asset,
                   test_vod_playlists_list_every_segment,
                   test_ffmpeg_plays_the_recording,
                   test_vod_paths_are_confined,
                   test_delete_removes_the_asset,
                   test_a_recording_cut_short_by_a_crash_is_failed_at_restart])
    finally:
        teardown()
