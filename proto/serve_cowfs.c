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
#include "proto/serve_cowfs.h"
#include "platform/platform.h"
#include "fs/vfs.h"

#define NS 1000000000ull
#define READDIR_BATCH 256u      /* entries gathered per call before the reply is built */
#define ATTR_SIZE 109u          /* an encoded attr (docs/protocol.md §5.1) */
#define READ_FIXED (1u + ATTR_SIZE + 4u)        /* READ reply: eof, attr, data length */

/* ---- handles, attributes ---------------------------------------------------- */

struct op {
	struct proto_cowfs *pc;
	struct proto_call *c;
	struct cowfs_mount *m;
	void *use;                      /* for pc->put */
	struct cowfs_inode in;          /* the first handle's inode, before the operation */
};

uint64_t proto_cowfs_fsid(struct cowfs_mount *m)
{
	uint8_t id[16];
	uint64_t v = 0;
	cowfs_fsid(cowfs_vfs_fs(m), id);
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)(id[i] ^ id[i + 8]) << (8 * i);
	return v ? v : 1;
}

/* How an operation takes snapshot handles (fh.snap: the snapshot's tree
 * id): not at all (NOTSUP; mutations are ROFS before they get here),
 * for the filesystem only (fsstat, the snapshot operations), or to read
 * the inode in the snapshot (fs/snap_read.c). */
enum snap_use { SNAP_NO, SNAP_FS, SNAP_READ };

/* The read calls, on the live tree or the snapshot of the first handle. */
static uint32_t snap_of(const struct op *o)
{
	return o->c->fh[0].snap;
}

static int o_getattr(struct op *o, uint64_t ino, struct cowfs_inode *in)
{
	return snap_of(o) ? cowfs_snap_getattr(o->m, snap_of(o), ino, in) : cowfs_getattr(o->m, ino, in);
}

static int check_inode(struct op *o, const struct proto_fh *fh, struct cowfs_inode *in)
{
	int err = fh->snap ? cowfs_snap_getattr(o->m, fh->snap, fh->ino, in) : cowfs_getattr(o->m, fh->ino, in);
	if (err == -PLAT_ENOENT || (!err && (uint32_t)in->gen != fh->gen))
		return -PLAT_ESTALE;    /* gone, or (a snapshot) deleted */
	return err;
}

/* Open the call's first handle: its filesystem and its inode. */
static int op_begin(struct op *o, void *fs, struct proto_call *c, enum snap_use su)
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
	return check_inode(o, &c->fh[0], &o->in);
}

static int op_end(struct op *o, int rc)
{
	if (o->m)
		o->pc->put(o->pc->arg, o->use);
	return rc;
}

/* The second handle of LINK, RENAME, COPY: same filesystem, live. */
static int second(struct op *o, unsigned i, struct cowfs_inode *in)
{
	const struct proto_fh *fh = &o->c->fh[i];
	if (fh->snap)
		return -PLAT_ENOTSUP;
	if (fh->fsid != o->c->fh[0].fsid)
		return -PLAT_EXDEV;
	return check_inode(o, fh, in);
}

static struct proto_time ptime(struct cowfs_time t)
{
	return (struct proto_time){ (int64_t)t.sec, t.nsec };
}

static uint8_t ptype(uint32_t mode)
{
	if (CFS_S_ISDIR(mode))
		return PROTO_T_DIR;
	if (CFS_S_ISLNK(mode))
		return PROTO_T_LNK;
	return PROTO_T_REG;
}

static void attr_of(struct op *o, const struct cowfs_inode *in, struct proto_attr *a)
{
	*a = (struct proto_attr){
		.type = ptype(in->mode), .mode = in->mode & 07777, .nlink = in->nlink,
		.uid = in->uid, .gid = in->gid, .size = in->size, .used = in->blocks * CFS_BLOCK_SIZE,
		.fsid = o->c->fh[0].fsid, .ino = in->ino, .gen = (uint32_t)in->gen,
		.change = in->ctime.sec * NS + in->ctime.nsec,
		.atime = ptime(in->atime), .mtime = ptime(in->mtime), .ctime = ptime(in->ctime),
		.btime = ptime(in->btime),
	};
}

static void pre_of(const struct cowfs_inode *in, struct proto_pre_attr *p)
{
	p->size = in->size;
	p->mtime = ptime(in->mtime);
	p->ctime = ptime(in->ctime);
	p->change = in->ctime.sec * NS + in->ctime.nsec;
}

/* wcc of inode ino: before from *pre, after sampled now. */
static int wcc_of(struct op *o, const struct cowfs_inode *pre, uint64_t ino, struct proto_wcc *w)
{
	struct cowfs_inode now;
	int err = cowfs_getattr(o->m, ino, &now);
	if (err)
		return err;
	pre_of(pre, &w->before);
	attr_of(o, &now, &w->after);
	return 0;
}

static void seal(struct op *o, uint64_t ino, uint64_t gen, struct proto_handle *h)
{
	struct proto_fh fh = { o->c->fh[0].fsid, ino, (uint32_t)gen, snap_of(o) };   /* in the same tree */
	proto_server_seal(o->c->srv, &fh, h);
}

static int sattr_of(const struct proto_sattr *s, struct cowfs_setattr *sa)
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
	int rc = op_begin(&o, fs, c, SNAP_READ);
	(void)req;
	if (!rc)
		attr_of(&o, &o.in, &((struct proto_getattr_rep *)rep)->attr);
	return op_end(&o, rc);
}

static int op_setattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_setattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct cowfs_setattr sa;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = sattr_of(&q->sattr, &sa);
	if (!rc)
		rc = cowfs_setattr(o.m, o.in.ino, &sa, NULL);
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
}

/* ---- names -------------------------------------------------------------------- */

static int op_lookup(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_dirop_req *q = req;
	struct proto_lookup_rep *r = rep;
	struct cowfs_inode in;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = snap_of(&o) ? cowfs_snap_lookup(o.m, snap_of(&o), o.in.ino, q->name.p, q->name.len, &in)
			   : cowfs_lookup(o.m, o.in.ino, q->name.p, q->name.len, &in);
	if (!rc) {
		seal(&o, in.ino, in.gen, &r->fh);
		attr_of(&o, &in, &r->attr);
		attr_of(&o, &o.in, &r->dir_attr);
	}
	return op_end(&o, rc);
}

static int op_readlink(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_readlink_rep *r = rep;
	size_t len = 0;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	(void)req;
	if (!rc && !CFS_S_ISLNK(o.in.mode))
		rc = -PLAT_EINVAL;
	if (!rc && c->scratch_cap < PROTO_TARGET_MAX)
		rc = -PLAT_ENOMEM;
	if (!rc)
		rc = snap_of(&o) ? cowfs_snap_readlink(o.m, snap_of(&o), o.in.ino, (char *)c->scratch, PROTO_TARGET_MAX, &len)
			   : cowfs_readlink(o.m, o.in.ino, (char *)c->scratch, PROTO_TARGET_MAX, &len);
	if (!rc && (len == 0 || len > PROTO_TARGET_MAX))
		rc = -PLAT_EIO;         /* fsck finds such targets; never sent */
	if (!rc) {
		r->target.p = (const char *)c->scratch;
		r->target.len = (uint16_t)len;
	}
	return op_end(&o, rc);
}

/* The new object of CREATE, MKDIR, SYMLINK in the reply. */
static int newobj(struct op *o, const struct cowfs_inode *in, struct proto_newobj_rep *r)
{
	seal(o, in->ino, in->gen, &r->fh);
	attr_of(o, in, &r->attr);
	return wcc_of(o, &o->in, o->in.ino, &r->dir_wcc);
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
		if ((rc = sattr_of(&q->sattr, &sa)) || (rc = cowfs_setattr(o->m, in->ino, &sa, &now)))
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
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (rc)
		return op_end(&o, rc);
	if (q->how == PROTO_CREATE_EXCLUSIVE && s->mask)
		return op_end(&o, -PLAT_EINVAL);
	/* Two tries: an UNCHECKED create racing another one for the name
	 * finds the winner's file the second time. */
	for (int tries = 0; tries < 2; tries++) {
		rc = cowfs_lookup(o.m, o.in.ino, q->name.p, q->name.len, &in);
		if (!rc)
			return op_end(&o, create_existing(&o, q, &in, r));
		if (rc != -PLAT_ENOENT)
			return op_end(&o, rc);
		rc = cowfs_create(o.m, o.in.ino, q->name.p, q->name.len, s->mask & PROTO_SA_MODE ? s->mode & 07777 : 0644,
				  s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid,
				  &in);
		if (rc != -PLAT_EEXIST)
			break;
	}
	if (rc)
		return op_end(&o, rc);
	if (q->how == PROTO_CREATE_EXCLUSIVE)
		verf_times(&q->verf, &sa);
	else if ((rc = sattr_of(s, &sa)))
		return op_end(&o, rc);
	sa.valid &= ~(unsigned)(CFS_SET_MODE | CFS_SET_UID | CFS_SET_GID);
	if (sa.valid && (rc = cowfs_setattr(o.m, in.ino, &sa, &in)))
		return op_end(&o, rc);
	return op_end(&o, newobj(&o, &in, r));
}

static int op_mkdir(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_mkdir_req *q = req;
	const struct proto_sattr *s = &q->sattr;
	struct cowfs_inode in;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = cowfs_mkdir(o.m, o.in.ino, q->name.p, q->name.len, s->mask & PROTO_SA_MODE ? s->mode & 07777 : 0755,
				 s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid, &in);
	if (!rc)
		rc = newobj(&o, &in, rep);
	return op_end(&o, rc);
}

static int op_symlink(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_symlink_req *q = req;
	const struct proto_sattr *s = &q->sattr;
	struct cowfs_inode in;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = cowfs_symlink(o.m, o.in.ino, q->name.p, q->name.len, q->target.p, q->target.len,
				   s->mask & PROTO_SA_UID ? s->uid : c->uid, s->mask & PROTO_SA_GID ? s->gid : c->gid,
				   &in);
	if (!rc)
		rc = newobj(&o, &in, rep);
	return op_end(&o, rc);
}

static int op_link(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_link_req *q = req;
	struct proto_link_rep *r = rep;
	struct cowfs_inode dir, in;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = second(&o, 1, &dir);
	if (!rc)
		rc = cowfs_link(o.m, o.in.ino, dir.ino, q->name.p, q->name.len, &in);
	if (!rc) {
		attr_of(&o, &in, &r->attr);
		rc = wcc_of(&o, &dir, dir.ino, &r->dir_wcc);
	}
	return op_end(&o, rc);
}

static int remove_common(void *fs, struct proto_call *c, const void *req, void *rep, bool dir)
{
	const struct proto_dirop_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = dir ? cowfs_rmdir(o.m, o.in.ino, q->name.p, q->name.len)
			 : cowfs_unlink(o.m, o.in.ino, q->name.p, q->name.len);
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
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
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = second(&o, 1, &to);
	if (!rc)
		rc = cowfs_rename(o.m, o.in.ino, q->from_name.p, q->from_name.len, to.ino, q->to_name.p,
				  q->to_name.len, q->flags);
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->from_wcc);
	if (!rc)
		rc = wcc_of(&o, &to, to.ino, &r->to_wcc);
	return op_end(&o, rc);
}

/* ---- data ------------------------------------------------------------------------ */

static int op_read(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_read_req *q = req;
	struct proto_read_rep *r = rep;
	struct op o;
	int64_t n = 0;
	int rc = op_begin(&o, fs, c, SNAP_READ);
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
		else if (snap_of(&o))
			n = cowfs_snap_read(o.m, snap_of(&o), o.in.ino, q->offset, c->scratch, count);
		else
			n = cowfs_read(o.m, o.in.ino, q->offset, c->scratch, count, 0);
		if (n < 0)
			rc = (int)n;
	}
	if (!rc) {
		struct cowfs_inode now;
		rc = o_getattr(&o, o.in.ino, &now);
		if (!rc) {
			r->data.p = c->scratch;
			r->data.len = (uint32_t)n;
			r->eof = q->offset + (uint64_t)n >= now.size;
			attr_of(&o, &now, &r->attr);
		}
	}
	return op_end(&o, rc);
}

static int op_write(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_write_req *q = req;
	struct proto_write_rep *r = rep;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
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
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	}
	return op_end(&o, rc);
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
	int rc = op_begin(&o, fs, c, SNAP_NO);
	(void)req;      /* the range: cowfs makes the whole file durable */
	if (!rc) {
		r->verf = o.pc->verf;
		rc = sync_common(&o, false);
	}
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
}

static int op_fsync(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_fsync_req *q = req;
	struct proto_fsync_rep *r = rep;
	struct cowfs_inode now;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc) {
		r->verf = o.pc->verf;
		rc = sync_common(&o, q->datasync);
	}
	if (!rc && !(rc = cowfs_getattr(o.m, o.in.ino, &now)))
		attr_of(&o, &now, &r->attr);
	return op_end(&o, rc);
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
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc && q->mode >= sizeof(modes) / sizeof(modes[0]))
		rc = -PLAT_ENOTSUP;      /* the codec admits only these; a new one added there lands here */
	if (!rc)
		rc = cowfs_fallocate(o.m, o.in.ino, modes[q->mode], q->offset, q->length);
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
}

static int op_seek(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_seek_req *q = req;
	struct proto_seek_rep *r = rep;
	struct op o;
	int whence = q->what == PROTO_SEEK_DATA ? CFS_SEEK_DATA : CFS_SEEK_HOLE;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = snap_of(&o) ? cowfs_snap_seek(o.m, snap_of(&o), o.in.ino, q->offset, whence, &r->offset)
				 : cowfs_seek(o.m, o.in.ino, q->offset, whence, &r->offset);
	return op_end(&o, rc);
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
	int rc = op_begin(&o, fs, c, SNAP_READ);
	if (!rc)
		rc = second(&o, 1, &dst);
	if (!rc && (CFS_S_ISDIR(o.in.mode) || CFS_S_ISDIR(dst.mode)))
		rc = -PLAT_EISDIR;
	if (!rc && (!CFS_S_ISREG(o.in.mode) || !CFS_S_ISREG(dst.mode)))
		rc = -PLAT_EINVAL;
	uint64_t want = q->length < o.pc->copy_max ? q->length : o.pc->copy_max;
	if (!rc && snap_of(&o) && (q->flags & PROTO_COPY_CLONE_ONLY))
		rc = -PLAT_EINVAL;
	if (rc)
		;
	else if (snap_of(&o))
		done = cowfs_snap_copy_range(o.m, snap_of(&o), o.in.ino, q->src_offset, dst.ino, q->dst_offset, want);
	else
		done = cowfs_copy_range(o.m, o.in.ino, q->src_offset, dst.ino, q->dst_offset, want,
					q->flags & PROTO_COPY_CLONE_ONLY ? CFS_COPY_CLONE_ONLY : 0, &cloned);
	if (!rc && done < 0)
		rc = (int)done;
	if (!rc) {
		r->count = (uint64_t)done;
		r->cloned = cloned;
		rc = wcc_of(&o, &dst, dst.ino, &r->dst_wcc);
	}
	return op_end(&o, rc);
}

/* ---- extended attributes ---------------------------------------------------------- */

/* cowfs's own limits (ERANGE for a name it refuses, E2BIG for a value over
 * its maximum) are the protocol's INVAL: the codec already bounds both. */
static int xattr_err(int rc)
{
	return rc == -PLAT_ERANGE || rc == -PLAT_E2BIG ? -PLAT_EINVAL : rc;
}

static int op_getxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_xattr_req *q = req;
	struct proto_getxattr_rep *r = rep;
	size_t len = 0;
	struct op o;
	size_t cap = c->scratch_cap > 4 ? c->scratch_cap - 4 : 0;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	if (rc)
		;
	else if (snap_of(&o))
		rc = xattr_err(cowfs_snap_getxattr(o.m, snap_of(&o), o.in.ino, q->name.p, q->name.len, c->scratch, cap,
						   &len));
	else
		rc = xattr_err(cowfs_getxattr(o.m, o.in.ino, q->name.p, q->name.len, c->scratch, cap, &len));
	if (!rc) {
		r->value.p = c->scratch;
		r->value.len = (uint32_t)len;
	}
	return op_end(&o, rc);
}

static int op_setxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_setxattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	/* PROTO_XATTR_CREATE/REPLACE are cowfs's CFS_XATTR_CREATE/REPLACE. */
	if (!rc)
		rc = xattr_err(cowfs_setxattr(o.m, o.in.ino, q->name.p, q->name.len, q->value.p, q->value.len,
					      q->flags));
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
}

static int op_removexattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_xattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = xattr_err(cowfs_removexattr(o.m, o.in.ino, q->name.p, q->name.len));
	if (!rc)
		rc = wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return op_end(&o, rc);
}

static int o_listxattr(struct op *o, char *buf, size_t cap, size_t *total)
{
	return snap_of(o) ? cowfs_snap_listxattr(o->m, snap_of(o), o->in.ino, buf, cap, total)
			  : cowfs_listxattr(o->m, o->in.ino, buf, cap, total);
}

static int op_listxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_listxattr_rep *r = rep;
	struct proto_listbuf lb;
	struct proto_err err;
	char *names = NULL;
	size_t total = 0;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	(void)req;
	/* The size, then the names: a change between the two calls is
	 * ERANGE, answered as a retry would be (once more). */
	for (int tries = 0; !rc && tries < 2; tries++) {
		plat_free(names);
		names = NULL;
		if ((rc = o_listxattr(&o, NULL, 0, &total)) || !total)
			break;
		if (!(names = plat_alloc(total))) {
			rc = -PLAT_ENOMEM;
			break;
		}
		rc = o_listxattr(&o, names, total, &total);
		if (rc != -PLAT_ERANGE)
			break;
	}
	rc = xattr_err(rc);
	if (!rc) {
		proto_listbuf_init(&lb, c->scratch, (uint32_t)(c->scratch_cap > 4 ? c->scratch_cap - 4 : 0));
		for (size_t at = 0; at < total && !rc;) {
			size_t n = 0;
			while (at + n < total && names[at + n])
				n++;
			struct proto_xname x = { { names + at, (uint16_t)n } };
			int added = proto_list_add(&lb, PROTO_L_XNAME, &x, &err);
			if (added)
				rc = added == -PLAT_ENOSPC ? -PLAT_EMSGSIZE : -PLAT_EIO;
			at += n + 1;
		}
		if (!rc)
			r->names = proto_list_of(&lb);
	}
	plat_free(names);
	return op_end(&o, rc);
}

/* ---- directories ------------------------------------------------------------------ */

struct gathered {
	uint64_t cookie, ino;
	uint8_t type, len;
	char name[CFS_NAME_MAX];
};

struct gather {
	struct gathered *e;
	unsigned n, cap;
	bool full;
};

static int gather_cb(void *arg, const char *name, size_t len, uint64_t ino, uint8_t type, uint64_t next)
{
	struct gather *g = arg;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (g->n == g->cap) {
		g->full = true;
		return 1;
	}
	struct gathered *e = &g->e[g->n++];
	e->cookie = next;
	e->ino = ino;
	e->type = type == CFS_DT_DIR ? PROTO_T_DIR : type == CFS_DT_LNK ? PROTO_T_LNK : PROTO_T_REG;
	e->len = (uint8_t)len;
	plat_memcpy(e->name, name, len);
	return 0;
}

/* The cookie verifier of a directory: its inode and birth time, so a
 * cookie of another directory (or of one removed and made again) is
 * refused rather than misread. */
static struct proto_verf dir_verf(const struct cowfs_inode *d)
{
	struct proto_verf v;
	uint64_t x = d->ino * 0x9e3779b97f4a7c15ull ^ (d->btime.sec * NS + d->btime.nsec);
	for (int i = 0; i < 8; i++)
		v.b[i] = (uint8_t)(x >> (8 * i));
	return v;
}

/* The reply's fixed part besides the list: verf, eof, count, dir attr. */
#define READDIR_FIXED (PROTO_VERF_SIZE + 1 + 4 + ATTR_SIZE)

static int readdir_common(void *fs, struct proto_call *c, const void *req, void *rep, bool plus)
{
	const struct proto_readdir_req *q = req;
	struct proto_readdir_rep *r = rep;
	struct gather g = { 0 };
	struct proto_listbuf lb;
	struct proto_err err;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_READ);
	if (!rc && !CFS_S_ISDIR(o.in.mode))
		rc = -PLAT_ENOTDIR;
	if (rc)
		return op_end(&o, rc);
	r->verf = dir_verf(&o.in);
	if (q->cookie && plat_memcmp(q->verf.b, r->verf.b, PROTO_VERF_SIZE))
		return op_end(&o, -(int)PROTO_E_BAD_COOKIE);
	if (q->maxcount <= READDIR_FIXED)
		return op_end(&o, -(int)PROTO_E_TOOSMALL);
	g.cap = READDIR_BATCH;
	if (!(g.e = plat_alloc(g.cap * sizeof(*g.e))))
		return op_end(&o, -PLAT_ENOMEM);
	uint64_t start = q->cookie < CFS_FIRST_DIR_SEQ ? CFS_FIRST_DIR_SEQ : q->cookie;
	rc = snap_of(&o) ? cowfs_snap_readdir(o.m, snap_of(&o), o.in.ino, start, gather_cb, &g)
			  : cowfs_readdir(o.m, o.in.ino, start, gather_cb, &g);
	/* maxcount bounds the reply; so does the reply buffer (scratch's size) */
	uint64_t limit = q->maxcount < c->scratch_cap ? q->maxcount : c->scratch_cap;
	if (limit <= READDIR_FIXED) {
		plat_free(g.e);
		return op_end(&o, -(int)PROTO_E_TOOSMALL);
	}
	proto_listbuf_init(&lb, c->scratch, (uint32_t)(limit - READDIR_FIXED));
	bool all = !g.full;
	for (unsigned i = 0; !rc && i < g.n; i++) {
		struct gathered *e = &g.e[i];
		struct proto_str name = { e->name, e->len };
		int added;
		if (plus) {
			struct proto_direntplus d = { .cookie = e->cookie, .name = name };
			struct cowfs_inode in;
			int ge = o_getattr(&o, e->ino, &in);
			if (ge == -PLAT_ENOENT)
				continue;               /* removed since: not listed */
			if (ge) {
				rc = ge;
				break;
			}
			seal(&o, in.ino, in.gen, &d.fh);
			attr_of(&o, &in, &d.attr);
			added = proto_list_add(&lb, PROTO_L_DIRENTPLUS, &d, &err);
		} else {
			struct proto_dirent d = { e->cookie, e->ino, e->type, name };
			added = proto_list_add(&lb, PROTO_L_DIRENT, &d, &err);
		}
		if (added == -PLAT_ENOSPC) {
			all = false;
			break;
		}
		if (added)
			rc = -PLAT_EIO;         /* a stored name the protocol refuses: fsck's business */
	}
	plat_free(g.e);
	if (!rc && !lb.count && !all)
		rc = -(int)PROTO_E_TOOSMALL;
	if (!rc) {
		struct cowfs_inode now;
		r->eof = all;
		r->entries = proto_list_of(&lb);
		if (!(rc = o_getattr(&o, o.in.ino, &now)))
			attr_of(&o, &now, &r->dir_attr);
	}
	return op_end(&o, rc);
}

static int op_readdir(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return readdir_common(fs, c, req, rep, false);
}

static int op_readdirplus(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return readdir_common(fs, c, req, rep, true);
}

static int op_fsstat(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_fsstat_rep *r = rep;
	struct cowfs_statfs st;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_FS);
	(void)req;
	if (!rc)
		rc = cowfs_statfs(o.m, &st);
	if (!rc) {
		/* Inodes live in the trees: every free block could hold more
		 * of them, so free files are counted as free blocks. */
		r->total_bytes = st.total_blocks * st.block_size;
		r->free_bytes = r->avail_bytes = st.free_blocks * st.block_size;
		r->total_files = st.inodes + st.free_blocks;
		r->free_files = st.free_blocks;
		r->max_name = st.name_max;
		r->max_io = PROTO_MAX_IO;
	}
	return op_end(&o, rc);
}

/* ---- snapshots ---------------------------------------------------------------------- */

struct snap_find { const char *name; size_t len; uint64_t id; };

static int snap_find_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct snap_find *f = arg;
	size_t n = 0;
	while (n <= CFS_NAME_MAX_SNAP && si->name[n])
		n++;
	if (n == f->len && !plat_memcmp(si->name, f->name, n)) {
		f->id = si->id;
		return 1;
	}
	return 0;
}

/* A snapshot's root directory is the live root's copy: same generation.
 * Sampled before cowfs_snapshot_list, whose callbacks run under the
 * filesystem lock (no cowfs call may be made from them). */
static int root_gen(struct op *o, uint32_t *gen)
{
	struct cowfs_inode root;
	int err = cowfs_getattr(o->m, CFS_ROOT_INO, &root);
	*gen = (uint32_t)root.gen;
	return err;
}

static void seal_snap_root(struct op *o, uint64_t id, uint32_t gen, struct proto_handle *h)
{
	struct proto_fh fh = { o->c->fh[0].fsid, CFS_ROOT_INO, gen, (uint32_t)id };
	proto_server_seal(o->c->srv, &fh, h);
}

static int op_snap_create(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_snap_req *q = req;
	struct proto_snap_create_rep *r = rep;
	struct snap_find f = { q->name.p, q->name.len, 0 };
	uint32_t gen = 0;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_FS);
	if (!rc)
		rc = root_gen(&o, &gen);
	if (!rc)
		rc = cowfs_snapshot(o.m, q->name.p, q->name.len, true);
	if (!rc)
		rc = cowfs_snapshot_list(o.m, snap_find_cb, &f);
	if (!rc && (!f.id || f.id > UINT32_MAX))
		rc = -PLAT_EIO;
	if (!rc) {
		r->id = (uint32_t)f.id;
		seal_snap_root(&o, f.id, gen, &r->root);
	}
	return op_end(&o, rc);
}

struct snap_list { struct op *o; uint32_t root_gen; struct proto_listbuf lb; int err; };

static int snap_list_cb(void *arg, const struct cowfs_subvol_info *si)
{
	struct snap_list *l = arg;
	struct proto_snap s = { .id = (uint32_t)si->id };
	struct proto_err err;
	size_t n = 0;
	while (n <= CFS_NAME_MAX_SNAP && si->name[n])
		n++;
	if (!n || !si->readonly)
		return 0;       /* unnamed trees and writable clones are not snapshots of this export */
	s.name = (struct proto_str){ si->name, (uint16_t)n };
	seal_snap_root(l->o, si->id, l->root_gen, &s.root);
	int rc = proto_list_add(&l->lb, PROTO_L_SNAP, &s, &err);
	if (rc) {
		l->err = rc == -PLAT_ENOSPC ? -PLAT_EMSGSIZE : -PLAT_EIO;
		return 1;
	}
	return 0;
}

static int op_snap_list(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_snap_list_rep *r = rep;
	struct snap_list l = { 0 };
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_FS);
	(void)req;
	if (!rc)
		rc = root_gen(&o, &l.root_gen);
	if (!rc) {
		l.o = &o;
		size_t room = c->scratch_cap - 4;       /* the list's count goes first */
		proto_listbuf_init(&l.lb, c->scratch, (uint32_t)(room < UINT32_MAX ? room : UINT32_MAX));
		rc = cowfs_snapshot_list(o.m, snap_list_cb, &l);
		if (!rc)
			rc = l.err;
	}
	if (!rc)
		r->snaps = proto_list_of(&l.lb);
	return op_end(&o, rc);
}

static int op_snap_delete(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_snap_req *q = req;
	struct op o;
	int rc = op_begin(&o, fs, c, SNAP_FS);
	(void)rep;
	if (!rc)
		rc = cowfs_snapshot_remove(o.m, q->name.p, q->name.len);
	return op_end(&o, rc);
}

/* ---- the table ------------------------------------------------------------------------ */

const struct proto_fs_ops proto_cowfs_ops = { .op = {
	[PROTO_OP_GETATTR] = op_getattr, [PROTO_OP_SETATTR] = op_setattr, [PROTO_OP_LOOKUP] = op_lookup,
	[PROTO_OP_READLINK] = op_readlink, [PROTO_OP_READ] = op_read, [PROTO_OP_WRITE] = op_write,
	[PROTO_OP_COMMIT] = op_commit, [PROTO_OP_CREATE] = op_create, [PROTO_OP_MKDIR] = op_mkdir,
	[PROTO_OP_SYMLINK] = op_symlink, [PROTO_OP_LINK] = op_link, [PROTO_OP_REMOVE] = op_remove,
	[PROTO_OP_RMDIR] = op_rmdir, [PROTO_OP_RENAME] = op_rename, [PROTO_OP_READDIR] = op_readdir,
	[PROTO_OP_READDIRPLUS] = op_readdirplus, [PROTO_OP_FSSTAT] = op_fsstat, [PROTO_OP_FSYNC] = op_fsync,
	[PROTO_OP_COPY] = op_copy, [PROTO_OP_GETXATTR] = op_getxattr, [PROTO_OP_SETXATTR] = op_setxattr,
	[PROTO_OP_LISTXATTR] = op_listxattr, [PROTO_OP_REMOVEXATTR] = op_removexattr,
	[PROTO_OP_SNAP_CREATE] = op_snap_create,
	[PROTO_OP_SNAP_LIST] = op_snap_list, [PROTO_OP_SNAP_DELETE] = op_snap_delete,
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
