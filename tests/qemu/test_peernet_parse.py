"""The network table of the Linux peer comparison (tools/peer/peernet.py,
peernetrun.py), checked on the host (no qemu): iperf2's CSV lines, the
per-run throughput and its sanity checks, the commands both sides get,
the pair order, rows (medians, ours / Linux, goals per NIC), the result
lines, the run drivers against a fake appliance and a fake peer console,
and the host-side iperf server against the real iperf2 on 127.0.0.1."""
import math
import os
import subprocess
import sys

from harness import REPO, qemu_test, check

sys.path.insert(0, os.path.join(REPO, "tools", "peer"))
sys.path.insert(0, os.path.join(REPO, "tools"))

import peernet as pn  # noqa: E402

# iperf 2.1.8 -y C, host client -P 4 against the peer (virtio-net), plus a
# sum line (id -1) and a warning iperf prints in front.
CSV4 = """WARNING: something
19700101000000,127.0.0.1,41104,127.0.0.1,37025,2,0.0-5.0,127926272,204426838
19700101000000,127.0.0.1,41090,127.0.0.1,37025,1,0.0-5.0,130023424,207886061
19700101000000,127.0.0.1,41118,127.0.0.1,37025,3,0.0-5.0,126877696,202937105
19700101000000,127.0.0.1,41120,127.0.0.1,37025,4,0.0-5.1,129974272,203811022
19700101000000,127.0.0.1,0,127.0.0.1,37025,-1,0.0-5.1,514801664,819060026
"""
CSV1 = "19700101000000,127.0.0.1,41478,127.0.0.1,35205,1,0.0-10.0,898892820,718993968\n"


def w_of(nic="virtio", d="h2g", streams=1):
    return {"nic": nic, "dir": d, "streams": streams}


def expect_error(fn, what):
    """fn() must refuse its input with ValueError."""
    raised = None
    try:
        fn()
    except ValueError as e:
        raised = e
    check(raised is not None, what)


def run(side, rep, mbps, **w):
    return dict(w_of(**w), side=side, rep=rep, mbps=mbps, secs=5, bytes=1)


@qemu_test(weight=0)
def peernet_parse(ctx):
    with ctx.subtest("iperf_csv"):
        conns = pn.parse_iperf_csv(CSV4)
        check([c["id"] for c in conns] == [2, 1, 3, 4], conns)
        check(conns[3]["end"] == 5.1 and conns[1]["bytes"] == 130023424 and conns[0]["lport"] == 41104, conns)
        check(pn.parse_iperf_csv("Connection refused\n") == [], "a text line read as a connection")
        expect_error(lambda: pn.parse_iperf_csv("1,127.0.0.1,x,127.0.0.1,5001,1,0.0-5.0,10,20"),
                     "a malformed csv line accepted")
    with ctx.subtest("throughput_sums_streams"):
        mbps, nbytes = pn.throughput(pn.parse_iperf_csv(CSV4), 4, 5)
        check(abs(mbps - (204426838 + 207886061 + 202937105 + 203811022) / 1e6) < 1e-6, mbps)
        check(nbytes == 127926272 + 130023424 + 126877696 + 129974272, nbytes)
        expect_error(lambda: pn.throughput(pn.parse_iperf_csv(CSV4), 1, 5), "4 connections taken for 1")
        expect_error(lambda: pn.throughput([], 1, 5), "no connection accepted")
        short = CSV1.replace("0.0-10.0", "0.0-3.0")
        expect_error(lambda: pn.throughput(pn.parse_iperf_csv(short), 1, 10), "a 3 s stream of 10 accepted")
        empty = CSV1.replace(",898892820,", ",0,")
        expect_error(lambda: pn.throughput(pn.parse_iperf_csv(empty), 1, 10), "a stream without data accepted")
        r = pn.run_of("ours", w_of(d="g2h"), 2, 5, CSV1)
        # Guest-to-host always runs lwiperf's 10 s, whatever SECS is.
        check(r["secs"] == 10 and r["rep"] == 2 and abs(r["mbps"] - 718.993968) < 1e-6, r)
    with ctx.subtest("commands"):
        c = pn.host_client_args(4321, w_of(streams=4), 5)
        check(c[:4] == ["iperf", "-c", "127.0.0.1", "-p"] and "4321" in c and c[c.index("-t") + 1] == "5"
              and c[c.index("-P") + 1] == "4" and "-y" in c, c)
        check("-P" not in pn.host_client_args(4321, w_of(), 5), "-P given to a single stream")
        s = pn.host_server_args(4321)
        check(s[s.index("-B") + 1] == "127.0.0.1" and "-s" in s, f"host server not bound to loopback: {s}")
        check(pn.ours_tx_command(4321, w_of(d="g2h", streams=4), 100)
              == "bench net tx=10.0.2.2:4321 streams=4 wait=100", "ours tx command")
        check(pn.linux_tx_command(4321, w_of(d="g2h", streams=4), 100) == "tx 10.0.2.2 4321 10 4 100",
              "Linux tx command")
    with ctx.subtest("workloads_and_order"):
        ws = pn.workloads()
        check(len(ws) == 8 and ws[0] == w_of() and ws[-1] == w_of("e1000e", "g2h", 4), ws)
        check(pn.workloads(["virtio g2h"]) == [w_of(d="g2h"), w_of(d="g2h", streams=4)], "only")
        check(pn.workloads(nics=["e1000e"]) == [w for w in ws if w["nic"] == "e1000e"], "nics")
        firsts = [pn.order(rep, i)[0] for rep in range(3) for i in range(4)]
        check(firsts.count("ours") == firsts.count("linux"), f"first sides unbalanced: {firsts}")
        check(pn.order(0, 0) != pn.order(1, 0) and pn.order(0, 0) != pn.order(0, 1), "order does not alternate")
    with ctx.subtest("rows_ratios_goals"):
        runs = []
        for rep, (o, lx) in enumerate(((300, 200), (100, 200), (500, 250))):   # 1.5, 0.5, 2.0
            runs += [run("ours", rep, o), run("linux", rep, lx)]
        for rep, (o, lx) in enumerate(((110, 100), (120, 100), (90, 100))):    # 1.1, 1.2, 0.9
            runs += [run("ours", rep, o, nic="e1000e"), run("linux", rep, lx, nic="e1000e")]
        rs = pn.rows(runs)
        check([r["nic"] for r in rs] == ["virtio", "e1000e"], rs)
        v, e = rs
        check(v["ratio"] == 1.5 and v["ratio_min"] == 0.5 and v["ratio_max"] == 2.0 and v["n"] == 3, v)
        check(v["ours"] == 300 and v["linux"] == 200, v)
        check(pn.judge(v) is True and pn.goal(v) == 1.5, "virtio at 1.5x is met")
        check(abs(e["ratio"] - 1.1) < 1e-9 and pn.judge(e) is True and pn.goal(e) == 1.0, e)
        # Judged from the median: a lucky pair does not meet it.
        runs[0]["mbps"] = 280                                                  # 1.4, 0.5, 2.0
        v2 = pn.rows(runs)[0]
        check(pn.judge(v2) is False, v2)
        md = pn.markdown(pn.rows(runs), [], "t")
        check("| virtio-net | host-to-guest | 1 | 3 | 280 | 200 | 1.40 [0.50..2.00] | >= 1.5: NOT met |" in md, md)
        check("on every row: met (2 of 2 rows)" in md and "on virtio-net: NOT met (0 of 1 rows)" in md, md)
        line = pn.row_line(v2)
        check(line.startswith("bench-peer net nic=virtio dir=host-to-guest streams=1 ours_mbps=280.000 "
                              "linux_mbps=200.000 ratio=1.400") and "met=no" in line, line)
    with ctx.subtest("unmeasured_is_not_met"):
        rs = pn.rows([run("linux", 0, 100), run("linux", 1, 100)])
        check(rs[0]["n"] == 0 and math.isnan(rs[0]["ours"]) and pn.judge(rs[0]) is None, rs)
        md = pn.markdown(rs, [], "t")
        check("not measured on 1 of 1 rows" in md and ">= 1.5: not measured" in md, md)
        check("met=none" in pn.row_line(rs[0]), pn.row_line(rs[0]))
        # A repetition one side lacks makes no pair.
        rs = pn.rows([run("ours", 0, 100), run("linux", 1, 100)])
        check(rs[0]["n"] == 0, rs)
    with ctx.subtest("lines_round_trip"):
        r = dict(run("ours", 2, 123.5, d="g2h", streams=4), guest_mbps=120.25, cpu_qemu=1.0, cpu_others=0.5)
        back = pn.parse_run_line(pn.run_line(r))
        check(back == {k: r[k] for k, _ in pn.LINE_KEYS}, back)
        check(pn.parse_run_line("peerfs side=ours dev=x") is None, "an fs line read as net")
        raws = [{"nic": "virtio", "dir": d, "rep": i, "bytes": 32 << 20, "mbps": m}
                for i, (d, m) in enumerate((("h2g", 300.0), ("h2g", 100.0), ("h2g", 200.0), ("g2h", 50.0)))]
        back = [pn.parse_raw_line(pn.raw_line(x)) for x in raws]
        check(back == raws, back)
        check(pn.parse_run_line(pn.raw_line(raws[0])) is None, "a raw line read as a run")
        rr = pn.raw_rows(back)
        check([(x["dir"], x["mbps"], x["min"], x["max"], x["n"]) for x in rr]
              == [("h2g", 200.0, 100.0, 300.0, 3), ("g2h", 50.0, 50.0, 50.0, 1)], rr)
        check(pn.raw_row_line(rr[0]) == "bench-peer net raw nic=virtio dir=host-to-guest ours_mbps=200.000 "
              "min=100.000 max=300.000 n=3", pn.raw_row_line(rr[0]))
        check("virtio-net host-to-guest: 200 [100..300] (n=3)" in pn.markdown([], rr, "t"), "raw in markdown")


class FakeServer:
    """Stands in for HostServer: a fixed port and canned iperf output."""
    port = 4321

    def __init__(self, text):
        self.text = text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def output(self):
        return self.text


class FakeAppliance:
    def __init__(self, answer):
        self.sent, self.answer = [], answer

    def shell(self, m, line, timeout=30):
        self.sent.append(line)
        return self.answer


class FakeLinux:
    def __init__(self, answer):
        self.sent, self.answer = [], answer

    def sendline(self, line):
        self.sent.append(line)

    def expect(self, pattern, timeout):
        return self.answer + "\nPEER-READY"


@qemu_test(weight=0)
def peernet_drivers(ctx):
    import argparse
    import harness
    import peernetrun as pnr
    a = argparse.Namespace(secs=5)
    w = w_of(d="g2h", streams=4)
    real = (harness.shell, pnr.HostServer, pnr.host_client)
    try:
        pnr.HostServer = lambda: FakeServer(CSV4.replace("0.0-5.0", "0.0-10.0").replace("0.0-5.1", "0.0-10.1"))
        with ctx.subtest("ours_guest_to_host"):
            fake = FakeAppliance("bench net proto=tcp dir=tx remote=10.0.2.2 streams=4 bytes=1 ms=10000 mbps=1.0\n")
            harness.shell = fake.shell
            r = pnr.ours_run(None, {}, w, 1, a)
            check(fake.sent == ["bench net tx=10.0.2.2:4321 streams=4 wait=100"], fake.sent)
            check(r and r["side"] == "ours" and r["streams"] == 4 and r["secs"] == 10 and r["rep"] == 1, r)
            # The guest's error instead of a result: no run, whatever the server printed.
            harness.shell = FakeAppliance("bench net: 1 of 4 iperf clients failed: aborted-remote\n").shell
            check(pnr.ours_run(None, {}, w, 1, a) is None, "a failed guest run counted")
        with ctx.subtest("linux_guest_to_host"):
            lx = FakeLinux("PEER-IPERF [SUM] 0.0-10.0 sec ...")
            r = pnr.linux_run(lx, 5555, w, 0, a)
            check(lx.sent == ["tx 10.0.2.2 4321 10 4 100"], lx.sent)
            check(r and r["side"] == "linux" and abs(r["mbps"] - 819.061026) < 1e-6, r)
            lx = FakeLinux("PEER-FAIL iperf -c 10.0.2.2 -p 4321: exit 1")
            check(pnr.linux_run(lx, 5555, w, 0, a) is None, "a failed Linux run counted")
        with ctx.subtest("linux_host_to_guest"):
            got = []
            pnr.host_client = lambda port, w, secs, budget: got.append((port, secs)) or CSV1.replace(
                "0.0-10.0", "0.0-5.0")
            r = pnr.linux_run(FakeLinux(""), 5555, w_of(), 0, a)
            check(got == [(5555, 5)] and r and r["dir"] == "h2g" and r["secs"] == 5, (got, r))
            # Two connections reported for one stream: not a result.
            pnr.host_client = lambda port, w, secs, budget: CSV4
            check(pnr.linux_run(FakeLinux(""), 5555, w_of(), 0, a) is None, "4 connections taken for 1 stream")
    finally:
        harness.shell, pnr.HostServer, pnr.host_client = real
    with ctx.subtest("host_server_real_iperf"):
        # The real host iperf2: listens on 127.0.0.1 only, and a 1 s client
        # run reads back as one connection.
        with pnr.HostServer() as srv:
            check(pnr.listening(srv.port), "the server is not listening")
            with open("/proc/net/tcp") as f:
                mine = [x.split() for x in f.readlines()[1:] if x.split()[1].endswith(f":{srv.port:04X}")
                        and x.split()[3] == "0A"]
            check(mine and all(x[1].startswith("0100007F:") for x in mine), f"not bound to 127.0.0.1: {mine}")
            subprocess.run(["iperf", "-c", "127.0.0.1", "-p", str(srv.port), "-t", "1"], capture_output=True,
                           timeout=30, check=True)
            text = srv.output()
        mbps, nbytes = pn.throughput(pn.parse_iperf_csv(text), 1, 1)
        check(mbps > 0 and nbytes > 0, text)
        check(not pnr.listening(srv.port), "the server outlived its run")
