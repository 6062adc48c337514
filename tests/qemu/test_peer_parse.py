"""The Linux peer comparison's parsing, checked on the host (no qemu): a
change in fio's terse format, in our `bench blk` line or in vm.py's device
options must fail here rather than silently skew `make bench-peer`."""
import math
import os
import sys

from harness import REPO, qemu_test, check

sys.path.insert(0, os.path.join(REPO, "tools", "peer"))

import peerparse as pp  # noqa: E402
import peerstats as ps  # noqa: E402

# A real line from the peer (fio 3.33, 4k randread QD32 on nvme0n1, 3 s).
TERSE_READ = (
    "3;fio-3.33;peer;0;0;151216;50388;12586;3001;8;4660;49.106095;54.614266;231;18883;"
    "2471.142446;804.068816;50.000000%=2375;99.000000%=4751;99.900000%=12124;"
    + "0%=0;" * 17 + "264;18984;2520.266201;811.295908;43433;56392;100.000000%;50432.000000;"
    "4809.803686;0;0;0;0;0;0;0.000000;0.000000;0;0;0.000000;0.000000;50.000000%=0;"
    "99.000000%=0;99.900000%=0;" + "0%=0;" * 17 + "0;0;0.000000;0.000000;0;0;0.000000%;"
    "0.000000;0.000000;1.333333%;98.266667%;18;0;37;0.0%;0.0%;0.0%;0.0%;0.0%;100.0%;0.0%;"
    "0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.01%;0.01%;0.06%;0.17%;21.44%;76.20%;2.05%;0.17%;"
    "0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;nvme0n1;48484;0;0;0;6917;0;6917;90.31%")

BENCH = ("bench blk dev=nvme0n1 workload=randread bs=4096 qd=32 secs=10 mode=poll threads=1 "
         "ops=123456 iops=12345 mbps=48.2 lat_p50_us=81 lat_p99_us=140 lat_p999_us=300 errors=0")


def swap_to_write(line):
    """The same line with the read block moved to the write position."""
    f = line.split(";")
    h, r, w = pp.TERSE_HEADER, pp.TERSE_DDIR, pp.TERSE_DDIR
    f[h:h + 2 * r] = f[h + r:h + r + w] + f[h:h + r]
    return ";".join(f)


@qemu_test(weight=0)
def peer_parse(ctx):
    w = {"dev": "nvme0n1", "workload": "randread", "bs": 4096, "qd": 32, "secs": 3}
    with ctx.subtest("fio_terse_read"):
        r = pp.parse_fio_terse(TERSE_READ, w)
        check(r["ops"] == 151216 // 4 and r["errors"] == 0, r)
        check(abs(r["iops"] - 151216 / 4 / 3.001) < 1, r)
        check(abs(r["mbps"] - 50388 / 1024) < 0.01, r)
        check((r["lat_p50_us"], r["lat_p99_us"], r["lat_p999_us"]) == (2375, 4751, 12124), r)
    with ctx.subtest("fio_terse_write_uses_write_block"):
        ww = dict(w, workload="randwrite")
        r = pp.parse_fio_terse(swap_to_write(TERSE_READ), ww)
        check(r["lat_p50_us"] == 2375 and r["ops"] == 151216 // 4, r)
        # The read block of that line is all zeros: reading it as a write is wrong.
        try:
            pp.parse_fio_terse(TERSE_READ, ww)
            check(False, "a read-only line parsed as a write result")
        except ValueError:
            pass
    with ctx.subtest("fio_terse_rejects_other_formats"):
        for bad in ("", "2;peer;0;0", TERSE_READ.replace("3;fio", "5;fio", 1)):
            try:
                pp.parse_fio_terse(bad, w)
                check(False, f"accepted {bad[:30]!r}")
            except ValueError:
                pass
    with ctx.subtest("bench_line"):
        r = pp.parse_bench_line("appliance> " + BENCH)
        check(r["dev"] == "nvme0n1" and r["qd"] == 32 and r["iops"] == 12345.0
              and r["mode"] == "poll" and r["lat_p999_us"] == 300.0, r)
        check(abs(r["mbps"] - 12345 * 4096 / 2**20) < 1e-6, f"mbps not MiB/s: {r}")
        check(pp.parse_bench_line("bench: usage ...") is None, "not a result line")
        try:
            pp.parse_bench_line(BENCH.replace(" lat_p99_us=140", ""))
            check(False, "a line without lat_p99_us parsed")
        except ValueError:
            pass
    with ctx.subtest("result_line_round_trip"):
        r = pp.parse_bench_line(BENCH)
        back = pp.parse_result_line(pp.result_line(r))
        for k in pp.BENCH_KEYS:
            # Floats are written rounded (IOPS and µs to 1, MiB/s to 0.1).
            same = abs(back[k] - r[k]) <= 0.5 if isinstance(r[k], float) else back[k] == r[k]
            check(same, f"{k}: {back[k]!r} != {r[k]!r}")
    with ctx.subtest("cpu_accounting"):
        stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
        check(ps.proc_stat_busy(stat) == 100 + 5 + 50 + 3 + 2, ps.proc_stat_busy(stat))
        pid = "1234 (qemu system x86) S 1 2 3 4 5 6 7 8 9 10 700 300 0 0 20 0"
        check(ps.proc_pid_ticks(pid) == 1000, ps.proc_pid_ticks(pid))
        own, others = ps.cpu_shares(0, 300, 0, 150, [10], 1.0, 100)
        check(abs(own - 1.5) < 1e-9 and abs(others - 1.4) < 1e-9, (own, others))
    with ctx.subtest("host_bytes_two_sided"):
        check(ps.host_bytes_ok(1.05, 10, 1) and ps.host_bytes_ok(0.995, 10, 1), "in bounds")
        check(not ps.host_bytes_ok(0.9, 10, 1), "fewer bytes than reported passed")
        check(not ps.host_bytes_ok(1.3, 10, 1), "more bytes than reported passed")
    with ctx.subtest("run_line_round_trip"):
        r = dict(pp.parse_bench_line(BENCH), rep=2, engine="bench", cpu_qemu=1.5,
                 cpu_others=0.25, host_ratio=1.07)
        back = ps.parse_run_line(ps.run_line(r))
        check(back["rep"] == 2 and back["engine"] == "bench" and back["cpu_others"] == 0.25
              and back["host_ratio"] == 1.07 and back["iops"] == 12345, back)
    with ctx.subtest("pairs_medians_goals"):
        lx = pp.parse_fio_terse(TERSE_READ, w)
        runs_l, runs_o = [], []
        for rep, (oi, li) in enumerate(((30000, 10000), (20000, 10000), (50000, 10000))):
            runs_l.append(dict(lx, rep=rep, engine="libaio", iops=li, cpu_others=0.1))
            runs_l.append(dict(lx, rep=rep, engine="io_uring", iops=li / 2, cpu_others=0.1))
            runs_o.append(dict(pp.parse_bench_line(BENCH), rep=rep, iops=oi, lat_p50_us=1000,
                               cpu_others=0.1))
        pairs = ps.pairs(runs_o, runs_l)
        check(len(pairs) == 3 and all(p[1]["engine"] == "libaio" for p in pairs),
              "Linux's faster engine is not the one paired")
        check(all(p[1]["mode"] == "irq" for p in pairs), "polled row without a polled Linux run")
        rows = ps.rows(pairs)
        check(len(rows) == 1, rows)
        r = rows[0]
        check(r["iops"] == 3.0 and r["iops_min"] == 2.0 and r["iops_max"] == 5.0 and r["n"] == 3, r)
        check(r["ours_iops"] == 30000 and r["poll_vs_irq"], r)
        g = ps.goals(rows)
        check(len(g) == 1 and g[0][1] is True and "QD32" in g[0][0] and "[2.00..5.00]" in g[0][0], g)
        # Judged from the median: one good pair does not pass a bad median.
        runs_o[0]["iops"] = 15000
        runs_o[1]["iops"] = 15000
        g = ps.goals(ps.rows(ps.pairs(runs_o, runs_l)))
        check(g[0][1] is False, g)
        lpoll = dict(lx, rep=0, mode="poll", engine="io_uring-hipri", iops=99999)
        pairs = ps.pairs(runs_o[:1], runs_l + [lpoll])
        check(pairs[0][1] is lpoll, "polled row not paired with Linux's polled run")
        check(ps.pairs(runs_o, []) == [], "a row without a Linux peer")
        md = ps.markdown(rows, "t")
        check("| nvme0n1 | randread 4k qd32 | poll (poll vs irq) | 3 |" in md
              and "Goals, from medians" in md, md)
    with ctx.subtest("pair_rerun_margin"):
        o = {"cpu_others": 0.1}
        check(not ps.pair_shares_differ(o, {"cpu_others": 0.3}), "0.2 cores apart is within the margin")
        check(ps.pair_shares_differ(o, {"cpu_others": 0.5}), "0.4 cores apart is not")
    with ctx.subtest("polling_never_slower_goal"):
        base = dict(pp.parse_bench_line(BENCH), rep=0, cpu_others=0.0)
        lxr = dict(pp.parse_fio_terse(TERSE_READ, w), rep=0, engine="libaio")
        rows = ps.rows(ps.pairs([dict(base, mode="poll", iops=900), dict(base, mode="irq", iops=1000)],
                                [lxr]))
        g = [x for x in ps.goals(rows) if "never slower" in x[0]]
        check(len(g) == 1 and g[0][1] is False, g)
    with ctx.subtest("linux_plan"):
        sys.path.insert(0, os.path.join(REPO, "tools"))
        import peer
        plan = peer.linux_plan({"dev": "nvme0n1", "bs": 4096}, ["poll", "irq"])
        check(("irq", "libaio") in plan and ("irq", "io_uring") in plan
              and ("poll", "io_uring-hipri") in plan, plan)
        check(("poll", "io_uring-hipri") not in peer.linux_plan({"dev": "sata0", "bs": 4096}, ["poll"]),
              "Linux cannot poll AHCI")
        check("clocksource=tsc" in " ".join(peer.linux_command([("nvme", "/x/n.img")], "/x/i", 2, "512M")),
              "the peer does not run on the TSC")
    with ctx.subtest("linux_command_same_devices"):
        sys.path.insert(0, os.path.join(REPO, "tools"))
        import peer
        import vm
        disks = [("nvme", "/x/nvme.img"), ("sata", "/x/sata.img")]
        cmd = peer.linux_command(disks, "/x/initrd", 2, "512M")
        ours = vm.vm_command(esp="/x/esp", smp=2, mem="512M", serial="stdio", disks=disks)
        dev = vm.vm_disk_args("nvme", "/x/nvme.img", 0) + vm.vm_disk_args("sata", "/x/sata.img", 0)
        joined = " ".join(cmd)
        check(" ".join(dev) in joined and " ".join(dev) in " ".join(ours), joined)
        check("esp" not in joined and "xhci" not in joined and "-kernel" in cmd, joined)
        # Everything else of our command line is kept, in order.
        kept, i = [], 0
        while i < len(ours):
            if ours[i] in ("-device", "-drive") and ("esp" in ours[i + 1] or "xhci" in ours[i + 1]):
                i += 2
                continue
            kept.append(ours[i])
            i += 1
        check(cmd[:-6] == kept, f"{cmd}\n!=\n{kept}")
