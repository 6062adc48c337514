/*
 * Byte-level access to tree nodes (docs/format.md §4.1, 4.4, 4.5) and the
 * in-node edits the B+tree is built from.  Internal to fs/.
 */
#ifndef FS_NODE_H
#define FS_NODE_H

#include "fs/cowfs_int.h"

static inline uint32_t nd_nr(const uint8_t *b) { return cfs_get16(b + CFS_NH_NRITEMS); }
static inline void nd_set_nr(uint8_t *b, uint32_t n) { cfs_put16(b + CFS_NH_NRITEMS, (uint16_t)n); }
static inline uint8_t nd_level(const uint8_t *b) { return b[CFS_NH_LEVEL]; }
static inline uint64_t nd_gen(const uint8_t *b) { return cfs_get64(b + CFS_NH_GEN); }

/* leaf items */
static inline uint8_t *lf_item(uint8_t *b, uint32_t i) { return b + CFS_NH_SIZE + i * CFS_LEAF_ITEM_SIZE; }
static inline const uint8_t *lf_citem(const uint8_t *b, uint32_t i)
{
	return b + CFS_NH_SIZE + i * CFS_LEAF_ITEM_SIZE;
}
static inline uint32_t lf_off(const uint8_t *b, uint32_t i) { return cfs_get16(lf_citem(b, i) + CFS_KEY_SIZE); }
static inline uint32_t lf_len(const uint8_t *b, uint32_t i) { return cfs_get16(lf_citem(b, i) + CFS_KEY_SIZE + 2); }

/* interior entries */
static inline uint8_t *in_entry(uint8_t *b, uint32_t i) { return b + CFS_NH_SIZE + i * CFS_PTR_ENTRY_SIZE; }
static inline const uint8_t *in_centry(const uint8_t *b, uint32_t i)
{
	return b + CFS_NH_SIZE + i * CFS_PTR_ENTRY_SIZE;
}
static inline void in_ptr(const uint8_t *b, uint32_t i, struct cowfs_bptr *p)
{
	cfs_bptr_get(in_centry(b, i) + CFS_KEY_SIZE, p);
}

/* Key of item / entry i, whichever kind the node is. */
static inline void nd_key(const uint8_t *b, uint32_t i, struct cowfs_key *k)
{
	cfs_key_get(nd_level(b) ? in_centry(b, i) : lf_citem(b, i), k);
}

uint32_t lf_used(struct cowfs *fs, const uint8_t *b);
uint32_t lf_free(struct cowfs *fs, const uint8_t *b);
void lf_insert_at(struct cowfs *fs, uint8_t *b, uint32_t p, const struct cowfs_key *k, const void *data,
		  uint32_t len);
void lf_delete_at(struct cowfs *fs, uint8_t *b, uint32_t p);
void in_insert_at(struct cowfs *fs, uint8_t *b, uint32_t p, const struct cowfs_key *k,
		  const struct cowfs_bptr *ptr);
void in_delete_at(struct cowfs *fs, uint8_t *b, uint32_t p);
/* Index of the first key >= k (leaf or interior); *exact when equal. */
uint32_t nd_lower_bound(const uint8_t *b, const struct cowfs_key *k, bool *exact);
/* Move items/entries so that left holds the first `split` of the two
 * nodes' combined contents and right the rest (same level). */
void nd_redistribute(struct cowfs *fs, uint8_t *left, uint8_t *right, uint32_t split);
/* Split index for the combined contents of left+right that balances the
 * bytes (leaves) or the entry counts (interior). */
uint32_t nd_balanced_split(struct cowfs *fs, const uint8_t *left, const uint8_t *right);
void nd_init(struct cowfs *fs, uint8_t *b, uint64_t blk, uint8_t level, uint64_t owner);

#endif
