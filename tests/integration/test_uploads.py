"""Uploads: tus 1.0.0 against a real `weir serve`, driven by a tus client
written here (standard library only) and by `weir upload`.  A tiny clip
goes up in chunks, through an interrupted PATCH, across a server restart,
in one PATCH larger than http.max_body, and through a single-use URL; it
becomes a VOD asset that ffprobe plays.  Refusals get tus's status codes
with problem+json bodies; files that are not media, or truncated, become
failed assets with a reason; abandoned uploads expire; a finished upload
left unprocessed at shutdown is processed after the restart."""
import base64
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, run_tests  # noqa: E402

WEIR = sys.argv[1]
OCTETS = "application/offset+octet-stream"
state = {}


class Tus:
    """A tus 1.0.0 client: creation, core, checksum, termination."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token

    def req(self, method, path, headers=None, body=None, tus=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Tus-Resumable": "1.0.0"} if tus else {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def create(self, length, meta=None, path="/api/v1/uploads", body=None, headers=None):
        h = {"Upload-Length": str(length)}
        if meta:
            h["Upload-Metadata"] = ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
        if body is not None:
            h["Content-Type"] = OCTETS
        h.update(headers or {})
        return self.req("POST", path, h, body)

    def head(self, loc):
        return self.req("HEAD", loc)

    def offset(self, loc):
        status, h, _ = self.head(loc)
        assert status == 200, status
        assert h["cache-control"] == "no-store"
        return int(h["upload-offset"])

    def patch(self, loc, offset, data, checksum="sha1", headers=None):
        h = {"Content-Type": OCTETS, "Upload-Offset": str(offset)}
        if checksum:
            digest = hashlib.new(checksum, data).digest()
            h["Upload-Checksum"] = f"{checksum} {base64.b64encode(digest).decode()}"
        h.update(headers or {})
        return self.req("PATCH", loc, h, data)

    def upload(self, data, chunk, meta=None):
        """Creates an upload and sends data in chunks; returns its location."""
        status, h, body = self.create(len(data), meta)
        assert status == 201, (status, body)
        loc = h["location"]
        off = 0
        while off < len(data):
            status, h, body = self.patch(loc, off, data[off:off + chunk])
            assert status == 204, (status, body)
            assert int(h["upload-offset"]) == min(off + chunk, len(data))
            off = int(h["upload-offset"])
        return loc


def upload_id(loc):
    return loc.split("?")[0].rsplit("/", 1)[1]


def token(w, scope="write"):
    return weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", scope).stdout.strip()


def api(w, tok, method, path, body=None):
    headers = {"Authorization": f"Bearer {tok}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    status, h, data = w.request(method, path, body=body, headers=headers)
    return status, json.loads(data) if data else None


def asset(w, tok, aid):
    status, a = api(w, tok, "GET", f"/api/v1/assets/{aid}")
    return a if status == 200 else None


def wait_asset(w, tok, aid, states=("ready", "failed"), timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        a = asset(w, tok, aid)
        if a and a["state"] in states:
            return a
        time.sleep(0.1)
    raise AssertionError(f"asset {aid} not {states}: {asset(w, tok, aid)}\n{w.logs()[-3000:]}")


def problem(status, h, body, want):
    assert status == want, (status, body)
    assert h["tus-resumable"] == "1.0.0"
    if body:
        p = json.loads(body)
        assert h["content-type"] == "application/problem+json"
        assert p["status"] == want and p["detail"], p
        return p
    return None


def setup():
    tmp = tempfile.TemporaryDirectory(prefix="weir-up-")
    state["tmp"] = tmp
    clip = os.path.join(tmp.name, "clip.mp4")
    r = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-movflags", "+faststart", clip],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    state["clip_path"] = clip
    with open(clip, "rb") as f:
        state["clip"] = f.read()
    assert len(state["clip"]) > 100 * 1024
    w = Weir(WEIR, "--set", "http.max_body=64KiB", "--set", "uploads.max_size=20MiB",
             "--set", "shutdown.timeout=1s")
    state["weir"] = w
    w.wait_ready()
    state["write"] = token(w)
    state["read"] = token(w, "read")
    state["tus"] = Tus(w.port, state["write"])


def test_options_says_what_is_served():
    status, h, _ = Tus(state["weir"].port).req("OPTIONS", "/api/v1/uploads", tus=False)
    assert status == 204, status
    assert h["tus-version"] == "1.0.0"
    assert set(h["tus-extension"].split(",")) >= {
        "creation", "creation-with-upload", "termination", "expiration", "checksum"}
    assert "sha1" in h["tus-checksum-algorithm"].split(",")
    assert int(h["tus-max-size"]) == 20 * 1024 * 1024


def test_chunked_upload_becomes_a_playable_asset():
    w, tus, clip = state["weir"], state["tus"], state["clip"]
    loc = tus.upload(clip, 40000, {"filename": "clip.mp4", "name": "My clip é"})
    aid = upload_id(loc)
    status, h, _ = tus.head(loc)
    assert status == 200 and int(h["upload-offset"]) == len(clip)
    assert int(h["upload-length"]) == len(clip)
    assert "filename Y2xpcC5tcDQ=" in h["upload-metadata"]
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "ready", a
    assert a["source"] == "upload" and a["name"] == "My clip é" and a["filename"] == "clip.mp4"
    assert a["id"] == aid and a["size"] == len(clip)
    assert 3.9 <= a["duration_s"] <= 4.1, a
    assert a["resolution"] == "320x180" and a["fps"] == 25, a
    assert a["container"].startswith("mov,mp4"), a
    assert [t["codec"] for t in a["tracks"]] == ["h264", "aac"], a
    assert a["hls"] == f"/vod/{aid}/index.m3u8" and a["dash"] == f"/vod/{aid}/index.mpd"
    assert "reason" not in a and "percent" not in a
    for path in (a["hls"], a["dash"]):
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "json",
                            f"http://127.0.0.1:{w.port}{path}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert int(json.loads(r.stdout)["streams"][0]["nb_read_frames"]) == 100, (path, r.stdout)
    # The partial file is gone once the asset is made.
    assert not os.path.exists(os.path.join(w.data_dir, "uploads", f"{aid}.part"))
    listed = api(w, state["read"], "GET", "/api/v1/assets")[1]["assets"]
    assert any(x["id"] == aid and x["source"] == "upload" for x in listed)
    state["ready_id"] = aid


def test_one_body_larger_than_http_max_body_streams():
    """creation-with-upload: the whole file (more than http.max_body, 64 KiB)
    in the POST itself, then again in one PATCH."""
    w, tus, clip = state["weir"], state["tus"], state["clip"]
    status, h, body = tus.create(len(clip), {"filename": "one.mp4"}, body=clip)
    assert status == 201, (status, body)
    assert int(h["upload-offset"]) == len(clip)
    assert wait_asset(w, state["read"], upload_id(h["location"]))["state"] == "ready"

    status, h, body = tus.create(len(clip))
    loc = h["location"]
    status, h, body = tus.patch(loc, 0, clip)
    assert status == 204 and int(h["upload-offset"]) == len(clip), (status, body)
    assert "upload-expires" in h and h["upload-expires"].endswith(" GMT")


def raw_patch(port, tok, loc, offset, data, send):
    """Sends a PATCH announcing len(data) bytes but only `send` of them, then
    hangs up: a connection lost mid-chunk."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: Bearer {tok}\r\nContent-Type: {OCTETS}\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {len(data)}\r\n\r\n")
    s.sendall(head.encode() + data[:send])
    time.sleep(0.3)
    s.close()


def wait_offset(tus, loc, want, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        off = tus.offset(loc)
        if off == want:
            return off
        time.sleep(0.05)
    raise AssertionError(f"offset {tus.offset(loc)}, wanted {want}")


def test_an_interrupted_patch_keeps_what_arrived_and_resumes_from_head():
    w, tus, clip = state["weir"], state["tus"], state["clip"]
    status, h, _ = tus.create(len(clip), {"name": "interrupted"})
    loc = h["location"]
    raw_patch(w.port, state["write"], loc, 0, clip, 50000)
    off = wait_offset(tus, loc, 50000)     # kept: no checksum to hold it to
    status, h, body = tus.patch(loc, off, clip[off:])
    assert status == 204, (status, body)
    assert wait_asset(w, state["read"], upload_id(loc))["state"] == "ready"

    # With a checksum, a chunk cut short is discarded: it cannot be checked.
    status, h, _ = tus.create(len(clip))
    loc = h["location"]
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    digest = base64.b64encode(hashlib.sha1(clip).digest()).decode()
    s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
               f"Authorization: Bearer {state['write']}\r\nContent-Type: {OCTETS}\r\n"
               f"Upload-Offset: 0\r\nUpload-Checksum: sha1 {digest}\r\n"
               f"Content-Length: {len(clip)}\r\n\r\n").encode() + clip[:30000])
    time.sleep(0.3)
    s.close()
    time.sleep(0.5)
    assert tus.offset(loc) == 0


def test_wrong_offset_is_409_and_a_bad_checksum_is_460():
    tus, clip = state["tus"], state["clip"]
    status, h, _ = tus.create(len(clip))
    loc = h["location"]
    assert tus.patch(loc, 0, clip[:1000])[0] == 204
    p = problem(*tus.patch(loc, 0, clip[:1000]), 409)
    assert "1000" in p["detail"]
    problem(*tus.patch(loc, 5000, clip[5000:6000]), 409)
    # The connection lives on after a refused chunk (its body is dropped).
    bad = hashlib.sha1(b"something else").digest()
    problem(*tus.patch(loc, 1000, clip[1000:2000], headers={
        "Upload-Checksum": "sha1 " + base64.b64encode(bad).decode()}), 460)
    assert tus.offset(loc) == 1000
    for algo in ("sha256", "md5"):
        status, h, body = tus.patch(loc, tus.offset(loc), clip[tus.offset(loc):][:500],
                                    checksum=algo)
        assert status == 204, (status, body)
    assert tus.offset(loc) == 2000
    state["open_upload"] = loc


def test_protocol_errors_have_tus_codes_and_problem_bodies():
    tus, loc = state["tus"], state["open_upload"]
    status, h, body = tus.req("PATCH", loc, {"Content-Type": OCTETS, "Upload-Offset": "2000"},
                              b"x", tus=False)
    problem(status, h, body, 412)
    assert h["tus-version"] == "1.0.0"
    problem(*tus.req("PATCH", loc, {"Tus-Resumable": "0.2.2", "Content-Type": OCTETS,
                                     "Upload-Offset": "2000"}, b"x"), 412)
    problem(*tus.patch(loc, 2000, b"x", headers={"Content-Type": "application/octet-stream"}),
            415)
    problem(*tus.patch(loc, 2000, b"x", headers={"Upload-Offset": "-1"}), 400)
    problem(*tus.patch(loc, 2000, b"x", headers={"Upload-Checksum": "crc32 AAAAAA=="}), 400)
    problem(*tus.patch(loc, 2000, b"x", headers={"Upload-Checksum": "sha1 nope"}), 400)
    problem(*tus.create(1000, headers={"Upload-Length": "ten"}), 400)
    problem(*tus.req("POST", "/api/v1/uploads", {"Upload-Defer-Length": "1"}), 400)
    problem(*tus.req("POST", "/api/v1/uploads", {}), 400)
    problem(*tus.create(10, headers={"Upload-Metadata": "a b c"}), 400)
    problem(*tus.patch(loc, 2000, bytes(len(state["clip"]))), 413)     # past Upload-Length
    problem(*tus.head("/api/v1/uploads/AAAAAAAAAAAAAAAAAAAAAA"), 404)
    problem(*tus.req("GET", "/api/v1/uploads/nosuch"), 404)
    problem(*tus.req("GET", loc), 405)
    assert tus.offset(loc) == 2000


def test_tokens_are_checked():
    w, loc = state["weir"], state["open_upload"]
    for tok, want in ((None, 401), ("wt_bogusbogusbogusbogusbogusbogusbogusbogus", 401),
                      (state["read"], 403)):
        t = Tus(w.port, tok)
        status, h, body = t.create(10)
        problem(status, h, body, want)
        if want == 401:
            assert h["www-authenticate"].startswith("Bearer")
        problem(*t.head(loc), want)
        problem(*t.patch(loc, 2000, b"x"), want)
        problem(*t.req("DELETE", loc), want)
    assert state["tus"].offset(loc) == 2000


def test_a_single_use_url_uploads_once():
    w, clip = state["weir"], state["clip"]
    assert api(w, state["read"], "POST", "/api/v1/uploads/urls")[0] == 403
    status, u = api(w, state["write"], "POST", "/api/v1/uploads/urls", {"name": "partner"})
    assert status == 201, u
    assert u["url"].startswith("/api/v1/uploads?token=wu_") and u["expires"]
    anon = Tus(w.port)                  # no bearer token: the URL is the credential
    status, h, body = anon.create(len(clip), {"name": "via url"}, path=u["url"])
    assert status == 201, (status, body)
    loc = h["location"]
    assert "?token=wu_" in loc
    status, h, body = anon.patch(loc, 0, clip)
    assert status == 204, (status, body)
    assert anon.offset(loc) == len(clip)
    assert wait_asset(w, state["read"], upload_id(loc))["state"] == "ready"
    # Once only; and only for its own upload.
    p = problem(*anon.create(10, path=u["url"]), 403)
    assert "already used" in p["detail"]
    other = state["open_upload"] + loc[loc.index("?"):]
    problem(*anon.head(other), 403)
    problem(*anon.create(10, path="/api/v1/uploads?token=wu_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            401)
    # The token never reaches the log.
    token = u["url"].split("token=")[1]
    assert token not in w.logs()


def test_over_max_size_is_413():
    p = problem(*state["tus"].create(20 * 1024 * 1024 + 1), 413)
    assert "uploads.max_size" in p["detail"]
    assert state["tus"].create(20 * 1024 * 1024)[0] == 201


def test_files_that_are_not_media_or_are_truncated_fail_with_a_reason():
    w, tus, clip = state["weir"], state["tus"], state["clip"]
    plain = os.path.join(state["tmp"].name, "plain.mp4")     # moov at the end
    r = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                        state["clip_path"], "-c", "copy", plain], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(plain, "rb") as f:
        no_moov = f.read()[:-3000]
    cases = {
        "text": (b"this is not a video\n" * 2000, "not a media file"),
        "truncated": (clip[:60000], "truncated"),
        "no moov": (no_moov, "truncated or damaged"),
        # (A codec nothing decodes, and one only a remux refuses: test_vod.py.)
        # A playlist naming other files is refused before it is opened.
        "playlist": (b"ffconcat version 1.0\nfile /etc/passwd\n", "concat files are not accepted"),
    }
    ids = {}
    for name, (data, _) in cases.items():
        ids[name] = upload_id(tus.upload(data, 1 << 20, {"name": name}))
    for name, (_, reason) in cases.items():
        a = wait_asset(w, state["read"], ids[name])
        assert a["state"] == "failed" and reason in a["reason"], a
        assert "hls" not in a
    assert weirtest.Weir.stderr(w).count('event="upload failed"') >= len(cases)
    assert w.proc.poll() is None


def test_termination_deletes_the_upload():
    w, tus, loc = state["weir"], state["tus"], state["open_upload"]
    aid = upload_id(loc)
    assert asset(w, state["read"], aid)["state"] == "uploading"
    assert asset(w, state["read"], aid)["received"] == 2000
    status, h, _ = tus.req("DELETE", loc)
    assert status == 204 and h["tus-resumable"] == "1.0.0"
    problem(*tus.head(loc), 404)
    problem(*tus.patch(loc, 2000, b"x"), 404)
    assert asset(w, state["read"], aid) is None
    assert not os.path.exists(os.path.join(w.data_dir, "uploads", f"{aid}.part"))


def test_deleting_an_upload_asset_removes_it():
    w, aid = state["weir"], state["ready_id"]
    assert api(w, state["read"], "DELETE", f"/api/v1/assets/{aid}")[0] == 403
    status, body = api(w, state["write"], "DELETE", f"/api/v1/assets/{aid}")
    assert status == 200, body
    assert w.request("GET", f"/vod/{aid}/index.m3u8")[0] == 404
    assert not os.path.exists(os.path.join(w.data_dir, "vod", aid))
    problem(*state["tus"].head(f"/api/v1/uploads/{aid}"), 404)


def test_weir_upload_prints_the_asset_id():
    w = state["weir"]
    r = subprocess.run([WEIR, "upload", state["clip_path"], "--name", "from the cli",
                        "--server", f"http://127.0.0.1:{w.port}", "--token", state["write"]],
                       capture_output=True, text=True, timeout=60)
    weirtest.assert_no_sanitizer_report(r.stderr)
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    assert len(aid) == 22, r.stdout
    assert "100%" in r.stderr and "\r" not in r.stderr     # not a terminal: plain lines
    a = wait_asset(w, state["read"], aid)
    assert a["state"] == "ready" and a["name"] == "from the cli", a
    # Without a token it says how to get one; a missing file is an error.
    env = {k: v for k, v in os.environ.items() if k != "WEIR_TOKEN"}
    r = subprocess.run([WEIR, "upload", state["clip_path"], "--server",
                        f"http://127.0.0.1:{w.port}"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "token" in r.stderr
    r = subprocess.run([WEIR, "upload", "/nonexistent.mp4", "--token", state["write"]],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "nonexistent" in r.stderr


def test_weir_upload_resumes_across_a_server_restart():
    """The CLI keeps going while the server restarts under it."""
    w = state["weir"]
    big = os.path.join(state["tmp"].name, "big.mp4")
    with open(big, "wb") as f:      # 6 MiB in 1 MiB chunks at 2 MiB/s: 3 s
        f.write(state["clip"])
        f.write(os.urandom(6 * 1024 * 1024 - len(state["clip"])))
    p = subprocess.Popen([WEIR, "upload", big, "--server", f"http://127.0.0.1:{w.port}",
                          "--token", state["write"], "--chunk-size", "1M",
                          "--limit-rate", "2M"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # Stop the server once the first chunk is in, start it again on the port.
    t0 = time.monotonic()
    part = None
    while time.monotonic() - t0 < 30 and not part:
        for name in os.listdir(os.path.join(w.data_dir, "uploads")):
            path = os.path.join(w.data_dir, "uploads", name)
            if os.path.getsize(path) > 1024 * 1024:
                part = path
        time.sleep(0.05)
    assert part, "the upload never started"
    rc, _ = w.stop()
    assert rc == 0, w.logs()
    w2 = Weir(WEIR, "--set", "http.max_body=64KiB", "--set", "uploads.max_size=20MiB",
              data_dir=w.data_dir, port=w.port)
    state["weir2"] = w2
    w2.wait_ready()
    out, err = p.communicate(timeout=120)
    weirtest.assert_no_sanitizer_report(err)
    assert p.returncode == 0, err
    assert "resuming" in err, err
    a = wait_asset(w2, state["read"], out.strip())
    assert a["size"] == 6 * 1024 * 1024, a


def test_a_restart_mid_upload_resumes_from_the_durable_offset():
    w, clip = state["weir2"], state["clip"]
    tus = Tus(w.port, state["write"])
    status, h, _ = tus.create(len(clip), {"name": "across a restart"})
    loc = h["location"]
    assert tus.patch(loc, 0, clip[:70000])[0] == 204
    rc, _ = w.stop()
    assert rc == 0, w.logs()
    w3 = Weir(WEIR, "--set", "http.max_body=64KiB", data_dir=w.data_dir)
    state["weir3"] = w3
    w3.wait_ready()
    tus = Tus(w3.port, state["write"])
    assert tus.offset(loc) == 70000
    status, h, body = tus.patch(loc, 70000, clip[70000:])
    assert status == 204, (status, body)
    assert wait_asset(w3, state["read"], upload_id(loc))["state"] == "ready"


def test_abandoned_uploads_expire_and_queued_ones_survive_a_restart():
    clip = state["clip"]
    x = Weir(WEIR, "--set", "uploads.expiry=2s", "--set", "uploads.workers=0")
    state["x"] = x
    x.wait_ready()
    tok = token(x)
    tus = Tus(x.port, tok)
    status, h, _ = tus.create(len(clip))
    abandoned = h["location"]
    exp = h["upload-expires"]
    assert exp.endswith(" GMT")
    done = tus.upload(clip, 1 << 20, {"name": "queued"})
    aid = upload_id(done)
    assert asset(x, tok, aid)["state"] == "queued"
    time.sleep(3.5)
    problem(*tus.head(abandoned), 410)
    assert asset(x, tok, upload_id(abandoned)) is None
    assert asset(x, tok, aid)["state"] == "queued"      # finished uploads do not expire
    rc, _ = x.stop()
    assert rc == 0
    x2 = Weir(WEIR, "--set", "uploads.workers=1", data_dir=x.data_dir)
    state["x2"] = x2
    x2.wait_ready()
    assert wait_asset(x2, tok, aid)["state"] == "ready"


def test_a_nearly_full_disk_is_507():
    y = Weir(WEIR, "--set", "uploads.min_free=60000GiB")
    state["y"] = y
    y.wait_ready()
    p = problem(*Tus(y.port, token(y)).create(1000), 507)
    assert "disk" in p["detail"]


def teardown():
    # Instances that ran on another's data_dir close first.
    for key in ("y", "x2", "x", "weir3", "weir2", "weir"):
        w = state.get(key)
        if not w:
            continue
        if w.proc.poll() is None:
            rc, _ = w.stop()
            assert rc == 0, w.logs()
        w.close()
    state["tmp"].cleanup()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_options_says_what_is_served,
                   test_chunked_upload_becomes_a_playable_asset,
                   test_one_body_larger_than_http_max_body_streams,
                   test_an_interrupted_patch_keeps_what_arrived_and_resumes_from_head,
                   test_wrong_offset_is_409_and_a_bad_checksum_is_460,
                   test_protocol_errors_have_tus_codes_and_problem_bodies,
                   test_tokens_are_checked,
                   test_a_single_use_url_uploads_once,
                   test_over_max_size_is_413,
                   test_files_that_are_not_media_or_are_truncated_fail_with_a_reason,
                   test_termination_deletes_the_upload,
                   test_deleting_an_upload_asset_removes_it,
                   test_weir_upload_prints_the_asset_id,
                   test_weir_upload_resumes_across_a_server_restart,
                   test_a_restart_mid_upload_resumes_from_the_durable_offset,
                   test_abandoned_uploads_expire_and_queued_ones_survive_a_restart,
                   test_a_nearly_full_disk_is_507])
    finally:
        teardown()
