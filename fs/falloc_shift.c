/*
 * fallocate's COLLAPSE_RANGE and INSERT_RANGE (fs/vfs.h has the contract).
 *
 * The extents tree is keyed by file offset (docs/format.md §6), so moving
 * the file's tail is a change of keys only: every EXTENT item at or after
 * the range is deleted and inserted again at its offset minus (collapse)
 * or plus (insert) the length, naming the same blocks with the same gen.
 * No data moves and no reference changes: an item deleted and one
 * inserted in the same tree naming the same blocks leave every DATA_REF
 * count as it was (a leaf copied on the way because a snapshot shares it
 * counts its items once, as for any change), and the checksums are keyed
 * by block.  Collapse first releases the range through the punch path
 * (dataref aware); insert first cuts the extent that straddles the offset
 * in two.
 *
 * Order, under the inode I/O lock held exclusive (no write, direct I/O,
 * size change or punch runs meanwhile; direct I/O issued is waited for):
 *   1. the refusals from the arguments and the size;
 *   2. everything cached from the offset's block to the end of file
 *      written back, waited for and dropped: the tail is moved on disk, so
 *      it must all be there and no folio may keep its old place;
 *   3. under the filesystem lock, as one step of one transaction: the
 *      remaining refusals (read-only, data still pending after a failed
 *      writeback, no room for the metadata), then the changes -- release
 *      (collapse) or split (insert), the keys moved, size, mtime, ctime.
 *      A failure after the first change makes the filesystem read-only
 *      (the last commit stays intact), so a power cut shows the file
 *      either as it was or as it is after the call, never half shifted;
 *   4. the folios of the moved range dropped again (a buffered read that
 *      mapped the old extents before step 3 may have cached their bytes).
 *
 * fsync: the intent log records new extents of written data only, not
 * moved ones, so the file is unloggable for the running transaction
 * (nolog_gen, as after a truncate or a reflink): its fsync commits.
 */
#include "fs/file.h"
#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"

#define BS CFS_BLOCK_SIZE

static uint64_t down(uint64_t x) { return x & ~(uint64_t)(BS - 1); }

struct shift_ext { uint64_t off, blk, gen; uint32_t n; };

struct shift_list {
	struct shift_ext *e;
	uint64_t n, cap;
};

static int shift_collect_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct shift_list *l = arg;
	if (k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_SIZE)
		return 0;
	if (l->n == l->cap) {
		uint64_t cap = l->cap ? 2 * l->cap : 64;
		struct shift_ext *ne = plat_alloc(cap * sizeof(*ne));
		if (!ne)
			return -PLAT_ENOMEM;
		if (l->n)
			plat_memcpy(ne, l->e, l->n * sizeof(*ne));
		plat_free(l->e);
		l->e = ne;
		l->cap = cap;
	}
	const uint8_t *d = data;
	l->e[l->n++] = (struct shift_ext){ k->offset, cfs_get64(d), cfs_get64(d + 16), cfs_get32(d + 8) };
	return 0;
}

/* Lock held: the EXTENT items of ino starting at or after from. */
static int shift_collect(struct cowfs_mount *m, uint64_t ino, uint64_t from, struct shift_list *l)
{
	struct cowfs_key a = { ino, CFS_ITEM_EXTENT, from }, b = { ino, CFS_ITEM_EXTENT, UINT64_MAX };
	int err = cowfs_bt_iterate(m->tree, &a, &b, shift_collect_cb, l);
	return err < 0 ? err : 0;
}

/* Lock held: an extent reaching over pos (block aligned) becomes two
 * items meeting at pos, so every byte at or after pos has its own keys. */
static int split_at(struct cowfs_mount *m, uint64_t ino, uint64_t pos)
{
	struct cowfs_extent e;
	bool found;
	int err = cowfs_extent_find(m, ino, pos, &e, &found);
	if (err || !found || e.off == pos)
		return err;
	uint32_t left = (uint32_t)((pos - e.off) / BS);
	struct cowfs_key k = { ino, CFS_ITEM_EXTENT, e.off };
	if ((err = cowfs_bt_delete(m->tree, &k)) ||
	    (err = cowfs_extent_item_put(m->tree, ino, e.off, e.disk_block, left, e.gen)))
		return err;
	return cowfs_extent_item_put(m->tree, ino, pos, e.disk_block + left, e.nblocks - left, e.gen);
}

/* Lock held, every refusal decided: step 3's changes. */
static int shift_apply(struct cowfs_vnode *vn, bool collapse, uint64_t off, uint64_t len, struct shift_list *l)
{
	struct cowfs_mount *m = vn->m;
	uint64_t ino = vn->rec.ino;
	int err = collapse ? cowfs_extent_punch(m, vn, off, off + len) : split_at(m, ino, off);
	if (!err)
		err = shift_collect(m, ino, off, l);
	/* All go first, then all come back: no new key can meet an old one. */
	for (uint64_t i = 0; i < l->n && !err; i++) {
		struct cowfs_key k = { ino, CFS_ITEM_EXTENT, l->e[i].off };
		err = cowfs_bt_delete(m->tree, &k);
	}
	for (uint64_t i = 0; i < l->n && !err; i++) {
		uint64_t to = collapse ? l->e[i].off - len : l->e[i].off + len;
		err = cowfs_extent_item_put(m->tree, ino, to, l->e[i].blk, l->e[i].n, l->e[i].gen);
	}
	if (err)
		return err;
	uint64_t size = collapse ? iomap_isize(&vn->io) - len : iomap_isize(&vn->io) + len;
	plat_store(&vn->io.size, size);
	plat_store(&vn->io.disk_size, size);
	vn->rec.size = size;
	vn->rec.mtime = vn->rec.ctime = cowfs_now();
	vn->nolog_gen = m->fs->gen;      /* the log cannot express moved extents: fsync commits */
	cowfs_vdirty(vn);
	return 0;
}

/* Lock held: items of ino from off on (the metadata room to ask for). */
static int count_from(struct cowfs_mount *m, uint64_t ino, uint64_t off, uint64_t *n)
{
	struct shift_list l = { 0 };
	int err = shift_collect(m, ino, off, &l);
	*n = l.n;
	plat_free(l.e);
	return err;
}

int cowfs_falloc_shift(struct cowfs_vnode *vn, bool collapse, uint64_t off, uint64_t len)
{
	struct cowfs_mount *m = vn->m;
	if ((off | len) & (BS - 1))
		return -PLAT_EINVAL;
	uint64_t size = iomap_isize(&vn->io);
	if (collapse ? off + len >= size : off >= size)
		return -PLAT_EINVAL;
	if (!collapse && (size + len < size || size + len > CFS_FILE_MAX_BYTES))
		return -PLAT_EFBIG;
	/* Step 2: the whole tail on disk, no folio left of it. */
	uint64_t from = down(off);
	int err = iomap_writepages(&vn->io, from, UINT64_MAX, true, NULL);
	int e2 = pcache_wait_writeback_range(&vn->io.mapping, from, UINT64_MAX, plat_time_ns() + PCACHE_WAIT_NS);
	err = err < 0 ? err : e2;
	if (!err)
		err = pcache_invalidate_range(&vn->io.mapping, from, UINT64_MAX, true);
	if (err)
		return err;
	struct shift_list l = { 0 };
	uint64_t next, items = 0;
	plat_mutex_lock(m->lock);
	err = cowfs_writable(m->fs);
	if (!err && (cowfs_file_pending(vn, from, &next) || next != UINT64_MAX))
		err = -PLAT_EIO;         /* a writeback failed: the tail is not all on disk */
	if (!err)
		err = count_from(m, vn->rec.ino, off, &items);
	/* The metadata: every moved item rewritten, a few nodes per 64. */
	if (!err)
		err = cowfs_file_room(m, 2 + items / 32);
	if (!err) {
		cowfs_file_forget_range(vn, from, UINT64_MAX);
		if ((err = shift_apply(vn, collapse, off, len, &l)))
			cowfs_fail(m->fs, err, "inode %llu: %s range failed half-way: not committed, read-only",
				   (unsigned long long)vn->rec.ino, collapse ? "collapse" : "insert");
	}
	plat_mutex_unlock(m->lock);
	plat_free(l.e);
	if (!err)
		err = pcache_invalidate_range(&vn->io.mapping, from, UINT64_MAX, true);
	return err;
}
