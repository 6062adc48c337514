#!/usr/bin/env python3
"""The network FUSE mount (build/apfp-fuse) against build/apfp-serve on
127.0.0.1, with ordinary tools (tests/host/test.h protocol lines).

  test_apfp_fuse.py [BUILD_DIR]              the test
  test_apfp_fuse.py BUILD_DIR --bench MIB    throughput of a MIB file through the mount

mkfs an image file, serve it on 127.0.0.1 (port 0), mount it, then: files
of 0 B .. 30 MiB copied in and compared by SHA-256, a tree through tar,
the namespace (mkdir, rm -r, mv, ln, ln -s, readlink, rename over a file,
renameat2 flags), truncate, chmod, touch -d, df, copy_file_range (a server-side
clone: no space used), extended attributes (flags, ENODATA, ERANGE), fallocate(1)
-l/-n/-p/-z against a byte model with sizes and blocks, SEEK_DATA/SEEK_HOLE, O_DIRECT,
a seeded random-operation run compared with a local directory, uncommitted
writes written again after the server restarts (verifier change), a dead
or stopped server giving EIO instead of a hang, data surviving unmount +
server restart + remount, the writeback cache against a local model, a
read-only mount, mount(8) through mount.fuse3, and bad input refused before
mounting (wrong secret, unknown export, anonymous where the secret is
needed, malformed arguments).
Without /dev/fuse every case is reported as skipped (never as passed).
Every wait has a deadline; the mount and the server are always taken down.
"""
import ctypes
import errno
import hashlib
import mmap
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

from fuse_util import FuseDaemon, Results, listing, mounted, run, sha256_file, wait_for, xattr_round_trips

SUITE = "apfp_fuse"
BUILD = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "build"
CASES = ["mount", "files_sha256", "tree_tar", "namespace", "attributes", "statfs", "copy_file_range", "xattr",
         "fallocate", "seek_data_hole", "special_files",
         "o_direct", "random_ops", "resend_after_restart", "dead_server", "persist_remount", "writeback",
         "commit_at_exit",
         "readonly", "mount_helper", "bad_input"]
R = Results(SUITE)
results = R.ok
report = R.report


class Server:
    """build/apfp-serve on 127.0.0.1; port 0 the first time, the same port on restarts."""

    def __init__(self, tmp, image, secret, port=0):
        self.tmp, self.image, self.secret = tmp, image, secret
        pf = os.path.join(tmp, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        log = open(os.path.join(tmp, "serve.log"), "a")
        self.proc = subprocess.Popen([os.path.join(BUILD, "apfp-serve"), "--port", str(port), "--port-file", pf,
                                      "--secret-file", secret, f"vol={image}"], stdout=log, stderr=log)
        wait_for(lambda: os.path.exists(pf) or self.proc.poll() is not None, 15, "apfp-serve's port")
        if self.proc.poll() is not None:
            raise AssertionError(f"apfp-serve exited {self.proc.returncode} (see serve.log)")
        self.port = int(open(pf).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is not None:
            return                          # stopped already (killed on purpose)
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("apfp-serve did not stop within 30 s")
        if sig == signal.SIGTERM and self.proc.returncode != 0:
            raise AssertionError(f"apfp-serve exited {self.proc.returncode} (see serve.log)")

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        # the same port, so a mounted client reconnects (TIME_WAIT: SO_REUSEADDR in the server)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.__init__(self.tmp, self.image, self.secret, self.port)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


class Mount(FuseDaemon):
    def __init__(self, tmp, port, mnt, *opts, secret=None):
        sec = secret or os.path.join(tmp, "secret")
        super().__init__([os.path.join(BUILD, "apfp-fuse"), f"127.0.0.1:{port}/vol", mnt, "-f",
                          "-o", f"secret_file={sec},timeout=3", *opts], mnt, os.path.join(tmp, "fuse.log"))


def pattern(seed, size):
    r = random.Random(seed)
    return r.randbytes(size)


def files_sha256(tmp, mnt):
    src = os.path.join(tmp, "files")
    os.makedirs(src)
    sizes = [0, 1, 4095, 4096, 4097, 65537, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5 * (1 << 20) + 123,
             30 * (1 << 20) + 7]
    for i, size in enumerate(sizes):
        with open(os.path.join(src, f"f{i}"), "wb") as f:
            f.write(pattern(i, size))
    os.makedirs(os.path.join(mnt, "files"))
    for i in range(len(sizes)):
        run("cp", os.path.join(src, f"f{i}"), os.path.join(mnt, "files", f"f{i}"))
    for i, size in enumerate(sizes):
        p = os.path.join(mnt, "files", f"f{i}")
        assert os.stat(p).st_size == size, f"f{i}: size {os.stat(p).st_size}, expected {size}"
        assert sha256_file(p) == sha256_file(os.path.join(src, f"f{i}")), f"f{i} ({size} bytes): content differs"
    # and back out with cp, compared by sha256sum
    back = os.path.join(tmp, "back")
    run("cp", "-r", os.path.join(mnt, "files"), back)
    a = run("sha256sum", *sorted(os.listdir(src)), cwd=src).stdout
    b = run("sha256sum", *sorted(os.listdir(back)), cwd=back).stdout
    assert a == b, "sha256sum of the files copied back differs"
    # several threads at once (the connection pool)
    import threading
    errs = []

    def worker(k):
        try:
            p = os.path.join(mnt, "files", f"par{k}")
            data = pattern(100 + k, 3 * (1 << 20) + k)
            with open(p, "wb") as f:
                f.write(data)
            with open(p, "rb") as f:
                if f.read() != data:
                    errs.append(f"par{k} differs")
        except OSError as e:
            errs.append(str(e))
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in ts), "a writer hung"
    assert not errs, errs


def make_tree(src):
    os.makedirs(os.path.join(src, "a", "b", "c"))
    os.makedirs(os.path.join(src, "empty"))
    for i in range(40):
        d = os.path.join(src, "a" if i % 3 == 0 else os.path.join("a", "b") if i % 3 == 1 else os.path.join("a", "b", "c"))
        with open(os.path.join(d, f"file{i:02d}"), "wb") as f:
            f.write(pattern(1000 + i, i * 997))
        os.chmod(os.path.join(d, f"file{i:02d}"), 0o600 + (i % 3) * 0o44)
    os.symlink("b/c/file02", os.path.join(src, "a", "link"))


def tree_tar(tmp, mnt):
    src = os.path.join(tmp, "tree")
    make_tree(src)
    run("sh", "-c", f"tar -C {tmp} -cf - tree | tar -C {mnt} -xf -")
    run("diff", "-r", "--no-dereference", src, os.path.join(mnt, "tree"))
    assert listing(src) == listing(os.path.join(mnt, "tree")), "listing (modes, links) differs"
    out = os.path.join(tmp, "untar")
    os.makedirs(out)
    run("sh", "-c", f"tar -C {mnt} -cf - tree | tar -C {out} -xf -")
    run("diff", "-r", "--no-dereference", src, os.path.join(out, "tree"))


def namespace(mnt):
    n = os.path.join(mnt, "ns")
    run("mkdir", "-p", os.path.join(n, "x", "y", "z"))
    for name in ("p", "q", "r"):
        with open(os.path.join(n, name), "w") as f:
            f.write(name * 10)
    run("ln", os.path.join(n, "p"), os.path.join(n, "x", "p2"))
    assert os.stat(os.path.join(n, "p")).st_nlink == 2, "hard link count"
    run("ln", "-s", "../p", os.path.join(n, "x", "sl"))
    assert run("readlink", os.path.join(n, "x", "sl")).stdout.strip() == "../p"
    assert open(os.path.join(n, "x", "sl")).read() == "p" * 10, "reading through the symlink"
    run("mv", os.path.join(n, "q"), os.path.join(n, "x", "y", "q"))
    run("mv", os.path.join(n, "x", "y"), os.path.join(n, "y"))
    assert os.stat(os.path.join(n, "x")).st_nlink == 2, "x still counts y"
    # rename over an existing file: the target's content is replaced, atomically
    os.rename(os.path.join(n, "r"), os.path.join(n, "p"))
    assert open(os.path.join(n, "p")).read() == "r" * 10
    assert open(os.path.join(n, "x", "p2")).read() == "p" * 10, "the old target lives on as p2"
    try:
        os.rmdir(os.path.join(n, "y"))
        raise AssertionError("rmdir of a non-empty directory succeeded")
    except OSError as e:
        assert e.errno == errno.ENOTEMPTY, f"rmdir non-empty: {e}"
    run("rm", "-r", os.path.join(n, "y"))
    assert sorted(os.listdir(n)) == ["p", "x"], sorted(os.listdir(n))
    libc = ctypes.CDLL(None, use_errno=True)

    def renameat2(old, new, flags):
        r = libc.renameat2(-100, old.encode(), -100, new.encode(), flags)
        return 0 if r == 0 else -ctypes.get_errno()
    a, b = os.path.join(n, "p"), os.path.join(n, "x", "p2")
    assert renameat2(a, b, 1) == -errno.EEXIST, "RENAME_NOREPLACE over an existing name"
    assert renameat2(a, b, 2) == 0, "RENAME_EXCHANGE"
    assert open(a).read() == "p" * 10 and open(b).read() == "r" * 10, "EXCHANGE swapped the names"
    try:
        open(os.path.join(n, "L" * 256), "w").close()
        raise AssertionError("a 256-byte name was accepted")
    except OSError as e:
        assert e.errno == errno.ENAMETOOLONG, f"256-byte name: {e}"
    try:
        os.mkdir(os.path.join(n, "x"))
        raise AssertionError("mkdir over an existing name succeeded")
    except OSError as e:
        assert e.errno == errno.EEXIST, f"mkdir existing: {e}"
    try:
        os.stat(os.path.join(n, "nothing"))
        raise AssertionError("stat of a missing name succeeded")
    except OSError as e:
        assert e.errno == errno.ENOENT, f"missing name: {e}"
    # a listing longer than one readdir buffer (cookies across calls)
    big = os.path.join(mnt, "bigdir")
    os.makedirs(big)
    names = sorted(f"entry-with-a-longish-name-{i:04d}" for i in range(600))
    for name in names:
        open(os.path.join(big, name), "w").close()
    assert sorted(os.listdir(big)) == names, "readdir of 600 entries"
    run("rm", "-r", big)
    assert not os.path.exists(big)


def attributes(mnt):
    p = os.path.join(mnt, "attr")
    with open(p, "wb") as f:
        f.write(pattern(7, 100000))
    run("truncate", "-s", "5000", p)
    assert os.stat(p).st_size == 5000
    assert open(p, "rb").read() == pattern(7, 100000)[:5000], "shrinking truncate kept the head"
    run("truncate", "-s", "3M", p)
    data = open(p, "rb").read()
    assert len(data) == 3 << 20 and data[5000:] == bytes(len(data) - 5000), "growing truncate reads zeroes"
    run("chmod", "0640", p)
    assert os.stat(p).st_mode & 0o7777 == 0o640
    run("chmod", "u+x,g-r", p)
    assert os.stat(p).st_mode & 0o7777 == 0o700
    run("touch", "-d", "2001-02-03 04:05:06.5 UTC", p)
    st = os.stat(p)
    assert st.st_mtime_ns == 981173106_500000000 and st.st_atime_ns == 981173106_500000000, (st.st_mtime_ns,)
    run("touch", "-m", "-d", "1999-12-31 23:59:59 UTC", p)
    assert os.stat(p).st_mtime == 946684799 and os.stat(p).st_atime_ns == 981173106_500000000
    before = time.time()
    run("touch", p)
    assert os.stat(p).st_mtime >= before - 2, "touch (now)"
    # fsync of a written file and of a directory
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, b"synced", 10)
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    dfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    assert open(p, "rb").read()[10:16] == b"synced"


def statfs(mnt):
    p = run("df", "-P", "-B4096", mnt)
    fields = p.stdout.splitlines()[1].split()
    total, used = int(fields[1]), int(fields[2])
    assert 120000 < total <= 131072, f"df total {total} blocks of 4 KiB for a 512 MiB image"
    assert 0 < used < total, f"df used {used}"
    st = os.statvfs(mnt)
    assert st.f_namemax == 255, st.f_namemax
    # 30 MiB of files are in: used must say so
    assert used * 4096 > 30 << 20, f"df used {used} blocks after 30+ MiB of files"


def copy_all(src, dst, length):
    """copy_file_range of length bytes from src to a new dst, then fsync."""
    fi, fo = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        done = 0
        while done < length:
            n = os.copy_file_range(fi, fo, length - done, done, done)
            assert n > 0, "copy_file_range stopped early"
            done += n
        os.fsync(fo)
    finally:
        os.close(fi)
        os.close(fo)


def copy_range(mnt):
    src, dst = os.path.join(mnt, "cfr-src"), os.path.join(mnt, "cfr-dst")
    data = pattern(55, 3 * (1 << 20) + 333)
    with open(src, "wb") as f:
        f.write(data)
    copy_all(src, dst, len(data))
    assert open(dst, "rb").read() == data, "copy_file_range content"
    # Block-aligned: the server shares the extents (COPY's reflink), so
    # 8 MiB more of file takes no data space.
    big, clone = os.path.join(mnt, "cfr-big"), os.path.join(mnt, "cfr-clone")
    data = pattern(56, 8 << 20)
    with open(big, "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    free0 = os.statvfs(mnt).f_bfree * os.statvfs(mnt).f_frsize
    copy_all(big, clone, len(data))
    free1 = os.statvfs(mnt).f_bfree * os.statvfs(mnt).f_frsize
    assert free0 - free1 < (1 << 20), f"an aligned copy_file_range of 8 MiB used {free0 - free1} bytes"
    assert open(clone, "rb").read() == data, "cloned content"


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10


def fallocate_ops(mnt):
    """fallocate(1) -l, -n (keep size), -p, -z (and -z -n) on a file against a byte
    model: contents, stat sizes, and blocks released by a punch."""
    f = os.path.join(mnt, "falloc")
    MB = 1 << 20
    model = bytearray(pattern(77, 4 * MB))
    with open(f, "wb") as fh:
        fh.write(model)
        os.fsync(fh.fileno())
    blocks0 = os.stat(f).st_blocks
    assert blocks0 * 512 >= 4 * MB, f"{blocks0} blocks for 4 MiB written"

    def check(what):
        st = os.stat(f)
        assert st.st_size == len(model), f"{what}: size {st.st_size}, model {len(model)}"
        with open(f, "rb") as fh:
            got = fh.read()
        assert got == bytes(model), f"{what}: content differs from the model at " \
            f"{next(i for i in range(min(len(got), len(model))) if got[i] != model[i]) if len(got) == len(model) else 'size'}"
    # -p: punch 1 MiB + an unaligned edge; size kept, zeros read, blocks released
    run("fallocate", "-p", "-o", str(MB - 100), "-l", str(MB + 100), f)
    model[MB - 100:2 * MB] = bytes(MB + 100)
    check("punch")
    blocks1 = os.stat(f).st_blocks
    assert blocks0 - blocks1 >= (MB - 4096) // 512, f"punch of 1 MiB released {blocks0 - blocks1} blocks"
    # -z inside the file: zeros, size kept
    run("fallocate", "-z", "-o", "3000", "-l", "5000", f)
    model[3000:8000] = bytes(5000)
    check("zero range")
    # -z past the end: zeros, the size grows
    run("fallocate", "-z", "-o", str(4 * MB - 10), "-l", "20000", f)
    model[4 * MB - 10:] = bytes(10)
    model += bytes(4 * MB - 10 + 20000 - len(model))
    check("zero range past the end")
    # -z -k past the end: the size stays
    run("fallocate", "-z", "-n", "-o", str(len(model) - 4000), "-l", "100000", f)
    model[len(model) - 4000:] = bytes(4000)
    check("zero range, keep size")
    # -k: allocate past the end, size kept; -l: allocate, the size grows (zeros)
    run("fallocate", "-n", "-o", str(len(model)), "-l", str(MB), f)
    check("allocate, keep size")
    run("fallocate", "-o", str(len(model)), "-l", str(MB), f)
    model += bytes(MB)
    check("allocate")
    # Cached pages: read through an open file, punch, read again.
    fd = os.open(f, os.O_RDONLY)
    try:
        assert os.pread(fd, 8192, 0) == bytes(model[:8192])
        run("fallocate", "-p", "-o", "0", "-l", "8192", f)
        model[:8192] = bytes(8192)
        assert os.pread(fd, 8192, 0) == bytes(8192), "a punched range read its old bytes from the page cache"
    finally:
        os.close(fd)
    check("punch with the file open")
    # Refused: punch without keep size (the kernel's rule), collapse range.
    fd = os.open(f, os.O_RDWR)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        assert libc.fallocate(fd, 0x08, 0, 4096) != 0, "collapse range was accepted"
        assert ctypes.get_errno() == errno.EOPNOTSUPP, f"collapse range: errno {ctypes.get_errno()}"
    finally:
        os.close(fd)


def seek_data_hole(mnt):
    """SEEK_DATA / SEEK_HOLE on a sparse file (data, a hole, data, a hole to the end)."""
    f = os.path.join(mnt, "sparse")
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"a" * 8192, 0)
        os.pwrite(fd, b"b" * 4096, 40960)
        os.ftruncate(fd, 100000)
        os.fsync(fd)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 8192, os.lseek(fd, 0, os.SEEK_HOLE)
        assert os.lseek(fd, 8192, os.SEEK_DATA) == 40960, os.lseek(fd, 8192, os.SEEK_DATA)
        assert os.lseek(fd, 5000, os.SEEK_DATA) == 5000
        assert os.lseek(fd, 40960, os.SEEK_HOLE) == 45056, os.lseek(fd, 40960, os.SEEK_HOLE)
        assert os.lseek(fd, 50000, os.SEEK_HOLE) == 50000
        for off, whence in ((45056, os.SEEK_DATA), (100000, os.SEEK_HOLE)):
            try:
                os.lseek(fd, off, whence)
                raise AssertionError(f"lseek({off}, {whence}) did not say ENXIO")
            except OSError as e:
                assert e.errno == errno.ENXIO, f"lseek({off}, {whence}): {e}"
    finally:
        os.close(fd)


def special_files(tmp, mnt, port):
    """A fifo, a socket and devices made through the mount (MKNOD): ls -l on
    the mount and the CLI's ls -l both show p, s, c, b and a device's
    "major, minor"."""
    import socket
    d = os.path.join(mnt, "special")
    os.mkdir(d)
    os.mkfifo(os.path.join(d, "fifo"), 0o640)
    os.mknod(os.path.join(d, "null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(os.path.join(d, "disk"), 0o660 | stat.S_IFBLK, os.makedev(259, 70000))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(os.path.join(d, "sock"))
    finally:
        s.close()
    want = {"fifo": ("p", None), "sock": ("s", None), "null": ("c", "1, 3"), "disk": ("b", "259, 70000")}
    lines = run("ls", "-l", d).stdout.splitlines()[1:]        # "total N" first
    cli = run(os.path.join(BUILD, "apfp"), "--secret-file", os.path.join(tmp, "secret"), f"127.0.0.1:{port}", "ls",
              "-l", "vol/special").stdout.splitlines()
    for where, out in (("ls -l on the mount", lines), ("apfp ls -l", cli)):
        got = {ln.split()[-1]: " ".join(ln.split()) for ln in out}     # ls pads "1,   3"
        assert sorted(got) == sorted(want), f"{where}: {out}"
        for name, (kind, dev) in want.items():
            assert got[name][0] == kind, f"{where}: {got[name]!r} is not type {kind}"
            assert dev is None or f" {dev} " in got[name], f"{where}: {got[name]!r} lacks {dev}"
    st = os.lstat(os.path.join(d, "disk"))
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(259, 70000), (oct(st.st_mode), st.st_rdev)
    for name in want:
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def o_direct(tmp, mnt):
    p = os.path.join(mnt, "direct")
    size = 2 << 20
    data = pattern(9, size)
    buf = mmap.mmap(-1, size)               # page-aligned, as O_DIRECT wants
    buf[:] = data
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        assert os.pwritev(fd, [buf], 0) == size
    finally:
        os.close(fd)
    rbuf = mmap.mmap(-1, size)
    fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    try:
        assert os.preadv(fd, [rbuf], 0) == size
    finally:
        os.close(fd)
    assert rbuf[:] == data, "O_DIRECT read back differs"
    assert open(p, "rb").read() == data, "buffered read of an O_DIRECT write differs"
    # a buffered write is seen by a direct read afterwards
    with open(p, "r+b") as f:
        f.seek(4096)
        f.write(b"buffered")
    fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    try:
        small = mmap.mmap(-1, 4096)
        os.preadv(fd, [small], 4096)
        assert small[:8] == b"buffered", "a direct read misses a buffered write before it"
    finally:
        os.close(fd)
    run("dd", f"if={p}", f"of={tmp}/direct-back", "bs=1M", "iflag=direct", "status=none")
    exp = bytearray(data)
    exp[4096:4104] = b"buffered"
    assert open(f"{tmp}/direct-back", "rb").read() == bytes(exp), "dd iflag=direct"


def random_ops(tmp, mnt, seed=1234, count=400):
    """Seeded random operations applied to a local directory and to the
    mount; every result (success or errno) must agree, and the trees too."""
    r = random.Random(seed)
    roots = [os.path.join(tmp, "rnd-local"), os.path.join(mnt, "rnd")]
    for root in roots:
        os.makedirs(root)
    names = ["a", "b", "c", "d/e", "d/f", "d/g/h", "d", "d/g"]

    def apply(root, op, args):
        p = [os.path.join(root, a) for a in args[:2] if isinstance(a, str)]
        try:
            if op == "write":
                fd = os.open(p[0], os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    os.pwrite(fd, pattern(args[2], args[3]), args[4])
                finally:
                    os.close(fd)
            elif op == "truncate":
                os.truncate(p[0], args[2])
            elif op == "mkdir":
                os.mkdir(p[0])
            elif op == "rmdir":
                os.rmdir(p[0])
            elif op == "unlink":
                os.unlink(p[0])
            elif op == "rename":
                os.rename(p[0], p[1])
            elif op == "link":
                os.link(p[0], p[1])
            elif op == "symlink":
                os.symlink(args[2], p[0])
            elif op == "read":
                with open(p[0], "rb") as f:
                    f.seek(args[2])
                    return ("data", hashlib.sha256(f.read(args[3])).hexdigest())
            elif op == "chmod":
                os.chmod(p[0], args[2])
            return ("ok",)
        except OSError as e:
            return ("err", e.errno)
    for i in range(count):
        op = r.choice(["write", "write", "write", "truncate", "mkdir", "rmdir", "unlink", "rename", "link",
                       "symlink", "read", "read", "chmod"])
        a, b = r.choice(names), r.choice(names)
        if op == "write":
            args = (a, None, r.randrange(1 << 30), r.choice([1, 100, 4096, 70000, 1 << 20]),
                    r.choice([0, 1, 4095, 8192, 100000, 3 << 20]))
        elif op == "truncate":
            args = (a, None, r.choice([0, 1, 5000, 1 << 20, 4 << 20]))
        elif op == "read":
            args = (a, None, r.choice([0, 4096, 99999]), r.choice([1, 5000, 2 << 20]))
        elif op == "symlink":
            args = (a, None, r.choice(["a", "../x", "d/e"]))
        elif op == "chmod":
            args = (a, None, r.choice([0o644, 0o600, 0o755]))
        else:
            args = (a, b)
        got = [apply(root, op, args) for root in roots]
        if got[0] != got[1]:
            raise AssertionError(f"op {i} {op}{args[:2]}: local {got[0]}, mount {got[1]}")
        if i % 100 == 99:
            if i == 199 and os.access("/proc/sys/vm/drop_caches", os.W_OK):
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("2")            # the kernel forgets its inodes: FORGET, then LOOKUPs anew
            la, lb = listing(roots[0]), listing(roots[1])
            if la != lb:
                raise AssertionError(f"after op {i}: trees differ: {next((x, y) for x, y in zip(la + [None], lb + [None]) if x != y)}")


def resend_after_restart(tmp, mnt, server):
    """Writes acknowledged UNSTABLE, then the server dies before committing
    them: fsync must notice the new verifier and write them again."""
    p = os.path.join(mnt, "resend")
    first, second = pattern(21, 2 << 20), pattern(22, 3 << 20)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, first)
        os.fsync(fd)                        # the file and its first bytes are durable
        os.pwrite(fd, second, 1 << 20)      # unstable, in the dying server's memory only
        logged = open(os.path.join(tmp, "fuse.log")).read().count("writing")
        server.restart(signal.SIGKILL)
        os.fsync(fd)
    finally:
        os.close(fd)
    log = open(os.path.join(tmp, "fuse.log")).read()
    assert log.count("writing") > logged, "fsync after a server restart did not write the uncommitted data again"
    expect = first[:1 << 20] + second
    assert sha256_file(p) == hashlib.sha256(expect).hexdigest(), "content after the restart"
    return expect


def writeback_ops(tmp, port, mnt):
    """-o writeback: the kernel caches writes and sends them later; what
    reaches the server after fsync and unmount must equal a local model."""
    m = Mount(tmp, port, mnt, "-o", "writeback")
    try:
        r = random.Random(77)
        p, model = os.path.join(mnt, "wb"), bytearray()
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for i in range(60):
                off, size = r.randrange(6 << 20), r.choice([1, 512, 4096, 10000, 300000])
                data = pattern(500 + i, size)
                os.pwrite(fd, data, off)
                if len(model) < off + size:
                    model.extend(bytes(off + size - len(model)))
                model[off:off + size] = data
                if i % 20 == 19:
                    cut = r.randrange(len(model))
                    os.ftruncate(fd, cut)
                    del model[cut:]
            os.fsync(fd)
        finally:
            os.close(fd)
        with open(p, "ab") as f:            # appends where the kernel owns the size
            f.write(b"appended")
        model += b"appended"
        assert sha256_file(p) == hashlib.sha256(model).hexdigest(), "content through the writeback cache"
        m.unmount()
        m = Mount(tmp, port, mnt)
        assert os.stat(p).st_size == len(model), f"size {os.stat(p).st_size} on the server, {len(model)} written"
        assert sha256_file(p) == hashlib.sha256(model).hexdigest(), "content on the server after unmount"
        m.unmount()
        m = None
    finally:
        if m:
            m.kill()


def stat_fails_soon(path, seconds, state):
    """stat of a name the kernel has not cached: EIO or ETIMEDOUT within seconds."""
    t0 = time.monotonic()
    try:
        os.stat(path)
        raise AssertionError(f"stat succeeded with the server {state}")
    except OSError as e:
        took = time.monotonic() - t0
        assert e.errno in (errno.EIO, errno.ETIMEDOUT), f"{state} server: {e}"
        assert took < seconds, f"the error took {took:.1f} s"


def commit_at_exit(tmp, mnt, server):
    """apfp-fuse stopped by SIGTERM with a file open: the file's unstable
    writes are committed on the way out, so a server killed right after
    still has them."""
    m = Mount(tmp, server.port, mnt)
    data = pattern(31, (2 << 20) + 5)
    try:
        fd = os.open(os.path.join(mnt, "at-exit"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.fsync(fd)                        # the name is durable
        os.write(fd, data)                  # the data is not, yet
        m.proc.send_signal(signal.SIGTERM)
        code = m.proc.wait(timeout=30)
        try:
            os.close(fd)
        except OSError:
            pass                            # the mount is gone under it
        assert code == 0, f"apfp-fuse exited {code} after SIGTERM (see fuse.log)"
        wait_for(lambda: not mounted(mnt), 15, "the mount to go")
        m = None
        server.restart(signal.SIGKILL)
        m = Mount(tmp, server.port, mnt)
        got = open(os.path.join(mnt, "at-exit"), "rb").read()
        assert got == data, f"{len(got)} bytes after the restart, {len(data)} written"
        m.unmount()
        m = None
    finally:
        if m:
            m.kill()


def dead_server(tmp, mnt, server):
    # a server that stops answering: each wait has the mount's timeout (3 s),
    # the connection is tried again three times, then the caller hears EIO
    server.proc.send_signal(signal.SIGSTOP)

    def stopped():
        with open(f"/proc/{server.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    wait_for(stopped, 10, "apfp-serve to stop")
    try:
        stat_fails_soon(os.path.join(mnt, "frozen-name"), 25, "stopped")
    finally:
        server.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: os.path.exists(os.path.join(mnt, "files", "f1")), 15, "the mount to work again")
    server.stop(signal.SIGKILL)
    stat_fails_soon(os.path.join(mnt, "never-seen-name"), 20, "dead")
    log = open(os.path.join(tmp, "fuse.log")).read()
    assert "apfp-fuse: 127.0.0.1:" in log, "no sentence on stderr about the dead server"
    server.restart()
    wait_for(lambda: os.path.exists(os.path.join(mnt, "files", "f1")), 15, "the mount to work again")


def mount_helper(tmp, port, mnt):
    """mount(8) through mount.fuse3 ("PROGRAM#SOURCE", as fstab would give
    it without installing apfp-fuse in mount.fuse3's PATH): options pass
    through, the daemon detaches, fusermount3 -u ends it."""
    prog = os.path.abspath(os.path.join(BUILD, "apfp-fuse"))
    run("mount", "-t", "fuse", f"{prog}#127.0.0.1:{port}/vol", mnt, "-o",
        f"secret_file={os.path.join(tmp, 'secret')},ro,attr_timeout=2,_netdev", timeout=30)
    try:
        with open("/proc/self/mounts") as f:
            line = next(ln for ln in f if ln.split()[1] == mnt)
        assert line.split()[2] == "fuse.apfp-fuse" and "ro," in line.split()[3], line
        assert os.path.exists(os.path.join(mnt, "files", "f1")), "the export's files are not there"
    finally:
        run("fusermount3", "-u", mnt, timeout=30)
    wait_for(lambda: not mounted(mnt), 15, "the unmount")


def bad_input(tmp, port, mnt, secret):
    """Refused before anything is mounted, with the reason on stderr."""
    bad = os.path.join(tmp, "bad-secret")
    with open(bad, "w") as f:
        f.write("not the secret\n")
    src = f"127.0.0.1:{port}/vol"
    cases = [
        ([src, "-o", f"secret_file={bad}"], 1, "auth"),
        ([f"127.0.0.1:{port}/nosuch", "-o", f"secret_file={secret}"], 1, "no such export"),
        ([src, "-o", "anon"], 1, "anonymous"),                 # the server wants the secret
        ([src, "-o", f"anon,secret_file={secret}"], 2, "one of them"),
        ([f"127.0.0.1:{port}", "-o", f"secret_file={secret}"], 2, "not HOST:PORT/EXPORT"),
        ([src, "-o", f"secret_file={secret},attr_timeout=soon"], 2, "seconds"),
        ([src, "-o", f"secret_file={os.path.join(tmp, 'absent')}"], 1, "No such file"),
    ]
    for args, code, words in cases:
        p = run(os.path.join(BUILD, "apfp-fuse"), args[0], mnt, "-f", *args[1:], check=False, timeout=30)
        assert p.returncode == code and words.lower() in p.stderr.lower() and not mounted(mnt), \
            f"{args}: exit {p.returncode} (expected {code}), stderr {p.stderr.strip()[:200]!r}"


def main():
    if not os.path.exists("/dev/fuse"):
        for c in CASES:
            print(f"skip - {SUITE}.{c}: /dev/fuse is absent", flush=True)
        return 0
    if "--bench" in sys.argv:
        return bench(int(sys.argv[sys.argv.index("--bench") + 1]))
    tmp = tempfile.mkdtemp(prefix="apfp-fuse-")
    image, mnt, secret = os.path.join(tmp, "img"), os.path.join(tmp, "mnt"), os.path.join(tmp, "secret")
    os.makedirs(mnt)
    m = server = None
    try:
        with open(image, "wb") as f:
            f.truncate(512 << 20)
        run(os.path.join(BUILD, "mkfs.cowfs"), image)
        with open(secret, "w") as f:
            f.write("a test secret of thirty-two bytes!\n")
        server = Server(tmp, image, secret)
        expect_resend = None
        m = Mount(tmp, server.port, mnt)
        report("mount", True)

        def resend():
            nonlocal expect_resend
            expect_resend = resend_after_restart(tmp, mnt, server)
        steps = [
            ("files_sha256", lambda: files_sha256(tmp, mnt)),
            ("tree_tar", lambda: tree_tar(tmp, mnt)),
            ("namespace", lambda: namespace(mnt)),
            ("attributes", lambda: attributes(mnt)),
            ("statfs", lambda: statfs(mnt)),
            ("copy_file_range", lambda: copy_range(mnt)),
            ("xattr", lambda: xattr_round_trips(mnt)),
            ("fallocate", lambda: fallocate_ops(mnt)),
            ("seek_data_hole", lambda: seek_data_hole(mnt)),
            ("special_files", lambda: special_files(tmp, mnt, server.port)),
            ("o_direct", lambda: o_direct(tmp, mnt)),
            ("random_ops", lambda: random_ops(tmp, mnt)),
            ("resend_after_restart", resend),
            ("dead_server", lambda: dead_server(tmp, mnt, server)),
        ]
        for name, fn in steps:
            try:
                fn()
                report(name, True)
            except (AssertionError, OSError, subprocess.SubprocessError) as e:
                report(name, False, str(e)[:400])
        try:
            before = listing(mnt)
            m.unmount()
            m = None
            server.restart()
            m = Mount(tmp, server.port, mnt)
            after = listing(mnt)
            same = after == before and len(after) > 50
            ok = same and expect_resend is not None and \
                sha256_file(os.path.join(mnt, "resend")) == hashlib.sha256(expect_resend).hexdigest()
            report("persist_remount", ok, f"{len(before)} paths before, {len(after)} after, same: {same}")
            m.unmount()
            m = None
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("persist_remount", False, str(e)[:400])
        try:
            writeback_ops(tmp, server.port, mnt)
            report("writeback", True)
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("writeback", False, str(e)[:400])
        try:
            commit_at_exit(tmp, mnt, server)
            report("commit_at_exit", True)
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("commit_at_exit", False, str(e)[:400])
        try:
            m = Mount(tmp, server.port, mnt, "-o", "ro")
            try:
                open(os.path.join(mnt, "new"), "w").close()
                report("readonly", False, "a file was created on a read-only mount")
            except OSError as e:
                report("readonly", e.errno == errno.EROFS and not os.path.exists(os.path.join(mnt, "new")),
                       f"errno {e.errno}")
            m.unmount()
            m = None
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("readonly", False, str(e)[:400])
        try:
            mount_helper(tmp, server.port, mnt)
            report("mount_helper", True)
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("mount_helper", False, str(e)[:400])
        try:
            bad_input(tmp, server.port, mnt, secret)
            report("bad_input", True)
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            report("bad_input", False, str(e)[:400])
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        for c in CASES:
            if c not in results:
                report(c, False, f"setup: {e}")
    finally:
        if m:
            m.kill()
        if server:
            try:
                server.stop()
            except AssertionError:
                pass
        if not all(results.values()):
            for log in ("fuse.log", "serve.log"):
                lp = os.path.join(tmp, log)
                if os.path.exists(lp):
                    print(f"# {log}: " + open(lp).read()[-1500:].replace("\n", "\n# "))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(results.values()) else 1


def bench(mib):
    """Large-file throughput through the mount against apfp-serve on this
    host, and the same dd to and from a file beside the image (the disk
    alone, no protocol, no FUSE) for scale."""
    tmp = tempfile.mkdtemp(prefix="apfp-fuse-bench-")
    image, mnt, secret = os.path.join(tmp, "img"), os.path.join(tmp, "mnt"), os.path.join(tmp, "secret")
    os.makedirs(mnt)
    m = server = None

    def dd(*args):
        t0 = time.monotonic()
        run("dd", *args, "bs=1M", f"count={mib}", "status=none", timeout=600)
        return mib * 1048576 / 1e6 / (time.monotonic() - t0)
    try:
        with open(image, "wb") as f:
            f.truncate((2 * mib + 256) << 20)
        run(os.path.join(BUILD, "mkfs.cowfs"), image)
        with open(secret, "w") as f:
            f.write("a bench secret of thirty-two bytes\n")
        server = Server(tmp, image, secret)
        m = Mount(tmp, server.port, mnt)
        w = dd("if=/dev/zero", f"of={mnt}/big", "conv=fsync")
        r = dd(f"if={mnt}/big", "of=/dev/null")     # a new open drops the kernel's cached pages
        m.unmount()
        m = Mount(tmp, server.port, mnt, "-o", "writeback")
        wbw = dd("if=/dev/zero", f"of={mnt}/big-wb", "conv=fsync")
        local = os.path.join(tmp, "local")
        lw = dd("if=/dev/zero", f"of={local}", "conv=fsync")
        fd = os.open(local, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        lr = dd(f"if={local}", "of=/dev/null")
        print(f"bench apfp-fuse write_MBps={w:.0f} read_MBps={r:.0f} writeback_write_MBps={wbw:.0f} file_MiB={mib} "
              f"local_disk_write_MBps={lw:.0f} local_disk_read_MBps={lr:.0f}", flush=True)
        m.unmount()
        m = None
        return 0
    finally:
        if m:
            m.kill()
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
