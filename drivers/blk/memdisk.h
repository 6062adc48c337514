/*
 * RAM-backed block device for testing the block layer (drivers/blk/memdisk.c).
 *
 * Registered only by self-tests (memdisk_create) or by the boot argument
 * memdisk=SIZE (one device "mem0" with 512-byte blocks).  Data is copied at
 * submission; completion is deferred like a real device's: to a worker
 * thread in interrupt mode (standing in for the IRQ handler) or to
 * ops->poll in polling mode.  Every command the device receives is checked
 * against its advertised limits and logged, so tests can see exactly how
 * the block layer split and merged.
 */
#ifndef DRIVERS_BLK_MEMDISK_H
#define DRIVERS_BLK_MEMDISK_H

#include "drivers/blk/blk.h"

struct memdisk_opts {
	uint64_t size;                 /* bytes */
	uint32_t lba_size;             /* 512 or 4096 */
	uint32_t max_transfer;         /* 0: 128 KiB */
	uint16_t max_segments;         /* 0: 32 */
	uint32_t virt_boundary;
	uint32_t max_discard_blocks, max_write_zeroes_blocks;
	bool write_cache, fua;
	unsigned nqueues, queue_depth; /* 0: 1 and 32 */
};

#define MEMDISK_LOG 64

struct memdisk_cmd {
	uint8_t op;
	uint32_t flags;
	uint64_t lba;
	uint32_t nblocks;
	unsigned nsegs;
};

struct memdisk_counters {
	uint64_t cmds, busy, flushes, fua_writes;
	uint64_t limit_violations;     /* commands outside the advertised limits */
	uint64_t polled;               /* completions reaped through blk_poll() */
	unsigned nlog;                 /* commands in log (wraps at MEMDISK_LOG) */
	struct memdisk_cmd log[MEMDISK_LOG];
};

struct blk_dev *memdisk_create(const char *name, const struct memdisk_opts *o);
/* Fail the next `count` commands of `op` touching [lba, lba+n) with
 * status and the decoded reason (count 0 clears). */
void memdisk_inject(struct blk_dev *dev, uint8_t op, uint64_t lba, uint32_t n, unsigned count,
		    int status, const char *reason);
/* Hold completions (a device that stops answering) or release them. */
void memdisk_hold(struct blk_dev *dev, bool hold);
/* Copy of the counters; reset clears them. */
void memdisk_counters(struct blk_dev *dev, struct memdisk_counters *out, bool reset);
/* Direct access to the backing store (test checks), NULL past the end. */
uint8_t *memdisk_byte(struct blk_dev *dev, uint64_t off);

#endif
