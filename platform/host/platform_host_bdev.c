/*
 * Host block device for platform/platform.h: a file, a completion thread pool
 * (or polled completion), fault injection, counters, delays, and an
 * optional volatile write cache for crash tests.  Host only.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include "platform/host/platform_host.h"

/* ---- block device: a file plus a completion thread pool ---- */
struct host_rule {
	enum plat_bio_op op;
	uint64_t off, len;
	int err;
	unsigned count;
};

struct plat_bdev {
	int fd;
	char name[64];
	uint64_t size;
	uint32_t bsize;
	bool polled;
	pthread_mutex_t m;
	pthread_cond_t c, idle;
	struct plat_bio **q;      /* ring of submitted bios */
	unsigned qhead, qlen, qcap;
	unsigned inflight;
	bool stop;
	unsigned nthreads;
	pthread_t *threads;
	struct host_rule rules[8];
	struct plat_host_bdev_stats st;
	uint64_t delay_ns;
	/* Volatile write cache: non-FUA writes are logged here, not in the
	 * file, until a FLUSH; a "crash" drops the log. */
	bool volatile_cache;
	struct host_wlog *wlog, **wlog_tail;
};

struct host_wlog {
	struct host_wlog *next;
	uint64_t off, len;
	uint8_t data[];
};

/* Gather a bio's segments into one buffer (volatile-cache paths). */
static uint8_t *host_gather(struct plat_bio *bio)
{
	uint8_t *p = malloc(bio->len ? bio->len : 1), *q = p;
	for (unsigned i = 0; i < bio->nvec; i++) {
		memcpy(q, bio->vec[i].buf, bio->vec[i].len);
		q += bio->vec[i].len;
	}
	return p;
}

static void host_scatter(struct plat_bio *bio, const uint8_t *p)
{
	for (unsigned i = 0; i < bio->nvec; i++) {
		memcpy(bio->vec[i].buf, p, bio->vec[i].len);
		p += bio->vec[i].len;
	}
}

/* Caller holds b->m. */
static void host_wlog_append(struct plat_bdev *b, uint64_t off, const uint8_t *data, uint64_t len)
{
	struct host_wlog *w = malloc(sizeof(*w) + len);
	w->next = NULL;
	w->off = off;
	w->len = len;
	memcpy(w->data, data, len);
	if (!b->wlog_tail)
		b->wlog_tail = &b->wlog;
	*b->wlog_tail = w;
	b->wlog_tail = &w->next;
}

/* Caller holds b->m: overlay logged writes on a buffer read from the file. */
static void host_wlog_apply(struct plat_bdev *b, uint64_t off, uint8_t *buf, uint64_t len)
{
	for (struct host_wlog *w = b->wlog; w; w = w->next) {
		uint64_t s = w->off > off ? w->off : off;
		uint64_t e = w->off + w->len < off + len ? w->off + w->len : off + len;
		if (s < e)
			memcpy(buf + (s - off), w->data + (s - w->off), e - s);
	}
}

/* Write back (or, for a crash, drop) the volatile log.  The log stays
 * visible to readers until its data is in the file: writing it back after
 * unhooking it, outside the lock, let a concurrent read see neither and
 * return stale bytes. */
static int host_wlog_flush(struct plat_bdev *b, bool drop)
{
	int err = 0;
	pthread_mutex_lock(&b->m);
	struct host_wlog *w = b->wlog;
	while (w) {
		struct host_wlog *n = w->next;
		if (!drop && pwrite(b->fd, w->data, w->len, (off_t)w->off) != (ssize_t)w->len)
			err = -PLAT_EIO;
		free(w);
		w = n;
	}
	b->wlog = NULL;
	b->wlog_tail = &b->wlog;
	pthread_mutex_unlock(&b->m);
	return err;
}

/* Volatile-cache execution of a read, write or flush; returns the status. */
static int host_bio_exec_volatile(struct plat_bdev *b, struct plat_bio *bio)
{
	int err = 0;
	if (bio->op == PLAT_BIO_FLUSH) {
		err = host_wlog_flush(b, false);
		if (!err && fdatasync(b->fd))
			err = -PLAT_EIO;
		return err;
	}
	uint8_t *buf;
	if (bio->op == PLAT_BIO_DISCARD) {
		/* Forgotten blocks read back as zeroes once the cache is
		 * written out: log zeroes like any other volatile write. */
		buf = calloc(1, bio->len ? bio->len : 1);
		pthread_mutex_lock(&b->m);
		host_wlog_append(b, bio->dev_off, buf, bio->len);
		pthread_mutex_unlock(&b->m);
	} else if (bio->op == PLAT_BIO_READ) {
		/* File read and log overlay under one lock hold: a flush in
		 * between would move the data from the log to the file behind
		 * the pread's back. */
		buf = malloc(bio->len ? bio->len : 1);
		pthread_mutex_lock(&b->m);
		if (pread(b->fd, buf, bio->len, (off_t)bio->dev_off) != (ssize_t)bio->len)
			err = -PLAT_EIO;
		host_wlog_apply(b, bio->dev_off, buf, bio->len);
		pthread_mutex_unlock(&b->m);
		host_scatter(bio, buf);
	} else {
		buf = host_gather(bio);
		pthread_mutex_lock(&b->m);
		/* FUA: durable now; also logged so later reads keep order. */
		if ((bio->flags & PLAT_BIO_FUA) &&
		    pwrite(b->fd, buf, bio->len, (off_t)bio->dev_off) != (ssize_t)bio->len)
			err = -PLAT_EIO;
		host_wlog_append(b, bio->dev_off, buf, bio->len);
		pthread_mutex_unlock(&b->m);
	}
	free(buf);
	return err;
}

void plat_host_bdev_set_volatile(struct plat_bdev *b, bool on)
{
	if (!on)
		host_wlog_flush(b, false);
	pthread_mutex_lock(&b->m);
	b->volatile_cache = on;
	pthread_mutex_unlock(&b->m);
}

void plat_host_bdev_crash(struct plat_bdev *b)
{
	host_wlog_flush(b, true);
}

static void host_bio_exec(struct plat_bdev *b, struct plat_bio *bio)
{
	int err = 0;
	pthread_mutex_lock(&b->m);
	for (unsigned i = 0; i < 8; i++) {
		struct host_rule *r = &b->rules[i];
		if (r->count && r->op == bio->op && bio->dev_off < r->off + r->len &&
		    r->off < bio->dev_off + bio->len) {
			r->count--;
			err = r->err;
			break;
		}
	}
	uint64_t delay = b->delay_ns;
	bool vol = b->volatile_cache;
	pthread_mutex_unlock(&b->m);
	if (delay)
		plat_sleep_ns(delay);
	if (!err && bio->op != PLAT_BIO_FLUSH &&
	    (bio->dev_off % b->bsize || bio->len % b->bsize || bio->dev_off + bio->len > b->size))
		err = -PLAT_EINVAL;
	if (!err && vol) {
		err = host_bio_exec_volatile(b, bio);
	} else if (!err && bio->op == PLAT_BIO_DISCARD) {
		if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)bio->dev_off,
			      (off_t)bio->len))
			err = -PLAT_EIO;
	} else if (!err) {
		struct iovec iov[64];
		uint64_t off = bio->dev_off;
		unsigned i = 0;
		while (!err && i < bio->nvec) {
			unsigned n = 0;
			size_t bytes = 0;
			for (; i < bio->nvec && n < 64; i++, n++) {
				iov[n].iov_base = bio->vec[i].buf;
				iov[n].iov_len = bio->vec[i].len;
				bytes += bio->vec[i].len;
			}
			ssize_t r;
			if (bio->op == PLAT_BIO_READ)
				r = preadv(b->fd, iov, (int)n, (off_t)off);
			else if (bio->op == PLAT_BIO_WRITE)
				r = pwritev(b->fd, iov, (int)n, (off_t)off);
			else
				r = 0;
			if (r < 0 || (size_t)r != bytes)
				err = -PLAT_EIO;
			off += bytes;
		}
		if (!err && (bio->op == PLAT_BIO_FLUSH || (bio->flags & PLAT_BIO_FUA)))
			if (fdatasync(b->fd))
				err = -PLAT_EIO;
	}
	pthread_mutex_lock(&b->m);
	if (bio->op == PLAT_BIO_READ) {
		b->st.reads++;
		b->st.read_bytes += bio->len;
	} else if (bio->op == PLAT_BIO_WRITE) {
		b->st.writes++;
		b->st.write_bytes += bio->len;
		if (bio->flags & PLAT_BIO_FUA)
			b->st.fua_writes++;
	} else if (bio->op == PLAT_BIO_DISCARD) {
		b->st.discards++;
		b->st.discard_bytes += bio->len;
	} else {
		b->st.flushes++;
	}
	if (bio->op != PLAT_BIO_DISCARD && bio->len > b->st.max_bio_bytes)
		b->st.max_bio_bytes = bio->len;
	pthread_mutex_unlock(&b->m);
	bio->status = err;
	bio->end_io(bio);
	pthread_mutex_lock(&b->m);
	b->inflight--;
	if (!b->inflight)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->m);
}

static struct plat_bio *host_dequeue(struct plat_bdev *b)
{
	struct plat_bio *bio = b->q[b->qhead];
	b->qhead = (b->qhead + 1) % b->qcap;
	b->qlen--;
	return bio;
}

static void *host_bdev_worker(void *p)
{
	struct plat_bdev *b = p;
	pthread_mutex_lock(&b->m);
	for (;;) {
		while (!b->qlen && !b->stop)
			pthread_cond_wait(&b->c, &b->m);
		if (!b->qlen && b->stop)
			break;
		struct plat_bio *bio = host_dequeue(b);
		pthread_mutex_unlock(&b->m);
		host_bio_exec(b, bio);
		pthread_mutex_lock(&b->m);
	}
	pthread_mutex_unlock(&b->m);
	return NULL;
}

struct plat_bdev *plat_host_bdev_open(const char *path, uint64_t size, uint32_t bsize,
				      unsigned nthreads, bool polled)
{
	struct plat_bdev *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->fd = open(path, O_RDWR | O_CREAT, 0600);
	if (b->fd < 0 || ftruncate(b->fd, (off_t)size)) {
		if (b->fd >= 0)
			close(b->fd);
		free(b);
		return NULL;
	}
	snprintf(b->name, sizeof(b->name), "%s", path);
	b->size = size;
	b->bsize = bsize;
	b->polled = polled;
	b->qcap = 4096;
	b->q = calloc(b->qcap, sizeof(*b->q));
	pthread_mutex_init(&b->m, NULL);
	pthread_cond_init(&b->c, NULL);
	pthread_cond_init(&b->idle, NULL);
	b->nthreads = polled ? 0 : nthreads;
	b->threads = calloc(b->nthreads + 1, sizeof(pthread_t));
	for (unsigned i = 0; i < b->nthreads; i++)
		pthread_create(&b->threads[i], NULL, host_bdev_worker, b);
	return b;
}

uint32_t plat_bdev_block_size(struct plat_bdev *b) { return b->bsize; }
uint64_t plat_bdev_size(struct plat_bdev *b) { return b->size; }
const char *plat_bdev_name(struct plat_bdev *b) { return b->name; }

void plat_bdev_submit(struct plat_bio *bio)
{
	struct plat_bdev *b = bio->bdev;
	pthread_mutex_lock(&b->m);
	b->inflight++;
	if (!b->nthreads && !b->polled) {
		pthread_mutex_unlock(&b->m);
		host_bio_exec(b, bio);
		return;
	}
	while (b->qlen == b->qcap) {
		/* Full ring: let a worker (or the poller) make room. */
		pthread_mutex_unlock(&b->m);
		if (b->polled)
			plat_bdev_poll(b, 1);
		else
			sched_yield();
		pthread_mutex_lock(&b->m);
	}
	b->q[(b->qhead + b->qlen) % b->qcap] = bio;
	b->qlen++;
	pthread_cond_signal(&b->c);
	pthread_mutex_unlock(&b->m);
}

int plat_bdev_poll(struct plat_bdev *b, unsigned budget)
{
	if (!b->polled)
		return -PLAT_ENOTSUP;
	int n = 0;
	while ((unsigned)n < budget) {
		pthread_mutex_lock(&b->m);
		if (!b->qlen) {
			pthread_mutex_unlock(&b->m);
			break;
		}
		struct plat_bio *bio = host_dequeue(b);
		b->st.polled_bios++;
		pthread_mutex_unlock(&b->m);
		host_bio_exec(b, bio);
		n++;
	}
	return n;
}

void plat_bdev_close(struct plat_bdev *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->m);
	while (b->inflight && !b->polled)
		pthread_cond_wait(&b->idle, &b->m);
	b->stop = true;
	pthread_cond_broadcast(&b->c);
	pthread_mutex_unlock(&b->m);
	if (b->polled)
		while (plat_bdev_poll(b, 64) > 0)
			;
	for (unsigned i = 0; i < b->nthreads; i++)
		pthread_join(b->threads[i], NULL);
	host_wlog_flush(b, true);
	close(b->fd);
	free(b->threads);
	free(b->q);
	pthread_cond_destroy(&b->c);
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->m);
	free(b);
}

void plat_host_bdev_inject(struct plat_bdev *b, enum plat_bio_op op, uint64_t off,
			   uint64_t len, int err, unsigned count)
{
	pthread_mutex_lock(&b->m);
	for (unsigned i = 0; i < 8; i++) {
		struct host_rule *r = &b->rules[i];
		if (count == 0) {
			if (r->op == op && r->off == off && r->len == len)
				r->count = 0;
			continue;
		}
		if (!r->count) {
			*r = (struct host_rule){ op, off, len, err, count };
			break;
		}
	}
	pthread_mutex_unlock(&b->m);
}

void plat_host_bdev_stats(struct plat_bdev *b, struct plat_host_bdev_stats *out)
{
	pthread_mutex_lock(&b->m);
	*out = b->st;
	pthread_mutex_unlock(&b->m);
}

void plat_host_bdev_set_delay(struct plat_bdev *b, uint64_t ns)
{
	pthread_mutex_lock(&b->m);
	b->delay_ns = ns;
	pthread_mutex_unlock(&b->m);
}
