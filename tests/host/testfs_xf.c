/*
 * Transform test filesystem (see testfs_xf.h).  One mutex protects the
 * extent lists and the allocator; it is a leaf lock.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/host/testfs_xf.h"
#include "tests/host/testfs.h"

#define XB(fs) (1ull << (fs)->blkbits)

/* ---- stages ---- */
uint32_t xt_crc32c(uint32_t crc, const uint8_t *p, uint64_t n)
{
	crc = ~crc;
	for (uint64_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static struct xt_fs *xt_fs_of(struct iomap_inode *inode)
{
	return ((struct xt_inode *)inode)->fs;
}

static int64_t xt_crc_encode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct xt_fs *fs = xt_fs_of(inode);
	(void)map, (void)pos, (void)cap;
	fs->crc_in = in;
	for (uint64_t o = 0; o < n; o += XB(fs))
		fs->csum[(dev + o) >> fs->blkbits] = xt_crc32c(0, in + o, XB(fs));
	if (out != in)          /* in place: the runner passes out == in */
		memcpy(out, in, n);
	return (int64_t)n;
}

static int64_t xt_crc_decode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct xt_fs *fs = xt_fs_of(inode);
	(void)map, (void)cap;
	for (uint64_t o = 0; o < n; o += XB(fs)) {
		uint32_t want = fs->csum[(dev + o) >> fs->blkbits], got = xt_crc32c(0, in + o, XB(fs));
		if (want != got) {
			__atomic_add_fetch(&fs->csum_failures, 1, __ATOMIC_RELAXED);
			plat_log(PLAT_LOG_ERR, "testfs_xf: crc32c mismatch in device block %llu (file offset %llu): "
				 "stored %08x, computed %08x", (unsigned long long)((dev + o) >> fs->blkbits),
				 (unsigned long long)(pos + o), want, got);
			return -PLAT_EIO;
		}
	}
	if (out != in)
		memcpy(out, in, n);
	return (int64_t)n;
}

/* TEST-ONLY toy cipher: XOR with splitmix64(key ^ word index). */
static uint8_t xt_ks(uint64_t key, uint64_t a)
{
	uint64_t z = key ^ (a >> 3);
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (uint8_t)(z >> (8 * (a & 7)));
}

static int64_t xt_xor(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
		      const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct xt_fs *fs = xt_fs_of(inode);
	(void)map, (void)pos, (void)cap;
	for (uint64_t i = 0; i < n; i++)
		out[i] = in[i] ^ xt_ks(fs->key, dev + i);
	return (int64_t)n;
}

/* RLE: control c < 128: c+1 literal bytes follow; c >= 128: the next byte
 * repeated c-125 times (3..130).  A leading 4-byte length. */
static int64_t xt_rle_encode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	uint64_t o = 4, i = 0;
	(void)map, (void)pos, (void)dev;
	__atomic_add_fetch(&xt_fs_of(inode)->encodes, 1, __ATOMIC_RELAXED);
	if (cap < 4)
		return -PLAT_ENOSPC;
	memcpy(out, &(uint32_t){ (uint32_t)n }, 4);
	while (i < n) {
		uint64_t r = 1;
		while (i + r < n && r < 130 && in[i + r] == in[i])
			r++;
		if (r >= 3) {
			if (o + 2 > cap)
				return -PLAT_ENOSPC;
			out[o++] = (uint8_t)(r + 125);
			out[o++] = in[i];
			i += r;
			continue;
		}
		uint64_t l = 0;
		while (i + l < n && l < 128 && !(i + l + 2 < n && in[i + l] == in[i + l + 1] && in[i + l] == in[i + l + 2]))
			l++;
		if (o + 1 + l > cap)
			return -PLAT_ENOSPC;
		out[o++] = (uint8_t)(l - 1);
		memcpy(out + o, in + i, l);
		o += l;
		i += l;
	}
	return (int64_t)o;
}

static int64_t xt_rle_decode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap)
{
	struct xt_inode *xi = (struct xt_inode *)inode;
	struct xt_fs *fs = xi->fs;
	uint32_t total;
	(void)pos;
	__atomic_add_fetch(&fs->decodes, 1, __ATOMIC_RELAXED);
	/* Which piece of the decoded extent does this map show? */
	plat_mutex_lock(fs->lock);
	uint64_t enc_off = UINT64_MAX;
	for (unsigned i = 0; i < xi->next; i++)
		if (xi->ext[i].len && xi->ext[i].addr == dev && xi->ext[i].off == map->offset)
			enc_off = xi->ext[i].enc_off;
	plat_mutex_unlock(fs->lock);
	memcpy(&total, in, 4);
	if (enc_off == UINT64_MAX || enc_off + cap > total) {
		plat_log(PLAT_LOG_ERR, "testfs_xf: rle: no extent piece for %llu at %llu",
			 (unsigned long long)map->offset, (unsigned long long)dev);
		return -PLAT_EIO;
	}
	uint8_t *tmp = malloc(total);
	uint64_t i = 4, o = 0;
	while (o < total && i < n) {
		uint8_t c = in[i++];
		if (c >= 128) {
			uint64_t r = c - 125u;
			if (i >= n || o + r > total)
				break;
			memset(tmp + o, in[i++], r);
			o += r;
		} else {
			uint64_t l = c + 1u;
			if (i + l > n || o + l > total)
				break;
			memcpy(tmp + o, in + i, l);
			i += l;
			o += l;
		}
	}
	if (o != total) {
		free(tmp);
		plat_log(PLAT_LOG_ERR, "testfs_xf: rle: corrupt stream at %llu (%llu of %u bytes)",
			 (unsigned long long)dev, (unsigned long long)o, total);
		return -PLAT_EIO;
	}
	memcpy(out, tmp + enc_off, cap);
	free(tmp);
	return (int64_t)cap;
}

const struct iomap_xform_stage xt_rle = { "rle", IOMAP_F_ENCODED, true, xt_rle_encode, xt_rle_decode, false };
const struct iomap_xform_stage xt_cipher = { "xor-test-cipher", IOMAP_F_CRYPT, false, xt_xor, xt_xor, false };
/* In place, between a resizing and a rewriting stage: the runner's buffer
 * swapping must skip it without losing the other stages' output. */
const struct iomap_xform_stage xt_crc = { "crc32c", IOMAP_F_CSUM, false, xt_crc_encode, xt_crc_decode, true };
static const struct iomap_xform_stage *const xt_stages[] = { &xt_rle, &xt_cipher, &xt_crc };

/* ---- extents (fs->lock held) ---- */
static struct xt_ext *xt_find(struct xt_inode *xi, uint64_t pos, uint64_t *next_start)
{
	*next_start = UINT64_MAX;
	for (unsigned i = 0; i < xi->next; i++) {
		struct xt_ext *e = &xi->ext[i];
		if (!e->len)
			continue;
		if (pos >= e->off && pos < e->off + e->len)
			return e;
		if (e->off > pos && e->off < *next_start)
			*next_start = e->off;
	}
	return NULL;
}

static struct xt_ext *xt_slot(struct xt_inode *xi)
{
	for (unsigned i = 0; i < xi->next; i++)
		if (!xi->ext[i].len)
			return &xi->ext[i];
	PLAT_ASSERT(xi->next < XT_MAX_EXT);
	return &xi->ext[xi->next++];
}

/* Drop [off, off+len) from every extent (splitting; an encoded piece keeps
 * its stored bytes and moves its enc_off). */
static void xt_punch(struct xt_inode *xi, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	for (unsigned i = 0; i < xi->next; i++) {
		struct xt_ext *e = &xi->ext[i], c = *e;
		uint64_t eend = c.off + c.len;
		if (!c.len || eend <= off || c.off >= end)
			continue;
		e->len = 0;
		if (c.off < off) {
			struct xt_ext *h = xt_slot(xi);
			*h = c;
			h->len = off - c.off;
		}
		if (eend > end) {
			struct xt_ext *t = xt_slot(xi);
			*t = c;
			t->off = end;
			t->len = eend - end;
			if (c.type == IOMAP_ENCODED)
				t->enc_off = c.enc_off + (end - c.off);
			else
				t->addr = c.addr + (end - c.off);
		}
	}
	xi->seq++;
}

static void xt_fill_map(struct xt_inode *xi, const struct xt_ext *e, struct iomap *m)
{
	m->offset = e->off;
	m->length = e->len;
	m->type = e->type;
	m->flags = e->flags;
	m->addr = e->addr;
	m->io_size = e->io_size;
	m->bdev = xi->fs->bdev;
	m->validity_cookie = xi->seq;
}

static int xt_begin(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
		    struct iomap *iomap, struct iomap *srcmap)
{
	struct xt_inode *xi = (struct xt_inode *)inode;
	struct xt_fs *fs = xi->fs;
	uint64_t bs = XB(fs), b = pos & ~(bs - 1), end = (pos + len + bs - 1) & ~(bs - 1), next;
	plat_mutex_lock(fs->lock);
	struct xt_ext *e = xt_find(xi, b, &next);
	if (flags & IOMAP_DIRECT && flags & IOMAP_WRITE) {
		/* Always into fresh blocks, stored with the size-preserving stages. */
		iomap->offset = b;
		iomap->length = end - b;
		iomap->type = IOMAP_MAPPED;
		iomap->flags = IOMAP_F_NEW | (fs->wflags & (IOMAP_F_CSUM | IOMAP_F_CRYPT));
		iomap->addr = fs->next;
		iomap->bdev = fs->bdev;
		fs->next += end - b;
		PLAT_ASSERT(fs->next <= fs->dev_bytes);
		unsigned i = 0;
		while (i < 16 && xi->dio[i].used)
			i++;
		PLAT_ASSERT(i < 16);
		xi->dio[i].used = true;
		xi->dio[i].pos = b;
		xi->dio[i].addr = iomap->addr;
		xi->dio[i].flags = iomap->flags;
	} else if (!e) {
		iomap->offset = b;
		iomap->length = (next < end ? next : end) - b;
		iomap->type = (flags & IOMAP_WRITE) && !(flags & IOMAP_ZERO) ? IOMAP_DELALLOC : IOMAP_HOLE;
		iomap->flags = iomap->type == IOMAP_DELALLOC ? IOMAP_F_NEW : 0;
		iomap->addr = IOMAP_NULL_ADDR;
		iomap->bdev = fs->bdev;
	} else if (flags & (IOMAP_WRITE | IOMAP_ZERO | IOMAP_UNSHARE)) {
		/* Copy-on-write: new delalloc destination, the extent is the source. */
		xt_fill_map(xi, e, srcmap);
		iomap->offset = b;
		iomap->length = ((e->off + e->len) < end ? e->off + e->len : end) - b;
		iomap->type = IOMAP_DELALLOC;
		iomap->flags = IOMAP_F_SHARED;
		iomap->addr = IOMAP_NULL_ADDR;
		iomap->bdev = fs->bdev;
	} else {
		xt_fill_map(xi, e, iomap);
	}
	iomap->validity_cookie = xi->seq;
	srcmap->validity_cookie = xi->seq;
	plat_mutex_unlock(fs->lock);
	return 0;
}

const struct iomap_ops xt_ops = { xt_begin, NULL };

static int xt_map_blocks(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode, uint64_t pos, uint64_t len)
{
	struct xt_inode *xi = (struct xt_inode *)inode;
	struct xt_fs *fs = xi->fs;
	uint64_t bs = XB(fs);
	len = (len + bs - 1) & ~(bs - 1);
	if (len > (1ull << 20))
		len = 1ull << 20;
	plat_mutex_lock(fs->lock);
	wpc->iomap.offset = pos;
	wpc->iomap.length = len;
	wpc->iomap.type = IOMAP_MAPPED;
	wpc->iomap.flags = IOMAP_F_NEW | fs->wflags;
	wpc->iomap.addr = fs->next;
	wpc->iomap.bdev = fs->bdev;
	wpc->iomap.validity_cookie = xi->seq;
	fs->next += len;
	PLAT_ASSERT(fs->next <= fs->dev_bytes);
	plat_mutex_unlock(fs->lock);
	return 0;
}

static bool xt_valid(struct iomap_inode *inode, const struct iomap *m)
{
	return plat_load(&((struct xt_inode *)inode)->seq) == m->validity_cookie;
}

/* A new extent replaces what was there; encoded ones carry io_size. */
static void xt_record(struct xt_inode *xi, uint64_t pos, uint64_t len, uint64_t addr, uint16_t flags,
		      uint64_t io_size)
{
	plat_mutex_lock(xi->fs->lock);
	xt_punch(xi, pos, len);
	struct xt_ext *e = xt_slot(xi);
	*e = (struct xt_ext){ .off = pos, .len = len, .addr = addr, .io_size = io_size, .enc_len = len,
			      .type = (flags & IOMAP_F_ENCODED) ? IOMAP_ENCODED : IOMAP_MAPPED,
			      .flags = flags & (IOMAP_F_CSUM | IOMAP_F_CRYPT) };
	plat_mutex_unlock(xi->fs->lock);
}

static int xt_end_io(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap *map, int error,
		     uint64_t new_disk_size)
{
	(void)new_disk_size;
	if (!error)
		xt_record((struct xt_inode *)inode, pos, len, iomap_sector_addr(map, pos), map->flags, map->io_size);
	return 0;
}

static const struct iomap_writeback_ops xt_wb_ops = { xt_map_blocks, xt_valid, xt_end_io, NULL };

/* DIO: record the new extent at completion (COW-23: only on success); the
 * begin map is gone by then, its address was kept in xi->dio. */
static int xt_dio_end_io(struct iomap_inode *inode, uint64_t pos, int64_t size, unsigned dio_flags)
{
	struct xt_inode *xi = (struct xt_inode *)inode;
	uint64_t addr = 0;
	uint16_t flags = 0;
	bool found = false;
	(void)dio_flags;
	plat_mutex_lock(xi->fs->lock);
	for (unsigned i = 0; i < 16; i++)
		if (xi->dio[i].used && xi->dio[i].pos == pos) {
			xi->dio[i].used = false;
			addr = xi->dio[i].addr;
			flags = xi->dio[i].flags;
			found = true;
			break;
		}
	plat_mutex_unlock(xi->fs->lock);
	if (found && size > 0)
		xt_record(xi, pos, (uint64_t)size, addr, flags, 0);
	return 0;
}

const struct iomap_dio_ops xt_dio_ops = { NULL, xt_dio_end_io };

/* ---- files ---- */
int xt_create(uint16_t wflags, unsigned blkbits, struct xt_fs **out)
{
	struct xt_fs *fs = calloc(1, sizeof(*fs));
	fs->blkbits = blkbits;
	fs->dev_bytes = 64ull << 20;
	fs->wflags = wflags;
	fs->key = 0x5eed;
	fs->next = XB(fs);
	fs->bdev = tfs_image_open("xtfs", fs->path, sizeof(fs->path), fs->dev_bytes, 2, false);
	fs->csum = calloc(fs->dev_bytes >> blkbits, sizeof(uint32_t));
	fs->lock = plat_mutex_new("xtfs");
	fs->xops.stages = xt_stages;
	fs->xops.nstages = 3;
	struct pcache_config pcfg = { 32ull << 20, 0, 0, 0, 20ull * 1000000ull };
	int ret = fs->bdev ? tfs_cache_create(&pcfg, "xt-io", 1, &fs->pc, &fs->wq) : -PLAT_EIO;
	if (ret) {
		xt_destroy(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

void xt_destroy(struct xt_fs *fs)
{
	tfs_plumbing_destroy(fs->pc, fs->bdev, fs->wq, fs->lock);
	free(fs->csum);
	free(fs);
}

struct xt_inode *xt_inode_new(struct xt_fs *fs)
{
	struct xt_inode *xi = calloc(1, sizeof(*xi));
	if (iomap_inode_init(&xi->ino, fs->pc, fs->blkbits, 2, &xt_wb_ops)) {
		free(xi);
		return NULL;
	}
	xi->fs = fs;
	xi->ino.wq = fs->wq;
	xi->ino.flush_bdev = fs->bdev;
	xi->ino.ops = &xt_ops;
	xi->ino.xform = &fs->xops;
	return xi;
}

int xt_inode_free(struct xt_inode *xi)
{
	int ret = iomap_inode_destroy(&xi->ino);
	free(xi);
	return ret;
}

int64_t xt_write(struct xt_inode *xi, uint64_t pos, const void *buf, uint64_t len)
{
	/* COW-36: a partial overwrite of an encoded extent rewrites all of it:
	 * unshare (decode + dirty) every encoded extent the write touches. */
	for (uint64_t p = pos; p < pos + len;) {
		struct xt_ext e = xt_ext_at(xi, p);
		if (!e.len) {
			p += XB(xi->fs);
			continue;
		}
		if (e.type == IOMAP_ENCODED) {
			int ret = iomap_file_unshare(&xi->ino, e.off, e.len, &xt_ops);
			if (ret)
				return ret;
		}
		p = e.off + e.len;
	}
	struct iomap_source src = { .buf = buf };
	return iomap_file_buffered_write(&xi->ino, pos, &src, len, &xt_ops, 0);
}

int64_t xt_read(struct xt_inode *xi, uint64_t pos, void *buf, uint64_t len)
{
	return iomap_file_read(&xi->ino, pos, buf, len, &xt_ops);
}

int xt_sync_drop(struct xt_inode *xi)
{
	int ret = iomap_fsync(&xi->ino, 0, UINT64_MAX);
	int r2 = pcache_invalidate_range(&xi->ino.mapping, 0, UINT64_MAX, true);
	return ret ? ret : r2;
}

struct xt_ext xt_ext_at(struct xt_inode *xi, uint64_t pos)
{
	struct xt_ext z = { 0 }, *e;
	uint64_t next;
	plat_mutex_lock(xi->fs->lock);
	e = xt_find(xi, pos, &next);
	if (e)
		z = *e;
	plat_mutex_unlock(xi->fs->lock);
	return z;
}
