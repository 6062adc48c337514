/*
 * Data checksums (docs/format.md §6 DATA_CSUM): one crc32c per 4 KiB data
 * block, in the checksum tree (id 4), keyed by the device number of the
 * first block of a run (fs/csum_items.c: one item per contiguous run the
 * core hands the encoder), so data shared by snapshots and clones shares
 * its checksums.
 *
 * The iomap core runs this as a transform stage (iomap/xform.h) on every
 * map the file layer marks IOMAP_F_CSUM: the encoder (writeback and direct
 * writes, when the bytes go to their new blocks) records each block's
 * checksum; the decoder (buffered and direct reads, and the old bytes of a
 * partial-block write) verifies each block before anyone sees it.  A
 * mismatch, or a block with no checksum, is -EIO, counted in
 * m->csum_errors and logged with the inode, file offset and device
 * address.
 *
 * Data is always written to fresh blocks (fs/file.c), so the checksum of
 * a block referenced by a committed extent never changes; one recorded
 * before the write completes names a block no committed extent uses yet,
 * so a crash in between leaves a harmless item.
 */
#include "fs/file.h"
#include "iomap/xform.h"

#define BS CFS_BLOCK_SIZE

static struct cowfs_vnode *VN(struct iomap_inode *io) { return (struct cowfs_vnode *)io; }

/* The checksum tree, opened (created when `create`) on first use. */
static int csum_tree(struct cowfs_mount *m, bool create, struct cowfs_tree **out)
{
	if (!m->csum_tree) {
		int err = cowfs_tree_get(m->fs, CFS_TREE_CSUM, create, &m->csum_tree);
		if (err)
			return err;
	}
	*out = m->csum_tree;
	return 0;
}

/* m->lock is a leaf lock: the core may call a stage from a path that
 * already holds it (never on the hot paths, but be safe). */
static bool lock_leaf(struct cowfs_mount *m)
{
	if (plat_mutex_held(m->lock))
		return false;
	plat_mutex_lock(m->lock);
	return true;
}

/* The checksum of block `off` of in (n bytes); the core pads a short last
 * block with zeros on disk, so it is summed padded. */
static uint32_t csum_block(const uint8_t *in, uint64_t n, uint64_t off)
{
	if (n - off >= BS)
		return crc32c(0, in + off, BS);
	uint8_t blk[BS];
	plat_memset(blk, 0, BS);
	plat_memcpy(blk, in + off, n - off);
	return crc32c(0, blk, BS);
}

/* Checksums of a batch are computed before m->lock is taken: the lock is
 * the mount's, and summing megabytes under it stalled every writer and
 * reader of the filesystem behind the writeback thread. */
#define CSUM_BATCH 256

static int64_t csum_encode(struct iomap_inode *io, const struct iomap *map, uint64_t pos, uint64_t dev,
			   const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct cowfs_mount *m = VN(io)->m;
	(void)map;
	(void)pos;
	if (n > cap || dev % BS)
		return -PLAT_EINVAL;
	if (out != in)
		plat_memcpy(out, in, n);
	int err = 0;
	for (uint64_t base = 0; !err && base < n; base += (uint64_t)CSUM_BATCH * BS) {
		uint32_t sums[CSUM_BATCH];
		unsigned nb = 0;
		for (uint64_t off = base; off < n && nb < CSUM_BATCH; off += BS)
			sums[nb++] = csum_block(in, n, off);
		bool locked = lock_leaf(m);
		struct cowfs_tree *t;
		err = cowfs_writable(m->fs);
		if (!err)
			err = csum_tree(m, true, &t);
		/* One item for the batch's run (a reused block's old item is
		 * replaced). */
		if (!err)
			err = cowfs_csum_put(t, (dev + base) / BS, sums, nb);
		if (locked)
			plat_mutex_unlock(m->lock);
	}
	return err ? err : (int64_t)n;
}

/* The stored checksums of a batch are looked up under m->lock, the data
 * summed after it is dropped (see CSUM_BATCH). */
int cowfs_csum_verify(struct cowfs_mount *m, uint64_t ino, uint64_t pos, uint64_t dev, const uint8_t *in, uint64_t n)
{
	const char *bad = NULL;
	int err = 0;
	uint64_t off = 0;
	for (uint64_t base = 0; !err && !bad && base < n; base += (uint64_t)CSUM_BATCH * BS) {
		uint32_t want[CSUM_BATCH];
		unsigned nb = 0;
		bool locked = lock_leaf(m);
		struct cowfs_tree *t;
		err = csum_tree(m, false, &t);
		if (err == -PLAT_ENOENT) {
			bad = "missing (no checksum tree)";
			off = base;
			err = 0;
		}
		if (!err && !bad) {
			uint64_t left = (n - base + BS - 1) / BS, found;
			uint64_t want_n = left < CSUM_BATCH ? left : CSUM_BATCH;
			err = cowfs_csum_get(t, (dev + base) / BS, want_n, want, &found);
			nb = (unsigned)found;
			if (!err && found < want_n) {
				bad = "missing";
				off = base + found * BS;
			}
		}
		if (locked)
			plat_mutex_unlock(m->lock);
		/* Blocks before a missing one are checked first: a mismatch
		 * earlier in the range is the one reported. */
		for (unsigned i = 0; !err && i < nb; i++) {
			if (want[i] != crc32c(0, in + base + (uint64_t)i * BS, BS)) {
				bad = "mismatch";
				off = base + (uint64_t)i * BS;
				break;
			}
		}
	}
	if (bad) {
		bool locked = lock_leaf(m);
		m->csum_errors++;
		if (locked)
			plat_mutex_unlock(m->lock);
		plat_log(PLAT_LOG_ERR, "cowfs: inode %llu offset %llu (device byte %llu): data checksum %s",
			 (unsigned long long)ino, (unsigned long long)(pos + off), (unsigned long long)(dev + off), bad);
		err = -PLAT_EIO;
	}
	return err;
}

static int64_t csum_decode(struct iomap_inode *io, const struct iomap *map, uint64_t pos, uint64_t dev,
			   const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct cowfs_vnode *vn = VN(io);
	(void)map;
	if (n > cap || dev % BS || n % BS)
		return -PLAT_EINVAL;
	int err = cowfs_csum_verify(vn->m, vn->rec.ino, pos, dev, in, n);
	if (err)
		return err;
	if (out != in)
		plat_memcpy(out, in, n);
	return (int64_t)n;
}

static const struct iomap_xform_stage csum_stage = { "crc32c", IOMAP_F_CSUM, false, csum_encode, csum_decode,
						     .in_place = true };
static const struct iomap_xform_stage *const csum_stages[] = { &csum_stage };
const struct iomap_xform_ops cowfs_csum_xform = { csum_stages, 1 };
