"""dbpool: ns per acquire/release cycle of weir's connection pool against a
naive pool (one mutex, one condition variable, a free list), both over a
stub driver, in the same process.  Builds bench/dbpool_bench.c with the
pool's sources (optimised, as the debugoptimized build), runs it, and passes
its lines through:

    dbpool_<scenario>: weir=Xns peer=Yns ratio=Z

ratio = peer/weir: above 1, weir is faster.  Each figure is the median of 7
runs (see the C file).  argv[1] (the weir binary bench/run passes) is not
needed: the pool is benchmarked on its own.  Optional argv[2]: cycles per
run (default 1000000)."""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [
    "bench/dbpool_bench.c",
    "control/dbpool/pool.c",
    "control/dbpool/db.c",
    "control/dbpool/db_sqlite.c",
    "control/dbpool/settings.c",
    "core/log.c",
    "core/clock.c",
]


def main():
    cycles = sys.argv[2] if len(sys.argv) > 2 else "1000000"
    cc = os.environ.get("CC", "cc")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sqlite3", "libavutil"],
                           check=True, capture_output=True, text=True).stdout
    tmp = tempfile.mkdtemp(prefix="weir-bench-dbpool-")
    try:
        exe = os.path.join(tmp, "dbpool_bench")
        subprocess.run([cc, "-std=c11", "-O2", "-g", "-D_GNU_SOURCE", "-I", ROOT,
                        *[os.path.join(ROOT, s) for s in SOURCES],
                        *shlex.split(flags), "-lpthread", "-o", exe], check=True)
        subprocess.run([exe, cycles], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
