/*
 * Block-device file over the iomap core (platform/kernel/bdev_file.c) on the host
 * platform: identity mapping, unaligned buffered I/O, sync/drop, direct I/O
 * coherency, writeback errors, device end.
 */
#define TEST_SUITE "iomap_bdev"
#include "tests/host/test.h"
#include "platform/kernel/bdev_file.h"
#include "platform/host/platform_host.h"
#include <unistd.h>

#define DEV_BYTES (8ull << 20)

struct env {
	char path[64];
	struct plat_bdev *bdev;
	struct pcache *pc;
	struct iomap_workq *wq;
	struct bdev_file *bf;
};

static int env_open(struct env *e, uint64_t budget)
{
	static unsigned seq;
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "/tmp/bdevf-%d-%u.img", getpid(), seq++);
	e->bdev = plat_host_bdev_open(e->path, DEV_BYTES, 512, 2, false);
	if (!e->bdev)
		return -1;
	unlink(e->path);
	struct pcache_config cfg = { budget, 0, 0, 1, 20ull * 1000000ull };
	if (pcache_create(&cfg, &e->pc) || iomap_workq_create("bdevf", 1, &e->wq))
		return -1;
	return bdev_file_open(e->pc, e->bdev, e->wq, &e->bf);
}

static void env_close(struct env *e)
{
	if (e->bf)
		EXPECT(bdev_file_close(e->bf) == 0);
	if (e->pc)
		pcache_destroy(e->pc);
	iomap_workq_destroy(e->wq);
	plat_bdev_close(e->bdev);
}

static void fill(uint8_t *p, uint64_t off, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(((off + i) * 131 + seed * 7 + ((off + i) >> 9)) ^ seed);
}

/* The device (no cache) holds fill(seed) over [off, off+n). */
static bool dev_has(struct env *e, uint64_t off, uint64_t n, unsigned seed)
{
	uint64_t a = off & ~511ull, end = (off + n + 511) & ~511ull;
	uint8_t *got = malloc(end - a), *want = malloc(n);
	bool ok = plat_bdev_rw(e->bdev, PLAT_BIO_READ, a, got, end - a) == 0;
	fill(want, off, n, seed);
	ok = ok && memcmp(got + (off - a), want, n) == 0;
	free(got);
	free(want);
	return ok;
}

TEST(identity_unaligned_roundtrip)
{
	struct env e;
	EXPECT(env_open(&e, 16ull << 20) == 0);
	uint64_t off = 1000, n = 100000;
	uint8_t *w = malloc(n), *r = malloc(n);
	fill(w, off, n, 1);
	EXPECT(bdev_file_block(e.bf) == 4096);
	EXPECT(bdev_file_write(e.bf, off, w, n) == (int64_t)n);
	EXPECT(!dev_has(&e, off, n, 1));               /* still only in the cache */
	EXPECT(bdev_file_read(e.bf, off, r, n) == (int64_t)n);
	EXPECT(memcmp(r, w, n) == 0);
	EXPECT(bdev_file_sync(e.bf) == 0);
	EXPECT(dev_has(&e, off, n, 1));                /* file offset == device offset */
	EXPECT(bdev_file_drop(e.bf) == 0);
	EXPECT(e.bf->ino.mapping.nr_folios == 0);
	memset(r, 0, n);
	EXPECT(bdev_file_read(e.bf, off, r, n) == (int64_t)n);
	EXPECT(memcmp(r, w, n) == 0);
	EXPECT(e.bf->wb_end_ios > 0);
	free(w);
	free(r);
	env_close(&e);
}

TEST(device_end)
{
	struct env e;
	EXPECT(env_open(&e, 16ull << 20) == 0);
	uint8_t b[1000];
	fill(b, DEV_BYTES - 700, 700, 2);
	EXPECT(bdev_file_write(e.bf, DEV_BYTES - 700, b, 1000) == 700);   /* clamped */
	EXPECT(bdev_file_write(e.bf, DEV_BYTES, b, 1) == -PLAT_ENOSPC);
	EXPECT(bdev_file_read(e.bf, DEV_BYTES - 100, b, 1000) == 100);
	EXPECT(bdev_file_read(e.bf, DEV_BYTES, b, 1) == 0);
	EXPECT(bdev_file_sync(e.bf) == 0);
	EXPECT(dev_has(&e, DEV_BYTES - 700, 700, 2));
	env_close(&e);
}

TEST(dio_coherency)
{
	struct env e;
	EXPECT(env_open(&e, 16ull << 20) == 0);
	uint64_t off = 65536, n = 131072;
	uint8_t *w = aligned_alloc(4096, n), *r = malloc(n);
	EXPECT(w != NULL);
	fill(w, off, n, 3);
	EXPECT(bdev_file_write(e.bf, off, w, n) == (int64_t)n);   /* dirty in cache */
	fill(w, off, n, 4);
	EXPECT(bdev_file_dio_write(e.bf, off, w, n, true) == (int64_t)n);
	EXPECT(bdev_file_read(e.bf, off, r, n) == (int64_t)n);
	EXPECT(memcmp(r, w, n) == 0);                             /* cache invalidated */
	EXPECT(dev_has(&e, off, n, 4));
	fill(r, off + 10, 5000, 5);
	EXPECT(bdev_file_write(e.bf, off + 10, r, 5000) == 5000);
	EXPECT(bdev_file_dio_read(e.bf, off, w, 8192) == 8192);   /* written back first */
	EXPECT(memcmp(w + 10, r, 5000) == 0);
	EXPECT(bdev_file_dio_read(e.bf, off + 512, w, 4096) == -PLAT_EINVAL);
	free(w);
	free(r);
	env_close(&e);
}

TEST(writeback_error_to_fsync)
{
	struct env e;
	EXPECT(env_open(&e, 16ull << 20) == 0);
	uint8_t b[9000];
	fill(b, 8195, sizeof(b), 6);
	plat_host_bdev_inject(e.bdev, PLAT_BIO_WRITE, 8192, 4096, -PLAT_EIO, 1);
	EXPECT(bdev_file_write(e.bf, 8195, b, sizeof(b)) == (int64_t)sizeof(b));
	EXPECT(bdev_file_sync(e.bf) == -PLAT_EIO);
	EXPECT(e.bf->wb_errors >= 1);
	EXPECT(bdev_file_sync(e.bf) == 0);                        /* reported once */
	EXPECT(bdev_file_write(e.bf, 8195, b, sizeof(b)) == (int64_t)sizeof(b));
	EXPECT(bdev_file_sync(e.bf) == 0);
	EXPECT(dev_has(&e, 8195, sizeof(b), 6));
	env_close(&e);
}

TEST(reclaim_under_budget)
{
	struct env e;
	EXPECT(env_open(&e, 1ull << 20) == 0);
	uint64_t step = 128 << 10;
	uint8_t *w = malloc(step), *r = malloc(step);
	for (uint64_t off = 0; off < DEV_BYTES; off += step) {
		fill(w, off, step, 7);
		EXPECT(bdev_file_write(e.bf, off, w, step) == (int64_t)step);
	}
	EXPECT(bdev_file_sync(e.bf) == 0);
	for (uint64_t off = 0; off < DEV_BYTES; off += step) {
		fill(w, off, step, 7);
		EXPECT(bdev_file_read(e.bf, off, r, step) == (int64_t)step);
		EXPECT(memcmp(r, w, step) == 0);
	}
	struct pcache_stats st;
	pcache_stats(e.pc, &st);
	EXPECT(st.reclaimed > 0);
	EXPECT(st.used_bytes <= (1ull << 20) + step);
	free(w);
	free(r);
	env_close(&e);
}

TEST_MAIN()
