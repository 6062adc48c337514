/*
 * AHCI host bus adapter: BIOS/OS handoff, HBA reset, port enumeration, the
 * shared interrupt handler and the per-HBA watchdog thread (timeouts and
 * error recovery run there, never in interrupt context).
 */
#include "drivers/ahci/ahci.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/time.h"
#include "kernel/initcall.h"

KERNEL_ARG_FLAG(ahci_dma32, "AHCI: keep every DMA structure below 4 GiB, as on controllers without 64-bit DMA");

int ahci_wait(volatile uint8_t *base, uint32_t off, uint32_t mask, uint32_t want,
	      uint64_t timeout_us)
{
	uint64_t deadline = time_ns() + timeout_us * NS_PER_US;

	for (;;) {
		if ((*(volatile uint32_t *)(base + off) & mask) == want)
			return 0;
		if (time_ns() > deadline)
			return -ETIMEDOUT;
		__builtin_ia32_pause();
	}
}

/* AHCI 10.6.3: ask the firmware to let go, give it 25 ms, and 2 s more if
 * it says it is busy finishing a command.  A firmware that never answers
 * is reported and then overruled. */
static void ahci_hba_handoff(struct ahci_hba *h)
{
	if (!(h->cap2 & AHCI_CAP2_BOH))
		return;
	ahci_wr(h, AHCI_BOHC, ahci_rd(h, AHCI_BOHC) | AHCI_BOHC_OOS);
	if (ahci_wait(h->abar, AHCI_BOHC, AHCI_BOHC_BOS, 0, 25000) == 0 &&
	    !(ahci_rd(h, AHCI_BOHC) & AHCI_BOHC_BB))
		return;
	if (ahci_wait(h->abar, AHCI_BOHC, AHCI_BOHC_BB | AHCI_BOHC_BOS, 0, 2000000) < 0)
		kprintf("ahci%u: BIOS did not release the HBA within 2 s (BOHC 0x%x); taking it anyway\n",
			h->index, ahci_rd(h, AHCI_BOHC));
}

static int ahci_hba_reset(struct ahci_hba *h)
{
	ahci_wr(h, AHCI_GHC, ahci_rd(h, AHCI_GHC) | AHCI_GHC_AE);
	ahci_wr(h, AHCI_GHC, ahci_rd(h, AHCI_GHC) | AHCI_GHC_HR);
	/* AHCI 10.4.3: the HBA clears HR within 1 s. */
	if (ahci_wait(h->abar, AHCI_GHC, AHCI_GHC_HR, 0, 1000000) < 0) {
		kprintf("ahci%u: HBA reset did not complete within 1 s (GHC 0x%x)\n",
			h->index, ahci_rd(h, AHCI_GHC));
		return -ETIMEDOUT;
	}
	ahci_wr(h, AHCI_GHC, ahci_rd(h, AHCI_GHC) | AHCI_GHC_AE);
	return 0;
}

int ahci_hba_init(struct ahci_hba *h)
{
	const char *t = arg_get("blk_timeout_ms");
	unsigned long long ms = 5000;
	int r;

	if (t && (parse_u64(t, &ms) < 0 || ms == 0))
		ms = 5000;
	h->timeout_ns = ms * NS_PER_MS;
	waitq_init(&h->wd_wait, "ahci watchdog");
	h->vs = ahci_rd(h, AHCI_VS);
	if (h->vs == 0xffffffff) {
		kprintf("ahci%u: registers read as all ones: ABAR not decoded\n", h->index);
		return -ENODEV;
	}
	h->cap2 = ahci_rd(h, AHCI_CAP2);
	ahci_hba_handoff(h);
	if ((r = ahci_hba_reset(h)) < 0)
		return r;
	/* CAP and PI are only valid after AE is set (and survive reset). */
	h->cap = ahci_rd(h, AHCI_CAP);
	h->pi = ahci_rd(h, AHCI_PI);
	h->dma32 = !(h->cap & AHCI_CAP_S64A) || arg_present("ahci_dma32");
	if (!h->pi)                        /* some HBAs leave PI to firmware */
		h->pi = (uint32_t)((2ULL << AHCI_CAP_NP(h->cap)) - 1);
	kprintf("ahci%u: AHCI %x.%x, %u ports (mask 0x%x), %u slots, %s, %s\n", h->index,
		h->vs >> 16, (h->vs >> 8) & 0xff, AHCI_CAP_NP(h->cap) + 1, h->pi,
		AHCI_CAP_NCS(h->cap) + 1, h->cap & AHCI_CAP_SNCQ ? "NCQ" : "no NCQ",
		!h->dma32 ? "64-bit DMA" : h->cap & AHCI_CAP_S64A ?
		"32-bit DMA (forced by ahci_dma32)" : "32-bit DMA");
	for (unsigned i = 0; i < AHCI_MAX_PORTS; i++) {
		if (!(h->pi & (1u << i)))
			continue;
		struct ahci_port *p = kzalloc(sizeof *p);
		if (!p)
			return -ENOMEM;
		p->hba = h;
		p->index = i;
		p->regs = h->abar + AHCI_PORT_BASE(i);
		r = ahci_port_init(p);
		if (r == -EBUSY)
			continue;    /* port would not stop: p stays, the HBA may use its memory */
		if (r < 0) {
			kfree(p);
			continue;
		}
		h->port[i] = p;
	}
	ahci_wr(h, AHCI_IS, 0xffffffff);
	return 0;
}

void ahci_hba_intr(void *arg)
{
	struct ahci_hba *h = arg;
	uint32_t is = ahci_rd(h, AHCI_IS);

	/* Port status first, then the HBA bit (AHCI 10.7.2.1). */
	for (uint32_t m = is; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);
		if (h->port[i])
			ahci_port_process(h->port[i]);
		else
			ahci_wr(h, AHCI_PORT_BASE(i) + AHCI_PxIS, 0xffffffff);
	}
	if (is)
		ahci_wr(h, AHCI_IS, is);
}

static bool ahci_wd_cond(void *arg)
{
	struct ahci_hba *h = arg;

	for (unsigned i = 0; i < AHCI_MAX_PORTS; i++)
		if (h->port[i] && h->port[i]->need_recovery)
			return true;
	return false;
}

/* Checks deadlines a few times per timeout period; woken at once when a
 * port reports an error. */
static void ahci_watchdog_thread(void *arg)
{
	struct ahci_hba *h = arg;
	uint64_t period = h->timeout_ns / 4;

	period = MIN(period, 100 * NS_PER_MS);
	period = MAX(period, 5 * NS_PER_MS);
	for (;;) {
		waitq_wait_until(&h->wd_wait, ahci_wd_cond, h, time_ns() + period);
		for (unsigned i = 0; i < AHCI_MAX_PORTS; i++)
			if (h->port[i])
				ahci_port_watchdog(h->port[i]);
	}
}

int ahci_hba_start_watchdog(struct ahci_hba *h)
{
	char name[16];

	ksnprintf(name, sizeof name, "ahci%u-wd", h->index);
	return thread_create(name, ahci_watchdog_thread, h, THREAD_ANY_CPU) ? 0 : -ENOMEM;
}

/*
 * Power-off: on every disk port, refuse new requests, let the ones in
 * flight finish (reaping them here, bounded by the deadline), then -- the
 * port now idle and owned by this thread, like recovery owns it -- FLUSH
 * CACHE EXT as a polled command, and stop the port (ST, then FRE).  The
 * block layer's flush (order 30) already flushed every disk; this one
 * covers writes that finished after it and is what ATA asks before power
 * is removed.
 */
static int ahci_port_shutdown(struct ahci_port *p, uint64_t deadline)
{
	uint64_t fl;
	uint32_t tfd = 0;
	bool idle;
	int r;

	for (;;) {
		fl = spin_lock_irqsave(&p->lock);
		idle = !p->used && !p->recovering;
		if (idle || time_ns() >= deadline) {
			p->off = true;           /* submit refuses, process and watchdog stop */
			ahci_pwr(p, AHCI_PxIE, 0);
		}
		spin_unlock_irqrestore(&p->lock, fl);
		if (p->off)
			break;
		ahci_port_process(p);
		thread_sleep_ns(NS_PER_MS);
	}
	if (!idle) {
		kprintf("ahci%u port %u (%s): still busy at the power-off deadline: not flushed\n",
			p->hba->index, p->index, p->blk.name);
		return -ETIMEDOUT;
	}
	r = 0;
	if (p->wcache) {
		uint64_t t0 = time_ns();
		r = ahci_exec_polled(p, 0, ATA_CMD_FLUSH_EXT, 0, 0, 0, NULL, 0, &tfd);
		if (r < 0) {
			char why[96];
			ahci_decode_tfd(tfd, why, sizeof why);
			kprintf("ahci%u port %u (%s): FLUSH CACHE EXT at power-off failed: %s\n", p->hba->index,
				p->index, p->blk.name, r == -ETIMEDOUT ? "timed out" : why);
		} else {
			kprintf("ahci%u port %u (%s): cache flushed in %llu ms\n", p->hba->index, p->index,
				p->blk.name, (unsigned long long)((time_ns() - t0) / NS_PER_MS));
		}
	}
	int rs = ahci_port_stop(p);      /* prints what did not stop */
	return r < 0 ? r : rs;
}

int ahci_shutdown_all(uint64_t deadline)
{
	int first = 0;

	for (unsigned i = 0; i < ahci_nhba; i++) {
		struct ahci_hba *h = ahci_hbas[i];
		for (unsigned j = 0; h && j < AHCI_MAX_PORTS; j++) {
			struct ahci_port *p = h->port[j];
			if (!p || !p->blk.ops || p->dead || p->off)
				continue;
			int r = ahci_port_shutdown(p, deadline);
			if (r < 0 && !first)
				first = r;
		}
	}
	return first;
}
SHUTDOWN_STEP(ahci_shutdown, 40, ahci_shutdown_all);
