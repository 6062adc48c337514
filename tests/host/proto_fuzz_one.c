/*
 * The fuzz oracle (proto_samples.h).  Properties checked on every input:
 *   - the decoder never reads outside the input (ASan) and never crashes;
 *   - an accepted frame re-encodes to exactly the same bytes, so the
 *     encoder and decoder agree on every accepted input, and every list in
 *     it walks to its declared count;
 *   - a server handshake fed the input either refuses it or answers a
 *     decodable HELLO reply, and never completes authentication (the
 *     fuzzer does not know the secret);
 *   - no input opens as a file handle (the fuzzer does not know the key);
 *   - a client with requests of every opcode outstanding accepts a frame
 *     only as the reply to one of them (releasing exactly that one);
 *   - the server core answers every frame with a reply the client decodes,
 *     or closes; a filesystem operation is only ever called with handles
 *     that verify, as many as the request has.
 */
#include "tests/host/proto_samples.h"
#include "proto/codec_int.h"
#include "proto/auth.h"
#include "proto/handle.h"
#include "proto/server.h"
#include "proto/client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void violated(const char *what, const char *detail)
{
	fprintf(stderr, "proto fuzz: property violated: %s (%s)\n", what, detail);
	abort();
}

static void walk_lists(const struct pf_layout *l, const uint8_t *msg)
{
	for (unsigned i = 0; i < l->n; i++) {
		const struct pf_field *f = &l->f[i];
		if (f->type == PF_LIST) {
			const struct proto_list *list = (const void *)(msg + f->off);
			_Alignas(16) uint8_t elem[256];
			uint32_t pos = 0, n = 0;
			int rc;
			while ((rc = proto_list_next(list, f->lim, &pos, elem)) == 1)
				n++;
			if (rc < 0 || n != list->count)
				violated("a decoded list does not walk to its count", f->name);
		}
	}
}

static void check_codec(const uint8_t *data, size_t len)
{
	static _Alignas(16) uint8_t msg[SAMPLE_MSG_MAX];
	static uint8_t again[PROTO_HDR_SIZE + PROTO_MAX_BODY];
	struct proto_hdr h, h2;
	struct proto_err err;
	const struct pf_layout *l;
	int n;

	/* HELLO frames carry version 1, everything else the negotiated one */
	uint8_t version = len > 4 && data[4] == PROTO_HELLO_VERSION ? PROTO_HELLO_VERSION : PROTO_VERSION_MAX;
	if (proto_hdr_decode(data, len, version, PROTO_MAX_BODY, &h, &err) < 0)
		return;
	if (len - PROTO_HDR_SIZE < h.length)
		return;                 /* the transport would wait for more */
	if (proto_decode_body(&h, data + PROTO_HDR_SIZE, h.length, msg, &err) < 0)
		return;
	h2 = h;
	n = proto_encode(again, sizeof(again), &h2, msg, 0, &err);
	if (n < 0)
		violated("an accepted frame does not re-encode", err.msg);
	if ((size_t)n != PROTO_HDR_SIZE + h.length || memcmp(again, data, (size_t)n))
		violated("re-encoding differs from the accepted frame", proto_op_name(h.opcode));
	l = h.flags & PROTO_F_REPLY ? &pf_msgs[h.opcode].rep : &pf_msgs[h.opcode].req;
	if (!(h.flags & PROTO_F_REPLY) || !h.status)
		walk_lists(l, msg);
}

static void check_handshake(const uint8_t *data, size_t len)
{
	static const uint8_t psk[32] = "fuzz secret fuzz secret fuzz se";
	static const uint8_t nonce[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct proto_server_cfg cfg = { psk, sizeof(psk), true, PROTO_MAX_BODY, 64, 7, NULL };
	struct proto_auth_server s;
	struct proto_session sess;
	uint8_t out[2048];
	size_t out_len;
	int rc;

	proto_auths_init(&s, &cfg, nonce, 1, 0, &sess);
	rc = proto_auths_step(&s, data, len, out, sizeof(out), &out_len);
	if (rc == 0) {
		struct proto_hdr h;
		struct proto_hello_rep r;
		struct proto_err err;
		if (proto_hdr_decode(out, out_len, PROTO_HELLO_VERSION, PROTO_MAX_BODY, &h, &err) < 0 ||
		    proto_decode_body(&h, out + PROTO_HDR_SIZE, h.length, &r, &err) < 0)
			violated("server HELLO reply does not decode", err.msg);
		/* the same bytes as AUTH: must be refused (no secret known),
		 * unless the input asked for anonymous access, which is
		 * allowed here and carries no proof. */
		rc = proto_auths_step(&s, data, len, out, sizeof(out), &out_len);
		if (rc == 0 && sess.keyed)
			violated("authenticated without the secret", "");
	}
}

const char proto_fuzz_handle_key[33] = "fuzz server handle key, 32 bytes";
static struct proto_server fsrv;
static struct sample reply_sample;     /* the fuzzed server's replies point into it */
unsigned long proto_fuzz_fs_calls, proto_fuzz_client_accepts;

/* The filesystem behind the fuzzed server: checks what it is given, then
 * fails (odd opcodes) or returns a valid random reply (even ones). */
static int fuzz_op(void *fs, struct proto_call *c, const void *req, void *rep)
{
	const struct pf_layout *l = &pf_msgs[c->opcode].req;
	unsigned handles = 0;

	(void)fs; (void)rep;
	for (unsigned i = 0; i < l->n; i++) {
		struct proto_fh fh;
		if (l->f[i].type != PF_HANDLE)
			continue;
		if (proto_handle_open(&fsrv.hkey, (const void *)((const uint8_t *)req + l->f[i].off), &fh) < 0 ||
		    fh.ino != c->fh[handles].ino || fh.gen != c->fh[handles].gen)
			violated("an operation got a handle that does not verify", l->f[i].name);
		handles++;
	}
	if (handles != c->nfh)
		violated("an operation got the wrong number of handles", proto_op_name(c->opcode));
	proto_fuzz_fs_calls++;
	if (c->opcode & 1)
		return -PLAT_ENOENT;
	sample_fill(&reply_sample, c->opcode, true, c->fh[0].ino);
	memcpy(rep, reply_sample.msg, proto_msg_size(c->opcode, true));
	return 0;
}

static void check_server(const uint8_t *data, size_t len)
{
	static struct proto_fs_ops ops;
	static uint8_t out[PROTO_HDR_SIZE + 65536], scratch[4096];
	static _Alignas(16) uint8_t msg[SAMPLE_MSG_MAX];
	struct proto_session sess = { .access = PROTO_ACCESS_RW, .version = PROTO_VERSION_MAX, .max_body = 65536,
				      .max_inflight = 8 };
	struct proto_hdr h;
	struct proto_err err;
	size_t out_len;

	if (!ops.op[PROTO_OP_GETATTR]) {
		for (unsigned op = 0; op < PROTO_OP_LIMIT; op++)
			ops.op[op] = fuzz_op;
		static const struct proto_export_cfg exp[] = { { "fuzz", 1, 1, 1, 0, PROTO_EXP_ANON } };
		proto_server_init(&fsrv, &ops, NULL, proto_fuzz_handle_key, 32);
		proto_server_set_exports(&fsrv, exp, 1);
	}
	struct proto_reqtab tab;

	proto_reqtab_init(&tab, 8);
	proto_server_handle(&fsrv, &sess, &tab, data, len, out, sizeof(out), &out_len, scratch, sizeof(scratch), &err);
	if (tab.n)
		violated("a request id stays claimed after its reply", "");
	if (!out_len)
		return;
	int rc = proto_hdr_decode(out, out_len, PROTO_VERSION_MAX, 65536, &h, &err);
	/* An error reply echoes the request's opcode, known or not. */
	if (rc == -PLAT_ENOSYS && h.status && !h.length && out_len == PROTO_HDR_SIZE)
		return;
	if (rc < 0 || !(h.flags & PROTO_F_REPLY) || out_len != PROTO_HDR_SIZE + h.length ||
	    proto_decode_body(&h, out + PROTO_HDR_SIZE, h.length, msg, &err) < 0)
		violated("the server's reply does not decode", err.msg);
}

static void check_handle(const uint8_t *data, size_t len)
{
	static struct proto_handle_key key;
	static bool init;
	struct proto_handle h;
	struct proto_fh fh;

	if (!init) {
		proto_handle_key_init(&key, "fuzz handle key: 32 bytes long..", 32);
		init = true;
	}
	if (len < PROTO_HANDLE_SIZE)
		return;
	memcpy(h.b, data, PROTO_HANDLE_SIZE);
	if (proto_handle_open(&key, &h, &fh) == 0)
		violated("a handle opened without the key", "");
}

static void check_client(const uint8_t *data, size_t len)
{
	static struct proto_client_reply rep;
	struct proto_session sess = { .access = PROTO_ACCESS_RW, .version = PROTO_VERSION_MAX, .max_body = PROTO_MAX_BODY,
				      .max_inflight = PROTO_MAX_INFLIGHT };
	struct proto_client c;
	struct proto_err err;
	unsigned sent = 0;

	/* one outstanding request per opcode, with the opcode as its id
	 * (reply seeds carry that id), filled in as proto_client_request
	 * would have */
	proto_client_init(&c, &sess);
	for (unsigned op = 0; op < PROTO_OP_LIMIT && sent < PROTO_MAX_INFLIGHT; op++) {
		if (!proto_op_known(op))
			continue;
		c.out[sent].used = true;
		c.out[sent].id = op;
		c.out[sent].opcode = (uint8_t)op;
		sent++;
	}
	c.n = sent;
	c.next_id = PROTO_OP_LIMIT;
	if (proto_client_reply(&c, data, len, &rep, &err) == 0) {
		if (c.n != sent - 1 || rep.hdr.id != rep.hdr.opcode)
			violated("the client accepted a reply it did not match", proto_op_name(rep.hdr.opcode));
		for (unsigned i = 0; i < sent; i++)
			if (c.out[i].used == (c.out[i].id == rep.hdr.id))
				violated("the client released the wrong request", proto_op_name(rep.hdr.opcode));
		proto_fuzz_client_accepts++;
	} else if (c.n != sent) {
		violated("the client released a request for a refused reply", err.msg);
	}
}

void proto_fuzz_one(const uint8_t *data, size_t len)
{
	check_codec(data, len);
	check_handshake(data, len);
	check_handle(data, len);
	check_server(data, len);
	check_client(data, len);
}
