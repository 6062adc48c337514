"""The filesystem in the appliance, used as a user would from the shell.

fs_shell: two blank disks (NVMe with 512-byte and AHCI with 512-byte LBAs
here, NVMe 4 KiB in fs_reboot) are formatted at boot (`format = blank`) and
mounted on /DEV; text and pattern files of many sizes are written, read
back with CRC-32s compared against the host's, renamed, linked, removed;
every bad command gets one line naming what is wrong; the online fsck is
clean.  fs_reboot: files survive `reboot` and `poweroff` (the shutdown
list commits), the second boot mounts without formatting, and the host's
fsck finds the images clean.  fs_refusals: disks holding a partition
table, another filesystem or data are never formatted, each refusal names
what it found.  fs_enospc: a small disk fills up with a clear error and
the filesystem stays usable and clean.
"""
import os
import re
import subprocess
import zlib

import blkutil
import harness
from harness import qemu_test, check, boot_to_prompt, shell, poweroff

REPO = harness.REPO
FS_CONFIG = ["mount = all", "format = blank"]
# (name, size, seed): around block and folio boundaries, and one of 5 MiB.
FILES = [("empty", 0, 1), ("one", 1, 2), ("b4095", 4095, 3), ("b4096", 4096, 4), ("b4097", 4097, 5),
         ("m1", (1 << 20) + 3, 6), ("m5", 5 << 20, 7)]


pattern_crc = blkutil.pattern_crc32


def ok(m, line, timeout=120):
    out = shell(m, line, timeout)
    check(not re.search(r"(?i)\b(error|no such|invalid|failed|not ok)\b", out), f"'{line}':\n{out}")
    return out


def one_line_error(m, line, want):
    out = shell(m, line).strip()
    check(len(out.splitlines()) == 1 and re.search(want, out), f"'{line}': expected one line matching "
          f"{want!r}, got:\n{out}")


def cksum(m, path, direct=False):
    out = shell(m, f"cksum {'-d ' if direct else ''}{path}", 300)
    mt = re.search(r"^cksum \S+ size (\d+) crc32 ([0-9a-f]{8})", out, re.M)
    check(mt, f"cksum {path}:\n{out}")
    return int(mt.group(1)), int(mt.group(2), 16)


def write_files(m, mount):
    for name, size, seed in FILES:
        ok(m, f"fill {mount}/{name} {size} {seed}", 300)


def check_files(m, mount):
    for name, size, seed in FILES:
        got = cksum(m, f"{mount}/{name}")
        check(got == (size, pattern_crc(seed, size)), f"{mount}/{name}: size/crc {got}, expected "
              f"{(size, pattern_crc(seed, size))}")


def host_fsck(path):
    p = subprocess.run([os.path.join(REPO, "build", "cowfs"), "check", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace")


@qemu_test(weight=4)
def fs_shell(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_shell", {"nvme0n1": "nvme.img", "sata0": "sata.img"})
    disks = [{"kind": "nvme", "path": paths["nvme0n1"], "size": "64M", "lba": 512},
             {"kind": "sata", "path": paths["sata0"], "size": "64M"}]
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=disks, config=FS_CONFIG)
    with ctx.subtest("formatted_and_mounted_at_boot"):
        for dev in ("nvme0n1", "sata0"):
            check(re.search(rf"^fs: {dev}: new filesystem", boot, re.M), f"{dev} not formatted:\n{boot[-2000:]}")
            check(re.search(rf"^fs: {dev} mounted on /{dev}: ", boot, re.M), f"{dev} not mounted:\n{boot[-2000:]}")
        out = ok(m, "df")
        check(re.search(r"^/nvme0n1\s+nvme0n1\s+64\s", out, re.M) and re.search(r"^/sata0\s+sata0\s", out, re.M),
              f"df:\n{out}")
    with ctx.subtest("text_files"):
        ok(m, "write /nvme0n1/hello hello appliance")
        ok(m, "append /nvme0n1/hello second line")
        out = shell(m, "cat /nvme0n1/hello")
        check(out == "hello appliance\nsecond line\n", repr(out))
        st = ok(m, "stat /nvme0n1/hello")
        check(re.search(r"^size 28$", st, re.M) and re.search(r"^links 1$", st, re.M), st)
        check(re.search(r"^modified 20\d\d-", st, re.M), f"no real-time mtime:\n{st}")
    with ctx.subtest("pattern_files"):
        for mount in ("/nvme0n1", "/sata0"):
            write_files(m, mount)
            check_files(m, mount)
        size, crc = cksum(m, "/sata0/m5", direct=True)
        check((size, crc) == (5 << 20, pattern_crc(7, 5 << 20)), "direct read of /sata0/m5")
        ok(m, "verify /nvme0n1/m5 7")
    with ctx.subtest("direct_write"):
        ok(m, "fill -d -s /nvme0n1/direct 1m 9")
        check(cksum(m, "/nvme0n1/direct") == (1 << 20, pattern_crc(9, 1 << 20)), "direct write read back")
    with ctx.subtest("namespace"):
        ok(m, "mkdir /nvme0n1/d /nvme0n1/d/e")
        ok(m, "cp /nvme0n1/m1 /nvme0n1/d/e/copy")
        check(cksum(m, "/nvme0n1/d/e/copy") == cksum(m, "/nvme0n1/m1"), "cp changed the data")
        ok(m, "mv /nvme0n1/d/e/copy /nvme0n1/d/moved")
        ok(m, "ln /nvme0n1/d/moved /nvme0n1/hard")
        ok(m, "ln -s /nvme0n1/d/moved /nvme0n1/soft")
        check(cksum(m, "/nvme0n1/soft") == cksum(m, "/nvme0n1/m1"), "read through a symlink")
        st = ok(m, "stat /nvme0n1/hard")
        check(re.search(r"^links 2$", st, re.M), st)
        out = ok(m, "ls -l /nvme0n1")
        check(re.search(r"^l\S+ .* soft -> /nvme0n1/d/moved$", out, re.M), out)
        check(re.search(r"^d\S+ .* d$", out, re.M), out)
        ok(m, "rm /nvme0n1/d/moved")
        check(cksum(m, "/nvme0n1/hard") == cksum(m, "/nvme0n1/m1"), "the other link lost its data")
        ok(m, "truncate /nvme0n1/hard 1000")
        check(cksum(m, "/nvme0n1/hard") == (1000, zlib.crc32(blkutil.pattern_bytes(6, 0, 1000))), "truncate")
        ok(m, "rmdir /nvme0n1/d/e")
        out = ok(m, "ls /nvme0n1/d")
        check(out.strip() == "", f"/nvme0n1/d not empty:\n{out}")
    with ctx.subtest("errors_in_one_line"):
        one_line_error(m, "cat /nvme0n1/nope", r"(?i)^cat: /nvme0n1/nope: .*(no such|not found)")
        one_line_error(m, "rmdir /nvme0n1", r"^rmdir: /nvme0n1: ")
        one_line_error(m, "mkdir /nvme0n1/d", r"(?i)^mkdir: /nvme0n1/d: .*exists")
        one_line_error(m, "rmdir /nvme0n1/d/..", r"(?i)^rmdir: /nvme0n1/d/\.\.: invalid")
        ok(m, "write /nvme0n1/d/x x")
        one_line_error(m, "rmdir /nvme0n1/d", r"(?i)^rmdir: /nvme0n1/d: .*not empty")
        one_line_error(m, "cat /nvme0n1/hello/x", r"(?i)^cat: /nvme0n1/hello/x: .*not a directory")
        one_line_error(m, "mv /nvme0n1/hello /sata0/hello", r"(?i)^mv: .*cross-device")
        one_line_error(m, "ls nvme0n1", r"^ls: nvme0n1: paths start with /MOUNT")
        one_line_error(m, "mount nvme0n1", r"^fs: nvme0n1 or /nvme0n1 is already mounted")
        one_line_error(m, "mkfs nvme0n1", r"^mkfs: nvme0n1 is mounted")
        one_line_error(m, "fill /nvme0n1/f 10q", r"^fill: usage")
    with ctx.subtest("snapshots"):
        out = ok(m, "snapshot create /nvme0n1 monday")
        check(re.search(r"^/nvme0n1: snapshot monday created", out, re.M), out)
        ok(m, "fill /nvme0n1/after-monday 100k 12")
        out = ok(m, "clone /nvme0n1 work")
        check(re.search(r"^/nvme0n1: clone work created", out, re.M), out)
        out = ok(m, "snapshot list /nvme0n1")
        check(re.search(r"^monday\s+snapshot\s+tree \d+", out, re.M) and re.search(r"^work\s+clone\s+tree", out, re.M),
              out)
        one_line_error(m, "snapshot create /nvme0n1 monday", r"(?i)^snapshot: /nvme0n1 monday: .*exists")
        one_line_error(m, "snapshot delete /nvme0n1 sunday", r"(?i)^snapshot: /nvme0n1 sunday: .*(no such|not found)")
        ok(m, "snapshot delete /nvme0n1 monday")
        out = ok(m, "snapshot list /nvme0n1")
        check("monday" not in out and "work" in out, out)
        check(cksum(m, "/nvme0n1/after-monday") == (100 << 10, pattern_crc(12, 100 << 10)), "data after snapshots")
    with ctx.subtest("bench_fs_sequential_reads_reach_the_device"):
        # an 8 MiB file read 256 KiB at a time for 2 s passes over it many
        # times: each pass starts cold, as fio's reads on the Linux side do
        out = ok(m, "bench fs /nvme0n1 read bs=262144 secs=2 size=8388608", 300)
        mt = re.search(r"^bench fs .* ops=(\d+) .* dev_read_kib=(\d+) .*errors=0 cold_passes=(\d+)$", out, re.M)
        check(mt, out)
        ops, kib, passes = (int(x) for x in mt.groups())
        check(ops > 64 and passes >= ops // 32 - 1 and kib >= (ops - 32) * 256, out)
    with ctx.subtest("fsck_and_scrub_clean"):
        for mount in ("/nvme0n1", "/sata0"):
            out = shell(m, f"fsck {mount}", 300)
            check(re.search(rf"^fsck: {mount}: clean", out, re.M), out)
            out = shell(m, f"scrub {mount}", 300)
            # The files written above: their data blocks are read and verified too.
            check(re.search(rf"^scrub: {mount}: clean: .* [1-9][0-9]* data blocks .* 0 errors$", out, re.M), out)
    with ctx.subtest("status_metrics"):
        out = shell(m, "umount /sata0")
        check(re.search(r"^fs: /sata0 unmounted", out, re.M), out)
        out = ok(m, "mount sata0 /other")
        check(re.search(r"^fs: sata0 mounted on /other", out, re.M), out)
        check_files(m, "/other")
    poweroff(m)
    with ctx.subtest("host_fsck"):
        for dev, p in paths.items():
            rc, out = host_fsck(p)
            check(rc == 0, f"host fsck of {dev}'s image: exit {rc}\n{out}")


@qemu_test(weight=4)
def fs_reboot(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_reboot", {"nvme0n1": "nvme4k.img"})
    disks = [{"kind": "nvme", "path": paths["nvme0n1"], "size": "64M", "lba": 4096}]
    m = ctx.machine("boot1")
    boot_to_prompt(m, smp=2, disks=disks, config=FS_CONFIG)
    write_files(m, "/nvme0n1")
    ok(m, "write /nvme0n1/last written right before poweroff")
    with ctx.subtest("poweroff_commits"):
        m.sendline("poweroff")
        m.expect(r"^shutdown: /nvme0n1 committed and unmounted", 120)
        m.wait_exit(60)
    rc, out = host_fsck(paths["nvme0n1"])
    with ctx.subtest("host_fsck_after_poweroff"):
        check(rc == 0, f"exit {rc}\n{out}")
    m2 = ctx.machine("boot2")
    boot = boot_to_prompt(m2, smp=2, disks=[{"kind": "nvme", "path": paths["nvme0n1"], "lba": 4096}],
                          config=FS_CONFIG)
    with ctx.subtest("mounted_not_reformatted"):
        check(not re.search(r"new filesystem", boot), f"formatted again:\n{boot[-2000:]}")
        check(re.search(r"^fs: nvme0n1 mounted on /nvme0n1", boot, re.M), boot[-2000:])
    with ctx.subtest("files_after_poweroff"):
        check_files(m2, "/nvme0n1")
        check(shell(m2, "cat /nvme0n1/last") == "written right before poweroff\n", "last file")
    ok(m2, "write /nvme0n1/after-reboot yes")
    poweroff(m2)
    rc, out = host_fsck(paths["nvme0n1"])
    with ctx.subtest("host_fsck_after_second_boot"):
        check(rc == 0, f"exit {rc}\n{out}")


def refused(boot, dev, what):
    return re.search(rf"^fs: {dev} holds {re.escape(what)}: not formatted", boot, re.M)


@qemu_test(weight=2)
def fs_refusals(ctx):
    names = {"nvme0n1": "gpt.img", "nvme1n1": "xfs.img", "sata0": "data.img"}
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_refusals", names)
    for p in paths.values():
        with open(p, "wb") as f:
            f.truncate(32 << 20)
    blkutil.image_fill(paths["nvme0n1"], 512, b"EFI PART")
    blkutil.image_fill(paths["nvme1n1"], 0, b"XFSB")
    blkutil.image_fill(paths["sata0"], (3 << 20) + 5, b"\x01")
    before = {d: open(p, "rb").read() for d, p in paths.items()}
    disks = [{"kind": "nvme", "path": paths["nvme0n1"]}, {"kind": "nvme", "path": paths["nvme1n1"]},
             {"kind": "sata", "path": paths["sata0"]}]
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=disks, config=FS_CONFIG)
    with ctx.subtest("named_at_boot"):
        check(refused(boot, "nvme0n1", "a GPT partition table"), boot[-2500:])
        check(refused(boot, "nvme1n1", "an XFS filesystem"), boot[-2500:])
        check(refused(boot, "sata0", "data (non-zero bytes at offset 0x300005)"), boot[-2500:])
    with ctx.subtest("mkfs_refuses"):
        one_line_error(m, "mkfs nvme1n1", r"^fs: nvme1n1 holds an XFS filesystem: not formatted")
        one_line_error(m, "mkfs -f nvme0n1", r"^fs: nvme0n1 holds a GPT partition table: not formatted")
        one_line_error(m, "mkfs nosuch", r"^mkfs: no disk 'nosuch'")
    with ctx.subtest("force_over_data_only"):
        out = ok(m, "mkfs -f sata0")
        check(re.search(r"^fs: sata0: new filesystem", out, re.M), out)
        ok(m, "mount sata0")
        ok(m, "write /sata0/x works")
    poweroff(m)
    with ctx.subtest("untouched"):
        for d in ("nvme0n1", "nvme1n1"):
            check(open(paths[d], "rb").read() == before[d], f"{d} was written although refused")


@qemu_test(weight=2)
def fs_enospc(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_enospc", {"sata0": "small.img"})
    m = ctx.machine()
    boot_to_prompt(m, smp=2, disks=[{"kind": "sata", "path": paths["sata0"], "size": "16M"}], config=FS_CONFIG)
    ok(m, "fill /sata0/keep 1m 3")
    ok(m, "sync")
    with ctx.subtest("clear_error"):
        out = shell(m, "fill /sata0/big 32m 4", 300)
        check(re.search(r"(?i)^fill: /sata0/big: write at offset \d+: .*no space", out, re.M), out)
    with ctx.subtest("usable_after"):
        ok(m, "rm /sata0/big")
        ok(m, "sync")
        ok(m, "fill /sata0/again 1m 5")
        check(cksum(m, "/sata0/keep") == (1 << 20, pattern_crc(3, 1 << 20)), "committed file damaged by ENOSPC")
        out = shell(m, "fsck /sata0", 300)
        check(re.search(r"^fsck: /sata0: clean", out, re.M), out)
    poweroff(m)


def populated_content(n, tag, size):
    """What tools/cowfs_populate.c writes into file n (tag: n, or the
    snapshot number of a rewrite)."""
    line = f"f{n:07d} {tag}\n"
    return (line * (size // len(line) + 1))[:size]


@qemu_test(weight=2)
def fs_host_populated(ctx):
    """An image filled on the host by cowfs-populate (many files in several
    directories, snapshots between them) mounts in the appliance without
    formatting; names, contents and snapshots are what the tool wrote."""
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_host_populated", {"nvme0n1": "populated.img"})
    img = paths["nvme0n1"]
    build = os.path.join(REPO, "build")
    subprocess.run([os.path.join(build, "mkfs.cowfs"), "-s", "64M", img], check=True, stdout=subprocess.DEVNULL,
                   timeout=60)
    pop = subprocess.run([os.path.join(build, "cowfs-populate"), "-f", "1500", "-d", "500", "-b", "1000", "-S", "2",
                          img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    with ctx.subtest("populated_on_the_host"):
        check(pop.returncode == 0 and b"1500 files of 1000 bytes in 3 directories, 2 snapshots" in pop.stdout,
              pop.stdout.decode(errors="replace"))
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=[{"kind": "nvme", "path": img, "lba": 512}], config=["mount = all"])
    with ctx.subtest("mounted_with_its_time"):
        check(re.search(r"^fs: nvme0n1 mounted on /nvme0n1: \d+ of \d+ MiB free, \d+ inodes, \d+ us$", boot, re.M),
              boot[-2000:])
    with ctx.subtest("names"):
        out = ok(m, "ls /nvme0n1")
        check(out.split() == ["d0000", "d0001", "d0002"], out)
        out = ok(m, "ls /nvme0n1/d0002")
        names = out.split()
        check(names == [f"f{n:07d}" for n in range(1000, 1500)], f"{len(names)} names: {out[:300]}")
    with ctx.subtest("contents"):
        # Files written once hold their own number; the first file of each
        # directory that existed at a snapshot was rewritten after it.
        for path, n, tag in (("d0001/f0000777", 777, 777), ("d0002/f0001499", 1499, 1499),
                             ("d0000/f0000000", 0, 2), ("d0001/f0000500", 500, 2),
                             ("d0002/f0001000", 1000, 1000)):
            want = populated_content(n, tag, 1000).encode()
            got = cksum(m, f"/nvme0n1/{path}")
            check(got == (1000, zlib.crc32(want)), f"{path}: size/crc {got}, expected {(1000, zlib.crc32(want))}")
    with ctx.subtest("snapshots"):
        out = ok(m, "snapshot list /nvme0n1")
        check(re.search(r"^pop-1\s+snapshot", out, re.M) and re.search(r"^pop-2\s+snapshot", out, re.M), out)
    with ctx.subtest("fsck_clean"):
        out = shell(m, "fsck /nvme0n1", 300)
        check(re.search(r"^fsck: /nvme0n1: clean", out, re.M), out)
    with ctx.subtest("filefrag"):
        out = ok(m, "filefrag /nvme0n1/d0001/f0000777")
        ext = re.findall(r"^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$", out, re.M)
        check(len(ext) == 1 and ext[0][0] == "0" and ext[0][1] == "0" and ext[0][3] == "1000" and "last" in ext[0][4]
              and re.search(r"^/nvme0n1/d0001/f0000777: 1 extent$", out, re.M), out)
        # Written before snapshot pop-2 and never since: shared with it.
        check("shared" in ext[0][4], f"not shared with the snapshot: {out}")
        one_line_error(m, "filefrag /nvme0n1/nothing", r"(?i)^filefrag: /nvme0n1/nothing: .*no such")
    poweroff(m)
    with ctx.subtest("filefrag_address_holds_the_data"):
        # The disk address filefrag gave is where the file's bytes are.
        with open(img, "rb") as f:
            f.seek(int(ext[0][2]))
            got = f.read(1000)
        check(got == populated_content(777, 777, 1000).encode(), f"at byte {ext[0][2]}: {got[:40]!r}")
