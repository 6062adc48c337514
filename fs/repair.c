/*
 * fsck --repair: fix what can be fixed safely, say what was done.
 *
 * Safe means: derived from the trees themselves, which must be
 * structurally sound (every node verifies; a damaged tree is reported and
 * left alone -- there is no second copy to rebuild it from).  Then:
 *
 *   1. node reference counts: each REFCOUNT item of a node is set to the
 *      number of references counted while walking; a shared node without
 *      an item gets one;
 *   2. snapshot names that point at no tree are removed;
 *   3. commit, walk again, and make the space map equal to the referenced
 *      blocks: blocks marked used that nothing references are freed
 *      (leaked space), referenced blocks marked free are marked used (they
 *      would otherwise be handed out again); commit.
 *
 * The walk counts every block a tree references, data extents included
 * (check.c's used map), so step 3 never frees data a file still uses.
 */
#include "fs/cowfs_int.h"

struct rep {
	struct cowfs *fs;
	cowfs_report_fn report;
	void *arg;
	unsigned fixed;
	uint64_t *seen;
	struct cowfs_refmap extra;      /* references beyond the first, any count */
	uint64_t *nodes;
	char msg[200];
};

static void rep_say(struct rep *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rep_say(struct rep *r, const char *fmt, ...)
{
	char line[200];
	va_list ap;
	va_start(ap, fmt);
	plat_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->fixed++;
	if (r->report)
		r->report(r->arg, line);
}

static bool seen(const struct rep *r, uint64_t b)
{
	return r->seen[b / 64] & (1ull << (b % 64));
}

static int rep_walk(struct rep *r)
{
	uint64_t words = (r->fs->total_blocks + 63) / 64;
	plat_memset(r->seen, 0, words * 8);
	cowfs_refmap_reset(&r->extra, r->fs->total_blocks);
	plat_memset(r->nodes, 0, words * 8);
	return cowfs_count_refs(r->fs, r->seen, &r->extra, r->nodes, r->msg, sizeof(r->msg));
}

/* Step 1, the items: collected first (the walk must not change the tree). */
struct ref_fix { uint64_t blk; uint32_t want; bool data; };

struct ref_scan {
	struct rep *r;
	struct ref_fix *fix;
	size_t n, cap;
};

static int ref_scan_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct ref_scan *s = arg;
	struct rep *r = s->r;
	uint64_t b = k->objectid;
	bool isdata = k->type == CFS_ITEM_DATA_REF && len == 4;
	if (b >= r->fs->total_blocks || (!isdata && (len != 12 || cfs_get64(data) != r->fs->node_blocks)))
		return 0;
	uint64_t count = seen(r, b) ? 1u + cowfs_refmap_get(&r->extra, b) : 1u;
	uint32_t want = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;   /* past what an item holds */
	uint32_t have = isdata ? cfs_get32(data) : cfs_get32((const uint8_t *)data + 8);
	cowfs_refmap_clear(&r->extra, b);
	if (want == have)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct ref_fix *nf = plat_alloc(cap * sizeof(*nf));
		if (!nf)
			return -PLAT_ENOMEM;
		if (s->n)
			plat_memcpy(nf, s->fix, s->n * sizeof(*nf));
		plat_free(s->fix);
		s->fix = nf;
		s->cap = cap;
	}
	s->fix[s->n++] = (struct ref_fix){ b, want, isdata };
	return 0;
}

static int rep_refcounts(struct rep *r)
{
	struct cowfs *fs = r->fs;
	struct ref_scan s = { r, NULL, 0, 0 };
	int err = 0;
	if (fs->ref_tree) {
		static const struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
		err = cowfs_bt_iterate(fs->ref_tree, &from, &to, ref_scan_cb, &s);
	}
	for (size_t i = 0; i < s.n && !err; i++) {
		if (s.fix[i].data) {
			err = cowfs_data_ref_fix(fs, s.fix[i].blk, s.fix[i].want);
			if (!err)
				rep_say(r, "data block %llu: reference count set to %u", (unsigned long long)s.fix[i].blk,
					s.fix[i].want);
			continue;
		}
		struct cowfs_key k = { s.fix[i].blk, CFS_ITEM_REFCOUNT, 0 };
		uint8_t v[12];
		cfs_put64(v, fs->node_blocks);
		cfs_put32(v + 8, s.fix[i].want);
		err = s.fix[i].want == 1 ? cowfs_bt_delete(fs->ref_tree, &k) : cowfs_bt_update(fs->ref_tree, &k, v, 12);
		if (!err)
			rep_say(r, "node %llu: reference count set to %u", (unsigned long long)s.fix[i].blk,
				s.fix[i].want);
	}
	plat_free(s.fix);
	/* Shared nodes with no item at all. */
	for (uint64_t b = 0; b < fs->total_blocks && !err; b++) {
		if (!r->extra.low[b])
			continue;
		uint64_t count = 1u + cowfs_refmap_get(&r->extra, b);
		uint32_t want = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
		bool node = r->nodes[b / 64] & (1ull << (b % 64));
		if (!node)
			err = cowfs_data_ref_fix(fs, b, want);
		for (uint32_t i = 1; node && i < want && !err; i++)
			err = cowfs_ref_inc(fs, b, fs->node_blocks);
		if (!err)
			rep_say(r, "%s %llu: missing reference count %u added", node ? "node" : "data block",
				(unsigned long long)b, want);
	}
	return err;
}

/* Step 2. */
struct name_scan { struct rep *r; uint64_t keys[64][2]; unsigned n; };

static int name_scan_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct name_scan *s = arg;
	(void)data;
	(void)len;
	if (k->type != CFS_ITEM_ROOT_REF || s->n == 64)
		return 0;
	uint8_t ri[CFS_ROOT_ITEM_SIZE];
	uint32_t rl;
	struct cowfs_key rk = { k->offset, CFS_ITEM_ROOT, 0 };
	if (cowfs_bt_lookup(&s->r->fs->root_tree, &rk, ri, sizeof(ri), &rl) || rl != CFS_ROOT_ITEM_SIZE ||
	    cfs_get64(ri + CFS_RI_PARENT) != k->objectid) {
		s->keys[s->n][0] = k->objectid;
		s->keys[s->n++][1] = k->offset;
	}
	return 0;
}

static int rep_names(struct rep *r)
{
	struct name_scan *s = plat_zalloc(sizeof(*s));
	static const struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	if (!s)
		return -PLAT_ENOMEM;
	s->r = r;
	int err = cowfs_bt_iterate(&r->fs->root_tree, &from, &to, name_scan_cb, s);
	for (unsigned i = 0; i < s->n && err >= 0; i++) {
		struct cowfs_key k = { s->keys[i][0], CFS_ITEM_ROOT_REF, s->keys[i][1] };
		err = cowfs_bt_delete(&r->fs->root_tree, &k);
		if (!err)
			rep_say(r, "snapshot name of missing tree %llu removed", (unsigned long long)s->keys[i][1]);
	}
	plat_free(s);
	return err < 0 ? err : 0;
}

/* Step 3. */
static void rep_space(struct rep *r)
{
	struct cowfs *fs = r->fs;
	uint64_t leaked = 0, claimed = 0;
	for (uint64_t b = CFS_RESERVED_BLOCKS; b < fs->total_blocks - CFS_SB_SLOTS; b++) {
		bool used = seen(r, b), marked = cowfs_alloc_test(fs, b);
		if (used && !marked) {
			cowfs_alloc_mark(fs, b);
			claimed++;
		} else if (!used && marked) {
			cowfs_free_blocks(fs, b, 1, 0);   /* born long ago: pinned until durable */
			leaked++;
		}
	}
	if (leaked || claimed)
		fs->dirty_changes++;             /* the space map alone changed: commit it */
	if (leaked)
		rep_say(r, "free space: %llu leaked blocks freed", (unsigned long long)leaked);
	if (claimed)
		rep_say(r, "free space: %llu referenced blocks marked used", (unsigned long long)claimed);
}

int cowfs_repair(struct cowfs *fs, cowfs_report_fn report, void *arg, unsigned *fixed)
{
	struct rep r = { .fs = fs, .report = report, .arg = arg };
	int err = cowfs_writable(fs);
	*fixed = 0;
	if (err)
		return err;
	r.seen = plat_zalloc((fs->total_blocks + 63) / 64 * 8);
	r.nodes = plat_zalloc((fs->total_blocks + 63) / 64 * 8);
	err = cowfs_refmap_init(&r.extra, fs->total_blocks);
	if (!err && (!r.seen || !r.nodes))
		err = -PLAT_ENOMEM;
	if (!err && (err = rep_walk(&r)) && report)
		report(arg, r.msg);                    /* structure damaged: not repairable here */
	if (!err)
		err = rep_refcounts(&r);
	if (!err)
		err = rep_names(&r);
	if (!err)
		err = cowfs_commit(fs);
	/* The commit moved nodes: walk again for the space map. */
	if (!err && !(err = rep_walk(&r))) {
		rep_space(&r);
		err = cowfs_commit(fs);
	}
	plat_free(r.seen);
	cowfs_refmap_free(&r.extra);
	plat_free(r.nodes);
	*fixed = r.fixed;
	return err;
}
