/*
 * References to shared data blocks (docs/format.md §10), core part of the
 * data layer: it needs only the trees, so the host tool and the snapshot
 * code release data correctly without a mounted filesystem.
 *
 * After a snapshot, leaves are shared; copying a shared leaf gives every
 * block its EXTENT items name one more reference (the leaf_data_refs hook,
 * set at mount), dropping a leaf one less.  Shared data blocks carry an
 * item in the refcount tree -- DATA_REF (block, 34, 0) -> refs u32 (>= 2),
 * one per block -- and a block without one has a single reference.  A
 * release drops one reference and frees the block at the last.
 */
#include "fs/cowfs_int.h"

#define DATA_REF_SIZE 4u

int cowfs_data_ref_get(struct cowfs *fs, uint64_t blk, uint32_t *refs)
{
	*refs = 1;
	if (!fs->refs_present)
		return 0;
	uint8_t v[DATA_REF_SIZE];
	uint32_t len;
	struct cowfs_key k = { blk, CFS_ITEM_DATA_REF, 0 };
	int err = cowfs_bt_lookup(fs->ref_tree, &k, v, sizeof(v), &len);
	if (err == -PLAT_ENOENT)
		return 0;
	if (!err)
		*refs = cfs_get32(v);
	return err;
}

static int data_ref_set(struct cowfs *fs, uint64_t blk, uint32_t old, uint32_t refs)
{
	struct cowfs_key k = { blk, CFS_ITEM_DATA_REF, 0 };
	uint8_t v[DATA_REF_SIZE];
	cfs_put32(v, refs);
	if (refs <= 1)
		return cowfs_bt_delete(fs->ref_tree, &k);
	return old <= 1 ? cowfs_bt_insert(fs->ref_tree, &k, v, sizeof(v)) : cowfs_bt_update(fs->ref_tree, &k, v, sizeof(v));
}

static int data_ref_inc(struct cowfs *fs, uint64_t blk)
{
	uint32_t refs;
	if (!fs->ref_tree) {
		int err = cowfs_tree_get(fs, CFS_TREE_REFCOUNT, true, &fs->ref_tree);
		if (err)
			return err;
	}
	fs->refs_present = true;
	int err = cowfs_data_ref_get(fs, blk, &refs);
	if (!err && refs == UINT32_MAX)
		err = -PLAT_EMLINK;
	return err ? err : data_ref_set(fs, blk, refs, refs + 1);
}

/* A data block is free: its checksum (fs/csum.c, DATA_CSUM in tree 4)
 * goes with it, in the same transaction. */
static int data_free(struct cowfs *fs, uint64_t blk, uint64_t n, uint64_t born)
{
	struct cowfs_tree *csum;
	int err = cowfs_tree_get(fs, CFS_TREE_CSUM, false, &csum);
	if (err == -PLAT_ENOENT)
		err = 0;                 /* no data was ever checksummed */
	else
		err = cowfs_csum_del(csum, blk, n);   /* the run's items, trimmed at its ends */
	if (!err)
		cowfs_free_blocks(fs, blk, (uint32_t)n, born);
	return err;
}

int cowfs_data_ref_inc(struct cowfs *fs, uint64_t blk, uint64_t n)
{
	for (uint64_t b = blk; b < blk + n; b++) {
		int err = data_ref_inc(fs, b);
		if (err)
			return err;
	}
	return 0;
}

int cowfs_data_release(struct cowfs *fs, uint64_t blk, uint64_t n, uint64_t born)
{
	if (!fs->refs_present)
		return data_free(fs, blk, n, born);
	/* Blocks losing their last reference are freed as runs (one
	 * checksum-tree operation per run, not per block). */
	uint64_t run = blk, nrun = 0;
	for (uint64_t b = blk; b < blk + n; b++) {
		uint32_t refs;
		int err = cowfs_data_ref_get(fs, b, &refs);
		if (!err && refs > 1) {
			err = data_ref_set(fs, b, refs, refs - 1);
			if (!err && nrun)
				err = data_free(fs, run, nrun, born);
			nrun = 0;
		} else if (!err && !nrun++) {
			run = b;
		}
		if (err)
			return err;
	}
	return nrun ? data_free(fs, run, nrun, born) : 0;
}

int cowfs_extent_leaf_refs(struct cowfs *fs, const uint8_t *leaf, int delta)
{
	uint32_t nr = cfs_get16(leaf + CFS_NH_NRITEMS);
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *item = leaf + CFS_NH_SIZE + i * CFS_LEAF_ITEM_SIZE;
		struct cowfs_key k;
		cfs_key_get(item, &k);
		if (k.type != CFS_ITEM_EXTENT || cfs_get16(item + CFS_KEY_SIZE + 2) != CFS_EXTENT_ITEM_SIZE)
			continue;
		const uint8_t *d = leaf + cfs_get16(item + CFS_KEY_SIZE);
		uint64_t blk = cfs_get64(d), n = cfs_get32(d + 8), gen = cfs_get64(d + 16);
		for (uint64_t b = blk; b < blk + n; b++) {
			int err = delta > 0 ? data_ref_inc(fs, b) : cowfs_data_release(fs, b, 1, gen);
			if (err)
				return err;
		}
	}
	return 0;
}


int cowfs_data_ref_fix(struct cowfs *fs, uint64_t blk, uint32_t refs)
{
	uint32_t old;
	if (!fs->ref_tree && refs > 1) {
		int err = cowfs_tree_get(fs, CFS_TREE_REFCOUNT, true, &fs->ref_tree);
		if (err)
			return err;
	}
	if (refs > 1)
		fs->refs_present = true;
	int err = cowfs_data_ref_get(fs, blk, &old);
	if (err || old == refs)
		return err;
	return data_ref_set(fs, blk, old, refs);
}

/* ---- EXTENT items at the tree level: the mounted file layer
 * (fs/extent.c) and the intent log's replay (fs/log.c) ---- */

int cowfs_extent_item_put(struct cowfs_tree *t, uint64_t ino, uint64_t off, uint64_t disk_block, uint32_t nblocks,
			  uint64_t gen)
{
	uint8_t d[CFS_EXTENT_ITEM_SIZE] = { 0 };
	struct cowfs_key k = { ino, CFS_ITEM_EXTENT, off };
	cfs_put64(d, disk_block);
	cfs_put32(d + 8, nblocks);
	cfs_put64(d + 16, gen);
	return cowfs_bt_insert(t, &k, d, sizeof(d));
}

struct ext_overlap {
	uint64_t start, end;
	struct { uint64_t off, blk, gen; uint32_t n; } e[16];
	unsigned n;
};

static int ext_overlap_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct ext_overlap *o = arg;
	if (k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_ITEM_SIZE)
		return 0;
	const uint8_t *d = data;
	uint64_t n = cfs_get32(d + 8);
	if (k->offset >= o->end)
		return 1;
	if (k->offset + n * CFS_BLOCK_SIZE <= o->start)
		return 0;
	o->e[o->n].off = k->offset;
	o->e[o->n].blk = cfs_get64(d);
	o->e[o->n].n = (uint32_t)n;
	o->e[o->n].gen = cfs_get64(d + 16);
	return ++o->n == 16 ? 1 : 0;
}

struct cowfs_key cowfs_extent_scan_from(struct cowfs_tree *t, uint64_t ino, uint64_t pos)
{
	struct cowfs_key k = { ino, CFS_ITEM_EXTENT, pos };
	struct cowfs_key from = k;
	int err = cowfs_bt_prev(t, &from);
	if (!err && from.objectid == ino && from.type == CFS_ITEM_EXTENT)
		return from;
	if (err && err != -PLAT_ENOENT) {
		/* Cannot tell: the old bound, slow but complete (the walk
		 * that follows meets the same error and returns it). */
		uint64_t span = (uint64_t)CFS_EXTENT_MAX_SPAN * CFS_BLOCK_SIZE;
		k.offset = pos > span ? pos - span : 0;
	}
	return k;
}

/* Extents inside [start, end) go, those straddling an edge are trimmed
 * (their outer parts stay), the blocks in the range are released.  Done
 * in rounds of 16 extents. */
int cowfs_extent_release(struct cowfs_tree *t, uint64_t ino, uint64_t start, uint64_t end, uint64_t *released)
{
	for (;;) {
		struct ext_overlap o = { .start = start, .end = end };
		struct cowfs_key from = cowfs_extent_scan_from(t, ino, start);
		struct cowfs_key to = { ino, CFS_ITEM_EXTENT, UINT64_MAX };
		int err = cowfs_bt_iterate(t, &from, &to, ext_overlap_cb, &o);
		if (err < 0)
			return err;
		if (!o.n)
			return 0;
		/* A round that stopped short of 16 saw every overlapping
		 * extent: no search after it. */
		bool last = o.n < 16;
		for (unsigned i = 0; i < o.n; i++) {
			uint64_t off = o.e[i].off, eend = off + (uint64_t)o.e[i].n * CFS_BLOCK_SIZE;
			uint64_t cut0 = off > start ? off : start, cut1 = eend < end ? eend : end;
			struct cowfs_key k = { ino, CFS_ITEM_EXTENT, off };
			if ((err = cowfs_bt_delete(t, &k)))
				return err;
			if (cut0 > off &&            /* left part stays */
			    (err = cowfs_extent_item_put(t, ino, off, o.e[i].blk, (uint32_t)((cut0 - off) / CFS_BLOCK_SIZE),
							 o.e[i].gen)))
				return err;
			if (cut1 < eend &&           /* right part stays */
			    (err = cowfs_extent_item_put(t, ino, cut1, o.e[i].blk + (cut1 - off) / CFS_BLOCK_SIZE,
							 (uint32_t)((eend - cut1) / CFS_BLOCK_SIZE), o.e[i].gen)))
				return err;
			uint64_t n = (cut1 - cut0) / CFS_BLOCK_SIZE;
			err = cowfs_data_release(t->fs, o.e[i].blk + (cut0 - off) / CFS_BLOCK_SIZE, n, o.e[i].gen);
			if (err)
				return err;
			*released += n;
		}
		if (last)
			return 0;
	}
}

/* The extent item at or before (ino, off), decoded; 1 when there is none. */
static int extent_at(struct cowfs_tree *t, uint64_t ino, uint64_t off, struct cowfs_key *k, uint64_t *blk,
		     uint32_t *n, uint64_t *gen)
{
	uint8_t d[CFS_EXTENT_ITEM_SIZE];
	uint32_t len = 0;
	*k = (struct cowfs_key){ ino, CFS_ITEM_EXTENT, off };
	int err = cowfs_bt_prev_item(t, k, d, sizeof(d), &len);
	if (err)
		return err == -PLAT_ENOENT ? 1 : err;
	if (k->objectid != ino || k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_ITEM_SIZE)
		return 1;
	*blk = cfs_get64(d);
	*n = cfs_get32(d + 8);
	*gen = cfs_get64(d + 16);
	return 0;
}

int cowfs_extent_item_replace(struct cowfs_tree *t, uint64_t ino, uint64_t off, uint64_t disk_block,
			      uint32_t nblocks, uint64_t gen, uint64_t *released)
{
	const uint64_t BS = CFS_BLOCK_SIZE;
	uint64_t end = off + (uint64_t)nblocks * BS, oblk = 0, ogen = 0;
	uint32_t on = 0;
	struct cowfs_key k;
	int err = nblocks <= CFS_EXTENT_MAX_SPAN ? extent_at(t, ino, off, &k, &oblk, &on, &ogen) : 1;
	if (err < 0)
		return err;
	uint64_t oend = k.offset + (uint64_t)on * BS;
	if (err || oend < end) {
		/* Not inside one extent (a hole, an append, several
		 * extents): release the range, then the new items. */
		err = cowfs_extent_release(t, ino, off, end, released);
		for (uint32_t done = 0; !err && done < nblocks;) {
			uint32_t n = nblocks - done < CFS_EXTENT_MAX_SPAN ? nblocks - done : CFS_EXTENT_MAX_SPAN;
			err = cowfs_extent_item_put(t, ino, off + (uint64_t)done * BS, disk_block + done, n, gen);
			done += n;
		}
		return err;
	}
	/* Inside one extent (the random overwrite): its item becomes the
	 * new one or its head in place (an update, not a delete and an
	 * insert), the new item and the tail go in, the blocks cut out are
	 * released.  No walk. */
	uint8_t d[CFS_EXTENT_ITEM_SIZE] = { 0 };
	if (k.offset == off) {
		cfs_put64(d, disk_block);
		cfs_put32(d + 8, nblocks);
		cfs_put64(d + 16, gen);
	} else {
		cfs_put64(d, oblk);
		cfs_put32(d + 8, (uint32_t)((off - k.offset) / BS));
		cfs_put64(d + 16, ogen);
	}
	err = cowfs_bt_update(t, &k, d, sizeof(d));
	if (!err && k.offset != off)
		err = cowfs_extent_item_put(t, ino, off, disk_block, nblocks, gen);
	if (!err && oend > end)
		err = cowfs_extent_item_put(t, ino, end, oblk + (end - k.offset) / BS, (uint32_t)((oend - end) / BS),
					    ogen);
	if (!err)
		err = cowfs_data_release(t->fs, oblk + (off - k.offset) / BS, nblocks, ogen);
	if (!err)
		*released += nblocks;
	return err;
}
