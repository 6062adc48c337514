"""The harness's own tools, checked on the host: the summary must never
turn a crash or an empty run into a pass, mkimage must refuse a directory
that is not an ESP, and `make run` (tools/vm.py run) keeps the user's
config, runs apart, reports qemu failures and behaves on a terminal."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import REPO, qemu_test, check

SUMMARY = os.path.join(REPO, "tests", "summary.py")


def summary(*args):
    p = subprocess.run([sys.executable, SUMMARY, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


@qemu_test(weight=0)
def tools_summary(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "t.log")
        with ctx.subtest("counts"):
            summary("exec", "--log", log, "--name", "good", "--",
                    "printf", "ok - a.one\\nok - a.two\\nnot ok - a.three: broken\\n")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "2 passed, 1 failed" and rc == 1, f"rc {rc}:\n{out}")
            check("not ok - a.three: broken" in out, f"failure not repeated:\n{out}")
        with ctx.subtest("crash_counts_as_failure"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "crashy", "--",
                    "sh", "-c", "echo 'ok - b.one'; kill -SEGV $$")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "1 passed, 1 failed" and rc == 1, f"rc {rc}:\n{out}")
            check("not ok - crashy:" in out, f"crash not named:\n{out}")
        with ctx.subtest("timeout_kills"):
            os.remove(log)
            rc, _ = summary("exec", "--log", log, "--name", "slow", "--timeout", "1", "--",
                            "sleep", "30")
            check(rc == 124, f"exec returned {rc}, expected 124")
            rc, out = summary("report", log)
            check(out.splitlines()[-1] == "0 passed, 1 failed", out)
        with ctx.subtest("nothing_ran_fails"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "silent", "--", "true")
            rc, out = summary("report", log)
            check(rc == 1 and out.splitlines()[-1] == "0 passed, 0 failed", f"rc {rc}:\n{out}")
            rc, out = summary("report", os.path.join(tmp, "missing.log"))
            check(rc == 1, f"a missing log passed: {out}")
        with ctx.subtest("diagnostics_kept_out_of_a_green_run"):
            os.remove(log)
            p = subprocess.run([sys.executable, SUMMARY, "exec", "--log", log, "--name", "noisy", "--",
                                "sh", "-c", "echo '[iomap error] provoked on purpose'; echo 'ok - d.one'"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            out = p.stdout.decode()
            check("provoked on purpose" not in out and "ok - d.one" in out,
                  f"a passing program's diagnostics reached the stream:\n{out}")
            check("passed; its 1 diagnostic line" in out, f"no note of the diagnostics:\n{out}")
            check("provoked on purpose" in open(log).read(), "diagnostics missing from the log")
            p = subprocess.run([sys.executable, SUMMARY, "exec", "--log", log, "--name", "broken", "--",
                                "sh", "-c", "echo 'ASan: heap overflow'; echo 'not ok - d.two: x'"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            out = p.stdout.decode()
            check("#   ASan: heap overflow" in out, f"a failing program's diagnostics are hidden:\n{out}")
        with ctx.subtest("all_pass"):
            os.remove(log)
            summary("exec", "--log", log, "--name", "fine", "--", "echo", "ok - c.one")
            rc, out = summary("report", log)
            check(rc == 0 and out.splitlines()[-1] == "1 passed, 0 failed", f"rc {rc}:\n{out}")


@qemu_test(weight=0)
def tools_mkimage_rejects_non_esp(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "x.img")
        p = subprocess.run(["bash", os.path.join(REPO, "tools", "mkimage.sh"), tmp, img],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode != 0, "mkimage accepted a directory without EFI/BOOT/BOOTX64.EFI")
        check(not os.path.exists(img) and not os.path.exists(img + ".tmp"),
              "mkimage left an image behind after failing")


VM = os.path.join(REPO, "tools", "vm.py")


def vm_py(*args, stdin=subprocess.DEVNULL, timeout=60):
    p = subprocess.run([sys.executable, VM, *args], stdin=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def esp_of(cmdline):
    """The ESP folder a printed qemu command line serves."""
    for word in cmdline.split():
        if "file=fat:rw:" in word:
            return word.split("file=fat:rw:", 1)[1].split(",")[0]
    raise AssertionError(f"no ESP in {cmdline}")


@qemu_test(weight=0)
def tools_vm_run(ctx):
    """make run: the user's config is created once and then kept, each run
    has its own ESP copy, qemu failures are reported with a non-zero status,
    and the qemu escape key is not the shell's Ctrl-A."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.txt")
        with ctx.subtest("config_created_then_kept"):
            rc, out, err = vm_py("cmd", "--no-disks", "--config", cfg)
            check(rc == 0 and os.path.exists(cfg), f"rc {rc}, no {cfg}:\n{err}")
            shutil.rmtree(os.path.dirname(esp_of(out)))
            with open(os.path.join(REPO, "tools", "config.default.txt"), "rb") as f:
                check(open(cfg, "rb").read() == f.read(), "config not created from the default")
            check(f"config {cfg}" in err, f"vm.py does not say where the config is:\n{err}")
            with open(cfg, "w") as f:
                f.write("\ufeffnet = none\nargs = smp=1\n")
            rc, out, err = vm_py("cmd", "--no-disks", "--config", cfg, "--args", "selftest")
            check(open(cfg, encoding="utf-8").read() == "\ufeffnet = none\nargs = smp=1\n",
                  "vm.py changed the user's config")
            with open(os.path.join(esp_of(out), "appliance", "config.txt"), encoding="utf-8") as f:
                booted = f.read()
            shutil.rmtree(os.path.dirname(esp_of(out)))
            check(booted == "\ufeffnet = none\nargs = selftest\n",
                  f"the run's config is not the user's with --args applied: {booted!r}")
        with ctx.subtest("run_folders_apart"):
            _, out1, _ = vm_py("cmd", "--no-disks", "--config", cfg)
            _, out2, _ = vm_py("cmd", "--no-disks", "--config", cfg)
            e1, e2 = esp_of(out1), esp_of(out2)
            check(e1 != e2 and os.path.isdir(e1) and os.path.isdir(e2),
                  f"two runs share or lost their ESP: {e1} {e2}")
            for e in (e1, e2):
                shutil.rmtree(os.path.dirname(e))
        with ctx.subtest("escape_key"):
            _, out, _ = vm_py("cmd", "--no-disks", "--config", cfg)
            words = out.split()
            check("-echr" in words and words[words.index("-echr") + 1] != "1",
                  f"qemu keeps Ctrl-A as its escape key: {out}")
            check("-no-reboot" not in words, f"make run exits on the guest's reboot: {out}")
            shutil.rmtree(os.path.dirname(esp_of(out)))
        with ctx.subtest("first_disk_creation_announced"):
            import contextlib
            import io
            sys.path.insert(0, os.path.join(REPO, "tools"))
            import vm_disks
            err = io.StringIO()
            img = os.path.join(tmp, "d", "nvme0.img")
            with contextlib.redirect_stderr(err):
                vm_disks.vm_ensure_disk(img, "1M", announce=True)
                vm_disks.vm_ensure_disk(img, "1M", announce=True)
            check(err.getvalue().count(f"created {img}") == 1 and os.path.getsize(img) == 1 << 20,
                  f"disk creation not announced exactly once: {err.getvalue()!r}")
        with ctx.subtest("qemu_failure_is_an_error"):
            rc, _, err = vm_py("run", "--no-disks", "--no-net", "--config", cfg, "--", "-bogus-option")
            check(rc != 0, f"vm.py exited 0 although qemu failed to start:\n{err}")
            check("vm.py: qemu failed" in err and "bogus-option" in err, f"failure not reported:\n{err}")
            rc, _, err = vm_py("run", "--no-disks", "--no-net", "--image", os.path.join(tmp, "none.img"))
            check(rc != 0 and "does not exist" in err, f"missing image: rc {rc}:\n{err}")
        with ctx.subtest("run_folder_removed"):
            # A folder left by a killed run (its pid is gone) is cleaned up.
            dead = subprocess.Popen(["true"])
            dead.wait()
            stale = os.path.join(REPO, "build", "run", f"{dead.pid}-stale")
            os.makedirs(stale, exist_ok=True)
            before = set(os.listdir(os.path.join(REPO, "build", "run"))) - {f"{dead.pid}-stale"}
            vm_py("run", "--no-disks", "--no-net", "--config", cfg, "--", "-bogus-option")
            after = set(os.listdir(os.path.join(REPO, "build", "run")))
            check(after <= before, f"run folders left behind: {sorted(after - before)}")
            check(not os.path.exists(stale), "a killed run's folder was not removed")


@qemu_test(weight=0)
def tools_blk_failure_words(ctx):
    """blk_ok's reading of command output: a zero count of failures is not
    a failure (the blk_timeout test once failed on "0 failed")."""
    sys.path.insert(0, os.path.join(REPO, "tests", "qemu"))
    import blkutil
    for text, want in (
            ("read nvme0n1 0+8: ok\nnvme0: queue 1: 3 commands resubmitted, 0 failed\n", None),
            ("ahci0 port 0 (sata0): timeout; port reset done, 0 failed, 1 retried\n", None),
            ("shutdown: done in 3 ms, 0 steps failed\n", None),
            ("nvme0: queue 1: 2 commands resubmitted, 10 failed\n", "failed"),
            ("nvme0: queue 1: 0 commands resubmitted, 1 failed\n", "failed"),
            ("blk: nvme0n1: read lba 0+8 failed: I/O error\n", "failed"),
            ("verify nvme0n1 0+8: MISMATCH at lba 3\n", "MISMATCH")):
        got = blkutil.blk_failure(text)
        check(got == want, f"blk_failure({text!r}) = {got!r}, expected {want!r}")


@qemu_test(weight=0)
def tools_vm_log(ctx):
    """Serial logs are plain text (no firmware screen codes, even split
    across reads) and end with qemu's status in words."""
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import vm
    with tempfile.TemporaryDirectory() as tmp:
        m = vm.Machine("t", log_dir=tmp, tmp_dir=tmp)
        m.log = open(os.path.join(tmp, "t.log"), "w", encoding="utf-8")
        for chunk in ("\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b", "[01;01HBdsDxe: loading\n",
                      "\x1b7\x1b[999;999H\x1b[6n\x1b8shell: type 'help'\n", "appliance> ab\x1b[",
                      "D\x1b[K\n"):
            m._log_console(chunk)
        m._log_console("", final=True)
        m.log.close()
        text = open(os.path.join(tmp, "t.log"), encoding="utf-8").read()
        check(text == "BdsDxe: loading\nshell: type 'help'\nappliance> ab\n", f"log: {text!r}")
    check("poweroff" in vm.vm_exit_words(1) or "powered off with status 0" in vm.vm_exit_words(1),
          vm.vm_exit_words(1))
    check("status 5" in vm.vm_exit_words(11), vm.vm_exit_words(11))
    check("killed" in vm.vm_exit_words(-9, killed=True), vm.vm_exit_words(-9, True))


class Pty:
    """tools/vm.py run on a pseudo-terminal, as `make run` runs it."""

    def __init__(self, *args):
        import pty
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, VM, "run", *args], stdin=slave, stdout=slave,
                                     stderr=slave, cwd=REPO, start_new_session=True)
        os.close(slave)
        self.buf = b""
        self.pos = 0

    def expect(self, pat, timeout=120):
        import select
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            i = self.buf.find(pat, self.pos)
            if i >= 0:
                self.pos = i + len(pat)
                return
            r, _, _ = select.select([self.master], [], [], 0.5)
            if r:
                try:
                    self.buf += os.read(self.master, 4096)
                except OSError:          # the other side closed
                    break
        raise AssertionError(f"no {pat!r} on the terminal:\n"
                             + self.buf[-1500:].decode(errors="replace"))

    def send(self, data):
        os.write(self.master, data)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("vm.py run did not end:\n" + self.buf[-1500:].decode(errors="replace"))

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


@qemu_test(weight=2)
def tools_vm_run_terminal(ctx):
    """make run on a terminal: `reboot` reboots the guest, `poweroff N` ends
    the run with status N, Ctrl-] x quits qemu (Ctrl-A is left to the
    shell: Ctrl-A moves to the start of the line)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.txt")
        with ctx.subtest("reboot_then_poweroff_status"):
            t = Pty("--no-disks", "--no-net", "--smp", "1", "--config", cfg)
            try:
                t.expect(b"appliance> ")
                t.send(b"reboot\r")
                t.expect(b"rebooting")
                t.expect(b"appliance kernel")
                t.expect(b"appliance> ")
                t.send(b"ho 5\x01poweroff\x05\x7f\x7f\x7f\x7f\r")   # "poweroff" after Ctrl-A, Ctrl-E
                rc = t.wait()
                check(rc == 0, f"poweroff 0 ended make run with {rc}")
            finally:
                t.close()
        with ctx.subtest("escape_key_quits"):
            t = Pty("--no-disks", "--no-net", "--smp", "1", "--config", cfg)
            try:
                t.expect(b"appliance> ")
                t.send(b"\x1dx")
                rc = t.wait()
                check(rc == 0, f"Ctrl-] x ended make run with {rc}")
            finally:
                t.close()
        with ctx.subtest("loader_error_key_restarts"):
            with open(cfg, "w") as f:
                f.write("bogus = 1\n")
            t = Pty("--no-disks", "--no-net", "--smp", "1", "--config", cfg)
            try:
                t.expect(b"loader: error: config.txt line 1: unknown key 'bogus'")
                t.expect(b"press a key to restart")
                t.send(b"\r")
                # Restarts (the firmware and the loader again), not an exit.
                t.expect(b"loader: appliance UEFI loader")
                t.expect(b"press a key to restart")
                t.send(b"\x1dx")
                t.wait()
            finally:
                t.close()
