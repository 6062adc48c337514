"""Shared by the FUSE mount tests (test_cowfs_fuse.py, test_apfp_fuse.py,
test_cowfs_posix.py): result lines (tests/host/test.h protocol), commands
and waits with deadlines, a FUSE daemon run in the foreground, the file
protocol's host server for the network mount, and the extended attribute
round trips both mounts must pass."""
import ctypes
import errno
import hashlib
import os
import signal
import stat
import subprocess
import time


class Results:
    def __init__(self, suite):
        self.suite, self.ok = suite, {}

    def report(self, name, ok, why=""):
        self.ok[name] = ok
        print(f"{'ok' if ok else 'not ok'} - {self.suite}.{name}" + ("" if ok else f": {why}"), flush=True)

    def case(self, name, fn, *args):
        """Run fn(*args) as case name: passed unless it raises."""
        try:
            fn(*args)
            self.report(name, True)
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            self.report(name, False, str(e)[:400])


def run(*cmd, check=True, timeout=60, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    return p


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def mounted(mnt):
    """From the mount table: os.path.ismount stats the root, which fails
    when a network mount's server is gone."""
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == mnt for line in f)


class FuseDaemon:
    """argv run in the foreground (-f) with its output appended to log;
    up once mnt is in the mount table."""

    def __init__(self, argv, mnt, log):
        self.mnt, self.name = mnt, os.path.basename(argv[0])
        with open(log, "a") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out)
        wait_for(lambda: mounted(mnt) or self.proc.poll() is not None, 15, "the mount")
        if not mounted(mnt):
            raise AssertionError(f"{self.name} exited {self.proc.returncode} without mounting")

    def unmount(self):
        if mounted(self.mnt):
            run("fusermount3", "-u", self.mnt, timeout=30)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within 60 s of the unmount")
        if code != 0:
            raise AssertionError(f"{self.name} exited {code} (see fuse.log)")

    def kill(self):
        if mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True, timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ApfpServer:
    """build/apfp-serve (in build) on 127.0.0.1 serving image as export vol
    with the secret file; port 0 the first time, the same port on restarts;
    its output appended to serve.log in tmp."""

    def __init__(self, build, tmp, image, secret, port=0):
        self.build, self.tmp, self.image, self.secret = build, tmp, image, secret
        pf = os.path.join(tmp, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        with open(os.path.join(tmp, "serve.log"), "a") as log:
            self.proc = subprocess.Popen([os.path.join(build, "apfp-serve"), "--port", str(port), "--port-file", pf,
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

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        # the same port, so a mounted client reconnects (TIME_WAIT: SO_REUSEADDR in the server)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.__init__(self.build, self.tmp, self.image, self.secret, self.port)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


def check_df(mnt, image_mib):
    """df and statvfs of a mount of a fresh image of image_mib MiB: total
    4 KiB blocks a little under the image's, some used, 255-byte names;
    the blocks used."""
    p = run("df", "-P", "-B4096", mnt)
    fields = p.stdout.splitlines()[1].split()
    total, used = int(fields[1]), int(fields[2])
    blocks = image_mib << 8
    assert blocks * 0.9155 < total <= blocks, f"df total {total} blocks of 4 KiB for a {image_mib} MiB image"
    assert 0 < used < total, f"df used {used}"
    st = os.statvfs(mnt)
    assert st.f_namemax == 255, st.f_namemax
    return used


def fails(want, fn, *args, what=None):
    """fn(*args) must fail with errno want (or one of the tuple)."""
    wants = want if isinstance(want, tuple) else (want,)
    try:
        fn(*args)
    except OSError as e:
        if e.errno not in wants:
            raise AssertionError(f"{what or fn.__name__}{args}: {errno.errorcode.get(e.errno, e.errno)}, "
                                 f"want {'/'.join(errno.errorcode[w] for w in wants)}")
        return
    raise AssertionError(f"{what or fn.__name__}{args} succeeded, want "
                         f"{'/'.join(errno.errorcode[w] for w in wants)}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def listing(root):
    """Every path under root with its type, link count and (files) content
    digest and mode, (links) target or (special files) device number and
    mode: equal listings, equal trees."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out.append((rel, "l", st.st_nlink, os.readlink(p)))
            elif os.path.isdir(p):
                out.append((rel, "d", st.st_nlink, None))
            elif not stat.S_ISREG(st.st_mode):     # fifo, socket, device: never opened
                out.append((rel, stat.S_IFMT(st.st_mode), st.st_nlink, st.st_rdev, st.st_mode & 0o7777))
            else:
                out.append((rel, "f", st.st_nlink, sha256_file(p), st.st_mode & 0o7777))
    return out


def xattr_round_trips(mnt):
    """setxattr/getxattr/listxattr/removexattr through a mount: values up
    to 64 KiB, XATTR_CREATE/REPLACE, ENODATA, ERANGE for small buffers (the
    C calls: Python sizes its own buffers).  Made in mnt/xattrs: (dir, file)."""
    d = os.path.join(mnt, "xattrs")
    os.mkdir(d)
    f = os.path.join(d, "file")
    open(f, "wb").close()
    big = bytes((i * 13 + 5) & 255 for i in range(65536))
    os.setxattr(f, "user.small", b"hello")
    os.setxattr(f, "user.big", big)
    os.setxattr(f, "user.empty", b"")
    os.setxattr(d, "user.dir", b"on a directory")
    assert os.getxattr(f, "user.small") == b"hello"
    assert os.getxattr(f, "user.big") == big, "64 KiB value differs"
    assert os.getxattr(f, "user.empty") == b""
    assert os.getxattr(d, "user.dir") == b"on a directory"
    assert sorted(os.listxattr(f)) == ["user.big", "user.empty", "user.small"], os.listxattr(f)
    for name, flags, want in (("user.small", os.XATTR_CREATE, errno.EEXIST),
                              ("user.none", os.XATTR_REPLACE, errno.ENODATA)):
        try:
            os.setxattr(f, name, b"x", flags)
            raise AssertionError(f"setxattr {name} flags {flags} succeeded")
        except OSError as e:
            assert e.errno == want, f"setxattr {name} flags {flags}: errno {e.errno}, want {want}"
    os.setxattr(f, "user.small", b"replaced", os.XATTR_REPLACE)
    os.setxattr(f, "user.new", b"created", os.XATTR_CREATE)
    assert os.getxattr(f, "user.small") == b"replaced"
    assert os.getxattr(f, "user.new") == b"created"
    os.removexattr(f, "user.new")
    for call in (lambda: os.getxattr(f, "user.new"), lambda: os.removexattr(f, "user.new")):
        try:
            call()
            raise AssertionError("a removed attribute is still there")
        except OSError as e:
            assert e.errno == errno.ENODATA, f"removed attribute: {e}"
    # The size query and a buffer too small.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    libc.getxattr.restype = ctypes.c_ssize_t
    libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    libc.listxattr.restype = ctypes.c_ssize_t
    n = libc.getxattr(f.encode(), b"user.big", None, 0)
    assert n == 65536, f"getxattr size query: {n}"
    buf = ctypes.create_string_buffer(10)
    n = libc.getxattr(f.encode(), b"user.big", buf, 10)
    assert n == -1 and ctypes.get_errno() == errno.ERANGE, f"getxattr into 10 bytes: {n}, errno {ctypes.get_errno()}"
    n = libc.getxattr(f.encode(), b"user.small", buf, 10)
    assert n == 8 and buf.raw[:8] == b"replaced", f"getxattr into 10 bytes: {n} {buf.raw!r}"
    want = len(b"user.big\0user.empty\0user.small\0")
    n = libc.listxattr(f.encode(), None, 0)
    assert n == want, f"listxattr size query: {n}, want {want}"
    n = libc.listxattr(f.encode(), buf, 10)
    assert n == -1 and ctypes.get_errno() == errno.ERANGE, f"listxattr into 10 bytes: {n}, errno {ctypes.get_errno()}"
    try:
        os.getxattr(f, "user.none")
        raise AssertionError("getxattr of a missing name succeeded")
    except OSError as e:
        assert e.errno == errno.ENODATA, f"missing name: {e}"
    return d, f
