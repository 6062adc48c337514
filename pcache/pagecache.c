/*
 * Page cache: the cache instance (memory budget, LRU reclaim, dirty
 * throttling, background writeback threads) and per-mapping operations
 * (lookup/create, invalidation, error reporting).  Folio-level state lives
 * in folio.c, the index in pc_index.c.
 */
#include "pcache/pc_internal.h"

static bool pc_wb_cond(void *arg)
{
	struct pcache *pc = arg;
	return plat_load(&pc->wb_kick) || plat_load(&pc->stop);
}

/* One pass over the mappings that were dirty when it started.  A mapping
 * is taken off the dirty list and pinned (wb_users) while it is written,
 * so pcache_mapping_destroy can wait for the pass to leave it. */
static void pcache_writeback_pass(struct pcache *pc, bool sync)
{
	unsigned budget = 0;
	plat_mutex_lock(pc->dirty_lock);
	for (struct pcache_mapping *m = pc->dirty_head; m; m = m->dirty_next)
		budget++;
	while (budget-- && pc->dirty_head) {
		struct pcache_mapping *m = pc->dirty_head;
		pc->dirty_head = m->dirty_next;
		if (pc->dirty_head)
			pc->dirty_head->dirty_prev = NULL;
		else
			pc->dirty_tail = NULL;
		m->on_dirty_list = false;
		plat_add(&m->wb_users, 1);
		plat_mutex_unlock(pc->dirty_lock);
		plat_add(&pc->st.wb_runs, 1);
		int err = m->writeback ? m->writeback(m, sync) : 0;
		if (err && err != -PLAT_EAGAIN)
			pcache_mapping_set_error(m, err);
		plat_mutex_lock(pc->dirty_lock);
		plat_sub(&m->wb_users, 1);
		plat_wake_all(pc->idle_wq);
	}
	plat_mutex_unlock(pc->dirty_lock);
}

static void pcache_wb_thread(void *arg)
{
	struct pcache *pc = arg;
	while (!plat_load(&pc->stop)) {
		plat_wait_until(pc->wb_wq, pc_wb_cond, pc, plat_time_ns() + pc->cfg.wb_interval_ns);
		if (plat_load(&pc->stop))
			break;
		plat_store(&pc->wb_kick, 0);
		pcache_writeback_pass(pc, false);
		plat_wake_all(pc->dirty_wq);
	}
}

int pcache_create(const struct pcache_config *cfg, struct pcache **out)
{
	struct pcache *pc = plat_zalloc(sizeof(*pc));
	if (!pc)
		return -PLAT_ENOMEM;
	pc->cfg = *cfg;
	/* Default half the budget; at most three quarters, so reclaim
	 * always has a quarter of clean folios to work with. */
	uint64_t max_dirty = pc->cfg.budget_bytes / 4 * 3;
	if (!pc->cfg.dirty_limit_bytes)
		pc->cfg.dirty_limit_bytes = pc->cfg.budget_bytes / 2;
	if (pc->cfg.dirty_limit_bytes > max_dirty)
		pc->cfg.dirty_limit_bytes = max_dirty;
	if (!pc->cfg.dirty_bg_bytes || pc->cfg.dirty_bg_bytes > pc->cfg.dirty_limit_bytes)
		pc->cfg.dirty_bg_bytes = pc->cfg.dirty_limit_bytes / 2;
	if (!pc->cfg.wb_interval_ns)
		pc->cfg.wb_interval_ns = 100ull * 1000000ull;
	pc->lru_lock = plat_spin_new("pcache-lru");
	pc->dirty_lock = plat_mutex_new("pcache-dirty");
	pc->wb_wq = plat_waitq_new("pcache-wb");
	pc->dirty_wq = plat_waitq_new("pcache-dirty");
	pc->idle_wq = plat_waitq_new("pcache-idle");
	bool ok = pc->lru_lock && pc->dirty_lock && pc->wb_wq && pc->dirty_wq && pc->idle_wq;
	for (int i = 0; i < PCACHE_NWAITQ; i++)
		ok = ok && (pc->fwq[i] = plat_waitq_new("folio")) != NULL;
	if (ok && cfg->wb_threads) {
		pc->wb_threads = plat_zalloc(cfg->wb_threads * sizeof(*pc->wb_threads));
		ok = pc->wb_threads != NULL;
		for (unsigned i = 0; ok && i < cfg->wb_threads; i++)
			ok = (pc->wb_threads[i] = plat_thread_create("pc-writeback", pcache_wb_thread, pc)) != NULL;
	}
	if (!ok) {
		pcache_destroy(pc);
		return -PLAT_ENOMEM;
	}
	*out = pc;
	return 0;
}

void pcache_destroy(struct pcache *pc)
{
	plat_store(&pc->stop, 1);
	if (pc->wb_threads) {
		plat_wake_all(pc->wb_wq);
		for (unsigned i = 0; i < pc->cfg.wb_threads; i++)
			if (pc->wb_threads[i] &&
			    plat_thread_join(pc->wb_threads[i], plat_time_ns() + PCACHE_WAIT_NS))
				plat_log(PLAT_LOG_ERR, "pcache: writeback thread did not stop");
		plat_free(pc->wb_threads);
	}
	PLAT_ASSERT(!pc->lru_head && !pc->dirty_head);
	for (int i = 0; i < PCACHE_NWAITQ; i++)
		plat_waitq_free(pc->fwq[i]);
	plat_waitq_free(pc->idle_wq);
	plat_waitq_free(pc->dirty_wq);
	plat_waitq_free(pc->wb_wq);
	plat_mutex_free(pc->dirty_lock);
	plat_spin_free(pc->lru_lock);
	plat_free(pc);
}

void pcache_stats(struct pcache *pc, struct pcache_stats *out)
{
	*out = pc->st;
	out->used_bytes = plat_load(&pc->used_bytes);
	out->dirty_bytes = plat_load(&pc->dirty_bytes);
}

void pcache_kick_writeback(struct pcache *pc)
{
	plat_store(&pc->wb_kick, 1);
	plat_wake_all(pc->wb_wq);
}

/* ---- LRU and reclaim ---- */
void pcache_lru_add(struct pcache *pc, struct folio *f)
{
	plat_spin_lock(pc->lru_lock);
	f->lru_prev = NULL;
	f->lru_next = pc->lru_head;
	if (pc->lru_head)
		pc->lru_head->lru_prev = f;
	else
		pc->lru_tail = f;
	pc->lru_head = f;
	plat_or(&f->flags, FOLIO_ON_LRU);
	pc->st.nr_folios++;
	plat_spin_unlock(pc->lru_lock);
}

static void pc_lru_unlink(struct pcache *pc, struct folio *f)
{
	if (f->lru_prev)
		f->lru_prev->lru_next = f->lru_next;
	else
		pc->lru_head = f->lru_next;
	if (f->lru_next)
		f->lru_next->lru_prev = f->lru_prev;
	else
		pc->lru_tail = f->lru_prev;
	f->lru_prev = f->lru_next = NULL;
	plat_and(&f->flags, ~(uint32_t)FOLIO_ON_LRU);
	pc->st.nr_folios--;
}

void pcache_lru_del(struct pcache *pc, struct folio *f)
{
	plat_spin_lock(pc->lru_lock);
	if (folio_test(f, FOLIO_ON_LRU))
		pc_lru_unlink(pc, f);
	plat_spin_unlock(pc->lru_lock);
}

/*
 * Reclaim walks the LRU from the tail with second chance (REFERENCED moves a
 * folio back to the head).  A folio is freeable only when the index holds
 * the sole reference and it is neither locked, dirty nor under writeback.
 * The LRU lock ranks below the tree lock, so reclaim may only *try* the
 * tree lock and the folio lock; on contention it moves on.  The folio's
 * mapping stays alive while the folio is on the LRU (teardown removes every
 * folio first), which makes dereferencing f->mapping here safe.
 */
uint64_t pcache_reclaim(struct pcache *pc, uint64_t bytes)
{
	uint64_t freed = 0, scanned = 0, limit;
	struct folio *victims = NULL;
	plat_spin_lock(pc->lru_lock);
	limit = 2 * pc->st.nr_folios + 1;
	struct folio *f = pc->lru_tail;
	while (f && freed < bytes && scanned++ < limit) {
		struct folio *prev = f->lru_prev;
		uint32_t fl = plat_load(&f->flags);
		if (fl & FOLIO_REFERENCED) {
			plat_and(&f->flags, ~(uint32_t)FOLIO_REFERENCED);
			if (f != pc->lru_head) {
				pc_lru_unlink(pc, f);
				f->lru_next = pc->lru_head;
				pc->lru_head->lru_prev = f;
				pc->lru_head = f;
				if (!pc->lru_tail)
					pc->lru_tail = f;
				plat_or(&f->flags, FOLIO_ON_LRU);
				pc->st.nr_folios++;
			}
		} else if (!(fl & (FOLIO_LOCKED | FOLIO_DIRTY | FOLIO_WRITEBACK)) &&
			   plat_load(&f->refcount) == 1) {
			struct pcache_mapping *m = f->mapping;
			if (plat_mutex_trylock(m->tree_lock)) {
				if (folio_trylock(f)) {
					if (plat_load(&f->refcount) == 1 &&
					    !folio_test(f, FOLIO_DIRTY | FOLIO_WRITEBACK)) {
						pc_index_delete(m, f);
						plat_and(&f->flags, ~(uint32_t)FOLIO_IN_INDEX);
						pc_lru_unlink(pc, f);
						f->lru_next = victims;
						victims = f;
						freed += folio_size(f);
					} else {
						folio_unlock(f);
					}
				}
				plat_mutex_unlock(m->tree_lock);
			}
		}
		f = prev;
	}
	plat_spin_unlock(pc->lru_lock);
	while (victims) {
		f = victims;
		victims = f->lru_next;
		f->lru_next = NULL;
		plat_and(&f->flags, ~(uint32_t)FOLIO_LOCKED);
		folio_put(f);
	}
	plat_add(&pc->st.reclaimed, freed);
	return freed;
}

/* Make room for `size` more bytes within the budget: reclaim, and when
 * only dirty memory is left, push writeback and wait (bounded). */
static int pcache_make_room(struct pcache *pc, uint64_t size, bool nowait)
{
	uint64_t deadline = 0;
	for (;;) {
		uint64_t used = plat_load(&pc->used_bytes);
		if (used + size <= pc->cfg.budget_bytes)
			return 0;
		uint64_t want = used + size - pc->cfg.budget_bytes;
		want += pc->cfg.budget_bytes / 64;
		if (pcache_reclaim(pc, want) >= want - pc->cfg.budget_bytes / 64)
			return 0;
		if (nowait)
			return -PLAT_EAGAIN;
		if (!deadline)
			deadline = plat_time_ns() + PCACHE_WAIT_NS;
		else if (plat_time_ns() > deadline)
			return -PLAT_ENOMEM;
		if (pc->cfg.wb_threads)
			pcache_kick_writeback(pc);
		else
			pcache_writeback_pass(pc, false);
		plat_sleep_ns(200000);
	}
}

static bool pc_clean_cond(void *arg)
{
	struct pcache *pc = arg;
	return !plat_load(&pc->dirty_head) && plat_load(&pc->wb_folios) == 0;
}

/* sync(): write back every dirty mapping and wait until no folio of the
 * cache is dirty or under writeback (bounded by deadline).  Returns 0,
 * -ETIMEDOUT, or the first error reported by a mapping's writeback. */
int pcache_sync(struct pcache *pc, uint64_t deadline)
{
	while (plat_load(&pc->dirty_head)) {
		pcache_writeback_pass(pc, true);
		if (plat_time_ns() > deadline)
			return -PLAT_ETIMEDOUT;
	}
	return plat_wait_until(pc->idle_wq, pc_clean_cond, pc, deadline);
}

static bool pc_dirty_ok(void *arg)
{
	struct pcache *pc = arg;
	return plat_load(&pc->dirty_bytes) <= pc->cfg.dirty_limit_bytes || plat_load(&pc->stop);
}

/* Dirty throttling: above the background threshold writeback is kicked;
 * above the limit the writer waits for writeback (or, with no writeback
 * threads, performs a pass itself).  The wait is bounded: after
 * PCACHE_WAIT_NS the writer proceeds with a warning, never deadlocks. */
void pcache_balance_dirty(struct pcache *pc)
{
	uint64_t d = plat_load(&pc->dirty_bytes);
	if (d > pc->cfg.dirty_bg_bytes && pc->cfg.wb_threads)
		pcache_kick_writeback(pc);
	if (d <= pc->cfg.dirty_limit_bytes)
		return;
	plat_add(&pc->st.throttled, 1);
	uint64_t deadline = plat_time_ns() + PCACHE_WAIT_NS;
	while (!pc_dirty_ok(pc)) {
		uint64_t now = plat_time_ns();
		if (now >= deadline) {
			plat_log(PLAT_LOG_WARN, "pcache: dirty throttle timed out");
			return;
		}
		if (!pc->cfg.wb_threads) {
			pcache_writeback_pass(pc, false);
			if (!pc_dirty_ok(pc))
				plat_sleep_ns(100000);
			continue;
		}
		pcache_kick_writeback(pc);
		plat_wait_until(pc->dirty_wq, pc_dirty_ok, pc, now + 10 * 1000000ull < deadline ? now + 10 * 1000000ull : deadline);
	}
}

/* ---- mappings ---- */
int pcache_mapping_init(struct pcache *pc, struct pcache_mapping *m, unsigned blkbits,
			unsigned max_order, void *host, int (*writeback)(struct pcache_mapping *, bool))
{
	plat_memset(m, 0, sizeof(*m));
	if (blkbits < 9 || blkbits > PLAT_PAGE_SHIFT + PCACHE_MAX_ORDER)
		return -PLAT_EINVAL;
	m->pc = pc;
	m->blkbits = blkbits;
	m->max_order = max_order > PCACHE_MAX_ORDER ? PCACHE_MAX_ORDER : max_order;
	/* A folio never holds a fraction of a block. */
	while (m->max_order < PCACHE_MAX_ORDER && (PLAT_PAGE_SIZE << m->max_order) < (1u << blkbits))
		m->max_order++;
	m->host = host;
	m->writeback = writeback;
	m->tree_lock = plat_mutex_new("pcache-tree");
	return m->tree_lock ? 0 : -PLAT_ENOMEM;
}

static bool pc_idle_cond(void *arg)
{
	return plat_load(&((struct pcache_mapping *)arg)->wb_users) == 0;
}

void pcache_mapping_destroy(struct pcache_mapping *m)
{
	struct pcache *pc = m->pc;
	plat_mutex_lock(pc->dirty_lock);
	if (m->on_dirty_list) {
		if (m->dirty_prev)
			m->dirty_prev->dirty_next = m->dirty_next;
		else
			pc->dirty_head = m->dirty_next;
		if (m->dirty_next)
			m->dirty_next->dirty_prev = m->dirty_prev;
		else
			pc->dirty_tail = m->dirty_prev;
		m->on_dirty_list = false;
	}
	plat_mutex_unlock(pc->dirty_lock);
	/* Writeback threads inside the mapping hold pointers into it: never
	 * free it under them (platform.h, buffer lifetime). */
	if (plat_wait_owned(pc->idle_wq, pc_idle_cond, m, NULL, plat_time_ns() + PCACHE_WAIT_NS,
			    "pcache: mapping teardown waiting for writeback"))
		plat_log(PLAT_LOG_ERR, "pcache: writeback left the dying mapping late");
	if (plat_load(&m->nr_dirty))
		plat_log(PLAT_LOG_WARN, "pcache: dropping %llu dirty folios",
			 (unsigned long long)m->nr_dirty);
	pcache_invalidate_range(m, 0, UINT64_MAX, false);
	PLAT_ASSERT(m->nr_folios == 0 && !m->root);
	plat_mutex_free(m->tree_lock);
	m->tree_lock = NULL;
}

struct folio *pcache_lookup(struct pcache_mapping *m, uint64_t index)
{
	plat_mutex_lock(m->tree_lock);
	struct folio *f = pc_index_lookup(m, index);
	if (f) {
		folio_get(f);
		/* Second chance for reclaim (only written when not set). */
		if (!(plat_load(&f->flags) & FOLIO_REFERENCED))
			plat_or(&f->flags, FOLIO_REFERENCED);
	}
	plat_mutex_unlock(m->tree_lock);
	return f;
}

static int pcache_create_folio(struct pcache_mapping *m, uint64_t index, unsigned order,
			       unsigned flags, struct folio **out)
{
	int ret;
	/* Under memory pressure prefer a smaller folio to waiting: only the
	 * smallest order may wait for writeback to free memory. */
	while ((ret = pcache_make_room(m->pc, PLAT_PAGE_SIZE << order,
				       order > 0 || (flags & PCACHE_NOWAIT))) && order > 0)
		order--;
	if (ret)
		return ret;
	for (;;) {
		struct folio *f = folio_alloc(m, index & ~((1ull << order) - 1), order);
		if (!f) {
			if (order == 0)
				return -PLAT_ENOMEM;
			order--;
			continue;
		}
		/* Born locked and referenced by index + caller: nobody can
		 * see its uninitialised data until it is made uptodate. */
		f->flags = FOLIO_LOCKED | FOLIO_IN_INDEX;
		f->refcount = 2;
		plat_mutex_lock(m->tree_lock);
		ret = pc_index_insert(m, f);
		if (!ret) {
			pcache_lru_add(m->pc, f);
			plat_mutex_unlock(m->tree_lock);
			plat_add(&m->pc->st.inserts, 1);
			*out = f;
			return 0;
		}
		plat_mutex_unlock(m->tree_lock);
		f->flags = 0;
		f->refcount = 0;
		folio_free(f);
		if (ret != -PLAT_EEXIST)
			return ret;
		if (order == 0)
			return -PLAT_EEXIST;  /* raced with another creator */
		order--;
	}
}

int pcache_get_folio(struct pcache_mapping *m, uint64_t index, unsigned order_hint,
		     unsigned flags, struct folio **out)
{
	uint64_t deadline = plat_time_ns() + PCACHE_WAIT_NS;
	plat_add(&m->pc->st.lookups, 1);
	for (;;) {
		struct folio *f = pcache_lookup(m, index);
		if (!f) {
			if (!(flags & PCACHE_CREAT))
				return -PLAT_ENODATA;
			unsigned order = order_hint < m->max_order ? order_hint : m->max_order;
			int ret = pcache_create_folio(m, index, order, flags, &f);
			if (ret == -PLAT_EEXIST)
				continue;
			if (ret)
				return ret;
			if (!(flags & PCACHE_LOCK))
				folio_unlock(f);
			*out = f;
			return 0;
		}
		if (flags & PCACHE_LOCK) {
			int ret = 0;
			if (flags & PCACHE_NOWAIT)
				ret = folio_trylock(f) ? 0 : -PLAT_EAGAIN;
			else
				ret = folio_lock(f, deadline);
			if (ret) {
				folio_put(f);
				return ret;
			}
			/* Truncated or reclaimed while we waited: look again. */
			if (!folio_test(f, FOLIO_IN_INDEX)) {
				folio_unlock(f);
				folio_put(f);
				continue;
			}
		}
		if ((flags & PCACHE_STABLE) && folio_test(f, FOLIO_WRITEBACK)) {
			int ret = (flags & PCACHE_NOWAIT) ? -PLAT_EAGAIN : folio_wait_writeback(f, deadline);
			if (ret) {
				if (flags & PCACHE_LOCK)
					folio_unlock(f);
				folio_put(f);
				return ret;
			}
		}
		*out = f;
		return 0;
	}
}

unsigned pcache_gang_lookup(struct pcache_mapping *m, uint64_t start, uint64_t end, int tag,
			    struct folio **out, unsigned n)
{
	plat_mutex_lock(m->tree_lock);
	unsigned cnt = pc_index_gang(m, start, end, tag, out, n);
	for (unsigned i = 0; i < cnt; i++)
		folio_get(out[i]);
	plat_mutex_unlock(m->tree_lock);
	return cnt;
}

void pcache_remove_folio(struct folio *f)
{
	struct pcache_mapping *m = f->mapping;
	PLAT_ASSERT(folio_test(f, FOLIO_LOCKED));
	plat_mutex_lock(m->tree_lock);
	if (!folio_test(f, FOLIO_IN_INDEX)) {
		plat_mutex_unlock(m->tree_lock);
		return;
	}
	pc_index_delete(m, f);
	plat_and(&f->flags, ~(uint32_t)FOLIO_IN_INDEX);
	pcache_lru_del(m->pc, f);
	plat_mutex_unlock(m->tree_lock);
	folio_put(f);   /* the index's reference */
}

int pcache_invalidate_range(struct pcache_mapping *m, uint64_t start, uint64_t end, bool partial_drop)
{
	struct folio *batch[16];
	uint64_t next = start >> PLAT_PAGE_SHIFT;
	uint64_t last = end == UINT64_MAX ? UINT64_MAX : (end - 1) >> PLAT_PAGE_SHIFT;
	uint64_t deadline = plat_time_ns() + PCACHE_WAIT_NS;
	int err = 0;
	if (end <= start)
		return 0;
	for (;;) {
		unsigned n = pcache_gang_lookup(m, next, last, -1, batch, 16);
		if (!n)
			break;
		for (unsigned i = 0; i < n; i++) {
			struct folio *f = batch[i];
			uint64_t fpos = folio_pos(f), fend = fpos + folio_size(f);
			next = f->index + (1ull << f->order);
			int ret = folio_lock(f, deadline);
			if (!ret) {
				ret = folio_wait_writeback(f, deadline);
				if (ret)
					folio_unlock(f);
			}
			if (ret) {
				if (!err)
					err = ret;
				folio_put(f);
				continue;
			}
			if (fpos >= start && fend <= end) {
				folio_clear_range_dirty(f, 0, folio_size(f));
				folio_clear_dirty(f);
				pcache_remove_folio(f);
			} else if (partial_drop) {
				/* Only whole blocks inside the range lose state. */
				uint64_t bs = 1ull << f->blkbits;
				uint64_t s = start > fpos ? start : fpos, e = end < fend ? end : fend;
				s = (s + bs - 1) & ~(bs - 1);
				e &= ~(bs - 1);
				if (e > s) {
					folio_clear_range_dirty(f, s - fpos, e - s);
					folio_clear_range_uptodate(f, s - fpos, e - s);
					if (!folio_range_dirty(f, 0, folio_size(f)))
						folio_clear_dirty(f);
				}
			}
			folio_unlock(f);
			folio_put(f);
		}
		if (next == 0 || next > last)
			break;
	}
	return err;
}

int pcache_wait_writeback_range(struct pcache_mapping *m, uint64_t start, uint64_t end, uint64_t deadline)
{
	struct folio *batch[16];
	uint64_t next = start >> PLAT_PAGE_SHIFT;
	uint64_t last = end == UINT64_MAX ? UINT64_MAX : (end - 1) >> PLAT_PAGE_SHIFT;
	int err = 0;
	if (end <= start)
		return 0;
	for (;;) {
		unsigned n = pcache_gang_lookup(m, next, last, PCACHE_TAG_WRITEBACK, batch, 16);
		if (!n)
			return err;
		for (unsigned i = 0; i < n; i++) {
			next = batch[i]->index + (1ull << batch[i]->order);
			int ret = folio_wait_writeback(batch[i], deadline);
			if (ret && !err)
				err = ret;
			folio_put(batch[i]);
		}
		if (next == 0 || next > last)
			return err;
	}
}

/* First error kept: a later error never overwrites an unreported one. */
void pcache_mapping_set_error(struct pcache_mapping *m, int err)
{
	int zero = 0;
	plat_cas(&m->err, &zero, err);
}

int pcache_mapping_take_error(struct pcache_mapping *m)
{
	return __atomic_exchange_n(&m->err, 0, __ATOMIC_ACQ_REL);
}
