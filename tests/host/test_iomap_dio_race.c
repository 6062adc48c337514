/*
 * Direct I/O races with explicit pause points: DIO-T2 (O_DSYNC completion
 * paused between its I/O and its flush while truncate, punch and zero
 * range take the lock and drain; sync and async), DIO-T9 (fsync racing
 * direct writes, then a power cut: the metadata log never references data
 * that was not written), COW-28 / §8.7 "concurrent extending writers"
 * (several submitting threads, out-of-order completions, i_size monotonic).
 */
#define TEST_SUITE "iomap_dio_race"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "tests/host/test.h"
#include "tests/host/testfs.h"

static struct tfs *mkfs(bool volatile_cache)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = 4,
				  .bdev_threads = 2, .wq_threads = 2, .max_file_bytes = 16ull << 20 };
	struct tfs *fs = NULL;
	if (tfs_create(&cfg, 32ull << 20, 0, &fs))
		return NULL;
	if (volatile_cache)
		plat_host_bdev_set_volatile(fs->bdev, true);
	return fs;
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 29 + (i >> 12)) | 1);
}

static bool wait_flag(int *f, uint64_t ms)
{
	uint64_t dl = plat_time_ns() + ms * 1000000ull;
	while (!__atomic_load_n(f, __ATOMIC_ACQUIRE)) {
		if (plat_time_ns() > dl)
			return false;
		plat_sleep_ns(200000);
	}
	return true;
}

/* ---- DIO-T2 ---- */
static int t2_paused, t2_release, t2_hook_calls;

static void t2_before_flush(struct iomap_inode *inode)
{
	(void)inode;
	__atomic_add_fetch(&t2_hook_calls, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&t2_paused, 1, __ATOMIC_RELEASE);
	wait_flag(&t2_release, 10000);   /* bounded: a broken order fails, never hangs */
	__atomic_store_n(&t2_paused, 0, __ATOMIC_RELEASE);
}

static const struct iomap_hooks t2_hooks = { .dio_before_flush = t2_before_flush };

struct t2_arg {
	struct tfs_inode *ti;
	uint8_t *buf;
	int64_t ret;
	int done;
};

static void *t2_sync_writer(void *p)
{
	struct t2_arg *a = p;
	int st = 0;
	iomap_lock(&a->ti->ino.io_lock, IOMAP_LOCK_SHARED);
	struct iomap_dio *dio = iomap_dio_begin(&a->ti->ino, 0, a->buf, 65536, IOMAP_DIO_WRITE | IOMAP_DIO_DSYNC,
						&tfs_write_ops, &tfs_dio_ops, NULL, NULL, &st);
	iomap_unlock(&a->ti->ino.io_lock, IOMAP_LOCK_SHARED);
	a->ret = dio ? iomap_dio_complete(dio) : st;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void t2_async_done(void *p, int64_t ret)
{
	struct t2_arg *a = p;
	a->ret = ret;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
}

/* op 0 truncate, 1 punch, 2 zero range (fallocate ZERO_RANGE) */
static int t2_op(struct tfs_inode *ti, int op)
{
	switch (op) {
	case 0: return tfs_truncate(ti, 512 * 1024);
	case 1: return tfs_punch(ti, 600 * 1024 + 100, 20000);
	default: return tfs_zero_range(ti, 700 * 1024 + 5, 9000);
	}
}

static void t2_run(bool async, int op)
{
	struct tfs *fs = mkfs(false);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t buf[65536] __attribute__((aligned(4096))), back[65536];
	fill(buf, sizeof(buf), (unsigned)op + 7);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 512 * 1024, 512 * 1024, NULL), 0);   /* file is 1 MiB */
	__atomic_store_n(&t2_release, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t2_hook_calls, 0, __ATOMIC_RELEASE);
	ti->ino.hooks = &t2_hooks;
	struct t2_arg a = { ti, buf, 0, 0 };
	pthread_t th;
	if (async) {
		int st = 0;
		iomap_lock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
		struct iomap_dio *dio = iomap_dio_begin(&ti->ino, 0, buf, 65536, IOMAP_DIO_WRITE | IOMAP_DIO_DSYNC,
							&tfs_write_ops, &tfs_dio_ops, t2_async_done, &a, &st);
		iomap_unlock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
		EXPECT(dio == NULL);
		EXPECT_EQ_INT(st, -IOMAP_EIOCBQUEUED);
	} else {
		pthread_create(&th, NULL, t2_sync_writer, &a);
	}
	/* The DSYNC write finished its I/O and sits before its flush. */
	EXPECT(wait_flag(&t2_paused, 5000));
	uint64_t t0 = plat_time_ns();
	EXPECT_EQ_INT(t2_op(ti, op), 0);            /* lock + drain must not wait for the flush */
	EXPECT(__atomic_load_n(&t2_paused, __ATOMIC_ACQUIRE));   /* finished while the DIO was paused */
	EXPECT(!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	EXPECT(plat_time_ns() - t0 < 5000000000ull);
	__atomic_store_n(&t2_release, 1, __ATOMIC_RELEASE);
	EXPECT(wait_flag(&a.done, 5000));
	if (!async)
		pthread_join(th, NULL);
	EXPECT_EQ_INT(a.ret, 65536);
	EXPECT_EQ_INT(t2_hook_calls, 1);
	ti->ino.hooks = NULL;
	EXPECT_EQ_INT(tfs_read(ti, 0, back, sizeof(back)), 65536);
	EXPECT(memcmp(back, buf, sizeof(back)) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

TEST(dio_t2_sync_dsync_paused_truncate) { t2_run(false, 0); }
TEST(dio_t2_sync_dsync_paused_punch) { t2_run(false, 1); }
TEST(dio_t2_sync_dsync_paused_zero_range) { t2_run(false, 2); }
TEST(dio_t2_async_dsync_paused_truncate) { t2_run(true, 0); }
TEST(dio_t2_async_dsync_paused_punch) { t2_run(true, 1); }
TEST(dio_t2_async_dsync_paused_zero_range) { t2_run(true, 2); }

/* ---- DIO-T9 ---- */
struct t9_hook {
	struct tfs_inode *ti;
	uint8_t *buf;
	int64_t ret;
};

/* Pause point between fsync's flush and its log commit: a direct write
 * completes here (its data sits in the volatile cache only). */
static void t9_after_flush(struct tfs *fs, void *arg)
{
	struct t9_hook *h = arg;
	fs->fsync_after_flush = NULL;
	h->ret = tfs_dio_write(h->ti, 1 << 20, h->buf, 65536, 0);
}

static unsigned t9_pause_case(bool bug)
{
	struct tfs *fs = mkfs(true);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t a[65536] __attribute__((aligned(4096))), b[65536] __attribute__((aligned(4096)));
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	fs->log_on = true;
	fs->log_bug_late_snapshot = bug;
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, a, 65536, 0), 65536);      /* 16 records */
	EXPECT_EQ_INT(fs->nlog, 16);
	struct t9_hook h = { ti, b, 0 };
	fs->fsync_after_flush = t9_after_flush;
	fs->fsync_arg = &h;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(h.ret, 65536);
	EXPECT_EQ_INT(fs->nlog, 32);
	EXPECT_EQ_INT(fs->committed, bug ? 32 : 16);
	tfs_log_crash(fs);
	unsigned bad = tfs_log_check(fs);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	return bad;
}

TEST(dio_t9_fsync_commits_only_flushed_records)
{
	EXPECT_EQ_INT(t9_pause_case(false), 0);
}

/* The check can fail: committing with a snapshot taken after the flush
 * references the paused write's lost data. */
TEST(dio_t9_check_catches_late_snapshot)
{
	EXPECT(t9_pause_case(true) > 0);
}

struct t9_thr {
	struct tfs_inode *ti;
	unsigned id;
	int *stop;
	unsigned writes;
};

static void *t9_writer(void *p)
{
	struct t9_thr *t = p;
	uint8_t *buf = aligned_alloc(4096, 16384);
	for (unsigned i = 0; i < 40 && !__atomic_load_n(t->stop, __ATOMIC_ACQUIRE); i++) {
		fill(buf, 16384, t->id * 1000 + i);
		uint64_t pos = ((uint64_t)(i * 2 + t->id) * 16384) % (8ull << 20);
		if (tfs_dio_write(t->ti, pos, buf, 16384, 0) == 16384)
			t->writes++;
	}
	free(buf);
	return NULL;
}

static void *t9_syncer(void *p)
{
	struct t9_thr *t = p;
	while (!__atomic_load_n(t->stop, __ATOMIC_ACQUIRE)) {
		tfs_fsync(t->ti);
		t->writes++;
	}
	return NULL;
}

/* Two allocating direct writers race fsync; the power cut comes at an
 * arbitrary point.  Every write goes to a new file range (no in-place
 * overwrite), so data written after the cut cannot disturb the check. */
TEST(dio_t9_fsync_racing_dio_writers_then_crash)
{
	for (unsigned round = 0; round < 3; round++) {
		struct tfs *fs = mkfs(true);
		struct tfs_inode *ti = tfs_inode_new(fs);
		plat_host_bdev_set_delay(fs->bdev, 100000);
		fs->log_on = true;
		int stop = 0;
		struct t9_thr w0 = { ti, 0, &stop, 0 }, w1 = { ti, 1, &stop, 0 }, s = { ti, 9, &stop, 0 };
		pthread_t a, b, c;
		pthread_create(&a, NULL, t9_writer, &w0);
		pthread_create(&b, NULL, t9_writer, &w1);
		pthread_create(&c, NULL, t9_syncer, &s);
		/* Let some records be committed (bounded, load-tolerant), then
		 * cut the power a little later, mid-race. */
		uint64_t dl = plat_time_ns() + 10000000000ull;
		while (plat_load(&fs->committed) < 8 && plat_time_ns() < dl)
			plat_sleep_ns(1000000);
		plat_sleep_ns((2 + round * 5) * 1000000ull);
		tfs_log_crash(fs);           /* power cut mid-race: commits stop */
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		pthread_join(c, NULL);
		EXPECT(fs->committed > 0);
		EXPECT(s.writes > 0);
		EXPECT_EQ_INT(tfs_log_check(fs), 0);
		tfs_inode_free(ti);
		tfs_destroy(fs);
	}
}

/* ---- COW-28: concurrent extending writers ---- */
struct ext_state {
	struct tfs_inode *ti;
	int pending;
	int stop;
	uint64_t last_size;
	int backwards;
	int failures;
};

static void ext_done(void *p, int64_t ret)
{
	struct ext_state *s = p;
	if (ret != 16384)
		__atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&s->pending, 1, __ATOMIC_RELEASE);
}

struct ext_thr {
	struct ext_state *s;
	unsigned id;
};

static void *ext_submitter(void *p)
{
	struct ext_thr *t = p;
	struct tfs_inode *ti = t->s->ti;
	for (unsigned i = 0; i < 16; i++) {
		uint64_t blk = i * 4 + t->id;          /* threads interleave, each extends */
		static uint8_t bufs[4][16][16384] __attribute__((aligned(4096)));
		fill(bufs[t->id][i], 16384, (unsigned)blk);
		int st = 0;
		__atomic_add_fetch(&t->s->pending, 1, __ATOMIC_RELEASE);
		iomap_lock(&ti->ino.io_lock, 0);        /* extending: exclusive (DIO-5) */
		struct iomap_dio *d = iomap_dio_begin(&ti->ino, blk * 16384, bufs[t->id][i], 16384, IOMAP_DIO_WRITE,
						      &tfs_write_ops, &tfs_dio_ops, ext_done, t->s, &st);
		iomap_unlock(&ti->ino.io_lock, 0);
		if (d || st != -IOMAP_EIOCBQUEUED) {
			__atomic_add_fetch(&t->s->failures, 1, __ATOMIC_RELAXED);
			__atomic_sub_fetch(&t->s->pending, 1, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static void *ext_monitor(void *p)
{
	struct ext_state *s = p;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t sz = iomap_isize(&s->ti->ino);
		if (sz < s->last_size)
			s->backwards++;
		s->last_size = sz;
	}
	return NULL;
}

TEST(cow28_concurrent_extending_writers_threads)
{
	struct tfs *fs = mkfs(false);
	struct tfs_inode *ti = tfs_inode_new(fs);
	plat_host_bdev_set_delay(fs->bdev, 300000);   /* completions overlap and reorder */
	struct ext_state s = { .ti = ti };
	struct ext_thr th[4];
	pthread_t tid[4], mon;
	pthread_create(&mon, NULL, ext_monitor, &s);
	for (unsigned i = 0; i < 4; i++) {
		th[i] = (struct ext_thr){ &s, i };
		pthread_create(&tid[i], NULL, ext_submitter, &th[i]);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);
	uint64_t dl = plat_time_ns() + 10000000000ull;
	while (__atomic_load_n(&s.pending, __ATOMIC_ACQUIRE) && plat_time_ns() < dl)
		plat_sleep_ns(1000000);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(mon, NULL);
	EXPECT_EQ_INT(s.pending, 0);
	EXPECT_EQ_INT(s.failures, 0);
	EXPECT_EQ_INT(s.backwards, 0);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 64 * 16384);
	EXPECT_EQ_INT(ti->ino.disk_size, 64 * 16384);
	static uint8_t back[16384], want[16384];
	for (uint64_t blk = 0; blk < 64; blk++) {
		fill(want, 16384, (unsigned)blk);
		EXPECT_EQ_INT(tfs_read(ti, blk * 16384, back, 16384), 16384);
		EXPECT(memcmp(back, want, 16384) == 0);
	}
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

TEST_MAIN()
