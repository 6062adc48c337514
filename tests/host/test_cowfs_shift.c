/* fallocate COLLAPSE_RANGE and INSERT_RANGE (fs/falloc_shift.c): random
 * sequences of collapse, insert, buffered and direct writes, reflinks
 * between and within two files, snapshots, fsyncs and remounts against a
 * byte model, with the whole-filesystem check after every step and every
 * snapshot's bytes compared with the model of its time at the end; the
 * refusals (alignment, end of file, flags, the largest file) with nothing
 * changed; dirty cached data moved with its file; a power cut at every
 * device write of a collapse + insert + fsync workload (the file is one of
 * its fsync'd states, the check clean). */
#define TEST_SUITE "cowfs_shift"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_env.h"
#include "fs/file.h"

#define BS 4096u
#define CAP (768u << 10)               /* the model files' bytes at most */
#define COLLAPSE CFS_FALLOC_COLLAPSE_RANGE
#define INSERT CFS_FALLOC_INSERT_RANGE

struct mfile {
	uint64_t ino, size;
	uint8_t *bytes;                  /* CAP + BS, zero past size */
};

static void m_collapse(struct mfile *f, uint64_t off, uint64_t len)
{
	memmove(f->bytes + off, f->bytes + off + len, f->size - off - len);
	memset(f->bytes + f->size - len, 0, len);
	f->size -= len;
}

static void m_insert(struct mfile *f, uint64_t off, uint64_t len)
{
	memmove(f->bytes + off + len, f->bytes + off, f->size - off);
	memset(f->bytes + off, 0, len);
	f->size += len;
}

static uint64_t rblocks(uint64_t *rng, uint64_t max_blocks)
{
	return (1 + ct_rand(rng) % max_blocks) * BS;
}

#define SNAPS 6

static void shift_model_run(uint64_t rng, unsigned ops)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "shift", 64 << 20), 0);
	uint8_t *buf = aligned_alloc(BS, CAP + 2 * BS), *data = aligned_alloc(BS, CAP);
	uint8_t *snap[SNAPS] = { NULL };
	unsigned nsnap = 0, done[4] = { 0 };       /* collapses, inserts, clones, refusals */
	struct mfile f[2] = { { mkfile(&e, "a"), 0, calloc(1, CAP + BS) }, { mkfile(&e, "b"), 0, calloc(1, CAP + BS) } };
	if (getenv("COWFS_SEED"))
		rng = strtoull(getenv("COWFS_SEED"), NULL, 0);
	fprintf(stderr, "# seed %#llx (COWFS_SEED replays)\n", (unsigned long long)rng);
	for (unsigned op = 0; op < ops; op++) {
		unsigned kind = (unsigned)(ct_rand(&rng) % 100);
		struct mfile *x = &f[ct_rand(&rng) & 1], *y = &f[ct_rand(&rng) & 1];
		uint64_t off = ct_rand(&rng) % (x->size + BS);
		if (kind < 22 || x->size < 2 * BS) {           /* buffered write, often unaligned */
			uint64_t len = 1 + ct_rand(&rng) % 40000;
			off = ct_rand(&rng) % (CAP / 2);
			fill(data, off, len, op);
			EXPECT_EQ_INT(cowfs_write(e.m, x->ino, off, data, len, 0), (int64_t)len);
			memcpy(x->bytes + off, data, len);
			x->size = off + len > x->size ? off + len : x->size;
		} else if (kind < 30) {                         /* direct write */
			uint64_t len = rblocks(&rng, 8);
			off = (ct_rand(&rng) % (CAP / 2)) & ~(uint64_t)(BS - 1);
			fill(data, off, len, op);
			EXPECT_EQ_INT(cowfs_write(e.m, x->ino, off, data, len, CFS_IO_DIRECT), (int64_t)len);
			memcpy(x->bytes + off, data, len);
			x->size = off + len > x->size ? off + len : x->size;
		} else if (kind < 50) {                         /* collapse */
			off &= ~(uint64_t)(BS - 1);
			uint64_t len = rblocks(&rng, 24);
			int want = off + len >= x->size ? -PLAT_EINVAL : 0;
			EXPECT_EQ_INT(cowfs_fallocate(e.m, x->ino, COLLAPSE, off, len), want);
			if (!want)
				m_collapse(x, off, len);
			done[want ? 3 : 0]++;
		} else if (kind < 70) {                         /* insert */
			off &= ~(uint64_t)(BS - 1);
			uint64_t len = rblocks(&rng, 24);
			int want = off >= x->size ? -PLAT_EINVAL : 0;
			if (!want && x->size + len > CAP)
				continue;                       /* past the model's bytes */
			EXPECT_EQ_INT(cowfs_fallocate(e.m, x->ino, INSERT, off, len), want);
			if (!want)
				m_insert(x, off, len);
			done[want ? 3 : 1]++;
		} else if (kind < 82) {                         /* reflink of whole blocks */
			uint64_t whole = x->size & ~(uint64_t)(BS - 1);
			if (whole < BS)
				continue;
			uint64_t soff = (ct_rand(&rng) % (whole / BS)) * BS;
			uint64_t len = rblocks(&rng, (whole - soff) / BS);
			uint64_t doff = (ct_rand(&rng) % (CAP / 2 / BS)) * BS;
			if (x == y && soff < doff + len && doff < soff + len)
				continue;                       /* overlap within one file: refused by the rules */
			if (doff + len > CAP)
				continue;                       /* past the model's bytes */
			EXPECT_EQ_INT(cowfs_clone_range(e.m, x->ino, soff, y->ino, doff, len, 0), (int64_t)len);
			memmove(y->bytes + doff, x->bytes + soff, len);
			y->size = doff + len > y->size ? doff + len : y->size;
			done[2]++;
		} else if (kind < 86) {                         /* snapshot (committed first) */
			if (nsnap == SNAPS)
				continue;
			char name[8];
			snprintf(name, sizeof(name), "s%u", nsnap);
			EXPECT_EQ_INT(cowfs_snapshot(e.m, name, strlen(name), true), 0);
			snap[nsnap] = malloc(CAP + BS);
			memcpy(snap[nsnap++], f[0].bytes, CAP + BS);
		} else if (kind < 94) {
			EXPECT_EQ_INT(cowfs_fsync(e.m, x->ino, false), 0);
		} else {
			env_remount(&e);
		}
		const char *why = env_check(&e);
		bool ok = !why && same(&e, f[0].ino, f[0].bytes, f[0].size, buf) &&
			  same(&e, f[1].ino, f[1].bytes, f[1].size, buf);
		if (!ok) {
			fprintf(stderr, "op %u kind %u off %llu: %s\n", op, kind, (unsigned long long)off,
				why ? why : "bytes differ");
			EXPECT(false);
			break;
		}
	}
	fprintf(stderr, "# %u collapses, %u inserts, %u clones, %u refused, %u snapshots\n", done[0], done[1], done[2],
		done[3], nsnap);
	EXPECT(done[0] >= ops / 10 && done[1] >= ops / 10 && done[2] > 0 && done[3] > 0 && nsnap > 0);
	env_remount(&e);
	EXPECT(same(&e, f[0].ino, f[0].bytes, f[0].size, buf));
	EXPECT(same(&e, f[1].ino, f[1].bytes, f[1].size, buf));
	/* Each snapshot still holds file a as it was when taken. */
	for (unsigned i = 0; i < nsnap; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%u", i);
		env_snapshot_file_check(&e, name, f[0].ino, snap[i], buf);   /* extents of at most CAP */
		free(snap[i]);
	}
	EXPECT(env_check(&e) == NULL);
	free(f[0].bytes);
	free(f[1].bytes);
	free(buf);
	free(data);
	env_close(&e);
}

TEST(random_collapse_insert_write_reflink_snapshot_against_a_model)
{
	shift_model_run(0x51f7, getenv("COWFS_STRESS") ? 3000 : 400);
}

/* Every refusal Linux makes, with nothing changed. */
TEST(refusals)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "shift_ref", 16 << 20, 64 * BS, 9, &a, &buf);
	uint64_t ino = mkfile(&e, "f");
	uint64_t size = 10 * BS + 100;
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 0, a, size, 0), (int64_t)size);
	for (unsigned mode = COLLAPSE; mode <= INSERT; mode += INSERT - COLLAPSE) {
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode, 100, BS), -PLAT_EINVAL);          /* offset */
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode, BS, BS + 1), -PLAT_EINVAL);       /* length */
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode, BS, 0), -PLAT_EINVAL);
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode | CFS_FALLOC_KEEP_SIZE, BS, BS), -PLAT_EINVAL);
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode | CFS_FALLOC_PUNCH_HOLE, BS, BS), -PLAT_EINVAL);
		EXPECT_EQ_INT(cowfs_fallocate(e.m, CFS_ROOT_INO, mode, 0, BS), -PLAT_EISDIR);
		EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, mode, 1ull << 42, BS), -PLAT_EFBIG);
	}
	/* Collapse: the range must end before the end of file. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, COLLAPSE, 10 * BS, BS), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, COLLAPSE, 8 * BS, 3 * BS), -PLAT_EINVAL);
	/* Insert: the offset must be below the size; the size past the
	 * largest file is -EFBIG. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, INSERT, 11 * BS, BS), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, INSERT, 0, CFS_FILE_MAX_BYTES - BS), -PLAT_EFBIG);
	EXPECT(same(&e, ino, a, size, buf));
	/* The edges that are allowed: collapse ending one byte before the
	 * end, insert at the last block. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, COLLAPSE, 9 * BS, BS), 0);
	memmove(a + 9 * BS, a + 10 * BS, 100);
	EXPECT(same(&e, ino, a, 9 * BS + 100, buf));
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, INSERT, 9 * BS, 2 * BS), 0);
	memmove(a + 11 * BS, a + 9 * BS, 100);
	memset(a + 9 * BS, 0, 2 * BS);
	EXPECT(same(&e, ino, a, 11 * BS + 100, buf));
	EXPECT(env_check(&e) == NULL);
	free(a);
	free(buf);
	env_close(&e);
}

/* Data only in the page cache (never written back) and data being
 * written back move with the file; an extent straddling the offset is
 * cut; the inode's block count follows a collapse; after a remount (the
 * fsync committed) the file is the same. */
TEST(dirty_data_moves_and_fsync_commits)
{
	struct env e;
	uint8_t *a, *buf;
	env_with_data(&e, "shift_dirty", 32 << 20, 256 * BS, 11, &a, &buf);
	uint64_t ino = mkfile(&e, "f");
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 0, a, 64 * BS, 0), 64 * BS);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);                  /* one 64-block extent on disk */
	fill(buf, 0, 8 * BS, 77);
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 40 * BS, buf, 8 * BS, 0), 8 * BS);   /* dirty, cached */
	memcpy(a + 40 * BS, buf, 8 * BS);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, INSERT, 20 * BS, 5 * BS), 0);    /* inside the extent */
	memmove(a + 25 * BS, a + 20 * BS, 44 * BS);
	memset(a + 20 * BS, 0, 5 * BS);
	EXPECT(same(&e, ino, a, 69 * BS, buf));
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, COLLAPSE, 2 * BS, 3 * BS), 0);
	memmove(a + 2 * BS, a + 5 * BS, 64 * BS);
	EXPECT(same(&e, ino, a, 66 * BS, buf));
	struct cowfs_inode st;
	EXPECT_EQ_INT(cowfs_getattr(e.m, ino, &st), 0);
	EXPECT_EQ_INT(st.blocks, 61);                           /* 64 written, 3 collapsed, 5 a hole */
	EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
	env_remount(&e);
	EXPECT(same(&e, ino, a, 66 * BS, buf));
	EXPECT(env_check(&e) == NULL);
	free(a);
	free(buf);
	env_close(&e);
}

/* ---- power cuts: the file is one of its fsync'd states ---- */
#define CUT_STATES 4
#define CUT_BYTES (40 * BS)

static void cut_state(unsigned k, uint8_t *out, uint64_t *size)
{
	memset(out, 0, CUT_BYTES + 2 * BS);
	fill(out, 0, 24 * BS + 1000, 5);
	*size = 24 * BS + 1000;
	if (k >= 2) {                                    /* collapse [4, 10) blocks */
		memmove(out + 4 * BS, out + 10 * BS, *size - 10 * BS);
		*size -= 6 * BS;
		memset(out + *size, 0, 6 * BS);
	}
	if (k >= 3) {                                    /* insert 3 blocks at 2 */
		memmove(out + 5 * BS, out + 2 * BS, *size - 2 * BS);
		memset(out + 2 * BS, 0, 3 * BS);
		*size += 3 * BS;
	}
}

/* After a snapshot: the moved leaves are shared. */
static uint64_t shift_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	static const struct env_falloc_step steps[] = { { COLLAPSE, 4 * BS, 6 * BS }, { INSERT, 2 * BS, 3 * BS } };
	return env_falloc_cut_run(cut_at, seed, why, "shiftcut", cut_state, steps, CUT_STATES - 2, CUT_BYTES + 2 * BS);
}

TEST(power_cut_at_every_write_of_collapse_insert_fsync)
{
	ct_cut_every_write(__FILE__, __LINE__, shift_cut_run, getenv("COWFS_STRESS") ? 10 : 2, 20);
}

TEST_MAIN()
