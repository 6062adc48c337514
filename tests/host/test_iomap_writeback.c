/*
 * Writeback: I/O units, cached mappings, completion hook, errors, on-disk
 * size, background writeback, fsync.  COW-n / DIO-n / EXT-n as in
 * docs/iomap-requirements.md.
 */
#define TEST_SUITE "iomap_writeback"
#include "tests/host/test.h"
#include "tests/host/testfs.h"

static struct tfs *mkfs(unsigned max_order, unsigned wb_threads, unsigned bdev_threads)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = max_order,
				  .bdev_threads = bdev_threads, .wq_threads = 2, .max_file_bytes = 32ull << 20 };
	struct tfs *fs = NULL;
	if (tfs_create(&cfg, 64ull << 20, wb_threads, &fs))
		return NULL;
	return fs;
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 37 + seed * 11 + (i >> 12)) | 1);
}

static struct plat_host_bdev_stats bstats(struct tfs *fs)
{
	struct plat_host_bdev_stats st;
	plat_host_bdev_stats(fs->bdev, &st);
	return st;
}

/* I/O units are built from contiguous dirty blocks and merged across
 * folios (EXT-25: one allocation for the run); the mapping is cached and
 * reused while its cookie matches (DIO-37, EXT-4). */
TEST(ext25_ioends_merge_and_map_reuse)
{
	struct tfs *fs = mkfs(0, 0, 2);       /* 4 KiB folios only */
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 1 << 20 };
	uint8_t *data = malloc(SZ);
	fill(data, SZ, 1);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, SZ), SZ);
	struct plat_host_bdev_stats s0 = bstats(fs);
	struct iomap_writepage_ctx wpc;
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, &wpc), 0);
	EXPECT_EQ_INT(pcache_wait_writeback_range(&ti->ino.mapping, 0, UINT64_MAX, PLAT_FOREVER), 0);
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT(s1.writes - s0.writes <= 2);
	EXPECT(s1.max_bio_bytes >= 512 << 10);
	EXPECT(wpc.nr_maps <= 2);
	EXPECT(wpc.nr_map_reuse >= 200);
	EXPECT_EQ_INT(fs->st.map_allocs, 1);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, SZ), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data);
}

static void slow_finish(void)
{
	plat_sleep_ns(20 * 1000000ull);
}

/* Inode teardown waits until the completion work has left the inode, not
 * only until fsync saw the writeback flags clear: the drain drops its
 * folio references after clearing them, and the last one frees a folio
 * through its mapping (a use-after-free under ASan otherwise). */
TEST(destroy_waits_for_completion_work)
{
	struct tfs *fs = mkfs(0, 0, 2);
	uint8_t buf[8192];
	fill(buf, sizeof(buf), 3);
	iomap_test_ioend_finish_hook = slow_finish;
	for (int i = 0; i < 3; i++) {
		struct tfs_inode *ti = tfs_inode_new(fs);
		EXPECT_EQ_INT(tfs_write(ti, 0, buf, sizeof(buf)), sizeof(buf));
		EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	}
	iomap_test_ioend_finish_hook = NULL;
	tfs_destroy(fs);
}

static struct tfs_inode *bump_ti;
static int wb_map_calls;
static void bump_on_map(struct iomap_inode *inode, uint64_t pos)
{
	(void)pos;
	if (wb_map_calls++ == 3)
		tfs_bump_seq((struct tfs_inode *)inode);
}

/* DIO-37 / DIO-T20: a sequence bump after the first map invalidates the
 * cached mapping: the next folio is mapped again, not written through the
 * stale cached mapping. */
TEST(dio37_cached_map_rechecked)
{
	struct tfs *fs = mkfs(0, 0, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	bump_ti = ti;
	struct iomap_hooks h = { .wb_map = bump_on_map };
	uint8_t data[65536];
	fill(data, sizeof(data), 2);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	ti->ino.hooks = &h;
	wb_map_calls = 0;
	struct iomap_writepage_ctx wpc;
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, &wpc), 0);
	EXPECT_EQ_INT(wpc.nr_maps, 2);
	EXPECT_EQ_INT(wpc.nr_map_reuse, 14);
	ti->ino.hooks = NULL;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, sizeof(data)), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* EXT-30 / COW-23 and §8.7 injected I/O error: no metadata change (blocks
 * stay unwritten, on-disk size unchanged), the error reaches fsync once and
 * the folio state; a later successful write-back converts. */
TEST(ext30_write_error_no_metadata_change)
{
	struct tfs *fs = mkfs(2, 0, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[16384];
	fill(data, sizeof(data), 3);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_fsync(ti), -PLAT_EIO);
	EXPECT_EQ_INT(tfs_blk_get(ti, 0).state, TFS_UNWRITTEN);
	EXPECT_EQ_INT(ti->persisted_size, 0);
	EXPECT_EQ_INT(ti->ino.disk_size, 0);
	EXPECT_EQ_INT(fs->st.conversions, 0);
	struct folio *f = pcache_lookup(&ti->ino.mapping, 0);
	EXPECT(f && folio_test(f, FOLIO_ERROR));
	if (f)
		folio_put(f);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);          /* reported once */
	/* Rewrite and write back successfully. */
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_blk_get(ti, 0).state, TFS_MAPPED);
	EXPECT_EQ_INT(ti->persisted_size, sizeof(data));
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-23 / §8.7 "DIO write, injected I/O error" analogue for buffered COW:
 * the failed COW write frees its new blocks, the old shared mapping stays
 * and the source is untouched. */
TEST(cow23_cow_write_error_keeps_old_mapping)
{
	struct tfs *fs = mkfs(2, 0, 2);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t old[16384], nw[16384];
	fill(old, sizeof(old), 4);
	fill(nw, sizeof(nw), 5);
	tfs_set_mapped(a, 0, sizeof(old), old);
	tfs_clone(b, 0, a, 0, sizeof(old));
	uint64_t addr0 = tfs_blk_get(b, 0).addr, used0 = fs->used;
	EXPECT_EQ_INT(tfs_write(b, 0, nw, sizeof(nw)), (int)sizeof(nw));
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_fsync(b), -PLAT_EIO);
	EXPECT_EQ_INT(tfs_blk_get(b, 0).addr, addr0);
	EXPECT_EQ_INT(tfs_blk_get(b, 0).cow, TFS_COW_NONE);
	EXPECT_EQ_INT(fs->used, used0);
	EXPECT_EQ_INT(fs->st.remaps, 0);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, old, sizeof(old)), 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* EXT-13/16: a map_blocks failure is loud: the error reaches fsync, the
 * delalloc reservation of the discarded blocks is released. */
TEST(ext13_map_failure_discards)
{
	struct tfs *fs = mkfs(0, 0, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[8192];
	fill(data, sizeof(data), 6);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(fs->reserved, 2);
	fs->map_err = -PLAT_EIO;
	fs->map_err_count = 2;
	EXPECT_EQ_INT(tfs_fsync(ti), -PLAT_EIO);
	EXPECT_EQ_INT(fs->reserved, 0);
	EXPECT_EQ_INT(tfs_blk_get(ti, 0).state, TFS_HOLE);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-39: map_blocks that cannot take the extent range without blocking
 * returns EAGAIN; the folio is redirtied and skipped (background pass),
 * and an fsync comes back for it. */
TEST(cow39_writeback_trylock_redirty)
{
	struct tfs *fs = mkfs(0, 0, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[8192];
	fill(data, sizeof(data), 7);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	fs->map_eagain_count = 1;
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, false, NULL), 0);
	struct folio *f = pcache_lookup(&ti->ino.mapping, 0);
	EXPECT(f && folio_test(f, FOLIO_DIRTY) && folio_block_dirty(f, 0));
	if (f)
		folio_put(f);
	fs->map_eagain_count = 3;
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, sizeof(data)), 0);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* EXT-36: writeback of only the dirty blocks of a large folio. */
TEST(ext36_writeback_only_dirty_blocks)
{
	struct tfs *fs = mkfs(9, 0, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 2 << 20 };
	uint8_t *data = malloc(SZ);
	fill(data, SZ, 8);
	tfs_set_mapped(ti, 0, SZ, data);
	uint8_t *buf = malloc(SZ);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, SZ), SZ);    /* one 2 MiB folio */
	EXPECT_EQ_INT(tfs_write(ti, 4096 * 10, "a", 1), 1);
	EXPECT_EQ_INT(tfs_write(ti, 4096 * 300 + 5, "b", 1), 1);
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT_EQ_INT(s1.write_bytes - s0.write_bytes, 8192);
	EXPECT_EQ_INT(s1.flushes - s0.flushes, 1);     /* COW-19: fsync flushes */
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data); free(buf);
}

/* EXT-24/29: in-memory size grows in write_end, on-disk size only at
 * completion, never past i_size, monotonically under out-of-order
 * completions (4 device threads with delays). */
TEST(ext29_disk_size_at_completion)
{
	struct tfs *fs = mkfs(0, 0, 4);
	struct tfs_inode *ti = tfs_inode_new(fs);
	plat_host_bdev_set_delay(fs->bdev, 200000);
	uint8_t data[4096];
	fill(data, sizeof(data), 9);
	for (int i = 0; i < 32; i++)
		EXPECT_EQ_INT(tfs_write(ti, (uint64_t)i * 8192, data, 4096), 4096);   /* separate ioends */
	EXPECT_EQ_INT(ti->ino.disk_size, 0);
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, false, NULL), 0);
	uint64_t last = 0, deadline = plat_time_ns() + 5000000000ull;
	bool mono = true;
	while (plat_time_ns() < deadline) {
		uint64_t d = plat_load(&ti->ino.disk_size);
		if (d < last)
			mono = false;
		last = d;
		if (d == 31 * 8192 + 4096)
			break;
	}
	EXPECT(mono);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(ti->ino.disk_size, 31 * 8192 + 4096);
	EXPECT_EQ_INT(ti->persisted_size, 31 * 8192 + 4096);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* Background writeback threads write data without fsync. */
TEST(background_writeback_reaches_disk)
{
	struct tfs *fs = mkfs(4, 1, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[100000];
	fill(data, sizeof(data), 10);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	uint64_t deadline = plat_time_ns() + 3000000000ull;
	while (plat_time_ns() < deadline && plat_load(&ti->ino.disk_size) < sizeof(data))
		plat_sleep_ns(2000000);
	EXPECT_EQ_INT(ti->ino.disk_size, sizeof(data));
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, sizeof(data)), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* EXT-26: a hole found at writeback (truncate race) issues no I/O. */
TEST(ext26_hole_at_writeback_no_io)
{
	struct tfs *fs = mkfs(0, 0, 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[4096];
	fill(data, sizeof(data), 11);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	fs->map_hole_count = 1;
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, NULL), 0);
	EXPECT_EQ_INT(bstats(fs).writes, s0.writes);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* Scattered dirty blocks: one ioend per file run (each its own mapping
 * call and completion, EXT-28 merges only file-adjacent ones), but the
 * new blocks of consecutive runs follow each other on the device, so the
 * runs go to the device together: far fewer writes than ioends, and every
 * byte lands where its own mapping says. */
TEST(scattered_ioends_share_device_writes)
{
	struct tfs *fs = mkfs(0, 0, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 2 << 20, RUNS = SZ / 8192 };
	uint8_t *data = malloc(SZ), *model = calloc(1, SZ);
	fill(data, SZ, 5);
	for (unsigned i = 0; i < RUNS; i++) {
		uint64_t off = (uint64_t)i * 8192;      /* every other block */
		EXPECT_EQ_INT(tfs_write(ti, off, data + off, 4096), 4096);
		memcpy(model + off, data + off, 4096);
	}
	struct plat_host_bdev_stats s0 = bstats(fs);
	struct iomap_writepage_ctx wpc;
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, &wpc), 0);
	EXPECT_EQ_INT(pcache_wait_writeback_range(&ti->ino.mapping, 0, UINT64_MAX, PLAT_FOREVER), 0);
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT_EQ_INT(wpc.nr_ioends, RUNS);
	EXPECT(s1.writes - s0.writes <= RUNS / 32);
	EXPECT_EQ_INT(s1.write_bytes - s0.write_bytes, RUNS * 4096);
	EXPECT(s1.max_bio_bytes >= 64 * 4096);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(ti->ino.mapping.nr_dirty, 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, model, SZ - 4096), 0);
	pcache_invalidate_range(&ti->ino.mapping, 0, UINT64_MAX, false);
	uint8_t *back = malloc(SZ);
	EXPECT_EQ_INT(tfs_read(ti, 0, back, SZ), SZ - 4096);
	EXPECT(memcmp(back, model, SZ - 4096) == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(back);
	free(model);
	free(data);
}

/* EXT-30 for a shared device write: when it fails, it fails for every
 * ioend it carried -- no run is converted, each folio has the error,
 * fsync reports it once -- and a rewrite then goes through. */
TEST(ext30_shared_device_write_error_fails_every_ioend)
{
	struct tfs *fs = mkfs(0, 0, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { RUNS = 16 };
	uint8_t data[4096];
	fill(data, sizeof(data), 9);
	for (unsigned i = 0; i < RUNS; i++)
		EXPECT_EQ_INT(tfs_write(ti, (uint64_t)i * 8192, data, 4096), 4096);
	struct plat_host_bdev_stats s0 = bstats(fs);
	plat_host_bdev_inject(fs->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(tfs_fsync(ti), -PLAT_EIO);
	EXPECT_EQ_INT(bstats(fs).writes - s0.writes, 1);     /* all sixteen in one write */
	EXPECT_EQ_INT(fs->st.conversions, 0);
	unsigned errored = 0, unwritten = 0;
	for (unsigned i = 0; i < RUNS; i++) {
		unwritten += tfs_blk_get(ti, (uint64_t)i * 8192).state == TFS_UNWRITTEN;
		struct folio *f = pcache_lookup(&ti->ino.mapping, (uint64_t)i * 2);
		errored += f && folio_test(f, FOLIO_ERROR);
		if (f)
			folio_put(f);
	}
	EXPECT_EQ_INT(unwritten, RUNS);
	EXPECT_EQ_INT(errored, RUNS);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);          /* reported once */
	for (unsigned i = 0; i < RUNS; i++)
		EXPECT_EQ_INT(tfs_write(ti, (uint64_t)i * 8192, data, 4096), 4096);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	for (unsigned i = 0; i < RUNS; i++)
		EXPECT_EQ_INT(tfs_blk_get(ti, (uint64_t)i * 8192).state, TFS_MAPPED);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

static int blocker_release;
static void blocker_fn(struct iomap_work *w)
{
	(void)w;
	while (!__atomic_load_n(&blocker_release, __ATOMIC_ACQUIRE))
		plat_sleep_ns(100000);
}

/* EXT-28: completions queue per inode, are sorted and merged: four
 * adjacent 1 MiB ioends that finish while the completion worker is busy
 * cost one filesystem end_io call. */
TEST(ext28_completion_merges_adjacent_ioends)
{
	struct tfs_config cfg = { .dev_bytes = 64ull << 20, .blkbits = 12, .max_folio_order = 0,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 32ull << 20 };
	struct tfs *fs;
	EXPECT_EQ_INT(tfs_create(&cfg, 64ull << 20, 0, &fs), 0);
	struct tfs_inode *ti = tfs_inode_new(fs);
	enum { SZ = 4 << 20 };
	uint8_t *data = malloc(SZ);
	fill(data, SZ, 12);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, SZ), SZ);
	struct iomap_work blocker = { blocker_fn, NULL };
	blocker_release = 0;
	iomap_workq_queue(fs->wq, &blocker);
	struct iomap_writepage_ctx wpc;
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, &wpc), 0);
	EXPECT_EQ_INT(wpc.nr_ioends, 4);
	/* Wait until all four finished ioends sit on the inode's list. */
	uint64_t until = plat_time_ns() + 10000000000ull;
	unsigned queued = 0;
	while (queued < 4 && plat_time_ns() < until) {
		plat_sleep_ns(1000000);
		queued = iomap_ioends_completed(&ti->ino);
	}
	EXPECT_EQ_INT(queued, 4);
	__atomic_store_n(&blocker_release, 1, __ATOMIC_RELEASE);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(ti->ino.ioend_completions, 1);
	EXPECT_EQ_INT(fs->st.end_ios, 1);
	EXPECT_EQ_INT(ti->ino.disk_size, SZ);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, SZ), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
	free(data);
}

/* sync(): every dirty file of the cache is written back and waited for. */
TEST(pcache_sync_all_files)
{
	struct tfs *fs = mkfs(2, 0, 2);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t d1[30000], d2[50000];
	fill(d1, sizeof(d1), 13);
	fill(d2, sizeof(d2), 14);
	EXPECT_EQ_INT(tfs_write(a, 0, d1, sizeof(d1)), (int)sizeof(d1));
	EXPECT_EQ_INT(tfs_write(b, 100, d2, sizeof(d2)), (int)sizeof(d2));
	EXPECT_EQ_INT(pcache_sync(fs->pc, plat_time_ns() + 5000000000ull), 0);
	struct pcache_stats st;
	pcache_stats(fs->pc, &st);
	EXPECT_EQ_INT(st.dirty_bytes, 0);
	EXPECT_EQ_INT(a->ino.disk_size, sizeof(d1));
	EXPECT_EQ_INT(b->ino.disk_size, 100 + sizeof(d2));
	EXPECT_EQ_INT(tfs_disk_cmp(b, 100, d2, sizeof(d2)), 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* COW-34: writeback merges contiguous dirty folios into ioends of at most
 * 8 MiB: 20 MiB of contiguous dirty data goes out as bios of exactly the
 * cap (merging works) and never more (the cap holds). */
TEST(cow34_ioend_cap)
{
	struct tfs *fs = mkfs(4, 0, 2);
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[20 << 20], buf[20 << 20];
	fill(data, sizeof(data), 60);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int64_t)sizeof(data));
	struct plat_host_bdev_stats s0 = bstats(fs);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	struct plat_host_bdev_stats s1 = bstats(fs);
	EXPECT_EQ_INT(s1.max_bio_bytes, 8 << 20);
	EXPECT(s1.writes - s0.writes >= 3);
	EXPECT_EQ_INT(s1.write_bytes - s0.write_bytes, sizeof(data));
	EXPECT_EQ_INT(tfs_read_disk(ti, 0, buf, sizeof(buf)), 0);
	EXPECT(memcmp(buf, data, sizeof(buf)) == 0);
	EXPECT_EQ_INT(tfs_inode_free(ti), 0);
	tfs_destroy(fs);
}

TEST_MAIN()
