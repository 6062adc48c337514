"""Block-storage test helpers (Python 3 stdlib only).

- The shared data pattern: the 8-byte little-endian word at absolute device
  byte offset 8*i is splitmix64((SEED << 40) ^ i), the same definition the
  kernel's `blk write/verify` use, so the host can check a disk image.
- Disk-image helpers: check that a byte range of a raw image holds the
  pattern (all of it or evenly spread samples).
- blkdebug rule files (qemu's error injection) and the shell-output parsers
  for lsblk, blk verify and bench lines.

`python3 tests/qemu/blkutil.py` runs the self-check of the pattern.
"""
import os
import re
import shutil
import struct
import zlib
import subprocess
import tempfile

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(x):
    z = (x + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def pattern_word(seed, i):
    """The word at device byte offset 8*i for SEED."""
    return splitmix64(((seed << 40) ^ i) & MASK)


def pattern_bytes(seed, offset, length):
    """The pattern bytes for device byte range [offset, offset+length); any
    byte range (the page cache writes unaligned ones)."""
    first, end = offset // 8, (offset + length + 7) // 8
    words = [pattern_word(seed, i) for i in range(first, end)]
    skip = offset - first * 8
    return struct.pack(f"<{len(words)}Q", *words)[skip:skip + length]


_CRC_CACHE = {}


def pattern_crc32(seed, size):
    """zlib's CRC-32 of the first `size` pattern bytes for SEED (what the
    guest's `cksum` prints for a file `fill` wrote from offset 0)."""
    key = (seed, size)
    if key not in _CRC_CACHE:
        crc = 0
        for off in range(0, size, 1 << 20):
            crc = zlib.crc32(pattern_bytes(seed, off, min(1 << 20, size - off)), crc)
        _CRC_CACHE[key] = crc
    return _CRC_CACHE[key]


# -- self-check -----------------------------------------------------------

# splitmix64 as a generator seeded with 0 (Vigna's reference splitmix64.c)
# yields these; our splitmix64(x) is that generator's output for the state
# x, so the k-th output is splitmix64(k * GOLDEN).
REFERENCE_SEED0 = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F,
                   0xF88BB8A8724C81EC]

C_CHECK = r"""
#include <stdio.h>
#include <stdint.h>
static uint64_t sm(uint64_t x) {
	uint64_t z = x + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
int main(void) {
	static const uint64_t seeds[] = { 1, 7, 0xffffff };
	for (unsigned s = 0; s < 3; s++)
		for (uint64_t i = 0; i < 4; i++) {
			uint64_t idx = i * 100003;
			printf("%llu %llu %016llx\n", (unsigned long long)seeds[s],
			       (unsigned long long)idx,
			       (unsigned long long)sm((seeds[s] << 40) ^ idx));
		}
	return 0;
}
"""


def selfcheck():
    """Raise AssertionError unless the Python pattern matches the published
    splitmix64 reference outputs and an independent C implementation
    (compiled here when a C compiler exists).  Returns a short note."""
    got = [splitmix64(k * GOLDEN & MASK) for k in range(len(REFERENCE_SEED0))]
    if got != REFERENCE_SEED0:
        raise AssertionError("splitmix64 differs from the reference: "
                             + " ".join(f"{g:016x}" for g in got))
    # Word layout: little-endian, word i at byte 8*i.
    b = pattern_bytes(3, 16, 16)
    if b[:8] != struct.pack("<Q", pattern_word(3, 2)) or len(b) != 16:
        raise AssertionError("pattern_bytes layout is wrong")
    if pattern_bytes(3, 19, 5) != b[3:8] or pattern_bytes(3, 21, 9) != b[5:14]:
        raise AssertionError("pattern_bytes of an unaligned range is wrong")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return "reference values ok (no C compiler for the cross-check)"
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "sm.c"), os.path.join(d, "sm")
        with open(src, "w") as f:
            f.write(C_CHECK)
        subprocess.run([cc, "-O1", "-o", exe, src], check=True)
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    n = 0
    for line in out.split("\n"):
        if not line.strip():
            continue
        seed, idx, word = line.split()
        want = int(word, 16)
        have = pattern_word(int(seed), int(idx))
        if have != want:
            raise AssertionError(f"pattern seed {seed} word {idx}: python {have:016x}, C {want:016x}")
        n += 1
    if n != 12:
        raise AssertionError(f"C cross-check printed {n} values, expected 12")
    return "reference values and C cross-check ok"


# -- disk images ----------------------------------------------------------

def image_check(path, seed, offset, length, chunk=1 << 20, max_bytes=8 << 20):
    """Check that image bytes [offset, offset+length) hold SEED's pattern.
    Ranges longer than max_bytes are checked in evenly spread chunks (the
    first and last chunk always).  Returns None or a description of the
    first mismatch."""
    if length <= max_bytes:
        pieces = [(offset, length)]
    else:
        n = max(2, max_bytes // chunk)
        step = (length - chunk) // (n - 1)
        step -= step % 8
        pieces = [(offset + k * step, chunk) for k in range(n - 1)]
        pieces.append((offset + length - chunk, chunk))
    with open(path, "rb") as f:
        for off, ln in pieces:
            f.seek(off)
            have = f.read(ln)
            want = pattern_bytes(seed, off, ln)
            if have != want:
                if len(have) != len(want):
                    return f"{path}: short read at byte {off}: {len(have)} of {ln} bytes"
                k = next(i for i in range(ln) if have[i] != want[i])
                return (f"{path}: byte {off + k} (lba512 {(off + k) // 512}): "
                        f"got {have[k:k + 8].hex()} want {want[k:k + 8].hex()}")
    return None


def fresh_images(tmp_root, test, names):
    """Scratch image paths for a test, {device: path} under tmp_root, with no
    stale file left from an earlier run (the test creates them through its
    disks)."""
    tmp = os.path.join(tmp_root, f"qemu.{test}.images")
    os.makedirs(tmp, exist_ok=True)
    paths = {dev: os.path.join(tmp, name) for dev, name in names.items()}
    for p in paths.values():
        if os.path.exists(p):
            os.remove(p)
    return paths


def image_is_zero(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    return data == bytes(length)


def image_fill(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


# -- qemu blkdebug --------------------------------------------------------

def blkdebug_conf(path, rules):
    """Write a blkdebug rules file.  rules: dicts with keys iotype ("read",
    "write", "flush", ...), sector (512-byte units; an I/O covering it
    fails), errno (default 5, EIO), once (default False).  The event is the
    raw format driver's read_aio / write_aio / flush_to_disk, which fires on
    every request."""
    events = {"read": "read_aio", "write": "write_aio", "flush": "flush_to_disk",
              "write-zeroes": "write_aio", "discard": "write_aio"}
    out = []
    for r in rules:
        out.append("[inject-error]")
        out.append(f'event = "{r.get("event", events[r["iotype"]])}"')
        out.append(f'iotype = "{r["iotype"]}"')
        out.append(f'errno = "{r.get("errno", 5)}"')
        if r.get("sector") is not None:
            out.append(f'sector = "{r["sector"]}"')
        out.append(f'once = "{"on" if r.get("once") else "off"}"')
        out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path


# -- shell output ---------------------------------------------------------

SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(text):
    """"64.0 MiB" / "1 GiB" / "512 B" -> bytes (float precision)."""
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)\b", text)
    if not m:
        return None
    return float(m.group(1)) * SIZE_UNITS[m.group(2)]


LSBLK_SIZE_RE = re.compile(r"\s(\d+(?:\.\d+)?\s*(?:B|KiB|MiB|GiB|TiB))\s+(512|4096)\s+(\d+)\s+(\d+)\s+"
                           r"(yes|no)\s+(yes|no)\s+(yes|no)\s+(irq|poll)\s*$")


def parse_lsblk(out):
    """lsblk output -> {name: dict(size, lba, queues, depth, wcache, fua,
    trim, mode, line)}.  Columns after MODEL and SERIAL are parsed from the
    right, since models contain spaces."""
    devs = {}
    for line in out.split("\n"):
        m0 = re.match(r"^\s*((?:nvme\d+n\d+)|(?:sata\d+))\s", line)
        if not m0:
            continue
        m = LSBLK_SIZE_RE.search(line)
        if not m:
            devs[m0.group(1)] = {"line": line, "size": None}
            continue
        devs[m0.group(1)] = dict(line=line, size=parse_size(m.group(1)), lba=int(m.group(2)),
                                 queues=int(m.group(3)), depth=int(m.group(4)),
                                 wcache=m.group(5), fua=m.group(6), trim=m.group(7),
                                 mode=m.group(8))
    return devs


BENCH_RE = re.compile(
    r"^bench blk dev=(?P<dev>\S+) workload=(?P<workload>\S+) bs=(?P<bs>\d+) qd=(?P<qd>\d+) "
    r"secs=(?P<secs>\d+) mode=(?P<mode>irq|poll) threads=(?P<threads>\d+) ops=(?P<ops>\d+) "
    r"iops=(?P<iops>\d+) mbps=(?P<mbps>\d+(?:\.\d+)?) lat_p50_us=(?P<p50>\d+) "
    r"lat_p99_us=(?P<p99>\d+) lat_p999_us=(?P<p999>\d+) errors=(?P<errors>\d+)$", re.M)


def parse_bench(out):
    """The bench lines of `out` as dicts (numbers converted)."""
    res = []
    for m in BENCH_RE.finditer(out):
        d = m.groupdict()
        for k, v in d.items():
            if k in ("dev", "workload", "mode"):
                continue
            d[k] = float(v) if "." in v else int(v)
        res.append(d)
    return res


BLKSTAT_RE = re.compile(r"^(\S+): read (\d+), write (\d+), flush (\d+), discard (\d+), "
                        r"write-zeroes (\d+) ops;.*?\berrors (\d+)", re.M)
BLKSTAT_LAT_RE = re.compile(r"<\d+us:(\d+)")


def parse_blkstat(out):
    """blkstat output -> {dev: dict(read, write, flush, discard,
    write_zeroes, errors, latency)}: op counts, the error count and the
    number of latency samples (the sum of the histogram on the next line)."""
    res = {}
    lines = out.split("\n")
    for i, line in enumerate(lines):
        m = BLKSTAT_RE.match(line)
        if not m:
            continue
        v = [int(g) for g in m.groups()[1:]]
        lat = lines[i + 1] if i + 1 < len(lines) and "latency" in lines[i + 1] else ""
        res[m.group(1)] = dict(read=v[0], write=v[1], flush=v[2], discard=v[3], write_zeroes=v[4],
                               errors=v[5], latency=sum(int(c) for c in BLKSTAT_LAT_RE.findall(lat)))
    return res


def blkstat(m, dev=None):
    """parse_blkstat of `blkstat [dev]`; raises if dev is missing."""
    out = blk_run(m, "blkstat" + (f" {dev}" if dev else ""), 30)
    st = parse_blkstat(out)
    if dev and dev not in st:
        raise AssertionError(f"blkstat {dev}: no statistics line for it:\n{out}")
    return st


def verify_ok(out, dev, lba, count):
    return re.search(rf"^verify {re.escape(dev)} {lba}\+{count}: ok\b", out, re.M) is not None


STRESS_RE = re.compile(r"^stress (\S+): (\d+) ops, (\d+) errors, (\d+) mismatches", re.M)


# -- running block commands -----------------------------------------------

FAIL_RE = re.compile(r"failed|usage:|unknown|MISMATCH|no such|not found|invalid|panic|"
                     r"not supported|error:", re.I)
CRC_RE = re.compile(r"crc32?\s*[=:]?\s*(?:0x)?([0-9a-f]{8})\b", re.I)


def blk_run(m, line, timeout=180):
    """Run a shell command (harness.shell) with a long default timeout."""
    import harness
    return harness.shell(m, line, timeout)


# A count of zero failures is no failure: "3 commands resubmitted, 0 failed"
# (a recovery report that can land in any later command's output) or
# "0 steps failed".
ZERO_FAILED_RE = re.compile(r"(?<![\d.])0 (?:[a-z-]+ )?failed\b", re.I)


def blk_failure(out):
    """The first failure word in a command's output, or None."""
    bad = FAIL_RE.search(ZERO_FAILED_RE.sub("", out))
    return bad.group(0) if bad else None


def blk_ok(m, line, timeout=180):
    """Run a command that must succeed: no failure words in its output."""
    out = blk_run(m, line, timeout)
    bad = blk_failure(out)
    if bad:
        raise AssertionError(f"'{line}' reported {bad!r}:\n{out[-1500:]}")
    return out


def blk_write_verify(m, dev, lba, count, seed, fua=False, timeout=300):
    """blk write then blk verify of the same range; raises on any failure."""
    blk_ok(m, f"blk write {dev} {lba} {count} {seed}" + (" fua" if fua else ""), timeout)
    out = blk_run(m, f"blk verify {dev} {lba} {count} {seed}", timeout)
    if not verify_ok(out, dev, lba, count):
        raise AssertionError(f"blk verify {dev} {lba} {count} {seed} did not say ok:\n{out[-1500:]}")
    return out


def blk_crc(out):
    m = CRC_RE.search(out)
    return int(m.group(1), 16) if m else None


CPU_ROW_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%\s+(\d+)\s*$", re.M)


def irq_total(m):
    """Sum of the per-CPU interrupt counts shown by `cpus`."""
    out = blk_run(m, "cpus", 30)
    rows = CPU_ROW_RE.findall(out)
    if not rows:
        raise AssertionError(f"cpus: no CPU rows:\n{out}")
    return sum(int(r[4]) for r in rows)


if __name__ == "__main__":
    print(selfcheck())
