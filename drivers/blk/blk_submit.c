/*
 * Block layer request path, caller side: validation, FUA / flush /
 * write-zeroes emulation and splitting to the device limits (see blk.h for
 * the rules).  A request that fits goes straight to blk_dispatch() with no
 * allocation: that is the benchmark's hot path.
 */
#include <stdarg.h>
#include "drivers/blk/blk.h"
#include "drivers/blk/blk_internal.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/cpu.h"

/* ---- submission ---- */

void blk_req_init(struct blk_req *req, enum blk_op op, uint64_t lba, uint32_t nblocks,
		  struct blk_seg *segs, unsigned nsegs, void (*done)(struct blk_req *), void *priv)
{
	memset(req, 0, sizeof(*req));
	req->op = (uint8_t)op;
	req->lba = lba;
	req->nblocks = nblocks;
	req->segs = segs;
	req->nsegs = nsegs;
	req->done = done;
	req->priv = priv;
}

static int blk_reject(struct blk_req *req, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int blk_reject(struct blk_req *req, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(req->error, sizeof(req->error), fmt, ap);
	va_end(ap);
	req->status = rc;
	return rc;
}

static int blk_validate(struct blk_dev *dev, struct blk_req *req)
{
	const char *op = blk_op_name(req->op);

	if (req->op > BLK_OP_WRITE_ZEROES)
		return blk_reject(req, -EINVAL, "unknown operation %u", req->op);
	if (!req->done)
		return blk_reject(req, -EINVAL, "no completion callback");
	if (dev->dead)
		return blk_reject(req, -EIO, "%s", dev->dead_reason);
	if (req->op == BLK_OP_FLUSH)
		return 0;
	if (req->nblocks == 0)
		return blk_reject(req, -EINVAL, "%s of zero blocks", op);
	if (req->lba >= dev->nblocks || req->nblocks > dev->nblocks - req->lba)
		return blk_reject(req, -ERANGE, "past end of device: %s lba %llu+%u, device has %llu blocks",
				  op, (unsigned long long)req->lba, req->nblocks,
				  (unsigned long long)dev->nblocks);
	if (req->op == BLK_OP_DISCARD && !dev->max_discard_blocks)
		return blk_reject(req, -ENOTSUP, "%s does not support discard", dev->name);
	if (req->op != BLK_OP_READ && req->op != BLK_OP_WRITE)
		return 0;
	if (!req->nsegs || !req->segs)
		return blk_reject(req, -EINVAL, "%s without buffers", op);
	uint64_t bytes = 0;
	for (unsigned i = 0; i < req->nsegs; i++) {
		const struct blk_seg *s = &req->segs[i];
		if (((uint64_t)s->buf & 3) || !s->buf)
			return blk_reject(req, -EINVAL, "misaligned buffer: segment %u at %p is not 4-byte aligned",
					  i, s->buf);
		if (!s->len || (s->len & (dev->lba_size - 1)))
			return blk_reject(req, -EINVAL,
					  "misaligned buffer: segment %u length %u is not a multiple of %u",
					  i, s->len, dev->lba_size);
		bytes += s->len;
	}
	if (bytes != (uint64_t)req->nblocks * dev->lba_size)
		return blk_reject(req, -EINVAL, "buffers hold %llu bytes, %u blocks need %llu",
				  (unsigned long long)bytes, req->nblocks,
				  (unsigned long long)req->nblocks * dev->lba_size);
	return 0;
}

/* Does a read/write fit the device limits as it is? */
static bool blk_fits(const struct blk_dev *dev, const struct blk_req *req)
{
	if ((uint64_t)req->nblocks * dev->lba_size > dev->max_transfer || req->nsegs > dev->max_segments)
		return false;
	for (unsigned i = 1; i < req->nsegs; i++)
		if (!blk_seg_joins(dev, &req->segs[i - 1], &req->segs[i]))
			return false;
	return true;
}

/* Issue one piece of parent. */
static void blk_emit(struct blk_dev *dev, struct blk_req *parent, struct blk_piece *pc, unsigned *n)
{
	__atomic_fetch_add(&parent->pending, 1, __ATOMIC_ACQ_REL);
	(*n)++;
	blk_dispatch(dev, &pc->req);
}

static int blk_split_rw(struct blk_dev *dev, struct blk_req *req, uint32_t flags, unsigned *n)
{
	uint32_t lbs = dev->lba_size;
	uint32_t mt = ALIGN_DOWN(dev->max_transfer, lbs);
	unsigned maxs = MIN((unsigned)dev->max_segments, (unsigned)BLK_PIECE_SEGS);
	uint64_t lba = req->lba;
	unsigned si = 0;
	uint32_t off = 0;
	struct blk_piece *pc = NULL;
	uint32_t bytes = 0;

	while (si < req->nsegs) {
		const struct blk_seg *s = &req->segs[si];
		if (!pc) {
			pc = blk_piece_get(dev);
			if (!pc)
				return -ENOMEM;
			blk_piece_setup(req, pc, req->op, flags);
			pc->req.lba = lba;
			bytes = 0;
		}
		struct blk_seg part = { (uint8_t *)s->buf + off, MIN(s->len - off, mt - bytes) };
		if (pc->req.nsegs > 0 &&
		    (pc->req.nsegs == maxs || !blk_seg_joins(dev, &pc->segs[pc->req.nsegs - 1], &part))) {
			pc->req.nblocks = bytes / lbs;
			blk_emit(dev, req, pc, n);
			pc = NULL;
			continue;
		}
		pc->segs[pc->req.nsegs++] = part;
		bytes += part.len;
		lba += part.len / lbs;
		off += part.len;
		if (off == s->len) {
			si++;
			off = 0;
		}
		if (bytes == mt) {
			pc->req.nblocks = bytes / lbs;
			blk_emit(dev, req, pc, n);
			pc = NULL;
		}
	}
	if (pc) {
		pc->req.nblocks = bytes / lbs;
		blk_emit(dev, req, pc, n);
	}
	return 0;
}

/* Discard, write zeroes (native or emulated with the zero buffer). */
static int blk_split_range(struct blk_dev *dev, struct blk_req *req, uint32_t flags, unsigned *n)
{
	uint8_t op = req->op;
	uint32_t chunk;

	if (op == BLK_OP_DISCARD)
		chunk = dev->max_discard_blocks;
	else if (dev->max_write_zeroes_blocks)
		chunk = dev->max_write_zeroes_blocks;
	else {
		op = BLK_OP_WRITE;
		chunk = MIN((uint32_t)BLK_ZERO_BYTES, ALIGN_DOWN(dev->max_transfer, dev->lba_size)) / dev->lba_size;
		if (!chunk)
			chunk = 1;
	}
	for (uint64_t lba = req->lba; lba < req->lba + req->nblocks;) {
		uint32_t cnt = (uint32_t)MIN((uint64_t)chunk, req->lba + req->nblocks - lba);
		struct blk_piece *pc = blk_piece_get(dev);
		if (!pc)
			return -ENOMEM;
		blk_piece_setup(req, pc, op, flags);
		pc->req.lba = lba;
		pc->req.nblocks = cnt;
		if (op == BLK_OP_WRITE) {
			pc->segs[0].buf = blk_zero_buf;
			pc->segs[0].len = cnt * dev->lba_size;
			pc->req.nsegs = 1;
		}
		blk_emit(dev, req, pc, n);
		lba += cnt;
	}
	return 0;
}

void blk_commit(struct blk_dev *dev)
{
	/* Every queue, not just this CPU's: the submitter may have moved. */
	if (dev->ops->commit)
		for (unsigned i = 0; i < dev->nqueues; i++)
			dev->ops->commit(dev, i);
}

int blk_submit(struct blk_dev *dev, struct blk_req *req)
{
	int rc;

	req->dev = dev;
	req->status = 0;
	req->error[0] = 0;
	req->parent = NULL;
	req->next = NULL;
	req->members = NULL;
	req->bl_flags = 0;
	req->pending = 0;
	rc = blk_validate(dev, req);
	if (rc)
		return rc;
	req->submit_ns = time_ns();
	req->queue = (uint16_t)blk_queue_of_cpu(dev);

	uint32_t flags = req->flags;
	bool fua_emul = false;
	if (req->op == BLK_OP_FLUSH && (!dev->write_cache || blk_drop_flushes)) {
		blk_finish(req);          /* nothing volatile to flush */
		return 0;
	}
	if (flags & BLK_F_FUA) {
		if (req->op != BLK_OP_WRITE && req->op != BLK_OP_WRITE_ZEROES)
			flags &= ~BLK_F_FUA;
		else if (!dev->write_cache)
			flags &= ~BLK_F_FUA;  /* every write is already durable */
		else if (!dev->fua) {
			flags &= ~BLK_F_FUA;
			fua_emul = true;
		}
	}

	if (!fua_emul)
		req->flags = flags;   /* FUA dropped where it means nothing */
	bool simple = !fua_emul;
	if (simple) {
		switch (req->op) {
		case BLK_OP_READ:
		case BLK_OP_WRITE:
			simple = blk_fits(dev, req);
			break;
		case BLK_OP_FLUSH:
			break;
		case BLK_OP_DISCARD:
			simple = req->nblocks <= dev->max_discard_blocks;
			break;
		default:
			simple = dev->max_write_zeroes_blocks && req->nblocks <= dev->max_write_zeroes_blocks;
			break;
		}
	}
	if (simple) {
		blk_dispatch(dev, req);
		return 0;
	}
	req->flags &= ~BLK_F_MORE;    /* pieces are started one by one */
	flags &= ~BLK_F_MORE;

	/* Pieces.  pending starts at 1 so the request cannot finish while
	 * pieces are still being issued. */
	req->bl_flags = BLK_RF_SPLIT;
	req->pending = 1;
	if (fua_emul) {
		struct blk_piece *fp = blk_piece_get(dev);
		if (!fp)
			return blk_reject(req, -ENOMEM, "no request pieces free (pool of %u)", BLK_POOL_PIECES);
		blk_piece_setup(req, fp, BLK_OP_FLUSH, 0);
		req->members = &fp->req;
		req->bl_flags |= BLK_RF_FUA_EMUL;
	}
	unsigned n = 0;
	if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE)
		rc = blk_split_rw(dev, req, flags, &n);
	else
		rc = blk_split_range(dev, req, flags, &n);
	if (rc)
		blk_set_error(req, rc, "no request pieces free: request cut short");
	if (n > 1)
		__atomic_fetch_add(&dev->stats.splits, 1, __ATOMIC_RELAXED);
	blk_parent_put(req);
	return 0;
}
