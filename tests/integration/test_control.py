"""The control plane end to end: `weir keys` / `weir tokens` on the command
line, the first-start key, the REST API over HTTP with bearer tokens, the
served OpenAPI document, and secrets never reaching the logs."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import weirtest  # noqa: E402
from weirtest import Weir, assert_no_sanitizer_report, run_tests  # noqa: E402

WEIR = sys.argv[1]
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
KEY = re.compile(r"^wk_[A-Za-z0-9_-]{40}$")
TOKEN = re.compile(r"^wt_[A-Za-z0-9_-]{40}$")


def cli(data_dir, *args):
    return weirtest.cli(WEIR, data_dir, *args)


def test_keys_cli():
    with tempfile.TemporaryDirectory() as d:
        r = cli(d, "keys", "create", "cam1", "--note", "roof camera")
        assert r.returncode == 0, r.stderr
        key = r.stdout.strip()
        assert KEY.match(key), repr(r.stdout)          # the key, alone on stdout
        assert key not in r.stderr and "shown once" in r.stderr, r.stderr
        r = cli(d, "keys", "create", "cam1")
        assert r.returncode != 0 and "already has a key" in r.stderr, r.stderr
        r = cli(d, "keys", "list")
        assert r.returncode == 0 and "cam1" in r.stdout and "roof camera" in r.stdout, r.stdout
        assert key[3:] not in r.stdout
        r = cli(d, "keys", "list", "--json")
        rows = json.loads(r.stdout)
        assert rows[0]["stream"] == "cam1" and rows[0]["revoked"] is None, rows
        r = cli(d, "keys", "revoke", "cam1")
        assert r.returncode == 0, r.stderr
        rows = json.loads(cli(d, "keys", "list", "--json").stdout)
        assert rows[0]["revoked"] is not None, rows
        r = cli(d, "keys", "revoke", "cam1")
        assert r.returncode != 0 and "no active key" in r.stderr
        r = cli(d, "keys", "create", "bad name!")
        assert r.returncode != 0 and "stream names" in r.stderr, r.stderr
        # A key may name the transcode profile its stream gets.
        r = cli(d, "keys", "create", "cam2", "--profile", "huge")
        assert r.returncode != 0 and "--profile must be" in r.stderr, r.stderr
        r = cli(d, "keys", "create", "cam2", "--profile", "low")
        assert r.returncode == 0 and KEY.match(r.stdout.strip()), r.stderr
        rows = json.loads(cli(d, "keys", "list", "--json").stdout)
        assert [row["profile"] for row in rows if row["stream"] == "cam2"] == ["low"], rows
        assert "[profile low]" in cli(d, "keys", "list").stdout


def test_tokens_cli():
    with tempfile.TemporaryDirectory() as d:
        r = cli(d, "tokens", "create", "--scope", "read", "--name", "grafana")
        assert r.returncode == 0 and TOKEN.match(r.stdout.strip()), (r.stdout, r.stderr)
        r = cli(d, "tokens", "create", "--scope", "root")
        assert r.returncode == 2, r
        rows = json.loads(cli(d, "tokens", "list", "--json").stdout)
        assert rows[0]["scope"] == "read" and rows[0]["name"] == "grafana", rows
        r = cli(d, "tokens", "revoke", rows[0]["id"])
        assert r.returncode == 0, r.stderr


def test_first_start_prints_one_key_with_obs_settings():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        logs = w.logs()
        m = re.search(r"Stream Key:\s+(wk_\S+)", logs)
        assert m and KEY.match(m.group(1)), logs
        assert re.search(r"Server:\s+rtmp://[^\n]+:\d+/live\n", logs), logs
        rows = json.loads(cli(w.data_dir, "keys", "list", "--json").stdout)
        assert [r["stream"] for r in rows] == ["live"], rows
        # The key appears in that one banner only, never in a log line.
        for line in logs.splitlines():
            if m.group(1) in line:
                assert "Stream Key:" in line, line
        assert w.stop()[0] == 0
    finally:
        w.close()


def test_no_banner_when_keys_exist():
    with tempfile.TemporaryDirectory() as d:
        assert cli(d, "keys", "create", "cam9").returncode == 0
        w = Weir(WEIR, "--set", f"data_dir={d}")
        try:
            w.wait_ready()
            assert "Stream Key:" not in w.logs(), w.logs()
        finally:
            w.close()


def test_no_banner_with_open_auth():
    w = Weir(WEIR, "--set", "ingest.auth=open")
    try:
        w.wait_ready()
        assert "Stream Key:" not in w.logs()
        assert "ingest.auth=open" in w.logs()       # the warning
    finally:
        w.close()


def test_api_over_http():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        read = cli(w.data_dir, "tokens", "create", "--scope", "read").stdout.strip()
        write = cli(w.data_dir, "tokens", "create", "--scope", "write").stdout.strip()

        status, headers, body = w.request("GET", "/api/v1/streams")
        assert status == 401, status
        assert headers["content-type"] == "application/problem+json", headers
        assert headers["www-authenticate"].startswith("Bearer"), headers
        p = json.loads(body)
        assert p["status"] == 401 and "weir tokens create" in p["detail"], p

        auth = {"Authorization": f"Bearer {read}"}
        status, _, body = w.request("GET", "/api/v1/streams", headers=auth)
        assert status == 200 and json.loads(body) == {"streams": []}, (status, body)
        status, _, body = w.request("POST", "/api/v1/keys", body=b'{"name":"cam2"}',
                                    headers={**auth, "Content-Type": "application/json"})
        assert status == 403 and json.loads(body)["status"] == 403, (status, body)

        auth = {"Authorization": f"Bearer {write}", "Content-Type": "application/json"}
        status, _, body = w.request("POST", "/api/v1/keys", body=b'{"name":"cam2"}', headers=auth)
        assert status == 201, (status, body)
        key = json.loads(body)["key"]
        assert KEY.match(key), key
        status, _, body = w.request("GET", "/api/v1/nothing", headers=auth)
        assert status == 404 and json.loads(body)["title"] == "Not Found", body

        status, headers, body = w.request("GET", "/api/v1/openapi.yaml")
        with open(os.path.join(ROOT, "docs", "openapi.yaml"), "rb") as f:
            assert status == 200 and body == f.read()
        assert w.stop()[0] == 0
        assert key[3:] not in w.logs() and read[3:] not in w.logs() and write[3:] not in w.logs()
    finally:
        w.close()


def test_metrics_pass_promtool():
    w = Weir(WEIR)
    try:
        w.wait_ready()
        for _ in range(3):
            w.request("GET", "/healthz")
        w.request("GET", "/nope")
        w.request("GET", "/api/v1/streams")          # 401 through the work pool
        status, headers, body = w.request("GET", "/metrics")
        assert status == 200, status
        assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
        text = body.decode()
        for series in ('weir_http_requests_total{route="/healthz",code="200"} ',
                       'weir_http_requests_total{route="unmatched",code="404"} 1',
                       'weir_http_requests_total{route="/api/v1/",code="401"} 1',
                       'weir_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} ',
                       'weir_live_streams 0', 'weir_bus_skips_total 0',
                       'weir_db_pool_connections{state="idle"} ',
                       'weir_db_pool_events_total{event="acquired"} ',
                       'weir_db_pool_acquire_seconds_bucket{le="1e-05"} ',
                       'weir_db_pool_acquire_seconds_count ',
                       'weir_sent_bytes_total{protocol="http"} ',
                       'process_start_time_seconds '):
            assert series in text, f"{series!r} missing:\n{text}"
        r = subprocess.run(["promtool", "check", "metrics"], input=body,
                           capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", (r, text)
    finally:
        w.close()


run_tests([
    test_keys_cli,
    test_tokens_cli,
    test_first_start_prints_one_key_with_obs_settings,
    test_no_banner_when_keys_exist,
    test_no_banner_with_open_auth,
    test_api_over_http,
    test_metrics_pass_promtool,
])
