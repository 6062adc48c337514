"""The file server's wait counters (`proto stat`, net/apfp.h struct
apfp_waits) move consistently under a put: every frame read is handed to a
worker and executed, the receive-gap histogram holds every receive
callback, every byte received is given back to TCP's window, every reply is
handed to lwIP and acknowledged, and an open connection has a line of its
own.  Only counts are compared: the times are printed, never judged."""
import os
import re
import subprocess
import tempfile
import time

import blkutil
import harness
import netutil
from harness import REPO, qemu_test, check, shell, poweroff

TOKEN = "proto-stat-test-secret-0123456789abcdef"
APFP = os.path.join(REPO, "build", "apfp")
MIB = 6


def kv(line):
    """key=value pairs of one `proto stat` line."""
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def stat_line(out, scope):
    mt = re.search(r"^" + re.escape(scope) + r" (wakes=.*)$", out, re.M)
    check(mt, f"no '{scope}' line:\n{out}")
    d = kv(mt.group(1))
    gaps = [int(x) for x in d.pop("gaps").split(",")]
    d = {k: int(v) for k, v in d.items()}
    d["gaps"] = gaps
    return d


def proto_counts(m):
    out = shell(m, "proto", 60)
    mt = re.search(r"frames in (\d+) out (\d+); bytes in (\d+) out (\d+)", out)
    check(mt, out)
    return [int(x) for x in mt.groups()]


@qemu_test(weight=2)
def proto_stat(ctx):
    p = subprocess.run(["make", "-s", "--no-print-directory", "build/apfp"], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    check(p.returncode == 0, p.stdout.decode())
    img = blkutil.fresh_images(harness.vm.TMP_DIR, "proto_stat", {"nvme0n1": "nvme.img"})["nvme0n1"]
    tmp = tempfile.mkdtemp(prefix="proto-stat-")
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write(TOKEN + "\n")
    src = os.path.join(tmp, "src")
    with open(src, "wb") as f:
        f.write(os.urandom(MIB << 20))
    port = netutil.free_ports(1)[0]
    m = ctx.machine("stat")
    netutil.boot_file_server(m, img, port, ["mount = all", "format = blank", "token = " + TOKEN])
    cli = [APFP, "--timeout", "30000", "--secret-file", secret, f"127.0.0.1:{port}"]

    with ctx.subtest("idle_server_counts_nothing"):
        t = stat_line(shell(m, "proto stat", 60), "total")
        check(t["handoffs"] == 0 and t["recv_cbs"] == 0 and sum(t["gaps"]) == 0, t)

    p = subprocess.run(cli + ["put", src, "nvme0n1/f"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    check(p.returncode == 0, p.stdout.decode(errors="replace"))
    # The last reply's acknowledgement may still be on its way: wait for it
    # (bounded), then judge one snapshot.
    deadline = time.monotonic() + 20
    while True:
        out = shell(m, "proto stat", 60)
        t = stat_line(out, "total")
        if t["bytes_acked"] == t["bytes_sent"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(out.strip())
    frames_in, frames_out, bytes_in, bytes_out = proto_counts(m)
    ops = {mt.group(1): (int(mt.group(2)), int(mt.group(3)))
           for mt in re.finditer(r"^op (\w+) runs=(\d+) busy_us=(\d+)$", out, re.M)}

    with ctx.subtest("every_frame_handed_off_and_executed"):
        check(t["handoffs"] == frames_in and sum(r for r, _ in ops.values()) == frames_in, (t, ops, frames_in))
        check(ops.get("WRITE", (0, 0))[0] == MIB and ops.get("COMMIT", (0, 0))[0] == 1, ops)
        check(ops["WRITE"][1] > 0 and t["busy_us"] >= ops["WRITE"][1], (t, ops))
        check(1 <= t["wakes"] <= t["handoffs"], t)
    with ctx.subtest("histogram_holds_every_receive_callback"):
        check(t["recv_cbs"] > 0 and sum(t["gaps"]) == t["recv_cbs"], t)
        check(len(t["gaps"]) == 8, t)
    with ctx.subtest("every_byte_received_given_back_to_the_window"):
        check(t["recv_bytes"] == bytes_in == t["recved_bytes"] and bytes_in > MIB << 20, (t, bytes_in))
        check(0 < t["recved_calls"] and t["wnd_updates"] <= t["recved_calls"], t)
    with ctx.subtest("every_reply_sent_and_acknowledged"):
        check(t["replies"] == frames_out == frames_in and t["bytes_sent"] == bytes_out, (t, frames_out, bytes_out))
        check(t["bytes_acked"] == t["bytes_sent"], t)
    with ctx.subtest("net_lock_counted"):
        mt = re.search(r"^net_lock (acquires=.*)$", out, re.M)
        check(mt and int(kv(mt.group(1))["acquires"]) > 0, out)
    with ctx.subtest("open_connection_has_its_line"):
        hold = subprocess.Popen(cli + ["hold", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                out = shell(m, "proto stat", 60)
                mt = re.search(r"^conn (\S+) wakes=", out, re.M)
                if mt or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            check(mt, out)
            c = stat_line(out, "conn " + mt.group(1))
            # the handshake (HELLO, AUTH) at least, each frame executed
            check(c["handoffs"] >= 2 and c["replies"] == c["handoffs"] and
                  sum(c["gaps"]) == c["recv_cbs"] > 0, c)
        finally:
            hold.kill()
            hold.wait()
    poweroff(m)
