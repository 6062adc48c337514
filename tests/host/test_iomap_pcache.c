/*
 * Page cache: index, folio sizes and per-block state, folio lock, LRU
 * reclaim under a budget, dirty accounting/throttling, background
 * writeback threads, invalidation.  EXT-36 (large folios with per-block
 * uptodate/dirty bitmaps) is the main requirement here.
 */
#define TEST_SUITE "iomap_pcache"
#include "tests/host/test.h"
#include "pcache/pc_internal.h"
#include <pthread.h>

static struct pcache *mkcache(uint64_t budget, unsigned wb_threads)
{
	struct pcache_config cfg = { budget, 0, 0, wb_threads, 5ull * 1000000ull };
	struct pcache *pc = NULL;
	if (pcache_create(&cfg, &pc))
		return NULL;
	return pc;
}

static int wb_calls;
/* A fake writeback: "writes" every dirty folio instantly. */
static int fake_writeback(struct pcache_mapping *m, bool sync)
{
	struct folio *b[16];
	unsigned n;
	(void)sync;
	__atomic_add_fetch(&wb_calls, 1, __ATOMIC_RELAXED);
	while ((n = pcache_gang_lookup(m, 0, UINT64_MAX, PCACHE_TAG_DIRTY, b, 16))) {
		for (unsigned i = 0; i < n; i++) {
			folio_lock(b[i], PLAT_FOREVER);
			folio_clear_range_dirty(b[i], 0, folio_size(b[i]));
			folio_clear_dirty(b[i]);
			folio_unlock(b[i]);
			folio_put(b[i]);
		}
	}
	return 0;
}

/* A new folio at index (order asked), uptodate and dirty throughout,
 * unlocked; the caller holds a reference. */
static struct folio *mkdirty(struct pcache_mapping *m, uint64_t index, unsigned order)
{
	struct folio *f = NULL;
	EXPECT_EQ_INT(pcache_get_folio(m, index, order, PCACHE_CREAT | PCACHE_LOCK, &f), 0);
	folio_set_range_uptodate(f, 0, folio_size(f));
	folio_set_range_dirty(f, 0, folio_size(f));
	folio_mark_dirty(f);
	folio_unlock(f);
	return f;
}

/* The index stays exact and fast with many folios of mixed orders, and
 * a lookup anywhere inside a large folio finds it. */
TEST(ext36_index_mixed_orders)
{
	struct pcache *pc = mkcache(1ull << 30, 0);
	struct pcache_mapping m;
	EXPECT_EQ_INT(pcache_mapping_init(pc, &m, 12, 9, NULL, NULL), 0);
	enum { N = 200000 };
	struct folio *fs = calloc(N, sizeof(*fs));
	uint64_t idx = 0;
	uint64_t t0 = plat_time_ns();
	plat_mutex_lock(m.tree_lock);
	for (unsigned i = 0; i < N; i++) {
		unsigned order = (i % 17 == 0) ? 9 : (i % 5 == 0) ? 4 : 0;
		idx = (idx + (1ull << order) - 1) & ~((1ull << order) - 1);
		fs[i].index = idx;
		fs[i].order = (uint8_t)order;
		EXPECT_EQ_INT(pc_index_insert(&m, &fs[i]), 0);
		idx += 1ull << order;
	}
	uint64_t t1 = plat_time_ns();
	unsigned bad = 0;
	for (unsigned i = 0; i < N; i++) {
		uint64_t probe = fs[i].index + (i % (1u << fs[i].order));
		if (pc_index_lookup(&m, probe) != &fs[i])
			bad++;
	}
	uint64_t t2 = plat_time_ns();
	EXPECT_EQ_INT(bad, 0);
	EXPECT(pc_index_lookup(&m, idx + 5) == NULL);
	/* A conflicting insert is refused and leaves the tree intact. */
	struct folio c = { .index = fs[17].index, .order = 0 };
	EXPECT_EQ_INT(pc_index_insert(&m, &c), -PLAT_EEXIST);
	struct folio c2 = { .index = 0, .order = 9 };
	EXPECT_EQ_INT(pc_index_insert(&m, &c2), -PLAT_EEXIST);
	EXPECT_EQ_INT(m.nr_folios, N);
	/* Tags: tag every 1000th folio dirty; a gang lookup finds exactly
	 * those in order. */
	for (unsigned i = 0; i < N; i += 1000)
		pc_index_tag(&m, &fs[i], PCACHE_TAG_DIRTY, true);
	struct folio *out[300];
	unsigned n = pc_index_gang(&m, 0, UINT64_MAX, PCACHE_TAG_DIRTY, out, 300);
	EXPECT_EQ_INT(n, N / 1000);
	for (unsigned i = 0; i < n; i++)
		EXPECT(out[i] == &fs[i * 1000]);
	for (unsigned i = 0; i < N; i += 1000)
		pc_index_tag(&m, &fs[i], PCACHE_TAG_DIRTY, false);
	EXPECT_EQ_INT(pc_index_gang(&m, 0, UINT64_MAX, PCACHE_TAG_DIRTY, out, 300), 0);
	/* Untagged gang lookup from the middle of a large folio. */
	n = pc_index_gang(&m, fs[17].index + 3, UINT64_MAX, -1, out, 3);
	EXPECT_EQ_INT(n, 3);
	EXPECT(out[0] == &fs[17] && out[1] == &fs[18] && out[2] == &fs[19]);
	for (unsigned i = 0; i < N; i++)
		pc_index_delete(&m, &fs[i]);
	EXPECT(m.root == NULL && m.nr_folios == 0);
	plat_mutex_unlock(m.tree_lock);
	printf("# index: %u inserts %.1f ns each, lookups %.1f ns each\n", N,
	       (double)(t1 - t0) / N, (double)(t2 - t1) / N);
	EXPECT((t2 - t1) / N < 5000);   /* generous even under ASan */
	free(fs);
	plat_mutex_free(m.tree_lock);
	pcache_destroy(pc);
}

/* EXT-36: folio orders 0..9, order chosen by hint and alignment, smaller
 * when the aligned range is partly cached; per-block bitmaps for 4096
 * blocks of 512 bytes in a 2 MiB folio. */
TEST(ext36_folio_orders_and_block_state)
{
	struct pcache *pc = mkcache(64ull << 20, 0);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 9, 9, NULL, NULL);
	struct folio *a, *b, *c;
	EXPECT_EQ_INT(pcache_get_folio(&m, 3, 0, PCACHE_CREAT | PCACHE_LOCK, &a), 0);
	EXPECT_EQ_INT(a->order, 0);
	EXPECT_EQ_INT(a->index, 3);
	/* Order 9 around index 700: base 512, but page 3 is not in range. */
	EXPECT_EQ_INT(pcache_get_folio(&m, 700, 9, PCACHE_CREAT | PCACHE_LOCK, &b), 0);
	EXPECT_EQ_INT(b->order, 9);
	EXPECT_EQ_INT(b->index, 512);
	EXPECT_EQ_INT(b->nblocks, 4096);
	/* Order 9 at index 5 conflicts with page 3: falls back to order 2. */
	EXPECT_EQ_INT(pcache_get_folio(&m, 5, 9, PCACHE_CREAT | PCACHE_LOCK, &c), 0);
	EXPECT(c->order <= 2 && c->index <= 5 && c->index + (1u << c->order) > 5 && c->index > 3);
	/* Per-block state: blocks 1..3 uptodate, block 2 dirty. */
	folio_set_range_uptodate(b, 512, 1536);
	EXPECT(folio_range_uptodate(b, 512, 1536));
	EXPECT(!folio_range_uptodate(b, 0, 1024));
	EXPECT(!folio_test(b, FOLIO_UPTODATE));
	folio_set_range_dirty(b, 1024, 512);
	EXPECT(folio_block_dirty(b, 2) && !folio_block_dirty(b, 1) && !folio_block_dirty(b, 3));
	EXPECT(folio_range_dirty(b, 0, 4096));
	folio_set_range_uptodate(b, 0, folio_size(b));
	EXPECT(folio_test(b, FOLIO_UPTODATE));
	folio_clear_range_dirty(b, 0, folio_size(b));
	EXPECT(!folio_range_dirty(b, 0, folio_size(b)));
	folio_unlock(a); folio_put(a);
	folio_unlock(b); folio_put(b);
	folio_unlock(c); folio_put(c);
	/* Lookups inside the 2 MiB folio find it. */
	struct folio *x = pcache_lookup(&m, 1023);
	EXPECT(x && x->index == 512);
	if (x)
		folio_put(x);
	EXPECT_EQ_INT(pcache_get_folio(&m, 99999, 0, 0, &x), -PLAT_ENODATA);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

struct lock_arg {
	struct folio *f;
	long *counter;
	int iters;
};

static void *locker(void *p)
{
	struct lock_arg *a = p;
	for (int i = 0; i < a->iters; i++) {
		if (folio_lock(a->f, plat_time_ns() + 10ull * 1000000000ull))
			return (void *)1;
		long v = *a->counter;
		if (i % 7 == 0)
			plat_yield();
		*a->counter = v + 1;
		folio_unlock(a->f);
	}
	return NULL;
}

/* The folio lock excludes (a non-atomic counter stays exact under 4
 * threads) and every wait has a deadline. */
TEST(folio_lock_exclusion_and_deadline)
{
	struct pcache *pc = mkcache(16ull << 20, 0);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 12, 0, NULL, NULL);
	struct folio *f;
	pcache_get_folio(&m, 0, 0, PCACHE_CREAT, &f);
	long counter = 0;
	struct lock_arg a = { f, &counter, 20000 };
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, locker, &a);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		EXPECT(r == NULL);
	}
	EXPECT_EQ_INT(counter, 80000);
	EXPECT(folio_trylock(f));
	EXPECT(!folio_trylock(f));
	uint64_t t0 = plat_time_ns();
	EXPECT_EQ_INT(folio_lock(f, t0 + 20 * 1000000ull), -PLAT_ETIMEDOUT);
	EXPECT(plat_time_ns() - t0 >= 20 * 1000000ull);
	folio_unlock(f);
	folio_put(f);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

/* LRU reclaim keeps the cache within its budget; referenced folios get a
 * second chance; dirty, locked and referenced-by-user folios survive. */
TEST(lru_reclaim_budget)
{
	struct pcache *pc = mkcache(1ull << 20, 0);   /* 256 pages */
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 12, 0, NULL, fake_writeback);
	struct folio *pinned, *f;
	pcache_get_folio(&m, 0, 0, PCACHE_CREAT, &pinned);        /* kept referenced */
	folio_put(mkdirty(&m, 1, 0));
	for (uint64_t i = 2; i < 2000; i++) {
		EXPECT_EQ_INT(pcache_get_folio(&m, i, 0, PCACHE_CREAT, &f), 0);
		folio_put(f);
		struct pcache_stats st;
		pcache_stats(pc, &st);
		if (st.used_bytes > (1ull << 20)) {
			EXPECT(st.used_bytes <= (1ull << 20));
			break;
		}
	}
	struct pcache_stats st;
	pcache_stats(pc, &st);
	EXPECT(st.reclaimed > 0);
	EXPECT(m.nr_folios <= 256);
	EXPECT((f = pcache_lookup(&m, 0)) != NULL);   /* pinned survives */
	if (f)
		folio_put(f);
	f = pcache_lookup(&m, 1);                      /* dirty survives */
	EXPECT(f && folio_test(f, FOLIO_DIRTY));
	if (f)
		folio_put(f);
	EXPECT(pcache_lookup(&m, 2) == NULL);         /* oldest clean went */
	folio_put(pinned);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);

	/* Second chance: fill the cache, look up one old page (REFERENCED),
	 * then add 100 pages.  Reclaim takes the oldest unreferenced pages
	 * and moves the looked-up one to the head instead of freeing it. */
	pc = mkcache(1ull << 20, 0);
	pcache_mapping_init(pc, &m, 12, 0, NULL, fake_writeback);
	for (uint64_t i = 0; i < 256; i++) {
		EXPECT_EQ_INT(pcache_get_folio(&m, i, 0, PCACHE_CREAT, &f), 0);
		folio_put(f);
	}
	struct pcache_stats st0;
	pcache_stats(pc, &st0);
	EXPECT((f = pcache_lookup(&m, 10)) != NULL);
	if (f)
		folio_put(f);
	for (uint64_t i = 256; i < 356; i++) {
		EXPECT_EQ_INT(pcache_get_folio(&m, i, 0, PCACHE_CREAT, &f), 0);
		folio_put(f);
	}
	pcache_stats(pc, &st);
	EXPECT(st.reclaimed - st0.reclaimed >= 90 * 4096);
	EXPECT(st.used_bytes <= (1ull << 20));
	EXPECT((f = pcache_lookup(&m, 10)) != NULL);  /* referenced: second chance */
	if (f)
		folio_put(f);
	EXPECT(pcache_lookup(&m, 9) == NULL);         /* its unreferenced neighbours went */
	EXPECT(pcache_lookup(&m, 11) == NULL);
	EXPECT((f = pcache_lookup(&m, 355)) != NULL); /* the newest stay */
	if (f)
		folio_put(f);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

/* Dirty accounting and throttling (COW-20): past the dirty limit a writer
 * with no writeback threads runs writeback itself; accounting returns to
 * zero. */
TEST(cow20_dirty_throttle)
{
	struct pcache_config cfg = { 4ull << 20, 256 << 10, 128 << 10, 0, 0 };
	struct pcache *pc;
	pcache_create(&cfg, &pc);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 12, 0, NULL, fake_writeback);
	wb_calls = 0;
	for (uint64_t i = 0; i < 200; i++) {
		folio_put(mkdirty(&m, i, 0));
		pcache_balance_dirty(pc);
		struct pcache_stats st;
		pcache_stats(pc, &st);
		EXPECT(st.dirty_bytes <= (256 << 10) + 4096);
	}
	struct pcache_stats st;
	pcache_stats(pc, &st);
	EXPECT(st.throttled > 0);
	EXPECT(wb_calls > 0);
	fake_writeback(&m, true);
	pcache_stats(pc, &st);
	EXPECT_EQ_INT(st.dirty_bytes, 0);
	EXPECT_EQ_INT(m.nr_dirty, 0);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

/* The dirty limit may be set up to three quarters of the budget (the
 * kernel's cache sets that: Linux's dirty ratio); 600 KiB of dirty data
 * in a 1 MiB cache with that limit is never throttled, and a limit past
 * three quarters is cut back to it (reclaim keeps a quarter of clean
 * folios to work with). */
TEST(dirty_limit_up_to_three_quarters_of_the_budget)
{
	struct pcache_config cfg = { 1 << 20, 768 << 10, 0, 0, 0 };
	struct pcache *pc;
	EXPECT_EQ_INT(pcache_create(&cfg, &pc), 0);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 12, 0, NULL, fake_writeback);
	wb_calls = 0;
	for (uint64_t i = 0; i < 150; i++) {
		folio_put(mkdirty(&m, i, 0));
		pcache_balance_dirty(pc);
	}
	struct pcache_stats st;
	pcache_stats(pc, &st);
	EXPECT_EQ_INT(st.dirty_bytes, 150 * 4096);
	EXPECT_EQ_INT(st.throttled, 0);
	EXPECT_EQ_INT(wb_calls, 0);
	EXPECT_EQ_INT(pc->cfg.dirty_bg_bytes, 384 << 10);
	fake_writeback(&m, true);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
	cfg.dirty_limit_bytes = 1 << 20;
	EXPECT_EQ_INT(pcache_create(&cfg, &pc), 0);
	EXPECT_EQ_INT(pc->cfg.dirty_limit_bytes, 768 << 10);
	pcache_destroy(pc);
}

/* Background writeback threads clean dirty mappings without anyone
 * calling fsync (periodic wake-up). */
TEST(background_writeback_threads)
{
	struct pcache *pc = mkcache(16ull << 20, 2);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 12, 0, NULL, fake_writeback);
	struct folio *f = mkdirty(&m, 7, 0);
	uint64_t deadline = plat_time_ns() + 2000000000ull;
	while (folio_test(f, FOLIO_DIRTY) && plat_time_ns() < deadline)
		plat_sleep_ns(1000000);
	EXPECT(!folio_test(f, FOLIO_DIRTY));
	folio_put(f);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

/* Invalidation drops whole folios inside the range and only the whole
 * blocks inside it for straddling folios (EXT-36 punch in a large folio). */
TEST(ext36_invalidate_middle_of_folio)
{
	struct pcache *pc = mkcache(16ull << 20, 0);
	struct pcache_mapping m;
	pcache_mapping_init(pc, &m, 10, 4, NULL, fake_writeback);
	struct folio *f = mkdirty(&m, 0, 4), *g;     /* 64 KiB, 64 blocks */
	pcache_get_folio(&m, 16, 0, PCACHE_CREAT, &g);
	EXPECT_EQ_INT(pcache_invalidate_range(&m, 1000, 70000, true), 0);
	/* Blocks 1..63 (bytes 1024..65535) lose state; block 0 keeps it. */
	EXPECT(folio_range_uptodate(f, 0, 1024));
	EXPECT(!folio_range_uptodate(f, 1024, 1024));
	EXPECT(folio_block_dirty(f, 0) && !folio_block_dirty(f, 1));
	EXPECT(folio_test(f, FOLIO_DIRTY));
	EXPECT(!folio_test(g, FOLIO_IN_INDEX));     /* page 16 fully inside */
	folio_put(g);
	folio_put(f);
	fake_writeback(&m, true);
	pcache_mapping_destroy(&m);
	pcache_destroy(pc);
}

TEST_MAIN()
