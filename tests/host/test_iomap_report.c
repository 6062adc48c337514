/*
 * Seek hole/data and fiemap over delalloc, COW/shared, hole and unwritten
 * ranges (COW §8.7 "seek_data/seek_hole/fiemap"; COW-2 type switches).
 */
#define TEST_SUITE "iomap_report"
#include "tests/host/test.h"
#include "tests/host/testfs.h"
#include "iomap/report.h"

static struct tfs *mkfs(void)
{
	struct tfs_config cfg = { .dev_bytes = 32ull << 20, .blkbits = 12, .max_folio_order = 2,
				  .bdev_threads = 1, .wq_threads = 1, .max_file_bytes = 8ull << 20 };
	struct tfs *fs = NULL;
	tfs_create(&cfg, 16ull << 20, 0, &fs);
	return fs;
}

/* Layout (4 KiB blocks):
 *   [0,16K)   hole
 *   [16K,32K) mapped, shared with another file (COW source)
 *   [32K,48K) hole
 *   [48K,64K) unwritten; block 13 has dirty cached data
 *   [64K,72K) delalloc (dirty cache)
 *   [72K,80K) hole, EOF at 80K */
static struct tfs_inode *layout(struct tfs *fs, struct tfs_inode **other)
{
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	static uint8_t d[16384];
	memset(d, 7, sizeof(d));
	tfs_set_mapped(a, 0, 16384, d);
	tfs_clone(b, 16384, a, 0, 16384);
	tfs_set_unwritten(b, 49152, 16384);
	tfs_write(b, 53248 + 10, "x", 1);
	tfs_write(b, 65536, d, 8192);
	tfs_truncate(b, 81920);
	*other = a;
	return b;
}

TEST(seek_data_hole_all_types)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *a, *b = layout(fs, &a);
	const struct iomap_ops *o = &tfs_read_ops;
	EXPECT_EQ_INT(iomap_seek_data(&b->ino, 0, o), 16384);
	EXPECT_EQ_INT(iomap_seek_hole(&b->ino, 16384, o), 32768);
	EXPECT_EQ_INT(iomap_seek_data(&b->ino, 32768, o), 53248);   /* cached block in unwritten */
	EXPECT_EQ_INT(iomap_seek_hole(&b->ino, 53248, o), 57344);
	EXPECT_EQ_INT(iomap_seek_data(&b->ino, 57344, o), 65536);   /* delalloc */
	EXPECT_EQ_INT(iomap_seek_hole(&b->ino, 65536, o), 73728);
	EXPECT_EQ_INT(iomap_seek_data(&b->ino, 73728, o), -PLAT_ENXIO);
	EXPECT_EQ_INT(iomap_seek_hole(&b->ino, 79000, o), 79000);
	EXPECT_EQ_INT(iomap_seek_hole(&b->ino, 81920, o), -PLAT_ENXIO);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

TEST(fiemap_flags)
{
	struct tfs *fs = mkfs();
	struct tfs_inode *a, *b = layout(fs, &a);
	struct iomap_fiemap_extent ex[8];
	int n = iomap_fiemap(&b->ino, 0, 81920, &tfs_read_ops, ex, 8);
	EXPECT_EQ_INT(n, 3);
	EXPECT(ex[0].logical == 16384 && ex[0].length == 16384 && ex[0].physical != 0);
	EXPECT(ex[0].flags & IOMAP_FIEMAP_SHARED);
	EXPECT(ex[1].logical == 49152 && ex[1].length == 16384 && (ex[1].flags & IOMAP_FIEMAP_UNWRITTEN));
	EXPECT(ex[2].logical == 65536 && (ex[2].flags & IOMAP_FIEMAP_DELALLOC) && (ex[2].flags & IOMAP_FIEMAP_UNKNOWN));
	/* After a COW write the written block reports SHARED (via the write
	 * mapping) until remap; after fsync it is a plain extent. */
	tfs_fsync(b);
	n = iomap_fiemap(&b->ino, 0, 81920, &tfs_read_ops, ex, 8);
	EXPECT(n >= 2);
	EXPECT(!(ex[n - 1].flags & IOMAP_FIEMAP_DELALLOC));
	n = iomap_fiemap(&b->ino, 0, 81920, &tfs_read_ops, ex, 1);
	EXPECT_EQ_INT(n, 1);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

TEST_MAIN()
