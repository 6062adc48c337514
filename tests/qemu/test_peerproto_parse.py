"""The file protocol table of the Linux peer comparison (tools/peer/peerproto.py,
peerprotorun.py), checked on the host (no qemu): apfp bench's and
nfsbench's result lines, the per-repetition speedups (rates ours / Linux,
latencies Linux / ours), the ratios against raw TCP (MB/s against Mbit/s),
the machine-readable lines, the table and its goals; and nfsbench
(tools/peer/nfsbench.c) refusing to print a result when no server
answers."""
import math
import os
import subprocess
import sys

from harness import REPO, qemu_test, check

sys.path.insert(0, os.path.join(REPO, "tools", "peer"))
sys.path.insert(0, os.path.join(REPO, "tools"))

import peerproto as pq  # noqa: E402
import netutil  # noqa: E402

APFP_LINE = ("bench apfp write_MBps=12.5 read_MBps=20.0 create_per_s=400 getattr_us_p50=300 "
             "getattr_us_p99=900 size_MiB=64 files=500 getattrs=2000 depth=16 read_depth=4\n")
NFS_LINE = ("bench nfs write_MBps=4.3 read_MBps=7.5 create_per_s=59 getattr_us_p50=417 getattr_us_p99=21141 "
            "size_MiB=16 files=100 getattrs=200 depth=16 read_depth=4 wchunk=1048576 rchunk=1048576\n")


def expect_error(fn, what):
    raised = None
    try:
        fn()
    except ValueError as e:
        raised = e
    check(raised is not None, what)


def run(side, rep, nic="virtio", **f):
    r = {"side": side, "nic": nic, "rep": rep, "write_MBps": 10.0, "read_MBps": 10.0, "create_per_s": 100.0,
         "getattr_us_p50": 500.0, "getattr_us_p99": 1000.0, "size_MiB": 64, "files": 500, "getattrs": 2000}
    r.update(f)
    return r


@qemu_test(weight=0)
def peerproto_parse(ctx):
    with ctx.subtest("bench_lines"):
        d = pq.parse_bench("progress\n" + APFP_LINE, "apfp")
        check(d["write_MBps"] == 12.5 and d["create_per_s"] == 400 and d["getattr_us_p99"] == 900
              and d["size_MiB"] == 64 and d["files"] == 500, d)
        d = pq.parse_bench(NFS_LINE, "nfs")
        check(d["read_MBps"] == 7.5 and d["getattr_us_p50"] == 417 and d["getattrs"] == 200, d)
        expect_error(lambda: pq.parse_bench(APFP_LINE, "nfs"), "an apfp line taken for nfsbench's")
        expect_error(lambda: pq.parse_bench(APFP_LINE.replace(" create_per_s=400", ""), "apfp"),
                     "a line without creates accepted")
        expect_error(lambda: pq.parse_bench(APFP_LINE.replace("read_MBps=20.0", "read_MBps=0.0"), "apfp"),
                     "a zero rate accepted")
        expect_error(lambda: pq.parse_bench(APFP_LINE.replace("getattr_us_p50=300", "getattr_us_p50=x"), "apfp"),
                     "a word taken for a number")
        expect_error(lambda: pq.parse_bench("apfp: bench: connection refused\n", "apfp"), "no line accepted")
        expect_error(lambda: pq.mbytes_per_s(1, 0), "a transfer of no time accepted")
        check(pq.mbytes_per_s(64 << 20, 2) == (64 << 20) / 1e6 / 2, "MB/s are 10^6 bytes")
    with ctx.subtest("lines_round_trip"):
        r = dict(run("ours", 2), cpu_qemu=0.9, cpu_others=0.1)
        line = pq.run_line(r)
        check(line.startswith("peerproto side=ours nic=virtio rep=2 write_MBps=10.000"), line)
        check(pq.parse_run_line(line) == r, (line, pq.parse_run_line(line)))
        raw = {"nic": "virtio", "rep": 1, "h2g_mbps": 800.0, "g2h_mbps": 400.0}
        check(pq.parse_raw_line(pq.raw_line(raw)) == raw and pq.parse_run_line(pq.raw_line(raw)) is None,
              pq.raw_line(raw))
        fuse = {"nic": "virtio", "rep": 1, "write_MBps": 50.0, "read_MBps": 30.0}
        check(pq.parse_fuse_line(pq.fuse_line(fuse)) == fuse and pq.parse_raw_line(pq.fuse_line(fuse)) is None,
              pq.fuse_line(fuse))
    with ctx.subtest("order_alternates"):
        check(pq.order(0) != pq.order(1) and pq.order(0) == pq.order(2), "order does not alternate")
    with ctx.subtest("speedups_rates_and_latencies"):
        runs = []
        # writes 2.0, 0.5, 1.5 -> 1.5; p50: Linux 600 / ours 300 = 2.0, then 0.5, 1.0 -> 1.0
        for rep, (ow, lw, op, lp) in enumerate(((20, 10, 300, 600), (5, 10, 800, 400), (15, 10, 500, 500))):
            runs += [run("ours", rep, write_MBps=ow, getattr_us_p50=op),
                     run("linux", rep, write_MBps=lw, getattr_us_p50=lp)]
        rs = {r["metric"]: r for r in pq.rows(runs)}
        check(set(rs) == set(pq.BENCH_FIELDS), rs)
        w, p = rs["write_MBps"], rs["getattr_us_p50"]
        check(w["ratio"] == 1.5 and w["ratio_min"] == 0.5 and w["ratio_max"] == 2.0 and w["n"] == 3, w)
        check(w["ours"] == 15 and w["linux"] == 10, w)
        check(p["ratio"] == 1.0 and p["ratio_min"] == 0.5 and p["ratio_max"] == 2.0, p)
        check(pq.judge(w, pq.GOAL_LINUX) is True and pq.judge(p, pq.GOAL_LINUX) is True, (w, p))
        # A slower latency is a speedup below 1.
        slow = pq.rows([run("ours", 0, getattr_us_p99=2000), run("linux", 0, getattr_us_p99=1000)])
        s = next(r for r in slow if r["metric"] == "getattr_us_p99")
        check(s["ratio"] == 0.5 and pq.judge(s, pq.GOAL_LINUX) is False, s)
        line = pq.row_line(s)
        check("metric=getattr_us_p99 ours=2000.000 linux=1000.000 speedup=0.500" in line and "met=no" in line,
              line)
        md = pq.markdown(pq.rows(runs), [], "t")
        check("| virtio | large-file write MB/s (to stable) | 3 | 15.0 | 10.0 | 1.50 [0.50..2.00] | >= 1: met |"
              in md, md)
        check("on every row: met (5 of 5 rows)" in md, md)
    with ctx.subtest("unmeasured_is_not_met"):
        rs = pq.rows([run("linux", 0), run("ours", 1)])
        check(all(r["n"] == 0 and pq.judge(r, pq.GOAL_LINUX) is None for r in rs), rs)
        md = pq.markdown(rs, [], "t")
        check("not measured on 5 of 5 rows" in md and ">= 1: not measured" in md, md)
        check("met=none" in pq.row_line(rs[0]), pq.row_line(rs[0]))
        check(math.isnan(pq.rows([run("linux", 0)])[0]["ours"]), "a median of nothing")
    with ctx.subtest("against_raw_tcp"):
        # raw 800 Mbit/s = 100 MB/s host-to-guest, 400 Mbit/s = 50 MB/s back
        raws = [{"nic": "virtio", "rep": 0, "h2g_mbps": 800.0, "g2h_mbps": 400.0},
                {"nic": "virtio", "rep": 1, "h2g_mbps": 1600.0, "g2h_mbps": 400.0}]
        runs = [run("ours", 0, write_MBps=90, read_MBps=30), run("ours", 1, write_MBps=160, read_MBps=45),
                run("linux", 0, write_MBps=1000)]
        fuses = [{"nic": "virtio", "rep": 0, "write_MBps": 70.0, "read_MBps": 40.0}]
        rr = {(r["path"], r["metric"]): r for r in pq.raw_rows(runs, raws, fuses)}
        pw, pr, fw, fr = (rr[("protocol", "write_MBps")], rr[("protocol", "read_MBps")],
                          rr[("fuse", "write_MBps")], rr[("fuse", "read_MBps")])
        check(pw["n"] == 2 and abs(pw["ratio"] - 0.85) < 1e-9 and pw["ratio_min"] == 0.8, pw)   # 0.9, 0.8
        check(abs(pr["ratio"] - 0.75) < 1e-9 and pq.judge(pr, pr["goal"]) is False, pr)        # 0.6, 0.9
        check(fw["n"] == 1 and fw["ratio"] == 0.7 and fw["goal"] == pq.GOAL_FUSE_RAW
              and pq.judge(fw, fw["goal"]) is True, fw)
        check(fr["ratio"] == 0.8 and fr["raw_MBps"] == 50, fr)
        md = pq.markdown([], list(rr.values()), "t", fuse_note="fuse: none here")
        check("| virtio | apfp bench | read | 2 | 37.5 | 50.0 | 0.75 [0.60..0.90] | >= 0.8: NOT met |" in md, md)
        check("protocol >= 80% of raw TCP: NOT met (1 of 2 rows)" in md
              and "FUSE mount >= 70% of raw TCP: met (2 of 2 rows)" in md and "fuse: none here" in md, md)
        line = pq.raw_row_line(pr)
        check(line.startswith("bench-peer proto-raw nic=virtio path=protocol metric=read_MBps MBps=37.500 "
                              "raw_MBps=50.000 ratio=0.750") and "met=no" in line, line)
        # No FUSE round: its rows are not measured, not met.
        rr = pq.raw_rows(runs, raws, [])
        check(all(r["n"] == 0 for r in rr if r["path"] == "fuse"), rr)
    with ctx.subtest("nfsbench_without_a_server"):
        p = subprocess.run(["make", "-s", "--no-print-directory", "build/peer/nfsbench"], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        check(p.returncode == 0, p.stdout.decode(errors="replace"))
        port = netutil.free_ports(1)[0]
        p = subprocess.run([os.path.join(REPO, "build", "peer", "nfsbench"), "127.0.0.1", str(port), str(port),
                            "/export", "--timeout", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        check(p.returncode == 2 and "bench nfs" not in p.stdout and "mountd" in p.stderr, (p.returncode, p.stdout,
                                                                                          p.stderr))
        p = subprocess.run([os.path.join(REPO, "build", "peer", "nfsbench"), "127.0.0.1", "0", "1", "/e"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        check(p.returncode == 1 and "usage" in p.stderr, (p.returncode, p.stderr))
