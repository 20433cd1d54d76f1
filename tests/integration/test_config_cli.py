"""The command line: config check/dump, --set, bad configs naming file:line."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import assert_no_sanitizer_report, run_tests  # noqa: E402

WEIR = sys.argv[1]
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def weir(*args):
    r = subprocess.run([WEIR, *args], capture_output=True, text=True, timeout=30)
    assert_no_sanitizer_report(r.stderr)
    return r


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    f.write(text)
    f.close()
    return f.name


def test_shipped_config_is_valid():
    r = weir("config", "check", os.path.join(ROOT, "config", "weir.yml"))
    assert r.returncode == 0 and r.stdout.strip().endswith(": ok"), (r.stdout, r.stderr)


def test_shipped_config_is_the_defaults():
    # config/weir.yml is `weir config dump` of the built-in defaults under a
    # comment header; regenerate it with:
    #   (head -n 5 config/weir.yml; build/app/weir config dump) > new && mv new config/weir.yml
    with open(os.path.join(ROOT, "config", "weir.yml")) as f:
        shipped = f.read()
    body = shipped.split("\n\n", 1)[1]
    r = weir("config", "dump")
    assert r.returncode == 0, r.stderr
    assert body == r.stdout, "config/weir.yml differs from `weir config dump`; regenerate it"


def test_bad_config_names_file_line_key():
    path = write("http:\n  port: 70000\nlog:\n  levle: info\n")
    try:
        r = weir("config", "check", path)
        assert r.returncode != 0
        assert f"{path}:2: http.port: must be between 1 and 65535" in r.stderr, r.stderr
        assert f"{path}:4: log.levle: unknown key (did you mean log.level?)" in r.stderr, r.stderr
        # serve refuses it too, and says why.
        r = weir("serve", "-c", path)
        assert r.returncode != 0 and f"{path}:2: http.port" in r.stderr, r.stderr
    finally:
        os.unlink(path)


def test_bad_ladder_names_the_token():
    path = write("transcode:\n  enabled: true\n"
                 "  ladder: \"source; 720p:1280x720@2800k/30; 480p:854x480@fast\"\n")
    try:
        r = weir("config", "check", path)
        assert r.returncode != 0
        assert (f"{path}:3: transcode.ladder: item 3 '480p:854x480@fast': bad bitrate 'fast'"
                in r.stderr), r.stderr
    finally:
        os.unlink(path)


def test_dump_reflects_file_and_set():
    path = write("http:\n  port: 18080\n")
    try:
        r = weir("config", "dump", "-c", path, "--set", "packager.segment_duration=4s")
        assert r.returncode == 0, r.stderr
        assert "  port: 18080" in r.stdout, r.stdout
        assert "  segment_duration: 4s" in r.stdout, r.stdout
        # --set wins over the file.
        r = weir("config", "dump", "-c", path, "--set", "http.port=9999")
        assert "  port: 9999" in r.stdout, r.stdout
    finally:
        os.unlink(path)


def test_dump_round_trips():
    r = weir("config", "dump", "--set", "ingest.auth=open", "--set", "http.max_body=3MiB")
    path = write(r.stdout)
    try:
        r2 = weir("config", "dump", "-c", path)
        assert r2.returncode == 0, r2.stderr
        assert r2.stdout == r.stdout, (r.stdout, r2.stdout)
    finally:
        os.unlink(path)


def test_bad_set_is_an_error():
    r = weir("config", "dump", "--set", "http.port=eighty")
    assert r.returncode != 0 and "--set: http.port: expected an integer" in r.stderr, r.stderr
    r = weir("config", "dump", "--set", "nonsense")
    assert r.returncode != 0 and "expected section.key=value" in r.stderr, r.stderr


def test_help_and_version():
    r = weir("help")
    assert r.returncode == 0 and "weir serve" not in r.stderr and "config check" in r.stdout
    r = weir("version")
    assert r.returncode == 0 and r.stdout.startswith("weir "), r.stdout
    r = weir("frobnicate")
    assert r.returncode != 0 and "unknown command" in r.stderr
    r = weir("config", "dump", "--bogus")
    assert r.returncode != 0 and "unknown option --bogus" in r.stderr, r.stderr
    # "--" ends the options, for arguments that begin with '-'.
    r = weir("config", "check", "--", "-no-such-file.yml")
    assert r.returncode != 0 and "-no-such-file.yml: cannot open" in r.stderr, r.stderr


run_tests([
    test_shipped_config_is_valid,
    test_shipped_config_is_the_defaults,
    test_bad_config_names_file_line_key,
    test_bad_ladder_names_the_token,
    test_dump_reflects_file_and_set,
    test_dump_round_trips,
    test_bad_set_is_an_error,
    test_help_and_version,
])
