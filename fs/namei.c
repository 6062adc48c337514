/*
 * The namespace of a mounted cowfs (fs/vfs.h): lookup, create, mkdir,
 * symlink, readlink, link, unlink, rmdir, readdir, setattr, orphans.
 * Rename is in rename.c.
 *
 * Each operation holds the filesystem lock from its first check to its
 * last change, so it is one step of one transaction: the background commit
 * (which takes the same lock) sees all of it or none of it, and a power
 * cut leaves the old or the new namespace.  Every check that can refuse
 * the operation runs before the first change; a failure after it (ENOSPC,
 * EIO) makes the filesystem read-only so the half-done step is never
 * committed (cowfs_half_done).
 *
 * Link counts: a file has one per name; a directory has 2 (its name and
 * its ".") plus one per subdirectory (their ".."), as in POSIX.  An inode
 * whose count reaches 0 gets an ORPHAN item; the inode cache frees it when
 * it is neither referenced nor open, and the next mount frees the ones a
 * crash left (cowfs_orphans_cleanup).
 */
#include "fs/namei_int.h"
#include "fs/file.h"

/* ---- helpers ---- */

uint8_t cowfs_dtype(uint32_t mode)
{
	switch (mode & CFS_S_IFMT) {
	case CFS_S_IFREG: return CFS_DT_REG;
	case CFS_S_IFDIR: return CFS_DT_DIR;
	case CFS_S_IFLNK: return CFS_DT_LNK;
	case CFS_S_IFIFO: return CFS_DT_FIFO;
	case CFS_S_IFCHR: return CFS_DT_CHR;
	case CFS_S_IFBLK: return CFS_DT_BLK;
	case CFS_S_IFSOCK: return CFS_DT_SOCK;
	default: return CFS_DT_UNKNOWN;
	}
}

int cowfs_get_dir(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out)
{
	int err = cowfs_vget(m, ino, out);
	if (err)
		return err;
	if (!CFS_S_ISDIR((*out)->rec.mode)) {
		cowfs_vput(*out);
		return -PLAT_ENOTDIR;
	}
	return 0;
}

int cowfs_dir_parent(struct cowfs_tree *t, uint64_t ino, uint64_t *parent)
{
	if (ino == CFS_ROOT_INO) {
		*parent = ino;
		return 0;
	}
	struct cowfs_key k = { ino, CFS_ITEM_INODE_REF, 0 };
	int err = cowfs_bt_next(t, &k, NULL, 0, NULL);
	if (err && err != -PLAT_ENOENT)
		return err;
	if (err || k.objectid != ino || k.type != CFS_ITEM_INODE_REF)
		return -PLAT_ENOENT;   /* removed (rmdir) while still referenced */
	*parent = k.offset;
	return 0;
}

int cowfs_name_add(struct cowfs_vnode *dir, const char *name, size_t len, uint64_t ino, uint32_t mode)
{
	struct cowfs_tree *t = dir->m->tree;
	struct cowfs_inode d;
	if (!t->watch)
		dir->m->ns_gen = dir->m->fs->gen;   /* a change the log does not see: fsync commits */
	int err = cowfs_inode_write(t, &dir->rec);
	if (!err)
		err = cowfs_dir_add(t, dir->rec.ino, name, len, ino, cowfs_dtype(mode));
	if (!err)
		err = cowfs_inode_read(t, dir->rec.ino, &d);
	if (!err)
		dir->rec.next_dir_seq = d.next_dir_seq;
	return err;
}

int cowfs_name_remove(struct cowfs_vnode *dir, const char *name, size_t len)
{
	if (!dir->m->tree->watch)
		dir->m->ns_gen = dir->m->fs->gen;
	return cowfs_dir_remove(dir->m->tree, dir->rec.ino, name, len);
}

int cowfs_orphan_add(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, ino };
	int err = cowfs_bt_insert(m->tree, &k, NULL, 0);
	return err == -PLAT_EEXIST ? 0 : err;
}

void cowfs_touch(struct cowfs_vnode *vn, bool modify)
{
	struct cowfs_time now = cowfs_now();
	vn->rec.ctime = now;
	if (modify)
		vn->rec.mtime = now;
	cowfs_vdirty(vn);
}

/* Seconds are two's complement on disk (docs/format.md §6). */
static bool time_le(struct cowfs_time a, struct cowfs_time b)
{
	return (int64_t)a.sec < (int64_t)b.sec || (a.sec == b.sec && a.nsec <= b.nsec);
}

/*
 * relatime: a read moves atime only when atime is not after the last
 * modification or change, or is a day old.  So "was it read since it
 * changed" stays answerable while a file read over and over costs one
 * inode update per change (a metadata write in a copy-on-write tree),
 * not one per read.  Read-only mounts and snapshots never move it.
 */
bool cowfs_atime_due(const struct cowfs_inode *in, struct cowfs_time now)
{
	return time_le(in->atime, in->mtime) || time_le(in->atime, in->ctime) ||
	       (int64_t)now.sec >= (int64_t)in->atime.sec + 86400;
}

void cowfs_accessed(struct cowfs_mount *m, struct cowfs_vnode *vn)
{
	struct cowfs_time now = cowfs_now();
	if (cowfs_writable(m->fs) || !cowfs_atime_due(&vn->rec, now))
		return;
	vn->rec.atime = now;
	cowfs_vdirty(vn);
}

int cowfs_half_done(struct cowfs_mount *m, int err, const char *op)
{
	cowfs_fail(m->fs, err, "%s failed half-way: not committed, filesystem read-only", op);
	return err;
}

int cowfs_drop_link(struct cowfs_mount *m, struct cowfs_vnode *vn)
{
	if (CFS_S_ISDIR(vn->rec.mode))
		vn->rec.nlink = 0;
	else if (vn->rec.nlink)
		vn->rec.nlink--;
	cowfs_touch(vn, false);
	return vn->rec.nlink ? 0 : cowfs_orphan_add(m, vn->rec.ino);
}

/* The start of a change in directory `dir` (m->lock held): the name may
 * be stored, the filesystem is writable, dir is a directory. */
static int change_begin(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, struct cowfs_vnode **d)
{
	int err = cowfs_name_valid(name, len);
	if (!err)
		err = cowfs_writable(m->fs);
	return err ? err : cowfs_get_dir(m, dir, d);
}

/* ---- lookup ---- */

int cowfs_lookup(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, struct cowfs_inode *out)
{
	struct cowfs_vnode *d, *vn;
	uint64_t ino;
	int err;
	cowfs_vfs_lock(m);
	if ((err = cowfs_get_dir(m, dir, &d)))
		goto out;
	if (len == 1 && name[0] == '.')
		ino = dir;
	else if (len == 2 && name[0] == '.' && name[1] == '.')
		err = cowfs_dir_parent(m->tree, dir, &ino);
	else if (!(err = cowfs_name_valid(name, len)))
		err = cowfs_dir_lookup(m->tree, dir, name, len, &ino, NULL);
	cowfs_vput(d);
	if (err)
		goto out;
	if ((err = cowfs_vget(m, ino, &vn)))
		goto out;
	if (out) {
		*out = vn->rec;
		cowfs_file_attr(vn, out);
	}
	cowfs_vput(vn);
out:
	cowfs_vfs_unlock(m);
	return err;
}

/* ---- new inodes ---- */

/* A new inode named `name` in directory d (checked free by the caller's
 * lookup).  On success *out is referenced.  extra: an item that belongs
 * to the inode from birth (a symlink's target), or NULL. */
static int make_node(struct cowfs_mount *m, struct cowfs_vnode *d, const char *name, size_t len, uint32_t mode,
		     uint64_t rdev, uint32_t uid, uint32_t gid, const void *extra, size_t extra_len,
		     struct cowfs_vnode **out)
{
	struct cowfs_inode in = { 0 };
	struct cowfs_time now = cowfs_now();
	/* BSD group semantics below a set-group-ID directory: the new inode
	 * takes the directory's group, a new directory inherits the bit. */
	if (d->rec.mode & CFS_S_ISGID) {
		gid = d->rec.gid;
		if (CFS_S_ISDIR(mode))
			mode |= CFS_S_ISGID;
	}
	in.mode = mode;
	in.uid = uid;
	in.gid = gid;
	in.rdev = rdev;
	in.nlink = CFS_S_ISDIR(mode) ? 2 : 1;
	in.size = extra ? extra_len : 0;
	in.atime = in.mtime = in.ctime = in.btime = now;
	in.gen = m->fs->gen;
	int err = cowfs_dir_lookup(m->tree, d->rec.ino, name, len, NULL, NULL);
	if (!err)
		return -PLAT_EEXIST;
	if (err != -PLAT_ENOENT)
		return err;
	if (CFS_S_ISDIR(mode) && d->rec.nlink >= CFS_LINK_MAX)
		return -PLAT_EMLINK;
	if ((err = cowfs_inode_create(m->tree, &in)))
		return err;   /* refused before any change, or failed the tree */
	if (extra) {
		struct cowfs_key k = { in.ino, CFS_ITEM_SYMLINK, 0 };
		if ((err = cowfs_bt_insert(m->tree, &k, extra, (uint32_t)extra_len)))
			return cowfs_half_done(m, err, "symlink");
	}
	if ((err = cowfs_name_add(d, name, len, in.ino, mode)))
		return cowfs_half_done(m, err, "create");
	if (CFS_S_ISDIR(mode))
		d->rec.nlink++;
	cowfs_touch(d, true);
	if ((err = cowfs_vget(m, in.ino, out)))
		return cowfs_half_done(m, err, "create");
	return 0;
}

static int create_common(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode,
			 uint64_t rdev, uint32_t uid, uint32_t gid, const void *extra, size_t extra_len,
			 struct cowfs_inode *out)
{
	struct cowfs_vnode *d, *vn;
	cowfs_vfs_lock(m);
	int err = change_begin(m, dir, name, len, &d);
	if (err)
		goto out;
	if (d->rec.nlink == 0)
		err = -PLAT_ENOENT;   /* removed directory */
	else {
		cowfs_ns_begin(m);
		err = make_node(m, d, name, len, mode, rdev, uid, gid, extra, extra_len, &vn);
		cowfs_ns_end(m);
	}
	cowfs_vput(d);
	if (!err) {
		if (out) {
			*out = vn->rec;
			cowfs_file_attr(vn, out);
		}
		cowfs_vput(vn);
	}
out:
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_create(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint32_t uid,
		 uint32_t gid, struct cowfs_inode *out)
{
	return create_common(m, dir, name, len, CFS_S_IFREG | (mode & 07777), 0, uid, gid, NULL, 0, out);
}

int cowfs_mkdir(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint32_t uid,
		uint32_t gid, struct cowfs_inode *out)
{
	return create_common(m, dir, name, len, CFS_S_IFDIR | (mode & 07777), 0, uid, gid, NULL, 0, out);
}

int cowfs_mknod(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint64_t rdev,
		uint32_t uid, uint32_t gid, struct cowfs_inode *out)
{
	if (!CFS_S_ISSPECIAL(mode))
		return -PLAT_EINVAL;
	if ((mode & CFS_S_IFMT) != CFS_S_IFCHR && (mode & CFS_S_IFMT) != CFS_S_IFBLK)
		rdev = 0;
	return create_common(m, dir, name, len, (mode & CFS_S_IFMT) | (mode & 07777), rdev, uid, gid, NULL, 0, out);
}

/* A symlink's target is one SYMLINK item (docs/format.md §6): at most a
 * page (PATH_MAX) and at most what fits in an item. */
static size_t symlink_max(struct cowfs_mount *m)
{
	size_t max = cowfs_max_item_size(m->fs);
	return max < 4095 ? max : 4095;
}

int cowfs_symlink(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, const char *target,
		  size_t tlen, uint32_t uid, uint32_t gid, struct cowfs_inode *out)
{
	if (tlen == 0)
		return -PLAT_ENOENT;
	if (tlen > symlink_max(m))
		return -PLAT_ENAMETOOLONG;
	return create_common(m, dir, name, len, CFS_S_IFLNK | 0777, 0, uid, gid, target, tlen, out);
}

int cowfs_symlink_target(struct cowfs_tree *t, const struct cowfs_inode *in, char *buf, size_t bufsize, size_t *len)
{
	if (!CFS_S_ISLNK(in->mode))
		return -PLAT_EINVAL;
	struct cowfs_key k = { in->ino, CFS_ITEM_SYMLINK, 0 };
	uint32_t cap = bufsize > UINT32_MAX ? UINT32_MAX : (uint32_t)bufsize, n = 0;
	int err = cowfs_bt_lookup(t, &k, buf, cap, &n);
	if (err == -PLAT_ENOENT) {
		plat_log(PLAT_LOG_ERR, "cowfs: symlink %llu has no target item", (unsigned long long)in->ino);
		err = -PLAT_EIO;
	}
	if (!err && len)
		*len = n;
	return err;
}

int cowfs_readlink(struct cowfs_mount *m, uint64_t ino, char *buf, size_t bufsize, size_t *len)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		err = cowfs_symlink_target(m->tree, &vn->rec, buf, bufsize, len);
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

/* ---- link, unlink, rmdir ---- */

int cowfs_link(struct cowfs_mount *m, uint64_t ino, uint64_t newdir, const char *name, size_t len,
	       struct cowfs_inode *out)
{
	struct cowfs_vnode *d, *vn;
	cowfs_vfs_lock(m);
	int err = change_begin(m, newdir, name, len, &d);
	if (err)
		goto out;
	if ((err = cowfs_vget(m, ino, &vn)))
		goto put_d;
	if (CFS_S_ISDIR(vn->rec.mode))
		err = -PLAT_EPERM;
	else if (vn->rec.nlink == 0 || d->rec.nlink == 0)
		err = -PLAT_ENOENT;
	else if (vn->rec.nlink >= CFS_LINK_MAX)
		err = -PLAT_EMLINK;
	else if (!(err = cowfs_dir_lookup(m->tree, newdir, name, len, NULL, NULL)))
		err = -PLAT_EEXIST;
	else if (err == -PLAT_ENOENT) {
		cowfs_ns_begin(m);
		err = cowfs_name_add(d, name, len, ino, vn->rec.mode);   /* first change: refusals change nothing */
	}
	if (!err) {
		vn->rec.nlink++;
		cowfs_touch(vn, false);
		cowfs_touch(d, true);
	}
	cowfs_ns_end(m);
	if (!err && out) {
		*out = vn->rec;
		cowfs_file_attr(vn, out);
	}
	cowfs_vput(vn);
put_d:
	cowfs_vput(d);
out:
	cowfs_vfs_unlock(m);
	return err;
}

static int remove_common(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, bool want_dir)
{
	struct cowfs_vnode *d, *vn;
	uint64_t ino;
	cowfs_vfs_lock(m);
	int err = change_begin(m, dir, name, len, &d);
	if (err)
		goto out;
	if ((err = cowfs_dir_lookup(m->tree, dir, name, len, &ino, NULL)))
		goto put_d;
	if ((err = cowfs_vget(m, ino, &vn)))
		goto put_d;
	bool is_dir = CFS_S_ISDIR(vn->rec.mode);
	if (want_dir && !is_dir)
		err = -PLAT_ENOTDIR;
	else if (!want_dir && is_dir)
		err = -PLAT_EISDIR;
	else if (is_dir && (err = cowfs_dir_empty(m->tree, ino)) >= 0)
		err = err ? 0 : -PLAT_ENOTEMPTY;
	if (err)
		goto put_vn;
	cowfs_ns_begin(m);
	if ((err = cowfs_name_remove(d, name, len)))
		goto end;   /* the first change: a refusal changed nothing */
	if ((err = cowfs_drop_link(m, vn))) {
		cowfs_half_done(m, err, want_dir ? "rmdir" : "unlink");
		goto end;
	}
	if (is_dir)
		d->rec.nlink--;
	cowfs_touch(d, true);
end:
	cowfs_ns_end(m);
put_vn:
	cowfs_vput(vn);
put_d:
	cowfs_vput(d);
out:
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_unlink(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len)
{
	return remove_common(m, dir, name, len, false);
}

int cowfs_rmdir(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len)
{
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return -PLAT_ENOTEMPTY;
	return remove_common(m, dir, name, len, true);
}

/* ---- readdir ---- */

int cowfs_readdir(struct cowfs_mount *m, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb, void *arg)
{
	struct cowfs_vnode *d;
	uint64_t parent;
	int r;
	cowfs_vfs_lock(m);
	int err = cowfs_get_dir(m, dir, &d);
	if (err)
		goto out;
	if (d->rec.nlink == 0)
		goto put;   /* removed: empty, not even "." and ".." */
	if (cookie == 0 && (r = cb(arg, ".", 1, dir, CFS_DT_DIR, 1)))
		goto put;
	if (cookie <= 1) {
		if ((err = cowfs_dir_parent(m->tree, dir, &parent)))
			goto put;
		if ((r = cb(arg, "..", 2, parent, CFS_DT_DIR, CFS_FIRST_DIR_SEQ)))
			goto put;
	}
	err = cowfs_dir_readdir(m->tree, dir, cookie < CFS_FIRST_DIR_SEQ ? CFS_FIRST_DIR_SEQ : cookie, cb, arg);
	if (!err && cookie <= CFS_FIRST_DIR_SEQ)     /* a listing from its start */
		cowfs_accessed(m, d);
put:
	cowfs_vput(d);
out:
	cowfs_vfs_unlock(m);
	return err;
}

/* ---- attributes ---- */

int cowfs_setattr(struct cowfs_mount *m, uint64_t ino, const struct cowfs_setattr *sa, struct cowfs_inode *out)
{
	struct cowfs_vnode *vn;
	struct cowfs_time now = cowfs_now();
	int err = cowfs_writable(m->fs);
	/* The size first, without the lock (it truncates the page cache);
	 * it sets mtime and ctime itself. */
	if (!err && (sa->valid & CFS_SET_SIZE))
		err = cowfs_file_setsize(m, ino, sa->size);
	if (err)
		return err;
	cowfs_vfs_lock(m);
	if ((err = cowfs_vget(m, ino, &vn)))
		goto out;
	if (sa->valid & CFS_SET_MODE)
		vn->rec.mode = (vn->rec.mode & CFS_S_IFMT) | (sa->mode & 07777);
	if (sa->valid & CFS_SET_UID)
		vn->rec.uid = sa->uid;
	if (sa->valid & CFS_SET_GID)
		vn->rec.gid = sa->gid;
	if (sa->valid & CFS_SET_ATIME_NOW)
		vn->rec.atime = now;
	else if (sa->valid & CFS_SET_ATIME)
		vn->rec.atime = sa->atime;
	if (sa->valid & CFS_SET_MTIME_NOW)
		vn->rec.mtime = now;
	else if (sa->valid & CFS_SET_MTIME)
		vn->rec.mtime = sa->mtime;
	vn->rec.ctime = now;
	cowfs_vdirty(vn);
	if (out) {
		*out = vn->rec;
		cowfs_file_attr(vn, out);
	}
	cowfs_vput(vn);
out:
	cowfs_vfs_unlock(m);
	return err;
}

/* ---- orphans ---- */

struct orphan_list {
	uint64_t ino[64];
	unsigned n;
};

static int orphan_collect(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct orphan_list *l = arg;
	(void)data;
	(void)len;
	l->ino[l->n++] = k->offset;
	return l->n == 64 ? 1 : 0;
}

int cowfs_orphans_cleanup(struct cowfs_mount *m, uint64_t *freed)
{
	struct orphan_list l;
	uint64_t from = 0, count = 0;
	int err = 0;
	cowfs_vfs_lock(m);
	for (;;) {
		struct cowfs_key lo = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, from };
		struct cowfs_key hi = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, UINT64_MAX };
		l.n = 0;
		int r = cowfs_bt_iterate(m->tree, &lo, &hi, orphan_collect, &l);
		if (r < 0) {
			err = r;
			break;
		}
		for (unsigned i = 0; i < l.n && !err; i++) {
			struct cowfs_vnode *vn;
			err = cowfs_vget(m, l.ino[i], &vn);
			if (err == -PLAT_ENOENT) {
				/* The inode went but its ORPHAN item stayed: drop it. */
				struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, l.ino[i] };
				err = cowfs_bt_delete(m->tree, &k);
				continue;
			}
			if (err)
				break;
			if (vn->rec.nlink) {
				plat_log(PLAT_LOG_WARN, "cowfs: orphan %llu still has %u links: kept",
					 (unsigned long long)l.ino[i], vn->rec.nlink);
				struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, l.ino[i] };
				err = cowfs_bt_delete(m->tree, &k);
			} else {
				count++;
			}
			cowfs_vput(vn);   /* nlink 0, unreferenced: evicted (data, inode, orphan item) */
		}
		if (err || l.n < 64)
			break;
		from = l.ino[l.n - 1] + 1;
	}
	cowfs_vfs_unlock(m);
	if (freed)
		*freed = count;
	return err;
}
