"""Host-only checks (no qemu) that the data pattern agrees everywhere:
blkutil's Python splitmix64 (used to check disk images from the host)
against published reference outputs and an independent C implementation,
then the kernel's own drivers/blk/pattern.c, compiled for the host, against
Python for pattern_fill() and pattern_crc32() (== zlib.crc32)."""
import os
import shutil
import subprocess
import tempfile
import zlib

import blkutil
from harness import REPO, qemu_test, check

DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include "drivers/blk/pattern.h"
static unsigned char buf[8192];
int main(void) {
	/* seed 5 at device byte 4096*3+8, then CRC of it */
	pattern_fill(buf, 12296, sizeof buf, 5);
	fwrite(buf, 1, sizeof buf, stdout);
	printf("%08x", (unsigned)pattern_crc32(0, buf, sizeof buf));
	return 0;
}
"""


@qemu_test(weight=0)
def blk_pattern(ctx):
    with ctx.subtest("python_reference"):
        ctx.note(blkutil.selfcheck())
    with ctx.subtest("kernel_pattern_c"):
        src = os.path.join(REPO, "drivers", "blk", "pattern.c")
        cc = shutil.which("cc") or shutil.which("gcc")
        check(os.path.exists(src), "drivers/blk/pattern.c is missing")
        check(cc, "no host C compiler")
        with tempfile.TemporaryDirectory() as d:
            main, exe = os.path.join(d, "main.c"), os.path.join(d, "pat")
            with open(main, "w") as f:
                f.write(DRIVER)
            subprocess.run([cc, "-O1", "-I", REPO, "-o", exe, main, src], check=True,
                           capture_output=True)
            out = subprocess.run([exe], check=True, capture_output=True).stdout
        data, crc = out[:8192], out[8192:].decode()
        want = blkutil.pattern_bytes(5, 12296, 8192)
        check(data == want, "kernel pattern_fill() differs from blkutil.pattern_bytes()")
        check(int(crc, 16) == zlib.crc32(want), f"pattern_crc32 {crc} != zlib {zlib.crc32(want):08x}")
