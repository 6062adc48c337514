/* fallocate, punch hole, zero range and seek hole/data (fs/falloc.c):
 * every mode (collapse and insert range too, fs/falloc_shift.c, whose own
 * test is test_cowfs_shift.c) against a byte model and a block-allocation
 * model (seek
 * data/hole computed from it) with partial blocks, ranges past the end of
 * file, dirty and cached data, remounts and the whole-filesystem check;
 * the refusals; allocate's free-space check; punch and zero after a
 * snapshot (the snapshot's bytes unchanged, shared blocks not freed until
 * the snapshot goes) and space returned after punch + commit; a power cut
 * at every device write of a workload of them. */
#define TEST_SUITE "cowfs_falloc"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_env.h"
#include "fs/file.h"
#include "iomap/report.h"

#define BS 4096u
#define CAP (1u << 20)                       /* the model file's bytes */
#define KEEP CFS_FALLOC_KEEP_SIZE
#define PUNCH (CFS_FALLOC_PUNCH_HOLE | CFS_FALLOC_KEEP_SIZE)
#define ZERO CFS_FALLOC_ZERO_RANGE

struct fmodel {
	uint8_t *bytes;                     /* CAP + BS bytes, zero past size */
	bool blk[CAP / BS + 2];             /* block has data (extent or pending) */
	uint64_t size;
};

static void mark(struct fmodel *fm, uint64_t from, uint64_t to, bool data)
{
	for (uint64_t b = from / BS; b < to / BS && b < CAP / BS + 2; b++)
		fm->blk[b] = data;
}

/* What lseek would say, from the model: -ENXIO or the offset. */
static int64_t model_seek(const struct fmodel *fm, uint64_t off, int whence)
{
	if (off >= fm->size)
		return -PLAT_ENXIO;
	for (uint64_t b = off / BS; b * BS < fm->size; b++)
		if (fm->blk[b] == (whence == CFS_SEEK_DATA))
			return (int64_t)(b * BS > off ? b * BS : off);
	return whence == CFS_SEEK_DATA ? -PLAT_ENXIO : (int64_t)fm->size;
}

static int64_t do_seek(struct env *e, uint64_t ino, uint64_t off, int whence)
{
	uint64_t r = 0;
	int err = cowfs_seek(e->m, ino, off, whence, &r);
	return err ? err : (int64_t)r;
}

static bool seek_matches(struct env *e, uint64_t ino, const struct fmodel *fm, uint64_t off)
{
	for (int w = CFS_SEEK_DATA; w <= CFS_SEEK_HOLE; w++) {
		int64_t got = do_seek(e, ino, off, w), want = model_seek(fm, off, w);
		if (got != want) {
			fprintf(stderr, "seek %s from %llu: %lld, model %lld\n", w == CFS_SEEK_DATA ? "data" : "hole",
				(unsigned long long)off, (long long)got, (long long)want);
			return false;
		}
	}
	return true;
}

/* ops random steps from seed.  Replaying a failure: COWFS_SEED sets the
 * seed, DBG_OPS the number of steps, DBG_CHECK_AT=N checks after every
 * step from N on, DBG_TRACE prints each step, DBG dumps the blocks where
 * the file and the model disagree, DBG_BLOCK names the file block behind
 * a data block the check complains about. */
/* Collapse (true) or insert of [off, off+len) on the models. */
static void model_shift(struct fmodel *fm, bool collapse, uint64_t off, uint64_t len)
{
	uint64_t nb = len / BS, ob = off / BS, end_b = CAP / BS + 2;
	if (collapse) {
		memmove(fm->bytes + off, fm->bytes + off + len, fm->size - off - len);
		memset(fm->bytes + fm->size - len, 0, len);
		for (uint64_t b = ob; b < end_b; b++)
			fm->blk[b] = b + nb < end_b ? fm->blk[b + nb] : false;
		fm->size -= len;
	} else {
		memmove(fm->bytes + off + len, fm->bytes + off, fm->size - off);
		memset(fm->bytes + off, 0, len);
		for (uint64_t b = end_b; b-- > ob + nb;)
			fm->blk[b] = fm->blk[b - nb];
		for (uint64_t b = ob; b < ob + nb; b++)
			fm->blk[b] = false;
		fm->size += len;
	}
}

/* shifts: reads give a part of their share to collapse and insert range
 * (false keeps an older seed's sequence of operations). */
static void model_run(uint64_t rng, unsigned ops, bool shifts)
{
	struct env e;
	EXPECT_EQ_INT(env_open(&e, "falloc", 48 << 20), 0);
	uint8_t *buf = aligned_alloc(BS, CAP + 2 * BS), *data = aligned_alloc(BS, CAP);
	struct fmodel fm = { calloc(1, CAP + BS), { false }, 0 };
	uint64_t ino = mkfile(&e, "f");
	if (getenv("COWFS_SEED"))
		rng = strtoull(getenv("COWFS_SEED"), NULL, 0);
	fprintf(stderr, "# seed %#llx (COWFS_SEED replays)\n", (unsigned long long)rng);
	if (getenv("DBG_OPS"))
		ops = (unsigned)atoi(getenv("DBG_OPS"));
	unsigned shifted[2] = { 0, 0 };   /* inserts, collapses done */
	for (unsigned op = 0; op < ops; op++) {
		unsigned kind = (unsigned)(ct_rand(&rng) % 100);
		uint64_t off = ct_rand(&rng) % (CAP - 70000), len = 1 + ct_rand(&rng) % 60000, end = off + len;
		if (kind % 3 == 0) {                   /* block-aligned edges now and then */
			off &= ~(uint64_t)(BS - 1);
			len = (len + BS - 1) & ~(uint64_t)(BS - 1);
			end = off + len;
		}
		if (getenv("DBG_TRACE"))
			fprintf(stderr, "trace op %u kind %u off %llu len %llu size %llu\n", op, kind, (unsigned long long)off,
				(unsigned long long)len, (unsigned long long)fm.size);
		if (kind < 25) {                                /* buffered write */
			fill(data, off, len, op);
			EXPECT_EQ_INT(cowfs_write(e.m, ino, off, data, len, 0), (int64_t)len);
			memcpy(fm.bytes + off, data, len);
			mark(&fm, off & ~(uint64_t)(BS - 1), end + BS - 1, true);
			fm.size = end > fm.size ? end : fm.size;
		} else if (kind < 32) {                         /* direct write */
			off &= ~(uint64_t)(BS - 1);
			len = (len + BS - 1) & ~(uint64_t)(BS - 1);
			end = off + len;
			fill(data, off, len, op);
			EXPECT_EQ_INT(cowfs_write(e.m, ino, off, data, len, CFS_IO_DIRECT), (int64_t)len);
			memcpy(fm.bytes + off, data, len);
			mark(&fm, off, end, true);
			fm.size = end > fm.size ? end : fm.size;
		} else if (kind < 50) {                         /* punch hole */
			EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, off, len), 0);
			memset(fm.bytes + off, 0, len);
			mark(&fm, (off + BS - 1) & ~(uint64_t)(BS - 1), end & ~(uint64_t)(BS - 1), false);
		} else if (kind < 65) {                         /* zero range, growing or not */
			bool keep = kind & 1;
			EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, ZERO | (keep ? KEEP : 0), off, len), 0);
			memset(fm.bytes + off, 0, len);
			mark(&fm, (off + BS - 1) & ~(uint64_t)(BS - 1), end & ~(uint64_t)(BS - 1), false);
			if (!keep && end > fm.size)
				fm.size = end;
		} else if (kind < 73) {                         /* allocate, growing or not */
			bool keep = kind & 1;
			EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, keep ? KEEP : 0, off, len), 0);
			if (!keep && end > fm.size)
				fm.size = end;
		} else if (kind < 78) {                         /* truncate */
			uint64_t ns = ct_rand(&rng) % CAP;
			struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = ns };
			EXPECT_EQ_INT(cowfs_setattr(e.m, ino, &sa, NULL), 0);
			if (ns < fm.size)
				memset(fm.bytes + ns, 0, fm.size - ns);
			mark(&fm, (ns + BS - 1) & ~(uint64_t)(BS - 1), CAP + BS, false);
			fm.size = ns;
		} else if (kind < 83) {
			EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
		} else if (kind < 86) {
			env_remount(&e);
		} else if (shifts && kind < 92) {               /* collapse or insert range */
			bool collapse = kind & 1;
			off &= ~(uint64_t)(BS - 1);
			len = (len + BS - 1) & ~(uint64_t)(BS - 1);
			int want = 0;
			if (collapse ? off + len >= fm.size : off >= fm.size)
				want = -PLAT_EINVAL;
			else if (!collapse && fm.size + len > CAP)
				continue;                       /* past the model's bytes */
			EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, collapse ? CFS_FALLOC_COLLAPSE_RANGE : CFS_FALLOC_INSERT_RANGE,
						      off, len), want);
			if (!want)
				model_shift(&fm, collapse, off, len);
			shifted[collapse] += !want;
		} else {                                        /* read a range back (cached afterwards) */
			int64_t n = cowfs_read(e.m, ino, off, buf, len, 0);
			uint64_t want = off >= fm.size ? 0 : (fm.size - off < len ? fm.size - off : len);
			EXPECT_EQ_INT(n, (int64_t)want);
			EXPECT(n < 0 || !memcmp(buf, fm.bytes + off, (size_t)n));
		}
		/* After every step: seeks at two places and the bytes. */
		bool seeks = seek_matches(&e, ino, &fm, off) && seek_matches(&e, ino, &fm, ct_rand(&rng) % (fm.size + BS));
		if (!seeks || !same(&e, ino, fm.bytes, fm.size, buf)) {
			fprintf(stderr, "op %u kind %u off %llu len %llu\n", op, kind, (unsigned long long)off,
				(unsigned long long)len);
			if (getenv("DBG")) {
				struct cowfs_vnode *vn;
				cowfs_vfs_lock(e.m);
				cowfs_vget(e.m, ino, &vn);
				for (uint64_t b = 0; b < CAP / BS; b++) {
					struct cowfs_extent x;
					bool found;
					uint64_t next;
					cowfs_extent_find(e.m, ino, b * BS, &x, &found);
					bool p = cowfs_file_pending(vn, b * BS, &next);
					if (found != fm.blk[b] || p)
						fprintf(stderr, "blk %llu extent %d pending %d model %d\n", (unsigned long long)b, found, p, fm.blk[b]);
				}
				cowfs_vput(vn);
				cowfs_vfs_unlock(e.m);
			}
			EXPECT(false);
			break;
		}
		if (op % 100 == 99 || (getenv("DBG_CHECK_AT") && op >= (unsigned)atoi(getenv("DBG_CHECK_AT")))) {
			for (uint64_t o = 0; o < fm.size + BS; o += BS / 2)
				if (!seek_matches(&e, ino, &fm, o)) {
					EXPECT(false);
					break;
				}
			const char *why = env_check(&e);
			if (why)
				fprintf(stderr, "op %u kind %u off %llu len %llu: %s\n", op, kind, (unsigned long long)off,
					(unsigned long long)len, why);
			EXPECT(why == NULL);
			if (why && getenv("DBG_BLOCK")) {
				const char *w = strstr(why, "data block ");
				uint64_t want = w ? strtoull(w + 11, NULL, 0) : 0;
				cowfs_vfs_lock(e.m);
				for (uint64_t b = 0; b < CAP / BS; b++) {
					struct cowfs_extent x;
					bool found;
					cowfs_extent_find(e.m, ino, b * BS, &x, &found);
					if (found && x.disk_block + (b * BS - x.off) / BS == want)
						fprintf(stderr, "block %llu is file block %llu (extent at %llu, %u blocks, gen %llu)\n",
							(unsigned long long)want, (unsigned long long)b, (unsigned long long)x.off,
							x.nblocks, (unsigned long long)x.gen);
				}
				cowfs_vfs_unlock(e.m);
				break;
			}
		}
	}
	if (shifts) {
		fprintf(stderr, "# %u collapses, %u inserts\n", shifted[1], shifted[0]);
		EXPECT(shifted[0] > 0 && shifted[1] > 0);
	}
	env_remount(&e);
	EXPECT(same(&e, ino, fm.bytes, fm.size, buf));
	for (uint64_t o = 0; o < fm.size; o += BS)
		EXPECT(seek_matches(&e, ino, &fm, o));
	/* The inode's block count is what the extents hold. */
	uint64_t blocks = 0;
	for (uint64_t b = 0; b < CAP / BS + 2; b++)
		blocks += fm.blk[b];
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_getattr(e.m, ino, &a), 0);
	EXPECT_EQ_INT(a.blocks, blocks);
	EXPECT(env_check(&e) == NULL);
	free(fm.bytes);
	free(buf);
	free(data);
	env_close(&e);
}

TEST(modes_against_byte_and_block_models)
{
	model_run(0xfa11, getenv("COWFS_STRESS") ? 6000 : 700, true);
}

/* A seed whose run once left two allocations for one file block in
 * flight (writeback took blocks for a delalloc run across blocks taken
 * before): the later one, never written, was remapped over the data. */
TEST(model_seed_1234_overlapping_writeback_allocations)
{
	model_run(0x1234, 1100, false);
}

TEST(refusals_and_edges)
{
	struct env e;
	uint8_t *data, *buf;
	env_with_data(&e, "fedge", 16 << 20, 1 << 18, 5, &data, &buf);
	uint64_t ino = mkfile(&e, "f");
	uint64_t r;
	/* Modes Linux refuses too; nothing changes. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, CFS_FALLOC_PUNCH_HOLE, 0, 4096), -PLAT_ENOTSUP);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, 0x04, 0, 4096), -PLAT_ENOTSUP);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH | ZERO, 0, 4096), -PLAT_ENOTSUP);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, 0, 0, 0), -PLAT_EINVAL);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, 0, 1ull << 42, 1), -PLAT_EFBIG);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, 0, UINT64_MAX - 10, 100), -PLAT_EFBIG);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, CFS_ROOT_INO, 0, 0, 4096), -PLAT_EISDIR);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, 999999, 0, 0, 4096), -PLAT_ENOENT);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, 0, 1, &r), -PLAT_EINVAL);
	/* An empty file: no data, no hole, ENXIO. */
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, 0, CFS_SEEK_DATA, &r), -PLAT_ENXIO);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, 0, CFS_SEEK_HOLE, &r), -PLAT_ENXIO);
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_getattr(e.m, ino, &a), 0);
	EXPECT_EQ_INT(a.size, 0);
	/* Dirty data (never written back) is data to seek, and a punch
	 * through it leaves zeros in the cache, not the dirty bytes. */
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 1 << 20, data, 1 << 16, 0), 1 << 16);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, 100, CFS_SEEK_DATA, &r), 0);
	EXPECT_EQ_INT(r, 1 << 20);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, 100, CFS_SEEK_HOLE, &r), 0);
	EXPECT_EQ_INT(r, 100);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, (1 << 20) + 5, CFS_SEEK_HOLE, &r), 0);
	EXPECT_EQ_INT(r, (1 << 20) + (1 << 16));                       /* the end of file */
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, (1 << 20) + (1 << 16), CFS_SEEK_HOLE, &r), -PLAT_ENXIO);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, (1 << 20) + 100, 3 * 4096), 0);
	EXPECT_EQ_INT(cowfs_read(e.m, ino, 1 << 20, buf, 1 << 16, 0), 1 << 16);
	uint8_t *model = calloc(1, 1 << 16);
	memcpy(model, data, 1 << 16);
	memset(model + 100, 0, 3 * 4096);
	EXPECT(!memcmp(buf, model, 1 << 16));
	/* Blocks 1 and 2 of the run are gone (block 3 only partly punched). */
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, (1 << 20) + 200, CFS_SEEK_HOLE, &r), 0);
	EXPECT_EQ_INT(r, (1 << 20) + 4096);
	EXPECT_EQ_INT(cowfs_seek(e.m, ino, (1 << 20) + 4096, CFS_SEEK_DATA, &r), 0);
	EXPECT_EQ_INT(r, (1 << 20) + 3 * 4096);
	/* Written back and cached clean: a punch still reads zeros, buffered
	 * and direct, and after a remount. */
	EXPECT_EQ_INT(cowfs_fsync(e.m, ino, false), 0);
	EXPECT_EQ_INT(cowfs_read(e.m, ino, 1 << 20, buf, 1 << 16, 0), 1 << 16);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, (1 << 20) + 8 * 4096, 4 * 4096), 0);
	memset(model + 8 * 4096, 0, 4 * 4096);
	EXPECT_EQ_INT(cowfs_read(e.m, ino, 1 << 20, buf, 1 << 16, 0), 1 << 16);
	EXPECT(!memcmp(buf, model, 1 << 16));
	EXPECT_EQ_INT(cowfs_read(e.m, ino, 1 << 20, buf, 1 << 16, CFS_IO_DIRECT), 1 << 16);
	EXPECT(!memcmp(buf, model, 1 << 16));
	/* Punch and zero with KEEP_SIZE past the end: the size stays. */
	uint64_t size = (1 << 20) + (1 << 16);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, size - 10, 1 << 20), 0);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, ZERO | KEEP, size + 4096, 4096), 0);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, KEEP, size, 1 << 20), 0);
	memset(model + (1 << 16) - 10, 0, 10);
	EXPECT_EQ_INT(cowfs_getattr(e.m, ino, &a), 0);
	EXPECT_EQ_INT(a.size, size);
	/* Zero range growing the file: zeros up to the new end. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, ZERO, size - 5000, 20000), 0);
	memset(model + (1 << 16) - 5000, 0, 5000);
	EXPECT_EQ_INT(cowfs_getattr(e.m, ino, &a), 0);
	EXPECT_EQ_INT(a.size, size + 15000);
	env_remount(&e);
	EXPECT_EQ_INT(cowfs_read(e.m, ino, 1 << 20, buf, 1 << 17, 0), (1 << 16) + 15000);
	EXPECT(!memcmp(buf, model, 1 << 16));
	for (unsigned i = 0; i < 15000; i++)
		EXPECT(buf[(1 << 16) + i] == 0);
	EXPECT(env_check(&e) == NULL);
	free(model);
	free(data);
	free(buf);
	env_close(&e);
}

/* Punches through dirty data that writeback has half taken: the blocks
 * it took for the dropped folios go back, and the size the dropped folios
 * carried is kept (regressions found by the long model run). */
TEST(punch_through_dirty_data_keeps_size_and_space)
{
	struct env e;
	uint8_t *data, *buf;
	env_with_data(&e, "fdirty", 16 << 20, 1 << 16, 13, &data, &buf);
	uint64_t a = mkfile(&e, "a"), b = mkfile(&e, "b");
	struct cowfs_statfs st0, st1;
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_statfs(e.m, &st0), 0);
	/* Ten dirty blocks (one delalloc run); a direct read of the first
	 * four writes them back, which takes blocks for the whole run. */
	EXPECT_EQ_INT(cowfs_write(e.m, a, 0, data, 10 * BS, 0), 10 * BS);
	EXPECT_EQ_INT(cowfs_read(e.m, a, 0, buf, 4 * BS, CFS_IO_DIRECT), 4 * BS);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, a, PUNCH, 4 * BS, 6 * BS), 0);
	uint64_t r;
	EXPECT_EQ_INT(cowfs_seek(e.m, a, 0, CFS_SEEK_HOLE, &r), 0);
	EXPECT_EQ_INT(r, 4 * BS);
	EXPECT_EQ_INT(cowfs_seek(e.m, a, 4 * BS, CFS_SEEK_DATA, &r), -PLAT_ENXIO);
	/* Three dirty blocks extending the file, the last two punched before
	 * any writeback: the size stays 3 blocks across a remount. */
	EXPECT_EQ_INT(cowfs_write(e.m, b, 0, data, 3 * BS, 0), 3 * BS);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, b, PUNCH, BS, 2 * BS), 0);
	env_remount(&e);
	struct cowfs_inode in;
	EXPECT_EQ_INT(cowfs_getattr(e.m, b, &in), 0);
	EXPECT_EQ_INT(in.size, 3 * BS);
	EXPECT_EQ_INT(in.blocks, 1);
	EXPECT_EQ_INT(cowfs_getattr(e.m, a, &in), 0);
	EXPECT_EQ_INT(in.size, 10 * BS);
	EXPECT_EQ_INT(in.blocks, 4);
	/* Only the 5 blocks with data are in use beside the metadata. */
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_statfs(e.m, &st1), 0);
	EXPECT(st0.free_blocks - st1.free_blocks < 5 + 16);
	EXPECT(env_check(&e) == NULL);
	free(data);
	free(buf);
	env_close(&e);
}

TEST(allocate_checks_free_space)
{
	struct env e;
	uint8_t *data, *buf;
	env_with_data(&e, "fspace", 8 << 20, 5 << 20, 9, &data, &buf);
	uint64_t big = mkfile(&e, "big"), f = mkfile(&e, "f");
	EXPECT_EQ_INT(cowfs_write(e.m, big, 0, data, 5 << 20, 0), 5 << 20);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	/* More than is free: -ENOSPC and nothing changes. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, f, 0, 0, 4 << 20), -PLAT_ENOSPC);
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_getattr(e.m, f, &a), 0);
	EXPECT_EQ_INT(a.size, 0);
	/* Over blocks the file has: nothing new needed, fine when full. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, big, 0, 0, 5 << 20), 0);
	/* What fits: the size grows, the bytes read as zeros, no blocks. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, f, 0, 0, 1 << 20), 0);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, f, KEEP, 1 << 20, 1 << 20), 0);
	EXPECT_EQ_INT(cowfs_getattr(e.m, f, &a), 0);
	EXPECT_EQ_INT(a.size, 1 << 20);
	EXPECT_EQ_INT(cowfs_read(e.m, f, 0, buf, 2 << 20, 0), 1 << 20);
	for (unsigned i = 0; i < 1 << 20; i += 997)
		EXPECT(buf[i] == 0);
	/* The file may be written to that size. */
	EXPECT_EQ_INT(cowfs_write(e.m, f, 0, data, 1 << 20, 0), 1 << 20);
	EXPECT_EQ_INT(cowfs_fsync(e.m, f, false), 0);
	/* Punching big gives space back: a commit later it is free. */
	struct cowfs_statfs s0, s1;
	EXPECT_EQ_INT(cowfs_statfs(e.m, &s0), 0);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, big, PUNCH, 0, 4 << 20), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_statfs(e.m, &s1), 0);
	EXPECT(s1.free_blocks >= s0.free_blocks + 1024 - 16);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, f, 0, 1 << 20, 3 << 20), 0);
	EXPECT_EQ_INT(cowfs_write(e.m, f, 1 << 20, data, 3 << 20, 0), 3 << 20);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT(env_check(&e) == NULL);
	free(data);
	free(buf);
	env_close(&e);
}

static uint64_t free_blocks(struct env *e)
{
	struct cowfs_statfs st;
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	EXPECT_EQ_INT(cowfs_vfs_sync(e->m), 0);
	EXPECT_EQ_INT(cowfs_statfs(e->m, &st), 0);
	return st.free_blocks;
}

TEST(punch_and_zero_after_a_snapshot)
{
	struct env e;
	uint8_t *v1, *buf;
	env_with_data(&e, "fsnap", 32 << 20, 1 << 20, 11, &v1, &buf);
	uint64_t ino = mkfile(&e, "data");
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 0, v1, 1 << 20, 0), 1 << 20);
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "s", 1, true), 0);
	uint64_t before = free_blocks(&e);
	/* 150 whole blocks punched, 25 zeroed, partial edges: all shared. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, 4096 * 10 + 7, 4096 * 150), 0);
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, ZERO, 4096 * 200, 4096 * 25 + 99), 0);
	uint64_t after = free_blocks(&e);
	/* Nothing the snapshot holds was freed (copied metadata and the
	 * rewritten edge blocks cost a little). */
	EXPECT(after <= before);
	EXPECT(after + 40 > before);
	uint8_t *model = malloc(1 << 20);
	memcpy(model, v1, 1 << 20);
	memset(model + 4096 * 10 + 7, 0, 4096 * 150);
	memset(model + 4096 * 200, 0, 4096 * 25 + 99);
	EXPECT(same(&e, ino, model, 1 << 20, buf));
	EXPECT_EQ_INT(env_snapshot_file_check(&e, "s", ino, v1, buf), 1 << 20);
	const char *why = env_check(&e);
	if (why)
		fprintf(stderr, "%s\n", why);
	EXPECT(why == NULL);
	/* Deleting the snapshot frees the blocks only it still held. */
	EXPECT_EQ_INT(cowfs_snapshot_remove(e.m, "s", 1), 0);
	EXPECT_EQ_INT(cowfs_vfs_drop_pending(e.m), 0);
	uint64_t gone = free_blocks(&e);
	EXPECT(gone >= after + 149 + 25);
	env_remount(&e);
	EXPECT(same(&e, ino, model, 1 << 20, buf));
	EXPECT(env_check(&e) == NULL);
	/* Unshared now: a punch frees at once (a commit later). */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, PUNCH, 4096 * 226, 4096 * 30), 0);
	memset(model + 4096 * 226, 0, 4096 * 30);
	EXPECT(free_blocks(&e) >= gone + 30 - 4);
	EXPECT(same(&e, ino, model, 1 << 20, buf));
	EXPECT(env_check(&e) == NULL);
	free(model);
	free(v1);
	free(buf);
	env_close(&e);
}

/* ---- power cuts ----
 * States of one file, each made durable by an fsync: after a cut the file
 * is one of them, no older than the last fsync that returned. */
#define CUT_STATES 5
#define CUT_SIZE (96 * 1024)
#define CUT_BUF (34 * 4096)         /* CUT_SIZE and a read past it */

static void cut_state(unsigned k, uint8_t *out, uint64_t *size)
{
	memset(out, 0, CUT_BUF);
	fill(out, 0, 65536, 3);
	*size = 65536;
	if (k >= 2)
		memset(out + 5000, 0, 25000);              /* punch */
	if (k >= 3) {
		memset(out + 40000, 0, 25536);             /* zero range past the end */
		*size = 70000;
	}
	if (k >= 4)
		*size = CUT_SIZE;                          /* allocate */
}

/* The punch frees blocks a snapshot shares. */
static uint64_t falloc_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	static const struct env_falloc_step steps[] = {
		{ PUNCH, 5000, 25000 }, { ZERO, 40000, 30000 }, { 0, 60000, CUT_SIZE - 60000 },
	};
	return env_falloc_cut_run(cut_at, seed, why, "falloccut", cut_state, steps, CUT_STATES - 2, CUT_BUF);
}

TEST(power_cut_at_every_write_of_punch_zero_allocate)
{
	ct_cut_every_write(__FILE__, __LINE__, falloc_cut_run, getenv("COWFS_STRESS") ? 10 : 2, 25);
}

/* The other file's range released (a truncate to 0), committed. */
static int cowfs_truncate_test(struct cowfs_mount *m, uint64_t ino)
{
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 0 };
	int err = cowfs_setattr(m, ino, &sa, NULL);
	return err ? err : cowfs_vfs_sync(m);
}

/* fiemap (cowfs_fiemap, the appliance's filefrag): the extents of a file
 * with a hole, as dirty data (delalloc, no address), after writeback (disk
 * addresses, the last flagged, the data found there on the device), and
 * reflinked (the same disk address in both files, SHARED) and snapshotted (SHARED until written);
 * holes never listed, an extent cut to the range asked for. */
TEST(fiemap_extents_through_a_files_life)
{
	struct env e;
	uint8_t *data, *buf;
	env_with_data(&e, "fmap", 32 << 20, 1 << 18, 9, &data, &buf);
	uint64_t ino = mkfile(&e, "f"), other = mkfile(&e, "g");
	struct iomap_fiemap_extent x[8];
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 1 << 30, x, 8), 0);          /* empty */
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 0, data, 2 * BS, 0), 2 * BS);
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 1 << 20, data, BS, 0), BS);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 1 << 30, x, 8), 2);
	EXPECT(x[0].logical == 0 && x[0].length == 2 * BS && (x[0].flags & IOMAP_FIEMAP_DELALLOC));
	EXPECT(x[1].logical == 1 << 20 && x[1].length == BS && (x[1].flags & IOMAP_FIEMAP_DELALLOC));
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 1 << 30, x, 8), 2);
	for (int i = 0; i < 2; i++) {
		EXPECT(!(x[i].flags & (IOMAP_FIEMAP_DELALLOC | IOMAP_FIEMAP_UNKNOWN | IOMAP_FIEMAP_SHARED)));
		EXPECT(x[i].physical != 0 && x[i].physical % BS == 0);
	}
	EXPECT(!(x[0].flags & IOMAP_FIEMAP_LAST) && (x[1].flags & IOMAP_FIEMAP_LAST));
	/* The data is where fiemap says: read the device there. */
	uint8_t blk[BS];
	EXPECT_EQ_INT(plat_bdev_rw(e.im.bdev, PLAT_BIO_READ, x[1].physical, blk, BS), 0);
	EXPECT(memcmp(blk, data, BS) == 0);
	/* A range inside the first extent: cut to the range (iomap/report.h). */
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, BS + 5, 10, x, 8), 1);
	EXPECT(x[0].logical == BS + 5 && x[0].length == 10 && x[0].physical % BS == 5);
	/* fallocate allocates nothing on copy-on-write (fs/falloc.c): the
	 * size grows over a hole. */
	EXPECT_EQ_INT(cowfs_fallocate(e.m, ino, 0, 2 << 20, 4 * BS), 0);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 2 << 20, 1 << 30, x, 8), 0);
	/* Reflinked: both files at the same disk address, SHARED in both (the
	 * blocks' DATA_REF counts). */
	EXPECT_EQ_INT(cowfs_clone_range(e.m, ino, 0, other, 0, 2 * BS, 0), 2 * BS);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	struct iomap_fiemap_extent y[2];
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 2 * BS, x, 8), 1);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, other, 0, 1 << 30, y, 2), 1);
	EXPECT_EQ_INT(x[0].physical, y[0].physical);
	EXPECT((x[0].flags & IOMAP_FIEMAP_SHARED) && (y[0].flags & IOMAP_FIEMAP_SHARED));
	/* The other file's copy gone: the blocks are this file's alone. */
	EXPECT_EQ_INT(cowfs_truncate_test(e.m, other), 0);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 2 * BS, x, 8), 1);
	EXPECT(!(x[0].flags & IOMAP_FIEMAP_SHARED));
	/* A snapshot shares the leaf naming the extents (its path's
	 * references); a block written after it is the file's own, the one
	 * left stays shared (the leaf's copy raised its DATA_REF). */
	EXPECT_EQ_INT(cowfs_snapshot(e.m, "s", 1, true), 0);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 2 * BS, x, 8), 1);
	EXPECT(x[0].flags & IOMAP_FIEMAP_SHARED);
	EXPECT_EQ_INT(cowfs_write(e.m, ino, 0, data, BS, 0), BS);
	EXPECT_EQ_INT(cowfs_vfs_sync(e.m), 0);
	EXPECT_EQ_INT(cowfs_fiemap(e.m, ino, 0, 2 * BS, x, 8), 2);
	EXPECT(!(x[0].flags & IOMAP_FIEMAP_SHARED) && (x[1].flags & IOMAP_FIEMAP_SHARED));
	EXPECT_EQ_INT(cowfs_fiemap(e.m, 999999, 0, 1, x, 8), -PLAT_ENOENT);
	free(data);
	free(buf);
	env_close(&e);
}

TEST_MAIN()
