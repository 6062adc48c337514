/*
 * Structure checks (the start of fsck): one tree's invariants
 * (docs/format.md §4.3-4.6) and the free-space bitmap against the blocks
 * the trees reference.  Every problem is reported in words.
 */
#include "fs/node.h"

struct chk {
	struct cowfs_tree *t;
	struct cowfs_tree_stats *st;
	char *msg;
	size_t msglen;
	int leaf_depth;
	uint64_t *seen;          /* optional bitmap of referenced blocks */
	struct cowfs_refmap *extra;   /* with seen: references beyond the first,
				       * per block (exact for any count) */
	const struct cowfs_key *dropped;   /* a DROPPING tree: keys below are freed */
	uint64_t *nodes;         /* optional: first blocks of nodes */
};

static int chk_fail(struct chk *c, uint64_t blk, const char *what)
{
	plat_snprintf(c->msg, c->msglen, "tree %llu, block %llu: %s", (unsigned long long)c->t->id,
		      (unsigned long long)blk, what);
	return -PLAT_EIO;
}

/* 0 = first reference, 1 = a further one (a shared node: counted, its
 * subtree already checked), or an error. */
static int chk_mark(struct chk *c, uint64_t blk)
{
	struct cowfs *fs = c->t->fs;
	if (!c->seen)
		return 0;
	if (c->seen[blk / 64] & (1ull << (blk % 64))) {
		if (!c->extra)
			return chk_fail(c, blk, "block referenced twice");
		int err = cowfs_refmap_add(c->extra, blk);
		return err ? err : 1;
	}
	for (uint64_t b = blk; b < blk + fs->node_blocks; b++) {
		if (c->seen[b / 64] & (1ull << (b % 64)))
			return chk_fail(c, blk, "node overlaps another referenced block");
		c->seen[b / 64] |= 1ull << (b % 64);
	}
	if (c->nodes)
		c->nodes[blk / 64] |= 1ull << (blk % 64);
	return 0;
}

/* Every data block an extent names has its checksum (fs/csum.c: data is
 * checksummed when written, the checksum goes when the block is freed). */
static int chk_data_csums(struct chk *c, uint64_t leafblk, uint64_t first, uint64_t n)
{
	struct cowfs_tree *csum;
	int err = cowfs_tree_get(c->t->fs, CFS_TREE_CSUM, false, &csum);
	if (err == -PLAT_ENOENT)
		return chk_fail(c, leafblk, "file data but no checksum tree");
	/* Items are runs (fs/csum_items.c): the walk stops at the first
	 * block no item covers. */
	uint32_t sums[64];
	for (uint64_t x = first; x < first + n && !err;) {
		uint64_t want = first + n - x < 64 ? first + n - x : 64, found;
		err = cowfs_csum_get(csum, x, want, sums, &found);
		if (err == -PLAT_EIO || (!err && found < want)) {
			char what[96];
			plat_snprintf(what, sizeof(what), "data block %llu has no valid checksum item",
				      (unsigned long long)(x + (err ? 0 : found)));
			return chk_fail(c, leafblk, what);
		}
		x += want;
	}
	return err;
}

/* Data blocks an EXTENT item names are referenced: one reference per
 * leaf that names them (a shared leaf is visited once). */
static int chk_extent(struct chk *c, uint64_t leafblk, const uint8_t *b, uint32_t i)
{
	struct cowfs *fs = c->t->fs;
	struct cowfs_key k;
	nd_key(b, i, &k);
	if (k.type != CFS_ITEM_EXTENT)
		return 0;
	if (lf_len(b, i) != CFS_EXTENT_ITEM_SIZE)
		return chk_fail(c, leafblk, "extent item of the wrong size");
	const uint8_t *d = b + lf_off(b, i);
	uint64_t first = cfs_get64(d), n = cfs_get32(d + 8);
	if (!n || first < CFS_RESERVED_BLOCKS || first + n > fs->total_blocks - CFS_SB_SLOTS || (k.offset & 4095))
		return chk_fail(c, leafblk, "extent outside the data area or misaligned");
	int err = chk_data_csums(c, leafblk, first, n);
	if (err || !c->seen)
		return err;
	for (uint64_t x = first; x < first + n; x++) {
		if (c->seen[x / 64] & (1ull << (x % 64))) {
			if (!c->extra || (c->nodes && (c->nodes[x / 64] & (1ull << (x % 64)))))
				return chk_fail(c, leafblk, "data block referenced twice or used by a node");
			int err = cowfs_refmap_add(c->extra, x);
			if (err)
				return err;
		} else {
			c->seen[x / 64] |= 1ull << (x % 64);
		}
	}
	return 0;
}

/* Node n reached through pointer p; all its keys in [lo, hi) (hi NULL =
 * unbounded); depth from the root. */
static int chk_node(struct chk *c, struct cowfs_node *n, const struct cowfs_bptr *p, const struct cowfs_key *lo,
		    const struct cowfs_key *hi, int depth, bool is_root)
{
	struct cowfs *fs = c->t->fs;
	const uint8_t *b = n->buf;
	uint64_t blk = n->blocknr;
	uint32_t nr = nd_nr(b);
	bool clean = nd_gen(b) < fs->gen;
	const char *why = cowfs_node_verify(fs, b, blk, p, c->t->id, clean);
	if (why)
		return chk_fail(c, blk, why);
	if (!clean && !n->dirty)
		return chk_fail(c, blk, "node of the running transaction is not dirty in the cache");
	if (clean && n->dirty)
		return chk_fail(c, blk, "node of an old generation is dirty (changed in place)");
	if (nd_gen(b) > fs->gen)
		return chk_fail(c, blk, "generation from the future");
	int err = chk_mark(c, blk);
	if (err < 0)
		return err;
	bool again = err == 1;
	struct cowfs_key k, first;
	for (uint32_t i = 0; i < nr; i++) {
		nd_key(b, i, &k);
		if ((lo && cfs_key_cmp(&k, lo) < 0) || (hi && cfs_key_cmp(&k, hi) >= 0))
			return chk_fail(c, blk, "key outside the range its parent gives");
	}
	if (again) {
		/* A node shared by snapshots: only subvolume trees may share,
		 * and everything below it was checked on its first visit. */
		if (c->t->id < CFS_TREE_FS)
			return chk_fail(c, blk, "node of an internal tree referenced twice");
		if (!nd_level(b) && c->leaf_depth >= 0 && depth != c->leaf_depth)
			return chk_fail(c, blk, "leaves at different depths");
		return 0;
	}
	if (!nd_level(b)) {
		if (c->leaf_depth < 0)
			c->leaf_depth = depth;
		if (depth != c->leaf_depth)
			return chk_fail(c, blk, "leaves at different depths");
		if (!is_root && lf_used(fs, b) < cfs_node_cap(fs->node_size) / 4)
			return chk_fail(c, blk, "leaf less than a quarter full");
		for (uint32_t i = 0; i < nr; i++) {
			if (lf_len(b, i) > cfs_max_item(fs->node_size))
				return chk_fail(c, blk, "item larger than the largest allowed");
			if (c->t->id >= CFS_TREE_FS && (err = chk_extent(c, blk, b, i)))
				return err;
		}
		c->st->leaves++;
		c->st->items += nr;
		return 0;
	}
	if (is_root ? nr < 2 : nr < cfs_min_ptrs(fs->node_size))
		return chk_fail(c, blk, is_root ? "interior root with fewer than 2 children"
					       : "interior node below the minimum fill");
	c->st->interior++;
	for (uint32_t i = 0; i < nr; i++) {
		struct cowfs_bptr cp;
		struct cowfs_node *ch;
		struct cowfs_key nk;
		if (i + 1 < nr)
			nd_key(b, i + 1, &nk);
		if (c->dropped && cowfs_drop_done_below(c->dropped, i + 1 < nr ? &nk : hi))
			continue;                /* freed by the background delete */
		in_ptr(b, i, &cp);
		if (cp.gen > nd_gen(b))
			return chk_fail(c, blk, "child newer than its parent");
		if ((err = cowfs_nc_read(fs, &cp, c->t->id, &ch)))
			return chk_fail(c, cp.blocknr, "child unreadable or fails verification");
		nd_key(b, i, &k);
		if (nd_nr(ch->buf)) {
			nd_key(ch->buf, 0, &first);
			if (cfs_key_cmp(&first, &k) < 0)
				err = chk_fail(c, cp.blocknr, "first key below the parent's key");
		}
		if (!err)
			err = chk_node(c, ch, &cp, &k, i + 1 < nr ? &nk : hi, depth + 1, false);
		cowfs_nc_put(fs, ch);
		if (err)
			return err;
	}
	return 0;
}

static int chk_tree_from(struct cowfs_tree *t, struct cowfs_tree_stats *st, char *msg, size_t msglen,
			 uint64_t *seen, struct cowfs_refmap *extra, uint64_t *nodes, const struct cowfs_key *dropped)
{
	struct chk c = { t, st, msg, msglen, -1, seen, extra, dropped, nodes };
	struct cowfs_node *n;
	plat_memset(st, 0, sizeof(*st));
	if (msglen)
		msg[0] = 0;
	int err = cowfs_nc_read(t->fs, &t->root, t->id, &n);
	if (err)
		return chk_fail(&c, t->root.blocknr, "root unreadable or fails verification");
	err = chk_node(&c, n, &t->root, NULL, NULL, 0, true);
	cowfs_nc_put(t->fs, n);
	st->height = (unsigned)c.leaf_depth + 1;
	return err;
}

static int chk_tree(struct cowfs_tree *t, struct cowfs_tree_stats *st, char *msg, size_t msglen, uint64_t *seen,
		    struct cowfs_refmap *extra, uint64_t *nodes)
{
	return chk_tree_from(t, st, msg, msglen, seen, extra, nodes, NULL);
}

int cowfs_bt_check(struct cowfs_tree *t, struct cowfs_tree_stats *st, char *msg, size_t msglen)
{
	return chk_tree(t, st, msg, msglen, NULL, NULL, NULL);
}

struct chk_closed {
	struct cowfs *fs;
	uint64_t *seen;
	struct cowfs_refmap *extra;
	uint64_t *nodes;
	char *msg;
	size_t msglen;
};

static int chk_closed_cb(void *arg, uint64_t id, const uint8_t *ri)
{
	struct chk_closed *c = arg;
	struct cowfs_tree_stats st;
	for (struct cowfs_tree *t = c->fs->trees; t; t = t->next)
		if (t->id == id)
			return 0;                  /* open: checked above */
	struct cowfs_tree t = { .fs = c->fs, .id = id };
	cfs_bptr_get(ri + CFS_RI_PTR, &t.root);
	if (cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_DROPPING) {
		/* What the background delete has not freed yet is still
		 * referenced; the rest is gone.  Names no longer matter. */
		struct cowfs_key progress;
		bool started;
		cowfs_drop_progress(ri, &progress, &started);
		return chk_tree_from(&t, &st, c->msg, c->msglen, c->seen, c->extra, c->nodes,
				     started ? &progress : NULL);
	}
	int err = chk_tree(&t, &st, c->msg, c->msglen, c->seen, c->extra, c->nodes);
	return err ? err : cowfs_check_dirs(&t, c->msg, c->msglen);
}

/* Every tree into `seen` (a zeroed bitmap of total_blocks bits) and
 * `extra` (empty). */
static int chk_all_trees(struct cowfs *fs, uint64_t *seen, struct cowfs_refmap *extra, uint64_t *nodes, char *msg,
			 size_t msglen)
{
	struct cowfs_tree_stats st;
	/* The checksum tree is opened on first use by the data path: open it
	 * here so it is walked below (a filesystem without data has none). */
	struct cowfs_tree *csum;
	int err = cowfs_tree_get(fs, CFS_TREE_CSUM, false, &csum);
	if (err == -PLAT_ENOENT)
		err = 0;
	if (!err)
		err = chk_tree(&fs->root_tree, &st, msg, msglen, seen, extra, nodes);
	if (!err)
		err = chk_tree(&fs->free_tree, &st, msg, msglen, seen, extra, nodes);
	for (struct cowfs_tree *t = fs->trees; t && !err; t = t->next)
		if (!(err = chk_tree(t, &st, msg, msglen, seen, extra, nodes)) && t->id >= CFS_TREE_FS)
			err = cowfs_check_dirs(t, msg, msglen);
	/* Trees in the root tree that are not open are checked too. */
	struct chk_closed c = { fs, seen, extra, nodes, msg, msglen };
	if (!err)
		err = cowfs_root_items(fs, CFS_TREE_FS, chk_closed_cb, &c);
	return err;
}

/* Every snapshot name (ROOT_REF) names an existing tree taken of its
 * parent. */
static int chk_names_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	void **a = arg;
	struct cowfs *fs = a[0];
	(void)data;
	(void)len;
	if (k->type != CFS_ITEM_ROOT_REF)
		return 0;
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	uint32_t rl;
	struct cowfs_key rk = { k->offset, CFS_ITEM_ROOT, 0 };
	int err = cowfs_bt_lookup(&fs->root_tree, &rk, ri, sizeof(ri), &rl);
	if (err || rl != CFS_ROOT_ITEM_SIZE || cfs_get64(ri + CFS_RI_PARENT) != k->objectid) {
		plat_snprintf(a[1], (size_t)(uintptr_t)a[2], "snapshot name of tree %llu under %llu: %s",
			      (unsigned long long)k->offset, (unsigned long long)k->objectid,
			      err ? "no such tree" : "the tree was taken of another one");
		return -PLAT_EIO;
	}
	return 0;
}

static int chk_names(struct cowfs *fs, char *msg, size_t msglen)
{
	void *a[3] = { fs, msg, (void *)(uintptr_t)msglen };
	static const struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	int err = cowfs_bt_iterate(&fs->root_tree, &from, &to, chk_names_cb, a);
	return err < 0 ? err : 0;
}

int cowfs_count_refs(struct cowfs *fs, uint64_t *seen, struct cowfs_refmap *extra, uint64_t *nodes, char *msg,
		     size_t msglen)
{
	return chk_all_trees(fs, seen, extra, nodes, msg, msglen);
}

int cowfs_used_map(struct cowfs *fs, uint64_t *seen)
{
	char msg[160];
	struct cowfs_refmap extra;
	int err = cowfs_refmap_init(&extra, fs->total_blocks);
	if (!err)
		err = chk_all_trees(fs, seen, &extra, NULL, msg, sizeof(msg));
	cowfs_refmap_free(&extra);
	return err;
}

/* Shared nodes: the references counted while walking agree with the
 * REFCOUNT items (no item = exactly one reference). */
struct refchk {
	struct cowfs *fs;
	const uint64_t *seen;
	struct cowfs_refmap *extra;
	char *msg;
	size_t msglen;
};

static int refchk_item(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct refchk *r = arg;
	uint64_t blk = k->objectid;
	if (k->type == CFS_ITEM_DATA_REF && len == 4 && blk < r->fs->total_blocks) {
		uint32_t refs = cfs_get32(data);
		uint64_t counted = 1u + cowfs_refmap_get(r->extra, blk);
		if (!(r->seen[blk / 64] & (1ull << (blk % 64))) || counted != refs) {
			plat_snprintf(r->msg, r->msglen, "refcount: data block %llu has %llu references, its item says %u",
				      (unsigned long long)blk,
				      (r->seen[blk / 64] & (1ull << (blk % 64))) ? (unsigned long long)counted : 0ull, refs);
			return -PLAT_EIO;
		}
		cowfs_refmap_clear(r->extra, blk);
		return 0;
	}
	if (k->type != CFS_ITEM_REFCOUNT || len != 12 || blk >= r->fs->total_blocks) {
		plat_snprintf(r->msg, r->msglen, "refcount tree: damaged item for block %llu", (unsigned long long)blk);
		return -PLAT_EIO;
	}
	uint32_t refs = cfs_get32((const uint8_t *)data + 8);
	if (cfs_get64(data) != r->fs->node_blocks || !(r->seen[blk / 64] & (1ull << (blk % 64))))
		return 0;              /* not a tree node: a data extent (the data layer's check) */
	uint64_t counted = 1u + cowfs_refmap_get(r->extra, blk);
	if (counted != refs) {
		plat_snprintf(r->msg, r->msglen, "refcount: node %llu has %llu references, its item says %u",
			      (unsigned long long)blk, (unsigned long long)counted, refs);
		return -PLAT_EIO;
	}
	cowfs_refmap_clear(r->extra, blk);   /* accounted for */
	return 0;
}

static int chk_refcounts(struct cowfs *fs, const uint64_t *seen, struct cowfs_refmap *extra, char *msg,
			 size_t msglen)
{
	struct refchk r = { fs, seen, extra, msg, msglen };
	if (fs->ref_tree) {
		static const struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
		int err = cowfs_bt_iterate(fs->ref_tree, &from, &to, refchk_item, &r);
		if (err)
			return err;
	}
	for (uint64_t b = 0; b < fs->total_blocks; b++)
		if (extra->low[b]) {
			plat_snprintf(msg, msglen, "refcount: block %llu is referenced %llu times but has no refcount item",
				      (unsigned long long)b, 1ull + cowfs_refmap_get(extra, b));
			return -PLAT_EIO;
		}
	return 0;
}

int cowfs_check(struct cowfs *fs, char *msg, size_t msglen)
{
	uint64_t words = (fs->total_blocks + 63) / 64;
	uint64_t *seen = plat_zalloc(words * 8);
	struct cowfs_refmap extra;
	int err = cowfs_refmap_init(&extra, fs->total_blocks);
	if (err || !seen) {
		plat_free(seen);
		cowfs_refmap_free(&extra);
		return -PLAT_ENOMEM;
	}
	err = chk_all_trees(fs, seen, &extra, NULL, msg, msglen);
	if (!err)
		err = chk_refcounts(fs, seen, &extra, msg, msglen);
	if (!err)
		err = chk_names(fs, msg, msglen);
	if (!err)
		err = cowfs_log_check(fs, msg, msglen);   /* a pending intent log names only free blocks */
	for (uint64_t b = 0; b < fs->total_blocks && !err; b++) {
		bool reserved = b < CFS_RESERVED_BLOCKS || b >= fs->total_blocks - CFS_SB_SLOTS;
		bool used = reserved || (seen[b / 64] & (1ull << (b % 64)));
		if (used != cowfs_alloc_test(fs, b)) {
			plat_snprintf(msg, msglen, "free space: block %llu is %s but the bitmap says %s",
				      (unsigned long long)b, used ? "in use" : "unreferenced",
				      used ? "free" : "allocated");
			err = -PLAT_EIO;
		}
	}
	plat_free(seen);
	cowfs_refmap_free(&extra);
	return err;
}
