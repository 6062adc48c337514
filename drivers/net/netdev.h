/*
 * Network interfaces: one registry of Ethernet NICs that the network stack
 * (net/) binds to (drivers/net/netdev.c).
 *
 * Driver call order:
 *   1. fill a struct netdev (name, mac, mtu, features, ops, driver data),
 *      usually embedded in the driver's softc, rings allocated and the
 *      device ready to receive;
 *   2. netdev_register(dev): the device is UP and visible by name;
 *   3. from the interrupt handler call netdev_kick(dev) when receive or
 *      transmit work is waiting, and netdev_link_changed(dev) when the link
 *      status changed.  Both only wake the consumer: no frame is handed over
 *      in interrupt context;
 *   4. netdev_set_dead(dev, reason) if the device cannot be recovered.
 *
 * Device states: UP -> RESETTING -> UP ... -> DEAD (never unregistered).
 *
 * Consumer call order (net/netif.c, one thread per device or one for all):
 *   netdev_find()/netdev_at() -> netdev_bind(dev, notify, arg) -> loop of
 *   ops->rx(), ops->tx() and netdev_watchdog(); the consumer serialises all
 *   calls into one device (ops are not reentrant).
 *
 * Watchdog: netdev_watchdog() (called by the consumer about once a second)
 * calls ops->reap(), and if transmit descriptors
 * have been outstanding without any completion for NETDEV_STALL_MS it
 * counts a stall and calls ops->reset().  A reset that fails marks the
 * device DEAD with the driver's reason.  netdev_inject_stall() simulates a
 * transmit stall (drivers' reap() honours dev->inject_stall) so tests can
 * check that the watchdog notices and the reset recovers.
 */
#ifndef DRIVERS_NET_NETDEV_H
#define DRIVERS_NET_NETDEV_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define NETDEV_MAX         4
#define NETDEV_STALL_MS    2000
#define NETDEV_FRAME_MAX   1514       /* Ethernet without FCS, MTU 1500 */

/* Feature bits a driver sets in dev->features. */
#define NETDEV_F_TX_CSUM   (1u << 0)  /* completes TCP/UDP checksums from
				       * csum_start/csum_offset on transmit */
#define NETDEV_F_RX_MERGE  (1u << 1)  /* frames may span several rx buffers */
#define NETDEV_F_MSIX      (1u << 2)
#define NETDEV_F_MSI       (1u << 3)

enum netdev_state { NETDEV_UP = 0, NETDEV_RESETTING, NETDEV_DEAD };

/* One frame to send as a list of fragments (at most NETDEV_MAX_FRAGS). */
#define NETDEV_MAX_FRAGS 16
struct netdev_frag {
	const void *data;
	uint32_t len;
};
struct netdev_tx {
	struct netdev_frag frags[NETDEV_MAX_FRAGS];
	unsigned nfrags;
	uint32_t len;                /* total bytes */
	/* Checksum offload (only when the device has NETDEV_F_TX_CSUM): the
	 * device sums from csum_start to the end of the frame and stores the
	 * result at csum_start + csum_offset; the field holds the pseudo-header
	 * sum.  csum_start == 0 means no offload for this frame. */
	uint16_t csum_start, csum_offset;
};

/* Per-queue counters.  Drivers increment them; only the owning side writes. */
struct netdev_queue_stats {
	uint64_t packets, bytes;
	uint64_t drops;              /* rx: no buffer / bad length; tx: ring full */
	uint64_t errors;             /* device-reported errors */
	uint64_t irqs;
	uint64_t doorbells;          /* notifications written to the device */
};

struct netdev;

/* Receive callback: called by ops->rx() for every good frame; `data` is only
 * valid during the call (the consumer copies it).  Return false to stop
 * (the frame was not taken and is counted as a drop). */
typedef bool (*netdev_rx_fn)(void *arg, const void *data, uint32_t len, bool csum_ok);

struct netdev_ops {
	/* Hand up to `budget` received frames to fn; returns how many. */
	int (*rx)(struct netdev *dev, netdev_rx_fn fn, void *arg, int budget);
	/* Queue one frame.  0, -EBUSY when the ring is full (the consumer
	 * waits for a kick and retries), -EIO when the device is down. */
	int (*tx)(struct netdev *dev, const struct netdev_tx *frame);
	/* Hand frames queued by tx() since the last call to the device (one
	 * doorbell for a batch).  Optional: without it tx() rings the
	 * doorbell itself.  The consumer calls it before it stops sending
	 * (net/ does so whenever it drops its lock). */
	void (*tx_commit)(struct netdev *dev);
	/* Reclaim completed transmit descriptors; returns how many. */
	int (*reap)(struct netdev *dev);
	/* Descriptors handed to the device and not yet completed. */
	unsigned (*tx_pending)(struct netdev *dev);
	/* Full device reset and reinitialisation; 0 or -errno with
	 * dev->error set.  Optional (-ENOTSUP). */
	int (*reset)(struct netdev *dev);
	/* Read the link state from the device.  Optional (-ENOTSUP): then
	 * the link is taken as up. */
	int (*link_poll)(struct netdev *dev);
	/* Extra lines for `ifconfig -v`.  Optional. */
	void (*describe)(struct netdev *dev);
};

struct netdev {
	char name[16];               /* vnet0, e1000e0, ... */
	const char *model;           /* "virtio-net", "82574L" */
	uint8_t mac[6];
	uint16_t mtu;
	uint32_t features;           /* NETDEV_F_* */
	unsigned rx_ring, tx_ring;   /* descriptors per ring */
	const struct netdev_ops *ops;
	void *driver_data;

	/* Shared state. */
	volatile int state;          /* enum netdev_state */
	volatile bool link_up;
	struct netdev_queue_stats rx, tx;
	uint64_t link_changes, resets, stalls;
	char error[96];              /* last device error in words, "" if none */

	/* Registry and consumer binding (netdev.c). */
	void (*notify)(void *arg);   /* consumer's wake-up, IRQ safe */
	void *notify_arg;
	volatile bool link_event;    /* set by netdev_link_changed */
	volatile bool inject_stall;  /* fault injection: ops->reap() reclaims
				      * nothing until the watchdog resets */
	uint64_t wd_last_tx_packets;
	uint64_t wd_stuck_since_ns;
};

int netdev_register(struct netdev *dev);
unsigned netdev_count(void);
struct netdev *netdev_at(unsigned i);
struct netdev *netdev_find(const char *name);
/* The consumer's wake-up function (IRQ safe, may be called often). */
void netdev_bind(struct netdev *dev, void (*notify)(void *arg), void *arg);
void netdev_kick(struct netdev *dev);
void netdev_link_changed(struct netdev *dev);
void netdev_set_dead(struct netdev *dev, const char *reason);
/* Lost-interrupt sweep and TX stall detection; see above.  Returns true if
 * it reset the device. */
bool netdev_watchdog(struct netdev *dev, uint64_t now_ns);
/* "aa:bb:cc:dd:ee:ff" into buf (>= 18 bytes). */
const char *netdev_mac_str(const uint8_t mac[6], char *buf);
const char *netdev_state_name(int state);
void netdev_inject_stall(struct netdev *dev);

#endif
