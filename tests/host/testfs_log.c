/*
 * Test filesystem: a minimal metadata log with a power-cut model (DIO-T9)
 * and fallocate-style punch / zero range with the drain preamble (DIO-8,
 * DIO-T2).  See testfs.h.
 */
#include <stdlib.h>
#include <string.h>
#include "tests/host/testfs_int.h"

static uint32_t tfs_crc(const uint8_t *p, uint64_t n)
{
	uint32_t c = ~0u;
	for (uint64_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

/* Called from completion with fs->lock held, after the data write
 * completed: the device (volatile cache included) holds the data now. */
void tfs_log_append(struct tfs_inode *ti, uint64_t blk, uint64_t dev)
{
	struct tfs *fs = ti->fs;
	if (!fs->log_on)
		return;
	if (fs->nlog == fs->logcap) {
		fs->logcap = fs->logcap ? fs->logcap * 2 : 256;
		fs->log = realloc(fs->log, fs->logcap * sizeof(*fs->log));
	}
	uint8_t *b = malloc(BS(ti));
	plat_bdev_rw(fs->bdev, PLAT_BIO_READ, dev << BB(ti), b, BS(ti));
	fs->log[fs->nlog++] = (struct tfs_logrec){ ti, blk, dev, tfs_crc(b, BS(ti)) };
	free(b);
}

/* The power cut.  Commits stop first, under the lock: an fsync whose flush
 * finished before this point made its records' data durable, so its
 * commit stands; one whose flush straddles the cut may have flushed
 * nothing the cut did not drop, so its commit must not land.  Then the
 * device loses everything not yet flushed. */
void tfs_log_crash(struct tfs *fs)
{
	plat_mutex_lock(fs->lock);
	fs->crashed = true;
	fs->nlog = fs->committed;      /* uncommitted records are lost too */
	plat_mutex_unlock(fs->lock);
	plat_host_bdev_crash(fs->bdev);
}

unsigned tfs_log_check(struct tfs *fs)
{
	unsigned bad = 0;
	uint64_t bs = 1ull << fs->cfg.blkbits;
	uint8_t *b = malloc(bs);
	plat_mutex_lock(fs->lock);
	for (unsigned i = 0; i < fs->committed; i++) {
		const struct tfs_logrec *r = &fs->log[i];
		plat_bdev_rw(fs->bdev, PLAT_BIO_READ, r->dev * bs, b, bs);
		if (tfs_crc(b, bs) != r->crc) {
			if (!bad)
				plat_log(PLAT_LOG_ERR, "testfs: log record %u (file block %llu -> device block %llu) "
					 "references data that did not survive", i, (unsigned long long)r->blk,
					 (unsigned long long)r->dev);
			bad++;
		}
	}
	plat_mutex_unlock(fs->lock);
	free(b);
	return bad;
}

/* The preamble of truncate and every fallocate-style operation (DIO-8):
 * exclusive I/O lock first, then drain direct I/O. */
int tfs_lock_drain(struct tfs_inode *ti)
{
	int ret = iomap_lock(&ti->ino.io_lock, 0);
	if (ret)
		return ret;
	ret = iomap_dio_wait(&ti->ino, plat_time_ns() + PCACHE_WAIT_NS);
	if (ret)
		iomap_unlock(&ti->ino.io_lock, 0);
	return ret;
}

int tfs_zero_range(struct tfs_inode *ti, uint64_t off, uint64_t len)
{
	int ret = tfs_lock_drain(ti);
	if (ret)
		return ret;
	ret = iomap_zero_range(&ti->ino, off, len, &tfs_write_ops);
	iomap_unlock(&ti->ino.io_lock, 0);
	return ret;
}

/* Punch: partial edge blocks are zeroed through the write path; whole
 * blocks are written back, dropped from the cache and freed. */
int tfs_punch(struct tfs_inode *ti, uint64_t off, uint64_t len)
{
	int ret = tfs_lock_drain(ti);
	if (ret)
		return ret;
	uint64_t bs = BS(ti), s = (off + bs - 1) & ~(bs - 1), e = (off + len) & ~(bs - 1);
	if (s > off)
		ret = iomap_zero_range(&ti->ino, off, iomap_min(s, off + len) - off, &tfs_write_ops);
	if (!ret && e >= s && off + len > e)
		ret = iomap_zero_range(&ti->ino, e, off + len - e, &tfs_write_ops);
	if (!ret && e > s) {
		ret = iomap_fsync(&ti->ino, s, e);
		if (!ret)
			ret = pcache_invalidate_range(&ti->ino.mapping, s, e, true);
		plat_mutex_lock(ti->fs->lock);
		for (uint64_t b = s >> BB(ti); !ret && b < (e >> BB(ti)) && b < ti->maxblk; b++) {
			tfs_blk_release(ti, &ti->blk[b]);
		}
		ti->seq++;
		plat_mutex_unlock(ti->fs->lock);
	}
	iomap_unlock(&ti->ino.io_lock, 0);
	return ret;
}
