/*
 * Buffered write path: folio hooks, partial-block read-modify-write,
 * short copies, i_size, stale-mapping restart; zero range, truncate tail
 * and unshare use the same path.
 */
#include "iomap/buffered_io.h"
#include "iomap/xform.h"

struct iomap_write_ctx {
	const struct iomap_source *src;   /* NULL: write zeros */
	uint64_t start;                   /* file pos of source byte 0 */
	bool unshare;                     /* rewrite existing bytes only */
};

static unsigned iomap_order_for(uint64_t pos, uint64_t len)
{
	uint64_t pages = (((pos & (PLAT_PAGE_SIZE - 1)) + len + PLAT_PAGE_SIZE - 1) >> PLAT_PAGE_SHIFT);
	unsigned order = 0;
	while (order < PCACHE_MAX_ORDER && (2ull << order) <= pages)
		order++;
	return order;
}

/* DIO-24: a locked folio, writeback finished (stable), created when
 * missing, with no filesystem re-entry. */
int iomap_get_folio(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **out)
{
	unsigned flags = PCACHE_CREAT | PCACHE_LOCK | PCACHE_STABLE;
	if (it->flags & IOMAP_NOWAIT)
		flags |= PCACHE_NOWAIT;
	return pcache_get_folio(&it->inode->mapping, pos >> PLAT_PAGE_SHIFT, iomap_order_for(pos, len),
				flags, out);
}

void iomap_put_folio_default(struct iomap_inode *inode, uint64_t pos, uint64_t copied, struct folio *f)
{
	(void)inode;
	(void)pos;
	(void)copied;
	folio_unlock(f);
	folio_put(f);
}

/* DIO-27: the only call sites of the folio hooks. */
static int iomap_get_folio_hook(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **out)
{
	const struct iomap_folio_ops *fops = it->iomap.folio_ops;
	if (fops && fops->get_folio)
		return fops->get_folio(it, pos, len, out);
	return iomap_get_folio(it, pos, len, out);
}

static void iomap_put_folio_hook(struct iomap_iter *it, uint64_t pos, uint64_t copied, struct folio *f)
{
	const struct iomap_folio_ops *fops = it->iomap.folio_ops;
	iomap_lockdep_release(IOMAP_LC_FOLIO);
	if (fops && fops->put_folio)
		fops->put_folio(it->inode, pos, copied, f);
	else
		iomap_put_folio_default(it->inode, pos, copied, f);
}

/*
 * COW-10/11: before new bytes land in a block that is not uptodate and not
 * fully overwritten, the block gets its current contents: read from the
 * *source* mapping when that is MAPPED (for COW the destination holds no
 * old data), copied from inline data, zeroed for holes, unwritten and
 * delalloc-without-cache sources, freshly allocated (NEW) destinations
 * without a source, and blocks at or past EOF.  Never zero a block whose
 * old data exists in the source.  Fully overwritten blocks are not read.
 */
static int iomap_fill_block(struct iomap_iter *it, struct folio *f, uint64_t b, uint64_t bs)
{
	const struct iomap *src = iomap_iter_srcmap(it);
	uint8_t *dst = f->data + (b - folio_pos(f));
	uint64_t isize = iomap_isize(it->inode);
	bool no_source = it->srcmap.type == IOMAP_NONE;

	if (b >= isize || (no_source && (it->iomap.flags & IOMAP_F_NEW)) ||
	    src->type == IOMAP_HOLE || src->type == IOMAP_UNWRITTEN || src->type == IOMAP_DELALLOC) {
		plat_memset(dst, 0, bs);
	} else if (src->type == IOMAP_INLINE) {
		uint64_t off = b - src->offset, n = src->length > off ? src->length - off : 0;
		n = iomap_min(n, bs);
		plat_memcpy(dst, (const uint8_t *)src->inline_data + off, n);
		plat_memset(dst + n, 0, bs - n);
	} else if (iomap_xformed(it->inode, src)) {
		/* COW-37: an encoded/transformed source is decoded first. */
		int ret = iomap_xform_read(it->inode, src, b, dst, bs);
		if (ret)
			return ret;
	} else {
		int ret = plat_bdev_rw(src->bdev, PLAT_BIO_READ, iomap_sector_addr(src, b), dst, bs);
		if (ret)
			return ret;
	}
	folio_set_range_uptodate(f, b - folio_pos(f), bs);
	return 0;
}

static int iomap_prepare_blocks(struct iomap_iter *it, struct folio *f, uint64_t pos, uint64_t len)
{
	const struct iomap_write_ctx *ctx = it->private;
	uint64_t bs = 1ull << it->inode->blkbits, fpos = folio_pos(f);
	uint64_t b = pos & ~(bs - 1), end = (pos + len + bs - 1) & ~(bs - 1);
	for (; b < end; b += bs) {
		if (folio_range_uptodate(f, b - fpos, bs))
			continue;
		if (b >= pos && b + bs <= pos + len && !ctx->unshare)
			continue;
		int ret = iomap_fill_block(it, f, b, bs);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * write_begin.  The mapping is validated after the folio is locked and
 * before any read-in, zeroing or uptodate decision (DIO-33): either the
 * filesystem's get_folio returns -ESTALE (having released the folio), or
 * the core asks folio_ops->iomap_valid.  On staleness the folio is released
 * undirtied, IOMAP_F_STALE is set and *fp stays NULL (DIO-34).
 */
static int iomap_write_begin(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **fp)
{
	const struct iomap_folio_ops *fops = it->iomap.folio_ops;
	const struct iomap_hooks *hooks = it->inode->hooks;
	struct folio *f;
	*fp = NULL;
	if (hooks && hooks->after_begin)
		hooks->after_begin(it);
	int ret = iomap_get_folio_hook(it, pos, len, &f);
	if (ret == -PLAT_ESTALE) {
		it->iomap.flags |= IOMAP_F_STALE;
		return 0;
	}
	if (ret)
		return ret;
	iomap_lockdep_acquire(IOMAP_LC_FOLIO, false);
	if (fops && fops->iomap_valid && !fops->iomap_valid(it->inode, &it->iomap)) {
		iomap_put_folio_hook(it, pos, 0, f);
		it->iomap.flags |= IOMAP_F_STALE;
		return 0;
	}
	if (hooks && hooks->after_valid)
		hooks->after_valid(it, pos);
	ret = iomap_prepare_blocks(it, f, pos, iomap_min(len, folio_pos(f) + folio_size(f) - pos));
	if (ret) {
		iomap_put_folio_hook(it, pos, 0, f);
		return ret;
	}
	*fp = f;
	return 0;
}

/*
 * write_end (DIO-29): (1) the copy happened; (2) mark uptodate and dirty;
 * (3) raise i_size while the folio is locked, only to cover bytes really
 * copied (COW-18); (4) put_folio exactly once.  A short copy that ends
 * inside a block which was not uptodate cannot be kept (the rest of that
 * block would be garbage): the copy is trimmed to the block start.
 */
static uint64_t iomap_write_end(struct iomap_iter *it, uint64_t pos, uint64_t len, uint64_t copied,
				struct folio *f)
{
	uint64_t bs = 1ull << it->inode->blkbits, fpos = folio_pos(f);
	if (copied < len) {
		uint64_t end = pos + copied, bstart = end & ~(bs - 1);
		if ((end & (bs - 1)) && !folio_range_uptodate(f, bstart - fpos, bs))
			copied = bstart > pos ? bstart - pos : 0;
	}
	if (copied) {
		folio_set_range_uptodate(f, pos - fpos, copied);
		folio_set_range_dirty(f, pos - fpos, copied);
		folio_mark_dirty(f);
		/* Zeroing and unsharing never change the file size. */
		if (!(it->flags & (IOMAP_ZERO | IOMAP_UNSHARE)))
			iomap_raise(&it->inode->size, pos + copied);
	}
	iomap_put_folio_hook(it, pos, copied, f);
	return copied;
}

static uint64_t iomap_copy_in(struct iomap_iter *it, struct folio *f, uint64_t pos, uint64_t n)
{
	struct iomap_write_ctx *ctx = it->private;
	uint8_t *dst = f->data + (pos - folio_pos(f));
	if (ctx->unshare)
		return n;                    /* the bytes are already there */
	if (!ctx->src) {
		plat_memset(dst, 0, n);
		return n;
	}
	uint64_t off = pos - ctx->start;
	if (ctx->src->copy)
		return ctx->src->copy(dst, ctx->src, off, n);
	plat_memcpy(dst, (const uint8_t *)ctx->src->buf + off, n);
	return n;
}

/*
 * The write actor.  Each chunk stays inside one folio and inside the
 * clamped mapping length (DIO-30).  After a zero-progress short copy the
 * chunk shrinks to one block; a second failure ends the write with the
 * bytes done so far, or -EFAULT (COW-20).
 */
static int64_t iomap_write_iter(struct iomap_iter *it)
{
	uint64_t len = iomap_length(it), pos = it->pos, total = 0;
	uint64_t bs = 1ull << it->inode->blkbits, limit = UINT64_MAX;
	while (len) {
		struct folio *f;
		uint64_t want = iomap_min(len, limit);
		int ret = iomap_write_begin(it, pos, want, &f);
		if (ret)
			return total ? (int64_t)total : ret;
		if (!f)
			break;                  /* stale: iterator re-maps */
		uint64_t bytes = iomap_min(want, folio_pos(f) + folio_size(f) - pos);
		uint64_t copied = iomap_copy_in(it, f, pos, bytes);
		copied = iomap_write_end(it, pos, bytes, copied, f);
		pcache_balance_dirty(it->inode->mapping.pc);
		if (!copied) {
			if (limit <= bs)
				return total ? (int64_t)total : -PLAT_EFAULT;
			limit = bs - (pos & (bs - 1));
			continue;
		}
		limit = UINT64_MAX;
		total += copied;
		pos += copied;
		len -= copied;
	}
	return (int64_t)total;
}

static int64_t iomap_write_loop(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
				struct iomap_write_ctx *ctx, const struct iomap_ops *ops)
{
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len, .flags = flags, .private = ctx };
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0)
		it.processed = iomap_write_iter(&it);
	return it.done ? (int64_t)it.done : ret;
}

int64_t iomap_file_buffered_write(struct iomap_inode *inode, uint64_t pos, const struct iomap_source *src,
				  uint64_t len, const struct iomap_ops *ops, unsigned flags)
{
	struct iomap_write_ctx ctx = { src, pos, false };
	if (!len)
		return 0;
	return iomap_write_loop(inode, pos, len, IOMAP_WRITE | (flags & IOMAP_NOWAIT), &ctx, ops);
}

/* Zero the bytes of [off, off+n) that lie in dirty blocks of a locked
 * folio; clean blocks over unwritten/delalloc/hole extents already read
 * as zeros (DIO-38, DIO-T17: clean folios are left untouched). */
static void iomap_zero_dirty_blocks(struct folio *f, uint64_t off, uint64_t n)
{
	uint64_t bs = 1ull << f->blkbits, end = off + n;
	for (uint64_t b = off & ~(bs - 1); b < end; b += bs) {
		if (!folio_block_dirty(f, (unsigned)(b >> f->blkbits)))
			continue;
		uint64_t s = b > off ? b : off, e = b + bs < end ? b + bs : end;
		plat_memset(f->data + s, 0, e - s);
	}
}

/*
 * Zero range (DIO-38, EXT-34/35, COW-13).  Uses the *write* ops, so on a
 * shared extent the filesystem hands out a new destination plus a source
 * and partial blocks are read-modify-written: the shared extent is never
 * modified in place.  A HOLE needs nothing.  UNWRITTEN and DELALLOC
 * destinations read as zeros on disk, but the cache may hold newer data:
 * only folios already cached there are zeroed (never created), everything
 * else is skipped.
 */
static int64_t iomap_zero_iter(struct iomap_iter *it)
{
	uint64_t len = iomap_length(it), pos = it->pos;
	bool cached_only;
	if (it->srcmap.type != IOMAP_NONE) {
		/* COW: the old bytes are in the source; a hole/unwritten
		 * source has none, otherwise RMW into the new destination. */
		cached_only = it->srcmap.type == IOMAP_HOLE || it->srcmap.type == IOMAP_UNWRITTEN;
	} else {
		if (it->iomap.type == IOMAP_HOLE)
			return (int64_t)len;
		cached_only = it->iomap.type == IOMAP_UNWRITTEN || it->iomap.type == IOMAP_DELALLOC;
	}
	if (cached_only) {
		const struct iomap_folio_ops *fops = it->iomap.folio_ops;
		bool (*valid)(struct iomap_inode *, const struct iomap *) = fops ? fops->iomap_valid : NULL;
		uint64_t end = pos + len;
		while (pos < end) {
			struct folio *f = pcache_lookup(&it->inode->mapping, pos >> PLAT_PAGE_SHIFT);
			uint64_t next = f ? folio_pos(f) + folio_size(f) : (pos | (PLAT_PAGE_SIZE - 1)) + 1;
			uint64_t n = iomap_min(next, end) - pos;
			if (f) {
				int ret = folio_lock(f, plat_time_ns() + PCACHE_WAIT_NS);
				if (!ret) {
					ret = folio_wait_writeback(f, plat_time_ns() + PCACHE_WAIT_NS);
					if (ret)
						folio_unlock(f);
				}
				if (ret) {
					folio_put(f);
					return pos > it->pos ? (int64_t)(pos - it->pos) : ret;
				}
				/* DIO-33: validate under the folio lock, after
				 * writeback (which may have converted the extent). */
				if (valid && !valid(it->inode, &it->iomap)) {
					folio_unlock(f);
					folio_put(f);
					it->iomap.flags |= IOMAP_F_STALE;
					return (int64_t)(pos - it->pos);
				}
				iomap_zero_dirty_blocks(f, pos - folio_pos(f), n);
				folio_unlock(f);
				folio_put(f);
			}
			pos += n;
		}
		/* An extent converted while we skipped uncached blocks would
		 * now hold data on disk: redo the whole range. */
		if (valid && !valid(it->inode, &it->iomap)) {
			it->iomap.flags |= IOMAP_F_STALE;
			return 0;
		}
		return (int64_t)len;
	}
	return iomap_write_iter(it);
}

int iomap_zero_range(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops)
{
	struct iomap_write_ctx ctx = { NULL, pos, false };
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len, .flags = IOMAP_ZERO, .private = &ctx };
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0)
		it.processed = iomap_zero_iter(&it);
	return ret;
}

int iomap_truncate_page(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops)
{
	uint64_t bs = 1ull << inode->blkbits, off = pos & (bs - 1);
	if (!off)
		return 0;
	return iomap_zero_range(inode, pos, bs - off, ops);
}

/* COW-14: unshare rewrites every shared block in place in the cache (the
 * RMW fills it from the source), dirtying it so writeback allocates new
 * blocks.  Non-shared ranges and holes are skipped. */
static int64_t iomap_unshare_iter(struct iomap_iter *it)
{
	uint64_t len = iomap_length(it);
	if (!(it->iomap.flags & IOMAP_F_SHARED) || it->srcmap.type == IOMAP_HOLE ||
	    it->srcmap.type == IOMAP_UNWRITTEN)
		return (int64_t)len;
	/* Unshare must not change i_size: stop at EOF. */
	uint64_t isize = iomap_isize(it->inode);
	if (it->pos >= isize)
		return (int64_t)len;
	uint64_t saved = it->len;
	it->len = iomap_min(it->len, isize - it->pos);
	int64_t r = iomap_write_iter(it);
	it->len = saved;
	if (r > 0 && (uint64_t)r == iomap_min(len, isize - it->pos))
		return (int64_t)len;
	return r;
}

int iomap_file_unshare(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops)
{
	struct iomap_write_ctx ctx = { NULL, pos, true };
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len,
				 .flags = IOMAP_WRITE | IOMAP_UNSHARE, .private = &ctx };
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0)
		it.processed = iomap_unshare_iter(&it);
	return ret;
}
