"""In-kernel self-tests at boot (`args = selftest`) on 1 and 4 CPUs.

Each "selftest: SUITE.NAME ok|FAIL ..." line becomes its own protocol line
"kernel.smpN.SUITE.NAME", so a failing kernel test is named in the summary.
"""
import re

from harness import qemu_test, check

LINE_RE = re.compile(r"^selftest: (\S+\.\S+) (ok|FAIL)\b:?\s*(.*)$", re.M)
# The NVMe disk is a fresh image: name it as scratch, or the tests that
# write skip it (they never write a disk not named so).
ARGS = "selftest expect_nvme scratch=nvme0n1 panic=poweroff"


def selftest_boot(ctx, smp):
    m = ctx.machine()
    m.start(smp=smp, args=ARGS, disks=["nvme", "sata"])
    finished = False
    try:
        with ctx.subtest("cpus_online"):
            c = m.expect(r"^smp: (\d+) of (\d+) CPUs online", 120)
            check(int(c.group(1)) == smp, f"{c.group(0)!r} with -smp {smp}")
        with ctx.subtest("summary"):
            s = m.expect(r"^selftest: (\d+) passed, (\d+) failed", 900)
            finished = True
            passed, failed = int(s.group(1)), int(s.group(2))
            check(passed > 0, "no self-test ran")
            check(failed == 0, f"{failed} self-tests failed")
        with ctx.subtest("exit_status"):
            status = m.wait_exit(60)
            check(status == 1, f"qemu exit status {status}: expected 1 (power_off(0) through "
                  "isa-debug-exit), 3 means power_off(1), 7 a panic")
    finally:
        # Report every test line seen, even when the run died part-way.
        for mm in LINE_RE.finditer(m.output(0, len(m.buf))):
            name, verdict, why = mm.groups()
            ctx.report(f"kernel.smp{smp}.{name}", verdict == "ok", why or "FAIL")
        if not finished:
            ctx.note(f"smp={smp}: self-test run did not complete; see {m.log_path}")


@qemu_test(weight=6)
def selftest_smp1(ctx):
    selftest_boot(ctx, 1)


@qemu_test(exclusive=True, weight=8)
def selftest_smp4(ctx):
    selftest_boot(ctx, 4)
