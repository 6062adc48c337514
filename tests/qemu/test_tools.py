"""The harness's own tools, checked on the host: the summary must never
turn a crash or an empty run into a pass, and mkimage must refuse a
directory that is not an ESP."""
import os
import subprocess
import sys
import tempfile

from harness import REPO, qemu_test, check

SUMMARY = os.path.join(REPO, "tests", "summary.py")


def summary(*args):
    p = subprocess.run([sys.executable, SUMMARY, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


@qemu_test(weight=0)
def tools_summary(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "t.log")
        with ctx.subtest("counts"):
            summary("exec", "--log", log, "--name", "good", "--",
                    "printf", "ok - a.one\\nok - a.two\\nnot ok - a.three: broken\\n")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "2 passed, 1 failed" and rc == 1, f"rc {rc}:\n{out}")
            check("not ok - a.three: broken" in out, f"failure not repeated:\n{out}")
        with ctx.subtest("crash_counts_as_failure"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "crashy", "--",
                    "sh", "-c", "echo 'ok - b.one'; kill -SEGV $$")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "1 passed, 1 failed" and rc == 1, f"rc {rc}:\n{out}")
            check("not ok - crashy:" in out, f"crash not named:\n{out}")
        with ctx.subtest("timeout_kills"):
            os.remove(log)
            rc, _ = summary("exec", "--log", log, "--name", "slow", "--timeout", "1", "--",
                            "sleep", "30")
            check(rc == 124, f"exec returned {rc}, expected 124")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "0 passed, 1 failed", out)
        with ctx.subtest("nothing_ran_fails"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "silent", "--", "true")
            rc, out = summary("report", log)
            check(rc == 1 and out.splitlines()[-1] == "0 passed, 0 failed", f"rc {rc}:\n{out}")
            rc, out = summary("report", os.path.join(tmp, "missing.log"))
            check(rc == 1, f"a missing log passed: {out}")
        with ctx.subtest("all_pass"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "fine", "--", "echo", "ok - c.one")
            rc, out = summary("report", log)
            check(rc == 0 and out.splitlines()[-1] == "1 passed, 0 failed", f"rc {rc}:\n{out}")


@qemu_test(weight=0)
def tools_mkimage_rejects_non_esp(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "x.img")
        p = subprocess.run(["bash", os.path.join(REPO, "tools", "mkimage.sh"), tmp, img],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode != 0, "mkimage accepted a directory without EFI/BOOT/BOOTX64.EFI")
        check(not os.path.exists(img) and not os.path.exists(img + ".tmp"),
              "mkimage left an image behind after failing")
