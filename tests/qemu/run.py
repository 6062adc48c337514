#!/usr/bin/env python3
"""Run the qemu integration tests and print the test protocol.

  run.py [-j N] [-k SUBSTRING] [--list]

Tests are the @qemu_test functions in tests/qemu/test_*.py.  Up to N run at
once (default 2: this project's machines have 2 cores and TCG is CPU
bound); tests marked exclusive run first, alone.  Each test's lines are
printed together when it finishes, so parallel runs never interleave.
Serial logs of every machine: build/test-logs/qemu.<test>*.log.
Exits 1 if any test failed or none ran.
"""
import argparse
import glob
import importlib
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def run_load():
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    return list(harness.TESTS)


PRINT_LOCK = threading.Lock()


def run_one(fn):
    ctx = harness.Context(fn.__name__)
    t0 = time.monotonic()
    try:
        fn(ctx)
    except Exception as e:  # noqa: BLE001 - a test error is a failure line
        detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
        ctx.report(f"qemu.{ctx.name}", False, f"{type(e).__name__}: {e}"
                   if not isinstance(e, AssertionError) else str(e), detail)
    else:
        if ctx.subtests == 0:
            ctx.report(f"qemu.{ctx.name}", True)
    finally:
        # Whatever happened, no qemu outlives its test.
        for m in ctx.machines:
            m.kill()
    ctx.note(f"{harness.elapsed(t0)}")
    with PRINT_LOCK:
        for line in ctx.lines:
            print(line)
        sys.stdout.flush()
        if ctx.failures and os.environ.get("CI"):
            # CI keeps only stdout: show the serial log tails there too.
            for m in ctx.machines:
                try:
                    with open(m.log_path, encoding="utf-8", errors="replace") as f:
                        tail = f.read()[-3000:]
                except OSError:
                    continue
                print(f"# ---- {m.log_path} (tail) ----")
                for ln in tail.splitlines():
                    print("# " + ln)
            sys.stdout.flush()
    return ctx.failures


def run_main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("QEMU_JOBS", "2")))
    ap.add_argument("-k", "--select", action="append", default=[],
                    help="run only tests whose name contains this (repeatable)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()

    tests = run_load()
    if a.select:
        tests = [t for t in tests if any(s in t.__name__ for s in a.select)]
    if a.list:
        for t in tests:
            print(t.__name__ + (" (exclusive)" if t.qemu_exclusive else ""))
        return 0
    if not tests:
        print("not ok - qemu: no tests selected")
        return 1
    for path in (harness.ESP, harness.IMAGE):
        if not os.path.exists(path):
            print(f"# warning: {path} is missing (make image builds it)")

    t0 = time.monotonic()
    failures = 0
    exclusive = sorted((t for t in tests if t.qemu_exclusive), key=lambda t: -t.qemu_weight)
    shared = sorted((t for t in tests if not t.qemu_exclusive), key=lambda t: -t.qemu_weight)
    for t in exclusive:
        failures += run_one(t)
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        failures += sum(pool.map(run_one, shared))
    print(f"# qemu tests: {len(tests)} run in {harness.elapsed(t0)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_main())
