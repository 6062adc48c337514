/*
 * cowfs superblocks, commits and power cuts.
 *
 * The power-cut test runs a deterministic workload (random tree changes,
 * commits) on an image with the host's volatile write-cache model, once to
 * count its device writes, then once per cut point: at write k the power
 * goes -- unflushed writes are dropped except a random subset that
 * "made it" (written straight into the image), write k and everything
 * after fail.  The image is then mounted: it must hold exactly the last
 * commit whose superblock was written before the cut (or the one being
 * written, if its superblock made it), pass the full check, and take new
 * commits.  COWFS_STRESS=1 tries several survivor subsets per cut.
 */
#define TEST_SUITE "cowfs_commit"
#include <fcntl.h>
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"

static const uint8_t test_fsid[16] = "cowfs-test-fsid";

static bool stress(void)
{
	return getenv("COWFS_STRESS") != NULL;
}

static int mkfs_fixed(struct plat_bdev *b)
{
	struct cowfs_mkfs_opts o = { .node_size = 4096, .fsid = test_fsid, .label = "test", .bare = true };
	return cowfs_mkfs(b, &o);
}

static const char *check_fs(struct cowfs *fs)
{
	static char msg[200];
	return cowfs_check(fs, msg, sizeof(msg)) ? msg : NULL;
}

/* Tree 256 of fs equals model m (absent tree = empty model). */
static const char *compare_fs(struct cowfs *fs, const struct ct_model *m)
{
	struct cowfs_tree *t;
	int err = cowfs_tree_open(fs, CFS_TREE_FS, false, &t);
	if (err == -PLAT_ENOENT)
		return m->present ? "tree missing" : NULL;
	if (err)
		return "tree does not open";
	return ct_compare(t, m);
}

static void read_block(const char *path, uint64_t blk, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	EXPECT_EQ_INT(pread(fd, buf, 4096, (off_t)(blk * 4096)), 4096);
	close(fd);
}

static void write_block(const char *path, uint64_t blk, const uint8_t *buf)
{
	int fd = open(path, O_WRONLY);
	EXPECT_EQ_INT(pwrite(fd, buf, 4096, (off_t)(blk * 4096)), 4096);
	close(fd);
}

/* A few commits of random changes; models[g] = state of commit g. */
#define MAXGEN 64
struct history {
	struct ct_model models[MAXGEN];
	uint64_t last_gen;
};

static int run_commits(struct cowfs *fs, struct history *h, int ncommits, int ops, uint64_t *rng, uint32_t *ver)
{
	struct cowfs_tree *t;
	int err = cowfs_tree_open(fs, CFS_TREE_FS, true, &t);
	struct ct_model *m = &h->models[0];
	for (int c = 0; c < ncommits && !err; c++) {
		/* Each commit changes one region of the key space, so some
		 * leaves live through many commits while others are rewritten
		 * (freed blocks then lie ahead of the allocator's cursor). */
		m->span = m->n / 4;
		m->lo = (uint32_t)(ct_rand(rng) % (m->n - m->span));
		for (int i = 0; i < ops; i++)
			if (ct_random_op(t, m, rng, 60, ver))
				return -PLAT_EIO;
		struct cowfs_info info;
		cowfs_info(fs, &info);
		if (info.gen < MAXGEN) {
			free(h->models[info.gen].ver);
			ct_model_copy(&h->models[info.gen], m);
		}
		err = cowfs_commit(fs);
		if (!err)
			h->last_gen = info.gen;
	}
	return err;
}

/* After mounting commit g, the running model continues from its state. */
static void history_rewind(struct history *h, uint64_t g)
{
	free(h->models[0].ver);
	ct_model_copy(&h->models[0], &h->models[g]);
	h->last_gen = g;
}

static void history_free(struct history *h)
{
	for (int i = 0; i < MAXGEN; i++)
		free(h->models[i].ver);
}

static void history_init(struct history *h, uint32_t keys, uint32_t maxlen)
{
	memset(h, 0, sizeof(*h));
	ct_model_init(&h->models[0], keys, maxlen);
	ct_model_init(&h->models[1], keys, maxlen);     /* mkfs: empty */
	h->last_gen = 1;
}

/* History, a fresh image with mkfs, and the filesystem mounted on it. */
static struct cowfs *fresh(struct ct_image *im, const char *name, uint64_t bytes, struct history *h,
			   uint32_t keys, uint32_t maxlen, const struct cowfs_mount_opts *mo)
{
	struct cowfs *fs = NULL;
	history_init(h, keys, maxlen);
	EXPECT(ct_image_create(im, name, bytes) != NULL);
	EXPECT_EQ_INT(mkfs_fixed(im->bdev), 0);
	EXPECT_EQ_INT(cowfs_mount(im->bdev, mo, &fs), 0);
	return fs;
}

/* Mount: it must be commit g, equal to its model, and check clean. */
static void expect_commit(struct ct_image *im, uint64_t g, struct history *h)
{
	struct cowfs *fs;
	struct cowfs_info info;
	EXPECT_EQ_INT(cowfs_mount(im->bdev, NULL, &fs), 0);
	if (!fs)
		return;
	cowfs_info(fs, &info);
	EXPECT_EQ_INT(info.committed_gen, g);
	EXPECT(compare_fs(fs, &h->models[g]) == NULL);
	EXPECT(check_fs(fs) == NULL);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
}

TEST(mkfs_mount_empty)
{
	struct ct_image im;
	struct cowfs *fs;
	EXPECT(ct_image_create(&im, "c-empty", 16 << 20) != NULL);
	EXPECT_EQ_INT(mkfs_fixed(im.bdev), 0);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	struct cowfs_info info;
	cowfs_info(fs, &info);
	EXPECT_EQ_INT(info.committed_gen, 1);
	EXPECT_EQ_INT(info.gen, 2);
	EXPECT_EQ_INT(info.total_blocks, 4096);
	EXPECT_EQ_INT(info.node_size, 4096);
	/* reserved 24 + area 1 (8) + root tree leaf + free-space tree leaf */
	EXPECT_EQ_INT(info.used_blocks, 34);
	EXPECT(check_fs(fs) == NULL);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	/* Nothing changed: unmount wrote no new commit. */
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	cowfs_info(fs, &info);
	EXPECT_EQ_INT(info.committed_gen, 1);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	ct_image_remove(&im);
}

/* Commit g goes to slot g mod 8 of both areas; the other slots keep the
 * previous commits. */
TEST(superblock_ring_slots)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 1;
	uint32_t ver = 1;
	fs = fresh(&im, "c-ring", 16 << 20, &h, 500, 50, NULL);
	EXPECT_EQ_INT(run_commits(fs, &h, 10, 20, &rng, &ver), 0);
	EXPECT_EQ_INT(h.last_gen, 11);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	uint8_t a[4096], b[4096];
	for (uint64_t s = 0; s < 8; s++) {
		read_block(im.path, 16 + s, a);
		read_block(im.path, 4096 - 8 + s, b);
		EXPECT(memcmp(a, b, 4096) == 0);
		EXPECT(memcmp(a + 8, "cowfs-sb", 8) == 0);
		uint64_t gen = cfs_get64(a + CFS_SB_GEN);
		EXPECT_EQ_INT(gen % 8, s);
		EXPECT(gen >= 4 && gen <= 11);     /* gens 4..11 are the newest 8 */
		EXPECT_EQ_INT(cfs_get32(a + CFS_SB_CSUM), crc32c(0, a + 4, 4092));
	}
	history_free(&h);
	ct_image_remove(&im);
}

static void corrupt_sb(struct ct_image *im, uint64_t gen, int area)
{
	uint8_t sb[4096];
	uint64_t blk = (area ? im->bytes / 4096 - 8 : 16) + gen % 8;
	read_block(im->path, blk, sb);
	EXPECT_EQ_INT(cfs_get64(sb + CFS_SB_GEN), gen);
	sb[2000] ^= 0xff;               /* a torn write: checksum fails */
	write_block(im->path, blk, sb);
}

/* A torn newest superblock: the mirror is used; both torn: the previous
 * commit, exactly. */
TEST(torn_superblock_falls_back)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 2;
	uint32_t ver = 1;
	fs = fresh(&im, "c-torn", 16 << 20, &h, 800, 80, NULL);
	EXPECT_EQ_INT(run_commits(fs, &h, 5, 100, &rng, &ver), 0);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	uint64_t g = h.last_gen;
	EXPECT(ct_image_reopen(&im) != NULL);
	corrupt_sb(&im, g, 0);
	expect_commit(&im, g, &h);
	EXPECT(ct_image_reopen(&im) != NULL);
	corrupt_sb(&im, g, 1);
	expect_commit(&im, g - 1, &h);
	history_free(&h);
	ct_image_remove(&im);
}

/* The newest superblock is fine but a node of its commit never reached
 * the disk (a lost write): mount finds the damage and takes the commit
 * before, whose blocks deferred reuse kept intact. */
TEST(lost_commit_block_falls_back_to_previous_commit)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 3;
	uint32_t ver = 1;
	fs = fresh(&im, "c-lost", 16 << 20, &h, 800, 80, NULL);
	EXPECT_EQ_INT(run_commits(fs, &h, 4, 100, &rng, &ver), 0);
	uint64_t g = h.last_gen, root = fs->root_tree.root.blocknr;
	EXPECT_EQ_INT(fs->root_tree.root.gen, g);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	EXPECT(ct_image_reopen(&im) != NULL);
	uint8_t zero[4096] = { 0 };
	write_block(im.path, root, zero);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	struct cowfs_info info;
	cowfs_info(fs, &info);
	EXPECT_EQ_INT(info.committed_gen, g - 1);
	EXPECT(compare_fs(fs, &h.models[g - 1]) == NULL);
	EXPECT(check_fs(fs) == NULL);
	/* And it goes on from there. */
	history_rewind(&h, g - 1);
	EXPECT_EQ_INT(run_commits(fs, &h, 2, 50, &rng, &ver), 0);
	EXPECT(check_fs(fs) == NULL);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	history_free(&h);
	ct_image_remove(&im);
}

/* Deferred reuse (docs/format.md §7): while commit N is written, no write
 * lands on a block that commit N-1 or N-2 references. */
struct reuse_watch {
	struct cowfs *fs;
	uint64_t *prev1, *prev2;     /* blocks of the last two commits */
	uint64_t *written;           /* blocks written so far */
	uint64_t words, total, violations, writes, rewrites;
};

static void reuse_before_write(void *arg, uint64_t off, const void *buf, uint64_t len, unsigned flags)
{
	struct reuse_watch *w = arg;
	(void)buf; (void)flags;
	for (uint64_t b = off / 4096; b < (off + len) / 4096; b++) {
		if (b < 24 || b >= w->total - 8)
			continue;            /* superblock areas */
		w->writes++;
		if ((w->prev1[b / 64] | w->prev2[b / 64]) & (1ull << (b % 64)))
			w->violations++;
		if (w->written[b / 64] & (1ull << (b % 64)))
			w->rewrites++;
		w->written[b / 64] |= 1ull << (b % 64);
	}
}

/* Take every block the allocator will hand out now: none may belong to
 * the last two commits.  Then give them back (never durable). */
static uint64_t drain_check(struct cowfs *fs, const struct reuse_watch *w)
{
	static uint64_t got[4096];
	uint64_t n = 0, bad = 0, b;
	while (n < 4096 && cowfs_alloc_blocks(fs, 1, &b) == 0) {
		got[n++] = b;
		if ((w->prev1[b / 64] | w->prev2[b / 64]) & (1ull << (b % 64)))
			bad++;
	}
	for (uint64_t i = 0; i < n; i++)
		cowfs_free_blocks(fs, got[i], 1, fs->gen);
	return bad;
}

TEST(freed_blocks_not_reused_while_last_two_commits_live)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 4;
	uint32_t ver = 1;
	struct reuse_watch w = { 0 };
	struct cowfs_hooks hooks = { reuse_before_write, NULL, &w };
	struct cowfs_mount_opts mo = { .hooks = &hooks };
	fs = fresh(&im, "c-reuse", 2 << 20, &h, 3000, 60, &mo);
	w.total = 512;
	w.words = w.total / 64;
	w.prev1 = calloc(w.words, 8);
	w.prev2 = calloc(w.words, 8);
	w.written = calloc(w.words, 8);
	EXPECT_EQ_INT(cowfs_used_map(fs, w.prev1), 0);
	for (int c = 0; c < 60; c++) {
		EXPECT_EQ_INT(run_commits(fs, &h, 1, 200, &rng, &ver), 0);
		uint64_t *t = w.prev2;
		w.prev2 = w.prev1;
		w.prev1 = t;
		memset(w.prev1, 0, w.words * 8);
		EXPECT_EQ_INT(cowfs_used_map(fs, w.prev1), 0);
		w.violations += drain_check(fs, &w);
	}
	EXPECT_EQ_INT(w.violations, 0);
	/* Freed blocks were reused (else the test proves nothing). */
	EXPECT(w.writes > 500);
	EXPECT(w.rewrites > 100);
	EXPECT(check_fs(fs) == NULL);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	free(w.prev1);
	free(w.prev2);
	free(w.written);
	history_free(&h);
	ct_image_remove(&im);
}

/* ---- power cuts (the cut machinery is in cowfs_test.h) ---- */

#define CUT_COMMITS 20
#define CUT_OPS 250

/* The commit before the mounted one is intact too (deferred reuse keeps
 * the last two commits' blocks while a third is written). */
static const char *check_older(struct ct_image *im, uint64_t g, struct history *h)
{
	struct cowfs *old;
	struct cowfs_mount_opts mo = { .gen = g };
	struct cowfs_tree *t;
	if (cowfs_mount(im->bdev, &mo, &old))
		return "the commit before the mounted one does not mount";
	if (cowfs_tree_open(old, CFS_TREE_FS + 1, true, &t) != -PLAT_EROFS) {
		cowfs_unmount(old);
		return "an older commit was mounted writable";
	}
	const char *why = compare_fs(old, &h->models[g]);
	if (!why)
		why = check_fs(old);
	cowfs_unmount(old);
	return why ? "the commit before the mounted one is damaged" : NULL;
}

/* One run: fresh image, workload with a cut at write cut_at (0 = none).
 * Returns the number of writes the workload issued; checks recovery. */
static uint64_t cut_run(uint64_t cut_at, uint64_t subset_seed, const char **why)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 77;
	uint32_t ver = 1;
	struct ct_cut c = { &im, 0, cut_at ? cut_at : UINT64_MAX, subset_seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	struct cowfs_mount_opts mo = { .hooks = &hooks };
	*why = NULL;
	history_init(&h, 600, 100);
	/* 96 blocks: the allocator wraps around every few commits, so freed
	 * blocks are reused all through the run. */
	if (!ct_image_create(&im, "c-cut", 96 * 4096) || mkfs_fixed(im.bdev)) {
		*why = "setup failed";
		goto out;
	}
	plat_host_bdev_set_volatile(im.bdev, true);
	if (cowfs_mount(im.bdev, &mo, &fs)) {
		*why = "first mount failed";
		goto out;
	}
	int err = run_commits(fs, &h, CUT_COMMITS, CUT_OPS, &rng, &ver);
	if (err && !c.cut)
		*why = "workload failed without a power cut";
	if (!err && c.cut)
		*why = "a write failed and the commit still succeeded";
	cowfs_unmount(fs);
	uint64_t in_progress = h.last_gen + 1;
	/* Power back on. */
	if (*why || !ct_image_reopen(&im))
		goto out;
	if (cowfs_mount(im.bdev, NULL, &fs)) {
		*why = "mount after the power cut failed";
		goto out;
	}
	struct cowfs_info info;
	cowfs_info(fs, &info);
	uint64_t g = info.committed_gen;
	if (getenv("DBG")) fprintf(stderr, "cut %llu: mounted %llu last %llu survivors %u used %llu\n", (unsigned long long)cut_at, (unsigned long long)g, (unsigned long long)h.last_gen, c.survivors, (unsigned long long)info.used_blocks);
	if (g != h.last_gen && !(c.cut && g == in_progress && g < MAXGEN && h.models[g].ver))
		*why = "mounted neither the last commit nor the one in progress";
	else if (g >= MAXGEN || (*why = compare_fs(fs, &h.models[g])) != NULL)
		*why = *why ? *why : "generation out of range";
	else if ((*why = check_fs(fs)) != NULL)
		;
	else if (g > 1 && (*why = check_older(&im, g - 1, &h)) != NULL)
		;
	else if ((history_rewind(&h, g), 0))
		;
	else if (run_commits(fs, &h, 1, 40, &rng, &ver) || check_fs(fs))
		*why = "the recovered filesystem does not take a new commit";
	cowfs_unmount(fs);
out:
	ct_cut_free(&c);
	history_free(&h);
	ct_image_remove(&im);
	return c.count;
}

TEST(power_cut_at_every_write_keeps_last_commit)
{
	ct_cut_every_write(__FILE__, __LINE__, cut_run, stress() ? 30 : 3, 50);
}

/* A device write error during a commit: the filesystem turns read-only
 * with the reason, later changes get EROFS, and the last commit is whole
 * on the next mount. */
TEST(write_error_turns_read_only_and_keeps_last_commit)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 6;
	uint32_t ver = 1;
	fs = fresh(&im, "c-eio", 16 << 20, &h, 800, 80, NULL);
	EXPECT_EQ_INT(run_commits(fs, &h, 2, 100, &rng, &ver), 0);
	uint64_t g = h.last_gen;
	plat_host_bdev_inject(im.bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, 1);
	EXPECT_EQ_INT(run_commits(fs, &h, 1, 100, &rng, &ver), -PLAT_EIO);
	const char *reason;
	EXPECT_EQ_INT(cowfs_error(fs, &reason), -PLAT_EIO);
	EXPECT(strstr(reason, "writing tree nodes failed") != NULL);
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	struct cowfs_key k = { 1, 1, 7919 * 4 };
	EXPECT_EQ_INT(cowfs_bt_insert(t, &k, "x", 1), -PLAT_EIO);
	EXPECT_EQ_INT(cowfs_commit(fs), -PLAT_EIO);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);      /* read-only: nothing to commit */
	expect_commit(&im, g, &h);
	history_free(&h);
	ct_image_remove(&im);
}

/* Filling the filesystem: ENOSPC comes back, the filesystem stops taking
 * changes, and everything committed before is there after a remount. */
TEST(enospc_keeps_last_commit)
{
	struct ct_image im;
	struct cowfs *fs;
	struct history h;
	uint64_t rng = 8;
	uint32_t ver = 1;
	fs = fresh(&im, "c-full", 1 << 20, &h, 100000, 900, NULL);
	EXPECT_EQ_INT(run_commits(fs, &h, 1, 20, &rng, &ver), 0);
	uint64_t g = h.last_gen;
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	static uint8_t v[900];
	int err = 0;
	for (uint32_t i = 0; i < 100000 && !err; i++) {
		struct cowfs_key k;
		ct_key(i, &k);
		err = cowfs_bt_insert(t, &k, v, sizeof(v));
		if (err == -PLAT_EEXIST)
			err = 0;
	}
	EXPECT_EQ_INT(err, -PLAT_ENOSPC);
	EXPECT(cowfs_commit(fs) != 0);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	expect_commit(&im, g, &h);
	history_free(&h);
	ct_image_remove(&im);
}

static void set_sb_field(struct ct_image *im, unsigned off, uint64_t v)
{
	uint8_t sb[4096];
	for (uint64_t s = 0; s < 8; s++)
		for (int area = 0; area < 2; area++) {
			uint64_t blk = area ? im->bytes / 4096 - 8 + s : 16 + s;
			read_block(im->path, blk, sb);
			cfs_put64(sb + off, v);
			cfs_put32(sb, crc32c(0, sb + 4, 4092));
			write_block(im->path, blk, sb);
		}
}

TEST(feature_flags_and_foreign_devices)
{
	struct ct_image im;
	struct cowfs *fs = NULL;
	EXPECT(ct_image_create(&im, "c-feat", 16 << 20) != NULL);
	/* Not a cowfs image at all. */
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), -PLAT_EINVAL);
	EXPECT_EQ_INT(mkfs_fixed(im.bdev), 0);
	/* Unknown ro_compat feature: read-only mount. */
	set_sb_field(&im, CFS_SB_RO_COMPAT, 1ull << 40);
	EXPECT(ct_image_reopen(&im) != NULL);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, true, &t), -PLAT_EROFS);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	/* Unknown incompat feature: no mount. */
	set_sb_field(&im, CFS_SB_INCOMPAT, 1ull << 3);
	EXPECT(ct_image_reopen(&im) != NULL);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), -PLAT_EINVAL);
	ct_image_remove(&im);
}

TEST_MAIN()
