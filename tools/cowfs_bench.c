/*
 * cowfs-bench: the filesystem's host benchmark, through the library (no
 * FUSE), on an image file, each workload against the same bytes written to
 * or read from a plain file beside it.
 *
 *   cowfs-bench [-s DATA_MIB] [-f FILES] [-t SECS] [-d DIR] [-w THREADS]
 *
 * THREADS: the host block device's worker threads (default 0: each bio is
 * done in the thread that submits it, as a polled device would, so a 4 KiB
 * direct read costs the filesystem's work plus one pread, like the raw
 * side; with workers every bio also pays two thread hand-offs, which on
 * this host cost more than the read itself).
 *
 * DIR (default $TMPDIR or /tmp) holds a fresh image (mkfs'd here, data size
 * plus room) and a plain "raw" file of DATA_MIB; both are removed at the end.
 * One line per workload:
 *
 *   bench cowfs seq_write mib=N ours_mbps=X raw_mbps=Y ratio=Y/X goal=0.80 met=yes|no
 *
 * seq_write / seq_read: 1 MiB buffered writes of DATA_MIB then fsync (raw:
 * pwrite + fdatasync), and the same read back after the caches are dropped
 * (cowfs_drop_cache; raw: posix_fadvise DONTNEED).  randread_4k / randwrite_4k:
 * 4 KiB direct I/O (past cowfs's page cache) at random block offsets of that
 * file for SECS seconds; raw: pread/pwrite of the raw file.  Both sides go
 * through the host's page cache (the host platform's block device reaches
 * the image file with buffered pread/pwrite), so the ratio is the cost of
 * the filesystem, not of the host's disk.  fsync: 4 KiB append + fsync for SECS
 * seconds, p50/p99 latency and device operations per fsync (the host block
 * device's counters); goals from the issue: at most 2 flushes and on average
 * at most 4 block writes.  create / stat / readdir / unlink: FILES names in
 * one directory, per second (create and unlink then sync: the cost of making
 * them durable counts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "platform/host/platform_host.h"
#include "fs/vfs.h"

#define MIB (1ull << 20)

struct opts {
	uint64_t mib, files, secs;
	const char *dir;
	unsigned threads;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "cowfs-bench: %s: %s\n", what, err < 0 ? plat_strerror(err) : strerror(err));
	exit(1);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void line(const char *wl, const char *extra, double ours, double raw, double goal)
{
	double ratio = raw > 0 ? ours / raw : 0;
	printf("bench cowfs %s %s ours=%.1f raw=%.1f ratio=%.3f", wl, extra, ours, raw, ratio);
	if (goal > 0)
		printf(" goal=%.2f met=%s", goal, ratio >= goal ? "yes" : "no");
	printf("\n");
	fflush(stdout);
}

/* ---- raw side ---- */

static double raw_seq(int fd, uint8_t *buf, uint64_t mib, bool write)
{
	if (!write && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		die("posix_fadvise", errno);
	double t0 = now_s();
	for (uint64_t i = 0; i < mib; i++) {
		ssize_t n = write ? pwrite(fd, buf, MIB, (off_t)(i * MIB)) : pread(fd, buf, MIB, (off_t)(i * MIB));
		if (n != (ssize_t)MIB)
			die(write ? "raw pwrite" : "raw pread", n < 0 ? errno : EIO);
	}
	if (write && fdatasync(fd))
		die("raw fdatasync", errno);
	return (double)mib / (now_s() - t0);
}

static double raw_rand(int fd, uint8_t *buf, uint64_t mib, uint64_t secs, bool write)
{
	uint64_t s = 0x9e3779b97f4a7c15ull, ops = 0, blocks = mib * MIB / 4096;
	double t0 = now_s(), end = t0 + (double)secs;
	while (now_s() < end)
		for (int k = 0; k < 64; k++, ops++) {
			off_t off = (off_t)(rng_next(&s) % blocks * 4096);
			ssize_t n = write ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off);
			if (n != 4096)
				die(write ? "raw pwrite 4k" : "raw pread 4k", n < 0 ? errno : EIO);
		}
	return (double)ops / (now_s() - t0);
}

/* ---- ours ---- */

static double ours_seq(struct cowfs_mount *m, uint64_t ino, uint8_t *buf, uint64_t mib, bool write)
{
	int err;
	if (!write && (err = cowfs_drop_cache(m, ino)))
		die("cowfs_drop_cache", err);
	double t0 = now_s();
	for (uint64_t i = 0; i < mib; i++) {
		int64_t n = write ? cowfs_write(m, ino, i * MIB, buf, MIB, 0) : cowfs_read(m, ino, i * MIB, buf, MIB, 0);
		if (n != (int64_t)MIB)
			die(write ? "cowfs_write" : "cowfs_read", n < 0 ? (int)n : -PLAT_EIO);
	}
	if (write && (err = cowfs_fsync(m, ino, false)))
		die("cowfs_fsync", err);
	return (double)mib / (now_s() - t0);
}

static double ours_rand(struct cowfs_mount *m, uint64_t ino, uint8_t *buf, uint64_t mib, uint64_t secs, bool write)
{
	uint64_t s = 0x9e3779b97f4a7c15ull, ops = 0, blocks = mib * MIB / 4096;
	double t0 = now_s(), end = t0 + (double)secs;
	while (now_s() < end)
		for (int k = 0; k < 64; k++, ops++) {
			uint64_t off = rng_next(&s) % blocks * 4096;
			int64_t n = write ? cowfs_write(m, ino, off, buf, 4096, CFS_IO_DIRECT)
					  : cowfs_read(m, ino, off, buf, 4096, CFS_IO_DIRECT);
			if (n != 4096)
				die(write ? "cowfs_write 4k direct" : "cowfs_read 4k direct", n < 0 ? (int)n : -PLAT_EIO);
		}
	return (double)ops / (now_s() - t0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void fsync_bench(struct cowfs_mount *m, struct plat_bdev *b, uint8_t *buf, uint64_t secs)
{
	struct cowfs_inode a;
	int err = cowfs_create(m, CFS_ROOT_INO, "fsync", 5, 0644, 0, 0, &a);
	if (err || (err = cowfs_fsync(m, a.ino, false)))     /* the new name commits once */
		die("fsync file", err);
	uint64_t cap = 1 << 20, n = 0, *lat = malloc(cap * sizeof(*lat));
	if (!lat)
		die("malloc", ENOMEM);
	struct plat_host_bdev_stats s0, s1;
	plat_host_bdev_stats(b, &s0);
	double end = now_s() + (double)secs;
	while (now_s() < end && n < cap) {
		double t0 = now_s();
		int64_t w = cowfs_write(m, a.ino, n * 4096, buf, 4096, CFS_IO_APPEND);
		if (w != 4096)
			die("fsync append", w < 0 ? (int)w : -PLAT_EIO);
		if ((err = cowfs_fsync(m, a.ino, false)))
			die("fsync", err);
		lat[n++] = (uint64_t)((now_s() - t0) * 1e9);
	}
	plat_host_bdev_stats(b, &s1);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	double fl = (double)(s1.flushes - s0.flushes + s1.fua_writes - s0.fua_writes) / (double)n;
	double wr = (double)(s1.writes - s0.writes) / (double)n;
	printf("bench cowfs fsync_append ops=%llu p50_us=%.1f p99_us=%.1f cache_flushes_per_op=%.2f writes_per_op=%.2f "
	       "goal=flushes<=2,writes<=4 met=%s\n", (unsigned long long)n, (double)lat[n / 2] / 1e3,
	       (double)lat[n * 99 / 100] / 1e3, fl, wr, fl <= 2.0 && wr <= 4.0 ? "yes" : "no");
	fflush(stdout);
	free(lat);
}

struct counter { uint64_t n; };
static int count_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	(void)name, (void)len, (void)ino, (void)type, (void)next;
	((struct counter *)arg)->n++;
	return 0;
}

static void meta_bench(struct cowfs_mount *m, uint64_t files)
{
	struct cowfs_inode d, a;
	int err = cowfs_mkdir(m, CFS_ROOT_INO, "meta", 4, 0755, 0, 0, &d);
	if (err)
		die("mkdir meta", err);
	const char *names[] = { "create", "stat", "readdir", "unlink" };
	for (int w = 0; w < 4; w++) {
		double t0 = now_s();
		uint64_t done = 0;
		if (w == 2) {
			struct counter c = { 0 };
			if ((err = cowfs_readdir(m, d.ino, 0, count_cb, &c)))
				die("readdir", err);
			done = c.n >= 2 ? c.n - 2 : 0;    /* . and .. */
			if (done != files)
				die("readdir found a different count", -PLAT_EIO);
		} else {
			for (uint64_t i = 0; i < files; i++, done++) {
				char name[24];
				size_t l = (size_t)snprintf(name, sizeof(name), "f%07llu", (unsigned long long)i);
				err = w == 0 ? cowfs_create(m, d.ino, name, l, 0644, 0, 0, &a)
				    : w == 1 ? cowfs_lookup(m, d.ino, name, l, &a) : cowfs_unlink(m, d.ino, name, l);
				if (err)
					die(names[w], err);
			}
			if ((w == 0 || w == 3) && (err = cowfs_vfs_sync(m)))
				die("sync", err);
		}
		printf("bench cowfs %s files=%llu per_s=%.0f\n", names[w], (unsigned long long)done,
		       (double)done / (now_s() - t0));
		fflush(stdout);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: cowfs-bench [-s DATA_MIB] [-f FILES] [-t SECS] [-d DIR] [-w THREADS (0-16)]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { 128, 100000, 3, getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", 0 };
	int c;
	while ((c = getopt(argc, argv, "s:f:t:d:w:")) != -1) {
		char *end = NULL;
		unsigned long long v = optarg ? strtoull(optarg, &end, 10) : 0;
		if (c == 'd') {
			o.dir = optarg;
			continue;
		}
		if (c == '?' || !end || *end || (v == 0 && c != 'w') || v > (c == 'w' ? 16 : UINT64_MAX) ||
		    optarg[0] == '-')
			return usage();
		if (c == 'w')
			o.threads = (unsigned)v;
		else if (c == 's')
			o.mib = v;
		else if (c == 'f')
			o.files = v;
		else
			o.secs = v;
	}
	char img[4096], raw[4096];
	snprintf(img, sizeof(img), "%s/cowfs-bench-%d.img", o.dir, (int)getpid());
	snprintf(raw, sizeof(raw), "%s/cowfs-bench-%d.raw", o.dir, (int)getpid());
	uint64_t img_bytes = o.mib * MIB * 2 + 512 * MIB;
	struct plat_bdev *b = plat_host_bdev_open(img, img_bytes, 512, o.threads, false);
	if (!b)
		die(img, -PLAT_EIO);
	printf("# host block device: %s\n", o.threads ? "worker threads" : "inline (bios done in the submitting thread)");
	int err = cowfs_mkfs(b, NULL);
	struct cowfs_mount *m;
	struct cowfs_vfs_opts vo = { .data_cache_bytes = 256 * MIB };
	if (err || (err = cowfs_vfs_mount(b, &vo, &m)))
		die("mkfs + mount", err);
	uint8_t *buf = aligned_alloc(4096, MIB);
	int rfd = open(raw, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!buf || rfd < 0)
		die(raw, errno);
	for (uint64_t i = 0; i < MIB; i++)
		buf[i] = (uint8_t)(i * 131 + 7);

	struct cowfs_inode f;
	if ((err = cowfs_create(m, CFS_ROOT_INO, "data", 4, 0644, 0, 0, &f)))
		die("create data", err);
	char extra[64];
	snprintf(extra, sizeof(extra), "mib=%llu unit=MB/s", (unsigned long long)o.mib);
	double r = raw_seq(rfd, buf, o.mib, true), w = ours_seq(m, f.ino, buf, o.mib, true);
	line("seq_write", extra, w, r, 0.80);
	r = raw_seq(rfd, buf, o.mib, false);
	w = ours_seq(m, f.ino, buf, o.mib, false);
	line("seq_read", extra, w, r, 0);

	snprintf(extra, sizeof(extra), "secs=%llu unit=IOPS", (unsigned long long)o.secs);
	r = raw_rand(rfd, buf, o.mib, o.secs, false);
	w = ours_rand(m, f.ino, buf, o.mib, o.secs, false);
	line("randread_4k", extra, w, r, 0.90);
	r = raw_rand(rfd, buf, o.mib, o.secs, true);
	w = ours_rand(m, f.ino, buf, o.mib, o.secs, true);
	line("randwrite_4k", extra, w, r, 0);

	fsync_bench(m, b, buf, o.secs);
	meta_bench(m, o.files);

	if ((err = cowfs_vfs_unmount(m)))
		die("unmount", err);
	plat_bdev_close(b);
	close(rfd);
	unlink(raw);
	unlink(img);
	free(buf);
	return 0;
}
