"""startup: from exec to the first HTTP 200, weir (/healthz) vs nginx (a
static file).  Both are polled the same way from this process, so the polling
cost is the same on both sides.  Prints the median of RUNS runs."""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, nginx_binary, nginx_conf

RUNS = 21


def get_200(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_to_200(argv, port, path):
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not get_200(port, path):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {proc.returncode}")
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"{argv[0]} not ready in 10 s")
            time.sleep(0.0005)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()


def main():
    weir = sys.argv[1]
    nginx = nginx_binary()
    tmp = tempfile.mkdtemp(prefix="weir-bench-")
    os.chmod(tmp, 0o755)   # nginx workers run as nobody when started as root
    with open(os.path.join(tmp, "index.html"), "w") as f:
        f.write("ok\n")
    wt, nt = [], []
    for _ in range(RUNS):
        port = free_port()
        wt.append(time_to_200([weir, "serve", "--set", f"http.port={port}",
                               "--set", f"data_dir={tmp}/var", "--set", "log.level=warn"],
                              port, "/healthz"))
        port = free_port()
        conf = nginx_conf(tmp, f"http {{ access_log off; server {{ listen 127.0.0.1:{port};"
                               f" root {tmp}; }} }}\n", 64)
        nt.append(time_to_200([nginx, "-c", conf, "-p", tmp], port, "/index.html"))
    w, n = statistics.median(wt), statistics.median(nt)
    print(f"startup: weir={w * 1000:.2f}ms peer={n * 1000:.2f}ms ratio={n / w:.2f}"
          f"  (median of {RUNS}; peer nginx, 1 worker)")
    shutil.rmtree(tmp, ignore_errors=True)


main()
