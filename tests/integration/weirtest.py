"""Helpers shared by the integration tests: start weir on free ports, talk
HTTP to it, stop it.  Standard library only."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Weir:
    """A `weir serve` child on free HTTP, RTMP and SRT ports with its own
    data_dir, so tests can run side by side.  Later --set in extra win.
    data_dir: run on another instance's data_dir (a restart); that instance
    must not be closed before this one.  port: a given HTTP port (the same
    as a stopped instance's, say)."""

    def __init__(self, binary, *extra, data_dir=None, port=None):
        self.binary = binary
        self.port = port or free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="weir-it-")
        self.data_dir = data_dir or os.path.join(self.tmp.name, "var")
        self.out_path = os.path.join(self.tmp.name, "stdout.log")
        self.err_path = os.path.join(self.tmp.name, "stderr.log")
        args = [binary, "serve", "--set", f"http.port={self.port}",
                "--set", f"rtmp.port={free_port()}",
                "--set", f"srt.port={free_port(socket.SOCK_DGRAM)}",
                "--set", f"data_dir={self.data_dir}", *extra]
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err)

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"weir exited early ({self.proc.returncode}):\n{self.logs()}")
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"weir not ready after {timeout}s:\n{self.logs()}")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    def json(self, path):
        status, headers, body = self.request("GET", path)
        return status, headers, json.loads(body)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends sig; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"weir did not exit within {timeout}s:\n{self.logs()}")
        return rc, time.monotonic() - t0

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        """The log lines (weir logs to stderr)."""
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def logs(self):
        """Everything weir printed: stdout, then stderr."""
        return self.stdout() + self.stderr()

    def finish(self):
        """Stops weir with SIGTERM, checks it exited 0 (logs otherwise) and
        cleans up: the usual teardown."""
        try:
            rc, _ = self.stop()
            logs = self.logs()
        finally:
            self.close()
        assert rc == 0, logs

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        logs = self.logs()
        self.out.close()
        self.err.close()
        self.tmp.cleanup()
        assert_no_sanitizer_report(logs)


def cli(binary, data_dir, *args):
    """Runs a `weir` subcommand against data_dir; fails on a sanitizer report."""
    r = subprocess.run([binary, *args, "--set", f"data_dir={data_dir}"],
                       capture_output=True, text=True, timeout=30)
    assert_no_sanitizer_report(r.stderr)
    return r


def assert_no_sanitizer_report(text):
    """The test build runs under ASan+UBSan; any report fails the test."""
    for marker in ("Sanitizer:", "runtime error:"):
        assert marker not in text, f"sanitizer report:\n{text}"


def run_tests(tests):
    """Runs each callable, prints a TAP-ish line per test, exits non-zero on
    any failure."""
    import sys
    import traceback
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok - {t.__name__}")
        except Exception:
            failed += 1
            print(f"not ok - {t.__name__}")
            traceback.print_exc()
    sys.exit(1 if failed else 0)


def wait_for(fn, timeout=15.0, interval=0.1):
    """Calls fn until it returns something true, which it returns; fails
    after timeout seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {fn.__name__}")


def gst_plays(url, timeout=120):
    """GStreamer's playbin (hlsdemux / dashdemux for playlists and MPDs)
    plays url to the end, as fast as it decodes, with no error."""
    r = subprocess.run(["gst-launch-1.0", "playbin", f"uri={url}",
                        "video-sink=fakesink sync=false", "audio-sink=fakesink sync=false"],
                       capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Got EOS" in out and "ERROR" not in out, (url, out[-3000:])


def main(setup, tests, teardown):
    """setup(), the tests (run_tests), then teardown() whatever happened."""
    setup()
    try:
        run_tests(tests)
    finally:
        teardown()
