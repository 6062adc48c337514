/*
 * Block layer: one registry of disks, asynchronous requests with completion
 * callbacks, and synchronous helpers on top (drivers/blk/).
 *
 * Driver call order:
 *   1. fill a struct blk_dev (name, identity, geometry, limits, ops,
 *      nqueues, driver data), usually embedded in the driver's softc;
 *   2. blk_register(dev): the device is RUNNING and visible by name;
 *   3. for every request the block layer hands to ops->submit(), call
 *      blk_complete(req, status) exactly once, from interrupt context or
 *      from ops->poll();
 *   4. blk_set_dead(dev, reason) if the controller cannot be recovered: every
 *      queued and later request then fails with -EIO and the reason.
 *
 * Device states: RUNNING -> DEAD.  (Devices are never unregistered.)
 *
 * Request states: caller-owned -> blk_submit() -> [pieces] -> driver or
 * software queue -> done() -> caller-owned again.
 *
 * User call order: blk_find("nvme0n1") -> blk_req_init() -> blk_submit();
 * the request's done() runs exactly once with req->status 0 or -errno and,
 * for device errors, req->error holding the decoded reason in words.
 * done() may run in interrupt context: it must not sleep (waking a waitq is
 * fine).
 *
 * Buffer lifetime (the one rule every caller and driver relies on): from
 * blk_submit() returning 0 until done() runs, the request and every buffer
 * its segments name belong to the block layer and the device, which may
 * DMA into them at any moment -- also after a timeout, because a controller
 * reset resubmits what was in flight.  Nobody may free or reuse them in
 * that window, and nobody may stop waiting for them in a way that lets
 * them be freed.  The waits in this layer therefore end only when done()
 * has run: blk_wait() keeps waiting while the device owns the memory and
 * logs every blk_sync_timeout_ms instead of giving up.  Drivers make that
 * wait finite: a command past its deadline is aborted, retried after a
 * reset and finally failed, and a controller that cannot be reset stops
 * DMA (bus mastering off) before its requests are failed (blk_set_dead).
 * The exceptions use blk_wait()'s give-up time: a wait in which the
 * device owns nothing of the caller's (a free request piece), and
 * power-off, where a caller that gives up leaves the request and its
 * buffers allocated for good (leaked, never freed).
 *
 * What blk_submit() does, in order:
 *   - validates: range inside the device (-ERANGE "past end of device"),
 *     buffers 4-byte aligned and segment lengths multiples of the LBA size
 *     (-EINVAL "misaligned buffer"), op supported (-ENOTSUP);
 *   - FLUSH on a device without a volatile write cache completes at once;
 *     FUA on a device without FUA becomes write + flush (and is dropped on a
 *     device without write cache, where every write is durable);
 *     WRITE_ZEROES on a device without it becomes writes of a zero buffer;
 *   - splits to the device limits (max_transfer, max_segments,
 *     virt_boundary, max_discard_blocks, max_write_zeroes_blocks) and
 *     completes the caller's request once every piece is done, keeping the
 *     first error.  Pieces come from a per-device pool (128 pieces of up to
 *     32 segments); a submitter in process context waits for free pieces,
 *     one in interrupt context gets the request cut short with -ENOMEM.  A
 *     request that fits goes to the driver as it is, with no allocation;
 *   - queues on the submitting CPU's hardware queue (cpu % nqueues); when a
 *     driver returns -EBUSY (queue full) the piece waits in the device's
 *     software queue, where adjacent reads or writes with the same flags merge
 *     (discard, write-zeroes and flush never merge), and is
 *     resubmitted as completions free slots.
 *
 * Locking rule for drivers: blk_complete() may call ops->submit() again on
 * the same queue (to restart requests parked in the software queue), so a
 * driver must not hold its own queue lock while calling blk_complete().
 *
 * Completion modes: interrupts (default) or polling, per device, switchable
 * at run time with blk_set_polling().  In polling mode nothing completes
 * unless someone calls blk_poll(); the synchronous helpers do that
 * themselves, and so does the benchmark.
 */
#ifndef DRIVERS_BLK_BLK_H
#define DRIVERS_BLK_BLK_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

struct waitq;

enum blk_op {
	BLK_OP_READ = 0,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,       /* TRIM / deallocate: contents become undefined */
	BLK_OP_WRITE_ZEROES,
};

#define BLK_F_FUA      (1u << 0)   /* write through to stable media */
/* More requests follow from this CPU: the driver may queue this one without
 * telling the device (NVMe: no SQ doorbell write) until blk_commit().  The
 * submitter must call blk_commit(dev) after the last request of the batch.
 * Dropped for requests that are split or parked (they are started as soon
 * as they are issued). */
#define BLK_F_MORE     (1u << 1)

struct blk_seg {
	void *buf;            /* kernel virtual address, 4-byte aligned */
	uint32_t len;         /* multiple of the device's LBA size */
};

struct blk_dev;

struct blk_req {
	/* Filled by the submitter (blk_req_init). */
	uint8_t op;
	uint32_t flags;
	uint64_t lba;                 /* in logical blocks of the device */
	uint32_t nblocks;             /* 0 for FLUSH */
	struct blk_seg *segs;         /* READ/WRITE only */
	unsigned nsegs;
	void (*done)(struct blk_req *req);
	void *priv;

	/* Results, valid in done(). */
	int status;                   /* 0 or -errno */
	char error[96];               /* decoded device error, "" if none */

	/* Owned by the block layer and the driver while in flight. */
	struct blk_dev *dev;
	uint64_t submit_ns;
	struct blk_req *parent;       /* split piece -> the caller's request */
	struct blk_req *next;         /* software queue link */
	uint32_t pending;             /* pieces outstanding (parent only) */
	uint16_t queue;               /* hardware queue the driver was given */
	void *driver_data;            /* the driver's per-command state */
	uint32_t bl_flags;            /* block layer internal (blk.c) */
	struct blk_req *members;      /* merged request: the requests it carries */
};

struct blk_ops {
	/* Start a request that fits the device limits on hardware queue
	 * `queue`.  Return 0 when accepted, -EBUSY when the queue is full
	 * (retried later), other -errno to fail it.  Must not sleep. */
	int (*submit)(struct blk_dev *dev, struct blk_req *req, unsigned queue);
	/* Start whatever submit() queued with BLK_F_MORE on `queue`.
	 * Optional: a driver without it ignores BLK_F_MORE. */
	void (*commit)(struct blk_dev *dev, unsigned queue);
	/* Reap completions on a queue; returns how many.  Optional
	 * (-ENOTSUP): then polling mode is unavailable. */
	int (*poll)(struct blk_dev *dev, unsigned queue);
	/* Turn completion interrupts on or off.  Optional (-ENOTSUP). */
	int (*set_interrupts)(struct blk_dev *dev, bool on);
	/* Hybrid polling: while the device polls, let queue's completion
	 * interrupt through (on) for a poller about to sleep, or stop it
	 * again (off).  Must not lose a completion that arrived while it was
	 * stopped (MSI-X pending bit, PxIS re-evaluated).  Optional
	 * (-ENOTSUP: the poller keeps spinning). */
	int (*arm)(struct blk_dev *dev, unsigned queue, bool on);
	/* Extra lines for `lsblk -v`.  Optional. */
	void (*describe)(struct blk_dev *dev);
};

#define BLK_LAT_BUCKETS 24            /* log2 microsecond buckets */

struct blk_stats {
	uint64_t ops[5];              /* by enum blk_op */
	uint64_t bytes_read, bytes_written;
	uint64_t errors, splits, merges, requeues;
	uint64_t poll_sleeps;         /* hybrid polling: spins that ended asleep */
	uint64_t lat_us_log2[BLK_LAT_BUCKETS];  /* [i]: latency < 2^i us */
};

struct blk_dev {
	char name[16];                /* nvme0n1, sata0, ... */
	char model[41], serial[21], firmware[9];
	uint32_t lba_size;            /* 512 or 4096 */
	uint64_t nblocks;
	/* Limits the block layer splits to. */
	uint32_t max_transfer;        /* bytes per request */
	uint16_t max_segments;
	uint32_t virt_boundary;       /* 0, or: inside a request, segments may
				       * only meet at this (power of two)
				       * alignment, e.g. 4096 for NVMe PRPs */
	uint32_t max_discard_blocks;  /* 0 = no discard */
	uint32_t max_write_zeroes_blocks; /* 0 = emulated */
	bool write_cache;             /* volatile write cache present+enabled */
	bool fua;                     /* FUA writes supported */
	bool ramdisk;                 /* contents disposable (memdisk): a
				       * scratch disk for self-tests */
	unsigned nqueues;             /* hardware queues (>= 1) */
	unsigned queue_depth;         /* commands per queue */
	const struct blk_ops *ops;
	void *driver_data;

	/* Block layer state. */
	bool polling;
	uint64_t lat_ewma_ns;         /* recent read/write latency (1/8 EWMA) */
	bool dead;
	char dead_reason[96];
	struct blk_stats stats;
	struct blk_dev *next_dev;
	void *blk_private;            /* software queues, locks */
};

void blk_init(void);
/* 0, -EINVAL (incomplete description), -ENOMEM, -ENOSPC, -EEXIST.  Drivers
 * of real disks ask blk_selected() first and leave unselected disks alone. */
int blk_register(struct blk_dev *dev);
unsigned blk_count(void);
struct blk_dev *blk_get(unsigned index);
struct blk_dev *blk_find(const char *name);
/* Is a disk named `name` selected by config.txt "disks" (or is that
 * "all")?  Disk drivers call it before blk_register() and do not register
 * (nor use) a disk that is not selected; it prints why once. */
bool blk_selected(const char *name);
/* Is the device a scratch disk that self-tests may overwrite: a RAM disk
 * (memdisk), or a disk named by the boot argument scratch=NAME[,NAME...]? */
bool blk_is_scratch(const struct blk_dev *dev);

void blk_req_init(struct blk_req *req, enum blk_op op, uint64_t lba, uint32_t nblocks,
		  struct blk_seg *segs, unsigned nsegs, void (*done)(struct blk_req *), void *priv);
/* 0 when queued (done() will run), or -errno when rejected up front (done()
 * will not run; req->error says why). */
int blk_submit(struct blk_dev *dev, struct blk_req *req);
/* After requests submitted with BLK_F_MORE: start them (one doorbell). */
void blk_commit(struct blk_dev *dev);
/* Driver: a request handed to ops->submit() finished.  `error` may be NULL
 * or a decoded reason. */
void blk_complete(struct blk_req *req, int status, const char *error);
void blk_set_dead(struct blk_dev *dev, const char *reason);

/* Reap completions on every queue of dev (polling mode); returns count. */
int blk_poll(struct blk_dev *dev);
/* Hybrid polling (like Linux's): a poller with `inflight` requests out
 * spins at most blk_poll_spin_budget() since its last completion -- twice
 * the device's recent latency divided by inflight, 5..200 us --
 * and then sleeps on the completion interrupt of its queue, which
 * blk_poll_sleep() lets through for the sleep only.  A poller that spins
 * on while the host is slow to complete steals the CPU the device model
 * needs (qemu) and loses to interrupts; sleeping bounds that.
 * blk_poll_sleep: arm, reap once (what finished before the arm), sleep on
 * wq until cond(arg) or deadline_ns, disarm.  Returns 0, or -ENOTSUP when
 * the driver cannot arm (nothing was waited for).  Process context. */
uint64_t blk_poll_spin_budget(const struct blk_dev *dev, unsigned inflight);
int blk_poll_sleep(struct blk_dev *dev, unsigned queue, struct waitq *wq, bool (*cond)(void *), void *arg,
		   uint64_t deadline_ns);
/* Switch completion mode.  0 when the device is in the mode asked for
 * (also when it already was); -ENOTSUP when polling is asked of a driver
 * without ops->poll; the driver's -errno when set_interrupts() cannot do
 * it (e.g. -ENXIO: no interrupt vector), and then the mode is unchanged.
 * A set_interrupts() returning -ENOTSUP when asked to turn interrupts OFF
 * means "cannot mask them": polling then reaps alongside interrupts,
 * which is correct, so that alone is not an error. */
int blk_set_polling(struct blk_dev *dev, bool polling);

/* The one waiting primitive of the block layer (blk_sync.c), used by the
 * synchronous helpers, the power-off flush and anyone else who submitted
 * and must wait.  Waits until cond(arg) is true: polling dev in polling
 * mode, otherwise sleeping on wq (which done() must wake) and waking every
 * 50 ms to restart parked requests.  It follows the buffer-lifetime rule
 * above: it does not give up while the request is outstanding, and every
 * blk_sync_timeout_ms it logs "DEV: still waiting for WHAT after N s".
 * giveup_ns (absolute time_ns(), 0 = never) only where the device owns
 * nothing of the caller's, or at power-off: at that time it returns
 * -ETIMEDOUT, and a caller with a request outstanding must leak it and its
 * buffers.  Returns 0 once cond(arg) holds.  Process context. */
int blk_wait(struct blk_dev *dev, struct waitq *wq, bool (*cond)(void *), void *arg, const char *what,
	     uint64_t giveup_ns);
/* "still waiting" lines printed by blk_wait() since boot (tests). */
extern uint64_t blk_wait_reports;

/* Synchronous helpers: submit and blk_wait() for the result, which comes
 * from the device or from the driver's own timeout handling (they never
 * give up on their own while the device owns the buffer; see above).  On a
 * device error the decoded reason is copied to err (if not NULL).  Process
 * context only. */
int blk_read(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, void *buf, char *err, size_t errlen);
int blk_write(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, const void *buf, uint32_t flags,
	      char *err, size_t errlen);
int blk_flush(struct blk_dev *dev, char *err, size_t errlen);
int blk_discard(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, char *err, size_t errlen);
int blk_write_zeroes(struct blk_dev *dev, uint64_t lba, uint32_t nblocks, char *err, size_t errlen);

const char *blk_op_name(enum blk_op op);

/* Hardware queue the calling CPU submits to, and polling just that queue
 * (the benchmark's submitting thread uses these). */
unsigned blk_queue_of_cpu(const struct blk_dev *dev);
int blk_poll_queue(struct blk_dev *dev, unsigned queue);
/* Restart requests parked in the software queues (after -EBUSY). */
void blk_kick(struct blk_dev *dev);
void blk_stats_reset(struct blk_dev *dev);
/* Command timeout in ms from the boot argument blk_timeout_ms (default
 * 5000); drivers use it for their per-command deadline. */
uint32_t blk_timeout_ms(void);
/* Period of blk_wait()'s "still waiting" lines, default 30000 ms (tests
 * lower it). */
extern uint32_t blk_sync_timeout_ms;
/* Power-off step (order 30): flush every disk with a volatile write cache,
 * all at once, until deadline_ns; 0 or the first -errno, each failure
 * printed with the device name. */
int blk_shutdown_flush(uint64_t deadline_ns);
/* Decoded reason for a failed request (req->error, else strerror). */
const char *blk_req_reason(const struct blk_req *req);

#endif
