/*
 * apfp-fuse internals: the state the FUSE operations (apfp_fuse.c) share,
 * kept in apfp_fuse_state.c:
 *  - a pool of client connections (the client library is not thread safe):
 *    each FUSE worker thread is bound to one slot and locks it per request;
 *  - the node table: FUSE node id -> protocol handle, with the kernel's
 *    lookup counts (an entry lives from the first lookup that returns it to
 *    the forget that brings its count to zero; the root never goes);
 *  - per node, the unstable writes not yet committed (proto_wlog with a
 *    private copy of each write's data), committed at fsync, flush and
 *    release and resent when the server's write verifier changed.
 */
#ifndef TOOLS_APFP_FUSE_H
#define TOOLS_APFP_FUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "tools/apfp_ops.h"

struct fuse_lowlevel_ops;
struct fuse_session;

#define AFUSE_MAX_IO        PROTO_MAX_IO
#define AFUSE_MAX_CONNS     16
/* Uncommitted data kept per file before a write commits it first: the
 * client holds a copy of every unstable byte until the server says it is
 * durable. */
#define AFUSE_UNSTABLE_MAX  (64u << 20)

struct afuse_conn {
	pthread_mutex_t lock;
	struct apfpc c;
	bool open;
};

struct afuse_node {
	uint64_t id;                    /* FUSE node id: the inode number, 1 for the export's root */
	struct proto_handle fh;
	uint32_t gen;
	uint64_t nlookup;
	struct afuse_node *next;        /* hash chain */
	pthread_mutex_t wlock;          /* the unstable writes below, and commits */
	struct proto_wlog *wl;          /* allocated at the first unstable write */
	uint64_t unstable_bytes;
	unsigned opens;                 /* open files of it (apfp_fuse_hide.c), under nodes_lock */
	struct proto_handle hidden_dir; /* where it was renamed aside when its last name went */
	char hidden_name[64];           /* "" when not */
};

struct afuse {
	struct apfpc_cfg cfg;
	char export[256];
	struct apfp_obj root;
	unsigned nconns;
	struct afuse_conn conns[AFUSE_MAX_CONNS];
	double attr_timeout, entry_timeout;
	bool writeback, ro;
	pthread_mutex_t nodes_lock;
	struct afuse_node **buckets;
	size_t nbuckets;
	uint64_t resent;                /* unstable writes written again after a verifier change */
	uint64_t open_files;            /* under nodes_lock: opens of all nodes */
	unsigned hidden_seq;
	struct fuse_session *se;        /* for cache invalidations */
};

int afuse_init(struct afuse *a);
const struct fuse_lowlevel_ops *apfp_fuse_ops(void);
void afuse_fini(struct afuse *a);

/* A connection for this thread, locked; NULL with *err when none can be
 * made.  afuse_put() unlocks it.  afuse_fail() turns an operation's result
 * into the errno for the kernel: a broken connection is said on stderr
 * (once per second at most) and becomes EIO, or ETIMEDOUT after a timeout. */
struct afuse_conn *afuse_get(struct afuse *a, int *err);
void afuse_put(struct afuse_conn *k);
int afuse_fail(struct afuse *a, struct afuse_conn *k, const char *what, int rc);

/* Node table.  afuse_node_ref() records one more kernel reference to the
 * object (a lookup, create, mkdir, link, readdirplus entry): its id in *id. */
int afuse_node_ref(struct afuse *a, const struct apfp_obj *o, uint64_t *id);
void afuse_node_forget(struct afuse *a, uint64_t id, uint64_t n);
/* The handle of node id: -ESTALE if the kernel asked about a node it forgot. */
int afuse_node_fh(struct afuse *a, uint64_t id, struct proto_handle *fh);
struct afuse_node *afuse_node_find(struct afuse *a, uint64_t id);
struct afuse_node *afuse_node_find_locked(struct afuse *a, uint64_t id);   /* nodes_lock held */

/* Open files that lose their last name (apfp_fuse_hide.c): afuse_opened()
 * at each open; afuse_released() at each release, true when the file's
 * hidden name must now be removed (dir and name filled in);
 * afuse_hide_if_open() before a name is removed or replaced: if it is the
 * last name of a file open here, renames it aside (*hidden: the name is
 * gone already). */
void afuse_opened(struct afuse *a, uint64_t id);
bool afuse_released(struct afuse *a, uint64_t id, struct proto_handle *dir, char *name, size_t size);
int afuse_hide_if_open(struct afuse *a, struct afuse_conn *k, const struct proto_handle *dir, const char *name,
		       bool *hidden);
uint64_t afuse_node_id(struct afuse *a, const struct proto_attr *attr);

/* Unstable writes: write len bytes at off (UNSTABLE, a copy logged until
 * committed; committing first when the log is full); *n bytes written. */
int afuse_write_unstable(struct afuse *a, struct afuse_conn *k, struct afuse_node *nd, uint64_t off,
			 const void *buf, uint32_t len, uint32_t *n);
/* COMMIT the node's unstable writes; writes made under an earlier server
 * instance (another verifier) are written again and committed again. */
bool afuse_pending(struct afuse_node *nd);
/* At exit (the daemon was told to stop with files still open): commit
 * every node's unstable writes; the first error. */
int afuse_commit_all(struct afuse *a);
int afuse_commit(struct afuse *a, struct afuse_conn *k, struct afuse_node *nd);

/* The FUSE operations (these need fuse_lowlevel.h): afuse_begin() is the
 * connection of this thread and the handle of node ino (fh may be NULL),
 * or NULL with the error already answered; afuse_end() puts the
 * connection back and turns rc into the errno to answer (afuse_fail). */
#ifdef FUSE_USE_VERSION
struct afuse_conn *afuse_begin(fuse_req_t req, fuse_ino_t ino, struct proto_handle *fh);
int afuse_end(fuse_req_t req, struct afuse_conn *k, const char *what, int rc);
/* tools/apfp_fuse_x.c: extended attributes, fallocate, lseek. */
void afuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void afuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		       int flags);
void afuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void afuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void afuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi);
void afuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
#endif

#endif
