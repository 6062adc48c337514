"""The Linux peer comparison's parsing, checked on the host (no qemu): a
change in fio's terse format, in our `bench blk` line or in vm.py's device
options must fail here rather than silently skew `make bench-peer`."""
import math
import os
import sys

from harness import REPO, qemu_test, check

sys.path.insert(0, os.path.join(REPO, "tools", "peer"))

import peerparse as pp  # noqa: E402

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
    with ctx.subtest("console"):
        text = ("noise\r\nPEER-NOTE kernel x\nPEER-BEGIN dev=nvme0n1 workload=randread bs=4096 "
                f"qd=32 secs=3\nPEER-TERSE {TERSE_READ}\nPEER-DONE\n")
        res, notes = pp.parse_peer_console(text)
        check(len(res) == 1 and res[0]["side"] == "linux" and res[0]["qd"] == 32, res)
        check(notes == ["PEER-NOTE kernel x"], notes)
        res, notes = pp.parse_peer_console(text.replace("PEER-DONE", ""))
        check(any("did not reach PEER-DONE" in n for n in notes), notes)
        # A run that did no I/O in its direction is a failure note, not a zero row.
        res, notes = pp.parse_peer_console(text.replace("workload=randread", "workload=write"))
        check(res == [] and any(n.startswith("PEER-FAIL nvme0n1 write") for n in notes), notes)
    with ctx.subtest("compare_and_goals"):
        lx = pp.parse_fio_terse(TERSE_READ, w)
        ours = pp.parse_bench_line(BENCH.replace("iops=12345", "iops=30000")
                                   .replace("lat_p50_us=81", "lat_p50_us=1000"))
        rows = pp.compare([ours], [lx])
        check(len(rows) == 1 and abs(rows[0]["iops"] - 30000 / lx["iops"]) < 1e-9, rows)
        g = pp.goals(rows)
        check(len(g) == 1 and g[0][1] is True and "QD32" in g[0][0], g)
        md = pp.markdown(rows, "t")
        check("| nvme0n1 | randread 4k qd32 | poll | 30,000 |" in md and "met:" in md, md)
        check(rows[0]["linux"]["mode"] == "irq", "polled row without a polled Linux run")
        lpoll = dict(lx, mode="poll", iops=lx["iops"] * 2)
        rows = pp.compare([ours], [lx, lpoll])
        check(rows[0]["linux"] is lpoll, "polled row not paired with Linux's polled run")
        check(pp.compare([ours], []) == [], "a row without a Linux peer")
        check(math.isnan(pp._ratio(1, 0)), "ratio by zero")
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
