"""The status server (net/http.c, net/status.c) from the host over a port
forwarded on 127.0.0.1: /metrics passes promtool's check of the Prometheus
text format and its disk counters move when the disk is written, /status.json
parses and agrees, the page loads nothing from elsewhere, bad requests get
their status codes, and with a token in config.txt nothing is served
without it."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import netutil
from harness import qemu_test, check, boot_to_prompt, shell, vm, poweroff

HTTP = 80


def boot(ctx, name, **kw):
    port = netutil.free_ports(1)[0]
    m = ctx.machine(name)
    out = boot_to_prompt(m, nic=vm.vm_nic_args("e1000e", [(port, HTTP)]), disks=["nvme"], **kw)
    if not re.search(r"^net: status page on http tcp/80", out, re.M):
        m.expect(r"^net: status page on http tcp/80", 60)
    return m, port


def get(port, path, headers=None, timeout=60):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw(port, data, timeout=30):
    """Send raw bytes, return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return netutil.recv_all(s, 1 << 16).split(b"\r\n", 1)[0].decode(errors="replace")


def metric_value(text, name, label=None):
    rx = "^" + re.escape(name) + (r'\{' + re.escape(label) + r'\}' if label else "") + r" (\S+)$"
    m = re.search(rx, text, re.M)
    check(m, f"no {name} {label or ''} in /metrics")
    return float(m.group(1))


def promtool_ok(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode == 0, p.stdout.decode(errors="replace")


@qemu_test(weight=2)
def status_server(ctx):
    m, port = boot(ctx, "open")
    with ctx.subtest("metrics_format"):
        code, hdr, body = get(port, "/metrics")
        check(code == 200 and hdr["Content-Type"].startswith("text/plain; version=0.0.4"), (code, dict(hdr)))
        text = body.decode()
        ok, why = promtool_ok(text)
        check(ok, f"promtool check metrics:\n{why}\n{text[:1500]}")
        for name in ("appliance_uptime_seconds", "appliance_memory_free_bytes",
                     "appliance_pagecache_cached_bytes"):
            metric_value(text, name)
        metric_value(text, "appliance_nic_receive_packets_total", 'nic="em0"')
    with ctx.subtest("promtool_catches_bad_text"):
        # The checker itself must reject what we would get wrong.
        ok, _ = promtool_ok("# TYPE x counter\nx{a=\"b} 1\n")
        check(not ok, "promtool accepted a broken label")
    with ctx.subtest("counters_move_under_load"):
        before = metric_value(text, "appliance_disk_written_bytes_total", 'disk="nvme0n1"')
        out = shell(m, "blk write nvme0n1 0 2048 7", 120)
        check(re.search(r"ok", out), f"blk write:\n{out}")
        _, _, body = get(port, "/metrics")
        after = metric_value(body.decode(), "appliance_disk_written_bytes_total", 'disk="nvme0n1"')
        check(after >= before + 2048 * 512, f"written bytes {before} -> {after} after 1 MiB of writes")
        up1 = metric_value(text, "appliance_uptime_seconds")
        up2 = metric_value(body.decode(), "appliance_uptime_seconds")
        check(up2 > up1, f"uptime did not advance: {up1} -> {up2}")
    with ctx.subtest("json_agrees"):
        code, hdr, body = get(port, "/status.json")
        check(code == 200 and hdr["Content-Type"] == "application/json", (code, dict(hdr)))
        s = json.loads(body)
        check(s["hostname"] and s["version"] and isinstance(s["log"], list) and len(s["log"]) > 5, s.keys())
        names = {x["name"] for x in s["metrics"]}
        check({"appliance_disk_written_bytes_total", "appliance_nic_up"} <= names, sorted(names))
        w = [x["value"] for x in s["metrics"] if x["name"] == "appliance_disk_written_bytes_total"
             and x["label"]["disk"] == "nvme0n1"]
        check(w and w[0] >= after, f"json written bytes {w} vs metrics {after}")
        check(any("status page on http" in ln for ln in s["log"]), "log tail lacks the boot lines")
    with ctx.subtest("page_self_contained"):
        code, hdr, body = get(port, "/")
        page = body.decode()
        check(code == 200 and hdr["Content-Type"].startswith("text/html"), code)
        check("<table" in page and "/status.json" in page, "not the status page")
        check(not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page loads something from elsewhere")
    with ctx.subtest("bad_requests"):
        check(get(port, "/nope")[0] == 404, "unknown path")
        check(raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith("HTTP/1.1 405"), "POST")
        check(raw(port, b"garbage\r\n\r\n").startswith("HTTP/1.1 400"), "garbage request line")
        big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 4000 + b"\r\n\r\n"
        check(raw(port, big).startswith("HTTP/1.1 431"), "oversized request")
        code, _, body = get(port, "/metrics")
        check(code == 200, "the server stopped serving after bad requests")
        check(metric_value(body.decode(), "appliance_http_responses_total", 'code="404"') >= 1, "404 not counted")
    with ctx.subtest("idle_connections_do_not_block"):
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        try:
            # The host side of a forwarded connection is up before the
            # guest has accepted it: wait until the guest itself holds 16
            # established connections on the status port (a full pool).
            held, deadline = 0, time.monotonic() + 20
            while time.monotonic() < deadline:
                held = len(re.findall(rf"^  tcp \S+:{HTTP} \S+ ESTABLISHED", shell(m, "netstat"), re.M))
                if held >= 16:
                    break
                time.sleep(0.5)
            check(held >= 16, f"the guest holds {held} status connections, not a full pool of 16")
            # The pool (16) is full of idlers: new clients are refused
            # until the idle timeout frees it, then served again.
            refused, code = 0, None
            deadline = time.monotonic() + 40         # idle timeout 10 s, then polls
            while time.monotonic() < deadline:
                try:
                    code = get(port, "/metrics", timeout=5)[0]
                except OSError:
                    code = None
                    refused += 1
                if code == 200:
                    break
                time.sleep(1)
            check(refused >= 1, "a 17th client was served while 16 idlers held the pool")
            check(code == 200, "not served again after the idle clients timed out")
        finally:
            for s in idle:
                s.close()
    poweroff(m)


@qemu_test(weight=2)
def status_server_token(ctx):
    m, port = boot(ctx, "token", config=["token = s3cret-token"])
    with ctx.subtest("refused_without"):
        code, hdr, body = get(port, "/metrics")
        check(code == 401 and "Bearer" in hdr.get("WWW-Authenticate", ""), (code, body[:200]))
        check(get(port, "/", {"Authorization": "Bearer wrong"})[0] == 401, "wrong token accepted")
        check(get(port, "/status.json?token=s3cret-toke")[0] == 401, "prefix of the token accepted")
        check(get(port, "/status.json?token=s3cret-token-x")[0] == 401, "longer token accepted")
    with ctx.subtest("served_with"):
        check(get(port, "/metrics", {"Authorization": "Bearer s3cret-token"})[0] == 200, "bearer token")
        check(get(port, "/status.json?token=s3cret-token")[0] == 200, "query token")
    poweroff(m)


def chromium(args, timeout=120):
    """Headless Chromium (Debian's): returns (stdout, console lines)."""
    p = subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--enable-logging=stderr", "--log-level=0", "--window-size=1280,1000",
                        "--virtual-time-budget=4000"] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    console = [ln for ln in p.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in ln]
    return p.stdout.decode(errors="replace"), console


def disk_row(dom, disk):
    """The cells of the disks table row for `disk` in a dumped DOM."""
    m = re.search(r"<tr><td>" + re.escape(disk) + r"</td>(.*?)</tr>", dom)
    check(m, f"no row for {disk} in the page's disk table:\n{dom[:3000]}")
    return re.findall(r"<td>(.*?)</td>", m.group(1))


@qemu_test(weight=3)
def status_page_browser(ctx):
    """The page as a person sees it: loaded by Chromium, no console errors,
    tables filled from /status.json, values that move under disk load, and
    a screenshot kept beside the logs."""
    m, port = boot(ctx, "browser")
    url = f"http://127.0.0.1:{port}/"
    with ctx.subtest("loads_without_console_errors"):
        dom, console = chromium(["--dump-dom", url])
        check(not console, "console messages:\n" + "\n".join(console))
        check(re.search(r'<div id="err" class="err"></div>', dom), "the page shows an error:\n" + dom[:2000])
        before = disk_row(dom, "nvme0n1")
        check(re.search(r"<td>em0</td><td>up</td>", dom), "no NIC row with link up")
    with ctx.subtest("values_move_under_load"):
        shell(m, "blk write nvme0n1 0 4096 9", 120)
        dom, console = chromium(["--dump-dom", url])
        after = disk_row(dom, "nvme0n1")
        # columns: size, read/s, written/s, reads, writes, errors, p50, p99
        check(int(after[4]) > int(before[4]), f"writes column did not move: {before} -> {after}")
        check(not console, "console messages:\n" + "\n".join(console))
    with ctx.subtest("screenshot"):
        shot = os.path.join(vm.LOG_DIR, "status-page.png")
        chromium([f"--screenshot={shot}", url])
        check(os.path.exists(shot) and os.path.getsize(shot) > 10000, f"no screenshot at {shot}")
        ctx.note(f"status page screenshot: {shot}")
    poweroff(m)
