/*
 * In-node edits: leaf items (headers from the front, data packed from the
 * end in item order, docs/format.md §4.4) and interior entries (§4.5).
 * Freed bytes are zeroed, so a node's contents depend only on its items.
 */
#include "fs/node.h"

void nd_init(struct cowfs *fs, uint8_t *b, uint64_t blk, uint8_t level, uint64_t owner)
{
	plat_memset(b, 0, fs->node_size);
	cfs_put32(b + CFS_NH_MAGIC, CFS_NODE_MAGIC);
	plat_memcpy(b + CFS_NH_FSID, fs->fsid, CFS_FSID_SIZE);
	cfs_put64(b + CFS_NH_BLOCKNR, blk);
	cfs_put64(b + CFS_NH_GEN, fs->gen);
	cfs_put64(b + CFS_NH_OWNER, owner);
	b[CFS_NH_LEVEL] = level;
}

static uint32_t lf_low(struct cowfs *fs, const uint8_t *b)
{
	uint32_t n = nd_nr(b);
	return n ? lf_off(b, n - 1) : fs->node_size;
}

uint32_t lf_used(struct cowfs *fs, const uint8_t *b)
{
	return nd_nr(b) * CFS_LEAF_ITEM_SIZE + (fs->node_size - lf_low(fs, b));
}

uint32_t lf_free(struct cowfs *fs, const uint8_t *b)
{
	return cfs_node_cap(fs->node_size) - lf_used(fs, b);
}

void lf_insert_at(struct cowfs *fs, uint8_t *b, uint32_t p, const struct cowfs_key *k, const void *data,
		  uint32_t len)
{
	uint32_t n = nd_nr(b), low = lf_low(fs, b);
	uint32_t end = p ? lf_off(b, p - 1) : fs->node_size;   /* new item's data ends here */
	PLAT_ASSERT(p <= n && lf_free(fs, b) >= CFS_LEAF_ITEM_SIZE + len);
	plat_memmove(b + low - len, b + low, end - low);
	for (uint32_t i = p; i < n; i++)
		cfs_put16(lf_item(b, i) + CFS_KEY_SIZE, (uint16_t)(lf_off(b, i) - len));
	plat_memmove(lf_item(b, p + 1), lf_item(b, p), (n - p) * CFS_LEAF_ITEM_SIZE);
	uint8_t *it = lf_item(b, p);
	cfs_key_put(it, k);
	cfs_put16(it + CFS_KEY_SIZE, (uint16_t)(end - len));
	cfs_put16(it + CFS_KEY_SIZE + 2, (uint16_t)len);
	if (len)
		plat_memcpy(b + end - len, data, len);
	nd_set_nr(b, n + 1);
}

void lf_delete_at(struct cowfs *fs, uint8_t *b, uint32_t p)
{
	uint32_t n = nd_nr(b), low = lf_low(fs, b), off = lf_off(b, p), len = lf_len(b, p);
	PLAT_ASSERT(p < n);
	plat_memmove(b + low + len, b + low, off - low);
	plat_memset(b + low, 0, len);
	for (uint32_t i = p + 1; i < n; i++)
		cfs_put16(lf_item(b, i) + CFS_KEY_SIZE, (uint16_t)(lf_off(b, i) + len));
	plat_memmove(lf_item(b, p), lf_item(b, p + 1), (n - p - 1) * CFS_LEAF_ITEM_SIZE);
	plat_memset(lf_item(b, n - 1), 0, CFS_LEAF_ITEM_SIZE);
	nd_set_nr(b, n - 1);
}

void in_insert_at(struct cowfs *fs, uint8_t *b, uint32_t p, const struct cowfs_key *k,
		  const struct cowfs_bptr *ptr)
{
	uint32_t n = nd_nr(b);
	PLAT_ASSERT(p <= n && n < cfs_max_ptrs(fs->node_size));
	plat_memmove(in_entry(b, p + 1), in_entry(b, p), (n - p) * CFS_PTR_ENTRY_SIZE);
	cfs_key_put(in_entry(b, p), k);
	cfs_bptr_put(in_entry(b, p) + CFS_KEY_SIZE, ptr);
	nd_set_nr(b, n + 1);
}

void in_delete_at(struct cowfs *fs, uint8_t *b, uint32_t p)
{
	uint32_t n = nd_nr(b);
	(void)fs;
	PLAT_ASSERT(p < n);
	plat_memmove(in_entry(b, p), in_entry(b, p + 1), (n - p - 1) * CFS_PTR_ENTRY_SIZE);
	plat_memset(in_entry(b, n - 1), 0, CFS_PTR_ENTRY_SIZE);
	nd_set_nr(b, n - 1);
}

uint32_t nd_lower_bound(const uint8_t *b, const struct cowfs_key *k, bool *exact)
{
	uint32_t lo = 0, hi = nd_nr(b);
	struct cowfs_key m;
	*exact = false;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		nd_key(b, mid, &m);
		int c = cfs_key_cmp(&m, k);
		if (c == 0) {
			*exact = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Item i of the concatenation left ++ right. */
static const uint8_t *cat_node(const uint8_t *l, const uint8_t *r, uint32_t *i)
{
	if (*i < nd_nr(l))
		return l;
	*i -= nd_nr(l);
	return r;
}

uint32_t nd_balanced_split(struct cowfs *fs, const uint8_t *left, const uint8_t *right)
{
	uint32_t total = nd_nr(left) + nd_nr(right);
	if (nd_level(left))
		return total / 2;
	uint32_t bytes = lf_used(fs, left) + lf_used(fs, right), acc = 0, best = 1;
	uint64_t best_diff = UINT64_MAX;
	for (uint32_t s = 1; s < total; s++) {
		uint32_t i = s - 1;
		const uint8_t *b = cat_node(left, right, &i);
		acc += CFS_LEAF_ITEM_SIZE + lf_len(b, i);
		uint64_t diff = 2ull * acc > bytes ? 2ull * acc - bytes : bytes - 2ull * acc;
		if (diff < best_diff) {
			best_diff = diff;
			best = s;
		}
	}
	return best;
}

void nd_redistribute(struct cowfs *fs, uint8_t *left, uint8_t *right, uint32_t split)
{
	uint8_t *l = fs->scratch[0], *r = fs->scratch[1];
	uint32_t total = nd_nr(left) + nd_nr(right);
	bool leaf = nd_level(left) == 0;
	plat_memcpy(l, left, fs->node_size);
	plat_memcpy(r, right, fs->node_size);
	plat_memset(left + CFS_NH_SIZE, 0, fs->node_size - CFS_NH_SIZE);
	plat_memset(right + CFS_NH_SIZE, 0, fs->node_size - CFS_NH_SIZE);
	nd_set_nr(left, 0);
	nd_set_nr(right, 0);
	for (uint32_t s = 0; s < total; s++) {
		uint32_t i = s;
		const uint8_t *src = cat_node(l, r, &i);
		uint8_t *dst = s < split ? left : right;
		struct cowfs_key k;
		nd_key(src, i, &k);
		if (leaf) {
			lf_insert_at(fs, dst, nd_nr(dst), &k, src + lf_off(src, i), lf_len(src, i));
		} else {
			struct cowfs_bptr p;
			in_ptr(src, i, &p);
			in_insert_at(fs, dst, nd_nr(dst), &k, &p);
		}
	}
}
