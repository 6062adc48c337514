/* Name changes through the intent log (fs/file_log.c, docs/format.md §9):
 * an fsync after create, mkdir, mknod, symlink, link, unlink, rmdir and
 * rename -- of the file or of a directory -- is logged, not committed,
 * and after a power cut the replayed namespace is exactly the one the
 * fsync saw (every name, inode number, type, link count and the bytes of
 * every file whose data was synced), the whole-filesystem check is clean,
 * and freed inodes are gone.  The crash-bug cases of the design anchors
 * (rename atomicity, hard links, directory fsync, a rename lost after the
 * fsync of a child, a new file and the new directories above it) are
 * cases here.  A power cut at every write of a namespace workload leaves
 * the namespace of the last fsync that returned, or of the one in flight. */
#define TEST_SUITE "cowfs_namelog"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "fs/file.h"

#define EXPECT_MSG(cond, ...)                                                   \
	do {                                                                    \
		if (!(cond)) {                                                  \
			char m_[400];                                           \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                  \
			test_fail_at(__FILE__, __LINE__, m_);                   \
		}                                                               \
	} while (0)

struct env {
	struct ct_image im;
	struct cowfs_mount *m;
	const struct cowfs_hooks *hooks;
};

static int mount_env(struct env *e)
{
	struct cowfs_vfs_opts o = { .fs = { .hooks = e->hooks }, .data_cache_bytes = 8 << 20,
				    .commit_interval_ms = 3600000 };
	return cowfs_vfs_mount(e->im.bdev, &o, &e->m);
}

static void power_cut(struct env *e)
{
	plat_host_bdev_crash(e->im.bdev);
	plat_host_bdev_inject(e->im.bdev, PLAT_BIO_WRITE, 0, UINT64_MAX, -PLAT_EIO, UINT32_MAX);
	cowfs_vfs_unmount(e->m);
	e->m = NULL;
	e->hooks = NULL;
	ct_image_reopen(&e->im);
}

/* ---- the namespace as text: one line per name, depth first ---- */

struct dump {
	char *s;
	size_t len, cap;
};

static void dump_put(struct dump *d, const char *line)
{
	size_t n = strlen(line);
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->s = realloc(d->s, d->cap);
	}
	memcpy(d->s + d->len, line, n + 1);
	d->len += n;
}

struct dirents {
	char name[64][64];
	uint64_t ino[64];
	unsigned n;
};

static int collect(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct dirents *d = arg;
	(void)type;
	(void)next;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (d->n == 64 || len >= 64)
		return -1;
	memcpy(d->name[d->n], name, len);
	d->name[d->n][len] = 0;
	d->ino[d->n++] = ino;
	return 0;
}

/* path ino mode nlink size crc32c-of-bytes (or the symlink's target). */
static void dump_dir(struct cowfs_mount *m, uint64_t dir, const char *path, struct dump *out)
{
	static uint8_t buf[1 << 16];
	struct dirents *d = calloc(1, sizeof(*d));
	EXPECT_EQ_INT(cowfs_readdir(m, dir, 0, collect, d), 0);
	for (unsigned i = 0; i < d->n; i++) {
		struct cowfs_inode a;
		char p[256], line[400], what[80] = "";
		snprintf(p, sizeof(p), "%s/%s", path, d->name[i]);
		EXPECT_EQ_INT(cowfs_getattr(m, d->ino[i], &a), 0);
		if (CFS_S_ISREG(a.mode) && a.size <= sizeof(buf)) {
			int64_t n = cowfs_read(m, d->ino[i], 0, buf, a.size, 0);
			snprintf(what, sizeof(what), "data %08x%s", crc32c(0, buf, a.size),
				 n == (int64_t)a.size ? "" : " (read failed)");
		} else if (CFS_S_ISLNK(a.mode)) {
			size_t tl = 0;
			EXPECT_EQ_INT(cowfs_readlink(m, d->ino[i], (char *)buf, 60, &tl), 0);
			snprintf(what, sizeof(what), "-> %.*s", (int)(tl < 60 ? tl : 60), (char *)buf);
		}
		snprintf(line, sizeof(line), "%s ino %llu mode %o nlink %u size %llu %s\n", p,
			 (unsigned long long)d->ino[i], a.mode, a.nlink, (unsigned long long)a.size, what);
		dump_put(out, line);
		if (CFS_S_ISDIR(a.mode))
			dump_dir(m, d->ino[i], p, out);
	}
	free(d);
}

static char *ns_dump(struct cowfs_mount *m)
{
	struct dump d = { 0 };
	dump_put(&d, "");
	dump_dir(m, CFS_ROOT_INO, "", &d);
	return d.s;
}

static const char *check_online(struct env *e)
{
	static char msg[200];
	return cowfs_vfs_check(e->m, msg, sizeof(msg)) ? msg : NULL;
}

/* ---- helpers over paths in the root or one level down ---- */

static uint64_t ino_of(struct env *e, uint64_t dir, const char *name)
{
	struct cowfs_inode a;
	int err = cowfs_lookup(e->m, dir, name, strlen(name), &a);
	EXPECT_MSG(!err, "lookup %s: %d", name, err);
	return err ? 0 : a.ino;
}

static uint64_t mk(struct env *e, uint64_t dir, const char *name, char kind)
{
	struct cowfs_inode a = { 0 };
	size_t n = strlen(name);
	int err;
	if (kind == 'd')
		err = cowfs_mkdir(e->m, dir, name, n, 0755, 0, 0, &a);
	else if (kind == 'p')
		err = cowfs_mknod(e->m, dir, name, n, CFS_S_IFIFO | 0644, 0, 0, 0, &a);
	else if (kind == 'l')
		err = cowfs_symlink(e->m, dir, name, n, "target/of/link", 14, 0, 0, &a);
	else
		err = cowfs_create(e->m, dir, name, n, 0644, 0, 0, &a);
	EXPECT_MSG(!err, "make %s: %d", name, err);
	return a.ino;
}

static void put(struct env *e, uint64_t ino, uint64_t off, uint64_t n, unsigned seed)
{
	static uint8_t buf[16384];
	for (uint64_t i = 0; i < n; i++)
		buf[i] = (uint8_t)((off + i) * 131 + seed * 7 + 1);
	EXPECT_EQ_INT(cowfs_write(e->m, ino, off, buf, n, 0), (int64_t)n);
}

/* ---- one case: set-up committed, then changes, then one fsync ---- */

struct ncase {
	const char *name;
	void (*setup)(struct env *e);
	uint64_t (*change)(struct env *e);     /* returns the inode to fsync */
};

/* A new file and its data. */
static uint64_t c_create(struct env *e)
{
	uint64_t f = mk(e, CFS_ROOT_INO, "new", 'f');
	put(e, f, 0, 5000, 1);
	return f;
}

/* A new file two new directories down: the fsync of the file makes the path durable. */
static uint64_t c_deep(struct env *e)
{
	uint64_t d = mk(e, CFS_ROOT_INO, "d1", 'd');
	uint64_t d2 = mk(e, d, "d2", 'd');
	uint64_t f = mk(e, d2, "f", 'f');
	put(e, f, 0, 9000, 2);
	return f;
}

static void s_file(struct env *e)
{
	uint64_t f = mk(e, CFS_ROOT_INO, "a", 'f');
	put(e, f, 0, 6000, 3);
	(void)mk(e, CFS_ROOT_INO, "dir", 'd');
}

/* A hard link: fsync of the old name persists the new one too. */
static uint64_t c_link(struct env *e)
{
	uint64_t a = ino_of(e, CFS_ROOT_INO, "a");
	EXPECT_EQ_INT(cowfs_link(e->m, a, ino_of(e, CFS_ROOT_INO, "dir"), "b", 1, NULL), 0);
	return a;
}

/* The atomic-replace pattern: write a temporary, fsync it, rename it over
 * the old file, fsync the directory.  The old file's inode is freed. */
static uint64_t c_replace(struct env *e)
{
	uint64_t t = mk(e, CFS_ROOT_INO, "a.tmp", 'f');
	put(e, t, 0, 7000, 4);
	EXPECT_EQ_INT(cowfs_fsync(e->m, t, false), 0);
	EXPECT_EQ_INT(cowfs_rename(e->m, CFS_ROOT_INO, "a.tmp", 5, CFS_ROOT_INO, "a", 1, 0), 0);
	return CFS_ROOT_INO;
}

static uint64_t c_unlink(struct env *e)
{
	EXPECT_EQ_INT(cowfs_unlink(e->m, CFS_ROOT_INO, "a", 1), 0);
	EXPECT_EQ_INT(cowfs_rmdir(e->m, CFS_ROOT_INO, "dir", 3), 0);
	return CFS_ROOT_INO;
}

/* A file moved into another directory, then that directory moved: the
 * fsync of the file (a child) carries both renames. */
static uint64_t c_move_dir(struct env *e)
{
	uint64_t a = ino_of(e, CFS_ROOT_INO, "a");
	EXPECT_EQ_INT(cowfs_rename(e->m, CFS_ROOT_INO, "a", 1, ino_of(e, CFS_ROOT_INO, "dir"), "a", 1, 0), 0);
	uint64_t n = mk(e, CFS_ROOT_INO, "n", 'd');
	EXPECT_EQ_INT(cowfs_rename(e->m, CFS_ROOT_INO, "dir", 3, n, "moved", 5, 0), 0);
	return a;
}

static uint64_t c_exchange(struct env *e)
{
	uint64_t d = ino_of(e, CFS_ROOT_INO, "dir");
	(void)mk(e, d, "x", 'f');
	EXPECT_EQ_INT(cowfs_rename(e->m, CFS_ROOT_INO, "a", 1, CFS_ROOT_INO, "dir", 3, CFS_RENAME_EXCHANGE), 0);
	return d;
}

static uint64_t c_special(struct env *e)
{
	uint64_t d = ino_of(e, CFS_ROOT_INO, "dir");
	(void)mk(e, d, "fifo", 'p');
	(void)mk(e, d, "sym", 'l');
	return d;
}

/* Unlinked while open, then closed (freed) before the fsync of another
 * file: the replay must not bring the name back, and frees the inode. */
static uint64_t c_unlink_open(struct env *e)
{
	uint64_t a = ino_of(e, CFS_ROOT_INO, "a");
	EXPECT_EQ_INT(cowfs_open(e->m, a), 0);
	EXPECT_EQ_INT(cowfs_unlink(e->m, CFS_ROOT_INO, "a", 1), 0);
	cowfs_release(e->m, a);
	uint64_t f = mk(e, CFS_ROOT_INO, "other", 'f');
	put(e, f, 0, 100, 5);
	return f;
}

static const struct ncase cases[] = {
	{ "create", NULL, c_create },
	{ "new-path", NULL, c_deep },
	{ "link", s_file, c_link },
	{ "replace", s_file, c_replace },
	{ "unlink+rmdir", s_file, c_unlink },
	{ "move-file-then-dir", s_file, c_move_dir },
	{ "exchange", s_file, c_exchange },
	{ "fifo+symlink", s_file, c_special },
	{ "unlink-open-freed", s_file, c_unlink_open },
};

static void run_case(const struct ncase *c)
{
	struct env e = { 0 };
	EXPECT(ct_image_create(&e.im, "nl", 16 << 20) != NULL);
	struct cowfs_mkfs_opts mk_o = { .node_size = 4096 };
	EXPECT_EQ_INT(cowfs_mkfs(e.im.bdev, &mk_o), 0);
	plat_host_bdev_set_volatile(e.im.bdev, true);
	EXPECT_EQ_INT(mount_env(&e), 0);
	(void)mk(&e, CFS_ROOT_INO, "keep", 'f');
	if (c->setup)
		c->setup(&e);
	cowfs_vfs_sync(e.m);                 /* committed: the log starts here */
	uint64_t target = c->change(&e);
	uint64_t commits = e.m->fsync_commits, logged = e.m->fsync_logged;
	EXPECT_EQ_INT(cowfs_fsync(e.m, target, false), 0);
	EXPECT_MSG(e.m->fsync_commits == commits && e.m->fsync_logged == logged + 1,
		   "%s: the fsync committed instead of logging", c->name);
	char *want = ns_dump(e.m);
	power_cut(&e);
	int err = mount_env(&e);
	EXPECT_MSG(!err, "%s: mount with the replay failed: %d", c->name, err);
	if (err) {
		free(want);
		ct_image_remove(&e.im);
		return;
	}
	char *got = ns_dump(e.m);
	EXPECT_MSG(!strcmp(want, got), "%s: after the replay\n%s\nwanted\n%s", c->name, got, want);
	const char *why = check_online(&e);
	EXPECT_MSG(!why, "%s: %s", c->name, why ? why : "");
	/* New inodes after a replay get numbers of their own. */
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_create(e.m, CFS_ROOT_INO, "after", 5, 0644, 0, 0, &a), 0);
	EXPECT_MSG(!strstr(got, "ino ") || a.ino > 256, "%s", c->name);
	char num[40];
	snprintf(num, sizeof(num), " ino %llu ", (unsigned long long)a.ino);
	EXPECT_MSG(!strstr(got, num), "%s: a new inode took number %llu of a replayed one", c->name,
		   (unsigned long long)a.ino);
	free(want);
	free(got);
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

TEST(fsync_after_each_name_change_is_logged_and_survives_a_power_cut)
{
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* ---- device operations per create + write + fsync ---- */

static struct ct_costs create_costs(bool no_log, unsigned ops, uint64_t *logged)
{
	struct env e = { 0 };
	EXPECT(ct_image_create(&e.im, "nl-cost", 16 << 20) != NULL);
	struct cowfs_mkfs_opts mk_o = { .node_size = 4096 };
	EXPECT_EQ_INT(cowfs_mkfs(e.im.bdev, &mk_o), 0);
	struct cowfs_vfs_opts o = { .data_cache_bytes = 8 << 20, .commit_interval_ms = 3600000,
				    .no_fsync_log = no_log };
	EXPECT_EQ_INT(cowfs_vfs_mount(e.im.bdev, &o, &e.m), 0);
	(void)mk(&e, CFS_ROOT_INO, "first", 'f');
	cowfs_vfs_sync(e.m);
	uint64_t d = mk(&e, CFS_ROOT_INO, "spool", 'd');
	cowfs_vfs_sync(e.m);
	struct plat_host_bdev_stats a, b;
	plat_host_bdev_stats(e.im.bdev, &a);
	uint64_t before = e.m->fsync_logged;
	for (unsigned i = 0; i < ops; i++) {
		char n[16];
		snprintf(n, sizeof(n), "msg%u", i);
		uint64_t f = mk(&e, d, n, 'f');
		put(&e, f, 0, 4096, i);
		EXPECT_EQ_INT(cowfs_fsync(e.m, f, false), 0);
	}
	plat_host_bdev_stats(e.im.bdev, &b);
	*logged = e.m->fsync_logged - before;
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
	return ct_costs_per_op(&a, &b, ops);
}

/* A mail spool's pattern: a new 4 KiB file, fsync'd.  Through the log it
 * costs what an append + fsync does -- the data block and one log block,
 * one FLUSH -- where a commit writes every node on the paths to the new
 * items, and the superblock with FUA. */
TEST(create_write_fsync_costs_one_flush_and_two_writes)
{
	const unsigned ops = 48;
	uint64_t logged, logged0;
	struct ct_costs on = create_costs(false, ops, &logged), off = create_costs(true, ops, &logged0);
	ct_costs_print("fsync_create", true, ops, on);
	ct_costs_print("fsync_create", false, ops, off);
	EXPECT_EQ_INT(logged, ops);
	EXPECT_EQ_INT(logged0, 0);
	EXPECT(on.flushes + on.fua <= 1.0);
	EXPECT(on.writes <= 2.5);     /* a log block holds the records of one create */
	EXPECT(on.writes < off.writes);
}

/* A freed inode's blocks come back: the unlink + rmdir case ends with
 * the space the committed file used free again. */
TEST(replayed_unlink_frees_the_inode_and_its_blocks)
{
	struct env e = { 0 };
	EXPECT(ct_image_create(&e.im, "nl-free", 16 << 20) != NULL);
	struct cowfs_mkfs_opts mk_o = { .node_size = 4096 };
	EXPECT_EQ_INT(cowfs_mkfs(e.im.bdev, &mk_o), 0);
	plat_host_bdev_set_volatile(e.im.bdev, true);
	EXPECT_EQ_INT(mount_env(&e), 0);
	(void)mk(&e, CFS_ROOT_INO, "keep", 'f');
	cowfs_vfs_sync(e.m);
	struct cowfs_info before, after;
	cowfs_info(e.m->fs, &before);
	uint64_t big = mk(&e, CFS_ROOT_INO, "big", 'f');
	for (unsigned i = 0; i < 64; i++)
		put(&e, big, (uint64_t)i * 16384, 16384, 6);
	cowfs_vfs_sync(e.m);                 /* 1 MiB committed */
	EXPECT_EQ_INT(cowfs_unlink(e.m, CFS_ROOT_INO, "big", 3), 0);
	EXPECT_EQ_INT(cowfs_fsync(e.m, CFS_ROOT_INO, false), 0);
	power_cut(&e);
	EXPECT_EQ_INT(mount_env(&e), 0);
	EXPECT_EQ_INT(cowfs_lookup(e.m, CFS_ROOT_INO, "big", 3, NULL), -PLAT_ENOENT);
	struct cowfs_inode a;
	EXPECT_EQ_INT(cowfs_getattr(e.m, big, &a), -PLAT_ENOENT);
	cowfs_vfs_sync(e.m);
	cowfs_info(e.m->fs, &after);
	/* The orphan pass freed the 256 data blocks (a few tree nodes may differ). */
	EXPECT_MSG(after.used_blocks < before.used_blocks + 32, "used %llu blocks before, %llu after",
		   (unsigned long long)before.used_blocks, (unsigned long long)after.used_blocks);
	const char *why = check_online(&e);
	EXPECT_MSG(!why, "%s", why ? why : "");
	cowfs_vfs_unmount(e.m);
	ct_image_remove(&e.im);
}

/* ---- power cut at every write of a namespace workload ---- */

#define MAXPOINTS 32

static uint64_t cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e = { 0 };
	struct ct_cut c = { &e.im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	char *points[MAXPOINTS] = { 0 };
	unsigned np = 0, done = 0;     /* points[done - 1]: the last durable point */
	*why = NULL;
	if (!ct_image_create(&e.im, "nl-cut", 16 << 20)) {
		*why = "image";
		return 0;
	}
	struct cowfs_mkfs_opts mk_o = { .node_size = 4096 };
	if (cowfs_mkfs(e.im.bdev, &mk_o) || mount_env(&e)) {
		*why = "mkfs or mount failed";
		goto out;
	}
	uint64_t a = mk(&e, CFS_ROOT_INO, "a", 'f');
	put(&e, a, 0, 3000, 1);
	cowfs_vfs_sync(e.m);
	cowfs_vfs_unmount(e.m);
	ct_image_reopen(&e.im);
	plat_host_bdev_set_volatile(e.im.bdev, true);
	e.hooks = &hooks;
	if (mount_env(&e)) {
		*why = "mount failed";
		goto out;
	}
	points[np++] = ns_dump(e.m);
	done = 1;
	cowfs_vfs_sync(e.m);       /* this mount's first commit: its log starts */
	/* Each step changes names, then makes them durable (fsync of a file
	 * or a directory, or a commit). */
	for (unsigned step = 0; step < 10 && !c.cut; step++) {
		char n1[16], n2[16];
		snprintf(n1, sizeof(n1), "f%u", step);
		snprintf(n2, sizeof(n2), "g%u", step);
		uint64_t target = CFS_ROOT_INO;
		uint64_t d = step ? ino_of(&e, CFS_ROOT_INO, "sub") : 0;
		switch (step % 5) {
		case 0:
			if (!step)
				d = mk(&e, CFS_ROOT_INO, "sub", 'd');
			target = mk(&e, d, n1, 'f');
			put(&e, target, 0, 2000 + 700 * step, step);
			break;
		case 1:
			EXPECT_EQ_INT(cowfs_link(e.m, a, d, n2, strlen(n2), NULL), 0);
			target = a;
			break;
		case 2:
			(void)mk(&e, CFS_ROOT_INO, n1, 'l');
			EXPECT_EQ_INT(cowfs_rename(e.m, CFS_ROOT_INO, n1, strlen(n1), d, n2, strlen(n2), 0), 0);
			break;
		case 3: {
			/* Replace "a": write, fsync, rename over it. */
			uint64_t t = mk(&e, CFS_ROOT_INO, "tmp", 'f');
			put(&e, t, 0, 1500 + step, step);
			points[np++] = ns_dump(e.m);
			if (cowfs_fsync(e.m, t, false) == 0 && !c.cut)
				done = np;
			if (!c.cut)
				EXPECT_EQ_INT(cowfs_rename(e.m, CFS_ROOT_INO, "tmp", 3, CFS_ROOT_INO, "a", 1, 0), 0);
			a = t;
			break;
		}
		case 4:
			snprintf(n2, sizeof(n2), "g%u", step - 3);     /* the link of step - 3 */
			EXPECT_EQ_INT(cowfs_unlink(e.m, d, n2, strlen(n2)), 0);
			target = d;
			break;
		}
		if (c.cut)
			break;
		points[np++] = ns_dump(e.m);    /* what this fsync makes durable */
		int err = step == 7 ? cowfs_vfs_sync(e.m) : cowfs_fsync(e.m, target, step % 2);
		if (!err && !c.cut)
			done = np;
		if (np >= MAXPOINTS - 2)
			break;
	}
	if (!cut_at) {
		if (e.m->fsync_logged < 6)
			*why = "the workload logged fewer fsyncs than expected";
		goto out;
	}
	if (!c.cut)
		goto out;
	power_cut(&e);
	if (mount_env(&e)) {
		*why = "mount (with the replay) after the power cut failed";
		goto out;
	}
	char *got = ns_dump(e.m);
	/* The last point that returned, or the one in flight. */
	bool ok = !strcmp(got, points[done - 1]) || (done < np && !strcmp(got, points[done]));
	if (!ok) {
		fprintf(stderr, "after the replay:\n%s\nlast durable point:\n%s\n", got, points[done - 1]);
		*why = "the namespace after the replay is not the one of the last fsync";
	}
	free(got);
	if (!*why)
		*why = check_online(&e);
out:
	if (e.m)
		cowfs_vfs_unmount(e.m);
	for (unsigned i = 0; i < np; i++)
		free(points[i]);
	ct_cut_free(&c);
	ct_image_remove(&e.im);
	return c.count;
}

TEST(power_cut_at_every_write_leaves_the_names_of_an_fsync)
{
	ct_cut_every_write(__FILE__, __LINE__, cut_run, getenv("COWFS_STRESS") ? 8 : 2, 20);
}

TEST_MAIN()
