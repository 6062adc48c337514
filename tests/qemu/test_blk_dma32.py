"""AHCI without 64-bit DMA: the boot argument ahci_dma32 makes the driver
behave as on an HBA whose CAP.S64A is clear.  On a guest with more than
4 GiB of RAM (buffers then come from above 4 GiB) every command structure
must sit below 4 GiB and data above it must be bounced: writes and reads
through the shell come back intact, `selftest ahci` moves data to and from
a buffer above 4 GiB (the disk is named scratch), the driver counts
bounced requests,
and qemu's trace shows the command list and received-FIS area programmed
below 4 GiB (upper address registers zero)."""
import os
import re

from blkutil import blk_run, blk_write_verify
from harness import qemu_test, check, boot_to_prompt, shell

MEM = "5G"


@qemu_test(weight=3)
def blk_ahci_dma32(ctx):
    m = ctx.machine()
    trace = os.path.join(m.tmp, "qemu-trace.log")
    os.makedirs(m.tmp, exist_ok=True)
    if os.path.exists(trace):
        os.remove(trace)
    boot = boot_to_prompt(m, smp=2, mem=MEM, disks=["sata"], args="ahci_dma32 scratch=sata0",
                          extra=["-D", trace, "-trace", "enable=ahci_port_write"])
    with ctx.subtest("forced"):
        check(re.search(r"ahci0: .*32-bit DMA \(forced by ahci_dma32\)", boot),
              f"the HBA did not switch to 32-bit DMA:\n{boot[-2000:]}")
        mem = re.search(r"memory: (\d+) MiB total", boot)
        check(mem and int(mem.group(1)) > 4096, f"guest has no memory above 4 GiB: {mem and mem.group(0)}")
    with ctx.subtest("write_verify"):
        blk_write_verify(m, "sata0", 1000, 8192, 77)      # 4 MiB in 64 KiB pieces
        blk_write_verify(m, "sata0", 3, 5, 78)
    with ctx.subtest("selftest"):
        out = blk_run(m, "selftest ahci", 300)
        check(re.search(r"selftest: \d+ passed, 0 failed", out), f"selftest ahci:\n{out[-2000:]}")
        check(re.search(r"dma32_bounce: I/O through 0x[0-9a-f]+ bounced", out), f"bounce test skipped:\n{out}")
    with ctx.subtest("bounced"):
        out = shell(m, "lsblk -v")
        b = re.search(r"DMA: 32-bit, (\d+) requests bounced below 4 GiB", out)
        check(b and int(b.group(1)) > 0, f"no request was bounced:\n{out}")
    with ctx.subtest("qemu_saw_low_addresses"):
        m.sendline("poweroff")
        m.wait_exit(60)
        with open(trace, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if re.search(r"reg:Px(CLB|FB)U?\]", ln)]
        check(lines, "no PxCLB/PxFB write in qemu's trace")
        high = [ln for ln in lines if re.search(r"reg:Px(CLBU|FBU)\] @ 0x[0-9a-f]+: 0x0*[1-9a-f]", ln)]
        check(not high, "command list or FIS area programmed above 4 GiB:\n" + "".join(high[:5]))
