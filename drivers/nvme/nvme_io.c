/*
 * NVMe I/O path: queue memory, command building with PRP lists, submission,
 * completion (interrupt or polling), and the timeout watchdog's scan.
 *
 * The fast path is one queue lock (uncontended with one queue per CPU), one
 * SQE written in place, one SQ doorbell per submission or per batch
 * (BLK_F_MORE ... blk_commit()), and one CQ doorbell
 * per batch of completions.  Completions are handed to the block layer after
 * the lock is dropped, because blk_complete() may submit again.
 */
#include "drivers/nvme/nvme_var.h"
#include "kernel/mm.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/time.h"

#define NVME_PAGE 4096u
#define NVME_PRP_ENTRIES (NVME_PAGE / 8)
#define NVME_KERNEL_IMAGE_BASE 0xffffffff80000000ULL

int nvme_queue_alloc(struct nvme_ctrl *c, struct nvme_queue *q, uint16_t id, uint16_t depth)
{
	size_t sq_bytes = (size_t)depth * sizeof(struct nvme_sqe);
	size_t cq_bytes = (size_t)depth * sizeof(struct nvme_cqe);
	unsigned sq_order = 0, cq_order = 0;

	while ((NVME_PAGE << sq_order) < sq_bytes)
		sq_order++;
	while ((NVME_PAGE << cq_order) < cq_bytes)
		cq_order++;
	memset(q, 0, sizeof(*q));
	spin_init(&q->lock, id ? "nvme-ioq" : "nvme-adminq");
	q->ctrl = c;
	q->id = id;
	q->depth = depth;
	q->vector = -1;
	q->sq_phys = pmm_alloc_pages(sq_order);
	if (!q->sq_phys)
		goto fail;
	q->cq_phys = pmm_alloc_pages(cq_order);
	if (!q->cq_phys)
		goto fail_sq;
	q->sq = PHYS_TO_VIRT(q->sq_phys);
	q->cq = PHYS_TO_VIRT(q->cq_phys);
	q->sq_db = (volatile uint32_t *)(c->regs + NVME_DB_BASE + (2u * id) * c->dstrd);
	q->cq_db = (volatile uint32_t *)(c->regs + NVME_DB_BASE + (2u * id + 1) * c->dstrd);
	if (id == 0) {                  /* admin: polled synchronously, no slots */
		nvme_queue_reset_ring(q);
		return 0;
	}
	q->cmds = kzalloc(depth * sizeof(*q->cmds));
	q->free_ids = kmalloc(depth * sizeof(*q->free_ids));
	if (!q->cmds || !q->free_ids)
		goto fail_cmds;
	/* depth - 1 usable ids: an in-flight command holds its SQ slot at most
	 * until it completes, so the ring can never overrun. */
	for (unsigned i = 0; i < depth - 1u; i++) {
		struct nvme_cmd *cmd = &q->cmds[i];
		cmd->prp_phys = pmm_alloc_pages(0);
		if (!cmd->prp_phys)
			goto fail_prp;
		cmd->prp = PHYS_TO_VIRT(cmd->prp_phys);
		q->free_ids[q->nfree++] = (uint16_t)(depth - 2 - i);
	}
	nvme_queue_reset_ring(q);
	return 0;

fail_prp:
	for (unsigned i = 0; i < depth; i++)
		if (q->cmds[i].prp_phys)
			pmm_free_pages(q->cmds[i].prp_phys, 0);
fail_cmds:
	kfree(q->cmds);
	kfree(q->free_ids);
	pmm_free_pages(q->cq_phys, cq_order);
fail_sq:
	pmm_free_pages(q->sq_phys, sq_order);
fail:
	kprintf("%s: out of memory for queue %u (depth %u)\n", c->name, id, depth);
	return -ENOMEM;
}

/* Empty rings, as after Create I/O SQ/CQ (or AQA/ASQ/ACQ) on a fresh enable. */
void nvme_queue_reset_ring(struct nvme_queue *q)
{
	memset((void *)q->cq, 0, q->depth * sizeof(struct nvme_cqe));
	q->sq_tail = 0;
	q->sq_rung = 0;
	q->sq_head = 0;
	q->cq_head = 0;
	q->phase = 1;
	q->wd_unpub = false;
	if (q->sq_shadow)
		*q->sq_shadow = *q->cq_shadow = 0;
}

static inline uint64_t nvme_phys(uint64_t va)
{
	if (va >= BOOT_HHDM_BASE && va < NVME_KERNEL_IMAGE_BASE)
		return va - BOOT_HHDM_BASE;
	return vmm_virt_to_phys((const void *)va);
}

/* PRP1/PRP2 (and the list page) for the request's segments.  The block
 * layer's virt_boundary of 4096 guarantees only the first page may start
 * at an offset and only the last may end early. */
static int nvme_build_prps(struct nvme_cmd *cmd, const struct blk_req *req, struct nvme_sqe *sqe)
{
	unsigned n = 0;
	uint64_t prp1 = 0;

	for (unsigned s = 0; s < req->nsegs; s++) {
		uint64_t va = (uint64_t)req->segs[s].buf, end = va + req->segs[s].len;
		while (va < end) {
			uint64_t pa = nvme_phys(va);
			if (!pa && va)
				return -EFAULT;
			if (n == 0)
				prp1 = pa;
			else if (n <= NVME_PRP_ENTRIES)
				cmd->prp[n - 1] = pa;
			else
				return -E2BIG;
			n++;
			va = (va & ~(uint64_t)(NVME_PAGE - 1)) + NVME_PAGE;
		}
	}
	sqe->prp1 = prp1;
	sqe->prp2 = n == 2 ? cmd->prp[0] : n > 2 ? cmd->prp_phys : 0;
	return 0;
}

/* Fill the SQE in place for req (command id cid). */
static int nvme_build(struct nvme_ns *ns, struct blk_req *req, uint16_t cid, struct nvme_cmd *cmd,
		      struct nvme_sqe *sqe)
{
	uint64_t *w = (uint64_t *)sqe;

	for (unsigned i = 0; i < 8; i++)
		w[i] = 0;
	sqe->cid = cid;
	sqe->nsid = ns->nsid;
	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		sqe->opcode = req->op == BLK_OP_READ ? NVME_CMD_READ : NVME_CMD_WRITE;
		sqe->cdw10 = (uint32_t)req->lba;
		sqe->cdw11 = (uint32_t)(req->lba >> 32);
		sqe->cdw12 = (req->nblocks - 1) | ((req->flags & BLK_F_FUA) ? NVME_RW_FUA : 0);
		return nvme_build_prps(cmd, req, sqe);
	case BLK_OP_FLUSH:
		sqe->opcode = NVME_CMD_FLUSH;
		return 0;
	case BLK_OP_WRITE_ZEROES:
		if (req->nblocks > 65536)
			return -E2BIG;
		sqe->opcode = NVME_CMD_WRITE_ZEROES;
		sqe->cdw10 = (uint32_t)req->lba;
		sqe->cdw11 = (uint32_t)(req->lba >> 32);
		sqe->cdw12 = req->nblocks - 1;
		return 0;
	case BLK_OP_DISCARD: {
		struct nvme_dsm_range *r = (struct nvme_dsm_range *)cmd->prp;
		r->cattr = 0;
		r->nlb = req->nblocks;
		r->slba = req->lba;
		sqe->opcode = NVME_CMD_DSM;
		sqe->prp1 = cmd->prp_phys;
		sqe->cdw10 = 0;                 /* one range */
		sqe->cdw11 = NVME_DSM_AD;
		return 0;
	}
	}
	return -ENOTSUP;
}

static int nvme_submit(struct blk_dev *dev, struct blk_req *req, unsigned queue)
{
	struct nvme_ns *ns = dev->driver_data;
	struct nvme_ctrl *c = ns->ctrl;
	struct nvme_queue *q = &c->io[queue < c->nqueues ? queue : queue % c->nqueues];
	uint64_t fl = spin_lock_irqsave(&q->lock);

	/* Under the lock: see the queue lock invariant in nvme_var.h. */
	int state = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (__builtin_expect(state == NVME_DEAD || state == NVME_OFF, 0)) {
		spin_unlock_irqrestore(&q->lock, fl);
		strlcpy(req->error, state == NVME_OFF ? "controller shut down for power-off" :
			"controller dead after a failed reset", sizeof(req->error));
		return -EIO;
	}
	if (__builtin_expect(q->nfree == 0, 0)) {
		spin_unlock_irqrestore(&q->lock, fl);
		return -EBUSY;
	}
	uint16_t cid = q->free_ids[--q->nfree];
	struct nvme_cmd *cmd = &q->cmds[cid];
	cmd->req = req;
	cmd->ticks = 0;
	cmd->aborted = cmd->expired = false;
	cmd->retries = 0;
	if (__builtin_expect(q->held, 0)) {
		/* Controller resetting: nvme_queue_resubmit() builds it later. */
		spin_unlock_irqrestore(&q->lock, fl);
		return 0;
	}
	int err = nvme_build(ns, req, cid, cmd, &q->sq[q->sq_tail]);
	if (__builtin_expect(err, 0)) {
		cmd->req = NULL;
		q->free_ids[q->nfree++] = cid;
		spin_unlock_irqrestore(&q->lock, fl);
		return err;
	}
	if (++q->sq_tail == q->depth)
		q->sq_tail = 0;
	q->submits++;
	/* BLK_F_MORE: the caller queues more and calls blk_commit() after the
	 * last one, so the batch costs one doorbell write (an MMIO exit). */
	if (!(req->flags & BLK_F_MORE))
		nvme_ring_sq(q);
	spin_unlock_irqrestore(&q->lock, fl);
	return 0;
}

/* Shadow doorbells (NVMe 1.3 Doorbell Buffer Config): the new index goes
 * to the shadow slot in memory, and the MMIO register is written only when
 * the controller's EventIdx lies in [old, new) in ring order -- it has
 * read up to there and stopped looking; otherwise it is still reading the
 * shadow and will see the new index itself (virtio's "need event" test).
 * Indices wrap at the ring depth, not at 2^16, hence the modulo.
 *
 * Ordering, enforced here and nowhere else:
 *   1. SQEs (or, for the CQ, our reads of the CQEs) before the shadow
 *      store: x86 keeps stores in order and never moves a store above an
 *      earlier load, so a compiler barrier is all it takes;
 *   2. the shadow store before the EventIdx load: this is the one
 *      reordering x86 does (a load may pass an earlier store still in the
 *      store buffer).  Without a full fence we could read a stale EventIdx
 *      while the controller reads our stale shadow value, both conclude
 *      the other will act, and the command sits unseen: mfence;
 *   3. the shadow store before the MMIO write: stores stay in order, so a
 *      controller woken by MMIO reads the new shadow value. */
static bool nvme_db_publish(struct nvme_queue *q, volatile uint32_t *shadow, volatile uint32_t *ei,
			    uint16_t old, uint16_t new)
{
	__asm__ volatile("" ::: "memory");                       /* 1 */
	if (!shadow)
		return true;
	*shadow = new;
	if (__atomic_load_n(&q->ctrl->dbbuf_mmio, __ATOMIC_RELAXED))
		return true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);                 /* 2: mfence */
	uint32_t d = q->depth, e = *ei % d;
	if ((new + d - 1 - e) % d < (new + d - old) % d)
		return true;
	q->db_skipped++;
	return false;
}

/* Publish every SQE written so far.  Called with q->lock held. */
void nvme_ring_sq(struct nvme_queue *q)
{
	uint16_t old = q->sq_rung;
	if (old == q->sq_tail)
		return;
	q->sq_rung = q->sq_tail;
	if (nvme_db_publish(q, q->sq_shadow, q->sq_ei, old, q->sq_tail)) {
		*q->sq_db = q->sq_tail;                          /* 3 */
		q->sq_doorbells++;
	}
}

void nvme_ring_cq(struct nvme_queue *q)
{
	/* The CQ has no "last published" copy of its own: cq_shadow holds
	 * it when shadow doorbells are on, and without them every reap
	 * writes the register. */
	uint16_t old = q->cq_shadow ? (uint16_t)*q->cq_shadow : (uint16_t)(q->cq_head + 1);
	if (nvme_db_publish(q, q->cq_shadow, q->cq_ei, old, q->cq_head)) {
		*q->cq_db = q->cq_head;
		q->cq_doorbells++;
	}
}

void nvme_queue_shadow(struct nvme_ctrl *c, struct nvme_queue *q)
{
	if (!c->dbbuf_on) {
		q->sq_shadow = q->cq_shadow = q->sq_ei = q->cq_ei = NULL;
		return;
	}
	uint8_t *dbs = PHYS_TO_VIRT(c->dbbuf_phys), *eis = dbs + NVME_PAGE;
	uint32_t sq = (2u * q->id) * c->dstrd, cq = (2u * q->id + 1) * c->dstrd;
	q->sq_shadow = (volatile uint32_t *)(dbs + sq);
	q->cq_shadow = (volatile uint32_t *)(dbs + cq);
	q->sq_ei = (volatile uint32_t *)(eis + sq);
	q->cq_ei = (volatile uint32_t *)(eis + cq);
}

unsigned nvme_queue_unpublished(const struct nvme_queue *q)
{
	return (unsigned)((q->sq_tail + q->depth - q->sq_rung) % q->depth);
}

void nvme_queue_commit(struct nvme_queue *q)
{
	uint64_t fl = spin_lock_irqsave(&q->lock);
	if (!q->held)
		nvme_ring_sq(q);
	spin_unlock_irqrestore(&q->lock, fl);
}

static void nvme_commit(struct blk_dev *dev, unsigned queue)
{
	struct nvme_ctrl *c = ((struct nvme_ns *)dev->driver_data)->ctrl;
	nvme_queue_commit(&c->io[queue < c->nqueues ? queue : queue % c->nqueues]);
}

static void nvme_complete_one(struct nvme_queue *q, struct blk_req *req, uint16_t sf, bool aborted)
{
	char why[96];

	if (__builtin_expect(sf == 0, 1)) {
		blk_complete(req, 0, NULL);
		return;
	}
	nvme_status_decode(why, sizeof(why), sf);
	if (aborted && NVME_SF_SCT(sf) == NVME_SCT_GENERIC && NVME_SF_SC(sf) == NVME_SC_ABORT_REQ) {
		char tmp[96];
		ksnprintf(tmp, sizeof(tmp), "timed out after %llu ms, aborted: %s",
			  (unsigned long long)(q->ctrl->timeout_ns / NS_PER_MS), why);
		blk_complete(req, -ETIMEDOUT, tmp);
		return;
	}
	blk_complete(req, nvme_status_errno(sf), why);
}

#define NVME_REAP_BATCH 32

int nvme_queue_reap(struct nvme_queue *q)
{
	struct blk_req *reqs[NVME_REAP_BATCH];
	uint16_t sfs[NVME_REAP_BATCH];
	uint8_t aborted[NVME_REAP_BATCH];
	int total = 0;

	for (;;) {
		unsigned n = 0;
		uint64_t fl = spin_lock_irqsave(&q->lock);
		if (q->held) {
			spin_unlock_irqrestore(&q->lock, fl);
			return total;
		}
		while (n < NVME_REAP_BATCH) {
			volatile struct nvme_cqe *cqe = &q->cq[q->cq_head];
			uint16_t st = cqe->status;
			if ((st & 1) != q->phase)
				break;
			__asm__ volatile("" ::: "memory");  /* status before the rest */
			uint16_t cid = cqe->cid;
			if (++q->cq_head == q->depth) {
				q->cq_head = 0;
				q->phase ^= 1;
			}
			if (cid >= q->depth - 1u || !q->cmds[cid].req) {
				kprintf("%s: queue %u: completion for unknown command id %u ignored\n",
					q->ctrl->name, q->id, cid);
				continue;
			}
			struct nvme_cmd *cmd = &q->cmds[cid];
			reqs[n] = cmd->req;
			sfs[n] = st >> 1;
			aborted[n] = cmd->aborted;
			n++;
			cmd->req = NULL;
			q->free_ids[q->nfree++] = cid;
		}
		if (n) {
			nvme_ring_cq(q);
			q->completions += n;
		}
		spin_unlock_irqrestore(&q->lock, fl);
		for (unsigned i = 0; i < n; i++)
			nvme_complete_one(q, reqs[i], sfs[i], aborted[i]);
		total += (int)n;
		if (n < NVME_REAP_BATCH)
			return total;
	}
}

void nvme_intr(void *arg)
{
	struct nvme_queue *q = arg;
	struct nvme_ctrl *c = q->ctrl;

	q->irqs++;
	if (c->shared_vector) {             /* MSI: one vector for every queue */
		for (unsigned i = 0; i < c->nqueues; i++)
			nvme_queue_reap(&c->io[i]);
		return;
	}
	nvme_queue_reap(q);
}

void nvme_queue_resubmit(struct nvme_queue *q)
{
	struct nvme_ctrl *c = q->ctrl;
	struct blk_req *failed[NVME_IO_DEPTH];
	int failed_err[NVME_IO_DEPTH];
	unsigned nfailed = 0, nre = 0;
	uint64_t fl = spin_lock_irqsave(&q->lock);

	for (unsigned cid = 0; cid < q->depth - 1u; cid++) {
		struct nvme_cmd *cmd = &q->cmds[cid];
		if (!cmd->req)
			continue;
		/* The command that timed out is retried too (a reset often is
		 * all it needed), at most NVME_MAX_RETRIES times. */
		int err = 0;
		if (cmd->expired) {
			if (cmd->retries >= NVME_MAX_RETRIES)
				err = -ETIMEDOUT;
			else
				cmd->retries++;
			cmd->expired = false;
		}
		if (!err)
			err = nvme_build(cmd->req->dev->driver_data, cmd->req, (uint16_t)cid, cmd,
					 &q->sq[q->sq_tail]);
		if (err) {
			failed[nfailed] = cmd->req;
			failed_err[nfailed++] = err;
			cmd->req = NULL;
			q->free_ids[q->nfree++] = (uint16_t)cid;
			continue;
		}
		cmd->ticks = 0;
		cmd->aborted = false;
		if (++q->sq_tail == q->depth)
			q->sq_tail = 0;
		nre++;
	}
	q->held = false;
	if (nre)
		nvme_ring_sq(q);
	spin_unlock_irqrestore(&q->lock, fl);
	if (nre || nfailed)
		kprintf("%s: queue %u: %u commands resubmitted, %u failed\n", c->name, q->id, nre, nfailed);
	for (unsigned i = 0; i < nfailed; i++) {
		char why[96];
		if (failed_err[i] == -ETIMEDOUT)
			ksnprintf(why, sizeof(why), "timed out after %llu ms, %u retries, controller reset",
				  (unsigned long long)(c->timeout_ns / NS_PER_MS), NVME_MAX_RETRIES);
		else
			ksnprintf(why, sizeof(why), "could not rebuild command after reset");
		blk_complete(failed[i], failed_err[i], why);
	}
}

unsigned nvme_queue_fail_all(struct nvme_queue *q, int state, const char *why)
{
	struct blk_req *reqs[NVME_IO_DEPTH];
	unsigned n = 0;
	uint64_t fl = spin_lock_irqsave(&q->lock);

	__atomic_store_n(&q->ctrl->state, state, __ATOMIC_RELEASE);
	for (unsigned cid = 0; cid < q->depth - 1u; cid++) {
		struct nvme_cmd *cmd = &q->cmds[cid];
		if (!cmd->req)
			continue;
		reqs[n++] = cmd->req;
		cmd->req = NULL;
		q->free_ids[q->nfree++] = (uint16_t)cid;
	}
	q->held = false;                     /* later submits see `state` */
	spin_unlock_irqrestore(&q->lock, fl);
	for (unsigned i = 0; i < n; i++)
		blk_complete(reqs[i], -EIO, why);
	return n;
}

/* Safety nets for a doorbell that was due and not written; each counts
 * and says so, because with correct code neither happens (the tests check
 * the counters):
 *  - late commit: SQEs left unpublished (no doorbell, no shadow tail) for
 *    a whole watchdog period, e.g. a BLK_F_MORE batch whose blk_commit()
 *    never came: a hang without this;
 *  - nudge: with shadow doorbells, commands in flight while the
 *    controller's EventIdx has stayed behind our published tail for a
 *    whole period: it stopped reading the shadow without asking for an
 *    MMIO write.  The MMIO write of the same tail is harmless. */
static void nvme_queue_late_doorbells(struct nvme_queue *q)
{
	unsigned late = 0;
	bool nudge = false;
	uint64_t fl = spin_lock_irqsave(&q->lock);

	if (q->held) {
		spin_unlock_irqrestore(&q->lock, fl);
		return;
	}
	/* Stuck means nothing was submitted on the queue for a whole period
	 * (a submitter mid-batch adds to q->submits; the ring indices alone
	 * may come back to the same values after wrapping). */
	bool idle = q->wd_submits == q->submits;
	q->wd_submits = q->submits;
	if (q->sq_rung == q->sq_tail) {
		q->wd_unpub = false;
	} else if (!q->wd_unpub || !idle) {
		q->wd_unpub = true;          /* a submitter may be mid-batch: next pass */
	} else {
		late = nvme_queue_unpublished(q);
		q->late_commits++;
		q->wd_unpub = false;
		nvme_ring_sq(q);
	}
	/* Behind: EventIdx short of the published tail with commands in
	 * flight; stuck: behind at the same EventIdx and tail a period ago
	 * (a controller still working moves its EventIdx). */
	uint32_t ei = q->sq_ei ? *q->sq_ei % q->depth : q->sq_rung;
	bool behind = ei != q->sq_rung && q->nfree < q->depth - 1u;
	if (behind && q->wd_behind && idle && q->wd_ei == ei && q->wd_rung == q->sq_rung) {
		*q->sq_db = q->sq_rung;
		q->sq_doorbells++;
		q->db_nudges++;
		nudge = true;
		behind = false;
	}
	q->wd_behind = behind;
	q->wd_ei = (uint16_t)ei;
	q->wd_rung = q->sq_rung;
	spin_unlock_irqrestore(&q->lock, fl);
	if (late)
		kprintf("%s: queue %u: %u submission(s) left without a doorbell for a watchdog period; "
			"published now\n", q->ctrl->name, q->id, late);
	if (nudge)
		kprintf("%s: queue %u: controller stopped short of the shadow SQ tail %u; MMIO doorbell written\n",
			q->ctrl->name, q->id, q->sq_rung);
}

static const char *nvme_op_word(uint8_t op)
{
	static const char *const w[] = { "read", "write", "flush", "discard", "write-zeroes" };
	return op < ARRAY_SIZE(w) ? w[op] : "?";
}

/* One watchdog period: age in-flight commands; handle the first expired
 * one with Abort, and reset when Abort does not complete it. */
void nvme_watchdog_scan(struct nvme_ctrl *c)
{
	uint32_t limit = (uint32_t)((c->timeout_ns + c->tick_ns - 1) / c->tick_ns);
	struct nvme_queue *eq = NULL;
	struct blk_req *ereq = NULL;         /* identity only: never dereferenced
					      * after the lock is dropped */
	uint8_t eop = 0;
	uint64_t elba = 0;
	uint32_t enblocks = 0;
	const char *edev = NULL;             /* the namespace's name: lives as long as the controller */
	uint16_t ecid = 0;
	unsigned eretries = 0;
	bool again = false;

	uint32_t csts = nvme_read4(c, NVME_CSTS);
	if (csts == 0xffffffffu) {
		(void)nvme_reset(c, "controller registers read all ones (device gone)");
		return;
	}
	if (csts & NVME_CSTS_CFS) {
		(void)nvme_reset(c, "controller fatal status (CSTS.CFS)");
		return;
	}
	/* Reap first: a completion whose interrupt was lost then costs a
	 * reap here, not an Abort and a reset.  Doorbells that should have
	 * been written and were not are written here, and counted. */
	for (unsigned i = 0; i < c->nqueues; i++) {
		nvme_queue_late_doorbells(&c->io[i]);
		nvme_queue_reap(&c->io[i]);
	}
	for (unsigned i = 0; i < c->nqueues; i++) {
		struct nvme_queue *q = &c->io[i];
		uint64_t fl = spin_lock_irqsave(&q->lock);
		for (unsigned cid = 0; cid < q->depth - 1u; cid++) {
			struct nvme_cmd *cmd = &q->cmds[cid];
			if (!cmd->req || ++cmd->ticks <= limit || eq)
				continue;
			eq = q;
			ereq = cmd->req;
			eop = cmd->req->op;
			elba = cmd->req->lba;
			enblocks = cmd->req->nblocks;
			edev = cmd->req->dev->name;
			ecid = (uint16_t)cid;
			again = cmd->aborted;
			eretries = cmd->retries;
		}
		spin_unlock_irqrestore(&q->lock, fl);
	}
	if (!eq)
		return;

	c->timeouts++;
	kprintf("%s: %s %s lba %llu+%u (queue %u, command id %u) timed out after %llu ms%s%s\n", c->name,
		edev, nvme_op_word(eop), (unsigned long long)elba, enblocks, eq->id, ecid,
		(unsigned long long)(c->timeout_ns / NS_PER_MS), eretries ? " (after a retry)" : "",
		again ? " again after Abort" : "; sending Abort");
	if (!again) {
		/* The spec's answer first: Abort.  Completion dw0 bit 0 clear
		 * means the controller aborted it (the command then completes
		 * with Command Abort Requested). */
		struct nvme_sqe sqe = { .opcode = NVME_ADM_ABORT };
		struct nvme_cqe cqe;
		sqe.cdw10 = eq->id | ((uint32_t)ecid << 16);
		c->aborts++;
		int err = nvme_admin(c, &sqe, &cqe, "Abort");
		if (!err && !(cqe.dw0 & 1)) {
			uint64_t fl = spin_lock_irqsave(&eq->lock);
			if (eq->cmds[ecid].req == ereq) {
				eq->cmds[ecid].aborted = true;
				eq->cmds[ecid].ticks = 0;
			}
			spin_unlock_irqrestore(&eq->lock, fl);
			kprintf("%s: Abort accepted for command id %u\n", c->name, ecid);
			return;
		}
		kprintf("%s: Abort %s; resetting the controller\n", c->name,
			err ? "failed" : "not performed by the controller");
	}
	uint64_t fl = spin_lock_irqsave(&eq->lock);
	bool still = eq->cmds[ecid].req == ereq;
	spin_unlock_irqrestore(&eq->lock, fl);
	if (still) {
		/* Every command past its deadline uses up one retry at this
		 * reset, not just the one reported: none can cycle forever. */
		for (unsigned i = 0; i < c->nqueues; i++) {
			struct nvme_queue *q = &c->io[i];
			fl = spin_lock_irqsave(&q->lock);
			for (unsigned cid = 0; cid < q->depth - 1u; cid++)
				if (q->cmds[cid].req && q->cmds[cid].ticks > limit)
					q->cmds[cid].expired = true;
			spin_unlock_irqrestore(&q->lock, fl);
		}
	}
	if (still)
		(void)nvme_reset(c, "command timeout");   /* reports its own failure */
	else
		kprintf("%s: command id %u completed meanwhile; no reset\n", c->name, ecid);
}

static int nvme_poll(struct blk_dev *dev, unsigned queue)
{
	struct nvme_ns *ns = dev->driver_data;
	struct nvme_ctrl *c = ns->ctrl;

	return nvme_queue_reap(&c->io[queue < c->nqueues ? queue : queue % c->nqueues]);
}

static int nvme_set_interrupts(struct blk_dev *dev, bool on)
{
	struct nvme_ns *ns = dev->driver_data;
	struct nvme_ctrl *c = ns->ctrl;

	/* No vector at all: polling is the only mode.  Not -ENOTSUP, which
	 * the block layer reads as "interrupts cannot be turned off". */
	if (c->nvec == 0)
		return on ? -ENXIO : 0;
	/* Queues are shared by the controller's namespaces: the vectors stay
	 * on until every namespace polls.  Two namespaces may switch at once. */
	uint64_t fl = spin_lock_irqsave(&c->mode_lock);
	if (!on && !ns->polling)
		c->npolling++;
	else if (on && ns->polling)
		c->npolling--;
	ns->polling = !on;
	nvme_mask_irqs(c, c->npolling == c->nns);
	spin_unlock_irqrestore(&c->mode_lock, fl);
	if (on)
		for (unsigned i = 0; i < c->nqueues; i++)
			nvme_queue_reap(&c->io[i]);   /* anything that finished while masked */
	return 0;
}

/* Hybrid polling: the queue's vector on for a sleeping poller.  Nothing
 * to do while the controller's vectors are on anyway (a namespace still
 * takes interrupts); a completion posted while masked sets the MSI-X
 * pending bit and arrives at the unmask. */
static int nvme_arm(struct blk_dev *dev, unsigned queue, bool on)
{
	struct nvme_ns *ns = dev->driver_data;
	struct nvme_ctrl *c = ns->ctrl;
	struct nvme_queue *q = &c->io[queue < c->nqueues ? queue : queue % c->nqueues];

	if (c->nvec == 0)
		return -ENOTSUP;
	uint64_t fl = spin_lock_irqsave(&c->mode_lock);
	if (c->irqs_masked)
		nvme_mask_queue_irq(c, q, !on);
	spin_unlock_irqrestore(&c->mode_lock, fl);
	return 0;
}

const struct blk_ops nvme_blk_ops = {
	.submit = nvme_submit,
	.commit = nvme_commit,
	.poll = nvme_poll,
	.set_interrupts = nvme_set_interrupts,
	.arm = nvme_arm,
	.describe = nvme_describe,
};
