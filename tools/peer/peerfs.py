"""The filesystem table of the Linux peer comparison: our `bench fs` against
fio through ext4, XFS and btrfs on the same qemu disks (docs/peer.md).

Pure functions, no qemu: tests/qemu/test_peer_parse.py checks them on the
host.  tools/peer/peerfsrun.py runs the sessions this module plans.

A *run* is one result dict:
  side (ours | ext4 | xfs | btrfs), dev, workload, bs, qd, mode (direct |
  buffered), secs, files, ops, iops, mbps, lat_p50_us, lat_p99_us, errors,
  rep, and the host bookkeeping cpu_qemu / cpu_others (peerstats).
For the fsync workload iops is appends+fsyncs per second and the latencies
are those of one append + fsync; for create/stat/unlink iops is files per
second.

A *session* is one side on one disk in one repetition: a fresh filesystem
(mkfs), mounted, the selected workloads in a fixed order, unmounted.  Both
sides share the disk images, so every session makes its own filesystem and
no side reads what another left.  The sides take turns session by session,
in an order that rotates with the repetition and the disk.
"""
import json
import statistics

import peerparse as pp

LINUX_FS = ("ext4", "xfs", "btrfs")
SIDES = ("ours",) + LINUX_FS
FS_NAME = {"ours": "ours", "ext4": "ext4", "xfs": "XFS", "btrfs": "btrfs"}
DATA = ("read", "write", "randread", "randwrite")
META = ("create", "stat", "unlink")

# (workload, bs, qd, mode) in session order.  Data workloads run on one
# preallocated file of DATA_SIZE bytes (written once per session, like
# bench fs's .bench-data); fsync appends to a new file; the metadata trio
# must stay in this order (stat and unlink use what create made).
WORKLOADS = [
    ("randread", 4096, 1, "direct"), ("randread", 4096, 32, "direct"),
    ("randwrite", 4096, 1, "direct"), ("randwrite", 4096, 32, "direct"),
    ("randread", 4096, 1, "buffered"), ("randwrite", 4096, 1, "buffered"),
    ("read", 1 << 20, 1, "direct"), ("write", 1 << 20, 1, "direct"),
    ("write", 1 << 20, 1, "buffered"), ("read", 1 << 20, 1, "buffered"),
    ("fsync", 4096, 1, "buffered"),
    ("create", 4096, 1, "buffered"), ("stat", 4096, 1, "buffered"), ("unlink", 4096, 1, "buffered"),
]
DATA_SIZE = 64 << 20            # bench fs's default size
FSYNC_FILE_SIZE = 256 << 20     # fio's bound for the append file (never reached at these rates)
MOUNT = "fsb"                   # our mount point /fsb; Linux mounts on /mnt/fs

GOAL_THROUGHPUT = 1.5           # ours >= 1.5x the best Linux filesystem
GOAL_FSYNC_LAT = 0.7            # ours <= 0.7x the best (lowest) Linux fsync latency
GOAL_META = 1.0                 # ours >= 1x the best metadata rate


def label(w):
    if w["workload"] in META:
        return w["workload"]
    if w["workload"] == "fsync":
        return "fsync 4k append"
    return f"{pp.label(w)} {w['mode']}"


def select(only):
    """The workloads whose "DEV LABEL" contains one of `only` (all if empty),
    for both disks.  A metadata workload pulls in the ones before it
    (stat needs create; unlink needs the files too)."""
    out = []
    for dev in pp.LINUX_DEV:
        picked = []
        for w, bs, qd, mode in WORKLOADS:
            r = {"dev": dev, "workload": w, "bs": bs, "qd": qd, "mode": mode}
            if not only or any(s in f"{dev} {label(r)}" for s in only):
                picked.append(r)
        metas = [r["workload"] for r in picked if r["workload"] in META]
        if metas:
            last = max(META.index(m) for m in metas)
            picked = [r for r in picked if r["workload"] not in META]
            picked += [{"dev": dev, "workload": m, "bs": 4096, "qd": 1, "mode": "buffered"}
                       for m in META[:last + 1]]
        out += picked
    return out


def plan(reps, workloads, sides=SIDES):
    """Sessions in run order: [{"rep", "dev", "side", "workloads"}].  Each
    (rep, dev, side) once; the side order rotates by one per repetition and
    per disk, so every side is first (and last) in turn."""
    devs = [d for d in pp.LINUX_DEV if any(w["dev"] == d for w in workloads)]
    out = []
    for rep in range(reps):
        for di, dev in enumerate(devs):
            ws = [w for w in workloads if w["dev"] == dev]
            k = (rep + di) % len(sides)
            for side in sides[k:] + sides[:k]:
                out.append({"rep": rep, "dev": dev, "side": side, "workloads": ws})
    return out


# --- our side ------------------------------------------------------------------

OURS_KEYS = ("mount", "dev", "workload", "bs", "qd", "secs", "mode", "ops", "iops", "mbps",
             "lat_p50_us", "lat_p99_us", "dev_reads", "dev_writes", "dev_flushes", "dev_read_kib",
             "dev_write_kib", "errors")


def ours_command(w, secs, files):
    """The `bench fs` line for one workload (same file size, run time and
    file count as fio's)."""
    if w["workload"] in META:
        return f"bench fs /{MOUNT} {w['workload']} files={files}"
    if w["workload"] == "fsync":
        return f"bench fs /{MOUNT} fsync secs={secs}"
    return (f"bench fs /{MOUNT} {w['workload']} bs={w['bs']} qd={w['qd']} secs={secs} "
            f"size={DATA_SIZE}" + (" direct" if w["mode"] == "direct" else ""))


def parse_ours(line):
    """One `bench fs ...` result line, or None if `line` is not one; a line
    that is one but lacks a field raises ValueError."""
    i = line.find("bench fs mount=")
    if i < 0:
        return None
    d = pp.parse_kv(line[i + len("bench fs"):])
    missing = [k for k in OURS_KEYS if k not in d]
    if missing:
        raise ValueError(f"bench fs line lacks {', '.join(missing)}: {line.strip()!r}")
    r = {"side": "ours", "dev": d["dev"], "workload": d["workload"], "mode": d["mode"]}
    for k in ("bs", "qd", "secs", "ops", "errors", "dev_reads", "dev_writes", "dev_flushes",
              "dev_read_kib", "dev_write_kib"):
        r[k] = int(d[k])
    for k in ("iops", "lat_p50_us", "lat_p99_us"):
        r[k] = float(d[k])
    r["mbps"] = r["iops"] * r["bs"] / (1 << 20) if r["workload"] in DATA else 0.0
    return r


# --- the Linux side --------------------------------------------------------------

def fio_args(w, secs, files):
    """fio's options for one workload, in the filesystem mounted on /mnt/fs.
    Like-for-like with bench fs: our qd is threads each with one synchronous
    request in flight, so fio runs numjobs=qd jobs of psync at iodepth 1 on
    the one shared file; no ramp (bench fs counts from its first request)."""
    common = ["--name=peer", "--group_reporting", "--percentile_list=50:99", "--output-format=json"]
    if w["workload"] in META:
        # The file engines time each open/stat/unlink as a completion
        # latency sample: clat percentiles.
        engine = {"create": "filecreate", "stat": "filestat", "unlink": "filedelete"}[w["workload"]]
        extra = ["--create_on_open=1", "--fallocate=none"] if engine == "filecreate" else ["--unlink=0"]
        return common + ["--clat_percentiles=1", "--directory=/mnt/fs/meta", f"--ioengine={engine}", f"--nrfiles={files}",
                         "--filesize=4k", "--bs=4k", "--openfiles=1",
                         "--filename_format=f$filenum"] + extra
    timed = ["--lat_percentiles=1", "--time_based", f"--runtime={secs}", "--ioengine=psync", "--iodepth=1"]
    if w["workload"] == "fsync":
        # A new file, no preallocation: every write is an append, each
        # followed by fsync(2).
        return common + timed + ["--filename=/mnt/fs/bench-fsync", "--rw=write", "--bs=4k",
                                 "--fsync=1", "--fallocate=none", f"--size={FSYNC_FILE_SIZE}"]
    return common + timed + ["--filename=/mnt/fs/bench-data", f"--size={DATA_SIZE}",
                             f"--rw={w['workload']}", f"--bs={w['bs']}", f"--numjobs={w['qd']}",
                             f"--direct={1 if w['mode'] == 'direct' else 0}",
                             "--norandommap", "--randrepeat=0"]


def _pct(lat, p):
    """A percentile (µs) from fio's json latency object (ns keys "50.000000")."""
    got = lat.get("percentile") or {}
    for k, v in got.items():
        if abs(float(k) - p) < 1e-6:
            return v / 1000.0
    raise ValueError(f"fio json has no {p} percentile (have {sorted(got)})")


def parse_fio_json(text, w, side, secs, files):
    """fio --output-format=json (group_reporting: one job) -> run dict."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no json in fio's output: {text.strip()[:200]!r}")
    try:
        doc = json.loads(text[start:text.rfind("}") + 1])
        job = doc["jobs"][0]
    except (ValueError, KeyError, IndexError) as e:
        raise ValueError(f"fio json unreadable ({e}): {text.strip()[:200]!r}") from None
    errors = int(job.get("error", 0))
    r = {"side": side, "dev": w["dev"], "workload": w["workload"], "bs": w["bs"], "qd": w["qd"],
         "mode": w["mode"], "secs": secs, "errors": errors}
    if w["workload"] in META:
        # The file engines record one latency sample per file in the
        # direction of the job (no I/O statistics): rate = files / runtime.
        d = max((job.get(k, {}) for k in ("read", "write")),
                key=lambda x: x.get("clat_ns", {}).get("N", 0))
        n = d.get("clat_ns", {}).get("N", 0)
        ms = d.get("runtime") or job.get("job_runtime", 0)
        if n == 0 or ms == 0:
            raise ValueError(f"fio {w['workload']} did no operations (error {errors})")
        r.update(ops=n, iops=n / (ms / 1000.0), mbps=0.0, lat_p50_us=_pct(d["clat_ns"], 50.0),
                 lat_p99_us=_pct(d["clat_ns"], 99.0))
        return r
    write = w["workload"] in ("write", "randwrite", "fsync")
    d = job["write" if write else "read"]
    ios, ms = d.get("total_ios", 0), d.get("runtime", 0)
    if ios == 0 or ms == 0:
        raise ValueError(f"fio did no {'write' if write else 'read'} I/O (error {errors})")
    r.update(ops=ios, iops=ios / (ms / 1000.0), lat_p50_us=_pct(d["lat_ns"], 50.0),
             lat_p99_us=_pct(d["lat_ns"], 99.0))
    r["mbps"] = r["iops"] * w["bs"] / (1 << 20) if w["workload"] in DATA else 0.0
    if w["workload"] == "fsync":
        # bench fs times append + fsync as one operation; fio times the
        # write and the fsync(2) apart.  Percentiles do not add exactly: the
        # sum of the two p50s (p99s) stands for the pair's (docs/peer.md).
        s = job.get("sync", {})
        if not s.get("total_ios"):
            raise ValueError("fio fsync run has no sync latencies (--fsync=1 missing?)")
        r["fsync_p50_us"], r["fsync_p99_us"] = _pct(s["lat_ns"], 50.0), _pct(s["lat_ns"], 99.0)
        r["lat_p50_us"] += r["fsync_p50_us"]
        r["lat_p99_us"] += r["fsync_p99_us"]
    return r


# --- machine-readable lines ------------------------------------------------------

LINE_KEYS = (("side", str), ("dev", str), ("workload", str), ("bs", int), ("qd", int), ("mode", str),
             ("secs", int), ("rep", int), ("ops", int), ("iops", float), ("mbps", float),
             ("lat_p50_us", float), ("lat_p99_us", float), ("errors", int), ("cpu_qemu", float),
             ("cpu_others", float))


def run_line(r):
    return pp.kv_line("peerfs", r, LINE_KEYS)


def parse_run_line(line):
    return pp.parse_kv_line(line, "peerfs", LINE_KEYS)


# --- rows, goals -------------------------------------------------------------------

def metric(w):
    """(field, unit, higher_is_better) a row is judged on."""
    if w["workload"] == "fsync":
        return "lat_p50_us", "p50 µs", False
    if w["workload"] in META:
        return "iops", "files/s", True
    if w["bs"] >= 1 << 20:
        return "mbps", "MiB/s", True
    return "iops", "IOPS", True


def goal(row):
    """(op, value) of the issue's goal for a row's ours / best ratio."""
    if row["workload"] == "fsync":
        return "<=", GOAL_FSYNC_LAT
    if row["workload"] in META:
        return ">=", GOAL_META
    return ">=", GOAL_THROUGHPUT


def _key(r):
    return (r["dev"], r["workload"], r["bs"], r["qd"], r["mode"])


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def rows(runs):
    """One row per (dev, workload) and metric (the fsync workload gives a
    p50 and a p99 row): the median of each side over the repetitions, the
    median [min..max] of ours / each filesystem and of ours / the best
    Linux filesystem of the same repetition.  A side's run with errors is
    left out."""
    by = {}
    for r in runs:
        if r.get("errors", 0) == 0:
            by.setdefault(_key(r), {}).setdefault(r["side"], {})[r["rep"]] = r
    order = {(w, b, q, m): i for i, (w, b, q, m) in enumerate(WORKLOADS)}
    out = []
    for key in sorted(by, key=lambda k: (k[0], order.get(k[1:], 99))):
        sides = by[key]
        w = dict(zip(("dev", "workload", "bs", "qd", "mode"), key))
        f, unit, higher = metric(w)
        metrics = [(f, unit)] + ([("lat_p99_us", "p99 µs")] if w["workload"] == "fsync" else [])
        for f, unit in metrics:
            row = dict(w, field=f, unit=unit, higher=higher)
            for s in SIDES:
                row[s] = _med([r[f] for r in sides.get(s, {}).values()])
                row[s + "_n"] = len(sides.get(s, {}))
            best_ratios, per_fs = [], {fs: [] for fs in LINUX_FS}
            for rep, o in sides.get("ours", {}).items():
                lx = [sides[fs][rep][f] for fs in LINUX_FS if rep in sides.get(fs, {})]
                for fs in LINUX_FS:
                    if rep in sides.get(fs, {}) and sides[fs][rep][f]:
                        per_fs[fs].append(o[f] / sides[fs][rep][f])
                best = (max(lx) if higher else min(lx)) if lx else 0
                if best:
                    best_ratios.append(o[f] / best)
            for fs in LINUX_FS:
                row["x_" + fs] = _med(per_fs[fs])
            row["n"] = len(best_ratios)
            row["best"] = _med(best_ratios)
            row["best_min"] = min(best_ratios) if best_ratios else float("nan")
            row["best_max"] = max(best_ratios) if best_ratios else float("nan")
            lx_med = {fs: row[fs] for fs in LINUX_FS if row[fs + "_n"]}
            row["best_fs"] = ((max if higher else min)(lx_med, key=lx_med.get) if lx_med else "-")
            out.append(row)
    return out


def judge(row):
    """True / False: the row's goal met or not (from the median ratio to the
    best Linux filesystem); None: our side has no run in the row."""
    if not row["n"]:
        return None
    op, val = goal(row)
    return row["best"] >= val if op == ">=" else row["best"] <= val


def goals(rs):
    """(text, met) per row; a row without our runs is 'not measured' (met
    is None), never met."""
    out = []
    for r in rs:
        op, val = goal(r)
        what = f"{r['dev']} {label(r)} {r['unit']}"
        if not r["n"]:
            out.append((f"{what}: ours not measured (goal ours/best {op} {val})", None))
        else:
            out.append((f"{what}: ours/best-of-Linux {r['best']:.2f} [{r['best_min']:.2f}.."
                        f"{r['best_max']:.2f}] (goal {op} {val})", judge(r)))
    return out


def _num(x):
    return "-" if x != x else f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _rat(x):
    return "-" if x != x else f"{x:.2f}"


def markdown(rs, title):
    lines = [f"### {title}", "",
             "Medians over the repetitions. Ratios: ours / that filesystem per repetition, median; "
             "`ours/best`: ours / the best Linux filesystem of the same repetition, median "
             "[min..max]. Higher is better for IOPS, MiB/s and files/s; lower for fsync latency.", "",
             "| device | workload | metric | n | ours | ext4 | XFS | btrfs | ×ext4 | ×XFS | ×btrfs "
             "| ours/best | best | goal |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|"]
    for r in rs:
        op, val = goal(r)
        judged = {None: "not measured", True: "met", False: "NOT met"}[judge(r)]
        best = (f"{r['best']:.2f} [{r['best_min']:.2f}..{r['best_max']:.2f}]" if r["n"] else "-")
        lines.append(f"| {r['dev']} | {label(r)} | {r['unit']} | {r['n']} | {_num(r['ours'])} "
                     f"| {_num(r['ext4'])} | {_num(r['xfs'])} | {_num(r['btrfs'])} "
                     f"| {_rat(r['x_ext4'])} | {_rat(r['x_xfs'])} | {_rat(r['x_btrfs'])} | {best} "
                     f"| {FS_NAME.get(r['best_fs'], r['best_fs'])} | {op} {val}: {judged} |")
    g = goals(rs)
    if g:
        unmeasured = sum(1 for _, ok in g if ok is None)
        lines += ["", f"Goals, from medians: {sum(1 for _, ok in g if ok)} of {len(g)} met"
                  + (f" ({unmeasured} not measured: no result from our side)" if unmeasured else ""), ""]
        lines += [f"- {'not measured' if ok is None else 'met' if ok else 'NOT met'}: {t}" for t, ok in g]
    return "\n".join(lines) + "\n"


def row_line(r):
    op, val = goal(r)
    met = {None: "none", True: "yes", False: "no"}[judge(r)]
    f = lambda x: "nan" if x != x else f"{x:.3f}"  # noqa: E731
    return (f"peerfs row dev={r['dev']} workload={r['workload']} bs={r['bs']} qd={r['qd']} "
            f"mode={r['mode']} metric={r['field']} n={r['n']} ours={f(r['ours'])} ext4={f(r['ext4'])} "
            f"xfs={f(r['xfs'])} btrfs={f(r['btrfs'])} x_ext4={f(r['x_ext4'])} x_xfs={f(r['x_xfs'])} "
            f"x_btrfs={f(r['x_btrfs'])} best={f(r['best'])} best_min={f(r['best_min'])} "
            f"best_max={f(r['best_max'])} best_fs={r['best_fs']} goal={op}{val} met={met}")
