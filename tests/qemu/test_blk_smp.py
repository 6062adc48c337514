"""Four CPUs, one NVMe (4 KiB namespace) and one AHCI disk: blk stress from
several threads on several CPUs, interrupt and polling completion switched
at run time (with the interrupt counts of `cpus` as the witness), and one
well-formed `bench blk` line for every workload on both drivers."""
import re

import blkutil
from blkutil import blk_run, blk_ok, blk_write_verify
import harness
from harness import qemu_test, check, boot_to_prompt

SMP = 4
DISKS = [{"kind": "nvme", "serial": "nvme0", "size": "128M", "lba": 4096},
         {"kind": "sata", "size": "128M", "port": 0}]
DEVS = ["nvme0n1", "sata0"]
WORKLOADS = [("randread", 4096, 16), ("randwrite", 4096, 16), ("read", 1 << 20, 2),
             ("write", 1 << 20, 2), ("mixed", 4096, 8)]


def poll_sleeps(m, dev):
    """Hybrid-polling waits that slept on the interrupt so far (blkstat)."""
    out = blk_run(m, f"blkstat {dev}", 30)
    s = re.search(r"polling: (\d+) waits slept", out)
    check(s, f"blkstat {dev} shows no polling line:\n{out}")
    return int(s.group(1))


def bench(m, dev, workload, bs, qd, mode, threads=1, secs=1):
    line = f"bench blk {dev} {workload} bs={bs} qd={qd} secs={secs} {mode}"
    if threads != 1:
        line += f" threads={threads}"
    out = blk_run(m, line, 120 + 10 * secs)
    runs = blkutil.parse_bench(out)
    check(len(runs) == 1, f"'{line}': expected one well-formed bench line, got {len(runs)}:\n{out}")
    r = runs[0]
    want = dict(dev=dev, workload=workload, bs=bs, qd=qd, secs=secs, mode=mode, threads=threads)
    diff = {k: (r[k], v) for k, v in want.items() if r[k] != v}
    check(not diff, f"'{line}': fields differ (got, want) {diff}:\n{out}")
    check(r["ops"] > 0 and r["iops"] > 0, f"'{line}': no I/O done:\n{out}")
    check(r["errors"] == 0, f"'{line}': {r['errors']} errors:\n{out}")
    check(r["p50"] <= r["p99"] <= r["p999"], f"'{line}': percentiles out of order:\n{out}")
    check(r["p50"] > 0, f"'{line}': median latency 0 us is not plausible under TCG:\n{out}")
    mb = r["iops"] * bs / 1e6
    if mb >= 5:
        # MB/s or MiB/s both fine; anything else is arithmetic gone wrong.
        check(0.8 * mb <= r["mbps"] <= 1.2 * mb, f"'{line}': mbps {r['mbps']} vs iops*bs {mb:.1f} MB/s:\n{out}")
    return r


@qemu_test(weight=7)
def blk_smp(ctx):
    m = ctx.machine()
    boot_to_prompt(m, smp=SMP, disks=DISKS)
    with ctx.subtest("lsblk"):
        devs = blkutil.parse_lsblk(blk_run(m, "lsblk", 30))
        check(set(devs) == set(DEVS), f"lsblk lists {sorted(devs)}")
        ctx.note("queues: " + ", ".join(f"{n} {d.get('queues')}x{d.get('depth')}" for n, d in devs.items()))

    for dev in DEVS:
        with ctx.subtest(f"stress_{dev}"):
            out = blk_run(m, f"blk stress {dev} threads={SMP} secs=3", 180)
            s = blkutil.STRESS_RE.search(out)
            check(s, f"no 'stress {dev}: N ops, N errors, N mismatches' line:\n{out}")
            ops, errs, mism = (int(x) for x in s.groups()[1:])
            check(s.group(1) == dev and ops > 0 and errs == 0 and mism == 0,
                  f"stress {dev}: {ops} ops, {errs} errors, {mism} mismatches:\n{out}")
            ctx.note(f"stress {dev}: {ops} ops")
            if dev.startswith("nvme"):
                # One queue per CPU: threads on several CPUs use several.
                v = blk_run(m, "lsblk -v", 30)
                used = [int(n) for n in re.findall(r"^\s*queue \d+:.*?(\d+) submitted", v, re.M)]
                ctx.note(f"{dev}: submissions per queue {used}")
                check(sum(1 for n in used if n > 0) >= 2,
                      f"{dev}: stress from {SMP} threads used fewer than 2 hardware queues:\n{v}")

    for dev in DEVS:
        with ctx.subtest(f"modes_{dev}"):
            i0 = blkutil.irq_total(m)
            r_irq = bench(m, dev, "randread", 4096, 1, "irq")
            i1 = blkutil.irq_total(m)
            blk_ok(m, f"blk mode {dev} poll", 30)
            d = blkutil.parse_lsblk(blk_run(m, "lsblk", 30)).get(dev, {})
            check(d.get("mode") == "poll", f"lsblk does not show {dev} in poll mode: {d.get('line')}")
            blk_write_verify(m, dev, 123, 777, 201)
            i2 = blkutil.irq_total(m)
            s2 = poll_sleeps(m, dev)
            r_poll = bench(m, dev, "randread", 4096, 1, "poll")
            i3 = blkutil.irq_total(m)
            sleeps = poll_sleeps(m, dev) - s2
            d_irq, d_poll = i1 - i0, i3 - i2
            ctx.note(f"{dev}: irq mode {r_irq['ops']} ops {d_irq} interrupts; "
                     f"poll mode {r_poll['ops']} ops {d_poll} interrupts, {sleeps} hybrid sleeps")
            # Timer and IPI interrupts happen in both runs (same length);
            # device completions in the first, and in the second only for
            # waits that spun past the budget and slept on the interrupt.
            check(d_irq - d_poll >= r_irq["ops"] // 2 - sleeps,
                  f"{dev}: interrupts grew by {d_irq} over {r_irq['ops']} ops in irq mode and "
                  f"by {d_poll} over {r_poll['ops']} ops with {sleeps} sleeps in poll mode")
            blk_ok(m, f"blk mode {dev} irq", 30)
            d = blkutil.parse_lsblk(blk_run(m, "lsblk", 30)).get(dev, {})
            check(d.get("mode") == "irq", f"lsblk does not show {dev} back in irq mode: {d.get('line')}")
            blk_write_verify(m, dev, 1000, 513, 202)

    for dev in DEVS:
        for workload, bs, qd in WORKLOADS:
            with ctx.subtest(f"bench_{dev}_{workload}"):
                r = bench(m, dev, workload, bs, qd, "irq")
                ctx.note(f"{dev} {workload} bs={bs} qd={qd}: {r['iops']} IOPS {r['mbps']} MB/s "
                         f"p50 {r['p50']} us")
        with ctx.subtest(f"bench_{dev}_poll_threads"):
            bench(m, dev, "randread", 4096, 32, "poll", threads=2)

    with ctx.subtest("blkstat_after"):
        st = blkutil.blkstat(m)
        for dev in DEVS:
            s = st.get(dev)
            check(s, f"blkstat has no line for {dev}: {st}")
            check(s["read"] > 1000 and s["write"] > 1000 and s["errors"] == 0 and s["latency"] > 0,
                  f"{dev}: blkstat after the stress and benches: {s}")

    with ctx.subtest("poweroff"):
        harness.poweroff(m)
