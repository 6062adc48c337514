/*
 * Snapshots of a mounted filesystem's subvolume: the tree-level snapshots
 * of fs/snapshot.c, made consistent with what users wrote.  The sync first
 * puts every written byte and changed inode into the tree; the snapshot is
 * then taken under the filesystem lock and committed at once, so it is
 * durable when the call returns.
 */
#include "fs/vfs_int.h"

int cowfs_snapshot(struct cowfs_mount *m, const char *name, size_t len, bool readonly)
{
	uint64_t id;
	int err = cowfs_vfs_sync(m);
	if (err)
		return err;
	cowfs_vfs_lock(m);
	err = cowfs_snapshot_named(m->fs, m->tree->id, name, len, readonly, &id);
	if (!err)
		err = cowfs_commit(m->fs);
	cowfs_vfs_unlock(m);
	return err;
}

int cowfs_snapshot_remove(struct cowfs_mount *m, const char *name, size_t len)
{
	cowfs_vfs_lock(m);
	int err = cowfs_snapshot_delete_named(m->fs, m->tree->id, name, len);
	if (!err)
		err = cowfs_commit(m->fs);
	cowfs_vfs_unlock(m);
	return err;
}

struct snap_filter {
	uint64_t parent;
	cowfs_subvol_fn cb;
	void *arg;
};

static int snap_filter_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct snap_filter *f = arg;
	return si->parent == f->parent ? f->cb(f->arg, si) : 0;
}

int cowfs_snapshot_list(struct cowfs_mount *m, cowfs_subvol_fn cb, void *arg)
{
	struct snap_filter f = { m->tree->id, cb, arg };
	cowfs_vfs_lock(m);
	int err = cowfs_subvol_list(m->fs, snap_filter_cb, &f);
	cowfs_vfs_unlock(m);
	return err;
}
