/*
 * apfp bench EXPORT (tools/apfp_cli.h): in a directory of its own under
 * the export's root, removed afterwards:
 *   write  one file of -s MiB (default 64) through the bulk transfer
 *          (unstable writes in flight, then COMMIT): MB/s to stable
 *   read   it back the same way: MB/s
 *   create -n empty files (default 500), one CREATE at a time: per second
 *   getattr -g GETATTRs (default 2000) of the big file, one at a time:
 *          latency p50 and p99 in microseconds
 * One machine-readable line: "bench apfp write_MBps=... read_MBps=...
 * create_per_s=... getattr_us_p50=... getattr_us_p99=..." (or --json).
 */
#define _GNU_SOURCE
#include "tools/apfp_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench {
	struct cli *k;
	struct apfp_obj root, dir, big, small;
	uint8_t *data;          /* PROTO_MAX_IO bytes written at every offset */
	unsigned created;
	bool have_dir, have_big, have_small;
	char dname[64];
};

static int fill(void *arg, uint64_t off, void *buf, uint32_t len)
{
	const struct bench *b = arg;
	(void)off;
	memcpy(buf, b->data, len);
	return 0;
}

static int discard(void *arg, uint64_t off, const void *buf, uint32_t len)
{
	(void)arg; (void)off; (void)buf; (void)len;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Everything the bench made goes again (best effort; the first error is
 * kept in *rc when there was none before). */
static void cleanup(struct bench *b, int *rc)
{
	struct apfpc *c = &b->k->c;
	int r = 0;
	for (unsigned i = 0; i < b->created; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%u", i);
		int e = apfp_remove(c, &b->small.fh, name, false);
		r = r ? r : e;
	}
	if (b->have_small)
		r = r ? r : apfp_remove(c, &b->dir.fh, "small", true);
	if (b->have_big)
		r = r ? r : apfp_remove(c, &b->dir.fh, "big", false);
	if (b->have_dir)
		r = r ? r : apfp_remove(c, &b->root.fh, b->dname, true);
	if (!*rc)
		*rc = r;
}

static unsigned arg_num(const char *s, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return *end || !v || v > max ? 0 : (unsigned)v;
}

int cmd_bench(struct cli *k, int argc, char **argv)
{
	unsigned mib = 64, files = 500, getattrs = 2000, commits = 0;
	struct bench b = { .k = k };
	const char *exp = NULL;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		unsigned *slot = !strcmp(argv[i], "-s") ? &mib : !strcmp(argv[i], "-n") ? &files
							      : !strcmp(argv[i], "-g") ? &getattrs : NULL;
		if (slot && i + 1 < argc) {
			if (!(*slot = arg_num(argv[++i], 1u << 20)))
				return EX_USAGE;
		} else if (!slot && !exp && argv[i][0] != '-') {
			exp = argv[i];
		} else {
			fprintf(stderr, "apfp: bench EXPORT [-s MIB] [-n FILES] [-g GETATTRS]\n");
			return EX_USAGE;
		}
	}
	if (!exp)
		return EX_USAGE;
	if ((rc = apfp_resolve(&k->c, exp, &b.root)))
		return cli_fail(k, exp, rc);
	if (!(b.data = malloc(PROTO_MAX_IO)))
		return cli_local("memory", ENOMEM);
	uint64_t seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < PROTO_MAX_IO; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		b.data[i] = (uint8_t)(seed >> 56);
	}
	double *lat = calloc(getattrs, sizeof(*lat));
	double t0, write_s = 0, read_s = 0, create_s = 0;
	uint64_t size = (uint64_t)mib << 20, got = 0;
	struct apfp_xfer x = { .src = fill, .sink = discard, .arg = &b, .depth = k->depth };
	struct cli_bar bar;
	snprintf(b.dname, sizeof(b.dname), ".apfp-bench-%d", (int)getpid());
	if (!lat) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = apfp_mkdir(&k->c, &b.root.fh, b.dname, 0755, &b.dir)))
		goto out;
	b.have_dir = true;
	if ((rc = apfp_create(&k->c, &b.dir.fh, "big", 0644, PROTO_CREATE_GUARDED, &b.big)))
		goto out;
	b.have_big = true;

	cli_bar_start(k, &bar, "bench write", size, &x);
	t0 = cli_now();
	rc = apfp_xfer_put(&k->c, &b.big.fh, size, &x);
	write_s = cli_now() - t0;
	commits = x.commits;
	cli_bar_end(&bar);
	if (rc)
		goto out;
	cli_bar_start(k, &bar, "bench read", size, &x);
	t0 = cli_now();
	rc = apfp_xfer_get(&k->c, &b.big.fh, size, &x, &got);
	read_s = cli_now() - t0;
	cli_bar_end(&bar);
	if (rc)
		goto out;
	if (got != size) {
		fprintf(stderr, "apfp: bench: read back %llu bytes of %llu\n", (unsigned long long)got,
			(unsigned long long)size);
		rc = -EIO;
		goto out;
	}

	if ((rc = apfp_mkdir(&k->c, &b.dir.fh, "small", 0755, &b.small)))
		goto out;
	b.have_small = true;
	t0 = cli_now();
	for (; b.created < files; b.created++) {
		char name[32];
		struct apfp_obj f;
		snprintf(name, sizeof(name), "f%u", b.created);
		if ((rc = apfp_create(&k->c, &b.small.fh, name, 0644, PROTO_CREATE_GUARDED, &f)))
			goto out;
	}
	create_s = cli_now() - t0;

	for (unsigned i = 0; i < getattrs; i++) {
		struct proto_attr a;
		t0 = cli_now();
		if ((rc = apfp_getattr(&k->c, &b.big.fh, &a)))
			goto out;
		lat[i] = (cli_now() - t0) * 1e6;
	}
	qsort(lat, getattrs, sizeof(*lat), by_value);
out:
	cleanup(&b, &rc);
	free(b.data);
	if (rc) {
		free(lat);
		return rc == -ENOMEM ? cli_local("memory", ENOMEM) : cli_fail(k, "bench", rc);
	}
	double w = (double)size / 1e6 / write_s, r = (double)size / 1e6 / read_s, cr = files / create_s;
	double p50 = lat[getattrs / 2], p99 = lat[(size_t)getattrs * 99 / 100];
	unsigned depth = k->c.sess.max_inflight, rdepth = k->depth ? k->depth : APFP_READ_DEPTH;
	rdepth = rdepth < depth ? rdepth : depth;
	if (k->json)
		printf("{\"write_MBps\":%.1f,\"read_MBps\":%.1f,\"create_per_s\":%.0f,\"getattr_us_p50\":%.0f,"
		       "\"getattr_us_p99\":%.0f,\"size_MiB\":%u,\"files\":%u,\"getattrs\":%u,\"depth\":%u,"
		       "\"read_depth\":%u,\"commits\":%u}\n",
		       w, r, cr, p50, p99, mib, files, getattrs, depth, rdepth, commits);
	else
		printf("bench apfp write_MBps=%.1f read_MBps=%.1f create_per_s=%.0f getattr_us_p50=%.0f "
		       "getattr_us_p99=%.0f size_MiB=%u files=%u getattrs=%u depth=%u read_depth=%u\n",
		       w, r, cr, p50, p99, mib, files, getattrs, depth, rdepth);
	free(lat);
	return EX_OK;
}
