/*
 * Intel 82574L (e1000e; qemu's -device e1000e) with legacy receive and
 * extended transmit descriptors, one receive and one transmit ring, MSI (one
 * vector) and interrupt causes read from ICR.  Registers:
 * drivers/net/e1000e_reg.h.
 *
 * Rings: the driver owns receive descriptors between RDT and RDH; the
 * device fills from RDH and sets DD.  We hand a descriptor back by writing
 * RDT to it after consuming it (one slot always stays empty, so RDH == RDT
 * means "no free descriptors", not "all free").  Transmit: we fill at TDT,
 * the device consumes from TDH and sets DD (we ask with RS on every
 * descriptor); tx_clean chases it.  Each descriptor owns a fixed 2 KiB
 * buffer, so transmit copies the frame.  TCP checksums are the device's:
 * a TCP/IP context descriptor says where the sum starts and goes (written
 * again only when that changes), and data descriptors ask for it with
 * POPTS.TXSM; qemu's model ignored the legacy descriptor's CSS/CSO/IC.
 *
 * Interrupts: the handler reads ICR (read-to-clear in MSI mode), masks the
 * receive/transmit causes and wakes the consumer, which re-enables them in
 * rx() once the ring is drained (then looks once more).  A link status
 * change (LSC) reads STATUS.LU and reports it.  Errors are decoded into
 * words in dev->error (receive overrun, descriptor error bits).
 */
#include "drivers/driver.h"
#include "drivers/net/e1000e_reg.h"
#include "drivers/net/netdev.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/pci.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/trap.h"

#define EM_NDESC   256
#define EM_BUF     2048
#define EM_IRQ_RX   (EM_INT_RXT0 | EM_INT_RXO | EM_INT_RXDMT0)
#define EM_IRQ_DATA (EM_IRQ_RX | EM_INT_TXDW)

struct em {
	struct netdev nd;
	struct pci_dev *pci;
	volatile uint8_t *regs;
	volatile struct em_rx_desc *rxd;
	volatile struct em_tx_desc *txd;
	uint64_t rxd_phys, txd_phys, rxb_phys, txb_phys;
	uint8_t *rxb, *txb;
	unsigned rx_next;             /* next descriptor the device completes */
	unsigned tx_tail, tx_clean;
	unsigned tdt_written;         /* TDT as last written to the device */
	uint8_t ctx_css, ctx_cso;     /* checksum context given to the device, 0 = none */
	bool msi;
	volatile uint32_t icr_seen;   /* causes accumulated by the handler */
	uint64_t rx_overruns;
};

static unsigned em_count;

static inline uint32_t em_r(struct em *e, unsigned reg) { return *(volatile uint32_t *)(e->regs + reg); }
static inline void em_w(struct em *e, unsigned reg, uint32_t v) { *(volatile uint32_t *)(e->regs + reg) = v; }

static void em_rx_error_words(struct netdev *nd, uint8_t err)
{
	ksnprintf(nd->error, sizeof(nd->error), "receive descriptor error 0x%02x:%s%s%s%s%s", err,
		  err & EM_RXD_ERR_CE ? " CRC/alignment" : "", err & EM_RXD_ERR_SE ? " symbol" : "",
		  err & EM_RXD_ERR_SEQ ? " sequence" : "", err & EM_RXD_ERR_CXE ? " carrier extension" : "",
		  err & EM_RXD_ERR_RXE ? " data" : "");
}

static void em_intr(void *arg)
{
	struct em *e = arg;
	uint32_t icr = em_r(e, EM_ICR);
	if (!icr)
		return;
	__atomic_or_fetch(&e->icr_seen, icr, __ATOMIC_RELEASE);
	if (icr & (EM_INT_RXT0 | EM_INT_RXO | EM_INT_RXDMT0))
		e->nd.rx.irqs++;
	if (icr & EM_INT_TXDW)
		e->nd.tx.irqs++;
	if (icr & EM_IRQ_DATA)
		em_w(e, EM_IMC, EM_IRQ_DATA);
	if (icr & EM_INT_LSC) {
		e->nd.link_up = (em_r(e, EM_STATUS) & EM_STATUS_LU) != 0;
		netdev_link_changed(&e->nd);
	} else {
		netdev_kick(&e->nd);
	}
}

static int em_read_mac(struct em *e)
{
	uint32_t ral = em_r(e, EM_RAL0), rah = em_r(e, EM_RAH0);
	if (rah & EM_RAH_AV) {
		for (unsigned i = 0; i < 4; i++)
			e->nd.mac[i] = (uint8_t)(ral >> (8 * i));
		e->nd.mac[4] = (uint8_t)rah;
		e->nd.mac[5] = (uint8_t)(rah >> 8);
		return 0;
	}
	/* Not loaded from the NVM into RAL0/RAH0: read words 0-2 of it. */
	for (unsigned w = 0; w < 3; w++) {
		em_w(e, EM_EERD, (w << EM_EERD_ADDR_SHIFT) | EM_EERD_START);
		uint64_t deadline = time_ns() + 10 * NS_PER_MS;
		uint32_t v;
		while (!((v = em_r(e, EM_EERD)) & EM_EERD_DONE)) {
			if (time_ns() > deadline) {
				ksnprintf(e->nd.error, sizeof(e->nd.error), "NVM read of word %u timed out", w);
				return -ETIMEDOUT;
			}
			time_delay_us(5);
		}
		e->nd.mac[2 * w] = (uint8_t)(v >> EM_EERD_DATA_SHIFT);
		e->nd.mac[2 * w + 1] = (uint8_t)(v >> (EM_EERD_DATA_SHIFT + 8));
	}
	return 0;
}

/* Reset and bring up: used by attach and by the watchdog's reset. */
static int em_start(struct em *e)
{
	em_w(e, EM_IMC, 0xffffffff);
	em_w(e, EM_RCTL, 0);
	em_w(e, EM_TCTL, EM_TCTL_PSP);
	em_w(e, EM_CTRL, em_r(e, EM_CTRL) | EM_CTRL_RST);
	time_delay_us(20);
	uint64_t deadline = time_ns() + 100 * NS_PER_MS;
	while (em_r(e, EM_CTRL) & EM_CTRL_RST) {
		if (time_ns() > deadline) {
			ksnprintf(e->nd.error, sizeof(e->nd.error), "device reset (CTRL.RST) did not finish in 100 ms");
			return -ETIMEDOUT;
		}
		time_delay_us(100);
	}
	em_w(e, EM_IMC, 0xffffffff);
	(void)em_r(e, EM_ICR);
	em_w(e, EM_CTRL, (em_r(e, EM_CTRL) | EM_CTRL_SLU | EM_CTRL_ASDE) &
	     ~(EM_CTRL_LRST | EM_CTRL_PHY_RST | EM_CTRL_ILOS));
	int rc = em_read_mac(e);
	if (rc < 0)
		return rc;
	em_w(e, EM_RAL0, (uint32_t)e->nd.mac[0] | (uint32_t)e->nd.mac[1] << 8 |
	     (uint32_t)e->nd.mac[2] << 16 | (uint32_t)e->nd.mac[3] << 24);
	em_w(e, EM_RAH0, (uint32_t)e->nd.mac[4] | (uint32_t)e->nd.mac[5] << 8 | EM_RAH_AV);
	for (unsigned i = 0; i < 128; i++)
		em_w(e, EM_MTA + 4 * i, 0);

	/* Receive ring, every descriptor given to the device but one. */
	for (unsigned i = 0; i < EM_NDESC; i++) {
		e->rxd[i].addr = e->rxb_phys + (uint64_t)i * EM_BUF;
		e->rxd[i].status = 0;
	}
	e->rx_next = 0;
	em_w(e, EM_RDBAL, (uint32_t)e->rxd_phys);
	em_w(e, EM_RDBAH, (uint32_t)(e->rxd_phys >> 32));
	em_w(e, EM_RDLEN, EM_NDESC * sizeof(struct em_rx_desc));
	em_w(e, EM_RDH, 0);
	em_w(e, EM_RDT, EM_NDESC - 1);
	em_w(e, EM_RDTR, 0);
	em_w(e, EM_RADV, 0);
	em_w(e, EM_RFCTL, 0);          /* legacy descriptors */
	em_w(e, EM_RXCSUM, 0);

	memset((void *)e->txd, 0, EM_NDESC * sizeof(struct em_tx_desc));
	e->tx_tail = e->tx_clean = e->tdt_written = 0;
	e->ctx_css = e->ctx_cso = 0;
	em_w(e, EM_TDBAL, (uint32_t)e->txd_phys);
	em_w(e, EM_TDBAH, (uint32_t)(e->txd_phys >> 32));
	em_w(e, EM_TDLEN, EM_NDESC * sizeof(struct em_tx_desc));
	em_w(e, EM_TDH, 0);
	em_w(e, EM_TDT, 0);
	em_w(e, EM_TIDV, 0);
	em_w(e, EM_TADV, 0);
	em_w(e, EM_TIPG, 10 | 8 << 10 | 6 << 20);
	em_w(e, EM_ITR, 0);
	em_w(e, EM_TCTL, EM_TCTL_EN | EM_TCTL_PSP | EM_TCTL_CT(0x0f) | EM_TCTL_COLD(0x3f));
	/* Multicast promiscuous: mDNS needs 224.0.0.251 and lwIP has no
	 * filter hook here. */
	em_w(e, EM_RCTL, EM_RCTL_EN | EM_RCTL_BAM | EM_RCTL_MPE | EM_RCTL_BSIZE_2048 | EM_RCTL_SECRC);
	e->icr_seen = 0;
	if (e->msi)
		em_w(e, EM_IMS, EM_IRQ_RX | EM_INT_LSC);
	e->nd.link_up = (em_r(e, EM_STATUS) & EM_STATUS_LU) != 0;
	return 0;
}

/* A context descriptor: extended (DCMD.DEXT) with DTYP 0. */
static bool em_tx_is_context(volatile struct em_tx_desc *d)
{
	return (d->cmd & EM_TXD_CMD_DEXT) && !(d->cso & 0xf0);
}

static unsigned em_tx_free(struct em *e)
{
	return (e->tx_clean + EM_NDESC - e->tx_tail - 1) % EM_NDESC;
}

static int em_reap(struct netdev *nd)
{
	struct em *e = nd->driver_data;
	int n = 0;
	if (nd->inject_stall)
		return 0;
	while (e->tx_clean != e->tx_tail && (e->txd[e->tx_clean].status & EM_TXD_STAT_DD)) {
		volatile struct em_tx_desc *d = &e->txd[e->tx_clean];
		if (!em_tx_is_context(d))
			nd->tx.packets++;
		d->status = 0;
		e->tx_clean = (e->tx_clean + 1) % EM_NDESC;
		n++;
	}
	return n;
}

static unsigned em_tx_pending(struct netdev *nd)
{
	struct em *e = nd->driver_data;
	return (e->tx_tail + EM_NDESC - e->tx_clean) % EM_NDESC;
}

/* One TDT write per batch: qemu's model transmits everything up to TDT on
 * the write, inside the writing CPU's time, so per-frame writes cost a
 * device exit each. */
static void em_tx_commit(struct netdev *nd)
{
	struct em *e = nd->driver_data;
	if (e->tdt_written == e->tx_tail)
		return;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	em_w(e, EM_TDT, e->tx_tail);
	e->tdt_written = e->tx_tail;
	nd->tx.doorbells++;
}

static int em_tx(struct netdev *nd, const struct netdev_tx *f)
{
	struct em *e = nd->driver_data;
	if (nd->state != NETDEV_UP)
		return -EIO;
	if (f->len > NETDEV_FRAME_MAX || f->len < 14) {
		nd->tx.drops++;
		return -EINVAL;
	}
	/* Checksum offload needs a context descriptor saying where the sum
	 * goes, again only when that changes (lwIP's TCP/IPv4 frames all have
	 * the same layout). */
	bool csum = f->csum_start != 0;
	uint8_t css = (uint8_t)f->csum_start, cso = (uint8_t)(f->csum_start + f->csum_offset);
	bool ctx = csum && (css != e->ctx_css || cso != e->ctx_cso);
	unsigned need = ctx ? 2 : 1;
	if (em_tx_free(e) < need) {
		em_reap(nd);
		if (em_tx_free(e) < need) {
			em_tx_commit(nd);
			nd->tx.drops++;
			if (e->msi)
				em_w(e, EM_IMS, EM_INT_TXDW);     /* wake us on the next completion */
			return -EBUSY;
		}
	}
	if (ctx) {
		volatile struct em_tx_ctx_desc *c = (volatile struct em_tx_ctx_desc *)&e->txd[e->tx_tail];
		c->ipcss = c->ipcso = 0;                /* the IP header sum is lwIP's */
		c->ipcse = 0;
		c->tucss = css;
		c->tucso = cso;
		c->tucse = 0;                           /* to the end of the frame */
		c->cmd_len = EM_TXD_CTX_CMD_DEXT | EM_TXD_CTX_CMD_RS | EM_TXD_CTX_CMD_TCP | EM_TXD_CTX_CMD_IP;
		c->status = 0;
		c->hdrlen = 0;
		c->mss = 0;
		e->ctx_css = css;
		e->ctx_cso = cso;
		e->tx_tail = (e->tx_tail + 1) % EM_NDESC;
	}
	unsigned i = e->tx_tail;
	uint8_t *buf = e->txb + (size_t)i * EM_BUF;
	uint8_t *p = buf;
	for (unsigned k = 0; k < f->nfrags; k++) {
		memcpy(p, f->frags[k].data, f->frags[k].len);
		p += f->frags[k].len;
	}
	/* Every frame an extended data descriptor, so POPTS (checksum or
	 * not) is stated for each one. */
	volatile struct em_tx_desc *d = &e->txd[i];
	d->addr = e->txb_phys + (uint64_t)i * EM_BUF;
	d->length = (uint16_t)f->len;
	d->cso = EM_TXD_DTYP_DATA;
	d->status = 0;
	d->special = 0;
	d->css = csum ? EM_TXD_POPTS_TXSM : 0;
	d->cmd = EM_TXD_CMD_EOP | EM_TXD_CMD_IFCS | EM_TXD_CMD_RS | EM_TXD_CMD_DEXT;
	e->tx_tail = (i + 1) % EM_NDESC;
	nd->tx.bytes += f->len;
	return 0;
}

static int em_rx(struct netdev *nd, netdev_rx_fn fn, void *arg, int budget)
{
	struct em *e = nd->driver_data;
	int n = 0;
	unsigned last = EM_NDESC;
	uint32_t icr = __atomic_exchange_n(&e->icr_seen, 0, __ATOMIC_ACQUIRE);
	if (icr & EM_INT_RXO) {
		e->rx_overruns++;
		ksnprintf(nd->error, sizeof(nd->error),
			  "receiver overrun: no free receive descriptors, frames lost (%llu times)",
			  (unsigned long long)e->rx_overruns);
	}
again:
	while (n < budget) {
		volatile struct em_rx_desc *d = &e->rxd[e->rx_next];
		uint8_t st = d->status;
		if (!(st & EM_RXD_STAT_DD))
			break;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint16_t len = d->length;
		uint8_t err = d->errors;
		if (!(st & EM_RXD_STAT_EOP) || (err & EM_RXD_ERR_FRAME) || len < 14 || len > NETDEV_FRAME_MAX) {
			if (err & EM_RXD_ERR_FRAME) {
				nd->rx.errors++;
				em_rx_error_words(nd, err);
			}
			nd->rx.drops++;
		} else if (fn(arg, e->rxb + (size_t)e->rx_next * EM_BUF, len, false)) {
			nd->rx.packets++;
			nd->rx.bytes += len;
		} else {
			nd->rx.drops++;
		}
		d->status = 0;
		last = e->rx_next;
		e->rx_next = (e->rx_next + 1) % EM_NDESC;
		n++;
	}
	if (last != EM_NDESC) {
		em_w(e, EM_RDT, last);
		nd->rx.doorbells++;
	}
	if (n < budget && e->msi) {
		em_w(e, EM_IMS, EM_IRQ_RX);
		if (e->rxd[e->rx_next].status & EM_RXD_STAT_DD) {
			em_w(e, EM_IMC, EM_IRQ_DATA);
			last = EM_NDESC;
			goto again;
		}
	}
	return n;
}

static int em_reset(struct netdev *nd)
{
	return em_start(nd->driver_data);
}

static int em_link_poll(struct netdev *nd)
{
	struct em *e = nd->driver_data;
	nd->link_up = (em_r(e, EM_STATUS) & EM_STATUS_LU) != 0;
	return 0;
}

static void em_describe(struct netdev *nd)
{
	struct em *e = nd->driver_data;
	kprintf("  82574 CTRL 0x%08x STATUS 0x%08x RCTL 0x%08x TCTL 0x%08x; rx RDH %u RDT %u next %u; "
		"tx TDH %u TDT %u clean %u; receive overruns %llu\n",
		em_r(e, EM_CTRL), em_r(e, EM_STATUS), em_r(e, EM_RCTL), em_r(e, EM_TCTL), em_r(e, EM_RDH),
		em_r(e, EM_RDT), e->rx_next, em_r(e, EM_TDH), em_r(e, EM_TDT), e->tx_clean,
		(unsigned long long)e->rx_overruns);
}

static const struct netdev_ops em_ops = {
	.rx = em_rx,
	.tx = em_tx,
	.tx_commit = em_tx_commit,
	.reap = em_reap,
	.tx_pending = em_tx_pending,
	.reset = em_reset,
	.link_poll = em_link_poll,
	.describe = em_describe,
};

static unsigned em_order(size_t bytes)
{
	unsigned o = 0;
	while ((PAGE_SIZE << o) < bytes)
		o++;
	return o;
}

static int em_attach(struct pci_dev *d)
{
	struct em *e = kzalloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	ksnprintf(e->nd.name, sizeof(e->nd.name), "em%u", em_count);
	e->pci = d;
	pci_enable(d);
	e->regs = pci_map_bar(d, 0);
	unsigned ring_order = em_order(EM_NDESC * 16), buf_order = em_order((size_t)EM_NDESC * EM_BUF);
	e->rxd_phys = pmm_alloc_pages(ring_order);
	e->txd_phys = pmm_alloc_pages(ring_order);
	e->rxb_phys = pmm_alloc_pages(buf_order);
	e->txb_phys = pmm_alloc_pages(buf_order);
	if (!e->regs || !e->rxd_phys || !e->txd_phys || !e->rxb_phys || !e->txb_phys) {
		kprintf("e1000e: %02x:%02x.%u: %s\n", d->bus, d->dev, d->fn,
			e->regs ? "out of memory for rings" : "BAR0 is not a memory BAR");
		return -ENOMEM;
	}
	e->rxd = PHYS_TO_VIRT(e->rxd_phys);
	e->txd = PHYS_TO_VIRT(e->txd_phys);
	e->rxb = PHYS_TO_VIRT(e->rxb_phys);
	e->txb = PHYS_TO_VIRT(e->txb_phys);
	memset((void *)e->rxd, 0, PAGE_SIZE << ring_order);

	int v = irq_alloc_vector(em_intr, e);
	if (v >= 0 && d->msi_cap && pci_msi_enable(d, (uint8_t)v, cpus[0]->apic_id) == 0)
		e->msi = true;
	else
		kprintf("e1000e: %s: no MSI, receive is polled\n", e->nd.name);
	int rc = em_start(e);
	if (rc < 0) {
		kprintf("e1000e: %s: %s\n", e->nd.name, e->nd.error);
		return rc;
	}
	e->nd.error[0] = 0;
	e->nd.model = "82574L";
	e->nd.mtu = 1500;
	e->nd.rx_ring = e->nd.tx_ring = EM_NDESC;
	e->nd.features = NETDEV_F_TX_CSUM | (e->msi ? NETDEV_F_MSI : 0);
	e->nd.ops = &em_ops;
	e->nd.driver_data = e;
	em_count++;
	return netdev_register(&e->nd);
}

static int em_attach_all(void)
{
	int n = 0;
	for (struct pci_dev *d = NULL; (d = pci_find_id(d, 0x8086, 0x10d3));)
		if (em_attach(d) == 0)
			n++;
	return n;
}

DRIVER(e1000e, 31, em_attach_all);
