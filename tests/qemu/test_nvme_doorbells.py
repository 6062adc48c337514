"""NVMe shadow doorbells (Doorbell Buffer Config, boot argument
nvme_shadow_db): without them (the default, and the same path as a
controller without OACS bit 8) every NVMe self-test passes on MMIO
doorbells; with them the shell's `nvme shadow CTRL off|on` switch keeps
I/O correct both ways, with one MMIO doorbell per command when off.  The self-tests themselves (selftest nvme.*) check the
doorbell counts and the data; see drivers/nvme/nvme_test_db.c."""
import re

from harness import qemu_test, check, boot_to_prompt, shell
from blkutil import blk_run

COUNTS_RE = re.compile(r"nvme0: shadow doorbells ([^;]+); (\d+) commands, (\d+) SQ MMIO doorbells")


def counts(m):
    out = shell(m, "nvme")
    g = COUNTS_RE.search(out)
    check(g, out)
    return g.group(1), int(g.group(2)), int(g.group(3))


@qemu_test(weight=2)
def nvme_shadow_fallback(ctx):
    m = ctx.machine()
    boot_to_prompt(m, smp=2, disks=["nvme"], args="scratch=nvme0n1")
    with ctx.subtest("off_by_default"):
        out = shell(m, "lsblk -v")
        check("shadow doorbells: off (supported: boot argument nvme_shadow_db)" in out, out)
    with ctx.subtest("selftests"):
        before = counts(m)
        out = blk_run(m, "selftest nvme", 600)
        check(re.search(r"selftest: \d+ passed, 0 failed", out), out[-3000:])
        for t in ("batch_one_doorbell", "batch_split_started", "batch_parked_started", "batch_across_resets"):
            check(re.search(rf"selftest: nvme.{t} ok", out), f"{t}:\n{out[-3000:]}")
        check(re.search(r"selftest: nvme.shadow_doorbells skipped: shadow doorbells are not in use", out),
              out[-3000:])
        after = counts(m)
        check(after[0] == "off", f"state {after[0]!r}")
        # No shadow buffer: every doorbell is an MMIO write, never fewer
        # than one per batch; the batch tests make them fewer than commands.
        check(after[2] - before[2] > 0 and after[2] - before[2] <= after[1] - before[1], f"{before} -> {after}")
    with ctx.subtest("shell_refuses_on"):
        out = shell(m, "nvme shadow nvme0 on")
        check(re.search(r"nvme: nvme0: shadow doorbells are not set up \(boot with nvme_shadow_db", out), out)


@qemu_test(weight=2)
def nvme_shadow_switch(ctx):
    m = ctx.machine()
    boot_to_prompt(m, smp=2, disks=["nvme"], args="scratch=nvme0n1 nvme_shadow_db")
    with ctx.subtest("on_at_boot"):
        check("nvme0: shadow doorbells on (nvme_shadow_db)" in m.output(0, len(m.buf)), m.output()[-3000:])
        check(counts(m)[0] == "on", shell(m, "nvme"))
    with ctx.subtest("off_mmio_per_command"):
        out = shell(m, "nvme shadow nvme0 off")
        check("shadow doorbells off (MMIO on every doorbell)" in out, out)
        before = counts(m)
        out = blk_run(m, "selftest nvme.rw_interrupts", 300)
        check(re.search(r"selftest: nvme.rw_interrupts ok", out), out[-3000:])
        after = counts(m)
        cmds, mmio = after[1] - before[1], after[2] - before[2]
        check(cmds > 0 and mmio == cmds, f"{cmds} commands, {mmio} SQ MMIO doorbells with the shadow off")
    with ctx.subtest("on_again"):
        shell(m, "nvme shadow nvme0 on")
        out = blk_run(m, "selftest nvme.shadow_doorbells", 300)
        check(re.search(r"selftest: nvme.shadow_doorbells ok", out), out[-3000:])
        check(counts(m)[0] == "on", shell(m, "nvme"))
    with ctx.subtest("bad_args"):
        out = shell(m, "nvme shadow nvme0 maybe")
        check("'maybe' is not on or off" in out, out)
        out = shell(m, "nvme shadow nvme7 off")
        check("no controller 'nvme7'" in out, out)
