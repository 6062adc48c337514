"""Shared pieces of the qemu integration tests (Python 3 stdlib only).

A test is a function taking a Context, registered with @qemu_test.  It
reports results either by returning normally (one "ok - qemu.NAME" line) or
raising (one "not ok"), or through ctx.subtest("sub") blocks that each report
"qemu.NAME.sub" and let the test continue past a failure.  Every line is
printed in the protocol of tests/host/test.h; details of a failure (the
console tail from Machine) follow as "# " comment lines, which
tests/summary.py ignores.
"""
import contextlib
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))

import vm  # noqa: E402  (tools/vm.py, after the path tweak above)

ESP = vm.DEFAULT_ESP
IMAGE = vm.DEFAULT_IMAGE
PROMPT = "appliance> "
BOOT_TIMEOUT = 60         # OVMF alone takes ~3 s under TCG; be generous
ANSI_RE = re.compile(r"\x1b\[[0-9;?=]*[A-Za-z]")

TESTS = []


def qemu_test(exclusive=False, weight=1):
    """Register a test.  exclusive: run with no other qemu alongside (for
    timing-sensitive runs on a 2-core host).  weight: rough cost, heaviest
    start first so two workers finish together."""
    def reg(fn):
        fn.qemu_exclusive = exclusive
        fn.qemu_weight = weight
        TESTS.append(fn)
        return fn
    return reg


def strip_ansi(text):
    return ANSI_RE.sub("", text)


def first_line(text):
    text = str(text).strip()
    return text.splitlines()[0] if text else "(no message)"


class Context:
    """Collects one test's protocol lines (printed together, so two tests
    running in parallel never interleave their output)."""

    def __init__(self, name):
        self.name = name
        self.lines = []
        self.failures = 0
        self.subtests = 0
        self.machines = []

    def report(self, name, ok, reason=None, details=None):
        if ok:
            self.lines.append(f"ok - {name}")
        else:
            self.failures += 1
            self.lines.append(f"not ok - {name}: {first_line(reason)}")
            for d in str(details or reason).splitlines()[1:]:
                self.lines.append("#   " + d)

    def skip(self, sub, why):
        """A subtest that cannot run here: counted as skipped, never passed."""
        self.lines.append(f"skip - qemu.{self.name}.{sub}: {why}")

    def note(self, text):
        self.lines.append(f"# {self.name}: {text}")

    @contextlib.contextmanager
    def subtest(self, sub):
        """with ctx.subtest("x"): ...  reports qemu.TEST.x, never raises."""
        self.subtests += 1
        try:
            yield
        except Exception as e:  # noqa: BLE001 - any error is a test failure
            self.report(f"qemu.{self.name}.{sub}", False, f"{type(e).__name__}: {e}"
                        if not isinstance(e, AssertionError) else str(e))
        else:
            self.report(f"qemu.{self.name}.{sub}", True)

    def machine(self, suffix=""):
        """A Machine logging to build/test-logs/qemu.<test>[.<suffix>].log;
        the runner kills it when the test ends, whatever happened."""
        name = f"qemu.{self.name}" + (f".{suffix}" if suffix else "")
        m = vm.Machine(name)
        self.machines.append(m)
        return m


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# -- shell helpers ---------------------------------------------------------

def boot_to_prompt(m, **start_args):
    """Start m and wait for the first prompt; returns the boot output."""
    m.start(**start_args)
    m.expect(r"appliance kernel", BOOT_TIMEOUT)
    m.expect(r"^" + re.escape(PROMPT), BOOT_TIMEOUT)
    return m.output()


def shell(m, line, timeout=30):
    """Run one command line; return its output (ANSI stripped, LF lines)
    between the echoed input line and the next prompt."""
    if m.hung:
        # An earlier command timed out.  One short probe decides whether the
        # shell is back; if not, fail at once rather than let every later
        # command wait out its own timeout.
        m.hung = False
        m.send("\x03")                     # Ctrl-C abandons any half line
        time.sleep(1)
        m.sendline("echo resync-marker")
        try:
            m.expect(r"^resync-marker\n", 10)
            m.expect(r"^" + re.escape(PROMPT), 10)
        except AssertionError:
            m.hung = True
            raise AssertionError(f"shell unresponsive since an earlier timeout; not running "
                                 f"{line!r}\n{m.tail()}")
    m.sendline(line)
    m.expect(r"\n", timeout)            # end of the echoed input line
    start = m.mark()
    m.expect(r"^" + re.escape(PROMPT), timeout)
    return strip_ansi(m.output(start, m.mark() - len(PROMPT)))


def lines_of(text):
    return [ln for ln in text.replace("\r", "").split("\n") if ln.strip()]


def kernel_version():
    with open(os.path.join(REPO, "kernel", "kernel.h"), encoding="utf-8") as f:
        m = re.search(r'#define\s+KERNEL_VERSION\s+"([^"]+)"', f.read())
    return m.group(1) if m else None


def default_config_lines():
    with open(os.path.join(ESP, "appliance", "config.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def elapsed(t0):
    return f"{time.monotonic() - t0:.1f} s"


def poweroff(m, status=0, timeout=60):
    """`poweroff [STATUS]` and check qemu's exit status: isa-debug-exit
    turns power_off(s) into (s << 1) | 1."""
    m.sendline("poweroff" if status == 0 else f"poweroff {status}")
    got = m.wait_exit(timeout)
    check(got == (status << 1) | 1, f"poweroff {status}: qemu exit status {got}, expected "
          f"{(status << 1) | 1} (isa-debug-exit; 7 means a panic, None no exit)")
