"""Power-off, the power button and the disks the appliance may use, seen
from outside the guest.

- blk_shutdown_trace, blk_reboot_trace: writes, then `poweroff` / `reboot`.  qemu's own trace events
  (not the guest's word) must show, on NVMe, a Flush after the last Write
  and then CC.SHN set (pci_nvme_mmio_shutdown_set); on AHCI, FLUSH CACHE EXT
  (ATA 0xEA) after the last write command and then the port's command list
  stopped (PxCMD written with ST clear).  Written data must be in the
  images.
- blk_power_button: qemu's `system_powerdown` (the ACPI power button) must
  run the same ordered shutdown and power the machine off.
- blk_shutdown_flush_fails: every flush fails; each step says which disk
  and why, and the machine powers off anyway.
- blk_disks_config: config.txt `disks = sata0,nvme9n1` keeps the appliance
  off nvme0n1 and names nvme9n1, which does not exist.
"""
import os
import re

import blkutil
import harness
from blkutil import blk_ok, blk_write_verify, parse_lsblk
from harness import qemu_test, check, boot_to_prompt, shell

TRACE_EVENTS = ["pci_nvme_io_cmd", "pci_nvme_mmio_shutdown_set", "ide_exec_cmd", "process_ncq_command",
                "ahci_port_write"]
ATA_WRITES = {0x35, 0x3D, 0x61, 0xCA, 0x30}     # WRITE DMA EXT, ..FUA EXT, FPDMA QUEUED, DMA, PIO
ATA_FLUSH_EXT = 0xEA
PXCMD_OFFSET = 0x18
PXCMD_ST = 1


def trace_args(path):
    args = ["-D", path]
    for ev in TRACE_EVENTS:
        args += ["-trace", f"enable={ev}"]
    return args


def read_trace(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def nvme_order(lines):
    """(index of the last NVMe write, of the first flush after it, of the
    first CC.SHN after that); None where absent."""
    last_write = flush = shn = None
    for i, ln in enumerate(lines):
        if "pci_nvme_io_cmd" in ln:
            if re.search(r"opname '[A-Z_]*WRITE'", ln):
                last_write, flush, shn = i, None, None
            elif "FLUSH" in ln and last_write is not None and flush is None:
                flush = i
        elif "pci_nvme_mmio_shutdown_set" in ln and flush is not None and shn is None:
            shn = i
    return last_write, flush, shn


def ahci_order(lines):
    """Same for AHCI: last ATA write, first FLUSH CACHE EXT after it, first
    PxCMD write with ST clear after that."""
    last_write = flush = stop = None
    for i, ln in enumerate(lines):
        # Non-queued commands go through ide_exec_cmd, NCQ ones do not.
        m = re.search(r"ide_exec_cmd .*cmd 0x([0-9a-fA-F]+)|process_ncq_command .*NCQ op 0x([0-9a-fA-F]+)", ln)
        if m:
            cmd = int(m.group(1) or m.group(2), 16)
            if cmd in ATA_WRITES:
                last_write, flush, stop = i, None, None
            elif cmd == ATA_FLUSH_EXT and last_write is not None and flush is None:
                flush = i
            continue
        m = re.search(r"ahci_port_write .*@ 0x([0-9a-fA-F]+): 0x([0-9a-fA-F]+)", ln)
        if m and flush is not None and stop is None:
            if int(m.group(1), 16) == PXCMD_OFFSET and not int(m.group(2), 16) & PXCMD_ST:
                stop = i
    return last_write, flush, stop


def power_off_output(m, trigger):
    """Run trigger() (poweroff or the power button); return (qemu exit
    status, console output from then until power-off)."""
    start = m.mark()
    trigger()
    m.expect(r"^power: off", 120)
    status = m.wait_exit(60)
    return status, harness.strip_ansi(m.output(start))


def two_disks(test):
    paths = blkutil.fresh_images(harness.vm.TMP_DIR, test,
                                 {"nvme0n1": f"{test}-nvme.img", "sata0": f"{test}-sata.img"})
    return paths, [{"kind": "nvme", "path": paths["nvme0n1"], "size": "64M", "lba": 4096},
                   {"kind": "sata", "path": paths["sata0"], "size": "64M"}]


def shutdown_trace(ctx, test, command, final, want_status):
    """Write to both disks, run `command`; qemu's trace must show flush and
    shutdown after the last write, the images must hold the data."""
    paths, disks = two_disks(test)
    m = ctx.machine()
    trace = os.path.join(m.tmp, "qemu-trace.log")
    os.makedirs(m.tmp, exist_ok=True)
    if os.path.exists(trace):
        os.remove(trace)
    boot_to_prompt(m, smp=2, disks=disks, extra=trace_args(trace))
    with ctx.subtest("write"):
        blk_write_verify(m, "nvme0n1", 40, 256, 31)
        blk_write_verify(m, "sata0", 300, 2048, 32)
    start = m.mark()
    m.sendline(command)
    m.expect(final, 120)
    status = m.wait_exit(60)
    out = harness.strip_ansi(m.output(start))
    with ctx.subtest("console"):
        check(status == want_status, f"qemu exit status {status}, want {want_status}:\n{out[-2000:]}")
        for want in (r"blk: power-off flush: 2 disks flushed", r"nvme0: shutdown complete",
                     r"\(sata0\): cache flushed", r"shutdown: done in \d+ ms, 0 steps failed"):
            check(re.search(want, out), f"no {want!r} in the {command} output:\n{out[-2000:]}")
    lines = read_trace(trace)
    with ctx.subtest("nvme_flush_then_shn"):
        w, f, s = nvme_order(lines)
        check(w is not None, f"no NVMe write in qemu's trace ({len(lines)} lines)")
        check(f is not None, "qemu saw no NVMe Flush after the last write")
        check(s is not None, "qemu saw no CC.SHN (shutdown notification) after the flush")
    with ctx.subtest("ahci_flush_then_stop"):
        w, f, s = ahci_order(lines)
        check(w is not None, f"no ATA write in qemu's trace ({len(lines)} lines)")
        check(f is not None, "qemu saw no FLUSH CACHE EXT after the last ATA write")
        check(s is not None, "qemu saw no PxCMD.ST cleared after the flush")
    with ctx.subtest("host_image"):
        for dev, lba, count, seed, b in (("nvme0n1", 40, 256, 31, 4096), ("sata0", 300, 2048, 32, 512)):
            err = blkutil.image_check(paths[dev], seed, lba * b, count * b)
            check(not err, f"{dev}: {err}")


@qemu_test(weight=3)
def blk_shutdown_trace(ctx):
    shutdown_trace(ctx, "blk_shutdown_trace", "poweroff", r"^power: off", 1)


@qemu_test(weight=3)
def blk_reboot_trace(ctx):
    # -no-reboot: qemu exits with status 0 when the guest resets.
    shutdown_trace(ctx, "blk_reboot_trace", "reboot", r"^power: reset", 0)


@qemu_test(weight=2)
def blk_power_button(ctx):
    _, disks = two_disks("blk_power_button")
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=disks, qmp=True)
    check(re.search(r"acpi: power button on SCI IRQ \d+", boot),
          f"the power button was not armed at boot:\n{boot[-2000:]}")
    blk_write_verify(m, "nvme0n1", 8, 16, 41)
    status, out = power_off_output(m, lambda: m.qmp("system_powerdown"))
    check(status == 1, f"qemu exit status {status} after system_powerdown, want 1:\n{out[-2000:]}")
    for want in (r"acpi: power button pressed", r"shutdown \(power button\)",
                 r"blk: power-off flush: 2 disks flushed", r"nvme0: shutdown complete",
                 r"shutdown: done in \d+ ms, 0 steps failed"):
        check(re.search(want, out), f"no {want!r} after the power button:\n{out[-2000:]}")


@qemu_test(weight=1)
def blk_disks_config(ctx):
    _, disks = two_disks("blk_disks_config")
    m = ctx.machine()
    boot = boot_to_prompt(m, smp=2, disks=disks, config=["disks = sata0,nvme9n1"])
    with ctx.subtest("unselected_left_alone"):
        check(re.search(r"nvme0n1: not in config.txt disks \(sata0,nvme9n1\): left alone", boot),
              f"no word about leaving nvme0n1 alone:\n{boot[-3000:]}")
        names = sorted(parse_lsblk(shell(m, "lsblk")))
        check("sata0" in names and "nvme0n1" not in names, f"lsblk lists {names}")
        out = shell(m, "blk read nvme0n1 0 1")
        check(re.search(r"no device 'nvme0n1'", out), f"nvme0n1 answered although not selected:\n{out}")
    with ctx.subtest("unknown_named"):
        check(re.search(r"config.txt disks names disk 'nvme9n1', but no driver found", boot),
              f"the unknown disk nvme9n1 was not named at boot:\n{boot[-3000:]}")
    with ctx.subtest("selected_works"):
        blk_ok(m, "blk write sata0 0 8 5")


@qemu_test(weight=2)
def blk_shutdown_flush_fails(ctx):
    """Every flush fails (blkdebug on flush_to_disk): each power-off step
    that flushes says in words which disk failed and why, and the machine
    powers off anyway."""
    m = ctx.machine()
    os.makedirs(m.tmp, exist_ok=True)
    confs = {dev: blkutil.blkdebug_conf(os.path.join(m.tmp, f"{dev}.blkdebug"), [{"iotype": "flush"}])
             for dev in ("nvme0n1", "sata0")}
    disks = [{"kind": "nvme", "size": "32M", "lba": 4096, "blkdebug": confs["nvme0n1"]},
             {"kind": "sata", "size": "32M", "port": 0, "blkdebug": confs["sata0"]}]
    boot_to_prompt(m, smp=2, disks=disks)
    blk_ok(m, "blk write nvme0n1 8 16 51")
    blk_ok(m, "blk write sata0 8 16 52")
    status, out = power_off_output(m, lambda: m.sendline("poweroff"))
    check(status == 1, f"qemu exit status {status}, want 1:\n{out[-3000:]}")
    for want in (r"blk: nvme0n1: power-off flush failed: \S+", r"blk: sata0: power-off flush failed: \S+",
                 r"blk: power-off flush: 0 disks flushed",
                 r"\(sata0\): FLUSH CACHE EXT at power-off failed: \S+",
                 r"shutdown: blk_flush failed after \d+ ms: ", r"shutdown: done in \d+ ms, [1-9]\d* steps? failed"):
        check(re.search(want, out), f"no {want!r} in the power-off output:\n{out[-3000:]}")
