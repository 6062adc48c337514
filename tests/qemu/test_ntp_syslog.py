"""Network time and remote logging against servers on the host (127.0.0.1,
reached from the guest as qemu user networking's 10.0.2.2): an SNTP server
that answers one hour ahead sets the guest's clock (and `date` says so), and
a syslog listener receives the kernel log as RFC 5424 messages, including a
line typed at the shell.  Both servers are bounded in time."""
import calendar
import re
import socket
import struct
import threading
import time

import netutil
from harness import qemu_test, check, boot_to_prompt, shell, vm, poweroff

NTP_EPOCH_OFFSET = 2208988800        # seconds from 1900 to 1970
SKEW = 3600                          # the test server's clock runs an hour ahead


class SntpServer(threading.Thread):
    """Answers SNTP requests on 127.0.0.1:port with host time + SKEW, copying
    the client's transmit timestamp into the originate field as RFC 4330
    requires (lwIP checks it)."""

    def __init__(self, port, seconds=120):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.deadline = time.monotonic() + seconds
        self.requests = 0

    @staticmethod
    def stamp(t):
        sec = int(t) + NTP_EPOCH_OFFSET
        return struct.pack("!II", sec & 0xffffffff, int((t % 1) * (1 << 32)))

    def run(self):
        while time.monotonic() < self.deadline:
            try:
                data, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(data) < 48:
                continue
            self.requests += 1
            now = time.time() + SKEW
            # LI 0, version 4, mode 4 (server); stratum 1; poll; precision;
            # root delay/dispersion; reference id; then the four timestamps.
            reply = struct.pack("!BBbb", (0 << 6) | (4 << 3) | 4, 1, 6, -20) + b"\0" * 8 + b"TEST"
            reply += self.stamp(now) + data[40:48] + self.stamp(now) + self.stamp(now)
            self.sock.sendto(reply, addr)
        self.sock.close()


@qemu_test(weight=2)
def ntp_sets_clock(ctx):
    port = netutil.free_ports(1)[0]
    srv = SntpServer(port)
    srv.start()
    m = ctx.machine()
    boot_to_prompt(m, nic=vm.vm_nic_args("e1000e", []), config=[f"ntp = 10.0.2.2:{port}"])
    with ctx.subtest("clock_set"):
        # The answer may arrive during boot or after the prompt: look at all
        # the output so far, then wait for more (bounded).
        rx = r"ntp: clock set to .* \(moved \+3[56]\d\d\.\d{3} s\)"
        if not re.search(rx, m.output(0, len(m.buf))):
            m.expect(rx, 60)
        out = shell(m, "date")
        d = re.search(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.\d{3} UTC \(clock from SNTP\)$", out, re.M)
        check(d, f"date after SNTP: {out!r}")
        guest = calendar.timegm(tuple(int(x) for x in d.groups()) + (0, 0, 0))
        check(abs(guest - (time.time() + SKEW)) < 60, f"guest {out.strip()!r} vs server {time.time() + SKEW:.0f}")
        check(re.search(r"^last set \d+ s ago, moved by \+3[56]\d\d\.\d{3} s$", out, re.M), f"date: {out!r}")
        check(srv.requests >= 1, "the server saw no request")
    poweroff(m)


@qemu_test(weight=2)
def syslog_remote(ctx):
    port = netutil.free_ports(1)[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(1)
    m = ctx.machine()
    try:
        boot_to_prompt(m, nic=vm.vm_nic_args("e1000e", []), config=[f"syslog = 10.0.2.2:{port}"],
                       args="smpp=1")
        shell(m, "echo syslog-test-line 1234")
        got, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline and not any("syslog-test-line 1234" in g for g in got):
            try:
                got.append(sock.recv(2048).decode(errors="replace"))
            except socket.timeout:
                pass
    finally:
        sock.close()
    rx = re.compile(r"^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) kernel - - - (.+)$")
    with ctx.subtest("rfc5424"):
        check(got, "no syslog datagram arrived")
        bad = [g for g in got if not rx.match(g)]
        check(not bad, "not RFC 5424:\n" + "\n".join(bad[:5]))
    with ctx.subtest("boot_log_and_shell_line"):
        msgs = [rx.match(g).group(4) for g in got if rx.match(g)]
        check(any(x.startswith("appliance kernel") for x in msgs), "the boot banner was not sent")
        check(any("syslog-test-line 1234" in x for x in msgs), "the shell's echo line was not sent")
    with ctx.subtest("severity"):
        pri = {rx.match(g).group(4): int(rx.match(g).group(1)) for g in got if rx.match(g)}
        unknown = [p for x, p in pri.items() if "unknown boot argument" in x]
        check(unknown and unknown[0] == 6, f"info line priority {unknown}")
        check(all(p in (3, 6) for p in pri.values()), f"priorities {set(pri.values())}")
    poweroff(m)
