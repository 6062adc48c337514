/*
 * The image fuzz oracle, shared by the bounded test (test_cowfs_fuzz, gcc,
 * ASan/UBSan) and the libFuzzer target (tests/fuzz/fuzz_cowfs.c, make
 * cowfs-fuzz, part of make stress).
 *
 * A small filesystem is built once: a subvolume with inodes, directory
 * entries, extended attributes (inline and out of line) and plain items,
 * a snapshot of it, a clone changed on its own,
 * several commits (so older superblocks and freed blocks exist).  An input
 * is a list of 6-byte edits of that image (cowfs_fuzz_edit), applied to a
 * copy; then mount, the whole-filesystem check, a walk of every tree,
 * directory and attribute, a few changes and a commit, unmount.  Every outcome is
 * allowed except a crash, a hang, a sanitizer report or one property: when
 * the check passes, walking the trees it checked must not fail.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/host/cowfs_fuzz.h"
#include "platform/host/platform_host.h"
#include "fs/cowfs_int.h"
#include "fs/inode.h"
#include "fs/xattr.h"

#define FZ_BLOCKS 384u
#define FZ_BYTES  (FZ_BLOCKS * 4096ull)

static uint8_t *fz_base;
static char fz_path[96];
static int fz_fd = -1;
static uint8_t fz_touched[FZ_BLOCKS];
static struct cowfs_fuzz_stats fz_stats;

static void fz_die(const char *what)
{
	fprintf(stderr, "cowfs fuzz: %s\n", what);
	abort();
}

static void fz_items(struct cowfs_tree *t, unsigned n, unsigned salt)
{
	for (unsigned i = 0; i < n; i++) {
		struct cowfs_key k = { 1000 + i / 5, 100, i * 31 + salt };
		uint8_t v[64];
		memset(v, (int)(i + salt), sizeof(v));
		if (cowfs_bt_insert(t, &k, v, 8 + (i % 56)))
			fz_die("base image: insert failed");
	}
}

static void fz_names(struct cowfs_tree *t, unsigned n)
{
	struct cowfs_inode root = { .ino = CFS_ROOT_INO, .mode = 040755, .nlink = 2, .next_dir_seq = CFS_FIRST_DIR_SEQ };
	if (cowfs_inode_create(t, &root))
		fz_die("base image: root inode");
	for (unsigned i = 0; i < n; i++) {
		struct cowfs_inode f = { .mode = 0100644, .nlink = 1, .size = i };
		char name[32];
		int len = snprintf(name, sizeof(name), "file-%u", i);
		if (cowfs_inode_create(t, &f) || cowfs_dir_add(t, CFS_ROOT_INO, name, (size_t)len, f.ino, CFS_DT_REG))
			fz_die("base image: names");
	}
}

/* Two extended attributes of the first file (inode 257), written as
 * fs/xattr.c lays them out (docs/format.md §6): "user.in" inline, and
 * "user.out" of 3000 bytes out of line in chunks under tag 1. */
#define FZ_XA_INO (CFS_ROOT_INO + 1)
#define FZ_XA_OUT 3000u
static void fz_xattrs(struct cowfs_tree *t)
{
	uint8_t item[64], chunk[4096];
	uint32_t c = cowfs_max_item_size(t->fs);
	struct cowfs_key k = { FZ_XA_INO, CFS_ITEM_XATTR, cowfs_name_hash("user.in", 7) };
	cfs_put16(item, 7);
	item[2] = 0;
	cfs_put32(item + 3, 5);
	memcpy(item + CFS_XATTR_HEAD, "user.invalue", 12);
	if (cowfs_bt_insert(t, &k, item, CFS_XATTR_HEAD + 12))
		fz_die("base image: xattr");
	k.offset = cowfs_name_hash("user.out", 8);
	cfs_put16(item, 8);
	item[2] = 1;
	cfs_put32(item + 3, FZ_XA_OUT);
	memcpy(item + CFS_XATTR_HEAD, "user.out", 8);
	if (cowfs_bt_insert(t, &k, item, CFS_XATTR_HEAD + 8))
		fz_die("base image: xattr");
	for (uint32_t i = 0; i * c < FZ_XA_OUT; i++) {
		struct cowfs_key ck = cowfs_xattr_chunk_key(FZ_XA_INO, k.offset, 1, i);
		uint32_t n = FZ_XA_OUT - i * c < c ? FZ_XA_OUT - i * c : c;
		memset(chunk, (int)i, n);
		if (cowfs_bt_insert(t, &ck, chunk, n))
			fz_die("base image: xattr chunk");
	}
}

/* The base image, in memory and in a scratch file the iterations use. */
void cowfs_fuzz_init(void)
{
	if (fz_base)
		return;
	snprintf(fz_path, sizeof(fz_path), "/tmp/cowfs-fuzz-%d.img", getpid());
	unlink(fz_path);
	struct plat_bdev *b = plat_host_bdev_open(fz_path, FZ_BYTES, 512, 0, false);
	struct cowfs_mkfs_opts mo = { .node_size = 4096, .bare = true };   /* the namespace is made below */
	struct cowfs *fs;
	struct cowfs_tree *t, *c;
	if (!b || cowfs_mkfs(b, &mo) || cowfs_mount(b, NULL, &fs))
		fz_die("base image: mkfs/mount");
	if (cowfs_tree_open(fs, CFS_TREE_FS, true, &t))
		fz_die("base image: tree");
	fz_names(t, 40);
	fz_xattrs(t);
	fz_items(t, 300, 0);
	if (cowfs_commit(fs) || cowfs_snapshot_create(fs, CFS_TREE_FS, CFS_TREE_FS + 1, true) ||
	    cowfs_snapshot_create(fs, CFS_TREE_FS, CFS_TREE_FS + 2, false) ||
	    cowfs_tree_open(fs, CFS_TREE_FS + 2, false, &c))
		fz_die("base image: snapshots");
	fz_items(c, 60, 7);
	fz_items(t, 60, 9);
	if (cowfs_commit(fs) || cowfs_unmount(fs))
		fz_die("base image: commit");
	plat_bdev_close(b);
	fz_base = malloc(FZ_BYTES);
	fz_fd = open(fz_path, O_RDWR);
	if (!fz_base || fz_fd < 0 || pread(fz_fd, fz_base, FZ_BYTES, 0) != (ssize_t)FZ_BYTES)
		fz_die("base image: read back");
	unlink(fz_path);      /* the open descriptor keeps it; reopened by /proc/self/fd */
	snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
}

static void fz_touch(uint64_t off, uint64_t len)
{
	for (uint64_t b = off / 4096; b < (off + len + 4095) / 4096 && b < FZ_BLOCKS; b++)
		fz_touched[b] = 1;
}

static void fz_before_write(void *arg, uint64_t off, const void *buf, uint64_t len, unsigned flags)
{
	(void)arg;
	(void)buf;
	(void)flags;
	fz_touch(off, len);
}

static void fz_apply(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + COWFS_FUZZ_EDIT <= size; i += COWFS_FUZZ_EDIT) {
		const uint8_t *e = data + i;
		uint64_t blk = ((uint64_t)e[0] | (uint64_t)e[1] << 8) % FZ_BLOCKS;
		uint32_t off = ((uint32_t)e[2] | (uint32_t)e[3] << 8) % 4096;
		uint8_t val = e[4], mode = e[5] % 4;
		uint8_t page[4096];
		if (pread(fz_fd, page, 4096, (off_t)(blk * 4096)) != 4096)
			fz_die("pread");
		switch (mode) {
		case 0: page[off] ^= val ? val : 1; break;                  /* bit flips */
		case 1: page[off] = val; break;                             /* a byte set */
		case 2: memset(page + (off & ~511u), 0, 512); break;        /* a zeroed sector */
		case 3:                                                     /* a misplaced (stale, swapped) block */
			memcpy(page, fz_base + ((blk + 1 + val) % FZ_BLOCKS) * 4096, 4096);
			break;
		}
		if (pwrite(fz_fd, page, 4096, (off_t)(blk * 4096)) != 4096)
			fz_die("pwrite");
		fz_touched[blk] = 1;
	}
}

static void fz_restore(void)
{
	for (uint64_t b = 0; b < FZ_BLOCKS; b++)
		if (fz_touched[b]) {
			if (pwrite(fz_fd, fz_base + b * 4096, 4096, (off_t)(b * 4096)) != 4096)
				fz_die("restore");
			fz_touched[b] = 0;
		}
}

struct fz_walk { unsigned items; };

static int fz_item(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct fz_walk *w = arg;
	(void)k;
	if (len && ((const volatile uint8_t *)data)[len - 1] == 0xfe)
		w->items += 2;        /* touch the last byte: ASan sees any overrun */
	w->items++;
	return 0;
}

static int fz_dirent(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	(void)name;
	(void)len;
	(void)ino;
	(void)type;
	(void)next;
	(*(unsigned *)arg)++;
	return 0;
}

static int fz_walk_tree(void *arg, const struct cowfs_subvol_info *si)
{
	struct cowfs *fs = arg;
	struct cowfs_tree *t;
	struct fz_walk w = { 0 };
	static const struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	unsigned names = 0;
	int err = cowfs_tree_open(fs, si->id, false, &t);
	if (!err)
		err = cowfs_bt_iterate(t, &from, &to, fz_item, &w);
	if (!err) {
		err = cowfs_dir_readdir(t, CFS_ROOT_INO, 0, fz_dirent, &names);
		if (err == -PLAT_ENOENT)
			err = 0;
	}
	/* The attributes read back (absent is fine: a lost item is not
	 * damage the check can see; what is there must read). */
	static uint8_t value[CFS_XATTR_VALUE_MAX];
	size_t vlen;
	if (!err && (err = cowfs_xattr_get(t, FZ_XA_INO, "user.in", 7, value, sizeof(value), &vlen)) == -PLAT_ENODATA)
		err = 0;
	if (!err && (err = cowfs_xattr_get(t, FZ_XA_INO, "user.out", 8, value, sizeof(value), &vlen)) == -PLAT_ENODATA)
		err = 0;
	return err;
}

void cowfs_fuzz_one(const uint8_t *data, size_t size)
{
	cowfs_fuzz_init();
	fz_apply(data, size);
	struct plat_bdev *b = plat_host_bdev_open(fz_path, FZ_BYTES, 512, 0, false);
	if (!b)
		fz_die("open");
	struct cowfs_hooks hooks = { fz_before_write, NULL, NULL };
	struct cowfs_mount_opts mo = { .cache_bytes = 256 << 10, .hooks = &hooks };
	struct cowfs *fs;
	fz_stats.runs++;
	if (cowfs_mount(b, &mo, &fs) == 0) {
		char msg[200];
		int clean = cowfs_check(fs, msg, sizeof(msg));
		fz_stats.mounted++;
		fz_stats.clean += clean == 0;
		int walked = cowfs_subvol_list(fs, fz_walk_tree, fs);
		if (clean == 0 && walked != 0)
			fz_die("the check passed but walking the trees it checked failed");
		/* Changes and a commit on whatever was mounted: errors are fine,
		 * crashes are not. */
		struct cowfs_tree *t;
		if (cowfs_tree_open(fs, CFS_TREE_FS, false, &t) == 0) {
			struct cowfs_key k = { 999, 101, 5 };
			cowfs_bt_insert(t, &k, "fuzz", 4);
			k.objectid = 1000;
			k.type = 100;
			k.offset = 31;
			cowfs_bt_delete(t, &k);
		}
		cowfs_commit(fs);
		cowfs_unmount(fs);
	}
	plat_bdev_close(b);
	fz_restore();
}

void cowfs_fuzz_get_stats(struct cowfs_fuzz_stats *out)
{
	*out = fz_stats;
}

size_t cowfs_fuzz_image_blocks(void)
{
	return FZ_BLOCKS;
}
