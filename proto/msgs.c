/*
 * The layout of every message (docs/protocol.md §5) as field tables for
 * the codec engine, and the status codes (§6).  Adding an operation is one
 * entry here and its structures in wire.h; the engine needs no change.
 */
#include "proto/codec_int.h"
#include "platform/platform.h"
#include <stddef.h>

#define U8(S, m)         { PF_U8, 0, offsetof(S, m), 0, #m }
#define BOOL(S, m)       { PF_BOOL, 0, offsetof(S, m), 1, #m }
#define ENUM(S, m, a, b) { PF_ENUM, a, offsetof(S, m), b, #m }
#define U16(S, m)        { PF_U16, 0, offsetof(S, m), 0, #m }
#define U32(S, m)        { PF_U32, 0, offsetof(S, m), 0, #m }
#define U32MAX(S, m, l)  { PF_U32_MAX, 0, offsetof(S, m), l, #m }
#define FLAGS(S, m, l)   { PF_FLAGS, 0, offsetof(S, m), l, #m }
#define U64(S, m)        { PF_U64, 0, offsetof(S, m), 0, #m }
#define FIXED(S, m)      { PF_FIXED, 0, offsetof(S, m), sizeof(((S *)0)->m), #m }
#define NAME(S, m)       { PF_NAME, 0, offsetof(S, m), PROTO_NAME_MAX, #m }
#define TEXT(S, m, l)    { PF_TEXT, 0, offsetof(S, m), l, #m }
#define DATA(S, m, l)    { PF_DATA, 0, offsetof(S, m), l, #m }
#define TIME(S, m)       { PF_TIME, 0, offsetof(S, m), 0, #m }
#define SUB(S, m, k)     { PF_STRUCT, 0, offsetof(S, m), k, #m }
#define LIST(S, m, k)    { PF_LIST, 0, offsetof(S, m), k, #m }
#define ATTR(S, m)       SUB(S, m, PS_ATTR)
#define WCC(S, m)        SUB(S, m, PS_WCC)
#define SATTR(S, m)      SUB(S, m, PS_SATTR)
#define HANDLE(S, m)     { PF_HANDLE, 0, offsetof(S, m), PROTO_HANDLE_SIZE, #m }

#define LAYOUT(S, tab)   { tab, sizeof(tab) / sizeof(tab[0]), sizeof(S), NULL }
#define NONE             { NULL, 0, 0, NULL }

/* ---- nested structures ---------------------------------------------------------- */
static const struct pf_field f_attr[] = {
	ENUM(struct proto_attr, type, PROTO_T_REG, PROTO_T_FIFO),
	U32MAX(struct proto_attr, mode, 07777), U32(struct proto_attr, nlink),
	U32(struct proto_attr, uid), U32(struct proto_attr, gid),
	U64(struct proto_attr, size), U64(struct proto_attr, used),
	U32(struct proto_attr, rdev_major), U32(struct proto_attr, rdev_minor),
	U64(struct proto_attr, fsid), U64(struct proto_attr, ino),
	U32(struct proto_attr, gen), U64(struct proto_attr, change),
	TIME(struct proto_attr, atime), TIME(struct proto_attr, mtime),
	TIME(struct proto_attr, ctime), TIME(struct proto_attr, btime),
};
static const struct pf_field f_pre[] = {
	U64(struct proto_pre_attr, size), TIME(struct proto_pre_attr, mtime),
	TIME(struct proto_pre_attr, ctime), U64(struct proto_pre_attr, change),
};
static const struct pf_field f_wcc[] = {
	SUB(struct proto_wcc, before, PS_PRE), ATTR(struct proto_wcc, after),
};
static const struct pf_field f_sattr[] = {
	FLAGS(struct proto_sattr, mask, PROTO_SA_ALL), U32MAX(struct proto_sattr, mode, 07777),
	U32(struct proto_sattr, uid), U32(struct proto_sattr, gid), U64(struct proto_sattr, size),
	TIME(struct proto_sattr, atime), TIME(struct proto_sattr, mtime),
};
static const struct pf_field f_dirent[] = {
	U64(struct proto_dirent, cookie), U64(struct proto_dirent, ino),
	ENUM(struct proto_dirent, type, PROTO_T_REG, PROTO_T_FIFO), NAME(struct proto_dirent, name),
};
static const struct pf_field f_direntplus[] = {
	U64(struct proto_direntplus, cookie), NAME(struct proto_direntplus, name),
	HANDLE(struct proto_direntplus, fh), ATTR(struct proto_direntplus, attr),
};
static const struct pf_field f_export[] = {
	NAME(struct proto_export, name), FLAGS(struct proto_export, flags, PROTO_EXP_RO | PROTO_EXP_ANON),
	HANDLE(struct proto_export, root),
};
static const struct pf_field f_snap[] = {
	U32(struct proto_snap, id), NAME(struct proto_snap, name), TIME(struct proto_snap, ctime),
	HANDLE(struct proto_snap, root),
};
static const struct pf_field f_xname[] = { TEXT(struct proto_xname, name, PROTO_XNAME_MAX) };

/* A time that is set from the client's value and "now" at once is a
 * contradiction, not a preference. */
static int sattr_check(const void *p, const char **why)
{
	const struct proto_sattr *sa = p;

	if ((sa->mask & PROTO_SA_ATIME) && (sa->mask & PROTO_SA_ATIME_NOW)) {
		*why = "atime given and set to now";
		return -PLAT_EINVAL;
	}
	if ((sa->mask & PROTO_SA_MTIME) && (sa->mask & PROTO_SA_MTIME_NOW)) {
		*why = "mtime given and set to now";
		return -PLAT_EINVAL;
	}
	return 0;
}

const struct pf_layout pf_structs[PS_COUNT] = {
	[PS_DIRENT] = LAYOUT(struct proto_dirent, f_dirent),
	[PS_DIRENTPLUS] = LAYOUT(struct proto_direntplus, f_direntplus),
	[PS_EXPORT] = LAYOUT(struct proto_export, f_export),
	[PS_SNAP] = LAYOUT(struct proto_snap, f_snap),
	[PS_XNAME] = LAYOUT(struct proto_xname, f_xname),
	[PS_ATTR] = LAYOUT(struct proto_attr, f_attr),
	[PS_PRE] = LAYOUT(struct proto_pre_attr, f_pre),
	[PS_WCC] = LAYOUT(struct proto_wcc, f_wcc),
	[PS_SATTR] = { f_sattr, sizeof(f_sattr) / sizeof(f_sattr[0]), sizeof(struct proto_sattr),
		       sattr_check },
};

/* ---- messages --------------------------------------------------------------------- */
static const struct pf_field q_hello[] = {
	U8(struct proto_hello_req, min_version), U8(struct proto_hello_req, max_version),
	U32(struct proto_hello_req, max_body), U16(struct proto_hello_req, max_inflight),
	BOOL(struct proto_hello_req, want_anon), FIXED(struct proto_hello_req, nonce),
	TEXT(struct proto_hello_req, client_id, PROTO_CLIENT_ID_MAX),
};
static const struct pf_field r_hello[] = {
	U8(struct proto_hello_rep, version), U32(struct proto_hello_rep, max_body),
	U16(struct proto_hello_rep, max_inflight), BOOL(struct proto_hello_rep, anon_ok),
	U64(struct proto_hello_rep, boot_id), FIXED(struct proto_hello_rep, nonce),
};
static const struct pf_field q_auth[] = { FIXED(struct proto_auth_req, proof) };
static const struct pf_field r_auth[] = {
	FIXED(struct proto_auth_rep, proof),
	ENUM(struct proto_auth_rep, access, PROTO_ACCESS_RO, PROTO_ACCESS_RW),
};
static const struct pf_field r_exports[] = { LIST(struct proto_exports_rep, exports, PROTO_L_EXPORT) };

static const struct pf_field q_fh[] = { HANDLE(struct proto_fh_req, fh) };
static const struct pf_field q_dirop[] = { HANDLE(struct proto_dirop_req, dir), NAME(struct proto_dirop_req, name) };
static const struct pf_field r_wcc[] = { WCC(struct proto_wcc_rep, wcc) };
static const struct pf_field r_newobj[] = {
	HANDLE(struct proto_newobj_rep, fh), ATTR(struct proto_newobj_rep, attr),
	WCC(struct proto_newobj_rep, dir_wcc),
};
static const struct pf_field r_getattr[] = { ATTR(struct proto_getattr_rep, attr) };
static const struct pf_field q_setattr[] = { HANDLE(struct proto_setattr_req, fh), SATTR(struct proto_setattr_req, sattr) };
static const struct pf_field r_lookup[] = {
	HANDLE(struct proto_lookup_rep, fh), ATTR(struct proto_lookup_rep, attr),
	ATTR(struct proto_lookup_rep, dir_attr),
};
static const struct pf_field r_readlink[] = { TEXT(struct proto_readlink_rep, target, PROTO_TARGET_MAX) };
static const struct pf_field q_read[] = {
	HANDLE(struct proto_read_req, fh), U64(struct proto_read_req, offset),
	U32MAX(struct proto_read_req, count, PROTO_MAX_IO),
};
static const struct pf_field r_read[] = {
	BOOL(struct proto_read_rep, eof), ATTR(struct proto_read_rep, attr),
	DATA(struct proto_read_rep, data, PROTO_MAX_IO),
};
static const struct pf_field q_write[] = {
	HANDLE(struct proto_write_req, fh), U64(struct proto_write_req, offset),
	ENUM(struct proto_write_req, stable, PROTO_UNSTABLE, PROTO_FILE_SYNC),
	DATA(struct proto_write_req, data, PROTO_MAX_IO),
};
static const struct pf_field r_write[] = {
	U32MAX(struct proto_write_rep, count, PROTO_MAX_IO),
	ENUM(struct proto_write_rep, committed, PROTO_UNSTABLE, PROTO_FILE_SYNC),
	FIXED(struct proto_write_rep, verf), WCC(struct proto_write_rep, wcc),
};
static const struct pf_field q_commit[] = {
	HANDLE(struct proto_commit_req, fh), U64(struct proto_commit_req, offset),
	U64(struct proto_commit_req, count),
};
static const struct pf_field r_commit[] = { FIXED(struct proto_commit_rep, verf), WCC(struct proto_commit_rep, wcc) };
static const struct pf_field q_create[] = {
	HANDLE(struct proto_create_req, dir), NAME(struct proto_create_req, name),
	ENUM(struct proto_create_req, how, PROTO_CREATE_UNCHECKED, PROTO_CREATE_EXCLUSIVE),
	FIXED(struct proto_create_req, verf), SATTR(struct proto_create_req, sattr),
};
static const struct pf_field q_mkdir[] = {
	HANDLE(struct proto_mkdir_req, dir), NAME(struct proto_mkdir_req, name),
	SATTR(struct proto_mkdir_req, sattr),
};
static const struct pf_field q_symlink[] = {
	HANDLE(struct proto_symlink_req, dir), NAME(struct proto_symlink_req, name),
	TEXT(struct proto_symlink_req, target, PROTO_TARGET_MAX), SATTR(struct proto_symlink_req, sattr),
};
/* Any file type decodes (REG, DIR, LNK are refused by the server: INVAL);
 * the device number is bounded here, so a frame outside Linux's range is
 * INVAL naming the field. */
static const struct pf_field q_mknod[] = {
	HANDLE(struct proto_mknod_req, dir), NAME(struct proto_mknod_req, name),
	ENUM(struct proto_mknod_req, type, PROTO_T_REG, PROTO_T_FIFO), SATTR(struct proto_mknod_req, sattr),
	U32MAX(struct proto_mknod_req, rdev_major, PROTO_RDEV_MAJOR_MAX),
	U32MAX(struct proto_mknod_req, rdev_minor, PROTO_RDEV_MINOR_MAX),
};
static const struct pf_field q_link[] = {
	HANDLE(struct proto_link_req, fh), HANDLE(struct proto_link_req, dir),
	NAME(struct proto_link_req, name),
};
static const struct pf_field r_link[] = { ATTR(struct proto_link_rep, attr), WCC(struct proto_link_rep, dir_wcc) };
static const struct pf_field q_rename[] = {
	HANDLE(struct proto_rename_req, from_dir), NAME(struct proto_rename_req, from_name),
	HANDLE(struct proto_rename_req, to_dir), NAME(struct proto_rename_req, to_name),
	FLAGS(struct proto_rename_req, flags, PROTO_RENAME_NOREPLACE | PROTO_RENAME_EXCHANGE),
};
static const struct pf_field r_rename[] = { WCC(struct proto_rename_rep, from_wcc), WCC(struct proto_rename_rep, to_wcc) };
static const struct pf_field q_readdir[] = {
	HANDLE(struct proto_readdir_req, dir), U64(struct proto_readdir_req, cookie),
	FIXED(struct proto_readdir_req, verf), U32(struct proto_readdir_req, maxcount),
};
static const struct pf_field r_readdir[] = {
	FIXED(struct proto_readdir_rep, verf), BOOL(struct proto_readdir_rep, eof),
	LIST(struct proto_readdir_rep, entries, PROTO_L_DIRENT), ATTR(struct proto_readdir_rep, dir_attr),
};
static const struct pf_field r_readdirplus[] = {
	FIXED(struct proto_readdir_rep, verf), BOOL(struct proto_readdir_rep, eof),
	LIST(struct proto_readdir_rep, entries, PROTO_L_DIRENTPLUS), ATTR(struct proto_readdir_rep, dir_attr),
};
static const struct pf_field r_fsstat[] = {
	U64(struct proto_fsstat_rep, total_bytes), U64(struct proto_fsstat_rep, free_bytes),
	U64(struct proto_fsstat_rep, avail_bytes), U64(struct proto_fsstat_rep, total_files),
	U64(struct proto_fsstat_rep, free_files), U32(struct proto_fsstat_rep, max_name),
	U32(struct proto_fsstat_rep, max_io),
};
static const struct pf_field q_fsync[] = { HANDLE(struct proto_fsync_req, fh), BOOL(struct proto_fsync_req, datasync) };
static const struct pf_field r_fsync[] = { FIXED(struct proto_fsync_rep, verf), ATTR(struct proto_fsync_rep, attr) };
static const struct pf_field q_fallocate[] = {
	HANDLE(struct proto_fallocate_req, fh),
	ENUM(struct proto_fallocate_req, mode, PROTO_FALLOC_ALLOC, PROTO_FALLOC_INSERT),
	U64(struct proto_fallocate_req, offset), U64(struct proto_fallocate_req, length),
};
static const struct pf_field q_seek[] = {
	HANDLE(struct proto_seek_req, fh), U64(struct proto_seek_req, offset),
	ENUM(struct proto_seek_req, what, PROTO_SEEK_DATA, PROTO_SEEK_HOLE),
};
static const struct pf_field r_seek[] = { U64(struct proto_seek_rep, offset) };
static const struct pf_field q_copy[] = {
	HANDLE(struct proto_copy_req, src), U64(struct proto_copy_req, src_offset),
	HANDLE(struct proto_copy_req, dst), U64(struct proto_copy_req, dst_offset),
	U64(struct proto_copy_req, length), FLAGS(struct proto_copy_req, flags, PROTO_COPY_CLONE_ONLY),
};
static const struct pf_field r_copy[] = {
	U64(struct proto_copy_rep, count), BOOL(struct proto_copy_rep, cloned),
	WCC(struct proto_copy_rep, dst_wcc),
};
static const struct pf_field q_xattr[] = {
	HANDLE(struct proto_xattr_req, fh), TEXT(struct proto_xattr_req, name, PROTO_XNAME_MAX),
};
static const struct pf_field r_getxattr[] = { DATA(struct proto_getxattr_rep, value, PROTO_XVALUE_MAX) };
static const struct pf_field q_setxattr[] = {
	HANDLE(struct proto_setxattr_req, fh), TEXT(struct proto_setxattr_req, name, PROTO_XNAME_MAX),
	DATA(struct proto_setxattr_req, value, PROTO_XVALUE_MAX),
	FLAGS(struct proto_setxattr_req, flags, PROTO_XATTR_CREATE | PROTO_XATTR_REPLACE),
};
static const struct pf_field r_listxattr[] = { LIST(struct proto_listxattr_rep, names, PROTO_L_XNAME) };
static const struct pf_field q_snap[] = { HANDLE(struct proto_snap_req, fh), NAME(struct proto_snap_req, name) };
static const struct pf_field r_snap_create[] = {
	U32(struct proto_snap_create_rep, id), HANDLE(struct proto_snap_create_rep, root),
};
static const struct pf_field r_snap_list[] = { LIST(struct proto_snap_list_rep, snaps, PROTO_L_SNAP) };

static const struct pf_field q_admin[] = {
	U64(struct proto_admin_req, run), U64(struct proto_admin_req, offset), U32(struct proto_admin_req, max),
	TEXT(struct proto_admin_req, command, PROTO_ADMIN_CMD_MAX),
};
static const struct pf_field r_admin[] = {
	U64(struct proto_admin_rep, run), U32(struct proto_admin_rep, result), BOOL(struct proto_admin_rep, done),
	DATA(struct proto_admin_rep, output, PROTO_MAX_IO),
};

#define OP(code, nm, q, r, mut) [code] = { nm, q, r, mut }
const struct pf_msg pf_msgs[PROTO_OP_LIMIT] = {
	OP(PROTO_OP_HELLO, "HELLO", LAYOUT(struct proto_hello_req, q_hello), LAYOUT(struct proto_hello_rep, r_hello), false),
	OP(PROTO_OP_AUTH, "AUTH", LAYOUT(struct proto_auth_req, q_auth), LAYOUT(struct proto_auth_rep, r_auth), false),
	OP(PROTO_OP_PING, "PING", NONE, NONE, false),
	OP(PROTO_OP_EXPORTS, "EXPORTS", NONE, LAYOUT(struct proto_exports_rep, r_exports), false),
	OP(PROTO_OP_GETATTR, "GETATTR", LAYOUT(struct proto_fh_req, q_fh), LAYOUT(struct proto_getattr_rep, r_getattr), false),
	OP(PROTO_OP_SETATTR, "SETATTR", LAYOUT(struct proto_setattr_req, q_setattr), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_LOOKUP, "LOOKUP", LAYOUT(struct proto_dirop_req, q_dirop), LAYOUT(struct proto_lookup_rep, r_lookup), false),
	OP(PROTO_OP_READLINK, "READLINK", LAYOUT(struct proto_fh_req, q_fh), LAYOUT(struct proto_readlink_rep, r_readlink), false),
	OP(PROTO_OP_READ, "READ", LAYOUT(struct proto_read_req, q_read), LAYOUT(struct proto_read_rep, r_read), false),
	OP(PROTO_OP_WRITE, "WRITE", LAYOUT(struct proto_write_req, q_write), LAYOUT(struct proto_write_rep, r_write), true),
	OP(PROTO_OP_COMMIT, "COMMIT", LAYOUT(struct proto_commit_req, q_commit), LAYOUT(struct proto_commit_rep, r_commit), true),
	OP(PROTO_OP_CREATE, "CREATE", LAYOUT(struct proto_create_req, q_create), LAYOUT(struct proto_newobj_rep, r_newobj), true),
	OP(PROTO_OP_MKDIR, "MKDIR", LAYOUT(struct proto_mkdir_req, q_mkdir), LAYOUT(struct proto_newobj_rep, r_newobj), true),
	OP(PROTO_OP_SYMLINK, "SYMLINK", LAYOUT(struct proto_symlink_req, q_symlink), LAYOUT(struct proto_newobj_rep, r_newobj), true),
	OP(PROTO_OP_LINK, "LINK", LAYOUT(struct proto_link_req, q_link), LAYOUT(struct proto_link_rep, r_link), true),
	OP(PROTO_OP_REMOVE, "REMOVE", LAYOUT(struct proto_dirop_req, q_dirop), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_RMDIR, "RMDIR", LAYOUT(struct proto_dirop_req, q_dirop), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_RENAME, "RENAME", LAYOUT(struct proto_rename_req, q_rename), LAYOUT(struct proto_rename_rep, r_rename), true),
	OP(PROTO_OP_READDIR, "READDIR", LAYOUT(struct proto_readdir_req, q_readdir), LAYOUT(struct proto_readdir_rep, r_readdir), false),
	OP(PROTO_OP_READDIRPLUS, "READDIRPLUS", LAYOUT(struct proto_readdir_req, q_readdir), LAYOUT(struct proto_readdir_rep, r_readdirplus), false),
	OP(PROTO_OP_FSSTAT, "FSSTAT", LAYOUT(struct proto_fh_req, q_fh), LAYOUT(struct proto_fsstat_rep, r_fsstat), false),
	OP(PROTO_OP_FSYNC, "FSYNC", LAYOUT(struct proto_fsync_req, q_fsync), LAYOUT(struct proto_fsync_rep, r_fsync), true),
	OP(PROTO_OP_FALLOCATE, "FALLOCATE", LAYOUT(struct proto_fallocate_req, q_fallocate), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_SEEK, "SEEK", LAYOUT(struct proto_seek_req, q_seek), LAYOUT(struct proto_seek_rep, r_seek), false),
	OP(PROTO_OP_COPY, "COPY", LAYOUT(struct proto_copy_req, q_copy), LAYOUT(struct proto_copy_rep, r_copy), true),
	OP(PROTO_OP_GETXATTR, "GETXATTR", LAYOUT(struct proto_xattr_req, q_xattr), LAYOUT(struct proto_getxattr_rep, r_getxattr), false),
	OP(PROTO_OP_SETXATTR, "SETXATTR", LAYOUT(struct proto_setxattr_req, q_setxattr), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_LISTXATTR, "LISTXATTR", LAYOUT(struct proto_fh_req, q_fh), LAYOUT(struct proto_listxattr_rep, r_listxattr), false),
	OP(PROTO_OP_REMOVEXATTR, "REMOVEXATTR", LAYOUT(struct proto_xattr_req, q_xattr), LAYOUT(struct proto_wcc_rep, r_wcc), true),
	OP(PROTO_OP_MKNOD, "MKNOD", LAYOUT(struct proto_mknod_req, q_mknod), LAYOUT(struct proto_newobj_rep, r_newobj), true),
	OP(PROTO_OP_SNAP_CREATE, "SNAP_CREATE", LAYOUT(struct proto_snap_req, q_snap), LAYOUT(struct proto_snap_create_rep, r_snap_create), true),
	OP(PROTO_OP_SNAP_LIST, "SNAP_LIST", LAYOUT(struct proto_fh_req, q_fh), LAYOUT(struct proto_snap_list_rep, r_snap_list), false),
	OP(PROTO_OP_SNAP_DELETE, "SNAP_DELETE", LAYOUT(struct proto_snap_req, q_snap), NONE, true),
	/* Changes the appliance (snapshot, reboot), and only with the secret. */
	[PROTO_OP_ADMIN] = { "ADMIN", LAYOUT(struct proto_admin_req, q_admin), LAYOUT(struct proto_admin_rep, r_admin),
			     true, true },
};

/* ---- status codes ------------------------------------------------------------------------ */
static const struct {
	uint32_t status;
	int err;                /* positive errno */
	const char *name, *words;
} status_tab[] = {
	{ PROTO_OK, 0, "OK", "success" },
	{ PROTO_E_PERM, PLAT_EPERM, "PERM", "not owner" },
	{ PROTO_E_NOENT, PLAT_ENOENT, "NOENT", "no such file or directory" },
	{ PROTO_E_IO, PLAT_EIO, "IO", "I/O error on the server" },
	{ PROTO_E_NXIO, PLAT_ENXIO, "NXIO", "offset past the end of the file" },
	{ PROTO_E_ACCES, PLAT_EACCES, "ACCES", "permission denied" },
	{ PROTO_E_EXIST, PLAT_EEXIST, "EXIST", "file exists" },
	{ PROTO_E_XDEV, PLAT_EXDEV, "XDEV", "across filesystems" },
	{ PROTO_E_NOTDIR, PLAT_ENOTDIR, "NOTDIR", "not a directory" },
	{ PROTO_E_ISDIR, PLAT_EISDIR, "ISDIR", "is a directory" },
	{ PROTO_E_INVAL, PLAT_EINVAL, "INVAL", "invalid argument" },
	{ PROTO_E_FBIG, PLAT_EFBIG, "FBIG", "file too large" },
	{ PROTO_E_NOSPC, PLAT_ENOSPC, "NOSPC", "no space left on the server" },
	{ PROTO_E_ROFS, PLAT_EROFS, "ROFS", "read-only export, snapshot or session" },
	{ PROTO_E_MLINK, PLAT_EMLINK, "MLINK", "too many links" },
	{ PROTO_E_NAMETOOLONG, PLAT_ENAMETOOLONG, "NAMETOOLONG", "name too long" },
	{ PROTO_E_NOTEMPTY, PLAT_ENOTEMPTY, "NOTEMPTY", "directory not empty" },
	{ PROTO_E_NODATA, PLAT_ENODATA, "NODATA", "no such extended attribute" },
	{ PROTO_E_NOTSUP, PLAT_ENOTSUP, "NOTSUP", "operation not supported here" },
	{ PROTO_E_STALE, PLAT_ESTALE, "STALE", "the file of this handle is gone" },
	{ PROTO_E_DQUOT, PLAT_EDQUOT, "DQUOT", "quota exceeded" },
	{ PROTO_E_BADHANDLE, PLAT_ESTALE, "BADHANDLE", "handle not made by this server (forged or corrupted)" },
	{ PROTO_E_BAD_COOKIE, PLAT_EINVAL, "BAD_COOKIE", "directory cookie no longer valid: restart at 0" },
	{ PROTO_E_TOOSMALL, PLAT_EINVAL, "TOOSMALL", "reply size too small for one entry" },
	{ PROTO_E_SERVERFAULT, PLAT_EIO, "SERVERFAULT", "server failure without a better code" },
	{ PROTO_E_BADMSG, PLAT_EBADMSG, "BADMSG", "malformed frame or body" },
	{ PROTO_E_BADOP, PLAT_ENOSYS, "BADOP", "unknown opcode" },
	{ PROTO_E_TOOBIG, PLAT_EMSGSIZE, "TOOBIG", "frame longer than the negotiated limit" },
	{ PROTO_E_BUSY, PLAT_EBUSY, "BUSY", "too many outstanding requests: retry" },
	{ PROTO_E_VERSION, PLAT_EPROTO, "VERSION", "no common protocol version" },
	{ PROTO_E_AUTH, PLAT_EACCES, "AUTH", "authentication failed (wrong secret?)" },
	{ PROTO_E_AUTH_RATE, PLAT_EAGAIN, "AUTH_RATE", "too many failed authentications: retry later" },
	{ PROTO_E_NOTAUTH, PLAT_EACCES, "NOTAUTH", "not authenticated yet" },
	{ PROTO_E_CONNLIMIT, PLAT_EAGAIN, "CONNLIMIT", "too many connections to the server" },
};
#define NSTATUS (sizeof(status_tab) / sizeof(status_tab[0]))

static int status_index(uint32_t status)
{
	for (unsigned i = 0; i < NSTATUS; i++)
		if (status_tab[i].status == status)
			return (int)i;
	return -1;
}

const char *proto_status_name(uint32_t status)
{
	int i = status_index(status);
	return i < 0 ? "UNKNOWN" : status_tab[i].name;
}

const char *proto_status_str(uint32_t status)
{
	int i = status_index(status);
	return i < 0 ? "unknown status code" : status_tab[i].words;
}

int proto_status_errno(uint32_t status)
{
	int i = status_index(status);
	return i < 0 ? -PLAT_EIO : -status_tab[i].err;
}

/* errno -> status: POSIX errors map to their own code (ESTALE -> STALE,
 * never BADHANDLE, which only the handle check answers); the decoder's
 * errors to the protocol codes; the rest, EAGAIN and EBUSY included (they
 * would mean "retry later" on the wire), to SERVERFAULT. */
uint32_t proto_status_from_errno(int err)
{
	if (err >= 0)
		return PROTO_OK;
	switch (-err) {
	case PLAT_EBADMSG:  return PROTO_E_BADMSG;
	case PLAT_EMSGSIZE: return PROTO_E_TOOBIG;
	case PLAT_EPROTO:   return PROTO_E_VERSION;
	case PLAT_ENOSYS:   return PROTO_E_NOTSUP;
	}
	/* An operation may answer a protocol status no errno names
	 * (BAD_COOKIE, TOOSMALL) by returning its negation. */
	if (-err >= 10000) {
		for (unsigned i = 1; i < NSTATUS; i++)
			if (status_tab[i].status == (uint32_t)-err)
				return status_tab[i].status;
		return PROTO_E_SERVERFAULT;
	}
	for (unsigned i = 1; i < NSTATUS && status_tab[i].status < 10000; i++)
		if (status_tab[i].err == -err)
			return status_tab[i].status;
	return PROTO_E_SERVERFAULT;
}
