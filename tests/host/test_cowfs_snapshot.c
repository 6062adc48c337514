/* Snapshots and clones of subvolume trees (fs/snapshot.c, fs/refcount.c,
 * btree.c's shared-node shadowing; docs/format.md §10): a snapshot keeps
 * the state it was taken of while its source changes; clones change
 * independently; deleting any of them frees exactly what no other tree
 * references (the whole-filesystem check compares the space map with the
 * referenced blocks and the counted references with the refcount items);
 * read-only snapshots refuse changes; damaged refcounts are found. */
#define TEST_SUITE "cowfs_snapshot"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"

#define KEYS 6000u
#define SRC CFS_TREE_FS

struct fx {
	struct ct_image im;
	struct cowfs *fs;
	uint64_t rng;
	uint32_t next_ver;
};

static void fx_mount(struct fx *f)
{
	struct cowfs_mount_opts o = { .cache_bytes = 1 << 20 };   /* small: nodes come and go */
	EXPECT_EQ_INT(cowfs_mount(f->im.bdev, &o, &f->fs), 0);
}

static void fx_init(struct fx *f, uint32_t node_size)
{
	memset(f, 0, sizeof(*f));
	ct_image_create(&f->im, "snap", 64 << 20);
	struct cowfs_mkfs_opts mo = { .node_size = node_size, .bare = true };
	EXPECT_EQ_INT(cowfs_mkfs(f->im.bdev, &mo), 0);
	fx_mount(f);
	f->rng = 0x5eed;
	f->next_ver = 1;
}

/* A filesystem whose source tree holds `ops` random operations' worth. */
static void fx_init_filled(struct fx *f, uint32_t node_size, struct ct_model *m, uint32_t maxlen, unsigned ops);

static void fx_remount(struct fx *f)
{
	EXPECT_EQ_INT(cowfs_unmount(f->fs), 0);
	ct_image_reopen(&f->im);
	fx_mount(f);
}

static struct cowfs_tree *tree(struct fx *f, uint64_t id)
{
	struct cowfs_tree *t = NULL;
	EXPECT_EQ_INT(cowfs_tree_open(f->fs, id, id == SRC, &t), 0);
	return t;
}

static void run_ops(struct fx *f, uint64_t id, struct ct_model *m, unsigned n, unsigned insert_pct)
{
	struct cowfs_tree *t = tree(f, id);
	for (unsigned i = 0; i < n && t; i++) {
		const char *why = ct_random_op(t, m, &f->rng, insert_pct, &f->next_ver);
		if (why) {
			test_fail_at(__FILE__, __LINE__, why);
			return;
		}
		if (i % 500 == 499)
			EXPECT(cowfs_commit_if_needed(f->fs) >= 0);
	}
}

static void fx_init_filled(struct fx *f, uint32_t node_size, struct ct_model *m, uint32_t maxlen, unsigned ops)
{
	fx_init(f, node_size);
	ct_model_init(m, KEYS, maxlen);
	run_ops(f, SRC, m, ops, 80);
}

static void fx_done(struct fx *f, struct ct_model *m)
{
	cowfs_unmount(f->fs);
	ct_image_remove(&f->im);
	free(m->ver);
}

static void expect_tree(struct fx *f, uint64_t id, const struct ct_model *m)
{
	struct cowfs_tree *t = tree(f, id);
	const char *why = t ? ct_compare(t, m) : "no tree";
	if (why)
		fprintf(stderr, "tree %llu: %s\n", (unsigned long long)id, why);
	EXPECT(why == NULL);
}

static void expect_clean(struct fx *f)
{
	char msg[200];
	int err = cowfs_check(f->fs, msg, sizeof(msg));
	if (err)
		fprintf(stderr, "check: %s\n", msg);
	EXPECT_EQ_INT(err, 0);
}

TEST(snapshot_keeps_its_state)
{
	struct fx f;
	struct ct_model live, frozen;
	fx_init_filled(&f, 4096, &live, 200, 8000);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 300, true), 0);
	ct_model_copy(&frozen, &live);
	expect_clean(&f);
	run_ops(&f, SRC, &live, 8000, 40);
	expect_tree(&f, 300, &frozen);
	expect_tree(&f, SRC, &live);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	fx_remount(&f);
	expect_tree(&f, 300, &frozen);
	expect_tree(&f, SRC, &live);
	expect_clean(&f);
	/* Read-only: every change refused, nothing changed. */
	struct cowfs_key k;
	ct_key(1, &k);
	EXPECT_EQ_INT(cowfs_bt_insert(tree(&f, 300), &k, "x", 1), frozen.ver[1] ? -PLAT_EEXIST : -PLAT_EROFS);
	ct_key(ct_next_present(&frozen, 0), &k);
	EXPECT_EQ_INT(cowfs_bt_delete(tree(&f, 300), &k), -PLAT_EROFS);
	EXPECT_EQ_INT(cowfs_bt_update(tree(&f, 300), &k, "y", 1), -PLAT_EROFS);
	expect_tree(&f, 300, &frozen);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 300, true), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_unmount(f.fs), 0);
	ct_image_remove(&f.im);
	free(live.ver);
	free(frozen.ver);
}

/* Deleting keys in order from the left end of a tree shared with a
 * snapshot: each emptied leaf merges with its right sibling, which the
 * live tree has not changed yet (still shared): that sibling must lose a
 * reference, not be freed under the snapshot. */
TEST(merge_with_a_shared_right_sibling)
{
	struct fx f;
	struct ct_model live, frozen;
	fx_init(&f, 4096);
	ct_model_init(&live, KEYS, 200);
	struct cowfs_tree *t = tree(&f, SRC);
	uint8_t buf[200];
	for (uint32_t i = 0; i < 3000 && t; i++) {
		struct cowfs_key k;
		ct_key(i, &k);
		live.ver[i] = f.next_ver++;
		uint32_t len = ct_len(&live, i, live.ver[i]);
		ct_value(i, live.ver[i], buf, len);
		EXPECT_EQ_INT(cowfs_bt_insert(t, &k, buf, len), 0);
		live.present++;
	}
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 300, true), 0);
	ct_model_copy(&frozen, &live);
	for (uint32_t i = 0; i < 1500 && t; i++) {
		struct cowfs_key k;
		ct_key(i, &k);
		EXPECT_EQ_INT(cowfs_bt_delete(t, &k), 0);
		live.ver[i] = 0;
		live.present--;
	}
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	expect_tree(&f, 300, &frozen);
	expect_tree(&f, SRC, &live);
	fx_remount(&f);
	expect_tree(&f, 300, &frozen);
	expect_clean(&f);
	fx_done(&f, &live);
	free(frozen.ver);
}

struct list_ctx { unsigned n; uint64_t ids[8], parents[8]; bool ro[8]; };
static int list_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct list_ctx *c = arg;
	if (c->n < 8) {
		c->ids[c->n] = si->id;
		c->parents[c->n] = si->parent;
		c->ro[c->n] = si->readonly;
	}
	c->n++;
	return 0;
}

TEST(clones_change_independently_and_delete_frees)
{
	struct fx f;
	struct ct_model m[4];
	fx_init(&f, 4096);
	struct cowfs_info before;
	ct_model_init(&m[0], KEYS, 300);
	run_ops(&f, SRC, &m[0], 10000, 80);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	cowfs_info(f.fs, &before);
	/* Three generations: a clone of the source, a clone of the clone and
	 * a read-only snapshot of the source, each then changed. */
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 301, false), 0);
	ct_model_copy(&m[1], &m[0]);
	run_ops(&f, 301, &m[1], 3000, 50);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, 301, 302, false), 0);
	ct_model_copy(&m[2], &m[1]);
	run_ops(&f, SRC, &m[0], 3000, 50);
	run_ops(&f, 302, &m[2], 3000, 50);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 303, true), 0);
	ct_model_copy(&m[3], &m[0]);
	run_ops(&f, SRC, &m[0], 3000, 50);
	run_ops(&f, 301, &m[1], 3000, 50);
	for (unsigned i = 0; i < 4; i++)
		expect_tree(&f, i ? 300 + i : SRC, &m[i]);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	struct list_ctx lc = { 0 };
	EXPECT_EQ_INT(cowfs_subvol_list(f.fs, list_cb, &lc), 0);
	EXPECT_EQ_INT(lc.n, 4);
	EXPECT(lc.ids[0] == SRC && lc.ids[1] == 301 && lc.ids[3] == 303);
	EXPECT(lc.parents[2] == 301 && lc.parents[3] == SRC && lc.ro[3] && !lc.ro[1]);
	fx_remount(&f);
	for (unsigned i = 0; i < 4; i++)
		expect_tree(&f, i ? 300 + i : SRC, &m[i]);
	/* Delete the middle generation, then the others: the rest stays
	 * intact and the check (space map = referenced blocks, counted
	 * references = refcount items) is clean after each. */
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 301), 0);
	expect_tree(&f, 302, &m[2]);
	expect_tree(&f, SRC, &m[0]);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);                   /* deleted, not yet freed */
	EXPECT_EQ_INT(cowfs_drop_all(f.fs), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 302), 0);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 303), 0);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 303), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	EXPECT_EQ_INT(cowfs_drop_all(f.fs), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	expect_tree(&f, SRC, &m[0]);
	/* Everything shared is gone: no refcount item is left. */
	struct cowfs_key k = { 0, 0, 0 };
	EXPECT(!f.fs->ref_tree || cowfs_bt_next(f.fs->ref_tree, &k, NULL, 0, NULL) == -PLAT_ENOENT);
	fx_remount(&f);
	expect_tree(&f, SRC, &m[0]);
	expect_clean(&f);
	EXPECT_EQ_INT(cowfs_unmount(f.fs), 0);
	ct_image_remove(&f.im);
	for (unsigned i = 0; i < 4; i++)
		free(m[i].ver);
}

TEST(delete_source_keeps_snapshot)
{
	struct fx f;
	struct ct_model live, frozen;
	fx_init_filled(&f, 16384, &live, 500, 9000);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 310, true), 0);
	ct_model_copy(&frozen, &live);
	run_ops(&f, SRC, &live, 2000, 50);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, SRC), 0);
	EXPECT_EQ_INT(cowfs_drop_all(f.fs), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_tree(&f, 310, &frozen);
	expect_clean(&f);
	fx_remount(&f);
	expect_tree(&f, 310, &frozen);
	expect_clean(&f);
	EXPECT_EQ_INT(cowfs_unmount(f.fs), 0);
	ct_image_remove(&f.im);
	free(live.ver);
	free(frozen.ver);
}

TEST(damaged_refcounts_found)
{
	struct fx f;
	struct ct_model live;
	fx_init_filled(&f, 4096, &live, 200, 6000);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 320, true), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	/* The root is shared by two trees: its item says 2.  Say 3. */
	struct cowfs_tree *t = tree(&f, SRC);
	struct cowfs_key k = { t->root.blocknr, CFS_ITEM_REFCOUNT, 0 };
	uint8_t v[12];
	uint32_t len;
	EXPECT_EQ_INT(cowfs_bt_lookup(f.fs->ref_tree, &k, v, sizeof(v), &len), 0);
	EXPECT_EQ_INT(cfs_get32(v + 8), 2);
	cfs_put32(v + 8, 3);
	EXPECT_EQ_INT(cowfs_bt_update(f.fs->ref_tree, &k, v, sizeof(v)), 0);
	char msg[200];
	EXPECT_EQ_INT(cowfs_check(f.fs, msg, sizeof(msg)), -PLAT_EIO);
	EXPECT(strstr(msg, "has 2 references, its item says 3") != NULL);
	/* No item at all for a node two trees reference. */
	EXPECT_EQ_INT(cowfs_bt_delete(f.fs->ref_tree, &k), 0);
	EXPECT_EQ_INT(cowfs_check(f.fs, msg, sizeof(msg)), -PLAT_EIO);
	EXPECT(strstr(msg, "referenced 2 times but has no refcount item") != NULL);
	fx_done(&f, &live);
}

TEST(unshared_filesystem_has_no_refcount_tree)
{
	struct fx f;
	struct ct_model live;
	fx_init_filled(&f, 4096, &live, 200, 4000);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	EXPECT(f.fs->ref_tree == NULL && !f.fs->refs_present);
	fx_done(&f, &live);
}

/* The background delete in small steps: the check is clean after every
 * committed step (the dying tree's freed part is skipped, its rest still
 * counted), a remount half-way resumes, and at the end everything the
 * dying tree alone held is free again. */
TEST(background_delete_in_steps)
{
	struct fx f;
	struct ct_model live, frozen;
	fx_init_filled(&f, 4096, &live, 200, 12000);
	struct cowfs_info empty_snap;
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	cowfs_info(f.fs, &empty_snap);
	EXPECT_EQ_INT(cowfs_snapshot_create(f.fs, SRC, 330, false), 0);
	ct_model_copy(&frozen, &live);
	run_ops(&f, 330, &frozen, 6000, 30);     /* the clone diverges: it owns many nodes */
	run_ops(&f, SRC, &live, 2000, 50);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 330), 0);
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(f.fs, 330, false, &t), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	bool more = true;
	unsigned steps = 0;
	while (more && steps < 10000) {
		EXPECT_EQ_INT(cowfs_drop_step(f.fs, 7, &more), 0);
		EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
		if (steps++ % 5 == 0)
			expect_clean(&f);
		if (steps == 10)
			fx_remount(&f);           /* resumes from the committed progress */
	}
	EXPECT(steps > 10 && !more);
	uint64_t id;
	EXPECT_EQ_INT(cowfs_drop_pending(f.fs, &id), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	expect_tree(&f, SRC, &live);
	struct cowfs_key k = { 0, 0, 0 };
	EXPECT(!f.fs->ref_tree || cowfs_bt_next(f.fs->ref_tree, &k, NULL, 0, NULL) == -PLAT_ENOENT);
	free(frozen.ver);
	fx_done(&f, &live);
}

struct name_list { unsigned n; char names[8][32]; uint64_t ids[8]; };
static int name_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct name_list *l = arg;
	if (si->name[0] && l->n < 8) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", si->name);
		l->ids[l->n++] = si->id;
	}
	return 0;
}

TEST(named_snapshots)
{
	struct fx f;
	struct ct_model live;
	fx_init_filled(&f, 4096, &live, 200, 3000);
	uint64_t a, b, got;
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, "monday", 6, true, &a), 0);
	run_ops(&f, SRC, &live, 500, 50);
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, "tuesday", 7, false, &b), 0);
	EXPECT(a > SRC && b > a);
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, "monday", 6, true, &got), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, "a/b", 3, true, &got), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, "", 0, true, &got), -PLAT_EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname));
	EXPECT_EQ_INT(cowfs_snapshot_named(f.fs, SRC, longname, 256, true, &got), -PLAT_ENAMETOOLONG);
	EXPECT_EQ_INT(cowfs_snapshot_lookup(f.fs, SRC, "tuesday", 7, &got), 0);
	EXPECT_EQ_INT(got, b);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	fx_remount(&f);
	struct name_list l = { 0 };
	EXPECT_EQ_INT(cowfs_subvol_list(f.fs, name_cb, &l), 0);
	EXPECT_EQ_INT(l.n, 2);
	EXPECT(!strcmp(l.names[0], "monday") && l.ids[0] == a && !strcmp(l.names[1], "tuesday"));
	EXPECT_EQ_INT(cowfs_snapshot_delete_named(f.fs, SRC, "monday", 6), 0);
	EXPECT_EQ_INT(cowfs_snapshot_lookup(f.fs, SRC, "monday", 6, &got), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snapshot_delete_named(f.fs, SRC, "monday", 6), -PLAT_ENOENT);
	/* The name goes with the tree, also when deleted by id. */
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, b), 0);
	l.n = 0;
	EXPECT_EQ_INT(cowfs_subvol_list(f.fs, name_cb, &l), 0);
	EXPECT_EQ_INT(l.n, 0);
	EXPECT_EQ_INT(cowfs_commit(f.fs), 0);
	expect_clean(&f);
	/* A name left pointing at no tree is found by the check. */
	uint8_t ref[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 'z', 'z' };
	struct cowfs_key k = { SRC, CFS_ITEM_ROOT_REF, 999 };
	EXPECT_EQ_INT(cowfs_bt_insert(&f.fs->root_tree, &k, ref, sizeof(ref)), 0);
	char msg[200];
	EXPECT_EQ_INT(cowfs_check(f.fs, msg, sizeof(msg)), -PLAT_EIO);
	EXPECT(strstr(msg, "snapshot name of tree 999") != NULL);
	fx_done(&f, &live);
}

/* ---- power cuts during snapshot work ----
 * A workload of commits on a small, wrapping device: changes to the
 * source, a snapshot, a clone changed on its own, deletes.  Every commit
 * records which trees exist and their models.  A cut at any write leaves
 * the last commit or the one in progress, with exactly its trees, each
 * equal to its model, and a clean check (references included). */

#define CUT_TREES 4
#define CUT_GENS 64

struct cut_state {
	bool live[CUT_TREES];              /* tree SRC + i exists (i: 0 source, 1..3) */
	struct ct_model m[CUT_TREES];
};

struct cut_hist {
	struct cut_state at[CUT_GENS];     /* by committed generation */
	bool have[CUT_GENS];
};

static void state_copy(struct cut_state *dst, const struct cut_state *src)
{
	for (unsigned i = 0; i < CUT_TREES; i++) {
		dst->live[i] = src->live[i];
		if (src->live[i])
			ct_model_copy(&dst->m[i], &src->m[i]);
	}
}

static void state_free(struct cut_state *st)
{
	for (unsigned i = 0; i < CUT_TREES; i++)
		if (st->live[i])
			free(st->m[i].ver);
	memset(st, 0, sizeof(*st));
}

/* The state is recorded before the commit: a commit that fails half-way
 * (the cut) may still have reached the media, and then it is the one
 * mounted. */
static int cut_commit(struct cowfs *fs, struct cut_hist *h, struct cut_state *cur)
{
	struct cowfs_info info;
	cowfs_info(fs, &info);
	if (info.gen < CUT_GENS) {
		state_free(&h->at[info.gen]);
		state_copy(&h->at[info.gen], cur);
		h->have[info.gen] = true;
	}
	return cowfs_commit(fs);
}

static int cut_ops(struct cowfs *fs, struct cut_state *cur, unsigned i, unsigned n, uint64_t *rng, uint32_t *ver)
{
	struct cowfs_tree *t;
	int err = cowfs_tree_open(fs, SRC + i, i == 0, &t);
	for (unsigned k = 0; k < n && !err; k++)
		if (ct_random_op(t, &cur->m[i], rng, 60, ver))
			err = -PLAT_EIO;
	return err;
}

/* The workload; returns the first error (the cut makes writes fail). */
static int cut_workload(struct cowfs *fs, struct cut_hist *h, struct cut_state *cur)
{
	uint64_t rng = 91;
	uint32_t ver = 1;
	int err = 0;
	cur->live[0] = true;
	ct_model_init(&cur->m[0], 400, 120);
	for (unsigned step = 0; step < 10 && !err; step++) {
		err = cut_ops(fs, cur, 0, 80, &rng, &ver);
		if (!err && cur->live[2])
			err = cut_ops(fs, cur, 2, 60, &rng, &ver);
		if (!err)
			err = cut_commit(fs, h, cur);
		unsigned id = step == 2 ? 1 : step == 4 ? 2 : step == 7 ? 3 : 0;
		if (!err && id) {
			/* 1: snapshot of the source; 2: clone of the source;
			 * 3: snapshot of the clone. */
			unsigned from = id == 3 ? 2 : 0;
			err = cowfs_snapshot_create(fs, SRC + from, SRC + id, id != 2);
			if (!err) {
				cur->live[id] = true;
				ct_model_copy(&cur->m[id], &cur->m[from]);
			}
		}
		if (!err && (step == 6 || step == 9)) {
			unsigned id = step == 6 ? 1 : 2;      /* then the clone its snapshot was taken of */
			err = cowfs_snapshot_delete(fs, SRC + id);
			if (!err) {
				free(cur->m[id].ver);
				cur->live[id] = false;
			}
		}
		/* The background delete, a few nodes per commit. */
		bool more = true;
		for (unsigned k = 0; k < 3 && more && !err; k++)
			if (!(err = cowfs_drop_step(fs, 3, &more)))
				err = cut_commit(fs, h, cur);
		if (!err)
			err = cut_commit(fs, h, cur);
	}
	return err;
}

static const char *cut_verify(struct cowfs *fs, const struct cut_state *st)
{
	for (unsigned i = 0; i < CUT_TREES; i++) {
		struct cowfs_tree *t;
		int err = cowfs_tree_open(fs, SRC + i, false, &t);
		if (!st->live[i]) {
			if (err != -PLAT_ENOENT)
				return "a tree deleted (or never made) by this commit exists";
			continue;
		}
		if (err)
			return "a tree of this commit is missing";
		const char *why = ct_compare(t, &st->m[i]);
		if (why)
			return why;
	}
	static char msg[200];
	return cowfs_check(fs, msg, sizeof(msg)) ? msg : NULL;
}

static uint64_t snap_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct ct_image im;
	struct cowfs *fs;
	struct cut_hist *h = calloc(1, sizeof(*h));
	struct cut_state cur = { 0 };
	struct ct_cut c = { &im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	struct cowfs_mount_opts mo = { .hooks = &hooks };
	struct cowfs_mkfs_opts mk = { .node_size = 4096, .bare = true };
	*why = NULL;
	/* 160 blocks: freed blocks are reused all through the run. */
	ct_image_create(&im, "snapcut", 160 * 4096);
	if (cowfs_mkfs(im.bdev, &mk) || (plat_host_bdev_set_volatile(im.bdev, true), cowfs_mount(im.bdev, &mo, &fs))) {
		*why = "setup failed";
		goto out;
	}
	h->have[1] = true;                   /* mkfs: no trees */
	int err = cut_workload(fs, h, &cur);
	if (err && !c.cut)
		*why = "workload failed without a power cut";
	cowfs_unmount(fs);
	if (*why || !ct_image_reopen(&im))
		goto out;
	if (cowfs_mount(im.bdev, NULL, &fs)) {
		*why = "mount after the power cut failed";
		goto out;
	}
	struct cowfs_info info;
	cowfs_info(fs, &info);
	uint64_t g = info.committed_gen;
	if (g >= CUT_GENS || !h->have[g])
		*why = "mounted a generation the workload never committed";
	else
		*why = cut_verify(fs, &h->at[g]);
	cowfs_unmount(fs);
out:
	ct_cut_free(&c);
	state_free(&cur);
	for (unsigned g = 0; g < CUT_GENS; g++)
		state_free(&h->at[g]);
	free(h);
	ct_image_remove(&im);
	return c.count;
}

TEST(power_cut_at_every_write_during_snapshot_work)
{
	ct_cut_every_write(__FILE__, __LINE__, snap_cut_run, getenv("COWFS_STRESS") ? 20 : 2, 50);
}

TEST_MAIN()
