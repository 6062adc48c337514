/*
 * Typed file operations over the client library (tools/apfp_ops.h).
 */
#include "tools/apfp_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static struct proto_str pstr(const char *s)
{
	return (struct proto_str){ s, (uint16_t)strlen(s) };
}

/* One call; the reply's structure in r->msg on success. */
static int call(struct apfpc *c, uint8_t op, const void *req, struct proto_client_reply *r)
{
	int rc = apfpc_call(c, op, req, r);
	return rc < 0 ? rc : r->err;
}

int apfp_export_root(struct apfpc *c, const char *name, struct apfp_obj *out)
{
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_EXPORTS, NULL, &r);
	if (rc)
		return rc;
	const struct proto_exports_rep *e = (const void *)r.msg;
	struct proto_export x;
	uint32_t pos = 0;
	while (proto_list_next(&e->exports, PROTO_L_EXPORT, &pos, &x) > 0) {
		if (x.name.len == strlen(name) && !memcmp(x.name.p, name, x.name.len)) {
			out->fh = x.root;
			return apfp_getattr(c, &out->fh, &out->attr);
		}
	}
	return -ENOENT;
}

int apfp_getattr(struct apfpc *c, const struct proto_handle *fh, struct proto_attr *attr)
{
	struct proto_fh_req q = { *fh };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_GETATTR, &q, &r);
	if (!rc)
		*attr = ((const struct proto_getattr_rep *)r.msg)->attr;
	return rc;
}

int apfp_setattr(struct apfpc *c, const struct proto_handle *fh, const struct proto_sattr *sa,
		 struct proto_attr *after)
{
	struct proto_setattr_req q = { *fh, *sa };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_SETATTR, &q, &r);
	if (!rc && after)
		*after = ((const struct proto_wcc_rep *)r.msg)->wcc.after;
	return rc;
}

int apfp_lookup(struct apfpc *c, const struct proto_handle *dir, const char *name, struct apfp_obj *out)
{
	struct proto_dirop_req q = { *dir, pstr(name) };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_LOOKUP, &q, &r);
	if (!rc) {
		const struct proto_lookup_rep *l = (const void *)r.msg;
		out->fh = l->fh;
		out->attr = l->attr;
	}
	return rc;
}

int apfp_walk(struct apfpc *c, const struct apfp_obj *dir, const char *path, struct apfp_obj *out)
{
	struct apfp_obj cur = *dir;
	while (*path) {
		char name[256];
		size_t n = strcspn(path, "/");
		if (n >= sizeof(name))
			return -ENAMETOOLONG;
		memcpy(name, path, n);
		name[n] = 0;
		path += n;
		while (*path == '/')
			path++;
		if (!n || !strcmp(name, "."))
			continue;
		if (!strcmp(name, ".."))
			return -EINVAL;
		if (cur.attr.type != PROTO_T_DIR)
			return -ENOTDIR;
		int rc = apfp_lookup(c, &cur.fh, name, &cur);
		if (rc)
			return rc;
	}
	*out = cur;
	return 0;
}

int apfp_walk_parent(struct apfpc *c, const struct apfp_obj *dir, const char *path, struct apfp_obj *parent,
		     char name[256])
{
	char buf[4096];
	size_t len = strlen(path);
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	while (len && buf[len - 1] == '/')
		buf[--len] = 0;
	char *slash = strrchr(buf, '/');
	const char *last = slash ? slash + 1 : buf;
	if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
		return -EINVAL;
	if (strlen(last) > 255)
		return -ENAMETOOLONG;
	strcpy(name, last);
	if (slash)
		*slash = 0;
	else
		buf[0] = 0;
	int rc = apfp_walk(c, dir, buf, parent);
	if (!rc && parent->attr.type != PROTO_T_DIR)
		rc = -ENOTDIR;
	return rc;
}

static int newobj(struct apfpc *c, uint8_t op, const void *q, struct apfp_obj *out)
{
	struct proto_client_reply r;
	int rc = call(c, op, q, &r);
	if (!rc && out) {
		const struct proto_newobj_rep *n = (const void *)r.msg;
		out->fh = n->fh;
		out->attr = n->attr;
	}
	return rc;
}

int apfp_create(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint8_t how,
		struct apfp_obj *out)
{
	struct proto_create_req q = { .dir = *dir, .name = pstr(name), .how = how };
	if (how == PROTO_CREATE_EXCLUSIVE) {
		if (getrandom(q.verf.b, sizeof(q.verf.b), 0) != (ssize_t)sizeof(q.verf.b))
			return -EIO;
	} else {
		q.sattr.mask = PROTO_SA_MODE;
		q.sattr.mode = mode & 07777;
	}
	return newobj(c, PROTO_OP_CREATE, &q, out);
}

int apfp_mkdir(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode,
	       struct apfp_obj *out)
{
	struct proto_mkdir_req q = { .dir = *dir, .name = pstr(name), .sattr = { .mask = PROTO_SA_MODE,
										   .mode = mode & 07777 } };
	return newobj(c, PROTO_OP_MKDIR, &q, out);
}

int apfp_symlink(struct apfpc *c, const struct proto_handle *dir, const char *name, const char *target,
		 struct apfp_obj *out)
{
	struct proto_symlink_req q = { .dir = *dir, .name = pstr(name), .target = pstr(target) };
	if (strlen(target) > PROTO_TARGET_MAX)
		return -ENAMETOOLONG;
	return newobj(c, PROTO_OP_SYMLINK, &q, out);
}

int apfp_readlink(struct apfpc *c, const struct proto_handle *fh, char *target, size_t cap)
{
	struct proto_fh_req q = { *fh };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_READLINK, &q, &r);
	if (rc)
		return rc;
	const struct proto_readlink_rep *l = (const void *)r.msg;
	if (l->target.len >= cap)
		return -ENAMETOOLONG;
	memcpy(target, l->target.p, l->target.len);
	target[l->target.len] = 0;
	return 0;
}

int apfp_link(struct apfpc *c, const struct proto_handle *fh, const struct proto_handle *dir, const char *name,
	      struct proto_attr *attr)
{
	struct proto_link_req q = { *fh, *dir, pstr(name) };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_LINK, &q, &r);
	if (!rc && attr)
		*attr = ((const struct proto_link_rep *)r.msg)->attr;
	return rc;
}

int apfp_remove(struct apfpc *c, const struct proto_handle *dir, const char *name, bool is_dir)
{
	struct proto_dirop_req q = { *dir, pstr(name) };
	struct proto_client_reply r;
	return call(c, is_dir ? PROTO_OP_RMDIR : PROTO_OP_REMOVE, &q, &r);
}

int apfp_rename(struct apfpc *c, const struct proto_handle *from, const char *from_name,
		const struct proto_handle *to, const char *to_name, uint32_t flags)
{
	struct proto_rename_req q = { *from, pstr(from_name), *to, pstr(to_name), flags };
	struct proto_client_reply r;
	return call(c, PROTO_OP_RENAME, &q, &r);
}

int apfp_read(struct apfpc *c, const struct proto_handle *fh, uint64_t off, void *buf, uint32_t count,
	      uint32_t *n, bool *eof)
{
	struct proto_read_req q = { *fh, off, count };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_READ, &q, &r);
	if (rc)
		return rc;
	const struct proto_read_rep *d = (const void *)r.msg;
	if (d->data.len > count)
		return -EBADMSG;        /* more than asked for: a broken server */
	memcpy(buf, d->data.p, d->data.len);
	*n = d->data.len;
	if (eof)
		*eof = d->eof;
	return 0;
}

int apfp_write(struct apfpc *c, const struct proto_handle *fh, uint64_t off, const void *buf, uint32_t len,
	       uint8_t stable, uint32_t *n, struct proto_verf *verf)
{
	struct proto_write_req q = { *fh, off, stable, { buf, len } };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_WRITE, &q, &r);
	if (rc)
		return rc;
	const struct proto_write_rep *w = (const void *)r.msg;
	if (w->count > len)
		return -EBADMSG;
	*n = w->count;
	if (verf)
		*verf = w->verf;
	return 0;
}

int apfp_commit(struct apfpc *c, const struct proto_handle *fh, struct proto_verf *verf)
{
	struct proto_commit_req q = { *fh, 0, 0 };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_COMMIT, &q, &r);
	if (!rc && verf)
		*verf = ((const struct proto_commit_rep *)r.msg)->verf;
	return rc;
}

int apfp_fsstat(struct apfpc *c, const struct proto_handle *fh, struct proto_fsstat_rep *out)
{
	struct proto_fh_req q = { *fh };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_FSSTAT, &q, &r);
	if (!rc)
		*out = *(const struct proto_fsstat_rep *)r.msg;
	return rc;
}

int apfp_readdir(struct apfpc *c, const struct proto_handle *dir, apfp_dirent_fn cb, void *arg)
{
	struct proto_readdir_req q = { .dir = *dir, .maxcount = 64u << 10 };
	/* Entries point into the connection's buffer, which the callback's
	 * own calls reuse: copy a batch out first. */
	struct ent { char name[256]; struct apfp_obj obj; } *batch = NULL;
	size_t cap = 0;
	for (unsigned rounds = 0;; rounds++) {
		struct proto_client_reply r;
		int rc = call(c, PROTO_OP_READDIRPLUS, &q, &r);
		if (rc)
			goto out_rc;
		const struct proto_readdir_rep *d = (const void *)r.msg;
		struct proto_direntplus e;
		uint32_t pos = 0;
		size_t n = 0;
		bool eof = d->eof;
		q.verf = d->verf;
		if (d->entries.count > cap) {
			struct ent *nb = realloc(batch, d->entries.count * sizeof(*batch));
			if (!nb) {
				rc = -ENOMEM;
				goto out_rc;
			}
			batch = nb;
			cap = d->entries.count;
		}
		while (proto_list_next(&d->entries, PROTO_L_DIRENTPLUS, &pos, &e) > 0) {
			memcpy(batch[n].name, e.name.p, e.name.len);
			batch[n].name[e.name.len] = 0;
			batch[n].obj.fh = e.fh;
			batch[n].obj.attr = e.attr;
			q.cookie = e.cookie;
			n++;
		}
		for (size_t i = 0; i < n; i++)
			if ((rc = cb(arg, batch[i].name, &batch[i].obj)))
				goto out_rc;
		if (eof)
			break;
		if (!n) {
			rc = -EIO;      /* neither entries nor the end: a broken server */
			goto out_rc;
		}
		continue;
out_rc:
		free(batch);
		return rc;
	}
	free(batch);
	return 0;
}

int apfp_snap_create(struct apfpc *c, const struct proto_handle *fh, const char *name, uint32_t *id)
{
	struct proto_snap_req q = { *fh, pstr(name) };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_SNAP_CREATE, &q, &r);
	if (!rc && id)
		*id = ((const struct proto_snap_create_rep *)r.msg)->id;
	return rc;
}

int apfp_snap_delete(struct apfpc *c, const struct proto_handle *fh, const char *name)
{
	struct proto_snap_req q = { *fh, pstr(name) };
	struct proto_client_reply r;
	return call(c, PROTO_OP_SNAP_DELETE, &q, &r);
}

int apfp_snap_list(struct apfpc *c, const struct proto_handle *fh, apfp_snap_fn cb, void *arg)
{
	struct proto_fh_req q = { *fh };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_SNAP_LIST, &q, &r);
	if (rc)
		return rc;
	const struct proto_snap_list_rep *l = (const void *)r.msg;
	struct proto_snap s;
	uint32_t pos = 0;
	while (proto_list_next(&l->snaps, PROTO_L_SNAP, &pos, &s) > 0) {
		char name[256];
		memcpy(name, s.name.p, s.name.len);
		name[s.name.len] = 0;
		if ((rc = cb(arg, s.id, name)))
			return rc;
	}
	return 0;
}

/* ---- for the network FUSE mount (tools/apfp_fuse*.c) ------------------------ */

static struct proto_sattr owned(uint32_t mode, uint32_t uid, uint32_t gid)
{
	return (struct proto_sattr){ .mask = PROTO_SA_MODE | PROTO_SA_UID | PROTO_SA_GID, .mode = mode & 07777,
				     .uid = uid, .gid = gid };
}

int apfp_create_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint8_t how,
		   uint32_t uid, uint32_t gid, struct apfp_obj *out)
{
	if (how == PROTO_CREATE_EXCLUSIVE)
		return -EINVAL;         /* exclusive creates carry no attributes */
	struct proto_create_req q = { .dir = *dir, .name = pstr(name), .how = how, .sattr = owned(mode, uid, gid) };
	return newobj(c, PROTO_OP_CREATE, &q, out);
}

int apfp_mkdir_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint32_t uid,
		  uint32_t gid, struct apfp_obj *out)
{
	struct proto_mkdir_req q = { .dir = *dir, .name = pstr(name), .sattr = owned(mode, uid, gid) };
	return newobj(c, PROTO_OP_MKDIR, &q, out);
}

int apfp_symlink_as(struct apfpc *c, const struct proto_handle *dir, const char *name, const char *target,
		    uint32_t uid, uint32_t gid, struct apfp_obj *out)
{
	if (strlen(target) > PROTO_TARGET_MAX)
		return -ENAMETOOLONG;
	struct proto_symlink_req q = { .dir = *dir, .name = pstr(name), .target = pstr(target),
				       .sattr = owned(0777, uid, gid) };
	q.sattr.mask &= ~PROTO_SA_MODE;         /* a symlink's mode is fixed */
	return newobj(c, PROTO_OP_SYMLINK, &q, out);
}

int apfp_mknod_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint8_t type, uint32_t mode,
		  uint32_t major, uint32_t minor, uint32_t uid, uint32_t gid, struct apfp_obj *out)
{
	struct proto_mknod_req q = { .dir = *dir, .name = pstr(name), .type = type, .sattr = owned(mode, uid, gid),
				     .rdev_major = major, .rdev_minor = minor };
	return newobj(c, PROTO_OP_MKNOD, &q, out);
}

int apfp_readdir_page(struct apfpc *c, const struct proto_handle *dir, uint64_t *cookie, struct proto_verf *verf,
		      uint32_t maxcount, apfp_direntc_fn cb, void *arg, bool *eof)
{
	struct proto_readdir_req q = { .dir = *dir, .cookie = *cookie, .verf = *verf, .maxcount = maxcount };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_READDIRPLUS, &q, &r);
	if (rc)
		return rc;
	const struct proto_readdir_rep *d = (const void *)r.msg;
	struct proto_direntplus e;
	uint32_t pos = 0;
	*verf = d->verf;
	*eof = d->eof;
	/* Entries point into the connection's buffer: cb must not use c. */
	while (proto_list_next(&d->entries, PROTO_L_DIRENTPLUS, &pos, &e) > 0) {
		char name[256];
		struct apfp_obj obj = { e.fh, e.attr };
		memcpy(name, e.name.p, e.name.len);
		name[e.name.len] = 0;
		if (cb(arg, name, &obj, e.cookie)) {
			*eof = false;
			return 0;
		}
		*cookie = e.cookie;
	}
	if (!d->eof && !d->entries.count)
		return -EIO;            /* neither entries nor the end: a broken server */
	return 0;
}

/* ---- for the CLI: export paths, server-side copy ---------------------------- */

/* The export's name (the first component of path) into name; the rest. */
static const char *split_export(const char *path, char name[256])
{
	while (*path == '/')
		path++;
	size_t n = strcspn(path, "/");
	if (!n || n > 255)
		return NULL;
	memcpy(name, path, n);
	name[n] = 0;
	return path + n;
}

int apfp_resolve(struct apfpc *c, const char *path, struct apfp_obj *out)
{
	char exp[256];
	struct apfp_obj root;
	const char *rest = split_export(path, exp);
	if (!rest)
		return -EINVAL;
	int rc = apfp_export_root(c, exp, &root);
	return rc ? rc : apfp_walk(c, &root, rest, out);
}

int apfp_resolve_parent(struct apfpc *c, const char *path, struct apfp_obj *parent, char name[256])
{
	char exp[256];
	struct apfp_obj root;
	const char *rest = split_export(path, exp);
	if (!rest)
		return -EINVAL;
	if (!rest[strspn(rest, "/")])
		return -EINVAL;         /* the export itself */
	int rc = apfp_export_root(c, exp, &root);
	return rc ? rc : apfp_walk_parent(c, &root, rest, parent, name);
}

int apfp_copy(struct apfpc *c, const struct proto_handle *src, uint64_t src_off, const struct proto_handle *dst,
	      uint64_t dst_off, uint64_t length, uint64_t *count, bool *cloned)
{
	struct proto_copy_req q = { *src, src_off, *dst, dst_off, length, 0 };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_COPY, &q, &r);
	if (rc)
		return rc;
	const struct proto_copy_rep *p = (const void *)r.msg;
	if (p->count > length)
		return -EBADMSG;        /* more than asked for: a broken server */
	*count = p->count;
	if (cloned)
		*cloned = p->cloned;
	return 0;
}

/* ---- extended attributes, fallocate, seek ---- */

int apfp_getxattr(struct apfpc *c, const struct proto_handle *fh, const char *name, void *buf, size_t cap,
		  size_t *len)
{
	struct proto_xattr_req q = { *fh, pstr(name) };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_GETXATTR, &q, &r);
	if (rc)
		return rc;
	const struct proto_getxattr_rep *g = (const void *)r.msg;
	*len = g->value.len;
	if (!cap)
		return 0;
	if (g->value.len > cap)
		return -ERANGE;
	if (g->value.len)
		memcpy(buf, g->value.p, g->value.len);
	return 0;
}

int apfp_setxattr(struct apfpc *c, const struct proto_handle *fh, const char *name, const void *value, size_t len,
		  uint32_t flags)
{
	if (len > UINT32_MAX)
		return -E2BIG;
	struct proto_setxattr_req q = { *fh, pstr(name), { value, (uint32_t)len }, flags };
	struct proto_client_reply r;
	return call(c, PROTO_OP_SETXATTR, &q, &r);
}

int apfp_listxattr(struct apfpc *c, const struct proto_handle *fh, char *buf, size_t cap, size_t *total)
{
	struct proto_fh_req q = { *fh };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_LISTXATTR, &q, &r);
	if (rc)
		return rc;
	const struct proto_listxattr_rep *l = (const void *)r.msg;
	struct proto_xname x;
	uint32_t pos = 0;
	size_t n = 0;
	while ((rc = proto_list_next(&l->names, PROTO_L_XNAME, &pos, &x)) > 0) {
		if (cap && n + x.name.len + 1 <= cap) {
			memcpy(buf + n, x.name.p, x.name.len);
			buf[n + x.name.len] = 0;
		}
		n += x.name.len + 1u;
	}
	if (rc < 0)
		return -EBADMSG;
	*total = n;
	return cap && n > cap ? -ERANGE : 0;
}

int apfp_removexattr(struct apfpc *c, const struct proto_handle *fh, const char *name)
{
	struct proto_xattr_req q = { *fh, pstr(name) };
	struct proto_client_reply r;
	return call(c, PROTO_OP_REMOVEXATTR, &q, &r);
}

int apfp_fallocate(struct apfpc *c, const struct proto_handle *fh, uint8_t mode, uint64_t off, uint64_t len,
		   struct proto_attr *after)
{
	struct proto_fallocate_req q = { *fh, mode, off, len };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_FALLOCATE, &q, &r);
	if (!rc && after)
		*after = ((const struct proto_wcc_rep *)r.msg)->wcc.after;
	return rc;
}

int apfp_seek(struct apfpc *c, const struct proto_handle *fh, uint64_t off, uint8_t what, uint64_t *result)
{
	struct proto_seek_req q = { *fh, off, what };
	struct proto_client_reply r;
	int rc = call(c, PROTO_OP_SEEK, &q, &r);
	if (!rc)
		*result = ((const struct proto_seek_rep *)r.msg)->offset;
	return rc;
}
