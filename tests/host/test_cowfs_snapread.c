/* Reading read-only snapshots of the mounted subvolume (fs/snap_read.c):
 * attributes, lookup with "." and "..", readdir with its cookies, symlink
 * targets and file data (holes, a partial tail, odd offsets, the read
 * limit) as they were at the snapshot while the live tree changes; only
 * read-only snapshots of this subvolume are reachable (-ENOENT for the live
 * tree, a writable clone, a deleted snapshot); a flipped bit in a data
 * block is -EIO. */
#define TEST_SUITE "cowfs_snapread"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_env.h"
#include "fs/file.h"

#define BS 4096u
#define SEG (1u << 20)
#define FSIZE (3u * SEG + 1234)

struct names { char s[512]; uint64_t last_cookie; };

static int names_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct names *n = arg;
	(void)ino;
	(void)type;
	strncat(n->s, name, len);
	strcat(n->s, ",");
	n->last_cookie = next;
	return 0;
}

static uint64_t snap_id(struct env *e, const char *name)
{
	uint64_t id = 0;
	struct cowfs *fs = cowfs_vfs_fs(e->m);
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_snapshot_lookup(fs, e->m->tree->id, name, strlen(name), &id), 0);
	cowfs_vfs_unlock(e->m);
	return id;
}

TEST(snapshot_reads_the_old_state)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "snapread", 64 << 20, 4 * SEG, 7, &a, &buf);
	uint8_t *model = calloc(1, 4 * SEG);
	struct cowfs_inode d, l, in;
	uint64_t f = mkfile(&e, "f");
	EXPECT_EQ_INT(cowfs_mkdir(e.m, CFS_ROOT_INO, "d", 1, 0755, 0, 0, &d), 0);
	EXPECT_EQ_INT(cowfs_symlink(e.m, d.ino, "l", 1, "../f", 4, 0, 0, &l), 0);
	/* Data with a hole of 1 MiB in the middle and a partial tail. */
	EXPECT_EQ_INT(cowfs_write(e.m, f, 0, a, SEG, 0), SEG);
	EXPECT_EQ_INT(cowfs_write(e.m, f, 3 * SEG, a + 3 * SEG, FSIZE - 3 * SEG, 0),
		      FSIZE - 3 * SEG);
	memcpy(model, a, SEG);
	memcpy(model + 3 * SEG, a + 3 * SEG, FSIZE - 3 * SEG);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	uint64_t blk_dev = ct_dev_addr(e.m, f, 0);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "s", 1, true), 0);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "w", 1, false), 0);     /* a writable clone */
	uint64_t s = snap_id(&e, "s"), w = snap_id(&e, "w");
	/* The live tree changes. */
	fill(buf, 0, 8192, 99);
	EXPECT_EQ_INT(cowfs_write(e.m, f, 100, buf, 8192, 0), 8192);
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 5000 };
	EXPECT_EQ_INT(cowfs_setattr(e.m, f, &sa, NULL), 0);
	EXPECT_EQ_INT(cowfs_unlink(e.m, d.ino, "l", 1), 0);
	struct cowfs_inode g;
	EXPECT_EQ_INT(cowfs_create(e.m, d.ino, "g", 1, 0644, 0, 0, &g), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);

	/* Attributes and names. */
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, s, f, &in), 0);
	EXPECT_EQ_INT(in.size, FSIZE);
	EXPECT_EQ_INT(cowfs_snap_lookup(e.m, s, CFS_ROOT_INO, "f", 1, &in), 0);
	EXPECT_EQ_INT(in.ino, f);
	EXPECT_EQ_INT(cowfs_snap_lookup(e.m, s, d.ino, "..", 2, &in), 0);
	EXPECT_EQ_INT(in.ino, CFS_ROOT_INO);
	EXPECT_EQ_INT(cowfs_snap_lookup(e.m, s, d.ino, ".", 1, &in), 0);
	EXPECT_EQ_INT(in.ino, d.ino);
	EXPECT_EQ_INT(cowfs_snap_lookup(e.m, s, d.ino, "g", 1, &in), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snap_lookup(e.m, s, f, "x", 1, &in), -PLAT_ENOTDIR);
	struct names n = { "", 0 };
	EXPECT_EQ_INT(cowfs_snap_readdir(e.m, s, d.ino, 0, names_cb, &n), 0);
	EXPECT_STREQ(n.s, ".,..,l,");
	struct names n2 = { "", 0 };
	EXPECT_EQ_INT(cowfs_snap_readdir(e.m, s, d.ino, n.last_cookie, names_cb, &n2), 0);
	EXPECT_STREQ(n2.s, "");
	char target[16];
	size_t tlen = 0;
	EXPECT_EQ_INT(cowfs_snap_readlink(e.m, s, l.ino, target, sizeof(target), &tlen), 0);
	EXPECT(tlen == 4 && !memcmp(target, "../f", 4));
	EXPECT_EQ_INT(cowfs_snap_readlink(e.m, s, f, target, sizeof(target), &tlen), -PLAT_EINVAL);

	/* Data: whole (in reads of at most the limit), odd offsets, past the end. */
	uint64_t done = 0;
	while (done < FSIZE) {
		int64_t r = cowfs_snap_read(e.m, s, f, done, buf + done, 4 * SEG - done);
		EXPECT(r > 0 && r <= (int64_t)CFS_SNAP_READ_MAX);
		if (r <= 0)
			break;
		done += (uint64_t)r;
	}
	EXPECT_EQ_INT(done, FSIZE);
	EXPECT(!memcmp(buf, model, FSIZE));
	static const uint64_t offs[][2] = { { 1, 10 }, { 4095, 2 }, { SEG - 7, 20000 }, { FSIZE - 3, 100 },
					    { 2 * SEG + 5, 333 } };
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t want = offs[i][1] < FSIZE - offs[i][0] ? offs[i][1] : FSIZE - offs[i][0];
		EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, offs[i][0], buf, offs[i][1]), (int64_t)want);
		EXPECT(!memcmp(buf, model + offs[i][0], want));
	}
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, FSIZE, buf, 10), 0);
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, d.ino, 0, buf, 10), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_read(e.m, f, 0, buf, 10000, 0), 5000);      /* the live file is the new one */

	/* Only read-only snapshots of this subvolume. */
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, e.m->tree->id, f, &in), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, w, f, &in), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, 9999, f, &in), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, s, 999999, &in), -PLAT_ENOENT);

	/* A flipped bit in a block only the snapshot still names: -EIO. */
	uint8_t blk[BS];
	EXPECT_EQ_INT(plat_bdev_rw(e.im.bdev, PLAT_BIO_READ, blk_dev, blk, BS), 0);
	blk[17] ^= 4;
	EXPECT_EQ_INT(plat_bdev_rw(e.im.bdev, PLAT_BIO_WRITE, blk_dev, blk, BS), 0);
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, 0, buf, 100), -PLAT_EIO);
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, BS, buf, 100), 100);
	blk[17] ^= 4;
	EXPECT_EQ_INT(plat_bdev_rw(e.im.bdev, PLAT_BIO_WRITE, blk_dev, blk, BS), 0);
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, 0, buf, 100), 100);

	/* Deleted: gone at once. */
	EXPECT_EQ_INT(cowfs_snapshot_remove(e.m, "s", 1), 0);
	EXPECT_EQ_INT(cowfs_snap_getattr(e.m, s, f, &in), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_snap_read(e.m, s, f, 0, buf, 100), -PLAT_ENOENT);
	EXPECT(env_check(&e) == NULL);
	free(model);
	free(a);
	free(buf);
	env_close(&e);
}

TEST_MAIN()
