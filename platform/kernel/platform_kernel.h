/*
 * Kernel-only extensions of the platform (platform/kernel/platform_kernel*.c):
 * opening a block-layer disk (drivers/blk/blk.h) as a plat_bdev, and
 * counters for `pc stat` / `mem`.  Portable code never includes this.
 *
 * Completion path: the block layer's done() runs in interrupt context (or
 * in blk_poll's caller); it only queues the bio on the current CPU's
 * completion list and wakes that CPU's "iomap-cpl/N" thread, which calls
 * end_io in thread context as platform.h promises.  Devices in polling mode
 * get a poller thread ("iomap-poll") that reaps them while bios are in
 * flight, so writeback and fsync waits finish without a caller polling.
 */
#ifndef IOMAP_PLATFORM_KERNEL_H
#define IOMAP_PLATFORM_KERNEL_H

#include "platform/platform.h"

struct blk_dev;

/* Called by plat_init(): completion threads (one per online CPU), poller. */
int plat_kernel_bdev_init(void);
/* Open a block-layer device as a plat_bdev; NULL when out of memory. */
struct plat_bdev *plat_kernel_bdev_open(struct blk_dev *dev);
/* Self-tests: the next allocation plat_bdev_submit makes for this device fails. */
extern struct plat_bdev *plat_kbio_fail_next;
struct blk_dev *plat_kernel_bdev_dev(struct plat_bdev *b);

struct plat_kernel_stats {
	uint64_t bios, bios_failed, completions_deferred, polls;
	uint64_t read_bytes, write_bytes;   /* submitted to the devices */
	uint64_t max_batch;          /* most bios one completion thread ran at once */
};
void plat_kernel_stats(struct plat_kernel_stats *out);
/* Bytes currently allocated through plat_alloc_pages (folio data). */
uint64_t plat_kernel_pages_bytes(void);

#endif
