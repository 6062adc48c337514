"""Parsing and tabulating for the Linux peer comparison (tools/peer/peer.py).

Pure functions, no qemu: tests/qemu/test_peer_parse.py checks them on the
host so a change in either side's output format is caught.

Both sides are normalised to the fields of our shell's benchmark line
(see drivers/blk and the shared decisions):

  bench blk dev=nvme0n1 workload=randread bs=4096 qd=32 secs=10 mode=poll
      threads=1 ops=123456 iops=12345 mbps=48.2 lat_p50_us=81 lat_p99_us=140
      lat_p999_us=300 errors=0

mbps is MiB/s (bytes / 2^20 per second; recomputed from iops and bs on
both sides), latencies are microseconds from
submission to completion.  A result is a dict with those keys plus "side"
("ours" or "linux").
"""

# The workloads both sides run: (workload, bs, qd).  fio's --rw takes the same
# names as our bench (randread, randwrite, read, write).
WORKLOADS = [
    ("randread", 4096, 1), ("randread", 4096, 32),
    ("randwrite", 4096, 1), ("randwrite", 4096, 32),
    ("read", 1 << 20, 1), ("read", 1 << 20, 32),
    ("write", 1 << 20, 1), ("write", 1 << 20, 32),
]

# Our device names and the Linux names of the same qemu devices.  The peer
# boots with -kernel (no ESP disk), so the AHCI data disk is sda.
LINUX_DEV = {"nvme0n1": "nvme0n1", "sata0": "sda"}

INT_KEYS = ("bs", "qd", "secs", "threads", "ops", "errors")
FLOAT_KEYS = ("iops", "mbps", "lat_p50_us", "lat_p99_us", "lat_p999_us")
BENCH_KEYS = ("dev", "workload", "bs", "qd", "secs", "mode", "threads", "ops", "iops",
              "mbps", "lat_p50_us", "lat_p99_us", "lat_p999_us", "errors")

# fio --output-format=terse --terse-version=3 (fio's stat.c): 5 header fields
# (version; fio version; job name; group id; error), then per direction 41
# fields: io KiB, bandwidth KiB/s, IOPS, runtime ms, slat x4, clat x4,
# 20 "P%=usec" percentiles, lat x4, bandwidth stats x5.  Read comes first.
TERSE_HEADER = 5
TERSE_DDIR = 41


def parse_kv(text):
    """key=value words of one line into a dict (later keys win)."""
    out = {}
    for word in text.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v
    return out


def kv_line(prefix, r, keys):
    """A run as `PREFIX k=v ...` over keys ((name, type) pairs; floats with
    three decimals), the fields r lacks left out."""
    return prefix + " " + " ".join(f"{k}={r[k]:.3f}" if conv is float else f"{k}={r[k]}"
                                   for k, conv in keys if k in r)


def parse_kv_line(line, prefix, keys):
    """Inverse of kv_line; None when line does not start with `PREFIX `
    and the first key."""
    if not line.startswith(f"{prefix} {keys[0][0]}="):
        return None
    d = parse_kv(line[len(prefix):])
    return {k: conv(d[k]) for k, conv in keys if k in d}


def typed(d):
    """Convert the numeric fields of a key=value dict in place; returns d."""
    for k in INT_KEYS:
        if k in d:
            d[k] = int(d[k])
    for k in FLOAT_KEYS:
        if k in d:
            d[k] = float(d[k])
    return d


def parse_bench_line(line):
    """One `bench blk ...` result line of our shell, or None if `line` is
    not one.  Raises ValueError when it is one but a field is missing or
    malformed, so a format change fails loudly instead of reading as 0."""
    i = line.find("bench blk dev=")
    if i < 0:
        return None
    d = parse_kv(line[i + len("bench blk"):])
    missing = [k for k in BENCH_KEYS if k not in d]
    if missing:
        raise ValueError(f"bench line lacks {', '.join(missing)}: {line.strip()!r}")
    d = typed(d)
    d["side"] = "ours"
    # MiB/s from IOPS and block size, as for fio: the shell's own mbps field
    # has been printed both in MB/s (10^6) and MiB/s, and a unit slip must
    # not masquerade as a 5% speed difference.
    d["mbps_printed"] = d["mbps"]
    d["mbps"] = d["iops"] * d["bs"] / (1 << 20)
    return d


def parse_fio_terse(line, workload):
    """fio terse v3 line -> result dict.  `workload` gives dev, workload, bs,
    qd, secs (what the init script asked fio for): the direction to read
    follows from the workload name."""
    f = line.strip().split(";")
    if len(f) < TERSE_HEADER + 2 * TERSE_DDIR or f[0] != "3":
        raise ValueError(f"not a fio terse v3 line ({len(f)} fields): {line.strip()[:120]!r}")
    write = workload["workload"] in ("write", "randwrite")
    base = TERSE_HEADER + (TERSE_DDIR if write else 0)
    io_kib, bw_kib, iops, runtime_ms = (int(x) for x in f[base:base + 4])
    if io_kib == 0 or runtime_ms == 0:
        raise ValueError(f"fio did no {'write' if write else 'read'} I/O "
                         f"(error field {f[4]}): {line.strip()[:120]!r}")
    pct = {}
    for word in f[base + 12:base + 32]:
        p, _, v = word.partition("%=")
        if float(p) > 0:
            pct[round(float(p), 3)] = float(v)
    for want in (50.0, 99.0, 99.9):
        if want not in pct:
            raise ValueError(f"fio line has no {want} percentile (run with "
                             f"--percentile_list=50:99:99.9): {sorted(pct)}")
    bs = int(workload["bs"])
    return {
        "side": "linux", "dev": workload["dev"], "workload": workload["workload"],
        "bs": bs, "qd": int(workload["qd"]), "secs": int(workload["secs"]),
        "mode": workload.get("mode", "irq"), "threads": 1, "ops": io_kib * 1024 // bs,
        # Recomputed from bytes and runtime: fio's own IOPS field is an integer.
        "iops": io_kib * 1024 / bs / (runtime_ms / 1000),
        "mbps": bw_kib / 1024, "lat_p50_us": pct[50.0], "lat_p99_us": pct[99.0],
        "lat_p999_us": pct[99.9], "errors": int(f[4]), "runtime_ms": runtime_ms,
    }


def result_line(r):
    """A result as one machine-readable line (the bench format + side)."""
    keys = ("dev", "workload", "bs", "qd", "secs", "mode", "threads", "ops")
    head = " ".join(f"{k}={r[k]}" for k in keys)
    return (f"peer side={r['side']} {head} iops={r['iops']:.0f} mbps={r['mbps']:.1f} "
            f"lat_p50_us={r['lat_p50_us']:.0f} lat_p99_us={r['lat_p99_us']:.0f} "
            f"lat_p999_us={r['lat_p999_us']:.0f} errors={r['errors']}")


def parse_result_line(line):
    """Inverse of result_line (results.txt is read back by the tests)."""
    if not line.startswith("peer side="):
        return None
    return typed(parse_kv(line[len("peer"):]))


def label(r):
    bs = f"{r['bs'] // 1024}k" if r["bs"] < (1 << 20) else f"{r['bs'] >> 20}M"
    return f"{r['workload']} {bs} qd{r['qd']}"
