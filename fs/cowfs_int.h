/*
 * cowfs internals shared by the files of fs/.  Not for users of the filesystem.
 */
#ifndef FS_COWFS_INT_H
#define FS_COWFS_INT_H

#include "fs/cowfs.h"
#include "fs/crc32c.h"

/* ---- node cache (ncache.c) -------------------------------------------------
 * A node is in the hash from creation (new) or read until it is forgotten
 * (freed by the tree).  refs counts users; a clean node with no users sits
 * on the LRU and may be evicted when the cache is over budget.  A dirty
 * node (gen == running transaction) is never evicted: it exists only in
 * memory until the commit writes it. */
struct cowfs_node {
	uint64_t blocknr;
	uint8_t *buf;
	uint32_t refs;
	bool dirty;
	bool forgotten;              /* freed by the tree; buffer goes at refs 0 */
	struct cowfs_node *hnext;
	struct cowfs_node *lprev, *lnext;
};

struct cowfs_ncache {
	struct cowfs_node **hash;
	uint64_t hmask;
	struct cowfs_node lru;       /* list head: lnext oldest, lprev newest */
	uint64_t nodes, dirty, budget_nodes;
	uint64_t reads, writes, evictions, verify_errors;
	uint64_t prefetched;         /* of reads: read ahead by a scan */
};

/* ---- allocator (alloc.c) ---------------------------------------------------
 * ondisk: bit set = allocated in the running transaction's state; written
 *         to the FREE_BITMAP items at commit (docs/format.md §7).
 * inuse:  ondisk plus blocks freed in the last two transactions (pinned):
 *         the allocator hands out only blocks clear here. */
struct cowfs_pins {
	uint64_t *blk;               /* pairs (start, count) */
	size_t n, cap;
};

struct cowfs_alloc {
	uint64_t *ondisk, *inuse, *group_dirty;
	uint64_t ngroups, used, cursor, pinned;
	struct cowfs_pins pin_cur, pin_prev;  /* freed in this / the last txn */
};

struct cowfs_tree {
	struct cowfs *fs;
	uint64_t id;
	struct cowfs_bptr root;
	bool root_changed;           /* ROOT_ITEM must be rewritten */
	uint64_t next_ino;           /* next free inode number; 0 = not known yet */
	bool readonly;               /* a read-only snapshot (ROOT_ITEM flag) */
	struct cowfs_keyset *watch;  /* non-NULL: every key changed is noted there (fs/file_log.c) */
	struct cowfs_tree *next;
};

/* The keys of the items a namespace operation changed, for the intent
 * log (fs/file_log.c): each key once, in the order first changed; past
 * COWFS_KEYSET_MAX keys (or without memory) only `overflow` is set. */
#define COWFS_KEYSET_MAX 1024u
struct cowfs_keyset {
	struct cowfs_key *k;
	uint32_t n, cap;
	bool overflow;
};
void cowfs_keyset_add(struct cowfs_keyset *s, const struct cowfs_key *k);
void cowfs_keyset_free(struct cowfs_keyset *s);

/* Log blocks per commit, and per fsync; past these, fsync commits. */
#define COWFS_LOG_MAX_BLOCKS 256u
#define COWFS_LOG_MAX_APPEND 16u

struct cowfs {
	struct plat_bdev *bdev;
	const struct cowfs_hooks *hooks;
	uint8_t fsid[CFS_FSID_SIZE];
	char label[CFS_LABEL_SIZE];
	uint32_t node_size, node_blocks, lba_size;
	uint64_t total_blocks;
	uint64_t gen;                /* running transaction */
	uint64_t committed_gen;
	struct cowfs_bptr backup[2]; /* root pointers of the last two commits */
	bool readonly;
	int error;
	char reason[160];
	struct cowfs_ncache nc;
	struct cowfs_alloc al;
	struct cowfs_tree root_tree, free_tree;
	struct cowfs_tree *trees;    /* opened subvolume trees */
	uint8_t *scratch[2];         /* node-size buffers for leaf rebuilds */
	uint64_t dirty_changes;      /* tree changes since the last commit */
	/* Shared blocks (docs/format.md §10): the refcount tree, opened on
	 * first use; refs_present says it may hold items, so an unshared
	 * filesystem never looks there. */
	struct cowfs_tree *ref_tree;
	bool refs_present;
	/* The data layer's part in sharing: called when a leaf of a
	 * subvolume tree gains (+1: a shared leaf was copied) or loses (-1: a
	 * leaf was dropped) a reference to the data extents its items name.
	 * NULL = leaves name no data. */
	int (*leaf_data_refs)(struct cowfs *fs, const uint8_t *leaf, int delta);
	/* Intent log (fs/log.c, docs/format.md §9).  log_start/log_id: the
	 * log the mounted (or last) commit's superblock names; log_next: the
	 * block taken for the next log block (0 = no log until the next
	 * commit); log_blk[0..log_n): blocks written (or replayed) since. */
	uint64_t log_start, log_id, log_next, log_seq;
	uint64_t log_old_next;       /* during a commit: the old log's unwritten next block */
	uint64_t log_blk[COWFS_LOG_MAX_BLOCKS];
	uint32_t log_n;
	uint64_t log_writes;         /* log blocks written since mount */
	uint32_t log_unwritten_cuts; /* replays ended before an fsync whose data was not on media */
};

/* ---- errors ---- */
void cowfs_fail(struct cowfs *fs, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int cowfs_writable(struct cowfs *fs) { return fs->readonly ? -PLAT_EROFS : 0; }

/* ---- io.c: device I/O in blocks, batched async writes ---- */
struct cowfs_iob;
struct cowfs_iob *cowfs_iob_new(struct cowfs *fs);
/* Queue a write of len bytes at block blk (buf must stay unchanged until
 * cowfs_iob_wait returns). */
void cowfs_iob_write(struct cowfs_iob *iob, uint64_t blk, const void *buf, uint32_t len, unsigned flags);
/* Queue a read (read-ahead: the caller checks what arrives). */
void cowfs_iob_read(struct cowfs_iob *iob, uint64_t blk, void *buf, uint32_t len);
/* Wait for every queued bio; frees the batch; returns the first error. */
int cowfs_iob_wait(struct cowfs_iob *iob);
int cowfs_read_blocks(struct cowfs *fs, uint64_t blk, void *buf, uint32_t len);
int cowfs_flush(struct cowfs *fs);

/* ---- ncache.c ---- */
int cowfs_nc_init(struct cowfs *fs, uint64_t budget_bytes);
void cowfs_nc_fini(struct cowfs *fs);
/* Node reached through pointer p of tree owner: from the cache or read
 * and verified (docs/format.md §4.3).  Holds a reference. */
int cowfs_nc_read(struct cowfs *fs, const struct cowfs_bptr *p, uint64_t owner, struct cowfs_node **out);
/* A fresh zeroed dirty node for block blk (header filled by the caller). */
struct cowfs_node *cowfs_nc_new(struct cowfs *fs, uint64_t blk);
void cowfs_nc_put(struct cowfs *fs, struct cowfs_node *n);
/* Read-ahead for a scan: the nodes of p[0..n) that are not cached are read
 * together and, those that verify, left in the cache unreferenced.  Only
 * while the cache has room for them; failures are left for cowfs_nc_read
 * to meet and report.  Returns how many were read. */
unsigned cowfs_nc_prefetch(struct cowfs *fs, const struct cowfs_bptr *p, unsigned n, uint64_t owner);
/* The tree freed this node's block: drop it from the cache. */
void cowfs_nc_forget(struct cowfs *fs, struct cowfs_node *n);
struct cowfs_node *cowfs_nc_lookup_dirty(struct cowfs *fs, uint64_t blk);
void cowfs_nc_mark_clean(struct cowfs *fs, struct cowfs_node *n);
/* Evict clean unused nodes down to the budget (after a commit). */
void cowfs_nc_trim(struct cowfs *fs);
/* A node's owner field names the tree that created it.  Subvolume trees
 * share nodes after a snapshot (docs/format.md §10), so a subvolume node
 * may be owned by any subvolume; the internal trees own theirs alone. */
static inline bool cowfs_owner_ok(uint64_t node_owner, uint64_t tree)
{
	return node_owner == tree || (tree >= CFS_TREE_FS && node_owner >= CFS_TREE_FS);
}
/* Header checks shared with the tree checker; NULL when fine. */
const char *cowfs_node_verify(struct cowfs *fs, const uint8_t *buf, uint64_t blk, const struct cowfs_bptr *p,
			      uint64_t owner, bool check_csum);
static inline uint32_t cowfs_node_csum(struct cowfs *fs, const uint8_t *buf)
{
	return crc32c(0, buf + 4, fs->node_size - 4);
}

/* ---- alloc.c ---- */
int cowfs_alloc_init(struct cowfs *fs, bool fresh);
void cowfs_alloc_fini(struct cowfs *fs);
int cowfs_alloc_load(struct cowfs *fs);            /* from the free-space tree */
int cowfs_alloc_blocks(struct cowfs *fs, uint32_t n, uint64_t *out);
/* born = generation that allocated the blocks: this transaction's blocks
 * are reusable at once, older ones are pinned (docs/format.md §7). */
void cowfs_free_blocks(struct cowfs *fs, uint64_t blk, uint32_t n, uint64_t born);
bool cowfs_alloc_test(struct cowfs *fs, uint64_t blk);  /* ondisk bit */
void cowfs_alloc_mark(struct cowfs *fs, uint64_t blk);  /* repair: set a referenced block's bit */
/* Data in flight (fs/file.c): blocks taken in memory only, then claimed
 * into the space map when their extent is written, or given back. */
int cowfs_alloc_reserve(struct cowfs *fs, uint32_t n, uint64_t *out);
void cowfs_alloc_unreserve(struct cowfs *fs, uint64_t blk, uint32_t n);
void cowfs_alloc_claim(struct cowfs *fs, uint64_t blk, uint32_t n);
/* Intent log (fs/log.c): take block blk in memory (-EEXIST when the space
 * map has it); pin a taken block until the next commit is durable. */
int cowfs_alloc_take(struct cowfs *fs, uint64_t blk);
void cowfs_alloc_pin(struct cowfs *fs, uint64_t blk);
int cowfs_alloc_sync(struct cowfs *fs, bool *changed);  /* dirty groups -> tree */
int cowfs_alloc_create_items(struct cowfs *fs);     /* mkfs */
void cowfs_alloc_committed(struct cowfs *fs);       /* after a durable commit */

/* ---- btree.c ---- */
int cowfs_tree_new_root(struct cowfs_tree *t);      /* an empty leaf */
int cowfs_bt_write_tree(struct cowfs_tree *t, struct cowfs_iob *iob);

/* super.c: every ROOT_ITEM with tree id >= first, in id order; cb returns
 * 0 to go on, > 0 to stop (returned), < 0 an error (returned); it must
 * not change the root tree. */
typedef int (*cowfs_root_item_fn)(void *arg, uint64_t id, const uint8_t *ri);
int cowfs_root_items(struct cowfs *fs, uint64_t first, cowfs_root_item_fn cb, void *arg);

/* ---- refcount.c: references to shared blocks (tree nodes, data extents).
 * A block without a REFCOUNT item has exactly one reference. */
int cowfs_tree_get(struct cowfs *fs, uint64_t id, bool create, struct cowfs_tree **out);
/* Mount: opens the refcount tree when the filesystem has one. */
int cowfs_refs_load(struct cowfs *fs);
int cowfs_ref_get(struct cowfs *fs, uint64_t blk, uint32_t *refs);
int cowfs_ref_inc(struct cowfs *fs, uint64_t blk, uint32_t nblocks);
/* *last = true when that was the only reference (the caller frees). */
int cowfs_ref_dec(struct cowfs *fs, uint64_t blk, bool *last);
/* btree.c: drop a whole (sub)tree reached through p: shared nodes lose a
 * reference, unshared ones are freed with everything below them. */
int cowfs_bt_drop(struct cowfs_tree *t, const struct cowfs_bptr *p);
/* Whether the leaf that holds (or would hold) key k is shared with another
 * tree: some node on its path has more than one reference (a snapshot or
 * clone took it; sharing is pushed down only along changed paths). */
int cowfs_bt_shared(struct cowfs_tree *t, const struct cowfs_key *k, bool *shared);

/* ---- csum_items.c: DATA_CSUM items of the checksum tree as runs
 * (docs/format.md §6); crc32c values in host order ---- */
/* The most blocks one item this implementation writes holds (1 MiB;
 * fewer when the node size's largest item is smaller). */
#define CFS_CSUM_RUN_MAX 256
/* Record the checksums of blocks [blk, blk+n), replacing any there:
 * one item per CFS_CSUM_RUN_MAX blocks. */
int cowfs_csum_put(struct cowfs_tree *t, uint64_t blk, const uint32_t *sums, uint64_t n);
/* Remove the checksums of blocks [blk, blk+n); items reaching outside the
 * range are trimmed or split, blocks without one are skipped. */
int cowfs_csum_del(struct cowfs_tree *t, uint64_t blk, uint64_t n);
/* The checksums of blocks [blk, blk+n) into sums; *found = how many
 * leading blocks have one (the first without stops the walk). */
int cowfs_csum_get(struct cowfs_tree *t, uint64_t blk, uint64_t n, uint32_t *sums, uint64_t *found);

/* ---- dataref.c: references to data blocks (docs/format.md §10) ---- */
/* One reference less to data blocks [blk, blk+n) (freed at the last). */
int cowfs_data_release(struct cowfs *fs, uint64_t blk, uint64_t n, uint64_t born);
/* One reference more to data blocks [blk, blk+n) (a reflink, fs/reflink.c). */
int cowfs_data_ref_inc(struct cowfs *fs, uint64_t blk, uint64_t n);
/* A data block's references (1 without a DATA_REF item). */
int cowfs_data_ref_get(struct cowfs *fs, uint64_t blk, uint32_t *refs);
/* The most references a data block can have: what a DATA_REF item holds
 * (u32).  A clone that would pass it is refused (-EMLINK); the check counts
 * any number exactly (refmap.c). */
#define CFS_DATA_REF_MAX 0xffffffffu
/* The leaf_data_refs hook for EXTENT items (set by cowfs_mount). */
int cowfs_extent_leaf_refs(struct cowfs *fs, const uint8_t *leaf, int delta);
/* EXTENT items (docs/format.md §6) of inode ino in tree t: insert one;
 * release [start, end) of the mapping (extents inside go, straddling ones
 * are trimmed, the blocks are released; *released += their number). */
#define CFS_EXTENT_MAX_SPAN 32768u       /* blocks of one EXTENT item at most (128 MiB) */
int cowfs_extent_item_put(struct cowfs_tree *t, uint64_t ino, uint64_t off, uint64_t disk_block, uint32_t nblocks,
			  uint64_t gen);
/* Where a walk of ino's EXTENT items that must see every extent reaching
 * pos starts: the key of the extent that begins at or before pos, found by
 * one descent (cowfs_bt_prev), or pos itself when none does.  Walking back
 * the largest extent span instead read, with a file fragmented by random
 * writes, thousands of items per lookup. */
struct cowfs_key cowfs_extent_scan_from(struct cowfs_tree *t, uint64_t ino, uint64_t pos);
int cowfs_extent_release(struct cowfs_tree *t, uint64_t ino, uint64_t start, uint64_t end, uint64_t *released);
/* [off, off + nblocks) of ino now at disk_block (EXTENT items of `gen`):
 * what was there released (*released += blocks).  A range inside one
 * extent costs one descent and the item edits, no walk. */
int cowfs_extent_item_replace(struct cowfs_tree *t, uint64_t ino, uint64_t off, uint64_t disk_block,
			      uint32_t nblocks, uint64_t gen, uint64_t *released);
/* Repair: set a data block's reference count (1 = no item). */
int cowfs_data_ref_fix(struct cowfs *fs, uint64_t blk, uint32_t refs);

/* ---- drop.c: background delete of a DROPPING tree ---- */
/* The progress key of a ROOT_ITEM: *started false = nothing dropped yet. */
void cowfs_drop_progress(const uint8_t *ri, struct cowfs_key *progress, bool *started);
/* Whether a subtree whose keys are all below upper is already freed. */
bool cowfs_drop_done_below(const struct cowfs_key *progress, const struct cowfs_key *upper);
/* 1 and *id when a tree is waiting to be dropped, 0 when none. */
int cowfs_drop_pending(struct cowfs *fs, uint64_t *id);

/* ---- refmap.c: references beyond the first per block, counted by a walk:
 * a byte per block up to 255, the blocks past it in a small side table, so
 * any count is exact ---- */
struct cowfs_refmap_over { uint64_t key; uint64_t n; };   /* key = block + 1, 0 = empty */
struct cowfs_refmap {
	uint8_t *low;                    /* total_blocks bytes */
	struct cowfs_refmap_over *over;  /* blocks whose count passed 255: the rest */
	uint32_t over_n, over_cap;       /* slots used, slots (a power of two or 0) */
};
int cowfs_refmap_init(struct cowfs_refmap *r, uint64_t blocks);
void cowfs_refmap_reset(struct cowfs_refmap *r, uint64_t blocks);
void cowfs_refmap_free(struct cowfs_refmap *r);
/* One reference more (-ENOMEM when the side table cannot grow). */
int cowfs_refmap_add(struct cowfs_refmap *r, uint64_t blk);
uint64_t cowfs_refmap_get(const struct cowfs_refmap *r, uint64_t blk);
/* Accounted for: back to 0. */
void cowfs_refmap_clear(struct cowfs_refmap *r, uint64_t blk);

/* ---- check.c: blocks referenced by all trees, as a bitmap ---- */
int cowfs_used_map(struct cowfs *fs, uint64_t *bitmap);
/* Every tree walked: seen = referenced blocks (total_blocks bits, zeroed),
 * extra = references beyond the first per block (cowfs_refmap_init'ed or
 * reset), nodes (optional, total_blocks bits, zeroed) = the first block of
 * every node.  Fails with msg on the first structural problem. */
int cowfs_count_refs(struct cowfs *fs, uint64_t *seen, struct cowfs_refmap *extra, uint64_t *nodes, char *msg,
		     size_t msglen);
/* check_dir.c: names agree across entry, index and back-reference items. */
int cowfs_check_dirs(struct cowfs_tree *t, char *msg, size_t msglen);

/* ---- log.c: the intent log (docs/format.md §9) ---- */
/* Records (CFS_LR_*, back to back, len bytes) as one fsync: written to
 * log blocks with FUA after the caller's FLUSH made what they name
 * durable.  -EAGAIN: no room or no log now (the caller commits). */
int cowfs_log_append(struct cowfs *fs, const uint8_t *rec, uint32_t len);
/* Commit, before the superblock: take the block the new log starts at. */
void cowfs_log_commit_start(struct cowfs *fs, uint64_t gen);
/* Commit, after the superblock: the old log's blocks are pinned. */
void cowfs_log_committed(struct cowfs *fs);
/* Mount: replay the log the superblock names (read-write mounts) and
 * commit; a read-only mount leaves it (and says so). */
int cowfs_log_mount(struct cowfs *fs);
/* Check: the pending log verifies and names only blocks the space map
 * has free.  0, or -EIO with the problem in msg. */
int cowfs_log_check(struct cowfs *fs, char *msg, size_t msglen);
/* Blocks of the pending log, in order (tests, tools): cb(arg, blk, seq). */
int cowfs_log_blocks(struct cowfs *fs, void (*cb)(void *arg, uint64_t blk, uint64_t seq), void *arg);

/* ---- super.c ---- */
void cowfs_sb_encode(struct cowfs *fs, uint8_t *sb, uint64_t gen);
int cowfs_root_item_put(struct cowfs *fs, struct cowfs_tree *t);
void cowfs_trees_free(struct cowfs *fs);

#endif
