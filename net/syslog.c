/*
 * Remote logging: every line of the kernel log also goes, as an RFC 5424
 * message over UDP, to the syslog server config.txt names ("syslog =
 * ADDR[:PORT]", port 514 by default).  A thread follows the log ring
 * (log_read_from) every SYSLOG_PERIOD_MS, so kprintf itself stays as it is
 * (safe in interrupts and panics) and nothing waits for the network.  At
 * most SYSLOG_BURST lines leave per period; lines the ring overwrote before
 * they were sent are reported in one line of their own.
 */
#include "net/net.h"
#include "kernel/civil.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/metrics.h"
#include "kernel/realtime.h"
#include "kernel/sched.h"
#include "kernel/time.h"
#include "boot/bootinfo.h"

#include "lwip/udp.h"
#include "lwip/etharp.h"
#include "lwip/ip4.h"

#define SYSLOG_PERIOD_MS 250
#define SYSLOG_BURST     128
#define SYSLOG_LINE_MAX  480            /* message text; longer lines are cut */
#define SYSLOG_FAC_KERN  0
#define SYSLOG_SEV_ERR   3
#define SYSLOG_SEV_INFO  6

static struct udp_pcb *syslog_pcb;
static ip_addr_t syslog_addr;
static uint16_t syslog_port;
static uint64_t syslog_sent, syslog_dropped;

/* Lines that report a failure get severity "err", the rest "info". */
static unsigned syslog_severity(const char *line)
{
	static const char *const bad[] = { "error", "fail", "PANIC", "exception", "timed out" };
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		if (strstr(line, bad[i]))
			return SYSLOG_SEV_ERR;
	return SYSLOG_SEV_INFO;
}

static void syslog_send(const char *line)
{
	char msg[SYSLOG_LINE_MAX + 160], stamp[48];
	struct civil_time t;
	civil_from_unix_ns(realtime_ns(), &t);
	ksnprintf(stamp, sizeof(stamp), "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)t.year, t.month, t.day,
		  t.hour, t.minute, t.second, t.nsec / 1000000);
	/* RFC 5424: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG */
	int n = ksnprintf(msg, sizeof(msg), "<%u>1 %s %s kernel - - - %.*s",
			  SYSLOG_FAC_KERN * 8 + syslog_severity(line), stamp, net_hostname(), SYSLOG_LINE_MAX, line);
	if (n <= 0)
		return;
	size_t len = MIN((size_t)n, sizeof(msg) - 1);
	net_lock();
	struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
	if (p) {
		pbuf_take(p, msg, (u16_t)len);
		if (udp_sendto(syslog_pcb, p, &syslog_addr, syslog_port) == ERR_OK)
			syslog_sent++;
		else
			syslog_dropped++;
		pbuf_free(p);
	} else {
		syslog_dropped++;
	}
	net_unlock();
}

/* The first burst is the whole boot log: resolve the next hop first, or
 * lwIP keeps only the last ARP_QUEUE_LEN datagrams of it.  Bounded; on
 * timeout the lines go anyway (and lwIP drops what it must). */
static void syslog_resolve(void)
{
	uint64_t deadline = time_ns() + 5 * NS_PER_S;
	for (;;) {
		net_lock();
		bool ok = false;
		struct netif *nif = ip4_route(ip_2_ip4(&syslog_addr));
		if (nif) {
			const ip4_addr_t *hop = ip4_addr_netcmp(ip_2_ip4(&syslog_addr), netif_ip4_addr(nif),
								netif_ip4_netmask(nif)) ? ip_2_ip4(&syslog_addr)
											: netif_ip4_gw(nif);
			struct eth_addr *eth;
			const ip4_addr_t *ip;
			ok = etharp_find_addr(nif, hop, &eth, &ip) >= 0;
			if (!ok)
				etharp_query(nif, hop, NULL);
		}
		net_unlock();
		if (ok)
			return;
		if (time_ns() > deadline) {
			kprintf("syslog: next hop to the server not resolved in 5 s; sending anyway\n");
			return;
		}
		thread_sleep_ns(100 * NS_PER_MS);
	}
}

static void syslog_thread(void *arg)
{
	(void)arg;
	syslog_resolve();
	static char buf[SYSLOG_BURST * 128];
	static char line[SYSLOG_LINE_MAX + 1];
	uint64_t pos = 0, lost;
	size_t linelen = 0;
	for (;;) {
		size_t n = log_read_from(&pos, buf, sizeof(buf), &lost);
		if (lost) {
			char note[96];
			ksnprintf(note, sizeof(note), "syslog: %llu bytes of the log were overwritten before they were sent",
				  (unsigned long long)lost);
			syslog_send(note);
			linelen = 0;
		}
		unsigned sent = 0;
		for (size_t i = 0; i < n; i++) {
			char c = buf[i];
			if (c == '\r')
				continue;
			if (c != '\n') {
				if (linelen < SYSLOG_LINE_MAX)
					line[linelen++] = c;
				continue;
			}
			line[linelen] = 0;
			if (linelen)
				syslog_send(line);
			linelen = 0;
			sent++;
		}
		(void)sent;
		if (n < sizeof(buf))
			thread_sleep_ns(SYSLOG_PERIOD_MS * NS_PER_MS);
	}
}

static int syslog_start(void)
{
	const struct boot_endpoint *e = &boot_info->config.syslog;
	if (!e->port)
		return 0;
	if (!net_if_count() || boot_info->config.net_mode == BOOT_NET_NONE) {
		kprintf("syslog: no network, remote logging off\n");
		return -ENODEV;
	}
	IP_ADDR4(&syslog_addr, e->ip[0], e->ip[1], e->ip[2], e->ip[3]);
	syslog_port = e->port;
	net_lock();
	syslog_pcb = udp_new();
	net_unlock();
	if (!syslog_pcb)
		return -ENOMEM;
	if (!thread_create("syslog", syslog_thread, NULL, -1)) {
		kprintf("syslog: cannot start its thread\n");
		return -ENOMEM;
	}
	kprintf("syslog: sending the log to %u.%u.%u.%u:%u (RFC 5424 over UDP)\n", e->ip[0], e->ip[1], e->ip[2],
		e->ip[3], e->port);
	return 0;
}
INITCALL(syslog, INIT_LATE, 30, syslog_start);

static void syslog_metrics(struct metric_sink *s)
{
	metric(s, "appliance_syslog_sent_total", METRIC_COUNTER, "Log lines sent to the syslog server", 0, 0,
	       (int64_t)syslog_sent, 0);
	metric(s, "appliance_syslog_dropped_total", METRIC_COUNTER, "Log lines that could not be sent", 0, 0,
	       (int64_t)syslog_dropped, 0);
}
METRICS_PROVIDER(syslog, syslog_metrics);
