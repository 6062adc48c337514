"""Deliberate faults from the shell print a full exception report and a
symbolised backtrace, then panic (powering off: panic=poweroff)."""
import re

from harness import qemu_test, boot_to_prompt, check

FRAME_RE = r"#\d+\s+0x[0-9a-fA-F]+\s+(\w+)\+0x[0-9a-fA-F]+"


def fault_boot(ctx, kind, vector, name_re):
    m = ctx.machine()
    boot_to_prompt(m, smp=2, args="panic=poweroff")
    start = m.mark()
    m.sendline(f"fault {kind}")
    with ctx.subtest("vector"):
        # "*** exception 14 (page fault) on cpu 0, thread ..."
        e = m.expect(r"exception (\d+) \(([^)]*)\)", 30)
        check(int(e.group(1)) == vector and re.search(name_re, e.group(2), re.I),
              f"reported {e.group(0)!r}, expected vector {vector} ({name_re})")
    with ctx.subtest("panic"):
        m.expect(r"PANIC", 30)
    status = None
    with ctx.subtest("poweroff_status"):
        status = m.wait_exit(60)
        check(status == 7, f"qemu exit status {status}, expected 7 (panic -> power_off(3))")
    report = m.output(start, len(m.buf))
    with ctx.subtest("registers"):
        for reg in ("RIP", "RSP", "RAX", "RBP", "CR3"):
            check(re.search(rf"(?i)\b{reg}\b\s*[=:]?\s*(0x)?[0-9a-f]{{4,}}", report),
                  f"no {reg} value in the report:\n{report[-2000:]}")
        if kind == "pf":
            check(re.search(r"(?i)\bCR2\b\s*[=:]?\s*(0x)?[0-9a-f]+", report),
                  f"no CR2 in the page fault report:\n{report[-2000:]}")
    with ctx.subtest("backtrace"):
        funcs = re.findall(FRAME_RE, report)
        check(any(f in ("trap_trigger_fault", "shell_exec") or f.startswith("cmd_fault")
                  for f in funcs),
              f"backtrace names {funcs}, none of trap_trigger_fault/shell_exec:\n"
              f"{report[-2000:]}")


@qemu_test(weight=2)
def fault_pf(ctx):
    fault_boot(ctx, "pf", 14, r"page fault|#PF")


@qemu_test(weight=2)
def fault_ud(ctx):
    fault_boot(ctx, "ud", 6, r"invalid opcode|#UD")
