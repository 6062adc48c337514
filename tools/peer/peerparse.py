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


def parse_peer_console(text):
    """The Linux peer's serial output -> (results, notes).  The init script
    prints "PEER-BEGIN key=value..." before each fio run, "PEER-TERSE <line>"
    with fio's output, "PEER-FAIL ..." when fio failed, and "PEER-NOTE ..."
    lines (kernel messages worth keeping); "PEER-DONE" at the end."""
    results, notes, cur = [], [], None
    done = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("PEER-BEGIN "):
            cur = typed(parse_kv(line[len("PEER-BEGIN "):]))
        elif line.startswith("PEER-TERSE ") and cur is not None:
            try:
                results.append(parse_fio_terse(line[len("PEER-TERSE "):], cur))
            except ValueError as e:
                notes.append(f"PEER-FAIL {cur.get('dev')} {cur.get('workload')}: {e}")
            cur = None
        elif line.startswith("PEER-FAIL") or line.startswith("PEER-NOTE"):
            notes.append(line)
        elif line.startswith("PEER-DONE"):
            done = True
    if not done:
        notes.append("PEER-FAIL the peer did not reach PEER-DONE (see the console log)")
    return results, notes


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


def _ratio(a, b):
    return a / b if b else float("nan")


def compare(ours, linux):
    """Pair every result of ours with Linux's for the same dev/workload/bs/qd
    and completion mode (Linux polls only NVMe: other polled rows of ours are
    paired with Linux's interrupt-driven run).  Returns rows: dicts with
    "ours", "linux" and the ratios ours/Linux (IOPS and MB/s: higher is
    better; latencies: lower is better)."""
    key = lambda r: (r["dev"], r["workload"], r["bs"], r["qd"])  # noqa: E731
    lx = {key(r) + (r["mode"],): r for r in linux}
    rows = []
    for o in ours:
        l = lx.get(key(o) + (o["mode"],)) or lx.get(key(o) + ("irq",))
        if l is None:
            continue
        rows.append({"ours": o, "linux": l,
                     "iops": _ratio(o["iops"], l["iops"]), "mbps": _ratio(o["mbps"], l["mbps"]),
                     "p50": _ratio(o["lat_p50_us"], l["lat_p50_us"]),
                     "p99": _ratio(o["lat_p99_us"], l["lat_p99_us"])})
    order = {(w, b, q): i for i, (w, b, q) in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: (r["ours"]["dev"], r["ours"]["mode"],
                             order.get(key(r["ours"])[1:], 99)))
    return rows


def ratio_line(row):
    o = row["ours"]
    return (f"peer ratio dev={o['dev']} workload={o['workload']} bs={o['bs']} qd={o['qd']} "
            f"mode={o['mode']} linux_mode={row['linux']['mode']} iops={row['iops']:.2f} mbps={row['mbps']:.2f} "
            f"lat_p50={row['p50']:.2f} lat_p99={row['p99']:.2f}")


def label(r):
    bs = f"{r['bs'] // 1024}k" if r["bs"] < (1 << 20) else f"{r['bs'] >> 20}M"
    return f"{r['workload']} {bs} qd{r['qd']}"


def goals(rows):
    """The issue's goals, per device and mode: (text, met) pairs.
    4 KiB randread QD32 IOPS >= 2x Linux, QD1 p50 latency <= 0.5x Linux,
    1 MiB sequential read >= Linux."""
    out = []
    for r in rows:
        o = r["ours"]
        tag = f"{o['dev']} ours {o['mode']} vs Linux {r['linux']['mode']}"
        if o["workload"] == "randread" and o["bs"] == 4096 and o["qd"] == 32:
            out.append((f"{tag}: 4k randread QD32 IOPS {r['iops']:.2f}x Linux (goal >= 2)",
                        r["iops"] >= 2))
        if o["workload"] == "randread" and o["bs"] == 4096 and o["qd"] == 1:
            out.append((f"{tag}: 4k randread QD1 p50 latency {r['p50']:.2f}x Linux (goal <= 0.5)",
                        r["p50"] <= 0.5))
        if o["workload"] == "read" and o["bs"] == 1 << 20:
            out.append((f"{tag}: 1M read QD{o['qd']} MB/s {r['mbps']:.2f}x Linux (goal >= 1)",
                        r["mbps"] >= 1))
    return out


def markdown(rows, title):
    """The side-by-side table (GitHub Markdown)."""
    lines = [f"### {title}", "",
             "| device | workload | ours mode | ours IOPS | ours MiB/s | ours p50 µs | ours p99 µs "
             "| Linux mode | Linux IOPS | Linux MiB/s | Linux p50 µs | Linux p99 µs "
             "| IOPS ×Linux | p50 ×Linux |",
             "|---|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        o, l = r["ours"], r["linux"]
        lines.append(
            f"| {o['dev']} | {label(o)} | {o['mode']} | {o['iops']:,.0f} | {o['mbps']:,.1f} "
            f"| {o['lat_p50_us']:,.0f} | {o['lat_p99_us']:,.0f} | {l['mode']} | {l['iops']:,.0f} "
            f"| {l['mbps']:,.1f} | {l['lat_p50_us']:,.0f} | {l['lat_p99_us']:,.0f} "
            f"| {r['iops']:.2f} | {r['p50']:.2f} |")
    g = goals(rows)
    if g:
        lines += ["", "Goals (from the issue):", ""]
        lines += [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in g]
    return "\n".join(lines) + "\n"
