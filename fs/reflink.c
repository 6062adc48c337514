/*
 * Reflink of ranges: cowfs_clone_range (fs/vfs.h has the contract).
 *
 * A clone makes the destination's EXTENT items name the source's data
 * blocks.  Nothing new goes on disk for the data: each shared block gains
 * one reference (a DATA_REF item, docs/format.md §10: the count of EXTENT
 * items naming the block, one per leaf copy, exactly what a snapshot's
 * leaf copy adds) and keeps its one checksum (the checksum tree is keyed
 * by block; fs/dataref.c deletes it when the last reference goes).  A
 * later write to either file goes to new blocks (copy-on-write) and only
 * releases that file's reference, so the other file never changes.
 *
 * Order, under both files' I/O locks held exclusive (no write, size
 * change, punch or direct I/O of either runs meanwhile; direct I/O
 * already issued is waited for):
 *   1. every argument refusal (type, flags, alignment, the source's end
 *      of file, overlap within one file, the largest file);
 *   2. the source's dirty data in the range written back and waited for
 *      (the clone shares what is on disk), and the destination's range
 *      written back too, then its folios dropped: its old bytes stay
 *      intact if a later refusal (-ENOSPC, -EMLINK) stops the clone;
 *   3. under the filesystem lock, as one step of one transaction: the
 *      remaining refusals (read-only, data still pending in a range, no
 *      room for the metadata, a block's reference count at its maximum)
 *      while the source's extents are gathered, then the changes --
 *      references raised, the destination's range released through the
 *      punch path (dataref aware), the gathered extents inserted, size,
 *      block count, mtime and ctime.  A failure after the first change
 *      makes the filesystem read-only (the last commit stays intact);
 *   4. the destination's folios of the range dropped again: a buffered
 *      read that mapped the old extents before step 3 may have cached
 *      their bytes.
 *
 * fsync: the intent log records new extents of written data only, so a
 * clone marks the destination unloggable for the running transaction
 * (nolog_gen, as a truncate does): its fsync commits.
 */
#include "fs/file.h"
#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"

#define BS CFS_BLOCK_SIZE

static uint64_t up(uint64_t x) { return (x + BS - 1) & ~(uint64_t)(BS - 1); }

struct piece { uint64_t off, blk, gen; uint32_t n; };   /* off: relative to the range's start */

struct pieces {
	struct piece *p;
	uint64_t n, cap, blocks;
};

static int pieces_add(struct pieces *s, struct piece pc)
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? s->cap * 2 : 16;
		struct piece *np = plat_alloc(cap * sizeof(*np));
		if (!np)
			return -PLAT_ENOMEM;
		if (s->n)
			plat_memcpy(np, s->p, s->n * sizeof(*np));
		plat_free(s->p);
		s->p = np;
		s->cap = cap;
	}
	s->p[s->n++] = pc;
	s->blocks += pc.n;
	return 0;
}

/* Lock held: whether any data of [start, end) is not yet in an extent. */
static bool pending_in(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	uint64_t next;
	return cowfs_file_pending(vn, start, &next) || next < end;
}

/* Lock held: the source's extents of [start, end), cut to the range. */
static int gather(struct cowfs_vnode *src, uint64_t start, uint64_t end, struct pieces *out)
{
	uint64_t pos = start;
	while (pos < end) {
		struct cowfs_extent e;
		bool found;
		int err = cowfs_extent_find(src->m, src->rec.ino, pos, &e, &found);
		if (err)
			return err;
		if (!found) {
			pos = e.off;             /* a hole: the destination gets one too */
			continue;
		}
		uint64_t eend = e.off + (uint64_t)e.nblocks * BS, stop = eend < end ? eend : end;
		struct piece pc = { pos - start, e.disk_block + (pos - e.off) / BS, e.gen, (uint32_t)((stop - pos) / BS) };
		if ((err = pieces_add(out, pc)))
			return err;
		pos = stop;
	}
	return 0;
}

/* Heap sort of pieces by block (the source range may name one block
 * twice, after an earlier clone within it). */
static void sift(struct piece *p, uint64_t i, uint64_t n)
{
	for (uint64_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && p[c + 1].blk > p[c].blk)
			c++;
		if (p[i].blk >= p[c].blk)
			return;
		struct piece t = p[i];
		p[i] = p[c];
		p[c] = t;
	}
}

static void sort_by_block(struct piece *p, uint64_t n)
{
	for (uint64_t i = n / 2; i-- > 0;)
		sift(p, i, n);
	for (uint64_t end = n; end > 1; end--) {
		struct piece t = p[0];
		p[0] = p[end - 1];
		p[end - 1] = t;
		sift(p, 0, end - 1);
	}
}

/* Lock held: no block would pass CFS_DATA_REF_MAX references, counting
 * the ones the clone adds (a block named k times in the range gets k). */
static int refs_fit(struct cowfs *fs, const struct pieces *ps)
{
	struct piece *p = ps->n ? plat_alloc(ps->n * sizeof(*p)) : NULL;
	if (ps->n && !p)
		return -PLAT_ENOMEM;
	if (ps->n)
		plat_memcpy(p, ps->p, ps->n * sizeof(*p));
	sort_by_block(p, ps->n);
	int err = 0;
	uint64_t max_end = 0;
	for (uint64_t i = 0; i < ps->n && !err; i++) {
		/* The earlier pieces (by block) overlapping this one: each
		 * block of it is named at most 1 + extra times. */
		uint32_t extra = 0;
		for (uint64_t j = i; p[i].blk < max_end && j-- > 0;)
			extra += p[j].blk + p[j].n > p[i].blk;
		if (p[i].blk + p[i].n > max_end)
			max_end = p[i].blk + p[i].n;
		for (uint64_t b = p[i].blk; b < p[i].blk + p[i].n && !err; b++) {
			uint32_t refs;
			if (!(err = cowfs_data_ref_get(fs, b, &refs)) && (uint64_t)refs + 1 + extra > CFS_DATA_REF_MAX)
				err = -PLAT_EMLINK;
		}
	}
	plat_free(p);
	return err;
}

/* Lock held, every refusal decided: the changes of step 3. */
static int clone_apply(struct cowfs_vnode *dst, uint64_t doff, uint64_t dend, const struct pieces *ps)
{
	struct cowfs_mount *m = dst->m;
	uint64_t de = up(dend);
	int err = 0;
	for (uint64_t i = 0; i < ps->n && !err; i++)
		err = cowfs_data_ref_inc(m->fs, ps->p[i].blk, ps->p[i].n);
	if (!err) {
		cowfs_file_forget_range(dst, doff, de);
		err = cowfs_extent_punch(m, dst, doff, de);
	}
	for (uint64_t i = 0; i < ps->n && !err; i++)
		err = cowfs_extent_item_put(m->tree, dst->rec.ino, doff + ps->p[i].off, ps->p[i].blk, ps->p[i].n,
					    ps->p[i].gen);
	if (err)
		return err;
	dst->rec.blocks += ps->blocks;
	/* The range is on disk now: the recorded size covers it (data a
	 * writeback would have recorded was written back in step 2). */
	uint64_t isize = iomap_isize(&dst->io), carried = isize < de ? isize : de;
	if (carried > dst->rec.size)
		dst->rec.size = carried;
	if (dend > isize) {
		plat_store(&dst->io.size, dend);
		dst->rec.size = dend;
	}
	if (dst->io.disk_size < dst->rec.size)
		plat_store(&dst->io.disk_size, dst->rec.size);
	dst->rec.mtime = dst->rec.ctime = cowfs_now();
	dst->nolog_gen = m->fs->gen;     /* the log cannot express a clone: fsync commits */
	cowfs_vdirty(dst);
	return 0;
}

/* Step 1: the range [src_off, src_off + *len) against the sizes; *len
 * may shrink to the source's end of file (0: up to it). */
static int clone_args(uint64_t src_ino, uint64_t src_off, uint64_t ssize, uint64_t dst_ino, uint64_t dst_off,
		      uint64_t dsize, uint64_t *len)
{
	if ((src_off | dst_off) & (BS - 1) || src_off > ssize)
		return -PLAT_EINVAL;
	uint64_t n = *len;
	if (!n || n > ssize - src_off)
		n = ssize - src_off;
	if (dst_off + n < dst_off || dst_off + n > CFS_FILE_MAX_BYTES)
		return -PLAT_EFBIG;
	/* A length that is not whole blocks must end at the source's end of
	 * file, and then the destination's too (or past it): its last block
	 * carries zeros after the end, which must not show inside a file. */
	if ((n & (BS - 1)) && (src_off + n != ssize || dst_off + n < dsize))
		return -PLAT_EINVAL;
	if (src_ino == dst_ino && src_off < dst_off + up(n) && dst_off < src_off + up(n))
		return -PLAT_EINVAL;
	*len = n;
	return 0;
}

/* Step 2 for one range: written back; the destination's folios dropped. */
static int flush_range(struct cowfs_vnode *vn, uint64_t start, uint64_t end, bool drop)
{
	int err = iomap_writepages(&vn->io, start, end, true, NULL);
	int e2 = pcache_wait_writeback_range(&vn->io.mapping, start, end, plat_time_ns() + PCACHE_WAIT_NS);
	err = err < 0 ? err : e2;
	if (!err && drop)
		err = pcache_invalidate_range(&vn->io.mapping, start, end, true);
	return err;
}

static int clone_locked(struct cowfs_vnode *src, uint64_t src_off, struct cowfs_vnode *dst, uint64_t dst_off,
			uint64_t *len)
{
	struct cowfs_mount *m = src->m;
	int err = iomap_dio_wait(&src->io, plat_time_ns() + PCACHE_WAIT_NS);
	if (!err && dst != src)
		err = iomap_dio_wait(&dst->io, plat_time_ns() + PCACHE_WAIT_NS);
	if (!err)
		err = clone_args(src->rec.ino, src_off, iomap_isize(&src->io), dst->rec.ino, dst_off,
				 iomap_isize(&dst->io), len);
	if (err || !*len)
		return err;
	uint64_t n = *len, se = up(src_off + n), de = up(dst_off + n);
	if ((err = flush_range(src, src_off, se, false)) || (err = flush_range(dst, dst_off, de, true)))
		return err;
	struct pieces ps = { 0 };
	plat_mutex_lock(m->lock);
	err = cowfs_writable(m->fs);
	if (!err && (pending_in(src, src_off, se) || pending_in(dst, dst_off, de)))
		err = -PLAT_EIO;         /* a writeback failed: nothing on disk to share */
	if (!err)
		err = gather(src, src_off, se, &ps);
	if (!err)
		err = refs_fit(m->fs, &ps);
	/* The metadata: about an EXTENT item per piece and a DATA_REF item
	 * per block, a few nodes per MiB (as cowfs_file_room's margin). */
	if (!err)
		err = cowfs_file_room(m, 1 + ps.blocks / 64 + ps.n / 64);
	if (!err && (err = clone_apply(dst, dst_off, dst_off + n, &ps)))
		cowfs_fail(m->fs, err, "inode %llu: clone from inode %llu failed half-way: not committed, read-only",
			   (unsigned long long)dst->rec.ino, (unsigned long long)src->rec.ino);
	plat_mutex_unlock(m->lock);
	plat_free(ps.p);
	if (!err)
		err = pcache_invalidate_range(&dst->io.mapping, dst_off, de, true);
	return err;
}

int64_t cowfs_clone_range(struct cowfs_mount *m, uint64_t src_ino, uint64_t src_off, uint64_t dst_ino,
			  uint64_t dst_off, uint64_t len, unsigned flags)
{
	if (flags)
		return -PLAT_EINVAL;
	int err = cowfs_writable(m->fs);
	if (err)
		return err;
	struct cowfs_vnode *src, *dst;
	if ((err = cowfs_file_get(m, src_ino, &src)))
		return err;
	if ((err = cowfs_file_get(m, dst_ino, &dst))) {
		cowfs_file_put(src);
		return err;
	}
	/* Two files: I/O locks in inode order (nothing else takes two). */
	struct cowfs_vnode *a = src->rec.ino <= dst->rec.ino ? src : dst, *b = a == src ? dst : src;
	if (!(err = iomap_lock(&a->io.io_lock, 0))) {
		if (b == a || !(err = iomap_lock(&b->io.io_lock, 0))) {
			err = clone_locked(src, src_off, dst, dst_off, &len);
			if (b != a)
				iomap_unlock(&b->io.io_lock, 0);
		}
		iomap_unlock(&a->io.io_lock, 0);
	}
	cowfs_file_put(dst);
	cowfs_file_put(src);
	return err ? err : (int64_t)len;
}

/* ---- copy_file_range: a reflink where the ranges allow, else bytes ---- */

#define COPY_CHUNK (256u << 10)

/* Clones what the rules allow of [src_off, src_off+len): all of it, or
 * its whole blocks when a partial last block would land inside dst (the
 * caller continues from the short count).  0 when nothing can be shared
 * (-EINVAL from the rules, -EMLINK) unless only. */
static int64_t copy_by_clone(struct cowfs_mount *m, uint64_t src_ino, uint64_t src_off, uint64_t dst_ino,
			     uint64_t dst_off, uint64_t len, bool only)
{
	if ((src_off | dst_off) & (BS - 1))
		return only ? -PLAT_EINVAL : 0;
	int64_t n = cowfs_clone_range(m, src_ino, src_off, dst_ino, dst_off, len, 0);
	if (n == -PLAT_EINVAL && len >= BS) {
		struct cowfs_inode s;
		int err = cowfs_getattr(m, src_ino, &s);
		if (err)
			return err;
		uint64_t whole = (src_off < s.size && len > s.size - src_off ? s.size - src_off : len) & ~(uint64_t)(BS - 1);
		if (whole && whole < len)
			n = cowfs_clone_range(m, src_ino, src_off, dst_ino, dst_off, whole, 0);
	}
	if (n < 0 && !only && (n == -PLAT_EINVAL || n == -PLAT_EMLINK))
		return 0;
	return n;
}

static int64_t live_read(void *arg, uint64_t ino, uint64_t off, void *buf, uint64_t len)
{
	return cowfs_read(arg, ino, off, buf, len, 0);
}

int64_t cowfs_copy_range(struct cowfs_mount *m, uint64_t src_ino, uint64_t src_off, uint64_t dst_ino,
			 uint64_t dst_off, uint64_t len, unsigned flags, bool *cloned)
{
	bool only = flags & CFS_COPY_CLONE_ONLY;
	*cloned = false;
	if (flags & ~CFS_COPY_CLONE_ONLY)
		return -PLAT_EINVAL;
	if (!len)
		return 0;
	if (src_ino == dst_ino && src_off < dst_off + len && dst_off < src_off + len)
		return -PLAT_EINVAL;     /* overlapping ranges of one file */
	int64_t n = copy_by_clone(m, src_ino, src_off, dst_ino, dst_off, len, only);
	if (n || only) {
		*cloned = n > 0;
		return n;
	}
	return cowfs_copy_bytes(m, live_read, m, src_ino, src_off, dst_ino, dst_off, len);
}

int64_t cowfs_copy_bytes(struct cowfs_mount *m, cowfs_copy_read_fn rd, void *arg, uint64_t src_ino,
			 uint64_t src_off, uint64_t dst_ino, uint64_t dst_off, uint64_t len)
{
	int64_t n = 0;
	uint8_t *buf = plat_alloc(COPY_CHUNK);
	if (!buf)
		return -PLAT_ENOMEM;
	uint64_t done = 0;
	while (done < len) {
		uint64_t want = len - done < COPY_CHUNK ? len - done : COPY_CHUNK;
		int64_t got = rd(arg, src_ino, src_off + done, buf, want);
		if (got <= 0) {
			n = got;
			break;                   /* the end of the source, or an error */
		}
		int64_t put = cowfs_write(m, dst_ino, dst_off + done, buf, (uint64_t)got, 0);
		if (put < 0) {
			n = put;
			break;
		}
		done += (uint64_t)put;
		if (put < got)
			break;
	}
	plat_free(buf);
	return done || n >= 0 ? (int64_t)done : n;   /* a short copy says how far it got */
}
