/*
 * The portable client core: request ids and the outstanding-request table
 * on the client side, reply matching, and the log of unstable writes that
 * decides what to resend when the server's write verifier changes
 * (docs/protocol.md §1.1, §5.3).  Transport-independent, like the server
 * core: the host client library wraps it with a socket, timeouts and
 * reconnection.
 *
 * Call order: the handshake (proto/auth.h) until PROTO_AUTH_DONE, then
 * proto_client_init(session); per request proto_client_request() (frame
 * to send, sealed) and, for every frame received, proto_client_reply().
 * Requests may be sent as fast as proto_client_request() allows (it
 * answers -EBUSY at the negotiated max_inflight); replies come in any
 * order.
 *
 * Unstable writes: every WRITE answered with committed == UNSTABLE goes
 * into a proto_wlog with the verifier of its reply, and its data stays
 * with the caller.  A COMMIT reply drops the writes it covers whose
 * verifier equals the COMMIT's; writes with another verifier were made
 * to an earlier server instance and may be lost: they are handed back to
 * be written again (then committed again).
 */
#ifndef PROTO_CLIENT_H
#define PROTO_CLIENT_H

#include "proto/wire.h"
#include "proto/codec.h"
#include "proto/auth.h"

struct proto_client {
	struct proto_session *sess;
	uint32_t next_id;
	struct { uint32_t id; uint8_t opcode; bool used; } out[PROTO_MAX_INFLIGHT];
	unsigned n;
};

struct proto_client_reply {
	struct proto_hdr hdr;
	int err;                        /* 0, or the errno of hdr.status */
	_Alignas(16) uint8_t msg[512];  /* the reply structure of hdr.opcode */
};

void proto_client_init(struct proto_client *c, struct proto_session *sess);
/* Encode and seal a request into out: returns the frame length and its id
 * in *id; -PLAT_EBUSY when max_inflight requests are outstanding; an
 * encoding error (a name that is not a component, ...) with err->msg. */
int proto_client_request(struct proto_client *c, uint8_t opcode, uint32_t uid, uint32_t gid,
			 const void *req, uint8_t *out, size_t cap, uint32_t *id, struct proto_err *err);
/* Check and decode one received frame (header, body, tag): 0 with *r
 * filled and its request released (r->err says whether the server
 * refused it), or a negative errno after which the connection cannot be
 * trusted and is to be closed: bad tag, a reply to no outstanding request
 * or for another operation, a malformed reply. */
int proto_client_reply(struct proto_client *c, const uint8_t *frame, size_t len,
		       struct proto_client_reply *r, struct proto_err *err);

/* ---- unstable writes ------------------------------------------------------- */
#define PROTO_WLOG_MAX 256
struct proto_wlog_entry {
	struct proto_handle fh;
	uint64_t offset;
	uint32_t len;
	struct proto_verf verf;         /* of the WRITE reply */
	const void *data;               /* the caller's; kept until committed */
};
struct proto_wlog {
	struct proto_wlog_entry e[PROTO_WLOG_MAX];
	unsigned n;
};
void proto_wlog_init(struct proto_wlog *wl);
/* Remember an UNSTABLE write: 0, or -PLAT_ENOSPC (commit first). */
int proto_wlog_add(struct proto_wlog *wl, const struct proto_handle *fh, uint64_t offset, uint32_t len,
		   const void *data, const struct proto_verf *verf);
/* A COMMIT of (fh, offset, count; count 0 = to end of file) returned
 * verf: drop the covered writes made under verf; hand every covered write
 * made under another verifier to resend(arg, entry) and drop it too (the
 * caller queues the write again; its reply adds it back, so resend must
 * not change the log).  Returns how many were handed back.  Writes only
 * partly covered are treated as not covered. */
int proto_wlog_commit(struct proto_wlog *wl, const struct proto_handle *fh, uint64_t offset,
		      uint64_t count, const struct proto_verf *verf,
		      void (*resend)(void *arg, const struct proto_wlog_entry *e), void *arg);

#endif
