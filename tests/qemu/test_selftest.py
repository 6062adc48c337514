"""In-kernel self-tests at boot (`args = selftest`) on 1 and 4 CPUs.

Each "selftest: SUITE.NAME ok|FAIL|skipped ..." line becomes its own
protocol line "kernel.smpN.SUITE.NAME", so a failing kernel test is named in
the summary.  The machine has every device the self-tests look for (q35, an
NVMe namespace, a SATA disk, the expect_nvme argument), so a skipped test
means a device stopped attaching: it fails here, never counts as a pass.
"""
import re

import harness
from harness import qemu_test, check

LINE_RE = re.compile(r"^selftest: (\S+\.\S+) (ok|FAIL|skipped)\b:?[ \t]*(.*)$", re.M)
SUMMARY_RE = r"^selftest: (\d+) passed, (\d+) failed, (\d+) skipped"
# The NVMe disk is a fresh image: name it as scratch, or the tests that
# write skip it (they never write a disk not named so).
ARGS = "selftest expect_nvme scratch=nvme0n1 panic=poweroff"
# Tests that skip by design in this run, and where they do run.
MAY_SKIP = {"nvme.dead_after_failed_reset",     # kills the controller: test_blk_nvme_dead.py
            "ahci.dma32_bounce",               # needs ahci_dma32 and RAM above 4 GiB: test_blk_dma32.py
            "nvme.mode_switch_race",           # needs two namespaces on one controller: test_blk_nvme_dead.py
            "nvme.shadow_doorbells"}           # needs nvme_shadow_db: test_nvme_doorbells.py
# Skipped by design on one CPU only (they need a second one); the 4-CPU boot runs them.
MAY_SKIP_ONE_CPU = {"sync.wake_sends_its_ipi_after_the_lock"}


def selftest_verdicts(ctx, prefix, text, may_skip=()):
    """One protocol line per self-test line in text; a skip fails unless the
    test is in may_skip.  Returns {verdict: count}."""
    counts = {"ok": 0, "FAIL": 0, "skipped": 0}
    for mm in LINE_RE.finditer(text):
        name, verdict, why = mm.groups()
        counts[verdict] += 1
        if verdict == "skipped" and name in may_skip:
            ctx.lines.append(f"skip - {prefix}.{name}: {why}")     # by design: counted apart, never passed
        elif verdict == "skipped":
            ctx.report(f"{prefix}.{name}", False, f"skipped although its device is attached: {why}")
        else:
            ctx.report(f"{prefix}.{name}", verdict == "ok", why or "FAIL")
    return counts


def selftest_boot(ctx, smp):
    may_skip = MAY_SKIP | (MAY_SKIP_ONE_CPU if smp == 1 else set())
    m = ctx.machine()
    m.start(smp=smp, args=ARGS, disks=["nvme", "sata"])
    finished = False
    try:
        with ctx.subtest("cpus_online"):
            c = m.expect(r"^smp: (\d+) of (\d+) CPUs online", 120)
            check(int(c.group(1)) == smp, f"{c.group(0)!r} with -smp {smp}")
        with ctx.subtest("summary"):
            s = m.expect(SUMMARY_RE, 900)
            finished = True
            passed, failed, skipped = (int(g) for g in s.groups())
            check(passed > 0, "no self-test ran")
            check(failed == 0, f"{failed} self-tests failed")
            by_design = sum(1 for mm in LINE_RE.finditer(m.output(0, len(m.buf)))
                            if mm.group(2) == "skipped" and mm.group(1) in may_skip)
            check(skipped == by_design, f"{skipped - by_design} self-tests skipped with every device attached")
        with ctx.subtest("exit_status"):
            status = m.wait_exit(60)
            check(status == 1, f"qemu exit status {status}: expected 1 (power_off(0) through "
                  "isa-debug-exit), 3 means power_off(1), 7 a panic")
    finally:
        # Report every test line seen, even when the run died part-way.
        selftest_verdicts(ctx, f"kernel.smp{smp}", m.output(0, len(m.buf)), may_skip)
        if not finished:
            ctx.note(f"smp={smp}: self-test run did not complete; see {m.log_path}")


@qemu_test(weight=6)
def selftest_smp1(ctx):
    selftest_boot(ctx, 1)


@qemu_test(exclusive=True, weight=8)
def selftest_smp4(ctx):
    selftest_boot(ctx, 4)


@qemu_test(weight=4)
def selftest_skips_fail(ctx):
    """The run above with its NVMe missing: the NVMe tests must skip, be
    counted as skipped (not passed), and come out as failures there."""
    m = ctx.machine()
    m.start(smp=1, args=ARGS, disks=["sata"])
    s = m.expect(SUMMARY_RE, 900)
    passed, _, skipped = (int(g) for g in s.groups())
    with ctx.subtest("counted_as_skipped"):
        check(skipped >= 3, f"{skipped} skipped without an NVMe disk:\n{s.group(0)}")
    with ctx.subtest("reported_as_failures"):
        shadow = harness.Context("shadow")
        counts = selftest_verdicts(shadow, "k", m.output(0, len(m.buf)))
        check(counts["skipped"] == skipped and counts["ok"] == passed,
              f"lines {counts} disagree with {s.group(0)!r}")
        bad = [ln for ln in shadow.lines if ln.startswith("not ok - k.nvme.")]
        check(len(bad) >= 3 and all("skipped although" in ln for ln in bad),
              "NVMe skips not reported as failures:\n" + "\n".join(shadow.lines))
