/*
 * Reading a read-only snapshot of the mounted subvolume (fs/vfs.h has the
 * contract): attributes, names, directory listings, symlink targets, file
 * data, extended attributes and the data/hole map straight from the
 * snapshot's tree, and a copy of a snapshot file's range into a live file.
 *
 * A snapshot never changes, so nothing here needs the inode cache or the
 * page cache: each call takes the filesystem lock, resolves the snapshot
 * by id (its ROOT_ITEM: a read-only snapshot of this subvolume, not being
 * deleted -- else -ENOENT, so a deleted snapshot's handles go stale at
 * once), does its tree lookups and, for data, reads the extents' blocks
 * from the device and verifies each against its checksum (fs/csum.c)
 * before copying out.  Holding the lock across the reads keeps the
 * background delete (fs/drop.c, under the same lock) from freeing a block
 * being read; the cost is that other operations wait for them, so one
 * call reads at most CFS_SNAP_READ_MAX bytes (the caller continues).
 */
#include "fs/file.h"
#include "fs/namei_int.h"
#include "fs/xattr.h"

#define BS CFS_BLOCK_SIZE
#define SNAP_READ_CHUNK (64u << 10)

/* Lock held: the snapshot's tree. */
static int snap_tree(struct cowfs_mount *m, uint64_t snap, struct cowfs_tree **out)
{
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	uint32_t len;
	struct cowfs_key k = { snap, CFS_ITEM_ROOT, 0 };
	if (snap < CFS_TREE_FS || snap == m->tree->id)
		return -PLAT_ENOENT;
	int err = cowfs_bt_lookup(&m->fs->root_tree, &k, ri, sizeof(ri), &len);
	if (err)
		return err;
	uint64_t flags = cfs_get64(ri + CFS_RI_FLAGS);
	if (len != CFS_ROOT_ITEM_SIZE || !(flags & CFS_ROOT_RDONLY) || (flags & CFS_ROOT_DROPPING) ||
	    cfs_get64(ri + CFS_RI_PARENT) != m->tree->id)
		return -PLAT_ENOENT;
	return cowfs_tree_open(m->fs, snap, false, out);
}

/* Lock taken: the snapshot's tree and inode ino in it. */
static int snap_begin(struct cowfs_mount *m, uint64_t snap, uint64_t ino, struct cowfs_tree **t,
		      struct cowfs_inode *in)
{
	cowfs_vfs_lock(m);
	int err = snap_tree(m, snap, t);
	if (!err)
		err = cowfs_inode_read(*t, ino, in);
	return err;
}

int cowfs_snap_getattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, struct cowfs_inode *out)
{
	struct cowfs_tree *t;
	int err = snap_begin(m, snap, ino, &t, out);
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_snap_lookup(struct cowfs_mount *m, uint64_t snap, uint64_t dir, const char *name, size_t len,
		      struct cowfs_inode *out)
{
	struct cowfs_tree *t;
	struct cowfs_inode d;
	uint64_t ino = dir;
	int err = snap_begin(m, snap, dir, &t, &d);
	if (!err && !CFS_S_ISDIR(d.mode))
		err = -PLAT_ENOTDIR;
	if (err || (len == 1 && name[0] == '.'))
		;
	else if (len == 2 && name[0] == '.' && name[1] == '.')
		err = cowfs_dir_parent(t, dir, &ino);
	else if (!(err = cowfs_name_valid(name, len)))
		err = cowfs_dir_lookup(t, dir, name, len, &ino, NULL);
	if (!err)
		err = cowfs_inode_read(t, ino, out);
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_snap_readdir(struct cowfs_mount *m, uint64_t snap, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb,
		       void *arg)
{
	struct cowfs_tree *t;
	struct cowfs_inode d;
	uint64_t parent;
	int err = snap_begin(m, snap, dir, &t, &d);
	if (!err && !CFS_S_ISDIR(d.mode))
		err = -PLAT_ENOTDIR;
	if (err)
		goto out;
	if (cookie == 0 && cb(arg, ".", 1, dir, CFS_DT_DIR, 1))
		goto out;
	if (cookie <= 1) {
		if ((err = cowfs_dir_parent(t, dir, &parent)) ||
		    cb(arg, "..", 2, parent, CFS_DT_DIR, CFS_FIRST_DIR_SEQ))
			goto out;
	}
	err = cowfs_dir_readdir(t, dir, cookie < CFS_FIRST_DIR_SEQ ? CFS_FIRST_DIR_SEQ : cookie, cb, arg);
out:
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_snap_readlink(struct cowfs_mount *m, uint64_t snap, uint64_t ino, char *buf, size_t bufsize, size_t *len)
{
	struct cowfs_tree *t;
	struct cowfs_inode in;
	int err = snap_begin(m, snap, ino, &t, &in);
	if (!err)
		err = cowfs_symlink_target(t, &in, buf, bufsize, len);
	cowfs_vfs_unlock(m);
	return err;
}

/* Lock held: the first extent of ino ending after pos: *start, *end of it
 * (file bytes) and *dev, the device byte of its first block; *start =
 * UINT64_MAX when none does. */
static int snap_extent_after(struct cowfs_tree *t, uint64_t ino, uint64_t pos, uint64_t *start, uint64_t *end,
			     uint64_t *dev)
{
	struct cowfs_key k = cowfs_extent_scan_from(t, ino, pos & ~(uint64_t)(BS - 1));
	uint8_t item[CFS_EXTENT_ITEM_SIZE];
	uint32_t ilen;
	int err;
	*start = UINT64_MAX;
	while (!(err = cowfs_bt_next(t, &k, item, sizeof(item), &ilen)) && k.objectid == ino &&
	       k.type == CFS_ITEM_EXTENT) {
		uint64_t eend = k.offset + (uint64_t)cfs_get32(item + 8) * BS;
		if (ilen != CFS_EXTENT_ITEM_SIZE)
			return -PLAT_EIO;
		if (eend > pos) {
			*start = k.offset;
			*end = eend;
			*dev = cfs_get64(item) * BS;
			return 0;
		}
		k.offset++;
	}
	return err == -PLAT_ENOENT ? 0 : err;
}

/* Lock held: [off, off+n) of one extent (or zeros for a hole) into out. */
static int snap_read_piece(struct cowfs_mount *m, struct cowfs_tree *t, uint64_t ino, uint64_t off, uint8_t *out,
			   uint64_t n, uint8_t *blk, uint64_t *done)
{
	uint64_t pos = off & ~(uint64_t)(BS - 1), start, end = 0, dev = 0;
	int err = snap_extent_after(t, ino, pos, &start, &end, &dev);
	if (err)
		return err;
	if (start <= pos) {
		dev += pos - start;
		uint64_t want = end - pos < SNAP_READ_CHUNK ? end - pos : SNAP_READ_CHUNK;
		if ((err = plat_bdev_rw(m->bdev, PLAT_BIO_READ, dev, blk, want)) ||
		    (err = cowfs_csum_verify(m, ino, pos, dev, blk, want)))
			return err;
		uint64_t skip = off - pos, got = want - skip < n ? want - skip : n;
		plat_memcpy(out, blk + skip, got);
		*done = got;
		return 0;
	}
	uint64_t got = start - off < n ? start - off : n;   /* a hole up to the next extent */
	plat_memset(out, 0, got);
	*done = got;
	return 0;
}

int64_t cowfs_snap_read(struct cowfs_mount *m, uint64_t snap, uint64_t ino, uint64_t off, void *buf, uint64_t len)
{
	struct cowfs_tree *t;
	struct cowfs_inode in;
	uint8_t *blk = plat_alloc(SNAP_READ_CHUNK);
	if (!blk)
		return -PLAT_ENOMEM;
	int err = snap_begin(m, snap, ino, &t, &in);
	if (!err && !CFS_S_ISREG(in.mode))
		err = CFS_S_ISDIR(in.mode) ? -PLAT_EISDIR : -PLAT_EINVAL;
	uint64_t done = 0;
	if (len > CFS_SNAP_READ_MAX)
		len = CFS_SNAP_READ_MAX;
	if (!err && off < in.size)
		len = in.size - off < len ? in.size - off : len;
	else
		len = 0;
	while (!err && done < len) {
		uint64_t got = 0;
		err = snap_read_piece(m, t, ino, off + done, (uint8_t *)buf + done, len - done, blk, &got);
		done += got;
	}
	cowfs_vfs_unlock(m);
	plat_free(blk);
	return err ? err : (int64_t)done;
}

/* ---- extended attributes, seek, copy out ---- */

struct snap_copy {
	struct cowfs_mount *m;
	uint64_t snap;
};

int cowfs_snap_getxattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, const char *name, size_t len, void *buf,
			size_t cap, size_t *vlen)
{
	struct cowfs_tree *t;
	struct cowfs_inode in;
	if (len == 0 || len > CFS_XATTR_NAME_MAX)
		return -PLAT_ERANGE;    /* as cowfs_getxattr */
	int err = snap_begin(m, snap, ino, &t, &in);
	if (!err)
		err = cowfs_xattr_get(t, ino, name, len, buf, cap, vlen);
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_snap_listxattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, char *buf, size_t cap, size_t *total)
{
	struct cowfs_tree *t;
	struct cowfs_inode in;
	int err = snap_begin(m, snap, ino, &t, &in);
	if (!err)
		err = cowfs_xattr_list(t, ino, buf, cap, total);
	cowfs_vfs_unlock(m);
	return err;
}

/* A snapshot has no data in flight: its extents are the whole map. */
int cowfs_snap_seek(struct cowfs_mount *m, uint64_t snap, uint64_t ino, uint64_t off, int whence, uint64_t *result)
{
	struct cowfs_tree *t;
	struct cowfs_inode in;
	uint64_t start, end = 0, dev, pos = off;
	if (whence != CFS_SEEK_DATA && whence != CFS_SEEK_HOLE)
		return -PLAT_EINVAL;
	int err = snap_begin(m, snap, ino, &t, &in);
	if (!err && !CFS_S_ISREG(in.mode))
		err = CFS_S_ISDIR(in.mode) ? -PLAT_EISDIR : -PLAT_EINVAL;
	if (!err && off >= in.size)
		err = -PLAT_ENXIO;
	/* DATA: the first extent ending after off.  HOLE: follow extents
	 * while each starts at or before pos (the end of file is a hole). */
	while (!err && (err = snap_extent_after(t, ino, pos, &start, &end, &dev)) == 0) {
		if (whence == CFS_SEEK_DATA) {
			pos = start > pos ? start : pos;
			if (pos >= in.size)
				err = -PLAT_ENXIO;
			break;
		}
		if (start > pos || pos >= in.size)
			break;
		pos = end;
	}
	if (!err)
		*result = pos < in.size ? pos : in.size;
	cowfs_vfs_unlock(m);
	return err;
}

static int64_t snap_copy_read(void *arg, uint64_t ino, uint64_t off, void *buf, uint64_t len)
{
	const struct snap_copy *c = arg;
	return cowfs_snap_read(c->m, c->snap, ino, off, buf, len);
}

int64_t cowfs_snap_copy_range(struct cowfs_mount *m, uint64_t snap, uint64_t src_ino, uint64_t src_off,
			      uint64_t dst_ino, uint64_t dst_off, uint64_t len)
{
	struct snap_copy c = { m, snap };
	return cowfs_copy_bytes(m, snap_copy_read, &c, src_ino, src_off, dst_ino, dst_off, len);
}
