/*
 * Inside the protocol's operations over cowfs (serve_cowfs.c: handles,
 * attributes, names, data; serve_cowfs_meta.c: extended attributes,
 * directory listings, fsstat, snapshots).  Not for other layers.
 */
#ifndef PROTO_SERVE_COWFS_INT_H
#define PROTO_SERVE_COWFS_INT_H

#include "proto/serve_cowfs.h"
#include "platform/platform.h"
#include "fs/vfs.h"

#define NS 1000000000ull
#define READDIR_BATCH 256u      /* entries gathered per call before the reply is built */
#define ATTR_SIZE 117u          /* an encoded attr (docs/protocol.md §5.1) */
#define READ_FIXED (1u + ATTR_SIZE + 4u)        /* READ reply: eof, attr, data length */

/* One operation in progress: scf_op_begin() to scf_op_end(). */
struct op {
	struct proto_cowfs *pc;
	struct proto_call *c;
	struct cowfs_mount *m;
	void *use;                      /* for pc->put */
	struct cowfs_inode in;          /* the first handle's inode, before the operation */
};

/* How an operation takes snapshot handles (fh.snap: the snapshot's tree
 * id): not at all (NOTSUP; mutations are ROFS before they get here),
 * for the filesystem only (fsstat, the snapshot operations), or to read
 * the inode in the snapshot (fs/snap_read.c). */
enum snap_use { SNAP_NO, SNAP_FS, SNAP_READ };

uint32_t scf_snap_of(const struct op *o);
int scf_o_getattr(struct op *o, uint64_t ino, struct cowfs_inode *in);
int scf_check_inode(struct op *o, const struct proto_fh *fh, struct cowfs_inode *in);
int scf_op_begin(struct op *o, void *fs, struct proto_call *c, enum snap_use su);
int scf_op_end(struct op *o, int rc);
int scf_second(struct op *o, unsigned i, struct cowfs_inode *in);
struct proto_time scf_ptime(struct cowfs_time t);
uint8_t scf_ptype(uint32_t mode);
uint8_t scf_dtype(uint8_t cfs_dt);
void scf_attr_of(struct op *o, const struct cowfs_inode *in, struct proto_attr *a);
void scf_pre_of(const struct cowfs_inode *in, struct proto_pre_attr *p);
int scf_wcc_of(struct op *o, const struct cowfs_inode *pre, uint64_t ino, struct proto_wcc *w);
void scf_seal(struct op *o, uint64_t ino, uint64_t gen, struct proto_handle *h);
int scf_sattr_of(const struct proto_sattr *s, struct cowfs_setattr *sa);

/* serve_cowfs_meta.c */
int scf_op_getxattr(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_setxattr(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_removexattr(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_listxattr(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_readdir(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_readdirplus(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_fsstat(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_snap_create(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_snap_list(void *fs, struct proto_call *c, const void *req, void *rep);
int scf_op_snap_delete(void *fs, struct proto_call *c, const void *req, void *rep);

#endif
