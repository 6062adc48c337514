/*
 * Shell command `pc`: buffered and direct I/O on any disk through the
 * kernel page cache (platform/kernel/bdev_file.h), cache statistics, sync and drop.
 * The data written is the block layer's shared pattern (drivers/blk/
 * pattern.h) at arbitrary byte offsets, so `blk verify` and the host image
 * checks (tests/qemu/blkutil.py) agree with it.  Output lines are parsed by
 * tests/qemu/test_pcache.py: change them together.
 */
#include "platform/kernel/pcache_kernel.h"
#include "platform/kernel/bdev_file.h"
#include "platform/kernel/platform_kernel.h"
#include "drivers/blk/pattern.h"
#include "kernel/kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/shell.h"
#include "kernel/time.h"

#define PC_BUF_ORDER 8                       /* 1 MiB buffers */
#define PC_BUF_BYTES (PAGE_SIZE << PC_BUF_ORDER)
#define PC_STEP (PC_BUF_BYTES / 2)           /* leaves room to align patterns */

static uint8_t *pc_buf(void)
{
	uint64_t p = pmm_alloc_pages(PC_BUF_ORDER);
	if (!p)
		kprintf("pc: out of memory for a 1 MiB buffer\n");
	return p ? PHYS_TO_VIRT(p) : NULL;
}

static void pc_buf_free(uint8_t *b)
{
	if (b)
		pmm_free_pages(VIRT_TO_PHYS(b), PC_BUF_ORDER);
}

/* The pattern bytes of device range [off, off+n) (any alignment), built in
 * buf (n + 16 bytes); returns where they start. */
static uint8_t *pc_pattern(uint8_t *buf, uint64_t off, uint64_t n, uint64_t seed)
{
	uint64_t a = off & ~7ull, end = (off + n + 7) & ~7ull;
	pattern_fill(buf, a, end - a, seed);
	return buf + (off - a);
}

static int pc_file(const char *dev, struct bdev_file **bf)
{
	int rc = pcache_kernel_file(dev, bf);
	if (rc == -ENOENT)
		kprintf("pc: no device '%s' (see lsblk)\n", dev);
	else if (rc)
		kprintf("pc: %s: %s\n", dev, strerror(rc));
	return rc;
}

/* OFF LEN [SEED] in argv[0..n): each a number, LEN at least 1. */
static int pc_parse(char **argv, int n, unsigned long long *out)
{
	static const char *const names[] = { "OFF", "LEN", "SEED" };
	for (int i = 0; i < n; i++)
		if (shell_arg_num("pc", names[i], argv[i], i == 1 ? 1 : 0, ~0ull, &out[i]))
			return SHELL_REPORTED;
	return 0;
}

enum { PC_READ, PC_WRITE, PC_VERIFY };

static int pc_rw(int what, bool direct, const char *dev, uint64_t off, uint64_t len, uint64_t seed, bool fua)
{
	static const char *const names[] = { "read", "write", "verify" };
	struct bdev_file *bf;
	if (pc_file(dev, &bf))
		return 1;
	if (off > bf->size || len > bf->size - off) {
		kprintf("pc: %s: %llu+%llu is past the end of the device (%llu bytes)\n", dev,
			(unsigned long long)off, (unsigned long long)len, (unsigned long long)bf->size);
		return 1;
	}
	if (direct && ((off | len) & (bdev_file_block(bf) - 1))) {
		kprintf("pc: %s: direct I/O needs offset and length in %u-byte blocks\n", dev,
			bdev_file_block(bf));
		return 1;
	}
	uint8_t *buf = pc_buf(), *pat = pc_buf();
	int ret = 1;
	uint32_t crc = 0;
	uint64_t t0 = time_ns();
	if (!buf || !pat)
		goto out;
	uint64_t next_progress = 0;
	shell_progress_due(&next_progress);
	for (uint64_t done = 0; done < len;) {
		uint64_t pos = off + done, n = MIN((uint64_t)PC_STEP, len - done);
		int64_t r;
		if (shell_interrupted()) {
			kprintf("pc %s%s %s %llu+%llu: interrupted after %llu bytes\n", direct ? "dio " : "",
				names[what], dev, (unsigned long long)off, (unsigned long long)len,
				(unsigned long long)done);
			goto out;
		}
		if (shell_progress_due(&next_progress)) {
			char a[24], b[24];
			kfmt_size(a, sizeof(a), done, 0);
			kfmt_size(b, sizeof(b), len, 0);
			kprintf("pc %s%s %s: %s of %s (%llu%%)\n", direct ? "dio " : "", names[what], dev, a, b,
				(unsigned long long)(done * 100 / len));
		}
		if (what == PC_WRITE) {
			uint8_t *src = pc_pattern(pat, pos, n, seed);
			if (direct) {
				memcpy(buf, src, n);   /* buf is page aligned */
				r = bdev_file_dio_write(bf, pos, buf, n, fua);
			} else {
				r = bdev_file_write(bf, pos, src, n);
			}
		} else {
			r = direct ? bdev_file_dio_read(bf, pos, buf, n) : bdev_file_read(bf, pos, buf, n);
		}
		if (r < 0 || (uint64_t)r != n) {
			kprintf("pc: %s %s %llu+%llu failed at byte %llu: %s\n", names[what], dev,
				(unsigned long long)off, (unsigned long long)len, (unsigned long long)pos,
				r < 0 ? strerror((int)r) : "short transfer");
			goto out;
		}
		if (what == PC_READ)
			crc = pattern_crc32(crc, buf, n);
		if (what == PC_VERIFY) {
			uint8_t *want = pc_pattern(pat, pos, n, seed);
			for (uint64_t i = 0; i < n; i++)
				if (buf[i] != want[i]) {
					kprintf("pc verify %s %llu+%llu: MISMATCH at byte %llu: got 0x%02x want 0x%02x\n",
						dev, (unsigned long long)off, (unsigned long long)len,
						(unsigned long long)(pos + i), buf[i], want[i]);
					goto out;
				}
		}
		done += n;
	}
	uint64_t ms = (time_ns() - t0) / NS_PER_MS;
	if (what == PC_READ)
		kprintf("pc %s%s %s %llu+%llu: ok crc32=0x%08x (%llu ms)\n", direct ? "dio " : "", names[what], dev,
			(unsigned long long)off, (unsigned long long)len, crc, (unsigned long long)ms);
	else
		kprintf("pc %s%s %s %llu+%llu: ok (%llu ms)\n", direct ? "dio " : "", names[what], dev,
			(unsigned long long)off, (unsigned long long)len, (unsigned long long)ms);
	ret = 0;
out:
	pc_buf_free(buf);
	pc_buf_free(pat);
	return ret;
}

static void pc_stat(void)
{
	struct pcache *pc = pcache_kernel_pcache();
	struct pcache_stats st;
	struct plat_kernel_stats ks;
	pcache_stats(pc, &st);
	plat_kernel_stats(&ks);
	uint64_t wb = 0, wberr = 0, rd = 0, dio_rd = 0;
	struct bdev_file *bf;
	for (unsigned i = 0; (bf = pcache_kernel_file_at(i)); i++) {
		wb += plat_load(&bf->wb_end_ios);
		wberr += plat_load(&bf->wb_errors);
		rd += plat_load(&bf->read_bytes);
		dio_rd += plat_load(&bf->dio_read_bytes);
	}
	/* Read hit rate: buffered bytes returned vs bytes the device read for
	 * them (device reads minus direct reads; read-modify-write of partial
	 * blocks counts as a miss, self-tests' private files too). */
	uint64_t miss = ks.read_bytes > dio_rd ? ks.read_bytes - dio_rd : 0;
	uint64_t hit_pct = rd ? (miss >= rd ? 0 : (rd - miss) * 100 / rd) : 0;
	/* Exact KiB for the counters (tests compare them across commands);
	 * the budget, a fixed size, in the unit that reads best. */
	char budget[24];
	kfmt_size(budget, sizeof(budget), pcache_kernel_budget(), 0);
	kprintf("pcache: budget %s, cached %llu KiB in %llu folios, dirty %llu KiB\n", budget,
		(unsigned long long)(st.used_bytes >> 10), (unsigned long long)st.nr_folios,
		(unsigned long long)(st.dirty_bytes >> 10));
	kprintf("pcache: lookups %llu, inserts %llu, reclaimed %llu, throttled %llu, writeback runs %llu\n",
		(unsigned long long)st.lookups, (unsigned long long)st.inserts, (unsigned long long)st.reclaimed,
		(unsigned long long)st.throttled, (unsigned long long)st.wb_runs);
	kprintf("pcache: buffered reads %llu KiB, device reads for them %llu KiB, read hit rate %llu%%; "
		"device writes %llu KiB\n",
		(unsigned long long)(rd >> 10), (unsigned long long)(miss >> 10), (unsigned long long)hit_pct,
		(unsigned long long)(ks.write_bytes >> 10));
	kprintf("pcache: writeback completions %llu (errors %llu), bios %llu (failed %llu), "
		"deferred completions %llu (max batch %llu), poller rounds %llu\n",
		(unsigned long long)wb, (unsigned long long)wberr, (unsigned long long)ks.bios,
		(unsigned long long)ks.bios_failed, (unsigned long long)ks.completions_deferred,
		(unsigned long long)ks.max_batch, (unsigned long long)ks.polls);
	for (unsigned i = 0; (bf = pcache_kernel_file_at(i)); i++)
		kprintf("  %-10s %llu folios cached, %llu dirty\n", plat_bdev_name(bf->bdev),
			(unsigned long long)bf->ino.mapping.nr_folios,
			(unsigned long long)plat_load(&bf->ino.mapping.nr_dirty));
}

static int pc_sync_drop(const char *dev, bool drop)
{
	const char *what = drop ? "drop" : "sync";
	struct bdev_file *bf;
	int rc = 0;
	uint64_t t0 = time_ns();
	if (dev) {
		if (pc_file(dev, &bf))
			return 1;
		rc = drop ? bdev_file_drop(bf) : bdev_file_sync(bf);
	} else {
		for (unsigned i = 0; (bf = pcache_kernel_file_at(i)); i++) {
			int r = drop ? bdev_file_drop(bf) : bdev_file_sync(bf);
			if (r && !rc)
				rc = r;
		}
		if (drop)
			pcache_reclaim(pcache_kernel_pcache(), UINT64_MAX);
	}
	if (rc) {
		kprintf("pc %s %s: failed: %s\n", what, dev ? dev : "all", strerror(rc));
		return 1;
	}
	kprintf("pc %s %s: ok (%llu ms)\n", what, dev ? dev : "all",
		(unsigned long long)((time_ns() - t0) / NS_PER_MS));
	return 0;
}

static int cmd_pc(int argc, char **argv)
{
	unsigned long long v[3] = { 0, 0, 0 };
	if (!pcache_kernel_pcache()) {
		kprintf("pc: the page cache is not running\n");
		return 1;
	}
	if (argc < 2)
		return -EINVAL;
	const char *sub = argv[1];
	bool direct = strcmp(sub, "dio") == 0;
	if (direct) {
		argc--, argv++;
		if (argc < 2)
			return -EINVAL;
		sub = argv[1];
	}
	if (strcmp(sub, "read") == 0 && argc == 5)
		return pc_parse(argv + 3, 2, v) ?: pc_rw(PC_READ, direct, argv[2], v[0], v[1], 0, false);
	if (strcmp(sub, "write") == 0 && (argc == 6 || (direct && argc == 7 && strcmp(argv[6], "fua") == 0)))
		return pc_parse(argv + 3, 3, v) ?: pc_rw(PC_WRITE, direct, argv[2], v[0], v[1], v[2], argc == 7);
	if (strcmp(sub, "verify") == 0 && argc == 6)
		return pc_parse(argv + 3, 3, v) ?: pc_rw(PC_VERIFY, direct, argv[2], v[0], v[1], v[2], false);
	if (direct)
		return -EINVAL;
	if (strcmp(sub, "stat") == 0 && argc == 2) {
		pc_stat();
		return 0;
	}
	if ((strcmp(sub, "sync") == 0 || strcmp(sub, "drop") == 0) && argc <= 3)
		return pc_sync_drop(argc == 3 ? argv[2] : NULL, sub[0] == 'd');
	return -EINVAL;
}
SHELL_COMMAND(pc, "pc read DEV OFF LEN | pc write|verify DEV OFF LEN SEED | pc dio read DEV OFF LEN | "
		  "pc dio write DEV OFF LEN SEED [fua] | pc dio verify DEV OFF LEN SEED | "
		  "pc sync|drop [DEV] | pc stat",
	      "buffered and direct I/O through the page cache (Ctrl-C stops)", cmd_pc);
