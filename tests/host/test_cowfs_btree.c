/*
 * cowfs copy-on-write B+tree against an in-memory model: random insert /
 * delete / update / lookup, the tree invariants (key order and bounds,
 * fill, levels, owner, parent checksum + generation) checked after every
 * step in the small run, every few thousand steps in the large one, with
 * commits and remounts in between; range iteration; corrupt, misdirected
 * and stale nodes detected.  COWFS_STRESS=1: millions of keys.
 */
#define TEST_SUITE "cowfs_btree"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "fs/node.h"

static bool stress(void)
{
	return getenv("COWFS_STRESS") != NULL;
}

struct env {
	struct ct_image im;
	struct cowfs *fs;
	struct cowfs_tree *t;
	uint64_t cache;
};

static int env_mount(struct env *e)
{
	struct cowfs_mount_opts mo = { .cache_bytes = e->cache };
	int err = cowfs_mount(e->im.bdev, &mo, &e->fs);
	if (!err)
		err = cowfs_tree_open(e->fs, CFS_TREE_FS, true, &e->t);
	return err;
}

static int env_open(struct env *e, const char *name, uint64_t bytes, uint32_t node_size, uint64_t cache)
{
	memset(e, 0, sizeof(*e));
	e->cache = cache;
	if (!ct_image_create(&e->im, name, bytes))
		return -1;
	struct cowfs_mkfs_opts o = { .node_size = node_size, .bare = true };
	int err = cowfs_mkfs(e->im.bdev, &o);
	return err ? err : env_mount(e);
}

static int env_remount(struct env *e)
{
	int err = cowfs_unmount(e->fs);
	e->fs = NULL;
	if (err)
		return err;
	return env_mount(e);
}

static void env_close(struct env *e)
{
	if (e->fs)
		EXPECT_EQ_INT(cowfs_unmount(e->fs), 0);
	ct_image_remove(&e->im);
}

static const char *check_all(struct env *e, struct cowfs_tree_stats *st)
{
	static char msg[200];
	struct cowfs_tree_stats s;
	if (cowfs_bt_check(e->t, st ? st : &s, msg, sizeof(msg)))
		return msg;
	return NULL;
}

#define FAIL_AT(step, why) do {                                                  \
		char m_[300];                                                     \
		snprintf(m_, sizeof(m_), "step %llu: %s", (unsigned long long)(step), (why)); \
		test_fail_at(__FILE__, __LINE__, m_);                             \
	} while (0)

/* Small key space (many EEXIST/ENOENT), values up to the largest item so
 * leaves split and merge often; the full invariant check after every
 * single step; commit every 300 steps, remount every 2000. */
static void random_ops_full_check(uint32_t node_size, uint64_t steps, unsigned min_height)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 0x1234567 + node_size;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(&e, "bt-small", 64 << 20, node_size, 1 << 20), 0);
	if (!e.t)
		goto out;
	ct_model_init(&m, 3000, cowfs_max_item_size(e.fs));
	unsigned max_height = 0;
	for (uint64_t s = 0; s < steps; s++) {
		/* Grow to about two thirds full, then shrink, then mixed. */
		unsigned ins = s < steps / 3 ? 75 : s < 2 * steps / 3 ? 25 : 50;
		const char *why = ct_random_op(e.t, &m, &rng, ins, &ver);
		struct cowfs_tree_stats st;
		if (!why)
			why = check_all(&e, &st);
		if (!why && st.items != m.present)
			why = "item count differs from the model";
		if (why) {
			FAIL_AT(s, why);
			break;
		}
		if (st.height > max_height)
			max_height = st.height;
		if (s % 300 == 299 && cowfs_commit(e.fs)) {
			FAIL_AT(s, "commit failed");
			break;
		}
		if (s % 2000 == 1999) {
			if (env_remount(&e)) {
				FAIL_AT(s, "remount failed");
				break;
			}
			if ((why = ct_compare(e.t, &m))) {
				FAIL_AT(s, why);
				break;
			}
		}
	}
	char msg[200];
	EXPECT(!e.fs || cowfs_check(e.fs, msg, sizeof(msg)) == 0);
	EXPECT(max_height >= min_height);  /* splits and merges on several levels */
	free(m.ver);
out:
	env_close(&e);
}

TEST(random_ops_full_check_every_step)
{
	random_ops_full_check(4096, stress() ? 200000 : 12000, 3);
}

TEST(random_ops_16k_nodes)
{
	random_ops_full_check(16384, stress() ? 100000 : 4000, 2);
}

TEST(random_ops_8k_nodes)
{
	random_ops_full_check(8192, stress() ? 100000 : 3000, 2);
}

/* Hundreds of thousands of keys (millions with COWFS_STRESS), a node
 * cache far smaller than the tree (evictions and re-reads verify nodes);
 * each step checks its key against the model; the full invariants and
 * the full contents are checked at every commit and after a remount. */
TEST(many_keys_small_cache)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 0xabcdef12345ull;
	uint32_t nkeys = stress() ? 3000000 : 300000, ver = 1;
	uint64_t steps = (uint64_t)nkeys * 2, commit_every = nkeys / 4;
	EXPECT_EQ_INT(env_open(&e, "bt-many", stress() ? (4ull << 30) : (512ull << 20), 4096, 4 << 20), 0);
	if (!e.t)
		goto out;
	ct_model_init(&m, nkeys, 48);
	for (uint64_t s = 0; s < steps; s++) {
		const char *why = ct_random_op(e.t, &m, &rng, s < steps / 2 ? 90 : 30, &ver);
		if (!why && s % commit_every == commit_every - 1) {
			struct cowfs_tree_stats st;
			why = check_all(&e, &st);
			if (!why && st.items != m.present)
				why = "item count differs from the model";
			if (!why && cowfs_commit(e.fs))
				why = "commit failed";
		}
		if (why) {
			FAIL_AT(s, why);
			break;
		}
	}
	struct cowfs_info info;
	cowfs_info(e.fs, &info);
	EXPECT(info.evictions > 0);
	EXPECT(m.present > nkeys / 4);
	EXPECT_EQ_INT(env_remount(&e), 0);
	if (e.t) {
		const char *why = ct_compare(e.t, &m);
		if (why)
			test_fail_at(__FILE__, __LINE__, why);
		struct cowfs_tree_stats st;
		EXPECT(check_all(&e, &st) == NULL);
		char msg[200];
		EXPECT(cowfs_check(e.fs, msg, sizeof(msg)) == 0);
	}
	free(m.ver);
out:
	env_close(&e);
}

/* Committing when dirty nodes reach half the budget keeps the cache
 * within its budget while a large tree is built. */
TEST(commit_if_needed_bounds_the_cache)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 77, commits = 0, max_nodes = 0;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(&e, "bt-budget", 256 << 20, 4096, 1 << 20), 0);   /* 256 nodes */
	if (!e.t)
		goto out;
	ct_model_init(&m, 100000, 48);
	for (int s = 0; s < 100000; s++) {
		const char *why = ct_random_op(e.t, &m, &rng, 90, &ver);
		int r = cowfs_commit_if_needed(e.fs);
		if (why || r < 0) {
			FAIL_AT(s, why ? why : "commit failed");
			break;
		}
		commits += r;
		struct cowfs_info info;
		cowfs_info(e.fs, &info);
		if (info.cached_nodes > max_nodes)
			max_nodes = info.cached_nodes;
	}
	EXPECT(commits >= 10);
	/* The budget (256) plus one operation's path and splits. */
	EXPECT(max_nodes <= 256 + 16);
	EXPECT_EQ_INT(env_remount(&e), 0);
	if (e.t) {
		const char *why = ct_compare(e.t, &m);
		if (why)
			test_fail_at(__FILE__, __LINE__, why);
	}
	free(m.ver);
out:
	env_close(&e);
}

struct range_ctx { uint32_t n; int64_t last; };
static int range_cb(void *arg, const struct cowfs_key *k, const void *d, uint32_t l)
{
	struct range_ctx *c = arg;
	(void)d; (void)l;
	c->last = ct_key_index(k);
	c->n++;
	return 0;
}

/* cowfs_bt_iterate over random [from, to] and cowfs_bt_next from random
 * keys give exactly what the model has there, also across commits. */
TEST(range_iteration_and_next)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 99;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(&e, "bt-range", 64 << 20, 4096, 0), 0);
	if (!e.t)
		goto out;
	ct_model_init(&m, 20000, 100);
	for (int s = 0; s < 30000; s++)
		if (ct_random_op(e.t, &m, &rng, 70, &ver))
			break;
	EXPECT_EQ_INT(cowfs_commit(e.fs), 0);
	for (int q = 0; q < 2000; q++) {
		uint32_t a = (uint32_t)(ct_rand(&rng) % m.n), b = a + (uint32_t)(ct_rand(&rng) % 500);
		if (b >= m.n)
			b = m.n - 1;
		struct cowfs_key from, to, k;
		ct_key(a, &from);
		ct_key(b, &to);
		struct range_ctx c = { 0, -1 };
		EXPECT_EQ_INT(cowfs_bt_iterate(e.t, &from, &to, range_cb, &c), 0);
		uint32_t want = 0, last = 0;
		for (uint32_t i = a; i <= b; i++)
			if (m.ver[i]) {
				want++;
				last = i;
			}
		EXPECT_EQ_INT(c.n, want);
		if (want)
			EXPECT_EQ_INT(c.last, last);
		/* next from a key between keys (offset + 1) */
		k = from;
		k.offset++;
		uint32_t nxt = ct_next_present(&m, a + 1);
		int r = cowfs_bt_next(e.t, &k, NULL, 0, NULL);
		if (nxt < m.n) {
			EXPECT_EQ_INT(r, 0);
			EXPECT_EQ_INT(ct_key_index(&k), nxt);
		} else {
			EXPECT_EQ_INT(r, -PLAT_ENOENT);
		}
	}
	free(m.ver);
out:
	env_close(&e);
}

/* cowfs_bt_prev and cowfs_bt_prev_item against the model after many
 * inserts and deletes (deletes of a leaf's first item leave its parent's
 * key below the leaf's first key: the descent must then back up to the
 * leaf before), exact keys and keys between keys, before and after a
 * commit. */
TEST(prev_finds_the_largest_key_at_or_below)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 4242;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(&e, "bt-prev", 64 << 20, 4096, 0), 0);
	if (!e.t)
		goto out;
	ct_model_init(&m, 20000, 100);
	for (int s = 0; s < 30000; s++)
		if (ct_random_op(e.t, &m, &rng, 60, &ver))
			break;
	for (int round = 0; round < 2; round++) {
		for (int q = 0; q < 3000; q++) {
			uint32_t a = (uint32_t)(ct_rand(&rng) % m.n);
			struct cowfs_key k;
			ct_key(a, &k);
			if (q & 1)
				k.offset++;          /* between a and a + 1 */
			int want = -1;
			for (int i = (int)a; i >= 0; i--)
				if (m.ver[i]) {
					want = i;
					break;
				}
			struct cowfs_key ki = k;
			int r = cowfs_bt_prev(e.t, &k);
			/* The item variant: the same key, and the data a
			 * lookup of that key gives. */
			uint8_t got[256], ref[256];
			uint32_t glen = 0, rlen = 0;
			int ri = cowfs_bt_prev_item(e.t, &ki, got, sizeof(got), &glen);
			EXPECT_EQ_INT(ri, r);
			if (want < 0) {
				EXPECT_EQ_INT(r, -PLAT_ENOENT);
			} else {
				EXPECT_EQ_INT(r, 0);
				EXPECT_EQ_INT(ct_key_index(&k), want);
				EXPECT_EQ_INT(ct_key_index(&ki), want);
				EXPECT_EQ_INT(cowfs_bt_lookup(e.t, &k, ref, sizeof(ref), &rlen), 0);
				EXPECT_EQ_INT(glen, rlen);
				EXPECT(memcmp(got, ref, rlen < sizeof(ref) ? rlen : sizeof(ref)) == 0);
			}
		}
		EXPECT_EQ_INT(cowfs_commit(e.fs), 0);
	}
	struct cowfs_key below = { 0, 0, 0 };
	EXPECT_EQ_INT(cowfs_bt_prev(e.t, &below), -PLAT_ENOENT);   /* below every key */
	free(m.ver);
out:
	env_close(&e);
}

TEST(bad_arguments_and_missing_keys)
{
	struct env e;
	static uint8_t big[8192];
	EXPECT_EQ_INT(env_open(&e, "bt-args", 16 << 20, 4096, 0), 0);
	if (!e.t)
		goto out;
	struct cowfs_key k = { 300, 1, 0 };
	uint32_t max = cowfs_max_item_size(e.fs);
	EXPECT_EQ_INT(max, (4096 - 64) / 4 - 21);
	EXPECT_EQ_INT(cowfs_bt_insert(e.t, &k, big, max + 1), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_bt_insert(e.t, &k, big, max), 0);
	EXPECT_EQ_INT(cowfs_bt_insert(e.t, &k, big, 1), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_bt_update(e.t, &k, big, max + 1), -PLAT_EINVAL);
	k.offset = 1;
	EXPECT_EQ_INT(cowfs_bt_delete(e.t, &k), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_bt_update(e.t, &k, big, 3), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_bt_lookup(e.t, &k, NULL, 0, NULL), -PLAT_ENOENT);
	struct cowfs_tree *t2;
	EXPECT_EQ_INT(cowfs_tree_open(e.fs, 1, true, &t2), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_tree_open(e.fs, 999, false, &t2), -PLAT_ENOENT);
	/* 4 KiB / 8 KiB / 16 KiB nodes only. */
	struct cowfs_mkfs_opts o = { .node_size = 2048 };
	EXPECT_EQ_INT(cowfs_mkfs(e.im.bdev, &o), -PLAT_EINVAL);
	o.node_size = 4096;
	o.total_blocks = 10;
	EXPECT_EQ_INT(cowfs_mkfs(e.im.bdev, &o), -PLAT_EINVAL);
out:
	env_close(&e);
}

/* Find a committed leaf of the FS tree on disk: its block number. */
static uint64_t some_leaf(struct env *e)
{
	struct cowfs_node *n;
	struct cowfs_bptr p = e->t->root;
	if (cowfs_nc_read(e->fs, &p, e->t->id, &n))
		return 0;
	while (nd_level(n->buf)) {
		in_ptr(n->buf, nd_nr(n->buf) / 2, &p);
		cowfs_nc_put(e->fs, n);
		if (cowfs_nc_read(e->fs, &p, e->t->id, &n))
			return 0;
	}
	uint64_t b = n->blocknr;
	cowfs_nc_put(e->fs, n);
	return b;
}

static int lookup_all(struct env *e, struct ct_model *m)
{
	int bad = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		struct cowfs_key k;
		ct_key(i, &k);
		int r = cowfs_bt_lookup(e->t, &k, NULL, 0, NULL);
		if (r == -PLAT_EIO)
			bad++;
	}
	return bad;
}

enum damage { FLIP_BIT, MISDIRECT, STALE_SELF_CONSISTENT, ZEROED };

/* Damage one committed leaf on disk, remount, read everything: the
 * damaged leaf is reported (-EIO, counted), never returned as data. */
static void damage_test(enum damage how)
{
	struct env e;
	struct ct_model m;
	uint64_t rng = 5;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(&e, "bt-dmg", 32 << 20, 4096, 0), 0);
	if (!e.t)
		goto out;
	ct_model_init(&m, 6000, 60);
	for (int s = 0; s < 8000; s++)
		ct_random_op(e.t, &m, &rng, 90, &ver);
	EXPECT_EQ_INT(cowfs_commit(e.fs), 0);
	uint64_t leaf = some_leaf(&e), other = 0;
	EXPECT(leaf != 0);
	/* A second leaf for the misdirected case. */
	{
		struct cowfs_node *n;
		struct cowfs_bptr p = e.t->root;
		EXPECT_EQ_INT(cowfs_nc_read(e.fs, &p, e.t->id, &n), 0);
		while (nd_level(n->buf)) {
			in_ptr(n->buf, 0, &p);
			cowfs_nc_put(e.fs, n);
			EXPECT_EQ_INT(cowfs_nc_read(e.fs, &p, e.t->id, &n), 0);
		}
		other = n->blocknr;
		cowfs_nc_put(e.fs, n);
	}
	EXPECT(other != leaf);
	EXPECT_EQ_INT(cowfs_unmount(e.fs), 0);
	e.fs = NULL;
	uint8_t blk[4096];
	FILE *f = fopen(e.im.path, "r+b");
	EXPECT(f != NULL);
	if (!f)
		goto out_model;
	fseek(f, (long)(leaf * 4096), SEEK_SET);
	EXPECT_EQ_INT(fread(blk, 1, 4096, f), 4096);
	switch (how) {
	case FLIP_BIT:
		blk[3000] ^= 0x10;
		break;
	case MISDIRECT:     /* the other leaf's contents land here */
		fseek(f, (long)(other * 4096), SEEK_SET);
		EXPECT_EQ_INT(fread(blk, 1, 4096, f), 4096);
		break;
	case STALE_SELF_CONSISTENT:   /* valid header checksum, old contents */
		blk[CFS_NH_SIZE + 2] ^= 1;          /* a key byte */
		cfs_put32(blk, crc32c(0, blk + 4, 4092));
		break;
	case ZEROED:
		memset(blk, 0, sizeof(blk));
		break;
	}
	fseek(f, (long)(leaf * 4096), SEEK_SET);
	EXPECT_EQ_INT(fwrite(blk, 1, 4096, f), 4096);
	fclose(f);
	EXPECT(ct_image_reopen(&e.im) != NULL);
	EXPECT_EQ_INT(env_mount(&e), 0);
	if (e.fs) {
		EXPECT(lookup_all(&e, &m) > 0);
		struct cowfs_info info;
		cowfs_info(e.fs, &info);
		EXPECT(info.verify_errors > 0);
		char msg[200];
		EXPECT(cowfs_check(e.fs, msg, sizeof(msg)) == -PLAT_EIO);
		EXPECT(strstr(msg, "fails verification") != NULL);
	}
out_model:
	free(m.ver);
out:
	env_close(&e);
}

TEST(bit_flip_in_leaf_detected) { damage_test(FLIP_BIT); }
TEST(misdirected_write_detected) { damage_test(MISDIRECT); }
TEST(stale_self_consistent_node_detected_by_parent_csum) { damage_test(STALE_SELF_CONSISTENT); }
TEST(zeroed_node_detected) { damage_test(ZEROED); }

struct count_ctx {
	uint64_t n;
};

static int count_cb(void *arg, const struct cowfs_key *k, const void *d, uint32_t l)
{
	(void)k; (void)d; (void)l;
	((struct count_ctx *)arg)->n++;
	return 0;
}

static const struct cowfs_key scan_first = { 0, 0, 0 }, scan_last = { UINT64_MAX, 255, UINT64_MAX };

/* A committed tree of many leaves, remounted so nothing is cached. */
static bool scan_env(struct env *e, const char *name, struct ct_model *m)
{
	uint64_t rng = 17;
	uint32_t ver = 1;
	EXPECT_EQ_INT(env_open(e, name, 64 << 20, 4096, 0), 0);
	if (!e->t)
		return false;
	ct_model_init(m, 20000, 100);
	for (int s = 0; s < 30000; s++)
		if (ct_random_op(e->t, m, &rng, 90, &ver))
			break;
	EXPECT_EQ_INT(cowfs_commit(e->fs), 0);
	EXPECT_EQ_INT(env_remount(e), 0);
	return e->t != NULL;
}

/* A walk over many leaves reads the leaves ahead of it in batches
 * (fs/ncache.c cowfs_nc_prefetch): most of its reads are read-ahead, and
 * it still sees every item once.  A short walk (cowfs_bt_next) reads
 * nothing ahead. */
TEST(scan_reads_leaves_ahead_in_batches)
{
	struct env e;
	struct ct_model m = { 0 };
	if (!scan_env(&e, "bt-scan", &m))
		goto out;
	struct cowfs_key k = scan_first;
	EXPECT_EQ_INT(cowfs_bt_next(e.t, &k, NULL, 0, NULL), 0);
	EXPECT_EQ_INT(e.fs->nc.prefetched, 0);
	uint64_t reads0 = e.fs->nc.reads;
	struct count_ctx c = { 0 };
	EXPECT_EQ_INT(cowfs_bt_iterate(e.t, &scan_first, &scan_last, count_cb, &c), 0);
	uint64_t want = 0;
	for (uint32_t i = 0; i < m.n; i++)
		want += m.ver[i] != 0;
	EXPECT_EQ_INT(c.n, want);
	uint64_t reads = e.fs->nc.reads - reads0;
	EXPECT(reads > 100);
	EXPECT(e.fs->nc.prefetched * 10 >= reads * 9);
	if (e.fs->nc.prefetched * 10 < reads * 9)
		fprintf(stderr, "%llu node reads, %llu of them read ahead\n", (unsigned long long)reads,
			(unsigned long long)e.fs->nc.prefetched);
	/* Read again from the cache: no more device reads. */
	reads0 = e.fs->nc.reads;
	c.n = 0;
	EXPECT_EQ_INT(cowfs_bt_iterate(e.t, &scan_first, &scan_last, count_cb, &c), 0);
	EXPECT_EQ_INT(c.n, want);
	EXPECT_EQ_INT(e.fs->nc.reads, reads0);
out:
	free(m.ver);
	env_close(&e);
}

/* A leaf that fails verification is read ahead and dropped; the walk then
 * meets it itself and stops with -EIO, counted and logged as without
 * read-ahead: damaged items are never handed to the callback. */
TEST(scan_meets_a_damaged_leaf_read_ahead)
{
	struct env e;
	struct ct_model m = { 0 };
	if (!scan_env(&e, "bt-scan-dmg", &m))
		goto out;
	uint64_t leaf = some_leaf(&e);
	EXPECT(leaf != 0);
	EXPECT_EQ_INT(cowfs_unmount(e.fs), 0);
	e.fs = NULL;
	FILE *f = fopen(e.im.path, "r+b");
	EXPECT(f != NULL);
	if (!f)
		goto out;
	uint8_t byte;
	fseek(f, (long)(leaf * 4096 + 3000), SEEK_SET);
	EXPECT_EQ_INT(fread(&byte, 1, 1, f), 1);
	byte ^= 0x10;
	fseek(f, (long)(leaf * 4096 + 3000), SEEK_SET);
	EXPECT_EQ_INT(fwrite(&byte, 1, 1, f), 1);
	fclose(f);
	EXPECT(ct_image_reopen(&e.im) != NULL);
	EXPECT_EQ_INT(env_mount(&e), 0);
	if (!e.fs)
		goto out;
	struct count_ctx c = { 0 };
	EXPECT_EQ_INT(cowfs_bt_iterate(e.t, &scan_first, &scan_last, count_cb, &c), -PLAT_EIO);
	EXPECT(e.fs->nc.prefetched > 0);
	struct cowfs_info info;
	cowfs_info(e.fs, &info);
	EXPECT(info.verify_errors > 0);
out:
	free(m.ver);
	env_close(&e);
}

TEST_MAIN()
