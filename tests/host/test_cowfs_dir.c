/*
 * cowfs inodes and directories: inode items round trip and numbering,
 * directory add / lookup / remove / readdir against a model (hash
 * collisions included, readdir cookies stable across changes), name
 * rules, hard links, a directory of many entries.
 * COWFS_STRESS=1: a million entries.
 */
#define TEST_SUITE "cowfs_dir"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "fs/inode.h"

#define DIR_MODE 0040755u
#define REG_MODE 0100644u

struct env {
	struct ct_image im;
	struct cowfs *fs;
	struct cowfs_tree *t;
};

static int env_mount(struct env *e)
{
	int err = cowfs_mount(e->im.bdev, NULL, &e->fs);
	if (!err)
		err = cowfs_tree_open(e->fs, CFS_TREE_FS, true, &e->t);
	return err;
}

static int env_open(struct env *e, const char *name, uint64_t bytes, uint32_t node_size)
{
	memset(e, 0, sizeof(*e));
	if (!ct_image_create(&e->im, name, bytes))
		return -1;
	struct cowfs_mkfs_opts o = { .node_size = node_size, .bare = true };
	int err = cowfs_mkfs(e->im.bdev, &o);
	if (!err)
		err = env_mount(e);
	struct cowfs_inode root = { .ino = CFS_ROOT_INO, .mode = DIR_MODE, .nlink = 2 };
	if (!err)
		err = cowfs_inode_create(e->t, &root);
	return err;
}

static int env_remount(struct env *e)
{
	int err = cowfs_unmount(e->fs);
	e->fs = NULL;
	return err ? err : env_mount(e);
}

static void env_close(struct env *e)
{
	if (e->fs) {
		char msg[200];
		EXPECT(cowfs_check(e->fs, msg, sizeof(msg)) == 0);
		EXPECT_EQ_INT(cowfs_unmount(e->fs), 0);
	}
	ct_image_remove(&e->im);
}

static uint64_t new_file(struct env *e)
{
	struct cowfs_inode in = { .mode = REG_MODE, .nlink = 1 };
	EXPECT_EQ_INT(cowfs_inode_create(e->t, &in), 0);
	return in.ino;
}

static bool same_inode(const struct cowfs_inode *a, const struct cowfs_inode *b)
{
	uint8_t x[CFS_INODE_ITEM_SIZE], y[CFS_INODE_ITEM_SIZE];
	cowfs_inode_encode(a, x);
	cowfs_inode_encode(b, y);
	return a->ino == b->ino && a->mode == b->mode && a->mtime.nsec == b->mtime.nsec && !memcmp(x, y, sizeof(x));
}

TEST(inode_roundtrip_and_numbering)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "d-ino", 16 << 20, 4096), 0);
	if (!e.t)
		goto out;
	struct cowfs_inode a = { .mode = REG_MODE, .uid = 1000, .gid = 100, .nlink = 3, .size = 1ull << 40,
				 .blocks = 77, .atime = { 1, 2 }, .mtime = { 3, 999999999 }, .ctime = { 5, 6 },
				 .btime = { 7, 8 }, .flags = 9, .gen = 10, .rdev = 11 }, b;
	EXPECT_EQ_INT(cowfs_inode_create(e.t, &a), 0);
	EXPECT_EQ_INT(a.ino, CFS_ROOT_INO + 1);
	EXPECT_EQ_INT(cowfs_inode_read(e.t, a.ino, &b), 0);
	EXPECT(same_inode(&a, &b));
	for (int i = 0; i < 50; i++)
		EXPECT_EQ_INT(new_file(&e), CFS_ROOT_INO + 2 + i);
	a.size = 5;
	a.mtime.nsec = 1;
	EXPECT_EQ_INT(cowfs_inode_write(e.t, &a), 0);
	EXPECT_EQ_INT(cowfs_inode_delete(e.t, CFS_ROOT_INO + 51), 0);   /* the last one */
	EXPECT_EQ_INT(env_remount(&e), 0);
	if (!e.t)
		goto out;
	EXPECT_EQ_INT(cowfs_inode_read(e.t, a.ino, &b), 0);
	EXPECT(same_inode(&a, &b));
	EXPECT_EQ_INT(cowfs_inode_read(e.t, CFS_ROOT_INO + 51, &b), -PLAT_ENOENT);
	/* Numbering continues after the highest existing inode. */
	EXPECT_EQ_INT(new_file(&e), CFS_ROOT_INO + 51);
	struct cowfs_inode dup = { .ino = CFS_ROOT_INO, .mode = DIR_MODE };
	EXPECT_EQ_INT(cowfs_inode_create(e.t, &dup), -PLAT_EEXIST);
out:
	env_close(&e);
}

TEST(name_rules)
{
	struct env e;
	char n[300];
	uint64_t ino;
	EXPECT_EQ_INT(env_open(&e, "d-names", 16 << 20, 16384), 0);
	if (!e.t)
		goto out;
	uint64_t f = new_file(&e);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "", 0, f, CFS_DT_REG), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "a/b", 3, f, CFS_DT_REG), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "a\0b", 3, f, CFS_DT_REG), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, ".", 1, f, CFS_DT_REG), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "..", 2, f, CFS_DT_REG), -PLAT_EINVAL);
	memset(n, 'x', sizeof(n));
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, n, 256, f, CFS_DT_REG), -PLAT_ENAMETOOLONG);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, n, 256, &ino, NULL), -PLAT_ENAMETOOLONG);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, n, 255, f, CFS_DT_REG), 0);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, n, 255, &ino, NULL), 0);
	EXPECT_EQ_INT(ino, f);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, n, 255, f, CFS_DT_REG), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, n, 254, &ino, NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_dir_remove(e.t, CFS_ROOT_INO, n, 254), -PLAT_ENOENT);
	/* Adding into a regular file, or into no inode at all. */
	EXPECT_EQ_INT(cowfs_dir_add(e.t, f, "y", 1, f, CFS_DT_REG), -PLAT_ENOTDIR);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, 99999, "y", 1, f, CFS_DT_REG), -PLAT_ENOENT);
out:
	env_close(&e);
}

TEST(hash_collisions_share_an_item)
{
	struct env e;
	char a[32], b[32];
	uint64_t ino;
	uint8_t type;
	ct_colliding_names(a, b);
	EXPECT(a[0] && strcmp(a, b) != 0);
	EXPECT_EQ_INT(cowfs_name_hash(a, strlen(a)), cowfs_name_hash(b, strlen(b)));
	EXPECT_EQ_INT(env_open(&e, "d-coll", 16 << 20, 4096), 0);
	if (!e.t)
		goto out;
	uint64_t fa = new_file(&e), fb = new_file(&e);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, a, strlen(a), fa, CFS_DT_REG), 0);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, b, strlen(b), &ino, NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, b, strlen(b), fb, CFS_DT_DIR), 0);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, a, strlen(a), &ino, &type), 0);
	EXPECT_EQ_INT(ino, fa);
	EXPECT_EQ_INT(type, CFS_DT_REG);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, b, strlen(b), &ino, &type), 0);
	EXPECT_EQ_INT(ino, fb);
	EXPECT_EQ_INT(type, CFS_DT_DIR);
	EXPECT_EQ_INT(cowfs_dir_remove(e.t, CFS_ROOT_INO, a, strlen(a)), 0);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, a, strlen(a), &ino, NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, b, strlen(b), &ino, NULL), 0);
	EXPECT_EQ_INT(cowfs_dir_remove(e.t, CFS_ROOT_INO, b, strlen(b)), 0);
	EXPECT_EQ_INT(cowfs_dir_empty(e.t, CFS_ROOT_INO), 1);
out:
	env_close(&e);
}

/* ---- model of one directory ---- */
struct dmodel {
	uint32_t n;
	uint64_t *ino;      /* 0 = absent */
	uint64_t *seq;
};

static void dname(uint32_t i, char *buf, size_t *len)
{
	/* varied lengths up to 255, deterministic per index */
	uint64_t s = i * 0x9E3779B97F4A7C15ull | 1;
	size_t l = snprintf(buf, 300, "f%u-", i);
	size_t extra = ct_rand(&s) % 64 == 0 ? 255 - l : ct_rand(&s) % 24;
	for (size_t k = 0; k < extra; k++)
		buf[l++] = (char)('a' + (i + k) % 26);
	*len = l;
}

struct rd_state {
	const struct dmodel *m;
	uint64_t count, last_seq, stop_after;
	const char *why;
};

static int rd_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct rd_state *s = arg;
	char want[300];
	size_t wl;
	(void)type;
	if (sscanf(name, "f%lu-", &(unsigned long){ 0 }) != 1) {
		s->why = "readdir returned a name that was never added";
		return 1;
	}
	uint32_t i = (uint32_t)strtoul(name + 1, NULL, 10);
	dname(i, want, &wl);
	if (i >= s->m->n || !s->m->ino[i] || wl != len || memcmp(want, name, len) || s->m->ino[i] != ino) {
		s->why = "readdir entry differs from the model";
		return 1;
	}
	if (next != s->m->seq[i] + 1 || next <= s->last_seq) {
		s->why = "readdir cookies not increasing with creation order";
		return 1;
	}
	s->last_seq = next;
	s->count++;
	return s->stop_after && s->count == s->stop_after;
}

static const char *dir_compare(struct env *e, const struct dmodel *m)
{
	struct rd_state s = { m, 0, 0, 0, NULL };
	int err = cowfs_dir_readdir(e->t, CFS_ROOT_INO, 0, rd_cb, &s);
	if (s.why)
		return s.why;
	if (err)
		return "readdir failed";
	uint64_t want = 0;
	for (uint32_t i = 0; i < m->n; i++)
		want += m->ino[i] != 0;
	return s.count == want ? NULL : "readdir count differs from the model";
}

/* Random adds / removes / lookups of one directory against the model;
 * readdir resumed from a cookie taken before further changes returns
 * exactly the surviving and new entries after it. */
TEST(random_dir_ops_vs_model)
{
	struct env e;
	struct dmodel m = { 4000, NULL, NULL };
	uint64_t rng = 42;
	char name[300];
	size_t len;
	m.ino = calloc(m.n, 8);
	m.seq = calloc(m.n, 8);
	EXPECT_EQ_INT(env_open(&e, "d-rand", 64 << 20, 4096), 0);
	if (!e.t)
		goto out;
	/* One inode per name: inodes f .. f + n - 1. */
	uint64_t next_seq = CFS_FIRST_DIR_SEQ, f = new_file(&e);
	for (uint32_t i = 1; i < m.n; i++)
		EXPECT_EQ_INT(new_file(&e), f + i);
	for (int s = 0; s < 20000; s++) {
		uint32_t i = (uint32_t)(ct_rand(&rng) % m.n);
		dname(i, name, &len);
		unsigned dice = (unsigned)(ct_rand(&rng) % 10);
		int err;
		uint64_t ino;
		if (dice < 5) {
			err = cowfs_dir_add(e.t, CFS_ROOT_INO, name, len, f + i, CFS_DT_REG);
			if (m.ino[i]) {
				EXPECT_EQ_INT(err, -PLAT_EEXIST);
			} else {
				EXPECT_EQ_INT(err, 0);
				m.ino[i] = f + i;
				m.seq[i] = next_seq++;
			}
		} else if (dice < 8) {
			err = cowfs_dir_remove(e.t, CFS_ROOT_INO, name, len);
			EXPECT_EQ_INT(err, m.ino[i] ? 0 : -PLAT_ENOENT);
			m.ino[i] = 0;
		}
		err = cowfs_dir_lookup(e.t, CFS_ROOT_INO, name, len, &ino, NULL);
		EXPECT_EQ_INT(err, m.ino[i] ? 0 : -PLAT_ENOENT);
		if (!err)
			EXPECT_EQ_INT(ino, m.ino[i]);
		if (test_current_failed)
			break;
		if (s % 2500 == 2499) {
			const char *why = dir_compare(&e, &m);
			if (why)
				test_fail_at(__FILE__, __LINE__, why);
			EXPECT_EQ_INT(cowfs_commit(e.fs), 0);
		}
	}
	/* A cookie from the middle of a listing survives later changes. */
	struct rd_state s = { &m, 0, 0, 100, NULL };
	EXPECT_EQ_INT(cowfs_dir_readdir(e.t, CFS_ROOT_INO, 0, rd_cb, &s), 0);
	uint64_t cookie = s.last_seq;
	for (uint32_t i = 0; i < m.n; i += 7) {
		dname(i, name, &len);
		if (m.ino[i] && m.seq[i] < cookie) {
			EXPECT_EQ_INT(cowfs_dir_remove(e.t, CFS_ROOT_INO, name, len), 0);
			m.ino[i] = 0;
		}
	}
	struct rd_state s2 = { &m, 0, cookie - 1, 0, NULL };
	EXPECT_EQ_INT(cowfs_dir_readdir(e.t, CFS_ROOT_INO, cookie, rd_cb, &s2), 0);
	EXPECT(s2.why == NULL);
	uint64_t after = 0;
	for (uint32_t i = 0; i < m.n; i++)
		after += m.ino[i] && m.seq[i] >= cookie;
	EXPECT_EQ_INT(s2.count, after);
	EXPECT_EQ_INT(env_remount(&e), 0);
	if (e.t)
		EXPECT(dir_compare(&e, &m) == NULL);
out:
	free(m.ino);
	free(m.seq);
	env_close(&e);
}

/* Several names for one inode, in one directory and in two: the
 * back-references follow, and removing one name keeps the others. */
TEST(hard_links_and_back_references)
{
	struct env e;
	uint64_t ino;
	EXPECT_EQ_INT(env_open(&e, "d-links", 16 << 20, 4096), 0);
	if (!e.t)
		goto out;
	struct cowfs_inode sub = { .mode = DIR_MODE, .nlink = 2 };
	EXPECT_EQ_INT(cowfs_inode_create(e.t, &sub), 0);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "sub", 3, sub.ino, CFS_DT_DIR), 0);
	uint64_t f = new_file(&e);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "one", 3, f, CFS_DT_REG), 0);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, "two", 3, f, CFS_DT_REG), 0);
	EXPECT_EQ_INT(cowfs_dir_add(e.t, sub.ino, "three", 5, f, CFS_DT_REG), 0);
	uint8_t buf[512];
	uint32_t len;
	struct cowfs_key k = { f, CFS_ITEM_INODE_REF, CFS_ROOT_INO };
	EXPECT_EQ_INT(cowfs_bt_lookup(e.t, &k, buf, sizeof(buf), &len), 0);
	EXPECT_EQ_INT(len, 2 * (10 + 3));
	k.offset = sub.ino;
	EXPECT_EQ_INT(cowfs_bt_lookup(e.t, &k, buf, sizeof(buf), &len), 0);
	EXPECT_EQ_INT(len, 10 + 5);
	EXPECT_EQ_INT(cowfs_dir_remove(e.t, CFS_ROOT_INO, "one", 3), 0);
	EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, "two", 3, &ino, NULL), 0);
	EXPECT_EQ_INT(ino, f);
	EXPECT_EQ_INT(cowfs_dir_remove(e.t, sub.ino, "three", 5), 0);
	EXPECT_EQ_INT(cowfs_bt_lookup(e.t, &k, NULL, 0, NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_dir_empty(e.t, sub.ino), 1);
	EXPECT_EQ_INT(cowfs_dir_empty(e.t, CFS_ROOT_INO), 0);
	/* Links of one inode in one directory share an item: it fills up. */
	char n[300];
	int err = 0, made = 0;
	for (int i = 0; i < 100 && !err; i++) {
		memset(n, 'a' + i % 26, 255);
		snprintf(n, 8, "%06d", i);
		n[6] = 'x';
		err = cowfs_dir_add(e.t, CFS_ROOT_INO, n, 255, f, CFS_DT_REG);
		made += !err;
	}
	EXPECT_EQ_INT(err, -PLAT_EMLINK);
	EXPECT_EQ_INT(made, 3);     /* 987-byte items with 4 KiB nodes: 3 x 265 bytes fit, 4 do not */
out:
	env_close(&e);
}

struct count_state { uint64_t n, last; bool out_of_order; };
static int count_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct count_state *c = arg;
	char want[32];
	(void)ino; (void)type;
	snprintf(want, sizeof(want), "file-%08llu", (unsigned long long)c->n);
	c->out_of_order |= next <= c->last || len != strlen(want) || memcmp(want, name, len);
	c->last = next;
	c->n++;
	return 0;
}

/* The whole-filesystem check cross-checks the three items of every name:
 * each kind of damage is found and named. */
static const char *damaged_check(int how)
{
	static char msg[200];
	struct env e;
	const char *ret = "setup failed";
	if (env_open(&e, "d-chk", 16 << 20, 4096) || !e.t)
		goto out;
	uint64_t f = new_file(&e);
	for (int i = 0; i < 50; i++) {
		char n[16];
		int l = snprintf(n, sizeof(n), "n%d", i);
		if (cowfs_dir_add(e.t, CFS_ROOT_INO, n, (size_t)l, f, CFS_DT_REG))
			goto out;
	}
	ret = cowfs_check(e.fs, msg, sizeof(msg)) ? "check failed before the damage" : NULL;
	if (ret)
		goto out;
	struct cowfs_key k = { CFS_ROOT_INO, CFS_ITEM_DIR_INDEX, CFS_FIRST_DIR_SEQ + 7 };
	uint8_t buf[512];
	uint32_t len;
	switch (how) {
	case 0:     /* an index item lost */
		cowfs_bt_delete(e.t, &k);
		break;
	case 1:     /* the back-references lost */
		k = (struct cowfs_key){ f, CFS_ITEM_INODE_REF, CFS_ROOT_INO };
		cowfs_bt_delete(e.t, &k);
		break;
	case 2:     /* an index item naming another inode */
		cowfs_bt_lookup(e.t, &k, buf, sizeof(buf), &len);
		cfs_put64(buf, f + 1);
		cowfs_bt_update(e.t, &k, buf, len);
		break;
	case 3:     /* the named inode gone */
		cowfs_inode_delete(e.t, f);
		break;
	case 4:     /* an entry under another hash */
		k = (struct cowfs_key){ CFS_ROOT_INO, CFS_ITEM_DIR_ENTRY, cowfs_name_hash("n3", 2) };
		cowfs_bt_lookup(e.t, &k, buf, sizeof(buf), &len);
		cowfs_bt_delete(e.t, &k);
		k.offset ^= 1;
		cowfs_bt_insert(e.t, &k, buf, len);
		break;
	case 5:     /* a back-reference to a name that does not exist */
		k = (struct cowfs_key){ f, CFS_ITEM_INODE_REF, 999 };
		cfs_put64(buf, 5);
		cfs_put16(buf + 8, 1);
		buf[10] = 'z';
		cowfs_bt_insert(e.t, &k, buf, 11);
		break;
	}
	ret = cowfs_check(e.fs, msg, sizeof(msg)) ? msg : "damage not found";
	cowfs_unmount(e.fs);
	e.fs = NULL;
out:
	env_close(&e);
	return ret;
}

TEST(check_finds_inconsistent_directories)
{
	static const char *want[] = {
		"index item missing or different", "back-reference from the inode missing",
		"index item missing or different", "names an inode that does not exist",
		"stored under the wrong name hash", "50 names, 50 index items, 51 back-references",
	};
	for (int how = 0; how < 6; how++) {
		const char *got = damaged_check(how);
		if (!strstr(got, want[how])) {
			char m[300];
			snprintf(m, sizeof(m), "damage %d: got \"%s\", want \"%s\"", how, got, want[how]);
			test_fail_at(__FILE__, __LINE__, m);
		}
	}
}

/* One directory with many entries: every name found, readdir complete. */
TEST(large_directory)
{
	struct env e;
	uint32_t n = getenv("COWFS_STRESS") ? 1000000 : 100000;
	char name[32];
	uint64_t ino;
	EXPECT_EQ_INT(env_open(&e, "d-large", getenv("COWFS_STRESS") ? (2ull << 30) : (256ull << 20), 16384), 0);
	if (!e.t)
		goto out;
	uint64_t f = CFS_ROOT_INO + 1;
	for (uint32_t i = 0; i < n && !test_current_failed; i++) {
		int l = snprintf(name, sizeof(name), "file-%08u", i);
		EXPECT_EQ_INT(new_file(&e), f + i);
		EXPECT_EQ_INT(cowfs_dir_add(e.t, CFS_ROOT_INO, name, (size_t)l, f + i, CFS_DT_REG), 0);
		if (i % (n / 4) == n / 4 - 1)
			EXPECT_EQ_INT(cowfs_commit(e.fs), 0);
	}
	EXPECT_EQ_INT(env_remount(&e), 0);
	if (!e.t)
		goto out;
	for (uint32_t i = 0; i < n && !test_current_failed; i += 1 + i % 7) {
		int l = snprintf(name, sizeof(name), "file-%08u", i);
		EXPECT_EQ_INT(cowfs_dir_lookup(e.t, CFS_ROOT_INO, name, (size_t)l, &ino, NULL), 0);
		EXPECT_EQ_INT(ino, f + i);
	}
	struct cowfs_inode d;
	EXPECT_EQ_INT(cowfs_inode_read(e.t, CFS_ROOT_INO, &d), 0);
	EXPECT_EQ_INT(d.next_dir_seq, CFS_FIRST_DIR_SEQ + n);
	struct cowfs_tree_stats st;
	char msg[200];
	EXPECT_EQ_INT(cowfs_bt_check(e.t, &st, msg, sizeof(msg)), 0);
	/* Per name: an inode, an entry (shared on a hash collision), an index
	 * item and a back-reference; plus the root. */
	EXPECT(st.items <= 4ull * n + 1 && st.items > 4ull * n + 1 - 1000);
	/* readdir lists every name once, in creation order. */
	struct count_state c = { 0, 0, false };
	EXPECT_EQ_INT(cowfs_dir_readdir(e.t, CFS_ROOT_INO, 0, count_cb, &c), 0);
	EXPECT_EQ_INT(c.n, n);
	EXPECT(!c.out_of_order);
out:
	env_close(&e);
}

TEST_MAIN()
