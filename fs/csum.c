/*
 * Data checksums (docs/format.md §6 DATA_CSUM): one crc32c per 4 KiB data
 * block, in the checksum tree (id 4), keyed by the block's device number,
 * so data shared by snapshots and clones shares its checksums.
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

static int64_t csum_encode(struct iomap_inode *io, const struct iomap *map, uint64_t pos, uint64_t dev,
			   const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct cowfs_mount *m = VN(io)->m;
	(void)map;
	(void)pos;
	if (n > cap || dev % BS)
		return -PLAT_EINVAL;
	plat_memcpy(out, in, n);
	bool locked = lock_leaf(m);
	struct cowfs_tree *t;
	int err = cowfs_writable(m->fs);
	if (!err)
		err = csum_tree(m, true, &t);
	for (uint64_t off = 0; !err && off < n; off += BS) {
		uint8_t v[4];
		uint64_t len = n - off < BS ? n - off : BS;
		uint8_t blk[BS];
		/* The core pads the last block with zeros on disk. */
		plat_memset(blk, 0, BS);
		plat_memcpy(blk, in + off, len);
		cfs_put32(v, crc32c(0, blk, BS));
		struct cowfs_key k = { (dev + off) / BS, CFS_ITEM_DATA_CSUM, 0 };
		err = cowfs_bt_insert(t, &k, v, sizeof(v));
		if (err == -PLAT_EEXIST)     /* a reused block: its old item */
			err = cowfs_bt_update(t, &k, v, sizeof(v));
	}
	if (locked)
		plat_mutex_unlock(m->lock);
	return err ? err : (int64_t)n;
}

int cowfs_csum_verify(struct cowfs_mount *m, uint64_t ino, uint64_t pos, uint64_t dev, const uint8_t *in, uint64_t n)
{
	bool locked = lock_leaf(m);
	struct cowfs_tree *t;
	const char *bad = NULL;
	int err = csum_tree(m, false, &t);
	if (err == -PLAT_ENOENT) {
		bad = "missing (no checksum tree)";
		err = 0;
	}
	uint64_t off = 0;
	for (; !err && !bad && off < n; off += BS) {
		uint8_t v[4];
		uint32_t len;
		struct cowfs_key k = { (dev + off) / BS, CFS_ITEM_DATA_CSUM, 0 };
		err = cowfs_bt_lookup(t, &k, v, sizeof(v), &len);
		if (err == -PLAT_ENOENT || (!err && len != sizeof(v))) {
			bad = "missing";
			err = 0;
		} else if (!err && cfs_get32(v) != crc32c(0, in + off, BS)) {
			bad = "mismatch";
		}
		if (bad)
			break;
	}
	if (bad) {
		m->csum_errors++;
		plat_log(PLAT_LOG_ERR, "cowfs: inode %llu offset %llu (device byte %llu): data checksum %s",
			 (unsigned long long)ino, (unsigned long long)(pos + off), (unsigned long long)(dev + off), bad);
		err = -PLAT_EIO;
	}
	if (locked)
		plat_mutex_unlock(m->lock);
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
	plat_memcpy(out, in, n);
	return (int64_t)n;
}

static const struct iomap_xform_stage csum_stage = { "crc32c", IOMAP_F_CSUM, false, csum_encode, csum_decode };
static const struct iomap_xform_stage *const csum_stages[] = { &csum_stage };
const struct iomap_xform_ops cowfs_csum_xform = { csum_stages, 1 };
