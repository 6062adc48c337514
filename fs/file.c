/*
 * File data through the iomap core: buffered and direct reads and writes,
 * writeback, size changes, fsync.  The core does every page-cache and
 * block I/O; this file answers "what is at this range" and changes the
 * mapping when writes complete.
 *
 * Copy-on-write with delayed allocation.  A buffered write maps its range
 * DELALLOC with the current on-disk mapping as the source (so partial
 * blocks keep their old bytes) and reserves space: -ENOSPC comes at write
 * time, never at writeback.  Writeback (map_blocks) takes new blocks for
 * the dirty delalloc run -- reserved in memory only (cowfs_alloc_reserve),
 * so a commit during the I/O never records them -- and the completion
 * (end_io) claims them and points the file range at them
 * (cowfs_extent_replace), releasing the old blocks.  A direct write does
 * the same at once: new blocks in begin, the remap in its end_io.  So a
 * block of a committed extent is never written, and a power cut leaves
 * either the old mapping or the new one.
 *
 * Per file (struct cowfs_fdata): the delalloc ranges (dirty in the page
 * cache, space reserved, no blocks yet) and the allocations in flight
 * (blocks taken by map_blocks or a direct write, not yet remapped).
 *
 * Locking: the filesystem lock is taken inside every hook for the tree
 * and allocator work only, never across page-cache or I/O waits (the
 * rule of fs/vfs_int.h).  The inode I/O lock (iomap) orders direct I/O
 * and size changes against each other, as the iomap contract asks: direct
 * reads and direct writes inside the file hold it shared (concurrent
 * writers each remap only the blocks they took, struct range's owner);
 * appends, extending and buffered writes, truncate and fallocate hold it
 * exclusive.
 *
 * This file: per-file set-up and the API (fs/vfs.h); the iomap hooks are
 * in fs/file_map.c, the range sets and the direct I/O range lock in
 * fs/file_ranges.c (internals shared through fs/file_int.h).
 */
#include "fs/file_int.h"
#include "fs/namei_int.h"

/* ---- per-file set-up ---- */

static void fdata_free(struct cowfs_fdata *fd)
{
	plat_free(fd->delalloc.r);
	plat_free(fd->inflight.r);
	plat_free(fd->dio.r);
	plat_waitq_free(fd->dio_wq);
	plat_free(fd);
}

/* Lock held: the data path's state and the iomap inode, made on first use. */
static int file_ready(struct cowfs_vnode *vn)
{
	struct cowfs_mount *m = vn->m;
	if (vn->fd)
		return 0;
	struct cowfs_fdata *fd = plat_zalloc(sizeof(*fd));
	if (!fd || !(fd->dio_wq = plat_waitq_new("cowfs-dio"))) {
		plat_free(fd);
		return -PLAT_ENOMEM;
	}
	int err = iomap_inode_init(&vn->io, m->pc, 12, FILE_MAX_FOLIO_ORDER, &cowfs_file_wb_ops);
	if (err) {
		plat_waitq_free(fd->dio_wq);
		plat_free(fd);
		return err;
	}
	vn->io.ops = &cowfs_file_write_ops;
	vn->io.wq = m->wq;
	vn->io.ra_wq = m->ra_wq;
	vn->io.flush_bdev = m->bdev;
	vn->io.ino = vn->rec.ino;
	vn->io.fs_private = vn;
	vn->io.xform = &cowfs_csum_xform;
	vn->io.size = vn->io.disk_size = vn->rec.size;
	vn->fd = fd;
	return 0;
}

int cowfs_file_get(struct cowfs_mount *m, uint64_t ino, struct cowfs_vnode **out)
{
	struct cowfs_vnode *vn;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err) {
		if (!CFS_S_ISREG(vn->rec.mode))
			err = CFS_S_ISDIR(vn->rec.mode) ? -PLAT_EISDIR : -PLAT_EINVAL;
		else
			err = file_ready(vn);
		if (err)
			cowfs_vput(vn);
		else
			*out = vn;
	}
	cowfs_vfs_unlock(m);
	return err;
}

void cowfs_file_put(struct cowfs_vnode *vn)
{
	struct cowfs_mount *m = vn->m;
	cowfs_vfs_lock(m);
	cowfs_vput(vn);
	cowfs_vfs_unlock(m);
}
/* ---- the API (fs/vfs.h) ---- */

void cowfs_file_touch(struct cowfs_vnode *vn, bool modified)
{
	struct cowfs_time now = cowfs_now();
	plat_mutex_lock(vn->m->lock);
	if (modified)
		vn->rec.mtime = vn->rec.ctime = now;
	cowfs_vdirty(vn);
	plat_mutex_unlock(vn->m->lock);
}

/* relatime after a read (cowfs_atime_due, namei.c).  Reads do not take
 * the filesystem lock: the times are looked at without it first (a torn
 * look only skips or repeats the locked decision), so a file read over
 * and over takes the lock once per change, not once per read. */
static void file_accessed(struct cowfs_vnode *vn)
{
	struct cowfs_inode look;
	look.atime.sec = __atomic_load_n(&vn->rec.atime.sec, __ATOMIC_RELAXED);
	look.atime.nsec = __atomic_load_n(&vn->rec.atime.nsec, __ATOMIC_RELAXED);
	look.mtime.sec = __atomic_load_n(&vn->rec.mtime.sec, __ATOMIC_RELAXED);
	look.mtime.nsec = __atomic_load_n(&vn->rec.mtime.nsec, __ATOMIC_RELAXED);
	look.ctime.sec = __atomic_load_n(&vn->rec.ctime.sec, __ATOMIC_RELAXED);
	look.ctime.nsec = __atomic_load_n(&vn->rec.ctime.nsec, __ATOMIC_RELAXED);
	if (!cowfs_atime_due(&look, cowfs_now()))
		return;
	plat_mutex_lock(vn->m->lock);
	cowfs_accessed(vn->m, vn);
	plat_mutex_unlock(vn->m->lock);
}

int64_t cowfs_read(struct cowfs_mount *m, uint64_t ino, uint64_t off, void *buf, uint64_t len, unsigned flags)
{
	struct cowfs_vnode *vn;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	int64_t ret;
	if (flags & CFS_IO_DIRECT) {
		if ((off | len | (uintptr_t)buf) & (BS - 1)) {
			cowfs_file_put(vn);
			return -PLAT_EINVAL;
		}
		uint64_t size = iomap_isize(&vn->io);
		if (off >= size)
			ret = 0;
		else {
			if (len > size - off)
				len = up(size - off);
			ret = iomap_lock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
			if (!ret) {
				ret = cowfs_dio_range_lock(vn, off, off + len, false);
				if (!ret) {
					iomap_writepages(&vn->io, off, off + len, true, NULL);   /* dirty cache first */
					ret = iomap_dio_rw(&vn->io, off, buf, len, 0, &cowfs_file_read_ops,
							   &cowfs_file_dio_ops);
					cowfs_dio_range_unlock(vn, off, off + len);
				}
				iomap_unlock(&vn->io.io_lock, IOMAP_LOCK_SHARED);
			}
			if (ret > 0 && (uint64_t)ret > size - off)
				ret = (int64_t)(size - off);
		}
	} else {
		ret = iomap_file_read(&vn->io, off, buf, len, &cowfs_file_read_ops);
	}
	if (ret >= 0)
		file_accessed(vn);
	cowfs_file_put(vn);
	return ret;
}

int64_t cowfs_write(struct cowfs_mount *m, uint64_t ino, uint64_t off, const void *buf, uint64_t len,
		    unsigned flags)
{
	struct cowfs_vnode *vn;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	int64_t ret;
	bool touched = false;
	/* A direct write inside the file takes the inode lock shared, so
	 * writers of different ranges overlap their I/O and their tree work
	 * (like XFS's aligned direct writes).  Each takes its own new blocks
	 * and remaps only those (struct range's owner); two over the same
	 * range end as the one that completed last, both crash safe.  One
	 * that extends the file, an append and buffered writes change the
	 * size or the cache: exclusive, which also waits out shared holders. */
	unsigned lk = (flags & CFS_IO_DIRECT) && !(flags & CFS_IO_APPEND) ? IOMAP_LOCK_SHARED : 0;
	err = iomap_lock(&vn->io.io_lock, lk);
	if (!err && lk && (off + len > iomap_isize(&vn->io) || off + len < off)) {
		iomap_unlock(&vn->io.io_lock, lk);
		lk = 0;
		err = iomap_lock(&vn->io.io_lock, lk);
	}
	if (err) {
		cowfs_file_put(vn);
		return err;
	}
	if (flags & CFS_IO_APPEND)
		off = iomap_isize(&vn->io);
	if (off + len > FILE_MAX_BYTES || off + len < off) {
		ret = -PLAT_EFBIG;
	} else if (flags & CFS_IO_DIRECT) {
		if ((off | len | (uintptr_t)buf) & (BS - 1)) {
			ret = -PLAT_EINVAL;
		} else if (!(ret = cowfs_dio_range_lock(vn, off, off + len, true))) {
			iomap_writepages(&vn->io, off, off + len, true, NULL);
			pcache_invalidate_range(&vn->io.mapping, off, off + len, true);
			ret = iomap_dio_rw(&vn->io, off, (void *)buf, len, IOMAP_DIO_WRITE |
					   (flags & CFS_IO_DSYNC ? IOMAP_DIO_DSYNC : 0),
					   &cowfs_file_write_ops, &cowfs_file_dio_ops);
			/* One pass under the lock: blocks taken but not written
			 * (a short or failed I/O) given back, the range lock
			 * dropped, the times of a write that wrote (the lock is
			 * the one every writer queues on at QD32: three
			 * sections were three hand-offs). */
			plat_mutex_lock(m->lock);
			cowfs_inflight_drop(vn, off, off + len, cowfs_dio_owner());
			cowfs_dio_range_unlock_locked(vn, off, off + len);
			if (ret > 0) {
				struct cowfs_time now = cowfs_now();
				vn->rec.mtime = vn->rec.ctime = now;
				cowfs_vdirty(vn);
				touched = true;
			}
			plat_mutex_unlock(m->lock);
			plat_wake_all(vn->fd->dio_wq);
		}
	} else {
		struct iomap_source src = { .buf = buf };
		ret = iomap_file_buffered_write(&vn->io, off, &src, len, &cowfs_file_write_ops, 0);
		if (ret > 0)
			pcache_balance_dirty(m->pc);
	}
	iomap_unlock(&vn->io.io_lock, lk);
	if (ret > 0) {
		if (!touched)
			cowfs_file_touch(vn, true);
		if (flags & CFS_IO_DSYNC) {
			int e = cowfs_fsync(m, ino, true);
			if (e)
				ret = e;
		}
	}
	cowfs_file_put(vn);
	return ret;
}

int cowfs_fsync(struct cowfs_mount *m, uint64_t ino, bool datasync)
{
	struct cowfs_vnode *vn;
	(void)datasync;
	cowfs_vfs_lock(m);
	int err = cowfs_vget(m, ino, &vn);
	if (!err && CFS_S_ISREG(vn->rec.mode))
		err = file_ready(vn);
	cowfs_vfs_unlock(m);
	if (err)
		return err;
	/* The data to its new blocks and remapped (no FLUSH yet: the log or
	 * the commit sends the one that covers it), then the intent log
	 * (fs/file_log.c), or one commit for the mapping and the names above
	 * it when the change is not one the log records. */
	if (vn->fd) {
		err = iomap_writepages(&vn->io, 0, UINT64_MAX, true, NULL);
		int e2 = pcache_wait_writeback_range(&vn->io.mapping, 0, UINT64_MAX, plat_time_ns() + PCACHE_WAIT_NS);
		int e3 = pcache_mapping_take_error(&vn->io.mapping);
		err = e3 ? e3 : err < 0 ? err : e2;
	}
	cowfs_vfs_lock(m);
	if (!err) {
		err = cowfs_file_log(m, vn);
		if (err == -PLAT_EAGAIN) {
			m->fsync_commits++;
			/* Nothing to commit: written data (committed by a
			 * commit in between) still needs its FLUSH.  A failed
			 * or read-only filesystem says so, as before. */
			bool commit = m->fs->readonly || m->fs->dirty_changes || vn->rec_dirty;
			err = commit ? cowfs_vfs_commit_locked(m) : cowfs_flush(m->fs);
		}
	}
	cowfs_vput(vn);
	cowfs_vfs_unlock(m);
	return err;
}

void cowfs_fsync_counts(struct cowfs_mount *m, uint64_t *logged, uint64_t *committed)
{
	cowfs_vfs_lock(m);
	*logged = m->fsync_logged;
	*committed = m->fsync_commits;
	cowfs_vfs_unlock(m);
}

int cowfs_drop_cache(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_vnode *vn;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	/* Under the I/O lock no write dirties a page meanwhile; written back
	 * and waited for first, so only clean pages are dropped.  A lock wait
	 * that timed out holds nothing: nothing is dropped. */
	if ((err = iomap_lock(&vn->io.io_lock, 0))) {
		cowfs_file_put(vn);
		return err;
	}
	err = iomap_writepages(&vn->io, 0, UINT64_MAX, true, NULL);
	int e2 = pcache_wait_writeback_range(&vn->io.mapping, 0, UINT64_MAX, plat_time_ns() + PCACHE_WAIT_NS);
	int e3 = err < 0 || e2 ? 0 : pcache_invalidate_range(&vn->io.mapping, 0, UINT64_MAX, false);
	iomap_unlock(&vn->io.io_lock, 0);
	cowfs_file_put(vn);
	return err < 0 ? err : e2 ? e2 : e3;
}

int cowfs_file_setsize(struct cowfs_mount *m, uint64_t ino, uint64_t size)
{
	struct cowfs_vnode *vn;
	if (size > FILE_MAX_BYTES)
		return -PLAT_EFBIG;
	int err = cowfs_file_get(m, ino, &vn);
	if (err)
		return err;
	if ((err = iomap_lock(&vn->io.io_lock, 0))) {
		cowfs_file_put(vn);
		return err;
	}
	err = iomap_dio_wait(&vn->io, plat_time_ns() + PCACHE_WAIT_NS);
	uint64_t old = iomap_isize(&vn->io);
	if (!err && size < old) {
		plat_store(&vn->io.size, size);
		err = iomap_truncate_page(&vn->io, size, &cowfs_file_write_ops);
		uint64_t keep = up(size);
		/* Written back first, so no I/O completes into the range after
		 * its extents are gone. */
		int e2 = iomap_writepages(&vn->io, keep, UINT64_MAX, true, NULL);
		/* Writeback already under way (not dirty, so not visited
		 * above) must complete -- its remap -- before the punch. */
		int e5 = pcache_wait_writeback_range(&vn->io.mapping, 0, UINT64_MAX, plat_time_ns() + PCACHE_WAIT_NS);
		int e3 = pcache_invalidate_range(&vn->io.mapping, keep, UINT64_MAX, true);
		err = err ? err : e2 < 0 ? e2 : e5 ? e5 : e3;
		plat_mutex_lock(m->lock);
		/* Blocks a writeback took for the rest of a delalloc run that
		 * now lies past the end were never written: given back (in
		 * forget_range), or a later completion in the range would map
		 * them. */
		cowfs_file_forget_range(vn, keep, UINT64_MAX);
		int e4 = cowfs_extent_punch_from(m, vn, keep);
		err = err ? err : e4;
		vn->rec.size = size;
		plat_mutex_unlock(m->lock);
		if (vn->io.disk_size > size)
			plat_store(&vn->io.disk_size, size);
	} else if (!err) {
		plat_store(&vn->io.size, size);
		plat_mutex_lock(m->lock);
		vn->rec.size = size;
		plat_mutex_unlock(m->lock);
	}
	iomap_unlock(&vn->io.io_lock, 0);
	if (!err)
		cowfs_file_touch(vn, true);
	cowfs_file_put(vn);
	return err;
}

/* ---- what fs/vfs.c calls ---- */

int cowfs_file_free_data(struct cowfs_vnode *vn)
{
	struct cowfs_mount *m = vn->m;
	int err = 0;
	if (CFS_S_ISREG(vn->rec.mode))
		err = cowfs_extent_punch_from(m, vn, 0);
	if (vn->fd) {
		uint64_t was = cowfs_ranges_cut(&vn->fd->delalloc, 0, UINT64_MAX, ANY_OWNER, NULL) / BS;
		m->reserved_blocks -= was < m->reserved_blocks ? was : m->reserved_blocks;
		cowfs_inflight_drop(vn, 0, UINT64_MAX, ANY_OWNER);
		fdata_free(vn->fd);
		vn->fd = NULL;
	}
	return err;
}

void cowfs_file_drop_cache(struct cowfs_vnode *vn)
{
	if (!vn->fd)
		return;
	if (vn->doomed)          /* nobody will read it: no writeback */
		pcache_invalidate_range(&vn->io.mapping, 0, UINT64_MAX, true);
	iomap_inode_destroy(&vn->io);
	if (!vn->doomed) {
		fdata_free(vn->fd);
		vn->fd = NULL;
	}
}

int cowfs_file_writeback_all(struct cowfs_mount *m)
{
	/* The files with dirty data, referenced, then written back and waited
	 * for without the lock. */
	struct cowfs_vnode **list = NULL;
	uint64_t n = 0, cap = 0;
	int first = 0;
	cowfs_vfs_lock(m);
	for (uint64_t i = 0; i <= m->vhash_mask; i++)
		for (struct cowfs_vnode *v = m->vhash[i]; v; v = v->hnext) {
			if (!v->fd || v->doomed || !(v->fd->delalloc.n || v->fd->inflight.n))
				continue;
			if (n == cap) {
				uint64_t nc = cap ? cap * 2 : 64;
				struct cowfs_vnode **nl = plat_alloc(nc * sizeof(*nl));
				if (!nl) {
					first = -PLAT_ENOMEM;
					break;
				}
				if (n)
					plat_memcpy(nl, list, n * sizeof(*nl));
				plat_free(list);
				list = nl;
				cap = nc;
			}
			v->refs++;
			list[n++] = v;
		}
	cowfs_vfs_unlock(m);
	for (uint64_t i = 0; i < n; i++) {
		int err = iomap_writepages(&list[i]->io, 0, UINT64_MAX, true, NULL);
		/* Writeback someone else started (not dirty, so not visited
		 * above) completes too: its remap belongs in this commit. */
		int e2 = pcache_wait_writeback_range(&list[i]->io.mapping, 0, UINT64_MAX,
						     plat_time_ns() + PCACHE_WAIT_NS);
		if (err >= 0)
			err = e2;
		if (err < 0 && !first)
			first = err;
		cowfs_file_put(list[i]);
	}
	plat_free(list);
	return first;
}

uint64_t cowfs_file_reserved(struct cowfs_mount *m)
{
	return m->reserved_blocks + m->inflight_blocks;
}

void cowfs_file_attr(struct cowfs_vnode *vn, struct cowfs_inode *out)
{
	if (vn->fd)
		out->size = iomap_isize(&vn->io);
}

void cowfs_file_forget_range(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	struct cowfs_mount *m = vn->m;
	uint64_t was = cowfs_ranges_cut(&vn->fd->delalloc, start, end, ANY_OWNER, NULL) / BS;
	m->reserved_blocks -= was < m->reserved_blocks ? was : m->reserved_blocks;
	/* Writeback takes blocks for a whole delalloc run at once; those of
	 * the range whose folios were dropped before their I/O will never be
	 * written.  (The callers hold the inode lock exclusive: no direct
	 * write has blocks in flight.) */
	cowfs_inflight_drop(vn, start, end, ANY_OWNER);
	vn->fd->seq++;
}
uint64_t cowfs_file_reserved_in(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	return cowfs_ranges_overlap(&vn->fd->delalloc, start, end) / BS;
}

bool cowfs_file_pending(struct cowfs_vnode *vn, uint64_t pos, uint64_t *next)
{
	const struct ranges *sets[2] = { &vn->fd->delalloc, &vn->fd->inflight };
	*next = UINT64_MAX;
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < sets[k]->n; i++) {
			const struct range *r = &sets[k]->r[i];
			if (r->start <= pos && pos < r->end) {
				*next = r->end;
				return true;
			}
			if (r->start > pos && r->start < *next)
				*next = r->start;
		}
	return false;
}
