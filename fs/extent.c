/*
 * File extents: EXTENT items (ino, EXTENT, file offset) -> a run of data
 * blocks (docs/format.md §6), and the references to data blocks.
 *
 * Copy-on-write: a block of a committed extent is never written again.
 * New data goes to new blocks and cowfs_extent_replace() points the range
 * at them; the old blocks are released, which frees them (pinned until the
 * next commit is durable, §7) unless a snapshot still shares them.
 *
 * Shared data.  After a snapshot, leaves are shared; copying a shared leaf
 * gives every block its extents name one more reference (the
 * leaf_data_refs hook).  Like shared nodes, shared data blocks carry an
 * item in the refcount tree -- DATA_REF (block, 34, 0) -> refs u32 (>= 2),
 * one per block -- and a block without one has a single reference.  A
 * release drops one reference and frees the block at the last.
 *
 * All functions here run with the filesystem lock held.
 */
#include "fs/file.h"

static void ext_decode(const struct cowfs_key *k, const uint8_t *d, struct cowfs_extent *e)
{
	e->off = k->offset;
	e->disk_block = cfs_get64(d);
	e->nblocks = cfs_get32(d + 8);
	e->gen = cfs_get64(d + 16);
}

static int ext_put(struct cowfs_mount *m, uint64_t ino, const struct cowfs_extent *e, bool update)
{
	uint8_t d[CFS_EXTENT_SIZE] = { 0 };
	struct cowfs_key k = { ino, CFS_ITEM_EXTENT, e->off };
	cfs_put64(d, e->disk_block);
	cfs_put32(d + 8, e->nblocks);
	cfs_put64(d + 16, e->gen);
	return update ? cowfs_bt_update(m->tree, &k, d, sizeof(d)) : cowfs_bt_insert(m->tree, &k, d, sizeof(d));
}

struct find_ctx {
	uint64_t pos;
	struct cowfs_extent *e;
	bool found, next;
};

static int find_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct find_ctx *f = arg;
	struct cowfs_extent e;
	if (k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_SIZE)
		return 0;
	ext_decode(k, data, &e);
	if (e.off + (uint64_t)e.nblocks * CFS_BLOCK_SIZE <= f->pos)
		return 0;
	*f->e = e;
	f->found = e.off <= f->pos;
	f->next = !f->found;
	return 1;
}

int cowfs_extent_find(struct cowfs_mount *m, uint64_t ino, uint64_t pos, struct cowfs_extent *e, bool *found)
{
	uint64_t span = (uint64_t)CFS_EXTENT_MAX_BLOCKS * CFS_BLOCK_SIZE;
	struct find_ctx f = { pos, e, false, false };
	struct cowfs_key from = { ino, CFS_ITEM_EXTENT, pos > span ? pos - span : 0 };
	struct cowfs_key to = { ino, CFS_ITEM_EXTENT, UINT64_MAX };
	int err = cowfs_bt_iterate(m->tree, &from, &to, find_cb, &f);
	if (err < 0)
		return err;
	*found = f.found;
	if (!f.found && !f.next)
		e->off = UINT64_MAX;
	return 0;
}

/* ---- changing the mapping ---- */

struct overlap_ctx {
	uint64_t start, end;
	struct cowfs_extent e[16];
	unsigned n;
};

static int overlap_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct overlap_ctx *o = arg;
	struct cowfs_extent e;
	if (k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_SIZE)
		return 0;
	ext_decode(k, data, &e);
	if (e.off >= o->end)
		return 1;
	if (e.off + (uint64_t)e.nblocks * CFS_BLOCK_SIZE <= o->start)
		return 0;
	o->e[o->n++] = e;
	return o->n == 16 ? 1 : 0;
}

/* Release [start, end) of the file's mapping: extents inside go, those
 * straddling an edge are trimmed (their outer parts stay, the inner
 * blocks are released).  Done in rounds of 16 extents. */
static int ext_release_range(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	uint64_t span = (uint64_t)CFS_EXTENT_MAX_BLOCKS * CFS_BLOCK_SIZE;
	uint64_t ino = vn->rec.ino;
	for (;;) {
		struct overlap_ctx o = { start, end, { { 0 } }, 0 };
		struct cowfs_key from = { ino, CFS_ITEM_EXTENT, start > span ? start - span : 0 };
		struct cowfs_key to = { ino, CFS_ITEM_EXTENT, UINT64_MAX };
		int err = cowfs_bt_iterate(m->tree, &from, &to, overlap_cb, &o);
		if (err < 0)
			return err;
		if (!o.n)
			return 0;
		for (unsigned i = 0; i < o.n; i++) {
			struct cowfs_extent e = o.e[i];
			uint64_t eend = e.off + (uint64_t)e.nblocks * CFS_BLOCK_SIZE;
			uint64_t cut0 = e.off > start ? e.off : start, cut1 = eend < end ? eend : end;
			struct cowfs_key k = { ino, CFS_ITEM_EXTENT, e.off };
			if ((err = cowfs_bt_delete(m->tree, &k)))
				return err;
			if (cut0 > e.off) {            /* left part stays */
				struct cowfs_extent l = e;
				l.nblocks = (uint32_t)((cut0 - e.off) / CFS_BLOCK_SIZE);
				if ((err = ext_put(m, ino, &l, false)))
					return err;
			}
			if (cut1 < eend) {             /* right part stays */
				struct cowfs_extent r = e;
				r.off = cut1;
				r.disk_block = e.disk_block + (cut1 - e.off) / CFS_BLOCK_SIZE;
				r.nblocks = (uint32_t)((eend - cut1) / CFS_BLOCK_SIZE);
				if ((err = ext_put(m, ino, &r, false)))
					return err;
			}
			uint64_t n = (cut1 - cut0) / CFS_BLOCK_SIZE;
			err = cowfs_data_release(m->fs, e.disk_block + (cut0 - e.off) / CFS_BLOCK_SIZE, n, e.gen);
			if (err)
				return err;
			vn->rec.blocks = vn->rec.blocks > n ? vn->rec.blocks - n : 0;
		}
	}
}

int cowfs_extent_replace(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t off, uint64_t disk_block,
			 uint32_t nblocks)
{
	uint64_t end = off + (uint64_t)nblocks * CFS_BLOCK_SIZE;
	int err = ext_release_range(m, vn, off, end);
	for (uint32_t done = 0; !err && done < nblocks;) {
		uint32_t n = nblocks - done < CFS_EXTENT_MAX_BLOCKS ? nblocks - done : CFS_EXTENT_MAX_BLOCKS;
		struct cowfs_extent e = { off + (uint64_t)done * CFS_BLOCK_SIZE, disk_block + done, n, m->fs->gen };
		err = ext_put(m, vn->rec.ino, &e, false);
		done += n;
	}
	if (!err) {
		vn->rec.blocks += nblocks;
		cowfs_vdirty(vn);
	}
	return err;
}

int cowfs_extent_punch_from(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t from)
{
	return cowfs_extent_punch(m, vn, from, UINT64_MAX);
}

int cowfs_extent_punch(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	int err = ext_release_range(m, vn, start, end);
	if (!err)
		cowfs_vdirty(vn);
	return err;
}
