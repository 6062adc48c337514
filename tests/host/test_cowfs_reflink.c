/* Reflink of ranges (fs/reflink.c): clone then read equal, the two files'
 * extents naming the same device blocks, one checksum per shared block;
 * writes to either file after the clone leave the other unchanged;
 * cloning 8 MiB costs metadata only (statfs), deleting the source keeps
 * the clone readable and the check clean, deleting both frees everything;
 * clones across a commit and a remount, within one file, of a tail at the
 * end of file, into a file shared with a snapshot; the reference limit;
 * check and repair exact past 255 references to a data block and to a
 * node (300 snapshots);
 * every refusal with nothing changed; fsck --repair on shared blocks; a
 * power cut at every device write of a clone + fsync workload (each file
 * one of its fsync'd states, the check clean). */
#define TEST_SUITE "cowfs_reflink"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_env.h"
#include "fs/file.h"

#define BS 4096u

static uint64_t free_blocks(struct env *e)
{
	struct cowfs_statfs st;
	/* Two commits: blocks freed by the first are reusable after the second. */
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	EXPECT_EQ_INT(cowfs_statfs(e->m, &st), 0);
	return st.free_blocks;
}

static uint64_t csum_items(struct env *e)
{
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	return env_csum_items(e);
}

static void ignore_line(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static void expect_clean(struct env *e)
{
	const char *why = env_check(e);
	if (why)
		fprintf(stderr, "check: %s\n", why);
	EXPECT(why == NULL);
}

static uint64_t refs_of(struct env *e, uint64_t ino, uint64_t off)
{
	uint32_t refs = 0;
	uint64_t blk = ct_dev_addr(e->m, ino, off) / BS;
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_data_ref_get(cowfs_vfs_fs(e->m), blk, &refs), 0);
	cowfs_vfs_unlock(e->m);
	return refs;
}

#define MB (1u << 20)

TEST(clone_reads_equal_shares_blocks_and_writes_stay_apart)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "rl_basic", 32 << 20, MB + BS, 5, &a, &buf);
	uint8_t *b = malloc(MB), *mb = malloc(MB);
	uint64_t src = mkfile(&e, "src"), dst = mkfile(&e, "dst");
	EXPECT_EQ_INT(cowfs_write(e.m, src, 0, a, MB, 0), MB);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	uint64_t csums = csum_items(&e);
	/* The last 64 KiB of the source only in the page cache: written back
	 * by the clone. */
	fill(a, 0, 65536, 99);
	memmove(a + MB - 65536, a, 65536);
	fill(a, 0, MB - 65536, 5);
	EXPECT_EQ_INT(cowfs_write(e.m, src, MB - 65536, a + MB - 65536, 65536, 0), 65536);
	/* The destination's dirty data in the range is dropped. */
	fill(b, 0, MB, 7);
	EXPECT_EQ_INT(cowfs_write(e.m, dst, 0, b, MB, 0), MB);
	struct cowfs_inode before, after;
	EXPECT_EQ_INT(cowfs_getattr(e.m, dst, &before), 0);
	plat_sleep_ns(2000000);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, src, 0, dst, 0, MB, 0), MB);
	EXPECT_EQ_INT(cowfs_getattr(e.m, dst, &after), 0);
	EXPECT(after.mtime.sec * 1000000000ull + after.mtime.nsec > before.mtime.sec * 1000000000ull + before.mtime.nsec);
	EXPECT(after.ctime.sec * 1000000000ull + after.ctime.nsec > before.ctime.sec * 1000000000ull + before.ctime.nsec);
	EXPECT(same(&e, dst, a, MB, buf));
	EXPECT(same(&e, src, a, MB, buf));
	for (uint64_t off = 0; off < MB; off += 64 * BS + BS)
		EXPECT_EQ_INT(ct_dev_addr(e.m, dst, off), ct_dev_addr(e.m, src, off));
	EXPECT_EQ_INT(refs_of(&e, dst, 4 * BS), 2);
	/* One checksum per shared block: only the 16 rewritten blocks added
	 * (their old ones freed). */
	EXPECT_EQ_INT(csum_items(&e), csums);
	expect_clean(&e);

	/* Writes after the clone go to new blocks: the other file stays. */
	memcpy(mb, a, MB);
	fill(buf, 0, 3 * BS + 100, 41);
	EXPECT_EQ_INT(cowfs_write(e.m, src, 10 * BS + 7, buf, 3 * BS + 100, 0), 3 * BS + 100);
	memcpy(a + 10 * BS + 7, buf, 3 * BS + 100);
	fill(buf, 0, 5 * BS, 43);
	EXPECT_EQ_INT(cowfs_write(e.m, dst, 100 * BS, buf, 5 * BS, CFS_IO_DIRECT), 5 * BS);
	memcpy(mb + 100 * BS, buf, 5 * BS);
	EXPECT(same(&e, src, a, MB, buf));
	EXPECT(same(&e, dst, mb, MB, buf));
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT(ct_dev_addr(e.m, dst, 10 * BS) != ct_dev_addr(e.m, src, 10 * BS));
	EXPECT(ct_dev_addr(e.m, dst, 100 * BS) != ct_dev_addr(e.m, src, 100 * BS));
	EXPECT_EQ_INT(refs_of(&e, src, 100 * BS), 1);
	EXPECT_EQ_INT(refs_of(&e, src, 200 * BS), 2);
	expect_clean(&e);
	env_remount(&e);
	EXPECT(same(&e, src, a, MB, buf));
	EXPECT(same(&e, dst, mb, MB, buf));
	expect_clean(&e);
	/* fsck --repair counts shared blocks as the check does: nothing to
	 * fix, then a lost DATA_REF item found and put back. */
	struct cowfs *fs = cowfs_vfs_fs(e.m);
	uint64_t blk = ct_dev_addr(e.m, src, 200 * BS) / BS;
	unsigned fixed = 99;
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_repair(fs, ignore_line, NULL, &fixed), 0);
	EXPECT_EQ_INT(fixed, 0);
	EXPECT_EQ_INT(cowfs_data_ref_fix(fs, blk, 1), 0);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	cowfs_vfs_unlock(e.m);
	const char *why = env_check(&e);
	EXPECT(why && strstr(why, "no refcount item"));
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_repair(fs, ignore_line, NULL, &fixed), 0);
	cowfs_vfs_unlock(e.m);
	EXPECT_EQ_INT(fixed, 1);
	EXPECT_EQ_INT(refs_of(&e, src, 200 * BS), 2);
	expect_clean(&e);
	free(a);
	free(b);
	free(mb);
	free(buf);
	env_close(&e);
}

TEST(eight_mib_clone_costs_metadata_only_and_frees_at_the_last_reference)
{
	struct env e;
	uint8_t *a, *buf;
	const uint64_t n = 8 * MB;
	env_with_data(&e, "rl_space", 64 << 20, n + BS, 9, &a, &buf);
	uint64_t empty = free_blocks(&e);
	uint64_t src = mkfile(&e, "src"), dst = mkfile(&e, "dst");
	EXPECT_EQ_INT(cowfs_write(e.m, src, 0, a, n, 0), (int64_t)n);
	uint64_t f0 = free_blocks(&e);
	EXPECT(f0 + n / BS <= empty);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, src, 0, dst, 0, 0, 0), (int64_t)n);
	uint64_t f1 = free_blocks(&e);
	fprintf(stderr, "# 8 MiB clone: %llu blocks (a copy: %llu)\n", (unsigned long long)(f0 - f1),
		(unsigned long long)(n / BS));
	EXPECT(f1 <= f0);
	EXPECT(f0 - f1 < 100);            /* DATA_REF and extent leaves, no data */
	EXPECT(same(&e, dst, a, n, buf));
	expect_clean(&e);
	/* The source goes: its blocks stay for the clone. */
	EXPECT_EQ_INT(cowfs_unlink(e.m, CFS_ROOT_INO, "src", 3), 0);
	uint64_t f2 = free_blocks(&e);
	EXPECT(f2 < f1 + 100);
	env_remount(&e);
	EXPECT(same(&e, dst, a, n, buf));
	expect_clean(&e);
	EXPECT_EQ_INT(cowfs_unlink(e.m, CFS_ROOT_INO, "dst", 3), 0);
	uint64_t f3 = free_blocks(&e);
	EXPECT(f3 + 4 >= empty);
	EXPECT_EQ_INT(csum_items(&e), 0);
	expect_clean(&e);
	free(a);
	free(buf);
	env_close(&e);
}

TEST(same_file_tail_and_refusals)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "rl_rules", 32 << 20, 256 * 1024, 3, &a, &buf);
	uint8_t *m = calloc(1, 256 * 1024);
	uint64_t f = mkfile(&e, "f"), g = mkfile(&e, "g");
	struct cowfs_inode d, l;
	EXPECT_EQ_INT(cowfs_mkdir(e.m, CFS_ROOT_INO, "d", 1, 0755, 0, 0, &d), 0);
	EXPECT_EQ_INT(cowfs_symlink(e.m, CFS_ROOT_INO, "l", 1, "f", 1, 0, 0, &l), 0);
	EXPECT_EQ_INT(cowfs_write(e.m, f, 0, a, 100000, 0), 100000);
	memcpy(m, a, 100000);
	EXPECT_EQ_INT(cowfs_write(e.m, g, 0, a + 1000, 50000, 0), 50000);
	/* Refusals: nothing changes. */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 100, g, 0, BS, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, 100, BS, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, 0, BS + 1, 0), -PLAT_EINVAL);      /* not at EOF */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 24 * BS, g, 0, 0, 0), -PLAT_EINVAL);     /* tail inside g */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, f, 4 * BS, 8 * BS, 0), -PLAT_EINVAL); /* overlap */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 8 * BS, f, 4 * BS, 8 * BS, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 28 * BS, f, 0, 0, 0), -PLAT_EINVAL);     /* past EOF */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, 0, BS, 1), -PLAT_EINVAL);          /* flags */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, d.ino, 0, g, 0, BS, 0), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, d.ino, 0, BS, 0), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, l.ino, 0, g, 0, BS, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, CFS_FILE_MAX_BYTES - BS, 2 * BS, 0), -PLAT_EFBIG);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, 999999, 0, BS, 0), -PLAT_ENOENT);
	EXPECT(same(&e, f, m, 100000, buf));
	EXPECT(same(&e, g, a + 1000, 50000, buf));
	/* Within one file, ranges apart; a length past EOF is shortened. */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, f, 8 * BS, 8 * BS, 0), 8 * BS);
	memcpy(m + 8 * BS, a, 8 * BS);
	EXPECT(same(&e, f, m, 100000, buf));
	/* The tail at EOF into an empty file, then past g's end: the size
	 * follows and the bytes after it in the last block stay zero. */
	uint64_t h = mkfile(&e, "h");
	EXPECT_EQ_INT(cowfs_clone_range(e.m, h, 0, g, 0, 0, 0), 0);                       /* at EOF: nothing */
	EXPECT(same(&e, g, a + 1000, 50000, buf));
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 16 * BS, h, 0, 1 << 20, 0), 100000 - 16 * BS);
	EXPECT(same(&e, h, m + 16 * BS, 100000 - 16 * BS, buf));
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 20 * BS, g, 12 * BS, 0, 0), 100000 - 20 * BS);
	uint8_t *gm = calloc(1, 256 * 1024);
	memcpy(gm, a + 1000, 50000);
	memcpy(gm + 12 * BS, m + 20 * BS, 100000 - 20 * BS);
	uint64_t gsize = 12 * BS + 100000 - 20 * BS;
	EXPECT(same(&e, g, gm, gsize, buf));
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = gsize + 3 * BS };
	EXPECT_EQ_INT(cowfs_setattr(e.m, g, &sa, NULL), 0);
	EXPECT(same(&e, g, gm, gsize + 3 * BS, buf));
	expect_clean(&e);
	env_remount(&e);
	EXPECT(same(&e, f, m, 100000, buf));
	EXPECT(same(&e, g, gm, gsize + 3 * BS, buf));
	EXPECT(same(&e, h, m + 16 * BS, 100000 - 16 * BS, buf));
	expect_clean(&e);
	free(gm);
	free(m);
	free(a);
	free(buf);
	env_close(&e);
}

/* Set a block's DATA_REF count directly (the limit is a u32: reached by
 * setting the item, not by four billion clones). */
static void set_refs(struct env *e, uint64_t ino, uint64_t off, uint32_t refs)
{
	uint64_t blk = ct_dev_addr(e->m, ino, off) / BS;
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_data_ref_fix(cowfs_vfs_fs(e->m), blk, refs), 0);
	cowfs_vfs_unlock(e->m);
}

/* The check names the problem `want` (committed first); fsck --repair
 * then fixes exactly one thing. */
static void check_says_then_repair_fixes_one(struct env *e, const char *want)
{
	struct cowfs *fs = cowfs_vfs_fs(e->m);
	unsigned fixed = 0;
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_commit(fs), 0);
	cowfs_vfs_unlock(e->m);
	const char *why = env_check(e);
	if (!why || !strstr(why, want))
		fprintf(stderr, "check said: %s\nwanted: %s\n", why ? why : "(clean)", want);
	EXPECT(why && strstr(why, want));
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_repair(fs, ignore_line, NULL, &fixed), 0);
	cowfs_vfs_unlock(e->m);
	EXPECT_EQ_INT(fixed, 1);
}

/* A block shared CFS_DATA_REF_MAX times (what a DATA_REF item holds) is
 * refused more, before any change, also when the range names it twice. */
TEST(reference_limit)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "rl_limit", 32 << 20, 2 * BS, 3, &a, &buf);
	uint64_t f = mkfile(&e, "f"), g = mkfile(&e, "g");
	EXPECT_EQ_INT(cowfs_write(e.m, f, 0, a, BS, 0), BS);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	set_refs(&e, f, 0, CFS_DATA_REF_MAX - 1);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, 0, BS, 0), BS);
	EXPECT_EQ_INT(refs_of(&e, f, 0), CFS_DATA_REF_MAX);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, BS, BS, 0), -PLAT_EMLINK);
	struct cowfs_inode gi;
	EXPECT_EQ_INT(cowfs_getattr(e.m, g, &gi), 0);
	EXPECT_EQ_INT(gi.size, (uint64_t)BS);
	set_refs(&e, f, 0, 2);           /* the true count again: f and g */
	expect_clean(&e);
	/* A range naming one block twice adds two references to it. */
	uint64_t f2 = mkfile(&e, "f2"), g2 = mkfile(&e, "g2");
	EXPECT_EQ_INT(cowfs_write(e.m, f2, 0, a, BS, 0), BS);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f2, 0, f2, BS, BS, 0), BS);
	set_refs(&e, f2, 0, CFS_DATA_REF_MAX - 1);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f2, 0, g2, 0, 2 * BS, 0), -PLAT_EMLINK);
	EXPECT_EQ_INT(refs_of(&e, f2, 0), CFS_DATA_REF_MAX - 1);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, f2, 0, g2, 0, BS, 0), BS);
	EXPECT_EQ_INT(refs_of(&e, f2, 0), CFS_DATA_REF_MAX);
	set_refs(&e, f2, 0, 3);
	expect_clean(&e);
	free(a);
	free(buf);
	env_close(&e);
}

/* A block shared by more references than a byte counts (the check's
 * first counter): 300 reflinks and the leaf copies of a snapshot.  The
 * check is exact past 255: clean as it is, a DATA_REF item one off is
 * named in words with both numbers, and fsck --repair sets it right. */
TEST(check_and_repair_are_exact_past_255_references)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "rl_many", 64 << 20, 4 * BS, 21, &a, &buf);
	uint64_t f = mkfile(&e, "f"), g = mkfile(&e, "g");
	EXPECT_EQ_INT(cowfs_write(e.m, f, 0, a, 2 * BS, 0), 2 * BS);
	const unsigned clones = 300;
	for (unsigned i = 0; i < clones; i++) {
		EXPECT_EQ_INT(cowfs_clone_range(e.m, f, 0, g, (uint64_t)i * 2 * BS, 2 * BS, 0), 2 * BS);
		if (i % 64 == 63)
			EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	}
	EXPECT_EQ_INT(refs_of(&e, f, 0), clones + 1);
	expect_clean(&e);
	/* A snapshot, then writes elsewhere in g: its leaves are copied, each
	 * copy one more reference per extent item it names. */
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "s", 1, true), 0);
	for (unsigned i = 0; i < clones; i += 50)
		EXPECT_EQ_INT(cowfs_write(e.m, g, (uint64_t)i * 2 * BS + BS, a + 2 * BS, BS, 0), BS);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	uint64_t refs = refs_of(&e, f, 0);
	EXPECT(refs > clones + 1);
	expect_clean(&e);
	EXPECT(same(&e, f, a, 2 * BS, buf));
	/* One off. */
	uint64_t blk = ct_dev_addr(e.m, f, 0) / BS;
	set_refs(&e, f, 0, (uint32_t)refs - 1);
	char want[120];
	snprintf(want, sizeof(want), "refcount: data block %llu has %llu references, its item says %llu",
		 (unsigned long long)blk, (unsigned long long)refs, (unsigned long long)refs - 1);
	check_says_then_repair_fixes_one(&e, want);
	EXPECT_EQ_INT(refs_of(&e, f, 0), refs);
	expect_clean(&e);
	env_remount(&e);
	expect_clean(&e);
	free(a);
	free(buf);
	env_close(&e);
}

/* A node shared past 255 times: 300 snapshots of an unchanged tree all
 * point at its root.  The check counts them exactly, names a REFCOUNT item
 * one more than that, and fsck --repair sets it back. */
TEST(node_shared_by_300_snapshots_checked_exactly)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "rl_snaps", 64 << 20), 0);
	mkfile(&e, "f");
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	const unsigned snaps = 300;
	for (unsigned i = 0; i < snaps; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%u", i);
		EXPECT_EQ_INT(cowfs_snapshot(e.m, name, strlen(name), true), 0);
	}
	struct cowfs *fs = cowfs_vfs_fs(e.m);
	uint32_t refs = 0;
	cowfs_vfs_lock(e.m);
	uint64_t root = e.m->tree->root.blocknr;
	EXPECT_EQ_INT(cowfs_ref_get(fs, root, &refs), 0);
	cowfs_vfs_unlock(e.m);
	EXPECT_EQ_INT(refs, snaps + 1);
	expect_clean(&e);
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_ref_inc(fs, root, fs->node_blocks), 0);
	cowfs_vfs_unlock(e.m);
	char want[120];
	snprintf(want, sizeof(want), "refcount: node %llu has %u references, its item says %u", (unsigned long long)root,
		 snaps + 1, snaps + 2);
	check_says_then_repair_fixes_one(&e, want);
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_ref_get(fs, root, &refs), 0);
	cowfs_vfs_unlock(e.m);
	EXPECT_EQ_INT(refs, snaps + 1);
	expect_clean(&e);
	env_close(&e);
}

/* The destination's leaves shared with a snapshot: the snapshot keeps its
 * bytes, the counts stay exact through the leaf copies. */
TEST(clone_into_a_file_a_snapshot_shares)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "rl_snap", 32 << 20, MB, 13, &a, &buf);
	uint8_t *b = malloc(MB), *m = malloc(MB);
	uint64_t src = mkfile(&e, "src"), dst = mkfile(&e, "dst");
	fill(b, 0, MB, 17);
	EXPECT_EQ_INT(cowfs_write(e.m, src, 0, a, MB, 0), MB);
	EXPECT_EQ_INT(cowfs_write(e.m, dst, 0, b, MB, 0), MB);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "s", 1, true), 0);
	EXPECT_EQ_INT(cowfs_clone_range(e.m, src, 64 * BS, dst, 32 * BS, 100 * BS, 0), 100 * BS);
	memcpy(m, b, MB);
	memcpy(m + 32 * BS, a + 64 * BS, 100 * BS);
	EXPECT(same(&e, dst, m, MB, buf));
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(env_snapshot_file_check(&e, "s", dst, b, buf), MB);
	EXPECT_EQ_INT(env_snapshot_file_check(&e, "s", src, a, buf), MB);
	expect_clean(&e);
	EXPECT_EQ_INT(cowfs_snapshot_remove(e.m, "s", 1), 0);
	EXPECT_EQ_INT(cowfs_vfs_drop_pending(e.m), 0);
	EXPECT(same(&e, dst, m, MB, buf));
	expect_clean(&e);
	/* A snapshot after clones within one file: leaves holding two items
	 * that name one block are shared, then copied by a write (each item
	 * one reference more) and dropped with the snapshot. */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, dst, 0, dst, 200 * BS, 8 * BS, 0), 8 * BS);
	memcpy(m + 200 * BS, m, 8 * BS);
	EXPECT_EQ_INT(refs_of(&e, dst, 0), 2);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "t", 1, true), 0);
	fill(buf, 0, BS, 23);
	EXPECT_EQ_INT(cowfs_write(e.m, dst, 204 * BS, buf, BS, 0), BS);
	memcpy(m + 204 * BS, buf, BS);
	EXPECT(same(&e, dst, m, MB, buf));
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(refs_of(&e, dst, 0), 4);        /* two items, in the snapshot's leaf and the copy */
	EXPECT_EQ_INT(refs_of(&e, dst, 4 * BS), 3);   /* the copy's block 204 went to new data */
	expect_clean(&e);
	EXPECT_EQ_INT(cowfs_snapshot_remove(e.m, "t", 1), 0);
	EXPECT_EQ_INT(cowfs_vfs_drop_pending(e.m), 0);
	EXPECT_EQ_INT(refs_of(&e, dst, 0), 2);
	EXPECT_EQ_INT(refs_of(&e, dst, 4 * BS), 1);
	expect_clean(&e);
	uint64_t before = free_blocks(&e);
	EXPECT_EQ_INT(cowfs_unlink(e.m, CFS_ROOT_INO, "dst", 3), 0);
	EXPECT_EQ_INT(cowfs_unlink(e.m, CFS_ROOT_INO, "src", 3), 0);
	/* The distinct data blocks: src's 256, dst's own 256 less the 100
	 * cloned from src and the 8 cloned within, plus block 204's new one. */
	EXPECT(free_blocks(&e) >= before + 256 + 256 - 100 - 8 + 1);
	EXPECT_EQ_INT(csum_items(&e), 0);
	expect_clean(&e);
	free(a);
	free(b);
	free(m);
	free(buf);
	env_close(&e);
}

/* ---- power cuts ----
 * src: A, then (state 3) A with C at [16K, 32K).  dst: B, then (state 2)
 * B with A[0, 48K) at [8K, 56K).  Each state made durable by an fsync. */
#define CUT_SIZE 65536u

static void cut_src(unsigned k, uint8_t *out)
{
	fill(out, 0, CUT_SIZE, 1);
	if (k >= 3)
		fill(out + 16384, 0, 16384, 3);
}

static void cut_dst(unsigned k, uint8_t *out)
{
	fill(out, 0, CUT_SIZE, 2);
	if (k >= 2)
		fill(out + 8192, 0, 49152, 1);
}

static const char *cut_verify(struct env *e, const char *name, unsigned synced, void (*state)(unsigned, uint8_t *),
			      uint8_t *want, uint8_t *buf)
{
	struct cowfs_inode a;
	if (cowfs_lookup(e->m, CFS_ROOT_INO, name, strlen(name), &a))
		return "an fsync'd file is gone";
	int64_t n = cowfs_read(e->m, a.ino, 0, buf, CUT_SIZE + BS, 0);
	for (unsigned k = synced; k <= 3; k++) {
		state(k, want);
		if (n == CUT_SIZE && !memcmp(buf, want, CUT_SIZE))
			return NULL;
	}
	return "a file is none of the states from its last fsync on";
}

static uint64_t clone_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e;
	struct ct_cut c;
	struct cowfs_hooks hooks;
	uint8_t *data = aligned_alloc(BS, CUT_SIZE + BS), *buf = aligned_alloc(BS, CUT_SIZE + BS);
	unsigned synced = 0;
	struct cowfs_inode s, d;
	*why = NULL;
	if ((*why = env_cut_open(&e, &c, &hooks, "rlcut", cut_at, seed)))
		goto out;
	if (cowfs_create(e.m, CFS_ROOT_INO, "s", 1, 0644, 0, 0, &s) ||
	    cowfs_create(e.m, CFS_ROOT_INO, "d", 1, 0644, 0, 0, &d))
		goto unmount;
	cut_src(1, data);
	if (cowfs_write(e.m, s.ino, 0, data, CUT_SIZE, 0) != CUT_SIZE)
		goto unmount;
	cut_dst(1, data);
	if (cowfs_write(e.m, d.ino, 0, data, CUT_SIZE, 0) != CUT_SIZE || cowfs_fsync(e.m, s.ino, false) ||
	    cowfs_fsync(e.m, d.ino, false) || cowfs_fsync(e.m, CFS_ROOT_INO, false) || c.cut)
		goto unmount;
	synced = 1;
	if (cowfs_clone_range(e.m, s.ino, 0, d.ino, 8192, 49152, 0) != 49152 || cowfs_fsync(e.m, d.ino, false) ||
	    c.cut)
		goto unmount;
	synced = 2;
	cut_src(3, data);
	if (cowfs_write(e.m, s.ino, 16384, data + 16384, 16384, 0) != 16384 || cowfs_fsync(e.m, s.ino, false) ||
	    c.cut)
		goto unmount;
	synced = 3;
unmount:;
	bool verify;
	if ((*why = env_cut_after(&e, &c, cut_at, synced == 3, &verify)) || !verify || !synced)
		goto out;
	if (!(*why = cut_verify(&e, "s", synced, cut_src, data, buf)))
		*why = cut_verify(&e, "d", synced, cut_dst, data, buf);
out:
	free(data);
	free(buf);
	return env_cut_close(&e, &c);
}

TEST(power_cut_at_every_write_of_clone_and_fsync)
{
	ct_cut_every_write(__FILE__, __LINE__, clone_cut_run, getenv("COWFS_STRESS") ? 10 : 2, 10);
}

TEST_MAIN()
