/*
 * Shell commands for block devices: lsblk, blk (read, write, verify, flush,
 * trim, zero, mode, stress) and blkstat.  Output formats are parsed by the
 * qemu tests (tests/qemu/test_blk_*.py): change them together.
 */
#include "drivers/blk/blk.h"
#include "drivers/blk/pattern.h"
#include "kernel/shell.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"

#define BLKCMD_CHUNK_ORDER 8                       /* 1 MiB I/O buffer */
#define BLKCMD_CHUNK (PAGE_SIZE << BLKCMD_CHUNK_ORDER)

static struct blk_dev *blkcmd_dev(const char *name)
{
	struct blk_dev *d = blk_find(name);
	if (!d)
		kprintf("blk: no device '%s' (see lsblk)\n", name);
	return d;
}

static void blkcmd_fail(struct blk_dev *d, const char *what, uint64_t lba, uint64_t n, int rc, const char *err)
{
	if (err && err[0] && strcmp(err, strerror(rc)) != 0)
		kprintf("blk: %s: %s lba %llu+%llu failed: %s: %s\n", d->name, what,
			(unsigned long long)lba, (unsigned long long)n, strerror(rc), err);
	else
		kprintf("blk: %s: %s lba %llu+%llu failed: %s\n", d->name, what,
			(unsigned long long)lba, (unsigned long long)n, strerror(rc));
}

/* ---- lsblk ---- */

static void blkcmd_lsblk_line(struct blk_dev *d)
{
	char size[24];
	kfmt_size(size, sizeof(size), d->nblocks * d->lba_size, 1);   /* "1.0 GiB": scripts split on it */
	kprintf("%-10s  %-24s  %-20s  %10s  %4u  %6u  %5u  %-6s  %-3s  %-4s  %s\n", d->name,
		d->model[0] ? d->model : "-", d->serial[0] ? d->serial : "-", size, d->lba_size,
		d->nqueues, d->queue_depth, d->write_cache ? "yes" : "no", d->fua ? "yes" : "no",
		d->max_discard_blocks ? "yes" : "no", d->polling ? "poll" : "irq");
}

static int cmd_lsblk(int argc, char **argv)
{
	bool verbose = argc == 2 && strcmp(argv[1], "-v") == 0;
	if (argc > 2 || (argc == 2 && !verbose))
		return -EINVAL;
	kprintf("%-10s  %-24s  %-20s  %10s  %4s  %6s  %5s  %-6s  %-3s  %-4s  %s\n", "NAME", "MODEL", "SERIAL",
		"SIZE", "LBA", "QUEUES", "DEPTH", "WCACHE", "FUA", "TRIM", "MODE");
	for (unsigned i = 0; i < blk_count(); i++) {
		struct blk_dev *d = blk_get(i);
		blkcmd_lsblk_line(d);
		if (!verbose)
			continue;
		kprintf("  firmware %s, %llu blocks, max transfer %u B, %u segments, boundary %u, "
			"discard %u blocks, write-zeroes %u blocks%s\n",
			d->firmware[0] ? d->firmware : "-", (unsigned long long)d->nblocks, d->max_transfer,
			d->max_segments, d->virt_boundary, d->max_discard_blocks, d->max_write_zeroes_blocks,
			d->max_write_zeroes_blocks ? "" : " (emulated)");
		if (d->dead)
			kprintf("  dead: %s\n", d->dead_reason);
		if (d->ops->describe)
			d->ops->describe(d);
	}
	return 0;
}
SHELL_COMMAND(lsblk, "lsblk [-v]", "list block devices", cmd_lsblk);

/* ---- blk ---- */

static void *blkcmd_buf(void)
{
	uint64_t p = pmm_alloc_pages(BLKCMD_CHUNK_ORDER);
	if (!p)
		kprintf("blk: out of memory for a %llu KiB buffer\n", (unsigned long long)BLKCMD_CHUNK / 1024);
	return p ? PHYS_TO_VIRT(p) : NULL;
}

static void blkcmd_buf_free(void *b)
{
	if (b)
		pmm_free_pages(VIRT_TO_PHYS(b), BLKCMD_CHUNK_ORDER);
}

static void blkcmd_hexdump(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		kprintf("  %04zx:", i);
		for (size_t j = i; j < i + 16 && j < n; j++)
			kprintf(" %02x", p[j]);
		kprintf("\n");
	}
}

enum { BLKCMD_READ, BLKCMD_WRITE, BLKCMD_VERIFY };

/* read / write / verify over [lba, lba+count) in 1 MiB chunks. */
static int blkcmd_rw(struct blk_dev *d, int what, uint64_t lba, uint64_t count, uint64_t seed, uint32_t flags)
{
	static const char *const names[] = { "read", "write", "verify" };
	uint32_t per = (uint32_t)(BLKCMD_CHUNK / d->lba_size);
	uint8_t *buf = blkcmd_buf();
	uint32_t crc = 0;
	char err[96];
	uint64_t t0 = time_ns();
	int rc = 0;

	if (!buf)
		return 1;
	if (lba > d->nblocks || count > d->nblocks - lba) {
		kprintf("blk: %s: %s lba %llu+%llu failed: past end of device (%llu blocks)\n", d->name,
			names[what], (unsigned long long)lba, (unsigned long long)count,
			(unsigned long long)d->nblocks);
		blkcmd_buf_free(buf);
		return 1;
	}
	for (uint64_t done = 0; done < count;) {
		uint32_t n = (uint32_t)MIN((uint64_t)per, count - done);
		uint64_t off = (lba + done) * d->lba_size;
		size_t bytes = (size_t)n * d->lba_size;
		if (what == BLKCMD_WRITE) {
			pattern_fill(buf, off, bytes, seed);
			rc = blk_write(d, lba + done, n, buf, flags, err, sizeof(err));
		} else {
			rc = blk_read(d, lba + done, n, buf, err, sizeof(err));
		}
		if (rc) {
			blkcmd_fail(d, names[what == BLKCMD_WRITE], lba + done, n, rc, err);
			blkcmd_buf_free(buf);
			return 1;
		}
		if (what == BLKCMD_READ) {
			if (done == 0)
				blkcmd_hexdump(buf, MIN(bytes, (size_t)64));
			crc = pattern_crc32(crc, buf, bytes);
		} else if (what == BLKCMD_VERIFY) {
			uint64_t got, want;
			long bad = pattern_check(buf, off, bytes, seed, &got, &want);
			if (bad >= 0) {
				uint64_t at = off + (uint64_t)bad;
				kprintf("verify %s %llu+%llu: MISMATCH at lba %llu byte %llu: got 0x%016llx want 0x%016llx\n",
					d->name, (unsigned long long)lba, (unsigned long long)count,
					(unsigned long long)(at / d->lba_size), (unsigned long long)(at % d->lba_size),
					(unsigned long long)got, (unsigned long long)want);
				blkcmd_buf_free(buf);
				return 1;
			}
		}
		done += n;
	}
	blkcmd_buf_free(buf);
	uint64_t ms = (time_ns() - t0) / NS_PER_MS;
	if (what == BLKCMD_READ)
		kprintf("read %s %llu+%llu: ok crc32=0x%08x (%llu ms)\n", d->name, (unsigned long long)lba,
			(unsigned long long)count, crc, (unsigned long long)ms);
	else
		kprintf("%s %s %llu+%llu: ok (%llu ms)\n", names[what], d->name, (unsigned long long)lba,
			(unsigned long long)count, (unsigned long long)ms);
	return 0;
}

/* ---- blk stress ---- */

struct blkcmd_stress {
	struct blk_dev *dev;
	uint64_t first, nblocks;       /* this thread's region */
	uint64_t until_ns, seed;
	uint64_t ops, errors, mismatches;
	char last_error[128];
};

static void blkcmd_stress_worker(void *arg)
{
	struct blkcmd_stress *s = arg;
	struct blk_dev *d = s->dev;
	uint8_t *buf = blkcmd_buf();
	uint64_t rnd = s->seed * 0x9e3779b97f4a7c15ull + 1;
	uint32_t maxn = (uint32_t)MIN((uint64_t)(256 * 1024) / d->lba_size, s->nblocks);
	char err[96];

	if (!buf) {
		s->errors++;
		return;
	}
	while (time_ns() < s->until_ns) {
		rnd = pattern_splitmix64(rnd);
		uint32_t n = 1 + (uint32_t)(rnd % maxn);
		uint64_t lba = s->first + (rnd >> 20) % (s->nblocks - n + 1);
		size_t bytes = (size_t)n * d->lba_size;
		pattern_fill(buf, lba * d->lba_size, bytes, s->seed);
		int rc = blk_write(d, lba, n, buf, 0, err, sizeof(err));
		if (!rc) {
			memset(buf, 0, bytes);
			rc = blk_read(d, lba, n, buf, err, sizeof(err));
		}
		s->ops += 2;
		if (rc) {
			s->errors++;
			ksnprintf(s->last_error, sizeof(s->last_error), "lba %llu+%u: %s", (unsigned long long)lba, n, err);
			continue;
		}
		if (pattern_check(buf, lba * d->lba_size, bytes, s->seed, NULL, NULL) >= 0)
			s->mismatches++;
	}
	blkcmd_buf_free(buf);
}

static int blkcmd_stress(struct blk_dev *d, unsigned threads, unsigned secs)
{
	struct blkcmd_stress *st = kzalloc(sizeof(*st) * threads);
	struct thread **t = kzalloc(sizeof(*t) * threads);
	uint64_t span = MIN(d->nblocks, (uint64_t)(1ull << 30) / d->lba_size) / threads;
	uint64_t ops = 0, errors = 0, mismatches = 0;

	if (!st || !t || span < 8) {
		kprintf("blk: stress %s: out of memory or device too small\n", d->name);
		kfree(st);
		kfree(t);
		return 1;
	}
	uint64_t until = time_ns() + secs * NS_PER_S;
	for (unsigned i = 0; i < threads; i++) {
		st[i] = (struct blkcmd_stress){ .dev = d, .first = i * span, .nblocks = span,
						.until_ns = until, .seed = 0x5700 + i };
		t[i] = thread_create("blk-stress", blkcmd_stress_worker, &st[i], (int)(i % ncpus_online));
		if (!t[i])
			st[i].errors++;
	}
	for (unsigned i = 0; i < threads; i++) {
		if (t[i] && thread_join(t[i], (secs + 120) * NS_PER_S) != 0) {
			kprintf("blk: stress %s: thread %u did not finish within %u s\n", d->name, i, secs + 120);
			errors++;   /* leak its state rather than free it under it */
			continue;
		}
		ops += st[i].ops;
		errors += st[i].errors;
		mismatches += st[i].mismatches;
		if (st[i].last_error[0])
			kprintf("blk: stress %s: thread %u: last error: %s\n", d->name, i, st[i].last_error);
	}
	kprintf("stress %s: %llu ops, %llu errors, %llu mismatches\n", d->name, (unsigned long long)ops,
		(unsigned long long)errors, (unsigned long long)mismatches);
	kfree(t);
	if (!errors)
		kfree(st);
	return errors || mismatches ? 1 : 0;
}

static int blkcmd_num(const char *s, unsigned long long *v)
{
	return parse_u64(s, v) == 0 ? 0 : -EINVAL;
}

/* "key=N" argument; -EINVAL when it is not that key. */
static int blkcmd_kv(const char *arg, const char *key, unsigned long long *v)
{
	size_t n = strlen(key);
	if (strncmp(arg, key, n) != 0 || arg[n] != '=')
		return -EINVAL;
	return blkcmd_num(arg + n + 1, v);
}

static int cmd_blk(int argc, char **argv)
{
	unsigned long long lba = 0, count = 0, seed = 0;
	char err[96];
	int rc;

	if (argc < 3)
		return -EINVAL;
	const char *sub = argv[1];
	struct blk_dev *d = blkcmd_dev(argv[2]);
	if (!d)
		return 1;
	bool ranged = !strcmp(sub, "read") || !strcmp(sub, "write") || !strcmp(sub, "verify") ||
		      !strcmp(sub, "trim") || !strcmp(sub, "zero");
	if (ranged) {
		if (argc < 5 || blkcmd_num(argv[3], &lba) || blkcmd_num(argv[4], &count) || !count)
			return -EINVAL;
	}
	if (!strcmp(sub, "read")) {
		if (argc != 5)
			return -EINVAL;
		return blkcmd_rw(d, BLKCMD_READ, lba, count, 0, 0);
	}
	if (!strcmp(sub, "write") || !strcmp(sub, "verify")) {
		bool wr = sub[0] == 'w';
		bool fua = wr && argc == 7 && !strcmp(argv[6], "fua");
		if (argc != 6 + fua || blkcmd_num(argv[5], &seed))
			return -EINVAL;
		return blkcmd_rw(d, wr ? BLKCMD_WRITE : BLKCMD_VERIFY, lba, count, seed, fua ? BLK_F_FUA : 0);
	}
	if (!strcmp(sub, "trim") || !strcmp(sub, "zero")) {
		if (argc != 5 || count > 0xffffffffull)
			return -EINVAL;
		bool trim = sub[0] == 't';
		rc = trim ? blk_discard(d, lba, (uint32_t)count, err, sizeof(err))
			  : blk_write_zeroes(d, lba, (uint32_t)count, err, sizeof(err));
		if (rc) {
			blkcmd_fail(d, trim ? "trim" : "write-zeroes", lba, count, rc, err);
			return 1;
		}
		kprintf("%s %s %llu+%llu: ok\n", sub, d->name, lba, count);
		return 0;
	}
	if (!strcmp(sub, "flush")) {
		if (argc != 3)
			return -EINVAL;
		rc = blk_flush(d, err, sizeof(err));
		if (rc) {
			kprintf("blk: %s: flush failed: %s%s%s\n", d->name, strerror(rc), err[0] ? ": " : "", err);
			return 1;
		}
		kprintf("flush %s: ok\n", d->name);
		return 0;
	}
	if (!strcmp(sub, "mode")) {
		if (argc != 4 || (strcmp(argv[3], "irq") && strcmp(argv[3], "poll")))
			return -EINVAL;
		rc = blk_set_polling(d, argv[3][0] == 'p');
		if (rc) {
			kprintf("blk: %s: cannot switch to %s mode: %s\n", d->name, argv[3], strerror(rc));
			return 1;
		}
		kprintf("mode %s: %s\n", d->name, d->polling ? "poll" : "irq");
		return 0;
	}
	if (!strcmp(sub, "stress")) {
		unsigned long long threads = 2, secs = 5;
		for (int i = 3; i < argc; i++)
			if (blkcmd_kv(argv[i], "threads", &threads) && blkcmd_kv(argv[i], "secs", &secs))
				return -EINVAL;
		if (!threads || threads > 64 || !secs || secs > 3600)
			return -EINVAL;
		return blkcmd_stress(d, (unsigned)threads, (unsigned)secs);
	}
	return -EINVAL;
}
SHELL_COMMAND(blk, "blk read|write|verify|trim|zero DEV LBA COUNT [SEED [fua]] | blk flush DEV | "
	      "blk mode DEV irq|poll | blk stress DEV [threads=N] [secs=N]",
	      "block device I/O, pattern checks and stress", cmd_blk);

/* ---- blkstat ---- */

static void blkcmd_stat(struct blk_dev *d)
{
	struct blk_stats *s = &d->stats;
	kprintf("%s: read %llu, write %llu, flush %llu, discard %llu, write-zeroes %llu ops; "
		"%llu B read, %llu B written; errors %llu, splits %llu, merges %llu, requeues %llu\n",
		d->name, (unsigned long long)s->ops[0], (unsigned long long)s->ops[1],
		(unsigned long long)s->ops[2], (unsigned long long)s->ops[3], (unsigned long long)s->ops[4],
		(unsigned long long)s->bytes_read, (unsigned long long)s->bytes_written,
		(unsigned long long)s->errors, (unsigned long long)s->splits, (unsigned long long)s->merges,
		(unsigned long long)s->requeues);
	kprintf("  latency:");
	for (unsigned b = 0; b < BLK_LAT_BUCKETS; b++)
		if (s->lat_us_log2[b])
			kprintf(" <%lluus:%llu", 1ull << b, (unsigned long long)s->lat_us_log2[b]);
	kprintf("\n");
	kprintf("  polling: %llu waits slept on the interrupt after spinning %llu us (hybrid)\n",
		(unsigned long long)s->poll_sleeps, (unsigned long long)(blk_poll_spin_budget(d, 1) / 1000));
}

static int cmd_blkstat(int argc, char **argv)
{
	if (argc > 2)
		return -EINVAL;
	if (argc == 2) {
		struct blk_dev *d = blkcmd_dev(argv[1]);
		if (!d)
			return 1;
		blkcmd_stat(d);
		return 0;
	}
	for (unsigned i = 0; i < blk_count(); i++)
		blkcmd_stat(blk_get(i));
	if (!blk_count())
		kprintf("no block devices\n");
	return 0;
}
SHELL_COMMAND(blkstat, "blkstat [DEV]", "block device statistics", cmd_blkstat);
