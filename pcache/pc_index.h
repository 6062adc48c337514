/* Page-cache radix index (pcache/pc_index.c); internal to the page cache.
 * Every function requires the mapping's tree lock. */
#ifndef IOMAP_PC_INDEX_H
#define IOMAP_PC_INDEX_H

#include "pcache/pagecache.h"

/* 0, -EEXIST when any page of the folio is already cached, -ENOMEM. */
int pc_index_insert(struct pcache_mapping *m, struct folio *f);
struct folio *pc_index_lookup(struct pcache_mapping *m, uint64_t index);
void pc_index_delete(struct pcache_mapping *m, struct folio *f);
void pc_index_tag(struct pcache_mapping *m, struct folio *f, int tag, bool set);
/* No references taken. */
unsigned pc_index_gang(struct pcache_mapping *m, uint64_t start, uint64_t end, int tag,
		       struct folio **out, unsigned n);
void pc_index_prune(struct pcache_mapping *m, uint64_t index, unsigned lvl);

#endif
