/*
 * The handshake, frame tags, the failed-authentication rate limit and file
 * handles: success, wrong secret, replayed and tampered messages, version
 * negotiation, anonymous access, operations before authentication, forged
 * handles.
 */
#define TEST_SUITE "proto_auth"
#include "tests/host/test.h"
#include "proto/auth.h"
#include "proto/handle.h"

#define SEC 1000000000ull
#define EXPECT_CONTAINS(s, sub) \
	do { if (!strstr((s), (sub))) { char m_[400]; snprintf(m_, sizeof(m_), "\"%s\" lacks \"%s\"", (s), (sub)); \
	     test_fail_at(__FILE__, __LINE__, m_); } } while (0)

static const uint8_t secret[32] = "0123456789abcdef0123456789abcde";
static const uint8_t other_secret[32] = "0123456789abcdef0123456789abcdX";

struct conn {
	struct proto_auth_client c;
	struct proto_auth_server s;
	struct proto_session cs, ss;
	uint8_t hello[2048], hello_rep[2048], auth[2048], auth_rep[2048];
	size_t hello_len, hello_rep_len, auth_len, auth_rep_len;
	int crc, src;           /* first failure of each side */
};

static uint8_t nonce_seq;

static void fresh_nonce(uint8_t n[32])
{
	nonce_seq++;
	for (int i = 0; i < 32; i++)
		n[i] = (uint8_t)(nonce_seq * 37 + i * 11 + 1);
}

static struct proto_client_cfg client_cfg(const uint8_t *psk, bool anon)
{
	struct proto_client_cfg c = { psk, psk ? 32 : 0, "test-client", anon, PROTO_MAX_BODY, 64 };
	return c;
}

static struct proto_server_cfg server_cfg(const uint8_t *psk, bool anon_ok, struct proto_ratelimit *rl)
{
	struct proto_server_cfg s = { psk, psk ? 32 : 0, anon_ok, PROTO_MAX_BODY, 32, 0xb007, rl };
	return s;
}

static void conn_init(struct conn *k, const struct proto_client_cfg *cc, const struct proto_server_cfg *sc,
		      uint64_t peer, uint64_t now)
{
	uint8_t n1[32], n2[32];

	memset(k, 0, sizeof(*k));
	fresh_nonce(n1);
	fresh_nonce(n2);
	proto_authc_init(&k->c, cc, n1, &k->cs);
	proto_auths_init(&k->s, sc, n2, peer, now, &k->ss);
}

/* The four messages in order, stopping at the first failure. */
static void run(struct conn *k)
{
	k->crc = proto_authc_step(&k->c, NULL, 0, k->hello, sizeof(k->hello), &k->hello_len);
	if (k->crc)
		return;
	k->src = proto_auths_step(&k->s, k->hello, k->hello_len, k->hello_rep, sizeof(k->hello_rep),
				  &k->hello_rep_len);
	if (k->hello_rep_len)
		k->crc = proto_authc_step(&k->c, k->hello_rep, k->hello_rep_len, k->auth, sizeof(k->auth),
					  &k->auth_len);
	if (k->src || k->crc)
		return;
	k->src = proto_auths_step(&k->s, k->auth, k->auth_len, k->auth_rep, sizeof(k->auth_rep),
				  &k->auth_rep_len);
	if (k->auth_rep_len)
		k->crc = proto_authc_step(&k->c, k->auth_rep, k->auth_rep_len, NULL, 0, &(size_t){ 0 });
}

/* Only the HELLO exchange, so a test can meddle before AUTH. */
static void hello_exchange(struct conn *k, const struct proto_client_cfg *cc, const struct proto_server_cfg *sc)
{
	conn_init(k, cc, sc, 1, 0);
	EXPECT_EQ_INT(proto_authc_step(&k->c, NULL, 0, k->hello, sizeof(k->hello), &k->hello_len), 0);
	EXPECT_EQ_INT(proto_auths_step(&k->s, k->hello, k->hello_len, k->hello_rep, sizeof(k->hello_rep),
				       &k->hello_rep_len), 0);
}

static int handshake(struct conn *k, const uint8_t *cpsk, const uint8_t *spsk, struct proto_ratelimit *rl,
		     uint64_t peer, uint64_t now)
{
	struct proto_client_cfg cc = client_cfg(cpsk, false);
	struct proto_server_cfg sc = server_cfg(spsk, false, rl);
	conn_init(k, &cc, &sc, peer, now);
	run(k);
	return k->src ? k->src : k->crc;
}

/* A PING request sealed by one session, opened by the other. */
static size_t seal_ping(struct proto_session *from, uint8_t *buf, size_t cap, uint32_t id, bool reply)
{
	struct proto_hdr h = { .version = from->version, .opcode = PROTO_OP_PING, .id = id,
			       .flags = (uint16_t)(proto_session_hdr_flags(from) | (reply ? PROTO_F_REPLY : 0)) };
	struct proto_err err;
	int n = proto_encode(buf, cap, &h, NULL, 0, &err);
	EXPECT(n > 0);
	n = proto_session_seal(from, buf, (size_t)n, cap);
	EXPECT(n > 0);
	return (size_t)n;
}

static int open_frame(struct proto_session *to, const uint8_t *buf, size_t n)
{
	size_t tag = to->keyed ? PROTO_TAG_SIZE : 0;
	return proto_session_open(to, buf, n - tag, tag ? buf + n - tag : NULL);
}

TEST(handshake_and_tagged_frames)
{
	struct conn k;
	uint8_t f[128];
	size_t n;

	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	EXPECT_EQ_INT(k.c.state, PROTO_AUTH_DONE);
	EXPECT_EQ_INT(k.s.state, PROTO_AUTH_DONE);
	EXPECT(k.cs.keyed && k.ss.keyed);
	EXPECT_EQ_INT(k.cs.access, PROTO_ACCESS_RW);
	EXPECT_EQ_INT(k.cs.version, PROTO_VERSION_MAX);
	EXPECT_EQ_INT(k.cs.max_body, PROTO_MAX_BODY);
	EXPECT_EQ_INT(k.cs.max_inflight, 32);       /* the smaller of 64 and 32 */
	EXPECT_EQ_INT(k.ss.max_inflight, 32);
	EXPECT_EQ_INT(k.cs.boot_id, 0xb007);
	for (uint32_t i = 0; i < 3; i++) {
		n = seal_ping(&k.cs, f, sizeof(f), i, false);
		EXPECT_EQ_INT(n, 32 + 16);
		EXPECT_EQ_INT(open_frame(&k.ss, f, n), 0);
		n = seal_ping(&k.ss, f, sizeof(f), i, true);
		EXPECT_EQ_INT(open_frame(&k.cs, f, n), 0);
	}
	EXPECT_EQ_INT(k.cs.seq_send, 3);
	EXPECT_EQ_INT(k.ss.seq_recv, 3);
}

TEST(frame_tag_attacks)
{
	struct conn k;
	uint8_t a[128], b[128], c[128];
	size_t na, nb, nc;

	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	na = seal_ping(&k.cs, a, sizeof(a), 1, false);
	nb = seal_ping(&k.cs, b, sizeof(b), 2, false);
	/* reordered: b before a */
	EXPECT_EQ_INT(open_frame(&k.ss, b, nb), -PLAT_EBADMSG);
	EXPECT_EQ_INT(open_frame(&k.ss, a, na), 0);
	/* replayed: a again */
	EXPECT_EQ_INT(open_frame(&k.ss, a, na), -PLAT_EBADMSG);
	EXPECT_EQ_INT(open_frame(&k.ss, b, nb), 0);
	/* altered: any byte of header or tag */
	for (size_t i = 0; i < 48; i++) {
		nc = seal_ping(&k.cs, c, sizeof(c), 3, false);
		c[i] ^= 0x20;
		EXPECT_EQ_INT(open_frame(&k.ss, c, nc), -PLAT_EBADMSG);
		c[i] ^= 0x20;
		EXPECT_EQ_INT(open_frame(&k.ss, c, nc), 0);
	}
	/* reflected: the client's own frame back to the client */
	nc = seal_ping(&k.cs, c, sizeof(c), 4, false);
	EXPECT_EQ_INT(open_frame(&k.cs, c, nc), -PLAT_EBADMSG);
	/* untagged frame on a keyed session */
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_PING };
	struct proto_err err;
	EXPECT_EQ_INT(proto_encode(c, sizeof(c), &h, NULL, 0, &err), 32);
	EXPECT_EQ_INT(proto_session_open(&k.ss, c, 32, NULL), -PLAT_EBADMSG);
	/* a frame of another session with the same secret */
	struct conn k2;
	EXPECT_EQ_INT(handshake(&k2, secret, secret, NULL, 1, 0), 0);
	nc = seal_ping(&k2.cs, c, sizeof(c), 1, false);
	EXPECT_EQ_INT(open_frame(&k.ss, c, nc), -PLAT_EBADMSG);
	/* sealing a header that does not announce the tag is refused */
	EXPECT_EQ_INT(proto_encode(c, sizeof(c), &h, NULL, 0, &err), 32);
	EXPECT_EQ_INT(proto_session_seal(&k.cs, c, 32, sizeof(c)), -PLAT_EINVAL);
	EXPECT_EQ_INT(proto_session_seal(&k.cs, c, 32, 40), -PLAT_EMSGSIZE);
}

/* The tag is Poly1305 (RFC 8439) under the one-time key of the ChaCha20
 * block of the direction's key with nonce = direction || seq, over header
 * and body (docs/protocol.md §3.4): recomputed here from the primitives. */
TEST(frame_tag_construction)
{
	struct conn k;
	uint8_t f[128], nonce[12] = { 0 }, otk[32], want[16];
	struct proto_poly1305 p;
	size_t n;

	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	EXPECT(memcmp(k.cs.k_send, k.ss.k_recv, 32) == 0);
	EXPECT(memcmp(k.cs.k_send, k.cs.k_recv, 32) != 0);
	EXPECT_EQ_INT(k.cs.dir_send, PROTO_DIR_C2S);
	EXPECT_EQ_INT(k.ss.dir_send, PROTO_DIR_S2C);
	for (uint64_t seq = 0; seq < 3; seq++) {
		n = seal_ping(&k.ss, f, sizeof(f), 9, true);
		nonce[0] = PROTO_DIR_S2C;
		for (int i = 0; i < 8; i++)
			nonce[4 + i] = (uint8_t)(seq >> (8 * i));
		proto_poly1305_keygen(k.ss.k_send, nonce, otk);
		proto_poly1305_init(&p, otk);
		proto_poly1305_update(&p, f, n - 16);
		proto_poly1305_final(&p, want);
		EXPECT(memcmp(f + n - 16, want, 16) == 0);
		EXPECT_EQ_INT(open_frame(&k.cs, f, n), 0);
	}
	/* the same key with the other direction's nonce is another tag */
	n = seal_ping(&k.ss, f, sizeof(f), 9, true);
	nonce[0] = PROTO_DIR_C2S;
	nonce[4] = 3;
	proto_poly1305_keygen(k.ss.k_send, nonce, otk);
	proto_poly1305_init(&p, otk);
	proto_poly1305_update(&p, f, n - 16);
	proto_poly1305_final(&p, want);
	EXPECT(memcmp(f + n - 16, want, 16) != 0);
}

/* The tag over header + encoded prefix + separately sent data equals the
 * tag over the whole frame (zero-copy senders). */
TEST(tag_over_pieces)
{
	struct conn k;
	static uint8_t whole[4096], pre[4096];
	uint8_t data[1000], tag[16];
	struct proto_err err;

	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	memset(data, 0x42, sizeof(data));
	struct proto_write_req w = { .data = { data, sizeof(data) } };
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_WRITE, .flags = PROTO_F_TAGGED }, h2 = h;
	int p = proto_encode(pre, sizeof(pre), &h, &w, PROTO_ENC_NODATA, &err);
	int n = proto_encode(whole, sizeof(whole), &h2, &w, 0, &err);
	EXPECT_EQ_INT(proto_session_tag(&k.cs, pre, (size_t)p, data, sizeof(data), tag), 0);
	memcpy(whole + n, tag, 16);
	EXPECT_EQ_INT(proto_session_open(&k.ss, whole, (size_t)n, whole + n), 0);
}

/* The tag computed while a frame is copied in (proto_rxtag, pieces of
 * every size) stands for the tag check only for the sequence number,
 * session and length it was made for; otherwise the check is done again,
 * so a stale or misplaced result never lets a frame through or refuses a
 * good one. */
static void rxtag_over(struct proto_rxtag *t, const struct proto_session *s, uint64_t seq, const uint8_t *f,
		       size_t n, size_t piece)
{
	proto_rxtag_begin(t, s, seq);
	for (size_t at = 0; at < n; at += piece)
		proto_rxtag_update(t, f + at, at + piece < n ? piece : n - at);
	proto_rxtag_end(t);
}

TEST(tag_computed_while_copied)
{
	struct conn k, k2;
	static uint8_t f[4096];
	uint8_t data[3000];
	struct proto_rxtag t;
	struct proto_err err;

	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	EXPECT_EQ_INT(handshake(&k2, secret, secret, NULL, 1, 0), 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	struct proto_write_req w = { .data = { data, sizeof(data) } };
	for (size_t piece = 1; piece < 4000; piece = piece * 3 + 1) {
		struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_WRITE, .flags = PROTO_F_TAGGED };
		int n = proto_encode(f, sizeof(f), &h, &w, 0, &err);
		EXPECT(n > 0);
		n = proto_session_seal(&k.cs, f, (size_t)n, sizeof(f));
		size_t body = (size_t)n - 16;
		uint64_t seq = k.ss.seq_recv;
		rxtag_over(&t, &k.ss, seq, f, body, piece);
		EXPECT(t.done);
		EXPECT(memcmp(t.tag, f + body, 16) == 0);
		/* the frame altered after the tag was computed: the check
		 * still compares against the frame's own tag */
		uint8_t good[16];
		memcpy(good, f + body, 16);
		f[body + 3] ^= 1;
		EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, body, f + body, &t), -PLAT_EBADMSG);
		f[body + 3] ^= 1;
		/* made for the next sequence number, another session or
		 * another length: not used, the tag is computed again */
		struct proto_rxtag other;
		rxtag_over(&other, &k.ss, seq + 1, f, body, piece);
		EXPECT(memcmp(other.tag, good, 16) != 0);
		EXPECT_EQ_INT(k.ss.seq_recv, seq);
		struct proto_rxtag wrongsess;
		rxtag_over(&wrongsess, &k2.ss, seq, f, body, piece);
		EXPECT(memcmp(wrongsess.tag, good, 16) != 0);
		struct proto_rxtag shorter;
		rxtag_over(&shorter, &k.ss, seq, f, body - 1, piece);
		/* a result made for the right frame is used: it matches */
		EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, body, f + body, &t), 0);
		EXPECT_EQ_INT(k.ss.seq_recv, seq + 1);
		/* the next frame, checked through results that do not apply:
		 * each is refused as a stand-in and the frame accepted */
		n = proto_encode(f, sizeof(f), &h, &w, 0, &err);
		n = proto_session_seal(&k.cs, f, (size_t)n, sizeof(f));
		body = (size_t)n - 16;
		struct proto_rxtag *bad[] = { &other, &wrongsess, &shorter };
		rxtag_over(&other, &k.ss, seq + 2, f, body, piece);        /* one ahead of seq + 1 */
		rxtag_over(&wrongsess, &k2.ss, seq + 1, f, body, piece);
		rxtag_over(&shorter, &k.ss, seq + 1, f, body - 1, piece);
		for (unsigned i = 0; i < 3; i++) {
			EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, body, f + body, bad[i]), 0);
			k.ss.seq_recv = seq + 1;
		}
		EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, body, f + body, NULL), 0);
	}
	/* unfinished: not used */
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_WRITE, .flags = PROTO_F_TAGGED };
	int n = proto_encode(f, sizeof(f), &h, &w, 0, &err);
	n = proto_session_seal(&k.cs, f, (size_t)n, sizeof(f));
	proto_rxtag_begin(&t, &k.ss, k.ss.seq_recv);
	proto_rxtag_update(&t, f, (size_t)n - 16);      /* all fed, never ended */
	f[(size_t)n - 1] ^= 1;
	EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, (size_t)n - 16, f + n - 16, &t), -PLAT_EBADMSG);
	f[(size_t)n - 1] ^= 1;
	EXPECT_EQ_INT(proto_session_open_pre(&k.ss, f, (size_t)n - 16, f + n - 16, &t), 0);
}

TEST(wrong_secret_refused)
{
	struct conn k;
	struct proto_hdr h;
	struct proto_err err;

	EXPECT_EQ_INT(handshake(&k, other_secret, secret, NULL, 1, 0), -PLAT_EACCES);
	EXPECT_EQ_INT(k.s.state, PROTO_AUTH_FAILED);
	EXPECT_EQ_INT(k.c.state, PROTO_AUTH_FAILED);
	EXPECT_CONTAINS(k.s.err.msg, "wrong secret");
	EXPECT_CONTAINS(k.c.err.msg, "authentication failed");
	EXPECT(!k.ss.keyed && !k.cs.keyed);
	/* the refusal carries nothing but the status: no server proof */
	EXPECT_EQ_INT(k.auth_rep_len, 32);
	EXPECT_EQ_INT(proto_hdr_decode(k.auth_rep, 32, PROTO_VERSION_MAX, 1024, &h, &err), 0);
	EXPECT_EQ_INT(h.status, PROTO_E_AUTH);
	/* no secret on the client and not anonymous: refused locally */
	struct proto_client_cfg cc = client_cfg(NULL, false);
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);
	conn_init(&k, &cc, &sc, 1, 0);
	run(&k);
	EXPECT_EQ_INT(k.crc, -PLAT_EINVAL);
}

TEST(wrong_secret_rate_limited)
{
	static struct proto_ratelimit rl;
	struct conn k;
	uint64_t t = 1000 * SEC;

	proto_rl_init(&rl);
	for (int i = 0; i < PROTO_AUTH_FREE_FAILS; i++)
		EXPECT_EQ_INT(handshake(&k, other_secret, secret, &rl, 7, t + (uint64_t)i), -PLAT_EACCES);
	/* locked: even the right secret is refused at HELLO, with words */
	EXPECT_EQ_INT(handshake(&k, secret, secret, &rl, 7, t + 10), -PLAT_EAGAIN);
	EXPECT_CONTAINS(k.s.err.msg, "too many failed authentications");
	EXPECT_CONTAINS(k.c.err.msg, "retry later");
	EXPECT_EQ_INT(k.auth_len, 0);           /* never got to AUTH */
	/* another peer is not affected */
	EXPECT_EQ_INT(handshake(&k, secret, secret, &rl, 8, t + 10), 0);
	/* after the 1 s lockout: allowed; a success clears the record */
	EXPECT_EQ_INT(handshake(&k, secret, secret, &rl, 7, t + SEC + 2), 0);
	EXPECT_EQ_INT(proto_rl_check(&rl, 7, t + SEC + 3, NULL), 0);
	for (int i = 0; i < PROTO_AUTH_FREE_FAILS - 1; i++)
		EXPECT_EQ_INT(handshake(&k, other_secret, secret, &rl, 7, t + 2 * SEC), -PLAT_EACCES);
	EXPECT_EQ_INT(proto_rl_check(&rl, 7, t + 2 * SEC, NULL), 0);
}

TEST(rate_limiter_schedule)
{
	static struct proto_ratelimit rl;
	uint64_t retry = 0, t = 5 * SEC;

	proto_rl_init(&rl);
	proto_rl_fail(&rl, 1, t);
	proto_rl_fail(&rl, 1, t);
	EXPECT_EQ_INT(proto_rl_check(&rl, 1, t, NULL), 0);
	proto_rl_fail(&rl, 1, t);                                   /* 3rd: 1 s */
	EXPECT_EQ_INT(proto_rl_check(&rl, 1, t, &retry), -PLAT_EAGAIN);
	EXPECT_EQ_INT(retry, SEC);
	proto_rl_fail(&rl, 1, t);                                   /* 4th: 2 s */
	EXPECT_EQ_INT(proto_rl_check(&rl, 1, t, &retry), -PLAT_EAGAIN);
	EXPECT_EQ_INT(retry, 2 * SEC);
	for (int i = 0; i < 20; i++)
		proto_rl_fail(&rl, 1, t);
	EXPECT_EQ_INT(proto_rl_check(&rl, 1, t, &retry), -PLAT_EAGAIN);
	EXPECT_EQ_INT(retry, 60 * SEC);                             /* capped */
	EXPECT_EQ_INT(proto_rl_check(&rl, 1, t + 60 * SEC, NULL), 0);
	/* failures older than the window are forgiven */
	proto_rl_init(&rl);
	proto_rl_fail(&rl, 2, t);
	proto_rl_fail(&rl, 2, t);
	proto_rl_fail(&rl, 2, t + 61 * SEC);
	EXPECT_EQ_INT(proto_rl_check(&rl, 2, t + 61 * SEC, NULL), 0);
	/* a flood of addresses evicts the oldest, the table stays bounded */
	proto_rl_init(&rl);
	for (int i = 0; i < 3; i++)
		proto_rl_fail(&rl, 100, t);
	for (uint64_t a = 0; a < PROTO_RL_SLOTS; a++)
		proto_rl_fail(&rl, 1000 + a, t + SEC + a);
	EXPECT_EQ_INT(proto_rl_check(&rl, 100, t + 1, NULL), 0);    /* evicted */
	for (int i = 0; i < 3; i++)
		proto_rl_fail(&rl, 1000 + PROTO_RL_SLOTS - 1, t + 100 * SEC);
	EXPECT_EQ_INT(proto_rl_check(&rl, 1000 + PROTO_RL_SLOTS - 1, t + 100 * SEC, NULL), -PLAT_EAGAIN);
}

/* Replayed handshake messages.  An attacker without the secret replays a
 * recorded client HELLO and AUTH to a server with a fresh nonce; a fake
 * server replays a recorded HELLO reply and AUTH reply to a client with a
 * fresh nonce.  The old proofs verify in neither direction. */
TEST(replayed_handshake_messages)
{
	struct conn rec, k;
	struct proto_client_cfg cc = client_cfg(secret, false);
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);
	size_t n;

	EXPECT_EQ_INT(handshake(&rec, secret, secret, NULL, 1, 0), 0);
	conn_init(&k, &cc, &sc, 1, 0);
	EXPECT_EQ_INT(proto_auths_step(&k.s, rec.hello, rec.hello_len, k.hello_rep, sizeof(k.hello_rep), &n), 0);
	EXPECT_EQ_INT(proto_auths_step(&k.s, rec.auth, rec.auth_len, k.auth_rep, sizeof(k.auth_rep), &n),
		      -PLAT_EACCES);
	EXPECT(!k.ss.keyed);
	EXPECT_CONTAINS(k.s.err.msg, "wrong secret");

	conn_init(&k, &cc, &sc, 1, 0);
	EXPECT_EQ_INT(proto_authc_step(&k.c, NULL, 0, k.hello, sizeof(k.hello), &n), 0);
	EXPECT_EQ_INT(proto_authc_step(&k.c, rec.hello_rep, rec.hello_rep_len, k.auth, sizeof(k.auth), &n), 0);
	EXPECT_EQ_INT(proto_authc_step(&k.c, rec.auth_rep, rec.auth_rep_len, NULL, 0, &n), -PLAT_EACCES);
	EXPECT_CONTAINS(k.c.err.msg, "server's proof is wrong");
	EXPECT(!k.cs.keyed);
}

/* A man in the middle lowers max_body in the HELLO reply: the transcripts
 * differ, so the client's proof fails at the server. */
TEST(tampered_hello_reply)
{
	struct conn k;
	struct proto_client_cfg cc = client_cfg(secret, false);
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);

	hello_exchange(&k, &cc, &sc);
	k.hello_rep[32 + 1 + 2] = 0x01;        /* max_body 0x00101000 -> 0x00011000 */
	EXPECT_EQ_INT(proto_authc_step(&k.c, k.hello_rep, k.hello_rep_len, k.auth, sizeof(k.auth),
				       &k.auth_len), 0);
	EXPECT_EQ_INT(k.cs.max_body, 0x11000);
	EXPECT_EQ_INT(proto_auths_step(&k.s, k.auth, k.auth_len, k.auth_rep, sizeof(k.auth_rep),
				       &k.auth_rep_len), -PLAT_EACCES);
}

TEST(anonymous_access)
{
	struct conn k;
	struct proto_client_cfg cc = client_cfg(NULL, true);
	struct proto_server_cfg sc = server_cfg(secret, true, NULL);
	uint8_t f[128];
	size_t n;

	conn_init(&k, &cc, &sc, 1, 0);
	run(&k);
	EXPECT_EQ_INT(k.crc, 0);
	EXPECT_EQ_INT(k.src, 0);
	EXPECT_EQ_INT(k.cs.access, PROTO_ACCESS_RO);
	EXPECT_EQ_INT(k.ss.access, PROTO_ACCESS_RO);
	EXPECT(!k.cs.keyed && !k.ss.keyed);
	n = seal_ping(&k.cs, f, sizeof(f), 1, false);
	EXPECT_EQ_INT(n, 32);
	EXPECT_EQ_INT(open_frame(&k.ss, f, n), 0);
	f[6] |= PROTO_F_TAGGED;                 /* a tag flag without a key */
	EXPECT_EQ_INT(proto_session_open(&k.ss, f, 32, f), -PLAT_EBADMSG);

	/* the server does not allow it: the client learns from HELLO */
	sc = server_cfg(secret, false, NULL);
	conn_init(&k, &cc, &sc, 1, 0);
	run(&k);
	EXPECT_EQ_INT(k.crc, -PLAT_EACCES);
	EXPECT_CONTAINS(k.c.err.msg, "does not allow anonymous");

	/* a client that ignores that and sends the anonymous AUTH anyway */
	struct proto_hdr ah = { .version = PROTO_VERSION_MAX, .opcode = PROTO_OP_AUTH, .id = 1 };
	struct proto_auth_req zero = { { 0 } };
	struct proto_err err;
	hello_exchange(&k, &cc, &sc);
	int n2 = proto_encode(k.auth, sizeof(k.auth), &ah, &zero, 0, &err);
	EXPECT_EQ_INT(proto_auths_step(&k.s, k.auth, (size_t)n2, k.auth_rep, sizeof(k.auth_rep),
				       &k.auth_rep_len), -PLAT_EACCES);
	EXPECT_CONTAINS(k.s.err.msg, "not allowed");

	/* a server with no secret and no anonymous access refuses everyone */
	struct proto_client_cfg cs = client_cfg(secret, false);
	sc = server_cfg(NULL, false, NULL);
	conn_init(&k, &cs, &sc, 1, 0);
	run(&k);
	EXPECT_EQ_INT(k.src, -PLAT_EACCES);
	EXPECT_CONTAINS(k.s.err.msg, "no secret configured");
}

static int server_first_frame(const uint8_t *f, size_t n, struct proto_auth_server *s, uint32_t *status)
{
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);
	struct proto_session ss;
	struct proto_hdr h;
	struct proto_err err;
	uint8_t nonce[32], out[2048];
	size_t out_len;
	int rc;

	fresh_nonce(nonce);
	proto_auths_init(s, &sc, nonce, 1, 0, &ss);
	rc = proto_auths_step(s, f, n, out, sizeof(out), &out_len);
	*status = 0;
	if (out_len && proto_hdr_decode(out, out_len, out[4], 1024, &h, &err) == 0)
		*status = h.status;
	return rc;
}

TEST(version_negotiation)
{
	struct proto_hdr h = { .version = PROTO_HELLO_VERSION, .opcode = PROTO_OP_HELLO };
	struct proto_hello_req q = { .min_version = 4, .max_version = 5, .max_body = PROTO_MAX_BODY,
				     .max_inflight = 8, .client_id = { "future", 6 } };
	struct proto_auth_server s;
	struct proto_err err;
	uint8_t f[512];
	uint32_t status;
	int n;

	fresh_nonce(q.nonce);
	n = proto_encode(f, sizeof(f), &h, &q, 0, &err);
	EXPECT_EQ_INT(server_first_frame(f, (size_t)n, &s, &status), -PLAT_EPROTO);
	EXPECT_EQ_INT(status, PROTO_E_VERSION);
	EXPECT_CONTAINS(s.err.msg, "client speaks versions 4..5");
	/* a version 1 client (HMAC-SHA256 frame tags) and a version 2 one
	 * (attributes without rdev) are no longer spoken to */
	for (uint8_t v = 1; v <= 2; v++) {
		q.min_version = 1;
		q.max_version = v;
		n = proto_encode(f, sizeof(f), &h, &q, 0, &err);
		EXPECT_EQ_INT(server_first_frame(f, (size_t)n, &s, &status), -PLAT_EPROTO);
		EXPECT_EQ_INT(status, PROTO_E_VERSION);
		EXPECT_CONTAINS(s.err.msg, "we speak 3..3");
	}
	/* range 1..5: the server picks 3 */
	q.min_version = 1;
	q.max_version = 5;
	n = proto_encode(f, sizeof(f), &h, &q, 0, &err);
	EXPECT_EQ_INT(server_first_frame(f, (size_t)n, &s, &status), 0);
	EXPECT_EQ_INT(s.hello.version, 3);
	EXPECT_EQ_INT(s.hello.max_inflight, 8);
	/* the HELLO reply's header carries version 1, the body the choice */
	/* a HELLO frame whose header is not version 1 */
	f[4] = 2;
	EXPECT_EQ_INT(server_first_frame(f, (size_t)n, &s, &status), -PLAT_EPROTO);
	EXPECT_EQ_INT(status, PROTO_E_VERSION);
	/* a client given a reply choosing version 2 or 4 refuses */
	struct conn k;
	struct proto_client_cfg cc = client_cfg(secret, false);
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);
	hello_exchange(&k, &cc, &sc);
	EXPECT_EQ_INT(k.hello_rep[4], PROTO_HELLO_VERSION);
	EXPECT_EQ_INT(k.hello_rep[32], 3);
	k.hello_rep[32] = 4;
	EXPECT_EQ_INT(proto_authc_step(&k.c, k.hello_rep, k.hello_rep_len, k.auth, sizeof(k.auth),
				       &k.auth_len), -PLAT_EPROTO);
	EXPECT_CONTAINS(k.c.err.msg, "server chose version 4");
	hello_exchange(&k, &cc, &sc);
	k.hello_rep[32] = 2;
	EXPECT_EQ_INT(proto_authc_step(&k.c, k.hello_rep, k.hello_rep_len, k.auth, sizeof(k.auth),
				       &k.auth_len), -PLAT_EPROTO);
	EXPECT_CONTAINS(k.c.err.msg, "server chose version 2");
}

TEST(operations_before_authentication)
{
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_GETATTR, .id = 5 };
	struct proto_fh_req q;
	struct proto_auth_server s;
	struct proto_err err;
	uint8_t f[512];
	uint32_t status;
	int n;

	memset(&q, 0, sizeof(q));
	n = proto_encode(f, sizeof(f), &h, &q, 0, &err);
	EXPECT(server_first_frame(f, (size_t)n, &s, &status) < 0);
	EXPECT_EQ_INT(status, PROTO_E_NOTAUTH);
	EXPECT_CONTAINS(s.err.msg, "GETATTR request during the handshake");
	/* AUTH before HELLO */
	struct proto_hdr ah = { .version = 1, .opcode = PROTO_OP_AUTH };
	struct proto_auth_req aq = { { 1 } };
	n = proto_encode(f, sizeof(f), &ah, &aq, 0, &err);
	EXPECT(server_first_frame(f, (size_t)n, &s, &status) < 0);
	EXPECT_EQ_INT(status, PROTO_E_NOTAUTH);
	/* garbage: closed without an answer */
	memset(f, 0x55, 64);
	EXPECT(server_first_frame(f, 64, &s, &status) < 0);
	EXPECT_EQ_INT(status, 0);
	/* a HELLO with a huge length */
	struct proto_hdr hh = { .version = 1, .opcode = PROTO_OP_HELLO };
	struct proto_hello_req hq = { .max_version = 1, .min_version = 1, .client_id = { "x", 1 } };
	fresh_nonce(hq.nonce);
	n = proto_encode(f, sizeof(f), &hh, &hq, 0, &err);
	f[15] = 0x10;
	EXPECT_EQ_INT(server_first_frame(f, (size_t)n, &s, &status), -PLAT_EMSGSIZE);
	EXPECT_EQ_INT(status, PROTO_E_TOOBIG);
	/* a second HELLO after the handshake is not a handshake step */
	struct conn k;
	EXPECT_EQ_INT(handshake(&k, secret, secret, NULL, 1, 0), 0);
	size_t ol;
	EXPECT_EQ_INT(proto_auths_step(&k.s, k.hello, k.hello_len, f, sizeof(f), &ol), -PLAT_EINVAL);
}

TEST(nonce_checks)
{
	struct proto_client_cfg cc = client_cfg(secret, false);
	struct proto_auth_client c;
	struct proto_session cs;
	uint8_t zero[32] = { 0 }, f[512];
	size_t n;

	proto_authc_init(&c, &cc, zero, &cs);
	EXPECT_EQ_INT(proto_authc_step(&c, NULL, 0, f, sizeof(f), &n), -PLAT_EINVAL);
	EXPECT_CONTAINS(c.err.msg, "all zeroes");

	/* the server refuses a zero nonce and its own nonce reflected */
	struct proto_hdr h = { .version = 1, .opcode = PROTO_OP_HELLO };
	struct proto_hello_req q = { .min_version = PROTO_VERSION_MAX, .max_version = PROTO_VERSION_MAX,
				     .max_body = PROTO_MAX_BODY, .max_inflight = 4, .client_id = { "x", 1 } };
	struct proto_err err;
	struct proto_auth_server s;
	struct proto_server_cfg sc = server_cfg(secret, false, NULL);
	struct proto_session ss;
	uint8_t sn[32], out[512];
	int len = proto_encode(f, sizeof(f), &h, &q, 0, &err);
	uint32_t status;
	EXPECT_EQ_INT(server_first_frame(f, (size_t)len, &s, &status), -PLAT_EACCES);
	EXPECT_EQ_INT(status, PROTO_E_AUTH);
	fresh_nonce(sn);
	memcpy(q.nonce, sn, 32);
	len = proto_encode(f, sizeof(f), &h, &q, 0, &err);
	proto_auths_init(&s, &sc, sn, 1, 0, &ss);
	EXPECT_EQ_INT(proto_auths_step(&s, f, (size_t)len, out, sizeof(out), &n), -PLAT_EACCES);
	EXPECT_CONTAINS(s.err.msg, "equals ours");
}

TEST(handles_sealed_and_forgeries_rejected)
{
	struct proto_handle_key key, other;
	struct proto_fh fh = { .fsid = 0x1122334455667788ull, .ino = 4242, .gen = 7, .snap = 3 }, got;
	struct proto_handle h, h2;

	proto_handle_key_init(&key, "the appliance's handle key......", 32);
	proto_handle_key_init(&other, "another appliance's handle key..", 32);
	proto_handle_seal(&key, &fh, &h);
	EXPECT_EQ_INT(proto_handle_open(&key, &h, &got), 0);
	EXPECT(got.fsid == fh.fsid && got.ino == fh.ino && got.gen == 7 && got.snap == 3);
	/* the same file: the same handle (clients compare bytewise) */
	proto_handle_seal(&key, &fh, &h2);
	EXPECT(memcmp(&h, &h2, sizeof(h)) == 0);
	/* every single-bit change is refused */
	for (int i = 0; i < PROTO_HANDLE_SIZE; i++)
		for (int b = 0; b < 8; b++) {
			h2 = h;
			h2.b[i] ^= (uint8_t)(1u << b);
			if (proto_handle_open(&key, &h2, &got) != -PLAT_EBADMSG) {
				EXPECT(!"forged handle accepted");
				return;
			}
		}
	/* another server's handle, and a guessed one */
	EXPECT_EQ_INT(proto_handle_open(&other, &h, &got), -PLAT_EBADMSG);
	memset(&h2, 0, sizeof(h2));
	EXPECT_EQ_INT(proto_handle_open(&key, &h2, &got), -PLAT_EBADMSG);
	/* a new generation of the same inode number is a different handle */
	fh.gen = 8;
	proto_handle_seal(&key, &fh, &h2);
	EXPECT(memcmp(&h, &h2, sizeof(h)) != 0);
}

TEST_MAIN()
