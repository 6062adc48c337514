/* Scrub of file data (fs/scrub_data.c) on a mounted filesystem: a clean
 * image scrubs with no errors and exactly the number of distinct data
 * blocks its files and snapshot name (a block shared by a reflink or the
 * snapshot read once, a fallocated range none, an UNWRITTEN extent not
 * read), contiguous blocks batched into large reads; one flipped bit in a
 * block of a file, of a reflinked extent and of a block only the snapshot
 * still names is each reported once with the inode, file offset,
 * subvolume and device address; a block without its checksum item is
 * counted apart. */
#define TEST_SUITE "cowfs_scrub"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_env.h"
#include "fs/file.h"

#define BS 4096u
#define KB 1024u

struct lines { unsigned n; char all[8192]; };

static void collect(void *arg, const char *line)
{
	struct lines *l = arg;
	l->n++;
	size_t len = strlen(l->all);
	snprintf(l->all + len, sizeof(l->all) - len, "%s\n", line);
}

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The workload and what it leaves:
 *   a: 1 MiB + 100 bytes (257 blocks, the last one partial);
 *   snapshot "snap" of the default subvolume;
 *   a [0, 8 KiB) written again: 2 new blocks, the 2 old ones named only
 *     by the snapshot;
 *   b: [0, 64 KiB) a reflink of a [256 KiB, 320 KiB) (16 shared blocks);
 *   c: 3 blocks, written after the snapshot (only the live tree);
 *   d: 1 MiB fallocated, never written (no extent, no data).
 * Distinct data blocks: 257 + 2 + 3 = 262. */
#define DATA_BLOCKS 262u

struct files { uint64_t a, b, c, d, a_old_4k; };

/* A fresh image with the workload on it. */
static void workload(struct env *e, const char *name, struct files *f)
{
	EXPECT_EQ_INT(env_open(e, name, 32 << 20), 0);
	uint8_t *buf = malloc((1u << 20) + BS);
	fill(buf, 0, (1u << 20) + BS, 1);
	f->a = mkfile(e, "a");
	EXPECT_EQ_INT(cowfs_write(e->m, f->a, 0, buf, (1u << 20) + 100, 0), (1u << 20) + 100);
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	f->a_old_4k = ct_dev_addr(e->m, f->a, 4096);
	EXPECT_EQ_INT(cowfs_snapshot(e->m, "snap", 4, true), 0);
	fill(buf, 0, 8 * KB, 2);
	EXPECT_EQ_INT(cowfs_write(e->m, f->a, 0, buf, 8 * KB, 0), 8 * KB);
	f->b = mkfile(e, "b");
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	EXPECT_EQ_INT(cowfs_clone_range(e->m, f->a, 256 * KB, f->b, 0, 64 * KB, 0), 64 * KB);
	f->c = mkfile(e, "c");
	fill(buf, 0, 3 * BS, 3);
	EXPECT_EQ_INT(cowfs_write(e->m, f->c, 0, buf, 3 * BS, 0), 3 * BS);
	f->d = mkfile(e, "d");
	EXPECT_EQ_INT(cowfs_fallocate(e->m, f->d, 0, 0, (1u << 20)), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	free(buf);
}

static void expect_no_errors(const struct cowfs_scrub_stats *st)
{
	EXPECT_EQ_INT(cowfs_scrub_errors(st), 0);
	EXPECT_EQ_INT(st->sb_bad + st->node_errors + st->extent_errors, 0);
	EXPECT_EQ_INT(st->data_errors + st->data_no_csum + st->data_read_errors, 0);
}

static void progress_cb(void *arg, uint64_t done, uint64_t total)
{
	uint64_t *p = arg;
	p[0]++;
	p[1] = done;
	p[2] = total;
}

/* A scrub of the mounted filesystem, its report lines in *l. */
static void scrub(struct env *e, struct cowfs_scrub_stats *st, struct lines *l)
{
	memset(l, 0, sizeof(*l));
	EXPECT_EQ_INT(cowfs_vfs_scrub(e->m, st, collect, NULL, l), 0);
}

static void flip(struct env *e, uint64_t dev_byte)
{
	int fd = open(e->im.path, O_RDWR);
	uint8_t c;
	EXPECT(pread(fd, &c, 1, (off_t)dev_byte) == 1);
	c ^= 0x08;
	EXPECT(pwrite(fd, &c, 1, (off_t)dev_byte) == 1);
	close(fd);
}

TEST(clean_image_counts_each_data_block_once)
{
	struct env e;
	struct files f;
	workload(&e, "scrub_clean", &f);
	struct cowfs_scrub_stats st;
	struct lines l;
	scrub(&e, &st, &l);
	if (l.n)
		fprintf(stderr, "%s", l.all);
	EXPECT_EQ_INT(l.n, 0);
	expect_no_errors(&st);
	EXPECT_EQ_INT(st.data_blocks, DATA_BLOCKS);
	EXPECT(st.data_shared >= 16);            /* b's references to a's blocks at least */
	EXPECT_EQ_INT(st.data_unwritten, 0);
	/* Batched: the 257 blocks of a alone would be 257 one-block reads. */
	EXPECT(st.data_reads >= 1 && st.data_reads <= 12);
	EXPECT(st.bytes >= (uint64_t)DATA_BLOCKS * BS + st.nodes * 4096);
	char sum[512];
	cowfs_scrub_summary(&st, sum, sizeof(sum));
	EXPECT(!strncmp(sum, "clean: ", 7) && strstr(sum, " 262 data blocks ") && strstr(sum, "; 0 errors"));
	/* Progress counts data blocks as well as nodes. */
	uint64_t p[3] = { 0 };
	EXPECT_EQ_INT(cowfs_vfs_scrub(e.m, &st, NULL, progress_cb, p), 0);
	EXPECT(p[0] >= 2 && p[1] == st.nodes + DATA_BLOCKS && p[2] >= p[1]);
	env_close(&e);
}

TEST(unwritten_extent_is_not_data)
{
	struct env e;
	struct files f;
	workload(&e, "scrub_unwr", &f);
	/* An EXTENT item with the UNWRITTEN flag (reserved: the file layer
	 * writes none yet) over 4 allocated blocks holding no data and no
	 * checksums: not read, not an error, counted apart. */
	struct cowfs *fs = cowfs_vfs_fs(e.m);
	uint64_t blk = 0;
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_alloc_blocks(fs, 4, &blk), 0);
	uint8_t d[CFS_EXTENT_ITEM_SIZE] = { 0 };
	cfs_put64(d, blk);
	cfs_put32(d + 8, 4);
	cfs_put32(d + 12, CFS_EXTENT_UNWRITTEN);
	cfs_put64(d + 16, 1);
	struct cowfs_key k = { f.d, CFS_ITEM_EXTENT, 0 };
	EXPECT_EQ_INT(cowfs_bt_insert(e.m->tree, &k, d, sizeof(d)), 0);
	cowfs_vfs_unlock(e.m);
	struct cowfs_scrub_stats st;
	struct lines l;
	scrub(&e, &st, &l);
	if (l.n)
		fprintf(stderr, "%s", l.all);
	expect_no_errors(&st);
	EXPECT_EQ_INT(st.data_blocks, DATA_BLOCKS);
	EXPECT_EQ_INT(st.data_unwritten, 4);
	env_close(&e);
}

TEST(flipped_bits_named_once_each)
{
	struct env e;
	struct files f;
	workload(&e, "scrub_bad", &f);
	uint64_t c_dev = ct_dev_addr(e.m, f.c, BS);              /* only the live tree */
	uint64_t shared_dev = ct_dev_addr(e.m, f.b, 2 * BS);     /* a, b and the snapshot */
	EXPECT_EQ_INT(shared_dev, ct_dev_addr(e.m, f.a, 256 * KB + 2 * BS));
	EXPECT(f.a_old_4k != ct_dev_addr(e.m, f.a, BS));         /* only the snapshot names it now */
	flip(&e, c_dev + 17);
	flip(&e, shared_dev + 4000);
	flip(&e, f.a_old_4k + 1);
	struct cowfs_scrub_stats st;
	struct lines l;
	scrub(&e, &st, &l);
	fprintf(stderr, "%s", l.all);
	EXPECT_EQ_INT(l.n, 3);
	EXPECT_EQ_INT(st.data_errors, 3);
	EXPECT_EQ_INT(cowfs_scrub_errors(&st), 3);
	EXPECT_EQ_INT(st.data_blocks, DATA_BLOCKS);
	char want[200];
	snprintf(want, sizeof(want),
		 "data block %llu (device byte %llu): checksum mismatch: inode %llu offset 4096 in the default subvolume\n",
		 (unsigned long long)(c_dev / BS), (unsigned long long)c_dev, (unsigned long long)f.c);
	EXPECT(strstr(l.all, want));
	snprintf(want, sizeof(want),
		 "data block %llu (device byte %llu): checksum mismatch: inode %llu offset 4096 in snapshot \"snap\" "
		 "(tree %u)\n",
		 (unsigned long long)(f.a_old_4k / BS), (unsigned long long)f.a_old_4k, (unsigned long long)f.a,
		 (unsigned)(CFS_TREE_FS + 1));
	EXPECT(strstr(l.all, want));
	/* The reflinked block: once, named by the first reference met (a's,
	 * the smaller inode, in the live tree), with its reference count. */
	snprintf(want, sizeof(want), "(device byte %llu): ", (unsigned long long)shared_dev);
	EXPECT_EQ_INT(count_of(l.all, want), 1);
	snprintf(want, sizeof(want),
		 "data block %llu (device byte %llu): checksum mismatch: inode %llu offset %u in the default subvolume, "
		 "shared by ",
		 (unsigned long long)(shared_dev / BS), (unsigned long long)shared_dev, (unsigned long long)f.a,
		 256 * KB + 2 * BS);
	EXPECT(strstr(l.all, want));
	/* A buffered read of the damaged live block fails as well. */
	uint8_t buf[BS];
	EXPECT_EQ_INT(cowfs_drop_cache(e.m, f.c), 0);
	EXPECT_EQ_INT(cowfs_read(e.m, f.c, BS, buf, BS, 0), -PLAT_EIO);
	env_close(&e);
}

TEST(missing_checksum_counted_apart)
{
	struct env e;
	struct files f;
	workload(&e, "scrub_nocsum", &f);
	uint64_t dev = ct_dev_addr(e.m, f.c, 2 * BS);
	struct cowfs *fs = cowfs_vfs_fs(e.m);
	struct cowfs_tree *t = NULL;
	cowfs_vfs_lock(e.m);
	EXPECT_EQ_INT(cowfs_tree_get(fs, CFS_TREE_CSUM, false, &t), 0);
	EXPECT_EQ_INT(cowfs_csum_del(t, dev / BS, 1), 0);
	cowfs_vfs_unlock(e.m);
	struct cowfs_scrub_stats st;
	struct lines l;
	scrub(&e, &st, &l);
	EXPECT_EQ_INT(st.data_no_csum, 1);
	EXPECT_EQ_INT(st.data_errors, 0);
	EXPECT_EQ_INT(cowfs_scrub_errors(&st), 1);
	char want[120];
	snprintf(want, sizeof(want), "(device byte %llu): no checksum: inode %llu offset 8192 ", (unsigned long long)dev,
		 (unsigned long long)f.c);
	EXPECT(l.n == 1 && strstr(l.all, want));
	env_close(&e);
}

TEST_MAIN()
