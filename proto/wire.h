/*
 * The appliance file protocol (APFP) on the wire: constants, the frame
 * header, and one C structure per message.  docs/protocol.md is the
 * specification; names here are the names used there.
 *
 * Decoded messages never own memory: strings, data and lists point into
 * the frame they were decoded from, which must outlive them.  Strings are
 * counted, not NUL-terminated.
 */
#ifndef PROTO_WIRE_H
#define PROTO_WIRE_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

/* ---- framing ---------------------------------------------------------- */
#define PROTO_MAGIC        0x50465041u    /* "APFP" in wire order */
/* Version 3: attributes carry the device number (rdev) and the special
 * file types, and MKNOD exists (version 2 had neither; version 1 also
 * tagged frames with HMAC-SHA256; neither is spoken any more: their attr
 * layout differs, so they are refused at HELLO rather than misread).
 * Frame tags are Poly1305 under per-frame ChaCha20 keys.  HELLO frames always carry
 * PROTO_HELLO_VERSION in their header so every server can parse them; the
 * version negotiated there is carried by every later frame. */
#define PROTO_HELLO_VERSION 1
#define PROTO_VERSION_MIN  3
#define PROTO_VERSION_MAX  3
#define PROTO_HDR_SIZE     32
#define PROTO_TAG_SIZE     16

#define PROTO_F_REPLY      0x1u
#define PROTO_F_TAGGED     0x2u
#define PROTO_F_ALL        (PROTO_F_REPLY | PROTO_F_TAGGED)

/* ---- limits (docs/protocol.md §7) -------------------------------------- */
#define PROTO_MAX_IO           (1u << 20)
#define PROTO_MIN_BODY         (64u << 10)
#define PROTO_MAX_BODY         (PROTO_MAX_IO + 4096u)
#define PROTO_MAX_INFLIGHT     64u
#define PROTO_DEFAULT_MAX_CONN 64u
#define PROTO_NAME_MAX         255u
#define PROTO_TARGET_MAX       4095u
#define PROTO_XNAME_MAX        255u
#define PROTO_XVALUE_MAX       (64u << 10)
#define PROTO_CLIENT_ID_MAX    64u
#define PROTO_HANDSHAKE_TIMEOUT_S 10u
#define PROTO_IDLE_TIMEOUT_S   300u
#define PROTO_ADMIN_CMD_MAX    255u            /* an ADMIN command line */
#define PROTO_ADMIN_OUTPUT_MAX (256u << 10)    /* output kept of one ADMIN run */
#define PROTO_RDEV_MAJOR_MAX   4095u           /* MKNOD's device number: Linux's 12-bit major */
#define PROTO_RDEV_MINOR_MAX   0xfffffu        /* and 20-bit minor */

#define PROTO_NONCE_SIZE   32
#define PROTO_PROOF_SIZE   32
#define PROTO_VERF_SIZE    8
#define PROTO_HANDLE_SIZE  40

/* ---- opcodes ------------------------------------------------------------ */
enum proto_op {
	PROTO_OP_HELLO = 0x01, PROTO_OP_AUTH = 0x02, PROTO_OP_PING = 0x03, PROTO_OP_EXPORTS = 0x04,
	PROTO_OP_GETATTR = 0x10, PROTO_OP_SETATTR = 0x11, PROTO_OP_LOOKUP = 0x12,
	PROTO_OP_READLINK = 0x13, PROTO_OP_READ = 0x14, PROTO_OP_WRITE = 0x15,
	PROTO_OP_COMMIT = 0x16, PROTO_OP_CREATE = 0x17, PROTO_OP_MKDIR = 0x18,
	PROTO_OP_SYMLINK = 0x19, PROTO_OP_LINK = 0x1a, PROTO_OP_REMOVE = 0x1b,
	PROTO_OP_RMDIR = 0x1c, PROTO_OP_RENAME = 0x1d, PROTO_OP_READDIR = 0x1e,
	PROTO_OP_READDIRPLUS = 0x1f, PROTO_OP_FSSTAT = 0x20, PROTO_OP_FSYNC = 0x21,
	PROTO_OP_FALLOCATE = 0x22, PROTO_OP_SEEK = 0x23, PROTO_OP_COPY = 0x24,
	PROTO_OP_GETXATTR = 0x25, PROTO_OP_SETXATTR = 0x26, PROTO_OP_LISTXATTR = 0x27,
	PROTO_OP_REMOVEXATTR = 0x28, PROTO_OP_MKNOD = 0x29, PROTO_OP_SNAP_CREATE = 0x30, PROTO_OP_SNAP_LIST = 0x31,
	PROTO_OP_SNAP_DELETE = 0x32,
	PROTO_OP_ADMIN = 0x40,                  /* remote administration (§5.4) */
	PROTO_OP_LIMIT = 0x41                   /* table size; not an opcode */
};

/* ---- wire status codes (docs/protocol.md §6) ---------------------------- */
enum proto_status {
	PROTO_OK = 0,
	PROTO_E_PERM = 1, PROTO_E_NOENT = 2, PROTO_E_IO = 5, PROTO_E_NXIO = 6,
	PROTO_E_ACCES = 13, PROTO_E_EXIST = 17, PROTO_E_XDEV = 18, PROTO_E_NOTDIR = 20,
	PROTO_E_ISDIR = 21, PROTO_E_INVAL = 22, PROTO_E_FBIG = 27, PROTO_E_NOSPC = 28,
	PROTO_E_ROFS = 30, PROTO_E_MLINK = 31, PROTO_E_NAMETOOLONG = 36,
	PROTO_E_NOTEMPTY = 39, PROTO_E_NODATA = 61, PROTO_E_NOTSUP = 95,
	PROTO_E_STALE = 116, PROTO_E_DQUOT = 122,
	PROTO_E_BADHANDLE = 10001, PROTO_E_BAD_COOKIE = 10003, PROTO_E_TOOSMALL = 10005,
	PROTO_E_SERVERFAULT = 10006, PROTO_E_BADMSG = 10010, PROTO_E_BADOP = 10011,
	PROTO_E_TOOBIG = 10012, PROTO_E_BUSY = 10013, PROTO_E_VERSION = 10014,
	PROTO_E_AUTH = 10015, PROTO_E_AUTH_RATE = 10016, PROTO_E_NOTAUTH = 10017,
	PROTO_E_CONNLIMIT = 10018,
};

/* ---- enumerations and flags of message fields -------------------------- */
/* File types; the last four are the special files MKNOD makes. */
enum { PROTO_T_REG = 1, PROTO_T_DIR = 2, PROTO_T_LNK = 3, PROTO_T_BLK = 4, PROTO_T_CHR = 5,
       PROTO_T_SOCK = 6, PROTO_T_FIFO = 7 };
enum { PROTO_ACCESS_RO = 1, PROTO_ACCESS_RW = 2 };
enum { PROTO_UNSTABLE = 0, PROTO_DATA_SYNC = 1, PROTO_FILE_SYNC = 2 };
enum { PROTO_CREATE_UNCHECKED = 0, PROTO_CREATE_GUARDED = 1, PROTO_CREATE_EXCLUSIVE = 2 };
enum { PROTO_FALLOC_ALLOC = 0, PROTO_FALLOC_ALLOC_KEEP_SIZE = 1, PROTO_FALLOC_PUNCH = 2,
       PROTO_FALLOC_ZERO = 3, PROTO_FALLOC_COLLAPSE = 4, PROTO_FALLOC_INSERT = 5 };
enum { PROTO_SEEK_DATA = 0, PROTO_SEEK_HOLE = 1 };
#define PROTO_EXP_RO              0x1u
#define PROTO_EXP_ANON            0x2u
#define PROTO_RENAME_NOREPLACE    0x1u
#define PROTO_RENAME_EXCHANGE     0x2u
#define PROTO_COPY_CLONE_ONLY     0x1u
#define PROTO_XATTR_CREATE        0x1u
#define PROTO_XATTR_REPLACE       0x2u
#define PROTO_SA_MODE       0x01u
#define PROTO_SA_UID        0x02u
#define PROTO_SA_GID        0x04u
#define PROTO_SA_SIZE       0x08u
#define PROTO_SA_ATIME      0x10u
#define PROTO_SA_MTIME      0x20u
#define PROTO_SA_ATIME_NOW  0x40u
#define PROTO_SA_MTIME_NOW  0x80u
#define PROTO_SA_ALL        0xffu

/* ---- the frame header ---------------------------------------------------- */
struct proto_hdr {
	uint8_t version;
	uint8_t opcode;
	uint16_t flags;
	uint32_t id;        /* request id */
	uint32_t length;    /* body bytes, header and tag excluded */
	uint32_t status;    /* replies */
	uint32_t uid, gid;  /* requests */
};

/* ---- field types ------------------------------------------------------------ */
struct proto_str { const char *p; uint16_t len; };
struct proto_bytes { const uint8_t *p; uint32_t len; };
/* Encoded elements (without the count) and their number: build with
 * proto_list_add, walk with proto_list_next. */
struct proto_list { const uint8_t *p; uint32_t len; uint32_t count; };
struct proto_time { int64_t sec; uint32_t nsec; };
struct proto_handle { uint8_t b[PROTO_HANDLE_SIZE]; };
struct proto_verf { uint8_t b[PROTO_VERF_SIZE]; };

struct proto_attr {
	uint8_t type;
	uint32_t mode, nlink, uid, gid;
	uint64_t size, used;
	uint32_t rdev_major, rdev_minor;        /* a device's number; 0 for other types */
	uint64_t fsid, ino;
	uint32_t gen;
	uint64_t change;
	struct proto_time atime, mtime, ctime, btime;
};
struct proto_pre_attr { uint64_t size; struct proto_time mtime, ctime; uint64_t change; };
struct proto_wcc { struct proto_pre_attr before; struct proto_attr after; };
struct proto_sattr {
	uint32_t mask;          /* PROTO_SA_* */
	uint32_t mode, uid, gid;
	uint64_t size;
	struct proto_time atime, mtime;
};

/* list elements */
struct proto_dirent { uint64_t cookie, ino; uint8_t type; struct proto_str name; };
struct proto_direntplus { uint64_t cookie; struct proto_str name; struct proto_handle fh;
			  struct proto_attr attr; };
struct proto_export { struct proto_str name; uint32_t flags; struct proto_handle root; };
struct proto_snap { uint32_t id; struct proto_str name; struct proto_time ctime;
		    struct proto_handle root; };
struct proto_xname { struct proto_str name; };

enum proto_list_kind { PROTO_L_DIRENT, PROTO_L_DIRENTPLUS, PROTO_L_EXPORT, PROTO_L_SNAP,
		       PROTO_L_XNAME, PROTO_L_COUNT };

/* ---- messages (docs/protocol.md §5) ----------------------------------------
 * Requests and replies without fields (PING, EXPORTS request, SNAP_DELETE
 * reply) have no structure: pass NULL. */
struct proto_hello_req {
	uint8_t min_version, max_version;
	uint32_t max_body;
	uint16_t max_inflight;
	bool want_anon;
	uint8_t nonce[PROTO_NONCE_SIZE];
	struct proto_str client_id;
};
struct proto_hello_rep {
	uint8_t version;
	uint32_t max_body;
	uint16_t max_inflight;
	bool anon_ok;
	uint64_t boot_id;
	uint8_t nonce[PROTO_NONCE_SIZE];
};
struct proto_auth_req { uint8_t proof[PROTO_PROOF_SIZE]; };
struct proto_auth_rep { uint8_t proof[PROTO_PROOF_SIZE]; uint8_t access; };
struct proto_exports_rep { struct proto_list exports; };

/* GETATTR, READLINK, FSSTAT, LISTXATTR, SNAP_LIST requests */
struct proto_fh_req { struct proto_handle fh; };
/* LOOKUP, REMOVE, RMDIR requests */
struct proto_dirop_req { struct proto_handle dir; struct proto_str name; };
/* SETATTR, REMOVE, RMDIR, FALLOCATE, SETXATTR, REMOVEXATTR replies */
struct proto_wcc_rep { struct proto_wcc wcc; };
/* CREATE, MKDIR, SYMLINK, MKNOD replies */
struct proto_newobj_rep { struct proto_handle fh; struct proto_attr attr; struct proto_wcc dir_wcc; };

struct proto_getattr_rep { struct proto_attr attr; };
struct proto_setattr_req { struct proto_handle fh; struct proto_sattr sattr; };
struct proto_lookup_rep { struct proto_handle fh; struct proto_attr attr, dir_attr; };
struct proto_readlink_rep { struct proto_str target; };
struct proto_read_req { struct proto_handle fh; uint64_t offset; uint32_t count; };
/* data last, so a sender may transmit it from its own buffer (PROTO_ENC_NODATA) */
struct proto_read_rep { bool eof; struct proto_attr attr; struct proto_bytes data; };
struct proto_write_req { struct proto_handle fh; uint64_t offset; uint8_t stable; struct proto_bytes data; };
struct proto_write_rep { uint32_t count; uint8_t committed; struct proto_verf verf; struct proto_wcc wcc; };
struct proto_commit_req { struct proto_handle fh; uint64_t offset, count; };
struct proto_commit_rep { struct proto_verf verf; struct proto_wcc wcc; };
struct proto_create_req { struct proto_handle dir; struct proto_str name; uint8_t how;
			  struct proto_verf verf; struct proto_sattr sattr; };
struct proto_mkdir_req { struct proto_handle dir; struct proto_str name; struct proto_sattr sattr; };
struct proto_symlink_req { struct proto_handle dir; struct proto_str name, target;
			   struct proto_sattr sattr; };
/* type: PROTO_T_BLK..PROTO_T_FIFO; rdev only for BLK and CHR (0 otherwise) */
struct proto_mknod_req { struct proto_handle dir; struct proto_str name; uint8_t type;
			 struct proto_sattr sattr; uint32_t rdev_major, rdev_minor; };
struct proto_link_req { struct proto_handle fh, dir; struct proto_str name; };
struct proto_link_rep { struct proto_attr attr; struct proto_wcc dir_wcc; };
struct proto_rename_req { struct proto_handle from_dir; struct proto_str from_name;
			  struct proto_handle to_dir; struct proto_str to_name; uint32_t flags; };
struct proto_rename_rep { struct proto_wcc from_wcc, to_wcc; };
/* READDIR and READDIRPLUS */
struct proto_readdir_req { struct proto_handle dir; uint64_t cookie; struct proto_verf verf;
			   uint32_t maxcount; };
struct proto_readdir_rep { struct proto_verf verf; bool eof; struct proto_list entries;
			   struct proto_attr dir_attr; };
struct proto_fsstat_rep { uint64_t total_bytes, free_bytes, avail_bytes, total_files, free_files;
			  uint32_t max_name, max_io; };
struct proto_fsync_req { struct proto_handle fh; bool datasync; };
struct proto_fsync_rep { struct proto_verf verf; struct proto_attr attr; };
struct proto_fallocate_req { struct proto_handle fh; uint8_t mode; uint64_t offset, length; };
struct proto_seek_req { struct proto_handle fh; uint64_t offset; uint8_t what; };
struct proto_seek_rep { uint64_t offset; };
struct proto_copy_req { struct proto_handle src; uint64_t src_offset; struct proto_handle dst;
			uint64_t dst_offset, length; uint32_t flags; };
struct proto_copy_rep { uint64_t count; bool cloned; struct proto_wcc dst_wcc; };
struct proto_xattr_req { struct proto_handle fh; struct proto_str name; };   /* GET/REMOVE */
struct proto_getxattr_rep { struct proto_bytes value; };
struct proto_setxattr_req { struct proto_handle fh; struct proto_str name; struct proto_bytes value;
			    uint32_t flags; };
struct proto_listxattr_rep { struct proto_list names; };
/* SNAP_CREATE and SNAP_DELETE requests */
struct proto_snap_req { struct proto_handle fh; struct proto_str name; };
struct proto_snap_create_rep { uint32_t id; struct proto_handle root; };
struct proto_snap_list_rep { struct proto_list snaps; };
/* ADMIN (§5.4): run 0 starts `command`; else the output of that run from
 * `offset`, at most `max` bytes (0: as many as fit), as it is printed.
 * result is the shell status as s32 (0 ok, 1 failed, -errno) once done;
 * PROTO_ADMIN_RUNNING while the command runs.  data last (PROTO_ENC_NODATA). */
#define PROTO_ADMIN_RUNNING ((uint32_t)-115)    /* -EINPROGRESS (Linux's number) */
struct proto_admin_req { uint64_t run, offset; uint32_t max; struct proto_str command; };
struct proto_admin_rep { uint64_t run; uint32_t result; bool done; struct proto_bytes output; };

#endif
