/*
 * virtio-net (virtio 1.x, modern PCI; drivers/net/virtio.h for the
 * transport).  One receive and one transmit queue.
 *
 * Buffers: every descriptor owns a fixed 2 KiB slot of one physically
 * contiguous area per queue.  A received frame is preceded by the 12-byte
 * virtio_net_hdr; with VIRTIO_NET_F_MRG_RXBUF the header's num_buffers says
 * how many slots the frame spans (we do not negotiate large receive offload,
 * so a 1514-byte frame always fits one 2 KiB slot, but a longer chain is
 * still assembled or dropped correctly).  Transmit copies the frame behind a
 * header into a free slot; with VIRTIO_NET_F_CSUM the header asks the device
 * to finish the TCP/UDP checksum (flags NEEDS_CSUM, csum_start/offset).
 *
 * Interrupts: MSI-X entry 0 configuration change (link status), 1 receive,
 * 2 transmit.  The receive handler turns further receive interrupts off
 * and wakes the consumer; rx() turns them back on when the ring is empty
 * and looks once more (no lost wake-up).  Transmit interrupts are on only
 * while the ring is full and the consumer waits for space.
 */
#include "drivers/driver.h"
#include "drivers/net/netdev.h"
#include "drivers/net/virtio.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/pci.h"
#include "kernel/smp.h"
#include "kernel/trap.h"

#define VNET_F_CSUM       0
#define VNET_F_MAC        5
#define VNET_F_MRG_RXBUF  15
#define VNET_F_STATUS     16

#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_S_LINK_UP        1

#define VNET_QSIZE   256
#define VNET_SLOT    2048
#define VNET_RXQ     0
#define VNET_TXQ     1

struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

struct vnet {
	struct netdev nd;
	struct virtio_pci vp;
	struct virtq rxq, txq;
	uint64_t rx_phys, tx_phys;
	uint8_t *rx_buf, *tx_buf;
	unsigned buf_order;
	uint16_t tx_free[VNET_QSIZE];
	unsigned tx_nfree;
	uint16_t tx_kicked;           /* txq.avail_idx at the last notification */
	uint64_t features;
	bool msix;
	uint8_t frame[NETDEV_FRAME_MAX + 64];   /* assembles multi-slot frames */
};

static unsigned vnet_count;

static bool vnet_has(struct vnet *v, unsigned bit) { return v->features & (1ULL << bit); }

static bool vnet_link(struct vnet *v)
{
	if (!vnet_has(v, VNET_F_STATUS))
		return true;
	return *(volatile uint16_t *)(v->vp.device + 6) & VNET_S_LINK_UP;
}

static void vnet_intr_config(void *arg)
{
	struct vnet *v = arg;
	v->nd.link_up = vnet_link(v);
	netdev_link_changed(&v->nd);
}

static void vnet_intr_rx(void *arg)
{
	struct vnet *v = arg;
	v->nd.rx.irqs++;
	virtq_interrupts(&v->rxq, false);
	netdev_kick(&v->nd);
}

static void vnet_intr_tx(void *arg)
{
	struct vnet *v = arg;
	v->nd.tx.irqs++;
	virtq_interrupts(&v->txq, false);
	netdev_kick(&v->nd);
}

static void vnet_rx_fill(struct vnet *v, uint16_t slot)
{
	volatile struct virtq_desc *d = &v->rxq.desc[slot];
	d->addr = v->rx_phys + (uint64_t)slot * VNET_SLOT;
	d->len = VNET_SLOT;
	d->flags = VIRTQ_DESC_F_WRITE;
	virtq_publish(&v->rxq, slot);
}

/* Device bring-up shared by attach and reset: handshake, features, queues,
 * receive ring full, DRIVER_OK. */
static int vnet_start(struct vnet *v)
{
	struct virtio_pci *vp = &v->vp;
	int rc;
	if ((rc = virtio_reset(vp)) < 0)
		return rc;
	virtio_set_status(vp, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	uint64_t want = (1ULL << VNET_F_CSUM) | (1ULL << VNET_F_MAC) |
			(1ULL << VNET_F_MRG_RXBUF) | (1ULL << VNET_F_STATUS);
	if ((rc = virtio_negotiate(vp, want, &v->features)) < 0)
		return rc;
	if (virtio_num_queues(vp) < 2) {
		ksnprintf(vp->error, sizeof(vp->error), "device has %u queues, need 2", virtio_num_queues(vp));
		return -ENODEV;
	}
	if (v->msix)
		virtio_set_config_vector(vp, 0);
	if ((rc = virtio_vq_setup(vp, &v->rxq, VNET_RXQ, VNET_QSIZE, v->msix ? 1 : VIRTIO_NO_VECTOR)) < 0 ||
	    (rc = virtio_vq_setup(vp, &v->txq, VNET_TXQ, VNET_QSIZE, v->msix ? 2 : VIRTIO_NO_VECTOR)) < 0)
		return rc;
	if (!v->rx_buf) {
		unsigned slots = MAX(v->rxq.size, v->txq.size);
		while ((PAGE_SIZE << v->buf_order) < (uint64_t)slots * VNET_SLOT)
			v->buf_order++;
		v->rx_phys = pmm_alloc_pages(v->buf_order);
		v->tx_phys = pmm_alloc_pages(v->buf_order);
		if (!v->rx_phys || !v->tx_phys) {
			ksnprintf(vp->error, sizeof(vp->error), "out of memory for packet buffers");
			return -ENOMEM;
		}
		v->rx_buf = PHYS_TO_VIRT(v->rx_phys);
		v->tx_buf = PHYS_TO_VIRT(v->tx_phys);
	}
	for (uint16_t i = 0; i < v->rxq.size; i++)
		vnet_rx_fill(v, i);
	v->tx_nfree = 0;
	v->tx_kicked = 0;
	for (uint16_t i = 0; i < v->txq.size; i++)
		v->tx_free[v->tx_nfree++] = i;
	virtq_interrupts(&v->txq, false);
	virtq_interrupts(&v->rxq, v->msix);
	virtio_driver_ok(vp);
	virtq_kick(&v->rxq);
	if (virtio_status(vp) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
		ksnprintf(vp->error, sizeof(vp->error), "device status 0x%x after DRIVER_OK (%s)",
			  virtio_status(vp), virtio_status(vp) & VIRTIO_STATUS_FAILED ? "failed" : "needs reset");
		return -EIO;
	}
	v->nd.link_up = vnet_link(v);
	return 0;
}

static int vnet_reap(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	uint16_t slot;
	uint32_t len;
	int n = 0;
	if (nd->inject_stall)
		return 0;
	while (virtq_next_used(&v->txq, &slot, &len)) {
		if (slot >= v->txq.size) {
			nd->tx.errors++;
			continue;
		}
		v->tx_free[v->tx_nfree++] = slot;
		nd->tx.packets++;
		n++;
	}
	return n;
}

static unsigned vnet_tx_pending(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	return v->txq.size - v->tx_nfree;
}

/*
 * One notification per batch: net_unlock() calls this after each critical
 * section, so a burst of TCP segments costs one doorbell.  A doorbell is a
 * write to device memory: under qemu's TCG the writing CPU then takes the
 * global lock, which the device model's thread holds while it moves
 * packets; a write per frame was ~8 % of the guest's time sending a file.
 */
static void vnet_tx_commit(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	if (v->tx_kicked == v->txq.avail_idx)
		return;
	v->tx_kicked = v->txq.avail_idx;
	if (virtq_kick(&v->txq))
		nd->tx.doorbells++;
}

static int vnet_tx(struct netdev *nd, const struct netdev_tx *f)
{
	struct vnet *v = nd->driver_data;
	if (nd->state != NETDEV_UP)
		return -EIO;
	if (f->len > NETDEV_FRAME_MAX || f->len < 14) {
		nd->tx.drops++;
		return -EINVAL;
	}
	if (!v->tx_nfree)
		vnet_reap(nd);
	if (!v->tx_nfree) {
		/* Full: make sure the device has been told, and ask for an
		 * interrupt on the next completion. */
		vnet_tx_commit(nd);
		virtq_interrupts(&v->txq, true);
		if (!vnet_reap(nd)) {
			nd->tx.drops++;
			return -EBUSY;
		}
	}
	uint16_t slot = v->tx_free[--v->tx_nfree];
	uint8_t *buf = v->tx_buf + (size_t)slot * VNET_SLOT;
	struct vnet_hdr *h = (struct vnet_hdr *)buf;
	memset(h, 0, sizeof(*h));
	if (f->csum_start && vnet_has(v, VNET_F_CSUM)) {
		h->flags = VNET_HDR_F_NEEDS_CSUM;
		h->csum_start = f->csum_start;
		h->csum_offset = f->csum_offset;
	}
	uint8_t *p = buf + sizeof(*h);
	for (unsigned i = 0; i < f->nfrags; i++) {
		memcpy(p, f->frags[i].data, f->frags[i].len);
		p += f->frags[i].len;
	}
	volatile struct virtq_desc *d = &v->txq.desc[slot];
	d->addr = v->tx_phys + (uint64_t)slot * VNET_SLOT;
	d->len = sizeof(*h) + f->len;
	d->flags = 0;
	virtq_publish(&v->txq, slot);
	nd->tx.bytes += f->len;
	return 0;
}

static int vnet_rx(struct netdev *nd, netdev_rx_fn fn, void *arg, int budget)
{
	struct vnet *v = nd->driver_data;
	int n = 0;
	uint16_t slot;
	uint32_t len;
	bool posted = false;
again:
	while (n < budget && virtq_next_used(&v->rxq, &slot, &len)) {
		if (slot >= v->rxq.size) {
			nd->rx.errors++;
			ksnprintf(nd->error, sizeof(nd->error), "device returned receive slot %u of %u", slot, v->rxq.size);
			continue;
		}
		uint8_t *buf = v->rx_buf + (size_t)slot * VNET_SLOT;
		struct vnet_hdr *h = (struct vnet_hdr *)buf;
		unsigned nbufs = vnet_has(v, VNET_F_MRG_RXBUF) ? h->num_buffers : 1;
		const uint8_t *frame = buf + sizeof(*h);
		uint32_t flen = len >= sizeof(*h) ? len - sizeof(*h) : 0;
		bool ok = len >= sizeof(*h) + 14 && len <= VNET_SLOT && nbufs >= 1;
		if (ok && nbufs > 1) {
			/* Frame continues in further slots: gather into v->frame. */
			if (flen > sizeof(v->frame))
				ok = false;
			else
				memcpy(v->frame, frame, flen);
			for (unsigned i = 1; i < nbufs; i++) {
				uint16_t s2;
				uint32_t l2;
				if (!virtq_next_used(&v->rxq, &s2, &l2) || s2 >= v->rxq.size) {
					nd->rx.errors++;
					ok = false;
					break;
				}
				if (ok && flen + l2 <= sizeof(v->frame) && l2 <= VNET_SLOT)
					memcpy(v->frame + flen, v->rx_buf + (size_t)s2 * VNET_SLOT, l2);
				else
					ok = false;
				flen += l2;
				vnet_rx_fill(v, s2);
			}
			frame = v->frame;
		}
		if (ok && flen <= NETDEV_FRAME_MAX && fn(arg, frame, flen, false)) {
			nd->rx.packets++;
			nd->rx.bytes += flen;
		} else {
			nd->rx.drops++;
		}
		vnet_rx_fill(v, slot);
		posted = true;
		n++;
	}
	if (n < budget && v->msix) {
		virtq_interrupts(&v->rxq, true);
		if (virtq_has_used(&v->rxq)) {
			virtq_interrupts(&v->rxq, false);
			goto again;
		}
	}
	if (posted && virtq_kick(&v->rxq))
		nd->rx.doorbells++;
	return n;
}

static int vnet_reset(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	int rc = vnet_start(v);
	if (rc < 0)
		strlcpy(nd->error, v->vp.error, sizeof(nd->error));
	return rc;
}

static int vnet_link_poll(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	nd->link_up = vnet_link(v);
	return 0;
}

static void vnet_describe(struct netdev *nd)
{
	struct vnet *v = nd->driver_data;
	kprintf("  virtio features 0x%llx, status 0x%x, rx queue %u avail %u used %u, tx queue %u avail %u used %u\n",
		(unsigned long long)v->features, virtio_status(&v->vp), v->rxq.size, v->rxq.avail_idx,
		v->rxq.last_used, v->txq.size, v->txq.avail_idx, v->txq.last_used);
}

static const struct netdev_ops vnet_ops = {
	.rx = vnet_rx,
	.tx = vnet_tx,
	.tx_commit = vnet_tx_commit,
	.reap = vnet_reap,
	.tx_pending = vnet_tx_pending,
	.reset = vnet_reset,
	.link_poll = vnet_link_poll,
	.describe = vnet_describe,
};

static int vnet_intr_setup(struct vnet *v)
{
	struct pci_dev *d = v->vp.pci;
	static const irq_handler_t handlers[3] = { vnet_intr_config, vnet_intr_rx, vnet_intr_tx };
	uint8_t vec[3];
	uint32_t dest[3];
	if (!d->msix_cap || d->msix_table_size < 3)
		return -ENOTSUP;
	for (unsigned i = 0; i < 3; i++) {
		int x = irq_alloc_vector(handlers[i], v);
		if (x < 0)
			return x;
		vec[i] = (uint8_t)x;
		dest[i] = cpus[0]->apic_id;
	}
	int n = pci_msix_enable(d, 3, vec, dest);
	return n == 3 ? 0 : n < 0 ? n : -ENOSPC;
}

static int vnet_attach(struct pci_dev *d)
{
	struct vnet *v = kzalloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	ksnprintf(v->nd.name, sizeof(v->nd.name), "vnet%u", vnet_count);
	pci_enable(d);
	int rc = virtio_pci_map(&v->vp, d);
	if (rc < 0) {
		kprintf("virtio-net: %02x:%02x.%u: no virtio 1.x capabilities (legacy-only device), skipped\n",
			d->bus, d->dev, d->fn);
		kfree(v);
		return rc;
	}
	rc = vnet_intr_setup(v);
	v->msix = rc == 0;
	if (rc < 0)
		kprintf("virtio-net: %s: no MSI-X (%s), receive is polled\n", v->nd.name, strerror(rc));
	if ((rc = vnet_start(v)) < 0) {
		kprintf("virtio-net: %s: %s\n", v->nd.name, v->vp.error);
		return rc;
	}
	if (vnet_has(v, VNET_F_MAC)) {
		for (unsigned i = 0; i < 6; i++)
			v->nd.mac[i] = v->vp.device[i];
	} else {
		static const uint8_t local[6] = { 0x02, 0x00, 0x00, 0x56, 0x4e, 0x00 };
		memcpy(v->nd.mac, local, 6);
		v->nd.mac[5] = (uint8_t)vnet_count;
	}
	v->nd.model = "virtio-net";
	v->nd.mtu = 1500;
	v->nd.rx_ring = v->rxq.size;
	v->nd.tx_ring = v->txq.size;
	v->nd.features = (v->msix ? NETDEV_F_MSIX : 0) |
			 (vnet_has(v, VNET_F_CSUM) ? NETDEV_F_TX_CSUM : 0) |
			 (vnet_has(v, VNET_F_MRG_RXBUF) ? NETDEV_F_RX_MERGE : 0);
	v->nd.ops = &vnet_ops;
	v->nd.driver_data = v;
	vnet_count++;
	return netdev_register(&v->nd);
}

static int vnet_attach_all(void)
{
	int n = 0;
	for (struct pci_dev *d = NULL; (d = pci_find_id(d, 0x1af4, 0x1041));) {
		if (vnet_attach(d) == 0)
			n++;
	}
	/* Transitional devices (0x1000) that also expose the modern interface. */
	for (struct pci_dev *d = NULL; (d = pci_find_id(d, 0x1af4, 0x1000));) {
		if (vnet_attach(d) == 0)
			n++;
	}
	return n;
}

DRIVER(virtio_net, 30, vnet_attach_all);
