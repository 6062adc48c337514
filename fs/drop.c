/*
 * Deleting a snapshot in the background (docs/format.md §10).
 *
 * cowfs_snapshot_delete() only marks the tree DROPPING in its ROOT_ITEM
 * (and removes its name): that is one small change, durable with the next
 * commit.  cowfs_drop_step() then frees the tree a few nodes at a time,
 * left to right, and records in the ROOT_ITEM's drop_progress the key
 * below which everything is gone.  A step's frees and its progress land in
 * the same commit, so after a power cut the tree is either as the last
 * durable step left it or as the step before; the next step resumes from
 * the progress key.  The dying tree's nodes are never changed: a node
 * whose children are partly dropped still points at freed blocks, so every
 * walker (this one, the check, scrub) skips the children whose whole key
 * range lies below the progress key.
 *
 * Per node: a shared node (refs > 1) loses one reference and is done; an
 * unshared leaf is freed (after its data references are dropped); an
 * unshared interior node is descended into, and freed once all its
 * children are gone.
 */
#include "fs/node.h"

struct drop {
	struct cowfs_tree *t;
	struct cowfs_key progress;
	bool started;                 /* progress holds a key (else: nothing dropped yet) */
	unsigned budget;
};

/* Is the subtree whose keys are all < upper already dropped?  upper NULL
 * = unbounded (never). */
bool cowfs_drop_done_below(const struct cowfs_key *progress, const struct cowfs_key *upper)
{
	return progress && upper && cfs_key_cmp(upper, progress) <= 0;
}

static void drop_advance(struct drop *d, const struct cowfs_key *upper)
{
	static const struct cowfs_key end = { UINT64_MAX, 255, UINT64_MAX };
	d->progress = upper ? *upper : end;
	d->started = true;
}

/* 1 = stopped for the budget, 0 = everything under n dropped, < 0 error.
 * n is unshared; upper = the upper bound of n's keys. */
static int drop_walk(struct drop *d, struct cowfs_node *n, const struct cowfs_key *upper)
{
	struct cowfs *fs = d->t->fs;
	uint32_t nr = nd_nr(n->buf);
	for (uint32_t i = 0; i < nr; i++) {
		struct cowfs_key nk;
		const struct cowfs_key *cu = upper;
		if (i + 1 < nr) {
			nd_key(n->buf, i + 1, &nk);
			cu = &nk;
		}
		if (d->started && cowfs_drop_done_below(&d->progress, cu))
			continue;
		if (!d->budget)
			return 1;
		struct cowfs_bptr cp;
		uint32_t refs;
		in_ptr(n->buf, i, &cp);
		int err = cowfs_ref_get(fs, cp.blocknr, &refs);
		if (err)
			return err;
		if (refs > 1 || cp.level == 0) {
			err = cowfs_bt_drop(d->t, &cp);      /* one reference less, or a leaf freed */
		} else {
			struct cowfs_node *c;
			if ((err = cowfs_nc_read(fs, &cp, d->t->id, &c)))
				return err;
			err = drop_walk(d, c, cu);
			if (err) {
				cowfs_nc_put(fs, c);
				return err;
			}
			cowfs_free_blocks(fs, c->blocknr, fs->node_blocks, nd_gen(c->buf));
			cowfs_nc_forget(fs, c);
			cowfs_nc_put(fs, c);
		}
		if (err)
			return err;
		d->budget--;
		drop_advance(d, cu);
	}
	return 0;
}

static int root_item(struct cowfs *fs, uint64_t id, uint8_t *ri)
{
	struct cowfs_key k = { id, CFS_ITEM_ROOT, 0 };
	uint32_t len;
	int err = cowfs_bt_lookup(&fs->root_tree, &k, ri, CFS_ROOT_ITEM_SIZE, &len);
	return err ? err : len == CFS_ROOT_ITEM_SIZE ? 0 : -PLAT_EIO;
}

struct find_dropping { uint64_t id; };

static int find_dropping_cb(void *arg, uint64_t id, const uint8_t *ri)
{
	struct find_dropping *f = arg;
	if (cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_DROPPING) {
		f->id = id;
		return 1;
	}
	return 0;
}

int cowfs_drop_pending(struct cowfs *fs, uint64_t *id)
{
	struct find_dropping f = { 0 };
	int err = cowfs_root_items(fs, CFS_TREE_FS, find_dropping_cb, &f);
	if (err < 0)
		return err;
	*id = f.id;
	return f.id != 0;
}

void cowfs_drop_progress(const uint8_t *ri, struct cowfs_key *progress, bool *started)
{
	*started = ri[CFS_RI_DROP + 17] != 0;
	cfs_key_get(ri + CFS_RI_DROP, progress);
}

int cowfs_drop_step(struct cowfs *fs, unsigned budget, bool *more)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	uint64_t id;
	*more = false;
	int err = cowfs_writable(fs);
	if (err)
		return err;
	if ((err = cowfs_drop_pending(fs, &id)) <= 0)
		return err;
	if ((err = root_item(fs, id, ri)))
		return err;
	struct cowfs_tree t = { .fs = fs, .id = id };
	struct drop d = { .t = &t, .budget = budget ? budget : 1 };
	struct cowfs_node *n;
	cfs_bptr_get(ri + CFS_RI_PTR, &t.root);
	cowfs_drop_progress(ri, &d.progress, &d.started);
	uint32_t refs;
	if ((err = cowfs_ref_get(fs, t.root.blocknr, &refs)))
		goto fail;
	if (refs > 1 || t.root.level == 0) {
		err = cowfs_bt_drop(&t, &t.root);    /* the whole tree in one go */
	} else {
		if ((err = cowfs_nc_read(fs, &t.root, id, &n)))
			goto fail;
		err = drop_walk(&d, n, NULL);
		if (err == 0) {
			cowfs_free_blocks(fs, n->blocknr, fs->node_blocks, nd_gen(n->buf));
			cowfs_nc_forget(fs, n);
		}
		cowfs_nc_put(fs, n);
		if (err == 1) {
			/* Stopped for the budget: remember where. */
			cfs_key_put(ri + CFS_RI_DROP, &d.progress);
			ri[CFS_RI_DROP + 17] = 1;
			struct cowfs_key k = { id, CFS_ITEM_ROOT, 0 };
			err = cowfs_bt_update(&fs->root_tree, &k, ri, sizeof(ri));
			if (err)
				goto fail;
			*more = true;
			fs->dirty_changes++;
			return 0;
		}
	}
	if (err)
		goto fail;
	struct cowfs_key k = { id, CFS_ITEM_ROOT, 0 };
	if ((err = cowfs_bt_delete(&fs->root_tree, &k)))
		goto fail;
	fs->dirty_changes++;
	uint64_t next;
	*more = cowfs_drop_pending(fs, &next) > 0;
	return 0;
fail:
	cowfs_fail(fs, err, "background delete of tree %llu failed half-way", (unsigned long long)id);
	return err;
}

int cowfs_drop_all(struct cowfs *fs)
{
	bool more = true;
	int err = 0;
	while (more && !err)
		err = cowfs_drop_step(fs, 4096, &more);
	return err;
}
