/*
 * rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE (fs/vfs.h), as one
 * step of one transaction under the filesystem lock (fs/namei.c says why
 * that makes it atomic).
 *
 * Every refusal is decided before the first change: missing source,
 * existing target (NOREPLACE), missing target (EXCHANGE), file over
 * directory and back, non-empty target directory, a directory moved into
 * its own subtree.  Then the names change: the target's name goes
 * (counted down; orphaned at 0), the source's name moves.  A directory's
 * ".." is its INODE_REF back-reference, which moves with its name, so only
 * the link counts of the two parents change.
 */
#include "fs/namei_int.h"

/* Whether directory `ino` is `anc` or lies below it: walk ".." up to the
 * root.  Depth bounded by the number of inodes ever created. */
static int is_within(struct cowfs_mount *m, uint64_t ino, uint64_t anc, bool *within)
{
	for (uint64_t steps = 0;; steps++) {
		if (ino == anc) {
			*within = true;
			return 0;
		}
		if (ino == CFS_ROOT_INO) {
			*within = false;
			return 0;
		}
		uint64_t parent;
		int err = cowfs_dir_parent(m->tree, ino, &parent);
		if (err)
			return err;
		if (steps > (1ull << 32)) {
			plat_log(PLAT_LOG_ERR, "cowfs: directory %llu: \"..\" chain loops", (unsigned long long)ino);
			return -PLAT_EIO;
		}
		ino = parent;
	}
}

struct rn {
	struct cowfs_mount *m;
	struct cowfs_vnode *od, *nd;     /* old and new parent (may be one vnode) */
	struct cowfs_vnode *src, *dst;   /* dst NULL: no target */
	const char *on, *nn;
	size_t ol, nl;
	unsigned flags;
};

static int rn_check(struct rn *r)
{
	struct cowfs_mount *m = r->m;
	bool sdir = CFS_S_ISDIR(r->src->rec.mode), ddir = r->dst && CFS_S_ISDIR(r->dst->rec.mode), within;
	int err;
	if (r->od->rec.nlink == 0 || r->nd->rec.nlink == 0)
		return -PLAT_ENOENT;
	if ((r->flags & CFS_RENAME_NOREPLACE) && r->dst)
		return -PLAT_EEXIST;
	if ((r->flags & CFS_RENAME_EXCHANGE) && !r->dst)
		return -PLAT_ENOENT;
	/* A directory must not land inside itself (for EXCHANGE, both ways). */
	if (sdir && r->od != r->nd) {
		if ((err = is_within(m, r->nd->rec.ino, r->src->rec.ino, &within)))
			return err;
		if (within)
			return -PLAT_EINVAL;
	}
	if ((r->flags & CFS_RENAME_EXCHANGE) && ddir && r->od != r->nd) {
		if ((err = is_within(m, r->od->rec.ino, r->dst->rec.ino, &within)))
			return err;
		if (within)
			return -PLAT_EINVAL;
	}
	if (r->flags & CFS_RENAME_EXCHANGE) {
		if (r->od != r->nd && sdir != ddir) {
			struct cowfs_vnode *gains = sdir ? r->nd : r->od;
			if (gains->rec.nlink >= CFS_LINK_MAX)
				return -PLAT_EMLINK;
		}
		return 0;
	}
	if (r->dst) {
		if (sdir && !ddir)
			return -PLAT_ENOTDIR;
		if (!sdir && ddir)
			return -PLAT_EISDIR;
		if (ddir && (err = cowfs_dir_empty(m->tree, r->dst->rec.ino)) <= 0)
			return err < 0 ? err : -PLAT_ENOTEMPTY;
	} else if (sdir && r->od != r->nd && r->nd->rec.nlink >= CFS_LINK_MAX) {
		return -PLAT_EMLINK;
	}
	return 0;
}

/* Directory counts when directory vn moves from parent `from` to `to`. */
static void move_dir_link(struct cowfs_vnode *vn, struct cowfs_vnode *from, struct cowfs_vnode *to)
{
	if (!CFS_S_ISDIR(vn->rec.mode) || from == to)
		return;
	from->rec.nlink--;
	to->rec.nlink++;
}

static int rn_apply(struct rn *r)
{
	struct cowfs_mount *m = r->m;
	uint64_t sino = r->src->rec.ino;
	int err;
	if (r->flags & CFS_RENAME_EXCHANGE) {
		uint64_t dino = r->dst->rec.ino;
		if ((err = cowfs_name_remove(r->od, r->on, r->ol)))
			return err;   /* the first change: a refusal changed nothing */
		if ((err = cowfs_name_remove(r->nd, r->nn, r->nl)) ||
		    (err = cowfs_name_add(r->od, r->on, r->ol, dino, r->dst->rec.mode)) ||
		    (err = cowfs_name_add(r->nd, r->nn, r->nl, sino, r->src->rec.mode)))
			return cowfs_half_done(m, err, "rename");
		move_dir_link(r->src, r->od, r->nd);
		move_dir_link(r->dst, r->nd, r->od);
		cowfs_touch(r->dst, false);
	} else {
		if (r->dst) {
			if ((err = cowfs_name_remove(r->nd, r->nn, r->nl)))
				return err;   /* the first change */
			if ((err = cowfs_drop_link(m, r->dst)))
				return cowfs_half_done(m, err, "rename");
			if (CFS_S_ISDIR(r->dst->rec.mode))
				r->nd->rec.nlink--;
			if ((err = cowfs_name_remove(r->od, r->on, r->ol)))
				return cowfs_half_done(m, err, "rename");
		} else if ((err = cowfs_name_remove(r->od, r->on, r->ol))) {
			return err;   /* the first change */
		}
		if ((err = cowfs_name_add(r->nd, r->nn, r->nl, sino, r->src->rec.mode)))
			return cowfs_half_done(m, err, "rename");
		move_dir_link(r->src, r->od, r->nd);
	}
	cowfs_touch(r->src, false);
	cowfs_touch(r->od, true);
	cowfs_touch(r->nd, true);
	return 0;
}

int cowfs_rename(struct cowfs_mount *m, uint64_t olddir, const char *oldname, size_t oldlen, uint64_t newdir,
		 const char *newname, size_t newlen, unsigned flags)
{
	struct rn r = { .m = m, .on = oldname, .ol = oldlen, .nn = newname, .nl = newlen, .flags = flags };
	uint64_t sino, dino;
	int err;
	if (flags & ~(CFS_RENAME_NOREPLACE | CFS_RENAME_EXCHANGE) ||
	    flags == (CFS_RENAME_NOREPLACE | CFS_RENAME_EXCHANGE))
		return -PLAT_EINVAL;
	if ((err = cowfs_name_valid(oldname, oldlen)) || (err = cowfs_name_valid(newname, newlen)))
		return err;
	cowfs_vfs_lock(m);
	if ((err = cowfs_writable(m->fs)))
		goto out;
	if ((err = cowfs_get_dir(m, olddir, &r.od)))
		goto out;
	if ((err = cowfs_get_dir(m, newdir, &r.nd)))
		goto put_od;
	if ((err = cowfs_dir_lookup(m->tree, olddir, oldname, oldlen, &sino, NULL)))
		goto put_nd;
	err = cowfs_dir_lookup(m->tree, newdir, newname, newlen, &dino, NULL);
	if (err && err != -PLAT_ENOENT)
		goto put_nd;
	bool has_dst = !err;
	if (has_dst && dino == sino) {
		/* Two names of one inode (or the same name): POSIX says do nothing. */
		err = 0;
		goto put_nd;
	}
	if ((err = cowfs_vget(m, sino, &r.src)))
		goto put_nd;
	if (has_dst && (err = cowfs_vget(m, dino, &r.dst)))
		goto put_src;
	if (!(err = rn_check(&r))) {
		cowfs_ns_begin(m);
		err = rn_apply(&r);
		cowfs_ns_end(m);
	}
	if (r.dst)
		cowfs_vput(r.dst);
put_src:
	cowfs_vput(r.src);
put_nd:
	cowfs_vput(r.nd);
put_od:
	cowfs_vput(r.od);
out:
	cowfs_vfs_unlock(m);
	return err;
}
