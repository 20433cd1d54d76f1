"""Recordings' disk retention (packager.record_max_age, packager.record_max_bytes)
and their asset events, against a real `weir serve` and ffmpeg publishers.

First run, no limits (the default): three streams are recorded at once; the
events WebSocket (the `ws` npm package, player-test/events.mjs) hears
asset.created and asset.state "ready" for each; a few sweeps later all are
still there, and weir_recordings_bytes is the sum of their files.

The test then ages the recordings' asset.json by hand (the sweeper's clock
is the time a recording ended) and restarts on the same data_dir with
max_age 1h and max_bytes just above one recording: the oldest goes for its
age, the next oldest for bytes; an uploaded asset older and larger than
both stays.  A live stream with DVR then grows past max_bytes on its own:
the last old recording goes, the live one stays while it is written and,
once finished, while its lingering DVR playlists still redirect into it;
then it goes too.  Every deletion: API 404, files gone, asset.deleted, the
counter, one log line."""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, run_tests, wait_for  # noqa: E402

WEIR = sys.argv[1]
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
PT = os.path.join(ROOT, "player-test")
COMMON = ["--set", "ingest.auth=open", "--set", "packager.segment_duration=1s",
          "--set", "packager.record=true", "--set", "packager.record_sweep_interval=200ms",
          "--set", "shutdown.timeout=1s"]
state = {}


class Events:
    """node events.mjs as a child (header mode); its lines are JSON messages."""

    def __init__(self, w, token):
        self.proc = subprocess.Popen(
            ["node", os.path.join(PT, "events.mjs"), f"ws://127.0.0.1:{w.port}/api/v1/events",
             "header", token],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda m: m["type"] == "ready", what="ready")

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(json.loads(line))

    def wait(self, pred, timeout=20, what=""):
        for m in self.seen:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(m)
            if pred(m):
                return m
        raise AssertionError(f"no {what} event; seen: {self.seen}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def push(w, name, seconds):
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{w.rtmp}/live/{name}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def start(*extra, data_dir=None):
    rtmp = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={rtmp}", *COMMON, *extra, data_dir=data_dir)
    w.rtmp = rtmp
    w.wait_ready()
    state["token"] = state.get("token") or weirtest.cli(
        WEIR, w.data_dir, "tokens", "create", "--scope", "read").stdout.strip()
    return w


def api(w, path):
    status, _, body = w.request("GET", path, headers={"Authorization": f"Bearer {state['token']}"})
    return status, json.loads(body) if body else None


def assets(w):
    status, body = api(w, "/api/v1/assets")
    assert status == 200, body
    return {a["id"]: a for a in body["assets"]}


def metric(w, series):
    text = w.request("GET", "/metrics")[2].decode()
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def age(data_dir, aid, seconds):
    p = os.path.join(data_dir, "vod", aid, "asset.json")
    t = time.time() - seconds
    os.utime(p, (t, t))


def setup():
    state["w"] = w = start()
    state["ev"] = Events(w, state["token"])


def test_the_limits_are_checked():
    w = state["w"]
    ok = os.path.join(w.tmp.name, "ok.yml")
    with open(ok, "w") as f:
        f.write("packager:\n  record_max_age: 7d\n  record_max_bytes: 200GB\n")
    r = weirtest.cli(WEIR, w.data_dir, "config", "check", ok)
    assert r.returncode == 0, r.stderr
    bad = os.path.join(w.tmp.name, "bad.yml")
    with open(bad, "w") as f:
        f.write("packager:\n  record_sweep_interval: 10ms\n  record_max_bytes: -1\n")
    r = weirtest.cli(WEIR, w.data_dir, "config", "check", bad)
    assert r.returncode != 0, r
    assert "packager.record_sweep_interval: must be between 100ms" in r.stderr, r.stderr
    assert "packager.record_max_bytes: must be between 0" in r.stderr, r.stderr


def test_recordings_announce_themselves_and_are_kept_by_default():
    w, ev = state["w"], state["ev"]
    pushes = [push(w, n, 2) for n in ("r1", "r2", "r3")]
    for p in pushes:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    ids = {}
    for n in ("r1", "r2", "r3"):
        created = ev.wait(lambda m, n=n: m["type"] == "asset.created"
                          and m["data"]["name"] == n, what=f"{n} created")["data"]
        assert created["state"] == "recording" and created["source"] == "live", created
        ready = ev.wait(lambda m, n=n: m["type"] == "asset.state" and m["data"]["name"] == n,
                        what=f"{n} ready")["data"]
        assert ready["state"] == "ready" and ready["id"] == created["id"], ready
        assert ready["hls"] == f"/vod/{ready['id']}/index.m3u8", ready
        # The event is what the API then answers.
        assert api(w, f"/api/v1/assets/{ready['id']}") == (200, ready)
        ids[n] = ready["id"]
    state["ids"] = ids
    vod = os.path.join(w.data_dir, "vod")
    total = sum(folder_bytes(os.path.join(vod, i)) for i in ids.values())
    # Sweeps measure; with no limit nothing goes.
    wait_for(lambda: metric(w, "weir_recordings_bytes") == total, timeout=5)
    time.sleep(0.5)
    assert set(ids.values()) <= set(assets(w)), assets(w)
    assert metric(w, 'weir_recordings_expired_total{reason="age"}') in (None, 0.0)
    assert "recordings are kept until deleted" in w.stderr()
    state["sizes"] = {n: folder_bytes(os.path.join(vod, i)) for n, i in ids.items()}


def test_limits_delete_the_oldest_recordings_first():
    old = state.pop("w")
    state["ev"].close()
    data_dir = old.data_dir
    old.stop()
    state["old"] = old                       # its tmp holds data_dir: closed in teardown
    ids, sizes = state["ids"], state["sizes"]
    age(data_dir, ids["r1"], 7200)           # past max_age
    age(data_dir, ids["r2"], 1200)           # older than r3: first to go for bytes
    age(data_dir, ids["r3"], 600)
    # An upload's asset, older and larger than every recording: never touched.
    up = os.path.join(data_dir, "vod", "up1")
    os.makedirs(up)
    with open(os.path.join(up, "asset.json"), "w") as f:
        json.dump({"id": "up1", "state": "ready", "source": "upload", "name": "clip"}, f)
    with open(os.path.join(up, "v0_1.m4s"), "wb") as f:
        f.write(b"\0" * (4 * max(sizes.values())))
    age(data_dir, "up1", 99999)
    max_bytes = sizes["r3"] + min(sizes.values()) // 2
    state["max_bytes"] = max_bytes
    w = state["w"] = start("--set", "packager.record_max_age=1h",
                           "--set", f"packager.record_max_bytes={max_bytes}",
                           "--set", "packager.dvr_window=60s", "--set", "packager.window=3",
                           "--set", "packager.reconnect_grace=0s", "--set", "packager.linger=4s",
                           data_dir=data_dir)
    # (The first sweep runs within a second of the start, maybe before an
    # events client is ready: the events are checked on the later ones.)
    for n in ("r1", "r2"):
        wait_for(lambda n=n: api(w, f"/api/v1/assets/{ids[n]}")[0] == 404, timeout=5)
        assert w.request("GET", f"/vod/{ids[n]}/index.m3u8")[0] == 404
        assert not os.path.exists(os.path.join(data_dir, "vod", ids[n]))
    assert ids["r3"] in assets(w) and "up1" in assets(w)
    assert metric(w, 'weir_recordings_expired_total{reason="age"}') == 1
    assert metric(w, 'weir_recordings_expired_total{reason="bytes"}') == 1
    wait_for(lambda: metric(w, "weir_recordings_bytes") == sizes["r3"], timeout=5)
    logs = w.stderr()
    assert re.search(rf'event="recording expired" asset={ids["r1"]} age_s=\d+ '
                     rf'bytes={sizes["r1"]} reason=age', logs), logs
    assert re.search(rf'event="recording expired" asset={ids["r2"]} .*reason=bytes', logs), logs


def test_a_live_recording_with_dvr_is_kept_until_nothing_reads_it():
    w, ids = state["w"], state["ids"]
    ev = state["ev"] = Events(w, state["token"])
    max_bytes = state["max_bytes"]
    p = push(w, "cam", 8)
    live = ev.wait(lambda m: m["type"] == "asset.created" and m["data"]["name"] == "cam",
                   what="cam created")["data"]["id"]
    # It grows: r3 goes to make room, the live one never does.
    ev.wait(lambda m: m["type"] == "asset.deleted" and m["data"] == {"id": ids["r3"]},
            timeout=30, what="r3 deleted")
    wait_for(lambda: (metric(w, "weir_recordings_bytes") or 0) > max_bytes, timeout=30)
    time.sleep(0.5)                         # more sweeps, over the limit
    assert assets(w)[live]["state"] == "recording"
    assert p.wait(timeout=60) == 0, p.stderr.read()
    ev.wait(lambda m: m["type"] == "asset.state" and m["data"]["id"] == live
            and m["data"]["state"] == "ready", what="cam ready")
    # Finished and over the limit alone, but the ended presentation lingers
    # and its DVR still redirects into the recording: kept.
    text = w.request("GET", "/live/cam/v0.m3u8")[2].decode()
    first = re.findall(r"^v0_(\d+)\.m4s$", text, re.M)[0]
    status, h, _ = w.request("GET", f"/live/cam/v0_{first}.m4s")
    assert status == 301 and h["location"].startswith(f"/vod/{live}/"), (status, h)
    time.sleep(1.0)
    assert live in assets(w)
    assert w.request("GET", h["location"])[0] == 200
    # The linger ends (4s): nothing reads it any more, and it goes too.
    ev.wait(lambda m: m["type"] == "asset.deleted" and m["data"] == {"id": live},
            timeout=15, what="cam deleted")
    assert not os.path.exists(os.path.join(w.data_dir, "vod", live))
    assert metric(w, 'weir_recordings_expired_total{reason="bytes"}') == 3
    assert "up1" in assets(w)
    wait_for(lambda: metric(w, "weir_recordings_bytes") == 0, timeout=5)


def teardown():
    if "ev" in state:
        state["ev"].close()
    try:
        if "w" in state:
            state["w"].finish()
    finally:
        if "old" in state:
            state["old"].close()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_the_limits_are_checked,
                   test_recordings_announce_themselves_and_are_kept_by_default,
                   test_limits_delete_the_oldest_recordings_first,
                   test_a_live_recording_with_dvr_is_kept_until_nothing_reads_it])
    finally:
        teardown()
