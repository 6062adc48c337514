/*
 * Direct I/O (see direct_io.h for the contract and completion order).
 */
#include "iomap/direct_io.h"
#include "iomap/buffered_io.h"
#include "iomap/xform.h"
#include "iomap/workq.h"

#define IOMAP_DIO_MAX_BIO (1ull << 20)

struct iomap_dio {
	struct iomap_inode *inode;
	const struct iomap_dio_ops *dops;
	uint64_t pos;
	uint64_t size;            /* bytes submitted */
	unsigned flags;           /* request flags */
	unsigned dio_flags;       /* IOMAP_DIO_UNWRITTEN/COW/NEW seen */
	int error;                /* first error */
	int ref;                  /* bios in flight + submitter bias */
	int done_flag;
	int holders;              /* the waiter and the waker of a synchronous dio: the last frees it */
	bool need_sync;
	struct plat_bdev *bdev;   /* last device used (polling, flush) */
	struct plat_waitq *wq;
	iomap_dio_done_t done;
	void *arg;
	struct iomap_work work;
	/* Size-preserving transformed ranges read straight into the caller's
	 * buffer, verified in iomap_dio_finish before anything is reported. */
	struct iomap_dio_verify { uint64_t pos, n; uint8_t *buf; struct iomap map; } *verify;
	unsigned nverify, cap_verify;
};

struct iomap_dio_bio {
	struct plat_bio bio;
	struct iomap_dio *dio;
	uint8_t *bounce;          /* encoded data of a transformed write (COW-35) */
};

static void iomap_dio_set_error(struct iomap_dio *dio, int err)
{
	int zero = 0;
	plat_cas(&dio->error, &zero, err);
}

static void iomap_dio_complete_work(struct iomap_work *w);
static void iomap_dio_free(struct iomap_dio *dio);

static void iomap_dio_put(struct iomap_dio *dio)
{
	if (plat_sub(&dio->ref, 1))
		return;
	if (dio->done) {
		dio->work.fn = iomap_dio_complete_work;
		iomap_workq_queue(dio->inode->wq, &dio->work);
	} else {
		/* The waiter may finish and let go of dio as soon as it sees
		 * done_flag, while this thread is still inside the wake-up
		 * (under TCG its IPI is slow: a waiter that spun for the
		 * waker to leave lost whole scheduler slices to other
		 * threads).  Whichever of the two lets go last frees it. */
		plat_store(&dio->done_flag, 1);
		plat_wake_all(dio->wq);
		iomap_dio_free(dio);
	}
}

static void iomap_dio_bio_end_io(struct plat_bio *bio)
{
	struct iomap_dio_bio *db = (struct iomap_dio_bio *)bio;
	struct iomap_dio *dio = db->dio;
	if (bio->status)
		iomap_dio_set_error(dio, bio->status);
	plat_free(db->bounce);
	plat_free(db);
	iomap_dio_put(dio);
}

static int iomap_dio_submit(struct iomap_dio *dio, const struct iomap *map, enum plat_bio_op op,
			    uint64_t pos, uint8_t *buf, uint64_t len, unsigned bio_flags)
{
	while (len) {
		uint64_t n = iomap_min(len, IOMAP_DIO_MAX_BIO);
		struct iomap_dio_bio *db = plat_zalloc(sizeof(*db));
		if (!db)
			return -PLAT_ENOMEM;
		db->dio = dio;
		db->bio.bdev = map->bdev;
		db->bio.op = op;
		db->bio.flags = bio_flags;
		db->bio.dev_off = iomap_sector_addr(map, pos);
		db->bio.len = n;
		db->bio.vec = db->bio.inline_vec;
		db->bio.maxvec = PLAT_BIO_INLINE_VECS;
		db->bio.nvec = 1;
		db->bio.vec[0].buf = buf;
		db->bio.vec[0].len = (uint32_t)n;
		if (op == PLAT_BIO_WRITE && iomap_xformed(dio->inode, map)) {
			/* Size-preserving stages only: a direct write is never
			 * compressed (the filesystem must not ask). */
			struct iomap m = *map;
			uint64_t stored;
			uint16_t applied;
			m.flags &= (uint16_t)~IOMAP_F_ENCODED;
			/* Checksums only: summed over the caller's bytes, which
			 * the device then reads as they are (the caller keeps
			 * them unchanged until completion, direct_io.h); a
			 * rewriting stage encodes into a bounce buffer. */
			int ret = iomap_xform_encode_shared(dio->inode, &m, pos, db->bio.dev_off, buf, n);
			if (!ret)
				ret = iomap_xform_encode(dio->inode, &m, pos, db->bio.dev_off, buf, n,
							 &db->bounce, &stored, &applied);
			else if (ret > 0)
				ret = 0;
			if (ret) {
				plat_free(db);
				return ret;
			}
			if (db->bounce)
				db->bio.vec[0].buf = db->bounce;
		}
		db->bio.end_io = iomap_dio_bio_end_io;
		dio->bdev = map->bdev;
		plat_add(&dio->ref, 1);
		if (dio->dops && dio->dops->submit_io)
			dio->dops->submit_io(dio->inode, &db->bio, pos);
		else
			plat_bdev_submit(&db->bio);
		pos += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* One mapping's worth of direct I/O. */
static int64_t iomap_dio_iter(struct iomap_iter *it, struct iomap_dio *dio, uint8_t *buf)
{
	const struct iomap *map = &it->iomap;
	uint64_t len = iomap_length(it);
	uint8_t *p = buf + (it->pos - dio->pos);
	bool write = dio->flags & IOMAP_DIO_WRITE;
	if (!write) {
		/* COW-35/36: transformed data is read and decoded here (a whole
		 * extent when ENCODED), synchronously. */
		if ((map->type == IOMAP_MAPPED || map->type == IOMAP_ENCODED) && iomap_xformed(it->inode, map)) {
			uint64_t bs = 1ull << it->inode->blkbits;
			if (iomap_xform_in_place(it->inode, map) && !(it->pos % bs) && !(len % bs)) {
				/* Checksums only: an ordinary asynchronous read
				 * now, the verification when every bio is in
				 * (a file of many small extents would otherwise
				 * cost one synchronous read per extent). */
				if (dio->nverify == dio->cap_verify) {
					unsigned cap = dio->cap_verify ? dio->cap_verify * 2 : 8;
					struct iomap_dio_verify *v = plat_alloc(cap * sizeof(*v));
					if (!v)
						return -PLAT_ENOMEM;
					if (dio->nverify)
						plat_memcpy(v, dio->verify, dio->nverify * sizeof(*v));
					plat_free(dio->verify);
					dio->verify = v;
					dio->cap_verify = cap;
				}
				dio->verify[dio->nverify++] = (struct iomap_dio_verify){ it->pos, len, p, *map };
				int ret = iomap_dio_submit(dio, map, PLAT_BIO_READ, it->pos, p, len, 0);
				return ret ? ret : (int64_t)len;
			}
			int ret = iomap_xform_read(it->inode, map, it->pos, p, len);
			return ret ? ret : (int64_t)len;
		}
		/* COW-21: holes (and unwritten/delalloc) read as zeros. */
		if (map->type != IOMAP_MAPPED) {
			plat_memset(p, 0, len);
			return (int64_t)len;
		}
		int ret = iomap_dio_submit(dio, map, PLAT_BIO_READ, it->pos, p, len, 0);
		return ret ? ret : (int64_t)len;
	}
	if (map->type != IOMAP_MAPPED && map->type != IOMAP_UNWRITTEN)
		return -PLAT_EIO;   /* the filesystem must allocate in begin */
	unsigned bio_flags = 0;
	if (map->type == IOMAP_UNWRITTEN)
		dio->dio_flags |= IOMAP_DIO_UNWRITTEN;
	if (map->flags & IOMAP_F_SHARED)
		dio->dio_flags |= IOMAP_DIO_COW;
	if (map->flags & (IOMAP_F_NEW | IOMAP_F_SHARED))
		dio->dio_flags |= IOMAP_DIO_NEW;
	/* DIO-14: FUA only for pure overwrites with no metadata pending. */
	bool pure = map->type == IOMAP_MAPPED && !(map->flags & (IOMAP_F_NEW | IOMAP_F_SHARED | IOMAP_F_DIRTY)) &&
		    it->pos + len <= iomap_isize(it->inode);
	if ((dio->flags & IOMAP_DIO_DSYNC) && pure)
		bio_flags |= PLAT_BIO_FUA;
	else if (dio->flags & IOMAP_DIO_DSYNC)
		dio->need_sync = true;
	int ret = iomap_dio_submit(dio, map, PLAT_BIO_WRITE, it->pos, p, len, bio_flags);
	return ret ? ret : (int64_t)len;
}

static bool iomap_dio_done_cond(void *arg)
{
	return plat_load(&((struct iomap_dio *)arg)->done_flag) != 0;
}

static void iomap_dio_free(struct iomap_dio *dio)
{
	if (plat_sub(&dio->holders, 1))
		return;
	plat_free(dio->verify);
	plat_waitq_free(dio->wq);
	plat_free(dio);
}

/* DIO-13: the fixed completion order. */
static int64_t iomap_dio_finish(struct iomap_dio *dio)
{
	struct iomap_inode *inode = dio->inode;
	int64_t ret = dio->error ? dio->error : (int64_t)dio->size;
	bool write = dio->flags & IOMAP_DIO_WRITE;
	for (unsigned i = 0; i < dio->nverify && ret >= 0; i++) {
		const struct iomap_dio_verify *v = &dio->verify[i];
		int r = iomap_xform_verify(inode, &v->map, v->pos, v->buf, v->n);
		if (r)
			ret = r;
	}
	if (dio->dops && dio->dops->end_io) {
		int r = dio->dops->end_io(inode, dio->pos, ret, dio->dio_flags);
		if (r && ret >= 0)
			ret = r;
	}
	if (!write && ret > 0) {
		/* Whole blocks were read; report only bytes below EOF. */
		uint64_t isize = iomap_isize(inode);
		uint64_t lim = isize > dio->pos ? isize - dio->pos : 0;
		if ((uint64_t)ret > lim)
			ret = (int64_t)lim;
	}
	if (write && ret > 0) {
		/* COW-28: monotonic, only on success. */
		iomap_raise(&inode->size, dio->pos + (uint64_t)ret);
		iomap_raise(&inode->disk_size, dio->pos + (uint64_t)ret);
	}
	if (write && dio->size) {
		int r = pcache_invalidate_range(&inode->mapping, dio->pos, dio->pos + dio->size, true);
		if (r)
			plat_log(PLAT_LOG_WARN, "dio: inode %llu: page cache invalidation of %llu+%llu failed: %s",
				 (unsigned long long)inode->ino, (unsigned long long)dio->pos,
				 (unsigned long long)dio->size, plat_strerror(r));
	}
	/* dio_wakers covers the wake-up: a drainer that sees dio_count == 0
	 * may go on to destroy the inode, which waits for dio_wakers. */
	plat_add(&inode->dio_wakers, 1);
	if (plat_sub(&inode->dio_count, 1) == 0)
		plat_wake_all(inode->dio_wq);
	plat_sub(&inode->dio_wakers, 1);
	if (write && ret > 0 && dio->need_sync && !(dio->flags & IOMAP_DIO_DEFER_SYNC)) {
		const struct iomap_hooks *h = inode->hooks;
		if (h && h->dio_before_flush)
			h->dio_before_flush(inode);   /* test pause point (DIO-T2) */
		int r = plat_bdev_flush(dio->bdev);
		if (r)
			ret = r;
	}
	return ret;
}

static void iomap_dio_complete_work(struct iomap_work *w)
{
	struct iomap_dio *dio = (struct iomap_dio *)((char *)w - __builtin_offsetof(struct iomap_dio, work));
	iomap_dio_done_t done = dio->done;
	void *arg = dio->arg;
	int64_t ret = iomap_dio_finish(dio);
	iomap_dio_free(dio);
	done(arg, ret);
}

int64_t iomap_dio_complete(struct iomap_dio *dio)
{
	int64_t ret = iomap_dio_finish(dio);
	iomap_dio_free(dio);
	return ret;
}

struct iomap_dio *iomap_dio_begin(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len,
				  unsigned flags, const struct iomap_ops *ops,
				  const struct iomap_dio_ops *dops, iomap_dio_done_t done, void *arg,
				  int *status)
{
	uint64_t bmask = (1ull << inode->blkbits) - 1;
	bool write = flags & IOMAP_DIO_WRITE;
	*status = 0;
	if (!len)
		return NULL;
	/* DIO-17 / COW-25 */
	if ((pos | len) & bmask) {
		*status = write ? -IOMAP_ENOTBLK : 0;
		return NULL;
	}
	/* DIO-11: the filesystem declared that direct I/O runs under its
	 * inode lock. */
	if (inode->dio_needs_lock)
		PLAT_ASSERT(iomap_rwsem_held(&inode->io_lock, false));
	if (!write) {
		uint64_t isize = iomap_isize(inode);
		if (pos >= isize)
			return NULL;
		len = iomap_min(len, ((isize + bmask) & ~bmask) - pos);
	}
	/* COW-21/26: write back and invalidate cached data of the range. */
	int ret = iomap_writepages(inode, pos, pos + len, true, NULL);
	if (!ret)
		ret = pcache_wait_writeback_range(&inode->mapping, pos, pos + len,
						  plat_time_ns() + PCACHE_WAIT_NS);
	if (!ret && write)
		ret = pcache_invalidate_range(&inode->mapping, pos, pos + len, true);
	if (ret) {
		*status = ret;
		return NULL;
	}
	struct iomap_dio *dio = plat_zalloc(sizeof(*dio));
	if (!dio || !(dio->wq = plat_waitq_new("dio"))) {
		plat_free(dio);
		*status = -PLAT_ENOMEM;
		return NULL;
	}
	dio->inode = inode;
	dio->dops = dops;
	dio->pos = pos;
	dio->flags = flags;
	dio->ref = 1;
	dio->holders = done ? 1 : 2;
	dio->done = done;
	dio->arg = arg;
	plat_add(&inode->dio_count, 1);

	unsigned iflags = IOMAP_DIRECT | (write ? IOMAP_WRITE : 0);
	if (flags & IOMAP_DIO_NOWAIT)
		iflags |= IOMAP_NOWAIT;
	if (flags & IOMAP_DIO_OVERWRITE_ONLY)
		iflags |= IOMAP_OVERWRITE_ONLY;
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len, .flags = iflags };
	while ((ret = iomap_iter(&it, ops)) > 0)
		it.processed = iomap_dio_iter(&it, dio, buf);
	dio->size = it.done;
	/* Nothing submitted: report the error (EAGAIN for NOWAIT).  After
	 * partial submission the result is the short count; the caller
	 * continues buffered (DIO-16).  I/O errors of submitted bios are
	 * recorded by their completions and win. */
	if (ret < 0 && !it.done)
		iomap_dio_set_error(dio, ret);
	if (done) {
		iomap_dio_put(dio);   /* completion may run right here */
		*status = -IOMAP_EIOCBQUEUED;
		return NULL;
	}
	iomap_dio_put(dio);
	/* Wait; on a polled device run its completions ourselves (COW-31).
	 * The bios point into the caller's buffer: wait however long it
	 * takes (platform.h, buffer lifetime). */
	if (plat_wait_owned(dio->wq, iomap_dio_done_cond, dio, dio->bdev, plat_time_ns() + PCACHE_WAIT_NS,
			    "dio: waiting for direct I/O"))
		plat_log(PLAT_LOG_ERR, "dio: inode %llu: direct I/O at %llu completed late",
			 (unsigned long long)inode->ino, (unsigned long long)dio->pos);
	return dio;
}

int64_t iomap_dio_rw(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len, unsigned flags,
		     const struct iomap_ops *ops, const struct iomap_dio_ops *dops)
{
	int status;
	struct iomap_dio *dio = iomap_dio_begin(inode, pos, buf, len, flags, ops, dops, NULL, NULL, &status);
	if (!dio)
		return status;
	return iomap_dio_complete(dio);
}

static bool iomap_dio_idle(void *arg)
{
	return plat_load(&((struct iomap_inode *)arg)->dio_count) == 0;
}

int iomap_dio_wait(struct iomap_inode *inode, uint64_t deadline)
{
	return plat_wait_until(inode->dio_wq, iomap_dio_idle, inode, deadline);
}
