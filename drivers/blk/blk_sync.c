/*
 * Synchronous helpers: submit one request and wait for it with a deadline,
 * polling the device in polling mode and sleeping in interrupt mode.
 *
 * The waiting state is heap-allocated: if the deadline passes, the request
 * still belongs to the block layer, so the state is abandoned (kept on a
 * list and freed by a later call once the request has completed) instead
 * of being freed under the driver's feet.
 */
#include "drivers/blk/blk.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/time.h"
#include "kernel/cpu.h"

uint32_t blk_sync_timeout_ms = 30000;

struct blk_sync {
	struct blk_req req;
	struct blk_seg seg;
	volatile int completed;
	struct blk_sync *next_abandoned;
};

static struct waitq blk_sync_wq = WAITQ_INIT("blk-sync");
static spinlock_t blk_sync_lock = SPINLOCK_INIT("blk-sync");
static struct blk_sync *blk_sync_abandoned;

static void blk_sync_done(struct blk_req *req)
{
	struct blk_sync *s = req->priv;
	__atomic_store_n(&s->completed, 1, __ATOMIC_RELEASE);
	waitq_wake_all(&blk_sync_wq);     /* s may be freed from here on */
}

static bool blk_sync_is_done(void *arg)
{
	return __atomic_load_n(&((struct blk_sync *)arg)->completed, __ATOMIC_ACQUIRE);
}

/* Free abandoned requests that have completed since. */
static void blk_sync_reap(void)
{
	struct blk_sync *free_list = NULL;
	uint64_t fl = spin_lock_irqsave(&blk_sync_lock);
	struct blk_sync **pp = &blk_sync_abandoned;
	while (*pp) {
		struct blk_sync *s = *pp;
		if (blk_sync_is_done(s)) {
			*pp = s->next_abandoned;
			s->next_abandoned = free_list;
			free_list = s;
		} else {
			pp = &s->next_abandoned;
		}
	}
	spin_unlock_irqrestore(&blk_sync_lock, fl);
	while (free_list) {
		struct blk_sync *n = free_list->next_abandoned;
		kfree(free_list);
		free_list = n;
	}
}

/* Wait for s with the deadline; 0 when completed. */
static int blk_sync_wait(struct blk_dev *dev, struct blk_sync *s, uint64_t deadline)
{
	while (!blk_sync_is_done(s)) {
		uint64_t now = time_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (dev->polling) {
			if (blk_poll(dev) == 0)
				cpu_pause();
			continue;
		}
		/* Wake up now and then to restart parked requests in case no
		 * completion is coming to do it. */
		waitq_wait_until(&blk_sync_wq, blk_sync_is_done, s, MIN(deadline, now + 50 * NS_PER_MS));
		if (!blk_sync_is_done(s))
			blk_kick(dev);
	}
	return 0;
}

static int blk_sync_run(struct blk_dev *dev, enum blk_op op, uint64_t lba, uint32_t nblocks,
			void *buf, uint32_t flags, char *err, size_t errlen)
{
	struct blk_sync *s;
	int rc;

	if (err && errlen)
		err[0] = 0;
	blk_sync_reap();
	s = kzalloc(sizeof(*s));
	if (!s) {
		if (err)
			strlcpy(err, "out of memory for the request", errlen);
		return -ENOMEM;
	}
	s->seg.buf = buf;
	s->seg.len = (uint32_t)((uint64_t)nblocks * dev->lba_size);
	bool rw = op == BLK_OP_READ || op == BLK_OP_WRITE;
	if (rw && (uint64_t)nblocks * dev->lba_size > 0xffffffffull) {
		kfree(s);
		if (err)
			strlcpy(err, "transfer too large for one synchronous call (4 GiB)", errlen);
		return -EINVAL;
	}
	blk_req_init(&s->req, op, lba, nblocks, rw ? &s->seg : NULL, rw ? 1 : 0, blk_sync_done, s);
	s->req.flags = flags;
	uint64_t start = time_ns();
	rc = blk_submit(dev, &s->req);
	if (rc) {
		if (err)
			strlcpy(err, blk_req_reason(&s->req), errlen);
		kfree(s);
		return rc;
	}
	rc = blk_sync_wait(dev, s, start + (uint64_t)blk_sync_timeout_ms * NS_PER_MS);
	if (rc == -ETIMEDOUT) {
		uint64_t fl = spin_lock_irqsave(&blk_sync_lock);
		s->next_abandoned = blk_sync_abandoned;
		blk_sync_abandoned = s;
		spin_unlock_irqrestore(&blk_sync_lock, fl);
		if (err)
			ksnprintf(err, errlen, "timed out after %llu ms waiting for %s on %s",
				  (unsigned long long)((time_ns() - start) / NS_PER_MS), blk_op_name(op), dev->name);
		return -ETIMEDOUT;
	}
	rc = s->req.status;
	if (rc && err)
		strlcpy(err, blk_req_reason(&s->req), errlen);
	kfree(s);
	return rc;
}

int blk_read(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, void *buf, char *err, size_t errlen)
{
	return blk_sync_run(dev, BLK_OP_READ, lba, nblocks, buf, 0, err, errlen);
}

int blk_write(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, const void *buf, uint32_t flags,
	      char *err, size_t errlen)
{
	return blk_sync_run(dev, BLK_OP_WRITE, lba, nblocks, (void *)buf, flags, err, errlen);
}

int blk_flush(struct blk_dev *dev, char *err, size_t errlen)
{
	return blk_sync_run(dev, BLK_OP_FLUSH, 0, 0, NULL, 0, err, errlen);
}

int blk_discard(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, char *err, size_t errlen)
{
	return blk_sync_run(dev, BLK_OP_DISCARD, lba, nblocks, NULL, 0, err, errlen);
}

int blk_write_zeroes(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, char *err, size_t errlen)
{
	return blk_sync_run(dev, BLK_OP_WRITE_ZEROES, lba, nblocks, NULL, 0, err, errlen);
}
