/*
 * Helpers shared by the namespace operations (fs/namei.c, fs/rename.c)
 * and the snapshot reads (fs/snap_read.c).  All are called with m->lock
 * held.
 */
#ifndef FS_NAMEI_INT_H
#define FS_NAMEI_INT_H

#include "fs/vfs_int.h"

/* Largest link count of one inode (EMLINK beyond). */
#define CFS_LINK_MAX 65000u

/* A referenced vnode that must be a directory (-ENOTDIR otherwise). */
int cowfs_get_dir(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out);
/* The directory holding directory ino (its INODE_REF back-reference);
 * the root is its own parent.  -ENOENT for a removed directory. */
int cowfs_dir_parent(struct cowfs_tree *t, uint64_t ino, uint64_t *parent);
/* The target of symlink `in` of tree t: at most bufsize bytes into buf,
 * *len (may be NULL) = its length; -EINVAL when in is no symlink. */
int cowfs_symlink_target(struct cowfs_tree *t, const struct cowfs_inode *in, char *buf, size_t bufsize, size_t *len);
/* Name changes through the cached directory: dir.c reads and writes the
 * directory's inode item (next_dir_seq), so the cached record goes to the
 * tree first and the new sequence comes back. */
int cowfs_name_add(struct cowfs_vnode *dir, const char *name, size_t len, uint64_t ino, uint32_t mode);
int cowfs_name_remove(struct cowfs_vnode *dir, const char *name, size_t len);
/* The inode lost its last name: an ORPHAN item records it until its
 * data and inode item are freed (docs/format.md §6). */
int cowfs_orphan_add(struct cowfs_mount *m, uint64_t ino);
/* A name of vn went: count it down (a directory to 0), ctime, and
 * record the orphan at 0. */
int cowfs_drop_link(struct cowfs_mount *m, struct cowfs_vnode *vn);
/* ctime (and mtime when `modify`) = now, record dirty. */
void cowfs_touch(struct cowfs_vnode *vn, bool modify);
/* A read of vn's data or names (m->lock held): atime moves as Linux's
 * relatime moves it. */
void cowfs_accessed(struct cowfs_mount *m, struct cowfs_vnode *vn);
bool cowfs_atime_due(const struct cowfs_inode *in, struct cowfs_time now);
/* A failure after the first tree change of an operation: the running
 * transaction holds half an operation, so the filesystem goes read-only
 * and the last commit (old state) stays. */
int cowfs_half_done(struct cowfs_mount *m, int err, const char *op);
uint8_t cowfs_dtype(uint32_t mode);

#endif
