"""The CLI against the appliance: the cases of tests/proto/test_apfp_cli.py
(which runs them against build/apfp-serve in `make test-host`) run through
127.0.0.1 forwarded to the guest's tcp/2049, on a blank 256 MiB NVMe disk
formatted at boot and exported as nvme0n1: put and get of files from 0 bytes
to 20 MiB and of a tree with sha256 compared, cat, ls/stat --json, mkdir -p,
rm -r, mv, ln, df, snapshots, clone, exit statuses, the progress bar on a
terminal, a short bench.  The appliance powers off and the host's fsck finds
the disk clean.
"""
import importlib.util
import os
import shutil
import subprocess
import tempfile

import blkutil
import harness
import netutil
from harness import REPO, qemu_test, check, poweroff

TOKEN = "proto-cli-test-secret-0123456789abcdef"


def load_cases():
    spec = importlib.util.spec_from_file_location("apfp_cli_cases",
                                                  os.path.join(REPO, "tests", "proto", "test_apfp_cli.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.BUILD = os.path.join(REPO, "build")
    return mod


@qemu_test(weight=3)
def proto_cli(ctx):
    p = subprocess.run(["make", "-s", "--no-print-directory", "build/apfp", "build/cowfs"], cwd=REPO,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    check(p.returncode == 0, f"building build/apfp:\n{p.stdout.decode()}")
    cases = load_cases()
    img = blkutil.fresh_images(harness.vm.TMP_DIR, "proto_cli", {"nvme0n1": "nvme.img"})["nvme0n1"]
    tmp = tempfile.mkdtemp(prefix="proto-cli-")
    try:
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(TOKEN + "\n")
        port = netutil.free_ports(1)[0]
        m = ctx.machine()
        line = netutil.boot_file_server(m, img, port, ["mount = all", "format = blank", "token = " + TOKEN])
        check("1 exports: /nvme0n1" in line, line)
        cli = cases.Cli(tmp, port, export="nvme0n1")
        for name, fn in cases.STEPS:
            with ctx.subtest(name):
                fn(cli, tmp)
        poweroff(m)
        with ctx.subtest("clean_after_poweroff"):
            p = subprocess.run([os.path.join(REPO, "build", "cowfs"), "check", img], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
            check(p.returncode == 0, p.stdout.decode(errors="replace"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
