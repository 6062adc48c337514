"""Remote administration through the file protocol (docs/protocol.md §5.4).

One boot with a blank NVMe disk formatted and mounted (`mount = all`,
`format = blank`), a token, and anonymous sessions allowed (`proto_anon`)
so the ADMIN gate itself is what refuses them.  From the host, over
127.0.0.1 forwarded to the guest's tcp/2049, `build/apfp admin` runs: `df`
(the mounted disk), `log` (the boot banner, streamed in 1 KiB pieces by
continuation requests, and the console line of this very request), a
snapshot created and listed, `fsck` clean, a failing command (exit 6); every
command the appliance ran is on its console with the client's address.
Refused: an anonymous session (exit 3, the console says why), a wrong
secret (exit 3), a command not on the allow-list (exit 3, nothing run).
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
from harness import REPO, qemu_test, check, boot_to_prompt, vm

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


@qemu_test(weight=2)
def admin(ctx):
    build()
    img = blkutil.fresh_images(harness.vm.TMP_DIR, "admin", {"nvme0n1": "nvme.img"})["nvme0n1"]
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
                   disks=[{"kind": "nvme", "path": img, "size": "64M"}],
                   config=["mount = all", "format = blank", "token = " + TOKEN], args="proto_anon")
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

    with ctx.subtest("poweroff_answers_then_powers_off"):
        rc, out, err = apfp(port, key, "poweroff", "3")
        check(rc == 0 and "powering off in 1 s (status 3)" in out, f"exit {rc}\n{out}{err}")
        m.expect(r"admin: " + PEER + r" ran 'poweroff 3'", 30)
        got = m.wait_exit(120)
        check(got == (3 << 1) | 1, f"qemu exit status {got}, expected {(3 << 1) | 1}")
