"""Live packaging end to end: ffmpeg pushes RTMP into `weir serve`; the
packager cuts CMAF segments; the origin serves HLS and DASH.  Checked with
real readers (ffprobe / ffmpeg's HLS and DASH demuxers) and by reading the
playlists and headers a player and a CDN rely on."""
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import Weir, free_port, run_tests, wait_for  # noqa: E402

WEIR = sys.argv[1]
SECONDS = 20         # of media pushed; keyframe every second, segments of 1 s
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}

state = {}


def push(url, seconds):
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-bf", "2", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def get(path, headers=None, method="GET"):
    return state["weir"].request(method, path, headers=headers)


def media_segments(playlist):
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def ffprobe_json(path, *args):
    r = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def first_segment():
    """The number of the stream's first segment, from the init segment's name
    in the playlist (v0_i<N>.mp4): numbers start at the creation time in
    half-seconds since 2024, so a republished name never reuses a URL."""
    if "first" not in state:
        text = get("/live/cam1/v0.m3u8")[2].decode()
        state["first"] = int(re.search(r'#EXT-X-MAP:URI="v0_i(\d+)\.mp4"', text).group(1))
    return state["first"]


def seg(n, track="v0"):
    """URL of the stream's n-th segment (1-based)."""
    return f"/live/cam1/{track}_{first_segment() + n - 1}.m4s"


def setup():
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", "--set", "ingest.auth=open",
             "--set", "packager.segment_duration=1s", "--set", "packager.part_duration=500ms",
             "--set", "packager.window=3", "--set", "packager.linger=60s",
             "--set", "packager.reconnect_grace=1s",
             "--set", f"origin.web_dir={os.environ['WEIR_SOURCE_ROOT']}/web")
    state["weir"] = w
    w.wait_ready()
    state["pub"] = push(f"rtmp://127.0.0.1:{rtmp}/live/cam1", SECONDS)


def test_master_playlist_describes_the_stream():
    status, headers, body = wait_for(
        lambda: (r := get("/live/cam1/index.m3u8"))[0] == 200 and r)
    text = body.decode()
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert headers["cache-control"].startswith("public, max-age=")
    assert headers["access-control-allow-origin"] == "*"
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in lines
    media = [line for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert len(media) == 1 and 'TYPE=AUDIO' in media[0] and 'URI="a0.m3u8"' in media[0]
    inf = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(inf) == 1, text
    attrs = inf[0]
    assert re.search(r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"', attrs), attrs
    assert "RESOLUTION=320x240" in attrs
    assert 'AUDIO="audio"' in attrs
    bw = int(re.search(r"[:,]BANDWIDTH=(\d+)", attrs).group(1))
    avg = int(re.search(r"AVERAGE-BANDWIDTH=(\d+)", attrs).group(1))
    assert 0 < avg <= bw, attrs
    fps = float(re.search(r"FRAME-RATE=([\d.]+)", attrs).group(1))
    assert abs(fps - 25) < 0.5, attrs
    assert lines[lines.index(inf[0]) + 1] == "v0.m3u8"


def test_media_playlist_is_a_sliding_window():
    def enough():
        r = get("/live/cam1/v0.m3u8")
        return r[0] == 200 and len(media_segments(r[2].decode())) >= 3 and r
    status, headers, body = wait_for(enough)
    text = body.decode()
    assert "#EXT-X-TARGETDURATION:1" in text, text
    assert f'#EXT-X-MAP:URI="v0_i{first_segment()}.mp4"' in text
    assert abs(first_segment() / 2 + 1704067200 - time.time()) < 60
    assert first_segment() < 2 ** 31
    assert "#EXT-X-PROGRAM-DATE-TIME:" in text
    assert "#EXT-X-ENDLIST" not in text
    assert int(re.search(r"max-age=(\d+)", headers["cache-control"]).group(1)) <= 1
    assert "#EXT-X-VERSION:9" in text
    segs = media_segments(text)
    assert len(segs) == 3, text              # packager.window
    for d in re.findall(r"#EXTINF:([\d.]+),", text):
        assert 0.9 <= float(d) <= 1.1, text
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    assert segs == [f"v0_{n}.m4s" for n in range(first, first + 3)]
    assert first >= first_segment()
    pdt = re.search(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", text).group(1)
    when = datetime.datetime.fromisoformat(pdt.replace("Z", "+00:00"))
    age = datetime.datetime.now(datetime.timezone.utc) - when
    assert datetime.timedelta(0) < age < datetime.timedelta(seconds=10), pdt


def test_segments_have_cache_and_range_semantics():
    status, headers, body = get(seg(1))
    assert status == 200
    assert headers["content-type"] == "video/iso.segment"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["accept-ranges"] == "bytes"
    assert int(headers["content-length"]) == len(body) > 1000
    assert body[4:8] == b"styp"
    etag = headers["etag"]
    status, h, b = get(seg(1), {"If-None-Match": etag})
    assert status == 304 and b == b""
    status, h, b = get(seg(1), {"If-Modified-Since": headers["last-modified"]})
    assert status == 304
    status, h, b = get(seg(1), {"Range": "bytes=100-199"})
    assert status == 206 and b == body[100:200]
    assert h["content-range"] == f"bytes 100-199/{len(body)}"
    status, h, b = get(seg(1), {"Range": "bytes=-10"})
    assert status == 206 and b == body[-10:]
    status, h, b = get(seg(1), {"Range": f"bytes={len(body)}-"})
    assert status == 416 and h["content-range"] == f"bytes */{len(body)}"
    status, h, b = get(seg(1), method="HEAD")
    assert status == 200 and b == b"" and int(h["content-length"]) == len(body)
    status, h, b = get(f"/live/cam1/a0_i{first_segment()}.mp4")
    assert status == 200 and h["content-type"] == "audio/mp4" and b[4:8] == b"ftyp"


def test_keep_alive_serves_large_and_small_responses_in_turn():
    w = state["weir"]
    conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
    try:
        whole = None
        for path in [seg(2), "/live/cam1/v0.m3u8", seg(2), "/live/cam1/index.m3u8", seg(2)]:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (path, r.status)
            assert len(body) == int(r.getheader("content-length"))
            if path.endswith(".m4s"):
                assert len(body) > 16 * 1024    # sent in pieces from the shared buffer
                assert whole is None or body == whole
                whole = body
    finally:
        conn.close()


def test_cors_preflight():
    status, h, b = get(seg(1), {"Origin": "http://player.test",
                                               "Access-Control-Request-Method": "GET",
                                               "Access-Control-Request-Headers": "range"},
                       method="OPTIONS")
    assert status == 204
    assert h["access-control-allow-origin"] == "*"
    assert "GET" in h["access-control-allow-methods"]
    assert "range" in h["access-control-allow-headers"].lower()


def test_paths_never_escape_the_store():
    for path in ["/live/../etc/passwd", "/live/%2e%2e/%2e%2e/etc/passwd", "/live/cam1/.v0.m3u8",
                 "/live/cam1/a/b/c",
                 "/live/cam1/", "/live/nosuch/index.m3u8", "/live/cam1/v0_99999.m4s",
                 "/live/cam1/v9.m3u8", "/live/cam1/v0_x.m4s"]:
        status, h, b = get(path)
        assert status in (400, 404), (path, status)
    # libwebsockets drops a connection whose URI decodes to a NUL.
    try:
        status = get(seg(1) + "%00.txt")[0]
    except http.client.RemoteDisconnected:
        status = None
    assert status in (None, 400, 404), status
    assert get("/healthz")[0] == 200


def test_segments_decode_with_ffprobe():
    _, _, pl = get("/live/cam1/v0.m3u8")
    with tempfile.TemporaryDirectory() as tmp:
        for track in ("v0", "a0"):
            _, _, pl = get(f"/live/cam1/{track}.m3u8")
            out = os.path.join(tmp, f"{track}.mp4")
            with open(out, "wb") as f:
                f.write(get(f"/live/cam1/{track}_i{first_segment()}.mp4")[2])
                for seg in media_segments(pl.decode()):
                    status, _, b = get(f"/live/cam1/{seg}")
                    assert status == 200, seg
                    f.write(b)
            info = ffprobe_json(out, "-show_streams", "-count_frames", "-show_entries",
                                "packet=pts,dts,flags")
            st = info["streams"][0]
            if track == "v0":
                assert st["codec_name"] == "h264" and st["width"] == 320 and st["height"] == 240
                frames = int(st["nb_read_frames"])
                assert 70 <= frames <= 80, frames       # three 1 s segments at 25 fps
                dts = [int(p["dts"]) for p in info["packets"]]
                assert dts == sorted(dts) and len(set(dts)) == len(dts)
                assert info["packets"][0]["flags"].startswith("K")
            else:
                assert st["codec_name"] == "aac" and st["sample_rate"] == "48000"
                assert int(st["nb_read_frames"]) > 100


def test_dash_mpd_lists_the_same_segments():
    status, headers, body = get("/live/cam1/index.mpd")
    assert status == 200 and headers["content-type"] == "application/dash+xml"
    mpd = ET.fromstring(body)
    assert mpd.get("type") == "dynamic"
    for attr in ("availabilityStartTime", "publishTime", "minimumUpdatePeriod",
                 "timeShiftBufferDepth", "suggestedPresentationDelay"):
        assert mpd.get(attr), attr
    utc = mpd.find("d:UTCTiming", MPD_NS)
    assert utc is not None and utc.get("value") == "/time"
    reps = {r.get("id"): r for r in mpd.iter("{urn:mpeg:dash:schema:mpd:2011}Representation")}
    assert set(reps) == {"v0", "a0"}
    assert reps["v0"].get("width") == "320" and reps["v0"].get("codecs").startswith("avc1.")
    tmpl = reps["v0"].find("d:SegmentTemplate", MPD_NS)
    assert tmpl.get("media") == "$RepresentationID$_$Number$.m4s"
    start = int(tmpl.get("startNumber"))
    status, _, seg = get(f"/live/cam1/v0_{start}.m4s")
    assert status == 200
    # tfdt of the first listed segment equals the timeline's first t.
    t0 = int(tmpl.find("d:SegmentTimeline/d:S", MPD_NS).get("t"))
    i = seg.index(b"tfdt")
    version = seg[i + 4]
    tfdt = int.from_bytes(seg[i + 8:i + 16] if version == 1 else seg[i + 8:i + 12], "big")
    assert tfdt == t0, (tfdt, t0)


def test_dashboard_page_lists_and_plays_with_local_hls_js():
    status, h, body = get("/")
    assert status == 200 and h["content-type"].startswith("text/html")
    assert b'src="/web/hls.min.js"' in body and b'src="/web/app.js"' in body
    status, h, js = get("/web/hls.min.js")
    assert status == 200 and len(js) > 100000 and b"Hls" in js[:200000]
    assert get("/web/app.js")[0] == 200
    assert get("/web/package.json")[0] == 404
    status, h, body = get("/live/index.json")
    assert status == 200 and h["content-type"] == "application/json"
    streams = json.loads(body)["streams"]
    assert streams == [{"name": "cam1", "ended": False, "hls": "/live/cam1/index.m3u8",
                        "dash": "/live/cam1/index.mpd"}], streams


def preload_hint(track="v0"):
    _, _, body = get(f"/live/cam1/{track}.m3u8")
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\w+)_(\d+)\.(\d+)\.m4s"', body.decode())
    assert m, body.decode()
    return int(m.group(2)), int(m.group(3))


def test_ll_hls_playlist_lists_parts():
    _, headers, body = get("/live/cam1/v0.m3u8")
    text = body.decode()
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in text
    assert "#EXT-X-PART-INF:PART-TARGET=0.520" in text, text    # 13 frames at 25 fps
    assert re.search(r'#EXT-X-PART:DURATION=[\d.]+,URI="v0_\d+\.0\.m4s",INDEPENDENT=YES', text)
    assert '#EXT-X-RENDITION-REPORT:URI="a0.m3u8"' in text
    # Half a part at most: a CDN must not serve a stale LL playlist.
    assert headers["cache-control"] == "public, max-age=0"


def test_ll_hls_blocking_reload_waits_for_the_part():
    msn, part = preload_hint()
    t0 = time.monotonic()
    status, _, body = get(f"/live/cam1/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}")
    waited = time.monotonic() - t0
    assert status == 200
    assert f'URI="v0_{msn}.{part}.m4s"' in body.decode(), body.decode()
    # It was held until the part existed: at most about one part duration.
    assert waited < 1.5, waited
    # The hinted part itself, asked for before it exists, is held and served.
    msn, part = preload_hint()
    status, h, part_body = get(f"/live/cam1/v0_{msn}.{part}.m4s")
    assert status == 200 and b"moof" in part_body[:64], status
    assert h["cache-control"] == "public, max-age=31536000, immutable"


def test_ll_dash_streams_the_segment_being_cut():
    mpd = get("/live/cam1/index.mpd")[2].decode()
    assert 'availabilityTimeComplete="false"' in mpd and "<ServiceDescription" in mpd
    msn, part = preload_hint()
    if part > 0:
        msn += 1                        # surely not complete by the time we ask
    t0 = time.monotonic()
    status, h, body = get(f"/live/cam1/v0_{msn}.m4s")
    waited = time.monotonic() - t0
    assert status == 200 and h.get("transfer-encoding") == "chunked", h
    assert body[4:8] == b"styp"
    assert waited > 0.2, waited         # it came as the parts were cut
    status, h, whole = get(f"/live/cam1/v0_{msn}.m4s")
    assert status == 200 and "transfer-encoding" not in h and whole == body


def test_ll_hls_bad_directives():
    msn, part = preload_hint()
    assert get(f"/live/cam1/v0.m3u8?_HLS_msn={msn + 5}")[0] == 400
    assert get("/live/cam1/v0.m3u8?_HLS_part=1")[0] == 400
    assert get("/live/cam1/v0.m3u8?_HLS_msn=abc")[0] == 400


def test_ll_hls_holds_many_requests_at_once():
    import concurrent.futures
    msn, part = preload_hint()
    url = f"/live/cam1/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}"

    def one(_):
        t0 = time.monotonic()
        status, _, body = get(url)
        return status, f"v0_{msn}.{part}.m4s" in body.decode(), time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    assert all(r[0] == 200 and r[1] for r in results), results[:5]
    assert max(r[2] for r in results) < 3.0


def test_time_endpoint():
    status, h, b = get("/time")
    assert status == 200
    when = datetime.datetime.fromisoformat(b.decode().replace("Z", "+00:00"))
    skew = abs(datetime.datetime.now(datetime.timezone.utc) - when)
    assert skew < datetime.timedelta(seconds=2)


def test_ffmpeg_plays_hls_and_dash_live():
    w = state["weir"]
    for url in (f"http://127.0.0.1:{w.port}/live/cam1/index.m3u8",
                f"http://127.0.0.1:{w.port}/live/cam1/index.mpd"):
        r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", url,
                            "-t", "2", "-map", "0", "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (url, r.stderr)
        errors = [line for line in r.stderr.splitlines() if "rror" in line]
        assert not errors, (url, errors)


def test_end_of_stream_closes_the_playlists():
    pub = state["pub"]
    assert pub.wait(timeout=60) == 0, pub.stderr.read()
    wait_for(lambda: b"#EXT-X-ENDLIST" in get("/live/cam1/v0.m3u8")[2])
    _, _, pl = get("/live/cam1/a0.m3u8")
    assert b"#EXT-X-ENDLIST" in pl
    mpd = ET.fromstring(get("/live/cam1/index.mpd")[2])
    assert mpd.get("type") == "static" and mpd.get("mediaPresentationDuration")
    # Segment 1 fell out of the window long ago: gone, not "not found".
    status, h, b = get(seg(1))
    assert status == 410, status


def teardown():
    state["weir"].finish()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_master_playlist_describes_the_stream,
                   test_media_playlist_is_a_sliding_window,
                   test_segments_have_cache_and_range_semantics,
                   test_keep_alive_serves_large_and_small_responses_in_turn,
                   test_cors_preflight,
                   test_paths_never_escape_the_store,
                   test_segments_decode_with_ffprobe,
                   test_dash_mpd_lists_the_same_segments,
                   test_dashboard_page_lists_and_plays_with_local_hls_js,
                   test_ll_hls_playlist_lists_parts,
                   test_ll_hls_blocking_reload_waits_for_the_part,
                   test_ll_dash_streams_the_segment_being_cut,
                   test_ll_hls_bad_directives,
                   test_ll_hls_holds_many_requests_at_once,
                   test_time_endpoint,
                   test_ffmpeg_plays_hls_and_dash_live,
                   test_end_of_stream_closes_the_playlists])
    finally:
        teardown()
