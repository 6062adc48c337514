/*
 * Block layer self-tests on RAM disks (memdisk.c), whose command log shows
 * exactly what the block layer handed to the "driver".  The test disks are
 * created once and kept (devices are never unregistered), named tmem*.
 */
#include "drivers/blk/blk.h"
#include "drivers/blk/memdisk.h"
#include "drivers/blk/pattern.h"
#include "kernel/selftest.h"
#include "kernel/shell.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/cpu.h"

enum { TD_SPLIT, TD_SEGS, TD_MERGE, TD_NOCACHE, TD_FUA, TD_BIG, TD_DEAD, TD_N };
static struct blk_dev *td[TD_N];

static const struct memdisk_opts td_opts[TD_N] = {
	/* 512 B blocks, 8 KiB per command, 4 segments, 4 KiB boundary, no native
	 * write zeroes, write cache without FUA (FUA emulated). */
	[TD_SPLIT] = { .size = 1 << 20, .lba_size = 512, .max_transfer = 8192, .max_segments = 4,
		       .virt_boundary = 4096, .max_discard_blocks = 16, .write_cache = true },
	[TD_SEGS] = { .size = 1 << 20, .lba_size = 512, .max_transfer = 65536, .max_segments = 2,
		      .max_write_zeroes_blocks = 8, .write_cache = true, .fua = true },
	/* queue depth 1: everything beyond one command waits in the software queue */
	[TD_MERGE] = { .size = 1 << 20, .lba_size = 512, .max_transfer = 65536, .max_segments = 32,
		       .queue_depth = 1, .write_cache = true, .fua = true },
	[TD_NOCACHE] = { .size = 1 << 20, .lba_size = 4096, .max_transfer = 65536, .max_segments = 8 },
	[TD_FUA] = { .size = 1 << 20, .lba_size = 4096, .max_transfer = 65536, .max_segments = 8,
		     .write_cache = true, .fua = true },
	[TD_BIG] = { .size = 8 << 20, .lba_size = 4096, .max_transfer = 131072, .max_segments = 32,
		     .nqueues = 2, .queue_depth = 16, .write_cache = true },
	[TD_DEAD] = { .size = 64 << 10, .lba_size = 512 },
};

static bool td_setup(void)
{
	for (unsigned i = 0; i < TD_N; i++) {
		if (td[i])
			continue;
		char name[16];
		ksnprintf(name, sizeof(name), "tmem%u", i);
		td[i] = blk_find(name);
		if (!td[i])
			td[i] = memdisk_create(name, &td_opts[i]);
		if (!td[i])
			return false;
	}
	return true;
}

static uint8_t *td_buf(unsigned order)
{
	uint64_t p = pmm_alloc_pages(order);
	return p ? PHYS_TO_VIRT(p) : NULL;
}

static void td_buf_free(void *b, unsigned order)
{
	if (b)
		pmm_free_pages(VIRT_TO_PHYS(b), order);
}

/* Async completion counting. */
struct td_wait {
	volatile unsigned done;
	volatile int first_status;
};

static void td_done(struct blk_req *r)
{
	struct td_wait *w = r->priv;
	if (r->status && !w->first_status)
		w->first_status = r->status;
	__atomic_fetch_add(&w->done, 1, __ATOMIC_SEQ_CST);
}

static bool td_wait_for(struct blk_dev *d, struct td_wait *w, unsigned n)
{
	uint64_t deadline = time_ns() + 5 * NS_PER_S;
	while (__atomic_load_n(&w->done, __ATOMIC_SEQ_CST) < n) {
		if (time_ns() > deadline) {
			kprintf("blk_test: timed out waiting for %u of %u completions on %s\n", n - w->done, n, d->name);
			return false;
		}
		if (d->polling)
			blk_poll(d);
		else
			thread_yield();
	}
	return true;
}

static void td_end(struct memdisk_counters *c, uint8_t *buf, unsigned order)
{
	kfree(c);
	td_buf_free(buf, order);
}

/* The start of every test: the disks exist, and a zeroed counters block and a
 * buffer of 2^order pages are allocated for the callers that ask (c or buf
 * NULL: not wanted).  False: the test cannot run, nothing is left allocated. */
static bool td_begin(bool *st_failed, struct memdisk_counters **c, uint8_t **buf, unsigned order)
{
	ST_EXPECT(td_setup());
	if (!td[0])
		return false;
	if (c)
		*c = kzalloc(sizeof(**c));
	if (buf)
		*buf = td_buf(order);
	if ((c && !*c) || (buf && !*buf)) {
		ST_EXPECT(false);
		td_end(c ? *c : NULL, buf ? *buf : NULL, order);
		return false;
	}
	return true;
}

/* Submits r as one request (counters reset first), waits for it and leaves in
 * c the commands it became. */
static void td_submit_wait(bool *st_failed, struct blk_dev *d, struct memdisk_counters *c, struct blk_req *r,
			   struct td_wait *w)
{
	memdisk_counters(d, NULL, true);
	w->done = 0;
	ST_EXPECT(blk_submit(d, r) == 0);
	ST_EXPECT(td_wait_for(d, w, 1));
	memdisk_counters(d, c, true);
}

SELFTEST(blk, pattern_and_crc)
{
	ST_EXPECT(pattern_crc32(0, "123456789", 9) == 0xcbf43926u);
	ST_EXPECT(pattern_crc32(pattern_crc32(0, "1234", 4), "56789", 5) == 0xcbf43926u);
	ST_EXPECT(pattern_splitmix64(0) == 0xe220a8397b1dcdafull);
	uint64_t w[8];
	pattern_fill(w, 64, sizeof(w), 3);
	ST_EXPECT(w[0] == pattern_splitmix64((3ull << 40) ^ 8));
	ST_EXPECT(pattern_check(w, 64, sizeof(w), 3, NULL, NULL) == -1);
	w[5] ^= 1;
	ST_EXPECT(pattern_check(w, 64, sizeof(w), 3, NULL, NULL) == 40);
}

SELFTEST(blk, validation)
{
	uint8_t *buf;
	if (!td_begin(st_failed, NULL, &buf, 1))
		return;
	struct blk_dev *d = td[TD_SPLIT];
	char err[96];
	ST_EXPECT(blk_read(d, d->nblocks - 1, 2, buf, err, sizeof(err)) == -ERANGE);
	ST_EXPECT(strncmp(err, "past end of device", 18) == 0);
	ST_EXPECT(blk_read(d, d->nblocks, 1, buf, err, sizeof(err)) == -ERANGE);
	ST_EXPECT(blk_read(d, 0, 1, buf + 2, err, sizeof(err)) == -EINVAL);
	ST_EXPECT(strncmp(err, "misaligned buffer", 17) == 0);
	ST_EXPECT(blk_read(d, 0, 0, buf, err, sizeof(err)) == -EINVAL);
	ST_EXPECT(blk_discard(td[TD_NOCACHE], 0, 1, err, sizeof(err)) == -ENOTSUP);
	/* segment length not a multiple of the block size */
	struct td_wait w = { 0, 0 };
	struct blk_seg s = { buf, 700 };
	struct blk_req r;
	blk_req_init(&r, BLK_OP_READ, 0, 1, &s, 1, td_done, &w);
	ST_EXPECT(blk_submit(d, &r) == -EINVAL);
	ST_EXPECT(strncmp(r.error, "misaligned buffer", 17) == 0);
	ST_EXPECT(blk_read(d, 0, 16, buf, err, sizeof(err)) == 0);
	td_buf_free(buf, 1);
}

/* One contiguous buffer longer than max_transfer: pieces of max_transfer. */
SELFTEST(blk, split_max_transfer)
{
	struct memdisk_counters *c;
	uint8_t *buf;
	if (!td_begin(st_failed, &c, &buf, 4))
		return;
	struct blk_dev *d = td[TD_SPLIT];
	char err[96];
	pattern_fill(buf, 100 * 512, 65536, 11);
	memdisk_counters(d, NULL, true);
	uint64_t splits = d->stats.splits;
	ST_EXPECT(blk_write(d, 100, 128, buf, 0, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 8);
	ST_EXPECT(c->limit_violations == 0);
	for (unsigned i = 0; i < 8 && i < c->nlog; i++)
		ST_EXPECT(c->log[i].nblocks == 16 && c->log[i].lba == 100 + 16 * i);
	ST_EXPECT(d->stats.splits == splits + 1);
	memset(buf, 0, 65536);
	ST_EXPECT(blk_read(d, 100, 128, buf, err, sizeof(err)) == 0);
	ST_EXPECT(pattern_check(buf, 100 * 512, 65536, 11, NULL, NULL) == -1);
	td_end(c, buf, 4);
}

/* Segments that meet off the virt boundary go to separate commands; segment
 * count limits pieces too. */
SELFTEST(blk, split_boundary_and_segments)
{
	struct memdisk_counters *c;
	uint8_t *buf;
	if (!td_begin(st_failed, &c, &buf, 4))
		return;
	struct td_wait w = { 0, 0 };
	struct blk_seg segs[6];
	struct blk_req r;
	/* 4 segments of 1 KiB at odd offsets inside pages: boundary 4096
	 * forbids every join -> 4 commands. */
	struct blk_dev *d = td[TD_SPLIT];
	for (unsigned i = 0; i < 4; i++) {
		segs[i].buf = buf + i * 4096 + 1024;
		segs[i].len = 1024;
		pattern_fill(segs[i].buf, (uint64_t)(8 + 2 * i) * 512, 1024, 5);
	}
	blk_req_init(&r, BLK_OP_WRITE, 8, 8, segs, 4, td_done, &w);
	td_submit_wait(st_failed, d, c, &r, &w);
	ST_EXPECT(r.status == 0);
	ST_EXPECT(c->cmds == 4 && c->limit_violations == 0);
	/* page-aligned, page-sized segments may join: 2 pages per 8 KiB piece */
	for (unsigned i = 0; i < 4; i++) {
		segs[i].buf = buf + i * 4096;
		segs[i].len = 4096;
	}
	blk_req_init(&r, BLK_OP_READ, 0, 32, segs, 4, td_done, &w);
	td_submit_wait(st_failed, d, c, &r, &w);
	ST_EXPECT(c->cmds == 2 && c->log[0].nsegs == 2 && c->limit_violations == 0);
	ST_EXPECT(pattern_check(buf + 8 * 512, 8 * 512, 1024, 5, NULL, NULL) == -1);
	/* max_segments 2: six 512-byte segments -> 3 commands of 2 */
	d = td[TD_SEGS];
	for (unsigned i = 0; i < 6; i++) {
		segs[i].buf = buf + i * 2048;
		segs[i].len = 512;
	}
	blk_req_init(&r, BLK_OP_WRITE, 40, 6, segs, 6, td_done, &w);
	td_submit_wait(st_failed, d, c, &r, &w);
	ST_EXPECT(c->cmds == 3 && c->log[0].nsegs == 2 && c->log[2].lba == 44 && c->limit_violations == 0);
	/* discard and native write-zeroes split by their own limits */
	char err[96];
	memdisk_counters(td[TD_SPLIT], NULL, true);
	ST_EXPECT(blk_discard(td[TD_SPLIT], 0, 40, err, sizeof(err)) == 0);
	memdisk_counters(td[TD_SPLIT], c, true);
	ST_EXPECT(c->cmds == 3 && c->log[2].nblocks == 8 && c->log[0].op == BLK_OP_DISCARD);
	ST_EXPECT(blk_write_zeroes(d, 0, 20, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 3 && c->log[0].op == BLK_OP_WRITE_ZEROES && c->limit_violations == 0);
	td_end(c, buf, 4);
}

/* Queue depth 1 in polling mode: requests wait in the software queue,
 * adjacent ones merge into one command, and all complete once polled. */
SELFTEST(blk, merge_and_requeue)
{
	struct memdisk_counters *c;
	uint8_t *buf;
	if (!td_begin(st_failed, &c, &buf, 2))
		return;
	struct blk_dev *d = td[TD_MERGE];
	struct td_wait w = { 0, 0 };
	struct blk_seg segs[6];
	struct blk_req r[6];
	ST_EXPECT(blk_set_polling(d, true) == 0);
	blk_stats_reset(d);
	memdisk_counters(d, NULL, true);
	pattern_fill(buf, 0, 6 * 1024, 9);
	for (unsigned i = 0; i < 6; i++) {   /* lba 0,2,4,... 2 blocks each */
		segs[i].buf = buf + i * 1024;
		segs[i].len = 1024;
		blk_req_init(&r[i], BLK_OP_WRITE, 2 * i, 2, &segs[i], 1, td_done, &w);
		ST_EXPECT(blk_submit(d, &r[i]) == 0);
	}
	ST_EXPECT(d->stats.requeues >= 1);
	ST_EXPECT(d->stats.merges == 4);        /* r1..r5 became one command */
	ST_EXPECT(td_wait_for(d, &w, 6));
	ST_EXPECT(w.first_status == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 2 && c->busy >= 1);
	ST_EXPECT(c->nlog >= 2 && c->log[1].lba == 2 && c->log[1].nblocks == 10 && c->log[1].nsegs == 5);
	ST_EXPECT(d->stats.ops[BLK_OP_WRITE] == 6);
	memset(buf, 0, 8192);
	char err[96];
	ST_EXPECT(blk_read(d, 0, 12, buf, err, sizeof(err)) == 0);
	ST_EXPECT(pattern_check(buf, 0, 6 * 1024, 9, NULL, NULL) == -1);
	ST_EXPECT(blk_set_polling(d, false) == 0);
	td_end(c, buf, 2);
}

SELFTEST(blk, fua_and_flush)
{
	struct memdisk_counters *c;
	uint8_t *buf;
	if (!td_begin(st_failed, &c, &buf, 4))
		return;
	char err[96];
	/* write cache, no FUA: write pieces then a flush */
	struct blk_dev *d = td[TD_SPLIT];
	memdisk_counters(d, NULL, true);
	ST_EXPECT(blk_write(d, 0, 32, buf, BLK_F_FUA, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 3 && c->fua_writes == 0 && c->flushes == 1);
	ST_EXPECT(c->log[2].op == BLK_OP_FLUSH && c->log[0].op == BLK_OP_WRITE);
	/* native FUA: passed through, no flush */
	d = td[TD_FUA];
	memdisk_counters(d, NULL, true);
	ST_EXPECT(blk_write(d, 0, 2, buf, BLK_F_FUA, err, sizeof(err)) == 0);
	ST_EXPECT(blk_flush(d, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 2 && c->fua_writes == 1 && c->flushes == 1);
	/* no write cache: flush completes at once, FUA is dropped */
	d = td[TD_NOCACHE];
	memdisk_counters(d, NULL, true);
	ST_EXPECT(blk_flush(d, err, sizeof(err)) == 0);
	ST_EXPECT(blk_write(d, 0, 1, buf, BLK_F_FUA, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 1 && c->flushes == 0 && c->fua_writes == 0);
	/* a failed write is not followed by the emulated flush */
	d = td[TD_SPLIT];
	memdisk_inject(d, BLK_OP_WRITE, 0, 1, 1, -EIO, "injected write error");
	memdisk_counters(d, NULL, true);
	ST_EXPECT(blk_write(d, 0, 4, buf, BLK_F_FUA, err, sizeof(err)) == -EIO);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->flushes == 0);
	td_end(c, buf, 4);
}

SELFTEST(blk, write_zeroes_emulated)
{
	struct memdisk_counters *c;
	uint8_t *buf;
	if (!td_begin(st_failed, &c, &buf, 4))
		return;
	struct blk_dev *d = td[TD_SPLIT];       /* no native write zeroes */
	char err[96];
	pattern_fill(buf, 200 * 512, 65536, 4);
	ST_EXPECT(blk_write(d, 200, 128, buf, 0, err, sizeof(err)) == 0);
	memdisk_counters(d, NULL, true);
	ST_EXPECT(blk_write_zeroes(d, 210, 40, err, sizeof(err)) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->cmds == 3 && c->log[0].op == BLK_OP_WRITE && c->limit_violations == 0);
	ST_EXPECT(blk_read(d, 200, 128, buf, err, sizeof(err)) == 0);
	bool zero_ok = true;
	for (unsigned i = 10 * 512; i < 50 * 512; i++)
		zero_ok &= buf[i] == 0;
	ST_EXPECT(zero_ok);
	ST_EXPECT(pattern_check(buf, 200 * 512, 10 * 512, 4, NULL, NULL) == -1);
	ST_EXPECT(pattern_check(buf + 50 * 512, 250 * 512, 78 * 512, 4, NULL, NULL) == -1);
	td_end(c, buf, 4);
}

/* Pieces 3..6 of 8 fail: the caller sees the first failing piece's reason. */
SELFTEST(blk, first_error_kept)
{
	uint8_t *buf;
	if (!td_begin(st_failed, NULL, &buf, 4))
		return;
	struct blk_dev *d = td[TD_SPLIT];
	char err[96];
	uint64_t errors = d->stats.errors;
	memdisk_inject(d, BLK_OP_READ, 32 + 16 * 2, 64, 4, -EIO, "Unrecovered Read Error");
	ST_EXPECT(blk_read(d, 32, 128, buf, err, sizeof(err)) == -EIO);
	ST_EXPECT(strcmp(err, "Unrecovered Read Error (lba 64)") == 0);
	ST_EXPECT(d->stats.errors == errors + 1);
	memdisk_inject(d, BLK_OP_READ, 0, 0, 0, 0, NULL);
	ST_EXPECT(blk_read(d, 32, 128, buf, err, sizeof(err)) == 0);   /* recovers */
	td_buf_free(buf, 4);
}

SELFTEST(blk, stats)
{
	uint8_t *buf;
	if (!td_begin(st_failed, NULL, &buf, 1))
		return;
	struct blk_dev *d = td[TD_FUA];
	char err[96];
	blk_stats_reset(d);
	ST_EXPECT(blk_write(d, 0, 2, buf, 0, err, sizeof(err)) == 0);
	ST_EXPECT(blk_read(d, 0, 1, buf, err, sizeof(err)) == 0);
	ST_EXPECT(blk_read(d, 1, 1, buf, err, sizeof(err)) == 0);
	ST_EXPECT(blk_flush(d, err, sizeof(err)) == 0);
	ST_EXPECT(blk_read(d, d->nblocks, 1, buf, err, sizeof(err)) == -ERANGE);   /* not counted */
	ST_EXPECT(d->stats.ops[BLK_OP_READ] == 2 && d->stats.ops[BLK_OP_WRITE] == 1);
	ST_EXPECT(d->stats.ops[BLK_OP_FLUSH] == 1);
	ST_EXPECT(d->stats.bytes_read == 8192 && d->stats.bytes_written == 8192);
	uint64_t n = 0;
	for (unsigned b = 0; b < BLK_LAT_BUCKETS; b++)
		n += d->stats.lat_us_log2[b];
	ST_EXPECT(n == 4);
	td_buf_free(buf, 1);
}

struct td_reader {
	struct blk_dev *d;
	uint8_t *buf;
	volatile int rc, done;
	uint64_t lba;
};

static void td_reader_thread(void *arg)
{
	struct td_reader *r = arg;
	r->rc = blk_read(r->d, r->lba, 1, r->buf, NULL, 0);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
}

SELFTEST(blk, polling_mode_and_timeout)
{
	uint8_t *buf;
	if (!td_begin(st_failed, NULL, &buf, 4))
		return;
	struct blk_dev *d = td[TD_BIG];
	char err[96];
	ST_EXPECT(blk_set_polling(d, true) == 0);
	pattern_fill(buf, 4096 * 7, 65536, 21);
	ST_EXPECT(blk_write(d, 7, 16, buf, 0, err, sizeof(err)) == 0);
	memset(buf, 0, 65536);
	ST_EXPECT(blk_read(d, 7, 16, buf, err, sizeof(err)) == 0);
	ST_EXPECT(pattern_check(buf, 4096 * 7, 65536, 21, NULL, NULL) == -1);
	ST_EXPECT(blk_set_polling(d, false) == 0);
	/* A device that stops answering: the helper must not give up while
	 * the device owns the buffer; it says so every blk_sync_timeout_ms
	 * and returns once the device answers. */
	uint32_t saved = blk_sync_timeout_ms;
	blk_sync_timeout_ms = 100;
	memdisk_hold(d, true);
	uint64_t reports = blk_wait_reports;
	struct td_reader r = { d, buf, -1, 0, 0 };
	struct thread *t = thread_create("td-reader", td_reader_thread, &r, THREAD_ANY_CPU);
	ST_EXPECT(t != NULL);
	thread_sleep_ns(450 * NS_PER_MS);
	ST_EXPECT(!r.done);
	ST_EXPECT(blk_wait_reports >= reports + 2);
	memdisk_hold(d, false);
	if (t)
		ST_EXPECT(thread_join(t, 10 * NS_PER_S) == 0);
	ST_EXPECT(r.done && r.rc == 0);
	blk_sync_timeout_ms = saved;
	ST_EXPECT(blk_read(d, 0, 1, buf, err, sizeof(err)) == 0);
	td_buf_free(buf, 4);
}

/* Hybrid polling: a polled wait that outlasts the spin budget sleeps on
 * the interrupt instead of spinning on (poll_sleeps counts it), and still
 * returns the data when the device answers. */
SELFTEST(blk, hybrid_poll_sleeps)
{
	uint8_t *buf;
	if (!td_begin(st_failed, NULL, &buf, 4))
		return;
	struct blk_dev *d = td[TD_BIG];
	ST_EXPECT(blk_set_polling(d, true) == 0);
	pattern_fill(buf, 4096 * 3, 4096, 23);
	ST_EXPECT(blk_write(d, 3, 1, buf, 0, NULL, 0) == 0);
	memset(buf, 0, 4096);
	uint64_t sleeps = d->stats.poll_sleeps;
	memdisk_hold(d, true);
	struct td_reader r = { d, buf, -1, 0, 3 };
	struct thread *t = thread_create("td-hybrid", td_reader_thread, &r, THREAD_ANY_CPU);
	ST_EXPECT(t != NULL);
	thread_sleep_ns(100 * NS_PER_MS);
	ST_EXPECT(!r.done);
	ST_EXPECT(d->stats.poll_sleeps > sleeps);
	memdisk_hold(d, false);
	if (t)
		ST_EXPECT(thread_join(t, 10 * NS_PER_S) == 0);
	ST_EXPECT(r.done && r.rc == 0);
	ST_EXPECT(pattern_check(buf, 4096 * 3, 4096, 23, NULL, NULL) == -1);
	ST_EXPECT(blk_set_polling(d, false) == 0);
	td_buf_free(buf, 4);
}

/* The power-off flush: bounded by its deadline when a disk stops
 * answering (the flush is then leaked, not freed), complete otherwise. */
SELFTEST(blk, shutdown_flush_bounded)
{
	struct memdisk_counters *c;
	if (!td_begin(st_failed, &c, NULL, 0))
		return;
	struct blk_dev *d = td[TD_BIG], *nc = td[TD_NOCACHE];
	memdisk_hold(d, true);
	uint64_t t0 = time_ns();
	ST_EXPECT(blk_shutdown_flush(t0 + 300 * NS_PER_MS) == -ETIMEDOUT);
	ST_EXPECT(time_ns() - t0 < 2 * NS_PER_S);
	memdisk_hold(d, false);
	memdisk_counters(d, NULL, true);
	memdisk_counters(nc, NULL, true);
	ST_EXPECT(blk_shutdown_flush(time_ns() + 10 * NS_PER_S) == 0);
	memdisk_counters(d, c, true);
	ST_EXPECT(c->flushes == 1);
	memdisk_counters(nc, c, true);
	ST_EXPECT(c->cmds == 0);          /* no write cache: nothing to flush */
	td_end(c, NULL, 0);
}

SELFTEST(blk, dead_device)
{
	if (!td_begin(st_failed, NULL, NULL, 0))
		return;
	struct blk_dev *d = td[TD_DEAD];
	uint8_t buf[512] __attribute__((aligned(8)));
	char err[96];
	blk_set_dead(d, "controller fatal status (test)");
	ST_EXPECT(blk_read(d, 0, 1, buf, err, sizeof(err)) == -EIO);
	ST_EXPECT(strcmp(err, "controller fatal status (test)") == 0);
}

/* Several threads on different CPUs, sync and async, on disjoint ranges. */
struct td_conc {
	struct blk_dev *d;
	unsigned idx;
	unsigned errors;
};

static void td_conc_worker(void *arg)
{
	struct td_conc *t = arg;
	struct blk_dev *d = t->d;
	uint8_t *buf = td_buf(4);
	char err[96];
	if (!buf) {
		t->errors++;
		return;
	}
	uint64_t base = t->idx * 256;          /* 1 MiB per thread (4 KiB blocks) */
	for (unsigned round = 0; round < 8; round++) {
		uint64_t seed = 100 + t->idx * 16 + round;
		/* async: 16 writes of one block each, all in flight at once */
		struct td_wait w = { 0, 0 };
		struct blk_req r[16];
		struct blk_seg s[16];
		pattern_fill(buf, base * 4096, 65536, seed);
		for (unsigned i = 0; i < 16; i++) {
			s[i].buf = buf + i * 4096;
			s[i].len = 4096;
			blk_req_init(&r[i], BLK_OP_WRITE, base + i, 1, &s[i], 1, td_done, &w);
			if (blk_submit(d, &r[i]))
				t->errors++;
		}
		if (!td_wait_for(d, &w, 16) || w.first_status)
			t->errors++;
		memset(buf, 0, 65536);
		if (blk_read(d, base, 16, buf, err, sizeof(err)))
			t->errors++;
		if (pattern_check(buf, base * 4096, 65536, seed, NULL, NULL) != -1)
			t->errors++;
	}
	td_buf_free(buf, 4);
}

SELFTEST(blk, concurrent_submitters)
{
	if (!td_begin(st_failed, NULL, NULL, 0))
		return;
	struct td_conc t[4];
	struct thread *th[4];
	for (unsigned i = 0; i < 4; i++) {
		t[i] = (struct td_conc){ td[TD_BIG], i, 0 };
		th[i] = thread_create("st-blk", td_conc_worker, &t[i], (int)(i % ncpus_online));
		ST_EXPECT(th[i] != NULL);
	}
	for (unsigned i = 0; i < 4; i++) {
		if (th[i])
			ST_EXPECT(thread_join(th[i], 30 * NS_PER_S) == 0);
		ST_EXPECT(t[i].errors == 0);
	}
}

/* The benchmark engine end to end on a RAM disk: polling, two threads. */
SELFTEST(blk, bench_smoke)
{
	if (!td_begin(st_failed, NULL, NULL, 0))
		return;
	char line[] = "bench blk tmem5 mixed bs=8192 qd=8 secs=1 threads=1 poll";
	uint64_t before = td[TD_BIG]->stats.ops[BLK_OP_READ] + td[TD_BIG]->stats.ops[BLK_OP_WRITE];
	ST_EXPECT(shell_exec(line) == 0);
	ST_EXPECT(!td[TD_BIG]->polling);     /* mode restored */
	ST_EXPECT(td[TD_BIG]->stats.ops[BLK_OP_READ] + td[TD_BIG]->stats.ops[BLK_OP_WRITE] > before + 100);
	char bad[] = "bench blk tmem5 randread bs=1000 qd=8 secs=1";
	ST_EXPECT(shell_exec(bad) != 0);
}
