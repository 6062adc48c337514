"""Reading the kernel's screen console back as text (Python 3 stdlib only).

  read_ppm(path)              the monitor's screendump (binary PPM, P6)
  Screen(font).decode(ppm)    rows of text: each 8x16 cell matched against the
                              font's glyphs (tools/psf.py, the same Debian font
                              the kernel is built with); .cursor is then the
                              (row, col) of the cell drawn inverted, or None
  terminal(text, cols)        what a VT100-like terminal of that width shows
                              for a serial transcript, and where its cursor is:
                              the reference the screen is compared with

Glyph matching: in each cell the most common colour is the background, every
other pixel is ink; the ink bitmap (or, for a glyph with more ink than
background, its complement) must equal a glyph exactly.  The cursor is the one
text cell whose background differs from the screen's.  A cell that matches
nothing reads as U+FFFD, so a wrongly drawn pixel shows up as a mismatch.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))

import psf  # noqa: E402  (tools/psf.py)

UNKNOWN = "\ufffd"


class PpmError(Exception):
    pass


def read_ppm(path):
    """(width, height, rgb bytes) of a binary PPM with maxval 255."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        if end == pos:
            raise PpmError(f"{path}: header truncated")
        fields.append(data[pos:end])
        pos = end
    pos += 1   # the single whitespace byte after maxval
    if fields[0] != b"P6" or fields[3] != b"255":
        raise PpmError(f"{path}: not a P6 PPM with maxval 255 ({fields[0]!r}, {fields[3]!r})")
    w, h = int(fields[1]), int(fields[2])
    if len(data) - pos < w * h * 3:
        raise PpmError(f"{path}: {len(data) - pos} pixel bytes, need {w * h * 3}")
    return w, h, data[pos:pos + w * h * 3]


class Screen:
    def __init__(self, font=None):
        self.font = font or psf.load()
        f = self.font
        self.full = (1 << f.width) - 1
        self.glyphs = {}
        for code in range(psf.FIRST, psf.LAST + 1):
            self.glyphs.setdefault(self._rows_of(f.glyph(chr(code))), chr(code))

    def _rows_of(self, bitmap):
        """Glyph bitmap as a tuple of row integers, leftmost pixel highest."""
        f = self.font
        rows = []
        for y in range(f.height):
            v = int.from_bytes(bitmap[y * f.row_bytes:(y + 1) * f.row_bytes], "big")
            rows.append(v >> (f.row_bytes * 8 - f.width))
        return tuple(rows)

    def cell(self, w, rgb, col, row):
        """(ink rows, background colour) of one cell."""
        f = self.font
        px = []
        for y in range(f.height):
            off = ((row * f.height + y) * w + col * f.width) * 3
            line = rgb[off:off + f.width * 3]
            px.append([line[i:i + 3] for i in range(0, len(line), 3)])
        counts = {}
        for line in px:
            for p in line:
                counts[p] = counts.get(p, 0) + 1
        bg = max(counts, key=counts.get)
        rows = []
        for line in px:
            v = 0
            for p in line:
                v = (v << 1) | (p != bg)
            rows.append(v)
        return tuple(rows), bg

    def decode(self, ppm):
        """Rows of text (trailing spaces removed) of a (w, h, rgb) screendump;
        row 0 is the status line.  Sets self.cursor to the (text row, col)
        of the one cell drawn inverted below the status line (None if there
        is not exactly one)."""
        w, h, rgb = ppm
        cols, nrows = w // self.font.width, h // self.font.height
        cells = [[self.cell(w, rgb, c, r) for c in range(cols)] for r in range(nrows)]
        counts = {}
        for line in cells[1:]:
            for _, bg in line:
                counts[bg] = counts.get(bg, 0) + 1
        screen_bg = max(counts, key=counts.get) if counts else None
        text, inverted = [], []
        for r, line in enumerate(cells):
            out = []
            for c, (ink, bg) in enumerate(line):
                ch = self.glyphs.get(ink)
                if ch is None:
                    ch = self.glyphs.get(tuple(v ^ self.full for v in ink))
                if r > 0 and bg != screen_bg:
                    inverted.append((r - 1, c))   # drawn in swapped colours
                out.append(ch or UNKNOWN)
            text.append("".join(out).rstrip())
        inverted = [rc for rc in inverted if rc[0] >= 0]
        self.cursor = inverted[0] if len(inverted) == 1 else None
        return text


def terminal_rows(text, cols, screen_rows=None):
    return terminal(text, cols, screen_rows)[0]


def terminal(text, cols, screen_rows=None):
    """(rows, (row, col) of the cursor) a terminal `cols` wide shows for
    text, with no scrolling limit: CR, LF (as CR LF: the harness folds the
    kernel's CR LF into LF), BS, TAB, BEL, ESC 7 / ESC 8 (save / restore the
    cursor), and CSI A/B/C/D (cursor), H (position, on the last screen_rows
    rows), K and J (erase to the end of the line / screen), m (colours) and
    n (a query: no effect on text).  Writing the last column leaves the
    cursor there until the next printable character wraps (VT100
    behaviour).  Other escape sequences raise ValueError: the reference must
    understand everything it is given."""
    rows = [[]]
    r = c = 0
    saved = (0, 0)
    pending = False
    i = 0

    def row(n):
        while len(rows) <= n:
            rows.append([])
        return rows[n]

    def put(ch):
        nonlocal r, c, pending
        if pending:
            c, pending = 0, False
            r += 1
        line = row(r)
        while len(line) <= c:
            line.append(" ")
        line[c] = ch
        if c + 1 < cols:
            c += 1
        else:
            pending = True

    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "\x1b":
            if i < len(text) and text[i] == "[":
                j = i + 1
                while j < len(text) and not ("@" <= text[j] <= "~"):
                    j += 1
                if j >= len(text):
                    break          # sequence cut off at the end of the transcript
                params, final = text[i + 1:j], text[j]
                i = j + 1
                nums = [int(p) if p.isdigit() else 0 for p in params.split(";")]
                n = nums[0] or 1
                pending = False
                if final == "A":
                    r = max(r - n, 0)
                elif final == "B":
                    r += n
                elif final == "C":
                    c = min(c + n, cols - 1)
                elif final == "D":
                    c = max(c - n, 0)
                elif final == "H" and screen_rows:
                    top = max(len(rows) - screen_rows, 0)
                    r = top + min(nums[0] or 1, screen_rows) - 1
                    c = min((nums[1] if len(nums) > 1 else 0) or 1, cols) - 1
                elif final in "KJ" and params in ("", "0"):
                    if r < len(rows):
                        del rows[r][c:]
                        if final == "J":
                            del rows[r + 1:]
                elif final not in "mn":
                    raise ValueError(f"terminal: unsupported sequence ESC [{params}{final}")
            elif i < len(text):
                if text[i] == "7":
                    saved = (r, c)
                elif text[i] == "8":
                    (r, c), pending = saved, False
                i += 1             # other two-byte escapes: no effect on text
            continue
        if ch == "\r":
            c, pending = 0, False
        elif ch == "\n":
            # The kernel sends CR LF, which the harness folds into LF.
            c, pending = 0, False
            r += 1
            row(r)
        elif ch == "\b":
            c, pending = max(c - 1, 0), False
        elif ch == "\t":
            put(" ")
            while c % 8 and not pending:
                put(" ")
        elif ch < " " or ch == "\x7f":
            pass
        else:
            put(ch if ch <= "~" else "?")
    return ["".join(line).rstrip() for line in rows], (r, c)


def compare_tail(screen_rows, reference_rows, screen_cursor=None, reference_cursor=None):
    """None when the screen's text rows show the end of the reference (the
    cursor's row last, blank rows below it if the screen never filled) and,
    when given, the cursors are in the same place (screen_cursor counts
    rows from the first text row); else a description of the first difference."""
    n = len(screen_rows)
    skip = max(len(reference_rows) - n, 0)
    ref = reference_rows[skip:]
    want = ref + [""] * (n - len(ref))
    for i, (got, exp) in enumerate(zip(screen_rows, want)):
        if got != exp:
            return f"screen text row {i}: {got!r}, serial says {exp!r}"
    if reference_cursor is not None:
        r, c = reference_cursor
        exp = (r - skip, c)
        if screen_cursor != exp:
            return f"cursor on screen at {screen_cursor}, serial puts it at {exp}"
    return None
