/*
 * Shared by the FUSE mounts (tools/fuse_common.h).
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "tools/fuse_common.h"

_Static_assert(XATTR_CREATE == 1 && XATTR_REPLACE == 2, "the filesystem's and the protocol's xattr flags");

void fusec_reply_sized(fuse_req_t req, size_t size, fusec_get_fn get, const void *arg)
{
	size_t len = 0;
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = get(req, buf, size, &len, arg);
	if (err)
		fuse_reply_err(req, -err);
	else if (!size)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

int fusec_falloc_mode(int mode, off_t off, off_t len)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
		return keep ? FUSEC_ALLOC_KEEP_SIZE : FUSEC_ALLOC;
	case FALLOC_FL_PUNCH_HOLE:
		return keep ? FUSEC_PUNCH : -EOPNOTSUPP;        /* as Linux: a punch never changes the size */
	case FALLOC_FL_ZERO_RANGE:
		return keep ? FUSEC_ZERO_KEEP_SIZE : FUSEC_ZERO;
	default:
		return -EOPNOTSUPP;                     /* collapse, insert, unshare */
	}
}

int fusec_xattr_flags(int flags)
{
	return flags & ~(XATTR_CREATE | XATTR_REPLACE) ? -EINVAL : flags;
}

int fusec_seek_data(off_t off, int whence)
{
	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE))
		return -EINVAL;
	return whence == SEEK_DATA;
}
