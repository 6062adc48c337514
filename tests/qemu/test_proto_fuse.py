"""The network FUSE mount and large transfers against the appliance.

The appliance formats a blank 2 GiB NVMe disk at boot and exports it; the
host reaches it over 127.0.0.1 forwarded to the guest's tcp/2049.  Through
build/apfp-fuse mounted on the host, the cases of tests/fuse/test_apfp_fuse.py
that need no server restart run against the appliance: files of 0 B .. 30 MiB
copied in and back compared by SHA-256 (several threads at once), the
namespace (mv, ln, ln -s, renameat2 flags), and the seeded random-operation
tester compared with a local directory.  Then the CLI puts and gets a 1 GiB
file (unstable writes and COMMIT; pipelined reads), SHA-256 compared both
ways.  The appliance powers off, boots again and the 1 GiB file and the
random tree read back the same through a new mount; the host's fsck finds
the disk clean.  Without /dev/fuse the mount cases are reported skipped,
never passed; the 1 GiB round trip runs regardless.
"""
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time

import blkutil
import harness
import netutil
from harness import REPO, qemu_test, check, poweroff

TOKEN = "proto-fuse-test-secret-0123456789abcdef"
BIG = 1 << 30


def load_fuse_cases():
    fuse_dir = os.path.join(REPO, "tests", "fuse")
    if fuse_dir not in os.sys.path:
        os.sys.path.insert(0, fuse_dir)
    spec = importlib.util.spec_from_file_location("apfp_fuse_cases", os.path.join(fuse_dir, "test_apfp_fuse.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.BUILD = os.path.join(REPO, "build")
    return mod


def boot(m, img, port):
    line = netutil.boot_file_server(m, img, port, ["mount = all", "format = blank", "token = " + TOKEN], size="2G")
    check("1 exports: /nvme0n1" in line, line)


def mount(cases, tmp, port, mnt):
    return cases.FuseDaemon([os.path.join(REPO, "build", "apfp-fuse"), f"127.0.0.1:{port}/nvme0n1", mnt, "-f",
                             "-o", f"secret_file={os.path.join(tmp, 'secret')},timeout=30"],
                            mnt, os.path.join(tmp, "fuse.log"))


def apfp(tmp, port, *args, timeout=1200):
    p = subprocess.run([os.path.join(REPO, "build", "apfp"), "--secret-file", os.path.join(tmp, "secret"),
                        f"127.0.0.1:{port}", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    check(p.returncode == 0, f"apfp {' '.join(args)}: exit {p.returncode}: {p.stdout.decode(errors='replace')[-600:]}")
    return p.stdout.decode(errors="replace")


def write_big(path):
    """BIG bytes that differ in every MiB (a repeated block would hide a
    misplaced one), and their SHA-256."""
    h = hashlib.sha256()
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for i in range(BIG >> 20):
            block[0:8] = i.to_bytes(8, "little")
            f.write(block)
            h.update(block)
    return h.hexdigest()


@qemu_test(weight=4)
def proto_fuse(ctx):
    p = subprocess.run(["make", "-s", "--no-print-directory", "build/apfp", "build/apfp-fuse", "build/cowfs"],
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    check(p.returncode == 0, f"building the clients:\n{p.stdout.decode()}")
    cases = load_fuse_cases()
    img = blkutil.fresh_images(harness.vm.TMP_DIR, "proto_fuse", {"nvme0n1": "nvme.img"})["nvme0n1"]
    tmp = tempfile.mkdtemp(prefix="proto-fuse-")
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    fuse = os.path.exists("/dev/fuse")
    fm = None
    try:
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(TOKEN + "\n")
        port = netutil.free_ports(1)[0]
        m = ctx.machine("first")
        boot(m, img, port)
        random_tree = None
        for name, fn in [("fuse_files_sha256", lambda: cases.files_sha256(tmp, mnt)),
                         ("fuse_namespace", lambda: cases.namespace(mnt)),
                         ("fuse_random_ops", lambda: cases.random_ops(tmp, mnt, seed=4321, count=300))]:
            if not fuse:
                ctx.skip(name, "/dev/fuse is absent")
                continue
            with ctx.subtest(name):
                if fm is None:
                    fm = mount(cases, tmp, port, mnt)
                fn()
        if fm is not None:
            random_tree = cases.listing(os.path.join(mnt, "rnd"))
            fm.unmount()
            fm = None
        with ctx.subtest("put_get_1GiB"):
            big = os.path.join(tmp, "big")
            want = write_big(big)
            t0 = time.monotonic()
            apfp(tmp, port, "put", big, "nvme0n1/big")
            ctx.note(f"put 1 GiB in {time.monotonic() - t0:.1f} s")
            os.unlink(big)
            out = apfp(tmp, port, "stat", "nvme0n1/big")
            check(re.search(rf"\bsize: {BIG}\b", out), out)
            t0 = time.monotonic()
            apfp(tmp, port, "get", "nvme0n1/big", big)
            ctx.note(f"got 1 GiB in {time.monotonic() - t0:.1f} s")
            check(os.path.getsize(big) == BIG and cases.sha256_file(big) == want, "the 1 GiB file came back different")
            os.unlink(big)
        poweroff(m)
        m = ctx.machine("second")
        boot(m, img, port)
        with ctx.subtest("after_reboot"):
            apfp(tmp, port, "get", "nvme0n1/big", big)
            check(cases.sha256_file(big) == want, "the 1 GiB file read back different after the reboot")
            os.unlink(big)
            if fuse and random_tree is not None:
                fm = mount(cases, tmp, port, mnt)
                again = cases.listing(os.path.join(mnt, "rnd"))
                check(again == random_tree and len(again) > 0, "the random tree differs after the reboot")
                fm.unmount()
                fm = None
        poweroff(m)
        with ctx.subtest("clean_after_poweroff"):
            p = subprocess.run([os.path.join(REPO, "build", "cowfs"), "check", img], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=600)
            check(p.returncode == 0, p.stdout.decode(errors="replace"))
    finally:
        if fm is not None:
            fm.kill()
        shutil.rmtree(tmp, ignore_errors=True)
