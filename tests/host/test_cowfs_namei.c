/*
 * The cowfs namespace (fs/namei.c, fs/rename.c) over a host image:
 * every operation and its errors, link counts and timestamps, ".." of
 * moved directories, orphans (unlinked while open, freed at release or at
 * the next mount), and fsck naming each broken namespace rule.  Random
 * operations against a model and power cuts: test_cowfs_ns_model.c.
 */
#define TEST_SUITE "cowfs_namei"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_vfs_test.h"

#define R CFS_ROOT_INO

#define S(x) x, strlen(x)

static uint64_t ino_of(struct cowfs_mount *m, uint64_t dir, const char *name)
{
	struct cowfs_inode in;
	return cowfs_lookup(m, dir, S(name), &in) ? 0 : in.ino;
}

static uint32_t nlink_of(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_inode in;
	return cowfs_getattr(m, ino, &in) ? 0 : in.nlink;
}

static bool time_after_eq(struct cowfs_time a, struct cowfs_time b)
{
	return a.sec > b.sec || (a.sec == b.sec && a.nsec >= b.nsec);
}

/* ---- readdir into a list ---- */
struct dl {
	char name[64][32];
	uint64_t ino[64], cookie[64];
	unsigned n, stop_after;
};
static int dl_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct dl *d = arg;
	(void)type;
	if (d->n == 64 || len >= 32)
		return -1;
	memcpy(d->name[d->n], name, len);
	d->name[d->n][len] = 0;
	d->ino[d->n] = ino;
	d->cookie[d->n++] = next;
	return d->stop_after && d->n == d->stop_after;
}

TEST(create_lookup_and_errors)
{
	struct env e;
	struct cowfs_inode in, d;
	EXPECT_EQ_INT(env_open(&e, "nm-basic", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_getattr(m, R, &d), 0);
	EXPECT(CFS_S_ISDIR(d.mode));
	EXPECT_EQ_INT(d.nlink, 2);
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0640, 7, 8, &in), 0);
	EXPECT_EQ_INT(in.mode, CFS_S_IFREG | 0640);
	EXPECT_EQ_INT(in.uid, 7);
	EXPECT_EQ_INT(in.gid, 8);
	EXPECT_EQ_INT(in.nlink, 1);
	EXPECT_EQ_INT(ino_of(m, R, "f"), in.ino);
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0640, 0, 0, NULL), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("f"), 0755, 0, 0, NULL), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_create(m, R, S("."), 0640, 0, 0, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_create(m, R, S(".."), 0640, 0, 0, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_create(m, R, S("a/b"), 0640, 0, 0, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_create(m, R, "", 0, 0640, 0, 0, NULL), -PLAT_EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname));
	EXPECT_EQ_INT(cowfs_create(m, R, longname, 256, 0640, 0, 0, NULL), -PLAT_ENAMETOOLONG);
	EXPECT_EQ_INT(cowfs_create(m, R, longname, 255, 0640, 0, 0, NULL), 0);
	EXPECT_EQ_INT(cowfs_lookup(m, R, longname, 255, NULL), 0);
	EXPECT_EQ_INT(cowfs_lookup(m, R, S("nope"), NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_lookup(m, in.ino, S("x"), NULL), -PLAT_ENOTDIR);
	EXPECT_EQ_INT(cowfs_create(m, in.ino, S("x"), 0640, 0, 0, NULL), -PLAT_ENOTDIR);
	EXPECT_EQ_INT(cowfs_lookup(m, 99999, S("x"), NULL), -PLAT_ENOENT);
	/* "." and ".." of the root are the root. */
	EXPECT_EQ_INT(ino_of(m, R, "."), R);
	EXPECT_EQ_INT(ino_of(m, R, ".."), R);
	/* The parent's mtime and ctime move with a new name. */
	struct cowfs_inode d2;
	EXPECT_EQ_INT(cowfs_getattr(m, R, &d2), 0);
	EXPECT(time_after_eq(d2.mtime, in.btime));
	EXPECT(time_after_eq(d2.ctime, in.btime));
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(ino_of(m, R, "f"), in.ino);
	EXPECT_EQ_INT(cowfs_lookup(m, R, longname, 255, NULL), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(mkdir_rmdir_link_counts_and_dotdot)
{
	struct env e;
	struct cowfs_inode a, b, f;
	EXPECT_EQ_INT(env_open(&e, "nm-dir", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("a"), 0755, 0, 0, &a), 0);
	EXPECT_EQ_INT(a.nlink, 2);
	EXPECT(CFS_S_ISDIR(a.mode));
	EXPECT_EQ_INT(nlink_of(m, R), 3);
	EXPECT_EQ_INT(cowfs_mkdir(m, a.ino, S("b"), 0700, 0, 0, &b), 0);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 3);
	EXPECT_EQ_INT(ino_of(m, b.ino, ".."), a.ino);
	EXPECT_EQ_INT(ino_of(m, a.ino, ".."), R);
	EXPECT_EQ_INT(ino_of(m, b.ino, "."), b.ino);
	EXPECT_EQ_INT(cowfs_create(m, b.ino, S("f"), 0644, 0, 0, &f), 0);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 2);   /* files do not count */
	EXPECT_EQ_INT(cowfs_rmdir(m, a.ino, S("b")), -PLAT_ENOTEMPTY);
	EXPECT_EQ_INT(cowfs_rmdir(m, R, S("a")), -PLAT_ENOTEMPTY);
	EXPECT_EQ_INT(cowfs_rmdir(m, b.ino, S("f")), -PLAT_ENOTDIR);
	EXPECT_EQ_INT(cowfs_unlink(m, a.ino, S("b")), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_rmdir(m, b.ino, S("zz")), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_rmdir(m, b.ino, S(".")), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rmdir(m, b.ino, S("..")), -PLAT_ENOTEMPTY);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(nlink_of(m, R), 3);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 3);
	EXPECT_EQ_INT(cowfs_unlink(m, b.ino, S("f")), 0);
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &f), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_rmdir(m, a.ino, S("b")), 0);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 2);
	EXPECT_EQ_INT(cowfs_getattr(m, b.ino, &b), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_rmdir(m, R, S("a")), 0);
	EXPECT_EQ_INT(nlink_of(m, R), 2);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(hard_links_and_symlinks)
{
	struct env e;
	struct cowfs_inode f, s, d;
	char buf[5000];
	size_t len;
	EXPECT_EQ_INT(env_open(&e, "nm-link", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0644, 0, 0, &f), 0);
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("d"), 0755, 0, 0, &d), 0);
	EXPECT_EQ_INT(cowfs_link(m, f.ino, d.ino, S("g"), &f), 0);
	EXPECT_EQ_INT(f.nlink, 2);
	EXPECT_EQ_INT(cowfs_link(m, f.ino, R, S("h"), NULL), 0);
	EXPECT_EQ_INT(nlink_of(m, f.ino), 3);
	EXPECT_EQ_INT(cowfs_link(m, f.ino, R, S("h"), NULL), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_link(m, d.ino, R, S("dl"), NULL), -PLAT_EPERM);
	EXPECT_EQ_INT(cowfs_link(m, f.ino, f.ino, S("x"), NULL), -PLAT_ENOTDIR);
	EXPECT_EQ_INT(cowfs_link(m, 77777, R, S("x"), NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(nlink_of(m, d.ino), 2);   /* a file linked in does not count */
	EXPECT_EQ_INT(cowfs_symlink(m, R, S("s"), S("d/g"), 1, 2, &s), 0);
	EXPECT(CFS_S_ISLNK(s.mode));
	EXPECT_EQ_INT(s.size, 3);
	EXPECT_EQ_INT(cowfs_readlink(m, s.ino, buf, sizeof(buf), &len), 0);
	EXPECT_EQ_INT(len, 3);
	EXPECT(!memcmp(buf, "d/g", 3));
	EXPECT_EQ_INT(cowfs_readlink(m, s.ino, buf, 2, &len), 0);   /* truncated copy, full length */
	EXPECT_EQ_INT(len, 3);
	EXPECT_EQ_INT(cowfs_readlink(m, f.ino, buf, sizeof(buf), &len), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_symlink(m, R, S("s"), S("x"), 0, 0, NULL), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_symlink(m, R, S("e"), "", 0, 0, 0, NULL), -PLAT_ENOENT);
	memset(buf, 'p', sizeof(buf));
	EXPECT_EQ_INT(cowfs_symlink(m, R, S("big"), buf, 4096, 0, 0, NULL), -PLAT_ENAMETOOLONG);
	/* The longest a 4 KiB node takes. */
	size_t max = cowfs_max_item_size(cowfs_vfs_fs(m));
	EXPECT_EQ_INT(cowfs_symlink(m, R, S("long"), buf, max, 0, 0, &s), 0);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(cowfs_readlink(m, s.ino, buf, sizeof(buf), &len), 0);
	EXPECT_EQ_INT(len, max);
	EXPECT_EQ_INT(nlink_of(m, f.ino), 3);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("f")), 0);
	EXPECT_EQ_INT(nlink_of(m, f.ino), 2);
	EXPECT_EQ_INT(cowfs_unlink(m, d.ino, S("g")), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("h")), 0);
	EXPECT_EQ_INT(nlink_of(m, f.ino), 0);   /* gone */
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("long")), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("h")), -PLAT_ENOENT);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	/* Nothing of the removed inodes is left in the tree. */
	struct cowfs_key k = { f.ino, 0, 0 };
	int err = cowfs_bt_next(m->tree, &k, NULL, 0, NULL);
	EXPECT(err == -PLAT_ENOENT || k.objectid != f.ino);
	k = (struct cowfs_key){ s.ino, 0, 0 };
	err = cowfs_bt_next(m->tree, &k, NULL, 0, NULL);
	EXPECT(err == -PLAT_ENOENT || k.objectid != s.ino);
	env_close(&e);
}

TEST(rename_cases)
{
	struct env e;
	struct cowfs_inode a, b, f, g, sub, e1;
	EXPECT_EQ_INT(env_open(&e, "nm-rename", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("a"), 0755, 0, 0, &a), 0);
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("b"), 0755, 0, 0, &b), 0);
	EXPECT_EQ_INT(cowfs_create(m, a.ino, S("f"), 0644, 0, 0, &f), 0);
	EXPECT_EQ_INT(cowfs_create(m, b.ino, S("g"), 0644, 0, 0, &g), 0);
	EXPECT_EQ_INT(cowfs_mkdir(m, a.ino, S("sub"), 0755, 0, 0, &sub), 0);
	EXPECT_EQ_INT(cowfs_mkdir(m, b.ino, S("empty"), 0755, 0, 0, &e1), 0);
	/* Same directory. */
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f"), a.ino, S("f2"), 0), 0);
	EXPECT_EQ_INT(ino_of(m, a.ino, "f2"), f.ino);
	EXPECT_EQ_INT(ino_of(m, a.ino, "f"), 0);
	/* Missing source, bad flags, bad names. */
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f"), a.ino, S("x"), 0), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), a.ino, S("x"), 3), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), a.ino, S("x"), 8), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), a.ino, S(".."), 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), f.ino, S("x"), 0), -PLAT_ENOTDIR);
	/* Over an existing file in another directory: g goes. */
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), b.ino, S("g"), CFS_RENAME_NOREPLACE), -PLAT_EEXIST);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f2"), b.ino, S("g"), 0), 0);
	EXPECT_EQ_INT(ino_of(m, b.ino, "g"), f.ino);
	EXPECT_EQ_INT(cowfs_getattr(m, g.ino, &g), -PLAT_ENOENT);
	/* File over directory and back. */
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("g"), b.ino, S("empty"), 0), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("empty"), b.ino, S("g"), 0), -PLAT_ENOTDIR);
	/* A directory into its own subtree, or onto itself. */
	EXPECT_EQ_INT(cowfs_rename(m, R, S("a"), sub.ino, S("x"), 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rename(m, R, S("a"), a.ino, S("x"), 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_rename(m, R, S("a"), R, S("a"), 0), 0);
	/* A directory moves: ".." follows, link counts of both parents. */
	EXPECT_EQ_INT(nlink_of(m, a.ino), 3);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 3);
	EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("sub"), b.ino, S("sub"), 0), 0);
	EXPECT_EQ_INT(ino_of(m, sub.ino, ".."), b.ino);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 2);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 4);
	/* Over an empty directory: it goes, counts stay right. */
	EXPECT_EQ_INT(cowfs_create(m, sub.ino, S("in"), 0644, 0, 0, NULL), 0);
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("empty"), b.ino, S("sub"), 0), -PLAT_ENOTEMPTY);
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("sub"), b.ino, S("empty"), 0), 0);
	EXPECT_EQ_INT(ino_of(m, b.ino, "empty"), sub.ino);
	EXPECT_EQ_INT(cowfs_getattr(m, e1.ino, &e1), -PLAT_ENOENT);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 3);
	/* Over an empty directory in another parent. */
	struct cowfs_inode t2;
	EXPECT_EQ_INT(cowfs_mkdir(m, a.ino, S("t"), 0755, 0, 0, &t2), 0);
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("empty"), a.ino, S("t"), 0), 0);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 3);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 2);
	EXPECT_EQ_INT(ino_of(m, sub.ino, ".."), a.ino);
	/* EXCHANGE: a file and a directory across parents. */
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("g"), a.ino, S("none"), CFS_RENAME_EXCHANGE), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_rename(m, b.ino, S("g"), a.ino, S("t"), CFS_RENAME_EXCHANGE), 0);
	EXPECT_EQ_INT(ino_of(m, b.ino, "g"), sub.ino);
	EXPECT_EQ_INT(ino_of(m, a.ino, "t"), f.ino);
	EXPECT_EQ_INT(ino_of(m, sub.ino, ".."), b.ino);
	EXPECT_EQ_INT(nlink_of(m, a.ino), 2);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 3);
	/* EXCHANGE of a directory with its own ancestor's entry is refused. */
	EXPECT_EQ_INT(cowfs_rename(m, R, S("b"), sub.ino, S("in"), CFS_RENAME_EXCHANGE), -PLAT_EINVAL);
	/* Two names of one inode: nothing happens. */
	EXPECT_EQ_INT(cowfs_link(m, f.ino, R, S("fl"), NULL), 0);
	EXPECT_EQ_INT(cowfs_rename(m, R, S("fl"), a.ino, S("t"), 0), 0);
	EXPECT_EQ_INT(ino_of(m, R, "fl"), f.ino);
	EXPECT_EQ_INT(nlink_of(m, f.ino), 2);
	EXPECT(check_fs(m) == NULL);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(ino_of(m, sub.ino, ".."), b.ino);
	EXPECT_EQ_INT(nlink_of(m, b.ino), 3);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

TEST(readdir_dots_and_cookies)
{
	struct env e;
	struct cowfs_inode d;
	struct dl l = { 0 };
	EXPECT_EQ_INT(env_open(&e, "nm-readdir", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("d"), 0755, 0, 0, &d), 0);
	for (int i = 0; i < 5; i++) {
		char n[8];
		snprintf(n, sizeof(n), "n%d", i);
		EXPECT_EQ_INT(cowfs_create(m, d.ino, S(n), 0644, 0, 0, NULL), 0);
	}
	EXPECT_EQ_INT(cowfs_readdir(m, d.ino, 0, dl_cb, &l), 0);
	EXPECT_EQ_INT(l.n, 7);
	EXPECT_STREQ(l.name[0], ".");
	EXPECT_EQ_INT(l.ino[0], d.ino);
	EXPECT_STREQ(l.name[1], "..");
	EXPECT_EQ_INT(l.ino[1], R);
	EXPECT_STREQ(l.name[2], "n0");
	EXPECT_STREQ(l.name[6], "n4");
	/* Resume after "..", and after an entry removed meanwhile. */
	struct dl l2 = { .stop_after = 3 };
	EXPECT_EQ_INT(cowfs_readdir(m, d.ino, 0, dl_cb, &l2), 0);
	EXPECT_EQ_INT(l2.n, 3);
	EXPECT_EQ_INT(cowfs_unlink(m, d.ino, S("n1")), 0);
	struct dl l3 = { 0 };
	EXPECT_EQ_INT(cowfs_readdir(m, d.ino, l2.cookie[2], dl_cb, &l3), 0);
	EXPECT_EQ_INT(l3.n, 3);
	EXPECT_STREQ(l3.name[0], "n2");
	struct dl l4 = { 0 };
	EXPECT_EQ_INT(cowfs_readdir(m, d.ino, l.cookie[1], dl_cb, &l4), 0);
	EXPECT_STREQ(l4.name[0], "n0");
	EXPECT_EQ_INT(cowfs_readdir(m, l.ino[2], 0, dl_cb, &l4), -PLAT_ENOTDIR);
	env_close(&e);
}

TEST(setattr_mode_owner_times)
{
	struct env e;
	struct cowfs_inode f, g;
	EXPECT_EQ_INT(env_open(&e, "nm-attr", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0644, 0, 0, &f), 0);
	struct cowfs_setattr sa = { .valid = CFS_SET_MODE | CFS_SET_UID | CFS_SET_GID | CFS_SET_ATIME | CFS_SET_MTIME,
				    .mode = 0170600, .uid = 11, .gid = 12,
				    .atime = { 1000, 5 }, .mtime = { 2000, 6 } };
	EXPECT_EQ_INT(cowfs_setattr(m, f.ino, &sa, &g), 0);
	EXPECT_EQ_INT(g.mode, CFS_S_IFREG | 0600);   /* the type bits stay */
	EXPECT_EQ_INT(g.uid, 11);
	EXPECT_EQ_INT(g.gid, 12);
	EXPECT_EQ_INT(g.atime.sec, 1000);
	EXPECT_EQ_INT(g.mtime.nsec, 6);
	EXPECT(time_after_eq(g.ctime, f.ctime));
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &g), 0);
	EXPECT_EQ_INT(g.mode, CFS_S_IFREG | 0600);
	EXPECT_EQ_INT(g.uid, 11);
	EXPECT_EQ_INT(g.mtime.sec, 2000);
	sa.valid = CFS_SET_MTIME_NOW;
	EXPECT_EQ_INT(cowfs_setattr(m, f.ino, &sa, &g), 0);
	EXPECT(g.mtime.sec > 2000);
	EXPECT_EQ_INT(cowfs_setattr(m, 5555, &sa, &g), -PLAT_ENOENT);
	env_close(&e);
}

/* Parents' mtime and ctime move with every change of their names; a
 * renamed or linked inode's mtime does not (its ctime does). */
static void set_old_times(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_setattr sa = { .valid = CFS_SET_MTIME | CFS_SET_ATIME, .mtime = { 1, 0 }, .atime = { 1, 0 } };
	EXPECT_EQ_INT(cowfs_setattr(m, ino, &sa, NULL), 0);
}
static uint64_t mtime_of(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_inode in;
	return cowfs_getattr(m, ino, &in) ? 0 : in.mtime.sec;
}

TEST(timestamps_of_parents_and_inodes)
{
	struct env e;
	struct cowfs_inode a, b, f;
	EXPECT_EQ_INT(env_open(&e, "nm-times", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("a"), 0755, 0, 0, &a), 0);
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("b"), 0755, 0, 0, &b), 0);
	uint64_t dirs[] = { R, a.ino, b.ino };
	for (int op = 0; op < 7; op++) {
		for (int i = 0; i < 3; i++)
			set_old_times(m, dirs[i]);
		uint64_t changed1 = a.ino, changed2 = a.ino;
		switch (op) {
		case 0: EXPECT_EQ_INT(cowfs_create(m, a.ino, S("f"), 0644, 0, 0, &f), 0); break;
		case 1:
			set_old_times(m, f.ino);
			EXPECT_EQ_INT(cowfs_link(m, f.ino, b.ino, S("g"), NULL), 0);
			changed1 = changed2 = b.ino;
			EXPECT_EQ_INT(mtime_of(m, f.ino), 1);
			break;
		case 2:
			EXPECT_EQ_INT(cowfs_rename(m, a.ino, S("f"), b.ino, S("h"), 0), 0);
			changed2 = b.ino;
			EXPECT_EQ_INT(mtime_of(m, f.ino), 1);
			break;
		case 3: EXPECT_EQ_INT(cowfs_unlink(m, b.ino, S("h")), 0); changed1 = changed2 = b.ino; break;
		case 4: EXPECT_EQ_INT(cowfs_mkdir(m, a.ino, S("d"), 0755, 0, 0, NULL), 0); break;
		case 5: EXPECT_EQ_INT(cowfs_rmdir(m, a.ino, S("d")), 0); break;
		case 6: EXPECT_EQ_INT(cowfs_symlink(m, a.ino, S("s"), S("t"), 0, 0, NULL), 0); break;
		}
		for (int i = 0; i < 3; i++) {
			bool want = dirs[i] == changed1 || dirs[i] == changed2;
			if ((mtime_of(m, dirs[i]) > 1) != want) {
				char msg[100];
				snprintf(msg, sizeof(msg), "op %d: directory %d's mtime %s", op, i,
					 want ? "did not move" : "moved");
				test_fail_at(__FILE__, __LINE__, msg);
			}
		}
	}
	env_close(&e);
}

static uint64_t orphan_count(struct cowfs_mount *m)
{
	uint64_t n = 0;
	struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, 0 };
	while (!cowfs_bt_next(m->tree, &k, NULL, 0, NULL) && k.objectid == CFS_ORPHAN_OBJECTID &&
	       k.type == CFS_ITEM_ORPHAN) {
		n++;
		k.offset++;
	}
	return n;
}

TEST(orphans_of_open_files)
{
	struct env e;
	struct cowfs_inode f, g;
	EXPECT_EQ_INT(env_open(&e, "nm-orphan", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0644, 0, 0, &f), 0);
	EXPECT_EQ_INT(cowfs_create(m, R, S("g"), 0644, 0, 0, &g), 0);
	EXPECT_EQ_INT(cowfs_open(m, f.ino), 0);
	EXPECT_EQ_INT(cowfs_open(m, g.ino), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("f")), 0);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("g")), 0);
	/* Open and nameless: still there, recorded as orphans. */
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &f), 0);
	EXPECT_EQ_INT(f.nlink, 0);
	EXPECT_EQ_INT(orphan_count(m), 2);
	EXPECT_EQ_INT(cowfs_link(m, f.ino, R, S("back"), NULL), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	/* g's last close frees it and its orphan item. */
	cowfs_release(m, g.ino);
	EXPECT_EQ_INT(cowfs_getattr(m, g.ino, &g), -PLAT_ENOENT);
	EXPECT_EQ_INT(orphan_count(m), 1);
	EXPECT_EQ_INT(cowfs_vfs_sync(m), 0);
	/* A crash now (f still open): keep the image as the power cut left it. */
	char crashed[128];
	snprintf(crashed, sizeof(crashed), "%s.crash", e.im.path);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "cp %s %s", e.im.path, crashed);
	EXPECT_EQ_INT(system(cmd), 0);
	cowfs_release(m, f.ino);
	env_close(&e);
	/* The next mount frees f. */
	struct env c = { 0 };
	snprintf(c.im.path, sizeof(c.im.path), "%s", crashed);
	c.im.bytes = 2048 * 4096;
	c.im.bdev = plat_host_bdev_open(c.im.path, c.im.bytes, 512, 0, false);
	EXPECT_EQ_INT(env_mount(&c, NULL), 0);
	EXPECT_EQ_INT(orphan_count(c.m), 0);
	EXPECT_EQ_INT(cowfs_getattr(c.m, f.ino, &f), -PLAT_ENOENT);
	EXPECT(check_fs(c.m) == NULL);
	env_close(&c);
}

/* ---- fsck: each broken namespace rule is found and named; repair ---- */
int cowfs_tool(int argc, char **argv);

enum { BRK_FILE_NLINK, BRK_DIR_NLINK, BRK_TWO_NAMES, BRK_LOOP, BRK_NO_ORPHAN, BRK_STALE_ORPHAN,
       BRK_ORPHAN_GONE, BRK_SYMLINK, BRK_COUNT };

struct ns_inos { uint64_t a, b, f, g, s; };

/* Change the committed namespace behind the filesystem's back. */
static int break_rule(struct ct_image *im, int which, const struct ns_inos *n)
{
	struct cowfs *fs;
	struct cowfs_tree *t;
	struct cowfs_inode in;
	ct_image_reopen(im);
	int err = cowfs_mount(im->bdev, NULL, &fs);
	if (err)
		return err;
	if (!(err = cowfs_tree_open(fs, CFS_TREE_FS, false, &t))) {
		struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, 0 };
		switch (which) {
		case BRK_FILE_NLINK:
		case BRK_DIR_NLINK:
			if (!(err = cowfs_inode_read(t, which == BRK_FILE_NLINK ? n->f : n->a, &in))) {
				in.nlink += 3;
				err = cowfs_inode_write(t, &in);
			}
			break;
		case BRK_TWO_NAMES:
			err = cowfs_dir_add(t, R, S("a2"), n->a, CFS_DT_DIR);
			break;
		case BRK_LOOP:   /* a moves under its own child b */
			if (!(err = cowfs_dir_remove(t, R, S("a"))))
				err = cowfs_dir_add(t, n->b, S("a"), n->a, CFS_DT_DIR);
			break;
		case BRK_NO_ORPHAN:   /* g loses its only name and count, no ORPHAN item */
			if (!(err = cowfs_dir_remove(t, R, S("g"))) && !(err = cowfs_inode_read(t, n->g, &in))) {
				in.nlink = 0;
				err = cowfs_inode_write(t, &in);
			}
			break;
		case BRK_STALE_ORPHAN:
			k.offset = n->f;
			err = cowfs_bt_insert(t, &k, NULL, 0);
			break;
		case BRK_ORPHAN_GONE:
			k.offset = 999999;
			err = cowfs_bt_insert(t, &k, NULL, 0);
			break;
		case BRK_SYMLINK:
			k = (struct cowfs_key){ n->s, CFS_ITEM_SYMLINK, 0 };
			err = cowfs_bt_delete(t, &k);
			break;
		}
	}
	int err2 = cowfs_unmount(fs);
	return err ? err : err2;
}

static int check_ns_image(struct ct_image *im, char *msg, size_t len)
{
	struct cowfs *fs;
	struct cowfs_tree *t;
	struct cowfs_mount_opts ro = { .readonly = true };
	ct_image_reopen(im);
	int err = cowfs_mount(im->bdev, &ro, &fs);
	if (err)
		return err;
	if (!(err = cowfs_tree_open(fs, CFS_TREE_FS, false, &t)))
		err = cowfs_check_namespace(t, msg, len, NULL);
	cowfs_unmount(fs);
	return err;
}

static int tool_check(const char *path)
{
	char *argv[] = { (char *)"cowfs", (char *)"check", (char *)path, NULL };
	fflush(stdout);
	return cowfs_tool(3, argv);
}

static int tool_repair(const char *path)
{
	char *argv[] = { (char *)"cowfs", (char *)"check", (char *)"--repair", (char *)path, NULL };
	fflush(stdout);
	return cowfs_tool(4, argv);
}

TEST(fsck_names_each_broken_namespace_rule)
{
	static const char *const expect[BRK_COUNT] = {
		"link count 5, but 2 names", "link count 6, but 3 from its name and subdirectories",
		"has 2 names (\"..\" is ambiguous)", "is not reachable from the root",
		"link count 0 without an ORPHAN item", "ORPHAN item, but 2 links", "which does not exist",
		"target item missing",
	};
	struct env e;
	struct cowfs_inode in;
	struct ns_inos n;
	char msg[1024];
	EXPECT_EQ_INT(env_open(&e, "nm-fsck", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("a"), 0755, 0, 0, &in), 0);
	n.a = in.ino;
	EXPECT_EQ_INT(cowfs_mkdir(m, n.a, S("b"), 0755, 0, 0, &in), 0);
	n.b = in.ino;
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0644, 0, 0, &in), 0);
	n.f = in.ino;
	EXPECT_EQ_INT(cowfs_link(m, n.f, n.a, S("f2"), NULL), 0);
	EXPECT_EQ_INT(cowfs_create(m, R, S("g"), 0644, 0, 0, &in), 0);
	n.g = in.ino;
	EXPECT_EQ_INT(cowfs_symlink(m, n.b, S("s"), S("../../f"), 0, 0, &in), 0);
	n.s = in.ino;
	EXPECT_EQ_INT(cowfs_vfs_unmount(e.m), 0);
	e.m = NULL;
	EXPECT_EQ_INT(check_ns_image(&e.im, msg, sizeof(msg)), 0);
	EXPECT_EQ_INT(tool_check(e.im.path), 0);
	EXPECT_EQ_INT(tool_repair(e.im.path), 0);
	char base[128], cmd[300];
	snprintf(base, sizeof(base), "%s.base", e.im.path);
	snprintf(cmd, sizeof(cmd), "cp %s %s", e.im.path, base);
	EXPECT_EQ_INT(system(cmd), 0);
	for (int w = 0; w < BRK_COUNT; w++) {
		snprintf(cmd, sizeof(cmd), "cp %s %s", base, e.im.path);
		EXPECT_EQ_INT(system(cmd), 0);
		EXPECT_EQ_INT(break_rule(&e.im, w, &n), 0);
		EXPECT_EQ_INT(check_ns_image(&e.im, msg, sizeof(msg)), -PLAT_EIO);
		if (!strstr(msg, expect[w])) {
			char m2[1200];
			snprintf(m2, sizeof(m2), "damage %d: \"%s\" not in \"%s\"", w, expect[w], msg);
			test_fail_at(__FILE__, __LINE__, m2);
		}
		EXPECT_EQ_INT(tool_check(e.im.path), 4);
		/* --repair fixes counts and orphans (exit 1, then clean); a
		 * directory's names and a missing target it cannot (exit 4). */
		bool fixable = w != BRK_TWO_NAMES && w != BRK_LOOP && w != BRK_SYMLINK;
		EXPECT_EQ_INT(tool_repair(e.im.path), fixable ? 1 : 4);
		EXPECT_EQ_INT(tool_check(e.im.path), fixable ? 0 : 4);
		if (fixable && w == BRK_NO_ORPHAN) {
			/* The nameless inode is freed by the next mount. */
			struct env r = e;
			ct_image_reopen(&r.im);
			EXPECT_EQ_INT(env_mount(&r, NULL), 0);
			EXPECT_EQ_INT(nlink_of(r.m, n.g), 0);
			EXPECT_EQ_INT(cowfs_vfs_unmount(r.m), 0);
			e.im = r.im;
			EXPECT_EQ_INT(tool_check(e.im.path), 0);
		}
	}
	unlink(base);
	env_close(&e);
}

TEST_MAIN()
