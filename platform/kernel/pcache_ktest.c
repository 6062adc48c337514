/*
 * Self-tests of the iomap core and page cache running in the kernel
 * (suite "iomap"): block-device files (platform/kernel/bdev_file.h) on memdisks and,
 * when present, on a real NVMe/AHCI disk; the kernel platform's deferred
 * completions, polling, error propagation, reclaim and concurrency.
 */
#include "platform/kernel/bdev_file.h"
#include "platform/kernel/pcache_kernel.h"
#include "platform/kernel/platform_kernel.h"
#include "drivers/blk/blk.h"
#include "drivers/blk/memdisk.h"
#include "drivers/blk/pattern.h"
#include "kernel/kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/selftest.h"
#include "kernel/smp.h"
#include "kernel/time.h"

#define KT_BUF_ORDER 8                      /* 1 MiB */
#define KT_BUF_BYTES (PAGE_SIZE << KT_BUF_ORDER)

struct kt {
	struct blk_dev *d;
	struct plat_bdev *b;
	struct bdev_file *bf;
	struct pcache *own_pc;              /* a private small cache, or NULL */
};

static uint8_t *kt_buf(void)
{
	uint64_t p = pmm_alloc_pages(KT_BUF_ORDER);
	return p ? PHYS_TO_VIRT(p) : NULL;
}

static void kt_buf_free(uint8_t *b)
{
	if (b)
		pmm_free_pages(VIRT_TO_PHYS(b), KT_BUF_ORDER);
}

/* Pattern bytes of device range [off, off+n), any alignment, built in buf
 * (n + 16 bytes). */
static uint8_t *kt_pattern(uint8_t *buf, uint64_t off, uint64_t n, uint64_t seed)
{
	uint64_t a = off & ~7ull;
	pattern_fill(buf, a, ((off + n + 7) & ~7ull) - a, seed);
	return buf + (off - a);
}

/* A fresh memdisk (names are never reused: devices stay registered). */
static struct blk_dev *kt_memdisk(uint64_t size, bool polling)
{
	static unsigned seq;
	char name[16];
	struct memdisk_opts o = { 0 };
	o.size = size;
	o.lba_size = 512;
	o.write_cache = true;
	ksnprintf(name, sizeof(name), "pcmem%u", __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	struct blk_dev *d = memdisk_create(name, &o);
	if (d && polling && blk_set_polling(d, true) != 0)
		return NULL;            /* a test that asked for polling must not run without it */
	return d;
}

/* budget 0: the kernel-wide cache, else a private one of that size. */
static int kt_open(struct kt *t, struct blk_dev *d, uint64_t budget)
{
	memset(t, 0, sizeof(*t));
	struct pcache *pc = pcache_kernel_pcache();
	if (!d || !pc)
		return -ENODEV;
	t->d = d;
	if (budget) {
		struct pcache_config cfg = { budget, 0, 0, 1, 50 * NS_PER_MS };
		int ret = pcache_create(&cfg, &t->own_pc);
		if (ret)
			return ret;
		pc = t->own_pc;
	}
	t->b = plat_kernel_bdev_open(d);
	if (!t->b)
		return -ENOMEM;
	return bdev_file_open(pc, t->b, pcache_kernel_workq(), &t->bf);
}

static int kt_close(struct kt *t)
{
	int ret = t->bf ? bdev_file_close(t->bf) : 0;
	if (t->b)
		plat_bdev_close(t->b);
	if (t->own_pc)
		pcache_destroy(t->own_pc);
	return ret;
}

/* The device itself (blk_read, no cache) holds the pattern over the range. */
static bool kt_device_has(struct blk_dev *d, uint64_t off, uint64_t len, uint64_t seed, uint8_t *buf,
			  uint8_t *pat)
{
	uint32_t lbs = d->lba_size;
	char err[96];
	for (uint64_t done = 0; done < len;) {
		uint64_t pos = off + done, lba = pos / lbs, skip = pos % lbs;
		uint64_t n = MIN(len - done, KT_BUF_BYTES / 2 - skip);
		uint32_t nb = (uint32_t)((skip + n + lbs - 1) / lbs);
		if (blk_read(d, lba, nb, buf, err, sizeof(err))) {
			kprintf("iomap test: blk_read %s lba %llu failed: %s\n", d->name, (unsigned long long)lba, err);
			return false;
		}
		if (memcmp(buf + skip, kt_pattern(pat, pos, n, seed), n)) {
			kprintf("iomap test: %s: device bytes %llu+%llu differ from seed %llu\n", d->name,
				(unsigned long long)pos, (unsigned long long)n, (unsigned long long)seed);
			return false;
		}
		done += n;
	}
	return true;
}

/* Buffered write unaligned -> read back from the cache -> sync -> drop ->
 * read back through the cache from the device and with blk_read. */
static void kt_roundtrip(bool *st_failed, struct kt *t, uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *buf = kt_buf(), *pat = kt_buf();
	ST_EXPECT(buf && pat && len <= KT_BUF_BYTES / 2);
	if (!buf || !pat)
		goto out;
	uint64_t bios0 = 0;
	struct plat_kernel_stats ks;
	plat_kernel_stats(&ks);
	bios0 = ks.bios;
	ST_EXPECT(bdev_file_write(t->bf, off, kt_pattern(pat, off, len, seed), len) == (int64_t)len);
	ST_EXPECT(plat_load(&t->bf->ino.mapping.nr_dirty) > 0);
	memset(buf, 0, len);
	ST_EXPECT(bdev_file_read(t->bf, off, buf, len) == (int64_t)len);
	ST_EXPECT(memcmp(buf, kt_pattern(pat, off, len, seed), len) == 0);
	ST_EXPECT(bdev_file_sync(t->bf) == 0);
	ST_EXPECT(plat_load(&t->bf->ino.mapping.nr_dirty) == 0);
	ST_EXPECT(kt_device_has(t->d, off, len, seed, buf, pat));
	ST_EXPECT(bdev_file_drop(t->bf) == 0);
	ST_EXPECT(t->bf->ino.mapping.nr_folios == 0);
	memset(buf, 0, len);
	ST_EXPECT(bdev_file_read(t->bf, off, buf, len) == (int64_t)len);
	ST_EXPECT(memcmp(buf, kt_pattern(pat, off, len, seed), len) == 0);
	plat_kernel_stats(&ks);
	ST_EXPECT(ks.bios > bios0);     /* the device was really used */
out:
	kt_buf_free(buf);
	kt_buf_free(pat);
}

SELFTEST(iomap, memdisk_roundtrip)
{
	struct kt t;
	ST_EXPECT(kt_open(&t, kt_memdisk(4 << 20, false), 0) == 0);
	if (t.bf) {
		kt_roundtrip(st_failed, &t, 1000, 100000, 21);        /* unaligned both ends */
		kt_roundtrip(st_failed, &t, (4 << 20) - 777, 777, 22); /* up to the device end */
		uint8_t c = 0;
		ST_EXPECT(bdev_file_write(t.bf, 4 << 20, &c, 1) == -PLAT_ENOSPC);
		ST_EXPECT(bdev_file_read(t.bf, 4 << 20, &c, 1) == 0);
	}
	ST_EXPECT(kt_close(&t) == 0);
}

/* Discard reaches the block layer as BLK_OP_DISCARD (the memdisk then
 * reads zeroes); a device without discard answers -ENOTSUP. */
SELFTEST(iomap, discard)
{
	struct memdisk_opts o = { 0 };
	o.size = 1 << 20;
	o.lba_size = 512;
	o.max_discard_blocks = 64;
	struct blk_dev *d = memdisk_create("pcdisc0", &o);
	ST_EXPECT(d != NULL);
	if (!d)
		return;
	struct plat_bdev *b = plat_kernel_bdev_open(d);
	uint8_t *buf = kt_buf();
	ST_EXPECT(b && buf);
	if (!b || !buf)
		return;
	memset(buf, 0xab, 65536);
	ST_EXPECT(plat_bdev_rw(b, PLAT_BIO_WRITE, 0, buf, 65536) == 0);
	ST_EXPECT(plat_bdev_discard(b, 4096, 40960) == 0);   /* split: 80 blocks > 64 */
	ST_EXPECT(*memdisk_byte(d, 4095) == 0xab && *memdisk_byte(d, 4096) == 0);
	ST_EXPECT(*memdisk_byte(d, 45055) == 0 && *memdisk_byte(d, 45056) == 0xab);
	plat_bdev_close(b);
	kt_buf_free(buf);
	struct plat_bdev *nb = plat_kernel_bdev_open(kt_memdisk(1 << 20, false));
	ST_EXPECT(nb && plat_bdev_discard(nb, 0, 4096) == -PLAT_ENOTSUP);
	if (nb)
		plat_bdev_close(nb);
}

/* H6 / COW-31: on a device in polling mode nothing completes unless someone
 * polls; buffered and direct I/O, background writeback and fsync must still
 * finish, and every command must have been completed by polling (the
 * memdisk counts them).  A waiter that does not poll hangs this test: the
 * runner then fails it after its deadline (selftest.c), the run goes on. */
SELFTEST(iomap, memdisk_polled)
{
	struct kt t;
	struct memdisk_counters c;
	ST_EXPECT(kt_open(&t, kt_memdisk(2 << 20, true), 0) == 0);
	if (t.bf) {
		ST_EXPECT(t.d->polling);
		memdisk_counters(t.d, &c, true);
		kt_roundtrip(st_failed, &t, 4095, 70001, 23);
	}
	ST_EXPECT(kt_close(&t) == 0);
	if (t.bf) {
		memdisk_counters(t.d, &c, false);
		ST_EXPECT(c.cmds > 0 && c.polled == c.cmds);
	}
}

/* Direct I/O writes back and invalidates the cache around it: a buffered
 * read after a direct write sees the new data, a direct read after a
 * buffered write sees the buffered data. */
SELFTEST(iomap, dio_coherency)
{
	struct kt t;
	uint8_t *buf = kt_buf(), *pat = kt_buf();
	ST_EXPECT(buf && pat);
	ST_EXPECT(kt_open(&t, kt_memdisk(2 << 20, false), 0) == 0);
	if (!t.bf || !buf || !pat)
		goto out;
	uint64_t off = 64 << 10, len = 128 << 10;
	ST_EXPECT(bdev_file_write(t.bf, off, kt_pattern(pat, off, len, 31), len) == (int64_t)len);
	ST_EXPECT(bdev_file_read(t.bf, off, buf, len) == (int64_t)len);        /* cached, dirty */
	memcpy(buf, kt_pattern(pat, off, len, 32), len);
	ST_EXPECT(bdev_file_dio_write(t.bf, off, buf, len, false) == (int64_t)len);
	memset(buf, 0, len);
	ST_EXPECT(bdev_file_read(t.bf, off, buf, len) == (int64_t)len);
	ST_EXPECT(memcmp(buf, kt_pattern(pat, off, len, 32), len) == 0);
	ST_EXPECT(kt_device_has(t.d, off, len, 32, buf, pat));
	/* buffered (unaligned, dirty in the cache) then direct read */
	ST_EXPECT(bdev_file_write(t.bf, off + 100, kt_pattern(pat, off + 100, 5000, 33), 5000) == 5000);
	ST_EXPECT(bdev_file_dio_read(t.bf, off, buf, 8192) == 8192);
	ST_EXPECT(memcmp(buf + 100, kt_pattern(pat, off + 100, 5000, 33), 5000) == 0);
	ST_EXPECT(bdev_file_dio_read(t.bf, off + 1, buf, 4096) == -PLAT_EINVAL);
out:
	ST_EXPECT(kt_close(&t) == 0);
	kt_buf_free(buf);
	kt_buf_free(pat);
}

/* A failed writeback reaches fsync once (then the error is consumed), and
 * the filesystem's end_io hook saw the error. */
SELFTEST(iomap, writeback_error)
{
	struct kt t;
	uint8_t *pat = kt_buf();
	ST_EXPECT(pat != NULL);
	ST_EXPECT(kt_open(&t, kt_memdisk(2 << 20, false), 0) == 0);
	if (!t.bf || !pat)
		goto out;
	memdisk_inject(t.d, BLK_OP_WRITE, 0, 4096, 1, -EIO, "injected write fault");
	ST_EXPECT(bdev_file_write(t.bf, 8192 + 3, kt_pattern(pat, 8192 + 3, 9000, 41), 9000) == 9000);
	ST_EXPECT(bdev_file_sync(t.bf) == -PLAT_EIO);
	ST_EXPECT(plat_load(&t.bf->wb_errors) >= 1);
	ST_EXPECT(bdev_file_sync(t.bf) == 0);
	memdisk_inject(t.d, BLK_OP_WRITE, 0, 0, 0, 0, NULL);
	/* The device recovered: a rewrite reaches it. */
	ST_EXPECT(bdev_file_write(t.bf, 8192 + 3, kt_pattern(pat, 8192 + 3, 9000, 42), 9000) == 9000);
	ST_EXPECT(bdev_file_sync(t.bf) == 0);
out:
	kt_close(&t);
	kt_buf_free(pat);
}

/* 16 MiB through a 2 MiB cache: clean folios are reclaimed, the budget
 * holds, and every byte still reads back right. */
SELFTEST(iomap, reclaim_small_budget)
{
	struct kt t;
	uint8_t *buf = kt_buf(), *pat = kt_buf();
	uint64_t size = 16 << 20, step = 256 << 10, budget = 2 << 20;
	ST_EXPECT(buf && pat);
	ST_EXPECT(kt_open(&t, kt_memdisk(size, false), budget) == 0);
	if (!t.bf || !buf || !pat)
		goto out;
	uint64_t peak = 0;
	struct pcache_stats st;
	for (uint64_t off = 0; off < size; off += step) {
		ST_EXPECT(bdev_file_write(t.bf, off, kt_pattern(pat, off, step, 51), step) == (int64_t)step);
		pcache_stats(t.own_pc, &st);
		peak = MAX(peak, st.used_bytes);
	}
	ST_EXPECT(bdev_file_sync(t.bf) == 0);
	for (uint64_t off = 0; off < size; off += step) {
		ST_EXPECT(bdev_file_read(t.bf, off, buf, step) == (int64_t)step);
		ST_EXPECT(memcmp(buf, kt_pattern(pat, off, step, 51), step) == 0);
		pcache_stats(t.own_pc, &st);
		peak = MAX(peak, st.used_bytes);
	}
	pcache_stats(t.own_pc, &st);
	ST_EXPECT(st.reclaimed > 0);
	/* Slack: folios being filled by the current call may overshoot. */
	ST_EXPECT(peak <= budget + step + (128 << 10));
	if (peak > budget + step + (128 << 10))
		kprintf("iomap test: cache peaked at %llu bytes, budget %llu\n", (unsigned long long)peak,
			(unsigned long long)budget);
out:
	ST_EXPECT(kt_close(&t) == 0);
	kt_buf_free(buf);
	kt_buf_free(pat);
}

/* Writers on every CPU into interleaved, unaligned ranges of one file. */
#define KT_WRITERS 4
#define KT_SLICE (96u << 10)

struct kt_writer {
	struct bdev_file *bf;
	unsigned id;
	int err;
};

static void kt_writer_thread(void *arg)
{
	struct kt_writer *w = arg;
	uint8_t *pat = kt_buf();
	if (!pat) {
		w->err = -ENOMEM;
		return;
	}
	/* Slices share folios at their edges (offsets not 4 KiB aligned). */
	for (unsigned round = 0; round < 4 && !w->err; round++) {
		uint64_t off = 1000 + (uint64_t)(round * KT_WRITERS + w->id) * KT_SLICE;
		if (bdev_file_write(w->bf, off, kt_pattern(pat, off, KT_SLICE, 61), KT_SLICE) != KT_SLICE)
			w->err = -EIO;
	}
	kt_buf_free(pat);
}

SELFTEST(iomap, concurrent_writers)
{
	struct kt t;
	uint8_t *buf = kt_buf(), *pat = kt_buf();
	struct kt_writer w[KT_WRITERS];
	struct thread *th[KT_WRITERS];
	ST_EXPECT(buf && pat);
	ST_EXPECT(kt_open(&t, kt_memdisk(8 << 20, false), 0) == 0);
	if (!t.bf || !buf || !pat)
		goto out;
	for (unsigned i = 0; i < KT_WRITERS; i++) {
		w[i] = (struct kt_writer){ t.bf, i, 0 };
		th[i] = thread_create("iomap-test-w", kt_writer_thread, &w[i], (int)(i % ncpus_online));
		ST_EXPECT(th[i] != NULL);
	}
	for (unsigned i = 0; i < KT_WRITERS; i++)
		if (th[i]) {
			ST_EXPECT(thread_join(th[i], 60 * NS_PER_S) == 0);
			ST_EXPECT(w[i].err == 0);
		}
	uint64_t len = 4ull * KT_WRITERS * KT_SLICE;
	ST_EXPECT(bdev_file_sync(t.bf) == 0);
	ST_EXPECT(kt_device_has(t.d, 1000, len, 61, buf, pat));
out:
	ST_EXPECT(kt_close(&t) == 0);
	kt_buf_free(buf);
	kt_buf_free(pat);
}

/* The same round trip on a real disk (the first NVMe or AHCI one), near
 * its end, restoring what was there. */
SELFTEST(iomap, real_disk_roundtrip)
{
	struct blk_dev *d = NULL;
	for (unsigned i = 0; i < blk_count() && !d; i++) {
		struct blk_dev *c = blk_get(i);
		if (!c->dead && (strncmp(c->name, "nvme", 4) == 0 || strncmp(c->name, "sata", 4) == 0) &&
		    c->nblocks * c->lba_size >= (8u << 20))
			d = c;
	}
	if (!d)
		ST_SKIP("no NVMe or AHCI disk of 8 MiB or more");
	uint64_t size = d->nblocks * d->lba_size, start = (size - (1 << 20)) & ~(uint64_t)4095;
	uint8_t *save = kt_buf();
	char err[96];
	uint32_t nb = (uint32_t)((256u << 10) / d->lba_size);
	ST_EXPECT(save != NULL);
	if (!save)
		return;
	ST_EXPECT(blk_read(d, start / d->lba_size, nb, save, err, sizeof(err)) == 0);
	struct kt t;
	/* A private cache: the shell's cached file of this disk must not see
	 * our writes behind its back. */
	ST_EXPECT(kt_open(&t, d, 4 << 20) == 0);
	if (t.bf) {
		kprintf("iomap test: real-disk round trip on %s at byte %llu\n", d->name, (unsigned long long)start);
		kt_roundtrip(st_failed, &t, start + 513, 200000, 71);
	}
	ST_EXPECT(kt_close(&t) == 0);
	ST_EXPECT(blk_write(d, start / d->lba_size, nb, save, 0, err, sizeof(err)) == 0);
	kt_buf_free(save);
	/* With iomap_debug the core checked every mapping and lock order. */
	ST_EXPECT(iomap_bad_mappings == 0);
	ST_EXPECT(iomap_lockdep_violations == 0);
}
