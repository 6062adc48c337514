"""Boot from the ESP directory to the prompt, then every shell command on
the same machine (one boot keeps the suite fast under TCG)."""
import re
import time

import harness
from harness import (PROMPT, BOOT_TIMEOUT, qemu_test, shell, lines_of, check,
                     kernel_version, strip_ansi, boot_to_prompt)

COMMANDS = ["help", "mem", "cpus", "pci", "uptime", "date", "log", "reboot", "poweroff",
            "selftest", "fault", "echo", "version", "args"]
# Wrong boot arguments the kernel must name at boot (and otherwise ignore).
BAD_ARGS = "smp=99 smpp=2 iomap_log=x"
SMP = 2
SATA_BLOCKS = 8 << 21          # 8 GiB in 512-byte blocks


def uptime_ms(out):
    """"up H:MM:SS.mmm" -> milliseconds, None if absent."""
    m = re.search(r"up (\d+):(\d+):(\d+)\.(\d+)", out)
    if not m:
        return None
    h, mi, s, ms = (int(x) for x in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def expect_in(out, regex, what):
    check(re.search(regex, out, re.MULTILINE), f"{what}: no /{regex}/ in output:\n{out[-1500:]}")


@qemu_test(weight=5)
def shell_session(ctx):
    m = ctx.machine()
    # The NVMe disk is a fresh scratch image: name it so the writing
    # self-tests of `selftest` may use it.  The SATA disk is large (sparse)
    # so reading all of it takes long enough to be interrupted.
    m.start(smp=SMP, disks=["nvme", {"kind": "sata", "size": "8G"}], args=BAD_ARGS + " scratch=nvme0n1")
    with ctx.subtest("boot_banner"):
        banner = m.expect(r"^appliance kernel \d+\.\d+\S* \(built ([^)]+)\)", BOOT_TIMEOUT)
    with ctx.subtest("boot_args_named"):
        m.expect(r"^args: unknown boot argument 'smpp' ignored", 30)
        m.expect(r"^args: iomap_log=x is not a number \(0\.\.3\)", 30)
        m.expect(r"^smp: smp=99 asks for more CPUs than the 2 present; using 2", 60)
    with ctx.subtest("boot_ready"):
        ms = int(m.expect(r"^ready in (\d+) ms$", BOOT_TIMEOUT).group(1))
        ctx.note(f"ready in {ms} ms")
    with ctx.subtest("boot_prompt"):
        m.expect(r"^" + re.escape(PROMPT), 30)

    with ctx.subtest("help"):
        out = shell(m, "help")
        missing = [c for c in COMMANDS if not re.search(rf"^\s*{c}\b", out, re.M)]
        check(not missing, f"help does not list {missing}:\n{out}")
    with ctx.subtest("help_one"):
        out = shell(m, "help mem")
        expect_in(out, r"usage: mem\b", "help mem")
        out = shell(m, "help nosuchcmd")
        expect_in(out, r"unknown command 'nosuchcmd'", "help nosuchcmd")

    with ctx.subtest("mem"):
        out = shell(m, "mem")
        m_total = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB)\s+total", out)
        check(m_total, f"mem: no total:\n{out}")
        mib = float(m_total.group(1)) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[m_total.group(2)]
        # -m 512M minus firmware reservations: anything from 300 to 512 MiB.
        check(300 <= mib <= 512, f"mem: total {mib} MiB is implausible for -m 512M:\n{out}")
        expect_in(out, r"\bfree\b", "mem")
        expect_in(out, r"^heap: .*used", "mem")

    with ctx.subtest("cpus"):
        out = shell(m, "cpus")
        rows = [ln for ln in lines_of(out) if re.match(r"^\d+\s+\d+\s", ln)]
        check(len(rows) == SMP, f"cpus: expected {SMP} CPU rows:\n{out}")
        check([int(r.split()[0]) for r in rows] == list(range(SMP)), f"cpus: indexes:\n{out}")
        expect_in(out, rf"^{SMP} online", "cpus")
    with ctx.subtest("cpus_threads"):
        out = shell(m, "cpus threads")
        expect_in(out, r"\bmain\b|\bshell\b", "cpus threads (boot thread)")
        expect_in(out, r"\bidle", "cpus threads (idle threads)")

    with ctx.subtest("pci"):
        out = shell(m, "pci")
        expect_in(out, r"8086:29c0", "pci (q35 host bridge)")
        expect_in(out, r"1b36:0010", "pci (NVMe controller)")
        expect_in(out, r"^\d+ functions", "pci")

    with ctx.subtest("uptime"):
        out1 = shell(m, "uptime")
        expect_in(out1, r"ready in \d+ ms", "uptime")
        time.sleep(1.0)
        out2 = shell(m, "uptime")
        t1, t2 = (uptime_ms(o) for o in (out1, out2))
        check(t1 is not None and t2 is not None, f"uptime format: {out1!r} {out2!r}")
        # One host second: the guest clock must agree roughly (TCG and a
        # busy host stretch it, so only gross errors fail).
        check(700 <= t2 - t1 <= 5000,
              f"uptime advanced {t2 - t1} ms over ~1000 ms: {out1!r} then {out2!r}")

    with ctx.subtest("date"):
        # qemu's RTC starts at the host's UTC time; the loader hands the
        # firmware's reading over, so the guest agrees with the host.
        out = shell(m, "date")
        d = re.search(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.\d{3} UTC \(clock from UEFI\)$",
                      out, re.M)
        check(d, f"date format or source: {out!r}")
        import calendar
        guest = calendar.timegm(tuple(int(x) for x in d.groups()) + (0, 0, 0))
        check(abs(guest - time.time()) < 120, f"guest date {out.strip()!r} vs host {time.time():.0f}")
        check(shell(m, "date now").strip().startswith("usage: date"), "date takes no argument")


    with ctx.subtest("log"):
        out = shell(m, "log")
        expect_in(out, r"appliance kernel", "log (boot banner in the ring)")
        expect_in(out, r"ready in \d+ ms", "log")
        out = shell(m, "log 2")
        n = len(lines_of(out))
        check(1 <= n <= 2, f"log 2 printed {n} lines:\n{out}")

    with ctx.subtest("echo"):
        out = shell(m, 'echo hello   "big  world"')
        check(lines_of(out) == ["hello big  world"], f"echo: {out!r}")

    with ctx.subtest("version"):
        out = shell(m, "version")
        expect_in(out, r"appliance kernel " + re.escape(kernel_version() or "?"), "version")
        # One build time, the banner's.
        expect_in(out, r"built " + re.escape(banner.group(1)) + "$", "version build time")

    with ctx.subtest("args"):
        out = shell(m, "args")
        expect_in(out, r"^boot arguments .*: " + re.escape(BAD_ARGS), "args")
        expect_in(out, r"^  smp=1\.\.64 .* \[given: 99\]$", "args: smp declared by kernel/")
        expect_in(out, r"^  blk_timeout_ms=1\.\.3600000 ", "args: declared by drivers/")
        expect_in(out, r"^  pcache_mb=4\.\.1048576 ", "args: declared by platform/")

    with ctx.subtest("unknown_command"):
        out = shell(m, "frobnicate now")
        expect_in(out, r"unknown command 'frobnicate': type 'help'", "unknown command")

    with ctx.subtest("bad_args_usage"):
        for line, usage in (("mem extra", "mem"), ("cpus bogus", "cpus"),
                            ("fault nosuch", "fault"), ("log 1 2", "log"),
                            ("poweroff 1 2", "poweroff"), ("version 1", "version")):
            out = shell(m, line)
            expect_in(out, rf"^usage: {usage}\b", f"'{line}'")

    with ctx.subtest("line_editing"):
        # Typo fixed with backspace (DEL and BS), then a word inserted after
        # moving left over the last one.
        m.send("echo hellp\x7fo wrx\x08ld")
        m.send("\x1b[D\x1b[D\x1b[D" + "o")      # cursor back 3: "w|rld" -> "world"
        m.send("\x1b[D\x1b[D" + "big ")        # "hello wo|rld" -> "hello |world"
        m.send("\r")
        m.expect(r"\n", 30)
        start = m.mark()
        m.expect(r"^" + re.escape(PROMPT), 30)
        out = strip_ansi(m.output(start, m.mark() - len(PROMPT)))
        check(lines_of(out) == ["hello big world"], f"edited line ran as {out!r}")
    with ctx.subtest("history"):
        m.send("\x1b[A\r")                       # up arrow: previous line again
        m.expect(r"\n", 30)
        start = m.mark()
        m.expect(r"^" + re.escape(PROMPT), 30)
        out = strip_ansi(m.output(start, m.mark() - len(PROMPT)))
        check(lines_of(out) == ["hello big world"], f"history recall ran {out!r}")
        # Two back: the recall above added no duplicate, so this is the
        # last bad-args line, "version 1".
        m.send("\x1b[A\x1b[A\r")
        m.expect(r"\n", 30)
        start = m.mark()
        m.expect(r"^" + re.escape(PROMPT), 30)
        out = strip_ansi(m.output(start, m.mark() - len(PROMPT)))
        expect_in(out, r"^usage: version\b", "history two back")

    with ctx.subtest("bad_numbers_named"):
        # A wrong value gets one line naming the argument and why, not the usage.
        for line, want in (
                ("log x", r"^log: N 'x' is not a number$"),
                ("log 99999999999999999999999", r"^log: N '9+' is too large$"),
                ("poweroff -3", r"^poweroff: STATUS '-3' is negative$"),
                ("poweroff 256", r"^poweroff: STATUS '256' is too large \(at most 255\)$"),
                ("blk read nvme0n1 -5 1", r"^blk: LBA '-5' is negative$"),
                ("blk read nvme0n1 0 abc", r"^blk: COUNT 'abc' is not a number$"),
                ("blk read nvme0n1 0 0", r"^blk: COUNT '0' is too small \(at least 1\)$"),
                ("blk read nvme0n1 131000 100",
                 r"^blk: COUNT '100' goes past the end of nvme0n1: LBA 131000 \+ 100 > 131072 blocks$"),
                ("blk read nvme0n1 131072 1", r"^blk: LBA '131072' is past the end of nvme0n1"),
                ("blk write nvme0n1 0 8 x", r"^blk: SEED 'x' is not a number$"),
                ("blk stress nvme0n1 threads=0", r"^blk: threads '0' is too small \(at least 1\)$"),
                (f"bench blk nvme0n1 randread cpu={SMP + 5}",
                 rf"^bench: cpu '{SMP + 5}' is too large \(at most {SMP - 1}\)$"),
                ("bench blk nvme0n1 randread qd=0", r"^bench: qd '0' is too small \(at least 1\)$"),
                ("bench blk nvme0n1 randread bs=1000", r"^bench: bs '1000' is not a multiple of nvme0n1's 512-byte"),
                ("bench blk nvme0n1 randread sekunden=3", r"^bench: unknown option 'sekunden=3'")):
            out = shell(m, line)
            expect_in(out, want, f"'{line}'")
            check("usage:" not in out, f"'{line}' printed the whole usage:\n{out}")

    with ctx.subtest("help_lines_short"):
        out = shell(m, "help")
        long_lines = [ln for ln in out.splitlines() if len(ln) > 80]
        check(not long_lines, "help lines over 80 columns:\n" + "\n".join(long_lines))
        # SEED is required for write and verify, and shown so.
        expect_in(out, r"^  blk write DEV LBA COUNT SEED \[fua\]$", "help blk write")
        expect_in(out, r"^  blk read\|trim\|zero DEV LBA COUNT$", "help blk read")

    with ctx.subtest("ctrl_c_stops_long_commands"):
        for line, progress, stopped in (
                ("blk stress nvme0n1 threads=1 secs=3000",
                 r"^stress nvme0n1: \d+ of 3000 s, \d+ ops", r"^stress nvme0n1: interrupted after"),
                ("bench blk nvme0n1 randread secs=3000",
                 r"^bench: nvme0n1 randread: \d+ of 3001 s", r"^bench: nvme0n1: interrupted; no result"),
                (f"blk read sata0 0 {SATA_BLOCKS}", rf"^read sata0: \d+ of {SATA_BLOCKS} blocks",
                 rf"^read sata0 0\+{SATA_BLOCKS}: interrupted after \d+ blocks"),
                (f"pc read sata0 0 {SATA_BLOCKS * 512}", r"^pc read sata0: [\d.]+ \S+ of 8 GiB \(\d+%\)",
                 rf"^pc read sata0 0\+{SATA_BLOCKS * 512}: interrupted after \d+ bytes")):
            m.sendline(line)
            m.expect(progress, 120)          # a progress line within ~5 s of guest time
            m.send("\x03")
            m.expect(stopped, 60)
            m.expect(r"^" + re.escape(PROMPT), 60)
            # The Ctrl-C went to the command, not to the next prompt.
            out = shell(m, "echo after-ctrl-c")
            check(lines_of(out) == ["after-ctrl-c"], f"after Ctrl-C of '{line}': {out!r}")
        # blkstat in human units after the reads above.
        out = shell(m, "blkstat sata0")
        expect_in(out, r"\b\d+(\.\d)? (KiB|MiB|GiB) read, ", "blkstat sizes in units")
        expect_in(out, r"^  latency:( <\d+(us|ms):\d+)+$", "blkstat latency histogram")
        m.sendline("selftest")
        m.expect(r"^selftest: running \d+ tests", 60)
        m.send("\x03")
        m.expect(r"^selftest: interrupted after \d+ of \d+ tests", 300)
        m.expect(r"^selftest: \d+ passed, \d+ failed, \d+ skipped, \d+ not run \(interrupted\)", 60)
        m.expect(r"^" + re.escape(PROMPT), 60)

    with ctx.subtest("selftest_command"):
        out = shell(m, "selftest", timeout=600)
        expect_in(out, r"selftest: \d+ passed, 0 failed, \d+ skipped", "selftest")
        fails = [ln for ln in lines_of(out) if " FAIL" in ln]
        check(not fails, "selftest failures:\n" + "\n".join(fails))
        # NVMe and SATA are attached: only tests that need a boot
        # argument of their own may skip (expect_nvme, ahci_dma32 on a
        # machine above 4 GiB, nvme_kill_test, a controller with two
        # namespaces, nvme_shadow_db: test_selftest, test_blk_dma32,
        # test_blk_nvme_dead and test_nvme_doorbells run them).
        by_design = ("pci.msix_nvme", "ahci.dma32_bounce", "nvme.dead_after_failed_reset",
                     "nvme.mode_switch_race", "nvme.shadow_doorbells")
        skips = [ln for ln in lines_of(out) if " skipped: " in ln
                 and not any(ln.startswith(f"selftest: {t} ") for t in by_design)]
        check(not skips, "self-tests skipped with their devices attached:\n" + "\n".join(skips))

    with ctx.subtest("poweroff"):
        m.sendline("poweroff")
        status = m.wait_exit(60)
        check(status == 1, f"poweroff: qemu exit status {status}, expected 1 (isa-debug-exit 0)")


@qemu_test(weight=1)
def date_from_cmos(ctx):
    """realtime=cmos: the kernel reads the CMOS clock itself (what it does
    when the firmware gives no time) and agrees with the host too."""
    m = ctx.machine()
    boot_to_prompt(m, smp=1, args="realtime=cmos")
    out = shell(m, "date")
    d = re.search(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.\d{3} UTC \(clock from CMOS\)$", out, re.M)
    check(d, f"date with realtime=cmos: {out!r}")
    import calendar
    guest = calendar.timegm(tuple(int(x) for x in d.groups()) + (0, 0, 0))
    check(abs(guest - time.time()) < 120, f"guest date {out.strip()!r} vs host {time.time():.0f}")
    harness.poweroff(m)
