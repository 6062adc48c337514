/*
 * The network's item on the screen's status line (kernel/statusline.h): the
 * address a person at the console needs to reach the box from elsewhere.
 *   "net: 10.0.2.15 (appliance-5254.local)"   one address per interface
 *   "net: down (no network card)" / "em0 link down" / "em0 no address yet"
 *
 * Read without net_lock: the status thread runs once a second on another
 * CPU, and under traffic the network thread holds the lock nearly all the
 * time, so waiting for it cost a cross-CPU wake-up on every release the
 * waiter lost (~100 per second, measured: docs/network.md).  What is read is
 * one aligned 32-bit address word, which lwIP stores whole, and the NIC's
 * link flag; a line that is a second stale is what the screen shows anyway.
 */
#include "net/net.h"
#include "drivers/net/netdev.h"
#include "kernel/kprintf.h"
#include "kernel/statusline.h"

#include "lwip/ip4_addr.h"
#include "lwip/netif.h"

static void net_status(char *buf, size_t size)
{
	unsigned n = net_if_count();
	size_t len = (size_t)ksnprintf(buf, size, "net:");

	if (n == 0) {
		ksnprintf(buf, size, "net: down (no network card)");
		return;
	}
	for (unsigned i = 0; i < n && len + 1 < size; i++) {
		struct net_if *nif = net_if_at(i);
		char ip[16];
		ip4_addr_t a;
		a.addr = __atomic_load_n(&netif_ip4_addr(nif->netif)->addr, __ATOMIC_RELAXED);
		if (!nif->dev->link_up)
			len += (size_t)ksnprintf(buf + len, size - len, " %s link down", nif->dev->name);
		else if (ip4_addr_isany_val(a))
			len += (size_t)ksnprintf(buf + len, size - len, " %s no address yet",
						 nif->dev->name);
		else
			len += (size_t)ksnprintf(buf + len, size - len, " %s", ip4addr_ntoa_r(&a, ip, sizeof(ip)));
	}
	if (len + 1 < size)
		ksnprintf(buf + len, size - len, " (%s)", net_hostname());
}
STATUSLINE_ITEM(net, 10, net_status);
