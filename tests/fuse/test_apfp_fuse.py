#!/usr/bin/env python3
"""The network FUSE mount (build/apfp-fuse) against build/apfp-serve on
127.0.0.1, with ordinary tools (tests/host/test.h protocol lines).

  test_apfp_fuse.py [BUILD_DIR]              the test
  test_apfp_fuse.py BUILD_DIR --bench MIB    throughput of a MIB file through the mount

mkfs an image file, serve it on 127.0.0.1 (port 0), mount it, then what
ordinary tools do to files (apfp_fuse_files.py): files of 0 B .. 30 MiB
copied in and compared by SHA-256, a tree through tar, the namespace
(mkdir, rm -r, mv, ln, ln -s, readlink, rename over a file, renameat2
flags), truncate, chmod, touch -d, df, copy_file_range (a server-side
clone: no space used), extended attributes (flags, ENODATA, ERANGE),
fallocate(1) -l/-n/-p/-z against a byte model with sizes and blocks,
SEEK_DATA/SEEK_HOLE, special files in ls -l (the mount's and the CLI's),
O_DIRECT, a seeded random-operation run compared with a local directory;
and here the mount's life with its server: uncommitted
writes written again after the server restarts (verifier change), a dead
or stopped server giving EIO instead of a hang, data surviving unmount +
server restart + remount, the writeback cache against a local model, a
read-only mount, mount(8) through mount.fuse3, and bad input refused before
mounting (wrong secret, unknown export, anonymous where the secret is
needed, malformed arguments).
Without /dev/fuse every case is reported as skipped (never as passed).
Every wait has a deadline; the mount and the server are always taken down.
"""
import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from apfp_fuse_files import (attributes, copy_range, fallocate_ops, files_sha256, namespace, o_direct, pattern,
                             random_ops, seek_data_hole, special_files, statfs, tree_tar)
from fuse_util import ApfpServer, FuseDaemon, Results, listing, mounted, run, sha256_file, wait_for, xattr_round_trips

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


class Mount(FuseDaemon):
    def __init__(self, tmp, port, mnt, *opts, secret=None):
        sec = secret or os.path.join(tmp, "secret")
        super().__init__([os.path.join(BUILD, "apfp-fuse"), f"127.0.0.1:{port}/vol", mnt, "-f",
                          "-o", f"secret_file={sec},timeout=3", *opts], mnt, os.path.join(tmp, "fuse.log"))


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
        server = ApfpServer(BUILD, tmp, image, secret)
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
            ("special_files", lambda: special_files(BUILD, tmp, mnt, server.port)),
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
        server = ApfpServer(BUILD, tmp, image, secret)
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
