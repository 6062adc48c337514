/*
 * Direct I/O (iomap/direct_io.c): split into submit (iomap_dio_begin) and
 * complete (iomap_dio_complete) (DIO-12), with its own ops table (COW-29).
 *
 * Caller contract (our filesystems, DIO-2/4/5/8/11):
 *   - hold the inode I/O lock (shared for reads and for writes entirely
 *     inside EOF, re-checked under the lock; exclusive otherwise) across
 *     begin when inode->dio_needs_lock is set (asserted);
 *   - truncate/fallocate/punch/clone take the lock exclusive and then
 *     drain with iomap_dio_wait();
 *   - leave the buffer of a direct write unchanged until it completes:
 *     checksum stages sum it in place and the device reads it from there
 *     (no bounce copy), so bytes changed in between would not match;
 *   - -ENOTBLK (misaligned write) or a short result: write the rest
 *     buffered under the same lock, then write back + wait + invalidate
 *     that range (DIO-16, COW-26) and do one O_DSYNC sync (DIO-18/20).
 *
 * Alignment (DIO-17, COW-25): pos, len and every segment must be multiples
 * of the filesystem block; the core never zero-pads and never reads old
 * data, so COW ranges are always whole blocks.  Misaligned writes return
 * -ENOTBLK (buffered fallback), misaligned reads return 0.
 *
 * Completion order (DIO-13), in iomap_dio_complete:
 *   1. dops->end_io (unwritten conversion, COW remap), then the core raises
 *      i_size and disk_size monotonically to the end of a successful
 *      extending write (COW-28);
 *   2. invalidate the page cache over the written range;
 *   3. drop the in-flight count (wakes iomap_dio_wait drainers);
 *   4. O_DSYNC: flush the device unless every write was a pure overwrite
 *      issued FUA (DIO-14), or unless the caller asked to defer the flush
 *      (IOMAP_DIO_DEFER_SYNC, Variant B of DIO-20);
 *   5. only then report success (sync return or async callback).
 * Async completions run on inode->wq, a thread holding no inode lock
 * (DIO-15/21).  "Drained" means no I/O in flight, never "stable" (DIO-14).
 */
#ifndef IOMAP_DIRECT_IO_H
#define IOMAP_DIRECT_IO_H

#include "iomap/iomap.h"

/* dio flags reported to end_io */
#define IOMAP_DIO_UNWRITTEN 0x1u   /* some range was unwritten: convert */
#define IOMAP_DIO_COW       0x2u   /* some range was COW: remap */
#define IOMAP_DIO_NEW       0x4u   /* new blocks: not a pure overwrite */

/* request flags */
#define IOMAP_DIO_WRITE      0x01u
#define IOMAP_DIO_DSYNC      0x02u
#define IOMAP_DIO_NOWAIT     0x04u
#define IOMAP_DIO_DEFER_SYNC 0x08u
#define IOMAP_DIO_OVERWRITE_ONLY 0x10u

struct iomap_dio;

struct iomap_dio_ops {
	/* Optional: the filesystem submits the bio itself (checksums,
	 * placement); file_offset is the file position of its first byte
	 * (COW-30).  It must end in bio->end_io exactly once. */
	void (*submit_io)(struct iomap_inode *inode, struct plat_bio *bio, uint64_t file_offset);
	/* Optional: size = bytes done (>= 0) or error.  Converts/remaps on
	 * success only; on error must leave the old mapping (COW-23). */
	int (*end_io)(struct iomap_inode *inode, uint64_t pos, int64_t size, unsigned dio_flags);
};

typedef void (*iomap_dio_done_t)(void *arg, int64_t ret);

/*
 * Submit.  done == NULL: synchronous, waits for the I/O (polling the
 * device when it is polled), returns the dio to hand to iomap_dio_complete.
 * done != NULL: asynchronous: returns NULL with *status = -EIOCBQUEUED and
 * done(arg, bytes-or-error) fires after the whole completion sequence.
 * Returns NULL with *status = 0 (nothing to do), -ENOTBLK, -EAGAIN, or an
 * error otherwise.
 */
struct iomap_dio *iomap_dio_begin(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len,
				  unsigned flags, const struct iomap_ops *ops,
				  const struct iomap_dio_ops *dops, iomap_dio_done_t done, void *arg,
				  int *status);
int64_t iomap_dio_complete(struct iomap_dio *dio);
/* begin + complete for synchronous callers. */
int64_t iomap_dio_rw(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len, unsigned flags,
		     const struct iomap_ops *ops, const struct iomap_dio_ops *dops);

/* Drain: wait until no direct I/O is in flight (DIO-8); 0 or -ETIMEDOUT. */
int iomap_dio_wait(struct iomap_inode *inode, uint64_t deadline);

#endif
