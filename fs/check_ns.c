/*
 * Namespace check of a subvolume (fsck; docs/format.md §6 "Namespace
 * rules"): what fs/namei.c keeps true at every commit.
 *   - a file's or symlink's link count is its number of names; a
 *     directory's is 2 plus its subdirectories (the root has no name);
 *   - a directory has exactly one name, and following ".." (its INODE_REF)
 *     from any directory reaches the root (no loops, no detached trees);
 *   - an inode with link count 0 has an ORPHAN item, and an ORPHAN item
 *     names an inode with link count 0;
 *   - a symlink has its SYMLINK item, as long as its size says;
 *   - extended attributes (XATTR, XATTR_VALUE) belong to an existing inode.
 * One in-order walk: the items of one inode are adjacent (objectid
 * first), ORPHAN items (objectid 5) come before every inode.  Every
 * problem is reported (as many as fit in msg), not just the first.
 *
 * Repair (fsck --repair) fixes what follows from the names alone: a wrong
 * link count becomes the count of names (0 for a nameless inode, which
 * then gets its ORPHAN item so the next mount frees it), ORPHAN items are
 * added or removed to match, attributes of an inode that does not exist
 * are deleted.  A directory with two names or outside the
 * root's tree is left alone (which name is right cannot be known).
 */
#include "fs/inode.h"
#include "fs/cowfs_int.h"
#include "fs/xattr.h"

#define MODE_FMT 0170000u
#define MODE_DIR 0040000u
#define MODE_LNK 0120000u

struct ns_dir { uint64_t ino, parent; uint8_t state; };   /* state: 0 unknown, 1 walking, 2 reaches root */
enum { FIX_NLINK, FIX_ADD_ORPHAN, FIX_DEL_ORPHAN, FIX_DEL_XATTRS };
struct ns_fix { uint64_t ino; uint32_t nlink; uint8_t kind; };

struct ns {
	struct cowfs_tree *t;
	char *msg;
	size_t msglen, used;
	uint64_t problems;
	/* ORPHAN items, in inode order */
	uint64_t *orphans;
	size_t norphans, caporphans;
	struct ns_dir *dirs;
	size_t ndirs, capdirs;
	bool repair;
	struct ns_fix *fixes;
	size_t nfixes, capfixes;
	/* the inode being walked */
	uint64_t ino;
	bool have_inode;
	struct cowfs_inode in;
	uint64_t names, subdirs, parent, xattrs;
	bool have_symlink;
	uint32_t symlink_len;
	int err;
};

static void problem(struct ns *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct ns *c, const char *fmt, ...)
{
	c->problems++;
	if (c->used + 4 >= c->msglen)
		return;
	if (c->used)
		c->used += (size_t)plat_snprintf(c->msg + c->used, c->msglen - c->used, "; ");
	va_list ap;
	va_start(ap, fmt);
	int n = plat_vsnprintf(c->msg + c->used, c->msglen - c->used, fmt, ap);
	va_end(ap);
	c->used += (size_t)n < c->msglen - c->used ? (size_t)n : c->msglen - c->used - 1;
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *p = plat_alloc(ncap * size);
	if (!p)
		return false;
	if (*arr) {
		plat_memcpy(p, *arr, n * size);
		plat_free(*arr);
	}
	*arr = p;
	*cap = ncap;
	return true;
}

static bool is_orphan(const struct ns *c, uint64_t ino)
{
	size_t lo = 0, hi = c->norphans;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->orphans[mid] == ino)
			return true;
		if (c->orphans[mid] < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static struct ns_dir *find_dir(const struct ns *c, uint64_t ino)
{
	size_t lo = 0, hi = c->ndirs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->dirs[mid].ino == ino)
			return &c->dirs[mid];
		if (c->dirs[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void add_fix(struct ns *c, uint64_t ino, uint8_t kind, uint32_t nlink)
{
	if (!grow((void **)&c->fixes, &c->capfixes, c->nfixes, sizeof(*c->fixes))) {
		c->err = -PLAT_ENOMEM;
		return;
	}
	c->fixes[c->nfixes++] = (struct ns_fix){ ino, nlink, kind };
}

/* What the names say c->ino's count and ORPHAN item must be. */
static void plan_fixes(struct ns *c, uint64_t want, bool dir)
{
	uint32_t nlink = c->in.nlink;
	if (nlink != want && !(dir && c->names > 1) && !(c->ino == CFS_ROOT_INO && c->names)) {
		nlink = (uint32_t)want;
		add_fix(c, c->ino, FIX_NLINK, nlink);
	}
	if (nlink == 0 && !is_orphan(c, c->ino))
		add_fix(c, c->ino, FIX_ADD_ORPHAN, 0);
	if (nlink != 0 && is_orphan(c, c->ino))
		add_fix(c, c->ino, FIX_DEL_ORPHAN, 0);
}

/* All items of c->ino were seen: judge it. */
static void finish_inode(struct ns *c)
{
	unsigned long long ino = c->ino;
	if (!c->have_inode) {
		if (c->names || c->subdirs)
			problem(c, "inode %llu: names or entries without an inode item", ino);
		if (c->xattrs) {
			problem(c, "inode %llu: %llu extended attribute items without an inode item", ino,
				(unsigned long long)c->xattrs);
			if (c->repair)
				add_fix(c, c->ino, FIX_DEL_XATTRS, 0);
		}
		return;
	}
	bool dir = (c->in.mode & MODE_FMT) == MODE_DIR, root = c->ino == CFS_ROOT_INO;
	uint64_t want = dir ? (c->names || root ? 2 + c->subdirs : 0) : c->names;
	if (c->in.nlink != want)
		problem(c, "inode %llu: link count %u, but %llu %s", ino, c->in.nlink, (unsigned long long)want,
			dir ? "from its name and subdirectories" : "names");
	if (dir && root && c->names)
		problem(c, "the root directory has a name in a directory");
	if (dir && !root && c->names > 1)
		problem(c, "directory %llu has %llu names (\"..\" is ambiguous)", ino, (unsigned long long)c->names);
	if (c->in.nlink == 0 && !is_orphan(c, c->ino))
		problem(c, "inode %llu: link count 0 without an ORPHAN item (its space would leak)", ino);
	if (c->in.nlink != 0 && is_orphan(c, c->ino))
		problem(c, "inode %llu: ORPHAN item, but %u links (the next mount would keep it)", ino, c->in.nlink);
	if ((c->in.mode & MODE_FMT) == MODE_LNK && (!c->have_symlink || c->symlink_len != c->in.size))
		problem(c, "symlink %llu: target item %s", ino, c->have_symlink ? "length differs from the size"
										   : "missing");
	if (c->repair)
		plan_fixes(c, want, dir);
	if (dir && c->names) {   /* (more than one name was reported above) */
		if (!grow((void **)&c->dirs, &c->capdirs, c->ndirs, sizeof(*c->dirs))) {
			c->err = -PLAT_ENOMEM;
			return;
		}
		c->dirs[c->ndirs++] = (struct ns_dir){ c->ino, c->parent, 0 };
	}
}

static int ns_item(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct ns *c = arg;
	const uint8_t *d = data;
	if (k->objectid == CFS_ORPHAN_OBJECTID && k->type == CFS_ITEM_ORPHAN) {
		if (!grow((void **)&c->orphans, &c->caporphans, c->norphans, sizeof(uint64_t)))
			return c->err = -PLAT_ENOMEM;
		c->orphans[c->norphans++] = k->offset;
		return 0;
	}
	if (k->objectid < CFS_ROOT_INO)
		return 0;
	if (k->objectid != c->ino) {
		if (c->ino)
			finish_inode(c);
		if (c->err)
			return c->err;
		c->ino = k->objectid;
		c->have_inode = c->have_symlink = false;
		c->names = c->subdirs = c->xattrs = 0;
	}
	switch (k->type) {
	case CFS_ITEM_INODE:
		if (len == CFS_INODE_ITEM_SIZE) {
			c->have_inode = true;
			cowfs_inode_decode(d, &c->in);
		}
		break;
	case CFS_ITEM_INODE_REF:   /* records {seq u64, name_len u16, name}; malformed ones: check_dir.c */
		for (uint32_t off = 0; off + 10 <= len; off += 10 + cfs_get16(d + off + 8))
			c->names++;
		c->parent = k->offset;
		break;
	case CFS_ITEM_DIR_INDEX:   /* one per name in this directory */
		if (len >= 9 && d[8] == CFS_DT_DIR)
			c->subdirs++;
		break;
	case CFS_ITEM_SYMLINK:
		c->have_symlink = true;
		c->symlink_len = len;
		break;
	case CFS_ITEM_XATTR:
	case CFS_ITEM_XATTR_VALUE:
		c->xattrs++;
		break;
	}
	return 0;
}

/* Every directory reaches the root by "..".  state: 0 not seen, 1 on the
 * path being walked, 2 reaches the root, 3 does not (reported). */
static void check_reachable(struct ns *c)
{
	for (size_t i = 0; i < c->ndirs; i++) {
		struct ns_dir *d = &c->dirs[i];
		bool ok;
		for (;;) {
			if (d->state >= 2) {
				ok = d->state == 2;
				break;
			}
			if (d->state == 1) {   /* back on this walk's path: a loop */
				ok = false;
				break;
			}
			d->state = 1;
			if (d->parent == CFS_ROOT_INO) {
				ok = true;
				break;
			}
			if (!(d = find_dir(c, d->parent))) {
				ok = false;
				break;
			}
		}
		if (!ok && c->dirs[i].state == 1)
			problem(c, "directory %llu is not reachable from the root (a loop of \"..\" or a parent that "
				   "is not a directory)", (unsigned long long)c->dirs[i].ino);
		for (d = &c->dirs[i]; d && d->state == 1; d = find_dir(c, d->parent))
			d->state = ok ? 2 : 3;
	}
}

static int ns_walk(struct ns *c, struct cowfs_tree *t, char *msg, size_t msglen, uint64_t *problems)
{
	c->t = t;
	c->msg = msg;
	c->msglen = msglen;
	if (msglen)
		msg[0] = 0;
	struct cowfs_key from = { 0, 0, 0 }, to = { UINT64_MAX, 255, UINT64_MAX };
	int err = cowfs_bt_iterate(t, &from, &to, ns_item, c);
	if (!err && !c->err && c->ino)
		finish_inode(c);
	if (!err && !c->err) {
		for (size_t i = 0; i < c->norphans; i++) {
			struct cowfs_inode in;
			if (cowfs_inode_read(t, c->orphans[i], &in) == -PLAT_ENOENT) {
				problem(c, "ORPHAN item names inode %llu, which does not exist",
					(unsigned long long)c->orphans[i]);
				if (c->repair)
					add_fix(c, c->orphans[i], FIX_DEL_ORPHAN, 0);
			}
		}
		check_reachable(c);
	}
	err = err < 0 ? err : c->err;
	if (problems)
		*problems = c->problems;
	if (!err && c->problems)
		err = -PLAT_EIO;
	return err;
}

static void ns_free(struct ns *c)
{
	plat_free(c->orphans);
	plat_free(c->dirs);
	plat_free(c->fixes);
	plat_free(c);
}

int cowfs_check_namespace(struct cowfs_tree *t, char *msg, size_t msglen, uint64_t *problems)
{
	struct ns *c = plat_zalloc(sizeof(*c));
	if (!c)
		return -PLAT_ENOMEM;
	int err = ns_walk(c, t, msg, msglen, problems);
	ns_free(c);
	return err;
}

static int apply_fix(struct cowfs_tree *t, const struct ns_fix *f, char *line, size_t len)
{
	struct cowfs_key k = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, f->ino };
	struct cowfs_inode in;
	int err;
	switch (f->kind) {
	case FIX_NLINK:
		if ((err = cowfs_inode_read(t, f->ino, &in)))
			return err;
		plat_snprintf(line, len, "inode %llu: link count %u set to %u (its names)", (unsigned long long)f->ino,
			      in.nlink, f->nlink);
		in.nlink = f->nlink;
		return cowfs_inode_write(t, &in);
	case FIX_DEL_XATTRS:
		plat_snprintf(line, len, "inode %llu does not exist: its extended attributes removed",
			      (unsigned long long)f->ino);
		return cowfs_xattr_delete_all(t, f->ino);
	case FIX_ADD_ORPHAN:
		plat_snprintf(line, len, "inode %llu: no names left: ORPHAN item added (freed at the next mount)",
			      (unsigned long long)f->ino);
		return cowfs_bt_insert(t, &k, NULL, 0);
	default:
		plat_snprintf(line, len, "inode %llu: ORPHAN item removed", (unsigned long long)f->ino);
		return cowfs_bt_delete(t, &k);
	}
}

int cowfs_repair_namespace(struct cowfs_tree *t, cowfs_report_fn report, void *arg, unsigned *fixed)
{
	char msg[256], line[160];
	struct ns *c = plat_zalloc(sizeof(*c));
	*fixed = 0;
	if (!c)
		return -PLAT_ENOMEM;
	c->repair = true;
	int err = ns_walk(c, t, msg, sizeof(msg), NULL);
	if (err == -PLAT_EIO)
		err = 0;   /* problems found: the fixes below */
	for (size_t i = 0; !err && i < c->nfixes; i++) {
		if (!(err = apply_fix(t, &c->fixes[i], line, sizeof(line)))) {
			(*fixed)++;
			if (report)
				report(arg, line);
		}
	}
	ns_free(c);
	return err;
}
