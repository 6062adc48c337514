"""Aggregation for the Linux peer comparison: repeated, interleaved pairs.

Pure functions, no qemu (tests/qemu/test_peer_parse.py checks them).

A *run* is one result dict (peerparse's fields) plus the run's bookkeeping:
"rep" (repetition), "engine" (Linux: libaio / io_uring / io_uring-hipri;
ours: bench), "cpu_qemu" and "cpu_others" (CPU seconds per wall second
that this run's qemu and everything else on the host got while it ran),
"host_ratio" (bytes qemu saw move / bytes the run reported).

A *pair* is, for one repetition, one of our runs and the best Linux run of
the matching completion mode (Linux's fastest engine: what a Linux user who
cares would pick).  A *row* aggregates a workload's pairs over the
repetitions: medians of both sides and of the per-pair ratios, with the
spread (min..max) of the ratios.  Goals are judged from medians only.
"""
import statistics

import peerparse as pp

# Host CPU taken by others (cores) may differ by at most this much between
# the two runs of a pair; otherwise the pair is run again.
SHARE_MARGIN = 0.30


def proc_stat_busy(text):
    """/proc/stat -> total non-idle CPU ticks of the host (all CPUs)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            idle = f[3] + (f[4] if len(f) > 4 else 0)      # idle + iowait
            return sum(f[:8]) - idle                        # without guest time (counted in user)
    raise ValueError("no aggregate cpu line in /proc/stat")


def proc_pid_ticks(text):
    """/proc/PID/stat -> utime + stime of that process (ticks).  The command
    name (field 2) may hold spaces: parse after its closing parenthesis."""
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])            # fields 14 and 15


def cpu_shares(busy0, busy1, own0, own1, other_qemus, wall_s, hz):
    """(cpu_qemu, cpu_others) in cores over a run.  other_qemus: tick
    deltas of the other benchmark qemu (paused, but counted as ours, not
    the host's)."""
    own = (own1 - own0) / hz / wall_s
    total = (busy1 - busy0) / hz / wall_s
    others = max(0.0, total - own - sum(other_qemus) / hz / wall_s)
    return own, others


def host_bytes_ok(ratio, secs, warmup_s):
    """Two-sided check of the bytes qemu moved against the bytes a run
    reported: below 0.99 the run counted I/O the device never did; above
    (secs + warm-up + 1 s) / secs it did I/O it did not count."""
    return 0.99 <= ratio <= (secs + warmup_s + 1.0) / secs


def pair_key(r):
    return (r["dev"], r["workload"], r["bs"], r["qd"])


def best_linux(linux_runs, rep, key, mode):
    """Linux's fastest run (by IOPS) of this rep/workload in `mode`; a mode
    Linux has not (polled AHCI, polled large requests) falls back to irq."""
    for m in (mode, "irq"):
        c = [r for r in linux_runs if r["rep"] == rep and pair_key(r) == key and r["mode"] == m]
        if c:
            return max(c, key=lambda r: r["iops"])
    return None


def pairs(ours_runs, linux_runs):
    """[(ours run, Linux run)] for every rep and workload both sides have."""
    out = []
    for o in ours_runs:
        lx = best_linux(linux_runs, o["rep"], pair_key(o), o["mode"])
        if lx is not None:
            out.append((o, lx))
    return out


def pair_shares_differ(o, lx, margin=SHARE_MARGIN):
    """True when the host gave the two runs of a pair unequal conditions."""
    return abs(o.get("cpu_others", 0.0) - lx.get("cpu_others", 0.0)) > margin


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def _ratio(a, b):
    return a / b if b else float("nan")


def rows(pair_list):
    """Aggregate pairs into rows keyed by (dev, workload, bs, qd, our mode):
    medians of both sides, and median, min and max of the per-pair ratios."""
    groups = {}
    for o, lx in pair_list:
        groups.setdefault(pair_key(o) + (o["mode"],), []).append((o, lx))
    out = []
    order = {(w, b, q): i for i, (w, b, q) in enumerate(pp.WORKLOADS)}
    for key in sorted(groups, key=lambda k: (k[0], k[4], order.get(k[1:4], 99))):
        ps = groups[key]
        row = {"dev": key[0], "workload": key[1], "bs": key[2], "qd": key[3], "mode": key[4],
               "n": len(ps), "linux_mode": ps[0][1]["mode"],
               "linux_engines": sorted({lx.get("engine", "?") for _, lx in ps}),
               "unequal": sum(1 for o, lx in ps if pair_shares_differ(o, lx))}
        for side, idx in (("ours", 0), ("linux", 1)):
            for f in ("iops", "mbps", "lat_p50_us", "lat_p99_us"):
                row[f"{side}_{f}"] = _median([p[idx][f] for p in ps])
        for name, f, inv in (("iops", "iops", False), ("mbps", "mbps", False),
                             ("p50", "lat_p50_us", False), ("p99", "lat_p99_us", False)):
            rs = [_ratio(o[f], lx[f]) for o, lx in ps]
            row[name] = _median(rs)
            row[name + "_min"], row[name + "_max"] = min(rs), max(rs)
        # Our polled mode against what Linux offers there (interrupts):
        # the comparison the goals of polled rows are about.
        row["poll_vs_irq"] = row["mode"] == "poll" and row["linux_mode"] == "irq"
        out.append(row)
    return out


def label(row):
    return pp.label(row)


def goals(rs):
    """The issues' goals, judged from medians: (text, met) pairs.
    Against Linux: 4 KiB randread QD32 IOPS >= 2x, 4 KiB randread QD1 p50
    <= 0.5x, 1 MiB read >= 1x.  Ours alone: polled mode never slower than
    interrupt mode (IOPS within 5%) at any workload, and 4 KiB QD1 p99 at
    most 2x p50 in both modes."""
    out = []
    for r in rs:
        tag = f"{r['dev']} ours {r['mode']} vs Linux {r['linux_mode']}"
        spread = lambda k: f"[{r[k + '_min']:.2f}..{r[k + '_max']:.2f}]"  # noqa: E731
        if r["workload"] == "randread" and r["bs"] == 4096 and r["qd"] == 32:
            out.append((f"{tag}: 4k randread QD32 IOPS {r['iops']:.2f}x Linux {spread('iops')} "
                        f"(goal >= 2)", r["iops"] >= 2))
        if r["workload"] == "randread" and r["bs"] == 4096 and r["qd"] == 1:
            out.append((f"{tag}: 4k randread QD1 p50 {r['p50']:.2f}x Linux {spread('p50')} "
                        f"(goal <= 0.5)", r["p50"] <= 0.5))
            out.append((f"{r['dev']} ours {r['mode']}: 4k randread QD1 p99 {r['ours_lat_p99_us']:.0f} us "
                        f"= {_ratio(r['ours_lat_p99_us'], r['ours_lat_p50_us']):.1f}x p50 (goal <= 2)",
                        r["ours_lat_p99_us"] <= 2 * r["ours_lat_p50_us"]))
        if r["workload"] == "read" and r["bs"] == 1 << 20:
            out.append((f"{tag}: 1M read QD{r['qd']} MiB/s {r['mbps']:.2f}x Linux {spread('mbps')} "
                        f"(goal >= 1)", r["mbps"] >= 1))
    by = {(r["dev"], r["workload"], r["bs"], r["qd"], r["mode"]): r for r in rs}
    for (dev, w, bs, qd, mode), r in sorted(by.items()):
        if mode != "poll" or (dev, w, bs, qd, "irq") not in by:
            continue
        irq = by[(dev, w, bs, qd, "irq")]
        out.append((f"{dev} {label(r)}: ours polled {r['ours_iops']:,.0f} IOPS vs interrupts "
                    f"{irq['ours_iops']:,.0f} (goal: polling never slower)",
                    r["ours_iops"] >= 0.95 * irq["ours_iops"]))
    return out


def markdown(rs, title):
    """The side-by-side table of medians with the ratio spreads."""
    lines = [f"### {title}", "",
             "Medians over the repetitions; ratios are ours / Linux per interleaved pair, median "
             "[min..max]. Linux uses its fastest engine per run (libaio or io_uring; io_uring "
             "--hipri for polled rows). `poll vs irq`: our polling against Linux's interrupts, "
             "where Linux cannot poll.", "",
             "| device | workload | ours | n | ours IOPS | ours p50 µs | ours p99 µs | Linux "
             "| Linux IOPS | Linux p50 µs | Linux p99 µs | IOPS ×Linux | p50 ×Linux | p99 ×Linux |",
             "|---|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|"]
    for r in rs:
        sp = lambda k: f"{r[k]:.2f} [{r[k + '_min']:.2f}..{r[k + '_max']:.2f}]"  # noqa: E731
        lmode = r["linux_mode"] + " (" + "/".join(r["linux_engines"]) + ")"
        mode = r["mode"] + (" (poll vs irq)" if r["poll_vs_irq"] else "")
        flag = f" ({r['unequal']} unequal)" if r["unequal"] else ""
        lines.append(
            f"| {r['dev']} | {label(r)} | {mode} | {r['n']}{flag} | {r['ours_iops']:,.0f} "
            f"| {r['ours_lat_p50_us']:,.0f} | {r['ours_lat_p99_us']:,.0f} | {lmode} "
            f"| {r['linux_iops']:,.0f} | {r['linux_lat_p50_us']:,.0f} | {r['linux_lat_p99_us']:,.0f} "
            f"| {sp('iops')} | {sp('p50')} | {sp('p99')} |")
    g = goals(rs)
    if g:
        met = sum(1 for _, ok in g if ok)
        lines += ["", f"Goals, from medians: {met} of {len(g)} met", ""]
        lines += [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in g]
    return "\n".join(lines) + "\n"


def row_line(r):
    """One machine-readable line per row."""
    return (f"peer row dev={r['dev']} workload={r['workload']} bs={r['bs']} qd={r['qd']} "
            f"mode={r['mode']} linux_mode={r['linux_mode']} n={r['n']} unequal={r['unequal']} "
            f"iops={r['iops']:.3f} iops_min={r['iops_min']:.3f} iops_max={r['iops_max']:.3f} "
            f"mbps={r['mbps']:.3f} lat_p50={r['p50']:.3f} lat_p50_min={r['p50_min']:.3f} "
            f"lat_p50_max={r['p50_max']:.3f} lat_p99={r['p99']:.3f}")


def goal_for_chart(r, metric):
    """The goal line value of a row in the chart, or None where no goal
    applies (goal lines are drawn only on their rows)."""
    if metric == "iops":
        if r["workload"] == "randread" and r["bs"] == 4096 and r["qd"] == 32:
            return 2.0
        if r["workload"] == "read" and r["bs"] == 1 << 20:
            return 1.0
    if metric == "p50" and r["workload"] == "randread" and r["bs"] == 4096 and r["qd"] == 1:
        return 0.5
    return None


RUN_EXTRA = (("rep", int), ("engine", str), ("cpu_qemu", float), ("cpu_others", float),
             ("host_ratio", float))


def run_line(r):
    """A run as one machine-readable line: peerparse's result line plus the
    run's bookkeeping."""
    extra = " ".join(f"{k}={r[k]:.3f}" if conv is float else f"{k}={r[k]}"
                     for k, conv in RUN_EXTRA if k in r)
    return pp.result_line(r) + " " + extra


def parse_run_line(line):
    r = pp.parse_result_line(line)
    if r is None:
        return None
    for k, conv in RUN_EXTRA:
        if k in r:
            r[k] = conv(r[k])
    return r
