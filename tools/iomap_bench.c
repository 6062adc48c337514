/*
 * iomap micro-benchmark (make bench).  Prints machine-readable lines:
 *   bench iomap NAME key=value ...
 * Buffered sequential write and cached read throughput against a plain
 * memcpy of the same bytes; cold read from the device; direct I/O overhead
 * per 4 KiB operation against the raw block device; page-cache index
 * lookups with millions of entries.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/host/testfs.h"
#include "pcache/pc_index.h"

#define MB (1ull << 20)

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static double memcpy_gbs(uint8_t *dst, const uint8_t *src, uint64_t total, uint64_t chunk, uint64_t span)
{
	uint64_t t0 = plat_time_ns();
	for (uint64_t off = 0; off < total; off += chunk)
		memcpy(dst + (off % span), src + (off % span), chunk);
	__asm__ volatile("" ::: "memory");
	return (double)total / secs(plat_time_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t file = (argc > 1 ? strtoull(argv[1], NULL, 0) : 256) * MB;
	uint64_t chunk = 1 * MB;
	struct tfs_config cfg = { .dev_bytes = 2 * file + 64 * MB, .blkbits = 12, .max_folio_order = 9,
				  .bdev_threads = 4, .wq_threads = 2, .max_file_bytes = file };
	struct tfs *fs;
	/* Budget: 4x the file, so the dirty limit (budget / 2) is never hit
	 * and the write measures the cache path; fsync is timed separately. */
	if (tfs_create(&cfg, 4 * file, 0, &fs)) {
		fprintf(stderr, "tfs_create failed\n");
		return 1;
	}
	struct tfs_inode *ti = tfs_inode_new(fs);
	uint8_t *src = malloc(file), *dst = malloc(file);
	for (uint64_t i = 0; i < file; i++)
		src[i] = (uint8_t)(i * 31 + (i >> 12));
	memset(dst, 0, file);

	/* Reference: memcpy of the same bytes in the same chunks (buffers
	 * already faulted in), file-sized so caches behave alike. */
	double mc = memcpy_gbs(dst, src, file, chunk, file);
	mc = memcpy_gbs(dst, src, file, chunk, file);
	/* And into memory that was never touched, as a cache must. */
	uint8_t *fresh = malloc(file);
	double mc_fresh = memcpy_gbs(fresh, src, file, chunk, file);
	free(fresh);

	uint64_t t0 = plat_time_ns();
	for (uint64_t off = 0; off < file; off += chunk)
		if (tfs_write(ti, off, src + off, chunk) != (int64_t)chunk)
			return 2;
	uint64_t t1 = plat_time_ns();
	double wr = (double)file / secs(t1 - t0) / 1e9;
	if (getenv("BENCH_WRITE_ONLY"))
		return 0;
	int err = tfs_fsync(ti);
	uint64_t t2 = plat_time_ns();
	double wr_sync = (double)file / secs(t2 - t0) / 1e9;
	printf("bench iomap buffered_seq_write bytes=%llu chunk=%llu gbps=%.3f memcpy_gbps=%.3f ratio=%.3f "
	       "memcpy_fresh_gbps=%.3f ratio_fresh=%.3f with_fsync_gbps=%.3f fsync_err=%d\n",
	       (unsigned long long)file, (unsigned long long)chunk, wr, mc, wr / mc, mc_fresh, wr / mc_fresh,
	       wr_sync, err);

	/* Cached read (twice: the first pass may still find writeback tags). */
	double rd = 0;
	for (int pass = 0; pass < 3; pass++) {
		t0 = plat_time_ns();
		for (uint64_t off = 0; off < file; off += chunk)
			if (tfs_read(ti, off, dst + off, chunk) != (int64_t)chunk)
				return 3;
		rd = (double)file / secs(plat_time_ns() - t0) / 1e9;
	}
	bool ok = memcmp(dst, src, file) == 0;
	printf("bench iomap buffered_cached_read bytes=%llu chunk=%llu gbps=%.3f memcpy_gbps=%.3f ratio=%.3f verify=%s\n",
	       (unsigned long long)file, (unsigned long long)chunk, rd, mc, rd / mc, ok ? "ok" : "FAIL");

	/* Small cached reads (4 KiB): per-call overhead. */
	uint64_t n4 = 200000;
	t0 = plat_time_ns();
	for (uint64_t i = 0; i < n4; i++) {
		uint64_t off = (i * 4096 * 7) % file;
		tfs_read(ti, off, dst, 4096);
	}
	double ns4 = (double)(plat_time_ns() - t0) / (double)n4;
	printf("bench iomap buffered_cached_read_4k ops=%llu ns_per_op=%.1f\n", (unsigned long long)n4, ns4);

	/* Cold read: drop the cache, read through readahead. */
	pcache_invalidate_range(&ti->ino.mapping, 0, UINT64_MAX, false);
	t0 = plat_time_ns();
	for (uint64_t off = 0; off < file; off += chunk)
		tfs_read(ti, off, dst + off, chunk);
	double cold = (double)file / secs(plat_time_ns() - t0) / 1e9;
	ok = memcmp(dst, src, file) == 0;
	printf("bench iomap buffered_cold_read bytes=%llu gbps=%.3f verify=%s\n", (unsigned long long)file, cold,
	       ok ? "ok" : "FAIL");

	/* Direct I/O 4 KiB vs the raw device (same device offsets). */
	pcache_invalidate_range(&ti->ino.mapping, 0, UINT64_MAX, false);
	uint8_t *b4 = plat_alloc_pages(4096);
	uint64_t nd = 20000, span = file / 4096;
	/* Alternate DIO and raw operations on the same block so drift in the
	 * host device cancels out. */
	uint64_t dio_r = 0, raw_r = 0, dio_w = 0, raw_w = 0;
	for (uint64_t i = 0; i < nd; i++) {
		uint64_t blk = (i * 7919) % span;
		struct tfs_blk k = tfs_blk_get(ti, blk * 4096);
		uint64_t a = plat_time_ns();
		tfs_dio_read(ti, blk * 4096, b4, 4096);
		uint64_t b = plat_time_ns();
		plat_bdev_rw(fs->bdev, PLAT_BIO_READ, k.addr * 4096, b4, 4096);
		uint64_t c = plat_time_ns();
		tfs_dio_write(ti, blk * 4096, b4, 4096, 0);
		uint64_t d = plat_time_ns();
		plat_bdev_rw(fs->bdev, PLAT_BIO_WRITE, k.addr * 4096, b4, 4096);
		uint64_t e = plat_time_ns();
		dio_r += b - a;
		raw_r += c - b;
		dio_w += d - c;
		raw_w += e - d;
	}
	printf("bench iomap dio_read_4k ops=%llu ns_per_op=%.1f raw_ns_per_op=%.1f overhead_ns=%.1f\n",
	       (unsigned long long)nd, (double)dio_r / nd, (double)raw_r / nd, ((double)dio_r - (double)raw_r) / nd);
	printf("bench iomap dio_write_4k ops=%llu ns_per_op=%.1f raw_ns_per_op=%.1f overhead_ns=%.1f\n",
	       (unsigned long long)nd, (double)dio_w / nd, (double)raw_w / nd, ((double)dio_w - (double)raw_w) / nd);
	plat_free_pages(b4, 4096);
	tfs_inode_free(ti);
	tfs_destroy(fs);

	/* Index with 4 million order-0 entries (fake folios, no data). */
	struct pcache_mapping m = { 0 };
	m.tree_lock = plat_mutex_new("bench");
	uint64_t nf = 4ull << 20;
	struct folio *fo = calloc(nf, sizeof(*fo));
	t0 = plat_time_ns();
	for (uint64_t i = 0; i < nf; i++) {
		fo[i].index = i;
		pc_index_insert(&m, &fo[i]);
	}
	t1 = plat_time_ns();
	uint64_t hit = 0;
	for (uint64_t i = 0; i < nf; i++)
		hit += pc_index_lookup(&m, (i * 2654435761u) % nf) != NULL;
	t2 = plat_time_ns();
	for (uint64_t i = 0; i < nf; i += 4096)
		pc_index_tag(&m, &fo[i], PCACHE_TAG_DIRTY, true);
	struct folio *out[2048];
	uint64_t t3 = plat_time_ns();
	unsigned tagged = pc_index_gang(&m, 0, UINT64_MAX, PCACHE_TAG_DIRTY, out, 2048);
	uint64_t t4 = plat_time_ns();
	printf("bench iomap index_4m insert_ns=%.1f random_lookup_ns=%.1f hits=%llu dirty_gang_us=%.1f tagged=%u\n",
	       (double)(t1 - t0) / (double)nf, (double)(t2 - t1) / (double)nf, (unsigned long long)hit,
	       (double)(t4 - t3) / 1000.0, tagged);
	for (uint64_t i = 0; i < nf; i++)
		pc_index_delete(&m, &fo[i]);
	free(fo);
	free(src);
	free(dst);
	return 0;
}
