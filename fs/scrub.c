/*
 * scrub: read everything the last commit references back from the device
 * and verify it, bypassing every cache: each superblock copy, every node of
 * every tree (checksum, and the parent pointer's checksum, generation,
 * level, block number and owner), and every data block the live subvolume
 * trees name against its checksum (fs/scrub_data.c).  A problem is
 * reported with the block and the reason and counted; the scrub goes on.
 * Shared nodes and shared data blocks are read once.
 */
#include "fs/scrub_int.h"

void scrub_say(struct scrub *s, const char *fmt, ...)
{
	char line[320];
	va_list ap;
	va_start(ap, fmt);
	plat_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->report)
		s->report(s->arg, line);
}

void scrub_tick(struct scrub *s)
{
	uint64_t done = s->st->nodes + s->st->data_blocks;
	if (s->progress && done >= s->next_progress) {
		s->progress(s->arg, done, s->total);
		s->next_progress = done + 1024;
	}
}

bool scrub_seen(struct scrub *s, uint64_t blk)
{
	uint64_t bit = 1ull << (blk % 64);
	if (s->seen[blk / 64] & bit)
		return true;
	s->seen[blk / 64] |= bit;
	return false;
}

static int scrub_node(struct scrub *s, const struct cowfs_bptr *p, uint64_t owner, unsigned depth)
{
	struct cowfs *fs = s->fs;
	if (depth > CFS_MAX_LEVELS || p->blocknr >= fs->total_blocks) {
		s->st->node_errors++;
		scrub_say(s, "tree %llu: pointer to block %llu out of range", (unsigned long long)owner,
			  (unsigned long long)p->blocknr);
		return 0;
	}
	if (scrub_seen(s, p->blocknr))
		return 0;                    /* shared: read once */
	uint8_t *b = s->bufs[depth];
	int err = cowfs_read_blocks(fs, p->blocknr, b, fs->node_size);
	const char *why = err ? "read error" : cowfs_node_verify(fs, b, p->blocknr, p, owner, true);
	s->st->nodes++;
	s->st->bytes += fs->node_size;
	scrub_tick(s);
	if (why) {
		s->st->node_errors++;
		scrub_say(s, "tree %llu, node %llu (level %u, gen %llu): %s", (unsigned long long)owner,
			  (unsigned long long)p->blocknr, p->level, (unsigned long long)p->gen, why);
		return 0;                    /* nothing below it can be trusted or reached */
	}
	if (!b[CFS_NH_LEVEL]) {
		if (owner >= CFS_TREE_FS)
			scrub_data_leaf(s, owner, b);
		return 0;
	}
	for (uint32_t i = 0; i < nd_nr(b); i++) {
		struct cowfs_bptr c;
		in_ptr(b, i, &c);            /* b stays: each depth has its own buffer */
		if ((err = scrub_node(s, &c, owner, depth + 1)))
			return err;
	}
	return 0;
}

static void scrub_superblocks(struct scrub *s)
{
	struct cowfs *fs = s->fs;
	uint64_t areas[2] = { CFS_SB_AREA0, fs->total_blocks - CFS_SB_SLOTS };
	uint8_t *b = s->bufs[0];
	for (unsigned a = 0; a < 2; a++)
		for (unsigned i = 0; i < CFS_SB_SLOTS; i++) {
			if (cowfs_read_blocks(fs, areas[a] + i, b, CFS_BLOCK_SIZE)) {
				s->st->sb_bad++;
				scrub_say(s, "superblock copy at block %llu: read error",
					  (unsigned long long)(areas[a] + i));
				continue;
			}
			bool ours = !plat_memcmp(b + CFS_SB_MAGIC_OFF, CFS_SB_MAGIC, 8);
			bool ok = ours && cfs_get32(b + CFS_SB_CSUM) == crc32c(0, b + 4, CFS_BLOCK_SIZE - 4) &&
				  !plat_memcmp(b + CFS_SB_FSID, fs->fsid, CFS_FSID_SIZE);
			if (ok)
				s->st->sb_valid++;
			else if (ours) {
				s->st->sb_bad++;
				scrub_say(s, "superblock copy at block %llu: checksum or fsid wrong",
					  (unsigned long long)(areas[a] + i));
			}
		}
}

static int scrub_root_cb(void *arg, uint64_t id, const uint8_t *ri)
{
	struct cowfs_bptr p;
	if (cfs_get64(ri + CFS_RI_FLAGS) & CFS_ROOT_DROPPING)
		return 0;                    /* being deleted: parts are already freed */
	cfs_bptr_get(ri + CFS_RI_PTR, &p);
	return scrub_node(arg, &p, id, 0);
}

/* The root tree, the free-space tree and every tree the root tree names. */
static int scrub_trees(struct scrub *s)
{
	struct cowfs *fs = s->fs;
	int err = scrub_node(s, &fs->root_tree.root, CFS_TREE_ROOT, 0);
	if (!err)
		err = scrub_node(s, &fs->free_tree.root, CFS_TREE_FREE, 0);
	if (!err)
		err = cowfs_root_items(fs, CFS_TREE_FREE + 1, scrub_root_cb, s);
	scrub_data_flush(s);                 /* the last run */
	return err;
}

int cowfs_scrub(struct cowfs *fs, struct cowfs_scrub_stats *st, cowfs_report_fn report, cowfs_progress_fn progress,
		void *arg)
{
	struct scrub s = { fs, st, report, progress, arg, NULL, 0, 0, { 0 }, NULL, NULL };
	uint64_t t0 = plat_time_ns();
	int err = 0;
	plat_memset(st, 0, sizeof(*st));
	/* What the last commit references is what the device holds. */
	if (!fs->readonly && (err = cowfs_commit(fs)))
		return err;
	s.total = fs->al.used;
	s.seen = plat_zalloc((fs->total_blocks + 63) / 64 * 8);
	for (unsigned i = 0; i <= CFS_MAX_LEVELS && s.seen; i++)
		if (!(s.bufs[i] = plat_alloc_pages(fs->node_size)))
			err = -PLAT_ENOMEM;
	if (s.seen && (s.run = plat_zalloc(sizeof(*s.run))))
		s.run->buf = plat_alloc_pages(SCRUB_RUN_BLOCKS * CFS_BLOCK_SIZE);
	if (!s.seen || !s.run || !s.run->buf)
		err = -PLAT_ENOMEM;
	if (!err && (err = cowfs_tree_get(fs, CFS_TREE_CSUM, false, &s.csum)) == -PLAT_ENOENT)
		err = 0;                     /* no data was ever written: an extent's blocks have no checksum */
	if (!err) {
		scrub_superblocks(&s);
		err = scrub_trees(&s);
	}
	if (progress && !err)
		progress(arg, st->nodes + st->data_blocks, s.total);
	for (unsigned i = 0; i <= CFS_MAX_LEVELS; i++)
		if (s.bufs[i])
			plat_free_pages(s.bufs[i], fs->node_size);
	if (s.run && s.run->buf)
		plat_free_pages(s.run->buf, SCRUB_RUN_BLOCKS * CFS_BLOCK_SIZE);
	plat_free(s.run);
	plat_free(s.seen);
	st->elapsed_ns = plat_time_ns() - t0;
	return err;
}

uint64_t cowfs_scrub_errors(const struct cowfs_scrub_stats *st)
{
	return st->sb_bad + st->node_errors + st->extent_errors + st->data_errors + st->data_no_csum +
	       st->data_read_errors;
}

void cowfs_scrub_summary(const struct cowfs_scrub_stats *st, char *out, size_t n)
{
	uint64_t bad = cowfs_scrub_errors(st);
	plat_snprintf(out, n,
		      "%s: %llu superblock copies, %llu nodes, %llu data blocks (%llu references met again, %llu "
		      "unwritten not read) in %llu data reads, %llu MiB in %llu ms; errors: %llu superblock, %llu node, "
		      "%llu extent, %llu data checksum mismatch, %llu data without checksum, %llu data read; "
		      "%llu errors",
		      bad ? "found damage" : "clean", (unsigned long long)st->sb_valid, (unsigned long long)st->nodes,
		      (unsigned long long)st->data_blocks, (unsigned long long)st->data_shared,
		      (unsigned long long)st->data_unwritten, (unsigned long long)st->data_reads,
		      (unsigned long long)(st->bytes >> 20), (unsigned long long)(st->elapsed_ns / 1000000),
		      (unsigned long long)st->sb_bad, (unsigned long long)st->node_errors,
		      (unsigned long long)st->extent_errors, (unsigned long long)st->data_errors,
		      (unsigned long long)st->data_no_csum, (unsigned long long)st->data_read_errors,
		      (unsigned long long)bad);
}
