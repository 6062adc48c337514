"""The filesystem table of `make bench-peer` (KIND=fs): our `bench fs` on
cowfs against fio through ext4, XFS and btrfs on the same qemu machine,
disks and images.  Called by tools/peer/peer.py; the plan, parsing and
tabulating are in peerfs.py (pure, tested on the host).  See docs/peer.md.

Outputs in build/peer/: fs-runs.txt (one `peerfs side=...` line per run,
written as the run goes), fs-results.md, fs-results.txt (runs plus one
`peerfs row ...` line per row), fs-ratios.png.
"""
import os
import shlex
import shutil
import sys
import time

import peer
import peerfs as pf
import peerparse as pp
import peerstats as ps
from console import ConsoleError

OUT = peer.OUT


class NoMachine:
    """Stands in for our machine when only Linux filesystems run."""

    def ticks(self):
        return 0


class Session:
    """Keeps one machine running (QMP cont) for a whole session and
    measures the host CPU shares around each run of it."""

    def __init__(self, side, other):
        self.side, self.other = side, other

    def __enter__(self):
        self.side.qmp.cmd("cont")
        return self

    def __exit__(self, *exc):
        self.side.qmp.cmd("stop")

    def run(self, fn):
        busy0, own0, oth0 = ps.proc_stat_busy(peer._read("/proc/stat")), self.side.ticks(), self.other.ticks()
        t0 = time.monotonic()
        r = fn()
        wall = time.monotonic() - t0
        busy1, own1, oth1 = ps.proc_stat_busy(peer._read("/proc/stat")), self.side.ticks(), self.other.ticks()
        if r is not None:
            r["cpu_qemu"], r["cpu_others"] = ps.cpu_shares(busy0, busy1, own0, own1, [oth1 - oth0],
                                                           wall, peer.HZ)
        return r


def run_budget(w, a):
    """Seconds a run may take before it counts as hung (TCG is slow: the
    metadata workloads are counted in files, not seconds)."""
    return a.secs * 4 + 120 if w["workload"] not in pf.META else 60 + a.files // 5


# --- Linux --------------------------------------------------------------------------

def linux_session(lx, sess, s, a):
    fs, dev = s["side"], pp.LINUX_DEV[s["dev"]]
    lx.sendline(f"fs_begin {fs} {dev} {pf.DATA_SIZE >> 20}")
    out = lx.expect(r"^PEER-READY", 600)
    if "PEER-FSOK" not in out:
        print(f"peer: Linux {fs} on {dev}: no filesystem:\n{out.strip()[-600:]}", flush=True)
        return []
    got = []
    for w in s["workloads"]:
        def one():
            args = " ".join(shlex.quote(x) for x in pf.fio_args(w, a.secs, a.files))
            lx.sendline(f"fs_run {run_budget(w, a)} {args}")
            text = lx.expect(r"^PEER-READY", run_budget(w, a) + 60)
            body = text.split("PEER-JSON-BEGIN", 1)[-1].split("PEER-JSON-END", 1)[0]
            try:
                return pf.parse_fio_json(body, w, fs, a.secs, a.files)
            except ValueError as e:
                print(f"peer: Linux {fs} {s['dev']} {pf.label(w)}: {e}\n{body.strip()[-400:]}", flush=True)
                return None
        r = sess.run(one)
        if r:
            got.append(dict(r, rep=s["rep"]))
    lx.sendline("fs_end")
    out = lx.expect(r"^PEER-READY", 300)
    if "PEER-FAIL" in out:
        print(f"peer: Linux {fs} on {dev}: {out.strip()[-300:]}", flush=True)
    return got


# --- ours ---------------------------------------------------------------------------

def wipe_ranges(lsblk, dev):
    """(first LBA, count) of the first 4 MiB and the last 1 MiB of dev, from
    the appliance's `lsblk` table (SIZE as "1.0 GiB", LBA in bytes)."""
    for line in lsblk.splitlines():
        f = line.split()
        if len(f) < 6 or f[0] != dev:
            continue
        for i in range(1, len(f) - 2):
            unit = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}.get(f[i + 1])
            if unit and f[i + 2].isdigit():
                size, lba = int(float(f[i]) * unit), int(f[i + 2])
                total = size // lba
                head, tail = (4 << 20) // lba, (1 << 20) // lba
                return [(0, min(head, total)), (max(total - tail, 0), min(tail, total))]
    return []


def ours_session(m, sess, s, a):
    import harness
    dev, mnt = s["dev"], "/" + pf.MOUNT

    def sh(line, timeout=120):
        try:
            return harness.shell(m, line, timeout=timeout)
        except AssertionError as e:
            print(f"peer: ours: `{line}` did not finish: {harness.first_line(e)}", flush=True)
            return None
    sh(f"umount {mnt}")                  # a session cut short may have left it mounted
    # A Linux session left its filesystem on the disk, and mkfs refuses to
    # format over another filesystem's signature (fs/probe.c looks at the
    # first 4 MiB and the last 1 MiB): zero both first.
    for lba, count in wipe_ranges(sh("lsblk") or "", dev):
        sh(f"blk zero {dev} {lba} {count}", 120)
    made = sh(f"mkfs -f {dev}", 300)
    sh(f"mount {dev} {mnt}", 120)
    listing = sh("mount") or ""
    # `mount` lists "DEV on /NAME type cowfs (rw)" per mounted filesystem.
    if made is None or f"{dev} on {mnt} type cowfs (rw)" not in listing:
        print(f"peer: ours: no filesystem on {dev}:\n{(made or '').strip()[-300:]}\n{listing.strip()[-300:]}",
              flush=True)
        return []
    got = []
    for w in s["workloads"]:
        line = pf.ours_command(w, a.secs, a.files)

        def one():
            out = sh(line, run_budget(w, a) + 120)
            if out is None:
                return None
            try:
                rs = [r for r in (pf.parse_ours(x) for x in out.splitlines()) if r]
            except ValueError as e:
                print(f"peer: ours: `{line}`: {e}", flush=True)
                return None
            if not rs:
                print(f"peer: ours: `{line}` printed no result line:\n{out.strip()[-400:]}", flush=True)
                return None
            return rs[-1]
        r = sess.run(one)
        if r:
            got.append(dict(r, rep=s["rep"], secs=a.secs))
    sh(f"umount {mnt}", 300)
    return got


# --- the run ------------------------------------------------------------------------

def run_all(a, disks, workloads):
    tmp = os.path.join(OUT, "tmp")
    os.makedirs(tmp, exist_ok=True)
    sessions = pf.plan(a.reps, workloads, sides=tuple(s for s in pf.SIDES if s in a.fs_sides))
    lx = m = None
    t_start = time.monotonic()
    try:
        lx, slx = peer.boot_linux(a, disks, tmp)
        slx.qmp.cmd("stop")
        if "ours" in a.fs_sides:
            m, sours = peer.boot_ours(a, disks, tmp)
            sours.qmp.cmd("stop")
        else:
            sours = NoMachine()
        with open(os.path.join(OUT, "fs-runs.txt"), "w") as out:
            out.write(f"# peerfs meta date={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                      f"secs={a.secs} reps={a.reps} files={a.files} data_size={pf.DATA_SIZE} "
                      f"smp={a.smp} mem={a.mem} host_cpus={os.cpu_count()}\n")
            for i, s in enumerate(sessions):
                if s["side"] == "ours":
                    with Session(sours, slx) as sess:
                        got = ours_session(m, sess, s, a)
                else:
                    with Session(slx, sours) as sess:
                        got = linux_session(lx, sess, s, a)
                for r in got:
                    out.write(pf.run_line(r) + "\n")
                    print(pf.run_line(r), flush=True)
                out.flush()
                el = time.monotonic() - t_start
                print(f"peer: fs session {i + 1}/{len(sessions)} ({s['side']} on {s['dev']}, rep {s['rep']}): "
                      f"{len(got)} of {len(s['workloads'])} runs, {el:.0f} s, about "
                      f"{el / (i + 1) * (len(sessions) - i - 1):.0f} s left", flush=True)
    except ConsoleError as e:
        print(f"peer: the Linux peer stopped answering: {e}", file=sys.stderr)
    finally:
        for machine in (x for x in (lx, m) if x):
            machine.kill()
    return run_compare(a)


GNUPLOT = """set terminal pngcairo size 1400,700 font "sans,9"
set output "{png}"
set title "Filesystems: ours (cowfs) / the best of Linux ext4, XFS, btrfs on the same qemu (TCG q35, -smp {smp}): median of interleaved repetitions, bars = min..max"
""" + peer.GNUPLOT_STYLE + """set boxwidth 0.7
set xrange [-0.6:{n}]
set yrange [{ylo}:{yhi}]
set ylabel "ours / best Linux (fsync rows: latency, lower is better)"
plot "{dat}" using 0:2:3:4:(0.35):xtic(1) with boxerrorbars lc rgb "#4477aa" title "ratio", \\
     "" using 0:5 with points pt 6 ps 2 lc rgb "red" title "goal", \\
     1 with lines dt 2 lc rgb "black" notitle
"""


def chart(rows, smp):
    rows = [r for r in rows if r["n"]]
    if not rows or not shutil.which("gnuplot"):
        return None
    dat = os.path.join(OUT, "fs-ratios.dat")
    with open(dat, "w") as f:
        for r in rows:
            f.write(f'"{r["dev"]} {pf.label(r)} {r["unit"]}" {r["best"]:.4f} {r["best_min"]:.4f} '
                    f'{r["best_max"]:.4f} {pf.goal(r)[1]}\n')
    png = os.path.join(OUT, "fs-ratios.png")
    # Room below the lowest bar: a log axis autoscaled to a bar's end hides it.
    vals = [v for r in rows for v in (r["best_min"], r["best_max"], pf.goal(r)[1]) if v == v and v > 0]
    ylo, yhi = min(vals) / 1.5, max(vals) * 1.5
    return peer.plot(GNUPLOT.format(png=png, smp=smp, n=len(rows), dat=dat, ylo=ylo, yhi=yhi),
                     "fs-ratios.gp", png)


def run_compare(a):
    lines, metas = peer.read_runs("fs-runs.txt", "make bench-peer KIND=fs")
    runs = [r for r in (pf.parse_run_line(x) for x in lines) if r]
    rows = pf.rows(runs)
    title = f"Filesystems, qemu TCG q35 -smp {a.smp} -m {a.mem}, {time.strftime('%Y-%m-%d', time.gmtime())}"
    md = pf.markdown(rows, title) + "\n" + "".join(f"    {x}\n" for x in metas)
    with open(os.path.join(OUT, "fs-results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT, "fs-results.txt"), "w") as f:
        f.writelines(f"# {x}\n" for x in metas)
        f.writelines(pf.run_line(r) + "\n" for r in runs)
        f.writelines(pf.row_line(r) + "\n" for r in rows)
    print(md)
    for r in rows:
        print(pf.row_line(r))
    png = chart(rows, a.smp)
    sides = {s: sum(1 for r in runs if r["side"] == s) for s in pf.SIDES}
    print(f"peer: fs: {len(rows)} rows from " + ", ".join(f"{n} runs of {s}" for s, n in sides.items())
          + "; build/peer/fs-results.md, fs-results.txt" + (", fs-ratios.png" if png else ", no chart"))
    return 0 if rows else 1
