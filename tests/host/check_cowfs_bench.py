#!/usr/bin/env python3
"""A tiny run of build/cowfs-bench (tools/cowfs_bench.c) read line by line:
every workload prints its line once, its figures parse and are positive,
and the fsync line's device counters meet the issue's bounds (at most 2
cache flushes and 4 block writes per 4 KiB append + fsync: counted, not
timed).  Timings are never judged here; `make bench` reports them.

  check_cowfs_bench.py BUILD_DIR
"""
import re
import subprocess
import sys
import tempfile

SUITE = "cowfs_bench"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROWS = ["seq_write", "seq_read", "randread_4k", "randwrite_4k", "fsync_append", "create", "stat", "readdir", "unlink"]


def main():
    with tempfile.TemporaryDirectory(prefix="cowfs-bench-") as d:
        p = subprocess.run([f"{BUILD}/cowfs-bench", "-s", "8", "-f", "500", "-t", "1", "-d", d],
                           capture_output=True, text=True, timeout=300)
    lines = {m.group(1): m.group(2) for m in re.finditer(r"^bench cowfs (\S+) (.*)$", p.stdout, re.M)}
    ok = True

    def report(name, good, why=""):
        nonlocal ok
        ok &= good
        print(f"{'ok' if good else 'not ok'} - {SUITE}.{name}" + ("" if good else f": {why}"), flush=True)

    report("exit_status", p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()[-300:]}")
    for row in ROWS:
        kv = dict(re.findall(r"(\w+)=([\w.<=,]+)", lines.get(row, "")))
        if row == "fsync_append":
            good = (int(kv.get("ops", 0)) > 0 and 0 < float(kv.get("cache_flushes_per_op", 0)) <= 2.0
                    and 0 < float(kv.get("writes_per_op", 0)) <= 4.0 and kv.get("met") == "yes")
        elif row in ("create", "stat", "readdir", "unlink"):
            good = kv.get("files") == "500" and float(kv.get("per_s", 0)) > 0
        else:
            good = float(kv.get("ours", 0)) > 0 and float(kv.get("raw", 0)) > 0 and "ratio" in kv
        report(row, good, f"line: {lines.get(row)!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
