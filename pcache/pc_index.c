/*
 * Page-cache index: a 64-way radix tree keyed by page index, with tags.
 *
 * Node at height h (leaves h = 0) has slots covering 64^h pages each.  A folio
 * of order k is stored at height k / 6 in 2^(k % 6) consecutive slots, so a
 * lookup stops at the first folio entry on its path: O(height) with height
 * = ceil(bits(max index) / 6), 1 level for a 256 KiB file, 4 for 64 GiB.
 * Entries are tagged pointers: bit 0 set = struct folio, clear = child node.
 *
 * Each node keeps a "present" bitmap of non-empty slots and one bitmap per
 * tag; a tag bit in a parent is set iff some entry below carries the tag.
 * Gang lookups skip untagged subtrees with one ctz per node, so fsync of a
 * mapping with millions of clean folios costs only the dirty ones.
 *
 * Invariant (enforced here, relied on by lookup): a node never stays empty;
 * the last deletion in a node frees it and clears its parent slot, so "slot
 * holds a node" implies "something is cached below".
 *
 * All functions run under the mapping's tree lock.
 */
#include "pcache/pc_index.h"

struct pc_node {
	void *slot[64];
	uint64_t present;
	uint64_t tags[PCACHE_NTAGS];
};

#define PC_FOLIO_BIT 1ul

static inline bool pc_is_folio(void *e) { return ((uintptr_t)e & PC_FOLIO_BIT) != 0; }
static inline struct folio *pc_folio(void *e) { return (struct folio *)((uintptr_t)e & ~PC_FOLIO_BIT); }
static inline void *pc_entry(struct folio *f) { return (void *)((uintptr_t)f | PC_FOLIO_BIT); }

static struct pc_node *pc_node_new(void)
{
	return plat_zalloc(sizeof(struct pc_node));
}

/* Pages covered by one slot of a node at height h. */
static inline unsigned pc_shift(unsigned h) { return 6 * h; }

/* Grow the tree until its root (height m->height - 1) covers `max_index`
 * and is at least `min_height` high.  The old root becomes slot 0. */
static int pc_grow(struct pcache_mapping *m, uint64_t max_index, unsigned min_height)
{
	unsigned need = min_height ? min_height : 1;
	while (6 * need < 64 && (max_index >> (6 * need)) != 0)
		need++;
	if (!m->root) {
		/* Empty tree: one root of the needed height, no empty chain. */
		if (!(m->root = pc_node_new()))
			return -PLAT_ENOMEM;
		m->height = need;
		return 0;
	}
	while (m->height < need) {
		struct pc_node *n = pc_node_new(), *old = m->root;
		if (!n)
			return -PLAT_ENOMEM;
		n->slot[0] = old;
		n->present = 1;
		for (int t = 0; t < PCACHE_NTAGS; t++)
			if (old->tags[t])
				n->tags[t] = 1;
		m->root = n;
		m->height++;
	}
	return 0;
}

int pc_index_insert(struct pcache_mapping *m, struct folio *f)
{
	unsigned lvl = f->order / 6, nslots = 1u << (f->order % 6);
	uint64_t last = f->index + (1ull << f->order) - 1;
	int ret = pc_grow(m, last, lvl + 1);
	if (ret)
		return ret;
	struct pc_node *n = m->root;
	/* Check the path and the target slots before allocating anything
	 * else, so a conflict leaves the tree unchanged (modulo growth). */
	for (unsigned h = m->height - 1; h > lvl; h--) {
		unsigned i = (f->index >> pc_shift(h)) & 63;
		void *e = n->slot[i];
		if (!e) {
			struct pc_node *c = pc_node_new();
			if (!c)
				return -PLAT_ENOMEM;
			n->slot[i] = c;
			n->present |= 1ull << i;
			e = c;
		} else if (pc_is_folio(e)) {
			return -PLAT_EEXIST;
		}
		n = e;
	}
	unsigned first = (f->index >> pc_shift(lvl)) & 63;
	for (unsigned i = first; i < first + nslots; i++)
		if (n->slot[i])
			goto conflict;
	for (unsigned i = first; i < first + nslots; i++) {
		n->slot[i] = pc_entry(f);
		n->present |= 1ull << i;
	}
	m->nr_folios++;
	return 0;
conflict:
	/* Nodes created on the way down may be empty now: prune them. */
	if (n->present == 0)
		pc_index_prune(m, f->index, lvl);
	return -PLAT_EEXIST;
}

/* Walks down to the node at height lvl on index's path, recording it. */
static struct pc_node *pc_path(struct pcache_mapping *m, uint64_t index, unsigned lvl,
			       struct pc_node **path)
{
	struct pc_node *n = m->root;
	if (!n || lvl >= m->height)
		return NULL;
	for (unsigned h = m->height - 1; h > lvl; h--) {
		path[h] = n;
		void *e = n->slot[(index >> pc_shift(h)) & 63];
		if (!e || pc_is_folio(e))
			return NULL;
		n = e;
	}
	path[lvl] = n;
	return n;
}

/* Free empty nodes from height lvl upward along index's path. */
void pc_index_prune(struct pcache_mapping *m, uint64_t index, unsigned lvl)
{
	struct pc_node *path[12];
	if (!pc_path(m, index, lvl, path))
		return;
	for (unsigned h = lvl; h + 1 < m->height; h++) {
		struct pc_node *n = path[h], *p = path[h + 1];
		if (n->present)
			return;
		unsigned i = (index >> pc_shift(h + 1)) & 63;
		p->slot[i] = NULL;
		p->present &= ~(1ull << i);
		for (int t = 0; t < PCACHE_NTAGS; t++)
			p->tags[t] &= ~(1ull << i);
		plat_free(n);
	}
	if (m->root && !m->root->present) {
		plat_free(m->root);
		m->root = NULL;
		m->height = 0;
	}
}

struct folio *pc_index_lookup(struct pcache_mapping *m, uint64_t index)
{
	struct pc_node *n = m->root;
	if (!n)
		return NULL;
	if (6 * m->height < 64 && (index >> (6 * m->height)))
		return NULL;
	for (unsigned h = m->height; h-- > 0;) {
		void *e = n->slot[(index >> pc_shift(h)) & 63];
		if (!e)
			return NULL;
		if (pc_is_folio(e))
			return pc_folio(e);
		n = e;
	}
	return NULL;
}

static void pc_tag_propagate(struct pc_node **path, unsigned lvl, unsigned height,
			     uint64_t index, int tag, bool set)
{
	for (unsigned h = lvl + 1; h < height; h++) {
		struct pc_node *child = path[h - 1], *p = path[h];
		uint64_t bit = 1ull << ((index >> pc_shift(h)) & 63);
		if (set) {
			if (p->tags[tag] & bit)
				return;
			p->tags[tag] |= bit;
		} else {
			if (child->tags[tag])
				return;
			p->tags[tag] &= ~bit;
		}
	}
}

/* The node holding folio f's slots (NULL: f is not in the tree), with the
 * path above it, f's level, its first slot and the mask of its slots there. */
static struct pc_node *pc_folio_node(struct pcache_mapping *m, struct folio *f, struct pc_node **path,
				     unsigned *lvl, unsigned *first, uint64_t *mask)
{
	unsigned nslots = 1u << (f->order % 6);
	*lvl = f->order / 6;
	struct pc_node *n = pc_path(m, f->index, *lvl, path);
	if (n) {
		*first = (f->index >> pc_shift(*lvl)) & 63;
		*mask = (nslots == 64 ? ~0ull : ((1ull << nslots) - 1)) << *first;
	}
	return n;
}

void pc_index_tag(struct pcache_mapping *m, struct folio *f, int tag, bool set)
{
	struct pc_node *path[12];
	unsigned lvl, first;
	uint64_t mask;
	struct pc_node *n = pc_folio_node(m, f, path, &lvl, &first, &mask);
	if (!n)
		return;
	if (set)
		n->tags[tag] |= mask;
	else
		n->tags[tag] &= ~mask;
	pc_tag_propagate(path, lvl, m->height, f->index, tag, set);
}

void pc_index_delete(struct pcache_mapping *m, struct folio *f)
{
	struct pc_node *path[12];
	unsigned lvl, first;
	uint64_t mask;
	struct pc_node *n = pc_folio_node(m, f, path, &lvl, &first, &mask);
	if (!n)
		return;
	for (unsigned i = first; i < 64 && (mask & (1ull << i)); i++) {
		PLAT_ASSERT(n->slot[i] == pc_entry(f));
		n->slot[i] = NULL;
		n->present &= ~(1ull << i);
	}
	for (int t = 0; t < PCACHE_NTAGS; t++) {
		if (n->tags[t] & mask) {
			n->tags[t] &= ~mask;
			pc_tag_propagate(path, lvl, m->height, f->index, t, false);
		}
	}
	m->nr_folios--;
	pc_index_prune(m, f->index, lvl);
}

struct pc_gang {
	uint64_t next, end;
	int tag;
	struct folio **out;
	unsigned n, cnt;
	struct folio *last;
};

static void pc_gang_node(struct pc_node *n, unsigned h, uint64_t base, struct pc_gang *g)
{
	uint64_t bits = g->tag < 0 ? n->present : n->tags[g->tag];
	unsigned sh = pc_shift(h);
	if (g->next > base) {
		uint64_t skip = (g->next - base) >> sh;
		if (skip >= 64)
			return;
		bits &= ~0ull << skip;
	}
	while (bits && g->cnt < g->n) {
		unsigned i = (unsigned)__builtin_ctzll(bits);
		bits &= bits - 1;
		uint64_t sbase = base + ((uint64_t)i << sh);
		if (sbase > g->end)
			return;
		void *e = n->slot[i];
		if (pc_is_folio(e)) {
			struct folio *f = pc_folio(e);
			if (f != g->last) {
				g->out[g->cnt++] = f;
				g->last = f;
				g->next = f->index + (1ull << f->order);
			}
		} else if (h > 0) {
			pc_gang_node(e, h - 1, sbase, g);
		}
	}
}

unsigned pc_index_gang(struct pcache_mapping *m, uint64_t start, uint64_t end, int tag,
		       struct folio **out, unsigned n)
{
	struct pc_gang g = { start, end, tag, out, n, 0, NULL };
	if (!m->root || !n)
		return 0;
	pc_gang_node(m->root, m->height - 1, 0, &g);
	return g.cnt;
}
