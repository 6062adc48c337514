/*
 * Host-only extensions of the platform (platform/host/platform_host.c): opening a
 * file as a block device, fault injection and I/O counters for tests.
 * Portable code never includes this header.
 */
#ifndef PLATFORM_HOST_H
#define PLATFORM_HOST_H

#include "platform/platform.h"

/* Open (create when missing, grow to `size`) a file as a block device with
 * `nthreads` completion threads (0 = synchronous completion in submit).
 * polled: completions are only run by plat_bdev_poll(). */
struct plat_bdev *plat_host_bdev_open(const char *path, uint64_t size, uint32_t block_size,
				      unsigned nthreads, bool polled);

/* Fail the next `count` bios of `op` that overlap [off, off+len) with err
 * (negative errno).  count 0 removes the rule. */
void plat_host_bdev_inject(struct plat_bdev *b, enum plat_bio_op op, uint64_t off,
			   uint64_t len, int err, unsigned count);

struct plat_host_bdev_stats {
	uint64_t reads, writes, flushes, fua_writes, discards, discard_bytes;
	uint64_t read_bytes, write_bytes;
	uint64_t max_bio_bytes;
	uint64_t polled_bios;         /* completed by plat_bdev_poll (polled device) */
};
void plat_host_bdev_stats(struct plat_bdev *b, struct plat_host_bdev_stats *out);
/* Volatile write cache model: while on, non-FUA writes stay in a log
 * (visible to reads) until a FLUSH makes them durable; crash() discards
 * the log as a power cut would.  Turning it off flushes. */
void plat_host_bdev_set_volatile(struct plat_bdev *b, bool on);
void plat_host_bdev_crash(struct plat_bdev *b);
/* Delay every bio completion by ns (reorders completions across threads). */
void plat_host_bdev_set_delay(struct plat_bdev *b, uint64_t ns);

#endif
