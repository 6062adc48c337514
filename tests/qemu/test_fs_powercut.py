"""Power cuts that really lose the device's cache, on NVMe and AHCI.

Killing qemu loses nothing (its writeback cache is the host's page cache),
so the disks run under qemu's blklogwrites driver, which records every write
and flush the device completed.  The appliance formats the disks at boot
and runs a mixed workload: files written and fsync'd (`fill -s` prints
"fsynced" only after fsync returned), lines appended to a file whose name is
committed, each followed by `fsync` (through the intent log: the shell says
"by log"), files written without fsync, renames and removals.  After each fsync'd file the host notes how long the log is,
so for any cut point it knows which files were acknowledged durable.

Then, from the log, crash images: cut right after a flush (several, spread
over the run, and always the last), and cut between flushes with a random
subset of the writes since the last flush surviving (a device may write
back any part of its cache); and around two of the appends' fsyncs that
went through the intent log: right after their FLUSH (only the log's replay
brings the line back) and just before it with a random part of the data and
log block writes surviving (the log block may be there without its data).  Each image is attached to a new boot (several
per boot), mounted without formatting, checked (`fsck`) and every file
acknowledged durable before the cut is compared with its pattern.  The
host's fsck checks each image too.

fs_process_death: qemu killed in the middle of the workload (process death,
the host keeps what qemu wrote): the next boot mounts, fsck is clean and the
fsync'd files are intact.

POWERCUT_CUTS (environment) sets the number of cut points per disk; `make
stress` runs many more.
"""
import os
import random
import re
import subprocess
import time

import blkutil
import dmlog
import harness
from harness import qemu_test, check, boot_to_prompt, shell, poweroff

REPO = harness.REPO
SIZE = 64 << 20
CUTS = int(os.environ.get("POWERCUT_CUTS", "6"))
# Per round: one fsync'd file, one unsynced file, a rename of an old one.
ROUNDS = 6


APPENDS = 2      # lines appended and fsync'd to the append file per round


def append_line(i, j):
    return f"line-{i}-{j}-" + "x" * (7 * (i + j) % 50)


def durable_workload(ctx, m, mount, logpath, rounds=ROUNDS, seed0=100, logged=None):
    """Runs the workload; returns [(log length after fsync, name, size,
    seed)] for every fsync'd file, in order; for the append file size is
    the number of lines fsync'd and seed is None."""
    acked = []
    rng = random.Random(seed0)
    lines = 0
    by_log = 0
    for i in range(rounds):
        size = rng.choice([4096, 12345, 200000, 1 << 20])
        seed = seed0 + i
        out = shell(m, f"fill -s {mount}/s{i} {size} {seed}", 300)
        check(re.search(r" fsynced ", out), f"fill -s {mount}/s{i}:\n{out}")
        n = len(dmlog.read_log(logpath).entries)
        acked.append((n, f"s{i}", size, seed))
        # Right after that commit no name has changed: these fsyncs go
        # through the intent log (the first one creates the file: commits).
        for j in range(APPENDS):
            shell(m, f"append {mount}/applog {append_line(i, j)}")
            out = shell(m, f"fsync {mount}/applog", 300)
            check(re.search(r"^fsync \S+ us \d+ by (log|commit)", out, re.M), f"fsync {mount}/applog:\n{out}")
            by_log += " by log" in out
            lines += 1
            n = len(dmlog.read_log(logpath).entries)
            acked.append((n, "applog", lines, None))
            if logged is not None and " by log" in out:
                logged.append(n)
        shell(m, f"fill {mount}/u{i} {rng.choice([5000, 70000])} {seed + 1000}", 300)
        if i >= 2:
            shell(m, f"mv {mount}/u{i - 2} {mount}/moved{i}")
            shell(m, f"rm {mount}/moved{i}")
    check(by_log >= rounds, f"only {by_log} of the appends' fsyncs went through the intent log")
    return acked


def cut_points(log, count, rng, first=0, logged=()):
    """(entry index to cut after, random survivors?) pairs: flushes spread
    over the log plus the last entry, and points between flushes; none
    before entry `first` (the format at boot: a disk cut during mkfs is
    not a filesystem yet); for two of the log lengths in `logged` (taken
    right after a logged fsync returned), right after its last flush and
    just before it."""
    flushes = [e.index for e in log.entries if e.flags & dmlog.FLUSH and e.index >= first]
    n = len(log.entries)
    pts = set()
    if flushes:
        step = max(1, len(flushes) // max(1, count // 2))
        pts.update((f, False) for f in flushes[::step])
        pts.add((flushes[-1], False))
    while len(pts) < count and n > first + 1:
        pts.add((rng.randrange(first, n), True))
    pts.add((n - 1, True))
    flushes_all = [e.index for e in log.entries if e.flags & dmlog.FLUSH]
    for ack in list(logged)[1::5][:2]:
        last = max((f for f in flushes_all if f < ack), default=None)
        if last is not None and last > first:
            pts.add((last, False))
            pts.add((last - 1, True))
    return sorted(pts)


def build_crash_images(log, base_path, acked, count, seed, first=0, logged=()):
    """[(image path, files that must be intact, description)]."""
    rng = random.Random(seed)
    out = []
    for k, (cut, partial) in enumerate(cut_points(log, count, rng, first, logged)):
        path = f"{base_path}.cut{k}"
        lost = dmlog.replay(log, path, after=cut, rng=random.Random(seed + k) if partial else None, size=SIZE)
        must = [(name, size, s) for n, name, size, s in acked if n <= cut + 1 and s is not None]
        lines = [size for n, name, size, s in acked if n <= cut + 1 and s is None]
        if lines:
            must.append(("applog", max(lines), None))
        out.append((path, must, f"cut after log entry {cut} of {len(log.entries)}"
                    f"{f', {len(lost)} unflushed writes lost at random' if partial else ''}"))
    return out


def host_fsck(path):
    p = subprocess.run([os.path.join(REPO, "build", "cowfs"), "check", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace")


def check_images(ctx, kind, images, lba):
    """Boots with up to 4 crash images at a time; every one must mount,
    fsck clean and hold its durable files."""
    for first in range(0, len(images), 4):
        batch = images[first:first + 4]
        if kind == "nvme":
            disks = [{"kind": "nvme", "path": p, "lba": lba} for p, _, _ in batch]
            names = [f"nvme{i}n1" for i in range(len(batch))]
        else:
            disks = [{"kind": "sata", "path": p} for p, _, _ in batch]
            names = [f"sata{i}" for i in range(len(batch))]
        m = ctx.machine(f"{kind}-check{first}")
        boot = boot_to_prompt(m, smp=2, disks=disks, config=["mount = all", "format = never"])
        for dev, (path, must, what) in zip(names, batch):
            with ctx.subtest(f"{kind}_{os.path.basename(path).split('.')[-1]}"):
                check(re.search(rf"^fs: {dev} mounted on /{dev}", boot, re.M),
                      f"{what}: {dev} did not mount:\n{boot[-2500:]}")
                out = shell(m, f"fsck /{dev}", 300)
                check(re.search(rf"^fsck: /{dev}: clean", out, re.M), f"{what}: {out}")
                for name, size, seed in must:
                    if seed is None:
                        # The fsync'd lines, then only lines appended after them.
                        out = shell(m, f"cat /{dev}/{name}", 300)
                        got = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("line-")]
                        want = [append_line(i, j) for i in range(ROUNDS) for j in range(APPENDS)]
                        check(len(got) >= size and got == want[:len(got)],
                              f"{what}: /{dev}/{name}: {size} fsync'd lines, read {len(got)}:\n{out[-1500:]}")
                        continue
                    out = shell(m, f"cksum /{dev}/{name}", 300)
                    mt = re.search(r"size (\d+) crc32 ([0-9a-f]{8})", out)
                    want = blkutil.pattern_crc32(seed, size)
                    check(mt and int(mt.group(1)) == size and int(mt.group(2), 16) == want,
                          f"{what}: fsync'd /{dev}/{name} ({size} bytes) after the cut:\n{out}")
        poweroff(m)
        for path, _, what in batch:
            rc, out = host_fsck(path)
            with ctx.subtest(f"{kind}_{os.path.basename(path).split('.')[-1]}_host_fsck"):
                check(rc == 0, f"{what}: host fsck exit {rc}\n{out}")
            os.remove(path)


def powercut(ctx, kind):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, f"fs_powercut_{kind}", {"d": f"{kind}.img"})
    img = paths["d"]
    log = img + ".log"
    lba = 4096 if kind == "nvme" else 512
    disk = {"kind": kind, "path": img, "size": "64M", "logwrites": log}
    if kind == "nvme":
        disk["lba"] = lba
    dev = "nvme0n1" if kind == "nvme" else "sata0"
    m = ctx.machine(f"{kind}-work")
    boot_to_prompt(m, smp=2, disks=[disk], config=["mount = all", "format = blank"])
    # The format at boot ends with its commit: cuts start after it.
    formatted = max(e.index for e in dmlog.read_log(log).entries if e.flags & dmlog.FLUSH)
    logged = []
    acked = durable_workload(ctx, m, f"/{dev}", log, logged=logged)
    m.kill()      # the power cut: nothing of the guest's shutdown runs
    parsed = dmlog.read_log(log)
    with ctx.subtest(f"{kind}_fsync_flushes"):
        # Each fsync'd file: the device saw a flush between the previous
        # one's acknowledgement and this one's (the log may already hold
        # later background writes, so this is the property that holds).
        flushes = [e.index for e in parsed.entries if e.flags & dmlog.FLUSH]
        prev = 0
        for n, name, _, _ in acked:
            check(any(prev <= f < n for f in flushes), f"no flush in the log for the fsync of {name}")
            prev = n
    images = build_crash_images(parsed, img, acked, CUTS, 7 if kind == "nvme" else 8, formatted, logged)
    check_images(ctx, kind, images, lba)
    for p in (img, log):
        os.remove(p)


@qemu_test(weight=6)
def fs_powercut_nvme(ctx):
    powercut(ctx, "nvme")


@qemu_test(weight=6)
def fs_powercut_ahci(ctx):
    powercut(ctx, "sata")


@qemu_test(weight=3)
def fs_process_death(ctx):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, "fs_process_death", {"d": "nvme.img"})
    m = ctx.machine("work")
    boot_to_prompt(m, smp=2, disks=[{"kind": "nvme", "path": paths["d"], "size": "64M"}],
                   config=["mount = all", "format = blank"])
    out = shell(m, "fill -s /nvme0n1/kept 300000 41", 300)
    check(" fsynced " in out, out)
    # Killed while a big unsynced write is under way.
    m.sendline("fill /nvme0n1/inflight 16m 42")
    time.sleep(random.Random(3).uniform(0.5, 2.0))
    m.kill()
    m2 = ctx.machine("after")
    boot = boot_to_prompt(m2, smp=2, disks=[{"kind": "nvme", "path": paths["d"]}],
                          config=["mount = all", "format = never"])
    with ctx.subtest("mounts"):
        check(re.search(r"^fs: nvme0n1 mounted on /nvme0n1", boot, re.M), boot[-2500:])
    with ctx.subtest("fsck_clean"):
        out = shell(m2, "fsck /nvme0n1", 300)
        check(re.search(r"^fsck: /nvme0n1: clean", out, re.M), out)
    with ctx.subtest("fsynced_intact"):
        out = shell(m2, "cksum /nvme0n1/kept", 300)
        want = blkutil.pattern_crc32(41, 300000)
        check(re.search(rf"size 300000 crc32 {want:08x}", out), out)
    poweroff(m2)
