"""Block devices of every kind on one machine: two NVMe controllers (one with
a 512 B and a 4 KiB namespace, one with a single 4 KiB namespace, a 64 KiB
MDTS and one shared I/O queue pair), two AHCI
disks with an empty ATAPI drive on the port between them.  lsblk, large
pattern writes read back in the guest and checked from the host after
poweroff, write zeroes, trim, and the clear errors for bad requests."""
import re
import zlib

import blkutil
from blkutil import blk_run, blk_ok, blk_write_verify
import harness
from harness import qemu_test, check, boot_to_prompt

MiB = 1 << 20
DISKS = [
    {"kind": "nvme", "serial": "nvme0", "ns": [{"size": "96M", "lba": 512},
                                             {"size": "64M", "lba": 4096}]},
    # A small MDTS (64 KiB) and a single I/O queue pair shared by both CPUs.
    {"kind": "nvme", "serial": "nvme1", "size": "48M", "lba": 4096, "opts": "mdts=4,max_ioqpairs=1"},
    {"kind": "sata", "size": "96M", "port": 0},
    {"kind": "cdrom", "port": 1},
    {"kind": "sata", "size": "32M", "port": 2},
]
# name -> (bytes, lba size)
EXPECT = {"nvme0n1": (96 * MiB, 512), "nvme0n2": (64 * MiB, 4096),
          "nvme1n1": (48 * MiB, 4096), "sata0": (96 * MiB, 512), "sata1": (32 * MiB, 512)}
# Large ranges with unaligned starts: they cross MDTS (512 KiB on qemu's
# NVMe), PRP-list pages and the block layer's split points.
PATTERNS = [("nvme0n1", 7, 40000, 101), ("nvme0n1", 96 * MiB // 512 - 9, 9, 102),
            ("nvme0n2", 3, 5003, 103), ("nvme1n1", 1, 2049, 104),
            ("sata0", 1001, 40001, 105), ("sata1", 5, 8195, 106),
            ("sata1", 32 * MiB // 512 - 3, 3, 107)]


@qemu_test(weight=8)
def blk_data(ctx):
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=DISKS)
    paths = {d["name"]: d["path"] for d in m.disks if d["name"]}
    devs = {}

    with ctx.subtest("atapi_reported"):
        check(re.search(r"(?i)port 1\b.*(atapi|cd-?rom|packet)", boot),
              "boot log does not mention the ATAPI drive on AHCI port 1:\n" + boot[-2000:])

    with ctx.subtest("lsblk"):
        out = blk_run(m, "lsblk", 30)
        devs = blkutil.parse_lsblk(out)
        check(set(devs) == set(EXPECT), f"lsblk lists {sorted(devs)}, expected {sorted(EXPECT)}:\n{out}")
        for name, (size, lba) in EXPECT.items():
            d = devs[name]
            check(d.get("size") is not None, f"lsblk line for {name} not parsed:\n{d['line']}")
            check(abs(d["size"] - size) <= size / 100, f"{name}: size {d['size']} want {size}:\n{d['line']}")
            check(d["lba"] == lba, f"{name}: LBA {d['lba']} want {lba}:\n{d['line']}")
            check(d["queues"] >= 1 and d["depth"] >= 1, f"{name}: queues/depth:\n{d['line']}")
            check(d["mode"] == "irq", f"{name}: default mode {d['mode']}:\n{d['line']}")
        for name in ("nvme0n1", "nvme0n2"):
            check(re.search(r"\bnvme0\b", devs[name]["line"]), f"{name}: serial nvme0 missing:\n{out}")
        check(re.search(r"\bnvme1\b", devs["nvme1n1"]["line"]), f"nvme1n1: serial nvme1 missing:\n{out}")
        check(re.search(r"QEMU", devs["sata0"]["line"]), f"sata0: model missing:\n{out}")

    with ctx.subtest("lsblk_v"):
        out = blk_run(m, "lsblk -v", 30)
        check(len(out.splitlines()) > len(EXPECT) + 1, f"lsblk -v adds no detail lines:\n{out}")
        check(re.search(r"(?i)mdts|max.?transfer", out), f"lsblk -v: no MDTS/transfer limit:\n{out}")
        check(re.search(r"(?i)nvme1\b.*\bMDTS 4\b|max transfer 65536\b", out),
              f"lsblk -v: nvme1's MDTS 4 (64 KiB) not shown:\n{out}")
        check(devs.get("nvme1n1", {}).get("queues") == 1,
              f"nvme1 has one I/O queue pair (max_ioqpairs=1): lsblk says {devs.get('nvme1n1')}")

    written = []
    for dev, lba, count, seed in PATTERNS:
        with ctx.subtest(f"pattern_{dev}_{lba}"):
            blk_write_verify(m, dev, lba, count, seed)
            written.append((dev, lba, count, seed))

    with ctx.subtest("verify_all_again"):
        # After every device was written: namespaces and ports did not alias.
        for dev, lba, count, seed in written:
            out = blk_run(m, f"blk verify {dev} {lba} {count} {seed}", 300)
            check(blkutil.verify_ok(out, dev, lba, count), f"{dev} {lba}+{count} seed {seed}:\n{out}")

    with ctx.subtest("verify_detects_mismatch"):
        out = blk_run(m, "blk verify nvme0n2 3 8 999", 60)
        check(re.search(r"^verify nvme0n2 3\+8: MISMATCH at lba 3 byte 0: got \S+ want \S+", out, re.M),
              f"wrong seed not reported as MISMATCH at lba 3 byte 0:\n{out}")

    with ctx.subtest("read_crc"):
        out = blk_ok(m, "blk read nvme0n2 3 4", 60)
        want = zlib.crc32(blkutil.pattern_bytes(103, 3 * 4096, 4 * 4096))
        check(blkutil.blk_crc(out) == want, f"blk read CRC {blkutil.blk_crc(out)} want {want:08x}:\n{out}")

    for dev, lba in (("nvme0n2", 9000), ("sata0", 60000)):
        with ctx.subtest(f"write_zeroes_{dev}"):
            n = 16
            blk_write_verify(m, dev, lba, n, 108)
            blk_ok(m, f"blk zero {dev} {lba} {n}", 60)
            out = blk_ok(m, f"blk read {dev} {lba} {n}", 60)
            size = n * EXPECT[dev][1]
            check(blkutil.blk_crc(out) == zlib.crc32(bytes(size)),
                  f"{dev}: after blk zero the CRC is not that of zeros:\n{out}")
            # Neighbours untouched.
            blk_write_verify(m, dev, lba + n, 4, 109)
        with ctx.subtest(f"trim_{dev}"):
            out = blk_run(m, f"blk trim {dev} {lba} 16", 60)
            if devs.get(dev, {}).get("trim") == "no":
                check(re.search(r"(?i)not supported|unsupported", out),
                      f"{dev}: lsblk says no TRIM but blk trim did not say so:\n{out}")
            else:
                check(not blkutil.FAIL_RE.search(out), f"{dev}: blk trim failed:\n{out}")
            blk_write_verify(m, dev, lba, 16, 110)

    with ctx.subtest("flush"):
        for dev in EXPECT:
            blk_ok(m, f"blk flush {dev}", 60)

    for dev, (size, lba) in EXPECT.items():
        with ctx.subtest(f"past_end_{dev}"):
            nb = size // lba
            for line in (f"blk read {dev} {nb} 1", f"blk read {dev} {nb - 1} 2",
                         f"blk write {dev} {nb - 1} 8 1"):
                out = blk_run(m, line, 60)
                check(re.search(r"(?i)past (the )?end", out), f"'{line}': no 'past end' error:\n{out}")
            blk_ok(m, f"blk read {dev} {nb - 1} 1", 60)

    with ctx.subtest("bad_device"):
        out = blk_run(m, "blk read nosuch9 0 1", 30)
        check(re.search(r"(?i)no (such )?device|not found|unknown", out), f"unknown device not reported:\n{out}")

    with ctx.subtest("blkstat"):
        st = blkutil.blkstat(m)
        for dev in EXPECT:
            s = st.get(dev)
            check(s, f"blkstat has no line for {dev}: {st}")
            # Every kind this test issued was counted, and each completed
            # request has a latency sample.
            check(s["read"] > 0 and s["write"] > 0 and s["flush"] > 0, f"{dev}: {s}")
            check(s["latency"] > 0, f"{dev}: empty latency histogram: {s}")

    with ctx.subtest("poweroff"):
        harness.poweroff(m)

    with ctx.subtest("host_check"):
        bad = []
        for dev, lba, count, seed in written:
            lbsz = EXPECT[dev][1]
            err = blkutil.image_check(paths[dev], seed, lba * lbsz, count * lbsz)
            if err:
                bad.append(f"{dev} {lba}+{count} seed {seed}: {err}")
        check(written, "nothing was written")
        check(not bad, "images do not hold the flushed patterns:\n" + "\n".join(bad))
