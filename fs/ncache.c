/*
 * Node cache: tree nodes by block number, under a memory budget.
 *
 * Every node a tree touches comes from here.  A node read from the device
 * is verified once, on the way in (docs/format.md §4.3): block checksum,
 * the parent's checksum and generation, magic, fsid, its own block number,
 * level, owner and the item layout.  A failure is -EIO, logged with the
 * block and the reason, and counted.
 *
 * Budget: clean nodes nobody holds are kept on an LRU list and evicted,
 * oldest first, when a read would take the cache past its budget.  Dirty
 * nodes (written in the running transaction) cannot be evicted: the
 * commit writes them and they become clean.  The cache may therefore go
 * over budget by the dirty nodes of one transaction; the filesystem
 * commits when they pass a threshold.
 */
#include "fs/cowfs_int.h"

static uint64_t nc_hash(struct cowfs *fs, uint64_t blk)
{
	return (blk * 0x9E3779B97F4A7C15ull >> 20) & fs->nc.hmask;
}

int cowfs_nc_init(struct cowfs *fs, uint64_t budget_bytes)
{
	struct cowfs_ncache *nc = &fs->nc;
	nc->budget_nodes = budget_bytes / fs->node_size;
	if (nc->budget_nodes < 64)
		nc->budget_nodes = 64;
	uint64_t hsize = 1024;
	while (hsize < nc->budget_nodes * 2 && hsize < (1u << 22))
		hsize <<= 1;
	nc->hash = plat_zalloc(hsize * sizeof(*nc->hash));
	if (!nc->hash)
		return -PLAT_ENOMEM;
	nc->hmask = hsize - 1;
	nc->lru.lnext = nc->lru.lprev = &nc->lru;
	return 0;
}

static void lru_del(struct cowfs_node *n)
{
	if (n->lnext) {
		n->lnext->lprev = n->lprev;
		n->lprev->lnext = n->lnext;
		n->lnext = n->lprev = NULL;
	}
}

static void lru_add(struct cowfs *fs, struct cowfs_node *n)
{
	struct cowfs_node *h = &fs->nc.lru;
	n->lprev = h->lprev;
	n->lnext = h;
	h->lprev->lnext = n;
	h->lprev = n;
}

static void hash_del(struct cowfs *fs, struct cowfs_node *n)
{
	struct cowfs_node **pp = &fs->nc.hash[nc_hash(fs, n->blocknr)];
	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	n->hnext = NULL;
}

static void node_free(struct cowfs *fs, struct cowfs_node *n)
{
	plat_free_pages(n->buf, fs->node_size);
	plat_free(n);
	fs->nc.nodes--;
}

void cowfs_nc_fini(struct cowfs *fs)
{
	struct cowfs_ncache *nc = &fs->nc;
	if (!nc->hash)
		return;
	for (uint64_t i = 0; i <= nc->hmask; i++) {
		struct cowfs_node *n = nc->hash[i];
		while (n) {
			struct cowfs_node *next = n->hnext;
			node_free(fs, n);
			n = next;
		}
	}
	plat_free(nc->hash);
	nc->hash = NULL;
}

static struct cowfs_node *nc_find(struct cowfs *fs, uint64_t blk)
{
	for (struct cowfs_node *n = fs->nc.hash[nc_hash(fs, blk)]; n; n = n->hnext)
		if (n->blocknr == blk)
			return n;
	return NULL;
}

static void nc_evict(struct cowfs *fs);

void cowfs_nc_trim(struct cowfs *fs)
{
	nc_evict(fs);
}

static void nc_evict(struct cowfs *fs)
{
	struct cowfs_ncache *nc = &fs->nc;
	while (nc->nodes >= nc->budget_nodes && nc->lru.lnext != &nc->lru) {
		struct cowfs_node *n = nc->lru.lnext;
		lru_del(n);
		hash_del(fs, n);
		node_free(fs, n);
		nc->evictions++;
	}
}

static struct cowfs_node *nc_alloc(struct cowfs *fs, uint64_t blk)
{
	struct cowfs_node *n = plat_zalloc(sizeof(*n));
	if (!n)
		return NULL;
	n->buf = plat_alloc_pages(fs->node_size);
	if (!n->buf) {
		plat_free(n);
		return NULL;
	}
	n->blocknr = blk;
	n->refs = 1;
	uint64_t h = nc_hash(fs, blk);
	n->hnext = fs->nc.hash[h];
	fs->nc.hash[h] = n;
	fs->nc.nodes++;
	return n;
}

/* Item layout of a leaf: headers and data inside the node, data areas
 * not overlapping the headers or each other, keys strictly increasing.
 * Interior: entries fit, keys strictly increasing, child levels right. */
static const char *node_check_layout(struct cowfs *fs, const uint8_t *buf)
{
	uint32_t n = cfs_get16(buf + CFS_NH_NRITEMS);
	uint8_t level = buf[CFS_NH_LEVEL];
	struct cowfs_key prev = { 0 }, k;
	if (level >= CFS_MAX_LEVELS)
		return "level out of range";
	if (level) {
		if (n > cfs_max_ptrs(fs->node_size) || n == 0)
			return "interior entry count out of range";
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *e = buf + CFS_NH_SIZE + i * CFS_PTR_ENTRY_SIZE;
			cfs_key_get(e, &k);
			if (i && cfs_key_cmp(&prev, &k) >= 0)
				return "interior keys out of order";
			if (e[CFS_KEY_SIZE + 20] != level - 1)
				return "child pointer level is not level - 1";
			prev = k;
		}
		return NULL;
	}
	uint32_t hdr_end = CFS_NH_SIZE + n * CFS_LEAF_ITEM_SIZE, low = fs->node_size;
	if (hdr_end > fs->node_size)
		return "leaf item count out of range";
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *it = buf + CFS_NH_SIZE + i * CFS_LEAF_ITEM_SIZE;
		uint32_t off = cfs_get16(it + CFS_KEY_SIZE), len = cfs_get16(it + CFS_KEY_SIZE + 2);
		cfs_key_get(it, &k);
		if (i && cfs_key_cmp(&prev, &k) >= 0)
			return "leaf keys out of order";
		/* Data packed from the end in item order: item i ends where
		 * item i-1 starts. */
		if (off + len != low || off < hdr_end)
			return "leaf item data outside its place";
		low = off;
		prev = k;
	}
	return NULL;
}

const char *cowfs_node_verify(struct cowfs *fs, const uint8_t *buf, uint64_t blk, const struct cowfs_bptr *p,
			      uint64_t owner, bool check_csum)
{
	if (cfs_get32(buf + CFS_NH_MAGIC) != CFS_NODE_MAGIC)
		return "bad magic (not a cowfs tree node)";
	if (check_csum && cfs_get32(buf + CFS_NH_CSUM) != cowfs_node_csum(fs, buf))
		return "checksum mismatch";
	if (plat_memcmp(buf + CFS_NH_FSID, fs->fsid, CFS_FSID_SIZE))
		return "fsid of another filesystem";
	if (cfs_get64(buf + CFS_NH_BLOCKNR) != blk)
		return "block number in header differs (misdirected write)";
	if (check_csum && cfs_get32(buf + CFS_NH_CSUM) != p->csum)
		return "checksum differs from the parent pointer (lost or stale write)";
	if (cfs_get64(buf + CFS_NH_GEN) != p->gen)
		return "generation differs from the parent pointer (lost or stale write)";
	if (buf[CFS_NH_LEVEL] != p->level)
		return "level differs from the parent pointer";
	if (!cowfs_owner_ok(cfs_get64(buf + CFS_NH_OWNER), owner))
		return "owner is another tree";
	return node_check_layout(fs, buf);
}

int cowfs_nc_read(struct cowfs *fs, const struct cowfs_bptr *p, uint64_t owner, struct cowfs_node **out)
{
	struct cowfs_node *n = nc_find(fs, p->blocknr);
	if (n) {
		/* Verified when it came in; the pointer must still agree. */
		if (cfs_get64(n->buf + CFS_NH_GEN) != p->gen || n->buf[CFS_NH_LEVEL] != p->level ||
		    !cowfs_owner_ok(cfs_get64(n->buf + CFS_NH_OWNER), owner)) {
			fs->nc.verify_errors++;
			plat_log(PLAT_LOG_ERR, "cowfs: block %llu (tree %llu): cached node does not match its pointer",
				 (unsigned long long)p->blocknr, (unsigned long long)owner);
			return -PLAT_EIO;
		}
		if (!n->refs++)
			lru_del(n);
		*out = n;
		return 0;
	}
	if (p->blocknr < CFS_RESERVED_BLOCKS || p->blocknr + fs->node_blocks > fs->total_blocks - CFS_SB_SLOTS) {
		fs->nc.verify_errors++;
		plat_log(PLAT_LOG_ERR, "cowfs: tree %llu points to block %llu outside the data area",
			 (unsigned long long)owner, (unsigned long long)p->blocknr);
		return -PLAT_EIO;
	}
	nc_evict(fs);
	n = nc_alloc(fs, p->blocknr);
	if (!n)
		return -PLAT_ENOMEM;
	int err = cowfs_read_blocks(fs, p->blocknr, n->buf, fs->node_size);
	fs->nc.reads++;
	const char *why = err ? "read error" : cowfs_node_verify(fs, n->buf, p->blocknr, p, owner, true);
	if (why) {
		fs->nc.verify_errors++;
		plat_log(PLAT_LOG_ERR, "cowfs: block %llu (tree %llu, level %u, gen %llu): %s",
			 (unsigned long long)p->blocknr, (unsigned long long)owner, p->level,
			 (unsigned long long)p->gen, why);
		hash_del(fs, n);
		node_free(fs, n);
		return -PLAT_EIO;
	}
	*out = n;
	return 0;
}

/*
 * Read-ahead of a scan: a tree walk that reads leaf after leaf waits for
 * the device once per node; mount's load of the free-space bitmap on a
 * large disk is hundreds of such waits.  The walk hands the pointers of
 * the next siblings here, and they are read as one batch.  A node that
 * fails to read or verify is dropped without a word: the walk's own
 * cowfs_nc_read reads it again and reports it as it always does, so
 * read-ahead never changes what an error looks like.  Nodes are only read
 * ahead into free room (no eviction for them): they must not push out
 * what the walk holds or is about to use.
 */
#define NC_PREFETCH_MAX 64u

unsigned cowfs_nc_prefetch(struct cowfs *fs, const struct cowfs_bptr *p, unsigned n, uint64_t owner)
{
	struct cowfs_ncache *nc = &fs->nc;
	struct cowfs_node *got[NC_PREFETCH_MAX];
	unsigned ng = 0;
	if (n > NC_PREFETCH_MAX)
		n = NC_PREFETCH_MAX;
	struct cowfs_iob *iob = NULL;
	for (unsigned i = 0; i < n && nc->nodes < nc->budget_nodes; i++) {
		if (nc_find(fs, p[i].blocknr) || p[i].blocknr < CFS_RESERVED_BLOCKS ||
		    p[i].blocknr + fs->node_blocks > fs->total_blocks - CFS_SB_SLOTS)
			continue;
		if (!iob && !(iob = cowfs_iob_new(fs)))
			return 0;
		struct cowfs_node *nd = nc_alloc(fs, p[i].blocknr);
		if (!nd)
			break;
		got[ng] = nd;
		cowfs_iob_read(iob, p[i].blocknr, nd->buf, fs->node_size);
		ng++;
	}
	if (!iob)
		return 0;
	int err = cowfs_iob_wait(iob);
	unsigned kept = 0;
	for (unsigned i = 0, j = 0; i < ng; i++, j++) {
		struct cowfs_node *nd = got[i];
		while (p[j].blocknr != nd->blocknr)
			j++;
		if (err || cowfs_node_verify(fs, nd->buf, nd->blocknr, &p[j], owner, true)) {
			hash_del(fs, nd);
			node_free(fs, nd);
			continue;
		}
		nc->reads++;
		nc->prefetched++;
		kept++;
		nd->refs = 0;
		lru_add(fs, nd);
	}
	return kept;
}

struct cowfs_node *cowfs_nc_new(struct cowfs *fs, uint64_t blk)
{
	struct cowfs_node *old = nc_find(fs, blk);
	/* A stale clean copy of a block we are reusing (freed two commits
	 * ago) must go, or a read would find it. */
	if (old) {
		PLAT_ASSERT(!old->refs && !old->dirty);
		lru_del(old);
		hash_del(fs, old);
		node_free(fs, old);
	}
	struct cowfs_node *n = nc_alloc(fs, blk);
	if (!n)
		return NULL;
	plat_memset(n->buf, 0, fs->node_size);
	n->dirty = true;
	fs->nc.dirty++;
	return n;
}

void cowfs_nc_put(struct cowfs *fs, struct cowfs_node *n)
{
	PLAT_ASSERT(n->refs > 0);
	if (--n->refs)
		return;
	if (n->forgotten)
		node_free(fs, n);
	else if (!n->dirty)
		lru_add(fs, n);
}

void cowfs_nc_forget(struct cowfs *fs, struct cowfs_node *n)
{
	hash_del(fs, n);
	lru_del(n);
	if (n->dirty) {
		n->dirty = false;
		fs->nc.dirty--;
	}
	n->forgotten = true;
	if (!n->refs)
		node_free(fs, n);
}

struct cowfs_node *cowfs_nc_lookup_dirty(struct cowfs *fs, uint64_t blk)
{
	struct cowfs_node *n = nc_find(fs, blk);
	return n && n->dirty ? n : NULL;
}

void cowfs_nc_mark_clean(struct cowfs *fs, struct cowfs_node *n)
{
	if (!n->dirty)
		return;
	n->dirty = false;
	fs->nc.dirty--;
	fs->nc.writes++;
	if (!n->refs)
		lru_add(fs, n);
}
