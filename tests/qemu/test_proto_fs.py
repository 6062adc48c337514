"""The appliance serves its filesystem over the file protocol.

A blank NVMe disk is formatted and mounted at boot and exported (config.txt
`export = all`, the default); from the host, over 127.0.0.1 forwarded to the
guest's tcp/2049, the same end-to-end suite that runs against the host
server in `make test-host` (tests/host/test_apfp_serve*.c, external mode)
drives every operation against the appliance: data of many sizes, names,
links, renames, readdir cookies, stale and forged handles, setattr and
exclusive create, fsstat, server-side copy (a reflink when aligned), snapshots (and reads
through their handles), special files (MKNOD), write stability and
the verifier; then three clients at once run the first cases.  The files are visible from the appliance's own shell, and
the host's fsck finds the disk clean after poweroff.  The appliance boots
again: the file written FILE_SYNC reads back through its old handle (the
handle key comes from the token), and the write verifier has changed, so
clients resend their unstable writes.  A second boot exports the disk read-only
(`export = nvme0n1:ro`): writes are refused with ROFS.
"""
import os
import re
import subprocess
import tempfile
import zlib

import blkutil
import harness
import netutil
from harness import REPO, qemu_test, check, shell, poweroff

TOKEN = "proto-fs-test-secret-0123456789abcdef"
SUITE = os.path.join(REPO, "build", "host", "test_apfp_serve")
APFP = os.path.join(REPO, "build", "apfp")
# The suites' cases but the restart, which runs after the reboot; the first
# suite's run directory holds the file the restart reads back.
CASES = {
    SUITE: ["data_round_trips_of_many_sizes", "names_links_renames_and_their_errors", "stale_and_forged_handles",
            "readdir_cookies_verifier_and_limits", "setattr_wcc_and_exclusive_create",
            "write_stability_and_one_verifier"],
    SUITE + "_blocks": ["fsstat_copy_and_snapshots", "fallocate_punch_zero_and_seek",
                        "copy_of_aligned_ranges_shares_blocks", "reads_through_snapshot_handles"],
    SUITE + "_special": ["mknod_special_files_and_refusals"],
}
RESTART = "restart_keeps_data_and_handles_and_changes_verifier"
CONCURRENT = CASES[SUITE][:5]


def suite_pattern_crc(seed, size):
    """CRC-32 of the suite's pattern() bytes (a 64-bit LCG's top byte)."""
    out = bytearray(size)
    for i in range(size):
        seed = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        out[i] = seed >> 56
    return zlib.crc32(bytes(out))


def host_fsck(img):
    p = subprocess.run([os.path.join(REPO, "build", "cowfs"), "check", img], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    check(p.returncode == 0, p.stdout.decode(errors="replace"))


def build():
    p = subprocess.run(["make", "-s", "--no-print-directory", *(os.path.relpath(s, REPO) for s in CASES),
                        os.path.relpath(APFP, REPO)], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    check(p.returncode == 0, f"building the suite:\n{p.stdout.decode()}")


def suite_env(port, cases, state):
    return dict(os.environ, APFP_TEST_SERVER=f"127.0.0.1:{port}", APFP_TEST_SECRET=TOKEN,
                APFP_TEST_EXPORT="nvme0n1", APFP_TEST_STATE=state, TEST_ONLY=",".join(cases))


def suite(port, cases, state, timeout=900, binary=SUITE):
    p = subprocess.run([binary], env=suite_env(port, cases, state), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    passed = re.findall(r"^ok - apfp_serve\w*\.(\w+)$", out, re.M)
    check(p.returncode == 0 and sorted(passed) == sorted(cases), f"suite against the appliance:\n{out}")
    return out


def boot(ctx, m, img, config):
    port = netutil.free_ports(1)[0]
    return port, netutil.boot_file_server(m, img, port, config)


@qemu_test(weight=4)
def proto_fs(ctx):
    build()
    img = blkutil.fresh_images(harness.vm.TMP_DIR, "proto_fs", {"nvme0n1": "nvme.img"})["nvme0n1"]
    tmp = tempfile.mkdtemp(prefix="proto-fs-")
    state = os.path.join(tmp, "state")
    config = ["mount = all", "format = blank", "token = " + TOKEN]

    m = ctx.machine("rw")
    port, line = boot(ctx, m, img, config)
    with ctx.subtest("exported_at_boot"):
        check("1 exports: /nvme0n1" in line and "token required" in line, line)
    with ctx.subtest("suite_against_the_appliance"):
        out = "".join(suite(port, cases, state, binary=b) for b, cases in CASES.items())
        print(out.strip())
        first = re.search(r"^# run directory (run-\d+-\d+)$", out, re.M)
        check(first, out)
    with ctx.subtest("bulk_frames_run_beside_the_network_thread"):
        # One client so far: other frames stay with the network thread's
        # CPU's idle workers, READ and WRITE frames go to a worker on the
        # other CPU (net/apfp.c schedule); 2 CPUs here
        out = shell(m, "proto", 60)
        mt = re.search(r"workers: (\d+) runs handed to another CPU", out)
        check(mt and int(mt.group(1)) > 0, out)
    with ctx.subtest("frame_tags_checked_as_frames_are_copied_in"):
        # The connection reader computes each frame's tag while copying it
        # in (net/apfp.c conn_feed); the worker only compares.  A reader
        # that guessed the sequence number wrong, or never began, would
        # leave the worker computing it again: counted apart
        mt = re.search(r"frame tags: (\d+) computed while the frame was copied in, (\d+) by the worker", out)
        check(mt and int(mt.group(1)) > 100 and int(mt.group(2)) == 0, out)
    with ctx.subtest("clients_at_once"):
        # three clients at once, each in a run directory of its own, doing
        # everything but snapshots (named per filesystem) and the verifier
        # bookkeeping: every case passes in every client, nothing is lost
        procs = [subprocess.Popen([SUITE], env=suite_env(port, CONCURRENT, os.path.join(tmp, f"s{i}")),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(3)]
        outs = [(p.wait(timeout=900), p.stdout.read().decode(errors="replace")) for p in procs]
        for rc, out in outs:
            passed = re.findall(r"^ok - apfp_serve\.(\w+)$", out, re.M)
            check(rc == 0 and sorted(passed) == sorted(CONCURRENT), f"a concurrent client:\n{out}")
    with ctx.subtest("seen_from_the_shell"):
        out = shell(m, "ls /nvme0n1", 60)
        runs = re.findall(r"\b(run-\d+-\d+)\b", out)
        want = len(CASES) + 3
        check(len(runs) == want, f"{want} run directories expected (a suite's each, 3 clients at once):\n{out}")
        out = shell(m, f"cksum /nvme0n1/{first.group(1)}/durable", 120)
        mt = re.search(r"size (\d+) crc32 ([0-9a-f]{8})", out)
        check(mt and int(mt.group(1)) == 200000 and int(mt.group(2), 16) == suite_pattern_crc(99, 200000),
              f"durable file: {out}")
    poweroff(m)
    with ctx.subtest("clean_after_poweroff"):
        host_fsck(img)

    m = ctx.machine("restarted")
    port, line = boot(ctx, m, img, config)
    with ctx.subtest("restart_keeps_handles_and_changes_the_verifier"):
        suite(port, [RESTART], state)
    poweroff(m)

    m = ctx.machine("ro")
    port, line = boot(ctx, m, img, ["mount = all", "token = " + TOKEN, "export = nvme0n1:ro"])
    with ctx.subtest("read_only_export"):
        check("1 exports: /nvme0n1 ro" in line, line)
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write(TOKEN + "\n")
        p = subprocess.run([APFP, "--secret-file", secret, f"127.0.0.1:{port}", "exports"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        check(p.returncode == 0 and "nvme0n1 ro" in p.stdout.decode(), p.stdout.decode())
        env = dict(os.environ, APFP_TEST_SERVER=f"127.0.0.1:{port}", APFP_TEST_SECRET=TOKEN,
                   APFP_TEST_EXPORT="nvme0n1", TEST_ONLY=CASES[SUITE][0])
        p = subprocess.run([SUITE], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        out = p.stdout.decode(errors="replace")
        # the suite's first step (a run directory) is refused: the process
        # aborts after saying so, and nothing was written
        check(p.returncode != 0 and re.search(r"mkdir run-\d+-\d+: .*read-only", out), out)
        poweroff(m)
