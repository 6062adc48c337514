/*
 * NVMe self-tests of the doorbells: batched submission (BLK_F_MORE ...
 * blk_commit) on plain, split and parked requests and across controller
 * resets, and shadow doorbells.  Every test here also checks that the
 * watchdog never had to write a doorbell that was due (late commits,
 * nudges: nvme_io.c): a submission left without one would otherwise only
 * show as a 250-500 ms stall.  They write only to scratch namespaces, in
 * [4, 6) MiB of the test area (nvme_test.h).
 */
#include "kernel/selftest.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "drivers/nvme/nvme_var.h"
#include "drivers/nvme/nvme_test.h"
#include "drivers/blk/pattern.h"

#define NTDB_MAX 320                 /* requests in one batch (> one queue) */

/* A batch of requests and its completion count.  Static instances: a
 * completion may still be inside waitq_wake_all() when blk_wait()
 * returns. */
struct ntdb_batch {
	struct waitq wq;
	bool wq_ready;
	volatile unsigned done, failed, want;
	struct blk_req reqs[NTDB_MAX];
	struct blk_seg segs[NTDB_MAX];
};

static void ntdb_done(struct blk_req *req)
{
	struct ntdb_batch *tb = req->priv;
	if (req->status)
		__atomic_fetch_add(&tb->failed, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&tb->done, 1, __ATOMIC_SEQ_CST);
	waitq_wake_all(&tb->wq);
}

static bool ntdb_all(void *arg)
{
	struct ntdb_batch *tb = arg;
	return __atomic_load_n(&tb->done, __ATOMIC_SEQ_CST) == tb->want;
}

static void ntdb_init(struct ntdb_batch *tb)
{
	if (!tb->wq_ready)
		waitq_init(&tb->wq, "nvme-st");
	tb->wq_ready = true;
}

/* Submit n 4 KiB requests on consecutive blocks from lba with buffers
 * buf + i * 4096; returns how many were accepted (the others count as
 * done: their done() will not run). */
static unsigned ntdb_submit(struct blk_dev *b, struct ntdb_batch *tb, unsigned n, enum blk_op op, uint64_t lba,
			    uint8_t *buf, uint32_t flags)
{
	uint32_t per = 4096 / b->lba_size;
	unsigned queued = 0;

	ntdb_init(tb);
	tb->done = tb->failed = 0;
	tb->want = n;
	for (unsigned i = 0; i < n; i++) {
		tb->segs[i] = (struct blk_seg){ buf + (size_t)i * 4096, 4096 };
		blk_req_init(&tb->reqs[i], op, lba + i * per, per, &tb->segs[i], 1, ntdb_done, tb);
		tb->reqs[i].flags = flags;
		if (blk_submit(b, &tb->reqs[i]) == 0)
			queued++;
		else
			__atomic_fetch_add(&tb->done, 1, __ATOMIC_SEQ_CST);
	}
	return queued;
}

static bool ntdb_wait(struct blk_dev *b, struct ntdb_batch *tb)
{
	return blk_wait(b, &tb->wq, ntdb_all, tb, "test requests", 0) == 0 && tb->failed == 0;
}

/* Doorbell counters summed over the controller's I/O queues. */
struct ntdb_counts {
	uint64_t submits, completions, sq_mmio, cq_mmio, skipped, late, nudges;
};

static void ntdb_counts(struct nvme_ctrl *c, struct ntdb_counts *n)
{
	memset(n, 0, sizeof(*n));
	for (unsigned i = 0; i < c->nqueues; i++) {
		struct nvme_queue *q = &c->io[i];
		uint64_t fl = spin_lock_irqsave(&q->lock);
		n->submits += q->submits;
		n->completions += q->completions;
		n->sq_mmio += q->sq_doorbells;
		n->cq_mmio += q->cq_doorbells;
		n->skipped += q->db_skipped;
		n->late += q->late_commits;
		n->nudges += q->db_nudges;
		spin_unlock_irqrestore(&q->lock, fl);
	}
}

/* No doorbell was left for the watchdog since `before`. */
static bool ntdb_no_rescue(struct nvme_ctrl *c, const struct ntdb_counts *before, const char *test)
{
	struct ntdb_counts now;
	ntdb_counts(c, &now);
	if (now.late == before->late && now.nudges == before->nudges)
		return true;
	kprintf("nvme test: %s: the watchdog wrote doorbells that were due: %llu late commits, %llu nudges\n", test,
		(unsigned long long)(now.late - before->late), (unsigned long long)(now.nudges - before->nudges));
	return false;
}

/* SQ entries written but not published, over every queue. */
static unsigned ntdb_unpublished(struct nvme_ctrl *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->nqueues; i++) {
		uint64_t fl = spin_lock_irqsave(&c->io[i].lock);
		n += nvme_queue_unpublished(&c->io[i]);
		spin_unlock_irqrestore(&c->io[i].lock, fl);
	}
	return n;
}

static bool ntdb_check(struct blk_dev *b, const uint8_t *buf, uint64_t lba, size_t bytes, uint64_t seed,
		       const char *what)
{
	uint64_t got, want;
	long bad = pattern_check(buf, lba * b->lba_size, bytes, seed, &got, &want);
	if (bad >= 0)
		kprintf("nvme test: %s: %s: mismatch at byte %ld: got %llx want %llx\n", b->name, what, bad,
			(unsigned long long)got, (unsigned long long)want);
	return bad < 0;
}

static uint64_t ntdb_lba(const struct blk_dev *b, uint64_t byte_off)
{
	return nvme_test_base(b) + byte_off / b->lba_size;
}

/* Batched submission: requests submitted with BLK_F_MORE are written to
 * the SQ without a doorbell; blk_commit() publishes the whole batch with one
 * SQ tail write.  16 writes, then 16 reads of the same 4 KiB blocks, each
 * batch counted in doorbell writes and the data checked.  [4 MiB, +64 KiB). */
SELFTEST(nvme, batch_one_doorbell)
{
	static struct ntdb_batch tb;
	struct nvme_ctrl *c;
	if (!nvme_test_namespaces())
		return;
	struct blk_dev *b = nvme_test_first(&c);
	uint64_t p = pmm_alloc_pages(4);              /* 64 KiB */
	ST_EXPECT(p != 0);
	if (!p)
		return;
	uint8_t *buf = PHYS_TO_VIRT(p);
	uint64_t lba = ntdb_lba(b, 4ull << 20);
	struct ntdb_counts before, now;
	ntdb_counts(c, &before);

	pattern_fill(buf, lba * b->lba_size, 65536, 0x5b);
	for (unsigned pass = 0; pass < 2; pass++) {
		enum blk_op op = pass == 0 ? BLK_OP_WRITE : BLK_OP_READ;
		if (pass == 1)
			memset(buf, 0xa5, 65536);
		struct ntdb_counts c0;
		ntdb_counts(c, &c0);
		ST_EXPECT(ntdb_submit(b, &tb, 16, op, lba, buf, BLK_F_MORE) == 16);
		blk_commit(b);
		ST_EXPECT(ntdb_wait(b, &tb));
		/* One doorbell for the batch (another I/O may add one;
		 * per-request doorbells would be 16).  With shadow doorbells
		 * the one write may go to the shadow buffer instead. */
		ntdb_counts(c, &now);
		uint64_t d = (now.sq_mmio - c0.sq_mmio) + (now.skipped - c0.skipped);
		if (d < 1 || d > 2)
			kprintf("nvme test: %s: %llu SQ doorbell writes for a batch of 16 %ss\n", b->name,
				(unsigned long long)d, blk_op_name(op));
		ST_EXPECT(d >= 1 && d <= 2);
	}
	ST_EXPECT(ntdb_check(b, buf, lba, 65536, 0x5b, "batched read"));
	ST_EXPECT(ntdb_no_rescue(c, &before, "batch_one_doorbell"));
	pmm_free_pages(p, 4);
}

/* A BLK_F_MORE request larger than the device's max transfer is split by
 * the block layer; its pieces must be started as they are issued (blk.h),
 * so right after blk_submit() returns nothing sits in an SQ unpublished,
 * before any blk_commit().  1 MiB write and read back at [5, 6) MiB. */
SELFTEST(nvme, batch_split_started)
{
	static struct ntdb_batch tb;
	struct nvme_ctrl *c;
	if (!nvme_test_namespaces())
		return;
	struct blk_dev *b = nvme_test_first(&c);
	if (b->max_transfer >= NVME_TEST_BYTES)
		ST_SKIP("max transfer is 1 MiB or more: a 1 MiB request is not split");
	uint64_t p = pmm_alloc_pages(8);              /* 1 MiB */
	ST_EXPECT(p != 0);
	if (!p)
		return;
	uint8_t *buf = PHYS_TO_VIRT(p);
	uint64_t lba = ntdb_lba(b, 5ull << 20);
	uint32_t nblk = NVME_TEST_BYTES / b->lba_size;
	struct ntdb_counts before;
	ntdb_counts(c, &before);
	ntdb_init(&tb);

	pattern_fill(buf, lba * b->lba_size, NVME_TEST_BYTES, 0x5c);
	for (unsigned pass = 0; pass < 2; pass++) {
		enum blk_op op = pass == 0 ? BLK_OP_WRITE : BLK_OP_READ;
		if (pass == 1)
			memset(buf, 0xa5, NVME_TEST_BYTES);
		uint64_t splits = b->stats.splits;
		tb.done = tb.failed = 0;
		tb.want = 1;
		tb.segs[0] = (struct blk_seg){ buf, NVME_TEST_BYTES };
		blk_req_init(&tb.reqs[0], op, lba, nblk, &tb.segs[0], 1, ntdb_done, &tb);
		tb.reqs[0].flags = BLK_F_MORE;
		ST_EXPECT(blk_submit(b, &tb.reqs[0]) == 0);
		unsigned unpub = ntdb_unpublished(c);
		if (unpub)
			kprintf("nvme test: %s: %u pieces of a split %s left without a doorbell\n", b->name, unpub,
				blk_op_name(op));
		ST_EXPECT(unpub == 0);
		ST_EXPECT(b->stats.splits == splits + 1);
		blk_commit(b);
		ST_EXPECT(ntdb_wait(b, &tb));
	}
	ST_EXPECT(ntdb_check(b, buf, lba, NVME_TEST_BYTES, 0x5c, "split read"));
	ST_EXPECT(ntdb_no_rescue(c, &before, "batch_split_started"));
	pmm_free_pages(p, 8);
}

/* More BLK_F_MORE requests than the hardware queue holds, from one CPU:
 * the first depth-1 fill the SQ unpublished, the rest are parked in the
 * software queue (-EBUSY) and issued from the completion path after
 * blk_commit(); those must be started when issued, or nothing would ring
 * for them.  Pinned to CPU 0 so that every request goes to one queue.
 * depth-1+40 x 4 KiB from 4 MiB + 128 KiB. */
struct ntdb_parked {
	struct blk_dev *b;
	struct nvme_ctrl *c;
	volatile int failures;
};

static void ntdb_parked_fn(void *arg)
{
	static struct ntdb_batch tb;
	struct ntdb_parked *t = arg;
	struct blk_dev *b = t->b;
	unsigned n = t->c->io[0].depth - 1u + 40;
	uint64_t p = pmm_alloc_pages(9);              /* 2 MiB */
	if (!p || n > NTDB_MAX) {
		t->failures++;
		return;
	}
	uint8_t *buf = PHYS_TO_VIRT(p);
	uint64_t lba = ntdb_lba(b, (4ull << 20) + (128u << 10));

	pattern_fill(buf, lba * b->lba_size, (size_t)n * 4096, 0x5d);
	for (unsigned pass = 0; pass < 2; pass++) {
		enum blk_op op = pass == 0 ? BLK_OP_WRITE : BLK_OP_READ;
		if (pass == 1)
			memset(buf, 0xa5, (size_t)n * 4096);
		uint64_t requeues = b->stats.requeues;
		if (ntdb_submit(b, &tb, n, op, lba, buf, BLK_F_MORE) != n)
			t->failures++;
		if (b->stats.requeues == requeues) {
			kprintf("nvme test: %s: %u %ss from one CPU, none parked\n", b->name, n, blk_op_name(op));
			t->failures++;
		}
		blk_commit(b);
		if (!ntdb_wait(b, &tb))
			t->failures++;
	}
	if (!ntdb_check(b, buf, lba, (size_t)n * 4096, 0x5d, "parked read"))
		t->failures++;
	pmm_free_pages(p, 9);
}

SELFTEST(nvme, batch_parked_started)
{
	struct nvme_ctrl *c;
	if (!nvme_test_namespaces())
		return;
	struct blk_dev *b = nvme_test_first(&c);
	struct ntdb_parked t = { b, c, 0 };
	struct ntdb_counts before;
	ntdb_counts(c, &before);
	struct thread *th = thread_create("nvme-st", ntdb_parked_fn, &t, 0);
	ST_EXPECT(th != NULL);
	if (th)
		ST_EXPECT(thread_join(th, 60 * NS_PER_S) == 0);
	ST_EXPECT(t.failures == 0);
	ST_EXPECT(ntdb_no_rescue(c, &before, "batch_parked_started"));
}

/* Batches of BLK_F_MORE requests while the controller resets: requests
 * submitted into a held queue, and batches that were in the SQ when the
 * reset began, are rebuilt and published by the reset itself.  A worker
 * writes and reads back 16 x 4 KiB batches at 4 MiB + 64 KiB while the
 * controller is reset three times, each time with a batch of the test's
 * own in the SQ unpublished. */
struct ntdb_resetter {
	struct blk_dev *b;
	unsigned rounds;
	volatile int failures;
};

static void ntdb_reset_worker(void *arg)
{
	static struct ntdb_batch tb;
	struct ntdb_resetter *w = arg;
	struct blk_dev *b = w->b;
	uint64_t p = pmm_alloc_pages(4);
	if (!p) {
		w->failures++;
		return;
	}
	uint8_t *buf = PHYS_TO_VIRT(p);
	uint64_t lba = ntdb_lba(b, (4ull << 20) + (64u << 10));
	for (unsigned r = 0; r < w->rounds; r++) {
		pattern_fill(buf, lba * b->lba_size, 65536, 0x600 + r);
		bool ok = ntdb_submit(b, &tb, 16, BLK_OP_WRITE, lba, buf, BLK_F_MORE) == 16;
		blk_commit(b);
		ok &= ntdb_wait(b, &tb);
		memset(buf, 0xa5, 65536);
		ok &= ntdb_submit(b, &tb, 16, BLK_OP_READ, lba, buf, BLK_F_MORE) == 16;
		blk_commit(b);
		ok &= ntdb_wait(b, &tb);
		if (!ok || !ntdb_check(b, buf, lba, 65536, 0x600 + r, "batch across a reset"))
			w->failures++;
	}
	pmm_free_pages(p, 4);
}

SELFTEST(nvme, batch_across_resets)
{
	struct nvme_ctrl *c;
	if (!nvme_test_namespaces())
		return;
	struct blk_dev *b = nvme_test_first(&c);
	struct ntdb_resetter w = { b, 40, 0 };
	struct ntdb_counts before;
	uint64_t resets = c->resets;
	bool shadow = c->dbbuf_on;
	ntdb_counts(c, &before);
	struct thread *th = thread_create("nvme-st", ntdb_reset_worker, &w, 0);
	ST_EXPECT(th != NULL);
	/* Our own batch is in the SQ, unpublished, when each reset begins,
	 * and deliberately never committed: the reset rebuilds and publishes
	 * it, or the watchdog would have to (counted).  [5.5 MiB, +64 KiB). */
	static struct ntdb_batch tb;
	uint64_t p = pmm_alloc_pages(4);
	uint64_t lba = ntdb_lba(b, (5ull << 20) + (512u << 10));
	ST_EXPECT(p != 0);
	for (unsigned k = 0; p && k < 3; k++) {
		uint8_t *buf = PHYS_TO_VIRT(p);
		thread_sleep_ns(15 * NS_PER_MS);
		pattern_fill(buf, lba * b->lba_size, 65536, 0x650 + k);
		ST_EXPECT(ntdb_submit(b, &tb, 16, BLK_OP_WRITE, lba, buf, BLK_F_MORE) == 16);
		ST_EXPECT(nvme_reset(c, "self-test: batches across a reset") == 0);
		ST_EXPECT(ntdb_wait(b, &tb));
		memset(buf, 0xa5, 65536);
		char err[96];
		ST_EXPECT(blk_read(b, lba, 65536 / b->lba_size, buf, err, sizeof(err)) == 0);
		ST_EXPECT(ntdb_check(b, buf, lba, 65536, 0x650 + k, "batch written across a reset"));
	}
	if (p)
		pmm_free_pages(p, 4);
	if (th)
		ST_EXPECT(thread_join(th, 60 * NS_PER_S) == 0);
	ST_EXPECT(w.failures == 0);
	ST_EXPECT(c->resets == resets + 3);
	ST_EXPECT(c->dbbuf_on == shadow);          /* set up again after each reset */
	ST_EXPECT(ntdb_no_rescue(c, &before, "batch_across_resets"));
}

/* Shadow doorbells: 128 writes then 128 reads of 4 KiB, each submitted on
 * its own (one doorbell each without shadow doorbells), data compared.
 * With them on, the controller is still reading the shadow tail while
 * the next commands arrive, so fewer MMIO writes than commands; with
 * `nvme shadow CTRL off` (dbbuf_mmio) exactly one per command.  Neither
 * may leave a doorbell to the watchdog.  [5 MiB, +512 KiB). */
SELFTEST(nvme, shadow_doorbells)
{
	static struct ntdb_batch tb;
	struct nvme_ctrl *c;
	if (!nvme_test_namespaces())
		return;
	struct blk_dev *b = nvme_test_first(&c);
	if (!c->dbbuf_on)
		ST_SKIP("shadow doorbells are not in use (boot argument nvme_shadow_db; controller with OACS bit 8)");
	uint64_t p = pmm_alloc_pages(7);              /* 512 KiB */
	ST_EXPECT(p != 0);
	if (!p)
		return;
	uint8_t *buf = PHYS_TO_VIRT(p);
	uint64_t lba = ntdb_lba(b, 5ull << 20);
	bool was = c->dbbuf_mmio;
	struct ntdb_counts before;
	ntdb_counts(c, &before);

	for (unsigned mode = 0; mode < 2; mode++) {
		bool mmio = mode == 1;
		__atomic_store_n(&c->dbbuf_mmio, mmio, __ATOMIC_SEQ_CST);
		struct ntdb_counts c0, c1;
		ntdb_counts(c, &c0);
		pattern_fill(buf, lba * b->lba_size, 128 * 4096, 0x700 + mode);
		ST_EXPECT(ntdb_submit(b, &tb, 128, BLK_OP_WRITE, lba, buf, 0) == 128);
		ST_EXPECT(ntdb_wait(b, &tb));
		memset(buf, 0xa5, 128 * 4096);
		ST_EXPECT(ntdb_submit(b, &tb, 128, BLK_OP_READ, lba, buf, 0) == 128);
		ST_EXPECT(ntdb_wait(b, &tb));
		ST_EXPECT(ntdb_check(b, buf, lba, 128 * 4096, 0x700 + mode, "shadow doorbell read"));
		ntdb_counts(c, &c1);
		uint64_t cmds = c1.submits - c0.submits, sq = c1.sq_mmio - c0.sq_mmio;
		kprintf("selftest: nvme: %s: shadow doorbells %s: %llu commands, %llu SQ MMIO doorbells; "
			"%llu completions, %llu CQ MMIO doorbells\n", b->name, mmio ? "off (MMIO always)" : "on",
			(unsigned long long)cmds, (unsigned long long)sq,
			(unsigned long long)(c1.completions - c0.completions),
			(unsigned long long)(c1.cq_mmio - c0.cq_mmio));
		if (mmio) {
			ST_EXPECT(sq == cmds);
			ST_EXPECT(c1.skipped == c0.skipped);
		} else {
			ST_EXPECT(sq < cmds);
			ST_EXPECT(c1.skipped > c0.skipped);
		}
	}
	__atomic_store_n(&c->dbbuf_mmio, was, __ATOMIC_SEQ_CST);
	ST_EXPECT(ntdb_no_rescue(c, &before, "shadow_doorbells"));
	pmm_free_pages(p, 7);
}
