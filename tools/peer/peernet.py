"""The network table of the Linux peer comparison: TCP throughput of our
lwIP stack (lwiperf, `bench net`) against Linux's (iperf2) on the same qemu
NIC model and user-mode network (docs/peer.md, docs/network.md).

Pure functions, no qemu: tests/qemu/test_peernet_parse.py checks them on
the host.  tools/peer/peernetrun.py boots the machines and runs the plan.

Both directions are measured by Debian's iperf2 on the host, so both sides
are timed by the same program:
  host-to-guest  the host's `iperf -c 127.0.0.1 -p PORT -t SECS [-P N]`
                 against the guest's iperf2 server (ours: lwiperf on
                 tcp/5001; Linux: `iperf -s`), through a hostfwd port.
  guest-to-host  the guest's iperf2 client(s) against the host's
                 `iperf -s -B 127.0.0.1 -p PORT` (qemu's user networking
                 maps 10.0.2.2 to the host's loopback): ours `bench net
                 tx=10.0.2.2:PORT streams=N`, Linux `iperf -c 10.0.2.2
                 -p PORT -t 10 -P N`.  lwiperf's client always sends for
                 10 s, so this direction runs 10 s on both sides.
iperf2's own reverse modes do not work against lwiperf 2.1.3 with iperf
2.1.8 (tested): -r/-d make lwiperf compare every 128 KiB against the
first header, which iperf 2.1 does not repeat (lwiperf aborts with a data
error), and -R (--reverse) is an iperf 2.1 header extension lwiperf does
not know (the client receives nothing).

A *run* is one result dict: side (ours | linux), nic, dir (h2g | g2h),
streams, rep, secs, mbps (Mbit/s, 10^6 bits: iperf's unit), bytes,
conns, and the host bookkeeping cpu_qemu / cpu_others (peerstats).
"""
import statistics

import peerparse as pp

NICS = ("virtio", "e1000e")          # tools/vm.py's NIC_MODELS keys
NIC_NAME = {"virtio": "virtio-net", "e1000e": "e1000e"}
DIRS = ("h2g", "g2h")
DIR_NAME = {"h2g": "host-to-guest", "g2h": "guest-to-host"}
STREAMS = (1, 4)
SIDES = ("ours", "linux")
GUEST_PORT = 5001                    # lwiperf's and iperf -s's port in the guest
GUEST_SEES_HOST = "10.0.2.2"         # qemu user networking: the host's loopback
G2H_SECS = 10                        # lwiperf 2.1.3's client sends for 10 s, fixed
RAW_BYTES = 32 << 20                 # the raw TCP transfer of the protocol issue's comparison

GOAL_EVERY_ROW = 1.0                 # ours >= 1x Linux on every row
GOAL_VIRTIO = 1.5                    # and >= 1.5x on virtio-net


def workloads(only=(), nics=NICS):
    """[{"nic", "dir", "streams"}] in run order, those whose
    "NIC DIR sN" (e.g. "virtio h2g s4") contains one of `only` (all if
    empty)."""
    out = []
    for nic in nics:
        for d in DIRS:
            for n in STREAMS:
                w = {"nic": nic, "dir": d, "streams": n}
                if not only or any(s in label(w) for s in only):
                    out.append(w)
    return out


def label(w):
    return f"{w['nic']} {w['dir']} s{w['streams']}"


def secs_of(w, secs):
    """Seconds one run of `w` sends."""
    return G2H_SECS if w["dir"] == "g2h" else secs


def order(rep, i):
    """Which side goes first in pair i of repetition rep: alternating, so
    each side is first in half the pairs."""
    return SIDES if (rep + i) % 2 == 0 else SIDES[::-1]


# --- commands --------------------------------------------------------------------

def host_client_args(port, w, secs):
    """The host's iperf client against a guest server (host-to-guest)."""
    return (["iperf", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-y", "C"]
            + (["-P", str(w["streams"])] if w["streams"] > 1 else []))


def host_server_args(port):
    """The host's iperf server for guest-to-host runs: loopback only."""
    return ["iperf", "-s", "-B", "127.0.0.1", "-p", str(port), "-y", "C"]


def ours_tx_command(port, w, wait):
    return f"bench net tx={GUEST_SEES_HOST}:{port} streams={w['streams']} wait={wait}"


def linux_tx_command(port, w, budget):
    """The line typed on the peer's console (the init script's `tx`)."""
    return f"tx {GUEST_SEES_HOST} {port} {G2H_SECS} {w['streams']} {budget}"


# --- parsing ---------------------------------------------------------------------

def parse_iperf_csv(text):
    """iperf2 -y C lines -> [{"id", "lport", "rport", "start", "end",
    "bytes", "bps"}], one per connection (iperf's own sum lines, id -1,
    are left out).  Other lines (warnings) are ignored."""
    out = []
    for line in text.splitlines():
        f = line.strip().split(",")
        if len(f) != 9 or not f[5].lstrip("-").isdigit():
            continue
        try:
            start, _, end = f[6].partition("-")
            r = {"id": int(f[5]), "lport": int(f[2]), "rport": int(f[4]), "start": float(start),
                 "end": float(end), "bytes": int(f[7]), "bps": float(f[8])}
        except ValueError:
            raise ValueError(f"iperf csv line unreadable: {line.strip()!r}") from None
        if r["id"] > 0:
            out.append(r)
    return out


def throughput(conns, streams, secs):
    """Mbit/s of one run from its connections: the sum of the streams'
    rates (iperf's SUM).  Exactly `streams` connections of at least half
    the asked time each, or ValueError (a stream that died early or a
    connection from another run would skew the figure)."""
    if len(conns) != streams:
        raise ValueError(f"iperf reported {len(conns)} connections, expected {streams}")
    short = [c for c in conns if c["end"] - c["start"] < secs / 2]
    if short:
        raise ValueError(f"{len(short)} of {streams} connections ran less than {secs / 2:.1f} s: "
                         f"{[(c['start'], c['end']) for c in short]}")
    if any(c["bytes"] <= 0 for c in conns):
        raise ValueError("a connection moved no data")
    return sum(c["bps"] for c in conns) / 1e6, sum(c["bytes"] for c in conns)


def parse_ours_rx(text):
    """`bench net proto=tcp dir=rx ...` (the lwiperf server's view of the
    first stream that finished) -> its Mbit/s, or None."""
    for line in text.splitlines():
        i = line.find("bench net proto=tcp dir=")
        if i >= 0:
            d = pp.parse_kv(line[i + len("bench net"):])
            if d.get("dir") in ("rx", "tx") and "mbps" in d:
                return d
    return None


def run_of(side, w, rep, secs, text):
    """A run dict from the host iperf's CSV output of one run."""
    s = secs_of(w, secs)
    mbps, nbytes = throughput(parse_iperf_csv(text), w["streams"], s)
    return {"side": side, "nic": w["nic"], "dir": w["dir"], "streams": w["streams"], "rep": rep,
            "secs": s, "mbps": mbps, "bytes": nbytes}


# --- machine-readable lines ------------------------------------------------------

LINE_KEYS = (("side", str), ("nic", str), ("dir", str), ("streams", int), ("rep", int), ("secs", int),
             ("mbps", float), ("bytes", int), ("guest_mbps", float), ("cpu_qemu", float),
             ("cpu_others", float))


def run_line(r):
    return pp.kv_line("peernet", r, LINE_KEYS)


def parse_run_line(line):
    return pp.parse_kv_line(line, "peernet", LINE_KEYS)


RAW_KEYS = (("nic", str), ("dir", str), ("rep", int), ("bytes", int), ("mbps", float))


def raw_line(r):
    """Our raw TCP transfer (sum/gen services) of one repetition."""
    return pp.kv_line("peernet raw", r, RAW_KEYS)


def parse_raw_line(line):
    return pp.parse_kv_line(line, "peernet raw", RAW_KEYS)


# --- rows, goals -------------------------------------------------------------------

def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def goal(row):
    return GOAL_VIRTIO if row["nic"] == "virtio" else GOAL_EVERY_ROW


def rows(runs):
    """One row per (nic, dir, streams): medians of both sides and the
    median [min..max] of ours / Linux over the repetitions that have both."""
    by = {}
    for r in runs:
        by.setdefault((r["nic"], r["dir"], r["streams"]), {}).setdefault(r["side"], {})[r["rep"]] = r
    key_order = {(w["nic"], w["dir"], w["streams"]): i for i, w in enumerate(workloads())}
    out = []
    for key in sorted(by, key=lambda k: key_order.get(k, 99)):
        sides = by[key]
        ours, linux = sides.get("ours", {}), sides.get("linux", {})
        ratios = [ours[rep]["mbps"] / linux[rep]["mbps"] for rep in ours
                  if rep in linux and linux[rep]["mbps"] > 0]
        row = dict(zip(("nic", "dir", "streams"), key))
        row.update(ours=_med([r["mbps"] for r in ours.values()]), ours_n=len(ours),
                   linux=_med([r["mbps"] for r in linux.values()]), linux_n=len(linux),
                   n=len(ratios), ratio=_med(ratios),
                   ratio_min=min(ratios) if ratios else float("nan"),
                   ratio_max=max(ratios) if ratios else float("nan"))
        out.append(row)
    return out


def judge(row):
    """True / False from the median ratio; None without a single pair."""
    return None if not row["n"] else row["ratio"] >= goal(row)


def raw_rows(raws):
    """Medians of our raw TCP transfers per (nic, dir)."""
    by = {}
    for r in raws:
        by.setdefault((r["nic"], r["dir"]), []).append(r["mbps"])
    key_order = {(n, d): i for i, (n, d) in enumerate((n, d) for n in NICS for d in DIRS)}
    return [{"nic": k[0], "dir": k[1], "n": len(v), "mbps": _med(v), "min": min(v), "max": max(v)}
            for k, v in sorted(by.items(), key=lambda kv: key_order.get(kv[0], 99))]


def _f(x):
    return "nan" if x != x else f"{x:.3f}"


def row_line(r):
    met = {None: "none", True: "yes", False: "no"}[judge(r)]
    return (f"bench-peer net nic={r['nic']} dir={DIR_NAME[r['dir']]} streams={r['streams']} "
            f"ours_mbps={_f(r['ours'])} linux_mbps={_f(r['linux'])} ratio={_f(r['ratio'])} "
            f"ratio_min={_f(r['ratio_min'])} ratio_max={_f(r['ratio_max'])} n={r['n']} "
            f"goal=>={goal(r)} met={met}")


def raw_row_line(r):
    return (f"bench-peer net raw nic={r['nic']} dir={DIR_NAME[r['dir']]} ours_mbps={_f(r['mbps'])} "
            f"min={_f(r['min'])} max={_f(r['max'])} n={r['n']}")


def _num(x):
    return "-" if x != x else f"{x:,.0f}"


def markdown(rs, raws, title):
    lines = [f"### {title}", "",
             "Mbit/s measured by the host's iperf2 (client for host-to-guest, server for guest-to-host), "
             "medians over the repetitions; ratio: ours / Linux per interleaved pair, median [min..max].", "",
             "| NIC | direction | streams | n | ours Mbit/s | Linux Mbit/s | ours / Linux | goal |",
             "|---|---|--:|--:|--:|--:|--:|---|"]
    for r in rs:
        judged = {None: "not measured", True: "met", False: "NOT met"}[judge(r)]
        ratio = f"{r['ratio']:.2f} [{r['ratio_min']:.2f}..{r['ratio_max']:.2f}]" if r["n"] else "-"
        lines.append(f"| {NIC_NAME[r['nic']]} | {DIR_NAME[r['dir']]} | {r['streams']} | {r['n']} "
                     f"| {_num(r['ours'])} | {_num(r['linux'])} | {ratio} | >= {goal(r)}: {judged} |")
    lines += ["", "Goals, from medians:",
              f"- ours >= {GOAL_EVERY_ROW:g}x Linux on every row: {verdict(rs, GOAL_EVERY_ROW)}",
              f"- ours >= {GOAL_VIRTIO:g}x Linux on virtio-net: "
              f"{verdict([r for r in rs if r['nic'] == 'virtio'], GOAL_VIRTIO)}"]
    if raws:
        lines += ["", "Our raw TCP in the same boots (the file protocol's baseline): the host sends "
                  f"{RAW_BYTES >> 20} MiB to the sum service (tcp/9) / reads {RAW_BYTES >> 20} MiB from the gen "
                  "service (tcp/19), Mbit/s, median [min..max]:", ""]
        lines += [f"- {NIC_NAME[r['nic']]} {DIR_NAME[r['dir']]}: {r['mbps']:.0f} [{r['min']:.0f}..{r['max']:.0f}] "
                  f"(n={r['n']})" for r in raws]
    return "\n".join(lines) + "\n"


def verdict(rs, bound):
    """A goal over several rows: 'met' only when every row has pairs and
    its median ratio reaches `bound`."""
    if not rs:
        return "not measured"
    unmeasured = sum(1 for r in rs if not r["n"])
    if unmeasured:
        return f"not measured on {unmeasured} of {len(rs)} rows"
    met = sum(1 for r in rs if r["ratio"] >= bound)
    return f"{'met' if met == len(rs) else 'NOT met'} ({met} of {len(rs)} rows)"
