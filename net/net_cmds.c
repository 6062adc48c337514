/*
 * Network shell commands: ifconfig, netstat, arp, ping, and `bench net`
 * (lwIP's lwiperf server, iperf2 protocol).  Every lwIP access is under
 * net_lock; every wait has a deadline.
 */
#include "net/net.h"
#include "drivers/net/netdev.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/shell.h"
#include "kernel/time.h"

#include "lwip/apps/lwiperf.h"
#include "lwip/etharp.h"
#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip4_addr.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/ip4.h"
#include "lwip/raw.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

static const char *ip_str(const ip4_addr_t *a, char *buf)
{
	return ip4addr_ntoa_r(a, buf, 16);
}

/* ---- ifconfig ---------------------------------------------------------- */

static void ifconfig_one(struct net_if *nif, bool verbose)
{
	struct netdev *d = nif->dev;
	struct netif *n = nif->netif;
	char mac[18], ip[16], mask[16], gw[16];
	kprintf("%s: %s mac %s mtu %u link %s state %s\n", d->name, d->model, netdev_mac_str(d->mac, mac),
		d->mtu, d->link_up ? "up" : "down", netdev_state_name(d->state));
	net_lock();
	kprintf("  inet %s netmask %s gateway %s (%s) hostname %s\n", ip_str(netif_ip4_addr(n), ip),
		ip_str(netif_ip4_netmask(n), mask), ip_str(netif_ip4_gw(n), gw), net_src_name(nif->src),
		net_hostname());
	net_unlock();
	kprintf("  rx packets %llu bytes %llu drops %llu errors %llu irqs %llu doorbells %llu (no pbuf %llu)\n",
		(unsigned long long)d->rx.packets, (unsigned long long)d->rx.bytes,
		(unsigned long long)d->rx.drops, (unsigned long long)d->rx.errors,
		(unsigned long long)d->rx.irqs, (unsigned long long)d->rx.doorbells,
		(unsigned long long)nif->rx_nobuf);
	kprintf("  tx packets %llu bytes %llu drops %llu errors %llu irqs %llu doorbells %llu "
		"(ring full waits %llu, dropped %llu)\n",
		(unsigned long long)d->tx.packets, (unsigned long long)d->tx.bytes,
		(unsigned long long)d->tx.drops, (unsigned long long)d->tx.errors,
		(unsigned long long)d->tx.irqs, (unsigned long long)d->tx.doorbells,
		(unsigned long long)nif->tx_busy_waits,
		(unsigned long long)nif->tx_drops);
	kprintf("  link changes %llu, stalls %llu, resets %llu, last error: %s\n",
		(unsigned long long)d->link_changes, (unsigned long long)d->stalls,
		(unsigned long long)d->resets, d->error[0] ? d->error : "none");
	if (verbose && d->ops->describe)
		d->ops->describe(d);
}

static int cmd_ifconfig(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[2], "stall")) {
		struct netdev *d = netdev_find(argv[1]);
		if (!d) {
			kprintf("ifconfig: no interface '%s'\n", argv[1]);
			return 1;
		}
		netdev_inject_stall(d);
		return 0;
	}
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");
	if (argc > 2 || (argc == 2 && !verbose)) {
		kprintf("ifconfig: unknown argument '%s': want -v, or DEV stall\n", argv[argc - 1]);
		return 1;
	}
	if (!net_if_count()) {
		kprintf("ifconfig: no interfaces (%u NICs found; net = none or no NIC)\n", netdev_count());
		return 0;
	}
	for (unsigned i = 0; i < net_if_count(); i++)
		ifconfig_one(net_if_at(i), verbose);
	return 0;
}
SHELL_COMMAND(ifconfig, "ifconfig [-v] | ifconfig DEV stall",
	      "NICs: addresses, link, counters; 'stall' injects a TX stall", cmd_ifconfig);

/* ---- netstat ----------------------------------------------------------- */

static const char *const tcp_states[] = {
	"CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2",
	"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT",
};

static const char *const memp_names[] = {
#define LWIP_MEMPOOL(name, num, size, desc) desc,
#include "lwip/priv/memp_std.h"
};

static void netstat_proto(const char *name, const struct stats_proto *p)
{
	kprintf("  %-6s xmit %u recv %u drop %u chkerr %u lenerr %u memerr %u rterr %u proterr %u opterr %u err %u\n",
		name, p->xmit, p->recv, p->drop, p->chkerr, p->lenerr, p->memerr, p->rterr, p->proterr,
		p->opterr, p->err);
}

static void netstat_mem(const char *name, const struct stats_mem *m)
{
	kprintf("  %-16s avail %u used %u max %u failed %u\n", name, (unsigned)m->avail, (unsigned)m->used,
		(unsigned)m->max, m->err);
}

static int cmd_netstat(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		kprintf("netstat: takes no arguments\n");
		return 1;
	}
	if (!net_if_count()) {
		kprintf("netstat: network is not up\n");
		return 0;
	}
	char a[16], b[16];
	unsigned shown = 0, more = 0;
	net_lock();
	kprintf("tcp connections:\n");
	for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l; l = l->next)
		kprintf("  tcp %s:%u LISTEN backlog %u/%u\n", ip_str(ip_2_ip4(&l->local_ip), a), l->local_port,
			l->accepts_pending, l->backlog);
	struct tcp_pcb *lists[2] = { tcp_active_pcbs, tcp_tw_pcbs };
	for (unsigned k = 0; k < 2; k++)
		for (struct tcp_pcb *p = lists[k]; p; p = p->next) {
			if (shown++ >= 64) {
				more++;
				continue;
			}
			kprintf("  tcp %s:%u %s:%u %s sndq %u rcvwnd %u sndwnd %u cwnd %u rto %d ms rtx %u\n",
				ip_str(ip_2_ip4(&p->local_ip), a), p->local_port, ip_str(ip_2_ip4(&p->remote_ip), b),
				p->remote_port, p->state < ARRAY_SIZE(tcp_states) ? tcp_states[p->state] : "?",
				(unsigned)tcp_sndqueuelen(p), (unsigned)p->rcv_wnd, (unsigned)p->snd_wnd,
				(unsigned)p->cwnd, p->rto * TCP_SLOW_INTERVAL, (unsigned)p->nrtx);
		}
	if (more)
		kprintf("  ... and %u more\n", more);
	kprintf("udp sockets:\n");
	for (struct udp_pcb *u = udp_pcbs; u; u = u->next)
		kprintf("  udp %s:%u\n", ip_str(ip_2_ip4(&u->local_ip), a), u->local_port);
	kprintf("protocols:\n");
	netstat_proto("link", &lwip_stats.link);
	netstat_proto("etharp", &lwip_stats.etharp);
	netstat_proto("ip", &lwip_stats.ip);
	netstat_proto("ipfrag", &lwip_stats.ip_frag);
	netstat_proto("icmp", &lwip_stats.icmp);
	netstat_proto("udp", &lwip_stats.udp);
	netstat_proto("tcp", &lwip_stats.tcp);
	kprintf("memory (max = high-water mark, failed = allocations refused):\n");
	netstat_mem("heap", &lwip_stats.mem);
	for (unsigned i = 0; i < MEMP_MAX; i++)
		netstat_mem(memp_names[i], lwip_stats.memp[i]);
	net_unlock();
	uint64_t acc, ref, idle, err;
	unsigned open;
	net_services_stats(&acc, &ref, &idle, &err, &open);
	kprintf("services: open %u accepted %llu refused (pool full) %llu idle drops %llu bad requests %llu\n",
		open, (unsigned long long)acc, (unsigned long long)ref, (unsigned long long)idle,
		(unsigned long long)err);
	kprintf("half-open connections aborted: %llu\n", (unsigned long long)net_half_open_reaped_count());
	return 0;
}
SHELL_COMMAND(netstat, "netstat", "TCP/UDP sockets, protocol counters, lwIP memory with high-water marks",
	      cmd_netstat);

/* ---- arp --------------------------------------------------------------- */

static int cmd_arp(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		kprintf("arp: takes no arguments\n");
		return 1;
	}
	if (!net_if_count()) {
		kprintf("arp: network is not up\n");
		return 0;
	}
	unsigned n = 0;
	net_lock();
	for (size_t i = 0; i < ARP_TABLE_SIZE; i++) {
		ip4_addr_t *ip;
		struct netif *nif;
		struct eth_addr *eth;
		if (!etharp_get_entry(i, &ip, &nif, &eth))
			continue;
		char a[16], mac[18];
		kprintf("%-15s %s %c%c%u\n", ip_str(ip, a), netdev_mac_str(eth->addr, mac), nif->name[0],
			nif->name[1], nif->num);
		n++;
	}
	net_unlock();
	kprintf("%u entries\n", n);
	return 0;
}
SHELL_COMMAND(arp, "arp", "the ARP cache", cmd_arp);

/* ---- ping -------------------------------------------------------------- */

#define PING_ID 0xa77e
#define PING_DATA 56

static struct {
	volatile uint16_t seq_seen;      /* last matching sequence received */
	volatile uint64_t reply_ns;
	ip4_addr_t target;
} ping_state;

static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
	(void)arg;
	(void)pcb;
	struct icmp_echo_hdr h;
	if (!ip4_addr_cmp(ip_2_ip4(addr), &ping_state.target) || p->tot_len < IP_HLEN + sizeof(h))
		return 0;
	u16_t ihl = (u16_t)((*(u8_t *)p->payload & 0xf) * 4);
	if (pbuf_copy_partial(p, &h, sizeof(h), ihl) != sizeof(h))
		return 0;
	if (h.type != ICMP_ER || h.id != PP_HTONS(PING_ID))
		return 0;
	ping_state.reply_ns = time_ns();
	__atomic_store_n(&ping_state.seq_seen, lwip_ntohs(h.seqno), __ATOMIC_RELEASE);
	pbuf_free(p);
	return 1;
}

static int ping_send(struct raw_pcb *pcb, uint16_t seq)
{
	struct pbuf *p = pbuf_alloc(PBUF_IP, sizeof(struct icmp_echo_hdr) + PING_DATA, PBUF_RAM);
	if (!p)
		return -ENOMEM;
	struct icmp_echo_hdr *h = p->payload;
	ICMPH_TYPE_SET(h, ICMP_ECHO);
	ICMPH_CODE_SET(h, 0);
	h->id = PP_HTONS(PING_ID);
	h->seqno = lwip_htons(seq);
	h->chksum = 0;
	for (unsigned i = 0; i < PING_DATA; i++)
		((uint8_t *)(h + 1))[i] = (uint8_t)i;
	h->chksum = inet_chksum(h, (u16_t)p->len);
	ip_addr_t dst;
	ip_addr_copy_from_ip4(dst, ping_state.target);
	err_t e = raw_sendto(pcb, p, &dst);
	pbuf_free(p);
	return e == ERR_OK ? 0 : -EIO;
}

static bool ping_got(void *arg)
{
	return __atomic_load_n(&ping_state.seq_seen, __ATOMIC_ACQUIRE) == (uint16_t)(uintptr_t)arg;
}

static int cmd_ping(int argc, char **argv)
{
	unsigned long long count = 4;
	if (argc < 2 || argc > 3)
		return -EINVAL;
	unsigned dots = 0;
	for (const char *c = argv[1]; *c; c++)
		dots += *c == '.';
	if (dots != 3 || !ip4addr_aton(argv[1], &ping_state.target)) {
		kprintf("ping: HOST '%s' is not a dotted IPv4 address\n", argv[1]);
		return 1;
	}
	if (argc == 3 && (parse_u64(argv[2], &count) < 0 || count == 0 || count > 1000)) {
		kprintf("ping: count '%s' must be 1..1000\n", argv[2]);
		return 1;
	}
	if (!net_if_count()) {
		kprintf("ping: network is not up\n");
		return 1;
	}
	net_lock();
	struct raw_pcb *pcb = raw_new(IP_PROTO_ICMP);
	if (pcb)
		raw_recv(pcb, ping_recv, NULL);
	net_unlock();
	if (!pcb) {
		kprintf("ping: no raw pcb available\n");
		return 1;
	}
	unsigned sent = 0, got = 0;
	uint64_t min = UINT64_MAX, max = 0, sum = 0;
	for (unsigned i = 0; i < count; i++) {
		uint16_t seq = (uint16_t)(i + 1);
		uint64_t t0 = time_ns();
		net_lock();
		int rc = ping_send(pcb, seq);
		net_unlock();
		if (rc < 0) {
			kprintf("ping: seq %u: cannot send: %s\n", seq, strerror(rc));
		} else {
			sent++;
			/* The reply arrives on the network thread; poll the flag
			 * in 250 us steps up to a 1 s deadline. */
			uint64_t deadline = t0 + NS_PER_S;
			while (!ping_got((void *)(uintptr_t)seq) && time_ns() < deadline)
				thread_sleep_ns(NS_PER_MS / 4);
			if (ping_got((void *)(uintptr_t)seq)) {
				uint64_t rtt = ping_state.reply_ns - t0;
				got++;
				sum += rtt;
				min = MIN(min, rtt);
				max = MAX(max, rtt);
				kprintf("reply from %s: seq=%u time=%llu.%03llu ms\n", argv[1], seq,
					(unsigned long long)(rtt / NS_PER_MS),
					(unsigned long long)(rtt % NS_PER_MS / 1000));
			} else {
				kprintf("no reply from %s: seq=%u (timeout 1000 ms)\n", argv[1], seq);
			}
		}
		if (i + 1 < count) {
			uint64_t next = t0 + 200 * NS_PER_MS;
			if (time_ns() < next)
				thread_sleep_ns(next - time_ns());
		}
	}
	net_lock();
	raw_remove(pcb);
	net_unlock();
	kprintf("ping %s: %u sent, %u received", argv[1], sent, got);
	if (got)
		kprintf(", rtt min/avg/max %llu/%llu/%llu us", (unsigned long long)(min / 1000),
			(unsigned long long)(sum / got / 1000), (unsigned long long)(max / 1000));
	kprintf("\n");
	return got ? 0 : 1;
}
SHELL_COMMAND(ping, "ping HOST [COUNT]", "ICMP echo with round-trip times (HOST: dotted IPv4)", cmd_ping);

/* ---- bench net (lwiperf) ----------------------------------------------- */

static void *iperf_session;
static volatile unsigned iperf_reports;
static struct {
	int type;
	char remote[16];
	uint32_t bytes, ms, kbps;
} iperf_last;

static const char *iperf_type(int t)
{
	switch (t) {
	case LWIPERF_TCP_DONE_SERVER: return "rx";          /* host sent to us */
	case LWIPERF_TCP_DONE_CLIENT: return "tx";
	case LWIPERF_TCP_ABORTED_LOCAL: return "aborted-local";
	case LWIPERF_TCP_ABORTED_REMOTE: return "aborted-remote";
	case LWIPERF_TCP_ABORTED_LOCAL_DATAERROR: return "data-error";
	case LWIPERF_TCP_ABORTED_LOCAL_TXERROR: return "tx-error";
	}
	return "?";
}

static void iperf_report(void *arg, enum lwiperf_report_type type, const ip_addr_t *local, u16_t lport,
			 const ip_addr_t *remote, u16_t rport, u32_t bytes, u32_t ms, u32_t kbps)
{
	(void)arg;
	(void)local;
	(void)lport;
	(void)rport;
	iperf_last.type = type;
	ip4addr_ntoa_r(ip_2_ip4(remote), iperf_last.remote, sizeof(iperf_last.remote));
	iperf_last.bytes = bytes;
	iperf_last.ms = ms;
	iperf_last.kbps = kbps;
	__atomic_add_fetch(&iperf_reports, 1, __ATOMIC_RELEASE);
}

/* The client side (`bench net tx=...`): lwiperf's clients send for a fixed
 * 10 s (lwiperf 2.1.3 sets the amount itself); one report per stream.
 * Reports carry their run's number, so a stream of an earlier run that
 * outlived its wait cannot count in a later one. */
#define IPERF_TX_MAX_STREAMS 8
static struct {
	uintptr_t run;
	uint32_t done, failed, bytes, ms_max;
	int last_failure;
} iperf_tx;
/* The shell thread sleeps here until the last stream reports: polling the
 * counters under net_lock would contend with the network thread for the
 * lock it holds nearly all the time during a run (docs/network.md). */
static struct waitq iperf_tx_wq = WAITQ_INIT("iperf-tx");
static volatile uint32_t iperf_tx_done_of_run;

static void iperf_tx_report(void *arg, enum lwiperf_report_type type, const ip_addr_t *local, u16_t lport,
			    const ip_addr_t *remote, u16_t rport, u32_t bytes, u32_t ms, u32_t kbps)
{
	(void)local;
	(void)lport;
	(void)remote;
	(void)rport;
	(void)kbps;
	/* Called under net_lock, as is every reader. */
	if ((uintptr_t)arg != iperf_tx.run)
		return;
	if (type == LWIPERF_TCP_DONE_CLIENT) {
		iperf_tx.bytes += bytes;
		if (ms > iperf_tx.ms_max)
			iperf_tx.ms_max = ms;
	} else {
		iperf_tx.failed++;
		iperf_tx.last_failure = type;
	}
	iperf_tx.done++;
	__atomic_store_n(&iperf_tx_done_of_run, iperf_tx.done, __ATOMIC_RELEASE);
	waitq_wake_all(&iperf_tx_wq);
}

static bool iperf_tx_finished(void *arg)
{
	return __atomic_load_n(&iperf_tx_done_of_run, __ATOMIC_ACQUIRE) >= (uint32_t)(uintptr_t)arg;
}

/* "A.B.C.D:PORT" -> address and port; false when it is not one. */
static bool parse_ip_port(const char *text, ip_addr_t *addr, u16_t *port)
{
	char host[16];
	const char *colon = strchr(text, ':');
	unsigned long long p;
	size_t n = colon ? (size_t)(colon - text) : 0;
	unsigned dots = 0;
	if (!colon || n == 0 || n >= sizeof(host) || parse_u64(colon + 1, &p) < 0 || p == 0 || p > 65535)
		return false;
	memcpy(host, text, n);
	host[n] = 0;
	for (size_t i = 0; i < n; i++)
		dots += host[i] == '.';
	if (dots != 3 || !ip4addr_aton(host, ip_2_ip4(addr)))
		return false;
	IP_SET_TYPE(addr, IPADDR_TYPE_V4);
	*port = (u16_t)p;
	return true;
}

/* Send to an iperf2 server (`iperf -s`) with `streams` connections at
 * once and print their sum: bytes acknowledged over the longest stream's
 * time. */
static int bench_net_tx(const ip_addr_t *addr, u16_t port, unsigned streams, unsigned long long secs)
{
	void *sessions[IPERF_TX_MAX_STREAMS] = { 0 };
	unsigned started = 0;
	char remote[16];
	ip4addr_ntoa_r(ip_2_ip4(addr), remote, sizeof(remote));
	net_lock();
	uintptr_t run = iperf_tx.run + 1;
	memset(&iperf_tx, 0, sizeof(iperf_tx));
	iperf_tx.run = run;
	__atomic_store_n(&iperf_tx_done_of_run, 0, __ATOMIC_RELEASE);
	for (; started < streams; started++) {
		sessions[started] = lwiperf_start_tcp_client(addr, port, LWIPERF_CLIENT, iperf_tx_report, (void *)run);
		if (!sessions[started])
			break;
	}
	if (started < streams) {
		/* No callback ran since the starts (the lock is held), so every
		 * started session is still alive to abort. */
		for (unsigned i = 0; i < started; i++)
			lwiperf_abort(sessions[i]);
		iperf_tx.run++;
	}
	net_unlock();
	if (started < streams) {
		kprintf("bench net: could start only %u of %u iperf clients to %s:%u (lwIP out of memory "
			"or connections)\n", started, streams, remote, port);
		return 1;
	}
	kprintf("bench net: %u iperf2 client(s) sending to %s:%u for 10 s, waiting up to %llu s\n", streams, remote,
		port, secs);
	uint64_t deadline = time_ns() + secs * NS_PER_S;
	uint32_t done = 0, bytes = 0, ms = 0, failed = 0;
	int failure = 0;
	waitq_wait_until(&iperf_tx_wq, iperf_tx_finished, (void *)(uintptr_t)streams, deadline);
	net_lock();
	done = iperf_tx.done;
	bytes = iperf_tx.bytes;
	ms = iperf_tx.ms_max;
	failed = iperf_tx.failed;
	failure = iperf_tx.last_failure;
	net_unlock();
	if (done < streams) {
		/* The unfinished streams end on their own 10 s clock; their
		 * reports are ignored from now on. */
		net_lock();
		iperf_tx.run++;
		net_unlock();
		kprintf("bench net: %u of %u iperf clients did not finish within %llu s\n", streams - done, streams,
			secs);
		return 1;
	}
	if (failed) {
		kprintf("bench net: %u of %u iperf clients failed: %s\n", failed, streams, iperf_type(failure));
		return 1;
	}
	uint64_t kbps = ms ? (uint64_t)bytes * 8 / ms : 0;
	kprintf("bench net proto=tcp dir=tx remote=%s streams=%u bytes=%u ms=%u mbps=%llu.%llu\n", remote, streams,
		bytes, ms, (unsigned long long)(kbps / 1000), (unsigned long long)(kbps % 1000 / 100));
	return 0;
}

static int bench_net(int argc, char **argv)
{
	unsigned long long secs = 60, streams = 1;
	ip_addr_t tx_addr;
	u16_t tx_port = 0;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "wait=", 5) && parse_u64(argv[i] + 5, &secs) == 0 && secs >= 1 && secs <= 3600)
			continue;
		if (!strncmp(argv[i], "tx=", 3) && parse_ip_port(argv[i] + 3, &tx_addr, &tx_port))
			continue;
		if (!strncmp(argv[i], "streams=", 8) && parse_u64(argv[i] + 8, &streams) == 0 && streams >= 1 &&
		    streams <= IPERF_TX_MAX_STREAMS)
			continue;
		kprintf("bench net: bad argument '%s': want wait=SECONDS (1..3600), tx=A.B.C.D:PORT, "
			"streams=N (1..%u)\n", argv[i], IPERF_TX_MAX_STREAMS);
		return 1;
	}
	if (!net_if_count()) {
		kprintf("bench net: network is not up\n");
		return 1;
	}
	if (tx_port)
		return bench_net_tx(&tx_addr, tx_port, (unsigned)streams, secs);
	if (streams != 1) {
		kprintf("bench net: streams= needs tx= (the server takes any number of clients)\n");
		return 1;
	}
	net_lock();
	if (!iperf_session)
		iperf_session = lwiperf_start_tcp_server_default(iperf_report, NULL);
	net_unlock();
	if (!iperf_session) {
		kprintf("bench net: cannot start the iperf server on tcp/%u\n", NET_PORT_IPERF);
		return 1;
	}
	unsigned before = __atomic_load_n(&iperf_reports, __ATOMIC_ACQUIRE);
	kprintf("bench net: iperf2 server on tcp/%u, waiting up to %llu s for a client (iperf -c ADDR)\n",
		NET_PORT_IPERF, secs);
	uint64_t deadline = time_ns() + secs * NS_PER_S;
	while (__atomic_load_n(&iperf_reports, __ATOMIC_ACQUIRE) == before && time_ns() < deadline)
		thread_sleep_ns(50 * NS_PER_MS);
	if (__atomic_load_n(&iperf_reports, __ATOMIC_ACQUIRE) == before) {
		kprintf("bench net: no iperf run finished within %llu s\n", secs);
		return 1;
	}
	kprintf("bench net proto=tcp dir=%s remote=%s bytes=%u ms=%u mbps=%u.%u\n", iperf_type(iperf_last.type),
		iperf_last.remote, iperf_last.bytes, iperf_last.ms, iperf_last.kbps / 1000,
		iperf_last.kbps % 1000 / 100);
	return iperf_last.type == LWIPERF_TCP_DONE_SERVER || iperf_last.type == LWIPERF_TCP_DONE_CLIENT ? 0 : 1;
}
SHELL_COMMAND(bench_net, "bench net [wait=SECONDS] [tx=A.B.C.D:PORT [streams=N]]",
	      "iperf2 server (lwiperf) on tcp/5001, prints the next finished run; with tx=, N iperf2 clients "
	      "send to that server for 10 s and the sum is printed", bench_net);
