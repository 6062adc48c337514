"""Host side of the network tests (Python stdlib only): free 127.0.0.1
ports, clients for the guest's test services (net/services.c: echo tcp/7,
sum tcp/9, gen tcp/19), and raw Ethernet/IPv4 frame builders for tests that
are the guest's only link partner (qemu socket netdev over UDP on
127.0.0.1).  Every socket has a timeout; every loop is bounded."""
import os
import re
import socket
import struct
import threading
import zlib

import blkutil

LOCALHOST = "127.0.0.1"
GUEST_PORTS = {"echo": 7, "sum": 9, "gen": 19, "iperf": 5001}


def free_ports(n):
    """n distinct currently free TCP/UDP port numbers on 127.0.0.1."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOCALHOST, 0))
            p = s.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((LOCALHOST, p))
            except OSError:
                s.close()
                u.close()
                continue
            socks += [s, u]
            ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


def forwards():
    """{service: host port} and the (host, guest) pairs for vm_nic_args."""
    hp = dict(zip(GUEST_PORTS, free_ports(len(GUEST_PORTS))))
    return hp, [(hp[k], GUEST_PORTS[k]) for k in GUEST_PORTS]


def connect(port, timeout=60):
    return socket.create_connection((LOCALHOST, port), timeout=timeout)


def recv_all(s, limit):
    """Read until EOF or limit bytes (bounded)."""
    out = bytearray()
    while len(out) < limit:
        b = s.recv(min(1 << 16, limit - len(out)))
        if not b:
            break
        out += b
    return bytes(out)


def sum_upload(port, data, timeout=120):
    """Send data to the sum service; returns (guest reply, expected reply)."""
    with connect(port, timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = recv_all(s, 256).decode(errors="replace").strip()
    return reply, f"bytes={len(data)} crc32={zlib.crc32(data):08x}"


def gen_download(port, length, seed, timeout=120):
    """Ask the gen service for length bytes of pattern seed; returns
    (received bytes, expected bytes)."""
    with connect(port, timeout) as s:
        s.sendall(f"{length} {seed}\n".encode())
        got = recv_all(s, length + 1)
    return got, blkutil.pattern_bytes(seed, 0, length)


def echo_roundtrip(port, data, timeout=120):
    """Send data through the echo service while reading it back in a second
    thread; returns the bytes that came back."""
    s = connect(port, timeout)
    got = bytearray()
    err = []

    def reader():
        try:
            got.extend(recv_all(s, len(data)))
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(data)
        t.join(timeout)
    finally:
        s.close()
    if err:
        raise err[0]
    return bytes(got)


# -- raw frames ----------------------------------------------------------

def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ip_aton(a):
    return socket.inet_aton(a)


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def arp_request(src_mac, src_ip, target_ip):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + ip_aton(src_ip) + b"\0" * 6 + ip_aton(target_ip)
    return eth(b"\xff" * 6, src_mac, 0x0806, body)


def ipv4(src, dst, proto, payload, ident=1, flags_frag=0, ttl=64, ihl=5, total=None, bad_csum=False):
    tl = 20 + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, tl, ident, flags_frag, ttl, proto, 0,
                      ip_aton(src), ip_aton(dst))
    c = csum16(hdr) ^ (0x1234 if bad_csum else 0)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def icmp_echo(ident, seq, data=b"appliance-test"):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return body[:2] + struct.pack("!H", csum16(body)) + body[4:]


def tcp_syn(src, dst, sport, dport, seq):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = ip_aton(src) + ip_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    c = csum16(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def parse_frame(f):
    """(ethertype, payload) of an Ethernet frame, or (None, b"")."""
    if len(f) < 14:
        return None, b""
    return struct.unpack("!H", f[12:14])[0], f[14:]


class L2Peer:
    """The guest's only link partner over a qemu socket netdev in UDP mode:
    frames go to qemu's UDP port and come back to ours, one per datagram."""

    def __init__(self):
        self.my_port, self.qemu_port = free_ports(2)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, self.my_port))
        self.sock.settimeout(0.2)

    def netdev(self, nic_id="net0"):
        return (f"socket,id={nic_id},udp={LOCALHOST}:{self.my_port},"
                f"localaddr={LOCALHOST}:{self.qemu_port}")

    def send(self, frame):
        self.sock.sendto(frame, (LOCALHOST, self.qemu_port))

    def recv_until(self, match, timeout):
        """First received frame for which match(frame) is true, or None
        after timeout seconds."""
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if match(f):
                return f
        return None

    def close(self):
        self.sock.close()


def boot_file_server(m, img, port, config, size="256M"):
    """Boot m with one NVMe disk (image img) and the file protocol's
    tcp/2049 forwarded from 127.0.0.1:port on virtio-net; returns the
    server's "proto: file server on tcp/2049: ..." line."""
    import harness
    from harness import vm
    out = harness.boot_to_prompt(m, smp=2, nic=vm.vm_nic_args("virtio", [(port, 2049)]),
                                 disks=[{"kind": "nvme", "path": img, "size": size}], config=config)
    pat = r"^proto: file server on tcp/2049: [^\n]*"
    mt = re.search(pat, out, re.M) or m.expect(pat, 60)
    return mt.group(0)
