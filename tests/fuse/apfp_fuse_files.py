"""What ordinary tools do to files through the network FUSE mount, the
cases of test_apfp_fuse.py that need only the mount (and, for the CLI's
ls -l, the server's port): files of many sizes by SHA-256, a tree through
tar, the namespace, attributes, statfs, copy_file_range, fallocate against
a byte model, SEEK_DATA/SEEK_HOLE, special files, O_DIRECT and a seeded
random-operation run against a local directory.  Each raises
AssertionError (or OSError) naming what went wrong."""
import ctypes
import errno
import hashlib
import mmap
import os
import random
import stat
import time

from fuse_util import check_df, fails, listing, run, sha256_file


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
    fails(errno.ENAMETOOLONG, open, os.path.join(n, "L" * 256), "w")
    fails(errno.EEXIST, os.mkdir, os.path.join(n, "x"))
    fails(errno.ENOENT, os.stat, os.path.join(n, "nothing"))
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
    used = check_df(mnt, 512)
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


def special_files(build, tmp, mnt, port):
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
    cli = run(os.path.join(build, "apfp"), "--secret-file", os.path.join(tmp, "secret"), f"127.0.0.1:{port}", "ls",
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
