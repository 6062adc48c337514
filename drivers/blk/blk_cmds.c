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
	uint64_t next_progress = 0;
	shell_progress_due(&next_progress);
	for (uint64_t done = 0; done < count;) {
		uint32_t n = (uint32_t)MIN((uint64_t)per, count - done);
		if (shell_interrupted()) {
			kprintf("%s %s %llu+%llu: interrupted after %llu blocks\n", names[what], d->name,
				(unsigned long long)lba, (unsigned long long)count, (unsigned long long)done);
			blkcmd_buf_free(buf);
			return 1;
		}
		if (shell_progress_due(&next_progress))
			kprintf("%s %s: %llu of %llu blocks (%llu%%)\n", names[what], d->name,
				(unsigned long long)done, (unsigned long long)count,
				(unsigned long long)(done * 100 / count));
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
	while (time_ns() < s->until_ns && !shell_interrupted()) {
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

struct blkcmd_stress_run {
	struct blk_dev *dev;
	struct blkcmd_stress *st;
	unsigned threads, secs;
	uint64_t t0;
};

static void blkcmd_stress_progress(void *arg)
{
	struct blkcmd_stress_run *r = arg;
	uint64_t ops = 0, errors = 0;
	for (unsigned i = 0; i < r->threads; i++) {
		ops += __atomic_load_n(&r->st[i].ops, __ATOMIC_RELAXED);
		errors += __atomic_load_n(&r->st[i].errors, __ATOMIC_RELAXED);
	}
	kprintf("stress %s: %llu of %u s, %llu ops, %llu errors so far\n", r->dev->name,
		(unsigned long long)((time_ns() - r->t0) / NS_PER_S), r->secs, (unsigned long long)ops,
		(unsigned long long)errors);
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
	struct blkcmd_stress_run run = { d, st, threads, secs, time_ns() };
	for (unsigned i = 0; i < threads; i++) {
		if (t[i] && shell_join_progress(t[i], (secs + 120) * NS_PER_S, blkcmd_stress_progress, &run) != 0) {
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
	bool stopped = shell_interrupted();
	if (stopped)
		kprintf("stress %s: interrupted after %llu of %u s\n", d->name,
			(unsigned long long)((time_ns() - run.t0) / NS_PER_S), secs);
	kprintf("stress %s: %llu ops, %llu errors, %llu mismatches\n", d->name, (unsigned long long)ops,
		(unsigned long long)errors, (unsigned long long)mismatches);
	kfree(t);
	if (!errors)
		kfree(st);
	return errors || mismatches || stopped ? 1 : 0;
}

/* LBA and COUNT of a ranged subcommand: numbers, COUNT at least 1, and the
 * range inside the device.  Prints why not and returns SHELL_REPORTED. */
static int blkcmd_range(struct blk_dev *d, char **argv, unsigned long long *lba, unsigned long long *count)
{
	if (d->nblocks == 0) {
		kprintf("blk: %s has no blocks\n", d->name);
		return SHELL_REPORTED;
	}
	if (shell_arg_num("blk", "LBA", argv[3], 0, ~0ull, lba) ||
	    shell_arg_num("blk", "COUNT", argv[4], 1, ~0ull, count))
		return SHELL_REPORTED;
	if (*lba >= d->nblocks) {
		kprintf("blk: LBA '%s' is past the end of %s (%llu blocks: 0..%llu)\n", argv[3], d->name,
			(unsigned long long)d->nblocks, (unsigned long long)d->nblocks - 1);
		return SHELL_REPORTED;
	}
	if (*count > d->nblocks - *lba) {
		kprintf("blk: COUNT '%s' goes past the end of %s: LBA %llu + %llu > %llu blocks\n", argv[4],
			d->name, *lba, *count, (unsigned long long)d->nblocks);
		return SHELL_REPORTED;
	}
	return 0;
}

static int cmd_blk(int argc, char **argv)
{
	unsigned long long lba = 0, count = 0, seed = 0;
	char err[96];
	int rc;

	if (argc < 3)
		return -EINVAL;
	const char *sub = argv[1];
	bool ranged = !strcmp(sub, "read") || !strcmp(sub, "write") || !strcmp(sub, "verify") ||
		      !strcmp(sub, "trim") || !strcmp(sub, "zero");
	if (!ranged && strcmp(sub, "flush") && strcmp(sub, "mode") && strcmp(sub, "stress")) {
		kprintf("blk: unknown subcommand '%s' (read write verify trim zero flush mode stress)\n", sub);
		return SHELL_REPORTED;
	}
	struct blk_dev *d = blkcmd_dev(argv[2]);
	if (!d)
		return 1;
	if (ranged) {
		bool seeded = !strcmp(sub, "write") || !strcmp(sub, "verify");
		bool fua = !strcmp(sub, "write") && argc == 7 && !strcmp(argv[6], "fua");
		if (argc != (seeded ? 6 : 5) + fua)
			return -EINVAL;
		if (blkcmd_range(d, argv, &lba, &count) ||
		    (seeded && shell_arg_num("blk", "SEED", argv[5], 0, ~0ull, &seed)))
			return SHELL_REPORTED;
		if (!strcmp(sub, "read"))
			return blkcmd_rw(d, BLKCMD_READ, lba, count, 0, 0);
		if (seeded)
			return blkcmd_rw(d, sub[0] == 'w' ? BLKCMD_WRITE : BLKCMD_VERIFY, lba, count, seed,
					 fua ? BLK_F_FUA : 0);
		if (count > 0xffffffffull) {
			kprintf("blk: COUNT '%s' is too large (at most %u per %s)\n", argv[4], 0xffffffffu, sub);
			return SHELL_REPORTED;
		}
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
	/* stress */
	unsigned long long threads = 2, secs = 5;
	for (int i = 3; i < argc; i++) {
		rc = shell_arg_kv("blk", "threads", argv[i], 1, 64, &threads);
		if (rc == SHELL_NOT_KEY)
			rc = shell_arg_kv("blk", "secs", argv[i], 1, 3600, &secs);
		if (rc == SHELL_NOT_KEY) {
			kprintf("blk: stress: unknown option '%s' (threads=N secs=N)\n", argv[i]);
			return SHELL_REPORTED;
		}
		if (rc)
			return rc;
	}
	return blkcmd_stress(d, (unsigned)threads, (unsigned)secs);
}
SHELL_COMMAND(blk, "blk read|trim|zero DEV LBA COUNT | blk write DEV LBA COUNT SEED [fua] | "
	      "blk verify DEV LBA COUNT SEED | blk flush DEV | blk mode DEV irq|poll | "
	      "blk stress DEV [threads=N] [secs=N]",
	      "block device I/O, pattern checks and stress (Ctrl-C stops)", cmd_blk);

/* ---- blkstat ---- */

static void blkcmd_stat(struct blk_dev *d)
{
	struct blk_stats *s = &d->stats;
	char rd[24], wr[24];
	kfmt_size(rd, sizeof(rd), s->bytes_read, 0);
	kfmt_size(wr, sizeof(wr), s->bytes_written, 0);
	kprintf("%s: read %llu, write %llu, flush %llu, discard %llu, write-zeroes %llu ops; "
		"%s read, %s written; errors %llu, splits %llu, merges %llu, requeues %llu\n",
		d->name, (unsigned long long)s->ops[0], (unsigned long long)s->ops[1],
		(unsigned long long)s->ops[2], (unsigned long long)s->ops[3], (unsigned long long)s->ops[4],
		rd, wr, (unsigned long long)s->errors, (unsigned long long)s->splits,
		(unsigned long long)s->merges, (unsigned long long)s->requeues);
	/* Histogram of completion latency: "<N:count" per power-of-two bucket
	 * that has any, N in us below 1 ms and in ms above. */
	struct cmd_hist { char buf[BLK_LAT_BUCKETS * 24]; size_t len; } l = { .len = 0 };
	for (unsigned b = 0; b < BLK_LAT_BUCKETS; b++) {
		if (!s->lat_us_log2[b] || l.len >= sizeof(l.buf) - 1)
			continue;
		unsigned long long us = 1ull << b;
		int n = us < 1024 ? ksnprintf(l.buf + l.len, sizeof(l.buf) - l.len, " <%lluus:%llu", us,
					      (unsigned long long)s->lat_us_log2[b])
				  : ksnprintf(l.buf + l.len, sizeof(l.buf) - l.len, " <%llums:%llu", us / 1000,
					      (unsigned long long)s->lat_us_log2[b]);
		if (n > 0)
			l.len = MIN(l.len + (size_t)n, sizeof(l.buf) - 1);
	}
	kprintf("  latency:%s\n", l.len ? l.buf : " no I/O completed yet");
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
