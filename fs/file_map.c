/*
 * The iomap hooks of cowfs file data (the design: fs/file.c): what is at
 * a range (read_begin, the on-disk mapping), new blocks for writes
 * (write_begin: delalloc reservations for buffered writes, blocks at once
 * for direct ones; map_blocks: blocks for a writeback run) and the
 * completions that point the file at them (remap).  Each takes m->lock
 * for its tree and allocator work only.
 */
#include "fs/file_int.h"

int cowfs_file_map_disk(struct cowfs_vnode *vn, uint64_t pos, struct iomap *map)
{
	struct cowfs_extent e;
	bool found;
	int err = cowfs_extent_find(vn->m, vn->rec.ino, down(pos), &e, &found);
	if (err)
		return err;
	map->bdev = vn->m->bdev;
	map->validity_cookie = vn->fd->seq;
	if (found) {
		map->offset = e.off;
		map->length = (uint64_t)e.nblocks * BS;
		map->type = IOMAP_MAPPED;
		map->flags |= IOMAP_F_CSUM;
		map->addr = e.disk_block * BS;
	} else {
		map->offset = down(pos);
		map->length = (e.off == UINT64_MAX ? FILE_MAX_BYTES : e.off) - down(pos);
		map->type = IOMAP_HOLE;
		map->addr = IOMAP_NULL_ADDR;
	}
	return 0;
}

static int read_begin(struct iomap_inode *io, uint64_t pos, uint64_t len, unsigned flags, struct iomap *iomap,
		      struct iomap *srcmap)
{
	struct cowfs_vnode *vn = VN(io);
	(void)len;
	(void)flags;
	(void)srcmap;
	plat_mutex_lock(vn->m->lock);
	int err = cowfs_file_map_disk(vn, pos, iomap);
	plat_mutex_unlock(vn->m->lock);
	return err;
}

/* New blocks (in memory only) for a write of [start, end): as many as
 * come contiguous, at least one.  Lock held. */
static int take_blocks(struct cowfs_vnode *vn, uint64_t start, uint64_t end, uint64_t owner, uint64_t *addr,
		       uint64_t *len)
{
	uint64_t want = (end - start) / BS, blk;
	if (want > CFS_EXTENT_MAX_BLOCKS)
		want = CFS_EXTENT_MAX_BLOCKS;
	while (want) {
		int err = cowfs_alloc_reserve(vn->m->fs, (uint32_t)want, &blk);
		if (!err) {
			int e2 = cowfs_ranges_reserve(&vn->fd->inflight);
			if (e2) {
				cowfs_alloc_unreserve(vn->m->fs, blk, (uint32_t)want);
				return e2;
			}
			vn->fd->inflight.r[vn->fd->inflight.n++] = (struct range){ start, start + want * BS, blk * BS, owner };
			vn->m->inflight_blocks += want;
			*addr = blk * BS;
			*len = want * BS;
			return 0;
		}
		if (err != -PLAT_ENOSPC)
			return err;
		want /= 2;                        /* fragmented: smaller runs */
	}
	return -PLAT_ENOSPC;
}

int cowfs_file_room(struct cowfs_mount *m, uint64_t want)
{
	/* Leave room for the metadata a commit needs (a few nodes per MiB).
	 * Freed blocks are reusable once the commit after their free is
	 * durable: when they are what is missing, commit (at most twice). */
	uint64_t meta = 64 + (m->reserved_blocks + want) / 64, room = 0;
	for (int round = 0; want && round < 3; round++) {
		struct cowfs_info in;
		cowfs_info(m->fs, &in);
		uint64_t busy = in.used_blocks + in.pinned_blocks + m->reserved_blocks + m->inflight_blocks;
		room = busy < in.total_blocks ? in.total_blocks - busy : 0;
		if (want + meta <= room || !in.pinned_blocks || round == 2)
			break;
		m->fs->dirty_changes++;
		if (cowfs_vfs_commit_locked(m))
			break;
	}
	return want && want + meta > room ? -PLAT_ENOSPC : 0;
}

static int write_begin(struct iomap_inode *io, uint64_t pos, uint64_t len, unsigned flags, struct iomap *iomap,
		       struct iomap *srcmap)
{
	struct cowfs_vnode *vn = VN(io);
	struct cowfs_mount *m = vn->m;
	uint64_t start = down(pos), end = up(pos + len);
	if (end > FILE_MAX_BYTES)
		return -PLAT_EFBIG;
	plat_mutex_lock(m->lock);
	int err = cowfs_writable(m->fs);
	if (err)
		goto out;
	if (flags & IOMAP_DIRECT) {
		/* Whole blocks (the core checked): new blocks now, the remap
		 * in the direct I/O's end_io. */
		uint64_t addr, got;
		struct cowfs_info in;
		cowfs_info(m->fs, &in);
		uint64_t busy = in.used_blocks + in.pinned_blocks + m->reserved_blocks + m->inflight_blocks;
		if (busy + 64 + (end - start) / BS > in.total_blocks) {
			err = -PLAT_ENOSPC;      /* never the space buffered writes reserved */
			goto out;
		}
		if ((err = take_blocks(vn, start, end, cowfs_dio_owner(), &addr, &got)))
			goto out;
		*iomap = (struct iomap){ .offset = start, .length = got, .addr = addr, .bdev = m->bdev,
					 .type = IOMAP_MAPPED, .flags = IOMAP_F_NEW | IOMAP_F_SHARED | IOMAP_F_CSUM,
					 .validity_cookie = vn->fd->seq };
		goto out;
	}
	/* Buffered: reserve what is not reserved yet, map DELALLOC over
	 * the on-disk source. */
	if ((err = cowfs_file_map_disk(vn, pos, srcmap)))
		goto out;
	uint64_t send = srcmap->offset + srcmap->length, next;
	if (end > send)
		end = send;
	if ((flags & IOMAP_ZERO) && srcmap->type == IOMAP_HOLE && !cowfs_file_pending(vn, start, &next)) {
		/* Zeroing a hole with no data waiting in the cache (a truncate
		 * or punch edge): it reads as zeros already.  A HOLE, so no
		 * reservation is taken that no dirty folio would ever use. */
		*iomap = *srcmap;
		if (next < send)
			iomap->length = next - iomap->offset;
		*srcmap = (struct iomap){ 0 };
		goto out;
	}
	uint64_t added;
	if ((err = cowfs_delalloc_add(&vn->fd->delalloc, start, end, &added)))
		goto out;
	if (added && (err = cowfs_file_room(m, added))) {
		cowfs_ranges_cut(&vn->fd->delalloc, start, end, ANY_OWNER, NULL);
		goto out;
	}
	m->reserved_blocks += added;
	*iomap = (struct iomap){ .offset = start, .length = end - start, .addr = IOMAP_NULL_ADDR, .bdev = m->bdev,
				 .type = IOMAP_DELALLOC, .flags = IOMAP_F_SHARED,
				 .validity_cookie = vn->fd->seq };
	if (srcmap->type == IOMAP_HOLE)
		*srcmap = (struct iomap){ 0 };        /* nothing old to read: no source */
out:
	plat_mutex_unlock(m->lock);
	return err;
}

void cowfs_inflight_drop(struct cowfs_vnode *vn, uint64_t start, uint64_t end, uint64_t owner)
{
	struct ranges gone = { 0 };
	cowfs_ranges_cut(&vn->fd->inflight, start, end, owner, &gone);
	for (unsigned i = 0; i < gone.n; i++) {
		uint64_t n = (gone.r[i].end - gone.r[i].start) / BS;
		cowfs_alloc_unreserve(vn->m->fs, gone.r[i].addr / BS, (uint32_t)n);
		vn->m->inflight_blocks -= n;
	}
	plat_free(gone.r);
}

/* Write completion (writeback or direct): [start, end) is on the new
 * blocks owner took; point the file at them.  Lock held. */
static int remap(struct cowfs_vnode *vn, uint64_t start, uint64_t end, uint64_t new_size, uint64_t owner)
{
	struct ranges done = { 0 };
	int err = 0;
	cowfs_ranges_cut(&vn->fd->inflight, start, end, owner, &done);
	for (unsigned i = 0; i < done.n && !err; i++) {
		uint64_t blk = done.r[i].addr / BS, n = (done.r[i].end - done.r[i].start) / BS;
		cowfs_alloc_claim(vn->m->fs, blk, (uint32_t)n);
		vn->m->inflight_blocks -= n;
		err = cowfs_extent_replace(vn->m, vn, done.r[i].start, blk, (uint32_t)n);
		if (!err)
			cowfs_file_log_note(vn, done.r[i].start, done.r[i].end);   /* for fsync's log */
	}
	plat_free(done.r);
	if (!err && done.n && new_size > vn->rec.size) {
		vn->rec.size = new_size;
		cowfs_vdirty(vn);
	}
	vn->fd->seq++;
	if (err)
		cowfs_fail(vn->m->fs, err, "inode %llu: remapping written data failed", (unsigned long long)vn->rec.ino);
	return err;
}

static int map_blocks(struct iomap_writepage_ctx *wpc, struct iomap_inode *io, uint64_t pos, uint64_t len)
{
	struct cowfs_vnode *vn = VN(io);
	struct cowfs_mount *m = vn->m;
	uint64_t start = down(pos), end = up(pos + len), addr, got;
	plat_mutex_lock(m->lock);
	int err = cowfs_writable(m->fs);
	struct iomap *map = &wpc->iomap;
	const struct range *r = err ? NULL : cowfs_ranges_find(&vn->fd->inflight, start, WB_OWNER);
	if (r) {
		/* Taken before (a retried writeback): the same blocks. */
		addr = r->addr + (start - r->start);
		got = r->end - start;
	} else if (!err) {
		/* The dirty delalloc run at pos becomes in flight (a dirty
		 * block outside it -- the zeroed tail of a truncate -- gets
		 * its own block). */
		const struct range *d = cowfs_ranges_find(&vn->fd->delalloc, start, ANY_OWNER);
		uint64_t stop = d ? d->end : start + BS;
		(void)end;
		/* Not over blocks taken before for a later part of the run
		 * (redirtied while they wait for their writeback): two
		 * allocations for one file block would remap it twice. */
		for (unsigned i = 0; i < vn->fd->inflight.n; i++)
			if (vn->fd->inflight.r[i].start > start && vn->fd->inflight.r[i].start < stop)
				stop = vn->fd->inflight.r[i].start;
		err = take_blocks(vn, start, stop, WB_OWNER, &addr, &got);
		if (!err) {
			uint64_t was = cowfs_ranges_cut(&vn->fd->delalloc, start, start + got, ANY_OWNER, NULL) / BS;
			m->reserved_blocks -= was < m->reserved_blocks ? was : m->reserved_blocks;
		}
	}
	if (!err)
		*map = (struct iomap){ .offset = start, .length = got, .addr = addr, .bdev = m->bdev,
				       .type = IOMAP_MAPPED, .flags = IOMAP_F_NEW | IOMAP_F_SHARED | IOMAP_F_CSUM,
				       .validity_cookie = vn->fd->seq };
	plat_mutex_unlock(m->lock);
	return err;
}

static bool wb_valid(struct iomap_inode *io, const struct iomap *iomap)
{
	(void)io;
	(void)iomap;
	return false;         /* always map again: a cached map may span blocks since remapped */
}

static int wb_end_io(struct iomap_inode *io, uint64_t pos, uint64_t len, const struct iomap *map, int error,
		     uint64_t new_disk_size)
{
	struct cowfs_vnode *vn = VN(io);
	(void)map;
	plat_mutex_lock(vn->m->lock);
	int err = 0;
	if (error)
		cowfs_inflight_drop(vn, down(pos), up(pos + len), WB_OWNER);   /* the old mapping stays (COW-23) */
	else
		err = remap(vn, down(pos), up(pos + len), new_disk_size, WB_OWNER);
	plat_mutex_unlock(vn->m->lock);
	return err;
}

static void wb_discard(struct iomap_inode *io, uint64_t pos, uint64_t len)
{
	struct cowfs_vnode *vn = VN(io);
	plat_mutex_lock(vn->m->lock);
	uint64_t was = cowfs_ranges_cut(&vn->fd->delalloc, down(pos), up(pos + len), ANY_OWNER, NULL) / BS;
	vn->m->reserved_blocks -= was < vn->m->reserved_blocks ? was : vn->m->reserved_blocks;
	plat_mutex_unlock(vn->m->lock);
}

static int dio_end_io(struct iomap_inode *io, uint64_t pos, int64_t size, unsigned dio_flags)
{
	struct cowfs_vnode *vn = VN(io);
	plat_mutex_lock(vn->m->lock);
	int err = 0;
	/* Reads complete here too (no flags): they map nothing.  (A read
	 * that found blocks in flight in its range -- only the truncate
	 * above could leave such -- once mapped them.) */
	if (size > 0 && (dio_flags & (IOMAP_DIO_COW | IOMAP_DIO_NEW | IOMAP_DIO_UNWRITTEN)))
		err = remap(vn, down(pos), up(pos + (uint64_t)size), pos + (uint64_t)size, cowfs_dio_owner());
	plat_mutex_unlock(vn->m->lock);      /* what was taken and not written: cowfs_write */
	return err;
}

const struct iomap_ops cowfs_file_read_ops = { read_begin, NULL };
const struct iomap_ops cowfs_file_write_ops = { write_begin, NULL };
const struct iomap_writeback_ops cowfs_file_wb_ops = { map_blocks, wb_valid, wb_end_io, wb_discard };
const struct iomap_dio_ops cowfs_file_dio_ops = { NULL, dio_end_io };
