"""Boot media: the GPT image as a USB stick; reboot and power-off status."""
import re

import harness

from harness import (IMAGE, PROMPT, BOOT_TIMEOUT, qemu_test, boot_to_prompt, shell,
                     check)


@qemu_test(weight=2)
def boot_usb_image(ctx):
    """`make image` output attached as USB mass storage on qemu-xhci."""
    m = ctx.machine()
    boot = boot_to_prompt(m, image=IMAGE, smp=1)
    # The loader tells code ranges from data (BOOT_MEM_F_WAS_CODE) and the
    # kernel holds them back (kernel/pmm.c: TCG's slow path for stores to
    # pages code ran from); OVMF always leaves boot-services code behind.
    z = re.search(r"^pmm: .* (\d+) KiB where firmware code ran held back", boot, re.M)
    check(z and int(z.group(1)) > 0, f"no firmware code range held back at boot: {z and z.group(0)}")
    out = shell(m, "echo from usb")
    check(out.strip() == "from usb", f"echo after USB boot: {out!r}")
    m.sendline("poweroff")
    status = m.wait_exit(60)
    check(status == 1, f"qemu exit status {status}, expected 1")


@qemu_test(weight=3)
def reboot_and_poweroff_status(ctx):
    """reboot comes back to the prompt (qemu runs without -no-reboot here,
    so a reset restarts the firmware instead of ending qemu); then
    `poweroff 5` must surface as isa-debug-exit status (5 << 1) | 1."""
    m = ctx.machine()
    with ctx.subtest("first_boot"):
        boot_to_prompt(m, smp=2, no_reboot=False)
    with ctx.subtest("reboot"):
        m.sendline("reboot")
        m.expect(r"^rebooting", 30)
        m.expect(r"^appliance kernel \d", BOOT_TIMEOUT)    # the banner, a second time
        m.expect(r"^ready in \d+ ms", BOOT_TIMEOUT)
        m.expect(r"^" + re.escape(PROMPT), 30)
        banners = len(re.findall(r"^appliance kernel \d", m.output(), re.M))
        check(banners == 2, f"expected the banner twice, saw it {banners} times")
    with ctx.subtest("poweroff_status"):
        m.sendline("poweroff 5")
        m.expect(r"status 5", 30)
        status = m.wait_exit(60)
        check(status == (5 << 1) | 1, f"qemu exit status {status}, expected {(5 << 1) | 1}")


@qemu_test(weight=1)
def boot_survives_spoiled_calibration(ctx):
    """Timer calibration against the HPET is repeated when a pass comes out
    implausible (a loaded host once descheduled the vCPU inside the window:
    "TSC measured at 22851754235 Hz", then a panic).  Two spoiled passes
    (boot argument time_calib_fault=2) are reported and the boot goes on
    with a sane TSC rate."""
    m = ctx.machine()
    out = harness.boot_to_prompt(m, smp=1, args="time_calib_fault=2")
    spoiled = re.findall(r"^time: TSC measured at \d+ Hz against the HPET, outside 100 MHz-10 GHz$", out, re.M)
    check(len(spoiled) == 2, f"{len(spoiled)} spoiled passes reported, want 2:\n{out[-2000:]}")
    rate = re.search(r"^time: TSC (\d+)\.(\d\d) GHz", out, re.M)
    check(rate and 0.1 <= int(rate.group(1)) + int(rate.group(2)) / 100 <= 10, "no sane TSC rate at boot")
    harness.poweroff(m)
