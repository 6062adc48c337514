#!/usr/bin/env python3
"""Mount time of a large filesystem in the appliance (issue goal: a
filesystem with 100k files and a few snapshots mounts in under 100 ms of
kernel time).

    python3 tools/bench_fs_mount.py [--files N] [--snapshots K] [--size SIZE] [--mounts M]

Builds an image on the host (mkfs.cowfs, then cowfs-populate: N files of
4 KiB in directories of 1000, K snapshots spread through the run), boots
the appliance with it as an NVMe disk and then as an AHCI disk, and reads
the time the kernel spent in each mount from its own line ("fs: DEV
mounted on /DEV: ... N us"): the boot mount, then M-1 more after
`umount`.  One machine-readable line per disk:

    bench fs-mount dev=nvme0n1 files=100000 snapshots=3 disk_mib=4096 mounts=3 us_median=N us_max=N goal_us=100000 met=yes

`make bench` runs it with the defaults.  Images go to a temporary folder
and are removed afterwards.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "qemu"))
import harness  # noqa: E402
from harness import boot_to_prompt, shell, poweroff, vm  # noqa: E402

GOAL_US = 100_000
MOUNTED = r"^fs: {dev} mounted on /{dev}: \d+ of \d+ MiB free, \d+ inodes, (\d+) us$"


def mount_times(img, kind, dev, mounts):
    m = vm.Machine(f"bench.fs-mount.{dev}")
    try:
        disk = {"kind": kind, "path": img}
        if kind == "nvme":
            disk["lba"] = 512
        boot = boot_to_prompt(m, smp=2, disks=[disk], config=["mount = all"])
        times = []
        mt = re.search(MOUNTED.format(dev=dev), boot, re.M)
        if not mt:
            raise SystemExit(f"bench_fs_mount: {dev}: no mount line at boot:\n{boot[-1500:]}")
        times.append(int(mt.group(1)))
        for _ in range(mounts - 1):
            out = shell(m, f"umount /{dev}", 300)
            if not re.search(rf"^fs: /{dev} unmounted", out, re.M):
                raise SystemExit(f"bench_fs_mount: umount /{dev}: {out}")
            out = shell(m, f"mount {dev}", 300)
            mt = re.search(MOUNTED.format(dev=dev), out, re.M)
            if not mt:
                raise SystemExit(f"bench_fs_mount: mount {dev}: {out}")
            times.append(int(mt.group(1)))
        poweroff(m)
        return times
    finally:
        m.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--snapshots", type=int, default=3)
    ap.add_argument("--size", default="4G", help="image size (mkfs.cowfs -s)")
    ap.add_argument("--mounts", type=int, default=3)
    a = ap.parse_args()
    if a.mounts < 1 or a.files < 0 or a.snapshots < 0:
        ap.error("--mounts must be 1 or more, --files and --snapshots 0 or more")
    build = os.path.join(REPO, "build")
    tmp = tempfile.mkdtemp(prefix="bench-fs-mount.")
    try:
        master = os.path.join(tmp, "populated.img")
        subprocess.run([os.path.join(build, "mkfs.cowfs"), "-s", a.size, master], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        pop = subprocess.run([os.path.join(build, "cowfs-populate"), "-f", str(a.files), "-d", "1000", "-b", "4096",
                              "-S", str(a.snapshots), master], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=3600)
        if pop.returncode:
            raise SystemExit(f"bench_fs_mount: cowfs-populate failed:\n{pop.stdout}")
        print(pop.stdout.strip())
        disk_mib = os.path.getsize(master) >> 20
        for kind, dev in (("nvme", "nvme0n1"), ("sata", "sata0")):
            img = os.path.join(tmp, f"{dev}.img")
            subprocess.run(["cp", "--sparse=always", master, img], check=True)
            times = mount_times(img, kind, dev, a.mounts)
            med = int(statistics.median(times))
            print(f"bench fs-mount dev={dev} files={a.files} snapshots={a.snapshots} disk_mib={disk_mib} "
                  f"mounts={len(times)} us={','.join(map(str, times))} us_median={med} us_max={max(times)} "
                  f"goal_us={GOAL_US} met={'yes' if med < GOAL_US else 'no'}", flush=True)
            os.remove(img)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
