/*
 * Test filesystem: direct I/O (begin for direct writes, completion, the
 * locking and fallback wrappers).  See testfs.h.
 */
#include "tests/host/testfs_int.h"

/*
 * Direct write begin (COW-22, EXT-19): holes/delalloc get new blocks
 * allocated now as UNWRITTEN (never exposing stale disk contents); shared
 * blocks get a new extent in the COW fork (remapped at completion); unshared
 * written blocks are overwritten in place.  NOWAIT / OVERWRITE_ONLY refuse
 * anything that needs allocation with -EAGAIN (DIO-7, DIO-39).
 */
int tfs_dio_write_begin(struct tfs_inode *ti, uint64_t b0, uint64_t b1, unsigned flags,
			       struct iomap *iomap, struct iomap *srcmap)
{
	struct tfs *fs = ti->fs;
	plat_mutex_lock(fs->lock);
	fs->st.begins++;
	int ret = 0;
	struct tfs_blk k = ti->blk[b0];
	bool shared = tfs_shared(ti, b0);
	if (k.cow == TFS_COW_ALLOC) {
		/* Already allocated in the COW fork: write there (DIO-6:
		 * overlapping writers are serialised by this lock). */
		uint64_t n = tfs_data_run(ti, b0, b1), i = 1;
		while (i < n && ti->blk[b0 + i].cow == TFS_COW_ALLOC && ti->blk[b0 + i].cow_addr == k.cow_addr + i)
			i++;
		tfs_fill_data_map(ti, b0, i, srcmap);
		iomap->offset = b0 << BB(ti);
		iomap->length = i << BB(ti);
		iomap->type = IOMAP_MAPPED;
		iomap->flags = IOMAP_F_SHARED | IOMAP_F_NEW;
		iomap->addr = k.cow_addr << BB(ti);
		iomap->bdev = fs->bdev;
		goto out_cookie;
	}
	bool overwrite = k.state == TFS_MAPPED && !shared;
	if (!overwrite && (flags & (IOMAP_NOWAIT | IOMAP_OVERWRITE_ONLY))) {
		ret = -PLAT_EAGAIN;
		goto out;
	}
	uint64_t n = tfs_data_run(ti, b0, b1);
	if (overwrite || k.state == TFS_UNWRITTEN) {
		for (uint64_t i = 1; i < n; i++)
			if (tfs_shared(ti, b0 + i)) {
				n = i;
				break;
			}
		tfs_fill_data_map(ti, b0, n, iomap);
	} else if (shared) {
		uint64_t i = 0, addr;
		while (i < n && tfs_shared(ti, b0 + i) && ti->blk[b0 + i].cow == TFS_COW_NONE)
			i++;
		if (!i || !(i = tfs_alloc(fs, i, false, &addr))) {
			ret = -PLAT_ENOSPC;
			goto out;
		}
		for (uint64_t j = 0; j < i; j++) {
			ti->blk[b0 + j].cow = TFS_COW_ALLOC;
			ti->blk[b0 + j].cow_addr = addr + j;
		}
		tfs_fill_data_map(ti, b0, i, srcmap);
		iomap->offset = b0 << BB(ti);
		iomap->length = i << BB(ti);
		iomap->type = IOMAP_MAPPED;
		iomap->flags = IOMAP_F_SHARED | IOMAP_F_NEW;
		iomap->addr = addr << BB(ti);
		iomap->bdev = fs->bdev;
		ti->seq++;
	} else {
		/* HOLE or DELALLOC: allocate now, unwritten until completion. */
		uint64_t addr, i = 0;
		while (i < n && ti->blk[b0 + i].cow == TFS_COW_NONE)
			i++;
		bool delalloc = k.state == TFS_DELALLOC;
		i = tfs_alloc(fs, i, delalloc, &addr);
		if (!i) {
			ret = -PLAT_ENOSPC;
			goto out;
		}
		for (uint64_t j = 0; j < i; j++) {
			ti->blk[b0 + j].state = TFS_UNWRITTEN;
			ti->blk[b0 + j].addr = addr + j;
		}
		ti->seq++;
		tfs_fill_data_map(ti, b0, i, iomap);
		iomap->flags |= IOMAP_F_NEW;
	}
out_cookie:
	iomap->validity_cookie = ti->seq;
out:
	plat_mutex_unlock(fs->lock);
	return ret;
}

/* DIO completion (COW-23): success converts unwritten blocks and remaps
 * COW blocks of the range; failure frees the new COW blocks and keeps the
 * old mapping; unwritten blocks stay unwritten (read as zeros). */
static int tfs_dio_end_io(struct iomap_inode *inode, uint64_t pos, int64_t size, unsigned dio_flags)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	struct tfs *fs = ti->fs;
	(void)dio_flags;
	plat_mutex_lock(fs->lock);
	fs->st.end_ios++;
	uint64_t b0 = pos >> BB(ti);
	uint64_t b1 = size > 0 ? (pos + (uint64_t)size) >> BB(ti) : b0;
	uint64_t bend = b1;
	/* Blocks begin set up beyond a short/failed transfer: the COW ones
	 * are cancelled so no waiter hangs and no space leaks (COW-24). */
	while (bend < ti->maxblk && ti->blk[bend].cow == TFS_COW_ALLOC)
		bend++;
	for (uint64_t b = b0; b < bend; b++) {
		struct tfs_blk *k = &ti->blk[b];
		if (b < b1 && size > 0) {
			if (k->cow == TFS_COW_ALLOC) {
				if (k->state == TFS_MAPPED || k->state == TFS_UNWRITTEN)
					tfs_decref(fs, k->addr);
				k->state = TFS_MAPPED;
				k->addr = k->cow_addr;
				k->cow = TFS_COW_NONE;
				fs->st.remaps++;
				tfs_log_append(ti, b, k->addr);
			} else if (k->state == TFS_UNWRITTEN) {
				k->state = TFS_MAPPED;
				fs->st.conversions++;
				tfs_log_append(ti, b, k->addr);
			}
		} else if (k->cow == TFS_COW_ALLOC) {
			tfs_decref(fs, k->cow_addr);
			k->cow = TFS_COW_NONE;
		}
	}
	if (size < 0)
		fs->st.end_io_errors++;
	else if (pos + (uint64_t)size > ti->persisted_size)
		ti->persisted_size = pos + (uint64_t)size;
	ti->seq++;
	plat_mutex_unlock(fs->lock);
	return 0;
}

const struct iomap_dio_ops tfs_dio_ops = { NULL, tfs_dio_end_io };

/*
 * Direct write with the locking of DIO-5 and the fallback of DIO-16 /
 * Variant B of DIO-20: shared lock when the write is inside EOF (checked
 * again under the lock; escalate otherwise), the buffered remainder under
 * the same lock, then write back + wait + invalidate, one O_DSYNC sync.
 */
int64_t tfs_dio_write(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len, unsigned flags)
{
	struct iomap_inode *ino = &ti->ino;
	bool aligned = !((pos | len) & (BS(ti) - 1));
	unsigned lk = (aligned && pos + len <= iomap_isize(ino)) ? IOMAP_LOCK_SHARED : 0;
	if (flags & IOMAP_DIO_NOWAIT)
		lk |= IOMAP_LOCK_TRY;
	int ret = iomap_lock(&ino->io_lock, lk);
	if (ret)
		return ret;
	if ((lk & IOMAP_LOCK_SHARED) && pos + len > iomap_isize(ino)) {
		/* DIO-T5: truncate raced the unlocked check: escalate. */
		iomap_unlock(&ino->io_lock, lk);
		lk &= ~IOMAP_LOCK_SHARED;
		if ((ret = iomap_lock(&ino->io_lock, lk)))
			return ret;
		ti->fs->st.escalations++;
	}
	ti->last_dio_shared = lk & IOMAP_LOCK_SHARED;
	int64_t done = iomap_dio_rw(ino, pos, buf, len,
				    flags | IOMAP_DIO_WRITE | IOMAP_DIO_DEFER_SYNC, &tfs_write_ops, &tfs_dio_ops);
	if (done == -PLAT_EAGAIN || (done < 0 && done != -IOMAP_ENOTBLK)) {
		iomap_unlock(&ino->io_lock, lk);
		return done;
	}
	if (done < 0)
		done = 0;
	if ((uint64_t)done < len) {
		/* Buffered remainder: needs the exclusive lock. */
		if (lk & IOMAP_LOCK_SHARED) {
			iomap_unlock(&ino->io_lock, lk);
			lk = 0;
			if ((ret = iomap_lock(&ino->io_lock, 0)))
				return done ? done : ret;
		}
		struct iomap_source src = { (uint8_t *)buf + done, NULL, NULL };
		struct iomap_source *sp = &src;
		uint64_t p = pos + (uint64_t)done;
		int64_t r = iomap_file_buffered_write(ino, p, sp, len - (uint64_t)done, &tfs_write_ops, 0);
		(void)r;
		ti->fs->st.dio_fallbacks++;
		ret = iomap_writepages(ino, pos, pos + len, true, NULL);
		if (!ret)
			ret = pcache_wait_writeback_range(&ino->mapping, pos, pos + len, plat_time_ns() + PCACHE_WAIT_NS);
		/* The whole pages around the range go: they are clean now. */
		if (!ret)
			ret = pcache_invalidate_range(&ino->mapping, pos & ~(uint64_t)(PLAT_PAGE_SIZE - 1),
						      (pos + len + PLAT_PAGE_SIZE - 1) & ~(uint64_t)(PLAT_PAGE_SIZE - 1), true);
		if (r > 0)
			done += r;
		if (ret && !done)
			done = ret;
	}
	if (done > 0 && (flags & IOMAP_DIO_DSYNC)) {
		ti->fs->st.dsync_flushes++;
		ret = plat_bdev_flush(ti->fs->bdev);   /* exactly once (DIO-18) */
		if (ret)
			done = ret;
	}
	iomap_unlock(&ino->io_lock, lk);
	return done;
}

int64_t tfs_dio_read(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len)
{
	int ret = iomap_lock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);   /* DIO-4 */
	if (ret)
		return ret;
	int64_t done = iomap_dio_rw(&ti->ino, pos, buf, len, 0, &tfs_read_ops, &tfs_dio_ops);
	iomap_unlock(&ti->ino.io_lock, IOMAP_LOCK_SHARED);
	if (done >= 0 && (uint64_t)done < len && pos + (uint64_t)done < iomap_isize(&ti->ino)) {
		/* DIO-16/COW-21: misaligned or short: the rest buffered. */
		int64_t r = tfs_read(ti, pos + (uint64_t)done, (uint8_t *)buf + done, len - (uint64_t)done);
		if (r > 0)
			done += r;
	}
	return done;
}
