/*
 * ChaCha20 (RFC 8439 §2.3-2.4) and Poly1305 (RFC 8439 §2.5-2.6): the
 * per-frame tag of keyed sessions (docs/protocol.md §3.4) and the stream
 * behind the kernel's fallback random generator.  Portable C on 32- and
 * 64-bit integers only (the kernel is built without SIMD registers).
 *
 * Poly1305 is a one-time authenticator: a key (r, s) may tag one message
 * only.  proto_poly1305_keygen() derives a fresh one from a long-term key
 * and a nonce that is never reused with it (the frame tag's nonce is the
 * direction and the sequence number).
 *
 * Call order: proto_poly1305_init -> proto_poly1305_update* ->
 * proto_poly1305_final (the state is then wiped).
 */
#ifndef PROTO_CHACHA20_H
#define PROTO_CHACHA20_H

#include <stdint.h>
#include <stddef.h>

#define CHACHA20_KEY 32
#define CHACHA20_NONCE 12
#define CHACHA20_BLOCK 64
#define POLY1305_KEY 32
#define POLY1305_TAG 16

/* One 64-byte block of key stream for (key, counter, nonce) (§2.3). */
void proto_chacha20_block(const uint8_t key[CHACHA20_KEY], uint32_t counter,
			  const uint8_t nonce[CHACHA20_NONCE], uint8_t out[CHACHA20_BLOCK]);
/* out = in XOR the key stream starting at block `counter` (§2.4); in may
 * be NULL for the key stream itself; out may equal in. */
void proto_chacha20_xor(const uint8_t key[CHACHA20_KEY], uint32_t counter,
			const uint8_t nonce[CHACHA20_NONCE], const uint8_t *in, uint8_t *out, size_t len);

struct proto_poly1305 {
	uint64_t r[3], s[2], h[3];      /* r and h in 44/44/42-bit limbs */
	uint8_t buf[16];
	unsigned used;                  /* bytes waiting in buf */
};

void proto_poly1305_init(struct proto_poly1305 *p, const uint8_t key[POLY1305_KEY]);
void proto_poly1305_update(struct proto_poly1305 *p, const void *data, size_t len);
void proto_poly1305_final(struct proto_poly1305 *p, uint8_t tag[POLY1305_TAG]);
/* The one-time key for `nonce` under `key`: the first 32 bytes of the
 * ChaCha20 block with counter 0 (§2.6). */
void proto_poly1305_keygen(const uint8_t key[CHACHA20_KEY], const uint8_t nonce[CHACHA20_NONCE],
			   uint8_t otk[POLY1305_KEY]);

#endif
