/*
 * The protocol's operations over cowfs (proto/serve_cowfs.h).
 *
 * Each operation: resolve the handle's filesystem (a use held until the
 * reply is built), check the inode and its generation (else STALE),
 * sample the "before" attributes, call the filesystem, sample "after".
 * Before and after are two samples, not one atomic step: a client that
 * sees before == its cache may still have missed a change by another
 * client between them -- as NFSv3's weak cache consistency, which the
 * `change` field (the ctime in nanoseconds) lets it detect on the next
 * GETATTR.
 *
 * Nothing here holds a filesystem lock between calls: READDIR resumes from
 * the directory's own stable cookies (fs/inode.h: an entry's sequence
 * number, never reused), so cookies survive inserts, removals and server
 * restarts and the cookie verifier only has to tell directories apart.
 */
#include "proto/serve_cowfs_int.h"


/* ---- handles, attributes ---------------------------------------------------- */


uint64_t proto_cowfs_fsid(struct cowfs_mount *m)
{
	uint8_t id[16];
	uint64_t v = 0;
	cowfs_fsid(cowfs_vfs_fs(m), id);
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)(id[i] ^ id[i + 8]) << (8 * i);
	return v ? v : 1;
}


/* The read calls, on the live tree or the snapshot of the first handle. */
uint32_t scf_snap_of(const struct op *o)
{
	return o->c->fh[0].snap;
}

int scf_o_getattr(struct op *o, uint64_t ino, struct cowfs_inode *in)
{
	return scf_snap_of(o) ? cowfs_snap_getattr(o->m, scf_snap_of(o), ino, in) : cowfs_getattr(o->m, ino, in);
}

int scf_check_inode(struct op *o, const struct proto_fh *fh, struct cowfs_inode *in)
{
	int err = fh->snap ? cowfs_snap_getattr(o->m, fh->snap, fh->ino, in) : cowfs_getattr(o->m, fh->ino, in);
	if (err == -PLAT_ENOENT || (!err && (uint32_t)in->gen != fh->gen))
		return -PLAT_ESTALE;    /* gone, or (a snapshot) deleted */
	return err;
}

/* Open the call's first handle: its filesystem and its inode. */
int scf_op_begin(struct op *o, void *fs, struct proto_call *c, enum snap_use su)
{
	o->pc = fs;
	o->c = c;
	o->m = NULL;
	if (c->fh[0].snap && su == SNAP_NO)
		return -PLAT_ENOTSUP;   /* not an operation snapshots answer */
	if (!(o->m = o->pc->get(o->pc->arg, c->fh[0].fsid, &o->use)))
		return -PLAT_ESTALE;
	if (c->fh[0].snap && su == SNAP_FS)
		return 0;
	return scf_check_inode(o, &c->fh[0], &o->in);
}

int scf_op_end(struct op *o, int rc)
{
	if (o->m)
		o->pc->put(o->pc->arg, o->use);
	return rc;
}

/* The scf_second handle of LINK, RENAME, COPY: same filesystem, live. */
int scf_second(struct op *o, unsigned i, struct cowfs_inode *in)
{
	const struct proto_fh *fh = &o->c->fh[i];
	if (fh->snap)
		return -PLAT_ENOTSUP;
	if (fh->fsid != o->c->fh[0].fsid)
		return -PLAT_EXDEV;
	return scf_check_inode(o, fh, in);
}

struct proto_time scf_ptime(struct cowfs_time t)
{
	return (struct proto_time){ (int64_t)t.sec, t.nsec };
}

uint8_t scf_ptype(uint32_t mode)
{
	switch (mode & CFS_S_IFMT) {
	case CFS_S_IFDIR:  return PROTO_T_DIR;
	case CFS_S_IFLNK:  return PROTO_T_LNK;
	case CFS_S_IFBLK:  return PROTO_T_BLK;
	case CFS_S_IFCHR:  return PROTO_T_CHR;
	case CFS_S_IFSOCK: return PROTO_T_SOCK;
	case CFS_S_IFIFO:  return PROTO_T_FIFO;
	default:           return PROTO_T_REG;
	}
}

/* A directory entry's type byte (fs/inode.h CFS_DT_*, d_type's values). */
uint8_t scf_dtype(uint8_t cfs_dt)
{
	switch (cfs_dt) {
	case CFS_DT_DIR:  return PROTO_T_DIR;
	case CFS_DT_LNK:  return PROTO_T_LNK;
	case CFS_DT_BLK:  return PROTO_T_BLK;
	case CFS_DT_CHR:  return PROTO_T_CHR;
	case CFS_DT_SOCK: return PROTO_T_SOCK;
	case CFS_DT_FIFO: return PROTO_T_FIFO;
	default:          return PROTO_T_REG;
	}
}

/* cowfs keeps a device number in Linux's user-space encoding (glibc's
 * dev_t: docs/format.md §6); the protocol carries major and minor apart,
 * as NFSv3's specdata does.  Numbers past 32 bits each do not fit the
 * wire and cannot be made through MKNOD; such a stored value is cut. */
static uint32_t rdev_major(uint64_t rdev)
{
	return (uint32_t)(((rdev >> 8) & 0xfffu) | ((rdev >> 32) & ~0xfffull));
}

static uint32_t rdev_minor(uint64_t rdev)
{
	return (uint32_t)((rdev & 0xffu) | ((rdev >> 12) & ~0xffull));
}

static uint64_t rdev_of(uint32_t major, uint32_t minor)
{
	return ((uint64_t)(major & 0xfffu) << 8) | ((uint64_t)(major & ~0xfffu) << 32) | (minor & 0xffu) |
	       ((uint64_t)(minor & ~0xffu) << 12);
}

void scf_attr_of(struct op *o, const struct cowfs_inode *in, struct proto_attr *a)
{
	bool dev = (in->mode & CFS_S_IFMT) == CFS_S_IFCHR || (in->mode & CFS_S_IFMT) == CFS_S_IFBLK;
	*a = (struct proto_attr){
		.type = scf_ptype(in->mode), .mode = in->mode & 07777, .nlink = in->nlink,
		.uid = in->uid, .gid = in->gid, .size = in->size, .used = in->blocks * CFS_BLOCK_SIZE,
		.rdev_major = dev ? rdev_major(in->rdev) : 0, .rdev_minor = dev ? rdev_minor(in->rdev) : 0,
		.fsid = o->c->fh[0].fsid, .ino = in->ino, .gen = (uint32_t)in->gen,
		.change = in->ctime.sec * NS + in->ctime.nsec,
		.atime = scf_ptime(in->atime), .mtime = scf_ptime(in->mtime), .ctime = scf_ptime(in->ctime),
		.btime = scf_ptime(in->btime),
	};
}

void scf_pre_of(const struct cowfs_inode *in, struct proto_pre_attr *p)
{
	p->size = in->size;
	p->mtime = scf_ptime(in->mtime);
	p->ctime = scf_ptime(in->ctime);
	p->change = in->ctime.sec * NS + in->ctime.nsec;
}

/* wcc of inode ino: before from *pre, after sampled now. */
int scf_wcc_of(struct op *o, const struct cowfs_inode *pre, uint64_t ino, struct proto_wcc *w)
{
	struct cowfs_inode now;
	int err = cowfs_getattr(o->m, ino, &now);
	if (err)
		return err;
	scf_pre_of(pre, &w->before);
	scf_attr_of(o, &now, &w->after);
	return 0;
}

void scf_seal(struct op *o, uint64_t ino, uint64_t gen, struct proto_handle *h)
{
	struct proto_fh fh = { o->c->fh[0].fsid, ino, (uint32_t)gen, scf_snap_of(o) };   /* in the same tree */
	proto_server_seal(o->c->srv, &fh, h);
}

int scf_sattr_of(const struct proto_sattr *s, struct cowfs_setattr *sa)
{
	*sa = (struct cowfs_setattr){ .valid = s->mask, .mode = s->mode & 07777, .uid = s->uid, .gid = s->gid,
				      .size = s->size };
	/* Seconds are stored two's complement (docs/format.md §6): times
	 * before 1970 round-trip as they do through the FUSE mount. */
	sa->atime = (struct cowfs_time){ (uint64_t)s->atime.sec, s->atime.nsec };
	sa->mtime = (struct cowfs_time){ (uint64_t)s->mtime.sec, s->mtime.nsec };
	return 0;
}

/* ---- attributes ---------------------------------------------------------------- */

static int op_getattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	(void)req;
	if (!rc)
		scf_attr_of(&o, &o.in, &((struct proto_getattr_rep *)rep)->attr);
	return scf_op_end(&o, rc);
}

static int op_setattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_setattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct cowfs_setattr sa;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = scf_sattr_of(&q->sattr, &sa);
	if (!rc)
		rc = cowfs_setattr(o.m, o.in.ino, &sa, NULL);
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

/* ---- names -------------------------------------------------------------------- */

static int op_lookup(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_dirop_req *q = req;
	struct proto_lookup_rep *r = rep;
	struct cowfs_inode in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = scf_snap_of(&o) ? cowfs_snap_lookup(o.m, scf_snap_of(&o), o.in.ino, q->name.p, q->name.len, &in)
			   : cowfs_lookup(o.m, o.in.ino, q->name.p, q->name.len, &in);
	if (!rc) {
		scf_seal(&o, in.ino, in.gen, &r->fh);
		scf_attr_of(&o, &in, &r->attr);
		scf_attr_of(&o, &o.in, &r->dir_attr);
	}
	return scf_op_end(&o, rc);
}

static int op_readlink(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_readlink_rep *r = rep;
	size_t len = 0;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	(void)req;
	if (!rc && !CFS_S_ISLNK(o.in.mode))
		rc = -PLAT_EINVAL;
	if (!rc && c->scratch_cap < PROTO_TARGET_MAX)
		rc = -PLAT_ENOMEM;
	if (!rc)
		rc = scf_snap_of(&o) ? cowfs_snap_readlink(o.m, scf_snap_of(&o), o.in.ino, (char *)c->scratch, PROTO_TARGET_MAX, &len)
			   : cowfs_readlink(o.m, o.in.ino, (char *)c->scratch, PROTO_TARGET_MAX, &len);
	if (!rc && (len == 0 || len > PROTO_TARGET_MAX))
		rc = -PLAT_EIO;         /* fsck finds such targets; never sent */
	if (!rc) {
		r->target.p = (const char *)c->scratch;
		r->target.len = (uint16_t)len;
	}
	return scf_op_end(&o, rc);
}

/* The new object of CREATE, MKDIR, SYMLINK, MKNOD in the reply. */
static int newobj(struct op *o, const struct cowfs_inode *in, struct proto_newobj_rep *r)
{
	scf_seal(o, in->ino, in->gen, &r->fh);
	scf_attr_of(o, in, &r->attr);
	return scf_wcc_of(o, &o->in, o->in.ino, &r->dir_wcc);
}

/* What of sa a new inode did not take at its creation (mode, owner): the
 * times, set after it (CREATE, MKNOD). */
static int set_rest(struct op *o, struct cowfs_setattr *sa, struct cowfs_inode *in)
{
	sa->valid &= ~(unsigned)(CFS_SET_MODE | CFS_SET_UID | CFS_SET_GID);
	return sa->valid ? cowfs_setattr(o->m, in->ino, sa, in) : 0;
}

/* CREATE's exclusive mode keeps the client's verifier in the new file's
 * atime and mtime seconds (as Linux's NFS server does) until the client's
 * SETATTR replaces them: a retransmitted CREATE finds its own verifier. */
static void verf_times(const struct proto_verf *v, struct cowfs_setattr *sa)
{
	uint32_t lo = 0, hi = 0;
	for (int i = 0; i < 4; i++) {
		lo |= (uint32_t)v->b[i] << (8 * i);
		hi |= (uint32_t)v->b[4 + i] << (8 * i);
	}
	*sa = (struct cowfs_setattr){ .valid = CFS_SET_ATIME | CFS_SET_MTIME };
	sa->atime.sec = lo;
	sa->mtime.sec = hi;
}

static int create_existing(struct op *o, const struct proto_create_req *q, const struct cowfs_inode *in,
			   struct proto_newobj_rep *r)
{
	struct cowfs_setattr sa;
	struct cowfs_inode now = *in;
	int rc;
	if (q->how == PROTO_CREATE_GUARDED)
		return -PLAT_EEXIST;
	if (q->how == PROTO_CREATE_EXCLUSIVE) {
		verf_times(&q->verf, &sa);
		if (!CFS_S_ISREG(in->mode) || in->atime.sec != sa.atime.sec || in->mtime.sec != sa.mtime.sec)
			return -PLAT_EEXIST;
		return newobj(o, in, r);        /* a retransmission: the same file */
	}
	if (CFS_S_ISDIR(in->mode))
		return -PLAT_EISDIR;
	if (!CFS_S_ISREG(in->mode))
		return -PLAT_EEXIST;
	if (q->sattr.mask) {
		if ((rc = scf_sattr_of(&q->sattr, &sa)) || (rc = cowfs_setattr(o->m, in->ino, &sa, &now)))
			return rc;
	}
	return newobj(o, &now, r);
}

static int op_create(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_create_req *q = req;
	struct proto_newobj_rep *r = rep;
	const struct proto_sattr *s = &q->sattr;
	struct cowfs_setattr sa;
	struct cowfs_inode in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (rc)
		return scf_op_end(&o, rc);
	if (q->how == PROTO_CREATE_EXCLUSIVE && s->mask)
		return scf_op_end(&o, -PLAT_EINVAL);
	/* Two tries: an UNCHECKED create racing another one for the name
	 * finds the winner's file the scf_second time. */
	for (int tries = 0; tries < 2; tries++) {
		rc = cowfs_lookup(o.m, o.in.ino, q->name.p, q->name.len, &in);
		if (!rc)
			return scf_op_end(&o, create_existing(&o, q, &in, r));
		if (rc != -PLAT_ENOENT)
			return scf_op_end(&o, rc);
		rc = cowfs_create(o.m, o.in.ino, q->name.p, q->name.len, s->mask & PROTO_SA_MODE ? s->mode & 07777 : 0644,
				  s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid,
				  &in);
		if (rc != -PLAT_EEXIST)
			break;
	}
	if (rc)
		return scf_op_end(&o, rc);
	if (q->how == PROTO_CREATE_EXCLUSIVE)
		verf_times(&q->verf, &sa);
	else if ((rc = scf_sattr_of(s, &sa)))
		return scf_op_end(&o, rc);
	if ((rc = set_rest(&o, &sa, &in)))
		return scf_op_end(&o, rc);
	return scf_op_end(&o, newobj(&o, &in, r));
}

static int op_mkdir(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_mkdir_req *q = req;
	const struct proto_sattr *s = &q->sattr;
	struct cowfs_inode in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = cowfs_mkdir(o.m, o.in.ino, q->name.p, q->name.len, s->mask & PROTO_SA_MODE ? s->mode & 07777 : 0755,
				 s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid, &in);
	if (!rc)
		rc = newobj(&o, &in, rep);
	return scf_op_end(&o, rc);
}

static int op_symlink(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_symlink_req *q = req;
	const struct proto_sattr *s = &q->sattr;
	struct cowfs_inode in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = cowfs_symlink(o.m, o.in.ino, q->name.p, q->name.len, q->target.p, q->target.len,
				   s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid,
				   &in);
	if (!rc)
		rc = newobj(&o, &in, rep);
	return scf_op_end(&o, rc);
}

/* MKNOD's refusals (docs/protocol.md §5.3): the other types have their own
 * calls, a fifo or socket has no device number and no special file a size
 * (INVAL); devices only for uid 0 in the request header, as Linux asks
 * CAP_MKNOD (PERM); fifos and sockets for anyone who may create a name. */
static int mknod_refused(const struct proto_mknod_req *q, const struct proto_call *c, bool dev)
{
	if (q->type < PROTO_T_BLK || q->type > PROTO_T_FIFO || (q->sattr.mask & PROTO_SA_SIZE) ||
	    (!dev && (q->rdev_major || q->rdev_minor)))
		return -PLAT_EINVAL;
	return dev && c->uid != 0 ? -PLAT_EPERM : 0;
}

/* Owner and mode from sattr as CREATE, the times after it. */
static int op_mknod(void *fs, struct proto_call *c, const void *req, void *rep)
{
	static const uint32_t ifmt[] = { [PROTO_T_BLK] = CFS_S_IFBLK, [PROTO_T_CHR] = CFS_S_IFCHR,
					 [PROTO_T_SOCK] = CFS_S_IFSOCK, [PROTO_T_FIFO] = CFS_S_IFIFO };
	const struct proto_mknod_req *q = req;
	const struct proto_sattr *s = &q->sattr;
	bool dev = q->type == PROTO_T_BLK || q->type == PROTO_T_CHR;
	struct cowfs_setattr sa;
	struct cowfs_inode in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = mknod_refused(q, c, dev);
	if (!rc)
		rc = cowfs_mknod(o.m, o.in.ino, q->name.p, q->name.len,
				 ifmt[q->type] | (s->mask & PROTO_SA_MODE ? s->mode & 07777 : 0644),
				 dev ? rdev_of(q->rdev_major, q->rdev_minor) : 0, s->mask & PROTO_SA_UID ? s->uid : c->uid,
				 s->mask & PROTO_SA_GID ? s->gid : c->gid, &in);
	if (!rc && !(rc = scf_sattr_of(s, &sa)) && !(rc = set_rest(&o, &sa, &in)))
		rc = newobj(&o, &in, rep);
	return scf_op_end(&o, rc);
}

static int op_link(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_link_req *q = req;
	struct proto_link_rep *r = rep;
	struct cowfs_inode dir, in;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = scf_second(&o, 1, &dir);
	if (!rc)
		rc = cowfs_link(o.m, o.in.ino, dir.ino, q->name.p, q->name.len, &in);
	if (!rc) {
		scf_attr_of(&o, &in, &r->attr);
		rc = scf_wcc_of(&o, &dir, dir.ino, &r->dir_wcc);
	}
	return scf_op_end(&o, rc);
}

static int remove_common(void *fs, struct proto_call *c, const void *req, void *rep, bool dir)
{
	const struct proto_dirop_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = dir ? cowfs_rmdir(o.m, o.in.ino, q->name.p, q->name.len)
			 : cowfs_unlink(o.m, o.in.ino, q->name.p, q->name.len);
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

static int op_remove(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return remove_common(fs, c, req, rep, false);
}

static int op_rmdir(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return remove_common(fs, c, req, rep, true);
}

static int op_rename(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_rename_req *q = req;
	struct proto_rename_rep *r = rep;
	struct cowfs_inode to;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = scf_second(&o, 1, &to);
	if (!rc)
		rc = cowfs_rename(o.m, o.in.ino, q->from_name.p, q->from_name.len, to.ino, q->to_name.p,
				  q->to_name.len, q->flags);
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->from_wcc);
	if (!rc)
		rc = scf_wcc_of(&o, &to, to.ino, &r->to_wcc);
	return scf_op_end(&o, rc);
}

/* ---- data ------------------------------------------------------------------------ */

static int op_read(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_read_req *q = req;
	struct proto_read_rep *r = rep;
	struct op o;
	int64_t n = 0;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (!rc && CFS_S_ISDIR(o.in.mode))
		rc = -PLAT_EISDIR;
	if (!rc && !CFS_S_ISREG(o.in.mode))
		rc = -PLAT_EINVAL;
	if (!rc) {
		/* The reply (eof, attr, the data's length, the data) must fit
		 * the connection's reply buffer, which is as large as scratch. */
		uint64_t room = c->scratch_cap > READ_FIXED ? c->scratch_cap - READ_FIXED : 0;
		uint64_t count = q->count < room ? q->count : room;
		if (!count)
			n = 0;
		else if (scf_snap_of(&o))
			n = cowfs_snap_read(o.m, scf_snap_of(&o), o.in.ino, q->offset, c->scratch, count);
		else
			n = cowfs_read(o.m, o.in.ino, q->offset, c->scratch, count, 0);
		if (n < 0)
			rc = (int)n;
	}
	if (!rc) {
		struct cowfs_inode now;
		rc = scf_o_getattr(&o, o.in.ino, &now);
		if (!rc) {
			r->data.p = c->scratch;
			r->data.len = (uint32_t)n;
			r->eof = q->offset + (uint64_t)n >= now.size;
			scf_attr_of(&o, &now, &r->attr);
		}
	}
	return scf_op_end(&o, rc);
}

static int op_write(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_write_req *q = req;
	struct proto_write_rep *r = rep;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc && CFS_S_ISDIR(o.in.mode))
		rc = -PLAT_EISDIR;
	if (!rc && !CFS_S_ISREG(o.in.mode))
		rc = -PLAT_EINVAL;
	if (!rc) {
		/* The verifier is sampled with the write: a new one chosen
		 * while this write runs (an I/O error) must reach the client
		 * with this reply or a later one, never only an earlier. */
		r->verf = o.pc->verf;
		int64_t n = q->data.len ? cowfs_write(o.m, o.in.ino, q->offset, q->data.p, q->data.len,
						      q->stable == PROTO_UNSTABLE ? 0 : CFS_IO_DSYNC) : 0;
		if (n < 0)
			rc = (int)n;
		else
			r->count = (uint32_t)n;
	}
	if (!rc && q->stable == PROTO_FILE_SYNC)
		rc = cowfs_fsync(o.m, o.in.ino, false);
	if (!rc) {
		r->committed = q->stable;
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	}
	return scf_op_end(&o, rc);
}

static int sync_common(struct op *o, bool datasync)
{
	if (CFS_S_ISDIR(o->in.mode) || CFS_S_ISLNK(o->in.mode))
		return cowfs_vfs_sync(o->m);    /* names: durable with the next commit */
	return cowfs_fsync(o->m, o->in.ino, datasync);
}

static int op_commit(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_commit_rep *r = rep;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	(void)req;      /* the range: cowfs makes the whole file durable */
	if (!rc) {
		r->verf = o.pc->verf;
		rc = sync_common(&o, false);
	}
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

static int op_fsync(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_fsync_req *q = req;
	struct proto_fsync_rep *r = rep;
	struct cowfs_inode now;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc) {
		r->verf = o.pc->verf;
		rc = sync_common(&o, q->datasync);
	}
	if (!rc && !(rc = cowfs_getattr(o.m, o.in.ino, &now)))
		scf_attr_of(&o, &now, &r->attr);
	return scf_op_end(&o, rc);
}

/* ---- fallocate and seek (fs/falloc.c) ---- */

static int op_fallocate(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_fallocate_req *q = req;
	struct proto_wcc_rep *r = rep;
	static const unsigned modes[] = {
		[PROTO_FALLOC_ALLOC] = 0, [PROTO_FALLOC_ALLOC_KEEP_SIZE] = CFS_FALLOC_KEEP_SIZE,
		[PROTO_FALLOC_PUNCH] = CFS_FALLOC_PUNCH_HOLE | CFS_FALLOC_KEEP_SIZE,
		[PROTO_FALLOC_ZERO] = CFS_FALLOC_ZERO_RANGE, [PROTO_FALLOC_COLLAPSE] = CFS_FALLOC_COLLAPSE_RANGE,
		[PROTO_FALLOC_INSERT] = CFS_FALLOC_INSERT_RANGE,
	};
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc && q->mode >= sizeof(modes) / sizeof(modes[0]))
		rc = -PLAT_ENOTSUP;      /* the codec admits only these; a new one added there lands here */
	if (!rc)
		rc = cowfs_fallocate(o.m, o.in.ino, modes[q->mode], q->offset, q->length);
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

static int op_seek(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_seek_req *q = req;
	struct proto_seek_rep *r = rep;
	struct op o;
	int whence = q->what == PROTO_SEEK_DATA ? CFS_SEEK_DATA : CFS_SEEK_HOLE;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = scf_snap_of(&o) ? cowfs_snap_seek(o.m, scf_snap_of(&o), o.in.ino, q->offset, whence, &r->offset)
				 : cowfs_seek(o.m, o.in.ino, q->offset, whence, &r->offset);
	return scf_op_end(&o, rc);
}

/* Server-side copy (cowfs_copy_range: a reflink when the ranges allow,
 * else bytes), at most copy_max bytes per call (the client continues from
 * the short count).  The source may be a snapshot's file (the server core
 * lets only COPY's destination handle be refused as read-only): its bytes
 * are copied, never shared (cowfs_snap_copy_range), so CLONE_ONLY is
 * INVAL there, as for any range the rules do not let share. */
static int op_copy(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_copy_req *q = req;
	struct proto_copy_rep *r = rep;
	struct cowfs_inode dst;
	bool cloned = false;
	int64_t done = 0;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = scf_second(&o, 1, &dst);
	if (!rc && (CFS_S_ISDIR(o.in.mode) || CFS_S_ISDIR(dst.mode)))
		rc = -PLAT_EISDIR;
	if (!rc && (!CFS_S_ISREG(o.in.mode) || !CFS_S_ISREG(dst.mode)))
		rc = -PLAT_EINVAL;
	uint64_t want = q->length < o.pc->copy_max ? q->length : o.pc->copy_max;
	if (!rc && scf_snap_of(&o) && (q->flags & PROTO_COPY_CLONE_ONLY))
		rc = -PLAT_EINVAL;
	if (rc)
		;
	else if (scf_snap_of(&o))
		done = cowfs_snap_copy_range(o.m, scf_snap_of(&o), o.in.ino, q->src_offset, dst.ino, q->dst_offset, want);
	else
		done = cowfs_copy_range(o.m, o.in.ino, q->src_offset, dst.ino, q->dst_offset, want,
					q->flags & PROTO_COPY_CLONE_ONLY ? CFS_COPY_CLONE_ONLY : 0, &cloned);
	if (!rc && done < 0)
		rc = (int)done;
	if (!rc) {
		r->count = (uint64_t)done;
		r->cloned = cloned;
		rc = scf_wcc_of(&o, &dst, dst.ino, &r->dst_wcc);
	}
	return scf_op_end(&o, rc);
}

/* ---- the table ------------------------------------------------------------------------ */

const struct proto_fs_ops proto_cowfs_ops = { .op = {
	[PROTO_OP_GETATTR] = op_getattr, [PROTO_OP_SETATTR] = op_setattr, [PROTO_OP_LOOKUP] = op_lookup,
	[PROTO_OP_READLINK] = op_readlink, [PROTO_OP_READ] = op_read, [PROTO_OP_WRITE] = op_write,
	[PROTO_OP_COMMIT] = op_commit, [PROTO_OP_CREATE] = op_create, [PROTO_OP_MKDIR] = op_mkdir,
	[PROTO_OP_SYMLINK] = op_symlink, [PROTO_OP_MKNOD] = op_mknod, [PROTO_OP_LINK] = op_link, [PROTO_OP_REMOVE] = op_remove,
	[PROTO_OP_RMDIR] = op_rmdir, [PROTO_OP_RENAME] = op_rename, [PROTO_OP_READDIR] = scf_op_readdir,
	[PROTO_OP_READDIRPLUS] = scf_op_readdirplus, [PROTO_OP_FSSTAT] = scf_op_fsstat, [PROTO_OP_FSYNC] = op_fsync,
	[PROTO_OP_COPY] = op_copy, [PROTO_OP_GETXATTR] = scf_op_getxattr, [PROTO_OP_SETXATTR] = scf_op_setxattr,
	[PROTO_OP_LISTXATTR] = scf_op_listxattr, [PROTO_OP_REMOVEXATTR] = scf_op_removexattr,
	[PROTO_OP_SNAP_CREATE] = scf_op_snap_create,
	[PROTO_OP_SNAP_LIST] = scf_op_snap_list, [PROTO_OP_SNAP_DELETE] = scf_op_snap_delete,
	[PROTO_OP_FALLOCATE] = op_fallocate, [PROTO_OP_SEEK] = op_seek,
} };

void proto_cowfs_new_verf(struct proto_cowfs *pc)
{
	struct proto_verf v;
	if (plat_random(v.b, sizeof(v.b)))
		for (int i = 0; i < 8; i++)
			v.b[i] = (uint8_t)(pc->verf.b[i] + 1 + i);     /* different is what matters */
	pc->verf = v;
}

int proto_cowfs_init(struct proto_cowfs *pc, proto_cowfs_get_fn get, proto_cowfs_put_fn put, void *arg)
{
	*pc = (struct proto_cowfs){ .get = get, .put = put, .arg = arg, .copy_max = 64ull << 20 };
	return plat_random(pc->verf.b, sizeof(pc->verf.b));
}

int proto_cowfs_export(struct cowfs_mount *m, struct proto_export_cfg *e)
{
	struct cowfs_inode root;
	int err = cowfs_getattr(m, CFS_ROOT_INO, &root);
	if (err)
		return err;
	e->fsid = proto_cowfs_fsid(m);
	e->root_ino = CFS_ROOT_INO;
	e->root_gen = (uint32_t)root.gen;
	e->snap = 0;
	return 0;
}
