/*
 * A mounted cowfs over a host image file for the namespace and attribute
 * tests (test_cowfs_namei.c, test_cowfs_xattr.c): 4 KiB nodes (small
 * items, deep trees), no timed background commit (the tests decide when
 * to commit), remount, and the whole check with the namespace rules.
 * Include after tests/host/cowfs_test.h.
 */
#ifndef TESTS_HOST_COWFS_VFS_TEST_H
#define TESTS_HOST_COWFS_VFS_TEST_H

#include "fs/vfs_int.h"

struct env {
	struct ct_image im;
	struct cowfs_mount *m;
};

static inline int env_mount(struct env *e, const struct cowfs_hooks *hooks)
{
	/* No timed background commit: the tests decide when to commit (the
	 * power-cut test records the namespace of every commit it makes). */
	struct cowfs_vfs_opts o = { .fs = { .hooks = hooks }, .commit_interval_ms = 24u * 3600 * 1000 };
	return cowfs_vfs_mount(e->im.bdev, &o, &e->m);
}

static inline int env_open(struct env *e, const char *name, uint64_t blocks)
{
	memset(e, 0, sizeof(*e));
	if (!ct_image_create(&e->im, name, blocks * 4096))
		return -1;
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	int err = cowfs_mkfs(e->im.bdev, &mk);
	return err ? err : env_mount(e, NULL);
}

static inline int env_remount(struct env *e)
{
	int err = cowfs_vfs_unmount(e->m);
	e->m = NULL;
	if (err)
		return err;
	ct_image_reopen(&e->im);
	return env_mount(e, NULL);
}

static inline void env_close(struct env *e)
{
	if (e->m)
		EXPECT_EQ_INT(cowfs_vfs_unmount(e->m), 0);
	ct_image_remove(&e->im);
}

/* The whole-filesystem check and the namespace rules, on what the
 * inode cache wrote back (a commit first). */
static inline const char *check_fs(struct cowfs_mount *m)
{
	static char msg[1024];
	struct cowfs *fs = cowfs_vfs_fs(m);
	if (!fs->readonly && cowfs_vfs_sync(m))
		return "sync before the check failed";
	if (cowfs_check(fs, msg, sizeof(msg)) || cowfs_check_namespace(m->tree, msg, sizeof(msg), NULL))
		return msg;
	return NULL;
}

#endif
