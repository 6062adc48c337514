/*
 * Internals of the file data path shared by its files: fs/file.c (set-up
 * and the API), fs/file_map.c (the iomap hooks: mappings, new blocks,
 * completions) and fs/file_ranges.c (the per-file range sets and the
 * direct I/O range lock).  Not for the rest of the filesystem (fs/file.h).
 */
#ifndef FS_FILE_INT_H
#define FS_FILE_INT_H

#include "fs/file.h"
#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"

#define BS CFS_BLOCK_SIZE
/* One block per folio.  The stale blocks the random model test found with
 * larger folios were blocks taken for a delalloc run that a truncate then
 * cut, mapped later by a direct read's completion (both fixed; the test
 * passes with order 4).  Larger folios stay off because a checksum error
 * then fails the buffered read of the whole folio, not only its block. */
#define FILE_MAX_FOLIO_ORDER 0
#define FILE_MAX_BYTES CFS_FILE_MAX_BYTES

/* bytes; addr and owner: in-flight allocations.  owner is WB_OWNER for
 * blocks writeback took, cowfs_dio_owner() for a direct write's: direct writes
 * run under the shared inode lock, so two may have blocks in flight for
 * the same file range, and each remaps or gives back only its own. */
struct range { uint64_t start, end, addr, owner; };

#define WB_OWNER  0ull
#define ANY_OWNER UINT64_MAX

struct ranges {
	struct range *r;
	unsigned n, cap;
};

struct cowfs_fdata {
	struct ranges delalloc;     /* dirty, reserved, not allocated */
	struct ranges inflight;     /* allocated (in memory), not remapped */
	struct ranges dio;          /* direct I/O running: addr 1 = write (cowfs_dio_range_lock) */
	int dio_gen;                /* bumped when one ends (atomic; waiters sleep on dio_wq) */
	struct plat_waitq *dio_wq;
	uint64_t seq;               /* mapping changes: the validity cookie */
};

static inline uint64_t down(uint64_t x) { return x & ~(uint64_t)(BS - 1); }
static inline uint64_t up(uint64_t x) { return (x + BS - 1) & ~(uint64_t)(BS - 1); }

static inline struct cowfs_vnode *VN(struct iomap_inode *io) { return (struct cowfs_vnode *)io; }

/* cowfs's direct I/O is synchronous (iomap_dio_rw): write_begin, the
 * end_io and the caller's clean-up all run on the calling thread. */
static inline uint64_t cowfs_dio_owner(void) { return (uint64_t)plat_thread_id() + 1; }

/* ---- file_ranges.c: range sets (small sorted arrays; merge on insert) ---- */
int cowfs_ranges_reserve(struct ranges *s);
/* Blocks of [start, end) not yet in the delalloc set; adds them. */
int cowfs_delalloc_add(struct ranges *s, uint64_t start, uint64_t end, uint64_t *added);
/* Removes [start, end) of owner's ranges from a set (into *removed when
 * not NULL); returns the bytes removed. */
uint64_t cowfs_ranges_cut(struct ranges *s, uint64_t start, uint64_t end, uint64_t owner, struct ranges *removed);
const struct range *cowfs_ranges_find(const struct ranges *s, uint64_t pos, uint64_t owner);
/* Bytes of [start, end) a set covers. */
uint64_t cowfs_ranges_overlap(const struct ranges *s, uint64_t start, uint64_t end);
/* The direct I/O range lock (inode I/O lock held, not m->lock): reads
 * exclude writes over one range. */
int cowfs_dio_range_lock(struct cowfs_vnode *vn, uint64_t start, uint64_t end, bool write);
void cowfs_dio_range_unlock(struct cowfs_vnode *vn, uint64_t start, uint64_t end);
/* m->lock held; the caller wakes vn->fd->dio_wq after dropping it. */
void cowfs_dio_range_unlock_locked(struct cowfs_vnode *vn, uint64_t start, uint64_t end);

/* ---- file_map.c: the iomap hooks ---- */
extern const struct iomap_ops cowfs_file_read_ops;
extern const struct iomap_writeback_ops cowfs_file_wb_ops;
extern const struct iomap_dio_ops cowfs_file_dio_ops;
/* m->lock held: owner's blocks taken for [start, end) that were never
 * written given back. */
void cowfs_inflight_drop(struct cowfs_vnode *vn, uint64_t start, uint64_t end, uint64_t owner);

#endif
