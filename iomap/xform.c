/*
 * Data transform stages and encoded extents (see xform.h): the pipeline
 * runner, the whole-extent read, and the physical-mapping refusal.
 */
#include "iomap/xform.h"

static bool iomap_stage_on(const struct iomap_xform_stage *s, uint16_t flags)
{
	return (s->flag & flags) != 0;
}

int iomap_xform_encode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
		       const uint8_t *in, uint64_t n, uint8_t **out, uint64_t *stored, uint16_t *applied)
{
	uint64_t bs = 1ull << inode->blkbits, cap = (n + bs - 1) & ~(bs - 1);
	uint8_t *a = plat_alloc(cap);
	if (!a)
		return -PLAT_ENOMEM;
	plat_memcpy(a, in, n);
	return iomap_xform_encode_owned(inode, map, pos, dev, a, n, out, stored, applied);
}

/* The second buffer is only needed by a stage that rewrites the bytes:
 * a pipeline of checksums runs in the caller's buffer alone. */
int iomap_xform_encode_owned(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     uint8_t *a, uint64_t n, uint8_t **out, uint64_t *stored, uint16_t *applied)
{
	const struct iomap_xform_ops *xo = inode->xform;
	uint64_t bs = 1ull << inode->blkbits, cap = (n + bs - 1) & ~(bs - 1);
	uint16_t flags = iomap_xform_flags(map);
	uint8_t *b = NULL;
	uint64_t len = n;
	for (unsigned i = 0; xo && i < xo->nstages; i++) {
		const struct iomap_xform_stage *s = xo->stages[i];
		if (!iomap_stage_on(s, flags))
			continue;
		/* A resizing stage must save at least one block to be kept. */
		uint64_t scap = s->resizes ? (len > bs ? ((len + bs - 1) & ~(bs - 1)) - bs : 0) : len;
		bool in_place = s->in_place && !s->resizes;
		if (!in_place && !b && !(b = plat_alloc(cap))) {
			plat_free(a);
			return -PLAT_ENOMEM;
		}
		int64_t r = scap ? s->encode(inode, map, pos, dev, a, len, in_place ? a : b, scap) : -PLAT_ENOSPC;
		if (r == -PLAT_ENOSPC && s->resizes) {
			flags &= (uint16_t)~s->flag;   /* incompressible: store as is */
			continue;
		}
		if (r < 0 || (uint64_t)r > scap || (!s->resizes && (uint64_t)r != len)) {
			plat_log(PLAT_LOG_ERR, "iomap: inode %llu: transform stage %s failed encoding file %llu+%llu: %s",
				 (unsigned long long)inode->ino, s->name, (unsigned long long)pos,
				 (unsigned long long)n, r < 0 ? plat_strerror((int)r) : "wrong output length");
			plat_free(a);
			plat_free(b);
			return r < 0 ? (int)r : -PLAT_EIO;
		}
		len = (uint64_t)r;
		if (s->resizes) {
			/* Later stages see whole blocks: pad with zeros. */
			uint64_t padded = (len + bs - 1) & ~(bs - 1);
			plat_memset(b + len, 0, padded - len);
			len = padded;
		}
		if (in_place)
			continue;
		uint8_t *t = a;
		a = b;
		b = t;
	}
	plat_free(b);
	*out = a;
	*stored = len;
	*applied = flags;
	return 0;
}

int iomap_xform_encode_shared(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			      const uint8_t *buf, uint64_t n)
{
	const struct iomap_xform_ops *xo = inode->xform;
	uint16_t flags = iomap_xform_flags(map);
	uint64_t bs = 1ull << inode->blkbits;
	if (!xo || n % bs)
		return 0;
	for (unsigned i = 0; i < xo->nstages; i++)
		if (iomap_stage_on(xo->stages[i], flags) && (!xo->stages[i]->in_place || xo->stages[i]->resizes))
			return 0;
	for (unsigned i = 0; i < xo->nstages; i++) {
		const struct iomap_xform_stage *s = xo->stages[i];
		if (!iomap_stage_on(s, flags))
			continue;
		/* in_place: the stage reads buf and never writes it. */
		int64_t r = s->encode(inode, map, pos, dev, buf, n, (uint8_t *)(uintptr_t)buf, n);
		if (r < 0 || (uint64_t)r != n) {
			plat_log(PLAT_LOG_ERR, "iomap: inode %llu: transform stage %s failed encoding file %llu+%llu: %s",
				 (unsigned long long)inode->ino, s->name, (unsigned long long)pos,
				 (unsigned long long)n, r < 0 ? plat_strerror((int)r) : "wrong output length");
			return r < 0 ? (int)r : -PLAT_EIO;
		}
	}
	return 1;
}

int iomap_xform_read(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint8_t *out, uint64_t n)
{
	const struct iomap_xform_ops *xo = inode->xform;
	uint64_t bs = 1ull << inode->blkbits;
	uint16_t flags = iomap_xform_flags(map);
	bool enc = map->type == IOMAP_ENCODED;
	uint64_t start = enc ? map->offset : pos & ~(bs - 1);
	uint64_t stored = enc ? map->io_size : ((pos + n + bs - 1) & ~(bs - 1)) - start;
	uint64_t logical = enc ? map->length : stored;
	uint64_t dev = enc ? map->addr : iomap_sector_addr(map, start);
	uint64_t cap = stored > logical ? stored : logical;
	int ret = 0;
	if (!xo) {
		plat_log(PLAT_LOG_ERR, "iomap: mapping at %llu needs transform stages but the inode has none",
			 (unsigned long long)map->offset);
		return -PLAT_EIO;
	}
	if (pos < map->offset || pos + n > map->offset + map->length || (enc && stored > map->length + bs))
		return -PLAT_EINVAL;
	uint8_t *a = plat_alloc(cap), *b = plat_alloc(cap);
	if (!a || !b) {
		ret = -PLAT_ENOMEM;
		goto out;
	}
	ret = plat_bdev_rw(map->bdev, PLAT_BIO_READ, dev, a, stored);
	if (ret) {
		plat_log(PLAT_LOG_ERR, "iomap: inode %llu: reading stored bytes %llu+%llu on %s for file offset %llu "
			 "failed: %s", (unsigned long long)inode->ino, (unsigned long long)dev,
			 (unsigned long long)stored, plat_bdev_name(map->bdev), (unsigned long long)start,
			 plat_strerror(ret));
		goto out;
	}
	uint64_t len = stored;
	for (unsigned i = xo->nstages; i-- > 0;) {
		const struct iomap_xform_stage *s = xo->stages[i];
		if (!iomap_stage_on(s, flags))
			continue;
		uint64_t scap = s->resizes ? logical : len;
		bool in_place = s->in_place && !s->resizes;
		int64_t r = s->decode(inode, map, start, dev, a, len, in_place ? a : b, scap);
		if (r < 0 || (uint64_t)r != scap) {
			/* Never hand out undecoded or unverified bytes. */
			plat_log(PLAT_LOG_ERR, "iomap: inode %llu: transform stage %s rejected the data of file "
				 "%llu+%llu (stored on %s at %llu+%llu): %s", (unsigned long long)inode->ino,
				 s->name, (unsigned long long)start, (unsigned long long)logical,
				 plat_bdev_name(map->bdev), (unsigned long long)dev, (unsigned long long)stored,
				 r < 0 ? plat_strerror((int)r) : "wrong decoded length");
			ret = -PLAT_EIO;
			goto out;
		}
		len = (uint64_t)r;
		if (in_place)
			continue;
		uint8_t *t = a;
		a = b;
		b = t;
	}
	if (len < (pos - start) + n) {
		plat_log(PLAT_LOG_ERR, "iomap: decoded %llu bytes at %llu, need %llu (no decoding stage for flags 0x%x?)",
			 (unsigned long long)len, (unsigned long long)start,
			 (unsigned long long)((pos - start) + n), flags);
		ret = -PLAT_EIO;
		goto out;
	}
	plat_memcpy(out, a + (pos - start), n);
out:
	plat_free(a);
	plat_free(b);
	return ret;
}

/* ---- COW-42: physical mappings (swap, bmap) ---- */
const char *iomap_physical_refusal(const struct iomap *m, const struct iomap *srcmap)
{
	if (srcmap && srcmap->type != IOMAP_NONE)
		return "COW extent: the data moves on the next write";
	if (m->flags & IOMAP_F_SHARED)
		return "shared (reflinked) extent: writing through its address would change other files";
	switch (m->type) {
	case IOMAP_HOLE:
		return "hole: no blocks allocated";
	case IOMAP_DELALLOC:
		return "delalloc extent: blocks not allocated until writeback";
	case IOMAP_UNWRITTEN:
		return "unwritten (preallocated) extent: reads would not see raw writes";
	case IOMAP_INLINE:
		return "inline data: no block address";
	case IOMAP_ENCODED:
		return "encoded (compressed) extent: stored bytes are not the file bytes";
	case IOMAP_MAPPED:
		break;
	default:
		return "unknown mapping type";
	}
	if (m->flags & (IOMAP_F_CSUM | IOMAP_F_CRYPT))
		return "transformed extent (checksummed/encrypted): raw block I/O would bypass the stages";
	return NULL;
}

struct iomap_phys_ctx {
	const char *why;
	uint64_t where, addr;
};

static int iomap_phys_walk(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops,
			   struct iomap_phys_ctx *c)
{
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = len, .flags = IOMAP_REPORT };
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0) {
		const char *why = iomap_physical_refusal(&it.iomap, &it.srcmap);
		if (why) {
			c->why = why;
			c->where = it.pos;
			it.processed = 0;   /* stop: nothing processed */
			continue;
		}
		if (it.pos == pos)
			c->addr = iomap_sector_addr(&it.iomap, pos);
		it.processed = (int64_t)iomap_length(&it);
	}
	return ret;
}

int64_t iomap_bmap(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops)
{
	struct iomap_phys_ctx c = { 0 };
	uint64_t bs = 1ull << inode->blkbits;
	int ret = iomap_phys_walk(inode, pos & ~(bs - 1), bs, ops, &c);
	if (ret)
		return ret;
	if (c.why) {
		plat_log(PLAT_LOG_WARN, "iomap: bmap refuses file offset %llu: %s", (unsigned long long)pos, c.why);
		return -PLAT_EINVAL;
	}
	return (int64_t)(c.addr + (pos & (bs - 1)));
}

int iomap_swap_activate(struct iomap_inode *inode, uint64_t len, const struct iomap_ops *ops)
{
	struct iomap_phys_ctx c = { 0 };
	int ret = iomap_phys_walk(inode, 0, len, ops, &c);
	if (ret)
		return ret;
	if (c.why) {
		plat_log(PLAT_LOG_WARN, "iomap: swap activation refused at file offset %llu: %s",
			 (unsigned long long)c.where, c.why);
		return -PLAT_EINVAL;
	}
	return 0;
}

bool iomap_xform_in_place(struct iomap_inode *inode, const struct iomap *map)
{
	const struct iomap_xform_ops *xo = inode->xform;
	uint16_t flags = iomap_xform_flags(map);
	if (!xo || map->type != IOMAP_MAPPED)
		return false;
	for (unsigned i = 0; i < xo->nstages; i++)
		if (iomap_stage_on(xo->stages[i], flags) && xo->stages[i]->resizes)
			return false;
	return true;
}

int iomap_xform_verify(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint8_t *buf, uint64_t n)
{
	const struct iomap_xform_ops *xo = inode->xform;
	uint16_t flags = iomap_xform_flags(map);
	uint64_t dev = iomap_sector_addr(map, pos);
	uint8_t *tmp = NULL, *a = buf, *b = NULL;
	int ret = 0;
	for (unsigned i = xo->nstages; i-- > 0;) {
		const struct iomap_xform_stage *s = xo->stages[i];
		if (!iomap_stage_on(s, flags))
			continue;
		/* Checksums verify in place; a rewriting stage needs a second buffer. */
		if (!s->in_place && !tmp) {
			if (!(tmp = plat_alloc(n)))
				return -PLAT_ENOMEM;
			b = a == buf ? tmp : buf;
		}
		int64_t r = s->decode(inode, map, pos, dev, a, n, s->in_place ? a : b, n);
		if (r < 0 || (uint64_t)r != n) {
			/* Never hand out unverified bytes: the caller fails the read. */
			plat_log(PLAT_LOG_ERR, "iomap: inode %llu: transform stage %s rejected the data of file "
				 "%llu+%llu (direct read, stored on %s at %llu): %s", (unsigned long long)inode->ino,
				 s->name, (unsigned long long)pos, (unsigned long long)n, plat_bdev_name(map->bdev),
				 (unsigned long long)dev, r < 0 ? plat_strerror((int)r) : "wrong decoded length");
			ret = -PLAT_EIO;
			break;
		}
		if (s->in_place)
			continue;
		uint8_t *t = a;
		a = b;
		b = t;
	}
	if (!ret && a != buf)
		plat_memcpy(buf, a, n);
	plat_free(tmp);
	return ret;
}
