"""The file protocol table of the Linux peer comparison: our file server
(`apfp bench`, the apfp-fuse mount) against Linux's nfsd over NFSv3
(tools/peer/nfsbench.c, the same workloads), and against the raw TCP of
the same boot (docs/peer.md, docs/protocol.md).

Pure functions, no qemu: tests/qemu/test_peerproto_parse.py checks them
on the host.  tools/peer/peerprotorun.py boots the machines and runs them.

One *round* of a side in repetition `rep`:
  ours   raw TCP both ways (the host's iperf2 against lwiperf, one
         stream: Mbit/s), `apfp bench` (write/read MB/s of one large
         file, creates/s, getattr p50/p99 us), and the same large file
         written (to fsync) and read back through the apfp-fuse mount
  linux  nfsbench's line, the same fields as apfp bench's
Results as machine-readable lines:
  peerproto side=ours|linux nic=... rep=N write_MBps=... read_MBps=...
            create_per_s=... getattr_us_p50=... getattr_us_p99=...
  peerproto raw nic=... rep=N h2g_mbps=... g2h_mbps=...
  peerproto fuse nic=... rep=N write_MBps=... read_MBps=...
"""
import statistics

import peernet as pn
import peerparse as pp

SIDES = ("ours", "linux")
# (field, what, higher is better)
METRICS = (("write_MBps", "large-file write MB/s (to stable)", True),
           ("read_MBps", "large-file read MB/s", True),
           ("create_per_s", "small-file creates/s", True),
           ("getattr_us_p50", "getattr latency p50 us", False),
           ("getattr_us_p99", "getattr latency p99 us", False))
BENCH_FIELDS = tuple(m[0] for m in METRICS)
GOAL_LINUX = 1.0                     # ours >= 1x Linux NFS on every row
GOAL_PROTO_RAW = 0.8                 # protocol >= 80% of raw TCP
GOAL_FUSE_RAW = 0.7                  # the FUSE mount >= 70%


def order(rep):
    """Which side goes first in repetition rep: alternating."""
    return SIDES if rep % 2 == 0 else SIDES[::-1]


def parse_bench(text, kind):
    """The `bench KIND write_MBps=... ...` line (KIND apfp or nfs) of a
    tool's output -> {field: float} over BENCH_FIELDS plus size_MiB,
    files, getattrs.  ValueError when there is none or a field is missing
    or not a positive number."""
    for line in text.splitlines():
        if line.startswith(f"bench {kind} write_MBps="):
            d = pp.parse_kv(line[len(f"bench {kind}"):])
            out = {}
            for k in BENCH_FIELDS + ("size_MiB", "files", "getattrs"):
                try:
                    out[k] = float(d[k]) if k in BENCH_FIELDS else int(d[k])
                except (KeyError, ValueError):
                    raise ValueError(f"bench {kind} line without a usable {k}: {line.strip()!r}") from None
                if not out[k] > 0:
                    raise ValueError(f"bench {kind} line with {k}={d[k]}: {line.strip()!r}")
            return out
    raise ValueError(f"no `bench {kind}` line in: {text.strip()[-300:]!r}")


def mbytes_per_s(nbytes, secs):
    if secs <= 0:
        raise ValueError(f"a transfer of {nbytes} bytes took {secs} s")
    return nbytes / 1e6 / secs


# --- machine-readable lines ------------------------------------------------------

RUN_KEYS = ((("side", str), ("nic", str), ("rep", int)) + tuple((k, float) for k in BENCH_FIELDS)
            + (("size_MiB", int), ("files", int), ("getattrs", int), ("cpu_qemu", float), ("cpu_others", float)))
RAW_KEYS = (("nic", str), ("rep", int), ("h2g_mbps", float), ("g2h_mbps", float))
FUSE_KEYS = (("nic", str), ("rep", int), ("write_MBps", float), ("read_MBps", float))


def run_line(r):
    return pp.kv_line("peerproto", r, RUN_KEYS)


def parse_run_line(line):
    return pp.parse_kv_line(line, "peerproto", RUN_KEYS)


def raw_line(r):
    return pp.kv_line("peerproto raw", r, RAW_KEYS)


def parse_raw_line(line):
    return pp.parse_kv_line(line, "peerproto raw", RAW_KEYS)


def fuse_line(r):
    return pp.kv_line("peerproto fuse", r, FUSE_KEYS)


def parse_fuse_line(line):
    return pp.parse_kv_line(line, "peerproto fuse", FUSE_KEYS)


# --- rows ------------------------------------------------------------------------

def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def speedup(ours, linux, higher):
    """How many times better ours is: ours / Linux for rates, Linux /
    ours for latencies (so >= 1 means ours is at least as good)."""
    return ours / linux if higher else linux / ours


def rows(runs):
    """One row per (nic, metric): medians of both sides and the median
    [min..max] of the per-repetition speedup over the repetitions that
    have both sides."""
    by = {}
    for r in runs:
        by.setdefault(r["nic"], {}).setdefault(r["side"], {})[r["rep"]] = r
    out = []
    for nic, sides in by.items():
        ours, linux = sides.get("ours", {}), sides.get("linux", {})
        for field, what, higher in METRICS:
            ratios = [speedup(ours[rep][field], linux[rep][field], higher) for rep in sorted(ours)
                      if rep in linux and ours[rep].get(field, 0) > 0 and linux[rep].get(field, 0) > 0]
            out.append({"nic": nic, "metric": field, "what": what, "higher": higher,
                        "ours": _med([r[field] for r in ours.values() if field in r]),
                        "linux": _med([r[field] for r in linux.values() if field in r]),
                        "n": len(ratios), "ratio": _med(ratios),
                        "ratio_min": min(ratios) if ratios else float("nan"),
                        "ratio_max": max(ratios) if ratios else float("nan")})
    return out


def raw_rows(runs, raws, fuses):
    """Ours against its own raw TCP, per (nic, path, direction): the
    protocol's (apfp bench) and the FUSE mount's MB/s over the raw MB/s of
    the same boot and repetition (write against host-to-guest, read
    against guest-to-host); median [min..max] over the repetitions."""
    raw = {(r["nic"], r["rep"]): r for r in raws}
    paths = (("protocol", {(r["nic"], r["rep"]): r for r in runs if r["side"] == "ours"}, GOAL_PROTO_RAW),
             ("fuse", {(r["nic"], r["rep"]): r for r in fuses}, GOAL_FUSE_RAW))
    nics = list(dict.fromkeys(r["nic"] for r in raws))
    out = []
    for nic in nics:
        for path, got, goal in paths:
            for field, rawkey in (("write_MBps", "h2g_mbps"), ("read_MBps", "g2h_mbps")):
                ratios, mine, base = [], [], []
                for (n, rep), r in raw.items():
                    g = got.get((n, rep))
                    if n != nic or not g or field not in g or not r.get(rawkey, 0) > 0:
                        continue
                    mine.append(g[field])
                    base.append(r[rawkey] / 8)
                    ratios.append(g[field] / (r[rawkey] / 8))
                out.append({"nic": nic, "path": path, "metric": field, "goal": goal, "n": len(ratios),
                            "MBps": _med(mine), "raw_MBps": _med(base), "ratio": _med(ratios),
                            "ratio_min": min(ratios) if ratios else float("nan"),
                            "ratio_max": max(ratios) if ratios else float("nan")})
    return out


def judge(row, goal):
    """True / False from the median ratio; None without a single pair."""
    return None if not row["n"] else row["ratio"] >= goal


def _f(x):
    return "nan" if x != x else f"{x:.3f}"


MET = {None: "none", True: "yes", False: "no"}


def row_line(r):
    return (f"bench-peer proto nic={r['nic']} metric={r['metric']} ours={_f(r['ours'])} linux={_f(r['linux'])} "
            f"speedup={_f(r['ratio'])} speedup_min={_f(r['ratio_min'])} speedup_max={_f(r['ratio_max'])} "
            f"n={r['n']} goal=>={GOAL_LINUX} met={MET[judge(r, GOAL_LINUX)]}")


def raw_row_line(r):
    return (f"bench-peer proto-raw nic={r['nic']} path={r['path']} metric={r['metric']} MBps={_f(r['MBps'])} "
            f"raw_MBps={_f(r['raw_MBps'])} ratio={_f(r['ratio'])} ratio_min={_f(r['ratio_min'])} "
            f"ratio_max={_f(r['ratio_max'])} n={r['n']} goal=>={r['goal']} met={MET[judge(r, r['goal'])]}")


def _num(x):
    return "-" if x != x else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def _ratio(r):
    return f"{r['ratio']:.2f} [{r['ratio_min']:.2f}..{r['ratio_max']:.2f}]" if r["n"] else "-"


def _judged(r, goal):
    return {None: "not measured", True: "met", False: "NOT met"}[judge(r, goal)]


def markdown(rs, raws, title, fuse_note=None):
    lines = [f"### {title}", "",
             "Ours: `apfp bench` against the appliance's file server (cowfs). Linux: `nfsbench` (the same "
             "workloads over NFSv3) against nfsd exporting ext4. Medians over the repetitions; speedup: ours / "
             "Linux for rates, Linux / ours for latencies (>= 1: ours at least as good), per interleaved pair, "
             "median [min..max].", "",
             "| NIC | workload | n | ours | Linux NFS | speedup | goal |",
             "|---|---|--:|--:|--:|--:|---|"]
    for r in rs:
        lines.append(f"| {r['nic']} | {r['what']} | {r['n']} | {_num(r['ours'])} | {_num(r['linux'])} "
                     f"| {_ratio(r)} | >= {GOAL_LINUX:g}: {_judged(r, GOAL_LINUX)} |")
    lines += ["", f"Goal, from medians: ours >= {GOAL_LINUX:g}x Linux NFS on every row: {pn.verdict(rs, GOAL_LINUX)}"]
    if raws:
        lines += ["", "Ours against raw TCP in the same boot (the host's iperf2 against lwiperf, one stream; "
                  "write against host-to-guest, read against guest-to-host), MB/s, ratio median [min..max]:", "",
                  "| NIC | path | direction | n | MB/s | raw TCP MB/s | ratio | goal |",
                  "|---|---|---|--:|--:|--:|--:|---|"]
        for r in raws:
            lines.append(f"| {r['nic']} | {'apfp bench' if r['path'] == 'protocol' else 'apfp-fuse mount'} "
                         f"| {'write' if r['metric'] == 'write_MBps' else 'read'} | {r['n']} | {_num(r['MBps'])} "
                         f"| {_num(r['raw_MBps'])} | {_ratio(r)} | >= {r['goal']:g}: {_judged(r, r['goal'])} |")
        for path, goal in (("protocol", GOAL_PROTO_RAW), ("fuse", GOAL_FUSE_RAW)):
            sel = [r for r in raws if r["path"] == path]
            lines.append(f"- {'protocol' if path == 'protocol' else 'FUSE mount'} >= {goal:.0%} of raw TCP: "
                         f"{pn.verdict(sel, goal)}")
    if fuse_note:
        lines += ["", fuse_note]
    return "\n".join(lines) + "\n"
