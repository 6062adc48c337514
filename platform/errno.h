/*
 * Error numbers for portable code (page cache, iomap core, filesystem,
 * protocol).
 *
 * Portable code may not include the host's <errno.h> nor kernel/errno.h, so
 * the values it returns are defined here.  They are numerically identical to
 * Linux and kernel/errno.h, so a negative PLAT_Exxx can be handed to either
 * side unchanged (plat_strerror() names them).  Functions return 0 (or a byte count) on success and a negative
 * value of these on failure; the first error seen is the one kept.
 */
#ifndef PLAT_ERRNO_H
#define PLAT_ERRNO_H

#define PLAT_EPERM           1
#define PLAT_ENOENT          2
#define PLAT_EINTR           4
#define PLAT_EIO             5
#define PLAT_E2BIG           7
#define PLAT_ENXIO           6
#define PLAT_EBADF           9
#define PLAT_EAGAIN         11
#define PLAT_ENOMEM         12
#define PLAT_EACCES         13
#define PLAT_EFAULT         14
#define PLAT_EBUSY          16
#define PLAT_EEXIST         17
#define PLAT_EXDEV          18
#define PLAT_ENODEV         19
#define PLAT_ENOTDIR        20
#define PLAT_EISDIR         21
#define PLAT_EINVAL         22
#define PLAT_EFBIG          27
#define PLAT_ENOSPC         28
#define PLAT_EROFS          30
#define PLAT_EMLINK         31
#define PLAT_ERANGE         34
#define PLAT_ENAMETOOLONG   36
#define PLAT_ENOSYS         38
#define PLAT_ENOTEMPTY      39
#define PLAT_ELOOP          40
#define PLAT_ENODATA        61
#define PLAT_EPROTO         71
#define PLAT_EBADMSG        74
#define PLAT_EOVERFLOW      75
#define PLAT_EMSGSIZE       90
#define PLAT_ENOTSUP        95
#define PLAT_ETIMEDOUT     110
#define PLAT_ESTALE        116
#define PLAT_EUCLEAN       117
#define PLAT_EDQUOT        122

#endif
