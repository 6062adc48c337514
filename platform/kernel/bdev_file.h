/*
 * A whole block device as a file over the iomap core (platform/kernel/bdev_file.c),
 * like Linux's block-device page cache: file offset = device byte offset,
 * every mapping MAPPED (never a hole), i_size = the device size.  Buffered
 * reads and writes go through the page cache, direct I/O straight to the
 * device with the cache written back and invalidated around it.
 *
 * Call order: bdev_file_open() -> read/write/dio/sync/drop ... ->
 * bdev_file_close() (writes back, drops the cache, does not close the
 * plat_bdev).  Writes past the device end return -ENOSPC; reads stop at it.
 */
#ifndef IOMAP_BDEV_FILE_H
#define IOMAP_BDEV_FILE_H

#include "iomap/iomap.h"

struct bdev_file {
	struct iomap_inode ino;       /* first: the core hands us this pointer */
	struct plat_bdev *bdev;
	uint64_t size;
	uint64_t wb_end_ios, wb_errors;   /* writeback completions seen, atomic */
	uint64_t read_bytes, dio_read_bytes;  /* returned to callers, atomic */
};

/* Page-cache block = 4 KiB when the device size allows, else the LBA size.
 * wq: completion work queue (NULL: inline completion). */
int bdev_file_open(struct pcache *pc, struct plat_bdev *bdev, struct iomap_workq *wq,
		   struct bdev_file **out);
int bdev_file_close(struct bdev_file *bf);

int64_t bdev_file_read(struct bdev_file *bf, uint64_t pos, void *buf, uint64_t len);
int64_t bdev_file_write(struct bdev_file *bf, uint64_t pos, const void *buf, uint64_t len);
/* Direct I/O: pos, len and buf aligned to the file block (bdev_file_block). */
int64_t bdev_file_dio_read(struct bdev_file *bf, uint64_t pos, void *buf, uint64_t len);
int64_t bdev_file_dio_write(struct bdev_file *bf, uint64_t pos, const void *buf, uint64_t len, bool fua);
/* fsync: write back, wait, report the first writeback error, flush. */
int bdev_file_sync(struct bdev_file *bf);
/* sync, then evict every cached folio of the file. */
int bdev_file_drop(struct bdev_file *bf);
static inline uint32_t bdev_file_block(const struct bdev_file *bf) { return 1u << bf->ino.blkbits; }

#endif
