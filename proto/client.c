/*
 * The client core (proto/client.h).
 *
 * Invariant: a reply is accepted only for a request that is outstanding,
 * with the opcode that request had; anything else means the stream is not
 * what we think it is (a confused or hostile server), and nothing of it is
 * used.  Request ids increase and skip ids still outstanding, so an id is
 * never reused while the server may still answer it.
 */
#include "proto/client.h"
#include "platform/platform.h"

void proto_client_init(struct proto_client *c, struct proto_session *sess)
{
	plat_memset(c, 0, sizeof(*c));
	c->sess = sess;
	c->next_id = 1;
}

static int slot_of(const struct proto_client *c, uint32_t id)
{
	for (unsigned i = 0; i < PROTO_MAX_INFLIGHT; i++)
		if (c->out[i].used && c->out[i].id == id)
			return (int)i;
	return -1;
}

int proto_client_request(struct proto_client *c, uint8_t opcode, uint32_t uid, uint32_t gid,
			 const void *req, uint8_t *out, size_t cap, uint32_t *id, struct proto_err *err)
{
	unsigned max = c->sess->max_inflight < PROTO_MAX_INFLIGHT ? c->sess->max_inflight : PROTO_MAX_INFLIGHT;
	struct proto_hdr h = { .version = c->sess->version, .opcode = opcode, .uid = uid, .gid = gid,
			       .flags = proto_session_hdr_flags(c->sess) };
	int slot = -1, n;

	if (c->n >= max) {
		plat_snprintf(err->msg, sizeof(err->msg), "%u requests outstanding, the server allows %u", c->n, max);
		return -PLAT_EBUSY;
	}
	while (slot_of(c, c->next_id) >= 0)
		c->next_id++;
	h.id = c->next_id;
	if ((n = proto_encode(out, cap, &h, req, 0, err)) < 0)
		return n;
	if (cap - (size_t)n < PROTO_TAG_SIZE && c->sess->keyed) {
		plat_snprintf(err->msg, sizeof(err->msg), "no room for the frame tag");
		return -PLAT_EMSGSIZE;
	}
	if ((n = proto_session_seal(c->sess, out, (size_t)n, cap)) < 0)
		return n;
	for (unsigned i = 0; i < PROTO_MAX_INFLIGHT && slot < 0; i++)
		if (!c->out[i].used)
			slot = (int)i;
	c->out[slot].used = true;
	c->out[slot].id = h.id;
	c->out[slot].opcode = opcode;
	c->n++;
	*id = c->next_id++;
	return n;
}

int proto_client_reply(struct proto_client *c, const uint8_t *frame, size_t len,
		       struct proto_client_reply *r, struct proto_err *err)
{
	size_t tag_len = c->sess->keyed ? PROTO_TAG_SIZE : 0;
	int rc, slot;

	err->msg[0] = 0;
	if (len < PROTO_HDR_SIZE + tag_len) {
		plat_snprintf(err->msg, sizeof(err->msg), "reply of %zu bytes is shorter than a header", len);
		return -PLAT_EBADMSG;
	}
	if (proto_session_open(c->sess, frame, len - tag_len, tag_len ? frame + len - tag_len : NULL) < 0) {
		plat_snprintf(err->msg, sizeof(err->msg), "reply tag does not verify: not our server's frame");
		return -PLAT_EBADMSG;
	}
	rc = proto_hdr_decode(frame, len - tag_len, c->sess->version, c->sess->max_body, &r->hdr, err);
	/* An error reply echoes our opcode even if the server did not know it. */
	if (rc == -PLAT_ENOSYS && r->hdr.status && !r->hdr.length)
		rc = 0;
	if (rc < 0)
		return rc;
	if (!(r->hdr.flags & PROTO_F_REPLY) || len - tag_len != PROTO_HDR_SIZE + (size_t)r->hdr.length) {
		plat_snprintf(err->msg, sizeof(err->msg), "not a reply frame, or its length is wrong");
		return -PLAT_EBADMSG;
	}
	if ((slot = slot_of(c, r->hdr.id)) < 0 || c->out[slot].opcode != r->hdr.opcode) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s reply for request %u, which is not outstanding%s",
			      proto_op_name(r->hdr.opcode), r->hdr.id, slot < 0 ? "" : " with that operation");
		return -PLAT_EPROTO;
	}
	if (!r->hdr.status) {
		PLAT_ASSERT(proto_msg_size(r->hdr.opcode, true) <= sizeof(r->msg));
		if ((rc = proto_decode_body(&r->hdr, frame + PROTO_HDR_SIZE, r->hdr.length, r->msg, err)) < 0)
			return rc;
	}
	r->err = proto_status_errno(r->hdr.status);
	if (r->err)
		plat_snprintf(err->msg, sizeof(err->msg), "%s: %s (%s)", proto_op_name(r->hdr.opcode),
			      proto_status_str(r->hdr.status), proto_status_name(r->hdr.status));
	c->out[slot].used = false;
	c->n--;
	return 0;
}

/* ---- unstable writes ------------------------------------------------------------- */
void proto_wlog_init(struct proto_wlog *wl)
{
	wl->n = 0;
}

int proto_wlog_add(struct proto_wlog *wl, const struct proto_handle *fh, uint64_t offset, uint32_t len,
		   const void *data, const struct proto_verf *verf)
{
	struct proto_wlog_entry *e;

	if (wl->n == PROTO_WLOG_MAX)
		return -PLAT_ENOSPC;
	e = &wl->e[wl->n++];
	e->fh = *fh;
	e->offset = offset;
	e->len = len;
	e->data = data;
	e->verf = *verf;
	return 0;
}

int proto_wlog_commit(struct proto_wlog *wl, const struct proto_handle *fh, uint64_t offset,
		      uint64_t count, const struct proto_verf *verf,
		      void (*resend)(void *arg, const struct proto_wlog_entry *e), void *arg)
{
	int handed = 0;
	unsigned i = 0;

	while (i < wl->n) {
		struct proto_wlog_entry *e = &wl->e[i];
		/* within [offset, offset + count), written without overflow */
		bool covered = !plat_memcmp(e->fh.b, fh->b, PROTO_HANDLE_SIZE) && e->offset >= offset &&
			       (count == 0 || (e->offset - offset <= count && e->len <= count - (e->offset - offset)));
		if (!covered) {
			i++;
			continue;
		}
		if (plat_memcmp(e->verf.b, verf->b, PROTO_VERF_SIZE)) {
			handed++;
			resend(arg, e);
		}
		*e = wl->e[--wl->n];    /* the last entry moves here: look at i again */
	}
	return handed;
}
