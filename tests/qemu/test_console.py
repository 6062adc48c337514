"""The screen console mirrors the serial console, and the PS/2 keyboard types
into the shell.

The machine has a Bochs VGA display (vm.py's default -vga std) that OVMF
offers as a GOP framebuffer; qemu runs headless and the monitor's screendump
reads the screen.  tests/qemu/screen.py turns the picture back into text by
matching every cell against the same Debian font the kernel is built with,
and turns the serial transcript into the rows a terminal would show; the
screen's text rows must equal the end of that transcript, row for row.
Keys go in through QMP send-key, which qemu delivers to the PS/2 keyboard.
The status line's uptime must advance (its thread redraws it once a second)
and it names the disks and the network address (or that there is none).
"""
import os
import re
import time

from harness import qemu_test, boot_to_prompt, check, shell, vm, PROMPT
import screen

STATUS_UPTIME_RE = r"up (\d+):(\d\d):(\d\d)"
# Every letter and digit, upper case through Shift, so the whole key map is typed.
PANGRAM = "The quick brown fox jumps over the lazy dog 0123456789"
QCODE = {" ": "spc", "-": "minus", ".": "dot", "=": "equal", ",": "comma", "/": "slash"}


def screendump(m, ctx, name):
    """The screen's rows of text (row 0 is the status line)."""
    path = os.path.join(m.tmp, f"{name}.ppm")
    if os.path.exists(path):
        os.remove(path)
    m.qmp("screendump", filename=path)
    rows = SCREEN.decode(screen.read_ppm(path))
    with open(os.path.join(m.tmp, f"{name}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return rows


def kernel_transcript(m):
    """Everything the kernel sent on the serial line (firmware and loader
    output before its first byte, the banner's leading newline, cut off)."""
    text = m.output(0, len(m.buf))
    start = text.find("\nappliance kernel ")
    check(start >= 0, "no kernel banner on the serial line")
    return text[start:]


def check_mirror(m, rows, min_rows):
    """The screen's text rows (below the status line) show the end of the
    serial transcript with the cursor where the serial terminal has it, and
    at least min_rows of them are not blank."""
    text_rows = rows[1:]
    ref, cursor = screen.terminal(kernel_transcript(m), m.screen_cols, m.screen_rows - 1)
    diff = screen.compare_tail(text_rows, ref, SCREEN.cursor, cursor)
    check(diff is None, f"{diff}\n--- screen ---\n" + "\n".join(text_rows[-15:]))
    filled = sum(1 for r in text_rows if r.strip())
    check(filled >= min_rows, f"only {filled} non-blank rows on screen, expected >= {min_rows}")


def wait_serial_line(m, line, col, timeout=30):
    """Wait until the serial terminal's last row is `line` with the cursor
    at `col` (keys are delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        rows, (r, c) = screen.terminal(kernel_transcript(m), m.screen_cols, m.screen_rows - 1)
        if rows[-1] == line and r == len(rows) - 1 and c == col:
            return
        check(time.monotonic() < deadline,
              f"serial line {rows[-1]!r} cursor {c} after {timeout} s, want {line!r} cursor {col}")
        time.sleep(0.2)


def send_keys(m, names, paced=True):
    """One QMP send-key (names pressed together).  Paced: wait until the
    serial line shows the guest reacted, as a typist waits for the echo.
    qemu's PS/2 keyboard holds only 16 bytes; on a loaded host an unpaced
    burst can outrun a vCPU that is not scheduled and lose keys in qemu."""
    with m.cond:
        before = len(m.buf)
    m.qmp("send-key", keys=[{"type": "qcode", "data": n} for n in names])
    deadline = time.monotonic() + 20
    while paced:
        with m.cond:
            if len(m.buf) > before:
                return
        check(time.monotonic() < deadline, f"no echo on the serial line for key(s) {names}")
        time.sleep(0.02)


def type_keys(m, text):
    """Type text on the PS/2 keyboard, one key (with Shift for capitals) at a time."""
    for ch in text:
        names = ["shift"] if ch.isupper() else []
        send_keys(m, names + [QCODE.get(ch, ch.lower())])


def press(m, *names, paced=True):
    send_keys(m, names, paced)


SCREEN = screen.Screen()


@qemu_test(weight=3)
def console_screen(ctx):
    m = ctx.machine()
    boot_to_prompt(m, qmp=True, disks=("nvme",))
    boot = m.output(0, len(m.buf))
    g = re.search(r"fbcon: \d+x\d+ framebuffer at \S+, (\d+)x(\d+) text", boot)
    check(g, "no 'fbcon: ... text' line at boot: no screen console")
    m.screen_cols, m.screen_rows = int(g.group(1)), int(g.group(2))
    check(re.search(r"kbd: i8042 keyboard on IRQ 1 .* scancode set 1", boot),
          "no 'kbd: i8042 keyboard ... scancode set 1' line at boot")

    rows = []
    with ctx.subtest("boot_mirrored"):
        rows = screendump(m, ctx, "boot")
        check(len(rows) == m.screen_rows and all(len(r) <= m.screen_cols for r in rows),
              f"screen decoded as {len(rows)} rows, kernel said {m.screen_rows}")
        check_mirror(m, rows, min(40, m.screen_rows - 2))
        check(rows[-1].startswith(PROMPT.strip()) or
              any(r.startswith(PROMPT.strip()) for r in rows[-3:]),
              f"no prompt at the bottom of the screen: {rows[-3:]!r}")

    with ctx.subtest("status_line"):
        status = rows[0] if rows else ""
        for want in ("net: down (no network card)", "disks: nvme0n1"):
            check(want in status, f"status line {status!r} lacks {want!r}")
        first = re.search(STATUS_UPTIME_RE, status)
        check(first, f"status line {status!r} shows no uptime")
        # Refreshed once a second by its thread: a later picture is later.
        deadline = time.monotonic() + 20
        while True:
            time.sleep(1.5)
            later = screendump(m, ctx, "status")[0]
            now = re.search(STATUS_UPTIME_RE, later)
            check(now, f"status line {later!r} shows no uptime")
            t0 = [int(x) for x in first.groups()]
            t1 = [int(x) for x in now.groups()]
            if t1 > t0:
                break
            check(time.monotonic() < deadline,
                  f"uptime on the status line stuck at {first.group(0)!r} for 20 s")
        text = shell(m, "status")
        check("net: down" in text and "disks: nvme0n1" in text,
              f"status command prints {text!r}, not the status line")

    with ctx.subtest("keyboard_runs_command"):
        # Typed with an edit in the middle: "echo X" + Left + "Hi" -> "echo HiX".
        start = m.mark()
        type_keys(m, "echo X")
        press(m, "left")
        type_keys(m, "Hi")
        # Mid-edit: the redrawn line and the cursor before the X, on both.
        wait_serial_line(m, PROMPT + "echo HiX", len(PROMPT + "echo Hi"))
        check_mirror(m, screendump(m, ctx, "editing"), 20)
        press(m, "ret")
        m.expect(r"^HiX\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)
        echoed = screen.terminal_rows(m.output(start, m.mark()), m.screen_cols)
        check("appliance> echo HiX" in echoed or any(r.endswith("echo HiX") for r in echoed),
              f"serial echo of the typed line: {echoed!r}")
        rows = screendump(m, ctx, "keyboard")
        check_mirror(m, rows, 20)
        check(any(r == PROMPT + "echo HiX" for r in rows) and "HiX" in rows,
              "screen lacks the typed command and its output:\n" + "\n".join(rows[-6:]))

    with ctx.subtest("keyboard_keymap"):
        type_keys(m, "echo " + PANGRAM)
        press(m, "ret")
        m.expect("^" + re.escape(PANGRAM) + r"\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)

    with ctx.subtest("long_line_redraw"):
        # The line editor learns the screen's width from the screen's answer
        # to its cursor position query (no terminal answers on this serial
        # line): a 105-column line redrawn by Home and End stays on its row
        # of the 160-column screen instead of climbing over the row above.
        long = "x" * 100
        m.send("echo " + long)
        wait_serial_line(m, PROMPT + "echo " + long, len(PROMPT + "echo " + long))
        press(m, "home")
        wait_serial_line(m, PROMPT + "echo " + long, len(PROMPT))
        press(m, "end")
        wait_serial_line(m, PROMPT + "echo " + long, len(PROMPT + "echo " + long))
        rows = screendump(m, ctx, "long_line")
        check_mirror(m, rows, 20)
        check(rows[-2:] == [PANGRAM, PROMPT + "echo " + long],
              "long line not redrawn in place:\n" + "\n".join(rows[-3:]))
        m.send("\r")
        m.expect("^" + long + r"\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)

    with ctx.subtest("keyboard_ctrl_c_stops_command"):
        m.sendline("bench blk nvme0n1 randread secs=3000")
        m.expect(r"^bench: nvme0n1 randread: \d+ of 3001 s", 60)
        press(m, "ctrl", "c", paced=False)
        m.expect(r"^bench: nvme0n1: interrupted; no result", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)

    with ctx.subtest("fault_on_screen"):
        m.sendline("fault ud")
        m.expect(r"system halted", 60)
        rows = screendump(m, ctx, "fault")
        check_mirror(m, rows, 20)
        check(any(r.startswith("*** exception 6 (invalid opcode)") for r in rows),
              "no exception report on screen:\n" + "\n".join(rows[-30:]))
        check(any(r.startswith("PANIC: unhandled exception 6") for r in rows) and
              rows[-1] == "" and "system halted" in rows,
              "no panic line / 'system halted' on screen:\n" + "\n".join(rows[-10:]))


@qemu_test(weight=2)
def console_keyboard_set2(ctx):
    """Translation off, the keyboard in scancode set 2: the driver's set 2
    table must give the same characters.  With a network card, the status
    line shows the address DHCP gave."""
    m = ctx.machine()
    boot_to_prompt(m, qmp=True, args="kbd=set2", nic=vm.vm_nic_args("e1000e"))
    boot = m.output(0, len(m.buf))
    check(re.search(r"kbd: i8042 keyboard on IRQ 1 .* scancode set 2\n", boot),
          "kbd=set2 did not give 'scancode set 2' at boot")
    with ctx.subtest("status_address"):
        deadline = time.monotonic() + 60
        while True:
            status = screendump(m, ctx, "status")[0]
            if "net: 10.0.2.15 (" in status:
                break
            check(time.monotonic() < deadline, f"status line {status!r} shows no 10.0.2.15 after 60 s")
            time.sleep(1)
    type_keys(m, "echo " + PANGRAM + " ")
    press(m, "shift", "minus")
    press(m, "home")
    press(m, "delete")
    type_keys(m, "e")
    press(m, "end")
    press(m, "ret")
    with ctx.subtest("typed"):
        m.expect("^" + re.escape(PANGRAM) + r" _\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)
    with ctx.subtest("word_moves"):
        # Ctrl-Left (E0-prefixed with a modifier) and Alt-B (ESC b) move by words.
        type_keys(m, "echo ab cd")
        press(m, "ctrl", "left")
        type_keys(m, "X")
        press(m, "alt", "b")
        type_keys(m, "Y")
        press(m, "ret")
        m.expect(r"^ab YXcd\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)
    with ctx.subtest("caps_lock"):
        type_keys(m, "echo ")
        press(m, "caps_lock", paced=False)     # no echo: the next key's shows the order
        send_keys(m, ["a"])
        send_keys(m, ["shift", "b"])           # Shift undoes Caps Lock for letters
        send_keys(m, ["1"])                    # and Caps Lock leaves digits alone
        press(m, "caps_lock", paced=False)
        type_keys(m, "c")
        press(m, "ret")
        m.expect(r"^Ab1c\n", 30)
        m.expect(r"^" + re.escape(PROMPT), 30)


@qemu_test(weight=0)
def console_screen_reader(ctx):
    """The screen reader itself, without qemu: a picture drawn here with the
    font reads back as the same text and cursor, and the terminal model
    handles what the line editor sends."""
    font = SCREEN.font
    lines = ["status: net: down", "", "Hello, World! ~{|}", "appliance> echo hi"]
    cols, fg, bg, status_bg = 24, b"\xaa\xaa\xaa", b"\x00\x00\x00", b"\xaa\xaa\xaa"
    w, h = cols * font.width, len(lines) * font.height
    rgb = bytearray(bg * (w * h))
    cursor = (2, 18)          # text row 2 (screen row 3), after "echo hi"
    for r, text in enumerate(lines):
        for c in range(cols):
            ch = text[c] if c < len(text) else " "
            ink, paper = fg, bg
            if r == 0:
                ink, paper = bg, status_bg
            if (r - 1, c) == cursor:
                ink, paper = paper, ink
            bitmap = font.glyph(ch)
            for y in range(font.height):
                for x in range(font.width):
                    off = ((r * font.height + y) * w + c * font.width + x) * 3
                    rgb[off:off + 3] = ink if font.pixel(bitmap, x, y) else paper
    with ctx.subtest("glyphs_round_trip"):
        got = SCREEN.decode((w, h, bytes(rgb)))
        check(got == lines, f"read back {got!r}")
        check(SCREEN.cursor == cursor, f"cursor read at {SCREEN.cursor}, drawn at {cursor}")
    with ctx.subtest("wrong_pixel_is_visible"):
        off = ((2 * font.height + 3) * w + 3) * 3    # 'H', row 3, between its strokes
        check(rgb[off:off + 3] == bg, "test pixel is not background")
        rgb[off:off + 3] = fg
        got = SCREEN.decode((w, h, bytes(rgb)))
        check(got[2] != lines[2] and screen.UNKNOWN in got[2], f"one flipped pixel unnoticed: {got[2]!r}")
    with ctx.subtest("terminal_model"):
        rows, cur = screen.terminal("a> echo X\x1b[D\rA> echo HiX\x1b[K\x1b[1D\n12345\tx\b\by", 10)
        check(rows == ["A> echo Hi", "X", "12345  yx"] and cur == (2, 8),
              f"terminal model gave {rows!r} cursor {cur}")
