/*
 * Test scaffolding, not the filesystem: the smallest mount and inode cache
 * that keep the contract of fs/vfs_int.h, so the namespace (fs/namei.c,
 * fs/rename.c) is tested before the real fs/vfs.c is linked.  No data,
 * no background commit: cowfs_vfs_sync commits.  Evictions run at vput
 * (inodes without data need no page-cache work).
 */
#include <stdlib.h>
#include "fs/vfs_int.h"

static void vn_free_items(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_key k = { ino, CFS_ITEM_SYMLINK, 0 }, o = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, ino };
	cowfs_bt_delete(m->tree, &k);
	cowfs_inode_delete(m->tree, ino);
	cowfs_bt_delete(m->tree, &o);
}

void cowfs_vfs_lock(struct cowfs_mount *m) { plat_mutex_lock(m->lock); }
void cowfs_vfs_unlock(struct cowfs_mount *m) { plat_mutex_unlock(m->lock); }

struct cowfs_time cowfs_now(void)
{
	int64_t ns = plat_realtime_ns();
	return (struct cowfs_time){ (uint64_t)ns / 1000000000u, (uint32_t)((uint64_t)ns % 1000000000u) };
}

int cowfs_vget(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out)
{
	for (struct cowfs_vnode *v = m->vhash[0]; v; v = v->hnext)
		if (v->rec.ino == ino) {
			v->refs++;
			*out = v;
			return 0;
		}
	struct cowfs_vnode *v = calloc(1, sizeof(*v));
	int err = cowfs_inode_read(m->tree, ino, &v->rec);
	if (err) {
		free(v);
		return err;
	}
	v->m = m;
	v->refs = 1;
	v->hnext = m->vhash[0];
	m->vhash[0] = v;
	m->vnodes++;
	*out = v;
	return 0;
}

static void vn_drop(struct cowfs_vnode *vn)
{
	struct cowfs_mount *m = vn->m;
	if (vn->rec.nlink == 0)
		vn_free_items(m, vn->rec.ino);
	else if (vn->rec_dirty)
		cowfs_inode_write(m->tree, &vn->rec);
	for (struct cowfs_vnode **p = &m->vhash[0]; *p; p = &(*p)->hnext)
		if (*p == vn) {
			*p = vn->hnext;
			break;
		}
	m->vnodes--;
	free(vn);
}

void cowfs_vput(struct cowfs_vnode *vn)
{
	if (--vn->refs == 0 && vn->opens == 0)
		vn_drop(vn);
}

void cowfs_vdirty(struct cowfs_vnode *vn) { vn->rec_dirty = true; }

int cowfs_vfs_mount(struct plat_bdev *b, const struct cowfs_vfs_opts *o, struct cowfs_mount **out)
{
	struct cowfs_mount *m = calloc(1, sizeof(*m));
	int err = cowfs_mount(b, o ? &o->fs : NULL, &m->fs);
	if (err) {
		free(m);
		return err;
	}
	m->bdev = b;
	m->lock = plat_mutex_new("cowfs-stub");
	m->vhash = calloc(1, sizeof(*m->vhash));
	err = cowfs_tree_open(m->fs, CFS_TREE_FS, !m->fs->readonly, &m->tree);
	struct cowfs_inode root;
	if (!err && cowfs_inode_read(m->tree, CFS_ROOT_INO, &root) == -PLAT_ENOENT) {
		root = (struct cowfs_inode){ .ino = CFS_ROOT_INO, .mode = CFS_S_IFDIR | 0755, .nlink = 2 };
		root.mtime = root.ctime = root.atime = root.btime = cowfs_now();
		err = cowfs_inode_create(m->tree, &root);
	}
	if (!err && !m->fs->readonly)
		err = cowfs_orphans_cleanup(m, NULL);
	if (err) {
		cowfs_unmount(m->fs);
		plat_mutex_free(m->lock);
		free(m->vhash);
		free(m);
		return err;
	}
	*out = m;
	return 0;
}

static int write_back(struct cowfs_mount *m)
{
	for (struct cowfs_vnode *v = m->vhash[0]; v; v = v->hnext)
		if (v->rec_dirty) {
			int err = cowfs_inode_write(m->tree, &v->rec);
			if (err)
				return err;
			v->rec_dirty = false;
		}
	return 0;
}

int cowfs_vfs_sync(struct cowfs_mount *m)
{
	cowfs_vfs_lock(m);
	int err = cowfs_writable(m->fs);
	if (!err)
		err = write_back(m);
	if (!err)
		err = cowfs_commit(m->fs);
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_vfs_unmount(struct cowfs_mount *m)
{
	int err = m->fs->readonly ? 0 : write_back(m);
	while (m->vhash[0]) {
		m->vhash[0]->refs = 1;
		m->vhash[0]->opens = 0;
		cowfs_vput(m->vhash[0]);
	}
	int err2 = cowfs_unmount(m->fs);
	plat_mutex_free(m->lock);
	free(m->vhash);
	free(m);
	return err ? err : err2;
}

struct cowfs *cowfs_vfs_fs(struct cowfs_mount *m) { return m->fs; }

int cowfs_getattr(struct cowfs_mount *m, uint64_t ino, struct cowfs_inode *out)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		*out = vn->rec;
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_open(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		vn->opens++;
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
	return err;
}

void cowfs_release(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	if (!cowfs_vget(m, ino, &vn)) {
		vn->opens--;
		cowfs_vput(vn);
	}
	cowfs_vfs_unlock(m);
}
