/*
 * Block allocator over the free-space tree (docs/format.md §7).
 *
 * In memory: two bitmaps over the whole device.  `ondisk` is the state of
 * the running transaction (what its commit writes into the FREE_BITMAP
 * items); `inuse` is ondisk plus the pinned blocks.  Allocation takes
 * blocks clear in inuse, next-fit from a cursor.
 *
 * Invariant (deferred reuse): a block freed by transaction N that an
 * earlier commit referenced stays set in inuse -- pinned -- until commit
 * N+1 is durable (cowfs_alloc_committed releases pin_prev after each
 * commit, then pin_prev = pin_cur).  So while any commit is written, the
 * blocks of the two commits before it are untouched and a power cut
 * falls back to an intact tree.  Blocks allocated and freed within one
 * transaction were never durable and go back at once.
 */
#include "fs/cowfs_int.h"

#define BIT_WORD(b) ((b) >> 6)
#define BIT_MASK(b) (1ull << ((b) & 63))

static bool bit_test(const uint64_t *m, uint64_t b) { return m[BIT_WORD(b)] & BIT_MASK(b); }
static void bit_set(uint64_t *m, uint64_t b) { m[BIT_WORD(b)] |= BIT_MASK(b); }
static void bit_clear(uint64_t *m, uint64_t b) { m[BIT_WORD(b)] &= ~BIT_MASK(b); }

/* No __builtin_popcountll: without -mpopcnt it calls libgcc, which the
 * kernel does not link. */
static unsigned popcount64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

static uint64_t alloc_words(struct cowfs *fs)
{
	return fs->al.ngroups * CFS_GROUP_BLOCKS / 64;
}

static void group_dirty(struct cowfs *fs, uint64_t blk)
{
	bit_set(fs->al.group_dirty, blk / CFS_GROUP_BLOCKS);
}

/* Reserved: blocks 0..23, superblock area 1 and the tail of the last
 * group past total_blocks (always "allocated"). */
static void alloc_reserve(struct cowfs *fs)
{
	uint64_t end = fs->al.ngroups * CFS_GROUP_BLOCKS;
	for (uint64_t b = 0; b < end; b++) {
		if (b < CFS_RESERVED_BLOCKS || b >= fs->total_blocks - CFS_SB_SLOTS) {
			bit_set(fs->al.ondisk, b);
			bit_set(fs->al.inuse, b);
		}
		if (b == CFS_RESERVED_BLOCKS)
			b = fs->total_blocks - CFS_SB_SLOTS - 1;
	}
	fs->al.used = CFS_RESERVED_BLOCKS + CFS_SB_SLOTS;
}

int cowfs_alloc_init(struct cowfs *fs, bool fresh)
{
	struct cowfs_alloc *al = &fs->al;
	al->ngroups = (fs->total_blocks + CFS_GROUP_BLOCKS - 1) / CFS_GROUP_BLOCKS;
	uint64_t words = alloc_words(fs);
	al->ondisk = plat_zalloc(words * 8);
	al->inuse = plat_zalloc(words * 8);
	al->group_dirty = plat_zalloc((al->ngroups + 63) / 64 * 8);
	if (!al->ondisk || !al->inuse || !al->group_dirty)
		return -PLAT_ENOMEM;
	al->cursor = CFS_RESERVED_BLOCKS;
	if (fresh) {
		alloc_reserve(fs);
		for (uint64_t g = 0; g < al->ngroups; g++)
			bit_set(al->group_dirty, g);
	}
	return 0;
}

void cowfs_alloc_fini(struct cowfs *fs)
{
	struct cowfs_alloc *al = &fs->al;
	plat_free(al->ondisk);
	plat_free(al->inuse);
	plat_free(al->group_dirty);
	plat_free(al->pin_cur.blk);
	plat_free(al->pin_prev.blk);
	plat_memset(al, 0, sizeof(*al));
}

bool cowfs_alloc_test(struct cowfs *fs, uint64_t blk)
{
	return blk < fs->total_blocks && bit_test(fs->al.ondisk, blk);
}

static int alloc_find(struct cowfs *fs, uint32_t n, uint64_t *out);

/* n consecutive blocks clear in inuse, next-fit from the cursor; whole
 * free words are skipped 64 blocks at a time. */
int cowfs_alloc_blocks(struct cowfs *fs, uint32_t n, uint64_t *out)
{
	int err = alloc_find(fs, n, out);
	if (err)
		return err;
	for (uint64_t i = *out; i < *out + n; i++)
		bit_set(fs->al.ondisk, i);
	group_dirty(fs, *out);
	group_dirty(fs, *out + n - 1);
	fs->al.used += n;
	return 0;
}

/* Data blocks for a write in flight: taken in memory (inuse) only, so a
 * commit during the I/O does not record them; claimed when the write
 * completes and its extent points at them, or given back. */
int cowfs_alloc_reserve(struct cowfs *fs, uint32_t n, uint64_t *out)
{
	return alloc_find(fs, n, out);
}

void cowfs_alloc_unreserve(struct cowfs *fs, uint64_t blk, uint32_t n)
{
	for (uint64_t i = blk; i < blk + n; i++) {
		PLAT_ASSERT(!bit_test(fs->al.ondisk, i));
		bit_clear(fs->al.inuse, i);
	}
}

void cowfs_alloc_claim(struct cowfs *fs, uint64_t blk, uint32_t n)
{
	for (uint64_t i = blk; i < blk + n; i++) {
		PLAT_ASSERT(bit_test(fs->al.inuse, i) && !bit_test(fs->al.ondisk, i));
		bit_set(fs->al.ondisk, i);
	}
	group_dirty(fs, blk);
	group_dirty(fs, blk + n - 1);
	fs->al.used += n;
	fs->dirty_changes++;
}

static int alloc_find(struct cowfs *fs, uint32_t n, uint64_t *out)
{
	struct cowfs_alloc *al = &fs->al;
	uint64_t lo = CFS_RESERVED_BLOCKS, hi = fs->total_blocks - CFS_SB_SLOTS;
	uint64_t b = al->cursor < lo || al->cursor >= hi ? lo : al->cursor;
	uint64_t scanned = 0, span = hi - lo, run = 0;
	while (scanned < span + n) {
		if (b >= hi) {
			b = lo;
			run = 0;
		}
		if (!(b & 63) && al->inuse[BIT_WORD(b)] == ~0ull) {
			b += 64;
			scanned += 64;
			run = 0;
			continue;
		}
		if (bit_test(al->inuse, b)) {
			run = 0;
		} else if (++run == n) {
			uint64_t start = b + 1 - n;
			for (uint64_t i = start; i <= b; i++)
				bit_set(al->inuse, i);
			al->cursor = b + 1;
			*out = start;
			return 0;
		}
		b++;
		scanned++;
	}
	return -PLAT_ENOSPC;
}

/* Repair: a block the trees reference but the space map calls free. */
void cowfs_alloc_mark(struct cowfs *fs, uint64_t blk)
{
	struct cowfs_alloc *al = &fs->al;
	if (bit_test(al->ondisk, blk))
		return;
	bit_set(al->ondisk, blk);
	bit_set(al->inuse, blk);
	group_dirty(fs, blk);
	al->used++;
}

static int pins_add(struct cowfs_pins *p, uint64_t blk, uint64_t n)
{
	if (p->n + 2 > p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		uint64_t *nb = plat_alloc(cap * sizeof(*nb));
		if (!nb)
			return -PLAT_ENOMEM;
		if (p->n)
			plat_memcpy(nb, p->blk, p->n * sizeof(*nb));
		plat_free(p->blk);
		p->blk = nb;
		p->cap = cap;
	}
	p->blk[p->n++] = blk;
	p->blk[p->n++] = n;
	return 0;
}

void cowfs_free_blocks(struct cowfs *fs, uint64_t blk, uint32_t n, uint64_t born)
{
	struct cowfs_alloc *al = &fs->al;
	for (uint64_t i = blk; i < blk + n; i++) {
		PLAT_ASSERT(bit_test(al->ondisk, i));
		bit_clear(al->ondisk, i);
	}
	group_dirty(fs, blk);
	group_dirty(fs, blk + n - 1);
	al->used -= n;
	/* Once this transaction wrote intent log blocks, a block it
	 * allocated may be named by a record the next mount replays: it
	 * stays until the next commit like any other (fs/log.c). */
	bool at_once = born == fs->gen && !fs->log_n;
	if (at_once || pins_add(&al->pin_cur, blk, n)) {
		/* Never durable (or no memory to remember the pin: then the
		 * block is leaked until the next mount rather than reused
		 * too early -- it stays set in inuse). */
		if (at_once)
			for (uint64_t i = blk; i < blk + n; i++)
				bit_clear(al->inuse, i);
		return;
	}
	al->pinned += n;
}

/* The intent log (fs/log.c): a block taken in memory by number (a log
 * block or a block a log record names); -EEXIST when the space map has it. */
int cowfs_alloc_take(struct cowfs *fs, uint64_t blk)
{
	if (blk < CFS_RESERVED_BLOCKS || blk >= fs->total_blocks - CFS_SB_SLOTS || bit_test(fs->al.ondisk, blk))
		return -PLAT_EEXIST;
	bit_set(fs->al.inuse, blk);
	return 0;
}

/* A block taken in memory only (a written log block) is released like a
 * block freed by this transaction: after the next commit is durable. */
void cowfs_alloc_pin(struct cowfs *fs, uint64_t blk)
{
	PLAT_ASSERT(bit_test(fs->al.inuse, blk) && !bit_test(fs->al.ondisk, blk));
	if (!pins_add(&fs->al.pin_cur, blk, 1))
		fs->al.pinned++;       /* else leaked until the next mount, never reused early */
}

void cowfs_alloc_committed(struct cowfs *fs)
{
	struct cowfs_alloc *al = &fs->al;
	for (size_t i = 0; i < al->pin_prev.n; i += 2) {
		for (uint64_t b = al->pin_prev.blk[i]; b < al->pin_prev.blk[i] + al->pin_prev.blk[i + 1]; b++)
			if (!bit_test(al->ondisk, b))
				bit_clear(al->inuse, b);
		al->pinned -= al->pin_prev.blk[i + 1];
	}
	struct cowfs_pins t = al->pin_prev;
	al->pin_prev = al->pin_cur;
	al->pin_cur = t;
	al->pin_cur.n = 0;
}

static void group_key(uint64_t g, struct cowfs_key *k)
{
	k->objectid = g * CFS_GROUP_BLOCKS;
	k->type = CFS_ITEM_FREE_BITMAP;
	k->offset = 0;
}

/* mkfs: one FREE_BITMAP item per group (contents written by the commit's
 * sync, since every group starts dirty). */
int cowfs_alloc_create_items(struct cowfs *fs)
{
	for (uint64_t g = 0; g < fs->al.ngroups; g++) {
		struct cowfs_key k;
		group_key(g, &k);
		int err = cowfs_bt_insert(&fs->free_tree, &k, (uint8_t *)fs->al.ondisk + g * CFS_GROUP_BYTES,
					  CFS_GROUP_BYTES);
		if (err)
			return err;
	}
	return 0;
}

/* Commit step 1: copy each dirty group's bits into its item.  Updating
 * the free-space tree shadows nodes, which allocates and frees blocks
 * and dirties groups again: the caller repeats until *changed is false. */
int cowfs_alloc_sync(struct cowfs *fs, bool *changed)
{
	struct cowfs_alloc *al = &fs->al;
	*changed = false;
	for (uint64_t g = 0; g < al->ngroups; g++) {
		if (!bit_test(al->group_dirty, g))
			continue;
		bit_clear(al->group_dirty, g);
		struct cowfs_key k;
		group_key(g, &k);
		int err = cowfs_bt_update(&fs->free_tree, &k, (uint8_t *)al->ondisk + g * CFS_GROUP_BYTES,
					  CFS_GROUP_BYTES);
		if (err)
			return err;
		*changed = true;
	}
	return 0;
}

struct load_ctx {
	struct cowfs *fs;
	uint64_t next_group;
	int err;
};

static int load_one(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct load_ctx *c = arg;
	struct cowfs *fs = c->fs;
	if (k->type != CFS_ITEM_FREE_BITMAP || k->offset || k->objectid != c->next_group * CFS_GROUP_BLOCKS ||
	    len != CFS_GROUP_BYTES || c->next_group >= fs->al.ngroups) {
		plat_log(PLAT_LOG_ERR, "cowfs: free-space tree: unexpected item (%llu, %u, %llu) len %u",
			 (unsigned long long)k->objectid, k->type, (unsigned long long)k->offset, len);
		return -PLAT_EIO;
	}
	plat_memcpy((uint8_t *)fs->al.ondisk + c->next_group * CFS_GROUP_BYTES, data, len);
	c->next_group++;
	return 0;
}

/* Mount: the bitmap of the mounted commit, checked for the reserved
 * blocks; inuse starts equal to it (nothing is pinned after a mount). */
int cowfs_alloc_load(struct cowfs *fs)
{
	struct load_ctx c = { fs, 0, 0 };
	struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	int err = cowfs_bt_iterate(&fs->free_tree, &from, &to, load_one, &c);
	if (err)
		return err < 0 ? err : -PLAT_EIO;
	if (c.next_group != fs->al.ngroups) {
		plat_log(PLAT_LOG_ERR, "cowfs: free-space tree has %llu groups, expected %llu",
			 (unsigned long long)c.next_group, (unsigned long long)fs->al.ngroups);
		return -PLAT_EIO;
	}
	uint64_t used = 0;
	for (uint64_t w = 0; w < alloc_words(fs); w++) {
		fs->al.inuse[w] = fs->al.ondisk[w];
		used += popcount64(fs->al.ondisk[w]);
	}
	/* The tail of the last group counts as allocated but is not a block. */
	used -= fs->al.ngroups * CFS_GROUP_BLOCKS - fs->total_blocks;
	fs->al.used = used;
	for (uint64_t b = 0; b < CFS_RESERVED_BLOCKS; b++)
		if (!bit_test(fs->al.ondisk, b))
			return -PLAT_EIO;
	return 0;
}
