/*
 * NIC registry, consumer wake-ups and the stall watchdog (see netdev.h).
 */
#include "drivers/net/netdev.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/sync.h"
#include "kernel/time.h"

static struct netdev *netdevs[NETDEV_MAX];
static unsigned netdev_n;
static spinlock_t netdev_lock = SPINLOCK_INIT("netdev");

int netdev_register(struct netdev *dev)
{
	uint64_t fl = spin_lock_irqsave(&netdev_lock);
	if (netdev_n == NETDEV_MAX) {
		spin_unlock_irqrestore(&netdev_lock, fl);
		kprintf("netdev: %s: too many interfaces (max %u)\n", dev->name, NETDEV_MAX);
		return -ENOSPC;
	}
	dev->state = NETDEV_UP;
	netdevs[netdev_n++] = dev;
	spin_unlock_irqrestore(&netdev_lock, fl);
	char mac[18];
	kprintf("netdev: %s %s mac %s mtu %u link %s, %u/%u rx/tx descriptors%s%s%s\n",
		dev->name, dev->model, netdev_mac_str(dev->mac, mac), dev->mtu,
		dev->link_up ? "up" : "down", dev->rx_ring, dev->tx_ring,
		dev->features & NETDEV_F_MSIX ? ", MSI-X" : dev->features & NETDEV_F_MSI ? ", MSI" : ", polled",
		dev->features & NETDEV_F_TX_CSUM ? ", tx checksum offload" : "",
		dev->features & NETDEV_F_RX_MERGE ? ", mergeable rx buffers" : "");
	return 0;
}

unsigned netdev_count(void) { return netdev_n; }

struct netdev *netdev_at(unsigned i) { return i < netdev_n ? netdevs[i] : NULL; }

struct netdev *netdev_find(const char *name)
{
	for (unsigned i = 0; i < netdev_n; i++)
		if (strcmp(netdevs[i]->name, name) == 0)
			return netdevs[i];
	return NULL;
}

void netdev_bind(struct netdev *dev, void (*notify)(void *arg), void *arg)
{
	dev->notify_arg = arg;
	__atomic_store_n(&dev->notify, notify, __ATOMIC_RELEASE);
}

void netdev_kick(struct netdev *dev)
{
	void (*fn)(void *) = __atomic_load_n(&dev->notify, __ATOMIC_ACQUIRE);
	if (fn)
		fn(dev->notify_arg);
}

void netdev_link_changed(struct netdev *dev)
{
	dev->link_event = true;
	netdev_kick(dev);
}

void netdev_set_dead(struct netdev *dev, const char *reason)
{
	strlcpy(dev->error, reason, sizeof(dev->error));
	dev->state = NETDEV_DEAD;
	dev->link_up = false;
	kprintf("netdev: %s: dead: %s\n", dev->name, reason);
	netdev_link_changed(dev);
}

bool netdev_watchdog(struct netdev *dev, uint64_t now_ns)
{
	if (dev->state == NETDEV_DEAD)
		return false;
	dev->ops->reap(dev);
	if (dev->ops->tx_pending(dev) == 0 || dev->tx.packets != dev->wd_last_tx_packets) {
		dev->wd_last_tx_packets = dev->tx.packets;
		dev->wd_stuck_since_ns = 0;
		return false;
	}
	if (!dev->wd_stuck_since_ns) {
		dev->wd_stuck_since_ns = now_ns;
		return false;
	}
	if (now_ns - dev->wd_stuck_since_ns < NETDEV_STALL_MS * NS_PER_MS)
		return false;
	dev->stalls++;
	dev->wd_stuck_since_ns = 0;
	kprintf("netdev: %s: transmit stalled: %u descriptors outstanding for %u ms without completion; resetting\n",
		dev->name, dev->ops->tx_pending(dev), NETDEV_STALL_MS);
	if (!dev->ops->reset) {
		netdev_set_dead(dev, "transmit stalled and the driver cannot reset");
		return false;
	}
	dev->state = NETDEV_RESETTING;
	dev->inject_stall = false;
	int rc = dev->ops->reset(dev);
	dev->resets++;
	if (rc < 0) {
		netdev_set_dead(dev, dev->error[0] ? dev->error : "reset failed");
		return true;
	}
	dev->state = NETDEV_UP;
	dev->wd_last_tx_packets = dev->tx.packets;
	kprintf("netdev: %s: reset done, link %s\n", dev->name, dev->link_up ? "up" : "down");
	netdev_link_changed(dev);
	return true;
}

const char *netdev_mac_str(const uint8_t mac[6], char *buf)
{
	ksnprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

const char *netdev_state_name(int state)
{
	switch (state) {
	case NETDEV_UP: return "up";
	case NETDEV_RESETTING: return "resetting";
	case NETDEV_DEAD: return "dead";
	}
	return "?";
}

void netdev_inject_stall(struct netdev *dev)
{
	kprintf("netdev: %s: injecting a transmit stall (completions ignored until the watchdog resets)\n",
		dev->name);
	dev->inject_stall = true;
}
