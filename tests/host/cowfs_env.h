/*
 * A mounted cowfs over a fresh image file, for the tests of the mounted
 * filesystem (tests/host/test_cowfs_file.c, test_cowfs_falloc.c): mount,
 * remount, check, a pattern fill and a comparison of a file with a byte
 * model.  Include after tests/host/test.h and cowfs_test.h.
 */
#ifndef TESTS_HOST_COWFS_ENV_H
#define TESTS_HOST_COWFS_ENV_H

#include "fs/vfs_int.h"          /* the filesystem lock for tree walks */

struct env {
	struct ct_image im;
	struct cowfs_mount *m;
	const struct cowfs_hooks *hooks;
	unsigned interval_ms;        /* 0: 200 ms, busy background commits */
};

static inline int env_mount(struct env *e)
{
	struct cowfs_vfs_opts o = { .fs = { .hooks = e->hooks }, .data_cache_bytes = 8 << 20,
				    .commit_interval_ms = e->interval_ms ? e->interval_ms : 200 };
	return cowfs_vfs_mount(e->im.bdev, &o, &e->m);
}

static inline int env_open(struct env *e, const char *name, uint64_t bytes)
{
	memset(e, 0, sizeof(*e));
	if (!ct_image_create(&e->im, name, bytes))
		return -1;
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	int err = cowfs_mkfs(e->im.bdev, &mk);
	return err ? err : env_mount(e);
}

static inline void env_remount(struct env *e)
{
	EXPECT_EQ_INT(cowfs_vfs_unmount(e->m), 0);
	ct_image_reopen(&e->im);
	EXPECT_EQ_INT(env_mount(e), 0);
}

static inline const char *env_check(struct env *e)
{
	static char msg[200];
	return cowfs_vfs_check(e->m, msg, sizeof(msg)) ? msg : NULL;
}

/* The whole-filesystem check must be clean; its words when it is not. */
#define ENV_EXPECT_CLEAN(e)                                                     \
	do {                                                                    \
		const char *why_ = env_check(e);                                \
		if (why_)                                                       \
			test_fail_at(__FILE__, __LINE__, why_);                 \
	} while (0)

static inline void env_close(struct env *e)
{
	if (e->m)
		cowfs_vfs_unmount(e->m);
	ct_image_remove(&e->im);
}

static inline uint64_t mkfile(struct env *e, const char *name)
{
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_create(e->m, CFS_ROOT_INO, name, strlen(name), 0644, 0, 0, &a), 0);
	return a.ino;
}

static inline void fill(uint8_t *p, uint64_t off, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(((off + i) * 2654435761u) >> 13 ^ seed);
}

/* The file's bytes equal the model's (and its size); buf holds size + 1. */
static inline bool same(struct env *e, uint64_t ino, const uint8_t *model, uint64_t size, uint8_t *buf)
{
	struct cowfs_inode a;
	if (cowfs_getattr(e->m, ino, &a) || a.size != size) {
		fprintf(stderr, "ino %llu: size %llu, model %llu\n", (unsigned long long)ino,
			(unsigned long long)a.size, (unsigned long long)size);
		return false;
	}
	int64_t n = cowfs_read(e->m, ino, 0, buf, size + 1, 0);
	if (n != (int64_t)size || memcmp(buf, model, size)) {
		for (uint64_t i = 0; n == (int64_t)size && i < size; i++)
			if (buf[i] != model[i]) {
				fprintf(stderr, "ino %llu: byte %llu is %02x, model %02x\n", (unsigned long long)ino,
					(unsigned long long)i, buf[i], model[i]);
				break;
			}
		return false;
	}
	return true;
}

/* A fresh mounted image and n bytes of pattern data plus a buffer. */
static inline void env_with_data(struct env *e, const char *name, uint64_t bytes, size_t n, uint64_t seed,
			  uint8_t **data, uint8_t **buf)
{
	EXPECT_EQ_INT(env_open(e, name, bytes), 0);
	*data = aligned_alloc(4096, n);
	*buf = aligned_alloc(4096, n);
	fill(*data, 0, n, seed);
}

/* ---- power-cut runs (ct_cut_every_write) ----
 * A fresh 8 MiB image with a volatile cache under the cut hooks, mounted
 * so that only the workload's syncs commit (the same writes every run).
 * NULL, or what failed. */
static inline const char *env_cut_open(struct env *e, struct ct_cut *c, struct cowfs_hooks *hooks, const char *name,
				       uint64_t cut_at, uint64_t seed)
{
	memset(e, 0, sizeof(*e));
	*c = (struct ct_cut){ &e->im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	*hooks = (struct cowfs_hooks){ ct_cut_before_write, ct_cut_before_flush, c };
	ct_image_create(&e->im, name, 8 << 20);
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	if (cowfs_mkfs(e->im.bdev, &mk))
		return "mkfs failed";
	plat_host_bdev_set_volatile(e->im.bdev, true);
	e->hooks = hooks;
	e->interval_ms = 3600000;
	return env_mount(e) ? "mount failed" : NULL;
}

/* After the power cut: mounted again without the hooks, checked.  NULL,
 * or what failed. */
static inline const char *env_cut_remount(struct env *e)
{
	e->hooks = NULL;
	ct_image_reopen(&e->im);
	if (env_mount(e))
		return "mount after the power cut failed";
	return env_check(e);
}

/* The end of a run's workload (finished: it ran to its end): unmounted,
 * then -- after a power cut, or the uncut run -- mounted again and
 * checked, and *verify says the files are there to compare.  NULL, or
 * what failed. */
static inline const char *env_cut_after(struct env *e, struct ct_cut *c, uint64_t cut_at, bool finished,
					bool *verify)
{
	*verify = false;
	cowfs_vfs_unmount(e->m);
	e->m = NULL;
	if (!c->cut && cut_at)
		return NULL;             /* the workload ended before the cut point */
	if (!c->cut && !finished)
		return "the workload failed without a power cut";
	const char *why = env_cut_remount(e);
	*verify = !why;
	return why;
}

static inline int env_count_csum(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	(void)data;
	uint64_t *n = arg;
	if (k->type == CFS_ITEM_DATA_CSUM) {
		n[0] += len / 4;
		n[1]++;
	}
	return 0;
}

/* Checksummed data blocks in the checksum tree (one per data block in
 * use) and, in *items when not NULL, the DATA_CSUM items holding them
 * (runs: fs/csum_items.c). */
static inline uint64_t env_csum_runs(struct env *e, uint64_t *items)
{
	uint64_t n[2] = { 0, 0 };
	struct cowfs_tree *t;
	struct cowfs_key lo = { 0, 0, 0 }, hi = { UINT64_MAX, 255, UINT64_MAX };
	cowfs_vfs_lock(e->m);
	EXPECT_EQ_INT(cowfs_tree_get(cowfs_vfs_fs(e->m), CFS_TREE_CSUM, false, &t), 0);
	EXPECT_EQ_INT(cowfs_bt_iterate(t, &lo, &hi, env_count_csum, n), 0);
	cowfs_vfs_unlock(e->m);
	if (items)
		*items = n[1];
	return n[0];
}

static inline uint64_t env_csum_items(struct env *e) { return env_csum_runs(e, NULL); }

/* The end of a run: the writes it counted. */
static inline uint64_t env_cut_close(struct env *e, struct ct_cut *c)
{
	if (e->m)
		cowfs_vfs_unmount(e->m);
	e->m = NULL;
	ct_cut_free(c);
	ct_image_remove(&e->im);
	return c->count;
}

/* A power-cut run of fallocate steps (ct_cut_every_write): file "f"
 * written with state(1, ..) and fsync'd with its directory, a snapshot
 * (the steps then change leaves and blocks it shares), then each step a
 * cowfs_fallocate and an fsync making state(2 + i, ..) durable.  After the
 * cut the file must be one of the states from its last fsync on.  bufsize
 * bytes hold more than the largest state.  Returns the writes counted. */
typedef void (*env_state_fn)(unsigned k, uint8_t *out, uint64_t *size);
struct env_falloc_step { unsigned mode; uint64_t off, len; };

static inline uint64_t env_falloc_cut_run(uint64_t cut_at, uint64_t seed, const char **why, const char *image,
					  env_state_fn state, const struct env_falloc_step *steps, unsigned nsteps,
					  uint64_t bufsize)
{
	struct env e;
	struct ct_cut c;
	struct cowfs_hooks hooks;
	uint8_t *data = aligned_alloc(4096, bufsize), *buf = aligned_alloc(4096, bufsize);
	unsigned synced = 0;
	struct cowfs_inode a;
	uint64_t size;
	bool verify;
	if ((*why = env_cut_open(&e, &c, &hooks, image, cut_at, seed)))
		goto out;
	state(1, data, &size);
	if (cowfs_create(e.m, CFS_ROOT_INO, "f", 1, 0644, 0, 0, &a) ||
	    cowfs_write(e.m, a.ino, 0, data, size, 0) != (int64_t)size)
		goto unmount;
	if (cowfs_fsync(e.m, a.ino, false) || cowfs_fsync(e.m, CFS_ROOT_INO, false) || c.cut)
		goto unmount;
	synced = 1;
	if (cowfs_snapshot(e.m, "s", 1, true) || c.cut)
		goto unmount;
	for (unsigned i = 0; i < nsteps; i++) {
		if (cowfs_fallocate(e.m, a.ino, steps[i].mode, steps[i].off, steps[i].len) ||
		    cowfs_fsync(e.m, a.ino, false) || c.cut)
			goto unmount;
		synced = i + 2;
	}
unmount:
	if ((*why = env_cut_after(&e, &c, cut_at, synced == nsteps + 1, &verify)) || !verify || !synced)
		goto out;
	*why = "the file is none of the states from its last fsync on";
	if (cowfs_lookup(e.m, CFS_ROOT_INO, "f", 1, &a)) {
		*why = "an fsync'd file is gone";
		goto out;
	}
	int64_t got = cowfs_read(e.m, a.ino, 0, buf, bufsize, 0);
	for (unsigned k = synced; k < nsteps + 2; k++) {
		state(k, data, &size);
		if (got == (int64_t)size && !memcmp(buf, data, size))
			*why = NULL;
	}
out:
	free(data);
	free(buf);
	return env_cut_close(&e, &c);
}

/* The bytes of file ino in snapshot `name`, read from its extents on the
 * device (buf holds the largest extent), each compared with data at its
 * offset (EXPECT); returns the bytes its extents cover. */
static inline uint64_t env_snapshot_file_check(struct env *e, const char *name, uint64_t ino, const uint8_t *data,
					       uint8_t *buf)
{
	struct cowfs *fs = cowfs_vfs_fs(e->m);
	uint64_t sid, covered = 0;
	struct cowfs_tree *st_tree = NULL;
	EXPECT_EQ_INT(cowfs_snapshot_lookup(fs, CFS_TREE_FS, name, strlen(name), &sid), 0);
	EXPECT_EQ_INT(cowfs_tree_open(fs, sid, false, &st_tree), 0);
	struct cowfs_key k = { ino, CFS_ITEM_EXTENT, 0 };
	uint8_t item[32];
	uint32_t ilen;
	while (st_tree && cowfs_bt_next(st_tree, &k, item, sizeof(item), &ilen) == 0 && k.objectid == ino &&
	       k.type == CFS_ITEM_EXTENT) {
		uint64_t blk = cfs_get64(item), n = cfs_get32(item + 8);
		EXPECT_EQ_INT(plat_bdev_rw(e->im.bdev, PLAT_BIO_READ, blk * 4096, buf, n * 4096), 0);
		EXPECT(!memcmp(buf, data + k.offset, n * 4096));
		covered += n * 4096;
		k.offset++;
	}
	return covered;
}

#endif
