"""tools/dmlog.py, the dm-log-writes reader, on the host: on logs it writes
itself (every entry kind, an uncommitted tail, power-cut replay with and
without a random subset of the unflushed writes) and on logs qemu's own
blklogwrites driver writes through qemu-io (the format as qemu has it: an
emulated FUA is a write then a flush; an abort leaves an uncommitted
tail)."""
import os
import random
import shutil
import subprocess
import tempfile

from harness import REPO, qemu_test, check

import dmlog  # tools/ is on the path (harness)

SS = 512


def block(byte, n=1):
    return bytes([byte]) * (SS * n)


def read_at(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


@qemu_test(weight=0)
def dmlog_reader(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        log_path, img = os.path.join(tmp, "w.log"), os.path.join(tmp, "w.img")
        w = dmlog.Writer(log_path)
        w.write(0, block(0xA1, 2))          # 0
        w.write(10, block(0xA2))            # 1
        w.flush()                           # 2
        w.write(0, block(0xB1))             # 3: overwrites sector 0
        w.write(20, block(0xB2), fua=True)  # 4: FUA, durable without a flush
        w.discard(10, 1)                    # 5
        w.write(30, block(0xB3))            # 6
        w.close()                           # superblock: 3 entries
        log = dmlog.read_log(log_path)

        with ctx.subtest("entries"):
            kinds = [e.kind() for e in log.entries]
            check(kinds == ["write", "write", "flush", "write", "write+fua", "discard", "write"],
                  f"kinds {kinds}")
            check(log.nr_entries == 3, f"nr_entries {log.nr_entries}")
            check([e.committed for e in log.entries] == [True] * 3 + [False] * 4,
                  "committed flags wrong")
            check(log.data(log.entries[1]) == block(0xA2), "data of entry 1")
            check((log.entries[4].sector, log.entries[4].nr_sectors) == (20, 1), "entry 4 place")

        with ctx.subtest("unflushed"):
            lost = [e.index for e in dmlog.unflushed(log)]
            check(lost == [3, 6], f"unflushed {lost}, want [3, 6] (4 is FUA, 5 a discard)")
            check([e.index for e in dmlog.unflushed(log, upto=2)] == [0, 1],
                  "before the flush both writes are unflushed")
            check(dmlog.unflushed(log, upto=3) == [], "after the flush nothing is unflushed")

        with ctx.subtest("replay_worst_case"):
            lost = dmlog.replay(log, img, size=64 * SS)
            check([e.index for e in lost] == [3, 6], f"left out {lost}")
            check(read_at(img, 0, 2 * SS) == block(0xA1, 2), "sector 0-1 not the flushed data")
            check(read_at(img, 10 * SS, SS) == block(0xA2), "discard must leave old data")
            check(read_at(img, 20 * SS, SS) == block(0xB2), "FUA write missing")
            check(read_at(img, 30 * SS, SS) == bytes(SS), "unflushed write applied")
            check(os.path.getsize(img) == 64 * SS, "size")

        with ctx.subtest("replay_after_n"):
            dmlog.replay(log, img, size=64 * SS, after=1)
            check(read_at(img, 0, 11 * SS) == bytes(11 * SS), "cut before the flush keeps nothing")
            base = os.path.join(tmp, "base.img")
            with open(base, "wb") as f:
                f.write(block(0x55, 64))
            dmlog.replay(log, img, base=base, after=2)
            check(read_at(img, 0, SS) == block(0xA1) and read_at(img, 40 * SS, SS) == block(0x55),
                  "base image not under the replayed writes")

        with ctx.subtest("replay_random_subset"):
            seen = set()
            for seed in range(16):
                lost = dmlog.replay(log, img, size=64 * SS, rng=random.Random(seed))
                kept3, kept6 = read_at(img, 0, SS) == block(0xB1), read_at(img, 30 * SS, SS) == block(0xB3)
                check(kept3 == (3 not in [e.index for e in lost]), f"seed {seed}: entry 3 vs lost list")
                check(kept6 == (6 not in [e.index for e in lost]), f"seed {seed}: entry 6 vs lost list")
                check(read_at(img, 20 * SS, SS) == block(0xB2), f"seed {seed}: FUA write lost")
                seen.add((kept3, kept6))
            check(len(seen) == 4, f"16 seeds gave only subsets {sorted(seen)}")

        with ctx.subtest("never_flushed"):
            w = dmlog.Writer(os.path.join(tmp, "n.log"))
            w.write(4, block(0xC1))
            w.close()
            nlog = dmlog.read_log(os.path.join(tmp, "n.log"))
            check(nlog.nr_entries == 0 and [e.index for e in dmlog.unflushed(nlog)] == [0],
                  "a log without a flush (zero superblock) must list its writes as unflushed")

        with ctx.subtest("bad_input"):
            bad = os.path.join(tmp, "bad.log")
            with open(bad, "wb") as f:
                f.write(b"\1" * SS)
            try:
                dmlog.read_log(bad)
                check(False, "a zero file parsed as a log")
            except dmlog.LogError as e:
                check("magic" in str(e), str(e))
            shutil.copyfile(log_path, bad)
            with open(bad, "r+b") as f:          # committed entry 1: bad flags
                f.seek(SS + 3 * SS + 16)
                f.write((0x80).to_bytes(8, "little"))
            try:
                dmlog.read_log(bad)
                check(False, "a bad committed entry was accepted")
            except dmlog.LogError as e:
                check("entry 1" in str(e) and "flags" in str(e), str(e))
            shutil.copyfile(log_path, bad)          # cut the tail mid-data
            with open(bad, "r+b") as f:
                f.truncate(os.path.getsize(log_path) - 100)
            check(len(dmlog.read_log(bad).entries) == 6, "a torn last entry must end the tail")

        with ctx.subtest("cli"):
            tool = os.path.join(REPO, "tools", "dmlog.py")
            p = subprocess.run(["python3", tool, "check", log_path], capture_output=True, text=True)
            check(p.returncode == 1 and "not durable: entry 3" in p.stdout, p.stdout + p.stderr)
            p = subprocess.run(["python3", tool, "list", log_path], capture_output=True, text=True)
            check(p.returncode == 0 and len(p.stdout.splitlines()) == 8, p.stdout + p.stderr)
            p = subprocess.run(["python3", tool, "replay", log_path, img, "--after", "99"],
                               capture_output=True, text=True)
            check(p.returncode == 2 and "not in the log" in p.stderr, p.stdout + p.stderr)


def qemu_io(img, log, *cmds):
    opts = (f"driver=blklogwrites,file.driver=file,file.filename={img},"
            f"log.driver=file,log.filename={log},log-sector-size={SS}")
    args = ["qemu-io", "--image-opts", opts]
    for c in cmds:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@qemu_test(weight=0)
def dmlog_qemu_format(ctx):
    check(shutil.which("qemu-io"), "qemu-io missing (Debian package qemu-utils; make deps)")
    with tempfile.TemporaryDirectory() as tmp:
        img, log_path, out = (os.path.join(tmp, n) for n in ("q.img", "q.log", "r.img"))
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        open(log_path, "wb").close()
        # abort: qemu-io dies without the flush of a clean close.
        qemu_io(img, log_path, "write -P 0xab 4096 8k", "write -f -P 0xcd 0 512",
                "write -z 131072 4k", "flush", "write -P 0x11 65536 1k", "abort")
        log = dmlog.read_log(log_path)
        with ctx.subtest("entries"):
            writes = [(e.sector * SS, e.nr_sectors * SS) for e in log.entries if e.is_write]
            check(writes == [(4096, 8192), (0, 512), (131072, 4096), (65536, 1024)],
                  f"writes {writes}")
            check(log.data(log.entries[0]) == b"\xab" * 8192, "data of the first write")
            check(log.entries[2].kind() == "flush", "FUA write not followed by a flush "
                  f"({[e.kind() for e in log.entries]})")
            check(not log.entries[-1].committed, "the tail after the last flush is committed")
        with ctx.subtest("unflushed_tail"):
            lost = [(e.sector * SS, e.nr_sectors * SS) for e in dmlog.unflushed(log)]
            check(lost == [(65536, 1024)], f"unflushed {lost}")
        with ctx.subtest("replay_matches_qemu"):
            # Replaying everything gives qemu's own image; the worst case
            # lacks the unflushed writes.
            dmlog.replay(log, out, size=1 << 20, keep_all=True)
            check(read_at(out, 0, 1 << 20) == read_at(img, 0, 1 << 20), "full replay differs from qemu's image")
            dmlog.replay(log, out, size=1 << 20)
            check(read_at(out, 65536, 1024) == bytes(1024), "worst case kept an unflushed write")
            check(read_at(out, 4096, 8192) == b"\xab" * 8192, "worst case lost a flushed write")
