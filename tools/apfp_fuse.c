/*
 * apfp-fuse: an export of an appliance (or of build/apfp-serve) mounted over
 * the file protocol with FUSE (libfuse3, low-level API).
 *
 *   apfp-fuse HOST:PORT/EXPORT MOUNTPOINT [-f] [-o OPTIONS]
 *   mount -t fuse.apfp-fuse HOST:PORT/EXPORT MOUNTPOINT -o secret_file=F   (mount.fuse3)
 *
 * Options (with the usual FUSE ones): secret_file=F (the shared secret, first
 * line) or anon (read-only anonymous session), attr_timeout=S and
 * entry_timeout=S (kernel caching of attributes and names, default 1 s),
 * writeback (the kernel's writeback cache), ro, timeout=S (each wait on the
 * server, default 10 s), conns=N (connections, default 8).
 *
 * Writes go out UNSTABLE and are committed at fsync, flush (close) and
 * release; the client keeps a copy of every uncommitted byte and writes it
 * again if the server's verifier changed (it restarted and may have lost
 * them).  O_DIRECT opens bypass the kernel's page cache (direct_io) and
 * their writes are FILE_SYNC: whoever asks for O_DIRECT gets no caching on
 * either side.  A server that cannot be reached gives EIO (ETIMEDOUT after a
 * timeout) with a sentence on stderr; every wait has the timeout.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "tools/apfp_fuse.h"

static struct afuse *af(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Per open file: whether it bypasses caches (O_DIRECT). */
struct ofile {
	bool direct;
};

/* Per open directory: the server's cookie verifier. */
struct odir {
	struct proto_verf verf;
};

static void to_stat(struct afuse *a, const struct proto_attr *at, struct stat *st)
{
	static const mode_t type[] = { [PROTO_T_REG] = S_IFREG, [PROTO_T_DIR] = S_IFDIR, [PROTO_T_LNK] = S_IFLNK,
				       [PROTO_T_BLK] = S_IFBLK, [PROTO_T_CHR] = S_IFCHR, [PROTO_T_SOCK] = S_IFSOCK,
				       [PROTO_T_FIFO] = S_IFIFO };
	memset(st, 0, sizeof(*st));
	st->st_ino = afuse_node_id(a, at);
	st->st_mode = (at->type <= PROTO_T_FIFO ? type[at->type] : 0) | (at->mode & 07777);
	st->st_rdev = makedev(at->rdev_major, at->rdev_minor);
	st->st_nlink = at->nlink;
	st->st_uid = at->uid;
	st->st_gid = at->gid;
	st->st_size = (off_t)at->size;
	st->st_blocks = (blkcnt_t)((at->used + 511) / 512);
	st->st_blksize = 1u << 20;      /* what cp and dd take as the preferred I/O size */
	st->st_atim = (struct timespec){ at->atime.sec, at->atime.nsec };
	st->st_mtim = (struct timespec){ at->mtime.sec, at->mtime.nsec };
	st->st_ctim = (struct timespec){ at->ctime.sec, at->ctime.nsec };
}

/* The connection of this thread and the handle of node ino, or the error
 * already answered. */
struct afuse_conn *afuse_begin(fuse_req_t req, fuse_ino_t ino, struct proto_handle *fh)
{
	struct afuse *a = af(req);
	int err = 0;
	if (fh && (err = afuse_node_fh(a, ino, fh))) {
		fuse_reply_err(req, -err);
		return NULL;
	}
	struct afuse_conn *k = afuse_get(a, &err);
	if (!k)
		fuse_reply_err(req, err);
	return k;
}

int afuse_end(fuse_req_t req, struct afuse_conn *k, const char *what, int rc)
{
	int err = afuse_fail(af(req), k, what, rc);
	afuse_put(k);
	return err;
}

/* Answer a new reference to o (lookup, create, ...): counted in the node table. */
static void reply_entry(fuse_req_t req, int err, const struct apfp_obj *o)
{
	struct afuse *a = af(req);
	struct fuse_entry_param e = { .attr_timeout = a->attr_timeout, .entry_timeout = a->entry_timeout };
	uint64_t id;
	if (!err)
		err = -afuse_node_ref(a, o, &id);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	e.ino = id;
	e.generation = o->attr.gen;
	to_stat(a, &o->attr, &e.attr);
	if (fuse_reply_entry(req, &e))
		afuse_node_forget(a, id, 1);    /* the kernel did not take it */
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	struct afuse *a = ud;
	conn->max_write = AFUSE_MAX_IO;
	conn->max_read = AFUSE_MAX_IO;
	conn->max_readahead = AFUSE_MAX_IO;
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_WRITE;
	/* open(O_TRUNC) then reaches us as a setattr of the size: with the
	 * capability on it would come as an open flag that must truncate. */
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (a->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct proto_handle dir;
	struct apfp_obj o;
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (k)
		reply_entry(req, afuse_end(req, k, "lookup", apfp_lookup(&k->c, &dir, name, &o)), &o);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	afuse_node_forget(af(req), ino, n);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		afuse_node_forget(af(req), f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr(fuse_req_t req, int err, const struct proto_attr *at)
{
	struct stat st;
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	to_stat(af(req), at, &st);
	fuse_reply_attr(req, &st, af(req)->attr_timeout);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct proto_handle fh;
	struct proto_attr at;
	(void)fi;
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (k)
		reply_attr(req, afuse_end(req, k, "getattr", apfp_getattr(&k->c, &fh, &at)), &at);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *s, int to_set, struct fuse_file_info *fi)
{
	struct proto_sattr sa = { 0 };
	struct proto_handle fh;
	struct proto_attr at;
	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		sa.mask |= PROTO_SA_MODE, sa.mode = s->st_mode & 07777;
	if (to_set & FUSE_SET_ATTR_UID)
		sa.mask |= PROTO_SA_UID, sa.uid = s->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		sa.mask |= PROTO_SA_GID, sa.gid = s->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE)
		sa.mask |= PROTO_SA_SIZE, sa.size = (uint64_t)s->st_size;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		sa.mask |= PROTO_SA_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		sa.mask |= PROTO_SA_ATIME, sa.atime = (struct proto_time){ s->st_atim.tv_sec, (uint32_t)s->st_atim.tv_nsec };
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.mask |= PROTO_SA_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		sa.mask |= PROTO_SA_MTIME, sa.mtime = (struct proto_time){ s->st_mtim.tv_sec, (uint32_t)s->st_mtim.tv_nsec };
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k)
		return;
	/* Uncommitted writes are written again after a server restart: commit
	 * them before a truncate, or a resend could bring cut bytes back. */
	struct afuse_node *nd = (sa.mask & PROTO_SA_SIZE) ? afuse_node_find(af(req), ino) : NULL;
	int rc = nd && afuse_pending(nd) ? afuse_commit(af(req), k, nd) : 0;
	if (!rc)
		rc = apfp_setattr(&k->c, &fh, &sa, &at);
	if (!rc && !sa.mask)
		rc = apfp_getattr(&k->c, &fh, &at);     /* ctime only (FUSE_SET_ATTR_CTIME): nothing to change */
	reply_attr(req, afuse_end(req, k, "setattr", rc), &at);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct proto_handle fh;
	char target[PROTO_TARGET_MAX + 1];
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k)
		return;
	int err = afuse_end(req, k, "readlink", apfp_readlink(&k->c, &fh, target, sizeof(target)));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_readlink(req, target);
}

/* Regular files as CREATE (GUARDED); fifos, sockets and devices as MKNOD
 * (the server lets only uid 0 make devices: this daemon's uid, since the
 * kernel already asked the caller for CAP_MKNOD). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	const struct fuse_ctx *cx = fuse_req_ctx(req);
	struct proto_handle dir;
	struct apfp_obj o;
	uint8_t type = S_ISFIFO(mode) ? PROTO_T_FIFO : S_ISSOCK(mode) ? PROTO_T_SOCK : S_ISCHR(mode) ? PROTO_T_CHR
		       : S_ISBLK(mode) ? PROTO_T_BLK : S_ISREG(mode) ? PROTO_T_REG : 0;
	bool dev = type == PROTO_T_CHR || type == PROTO_T_BLK;
	if (!type) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (!k)
		return;
	int rc = type == PROTO_T_REG ? apfp_create_as(&k->c, &dir, name, mode, PROTO_CREATE_GUARDED, cx->uid, cx->gid, &o)
		 : apfp_mknod_as(&k->c, &dir, name, type, mode & 07777, dev ? major(rdev) : 0, dev ? minor(rdev) : 0,
				 cx->uid, cx->gid, &o);
	reply_entry(req, afuse_end(req, k, "mknod", rc), &o);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *cx = fuse_req_ctx(req);
	struct proto_handle dir;
	struct apfp_obj o;
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (k)
		reply_entry(req, afuse_end(req, k, "mkdir", apfp_mkdir_as(&k->c, &dir, name, mode & ~cx->umask, cx->uid,
								    cx->gid, &o)), &o);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	const struct fuse_ctx *cx = fuse_req_ctx(req);
	struct proto_handle dir;
	struct apfp_obj o;
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (k)
		reply_entry(req, afuse_end(req, k, "symlink", apfp_symlink_as(&k->c, &dir, name, target, cx->uid, cx->gid,
									&o)), &o);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *name)
{
	struct proto_handle dir;
	struct apfp_obj o;
	if (afuse_node_fh(af(req), ino, &o.fh)) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, newparent, &dir);
	if (k)
		reply_entry(req, afuse_end(req, k, "link", apfp_link(&k->c, &o.fh, &dir, name, &o.attr)), &o);
}

static void remove_common(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_dir)
{
	struct proto_handle dir;
	bool hidden = false;
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (!k)
		return;
	int rc = is_dir ? 0 : afuse_hide_if_open(af(req), k, &dir, name, &hidden);
	if (!rc && !hidden)
		rc = apfp_remove(&k->c, &dir, name, is_dir);
	fuse_reply_err(req, afuse_end(req, k, "remove", rc));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_common(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_common(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct proto_handle from, to;
	uint32_t f = 0;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);    /* RENAME_WHITEOUT: no overlay support */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= PROTO_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= PROTO_RENAME_EXCHANGE;
	if (afuse_node_fh(af(req), newparent, &to)) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, parent, &from);
	if (!k)
		return;
	bool hidden = false;            /* a replaced file open here is renamed aside first */
	int rc = f ? 0 : afuse_hide_if_open(af(req), k, &to, newname, &hidden);
	if (!rc)
		rc = apfp_rename(&k->c, &from, name, &to, newname, f);
	fuse_reply_err(req, afuse_end(req, k, "rename", rc));
}

static int open_file(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ofile *of = calloc(1, sizeof(*of));
	if (!of)
		return ENOMEM;
	of->direct = (fi->flags & O_DIRECT) != 0;
	fi->fh = (uintptr_t)of;
	fi->direct_io = of->direct;
	/* Close-to-open consistency: cached pages are dropped at each open
	 * unless the kernel owns the data (writeback cache). */
	fi->keep_cache = af(req)->writeback && !of->direct;
	return 0;
}

static void forget_open(struct afuse *a, uint64_t id, struct fuse_file_info *fi)
{
	struct proto_handle dir;
	char name[64];
	free((void *)(uintptr_t)fi->fh);
	afuse_released(a, id, &dir, name, sizeof(name));   /* it was not hidden: it was never open */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = open_file(req, fi);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	afuse_opened(af(req), ino);
	if (fuse_reply_open(req, fi))
		forget_open(af(req), ino, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *cx = fuse_req_ctx(req);
	struct afuse *a = af(req);
	struct proto_handle dir;
	struct apfp_obj o;
	uint64_t id;
	struct afuse_conn *k = afuse_begin(req, parent, &dir);
	if (!k)
		return;
	uint8_t how = fi->flags & O_EXCL ? PROTO_CREATE_GUARDED : PROTO_CREATE_UNCHECKED;
	int err = afuse_end(req, k, "create", apfp_create_as(&k->c, &dir, name, mode, how, cx->uid, cx->gid, &o));
	if (!err)
		err = open_file(req, fi);
	if (!err && (err = -afuse_node_ref(a, &o, &id)))
		free((void *)(uintptr_t)fi->fh);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	afuse_opened(a, id);
	struct fuse_entry_param e = { .ino = id, .generation = o.attr.gen, .attr_timeout = a->attr_timeout,
				      .entry_timeout = a->entry_timeout };
	to_stat(a, &o.attr, &e.attr);
	if (fuse_reply_create(req, &e, fi)) {
		forget_open(a, id, fi);         /* the opener went away */
		afuse_node_forget(a, id, 1);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct proto_handle fh;
	(void)fi;
	if (size > AFUSE_MAX_IO)
		size = AFUSE_MAX_IO;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k) {
		free(buf);
		return;
	}
	/* The kernel takes a short read for the end of the file: fill it. */
	size_t got = 0;
	int rc = 0;
	while (got < size) {
		uint32_t n;
		bool eof;
		rc = apfp_read(&k->c, &fh, (uint64_t)off + got, buf + got, (uint32_t)(size - got), &n, &eof);
		if (rc)
			break;
		got += n;
		if (eof || !n)
			break;
	}
	int err = afuse_end(req, k, "read", rc);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct afuse *a = af(req);
	struct ofile *of = (void *)(uintptr_t)fi->fh;
	struct afuse_node *nd = afuse_node_find(a, ino);
	if (!nd) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (size > AFUSE_MAX_IO)
		size = AFUSE_MAX_IO;
	int err = 0;
	struct afuse_conn *k = afuse_get(a, &err);
	if (!k) {
		fuse_reply_err(req, err);
		return;
	}
	uint32_t n = 0;
	int rc;
	if (of->direct || (fi->flags & (O_SYNC | O_DSYNC)))
		rc = apfp_write(&k->c, &nd->fh, (uint64_t)off, data, (uint32_t)size,
				of->direct || (fi->flags & O_SYNC) == O_SYNC ? PROTO_FILE_SYNC : PROTO_DATA_SYNC, &n,
				NULL);
	else
		rc = afuse_write_unstable(a, k, nd, (uint64_t)off, data, (uint32_t)size, &n);
	if ((err = afuse_end(req, k, "write", rc)))
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, n);
}

static void commit_reply(fuse_req_t req, fuse_ino_t ino, const char *what)
{
	struct afuse *a = af(req);
	struct afuse_node *nd = afuse_node_find(a, ino);
	if (!nd || !afuse_pending(nd)) {
		fuse_reply_err(req, 0);         /* nothing uncommitted from here */
		return;
	}
	int err = 0;
	struct afuse_conn *k = afuse_get(a, &err);
	if (k)
		err = afuse_end(req, k, what, afuse_commit(a, k, nd));
	fuse_reply_err(req, err);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	commit_reply(req, ino, "commit at close");
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct afuse *a = af(req);
	struct proto_handle fh;
	struct proto_verf verf;
	(void)datasync, (void)fi;
	struct afuse_node *nd = afuse_node_find(a, ino);
	if (nd && afuse_pending(nd)) {
		commit_reply(req, ino, "fsync");
		return;
	}
	/* Nothing of ours pending: still make what others wrote (and the
	 * file's metadata) durable, as fsync promises. */
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (k)
		fuse_reply_err(req, afuse_end(req, k, "fsync", apfp_commit(&k->c, &fh, &verf)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afuse *a = af(req);
	struct proto_handle dir;
	char name[64];
	free((void *)(uintptr_t)fi->fh);
	commit_reply(req, ino, "commit at release");
	/* The last close of a file whose last name went while it was open. */
	if (afuse_released(a, ino, &dir, name, sizeof(name))) {
		int err = 0;
		struct afuse_conn *k = afuse_get(a, &err);
		if (k) {
			err = afuse_fail(a, k, "remove of a hidden file", apfp_remove(&k->c, &dir, name, false));
			afuse_put(k);
		}
		if (err)
			fprintf(stderr, "apfp-fuse: %s stays behind: %s\n", name, strerror(err));
	}
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct proto_handle fh;
	struct proto_verf verf;
	(void)datasync, (void)fi;
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (k)
		fuse_reply_err(req, afuse_end(req, k, "fsyncdir", apfp_commit(&k->c, &fh, &verf)));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct odir *d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi))
		free(d);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	free((void *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

struct dirfill {
	fuse_req_t req;
	struct afuse *a;
	bool plus;
	char *buf;
	size_t size, used;
};

static int fill_dir(void *arg, const char *name, const struct apfp_obj *o, uint64_t cookie)
{
	struct dirfill *d = arg;
	struct stat st;
	size_t n;
	to_stat(d->a, &o->attr, &st);
	if (!d->plus) {
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st, (off_t)cookie);
		if (n > d->size - d->used)
			return 1;       /* full: the next call resumes at the previous cookie */
		d->used += n;
		return 0;
	}
	struct fuse_entry_param e = { .ino = st.st_ino, .generation = o->attr.gen, .attr = st,
				      .attr_timeout = d->a->attr_timeout, .entry_timeout = d->a->entry_timeout };
	n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e, (off_t)cookie);
	if (n > d->size - d->used)
		return 1;
	uint64_t id;
	if (afuse_node_ref(d->a, o, &id))
		return 1;               /* memory: stop here, the entry is not sent */
	d->used += n;                   /* each entry sent is a lookup the kernel will forget */
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   bool plus)
{
	struct odir *od = (void *)(uintptr_t)fi->fh;
	struct proto_handle fh;
	struct dirfill d = { req, af(req), plus, malloc(size), size, 0 };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k) {
		free(d.buf);
		return;
	}
	uint64_t cookie = (uint64_t)off;
	bool eof = false;
	int rc = 0;
	if (!off)
		memset(&od->verf, 0, sizeof(od->verf));
	/* Wire entries are about the size of FUSE's: ask for about a buffer's
	 * worth, more calls if the first one did not fill it. */
	for (unsigned rounds = 0; !eof && d.used + 512 < size && rounds < 64; rounds++) {
		size_t before = d.used;
		rc = apfp_readdir_page(&k->c, &fh, &cookie, &od->verf, size < 4096 ? 4096 : (uint32_t)size, fill_dir,
				       &d, &eof);
		if (rc || d.used == before)
			break;
	}
	int err = afuse_end(req, k, "readdir", rc);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct proto_fsstat_rep s;
	struct afuse_conn *k = afuse_begin(req, 1, NULL);
	(void)ino;
	if (!k)
		return;
	int err = afuse_end(req, k, "statfs", apfp_fsstat(&k->c, &af(req)->root.fh, &s));
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	const uint64_t bs = 4096;
	struct statvfs v = { .f_bsize = bs, .f_frsize = bs, .f_blocks = s.total_bytes / bs,
			     .f_bfree = s.free_bytes / bs, .f_bavail = s.avail_bytes / bs, .f_files = s.total_files,
			     .f_ffree = s.free_files, .f_favail = s.free_files, .f_namemax = s.max_name };
	fuse_reply_statfs(req, &v);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	struct proto_handle src, dst;
	struct afuse *a = af(req);
	(void)fi_in, (void)fi_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (afuse_node_fh(a, ino_out, &dst)) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino_in, &src);
	if (!k)
		return;
	/* Our uncommitted writes to the destination would be written again
	 * over the copy after a server restart: commit them first. */
	struct afuse_node *nd = afuse_node_find(a, ino_out);
	int rc = nd && afuse_pending(nd) ? afuse_commit(a, k, nd) : 0;
	uint64_t done = 0, n = 1;
	while (!rc && done < len && n) {
		rc = apfp_copy(&k->c, &src, (uint64_t)off_in + done, &dst, (uint64_t)off_out + done, len - done, &n, NULL);
		if (rc)
			break;
		done += n;
	}
	/* The copy is on the server like an unstable write: commit it, since
	 * it is not in our log to be written again. */
	struct proto_verf verf;
	if (!rc && done)
		rc = apfp_commit(&k->c, &dst, &verf);
	int err = afuse_end(req, k, "copy", rc);
	if (err && !done)
		fuse_reply_err(req, err == ENOSYS || err == EXDEV ? EOPNOTSUPP : err);
	else if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, done);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init, .lookup = op_lookup, .forget = op_forget, .forget_multi = op_forget_multi,
	.getattr = op_getattr, .setattr = op_setattr, .readlink = op_readlink, .mknod = op_mknod,
	.mkdir = op_mkdir, .symlink = op_symlink, .link = op_link, .unlink = op_unlink, .rmdir = op_rmdir,
	.rename = op_rename, .open = op_open, .create = op_create, .read = op_read, .write = op_write,
	.flush = op_flush, .release = op_release, .fsync = op_fsync, .opendir = op_opendir,
	.readdir = op_readdir, .readdirplus = op_readdirplus, .releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir, .statfs = op_statfs, .copy_file_range = op_copy_file_range,
	.getxattr = afuse_op_getxattr, .setxattr = afuse_op_setxattr, .listxattr = afuse_op_listxattr,
	.removexattr = afuse_op_removexattr, .fallocate = afuse_op_fallocate, .lseek = afuse_op_lseek,
};

const struct fuse_lowlevel_ops *apfp_fuse_ops(void)
{
	return &ops;
}
