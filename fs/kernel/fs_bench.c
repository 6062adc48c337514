/*
 * bench fs: the filesystem's benchmark, one machine-readable line per run
 * (like bench blk), with the device operations the run caused.
 *
 *   bench fs /MOUNT read|write|randread|randwrite [bs=N] [qd=N] [secs=N]
 *            [size=BYTES] [direct]  (buffered reads start cold: the file's cache is dropped first, as fio does)
 *       on a preallocated file /MOUNT/.bench-data (SIZE bytes, written
 *       once and reused while its size matches); qd = threads, each with
 *       one synchronous request in flight (numjobs in fio's terms)
 *   bench fs /MOUNT fsync [secs=N]
 *       4 KiB append + fsync in a loop: fsync latency p50/p99
 *   bench fs /MOUNT create|stat|unlink [files=N]
 *       metadata rates in /MOUNT/.bench-meta (create makes the files the
 *       other two use; unlink removes them)
 *
 * Latency is kept in a 1-microsecond histogram up to 65 ms (beyond: one
 * overflow bucket, reported as 65536).  The device columns are the block
 * layer's counters of the filesystem's disk, before and after.
 */
#include "fs/kernel/mounts.h"
#include "drivers/blk/blk.h"
#include "drivers/blk/pattern.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/shell.h"
#include "kernel/time.h"

#define FB_HIST      65537u
#define FB_MAX_QD    32u
#define FB_DATA      ".bench-data"
#define FB_META      ".bench-meta"

enum fb_wl { FB_READ, FB_WRITE, FB_RANDREAD, FB_RANDWRITE, FB_FSYNC, FB_CREATE, FB_STAT, FB_UNLINK };
static const char *const fb_names[] = { "read", "write", "randread", "randwrite", "fsync", "create", "stat",
					"unlink" };

struct fb_run {
	struct cowfs_mount *m;
	uint64_t ino, size, bs, deadline;
	enum fb_wl wl;
	bool direct;
	uint32_t *hist;               /* shared; atomics */
	uint64_t ops, errors;         /* atomics */
	uint64_t cold_passes;         /* sequential buffered passes begun with the cache dropped */
	int first_err;
};

struct fb_thr {
	struct fb_run *r;
	unsigned idx;
	uint64_t rng, pos;
	uint8_t *buf;
};

static void fb_record(struct fb_run *r, uint64_t ns)
{
	uint64_t us = ns / 1000;
	__atomic_add_fetch(&r->hist[us < FB_HIST - 1 ? us : FB_HIST - 1], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->ops, 1, __ATOMIC_RELAXED);
}

static void fb_error(struct fb_run *r, int err)
{
	if (!__atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED))
		r->first_err = err;
}

static uint64_t fb_pct(const uint32_t *h, uint64_t total, uint64_t num, uint64_t den)
{
	uint64_t want = (total * num + den - 1) / den, acc = 0;
	for (unsigned b = 0; total && b < FB_HIST; b++)
		if ((acc += h[b]) >= want)
			return b;
	return 0;
}

static void fb_io_thread(void *arg)
{
	struct fb_thr *t = arg;
	struct fb_run *r = t->r;
	uint64_t blocks = r->size / r->bs;
	bool rnd = r->wl == FB_RANDREAD || r->wl == FB_RANDWRITE;
	bool wr = r->wl == FB_WRITE || r->wl == FB_RANDWRITE;
	unsigned flags = r->direct ? CFS_IO_DIRECT : 0;

	/* Sequential threads each stream through their own slice. */
	t->pos = blocks / FB_MAX_QD * t->idx % blocks;
	while (time_ns() < r->deadline && !shell_interrupted()) {
		uint64_t blk;
		if (rnd) {
			t->rng = pattern_splitmix64(t->rng);
			blk = t->rng % blocks;
		} else {
			blk = t->pos++ % blocks;
			/* Each pass of a buffered sequential reader starts cold:
			 * fio's reads on the Linux side reach the device for the
			 * whole run, and a second pass here would copy the cache. */
			if (!wr && !r->direct && blk == 0 && t->pos > 1) {
				int err = cowfs_drop_cache(r->m, r->ino);
				if (err) {
					fb_error(r, err);
					break;
				}
				__atomic_add_fetch(&r->cold_passes, 1, __ATOMIC_RELAXED);
			}
		}
		uint64_t t0 = time_ns();
		int64_t n = wr ? cowfs_write(r->m, r->ino, blk * r->bs, t->buf, r->bs, flags) :
			   cowfs_read(r->m, r->ino, blk * r->bs, t->buf, r->bs, flags);
		if (n != (int64_t)r->bs) {
			fb_error(r, n < 0 ? (int)n : -EIO);
			break;
		}
		fb_record(r, time_ns() - t0);
	}
}

/* The data file, SIZE bytes, written once with the pattern. */
static int fb_data_file(struct fsk_mount *fm, uint64_t size, uint64_t *ino)
{
	struct cowfs_inode a;
	int err = cowfs_lookup(fm->m, CFS_ROOT_INO, FB_DATA, sizeof(FB_DATA) - 1, &a);
	if (err == -ENOENT)
		err = cowfs_create(fm->m, CFS_ROOT_INO, FB_DATA, sizeof(FB_DATA) - 1, 0600, 0, 0, &a);
	if (err)
		return err;
	*ino = a.ino;
	if (a.size == size)
		return 0;
	kprintf("bench: writing the %llu MiB data file /%s/%s once\n", (unsigned long long)(size >> 20), fm->name,
		FB_DATA);
	struct cowfs_setattr sa = { .valid = CFS_SET_SIZE, .size = 0 };
	err = cowfs_setattr(fm->m, a.ino, &sa, NULL);
	uint64_t p = err ? 0 : pmm_alloc_pages(8);
	if (!err && !p)
		err = -ENOMEM;
	for (uint64_t off = 0; !err && off < size; off += 1 << 20) {
		uint64_t n = size - off < (1 << 20) ? size - off : (1 << 20);
		pattern_fill(PHYS_TO_VIRT(p), off, (n + 7) & ~7ull, 1);
		int64_t w = cowfs_write(fm->m, a.ino, off, PHYS_TO_VIRT(p), n, 0);
		if (w < 0)
			err = (int)w;
	}
	if (p)
		pmm_free_pages(p, 8);
	return err ? err : cowfs_vfs_sync(fm->m);
}

static void fb_fsync_loop(struct fb_run *r)
{
	uint8_t *buf = PHYS_TO_VIRT(pmm_alloc_pages(0));
	memset(buf, 0x5a, 4096);
	while (time_ns() < r->deadline && !shell_interrupted()) {
		uint64_t t0 = time_ns();
		int64_t n = cowfs_write(r->m, r->ino, 0, buf, 4096, CFS_IO_APPEND);
		int err = n == 4096 ? cowfs_fsync(r->m, r->ino, false) : (n < 0 ? (int)n : -EIO);
		if (err) {
			fb_error(r, err);
			break;
		}
		fb_record(r, time_ns() - t0);
	}
	pmm_free_pages(VIRT_TO_PHYS(buf), 0);
}

/* create / stat / unlink of `files` names in the meta directory. */
static void fb_meta(struct fb_run *r, uint64_t dir, uint64_t files)
{
	for (uint64_t i = 0; i < files && !shell_interrupted(); i++) {
		char name[24];
		size_t n = (size_t)ksnprintf(name, sizeof(name), "f%07llu", (unsigned long long)i);
		struct cowfs_inode a;
		uint64_t t0 = time_ns();
		int err = r->wl == FB_CREATE ? cowfs_create(r->m, dir, name, n, 0644, 0, 0, &a) :
			  r->wl == FB_STAT ? cowfs_lookup(r->m, dir, name, n, &a) :
			  cowfs_unlink(r->m, dir, name, n);
		if (err) {
			fb_error(r, err);
			break;
		}
		fb_record(r, time_ns() - t0);
	}
}

static int fb_arg(const char *a, const char *key, unsigned long long *v)
{
	size_t k = strlen(key);
	if (strncmp(a, key, k) || a[k] != '=')
		return 0;
	return parse_u64(a + k + 1, v) ? -1 : 1;
}

static int bench_fs(int argc, char **argv)
{
	unsigned long long bs = 4096, qd = 1, secs = 5, size = 64ull << 20, files = 1000;
	bool direct = false;
	int wl = -1;
	if (argc < 3) {
		kprintf("bench fs: usage: bench fs /MOUNT read|write|randread|randwrite|fsync|create|stat|unlink "
			"[bs=N] [qd=N] [secs=N] [size=BYTES] [files=N] [direct]\n");
		return 1;
	}
	for (unsigned i = 0; i < sizeof(fb_names) / sizeof(fb_names[0]); i++)
		if (!strcmp(argv[2], fb_names[i]))
			wl = (int)i;
	if (wl < 0) {
		kprintf("bench fs: unknown workload '%s'\n", argv[2]);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		int k = 0;
		if (!strcmp(argv[i], "direct"))
			direct = true, k = 1;
		else if (!(k = fb_arg(argv[i], "bs", &bs)) && !(k = fb_arg(argv[i], "qd", &qd)) &&
			 !(k = fb_arg(argv[i], "secs", &secs)) && !(k = fb_arg(argv[i], "size", &size)))
			k = fb_arg(argv[i], "files", &files);
		if (k <= 0) {
			kprintf("bench fs: bad argument '%s'\n", argv[i]);
			return 1;
		}
	}
	if (bs < 512 || bs > (1 << 20) || (bs & (bs - 1)) || qd < 1 || qd > FB_MAX_QD || secs < 1 || secs > 3600 ||
	    size < bs * FB_MAX_QD || (direct && bs < 4096) || files < 1 || files > 10000000) {
		kprintf("bench fs: bs is a power of two 512..1M (4096.. with direct), qd 1..%u, secs 1..3600, "
			"size at least %u blocks, files 1..10M\n", FB_MAX_QD, FB_MAX_QD);
		return 1;
	}
	struct fsk_path mp;
	int err = fsk_resolve(argv[1], false, &mp);
	if (err)
		return fsk_fail("bench fs", argv[1], err);
	struct fsk_mount *fm = mp.fm;
	struct fb_run r = { .m = fm->m, .wl = (enum fb_wl)wl, .bs = bs, .size = size, .direct = direct };
	struct fb_thr *ts = NULL;
	struct thread **th = NULL;
	uint64_t meta_dir = 0;
	int rc = 1;

	r.hist = kzalloc(sizeof(uint32_t) * FB_HIST);
	if (!r.hist)
		goto out;
	if (wl <= FB_RANDWRITE) {
		err = fb_data_file(fm, size, &r.ino);
		/* Reads start cold, as fio's do (invalidate=1). */
		if (!err && !direct && (wl == FB_READ || wl == FB_RANDREAD))
			err = cowfs_drop_cache(fm->m, r.ino);
	} else if (wl == FB_FSYNC) {
		struct cowfs_inode a;
		err = cowfs_lookup(fm->m, CFS_ROOT_INO, ".bench-fsync", 12, &a);
		if (!err)
			err = cowfs_unlink(fm->m, CFS_ROOT_INO, ".bench-fsync", 12);
		if (!err || err == -ENOENT)
			err = cowfs_create(fm->m, CFS_ROOT_INO, ".bench-fsync", 12, 0600, 0, 0, &a);
		if (!err)
			err = cowfs_fsync(fm->m, CFS_ROOT_INO, false);
		r.ino = a.ino;
	} else {
		struct cowfs_inode a;
		err = cowfs_lookup(fm->m, CFS_ROOT_INO, FB_META, sizeof(FB_META) - 1, &a);
		if (err == -ENOENT)
			err = cowfs_mkdir(fm->m, CFS_ROOT_INO, FB_META, sizeof(FB_META) - 1, 0755, 0, 0, &a);
		meta_dir = a.ino;
	}
	if (err) {
		fsk_fail("bench fs", argv[1], err);
		goto out;
	}

	struct blk_stats before = fm->blk->stats;
	uint64_t t0 = time_ns();
	r.deadline = t0 + secs * 1000000000ull;
	if (wl <= FB_RANDWRITE) {
		ts = kzalloc(sizeof(*ts) * qd);
		th = kzalloc(sizeof(*th) * qd);
		if (!ts || !th)
			goto out;
		for (unsigned i = 0; i < qd; i++) {
			uint64_t p = pmm_alloc_pages(8);
			ts[i] = (struct fb_thr){ .r = &r, .idx = i, .rng = 0x9e37 + i, .buf = p ? PHYS_TO_VIRT(p) : NULL };
			if (!p)
				goto out;
			pattern_fill(ts[i].buf, 0, bs, 7 + i);
		}
		for (unsigned i = 0; i < qd; i++)
			th[i] = thread_create("bench-fs", fb_io_thread, &ts[i], -1);
		/* The threads own their buffers: wait for each, saying so when
		 * one is slow (a device being reset), never giving up. */
		for (unsigned i = 0; i < qd; i++)
			while (th[i] && thread_join(th[i], time_ns() + 10000000000ull))
				kprintf("bench fs: still waiting for I/O thread %u\n", i);
	} else if (wl == FB_FSYNC) {
		fb_fsync_loop(&r);
	} else {
		fb_meta(&r, meta_dir, files);
		if (wl == FB_CREATE || wl == FB_UNLINK)
			cowfs_vfs_sync(fm->m);     /* the cost of making them durable counts */
	}
	uint64_t ns = time_ns() - t0;
	struct blk_stats after = fm->blk->stats;
	if (shell_interrupted()) {
		kprintf("bench fs: interrupted; no result\n");
		goto out;
	}
	uint64_t us = ns / 1000 + 1, bytes = wl <= FB_RANDWRITE ? r.ops * bs : 0;
	uint64_t mbps10 = bytes * 10 / us;
	kprintf("bench fs mount=/%s dev=%s workload=%s bs=%llu qd=%llu secs=%llu mode=%s ops=%llu iops=%llu "
		"mbps=%llu.%llu lat_p50_us=%llu lat_p99_us=%llu dev_reads=%llu dev_writes=%llu dev_flushes=%llu "
		"dev_read_kib=%llu dev_write_kib=%llu errors=%llu cold_passes=%llu\n",
		fm->name, fm->dev, fb_names[wl], bs, qd, secs, direct ? "direct" : "buffered",
		(unsigned long long)r.ops, (unsigned long long)(r.ops * 1000000 / us),
		(unsigned long long)(mbps10 / 10), (unsigned long long)(mbps10 % 10),
		(unsigned long long)fb_pct(r.hist, r.ops, 50, 100), (unsigned long long)fb_pct(r.hist, r.ops, 99, 100),
		(unsigned long long)(after.ops[BLK_OP_READ] - before.ops[BLK_OP_READ]),
		(unsigned long long)(after.ops[BLK_OP_WRITE] - before.ops[BLK_OP_WRITE]),
		(unsigned long long)(after.ops[BLK_OP_FLUSH] - before.ops[BLK_OP_FLUSH]),
		(unsigned long long)((after.bytes_read - before.bytes_read) >> 10),
		(unsigned long long)((after.bytes_written - before.bytes_written) >> 10),
		(unsigned long long)r.errors, (unsigned long long)r.cold_passes);
	if (r.errors)
		kprintf("bench fs: first error: %s\n", strerror(r.first_err));
	rc = r.errors ? 1 : 0;
out:
	if (ts)
		for (unsigned i = 0; i < qd; i++)
			if (ts[i].buf)
				pmm_free_pages(VIRT_TO_PHYS(ts[i].buf), 8);
	kfree(ts);
	kfree(th);
	kfree(r.hist);
	fsk_put(fm);
	return rc;
}
SHELL_COMMAND(bench_fs, "bench fs /MOUNT WORKLOAD [bs=N] [qd=N] [secs=N] [size=BYTES] [files=N] [direct]",
	      "filesystem benchmark: read|write|randread|randwrite|fsync|create|stat|unlink", bench_fs);
