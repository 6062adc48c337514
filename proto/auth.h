/*
 * Connection setup and frame integrity (docs/protocol.md §2, §3):
 * the HELLO/AUTH handshake as two transport-independent state machines
 * that consume and produce whole frames, the session that tags every later
 * frame, and the failed-authentication rate limiter.
 *
 * Client:  proto_authc_init(nonce from the caller's entropy source)
 *          proto_authc_step(NULL)            -> HELLO frame to send
 *          proto_authc_step(HELLO reply)     -> AUTH frame to send
 *          proto_authc_step(AUTH reply)      -> 0, state DONE, session set
 * Server:  proto_auths_init(nonce, peer address key, now)
 *          proto_auths_step(HELLO)           -> HELLO reply to send
 *          proto_auths_step(AUTH)            -> AUTH reply, state DONE
 * A step returns 0 to go on, or a negative errno: the handshake failed,
 * err.msg says why, and the connection is to be closed after sending the
 * *out_len bytes produced (the server's error reply; may be 0).
 * Frames passed in are whole: header + body (handshake frames are never
 * tagged).  Nonces must be fresh and unpredictable (32 random bytes); this
 * code makes up none.
 *
 * After DONE: proto_session_seal() every outgoing frame, proto_session_open()
 * every incoming one before decoding its body.
 */
#ifndef PROTO_AUTH_H
#define PROTO_AUTH_H

#include "proto/wire.h"
#include "proto/codec.h"
#include "proto/sha256.h"
#include "proto/chacha20.h"

/* ---- session: per-direction keys and sequence numbers (§3.4) ------------ */
struct proto_session {
	bool keyed;                     /* false: anonymous, frames untagged */
	uint8_t access;                 /* PROTO_ACCESS_RO / _RW */
	uint8_t version;
	uint32_t max_body;
	uint16_t max_inflight;
	uint64_t boot_id;
	uint64_t seq_send, seq_recv;
	uint8_t dir_send, dir_recv;     /* PROTO_DIR_C2S / _S2C: part of the tag nonce */
	uint8_t k_send[32], k_recv[32]; /* K_c2s / K_s2c (§3.2), per direction */
};

/* Directions in the frame tag's nonce (§3.4). */
#define PROTO_DIR_C2S 1
#define PROTO_DIR_S2C 2

/* Header flags a frame sent on this session carries (PROTO_F_TAGGED if
 * keyed): OR them into proto_hdr.flags before proto_encode(). */
uint16_t proto_session_hdr_flags(const struct proto_session *s);
/* Tag of the next outgoing frame, made of `a` (header + encoded body)
 * followed by `b` (data sent from its own buffer, PROTO_ENC_NODATA; may be
 * empty); advances seq_send.  Unkeyed sessions: returns 0, no tag. */
int proto_session_tag(struct proto_session *s, const uint8_t *a, size_t alen, const uint8_t *b,
		      size_t blen, uint8_t tag[PROTO_TAG_SIZE]);
/* Append the tag to a frame of len bytes in buf: returns the new length,
 * or -PLAT_EMSGSIZE when cap has no room for it. */
int proto_session_seal(struct proto_session *s, uint8_t *buf, size_t len, size_t cap);
/* Check an incoming frame (header + body, frame_len bytes) against its
 * tag (ignored when unkeyed): 0, or -PLAT_EBADMSG if the flag is wrong or
 * the tag does not match (replayed, reordered, altered, another
 * session's).  Close the connection on failure. */
int proto_session_open(struct proto_session *s, const uint8_t *frame, size_t frame_len,
		       const uint8_t *tag);

/* A receiver that copies a frame in pieces (the appliance's connection
 * reader) computes its tag in the same pass: begin with the sequence
 * number the frame will have, feed header and body (not the tag) as they
 * are copied, end.  proto_session_open_pre() then only compares: the
 * result counts only for the session, direction and sequence number it
 * was begun with and the length fed (any other: the tag is computed again, as
 * proto_session_open() does), and the comparison is the same
 * constant-time one, so a wrong guess costs time, never a check. */
struct proto_rxtag {
	struct proto_poly1305 m;
	const struct proto_session *sess;
	uint64_t seq, len;              /* len: bytes fed */
	uint8_t tag[PROTO_TAG_SIZE];
	bool begun, done;
};
void proto_rxtag_begin(struct proto_rxtag *t, const struct proto_session *s, uint64_t seq);
void proto_rxtag_update(struct proto_rxtag *t, const void *p, size_t n);
void proto_rxtag_end(struct proto_rxtag *t);
/* proto_session_open() using pre when it applies (NULL: never). */
int proto_session_open_pre(struct proto_session *s, const uint8_t *frame, size_t frame_len,
			   const uint8_t *tag, const struct proto_rxtag *pre);

/* ---- failed-authentication rate limit (§3.5) ----------------------------------
 * A fixed table keyed by the peer address; the oldest entry is evicted, so
 * an address flood cannot grow it.  Not locked: the caller serialises
 * (the server runs handshakes from one thread or under one lock). */
#define PROTO_AUTH_FREE_FAILS   3
#define PROTO_AUTH_WINDOW_NS    (60ull * 1000000000ull)
#define PROTO_AUTH_LOCK_MIN_NS  (1ull * 1000000000ull)
#define PROTO_AUTH_LOCK_MAX_NS  (60ull * 1000000000ull)
#define PROTO_RL_SLOTS 64
struct proto_ratelimit {
	struct {
		uint64_t key, last_ns, until_ns;
		uint32_t fails;
	} e[PROTO_RL_SLOTS];
};
void proto_rl_init(struct proto_ratelimit *rl);
/* 0, or -PLAT_EAGAIN with *retry_ns = time until the lockout ends. */
int proto_rl_check(struct proto_ratelimit *rl, uint64_t key, uint64_t now_ns, uint64_t *retry_ns);
void proto_rl_fail(struct proto_ratelimit *rl, uint64_t key, uint64_t now_ns);
void proto_rl_success(struct proto_ratelimit *rl, uint64_t key);

/* ---- handshake --------------------------------------------------------------------- */
enum proto_auth_state { PROTO_AUTH_START, PROTO_AUTH_HELLO, PROTO_AUTH_PROOF, PROTO_AUTH_DONE,
			PROTO_AUTH_FAILED };

struct proto_auth_keys {
	uint8_t proof_c[32], proof_s[32], c2s[32], s2c[32];
};

struct proto_client_cfg {
	const uint8_t *psk;             /* NULL/0 with want_anon */
	size_t psk_len;
	const char *client_id;          /* 1..64 bytes, for the server's log */
	bool want_anon;
	uint32_t max_body;              /* what this client can receive */
	uint16_t max_inflight;
};

struct proto_auth_client {
	enum proto_auth_state state;
	struct proto_client_cfg cfg;
	uint8_t nonce[PROTO_NONCE_SIZE];
	struct sha256 transcript;
	uint8_t h[SHA256_DIGEST];
	struct proto_auth_keys keys;
	struct proto_session *sess;
	struct proto_err err;
};

void proto_authc_init(struct proto_auth_client *c, const struct proto_client_cfg *cfg,
		      const uint8_t nonce[PROTO_NONCE_SIZE], struct proto_session *sess);
int proto_authc_step(struct proto_auth_client *c, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len);

struct proto_server_cfg {
	const uint8_t *psk;             /* NULL/0: no secret configured */
	size_t psk_len;
	bool anon_ok;                   /* read-only anonymous sessions allowed */
	uint32_t max_body;
	uint16_t max_inflight;
	uint64_t boot_id;
	struct proto_ratelimit *rl;     /* may be NULL (no rate limit) */
};

struct proto_auth_server {
	enum proto_auth_state state;
	struct proto_server_cfg cfg;
	uint8_t nonce[PROTO_NONCE_SIZE];
	uint64_t peer;                  /* rate-limit key: the peer's address */
	uint64_t now_ns;
	bool anon;
	struct proto_hello_rep hello;   /* what was negotiated */
	struct sha256 transcript;
	struct proto_auth_keys keys;
	struct proto_session *sess;
	struct proto_err err;
};

void proto_auths_init(struct proto_auth_server *s, const struct proto_server_cfg *cfg,
		      const uint8_t nonce[PROTO_NONCE_SIZE], uint64_t peer_key, uint64_t now_ns,
		      struct proto_session *sess);
int proto_auths_step(struct proto_auth_server *s, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len);

/* Handshake frames are small: this bounds them. */
#define PROTO_HANDSHAKE_MAX_BODY 1024u

#endif
