/*
 * References counted by a walk of every tree (fs/check.c, fs/repair.c):
 * the number beyond the first, per block.  A byte per block holds it up to
 * 255; the few blocks that pass it (a data extent reflinked or snapshotted
 * hundreds of times, a node shared by hundreds of snapshots) keep the rest
 * in a small open-addressed table of their own.  The check so stays exact
 * for any count while costing a byte per block of the device.
 */
#include "fs/cowfs_int.h"

#define LOW_MAX 255u

int cowfs_refmap_init(struct cowfs_refmap *r, uint64_t blocks)
{
	plat_memset(r, 0, sizeof(*r));
	r->low = plat_zalloc(blocks ? blocks : 1);
	return r->low ? 0 : -PLAT_ENOMEM;
}

void cowfs_refmap_reset(struct cowfs_refmap *r, uint64_t blocks)
{
	plat_memset(r->low, 0, blocks);
	if (r->over)
		plat_memset(r->over, 0, r->over_cap * sizeof(*r->over));
	r->over_n = 0;
}

void cowfs_refmap_free(struct cowfs_refmap *r)
{
	plat_free(r->low);
	plat_free(r->over);
	plat_memset(r, 0, sizeof(*r));
}

/* Slot of blk (key blk + 1; 0 = empty): its own, or the empty one it
 * would take.  The table is never full (grown at half). */
static struct cowfs_refmap_over *slot(const struct cowfs_refmap *r, uint64_t blk)
{
	uint32_t mask = r->over_cap - 1;
	uint32_t i = (uint32_t)((blk * 0x9e3779b97f4a7c15ull) >> 32) & mask;
	while (r->over[i].key && r->over[i].key != blk + 1)
		i = (i + 1) & mask;
	return &r->over[i];
}

static int grow(struct cowfs_refmap *r)
{
	uint32_t cap = r->over_cap ? 2 * r->over_cap : 64;
	struct cowfs_refmap_over *old = r->over, *nt = plat_zalloc(cap * sizeof(*nt));
	uint32_t old_cap = r->over_cap;
	if (!nt)
		return -PLAT_ENOMEM;
	r->over = nt;
	r->over_cap = cap;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i].key && old[i].n)
			*slot(r, old[i].key - 1) = old[i];
	plat_free(old);
	return 0;
}

int cowfs_refmap_add(struct cowfs_refmap *r, uint64_t blk)
{
	if (r->low[blk] < LOW_MAX) {
		r->low[blk]++;
		return 0;
	}
	if (r->over_cap) {
		struct cowfs_refmap_over *s = slot(r, blk);
		if (s->key) {
			s->n++;
			return 0;
		}
	}
	if (2 * (r->over_n + 1) > r->over_cap) {
		int err = grow(r);
		if (err)
			return err;
	}
	struct cowfs_refmap_over *s = slot(r, blk);
	s->key = blk + 1;
	s->n = 1;
	r->over_n++;
	return 0;
}

uint64_t cowfs_refmap_get(const struct cowfs_refmap *r, uint64_t blk)
{
	if (r->low[blk] < LOW_MAX || !r->over_cap)
		return r->low[blk];
	const struct cowfs_refmap_over *s = slot(r, blk);
	return LOW_MAX + (s->key ? s->n : 0);
}

void cowfs_refmap_clear(struct cowfs_refmap *r, uint64_t blk)
{
	if (r->low[blk] == LOW_MAX && r->over_cap) {
		struct cowfs_refmap_over *s = slot(r, blk);
		s->n = 0;            /* the key stays: later probes pass it */
	}
	r->low[blk] = 0;
}
