/*
 * The protocol's operations over cowfs, continued (serve_cowfs.c has the
 * rules they follow): extended attributes, directory listings (READDIR,
 * READDIRPLUS), FSSTAT and the snapshot operations.
 */
#include "proto/serve_cowfs_int.h"

/* ---- extended attributes ---------------------------------------------------------- */

/* cowfs's own limits (ERANGE for a name it refuses, E2BIG for a value over
 * its maximum) are the protocol's INVAL: the codec already bounds both. */
static int xattr_err(int rc)
{
	return rc == -PLAT_ERANGE || rc == -PLAT_E2BIG ? -PLAT_EINVAL : rc;
}

int scf_op_getxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_xattr_req *q = req;
	struct proto_getxattr_rep *r = rep;
	size_t len = 0;
	struct op o;
	size_t cap = c->scratch_cap > 4 ? c->scratch_cap - 4 : 0;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (rc)
		;
	else if (scf_snap_of(&o))
		rc = xattr_err(cowfs_snap_getxattr(o.m, scf_snap_of(&o), o.in.ino, q->name.p, q->name.len, c->scratch, cap,
						   &len));
	else
		rc = xattr_err(cowfs_getxattr(o.m, o.in.ino, q->name.p, q->name.len, c->scratch, cap, &len));
	if (!rc) {
		r->value.p = c->scratch;
		r->value.len = (uint32_t)len;
	}
	return scf_op_end(&o, rc);
}

int scf_op_setxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_setxattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	/* PROTO_XATTR_CREATE/REPLACE are cowfs's CFS_XATTR_CREATE/REPLACE. */
	if (!rc)
		rc = xattr_err(cowfs_setxattr(o.m, o.in.ino, q->name.p, q->name.len, q->value.p, q->value.len,
					      q->flags));
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

int scf_op_removexattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_xattr_req *q = req;
	struct proto_wcc_rep *r = rep;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_NO);
	if (!rc)
		rc = xattr_err(cowfs_removexattr(o.m, o.in.ino, q->name.p, q->name.len));
	if (!rc)
		rc = scf_wcc_of(&o, &o.in, o.in.ino, &r->wcc);
	return scf_op_end(&o, rc);
}

static int o_listxattr(struct op *o, char *buf, size_t cap, size_t *total)
{
	return scf_snap_of(o) ? cowfs_snap_listxattr(o->m, scf_snap_of(o), o->in.ino, buf, cap, total)
			  : cowfs_listxattr(o->m, o->in.ino, buf, cap, total);
}

int scf_op_listxattr(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_listxattr_rep *r = rep;
	struct proto_listbuf lb;
	struct proto_err err;
	char *names = NULL;
	size_t total = 0;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
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
	return scf_op_end(&o, rc);
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
	e->type = scf_dtype(type);
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
	int rc = scf_op_begin(&o, fs, c, SNAP_READ);
	if (!rc && !CFS_S_ISDIR(o.in.mode))
		rc = -PLAT_ENOTDIR;
	if (rc)
		return scf_op_end(&o, rc);
	r->verf = dir_verf(&o.in);
	if (q->cookie && plat_memcmp(q->verf.b, r->verf.b, PROTO_VERF_SIZE))
		return scf_op_end(&o, -(int)PROTO_E_BAD_COOKIE);
	if (q->maxcount <= READDIR_FIXED)
		return scf_op_end(&o, -(int)PROTO_E_TOOSMALL);
	g.cap = READDIR_BATCH;
	if (!(g.e = plat_alloc(g.cap * sizeof(*g.e))))
		return scf_op_end(&o, -PLAT_ENOMEM);
	uint64_t start = q->cookie < CFS_FIRST_DIR_SEQ ? CFS_FIRST_DIR_SEQ : q->cookie;
	rc = scf_snap_of(&o) ? cowfs_snap_readdir(o.m, scf_snap_of(&o), o.in.ino, start, gather_cb, &g)
			  : cowfs_readdir(o.m, o.in.ino, start, gather_cb, &g);
	/* maxcount bounds the reply; so does the reply buffer (scratch's size) */
	uint64_t limit = q->maxcount < c->scratch_cap ? q->maxcount : c->scratch_cap;
	if (limit <= READDIR_FIXED) {
		plat_free(g.e);
		return scf_op_end(&o, -(int)PROTO_E_TOOSMALL);
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
			int ge = scf_o_getattr(&o, e->ino, &in);
			if (ge == -PLAT_ENOENT)
				continue;               /* removed since: not listed */
			if (ge) {
				rc = ge;
				break;
			}
			scf_seal(&o, in.ino, in.gen, &d.fh);
			scf_attr_of(&o, &in, &d.attr);
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
		if (!(rc = scf_o_getattr(&o, o.in.ino, &now)))
			scf_attr_of(&o, &now, &r->dir_attr);
	}
	return scf_op_end(&o, rc);
}

int scf_op_readdir(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return readdir_common(fs, c, req, rep, false);
}

int scf_op_readdirplus(void *fs, struct proto_call *c, const void *req, void *rep)
{
	return readdir_common(fs, c, req, rep, true);
}

int scf_op_fsstat(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_fsstat_rep *r = rep;
	struct cowfs_statfs st;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_FS);
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
	return scf_op_end(&o, rc);
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

int scf_op_snap_create(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_snap_req *q = req;
	struct proto_snap_create_rep *r = rep;
	struct snap_find f = { q->name.p, q->name.len, 0 };
	uint32_t gen = 0;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_FS);
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
	return scf_op_end(&o, rc);
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

int scf_op_snap_list(void *fs, struct proto_call *c, const void *req, void *rep)
{
	struct proto_snap_list_rep *r = rep;
	struct snap_list l = { 0 };
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_FS);
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
	return scf_op_end(&o, rc);
}

int scf_op_snap_delete(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct proto_snap_req *q = req;
	struct op o;
	int rc = scf_op_begin(&o, fs, c, SNAP_FS);
	(void)rep;
	if (!rc)
		rc = cowfs_snapshot_remove(o.m, q->name.p, q->name.len);
	return scf_op_end(&o, rc);
}
