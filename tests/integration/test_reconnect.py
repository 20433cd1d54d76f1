"""A publisher that drops and comes back (an encoder reconnecting) continues
the same presentation: the playlists stay live for packager.reconnect_grace,
segment numbers go on, HLS marks EXT-X-DISCONTINUITY with the new init
segment, DASH opens a new Period.  Real readers check it: xmllint parses the MPD, ffmpeg and
GStreamer's hlsdemux/dashdemux play the whole thing, and each publish's
recording, to the end."""
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, gst_plays, wait_for  # noqa: E402

WEIR = sys.argv[1]
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
state = {}


def get(path, headers=None):
    return state["weir"].request("GET", path, headers=headers)


def push(seconds, size):
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-b:a", "64k", "-f", "flv",
         f"rtmp://127.0.0.1:{state['rtmp']}/live/cam1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def playlist():
    status, _, body = get("/live/cam1/v0.m3u8")
    return body.decode() if status == 200 else ""


def setup():
    state["rtmp"] = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={state['rtmp']}", "--set", "ingest.auth=open",
             "--set", "packager.segment_duration=1s", "--set", "packager.window=20",
             "--set", "packager.linger=60s", "--set", "packager.reconnect_grace=5s",
             "--set", "packager.hls_ts=true",
             "--set", "packager.record=true")
    state["weir"] = w
    w.wait_ready()
    state["read"] = weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope",
                                 "read").stdout.strip()
    first = push(4, "320x240")
    assert first.wait(timeout=60) == 0, first.stderr.read()
    # The publisher has gone (the server says so), yet the playlists stay
    # live, so players keep polling.
    auth = {"Authorization": f"Bearer {state['read']}"}
    wait_for(lambda: not json.loads(get("/api/v1/streams", auth)[2])["streams"])
    time.sleep(0.5)
    state["between"] = (playlist(), get("/live/cam1/index.mpd")[2])
    # The encoder comes back, at another resolution.
    state["second"] = push(5, "240x180")


def test_the_playlists_stay_live_while_the_publisher_is_away():
    pl, mpd = state["between"]
    assert "#EXT-X-ENDLIST" not in pl, pl
    assert ET.fromstring(mpd).get("type") == "dynamic"


def test_the_playlist_goes_on_after_a_discontinuity():
    def resumed():
        t = playlist()
        m = re.search(r'#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="v0_i(\d+)\.mp4"\n', t)
        # ... once the new epoch has a complete segment listed
        return m and re.search(rf"^v0_{m.group(1)}\.m4s$", t, re.M) and t
    pl = wait_for(resumed, timeout=30)
    assert "#EXT-X-ENDLIST" not in pl
    first = int(re.search(r'#EXT-X-MAP:URI="v0_i(\d+)\.mp4"', pl).group(1))
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" in pl
    m = re.search(r'#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="v0_i(\d+)\.mp4"\n', pl)
    assert m, pl
    second = int(m.group(1))
    # Numbers go on: the new epoch's first segment follows the last one.
    numbers = [int(n) for n in re.findall(r"^v0_(\d+)\.m4s$", pl, re.M)]
    assert numbers == list(range(first, first + len(numbers))), numbers
    assert second in numbers and second > first + 2, (first, second, numbers)
    status, h, init = get(f"/live/cam1/v0_i{second}.mp4")
    assert status == 200 and "immutable" in h["cache-control"]
    state["second_number"] = second
    # The MPEG-TS variant marks the same seam.
    ts = wait_for(lambda: (t := get("/live/cam1/ts/v0.m3u8")[2].decode()) and
                  re.search(rf"^v0_{second}\.ts$", t, re.M) and t, timeout=30)
    assert "#EXT-X-DISCONTINUITY\n" in ts, ts
    before, after = ts.split("#EXT-X-DISCONTINUITY\n")
    assert f"v0_{second}.ts" in after and f"v0_{second}.ts" not in before, ts


def test_the_live_mpd_has_a_period_per_publish_and_parses():
    status, _, body = get("/live/cam1/index.mpd")
    assert status == 200
    r = subprocess.run(["xmllint", "--noout", "-"], input=body, capture_output=True)
    assert r.returncode == 0, r.stderr
    mpd = ET.fromstring(body)
    assert mpd.get("type") == "dynamic"
    periods = mpd.findall("d:Period", MPD_NS)
    assert len(periods) == 2, body.decode()
    assert periods[1].get("id") == str(state["second_number"])
    tmpl = periods[1].find("d:AdaptationSet/d:Representation/d:SegmentTemplate", MPD_NS)
    assert tmpl.get("initialization") == f"$RepresentationID$_i{state['second_number']}.mp4"
    rep = periods[1].find("d:AdaptationSet[@contentType='video']/d:Representation", MPD_NS)
    assert (rep.get("width"), rep.get("height")) == ("240", "180"), ET.tostring(rep)


def epochs(pl):
    """[(init name, [segment names])] per epoch of a media playlist."""
    out = []
    for line in pl.splitlines():
        m = re.match(r'#EXT-X-MAP:URI="([^"]+)"', line)
        if m:
            out.append((m.group(1), []))
        elif line and not line.startswith("#"):
            out[-1][1].append(line)
    return out


def frames_decoded(data):
    """Video frames ffmpeg decodes from an fMP4 byte string, with no error."""
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0",
                        "-map", "0:v", "-f", "null", "-", "-progress", "pipe:1"],
                       input=data, capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 0 and "rror" not in err, err[-2000:]
    frames = re.findall(rb"^frame=(\d+)", r.stdout, re.M)
    return int(frames[-1]) if frames else 0


def test_after_the_end_players_read_both_publishes_to_the_end():
    second = state["second"]
    assert second.wait(timeout=60) == 0, second.stderr.read()
    wait_for(lambda: "#EXT-X-ENDLIST" in playlist())
    status, _, body = get("/live/cam1/index.mpd")
    r = subprocess.run(["xmllint", "--noout", "-"], input=body, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert ET.fromstring(body).get("type") == "static"
    base = f"http://127.0.0.1:{state['weir'].port}/live/cam1"
    # Every frame of each publish (4 s, then 5 s, at 25 fps) decodes with its
    # own epoch's init segment.  (Not through ffmpeg's HLS demuxer: it keeps
    # the first init's decoder setup across EXT-X-MAP changes.)
    counts = []
    for init, segs in epochs(playlist()):
        data = b"".join(get(f"/live/cam1/{name}")[2] for name in [init] + segs)
        counts.append(frames_decoded(data))
    assert counts == [100, 125], counts
    gst_plays(f"{base}/index.m3u8")
    gst_plays(f"{base}/index.mpd")
    gst_plays(f"{base}/ts/index.m3u8")


def test_each_publish_is_its_own_recording_and_plays():
    def ready():
        status, _, body = get("/api/v1/assets", {"Authorization": f"Bearer {state['read']}"})
        assets = json.loads(body)["assets"]
        return len(assets) == 2 and all(a["state"] == "ready" for a in assets) and assets
    assets = wait_for(ready, timeout=30)
    base = f"http://127.0.0.1:{state['weir'].port}"
    durations = sorted(round(a["duration_s"]) for a in assets)
    assert durations == [4, 5], assets
    for a in assets:
        gst_plays(base + a["hls"])
        gst_plays(base + a["dash"])


def teardown():
    state["weir"].finish()


if __name__ == "__main__":
    weirtest.main(setup, [test_the_playlists_stay_live_while_the_publisher_is_away,
                          test_the_playlist_goes_on_after_a_discontinuity,
                          test_the_live_mpd_has_a_period_per_publish_and_parses,
                          test_after_the_end_players_read_both_publishes_to_the_end,
                          test_each_publish_is_its_own_recording_and_plays], teardown)
