/*
 * apfp-fuse: extended attributes, fallocate and lseek SEEK_DATA/SEEK_HOLE
 * over the protocol's GETXATTR/SETXATTR/LISTXATTR/REMOVEXATTR, FALLOCATE
 * and SEEK (docs/protocol.md §5.3); the argument checks and the size-query
 * protocol are the local mount's (tools/fuse_common.c).
 *
 * Uncommitted writes are written again after a server restart (verifier
 * change): a punch or zero range over them would come undone, so the
 * node's unstable writes are committed before a FALLOCATE, as before a
 * truncate.  The kernel drops its cached pages of a punched or zeroed
 * range and its cached size after fallocate; the daemon also invalidates
 * the inode's range and attributes once it has answered, so a kernel that
 * does not (or a size the server changed differently) is not left stale.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include "tools/apfp_fuse.h"
#include "tools/fuse_common.h"

_Static_assert(PROTO_XATTR_CREATE == 1 && PROTO_XATTR_REPLACE == 2, "fusec_xattr_flags gives Linux's values");

struct xa_args {
	fuse_ino_t ino;
	const char *name;               /* NULL: the list of names */
};

/* getxattr / listxattr into buf of size bytes (0: the size only). */
static int xa_get(fuse_req_t req, void *buf, size_t size, size_t *len, const void *arg)
{
	const struct xa_args *x = arg;
	struct afuse *a = fuse_req_userdata(req);
	struct proto_handle fh;
	int err = afuse_node_fh(a, x->ino, &fh);
	if (err)
		return err;
	struct afuse_conn *k = afuse_get(a, &err);
	if (!k)
		return -err;
	int rc = x->name ? apfp_getxattr(&k->c, &fh, x->name, buf, size, len)
			 : apfp_listxattr(&k->c, &fh, buf, size, len);
	return -afuse_end(req, k, x->name ? "getxattr" : "listxattr", rc);
}

void afuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct xa_args x = { ino, name };
	fusec_reply_sized(req, size, xa_get, &x);
}

void afuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct xa_args x = { ino, NULL };
	fusec_reply_sized(req, size, xa_get, &x);
}

void afuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		       int flags)
{
	struct proto_handle fh;
	int f = fusec_xattr_flags(flags);
	if (f < 0) {
		fuse_reply_err(req, -f);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (k)
		fuse_reply_err(req, afuse_end(req, k, "setxattr", apfp_setxattr(&k->c, &fh, name, value, size,
										 (uint32_t)f)));
}

void afuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct proto_handle fh;
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (k)
		fuse_reply_err(req, afuse_end(req, k, "removexattr", apfp_removexattr(&k->c, &fh, name)));
}

/* The protocol's zero range may grow the size; with KEEP_SIZE the request
 * is a punch, which reads the same (zeros) and never changes the size. */
void afuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	static const uint8_t pmode[] = {
		[FUSEC_ALLOC] = PROTO_FALLOC_ALLOC, [FUSEC_ALLOC_KEEP_SIZE] = PROTO_FALLOC_ALLOC_KEEP_SIZE,
		[FUSEC_PUNCH] = PROTO_FALLOC_PUNCH, [FUSEC_ZERO] = PROTO_FALLOC_ZERO,
		[FUSEC_ZERO_KEEP_SIZE] = PROTO_FALLOC_PUNCH,
	};
	struct afuse *a = fuse_req_userdata(req);
	struct proto_handle fh;
	(void)fi;
	int m = fusec_falloc_mode(mode, off, len);
	if (m < 0) {
		fuse_reply_err(req, -m);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k)
		return;
	struct afuse_node *nd = afuse_node_find(a, ino);
	int rc = nd && afuse_pending(nd) ? afuse_commit(a, k, nd) : 0;
	if (!rc)
		rc = apfp_fallocate(&k->c, &fh, pmode[m], (uint64_t)off, (uint64_t)len, NULL);
	int err = afuse_end(req, k, "fallocate", rc);
	fuse_reply_err(req, err);
	if (!err && a->se)
		fuse_lowlevel_notify_inval_inode(a->se, ino, off, len);
}

void afuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct proto_handle fh;
	uint64_t r = 0;
	(void)fi;
	int data = fusec_seek_data(off, whence);
	if (data < 0) {
		fuse_reply_err(req, -data);
		return;
	}
	struct afuse_conn *k = afuse_begin(req, ino, &fh);
	if (!k)
		return;
	int err = afuse_end(req, k, "lseek", apfp_seek(&k->c, &fh, (uint64_t)off,
						       data ? PROTO_SEEK_DATA : PROTO_SEEK_HOLE, &r));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_lseek(req, (off_t)r);
}
