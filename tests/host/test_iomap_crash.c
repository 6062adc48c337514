/*
 * Data durability under a simulated power cut: the host device keeps
 * non-FUA writes in a volatile cache until FLUSH, and "crash" drops it.
 * COW-19 / §8.7 "O_DSYNC buffered write durable after return", DIO-14 and
 * DIO-T1 (O_DIRECT|O_DSYNC: allocating write flushed, pure overwrite FUA).
 * Only data is modelled: testfs metadata lives in memory and survives.
 */
#define TEST_SUITE "iomap_crash"
#include "tests/host/test.h"
#include "tests/host/testfs.h"

static struct tfs *mkfs(void)
{
	struct tfs_config cfg = { .dev_bytes = 16ull << 20, .blkbits = 12, .max_folio_order = 4,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 4ull << 20 };
	struct tfs *fs = NULL;
	tfs_create(&cfg, 16ull << 20, 0, &fs);
	plat_host_bdev_set_volatile(fs->bdev, true);
	return fs;
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 71 + seed * 3) | 1);
}

/* The model can fail: written back without a flush, data is lost. */
TEST(unflushed_writeback_is_lost)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[32768];
	fill(data, sizeof(data), 1);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(iomap_writepages(&ti->ino, 0, UINT64_MAX, true, NULL), 0);
	EXPECT_EQ_INT(pcache_wait_writeback_range(&ti->ino.mapping, 0, UINT64_MAX, PLAT_FOREVER), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, sizeof(data)), 0);          /* visible before the cut */
	plat_host_bdev_crash(fs->bdev);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, data, sizeof(data)), 1);          /* gone after it */
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-19: buffered write + range fsync (what an O_DSYNC buffered write
 * does before returning) survives the cut. */
TEST(cow19_dsync_buffered_write_durable)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t data[50000];
	fill(data, sizeof(data), 2);
	EXPECT_EQ_INT(tfs_write(ti, 1000, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(iomap_fsync(&ti->ino, 1000, 1000 + sizeof(data)), 0);
	plat_host_bdev_crash(fs->bdev);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 1000, data, sizeof(data)), 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-T1 / DIO-14: O_DIRECT|O_DSYNC is durable on return, both for an
 * allocating write (device flush) and for a pure overwrite (FUA, no
 * flush); without DSYNC the cut may lose it. */
TEST(dio_t1_dsync_direct_write_durable)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *ti = tfs_inode_new(fs);
	static uint8_t a[16384], b[16384], c[16384];
	fill(a, sizeof(a), 3);
	fill(b, sizeof(b), 4);
	fill(c, sizeof(c), 5);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, a, sizeof(a), IOMAP_DIO_DSYNC), (int)sizeof(a));   /* allocating */
	plat_host_bdev_crash(fs->bdev);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, a, sizeof(a)), 0);
	struct plat_host_bdev_stats s0, s1;
	plat_host_bdev_stats(fs->bdev, &s0);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, b, sizeof(b), IOMAP_DIO_DSYNC), (int)sizeof(b));   /* overwrite */
	plat_host_bdev_stats(fs->bdev, &s1);
	EXPECT(s1.fua_writes > s0.fua_writes);
	plat_host_bdev_crash(fs->bdev);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, b, sizeof(b)), 0);
	EXPECT_EQ_INT(tfs_dio_write(ti, 0, c, sizeof(c), 0), (int)sizeof(c));                  /* no DSYNC */
	plat_host_bdev_crash(fs->bdev);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, b, sizeof(b)), 0);             /* the old data, not garbage */
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

TEST_MAIN()
