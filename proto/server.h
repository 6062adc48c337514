/*
 * The portable server core: one request frame in, one reply frame out,
 * over an abstract table of filesystem operations.  Transport-independent:
 * the appliance's network code and a host server over sockets both feed it
 * frames; the filesystem behind the table is the real filesystem's API (a
 * test supplies its own small fake).
 *
 * Call order:
 *   proto_server_init() once per server (ops, fs, persistent handle key);
 *   per connection: the handshake (proto/auth.h) until PROTO_AUTH_DONE and
 *   proto_reqtab_init(max_inflight), then for every frame received, in
 *   arrival order, on the connection's reader:
 *     proto_server_receive()   header, tag, body, gate; claims the request
 *                              id in the table (BUSY / duplicate refused)
 *   then on any thread, concurrently with other requests:
 *     proto_server_execute()   the filesystem operation, the reply encoded
 *   then, in the order replies are sent (the connection's send lock):
 *     proto_session_seal(), send, proto_reqtab_end(id).
 *   proto_server_handle() does all of it for one frame, synchronously.
 *
 * What happens before an operation runs (in this order): the header is
 * sound and within the session's limits, the tag verifies (keyed
 * sessions), the request id is not outstanding and the table has room,
 * the body decodes with every check of the codec, the session has the
 * secret if the operation needs it (ADMIN; else ACCES), the session may
 * write if the operation mutates, every handle in the request was sealed by
 * this server (else BADHANDLE, nothing looked up) and belongs to an
 * exported filesystem (else STALE) the session may see (anonymous
 * sessions: ACCES unless the export allows them), and nothing mutates
 * through a snapshot or a read-only export (ROFS).  The fs operation then sees only
 * opened handles (struct proto_fh).
 */
#ifndef PROTO_SERVER_H
#define PROTO_SERVER_H

#include "proto/wire.h"
#include "proto/codec.h"
#include "proto/auth.h"
#include "proto/handle.h"

#define PROTO_CALL_MAX_FH 3     /* most handles in one request (COPY: 2) */

struct proto_server;

/* What an operation gets besides its request and reply structures. */
struct proto_call {
	const struct proto_server *srv;
	uint8_t opcode;
	uint32_t uid, gid;              /* from the header (65534 on anonymous sessions) */
	bool read_only;                 /* session access */
	bool anonymous;                 /* no secret: only PROTO_EXP_ANON exports, no ADMIN */
	/* The client's address ("10.0.2.2:40000") for the operation's log
	 * lines (ADMIN); the transport sets it between proto_server_receive()
	 * and proto_server_execute(); NULL when it does not. */
	const char *peer;
	struct proto_fh fh[PROTO_CALL_MAX_FH];  /* the request's handles, opened, in field order */
	unsigned nfh;
	/* Memory for what the reply points to (READ data, READLINK target,
	 * lists): valid until the reply is encoded. */
	uint8_t *scratch;
	size_t scratch_cap;
};

/* One operation: `req` is the decoded request structure of the opcode
 * (wire.h), `rep` its zeroed reply structure, to fill.  Handles placed in
 * replies are made with proto_server_seal().  Return 0 or a negative
 * errno (-ESTALE when a handle's file is gone or its generation differs,
 * -ENOTSUP when not supported, ...); the status sent is
 * proto_status_from_errno() of it; a status no errno names is returned
 * negated (-PROTO_E_BAD_COOKIE, -PROTO_E_TOOSMALL).  Entries left NULL
 * answer NOTSUP. */
typedef int (*proto_fs_op)(void *fs, struct proto_call *call, const void *req, void *rep);

struct proto_fs_ops {
	proto_fs_op op[PROTO_OP_LIMIT];         /* by opcode; PING, EXPORTS, HELLO, AUTH are the core's */
};

/* An export: a filesystem (or one of its snapshots) clients may reach.
 * Handles are only honoured for exported filesystems; anonymous sessions
 * only for exports with PROTO_EXP_ANON; nothing mutates through an export
 * with PROTO_EXP_RO. */
struct proto_export_cfg {
	const char *name;               /* a single name component */
	uint64_t fsid;
	uint64_t root_ino;
	uint32_t root_gen;
	uint32_t snap;                  /* 0: the live filesystem */
	uint32_t flags;                 /* PROTO_EXP_RO, PROTO_EXP_ANON */
};

struct proto_server {
	const struct proto_fs_ops *ops;
	void *fs;
	struct proto_handle_key hkey;
	const struct proto_export_cfg *exports;
	unsigned nexports;
	uint64_t requests, errors;      /* counters (racy reads are fine) */
};

void proto_server_init(struct proto_server *srv, const struct proto_fs_ops *ops, void *fs,
		       const void *handle_key, size_t key_len);
void proto_server_seal(const struct proto_server *srv, const struct proto_fh *fh,
		       struct proto_handle *out);
/* The export table (kept by pointer; set before serving).  EXPORTS is
 * answered from it by the core, listing to anonymous sessions only the
 * exports that allow them. */
void proto_server_set_exports(struct proto_server *srv, const struct proto_export_cfg *e, unsigned n);

/* ---- outstanding requests of one connection (docs/protocol.md §1.1) ----
 * Not locked: the reader claims ids, the sender releases them; callers
 * serialise the two with the connection's lock. */
struct proto_reqtab {
	uint32_t id[PROTO_MAX_INFLIGHT];
	bool used[PROTO_MAX_INFLIGHT];
	unsigned n, max;
};
void proto_reqtab_init(struct proto_reqtab *t, unsigned max_inflight);
/* 0, -PLAT_EBUSY when max_inflight are outstanding, -PLAT_EEXIST when the
 * id is already outstanding. */
int proto_reqtab_begin(struct proto_reqtab *t, uint32_t id);
void proto_reqtab_end(struct proto_reqtab *t, uint32_t id);

/* One received request.  Its decoded fields point into the frame, which
 * must stay until proto_server_execute() has returned. */
struct proto_request {
	struct proto_hdr hdr;
	uint32_t status;        /* != 0: refused at the gate, answer this */
	bool claimed;           /* holds its id in the reqtab: end it after the reply */
	struct proto_call call;
	_Alignas(16) uint8_t req[512];
};

/* The reader's part for one frame (header, body and tag: exactly the
 * bytes of one frame).  Returns 0 with *r ready for execute (possibly
 * only to answer r->status), or a negative errno when the connection must
 * be closed: bad magic, wrong version, frame over the limit, tag mismatch
 * (r->status is then set if an answer is still due: TOOBIG, VERSION).
 * err->msg says what was wrong, for the server's log. */
int proto_server_receive(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			 const uint8_t *frame, size_t len, struct proto_request *r, struct proto_err *err);
/* The same with the tag computed while the frame was copied in
 * (proto_rxtag; NULL or one that does not apply: computed here). */
int proto_server_receive_pre(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			     const uint8_t *frame, size_t len, const struct proto_rxtag *pre,
			     struct proto_request *r, struct proto_err *err);
/* Run the request (or only its refusal) and encode the reply, unsealed,
 * with the session's flags: returns its length or a negative errno (out
 * too small even for a status reply). */
int proto_server_execute(struct proto_server *srv, const struct proto_session *sess,
			 struct proto_request *r, uint8_t *out, size_t cap, uint8_t *scratch,
			 size_t scratch_cap, struct proto_err *err);

/* receive + execute + seal + end, for one frame: 0 to go on, or a
 * negative errno when the connection must be closed after sending the
 * *out_len bytes (which may be none). */
int proto_server_handle(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			const uint8_t *frame, size_t len, uint8_t *out, size_t cap, size_t *out_len,
			uint8_t *scratch, size_t scratch_cap, struct proto_err *err);

#endif
