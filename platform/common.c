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
	int holders;    /* the waiter and the completer: the last frees it */
	struct plat_waitq *wq;
};

/* The waiter goes on as soon as it sees done, while the completer may
 * still be inside the wake-up (under TCG its IPI is slow: a waiter that
 * spun until the completer left lost whole scheduler slices to other
 * threads), so whichever lets go last frees the record. */
static void plat_sync_put(struct plat_sync *s)
{
	if (plat_sub(&s->holders, 1) == 0) {
		plat_waitq_free(s->wq);
		plat_free(s);
	}
}

static void plat_sync_end_io(struct plat_bio *bio)
{
	struct plat_sync *s = bio->private;
	plat_store(&s->done, 1);
	plat_wake_all(s->wq);
	plat_sync_put(s);
}

static bool plat_sync_done(void *arg)
{
	return plat_load(&((struct plat_sync *)arg)->done) != 0;
}

int plat_wait_owned(struct plat_waitq *q, bool (*cond)(void *), void *arg,
		    struct plat_bdev *poll_dev, uint64_t soft_deadline_ns, const char *what)
{
	uint64_t start = plat_time_ns(), next_log = start + PLAT_OWNED_LOG_NS;
	bool polled = poll_dev != NULL;

	while (!cond(arg)) {
		uint64_t now = plat_time_ns();
		if (now >= next_log) {
			plat_log(PLAT_LOG_ERR, "%s: still waiting after %llu s (memory still owned by the device)",
				 what, (unsigned long long)((now - start) / 1000000000ull));
			next_log = now + PLAT_OWNED_LOG_NS;
		}
		if (polled) {
			int n = plat_bdev_poll(poll_dev, 16);
			if (n == -PLAT_ENOTSUP)
				polled = false;
			else if (n == 0)
				plat_yield();
			continue;
		}
		if (q)
			plat_wait_until(q, cond, arg, next_log);
		else
			plat_sleep_ns(1000000);     /* no one wakes us: look again in 1 ms */
	}
	return plat_time_ns() > soft_deadline_ns ? -PLAT_ETIMEDOUT : 0;
}

/* Synchronous I/O reports a device that does not answer within a minute as
 * an I/O error, but only once the bio is back (it may live on the caller's
 * stack). */
uint64_t plat_sync_io_timeout_ns = 60ull * 1000000000ull;

static int plat_bio_sync(struct plat_bio *bio)
{
	struct plat_sync *s = plat_zalloc(sizeof(*s));
	if (!s || !(s->wq = plat_waitq_new("plat-sync"))) {
		plat_free(s);
		return -PLAT_ENOMEM;
	}
	s->holders = 2;
	bio->private = s;
	bio->end_io = plat_sync_end_io;
	plat_bdev_submit(bio);
	int ret = plat_wait_owned(s->wq, plat_sync_done, s, bio->bdev,
				  plat_time_ns() + plat_sync_io_timeout_ns, plat_bdev_name(bio->bdev));
	if (ret)
		plat_log(PLAT_LOG_ERR, "%s: synchronous %s at byte %llu took over %llu ms, reported as I/O error",
			 plat_bdev_name(bio->bdev), bio->op == PLAT_BIO_READ ? "read" : "write",
			 (unsigned long long)bio->dev_off,
			 (unsigned long long)(plat_sync_io_timeout_ns / 1000000ull));
	plat_sync_put(s);
	return ret ? -PLAT_EIO : bio->status;
}

/* One synchronous bio; buf NULL for the ops that carry no data. */
static int plat_bdev_sync_op(struct plat_bdev *b, enum plat_bio_op op, uint64_t dev_off, void *buf, uint64_t len)
{
	struct plat_bio bio = { 0 };
	plat_bio_setup(&bio, b, op, dev_off, bio.inline_vec, PLAT_BIO_INLINE_VECS, NULL);
	if (buf)
		plat_bio_append(&bio, buf, (uint32_t)len, false);
	else
		bio.len = len;
	return plat_bio_sync(&bio);
}

int plat_bdev_rw(struct plat_bdev *b, enum plat_bio_op op, uint64_t dev_off, void *buf, size_t len)
{
	return plat_bdev_sync_op(b, op, dev_off, buf, len);
}

int plat_bdev_flush(struct plat_bdev *b)
{
	return plat_bdev_sync_op(b, PLAT_BIO_FLUSH, 0, NULL, 0);
}

int plat_bdev_discard(struct plat_bdev *b, uint64_t dev_off, uint64_t len)
{
	return plat_bdev_sync_op(b, PLAT_BIO_DISCARD, dev_off, NULL, len);
}
