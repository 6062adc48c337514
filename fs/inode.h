/*
 * cowfs inodes and directories in a subvolume tree (docs/format.md §6:
 * INODE, INODE_REF, DIR_ENTRY, DIR_INDEX).
 *
 * This layer stores names and inode records; POSIX semantics (link counts,
 * timestamps, permission checks, rename atomicity across several calls)
 * belong to the caller, which also supplies wall-clock times: the
 * platform has only a monotonic clock.  Every call is one or more tree
 * changes in the running transaction; the caller commits.
 *
 * Names: 1..255 bytes, no '/' and no NUL (-EINVAL / -ENAMETOOLONG).
 * Readdir cookies: an entry's dir_seq is taken from the directory's
 * next_dir_seq (starting at 2; 0 and 1 are left for "." and "..") and is
 * never reused, so a cookie stays valid across inserts and deletes.
 */
#ifndef FS_INODE_H
#define FS_INODE_H

#include "fs/cowfs.h"

#define CFS_ROOT_INO       256ull
#define CFS_FIRST_DIR_SEQ  2ull
#define CFS_NAME_MAX       255u
#define CFS_INODE_ITEM_SIZE 112u

struct cowfs_time {
	uint64_t sec;
	uint32_t nsec;
};

struct cowfs_inode {
	uint64_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t size, blocks;
	struct cowfs_time atime, mtime, ctime, btime;
	uint64_t flags, gen, rdev, next_dir_seq;
};

/* Directory entry types (as d_type). */
enum { CFS_DT_UNKNOWN = 0, CFS_DT_FIFO = 1, CFS_DT_CHR = 2, CFS_DT_DIR = 4, CFS_DT_BLK = 6, CFS_DT_REG = 8,
       CFS_DT_LNK = 10, CFS_DT_SOCK = 12 };

void cowfs_inode_encode(const struct cowfs_inode *in, uint8_t *buf);
void cowfs_inode_decode(const uint8_t *buf, struct cowfs_inode *in);

int cowfs_inode_read(struct cowfs_tree *t, uint64_t ino, struct cowfs_inode *out);
/* Rewrite an existing inode's item. */
int cowfs_inode_write(struct cowfs_tree *t, const struct cowfs_inode *in);
/* A new inode: in->ino = the next free number (above every inode in the
 * tree; in->ino preset to CFS_ROOT_INO creates the root directory). */
int cowfs_inode_create(struct cowfs_tree *t, struct cowfs_inode *in);
int cowfs_inode_delete(struct cowfs_tree *t, uint64_t ino);

uint64_t cowfs_name_hash(const char *name, size_t len);
/* 0 when name may be stored: 1..CFS_NAME_MAX bytes (-ENAMETOOLONG), no
 * '/' or NUL, not "." or ".." (-EINVAL). */
int cowfs_name_valid(const char *name, size_t len);
int cowfs_dir_lookup(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t *ino,
		     uint8_t *type);
/* Add name -> ino in dir: -EEXIST when the name is taken; -EMLINK when an
 * item (hash collisions, links of one inode in one directory) is full. */
int cowfs_dir_add(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len, uint64_t ino, uint8_t type);
int cowfs_dir_remove(struct cowfs_tree *t, uint64_t dir, const char *name, size_t len);
/* Entries with cookie >= `cookie` in creation order; cb gets each entry
 * and the cookie that resumes after it; cb returns non-zero to stop. */
typedef int (*cowfs_readdir_fn)(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type,
				uint64_t next_cookie);
int cowfs_dir_readdir(struct cowfs_tree *t, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb, void *arg);
/* fs/check_ns.c: the namespace rules of docs/format.md §6 (link counts,
 * one name and a path to the root per directory, orphans, symlink
 * targets).  0 when they hold; -EIO with every problem found (as many as
 * fit) in msg and their number in *problems (may be NULL). */
int cowfs_check_namespace(struct cowfs_tree *t, char *msg, size_t msglen, uint64_t *problems);
/* fsck --repair: link counts from the names, ORPHAN items to match (in
 * the running transaction: the caller commits).  Each fix is reported in
 * words; *fixed counts them.  Two names of a directory or a loop of ".."
 * are not repaired (the check still reports them). */
int cowfs_repair_namespace(struct cowfs_tree *t, cowfs_report_fn report, void *arg, unsigned *fixed);
/* Whether dir has no entries (rmdir). */
int cowfs_dir_empty(struct cowfs_tree *t, uint64_t dir);

#endif
