/*
 * Copy-on-write B+tree (docs/format.md §4), after Rodeh, "B-trees,
 * shadowing and clones".
 *
 * Shadowing: a node written by an earlier commit is never changed.  Before
 * a change, node_cow() copies it to a newly allocated block with the
 * running generation, frees (pins) the old block and points the parent --
 * itself already shadowed, since changes always walk down from the root --
 * at the copy.  A node of the running generation is changed in place: it
 * exists only in memory until the commit writes it.
 *
 * Top-down balancing, so a change never travels back up:
 *  - insert splits a full interior child before descending into it, so a
 *    node always has room for the entry a split below it adds; a leaf that
 *    cannot take the item is split at its balanced point (items are at
 *    most a quarter of a node, so both halves stay a quarter full and the
 *    new item fits in either);
 *  - delete fixes an interior child holding only the minimum before
 *    descending (merge with a sibling when both fit in one node, else
 *    even out), so removing one entry from it keeps the minimum; a leaf
 *    below a quarter full after a delete is merged or evened out the same
 *    way;
 *  - the root grows when full and shrinks when it is interior with one
 *    child.
 * Interior keys are lower bounds of their subtrees (updated on the way
 * down when a smaller key is inserted at the far left).
 */
#include "fs/node.h"

static uint32_t max_item(struct cowfs *fs) { return cfs_max_item(fs->node_size); }
uint32_t cowfs_max_item_size(struct cowfs *fs) { return max_item(fs); }

static int read_root(struct cowfs_tree *t, struct cowfs_node **out)
{
	return cowfs_nc_read(t->fs, &t->root, t->id, out);
}

static int read_child(struct cowfs_tree *t, struct cowfs_node *n, uint32_t slot, struct cowfs_node **out)
{
	struct cowfs_bptr p;
	in_ptr(n->buf, slot, &p);
	return cowfs_nc_read(t->fs, &p, t->id, out);
}

static void set_child_ptr(struct cowfs_node *parent, uint32_t slot, const struct cowfs_bptr *p)
{
	cfs_bptr_put(in_entry(parent->buf, slot) + CFS_KEY_SIZE, p);
}

static int node_alloc(struct cowfs_tree *t, uint8_t level, struct cowfs_node **out)
{
	struct cowfs *fs = t->fs;
	uint64_t blk;
	int err = cowfs_alloc_blocks(fs, fs->node_blocks, &blk);
	if (err)
		return err;
	struct cowfs_node *n = cowfs_nc_new(fs, blk);
	if (!n) {
		cowfs_free_blocks(fs, blk, fs->node_blocks, fs->gen);
		return -PLAT_ENOMEM;
	}
	nd_init(fs, n->buf, blk, level, t->id);
	*out = n;
	return 0;
}

/* The node's block is no longer referenced by the running transaction. */
static void node_release(struct cowfs_tree *t, struct cowfs_node *n)
{
	struct cowfs *fs = t->fs;
	cowfs_free_blocks(fs, n->blocknr, fs->node_blocks, nd_gen(n->buf));
	cowfs_nc_forget(fs, n);
	cowfs_nc_put(fs, n);
}

static void point_root_at(struct cowfs_tree *t, struct cowfs_node *n)
{
	t->root.blocknr = n->blocknr;
	t->root.gen = nd_gen(n->buf);
	t->root.csum = 0;
	t->root.level = nd_level(n->buf);
	t->root_changed = true;
}

/* References of a subvolume node (1 unless shared by a snapshot). */
static int node_refs(struct cowfs_tree *t, uint64_t blk, uint32_t *refs)
{
	*refs = 1;
	return t->id >= CFS_TREE_FS ? cowfs_ref_get(t->fs, blk, refs) : 0;
}

/* A copy of a shared node is one more parent of everything the node
 * points at: its children, or for a leaf the data extents its items name
 * (Rodeh's clone rule: sharing is pushed down one level at a time, only
 * along the paths that change). */
static int node_share_below(struct cowfs_tree *t, struct cowfs_node *n)
{
	struct cowfs *fs = t->fs;
	if (!nd_level(n->buf))
		return fs->leaf_data_refs ? fs->leaf_data_refs(fs, n->buf, 1) : 0;
	for (uint32_t i = 0; i < nd_nr(n->buf); i++) {
		struct cowfs_bptr p;
		in_ptr(n->buf, i, &p);
		int err = cowfs_ref_inc(fs, p.blocknr, fs->node_blocks);
		if (err)
			return err;
	}
	return 0;
}

/* Shadow *np (reached from parent's entry pslot, or the root when parent
 * is NULL) unless it already belongs to the running transaction.  A node
 * of the running transaction is never shared: a snapshot is taken of a
 * committed root only (snapshot.c). */
static int node_cow(struct cowfs_tree *t, struct cowfs_node **np, struct cowfs_node *parent, uint32_t pslot)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *old = *np, *n;
	uint32_t refs;
	if (nd_gen(old->buf) == fs->gen)
		return 0;
	int err = node_refs(t, old->blocknr, &refs);
	if (err)
		return err;
	err = node_alloc(t, nd_level(old->buf), &n);
	if (err)
		return err;
	plat_memcpy(n->buf + CFS_NH_SIZE, old->buf + CFS_NH_SIZE, fs->node_size - CFS_NH_SIZE);
	nd_set_nr(n->buf, nd_nr(old->buf));
	if (refs > 1) {
		/* The other trees keep the old node: one reference less. */
		bool last;
		err = node_share_below(t, n);
		if (!err)
			err = cowfs_ref_dec(fs, old->blocknr, &last);
		cowfs_nc_put(fs, old);
		if (err) {
			cowfs_nc_put(fs, n);     /* the change fails; the fs goes read-only */
			return err;
		}
	} else {
		node_release(t, old);
	}
	if (parent) {
		struct cowfs_bptr p = { n->blocknr, fs->gen, 0, nd_level(n->buf) };
		set_child_ptr(parent, pslot, &p);
	} else {
		point_root_at(t, n);
	}
	*np = n;
	return 0;
}

/* Child slot for key k: the last entry whose key <= k, or 0. */
static uint32_t child_slot(const uint8_t *b, const struct cowfs_key *k)
{
	bool exact;
	uint32_t i = nd_lower_bound(b, k, &exact);
	return exact ? i : (i ? i - 1 : 0);
}

/* ---- read side ---- */

int cowfs_bt_lookup(struct cowfs_tree *t, const struct cowfs_key *k, void *buf, uint32_t bufsize, uint32_t *len)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *n, *c;
	int err = read_root(t, &n);
	if (err)
		return err;
	while (nd_level(n->buf)) {
		struct cowfs_key first;
		nd_key(n->buf, 0, &first);
		if (cfs_key_cmp(k, &first) < 0) {
			cowfs_nc_put(fs, n);
			return -PLAT_ENOENT;
		}
		err = read_child(t, n, child_slot(n->buf, k), &c);
		cowfs_nc_put(fs, n);
		if (err)
			return err;
		n = c;
	}
	bool exact;
	uint32_t i = nd_lower_bound(n->buf, k, &exact);
	if (exact) {
		uint32_t l = lf_len(n->buf, i);
		if (buf)
			plat_memcpy(buf, n->buf + lf_off(n->buf, i), l < bufsize ? l : bufsize);
		if (len)
			*len = l;
	}
	cowfs_nc_put(fs, n);
	return exact ? 0 : -PLAT_ENOENT;
}

int cowfs_bt_shared(struct cowfs_tree *t, const struct cowfs_key *k, bool *shared)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *n, *c;
	uint32_t refs;
	*shared = false;
	int err = read_root(t, &n);
	for (;;) {
		if (err)
			return err;
		/* A node of the running transaction is this tree's alone (node_cow). */
		if (nd_gen(n->buf) != fs->gen && !(err = node_refs(t, n->blocknr, &refs)) && refs > 1)
			*shared = true;
		if (err || *shared || !nd_level(n->buf))
			break;
		err = read_child(t, n, child_slot(n->buf, k), &c);
		cowfs_nc_put(fs, n);
		n = c;
	}
	cowfs_nc_put(fs, n);
	return err;
}

struct walk {
	struct cowfs_tree *t;
	const struct cowfs_key *from, *to;
	cowfs_iter_fn cb;
	void *arg;
	unsigned leaves;    /* visited: a scan past two reads ahead */
};

/* Read-ahead for a walk over leaves (ncache.c): the children of n from
 * slot i on whose keys are inside the walk, as one batch.  Only once the
 * walk has gone through two leaves, so lookups and short iterations
 * (cowfs_bt_next) never read more than they use.  Returns the first slot
 * not covered. */
#define WALK_RA_NODES 32u
static uint32_t walk_readahead(struct walk *w, struct cowfs_node *n, uint32_t i)
{
	struct cowfs_bptr p[WALK_RA_NODES];
	uint32_t nr = nd_nr(n->buf), c = 0;
	struct cowfs_key k;
	for (; i < nr && c < WALK_RA_NODES; i++, c++) {
		nd_key(n->buf, i, &k);
		if (cfs_key_cmp(&k, w->to) > 0)
			break;
		in_ptr(n->buf, i, &p[c]);
	}
	cowfs_nc_prefetch(w->t->fs, p, c, w->t->id);
	return i;
}

static int walk_node(struct walk *w, struct cowfs_node *n)
{
	const uint8_t *b = n->buf;
	uint32_t nr = nd_nr(b);
	struct cowfs_key k;
	bool exact;
	if (!nd_level(b)) {
		w->leaves++;
		for (uint32_t i = nd_lower_bound(b, w->from, &exact); i < nr; i++) {
			nd_key(b, i, &k);
			if (cfs_key_cmp(&k, w->to) > 0)
				return 1;
			int r = w->cb(w->arg, &k, b + lf_off(b, i), lf_len(b, i));
			if (r)
				return r < 0 ? r : 2 + r;
		}
		return 0;
	}
	uint32_t ra_end = 0;
	for (uint32_t i = child_slot(b, w->from); i < nr; i++) {
		nd_key(b, i, &k);
		if (cfs_key_cmp(&k, w->to) > 0)
			return 1;
		if (nd_level(b) == 1 && w->leaves >= 2 && i >= ra_end)
			ra_end = walk_readahead(w, n, i);
		struct cowfs_node *c;
		int r = read_child(w->t, n, i, &c);
		if (r)
			return r;
		r = walk_node(w, c);
		cowfs_nc_put(w->t->fs, c);
		if (r)
			return r;
	}
	return 0;
}

/* walk_node returns 1 for "past `to`", 2 + r for a callback's stop r. */
int cowfs_bt_iterate(struct cowfs_tree *t, const struct cowfs_key *from, const struct cowfs_key *to,
		     cowfs_iter_fn cb, void *arg)
{
	struct walk w = { t, from, to, cb, arg, 0 };
	struct cowfs_node *n;
	int r = read_root(t, &n);
	if (r)
		return r;
	r = walk_node(&w, n);
	cowfs_nc_put(t->fs, n);
	return r < 0 ? r : r >= 2 ? r - 2 : 0;
}

struct next_ctx {
	struct cowfs_key *k;
	void *buf;
	uint32_t bufsize, *len;
};

static int next_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct next_ctx *c = arg;
	*c->k = *k;
	if (c->buf)
		plat_memcpy(c->buf, data, len < c->bufsize ? len : c->bufsize);
	if (c->len)
		*c->len = len;
	return 1;
}

int cowfs_bt_next(struct cowfs_tree *t, struct cowfs_key *k, void *buf, uint32_t bufsize, uint32_t *len)
{
	static const struct cowfs_key last = { UINT64_MAX, 255, UINT64_MAX };
	struct next_ctx c = { k, buf, bufsize, len };
	int r = cowfs_bt_iterate(t, k, &last, next_cb, &c);
	return r < 0 ? r : r == 1 ? 0 : -PLAT_ENOENT;
}

int cowfs_bt_last(struct cowfs_tree *t, struct cowfs_key *k)
{
	struct cowfs_node *n, *c;
	int err = read_root(t, &n);
	if (err)
		return err;
	while (nd_level(n->buf)) {
		err = read_child(t, n, nd_nr(n->buf) - 1, &c);
		cowfs_nc_put(t->fs, n);
		if (err)
			return err;
		n = c;
	}
	uint32_t nr = nd_nr(n->buf);
	if (nr)
		nd_key(n->buf, nr - 1, k);
	cowfs_nc_put(t->fs, n);
	return nr ? 0 : -PLAT_ENOENT;
}

/* Where prev_in copies the item it finds (cowfs_bt_prev_item); buf NULL:
 * the key only. */
struct prev_out { void *buf; uint32_t bufsize, *len; };

/* The largest key <= k in the subtree of n: 0 and *k set, 1 none there.
 * A parent's key is a lower bound of its child's keys, not always equal
 * to the first (deleting a leaf's first item leaves the parent's key), so
 * the child child_slot picks may hold only larger keys: then the answer
 * is the largest key of the child before it, whose keys are all smaller
 * than the parent key that sent k right. */
static int prev_in(struct cowfs_tree *t, struct cowfs_node *n, struct cowfs_key *k, const struct prev_out *o)
{
	const uint8_t *b = n->buf;
	bool exact;
	if (!nd_level(b)) {
		uint32_t i = nd_lower_bound(b, k, &exact);
		if (!exact && i == 0)
			return 1;
		if (!exact)
			i--;
		nd_key(b, i, k);
		if (o->buf) {
			uint32_t l = lf_len(b, i);
			plat_memcpy(o->buf, b + lf_off(b, i), l < o->bufsize ? l : o->bufsize);
			*o->len = l;
		}
		return 0;
	}
	struct cowfs_key first;
	nd_key(b, 0, &first);
	if (cfs_key_cmp(k, &first) < 0)
		return 1;
	for (uint32_t slot = child_slot(b, k) + 1; slot-- > 0;) {
		struct cowfs_node *c;
		int r = read_child(t, n, slot, &c);
		if (r)
			return r;
		r = prev_in(t, c, k, o);
		cowfs_nc_put(t->fs, c);
		if (r <= 0)
			return r;
	}
	return 1;
}

static int bt_prev(struct cowfs_tree *t, struct cowfs_key *k, const struct prev_out *o)
{
	struct cowfs_node *n;
	int r = read_root(t, &n);
	if (r)
		return r;
	r = prev_in(t, n, k, o);
	cowfs_nc_put(t->fs, n);
	return r < 0 ? r : r ? -PLAT_ENOENT : 0;
}

int cowfs_bt_prev(struct cowfs_tree *t, struct cowfs_key *k)
{
	return bt_prev(t, k, &(struct prev_out){ NULL, 0, NULL });
}

int cowfs_bt_prev_item(struct cowfs_tree *t, struct cowfs_key *k, void *buf, uint32_t bufsize, uint32_t *len)
{
	return bt_prev(t, k, &(struct prev_out){ buf, bufsize, len });
}

/* ---- insert ---- */

static bool node_full(struct cowfs *fs, const uint8_t *b, uint32_t need)
{
	if (nd_level(b))
		return nd_nr(b) >= cfs_max_ptrs(fs->node_size);
	return lf_free(fs, b) < need;
}

/* Split `child` (entry slot of parent, both shadowed) into itself and a
 * new right sibling added at slot + 1. */
static int split_child(struct cowfs_tree *t, struct cowfs_node *parent, uint32_t slot, struct cowfs_node *child,
		       struct cowfs_node **right_out)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *r;
	int err = node_alloc(t, nd_level(child->buf), &r);
	if (err)
		return err;
	nd_redistribute(fs, child->buf, r->buf, nd_balanced_split(fs, child->buf, r->buf));
	struct cowfs_key k;
	struct cowfs_bptr p = { r->blocknr, fs->gen, 0, nd_level(r->buf) };
	nd_key(r->buf, 0, &k);
	in_insert_at(fs, parent->buf, slot + 1, &k, &p);
	*right_out = r;
	return 0;
}

/* A new root one level up with the old root as its only child. */
static int grow_root(struct cowfs_tree *t, struct cowfs_node **rootp)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *old = *rootp, *n;
	int err = node_alloc(t, nd_level(old->buf) + 1, &n);
	if (err)
		return err;
	struct cowfs_key k;
	struct cowfs_bptr p = { old->blocknr, fs->gen, 0, nd_level(old->buf) };
	nd_key(old->buf, 0, &k);
	in_insert_at(fs, n->buf, 0, &k, &p);
	point_root_at(t, n);
	cowfs_nc_put(fs, old);
	*rootp = n;
	return 0;
}

static int insert_item(struct cowfs_tree *t, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct cowfs *fs = t->fs;
	uint32_t need = CFS_LEAF_ITEM_SIZE + len;
	struct cowfs_node *n, *c, *r;
	int err = read_root(t, &n);
	if (!err)
		err = node_cow(t, &n, NULL, 0);
	if (err)
		goto out_put;
	if (node_full(fs, n->buf, need) && (err = grow_root(t, &n)))
		goto out_put;
	while (nd_level(n->buf)) {
		uint32_t slot = child_slot(n->buf, k);
		struct cowfs_key first;
		nd_key(n->buf, 0, &first);
		if (slot == 0 && cfs_key_cmp(k, &first) < 0)
			cfs_key_put(in_entry(n->buf, 0), k);   /* keep the lower bound */
		if ((err = read_child(t, n, slot, &c)))
			goto out_put;
		if ((err = node_cow(t, &c, n, slot))) {
			cowfs_nc_put(fs, c);
			goto out_put;
		}
		if (node_full(fs, c->buf, need)) {
			if ((err = split_child(t, n, slot, c, &r))) {
				cowfs_nc_put(fs, c);
				goto out_put;
			}
			struct cowfs_key rk;
			nd_key(r->buf, 0, &rk);
			if (cfs_key_cmp(k, &rk) >= 0) {
				cowfs_nc_put(fs, c);
				c = r;
			} else {
				cowfs_nc_put(fs, r);
			}
		}
		cowfs_nc_put(fs, n);
		n = c;
	}
	bool exact;
	uint32_t p = nd_lower_bound(n->buf, k, &exact);
	PLAT_ASSERT(!exact && lf_free(fs, n->buf) >= need);
	lf_insert_at(fs, n->buf, p, k, data, len);
out_put:
	cowfs_nc_put(fs, n);
	return err;
}

/* ---- delete ---- */

static bool node_mergeable(struct cowfs *fs, const uint8_t *l, const uint8_t *r)
{
	if (nd_level(l))
		return nd_nr(l) + nd_nr(r) <= cfs_max_ptrs(fs->node_size);
	return lf_used(fs, l) + lf_used(fs, r) <= cfs_node_cap(fs->node_size);
}

/*
 * Child `c` at `slot` of `parent` (both shadowed) is at its minimum: merge
 * it with a neighbour when both fit in one node (the right one of the
 * pair is freed and its entry removed from the parent), else even the two
 * out (the smaller one only gains, so keys never leave c's range).
 * Consumes the reference on c.
 */
static int fix_child(struct cowfs_tree *t, struct cowfs_node *parent, uint32_t slot, struct cowfs_node *c)
{
	struct cowfs *fs = t->fs;
	uint32_t sslot = slot ? slot - 1 : slot + 1;
	struct cowfs_node *s;
	PLAT_ASSERT(nd_nr(parent->buf) >= 2);
	int err = read_child(t, parent, sslot, &s);
	if (err) {
		cowfs_nc_put(fs, c);
		return err;
	}
	uint32_t lslot = slot < sslot ? slot : sslot;
	struct cowfs_node *l = slot < sslot ? c : s, *r = slot < sslot ? s : c;
	if (node_mergeable(fs, l->buf, r->buf)) {
		/* The sibling is shadowed even when it is the right one, which
		 * the merge frees: shared with a snapshot, it must lose one
		 * reference (its copy's children gain one), not be freed. */
		if ((err = node_cow(t, &s, parent, sslot)))
			goto out;
		l = slot < sslot ? c : s;
		r = slot < sslot ? s : c;
		nd_redistribute(fs, l->buf, r->buf, nd_nr(l->buf) + nd_nr(r->buf));
		in_delete_at(fs, parent->buf, lslot + 1);
		cowfs_nc_put(fs, l);
		node_release(t, r);
		return 0;
	}
	if ((err = node_cow(t, &s, parent, sslot)))
		goto out;
	l = slot < sslot ? c : s;
	r = slot < sslot ? s : c;
	nd_redistribute(fs, l->buf, r->buf, nd_balanced_split(fs, l->buf, r->buf));
	struct cowfs_key rk;
	nd_key(r->buf, 0, &rk);
	cfs_key_put(in_entry(parent->buf, lslot + 1), &rk);
out:
	cowfs_nc_put(fs, s);
	cowfs_nc_put(fs, c);
	return err;
}

/* An interior root with one child hands the root over to that child. */
static int shrink_root(struct cowfs_tree *t, struct cowfs_node **rootp)
{
	struct cowfs_node *n = *rootp, *c;
	while (nd_level(n->buf) && nd_nr(n->buf) == 1) {
		int err = read_child(t, n, 0, &c);
		if (err)
			return err;
		point_root_at(t, c);
		node_release(t, n);
		n = c;
		*rootp = n;
	}
	return 0;
}

static int delete_item(struct cowfs_tree *t, const struct cowfs_key *k)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *n, *c, *parent = NULL;
	uint32_t pslot = 0, min = cfs_min_ptrs(fs->node_size);
	int err = read_root(t, &n);
	if (!err)
		err = node_cow(t, &n, NULL, 0);
	if (err)
		goto out_put;
	while (nd_level(n->buf)) {
		uint32_t slot = child_slot(n->buf, k);
		if ((err = read_child(t, n, slot, &c)))
			goto out_put;
		if ((err = node_cow(t, &c, n, slot))) {
			cowfs_nc_put(fs, c);
			goto out_put;
		}
		if (nd_level(c->buf) && nd_nr(c->buf) <= min) {
			if ((err = fix_child(t, n, slot, c)))
				goto out_put;
			if (!parent && (err = shrink_root(t, &n)))
				goto out_put;
			continue;    /* pick the child again */
		}
		if (parent)
			cowfs_nc_put(fs, parent);
		parent = n;
		pslot = slot;
		n = c;
	}
	bool exact;
	uint32_t p = nd_lower_bound(n->buf, k, &exact);
	PLAT_ASSERT(exact);
	lf_delete_at(fs, n->buf, p);
	if (parent && lf_used(fs, n->buf) < cfs_node_cap(fs->node_size) / 4) {
		err = fix_child(t, parent, pslot, n);
		n = NULL;
		if (!err && parent->blocknr == t->root.blocknr)
			err = shrink_root(t, &parent);
	}
out_put:
	if (n)
		cowfs_nc_put(fs, n);
	if (parent)
		cowfs_nc_put(fs, parent);
	return err;
}

/* ---- public changes ---- */

static int change_ok(struct cowfs_tree *t)
{
	if (t->readonly)
		return -PLAT_EROFS;
	return t->fs->readonly ? (t->fs->error ? t->fs->error : -PLAT_EROFS) : 0;
}

/* A failure half-way through a change (no space for a node, no memory,
 * a corrupt node) leaves the in-memory tree inconsistent: stop all
 * changes; the last commit is intact.  A change made while the tree is
 * watched is noted (the intent log records its result, fs/file_log.c). */
static int change_done(struct cowfs_tree *t, const struct cowfs_key *k, int err, const char *what)
{
	if (err)
		cowfs_fail(t->fs, err, "%s in tree %llu failed half-way", what, (unsigned long long)t->id);
	else
		t->fs->dirty_changes++;
	if (!err && t->watch)
		cowfs_keyset_add(t->watch, k);
	return err;
}

void cowfs_keyset_add(struct cowfs_keyset *s, const struct cowfs_key *k)
{
	if (s->overflow)
		return;
	for (uint32_t i = s->n; i-- > 0;)
		if (!cfs_key_cmp(&s->k[i], k))
			return;
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 64;
		struct cowfs_key *n = cap <= COWFS_KEYSET_MAX ? plat_alloc(cap * sizeof(*n)) : NULL;
		if (!n) {
			s->overflow = true;
			return;
		}
		if (s->n)
			plat_memcpy(n, s->k, s->n * sizeof(*n));
		plat_free(s->k);
		s->k = n;
		s->cap = cap;
	}
	s->k[s->n++] = *k;
}

void cowfs_keyset_free(struct cowfs_keyset *s)
{
	plat_free(s->k);
	*s = (struct cowfs_keyset){ 0 };
}

int cowfs_bt_insert(struct cowfs_tree *t, const struct cowfs_key *k, const void *data, uint32_t len)
{
	int err = change_ok(t);
	if (err)
		return err;
	if (len > max_item(t->fs))
		return -PLAT_EINVAL;
	err = cowfs_bt_lookup(t, k, NULL, 0, NULL);
	if (err != -PLAT_ENOENT)
		return err ? err : -PLAT_EEXIST;
	return change_done(t, k, insert_item(t, k, data, len), "insert");
}

int cowfs_bt_delete(struct cowfs_tree *t, const struct cowfs_key *k)
{
	int err = change_ok(t);
	if (err)
		return err;
	if ((err = cowfs_bt_lookup(t, k, NULL, 0, NULL)))
		return err;
	return change_done(t, k, delete_item(t, k), "delete");
}

int cowfs_bt_update(struct cowfs_tree *t, const struct cowfs_key *k, const void *data, uint32_t len)
{
	int err = change_ok(t);
	if (err)
		return err;
	if (len > max_item(t->fs))
		return -PLAT_EINVAL;
	uint32_t old;
	if ((err = cowfs_bt_lookup(t, k, NULL, 0, &old)))
		return err;
	if (old != len) {
		err = delete_item(t, k);
		if (!err)
			err = insert_item(t, k, data, len);
		return change_done(t, k, err, "update");
	}
	/* Same size: shadow the path and overwrite the data in place. */
	struct cowfs *fs = t->fs;
	struct cowfs_node *n, *c;
	err = read_root(t, &n);
	if (!err && !(err = node_cow(t, &n, NULL, 0))) {
		while (nd_level(n->buf)) {
			uint32_t slot = child_slot(n->buf, k);
			if ((err = read_child(t, n, slot, &c)))
				break;
			err = node_cow(t, &c, n, slot);
			cowfs_nc_put(fs, n);
			n = c;
			if (err)
				break;
		}
		if (!err) {
			bool exact;
			uint32_t p = nd_lower_bound(n->buf, k, &exact);
			PLAT_ASSERT(exact);
			plat_memcpy(n->buf + lf_off(n->buf, p), data, len);
		}
		cowfs_nc_put(fs, n);
	}
	return change_done(t, k, err, "update");
}

/* ---- dropping a tree (snapshot delete) ---- */

int cowfs_bt_drop(struct cowfs_tree *t, const struct cowfs_bptr *p)
{
	struct cowfs *fs = t->fs;
	struct cowfs_node *n;
	uint32_t refs;
	int err = node_refs(t, p->blocknr, &refs);
	if (err)
		return err;
	if (refs > 1) {
		bool last;
		return cowfs_ref_dec(fs, p->blocknr, &last);
	}
	if ((err = cowfs_nc_read(fs, p, t->id, &n)))
		return err;
	if (nd_level(n->buf)) {
		for (uint32_t i = 0; i < nd_nr(n->buf) && !err; i++) {
			struct cowfs_bptr cp;
			in_ptr(n->buf, i, &cp);
			err = cowfs_bt_drop(t, &cp);
		}
	} else if (fs->leaf_data_refs) {
		err = fs->leaf_data_refs(fs, n->buf, -1);
	}
	if (err) {
		cowfs_nc_put(fs, n);
		return err;
	}
	node_release(t, n);
	return 0;
}

int cowfs_tree_new_root(struct cowfs_tree *t)
{
	struct cowfs_node *n;
	int err = node_alloc(t, 0, &n);
	if (err)
		return err;
	point_root_at(t, n);
	cowfs_nc_put(t->fs, n);
	t->fs->dirty_changes++;
	return 0;
}
