/*
 * Test filesystem for the iomap host suite (see testfs.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/host/testfs_int.h"

/* ---- block allocation ---- */
uint64_t tfs_free_locked(struct tfs *fs)
{
	uint64_t lim = fs->free_limit ? fs->free_limit : fs->nblocks;
	uint64_t busy = fs->used + fs->reserved;
	return busy >= lim ? 0 : lim - busy;
}

uint64_t tfs_free_blocks(struct tfs *fs)
{
	plat_mutex_lock(fs->lock);
	uint64_t f = tfs_free_locked(fs);
	plat_mutex_unlock(fs->lock);
	return f;
}

/* Allocate up to `want` contiguous blocks (at least 1); returns count,
 * first block in *addr.  Consumes reservation when `reserved`. */
uint64_t tfs_alloc(struct tfs *fs, uint64_t want, bool reserved, uint64_t *addr)
{
	if (!reserved && !tfs_free_locked(fs))
		return 0;
	for (uint64_t scanned = 0; scanned < fs->nblocks; scanned++) {
		uint64_t b = (fs->cursor + scanned) % fs->nblocks;
		if (b == 0 || fs->refcnt[b])
			continue;        /* block 0 is never handed out */
		uint64_t n = 0;
		while (n < want && b + n < fs->nblocks && !fs->refcnt[b + n])
			n++;
		if (!reserved)
			n = n < tfs_free_locked(fs) ? n : tfs_free_locked(fs);
		for (uint64_t i = 0; i < n; i++)
			fs->refcnt[b + i] = 1;
		fs->used += n;
		if (reserved)
			fs->reserved -= n;
		fs->cursor = b + n;
		*addr = b;
		return n;
	}
	return 0;
}

void tfs_decref(struct tfs *fs, uint64_t b)
{
	PLAT_ASSERT(fs->refcnt[b] > 0);
	if (--fs->refcnt[b] == 0)
		fs->used--;
}

bool tfs_reserve(struct tfs *fs)
{
	if (!tfs_free_locked(fs))
		return false;
	fs->reserved++;
	return true;
}

void tfs_unreserve(struct tfs *fs)
{
	PLAT_ASSERT(fs->reserved > 0);
	fs->reserved--;
	fs->st.reserved_released++;
}

/* ---- mapping lookups ---- */
struct tfs_blk tfs_blk_at(struct tfs_inode *ti, uint64_t b)
{
	struct tfs_blk z = { 0 };
	return b < ti->maxblk ? ti->blk[b] : z;
}

bool tfs_shared(struct tfs_inode *ti, uint64_t b)
{
	struct tfs_blk k = tfs_blk_at(ti, b);
	return k.cow != TFS_COW_NONE || (k.state == TFS_MAPPED && ti->fs->refcnt[k.addr] > 1);
}

/* Length (blocks) of the run starting at b0 whose blocks look alike for a
 * read (data fork only). */
uint64_t tfs_data_run(struct tfs_inode *ti, uint64_t b0, uint64_t b1)
{
	struct tfs_blk k = tfs_blk_at(ti, b0);
	uint64_t n = 1;
	while (b0 + n < b1) {
		struct tfs_blk x = tfs_blk_at(ti, b0 + n);
		if (x.state != k.state)
			break;
		if ((k.state == TFS_MAPPED || k.state == TFS_UNWRITTEN) && x.addr != k.addr + n)
			break;
		n++;
	}
	return n;
}

void tfs_fill_data_map(struct tfs_inode *ti, uint64_t b0, uint64_t n, struct iomap *m)
{
	static const uint16_t types[] = { IOMAP_HOLE, IOMAP_DELALLOC, IOMAP_MAPPED, IOMAP_UNWRITTEN };
	struct tfs_blk k = tfs_blk_at(ti, b0);
	m->offset = b0 << BB(ti);
	m->length = n << BB(ti);
	m->type = types[k.state];
	m->addr = (k.state == TFS_MAPPED || k.state == TFS_UNWRITTEN) ? k.addr << BB(ti) : IOMAP_NULL_ADDR;
	m->bdev = ti->fs->bdev;
	m->validity_cookie = ti->seq;
}

void tfs_range(struct tfs_inode *ti, uint64_t pos, uint64_t len, uint64_t *b0, uint64_t *b1)
{
	*b0 = pos >> BB(ti);
	*b1 = (pos + len + BS(ti) - 1) >> BB(ti);
	if (*b1 <= *b0)
		*b1 = *b0 + 1;
}

static int tfs_read_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
			  struct iomap *iomap, struct iomap *srcmap)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	uint64_t b0, b1;
	(void)flags;
	(void)srcmap;
	tfs_range(ti, pos, len, &b0, &b1);
	if (b1 > ti->maxblk)
		b1 = b0 < ti->maxblk ? ti->maxblk : b0 + 1;
	plat_mutex_lock(ti->fs->lock);
	ti->fs->st.begins++;
	uint64_t n = tfs_data_run(ti, b0, b1);
	bool shared = tfs_blk_at(ti, b0).state == TFS_MAPPED && tfs_shared(ti, b0);
	for (uint64_t i = 1; i < n; i++)
		if ((tfs_blk_at(ti, b0 + i).state == TFS_MAPPED && tfs_shared(ti, b0 + i)) != shared) {
			n = i;
			break;
		}
	tfs_fill_data_map(ti, b0, n, iomap);
	if (shared)
		iomap->flags |= IOMAP_F_SHARED;   /* fiemap reports it */
	plat_mutex_unlock(ti->fs->lock);
	return 0;
}

/* Private state from write begin to end (COW-6): the blocks this begin
 * newly reserved, so end can punch the unused ones (EXT-22, COW-5). */
struct tfs_wpriv {
	uint64_t new_b0, new_b1;
	bool cow;
};


static int tfs_write_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
			   struct iomap *iomap, struct iomap *srcmap)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	struct tfs *fs = ti->fs;
	uint64_t b0, b1;
	int ret = 0;
	tfs_range(ti, pos, len, &b0, &b1);
	if (b0 >= ti->maxblk)
		return -PLAT_EFBIG;
	if (b1 > ti->maxblk)
		b1 = ti->maxblk;
	struct tfs_wpriv *p = plat_zalloc(sizeof(*p));
	if (!p)
		return -PLAT_ENOMEM;
	if (flags & IOMAP_DIRECT) {
		plat_free(p);
		return tfs_dio_write_begin(ti, b0, b1, flags, iomap, srcmap);
	}
	plat_mutex_lock(fs->lock);
	fs->st.begins++;
	if (tfs_blk_at(ti, b0).cow == TFS_COW_ALLOC) {
		/* Allocated in the COW fork by writeback (or a direct write)
		 * but not remapped yet: a real destination; old bytes still
		 * come from the data fork (srcmap). */
		uint64_t n = tfs_data_run(ti, b0, b1), i = 1;
		uint64_t ca = ti->blk[b0].cow_addr;
		while (i < n && ti->blk[b0 + i].cow == TFS_COW_ALLOC && ti->blk[b0 + i].cow_addr == ca + i)
			i++;
		iomap->offset = b0 << BB(ti);
		iomap->length = i << BB(ti);
		iomap->type = IOMAP_MAPPED;
		iomap->flags = IOMAP_F_SHARED;
		iomap->addr = ca << BB(ti);
		iomap->bdev = fs->bdev;
		tfs_fill_data_map(ti, b0, i, srcmap);
		p->cow = true;
	} else if (tfs_shared(ti, b0)) {
		/* COW: destination in the COW fork, source = old data. */
		uint64_t n = tfs_data_run(ti, b0, b1), i;
		for (i = 0; i < n && tfs_shared(ti, b0 + i); i++) {
			struct tfs_blk *k = &ti->blk[b0 + i];
			if (k->cow == TFS_COW_ALLOC)
				break;
			if (k->cow == TFS_COW_NONE) {
				if (!tfs_reserve(fs))
					break;
				k->cow = TFS_COW_DELALLOC;
				ti->seq++;
			}
		}
		if (i == 0) {
			ret = -PLAT_ENOSPC;
			goto out;
		}
		iomap->offset = b0 << BB(ti);
		iomap->length = i << BB(ti);
		iomap->type = IOMAP_DELALLOC;
		iomap->flags = IOMAP_F_SHARED;
		iomap->addr = IOMAP_NULL_ADDR;
		iomap->bdev = fs->bdev;
		tfs_fill_data_map(ti, b0, i, srcmap);
		srcmap->folio_ops = NULL;
		p->cow = true;
	} else {
		uint64_t n = tfs_data_run(ti, b0, b1);
		if (tfs_blk_at(ti, b0).state == TFS_HOLE && !(flags & IOMAP_ZERO)) {
			uint64_t i;
			for (i = 0; i < n; i++) {
				if (!tfs_reserve(fs))
					break;
				ti->blk[b0 + i].state = TFS_DELALLOC;
			}
			if (i == 0) {
				ret = -PLAT_ENOSPC;   /* EXT-10: at write time */
				goto out;
			}
			ti->seq++;
			p->new_b0 = b0;
			p->new_b1 = b0 + i;
			n = i;
		}
		/* Stop at shared blocks: they need their own COW mapping. */
		for (uint64_t i = 1; i < n; i++)
			if (tfs_shared(ti, b0 + i)) {
				n = i;
				break;
			}
		tfs_fill_data_map(ti, b0, n, iomap);
		if (p->new_b1)
			iomap->flags |= IOMAP_F_NEW;
	}
	iomap->validity_cookie = ti->seq;
	srcmap->validity_cookie = ti->seq;
	iomap->folio_ops = ti->folio_ops ? ti->folio_ops : &tfs_folio_ops;
	iomap->private = p;
out:
	plat_mutex_unlock(fs->lock);
	if (ret)
		plat_free(p);
	return ret;
}

static bool tfs_block_dirty_cached(struct tfs_inode *ti, uint64_t b)
{
	uint64_t pos = b << BB(ti);
	struct folio *f = pcache_lookup(&ti->ino.mapping, pos >> PLAT_PAGE_SHIFT);
	if (!f)
		return false;
	bool d = folio_block_dirty(f, (unsigned)((pos - folio_pos(f)) >> BB(ti)));
	folio_put(f);
	return d;
}

/* COW-5/EXT-22/DIO-35: release only what this begin newly reserved and
 * that no dirty cached data backs; pre-existing reservations and blocks
 * dirtied by others survive. */
static int tfs_write_end(struct iomap_inode *inode, uint64_t pos, uint64_t len, int64_t written,
			 unsigned flags, struct iomap *iomap)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	struct tfs_wpriv *p = iomap->private;
	(void)flags;
	plat_mutex_lock(ti->fs->lock);
	ti->fs->st.ends++;
	if ((uint64_t)written < len) {
		ti->fs->st.end_short++;
		if (p && p->new_b1) {
			uint64_t first = (pos + (uint64_t)written + BS(ti) - 1) >> BB(ti);
			for (uint64_t b = first > p->new_b0 ? first : p->new_b0; b < p->new_b1; b++) {
				if (ti->blk[b].state != TFS_DELALLOC || tfs_block_dirty_cached(ti, b))
					continue;
				ti->blk[b].state = TFS_HOLE;
				tfs_unreserve(ti->fs);
				ti->fs->st.punched++;
				ti->seq++;
			}
		}
	}
	plat_mutex_unlock(ti->fs->lock);
	plat_free(p);
	return 0;
}

static bool tfs_iomap_valid(struct iomap_inode *inode, const struct iomap *iomap)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	bool ok = plat_load(&ti->seq) == iomap->validity_cookie;
	if (!ok)
		plat_add(&ti->fs->st.stale, 1);
	return ok;
}

const struct iomap_ops tfs_read_ops = { tfs_read_begin, NULL };
const struct iomap_ops tfs_write_ops = { tfs_write_begin, tfs_write_end };
const struct iomap_folio_ops tfs_folio_ops = { NULL, NULL, tfs_iomap_valid };

/* ---- writeback ---- */
static int tfs_map_blocks(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode, uint64_t pos, uint64_t len)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	struct tfs *fs = ti->fs;
	uint64_t b0, b1;
	int ret = 0;
	tfs_range(ti, pos, len, &b0, &b1);
	if (b1 > ti->maxblk)
		b1 = ti->maxblk;
	plat_mutex_lock(fs->lock);
	fs->st.map_blocks++;
	if (fs->map_eagain_count) {
		fs->map_eagain_count--;
		ret = -PLAT_EAGAIN;
		goto out;
	}
	if (fs->map_err_count) {
		fs->map_err_count--;
		ret = fs->map_err;
		goto out;
	}
	if (fs->map_hole_count) {
		/* Simulated truncate race: the range is a hole now. */
		fs->map_hole_count--;
		struct iomap *h = &wpc->iomap;
		h->offset = b0 << BB(ti);
		h->length = BS(ti);
		h->type = IOMAP_HOLE;
		h->addr = IOMAP_NULL_ADDR;
		h->bdev = fs->bdev;
		h->validity_cookie = ti->seq;
		goto out;
	}
	struct tfs_blk *k = &ti->blk[b0];
	struct iomap *m = &wpc->iomap;
	if (k->cow != TFS_COW_NONE) {
		uint64_t n = 1;
		if (k->cow == TFS_COW_DELALLOC) {
			while (b0 + n < b1 && ti->blk[b0 + n].cow == TFS_COW_DELALLOC)
				n++;
			uint64_t addr;
			n = tfs_alloc(fs, n, true, &addr);
			PLAT_ASSERT(n > 0);
			for (uint64_t i = 0; i < n; i++) {
				ti->blk[b0 + i].cow = TFS_COW_ALLOC;
				ti->blk[b0 + i].cow_addr = addr + i;
			}
			fs->st.map_allocs++;
			ti->seq++;
		} else {
			while (b0 + n < b1 && ti->blk[b0 + n].cow == TFS_COW_ALLOC &&
			       ti->blk[b0 + n].cow_addr == k->cow_addr + n)
				n++;
		}
		m->offset = b0 << BB(ti);
		m->length = n << BB(ti);
		m->type = IOMAP_MAPPED;
		m->flags = IOMAP_F_SHARED | IOMAP_F_NEW;
		m->addr = k->cow_addr << BB(ti);
		m->bdev = fs->bdev;
	} else {
		if (k->state == TFS_DELALLOC) {
			/* EXT-19: new blocks start unwritten; EXT-25: one
			 * allocation for the whole delalloc run. */
			uint64_t n = 1, addr;
			while (b0 + n < b1 && ti->blk[b0 + n].state == TFS_DELALLOC && ti->blk[b0 + n].cow == TFS_COW_NONE)
				n++;
			n = tfs_alloc(fs, n, true, &addr);
			PLAT_ASSERT(n > 0);
			for (uint64_t i = 0; i < n; i++) {
				ti->blk[b0 + i].state = TFS_UNWRITTEN;
				ti->blk[b0 + i].addr = addr + i;
			}
			fs->st.map_allocs++;
			ti->seq++;
		}
		uint64_t n = tfs_data_run(ti, b0, b1);
		for (uint64_t i = 1; i < n; i++)
			if (ti->blk[b0 + i].cow != TFS_COW_NONE) {
				n = i;
				break;
			}
		tfs_fill_data_map(ti, b0, n, m);
	}
	m->validity_cookie = ti->seq;
out:
	plat_mutex_unlock(fs->lock);
	return ret;
}

static bool tfs_wb_valid(struct iomap_inode *inode, const struct iomap *iomap)
{
	return plat_load(&((struct tfs_inode *)inode)->seq) == iomap->validity_cookie;
}

static int tfs_end_io(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap *map,
		      int error, uint64_t new_disk_size)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	struct tfs *fs = ti->fs;
	uint64_t b0 = pos >> BB(ti), b1 = (pos + len) >> BB(ti);
	plat_mutex_lock(fs->lock);
	fs->st.end_ios++;
	if (error) {
		/* EXT-30 / COW-23: no metadata change; a failed COW write
		 * frees its new blocks and the old mapping stays. */
		fs->st.end_io_errors++;
		if (map->flags & IOMAP_F_SHARED)
			for (uint64_t b = b0; b < b1; b++)
				if (ti->blk[b].cow == TFS_COW_ALLOC) {
					tfs_decref(fs, ti->blk[b].cow_addr);
					ti->blk[b].cow = TFS_COW_NONE;
				}
		ti->seq++;
		plat_mutex_unlock(fs->lock);
		return 0;
	}
	for (uint64_t b = b0; b < b1; b++) {
		struct tfs_blk *k = &ti->blk[b];
		if ((map->flags & IOMAP_F_SHARED) && k->cow == TFS_COW_ALLOC) {
			if (k->state == TFS_MAPPED || k->state == TFS_UNWRITTEN)
				tfs_decref(fs, k->addr);
			else if (k->state == TFS_DELALLOC)
				tfs_unreserve(fs);
			k->state = TFS_MAPPED;
			k->addr = k->cow_addr;
			k->cow = TFS_COW_NONE;
			fs->st.remaps++;
		} else if (k->state == TFS_UNWRITTEN) {
			k->state = TFS_MAPPED;
			fs->st.conversions++;
		}
	}
	if (new_disk_size > ti->persisted_size)
		ti->persisted_size = new_disk_size;
	ti->seq++;
	plat_mutex_unlock(fs->lock);
	return 0;
}

static void tfs_discard(struct iomap_inode *inode, uint64_t pos, uint64_t len)
{
	struct tfs_inode *ti = (struct tfs_inode *)inode;
	uint64_t b0 = pos >> BB(ti), b1 = (pos + len + BS(ti) - 1) >> BB(ti);
	plat_mutex_lock(ti->fs->lock);
	for (uint64_t b = b0; b < b1 && b < ti->maxblk; b++) {
		if (ti->blk[b].state == TFS_DELALLOC) {
			ti->blk[b].state = TFS_HOLE;
			tfs_unreserve(ti->fs);
		}
		if (ti->blk[b].cow == TFS_COW_DELALLOC) {
			ti->blk[b].cow = TFS_COW_NONE;
			tfs_unreserve(ti->fs);
		}
	}
	ti->seq++;
	plat_mutex_unlock(ti->fs->lock);
}

const struct iomap_writeback_ops tfs_wb_ops = { tfs_map_blocks, tfs_wb_valid, tfs_end_io, tfs_discard };

/* ---- filesystem and inodes ---- */
struct plat_bdev *tfs_image_open(const char *prefix, char *path, size_t pathlen, uint64_t bytes,
				 unsigned threads, bool polled)
{
	static unsigned seqno;
	snprintf(path, pathlen, "/tmp/%s-%d-%u.img", prefix, getpid(), __atomic_add_fetch(&seqno, 1, __ATOMIC_RELAXED));
	struct plat_bdev *bdev = plat_host_bdev_open(path, bytes, 512, threads, polled);
	unlink(path);
	return bdev;
}

int tfs_cache_create(const struct pcache_config *pcfg, const char *wq_name, unsigned wq_threads,
		     struct pcache **pc, struct iomap_workq **wq)
{
	int ret = pcache_create(pcfg, pc);
	if (!ret)
		ret = iomap_workq_create(wq_name, wq_threads, wq);
	return ret;
}

void tfs_plumbing_destroy(struct pcache *pc, struct plat_bdev *bdev, struct iomap_workq *wq,
			  struct plat_mutex *lock)
{
	if (pc)
		pcache_destroy(pc);
	if (bdev)
		plat_bdev_close(bdev);
	iomap_workq_destroy(wq);
	plat_mutex_free(lock);
}

int tfs_create(const struct tfs_config *cfg, uint64_t cache_budget, unsigned wb_threads, struct tfs **out)
{
	struct tfs *fs = calloc(1, sizeof(*fs));
	fs->cfg = *cfg;
	if (!fs->cfg.blkbits)
		fs->cfg.blkbits = 12;
	if (!fs->cfg.max_file_bytes)
		fs->cfg.max_file_bytes = 64ull << 20;
	fs->bdev = tfs_image_open("tfs", fs->path, sizeof(fs->path), cfg->dev_bytes, cfg->bdev_threads, cfg->polled);
	if (!fs->bdev) {
		free(fs);
		return -PLAT_EIO;
	}
	fs->nblocks = cfg->dev_bytes >> fs->cfg.blkbits;
	fs->refcnt = calloc(fs->nblocks, sizeof(uint16_t));
	fs->refcnt[0] = 1;   /* reserved: address 0 is never data */
	fs->used = 1;
	fs->cursor = 1;
	fs->lock = plat_mutex_new("tfs");
	struct pcache_config pcfg = { cache_budget, 0, 0, wb_threads, 20ull * 1000000ull };
	int ret = tfs_cache_create(&pcfg, "tfs-io", cfg->wq_threads, &fs->pc, &fs->wq);
	if (ret) {
		tfs_destroy(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

void tfs_destroy(struct tfs *fs)
{
	tfs_plumbing_destroy(fs->pc, fs->bdev, fs->wq, fs->lock);
	free(fs->refcnt);
	free(fs->log);
	free(fs);
}

struct tfs_inode *tfs_inode_new(struct tfs *fs)
{
	struct tfs_inode *ti = calloc(1, sizeof(*ti));
	if (iomap_inode_init(&ti->ino, fs->pc, fs->cfg.blkbits, fs->cfg.max_folio_order, &tfs_wb_ops)) {
		free(ti);
		return NULL;
	}
	ti->fs = fs;
	ti->maxblk = fs->cfg.max_file_bytes >> fs->cfg.blkbits;
	ti->blk = calloc(ti->maxblk, sizeof(*ti->blk));
	ti->ino.wq = fs->wq;
	ti->ino.flush_bdev = fs->bdev;
	ti->ino.ops = &tfs_write_ops;
	ti->ino.dio_needs_lock = true;
	return ti;
}

int tfs_inode_free(struct tfs_inode *ti)
{
	int ret = iomap_inode_destroy(&ti->ino);
	struct tfs *fs = ti->fs;
	plat_mutex_lock(fs->lock);
	for (uint64_t b = 0; b < ti->maxblk; b++) {
		struct tfs_blk *k = &ti->blk[b];
		if (k->state == TFS_MAPPED || k->state == TFS_UNWRITTEN)
			tfs_decref(fs, k->addr);
		else if (k->state == TFS_DELALLOC)
			tfs_unreserve(fs);
		if (k->cow == TFS_COW_ALLOC)
			tfs_decref(fs, k->cow_addr);
		else if (k->cow == TFS_COW_DELALLOC)
			tfs_unreserve(fs);
	}
	plat_mutex_unlock(fs->lock);
	free(ti->blk);
	free(ti);
	return ret;
}

int64_t tfs_write(struct tfs_inode *ti, uint64_t pos, const void *buf, uint64_t len)
{
	struct iomap_source src = { buf, NULL, NULL };
	int ret = iomap_lock(&ti->ino.io_lock, 0);   /* DIO-3: buffered writes exclusive */
	if (ret)
		return ret;
	int64_t r = iomap_file_buffered_write(&ti->ino, pos, &src, len, &tfs_write_ops, 0);
	iomap_unlock(&ti->ino.io_lock, 0);
	return r;
}

int64_t tfs_read(struct tfs_inode *ti, uint64_t pos, void *buf, uint64_t len)
{
	return iomap_file_read(&ti->ino, pos, buf, len, &tfs_read_ops);
}

/* fsync (DIO-T9): the log records whose data completed before this point
 * are committed only after the data flush. */
int tfs_fsync(struct tfs_inode *ti)
{
	struct tfs *fs = ti->fs;
	plat_mutex_lock(fs->lock);
	unsigned n = fs->nlog;
	plat_mutex_unlock(fs->lock);
	int ret = iomap_fsync(&ti->ino, 0, UINT64_MAX);
	if (fs->fsync_after_flush)
		fs->fsync_after_flush(fs, fs->fsync_arg);
	plat_mutex_lock(fs->lock);
	if (fs->log_bug_late_snapshot)
		n = fs->nlog;   /* wrong: records whose data the flush missed */
	if (!ret && !fs->crashed && n > fs->committed)
		fs->committed = n;
	plat_mutex_unlock(fs->lock);
	return ret;
}

/* Forgets block k of ti: gives back its blocks and reservations. */
void tfs_blk_release(struct tfs_inode *ti, struct tfs_blk *k)
{
	if (k->state == TFS_MAPPED || k->state == TFS_UNWRITTEN)
		tfs_decref(ti->fs, k->addr);
	else if (k->state == TFS_DELALLOC)
		tfs_unreserve(ti->fs);
	if (k->cow == TFS_COW_DELALLOC)
		tfs_unreserve(ti->fs);
	else if (k->cow == TFS_COW_ALLOC)
		tfs_decref(ti->fs, k->cow_addr);
	*k = (struct tfs_blk){ 0 };
}

/* Truncate (DIO-8, EXT-35): exclusive I/O lock, zero the tail of the new
 * last block through the write path (COW aware), drop cached folios past
 * it and free the blocks. */
int tfs_truncate(struct tfs_inode *ti, uint64_t size)
{
	int ret = tfs_lock_drain(ti);
	if (ret)
		return ret;
	uint64_t old = iomap_isize(&ti->ino), bs = BS(ti);
	if (size < old) {
		plat_store(&ti->ino.size, size);
		ret = iomap_truncate_page(&ti->ino, size, &tfs_write_ops);
		uint64_t keep = (size + bs - 1) & ~(bs - 1);
		int r2 = pcache_invalidate_range(&ti->ino.mapping, keep, UINT64_MAX, true);
		if (!ret)
			ret = r2;
		plat_mutex_lock(ti->fs->lock);
		for (uint64_t b = keep >> BB(ti); b < ti->maxblk; b++) {
			tfs_blk_release(ti, &ti->blk[b]);
		}
		if (ti->persisted_size > size)
			ti->persisted_size = size;
		ti->seq++;
		plat_mutex_unlock(ti->fs->lock);
		if (iomap_isize(&ti->ino) == size && ti->ino.disk_size > size)
			plat_store(&ti->ino.disk_size, size);
	} else {
		plat_store(&ti->ino.size, size);
	}
	iomap_unlock(&ti->ino.io_lock, 0);
	return ret;
}
