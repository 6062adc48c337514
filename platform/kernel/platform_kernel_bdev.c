/*
 * Kernel implementation of platform/platform.h, part 2: block devices over the
 * block layer (drivers/blk/blk.h).  A plat_bio becomes one blk_req whose
 * segments are the bio's vectors (the block layer splits to the device's
 * limits).  Completions are deferred from interrupt context to a per-CPU
 * completion thread: the CPU that took the interrupt runs end_io, so the
 * folio and bio it touches are probably still in its cache, and no
 * cross-CPU wake-up is needed.
 */
#include "platform/platform.h"
#include "platform/kernel/platform_kernel.h"
#include "drivers/blk/blk.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/sync.h"
#include "kernel/time.h"

#define PLAT_KBIO_INLINE_SEGS 4

struct plat_kbio {
	struct blk_req req;
	struct plat_bio *bio;
	struct plat_kbio *next;
	bool polled;                  /* counted in plat_polled_inflight */
	bool reserve;                 /* from plat_kbio_reserve, not the heap */
	struct blk_seg *segs;
	struct blk_seg inline_segs[PLAT_KBIO_INLINE_SEGS];
};

struct plat_bdev {
	struct blk_dev *dev;
	uint64_t inflight;            /* atomic: submitted, end_io not yet returned */
	struct waitq idle;            /* close waits here for inflight == 0 */
};

/* One completion list per CPU; done() appends to the current CPU's. */
struct plat_cpl {
	spinlock_t lock;
	struct plat_kbio *head, *tail;
	struct waitq wq;
	struct thread *thread;
	uint64_t max_batch;
};

static struct plat_cpl *plat_cpls[MAX_CPUS];
static unsigned plat_ncpl;
static struct waitq plat_poll_wq = WAITQ_INIT("iomap-poll");
static uint64_t plat_polled_inflight;   /* atomic: bios in flight on polling devices */
static struct plat_kernel_stats plat_kstats;

/*
 * When the heap has no wrapper for a bio, one comes from this small static
 * reserve, so even that failure completes through the completion thread
 * like any other: end_io never runs on the submitter's stack, where the
 * caller may hold locks end_io takes.  A reserve entry goes back before
 * its end_io runs; a submitter that finds the reserve empty sleeps until
 * one does (process context, as plat_bdev_submit always is).
 */
#define PLAT_KBIO_RESERVE 16
static struct plat_kbio plat_kbio_reserve[PLAT_KBIO_RESERVE];
static struct plat_kbio *plat_kbio_reserve_free;
static bool plat_kbio_reserve_ready;
static spinlock_t plat_kbio_reserve_lock = SPINLOCK_INIT("plat-kbio-reserve");
static struct waitq plat_kbio_reserve_wq = WAITQ_INIT("plat-kbio-reserve");
struct plat_bdev *plat_kbio_fail_next;   /* self-tests: its next wrapper allocation fails */

static struct plat_kbio *plat_kbio_reserve_try(void)
{
	uint64_t fl = spin_lock_irqsave(&plat_kbio_reserve_lock);
	if (!plat_kbio_reserve_ready) {
		for (unsigned i = 0; i < PLAT_KBIO_RESERVE; i++) {
			plat_kbio_reserve[i].next = plat_kbio_reserve_free;
			plat_kbio_reserve_free = &plat_kbio_reserve[i];
		}
		plat_kbio_reserve_ready = true;
	}
	struct plat_kbio *kb = plat_kbio_reserve_free;
	if (kb)
		plat_kbio_reserve_free = kb->next;
	spin_unlock_irqrestore(&plat_kbio_reserve_lock, fl);
	return kb;
}

static bool plat_kbio_reserve_has(void *arg)
{
	(void)arg;
	return __atomic_load_n(&plat_kbio_reserve_free, __ATOMIC_ACQUIRE) != NULL;
}

static struct plat_kbio *plat_kbio_reserve_get(void)
{
	struct plat_kbio *kb;
	while (!(kb = plat_kbio_reserve_try()))
		waitq_wait_until(&plat_kbio_reserve_wq, plat_kbio_reserve_has, NULL, time_ns() + NS_PER_S);
	kb->reserve = true;
	return kb;
}

static void plat_kbio_free(struct plat_kbio *kb)
{
	if (!kb->reserve) {
		kfree(kb);
		return;
	}
	uint64_t fl = spin_lock_irqsave(&plat_kbio_reserve_lock);
	kb->next = plat_kbio_reserve_free;
	plat_kbio_reserve_free = kb;
	spin_unlock_irqrestore(&plat_kbio_reserve_lock, fl);
	waitq_wake_all(&plat_kbio_reserve_wq);
}

static void *plat_kbio_alloc(struct plat_bdev *b, size_t size)
{
	if (__atomic_load_n(&plat_kbio_fail_next, __ATOMIC_ACQUIRE) == b &&
	    __atomic_compare_exchange_n(&plat_kbio_fail_next, &b, NULL, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return NULL;
	return kmalloc(size);
}

static struct plat_cpl *plat_cpl_here(void)
{
	/* Interrupts may land on a CPU started after plat_init (never, today:
	 * all CPUs are up first); fall back to CPU 0's list. */
	unsigned i = this_cpu()->index;
	return i < plat_ncpl && plat_cpls[i] ? plat_cpls[i] : plat_cpls[0];
}

static void plat_kbio_finish(struct plat_kbio *kb)
{
	struct plat_bio *bio = kb->bio;
	struct plat_bdev *b = bio->bdev;
	bool polled = kb->polled;
	if (bio->status)
		plat_add(&plat_kstats.bios_failed, 1);
	if (kb->segs != kb->inline_segs)
		kfree(kb->segs);
	plat_kbio_free(kb);
	bio->end_io(bio);
	if (polled)
		plat_sub(&plat_polled_inflight, 1);
	/* Last: close() may free b as soon as inflight reaches zero. */
	if (plat_sub(&b->inflight, 1) == 0)
		waitq_wake_all(&b->idle);
}

static bool plat_cpl_ready(void *arg)
{
	struct plat_cpl *c = arg;
	return __atomic_load_n(&c->head, __ATOMIC_ACQUIRE) != NULL;
}

static void plat_cpl_thread(void *arg)
{
	struct plat_cpl *c = arg;
	for (;;) {
		waitq_wait_until(&c->wq, plat_cpl_ready, c, time_ns() + NS_PER_S);
		uint64_t fl = spin_lock_irqsave(&c->lock);
		struct plat_kbio *kb = c->head;
		c->head = c->tail = NULL;
		spin_unlock_irqrestore(&c->lock, fl);
		uint64_t n = 0;
		while (kb) {
			struct plat_kbio *next = kb->next;
			plat_kbio_finish(kb);
			kb = next;
			n++;
		}
		if (n > c->max_batch)
			c->max_batch = n;
	}
}

/* Any context: queue for the completion thread of this CPU. */
static void plat_kbio_defer(struct plat_kbio *kb)
{
	struct plat_cpl *c = plat_cpl_here();
	kb->next = NULL;
	uint64_t fl = spin_lock_irqsave(&c->lock);
	if (c->tail)
		c->tail->next = kb;
	else
		c->head = kb;
	c->tail = kb;
	spin_unlock_irqrestore(&c->lock, fl);
	plat_add(&plat_kstats.completions_deferred, 1);
	waitq_wake_one(&c->wq);
}

static void plat_kbio_done(struct blk_req *req)
{
	struct plat_kbio *kb = req->priv;
	kb->bio->status = req->status;
	if (req->status && req->error[0])
		kprintf("iomap: %s: %s at byte %llu+%llu failed: %s\n", kb->req.dev->name,
			blk_op_name(req->op), (unsigned long long)kb->bio->dev_off,
			(unsigned long long)kb->bio->len, req->error);
	plat_kbio_defer(kb);
}

/* Polling devices complete nothing unless someone reaps them: this thread
 * does, while any bio is in flight on one, and sleeps otherwise. */
static bool plat_poll_needed(void *arg)
{
	(void)arg;
	return plat_load(&plat_polled_inflight) != 0;
}

static void plat_poll_thread(void *arg)
{
	(void)arg;
	for (;;) {
		waitq_wait_until(&plat_poll_wq, plat_poll_needed, NULL, time_ns() + NS_PER_S);
		if (!plat_poll_needed(NULL))
			continue;
		/* Devices are never unregistered: walking the registry without
		 * a lock is safe.  Reaping a device nobody of ours uses is
		 * harmless (its waiters poll it themselves). */
		int reaped = 0;
		for (unsigned i = 0; i < blk_count(); i++) {
			struct blk_dev *d = blk_get(i);
			if (d->polling) {
				int r = blk_poll(d);
				if (r > 0)
					reaped += r;
			}
		}
		plat_add(&plat_kstats.polls, 1);
		if (reaped)
			thread_yield();
		else
			thread_sleep_ns(50 * NS_PER_US);
	}
}

int plat_kernel_bdev_init(void)
{
	if (plat_ncpl)
		return 0;
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (cpus[i] && cpus[i]->online)
			n = i + 1;
	for (unsigned i = 0; i < n; i++) {
		if (!cpus[i] || !cpus[i]->online)
			continue;
		struct plat_cpl *c = kzalloc(sizeof(*c));
		if (!c)
			return -PLAT_ENOMEM;
		spin_init(&c->lock, "iomap-cpl");
		waitq_init(&c->wq, "iomap-cpl");
		plat_cpls[i] = c;
		char name[24];
		ksnprintf(name, sizeof(name), "iomap-cpl/%u", i);
		c->thread = thread_create(name, plat_cpl_thread, c, (int)i);
		if (!c->thread)
			return -PLAT_ENOMEM;
	}
	if (!plat_cpls[0])
		return -PLAT_ENXIO;
	plat_ncpl = n;
	if (!thread_create("iomap-poll", plat_poll_thread, NULL, THREAD_ANY_CPU))
		return -PLAT_ENOMEM;
	return 0;
}

struct plat_bdev *plat_kernel_bdev_open(struct blk_dev *dev)
{
	struct plat_bdev *b = kzalloc(sizeof(*b));
	if (!b)
		return NULL;
	b->dev = dev;
	waitq_init(&b->idle, "plat-bdev-idle");
	return b;
}

struct blk_dev *plat_kernel_bdev_dev(struct plat_bdev *b) { return b->dev; }
uint32_t plat_bdev_block_size(struct plat_bdev *b) { return b->dev->lba_size; }
uint64_t plat_bdev_size(struct plat_bdev *b) { return b->dev->nblocks * b->dev->lba_size; }
const char *plat_bdev_name(struct plat_bdev *b) { return b->dev->name; }

void plat_bdev_submit(struct plat_bio *bio)
{
	struct plat_bdev *b = bio->bdev;
	struct blk_dev *d = b->dev;
	struct plat_kbio *kb = plat_kbio_alloc(b, sizeof(*kb));
	plat_add(&b->inflight, 1);
	plat_add(&plat_kstats.bios, 1);
	if (bio->op == PLAT_BIO_READ)
		plat_add(&plat_kstats.read_bytes, bio->len);
	else if (bio->op == PLAT_BIO_WRITE)
		plat_add(&plat_kstats.write_bytes, bio->len);
	bool no_memory = !kb;
	if (no_memory)
		kb = plat_kbio_reserve_get();     /* fails the bio, below */
	else
		kb->reserve = false;
	kb->bio = bio;
	kb->polled = false;
	kb->segs = kb->inline_segs;
	if (no_memory) {
		bio->status = -PLAT_ENOMEM;
		goto defer;
	}
	if (bio->nvec > PLAT_KBIO_INLINE_SEGS) {
		kb->segs = plat_kbio_alloc(b, bio->nvec * sizeof(struct blk_seg));
		if (!kb->segs) {
			kb->segs = kb->inline_segs;
			bio->status = -PLAT_ENOMEM;
			goto defer;
		}
	}
	for (unsigned i = 0; i < bio->nvec; i++) {
		kb->segs[i].buf = bio->vec[i].buf;
		kb->segs[i].len = bio->vec[i].len;
	}
	uint32_t lbs = d->lba_size;
	if (bio->op == PLAT_BIO_FLUSH) {
		blk_req_init(&kb->req, BLK_OP_FLUSH, 0, 0, NULL, 0, plat_kbio_done, kb);
	} else {
		if ((bio->dev_off | bio->len) % lbs) {
			kprintf("iomap: %s: bio at byte %llu+%llu not a multiple of the %u-byte block\n",
				d->name, (unsigned long long)bio->dev_off, (unsigned long long)bio->len, lbs);
			bio->status = -PLAT_EINVAL;
			goto defer;
		}
		if (bio->op == PLAT_BIO_DISCARD && !d->max_discard_blocks) {
			bio->status = -PLAT_ENOTSUP;
			goto defer;
		}
		static const uint8_t blk_ops[] = { [PLAT_BIO_READ] = BLK_OP_READ, [PLAT_BIO_WRITE] = BLK_OP_WRITE,
						   [PLAT_BIO_DISCARD] = BLK_OP_DISCARD };
		blk_req_init(&kb->req, blk_ops[bio->op], bio->dev_off / lbs, (uint32_t)(bio->len / lbs),
			     bio->op == PLAT_BIO_DISCARD ? NULL : kb->segs,
			     bio->op == PLAT_BIO_DISCARD ? 0 : bio->nvec, plat_kbio_done, kb);
		if (bio->op == PLAT_BIO_WRITE && (bio->flags & PLAT_BIO_FUA))
			kb->req.flags |= BLK_F_FUA;
	}
	/* Counted before submitting: the completion may come first. */
	kb->polled = d->polling;
	if (kb->polled)
		plat_add(&plat_polled_inflight, 1);
	int rc = blk_submit(d, &kb->req);
	if (rc == 0) {
		if (kb->polled)
			waitq_wake_all(&plat_poll_wq);
		return;
	}
	kprintf("iomap: %s: %s at byte %llu+%llu rejected: %s\n", d->name, blk_op_name(kb->req.op),
		(unsigned long long)bio->dev_off, (unsigned long long)bio->len, blk_req_reason(&kb->req));
	bio->status = rc;
defer:
	/* end_io never runs on the submitter's stack: the caller may hold
	 * locks end_io takes. */
	plat_kbio_defer(kb);
}

/* Polled completion on the calling thread's behalf: reap the device; the
 * reaped bios' end_io runs on the completion thread of this CPU. */
int plat_bdev_poll(struct plat_bdev *b, unsigned budget)
{
	(void)budget;
	if (!b->dev->polling)
		return -PLAT_ENOTSUP;
	int n = blk_poll(b->dev);
	return n < 0 ? 0 : n;
}

static bool plat_bdev_idle(void *arg)
{
	return plat_load(&((struct plat_bdev *)arg)->inflight) == 0;
}

void plat_bdev_close(struct plat_bdev *b)
{
	while (waitq_wait_until(&b->idle, plat_bdev_idle, b, time_ns() + 10 * NS_PER_S))
		kprintf("iomap: %s: close still waiting for %llu bios\n", b->dev->name,
			(unsigned long long)plat_load(&b->inflight));
	kfree(b);
}

void plat_kernel_stats(struct plat_kernel_stats *out)
{
	*out = plat_kstats;
	out->max_batch = 0;
	for (unsigned i = 0; i < plat_ncpl; i++)
		if (plat_cpls[i] && plat_cpls[i]->max_batch > out->max_batch)
			out->max_batch = plat_cpls[i]->max_batch;
}
