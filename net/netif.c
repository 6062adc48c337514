/*
 * lwIP netif glue and the network thread (see net.h for the locking).
 *
 * Receive: a NIC interrupt only calls netdev_kick(), which sets net_work
 * and wakes the thread.  The thread, under net_lock, asks each NIC for up
 * to NET_RX_BUDGET frames at a time; each frame is copied into a pbuf from
 * lwIP's pool (one 1536-byte pbuf per frame) and handed to ethernet_input.
 * An empty pool drops the frame and counts it (rx_nobuf): lwIP never sees a
 * half-built packet.
 *
 * Transmit: lwIP calls net_linkoutput() under the lock; the pbuf chain is
 * passed to the driver as fragments (the driver copies them into its ring
 * slot).  With a NIC that finishes TCP checksums (NETDEV_F_TX_CSUM) lwIP's
 * TCP checksum generation is turned off for that netif and we put the
 * pseudo-header sum in the TCP checksum field and tell the NIC where it is.
 * A full ring makes the sender wait for a completion (bounded: NET_TX_WAIT_MS
 * in total) and then drops the frame, which TCP retransmits.
 */
#include "net/net.h"
#include "drivers/net/netdev.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#include "lwip/etharp.h"
#include "lwip/igmp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#define NET_RX_BUDGET   64
#define NET_TX_WAIT_MS  50
#define NET_MAX_IFS     NETDEV_MAX
#define NET_THREAD_CPU  0               /* where the NICs' interrupts go */

static struct mutex net_mutex;
static struct waitq net_wq = WAITQ_INIT("net");
static volatile uint32_t net_work;
static struct net_if net_ifs[NET_MAX_IFS];
static struct netif net_netifs[NET_MAX_IFS];
static unsigned net_nifs;
static bool net_mutex_ready;
static struct thread *net_thr;
static struct net_lock_stats lock_st;     /* under net_lock */
static void (*net_hook)(void);            /* net_set_hook() */

/* The first caller is net_init() (INIT_SUBSYS, before any other user can
 * exist), so the lazy initialisation cannot race. */
void net_lock(void)
{
	if (!net_mutex_ready) {
		mutex_init(&net_mutex, "lwip");
		net_mutex_ready = true;
	}
	if (mutex_trylock(&net_mutex)) {
		lock_st.acquires++;
		return;
	}
	/* Contended: the mutex puts us to sleep and the holder's unlock wakes
	 * us, on another CPU often (milliseconds under TCG); count how long
	 * that takes and for whom. */
	uint64_t t0 = time_ns();
	unsigned who = thread_current() == net_thr ? 0 : 1;
	mutex_lock(&net_mutex);
	uint64_t waited = time_ns() - t0;
	lock_st.acquires++;
	lock_st.contended[who]++;
	lock_st.wait_ns[who] += waited;
	if (waited > lock_st.wait_max_ns[who])
		lock_st.wait_max_ns[who] = waited;
}

void net_lock_stats(struct net_lock_stats *s)
{
	*s = lock_st;                   /* racy reads of counters are fine */
}

/* Frames lwIP queued while the lock was held go to the devices now, one
 * doorbell per device per critical section. */
void net_unlock(void)
{
	for (unsigned i = 0; i < net_nifs; i++) {
		struct netdev *dev = net_ifs[i].dev;
		if (dev->ops->tx_commit && dev->state == NETDEV_UP)
			dev->ops->tx_commit(dev);
	}
	mutex_unlock(&net_mutex);
}

unsigned net_if_count(void) { return net_nifs; }
struct net_if *net_if_at(unsigned i) { return i < net_nifs ? &net_ifs[i] : NULL; }

static void net_notify(void *arg)
{
	(void)arg;
	__atomic_store_n(&net_work, 1, __ATOMIC_RELEASE);
	waitq_wake_all(&net_wq);     /* the thread, or a sender waiting for ring space */
}

void net_wake(void)
{
	net_notify(NULL);
}

void net_set_hook(void (*fn)(void))
{
	net_hook = fn;
}

static bool net_has_work(void *arg)
{
	(void)arg;
	return __atomic_load_n(&net_work, __ATOMIC_ACQUIRE) != 0;
}

/* Put the TCP pseudo-header sum in the checksum field of an IPv4/TCP frame
 * and fill in where the NIC must finish it.  Frames that are not unfragmented
 * IPv4 TCP are left alone (lwIP computed their checksums). */
static void net_tx_csum(struct pbuf *p, struct netdev_tx *f)
{
	uint8_t h[14 + 20];
	if (pbuf_copy_partial(p, h, sizeof(h), 0) != sizeof(h))
		return;
	if (h[12] != 0x08 || h[13] != 0x00 || (h[14] >> 4) != 4 || h[14 + 9] != 6)
		return;
	if (((h[14 + 6] & 0x3f) | h[14 + 7]) != 0)   /* MF or fragment offset */
		return;
	unsigned ihl = (h[14] & 0xf) * 4u;
	unsigned total = (unsigned)h[14 + 2] << 8 | h[14 + 3];
	if (ihl < 20 || total < ihl + 20)
		return;
	uint32_t sum = 0;
	for (unsigned i = 12; i < 20; i += 2)      /* source and destination */
		sum += (uint32_t)h[14 + i] << 8 | h[14 + i + 1];
	sum += 6 + (total - ihl);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	unsigned at = 14 + ihl + 16;
	pbuf_put_at(p, (u16_t)at, (u8_t)(sum >> 8));
	pbuf_put_at(p, (u16_t)(at + 1), (u8_t)sum);
	f->csum_start = (uint16_t)(14 + ihl);
	f->csum_offset = 16;
}

static err_t net_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct net_if *nif = netif->state;
	struct netdev *dev = nif->dev;
	struct netdev_tx f;
	static uint8_t bounce[NETDEV_FRAME_MAX];

	memset(&f, 0, sizeof(f));
	f.len = p->tot_len;
	if (f.len > NETDEV_FRAME_MAX) {
		LINK_STATS_INC(link.lenerr);
		return ERR_BUF;
	}
	if (dev->features & NETDEV_F_TX_CSUM)
		net_tx_csum(p, &f);
	for (struct pbuf *q = p; q; q = q->next) {
		if (f.nfrags == NETDEV_MAX_FRAGS) {
			pbuf_copy_partial(p, bounce, p->tot_len, 0);
			f.frags[0].data = bounce;
			f.frags[0].len = p->tot_len;
			f.nfrags = 1;
			break;
		}
		if (q->len) {
			f.frags[f.nfrags].data = q->payload;
			f.frags[f.nfrags].len = q->len;
			f.nfrags++;
		}
	}
	uint64_t deadline = time_ns() + NET_TX_WAIT_MS * NS_PER_MS;
	int rc;
	while ((rc = dev->ops->tx(dev, &f)) == -EBUSY) {
		nif->tx_busy_waits++;
		if (time_ns() > deadline)
			break;
		/* The lock stays held: only this thread may use the device, and
		 * the completion interrupt kicks net_work. */
		__atomic_store_n(&net_work, 0, __ATOMIC_RELEASE);
		if (dev->ops->reap(dev) == 0)
			waitq_wait_until(&net_wq, net_has_work, NULL, MIN(deadline, time_ns() + NS_PER_MS));
		__atomic_store_n(&net_work, 1, __ATOMIC_RELEASE);
	}
	if (rc < 0) {
		nif->tx_drops++;
		LINK_STATS_INC(link.drop);
		return rc == -EBUSY ? ERR_MEM : ERR_IF;
	}
	LINK_STATS_INC(link.xmit);
	return ERR_OK;
}

static err_t net_netif_init(struct netif *netif)
{
	struct net_if *nif = netif->state;
	netif->name[0] = nif->dev->name[0];
	netif->name[1] = nif->dev->name[1];
	netif->linkoutput = net_linkoutput;
	netif->output = etharp_output;
	netif->mtu = nif->dev->mtu;
	netif->hwaddr_len = 6;
	memcpy(netif->hwaddr, nif->dev->mac, 6);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP;
	if (nif->dev->features & NETDEV_F_TX_CSUM)
		NETIF_SET_CHECKSUM_CTRL(netif, NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_GEN_TCP);
	return ERR_OK;
}

struct net_if *net_if_add(struct netdev *dev)
{
	if (net_nifs == NET_MAX_IFS)
		return NULL;
	struct net_if *nif = &net_ifs[net_nifs];
	struct netif *netif = &net_netifs[net_nifs];
	nif->netif = netif;
	nif->dev = dev;
	if (!netif_add(netif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, nif, net_netif_init, ethernet_input))
		return NULL;
	net_nifs++;
	netdev_bind(dev, net_notify, nif);
	netif_set_up(netif);
	if (dev->link_up)
		netif_set_link_up(netif);
	nif->link_was_up = dev->link_up;
	return nif;
}

static bool net_rx_frame(void *arg, const void *data, uint32_t len, bool csum_ok)
{
	struct net_if *nif = arg;
	(void)csum_ok;
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
	if (!p) {
		nif->rx_nobuf++;
		LINK_STATS_INC(link.memerr);
		return false;
	}
	pbuf_take(p, data, (u16_t)len);
	LINK_STATS_INC(link.recv);
	if (nif->netif->input(p, nif->netif) != ERR_OK)
		pbuf_free(p);
	return true;
}

static void net_link_check(struct net_if *nif)
{
	struct netdev *dev = nif->dev;
	if (!dev->link_event)
		return;
	dev->link_event = false;
	if (dev->ops->link_poll)
		dev->ops->link_poll(dev);
	bool up = dev->link_up && dev->state != NETDEV_DEAD;
	if (up == nif->link_was_up)
		return;
	nif->link_was_up = up;
	dev->link_changes++;
	kprintf("net: %s: link %s\n", dev->name, up ? "up" : "down");
	if (up)
		netif_set_link_up(nif->netif);
	else
		netif_set_link_down(nif->netif);
}

static void net_thread(void *arg)
{
	(void)arg;
	uint64_t next_second = time_ns() + NS_PER_S;
	for (;;) {
		net_lock();
		u32_t sleep_ms = sys_timeouts_sleeptime();
		net_unlock();
		uint64_t now = time_ns();
		uint64_t deadline = now + (uint64_t)MIN(sleep_ms, 250u) * NS_PER_MS;
		if (deadline > next_second)
			deadline = next_second;
		waitq_wait_until(&net_wq, net_has_work, NULL, deadline);
		__atomic_store_n(&net_work, 0, __ATOMIC_RELEASE);

		net_lock();
		for (unsigned i = 0; i < net_nifs; i++) {
			struct net_if *nif = &net_ifs[i];
			struct netdev *dev = nif->dev;
			net_link_check(nif);
			if (dev->state != NETDEV_UP)
				continue;
			if (dev->ops->rx(dev, net_rx_frame, nif, NET_RX_BUDGET) == NET_RX_BUDGET)
				__atomic_store_n(&net_work, 1, __ATOMIC_RELEASE);   /* more waiting */
			dev->ops->reap(dev);
		}
		sys_check_timeouts();
		now = time_ns();
		if (now >= next_second) {
			next_second = now + NS_PER_S;
			net_reap_half_open();
			for (unsigned i = 0; i < net_nifs; i++) {
				netdev_watchdog(net_ifs[i].dev, now);
				net_link_check(&net_ifs[i]);
				net_if_tick(&net_ifs[i], now);
			}
		}
		if (net_hook)
			net_hook();
		net_unlock();
	}
}

int net_thread_start(void)
{
	/* On the CPU the NICs interrupt (both drivers aim their MSIs at CPU 0):
	 * its wake-ups stay local, and so does the work it hands to the file
	 * server's workers of that CPU; under TCG a wake-up of a halted other
	 * CPU costs milliseconds (null round trips 4x slower unpinned). */
	net_thr = thread_create("net", net_thread, NULL, NET_THREAD_CPU);
	return net_thr ? 0 : -ENOMEM;
}
