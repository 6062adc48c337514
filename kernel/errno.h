/* Kernel error numbers: functions return 0 or a negative value of these. */
#ifndef KERNEL_ERRNO_H
#define KERNEL_ERRNO_H

#define EPERM           1
#define ENOENT          2
#define EINTR           4
#define EIO             5
#define ENXIO           6
#define E2BIG           7
#define EBADF           9
#define EAGAIN         11
#define ENOMEM         12
#define EACCES         13
#define EFAULT         14
#define EBUSY          16
#define EEXIST         17
#define EXDEV          18
#define ENODEV         19
#define ENOTDIR        20
#define EISDIR         21
#define EINVAL         22
#define EFBIG          27
#define ENOSPC         28
#define EROFS          30
#define EMLINK         31
#define ERANGE         34
#define ENAMETOOLONG   36
#define ENOSYS         38
#define ENOTEMPTY      39
#define ELOOP          40
#define ENODATA        61
#define EPROTO         71
#define EBADMSG        74
#define EOVERFLOW      75
#define EMSGSIZE       90
#define ENOTSUP        95
#define ETIMEDOUT     110
#define ESTALE        116
#define EUCLEAN       117
#define EDQUOT        122

const char *strerror(int err); /* accepts err or -err */

#endif
