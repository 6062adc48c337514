/*
 * Buffered read and write through the iomap core on the test filesystem.
 * Names cite requirements: COW-n (iomap-cow-btrfs §8), DIO-n/DIO-Tn
 * (iomap-dio-locking-folio-ops Part C), EXT-n (iomap-ext4 §4).
 */
#define TEST_SUITE "iomap_buffered"
#include "tests/host/test.h"
#include "tests/host/testfs.h"

static struct tfs *mkfs(unsigned blkbits, unsigned max_order)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = blkbits, .max_folio_order = max_order,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 16ull << 20 };
	struct tfs *fs = NULL;
	if (tfs_create(&cfg, 64ull << 20, 0, &fs))
		return NULL;
	return fs;
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) | 1);
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static struct plat_host_bdev_stats dev_stats(struct tfs *fs)
{
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(fs->bdev, &st);
	return st;
}

static uint64_t dev_reads(struct tfs *fs) { return dev_stats(fs).reads; }
static uint64_t dev_read_bytes(struct tfs *fs) { return dev_stats(fs).read_bytes; }

/* Round trip at odd offsets and sizes, through cache and then disk. */
TEST(write_read_roundtrip)
{
	struct tfs *fs = mkfs(12, 9);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 3 << 20 };
	uint8_t *model = calloc(1, SZ), *buf = malloc(SZ), *in = malloc(SZ);
	fill(in, SZ, 1);
	uint64_t offs[] = { 0, 100, 4095, 4096, 65536 + 17, 2 << 20 };
	uint64_t lens[] = { 10, 5000, 2, 70000, 300000, 4096 * 5 + 3 };
	for (int i = 0; i < 6; i++) {
		EXPECT_EQ_INT(tfs_write(ti, offs[i], in + offs[i], lens[i]), lens[i]);
		memcpy(model + offs[i], in + offs[i], lens[i]);
	}
	uint64_t size = (2 << 20) + 4096 * 5 + 3;
	EXPECT_EQ_INT(iomap_isize(&ti->ino), size);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, SZ), size);
	EXPECT(memcmp(buf, model, size) == 0);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, model, size), 0);
	EXPECT_EQ_INT(ti->persisted_size, size);    /* EXT-29 */
	EXPECT_EQ_INT(ti->ino.disk_size, size);
	EXPECT(fs->st.conversions > 0);              /* EXT-19: new blocks went unwritten -> written */
	EXPECT_EQ_INT(fs->reserved, 0);              /* EXT-12: reservation consumed exactly once */
	/* Drop the cache and read from disk through readahead. */
	pcache_invalidate_range(&ti->ino.mapping, 0, UINT64_MAX, false);
	memset(buf, 0, SZ);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, SZ), size);
	EXPECT(memcmp(buf, model, size) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(model); free(buf); free(in);
}

/* COW-21 / EXT-32: holes, unwritten extents (garbage on disk) and past-EOF
 * blocks read as zeros without any device read. */
TEST(cow21_ext32_holes_unwritten_read_zero_no_io)
{
	struct tfs *fs = mkfs(12, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	EXPECT_EQ_INT(tfs_set_unwritten(ti, 64 << 10, 64 << 10), 0);
	plat_store(&ti->ino.size, 256 << 10);     /* 0..64K hole, 128K..256K hole */
	uint64_t r0 = dev_reads(fs);
	uint8_t *buf = malloc(256 << 10);
	memset(buf, 0x55, 256 << 10);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 256 << 10), 256 << 10);
	EXPECT(all_zero(buf, 256 << 10));
	EXPECT_EQ_INT(dev_reads(fs), r0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(buf);
}

/* COW-10/11, §8.7 "block size < page size": 1 KiB blocks in 4 KiB+ folios.
 * Fully overwritten blocks are never read; partial blocks of a MAPPED
 * extent are read; old bytes around the write survive. */
TEST(cow11_block_lt_page_rmw)
{
	struct tfs *fs = mkfs(10, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t old[16384], nw[16384], buf[16384];
	fill(old, sizeof(old), 3);
	fill(nw, sizeof(nw), 4);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, 16384, old), 0);
	/* Middle blocks only (1024..3071): no read at all. */
	uint64_t r0 = dev_reads(fs);
	EXPECT_EQ_INT(tfs_write(ti, 1024, nw, 2048), 2048);
	EXPECT_EQ_INT(dev_reads(fs), r0);
	/* Ending mid-block (5000..6499): block 4 and 6 partial -> 2 reads. */
	EXPECT_EQ_INT(tfs_write(ti, 5000, nw + 5000, 1500), 1500);
	EXPECT_EQ_INT(dev_reads(fs), r0 + 2);
	/* The folio is now partly uptodate; reading all of it reads the rest. */
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 16384), 16384);
	uint8_t model[16384];
	memcpy(model, old, sizeof(model));
	memcpy(model + 1024, nw, 2048);
	memcpy(model + 5000, nw + 5000, 1500);
	EXPECT(memcmp(buf, model, sizeof(model)) == 0);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_read_disk(ti, 0, buf, 16384), 0);
	EXPECT(memcmp(buf, model, sizeof(model)) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW §8.7 "single unaligned write on a shared extent", page not cached
 * and page cached: untouched bytes preserved, the reflink source is
 * byte-identical, a new extent is allocated (COW-2, COW-10, COW-41). */
TEST(cow10_unaligned_write_on_shared_extent)
{
	for (int cached = 0; cached < 2; cached++) {
		struct tfs *fs = mkfs(12, 4);
		struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
		uint8_t old[32768], buf[32768], model[32768];
		fill(old, sizeof(old), 5);
		EXPECT_EQ_INT(tfs_set_mapped(a, 0, 32768, old), 0);
		EXPECT_EQ_INT(tfs_clone(b, 0, a, 0, 32768), 0);
		struct tfs_blk before = tfs_blk_get(b, 8192);
		EXPECT(before.addr == tfs_blk_get(a, 8192).addr);
		if (cached)
			EXPECT_EQ_INT(tfs_read(b, 0, buf, 32768), 32768);
		EXPECT_EQ_INT(tfs_write(b, 8192 + 100, "hello", 5), 5);
		memcpy(model, old, sizeof(model));
		memcpy(model + 8192 + 100, "hello", 5);
		EXPECT_EQ_INT(tfs_read(b, 0, buf, 32768), 32768);
		EXPECT(memcmp(buf, model, sizeof(model)) == 0);
		EXPECT_EQ_INT(tfs_fsync(b), 0);
		struct tfs_blk after = tfs_blk_get(b, 8192);
		EXPECT(after.addr != before.addr);        /* new extent */
		EXPECT(tfs_blk_get(b, 4096).addr == tfs_blk_get(a, 4096).addr); /* rest still shared */
		EXPECT_EQ_INT(fs->st.remaps, 1);
		EXPECT_EQ_INT(tfs_read_disk(b, 0, buf, 32768), 0);
		EXPECT(memcmp(buf, model, sizeof(model)) == 0);
		EXPECT_EQ_INT(tfs_read_disk(a, 0, buf, 32768), 0);   /* source untouched */
		EXPECT(memcmp(buf, old, sizeof(old)) == 0);
		EXPECT_EQ_INT(tfs_read(a, 0, buf, 32768), 32768);
		EXPECT(memcmp(buf, old, sizeof(old)) == 0);
		tfs_inode_free(a);
		tfs_inode_free(b);
		tfs_destroy(fs);
	}
}

/* COW-4 + §8.7 map boundaries: a write spanning a source boundary (shared
 * then unshared) and a source with a hole in the middle. */
TEST(cow4_write_spanning_source_boundary_and_hole)
{
	struct tfs *fs = mkfs(12, 4);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t old[65536], buf[65536], model[65536], nw[65536];
	fill(old, sizeof(old), 6);
	fill(nw, sizeof(nw), 7);
	EXPECT_EQ_INT(tfs_set_mapped(a, 0, 16384, old), 0);
	EXPECT_EQ_INT(tfs_set_mapped(a, 24576, 16384, old + 24576), 0);   /* hole at 16K..24K */
	memset(old + 16384, 0, 8192);
	EXPECT_EQ_INT(tfs_clone(b, 0, a, 0, 40960), 0);
	EXPECT_EQ_INT(tfs_set_mapped(b, 40960, 8192, old + 40960), 0);    /* unshared tail */
	memcpy(model, old, 49152);
	/* 10000..45000: shared blocks, a hole, shared blocks, unshared. */
	EXPECT_EQ_INT(tfs_write(b, 10000, nw, 35000), 35000);
	memcpy(model + 10000, nw, 35000);
	EXPECT_EQ_INT(tfs_read(b, 0, buf, 49152), 49152);
	EXPECT(memcmp(buf, model, 49152) == 0);
	EXPECT_EQ_INT(tfs_fsync(b), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(b, 0, model, 49152), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, old, 40960), 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* COW-18 and §8.7 EOF: an unaligned write past EOF leaves a gap reading
 * zeros and an exact i_size; a write into the partial last block. */
TEST(cow18_write_past_eof_gap_zero)
{
	struct tfs *fs = mkfs(12, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t buf[40000];
	EXPECT_EQ_INT(tfs_write(ti, 0, "abc", 3), 3);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 3);
	EXPECT_EQ_INT(tfs_write(ti, 30001, "xyz", 3), 3);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 30004);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), 30004);
	EXPECT(memcmp(buf, "abc", 3) == 0 && all_zero(buf + 3, 29998) && memcmp(buf + 30001, "xyz", 3) == 0);
	EXPECT_EQ_INT(tfs_write(ti, 30002, "QQ", 2), 2);    /* inside the partial last block */
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 30004);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_read_disk(ti, 0, buf, 32768), 0);
	EXPECT(memcmp(buf + 30001, "xQQ", 3) == 0 && all_zero(buf + 30004, 32768 - 30004));
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* EXT-10 / §8.7 ENOSPC: reported at write time with the bytes that fit,
 * never first at writeback; reservations fully returned. */
TEST(ext10_enospc_at_write_time)
{
	struct tfs *fs = mkfs(12, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	fs->free_limit = fs->used + 4;                   /* 4 blocks left */
	uint8_t data[65536];
	fill(data, sizeof(data), 8);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, 65536), 16384);
	EXPECT_EQ_INT(tfs_write(ti, 16384, data, 4096), -PLAT_ENOSPC);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 16384);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(fs->reserved, 0);
	EXPECT_EQ_INT(tfs_free_blocks(fs), 0);
	tfs_inode_free(ti);
	EXPECT_EQ_INT(tfs_free_blocks(fs), 4);
	tfs_destroy(fs);
}

static uint64_t short_copy(void *dst, const struct iomap_source *s, uint64_t off, uint64_t n)
{
	uint64_t limit = *(uint64_t *)s->priv;
	if (off >= limit)
		return 0;
	if (off + n > limit)
		n = limit - off;
	memcpy(dst, (const uint8_t *)s->buf + off, n);
	return n;
}

/* COW-20 / DIO-T14 / EXT-22 short copy: the user buffer "faults" at byte
 * 6000 of a 20000-byte write into a hole.  i_size grows by the bytes that
 * landed in whole or already-uptodate blocks only, the undirtied new
 * delalloc blocks are punched and their reservation released. */
TEST(cow20_short_copy)
{
	struct tfs *fs = mkfs(10, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[20000], buf[20000];
	fill(data, sizeof(data), 9);
	uint64_t limit = 6000;
	struct iomap_source src = { data, short_copy, &limit };
	uint64_t free0 = tfs_free_blocks(fs);
	iomap_lock(&ti->ino.io_lock, 0);
	int64_t r = iomap_file_buffered_write(&ti->ino, 0, &src, 20000, &tfs_write_ops, 0);
	iomap_unlock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(r, 5120);                        /* trimmed to block 5's start */
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 5120);
	EXPECT(fs->st.end_short > 0);
	EXPECT(fs->st.punched >= 14);                  /* blocks 5..19 not dirtied */
	EXPECT_EQ_INT(tfs_free_blocks(fs), free0 - 5);  /* only 5 blocks still reserved */
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), 5120);
	EXPECT(memcmp(buf, data, 5120) == 0);
	/* Fault at byte 0: nothing written, -EFAULT. */
	limit = 0;
	iomap_lock(&ti->ino.io_lock, 0);
	r = iomap_file_buffered_write(&ti->ino, 8192, &src, 100, &tfs_write_ops, 0);
	iomap_unlock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(r, -PLAT_EFAULT);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 5120);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(fs->reserved, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

static int bump_rounds;
static void bump_after_begin(struct iomap_iter *it)
{
	if (bump_rounds > 0) {
		bump_rounds--;
		tfs_bump_seq((struct tfs_inode *)it->inode);
	}
}

/* DIO-33/34, DIO-T15/T16: the mapping changes between begin and the folio
 * lock (delay hook); the core sees the stale cookie after locking, releases
 * the folio undirtied, ends with the exact count and re-maps from the
 * current position.  Data matches the reference. */
TEST(dio34_stale_mapping_restart)
{
	struct tfs *fs = mkfs(12, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	struct iomap_hooks hooks = { .after_begin = bump_after_begin };
	ti->ino.hooks = &hooks;
	uint8_t data[50000], buf[50000];
	fill(data, sizeof(data), 10);
	bump_rounds = 3;
	uint64_t ends0 = fs->st.ends, begins0 = fs->st.begins;
	EXPECT_EQ_INT(tfs_write(ti, 777, data, 40000), 40000);
	EXPECT_EQ_INT(fs->st.stale, 3);
	EXPECT(fs->st.begins - begins0 >= 4);
	EXPECT_EQ_INT(fs->st.ends - ends0, fs->st.begins - begins0);
	EXPECT_EQ_INT(tfs_read(ti, 777, buf, 40000), 40000);
	EXPECT(memcmp(buf, data, 40000) == 0);
	/* DIO-T16: a constant bumper cannot livelock: the write fails after
	 * the restart cap instead of spinning forever... but with a finite
	 * number of bumps it always completes. */
	bump_rounds = 50;
	EXPECT_EQ_INT(tfs_write(ti, 0, data, 50000), 50000);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 50000), 50000);
	EXPECT(memcmp(buf, data, 50000) == 0);
	ti->ino.hooks = NULL;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(fs->reserved, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

static int n_gets, n_puts, put_zero, fail_get;
static int hook_get(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **out)
{
	if (fail_get) {
		fail_get--;
		return -PLAT_ENOMEM;
	}
	int ret = iomap_get_folio(it, pos, len, out);
	if (!ret)
		n_gets++;
	return ret;
}
static void hook_put(struct iomap_inode *inode, uint64_t pos, uint64_t copied, struct folio *f)
{
	n_puts++;
	if (!copied)
		put_zero++;
	iomap_put_folio_default(inode, pos, copied, f);
}
static const struct iomap_folio_ops hook_ops = { hook_get, hook_put, NULL };

/* DIO-23..27 / DIO-T14: put_folio exactly once per successful get_folio,
 * also with copied = 0; a failed get_folio n_gets no put_folio. */
TEST(dio26_folio_hooks_paired)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	ti->folio_ops = &hook_ops;
	uint8_t data[20000];
	fill(data, sizeof(data), 11);
	n_gets = n_puts = put_zero = 0;
	EXPECT_EQ_INT(tfs_write(ti, 100, data, 20000), 20000);
	EXPECT_EQ_INT(n_gets, 5);
	EXPECT_EQ_INT(n_puts, n_gets);
	fail_get = 1;
	EXPECT_EQ_INT(tfs_write(ti, 40000, data, 100), -PLAT_ENOMEM);
	EXPECT_EQ_INT(n_puts, n_gets);
	uint64_t limit = 0;
	struct iomap_source src = { data, short_copy, &limit };
	iomap_lock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(iomap_file_buffered_write(&ti->ino, 0, &src, 10, &tfs_write_ops, 0), -PLAT_EFAULT);
	iomap_unlock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(n_puts, n_gets);
	EXPECT(put_zero >= 1);
	ti->folio_ops = NULL;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* The readahead window follows the access pattern: a miss of a read that
 * does not continue the previous one reads only what was asked (a random
 * 4 KiB read used to read 128 KiB), a read that continues it reads ahead,
 * and the window grows while the reads stay sequential. */
TEST(readahead_window_follows_the_access_pattern)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 8 << 20 };
	uint8_t *data = malloc(SZ), buf[4096];
	fill(data, SZ, 31);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, SZ, data), 0);
	static const uint64_t random_at[] = { 3 << 20, (1 << 20) + 8192, 5 << 20, (2 << 20) + 4096, 7 << 20 };
	for (unsigned i = 0; i < sizeof(random_at) / sizeof(random_at[0]); i++) {
		uint64_t b0 = dev_read_bytes(fs);
		EXPECT_EQ_INT(tfs_read(ti, random_at[i], buf, 4096), 4096);
		EXPECT(memcmp(buf, data + random_at[i], 4096) == 0);
		EXPECT_EQ_INT(dev_read_bytes(fs) - b0, 4096);
	}
	/* Continuing the last one: read ahead, more with every miss. */
	uint64_t pos = (7 << 20) + 4096, b0 = dev_read_bytes(fs), first = 0;
	for (int i = 0; i < 64; i++, pos += 4096) {
		EXPECT_EQ_INT(tfs_read(ti, pos, buf, 4096), 4096);
		EXPECT(memcmp(buf, data + pos, 4096) == 0);
		if (i == 0)
			first = dev_read_bytes(fs) - b0;
	}
	EXPECT(first >= 128 << 10);
	EXPECT(dev_read_bytes(fs) - b0 >= (128 + 256) << 10);   /* the second window doubled */
	EXPECT(dev_reads(fs) > 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data);
}

/* A sequential reader has the window after its own read by the inode's
 * readahead worker (ra_wq) while it copies: after the first 4 KiB read
 * (whose miss reads [0, 128 KiB)) and before any further read, the
 * worker has read the next window [128 KiB, 384 KiB) into the cache, and
 * the data stays right. */
static bool ra_quiet(void *arg) { return iomap_ra_idle(arg); }

#define RA_WIN_START (128ull << 10)
#define RA_WIN_END (384ull << 10)

/* Once the worker is idle its folios exist: each of [s, e) must be
 * cached, its read finished (the folio unlocked) and uptodate with the
 * file's bytes.  Returns how many pages were. */
static unsigned ra_window_read(struct tfs_inode *ti, const uint8_t *data, uint64_t s, uint64_t e)
{
	unsigned good = 0;
	for (uint64_t p = s; p < e; p += 4096) {
		struct folio *f = pcache_lookup(&ti->ino.mapping, p >> 12);
		if (!f)
			continue;
		if (!folio_wait_unlocked(f, plat_time_ns() + 10ull * 1000000000) && folio_test(f, FOLIO_UPTODATE) &&
		    !memcmp(f->data + (p - folio_pos(f)), data + p, 4096))
			good++;
		folio_put(f);
	}
	return good;
}

TEST(async_readahead_reads_the_next_window_in_the_background)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	struct iomap_workq *wq;
	enum { SZ = 8 << 20 };
	uint8_t *data = malloc(SZ), *buf = malloc(SZ);
	fill(data, SZ, 47);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, SZ, data), 0);
	EXPECT_EQ_INT(iomap_workq_create("ra-test", 1, &wq), 0);
	ti->ino.ra_wq = wq;
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 4096), 4096);
	EXPECT_EQ_INT(plat_wait_owned(NULL, ra_quiet, &ti->ino, NULL, plat_time_ns() + 10ull * 1000000000, "ra"), 0);
	EXPECT(plat_load(&ti->ino.ra_async_windows) >= 1);
	EXPECT_EQ_INT(ra_window_read(ti, data, RA_WIN_START, RA_WIN_END), (RA_WIN_END - RA_WIN_START) / 4096);
	/* The rest, sequentially: more windows in the background, same bytes. */
	for (uint64_t pos = 4096; pos < SZ; pos += 64 << 10) {
		uint64_t n = SZ - pos < (64 << 10) ? SZ - pos : 64 << 10;
		EXPECT_EQ_INT(tfs_read(ti, pos, buf + pos, n), (int64_t)n);
	}
	EXPECT(memcmp(buf + 4096, data + 4096, SZ - 4096) == 0);
	EXPECT(memcmp(buf, data, 4096) == 0);
	EXPECT(plat_load(&ti->ino.ra_async_windows) >= 2);
	tfs_inode_free(ti);        /* waits for the worker (iomap_inode_destroy) */
	iomap_workq_destroy(wq);
	tfs_destroy(fs);
	free(data);
	free(buf);
}

/* The worker waits for memory.  The cache (4 MiB) is made full of what
 * reclaim cannot take at once -- dirty folios of one file and folios
 * another holds references to -- while the worker's item waits behind a
 * blocker on its queue; then the worker runs.  A folio made without
 * waiting fails there, so a worker that only tried that would read
 * nothing; one that waits pushes writeback (no writeback threads here:
 * the waiter writes back itself), the dirty folios become clean and
 * reclaimable, and it reads the whole window. */
struct ra_blocker {
	struct iomap_work w;
	int release;
};

static void ra_blocker_fn(struct iomap_work *w)
{
	struct ra_blocker *b = (struct ra_blocker *)w;
	uint64_t deadline = plat_time_ns() + 10ull * 1000000000;
	while (!plat_load(&b->release) && plat_time_ns() < deadline)
		plat_sleep_ns(100000);
}

TEST(async_readahead_worker_waits_for_memory)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = 0,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 16ull << 20 };
	struct tfs *fs = NULL;
	EXPECT_EQ_INT(tfs_create(&cfg, 4ull << 20, 0, &fs), 0);
	if (!fs)
		return;
	struct tfs_inode *ti = tfs_inode_new(fs), *dirty = tfs_inode_new(fs), *pin = tfs_inode_new(fs);
	struct iomap_workq *wq;
	enum { SZ = 2 << 20, NPIN = 1024 };
	uint8_t *data = malloc(SZ), *buf = malloc(SZ);
	struct folio **pinned = calloc(NPIN, sizeof(*pinned));
	unsigned npinned = 0;
	fill(data, SZ, 53);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, SZ, data), 0);
	EXPECT_EQ_INT(iomap_workq_create("ra-test", 1, &wq), 0);
	ti->ino.ra_wq = wq;
	struct ra_blocker blk = { .w = { .fn = ra_blocker_fn } };
	iomap_workq_queue(wq, &blk.w);
	/* The miss reads [0, 128 KiB) itself and queues the next window. */
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, 4096), 4096);
	EXPECT(memcmp(buf, data, 4096) == 0);
	/* Fill the cache: dirty data up to just under the dirty limit (half
	 * the budget: no throttling, no writeback), then folios held. */
	EXPECT_EQ_INT(tfs_write(dirty, 0, data, (2 << 20) - (64 << 10)), (2 << 20) - (64 << 10));
	while (npinned < NPIN && !pcache_get_folio(&pin->ino.mapping, npinned, 0, PCACHE_CREAT | PCACHE_NOWAIT,
						   &pinned[npinned]))
		npinned++;
	EXPECT(npinned > 0 && npinned < NPIN);      /* stopped because the cache is full */
	EXPECT_EQ_INT(ra_window_read(ti, data, RA_WIN_START, RA_WIN_END), 0);   /* not read yet */
	plat_store(&blk.release, 1);
	EXPECT_EQ_INT(plat_wait_owned(NULL, ra_quiet, &ti->ino, NULL, plat_time_ns() + 20ull * 1000000000, "ra"), 0);
	EXPECT_EQ_INT(plat_load(&ti->ino.ra_async_windows), 1);
	EXPECT_EQ_INT(ra_window_read(ti, data, RA_WIN_START, RA_WIN_END), (RA_WIN_END - RA_WIN_START) / 4096);
	for (unsigned i = 0; i < npinned; i++)
		folio_put(pinned[i]);
	EXPECT_EQ_INT(tfs_fsync(dirty), 0);
	tfs_inode_free(pin);
	tfs_inode_free(dirty);
	tfs_inode_free(ti);
	iomap_workq_destroy(wq);
	tfs_destroy(fs);
	free(pinned);
	free(data);
	free(buf);
}

/* Readahead merges contiguous blocks across folios into large bios;
 * large folios are used for large sequential reads (EXT-36). */
TEST(ext36_readahead_merges)
{
	struct tfs *fs = mkfs(12, 9);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 4 << 20 };
	uint8_t *data = malloc(SZ), *buf = malloc(SZ);
	fill(data, SZ, 12);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, SZ, data), 0);
	uint64_t r0 = dev_reads(fs);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, SZ), SZ);
	EXPECT(memcmp(buf, data, SZ) == 0);
	EXPECT(dev_reads(fs) - r0 <= 8);
	struct folio *f = pcache_lookup(&ti->ino.mapping, 0);
	EXPECT(f && f->order == 9);
	if (f)
		folio_put(f);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data); free(buf);
}

/* EXT-36 partial-block write into a large folio that is not uptodate,
 * then a read of the rest (is_partially_uptodate-style). */
TEST(ext36_partial_write_large_folio)
{
	struct tfs *fs = mkfs(12, 9);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 2 << 20 };
	uint8_t *data = malloc(SZ), *buf = malloc(SZ);
	fill(data, SZ, 13);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, SZ, data), 0);
	/* A 1 MiB write creates a large folio; its partial edge blocks are
	 * read, interior blocks are not. */
	uint64_t r0 = dev_reads(fs);
	EXPECT_EQ_INT(tfs_write(ti, 1000, data + 1000, (1 << 20) - 2000), (1 << 20) - 2000);
	EXPECT_EQ_INT(dev_reads(fs) - r0, 2);
	memcpy(buf, data, SZ);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, SZ), SZ);
	EXPECT(memcmp(buf, data, SZ) == 0);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data); free(buf);
}

static void bump_always(struct iomap_iter *it)
{
	tfs_bump_seq((struct tfs_inode *)it->inode);
}

/* DIO-36 / DIO-T16: a constant sequence bumper cannot livelock a writer:
 * past the restart cap the write fails with -EBUSY, having released every
 * folio undirtied and every reservation. */
TEST(dio36_restart_cap_no_livelock)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	struct iomap_hooks hooks = { .after_begin = bump_always };
	ti->ino.hooks = &hooks;
	unsigned saved = iomap_max_stale_restarts;
	iomap_max_stale_restarts = 200;
	uint8_t data[8192];
	fill(data, sizeof(data), 14);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), -PLAT_EBUSY);
	EXPECT_EQ_INT(fs->st.stale, 201);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 0);
	iomap_max_stale_restarts = saved;
	ti->ino.hooks = NULL;
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	tfs_inode_free(ti);
	EXPECT_EQ_INT(fs->reserved, 0);
	tfs_destroy(fs);
}

static int estale_left;
static int estale_get(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **out)
{
	int ret = iomap_get_folio(it, pos, len, out);
	if (!ret && estale_left > 0) {
		estale_left--;
		folio_unlock(*out);       /* the FS releases the folio itself */
		folio_put(*out);
		*out = NULL;
		return -PLAT_ESTALE;
	}
	return ret;
}
static const struct iomap_folio_ops estale_ops = { estale_get, NULL, NULL };

/* DIO-33, second accepted form: the filesystem's get_folio validates and
 * returns -ESTALE; the core re-maps from the current position. */
TEST(dio33_get_folio_estale_form)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	ti->folio_ops = &estale_ops;
	uint8_t data[20000], buf[20000];
	fill(data, sizeof(data), 15);
	estale_left = 3;
	uint64_t b0 = fs->st.begins;
	EXPECT_EQ_INT(tfs_write(ti, 50, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(estale_left, 0);
	EXPECT(fs->st.begins - b0 >= 4);
	EXPECT_EQ_INT(tfs_read(ti, 50, buf, sizeof(buf)), (int)sizeof(buf));
	EXPECT(memcmp(buf, data, sizeof(buf)) == 0);
	ti->folio_ops = NULL;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-7 / DIO-24: NOWAIT buffered write: a folio locked by someone else
 * gives -EAGAIN instead of sleeping. */
TEST(dio7_nowait_folio_contended)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	struct folio *f;
	EXPECT_EQ_INT(pcache_get_folio(&ti->ino.mapping, 0, 0, PCACHE_CREAT | PCACHE_LOCK, &f), 0);
	struct iomap_source src = { "abc", NULL, NULL };
	iomap_lock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(iomap_file_buffered_write(&ti->ino, 10, &src, 3, &tfs_write_ops, IOMAP_NOWAIT), -PLAT_EAGAIN);
	iomap_unlock(&ti->ino.io_lock, 0);
	folio_unlock(f);
	folio_put(f);
	EXPECT_EQ_INT(tfs_write(ti, 10, "abc", 3), 3);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	tfs_inode_free(ti);
	EXPECT_EQ_INT(fs->reserved, 0);
	tfs_destroy(fs);
}

/* A filesystem that allocates written blocks at write time (no delalloc,
 * no unwritten extents) marks them F_NEW: their disk contents are stale.
 * Modelled on testfs by flagging its mapping of a block full of old data
 * as new. */
static int fnew_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
		      struct iomap *iomap, struct iomap *srcmap)
{
	int ret = tfs_write_ops.begin(inode, pos, len, flags, iomap, srcmap);
	if (!ret && iomap->type == IOMAP_MAPPED && srcmap->type == IOMAP_NONE)
		iomap->flags |= IOMAP_F_NEW;
	return ret;
}

/* EXT-20: a partial-block buffered write into a new block zeroes the rest
 * of the block rather than reading the stale disk contents around it. */
TEST(ext20_new_block_zeroed_not_read)
{
	struct tfs *fs = mkfs(12, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t stale[4096], data[100], buf[4096];
	memset(stale, 0xab, sizeof(stale));
	fill(data, sizeof(data), 70);
	EXPECT_EQ_INT(tfs_set_mapped(ti, 0, sizeof(stale), stale), 0);
	struct iomap_ops ops = tfs_write_ops;
	ops.begin = fnew_begin;
	struct iomap_source src = { data, NULL, NULL };
	uint64_t reads0 = dev_reads(fs);
	EXPECT_EQ_INT(iomap_lock(&ti->ino.io_lock, 0), 0);
	EXPECT_EQ_INT(iomap_file_buffered_write(&ti->ino, 1000, &src, sizeof(data), &ops, 0),
		      (int64_t)sizeof(data));
	iomap_unlock(&ti->ino.io_lock, 0);
	EXPECT_EQ_INT(dev_reads(fs), reads0);                 /* nothing read from disk */
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), (int64_t)sizeof(buf));
	EXPECT(all_zero(buf, 1000));
	EXPECT(memcmp(buf + 1000, data, sizeof(data)) == 0);
	EXPECT(all_zero(buf + 1100, sizeof(buf) - 1100));
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	tfs_destroy(fs);
}

TEST_MAIN()
