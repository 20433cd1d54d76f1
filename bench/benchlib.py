"""Helpers the benchmarks share: free ports, CPU time from /proc, and the
nginx peer's config."""
import os
import shutil
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU seconds of the processes pids (gone ones count 0)."""
    total = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])        # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(tmp, body, worker_connections, modules=()):
    """Writes tmp/nginx.conf: one worker, in the foreground, logs and pid in
    tmp, then `body` (an http { } or rtmp { } block).  Returns its path."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        for m in modules:
            f.write(f"load_module {m};\n")
        f.write(f"daemon off; worker_processes 1; pid {tmp}/nginx.pid;\n"
                f"error_log {tmp}/error.log;\n"
                f"events {{ worker_connections {worker_connections}; }}\n")
        f.write(body)
    return conf
