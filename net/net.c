/*
 * Network bring-up from the loader's configuration, address bookkeeping and
 * the boot report lines (see net.h).
 *
 * Modes (config "net"):
 *   dhcp    DHCP on every interface.  If no lease arrives within the DHCP
 *           timeout (boot argument net.dhcp_timeout=SECONDS, default 10) and
 *           the config has a fallback ip/netmask, DHCP stops and the static
 *           address is used ("fallback"); without one, DHCP keeps trying.
 *   static  the configured ip/netmask/gateway on the first interface.
 *   none    interfaces stay down.
 * The report line per interface says where the address, netmask and gateway
 * came from:  net: vnet0 10.0.2.15/255.255.255.0 gw 10.0.2.2 (dhcp) ...
 */
#include "net/net.h"
#include "drivers/net/netdev.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/sched.h"
#include "kernel/time.h"

#include "lwip/apps/mdns.h"
#include "lwip/dhcp.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#define NET_DHCP_TIMEOUT_S_DEFAULT 10
#define NET_REPORT_WAIT_MS 3000

static char net_host[64];
static bool net_mdns_on;

const char *net_hostname(void) { return net_host; }

const char *net_src_name(int src)
{
	switch (src) {
	case NET_SRC_DHCP: return "dhcp";
	case NET_SRC_STATIC: return "static";
	case NET_SRC_FALLBACK: return "static fallback, DHCP timed out";
	}
	return "none";
}

static void net_cfg_addr(ip4_addr_t *ip, ip4_addr_t *mask, ip4_addr_t *gw)
{
	const struct boot_config *c = &boot_info->config;
	IP4_ADDR(ip, c->ip[0], c->ip[1], c->ip[2], c->ip[3]);
	IP4_ADDR(mask, c->netmask[0], c->netmask[1], c->netmask[2], c->netmask[3]);
	IP4_ADDR(gw, c->gateway[0], c->gateway[1], c->gateway[2], c->gateway[3]);
}

static bool net_cfg_has_fallback(void)
{
	const struct boot_config *c = &boot_info->config;
	return (c->ip[0] | c->ip[1] | c->ip[2] | c->ip[3]) != 0;
}

void net_if_report(struct net_if *nif)
{
	struct netif *n = nif->netif;
	char ip[16], mask[16], gw[16];
	ip4addr_ntoa_r(netif_ip4_addr(n), ip, sizeof(ip));
	ip4addr_ntoa_r(netif_ip4_netmask(n), mask, sizeof(mask));
	ip4addr_ntoa_r(netif_ip4_gw(n), gw, sizeof(gw));
	kprintf("net: %s %s/%s gw %s (address, netmask and gateway: %s)%s%s%s\n", nif->dev->name, ip, mask, gw,
		net_src_name(nif->src), net_mdns_on ? ", mdns " : "", net_mdns_on ? net_host : "",
		net_mdns_on ? ".local" : "");
}

static void net_status_cb(struct netif *n)
{
	struct net_if *nif = n->state;
	if (ip4_addr_isany_val(*netif_ip4_addr(n)))
		return;
	if (dhcp_supplied_address(n)) {
		nif->src = NET_SRC_DHCP;
		nif->dhcp_deadline_ns = 0;
	}
	net_if_report(nif);
	nif->reported = true;
	if (net_mdns_on)
		mdns_resp_announce(n);
}

/*
 * Half-open connections.  lwIP counts a connection in SYN_RCVD against its
 * listener's backlog and keeps it for 20 s (TCP_SYN_RCVD_TIMEOUT, not
 * configurable), so a burst of SYNs that are never completed would refuse
 * every real client for that long.  Once more than NET_HALF_OPEN_MAX are
 * pending, those older than NET_HALF_OPEN_AGE_TICKS (500 ms each) are
 * aborted, oldest state first; a real client completes its handshake in
 * one round trip, well inside that age.
 */
#define NET_HALF_OPEN_MAX 16
#define NET_HALF_OPEN_AGE_TICKS 4
static uint64_t net_half_open_reaped;

uint64_t net_half_open_reaped_count(void) { return net_half_open_reaped; }

void net_reap_half_open(void)
{
	unsigned n = 0;
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next)
		n += p->state == SYN_RCVD;
	if (n <= NET_HALF_OPEN_MAX)
		return;
	for (struct tcp_pcb *p = tcp_active_pcbs, *next; p; p = next) {
		next = p->next;
		if (p->state == SYN_RCVD && tcp_ticks - p->tmr >= NET_HALF_OPEN_AGE_TICKS) {
			tcp_abort(p);
			net_half_open_reaped++;
		}
	}
}

void net_if_tick(struct net_if *nif, uint64_t now_ns)
{
	if (!nif->dhcp_deadline_ns || now_ns < nif->dhcp_deadline_ns)
		return;
	nif->dhcp_deadline_ns = 0;
	if (dhcp_supplied_address(nif->netif))
		return;
	ip4_addr_t ip, mask, gw;
	net_cfg_addr(&ip, &mask, &gw);
	kprintf("net: %s: no DHCP answer in time, using the configured fallback address\n", nif->dev->name);
	dhcp_release_and_stop(nif->netif);
	nif->src = NET_SRC_FALLBACK;
	netif_set_addr(nif->netif, &ip, &mask, &gw);
}

static void net_make_hostname(void)
{
	if (boot_info->config.hostname[0]) {
		strlcpy(net_host, boot_info->config.hostname, sizeof(net_host));
		return;
	}
	struct netdev *d = netdev_at(0);
	if (d)
		ksnprintf(net_host, sizeof(net_host), "appliance-%02x%02x%02x", d->mac[3], d->mac[4], d->mac[5]);
	else
		strlcpy(net_host, "appliance", sizeof(net_host));
}

KERNEL_ARG_UINT_NAMED(net_dhcp_timeout, "net.dhcp_timeout", 1, 3600, "seconds to wait for a DHCP lease (default 10)");

static uint64_t net_dhcp_timeout_ns(void)
{
	unsigned long long s = NET_DHCP_TIMEOUT_S_DEFAULT;
	const char *a = arg_get("net.dhcp_timeout");
	if (a && (parse_u64(a, &s) < 0 || s == 0 || s > 3600)) {
		kprintf("net: ignoring net.dhcp_timeout=%s: want 1..3600 seconds\n", a);
		s = NET_DHCP_TIMEOUT_S_DEFAULT;
	}
	return s * NS_PER_S;
}

static int net_init(void)
{
	int mode = boot_info->config.net_mode;
	if (mode == BOOT_NET_NONE) {
		kprintf("net: disabled by config (net = none)\n");
		return 0;
	}
	if (netdev_count() == 0) {
		kprintf("net: no network interface found\n");
		return 0;
	}
	net_make_hostname();
	net_lock();
	lwip_init();
	mdns_resp_init();
	int rc = 0;
	for (unsigned i = 0; i < netdev_count(); i++) {
		struct netdev *dev = netdev_at(i);
		struct net_if *nif = net_if_add(dev);
		if (!nif) {
			kprintf("net: %s: cannot add interface\n", dev->name);
			continue;
		}
		netif_set_hostname(nif->netif, net_host);
		netif_set_status_callback(nif->netif, net_status_cb);
		if (i == 0)
			netif_set_default(nif->netif);
		if (mode == BOOT_NET_STATIC && i == 0) {
			ip4_addr_t ip, mask, gw;
			net_cfg_addr(&ip, &mask, &gw);
			nif->src = NET_SRC_STATIC;
			netif_set_addr(nif->netif, &ip, &mask, &gw);
		} else if (mode == BOOT_NET_DHCP) {
			if (i == 0 && net_cfg_has_fallback())
				nif->dhcp_deadline_ns = time_ns() + net_dhcp_timeout_ns();
			err_t e = dhcp_start(nif->netif);
			if (e != ERR_OK)
				kprintf("net: %s: DHCP did not start: lwIP error %d\n", dev->name, (int)e);
		}
		if (mdns_resp_add_netif(nif->netif, net_host, 120) == ERR_OK)
			net_mdns_on = true;
	}
	net_unlock();
	if ((rc = net_services_start()) < 0)
		kprintf("net: services did not start: %s\n", strerror(rc));
	return net_thread_start();
}
INITCALL(net, INIT_SUBSYS, 50, net_init);

static bool net_all_addressed(void)
{
	for (unsigned i = 0; i < net_if_count(); i++)
		if (!net_if_at(i)->reported)
			return false;
	return true;
}

/* Bounded wait so the boot report normally shows the address; a late lease
 * is still printed when it arrives. */
static int net_report(void)
{
	if (!net_if_count())
		return 0;
	uint64_t deadline = time_ns() + NET_REPORT_WAIT_MS * NS_PER_MS;
	while (!net_all_addressed() && time_ns() < deadline)
		thread_sleep_ns(10 * NS_PER_MS);
	for (unsigned i = 0; i < net_if_count(); i++) {
		struct net_if *nif = net_if_at(i);
		if (!nif->reported)
			kprintf("net: %s: no address yet (%s), link %s; it is printed when it arrives\n",
				nif->dev->name, boot_info->config.net_mode == BOOT_NET_DHCP ? "waiting for DHCP" : "none",
				nif->dev->link_up ? "up" : "down");
	}
	return 0;
}
INITCALL(net_report, INIT_LATE, 90, net_report);
