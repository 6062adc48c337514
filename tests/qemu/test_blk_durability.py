"""Durability, observed rather than assumed.

qemu's default writeback cache makes every completed write safe in the
host's page cache, so killing qemu shows nothing about device flushes.  So
every disk here runs under qemu's blklogwrites driver, which records each
write and flush the device saw, in order (tools/dmlog.py reads the log).
The guest writes patterns (plain and FUA) on NVMe and AHCI, flushes, writes
one more FUA block, and the power is cut (qemu killed).  Then, per disk:

- log_durable: every write the guest was told is durable precedes a flush
  in the log (or was FUA);
- crash_image: the image a power cut would leave -- only what the log shows
  flushed -- holds exactly the patterns, and nothing next to them;
- a second boot on those crash images verifies the data in the guest,
  then writes more without any flush and powers off: `poweroff` is an
  acknowledgement of durability too, so its log must show those writes
  flushed (the shutdown list flushes every disk) -- poweroff_durable.

blk_durability_catches_missing_flush boots with blk_drop_flush (flush
requests complete without reaching the disk) and expects the same checks to
find the writes missing: the proof that the first test can fail.
"""
import os
import shutil

import blkutil
import dmlog
import harness
from blkutil import blk_run, blk_ok, blk_write_verify
from harness import qemu_test, check, boot_to_prompt

MiB = 1 << 20
SIZE = 64 * MiB
# (dev, lba, count, seed, fua): written, then `blk flush` on every disk.
WRITES = [("nvme0n1", 5, 3000, 11, False), ("nvme0n1", 4000, 16, 12, True),
          ("sata0", 77, 20000, 13, False), ("sata0", 30001, 7, 14, True)]
# Written after the flushes: FUA alone must make it durable.  AHCI only:
# qemu 7.2's NVMe model drops the FUA bit (it submits every write to its
# block layer without BDRV_REQ_FUA; the log then shows the write with no
# flush after it), so on qemu's NVMe only a flush makes a write durable.
FUA_LAST = [("sata0", 40001, 9, 16, True)]
# Written in the second boot with neither flush nor FUA, then `poweroff`.
POWEROFF_WRITES = [("nvme0n1", 12000, 8, 17, False), ("sata0", 50001, 33, 18, False)]
LBA = {"nvme0n1": 4096, "sata0": 512}


def durability_boot(ctx, test, args=None):
    """Boot with both disks logged; returns (machine, image paths, log paths)."""
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, test,
                                 {"nvme0n1": "dur-nvme.img", "sata0": "dur-sata.img"})
    logs = {dev: p + ".log" for dev, p in paths.items()}
    disks = [{"kind": "nvme", "path": paths["nvme0n1"], "size": "64M", "lba": 4096,
              "logwrites": logs["nvme0n1"]},
             {"kind": "sata", "path": paths["sata0"], "size": "64M", "logwrites": logs["sata0"]}]
    m = ctx.machine("boot1")
    boot_to_prompt(m, smp=2, disks=disks, args=args)
    return m, paths, logs


def durability_checks(logs, paths, writes, base=None):
    """Problems found from the logs for `writes` (all acknowledged as
    durable), as (in the log, in the crash image); builds paths[dev] +
    ".crash", the image a power cut leaves (from base[dev], the image before
    the log's first entry, default zeros)."""
    problems, image_problems = [], []
    for dev, log_path in logs.items():
        try:
            log = dmlog.read_log(log_path)
        except (dmlog.LogError, OSError) as e:
            problems.append(f"{dev}: {e}")
            continue
        nwrites = sum(e.is_write for e in log.entries)
        want = sum(1 for w in writes if w[0] == dev)
        if nwrites < want:
            problems.append(f"{dev}: log holds {nwrites} writes, the guest made at least {want}")
        for e in dmlog.unflushed(log):
            b = e.sector * log.sectorsize
            problems.append(f"{dev}: log entry {e.index}: write at byte {b} ({e.nr_sectors * 512} "
                            "bytes) acknowledged as durable but no flush follows it")
        crash = paths[dev] + ".crash"
        dmlog.replay(log, crash, size=SIZE, base=base[dev] if base else None)
        b = LBA[dev]
        for d, lba, count, seed, _ in writes:
            if d != dev:
                continue
            err = blkutil.image_check(crash, seed, lba * b, count * b, max_bytes=16 * MiB)
            if err:
                image_problems.append(f"{dev} {lba}+{count} after a power cut: {err}")
            for off in ((lba - 1) * b, (lba + count) * b):
                if not blkutil.image_is_zero(crash, off, b):
                    image_problems.append(f"{dev}: block at byte {off} next to {lba}+{count} is not zero")
    return problems, image_problems


@qemu_test(weight=6)
def blk_durability(ctx):
    m, paths, logs = durability_boot(ctx, "blk_durability")
    for dev, lba, count, seed, fua in WRITES:
        with ctx.subtest(f"write_{dev}_{lba}"):
            blk_write_verify(m, dev, lba, count, seed, fua=fua)
    with ctx.subtest("flush"):
        for dev in LBA:
            blk_ok(m, f"blk flush {dev}", 60)
    for dev, lba, count, seed, fua in FUA_LAST:
        with ctx.subtest(f"fua_{dev}_{lba}"):
            blk_write_verify(m, dev, lba, count, seed, fua=fua)
    # Power cut right after the last command returned: nothing in the
    # guest's poweroff path may be what makes the data durable.
    m.kill()

    in_log, in_image = durability_checks(logs, paths, WRITES + FUA_LAST)
    with ctx.subtest("log_durable"):
        check(not in_log, "\n".join(in_log))
    with ctx.subtest("crash_image"):
        check(not in_image, "\n".join(in_image))

    # Boot 2 runs on copies of the crash images (logged again); the crash
    # images themselves stay the base its log is replayed on.
    crashed = {dev: p + ".crash" for dev, p in paths.items()}
    boot2 = {dev: p + ".boot2" for dev, p in paths.items()}
    for dev in crashed:
        shutil.copyfile(crashed[dev], boot2[dev])
    logs2 = {dev: p + ".log" for dev, p in boot2.items()}
    disks = [{"kind": "nvme", "path": boot2["nvme0n1"], "lba": 4096, "logwrites": logs2["nvme0n1"]},
             {"kind": "sata", "path": boot2["sata0"], "logwrites": logs2["sata0"]}]
    m2 = ctx.machine("boot2")
    boot_to_prompt(m2, smp=2, disks=disks)
    with ctx.subtest("reboot_verify"):
        for dev, lba, count, seed, _ in WRITES + FUA_LAST:
            out = blk_run(m2, f"blk verify {dev} {lba} {count} {seed}", 300)
            check(blkutil.verify_ok(out, dev, lba, count), f"after reboot {dev} {lba}+{count}:\n{out}")
    with ctx.subtest("writes_before_poweroff"):
        for dev, lba, count, seed, _ in POWEROFF_WRITES:
            blk_write_verify(m2, dev, lba, count, seed)
    with ctx.subtest("poweroff2"):
        harness.poweroff(m2)
    in_log, in_image = durability_checks(logs2, boot2, POWEROFF_WRITES, base=crashed)
    with ctx.subtest("poweroff_durable"):
        check(not in_log and not in_image, "\n".join(in_log + in_image))
    for dev in paths:
        for p in (crashed[dev], boot2[dev], boot2[dev] + ".crash", logs2[dev]):
            if os.path.exists(p):
                os.remove(p)


@qemu_test(weight=3)
def blk_durability_catches_missing_flush(ctx):
    m, paths, logs = durability_boot(ctx, "blk_durability_noflush", args="blk_drop_flush")
    plain = [w for w in WRITES if not w[4]]
    with ctx.subtest("writes"):
        for dev, lba, count, seed, _ in plain:
            blk_write_verify(m, dev, lba, count, seed)
        for dev in LBA:
            blk_ok(m, f"blk flush {dev}", 60)    # says ok, reaches no disk
    m.kill()
    in_log, in_image = durability_checks(logs, paths, plain)
    with ctx.subtest("detected"):
        for dev, lba, count, _, _ in plain:
            check(any(p.startswith(f"{dev}: log entry") for p in in_log),
                  f"{dev}: unflushed writes not reported:\n" + "\n".join(in_log))
            check(any(p.startswith(f"{dev} {lba}+{count} after a power cut") for p in in_image),
                  f"{dev} {lba}+{count}: the crash image still holds it:\n" + "\n".join(in_image))
    for p in paths.values():
        os.remove(p + ".crash")
