"""The kernel page cache on real disks (platform/kernel/bdev_file.c via the `pc`
command): unaligned buffered writes reach the device after `pc sync` (the
guest's `blk verify` and the host image agree, neighbouring bytes are
untouched), `pc stat` and `mem` numbers move, direct I/O stays coherent with
the cache, `pc drop` empties it, and data synced before poweroff is in the
image afterwards."""
import re
import zlib

import blkutil
import harness
from blkutil import blk_run
from harness import qemu_test, check, boot_to_prompt

MiB = 1 << 20
# (dev, byte offset, length, seed): unaligned at both ends.
BUFFERED = [("nvme0n1", 1000, 300001, 31), ("sata0", 4097, 77777, 32), ("sata0", 5 * MiB + 3, 509, 33)]
DIO = ("sata0", 8 * MiB, 256 * 1024, 34)           # 4 KiB aligned
LATE = ("nvme0n1", 9 * MiB - 5, 123457, 35)         # synced right before poweroff
UNSYNCED = [("nvme0n1", 12 * MiB + 7, 70001, 36),   # left dirty: the shutdown list writes them back
            ("sata0", 13 * MiB - 3, 4099, 37)]


def pc_ok(m, line, timeout=300):
    out = blk_run(m, line, timeout)
    check(re.search(r": ok\b", out) and not re.search(r"(?i)fail|mismatch|error", out),
          f"'{line}' did not succeed:\n{out[-1500:]}")
    return out


def stat(m):
    out = blk_run(m, "pc stat", 30)
    got = {}
    for key, rx in (("cached", r"cached (\d+) KiB"), ("folios", r"in (\d+) folios"),
                    ("dirty", r"dirty (\d+) KiB"), ("lookups", r"lookups (\d+)"),
                    ("wb", r"writeback completions (\d+)"), ("bios", r"bios (\d+)"),
                    ("rd", r"buffered reads (\d+) KiB"), ("miss", r"device reads for them (\d+) KiB"),
                    ("hit", r"read hit rate (\d+)%")):
        mt = re.search(rx, out)
        check(mt, f"pc stat: no '{key}' in:\n{out}")
        got[key] = int(mt.group(1))
    return got, out


@qemu_test(weight=4)
def pcache(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "pcache",
                                 {"nvme0n1": "pc-nvme.img", "sata0": "pc-sata.img"})
    disks = [{"kind": "nvme", "path": paths["nvme0n1"], "size": "32M", "lba": 512},
             {"kind": "sata", "path": paths["sata0"], "size": "32M"}]
    m = ctx.machine()
    # A 10-minute periodic writeback: only the shutdown list can write back
    # the UNSYNCED ranges before poweroff.
    boot = boot_to_prompt(m, smp=2, disks=disks, args="pcache_wb_ms=600000")

    with ctx.subtest("boot_line"):
        check(re.search(r"^pcache: budget \d+ MiB", boot, re.M), "no 'pcache: budget' line at boot:\n" + boot[-1500:])
        out = blk_run(m, "mem", 30)
        check(re.search(r"^page cache: \d+ KiB cached", out, re.M), f"mem shows no page cache line:\n{out}")

    s0, _ = stat(m)
    with ctx.subtest("buffered_write_sync"):
        for dev, off, ln, seed in BUFFERED:
            pc_ok(m, f"pc write {dev} {off} {ln} {seed}")
        s1, out = stat(m)
        check(s1["dirty"] > 0 and s1["cached"] > s0["cached"] and s1["folios"] > s0["folios"],
              f"pc stat did not move after buffered writes:\n{out}")
        for dev, off, ln, seed in BUFFERED:
            pc_ok(m, f"pc verify {dev} {off} {ln} {seed}")     # from the cache
        for dev in paths:
            pc_ok(m, f"pc sync {dev}", 120)
        s2, out = stat(m)
        check(s2["dirty"] == 0, f"dirty after pc sync:\n{out}")
        check(s2["wb"] > s1["wb"] and s2["bios"] > s1["bios"], f"no writeback I/O counted:\n{out}")
        check(s2["lookups"] > s0["lookups"], f"lookups did not move:\n{out}")

    with ctx.subtest("blk_verify_agrees"):
        for dev, off, ln, seed in BUFFERED:
            first, last = (off + 511) // 512, (off + ln) // 512    # whole sectors inside the range
            if last > first:
                out = blk_run(m, f"blk verify {dev} {first} {last - first} {seed}", 120)
                check(blkutil.verify_ok(out, dev, first, last - first), f"blk verify after pc sync:\n{out}")

    with ctx.subtest("dio_coherency"):
        dev, off, ln, seed = DIO
        pc_ok(m, f"pc write {dev} {off + 100} 5000 {seed + 100}")   # dirty in the cache
        pc_ok(m, f"pc read {dev} {off} {ln}")                      # the rest cached clean
        pc_ok(m, f"pc dio write {dev} {off} {ln} {seed}")
        pc_ok(m, f"pc verify {dev} {off} {ln} {seed}")             # buffered read sees it
        out = blk_run(m, f"blk verify {dev} {off // 512} {ln // 512} {seed}", 120)
        check(blkutil.verify_ok(out, dev, off // 512, ln // 512), f"blk verify after dio:\n{out}")
        pc_ok(m, f"pc write {dev} {off + 3} 10 {seed + 1}")
        out = pc_ok(m, f"pc dio read {dev} {off} 4096")
        check(re.search(r"crc32=0x[0-9a-f]{8}", out), f"pc dio read prints no crc:\n{out}")
        a = blkutil.pattern_bytes(seed, off, 4096)
        b = blkutil.pattern_bytes(seed + 1, off, 16)
        want = a[:3] + b[3:13] + a[13:]
        crc = int(re.search(r"crc32=0x([0-9a-f]{8})", out).group(1), 16)
        check(crc == zlib.crc32(want), f"dio read after a buffered write: crc {crc:08x} want "
              f"{zlib.crc32(want):08x} (dirty cache not written back first?)")

    with ctx.subtest("drop"):
        pc_ok(m, "pc drop", 120)
        s3, out = stat(m)
        check(s3["folios"] == 0 and s3["cached"] == 0, f"pc drop left folios cached:\n{out}")
        dev, off, ln, seed = BUFFERED[0]
        pc_ok(m, f"pc verify {dev} {off} {ln} {seed}")             # read back from the device
        s4, out = stat(m)
        check(s4["miss"] >= s3["miss"] + ln // 1024 - 8, f"reading after pc drop did not go to the device:\n{out}")
        pc_ok(m, f"pc verify {dev} {off} {ln} {seed}")             # now from the cache
        s5, out = stat(m)
        check(s5["rd"] >= s4["rd"] + ln // 1024 - 1 and s5["miss"] == s4["miss"] and s5["hit"] >= s4["hit"],
              f"second read was not served from the cache:\n{out}")

    with ctx.subtest("sync_then_poweroff"):
        dev, off, ln, seed = LATE
        pc_ok(m, f"pc write {dev} {off} {ln} {seed}")
        pc_ok(m, f"pc sync {dev}", 120)
        for udev, uoff, uln, useed in UNSYNCED:
            pc_ok(m, f"pc write {udev} {uoff} {uln} {useed}")
        s6, out = stat(m)
        check(s6["dirty"] > 0, f"the unsynced writes are not dirty in the cache:\n{out}")
        harness.poweroff(m)
        log = m.output(until=len(m.buf))     # everything, not just what was expected
        check(re.search(r"shutdown \(poweroff\): \d+ steps?", log), "no shutdown list at poweroff:\n" + log[-1500:])
        check(re.search(r"shutdown: page cache wrote back \d+ KiB", log),
              "shutdown did not write back the page cache:\n" + log[-1500:])

    with ctx.subtest("host_image"):
        bad = []
        for dev, off, ln, seed in BUFFERED + [LATE] + UNSYNCED:
            err = blkutil.image_check(paths[dev], seed, off, ln)
            if err:
                bad.append(f"{dev} {off}+{ln}: {err}")
            # Read-modify-write of the edge blocks left their other bytes alone.
            for o in (off - 1, off + ln):
                if not blkutil.image_is_zero(paths[dev], o, 1):
                    bad.append(f"{dev}: byte {o} next to {off}+{ln} is not zero")
        dev, off, ln, seed = DIO
        err = blkutil.image_check(paths[dev], seed, off + 13, ln - 13)
        if err:
            bad.append(f"dio range: {err}")
        check(not bad, "\n".join(bad))
