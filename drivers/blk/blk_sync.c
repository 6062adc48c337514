/*
 * Waiting for the block layer: blk_wait(), the one primitive every
 * "submit, then wait" path uses, the synchronous helpers built on it, and
 * the power-off flush of every disk.
 *
 * The policy (blk.h, "Buffer lifetime"): a wait ends when the request's
 * done() has run, never earlier, because until then the device may DMA
 * into the caller's buffer.  A slow or stuck device is the driver's
 * business -- its watchdog aborts, resets, retries and finally fails the
 * request -- so here a long wait only prints "still waiting" every
 * blk_sync_timeout_ms.  Power-off is the one caller allowed to give up: it
 * leaks what it gave up on.
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
#include "kernel/initcall.h"

uint32_t blk_sync_timeout_ms = 30000;
uint64_t blk_wait_reports;

#define BLK_WAIT_KICK_NS   (50 * NS_PER_MS)   /* restart parked requests */
#define BLK_WAIT_SPIN_NS   (10 * NS_PER_MS)   /* busy polling before yielding */

int blk_wait(struct blk_dev *dev, struct waitq *wq, bool (*cond)(void *), void *arg, const char *what,
	     uint64_t giveup_ns)
{
	uint64_t start = time_ns();
	uint64_t period = (uint64_t)(blk_sync_timeout_ms ? blk_sync_timeout_ms : 1) * NS_PER_MS;
	uint64_t next_report = start + period;

	while (!cond(arg)) {
		uint64_t now = time_ns();
		if (giveup_ns && now >= giveup_ns)
			return -ETIMEDOUT;
		if (now >= next_report) {
			__atomic_fetch_add(&blk_wait_reports, 1, __ATOMIC_RELAXED);
			kprintf("blk: %s: still waiting for %s after %llu ms; the device still owns %s\n",
				dev->name, what, (unsigned long long)((now - start) / NS_PER_MS),
				giveup_ns ? "what it waits for" : "the buffer, so the wait goes on");
			next_report = now + period;
		}
		if (dev->polling) {
			if (blk_poll(dev) || cond(arg))
				continue;
			/* Hybrid polling (blk.h): spin a little, then sleep on
			 * the interrupt of this CPU's queue (a request split over
			 * queues is still reaped by the next blk_poll). */
			if (now - start < blk_poll_spin_budget(dev, 1)) {
				cpu_pause();
				continue;
			}
			uint64_t until = MIN(now + BLK_WAIT_KICK_NS, next_report);
			if (giveup_ns)
				until = MIN(until, giveup_ns);
			if (blk_poll_sleep(dev, blk_queue_of_cpu(dev), wq, cond, arg, until) < 0) {
				if (now - start > BLK_WAIT_SPIN_NS)
					thread_yield();
				else
					cpu_pause();
			}
			continue;
		}
		uint64_t until = MIN(now + BLK_WAIT_KICK_NS, next_report);
		if (giveup_ns)
			until = MIN(until, giveup_ns);
		waitq_wait_until(wq, cond, arg, until);
		if (!cond(arg))
			blk_kick(dev);      /* parked requests no completion restarted */
	}
	return 0;
}

/* ---- synchronous helpers ---- */

struct blk_sync {
	struct blk_req req;
	struct blk_seg seg;
	volatile int completed;
};

static struct waitq blk_sync_wq = WAITQ_INIT("blk-sync");

static void blk_sync_done(struct blk_req *req)
{
	struct blk_sync *s = req->priv;
	__atomic_store_n(&s->completed, 1, __ATOMIC_RELEASE);
	waitq_wake_all(&blk_sync_wq);     /* s may be gone from here on */
}

static bool blk_sync_is_done(void *arg)
{
	return __atomic_load_n(&((struct blk_sync *)arg)->completed, __ATOMIC_ACQUIRE);
}

static int blk_sync_run(struct blk_dev *dev, enum blk_op op, uint64_t lba, uint32_t nblocks,
			void *buf, uint32_t flags, char *err, size_t errlen)
{
	struct blk_sync s;
	char what[64];
	int rc;

	if (err && errlen)
		err[0] = 0;
	bool rw = op == BLK_OP_READ || op == BLK_OP_WRITE;
	if (rw && (uint64_t)nblocks * dev->lba_size > 0xffffffffull) {
		if (err)
			strlcpy(err, "transfer too large for one synchronous call (4 GiB)", errlen);
		return -EINVAL;
	}
	memset(&s, 0, sizeof(s));
	s.seg.buf = buf;
	s.seg.len = (uint32_t)((uint64_t)nblocks * dev->lba_size);
	blk_req_init(&s.req, op, lba, nblocks, rw ? &s.seg : NULL, rw ? 1 : 0, blk_sync_done, &s);
	s.req.flags = flags;
	rc = blk_submit(dev, &s.req);
	if (rc) {
		if (err)
			strlcpy(err, blk_req_reason(&s.req), errlen);
		return rc;
	}
	ksnprintf(what, sizeof(what), "%s lba %llu+%u", blk_op_name(op), (unsigned long long)lba, nblocks);
	blk_wait(dev, &blk_sync_wq, blk_sync_is_done, &s, what, 0);
	rc = s.req.status;
	if (rc && err)
		strlcpy(err, blk_req_reason(&s.req), errlen);
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

/* ---- power-off: flush every disk with a write cache ---- */

/* Heap-allocated: a flush the deadline gives up on stays owned by the
 * device and is leaked, not freed (the machine is about to power off). */
int blk_shutdown_flush(uint64_t deadline_ns)
{
	unsigned n = blk_count();
	struct blk_sync **fl = kzalloc(sizeof(*fl) * (n ? n : 1));
	int first = 0;

	if (!fl)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct blk_dev *d = blk_get(i);
		if (!d->write_cache || d->dead)
			continue;
		struct blk_sync *s = kzalloc(sizeof(*s));
		if (!s) {
			kprintf("blk: %s: no memory for the power-off flush\n", d->name);
			first = first ? first : -ENOMEM;
			continue;
		}
		blk_req_init(&s->req, BLK_OP_FLUSH, 0, 0, NULL, 0, blk_sync_done, s);
		int rc = blk_submit(d, &s->req);
		if (rc) {
			kprintf("blk: %s: power-off flush refused: %s\n", d->name, blk_req_reason(&s->req));
			kfree(s);
			first = first ? first : rc;
			continue;
		}
		fl[i] = s;
	}
	unsigned flushed = 0;
	for (unsigned i = 0; i < n; i++) {
		struct blk_dev *d = blk_get(i);
		if (!fl[i])
			continue;
		int rc = blk_wait(d, &blk_sync_wq, blk_sync_is_done, fl[i], "the power-off flush", deadline_ns);
		if (rc) {
			kprintf("blk: %s: power-off flush did not finish in time; data in the disk's write "
				"cache may be lost\n", d->name);
			first = first ? first : rc;
			continue;           /* fl[i] leaks: the device still owns it */
		}
		if (fl[i]->req.status) {
			kprintf("blk: %s: power-off flush failed: %s\n", d->name, blk_req_reason(&fl[i]->req));
			first = first ? first : fl[i]->req.status;
		} else {
			flushed++;
		}
		kfree(fl[i]);
	}
	kfree(fl);
	kprintf("blk: power-off flush: %u disk%s flushed\n", flushed, flushed == 1 ? "" : "s");
	return first;
}

SHUTDOWN_STEP(blk_flush, 30, blk_shutdown_flush);
