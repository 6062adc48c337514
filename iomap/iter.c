/*
 * The iomap iterator and the mapping validator.
 */
#include "iomap/iomap.h"

/*
 * COW-7: every rule a mapping returned by ->begin must obey, checked in
 * order; the string names the broken rule (tests match on it).
 */
const char *iomap_check_mapping(const struct iomap_iter *it)
{
	const struct iomap *m = &it->iomap, *s = &it->srcmap;
	uint64_t bmask = (1ull << it->inode->blkbits) - 1;

	if (m->type < IOMAP_HOLE || m->type > IOMAP_ENCODED)
		return "type: unknown mapping type";
	if (m->length == 0)
		return "length: mapping length is zero";
	if (m->offset > it->pos)
		return "offset: mapping starts after pos";
	if (m->offset + m->length <= it->pos)
		return "pos: mapping ends at or before pos";
	if ((m->type == IOMAP_HOLE || m->type == IOMAP_DELALLOC) && m->addr != IOMAP_NULL_ADDR)
		return "addr: hole/delalloc mapping has an address";
	if ((m->type == IOMAP_MAPPED || m->type == IOMAP_UNWRITTEN) &&
	    (m->addr == IOMAP_NULL_ADDR || !m->bdev))
		return "addr: mapped/unwritten mapping without address or device";
	/* COW-36: encoded extents name their stored bytes; transforms need
	 * stored bytes (no transform on holes/delalloc/inline). */
	if (m->type == IOMAP_ENCODED && (m->addr == IOMAP_NULL_ADDR || !m->bdev || !m->io_size))
		return "encoded: encoded mapping without address, device or io_size";
	if ((m->flags & IOMAP_F_XFORM) && m->type != IOMAP_MAPPED && m->type != IOMAP_ENCODED &&
	    m->type != IOMAP_UNWRITTEN && m->type != IOMAP_DELALLOC)
		return "xform: transform flags on a mapping without stored data";
	if (m->type == IOMAP_ENCODED && (it->flags & (IOMAP_WRITE | IOMAP_ZERO | IOMAP_UNSHARE)))
		return "encoded: encoded extent as a write destination (COW it, COW-36)";
	if (m->type == IOMAP_INLINE && !m->inline_data)
		return "inline: inline mapping without data";
	/* COW-8: block-rounded, except inline data. */
	if (m->type != IOMAP_INLINE && ((m->offset & bmask) || (m->length & bmask)))
		return "align: mapping not block aligned";
	if ((m->flags & IOMAP_F_STALE))
		return "flags: filesystem returned STALE";
	if (s->type != IOMAP_NONE) {
		if (!(it->flags & (IOMAP_WRITE | IOMAP_ZERO | IOMAP_UNSHARE | IOMAP_FAULT)))
			return "srcmap: source map on a read/report operation";
		if (s->type < IOMAP_HOLE || s->type > IOMAP_ENCODED)
			return "srcmap: unknown source type";
		if (s->type == IOMAP_ENCODED && (s->addr == IOMAP_NULL_ADDR || !s->bdev || !s->io_size))
			return "srcmap: encoded source without address, device or io_size";
		if (s->length == 0 || s->offset > it->pos || s->offset + s->length <= it->pos)
			return "srcmap: source does not cover pos";
		if (s->type == IOMAP_DELALLOC)
			return "srcmap: delalloc source has no data on disk";
		if ((s->type == IOMAP_MAPPED || s->type == IOMAP_UNWRITTEN) &&
		    (s->addr == IOMAP_NULL_ADDR || !s->bdev))
			return "srcmap: mapped source without address or device";
		if (s->type == IOMAP_HOLE && s->addr != IOMAP_NULL_ADDR)
			return "srcmap: hole source has an address";
		if (m->type == IOMAP_INLINE || s->type == IOMAP_INLINE)
			return "cow: inline mapping combined with a source map";
	}
	return NULL;
}

#ifdef IOMAP_DEBUG
bool iomap_debug = true;
#else
bool iomap_debug;
#endif
unsigned long iomap_bad_mappings;

static int iomap_iter_begin(struct iomap_iter *it, const struct iomap_ops *ops)
{
	plat_memset(&it->iomap, 0, sizeof(it->iomap));
	plat_memset(&it->srcmap, 0, sizeof(it->srcmap));
	it->iomap.addr = IOMAP_NULL_ADDR;
	it->srcmap.addr = IOMAP_NULL_ADDR;
	int ret = ops->begin(it->inode, it->pos, it->len, it->flags, &it->iomap, &it->srcmap);
	if (ret)
		return ret;
	const char *bad = iomap_debug ? iomap_check_mapping(it) : NULL;
	if (bad) {
		plat_add(&iomap_bad_mappings, 1);
		plat_log(PLAT_LOG_ERR, "iomap: bad mapping at %llu: %s",
			 (unsigned long long)it->pos, bad);
		if (ops->end)
			ops->end(it->inode, it->pos, it->len, 0, it->flags, &it->iomap);
		plat_memset(&it->iomap, 0, sizeof(it->iomap));
		return -PLAT_EIO;
	}
	return 1;
}

/*
 * One round of iteration.  Returns 1 with a fresh mapping, 0 when the
 * request is done, or a negative error.
 *
 * Restart on stale mappings (DIO-34): an actor that finds the mapping stale
 * sets IOMAP_F_STALE and reports the bytes it did finish (possibly 0).
 * Normally 0 processed bytes ends the iteration; with STALE the core
 * calls ->end with what was done and ->begin again at the current position.
 * DIO-36: restarts are counted and capped so a constant sequence bumper
 * cannot livelock the caller; past the cap the iteration fails with -EBUSY
 * after logging (the filesystem is expected to stop invalidating).
 */
unsigned iomap_max_stale_restarts = 100000u;

int iomap_iter(struct iomap_iter *it, const struct iomap_ops *ops)
{
	if (it->iomap.length) {
		int64_t processed = it->processed;
		bool stale = it->iomap.flags & IOMAP_F_STALE;
		uint64_t len = iomap_length(it);
		int ret = 0;
		if (processed > 0 && (uint64_t)processed > len)
			processed = -PLAT_EIO;   /* actor overran: a core bug */
		if (ops->end)
			ret = ops->end(it->inode, it->pos, len, processed > 0 ? processed : 0,
				       it->flags, &it->iomap);
		plat_memset(&it->iomap, 0, sizeof(it->iomap));
		it->processed = 0;
		if (processed < 0)
			return (int)processed;
		if (ret < 0 && !processed)
			return ret;
		it->pos += (uint64_t)processed;
		it->len -= (uint64_t)processed;
		it->done += (uint64_t)processed;
		if (ret < 0)
			return ret;
		if (!processed && !stale)
			return 0;
		if (stale && ++it->stale_restarts > iomap_max_stale_restarts) {
			plat_log(PLAT_LOG_ERR, "iomap: stale mapping restarts do not converge");
			return -PLAT_EBUSY;
		}
	}
	if (!it->len)
		return 0;
	return iomap_iter_begin(it, ops);
}
