/*
 * The filesystem in the appliance: the mount table (fs/kernel/mounts.c) and
 * path resolution (fs/kernel/path.c).
 *
 * A mounted filesystem is one disk, mounted at "/NAME" (one path component:
 * "/nvme0n1" by default, or the name config.txt's `mount` key gives).
 * Paths seen by the shell are absolute: "/nvme0n1/dir/file".  Boot mounts
 * what config.txt's `mount` says and formats blank disks only with
 * `format = blank` (fs/probe.h decides what is blank).  Shutdown commits
 * every mounted filesystem before the page cache and the disks are flushed.
 *
 * Locking: the table is changed only under fsk_lock (mount, umount); the
 * filesystem operations themselves are thread-safe (fs/vfs.h).  A lookup
 * holds a use count on its mount, so umount refuses (-EBUSY) while any
 * command is inside it.
 */
#ifndef FS_KERNEL_MOUNTS_H
#define FS_KERNEL_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "fs/vfs.h"

#define FSK_MAX_MOUNTS 16
#define FSK_PATH_MAX   1024

struct blk_dev;

struct fsk_mount {
	char name[64];               /* mount point without the '/' */
	char dev[32];
	struct blk_dev *blk;
	struct plat_bdev *bdev;
	struct cowfs_mount *m;
	bool readonly;
	int users;                   /* commands inside it (atomic) */
	uint64_t mounted_ns;         /* how long the mount took */
	int64_t scrub_unix_s;        /* last scrub's end (wall clock), 0 = never */
	uint64_t scrub_errors;       /* problems the last scrub found */
};

/* What boot and `mount` do with a disk.  FSK_FORMAT_BLANK formats a blank
 * disk (and nothing else); FSK_FORMAT_FORCE is `mkfs -f` (not over another
 * filesystem's signature or a partition table, only over data or cowfs). */
enum fsk_format { FSK_FORMAT_NEVER, FSK_FORMAT_BLANK, FSK_FORMAT_FORCE };

/* Mount dev at /name (name NULL = the device name).  Prints what it did
 * or why not, in one line.  0 or -errno. */
int fsk_mount(const char *dev, const char *name, enum fsk_format fmt, bool readonly);
/* Commit and unmount; -EBUSY while a command uses it. */
int fsk_umount(const char *name);
/* Make a filesystem on an unmounted disk (refusals as fsk_mount). */
int fsk_mkfs(const char *dev, bool force, const char *label);
/* Mounted filesystems in order; NULL past the last.  The pointer stays
 * valid while the caller holds a use (fsk_get) or the shell runs it. */
struct fsk_mount *fsk_at(unsigned i);
struct fsk_mount *fsk_by_dev(const char *dev);
void fsk_put(struct fsk_mount *fm);
/* A use of the first mount match() accepts (called under the table's
 * lock: it must not mount, unmount or sleep long), or NULL. */
struct fsk_mount *fsk_get_if(bool (*match)(struct fsk_mount *fm, void *arg), void *arg);
/* fn on every mount, under the table's lock (same rules as match). */
void fsk_each(void (*fn)(struct fsk_mount *fm, void *arg), void *arg);
/* Changes whenever a filesystem is mounted or unmounted. */
unsigned fsk_generation(void);

/* ---- path.c ----
 * fsk_resolve: the inode a path names (symlinks followed, up to 8, except
 * in the last component when nofollow).  fsk_resolve_parent: the
 * directory holding the last component and that component (it need not
 * exist).  Both take a use on the mount: fsk_put() when done.  Errors:
 * -ENOENT, -ENOTDIR, -ELOOP, -ENAMETOOLONG, -EINVAL ("/" alone, ".." of a
 * mount's root: mounts are not inside one another). */
struct fsk_path {
	struct fsk_mount *fm;
	uint64_t ino;                /* fsk_resolve: the inode; parent: the directory */
	struct cowfs_inode attr;
	char name[CFS_NAME_MAX + 1]; /* parent: the last component */
	size_t namelen;
};
int fsk_resolve(const char *path, bool nofollow, struct fsk_path *out);
int fsk_resolve_parent(const char *path, struct fsk_path *out);
/* "message naming the path" helper: prints "CMD: PATH: reason" and
 * returns 1 (a shell command's failure status). */
int fsk_fail(const char *cmd, const char *path, int err);

#endif
