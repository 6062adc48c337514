/*
 * Portable helpers built on the platform interface: formatting and
 * synchronous block I/O.
 * A synchronous request submits one bio and waits for its end_io; on a
 * polled device (plat_bdev_poll does not return -ENOTSUP) the waiting
 * thread runs completions itself.
 */
#include "platform/platform.h"

int plat_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = plat_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

struct plat_sync {
	int done;
	int woken;      /* the completer has left plat_wake_all */
	struct plat_waitq *wq;
};

static void plat_sync_end_io(struct plat_bio *bio)
{
	struct plat_sync *s = bio->private;
	/* s lives on the waiter's stack and the waiter leaves as soon as it
	 * sees done (it may be polling), so signal "woken" last. */
	plat_store(&s->done, 1);
	plat_wake_all(s->wq);
	plat_store(&s->woken, 1);
}

static bool plat_sync_done(void *arg)
{
	return plat_load(&((struct plat_sync *)arg)->done) != 0;
}

/* Synchronous I/O is bounded: a device that does not answer within a
 * minute is reported as an I/O error instead of hanging the caller. */
#define PLAT_SYNC_IO_TIMEOUT_NS (60ull * 1000000000ull)

static int plat_bio_sync(struct plat_bio *bio)
{
	struct plat_sync s = { 0, 0, plat_waitq_new("plat-sync") };
	if (!s.wq)
		return -PLAT_ENOMEM;
	bio->private = &s;
	bio->end_io = plat_sync_end_io;
	plat_bdev_submit(bio);
	uint64_t deadline = plat_time_ns() + PLAT_SYNC_IO_TIMEOUT_NS;
	int ret = 0;
	while (!plat_sync_done(&s)) {
		int n = plat_bdev_poll(bio->bdev, 16);
		if (n == -PLAT_ENOTSUP) {
			ret = plat_wait_until(s.wq, plat_sync_done, &s, deadline);
			break;
		}
		if (plat_time_ns() >= deadline) {
			ret = -PLAT_ETIMEDOUT;
			break;
		}
		if (n == 0)
			plat_yield();
	}
	if (ret) {
		/* The bio still belongs to the device; it must finish before
		 * the stack frame goes away, so keep waiting (logged). */
		plat_log(PLAT_LOG_ERR, "%s: sync bio timed out", plat_bdev_name(bio->bdev));
		while (!plat_sync_done(&s))
			if (plat_bdev_poll(bio->bdev, 16) == -PLAT_ENOTSUP)
				plat_wait_until(s.wq, plat_sync_done, &s, plat_time_ns() + PLAT_SYNC_IO_TIMEOUT_NS);
	}
	while (!plat_load(&s.woken))
		plat_yield();
	plat_waitq_free(s.wq);
	return ret ? -PLAT_EIO : bio->status;
}

int plat_bdev_rw(struct plat_bdev *b, enum plat_bio_op op, uint64_t dev_off, void *buf, size_t len)
{
	struct plat_bio bio = { 0 };
	bio.bdev = b;
	bio.op = op;
	bio.dev_off = dev_off;
	bio.len = len;
	bio.vec = bio.inline_vec;
	bio.maxvec = PLAT_BIO_INLINE_VECS;
	bio.nvec = 1;
	bio.vec[0].buf = buf;
	bio.vec[0].len = (uint32_t)len;
	return plat_bio_sync(&bio);
}

int plat_bdev_flush(struct plat_bdev *b)
{
	struct plat_bio bio = { 0 };
	bio.bdev = b;
	bio.op = PLAT_BIO_FLUSH;
	bio.vec = bio.inline_vec;
	return plat_bio_sync(&bio);
}
