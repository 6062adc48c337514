/*
 * AHCI I/O path: block-layer ops, issue, completion, timeouts and recovery.
 *
 * A request's life: submit() takes a free slot, builds the command table
 * and appends the slot to the port FIFO; kick() issues FIFO heads (NCQ:
 * PxSACT then PxCI; non-queued: PxCI, alone); process() (interrupt or
 * poll) completes slots whose PxCI and PxSACT bits are clear.  An error
 * bit in PxIS, or a slot past its deadline, makes the port RECOVERING; the
 * watchdog thread then finds the guilty command (the non-queued one, or
 * the NCQ tag from READ LOG EXT page 10h), COMRESETs the port, fails that
 * command with the decoded reason and reissues the innocent ones (each at
 * most AHCI_MAX_RETRIES times).
 */
#include "drivers/ahci/ahci.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/pci.h"


static void ahci_print_state(struct ahci_port *p);

void (*ahci_recovery_test_hook)(struct ahci_port *p);

/* Completions are collected under the port lock and delivered after it is
 * dropped (done() may resubmit).  Kept small: this sits on whatever stack
 * the interrupt arrived on. */
struct ahci_done {
	struct blk_req *req;
	int status;
	const char *error;
};

static uint8_t *ahci_ctab(struct ahci_port *p, unsigned slot)
{
	return p->ctables + (size_t)slot * AHCI_CT_SIZE;
}

static uint64_t ahci_slot_mask(unsigned n)
{
	return n >= 32 ? 0xffffffffu : (1u << n) - 1;
}

/* Issue what the FIFO order and the queued/non-queued rule allow.  Lock held. */
static void ahci_port_kick(struct ahci_port *p)
{
	while (p->fifo_count && !p->recovering && !p->dead && !p->off) {
		unsigned s = p->fifo[p->fifo_head];
		struct ahci_slot *sl = &p->slot[s];

		if (p->nq_active >= 0 || (!sl->ncq && p->ncq_active))
			break;
		sl->issued = true;
		sl->deadline_ns = time_ns() + p->hba->timeout_ns;
		__asm__ volatile("" ::: "memory");
		if (sl->ncq) {
			p->ncq_active |= 1u << s;
			ahci_pwr(p, AHCI_PxSACT, 1u << s);
		} else {
			p->nq_active = (int)s;
		}
		ahci_pwr(p, AHCI_PxCI, 1u << s);
		p->fifo_head = (p->fifo_head + 1) % AHCI_MAX_SLOTS;
		p->fifo_count--;
	}
}

static uint8_t *ahci_bounce_buf(struct ahci_port *p, unsigned s)
{
	return p->bounce + (size_t)s * AHCI_BOUNCE_BYTES;
}

/* dma32: is any PRD above 4 GiB?  Then the data goes through the slot's
 * bounce buffer (copied in here for a write, out at completion for a
 * read: ahci_take_done). */
static int ahci_bounce_prepare(struct ahci_port *p, unsigned s, struct blk_req *req, struct ahci_prd *prd,
			       int n)
{
	bool high = false;
	for (int i = 0; i < n; i++)
		high |= prd[i].dbau != 0 || (uint64_t)prd[i].dba + (prd[i].dbc & 0x3fffff) + 1 > (1ULL << 32);
	p->slot[s].bounced = high;
	if (!high)
		return n;
	uint32_t bytes = req->nblocks * p->blk.lba_size;
	if (bytes > AHCI_BOUNCE_BYTES) {
		strlcpy(req->error, "request larger than the 32-bit DMA bounce buffer", sizeof req->error);
		return -EINVAL;
	}
	uint8_t *b = ahci_bounce_buf(p, s);
	if (req->op == BLK_OP_WRITE)
		for (unsigned i = 0; i < req->nsegs; b += req->segs[i].len, i++)
			memcpy(b, req->segs[i].buf, req->segs[i].len);
	uint64_t phys = p->bounce_phys + (uint64_t)s * AHCI_BOUNCE_BYTES;
	prd[0].dba = (uint32_t)phys;
	prd[0].dbau = 0;
	prd[0].rsvd = 0;
	prd[0].dbc = bytes - 1;
	p->bounces++;
	return 1;
}

static int ahci_prepare(struct ahci_port *p, unsigned s, struct blk_req *req)
{
	struct ahci_cmd_hdr *h = &p->cmdlist[s];
	uint8_t *ct = ahci_ctab(p, s);
	struct fis_h2d *f = (struct fis_h2d *)ct;
	struct ahci_prd *prd = (struct ahci_prd *)(ct + AHCI_CT_PRDT_OFF);
	bool write = req->op == BLK_OP_WRITE;
	int n = 0;

	p->slot[s].bounced = false;

	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		n = ahci_build_prdt(prd, AHCI_CT_MAX_PRD, req->segs, req->nsegs);
		if (n < 0) {
			strlcpy(req->error, n == -EFAULT ? "buffer not mapped" :
				n == -EINVAL ? "misaligned buffer (odd address or length)" :
				"too many physical segments", sizeof req->error);
			return n;
		}
		if (p->hba->dma32 && (n = ahci_bounce_prepare(p, s, req, prd, n)) < 0)
			return n;
		ahci_build_rw_fis(f, write, p->ncq, (req->flags & BLK_F_FUA) != 0, s, req->lba,
				  req->nblocks);
		break;
	case BLK_OP_FLUSH:
		ahci_build_rw_fis(f, false, false, false, 0, 0, 0);
		f->command = ATA_CMD_FLUSH_EXT;
		break;
	case BLK_OP_DISCARD: {
		uint64_t *payload = (uint64_t *)(ct + AHCI_CT_DSM_OFF);
		uint64_t phys = p->ct_phys + (uint64_t)s * AHCI_CT_SIZE + AHCI_CT_DSM_OFF;

		if (!p->trim || ahci_build_trim(payload, req->lba, req->nblocks) < 0)
			return -ENOTSUP;
		ahci_build_rw_fis(f, false, false, false, 0, 0, 1);
		f->command = ATA_CMD_DSM;
		f->feature_lo = 1;                 /* TRIM */
		prd[0].dba = (uint32_t)phys;
		prd[0].dbau = (uint32_t)(phys >> 32);
		prd[0].rsvd = 0;
		prd[0].dbc = 511;
		n = 1;
		write = true;
		break;
	}
	default:
		return -ENOTSUP;
	}
	h->flags = (uint16_t)(sizeof(struct fis_h2d) / 4 | (write ? AHCI_HDR_W : 0));
	h->prdtl = (uint16_t)n;
	h->prdbc = 0;
	return 0;
}

static int ahci_submit(struct blk_dev *dev, struct blk_req *req, unsigned queue)
{
	struct ahci_port *p = dev->driver_data;
	uint64_t fl;
	uint32_t free;
	unsigned s;
	int r;

	(void)queue;
	fl = spin_lock_irqsave(&p->lock);
	if (p->dead || p->off) {
		spin_unlock_irqrestore(&p->lock, fl);
		strlcpy(req->error, p->off ? "port stopped for power-off" : "port dead after a failed reset",
			sizeof req->error);
		return -EIO;
	}
	/* Recovery owns every free slot (ahci.h): park until it ends. */
	if (p->recovering) {
		spin_unlock_irqrestore(&p->lock, fl);
		return -EBUSY;
	}
	free = ~p->used & (uint32_t)ahci_slot_mask(p->depth);
	if (!free) {
		spin_unlock_irqrestore(&p->lock, fl);
		return -EBUSY;
	}
	s = (unsigned)__builtin_ctz(free);
	if ((r = ahci_prepare(p, s, req)) < 0) {
		spin_unlock_irqrestore(&p->lock, fl);
		return r;
	}
	p->used |= 1u << s;
	p->slot[s].req = req;
	p->slot[s].retries = 0;
	p->slot[s].issued = false;
	p->slot[s].ncq = p->ncq && (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE);
	p->fifo[(p->fifo_head + p->fifo_count) % AHCI_MAX_SLOTS] = (uint8_t)s;
	p->fifo_count++;
	ahci_port_kick(p);
	spin_unlock_irqrestore(&p->lock, fl);
	return 0;
}

static void ahci_slot_free(struct ahci_port *p, unsigned s)
{
	p->used &= ~(1u << s);
	p->ncq_active &= ~(1u << s);
	if (p->nq_active == (int)s)
		p->nq_active = -1;
	p->slot[s].req = NULL;
	p->slot[s].issued = false;
}

/* Slot s is finished with `status`: its request goes on the done list
 * (bounced read data copied back first, while the slot is still ours) and
 * the slot is freed.  Lock held. */
static void ahci_take_done(struct ahci_port *p, unsigned s, struct ahci_done *d, unsigned *n, int status,
			   const char *error)
{
	struct ahci_slot *sl = &p->slot[s];
	struct blk_req *req = sl->req;

	if (sl->bounced && status == 0 && req->op == BLK_OP_READ) {
		const uint8_t *b = ahci_bounce_buf(p, s);
		for (unsigned i = 0; i < req->nsegs; b += req->segs[i].len, i++)
			memcpy(req->segs[i].buf, b, req->segs[i].len);
	}
	d[*n].req = req;
	d[*n].status = status;
	d[*n].error = error;
	(*n)++;
	ahci_slot_free(p, s);
}

static void ahci_finish(struct ahci_done *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		blk_complete(d[i].req, d[i].status, d[i].status ? d[i].error : NULL);
}

int ahci_port_process(struct ahci_port *p)
{
	struct ahci_done done[AHCI_MAX_SLOTS];
	unsigned n = 0;
	uint32_t is, busy, active;
	uint64_t fl;

	fl = spin_lock_irqsave(&p->lock);
	if (p->recovering || p->dead || p->off) {
		spin_unlock_irqrestore(&p->lock, fl);
		return 0;
	}
	is = ahci_prd(p, AHCI_PxIS);
	if (is)
		ahci_pwr(p, AHCI_PxIS, is);
	if (is & AHCI_PxIS_ERRORS) {
		/* The HBA stopped processing; the watchdog thread recovers. */
		p->err_is = is;
		p->recovering = true;
		p->need_recovery = true;
		/* Mask the port until the reset: its error bits stay set in
		 * PxIS, and qemu re-raises the MSI for them at every HBA IS
		 * write, a storm that can starve the watchdog doing the
		 * recovery (commands then outlive every deadline). */
		ahci_pwr(p, AHCI_PxIE, 0);
		spin_unlock_irqrestore(&p->lock, fl);
		waitq_wake_all(&p->hba->wd_wait);
		return 0;
	}
	busy = ahci_prd(p, AHCI_PxCI) | ahci_prd(p, AHCI_PxSACT);
	active = p->ncq_active | (p->nq_active >= 0 ? 1u << p->nq_active : 0);
	for (uint32_t m = active & ~busy; m; m &= m - 1)
		ahci_take_done(p, (unsigned)__builtin_ctz(m), done, &n, 0, NULL);
	if (n) {
		p->last_done_ns = time_ns();
		p->stall_reported = false;
	}
	ahci_port_kick(p);
	spin_unlock_irqrestore(&p->lock, fl);
	ahci_finish(done, n);
	return (int)n;
}

/* NCQ error: ask the device which tag failed (READ LOG EXT 10h), on a port
 * restarted without reset (the log does not survive COMRESET).  Slot 0's
 * header and command FIS are borrowed and restored.  Returns the tag or -1. */
static int ahci_ncq_error_tag(struct ahci_port *p, uint32_t *tfd)
{
	struct ahci_cmd_hdr save_h = p->cmdlist[0];
	uint8_t save_ct[AHCI_CT_PRDT_OFF + sizeof(struct ahci_prd)];
	uint32_t t = 0;
	int tag = -1;

	if (!p->gpl)
		return -1;
	memcpy(save_ct, ahci_ctab(p, 0), sizeof save_ct);
	ahci_port_stop(p);
	ahci_pwr(p, AHCI_PxSERR, 0xffffffff);
	ahci_pwr(p, AHCI_PxIS, 0xffffffff);
	if (!(ahci_prd(p, AHCI_PxTFD) & (ATA_SR_BSY | ATA_SR_DRQ))) {
		ahci_pwr(p, AHCI_PxCMD, ahci_prd(p, AHCI_PxCMD) | AHCI_PxCMD_FRE);
		ahci_pwr(p, AHCI_PxIE, 0);
		ahci_pwr(p, AHCI_PxCMD, ahci_prd(p, AHCI_PxCMD) | AHCI_PxCMD_ST);
		if (ahci_exec_polled(p, 0, ATA_CMD_READ_LOG_EXT, 0, ATA_LOG_NCQ_ERROR, 1,
				     p->logbuf, 512, &t) == 0 && !(p->logbuf[0] & 0x80)) {
			tag = p->logbuf[0] & 0x1f;
			*tfd = p->logbuf[2] | (uint32_t)p->logbuf[3] << 8;
		}
	}
	p->cmdlist[0] = save_h;
	memcpy(ahci_ctab(p, 0), save_ct, sizeof save_ct);
	return tag;
}

static void ahci_port_recover(struct ahci_port *p, uint32_t timed_out)
{
	struct ahci_done done[AHCI_MAX_SLOTS];
	unsigned n = 0, nretry = 0, nfail = 0;
	uint32_t is, tfd, serr, busy, active, guilty = 0, suspects = 0;
	char why[96], why_late[96];
	uint64_t fl;
	int r;

	/* Snapshot before the reset changes everything. */
	is = p->err_is | (ahci_prd(p, AHCI_PxIS) & AHCI_PxIS_ERRORS);
	tfd = ahci_prd(p, AHCI_PxTFD);
	serr = ahci_prd(p, AHCI_PxSERR);
	busy = ahci_prd(p, AHCI_PxCI) | ahci_prd(p, AHCI_PxSACT);
	fl = spin_lock_irqsave(&p->lock);
	active = p->ncq_active | (p->nq_active >= 0 ? 1u << p->nq_active : 0);
	spin_unlock_irqrestore(&p->lock, fl);

	/* Late commands are retried like innocent ones (a reset is often all
	 * they needed); one late AHCI_MAX_RETRIES + 1 times fails. */
	ksnprintf(why_late, sizeof why_late, "timed out after %llu ms, %u retries, port reset",
		  (unsigned long long)(p->hba->timeout_ns / NS_PER_MS), AHCI_MAX_RETRIES);
	if (timed_out) {
		p->timeouts++;
		suspects = timed_out;
		ksnprintf(why, sizeof why, "command timed out after %llu ms",
			  (unsigned long long)(p->hba->timeout_ns / NS_PER_MS));
	} else {
		p->device_errors++;
		if (p->nq_active >= 0 && (busy & (1u << p->nq_active))) {
			guilty = 1u << p->nq_active;
		} else if (p->ncq_active & busy) {
			int tag = ahci_ncq_error_tag(p, &tfd);
			if (tag >= 0 && (p->ncq_active & busy & (1u << tag)))
				guilty = 1u << tag;
			else if (!((p->ncq_active & busy) & ((p->ncq_active & busy) - 1)))
				guilty = p->ncq_active & busy;     /* only one outstanding */
			else
				suspects = p->ncq_active & busy;  /* retried; persistent errors fail */
		}
		ahci_decode_error(is, tfd, serr, why, sizeof why);
	}
	if (ahci_recovery_test_hook)
		ahci_recovery_test_hook(p);

	p->resets++;
	r = ahci_port_reset(p);

	fl = spin_lock_irqsave(&p->lock);
	for (uint32_t m = active; m; m &= m - 1) {
		unsigned s = (unsigned)__builtin_ctz(m);
		struct ahci_slot *sl = &p->slot[s];
		bool fail = r < 0 || (guilty & (1u << s));

		if (!fail && !(busy & (1u << s)) && !(suspects & (1u << s))) {
			ahci_take_done(p, s, done, &n, 0, NULL);   /* finished before the error */
			continue;
		}
		if (!fail && sl->retries >= AHCI_MAX_RETRIES)
			fail = true;
		if (fail) {
			ahci_take_done(p, s, done, &n, timed_out & (1u << s) ? -ETIMEDOUT : -EIO,
				       r < 0 ? "port reset failed, disk offline" :
				       timed_out & (1u << s) ? why_late : why);
			nfail++;
			continue;
		}
		sl->retries++;
		sl->issued = false;
		nretry++;
	}
	p->ncq_active = 0;
	p->nq_active = -1;
	/* Reissue retried slots first, in slot order, ahead of newer requests. */
	for (int s = AHCI_MAX_SLOTS - 1; s >= 0; s--) {
		if ((p->used & (1u << s)) && p->slot[s].req && !p->slot[s].issued &&
		    (active & (1u << s))) {
			p->fifo_head = (p->fifo_head + AHCI_MAX_SLOTS - 1) % AHCI_MAX_SLOTS;
			p->fifo[p->fifo_head] = (uint8_t)s;
			p->fifo_count++;
		}
	}
	p->retries += nretry;
	if (r < 0) {
		/* Nothing more will run: fail everything still queued. */
		for (uint32_t m = p->used; m; m &= m - 1)
			ahci_take_done(p, (unsigned)__builtin_ctz(m), done, &n, -EIO,
				       "port reset failed, disk offline");
		p->fifo_count = 0;
		p->dead = true;
	}
	p->err_is = 0;
	/* The reset restarted the port with PxIE from p->polling as it was
	 * then; a mode switch during recovery did not write it. */
	if (r >= 0)
		ahci_pwr(p, AHCI_PxIE, p->polling ? 0 : AHCI_PxIE_DEFAULT);
	p->last_done_ns = time_ns();
	p->need_recovery = false;
	p->recovering = false;
	ahci_port_kick(p);
	spin_unlock_irqrestore(&p->lock, fl);

	kprintf("ahci%u port %u (%s): %s; port reset %s, %u failed, %u retried\n",
		p->hba->index, p->index, p->blk.name, why, r < 0 ? "FAILED" : "ok", nfail, nretry);
	if (r < 0) {
		/* Stop the port's DMA before failing requests whose buffers
		 * it might still write: the command list first, and if that
		 * does not stop, the whole HBA's bus mastering. */
		if (ahci_port_stop(p) < 0 && p->hba->pci) {
			kprintf("ahci%u: port %u does not stop: bus mastering off for the whole HBA\n",
				p->hba->index, p->index);
			pci_set_bus_master(p->hba->pci, false);
		}
		blk_set_dead(&p->blk, "AHCI port reset failed");
	}
	ahci_finish(done, n);
	blk_kick(&p->blk);             /* requests refused while recovering */
}

void ahci_port_watchdog(struct ahci_port *p)
{
	uint32_t late = 0;
	uint64_t fl, now;

	if (p->dead || p->off)
		return;
	if (!p->recovering)
		ahci_port_process(p);          /* also reaps unpolled completions */
	fl = spin_lock_irqsave(&p->lock);
	if (!p->recovering) {
		now = time_ns();
		uint32_t active = p->ncq_active | (p->nq_active >= 0 ? 1u << p->nq_active : 0);
		for (uint32_t m = active; m; m &= m - 1) {
			unsigned s = (unsigned)__builtin_ctz(m);
			if (p->slot[s].issued && now > p->slot[s].deadline_ns)
				late |= 1u << s;
		}
		if (late) {
			/* Final check: completed just now? */
			uint32_t busy = ahci_prd(p, AHCI_PxCI) | ahci_prd(p, AHCI_PxSACT);
			late &= busy;
		}
		if (late) {
			p->recovering = true;
			ahci_pwr(p, AHCI_PxIE, 0);      /* as in process() */
		}
		/* Requests held but nothing finishing for two timeouts, and no
		 * command late: say what the port looks like (should not happen). */
		if (!late && p->used && !p->stall_reported &&
		    now - p->last_done_ns > 2 * p->hba->timeout_ns) {
			p->stall_reported = true;
			kprintf("ahci%u port %u (%s): no completion for %llu ms with requests held\n",
				p->hba->index, p->index, p->blk.name,
				(unsigned long long)((now - p->last_done_ns) / NS_PER_MS));
			ahci_print_state(p);
		}
	}
	bool rec = p->recovering;
	spin_unlock_irqrestore(&p->lock, fl);
	if (rec)
		ahci_port_recover(p, late);
}

/* ---- Block-layer ops ---- */

static int ahci_poll(struct blk_dev *dev, unsigned queue)
{
	(void)queue;
	return ahci_port_process(dev->driver_data);
}

static int ahci_set_interrupts(struct blk_dev *dev, bool on)
{
	struct ahci_port *p = dev->driver_data;
	uint64_t fl;

	if (on && p->hba->vector < 0)
		return -ENXIO;                 /* no vector: polling is the only mode */
	fl = spin_lock_irqsave(&p->lock);
	p->polling = !on;
	if (!p->recovering)
		ahci_pwr(p, AHCI_PxIE, on ? AHCI_PxIE_DEFAULT : 0);
	spin_unlock_irqrestore(&p->lock, fl);
	return 0;
}

/* Hybrid polling: PxIE on for a sleeping poller (qemu and the spec
 * re-evaluate PxIS against PxIE when it is written: nothing is lost). */
static int ahci_arm(struct blk_dev *dev, unsigned queue, bool on)
{
	struct ahci_port *p = dev->driver_data;
	uint64_t fl;

	(void)queue;
	if (p->hba->vector < 0)
		return -ENOTSUP;
	fl = spin_lock_irqsave(&p->lock);
	if (p->polling && !p->recovering && !p->off && !p->dead)
		ahci_pwr(p, AHCI_PxIE, on ? AHCI_PxIE_DEFAULT : 0);
	spin_unlock_irqrestore(&p->lock, fl);
	return 0;
}

static void ahci_print_state(struct ahci_port *p)
{
	kprintf("  state: slots used 0x%08x, NCQ issued 0x%08x, non-queued %d, %u waiting%s; "
		"PxCI 0x%08x PxSACT 0x%08x PxIS 0x%08x PxTFD 0x%04x PxSERR 0x%08x PxCMD 0x%08x\n",
		p->used, p->ncq_active, p->nq_active, p->fifo_count,
		p->recovering ? ", RECOVERING" : "", ahci_prd(p, AHCI_PxCI), ahci_prd(p, AHCI_PxSACT),
		ahci_prd(p, AHCI_PxIS), ahci_prd(p, AHCI_PxTFD) & 0xffff, ahci_prd(p, AHCI_PxSERR),
		ahci_prd(p, AHCI_PxCMD));
}

static void ahci_describe(struct blk_dev *dev)
{
	struct ahci_port *p = dev->driver_data;
	static const char *const speed[] = { "?", "1.5", "3.0", "6.0" };
	unsigned spd = (ahci_prd(p, AHCI_PxSSTS) >> 4) & 0xf;

	kprintf("  ahci%u port %u: AHCI %x.%x, SATA %s Gb/s, firmware %s, %u HBA slots\n",
		p->hba->index, p->index, p->hba->vs >> 16, (p->hba->vs >> 8) & 0xff,
		speed[spd < 4 ? spd : 0], dev->firmware, p->nslots);
	kprintf("  commands: %s depth %u, TRIM %s, FUA %s, write cache %s, READ LOG EXT %s, %s\n",
		p->ncq ? "NCQ (FPDMA QUEUED)" : "DMA EXT", p->depth, p->trim ? "yes" : "no",
		p->fua_ext ? "yes" : "no (write+flush)", p->wcache ? "on" : "off",
		p->gpl ? "yes" : "no", p->hba->vector >= 0 ? "MSI" : "no interrupt (polling)");
	kprintf("  recovery: %llu resets, %llu timeouts, %llu device errors, %llu retries; timeout %llu ms\n",
		(unsigned long long)p->resets, (unsigned long long)p->timeouts,
		(unsigned long long)p->device_errors, (unsigned long long)p->retries,
		(unsigned long long)(p->hba->timeout_ns / NS_PER_MS));
	if (p->hba->dma32)
		kprintf("  DMA: 32-bit, %llu requests bounced below 4 GiB\n", (unsigned long long)p->bounces);
	ahci_print_state(p);
}

static const struct blk_ops ahci_blk_ops = {
	.submit = ahci_submit,
	.poll = ahci_poll,
	.set_interrupts = ahci_set_interrupts,
	.arm = ahci_arm,
	.describe = ahci_describe,
};

int ahci_port_register(struct ahci_port *p, unsigned disk_index)
{
	struct blk_dev *b = &p->blk;
	int r;

	ksnprintf(b->name, sizeof b->name, "sata%u", disk_index);
	if (!blk_selected(b->name)) {
		if (ahci_port_stop(p) < 0)
			kprintf("ahci%u port %u: port did not stop\n", p->hba->index, p->index);
		p->off = true;          /* interrupt handler and watchdog leave it alone */
		b->ops = NULL;
		return -ENODEV;
	}
	ahci_id_string(p->id, ID_MODEL, 20, b->model);
	ahci_id_string(p->id, ID_SERIAL, 10, b->serial);
	ahci_id_string(p->id, ID_FIRMWARE, 4, b->firmware);
	b->lba_size = ahci_id_lba_size(p->id);
	b->nblocks = ahci_id_capacity(p->id);
	/* Worst case 1 PRD per page plus one per segment fits AHCI_CT_MAX_PRD;
	 * and 1 MiB is well under the 65536-sector ATA count limit. */
	b->max_transfer = p->hba->dma32 ? AHCI_BOUNCE_BYTES : 1u << 20;
	b->max_segments = 128;
	b->virt_boundary = 0;
	b->max_discard_blocks = p->trim ? 64u * 0xffffu : 0;
	b->max_write_zeroes_blocks = 0;
	b->write_cache = p->wcache;
	b->fua = p->fua_ext;
	b->nqueues = 1;
	b->queue_depth = p->depth;
	b->ops = &ahci_blk_ops;
	b->driver_data = p;
	p->polling = p->hba->vector < 0;
	ahci_pwr(p, AHCI_PxIS, 0xffffffff);
	ahci_pwr(p, AHCI_PxIE, p->polling ? 0 : AHCI_PxIE_DEFAULT);
	if ((r = blk_register(b)) < 0) {
		b->ops = NULL;          /* not a disk of ours: shutdown skips it */
		return r;
	}
	if (p->polling && (r = blk_set_polling(b, true)) < 0)
		kprintf("%s: cannot switch to polling: %s; I/O will not complete\n", b->name, strerror(r));
	kprintf("%s: %s, %llu x %u B, %s depth %u, TRIM %s, write cache %s (ahci%u port %u)\n",
		b->name, b->model, (unsigned long long)b->nblocks, b->lba_size,
		p->ncq ? "NCQ" : "DMA", p->depth, p->trim ? "yes" : "no",
		p->wcache ? "on" : "off", p->hba->index, p->index);
	return 0;
}
