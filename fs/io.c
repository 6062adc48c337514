/*
 * Device I/O for cowfs, in 4 KiB blocks.  Reads are synchronous, except
 * the node cache's read-ahead of a tree scan (ncache.c); commit writes go
 * out as one batch of asynchronous bios that the committer waits for (the
 * order among them does not matter: nothing points to a new block until
 * the superblock is written after a FLUSH).
 */
#include "fs/cowfs_int.h"

/* A device that does not answer within a minute is reported as an I/O
 * error (the bios are still waited for: the device owns their buffers). */
#define COWFS_IO_TIMEOUT_NS (60ull * 1000000000ull)

struct cowfs_iob {
	struct cowfs *fs;
	struct plat_waitq *wq;
	int refs;           /* the waiter's, and one per bio until its end_io is done */
	int pending;
	int err;
	const char *what;   /* named when the device is late */
};

struct cowfs_iob *cowfs_iob_new(struct cowfs *fs)
{
	struct cowfs_iob *iob = plat_zalloc(sizeof(*iob));
	if (!iob)
		return NULL;
	iob->fs = fs;
	iob->refs = 1;
	iob->what = "cowfs: commit writes";
	iob->wq = plat_waitq_new("cowfs-iob");
	if (!iob->wq) {
		plat_free(iob);
		return NULL;
	}
	return iob;
}

/* Whoever lets go last frees the batch: the waiter may return as soon as
 * the last bio is done, while that bio's end_io is still waking it (under
 * TCG the wake-up's IPI takes long enough that a waiter spinning for the
 * waker to leave lost whole scheduler slices to other threads). */
static void cowfs_iob_put(struct cowfs_iob *iob)
{
	if (plat_sub(&iob->refs, 1) == 0) {
		plat_waitq_free(iob->wq);
		plat_free(iob);
	}
}

static void cowfs_iob_end_io(struct plat_bio *bio)
{
	struct cowfs_iob *iob = bio->private;
	int zero = 0;
	if (bio->status)
		plat_cas(&iob->err, &zero, bio->status);
	plat_free(bio);
	plat_sub(&iob->pending, 1);
	plat_wake_all(iob->wq);
	cowfs_iob_put(iob);
}

static void cowfs_iob_submit(struct cowfs_iob *iob, enum plat_bio_op op, uint64_t blk, const void *buf,
			     uint32_t len, unsigned flags)
{
	struct cowfs *fs = iob->fs;
	struct plat_bio *bio = plat_zalloc(sizeof(*bio));
	if (!bio) {
		int zero = 0;
		plat_cas(&iob->err, &zero, -PLAT_ENOMEM);
		return;
	}
	if (fs->hooks && op == PLAT_BIO_WRITE && fs->hooks->before_write)
		fs->hooks->before_write(fs->hooks->arg, blk << CFS_BLOCK_SHIFT, buf, len, flags);
	if (fs->hooks && op == PLAT_BIO_FLUSH && fs->hooks->before_flush)
		fs->hooks->before_flush(fs->hooks->arg);
	bio->bdev = fs->bdev;
	bio->op = op;
	bio->flags = flags;
	bio->dev_off = blk << CFS_BLOCK_SHIFT;
	bio->len = op == PLAT_BIO_FLUSH ? 0 : len;
	bio->vec = bio->inline_vec;
	bio->maxvec = PLAT_BIO_INLINE_VECS;
	bio->nvec = op == PLAT_BIO_FLUSH ? 0 : 1;
	bio->vec[0].buf = (void *)buf;
	bio->vec[0].len = len;
	bio->end_io = cowfs_iob_end_io;
	bio->private = iob;
	plat_add(&iob->pending, 1);
	plat_add(&iob->refs, 1);
	plat_bdev_submit(bio);
}

void cowfs_iob_write(struct cowfs_iob *iob, uint64_t blk, const void *buf, uint32_t len, unsigned flags)
{
	cowfs_iob_submit(iob, PLAT_BIO_WRITE, blk, buf, len, flags);
}

void cowfs_iob_read(struct cowfs_iob *iob, uint64_t blk, void *buf, uint32_t len)
{
	iob->what = "cowfs: node read-ahead";
	cowfs_iob_submit(iob, PLAT_BIO_READ, blk, buf, len, 0);
}

static bool cowfs_iob_idle(void *arg)
{
	return plat_load(&((struct cowfs_iob *)arg)->pending) == 0;
}

/* The bios' buffers belong to the device until every end_io ran, so this
 * wait never gives up (plat_wait_owned); a late device is an error. */
int cowfs_iob_wait(struct cowfs_iob *iob)
{
	int late = plat_wait_owned(iob->wq, cowfs_iob_idle, iob, iob->fs->bdev,
				   plat_time_ns() + COWFS_IO_TIMEOUT_NS, iob->what);
	int err = plat_load(&iob->err);
	if (!err && late)
		err = -PLAT_EIO;
	cowfs_iob_put(iob);
	return err;
}

int cowfs_read_blocks(struct cowfs *fs, uint64_t blk, void *buf, uint32_t len)
{
	if (blk >= fs->total_blocks || (len >> CFS_BLOCK_SHIFT) > fs->total_blocks - blk)
		return -PLAT_EIO;
	return plat_bdev_rw(fs->bdev, PLAT_BIO_READ, blk << CFS_BLOCK_SHIFT, buf, len);
}

int cowfs_flush(struct cowfs *fs)
{
	struct cowfs_iob *iob = cowfs_iob_new(fs);
	if (!iob)
		return -PLAT_ENOMEM;
	cowfs_iob_submit(iob, PLAT_BIO_FLUSH, 0, NULL, 0, 0);
	return cowfs_iob_wait(iob);
}

void cowfs_fail(struct cowfs *fs, int err, const char *fmt, ...)
{
	if (!fs->error) {
		va_list ap;
		va_start(ap, fmt);
		plat_vsnprintf(fs->reason, sizeof(fs->reason), fmt, ap);
		va_end(ap);
		fs->error = err;
		plat_log(PLAT_LOG_ERR, "cowfs: %s: read-only: %s (%s)", plat_bdev_name(fs->bdev),
			 fs->reason, plat_strerror(err));
	}
	fs->readonly = true;
}

int cowfs_error(struct cowfs *fs, const char **reason)
{
	if (reason)
		*reason = fs->error ? fs->reason : "";
	return fs->error;
}
