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
	struct find_ctx f = { pos, e, false, false };
	struct cowfs_key from = cowfs_extent_scan_from(m->tree, ino, pos);
	struct cowfs_key to = { ino, CFS_ITEM_EXTENT, UINT64_MAX };
	int err = cowfs_bt_iterate(m->tree, &from, &to, find_cb, &f);
	if (err < 0)
		return err;
	*found = f.found;
	if (!f.found && !f.next)
		e->off = UINT64_MAX;
	return 0;
}

/* ---- changing the mapping (the item work is in fs/dataref.c, shared
 * with the intent log's replay) ---- */

static int ext_release_range(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	uint64_t released = 0;
	int err = cowfs_extent_release(m->tree, vn->rec.ino, start, end, &released);
	vn->rec.blocks = vn->rec.blocks > released ? vn->rec.blocks - released : 0;
	return err;
}

int cowfs_extent_replace(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t off, uint64_t disk_block,
			 uint32_t nblocks)
{
	uint64_t released = 0;
	int err = cowfs_extent_item_replace(m->tree, vn->rec.ino, off, disk_block, nblocks, m->fs->gen, &released);
	vn->rec.blocks = vn->rec.blocks > released ? vn->rec.blocks - released : 0;
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
	/* Removed extents are not logged: fsync commits until the next commit. */
	vn->nolog_gen = m->fs->gen;
	int err = ext_release_range(m, vn, start, end);
	if (!err)
		cowfs_vdirty(vn);
	return err;
}
