#!/usr/bin/env python3
"""The apfp CLI against build/apfp-serve on 127.0.0.1 (tests/host/test.h protocol lines).

  test_apfp_cli.py [BUILD_DIR]

mkfs an image file, serve it with build/apfp-serve on 127.0.0.1 port 0, and
run build/apfp: put and get of files from 0 bytes to 20 MiB and of a
directory tree (sha256 compared, symlinks and modes too), cat, ls/stat and
their --json, mkdir -p, rm -r, mv, ln and ln -s, df, snapshots, clone, the
exit status of each kind of failure, the progress bar only on a terminal,
and a short bench; then the server stops and `cowfs check` judges the image.
Every wait has a deadline; the server is always stopped.
"""
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuse"))
from fuse_util import Results, wait_for, sha256_file as sha  # noqa: E402

SUITE = "apfp_cli"
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CASES = ["serve", "put_get_sizes", "cat", "tree", "ls_stat_json", "namespace", "df", "snapshots", "clone",
         "errors", "progress_tty", "bench", "stop_check"]
R = Results(SUITE)
results = R.ok
report = R.report
SECRET = "apfp cli test secret, 32 bytes or so\n"
MiB = 1 << 20


def make_file(path, size, seed):
    # Incompressible, different per file and per MiB: a misplaced block shows.
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            block = hashlib.sha256(f"{seed}/{i}".encode()).digest() * (MiB // 32)
            f.write(block[:min(left, MiB)])
            left -= min(left, MiB)
            i += 1


class Cli:
    """build/apfp against one server.  The cases name the export "vol";
    against another server (tests/qemu/test_apfp_cli.py) it is renamed."""

    def __init__(self, tmp, port, export="vol"):
        self.secret = os.path.join(tmp, "secret")
        self.addr = f"127.0.0.1:{port}"
        self.export = export

    def remote(self, arg):
        if arg == "vol" or arg.startswith("vol/"):
            return self.export + arg[3:]
        return arg

    def run(self, *args, expect=0, timeout=120, secret=None, addr=None, **kw):
        cmd = [os.path.join(BUILD, "apfp"), "--secret-file", secret or self.secret, "--timeout", "20000",
               addr or self.addr, *(self.remote(a) for a in args)]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
        if expect is not None and p.returncode != expect:
            raise AssertionError(f"apfp {' '.join(args)}: exit {p.returncode}, wanted {expect}: "
                                 f"{p.stderr.decode(errors='replace').strip()[:300]}")
        return p

    def json(self, *args):
        return json.loads(self.run("--json", *args).stdout)


def tree_listing(root):
    """Every path under root: type, mode, and content hash or link target."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out.append((rel, "l", os.readlink(p)))
            elif os.path.isdir(p):
                out.append((rel, "d", oct(st.st_mode & 0o7777)))
            else:
                out.append((rel, "f", oct(st.st_mode & 0o7777), st.st_size, sha(p)))
    return out


def case_put_get_sizes(cli, tmp):
    sizes = [0, 1, 4095, 4096, 4097, MiB - 1, MiB, MiB + 1, 3 * MiB + 17, 20 * MiB + 5]
    for i, size in enumerate(sizes):
        src, back = os.path.join(tmp, f"s{i}"), os.path.join(tmp, f"b{i}")
        make_file(src, size, i)
        cli.run("put", src, f"vol/sizes-{i}" if i else "vol/")   # the first goes into the root by its name
        remote = f"vol/sizes-{i}" if i else "vol/s0"
        cli.run("get", remote, back)
        assert os.path.getsize(back) == size, f"{size} bytes put, {os.path.getsize(back)} got back"
        assert sha(back) == sha(src), f"file of {size} bytes differs after put and get"
        st = cli.json("stat", remote)
        assert st["size"] == size and st["type"] == "file", st
    # Overwriting a larger file with a smaller one leaves only the new data.
    cli.run("put", os.path.join(tmp, "s1"), "vol/sizes-9")
    cli.run("get", "vol/sizes-9", os.path.join(tmp, "b9"))
    assert sha(os.path.join(tmp, "b9")) == sha(os.path.join(tmp, "s1")), "overwrite kept old data"
    cli.run("put", os.path.join(tmp, "s9"), "vol/sizes-9")


def case_cat(cli, tmp):
    p = cli.run("cat", "vol/sizes-8")
    assert hashlib.sha256(p.stdout).hexdigest() == sha(os.path.join(tmp, "s8")), "cat differs from the file"
    assert cli.run("cat", "vol/s0").stdout == b"", "cat of an empty file printed something"


def make_tree(src):
    os.makedirs(os.path.join(src, "a", "b", "c"))
    os.makedirs(os.path.join(src, "empty"))
    for i, size in enumerate([0, 1, 4097, 65536 + 7, 2 * MiB + 3]):
        d = os.path.join(src, "a" if i % 2 else os.path.join("a", "b", "c"))
        make_file(os.path.join(d, f"f{i}"), size, 100 + i)
    os.chmod(os.path.join(src, "a", "f1"), 0o600)
    os.chmod(os.path.join(src, "a", "f3"), 0o755)
    os.chmod(os.path.join(src, "a", "b"), 0o750)
    os.symlink("b/c/f0", os.path.join(src, "a", "to_f0"))
    os.symlink("/absolute/elsewhere", os.path.join(src, "dangling"))


def case_tree(cli, tmp):
    src, back = os.path.join(tmp, "tree"), os.path.join(tmp, "back")
    make_tree(src)
    os.makedirs(back)
    cli.run("mkdir", "vol/trees")
    cli.run("put", "-r", src, "vol/trees")               # into the directory: vol/trees/tree
    cli.run("get", "-r", "vol/trees/tree", back)          # into the directory: back/tree
    want, got = tree_listing(src), tree_listing(os.path.join(back, "tree"))
    assert want == got, f"trees differ: first difference {next((a, b) for a, b in zip(want, got) if a != b)}" \
        if len(want) == len(got) else f"{len(want)} paths put, {len(got)} got back"
    # Again over the existing tree (files replaced, directories kept), and a tree under a new name.
    cli.run("put", "-r", src, "vol/trees")
    cli.run("put", "-r", src, "vol/trees/copy2")
    shutil.rmtree(back)
    cli.run("get", "-r", "vol/trees/copy2", back)
    assert tree_listing(back) == want, "second tree differs"
    ents = {e["name"]: e for e in cli.json("ls", "vol/trees/copy2/a")}
    assert ents["to_f0"]["type"] == "symlink" and ents["to_f0"]["target"] == "b/c/f0", ents.get("to_f0")
    # Without -r a directory is refused (usage).
    cli.run("get", "vol/trees", os.path.join(tmp, "x"), expect=1)
    cli.run("put", src, "vol/trees", expect=1)


def case_ls_stat_json(cli, tmp):
    names = [e["name"] for e in cli.json("ls", "vol")]
    assert names == sorted(names) and "sizes-8" in names and "trees" in names, names
    e = {x["name"]: x for x in cli.json("ls", "vol")}["sizes-8"]
    assert e["size"] == 3 * MiB + 17 and e["type"] == "file" and e["mode"] == 0o644 and e["nlink"] == 1, e
    plain = cli.run("ls", "vol").stdout.decode().split()
    assert plain == names, f"ls and ls --json disagree: {plain} / {names}"
    long = cli.run("ls", "-l", "vol/trees/tree/a").stdout.decode()
    assert re.search(r"^lrwxrwxrwx .* to_f0 -> b/c/f0$", long, re.M), long
    assert re.search(r"^-rw------- .* 1 .* f1$", long, re.M), long
    st = cli.json("stat", "vol/trees/tree/a/b")
    assert st["type"] == "dir" and st["mode"] == 0o750 and st["name"] == "b", st
    for key in ("ino", "gen", "nlink", "uid", "gid", "size", "used", "mtime", "ctime", "atime", "btime", "fsid"):
        assert key in st, f"stat --json has no {key}"
    text = cli.run("stat", "vol/sizes-8").stdout.decode()
    assert f"size: {3 * MiB + 17}" in text and "type: file" in text, text
    one = cli.json("ls", "vol/sizes-1")
    assert len(one) == 1 and one[0]["name"] == "sizes-1" and one[0]["size"] == 1, one


def case_namespace(cli, tmp):
    cli.run("mkdir", "-p", "vol/m/n/o")
    cli.run("mkdir", "-p", "vol/m/n/o")                    # exists: fine with -p
    cli.run("mkdir", "vol/m/n", expect=5)                  # exists: EEXIST from the server
    assert cli.json("stat", "vol/m/n/o")["type"] == "dir"
    cli.run("mkdir", "-p", "vol/sizes-1/x", expect=5)      # through a file: ENOTDIR
    cli.run("put", os.path.join(tmp, "s3"), "vol/m/file")
    cli.run("mv", "vol/m/file", "vol/m/n")                 # into a directory
    cli.run("stat", "vol/m/file", expect=6)
    cli.run("mv", "vol/m/n/file", "vol/m/renamed")         # to a new name
    assert cli.json("stat", "vol/m/renamed")["size"] == 4096
    cli.run("ln", "vol/m/renamed", "vol/m/hard")
    assert cli.json("stat", "vol/m/renamed")["nlink"] == 2
    assert cli.json("stat", "vol/m/hard")["ino"] == cli.json("stat", "vol/m/renamed")["ino"]
    cli.run("ln", "-s", "n/o", "vol/m/soft")
    st = cli.json("stat", "vol/m/soft")
    assert st["type"] == "symlink" and st["target"] == "n/o", st
    cli.run("ln", "vol/m/missing", "vol/m/h2", expect=6)
    cli.run("rm", "vol/m", expect=5)                       # a directory without -r
    cli.run("rm", "vol/m/hard")
    assert cli.json("stat", "vol/m/renamed")["nlink"] == 1
    cli.run("rm", "-r", "vol/m")
    cli.run("stat", "vol/m", expect=6)
    cli.run("rm", "vol/m", expect=6)
    cli.run("rm", "-r", "vol", expect=1)                   # an export's root is not removed
    assert "m" not in [e["name"] for e in cli.json("ls", "vol")]


def case_df(cli, tmp):
    d = cli.json("df")
    assert len(d) == 1 and d[0]["export"] == cli.export, d
    d = d[0]
    assert 200 * MiB < d["total_bytes"] <= 256 * MiB, d
    assert 20 * MiB < d["used_bytes"] < d["total_bytes"], d           # the 20 MiB file at least
    assert d["free_bytes"] + d["used_bytes"] == d["total_bytes"] and d["max_name"] == 255, d
    text = cli.run("df", "vol").stdout.decode().splitlines()
    assert text[0].split()[0] == "export" and text[1].split()[0] == cli.export, text
    cli.run("df", "nosuch", expect=6)


def case_snapshots(cli, tmp):
    assert cli.json("snapshot", "list", "vol") == []
    out = cli.run("snapshot", "create", "vol", "before").stdout.decode()
    assert "before" in out, out
    cli.run("snapshot", "create", "vol", "after")
    snaps = cli.json("snapshot", "list", "vol")
    assert [s["name"] for s in snaps] == ["before", "after"] and all(s["id"] > 0 for s in snaps), snaps
    assert cli.run("snapshot", "list", "vol").stdout.decode().split() == \
        [str(snaps[0]["id"]), "before", str(snaps[1]["id"]), "after"]
    cli.run("snapshot", "create", "vol", "before", expect=5)           # EEXIST
    cli.run("snapshot", "delete", "vol", "before")
    assert [s["name"] for s in cli.json("snapshot", "list", "vol")] == ["after"]
    cli.run("snapshot", "delete", "vol", "before", expect=6)
    cli.run("snapshot", "delete", "vol", "after")
    cli.run("snapshot", "frobnicate", "vol", "x", expect=1)


def case_clone(cli, tmp):
    r = cli.json("clone", "vol/sizes-9", "vol/cloned")                # a reflink on cowfs, one call
    assert r["cloned"] and r["bytes"] == 20 * MiB + 5 and r["calls"] == 1, r
    got = os.path.join(tmp, "cloned")
    cli.run("get", "vol/cloned", got)
    assert sha(got) == sha(os.path.join(tmp, "s9")), "clone differs from its source"
    cli.run("mkdir", "vol/cl")
    cli.run("clone", "vol/sizes-8", "vol/cl")                         # into a directory
    assert cli.json("stat", "vol/cl/sizes-8")["size"] == 3 * MiB + 17
    cli.run("clone", "vol/sizes-1", "vol/cloned")                     # over a larger file
    assert cli.json("stat", "vol/cloned")["size"] == 1
    cli.run("clone", "vol/cl", "vol/x", expect=5)                     # a directory
    cli.run("clone", "vol/nope", "vol/x", expect=6)


def case_errors(cli, tmp):
    cli.run("stat", "vol/no/such/path", expect=6)
    cli.run("ls", "novol", expect=6)
    cli.run("get", "vol/nope", os.path.join(tmp, "nope"), expect=6)
    cli.run("put", os.path.join(tmp, "no-such-local-file"), "vol/x", expect=6)
    cli.run("get", "vol/sizes-1", os.path.join(tmp, "no-dir", "x"), expect=6)  # local directory missing
    cli.run("cat", "vol/trees", expect=5)                              # a directory
    wrong = os.path.join(tmp, "wrong-secret")
    with open(wrong, "w") as f:
        f.write("not the secret at all, not at all\n")
    p = cli.run("ls", "vol", secret=wrong, expect=3)
    assert b"AUTH" in p.stderr, p.stderr
    # A port nobody listens on: bound, never listened, then closed.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    p = cli.run("ls", "vol", addr=f"127.0.0.1:{dead}", expect=2)
    assert b"refused" in p.stderr.lower(), p.stderr
    cli.run("frobnicate", "vol", expect=1)
    cli.run("ls", expect=1)
    cli.run("mv", "vol/sizes-1", expect=1)


def case_progress_tty(cli, tmp):
    # stderr on a terminal: a bar with bytes, rate and time left; not a terminal: nothing.
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([os.path.join(BUILD, "apfp"), "--secret-file", cli.secret, cli.addr, "get",
                              cli.remote("vol/sizes-9"), os.path.join(tmp, "bar")], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        slave = None
        seen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif p.poll() is not None:
                break
        code = p.wait(timeout=30)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert code == 0, f"get under a terminal: exit {code}"
    text = seen.decode(errors="replace")
    assert re.search(r"\d+% [\d.]+/20\.0 MiB [\d.]+ MB/s \d+:\d\d left", text), repr(text[-300:])
    p = cli.run("get", "vol/sizes-9", os.path.join(tmp, "bar2"))
    assert p.stderr == b"", p.stderr


def case_bench(cli, tmp):
    out = cli.run("bench", "vol", "-s", "4", "-n", "40", "-g", "200").stdout.decode()
    m = re.search(r"^bench apfp write_MBps=([\d.]+) read_MBps=([\d.]+) create_per_s=(\d+) getattr_us_p50=(\d+) "
                  r"getattr_us_p99=(\d+) ", out, re.M)
    assert m, out
    w, r, c, p50, p99 = (float(x) for x in m.groups())
    assert w > 0 and r > 0 and c > 0 and 0 < p50 <= p99, out
    j = cli.json("bench", "vol", "-s", "2", "-n", "10", "-g", "50")
    assert j["write_MBps"] > 0 and j["commits"] >= 1 and j["getattr_us_p50"] <= j["getattr_us_p99"], j
    assert not [e for e in cli.json("ls", "vol") if e["name"].startswith(".apfp-bench")], "bench left files"
    print("# " + out.strip(), flush=True)


# In order: later cases use what earlier ones put.
STEPS = [("put_get_sizes", case_put_get_sizes), ("cat", case_cat), ("tree", case_tree),
         ("ls_stat_json", case_ls_stat_json), ("namespace", case_namespace), ("df", case_df),
         ("snapshots", case_snapshots), ("clone", case_clone), ("errors", case_errors),
         ("progress_tty", case_progress_tty), ("bench", case_bench)]


def main():
    tmp = tempfile.mkdtemp(prefix="apfp-cli-")
    image, port_file = os.path.join(tmp, "vol.img"), os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "serve.log"), "w")
    server = None
    try:
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(SECRET)
        subprocess.run([os.path.join(BUILD, "mkfs.cowfs"), "-s", "256M", image], check=True,
                       capture_output=True, timeout=60)
        server = subprocess.Popen([os.path.join(BUILD, "apfp-serve"), "--port", "0", "--port-file", port_file,
                                   "--secret-file", os.path.join(tmp, "secret"), f"vol={image}"],
                                  stdout=log, stderr=log)
        wait_for(lambda: os.path.exists(port_file) or server.poll() is not None, 15, "apfp-serve's port")
        if server.poll() is not None:
            raise AssertionError(f"apfp-serve exited {server.returncode}")
        cli = Cli(tmp, int(open(port_file).read()))
        report("serve", True)
        for name, fn in STEPS:
            try:
                fn(cli, tmp)
                report(name, True)
            except (AssertionError, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                report(name, False, str(e)[:400])
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        server = None
        p = subprocess.run([os.path.join(BUILD, "cowfs"), "check", image], capture_output=True, text=True,
                           timeout=120)
        report("stop_check", code == 0 and p.returncode == 0,
               f"apfp-serve exit {code}; cowfs check exit {p.returncode}: {(p.stdout + p.stderr).strip()[:300]}")
    except (AssertionError, OSError, ValueError, subprocess.SubprocessError) as e:
        for c in CASES:
            if c not in results:
                report(c, False, f"setup: {e}")
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
        if all(results.values()):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"# kept {tmp} for a look (serve.log)", flush=True)
    return 0 if all(results.get(c) for c in CASES) else 1


if __name__ == "__main__":
    sys.exit(main())
