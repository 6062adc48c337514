/*
 * Block layer request path, driver side: the piece pool (split requests,
 * merged requests and emulated flushes; never kmalloc'ed because completion
 * may run in interrupt context), software queues that park requests the
 * driver refused with -EBUSY and merge adjacent ones, completion and
 * polling.
 */
#include <stdarg.h>
#include "drivers/blk/blk.h"
#include "drivers/blk/blk_internal.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/cpu.h"

/* ---- pieces ---- */

struct blk_piece *blk_piece_try(struct blk_priv *p)
{
	uint64_t fl = spin_lock_irqsave(&p->pool_lock);
	struct blk_piece *pc = p->free;
	if (pc) {
		p->free = pc->free_next;
		p->nfree--;
	}
	spin_unlock_irqrestore(&p->pool_lock, fl);
	return pc;
}

static bool blk_pool_has_free(void *arg)
{
	return ((struct blk_priv *)arg)->free != NULL;
}

/* A piece, waiting for one in process context with blk_wait() (which
 * polls the device in polling mode, where nothing else would free one).
 * Waiting for a piece holds nothing the device owns, so this wait may give
 * up: NULL after 30 s, or at once in interrupt context or before the
 * scheduler runs. */
struct blk_piece *blk_piece_get(struct blk_dev *dev)
{
	struct blk_priv *p = dev->blk_private;
	uint64_t giveup = time_ns() + 30 * NS_PER_S;
	struct blk_piece *pc;

	while (!(pc = blk_piece_try(p))) {
		if (!cpu_irqs_enabled() || !sched_active())
			return NULL;
		if (blk_wait(dev, &p->pool_wq, blk_pool_has_free, p, "a free request piece", giveup))
			return NULL;
	}
	return pc;
}

static void blk_piece_put(struct blk_dev *dev, struct blk_req *r)
{
	struct blk_priv *p = dev->blk_private;
	struct blk_piece *pc = (struct blk_piece *)r;
	uint64_t fl = spin_lock_irqsave(&p->pool_lock);
	pc->free_next = p->free;
	p->free = pc;
	p->nfree++;
	spin_unlock_irqrestore(&p->pool_lock, fl);
	waitq_wake_all(&p->pool_wq);
}

void blk_piece_setup(struct blk_req *parent, struct blk_piece *pc, uint8_t op, uint32_t flags)
{
	struct blk_req *r = &pc->req;
	r->op = op;
	r->flags = flags;
	r->lba = 0;
	r->nblocks = 0;
	r->segs = pc->segs;
	r->nsegs = 0;
	r->done = NULL;
	r->priv = NULL;
	r->status = 0;
	r->error[0] = 0;
	r->dev = parent->dev;
	r->submit_ns = parent->submit_ns;
	r->parent = parent;
	r->next = NULL;
	r->pending = 0;
	r->queue = parent->queue;
	r->driver_data = NULL;
	r->bl_flags = BLK_RF_PIECE;
	r->members = NULL;
}

/* ---- completion ---- */

static void blk_account(struct blk_dev *dev, struct blk_req *req)
{
	struct blk_stats *s = &dev->stats;
	uint64_t us = (time_ns() - req->submit_ns) / NS_PER_US;
	unsigned b = 0;

	__atomic_fetch_add(&s->ops[req->op < 5 ? req->op : 0], 1, __ATOMIC_RELAXED);
	if (req->status)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	else if (req->op == BLK_OP_READ)
		__atomic_fetch_add(&s->bytes_read, (uint64_t)req->nblocks * dev->lba_size, __ATOMIC_RELAXED);
	else if (req->op == BLK_OP_WRITE || req->op == BLK_OP_WRITE_ZEROES)
		__atomic_fetch_add(&s->bytes_written, (uint64_t)req->nblocks * dev->lba_size, __ATOMIC_RELAXED);
	while (b < BLK_LAT_BUCKETS - 1 && us >= (1ull << b))
		b++;
	if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) {
		/* Racy read-modify-write across CPUs: an estimate is enough. */
		int64_t old = (int64_t)__atomic_load_n(&dev->lat_ewma_ns, __ATOMIC_RELAXED);
		int64_t lat = (int64_t)(time_ns() - req->submit_ns);
		__atomic_store_n(&dev->lat_ewma_ns, (uint64_t)(old + (lat - old) / 8), __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&s->lat_us_log2[b], 1, __ATOMIC_RELAXED);
}

/* The caller's request is finished. */
void blk_finish(struct blk_req *req)
{
	blk_account(req->dev, req);
	req->done(req);
}

void blk_parent_put(struct blk_req *parent)
{
	if (__atomic_sub_fetch(&parent->pending, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (parent->bl_flags & BLK_RF_FUA_EMUL) {
		/* The writes are done: make them durable with the flush piece
		 * reserved at submission. */
		struct blk_req *fl = parent->members;
		parent->bl_flags &= ~BLK_RF_FUA_EMUL;
		parent->members = NULL;
		if (parent->status == 0) {
			parent->pending = 1;
			blk_dispatch(parent->dev, fl);
			return;
		}
		blk_piece_put(parent->dev, fl);
	}
	blk_finish(parent);
}

void blk_set_error(struct blk_req *r, int status, const char *error)
{
	int zero = 0;
	if (!status)
		return;
	/* Keep the first error of a split request. */
	if (__atomic_compare_exchange_n(&r->status, &zero, status, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		strlcpy(r->error, error ? error : "", sizeof(r->error));
}

/* One request (caller's, piece or merge member) got its result. */
static void blk_complete_one(struct blk_req *r, int status, const char *error)
{
	struct blk_req *parent = r->parent;

	if (r->bl_flags & BLK_RF_MERGED) {
		struct blk_req *m = r->members;
		while (m) {
			struct blk_req *n = m->next;
			m->next = NULL;
			blk_complete_one(m, status, error);
			m = n;
		}
		blk_piece_put(r->dev, r);
		return;
	}
	if (parent) {
		blk_set_error(parent, status, error);
		if (r->bl_flags & BLK_RF_PIECE)
			blk_piece_put(r->dev, r);
		blk_parent_put(parent);
		return;
	}
	r->status = status;
	if (status)
		strlcpy(r->error, error ? error : "", sizeof(r->error));
	else
		r->error[0] = 0;
	blk_finish(r);
}

/* ---- software queue ---- */

bool blk_seg_joins(const struct blk_dev *dev, const struct blk_seg *a, const struct blk_seg *b)
{
	uint64_t vb = dev->virt_boundary;
	if (!vb)
		return true;
	return (((uint64_t)a->buf + a->len) & (vb - 1)) == 0 && ((uint64_t)b->buf & (vb - 1)) == 0;
}

/* Can request b follow request a as one command?  Caller holds the lock. */
static bool blk_can_merge(struct blk_dev *dev, struct blk_req *a, struct blk_req *b)
{
	if (a->op != b->op || a->flags != b->flags || a->lba + a->nblocks != b->lba)
		return false;
	if (a->op != BLK_OP_READ && a->op != BLK_OP_WRITE)
		return false;
	if ((uint64_t)(a->nblocks + b->nblocks) * dev->lba_size > dev->max_transfer)
		return false;
	unsigned maxs = MIN((unsigned)dev->max_segments, (unsigned)BLK_PIECE_SEGS);
	if (a->nsegs + b->nsegs > maxs)
		return false;
	return blk_seg_joins(dev, &a->segs[a->nsegs - 1], &b->segs[0]);
}

/* Append r to the software queue, merging it into the tail when adjacent.
 * Caller holds q->lock. */
static void blk_swq_append(struct blk_dev *dev, struct blk_swq *q, struct blk_req *r)
{
	struct blk_req *t = q->tail;

	r->next = NULL;
	r->flags &= ~BLK_F_MORE;      /* parked: issued later, started at once */
	if (t && blk_can_merge(dev, t, r)) {
		if (!(t->bl_flags & BLK_RF_MERGED)) {
			/* Wrap the tail in a merged request from the pool. */
			struct blk_piece *pc = blk_piece_try(dev->blk_private);
			if (!pc)
				goto plain;
			struct blk_req *m = &pc->req;
			blk_piece_setup(t, pc, t->op, t->flags);
			m->parent = NULL;
			m->bl_flags = BLK_RF_PIECE | BLK_RF_MERGED;
			m->lba = t->lba;
			m->nblocks = t->nblocks;
			memcpy(m->segs, t->segs, t->nsegs * sizeof(struct blk_seg));
			m->nsegs = t->nsegs;
			m->members = t;
			t->next = NULL;
			/* replace t by m in the list */
			struct blk_req **pp = &q->head;
			while (*pp != t)
				pp = &(*pp)->next;
			*pp = m;
			q->tail = m;
			t = m;
		}
		memcpy(&t->segs[t->nsegs], r->segs, r->nsegs * sizeof(struct blk_seg));
		t->nsegs += r->nsegs;
		t->nblocks += r->nblocks;
		struct blk_req **mp = &t->members;
		while (*mp)
			mp = &(*mp)->next;
		*mp = r;
		__atomic_fetch_add(&dev->stats.merges, 1, __ATOMIC_RELAXED);
		return;
	}
plain:
	if (t)
		t->next = r;
	else
		q->head = r;
	q->tail = r;
}

static void blk_submit_failed(struct blk_req *r, int rc)
{
	char msg[64];
	ksnprintf(msg, sizeof(msg), "driver refused the request: %s", strerror(rc));
	blk_complete_one(r, rc, r->error[0] ? r->error : msg);
}

/* Hand r to the driver on its queue, counted in flight while the driver
 * has it.  0: the driver took it, or r failed (dead device, refused) and
 * was completed; -EBUSY: the queue is full and r is still the caller's. */
static int blk_issue(struct blk_dev *dev, struct blk_swq *q, struct blk_req *r)
{
	if (dev->dead) {
		blk_complete_one(r, -EIO, dev->dead_reason);
		return 0;
	}
	__atomic_fetch_add(&q->inflight, 1, __ATOMIC_SEQ_CST);
	int rc = dev->ops->submit(dev, r, r->queue);
	if (rc == 0)
		return 0;
	__atomic_fetch_sub(&q->inflight, 1, __ATOMIC_SEQ_CST);
	if (rc != -EBUSY) {
		blk_submit_failed(r, rc);
		return 0;
	}
	return -EBUSY;
}

/* Hand parked requests of queue qi to the driver until it says -EBUSY. */
static void blk_swq_run(struct blk_dev *dev, unsigned qi)
{
	struct blk_priv *p = dev->blk_private;
	struct blk_swq *q = &p->swq[qi];

	for (;;) {
		uint64_t fl = spin_lock_irqsave(&q->lock);
		struct blk_req *r = q->head;
		if (!r) {
			spin_unlock_irqrestore(&q->lock, fl);
			return;
		}
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		r->next = NULL;
		uint64_t seen = q->ncompleted;
		spin_unlock_irqrestore(&q->lock, fl);

		if (blk_issue(dev, q, r) == 0)
			continue;
		fl = spin_lock_irqsave(&q->lock);
		r->next = q->head;           /* back at the head: keep order */
		q->head = r;
		if (!q->tail)
			q->tail = r;
		bool again = __atomic_load_n(&q->ncompleted, __ATOMIC_SEQ_CST) != seen;
		spin_unlock_irqrestore(&q->lock, fl);
		if (!again)
			return;
	}
}

void blk_kick(struct blk_dev *dev)
{
	struct blk_priv *p = dev->blk_private;
	for (unsigned i = 0; i < dev->nqueues; i++)
		if (p->swq[i].head)
			blk_swq_run(dev, i);
}

/* Give r (fits the limits) to the driver, or park it. */
void blk_dispatch(struct blk_dev *dev, struct blk_req *r)
{
	struct blk_priv *p = dev->blk_private;
	unsigned qi = r->queue;
	struct blk_swq *q = &p->swq[qi];
	uint64_t fl;

	if (dev->dead) {
		blk_complete_one(r, -EIO, dev->dead_reason);
		return;
	}
	if (!q->head) {
		uint64_t seen = __atomic_load_n(&q->ncompleted, __ATOMIC_SEQ_CST);
		if (blk_issue(dev, q, r) == 0)
			return;
		__atomic_fetch_add(&dev->stats.requeues, 1, __ATOMIC_RELAXED);
		fl = spin_lock_irqsave(&q->lock);
		blk_swq_append(dev, q, r);
		bool again = __atomic_load_n(&q->ncompleted, __ATOMIC_SEQ_CST) != seen ||
			     __atomic_load_n(&q->inflight, __ATOMIC_SEQ_CST) == 0;
		spin_unlock_irqrestore(&q->lock, fl);
		if (again)
			blk_swq_run(dev, qi);
		return;
	}
	/* Others are waiting: queue behind them (and maybe merge). */
	fl = spin_lock_irqsave(&q->lock);
	blk_swq_append(dev, q, r);
	spin_unlock_irqrestore(&q->lock, fl);
	blk_swq_run(dev, qi);
}

void blk_complete(struct blk_req *req, int status, const char *error)
{
	struct blk_dev *dev = req->dev;
	struct blk_priv *p = dev->blk_private;
	unsigned qi = req->queue;
	struct blk_swq *q = &p->swq[qi];

	__atomic_fetch_sub(&q->inflight, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&q->ncompleted, 1, __ATOMIC_SEQ_CST);
	blk_complete_one(req, status, error);
	if (__atomic_load_n(&q->head, __ATOMIC_SEQ_CST))
		blk_swq_run(dev, qi);
}

void blk_set_dead(struct blk_dev *dev, const char *reason)
{
	struct blk_priv *p = dev->blk_private;

	strlcpy(dev->dead_reason, reason ? reason : "device is dead", sizeof(dev->dead_reason));
	__atomic_store_n(&dev->dead, true, __ATOMIC_SEQ_CST);
	kprintf("blk: %s: device is dead: %s\n", dev->name, dev->dead_reason);
	for (unsigned i = 0; p && i < dev->nqueues; i++)
		blk_swq_run(dev, i);    /* fails everything parked */
}

/* ---- polling ---- */

int blk_poll_queue(struct blk_dev *dev, unsigned queue)
{
	struct blk_priv *p = dev->blk_private;
	int n = 0;
	if (dev->ops->poll)
		n = dev->ops->poll(dev, queue);
	if (p->swq[queue].head)
		blk_swq_run(dev, queue);
	return n < 0 ? 0 : n;
}

#define BLK_SPIN_MIN_NS (5 * NS_PER_US)
#define BLK_SPIN_MAX_NS (200 * NS_PER_US)

uint64_t blk_poll_spin_budget(const struct blk_dev *dev, unsigned inflight)
{
	/* With n requests out, the next completion is due in about 1/n of
	 * a request's latency. */
	uint64_t b = 2 * __atomic_load_n(&dev->lat_ewma_ns, __ATOMIC_RELAXED) / (inflight ? inflight : 1);
	return MIN(MAX(b, BLK_SPIN_MIN_NS), BLK_SPIN_MAX_NS);
}

/* Pollers sharing a queue sleep on the same interrupt: the first to
 * sleep lets it through, the last to wake stops it (q->armed, counted
 * under the software queue's lock, which no driver path takes inside its
 * own locks). */
static int blk_poll_arm(struct blk_dev *dev, unsigned queue, bool on)
{
	struct blk_swq *q = &((struct blk_priv *)dev->blk_private)->swq[queue];
	int rc = 0;
	uint64_t fl = spin_lock_irqsave(&q->lock);
	if (on ? q->armed++ == 0 : --q->armed == 0)
		rc = dev->ops->arm(dev, queue, on);
	if (on && rc < 0)
		q->armed--;
	spin_unlock_irqrestore(&q->lock, fl);
	return rc;
}

int blk_poll_sleep(struct blk_dev *dev, unsigned queue, struct waitq *wq, bool (*cond)(void *), void *arg,
		   uint64_t deadline_ns)
{
	if (!dev->ops->arm || queue >= dev->nqueues || blk_poll_arm(dev, queue, true) < 0)
		return -ENOTSUP;
	__atomic_fetch_add(&dev->stats.poll_sleeps, 1, __ATOMIC_RELAXED);
	blk_poll_queue(dev, queue);
	if (!cond(arg))
		waitq_wait_until(wq, cond, arg, deadline_ns);
	blk_poll_arm(dev, queue, false);
	return 0;
}

int blk_poll(struct blk_dev *dev)
{
	int n = 0;
	for (unsigned i = 0; i < dev->nqueues; i++)
		n += blk_poll_queue(dev, i);
	return n;
}

int blk_set_polling(struct blk_dev *dev, bool polling)
{
	if (polling && !dev->ops->poll)
		return -ENOTSUP;
	if (polling == dev->polling)
		return 0;
	if (polling) {
		/* Poll mode first, then interrupts off: nothing is missed.
		 * -ENOTSUP: interrupts stay on and polling reaps alongside
		 * them (see blk.h), which is still polling mode. */
		dev->polling = true;
		if (dev->ops->set_interrupts) {
			int rc = dev->ops->set_interrupts(dev, false);
			if (rc < 0 && rc != -ENOTSUP) {
				dev->polling = false;
				return rc;
			}
		}
	} else {
		/* Without interrupts nothing would ever complete: any failure
		 * to turn them on (-ENOTSUP included) keeps the device polling.
		 * No set_interrupts at all: they were never off. */
		if (dev->ops->set_interrupts) {
			int rc = dev->ops->set_interrupts(dev, true);
			if (rc < 0)
				return rc;
		}
		dev->polling = false;
		blk_poll(dev);          /* anything that completed meanwhile */
	}
	return 0;
}
