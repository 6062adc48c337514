/*
 * cowfs file data (fs/file.c, fs/extent.c): what fs/vfs.c and fs/namei.c
 * call of the data path.  Not for users of the filesystem (fs/vfs.h).
 */
#ifndef FS_FILE_H
#define FS_FILE_H

#include "fs/vfs_int.h"

/* EXTENT item (docs/format.md §6): (ino, EXTENT, file byte offset) ->
 * disk_block u64, nblocks u32, flags u32, gen u64. */
#define CFS_EXTENT_SIZE CFS_EXTENT_ITEM_SIZE
#define CFS_EXTENT_MAX_BLOCKS CFS_EXTENT_MAX_SPAN     /* 128 MiB: the most blocks one EXTENT item maps */
#define CFS_FILE_MAX_BYTES (1ull << 42)   /* 4 TiB */

struct cowfs_extent {
	uint64_t off;            /* file bytes, block aligned */
	uint64_t disk_block;
	uint32_t nblocks;
	uint64_t gen;
};

/* ---- extent.c (filesystem lock held) ---- */
/* The extent holding pos, else the first after pos (*found = false and
 * e->off = where the hole ends, UINT64_MAX when none). */
int cowfs_extent_find(struct cowfs_mount *m, uint64_t ino, uint64_t pos, struct cowfs_extent *e, bool *found);
/* [off, off+n blocks) now lives at disk_block: what was there is released. */
int cowfs_extent_replace(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t off, uint64_t disk_block,
			 uint32_t nblocks);
/* Everything at or after `from` (block aligned) released. */
int cowfs_extent_punch_from(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t from);
/* [start, end) (block aligned) released: a hole (fs/falloc.c). */
int cowfs_extent_punch(struct cowfs_mount *m, struct cowfs_vnode *vn, uint64_t start, uint64_t end);

/* ---- csum.c: the data checksum stage (IOMAP_F_CSUM maps) ---- */
extern const struct iomap_xform_ops cowfs_csum_xform;
/* Each block of in (n bytes, read from device byte dev, file offset pos
 * of inode ino) against its checksum: 0, or -EIO (counted and logged as
 * the stage does).  Takes m->lock unless held. */
int cowfs_csum_verify(struct cowfs_mount *m, uint64_t ino, uint64_t pos, uint64_t dev, const uint8_t *in, uint64_t n);

/* ---- file.c ---- */
/* Lock held: free the inode's data (extents, reservations, state). */
int cowfs_file_free_data(struct cowfs_vnode *vn);
/* No lock: the inode's page cache goes (written back unless doomed). */
void cowfs_file_drop_cache(struct cowfs_vnode *vn);
/* No lock: write back every file's dirty data and wait for it. */
int cowfs_file_writeback_all(struct cowfs_mount *m);
/* Lock held: blocks reserved by buffered writes not yet allocated. */
uint64_t cowfs_file_reserved(struct cowfs_mount *m);
/* Lock held: attributes the data path knows better (in-memory size). */
void cowfs_file_attr(struct cowfs_vnode *vn, struct cowfs_inode *out);

/* ---- file.c, for fs/falloc.c ---- */
/* The buffered write path's mapping (zeroing partial blocks). */
extern const struct iomap_ops cowfs_file_write_ops;
/* No lock: a referenced, data-ready regular file (-EISDIR, -EINVAL for
 * other types); put with cowfs_file_put. */
int cowfs_file_get(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out);
void cowfs_file_put(struct cowfs_vnode *vn);
/* No lock: mtime and ctime now (modified), the record dirty. */
void cowfs_file_touch(struct cowfs_vnode *vn, bool modified);
/* Lock held: the on-disk mapping at pos: MAPPED, or a HOLE up to the
 * next extent. */
int cowfs_file_map_disk(struct cowfs_vnode *vn, uint64_t pos, struct iomap *map);
/* Lock held: 0 when `want` more blocks fit beside everything used,
 * pinned, reserved and in flight (plus a metadata margin), else -ENOSPC;
 * may commit to make freed blocks reusable. */
int cowfs_file_room(struct cowfs_mount *m, uint64_t want);
/* Lock held: the delalloc reservations of [start, end) released (its
 * cached folios must already be gone); cached mappings invalid. */
void cowfs_file_forget_range(struct cowfs_vnode *vn, uint64_t start, uint64_t end);
/* ---- falloc_shift.c, for fs/falloc.c ---- */
/* I/O lock held exclusive, direct I/O waited for: COLLAPSE_RANGE
 * (collapse) or INSERT_RANGE of [off, off+len) (fs/vfs.h). */
int cowfs_falloc_shift(struct cowfs_vnode *vn, bool collapse, uint64_t off, uint64_t len);
/* Lock held: blocks of [start, end) reserved by buffered writes. */
uint64_t cowfs_file_reserved_in(struct cowfs_vnode *vn, uint64_t start, uint64_t end);
/* Lock held: whether pos holds data not yet in an extent (dirty delalloc
 * or writeback in flight); *next = the end of that run, or else the start
 * of the next such run (UINT64_MAX: none). */
bool cowfs_file_pending(struct cowfs_vnode *vn, uint64_t pos, uint64_t *next);

/* copy_file_range's byte copy (fs/reflink.c), from the live tree or a
 * snapshot (fs/snap_read.c): rd reads the source (bytes, 0 at its end, or
 * -errno); written through the page cache into dst; the bytes done (short
 * at the source's end or after a failed write) or -errno. */
typedef int64_t (*cowfs_copy_read_fn)(void *arg, uint64_t ino, uint64_t off, void *buf, uint64_t len);
int64_t cowfs_copy_bytes(struct cowfs_mount *m, cowfs_copy_read_fn rd, void *arg, uint64_t src_ino,
			 uint64_t src_off, uint64_t dst_ino, uint64_t dst_off, uint64_t len);

#endif
