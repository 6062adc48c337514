/*
 * Page cache: per-inode caches of folios (pcache/pagecache.c, pc_index.c).
 *
 * A folio is 2^order pages (order 0..PCACHE_MAX_ORDER, 4 KiB .. 2 MiB) of
 * file data starting at a page index that is a multiple of 2^order.  Each
 * folio tracks, per filesystem block, whether the block is uptodate (holds
 * the file's current bytes) and whether it is dirty (newer than disk).
 *
 * Folio flags (atomic):
 *   LOCKED     exclusive access for I/O set-up, write_begin..write_end,
 *              writeback submission, invalidation;
 *   UPTODATE   every block uptodate (fast path for reads);
 *   DIRTY      at least one dirty block; counted in the cache's dirty bytes;
 *   WRITEBACK  write I/O in flight; cleared after the filesystem's
 *              completion hook ran;
 *   ERROR      the last read or write of the folio failed.
 * A folio is "stable" when WRITEBACK is clear: writers wait for it
 * (PCACHE_STABLE) so a block never changes while it is being written.
 *
 * References: the cache index holds one reference; every lookup returns one
 * more, dropped with folio_put().  A folio is freed when it is removed from
 * the index and the last reference is dropped.
 *
 * Per mapping there is one index (a 64-way radix tree with DIRTY and
 * WRITEBACK tags, so fsync/writeback visit only tagged folios even with
 * millions cached) protected by the mapping's tree lock.  All mappings of a
 * cache share an LRU list and a memory budget; clean unreferenced folios
 * are reclaimed from the LRU tail when the budget is exceeded.
 *
 * Lock order (see iomap/README.md): inode I/O lock -> invalidate lock ->
 * extent range -> folio lock -> mapping tree lock -> cache LRU lock.
 */
#ifndef IOMAP_PAGECACHE_H
#define IOMAP_PAGECACHE_H

#include "platform/platform.h"

#define PCACHE_MAX_ORDER 9            /* 2 MiB folios */

enum {
	FOLIO_LOCKED = 1u << 0,
	FOLIO_UPTODATE = 1u << 1,
	FOLIO_DIRTY = 1u << 2,
	FOLIO_WRITEBACK = 1u << 3,
	FOLIO_ERROR = 1u << 4,
	FOLIO_REFERENCED = 1u << 5,
	FOLIO_WAITERS = 1u << 6,
	FOLIO_ON_LRU = 1u << 7,
	FOLIO_IN_INDEX = 1u << 8,
};

struct pcache;
struct pcache_mapping;

struct folio {
	uint64_t index;              /* first page index (file offset >> 12) */
	uint32_t flags;              /* FOLIO_*, atomic */
	int32_t refcount;            /* atomic */
	uint8_t order;
	uint8_t blkbits;
	uint16_t nblocks;            /* folio size >> blkbits, <= 4096 */
	uint32_t io_pending;         /* atomic: read bios in flight + 1 bias */
	uint32_t wb_pending;         /* atomic: write ioends covering the folio */
	struct pcache_mapping *mapping;
	uint8_t *data;
	struct folio *lru_prev, *lru_next;
	uint64_t *state;             /* uptodate bitmap, then dirty bitmap */
	uint64_t inline_state[2];
};

static inline uint64_t folio_size(const struct folio *f) { return PLAT_PAGE_SIZE << f->order; }
static inline uint64_t folio_pos(const struct folio *f) { return f->index << PLAT_PAGE_SHIFT; }
static inline bool folio_test(const struct folio *f, uint32_t flag)
{
	return (plat_load(&f->flags) & flag) != 0;
}

/* Index tags. */
enum { PCACHE_TAG_DIRTY, PCACHE_TAG_WRITEBACK, PCACHE_NTAGS };

struct pc_node;

struct pcache_mapping {
	struct pcache *pc;
	struct plat_mutex *tree_lock;
	struct pc_node *root;
	unsigned height;              /* 0 = empty tree */
	uint64_t nr_folios;
	uint64_t nr_dirty;            /* folios with FOLIO_DIRTY, atomic */
	unsigned blkbits;             /* filesystem block size */
	unsigned max_order;           /* largest folio order used */
	void *host;                   /* owner (struct iomap_inode) */
	/* Background writeback entry; sync = false: skip busy folios. */
	int (*writeback)(struct pcache_mapping *m, bool sync);
	struct pcache_mapping *dirty_next, *dirty_prev;
	bool on_dirty_list;
	int wb_users;                 /* writeback threads inside, atomic */
	int err;                      /* first writeback error, for fsync */
};

struct pcache_config {
	uint64_t budget_bytes;        /* memory for folio data */
	uint64_t dirty_limit_bytes;   /* writers block above this */
	uint64_t dirty_bg_bytes;      /* background writeback starts above */
	unsigned wb_threads;          /* background writeback threads (>= 0) */
	uint64_t wb_interval_ns;      /* periodic writeback */
};

struct pcache_stats {
	uint64_t used_bytes, dirty_bytes, nr_folios;
	uint64_t reclaimed, throttled, wb_runs, lookups, inserts;
};

int pcache_create(const struct pcache_config *cfg, struct pcache **out);
/* Stops the writeback threads.  All mappings must be destroyed first. */
void pcache_destroy(struct pcache *pc);
void pcache_stats(struct pcache *pc, struct pcache_stats *out);
/* Reclaim clean unreferenced folios until `bytes` are freed or the LRU is
 * exhausted; returns bytes freed. */
uint64_t pcache_reclaim(struct pcache *pc, uint64_t bytes);
/* Called after dirtying: kicks background writeback above the background
 * threshold and blocks (bounded) above the dirty limit. */
void pcache_balance_dirty(struct pcache *pc);
void pcache_kick_writeback(struct pcache *pc);
/* sync(): write back every mapping and wait for all writeback (errors stay
 * recorded in each mapping for its fsync).  0 or -ETIMEDOUT. */
int pcache_sync(struct pcache *pc, uint64_t deadline);

int pcache_mapping_init(struct pcache *pc, struct pcache_mapping *m, unsigned blkbits,
			unsigned max_order, void *host,
			int (*writeback)(struct pcache_mapping *, bool));
/* Removes every folio; they must be clean and idle (fsync first). */
void pcache_mapping_destroy(struct pcache_mapping *m);

/* Lookup / create flags. */
enum {
	PCACHE_CREAT = 1u << 0,    /* create when missing (not uptodate) */
	PCACHE_LOCK = 1u << 1,     /* return the folio locked */
	PCACHE_NOWAIT = 1u << 2,   /* never sleep: -EAGAIN instead */
	PCACHE_STABLE = 1u << 3,   /* wait for writeback to finish */
};

/*
 * Find (or with PCACHE_CREAT create) the folio holding page `index`.  A new
 * folio has the largest order <= order_hint (and <= the mapping's
 * max_order) whose naturally aligned range around `index` is free.
 * Returns 0 with a referenced folio, -ENODATA (miss without CREAT),
 * -EAGAIN (NOWAIT would block), -ENOMEM or -ETIMEDOUT.
 */
int pcache_get_folio(struct pcache_mapping *m, uint64_t index, unsigned order_hint,
		     unsigned flags, struct folio **out);
/* Referenced folio holding page index (marks it recently used); NULL on miss. */
struct folio *pcache_lookup(struct pcache_mapping *m, uint64_t index);
/* Up to n referenced folios intersecting pages [start, end] in index order:
 * all (tag < 0) or only those carrying the tag. */
unsigned pcache_gang_lookup(struct pcache_mapping *m, uint64_t start, uint64_t end, int tag,
			    struct folio **out, unsigned n);

void folio_get(struct folio *f);
void folio_put(struct folio *f);

/* Folio lock: 0, or -ETIMEDOUT at the deadline (a diagnosed deadlock). */
int folio_lock(struct folio *f, uint64_t deadline_ns);
bool folio_trylock(struct folio *f);
void folio_unlock(struct folio *f);
int folio_wait_writeback(struct folio *f, uint64_t deadline_ns);
/* Waits until the folio is unlocked (e.g. read I/O done) without taking it. */
int folio_wait_unlocked(struct folio *f, uint64_t deadline_ns);

/* Per-block state (folio locked, or read completion for uptodate). */
bool folio_range_uptodate(const struct folio *f, uint64_t off, uint64_t len);
void folio_set_range_uptodate(struct folio *f, uint64_t off, uint64_t len);
void folio_clear_range_uptodate(struct folio *f, uint64_t off, uint64_t len);
bool folio_block_dirty(const struct folio *f, unsigned blk);
void folio_set_range_dirty(struct folio *f, uint64_t off, uint64_t len);
void folio_clear_range_dirty(struct folio *f, uint64_t off, uint64_t len);
bool folio_range_dirty(const struct folio *f, uint64_t off, uint64_t len);
/* Folio-level dirty flag, dirty accounting and the mapping's dirty list.
 * folio_mark_dirty is called after setting dirty blocks; folio_clear_dirty
 * when writeback takes them all (or invalidation drops them). */
void folio_mark_dirty(struct folio *f);
void folio_clear_dirty(struct folio *f);
void folio_start_writeback(struct folio *f);
void folio_end_writeback(struct folio *f);

/* Remove the folio from its mapping (locked, clean, not under writeback). */
void pcache_remove_folio(struct folio *f);
/* Drop every folio entirely inside bytes [start, end) (waiting for
 * writeback, discarding dirty state); folios straddling the edges are kept
 * and their blocks in the range marked not uptodate/not dirty when
 * `partial_drop`.  Returns 0 or -ETIMEDOUT. */
int pcache_invalidate_range(struct pcache_mapping *m, uint64_t start, uint64_t end, bool partial_drop);
/* Wait for every folio under writeback in [start, end). */
int pcache_wait_writeback_range(struct pcache_mapping *m, uint64_t start, uint64_t end, uint64_t deadline);
/* Record a writeback error (first one kept); fsync reads and clears it. */
void pcache_mapping_set_error(struct pcache_mapping *m, int err);
int pcache_mapping_take_error(struct pcache_mapping *m);

/* Default bound for waits on folios (a diagnosed deadlock after that). */
#define PCACHE_WAIT_NS (30ull * 1000000000ull)

#endif
