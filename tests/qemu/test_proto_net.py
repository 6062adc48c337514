"""The file protocol server in the appliance (net/apfp.c) from the host,
over 127.0.0.1:PORT forwarded to the guest's tcp/2049, with the host client
(build/apfp, tools/apfp_client.c) and raw sockets for hostile input:
handshakes with the right and a wrong secret, anonymous sessions, EXPORTS
(empty: these boots mount nothing), many connections at once, the connection
limit, a client that never finishes its handshake dropped at the deadline,
garbage and oversized frames closing only their connection, the rate limit
on wrong secrets, and the server still serving after all of it.  Without a
token in config.txt only anonymous read-only sessions are possible; that
boot also checks the idle deadline, the buffer bound under a stream of 1 MiB
frames nobody reads the replies of, and the counters in /metrics.

The CLI's bench-null line (null round trips per second at QD1 and QD8) is
printed into the log, never judged: timings do not belong in `make test`."""
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request

import netutil
from harness import REPO, qemu_test, check, boot_to_prompt, shell, vm

APFP = os.path.join(REPO, "build", "apfp")
PROTO_PORT = 2049
TOKEN = "proto-test-secret-0123456789abcdef"
MAX_CONN = 6

MAGIC = b"APFP"
VERSION = 3                 # the protocol version after HELLO (proto/wire.h PROTO_VERSION_MAX)
OP_HELLO, OP_AUTH, OP_PING, OP_EXPORTS = 0x01, 0x02, 0x03, 0x04
F_REPLY = 0x1
E_TOOBIG, E_CONNLIMIT = 10012, 10018


def build_tool():
    p = subprocess.run(["make", "-s", "--no-print-directory", "build/apfp"], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    check(p.returncode == 0 and os.path.exists(APFP), f"building build/apfp:\n{p.stdout.decode()}")


def apfp(port, *args, secret=None, anon=False, timeout=60):
    """Run the CLI: (exit status, stdout + stderr)."""
    cmd = [APFP, "--timeout", "15000"]
    if anon:
        cmd.append("--anon")
    if secret:
        cmd += ["--secret-file", secret]
    cmd += [f"127.0.0.1:{port}", *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def header(op, length, version=1, flags=0, rid=0):
    return MAGIC + struct.pack("<BBHIIIIII", version, op, flags, rid, length, 0, 0, 0, 0)


def parse_header(b):
    check(len(b) >= 32 and b[:4] == MAGIC, f"not a frame header: {b[:32].hex()}")
    version, op, flags, rid, length, status = struct.unpack("<BBHIII", b[4:20])
    return {"version": version, "op": op, "flags": flags, "id": rid, "length": length, "status": status}


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            break
        out += b
    return out


def closed_within(s, seconds):
    """True when the server closes s (EOF or reset) within the time; reads
    and discards whatever comes first."""
    s.settimeout(seconds)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def anon_session(port):
    """An anonymous handshake by hand (untagged frames): the socket."""
    s = netutil.connect(port, 30)
    body = struct.pack("<BBIHB", VERSION, VERSION, 1 << 20, 8, 1) + os.urandom(32) + struct.pack("<H", 3) + b"raw"
    s.sendall(header(OP_HELLO, len(body)) + body)
    h = parse_header(recv_exact(s, 32))
    check(h["status"] == 0 and h["flags"] & F_REPLY, f"HELLO reply {h}")
    rep = recv_exact(s, h["length"])
    check(rep[0] == VERSION, f"server chose version {rep[0]}")
    s.sendall(header(OP_AUTH, 32, version=VERSION, rid=1) + bytes(32))
    h = parse_header(recv_exact(s, 32))
    check(h["status"] == 0 and h["op"] == OP_AUTH, f"AUTH reply {h}")
    recv_exact(s, h["length"])
    return s


def anonymous_ping_and_exports(port):
    rc, out = apfp(port, "ping", anon=True)
    check(rc == 0 and "anonymous session" in out, (rc, out))
    rc, out = apfp(port, "exports", anon=True)
    check(rc == 0 and "exports: 0" in out, (rc, out))


def boot(ctx, name, config, args, http=None):
    port = netutil.free_ports(1)[0]
    m = ctx.machine(name)
    fwd = [(port, PROTO_PORT)] + ([(http, 80)] if http else [])
    out = boot_to_prompt(m, nic=vm.vm_nic_args("e1000e", fwd), disks=["nvme"], config=config, args=args)
    rx = r"^proto: file server on tcp/2049: [^\n]*"
    mt = re.search(rx, out, re.M)
    if not mt:
        mt = m.expect(rx, 60)
    return m, port, mt.group(0)


@qemu_test(weight=3)
def proto_net(ctx):
    build_tool()
    m, port, line = boot(ctx, "token", ["token = " + TOKEN], f"proto_anon proto_max_conn={MAX_CONN}")
    tmp = tempfile.mkdtemp(prefix="apfp-")
    secret = os.path.join(tmp, "secret")
    wrong = os.path.join(tmp, "wrong")
    with open(secret, "w") as f:
        f.write(TOKEN + "\n")
    with open(wrong, "w") as f:
        f.write(TOKEN[:-1] + "X\n")

    with ctx.subtest("boot_line"):
        check("token required, anonymous read-only sessions allowed" in line and
              f"up to {MAX_CONN} connections" in line and "0 exports" in line, line)
    with ctx.subtest("right_secret"):
        rc, out = apfp(port, "ping", "3", secret=secret)
        check(rc == 0 and "3 replies" in out and f"keyed session, version {VERSION}" in out, (rc, out))
    with ctx.subtest("wrong_secret"):
        before = len(m.output())
        rc, out = apfp(port, "ping", secret=wrong)
        check(rc == 3 and "authentication failed" in out, (rc, out))
        m.expect(r"proto: [0-9.:]+: handshake refused: client proof wrong: wrong secret", 30)
        check(before < len(m.output()), "no log line")
        # a success clears the peer's failure count (all host clients share 10.0.2.2)
        rc, out = apfp(port, "ping", secret=secret)
        check(rc == 0, (rc, out))
    with ctx.subtest("anonymous_session"):
        anonymous_ping_and_exports(port)
    with ctx.subtest("exports_keyed"):
        rc, out = apfp(port, "exports", secret=secret)
        check(rc == 0 and "exports: 0" in out, (rc, out))
    with ctx.subtest("concurrent_clients"):
        procs = [subprocess.Popen([APFP, "--timeout", "30000", "--secret-file", secret, f"127.0.0.1:{port}",
                                   "ping", "40"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(MAX_CONN)]
        outs = []
        for p in procs:
            out, _ = p.communicate(timeout=180)
            outs.append((p.returncode, out.decode(errors="replace")))
        check(all(rc == 0 and "40 replies" in o for rc, o in outs), outs)
    with ctx.subtest("connection_limit"):
        holds = [subprocess.Popen([APFP, "--timeout", "30000", "--secret-file", secret, f"127.0.0.1:{port}",
                                   "hold", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(MAX_CONN)]
        try:
            for p in holds:
                got = p.stdout.readline().decode(errors="replace")
                check("hold: connected" in got, f"a holder did not connect: {got!r}")
            rc, out = apfp(port, "ping", secret=secret)
            check(rc == 4 and "too many connections" in out, (rc, out))
        finally:
            for p in holds:
                p.kill()
                p.wait(timeout=30)
        # the slots come back once the server has seen the holders go
        deadline = time.monotonic() + 30
        while True:
            rc, out = apfp(port, "ping", secret=secret)
            if rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        check(rc == 0, f"no connection after the holders left: {rc} {out}")
    with ctx.subtest("handshake_deadline"):
        silent = netutil.connect(port, 30)
        partial = netutil.connect(port, 30)
        partial.sendall(header(OP_HELLO, 100)[:20])     # a header never finished
        t0 = time.monotonic()
        check(closed_within(silent, 20), "a silent client was not dropped within 20 s")
        waited = time.monotonic() - t0
        check(8.5 < waited < 16, f"silent client dropped after {waited:.1f} s, the deadline is 10 s")
        check(closed_within(partial, 5), "a client stuck in its HELLO header was not dropped")
        silent.close()
        partial.close()
        m.expect(r"proto: [0-9.:]+: handshake not completed in 10 s: dropped", 30)
    with ctx.subtest("garbage_closes_only_its_connection"):
        keep = anon_session(port)
        g = netutil.connect(port, 30)
        g.sendall(os.urandom(2000))
        check(closed_within(g, 10), "garbage did not close the connection")
        g.close()
        keep.sendall(header(OP_PING, 0, version=VERSION, rid=7))
        h = parse_header(recv_exact(keep, 32))
        check(h["status"] == 0 and h["id"] == 7 and h["op"] == OP_PING, f"other session: {h}")
        # garbage after a handshake
        keep.sendall(b"\x00" * 64)
        check(closed_within(keep, 10), "bad magic after the handshake did not close")
        keep.close()
    with ctx.subtest("oversized_frames"):
        s = netutil.connect(port, 30)
        s.sendall(header(OP_HELLO, 1 << 30))
        h = parse_header(recv_exact(s, 32))
        check(h["status"] == E_TOOBIG, f"oversized HELLO answered {h}")
        check(closed_within(s, 10), "oversized HELLO did not close")
        s.close()
        s = anon_session(port)
        s.sendall(header(OP_PING, (1 << 20) + 8192, version=VERSION, rid=9))
        h = parse_header(recv_exact(s, 32))
        check(h["status"] == E_TOOBIG and h["id"] == 9, f"oversized frame answered {h}")
        check(closed_within(s, 10), "oversized frame did not close")
        s.close()
    with ctx.subtest("wrong_secret_rate_limited"):
        for _ in range(3):
            rc, out = apfp(port, "ping", secret=wrong)
            check(rc == 3, (rc, out))
        rc, out = apfp(port, "ping", secret=secret)
        check(rc == 4 and "too many failed authentications" in out, (rc, out))
        time.sleep(1.5)                                  # the first lockout is 1 s
        rc, out = apfp(port, "ping", secret=secret)
        check(rc == 0, (rc, out))
    with ctx.subtest("still_serving_and_counted"):
        rc, out = apfp(port, "ping", "5", secret=secret)
        check(rc == 0 and "5 replies" in out, (rc, out))
        out = shell(m, "proto", 30)
        mt = re.search(r"(\d+) refused \(limit\), \d+ refused \(memory\), (\d+) handshake timeouts, \d+ idle "
                       r"drops, (\d+) auth failures, (\d+) protocol errors", out)
        check(mt, out)
        limit, hs, auth, proto = (int(x) for x in mt.groups())
        check(limit >= 1 and hs >= 2 and auth >= 4 and proto >= 2, out)
    with ctx.subtest("bench_null_runs"):
        rc, out = apfp(port, "bench-null", "300", secret=secret, timeout=300)
        check(rc == 0 and re.search(r"^bench proto null qd=1 ops_per_s=\d+", out, re.M) and
              re.search(r"^bench proto null qd=8 ops_per_s=\d+", out, re.M), (rc, out))
        print(out.strip())


@qemu_test(weight=2)
def proto_net_no_token(ctx):
    build_tool()
    http = netutil.free_ports(1)[0]
    m, port, line = boot(ctx, "notoken", [], "proto_idle_s=3", http=http)
    with ctx.subtest("boot_line"):
        check("no token configured: anonymous read-only access only" in line, line)
    with ctx.subtest("anonymous_works"):
        anonymous_ping_and_exports(port)
    with ctx.subtest("keyed_refused"):
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("any secret at all\n")
            f.flush()
            rc, out = apfp(port, "ping", secret=f.name)
        check(rc == 3 and "authentication failed" in out, (rc, out))
        m.expect(r"handshake refused: no secret configured: anonymous only", 30)
    with ctx.subtest("idle_deadline"):
        s = anon_session(port)
        s.sendall(header(OP_PING, 0, version=VERSION, rid=3))
        check(parse_header(recv_exact(s, 32))["status"] == 0, "PING on the raw session")
        t0 = time.monotonic()
        check(closed_within(s, 15), "an idle session was not dropped within 15 s (proto_idle_s=3)")
        waited = time.monotonic() - t0
        check(2.5 < waited < 8, f"idle session dropped after {waited:.1f} s, proto_idle_s=3")
        s.close()
        m.expect(r"proto: [0-9.:]+: idle for 3 s: dropped", 30)
    with ctx.subtest("memory_bound_under_large_frames"):
        # 48 frames of 1 MiB (PINGs with a body: each answered BADMSG, the
        # connection goes on) sent without reading a reply: the server holds
        # at most a few of them at once, and still answers another client.
        big = anon_session(port)
        sender_ok = []

        def send_all_frames():
            try:
                for i in range(48):
                    big.sendall(header(OP_PING, 1 << 20, version=VERSION, rid=100 + i) + bytes(1 << 20))
                sender_ok.append(True)
            except OSError as e:
                sender_ok.append(e)
        t = threading.Thread(target=send_all_frames, daemon=True)
        t.start()
        time.sleep(2)
        anonymous_ping_and_exports(port)
        t.join(timeout=240)
        check(sender_ok == [True], f"sending the large frames: {sender_ok}")
        statuses = []
        for _ in range(48):
            h = parse_header(recv_exact(big, 32))
            recv_exact(big, h["length"])
            statuses.append(h["status"])
        check(statuses == [10010] * 48, f"replies to PINGs with a body: {statuses[:8]}...")
        big.close()
        out = shell(m, "proto", 30)
        mt = re.search(r"buffers: \d+ bytes now, (\d+) high", out)
        check(mt and int(mt.group(1)) <= (4 << 20) + (64 << 10), f"buffer high-water mark over 4 MiB:\n{out}")
    with ctx.subtest("metrics"):
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=60) as r:
            text = r.read().decode()
        for rx in (r'^appliance_proto_connections_total\{outcome="idle_drop"\} [1-9]',
                   r'^appliance_proto_connections_total\{outcome="auth_failed"\} [1-9]',
                   r'^appliance_proto_sessions_total\{kind="anonymous"\} [2-9]',
                   r'^appliance_proto_requests_total [1-9]'):
            check(re.search(rx, text, re.M), f"no {rx} in /metrics:\n" +
                  "\n".join(ln for ln in text.splitlines() if "proto" in ln))
