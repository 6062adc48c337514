#!/usr/bin/env python3
"""PC Screen Font (PSF1 and PSF2, optionally gzipped) reader, Python 3 stdlib only.

  psf.py path                 the font the kernel uses (a file of Debian's console-setup-linux)
  psf.py c [FONT] -o OUT.c    the kernel's screen font as C (build step, see kernel/fbcon.h)
  psf.py show [FONT] TEXT     print TEXT in the font with '#' and '.' (for a quick look)

The kernel's screen console (kernel/fbcon.c) and the screen test
(tests/qemu/screen.py) both take their glyphs from here, from the same Debian
font file, so the test matches exactly what the kernel draws.

Formats (as documented with kbd's psfxtable and the Linux console):
  PSF1: 2-byte magic 36 04, mode byte (bit 0: 512 glyphs, bit 1 or 2: a
        Unicode table follows), glyph height byte; glyphs are 8 pixels wide.
        The table lists, per glyph, 16-bit code points ended by FFFF
        (FFFE starts combining sequences, which we skip).
  PSF2: 32-byte header (magic 72 b5 4a 86, version, header size, flags, glyph
        count, bytes per glyph, height, width); the table, when flags bit 0
        is set, lists UTF-8 strings per glyph ended by FF (FE starts
        sequences).
Rows are (width + 7) / 8 bytes, most significant bit leftmost.
"""
import argparse
import gzip
import os
import struct
import sys

FONT_DEFAULT = "/usr/share/consolefonts/Lat15-Terminus16.psf.gz"
FONT_PACKAGE = "console-setup-linux"
# The characters the kernel draws: printable ASCII.  Anything else is shown
# as the replacement glyph (kernel/fbcon.c).
FIRST, LAST = 0x20, 0x7e
REPLACEMENT = "?"


class PsfError(Exception):
    pass


class Font:
    """width, height, row_bytes, glyphs (list of bytes), cmap {char: glyph index}."""

    def __init__(self, width, height, glyphs, cmap):
        self.width, self.height = width, height
        self.row_bytes = (width + 7) // 8
        self.glyphs = glyphs
        self.cmap = cmap

    def glyph(self, ch):
        """Bitmap of ch (row_bytes * height bytes), or the replacement glyph."""
        idx = self.cmap.get(ch, self.cmap.get(REPLACEMENT, 0))
        return self.glyphs[idx]

    def pixel(self, bitmap, x, y):
        return (bitmap[y * self.row_bytes + x // 8] >> (7 - x % 8)) & 1


def load(path=FONT_DEFAULT):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PsfError(f"{path}: {e.strerror} (the font comes from Debian's {FONT_PACKAGE}: "
                       f"run make deps)") from None
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] == b"\x36\x04":
        return _load_psf1(path, data)
    if data[:4] == b"\x72\xb5\x4a\x86":
        return _load_psf2(path, data)
    raise PsfError(f"{path}: not a PSF1 or PSF2 font (magic {data[:4].hex()})")


def _load_psf1(path, data):
    mode, height = data[2], data[3]
    count = 512 if mode & 1 else 256
    size = height
    end = 4 + count * size
    if height == 0 or len(data) < end:
        raise PsfError(f"{path}: PSF1 truncated ({len(data)} bytes, need {end})")
    glyphs = [data[4 + i * size:4 + (i + 1) * size] for i in range(count)]
    cmap = {}
    if mode & 6:
        pos = end
        for idx in range(count):
            seq = False
            while True:
                if pos + 2 > len(data):
                    raise PsfError(f"{path}: PSF1 Unicode table truncated at glyph {idx}")
                (cp,) = struct.unpack_from("<H", data, pos)
                pos += 2
                if cp == 0xFFFF:
                    break
                if cp == 0xFFFE:
                    seq = True
                elif not seq:
                    cmap.setdefault(chr(cp), idx)
    else:
        cmap = {chr(i): i for i in range(count)}
    return Font(8, height, glyphs, cmap)


def _load_psf2(path, data):
    if len(data) < 32:
        raise PsfError(f"{path}: PSF2 header truncated")
    _, _, hsize, flags, count, size, height, width = struct.unpack_from("<8I", data)
    end = hsize + count * size
    if width == 0 or height == 0 or size != (width + 7) // 8 * height or len(data) < end:
        raise PsfError(f"{path}: PSF2 header inconsistent (w {width} h {height} size {size})")
    glyphs = [data[hsize + i * size:hsize + (i + 1) * size] for i in range(count)]
    cmap = {}
    if flags & 1:
        pos = end
        for idx in range(count):
            stop = data.find(b"\xff", pos)
            if stop < 0:
                raise PsfError(f"{path}: PSF2 Unicode table truncated at glyph {idx}")
            singles = data[pos:stop].split(b"\xfe")[0]
            for ch in singles.decode("utf-8", errors="replace"):
                cmap.setdefault(ch, idx)
            pos = stop + 1
    else:
        cmap = {chr(i): i for i in range(count)}
    return Font(width, height, glyphs, cmap)


def kernel_c(font, source):
    """C source for kernel/fbcon.h's fbcon_font: glyphs FIRST..LAST in order."""
    missing = [chr(c) for c in range(FIRST, LAST + 1) if chr(c) not in font.cmap]
    if missing:
        raise PsfError(f"{source}: no glyph for {''.join(missing)!r}")
    if font.width > 16 or font.height > 32:
        raise PsfError(f"{source}: {font.width}x{font.height} is larger than 16x32")
    out = [f"/* Generated by tools/psf.py from {os.path.basename(source)}; do not edit. */",
           '#include "kernel/fbcon.h"', "",
           "const struct fbcon_font fbcon_font = {",
           f"\t.width = {font.width}, .height = {font.height}, .row_bytes = {font.row_bytes},",
           f"\t.first = {FIRST:#x}, .last = {LAST:#x},",
           "\t.glyphs = (const uint8_t[]){"]
    for c in range(FIRST, LAST + 1):
        bits = ", ".join(f"{b:#04x}" for b in font.glyph(chr(c)))
        out.append(f"\t\t{bits}, /* {chr(c)!r} */")
    out += ["\t},", "};", ""]
    return "\n".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("c", help="emit the kernel font as C")
    c.add_argument("font", nargs="?", default=FONT_DEFAULT)
    c.add_argument("-o", "--output", required=True)
    sub.add_parser("path", help="print the default font's path")
    s = sub.add_parser("show", help="draw text with the font")
    s.add_argument("font", nargs="?", default=FONT_DEFAULT)
    s.add_argument("text")
    a = ap.parse_args(argv)
    if a.cmd == "path":
        print(FONT_DEFAULT)
        return 0
    try:
        font = load(a.font)
        if a.cmd == "c":
            text = kernel_c(font, a.font)
            tmp = a.output + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, a.output)
            return 0
        for y in range(font.height):
            print("".join("#" if font.pixel(font.glyph(ch), x, y) else "."
                          for ch in a.text for x in range(font.width)))
        return 0
    except PsfError as e:
        print(f"psf: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
