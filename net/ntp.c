/*
 * Network time: lwIP's SNTP client sets the wall clock (kernel/realtime.h)
 * from the servers config.txt names ("ntp = ADDR[:PORT][,ADDR[:PORT]]") or,
 * when it names none, from the servers DHCP offers.  lwIP polls every
 * SNTP_UPDATE_DELAY and compensates the round trip; every answer that moves
 * the clock is counted, and `date` shows when and by how much.
 *
 * The SNTP hooks (net_ntp_set/now, declared in lwipopts.h) run inside
 * lwIP, under net_lock.
 */
#include "net/net.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/metrics.h"
#include "kernel/realtime.h"
#include "kernel/civil.h"
#include "boot/bootinfo.h"

#include "lwip/apps/sntp.h"

uint16_t net_ntp_port = 123;
static uint64_t ntp_syncs;
static int64_t ntp_last_step_ns;

void net_ntp_set(uint32_t unix_sec, uint32_t usec)
{
	int64_t ns = (int64_t)unix_sec * 1000000000 + (int64_t)usec * 1000;
	int64_t step = ns - realtime_ns();
	realtime_set(ns, "SNTP");
	ntp_syncs++;
	ntp_last_step_ns = step;
	char when[48];
	civil_format(when, sizeof(when), ns);
	int64_t ms = step / 1000000;
	kprintf("ntp: clock set to %s (moved %s%lld.%03lld s)\n", when, step < 0 ? "-" : "+",
		(long long)((ms < 0 ? -ms : ms) / 1000), (long long)((ms < 0 ? -ms : ms) % 1000));
}

void net_ntp_now(uint32_t *unix_sec, uint32_t *usec)
{
	int64_t ns = realtime_ns();
	*unix_sec = (uint32_t)(ns / 1000000000);
	*usec = (uint32_t)(ns % 1000000000 / 1000);
}

static int ntp_start(void)
{
	const struct boot_config *cfg = &boot_info->config;
	if (!net_if_count() || cfg->net_mode == BOOT_NET_NONE)
		return 0;
	unsigned named = 0;
	net_lock();
	sntp_setoperatingmode(SNTP_OPMODE_POLL);
	for (unsigned i = 0; i < BOOT_NTP_MAX; i++) {
		const struct boot_endpoint *e = &cfg->ntp[i];
		if (!e->port)
			continue;
		ip_addr_t a;
		IP_ADDR4(&a, e->ip[0], e->ip[1], e->ip[2], e->ip[3]);
		sntp_setserver((u8_t)named++, &a);
		net_ntp_port = e->port;          /* one port for all: lwIP keeps one */
	}
	/* With servers of our own, DHCP's are not wanted. */
	sntp_servermode_dhcp(named ? 0 : 1);
	sntp_init();
	net_unlock();
	if (named)
		kprintf("ntp: polling %u server%s from config.txt (port %u)\n", named, named == 1 ? "" : "s",
			net_ntp_port);
	else
		kprintf("ntp: no servers in config.txt; using any that DHCP offers\n");
	return 0;
}
INITCALL(ntp, INIT_LATE, 20, ntp_start);

static void ntp_metrics(struct metric_sink *s)
{
	metric(s, "appliance_ntp_syncs_total", METRIC_COUNTER, "Answers from SNTP servers that set the clock",
	       0, 0, (int64_t)ntp_syncs, 0);
	metric(s, "appliance_ntp_last_step_seconds", METRIC_GAUGE, "How far the last SNTP answer moved the clock",
	       0, 0, ntp_last_step_ns / 1000, 6);
}
METRICS_PROVIDER(ntp, ntp_metrics);
