/*
 * Extended attributes of a mounted cowfs (fs/xattr.c, fs/xattr_tree.c)
 * over a host image with 4 KiB nodes (largest item 987 bytes, so values
 * past it go out of line): round trip and errors, create/replace flags,
 * names whose hashes collide, values up to 64 KiB, many names, remounts,
 * deletion with the inode (also by the orphan cleanup after a crash),
 * snapshots, ENOSPC, random operations against a model with remounts, a
 * power cut at every device write, and each kind of damage found by the
 * check (attributes of a missing inode repaired).
 */
#define TEST_SUITE "cowfs_xattr"
#include <time.h>
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_vfs_test.h"
#include "fs/xattr.h"

#define R CFS_ROOT_INO
#define VMAX CFS_XATTR_VALUE_MAX
#define S(x) x, strlen(x)

static uint64_t mkfile(struct cowfs_mount *m, const char *name)
{
	struct cowfs_inode in;
	return cowfs_create(m, R, S(name), 0644, 0, 0, &in) ? 0 : in.ino;
}

/* Value bytes of (seed, len): deterministic, so models keep no data. */
static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull | 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)ct_rand(&s);
}

/* Whether ino's attribute name has exactly the value fill(len, seed). */
static bool has_value(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, uint64_t seed)
{
	static uint8_t want[VMAX], got[VMAX];
	size_t n = 0;
	fill(want, len, seed);
	if (cowfs_getxattr(m, ino, S(name), got, sizeof(got), &n) || n != len)
		return false;
	return !memcmp(want, got, len);
}

static int set_value(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, uint64_t seed,
		     unsigned flags)
{
	static uint8_t v[VMAX];
	fill(v, len, seed);
	return cowfs_setxattr(m, ino, S(name), v, len, flags);
}

/* Items of `type` in tree t (of inode ino, or of every inode when 0). */
static uint64_t count_items(struct cowfs_tree *t, uint64_t ino, uint8_t type)
{
	uint64_t n = 0;
	struct cowfs_key k = { ino, 0, 0 };
	while (!cowfs_bt_next(t, &k, NULL, 0, NULL) && (!ino || k.objectid == ino)) {
		if (k.type == type)
			n++;
		if (k.offset == UINT64_MAX) {
			k.offset = 0;
			if (++k.type == 0)
				k.objectid++;
		} else {
			k.offset++;
		}
	}
	return n;
}

static bool time_after(struct cowfs_time a, struct cowfs_time b)
{
	return a.sec > b.sec || (a.sec == b.sec && a.nsec > b.nsec);
}

TEST(round_trip_flags_and_errors)
{
	struct env e;
	struct cowfs_inode before, after;
	char buf[256];
	size_t n;
	EXPECT_EQ_INT(env_open(&e, "xa-basic", 2048), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f");
	EXPECT(f != 0);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), buf, sizeof(buf), &n), -PLAT_ENODATA);
	EXPECT_EQ_INT(cowfs_getattr(m, f, &before), 0);
	struct timespec ts = { 0, 2000000 };
	nanosleep(&ts, NULL);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.a"), "hello", 5, 0), 0);
	EXPECT_EQ_INT(cowfs_getattr(m, f, &after), 0);
	EXPECT(time_after(after.ctime, before.ctime));
	EXPECT_EQ_INT(after.mtime.sec * 1000000000ull + after.mtime.nsec,
		      before.mtime.sec * 1000000000ull + before.mtime.nsec);
	n = 0;
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), NULL, 0, &n), 0);   /* size query */
	EXPECT_EQ_INT(n, 5);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), buf, 4, &n), -PLAT_ERANGE);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), buf, sizeof(buf), &n), 0);
	EXPECT(n == 5 && !memcmp(buf, "hello", 5));
	/* Flags. */
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.a"), "x", 1, CFS_XATTR_CREATE), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.b"), "x", 1, CFS_XATTR_REPLACE), -PLAT_ENODATA);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.b"), "x", 1, CFS_XATTR_CREATE | CFS_XATTR_REPLACE), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.b"), buf, sizeof(buf), &n), -PLAT_ENODATA);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.a"), "replaced", 8, CFS_XATTR_REPLACE), 0);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.b"), "", 0, CFS_XATTR_CREATE), 0);   /* empty value */
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.b"), buf, sizeof(buf), &n), 0);
	EXPECT_EQ_INT(n, 0);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), buf, sizeof(buf), &n), 0);
	EXPECT(n == 8 && !memcmp(buf, "replaced", 8));
	/* Names and sizes. */
	char name[300];
	memset(name, 'n', sizeof(name));
	EXPECT_EQ_INT(cowfs_setxattr(m, f, name, 255, "v", 1, 0), 0);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, name, 255, buf, sizeof(buf), &n), 0);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, name, 256, "v", 1, 0), -PLAT_ERANGE);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, name, 256, buf, sizeof(buf), &n), -PLAT_ERANGE);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, name, 0, "v", 1, 0), -PLAT_ERANGE);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, "a\0b", 3, "v", 1, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_setxattr(m, f, S("user.big"), buf, VMAX + 1, 0), -PLAT_E2BIG);
	EXPECT_EQ_INT(cowfs_setxattr(m, 99999, S("user.a"), "x", 1, 0), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_getxattr(m, 99999, S("user.a"), buf, sizeof(buf), &n), -PLAT_ENOENT);
	/* List: size query, too small, the names with their NULs. */
	size_t total = 0;
	EXPECT_EQ_INT(cowfs_listxattr(m, f, NULL, 0, &total), 0);
	EXPECT_EQ_INT(total, 7 + 7 + 256);
	char list[600];
	EXPECT_EQ_INT(cowfs_listxattr(m, f, list, 10, &total), -PLAT_ERANGE);
	EXPECT_EQ_INT(cowfs_listxattr(m, f, list, sizeof(list), &total), 0);
	unsigned seen = 0;
	for (size_t off = 0; off < total; off += strlen(list + off) + 1) {
		if (!strcmp(list + off, "user.a"))
			seen |= 1;
		else if (!strcmp(list + off, "user.b"))
			seen |= 2;
		else if (strlen(list + off) == 255)
			seen |= 4;
	}
	EXPECT_EQ_INT(seen, 7);
	/* Remove. */
	EXPECT_EQ_INT(cowfs_removexattr(m, f, S("user.b")), 0);
	EXPECT_EQ_INT(cowfs_removexattr(m, f, S("user.b")), -PLAT_ENODATA);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.b"), buf, sizeof(buf), &n), -PLAT_ENODATA);
	/* Directories have attributes too; everything survives a remount. */
	struct cowfs_inode d;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("d"), 0755, 0, 0, &d), 0);
	EXPECT_EQ_INT(cowfs_setxattr(m, d.ino, S("trusted.t"), "dir", 3, 0), 0);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.a"), buf, sizeof(buf), &n), 0);
	EXPECT(n == 8 && !memcmp(buf, "replaced", 8));
	EXPECT_EQ_INT(cowfs_getxattr(m, d.ino, S("trusted.t"), buf, sizeof(buf), &n), 0);
	EXPECT(n == 3 && !memcmp(buf, "dir", 3));
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S("user.b"), buf, sizeof(buf), &n), -PLAT_ENODATA);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(large_values_go_out_of_line_and_back)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "xa-large", 4096), 0);
	struct cowfs_mount *m = e.m;
	uint32_t c = cowfs_max_item_size(cowfs_vfs_fs(m));
	EXPECT_EQ_INT(c, 987);
	uint64_t f = mkfile(m, "f");
	static const size_t sizes[] = { 1, 900, 987, 988, 4096, 10000, VMAX };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "user.%u", i);
		EXPECT_EQ_INT(set_value(m, f, name, sizes[i], i + 1, 0), 0);
		EXPECT(has_value(m, f, name, sizes[i], i + 1));
		uint8_t small[8];
		size_t n;
		EXPECT_EQ_INT(cowfs_getxattr(m, f, S(name), small, sizeof(small), &n), sizes[i] > 8 ? -PLAT_ERANGE : 0);
	}
	/* 1 and 900 fit inline (each in its own item); the rest are out of
	 * line in ceil(len / 987) chunks. */
	uint64_t chunks = 0;
	for (unsigned i = 2; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		chunks += (sizes[i] + c - 1) / c;
	EXPECT_EQ_INT(count_items(m->tree, f, CFS_ITEM_XATTR_VALUE), chunks);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "user.%u", i);
		EXPECT(has_value(m, f, name, sizes[i], i + 1));
	}
	/* Replace the 64 KiB value by a small one and a small one by 64 KiB;
	 * then shrink everything: no chunk is left behind. */
	EXPECT_EQ_INT(set_value(m, f, "user.6", 10, 77, CFS_XATTR_REPLACE), 0);
	EXPECT_EQ_INT(set_value(m, f, "user.0", VMAX, 78, CFS_XATTR_REPLACE), 0);
	EXPECT(has_value(m, f, "user.6", 10, 77));
	EXPECT(has_value(m, f, "user.0", VMAX, 78));
	EXPECT(check_fs(m) == NULL);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "user.%u", i);
		EXPECT_EQ_INT(set_value(m, f, name, 3, 100 + i, CFS_XATTR_REPLACE), 0);
	}
	EXPECT_EQ_INT(count_items(m->tree, f, CFS_ITEM_XATTR_VALUE), 0);
	EXPECT(has_value(m, f, "user.4", 3, 104));
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(hash_collisions_share_an_item)
{
	struct env e;
	char a[32], b[32];
	ct_colliding_names(a, b);
	EXPECT(a[0] && strcmp(a, b) != 0);
	EXPECT_EQ_INT(cowfs_name_hash(a, strlen(a)), cowfs_name_hash(b, strlen(b)));
	EXPECT_EQ_INT(env_open(&e, "xa-coll", 4096), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f");
	size_t n;
	EXPECT_EQ_INT(set_value(m, f, a, 100, 1, CFS_XATTR_CREATE), 0);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S(b), NULL, 0, &n), -PLAT_ENODATA);
	EXPECT_EQ_INT(set_value(m, f, b, 200, 2, CFS_XATTR_CREATE), 0);
	EXPECT_EQ_INT(count_items(m->tree, f, CFS_ITEM_XATTR), 1);   /* one item, two entries */
	EXPECT(has_value(m, f, a, 100, 1));
	EXPECT(has_value(m, f, b, 200, 2));
	/* Both large: two out-of-line values under different tags. */
	EXPECT_EQ_INT(set_value(m, f, a, 5000, 3, CFS_XATTR_REPLACE), 0);
	EXPECT_EQ_INT(set_value(m, f, b, 7000, 4, CFS_XATTR_REPLACE), 0);
	EXPECT(has_value(m, f, a, 5000, 3));
	EXPECT(has_value(m, f, b, 7000, 4));
	/* One big enough to stay inline beside the other's name. */
	EXPECT_EQ_INT(set_value(m, f, a, 800, 5, 0), 0);
	EXPECT(has_value(m, f, a, 800, 5));
	EXPECT(has_value(m, f, b, 7000, 4));
	size_t total;
	EXPECT_EQ_INT(cowfs_listxattr(m, f, NULL, 0, &total), 0);
	EXPECT_EQ_INT(total, strlen(a) + strlen(b) + 2);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT(has_value(m, f, a, 800, 5));
	EXPECT(has_value(m, f, b, 7000, 4));
	EXPECT_EQ_INT(cowfs_removexattr(m, f, S(a)), 0);
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S(a), NULL, 0, &n), -PLAT_ENODATA);
	EXPECT(has_value(m, f, b, 7000, 4));
	EXPECT_EQ_INT(cowfs_removexattr(m, f, S(b)), 0);
	EXPECT_EQ_INT(count_items(m->tree, f, CFS_ITEM_XATTR) + count_items(m->tree, f, CFS_ITEM_XATTR_VALUE), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(many_names_on_one_inode)
{
	struct env e;
	enum { N = 400 };
	EXPECT_EQ_INT(env_open(&e, "xa-many", 8192), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f");
	char name[32];
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		EXPECT_EQ_INT(set_value(m, f, name, i % 7 == 0 ? 2000 : i % 50, i, CFS_XATTR_CREATE), 0);
	}
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	size_t total = 0, names = 0;
	char *list = malloc(N * 32);
	EXPECT_EQ_INT(cowfs_listxattr(m, f, list, N * 32, &total), 0);
	for (size_t off = 0; off < total; off += strlen(list + off) + 1)
		names++;
	EXPECT_EQ_INT(names, N);
	free(list);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		EXPECT(has_value(m, f, name, i % 7 == 0 ? 2000 : i % 50, i));
		if (i % 2)
			EXPECT_EQ_INT(cowfs_removexattr(m, f, S(name)), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		size_t n;
		snprintf(name, sizeof(name), "user.attr-%u", i);
		EXPECT_EQ_INT(cowfs_getxattr(m, f, S(name), NULL, 0, &n), i % 2 ? -PLAT_ENODATA : 0);
	}
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(attributes_go_with_the_inode)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "xa-del", 4096), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f"), g = mkfile(m, "g"), keep = mkfile(m, "keep");
	struct cowfs_inode d;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("d"), 0755, 0, 0, &d), 0);
	for (uint64_t ino = f; ino <= d.ino; ino++) {
		EXPECT_EQ_INT(set_value(m, ino, "user.small", 10, ino, 0), 0);
		EXPECT_EQ_INT(set_value(m, ino, "user.big", 20000, ino, 0), 0);
	}
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	/* Unlinked, rmdir'd: gone at once. */
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("f")), 0);
	EXPECT_EQ_INT(cowfs_rmdir(m, R, S("d")), 0);
	EXPECT_EQ_INT(count_items(m->tree, f, CFS_ITEM_XATTR) + count_items(m->tree, f, CFS_ITEM_XATTR_VALUE), 0);
	EXPECT_EQ_INT(count_items(m->tree, d.ino, CFS_ITEM_XATTR), 0);
	/* Unlinked while open: kept (and readable) until the last close. */
	EXPECT_EQ_INT(cowfs_open(m, g), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("g")), 0);
	EXPECT(has_value(m, g, "user.big", 20000, g));
	EXPECT_EQ_INT(set_value(m, g, "user.new", 5, 1, 0), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	/* A crash now: the next mount's orphan cleanup frees g and its
	 * attributes. */
	char crashed[128], cmd[300];
	snprintf(crashed, sizeof(crashed), "%s.crash", e.im.path);
	snprintf(cmd, sizeof(cmd), "cp %s %s", e.im.path, crashed);
	EXPECT_EQ_INT(system(cmd), 0);
	cowfs_release(m, g);
	EXPECT_EQ_INT(count_items(m->tree, g, CFS_ITEM_XATTR) + count_items(m->tree, g, CFS_ITEM_XATTR_VALUE), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
	struct env c = { 0 };
	snprintf(c.im.path, sizeof(c.im.path), "%s", crashed);
	c.im.bytes = 4096 * 4096;
	c.im.bdev = plat_host_bdev_open(c.im.path, c.im.bytes, 512, 0, false);
	EXPECT_EQ_INT(env_mount(&c, NULL), 0);
	EXPECT_EQ_INT(count_items(c.m->tree, g, CFS_ITEM_XATTR) + count_items(c.m->tree, g, CFS_ITEM_XATTR_VALUE), 0);
	/* Only keep's attributes are left in the whole tree. */
	EXPECT_EQ_INT(count_items(c.m->tree, 0, CFS_ITEM_XATTR), 2);
	EXPECT_EQ_INT(count_items(c.m->tree, 0, CFS_ITEM_XATTR_VALUE), count_items(c.m->tree, keep, CFS_ITEM_XATTR_VALUE));
	EXPECT(has_value(c.m, keep, "user.big", 20000, keep));
	EXPECT(check_fs(c.m) == NULL);
	env_close(&c);
}

TEST(snapshots_keep_their_attributes)
{
	struct env e;
	static uint8_t got[VMAX], want[VMAX];
	size_t n;
	EXPECT_EQ_INT(env_open(&e, "xa-snap", 4096), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f");
	EXPECT_EQ_INT(set_value(m, f, "user.s", 50, 1, 0), 0);
	EXPECT_EQ_INT(set_value(m, f, "user.b", 30000, 2, 0), 0);
	EXPECT_EQ_INT(cowfs_snapshot(m, S("before"), true), 0);
	EXPECT_EQ_INT(set_value(m, f, "user.s", 60, 3, 0), 0);
	EXPECT_EQ_INT(cowfs_removexattr(m, f, S("user.b")), 0);
	EXPECT_EQ_INT(set_value(m, f, "user.n", 9000, 4, 0), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	const char *why = check_fs(m);
	if (why)
		fprintf(stderr, "%s\n", why);
	EXPECT(why == NULL);
	struct cowfs *fs = cowfs_vfs_fs(m);
	uint64_t sid;
	struct cowfs_tree *st = NULL;
	EXPECT_EQ_INT(cowfs_snapshot_lookup(fs, CFS_TREE_FS, S("before"), &sid), 0);
	EXPECT_EQ_INT(cowfs_tree_open(fs, sid, false, &st), 0);
	if (st) {
		EXPECT_EQ_INT(cowfs_xattr_get(st, f, S("user.s"), got, sizeof(got), &n), 0);
		fill(want, 50, 1);
		EXPECT(n == 50 && !memcmp(got, want, n));
		EXPECT_EQ_INT(cowfs_xattr_get(st, f, S("user.b"), got, sizeof(got), &n), 0);
		fill(want, 30000, 2);
		EXPECT(n == 30000 && !memcmp(got, want, n));
		EXPECT_EQ_INT(cowfs_xattr_get(st, f, S("user.n"), got, sizeof(got), &n), -PLAT_ENODATA);
	}
	EXPECT(has_value(m, f, "user.s", 60, 3));
	EXPECT(has_value(m, f, "user.n", 9000, 4));
	/* Delete the file, then the snapshot: the check stays clean. */
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("f")), 0);
	EXPECT_EQ_INT(cowfs_snapshot_remove(m, S("before")), 0);
	EXPECT_EQ_INT(cowfs_vfs_drop_pending(m), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(enospc_refuses_before_any_change)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "xa-nospc", 1500), 0);
	struct cowfs_mount *m = e.m;
	uint64_t f = mkfile(m, "f");
	unsigned ok = 0;
	int err = 0;
	char name[32];
	for (unsigned i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "user.%u", i);
		if ((err = set_value(m, f, name, VMAX, i, 0)))
			break;
		ok++;
		if (i % 4 == 3)
			EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	}
	EXPECT_EQ_INT(err, -PLAT_ENOSPC);
	EXPECT(ok > 8);
	size_t n;
	EXPECT_EQ_INT(cowfs_getxattr(m, f, S(name), NULL, 0, &n), -PLAT_ENODATA);   /* the refused one */
	EXPECT_EQ_INT(cowfs_error(cowfs_vfs_fs(m), NULL), 0);   /* refused, not failed half-way */
	for (unsigned i = 0; i < ok; i++) {
		snprintf(name, sizeof(name), "user.%u", i);
		EXPECT(has_value(m, f, name, VMAX, i));
	}
	EXPECT(check_fs(m) == NULL);
	/* Removing still works on the full filesystem, and frees room (the
	 * space check is conservative: half of them). */
	for (unsigned i = 0; i < ok; i += 2) {
		snprintf(name, sizeof(name), "user.%u", i);
		EXPECT_EQ_INT(cowfs_removexattr(m, f, S(name)), 0);
	}
	/* (The freed blocks are pinned until a commit: setxattr commits.) */
	EXPECT_EQ_INT(set_value(m, f, "user.again", VMAX, 999, 0), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("f")), 0);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(env_remount(&e), 0);
	EXPECT(check_fs(e.m) == NULL);
	env_close(&e);
}

/* ---- random operations against a model ----
 * NF files x NN names; a value is (len, seed), len 0 with seed 0 = absent. */
#define NF 3
#define NN 6
struct xmodel { uint64_t ino[NF]; uint32_t len[NF][NN]; uint64_t seed[NF][NN]; };

static void x_name(unsigned i, char *name)
{
	/* (Short names like these never collide: collisions are tested
	 * above.) */
	snprintf(name, 32, "user.k%u", i);
}

static size_t x_len(uint64_t *rng)
{
	switch (ct_rand(rng) % 4) {
	case 0: return (size_t)(ct_rand(rng) % 40);
	case 1: return (size_t)(ct_rand(rng) % 1200);
	case 2: return (size_t)(ct_rand(rng) % 9000);
	default: return ct_rand(rng) % 8 ? (size_t)(ct_rand(rng) % 3000) : VMAX;
	}
}

/* One random set (with random flags) or remove; *why on a mismatch.
 * Returns the operation's error. */
static int x_random_op(struct cowfs_mount *m, struct xmodel *md, uint64_t *rng, const char **why)
{
	unsigned fi = (unsigned)(ct_rand(rng) % NF), ni = (unsigned)(ct_rand(rng) % NN);
	char name[32];
	x_name(ni, name);
	bool present = md->seed[fi][ni] != 0;
	int err;
	if (ct_rand(rng) % 4 == 0) {
		err = cowfs_removexattr(m, md->ino[fi], S(name));
		if (err != (present ? 0 : -PLAT_ENODATA))
			*why = "removexattr result differs from the model";
		else if (!err)
			md->seed[fi][ni] = md->len[fi][ni] = 0;
		return err;
	}
	unsigned flags = (unsigned)(ct_rand(rng) % 3);
	size_t len = x_len(rng);
	uint64_t seed = ct_rand(rng) | 1;
	err = set_value(m, md->ino[fi], name, len, seed, flags);
	int want = flags == CFS_XATTR_CREATE && present ? -PLAT_EEXIST
		 : flags == CFS_XATTR_REPLACE && !present ? -PLAT_ENODATA : 0;
	if (err != want)
		*why = "setxattr result differs from the model";
	else if (!err) {
		md->seed[fi][ni] = seed;
		md->len[fi][ni] = (uint32_t)len;
	}
	return err;
}

static const char *x_compare(struct cowfs_mount *m, const struct xmodel *md)
{
	for (unsigned fi = 0; fi < NF; fi++) {
		size_t total = 0, want_total = 0;
		for (unsigned ni = 0; ni < NN; ni++) {
			char name[32];
			size_t n;
			x_name(ni, name);
			if (!md->seed[fi][ni]) {
				if (cowfs_getxattr(m, md->ino[fi], S(name), NULL, 0, &n) != -PLAT_ENODATA)
					return "an attribute the model does not have";
				continue;
			}
			want_total += strlen(name) + 1;
			if (!has_value(m, md->ino[fi], name, md->len[fi][ni], md->seed[fi][ni]))
				return "an attribute's value differs from the model";
		}
		if (cowfs_listxattr(m, md->ino[fi], NULL, 0, &total) || total != want_total)
			return "the list of names differs from the model";
	}
	return NULL;
}

static int x_setup(struct cowfs_mount *m, struct xmodel *md)
{
	memset(md, 0, sizeof(*md));
	for (unsigned fi = 0; fi < NF; fi++) {
		char name[8];
		snprintf(name, sizeof(name), "f%u", fi);
		if (!(md->ino[fi] = mkfile(m, name)))
			return -1;
	}
	return 0;
}

TEST(random_operations_against_a_model_with_remounts)
{
	struct env e;
	struct xmodel md;
	uint64_t seed = getenv("COWFS_SEED") ? strtoull(getenv("COWFS_SEED"), NULL, 0) : 0x5eed;
	uint64_t rng = seed | 1;
	unsigned ops = getenv("COWFS_STRESS") ? 20000 : 1500;
	printf("# seed %llu (COWFS_SEED replays)\n", (unsigned long long)seed);
	EXPECT_EQ_INT(env_open(&e, "xa-rand", 8192), 0);
	EXPECT_EQ_INT(x_setup(e.m, &md), 0);
	const char *why = NULL;
	for (unsigned k = 0; k < ops && !why; k++) {
		x_random_op(e.m, &md, &rng, &why);
		if (k % 300 == 299) {
			if (!why)
				why = x_compare(e.m, &md);
			if (!why && env_remount(&e))
				why = "remount failed";
			if (!why)
				why = x_compare(e.m, &md);
			if (!why)
				why = check_fs(e.m);
		}
	}
	if (why)
		fprintf(stderr, "seed %llu: %s\n", (unsigned long long)seed, why);
	EXPECT(why == NULL);
	env_close(&e);
}

/* ---- power cuts ----
 * Each operation is committed on its own; after a cut at any device
 * write, the mount shows exactly the attributes of the surviving commit
 * and the check is clean. */
#define CUT_GENS 128
static uint64_t xattr_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e = { 0 };
	struct ct_cut c = { &e.im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	struct xmodel *h = calloc(CUT_GENS, sizeof(*h)), md;
	bool *have = calloc(CUT_GENS, sizeof(bool));
	uint64_t rng = 0xfeed;
	*why = NULL;
	ct_image_create(&e.im, "xa-cut", 1024 * 4096);
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	if (cowfs_mkfs(e.im.bdev, &mk) || (plat_host_bdev_set_volatile(e.im.bdev, true), env_mount(&e, &hooks))) {
		*why = "setup failed";
		goto out;
	}
	struct cowfs_info info;
	cowfs_info(cowfs_vfs_fs(e.m), &info);
	if (x_setup(e.m, &md)) {
		*why = "setup failed";
	} else {
		/* The commit about to run holds the files (no attributes): it
		 * counts once its superblock is durable, even if it then fails. */
		if (info.gen < CUT_GENS) {
			h[info.gen] = md;
			have[info.gen] = true;
		}
		if (cowfs_vfs_sync(e.m) && !c.cut)
			*why = "setup failed";
	}
	for (unsigned k = 0; k < 40 && !c.cut && !*why; k++) {
		const char *opwhy = NULL;
		struct xmodel before = md;
		int err = x_random_op(e.m, &md, &rng, &opwhy);
		if (c.cut) {
			md = before;
			break;
		}
		if (opwhy) {
			*why = opwhy;
			break;
		}
		if (err)
			continue;
		cowfs_info(cowfs_vfs_fs(e.m), &info);
		if (info.gen < CUT_GENS) {
			h[info.gen] = md;
			have[info.gen] = true;
		}
		cowfs_vfs_sync(e.m);
	}
	cowfs_vfs_unmount(e.m);
	e.m = NULL;
	if (*why || !ct_image_reopen(&e.im))
		goto out;
	struct cowfs *fs;
	uint64_t g = UINT64_MAX;
	struct cowfs_mount_opts ro = { .readonly = true };
	if (!cowfs_mount(e.im.bdev, &ro, &fs)) {
		cowfs_info(fs, &info);
		g = info.committed_gen;
		cowfs_unmount(fs);
	}
	if (env_mount(&e, NULL)) {
		*why = "mount after the power cut failed";
		goto out;
	}
	if (g >= CUT_GENS || !have[g]) {
		/* Before the files were committed: nothing to compare. */
		struct cowfs_inode in;
		if (g >= CUT_GENS || cowfs_lookup(e.m, R, S("f0"), &in) != -PLAT_ENOENT)
			*why = "mounted a generation the workload never committed";
	} else {
		*why = x_compare(e.m, &h[g]);
	}
	if (!*why)
		*why = check_fs(e.m);
out:
	if (e.m)
		cowfs_vfs_unmount(e.m);
	ct_cut_free(&c);
	ct_image_remove(&e.im);
	free(h);
	free(have);
	return c.count;
}

TEST(power_cut_at_every_write)
{
	ct_cut_every_write(__FILE__, __LINE__, xattr_cut_run, getenv("COWFS_STRESS") ? 10 : 1, 40);
}

/* ---- fsck ---- */
int cowfs_tool(int argc, char **argv);

enum { DMG_ORPHANED, DMG_WRONG_HASH, DMG_MISSING_CHUNK, DMG_STRAY_CHUNK, DMG_TRUNCATED, DMG_COUNT };

/* Every XATTR and XATTR_VALUE item of inode `from` again under `to`. */
static int copy_items(struct cowfs_tree *t, uint64_t from, uint64_t to)
{
	static uint8_t buf[4096];
	uint32_t len;
	int err = 0;
	for (uint8_t type = CFS_ITEM_XATTR; type <= CFS_ITEM_XATTR_VALUE && !err; type += 3) {
		struct cowfs_key k = { from, type, 0 };
		while (!err && !cowfs_bt_next(t, &k, buf, sizeof(buf), &len) && k.objectid == from && k.type == type) {
			struct cowfs_key nk = { to, type, k.offset };
			err = cowfs_bt_insert(t, &nk, buf, len);
			k.offset++;
		}
	}
	return err;
}

/* Damage the committed tree behind the filesystem's back. */
static int damage(struct ct_image *im, int which, uint64_t f)
{
	struct cowfs *fs;
	struct cowfs_tree *t;
	ct_image_reopen(im);
	int err = cowfs_mount(im->bdev, NULL, &fs);
	if (err)
		return err;
	if (!(err = cowfs_tree_open(fs, CFS_TREE_FS, false, &t))) {
		struct cowfs_xattr_item *it = calloc(1, sizeof(*it));
		uint64_t h = cowfs_name_hash(S("user.big"));
		struct cowfs_key ck = cowfs_xattr_chunk_key(f, h, 1, 1);
		switch (which) {
		case DMG_ORPHANED:   /* f's attributes, copied to an inode that does not exist */
			err = copy_items(t, f, 99999);
			break;
		case DMG_WRONG_HASH:
			if (!(err = cowfs_xattr_item_read(t, f, S("user.big"), it))) {
				it->buf[CFS_XATTR_HEAD] ^= 1;   /* the name changes, the key does not */
				err = cowfs_bt_update(t, &it->k, it->buf, it->len);
			}
			break;
		case DMG_MISSING_CHUNK:
			err = cowfs_bt_delete(t, &ck);
			break;
		case DMG_STRAY_CHUNK:
			ck = cowfs_xattr_chunk_key(f, h, 7, 0);
			err = cowfs_bt_insert(t, &ck, "x", 1);
			break;
		case DMG_TRUNCATED:
			if (!(err = cowfs_xattr_item_read(t, f, S("user.big"), it)))
				err = cowfs_bt_update(t, &it->k, it->buf, CFS_XATTR_HEAD + 3);
			break;
		}
		free(it);
	}
	int err2 = cowfs_unmount(fs);
	return err ? err : err2;
}

static int tool_run(const char *path, bool repair)
{
	char *argv[] = { (char *)"cowfs", (char *)"check", repair ? (char *)"--repair" : (char *)path,
			 repair ? (char *)path : NULL, NULL };
	fflush(stdout);
	return cowfs_tool(repair ? 4 : 3, argv);
}

TEST(fsck_finds_damaged_attributes)
{
	for (int which = 0; which < DMG_COUNT; which++) {
		struct env e;
		EXPECT_EQ_INT(env_open(&e, "xa-fsck", 2048), 0);
		uint64_t f = mkfile(e.m, "f");
		EXPECT_EQ_INT(set_value(e.m, f, "user.big", 3000, 1, 0), 0);
		EXPECT_EQ_INT(set_value(e.m, f, "user.small", 10, 2, 0), 0);
		EXPECT(check_fs(e.m) == NULL);
		EXPECT_EQ_INT(cowfs_vfs_unmount(e.m), 0);
		e.m = NULL;
		EXPECT_EQ_INT(tool_run(e.im.path, false), 0);
		EXPECT_EQ_INT(damage(&e.im, which, f), 0);
		ct_image_reopen(&e.im);
		/* Found and named by the check, and by the tool (exit 4). */
		struct cowfs *fs;
		struct cowfs_tree *t;
		char msg[1024] = "";
		struct cowfs_mount_opts ro = { .readonly = true };
		EXPECT_EQ_INT(cowfs_mount(e.im.bdev, &ro, &fs), 0);
		EXPECT_EQ_INT(cowfs_tree_open(fs, CFS_TREE_FS, false, &t), 0);
		int err = cowfs_check(fs, msg, sizeof(msg));
		if (!err)
			err = cowfs_check_namespace(t, msg, sizeof(msg), NULL);
		cowfs_unmount(fs);
		EXPECT_EQ_INT(err, -PLAT_EIO);
		EXPECT(strstr(msg, "extended attribute") != NULL);
		if (!strstr(msg, "extended attribute"))
			fprintf(stderr, "damage %d: %s\n", which, msg);
		EXPECT_EQ_INT(tool_run(e.im.path, false), 4);
		/* Repair removes the attributes of a missing inode (exit 1, clean
		 * after); other damage is left reported (exit 4). */
		EXPECT_EQ_INT(tool_run(e.im.path, true), which == DMG_ORPHANED ? 1 : 4);
		EXPECT_EQ_INT(tool_run(e.im.path, false), which == DMG_ORPHANED ? 0 : 4);
		ct_image_remove(&e.im);
	}
}

TEST_MAIN()
