/*
 * Concurrency and random-operation tests (EXT §4.6 fsx-style, COW §8.7
 * concurrency with writeback, DIO-T19-like read vs completion).  Threads
 * run random writes, reads, zero ranges, truncates and fsyncs against an
 * in-memory model under a small cache budget (constant reclaim) with
 * background writeback and an asynchronous device.
 */
#define TEST_SUITE "iomap_stress"
#include "tests/host/test.h"
#include "tests/host/testfs.h"
#include <pthread.h>

#define FSZ (1u << 20)

struct worker {
	struct tfs *fs;
	struct tfs_inode *ti;
	uint8_t *model;
	uint64_t size;
	unsigned seed;
	int ops;
	int failures;
	char why[160];
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

static void fail(struct worker *w, const char *why, int op)
{
	if (!w->failures++)
		snprintf(w->why, sizeof(w->why), "op %d: %s", op, why);
}

static void *worker_fn(void *p)
{
	struct worker *w = p;
	uint8_t *buf = malloc(FSZ), *src = malloc(FSZ);
	for (int op = 0; op < w->ops && !w->failures; op++) {
		unsigned kind = rnd(&w->seed) % 100;
		uint64_t pos = rnd(&w->seed) % (FSZ - 1), len = 1 + rnd(&w->seed) % 70000;
		if (pos + len > FSZ)
			len = FSZ - pos;
		if (kind < 45) {
			for (uint64_t i = 0; i < len; i++)
				src[i] = (uint8_t)(rnd(&w->seed) | 1);
			int64_t r = tfs_write(w->ti, pos, src, len);
			if (r != (int64_t)len) {
				char m[96];
				int64_t r2 = r > 0 ? tfs_write(w->ti, pos + r, src + r, len - r) : 0;
				snprintf(m, sizeof(m), "write %llu+%llu -> %lld (retry %lld)", (unsigned long long)pos,
					 (unsigned long long)len, (long long)r, (long long)r2);
				fail(w, m, op);
				break;
			}
			memcpy(w->model + pos, src, len);
			if (pos + len > w->size)
				w->size = pos + len;
		} else if (kind < 80) {
			int64_t r = tfs_read(w->ti, pos, buf, len);
			uint64_t want = pos >= w->size ? 0 : (pos + len > w->size ? w->size - pos : len);
			if (r != (int64_t)want || memcmp(buf, w->model + pos, want)) {
				char m[96];
				uint64_t k = 0;
				while (k < want && buf[k] == w->model[pos + k])
					k++;
				snprintf(m, sizeof(m), "read %llu+%llu -> %lld, first diff at %llu (size %llu) got %02x want %02x",
					 (unsigned long long)pos, (unsigned long long)len, (long long)r,
					 (unsigned long long)(pos + k), (unsigned long long)w->size, buf[k], w->model[pos + k]);
				fail(w, m, op);
			}
		} else if (kind < 87) {
			iomap_lock(&w->ti->ino.io_lock, 0);
			int r = iomap_zero_range(&w->ti->ino, pos, len, &tfs_write_ops);
			iomap_unlock(&w->ti->ino.io_lock, 0);
			if (r)
				fail(w, "zero", op);
			uint64_t e = pos + len < w->size ? pos + len : w->size;
			if (pos < e)
				memset(w->model + pos, 0, e - pos);
		} else if (kind < 93) {
			uint64_t ns = rnd(&w->seed) % FSZ;
			if (tfs_truncate(w->ti, ns))
				fail(w, "truncate", op);
			if (ns < w->size)
				memset(w->model + ns, 0, FSZ - ns);
			w->size = ns;
		} else {
			if (tfs_fsync(w->ti))
				fail(w, "fsync", op);
		}
	}
	if (!w->failures) {
		if (tfs_fsync(w->ti))
			fail(w, "final fsync", -1);
		if (tfs_read_disk(w->ti, 0, buf, w->size) || memcmp(buf, w->model, w->size))
			fail(w, "disk mismatch", -1);
		if (iomap_isize(&w->ti->ino) != w->size || w->ti->ino.disk_size != w->size)
			fail(w, "size mismatch", -1);
	}
	free(buf);
	free(src);
	return NULL;
}

static void run(unsigned blkbits, unsigned max_order, uint64_t budget, unsigned nthreads, int ops, bool cow)
{
	struct tfs_config cfg = { .dev_bytes = 128ull << 20, .blkbits = blkbits, .max_folio_order = max_order,
				  .bdev_threads = 3, .wq_threads = 2, .max_file_bytes = FSZ };
	struct tfs *fs;
	if (getenv("STRESS_THREADS"))
		nthreads = (unsigned)atoi(getenv("STRESS_THREADS"));
	unsigned wbt = getenv("STRESS_WB") ? (unsigned)atoi(getenv("STRESS_WB")) : 1;
	if (getenv("STRESS_BUDGET"))
		budget = strtoull(getenv("STRESS_BUDGET"), NULL, 0);
	EXPECT_EQ_INT(tfs_create(&cfg, budget, wbt, &fs), 0);
	if (!fs)
		return;
	struct worker w[4];
	pthread_t th[4];
	struct tfs_inode *base = NULL;
	uint8_t *init = malloc(FSZ);
	for (unsigned i = 0; i < FSZ; i++)
		init[i] = (uint8_t)(i * 7 + 1);
	if (cow) {
		base = tfs_inode_new(fs);
		EXPECT_EQ_INT(tfs_set_mapped(base, 0, FSZ, init), 0);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ fs, tfs_inode_new(fs), calloc(1, FSZ), 0, 1234 + i * 77, ops, 0, "" };
		if (cow) {
			EXPECT_EQ_INT(tfs_clone(w[i].ti, 0, base, 0, FSZ), 0);
			memcpy(w[i].model, init, FSZ);
			w[i].size = FSZ;
		}
		EXPECT_EQ_INT(pthread_create(&th[i], NULL, worker_fn, &w[i]), 0);
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures)
			test_fail_at(__FILE__, __LINE__, w[i].why);
		EXPECT_EQ_INT(tfs_inode_free(w[i].ti), 0);
		free(w[i].model);
	}
	if (cow) {
		EXPECT_EQ_INT(tfs_disk_cmp(base, 0, init, FSZ), 0);        /* clone source never modified */
		tfs_inode_free(base);
	}
	EXPECT_EQ_INT(fs->reserved, 0);                  /* EXT-17 invariant */
	EXPECT_EQ_INT(fs->used, 1);                      /* no leaked blocks */
	struct pcache_stats st;
	pcache_stats(fs->pc, &st);
	EXPECT_EQ_INT(st.dirty_bytes, 0);
	EXPECT(st.used_bytes == 0);
	tfs_destroy(fs);
	free(init);
}

/* fsx-style, 4 threads, 4 KiB blocks, large folios, 1 MiB budget. */
TEST(fsx_threads_large_folios_reclaim)
{
	run(12, 9, 1u << 20, 4, 300, false);
}

/* Block size < folio size, 1 KiB blocks. */
TEST(fsx_threads_small_blocks)
{
	run(10, 4, 2u << 20, 3, 300, false);
}

/* Every file is a reflink of one base file: all writes are COW. */
TEST(fsx_threads_cow_clones)
{
	run(12, 4, 2u << 20, 3, 250, true);
}

struct rw_shared {
	struct tfs_inode *ti;
	int stop;
	int bad;          /* 1: garbage seen, 2: a read failed */
	long reads;       /* reads that returned data while the writer ran */
};

static void *reader_fn(void *p)
{
	struct rw_shared *s = p;
	uint8_t *buf = malloc(65536);
	unsigned seed = 99;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint64_t pos = (rnd(&seed) % 200) * 1000;
		int64_t r = tfs_read(s->ti, pos, buf, 65536);
		if (r < 0)
			__atomic_store_n(&s->bad, 2, __ATOMIC_RELEASE);
		else if (r > 0)
			__atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
		for (int64_t i = 0; i < r; i++)
			if (buf[i] == 0xEE || (buf[i] != 0 && buf[i] > 0x80))
				__atomic_store_n(&s->bad, 1, __ATOMIC_RELEASE);
	}
	free(buf);
	return NULL;
}

/* Buffered readers run without the inode lock against a writer, writeback
 * (unwritten conversion) and reclaim: they never see unwritten garbage
 * (0xEE on disk) or uninitialised folio memory (DIO-T19-style). */
TEST(readers_vs_writer_and_conversion)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = 4,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 1 << 20 };
	struct tfs *fs = NULL;
	EXPECT_EQ_INT(tfs_create(&cfg, 512 << 10, 1, &fs), 0);
	if (!fs)
		return;
	struct tfs_inode *ti = tfs_inode_new(fs);
	EXPECT_EQ_INT(tfs_set_unwritten(ti, 0, 1 << 18), 0);
	struct rw_shared s = { ti, 0, 0, 0 };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		EXPECT_EQ_INT(pthread_create(&th[i], NULL, reader_fn, &s), 0);
	static uint8_t model[(60 * 4096) + 4096 + 100];
	uint64_t size = 0;
	uint8_t blk[4096];
	unsigned seed = 5;
	int bad_writes = 0, bad_syncs = 0;
	for (int gen = 1; gen <= 0x80; gen++) {
		memset(blk, gen, sizeof(blk));
		uint64_t pos = (rnd(&seed) % 60) * 4096 + (rnd(&seed) % 2) * 100;
		bad_writes += tfs_write(ti, pos, blk, sizeof(blk)) != (int64_t)sizeof(blk);
		memcpy(model + pos, blk, sizeof(blk));
		if (pos + sizeof(blk) > size)
			size = pos + sizeof(blk);
		if (gen % 16 == 0)
			bad_syncs += tfs_fsync(ti) != 0;
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ_INT(bad_writes, 0);
	EXPECT_EQ_INT(bad_syncs, 0);
	EXPECT_EQ_INT(s.bad, 0);
	EXPECT(s.reads > 0);
	/* What was written is what the file holds, in the cache and on disk. */
	static uint8_t buf[sizeof(model)];
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, size), (int64_t)size);
	EXPECT(memcmp(buf, model, size) == 0);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_read_disk(ti, 0, buf, size), 0);
	EXPECT(memcmp(buf, model, size) == 0);
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	tfs_destroy(fs);
}

TEST_MAIN()
