/*
 * Writeback: dirty blocks -> map_blocks -> I/O units (ioends) -> completion
 * hook -> on-disk size -> end of folio writeback.  Also fsync and the
 * inode setup that ties a mapping to the background writeback threads.
 */
#include "iomap/buffered_io.h"
#include "iomap/workq.h"
#include "iomap/xform.h"

#define IOMAP_IOEND_VECS 256
#define IOMAP_IOEND_MAX (8ull << 20)
#define IOMAP_MAP_HINT_MAX (64ull << 20)

/*
 * An ioend is one I/O unit: a run of dirty blocks contiguous in the file
 * and on the device, from one mapping, possibly spanning folios (one bio
 * segment per folio piece).  Every segment holds a folio reference and one
 * count of the folio's wb_pending; the folio leaves writeback when its last
 * ioend completed *and* the filesystem's end_io ran for it, so fsync,
 * which waits for writeback, also waits for unwritten conversion and COW
 * remapping (COW-23, EXT-29).
 */
struct iomap_ioend {
	struct plat_bio bio;
	struct iomap_ioend *next;       /* on the inode's completion list */
	struct iomap_inode *inode;
	struct iomap map;
	uint64_t pos, len;
	struct plat_bvec vecs[IOMAP_IOEND_VECS];
	struct folio *folios[IOMAP_IOEND_VECS];
	/* Transformed ioends (COW-35) write an encoded bounce buffer. */
	uint8_t *bounce;
	unsigned nfolio;
	struct plat_bvec bounce_vec;
};

static void iomap_folio_wb_done(struct folio *f)
{
	if (plat_sub(&f->wb_pending, 1) == 0)
		folio_end_writeback(f);
}

/* Folio side of a finished ioend: errors into folio state, end of
 * writeback when this was the folio's last ioend. */
void (*iomap_test_ioend_finish_hook)(void);

static void iomap_ioend_finish(struct iomap_ioend *io, int err)
{
	unsigned nf = io->bounce ? io->nfolio : io->bio.nvec;
	for (unsigned i = 0; i < nf; i++) {
		struct folio *f = io->folios[i];
		if (err)
			plat_or(&f->flags, FOLIO_ERROR);
		iomap_folio_wb_done(f);
		if (iomap_test_ioend_finish_hook)
			iomap_test_ioend_finish_hook();
		folio_put(f);
	}
	plat_free(io->bounce);
	plat_free(io);
}

static bool iomap_ioend_can_merge(const struct iomap_ioend *a, const struct iomap_ioend *b)
{
	return a->pos + a->len == b->pos && a->map.type == b->map.type &&
	       (a->map.flags & IOMAP_F_SHARED) == (b->map.flags & IOMAP_F_SHARED) &&
	       (a->map.flags & IOMAP_F_XFORM) == (b->map.flags & IOMAP_F_XFORM) &&
	       !(a->map.flags & IOMAP_F_ENCODED) &&   /* one encoded extent per ioend */
	       (!(a->map.flags & IOMAP_F_XFORM) ||    /* stages keyed by device address */
		a->bio.dev_off + a->len == b->bio.dev_off) &&
	       !a->bio.status && !b->bio.status;
}

/*
 * Completion, in thread context (EXT-27).  Finished ioends of an inode are
 * collected on its list; one work item drains it, sorts by offset and
 * merges adjacent ioends of the same kind (EXT-28), so the filesystem does
 * its metadata work once per merged range.  Order per range (EXT-29/30):
 * the filesystem hook (conversion / remap only when the data write
 * succeeded), the on-disk size raise (monotonic, never past i_size, only
 * on success), errors into the mapping (fsync reports the first) and
 * folio state, then the end of writeback.
 */
static void iomap_ioend_drain(struct iomap_work *w)
{
	struct iomap_inode *inode = (struct iomap_inode *)((char *)w -
		__builtin_offsetof(struct iomap_inode, ioend_work));
	for (;;) {
		plat_spin_lock(inode->ioend_lock);
		struct iomap_ioend *list = inode->ioend_done;
		inode->ioend_done = NULL;
		if (!list)
			inode->ioend_queued = 0;
		plat_spin_unlock(inode->ioend_lock);
		if (!list)
			return;
		/* Insertion sort by file offset (lists are short). */
		struct iomap_ioend *sorted = NULL;
		while (list) {
			struct iomap_ioend *io = list, **pp = &sorted;
			list = io->next;
			while (*pp && (*pp)->pos < io->pos)
				pp = &(*pp)->next;
			io->next = *pp;
			*pp = io;
		}
		while (sorted) {
			struct iomap_ioend *first = sorted, *last = sorted;
			uint64_t len = first->len;
			while (last->next && iomap_ioend_can_merge(last, last->next)) {
				last = last->next;
				len += last->len;
			}
			sorted = last->next;
			last->next = NULL;
			int err = first->bio.status;
			uint64_t new_disk = iomap_min(first->pos + len, iomap_isize(inode));
			int ret = 0;
			if (inode->wb_ops->end_io)
				ret = inode->wb_ops->end_io(inode, first->pos, len, &first->map, err, new_disk);
			if (!err && !ret)
				iomap_raise(&inode->disk_size, new_disk);
			if (!err)
				err = ret;
			if (err) {
				plat_log(PLAT_LOG_ERR, "iomap: writeback of inode %llu bytes %llu+%llu to %s at %llu "
					 "failed: %s (reported by fsync; the data is still only in memory)",
					 (unsigned long long)inode->ino, (unsigned long long)first->pos,
					 (unsigned long long)len,
					 first->map.bdev ? plat_bdev_name(first->map.bdev) : "?",
					 (unsigned long long)first->map.addr, plat_strerror(err));
				pcache_mapping_set_error(&inode->mapping, err);
			}
			plat_add(&inode->ioend_completions, 1);
			while (first) {
				struct iomap_ioend *next = first->next;
				iomap_ioend_finish(first, err);
				first = next;
			}
		}
	}
}

unsigned iomap_ioends_completed(struct iomap_inode *inode)
{
	unsigned n = 0;
	plat_spin_lock(inode->ioend_lock);
	for (struct iomap_ioend *io = inode->ioend_done; io; io = io->next)
		n++;
	plat_spin_unlock(inode->ioend_lock);
	return n;
}

static void iomap_ioend_end_io(struct plat_bio *bio)
{
	struct iomap_ioend *io = (struct iomap_ioend *)bio;
	struct iomap_inode *inode = io->inode;
	bool queue;
	plat_spin_lock(inode->ioend_lock);
	io->next = inode->ioend_done;
	inode->ioend_done = io;
	queue = !inode->ioend_queued;
	inode->ioend_queued = 1;
	plat_spin_unlock(inode->ioend_lock);
	if (queue) {
		inode->ioend_work.fn = iomap_ioend_drain;
		iomap_workq_queue(inode->wq, &inode->ioend_work);
	}
}

/*
 * COW-35: encode the ioend's bytes into a bounce buffer and point the bio
 * at it; the folios keep the plain data.  end_io sees the stored size in
 * map.io_size and the stages really applied in map.flags.  A failed encode
 * completes the ioend with the error (folios error, no metadata change).
 */
static bool iomap_ioend_encode(struct iomap_ioend *io)
{
	struct iomap_inode *inode = io->inode;
	uint64_t bs = 1ull << inode->blkbits;
	uint8_t *plain = plat_alloc((io->len + bs - 1) & ~(bs - 1)), *out = NULL;
	uint64_t done = 0, stored = 0;
	uint16_t applied = 0;
	int ret = -PLAT_ENOMEM;
	if (plain) {
		for (unsigned i = 0; i < io->bio.nvec; i++) {
			plat_memcpy(plain + done, io->vecs[i].buf, io->vecs[i].len);
			done += io->vecs[i].len;
		}
		ret = iomap_xform_encode_owned(inode, &io->map, io->pos, io->bio.dev_off, plain, io->len,
					       &out, &stored, &applied);   /* consumes plain */
	}
	if (ret) {
		io->bio.status = ret;
		return false;
	}
	io->bounce = out;
	io->nfolio = io->bio.nvec;
	io->bounce_vec.buf = out;
	io->bounce_vec.len = (uint32_t)stored;
	io->bio.vec = &io->bounce_vec;
	io->bio.nvec = 1;
	io->bio.maxvec = 1;
	io->bio.len = stored;
	io->map.io_size = stored;
	io->map.flags = (uint16_t)((io->map.flags & ~IOMAP_F_XFORM) | applied);
	return true;
}

/*
 * One device write for several ioends.  Writeback of scattered dirty
 * blocks makes one ioend per run contiguous in the file, but a
 * copy-on-write filesystem allocates their new blocks one after the
 * other: ioends that follow each other on the device are sent as one
 * write (each keeps its own completion, metadata work and folios; only
 * the device command is shared).  Per command the device costs far more
 * than per byte (a doorbell and an interrupt; under qemu's TCG an exit
 * each), so a random-write pass costs about one command per ~1 MiB
 * instead of one per block.
 */
#define IOMAP_WRITE_MEMBERS 64

struct iomap_wchain {
	struct plat_bio bio;
	struct plat_bvec vecs[IOMAP_IOEND_VECS];
	struct iomap_ioend *members[IOMAP_WRITE_MEMBERS];
	unsigned n;
};

static void iomap_wchain_end_io(struct plat_bio *bio)
{
	struct iomap_wchain *c = (struct iomap_wchain *)bio;
	for (unsigned i = 0; i < c->n; i++) {
		c->members[i]->bio.status = bio->status;
		iomap_ioend_end_io(&c->members[i]->bio);
	}
	plat_free(c);
}

static bool iomap_wchain_add(struct iomap_wchain *c, struct iomap_ioend *io)
{
	if (c->n == IOMAP_WRITE_MEMBERS || c->bio.nvec + io->bio.nvec > IOMAP_IOEND_VECS)
		return false;
	for (unsigned i = 0; i < io->bio.nvec; i++)
		c->vecs[c->bio.nvec++] = io->bio.vec[i];
	c->bio.len += io->bio.len;
	c->members[c->n++] = io;
	return true;
}

/* Send what is held: one ioend with its own bio, or a chain. */
static void iomap_write_flush(struct iomap_writepage_ctx *wpc)
{
	if (wpc->chain) {
		struct iomap_wchain *c = wpc->chain;
		wpc->chain = NULL;
		plat_bdev_submit(&c->bio);
	} else if (wpc->held) {
		struct iomap_ioend *io = wpc->held;
		wpc->held = NULL;
		plat_bdev_submit(&io->bio);
	}
}

/* Hold a finished ioend until the next one shows whether they go to the
 * device together. */
static void iomap_write_hold(struct iomap_writepage_ctx *wpc, struct iomap_ioend *io)
{
	struct iomap_wchain *c = wpc->chain;
	struct iomap_ioend *last = c ? c->members[c->n - 1] : wpc->held;
	bool next_to = last && last->bio.bdev == io->bio.bdev && last->bio.dev_off + last->bio.len == io->bio.dev_off &&
		       (c ? c->bio.len : last->bio.len) + io->bio.len <= IOMAP_IOEND_MAX;
	if (next_to && c && iomap_wchain_add(c, io))
		return;
	if (next_to && !c) {
		c = plat_zalloc(sizeof(*c));
		if (c) {
			plat_bio_setup(&c->bio, last->bio.bdev, PLAT_BIO_WRITE, last->bio.dev_off, c->vecs,
				       IOMAP_IOEND_VECS, iomap_wchain_end_io);
			if (iomap_wchain_add(c, last) && iomap_wchain_add(c, io)) {
				wpc->held = NULL;
				wpc->chain = c;
				return;
			}
			plat_free(c);      /* too many vectors: each alone */
		}
	}
	iomap_write_flush(wpc);
	wpc->held = io;
}

static void iomap_ioend_submit(struct iomap_writepage_ctx *wpc)
{
	struct iomap_ioend *xio = wpc->ioend;
	if (xio && xio->inode->xform && (xio->map.flags & IOMAP_F_XFORM) && !iomap_ioend_encode(xio)) {
		wpc->ioend = NULL;
		iomap_ioend_end_io(&xio->bio);
		return;
	}
	if (wpc->ioend) {
		wpc->nr_ioends++;
		iomap_write_hold(wpc, wpc->ioend);
		wpc->ioend = NULL;
	}
}

static int iomap_add_to_ioend(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode,
			      struct folio *f, uint64_t pos, uint64_t len)
{
	const struct iomap *map = &wpc->iomap;
	uint64_t dev = iomap_sector_addr(map, pos), off = pos - folio_pos(f);
	struct iomap_ioend *io = wpc->ioend;
	/* Merge while type, COW-ness and device agree and the range stays
	 * contiguous in the file and on the device, even across mappings
	 * (a re-map after a cookie change must not split the I/O). */
	if (io && io->map.bdev == map->bdev && io->map.type == map->type &&
	    (io->map.flags & IOMAP_F_SHARED) == (map->flags & IOMAP_F_SHARED) &&
	    (io->map.flags & IOMAP_F_XFORM) == (map->flags & IOMAP_F_XFORM) &&
	    (!(map->flags & IOMAP_F_ENCODED) || io->folios[io->bio.nvec - 1] == f) &&
	    io->pos + io->len == pos && io->bio.dev_off + io->len == dev &&
	    io->len + len <= IOMAP_IOEND_MAX) {
		int r = plat_bio_append(&io->bio, f->data + off, (uint32_t)len,
					io->folios[io->bio.nvec - 1] == f);
		if (r == 0)
			goto grow;
		if (r == 1)
			goto added;
	}
	iomap_ioend_submit(wpc);
	io = plat_zalloc(sizeof(*io));
	if (!io)
		return -PLAT_ENOMEM;
	io->inode = inode;
	io->map = *map;
	io->pos = pos;
	plat_bio_setup(&io->bio, map->bdev, PLAT_BIO_WRITE, dev, io->vecs, IOMAP_IOEND_VECS, iomap_ioend_end_io);
	plat_bio_append(&io->bio, f->data + off, (uint32_t)len, false);
	wpc->ioend = io;
added:;
	unsigned i = io->bio.nvec - 1;
	io->folios[i] = f;
	folio_get(f);
	plat_add(&f->wb_pending, 1);
grow:
	io->len += len;
	return 0;
}

/* DIO-37/EXT-4: the cached mapping is reused only while it covers pos and
 * its validity cookie still matches. */
static bool iomap_wpc_map_ok(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode, uint64_t pos)
{
	const struct iomap *m = &wpc->iomap;
	if (!wpc->have_map || pos < m->offset || pos >= m->offset + m->length)
		return false;
	if (inode->wb_ops->iomap_valid && !inode->wb_ops->iomap_valid(inode, m))
		return false;
	return true;
}

/* Write back the dirty blocks of one locked folio. */
static int iomap_writepage(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode, struct folio *f)
{
	uint64_t bs = 1ull << inode->blkbits, fpos = folio_pos(f);
	uint64_t eof = (iomap_isize(inode) + bs - 1) & ~(bs - 1);
	unsigned nb = f->nblocks, b = 0;
	int err = 0;

	folio_clear_dirty(f);
	folio_start_writeback(f);
	plat_store(&f->wb_pending, 1);
	while (b < nb) {
		if (!folio_block_dirty(f, b)) {
			b++;
			continue;
		}
		unsigned e = b;
		while (e < nb && folio_block_dirty(f, e))
			e++;
		uint64_t pos = fpos + (uint64_t)b * bs, end = fpos + (uint64_t)e * bs;
		folio_clear_range_dirty(f, pos - fpos, end - pos);
		if (end > eof)          /* dirty past EOF: truncate raced; drop */
			end = eof > pos ? eof : pos;
		while (pos < end) {
			const struct iomap_hooks *h = inode->hooks;
			if (h && h->wb_map)
				h->wb_map(inode, pos);   /* test delay/bump point */
			if (!iomap_wpc_map_ok(wpc, inode, pos)) {
				wpc->have_map = false;
				plat_memset(&wpc->iomap, 0, sizeof(wpc->iomap));
				/* Folio held: the filesystem may only try-lock
				 * extent ranges here (COW-39). */
				iomap_lockdep_acquire(IOMAP_LC_FOLIO, false);
				/* EXT-25: ask for the rest of the writeback range so a
				 * delalloc run is allocated in one go. */
				uint64_t hint = wpc->range_end - pos;
				if (hint > IOMAP_MAP_HINT_MAX)
					hint = IOMAP_MAP_HINT_MAX;
				if (hint < end - pos)
					hint = end - pos;
				int ret = inode->wb_ops->map_blocks(wpc, inode, pos, hint);
				iomap_lockdep_release(IOMAP_LC_FOLIO);
				wpc->nr_maps++;
				if (ret == -PLAT_EAGAIN) {
					wpc->eagain++;
					/* Redirty what is left of this folio, skip it. */
					folio_set_range_dirty(f, pos - fpos, fpos + (uint64_t)e * bs - pos);
					folio_mark_dirty(f);
					goto out;
				}
				if (!ret && (wpc->iomap.length == 0 || pos < wpc->iomap.offset ||
					     pos >= wpc->iomap.offset + wpc->iomap.length ||
					     wpc->iomap.type == IOMAP_DELALLOC))
					ret = -PLAT_EIO;   /* map_blocks broke its contract */
				if (ret) {
					err = ret;
					plat_or(&f->flags, FOLIO_ERROR);
					if (inode->wb_ops->discard)
						inode->wb_ops->discard(inode, pos, end - pos);
					break;
				}
				wpc->have_map = true;
			} else {
				wpc->nr_map_reuse++;
			}
			uint64_t n = iomap_min(end, wpc->iomap.offset + wpc->iomap.length) - pos;
			if (wpc->iomap.type == IOMAP_HOLE) {
				plat_log(PLAT_LOG_WARN, "iomap: writeback found a hole at %llu",
					 (unsigned long long)pos);
			} else {
				int ret = iomap_add_to_ioend(wpc, inode, f, pos, n);
				if (ret) {
					err = ret;
					folio_set_range_dirty(f, pos - fpos, end - pos);
					folio_mark_dirty(f);
					break;
				}
			}
			pos += n;
		}
		b = e;
	}
out:
	iomap_folio_wb_done(f);   /* the bias */
	return err;
}

int iomap_writepages(struct iomap_inode *inode, uint64_t start, uint64_t end, bool sync,
		     struct iomap_writepage_ctx *stats_out)
{
	struct iomap_writepage_ctx wpc = { .sync = sync, .range_start = start, .range_end = end };
	struct folio *batch[16];
	uint64_t next = start >> PLAT_PAGE_SHIFT;
	uint64_t last = end == UINT64_MAX ? UINT64_MAX : (end - 1) >> PLAT_PAGE_SHIFT;
	uint64_t deadline = plat_time_ns() + PCACHE_WAIT_NS;
	if (!inode->wb_ops || end <= start)
		return 0;
again:
	for (;;) {
		unsigned n = pcache_gang_lookup(&inode->mapping, next, last, PCACHE_TAG_DIRTY, batch, 16);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++) {
			struct folio *f = batch[i];
			next = f->index + (1ull << f->order);
			int ret = 0;
			if (!sync) {
				if (!folio_trylock(f)) {
					folio_put(f);
					continue;
				}
			} else {
				ret = folio_lock(f, deadline);
			}
			if (!ret && folio_test(f, FOLIO_WRITEBACK)) {
				if (sync)
					ret = folio_wait_writeback(f, deadline);
				else
					ret = -PLAT_EAGAIN;
				if (ret)
					folio_unlock(f);
			}
			if (!ret) {
				if (folio_test(f, FOLIO_IN_INDEX) && folio_test(f, FOLIO_DIRTY))
					ret = iomap_writepage(&wpc, inode, f);
				folio_unlock(f);
			}
			if (ret && ret != -PLAT_EAGAIN && !wpc.err)
				wpc.err = ret;
			folio_put(f);
		}
		if (next == 0 || next > last)
			break;
	}
	iomap_ioend_submit(&wpc);
	iomap_write_flush(&wpc);
	/* COW-39: folios skipped because map_blocks could not take the
	 * extent range without blocking were redirtied; an integrity pass
	 * (fsync) must come back for them, bounded by the deadline. */
	if (sync && wpc.eagain && !wpc.err) {
		if (plat_time_ns() > deadline) {
			wpc.err = -PLAT_ETIMEDOUT;
		} else {
			wpc.eagain = 0;
			next = start >> PLAT_PAGE_SHIFT;
			plat_sleep_ns(100000);
			goto again;
		}
	}
	if (stats_out)
		*stats_out = wpc;
	return wpc.err;
}

int iomap_fsync(struct iomap_inode *inode, uint64_t start, uint64_t end)
{
	int ret = iomap_writepages(inode, start, end, true, NULL);
	int wret = pcache_wait_writeback_range(&inode->mapping, start, end, plat_time_ns() + PCACHE_WAIT_NS);
	int err = pcache_mapping_take_error(&inode->mapping);
	if (!err)
		err = ret;
	if (!err)
		err = wret;
	if (!err && inode->flush_bdev)
		err = plat_bdev_flush(inode->flush_bdev);
	return err;
}

static int iomap_mapping_writeback(struct pcache_mapping *m, bool sync)
{
	return iomap_writepages(m->host, 0, UINT64_MAX, sync, NULL);
}

int iomap_inode_init(struct iomap_inode *inode, struct pcache *pc, unsigned blkbits,
		     unsigned max_folio_order, const struct iomap_writeback_ops *wb_ops)
{
	plat_memset(inode, 0, sizeof(*inode));
	inode->blkbits = blkbits;
	inode->wb_ops = wb_ops;
	int ret = pcache_mapping_init(pc, &inode->mapping, blkbits, max_folio_order, inode,
				      iomap_mapping_writeback);
	if (!ret)
		ret = iomap_rwsem_init(&inode->io_lock, "inode-io", IOMAP_LC_INODE);
	if (!ret)
		ret = iomap_rwsem_init(&inode->invalidate_lock, "inode-invalidate", IOMAP_LC_INVALIDATE);
	if (!ret && !(inode->dio_wq = plat_waitq_new("dio")))
		ret = -PLAT_ENOMEM;
	if (!ret && !(inode->ioend_lock = plat_spin_new("ioend")))
		ret = -PLAT_ENOMEM;
	return ret;
}

static bool iomap_no_dio(void *arg)
{
	struct iomap_inode *inode = arg;
	return plat_load(&inode->dio_count) == 0;
}

/* The completion work item has left the inode: nothing queued, and the
 * drain is not running (it clears ioend_queued under the lock as its last
 * touch of the inode).  Read under the lock for that reason. */
static bool iomap_ioend_idle(void *arg)
{
	struct iomap_inode *inode = arg;
	plat_spin_lock(inode->ioend_lock);
	bool idle = !inode->ioend_queued && !inode->ioend_done;
	plat_spin_unlock(inode->ioend_lock);
	return idle;
}

int iomap_inode_destroy(struct iomap_inode *inode)
{
	/* Direct I/O in flight points into the inode and the caller's pages:
	 * wait for it however long it takes (platform.h, buffer lifetime). */
	if (plat_wait_owned(inode->dio_wq, iomap_no_dio, inode, NULL, plat_time_ns() + PCACHE_WAIT_NS,
			    "iomap: inode teardown waiting for direct I/O"))
		plat_log(PLAT_LOG_ERR, "iomap: direct I/O finished late inside a dying inode");
	while (plat_load(&inode->dio_wakers))
		plat_yield();
	int ret = iomap_fsync(inode, 0, UINT64_MAX);
	/* fsync returns once the writeback flags are clear, but the drain
	 * clears them before its last folio_put, which may free a folio and
	 * touch the mapping: wait until the drain has left the inode. */
	if (plat_wait_owned(NULL, iomap_ioend_idle, inode, NULL, plat_time_ns() + PCACHE_WAIT_NS,
			    "iomap: inode teardown waiting for writeback completion work"))
		plat_log(PLAT_LOG_ERR, "iomap: writeback completion work left inode %llu late",
			 (unsigned long long)inode->ino);
	/* The readahead worker holds folios of this mapping and the inode. */
	if (plat_wait_owned(NULL, iomap_ra_idle, inode, NULL, plat_time_ns() + PCACHE_WAIT_NS,
			    "iomap: inode teardown waiting for readahead"))
		plat_log(PLAT_LOG_ERR, "iomap: readahead left inode %llu late", (unsigned long long)inode->ino);
	pcache_mapping_destroy(&inode->mapping);
	iomap_rwsem_destroy(&inode->io_lock);
	iomap_rwsem_destroy(&inode->invalidate_lock);
	plat_waitq_free(inode->dio_wq);
	plat_spin_free(inode->ioend_lock);
	return ret;
}
