/*
 * SHA-256 (FIPS 180-4 §6.2), HMAC-SHA256 (RFC 2104), HKDF-SHA256
 * (RFC 5869) and a constant-time compare: the primitives of the protocol's
 * handshake, frame tags and file-handle MACs.
 *
 * Call order: sha256_init -> sha256_update* -> sha256_final (the context
 * may then be reused after another init).  HMAC with a key used for many
 * messages (frame tags, handles): proto_hmac_key_init once, then
 * proto_hmac_start / update / final per message; the precomputed key holds
 * the inner and outer hash states after the padded key block, so each
 * message costs two compressions less.
 */
#ifndef PROTO_SHA256_H
#define PROTO_SHA256_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define SHA256_BLOCK 64
#define SHA256_DIGEST 32

struct sha256 {
	uint32_t h[8];
	uint64_t total;             /* bytes hashed so far */
	uint8_t buf[SHA256_BLOCK];
	uint32_t used;              /* bytes waiting in buf */
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_DIGEST]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST]);

struct proto_hmac_key {
	struct sha256 inner, outer; /* states after (K ^ ipad) and (K ^ opad) */
};
struct proto_hmac {
	struct sha256 inner;
	const struct proto_hmac_key *key;
};

void proto_hmac_key_init(struct proto_hmac_key *k, const void *key, size_t key_len);
void proto_hmac_start(struct proto_hmac *h, const struct proto_hmac_key *k);
void proto_hmac_update(struct proto_hmac *h, const void *data, size_t len);
void proto_hmac_final(struct proto_hmac *h, uint8_t out[SHA256_DIGEST]);
/* One-shot HMAC-SHA256(key, data). */
void proto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		       uint8_t out[SHA256_DIGEST]);

/* HKDF-SHA256 (RFC 5869): extract PRK from (salt, ikm), then expand
 * out_len <= 255 * 32 bytes for `info`. */
void proto_hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
			uint8_t prk[SHA256_DIGEST]);
int proto_hkdf_expand(const uint8_t prk[SHA256_DIGEST], const void *info, size_t info_len,
		      uint8_t *out, size_t out_len);

/* True when a and b hold the same n bytes; the time taken depends only on
 * n, never on where they differ (proofs, tags and handle MACs). */
bool proto_ct_equal(const void *a, const void *b, size_t n);
/* Overwrite secrets so they do not linger in freed memory or the stack. */
void proto_wipe(void *p, size_t n);

#endif
