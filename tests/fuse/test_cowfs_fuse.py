#!/usr/bin/env python3
"""cowfs through FUSE with ordinary tools (tests/host/test.h protocol lines).

  test_cowfs_fuse.py [BUILD_DIR]

mkfs an image file, mount it with build/cowfs-fuse, build a tree with
mkdir, cp -r, ln, ln -s, mv, rm -r, check it with find, stat, readlink,
diff -r, tar, dd with O_DIRECT and df, set, read, list and remove extended
attributes (up to 64 KiB, flags and errors), fallocate (posix_fallocate and
punch hole / zero range through fallocate(2)) and lseek SEEK_DATA/SEEK_HOLE, copy_file_range (aligned:
a reflink, statvfs shows no data space used; unaligned: a copy; writes afterwards apart), unmount, run `cowfs check`, remount
and compare again, remount read-only; mount(8) through mount.fuse3 with
`cowfs` as the helper (what `mount -t fuse.cowfs IMAGE DIR` runs); a
never-mounted image mounted read-only (mkfs makes the root directory); a
snapshot mounted with -o snapshot=NAME.
Without /dev/fuse every case is reported as skipped (never as passed).
Every wait has a deadline; the mount is always taken down.
"""
import ctypes
import errno
import mmap
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from fuse_util import FuseDaemon, Results, check_df, listing, mounted, run, wait_for, xattr_round_trips

SUITE = "cowfs_fuse"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CASES = ["mount", "namespace", "data", "fallocate_seek", "rename_edges", "concurrent_namespace", "statfs", "xattr", "copy_file_range", "unmount_check", "remount_same", "readonly", "mount_helper",
         "readonly_new", "snapshot_mount"]
R = Results(SUITE)
results = R.ok
report = R.report


class Mount(FuseDaemon):
    def __init__(self, image, mnt, *opts):
        super().__init__([os.path.join(BUILD, "cowfs-fuse"), image, mnt, "-f", *opts], mnt,
                         os.path.join(os.path.dirname(image), "fuse.log"))


def xattr_listing(root):
    """Every extended attribute of every file and directory: (path, name, value)."""
    out = []
    for d, dirs, files in os.walk(root):
        for name in sorted(dirs + files) + ([] if d != root else ["."]):
            p = os.path.join(d, name)
            if os.path.islink(p):
                continue
            for a in sorted(os.listxattr(p)):
                out.append((os.path.relpath(p, root), a, os.getxattr(p, a)))
    return sorted(out)


def xattr_ops(mnt):
    """The shared round trips (flags, errors, 64 KiB values), then many names on one file."""
    d, _ = xattr_round_trips(mnt)
    # Many names on one file, then the file goes with its attributes.
    g = os.path.join(d, "many")
    open(g, "wb").close()
    for i in range(200):
        os.setxattr(g, f"user.n{i}", str(i).encode() * (i % 50))
    assert len(os.listxattr(g)) == 200
    assert all(os.getxattr(g, f"user.n{i}") == str(i).encode() * (i % 50) for i in range(200))
    os.unlink(g)


def make_source(src):
    """A tree of ordinary files to copy in: sizes from empty to 1.5 MiB."""
    os.makedirs(os.path.join(src, "a", "b", "c"))
    os.makedirs(os.path.join(src, "empty"))
    sizes = [0, 1, 4095, 4096, 4097, 65536 + 7, 1536 * 1024]
    for i, size in enumerate(sizes):
        d = os.path.join(src, "a" if i % 2 else os.path.join("a", "b", "c"))
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(bytes((i * 31 + j * 7) & 255 for j in range(size)))
    os.symlink("b/c/f0", os.path.join(src, "a", "to_f0"))


def namespace_ops(mnt):
    """Namespace only (no file data): directories, empty files, links."""
    os.makedirs(os.path.join(mnt, "n", "x", "y"))
    for name in ("p", "q", "r"):
        open(os.path.join(mnt, "n", name), "w").close()
    os.link(os.path.join(mnt, "n", "p"), os.path.join(mnt, "n", "x", "p2"))
    assert os.stat(os.path.join(mnt, "n", "p")).st_nlink == 2, "hard link count"
    os.symlink("../p", os.path.join(mnt, "n", "x", "sl"))
    assert os.readlink(os.path.join(mnt, "n", "x", "sl")) == "../p"
    assert os.path.samefile(os.path.join(mnt, "n", "x", "sl"), os.path.join(mnt, "n", "p"))
    run("mv", os.path.join(mnt, "n", "q"), os.path.join(mnt, "n", "x", "y", "q"))
    run("mv", os.path.join(mnt, "n", "x", "y"), os.path.join(mnt, "n", "y"))
    assert os.stat(os.path.join(mnt, "n", "x")).st_nlink == 2, "x lost subdirectory y"
    assert os.stat(os.path.join(mnt, "n")).st_nlink == 4, "n has x and y"
    os.unlink(os.path.join(mnt, "n", "r"))
    try:
        os.rmdir(os.path.join(mnt, "n", "y"))
        raise AssertionError("rmdir of a non-empty directory succeeded")
    except OSError as e:
        assert e.errno == 39, f"rmdir non-empty: {e}"
    names = sorted(os.listdir(os.path.join(mnt, "n")))
    assert names == ["p", "x", "y"], names
    os.chmod(os.path.join(mnt, "n", "p"), 0o640)
    assert os.stat(os.path.join(mnt, "n", "p")).st_mode & 0o7777 == 0o640
    os.utime(os.path.join(mnt, "n", "p"), ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(os.path.join(mnt, "n", "p"))
    assert st.st_mtime_ns == 2_000_000_456 and st.st_atime_ns == 1_000_000_123, "utime"
    run("rm", "-r", os.path.join(mnt, "n", "y"))
    assert not os.path.exists(os.path.join(mnt, "n", "y"))
    long = "L" * 255
    open(os.path.join(mnt, "n", long), "w").close()
    try:
        open(os.path.join(mnt, "n", long + "L"), "w").close()
        raise AssertionError("a 256-byte name was accepted")
    except OSError as e:
        assert e.errno == 36, f"256-byte name: {e}"


def data_ops(mnt, src):
    run("cp", "-r", src, os.path.join(mnt, "copy"))
    run("diff", "-r", src, os.path.join(mnt, "copy"))
    run("tar", "-C", mnt, "-cf", os.path.join(os.path.dirname(src), "t.tar"), "copy")
    os.makedirs(os.path.join(mnt, "untar"))
    run("tar", "-C", os.path.join(mnt, "untar"), "-xf", os.path.join(os.path.dirname(src), "t.tar"))
    run("diff", "-r", src, os.path.join(mnt, "untar", "copy"))
    run("rm", "-r", os.path.join(mnt, "untar"))
    # O_DIRECT both ways, mixed with buffered I/O of the same file.
    big = os.path.join(src, "a", "f5")
    run("dd", f"if={big}", f"of={mnt}/direct", "bs=64k", "oflag=direct", "status=none")
    run("cmp", big, os.path.join(mnt, "direct"))
    run("dd", f"if={mnt}/direct", f"of={os.path.dirname(src)}/back", "bs=64k", "iflag=direct", "status=none")
    run("cmp", big, os.path.join(os.path.dirname(src), "back"))
    with open(os.path.join(mnt, "direct"), "r+b") as f:
        f.seek(4096)
        f.write(b"buffered")
    fd = os.open(os.path.join(mnt, "direct"), os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, 4096)
        os.preadv(fd, [buf], 4096)
        assert buf[:8] == b"buffered", "a direct read misses a buffered write before it"
    finally:
        os.close(fd)


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10


def fallocate(fd, mode, off, length):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"fallocate(mode {mode:#x}, {off}, {length}): {os.strerror(e)}")


def fallocate_seek(mnt):
    """posix_fallocate, punch hole and zero range with a byte model, and
    SEEK_DATA/SEEK_HOLE, through the kernel's FUSE client."""
    path = os.path.join(mnt, "sparse")
    data = bytes((i * 7 + 3) % 251 for i in range(256 * 1024))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)
        assert os.fstat(fd).st_size == 1 << 20, "posix_fallocate did not extend the size"
        assert os.pread(fd, 1 << 20, 0) == bytes(1 << 20), "fallocated bytes are not zeros"
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        model = bytearray(data) + bytes((1 << 20) - len(data))
        # Punch 64 KiB + partial edges; the size stays, the bytes are zeros
        # (the kernel's cached pages too).
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096 * 4 + 100, 65536)
        model[4096 * 4 + 100:4096 * 4 + 100 + 65536] = bytes(65536)
        assert os.fstat(fd).st_size == 1 << 20, "a punch changed the size"
        got = os.pread(fd, 1 << 20, 0)
        assert got == bytes(model), f"after the punch, first difference at {next(i for i in range(len(got)) if got[i] != model[i])}"
        # Holes and data: [0, 20 KiB) data (the partial edge block stays),
        # the whole blocks 5..20 a hole, data again from block 21 on.
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096 * 5, os.lseek(fd, 0, os.SEEK_HOLE)
        assert os.lseek(fd, 4096 * 5, os.SEEK_DATA) == 4096 * 20, os.lseek(fd, 4096 * 5, os.SEEK_DATA)
        assert os.lseek(fd, len(data), os.SEEK_HOLE) == len(data), "fallocated blocks are not a hole"
        try:
            os.lseek(fd, len(data), os.SEEK_DATA)
            raise AssertionError("SEEK_DATA found data after the last written block")
        except OSError as e:
            assert e.errno == 6, f"SEEK_DATA after the data: {e}"
        try:
            os.lseek(fd, 1 << 20, os.SEEK_HOLE)
            raise AssertionError("SEEK_HOLE at the end of file did not say ENXIO")
        except OSError as e:
            assert e.errno == 6, f"SEEK_HOLE at EOF: {e}"
        # Zero range past the end grows the file; with KEEP_SIZE it does not.
        fallocate(fd, FALLOC_FL_ZERO_RANGE, 200000, (1 << 20) - 200000 + 5000)
        model[200000:] = bytes(len(model) - 200000)
        model += bytes(5000)
        fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 100, 50)
        model[100:150] = bytes(50)
        assert os.fstat(fd).st_size == len(model), f"size {os.fstat(fd).st_size}, model {len(model)}"
        assert os.pread(fd, 2 << 20, 0) == bytes(model), "zero range: bytes differ from the model"
        # Punch without KEEP_SIZE is refused, as Linux does.
        try:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)
            raise AssertionError("a punch without KEEP_SIZE was accepted")
        except OSError as e:
            assert e.errno == 95, f"punch without KEEP_SIZE: {e}"
        os.fsync(fd)
    finally:
        os.close(fd)
    # Space comes back: df's free blocks grow after a big punch + sync.
    big = os.path.join(mnt, "bigpunch")
    with open(big, "wb") as f:
        f.write(bytes(range(256)) * (32 * 1024))     # 8 MiB
        f.flush()
        os.fsync(f.fileno())
    before = os.statvfs(mnt).f_bfree
    fd = os.open(big, os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8 << 20)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.sync()
    after = os.statvfs(mnt).f_bfree
    assert after >= before + 2000, f"free blocks {before} before the punch, {after} after"
    assert os.stat(big).st_size == 8 << 20 and os.stat(big).st_blocks == 0, os.stat(big)


def rename_edges(mnt):
    libc = ctypes.CDLL(None, use_errno=True)
    d = os.path.join(mnt, "ren")
    os.makedirs(os.path.join(d, "dir", "sub"))
    open(os.path.join(d, "a"), "w").close()
    open(os.path.join(d, "b"), "w").close()
    AT_FDCWD, NOREPLACE, EXCHANGE = -100, 1, 2

    def renameat2(old, new, flags):
        r = libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags)
        return 0 if r == 0 else -ctypes.get_errno()
    ia, ib = os.stat(os.path.join(d, "a")).st_ino, os.stat(os.path.join(d, "b")).st_ino
    assert renameat2(os.path.join(d, "a"), os.path.join(d, "b"), NOREPLACE) == -17, "NOREPLACE"
    assert renameat2(os.path.join(d, "a"), os.path.join(d, "b"), EXCHANGE) == 0, "EXCHANGE"
    assert os.stat(os.path.join(d, "a")).st_ino == ib and os.stat(os.path.join(d, "b")).st_ino == ia
    assert renameat2(os.path.join(d, "dir"), os.path.join(d, "dir", "sub", "x"), 0) == -22, "into own subtree"
    os.rename(os.path.join(d, "a"), os.path.join(d, "b"))          # over an existing file
    assert sorted(os.listdir(d)) == ["b", "dir"]
    os.makedirs(os.path.join(d, "e"))
    os.rename(os.path.join(d, "dir", "sub"), os.path.join(d, "e"))  # over an empty directory
    assert os.stat(os.path.join(d, "dir")).st_nlink == 2


def concurrent_ops(mnt, threads=4, ops=300):
    """Random namespace operations from several threads on shared names
    (the FUSE loop is multithreaded): refusals are expected, a broken
    namespace is not (link counts here; "..", orphans and counts again in
    the check after unmount)."""
    import errno
    import random
    import threading
    root = os.path.join(mnt, "conc")
    dirs = [os.path.join(root, d) for d in ("p", "q", "r")]
    for d in dirs:
        os.makedirs(d)
    names = ["n%d" % i for i in range(6)]
    expected = (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR, errno.EPERM,
                errno.EINVAL)
    failures = []

    def worker(seed):
        rnd = random.Random(seed)
        for _ in range(ops):
            a = os.path.join(rnd.choice(dirs), rnd.choice(names))
            b = os.path.join(rnd.choice(dirs), rnd.choice(names))
            op = rnd.randrange(6)
            try:
                if op == 0:
                    os.close(os.open(a, os.O_CREAT | os.O_WRONLY, 0o644))
                elif op == 1:
                    os.mkdir(a)
                elif op == 2:
                    os.rename(a, b)
                elif op == 3:
                    os.link(a, b)
                elif op == 4:
                    os.unlink(a)
                else:
                    os.rmdir(a)
            except OSError as e:
                if e.errno not in expected:
                    failures.append(f"op {op} {a} {b}: {e}")
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    if any(t.is_alive() for t in ts):
        raise AssertionError("a worker hung")
    if failures:
        raise AssertionError("; ".join(failures[:3]))
    time.sleep(1.2)   # past the 1 s attribute timeout: counts come from cowfs, not the kernel's cache
    for top, subdirs, files in os.walk(root):
        n = os.stat(top).st_nlink
        if n != 2 + len(subdirs):
            raise AssertionError(f"{top}: link count {n}, {len(subdirs)} subdirectories")
        for f in files:
            os.lstat(os.path.join(top, f))


def copy_range_ops(mnt):
    """copy_file_range of block-aligned ranges is a reflink (no data space used), of unaligned ones a copy;
    writes afterwards leave the other file alone."""
    d = os.path.join(mnt, "reflink")
    os.mkdir(d)
    data = os.urandom(8 << 20)
    a, b, c = (os.path.join(d, n) for n in "abc")
    with open(a, "wb") as f:
        f.write(data)
    os.sync()

    def free():
        os.sync()
        v = os.statvfs(mnt)
        return v.f_bfree * v.f_frsize

    def copy(src, dst, off_out):
        with open(src, "rb") as fi, open(dst, "r+b" if os.path.exists(dst) else "wb") as fo:
            done = 0
            while done < len(data):
                n = os.copy_file_range(fi.fileno(), fo.fileno(), len(data) - done, done, off_out + done)
                if not n:
                    break
                done += n
            return done
    f0 = free()
    assert copy(a, b, 0) == len(data)
    f1 = free()
    assert f0 - f1 < (1 << 20), f"an aligned copy_file_range of 8 MiB used {f0 - f1} bytes"
    assert copy(a, c, 512) == len(data)
    f2 = free()
    assert f1 - f2 >= len(data), f"an unaligned copy used only {f1 - f2} bytes"
    with open(b, "r+b") as f:
        f.seek(4096)
        f.write(b"x" * 4096)
    with open(a, "rb") as f:
        assert f.read() == data, "the source changed by a write to its reflink"
    with open(b, "rb") as f:
        assert f.read() == data[:4096] + b"x" * 4096 + data[8192:], "the reflink's bytes"
    with open(c, "rb") as f:
        assert f.read() == b"\0" * 512 + data, "the copy's bytes"


def main():
    if not os.path.exists("/dev/fuse"):
        for c in CASES:
            print(f"skip - {SUITE}.{c}: /dev/fuse is absent", flush=True)
        return 0
    tmp = tempfile.mkdtemp(prefix="cowfs-fuse-")
    image, mnt, src = os.path.join(tmp, "img"), os.path.join(tmp, "mnt"), os.path.join(tmp, "src")
    os.makedirs(mnt)
    m = None
    try:
        run(os.path.join(BUILD, "mkfs.cowfs"), "-s", "256M", image)
        make_source(src)
        steps = [
            ("mount", lambda: None),
            ("namespace", lambda: namespace_ops(mnt)),
            ("data", lambda: data_ops(mnt, src)),
            ("fallocate_seek", lambda: fallocate_seek(mnt)),
            ("rename_edges", lambda: rename_edges(mnt)),
            ("concurrent_namespace", lambda: concurrent_ops(mnt)),
            ("statfs", lambda: check_df(mnt, 256)),
            ("xattr", lambda: xattr_ops(mnt)),
            ("copy_file_range", lambda: copy_range_ops(mnt)),
        ]
        m = Mount(image, mnt)
        for name, fn in steps:
            try:
                fn()
                report(name, True)
            except (AssertionError, OSError, subprocess.SubprocessError) as e:
                report(name, False, str(e)[:400])
        before = listing(mnt)
        before_x = xattr_listing(mnt)
        try:
            m.unmount()
            m = None
            p = run(os.path.join(BUILD, "cowfs"), "check", image, check=False)
            report("unmount_check", p.returncode == 0, p.stdout.strip() + p.stderr.strip())
        except (AssertionError, subprocess.SubprocessError) as e:
            report("unmount_check", False, str(e))
        try:
            m = Mount(image, mnt)
            after = listing(mnt)
            after_x = xattr_listing(mnt)
            report("remount_same", after == before and len(after) > 10 and after_x == before_x and len(after_x) >= 4,
                   f"{len(before)} paths before, {len(after)} after; {len(before_x)} attributes before, "
                   f"{len(after_x)} after; first difference: "
                   f"{next((a, b) for a, b in zip(before + [None], after + [None]) if a != b)[0:2] if after != before else ''}")
            m.unmount()
            m = None
        except (AssertionError, subprocess.SubprocessError) as e:
            report("remount_same", False, str(e))
        try:
            m = Mount(image, mnt, "-o", "ro")
            try:
                open(os.path.join(mnt, "new"), "w").close()
                report("readonly", False, "a file was created on a read-only mount")
            except OSError as e:
                same = listing(mnt) == before
                try:
                    os.setxattr(os.path.join(mnt, "xattrs", "file"), "user.ro", b"x")
                    xerr = 0
                except OSError as xe:
                    xerr = xe.errno
                report("readonly", e.errno == 30 and same and xerr == 30,
                       f"errno {e.errno}, tree unchanged: {same}, setxattr errno {xerr}")
            m.unmount()
            m = None
        except (AssertionError, subprocess.SubprocessError) as e:
            report("readonly", False, str(e))
        R.case("mount_helper", mount_helper, image, mnt, before)
        R.case("readonly_new", readonly_new, tmp, mnt)
        R.case("snapshot_mount", snapshot_mount, tmp, mnt)
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        for c in CASES:
            if c not in results:
                report(c, False, f"setup: {e}")
    finally:
        if m:
            m.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(results.values()) else 1


def mount_entry(mnt):
    """The mount table's fields for mnt, or None."""
    with open("/proc/self/mounts") as f:
        return next((ln.split() for ln in f if ln.split()[1] == mnt), None)


def mount_helper(image, mnt, before):
    """mount(8) as fstab would call it: mount.fuse3 runs `cowfs IMAGE DIR -o
    OPTIONS` (here as "PROGRAM#SOURCE", since the test does not install
    cowfs where mount.fuse3 looks), and the tool hands over to cowfs-fuse;
    options pass through, the daemon detaches, fusermount3 -u ends it."""
    prog = os.path.abspath(os.path.join(BUILD, "cowfs"))
    run("mount", "-t", "fuse", f"{prog}#{image}", mnt, "-o", "ro", timeout=30)
    try:
        line = mount_entry(mnt)
        assert line and line[2] == "fuse.cowfs" and line[3].startswith("ro,"), f"mounts line {line}"
        assert listing(mnt) == before, "the tree differs through the mount helper"
    finally:
        run("fusermount3", "-u", mnt, check=False, timeout=30)
    wait_for(lambda: not mounted(mnt), 15, "the unmount")


def readonly_new(tmp, mnt):
    """mkfs makes the root directory: a never-mounted image mounts
    read-only through mount(8), shows an empty root owned by root, and
    refuses writes with EROFS; it still checks clean afterwards."""
    new = os.path.join(tmp, "new.img")
    run(os.path.join(BUILD, "mkfs.cowfs"), "-s", "64M", new)
    prog = os.path.abspath(os.path.join(BUILD, "cowfs"))
    p = run("mount", "-t", "fuse", f"{prog}#{new}", mnt, "-o", "ro", check=False, timeout=30)
    try:
        assert p.returncode == 0, f"exit {p.returncode}, stderr {p.stderr.strip()[:300]!r}"
        wait_for(lambda: mounted(mnt), 15, "the read-only mount")
        assert os.listdir(mnt) == [], os.listdir(mnt)
        st = os.stat(mnt)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0, \
            f"root mode {st.st_mode:o} uid {st.st_uid}"
        try:
            os.mkdir(os.path.join(mnt, "d"))
            raise AssertionError("mkdir on a read-only mount succeeded")
        except OSError as e:
            assert e.errno == errno.EROFS, f"mkdir: {e}"
    finally:
        if mounted(mnt):
            run("fusermount3", "-u", mnt, check=False, timeout=30)
    wait_for(lambda: not mounted(mnt), 15, "the unmount")
    p = run(os.path.join(BUILD, "cowfs"), "check", new, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def snapshot_mount(tmp, mnt):
    """-o snapshot=NAME mounts that snapshot read-only as it was taken (the
    live file changed since reads the old bytes there); writes are EROFS;
    an unknown name is refused with the name, before anything is mounted."""
    img = os.path.join(tmp, "snap.img")
    run(os.path.join(BUILD, "mkfs.cowfs"), "-s", "64M", img)
    m = Mount(img, mnt)
    try:
        with open(os.path.join(mnt, "a"), "w") as f:
            f.write("taken")
    finally:
        m.unmount()
    run(os.path.join(BUILD, "cowfs"), "snapshot", img, "create", "s1")
    m = Mount(img, mnt)
    try:
        with open(os.path.join(mnt, "a"), "w") as f:
            f.write("changed afterwards")
        os.mkdir(os.path.join(mnt, "new"))
    finally:
        m.unmount()
    m = Mount(img, mnt, "-o", "snapshot=s1")
    try:
        assert open(os.path.join(mnt, "a")).read() == "taken", "the snapshot shows the live file"
        assert sorted(os.listdir(mnt)) == ["a"], os.listdir(mnt)
        try:
            open(os.path.join(mnt, "b"), "w").close()
            raise AssertionError("a file was created in a snapshot")
        except OSError as e:
            assert e.errno == errno.EROFS, f"create in a snapshot: {e}"
    finally:
        m.unmount()
    # the same refusal through the --snapshot NAME form
    p = run(os.path.join(BUILD, "cowfs-fuse"), "--snapshot", "nosuch", img, mnt, check=False, timeout=30)
    assert p.returncode != 0 and 'no snapshot named "nosuch"' in p.stderr, p.stderr
    assert not mounted(mnt), "mounted an unknown snapshot"


if __name__ == "__main__":
    sys.exit(main())
