/* Page-cache internals shared by pagecache.c, folio.c and pc_index.c. */
#ifndef IOMAP_PC_INTERNAL_H
#define IOMAP_PC_INTERNAL_H

#include "pcache/pagecache.h"
#include "pcache/pc_index.h"

#define PCACHE_NWAITQ 64

struct pcache {
	struct pcache_config cfg;
	/* LRU of every cached folio, most recent at head; lru_lock is a
	 * leaf lock (taken under a mapping's tree lock, never the reverse
	 * except through trylock in reclaim). */
	struct plat_spin *lru_lock;
	struct folio *lru_head, *lru_tail;
	uint64_t used_bytes;          /* atomic */
	uint64_t dirty_bytes;         /* atomic */
	/* Mappings with dirty folios, served by the writeback threads. */
	struct plat_mutex *dirty_lock;
	struct pcache_mapping *dirty_head, *dirty_tail;
	struct plat_waitq *wb_wq;     /* writeback threads sleep here */
	struct plat_waitq *dirty_wq;  /* throttled writers sleep here */
	struct plat_waitq *idle_wq;   /* mapping teardown waits for wb_users */
	int wb_kick, stop;            /* atomic */
	uint64_t wb_folios;           /* folios under writeback, atomic */
	struct plat_thread **wb_threads;
	/* Hashed wait queues for folio lock / writeback waits. */
	struct plat_waitq *fwq[PCACHE_NWAITQ];
	struct pcache_stats st;       /* counters: atomic adds */
};

static inline struct plat_waitq *folio_waitq(struct folio *f)
{
	uintptr_t h = (uintptr_t)f;
	h ^= h >> 17;
	h *= 0x9E3779B97F4A7C15ull;
	return f->mapping->pc->fwq[(h >> 58) & (PCACHE_NWAITQ - 1)];
}

struct folio *folio_alloc(struct pcache_mapping *m, uint64_t index, unsigned order);
void folio_free(struct folio *f);
void pcache_lru_add(struct pcache *pc, struct folio *f);
void pcache_lru_del(struct pcache *pc, struct folio *f);

#endif
