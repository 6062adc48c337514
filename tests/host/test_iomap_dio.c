/*
 * Direct I/O: COW-21..31, DIO-1..21 and DIO-T1..T10 where they concern the
 * core (see docs/iomap-requirements.md).
 */
#define TEST_SUITE "iomap_dio"
#include "tests/host/test.h"
#include "tests/host/testfs.h"
#include <pthread.h>

static struct tfs *mkfs2(unsigned bdev_threads, bool polled, unsigned wq)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = 4,
				  .bdev_threads = bdev_threads, .wq_threads = wq, .max_file_bytes = 16ull << 20,
				  .polled = polled };
	struct tfs *fs = NULL;
	if (tfs_create(&cfg, 32ull << 20, 0, &fs))
		return NULL;
	return fs;
}
static struct tfs *mkfs(void) { return mkfs2(2, false, 2); }

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 53 + seed * 17 + (i >> 12)) | 1);
}

static struct plat_host_bdev_stats bstats(struct tfs *fs)
{
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(fs->bdev, &st);
	return st;
}

/* COW-21: DIO read of a hole is zero-filled without I/O; a range dirty in
 * the page cache is written back first, so the read sees it. */
TEST(cow21_dio_read_hole_and_dirty_cache)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t buf[65536], data[65536];
	fill(data, sizeof(data), 1);
	plat_store(&ti->ino.size, 65536);
	memset(buf, 0x55, sizeof(buf));
	uint64_t r0 = bstats(fs).reads;
	EXPECT_EQ_INT(tfs_dio_read(ti, 0, buf, 65536), 65536);
	EXPECT_EQ_INT(bstats(fs).reads, r0);
	bool z = true;
	for (int i = 0; i < 65536; i++)
		z = z && !buf[i];
	EXPECT(z);
	EXPECT_EQ_INT(tfs_write(ti, 8192, data, 20000), 20000);   /* dirty cache */
	EXPECT_EQ_INT(tfs_dio_read(ti, 8192, buf, 20480), 20480);
	EXPECT(memcmp(buf, data, 20000) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO write into a hole: allocated unwritten in begin (EXT-19), converted
 * at completion, i_size raised only at completion (DIO-T6, COW-28), the
 * cached copy invalidated (COW-26) so buffered reads see the new data. */
TEST(dio_t6_extending_write_converts_at_completion)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[65536], buf[65536];
	fill(data, sizeof(data), 2);
	EXPECT_EQ_INT(tfs_write(ti, 0, "old", 3), 3);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 3), 3);          /* cached */
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, data, 65536, 0), 65536);
	EXPECT_EQ_INT(ti->last_dio_shared, false);          /* extending: exclusive */
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 65536);
	EXPECT_EQ_INT(ti->ino.disk_size, 65536);
	EXPECT_EQ_INT(tfs_blk_get(ti, 0).state, TFS_MAPPED);
	EXPECT(fs->st.conversions >= 15);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 65536), 65536);
	EXPECT(memcmp(buf, data, 65536) == 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, 65536), 0);
	/* Overwrite inside EOF: shared lock (DIO-5). */
	EXPECT_EQ_INT(tfs_dio_write(ti, 4096, data, 8192, 0), 8192);
	EXPECT_EQ_INT(ti->last_dio_shared, true);
	EXPECT_EQ_INT(ti->ino.dio_count, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-17/T10, COW-25/26 and §8.7 "short DIO write plus buffered tail":
 * a misaligned DIO write falls back to buffered, is written back and
 * invalidated, and a following DIO read sees every byte; a misaligned DIO
 * read is served buffered. */
TEST(dio_t10_misaligned_fallback)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[20000], buf[20480];
	fill(data, sizeof(data), 3);
	EXPECT_EQ_INT(tfs_dio_write(ti, 100, data, 20000, 0), 20000);
	EXPECT_EQ_INT(fs->st.dio_fallbacks, 1);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);          /* written back */
	EXPECT_EQ_INT(ti->ino.mapping.nr_folios, 0);         /* and invalidated */
	EXPECT_EQ_INT(tfs_dio_read(ti, 0, buf, 20480), 20100);
	EXPECT(memcmp(buf + 100, data, 20000) == 0);
	EXPECT_EQ_INT(tfs_dio_read(ti, 101, buf, 50), 50);   /* misaligned read */
	EXPECT(memcmp(buf, data + 1, 50) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-22/23 and §8.7 "DIO write, shared extent": a new extent is
 * allocated; the old one is untouched; remap at completion; the clone
 * source stays byte-identical. */
TEST(cow22_dio_write_shared_extent)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	static uint8_t old[32768], nw[8192], buf[32768];
	fill(old, sizeof(old), 4);
	fill(nw, sizeof(nw), 5);
	tfs_set_mapped(a, 0, sizeof(old), old);
	tfs_clone(b, 0, a, 0, sizeof(old));
	uint64_t addr0 = tfs_blk_get(b, 8192).addr;
	EXPECT_EQ_INT(tfs_dio_write(b, 8192, nw, 8192, 0), 8192);
	EXPECT(tfs_blk_get(b, 8192).addr != addr0);
	EXPECT_EQ_INT(fs->st.remaps, 2);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, old, sizeof(buf)), 0);
	EXPECT_EQ_INT(tfs_dio_read(b, 0, buf, sizeof(buf)), (int)sizeof(buf));
	EXPECT(memcmp(buf + 8192, nw, 8192) == 0 && memcmp(buf, old, 8192) == 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* COW-23/24, §8.7 "DIO write, injected I/O error": the error is returned,
 * the old mapping stays, the new COW blocks are freed, i_size unchanged. */
TEST(cow23_dio_write_eio_keeps_old_mapping)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	static uint8_t old[16384], nw[16384], buf[16384];
	fill(old, sizeof(old), 6);
	fill(nw, sizeof(nw), 7);
	tfs_set_mapped(a, 0, sizeof(old), old);
	tfs_clone(b, 0, a, 0, sizeof(old));
	uint64_t used0 = fs->used, addr0 = tfs_blk_get(b, 0).addr;
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_dio_write(b, 0, nw, 16384, 0), -PLAT_EIO);
	EXPECT_EQ_INT(tfs_blk_get(b, 0).addr, addr0);
	EXPECT_EQ_INT(tfs_blk_get(b, 0).cow, TFS_COW_NONE);
	EXPECT_EQ_INT(fs->used, used0);
	EXPECT_EQ_INT(iomap_isize(&b->ino), 16384);
	EXPECT_EQ_INT(tfs_dio_read(b, 0, buf, sizeof(buf)), (int)sizeof(buf));
	EXPECT(memcmp(buf, old, sizeof(buf)) == 0);
	/* Extending write failing: i_size unchanged (COW-28). */
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_dio_write(b, 16384, nw, 16384, 0), -PLAT_EIO);
	EXPECT_EQ_INT(iomap_isize(&b->ino), 16384);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

static int order_ok;
static struct tfs_inode *order_ti;
static int order_end_io(struct iomap_inode *inode, uint64_t pos, int64_t size, unsigned flags)
{
	/* DIO-13 step 1: still counted in flight, i_size not yet raised. */
	order_ok = plat_load(&inode->dio_count) == 1 && iomap_isize(inode) < pos + (uint64_t)size;
	return tfs_dio_ops.end_io(inode, pos, size, flags);
}
static const struct iomap_dio_ops order_ops = { NULL, order_end_io };

/* DIO-13/14: completion order, DSYNC flush after the in-flight drop, FUA
 * only for pure overwrites (no flush then), a flush for allocating
 * writes. */
TEST(dio13_completion_order_and_fua)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	order_ti = ti;
	static uint8_t data[16384];
	fill(data, sizeof(data), 8);
	iomap_lock(&ti->ino.io_lock, 0);
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(iomap_dio_rw(&ti->ino, 0, data, 16384, IOMAP_DIO_WRITE | IOMAP_DIO_DSYNC, &tfs_write_ops,
				   &order_ops), 16384);
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT(order_ok);
	EXPECT_EQ_INT(s1.flushes - s0.flushes, 1);          /* allocating: flush */
	EXPECT_EQ_INT(s1.fua_writes - s0.fua_writes, 0);
	EXPECT_EQ_INT(iomap_dio_rw(&ti->ino, 0, data, 16384, IOMAP_DIO_WRITE | IOMAP_DIO_DSYNC, &tfs_write_ops,
				   &order_ops), 16384);
	struct plat_host_bdev_stats s2 = bstats(fs);
	EXPECT_EQ_INT(s2.flushes - s1.flushes, 0);          /* pure overwrite: FUA */
	EXPECT(s2.fua_writes - s1.fua_writes >= 1);
	iomap_unlock(&ti->ino.io_lock, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

struct async_ctx {
	int done;
	int64_t ret;
	uint64_t flushes_at_cb;
	uint32_t lockdep_at_cb;
	struct tfs *fs;
};
static void async_done(void *arg, int64_t ret)
{
	struct async_ctx *c = arg;
	c->ret = ret;
	c->flushes_at_cb = bstats(c->fs).flushes;
	c->lockdep_at_cb = *plat_thread_lockdep();
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

/* DIO-12/15/T3: async DIO returns QUEUED; the callback fires only after
 * the DSYNC flush, from a worker holding no inode lock. */
TEST(dio_t3_async_dsync_callback_after_flush)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[65536];
	fill(data, sizeof(data), 9);
	struct async_ctx c = { .fs = fs };
	uint64_t f0 = bstats(fs).flushes;
	int status;
	iomap_lock(&ti->ino.io_lock, 0);
	struct iomap_dio *d = iomap_dio_begin(&ti->ino, 0, data, 65536, IOMAP_DIO_WRITE | IOMAP_DIO_DSYNC,
					      &tfs_write_ops, &tfs_dio_ops, async_done, &c, &status);
	iomap_unlock(&ti->ino.io_lock, 0);
	EXPECT(d == NULL);
	EXPECT_EQ_INT(status, -IOMAP_EIOCBQUEUED);
	uint64_t deadline = plat_time_ns() + 5000000000ull;
	while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE) && plat_time_ns() < deadline)
		plat_sleep_ns(100000);
	EXPECT_EQ_INT(c.done, 1);
	EXPECT_EQ_INT(c.ret, 65536);
	EXPECT_EQ_INT(c.flushes_at_cb, f0 + 1);
	EXPECT_EQ_INT(c.lockdep_at_cb, 0);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 65536);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* Completion context of asynchronous direct I/O: calls counts every done
 * callback, ret keeps the last result. */
struct ext_ctx {
	int pending;
	int failed;
	int calls;
	int64_t ret;
};
static void ext_done(void *arg, int64_t ret)
{
	struct ext_ctx *c = arg;
	if (ret < 0)
		__atomic_add_fetch(&c->failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->ret, ret, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->calls, 1, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&c->pending, 1, __ATOMIC_RELEASE);
}

/* COW-28 / §8.7 async DIO: several extending writes complete out of order
 * (4 device threads, delays), one fails: i_size never goes backwards, ends
 * at the largest successful end, and read-back shows no stale data. */
TEST(cow28_async_extending_out_of_order)
{
	struct tfs *fs = mkfs2(4, false, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	plat_host_bdev_set_delay(fs->bdev, 300000);
	static uint8_t data[8][16384], buf[8 * 16384];
	struct ext_ctx c = { 8, 0, 0, 0 };
	uint64_t wait_until = plat_time_ns() + 10000000000ull;   /* every wait below ends */
	iomap_lock(&ti->ino.io_lock, 0);
	for (int i = 0; i < 8; i++) {
		fill(data[i], 16384, 10 + i);
		if (i == 5) { /* the 6th write fails: let 0..4 finish first */
			while (__atomic_load_n(&c.pending, __ATOMIC_ACQUIRE) > 3 && plat_time_ns() < wait_until)
				plat_sleep_ns(50000);
		}
		if (i == 5)
			plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
		int status;
		iomap_dio_begin(&ti->ino, (uint64_t)i * 16384, data[i], 16384, IOMAP_DIO_WRITE, &tfs_write_ops,
				&tfs_dio_ops, ext_done, &c, &status);
		EXPECT_EQ_INT(status, -IOMAP_EIOCBQUEUED);
		if (i == 5) {
			while (__atomic_load_n(&c.failed, __ATOMIC_ACQUIRE) == 0 &&
			       __atomic_load_n(&c.pending, __ATOMIC_ACQUIRE) > 0 && plat_time_ns() < wait_until)
				plat_sleep_ns(50000);
		}
	}
	iomap_unlock(&ti->ino.io_lock, 0);
	uint64_t last = 0, deadline = plat_time_ns() + 5000000000ull;
	bool mono = true;
	while (__atomic_load_n(&c.pending, __ATOMIC_ACQUIRE) && plat_time_ns() < deadline) {
		uint64_t s = iomap_isize(&ti->ino);
		mono = mono && s >= last;
		last = s;
	}
	EXPECT(mono);
	EXPECT_EQ_INT(c.failed, 1);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 8 * 16384);
	EXPECT_EQ_INT(iomap_dio_wait(&ti->ino, plat_time_ns() + 1000000000ull), 0);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), (int)sizeof(buf));
	bool ok = true;
	for (int i = 0; i < 8; i++) {
		if (i == 5) {   /* failed: unwritten, reads zeros, never garbage */
			for (int k = 0; k < 16384; k++)
				ok = ok && buf[i * 16384 + k] == 0;
		} else {
			ok = ok && memcmp(buf + i * 16384, data[i], 16384) == 0;
		}
	}
	EXPECT(ok);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-31: on a polled device a synchronous DIO completes by polling
 * through its handle (no interrupt/thread). */
struct cow31_io {
	struct tfs_inode *ti;
	uint8_t *buf;
	uint64_t len;
	bool write;
	int64_t ret;
	int done;
};

static void *cow31_io_fn(void *p)
{
	struct cow31_io *a = p;
	a->ret = a->write ? tfs_dio_write(a->ti, 0, a->buf, a->len, 0) : tfs_dio_read(a->ti, 0, a->buf, a->len);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Run one direct I/O on a polled device in a thread.  Nothing completes
 * there unless the waiter polls; if the I/O is not done within 10 s the
 * test fails and then polls itself so the thread can finish (the buffer
 * stays owned until then). */
static int64_t cow31_run(struct tfs *fs, struct tfs_inode *ti, uint8_t *buf, uint64_t len, bool write)
{
	struct cow31_io a = { ti, buf, len, write, 0, 0 };
	pthread_t th;
	EXPECT_EQ_INT(pthread_create(&th, NULL, cow31_io_fn, &a), 0);
	uint64_t deadline = plat_time_ns() + 10000000000ull;
	while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) && plat_time_ns() < deadline)
		plat_sleep_ns(1000000);
	if (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE)) {
		test_fail_at(__FILE__, __LINE__, write ? "direct write on a polled device not done after 10 s: "
			     "its waiter does not poll" : "direct read on a polled device not done after 10 s: "
			     "its waiter does not poll");
		while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE))
			if (plat_bdev_poll(fs->bdev, 16) <= 0)
				plat_sleep_ns(100000);
	}
	pthread_join(th, NULL);
	return a.ret;
}

/* COW-31: on a polled device (no completion threads) a multi-bio direct
 * write and read complete because their waiter polls, and every bio was
 * completed by polling. */
TEST(cow31_polled_completion)
{
	struct tfs *fs = mkfs2(0, true, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[3 << 20], buf[3 << 20];
	fill(data, sizeof(data), 20);
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(cow31_run(fs, ti, data, sizeof(data), true), (int64_t)sizeof(data));   /* split bios */
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT(s1.writes - s0.writes >= 3);                         /* 1 MiB bio cap: several bios */
	EXPECT_EQ_INT(s1.polled_bios - s0.polled_bios, s1.writes - s0.writes + s1.flushes - s0.flushes);
	EXPECT_EQ_INT(cow31_run(fs, ti, buf, sizeof(buf), false), (int64_t)sizeof(buf));
	struct plat_host_bdev_stats s2 = bstats(fs);
	EXPECT(s2.reads - s1.reads >= 3);
	EXPECT_EQ_INT(s2.polled_bios - s1.polled_bios, s2.reads - s1.reads);
	EXPECT(memcmp(buf, data, sizeof(buf)) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-7/T7: NOWAIT: contended lock -> EAGAIN; allocation needed -> EAGAIN;
 * overwrite of written blocks -> succeeds. */
TEST(dio_t7_nowait_matrix)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[8192];
	fill(data, sizeof(data), 21);
	plat_store(&ti->ino.size, 65536);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, data, 8192, IOMAP_DIO_NOWAIT), -PLAT_EAGAIN);  /* hole */
	tfs_set_mapped(ti, 0, 8192, data);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, data, 8192, IOMAP_DIO_NOWAIT), 8192);
	iomap_lock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	/* Another "task" holds the lock shared: an extending NOWAIT write
	 * needs it exclusive -> EAGAIN, never blocks. */
	EXPECT_EQ_INT(tfs_dio_write(ti, 65536, data, 8192, IOMAP_DIO_NOWAIT), -PLAT_EAGAIN);
	iomap_unlock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

struct stream {
	struct tfs_inode *ti;
	int stop;
	long ops;
};
static void *dio_streamer(void *p)
{
	struct stream *s = p;
	static __thread uint8_t buf[16384];
	unsigned k = 0;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t pos = (k++ % 8) * 16384;
		if (k & 1)
			tfs_dio_write(s->ti, pos, buf, sizeof(buf), 0);
		else
			tfs_dio_read(s->ti, pos, buf, sizeof(buf));
		__atomic_add_fetch(&s->ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* DIO-8/T2/T4/T8: readers and writers inside EOF share the lock; truncate
 * takes it exclusive and drains in-flight DIO, finishing in bounded time
 * under a continuous DIO stream. */
TEST(dio_t8_truncate_drains_under_dio_stream)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[1 << 20];
	tfs_set_mapped(ti, 0, sizeof(data), data);
	struct stream s = { ti, 0, 0 };
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, dio_streamer, &s);
	uint64_t until = plat_time_ns() + 2000000000ull;
	while (__atomic_load_n(&s.ops, __ATOMIC_RELAXED) < 20 && plat_time_ns() < until)
		plat_sleep_ns(1000000);   /* the stream is running */
	for (int round = 0; round < 5; round++) {
		uint64_t t0 = plat_time_ns();
		EXPECT_EQ_INT(tfs_truncate(ti, (1 << 20) - 4096 * (uint64_t)(round + 1)), 0);
		EXPECT(plat_time_ns() - t0 < 2000000000ull);
		EXPECT_EQ_INT(ti->ino.dio_count >= 0, 1);
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	if (s.ops <= 10)
		printf("# dio_t8: only %ld ops\n", s.ops);
	EXPECT(s.ops > 10);
	EXPECT_EQ_INT(ti->ino.dio_count, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

struct t4_writer {
	struct tfs_inode *ti;
	unsigned id;
	int64_t bad;            /* first failed write's result, 0 if none */
	int *stop;
};
static void *t4_writer_fn(void *p)
{
	struct t4_writer *w = p;
	static __thread uint8_t buf[64 << 10];
	for (unsigned i = 0; i < 40 && !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE); i++) {
		memset(buf, (int)(1 + w->id * 60 + i % 60), sizeof(buf));
		int64_t r = tfs_dio_write(w->ti, 0, buf, sizeof(buf), 0);
		if (r != (int64_t)sizeof(buf) && !w->bad)
			w->bad = r < 0 ? r : -1;
	}
	return NULL;
}

/* DIO-T4: direct writers inside EOF take the lock shared, so several are
 * in flight at once (dio_count, sampled, reaches 2 or more: each write
 * holds the shared lock until it completes); overlapping writes leave one
 * writer's data in each block, never a mix within a block. */
TEST(dio_t4_shared_writers_overlap)
{
	struct tfs *fs = mkfs2(4, false, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t init[64 << 10], buf[64 << 10];
	memset(init, 0xff, sizeof(init));
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, sizeof(init), init), 0);
	plat_host_bdev_set_delay(fs->bdev, 2000000);             /* 2 ms per bio */
	int stop = 0, max_inside = 0;
	struct t4_writer w[4];
	pthread_t th[4];
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct t4_writer){ ti, i, 0, &stop };
		EXPECT_EQ_INT(pthread_create(&th[i], NULL, t4_writer_fn, &w[i]), 0);
	}
	uint64_t until = plat_time_ns() + 5000000000ull;
	while (max_inside < 2 && plat_time_ns() < until) {
		int n = plat_load(&ti->ino.dio_count);
		if (n > max_inside)
			max_inside = n;
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ_INT(w[i].bad, 0);
	}
	plat_host_bdev_set_delay(fs->bdev, 0);
	EXPECT(max_inside >= 2);
	EXPECT_EQ_INT(tfs_dio_read(ti, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	unsigned mixed = 0;
	for (unsigned b = 0; b < sizeof(buf) / 4096; b++)
		for (unsigned k = 1; k < 4096; k++)
			if (buf[b * 4096 + k] != buf[b * 4096]) {
				mixed++;
				break;
			}
	EXPECT_EQ_INT(mixed, 0);
	EXPECT(buf[0] != 0xff && buf[0] != 0);
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	tfs_destroy(fs);
}

/* DIO-8: truncate takes the I/O lock exclusive, then drains direct I/O.
 * An asynchronous direct write is still in flight after its submitter
 * dropped the shared lock (the stream test above never overlaps: its
 * synchronous writes finish under the lock), so the drain is all that
 * keeps truncate from freeing blocks under it: when truncate returns the
 * write has completed (its end_io ran before the blocks were released). */
TEST(dio8_truncate_drains_async_dio)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[256 << 10], wr[64 << 10], buf[64 << 10];
	fill(data, sizeof(data), 40);
	fill(wr, sizeof(wr), 41);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, sizeof(data), data), 0);
	plat_host_bdev_set_delay(fs->bdev, 200000000);          /* 200 ms per bio */
	uint64_t ends0 = fs->st.end_ios;
	struct ext_ctx c = { 1, 0, 0, 0 };
	int status;
	iomap_lock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	iomap_dio_begin(&ti->ino, 128 << 10, wr, sizeof(wr), IOMAP_DIO_WRITE, &tfs_write_ops, &tfs_dio_ops,
			ext_done, &c, &status);
	iomap_unlock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(status, -IOMAP_EIOCBQUEUED);
	EXPECT_EQ_INT(plat_load(&ti->ino.dio_count), 1);         /* in flight, lock dropped */
	EXPECT_EQ_INT(tfs_truncate(ti, 64 << 10), 0);
	EXPECT_EQ_INT(plat_load(&ti->ino.dio_count), 0);
	EXPECT_EQ_INT(fs->st.end_ios, ends0 + 1);
	uint64_t deadline = plat_time_ns() + 5000000000ull;
	while (!__atomic_load_n(&c.calls, __ATOMIC_ACQUIRE) && plat_time_ns() < deadline)
		plat_sleep_ns(1000000);
	EXPECT_EQ_INT(c.calls, 1);
	EXPECT_EQ_INT(c.ret, (int64_t)sizeof(wr));
	plat_host_bdev_set_delay(fs->bdev, 0);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 64 << 10);
	EXPECT_EQ_INT(tfs_dio_read(ti, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	EXPECT(memcmp(buf, data, sizeof(buf)) == 0);
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	EXPECT_EQ_INT(fs->used, 1);                              /* nothing leaked */
	tfs_destroy(fs);
}

/* COW-32: one bio of a multi-bio direct write fails.  The parent completes
 * once, with that error: the caller gets -EIO (not a short count or
 * success), end_io runs once and sees the failure, so the COW blocks are
 * dropped and the old data stays; asynchronously, done is called once. */
TEST(cow32_one_failing_bio_of_many)
{
	struct tfs *fs = mkfs2(4, false, 2);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	static uint8_t old[3 << 20], nw[3 << 20], buf[3 << 20];
	fill(old, sizeof(old), 50);
	fill(nw, sizeof(nw), 51);
	EXPECT_EQ_INT(tfs_set_mapped(a, 0, sizeof(old), old), 0);
	EXPECT_EQ_INT(tfs_clone(b, 0, a, 0, sizeof(old)), 0);
	uint64_t used0 = fs->used, ends0 = fs->st.end_ios, errs0 = fs->st.end_io_errors;
	struct plat_host_bdev_stats s0 = bstats(fs);
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_dio_write(b, 0, nw, sizeof(nw), 0), -PLAT_EIO);
	EXPECT(bstats(fs).writes - s0.writes >= 3);               /* it was split */
	EXPECT_EQ_INT(fs->st.end_ios, ends0 + 1);
	EXPECT_EQ_INT(fs->st.end_io_errors, errs0 + 1);
	EXPECT_EQ_INT(fs->used, used0);
	EXPECT_EQ_INT(tfs_dio_read(b, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	EXPECT(memcmp(buf, old, sizeof(buf)) == 0);

	struct ext_ctx c = { 1, 0, 0, 0 };
	int status;
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	iomap_lock(&b->ino.io_lock, IOMAP_LOCK_SHARED);
	iomap_dio_begin(&b->ino, 0, nw, sizeof(nw), IOMAP_DIO_WRITE, &tfs_write_ops, &tfs_dio_ops,
			ext_done, &c, &status);
	iomap_unlock(&b->ino.io_lock, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(status, -IOMAP_EIOCBQUEUED);
	EXPECT_EQ_INT(iomap_dio_wait(&b->ino, plat_time_ns() + 5000000000ull), 0);
	uint64_t deadline = plat_time_ns() + 5000000000ull;
	while (!__atomic_load_n(&c.calls, __ATOMIC_ACQUIRE) && plat_time_ns() < deadline)
		plat_sleep_ns(1000000);
	plat_sleep_ns(20000000);                                  /* a second call would land now */
	EXPECT_EQ_INT(c.calls, 1);
	EXPECT_EQ_INT(c.ret, -PLAT_EIO);
	EXPECT_EQ_INT(fs->used, used0);
	EXPECT_EQ_INT(tfs_dio_read(b, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	EXPECT(memcmp(buf, old, sizeof(buf)) == 0);
	EXPECT_EQ_INT(tfs_inode_free(a), 0);
	EXPECT_EQ_INT(tfs_inode_free(b), 0);
	tfs_destroy(fs);
}

/* COW-34: the lower layer gets bios it accepts: a direct write is cut into
 * bios of at most 1 MiB (exactly 1 MiB when the range allows). */
TEST(cow34_dio_bio_cap)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[4 << 20];
	fill(data, sizeof(data), 52);
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, data, sizeof(data), 0), (int64_t)sizeof(data));
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT_EQ_INT(s1.max_bio_bytes, 1 << 20);
	EXPECT(s1.writes - s0.writes >= 4);
	EXPECT_EQ_INT(s1.write_bytes - s0.write_bytes, sizeof(data));
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	tfs_destroy(fs);
}

struct t5_arg {
	struct tfs_inode *ti;
	uint8_t *buf;
	int64_t ret;
};
static void *t5_writer(void *p)
{
	struct t5_arg *a = p;
	a->ret = tfs_dio_write(a->ti, 16384, a->buf, 16384, 0);   /* inside EOF when checked */
	return NULL;
}

/* DIO-5 / DIO-T5: the unlocked check says "inside EOF", the file shrinks
 * before the lock is granted: the locked re-check escalates to exclusive.
 * DIO-T18: a sub-block write never runs under the shared lock. */
TEST(dio_t5_recheck_escalates)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[65536];
	tfs_set_mapped(ti, 0, sizeof(data), data);
	struct t5_arg a = { ti, data, 0 };
	iomap_lock(&ti->ino.io_lock, 0);               /* "truncate" holds the lock */
	pthread_t th;
	pthread_create(&th, NULL, t5_writer, &a);
	uint64_t until = plat_time_ns() + 5000000000ull;
	while (!plat_load(&ti->ino.io_lock.readers_waiting) && plat_time_ns() < until)
		plat_sleep_ns(100000);              /* the writer checked and now waits */
	plat_store(&ti->ino.size, 20000);               /* shrink under the lock */
	iomap_unlock(&ti->ino.io_lock, 0);
	pthread_join(th, NULL);
	EXPECT_EQ_INT(a.ret, 16384);
	EXPECT_EQ_INT(fs->st.escalations, 1);
	EXPECT_EQ_INT(ti->last_dio_shared, false);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 32768);
	EXPECT_EQ_INT(tfs_dio_write(ti, 512, data, 1024, 0), 1024);   /* sub-block */
	EXPECT_EQ_INT(ti->last_dio_shared, false);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

static uint64_t sub_offs[64];
static int nsub;
static void rec_submit(struct iomap_inode *inode, struct plat_bio *bio, uint64_t file_offset)
{
	(void)inode;
	if (nsub < 64)
		sub_offs[nsub++] = file_offset;
	plat_bdev_submit(bio);
}
static const struct iomap_dio_ops rec_ops = { rec_submit, NULL };

/* COW-29/30/32: the DIO ops table's submit hook sees every bio with the
 * file offset of its first byte (bios split at 1 MiB), and the request
 * completes once after all of them. */
TEST(cow30_submit_hook_file_offsets)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[3 << 20];
	tfs_set_mapped(ti, 0, sizeof(data), data);
	nsub = 0;
	iomap_lock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(iomap_dio_rw(&ti->ino, 4096, data, (2 << 20) + 8192, 0, &tfs_read_ops, &rec_ops),
		      (2 << 20) + 8192);
	iomap_unlock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	EXPECT_EQ_INT(nsub, 3);
	EXPECT_EQ_INT(sub_offs[0], 4096);
	EXPECT_EQ_INT(sub_offs[1], 4096 + (1 << 20));
	EXPECT_EQ_INT(sub_offs[2], 4096 + (2 << 20));
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-18/20 (Variant B): an O_DSYNC direct write that falls back to
 * buffered for its tail is flushed exactly once, after both parts. */
TEST(dio18_dsync_flushed_once_with_fallback)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[20000];
	uint64_t f0 = bstats(fs).flushes;
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, data, 20000, IOMAP_DIO_DSYNC), 20000);
	EXPECT_EQ_INT(bstats(fs).flushes - f0, 1);
	EXPECT_EQ_INT(fs->st.dsync_flushes, 1);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

struct t19 {
	struct tfs_inode *ti;
	int stop;
};
static __thread bool t19_is_reader;
/* Widens the window between the read mapping and the zero-fill. */
static void t19_delay(struct iomap_iter *it)
{
	if (t19_is_reader && it->iomap.type == IOMAP_UNWRITTEN)
		plat_sleep_ns(300000);
}
static void *t19_reader(void *p)
{
	struct t19 *a = p;
	t19_is_reader = true;
	static __thread uint8_t buf[65536];
	unsigned k = 1;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		k = k * 1103515245u + 12345u;
		tfs_read(a->ti, ((k >> 8) % 60) * 4096, buf, sizeof(buf));
	}
	return NULL;
}

/* DIO-T19: direct writes into unwritten extents (conversion at completion)
 * race buffered readers that cache zeros for the unwritten range: once the
 * direct write returned, a buffered read never sees zeros (or garbage)
 * for the written block. */
TEST(dio_t19_dio_completion_vs_buffered_read)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	tfs_set_unwritten(ti, 0, 64 * 4096);
	struct iomap_hooks hooks = { .after_read_begin = t19_delay };
	ti->ino.hooks = &hooks;
	struct t19 a = { ti, 0 };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, t19_reader, &a);
	static uint8_t blk[4096], back[4096];
	unsigned k = 7, bad = 0;
	for (int gen = 1; gen <= 200; gen++) {
		k = k * 1103515245u + 12345u;
		uint64_t pos = ((k >> 8) % 64) * 4096;
		memset(blk, gen % 250 + 1, sizeof(blk));
		if (tfs_dio_write(ti, pos, blk, 4096, 0) != 4096)
			bad++;
		if (tfs_read(ti, pos, back, 4096) != 4096 || memcmp(back, blk, 4096))
			bad++;
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ_INT(bad, 0);
	ti->ino.hooks = NULL;
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

TEST_MAIN()
