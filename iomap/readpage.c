/*
 * Buffered read path: readahead, single-folio read, file read.
 *
 * Holes, unwritten extents, delalloc ranges without cached data and
 * blocks past EOF are zero-filled in the folio without any I/O (COW-21,
 * EXT-32).  MAPPED blocks are read with bios merged across blocks and
 * folios while the disk addresses stay contiguous.  A folio stays locked
 * while its reads are in flight; io_pending counts the bios touching it
 * plus one bias held by the submitter, and the last one unlocks it.
 */
#include "iomap/buffered_io.h"
#include "iomap/xform.h"

#define IOMAP_READ_VECS 64
#define IOMAP_READ_MAX_BIO (4ull << 20)
#define IOMAP_RA_MIN (128ull << 10)

struct iomap_read_bio {
	struct plat_bio bio;
	struct plat_bvec vecs[IOMAP_READ_VECS];
	struct folio *folios[IOMAP_READ_VECS];
	uint32_t offs[IOMAP_READ_VECS];
};

#define IOMAP_RA_FOLIOS 64

struct iomap_read_ctx {
	struct folio *ra[IOMAP_RA_FOLIOS];   /* locked, bias held, file order */
	unsigned nra, cur;
	struct iomap_read_bio *rb;
	int err;
};

static void iomap_read_folio_done(struct folio *f)
{
	if (plat_sub(&f->io_pending, 1) == 0)
		folio_unlock(f);
}

static void iomap_read_end_io(struct plat_bio *bio)
{
	struct iomap_read_bio *rb = (struct iomap_read_bio *)bio;
	for (unsigned i = 0; i < bio->nvec; i++) {
		struct folio *f = rb->folios[i];
		if (!bio->status)
			folio_set_range_uptodate(f, rb->offs[i], rb->vecs[i].len);
		else
			plat_or(&f->flags, FOLIO_ERROR);
		iomap_read_folio_done(f);
	}
	plat_free(rb);
}

static void iomap_read_submit(struct iomap_read_ctx *ctx)
{
	if (ctx->rb) {
		plat_bdev_submit(&ctx->rb->bio);
		ctx->rb = NULL;
	}
}

static void iomap_read_add(struct iomap_read_ctx *ctx, struct folio *f, uint64_t off,
			   struct plat_bdev *bdev, uint64_t dev, uint64_t len)
{
	struct iomap_read_bio *rb = ctx->rb;
	if (rb && rb->bio.bdev == bdev && rb->bio.dev_off + rb->bio.len == dev &&
	    rb->bio.len + len <= IOMAP_READ_MAX_BIO) {
		int r = plat_bio_append(&rb->bio, f->data + off, (uint32_t)len,
					rb->folios[rb->bio.nvec - 1] == f);
		if (r == 0)
			return;
		if (r == 1)
			goto added;
	}
	iomap_read_submit(ctx);
	rb = plat_zalloc(sizeof(*rb));
	if (!rb) {
		/* Leave the blocks not uptodate: the reader sees -EIO. */
		plat_or(&f->flags, FOLIO_ERROR);
		ctx->err = -PLAT_ENOMEM;
		return;
	}
	plat_bio_setup(&rb->bio, bdev, PLAT_BIO_READ, dev, rb->vecs, IOMAP_READ_VECS, iomap_read_end_io);
	plat_bio_append(&rb->bio, f->data + off, (uint32_t)len, false);
	ctx->rb = rb;
added:;
	unsigned i = rb->bio.nvec - 1;
	rb->folios[i] = f;
	rb->offs[i] = (uint32_t)off;
	plat_add(&f->io_pending, 1);
}

static void iomap_read_blocks(struct iomap_iter *it, struct iomap_read_ctx *ctx, struct folio *f,
			      uint64_t pos, uint64_t n)
{
	const struct iomap *map = &it->iomap;
	uint64_t bs = 1ull << it->inode->blkbits, fpos = folio_pos(f);
	uint64_t eof = (iomap_isize(it->inode) + bs - 1) & ~(bs - 1);
	for (uint64_t b = pos; b < pos + n; b += bs) {
		uint64_t off = b - fpos;
		if (folio_range_uptodate(f, off, bs))
			continue;
		if (b >= eof || map->type == IOMAP_HOLE || map->type == IOMAP_UNWRITTEN ||
		    map->type == IOMAP_DELALLOC) {
			plat_memset(f->data + off, 0, bs);
		} else if (map->type == IOMAP_INLINE) {
			uint64_t io = b - map->offset, c = map->length > io ? map->length - io : 0;
			c = iomap_min(c, bs);
			plat_memcpy(f->data + off, (const uint8_t *)map->inline_data + io, c);
			plat_memset(f->data + off + c, 0, bs - c);
		} else {
			iomap_read_add(ctx, f, off, map->bdev, iomap_sector_addr(map, b), bs);
			continue;
		}
		folio_set_range_uptodate(f, off, bs);
	}
}

/*
 * Folios are created, locked and inserted *before* the filesystem is asked
 * for the mapping.  A direct write completes by converting/remapping and
 * then invalidating the cache (DIO-13): if the invalidation comes first it
 * must wait for our folio lock and then drops what we read; if it came
 * earlier, the conversion did too, and our begin sees it.  Either way
 * zeros read from a just-converted unwritten extent never stay cached
 * (DIO-T19).
 */
static void iomap_read_release_all(struct iomap_read_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->nra; i++) {
		iomap_read_folio_done(ctx->ra[i]);   /* drop the submitter's bias */
		folio_put(ctx->ra[i]);
	}
	ctx->nra = 0;
}

/* Create the locked folios for [pos, end), skipping cached ones; stops
 * when memory is short or the array is full.  Returns where it stopped.
 * Folios are made without waiting; with `wait` (the background worker)
 * a batch that has none yet waits for memory (bounded by the cache's
 * PCACHE_WAIT_NS) -- holding no locked folio of its own then, so no
 * reader ever waits behind that wait. */
static uint64_t iomap_ra_alloc(struct iomap_read_ctx *ctx, struct iomap_inode *inode, uint64_t pos, uint64_t end,
			       bool wait)
{
	while (pos < end && ctx->nra < IOMAP_RA_FOLIOS) {
		uint64_t index = pos >> PLAT_PAGE_SHIFT;
		struct folio *f = pcache_lookup(&inode->mapping, index);
		if (f) {
			pos = folio_pos(f) + folio_size(f);
			folio_put(f);
			continue;
		}
		uint64_t pages = (end - pos + PLAT_PAGE_SIZE - 1) >> PLAT_PAGE_SHIFT;
		unsigned order = 0;
		while (order < PCACHE_MAX_ORDER && (2ull << order) <= pages && !(index & ((2ull << order) - 1)))
			order++;
		int ret = pcache_get_folio(&inode->mapping, index, order, PCACHE_CREAT | PCACHE_LOCK | PCACHE_NOWAIT, &f);
		if (ret == -PLAT_EAGAIN && wait && !ctx->nra)
			ret = pcache_get_folio(&inode->mapping, index, 0, PCACHE_CREAT | PCACHE_LOCK, &f);
		if (ret)
			return pos;   /* memory is short (or contended): read what we have */
		pos = folio_pos(f) + folio_size(f);
		if (folio_test(f, FOLIO_UPTODATE)) {
			folio_unlock(f);
			folio_put(f);
			continue;
		}
		plat_store(&f->io_pending, 1);
		ctx->ra[ctx->nra++] = f;
	}
	return pos;
}

/* Fill the blocks of f inside [ds, de) that are not uptodate from data
 * (data[0] is file offset ds); blocks at or past eof read as zeros. */
static void iomap_read_fill(struct folio *f, const uint8_t *data, uint64_t ds, uint64_t de, uint64_t eof,
			    uint64_t bs)
{
	uint64_t fpos = folio_pos(f), s = ds > fpos ? ds : fpos, e = iomap_min(de, fpos + folio_size(f));
	for (uint64_t b = s; b < e; b += bs) {
		if (folio_range_uptodate(f, b - fpos, bs))
			continue;
		if (b >= eof)
			plat_memset(f->data + (b - fpos), 0, bs);
		else
			plat_memcpy(f->data + (b - fpos), data + (b - ds), bs);
		folio_set_range_uptodate(f, b - fpos, bs);
	}
}

/*
 * A mapping with transform stages (COW-35/36): read and decode
 * synchronously into a bounce, then fill the folios.  An ENCODED extent is
 * always read whole and decoded into every logical page it covers: the
 * folios of this read and, when they can be created without waiting, the
 * other pages of the extent.  On failure the folios get FOLIO_ERROR and
 * stay not uptodate: readers see -EIO, never undecoded bytes.
 */
static int64_t iomap_read_xform(struct iomap_iter *it, struct iomap_read_ctx *ctx)
{
	const struct iomap *map = &it->iomap;
	struct iomap_inode *inode = it->inode;
	uint64_t bs = 1ull << inode->blkbits, len = iomap_length(it);
	uint64_t eof = (iomap_isize(inode) + bs - 1) & ~(bs - 1);
	bool enc = map->type == IOMAP_ENCODED;
	uint64_t s = enc ? map->offset : it->pos & ~(bs - 1);
	uint64_t e = enc ? map->offset + map->length : (it->pos + len + bs - 1) & ~(bs - 1);
	uint8_t *data = plat_alloc(e - s);
	int ret = data ? iomap_xform_read(inode, map, s, data, e - s) : -PLAT_ENOMEM;
	for (unsigned i = 0; i < ctx->nra; i++) {
		struct folio *f = ctx->ra[i];
		if (folio_pos(f) >= e || folio_pos(f) + folio_size(f) <= s)
			continue;
		if (ret)
			plat_or(&f->flags, FOLIO_ERROR);
		else
			iomap_read_fill(f, data, s, e, eof, bs);
	}
	if (!ret && enc) {
		for (uint64_t p = s; p < iomap_min(e, eof); p += PLAT_PAGE_SIZE) {
			struct folio *f;
			if (pcache_get_folio(&inode->mapping, p >> PLAT_PAGE_SHIFT, 0,
					     PCACHE_CREAT | PCACHE_LOCK | PCACHE_NOWAIT, &f))
				continue;   /* ours (locked by this read), busy or no memory */
			iomap_read_fill(f, data, s, e, eof, bs);
			p = folio_pos(f) + folio_size(f) - PLAT_PAGE_SIZE;
			folio_unlock(f);
			folio_put(f);
		}
	}
	plat_free(data);
	if (ret && !ctx->err)
		ctx->err = ret;
	return (int64_t)len;
}

static int64_t iomap_read_iter(struct iomap_iter *it, struct iomap_read_ctx *ctx)
{
	uint64_t pos = it->pos, end = pos + iomap_length(it);
	if ((it->iomap.type == IOMAP_MAPPED || it->iomap.type == IOMAP_ENCODED) &&
	    iomap_xformed(it->inode, &it->iomap))
		return iomap_read_xform(it, ctx);
	while (pos < end && ctx->cur < ctx->nra) {
		struct folio *f = ctx->ra[ctx->cur];
		uint64_t fend = folio_pos(f) + folio_size(f);
		if (fend <= pos) {
			ctx->cur++;
			continue;
		}
		if (folio_pos(f) > pos) {
			pos = iomap_min(folio_pos(f), end);   /* cached by others: skip */
			continue;
		}
		uint64_t n = iomap_min(end, fend) - pos;
		iomap_read_blocks(it, ctx, f, pos, n);
		pos += n;
	}
	return (int64_t)(end - it->pos);
}

static int iomap_read_run(struct iomap_inode *inode, uint64_t pos, uint64_t len,
			  struct iomap_read_ctx *ctx, const struct iomap_ops *ops)
{
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len, .flags = IOMAP_READ };
	int ret;
	const struct iomap_hooks *h = inode->hooks;
	while ((ret = iomap_iter(&it, ops)) > 0) {
		if (h && h->after_read_begin)
			h->after_read_begin(&it);
		it.processed = iomap_read_iter(&it, ctx);
	}
	iomap_read_submit(ctx);
	return ret ? ret : ctx->err;
}

/* Readahead of [pos, pos+len).  The reader's own readahead (wait false)
 * never sleeps for memory: what it cannot get now it reads on its miss.
 * The background worker (wait true) waits for memory between batches. */
static void iomap_readahead_wait(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops,
				 bool wait)
{
	uint64_t bs = 1ull << inode->blkbits, align = bs > PLAT_PAGE_SIZE ? bs : PLAT_PAGE_SIZE;
	uint64_t eof = (iomap_isize(inode) + align - 1) & ~(align - 1);
	uint64_t start = pos & ~(align - 1), end = iomap_min(pos + len, eof);
	/* IOMAP_RA_FOLIOS folios at a time: with small folios one batch is
	 * far less than a window. */
	while (start < end) {
		struct iomap_read_ctx ctx = { 0 };
		uint64_t reached = iomap_ra_alloc(&ctx, inode, start, end, wait);
		if (ctx.nra) {
			struct folio *first = ctx.ra[0], *last = ctx.ra[ctx.nra - 1];
			uint64_t s = folio_pos(first), e = iomap_min(folio_pos(last) + folio_size(last), eof);
			if (e > s)
				iomap_read_run(inode, s, e - s, &ctx, ops);
			iomap_read_release_all(&ctx);
		}
		/* Memory is short: the reader reads the rest on its miss.  The
		 * worker goes on unless even its waiting allocation failed. */
		if (ctx.nra < IOMAP_RA_FOLIOS && reached < end && (!wait || !ctx.nra))
			break;
		start = reached;
	}
}

void iomap_readahead(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops)
{
	iomap_readahead_wait(inode, pos, len, ops, false);
}

int iomap_read_folio(struct folio *f, const struct iomap_ops *ops)
{
	struct iomap_inode *inode = f->mapping->host;
	uint64_t bs = 1ull << inode->blkbits, fpos = folio_pos(f);
	uint64_t eof = (iomap_isize(inode) + bs - 1) & ~(bs - 1);
	struct iomap_read_ctx ctx = { 0 };
	int ret = 0;
	folio_get(f);
	plat_store(&f->io_pending, 1);
	ctx.ra[0] = f;
	ctx.nra = 1;
	if (eof > fpos)
		ret = iomap_read_run(inode, fpos, iomap_min(folio_size(f), eof - fpos), &ctx, ops);
	if (eof < fpos + folio_size(f)) {
		/* Past EOF: zeros, no mapping call. */
		uint64_t s = eof > fpos ? eof - fpos : 0;
		for (uint64_t b = s; b < folio_size(f); b += bs) {
			if (!folio_range_uptodate(f, b, bs)) {
				plat_memset(f->data + b, 0, bs);
				folio_set_range_uptodate(f, b, bs);
			}
		}
	}
	iomap_read_release_all(&ctx);
	return ret;
}

/*
 * How much a miss at pos reads (the readahead window).  A read that starts
 * where the previous one ended, or at 0, is sequential: the window is the
 * request or ra_size, whichever is larger, and ra_size doubles with every
 * sequential miss up to IOMAP_RA_MAX.  Any other read is random: only what
 * was asked is read and the ramp starts again.  Reading IOMAP_RA_MIN for
 * every random 4 KiB miss cost 32 blocks read and checksummed for one used
 * (the buffered random-read row of bench-peer KIND=fs: ~0.02x Linux).
 */
#define IOMAP_RA_MAX (8ull << 20)

static bool iomap_ra_sequential(struct iomap_inode *inode, uint64_t pos)
{
	return pos == 0 || pos == __atomic_load_n(&inode->ra_next, __ATOMIC_RELAXED);
}

static uint64_t iomap_ra_window(struct iomap_inode *inode, bool sequential, uint64_t want)
{
	if (!sequential) {
		__atomic_store_n(&inode->ra_size, 0, __ATOMIC_RELAXED);
		return iomap_min(want, IOMAP_RA_MAX);
	}
	uint64_t size = __atomic_load_n(&inode->ra_size, __ATOMIC_RELAXED);
	size = size ? size : IOMAP_RA_MIN;
	__atomic_store_n(&inode->ra_size, iomap_min(size * 2, IOMAP_RA_MAX), __ATOMIC_RELAXED);
	return iomap_min(want > size ? want : size, IOMAP_RA_MAX);
}

/*
 * Asynchronous readahead.  A miss reads its window on the reader's thread,
 * and with transform stages (data checksums) that read is synchronous: the
 * reader would alternate between waiting for the device and copying, and
 * the device would idle while it copies.  So a sequential reader also has
 * the window after the one it is in read by the inode's readahead worker
 * (ra_wq): queued when the reader's miss is served (ra_mark = the end of
 * that window) and again each time the reader enters the window read
 * ahead.  One work item per inode at a time (ra_busy); a reader that
 * finds it busy tries again at its next call.  The worker reads with the
 * ops of the read that queued it, which outlive every inode.
 */
static void iomap_ra_work(struct iomap_work *w)
{
	struct iomap_inode *inode =
		(struct iomap_inode *)((char *)w - __builtin_offsetof(struct iomap_inode, ra_work));
	iomap_readahead_wait(inode, inode->ra_work_pos, inode->ra_work_len, inode->ra_ops, true);
	plat_add(&inode->ra_async_windows, 1);
	/* The last touch of the inode: teardown may free it after this. */
	__atomic_store_n(&inode->ra_busy, 0, __ATOMIC_RELEASE);
}

static void iomap_ra_async(struct iomap_inode *inode, const struct iomap_ops *ops)
{
	uint64_t start = __atomic_load_n(&inode->ra_end, __ATOMIC_RELAXED);
	if (!inode->ra_wq || start >= iomap_isize(inode))
		return;
	int idle = 0;
	if (!__atomic_compare_exchange_n(&inode->ra_busy, &idle, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	uint64_t len = iomap_ra_window(inode, true, 0);
	inode->ra_work_pos = start;
	inode->ra_work_len = len;
	inode->ra_ops = ops;
	__atomic_store_n(&inode->ra_mark, start, __ATOMIC_RELAXED);
	__atomic_store_n(&inode->ra_end, start + len, __ATOMIC_RELAXED);
	inode->ra_work.fn = iomap_ra_work;
	iomap_workq_queue(inode->ra_wq, &inode->ra_work);
}

/* Teardown: the readahead worker has left the inode. */
bool iomap_ra_idle(void *arg)
{
	struct iomap_inode *inode = arg;
	return !__atomic_load_n(&inode->ra_busy, __ATOMIC_ACQUIRE);
}

/*
 * Read into buf.  Cached uptodate data is copied directly; a miss starts
 * readahead (iomap_ra_window) and then waits for the folio; a
 * partially uptodate folio (left by a sub-folio write) is completed with
 * iomap_read_folio.  A folio whose read failed yields -EIO.
 */
int64_t iomap_file_read(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len,
			const struct iomap_ops *ops)
{
	uint64_t isize = iomap_isize(inode), done = 0;
	uint64_t deadline = plat_time_ns() + PCACHE_WAIT_NS;
	int err = 0;
	if (pos >= isize)
		return 0;
	len = iomap_min(len, isize - pos);
	/* Judged where the call begins: its own later misses keep the kind. */
	bool sequential = iomap_ra_sequential(inode, pos);
	while (done < len && !err) {
		uint64_t p = pos + done;
		/* Entering the window read ahead: queue the one after it. */
		if (sequential && inode->ra_wq && p >= __atomic_load_n(&inode->ra_mark, __ATOMIC_RELAXED) &&
		    p < __atomic_load_n(&inode->ra_end, __ATOMIC_RELAXED))
			iomap_ra_async(inode, ops);
		struct folio *f = pcache_lookup(&inode->mapping, p >> PLAT_PAGE_SHIFT);
		if (!f) {
			uint64_t w = iomap_ra_window(inode, sequential, len - done);
			iomap_readahead(inode, p, w, ops);
			if (sequential && inode->ra_wq) {
				__atomic_store_n(&inode->ra_end, p + w, __ATOMIC_RELAXED);
				iomap_ra_async(inode, ops);
			}
			f = pcache_lookup(&inode->mapping, p >> PLAT_PAGE_SHIFT);
			if (!f) {
				err = pcache_get_folio(&inode->mapping, p >> PLAT_PAGE_SHIFT, 0,
						       PCACHE_CREAT | PCACHE_LOCK, &f);
				if (err)
					break;
				err = iomap_read_folio(f, ops);   /* unlocks */
			}
		}
		uint64_t off = p - folio_pos(f), n = iomap_min(folio_size(f) - off, len - done);
		if (!folio_range_uptodate(f, off, n)) {
			if (!err)
				err = folio_wait_unlocked(f, deadline);
			if (!err && !folio_range_uptodate(f, off, n)) {
				err = folio_lock(f, deadline);
				if (!err) {
					if (!folio_range_uptodate(f, off, n)) {
						plat_and(&f->flags, ~(uint32_t)FOLIO_ERROR);
						err = iomap_read_folio(f, ops);
					} else {
						folio_unlock(f);
					}
				}
				if (!err)
					err = folio_wait_unlocked(f, deadline);
				if (!err && !folio_range_uptodate(f, off, n))
					err = -PLAT_EIO;
			}
		}
		if (!err) {
			plat_memcpy((uint8_t *)buf + done, f->data + off, n);
			done += n;
		}
		folio_put(f);
	}
	__atomic_store_n(&inode->ra_next, pos + done, __ATOMIC_RELAXED);
	return done ? (int64_t)done : err;
}
