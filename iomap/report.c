/* Seek hole/data and fiemap (see report.h). */
#include "iomap/report.h"

/* First byte in [pos, end) whose block the page cache holds uptodate
 * (want_data) or does not (!want_data); end when none. */
static uint64_t iomap_cache_scan(struct iomap_inode *inode, uint64_t pos, uint64_t end, bool want_data)
{
	uint64_t bs = 1ull << inode->blkbits;
	pos &= ~(bs - 1);
	while (pos < end) {
		struct folio *f = pcache_lookup(&inode->mapping, pos >> PLAT_PAGE_SHIFT);
		uint64_t stop = f ? folio_pos(f) + folio_size(f) : (pos | (PLAT_PAGE_SIZE - 1)) + 1;
		stop = iomap_min(stop, end);
		for (; pos < stop; pos += bs) {
			bool data = f && folio_range_uptodate(f, pos - folio_pos(f), bs);
			if (data == want_data) {
				if (f)
					folio_put(f);
				return pos;
			}
		}
		if (f)
			folio_put(f);
	}
	return end;
}

struct iomap_seek_ctx {
	bool want_data;
	int64_t found;
};

static int64_t iomap_seek_iter(struct iomap_iter *it, struct iomap_seek_ctx *c)
{
	uint64_t len = iomap_length(it), end = it->pos + len;
	switch (it->iomap.type) {
	case IOMAP_HOLE:
		if (!c->want_data) {
			c->found = (int64_t)it->pos;
			return 0;
		}
		return (int64_t)len;
	case IOMAP_UNWRITTEN: {
		uint64_t p = iomap_cache_scan(it->inode, it->pos, end, c->want_data);
		if (p < end) {
			c->found = (int64_t)(p > it->pos ? p : it->pos);
			return 0;
		}
		return (int64_t)len;
	}
	default:   /* DELALLOC, MAPPED (incl. shared/COW), INLINE: data */
		if (c->want_data) {
			c->found = (int64_t)it->pos;
			return 0;
		}
		return (int64_t)len;
	}
}

static int64_t iomap_seek(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops, bool data)
{
	uint64_t isize = iomap_isize(inode);
	if (pos >= isize)
		return -PLAT_ENXIO;
	struct iomap_seek_ctx c = { data, -1 };
	struct iomap_iter it = { .inode = inode, .pos = pos, .len = isize - pos, .flags = IOMAP_REPORT };
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0)
		it.processed = iomap_seek_iter(&it, &c);
	if (ret < 0)
		return ret;
	if (c.found >= 0)
		return c.found < (int64_t)isize ? c.found : (data ? -PLAT_ENXIO : (int64_t)isize);
	return data ? -PLAT_ENXIO : (int64_t)isize;
}

int64_t iomap_seek_data(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops)
{
	return iomap_seek(inode, pos, ops, true);
}

int64_t iomap_seek_hole(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops)
{
	return iomap_seek(inode, pos, ops, false);
}

int iomap_fiemap(struct iomap_inode *inode, uint64_t start, uint64_t len, const struct iomap_ops *ops,
		 struct iomap_fiemap_extent *out, unsigned max)
{
	struct iomap_iter it = { .inode = inode, .pos = start, .len = len, .flags = IOMAP_REPORT };
	unsigned n = 0;
	int ret;
	while ((ret = iomap_iter(&it, ops)) > 0) {
		const struct iomap *m = &it.iomap;
		uint64_t l = iomap_length(&it);
		it.processed = (int64_t)l;
		if (m->type == IOMAP_HOLE)
			continue;
		uint32_t fl = 0;
		uint64_t phys = 0;
		if (m->type == IOMAP_DELALLOC)
			fl |= IOMAP_FIEMAP_DELALLOC | IOMAP_FIEMAP_UNKNOWN;
		else if (m->type == IOMAP_INLINE)
			fl |= IOMAP_FIEMAP_INLINE | IOMAP_FIEMAP_UNKNOWN;
		else
			phys = iomap_sector_addr(m, it.pos);
		if (m->type == IOMAP_UNWRITTEN)
			fl |= IOMAP_FIEMAP_UNWRITTEN;
		if (m->flags & IOMAP_F_SHARED)
			fl |= IOMAP_FIEMAP_SHARED;
		if (m->flags & IOMAP_F_MERGED)
			fl |= IOMAP_FIEMAP_MERGED;
		if (m->type == IOMAP_ENCODED)
			fl |= IOMAP_FIEMAP_ENCODED;
		struct iomap_fiemap_extent *prev = n ? &out[n - 1] : NULL;
		if (prev && prev->flags == fl && prev->logical + prev->length == it.pos &&
		    (!phys || prev->physical + prev->length == phys)) {
			prev->length += l;
			continue;
		}
		if (n == max) {
			it.processed = 0;    /* ends the iteration (end is called) */
			continue;
		}
		out[n++] = (struct iomap_fiemap_extent){ it.pos, phys, l, fl };
	}
	if (ret < 0)
		return ret;
	if (n && out[n - 1].logical + out[n - 1].length >= iomap_isize(inode))
		out[n - 1].flags |= IOMAP_FIEMAP_LAST;
	return (int)n;
}
