/*
 * Online check and scrub of a mounted filesystem: everything written so far
 * is committed first, so they see the state the next mount would find; the
 * filesystem lock keeps changes out while they run.
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

int cowfs_vfs_scrub(struct cowfs_mount *m, struct cowfs_scrub_stats *st, cowfs_report_fn report,
		    cowfs_progress_fn progress, void *arg)
{
	int err = cowfs_vfs_sync(m);
	if (err)
		return err;
	cowfs_vfs_lock(m);
	err = cowfs_scrub(m->fs, st, report, progress, arg);
	cowfs_vfs_unlock(m);
	return err;
}
