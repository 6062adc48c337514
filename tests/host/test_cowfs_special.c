/*
 * POSIX details of the cowfs namespace over a host image (fs/namei.c,
 * fs/file.c): fifos, sockets and device nodes (mknod), set-group-ID
 * directories, and atime as Linux's relatime.  The same behaviour is
 * checked through the FUSE mounts by tests/fuse/test_cowfs_posix.py.
 */
#define TEST_SUITE "cowfs_special"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_vfs_test.h"
#include "fs/namei_int.h"

#define R CFS_ROOT_INO
#define S(x) x, strlen(x)

static bool time_after_eq(struct cowfs_time a, struct cowfs_time b)
{
	return a.sec > b.sec || (a.sec == b.sec && a.nsec >= b.nsec);
}

static int count_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	(void)name, (void)len, (void)ino, (void)type, (void)next;
	++*(unsigned *)arg;
	return 0;
}

/* Fifos, sockets and device nodes: the type, permission bits and device
 * number survive a remount, their entries carry their type, and they have
 * no data to read or size to set; other types are refused. */
static int type_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	(void)ino, (void)next;
	if (len == 3 && !memcmp(name, "chr", 3))
		*(uint8_t *)arg = type;
	return 0;
}

TEST(special_files)
{
	struct env e;
	struct cowfs_inode c, f, b;
	EXPECT_EQ_INT(env_open(&e, "nm-special", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("chr"), CFS_S_IFCHR | 0620, (1u << 8) | 3, 5, 6, &c), 0);
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("fifo"), CFS_S_IFIFO | 0640, 77, 0, 0, &f), 0);
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("blk"), CFS_S_IFBLK | 0600, 0x801, 0, 0, &b), 0);
	EXPECT_EQ_INT(f.rdev, 0);     /* only devices keep a number */
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("sock"), CFS_S_IFSOCK | 0755, 0, 0, 0, NULL), 0);
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("reg"), CFS_S_IFREG | 0644, 0, 0, 0, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("dir"), CFS_S_IFDIR | 0755, 0, 0, 0, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_mknod(m, R, S("chr"), CFS_S_IFCHR | 0600, 1, 0, 0, NULL), -PLAT_EEXIST);
	char buf[8];
	EXPECT_EQ_INT(cowfs_read(m, c.ino, 0, buf, sizeof(buf), 0), -PLAT_EINVAL);
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 10 };
	EXPECT_EQ_INT(cowfs_setattr(m, f.ino, &sa, NULL), -PLAT_EINVAL);
	EXPECT_EQ_INT(env_remount(&e), 0);
	m = e.m;
	EXPECT_EQ_INT(cowfs_lookup(m, R, S("chr"), &c), 0);
	EXPECT_EQ_INT(c.mode, CFS_S_IFCHR | 0620);
	EXPECT_EQ_INT(c.rdev, (1u << 8) | 3);
	EXPECT_EQ_INT(c.uid, 5);
	EXPECT_EQ_INT(c.gid, 6);
	EXPECT_EQ_INT(cowfs_lookup(m, R, S("blk"), &b), 0);
	EXPECT_EQ_INT(b.mode, CFS_S_IFBLK | 0600);
	EXPECT_EQ_INT(b.rdev, 0x801);
	EXPECT_EQ_INT(cowfs_lookup(m, R, S("sock"), &f), 0);
	EXPECT_EQ_INT(f.mode, CFS_S_IFSOCK | 0755);
	uint8_t type = 0;
	EXPECT_EQ_INT(cowfs_readdir(m, R, 0, type_cb, &type), 0);
	EXPECT_EQ_INT(type, CFS_DT_CHR);
	EXPECT_EQ_INT(cowfs_link(m, c.ino, R, S("chr2"), &c), 0);
	EXPECT_EQ_INT(c.nlink, 2);
	EXPECT_EQ_INT(cowfs_unlink(m, R, S("fifo")), 0);
	EXPECT(check_fs(m) == NULL);
	env_close(&e);
}

/* Below a set-group-ID directory new inodes take its group, and new
 * directories keep the bit; elsewhere the caller's group is used. */
TEST(setgid_directory_groups)
{
	struct env e;
	struct cowfs_inode g, in;
	EXPECT_EQ_INT(env_open(&e, "nm-setgid", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("g"), 02775, 0, 4242, &g), 0);
	EXPECT_EQ_INT(g.mode, CFS_S_IFDIR | 02775);
	EXPECT_EQ_INT(cowfs_create(m, g.ino, S("f"), 0644, 7, 7, &in), 0);
	EXPECT_EQ_INT(in.gid, 4242);
	EXPECT_EQ_INT(in.uid, 7);
	EXPECT_EQ_INT(in.mode, CFS_S_IFREG | 0644);   /* files do not get the bit */
	EXPECT_EQ_INT(cowfs_mkdir(m, g.ino, S("sub"), 0755, 7, 7, &in), 0);
	EXPECT_EQ_INT(in.gid, 4242);
	EXPECT_EQ_INT(in.mode, CFS_S_IFDIR | 02755);
	EXPECT_EQ_INT(cowfs_symlink(m, g.ino, S("s"), S("t"), 7, 7, &in), 0);
	EXPECT_EQ_INT(in.gid, 4242);
	EXPECT_EQ_INT(cowfs_mknod(m, g.ino, S("p"), CFS_S_IFIFO | 0600, 0, 7, 7, &in), 0);
	EXPECT_EQ_INT(in.gid, 4242);
	EXPECT_EQ_INT(cowfs_mkdir(m, R, S("plain"), 0775, 0, 4242, &g), 0);
	EXPECT_EQ_INT(cowfs_create(m, g.ino, S("f"), 0644, 7, 7, &in), 0);
	EXPECT_EQ_INT(in.gid, 7);
	env_close(&e);
}

/* relatime (cowfs_atime_due): atime moves on a read only when it is not
 * after mtime and ctime, or is a day old; a read and a readdir update it
 * once, the next read leaves it. */
TEST(atime_moves_as_relatime)
{
	struct cowfs_inode in = { .atime = { 1000, 0 }, .mtime = { 999, 0 }, .ctime = { 999, 5 } };
	struct cowfs_time now = { 1001, 0 };
	EXPECT(!cowfs_atime_due(&in, now));
	in.mtime = (struct cowfs_time){ 1000, 0 };     /* equal counts as not after */
	EXPECT(cowfs_atime_due(&in, now));
	in.mtime = (struct cowfs_time){ 999, 0 };
	in.ctime = (struct cowfs_time){ 1000, 1 };
	EXPECT(cowfs_atime_due(&in, now));
	in.ctime = (struct cowfs_time){ 999, 0 };
	EXPECT(cowfs_atime_due(&in, (struct cowfs_time){ 1000 + 86400, 0 }));
	EXPECT(!cowfs_atime_due(&in, (struct cowfs_time){ 1000 + 86399, 0 }));

	struct env e;
	struct cowfs_inode f, a1, a2;
	EXPECT_EQ_INT(env_open(&e, "nm-atime", 2048), 0);
	struct cowfs_mount *m = e.m;
	EXPECT_EQ_INT(cowfs_create(m, R, S("f"), 0644, 0, 0, &f), 0);
	EXPECT_EQ_INT(cowfs_write(m, f.ino, 0, "data", 4, 0), 4);
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &a1), 0);
	char buf[4];
	EXPECT_EQ_INT(cowfs_read(m, f.ino, 0, buf, 4, 0), 4);
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &a2), 0);
	EXPECT(!time_after_eq(a1.mtime, a2.atime) && !time_after_eq(a1.ctime, a2.atime));
	EXPECT_EQ_INT(cowfs_read(m, f.ino, 0, buf, 4, 0), 4);
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &a1), 0);
	EXPECT(a1.atime.sec == a2.atime.sec && a1.atime.nsec == a2.atime.nsec);
	struct cowfs_inode d1, d2;
	unsigned names = 0;
	EXPECT_EQ_INT(cowfs_getattr(m, R, &d1), 0);
	EXPECT_EQ_INT(cowfs_readdir(m, R, 0, count_cb, &names), 0);
	EXPECT_EQ_INT(names, 3);     /* ., .., f */
	EXPECT_EQ_INT(cowfs_getattr(m, R, &d2), 0);
	EXPECT(!time_after_eq(d1.mtime, d2.atime));
	EXPECT_EQ_INT(env_remount(&e), 0);     /* and it was written back */
	m = e.m;
	EXPECT_EQ_INT(cowfs_getattr(m, f.ino, &a1), 0);
	EXPECT(a1.atime.sec == a2.atime.sec && a1.atime.nsec == a2.atime.nsec);
	env_close(&e);
}

TEST_MAIN()
