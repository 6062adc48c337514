#!/usr/bin/env python3
"""Read write logs in the dm-log-writes format (qemu's `blklogwrites` block
driver writes them) and build the disk images a power cut would leave.

  dmlog.py list LOG                      one line per entry
  dmlog.py check LOG                     writes not covered by a later flush
                                         (or FUA); exit status 1 if any
  dmlog.py replay LOG OUT [--base IMG] [--after N] [--random SEED]
                                         the image a power cut after entry N
                                         leaves (default: after the last one)

The format (all fields little-endian; one "sector" is the log's sector size,
qemu's log-sector-size, 512 by default):

  sector 0     superblock: u64 magic 0x6a736677736872, u64 version 1,
               u64 nr_entries, u32 sectorsize, zero padding
  sector 1..   entries, each one header sector -- u64 sector, u64 nr_sectors,
               u64 flags, u64 data_len -- followed by the nr_sectors sectors
               of data the guest wrote at `sector`; a discard carries no
               data.  Flags: 1 FLUSH, 2 FUA, 4 DISCARD, 8 MARK (data_len
               bytes of a name follow the header in its sector).

The writer appends each entry once the device finished the request, so a
write the guest saw complete sits before any flush the guest issued after
it.  qemu writes the superblock only on a flush (until the first flush it
is all zeros): entries after the last flush follow in the file, and
`read_log` reads them too (they end at the file's end or at the first
header that cannot be one).
A FUA write that the block layer emulates shows up as the write followed by
a flush entry.

Power-cut model: the writes before the last flush at or before the cut, and
FUA writes, are on the medium; any subset of the other writes since that
flush may be (`replay` applies none of them, or with --random each with
probability 1/2).  A discard leaves the old data (one allowed outcome).

Python 3 stdlib only; importable (tests/qemu uses read_log, unflushed,
replay).
"""
import argparse
import random
import shutil
import struct
import sys

MAGIC = 0x6A736677736872
VERSION = 1
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
FLAG_MASK = FLUSH | FUA | DISCARD | MARK
SUPER = struct.Struct("<QQQI")
HEADER = struct.Struct("<QQQQ")


class LogError(Exception):
    """The file is not a dm-log-writes log (or is damaged before its tail)."""


class Entry:
    """One logged request.  index counts from 0; offset is the byte offset
    of its data in the log file; committed: counted in the superblock (a
    flush came at or after it)."""
    __slots__ = ("index", "sector", "nr_sectors", "flags", "offset", "mark", "committed")

    def __init__(self, index, sector, nr_sectors, flags, offset, mark, committed):
        self.index, self.sector, self.nr_sectors, self.flags = index, sector, nr_sectors, flags
        self.offset, self.mark, self.committed = offset, mark, committed

    @property
    def is_write(self):
        """A write (or write-zeroes: its zeros are logged as data)."""
        return self.nr_sectors > 0 and not self.flags & (DISCARD | MARK)

    def kind(self):
        if self.flags & MARK:
            return "mark"
        if self.flags & DISCARD:
            return "discard"
        if self.nr_sectors == 0:
            return "flush" if self.flags & FLUSH else "empty"
        return "write" + ("+fua" if self.flags & FUA else "") + ("+flush" if self.flags & FLUSH else "")

    def __repr__(self):
        return f"Entry({self.index} {self.kind()} sector={self.sector} n={self.nr_sectors})"


class Log:
    """A parsed log: sectorsize, nr_entries (from the superblock), entries
    (all of them, the uncommitted tail too) and path."""

    def __init__(self, path, sectorsize, nr_entries, entries):
        self.path, self.sectorsize, self.nr_entries, self.entries = path, sectorsize, nr_entries, entries

    def data(self, e):
        """The bytes entry e wrote."""
        with open(self.path, "rb") as f:
            f.seek(e.offset)
            return f.read(e.nr_sectors * self.sectorsize)


def read_log(path, sectorsize=512):
    """Parse the log at path; raises LogError on a bad superblock or a bad
    entry among the committed ones.  sectorsize: the writer's, needed only
    for a log whose superblock was never written (no flush yet)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < SUPER.size:
        raise LogError(f"{path}: {len(raw)} bytes, too short for a superblock")
    magic, version, nr_entries, ss = SUPER.unpack_from(raw, 0)
    if magic == 0 and version == 0 and nr_entries == 0 and ss == 0:
        magic, version, ss = MAGIC, VERSION, sectorsize    # never flushed
    if magic != MAGIC:
        raise LogError(f"{path}: bad magic 0x{magic:x} (want 0x{MAGIC:x})")
    if version != VERSION:
        raise LogError(f"{path}: unsupported version {version}")
    if ss < HEADER.size or ss & (ss - 1):
        raise LogError(f"{path}: bad sector size {ss}")
    entries = []
    pos = ss
    while pos + HEADER.size <= len(raw):
        idx = len(entries)
        committed = idx < nr_entries
        sector, nr, flags, data_len = HEADER.unpack_from(raw, pos)
        why = None
        if flags & ~FLAG_MASK:
            why = f"unknown flags 0x{flags:x}"
        elif sector == 0 and nr == 0 and flags == 0:
            why = "empty header"
        elif data_len > ss - HEADER.size:
            why = f"data_len {data_len} does not fit the header sector"
        data = pos + ss
        end = data + (0 if flags & DISCARD else nr * ss)
        if why is None and end > len(raw):
            why = f"data runs past the end of the file ({end} > {len(raw)})"
        if why:
            if committed:
                raise LogError(f"{path}: entry {idx} at byte {pos}: {why}")
            break              # end of the uncommitted tail
        mark = raw[pos + HEADER.size:pos + HEADER.size + data_len].rstrip(b"\0").decode(
            "utf-8", "replace") if flags & MARK else None
        entries.append(Entry(idx, sector, nr, flags, data, mark, committed))
        pos = end
    if len(entries) < nr_entries:
        raise LogError(f"{path}: superblock counts {nr_entries} entries, file holds {len(entries)}")
    return Log(path, ss, nr_entries, entries)


def last_flush(entries, upto=None):
    """Index of the last flush entry among entries[:upto], or -1."""
    n = len(entries) if upto is None else upto
    for i in range(n - 1, -1, -1):
        if entries[i].flags & FLUSH:
            return i
    return -1


def unflushed(log, upto=None):
    """The writes among the first `upto` entries (default all) that no later
    flush among them covers and that are not FUA: what a power cut right
    after entry upto-1 may lose."""
    n = len(log.entries) if upto is None else upto
    f = last_flush(log.entries, n)
    return [e for e in log.entries[f + 1:n] if e.is_write and not e.flags & FUA]


def replay(log, out, base=None, after=None, rng=None, size=None, keep_all=False):
    """Write to `out` the image a power cut after entry `after` (default:
    the last entry) leaves: `base` (or zeros of `size` bytes, default the
    highest written byte) with every write up to the last flush and every
    FUA write applied, plus each other write since that flush when rng
    (a random.Random) says so, or all of them with keep_all (the outcome
    where the cache had written everything).  Returns the writes left out."""
    n = len(log.entries) if after is None else after + 1
    if not 0 <= n <= len(log.entries):
        raise ValueError(f"entry {after} is not in the log (0..{len(log.entries) - 1})")
    f = last_flush(log.entries, n)
    if base:
        shutil.copyfile(base, out)
    else:
        if size is None:
            size = max([(e.sector + e.nr_sectors) * log.sectorsize for e in log.entries
                        if e.is_write] + [0])
        with open(out, "wb") as o:
            o.truncate(size)
    lost = []
    with open(log.path, "rb") as src, open(out, "r+b") as o:
        for e in log.entries[:n]:
            if not e.is_write:
                continue
            durable = e.index < f or e.flags & FUA
            if not (durable or keep_all or (rng and rng.random() < 0.5)):
                lost.append(e)
                continue
            src.seek(e.offset)
            o.seek(e.sector * log.sectorsize)
            o.write(src.read(e.nr_sectors * log.sectorsize))
    return lost


# -- writing logs (for tests of this module and of crash replay) -----------

class Writer:
    """Writes a log the way qemu's blklogwrites does: write(), discard(),
    flush(); close() leaves nr_entries as of the last flush, like a writer
    killed after it."""

    def __init__(self, path, sectorsize=512):
        self.f = open(path, "wb")
        self.ss, self.count = sectorsize, 0
        self.f.write(bytes(sectorsize))   # superblock: written on the first flush

    def _super(self, n):
        self.f.seek(0)
        self.f.write(SUPER.pack(MAGIC, VERSION, n, self.ss).ljust(self.ss, b"\0"))
        self.f.seek(0, 2)

    def _entry(self, sector, nr, flags, data=b""):
        self.f.write(HEADER.pack(sector, nr, flags, 0).ljust(self.ss, b"\0") + data)
        self.count += 1

    def write(self, sector, data, fua=False):
        if not data or len(data) % self.ss:
            raise ValueError("data must be a whole number of sectors")
        self._entry(sector, len(data) // self.ss, FUA if fua else 0, data)

    def discard(self, sector, nr):
        self._entry(sector, nr, DISCARD)

    def flush(self):
        self._entry(0, 0, FLUSH)
        self._super(self.count)

    def close(self):
        self.f.close()


# -- command line ----------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list").add_argument("log")
    sub.add_parser("check").add_argument("log")
    r = sub.add_parser("replay")
    r.add_argument("log")
    r.add_argument("out")
    r.add_argument("--base", help="image before the log's first entry (default: zeros)")
    r.add_argument("--size", type=int, help="size of the zero base image in bytes")
    r.add_argument("--after", type=int, help="cut the power after this entry (default: the last)")
    r.add_argument("--random", type=int, metavar="SEED",
                   help="keep each unflushed write with probability 1/2 (default: lose them all)")
    a = ap.parse_args(argv)
    try:
        log = read_log(a.log)
    except (LogError, OSError) as e:
        print(f"dmlog: {e}", file=sys.stderr)
        return 2
    ss = log.sectorsize
    if a.cmd == "list":
        print(f"# sector size {ss}, {log.nr_entries} committed entries, {len(log.entries)} in the file")
        for e in log.entries:
            extra = f" mark={e.mark!r}" if e.mark is not None else ""
            print(f"{e.index:6d} {e.kind():12s} byte {e.sector * ss:>12d} len {e.nr_sectors * ss:>10d}"
                  f"{'' if e.committed else ' (uncommitted)'}{extra}")
        return 0
    if a.cmd == "check":
        lost = unflushed(log)
        for e in lost:
            print(f"not durable: entry {e.index} write byte {e.sector * ss} len {e.nr_sectors * ss}: "
                  "no flush after it")
        print(f"{len(log.entries)} entries, {sum(e.is_write for e in log.entries)} writes, "
              f"{sum(bool(e.flags & FLUSH) for e in log.entries)} flushes, {len(lost)} not durable")
        return 1 if lost else 0
    try:
        lost = replay(log, a.out, base=a.base, after=a.after, size=a.size,
                      rng=random.Random(a.random) if a.random is not None else None)
    except ValueError as e:
        print(f"dmlog: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: {len(lost)} unflushed writes left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
