"""`make image` output: a GPT with one EFI System Partition holding the ESP
tree (host tools only, no qemu)."""
import os
import re
import subprocess
import tempfile

from harness import IMAGE, ESP, qemu_test, check

# The image geometry is synthetic; do not let mtools second-guess it.
os.environ["MTOOLS_SKIP_CHECK"] = "1"


def run(*cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n"
          f"{p.stdout.decode(errors='replace')}")
    return p.stdout


@qemu_test(weight=0)
def image_layout(ctx):
    with ctx.subtest("gpt"):
        out = run("sgdisk", "-p", IMAGE).decode()
        rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\w{4})\s+(.*)$", out, re.M)
        check(len(rows) == 1, f"expected one partition:\n{out}")
        num, first, _last, code, name = rows[0]
        check(first == "2048", f"partition starts at {first}, not 2048 (1 MiB)")
        check(code.upper() == "EF00", f"partition type {code}, not EF00 (EFI System)")
        check(name.strip() == "APPLIANCE ESP", f"partition name {name!r}")
        size = os.path.getsize(IMAGE)
        check(size == 64 << 20, f"image is {size} bytes, not 64 MiB")
        run("sgdisk", "-v", IMAGE)
    part = f"{IMAGE}@@1M"
    with ctx.subtest("fat32"):
        info = run("minfo", "-i", part, "::").decode()
        check(re.search(r'disk type="FAT32', info), f"not FAT32 according to minfo:\n{info}")
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "esp.fat")
            with open(IMAGE, "rb") as src, open(raw, "wb") as dst:
                src.seek(1 << 20)
                dst.write(src.read())
            out = run("fsck.fat", "-n", raw).decode()
            ctx.note(out.strip().splitlines()[-1])
    with ctx.subtest("mdir"):
        out = run("mdir", "-i", part, "::/EFI/BOOT").decode()
        check(re.search(r"BOOTX64\s+EFI", out), f"mdir ::/EFI/BOOT:\n{out}")
    with ctx.subtest("contents"):
        for rel in ("EFI/BOOT/BOOTX64.EFI", "appliance/kernel.elf", "appliance/config.txt"):
            data = run("mcopy", "-n", "-i", part, "::/" + rel, "-")
            with open(os.path.join(ESP, rel), "rb") as f:
                want = f.read()
            check(data == want, f"{rel} in the image differs from {ESP}/{rel}")
