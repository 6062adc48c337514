/*
 * cowfs mount internals shared by fs/vfs.c (mount, inode cache, commits),
 * fs/file*.c (data path) and fs/namei.c (namespace).  Not for users of the
 * filesystem: they see fs/vfs.h only.
 *
 * The filesystem lock (m->lock) serialises every change to the trees and
 * the inode cache.  Namespace operations hold it for the whole operation,
 * so each is one step of one transaction.  It is never held while waiting
 * for a folio lock, page-cache writeback or a direct I/O: the iomap hooks
 * take it as a leaf lock around their tree work only.  Work that must touch
 * the page cache on behalf of a namespace operation (freeing the data of an
 * inode whose last name and last open are gone) is queued while the lock is
 * held and done by cowfs_vfs_unlock() after the lock is released.
 */
#ifndef FS_VFS_INT_H
#define FS_VFS_INT_H

#include "fs/vfs.h"
#include "fs/cowfs_int.h"
#include "iomap/iomap.h"

/* An in-memory inode.  rec is authoritative while the vnode is cached;
 * rec_dirty says it must be written to the tree (at the latest by the
 * next commit).  refs and opens are changed under m->lock. */
struct cowfs_vnode {
	struct iomap_inode io;           /* the data path's view; io.ino = rec.ino */
	struct cowfs_mount *m;
	struct cowfs_inode rec;
	uint32_t refs;                   /* cowfs_vget references */
	uint32_t opens;                  /* cowfs_open without cowfs_release */
	bool rec_dirty;
	bool doomed;                     /* nlink 0: data freed at last put/release */
	struct cowfs_fdata *fd;          /* the data path's state (fs/file.c), NULL until first data use */
	struct cowfs_vnode *hnext;       /* inode cache hash chain */
	struct cowfs_vnode *evict_next;  /* deferred eviction list */
	/* fsync's intent log (fs/file_log.c): [log_lo, log_hi) bytes
	 * remapped since the last log of this file, valid while
	 * log_range_gen is the running transaction; nolog_gen: the
	 * transaction removed extents (truncate), which is not logged. */
	uint64_t log_lo, log_hi, log_range_gen, nolog_gen;
};

struct cowfs_mount {
	struct cowfs *fs;
	struct cowfs_tree *tree;         /* the default subvolume */
	struct plat_bdev *bdev;
	struct pcache *pc;
	struct iomap_workq *wq;
	struct iomap_workq *ra_wq;       /* asynchronous readahead of sequential readers */
	bool own_pc, own_wq;
	struct plat_mutex *lock;
	struct cowfs_vnode **vhash;
	uint64_t vhash_mask, vnodes;
	struct cowfs_vnode *evict_list;
	/* Background work (vfs.c): commits every interval_ms, the
	 * background delete of snapshots. */
	struct plat_thread *worker;
	struct plat_waitq *worker_wq;
	bool stopping, kick;
	unsigned interval_ms;
	uint64_t reserved_blocks;        /* delalloc reservations (fs/file.c), under lock */
	uint64_t inflight_blocks;        /* taken for writes in flight, not yet claimed */
	struct cowfs_tree *csum_tree;    /* data checksums (fs/csum.c), opened on first use */
	uint64_t csum_errors;            /* data blocks that failed verification, under lock */
	uint64_t ns_gen;                 /* the last transaction with a name change the log cannot carry (fsync commits) */
	struct cowfs_keyset ns_keys;     /* keys namespace operations changed since the last log (fs/file_log.c) */
	uint64_t ns_keys_gen;            /* the transaction ns_keys belongs to */
	bool fsync_log;                  /* fsync may use the intent log (cowfs_vfs_opts.no_fsync_log) */
	uint64_t fsync_logged, fsync_commits;   /* how fsyncs went, under lock */
};

/* Every dirty inode record into the tree, then commit (lock held). */
int cowfs_vfs_commit_locked(struct cowfs_mount *m);

void cowfs_vfs_lock(struct cowfs_mount *m);
/* Releases m->lock, then runs the deferred evictions. */
void cowfs_vfs_unlock(struct cowfs_mount *m);

/* With m->lock held.  A referenced vnode for ino (read from the tree on a
 * miss): -ENOENT when the inode does not exist. */
int cowfs_vget(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out);
/* Drops a reference; an unreferenced, unopened vnode with nlink 0 is
 * queued for eviction (its data and inode item freed after unlock). */
void cowfs_vput(struct cowfs_vnode *vn);
/* rec changed: write it back by the next commit. */
void cowfs_vdirty(struct cowfs_vnode *vn);
/* fs/namei.c: frees the inodes that ORPHAN items name (unlinked while
 * open when a crash came); called by mount before the filesystem is used.
 * *freed (may be NULL) = how many. */
int cowfs_orphans_cleanup(struct cowfs_mount *m, uint64_t *freed);
/* fs/file.c, called WITHOUT the lock (the page cache is truncated):
 * truncate or extend a regular file to size, with mtime/ctime. */
int cowfs_file_setsize(struct cowfs_mount *m, uint64_t ino, uint64_t size);
/* fs/file_log.c, lock held: make vn's changes since the last commit, and
 * every name change, durable through the intent log.  -EAGAIN: not
 * loggable (the caller commits). */
int cowfs_file_log(struct cowfs_mount *m, struct cowfs_vnode *vn);
/* fs/file_log.c, lock held: a namespace operation starts (its changes
 * are noted for the intent log) and ends. */
void cowfs_ns_begin(struct cowfs_mount *m);
void cowfs_ns_end(struct cowfs_mount *m);
/* fs/file_log.c, lock held: [start, end) of vn was remapped. */
void cowfs_file_log_note(struct cowfs_vnode *vn, uint64_t start, uint64_t end);
/* Current wall-clock time for timestamps. */
struct cowfs_time cowfs_now(void);

#endif
