/*
 * Folios: allocation, references, the folio lock, per-block state, dirty
 * and writeback transitions.
 */
#include "pcache/pc_internal.h"

static inline unsigned folio_words(const struct folio *f) { return (f->nblocks + 63u) / 64u; }

struct folio *folio_alloc(struct pcache_mapping *m, uint64_t index, unsigned order)
{
	struct folio *f = plat_zalloc(sizeof(*f));
	if (!f)
		return NULL;
	f->index = index;
	f->order = (uint8_t)order;
	f->blkbits = (uint8_t)m->blkbits;
	f->nblocks = (uint16_t)((PLAT_PAGE_SIZE << order) >> m->blkbits);
	f->mapping = m;
	f->refcount = 1;
	unsigned words = folio_words(f);
	f->state = words == 1 ? f->inline_state : plat_zalloc(2 * words * sizeof(uint64_t));
	f->data = plat_alloc_pages(PLAT_PAGE_SIZE << order);
	if (!f->state || !f->data) {
		folio_free(f);
		return NULL;
	}
	plat_add(&m->pc->used_bytes, folio_size(f));
	return f;
}

void folio_free(struct folio *f)
{
	if (f->data) {
		plat_free_pages(f->data, folio_size(f));
		plat_sub(&f->mapping->pc->used_bytes, folio_size(f));
	}
	if (f->state && f->state != f->inline_state)
		plat_free(f->state);
	plat_free(f);
}

void folio_get(struct folio *f)
{
	plat_add(&f->refcount, 1);
}

/* The index owns one reference, so the count can reach zero only after
 * pcache_remove_folio(): whoever drops the last reference frees. */
void folio_put(struct folio *f)
{
	int32_t r = plat_sub(&f->refcount, 1);
	PLAT_ASSERT(r >= 0);
	if (r == 0) {
		PLAT_ASSERT(!folio_test(f, FOLIO_IN_INDEX | FOLIO_ON_LRU | FOLIO_DIRTY | FOLIO_WRITEBACK));
		folio_free(f);
	}
}

/* ---- folio lock ----
 * Waiters set FOLIO_WAITERS before each attempt; the unlocker wakes the
 * hashed queue only when it was set.  Because plat_wait_until evaluates the
 * condition under the queue's internal lock and plat_wake_all takes it, a
 * wakeup between "set WAITERS" and "sleep" cannot be lost. */
bool folio_trylock(struct folio *f)
{
	return !(plat_or(&f->flags, FOLIO_LOCKED) & FOLIO_LOCKED);
}

static bool folio_lock_cond(void *arg)
{
	struct folio *f = arg;
	plat_or(&f->flags, FOLIO_WAITERS);
	return folio_trylock(f);
}

int folio_lock(struct folio *f, uint64_t deadline)
{
	if (folio_trylock(f))
		return 0;
	int ret = plat_wait_until(folio_waitq(f), folio_lock_cond, f, deadline);
	if (ret)
		plat_log(PLAT_LOG_ERR, "folio %llu: lock wait timed out", (unsigned long long)f->index);
	return ret;
}

static void folio_wake(struct folio *f)
{
	if (plat_load(&f->flags) & FOLIO_WAITERS) {
		plat_and(&f->flags, ~(uint32_t)FOLIO_WAITERS);
		plat_wake_all(folio_waitq(f));
	}
}

void folio_unlock(struct folio *f)
{
	uint32_t old = plat_and(&f->flags, ~(uint32_t)FOLIO_LOCKED);
	PLAT_ASSERT(old & FOLIO_LOCKED);
	if (old & FOLIO_WAITERS)
		folio_wake(f);
}

static bool folio_wb_done_cond(void *arg)
{
	struct folio *f = arg;
	plat_or(&f->flags, FOLIO_WAITERS);
	return !folio_test(f, FOLIO_WRITEBACK);
}

int folio_wait_writeback(struct folio *f, uint64_t deadline)
{
	if (!folio_test(f, FOLIO_WRITEBACK))
		return 0;
	return plat_wait_until(folio_waitq(f), folio_wb_done_cond, f, deadline);
}

static bool folio_unlocked_cond(void *arg)
{
	struct folio *f = arg;
	plat_or(&f->flags, FOLIO_WAITERS);
	return !folio_test(f, FOLIO_LOCKED);
}

int folio_wait_unlocked(struct folio *f, uint64_t deadline)
{
	if (!folio_test(f, FOLIO_LOCKED))
		return 0;
	return plat_wait_until(folio_waitq(f), folio_unlocked_cond, f, deadline);
}

/* ---- per-block state ----
 * Bit b of the uptodate bitmap: block b holds the file's bytes.  Bit b of the
 * dirty bitmap: block b is newer than the disk.  Dirty implies uptodate.
 * Uptodate bits are set atomically because several read bios of one folio
 * complete concurrently; dirty bits change only under the folio lock. */
static void folio_blocks(const struct folio *f, uint64_t off, uint64_t len, unsigned *b0, unsigned *b1)
{
	*b0 = (unsigned)(off >> f->blkbits);
	*b1 = (unsigned)((off + len + (1u << f->blkbits) - 1) >> f->blkbits);
	if (*b1 > f->nblocks)
		*b1 = f->nblocks;
}

static void bits_op(uint64_t *map, unsigned b0, unsigned b1, bool set)
{
	while (b0 < b1) {
		unsigned w = b0 / 64, s = b0 % 64;
		unsigned n = b1 - b0 < 64 - s ? b1 - b0 : 64 - s;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << s;
		if (set)
			plat_or(&map[w], mask);
		else
			plat_and(&map[w], ~mask);
		b0 += n;
	}
}

static bool bits_all(const uint64_t *map, unsigned b0, unsigned b1, bool any)
{
	for (unsigned b = b0; b < b1; b++) {
		bool v = (plat_load(&map[b / 64]) >> (b % 64)) & 1;
		if (any && v)
			return true;
		if (!any && !v)
			return false;
	}
	return !any;
}

bool folio_range_uptodate(const struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	if (folio_test(f, FOLIO_UPTODATE))
		return true;
	folio_blocks(f, off, len, &b0, &b1);
	return bits_all(f->state, b0, b1, false);
}

void folio_set_range_uptodate(struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	folio_blocks(f, off, len, &b0, &b1);
	bits_op(f->state, b0, b1, true);
	if (bits_all(f->state, 0, f->nblocks, false))
		plat_or(&f->flags, FOLIO_UPTODATE);
}

void folio_clear_range_uptodate(struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	folio_blocks(f, off, len, &b0, &b1);
	plat_and(&f->flags, ~(uint32_t)FOLIO_UPTODATE);
	bits_op(f->state, b0, b1, false);
}

bool folio_block_dirty(const struct folio *f, unsigned blk)
{
	return (f->state[folio_words(f) + blk / 64] >> (blk % 64)) & 1;
}

void folio_set_range_dirty(struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	folio_blocks(f, off, len, &b0, &b1);
	bits_op(f->state + folio_words(f), b0, b1, true);
}

void folio_clear_range_dirty(struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	folio_blocks(f, off, len, &b0, &b1);
	bits_op(f->state + folio_words(f), b0, b1, false);
}

bool folio_range_dirty(const struct folio *f, uint64_t off, uint64_t len)
{
	unsigned b0, b1;
	folio_blocks(f, off, len, &b0, &b1);
	return bits_all(f->state + folio_words(f), b0, b1, true);
}

/* ---- dirty and writeback transitions ----
 * FOLIO_DIRTY mirrors "some dirty bit set".  The transition is counted once
 * in the cache's dirty bytes and the mapping's nr_dirty, tags the index
 * entry (so writeback finds it) and puts the mapping on the cache's dirty
 * list (so the background threads find the mapping). */
void folio_mark_dirty(struct folio *f)
{
	struct pcache_mapping *m = f->mapping;
	struct pcache *pc = m->pc;
	if (plat_or(&f->flags, FOLIO_DIRTY) & FOLIO_DIRTY)
		return;
	plat_add(&pc->dirty_bytes, folio_size(f));
	plat_add(&m->nr_dirty, 1);
	plat_mutex_lock(m->tree_lock);
	pc_index_tag(m, f, PCACHE_TAG_DIRTY, true);
	plat_mutex_unlock(m->tree_lock);
	plat_mutex_lock(pc->dirty_lock);
	if (!m->on_dirty_list) {
		m->on_dirty_list = true;
		m->dirty_next = NULL;
		m->dirty_prev = pc->dirty_tail;
		if (pc->dirty_tail)
			pc->dirty_tail->dirty_next = m;
		else
			pc->dirty_head = m;
		pc->dirty_tail = m;
	}
	plat_mutex_unlock(pc->dirty_lock);
}

void folio_clear_dirty(struct folio *f)
{
	struct pcache_mapping *m = f->mapping;
	struct pcache *pc = m->pc;
	if (!(plat_and(&f->flags, ~(uint32_t)FOLIO_DIRTY) & FOLIO_DIRTY))
		return;
	plat_mutex_lock(m->tree_lock);
	pc_index_tag(m, f, PCACHE_TAG_DIRTY, false);
	plat_mutex_unlock(m->tree_lock);
	plat_sub(&m->nr_dirty, 1);
	uint64_t d = plat_sub(&pc->dirty_bytes, folio_size(f));
	if (d <= pc->cfg.dirty_limit_bytes)
		plat_wake_all(pc->dirty_wq);
}

void folio_start_writeback(struct folio *f)
{
	if (plat_or(&f->flags, FOLIO_WRITEBACK) & FOLIO_WRITEBACK)
		return;
	plat_add(&f->mapping->pc->wb_folios, 1);
	plat_mutex_lock(f->mapping->tree_lock);
	pc_index_tag(f->mapping, f, PCACHE_TAG_WRITEBACK, true);
	plat_mutex_unlock(f->mapping->tree_lock);
}

void folio_end_writeback(struct folio *f)
{
	plat_mutex_lock(f->mapping->tree_lock);
	pc_index_tag(f->mapping, f, PCACHE_TAG_WRITEBACK, false);
	plat_mutex_unlock(f->mapping->tree_lock);
	struct pcache *pc = f->mapping->pc;
	plat_and(&f->flags, ~(uint32_t)FOLIO_WRITEBACK);
	folio_wake(f);
	if (plat_sub(&pc->wb_folios, 1) == 0)
		plat_wake_all(pc->idle_wq);
}
