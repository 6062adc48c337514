/*
 * Typed file operations over one client connection (tools/apfp_client.h):
 * one function per protocol operation the CLI and the network FUSE mount
 * use, and path resolution from an export's root.  Each returns 0 or a
 * negative errno (the server's status mapped by proto_status_errno, or the
 * connection's failure with its sentence in c->err).
 *
 * Handles and attributes are copied out of the reply before returning;
 * READ data is copied into the caller's buffer.  Not thread safe: one
 * connection per thread, as the client library.
 */
#ifndef TOOLS_APFP_OPS_H
#define TOOLS_APFP_OPS_H

#include "tools/apfp_client.h"

struct apfp_obj {
	struct proto_handle fh;
	struct proto_attr attr;
};

/* The root of export `name`. -ENOENT when there is none by that name. */
int apfp_export_root(struct apfpc *c, const char *name, struct apfp_obj *out);
/* Resolve "a/b/c" from dir, one LOOKUP per component ("" and "/" are dir
 * itself; "." components skipped; ".." refused: the server has no path
 * above an export).  Symlinks are not followed. */
int apfp_walk(struct apfpc *c, const struct apfp_obj *dir, const char *path, struct apfp_obj *out);
/* The parent of the last component and that component (a pointer into
 * path, NUL-terminated by copying into name[256]). */
int apfp_walk_parent(struct apfpc *c, const struct apfp_obj *dir, const char *path, struct apfp_obj *parent,
		     char name[256]);

int apfp_getattr(struct apfpc *c, const struct proto_handle *fh, struct proto_attr *attr);
int apfp_setattr(struct apfpc *c, const struct proto_handle *fh, const struct proto_sattr *sa,
		 struct proto_attr *after);
int apfp_lookup(struct apfpc *c, const struct proto_handle *dir, const char *name, struct apfp_obj *out);
/* how: PROTO_CREATE_*; mode: permission bits (applied unless EXCLUSIVE). */
int apfp_create(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint8_t how,
		struct apfp_obj *out);
int apfp_mkdir(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode,
	       struct apfp_obj *out);
int apfp_symlink(struct apfpc *c, const struct proto_handle *dir, const char *name, const char *target,
		 struct apfp_obj *out);
/* target: cap bytes, NUL-terminated. */
int apfp_readlink(struct apfpc *c, const struct proto_handle *fh, char *target, size_t cap);
int apfp_link(struct apfpc *c, const struct proto_handle *fh, const struct proto_handle *dir, const char *name,
	      struct proto_attr *attr);
int apfp_remove(struct apfpc *c, const struct proto_handle *dir, const char *name, bool is_dir);
int apfp_rename(struct apfpc *c, const struct proto_handle *from, const char *from_name,
		const struct proto_handle *to, const char *to_name, uint32_t flags);
/* Bytes read into buf (at most count <= 1 MiB) in *n; *eof at end of file. */
int apfp_read(struct apfpc *c, const struct proto_handle *fh, uint64_t off, void *buf, uint32_t count,
	      uint32_t *n, bool *eof);
int apfp_write(struct apfpc *c, const struct proto_handle *fh, uint64_t off, const void *buf, uint32_t len,
	       uint8_t stable, uint32_t *n, struct proto_verf *verf);
int apfp_commit(struct apfpc *c, const struct proto_handle *fh, struct proto_verf *verf);
int apfp_fsstat(struct apfpc *c, const struct proto_handle *fh, struct proto_fsstat_rep *out);

/* Every entry of a directory (READDIRPLUS, cookies followed until eof);
 * cb returns non-zero to stop (returned). */
typedef int (*apfp_dirent_fn)(void *arg, const char *name, const struct apfp_obj *obj);
int apfp_readdir(struct apfpc *c, const struct proto_handle *dir, apfp_dirent_fn cb, void *arg);

int apfp_snap_create(struct apfpc *c, const struct proto_handle *fh, const char *name, uint32_t *id);
int apfp_snap_delete(struct apfpc *c, const struct proto_handle *fh, const char *name);
typedef int (*apfp_snap_fn)(void *arg, uint32_t id, const char *name);
int apfp_snap_list(struct apfpc *c, const struct proto_handle *fh, apfp_snap_fn cb, void *arg);

/* ---- for the network FUSE mount (tools/apfp_fuse*.c) ------------------------
 * Objects made on behalf of another user: uid/gid are set in the request's
 * attributes (the connection's header carries the mount daemon's ids). */
int apfp_create_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint8_t how,
		   uint32_t uid, uint32_t gid, struct apfp_obj *out);
int apfp_mkdir_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint32_t mode, uint32_t uid,
		  uint32_t gid, struct apfp_obj *out);
int apfp_symlink_as(struct apfpc *c, const struct proto_handle *dir, const char *name, const char *target,
		    uint32_t uid, uint32_t gid, struct apfp_obj *out);
/* A fifo, socket or device node (type PROTO_T_BLK..PROTO_T_FIFO; major and
 * minor for devices, 0 otherwise): -EPERM for a device unless this process
 * runs as uid 0 (the request header's uid), -EINVAL for another type. */
int apfp_mknod_as(struct apfpc *c, const struct proto_handle *dir, const char *name, uint8_t type, uint32_t mode,
		  uint32_t major, uint32_t minor, uint32_t uid, uint32_t gid, struct apfp_obj *out);
/* One READDIRPLUS call from *cookie (0: the start; *verf from the previous
 * call, zero at the start): cb sees each entry with the cookie that resumes
 * after it and returns non-zero to stop early (not an error: *cookie then
 * names the last entry cb accepted).  *eof when the directory ended. */
typedef int (*apfp_direntc_fn)(void *arg, const char *name, const struct apfp_obj *obj, uint64_t cookie);
int apfp_readdir_page(struct apfpc *c, const struct proto_handle *dir, uint64_t *cookie, struct proto_verf *verf,
		      uint32_t maxcount, apfp_direntc_fn cb, void *arg, bool *eof);
/* ---- for the CLI (tools/apfp.c): export paths, server-side copy ---------- */

/* "EXPORT/a/b": the export's root walked to a/b (apfp_walk rules); -ENOENT
 * with no export of that name. */
int apfp_resolve(struct apfpc *c, const char *path, struct apfp_obj *out);
/* The parent directory of "EXPORT/a/b" and its last component; -EINVAL for
 * an export's root (it has no parent over the protocol). */
int apfp_resolve_parent(struct apfpc *c, const char *path, struct apfp_obj *parent, char name[256]);
/* One COPY of length bytes from src at src_off to dst at dst_off: the
 * bytes copied in *count (may be short: continue from there), whether the
 * server shared extents in *cloned. */
int apfp_copy(struct apfpc *c, const struct proto_handle *src, uint64_t src_off, const struct proto_handle *dst,
	      uint64_t dst_off, uint64_t length, uint64_t *count, bool *cloned);

/* ---- extended attributes, fallocate, seek (the FUSE mount; tests) --------
 * getxattr and listxattr as getxattr(2)/listxattr(2): cap 0 only asks the
 * size (*len, *total), -ERANGE when cap is too small; list: each name
 * followed by a NUL.  flags: PROTO_XATTR_CREATE/REPLACE.  mode:
 * PROTO_FALLOC_*, *after (may be NULL) the attributes after it.  what:
 * PROTO_SEEK_DATA/HOLE; -ENXIO at or past the end of file. */
int apfp_getxattr(struct apfpc *c, const struct proto_handle *fh, const char *name, void *buf, size_t cap,
		  size_t *len);
int apfp_setxattr(struct apfpc *c, const struct proto_handle *fh, const char *name, const void *value, size_t len,
		  uint32_t flags);
int apfp_listxattr(struct apfpc *c, const struct proto_handle *fh, char *buf, size_t cap, size_t *total);
int apfp_removexattr(struct apfpc *c, const struct proto_handle *fh, const char *name);
int apfp_fallocate(struct apfpc *c, const struct proto_handle *fh, uint8_t mode, uint64_t off, uint64_t len,
		   struct proto_attr *after);
int apfp_seek(struct apfpc *c, const struct proto_handle *fh, uint64_t off, uint8_t what, uint64_t *result);

#endif
