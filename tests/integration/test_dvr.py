"""DVR (packager.dvr_window): live playlists and the MPD list the stream back
dvr_window, not just packager.window; segments that left memory answer 301
to the recording's copy, so players seek back into the last minutes and
ffmpeg, GStreamer read the whole stream through the redirects."""
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, gst_plays  # noqa: E402

WEIR = sys.argv[1]
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
state = {}


def get(path):
    return state["weir"].request("GET", path)


def listed(text):
    return [int(n) for n in re.findall(r"^v0_(\d+)\.m4s$", text, re.M)]


def setup():
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", "packager.segment_duration=1s", "--set", "packager.window=3",
             "--set", "packager.record=true", "--set", "packager.dvr_window=60s",
             "--set", "packager.reconnect_grace=0s")
    state["weir"] = w
    w.wait_ready()
    state["push"] = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/cam1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_dvr_needs_recording():
    path = os.path.join(state["weir"].tmp.name, "dvr.yml")
    with open(path, "w") as f:
        f.write("packager:\n  dvr_window: 60s\n")
    r = weirtest.cli(WEIR, state["weir"].data_dir, "config", "check", path)
    assert r.returncode != 0 and "packager.dvr_window needs packager.record" in r.stderr, r


def test_live_playlist_lists_the_dvr_window():
    t0 = time.monotonic()
    while len(listed(get("/live/cam1/v0.m3u8")[2].decode())) < 8:
        assert time.monotonic() - t0 < 30, get("/live/cam1/v0.m3u8")[2].decode()
        time.sleep(0.2)
    text = get("/live/cam1/v0.m3u8")[2].decode()
    numbers = listed(text)
    # More than the 3 listed + 2 kept in memory: the oldest live on disk.
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    assert "#EXT-X-ENDLIST" not in text
    status, h, _ = get(f"/live/cam1/v0_{numbers[0]}.m4s")
    assert status == 301, status
    assert re.fullmatch(rf"/vod/cam1-\d+/v0_{numbers[0]}\.m4s", h["location"]), h
    assert "immutable" in h["cache-control"] and h["access-control-allow-origin"] == "*"
    status, h2, seg = get(h["location"])
    assert status == 200 and seg[4:8] == b"styp", (status, seg[:16])
    state["oldest"] = numbers[0]


def test_the_mpd_covers_the_dvr_window():
    status, _, body = get("/live/cam1/index.mpd")
    mpd = ET.fromstring(body)
    assert mpd.get("type") == "dynamic" and mpd.get("timeShiftBufferDepth") == "PT60.000S"
    tmpl = mpd.find(".//d:AdaptationSet[@contentType='video']/d:Representation/"
                    "d:SegmentTemplate", MPD_NS)
    assert int(tmpl.get("startNumber")) == state["oldest"], ET.tostring(tmpl)


def test_after_the_end_readers_get_the_whole_stream_through_redirects():
    push = state["push"]
    assert push.wait(timeout=60) == 0, push.stderr.read()
    t0 = time.monotonic()
    while b"#EXT-X-ENDLIST" not in get("/live/cam1/v0.m3u8")[2]:
        assert time.monotonic() - t0 < 20
        time.sleep(0.2)
    base = f"http://127.0.0.1:{state['weir'].port}/live/cam1"
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", f"{base}/v0.m3u8",
                        "-f", "null", "-", "-progress", "pipe:1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "rror" not in r.stderr, r.stderr
    frames = int(re.findall(r"^frame=(\d+)", r.stdout, re.M)[-1])
    assert frames == 250, frames            # 10 s at 25 fps: all of it
    gst_plays(f"{base}/index.m3u8")
    gst_plays(f"{base}/index.mpd")


def teardown():
    if state["push"].poll() is None:
        state["push"].kill()
    state["weir"].finish()


if __name__ == "__main__":
    weirtest.main(setup, [test_dvr_needs_recording,
                          test_live_playlist_lists_the_dvr_window,
                          test_the_mpd_covers_the_dvr_window,
                          test_after_the_end_readers_get_the_whole_stream_through_redirects],
                  teardown)
