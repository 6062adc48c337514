/*
 * The protocol's filesystem operations over cowfs (fs/vfs.h): the table
 * the portable server core (proto/server.h) calls once a request has
 * passed its gate.  The same code serves in the appliance (net/apfp.c,
 * the mounted disks) and on the host (tools/apfp_serve.c, image files).
 *
 * Call order:
 *   proto_cowfs_init(&pc, get, put, arg)   once, before serving: picks the
 *                                           write verifier (plat_random)
 *   proto_server_init(&srv, &proto_cowfs_ops, &pc, key, len)
 *   proto_cowfs_export(m, &cfg)            fills an export's fsid and root
 *   ... serve ...
 * Every operation resolves its handles' filesystem through get(arg, fsid,
 * &use), which takes a use the operation drops with put(); NULL makes
 * the handle stale.  An inode that is gone, or whose generation differs
 * from the handle's, is stale too.
 *
 * What is not served yet (answered NOTSUP, the status the spec gives for
 * it): reading through snapshot handles (snapshots are created, listed
 * and deleted, but cowfs cannot open one beside the live tree yet),
 * COPY copies (cloned = false; CLONE_ONLY is NOTSUP).
 */
#ifndef PROTO_SERVE_COWFS_H
#define PROTO_SERVE_COWFS_H

#include "proto/server.h"

struct cowfs_mount;

/* get: the mounted filesystem of fsid with a use held (NULL: none), and
 * in *use what put() needs to drop it. */
typedef struct cowfs_mount *(*proto_cowfs_get_fn)(void *arg, uint64_t fsid, void **use);
typedef void (*proto_cowfs_put_fn)(void *arg, void *use);

struct proto_cowfs {
	proto_cowfs_get_fn get;
	proto_cowfs_put_fn put;
	void *arg;
	struct proto_verf verf;         /* the write verifier of this server instance */
	uint64_t copy_max;              /* bytes one COPY moves before answering short */
};

extern const struct proto_fs_ops proto_cowfs_ops;

/* 0, or -errno when no random verifier could be had. */
int proto_cowfs_init(struct proto_cowfs *pc, proto_cowfs_get_fn get, proto_cowfs_put_fn put, void *arg);
/* The stable filesystem id of handles (from the filesystem's fsid). */
uint64_t proto_cowfs_fsid(struct cowfs_mount *m);
/* Fill e->fsid, root_ino and root_gen for the mounted filesystem m. */
int proto_cowfs_export(struct cowfs_mount *m, struct proto_export_cfg *e);
/* A new write verifier: every client resends its unstable writes (after
 * a writeback error that may have lost some). */
void proto_cowfs_new_verf(struct proto_cowfs *pc);

#endif
