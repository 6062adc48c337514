/*
 * Online check of a mounted filesystem (fsck on a live system): everything
 * written so far is committed first, so the check sees the state the next
 * mount would find; the filesystem lock keeps changes out while it runs.
 */
#include "fs/vfs_int.h"

int cowfs_vfs_check(struct cowfs_mount *m, char *msg, size_t msglen)
{
	int err = cowfs_vfs_sync(m);
	if (err) {
		plat_snprintf(msg, msglen, "the commit before the check failed: %s", plat_strerror(err));
		return err;
	}
	cowfs_vfs_lock(m);
	err = cowfs_check(m->fs, msg, msglen);
	if (!err)
		err = cowfs_check_dirs(m->tree, msg, msglen);
	cowfs_vfs_unlock(m);
	return err;
}
