/*
 * cowfs, mounted: the filesystem's API for its users (the FUSE mount, the
 * shell, the protocol server).  Everything is addressed by inode number, as
 * a FUSE low-level node id or a protocol file handle is; the inode cache
 * behind it (fs/vfs_int.h) keeps an in-memory inode while it is referenced.
 *
 * Call order and states:
 *   cowfs_vfs_mount(bdev, opts, &m)       mount (fs/cowfs.h), open the default
 *                                          subvolume, start the background
 *                                          commit; -> MOUNTED
 *     any operation below, from any number of threads
 *   cowfs_vfs_unmount(m)                  write back, commit, stop, free
 *
 * Attributes are struct cowfs_inode (fs/inode.h).  Modes use the Linux
 * values (CFS_S_*), times are UTC from plat_realtime_ns().
 *
 * Errors: negative PLAT_E* values: -ENOENT, -EEXIST, -ENOTDIR, -EISDIR,
 * -ENOTEMPTY, -EINVAL, -ENAMETOOLONG, -EMLINK, -ENOSPC, -EFBIG, -EIO (corrupt
 * metadata or data: checksum mismatch), -EROFS (read-only mount, or the
 * filesystem failed and went read-only: cowfs_error() says why).
 *
 * Durability: a change is durable after the next commit (background, every
 * commit_interval_ms, or cowfs_vfs_sync), or for one file after
 * cowfs_fsync() returns 0.
 */
#ifndef FS_VFS_H
#define FS_VFS_H

#include "fs/cowfs.h"
#include "fs/inode.h"

struct cowfs_mount;
struct pcache;
struct iomap_workq;

/* File types and permission bits (the Linux values). */
#define CFS_S_IFMT   0170000u
#define CFS_S_IFREG  0100000u
#define CFS_S_IFDIR  0040000u
#define CFS_S_IFLNK  0120000u
#define CFS_S_IFIFO  0010000u
#define CFS_S_IFCHR  0020000u
#define CFS_S_IFBLK  0060000u
#define CFS_S_IFSOCK 0140000u
#define CFS_S_ISGID  0002000u
#define CFS_S_ISREG(m) (((m) & CFS_S_IFMT) == CFS_S_IFREG)
#define CFS_S_ISDIR(m) (((m) & CFS_S_IFMT) == CFS_S_IFDIR)
#define CFS_S_ISLNK(m) (((m) & CFS_S_IFMT) == CFS_S_IFLNK)
/* A fifo, socket or device node: only its inode is stored (rdev for devices). */
#define CFS_S_ISSPECIAL(m) (((m) & CFS_S_IFMT) == CFS_S_IFIFO || ((m) & CFS_S_IFMT) == CFS_S_IFCHR || \
			    ((m) & CFS_S_IFMT) == CFS_S_IFBLK || ((m) & CFS_S_IFMT) == CFS_S_IFSOCK)

struct cowfs_vfs_opts {
	struct cowfs_mount_opts fs;      /* node cache budget, read-only, test hooks */
	struct pcache *pc;               /* page cache to use; NULL = a private one */
	uint64_t data_cache_bytes;       /* private page cache budget; 0 = 64 MiB */
	struct iomap_workq *wq;          /* I/O completion worker; NULL = a private one */
	unsigned commit_interval_ms;     /* background commit period; 0 = 5000 */
	bool no_fsync_log;               /* fsync always commits (no intent log, docs/format.md §9) */
	const char *snapshot;            /* mount this named snapshot (or clone) of the top subvolume,
					    read-only, instead of the live tree; -ENOENT when none has that name */
};

int cowfs_vfs_mount(struct plat_bdev *b, const struct cowfs_vfs_opts *o, struct cowfs_mount **out);
/* Writes back and commits (unless read-only or failed), frees everything.
 * Returns the first error; the mount is gone either way. */
int cowfs_vfs_unmount(struct cowfs_mount *m);
/* Everything written so far becomes durable (writeback + commit). */
int cowfs_vfs_sync(struct cowfs_mount *m);
struct cowfs *cowfs_vfs_fs(struct cowfs_mount *m);
/* Online check (fs/vfs_check.c): sync, then check the committed trees,
 * the space map and the directories under the filesystem lock.  0, or
 * -EIO with the first problem in words in msg. */
int cowfs_vfs_check(struct cowfs_mount *m, char *msg, size_t msglen);
/* Scrub (fs/vfs_check.c): sync, then cowfs_scrub (fs/cowfs.h) under the
 * filesystem lock (other operations wait while it runs). */
int cowfs_vfs_scrub(struct cowfs_mount *m, struct cowfs_scrub_stats *st, cowfs_report_fn report,
		    cowfs_progress_fn progress, void *arg);

struct cowfs_statfs {
	uint64_t block_size, total_blocks, free_blocks;
	uint64_t inodes;                 /* in use */
	uint32_t name_max;
};
int cowfs_statfs(struct cowfs_mount *m, struct cowfs_statfs *out);

/* ---- attributes ---- */
int cowfs_getattr(struct cowfs_mount *m, uint64_t ino, struct cowfs_inode *out);

#define CFS_SET_MODE      0x01u
#define CFS_SET_UID       0x02u
#define CFS_SET_GID       0x04u
#define CFS_SET_SIZE      0x08u      /* truncate or extend */
#define CFS_SET_ATIME     0x10u
#define CFS_SET_MTIME     0x20u
#define CFS_SET_ATIME_NOW 0x40u
#define CFS_SET_MTIME_NOW 0x80u
struct cowfs_setattr {
	unsigned valid;                  /* CFS_SET_* */
	uint32_t mode;                   /* permission bits only (07777) */
	uint32_t uid, gid;
	uint64_t size;
	struct cowfs_time atime, mtime;
};
/* Applies sa and bumps ctime; out (may be NULL) receives the new attributes. */
int cowfs_setattr(struct cowfs_mount *m, uint64_t ino, const struct cowfs_setattr *sa, struct cowfs_inode *out);

/* ---- namespace (fs/namei.c) ----
 * Names are 1..CFS_NAME_MAX bytes without '/' or NUL; "." and ".." are
 * never stored and are refused as names (-EINVAL), except that lookup
 * resolves them.  Every call that returns an inode fills out (may be NULL). */
int cowfs_lookup(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, struct cowfs_inode *out);
/* A regular file (mode: permission bits).  -EEXIST when the name exists.
 * In a directory with the set-group-ID bit, every new inode takes the
 * directory's group and a new directory keeps the bit (as Linux does). */
int cowfs_create(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint32_t uid,
		 uint32_t gid, struct cowfs_inode *out);
int cowfs_mkdir(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint32_t uid,
		uint32_t gid, struct cowfs_inode *out);
int cowfs_symlink(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, const char *target,
		  size_t tlen, uint32_t uid, uint32_t gid, struct cowfs_inode *out);
/* A fifo, socket or device node (mode: its type and permission bits;
 * rdev: the device number, 0 for fifos and sockets).  Other types -EINVAL. */
int cowfs_mknod(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len, uint32_t mode, uint64_t rdev,
		uint32_t uid, uint32_t gid, struct cowfs_inode *out);
/* Copies at most bufsize bytes (no NUL added); *len = the target's length. */
int cowfs_readlink(struct cowfs_mount *m, uint64_t ino, char *buf, size_t bufsize, size_t *len);
int cowfs_link(struct cowfs_mount *m, uint64_t ino, uint64_t newdir, const char *name, size_t len,
	       struct cowfs_inode *out);
/* The inode goes when its last name is removed and it is not open. */
int cowfs_unlink(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len);
int cowfs_rmdir(struct cowfs_mount *m, uint64_t dir, const char *name, size_t len);
#define CFS_RENAME_NOREPLACE 1u
#define CFS_RENAME_EXCHANGE  2u
/* Atomic: one transaction, so a crash leaves the old or the new state. */
int cowfs_rename(struct cowfs_mount *m, uint64_t olddir, const char *oldname, size_t oldlen, uint64_t newdir,
		 const char *newname, size_t newlen, unsigned flags);
/* Entries from cookie on (0 = start; "." and ".." come first with cookies
 * 0 and 1), as cowfs_dir_readdir (fs/inode.h). */
int cowfs_readdir(struct cowfs_mount *m, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb, void *arg);

/* ---- open files ----
 * An open inode survives the removal of its last name (an ORPHAN item
 * records it, so the next mount frees it after a crash) until its last
 * cowfs_release. */
int cowfs_open(struct cowfs_mount *m, uint64_t ino);
void cowfs_release(struct cowfs_mount *m, uint64_t ino);

/* ---- snapshots of the mounted subvolume (fs/vfs_snap.c) ----
 * What was written before the call is in the snapshot (the filesystem is
 * synced first), and the snapshot is durable when 0 is returned.  A clone
 * (readonly false) can be changed later; names as cowfs_snapshot_named. */
int cowfs_snapshot(struct cowfs_mount *m, const char *name, size_t len, bool readonly);
int cowfs_snapshot_remove(struct cowfs_mount *m, const char *name, size_t len);
/* The mounted subvolume's snapshots and clones (cb as cowfs_subvol_list;
 * only those taken of this subvolume). */
int cowfs_snapshot_list(struct cowfs_mount *m, cowfs_subvol_fn cb, void *arg);
/* Reading a read-only snapshot of the mounted subvolume (fs/snap_read.c),
 * for the protocol's snapshot handles: snap is its tree id
 * (cowfs_snapshot_list); any other tree, or a deleted snapshot, is -ENOENT.
 * Straight from the snapshot's tree, no caches: a read copies at most
 * CFS_SNAP_READ_MAX bytes (short; 0 at or past the end of file), each
 * block verified against its checksum (-EIO).  -ENOTDIR, -EISDIR, -EINVAL
 * as the live calls; lookup resolves "." and "..", readdir gives them. */
#define CFS_SNAP_READ_MAX (1u << 20)
int cowfs_snap_getattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, struct cowfs_inode *out);
int cowfs_snap_lookup(struct cowfs_mount *m, uint64_t snap, uint64_t dir, const char *name, size_t len,
		      struct cowfs_inode *out);
int cowfs_snap_readdir(struct cowfs_mount *m, uint64_t snap, uint64_t dir, uint64_t cookie, cowfs_readdir_fn cb,
		       void *arg);
int cowfs_snap_readlink(struct cowfs_mount *m, uint64_t snap, uint64_t ino, char *buf, size_t bufsize, size_t *len);
int64_t cowfs_snap_read(struct cowfs_mount *m, uint64_t snap, uint64_t ino, uint64_t off, void *buf, uint64_t len);
/* The snapshot's extended attributes (cowfs_getxattr / cowfs_listxattr's
 * contract), its data/hole map (cowfs_seek's; nothing is in flight in a
 * snapshot), and a copy of a snapshot file's range into a live file of
 * this mount (bytes through the page cache, never shared extents: a clone
 * would have to hold the snapshot's blocks against its delete; short at
 * the source's end of file or after a failed write, as cowfs_copy_range;
 * holes are copied as zeros). */
int cowfs_snap_getxattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, const char *name, size_t len, void *buf,
			size_t cap, size_t *vlen);
int cowfs_snap_listxattr(struct cowfs_mount *m, uint64_t snap, uint64_t ino, char *buf, size_t cap, size_t *total);
int cowfs_snap_seek(struct cowfs_mount *m, uint64_t snap, uint64_t ino, uint64_t off, int whence, uint64_t *result);
int64_t cowfs_snap_copy_range(struct cowfs_mount *m, uint64_t snap, uint64_t src_ino, uint64_t src_off,
			      uint64_t dst_ino, uint64_t dst_off, uint64_t len);
/* Finish the background delete of deleted snapshots now (tests; an
 * unmount that should leave no work behind); committed. */
int cowfs_vfs_drop_pending(struct cowfs_mount *m);

/* ---- extended attributes (fs/xattr.c, docs/format.md §6) ----
 * Names are 1..255 bytes without NUL (-ERANGE for an empty or longer name,
 * -EINVAL with a NUL), values 0..CFS_XATTR_VALUE_MAX (fs/xattr.h: 64 KiB; -E2BIG
 * beyond).  Each change bumps the inode's ctime and is one step of one
 * transaction; the attributes go with the inode. */
#define CFS_XATTR_CREATE  1u   /* -EEXIST when the attribute exists */
#define CFS_XATTR_REPLACE 2u   /* -ENODATA when it does not */
/* The value into buf; *vlen = its length.  cap 0 only asks the length;
 * -ERANGE when cap is too small, -ENODATA when absent. */
int cowfs_getxattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, void *buf, size_t cap,
		   size_t *vlen);
/* -ENOSPC when the space (or the item of names sharing this name's hash)
 * is full; nothing changed then. */
int cowfs_setxattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len, const void *value,
		   size_t vlen, unsigned flags);
/* Every name, each followed by a NUL (the listxattr(2) layout), into
 * buf; *total = the bytes needed.  cap 0 only asks the size; -ERANGE when
 * cap is too small. */
int cowfs_listxattr(struct cowfs_mount *m, uint64_t ino, char *buf, size_t cap, size_t *total);
/* -ENODATA when absent. */
int cowfs_removexattr(struct cowfs_mount *m, uint64_t ino, const char *name, size_t len);

/* ---- data (fs/file.c): buffered and direct I/O through the iomap core ---- */
#define CFS_IO_DIRECT 0x1u   /* O_DIRECT: block-aligned offset, length and buffer, else -EINVAL */
#define CFS_IO_DSYNC  0x2u   /* O_DSYNC: durable when the call returns */
#define CFS_IO_APPEND 0x4u   /* write at the end of file (off is ignored) */
/* Bytes read (short at end of file, 0 past it) or -errno. */
int64_t cowfs_read(struct cowfs_mount *m, uint64_t ino, uint64_t off, void *buf, uint64_t len, unsigned flags);
/* Bytes written or -errno (-ENOSPC, -EFBIG, -EISDIR ...). */
int64_t cowfs_write(struct cowfs_mount *m, uint64_t ino, uint64_t off, const void *buf, uint64_t len,
		    unsigned flags);
/* The file's data and attributes (and the names leading to a new file)
 * durable when 0 is returned. */
int cowfs_fsync(struct cowfs_mount *m, uint64_t ino, bool datasync);
/* fsyncs since mount that went through the intent log, and that committed. */
void cowfs_fsync_counts(struct cowfs_mount *m, uint64_t *logged, uint64_t *committed);
/* The file's cached pages written back and dropped, so the next buffered
 * read goes to the device (benchmarks: fio's invalidate=1). */
int cowfs_drop_cache(struct cowfs_mount *m, uint64_t ino);

/* ---- preallocation, holes and zeros (fs/falloc.c) ----
 * Modes (the Linux FALLOC_FL_* values): 0 allocates, KEEP_SIZE may be
 * added to 0 and ZERO_RANGE, PUNCH_HOLE needs KEEP_SIZE, COLLAPSE_RANGE and
 * INSERT_RANGE come alone; anything else is -ENOTSUP.  len 0 is -EINVAL, a range past the largest file -EFBIG.
 *   0 / KEEP_SIZE  "allocate": copy-on-write means a later write always
 *                  goes to new blocks, so nothing can be set aside that a
 *                  write would use.  cowfs only checks that the range's
 *                  unallocated blocks fit in the free space (-ENOSPC, and
 *                  nothing changes, when not) and, without KEEP_SIZE,
 *                  extends the size (the new bytes read as zeros).  Like
 *                  btrfs, a later write may still get -ENOSPC.
 *   PUNCH_HOLE     the range reads as zeros and its whole blocks are
 *                  released (a block shared with a snapshot only loses
 *                  this tree's reference); partial blocks are zeroed;
 *                  the size does not change.
 *   ZERO_RANGE     the same as a punch (zeros written would go to new
 *                  blocks anyway), and without KEEP_SIZE the size grows
 *                  to off+len.
 *   COLLAPSE_RANGE [off, off+len) goes and the bytes after it move down
 *                  by len, the size shrinks by len.  Alone (any other
 *                  flag: -EINVAL); off and len whole blocks and the range
 *                  ending before the end of file, else -EINVAL.
 *   INSERT_RANGE   the bytes at and after off move up by len, leaving a
 *                  hole of len at off; the size grows by len.  Alone; off
 *                  and len whole blocks and off below the size, else
 *                  -EINVAL; a size past the largest file -EFBIG.
 *                  Both move extents (no data is copied) as one step of
 *                  one transaction; an fsync of the file commits. */
#define CFS_FALLOC_KEEP_SIZE      0x01u
#define CFS_FALLOC_PUNCH_HOLE     0x02u
#define CFS_FALLOC_COLLAPSE_RANGE 0x08u
#define CFS_FALLOC_ZERO_RANGE     0x10u
#define CFS_FALLOC_INSERT_RANGE   0x20u
int cowfs_fallocate(struct cowfs_mount *m, uint64_t ino, unsigned mode, uint64_t off, uint64_t len);

/* ---- reflink of ranges (fs/reflink.c) ----
 * dst's [dst_off, dst_off+len) then names src's data blocks of
 * [src_off, src_off+len): no data is copied, the blocks are shared (their
 * DATA_REF counts raised, one checksum each) and a later write to either
 * file goes to new blocks, never changing the other.  The rules of Linux's
 * FICLONERANGE: offsets block aligned; len 0 means up to src's end of file
 * and a range past it is shortened to it; len whole blocks unless the range
 * ends at src's end of file, and then dst's range must reach dst's end of
 * file (or pass it); within one file the ranges may not overlap.  src's
 * dirty data in the range is written back first, dst's cached pages of the
 * range are dropped, dst grows when the range ends past its size, dst's
 * mtime and ctime move.  One step of one transaction: every refusal comes
 * before the first change; an fsync of dst commits it.  flags must be 0.
 * Returns the bytes cloned (0 when src_off is src's end of file) or
 * -EINVAL (alignment, overlap, src_off past the end, flags, not a regular
 * file), -EISDIR, -EFBIG, -ENOSPC (no room for the metadata), -EMLINK (a
 * block would pass the 2^32 - 1 references a DATA_REF item holds), -EROFS, -EIO.  Both files
 * are of this mount: a caller serving several answers -EXDEV itself. */
int64_t cowfs_clone_range(struct cowfs_mount *m, uint64_t src_ino, uint64_t src_off, uint64_t dst_ino,
			  uint64_t dst_off, uint64_t len, unsigned flags);
/* copy_file_range: a reflink of what the rules above allow -- all of the
 * range, or its whole blocks when only its partial last block breaks them
 * (a short count) -- else (offsets not aligned, -EMLINK) the bytes copied
 * through the page cache.  *cloned says which.  Returns the bytes done
 * (short at src's end of file or after a failed write; the caller
 * continues from there) or -errno; overlapping ranges of one file
 * -EINVAL.  CFS_COPY_CLONE_ONLY never copies: -EINVAL outside the rules. */
#define CFS_COPY_CLONE_ONLY 1u
int64_t cowfs_copy_range(struct cowfs_mount *m, uint64_t src_ino, uint64_t src_off, uint64_t dst_ino,
			 uint64_t dst_off, uint64_t len, unsigned flags, bool *cloned);

/* lseek(2) SEEK_DATA / SEEK_HOLE at block granularity: *result = the first
 * data byte (or hole byte; the end of file counts as a hole) at or after
 * off.  -ENXIO when off is at or past the end of file, or (SEEK_DATA) only
 * holes follow.  Data not yet written back counts as data. */
#define CFS_SEEK_DATA 3
#define CFS_SEEK_HOLE 4
int cowfs_seek(struct cowfs_mount *m, uint64_t ino, uint64_t off, int whence, uint64_t *result);
/* fiemap: the extents (not holes) of [start, start + len), merged when
 * contiguous on disk with equal flags, from the same map as cowfs_seek:
 * IOMAP_FIEMAP_DELALLOC (and UNKNOWN, no address) for data not written
 * back yet, LAST on the file's last extent; not SHARED (blocks a
 * snapshot or reflink also holds are not looked up; fallocate reserves no
 * blocks: a hole).  Up to
 * max into out; returns the count or -errno. */
struct iomap_fiemap_extent;
int cowfs_fiemap(struct cowfs_mount *m, uint64_t ino, uint64_t start, uint64_t len,
		 struct iomap_fiemap_extent *out, unsigned max);

#endif
