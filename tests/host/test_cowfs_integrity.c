/* scrub (fs/scrub.c) and repair (fs/repair.c): a scrub reads back every
 * superblock copy and node the last commit references and names what is
 * damaged; repair fixes leaked and wrongly free space, node reference
 * counts and dangling snapshot names, reports each fix, and refuses
 * damaged trees; afterwards the check is clean. */
#define TEST_SUITE "cowfs_integrity"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"

struct lines { unsigned n; char last[200]; char all[2000]; };

static void collect(void *arg, const char *line)
{
	struct lines *l = arg;
	l->n++;
	snprintf(l->last, sizeof(l->last), "%s", line);
	size_t len = strlen(l->all);
	snprintf(l->all + len, sizeof(l->all) - len, "%s\n", line);
}

static struct cowfs *setup(struct ct_image *im, struct ct_model *m)
{
	struct cowfs *fs;
	struct cowfs_tree *t;
	struct cowfs_mkfs_opts mo = { .node_size = 4096, .bare = true };
	uint64_t rng = 3;
	uint32_t ver = 1;
	ct_image_create(im, "integ", 32 << 20);
	EXPECT_EQ_INT(cowfs_mkfs(im->bdev, &mo), 0);
	EXPECT_EQ_INT(cowfs_mount(im->bdev, NULL, &fs), 0);
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, true, &t), 0);
	ct_model_init(m, 3000, 200);
	for (unsigned i = 0; i < 4000; i++)
		EXPECT(ct_random_op(t, m, &rng, 80, &ver) == NULL);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	return fs;
}

static const char *check_msg(struct cowfs *fs)
{
	static char msg[200];
	return cowfs_check(fs, msg, sizeof(msg)) ? msg : NULL;
}

TEST(scrub_clean_then_damage_named)
{
	struct ct_image im;
	struct ct_model m;
	struct cowfs *fs = setup(&im, &m);
	struct cowfs_scrub_stats st;
	struct lines l = { 0 };
	EXPECT_EQ_INT(cowfs_scrub(fs, &st, collect, NULL, &l), 0);
	EXPECT(st.nodes > 20 && st.node_errors == 0 && st.sb_valid >= 4 && st.sb_bad == 0);
	EXPECT_EQ_INT(l.n, 0);
	/* A committed leaf of the subvolume, damaged on the device behind
	 * the cache's back; and one superblock copy. */
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	uint64_t root = t->root.blocknr;
	uint8_t blk[4096];
	int fd = open(im.path, O_RDWR);
	EXPECT(pread(fd, blk, 4096, (off_t)(root * 4096)) == 4096);
	blk[200] ^= 0x10;
	EXPECT(pwrite(fd, blk, 4096, (off_t)(root * 4096)) == 4096);
	struct cowfs_info in;
	cowfs_info(fs, &in);
	uint64_t sb = CFS_SB_AREA0 + in.committed_gen % CFS_SB_SLOTS;
	EXPECT(pread(fd, blk, 4096, (off_t)(sb * 4096)) == 4096);
	blk[100] ^= 1;
	EXPECT(pwrite(fd, blk, 4096, (off_t)(sb * 4096)) == 4096);
	close(fd);
	memset(&l, 0, sizeof(l));
	EXPECT_EQ_INT(cowfs_scrub(fs, &st, collect, NULL, &l), 0);
	EXPECT_EQ_INT(st.node_errors, 1);
	EXPECT_EQ_INT(st.sb_bad, 1);
	char want[80];
	snprintf(want, sizeof(want), "node %llu", (unsigned long long)root);
	EXPECT(strstr(l.all, want) && strstr(l.all, "checksum"));
	cowfs_unmount(fs);
	ct_image_remove(&im);
	free(m.ver);
}

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	uint64_t *p = arg;
	p[0]++;
	p[1] = done;
	p[2] = total;
}

TEST(scrub_progress)
{
	struct ct_image im;
	struct ct_model m;
	struct cowfs *fs = setup(&im, &m);
	struct cowfs_scrub_stats st;
	uint64_t p[3] = { 0 };
	EXPECT_EQ_INT(cowfs_scrub(fs, &st, NULL, progress_cb, p), 0);
	EXPECT(p[0] >= 2 && p[1] == st.nodes && p[2] > 0);
	cowfs_unmount(fs);
	ct_image_remove(&im);
	free(m.ver);
}

TEST(repair_leaked_and_wrongly_free_space)
{
	struct ct_image im;
	struct ct_model m;
	struct cowfs *fs = setup(&im, &m);
	/* Leak: blocks allocated that nothing references. */
	uint64_t b;
	EXPECT_EQ_INT(cowfs_alloc_blocks(fs, 5, &b), 0);
	fs->dirty_changes++;                 /* the leak is committed */
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	const char *why = check_msg(fs);
	EXPECT(why && strstr(why, "unreferenced"));
	/* And a referenced leaf marked free (as a damaged space map would
	 * say after the pins are gone: two commits later). */
	cowfs_free_blocks(fs, t->root.blocknr, fs->node_blocks, 1);   /* the subvolume's root */
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	struct lines l = { 0 };
	unsigned fixed;
	EXPECT_EQ_INT(cowfs_repair(fs, collect, &l, &fixed), 0);
	EXPECT(fixed >= 2 && strstr(l.all, "5 leaked blocks freed") && strstr(l.all, "referenced blocks marked used"));
	why = check_msg(fs);
	EXPECT(why == NULL);
	if (why)
		fprintf(stderr, "after repair: %s\n", why);
	/* Nothing to do the second time, and the fixes were committed. */
	EXPECT_EQ_INT(cowfs_repair(fs, collect, &l, &fixed), 0);
	EXPECT_EQ_INT(fixed, 0);
	EXPECT(ct_compare(t, &m) == NULL);
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	ct_image_reopen(&im);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	EXPECT(check_msg(fs) == NULL);
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	EXPECT(ct_compare(t, &m) == NULL);
	cowfs_unmount(fs);
	ct_image_remove(&im);
	free(m.ver);
}

TEST(repair_refcounts_and_names)
{
	struct ct_image im;
	struct ct_model m;
	struct cowfs *fs = setup(&im, &m);
	uint64_t id;
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_snapshot_named(fs, CFS_TREE_FS, "s", 1, true, &id), 0);
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	/* Wrong count on the shared root, and a name of a missing tree. */
	struct cowfs_key k = { t->root.blocknr, CFS_ITEM_REFCOUNT, 0 };
	uint8_t v[12];
	uint32_t len;
	EXPECT_EQ_INT(cowfs_bt_lookup(fs->ref_tree, &k, v, sizeof(v), &len), 0);
	cfs_put32(v + 8, 5);
	EXPECT_EQ_INT(cowfs_bt_update(fs->ref_tree, &k, v, sizeof(v)), 0);
	uint8_t ref[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 'z', 'z' };
	struct cowfs_key nk = { CFS_TREE_FS, CFS_ITEM_ROOT_REF, 777 };
	EXPECT_EQ_INT(cowfs_bt_insert(&fs->root_tree, &nk, ref, sizeof(ref)), 0);
	EXPECT(check_msg(fs) != NULL);
	struct lines l = { 0 };
	unsigned fixed;
	EXPECT_EQ_INT(cowfs_repair(fs, collect, &l, &fixed), 0);
	EXPECT(strstr(l.all, "reference count set to 2") && strstr(l.all, "missing tree 777 removed"));
	EXPECT(check_msg(fs) == NULL);
	/* A shared node whose item is gone gets it back. */
	EXPECT_EQ_INT(cowfs_bt_delete(fs->ref_tree, &k), 0);
	EXPECT(check_msg(fs) != NULL);
	EXPECT_EQ_INT(cowfs_repair(fs, collect, &l, &fixed), 0);
	EXPECT(strstr(l.all, "missing reference count 2 added"));
	EXPECT(check_msg(fs) == NULL);
	EXPECT_EQ_INT(cowfs_snapshot_delete(fs, id), 0);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	EXPECT(check_msg(fs) == NULL);
	cowfs_unmount(fs);
	ct_image_remove(&im);
	free(m.ver);
}

TEST(repair_refuses_damaged_tree)
{
	struct ct_image im;
	struct ct_model m;
	struct cowfs *fs = setup(&im, &m);
	struct cowfs_tree *t;
	EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
	uint64_t root = t->root.blocknr;
	EXPECT_EQ_INT(cowfs_unmount(fs), 0);
	uint8_t blk[4096];
	int fd = open(im.path, O_RDWR);
	EXPECT(pread(fd, blk, 4096, (off_t)(root * 4096)) == 4096);
	blk[300] ^= 0x80;
	EXPECT(pwrite(fd, blk, 4096, (off_t)(root * 4096)) == 4096);
	close(fd);
	ct_image_reopen(&im);
	EXPECT_EQ_INT(cowfs_mount(im.bdev, NULL, &fs), 0);
	struct lines l = { 0 };
	unsigned fixed;
	EXPECT_EQ_INT(cowfs_repair(fs, collect, &l, &fixed), -PLAT_EIO);
	EXPECT(strstr(l.all, "tree 256") != NULL);
	EXPECT_EQ_INT(fixed, 0);
	cowfs_unmount(fs);
	ct_image_remove(&im);
	free(m.ver);
}

TEST_MAIN()
