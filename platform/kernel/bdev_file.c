/*
 * A block device as a file over the iomap core (see bdev_file.h).  The
 * mapping is the identity, so this is the smallest possible iomap user: the
 * core does all page-cache, writeback and direct I/O work.
 */
#include "platform/kernel/bdev_file.h"
#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"

#define BDEV_FILE_MAX_ORDER 5   /* 128 KiB folios: big reads, cheap reclaim */

static struct bdev_file *bdev_file_of(struct iomap_inode *inode)
{
	return (struct bdev_file *)inode;
}

/* Identity mapping from the block holding pos to the end of the device. */
static int bdev_file_map(struct bdev_file *bf, uint64_t pos, struct iomap *m)
{
	uint64_t bmask = bdev_file_block(bf) - 1;
	if (pos >= bf->size)
		return -PLAT_ENOSPC;
	m->offset = pos & ~bmask;
	m->length = bf->size - m->offset;
	m->addr = m->offset;
	m->bdev = bf->bdev;
	m->type = IOMAP_MAPPED;
	m->flags = 0;
	m->validity_cookie = 0;   /* an identity mapping never goes stale */
	return 0;
}

static int bdev_file_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
			   struct iomap *iomap, struct iomap *srcmap)
{
	(void)len, (void)flags, (void)srcmap;
	return bdev_file_map(bdev_file_of(inode), pos, iomap);
}

static const struct iomap_ops bdev_file_ops = { bdev_file_begin, NULL };

static int bdev_file_map_blocks(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode, uint64_t pos,
				uint64_t len)
{
	(void)len;
	return bdev_file_map(bdev_file_of(inode), pos, &wpc->iomap);
}

/* Nothing to convert or persist: data went where it belongs.  Counted so
 * tests can see completions ran (and errors reached the hook). */
static int bdev_file_end_io(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap *map,
			    int error, uint64_t new_disk_size)
{
	struct bdev_file *bf = bdev_file_of(inode);
	(void)pos, (void)len, (void)map, (void)new_disk_size;
	plat_add(&bf->wb_end_ios, 1);
	if (error)
		plat_add(&bf->wb_errors, 1);
	return 0;
}

static const struct iomap_writeback_ops bdev_file_wb_ops = { bdev_file_map_blocks, NULL, bdev_file_end_io, NULL };

int bdev_file_open(struct pcache *pc, struct plat_bdev *bdev, struct iomap_workq *wq, struct bdev_file **out)
{
	struct bdev_file *bf = plat_zalloc(sizeof(*bf));
	if (!bf)
		return -PLAT_ENOMEM;
	uint32_t lbs = plat_bdev_block_size(bdev);
	uint64_t size = plat_bdev_size(bdev);
	unsigned blkbits = 0;
	/* 4 KiB blocks (one bit per page) unless the device's LBA is bigger
	 * or its size is not a multiple of 4 KiB. */
	uint32_t bs = (lbs <= PLAT_PAGE_SIZE && size % PLAT_PAGE_SIZE == 0) ? PLAT_PAGE_SIZE : lbs;
	while ((1u << blkbits) < bs)
		blkbits++;
	int ret = iomap_inode_init(&bf->ino, pc, blkbits, BDEV_FILE_MAX_ORDER, &bdev_file_wb_ops);
	if (ret) {
		plat_free(bf);
		return ret;
	}
	bf->bdev = bdev;
	bf->size = size;
	bf->ino.size = size;
	bf->ino.disk_size = size;
	bf->ino.ops = &bdev_file_ops;
	bf->ino.wq = wq;
	bf->ino.flush_bdev = bdev;
	bf->ino.dio_needs_lock = true;
	*out = bf;
	return 0;
}

int bdev_file_close(struct bdev_file *bf)
{
	int ret = iomap_inode_destroy(&bf->ino);
	plat_free(bf);
	return ret;
}

int64_t bdev_file_read(struct bdev_file *bf, uint64_t pos, void *buf, uint64_t len)
{
	int64_t r = iomap_file_read(&bf->ino, pos, buf, len, &bdev_file_ops);
	if (r > 0)
		plat_add(&bf->read_bytes, (uint64_t)r);
	return r;
}

int64_t bdev_file_write(struct bdev_file *bf, uint64_t pos, const void *buf, uint64_t len)
{
	struct iomap_source src = { buf, NULL, NULL };
	if (pos >= bf->size)
		return len ? -PLAT_ENOSPC : 0;
	len = iomap_min(len, bf->size - pos);
	/* Buffered writes exclusive against direct I/O (DIO-3). */
	int ret = iomap_lock(&bf->ino.io_lock, 0);
	if (ret)
		return ret;
	int64_t r = iomap_file_buffered_write(&bf->ino, pos, &src, len, &bdev_file_ops, 0);
	iomap_unlock(&bf->ino.io_lock, 0);
	return r;
}

static int64_t bdev_file_dio(struct bdev_file *bf, uint64_t pos, void *buf, uint64_t len, unsigned flags)
{
	uint64_t bmask = bdev_file_block(bf) - 1;
	if ((pos | len | (uint64_t)(uintptr_t)buf) & bmask)
		return -PLAT_EINVAL;
	if (pos >= bf->size)
		return (flags & IOMAP_DIO_WRITE) && len ? -PLAT_ENOSPC : 0;
	len = iomap_min(len, bf->size - pos);
	int ret = iomap_lock(&bf->ino.io_lock, IOMAP_LOCK_SHARED);
	if (ret)
		return ret;
	int64_t r = iomap_dio_rw(&bf->ino, pos, buf, len, flags, &bdev_file_ops, NULL);
	iomap_unlock(&bf->ino.io_lock, IOMAP_LOCK_SHARED);
	return r;
}

int64_t bdev_file_dio_read(struct bdev_file *bf, uint64_t pos, void *buf, uint64_t len)
{
	int64_t r = bdev_file_dio(bf, pos, buf, len, 0);
	if (r > 0)
		plat_add(&bf->dio_read_bytes, (uint64_t)r);
	return r;
}

int64_t bdev_file_dio_write(struct bdev_file *bf, uint64_t pos, const void *buf, uint64_t len, bool fua)
{
	return bdev_file_dio(bf, pos, (void *)(uintptr_t)buf, len, IOMAP_DIO_WRITE | (fua ? IOMAP_DIO_DSYNC : 0));
}

int bdev_file_sync(struct bdev_file *bf)
{
	return iomap_fsync(&bf->ino, 0, UINT64_MAX);
}

int bdev_file_drop(struct bdev_file *bf)
{
	/* Exclusive I/O lock: no buffered write can dirty a folio between
	 * the sync and the invalidation (which would discard it). */
	int ret = iomap_lock(&bf->ino.io_lock, 0);
	if (ret)
		return ret;
	ret = bdev_file_sync(bf);
	if (!ret)
		ret = pcache_invalidate_range(&bf->ino.mapping, 0, UINT64_MAX, false);
	iomap_unlock(&bf->ino.io_lock, 0);
	return ret;
}
