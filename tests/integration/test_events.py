"""Events and tus-js-client: /api/v1/events against a real `weir serve`,
with the `ws` npm package as the WebSocket peer (player-test/events.mjs),
and tus-js-client in Node (player-test/tus_upload.mjs) as a second tus
client beside `weir upload`.

An upgrade without a credential is refused with 401 before any upgrade; a
token of the right shape that is unknown closes with 4401; a read token in
the subprotocol list, the Authorization header or ?token= gets "ready".
ffmpeg pushes RTMP: stream.started and stream.ended arrive.  tus-js-client
uploads a clip, is interrupted past a third, and a new upload continues
from the offset the server reports (HEAD); the client sees asset.created,
upload.progress and asset.state up to ready; the asset plays with ffprobe.
No token reaches the log."""
import http.client
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, free_port, run_tests  # noqa: E402

WEIR = sys.argv[1]
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
PT = os.path.join(ROOT, "player-test")
state = {}


class Events:
    """node events.mjs as a child; its lines are JSON messages."""

    def __init__(self, mode, token):
        url = f"ws://127.0.0.1:{state['weir'].port}/api/v1/events"
        self.proc = subprocess.Popen(["node", os.path.join(PT, "events.mjs"), url, mode, token],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(json.loads(line))
        self.q.put(None)

    def wait(self, pred, timeout=30, what=""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if m is None:
                break
            self.seen.append(m)
            if pred(m):
                return m
        raise AssertionError(f"no {what} event; seen: {self.seen}\n"
                             f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def token(scope):
    w = state["weir"]
    return weirtest.cli(WEIR, w.data_dir, "tokens", "create", "--scope", scope).stdout.strip()


def setup():
    tmp = tempfile.TemporaryDirectory(prefix="weir-ev-")
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
    state["clip"] = clip
    state["rtmp"] = free_port()
    w = Weir(WEIR, "--set", f"rtmp.port={state['rtmp']}", "--set", "ingest.auth=open",
             "--set", "shutdown.timeout=1s", "--set", f"origin.web_dir={ROOT}/web")
    state["weir"] = w
    w.wait_ready()
    state["read"] = token("read")
    state["write"] = token("write")


def teardown():
    w = state.get("weir")
    if w:
        if w.proc.poll() is None:
            w.stop()
        w.close()


def upgrade_request(headers):
    conn = http.client.HTTPConnection("127.0.0.1", state["weir"].port, timeout=5)
    try:
        conn.request("GET", "/api/v1/events", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def test_no_credential_is_401_before_the_upgrade():
    status, h, body = upgrade_request({})
    assert status == 401, (status, body)
    assert h.get("www-authenticate") == "Bearer", h
    ev = Events("none", "")
    try:
        assert ev.wait(lambda m: m["type"].startswith("_"), 10)["type"] == "_refused"
        assert ev.seen[-1]["status"] == 401
    finally:
        ev.close()
    # A plain GET of the path says it is a WebSocket.
    status, _, _ = state["weir"].request("GET", "/api/v1/events")
    assert status == 426


def test_an_unknown_token_is_closed_with_4401():
    fake = "wt_" + "A" * 40
    ev = Events("protocol", fake)
    try:
        m = ev.wait(lambda m: m["type"] == "_closed", 15, "close")
        assert m["code"] == 4401, m
        assert not any(x["type"] == "ready" for x in ev.seen), ev.seen
    finally:
        ev.close()


def test_every_way_of_sending_the_token_is_ready():
    for mode in ("protocol", "header", "query"):
        ev = Events(mode, state["read"])
        try:
            ev.wait(lambda m: m["type"] == "ready", 15, f"ready ({mode})")
            if mode == "protocol":
                assert ev.seen[0] == {"type": "_open", "protocol": "weir"}, ev.seen
        finally:
            ev.close()


def test_stream_started_and_ended_from_an_rtmp_push():
    ev = Events("protocol", state["read"])
    try:
        ev.wait(lambda m: m["type"] == "ready", 15, "ready")
        pub = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
             "-f", "flv", f"rtmp://127.0.0.1:{state['rtmp']}/live/evcam"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        m = ev.wait(lambda m: m["type"] == "stream.started" and m["data"]["name"] == "evcam",
                    20, "stream.started")
        assert m["time"].endswith("Z") and m["time"][:2] == "20", m
        pub.wait(timeout=30)
        ev.wait(lambda m: m["type"] == "stream.ended" and m["data"]["name"] == "evcam",
                20, "stream.ended")
    finally:
        ev.close()


def test_tus_js_client_resumes_and_the_asset_events_reach_ready():
    w = state["weir"]
    ev = Events("query", state["read"])
    try:
        ev.wait(lambda m: m["type"] == "ready", 15, "ready")
        r = subprocess.run(["node", os.path.join(PT, "tus_upload.mjs"),
                            f"http://127.0.0.1:{w.port}/api/v1/uploads", state["write"],
                            state["clip"], "--interrupt"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        size = os.path.getsize(state["clip"])
        assert res["size"] == size
        # Interrupted past a third; the second client asked the server and
        # went on from what it had acknowledged, not from 0.
        assert size / 3 < res["interruptedAt"] < size, res
        assert 0 < res["serverOffset"] <= res["interruptedAt"], res
        assert res["resumedFirstChunkFrom"] == res["serverOffset"], res
        aid = res["url"].rstrip("/").split("/")[-1]
        created = ev.wait(lambda m: m["type"] == "asset.created", 10, "asset.created")
        assert created["data"]["id"] == aid and created["data"]["state"] == "uploading"
        ready = ev.wait(lambda m: m["type"] == "asset.state" and m["data"]["id"] == aid and
                        m["data"]["state"] in ("ready", "failed"), 120, "asset ready")
        assert ready["data"]["state"] == "ready", ready
        states = [m["data"]["state"] for m in ev.seen
                  if m["type"] == "asset.state" and m["data"]["id"] == aid]
        assert states[0] == "queued" and "processing" in states, states
        progress = [m["data"] for m in ev.seen if m["type"] == "upload.progress"]
        assert progress and progress[-1] == {"id": aid, "offset": size, "length": size}, progress
        offsets = [p["offset"] for p in progress]
        assert offsets == sorted(offsets), offsets
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                            "-of", "csv=p=0", f"http://127.0.0.1:{w.port}{ready['data']['hls']}"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and float(p.stdout.strip()) > 3.0, (p.stdout, p.stderr)
        state["node_asset"] = aid
    finally:
        ev.close()


def test_the_dashboard_serves_tus_js_client_from_npm():
    w = state["weir"]
    status, _, page = w.request("GET", "/")
    assert status == 200 and b"/web/tus.min.js" in page and b"upload-form" in page
    status, h, js = w.request("GET", "/web/tus.min.js")
    assert status == 200 and h["content-type"].startswith("text/javascript"), (status, h)
    with open(os.path.join(ROOT, "web", "node_modules", "tus-js-client", "dist", "tus.min.js"),
              "rb") as f:
        assert js == f.read()


def test_the_dashboard_uploads_and_plays_in_chromium():
    w = state["weir"]
    r = subprocess.run(["node", os.path.join(PT, "dashboard.mjs"), f"http://127.0.0.1:{w.port}/",
                        state["write"], state["clip"]],
                       capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["events"] == "live" and res["state"] == "ready", res
    assert res["bar"] == 100, res
    assert res["played_s"] > 1, res


def test_deleting_an_asset_is_an_event():
    w = state["weir"]
    aid = state["node_asset"]
    ev = Events("protocol", state["read"])
    try:
        ev.wait(lambda m: m["type"] == "ready", 15, "ready")
        status, _, body = w.request("DELETE", f"/api/v1/assets/{aid}",
                                    headers={"Authorization": f"Bearer {state['write']}"})
        assert status == 200, body
        ev.wait(lambda m: m["type"] == "asset.deleted" and m["data"] == {"id": aid}, 10,
                "asset.deleted")
    finally:
        ev.close()


def test_no_token_in_the_log():
    logs = state["weir"].logs()
    assert state["read"] not in logs and state["write"] not in logs
    assert state["read"][3:] not in logs


def test_sigterm_closes_clients_with_1001():
    ev = Events("header", state["read"])
    try:
        ev.wait(lambda m: m["type"] == "ready", 15, "ready")
        rc, took = state["weir"].stop()
        assert rc == 0, state["weir"].logs()[-2000:]
        m = ev.wait(lambda m: m["type"] == "_closed", 10, "close")
        assert m["code"] == 1001, m
        assert took < 1.5, took      # drained, not cut at shutdown.timeout (1s) plus slack
    finally:
        ev.close()


if __name__ == "__main__":
    setup()
    try:
        run_tests([test_no_credential_is_401_before_the_upgrade,
                   test_an_unknown_token_is_closed_with_4401,
                   test_every_way_of_sending_the_token_is_ready,
                   test_stream_started_and_ended_from_an_rtmp_push,
                   test_tus_js_client_resumes_and_the_asset_events_reach_ready,
                   test_deleting_an_asset_is_an_event,
                   test_the_dashboard_serves_tus_js_client_from_npm,
                   test_the_dashboard_uploads_and_plays_in_chromium,
                   test_no_token_in_the_log,
                   test_sigterm_closes_clients_with_1001])
    finally:
        teardown()
