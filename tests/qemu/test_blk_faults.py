"""Injected media errors (qemu blkdebug, rerror/werror=report) on an NVMe
namespace and an AHCI disk: each read and write error reaches the caller
with the decoded reason in words, the device keeps working, nothing hangs;
QMP's blockstats confirm qemu really failed the requests."""
import os
import re
import time

import blkutil
from blkutil import blk_run, blk_ok, blk_write_verify
import harness
from harness import qemu_test, check, boot_to_prompt

# dev -> (LBA size, bad-read LBA, bad-write LBA, words qemu's error becomes)
# qemu's NVMe turns a failed read into Unrecovered Read Error and a failed
# write into Write Fault; its AHCI/IDE reports ERR with ABRT in the error
# register (7.2 sets no UNC), so the decoded reason names an abort.
FAULTS = {
    "nvme0n1": (4096, 100, 200, r"(?i)unrecovered read", r"(?i)write fault"),
    "sata0": (512, 1000, 2000, r"(?i)abort|uncorrectable|\bUNC\b", r"(?i)abort|\bUNC\b|write"),
}
DRIVES = {"nvme0n1": "nvme0n1", "sata0": "sata-p0"}


@qemu_test(weight=4)
def blk_faults(ctx):
    m = ctx.machine()
    os.makedirs(m.tmp, exist_ok=True)
    confs = {}
    for dev, (lbsz, rlba, wlba, _, _) in FAULTS.items():
        confs[dev] = blkutil.blkdebug_conf(os.path.join(m.tmp, f"{dev}.blkdebug"), [
            {"iotype": "read", "sector": rlba * lbsz // 512},
            {"iotype": "write", "sector": wlba * lbsz // 512}])
    disks = [{"kind": "nvme", "size": "32M", "lba": 4096, "blkdebug": confs["nvme0n1"]},
             {"kind": "sata", "size": "32M", "port": 0, "blkdebug": confs["sata0"]}]
    boot_to_prompt(m, smp=2, disks=disks, qmp=True)

    for dev, (lbsz, rlba, wlba, rwords, wwords) in FAULTS.items():
        with ctx.subtest(f"{dev}_clean_io"):
            blk_write_verify(m, dev, 10, 64, 301)
        with ctx.subtest(f"{dev}_read_error"):
            t0 = time.monotonic()
            out = blk_run(m, f"blk read {dev} {rlba} 8", 120)
            ctx.note(f"{dev}: read error reported after {time.monotonic() - t0:.1f} s")
            check(re.search(rf"{dev}.*read.*failed|failed.*{dev}", out, re.I),
                  f"injected read error not reported as a failed read of {dev}:\n{out}")
            check(re.search(rwords, out), f"read error not decoded (/{rwords}/):\n{out}")
        with ctx.subtest(f"{dev}_read_error_poll"):
            # The same error with completions polled instead of interrupts.
            blk_ok(m, f"blk mode {dev} poll", 30)
            try:
                out = blk_run(m, f"blk read {dev} {rlba} 8", 120)
                check(re.search(r"(?i)failed", out) and re.search(rwords, out),
                      f"read error in poll mode not reported with the reason:\n{out}")
                blk_write_verify(m, dev, 10, 64, 301)
            finally:
                blk_run(m, f"blk mode {dev} irq", 30)
        with ctx.subtest(f"{dev}_after_read_error"):
            out = blk_run(m, f"blk verify {dev} 10 64 301", 120)
            check(blkutil.verify_ok(out, dev, 10, 64), f"{dev} broken after a read error:\n{out}")
        with ctx.subtest(f"{dev}_write_error"):
            out = blk_run(m, f"blk write {dev} {wlba} 8 302", 120)
            check(re.search(rf"{dev}.*write.*failed|failed.*{dev}", out, re.I),
                  f"injected write error not reported as a failed write of {dev}:\n{out}")
            check(re.search(wwords, out), f"write error not decoded (/{wwords}/):\n{out}")
        with ctx.subtest(f"{dev}_after_write_error"):
            blk_write_verify(m, dev, 500, 100, 303)
            out = blk_run(m, f"blk verify {dev} 10 64 301", 120)
            check(blkutil.verify_ok(out, dev, 10, 64), f"{dev} lost data after a write error:\n{out}")
        with ctx.subtest(f"{dev}_split_read_error"):
            # A large read whose middle piece fails: the caller sees the error.
            out = blk_run(m, f"blk read {dev} {rlba - 40} 2000", 120)
            check(re.search(r"(?i)failed", out) and re.search(rwords, out),
                  f"a large read over the bad block did not fail with the reason:\n{out}")
            blk_write_verify(m, dev, 10, 64, 304)
        if dev.startswith("sata"):
            # qemu 7.2's AHCI NCQ error path does not count failed requests
            # in blockstats (seen: 0 failed while the guest got ABRT), so the
            # decoded ABRT above is the evidence there.
            continue
        with ctx.subtest(f"{dev}_qemu_saw_failures"):
            stats = {s["device"]: s["stats"] for s in m.qmp("query-blockstats")}
            st = stats.get(DRIVES[dev], {})
            check(st.get("failed_rd_operations", 0) >= 1 and st.get("failed_wr_operations", 0) >= 1,
                  f"qemu's blockstats for {DRIVES[dev]} show no failed requests: {st}")

    with ctx.subtest("still_listed"):
        devs = blkutil.parse_lsblk(blk_run(m, "lsblk", 30))
        check(set(FAULTS) <= set(devs), f"lsblk after the faults: {sorted(devs)}")
    with ctx.subtest("blkstat_errors"):
        st = blkutil.blkstat(m)
        for dev in FAULTS:
            # read error, write error, split read error: at least three
            check(st.get(dev, {}).get("errors", 0) >= 3, f"{dev}: blkstat counts too few errors: "
                  f"{st.get(dev)}")
    with ctx.subtest("poweroff"):
        harness.poweroff(m)
