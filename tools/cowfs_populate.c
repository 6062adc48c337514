/*
 * cowfs-populate: fill a cowfs image with many small files and snapshots,
 * for mount-time benchmarks and for tests that need a large namespace.
 *
 *   cowfs-populate [-f FILES] [-d PER_DIR] [-b BYTES] [-S SNAPSHOTS] IMAGE
 *
 * IMAGE must already hold a cowfs (mkfs.cowfs).  Files go to d0000/,
 * d0001/, ... PER_DIR to a directory, named f0000000, f0000001, ...
 * (numbered across the whole run), each BYTES long.  File N's content is
 * its own name and N repeated ("f0000012 12\n" ...), so any reader can
 * check a file from its name alone.  SNAPSHOTS read-only snapshots
 * pop-1 ... pop-K are taken at even steps through the run, and after
 * each one the first file of every directory so far is rewritten with the
 * snapshot's number in place of N, so the snapshots differ from the live
 * tree and share most of their blocks with it.
 *
 * Exit 0 with one summary line, or 1 with the failing call named.  Works
 * through the same fs/ code as everything else (the vfs layer, over the
 * host platform's file block device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "platform/host/platform_host.h"
#include "fs/vfs.h"

#define NAME_MAX_LEN 16

struct pop_opts {
	uint64_t files, per_dir, bytes, snapshots;
	const char *image;
};

static int usage(const char *why)
{
	fprintf(stderr, "cowfs-populate: %s\n"
		"usage: cowfs-populate [-f FILES] [-d PER_DIR] [-b BYTES] [-S SNAPSHOTS] IMAGE\n", why);
	return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || *s == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The content of file n (or of its rewrite with tag in place of n). */
static void fill(char *buf, uint64_t bytes, uint64_t n, uint64_t tag)
{
	char line[40];
	int l = snprintf(line, sizeof(line), "f%07llu %llu\n", (unsigned long long)n, (unsigned long long)tag);
	for (uint64_t i = 0; i < bytes; i++)
		buf[i] = line[i % (uint64_t)l];
}

static int fail(const char *what, const char *name, int err)
{
	fprintf(stderr, "cowfs-populate: %s %s: %s\n", what, name, plat_strerror(err));
	return 1;
}

static int write_file(struct cowfs_mount *m, uint64_t dir, uint64_t n, uint64_t tag, char *buf, uint64_t bytes,
		      bool create)
{
	char name[NAME_MAX_LEN];
	int l = snprintf(name, sizeof(name), "f%07llu", (unsigned long long)n);
	struct cowfs_inode ino;
	int err = create ? cowfs_create(m, dir, name, (size_t)l, 0644, 0, 0, &ino)
			 : cowfs_lookup(m, dir, name, (size_t)l, &ino);
	if (err)
		return fail(create ? "create" : "lookup", name, err);
	if (!bytes)
		return 0;
	fill(buf, bytes, n, tag);
	int64_t w = cowfs_write(m, ino.ino, 0, buf, bytes, 0);
	if (w != (int64_t)bytes)
		return fail("write", name, w < 0 ? (int)w : -PLAT_EIO);
	return 0;
}

static int populate(struct cowfs_mount *m, const struct pop_opts *o)
{
	char *buf = malloc(o->bytes ? o->bytes : 1);
	uint64_t ndirs = (o->files + o->per_dir - 1) / o->per_dir;
	uint64_t *dirs = calloc(ndirs ? ndirs : 1, sizeof(*dirs));
	uint64_t snaps = 0;
	int rc = 0;
	if (!buf || !dirs) {
		fprintf(stderr, "cowfs-populate: out of memory\n");
		rc = 1;
		goto out;
	}
	for (uint64_t n = 0; n < o->files && !rc; n++) {
		uint64_t d = n / o->per_dir;
		if (n % o->per_dir == 0) {
			char dname[NAME_MAX_LEN];
			int l = snprintf(dname, sizeof(dname), "d%04llu", (unsigned long long)d);
			struct cowfs_inode di;
			int err = cowfs_mkdir(m, CFS_ROOT_INO, dname, (size_t)l, 0755, 0, 0, &di);
			if (err) {
				rc = fail("mkdir", dname, err);
				break;
			}
			dirs[d] = di.ino;
		}
		rc = write_file(m, dirs[d], n, n, buf, o->bytes, true);
		/* Snapshot k after (k / (K + 1)) of the files: spread through the run. */
		while (!rc && snaps < o->snapshots && n + 1 == o->files * (snaps + 1) / (o->snapshots + 1)) {
			char sname[NAME_MAX_LEN];
			int l = snprintf(sname, sizeof(sname), "pop-%llu", (unsigned long long)++snaps);
			int err = cowfs_snapshot(m, sname, (size_t)l, true);
			if (err) {
				rc = fail("snapshot", sname, err);
				break;
			}
			for (uint64_t dd = 0; dd <= d && !rc; dd++)
				rc = write_file(m, dirs[dd], dd * o->per_dir, snaps, buf, o->bytes, false);
		}
	}
	/* K snapshots even when FILES is too small to spread them. */
	while (!rc && snaps < o->snapshots) {
		char sname[NAME_MAX_LEN];
		int l = snprintf(sname, sizeof(sname), "pop-%llu", (unsigned long long)++snaps);
		int err = cowfs_snapshot(m, sname, (size_t)l, true);
		if (err)
			rc = fail("snapshot", sname, err);
	}
out:
	free(dirs);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	struct pop_opts o = { .files = 1000, .per_dir = 1000, .bytes = 4096, .snapshots = 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];
		if (i + 1 >= argc)
			return usage("an option needs a value");
		const char *v = argv[++i];
		uint64_t *dst = !strcmp(opt, "-f") ? &o.files : !strcmp(opt, "-d") ? &o.per_dir :
				!strcmp(opt, "-b") ? &o.bytes : !strcmp(opt, "-S") ? &o.snapshots : NULL;
		if (!dst)
			return usage("unknown option (it takes -f, -d, -b, -S)");
		uint64_t max = dst == &o.bytes ? (64ull << 20) : dst == &o.snapshots ? 100 : 100000000;
		if (parse_u64(v, max, dst) || (dst == &o.per_dir && *dst == 0))
			return usage("FILES up to 100000000, PER_DIR 1 or more, BYTES up to 64 MiB, SNAPSHOTS up to 100");
	}
	if (i != argc - 1)
		return usage("needs exactly one IMAGE after the options");
	o.image = argv[i];
	struct stat st;
	if (stat(o.image, &st) != 0) {
		fprintf(stderr, "cowfs-populate: %s: no such image file (make one with mkfs.cowfs)\n", o.image);
		return 1;
	}
	struct plat_bdev *b = plat_host_bdev_open(o.image, (uint64_t)st.st_size, 512, 2, false);
	if (!b) {
		fprintf(stderr, "cowfs-populate: %s: cannot open\n", o.image);
		return 1;
	}
	struct cowfs_mount *m;
	struct cowfs_vfs_opts vo = { .commit_interval_ms = 3600000 };
	int err = cowfs_vfs_mount(b, &vo, &m);
	if (err) {
		plat_bdev_close(b);
		fprintf(stderr, "cowfs-populate: %s: mount: %s\n", o.image, plat_strerror(err));
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = populate(m, &o);
	err = cowfs_vfs_unmount(m);
	plat_bdev_close(b);
	if (err && !rc)
		rc = fail("unmount", o.image, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!rc)
		printf("cowfs-populate: %s: %llu files of %llu bytes in %llu directories, %llu snapshots, %.1f s\n",
		       o.image, (unsigned long long)o.files, (unsigned long long)o.bytes,
		       (unsigned long long)((o.files + o.per_dir - 1) / o.per_dir), (unsigned long long)o.snapshots,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return rc;
}
