#!/usr/bin/env python3
"""Run test programs and summarise their results.

Protocol (tests/host/test.h): each program prints one line per case,
"ok - SUITE.NAME" or "not ok - SUITE.NAME: reason", or "skip - SUITE.NAME:
reason" for a case that cannot run here (counted as skipped, never passed).

  summary.py exec --log LOG --name NAME [--timeout S] -- CMD ARGS...
      Run CMD, append all its output to LOG between "# begin NAME" and
      "# end NAME exit=CODE" markers, and stream its protocol lines ("ok",
      "not ok", "# ...") to stdout.  Other output (diagnostics: the errors
      that tests provoke on purpose, compiler output) stays in the log while
      the program passes; if it fails, its last DIAG_TAIL diagnostic lines
      follow on stdout.  Exits with CMD's status (124 on timeout).
  summary.py report LOG...
      Count the results of every program in the logs and print exactly one
      final line "N passed, N failed".  A program that exited non-zero (or
      never reached its end marker) without printing any "not ok" line is
      one failure under its own name: a crash must never look like a pass.
      Skipped cases are added as ", N skipped" when there are any.
      Exits 1 if anything failed or if nothing ran at all.
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import threading

RESULT_RE = re.compile(r"^(not ok|ok|skip) - (\S+?)(?::\s*(.*))?$")
DIAG_TAIL = 40
BEGIN_RE = re.compile(r"^# begin (\S+)$")
END_RE = re.compile(r"^# end (\S+) exit=(-?\d+)$")


def summary_exec(args):
    cmd = args.cmd
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("summary.py exec: no command given", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
    with open(args.log, "a", encoding="utf-8", errors="replace") as log:
        log.write(f"# begin {args.name}\n")
        log.flush()
        try:
            # A new session so a timeout kills the whole process group
            # (make and compilers, or qemu children), not just the parent.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as e:
            log.write(f"summary.py: cannot run {cmd[0]}: {e}\n")
            log.write(f"# end {args.name} exit=127\n")
            print(f"summary.py: cannot run {cmd[0]}: {e}", flush=True)
            return 127
        timed_out = threading.Event()

        def on_timeout():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = None
        if args.timeout:
            timer = threading.Timer(args.timeout, on_timeout)
            timer.daemon = True
            timer.start()
        diag = collections.deque(maxlen=DIAG_TAIL)
        ndiag = 0
        failed = False
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                line = line if line.endswith("\n") else line + "\n"
                log.write(line)
                if RESULT_RE.match(line.rstrip("\r\n")) or line.startswith("#"):
                    failed |= line.startswith("not ok")
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    diag.append(line)
                    ndiag += 1
            code = proc.wait()
        finally:
            if timer:
                timer.cancel()
            if proc.poll() is None:
                on_timeout()
                proc.wait()
        if timed_out.is_set():
            msg = f"summary.py: {args.name} killed after {args.timeout} s timeout"
            print(msg, flush=True)
            log.write(msg + "\n")
            code = 124
        log.write(f"# end {args.name} exit={code}\n")
    if ndiag and (failed or code != 0):
        print(f"# {args.name}: last {len(diag)} of {ndiag} diagnostic lines (all in {args.log}):")
        for line in diag:
            sys.stdout.write("#   " + line)
    elif ndiag:
        print(f"# {args.name}: passed; its {ndiag} diagnostic line{'s' if ndiag > 1 else ''} "
              f"(errors the tests provoke) {'are' if ndiag > 1 else 'is'} in {args.log}")
    sys.stdout.flush()
    return code if code >= 0 else 128 - code


class Program:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.skipped = []    # skip lines as printed
        self.failed = []     # failure lines as printed
        self.exit = None     # None = no end marker seen


def summary_parse(paths):
    programs = []
    missing = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            missing.append(path)
            continue
        cur = None
        for line in lines:
            line = line.rstrip("\r")
            m = BEGIN_RE.match(line)
            if m:
                cur = Program(m.group(1))
                programs.append(cur)
                continue
            m = END_RE.match(line)
            if m and cur is not None and m.group(1) == cur.name:
                cur.exit = int(m.group(2))
                cur = None
                continue
            m = RESULT_RE.match(line)
            if m:
                if cur is None:
                    # Results outside markers (a log written by hand) still count.
                    cur = Program(os.path.basename(path))
                    cur.exit = 0
                    programs.append(cur)
                if m.group(1) == "ok":
                    cur.passed += 1
                elif m.group(1) == "skip":
                    cur.skipped.append(line)
                else:
                    cur.failed.append(line)
    return programs, missing


def summary_report(args):
    programs, missing = summary_parse(args.logs)
    passed = failed = skipped = 0
    for p in programs:
        passed += p.passed
        skipped += len(p.skipped)
        for line in p.skipped:
            print(line)
        failed += len(p.failed)
        for line in p.failed:
            print(line)
        if p.exit is None and not p.failed:
            print(f"not ok - {p.name}: did not finish (no end marker in the log)")
            failed += 1
        elif p.exit not in (None, 0) and not p.failed:
            how = f"killed by signal {-p.exit}" if p.exit < 0 else f"exit status {p.exit}"
            print(f"not ok - {p.name}: {how} without a 'not ok' line (crashed?)")
            failed += 1
    for path in missing:
        print(f"summary: log {path} is missing")
    if passed + failed == 0:
        print("summary: nothing ran")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 1 if failed or passed + failed == 0 else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    ex = sub.add_parser("exec", help="run one test program into a log")
    ex.add_argument("--log", required=True)
    ex.add_argument("--name", required=True)
    ex.add_argument("--timeout", type=float, default=0)
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    rp = sub.add_parser("report", help="count results in logs")
    rp.add_argument("logs", nargs="+")
    args = ap.parse_args()
    if args.cmd_name == "exec":
        return summary_exec(args)
    return summary_report(args)


if __name__ == "__main__":
    sys.exit(main())
