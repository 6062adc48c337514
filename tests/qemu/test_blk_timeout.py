"""The command-timeout path: with blk_timeout_ms=1000, qemu I/O throttling
(set through QMP while the guest runs) makes commands outlast their
deadline.  The driver must say in words that a command timed out, recover
(abort, reset, resubmit), the shell command must return, and once the
throttle is lifted the device must work as before.  A command that times out
once and is lifted meanwhile succeeds after the reset (the timed-out command
is resubmitted too); one that stays stuck fails after 2 retries with
"timed out after 1000 ms, 2 retries, controller|port reset"."""
import re
import time

import blkutil
from blkutil import blk_run, blk_ok, blk_write_verify
import harness
from harness import PROMPT, qemu_test, check, boot_to_prompt, strip_ansi

MiB = 1 << 20
DEVS = {"nvme0n1": ("nvme0n1", 4096), "sata0": ("sata-p0", 512)}
TIMEOUT_RE = r"(?i)time[ds]?[ -]?out|timed out"


def throttle(m, drive, iops=0, bps=0):
    m.qmp("block_set_io_throttle", timeout=120, device=drive, bps=bps, bps_rd=0, bps_wr=0,
          iops=iops, iops_rd=0, iops_wr=0)


def timeout_once(ctx, m, dev, drive, lbsz):
    """Throttle, run a read that must time out, lift the throttle; check the
    timeout was reported in words and the command came back."""
    # 256 KiB/s: a 1 MiB read needs ~4 s, well over the 1000 ms
    # deadline, whether it is one command or split.
    throttle(m, drive, bps=256 * 1024)
    # qemu lets the first request through at once and charges it to
    # the bucket: a 512 KiB read (one command on both drivers) puts
    # the next command ~2 s behind.
    blk_ok(m, f"blk read {dev} {4 * MiB // lbsz} {512 * 1024 // lbsz}", 60)
    count = MiB // lbsz
    m.sendline(f"blk verify {dev} 0 {count} 401")
    start = m.mark()
    t0 = time.monotonic()
    try:
        hit = m.expect(TIMEOUT_RE + r"|^" + re.escape(PROMPT), 90)
        t_msg = time.monotonic() - t0
    finally:
        throttle(m, drive)          # lift it whatever happened
    check(hit.group(0) != PROMPT,
          f"{dev}: the command finished after {t_msg:.1f} s with no timeout reported "
          f"(blk_timeout_ms=1000):\n{strip_ansi(m.output(start))[-2000:]}")
    m.expect(r"^" + re.escape(PROMPT), 180)
    took = time.monotonic() - t0
    out = strip_ansi(m.output(start, m.mark() - len(PROMPT)))
    ok = blkutil.verify_ok(out, dev, 0, count)
    ctx.note(f"{dev}: timeout reported after {t_msg:.1f} s, command returned after "
             f"{took:.1f} s, {'data verified after recovery' if ok else 'request failed'}")
    msgs = [ln for ln in out.splitlines() if re.search(TIMEOUT_RE, ln)]
    ctx.note(f"{dev}: " + " | ".join(msgs[:3]))
    name = re.compile(rf"(?<![\w-]){re.escape(dev)}(?![\w-])")
    check(any(name.search(ln) for ln in msgs),
          f"no timeout message names {dev} exactly:\n{out[-2000:]}")
    check(ok, f"{dev}: the timed-out read was not retried to success once the throttle was "
              f"lifted:\n{out[-2000:]}")


# dev -> (words, throttle bps, priming read bytes).  NVMe: 4 KiB/s after a
# 512 KiB read, every later command would wait minutes; the resets' drains
# do not reset the budget.  AHCI: qemu's port reset cancels the in-flight
# request synchronously, which with a throttle blocks qemu until the request
# went through (seen: 128 s at 4 KiB/s), so each read there takes ~2 s
# instead: over the 1 s deadline every time, without freezing qemu.
STUCK = {"nvme0n1": ("controller reset", 4096, 512 * 1024),
         "sata0": ("port reset", 32 * 1024, 64 * 1024)}


def stuck_once(ctx, m, dev, drive, lbsz):
    """A command that cannot finish: it times out, is retried twice after
    resets and then fails with the words; the device works afterwards."""
    words, bps, prime = STUCK[dev]
    throttle(m, drive, bps=bps)
    t0 = time.monotonic()
    try:
        blk_ok(m, f"blk read {dev} {4 * MiB // lbsz} {prime // lbsz}", 60)
        out = blk_run(m, f"blk read {dev} 0 {64 * 1024 // lbsz}", 120)
    finally:
        throttle(m, drive)
    took = time.monotonic() - t0
    want = rf"timed out after 1000 ms, 2 retries, {words}"
    line = next((ln for ln in out.splitlines() if re.search(want, ln)), None)
    ctx.note(f"{dev}: stuck read returned after {took:.1f} s: {line}")
    check(re.search(r"(?i)failed", out) and line,
          f"{dev}: the stuck read did not fail with /{want}/:\n{out[-2000:]}")
    blk_write_verify(m, dev, 100, 64, 403)


@qemu_test(weight=5)
def blk_timeout(ctx):
    m = ctx.machine()
    disks = [{"kind": "nvme", "size": "32M", "lba": 4096},
             {"kind": "sata", "size": "32M", "port": 0}]
    boot_to_prompt(m, smp=2, disks=disks, qmp=True, args="blk_timeout_ms=1000")

    for dev, (drive, lbsz) in DEVS.items():
        with ctx.subtest(f"{dev}_before"):
            blk_write_verify(m, dev, 0, 2 * MiB // lbsz, 401)
        for mode in ("irq", "poll"):
            with ctx.subtest(f"{dev}_timeout_{mode}"):
                blk_ok(m, f"blk mode {dev} {mode}", 30)
                try:
                    timeout_once(ctx, m, dev, drive, lbsz)
                finally:
                    if mode != "irq":
                        blk_run(m, f"blk mode {dev} irq", 30)
        with ctx.subtest(f"{dev}_stuck"):
            stuck_once(ctx, m, dev, drive, lbsz)
        with ctx.subtest(f"{dev}_after"):
            devs = blkutil.parse_lsblk(blk_run(m, "lsblk", 30))
            check(dev in devs, f"{dev} gone from lsblk after the timeout")
            blk_write_verify(m, dev, 100, 4 * MiB // lbsz, 402)
            out = blk_run(m, f"blk verify {dev} 0 64 401", 60)
            check(blkutil.verify_ok(out, dev, 0, 64), f"{dev}: old data unreadable after recovery:\n{out}")

    with ctx.subtest("poweroff"):
        harness.poweroff(m)
