/*
 * The client core: request ids and the outstanding limit, replies in any
 * order, error replies in words, hostile replies refused, and the log of
 * unstable writes across a verifier change.
 */
#define TEST_SUITE "proto_client"
#include "tests/host/test.h"
#include "proto/client.h"
#include "tests/host/proto_samples.h"

static const uint8_t secret[32] = "client test secret 0123456789abc";
static struct proto_session cs, ss;
static struct proto_client cl;
static uint8_t f[4096];
static struct proto_client_reply rep;
static struct proto_err err;

static void setup(void)
{
	EXPECT_EQ_INT(proto_test_connect(secret, false, 8, &cs, &ss), 0);
	proto_client_init(&cl, &cs);
}

/* The server's side of one request frame: check it, return its id. */
static uint32_t server_reads(const uint8_t *frame, size_t n)
{
	struct proto_hdr h;
	EXPECT_EQ_INT(proto_session_open(&ss, frame, n - 16, frame + n - 16), 0);
	EXPECT_EQ_INT(proto_hdr_decode(frame, n - 16, PROTO_VERSION_MAX, PROTO_MAX_BODY, &h, &err), 0);
	return h.id;
}

/* A sealed reply from the server: status, or the message when 0. */
static size_t server_replies(uint8_t op, uint32_t id, uint32_t status, const void *msg)
{
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = op, .id = id, .status = status,
			       .flags = PROTO_F_REPLY | PROTO_F_TAGGED };
	int n = proto_encode(f, sizeof(f), &h, msg, 0, &err);
	EXPECT(n > 0);
	n = proto_session_seal(&ss, f, (size_t)n, sizeof(f));
	EXPECT(n > 0);
	return (size_t)n;
}

static uint32_t send_getattr(int ino)
{
	struct proto_fh_req q;
	uint32_t id = 0;
	memset(&q, ino, sizeof(q));
	int n = proto_client_request(&cl, PROTO_OP_GETATTR, 0, 0, &q, f, sizeof(f), &id, &err);
	EXPECT(n > 0);
	if (n > 0)
		EXPECT_EQ_INT(server_reads(f, (size_t)n), id);
	return id;
}

TEST(ids_and_outstanding_limit)
{
	uint32_t ids[8], id;
	struct proto_fh_req q = { { { 0 } } };

	setup();
	EXPECT_EQ_INT(cs.max_inflight, 8);
	for (int i = 0; i < 8; i++) {
		ids[i] = send_getattr(i);
		if (i)
			EXPECT(ids[i] > ids[i - 1]);
	}
	EXPECT_EQ_INT(proto_client_request(&cl, PROTO_OP_GETATTR, 0, 0, &q, f, sizeof(f), &id, &err),
		      -PLAT_EBUSY);
	EXPECT(strstr(err.msg, "8 requests outstanding") != NULL);
	struct proto_getattr_rep a = { .attr = { .type = PROTO_T_REG, .size = 5 } };
	EXPECT_EQ_INT(proto_client_reply(&cl, f, server_replies(PROTO_OP_GETATTR, ids[2], 0, &a), &rep, &err), 0);
	EXPECT_EQ_INT(cl.n, 7);
	/* an id still outstanding is skipped when the counter comes round */
	cl.next_id = ids[3];
	id = send_getattr(9);
	EXPECT(id != ids[3] && id != ids[4]);
	EXPECT_EQ_INT(id, ids[7] + 1);
}

TEST(replies_in_any_order)
{
	uint32_t ids[3];

	setup();
	for (int i = 0; i < 3; i++)
		ids[i] = send_getattr(i);
	for (int i = 2; i >= 0; i--) {
		struct proto_getattr_rep a = { .attr = { .type = PROTO_T_REG, .size = 100 + (uint64_t)i } };
		size_t n = server_replies(PROTO_OP_GETATTR, ids[i], 0, &a);
		EXPECT_EQ_INT(proto_client_reply(&cl, f, n, &rep, &err), 0);
		EXPECT_EQ_INT(rep.hdr.id, ids[i]);
		EXPECT_EQ_INT(rep.err, 0);
		EXPECT_EQ_INT(((struct proto_getattr_rep *)rep.msg)->attr.size, 100 + i);
	}
	EXPECT_EQ_INT(cl.n, 0);
}

TEST(error_replies_in_words)
{
	setup();
	uint32_t id = send_getattr(1);
	EXPECT_EQ_INT(proto_client_reply(&cl, f, server_replies(PROTO_OP_GETATTR, id, PROTO_E_STALE, NULL),
					 &rep, &err), 0);
	EXPECT_EQ_INT(rep.err, -PLAT_ESTALE);
	EXPECT(strstr(err.msg, "GETATTR: the file of this handle is gone (STALE)") != NULL);
	EXPECT_EQ_INT(cl.n, 0);
}

TEST(hostile_replies_refused)
{
	struct proto_getattr_rep a = { .attr = { .type = PROTO_T_REG } };
	size_t n;

	setup();
	uint32_t id = send_getattr(1);
	/* a reply to a request never sent */
	n = server_replies(PROTO_OP_GETATTR, id + 100, 0, &a);
	EXPECT_EQ_INT(proto_client_reply(&cl, f, n, &rep, &err), -PLAT_EPROTO);
	EXPECT(strstr(err.msg, "not outstanding") != NULL);
	/* the right id, another operation */
	setup();
	id = send_getattr(1);
	struct proto_seek_rep sk = { 5 };
	n = server_replies(PROTO_OP_SEEK, id, 0, &sk);
	EXPECT_EQ_INT(proto_client_reply(&cl, f, n, &rep, &err), -PLAT_EPROTO);
	EXPECT(strstr(err.msg, "with that operation") != NULL);
	/* altered */
	setup();
	id = send_getattr(1);
	n = server_replies(PROTO_OP_GETATTR, id, 0, &a);
	f[40] ^= 1;
	EXPECT_EQ_INT(proto_client_reply(&cl, f, n, &rep, &err), -PLAT_EBADMSG);
	EXPECT(strstr(err.msg, "tag") != NULL);
	EXPECT_EQ_INT(cl.n, 1);                 /* still outstanding: nothing was accepted */
	/* a malformed body (tag valid: a broken server) */
	setup();
	id = send_getattr(1);
	a.attr.type = PROTO_T_REG;
	struct proto_hdr h = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_GETATTR, .id = id,
			       .flags = PROTO_F_REPLY | PROTO_F_TAGGED };
	int m = proto_encode(f, sizeof(f), &h, &a, 0, &err);
	f[32] = 9;                              /* attr.type */
	m = proto_session_seal(&ss, f, (size_t)m, sizeof(f));
	EXPECT_EQ_INT(proto_client_reply(&cl, f, (size_t)m, &rep, &err), -PLAT_EBADMSG);
	/* a request frame where a reply belongs */
	setup();
	id = send_getattr(1);
	struct proto_hdr q = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_PING, .id = id, .flags = PROTO_F_TAGGED };
	m = proto_encode(f, sizeof(f), &q, NULL, 0, &err);
	m = proto_session_seal(&ss, f, (size_t)m, sizeof(f));
	EXPECT_EQ_INT(proto_client_reply(&cl, f, (size_t)m, &rep, &err), -PLAT_EBADMSG);
	EXPECT_EQ_INT(proto_client_reply(&cl, f, 10, &rep, &err), -PLAT_EBADMSG);
}

TEST(bad_requests_cost_nothing)
{
	struct proto_dirop_req q = { .name = { "..", 2 } };
	uint32_t id;

	setup();
	EXPECT_EQ_INT(proto_client_request(&cl, PROTO_OP_LOOKUP, 0, 0, &q, f, sizeof(f), &id, &err),
		      -PLAT_EINVAL);
	EXPECT(strstr(err.msg, "LOOKUP request, field name") != NULL);
	EXPECT_EQ_INT(cl.n, 0);
	EXPECT_EQ_INT(cs.seq_send, 0);          /* nothing sealed: the stream is unaffected */
	EXPECT_EQ_INT(proto_client_request(&cl, PROTO_OP_GETATTR, 0, 0, &q, f, 40, &id, &err), -PLAT_EMSGSIZE);
	EXPECT_EQ_INT(cl.n, 0);
}

struct resent { unsigned n; uint64_t off[8]; const void *data[8]; };
static void resend(void *arg, const struct proto_wlog_entry *e)
{
	struct resent *r = arg;
	r->off[r->n] = e->offset;
	r->data[r->n++] = e->data;
}

TEST(unstable_writes_and_verifier_change)
{
	static struct proto_wlog wl;
	struct proto_handle a, b;
	struct proto_verf v1 = { "verf-one" }, v2 = { "verf-two" };
	struct resent r = { 0 };
	static const char d0[10], d1[10], d2[10];

	memset(a.b, 0xaa, sizeof(a.b));
	memset(b.b, 0xbb, sizeof(b.b));
	proto_wlog_init(&wl);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 0, 10, d0, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 10, 10, d1, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &b, 0, 10, d2, &v1), 0);
	/* same server instance: committed, nothing to resend; b untouched */
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 0, 0, &v1, resend, &r), 0);
	EXPECT_EQ_INT(wl.n, 1);
	EXPECT(!memcmp(wl.e[0].fh.b, b.b, PROTO_HANDLE_SIZE));

	/* the server restarted between the writes and the commit */
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 0, 10, d0, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 10, 10, d1, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 20, 10, d2, &v2), 0);   /* after the restart */
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 0, 0, &v2, resend, &r), 2);
	EXPECT_EQ_INT(r.n, 2);
	EXPECT((r.off[0] == 0 && r.off[1] == 10 && r.data[0] == d0 && r.data[1] == d1) ||
	       (r.off[0] == 10 && r.off[1] == 0 && r.data[0] == d1 && r.data[1] == d0));
	EXPECT_EQ_INT(wl.n, 1);                 /* only b's */

	/* ranges: partly covered stays; a count that would overflow works */
	proto_wlog_init(&wl);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 5, 10, d0, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 0, 10, &v1, resend, &r), 0);
	EXPECT_EQ_INT(wl.n, 1);
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 5, UINT64_MAX, &v1, resend, &r), 0);
	EXPECT_EQ_INT(wl.n, 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 1000, 10, d0, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 0, 1005, &v1, resend, &r), 0);
	EXPECT_EQ_INT(wl.n, 1);
	EXPECT_EQ_INT(proto_wlog_commit(&wl, &a, 0, 1010, &v1, resend, &r), 0);
	EXPECT_EQ_INT(wl.n, 0);
	for (int i = 0; i < PROTO_WLOG_MAX; i++)
		EXPECT_EQ_INT(proto_wlog_add(&wl, &a, (uint64_t)i * 10, 10, d0, &v1), 0);
	EXPECT_EQ_INT(proto_wlog_add(&wl, &a, 0, 1, d0, &v1), -PLAT_ENOSPC);
}

TEST_MAIN()
