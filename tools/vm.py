#!/usr/bin/env python3
"""The one place that knows how to start qemu for this project.

  vm.py run [options]    boot interactively (serial on this terminal;
                         Ctrl-] x quits, Ctrl-] c toggles the qemu monitor)
  vm.py cmd [options]    print the qemu command line instead (the run
                         folder it names under build/run/ is left in place)

The configuration is disks/config.txt (--config PATH for another): created
from tools/config.default.txt on the first run and then left alone, so edit
it to change the network, the disks the appliance uses or kernel arguments.
Each run boots a private copy of the ESP in its own folder under build/run/,
so several runs can go at once.  The guest's `reboot` reboots (--no-reboot
makes qemu exit instead); `poweroff N` ends the run with exit status N, and a
qemu that fails to start ends it with a message and a non-zero status.

Options select the boot medium (--esp DIR, default build/esp, or --image IMG
attached as USB mass storage on qemu-xhci), CPUs and memory, the boot
arguments (--args, written into this run's copy of config.txt),
and whether to attach the default disks (disks/nvme0.img, disks/sata0.img,
1 GiB sparse, created on first use) and the NIC (--nic e1000e, the default,
or virtio) on qemu user networking, forwarding 127.0.0.1:2049 to the guest's
NFS port, 127.0.0.1:8080 to its status page, plus any --forward
HOSTPORT:GUESTPORT (always from 127.0.0.1).

Disks beyond the defaults: --disk SPEC (repeatable), SPEC being a kind and
comma-separated options, e.g.
  --disk nvme,file=disks/a.img,lba=4096       NVMe controller, namespace 1
  --disk nvme-ns,file=disks/b.img,lba=512     another namespace on it
  --disk sata,file=disks/c.img,port=2         AHCI disk on ICH9 port 2
  --disk cdrom                                empty ATAPI drive (ide-cd)
  options: size= (for new files), blkdebug=CONF (rerror/werror=report),
  iops=N (throttling.iops-total), bps=N, serial=, opts= (raw qemu -device)
Omitting --disk keeps the default nvme0.img + sata0.img; --no-disks drops them.

Tests use the Machine class (Python 3 stdlib only): see tests/qemu/.
"""
import argparse
import codecs
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVMF = "/usr/share/ovmf/OVMF.fd"
QEMU = "qemu-system-x86_64"
# VM_ESP boots another build (e.g. a private `make esp BUILD=build/mine`).
DEFAULT_ESP = os.environ.get("VM_ESP") or os.path.join(REPO, "build", "esp")
DEFAULT_IMAGE = os.path.join(REPO, "build", "appliance.img")
DISK_DIR = os.path.join(REPO, "disks")
LOG_DIR = os.path.join(REPO, "build", "test-logs")
TMP_DIR = os.path.join(REPO, "build", "test-tmp")
NFS_PORT = 2049            # forwarded from 127.0.0.1 by interactive runs
STATUS_PORT = 8080         # 127.0.0.1:8080 -> the status page on the guest's tcp/80
RUN_FORWARDS = [(NFS_PORT, NFS_PORT), (STATUS_PORT, 80)]
DEFAULT_CONFIG = os.path.join(REPO, "tools", "config.default.txt")
# Interactive runs read the user's configuration from here (disks/ is
# ignored by git and holds the user's disk images too).
USER_CONFIG = os.path.join(DISK_DIR, "config.txt")
RUN_DIR = os.path.join(REPO, "build", "run")
ESCAPE_KEY = 0x1d           # qemu -echr: Ctrl-]
ESCAPE_NAME = "Ctrl-]"
# NIC models the kernel drives (drivers/net/): name -> qemu device.
NIC_MODELS = {"e1000e": "e1000e", "virtio": "virtio-net-pci"}


def vm_nic_args(model="e1000e", forwards=(), netdev=None, nic_id="net0"):
    """-netdev/-device arguments for one NIC.

    model: a NIC_MODELS key.  forwards: (host_port, guest_port) TCP pairs,
    always bound to 127.0.0.1 on the host.  netdev: None for qemu user
    networking (built-in DHCP server at 10.0.2.2), or a full -netdev value
    (e.g. "socket,id=net0,udp=127.0.0.1:P,localaddr=127.0.0.1:Q") for a
    network with no DHCP server.  An explicit -device (rather than -nic) is
    what gives virtio-net its MSI-X vectors.
    """
    if model not in NIC_MODELS:
        raise ValueError(f"unknown NIC model {model!r} (known: {', '.join(NIC_MODELS)})")
    if netdev is None:
        fwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in forwards)
        netdev = f"user,id={nic_id}{fwd}"
    return ["-netdev", netdev, "-device", f"{NIC_MODELS[model]},netdev={nic_id}"]


# Disk specifications (NVMe namespaces, AHCI ports, ATAPI, blkdebug,
# throttling) live in vm_disks.py; re-exported here for callers of vm.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vm_disks import (AHCI_PORTS, vm_disk_args, vm_disk_parse, vm_disks_args,  # noqa: E402,F401
                      vm_disks_prepare, vm_drive_opt, vm_ensure_disk)


VGA_KINDS = ("std", "virtio", "none")


def vm_command(esp=None, image=None, smp=2, mem="512M", serial="stdio",
               disks=(), nic=None, no_reboot=True, debug_exit=True, extra=(),
               vga="std", display="none"):
    """Build the qemu command line.

    esp: ESP directory served as a FAT drive; image: GPT image attached as
    USB mass storage on qemu-xhci (exactly one of them).  disks: list of
    (kind, path) or spec dicts with paths (see vm_disks_args).  nic: None for
    no network, a -nic option value, or a list of arguments (vm_nic_args).
    vga: the display adapter OVMF offers as a GOP framebuffer (std: Bochs VGA,
    virtio: virtio-vga; none: no screen); display: where qemu shows it (none
    keeps it headless; the monitor's screendump still reads it).
    """
    if vga not in VGA_KINDS:
        raise ValueError(f"vga must be one of {', '.join(VGA_KINDS)}")
    if (esp is None) == (image is None):
        raise ValueError("boot from exactly one of esp= or image=")
    cmd = [QEMU, "-accel", "tcg", "-machine", "q35", "-cpu", "max",
           "-m", str(mem), "-smp", str(smp), "-bios", OVMF,
           "-vga", vga, "-display", display, "-serial", serial]
    if esp is not None:
        # The ESP directory is not on the AHCI controller (the default for
        # a bare -drive on q35) so the first SATA port stays free for the
        # data disk; OVMF boots from USB mass storage just as well, and the
        # kernel has no USB storage driver that could mistake it for data.
        cmd += ["-device", "qemu-xhci,id=xhci",
                "-drive", f"if=none,id=esp,format=raw,file=fat:rw:{esp}",
                "-device", "usb-storage,bus=xhci.0,drive=esp,bootindex=0"]
    else:
        cmd += ["-device", "qemu-xhci,id=xhci",
                "-drive", f"if=none,id=usbdisk,format=raw,file={image}",
                "-device", "usb-storage,bus=xhci.0,drive=usbdisk,bootindex=0"]
    cmd += vm_disks_args(list(disks))[0]
    if isinstance(nic, (list, tuple)):
        cmd += list(nic)
    elif nic:
        cmd += ["-nic", nic]
    else:
        cmd += ["-net", "none"]
    if debug_exit:
        cmd += ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    if no_reboot:
        cmd += ["-no-reboot"]
    cmd += list(extra)
    return cmd


def vm_config_text(base, args=None, lines=()):
    """config.txt text with the args line replaced and extra lines appended.

    An extra line whose key already appears replaces that line in place (so
    "net = none" overrides the default rather than duplicating the key);
    lines without a "key =" shape are appended verbatim, which is how tests
    write deliberately malformed files.
    """
    out = base.splitlines()
    if args is not None:
        lines = [f"args = {args}"] + list(lines)
    for extra in lines:
        m = re.match(r"\s*([a-z_]+)\s*=", extra)
        idx = None
        if m:
            for i, cur in enumerate(out):
                cm = re.match(r"\s*([a-z_]+)\s*=", cur)
                if cm and cm.group(1) == m.group(1):
                    idx = i
                    break
        if idx is None:
            out.append(extra)
        else:
            out[idx] = extra
    return "\n".join(out) + "\n"


def vm_esp_copy(src, dest, args=None, config=(), remove=(), files=None):
    """Copy the ESP tree to dest with config.txt rewritten (see above), the
    relative paths in `remove` deleted and those in `files` ({path: bytes})
    replaced.  Returns dest."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    cfg = os.path.join(dest, "appliance", "config.txt")
    if args is not None or config:
        with open(cfg, encoding="utf-8") as f:
            text = f.read()
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(vm_config_text(text, args, config))
    for rel in remove:
        os.remove(os.path.join(dest, rel))
    for rel, data in (files or {}).items():
        with open(os.path.join(dest, rel), "wb") as f:
            f.write(data)
    return dest


# Terminal control sequences: CSI (ESC [ ... final, including the firmware's
# private "ESC [ = 3 h"), ESC 7 / ESC 8 and other two-byte escapes.
CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_0-9=>]")


def vm_exit_words(status, killed=False):
    """qemu's exit status in words: isa-debug-exit turns the guest's
    power-off status N into (N << 1) | 1, so a clean `poweroff 0` is 1."""
    if status is None:
        return "unknown (still running)"
    if killed:
        return f"{status} (killed by the harness)"
    if status > 0 and status & 1:
        return f"{status} (guest powered off with status {status >> 1} through isa-debug-exit)"
    if status == 0:
        return "0 (qemu exited by itself: ACPI power-off, or a reset under -no-reboot)"
    return f"{status} (qemu failed)"


class MachineError(AssertionError):
    """A failed expectation; the message carries the recent serial output."""


class Machine:
    """One qemu run with its serial console on a pipe.

    A reader thread collects serial output into a buffer (CRLF folded to LF)
    and into build/test-logs/<name>.log.  expect() searches forward from the
    end of the previous match, so a sequence of expects reads the console in
    order.  Always use as a context manager (or call kill() in a finally):
    qemu must never outlive its test.
    """

    def __init__(self, name, log_dir=LOG_DIR, tmp_dir=TMP_DIR):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.tmp = os.path.join(tmp_dir, name)
        self.proc = None
        self.buf = ""
        self.pos = 0
        self.cond = threading.Condition()
        self.eof = False
        self.threads = []
        self.log = None
        self.cmd = None
        self.hung = False      # an expect() timed out: callers may resync
        self.stderr_text = ""
        self.started_at = None
        self.disks = []
        self.qmp_path = None
        self.qmp_file = None
        self.log_hold = ""
        self.killed = False        # kill() stopped a running qemu

    # -- lifecycle --------------------------------------------------------
    def start(self, esp=None, image=None, smp=2, args=None, config=(), remove=(),
              disks=(), mem="512M", no_reboot=True, nic=None, extra=(), qmp=False, files=None,
              vga="std"):
        """Boot.  esp defaults to build/esp unless image is given; args and
        config rewrite a private copy of the ESP (with "mount = none" unless
        config has a mount line: nothing is mounted or formatted); disks is a list of "nvme" /
        "sata" (fresh 64 MiB scratch disks), (kind, path) pairs or spec dicts
        (see vm_disks_args; self.disks then lists name, drive id and path of
        every image).  qmp: open a QMP socket for self.qmp().  files:
        {relative path: bytes} written into the private ESP copy.  vga: see
        vm_command."""
        if self.proc:
            raise RuntimeError("machine already started")
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        if image is None:
            src = esp or DEFAULT_ESP
            if not os.path.isfile(os.path.join(src, "EFI", "BOOT", "BOOTX64.EFI")):
                raise MachineError(f"{src} is not an ESP tree (run make esp)")
            # Machines started here are tests and benchmarks: they write
            # their disks raw, so boot mounts (and formats) nothing unless
            # the caller's config says otherwise.
            if not any(re.match(r"\s*mount\s*=", line) for line in config):
                config = ["mount = none"] + list(config)
            # Always a private copy: fat:rw lets qemu write into the tree.
            esp = vm_esp_copy(src, os.path.join(self.tmp, "esp"), args, config, remove, files)
        elif args is not None or config or remove or files:
            raise ValueError("args/config/remove/files need an ESP directory, not an image")
        disk_list = vm_disks_prepare(list(disks), self.tmp)
        self.disks = vm_disks_args(disk_list)[1]
        extra = list(extra)
        if qmp:
            self.qmp_path = os.path.join(self.tmp, "qmp.sock")
            if os.path.exists(self.qmp_path):
                os.remove(self.qmp_path)
            extra += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        self.cmd = vm_command(esp=esp, image=image, smp=smp, mem=mem, serial="stdio",
                              disks=disk_list, nic=nic, no_reboot=no_reboot, extra=extra,
                              vga=vga)
        self.log = open(self.log_path, "w", encoding="utf-8", errors="replace")
        self.log.write("# " + " ".join(self.cmd) + "\n")
        self.log.flush()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        for stream, is_err in ((self.proc.stdout, False), (self.proc.stderr, True)):
            t = threading.Thread(target=self._reader, args=(stream, is_err), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _reader(self, stream, is_err):
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held_cr = ""
        while True:
            try:
                chunk = os.read(stream.fileno(), 4096)
            except OSError:
                chunk = b""
            text = dec.decode(chunk, final=not chunk)
            if is_err:
                # qemu's own diagnostics: into the log, marked, not the console.
                if text:
                    with self.cond:
                        for line in text.splitlines():
                            self._log_write(f"[qemu stderr] {line}\n")
                        self.stderr_text += text
                if not chunk:
                    return
                continue
            # Fold CRLF to LF; a CR at the end of a chunk waits for the next.
            text = held_cr + text
            held_cr = ""
            if text.endswith("\r") and chunk:
                text, held_cr = text[:-1], "\r"
            text = text.replace("\r\n", "\n")
            with self.cond:
                if text:
                    self.buf += text
                    self._log_console(text, final=not chunk)
                if not chunk:
                    self.eof = True
                self.cond.notify_all()
            if not chunk:
                return

    def _log_console(self, text, final=False):
        """Console text into the log without terminal control sequences
        (the firmware's screen clearing, the line editor's cursor moves), so
        the log reads as plain text; a sequence cut by a chunk boundary
        waits for the rest.  self.buf keeps them: tests of the editor see
        exactly what a terminal would."""
        text = self.log_hold + text
        self.log_hold = ""
        if not final:
            cut = text.rfind("\x1b")
            if cut >= 0 and not CONTROL_RE.match(text, cut):
                text, self.log_hold = text[:cut], text[cut:]
        self._log_write(CONTROL_RE.sub("", text))

    def _log_write(self, text):
        if self.log and not self.log.closed:
            self.log.write(text)
            self.log.flush()

    def qmp(self, command, timeout=30, **arguments):
        """Run one QMP command (start(qmp=True)); returns its "return" value,
        raises MachineError on an error reply.  Events are skipped."""
        if not self.qmp_path:
            raise RuntimeError("machine started without qmp=True")
        deadline = time.monotonic() + timeout
        if self.qmp_file is None:
            while True:
                try:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.connect(self.qmp_path)
                    break
                except OSError as e:
                    sock.close()
                    if time.monotonic() > deadline:
                        self._fail(f"{self.name}: cannot connect to QMP: {e}")
                    time.sleep(0.2)
            sock.settimeout(timeout)
            self.qmp_sock = sock
            self.qmp_file = sock.makefile("rw", encoding="utf-8")
            self.qmp_file.readline()                       # greeting
            self._qmp_send("qmp_capabilities", {})
        return self._qmp_send(command, arguments)

    def _qmp_send(self, command, arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            self.qmp_file.write(json.dumps(msg) + "\n")
            self.qmp_file.flush()
            while True:
                line = self.qmp_file.readline()
                if not line:
                    self._fail(f"{self.name}: QMP closed during {command}")
                reply = json.loads(line)
                if "event" in reply:
                    continue
                if "error" in reply:
                    self._fail(f"{self.name}: QMP {command}: {reply['error'].get('desc')}")
                return reply.get("return")
        except (OSError, ValueError) as e:
            self._fail(f"{self.name}: QMP {command}: {e}")

    def kill(self):
        """Stop qemu (if running) and close the log.  Safe to call twice."""
        if self.qmp_file is not None:
            try:
                self.qmp_file.close()
                self.qmp_sock.close()
            except OSError:
                pass
            self.qmp_file = None
        if self.proc and self.proc.poll() is None:
            self.killed = True
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        for t in self.threads:
            t.join(timeout=5)
        if self.proc and self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self.log and not self.log.closed:
            if self.proc is not None:
                self._log_console("", final=True)
                self.log.write(f"\n# qemu exit status {vm_exit_words(self.proc.returncode, self.killed)}"
                               f" after {time.monotonic() - self.started_at:.1f} s\n")
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    # -- console ----------------------------------------------------------
    def tail(self, n=2048):
        with self.cond:
            return self.buf[-n:]

    def _fail(self, what):
        status = self.proc.poll() if self.proc else None
        state = "qemu still running" if status is None else f"qemu exited with status {status}"
        err = self.stderr_text.strip()
        msg = f"{what} ({state}); log {self.log_path}\n--- last output ---\n{self.tail()}"
        if err:
            msg += f"\n--- qemu stderr ---\n{err[-1000:]}"
        raise MachineError(msg)

    def expect(self, regex, timeout=60, flags=re.MULTILINE):
        """Wait for regex in the output after the previous match; return the
        match and move past it.  Raises MachineError with the last 2 KiB of
        output on timeout or if qemu exits first."""
        pat = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = pat.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
        if not self.eof:
            self.hung = True
        why = "qemu exited" if self.eof else f"timed out after {timeout} s"
        self._fail(f"{self.name}: {why} waiting for /{regex}/")

    def expect_not(self, regex, since=0, flags=re.MULTILINE):
        """Fail if regex occurs in the output from offset `since`."""
        with self.cond:
            m = re.compile(regex, flags).search(self.buf, since)
        if m:
            self._fail(f"{self.name}: unexpected /{regex}/: {m.group(0)!r}")

    def mark(self):
        """Current read position, for output() and expect_not()."""
        with self.cond:
            return self.pos

    def output(self, since=0, until=None):
        with self.cond:
            return self.buf[since:until if until is not None else self.pos]

    def send(self, data):
        """Type raw characters on the serial console."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self._fail(f"{self.name}: cannot send {data!r}: {e}")

    def sendline(self, line):
        self.send(line + "\r")

    def wait_exit(self, timeout=60):
        """Wait for qemu to exit; returns its status.  isa-debug-exit makes
        it (value << 1) | 1."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._fail(f"{self.name}: qemu did not exit within {timeout} s")
        # Let the readers drain the pipes so output() holds everything.
        for t in self.threads:
            t.join(timeout=5)
        return status


def vm_user_config(path):
    """The user's config.txt for interactive runs: created from
    tools/config.default.txt the first time, then never touched again."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        shutil.copyfile(DEFAULT_CONFIG, path)
        print(f"vm.py: created {vm_rel(path)} from tools/config.default.txt", file=sys.stderr)
    return path


def vm_rel(path):
    """path relative to the repository when inside it (shorter messages)."""
    rel = os.path.relpath(os.path.abspath(path), REPO)
    return path if rel.startswith("..") else rel


def vm_run_dir(keep=False):
    """A private folder for one interactive run (ESP copy, scratch files):
    two runs at once never share or delete each other's files.  Folders of
    runs whose vm.py died without cleaning up (killed) are removed; `keep`
    folders (vm.py cmd: the user runs qemu later) are left alone."""
    os.makedirs(RUN_DIR, exist_ok=True)
    for name in os.listdir(RUN_DIR):
        m = re.match(r"(\d+)-", name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(RUN_DIR, name), ignore_errors=True)
        except PermissionError:
            pass                     # alive, someone else's
    return tempfile.mkdtemp(prefix=f"{'cmd-' if keep else ''}{os.getpid()}-", dir=RUN_DIR)


def vm_preflight(cmd, disks, nic):
    """Problems qemu would report less clearly; None when none is found."""
    for d in disks:
        if isinstance(d, tuple):
            paths = [d[1]]
        else:
            paths = [img.get("path") for img in (d.get("ns") or [d]) if img.get("path")]
        for path in paths:
            if not os.path.exists(path):
                return f"disk image {path} does not exist"
    for host_port, _ in RUN_FORWARDS:
        if not (nic and any(f"127.0.0.1:{host_port}-" in str(x)
                            for x in (nic if isinstance(nic, list) else [nic]))):
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", host_port))
        except OSError as e:
            return (f"127.0.0.1:{host_port} is taken ({e.strerror}): another run (or another server) "
                    f"holds it; stop it or use --no-net")
        finally:
            s.close()
    if shutil.which(cmd[0]) is None:
        return f"{cmd[0]} not found (run make deps)"
    return None


def vm_qemu_errors(text):
    """qemu's own error lines (not its warnings) from its stderr."""
    out = []
    for line in text.splitlines():
        if line.startswith(QEMU + ":") and not re.match(re.escape(QEMU) + r": warning:", line):
            out.append(line)
    return out


def vm_exec(cmd):
    """Run qemu on this terminal; returns (status, error lines).  qemu's
    stderr passes through to ours and is kept: a guest powering off with
    status 0 and qemu failing to start both end in qemu status 1, and only
    qemu's error lines tell them apart."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    err = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        err.append(line)
        sys.stderr.write(line)
        sys.stderr.flush()
    return proc.wait(), vm_qemu_errors("".join(err))


def vm_main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "cmd"])
    ap.add_argument("--esp", help="ESP directory (default build/esp)")
    ap.add_argument("--image", help="boot this GPT image as a USB stick instead")
    ap.add_argument("--config", default=USER_CONFIG,
                    help="config.txt to boot with (default disks/config.txt, created from "
                         "tools/config.default.txt on first use and then left alone)")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--args", help="kernel arguments for this run (the config file is not changed)")
    ap.add_argument("--no-disks", action="store_true", help="no NVMe/SATA disks")
    ap.add_argument("--no-net", action="store_true", help="no network card")
    ap.add_argument("--no-reboot", action="store_true",
                    help="exit qemu when the guest resets (default: reboot like a machine)")
    ap.add_argument("--nic", choices=sorted(NIC_MODELS), default="e1000e",
                    help="network card model (default e1000e); 127.0.0.1:2049 and :8080 are forwarded")
    ap.add_argument("--forward", action="append", default=[], metavar="HOSTPORT:GUESTPORT",
                    help="also forward 127.0.0.1:HOSTPORT to the guest's TCP port (e.g. 5001:5001 "
                         "for bench net, 7007:7 for the echo service)")
    ap.add_argument("--vga", choices=VGA_KINDS, default="std",
                    help="display adapter (the kernel's screen console draws on it)")
    ap.add_argument("--display", default="none",
                    help="qemu display backend, e.g. gtk or sdl to see the screen (default none)")
    ap.add_argument("--disk", action="append", default=[], metavar="SPEC",
                    help="kind[,key=val...]: nvme, nvme-ns, sata, cdrom (see above); "
                         "replaces the default disks")
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap.epilog = "Arguments after -- go to qemu unchanged (e.g. -- -s -S for gdb)."
    a = ap.parse_args(argv)
    a.extra = extra

    run_dir = vm_run_dir(keep=a.action == "cmd")

    def terminated(signum, frame):
        raise SystemExit(128 + signum)       # so the run folder is removed
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    try:
        rc = vm_main_in(a, run_dir)
    finally:
        if a.action == "run":
            shutil.rmtree(run_dir, ignore_errors=True)
    return rc


def vm_main_in(a, run_dir):
    esp = image = None
    if a.image:
        image = a.image
        if not os.path.isfile(image):
            sys.exit(f"vm.py: {image} does not exist: run make image")
    else:
        esp = a.esp or DEFAULT_ESP
        if not os.path.isfile(os.path.join(esp, "EFI", "BOOT", "BOOTX64.EFI")):
            sys.exit(f"vm.py: {esp} is not an ESP tree: run make esp")
        # A private copy: fat:rw lets qemu write into the tree it serves,
        # and the user's config.txt goes into it.
        config = vm_user_config(a.config)
        with open(config, "rb") as f:
            user_cfg = f.read()
        if a.args is not None:
            text = user_cfg.decode("utf-8", errors="surrogateescape")
            user_cfg = vm_config_text(text, a.args).encode("utf-8", errors="surrogateescape")
        esp = vm_esp_copy(esp, os.path.join(run_dir, "esp"),
                          files={"appliance/config.txt": user_cfg})
        print(f"vm.py: config {vm_rel(config)} (edit it to change network, disks and kernel "
              f"arguments; it is kept between runs)", file=sys.stderr)
    disks = []
    if a.disk:
        for text in a.disk:
            d = vm_disk_parse(text)
            if d["kind"] == "nvme-ns":
                if not disks or disks[-1]["kind"] != "nvme":
                    sys.exit("vm.py: --disk nvme-ns must follow an nvme disk")
                last = disks[-1]
                if "ns" not in last:
                    # The controller's own image becomes namespace 1.
                    ctrl_keys = ("kind", "serial", "opts")
                    ns0 = {k: v for k, v in last.items() if k not in ctrl_keys}
                    for k in list(last):
                        if k not in ctrl_keys:
                            del last[k]
                    last["ns"] = [ns0]
                d.pop("kind")
                last["ns"].append(d)
            else:
                disks.append(d)
        for d in disks:
            for img in (d.get("ns") or [d]):
                if d["kind"] != "cdrom" and not img.get("path"):
                    sys.exit(f"vm.py: --disk {d['kind']} needs file=PATH")
        disks = vm_disks_prepare(disks, run_dir)
    elif not a.no_disks:
        disks = [("nvme", vm_ensure_disk(os.path.join(DISK_DIR, "nvme0.img"), announce=True)),
                 ("sata", vm_ensure_disk(os.path.join(DISK_DIR, "sata0.img"), announce=True))]
    fwd = list(RUN_FORWARDS)
    for text in a.forward:
        m = re.fullmatch(r"(\d{1,5}):(\d{1,5})", text)
        if not m or not all(0 < int(p) < 65536 for p in m.groups()):
            sys.exit(f"vm.py: --forward {text}: want HOSTPORT:GUESTPORT, ports 1..65535")
        fwd.append((int(m.group(1)), int(m.group(2))))
    nic = None if a.no_net else vm_nic_args(a.nic, fwd)
    # mon:stdio multiplexes the monitor on the terminal and lets Ctrl-C reach
    # the guest instead of killing qemu.  Its escape key moves from Ctrl-A
    # (the shell's start-of-line key) to Ctrl-].
    cmd = vm_command(esp=esp, image=image, smp=a.smp, mem=a.mem, serial="mon:stdio",
                     disks=disks, nic=nic, no_reboot=a.no_reboot,
                     extra=["-echr", str(ESCAPE_KEY)] + a.extra, vga=a.vga, display=a.display)
    if a.action == "cmd":
        print(" ".join(cmd))
        return 0
    problem = vm_preflight(cmd, disks, nic)
    if problem:
        print(f"vm.py: cannot start qemu: {problem}", file=sys.stderr)
        return 2
    print("vm.py: " + " ".join(cmd), file=sys.stderr)
    print(f"vm.py: {ESCAPE_NAME} x quits, {ESCAPE_NAME} c toggles the qemu monitor, "
          f"{ESCAPE_NAME} h lists the other keys", file=sys.stderr)
    rc, errors = vm_exec(cmd)
    if errors:
        print(f"vm.py: qemu failed (status {rc}): {errors[-1][len(QEMU) + 2:]}", file=sys.stderr)
        return rc if rc else 1
    # isa-debug-exit turns the guest's power-off status N into (N << 1) | 1;
    # give the guest's own status back so `poweroff` is a clean exit.
    return rc >> 1 if rc & 1 else rc


if __name__ == "__main__":
    sys.exit(vm_main())
