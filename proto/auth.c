/*
 * The handshake (docs/protocol.md §3).  Both sides hash the two HELLO
 * bodies exactly as sent and received (the transcript H), derive the keys
 * from the secret and both nonces with HKDF, and prove knowledge of the
 * secret with an HMAC over H under a per-direction key:
 *
 *   client                               server
 *   HELLO {range, nonce_c, ...}  --->
 *                                <---    HELLO reply {version, nonce_s, ...}
 *   AUTH {HMAC(K_proof_c, "client finished" || H)} --->
 *                                        compare in constant time; on
 *                                        mismatch: AUTH error, count the
 *                                        failure for the peer, close
 *                                <---    AUTH reply {HMAC(K_proof_s, "server finished" || H)}
 *   compare in constant time
 *
 * Invariant: the server sends nothing derived from the secret before the
 * client has proven it, and the client trusts nothing from the server
 * (access, later frames) before the server has proven it.  Both nonces are
 * fresh per connection, so a recorded AUTH or AUTH reply never verifies
 * again.
 */
#include "proto/auth.h"
#include "platform/platform.h"

static const char label_proof_c[] = "apfp2 client proof";
static const char label_proof_s[] = "apfp2 server proof";
static const char label_c2s[] = "apfp2 frame c2s";
static const char label_s2c[] = "apfp2 frame s2c";
static const char fin_c[] = "client finished";
static const char fin_s[] = "server finished";

#define HELLO_ID 0u
#define AUTH_ID 1u

static int afail(struct proto_err *err, enum proto_auth_state *state, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int afail(struct proto_err *err, enum proto_auth_state *state, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	plat_vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	*state = PROTO_AUTH_FAILED;
	return code;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void derive_keys(const uint8_t *psk, size_t psk_len, const uint8_t *nc, const uint8_t *ns,
			struct proto_auth_keys *k)
{
	uint8_t salt[2 * PROTO_NONCE_SIZE], prk[SHA256_DIGEST];

	plat_memcpy(salt, nc, PROTO_NONCE_SIZE);
	plat_memcpy(salt + PROTO_NONCE_SIZE, ns, PROTO_NONCE_SIZE);
	proto_hkdf_extract(salt, sizeof(salt), psk, psk_len, prk);
	proto_hkdf_expand(prk, label_proof_c, sizeof(label_proof_c) - 1, k->proof_c, 32);
	proto_hkdf_expand(prk, label_proof_s, sizeof(label_proof_s) - 1, k->proof_s, 32);
	proto_hkdf_expand(prk, label_c2s, sizeof(label_c2s) - 1, k->c2s, 32);
	proto_hkdf_expand(prk, label_s2c, sizeof(label_s2c) - 1, k->s2c, 32);
	proto_wipe(prk, sizeof(prk));
}

static void make_proof(const uint8_t key[32], const char *label, size_t label_len,
		       const uint8_t h[SHA256_DIGEST], uint8_t out[PROTO_PROOF_SIZE])
{
	struct proto_hmac_key k;
	struct proto_hmac m;

	proto_hmac_key_init(&k, key, 32);
	proto_hmac_start(&m, &k);
	proto_hmac_update(&m, label, label_len);
	proto_hmac_update(&m, h, SHA256_DIGEST);
	proto_hmac_final(&m, out);
	proto_wipe(&k, sizeof(k));
}

static void session_key(struct proto_session *s, const uint8_t send[32], uint8_t dir_send,
			const uint8_t recv[32], uint8_t dir_recv)
{
	s->keyed = true;
	s->seq_send = s->seq_recv = 0;
	s->dir_send = dir_send;
	s->dir_recv = dir_recv;
	plat_memcpy(s->k_send, send, 32);
	plat_memcpy(s->k_recv, recv, 32);
}

/* ---- session ------------------------------------------------------------------------ */
uint16_t proto_session_hdr_flags(const struct proto_session *s)
{
	return s->keyed ? PROTO_F_TAGGED : 0;
}

static void tag_nonce(uint8_t dir, uint64_t seq, uint8_t nonce[CHACHA20_NONCE])
{
	plat_memset(nonce, 0, CHACHA20_NONCE);
	nonce[0] = dir;
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(seq >> (8 * i));
}

/* Poly1305 under a one-time key: the first 32 bytes of the ChaCha20 block
 * (counter 0) of the direction's key with nonce = direction (4 bytes) ||
 * seq (8 bytes), both little-endian (RFC 8439 §2.6).  A (key, direction,
 * seq) triple occurs once per session, so no Poly1305 key tags twice. */
static void frame_tag(const uint8_t key[32], uint8_t dir, uint64_t seq, const uint8_t *a, size_t alen,
		      const uint8_t *b, size_t blen, uint8_t tag[PROTO_TAG_SIZE])
{
	uint8_t nonce[CHACHA20_NONCE], otk[POLY1305_KEY];
	struct proto_poly1305 m;

	tag_nonce(dir, seq, nonce);
	proto_poly1305_keygen(key, nonce, otk);
	proto_poly1305_init(&m, otk);
	proto_poly1305_update(&m, a, alen);
	if (blen)
		proto_poly1305_update(&m, b, blen);
	proto_poly1305_final(&m, tag);
	proto_wipe(otk, sizeof(otk));
}

int proto_session_tag(struct proto_session *s, const uint8_t *a, size_t alen, const uint8_t *b,
		      size_t blen, uint8_t tag[PROTO_TAG_SIZE])
{
	if (!s->keyed)
		return 0;
	if (alen < PROTO_HDR_SIZE || !(a[6] & PROTO_F_TAGGED))
		return -PLAT_EINVAL;    /* the header must announce the tag */
	frame_tag(s->k_send, s->dir_send, s->seq_send++, a, alen, b, blen, tag);
	return 0;
}

int proto_session_seal(struct proto_session *s, uint8_t *buf, size_t len, size_t cap)
{
	int rc;

	if (!s->keyed)
		return (int)len;
	if (cap - len < PROTO_TAG_SIZE || cap < len)
		return -PLAT_EMSGSIZE;
	if ((rc = proto_session_tag(s, buf, len, NULL, 0, buf + len)) < 0)
		return rc;
	return (int)(len + PROTO_TAG_SIZE);
}

void proto_rxtag_begin(struct proto_rxtag *t, const struct proto_session *s, uint64_t seq)
{
	uint8_t nonce[CHACHA20_NONCE], otk[POLY1305_KEY];

	plat_memset(t, 0, sizeof(*t));
	if (!s->keyed)
		return;
	tag_nonce(s->dir_recv, seq, nonce);
	proto_poly1305_keygen(s->k_recv, nonce, otk);
	proto_poly1305_init(&t->m, otk);
	proto_wipe(otk, sizeof(otk));
	t->sess = s;
	t->seq = seq;
	t->begun = true;
}

void proto_rxtag_update(struct proto_rxtag *t, const void *p, size_t n)
{
	if (t->begun && !t->done && n) {
		proto_poly1305_update(&t->m, p, n);
		t->len += n;
	}
}

void proto_rxtag_end(struct proto_rxtag *t)
{
	if (t->begun && !t->done) {
		proto_poly1305_final(&t->m, t->tag);
		proto_wipe(&t->m, sizeof(t->m));
		t->done = true;
	}
}

int proto_session_open(struct proto_session *s, const uint8_t *frame, size_t frame_len,
		       const uint8_t *tag)
{
	return proto_session_open_pre(s, frame, frame_len, tag, NULL);
}

int proto_session_open_pre(struct proto_session *s, const uint8_t *frame, size_t frame_len,
			   const uint8_t *tag, const struct proto_rxtag *pre)
{
	uint8_t want[PROTO_TAG_SIZE];
	bool tagged;

	if (frame_len < PROTO_HDR_SIZE)
		return -PLAT_EBADMSG;
	tagged = frame[6] & PROTO_F_TAGGED;
	if (!s->keyed)
		return tagged ? -PLAT_EBADMSG : 0;
	if (!tagged || !tag)
		return -PLAT_EBADMSG;
	if (pre && pre->done && pre->sess == s && pre->seq == s->seq_recv && pre->len == frame_len)
		plat_memcpy(want, pre->tag, sizeof(want));
	else
		frame_tag(s->k_recv, s->dir_recv, s->seq_recv, frame, frame_len, NULL, 0, want);
	if (!proto_ct_equal(want, tag, PROTO_TAG_SIZE))
		return -PLAT_EBADMSG;
	s->seq_recv++;
	return 0;
}

/* ---- rate limit --------------------------------------------------------------------- */
void proto_rl_init(struct proto_ratelimit *rl)
{
	plat_memset(rl, 0, sizeof(*rl));
}

static int rl_find(struct proto_ratelimit *rl, uint64_t key)
{
	for (int i = 0; i < PROTO_RL_SLOTS; i++)
		if (rl->e[i].fails && rl->e[i].key == key)
			return i;
	return -1;
}

int proto_rl_check(struct proto_ratelimit *rl, uint64_t key, uint64_t now_ns, uint64_t *retry_ns)
{
	int i = rl_find(rl, key);

	if (i < 0 || rl->e[i].until_ns <= now_ns)
		return 0;
	if (retry_ns)
		*retry_ns = rl->e[i].until_ns - now_ns;
	return -PLAT_EAGAIN;
}

void proto_rl_fail(struct proto_ratelimit *rl, uint64_t key, uint64_t now_ns)
{
	int i = rl_find(rl, key);

	if (i < 0) {
		/* a free slot, else the least recently failing one */
		i = 0;
		for (int j = 0; j < PROTO_RL_SLOTS; j++) {
			if (!rl->e[j].fails) {
				i = j;
				break;
			}
			if (rl->e[j].last_ns < rl->e[i].last_ns)
				i = j;
		}
		rl->e[i].key = key;
		rl->e[i].fails = 0;
		rl->e[i].until_ns = 0;
	} else if (now_ns - rl->e[i].last_ns > PROTO_AUTH_WINDOW_NS && rl->e[i].until_ns <= now_ns) {
		rl->e[i].fails = 0;     /* old failures are forgiven */
	}
	rl->e[i].fails++;
	rl->e[i].last_ns = now_ns;
	if (rl->e[i].fails >= PROTO_AUTH_FREE_FAILS) {
		unsigned shift = rl->e[i].fails - PROTO_AUTH_FREE_FAILS;
		uint64_t lock = shift >= 6 ? PROTO_AUTH_LOCK_MAX_NS : PROTO_AUTH_LOCK_MIN_NS << shift;
		if (lock > PROTO_AUTH_LOCK_MAX_NS)
			lock = PROTO_AUTH_LOCK_MAX_NS;
		rl->e[i].until_ns = now_ns + lock;
	}
}

void proto_rl_success(struct proto_ratelimit *rl, uint64_t key)
{
	int i = rl_find(rl, key);
	if (i >= 0)
		plat_memset(&rl->e[i], 0, sizeof(rl->e[i]));
}

/* ---- frames of the handshake ----------------------------------------------------------- */
/* Decode a handshake frame: whole, untagged, the expected opcode and
 * direction; a reply's error status is returned as its errno. */
static int hs_decode(const uint8_t *in, size_t in_len, uint8_t version, uint8_t op, bool reply,
		     struct proto_hdr *h, void *msg, struct proto_err *err, uint32_t *status)
{
	int rc;

	*status = PROTO_OK;
	if ((rc = proto_hdr_decode(in, in_len, version, PROTO_HANDSHAKE_MAX_BODY, h, err)) < 0) {
		*status = rc == -PLAT_ENOSYS ? PROTO_E_NOTAUTH : proto_status_from_errno(rc);
		return rc;
	}
	if (h->opcode != op || !!(h->flags & PROTO_F_REPLY) != reply) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s %s during the handshake, expected %s",
			      proto_op_name(h->opcode), h->flags & PROTO_F_REPLY ? "reply" : "request",
			      proto_op_name(op));
		*status = PROTO_E_NOTAUTH;
		return -PLAT_EPROTO;
	}
	if (h->flags & PROTO_F_TAGGED) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s: handshake frames carry no tag",
			      proto_op_name(op));
		*status = PROTO_E_BADMSG;
		return -PLAT_EBADMSG;
	}
	if (in_len != PROTO_HDR_SIZE + (size_t)h->length) {
		plat_snprintf(err->msg, sizeof(err->msg), "%s: frame of %zu bytes, header says %u + %u",
			      proto_op_name(op), in_len, PROTO_HDR_SIZE, h->length);
		*status = PROTO_E_BADMSG;
		return -PLAT_EBADMSG;
	}
	if (reply && h->status) {
		plat_snprintf(err->msg, sizeof(err->msg), "server refused %s: %s (%s)", proto_op_name(op),
			      proto_status_str(h->status), proto_status_name(h->status));
		return proto_status_errno(h->status);
	}
	if ((rc = proto_decode_body(h, in + PROTO_HDR_SIZE, h->length, msg, err)) < 0)
		*status = proto_status_from_errno(rc);
	return rc;
}

/* ---- client ----------------------------------------------------------------------------- */
void proto_authc_init(struct proto_auth_client *c, const struct proto_client_cfg *cfg,
		      const uint8_t nonce[PROTO_NONCE_SIZE], struct proto_session *sess)
{
	plat_memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	plat_memcpy(c->nonce, nonce, PROTO_NONCE_SIZE);
	c->sess = sess;
	plat_memset(sess, 0, sizeof(*sess));
	sha256_init(&c->transcript);
}

static int authc_hello(struct proto_auth_client *c, uint8_t *out, size_t cap, size_t *out_len)
{
	struct proto_hdr h = { .version = PROTO_HELLO_VERSION, .opcode = PROTO_OP_HELLO, .id = HELLO_ID };
	struct proto_hello_req q = {
		.min_version = PROTO_VERSION_MIN, .max_version = PROTO_VERSION_MAX,
		.max_body = c->cfg.max_body, .max_inflight = c->cfg.max_inflight,
		.want_anon = c->cfg.want_anon,
		.client_id = { c->cfg.client_id ? c->cfg.client_id : "",
			       (uint16_t)(c->cfg.client_id ? plat_strlen(c->cfg.client_id) : 0) },
	};
	struct proto_err e;
	int n;

	if (!c->cfg.want_anon && !c->cfg.psk_len)
		return afail(&c->err, &c->state, -PLAT_EINVAL, "no secret given and not anonymous");
	if (all_zero(c->nonce, PROTO_NONCE_SIZE))
		return afail(&c->err, &c->state, -PLAT_EINVAL, "client nonce is all zeroes (no entropy?)");
	plat_memcpy(q.nonce, c->nonce, PROTO_NONCE_SIZE);
	if ((n = proto_encode(out, cap, &h, &q, 0, &e)) < 0)
		return afail(&c->err, &c->state, n, "%s", e.msg);
	sha256_update(&c->transcript, out + PROTO_HDR_SIZE, h.length);
	*out_len = (size_t)n;
	c->state = PROTO_AUTH_HELLO;
	return 0;
}

static int authc_on_hello(struct proto_auth_client *c, const uint8_t *in, size_t in_len, uint8_t *out,
			  size_t cap, size_t *out_len)
{
	struct proto_hdr h;
	struct proto_hello_rep r;
	struct proto_hdr ah = { .opcode = PROTO_OP_AUTH, .id = AUTH_ID };
	struct proto_auth_req q = { { 0 } };
	struct proto_err e;
	uint32_t status;
	int rc, n;

	if ((rc = hs_decode(in, in_len, PROTO_HELLO_VERSION, PROTO_OP_HELLO, true, &h, &r, &e, &status)) < 0)
		return afail(&c->err, &c->state, rc, "%s", e.msg);
	if (h.id != HELLO_ID)
		return afail(&c->err, &c->state, -PLAT_EPROTO, "HELLO reply for request id %u", h.id);
	if (r.version < PROTO_VERSION_MIN || r.version > PROTO_VERSION_MAX)
		return afail(&c->err, &c->state, -PLAT_EPROTO, "server chose version %u, we speak %u..%u",
			     r.version, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
	if (r.max_body < PROTO_MIN_BODY || r.max_body > c->cfg.max_body || r.max_body > PROTO_MAX_BODY)
		return afail(&c->err, &c->state, -PLAT_EPROTO, "server chose max_body %u, outside %u..%u",
			     r.max_body, PROTO_MIN_BODY, c->cfg.max_body);
	if (!r.max_inflight || r.max_inflight > c->cfg.max_inflight)
		return afail(&c->err, &c->state, -PLAT_EPROTO, "server chose max_inflight %u, outside 1..%u",
			     r.max_inflight, c->cfg.max_inflight);
	if (all_zero(r.nonce, PROTO_NONCE_SIZE) || proto_ct_equal(r.nonce, c->nonce, PROTO_NONCE_SIZE))
		return afail(&c->err, &c->state, -PLAT_EPROTO, "server nonce is zero or echoes ours");
	if (c->cfg.want_anon && !r.anon_ok)
		return afail(&c->err, &c->state, -PLAT_EACCES,
			     "the server does not allow anonymous access: a secret is needed");
	sha256_update(&c->transcript, in + PROTO_HDR_SIZE, h.length);
	sha256_final(&c->transcript, c->h);
	c->sess->version = r.version;
	c->sess->max_body = r.max_body;
	c->sess->max_inflight = r.max_inflight;
	c->sess->boot_id = r.boot_id;
	if (!c->cfg.want_anon) {
		derive_keys(c->cfg.psk, c->cfg.psk_len, c->nonce, r.nonce, &c->keys);
		make_proof(c->keys.proof_c, fin_c, sizeof(fin_c) - 1, c->h, q.proof);
	}
	ah.version = r.version;
	if ((n = proto_encode(out, cap, &ah, &q, 0, &e)) < 0)
		return afail(&c->err, &c->state, n, "%s", e.msg);
	*out_len = (size_t)n;
	c->state = PROTO_AUTH_PROOF;
	return 0;
}

static int authc_on_auth(struct proto_auth_client *c, const uint8_t *in, size_t in_len)
{
	struct proto_hdr h;
	struct proto_auth_rep r;
	uint8_t want[PROTO_PROOF_SIZE];
	struct proto_err e;
	uint32_t status;
	int rc;

	if ((rc = hs_decode(in, in_len, c->sess->version, PROTO_OP_AUTH, true, &h, &r, &e, &status)) < 0)
		return afail(&c->err, &c->state, rc, "%s", e.msg);
	if (h.id != AUTH_ID)
		return afail(&c->err, &c->state, -PLAT_EPROTO, "AUTH reply for request id %u", h.id);
	if (c->cfg.want_anon) {
		if (r.access != PROTO_ACCESS_RO)
			return afail(&c->err, &c->state, -PLAT_EPROTO, "anonymous session granted write access");
		c->sess->access = PROTO_ACCESS_RO;
		c->sess->keyed = false;
		c->state = PROTO_AUTH_DONE;
		return 0;
	}
	make_proof(c->keys.proof_s, fin_s, sizeof(fin_s) - 1, c->h, want);
	if (!proto_ct_equal(want, r.proof, PROTO_PROOF_SIZE))
		return afail(&c->err, &c->state, -PLAT_EACCES,
			     "the server's proof is wrong: it does not hold our secret");
	c->sess->access = r.access;
	session_key(c->sess, c->keys.c2s, PROTO_DIR_C2S, c->keys.s2c, PROTO_DIR_S2C);
	proto_wipe(&c->keys, sizeof(c->keys));
	c->state = PROTO_AUTH_DONE;
	return 0;
}

int proto_authc_step(struct proto_auth_client *c, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	*out_len = 0;
	switch (c->state) {
	case PROTO_AUTH_START:
		return authc_hello(c, out, cap, out_len);
	case PROTO_AUTH_HELLO:
		return authc_on_hello(c, in, in_len, out, cap, out_len);
	case PROTO_AUTH_PROOF:
		return authc_on_auth(c, in, in_len);
	default:
		return afail(&c->err, &c->state, -PLAT_EINVAL, "handshake already %s",
			     c->state == PROTO_AUTH_DONE ? "done" : "failed");
	}
}

/* ---- server ------------------------------------------------------------------------------ */
void proto_auths_init(struct proto_auth_server *s, const struct proto_server_cfg *cfg,
		      const uint8_t nonce[PROTO_NONCE_SIZE], uint64_t peer_key, uint64_t now_ns,
		      struct proto_session *sess)
{
	plat_memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	plat_memcpy(s->nonce, nonce, PROTO_NONCE_SIZE);
	s->peer = peer_key;
	s->now_ns = now_ns;
	s->sess = sess;
	plat_memset(sess, 0, sizeof(*sess));
	sha256_init(&s->transcript);
}

/* Refuse: an error reply to the request in `h` (if it was parsed far
 * enough to have an id), then the caller closes. */
static int auths_refuse(struct proto_auth_server *s, const struct proto_hdr *h, uint32_t status, int rc,
			uint8_t *out, size_t cap, size_t *out_len)
{
	struct proto_hdr e = *h;

	if (!e.version)
		e.version = PROTO_HELLO_VERSION;
	if (status != PROTO_OK) {
		int n = proto_encode_error(out, cap, &e, status);
		if (n > 0)
			*out_len = (size_t)n;
	}
	s->state = PROTO_AUTH_FAILED;
	return rc;
}

static int auths_on_hello(struct proto_auth_server *s, const uint8_t *in, size_t in_len, uint8_t *out,
			  size_t cap, size_t *out_len)
{
	struct proto_hdr h = { 0 }, rh;
	struct proto_hello_req q;
	struct proto_hello_rep *r = &s->hello;
	uint64_t retry = 0;
	uint32_t status;
	int rc, n;

	if ((rc = hs_decode(in, in_len, PROTO_HELLO_VERSION, PROTO_OP_HELLO, false, &h, &q, &s->err, &status)) < 0) {
		/* No opcode parsed (short header, bad magic): not a peer
		 * of ours, close without answering. */
		return auths_refuse(s, &h, h.opcode ? status : PROTO_OK, rc, out, cap, out_len);
	}
	if (s->cfg.rl && proto_rl_check(s->cfg.rl, s->peer, s->now_ns, &retry) < 0) {
		plat_snprintf(s->err.msg, sizeof(s->err.msg),
			      "too many failed authentications from this peer: locked for %llu ms more",
			      (unsigned long long)(retry / 1000000));
		return auths_refuse(s, &h, PROTO_E_AUTH_RATE, -PLAT_EAGAIN, out, cap, out_len);
	}
	if (q.min_version > PROTO_VERSION_MAX || q.max_version < PROTO_VERSION_MIN ||
	    q.min_version > q.max_version) {
		plat_snprintf(s->err.msg, sizeof(s->err.msg), "client speaks versions %u..%u, we speak %u..%u",
			      q.min_version, q.max_version, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		return auths_refuse(s, &h, PROTO_E_VERSION, -PLAT_EPROTO, out, cap, out_len);
	}
	if (all_zero(q.nonce, PROTO_NONCE_SIZE) || proto_ct_equal(q.nonce, s->nonce, PROTO_NONCE_SIZE)) {
		plat_snprintf(s->err.msg, sizeof(s->err.msg), "client nonce is zero or equals ours");
		return auths_refuse(s, &h, PROTO_E_AUTH, -PLAT_EACCES, out, cap, out_len);
	}
	if (!s->cfg.psk_len && !s->cfg.anon_ok) {
		plat_snprintf(s->err.msg, sizeof(s->err.msg), "no secret configured and anonymous access off");
		return auths_refuse(s, &h, PROTO_E_AUTH, -PLAT_EACCES, out, cap, out_len);
	}
	s->anon = q.want_anon;
	r->version = q.max_version < PROTO_VERSION_MAX ? q.max_version : PROTO_VERSION_MAX;
	r->max_body = q.max_body < s->cfg.max_body ? q.max_body : s->cfg.max_body;
	if (r->max_body < PROTO_MIN_BODY)
		r->max_body = PROTO_MIN_BODY;
	if (r->max_body > PROTO_MAX_BODY)
		r->max_body = PROTO_MAX_BODY;
	r->max_inflight = q.max_inflight < s->cfg.max_inflight ? q.max_inflight : s->cfg.max_inflight;
	if (r->max_inflight > PROTO_MAX_INFLIGHT)
		r->max_inflight = PROTO_MAX_INFLIGHT;
	if (!r->max_inflight)
		r->max_inflight = 1;
	r->anon_ok = s->cfg.anon_ok;
	r->boot_id = s->cfg.boot_id;
	plat_memcpy(r->nonce, s->nonce, PROTO_NONCE_SIZE);

	rh = (struct proto_hdr){ .version = PROTO_HELLO_VERSION, .opcode = PROTO_OP_HELLO,
				 .flags = PROTO_F_REPLY, .id = h.id };
	if ((n = proto_encode(out, cap, &rh, r, 0, &s->err)) < 0)
		return auths_refuse(s, &h, PROTO_E_SERVERFAULT, n, out, cap, out_len);
	sha256_update(&s->transcript, in + PROTO_HDR_SIZE, h.length);
	sha256_update(&s->transcript, out + PROTO_HDR_SIZE, rh.length);
	if (s->cfg.psk_len)
		derive_keys(s->cfg.psk, s->cfg.psk_len, q.nonce, s->nonce, &s->keys);
	*out_len = (size_t)n;
	s->state = PROTO_AUTH_HELLO;
	return 0;
}

static int auths_on_auth(struct proto_auth_server *s, const uint8_t *in, size_t in_len, uint8_t *out,
			 size_t cap, size_t *out_len)
{
	struct proto_hdr h = { 0 }, rh;
	struct proto_auth_req q;
	struct proto_auth_rep r = { 0 };
	uint8_t hash[SHA256_DIGEST], want[PROTO_PROOF_SIZE];
	uint32_t status;
	int rc, n;

	if ((rc = hs_decode(in, in_len, s->hello.version, PROTO_OP_AUTH, false, &h, &q, &s->err, &status)) < 0)
		return auths_refuse(s, &h, status, rc, out, cap, out_len);
	sha256_final(&s->transcript, hash);
	if (s->anon) {
		if (!s->cfg.anon_ok || !all_zero(q.proof, PROTO_PROOF_SIZE)) {
			plat_snprintf(s->err.msg, sizeof(s->err.msg), "anonymous access %s",
				      s->cfg.anon_ok ? "with a non-zero proof" : "is not allowed");
			return auths_refuse(s, &h, PROTO_E_AUTH, -PLAT_EACCES, out, cap, out_len);
		}
		r.access = PROTO_ACCESS_RO;
	} else {
		if (!s->cfg.psk_len) {
			plat_snprintf(s->err.msg, sizeof(s->err.msg), "no secret configured: anonymous only");
			return auths_refuse(s, &h, PROTO_E_AUTH, -PLAT_EACCES, out, cap, out_len);
		}
		make_proof(s->keys.proof_c, fin_c, sizeof(fin_c) - 1, hash, want);
		if (!proto_ct_equal(want, q.proof, PROTO_PROOF_SIZE)) {
			if (s->cfg.rl)
				proto_rl_fail(s->cfg.rl, s->peer, s->now_ns);
			plat_snprintf(s->err.msg, sizeof(s->err.msg), "client proof wrong: wrong secret");
			return auths_refuse(s, &h, PROTO_E_AUTH, -PLAT_EACCES, out, cap, out_len);
		}
		if (s->cfg.rl)
			proto_rl_success(s->cfg.rl, s->peer);
		make_proof(s->keys.proof_s, fin_s, sizeof(fin_s) - 1, hash, r.proof);
		r.access = PROTO_ACCESS_RW;
	}
	rh = (struct proto_hdr){ .version = s->hello.version, .opcode = PROTO_OP_AUTH,
				 .flags = PROTO_F_REPLY, .id = h.id };
	if ((n = proto_encode(out, cap, &rh, &r, 0, &s->err)) < 0)
		return auths_refuse(s, &h, PROTO_E_SERVERFAULT, n, out, cap, out_len);
	s->sess->version = s->hello.version;
	s->sess->max_body = s->hello.max_body;
	s->sess->max_inflight = s->hello.max_inflight;
	s->sess->boot_id = s->hello.boot_id;
	s->sess->access = r.access;
	if (!s->anon)
		session_key(s->sess, s->keys.s2c, PROTO_DIR_S2C, s->keys.c2s, PROTO_DIR_C2S);
	proto_wipe(&s->keys, sizeof(s->keys));
	*out_len = (size_t)n;
	s->state = PROTO_AUTH_DONE;
	return 0;
}

int proto_auths_step(struct proto_auth_server *s, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	*out_len = 0;
	switch (s->state) {
	case PROTO_AUTH_START:
		return auths_on_hello(s, in, in_len, out, cap, out_len);
	case PROTO_AUTH_HELLO:
		return auths_on_auth(s, in, in_len, out, cap, out_len);
	default:
		return afail(&s->err, &s->state, -PLAT_EINVAL, "handshake already %s",
			     s->state == PROTO_AUTH_DONE ? "done" : "failed");
	}
}
