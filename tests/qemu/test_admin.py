"""Remote administration through the file protocol (docs/protocol.md §5.4).

One boot with two blank NVMe disks formatted and mounted (`mount = all`,
`format = blank`), a page cache that keeps dirty data until a sync, a token, and anonymous sessions allowed (`proto_anon`)
so the ADMIN gate itself is what refuses them.  From the host, over
127.0.0.1 forwarded to the guest's tcp/2049, `build/apfp admin` runs: `df`
(the mounted disk), `log` (the boot banner, streamed in 1 KiB pieces by
continuation requests, and the console line of this very request), a
snapshot created and listed, `fsck` clean, a failing command (exit 6); every
command the appliance ran is on its console with the client's address.
Refused: an anonymous session (exit 3, the console says why), a wrong
secret (exit 3), a command not on the allow-list (exit 3, nothing run).

Live output: with a file of the console's `fill` still dirty on the second
disk, `sync` commits the first disk at once and the second for seconds.
The CLI's --trace lines (one per reply) show a reply carrying the first
disk's line while the command still runs, and a later one the second's:
a server that answered only at the end would send all in one reply marked
done.  While it runs, a second client's `stat` is answered and then a
second ADMIN is refused BUSY (so the command was still running after the
stat's answer).  A client killed mid-run leaves the command to finish on
its own: its end is logged and the next ADMIN runs.

Last, `admin poweroff 3` answers and then powers the machine off: qemu
exits with that status.
"""
import os
import re
import subprocess
import tempfile

import blkutil
import harness
import netutil
from harness import REPO, qemu_test, check, boot_to_prompt, shell, vm

TOKEN = "admin-test-secret-0123456789abcdef"
APFP = os.path.join(REPO, "build", "apfp")
PEER = r"10\.0\.2\.2:\d+"


def build():
    p = subprocess.run(["make", "-s", "--no-print-directory", APFP], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    check(p.returncode == 0, f"building apfp:\n{p.stdout.decode()}")


def apfp(port, auth, *words, timeout=180):
    """Run the CLI; returns (exit status, stdout, stderr)."""
    p = subprocess.run([APFP, *auth, f"127.0.0.1:{port}", "admin", *words], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


TRACE = re.compile(r"^admin: reply at offset (\d+): (\d+) bytes, (running|ended|done)$")


def follow(port, auth, *words):
    """Start the CLI with --trace, its stderr (trace lines) and stdout (the
    output, flushed per reply) in one pipe, in the order it wrote them."""
    return subprocess.Popen([APFP, *auth, f"127.0.0.1:{port}", "admin", "--trace", "--wait", "300", *words],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_line(p, what, got):
    """The CLI's next line (a deadline comes from the test's own timeout
    in the harness); fails when it ended first."""
    line = p.stdout.readline()
    if not line:
        check(False, f"the CLI ended (exit {p.wait()}) before {what}:\n{''.join(got)}")
    got.append(line)
    return line.rstrip("\n")


def replies(lines):
    """(offset, bytes, state) of each trace line."""
    return [(int(mm[1]), int(mm[2]), mm[3]) for mm in (TRACE.match(ln.rstrip("\n")) for ln in lines) if mm]


@qemu_test(weight=2)
def admin(ctx):
    build()
    imgs = blkutil.fresh_images(harness.vm.TMP_DIR, "admin", {"nvme0n1": "nvme.img", "nvme1n1": "nvme1.img"})
    tmp = tempfile.mkdtemp(prefix="admin-")
    good, bad = os.path.join(tmp, "secret"), os.path.join(tmp, "wrong")
    with open(good, "w") as f:
        f.write(TOKEN + "\n")
    with open(bad, "w") as f:
        f.write("not-the-secret-0123456789abcdef\n")
    key = ["--secret-file", good]

    port = netutil.free_ports(1)[0]
    m = ctx.machine()
    out = boot_to_prompt(m, smp=2, nic=vm.vm_nic_args("virtio", [(port, 2049)]),
                   disks=[{"kind": "nvme", "path": imgs["nvme0n1"], "size": "64M"},
                          # writes at 4 MiB/s: its sync lasts seconds whatever the host's speed
                          {"kind": "nvme", "path": imgs["nvme1n1"], "size": "256M",
                           "throttle": {"bps-write": 4 << 20}}],
                   config=["mount = all", "format = blank", "token = " + TOKEN], 
                   # The sync subtests' dirty data stays in the page cache
                   # until sync: below the background writeback threshold
                   # (a quarter of the budget) and no periodic writeback.
                   args="proto_anon pcache_mb=128 pcache_wb_ms=3600000")
    served = r"^proto: file server on tcp/2049: token required, anonymous read-only sessions allowed"
    if not re.search(served, out, re.M):
        m.expect(served, 60)

    with ctx.subtest("df_with_the_secret"):
        rc, out, err = apfp(port, key, "df")
        check(rc == 0 and "/nvme0n1" in out, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" ran 'df'", 30)
        m.expect(r"admin: " + PEER + r" 'df': result 0, \d+ bytes", 30)

    with ctx.subtest("log_streamed_in_pieces"):
        rc, out, err = apfp(port, key, "--chunk", "1024", "log")
        check(rc == 0, f"exit {rc}\n{err}")
        check("appliance kernel" in out, f"no boot banner in the log:\n{out[:2000]}")
        check(len(out) > 3 * 1024, f"only {len(out)} bytes: the continuation was not exercised")
        # the line logged before it ran is the log's last one
        check(re.search(r"admin: " + PEER + r" ran 'log'\n$", out), out[-500:])
        full = apfp(port, key, "log")
        check(full[0] == 0 and "appliance kernel" in full[1], full[2])

    with ctx.subtest("snapshot_and_fsck"):
        rc, out, err = apfp(port, key, "snapshot", "create", "/nvme0n1", "before-upgrade")
        check(rc == 0 and "snapshot before-upgrade created" in out, f"exit {rc}\n{out}{err}")
        rc, out, err = apfp(port, key, "snapshot", "list", "/nvme0n1")
        check(rc == 0 and "before-upgrade" in out, f"exit {rc}\n{out}{err}")
        rc, out, err = apfp(port, key, "fsck", "/nvme0n1")
        check(rc == 0 and "fsck: /nvme0n1: clean" in out, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" ran 'snapshot create /nvme0n1 before-upgrade'", 30)

    with ctx.subtest("failing_command_exit_6"):
        rc, out, err = apfp(port, key, "fsck", "/nothing-mounted-here")
        check(rc == 6 and "failed on the appliance" in err, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" 'fsck /nothing-mounted-here': result 1", 30)

    with ctx.subtest("anonymous_refused"):
        rc, out, err = apfp(port, ["--anon"], "df")
        check(rc == 3 and "needs the secret" in err and not out, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" refused: ADMIN needs the secret", 30)

    with ctx.subtest("wrong_secret_refused"):
        rc, out, err = apfp(port, ["--secret-file", bad], "df")
        check(rc == 3 and not out, f"exit {rc}\n{out}{err}")

    with ctx.subtest("not_on_the_allow_list"):
        rc, out, err = apfp(port, key, "mkfs", "nvme0n1")
        check(rc == 3 and "not a command the appliance runs remotely" in err, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" refused 'mkfs nvme0n1': mkfs is not a remote command", 30)
        rc, out, err = apfp(port, key, "ls", "/nvme0n1")   # still mounted and served
        check(rc == 0, f"exit {rc}\n{out}{err}")

    with ctx.subtest("sync_output_arrives_while_it_runs"):
        # Dirty data on the second disk only: sync commits /nvme0n1 (its
        # line), then writes this back, which takes seconds.  (The last
        # command's end line first: printed after its reply, it would
        # interleave with the console command.)
        m.expect(r"admin: " + PEER + r" 'ls /nvme0n1': result 0", 30)
        out = shell(m, "fill /nvme1n1/dirty 24m", 300)
        check(re.search(r"^fill /nvme1n1/dirty size 25165824", out, re.M), out)
        p = follow(port, key, "sync")
        got = []
        try:
            # Up to the first disk's line, which must come in a reply of a
            # command still running.
            while not re.match(r"sync: /nvme0n1 committed", read_line(p, "the first disk's line", got)):
                pass
            first = replies(got)
            check(any(n and state == "running" for _, n, state in first),
                  f"the first output did not come while the command ran:\n{''.join(got)}")
            # Another client is served meanwhile ...
            st = subprocess.run([APFP, *key, f"127.0.0.1:{port}", "stat", "nvme0n1"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=60)
            check(st.returncode == 0, f"stat while the command ran: exit {st.returncode}\n{st.stdout}")
            # ... and the command still runs after that answer: one at a time.
            rc, out, err = apfp(port, key, "df")
            check(rc == 4 and "another admin command is running" in err, f"exit {rc}\n{out}{err}")
            m.expect(r"admin: " + PEER + r" refused 'df': another admin command is running", 30)
            got.append(p.stdout.read())    # to its end (--wait bounds it)
            p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
        text = "".join(got)
        check(p.returncode == 0, f"exit {p.returncode}\n{text}")
        check(re.search(r"^sync: /nvme1n1 committed in \d+ ms$", text, re.M), text)
        reps = replies(text.splitlines())
        later = [n for off, n, _ in reps if off > 0]
        check(sum(later) > 0 and reps[-1][2] == "done", f"no later reply brought the rest:\n{text}")
        m.expect(r"admin: " + PEER + r" 'sync': result 0, \d+ bytes", 120)

    with ctx.subtest("client_gone_mid_run"):
        out = shell(m, "fill /nvme1n1/dirty2 8m", 300)
        check(re.search(r"^fill /nvme1n1/dirty2 size 8388608", out, re.M), out)
        p = follow(port, key, "sync", "/nvme1n1")
        got = []
        read_line(p, "the first reply", got)
        p.kill()
        p.wait()
        # The command ends on its own, and the next one runs.
        m.expect(r"admin: " + PEER + r" 'sync /nvme1n1': result 0, \d+ bytes", 120)
        rc, out, err = apfp(port, key, "df")
        check(rc == 0 and "/nvme1n1" in out, f"exit {rc}\n{out}{err}")

    with ctx.subtest("poweroff_answers_then_powers_off"):
        rc, out, err = apfp(port, key, "poweroff", "3")
        check(rc == 0 and "powering off in 1 s (status 3)" in out, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" ran 'poweroff 3'", 30)
        got = m.wait_exit(120)
        check(got == (3 << 1) | 1, f"qemu exit status {got}, expected {(3 << 1) | 1}")
