/*
 * What the two FUSE mounts (tools/cowfs_fuse.c over the filesystem,
 * tools/apfp_fuse*.c over the file protocol) share in turning FUSE's
 * requests into their calls: the size-query protocol of getxattr and
 * listxattr, and the checks of the fallocate, setxattr and lseek
 * arguments.  Needs fuse_lowlevel.h (FUSE_USE_VERSION set by the includer).
 */
#ifndef TOOLS_FUSE_COMMON_H
#define TOOLS_FUSE_COMMON_H

#include <stddef.h>
#include <sys/types.h>

/* Runs get (a getxattr or listxattr into buf of size bytes: 0 or -errno,
 * *len the bytes it needs or wrote) and replies with the size (size 0
 * asks only that), the bytes, or the error. */
typedef int (*fusec_get_fn)(fuse_req_t req, void *buf, size_t size, size_t *len, const void *arg);
void fusec_reply_sized(fuse_req_t req, size_t size, fusec_get_fn get, const void *arg);

/* fallocate(2) modes both filesystems answer. */
enum fusec_falloc { FUSEC_ALLOC, FUSEC_ALLOC_KEEP_SIZE, FUSEC_PUNCH, FUSEC_ZERO, FUSEC_ZERO_KEEP_SIZE };
/* The mode of a fallocate request, or -EINVAL (a negative offset, an
 * empty range) / -EOPNOTSUPP (PUNCH_HOLE without KEEP_SIZE, collapse,
 * insert, unshare and any other flag). */
int fusec_falloc_mode(int mode, off_t off, off_t len);

/* setxattr's flags as the filesystem's and the protocol's (XATTR_CREATE 1,
 * XATTR_REPLACE 2, as Linux's), or -EINVAL for any other bit. */
int fusec_xattr_flags(int flags);

/* lseek: the kernel asks only SEEK_DATA and SEEK_HOLE; 1 for DATA, 0 for
 * HOLE, -EINVAL for anything else or a negative offset. */
int fusec_seek_data(off_t off, int whence);

#endif
