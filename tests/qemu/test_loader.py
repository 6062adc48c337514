"""Loader errors: a bad config.txt line or a missing kernel.elf stops in
the loader with a message naming the problem, and the kernel never runs."""
import os
import time

from harness import ESP, qemu_test, default_config_lines, boot_to_prompt


def loader_stops(ctx, message_re, **start):
    m = ctx.machine()
    m.start(smp=1, **start)
    m.expect(r"loader: appliance UEFI loader", 60)
    m.expect(r"loader: error: " + message_re, 30)
    m.expect(r"loader: stopped", 10)
    # Stopped means stopped: no kernel banner shortly afterwards.
    time.sleep(2)
    m.expect_not(r"appliance kernel \d")
    # A key restarts the machine; under -no-reboot qemu then exits.
    m.send("\r")
    m.wait_exit(30)


@qemu_test()
def loader_bad_key(ctx):
    n = len(default_config_lines()) + 1
    loader_stops(ctx, rf"config\.txt line {n}: unknown key 'bogus'", config=["bogus = 1"])


@qemu_test()
def loader_malformed_line(ctx):
    n = len(default_config_lines()) + 1
    loader_stops(ctx, rf"config\.txt line {n}: ", config=["this line has no equals sign"])


@qemu_test()
def loader_missing_kernel(ctx):
    loader_stops(ctx, r".*kernel\.elf.*not found", remove=["appliance/kernel.elf"])


@qemu_test()
def loader_corrupt_kernel(ctx):
    # A truncated kernel: a valid ELF header whose segments lie past the end.
    with open(os.path.join(ESP, "appliance", "kernel.elf"), "rb") as f:
        head = f.read(4096)
    loader_stops(ctx, r"kernel\.elf segment \d+ lies outside the file \(truncated\?\)",
                 files={"appliance/kernel.elf": head})


@qemu_test()
def loader_not_an_elf(ctx):
    loader_stops(ctx, r"kernel\.elf is not an ELF file",
                 files={"appliance/kernel.elf": b"MZ this is not a kernel\n" * 64})


@qemu_test()
def loader_bad_value(ctx):
    # The console line is replaced in place, so the error names its line.
    n = 1 + next(i for i, l in enumerate(default_config_lines()) if l.startswith("console"))
    loader_stops(ctx, rf"config\.txt line {n}: console must be 9600, 19200, 38400, 57600 or 115200, not '12345'",
                 config=["console = 12345"])


@qemu_test()
def loader_empty_config(ctx):
    # No file means defaults, so an empty file does too.
    m = ctx.machine()
    boot_to_prompt(m, smp=1, files={"appliance/config.txt": b""})
    m.expect_not(r"loader: error")
    m.expect_not(r"^args: ")
    out = m.output()
    if "loader: /appliance/config.txt is empty, using defaults" not in out:
        raise AssertionError("loader did not say the empty config means defaults:\n" + out[-2000:])
