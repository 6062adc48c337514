"""The test is the guest's only link partner (qemu socket netdev over UDP on
127.0.0.1, no DHCP server): DHCP times out and the configured fallback
address is used (boot report says so); mDNS announces the configured
hostname as <hostname>.local and answers a query for it; then a bounded barrage of
malformed, oversized and hostile frames (runts, jumbo frames, broken IPv4
headers, never-completed fragments, broken TCP/UDP, junk for the mDNS
parser, a burst of half-open TCP connections) leaves the appliance answering
ARP, ping and new TCP connections, with the drops counted."""
import random
import re
import struct
import time

import netutil
from netutil import eth, ipv4, parse_frame
from harness import qemu_test, check, boot_to_prompt, shell, vm

PEER_MAC = bytes.fromhex("020000000002")
PEER_IP, GUEST_IP = "10.0.3.2", "10.0.3.15"
CONFIG = ["ip = 10.0.3.15", "netmask = 255.255.255.0", "gateway = 10.0.3.2", "hostname = files-01"]
DEVNAME = {"virtio": "vnet0", "e1000e": "em0"}


def is_arp_reply_from(ip):
    def match(f):
        et, p = parse_frame(f)
        return et == 0x0806 and len(p) >= 28 and struct.unpack("!H", p[6:8])[0] == 2 and p[14:18] == netutil.ip_aton(ip)
    return match


def is_icmp_reply(ident, seq):
    def match(f):
        et, p = parse_frame(f)
        if et != 0x0800 or len(p) < 28 or p[9] != 1:
            return False
        ihl = (p[0] & 15) * 4
        return p[ihl] == 0 and struct.unpack("!HH", p[ihl + 4:ihl + 8]) == (ident, seq)
    return match


def is_synack(dport):
    def match(f):
        et, p = parse_frame(f)
        if et != 0x0800 or len(p) < 40 or p[9] != 6:
            return False
        ihl = (p[0] & 15) * 4
        sport, dp = struct.unpack("!HH", p[ihl:ihl + 4])
        return dp == dport and sport == 7 and p[ihl + 13] & 0x12 == 0x12
    return match


def expect_seen(m, regex, timeout):
    """regex in the output so far (it may precede the prompt), else wait."""
    if not re.search(regex, m.output()):
        m.expect(regex, timeout)


def ping(peer, guest_mac, ident, seq, timeout=5):
    peer.send(eth(guest_mac, PEER_MAC, 0x0800, ipv4(PEER_IP, GUEST_IP, 1, netutil.icmp_echo(ident, seq))))
    return peer.recv_until(is_icmp_reply(ident, seq), timeout)


def syn(peer, guest_mac, sport, seq=1000):
    peer.send(eth(guest_mac, PEER_MAC, 0x0800,
                  ipv4(PEER_IP, GUEST_IP, 6, netutil.tcp_syn(PEER_IP, GUEST_IP, sport, 7, seq))))


def hostile_frames(guest_mac, rnd):
    """A fixed, bounded list (a few thousand frames)."""
    out = []
    g, p = GUEST_IP, PEER_IP
    to = lambda et, payload: eth(guest_mac, PEER_MAC, et, payload)  # noqa: E731
    out += [rnd.randbytes(n) for n in range(1, 14)]                                  # runts
    out += [to(0x0800, ipv4(p, g, 17, rnd.randbytes(n))) for n in (1600, 4000, 9000)]  # oversized
    icmp = netutil.icmp_echo(9, 9)
    out += [to(0x0800, ipv4(p, g, 1, icmp, ihl=3)),                        # header length < 20
            to(0x0800, ipv4(p, g, 1, icmp, ihl=15)),                       # header longer than packet
            to(0x0800, ipv4(p, g, 1, icmp, total=1400)),                   # total length past frame
            to(0x0800, ipv4(p, g, 1, icmp, total=10)),                     # total length < header
            to(0x0800, ipv4(p, g, 1, icmp, bad_csum=True)),                # bad header checksum
            to(0x0800, b"\x60" + rnd.randbytes(39)),                       # IPv6 version on 0x0800
            to(0x0800, ipv4(p, g, 1, icmp[:5]))]                           # truncated ICMP
    # Fragments never completed (reassembly must give up, bounded), overlapping ones.
    for i in range(300):
        out.append(to(0x0800, ipv4(p, g, 17, rnd.randbytes(512), ident=1000 + i, flags_frag=0x2000)))
    for off in (0, 8, 4, 0, 2):
        out.append(to(0x0800, ipv4(p, g, 17, rnd.randbytes(64), ident=7, flags_frag=0x2000 | off)))
    # Broken TCP: data offset too small/large, bad checksum, all flags set.
    for doff, flags, fix in ((2, 0x02, True), (15, 0x02, True), (5, 0x02, False), (5, 0x3f, True)):
        hdr = bytearray(netutil.tcp_syn(p, g, 40000 + doff, 7, 5))
        hdr[12] = doff << 4
        hdr[13] = flags
        if fix:
            hdr[16:18] = b"\0\0"
            pseudo = netutil.ip_aton(p) + netutil.ip_aton(g) + struct.pack("!BBH", 0, 6, len(hdr))
            hdr[16:18] = struct.pack("!H", netutil.csum16(pseudo + bytes(hdr)))
        out.append(to(0x0800, ipv4(p, g, 6, bytes(hdr))))
    # UDP with a lying length, junk at the mDNS parser, random IPv4 junk.
    out.append(to(0x0800, ipv4(p, g, 17, struct.pack("!HHHH", 5353, 5353, 900, 0) + rnd.randbytes(40))))
    for _ in range(200):
        body = rnd.randbytes(rnd.randrange(12, 600))
        out.append(eth(bytes.fromhex("01005e0000fb"), PEER_MAC, 0x0800,
                       ipv4(p, "224.0.0.251", 17, struct.pack("!HHHH", 5353, 5353, 8 + len(body), 0) + body)))
    for _ in range(300):
        out.append(to(0x0800, bytes([0x45]) + rnd.randbytes(rnd.randrange(19, 1400))))
    for _ in range(100):
        out.append(to(rnd.choice([0x0806, 0x86dd, 0x8100, 0x88cc]), rnd.randbytes(rnd.randrange(0, 1400))))
    return out


def net_l2_test(ctx, model):
    dev = DEVNAME[model]
    peer = netutil.L2Peer()
    try:
        m = ctx.machine(model)
        boot = boot_to_prompt(m, nic=vm.vm_nic_args(model, netdev=peer.netdev()), config=CONFIG,
                              args="net.dhcp_timeout=2")

        with ctx.subtest("dhcp_discovers"):
            def is_discover(f):
                et, p = parse_frame(f)
                return et == 0x0800 and len(p) > 28 + 240 and p[9] == 17 and p[22:24] == b"\x00\x43" \
                    and p[28 + 236:28 + 240] == b"\x63\x82\x53\x63"
            f = peer.recv_until(is_discover, 30)
            check(f is not None, "no DHCP discover from the guest")
            check(f[14 + 28 + 28:14 + 28 + 34] == f[6:12], "DHCP discover does not carry the NIC's MAC")

        with ctx.subtest("static_fallback"):
            expect_seen(m, rf"net: {dev}: no DHCP answer in time, using the configured fallback address", 60)
            expect_seen(m, rf"net: {dev} 10\.0\.3\.15/255\.255\.255\.0 gw 10\.0\.3\.2 \(address, netmask and "
                     r"gateway: static fallback, DHCP timed out\), mdns files-01\.local", 30)
            out = shell(m, "ifconfig", 30)
            check(re.search(r"inet 10\.0\.3\.15 netmask 255\.255\.255\.0 gateway 10\.0\.3\.2 \(static fallback",
                            out), f"ifconfig does not show the fallback address:\n{out}")

        with ctx.subtest("mdns_announces_hostname"):
            def is_mdns(f):
                et, p = parse_frame(f)
                return et == 0x0800 and len(p) > 28 and p[9] == 17 and p[16:20] == bytes([224, 0, 0, 251]) \
                    and b"\x08files-01\x05local" in p
            check(peer.recv_until(is_mdns, 30) is not None, "no mDNS announcement of files-01.local")

        with ctx.subtest("arp_and_ping"):
            peer.send(netutil.arp_request(PEER_MAC, PEER_IP, GUEST_IP))
            f = peer.recv_until(is_arp_reply_from(GUEST_IP), 10)
            check(f is not None, "no ARP reply for 10.0.3.15")
            global_mac = f[6:12]
            check(ping(peer, global_mac, 0x77, 1) is not None, "no echo reply before the barrage")
        mac = global_mac

        with ctx.subtest("mdns_answers_query"):
            # A one-shot query (source port not 5353): answered by unicast to us,
            # whose MAC the guest learnt from our ARP request.
            q = struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0) + b"\x08files-01\x05local\x00" + struct.pack("!HH", 1, 1)
            udp = struct.pack("!HHHH", 40053, 5353, 8 + len(q), 0) + q

            def is_answer(f):
                et, p = parse_frame(f)
                if et != 0x0800 or len(p) < 28 or p[9] != 17:
                    return False
                ihl = (p[0] & 15) * 4
                dns = p[ihl + 8:]
                # Unicast to our port, not one of the periodic announcements.
                return p[ihl + 2:ihl + 4] == struct.pack("!H", 40053) and len(dns) > 12 and dns[2] & 0x80 and b"\x08files-01\x05local" in dns and \
                    netutil.ip_aton(GUEST_IP) in dns
            # The responder answers once probing and announcing are over
            # (about 2 s after the address is set): up to 6 queries, 2 s apart.
            got = None
            for _ in range(6):
                peer.send(eth(bytes.fromhex("01005e0000fb"), PEER_MAC, 0x0800,
                              ipv4(PEER_IP, "224.0.0.251", 17, udp)))
                got = peer.recv_until(is_answer, 2)
                if got:
                    break
            check(got is not None, "no unicast mDNS answer with 10.0.3.15 for files-01.local")

        with ctx.subtest("hostile_frames_leave_it_serving"):
            rnd = random.Random(1234)
            frames = hostile_frames(mac, rnd)
            t0 = time.monotonic()
            for i, f in enumerate(frames):
                peer.send(f)
                if i % 64 == 63:
                    time.sleep(0.01)          # bounded pacing: the UDP socket must not overflow
            # A burst of half-open connections: SYNs never completed.
            for i in range(300):
                syn(peer, mac, 20000 + i)
                if i % 64 == 63:
                    time.sleep(0.01)
            ctx.note(f"{model}: sent {len(frames)} hostile frames and 300 SYNs in {time.monotonic() - t0:.1f} s")
            # A frame can be lost while the receive ring is still full of
            # the barrage: up to 5 pings, 4 s each.
            if not any(ping(peer, mac, 0x77, 2 + k, 4) is not None for k in range(5)):
                raise AssertionError("no echo reply after the barrage:\n" + shell(m, "ifconfig -v", 30)
                                     + shell(m, "netstat", 30)[-1500:])
            # A new connection is answered within a bounded time, even though
            # the burst filled the listener's backlog.
            got = None
            deadline = time.monotonic() + 30
            sport = 30000
            while got is None and time.monotonic() < deadline:
                syn(peer, mac, sport)
                got = peer.recv_until(is_synack(sport), 2)
                sport += 1
            check(got is not None, "no SYN-ACK for a new connection within 30 s after the half-open burst")
            out = shell(m, "netstat", 30)
            mt = re.search(r"half-open connections aborted: (\d+)", out)
            check(mt and int(mt.group(1)) > 0, f"netstat does not count aborted half-open connections:\n{out[-600:]}")
            check(re.search(r"^  ip\s+xmit \d+ recv \d+ drop [1-9]\d*", out, re.M) or
                  re.search(r"^  ip\s+.*(chkerr|lenerr|proterr) [1-9]", out, re.M),
                  f"netstat shows no dropped IP packets:\n{out}")
            out = shell(m, "echo alive", 30)
            check("alive" in out, "shell does not answer after the barrage")
    finally:
        peer.close()


@qemu_test(weight=3)
def net_l2_virtio(ctx):
    net_l2_test(ctx, "virtio")


@qemu_test(weight=3)
def net_l2_e1000e(ctx):
    net_l2_test(ctx, "e1000e")
