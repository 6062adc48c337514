"""An NVMe controller whose reset fails while I/O runs (selftest
nvme.dead_after_failed_reset, with nvme_kill_test on a scratch disk): every
request fails with the reason and none waits forever, bus mastering is off,
the shell then gets the reason in words, and power-off still completes
(the dead controller gets no shutdown notification, and says so)."""
import re

from harness import qemu_test, check, boot_to_prompt, shell
from blkutil import blk_run


@qemu_test(weight=2)
def blk_nvme_dead(ctx):
    m = ctx.machine()
    boot_to_prompt(m, smp=2, disks=["nvme", "sata"], args="scratch=nvme0n1 nvme_kill_test")
    with ctx.subtest("selftest"):
        out = blk_run(m, "selftest nvme.dead_after_failed_reset", 300)
        check(re.search(r"selftest: nvme.dead_after_failed_reset ok", out), out[-3000:])
        check(re.search(r"nvme0: bus mastering off, \d+ in-flight commands failed", out), out[-3000:])
    with ctx.subtest("shell_says_why"):
        out = shell(m, "blk read nvme0n1 0 1")
        check(re.search(r"did not come back after reset", out), out)
    with ctx.subtest("other_disk_works"):
        out = shell(m, "blk read sata0 0 8")
        check(re.search(r"read sata0 0\+8: ok", out), out)
    with ctx.subtest("poweroff"):
        m.sendline("poweroff")
        m.expect(r"^power: off", 120)
        out = m.output(0, len(m.buf))
        check(re.search(r"nvme0: dead, no shutdown notification", out), out[-2000:])
        check(m.wait_exit(60) == 1, "qemu exit status")


@qemu_test(weight=1)
def blk_nvme_mode_race(ctx):
    """Two namespaces of one controller switching modes at once from two
    CPUs (selftest nvme.mode_switch_race): the controller's count of
    polling namespaces and its vector masking stay consistent."""
    m = ctx.machine()
    ns = [{"size": "16M", "lba": 512}, {"size": "16M", "lba": 4096}]
    boot_to_prompt(m, smp=2, disks=[{"kind": "nvme", "ns": ns}])
    out = blk_run(m, "selftest nvme.mode_switch_race", 300)
    check(re.search(r"selftest: nvme.mode_switch_race ok", out), out[-3000:])
