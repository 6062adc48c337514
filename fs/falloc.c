/*
 * fallocate and seek hole/data (fs/vfs.h has the contract).
 *
 * Copy-on-write decides what "allocate" can mean: every write goes to new
 * blocks, so blocks set aside now could never be the ones a later write
 * uses.  cowfs_fallocate(0) therefore only checks that the range's
 * unallocated blocks fit in the free space and extends the size; it
 * reserves nothing (btrfs makes the same promise after a snapshot).
 *
 * Punch and zero range are the same operation here: the whole blocks of
 * the range lose their extents (released the way truncate releases them:
 * a block shared with a snapshot only loses this tree's reference, a block
 * freed loses its checksum), and the partial blocks at the edges are
 * zeroed through the page cache like the tail of a truncate.  Zero range
 * may also grow the size.
 *
 * Order, under the inode I/O lock held exclusive (no write, direct I/O or
 * size change runs meanwhile; direct I/O already issued is waited for):
 *   1. zero the partial edge blocks (the only step that can fail for lack
 *      of space, so it comes before anything is released);
 *   2. wait for writeback under way in the whole blocks (its completion
 *      remaps them: that must land before the punch) and drop their cached
 *      folios, dirty or not;
 *   3. under the filesystem lock, as one step of one transaction: release
 *      the delalloc reservations and the extents of the whole blocks, set
 *      the new size;
 *   4. drop the whole blocks' folios again: a buffered read that mapped
 *      the old extents before step 3 may have cached their bytes.
 */
#include "fs/file.h"
#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"
#include "iomap/report.h"

#define BS CFS_BLOCK_SIZE

static uint64_t down(uint64_t x) { return x & ~(uint64_t)(BS - 1); }
static uint64_t up(uint64_t x) { return (x + BS - 1) & ~(uint64_t)(BS - 1); }
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Lock held: blocks of [start, end) that would need new space to hold
 * data: neither in an extent nor reserved by a buffered write. */
static int unallocated_blocks(struct cowfs_vnode *vn, uint64_t start, uint64_t end, uint64_t *out)
{
	uint64_t pos = start, n = 0;
	while (pos < end) {
		struct cowfs_extent e;
		bool found;
		int err = cowfs_extent_find(vn->m, vn->rec.ino, pos, &e, &found);
		if (err)
			return err;
		if (found) {
			pos = e.off + (uint64_t)e.nblocks * BS;
			continue;
		}
		uint64_t hole_end = min64(e.off, end);
		n += (hole_end - pos) / BS - cowfs_file_reserved_in(vn, pos, hole_end);
		pos = hole_end;
	}
	*out = n;
	return 0;
}

static int falloc_alloc(struct cowfs_vnode *vn, uint64_t off, uint64_t len, bool keep, bool *grown)
{
	struct cowfs_mount *m = vn->m;
	uint64_t need;
	plat_mutex_lock(m->lock);
	int err = unallocated_blocks(vn, down(off), up(off + len), &need);
	if (!err)
		err = cowfs_file_room(m, need);
	if (!err && !keep && off + len > iomap_isize(&vn->io)) {
		plat_store(&vn->io.size, off + len);
		vn->rec.size = off + len;
		cowfs_vdirty(vn);
		*grown = true;
	}
	plat_mutex_unlock(m->lock);
	return err;
}

/* Zeroes [a, b) inside one block, below size (a hole with nothing
 * pending is left alone by the write path: it reads as zeros). */
static int zero_edge(struct cowfs_vnode *vn, uint64_t a, uint64_t b, uint64_t size)
{
	b = min64(b, size);
	return a < b ? iomap_zero_range(&vn->io, a, b - a, &cowfs_file_write_ops) : 0;
}

static int falloc_zero(struct cowfs_vnode *vn, uint64_t off, uint64_t len, bool grow)
{
	struct cowfs_mount *m = vn->m;
	uint64_t end = off + len, size = iomap_isize(&vn->io);
	uint64_t s = up(off), e = down(end);          /* the whole blocks: [s, e) */
	int err;
	if (end <= s) {
		err = zero_edge(vn, off, end, size);
	} else {
		err = off < s ? zero_edge(vn, off, s, size) : 0;
		if (!err && e < end)
			err = zero_edge(vn, e, end, size);
	}
	if (err)
		return err;
	bool whole = s < e;
	if (whole) {
		err = pcache_wait_writeback_range(&vn->io.mapping, s, e, plat_time_ns() + PCACHE_WAIT_NS);
		if (!err)
			err = pcache_invalidate_range(&vn->io.mapping, s, e, true);
		if (err)
			return err;
	}
	plat_mutex_lock(m->lock);
	err = cowfs_writable(m->fs);
	if (!err && whole) {
		cowfs_file_forget_range(vn, s, e);
		err = cowfs_extent_punch(m, vn, s, e);
		if (err)
			cowfs_fail(m->fs, err, "inode %llu: punching a hole failed", (unsigned long long)vn->rec.ino);
	}
	/* The size a write set is recorded by its writeback; a dirty block
	 * dropped above will never be written, so record what it carried. */
	uint64_t carried = min64(iomap_isize(&vn->io), e);
	if (!err && whole && carried > vn->rec.size) {
		vn->rec.size = carried;
		cowfs_vdirty(vn);
		if (vn->io.disk_size < carried)
			plat_store(&vn->io.disk_size, carried);
	}
	if (!err && grow && end > size) {
		plat_store(&vn->io.size, end);
		vn->rec.size = end;
		cowfs_vdirty(vn);
	}
	plat_mutex_unlock(m->lock);
	if (!err && whole)
		err = pcache_invalidate_range(&vn->io.mapping, s, e, true);
	return err;
}

int cowfs_fallocate(struct cowfs_mount *m, uint64_t ino, unsigned mode, uint64_t off, uint64_t len)
{
	bool keep = mode & CFS_FALLOC_KEEP_SIZE;
	unsigned op = mode & ~CFS_FALLOC_KEEP_SIZE;
	bool shift = op & (CFS_FALLOC_COLLAPSE_RANGE | CFS_FALLOC_INSERT_RANGE);
	if (shift && mode != CFS_FALLOC_COLLAPSE_RANGE && mode != CFS_FALLOC_INSERT_RANGE)
		return -PLAT_EINVAL;     /* Linux: these two take no other flag */
	if (!shift && ((op && op != CFS_FALLOC_PUNCH_HOLE && op != CFS_FALLOC_ZERO_RANGE) ||
		       (op == CFS_FALLOC_PUNCH_HOLE && !keep)))
		return -PLAT_ENOTSUP;
	if (!len)
		return -PLAT_EINVAL;
	if (off + len < off || off + len > CFS_FILE_MAX_BYTES)
		return -PLAT_EFBIG;
	int err = cowfs_writable(m->fs);
	if (err)
		return err;
	struct cowfs_vnode *vn;
	if ((err = cowfs_file_get(m, ino, &vn)))
		return err;
	bool modified = false;
	/* A lock wait that timed out holds nothing: say so, change nothing. */
	if ((err = iomap_lock(&vn->io.io_lock, 0))) {
		cowfs_file_put(vn);
		return err;
	}
	err = iomap_dio_wait(&vn->io, plat_time_ns() + PCACHE_WAIT_NS);
	if (!err && shift) {
		err = cowfs_falloc_shift(vn, op == CFS_FALLOC_COLLAPSE_RANGE, off, len);
		modified = !err;
	} else if (!err && !op) {
		err = falloc_alloc(vn, off, len, keep, &modified);
	} else if (!err) {
		err = falloc_zero(vn, off, len, op == CFS_FALLOC_ZERO_RANGE && !keep);
		modified = !err;
	}
	iomap_unlock(&vn->io.io_lock, 0);
	if (modified)
		cowfs_file_touch(vn, true);
	cowfs_file_put(vn);
	return err;
}

/* ---- seek: the on-disk mapping, with data not yet in an extent
 * (delalloc, writeback in flight) reported as DELALLOC ---- */

/* fiemap's SHARED flag (lock held): the extent's blocks are also another
 * file's (a reflink: DATA_REF counts) or another tree's (the leaf holding
 * the EXTENT item is shared with a snapshot or clone).  The mapping is cut
 * where the blocks' own sharing changes, looking at most REPORT_REF_SPAN
 * blocks per call (fiemap merges the pieces again). */
#define REPORT_REF_SPAN 256u
static int report_shared(struct cowfs_vnode *vn, struct iomap *map)
{
	struct cowfs *fs = cowfs_vfs_fs(vn->m);
	struct cowfs_key k = { vn->rec.ino, CFS_ITEM_EXTENT, map->offset };
	bool leaf_shared;
	int err = cowfs_bt_shared(vn->m->tree, &k, &leaf_shared);
	uint64_t blk = map->addr / BS, n = map->length / BS;
	uint32_t refs;
	if (err || (err = cowfs_data_ref_get(fs, blk, &refs)))
		return err;
	bool first = refs > 1;
	for (uint64_t i = 1; i < n && i < REPORT_REF_SPAN; i++) {
		if ((err = cowfs_data_ref_get(fs, blk + i, &refs)))
			return err;
		if ((refs > 1) != first) {
			map->length = i * BS;
			break;
		}
	}
	if (n > REPORT_REF_SPAN && map->length > (uint64_t)REPORT_REF_SPAN * BS)
		map->length = (uint64_t)REPORT_REF_SPAN * BS;
	if (first || leaf_shared)
		map->flags |= IOMAP_F_SHARED;
	return 0;
}

static int report_begin(struct iomap_inode *io, uint64_t pos, uint64_t len, unsigned flags, struct iomap *iomap,
			struct iomap *srcmap)
{
	struct cowfs_vnode *vn = (struct cowfs_vnode *)io;
	uint64_t next, start = down(pos);
	(void)len;
	(void)flags;
	(void)srcmap;
	plat_mutex_lock(vn->m->lock);
	int err = 0;
	if (cowfs_file_pending(vn, start, &next)) {
		*iomap = (struct iomap){ .offset = start, .length = next - start, .addr = IOMAP_NULL_ADDR,
					 .bdev = vn->m->bdev, .type = IOMAP_DELALLOC };
	} else {
		err = cowfs_file_map_disk(vn, start, iomap);
		if (!err && next < iomap->offset + iomap->length)
			iomap->length = next - iomap->offset;      /* pending data ahead */
		if (!err && iomap->type == IOMAP_MAPPED)
			err = report_shared(vn, iomap);
	}
	plat_mutex_unlock(vn->m->lock);
	return err;
}

static const struct iomap_ops report_ops = { report_begin, NULL };

int cowfs_seek(struct cowfs_mount *m, uint64_t ino, uint64_t off, int whence, uint64_t *result)
{
	if (whence != CFS_SEEK_DATA && whence != CFS_SEEK_HOLE)
		return -PLAT_EINVAL;
	struct cowfs_vnode *vn;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	int64_t r = iomap_lock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
	if (!r) {
		r = whence == CFS_SEEK_DATA ? iomap_seek_data(&vn->io, off, &report_ops)
					    : iomap_seek_hole(&vn->io, off, &report_ops);
		iomap_unlock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
	}
	cowfs_file_put(vn);
	if (r < 0)
		return (int)r;
	*result = (uint64_t)r;
	return 0;
}

int cowfs_fiemap(struct cowfs_mount *m, uint64_t ino, uint64_t start, uint64_t len,
		 struct iomap_fiemap_extent *out, unsigned max)
{
	struct cowfs_vnode *vn;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	int n = iomap_lock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
	if (!n) {
		n = iomap_fiemap(&vn->io, start, len, &report_ops, out, max);
		iomap_unlock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
	}
	cowfs_file_put(vn);
	return n;
}
