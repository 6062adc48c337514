/*
 * The server core (proto/server.h).  Every request goes through the same
 * gate, in this order, and the first check that fails decides the answer:
 *
 *   header  -> fatal errors close the connection (the stream is lost),
 *              an unknown opcode is answered BADOP once its tag checks;
 *   tag     -> a mismatch closes without an answer (nothing in the frame
 *              can be trusted, not even its request id);
 *   id      -> claimed in the connection's table: BUSY when max_inflight
 *              are outstanding, BADMSG when the id already is (its reply
 *              would be ambiguous);
 *   body    -> BADMSG / INVAL / NAMETOOLONG, the connection goes on;
 *   access  -> operations needing the secret (ADMIN) on anonymous
 *              sessions: ACCES; mutating ops on read-only sessions: ROFS;
 *   handles -> every handle opened with the server key: BADHANDLE;
 *              mutating through a snapshot handle: ROFS (COPY's source
 *              is only read);
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

void proto_server_set_exports(struct proto_server *srv, const struct proto_export_cfg *e, unsigned n)
{
	srv->exports = e;
	srv->nexports = n;
}

static const struct proto_export_cfg *export_of(const struct proto_server *srv, uint64_t fsid)
{
	for (unsigned i = 0; i < srv->nexports; i++)
		if (srv->exports[i].fsid == fsid)
			return &srv->exports[i];
	return NULL;
}

/* EXPORTS, answered by the core from the export table. */
static int list_exports(const struct proto_server *srv, bool anon, struct proto_call *call, void *rep,
			struct proto_err *err)
{
	struct proto_exports_rep *r = rep;
	struct proto_listbuf lb;
	int rc;

	proto_listbuf_init(&lb, call->scratch, (uint32_t)call->scratch_cap);
	for (unsigned i = 0; i < srv->nexports; i++) {
		const struct proto_export_cfg *x = &srv->exports[i];
		struct proto_fh root = { x->fsid, x->root_ino, x->root_gen, x->snap };
		struct proto_export e = { .name = { x->name, (uint16_t)plat_strlen(x->name) },
					  .flags = x->flags };

		if (anon && !(x->flags & PROTO_EXP_ANON))
			continue;
		proto_handle_seal(&srv->hkey, &root, &e.root);
		if ((rc = proto_list_add(&lb, PROTO_L_EXPORT, &e, err)) < 0)
			return rc;
	}
	r->exports = proto_list_of(&lb);
	return 0;
}

/* ---- outstanding requests ------------------------------------------------------ */
void proto_reqtab_init(struct proto_reqtab *t, unsigned max_inflight)
{
	plat_memset(t, 0, sizeof(*t));
	t->max = max_inflight < PROTO_MAX_INFLIGHT ? max_inflight : PROTO_MAX_INFLIGHT;
}

int proto_reqtab_begin(struct proto_reqtab *t, uint32_t id)
{
	int free_slot = -1;

	for (unsigned i = 0; i < PROTO_MAX_INFLIGHT; i++) {
		if (t->used[i] && t->id[i] == id)
			return -PLAT_EEXIST;
		if (!t->used[i] && free_slot < 0)
			free_slot = (int)i;
	}
	if (t->n >= t->max || free_slot < 0)
		return -PLAT_EBUSY;
	t->used[free_slot] = true;
	t->id[free_slot] = id;
	t->n++;
	return 0;
}

void proto_reqtab_end(struct proto_reqtab *t, uint32_t id)
{
	for (unsigned i = 0; i < PROTO_MAX_INFLIGHT; i++) {
		if (t->used[i] && t->id[i] == id) {
			t->used[i] = false;
			t->n--;
			return;
		}
	}
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
		const struct proto_export_cfg *x = export_of(srv, call->fh[call->nfh].fsid);
		if (!x) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: handle %s is of filesystem %llx, not exported",
				      proto_op_name(call->opcode), l->f[i].name,
				      (unsigned long long)call->fh[call->nfh].fsid);
			return PROTO_E_STALE;
		}
		if (call->anonymous && !(x->flags & PROTO_EXP_ANON)) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: export %s needs the secret",
				      proto_op_name(call->opcode), x->name);
			return PROTO_E_ACCES;
		}
		if ((x->flags & PROTO_EXP_RO) && proto_op_mutates(call->opcode)) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: export %s is read-only",
				      proto_op_name(call->opcode), x->name);
			return PROTO_E_ROFS;
		}
		/* COPY only reads its source: a snapshot's file may be copied
		 * out into a live one. */
		bool written = proto_op_mutates(call->opcode) && !(call->opcode == PROTO_OP_COPY && call->nfh == 0);
		if (call->fh[call->nfh].snap && written) {
			plat_snprintf(err->msg, sizeof(err->msg), "%s: handle %s is in snapshot %u (read-only)",
				      proto_op_name(call->opcode), l->f[i].name, call->fh[call->nfh].snap);
			return PROTO_E_ROFS;
		}
		call->nfh++;
	}
	return PROTO_OK;
}

static int refuse(struct proto_server *srv, struct proto_request *r, uint32_t status)
{
	srv->errors++;
	r->status = status;
	return 0;
}

int proto_server_receive(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			 const uint8_t *frame, size_t len, struct proto_request *r, struct proto_err *err)
{
	return proto_server_receive_pre(srv, sess, tab, frame, len, NULL, r, err);
}

int proto_server_receive_pre(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			     const uint8_t *frame, size_t len, const struct proto_rxtag *pre,
			     struct proto_request *r, struct proto_err *err)
{
	size_t tag_len = sess->keyed ? PROTO_TAG_SIZE : 0;
	struct proto_call *call = &r->call;
	uint32_t status;
	int rc, hrc;

	plat_memset(r, 0, offsetof(struct proto_request, req));
	err->msg[0] = 0;
	srv->requests++;
	call->srv = srv;
	hrc = proto_hdr_decode(frame, len, sess->version, sess->max_body, &r->hdr, err);
	if (hrc < 0 && proto_hdr_error_fatal(hrc)) {
		srv->errors++;
		/* With the id known (the header was parsed), say why. */
		if (hrc == -PLAT_EMSGSIZE || hrc == -PLAT_EPROTO)
			r->status = proto_status_from_errno(hrc);
		return hrc;
	}
	if (r->hdr.flags & PROTO_F_REPLY) {
		plat_snprintf(err->msg, sizeof(err->msg), "a reply frame sent to the server");
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	if (len != PROTO_HDR_SIZE + (size_t)r->hdr.length + tag_len) {
		plat_snprintf(err->msg, sizeof(err->msg), "frame of %zu bytes, header and tag say %zu", len,
			      PROTO_HDR_SIZE + (size_t)r->hdr.length + tag_len);
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	if (proto_session_open_pre(sess, frame, len - tag_len, tag_len ? frame + len - tag_len : NULL, pre) < 0) {
		plat_snprintf(err->msg, sizeof(err->msg), "frame tag does not verify (altered, replayed or forged)");
		srv->errors++;
		return -PLAT_EBADMSG;
	}
	/* From here on the frame is authentic: every refusal is answered. */
	if (tab) {
		if ((rc = proto_reqtab_begin(tab, r->hdr.id)) < 0) {
			plat_snprintf(err->msg, sizeof(err->msg), rc == -PLAT_EBUSY ?
				      "request %u: %u requests already outstanding" :
				      "request id %u is already outstanding", r->hdr.id, tab->n);
			return refuse(srv, r, rc == -PLAT_EBUSY ? PROTO_E_BUSY : PROTO_E_BADMSG);
		}
		r->claimed = true;
	}
	if (hrc == -PLAT_ENOSYS)
		return refuse(srv, r, PROTO_E_BADOP);
	call->opcode = r->hdr.opcode;
	call->read_only = sess->access != PROTO_ACCESS_RW;
	call->anonymous = !sess->keyed;
	call->uid = sess->keyed ? r->hdr.uid : ANON_ID;
	call->gid = sess->keyed ? r->hdr.gid : ANON_ID;
	if (r->hdr.opcode == PROTO_OP_HELLO || r->hdr.opcode == PROTO_OP_AUTH) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s after the handshake", proto_op_name(r->hdr.opcode));
		return refuse(srv, r, PROTO_E_BADMSG);
	}
	PLAT_ASSERT(proto_msg_size(r->hdr.opcode, false) <= sizeof(r->req));
	if ((rc = proto_decode_body(&r->hdr, frame + PROTO_HDR_SIZE, r->hdr.length, r->req, err)) < 0)
		return refuse(srv, r, proto_status_from_errno(rc));
	/* Before the read-only check: an anonymous session is refused for
	 * lacking the secret, which is the reason, not for being read-only. */
	if (call->anonymous && proto_op_keyed_only(r->hdr.opcode)) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s needs the secret: refused on an anonymous session",
			      proto_op_name(r->hdr.opcode));
		return refuse(srv, r, PROTO_E_ACCES);
	}
	if (call->read_only && proto_op_mutates(r->hdr.opcode)) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s on a read-only session", proto_op_name(r->hdr.opcode));
		return refuse(srv, r, PROTO_E_ROFS);
	}
	status = open_handles(srv, &pf_msgs[r->hdr.opcode].req, r->req, call, err);
	if (status != PROTO_OK)
		return refuse(srv, r, status);
	return 0;
}

int proto_server_execute(struct proto_server *srv, const struct proto_session *sess,
			 struct proto_request *r, uint8_t *out, size_t cap, uint8_t *scratch,
			 size_t scratch_cap, struct proto_err *err)
{
	_Alignas(16) uint8_t rep[512];
	struct proto_hdr rh = { .version = sess->version, .opcode = r->hdr.opcode, .id = r->hdr.id,
				.flags = (uint16_t)(PROTO_F_REPLY | proto_session_hdr_flags(sess)) };
	int rc, n;

	r->call.scratch = scratch;
	r->call.scratch_cap = scratch_cap;
	if (!r->status && r->hdr.opcode == PROTO_OP_EXPORTS) {
		plat_memset(rep, 0, sizeof(rep));
		if ((rc = list_exports(srv, r->call.anonymous, &r->call, rep, err)) < 0) {
			plat_log(PLAT_LOG_ERR, "proto: export list: %s", rc == -PLAT_ENOSPC ?
				 "more than the scratch buffer holds" : err->msg);
			srv->errors++;
			r->status = PROTO_E_SERVERFAULT;
		}
	} else if (!r->status && r->hdr.opcode != PROTO_OP_PING) {
		proto_fs_op op = srv->ops->op[r->hdr.opcode];

		PLAT_ASSERT(proto_msg_size(r->hdr.opcode, true) <= sizeof(rep));
		plat_memset(rep, 0, sizeof(rep));
		if (!op)
			r->status = PROTO_E_NOTSUP;
		else if ((rc = op(srv->fs, &r->call, r->req, rep)) < 0)
			r->status = proto_status_from_errno(rc);
		if (r->status)
			srv->errors++;
	}
	if (!r->status) {
		if ((n = proto_encode(out, cap, &rh, rep, 0, err)) >= 0)
			return n;
		plat_log(PLAT_LOG_ERR, "proto: the filesystem's %s reply is invalid: %s",
			 proto_op_name(r->hdr.opcode), err->msg);
		srv->errors++;
		r->status = PROTO_E_SERVERFAULT;
	}
	rh.status = r->status;
	if ((n = proto_encode_error(out, cap, &rh, r->status)) < 0)
		return n;
	out[6] |= (uint8_t)proto_session_hdr_flags(sess);
	return n;
}

int proto_server_handle(struct proto_server *srv, struct proto_session *sess, struct proto_reqtab *tab,
			const uint8_t *frame, size_t len, uint8_t *out, size_t cap, size_t *out_len,
			uint8_t *scratch, size_t scratch_cap, struct proto_err *err)
{
	struct proto_request r;
	int rc, n;

	*out_len = 0;
	rc = proto_server_receive(srv, sess, tab, frame, len, &r, err);
	if (rc < 0 && !r.status)
		return rc;
	n = proto_server_execute(srv, sess, &r, out, cap, scratch, scratch_cap, err);
	if (n >= 0)
		n = proto_session_seal(sess, out, (size_t)n, cap);
	if (r.claimed)
		proto_reqtab_end(tab, r.hdr.id);
	if (n < 0)
		return n;
	*out_len = (size_t)n;
	return rc;
}
