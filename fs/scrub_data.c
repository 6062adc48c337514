/*
 * Scrub of file data (docs/format.md §6 EXTENT, DATA_CSUM): every block an
 * EXTENT item of a live subvolume tree (the default one, its snapshots and
 * clones) names is read from the device -- past the page cache -- and its
 * crc32c compared with its DATA_CSUM item.  A block shared by reflinks and
 * snapshots is read once (the walk's seen bitmap); the report names the
 * first reference the walk met (tree, inode, file offset), the device
 * address and, for a shared block, how many references it has.
 *
 * Blocks are queued in runs of device-contiguous blocks and each run is
 * one read of up to SCRUB_RUN_BLOCKS blocks, however many extents and
 * leaves it spans; only a run whose read fails is read again block by
 * block, to name the unreadable ones.
 *
 * Kinds of problems, counted apart: a checksum that does not match, a
 * block with no checksum (the format has no nodatasum: every written
 * block has one, so this is damage too), a read error, an EXTENT item
 * pointing outside the data area.  Blocks of an extent flagged UNWRITTEN
 * hold no data yet and are counted, not read.
 */
#include "fs/scrub_int.h"

#define BS CFS_BLOCK_SIZE

/* "the default subvolume", "snapshot "x" (tree 257)", ... */
struct where { uint64_t id; char *out; size_t n; };

static int where_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct where *w = arg;
	if (si->id != w->id)
		return 0;
	plat_snprintf(w->out, w->n, "%s \"%s\" (tree %llu)", si->readonly ? "snapshot" : "clone",
		      si->name[0] ? si->name : "(unnamed)", (unsigned long long)si->id);
	return 1;
}

static void where(struct scrub *s, uint64_t tree, char *out, size_t n)
{
	struct where w = { tree, out, n };
	plat_snprintf(out, n, "subvolume tree %llu", (unsigned long long)tree);
	if (tree == CFS_TREE_FS)
		plat_snprintf(out, n, "the default subvolume");
	else
		cowfs_subvol_list(s->fs, where_cb, &w);
}

static void data_problem(struct scrub *s, uint32_t i, const char *what)
{
	struct scrub_run *r = s->run;
	const struct scrub_ref *ref = &r->ref[i];
	uint64_t blk = r->dev + i;
	uint32_t refs = 1;
	char in[CFS_NAME_MAX_SNAP + 48], shared[48] = "";
	where(s, ref->tree, in, sizeof(in));
	if (!cowfs_data_ref_get(s->fs, blk, &refs) && refs > 1)
		plat_snprintf(shared, sizeof(shared), ", shared by %u references", refs);
	scrub_say(s, "data block %llu (device byte %llu): %s: inode %llu offset %llu in %s%s", (unsigned long long)blk,
		  (unsigned long long)(blk * BS), what, (unsigned long long)ref->ino, (unsigned long long)ref->off, in,
		  shared);
}

/* DATA_CSUM items of the run's blocks; an item may hold several. */
static int csum_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct scrub_run *r = arg;
	if (k->objectid >= r->dev + r->n)
		return 1;
	if (k->type != CFS_ITEM_DATA_CSUM || len % 4)
		return 0;
	for (uint32_t j = 0; j < len / 4; j++) {
		uint64_t b = k->objectid + j;
		if (b >= r->dev && b < r->dev + r->n) {
			r->csum[b - r->dev] = cfs_get32((const uint8_t *)data + 4 * j);
			r->has_csum[b - r->dev] = true;
		}
	}
	return 0;
}

static void run_csums(struct scrub *s)
{
	struct scrub_run *r = s->run;
	plat_memset(r->has_csum, 0, sizeof(r->has_csum));
	if (!s->csum)
		return;
	struct cowfs_key from = { r->dev, CFS_ITEM_DATA_CSUM, 0 }, prev = from;
	struct cowfs_key to = { r->dev + r->n - 1, CFS_ITEM_DATA_CSUM, UINT64_MAX };
	/* An item starting before the run may cover its first blocks. */
	if (!cowfs_bt_prev(s->csum, &prev) && prev.type == CFS_ITEM_DATA_CSUM)
		from = prev;
	int err = cowfs_bt_iterate(s->csum, &from, &to, csum_cb, r);
	if (err < 0)   /* the checksum tree's own damage is counted by the node walk */
		scrub_say(s, "checksums of data blocks %llu..%llu unreadable: %s", (unsigned long long)r->dev,
			  (unsigned long long)(r->dev + r->n - 1), plat_strerror(err));
}

void scrub_data_flush(struct scrub *s)
{
	struct scrub_run *r = s->run;
	struct cowfs_scrub_stats *st = s->st;
	if (!r || !r->n)
		return;
	st->data_reads++;
	bool read_ok = !cowfs_read_blocks(s->fs, r->dev, r->buf, r->n * BS);
	run_csums(s);
	for (uint32_t i = 0; i < r->n; i++) {
		uint8_t *b = r->buf + (uint64_t)i * BS;
		st->data_blocks++;
		st->bytes += BS;
		if (!read_ok) {
			st->data_reads++;
			if (cowfs_read_blocks(s->fs, r->dev + i, b, BS)) {
				st->data_read_errors++;
				data_problem(s, i, "read error");
				continue;
			}
		}
		if (!r->has_csum[i]) {
			st->data_no_csum++;
			data_problem(s, i, "no checksum");
		} else if (crc32c(0, b, BS) != r->csum[i]) {
			st->data_errors++;
			data_problem(s, i, "checksum mismatch");
		}
	}
	r->n = 0;
	scrub_tick(s);
}

static void queue(struct scrub *s, uint64_t blk, const struct scrub_ref *ref)
{
	struct scrub_run *r = s->run;
	if (r->n && (blk != r->dev + r->n || r->n == SCRUB_RUN_BLOCKS))
		scrub_data_flush(s);
	if (!r->n)
		r->dev = blk;
	r->ref[r->n++] = *ref;
}

void scrub_data_leaf(struct scrub *s, uint64_t tree, const uint8_t *leaf)
{
	struct cowfs *fs = s->fs;
	for (uint32_t i = 0; i < nd_nr(leaf); i++) {
		struct cowfs_key k;
		nd_key(leaf, i, &k);
		if (k.type != CFS_ITEM_EXTENT || lf_len(leaf, i) != CFS_EXTENT_ITEM_SIZE)
			continue;
		const uint8_t *d = leaf + lf_off(leaf, i);
		uint64_t first = cfs_get64(d), n = cfs_get32(d + 8);
		if (cfs_get32(d + 12) & CFS_EXTENT_UNWRITTEN) {
			s->st->data_unwritten += n;
			continue;
		}
		if (!n || first < CFS_RESERVED_BLOCKS || first > fs->total_blocks - CFS_SB_SLOTS ||
		    n > fs->total_blocks - CFS_SB_SLOTS - first) {
			s->st->extent_errors++;
			scrub_say(s, "tree %llu, inode %llu offset %llu: extent of %llu blocks at block %llu lies outside "
				  "the data area", (unsigned long long)tree, (unsigned long long)k.objectid,
				  (unsigned long long)k.offset, (unsigned long long)n, (unsigned long long)first);
			continue;
		}
		for (uint64_t j = 0; j < n; j++) {
			struct scrub_ref ref = { tree, k.objectid, k.offset + j * BS };
			if (scrub_seen(s, first + j))
				s->st->data_shared++;
			else
				queue(s, first + j, &ref);
		}
	}
}
