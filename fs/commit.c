/*
 * Commit: make the running transaction durable (docs/format.md §8).
 *
 * The protocol.  Nothing the last commit (N-1) references is ever written:
 * changed nodes were shadowed to fresh blocks, and blocks freed since are
 * pinned (alloc.c).  So the device holds two worlds at once: commit N-1,
 * reachable from the newest superblock, and the new blocks of N, reachable
 * from nothing yet.  The superblock write is the switch.  Before the
 * FLUSH that precedes it, any subset of the new blocks may be on media and
 * it does not matter; after the FLUSH all of them are; the superblock goes
 * to a slot that commit N-1 did not use, with FUA, so a torn write of it
 * leaves N-1's superblock readable.  A power cut anywhere therefore mounts
 * either N-1 or N, never a mixture.
 *
 * The steps:
 *   1. fold the allocator bitmap and the tree roots into the free-space
 *      tree and the root tree, until that stops allocating;
 *   2. write every dirty node, children first (their checksums go into
 *      their parents' pointers);
 *   3. FLUSH;
 *   4. superblock N to slot N mod 8 of both areas, FUA (or write + FLUSH);
 *   5. release the blocks pinned by transaction N-1 (and pin the intent
 *      log the superblock of N-1 named, fs/log.c).
 */
#include "fs/node.h"

struct commit_list {
	struct cowfs_node **n;
	size_t len, cap;
};

static int clist_add(struct commit_list *l, struct cowfs_node *n)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct cowfs_node **nn = plat_alloc(cap * sizeof(*nn));
		if (!nn)
			return -PLAT_ENOMEM;
		if (l->len)
			plat_memcpy(nn, l->n, l->len * sizeof(*nn));
		plat_free(l->n);
		l->n = nn;
		l->cap = cap;
	}
	l->n[l->len++] = n;
	return 0;
}

/* Post-order: a dirty node's dirty children are written (and their
 * checksums stored in it) before it is checksummed and queued. */
static int write_node(struct cowfs *fs, struct cowfs_node *n, struct cowfs_iob *iob, struct commit_list *l,
		      uint32_t *csum)
{
	uint8_t *b = n->buf;
	int err = clist_add(l, n);
	if (err)
		return err;
	n->refs++;                          /* until the writes completed */
	if (nd_level(b)) {
		for (uint32_t i = 0; i < nd_nr(b); i++) {
			struct cowfs_bptr p;
			in_ptr(b, i, &p);
			if (p.gen != fs->gen)
				continue;
			struct cowfs_node *c = cowfs_nc_lookup_dirty(fs, p.blocknr);
			if (!c) {
				cowfs_fail(fs, -PLAT_EIO, "commit: dirty node %llu missing from the cache",
					   (unsigned long long)p.blocknr);
				return -PLAT_EIO;
			}
			if ((err = write_node(fs, c, iob, l, &p.csum)))
				return err;
			cfs_bptr_put(in_entry(b, i) + CFS_KEY_SIZE, &p);
		}
	}
	*csum = cowfs_node_csum(fs, b);
	cfs_put32(b + CFS_NH_CSUM, *csum);
	cowfs_iob_write(iob, n->blocknr, b, fs->node_size, 0);
	return 0;
}

static int write_tree(struct cowfs *fs, struct cowfs_tree *t, struct cowfs_iob *iob, struct commit_list *l)
{
	if (t->root.gen != fs->gen)
		return 0;                   /* unchanged since the last commit */
	struct cowfs_node *n = cowfs_nc_lookup_dirty(fs, t->root.blocknr);
	if (!n) {
		cowfs_fail(fs, -PLAT_EIO, "commit: root of tree %llu missing from the cache",
			   (unsigned long long)t->id);
		return -PLAT_EIO;
	}
	return write_node(fs, n, iob, l, &t->root.csum);
}

/* Step 1.  Each round may shadow nodes of the free-space tree and the
 * root tree; a node already shadowed is changed in place, so the rounds
 * stop allocating after a few. */
static int commit_fold(struct cowfs *fs)
{
	for (int round = 0; round < 16; round++) {
		bool changed = false, groups;
		int err;
		for (struct cowfs_tree *t = fs->trees; t; t = t->next)
			if (t->root_changed) {
				t->root_changed = false;
				changed = true;
				if ((err = cowfs_root_item_put(fs, t)))
					return err;
			}
		if ((err = cowfs_alloc_sync(fs, &groups)))
			return err;
		if (fs->free_tree.root_changed) {
			fs->free_tree.root_changed = false;
			changed = true;
			if ((err = cowfs_root_item_put(fs, &fs->free_tree)))
				return err;
		}
		if (!changed && !groups)
			return 0;
	}
	cowfs_fail(fs, -PLAT_EIO, "commit: free-space accounting did not settle");
	return -PLAT_EIO;
}

/* Step 2: subvolume trees and the free-space tree first; their root
 * checksums then go into the root tree's (already shadowed) ROOT_ITEMs,
 * which must not allocate -- that would change the free-space tree
 * after it was written. */
static int commit_write(struct cowfs *fs, struct cowfs_iob *iob, struct commit_list *l)
{
	uint64_t used = fs->al.used, cursor = fs->al.cursor;
	int err = 0;
	for (struct cowfs_tree *t = fs->trees; t && !err; t = t->next)
		if (t->root.gen == fs->gen && !(err = write_tree(fs, t, iob, l)))
			err = cowfs_root_item_put(fs, t);
	if (!err && fs->free_tree.root.gen == fs->gen && !(err = write_tree(fs, &fs->free_tree, iob, l)))
		err = cowfs_root_item_put(fs, &fs->free_tree);
	if (!err && (fs->al.used != used || fs->al.cursor != cursor)) {
		cowfs_fail(fs, -PLAT_EIO, "commit: allocation while writing the trees");
		err = -PLAT_EIO;
	}
	if (!err)
		err = write_tree(fs, &fs->root_tree, iob, l);
	return err;
}

/* Step 4: the commit point. */
static int commit_super(struct cowfs *fs, uint64_t gen)
{
	uint8_t *sb = plat_alloc_pages(PLAT_PAGE_SIZE);
	if (!sb)
		return -PLAT_ENOMEM;
	cowfs_sb_encode(fs, sb, gen);
	uint64_t slot = gen % CFS_SB_SLOTS;
	int err = -PLAT_ENOMEM;
	for (int fua = 1; fua >= 0; fua--) {
		struct cowfs_iob *iob = cowfs_iob_new(fs);
		if (!iob)
			break;
		cowfs_iob_write(iob, CFS_SB_AREA0 + slot, sb, CFS_BLOCK_SIZE, fua ? PLAT_BIO_FUA : 0);
		cowfs_iob_write(iob, fs->total_blocks - CFS_SB_SLOTS + slot, sb, CFS_BLOCK_SIZE,
				fua ? PLAT_BIO_FUA : 0);
		err = cowfs_iob_wait(iob);
		if (!fua && !err)
			err = cowfs_flush(fs);
		if (err != -PLAT_ENOTSUP)
			break;
	}
	plat_free_pages(sb, PLAT_PAGE_SIZE);
	return err;
}

int cowfs_commit(struct cowfs *fs)
{
	if (fs->readonly)
		return fs->error ? fs->error : -PLAT_EROFS;
	if (!fs->dirty_changes)
		return 0;
	uint64_t gen = fs->gen;
	struct commit_list l = { 0 };

	/* 1. Fold allocations and roots into the trees. */
	int err = commit_fold(fs);
	if (err) {
		cowfs_fail(fs, err, "commit %llu: updating the free-space and root trees failed",
			   (unsigned long long)gen);
		return err;
	}

	/* 2. Write every new node; nothing points to them yet. */
	struct cowfs_iob *iob = cowfs_iob_new(fs);
	if (!iob)
		return -PLAT_ENOMEM;
	err = commit_write(fs, iob, &l);
	int werr = cowfs_iob_wait(iob);
	err = err ? err : werr;
	for (size_t i = 0; i < l.len; i++) {
		if (!err)
			cowfs_nc_mark_clean(fs, l.n[i]);
		cowfs_nc_put(fs, l.n[i]);
	}
	plat_free(l.n);
	cowfs_nc_trim(fs);
	if (err) {
		cowfs_fail(fs, err, "commit %llu: writing tree nodes failed", (unsigned long long)gen);
		return err;
	}

	/* 3. Every new node on stable media before anything points to it. */
	if ((err = cowfs_flush(fs))) {
		cowfs_fail(fs, err, "commit %llu: flush before the superblock failed", (unsigned long long)gen);
		return err;
	}

	/* 4. The superblock: from here on, mount finds commit N, and the
	 * new intent log it names (fs/log.c). */
	cowfs_log_commit_start(fs, gen);
	if ((err = commit_super(fs, gen))) {
		cowfs_fail(fs, err, "commit %llu: superblock write failed", (unsigned long long)gen);
		return err;
	}

	/* 5. Commit N-1's freed blocks may now be reused. */
	fs->backup[1] = fs->backup[0];
	fs->backup[0] = fs->root_tree.root;
	fs->committed_gen = gen;
	fs->gen = gen + 1;
	fs->dirty_changes = 0;
	fs->root_tree.root_changed = false;
	cowfs_log_committed(fs);         /* the old log's blocks: pinned */
	cowfs_alloc_committed(fs);
	return 0;
}

int cowfs_commit_if_needed(struct cowfs *fs)
{
	if (fs->readonly || fs->nc.dirty < fs->nc.budget_nodes / 2)
		return 0;
	int err = cowfs_commit(fs);
	return err ? err : 1;
}
