/*
 * The cowfs namespace against a model: random namespace operations
 * (create, mkdir, link, unlink, rmdir, rename with its flags) compared with
 * an in-memory model, with remounts, and power cuts at every device write
 * of a rename-heavy workload leaving the namespace of a commit and a clean
 * check.  Operation by operation: test_cowfs_namei.c.
 */
#define TEST_SUITE "cowfs_ns_model"
#include "tests/host/test.h"
#include "tests/host/cowfs_test.h"
#include "tests/host/cowfs_vfs_test.h"

#define R CFS_ROOT_INO

#define S(x) x, strlen(x)
/* ---- random operations against a model ----
 * Model inodes (index > 0; 0 = the root) and the names that point to them;
 * link counts and parents follow from the names. */
#define MN 96
#define ME 160
struct mname { int dir, node; char name[4]; };
struct model {
	uint64_t ino[MN];
	uint8_t type[MN];              /* 0 free, 'f', 'd', 'l' */
	char target[MN][8];
	struct mname e[ME];
	int ne;
};

static int m_find(const struct model *md, int dir, const char *name)
{
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].dir == dir && !strcmp(md->e[i].name, name))
			return i;
	return -1;
}
static int m_links(const struct model *md, int node)
{
	int n = 0;
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].node == node)
			n++;
		else if (md->type[node] == 'd' && md->e[i].dir == node && md->type[md->e[i].node] == 'd')
			n++;
	return md->type[node] == 'd' ? n + 1 + (node == 0) : n;
}
static int m_parent(const struct model *md, int dir)
{
	if (dir == 0)
		return 0;
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].node == dir)
			return md->e[i].dir;
	return -1;
}
static bool m_within(const struct model *md, int dir, int anc)
{
	for (int d = dir;; d = m_parent(md, d)) {
		if (d == anc)
			return true;
		if (d == 0)
			return false;
	}
}
static bool m_empty(const struct model *md, int dir)
{
	for (int i = 0; i < md->ne; i++)
		if (md->e[i].dir == dir)
			return false;
	return true;
}
static void m_del(struct model *md, int i)
{
	int node = md->e[i].node;
	md->e[i] = md->e[--md->ne];
	if (m_links(md, node) == 0 || (md->type[node] == 'd' && m_parent(md, node) < 0))
		md->type[node] = 0;
}
static void m_add(struct model *md, int dir, const char *name, int node)
{
	md->e[md->ne].dir = dir;
	md->e[md->ne].node = node;
	snprintf(md->e[md->ne].name, sizeof(md->e[0].name), "%s", name);
	md->ne++;
}
static int m_new(struct model *md)
{
	for (int i = 1; i < MN; i++)
		if (!md->type[i])
			return i;
	return -1;
}
static int m_pick(const struct model *md, uint64_t *rng, char type)
{
	int n = 0, c[MN];
	for (int i = 0; i < MN; i++)
		if (md->type[i] && (!type || md->type[i] == type))
			c[n++] = i;
	return n ? c[ct_rand(rng) % n] : -1;
}

/* Model side of rename: the expected result, and the change on success. */
static int m_rename(struct model *md, int od, const char *on, int nd, const char *nn, unsigned fl)
{
	int s = m_find(md, od, on), t = m_find(md, nd, nn);
	if (s < 0)
		return -PLAT_ENOENT;
	int sn = md->e[s].node, tn = t >= 0 ? md->e[t].node : -1;
	if (tn == sn)
		return 0;
	if ((fl & CFS_RENAME_NOREPLACE) && t >= 0)
		return -PLAT_EEXIST;
	if ((fl & CFS_RENAME_EXCHANGE) && t < 0)
		return -PLAT_ENOENT;
	bool sdir = md->type[sn] == 'd', ddir = t >= 0 && md->type[tn] == 'd';
	if (sdir && od != nd && m_within(md, nd, sn))
		return -PLAT_EINVAL;
	if ((fl & CFS_RENAME_EXCHANGE) && ddir && od != nd && m_within(md, od, tn))
		return -PLAT_EINVAL;
	if (fl & CFS_RENAME_EXCHANGE) {
		md->e[s].node = tn;
		md->e[t].node = sn;
		return 0;
	}
	if (t >= 0) {
		if (sdir && !ddir)
			return -PLAT_ENOTDIR;
		if (!sdir && ddir)
			return -PLAT_EISDIR;
		if (ddir && !m_empty(md, tn))
			return -PLAT_ENOTEMPTY;
	}
	md->e[s].dir = nd;
	snprintf(md->e[s].name, sizeof(md->e[0].name), "%s", nn);
	if (t >= 0)
		m_del(md, t);
	return 0;
}

struct cmp_ctx { const struct model *md; int dir; int seen; const char *why; };
static int cmp_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct cmp_ctx *c = arg;
	char n[8];
	(void)type;
	(void)next;
	if (len >= sizeof(n)) {
		c->why = "readdir returned a name the model never made";
		return 1;
	}
	memcpy(n, name, len);
	n[len] = 0;
	if (!strcmp(n, ".")) {
		if (ino != c->md->ino[c->dir])
			c->why = "\".\" is not the directory";
		return c->why != NULL;
	}
	if (!strcmp(n, "..")) {
		if (ino != c->md->ino[m_parent(c->md, c->dir)])
			c->why = "\"..\" is not the parent";
		return c->why != NULL;
	}
	int i = m_find(c->md, c->dir, n);
	if (i < 0 || c->md->ino[c->md->e[i].node] != ino) {
		c->why = i < 0 ? "readdir has a name the model does not" : "a name points to the wrong inode";
		return 1;
	}
	c->seen++;
	return 0;
}

static const char *compare(struct cowfs_mount *m, const struct model *md)
{
	for (int n = 0; n < MN; n++) {
		if (!md->type[n])
			continue;
		struct cowfs_inode in;
		if (cowfs_getattr(m, md->ino[n], &in))
			return "an inode of the model is missing";
		if ((int)in.nlink != m_links(md, n))
			return "link count differs from the model";
		if (md->type[n] == 'l') {
			char buf[16];
			size_t len;
			if (cowfs_readlink(m, md->ino[n], buf, sizeof(buf), &len) || len != strlen(md->target[n]) ||
			    memcmp(buf, md->target[n], len))
				return "symlink target differs";
		}
		if (md->type[n] != 'd')
			continue;
		struct cmp_ctx c = { md, n, 0, NULL };
		if (cowfs_readdir(m, md->ino[n], 0, cmp_cb, &c))
			return "readdir failed";
		if (c.why)
			return c.why;
		int want = 0;
		for (int i = 0; i < md->ne; i++)
			want += md->e[i].dir == n;
		if (c.seen != want)
			return "readdir misses names of the model";
	}
	return check_fs(m);
}

/* One random operation on both; returns what the filesystem said, sets
 * *why when it disagrees with the model. */
static int random_op(struct cowfs_mount *m, struct model *md, uint64_t *rng, bool renames_only, const char **why)
{
	char name[4], name2[4];
	snprintf(name, sizeof(name), "%c", 'a' + (int)(ct_rand(rng) % 5));
	snprintf(name2, sizeof(name2), "%c", 'a' + (int)(ct_rand(rng) % 5));
	int dir = m_pick(md, rng, 'd'), dir2 = m_pick(md, rng, 'd');
	if (md->ne && ct_rand(rng) % 2) {   /* half the time an existing name */
		const struct mname *pick = &md->e[ct_rand(rng) % md->ne];
		dir = pick->dir;
		snprintf(name, sizeof(name), "%s", pick->name);
	}
	int op = renames_only ? 7 + (int)(ct_rand(rng) % 3) : (int)(ct_rand(rng) % 10);
	if (renames_only && ct_rand(rng) % 4 == 0)
		op = (int)(ct_rand(rng) % 3);
	int want = 0, got, i = m_find(md, dir, name), node = i >= 0 ? md->e[i].node : -1;
	struct cowfs_inode in;
	switch (op) {
	case 0: case 1: case 2: {   /* create, mkdir, symlink */
		int nn = m_new(md);
		if (nn < 0 || md->ne == ME)
			return 0;
		want = i >= 0 ? -PLAT_EEXIST : 0;
		if (op == 0)
			got = cowfs_create(m, md->ino[dir], S(name), 0644, 0, 0, &in);
		else if (op == 1)
			got = cowfs_mkdir(m, md->ino[dir], S(name), 0755, 0, 0, &in);
		else
			got = cowfs_symlink(m, md->ino[dir], S(name), S(name2), 0, 0, &in);
		if (!got && !want) {
			md->type[nn] = "fdl"[op];
			md->ino[nn] = in.ino;
			snprintf(md->target[nn], sizeof(md->target[0]), "%s", name2);
			m_add(md, dir, name, nn);
		}
		break;
	}
	case 3: {   /* link */
		int src = m_pick(md, rng, 0);
		if (src < 0 || md->ne == ME)
			return 0;
		want = md->type[src] == 'd' ? -PLAT_EPERM : i >= 0 ? -PLAT_EEXIST : 0;
		got = cowfs_link(m, md->ino[src], md->ino[dir], S(name), NULL);
		if (!got && !want)
			m_add(md, dir, name, src);
		break;
	}
	case 4: case 5:   /* unlink */
		want = i < 0 ? -PLAT_ENOENT : md->type[node] == 'd' ? -PLAT_EISDIR : 0;
		got = cowfs_unlink(m, md->ino[dir], S(name));
		if (!got && !want)
			m_del(md, i);
		break;
	case 6:   /* rmdir */
		want = i < 0 ? -PLAT_ENOENT : md->type[node] != 'd' ? -PLAT_ENOTDIR
		       : !m_empty(md, node) ? -PLAT_ENOTEMPTY : 0;
		got = cowfs_rmdir(m, md->ino[dir], S(name));
		if (!got && !want)
			m_del(md, i);
		break;
	default: {   /* rename, NOREPLACE, EXCHANGE */
		unsigned fl = op == 7 ? 0 : op == 8 ? CFS_RENAME_NOREPLACE : CFS_RENAME_EXCHANGE;
		struct model before = *md;
		want = m_rename(md, dir, name, dir2, name2, fl);
		got = cowfs_rename(m, md->ino[dir], S(name), md->ino[dir2], S(name2), fl);
		if (got || want)
			*md = before;
		break;
	}
	}
	if (got != want) {
		static char msg[120];
		snprintf(msg, sizeof(msg), "op %d %s -> %s: filesystem says %d, model %d", op, name, name2, got, want);
		*why = msg;
	}
	return got;
}

static void model_init(struct model *md)
{
	memset(md, 0, sizeof(*md));
	md->type[0] = 'd';
	md->ino[0] = R;
}

TEST(random_namespace_against_model_with_remounts)
{
	struct env e;
	struct model *md = malloc(sizeof(*md));
	uint64_t rng = 0x5eed1234;
	const char *seed = getenv("COWFS_SEED");
	if (seed)
		rng = strtoull(seed, NULL, 0);
	printf("# seed 0x%llx (COWFS_SEED replays)\n", (unsigned long long)rng);
	model_init(md);
	EXPECT_EQ_INT(env_open(&e, "nm-random", 4096), 0);
	unsigned ops = getenv("COWFS_STRESS") ? 20000 : 2000;
	const char *why = NULL;
	for (unsigned k = 0; k < ops && !why; k++) {
		random_op(e.m, md, &rng, false, &why);
		if (!why && k % 250 == 249) {
			why = compare(e.m, md);
			if (!why && (k / 250) % 2 && env_remount(&e))
				why = "remount failed";
			if (!why)
				why = compare(e.m, md);
		}
		if (why) {
			char msg[300];
			snprintf(msg, sizeof(msg), "after op %u: %s", k, why);
			test_fail_at(__FILE__, __LINE__, msg);
		}
	}
	env_close(&e);
	free(md);
}

/* ---- power cuts ---- */
#define CUT_GENS 256
struct cut_hist { struct model at[CUT_GENS]; bool have[CUT_GENS]; };

static uint64_t rename_cut_run(uint64_t cut_at, uint64_t seed, const char **why)
{
	struct env e = { 0 };
	struct ct_cut c = { &e.im, 0, cut_at ? cut_at : UINT64_MAX, seed | 1, false, NULL, 0, 0, 0 };
	struct cowfs_hooks hooks = { ct_cut_before_write, ct_cut_before_flush, &c };
	struct cut_hist *h = calloc(1, sizeof(*h));
	struct model *md = malloc(sizeof(*md));
	uint64_t rng = 0xc0ffee;
	*why = NULL;
	model_init(md);
	ct_image_create(&e.im, "nm-cut", 512 * 4096);
	struct cowfs_mkfs_opts mk = { .node_size = 4096 };
	if (cowfs_mkfs(e.im.bdev, &mk) || (plat_host_bdev_set_volatile(e.im.bdev, true), env_mount(&e, &hooks))) {
		*why = "setup failed";
		goto out;
	}
	int err = 0;
	/* A few directories and files, then renames (a quarter other ops),
	 * each made durable by a commit of its own. */
	for (unsigned k = 0; k < 200 && !err; k++) {
		const char *opwhy = NULL;
		struct model before = *md;
		err = random_op(e.m, md, &rng, k >= 12, &opwhy);
		if (opwhy && !c.cut) {
			*why = opwhy;
			break;
		}
		if (err && !c.cut)
			err = 0;   /* a refused operation, as the model expected */
		if (err) {
			*md = before;
			continue;
		}
		/* The commit about to run holds this state: it counts once its
		 * superblock is durable, even if the commit then fails. */
		struct cowfs_info info;
		cowfs_info(cowfs_vfs_fs(e.m), &info);
		if (info.gen < CUT_GENS) {
			h->at[info.gen] = *md;
			h->have[info.gen] = true;
		}
		err = cowfs_vfs_sync(e.m);
	}
	if (err && !c.cut && !*why)
		*why = "workload failed without a power cut";
	cowfs_vfs_unmount(e.m);
	e.m = NULL;
	if (*why || !ct_image_reopen(&e.im))
		goto out;
	/* Which commit survived: read it before the mount changes anything. */
	struct cowfs *fs;
	uint64_t g = UINT64_MAX;
	struct cowfs_mount_opts ro = { .readonly = true };
	if (!cowfs_mount(e.im.bdev, &ro, &fs)) {
		struct cowfs_info info;
		cowfs_info(fs, &info);
		g = info.committed_gen;
		cowfs_unmount(fs);
	}
	if (env_mount(&e, NULL)) {
		*why = "mount after the power cut failed";
		goto out;
	}
	if (g == 1) {
		/* mkfs's commit: the namespace is the empty root. */
		struct model empty;
		model_init(&empty);
		*why = compare(e.m, &empty);
	} else if (g >= CUT_GENS || !h->have[g]) {
		*why = "mounted a generation the workload never committed";
	} else {
		*why = compare(e.m, &h->at[g]);
	}
out:
	if (e.m)
		cowfs_vfs_unmount(e.m);
	e.m = NULL;
	ct_cut_free(&c);
	ct_image_remove(&e.im);
	free(h);
	free(md);
	return c.count;
}

TEST(power_cut_at_every_write_during_renames)
{
	ct_cut_every_write(__FILE__, __LINE__, rename_cut_run, getenv("COWFS_STRESS") ? 20 : 1, 150);
}

TEST_MAIN()
