/*
 * Helpers shared by the cowfs host tests: an image file as a block
 * device, a small PRNG, deterministic item values and an in-memory model
 * of one tree (dense key index -> version; the value bytes are derived
 * from index and version, so the model stores no data).
 * Include after tests/host/test.h.
 */
#ifndef TESTS_HOST_COWFS_TEST_H
#define TESTS_HOST_COWFS_TEST_H

#include <fcntl.h>
#include <unistd.h>
#include "platform/host/platform_host.h"
#include "fs/cowfs_int.h"
#include "fs/inode.h"
#include "fs/file.h"

struct ct_image {
	char path[96];
	uint64_t bytes;
	struct plat_bdev *bdev;
};

/* A fresh image file of `bytes` (kept until ct_image_remove). */
static inline struct plat_bdev *ct_image_create(struct ct_image *im, const char *name, uint64_t bytes)
{
	static unsigned seq;
	snprintf(im->path, sizeof(im->path), "/tmp/cowfs-%s-%d-%u.img", name, getpid(), seq++);
	unlink(im->path);
	im->bytes = bytes;
	im->bdev = plat_host_bdev_open(im->path, bytes, 512, 0, false);
	return im->bdev;
}
static inline struct plat_bdev *ct_image_reopen(struct ct_image *im)
{
	if (im->bdev)
		plat_bdev_close(im->bdev);
	im->bdev = plat_host_bdev_open(im->path, im->bytes, 512, 0, false);
	return im->bdev;
}
static inline void ct_image_remove(struct ct_image *im)
{
	if (im->bdev)
		plat_bdev_close(im->bdev);
	im->bdev = NULL;
	unlink(im->path);
}

static inline uint64_t ct_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Model: key i <-> (i / 3, type 100 + i % 3, i * 7919): item types no
 * filesystem layer uses, so the whole-filesystem check ignores them. */
struct ct_model {
	uint32_t n;
	uint32_t lo, span;    /* random ops pick keys in [lo, lo + span) (span 0 = all) */
	uint32_t *ver;        /* 0 = absent */
	uint32_t maxlen;
	uint64_t present;
};

#define CT_TYPE 100

static inline void ct_key(uint32_t i, struct cowfs_key *k)
{
	k->objectid = i / 3;
	k->type = (uint8_t)(CT_TYPE + i % 3);
	k->offset = (uint64_t)i * 7919;
}
static inline int64_t ct_key_index(const struct cowfs_key *k)
{
	uint64_t i = k->objectid * 3 + (uint64_t)(k->type - CT_TYPE);
	if (k->type < CT_TYPE || k->type > CT_TYPE + 2 || k->offset != i * 7919)
		return -1;
	return (int64_t)i;
}
static inline uint32_t ct_len(const struct ct_model *m, uint32_t i, uint32_t ver)
{
	uint64_t s = ((uint64_t)i << 32 | ver) * 0x9E3779B97F4A7C15ull | 1;
	return (uint32_t)(ct_rand(&s) % (m->maxlen + 1));
}
static inline void ct_value(uint32_t i, uint32_t ver, uint8_t *buf, uint32_t len)
{
	uint64_t s = ((uint64_t)i << 32 | ver) * 0xD1B54A32D192ED03ull | 1;
	for (uint32_t j = 0; j < len; j++)
		buf[j] = (uint8_t)ct_rand(&s);
}
static inline void ct_model_init(struct ct_model *m, uint32_t n, uint32_t maxlen)
{
	m->n = n;
	m->ver = calloc(n, sizeof(*m->ver));
	m->maxlen = maxlen;
	m->present = 0;
	m->lo = m->span = 0;
}
static inline void ct_model_copy(struct ct_model *dst, const struct ct_model *src)
{
	*dst = *src;
	dst->ver = malloc(src->n * sizeof(*dst->ver));
	memcpy(dst->ver, src->ver, src->n * sizeof(*dst->ver));
}

/* One random operation on tree t and the model; returns 0 or a message. */
static inline const char *ct_random_op(struct cowfs_tree *t, struct ct_model *m, uint64_t *rng,
				       unsigned insert_pct, uint32_t *next_ver)
{
	static uint8_t buf[4096], got[4096];
	uint32_t i = m->span ? m->lo + (uint32_t)(ct_rand(rng) % m->span) : (uint32_t)(ct_rand(rng) % m->n), len;
	struct cowfs_key k;
	ct_key(i, &k);
	unsigned dice = (unsigned)(ct_rand(rng) % 100);
	int err;
	if (dice < insert_pct) {
		uint32_t v = (*next_ver)++;
		len = ct_len(m, i, v);
		ct_value(i, v, buf, len);
		err = cowfs_bt_insert(t, &k, buf, len);
		if (m->ver[i])
			return err == -PLAT_EEXIST ? NULL : "insert of a present key did not say EEXIST";
		if (err)
			return "insert failed";
		m->ver[i] = v;
		m->present++;
	} else if (dice < insert_pct + (100 - insert_pct) * 2 / 3) {
		err = cowfs_bt_delete(t, &k);
		if (!m->ver[i])
			return err == -PLAT_ENOENT ? NULL : "delete of an absent key did not say ENOENT";
		if (err)
			return "delete failed";
		m->ver[i] = 0;
		m->present--;
	} else if (dice < 95) {
		uint32_t v = (*next_ver)++;
		len = ct_len(m, i, v);
		ct_value(i, v, buf, len);
		err = cowfs_bt_update(t, &k, buf, len);
		if (!m->ver[i])
			return err == -PLAT_ENOENT ? NULL : "update of an absent key did not say ENOENT";
		if (err)
			return "update failed";
		m->ver[i] = v;
	}
	/* Every op ends with a lookup of its key. */
	err = cowfs_bt_lookup(t, &k, got, sizeof(got), &len);
	if (!m->ver[i])
		return err == -PLAT_ENOENT ? NULL : "lookup found a key the model does not have";
	if (err)
		return "lookup of a present key failed";
	uint32_t want = ct_len(m, i, m->ver[i]);
	ct_value(i, m->ver[i], buf, want);
	if (len != want || memcmp(buf, got, len))
		return "lookup returned the wrong value";
	return NULL;
}

struct ct_cmp {
	const struct ct_model *m;
	uint32_t expect;       /* next index the model has */
	uint64_t seen;
	const char *why;
};

static inline uint32_t ct_next_present(const struct ct_model *m, uint32_t from)
{
	while (from < m->n && !m->ver[from])
		from++;
	return from;
}

static inline int ct_cmp_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	static uint8_t buf[4096];
	struct ct_cmp *c = arg;
	int64_t i = ct_key_index(k);
	if (i < 0 || (uint32_t)i != c->expect) {
		c->why = i < 0 ? "tree holds a key outside the model's key space"
			       : "tree and model disagree on the next key";
		return -1;
	}
	uint32_t want = ct_len(c->m, (uint32_t)i, c->m->ver[i]);
	ct_value((uint32_t)i, c->m->ver[i], buf, want);
	if (len != want || memcmp(buf, data, len)) {
		c->why = "value differs from the model";
		return -1;
	}
	c->seen++;
	c->expect = ct_next_present(c->m, (uint32_t)i + 1);
	return 0;
}

/* The whole tree, in order, equals the model.  NULL or a reason. */
static inline const char *ct_compare(struct cowfs_tree *t, const struct ct_model *m)
{
	struct ct_cmp c = { m, ct_next_present(m, 0), 0, NULL };
	struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	int err = cowfs_bt_iterate(t, &from, &to, ct_cmp_cb, &c);
	if (c.why)
		return c.why;
	if (err)
		return "iteration failed";
	if (c.seen != m->present)
		return "tree has fewer items than the model";
	return NULL;
}

/* ---- hash collisions of names (fs/dir.c, fs/xattr.c) ---- */
/* Name i of the collision search: 12 pseudo-random letters (names that
 * differ in a few bytes only, like "c1" "c2", never collide: CRC is
 * linear). */
static inline void ct_coll_name(uint32_t i, char *n)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 1;
	for (int k = 0; k < 12; k++)
		n[k] = (char)('a' + ct_rand(&s) % 26);
	n[12] = 0;
}

/* Two different names with the same cowfs_name_hash (birthday search,
 * bounded; a and b empty when none was found). */
static inline void ct_colliding_names(char *a, char *b)
{
	enum { N = 1 << 18 };
	uint64_t *seen = calloc(N * 2, sizeof(uint64_t));
	a[0] = b[0] = 0;
	for (uint32_t i = 0; i < N; i++) {
		char n[32];
		ct_coll_name(i, n);
		uint64_t h = cowfs_name_hash(n, strlen(n));
		uint64_t slot = (h * 0x9E3779B97F4A7C15ull) >> 45;   /* 19 bits */
		for (;; slot = (slot + 1) % (N * 2)) {
			if (!seen[slot]) {
				seen[slot] = ((uint64_t)i << 32 | (h & 0xffffffff)) + 1;
				break;
			}
			if (((seen[slot] - 1) & 0xffffffff) == (h & 0xffffffff)) {
				ct_coll_name((uint32_t)((seen[slot] - 1) >> 32), a);
				strcpy(b, n);
				free(seen);
				return;
			}
		}
	}
	free(seen);
}

/* ---- power cuts at a chosen device write ----
 * Hooks for struct cowfs_hooks: count the filesystem's writes; at write
 * cut_at the power goes: the image (a volatile-cache host bdev) loses what
 * was not flushed except a random subset of it (each unflushed write
 * survives with probability 1/2), and every later write fails. */
struct ct_logged { uint64_t off, len; uint8_t *data; };

struct ct_cut {
	struct ct_image *im;
	uint64_t count, cut_at, rng;
	bool cut;
	struct ct_logged *log;
	size_t nlog, caplog;
	unsigned survivors;
};

static inline void ct_cut_log_clear(struct ct_cut *c)
{
	for (size_t i = 0; i < c->nlog; i++)
		free(c->log[i].data);
	c->nlog = 0;
}

static inline void ct_cut_before_flush(void *arg)
{
	struct ct_cut *c = arg;
	if (!c->cut)
		ct_cut_log_clear(c);
}

static inline void ct_cut_before_write(void *arg, uint64_t off, const void *buf, uint64_t len, unsigned flags)
{
	struct ct_cut *c = arg;
	if (c->cut)
		return;
	if (++c->count == c->cut_at) {
		/* Power goes now: the cache loses what was not flushed, except
		 * a random subset of it that had reached the media. */
		c->cut = true;
		plat_host_bdev_crash(c->im->bdev);
		int fd = open(c->im->path, O_WRONLY);
		for (size_t i = 0; i < c->nlog; i++)
			if (ct_rand(&c->rng) & 1) {
				EXPECT_EQ_INT(pwrite(fd, c->log[i].data, c->log[i].len, (off_t)c->log[i].off),
					      (ssize_t)c->log[i].len);
				c->survivors++;
			}
		close(fd);
		ct_cut_log_clear(c);
		plat_host_bdev_inject(c->im->bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, UINT32_MAX);
		return;
	}
	if (flags & PLAT_BIO_FUA)
		return;
	if (c->nlog == c->caplog) {
		c->caplog = c->caplog ? c->caplog * 2 : 64;
		c->log = realloc(c->log, c->caplog * sizeof(*c->log));
	}
	struct ct_logged *l = &c->log[c->nlog++];
	l->off = off;
	l->len = len;
	l->data = malloc(len);
	memcpy(l->data, buf, len);
}

static inline void ct_cut_free(struct ct_cut *c)
{
	ct_cut_log_clear(c);
	free(c->log);
	c->log = NULL;
}

/* Runs run(0) once (no cut: counts the writes), then run(k) with a cut at
 * every write k, `subsets` random survivor sets each; stops at the first
 * failure and reports it with the cut point.  run returns the writes the
 * workload issued and sets *why on failure. */
typedef uint64_t (*ct_cut_run_fn)(uint64_t cut_at, uint64_t seed, const char **why);
static inline void ct_cut_every_write(const char *file, int line, ct_cut_run_fn run, unsigned subsets,
				      uint64_t min_writes)
{
	const char *why;
	uint64_t total = run(0, 0, &why);
	if (!why && total < min_writes)
		why = "the workload issued fewer writes than expected";
	if (why) {
		test_fail_at(file, line, why);
		return;
	}
	for (uint64_t k = 1; k <= total + 1; k++)
		for (unsigned s = 0; s < subsets; s++) {
			run(k, k * 131 + s, &why);
			if (why) {
				char m[300];
				snprintf(m, sizeof(m), "cut at write %llu of %llu (subset %u): %s",
					 (unsigned long long)k, (unsigned long long)total, s, why);
				test_fail_at(file, line, m);
				return;
			}
		}
}

/* Device operations per workload operation between two snapshots of a
 * host block device's counters, and the `bench` line that reports them
 * (a FUA write is a cache flush of its own on many disks, and a host
 * fdatasync under qemu: cache_flushes counts both). */
struct ct_costs {
	double flushes, writes, fua;
};
static inline struct ct_costs ct_costs_per_op(const struct plat_host_bdev_stats *a,
					      const struct plat_host_bdev_stats *b, unsigned ops)
{
	return (struct ct_costs){ (double)(b->flushes - a->flushes) / ops, (double)(b->writes - a->writes) / ops,
				  (double)(b->fua_writes - a->fua_writes) / ops };
}
static inline void ct_costs_print(const char *what, bool log, unsigned ops, struct ct_costs c)
{
	printf("bench cowfs %s log=%s ops=%u flushes_per_op=%.2f writes_per_op=%.2f fua_per_op=%.2f "
	       "cache_flushes_per_op=%.2f\n", what, log ? "on" : "off", ops, c.flushes, c.writes, c.fua,
	       c.flushes + c.fua);
}

/* Device byte address of file offset off of a mounted file (the
 * filesystem lock is taken here). */
static inline uint64_t ct_dev_addr(struct cowfs_mount *m, uint64_t ino, uint64_t off)
{
	struct cowfs_extent x;
	bool found = false;
	cowfs_vfs_lock(m);
	EXPECT_EQ_INT(cowfs_extent_find(m, ino, off, &x, &found), 0);
	cowfs_vfs_unlock(m);
	EXPECT(found);
	return found ? x.disk_block * CFS_BLOCK_SIZE + (off - x.off) : 0;
}

#endif
