/* Human-readable names for kernel error numbers. */
#include "kernel/errno.h"

const char *strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:         return "success";
	case EPERM:     return "operation not permitted";
	case ENOENT:    return "no such file or entry";
	case EINTR:     return "interrupted";
	case EIO:       return "I/O error";
	case ENXIO:     return "no such device or address";
	case E2BIG:     return "argument list too long";
	case EAGAIN:    return "try again";
	case ENOMEM:    return "out of memory";
	case EFAULT:    return "bad address";
	case EBUSY:     return "device or resource busy";
	case EEXIST:    return "already exists";
	case ENODEV:    return "no such device";
	case EINVAL:    return "invalid argument";
	case ENOSPC:    return "no space left";
	case ERANGE:    return "out of range";
	case ENOSYS:    return "not implemented";
	case ENOTSUP:   return "not supported";
	case ETIMEDOUT: return "timed out";
	case EBADF:      return "bad file handle";
	case EACCES:     return "permission denied";
	case EXDEV:      return "cross-device link";
	case ENOTDIR:    return "not a directory";
	case EISDIR:     return "is a directory";
	case EFBIG:      return "file too large";
	case EROFS:      return "read-only filesystem";
	case EMLINK:     return "too many links";
	case ENAMETOOLONG: return "name too long";
	case ENOTEMPTY:  return "directory not empty";
	case ELOOP:      return "too many symbolic links";
	case ENODATA:    return "no data";
	case EOVERFLOW:  return "value too large";
	case EPROTO:     return "protocol error";
	case EBADMSG:    return "malformed message";
	case EMSGSIZE:   return "message too long";
	case ESTALE:     return "stale handle";
	case EUCLEAN:    return "structure needs cleaning (corrupt)";
	case EDQUOT:     return "quota exceeded";
	default:        return "unknown error";
	}
}
