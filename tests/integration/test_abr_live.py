"""A live push through the transcode ladder, packaged: every rendition's
segment N starts at the same instant (the tfdt of its first fragment), the
master playlist's CODECS and RESOLUTION say what the bitstream says (read
back with ffprobe), every segment decodes, and GStreamer's hlsdemux and
dashdemux play the whole ladder to the end."""
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, gst_plays  # noqa: E402

WEIR = sys.argv[1]
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
H264_PROFILE_IDC = {"Baseline": 66, "Constrained Baseline": 66, "Main": 77, "High": 100}
state = {}


def get(path):
    return state["weir"].request("GET", path)


def setup():
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", "transcode.enabled=true", "--set", "transcode.profile=low",
             "--set", "packager.segment_duration=1s", "--set", "packager.window=20",
             "--set", "packager.reconnect_grace=0s", "--set", "http.access_log=false")
    state["weir"] = w
    w.wait_ready()
    push = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/abr"],
        capture_output=True, text=True, timeout=120)
    assert push.returncode == 0, push.stderr
    t0 = time.monotonic()
    while b"#EXT-X-ENDLIST" not in get("/live/abr/v0.m3u8")[2]:
        assert time.monotonic() - t0 < 60, w.logs()[-3000:]
        time.sleep(0.2)


def variants():
    """[(attributes, playlist name)] of the master playlist."""
    lines = get("/live/abr/index.m3u8")[2].decode().splitlines()
    return [(lines[i], lines[i + 1]) for i, line in enumerate(lines)
            if line.startswith("#EXT-X-STREAM-INF:")]


def segments(playlist):
    text = get(f"/live/abr/{playlist}")[2].decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
    return init, [line for line in text.splitlines() if line and not line.startswith("#")]


def tfdt(segment):
    i = segment.index(b"tfdt")
    version = segment[i + 4]
    return int.from_bytes(segment[i + 8:i + 16] if version == 1 else segment[i + 8:i + 12],
                          "big")


def test_master_attributes_match_the_bitstream():
    vs = variants()
    assert len(vs) == 3, vs
    with tempfile.TemporaryDirectory() as tmp:
        for attrs, playlist in vs:
            init, segs = segments(playlist)
            path = os.path.join(tmp, playlist + ".mp4")
            with open(path, "wb") as f:
                for name in [init] + segs:
                    status, _, body = get(f"/live/abr/{name}")
                    assert status == 200, name
                    f.write(body)
            r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                "-count_frames", "-show_entries",
                                "stream=profile,level,width,height,nb_read_frames",
                                "-of", "default=nw=1", path],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and not r.stderr, r.stderr
            info = dict(line.split("=", 1) for line in r.stdout.splitlines())
            codecs = re.search(r'CODECS="avc1\.([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})', attrs)
            assert codecs, attrs
            assert int(codecs.group(1), 16) == H264_PROFILE_IDC[info["profile"]], (attrs, info)
            assert int(codecs.group(3), 16) == int(info["level"]), (attrs, info)
            assert f"RESOLUTION={info['width']}x{info['height']}" in attrs, (attrs, info)
            # 6 s at 30 fps, every frame decoded.
            assert 170 <= int(info["nb_read_frames"]) <= 181, info


def test_renditions_segment_n_starts_at_the_same_instant():
    starts = {}
    for _, playlist in variants():
        _, segs = segments(playlist)
        starts[playlist] = {int(re.search(r"_(\d+)\.m4s$", s).group(1)):
                            tfdt(get(f"/live/abr/{s}")[2]) for s in segs}
    numbers = [set(s) for s in starts.values()]
    common = set.intersection(*numbers)
    assert len(common) >= 5 and all(n == numbers[0] for n in numbers), starts
    for n in sorted(common):
        assert len({s[n] for s in starts.values()}) == 1, (n, starts)


def test_the_mpd_parses_and_gstreamer_plays_the_ladder():
    status, _, body = get("/live/abr/index.mpd")
    r = subprocess.run(["xmllint", "--noout", "-"], input=body, capture_output=True)
    assert r.returncode == 0, r.stderr
    reps = ET.fromstring(body).findall(".//d:AdaptationSet[@contentType='video']/"
                                       "d:Representation", MPD_NS)
    assert len(reps) == 3
    base = f"http://127.0.0.1:{state['weir'].port}/live/abr"
    gst_plays(f"{base}/index.m3u8")
    gst_plays(f"{base}/index.mpd")


if __name__ == "__main__":
    weirtest.main(setup, [test_master_attributes_match_the_bitstream,
                          test_renditions_segment_n_starts_at_the_same_instant,
                          test_the_mpd_parses_and_gstreamer_plays_the_ladder],
                  lambda: state["weir"].finish())
