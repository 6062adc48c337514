"""Durability: write patterns (plain and FUA) on NVMe and AHCI, flush, cut
the power (kill qemu); the host then checks the raw images hold exactly the pattern (and
nothing outside the written ranges); a second boot on the same images
verifies the data in the guest."""

import blkutil
import harness
from blkutil import blk_run, blk_ok, blk_write_verify
from harness import qemu_test, check, boot_to_prompt

MiB = 1 << 20
# (dev, lba, count, seed, fua)
WRITES = [("nvme0n1", 5, 3000, 11, False), ("nvme0n1", 4000, 16, 12, True),
          ("sata0", 77, 20000, 13, False), ("sata0", 30001, 7, 14, True)]
LBA = {"nvme0n1": 4096, "sata0": 512}


@qemu_test(weight=6)
def blk_durability(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "blk_durability",
                                 {"nvme0n1": "dur-nvme.img", "sata0": "dur-sata.img"})
    disks = [{"kind": "nvme", "path": paths["nvme0n1"], "size": "64M", "lba": 4096},
             {"kind": "sata", "path": paths["sata0"], "size": "64M"}]

    m = ctx.machine("boot1")
    boot_to_prompt(m, smp=2, disks=disks)
    done = []
    for dev, lba, count, seed, fua in WRITES:
        with ctx.subtest(f"write_{dev}_{lba}"):
            blk_write_verify(m, dev, lba, count, seed, fua=fua)
            done.append((dev, lba, count, seed))
    with ctx.subtest("flush"):
        for dev in LBA:
            blk_ok(m, f"blk flush {dev}", 60)
    # Power is cut (qemu killed) right after the flushes returned: nothing
    # in the guest's poweroff path may be what makes the data durable.
    m.kill()

    with ctx.subtest("host_image"):
        check(len(done) == len(WRITES), "not every write succeeded")
        bad = []
        for dev, lba, count, seed in done:
            b = LBA[dev]
            err = blkutil.image_check(paths[dev], seed, lba * b, count * b, max_bytes=16 * MiB)
            if err:
                bad.append(f"{dev} {lba}+{count}: {err}")
            # The blocks just before and after stay zero: no overrun.
            for off in ((lba - 1) * b, (lba + count) * b):
                if not blkutil.image_is_zero(paths[dev], off, b):
                    bad.append(f"{dev}: block at byte {off} next to {lba}+{count} is not zero")
        check(not bad, "\n".join(bad))

    m2 = ctx.machine("boot2")
    boot_to_prompt(m2, smp=2, disks=disks)
    with ctx.subtest("reboot_verify"):
        for dev, lba, count, seed in done:
            out = blk_run(m2, f"blk verify {dev} {lba} {count} {seed}", 300)
            check(blkutil.verify_ok(out, dev, lba, count), f"after reboot {dev} {lba}+{count}:\n{out}")
    with ctx.subtest("poweroff2"):
        m2.sendline("poweroff")
        m2.wait_exit(60)
