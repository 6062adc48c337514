/*
 * Error numbers for the portable iomap layer.
 *
 * Portable code may not include the host's <errno.h> nor kernel/errno.h, so
 * the values it returns are defined here.  They are numerically identical to
 * Linux/kernel/errno.h, so a negative IOMAP_Exxx can be handed to either side
 * unchanged.  Functions return 0 (or a byte count) on success and a negative
 * value of these on failure; the first error seen is the one kept.
 */
#ifndef IOMAP_ERRNO_H
#define IOMAP_ERRNO_H

#define IOMAP_EPERM       1
#define IOMAP_ENOENT      2
#define IOMAP_EINTR       4
#define IOMAP_EIO         5
#define IOMAP_ENXIO       6
#define IOMAP_EAGAIN     11
#define IOMAP_ENOMEM     12
#define IOMAP_EFAULT     14
#define IOMAP_EBUSY      16
#define IOMAP_EEXIST     17
#define IOMAP_EINVAL     22
#define IOMAP_EFBIG      27
#define IOMAP_ENOSPC     28
#define IOMAP_EROFS      30
#define IOMAP_ERANGE     34
#define IOMAP_ENOSYS     38
#define IOMAP_ENODATA    61
#define IOMAP_ENOTSUP    95
#define IOMAP_ETIMEDOUT 110
#define IOMAP_ESTALE    116
/* Internal status codes (never leave the core + filesystem pair). */
#define IOMAP_ENOTBLK    15   /* direct I/O: fall back to buffered */
#define IOMAP_EIOCBQUEUED 529 /* async direct I/O queued; completion follows */

#endif
