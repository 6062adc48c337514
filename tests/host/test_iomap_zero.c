/*
 * Zero range, truncate of a partial tail block, unshare, clone.
 * COW-13/14/41, DIO-38/T17, EXT-34/35.
 */
#define TEST_SUITE "iomap_zero"
#include "tests/host/test.h"
#include "tests/host/testfs.h"

static struct tfs *mkfs(unsigned blkbits)
{
	struct tfs_config cfg = { .dev_bytes = 32ull << 20, .blkbits = blkbits, .max_folio_order = 4,
				  .bdev_threads = 2, .wq_threads = 1, .max_file_bytes = 8ull << 20 };
	struct tfs *fs = NULL;
	if (tfs_create(&cfg, 32ull << 20, 0, &fs))
		return NULL;
	return fs;
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 29 + seed * 13) | 1);
}

static int zero(struct tfs_inode *ti, uint64_t pos, uint64_t len)
{
	iomap_lock(&ti->ino.io_lock, 0);
	int r = iomap_zero_range(&ti->ino, pos, len, &tfs_write_ops);
	iomap_unlock(&ti->ino.io_lock, 0);
	return r;
}

/* EXT-34 / §4.6 zeroing correctness: unaligned head and tail over written
 * blocks, over dirty delalloc, and i_size unchanged. */
TEST(ext34_zero_range_unaligned)
{
	struct tfs *fs = mkfs(12);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[65536], buf[65536], model[65536];
	fill(data, sizeof(data), 1);
	tfs_set_mapped(ti, 0, 32768, data);                 /* written */
	EXPECT_EQ_INT(tfs_write(ti, 32768, data + 32768, 32768), 32768);   /* dirty delalloc */
	memcpy(model, data, sizeof(model));
	EXPECT_EQ_INT(zero(ti, 1000, 9000), 0);
	memset(model + 1000, 0, 9000);
	EXPECT_EQ_INT(zero(ti, 40000, 5000), 0);
	memset(model + 40000, 0, 5000);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 65536);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), 65536);
	EXPECT(memcmp(buf, model, sizeof(buf)) == 0);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(ti, 0, model, sizeof(buf)), 0);
	/* Zeroing past EOF does not extend the file. */
	EXPECT_EQ_INT(zero(ti, 70000, 1000), 0);
	EXPECT_EQ_INT(iomap_isize(&ti->ino), 65536);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* DIO-38 / DIO-T17 / EXT-35: zero range over unwritten extents zeroes
 * dirty cached data, creates no folios over clean unwritten ranges and
 * leaves clean folios untouched; holes are skipped. */
TEST(dio_t17_zero_unwritten_with_dirty_cache)
{
	struct tfs *fs = mkfs(12);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t buf[65536];
	tfs_set_unwritten(ti, 0, 65536);
	/* Dirty data in blocks 2..3 of the unwritten extent. */
	EXPECT_EQ_INT(tfs_write(ti, 8192, "XXXXXXXXXXXXXXXXXXXX", 20), 20);
	uint64_t folios0 = ti->ino.mapping.nr_folios;
	EXPECT_EQ_INT(zero(ti, 0, 65536), 0);
	EXPECT_EQ_INT(ti->ino.mapping.nr_folios, folios0);   /* nothing created */
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), 65536);
	bool z = true;
	for (int i = 0; i < 65536; i++)
		z = z && buf[i] == 0;
	EXPECT(z);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_read_disk(ti, 8192, buf, 4096), 0);
	EXPECT(buf[0] == 0 && buf[19] == 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-13 / §8.7: zero range and truncate down into a shared extent:
 * partial blocks use RMW into a new location; the shared extent and the
 * clone source are never modified. */
TEST(cow13_zero_and_truncate_on_shared_extent)
{
	struct tfs *fs = mkfs(12);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t old[32768], buf[32768], model[32768];
	fill(old, sizeof(old), 2);
	tfs_set_mapped(a, 0, sizeof(old), old);
	tfs_clone(b, 0, a, 0, sizeof(old));
	memcpy(model, old, sizeof(model));
	EXPECT_EQ_INT(zero(b, 5000, 100), 0);
	memset(model + 5000, 0, 100);
	EXPECT_EQ_INT(tfs_truncate(b, 20000), 0);
	memset(model + 20000, 0, sizeof(model) - 20000);
	EXPECT_EQ_INT(iomap_isize(&b->ino), 20000);
	EXPECT_EQ_INT(tfs_read(b, 0, buf, sizeof(buf)), 20000);
	EXPECT(memcmp(buf, model, 20000) == 0);
	EXPECT_EQ_INT(tfs_fsync(b), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(b, 0, model, 20480), 0);    /* tail of block 4 zero on disk */
	EXPECT_EQ_INT(fs->st.remaps, 2);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, old, sizeof(buf)), 0);
	/* Truncate down then extend: bytes past the old EOF read as zero
	 * from cache and from disk (EXT-35). */
	EXPECT_EQ_INT(tfs_truncate(b, 30000), 0);
	EXPECT_EQ_INT(tfs_read(b, 0, buf, sizeof(buf)), 30000);
	EXPECT(memcmp(buf, model, 20000) == 0);
	bool z = true;
	for (int i = 20000; i < 30000; i++)
		z = z && buf[i] == 0;
	EXPECT(z);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* Truncate of a partial tail block with 1 KiB blocks on a dirty folio. */
TEST(ext35_truncate_partial_tail_small_blocks)
{
	struct tfs *fs = mkfs(10);
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t data[16384], buf[16384];
	fill(data, sizeof(data), 3);
	EXPECT_EQ_INT(tfs_write(ti, 0, data, sizeof(data)), (int)sizeof(data));
	EXPECT_EQ_INT(tfs_truncate(ti, 5000), 0);
	EXPECT_EQ_INT(tfs_truncate(ti, 16384), 0);
	EXPECT_EQ_INT(tfs_read(ti, 0, buf, sizeof(buf)), 16384);
	EXPECT(memcmp(buf, data, 5000) == 0);
	bool z = true;
	for (int i = 5000; i < 16384; i++)
		z = z && buf[i] == 0;
	EXPECT(z);
	EXPECT_EQ_INT(tfs_fsync(ti), 0);
	EXPECT_EQ_INT(tfs_read_disk(ti, 0, buf, sizeof(buf)), 0);
	z = memcmp(buf, data, 5000) == 0;
	for (int i = 5000; i < 16384; i++)
		z = z && buf[i] == 0;
	EXPECT(z);
	EXPECT_EQ_INT(fs->reserved, 0);
	tfs_inode_free(ti);
	tfs_destroy(fs);
}

/* COW-14: unshare reads every shared block from the source, writes it to
 * new blocks, leaves contents and size unchanged. */
TEST(cow14_unshare)
{
	struct tfs *fs = mkfs(12);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t old[32768];
	fill(old, sizeof(old), 4);
	tfs_set_mapped(a, 0, sizeof(old), old);
	tfs_clone(b, 0, a, 0, sizeof(old));
	iomap_lock(&b->ino.io_lock, 0);
	EXPECT_EQ_INT(iomap_file_unshare(&b->ino, 0, 32768, &tfs_write_ops), 0);
	iomap_unlock(&b->ino.io_lock, 0);
	EXPECT_EQ_INT(tfs_fsync(b), 0);
	for (uint64_t off = 0; off < sizeof(old); off += 4096)
		EXPECT(tfs_blk_get(b, off).addr != tfs_blk_get(a, off).addr);
	EXPECT_EQ_INT(fs->st.remaps, 8);
	EXPECT_EQ_INT(iomap_isize(&b->ino), 32768);
	EXPECT_EQ_INT(tfs_disk_cmp(b, 0, old, sizeof(old)), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, old, sizeof(old)), 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

/* COW-41 / §8.7 clone: the destination's cached data is invalidated so a
 * read after clone sees the new mapping; then a partial-block write. */
TEST(cow41_clone_invalidates_destination_cache)
{
	struct tfs *fs = mkfs(12);
	struct tfs_inode *a = tfs_inode_new(fs), *b = tfs_inode_new(fs);
	uint8_t da[16384], db[16384], buf[16384];
	fill(da, sizeof(da), 5);
	fill(db, sizeof(db), 6);
	tfs_set_mapped(a, 0, sizeof(da), da);
	EXPECT_EQ_INT(tfs_write(b, 0, db, sizeof(db)), (int)sizeof(db));
	EXPECT_EQ_INT(tfs_read(b, 0, buf, sizeof(buf)), (int)sizeof(buf));   /* cached */
	EXPECT_EQ_INT(tfs_clone(b, 0, a, 0, sizeof(da)), 0);
	EXPECT_EQ_INT(tfs_read(b, 0, buf, sizeof(buf)), (int)sizeof(buf));
	EXPECT(memcmp(buf, da, sizeof(buf)) == 0);
	EXPECT_EQ_INT(tfs_write(b, 4097, "zz", 2), 2);
	EXPECT_EQ_INT(tfs_read(b, 0, buf, sizeof(buf)), (int)sizeof(buf));
	EXPECT(memcmp(buf + 4097, "zz", 2) == 0 && memcmp(buf, da, 4097) == 0 &&
	       memcmp(buf + 4099, da + 4099, sizeof(buf) - 4099) == 0);
	EXPECT_EQ_INT(tfs_fsync(b), 0);
	EXPECT_EQ_INT(tfs_disk_cmp(a, 0, da, sizeof(buf)), 0);
	tfs_inode_free(a);
	tfs_inode_free(b);
	tfs_destroy(fs);
}

TEST_MAIN()
