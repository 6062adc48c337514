/*
 * Test filesystem: setup helpers that bypass the cache (state goes
 * straight to "disk"), reflink, and inspection.  See testfs.h.
 */
#include <stdlib.h>
#include <string.h>
#include "tests/host/testfs_int.h"

int tfs_set_mapped(struct tfs_inode *ti, uint64_t off, uint64_t len, const void *data)
{
	struct tfs *fs = ti->fs;
	uint64_t b0 = off >> BB(ti), nb = len >> BB(ti), done = 0;
	if ((off | len) & (BS(ti) - 1))
		return -PLAT_EINVAL;
	plat_mutex_lock(fs->lock);
	while (done < nb) {
		uint64_t addr, n = tfs_alloc(fs, nb - done, false, &addr);
		if (!n) {
			plat_mutex_unlock(fs->lock);
			return -PLAT_ENOSPC;
		}
		for (uint64_t i = 0; i < n; i++) {
			ti->blk[b0 + done + i].state = TFS_MAPPED;
			ti->blk[b0 + done + i].addr = addr + i;
		}
		if (data)
			plat_bdev_rw(fs->bdev, PLAT_BIO_WRITE, addr << BB(ti),
				     (void *)((const uint8_t *)data + (done << BB(ti))), n << BB(ti));
		done += n;
	}
	ti->seq++;
	plat_mutex_unlock(fs->lock);
	iomap_raise(&ti->ino.size, off + len);
	iomap_raise(&ti->ino.disk_size, off + len);
	if (ti->persisted_size < off + len)
		ti->persisted_size = off + len;
	return 0;
}

/* Unwritten blocks get 0xEE garbage on disk: reading it would be a leak. */
int tfs_set_unwritten(struct tfs_inode *ti, uint64_t off, uint64_t len)
{
	uint8_t *junk = malloc(len);
	memset(junk, 0xEE, len);
	int ret = tfs_set_mapped(ti, off, len, junk);
	free(junk);
	plat_mutex_lock(ti->fs->lock);
	for (uint64_t b = off >> BB(ti); b < (off + len) >> BB(ti); b++)
		ti->blk[b].state = TFS_UNWRITTEN;
	ti->seq++;
	plat_mutex_unlock(ti->fs->lock);
	return ret;
}

/* COW-41: the destination's cache is invalidated so reads come from the
 * new (shared) mapping. */
int tfs_clone(struct tfs_inode *dst, uint64_t doff, struct tfs_inode *src, uint64_t soff, uint64_t len)
{
	int ret = iomap_fsync(&src->ino, soff, soff + len);
	if (!ret)
		ret = iomap_fsync(&dst->ino, doff, doff + len);
	if (ret)
		return ret;
	ret = pcache_invalidate_range(&dst->ino.mapping, doff, doff + len, true);
	plat_mutex_lock(src->fs->lock);
	for (uint64_t i = 0; i < len >> BB(src); i++) {
		struct tfs_blk *s = &src->blk[(soff >> BB(src)) + i], *d = &dst->blk[(doff >> BB(dst)) + i];
		if (d->state == TFS_MAPPED || d->state == TFS_UNWRITTEN)
			tfs_decref(dst->fs, d->addr);
		*d = (struct tfs_blk){ 0 };
		if (s->state == TFS_MAPPED) {
			*d = *s;
			src->fs->refcnt[s->addr]++;
		}
	}
	src->seq++;
	dst->seq++;
	plat_mutex_unlock(src->fs->lock);
	iomap_raise(&dst->ino.size, doff + len);
	iomap_raise(&dst->ino.disk_size, doff + len);
	return ret;
}

int tfs_read_disk(struct tfs_inode *ti, uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;
	for (uint64_t done = 0; done < len;) {
		uint64_t pos = off + done, b = pos >> BB(ti), o = pos & (BS(ti) - 1);
		uint64_t n = BS(ti) - o < len - done ? BS(ti) - o : len - done;
		struct tfs_blk k = tfs_blk_get(ti, pos);
		if (k.state == TFS_MAPPED) {
			uint8_t blk[65536];
			int ret = plat_bdev_rw(ti->fs->bdev, PLAT_BIO_READ, k.addr << BB(ti), blk, BS(ti));
			if (ret)
				return ret;
			memcpy(p + done, blk + o, n);
		} else {
			memset(p + done, 0, n);
		}
		(void)b;
		done += n;
	}
	return 0;
}

int tfs_disk_cmp(struct tfs_inode *ti, uint64_t off, const void *want, uint64_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int ret = buf ? tfs_read_disk(ti, off, buf, len) : -PLAT_ENOMEM;
	if (!ret && memcmp(buf, want, len))
		ret = 1;
	free(buf);
	return ret;
}

struct tfs_blk tfs_blk_get(struct tfs_inode *ti, uint64_t off)
{
	plat_mutex_lock(ti->fs->lock);
	struct tfs_blk k = tfs_blk_at(ti, off >> BB(ti));
	plat_mutex_unlock(ti->fs->lock);
	return k;
}

void tfs_bump_seq(struct tfs_inode *ti)
{
	plat_mutex_lock(ti->fs->lock);
	ti->seq++;
	plat_mutex_unlock(ti->fs->lock);
}
