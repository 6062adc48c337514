/*
 * The server core (proto/server.h).  Every request goes through the same
 * gate, in this order, and the first check that fails decides the answer:
 *
 *   header  -> fatal errors close the connection (the stream is lost),
 *              an unknown opcode is answered BADOP once its tag checks;
 *   tag     -> a mismatch closes without an answer (nothing in the frame
 *              can be trusted, not even its request id);
 *   body    -> BADMSG / INVAL / NAMETOOLONG, the connection goes on;
 *   access  -> mutating ops on read-only sessions: ROFS;
 *   handles -> every handle opened with the server key: BADHANDLE;
 *              mutating through a snapshot handle: ROFS;
 *   fs op   -> its errno mapped to a status; its reply is encoded with the
 *              same checks as any other message, so a filesystem bug that
 *              produces an invalid reply becomes SERVERFAULT, never a
 *              malformed frame on the wire.
 */
#include "proto/server.h"
#include "proto/codec_int.h"
#include "platform/platform.h"

#define ANON_ID 65534u

void proto_server_init(struct proto_server *srv, const struct proto_fs_ops *ops, void *fs,
		       const void *handle_key, size_t key_len)
{
	plat_memset(srv, 0, sizeof(*srv));
	srv->ops = ops;
	srv->fs = fs;
	proto_handle_key_init(&srv->hkey, handle_key, key_len);
}

void proto_server_seal(const struct proto_server *srv, const struct proto_fh *fh,
		       struct proto_handle *out)
{
	proto_handle_seal(&srv->hkey, fh, out);
}

/* Reply with a status only (sealed on keyed sessions). */
static int reply_status(struct proto_session *sess, const struct proto_hdr *req, uint32_t status,
			uint8_t *out, size_t cap, size_t *out_len)
{
	struct proto_hdr h = *req;
	int n;

	h.version = sess->version;
	n = proto_encode_error(out, cap, &h, status);
	if (n < 0)
		return n;
	out[6] |= (uint8_t)proto_session_hdr_flags(sess);
	n = proto_session_seal(sess, out, (size_t)n, cap);
	if (n < 0)
		return n;
	*out_len = (size_t)n;
	return 0;
}

/* Open every handle of the request, in field order. */
static uint32_t open_handles(const struct proto_server *srv, const struct pf_layout *l, const uint8_t *req,
			     struct proto_call *call, struct proto_err *err)
{
	for (unsigned i = 0; i < l->n; i++) {
		if (l->f[i].type != PF_HANDLE)
			continue;
		PLAT_ASSERT(call->nfh < PROTO_CALL_MAX_FH);
		if (proto_handle_open(&srv->hkey, (const struct proto_handle *)(req + l->f[i].off),
				      &call->fh[call->nfh]) < 0) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: handle %s was not made by this server",
				      proto_op_name(call->opcode), l->f[i].name);
			return PROTO_E_BADHANDLE;
		}
		if (call->fh[call->nfh].snap && proto_op_mutates(call->opcode)) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: handle %s is in snapshot %u (read-only)",
				      proto_op_name(call->opcode), l->f[i].name, call->fh[call->nfh].snap);
			return PROTO_E_ROFS;
		}
		call->nfh++;
	}
	return PROTO_OK;
}

int proto_server_handle(struct proto_server *srv, struct proto_session *sess, const uint8_t *frame,
			size_t len, uint8_t *out, size_t cap, size_t *out_len, uint8_t *scratch,
			size_t scratch_cap, struct proto_err *err)
{
	_Alignas(16) uint8_t req[512], rep[512];
	struct proto_hdr h = { 0 };
	struct proto_call call = { .srv = srv, .scratch = scratch, .scratch_cap = scratch_cap };
	size_t tag_len = sess->keyed ? PROTO_TAG_SIZE : 0;
	uint32_t status;
	int rc, n;

	*out_len = 0;
	err->msg[0] = 0;
	srv->requests++;
	rc = proto_hdr_decode(frame, len, sess->version, sess->max_body, &h, err);
	if (rc < 0 && proto_hdr_error_fatal(rc)) {
		srv->errors++;
		/* With the id known (the header was parsed), say why. */
		if (rc == -PLAT_EMSGSIZE || rc == -PLAT_EPROTO)
			reply_status(sess, &h, proto_status_from_errno(rc), out, cap, out_len);
		return rc;
	}
	if (h.flags & PROTO_F_REPLY) {
		plat_snprintf(err->msg, sizeof(err->msg), "a reply frame sent to the server");
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	if (len != PROTO_HDR_SIZE + (size_t)h.length + tag_len) {
		plat_snprintf(err->msg, sizeof(err->msg), "frame of %zu bytes, header and tag say %zu", len,
			      PROTO_HDR_SIZE + (size_t)h.length + tag_len);
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	if (proto_session_open(sess, frame, len - tag_len, tag_len ? frame + len - tag_len : NULL) < 0) {
		plat_snprintf(err->msg, sizeof(err->msg), "frame tag does not verify (altered, replayed or forged)");
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	if (rc == -PLAT_ENOSYS) {
		status = PROTO_E_BADOP;
		goto refuse;
	}
	call.opcode = h.opcode;
	call.read_only = sess->access != PROTO_ACCESS_RW;
	call.uid = sess->keyed ? h.uid : ANON_ID;
	call.gid = sess->keyed ? h.gid : ANON_ID;
	if (h.opcode == PROTO_OP_HELLO || h.opcode == PROTO_OP_AUTH) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s after the handshake", proto_op_name(h.opcode));
		status = PROTO_E_BADMSG;
		goto refuse;
	}
	PLAT_ASSERT(proto_msg_size(h.opcode, false) <= sizeof(req) &&
		    proto_msg_size(h.opcode, true) <= sizeof(rep));
	if ((rc = proto_decode_body(&h, frame + PROTO_HDR_SIZE, h.length, req, err)) < 0) {
		status = proto_status_from_errno(rc);
		goto refuse;
	}
	if (call.read_only && proto_op_mutates(h.opcode)) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s on a read-only session", proto_op_name(h.opcode));
		status = PROTO_E_ROFS;
		goto refuse;
	}
	if ((status = open_handles(srv, &pf_msgs[h.opcode].req, req, &call, err)) != PROTO_OK)
		goto refuse;
	if (h.opcode != PROTO_OP_PING) {
		proto_fs_op op = srv->ops->op[h.opcode];
		if (!op) {
			status = PROTO_E_NOTSUP;
			goto refuse;
		}
		plat_memset(rep, 0, sizeof(rep));
		if ((rc = op(srv->fs, &call, req, rep)) < 0) {
			status = proto_status_from_errno(rc);
			goto refuse;
		}
	}

	struct proto_hdr rh = { .version = sess->version, .opcode = h.opcode, .id = h.id,
				.flags = (uint16_t)(PROTO_F_REPLY | proto_session_hdr_flags(sess)) };
	if ((n = proto_encode(out, cap, &rh, rep, 0, err)) < 0) {
		plat_log(PLAT_LOG_ERR, "proto: the filesystem's %s reply is invalid: %s",
			 proto_op_name(h.opcode), err->msg);
		status = PROTO_E_SERVERFAULT;
		goto refuse;
	}
	if ((n = proto_session_seal(sess, out, (size_t)n, cap)) < 0)
		return n;
	*out_len = (size_t)n;
	return 0;
refuse:
	srv->errors++;
	if ((rc = reply_status(sess, &h, status, out, cap, out_len)) < 0)
		return rc;
	return 0;
}
