/*
 * Test filesystem for the iomap host suite (tests/host/testfs.c).
 *
 * A per-block mapping table over a file-backed block device, with a data
 * fork (HOLE / DELALLOC / MAPPED / UNWRITTEN per block) and a COW fork
 * (NONE / DELALLOC / ALLOC) like XFS reflink:
 *   - buffered writes reserve delalloc blocks (ENOSPC at write time);
 *   - writes to blocks shared with another file (refcount > 1) reserve in
 *     the COW fork and return srcmap = the old shared extent;
 *   - writeback allocates: data-fork delalloc -> UNWRITTEN (converted to
 *     MAPPED in end_io), COW delalloc -> ALLOC (remapped in end_io);
 *   - a mapping sequence counter, bumped by every change, is the
 *     validity cookie;
 *   - fault injection: ENOSPC (free block limit), map_blocks errors and
 *     EAGAIN, device EIO (plat_host_bdev_inject), delay hooks.
 * One mutex (tfs->lock) protects all mapping state; it is a short leaf
 * lock (never held across folio operations).
 */
#ifndef TESTS_HOST_TESTFS_H
#define TESTS_HOST_TESTFS_H

#include "iomap/buffered_io.h"
#include "iomap/workq.h"
#include "iomap/direct_io.h"
#include "platform/host/platform_host.h"

enum { TFS_HOLE, TFS_DELALLOC, TFS_MAPPED, TFS_UNWRITTEN };
enum { TFS_COW_NONE, TFS_COW_DELALLOC, TFS_COW_ALLOC };

struct tfs_blk {
	uint8_t state, cow;
	uint64_t addr, cow_addr;    /* device block numbers */
};

struct tfs_stats {
	uint64_t begins, ends, end_short, map_blocks, map_allocs, end_ios, end_io_errors;
	uint64_t conversions, remaps, stale, punched, reserved_released;
	uint64_t get_folio, put_folio;
	uint64_t escalations, dio_fallbacks, dsync_flushes;
};

struct tfs_config {
	uint64_t dev_bytes;
	unsigned blkbits;
	unsigned max_folio_order;
	unsigned bdev_threads;      /* 0 = synchronous device */
	unsigned wq_threads;        /* completion workers, 0 = inline */
	uint64_t max_file_bytes;
	bool polled;
};

struct tfs {
	struct tfs_config cfg;
	struct plat_bdev *bdev;
	struct pcache *pc;
	struct iomap_workq *wq;
	struct plat_mutex *lock;
	uint64_t nblocks;           /* device blocks */
	uint16_t *refcnt;           /* per device block */
	uint64_t used, reserved, free_limit;   /* free_limit: ENOSPC injection */
	uint64_t cursor;
	char path[128];
	/* Fault injection. */
	int map_err;                /* returned by map_blocks ... */
	unsigned map_err_count;     /* ... this many times */
	unsigned map_eagain_count;  /* map_blocks returns -EAGAIN this many times */
	unsigned map_hole_count;    /* map_blocks reports a HOLE this many times */
	struct tfs_stats st;
	/* Metadata log / crash model (testfs_log.c, DIO-T9).  While log_on,
	 * every unwritten->written conversion and COW remap done by direct
	 * I/O completion appends a record naming the device block and the CRC
	 * of the data it then holds; fsync commits records; a power cut
	 * (tfs_log_crash) keeps only committed ones. */
	struct tfs_logrec *log;
	unsigned nlog, logcap, committed;
	bool crashed;               /* power was cut: no commit may land after */
	bool log_on;
	bool log_bug_late_snapshot;   /* test of the test: commit after the flush's snapshot point */
	void (*fsync_after_flush)(struct tfs *fs, void *arg);   /* pause point */
	void *fsync_arg;
};

struct tfs_logrec {
	struct tfs_inode *ti;
	uint64_t blk, dev;          /* file block -> device block */
	uint32_t crc;               /* of the device block when logged */
};

struct tfs_inode {
	struct iomap_inode ino;
	struct tfs *fs;
	struct tfs_blk *blk;
	uint64_t maxblk;
	uint64_t seq;               /* mapping sequence (validity cookie) */
	uint64_t persisted_size;    /* what end_io committed */
	const struct iomap_folio_ops *folio_ops;   /* override for tests */
	bool last_dio_shared;       /* lock mode of the last tfs_dio_write */
};

int tfs_create(const struct tfs_config *cfg, uint64_t cache_budget, unsigned wb_threads, struct tfs **out);
void tfs_destroy(struct tfs *fs);

/* The plumbing every host test filesystem (testfs, testfs_xf) shares:
 * a fresh image file under /tmp named <prefix>-<pid>-<n>.img, unlinked at
 * once so it goes away with the process (path receives the name); then the
 * cache and I/O queue on top; teardown takes whatever exists (NULL: skipped). */
struct plat_bdev *tfs_image_open(const char *prefix, char *path, size_t pathlen, uint64_t bytes,
				 unsigned threads, bool polled);
int tfs_cache_create(const struct pcache_config *pcfg, const char *wq_name, unsigned wq_threads,
		     struct pcache **pc, struct iomap_workq **wq);
void tfs_plumbing_destroy(struct pcache *pc, struct plat_bdev *bdev, struct iomap_workq *wq,
			  struct plat_mutex *lock);
struct tfs_inode *tfs_inode_new(struct tfs *fs);
/* fsync + drop the cache + free blocks. */
int tfs_inode_free(struct tfs_inode *ti);

extern const struct iomap_ops tfs_write_ops, tfs_read_ops;
extern const struct iomap_writeback_ops tfs_wb_ops;
extern const struct iomap_folio_ops tfs_folio_ops;
extern const struct iomap_dio_ops tfs_dio_ops;

/* Direct I/O with the filesystem's locking and buffered fallback. */
int64_t tfs_dio_write(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len, unsigned flags);
int64_t tfs_dio_read(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len);

int64_t tfs_write(struct tfs_inode *ti, uint64_t pos, const void *buf, uint64_t len);
int64_t tfs_read(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len);
int tfs_fsync(struct tfs_inode *ti);
int tfs_truncate(struct tfs_inode *ti, uint64_t size);

/* Setup helpers (bypass the cache; state goes straight to "disk"). */
int tfs_set_mapped(struct tfs_inode *ti, uint64_t off, uint64_t len, const void *data);
int tfs_set_unwritten(struct tfs_inode *ti, uint64_t off, uint64_t len);
/* Reflink [soff, soff+len) of src to doff of dst (blocks shared). */
int tfs_clone(struct tfs_inode *dst, uint64_t doff, struct tfs_inode *src, uint64_t soff, uint64_t len);
/* Read what the *disk* says through the data fork (holes/unwritten = 0). */
int tfs_read_disk(struct tfs_inode *ti, uint64_t off, void *buf, uint64_t len);
/* Compares what the disk says at [off, off+len) with want: 0 equal,
 * 1 different, or the -errno of the read. */
int tfs_disk_cmp(struct tfs_inode *ti, uint64_t off, const void *want, uint64_t len);
struct tfs_blk tfs_blk_get(struct tfs_inode *ti, uint64_t off);
void tfs_bump_seq(struct tfs_inode *ti);
uint64_t tfs_free_blocks(struct tfs *fs);

/* testfs_log.c: fallocate-style operations with the DIO-8 preamble
 * (exclusive lock, then drain direct I/O). */
int tfs_punch(struct tfs_inode *ti, uint64_t off, uint64_t len);
int tfs_zero_range(struct tfs_inode *ti, uint64_t off, uint64_t len);
/* Log: append (fs->lock held), power cut, and the T9 check: the number of
 * committed records whose device block does not hold the logged data. */
void tfs_log_append(struct tfs_inode *ti, uint64_t blk, uint64_t dev);
void tfs_log_crash(struct tfs *fs);
unsigned tfs_log_check(struct tfs *fs);

#endif
