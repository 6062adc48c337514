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
	struct cowfs_mkfs_opts mo = { .node_size = node_size };
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
	expect_clean(&f);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 302), 0);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 303), 0);
	EXPECT_EQ_INT(cowfs_snapshot_delete(f.fs, 303), -PLAT_ENOENT);
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

TEST_MAIN()
