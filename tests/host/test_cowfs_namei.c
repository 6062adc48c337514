/*
 * The cowfs namespace (fs/namei.c, fs/rename.c) over a host image:
 * every operation and its errors, link counts and timestamps, ".." of
 * moved directories, orphans (unlinked while open, freed at release or at
 * the next mount), random namespace operations against a model with
 * remounts, and power cuts at every device write of a rename-heavy
 * workload leaving the old or the new namespace and a clean check.
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

/* ---- random operations against a model ----
 * Model inodes (index > 0; 0 = the root) and the names that point to them;
 * link counts and parents follow from the names. */
#define MN 96
#define ME 160
struct mname { int dir, node; char name[4]; };
struct model {
	uint64_t ino[MN];
	uint8_t type[MN];              /* 0 free, 'f', 'd', 'l' */
	char target[MN][8];
	struct mname e[ME];
	int ne;
};

static int m_find(const struct model *md, int dir, const char *name)
{
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].dir == dir && !strcmp(md->e[i].name, name))
			return i;
	return -1;
}
static int m_links(const struct model *md, int node)
{
	int n = 0;
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].node == node)
			n++;
		else if (md->type[node] == 'd' && md->e[i].dir == node && md->type[md->e[i].node] == 'd')
			n++;
	return md->type[node] == 'd' ? n + 1 + (node == 0) : n;
}
static int m_parent(const struct model *md, int dir)
{
	if (dir == 0)
		return 0;
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].node == dir)
			return md->e[i].dir;
	return -1;
}
static bool m_within(const struct model *md, int dir, int anc)
{
	for (int d = dir;; d = m_parent(md, d)) {
		if (d == anc)
			return true;
		if (d == 0)
			return false;
	}
}
static bool m_empty(const struct model *md, int dir)
{
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].dir == dir)
			return false;
	return true;
}
static void m_del(struct model *md, int i)
{
	int node = md->e[i].node;
	md->e[i] = md->e[--md->ne];
	if (m_links(md, node) == 0 || (md->type[node] == 'd' && m_parent(md, node) < 0))
		md->type[node] = 0;
}
static void m_add(struct model *md, int dir, const char *name, int node)
{
	md->e[md->ne].dir = dir;
	md->e[md->ne].node = node;
	snprintf(md->e[md->ne].name, sizeof(md->e[0].name), "%s", name);
	md->ne++;
}
static int m_new(struct model *md)
{
	for (int i = 1; i < MN; i++)
		if (!md->type[i])
			return i;
	return -1;
}
static int m_pick(const struct model *md, uint64_t *rng, char type)
{
	int n = 0, c[MN];
	for (int i = 0; i < MN; i++)
		if (md->type[i] && (!type || md->type[i] == type))
			c[n++] = i;
	return n ? c[ct_rand(rng) % n] : -1;
}

/* Model side of rename: the expected result, and the change on success. */
static int m_rename(struct model *md, int od, const char *on, int nd, const char *nn, unsigned fl)
{
	int s = m_find(md, od, on), t = m_find(md, nd, nn);
	if (s < 0)
		return -PLAT_ENOENT;
	int sn = md->e[s].node, tn = t >= 0 ? md->e[t].node : -1;
	if (tn == sn)
		return 0;
	if ((fl & CFS_RENAME_NOREPLACE) && t >= 0)
		return -PLAT_EEXIST;
	if ((fl & CFS_RENAME_EXCHANGE) && t < 0)
		return -PLAT_ENOENT;
	bool sdir = md->type[sn] == 'd', ddir = t >= 0 && md->type[tn] == 'd';
	if (sdir && od != nd && m_within(md, nd, sn))
		return -PLAT_EINVAL;
	if ((fl & CFS_RENAME_EXCHANGE) && ddir && od != nd && m_within(md, od, tn))
		return -PLAT_EINVAL;
	if (fl & CFS_RENAME_EXCHANGE) {
		md->e[s].node = tn;
		md->e[t].node = sn;
		return 0;
	}
	if (t >= 0) {
		if (sdir && !ddir)
			return -PLAT_ENOTDIR;
		if (!sdir && ddir)
			return -PLAT_EISDIR;
		if (ddir && !m_empty(md, tn))
			return -PLAT_ENOTEMPTY;
	}
	md->e[s].dir = nd;
	snprintf(md->e[s].name, sizeof(md->e[0].name), "%s", nn);
	if (t >= 0)
		m_del(md, t);
	return 0;
}

struct cmp_ctx { const struct model *md; int dir; int seen; const char *why; };
static int cmp_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct cmp_ctx *c = arg;
	char n[8];
	(void)type;
	(void)next;
	if (len >= sizeof(n)) {
		c->why = "readdir returned a name the model never made";
		return 1;
	}
	memcpy(n, name, len);
	n[len] = 0;
	if (!strcmp(n, ".")) {
		if (ino != c->md->ino[c->dir])
			c->why = "\".\" is not the directory";
		return c->why != NULL;
	}
	if (!strcmp(n, "..")) {
		if (ino != c->md->ino[m_parent(c->md, c->dir)])
			c->why = "\"..\" is not the parent";
		return c->why != NULL;
	}
	int i = m_find(c->md, c->dir, n);
	if (i < 0 || c->md->ino[c->md->e[i].node] != ino) {
		c->why = i < 0 ? "readdir has a name the model does not" : "a name points to the wrong inode";
		return 1;
	}
	c->seen++;
	return 0;
}

static const char *compare(struct cowfs_mount *m, const struct model *md)
{
	for (int n = 0; n < MN; n++) {
		if (!md->type[n])
			continue;
		struct cowfs_inode in;
		if (cowfs_getattr(m, md->ino[n], &in))
			return "an inode of the model is missing";
		if ((int)in.nlink != m_links(md, n))
			return "link count differs from the model";
		if (md->type[n] == 'l') {
			char buf[16];
			size_t len;
			if (cowfs_readlink(m, md->ino[n], buf, sizeof(buf), &len) || len != strlen(md->target[n]) ||
			    memcmp(buf, md->target[n], len))
				return "symlink target differs";
		}
		if (md->type[n] != 'd')
			continue;
		struct cmp_ctx c = { md, n, 0, NULL };
		if (cowfs_readdir(m, md->ino[n], 0, cmp_cb, &c))
			return "readdir failed";
		if (c.why)
			return c.why;
		int want = 0;
		for (int i = 0; i < md->ne; i++)
			want += md->e[i].dir == n;
		if (c.seen != want)
			return "readdir misses names of the model";
	}
	return check_fs(m);
}

/* One random operation on both; returns what the filesystem said, sets
 * *why when it disagrees with the model. */
static int random_op(struct cowfs_mount *m, struct model *md, uint64_t *rng, bool renames_only, const char **why)
{
	char name[4], name2[4];
	snprintf(name, sizeof(name), "%c", 'a' + (int)(ct_rand(rng) % 5));
	snprintf(name2, sizeof(name2), "%c", 'a' + (int)(ct_rand(rng) % 5));
	int dir = m_pick(md, rng, 'd'), dir2 = m_pick(md, rng, 'd');
	if (md->ne && ct_rand(rng) % 2) {   /* half the time an existing name */
		const struct mname *pick = &md->e[ct_rand(rng) % md->ne];
		dir = pick->dir;
		snprintf(name, sizeof(name), "%s", pick->name);
	}
	int op = renames_only ? 7 + (int)(ct_rand(rng) % 3) : (int)(ct_rand(rng) % 10);
	if (renames_only && ct_rand(rng) % 4 == 0)
		op = (int)(ct_rand(rng) % 3);
	int want = 0, got, i = m_find(md, dir, name), node = i >= 0 ? md->e[i].node : -1;
	struct cowfs_inode in;
	switch (op) {
	case 0: case 1: case 2: {   /* create, mkdir, symlink */
		int nn = m_new(md);
		if (nn < 0 || md->ne == ME)
			return 0;
		want = i >= 0 ? -PLAT_EEXIST : 0;
		if (op == 0)
			got = cowfs_create(m, md->ino[dir], S(name), 0644, 0, 0, &in);
		else if (op == 1)
			got = cowfs_mkdir(m, md->ino[dir], S(name), 0755, 0, 0, &in);
		else
			got = cowfs_symlink(m, md->ino[dir], S(name), S(name2), 0, 0, &in);
		if (!got && !want) {
			md->type[nn] = "fdl"[op];
			md->ino[nn] = in.ino;
			snprintf(md->target[nn], sizeof(md->target[0]), "%s", name2);
			m_add(md, dir, name, nn);
		}
		break;
	}
	case 3: {   /* link */
		int src = m_pick(md, rng, 0);
		if (src < 0 || md->ne == ME)
			return 0;
		want = md->type[src] == 'd' ? -PLAT_EPERM : i >= 0 ? -PLAT_EEXIST : 0;
		got = cowfs_link(m, md->ino[src], md->ino[dir], S(name), NULL);
		if (!got && !want)
			m_add(md, dir, name, src);
		break;
	}
	case 4: case 5:   /* unlink */
		want = i < 0 ? -PLAT_ENOENT : md->type[node] == 'd' ? -PLAT_EISDIR : 0;
		got = cowfs_unlink(m, md->ino[dir], S(name));
		if (!got && !want)
			m_del(md, i);
		break;
	case 6:   /* rmdir */
		want = i < 0 ? -PLAT_ENOENT : md->type[node] != 'd' ? -PLAT_ENOTDIR
		       : !m_empty(md, node) ? -PLAT_ENOTEMPTY : 0;
		got = cowfs_rmdir(m, md->ino[dir], S(name));
		if (!got && !want)
			m_del(md, i);
		break;
	default: {   /* rename, NOREPLACE, EXCHANGE */
		unsigned fl = op == 7 ? 0 : op == 8 ? CFS_RENAME_NOREPLACE : CFS_RENAME_EXCHANGE;
		struct model before = *md;
		want = m_rename(md, dir, name, dir2, name2, fl);
		got = cowfs_rename(m, md->ino[dir], S(name), md->ino[dir2], S(name2), fl);
		if (got || want)
			*md = before;
		break;
	}
	}
	if (got != want) {
		static char msg[120];
		snprintf(msg, sizeof(msg), "op %d %s -> %s: filesystem says %d, model %d", op, name, name2, got, want);
		*why = msg;
	}
	return got;
}

static void model_init(struct model *md)
{
	memset(md, 0, sizeof(*md));
	md->type[0] = 'd';
	md->ino[0] = R;
}

TEST(random_namespace_against_model_with_remounts)
{
	struct env e;
	struct model *md = malloc(sizeof(*md));
	uint64_t rng = 0x5eed1234;
	const char *seed = getenv("COWFS_SEED");
	if (seed)
		rng = strtoull(seed, NULL, 0);
	printf("# seed 0x%llx (COWFS_SEED replays)\n", (unsigned long long)rng);
	model_init(md);
	EXPECT_EQ_INT(env_open(&e, "nm-random", 4096), 0);
	unsigned ops = getenv("COWFS_STRESS") ? 20000 : 2000;
	const char *why = NULL;
	for (unsigned k = 0; k < ops && !why; k++) {
		random_op(e.m, md, &rng, false, &why);
		if (!why && k % 250 == 249) {
			why = compare(e.m, md);
			if (!why && (k / 250) % 2 && env_remount(&e))
				why = "remount failed";
			if (!why)
				why = compare(e.m, md);
		}
		if (why) {
			char msg[300];
			snprintf(msg, sizeof(msg), "after op %u: %s", k, why);
			test_fail_at(__FILE__, __LINE__, msg);
		}
	}
	env_close(&e);
	free(md);
}

/* ---- power cuts ---- */
#define CUT_GENS 256
struct cut_hist { struct model at[CUT_GENS]; bool have[CUT_GENS]; };

static uint64_t rename_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e = { 0 };
	struct ct_cut c = { &e.im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	struct cut_hist *h = calloc(1, sizeof(*h));
	struct model *md = malloc(sizeof(*md));
	uint64_t rng = 0xc0ffee;
	*why = NULL;
	model_init(md);
	ct_image_create(&e.im, "nm-cut", 512 * 4096);
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	if (cowfs_mkfs(e.im.bdev, &mk) || (plat_host_bdev_set_volatile(e.im.bdev, true), env_mount(&e, &hooks))) {
		*why = "setup failed";
		goto out;
	}
	int err = 0;
	/* A few directories and files, then renames (a quarter other ops),
	 * each made durable by a commit of its own. */
	for (unsigned k = 0; k < 200 && !err; k++) {
		const char *opwhy = NULL;
		struct model before = *md;
		err = random_op(e.m, md, &rng, k >= 12, &opwhy);
		if (opwhy && !c.cut) {
			*why = opwhy;
			break;
		}
		if (err && !c.cut)
			err = 0;   /* a refused operation, as the model expected */
		if (err) {
			*md = before;
			continue;
		}
		/* The commit about to run holds this state: it counts once its
		 * superblock is durable, even if the commit then fails. */
		struct cowfs_info info;
		cowfs_info(cowfs_vfs_fs(e.m), &info);
		if (info.gen < CUT_GENS) {
			h->at[info.gen] = *md;
			h->have[info.gen] = true;
		}
		err = cowfs_vfs_sync(e.m);
	}
	if (err && !c.cut && !*why)
		*why = "workload failed without a power cut";
	cowfs_vfs_unmount(e.m);
	e.m = NULL;
	if (*why || !ct_image_reopen(&e.im))
		goto out;
	/* Which commit survived: read it before the mount changes anything. */
	struct cowfs *fs;
	uint64_t g = UINT64_MAX;
	struct cowfs_mount_opts ro = { .readonly = true };
	if (!cowfs_mount(e.im.bdev, &ro, &fs)) {
		struct cowfs_info info;
		cowfs_info(fs, &info);
		g = info.committed_gen;
		cowfs_unmount(fs);
	}
	if (env_mount(&e, NULL)) {
		*why = "mount after the power cut failed";
		goto out;
	}
	if (g == 1) {
		/* mkfs's commit: the namespace is the empty root. */
		struct model empty;
		model_init(&empty);
		*why = compare(e.m, &empty);
	} else if (g >= CUT_GENS || !h->have[g]) {
		*why = "mounted a generation the workload never committed";
	} else {
		*why = compare(e.m, &h->at[g]);
	}
out:
	if (e.m)
		cowfs_vfs_unmount(e.m);
	e.m = NULL;
	ct_cut_free(&c);
	ct_image_remove(&e.im);
	free(h);
	free(md);
	return c.count;
}

TEST(power_cut_at_every_write_during_renames)
{
	ct_cut_every_write(__FILE__, __LINE__, rename_cut_run, getenv("COWFS_STRESS") ? 20 : 1, 150);
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
