/* RAM-backed test block device (see memdisk.h). */
#include "drivers/blk/memdisk.h"
#include "drivers/driver.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"

#define MEMDISK_CHUNK_ORDER 4
#define MEMDISK_CHUNK (PAGE_SIZE << MEMDISK_CHUNK_ORDER)   /* 64 KiB */

struct memdisk_queue {
	spinlock_t lock;
	struct blk_req *head, *tail;   /* done, waiting to be reported */
	unsigned inflight;
};

struct memdisk {
	struct blk_dev dev;
	uint8_t **chunks;
	uint64_t nchunks;
	struct memdisk_queue *q;
	struct waitq wq;               /* the worker ("interrupt handler") */
	volatile bool irq_on, hold;
	spinlock_t lock;               /* counters and injection rule */
	struct memdisk_counters c;
	struct { uint8_t op; uint64_t lba; uint32_t n; unsigned count; int status; char reason[80]; } inj;
};

static struct memdisk *md_of(struct blk_dev *dev)
{
	return dev->driver_data;
}

uint8_t *memdisk_byte(struct blk_dev *dev, uint64_t off)
{
	struct memdisk *md = md_of(dev);
	if (off >= dev->nblocks * dev->lba_size)
		return NULL;
	return md->chunks[off / MEMDISK_CHUNK] + off % MEMDISK_CHUNK;
}

/* Copy between a buffer and the store at byte offset off. */
static void memdisk_copy(struct memdisk *md, uint64_t off, void *buf, uint32_t len, bool to_disk)
{
	uint8_t *b = buf;
	while (len) {
		uint32_t in = (uint32_t)(off % MEMDISK_CHUNK);
		uint32_t n = MIN(len, (uint32_t)(MEMDISK_CHUNK - in));
		uint8_t *d = md->chunks[off / MEMDISK_CHUNK] + in;
		if (to_disk)
			memcpy(d, b, n);
		else if (b)
			memcpy(b, d, n);
		else
			memset(d, 0, n);
		b = b ? b + n : NULL;
		off += n;
		len -= n;
	}
}

static bool memdisk_within_limits(struct blk_dev *dev, struct blk_req *r)
{
	if (r->op == BLK_OP_FLUSH)
		return true;
	if (r->lba + r->nblocks > dev->nblocks || !r->nblocks)
		return false;
	if (r->op == BLK_OP_DISCARD)
		return r->nblocks <= dev->max_discard_blocks;
	if (r->op == BLK_OP_WRITE_ZEROES)
		return r->nblocks <= dev->max_write_zeroes_blocks;
	uint64_t bytes = 0;
	if (r->nsegs > dev->max_segments)
		return false;
	for (unsigned i = 0; i < r->nsegs; i++) {
		const struct blk_seg *s = &r->segs[i];
		bytes += s->len;
		if (i && dev->virt_boundary &&
		    ((((uint64_t)r->segs[i - 1].buf + r->segs[i - 1].len) | (uint64_t)s->buf) & (dev->virt_boundary - 1)))
			return false;
	}
	return bytes == (uint64_t)r->nblocks * dev->lba_size && bytes <= dev->max_transfer;
}

static int memdisk_submit(struct blk_dev *dev, struct blk_req *r, unsigned qi)
{
	struct memdisk *md = md_of(dev);
	struct memdisk_queue *q = &md->q[qi];
	uint64_t fl = spin_lock_irqsave(&q->lock);

	if (q->inflight >= dev->queue_depth) {
		spin_unlock_irqrestore(&q->lock, fl);
		fl = spin_lock_irqsave(&md->lock);
		md->c.busy++;
		spin_unlock_irqrestore(&md->lock, fl);
		return -EBUSY;
	}
	q->inflight++;
	spin_unlock_irqrestore(&q->lock, fl);

	int status = 0;
	fl = spin_lock_irqsave(&md->lock);
	struct memdisk_cmd *c = &md->c.log[md->c.nlog++ % MEMDISK_LOG];
	c->op = r->op;
	c->flags = r->flags;
	c->lba = r->lba;
	c->nblocks = r->nblocks;
	c->nsegs = r->nsegs;
	md->c.cmds++;
	if (r->op == BLK_OP_FLUSH)
		md->c.flushes++;
	if (r->flags & BLK_F_FUA)
		md->c.fua_writes++;
	bool ok = memdisk_within_limits(dev, r);
	if (!ok)
		md->c.limit_violations++;
	if (md->inj.count && md->inj.op == r->op &&
	    (r->op == BLK_OP_FLUSH || (r->lba < md->inj.lba + md->inj.n && md->inj.lba < r->lba + r->nblocks))) {
		md->inj.count--;
		status = md->inj.status;
		ksnprintf(r->error, sizeof(r->error), "%s (lba %llu)", md->inj.reason, (unsigned long long)r->lba);
	}
	spin_unlock_irqrestore(&md->lock, fl);

	if (!ok && !status) {
		status = -EINVAL;
		strlcpy(r->error, "memdisk: command outside the device limits", sizeof(r->error));
	}
	if (!status) {
		uint64_t off = r->lba * dev->lba_size;
		switch (r->op) {
		case BLK_OP_READ:
		case BLK_OP_WRITE:
			for (unsigned i = 0; i < r->nsegs; i++) {
				memdisk_copy(md, off, r->segs[i].buf, r->segs[i].len, r->op == BLK_OP_WRITE);
				off += r->segs[i].len;
			}
			break;
		case BLK_OP_DISCARD:
		case BLK_OP_WRITE_ZEROES:
			memdisk_copy(md, off, NULL, r->nblocks * dev->lba_size, false);
			break;
		default:
			break;
		}
	}
	r->status = status;
	if (!status)
		r->error[0] = 0;

	r->driver_data = NULL;
	fl = spin_lock_irqsave(&q->lock);
	if (q->tail)
		q->tail->driver_data = r;
	else
		q->head = r;
	q->tail = r;
	spin_unlock_irqrestore(&q->lock, fl);
	if (md->irq_on)
		waitq_wake_one(&md->wq);
	return 0;
}

/* Report finished commands of one queue. */
static int memdisk_reap(struct memdisk *md, unsigned qi)
{
	struct memdisk_queue *q = &md->q[qi];
	int n = 0;

	if (md->hold)
		return 0;
	uint64_t fl = spin_lock_irqsave(&q->lock);
	struct blk_req *r = q->head;
	q->head = q->tail = NULL;
	unsigned cnt = 0;
	for (struct blk_req *x = r; x; x = x->driver_data)
		cnt++;
	q->inflight -= cnt;
	spin_unlock_irqrestore(&q->lock, fl);
	while (r) {
		struct blk_req *next = r->driver_data;
		blk_complete(r, r->status, r->status ? r->error : NULL);
		r = next;
		n++;
	}
	return n;
}

static int memdisk_poll(struct blk_dev *dev, unsigned qi)
{
	struct memdisk *md = md_of(dev);
	int n = memdisk_reap(md, qi);
	if (n > 0)
		__atomic_fetch_add(&md->c.polled, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

static int memdisk_set_interrupts(struct blk_dev *dev, bool on)
{
	struct memdisk *md = md_of(dev);
	md->irq_on = on;
	if (on)
		waitq_wake_one(&md->wq);
	return 0;
}

static int memdisk_arm(struct blk_dev *dev, unsigned queue, bool on)
{
	(void)queue;
	return memdisk_set_interrupts(dev, on);
}

static void memdisk_describe(struct blk_dev *dev)
{
	struct memdisk *md = md_of(dev);
	kprintf("  memdisk: %llu KiB in RAM, %llu commands, %llu busy refusals, %llu limit violations\n",
		(unsigned long long)(dev->nblocks * dev->lba_size / 1024),
		(unsigned long long)md->c.cmds, (unsigned long long)md->c.busy,
		(unsigned long long)md->c.limit_violations);
}

static const struct blk_ops memdisk_ops = {
	.submit = memdisk_submit,
	.poll = memdisk_poll,
	.set_interrupts = memdisk_set_interrupts,
	.arm = memdisk_arm,
	.describe = memdisk_describe,
};

static bool memdisk_has_work(void *arg)
{
	struct memdisk *md = arg;
	if (!md->irq_on || md->hold)
		return false;
	for (unsigned i = 0; i < md->dev.nqueues; i++)
		if (md->q[i].head)
			return true;
	return false;
}

/* Stands in for the interrupt handler. */
static void memdisk_worker(void *arg)
{
	struct memdisk *md = arg;
	for (;;) {
		waitq_wait_until(&md->wq, memdisk_has_work, md, time_ns() + NS_PER_S);
		if (!md->irq_on)
			continue;
		for (unsigned i = 0; i < md->dev.nqueues; i++)
			memdisk_reap(md, i);
	}
}

struct blk_dev *memdisk_create(const char *name, const struct memdisk_opts *o)
{
	uint32_t lbs = o->lba_size ? o->lba_size : 512;
	uint64_t size = ALIGN_DOWN(o->size, (uint64_t)lbs);
	struct memdisk *md = kzalloc(sizeof(*md));

	if (!md || !size)
		goto fail;
	md->nchunks = (size + MEMDISK_CHUNK - 1) / MEMDISK_CHUNK;
	md->chunks = kzalloc(md->nchunks * sizeof(uint8_t *));
	if (!md->chunks)
		goto fail;
	for (uint64_t i = 0; i < md->nchunks; i++) {
		uint64_t p = pmm_alloc_pages(MEMDISK_CHUNK_ORDER);
		if (!p)
			goto fail;
		md->chunks[i] = PHYS_TO_VIRT(p);
		memset(md->chunks[i], 0, MEMDISK_CHUNK);
	}
	struct blk_dev *d = &md->dev;
	strlcpy(d->name, name, sizeof(d->name));
	strlcpy(d->model, "RAM disk", sizeof(d->model));
	strlcpy(d->serial, name, sizeof(d->serial));
	strlcpy(d->firmware, "1.0", sizeof(d->firmware));
	d->lba_size = lbs;
	d->nblocks = size / lbs;
	d->max_transfer = o->max_transfer ? o->max_transfer : 128 * 1024;
	d->max_segments = o->max_segments ? o->max_segments : 32;
	d->virt_boundary = o->virt_boundary;
	d->max_discard_blocks = o->max_discard_blocks;
	d->max_write_zeroes_blocks = o->max_write_zeroes_blocks;
	d->write_cache = o->write_cache;
	d->ramdisk = true;
	d->fua = o->fua;
	d->nqueues = o->nqueues ? o->nqueues : 1;
	d->queue_depth = o->queue_depth ? o->queue_depth : 32;
	d->ops = &memdisk_ops;
	d->driver_data = md;
	md->q = kzalloc(sizeof(*md->q) * d->nqueues);
	if (!md->q)
		goto fail;
	for (unsigned i = 0; i < d->nqueues; i++)
		spin_init(&md->q[i].lock, "memdisk-q");
	spin_init(&md->lock, "memdisk");
	waitq_init(&md->wq, "memdisk");
	md->irq_on = true;
	if (blk_register(d) < 0)
		goto fail;     /* the pages stay allocated: rare, test-only */
	if (!thread_create("memdisk", memdisk_worker, md, THREAD_ANY_CPU)) {
		blk_set_dead(d, "memdisk: no worker thread");
		return NULL;
	}
	return d;
fail:
	kprintf("memdisk: %s: cannot create a %llu-byte disk: out of memory or bad options\n",
		name, (unsigned long long)o->size);
	if (md && md->chunks) {
		for (uint64_t i = 0; i < md->nchunks; i++)
			if (md->chunks[i])
				pmm_free_pages(VIRT_TO_PHYS(md->chunks[i]), MEMDISK_CHUNK_ORDER);
		kfree(md->chunks);
	}
	if (md)
		kfree(md->q);
	kfree(md);
	return NULL;
}

void memdisk_inject(struct blk_dev *dev, uint8_t op, uint64_t lba, uint32_t n, unsigned count,
		    int status, const char *reason)
{
	struct memdisk *md = md_of(dev);
	uint64_t fl = spin_lock_irqsave(&md->lock);
	md->inj.op = op;
	md->inj.lba = lba;
	md->inj.n = n;
	md->inj.count = count;
	md->inj.status = status;
	strlcpy(md->inj.reason, reason ? reason : "injected error", sizeof(md->inj.reason));
	spin_unlock_irqrestore(&md->lock, fl);
}

void memdisk_hold(struct blk_dev *dev, bool hold)
{
	struct memdisk *md = md_of(dev);
	md->hold = hold;
	if (!hold)
		waitq_wake_one(&md->wq);
}

void memdisk_counters(struct blk_dev *dev, struct memdisk_counters *out, bool reset)
{
	struct memdisk *md = md_of(dev);
	uint64_t fl = spin_lock_irqsave(&md->lock);
	if (out)
		*out = md->c;
	if (reset)
		memset(&md->c, 0, sizeof(md->c));
	spin_unlock_irqrestore(&md->lock, fl);
}

/* Boot argument memdisk=SIZE: one RAM disk "mem0" for trying things out. */
KERNEL_ARG_TEXT(memdisk, "SIZE", "attach a RAM disk mem0 of SIZE bytes (e.g. 64m)");

static int memdisk_attach_all(void)
{
	const char *a = arg_get("memdisk");
	unsigned long long size;

	if (!a)
		return 0;
	if (parse_u64(a, &size) || size < 4096) {
		kprintf("memdisk: bad size \"%s\" (want e.g. memdisk=64m)\n", a);
		return -EINVAL;
	}
	struct memdisk_opts o = {
		.size = size, .lba_size = 512, .max_transfer = 128 * 1024, .max_segments = 32,
		.max_discard_blocks = 65536, .max_write_zeroes_blocks = 65536,
		.write_cache = true, .fua = false,
		.nqueues = ncpus_online ? ncpus_online : 1, .queue_depth = 64,
	};
	return memdisk_create("mem0", &o) ? 1 : -ENOMEM;
}
DRIVER(memdisk, 90, memdisk_attach_all);
