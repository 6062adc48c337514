/*
 * SHA-256 from FIPS 180-4: the message is padded with 0x80, zeroes and its
 * bit length (big-endian u64) to a multiple of 64 bytes; each 64-byte block
 * is expanded to a 64-word schedule W (§6.2.2 step 1) and mixed into the
 * eight working variables with the round constants K (§4.2.2, the first 32
 * bits of the fractional parts of the cube roots of the first 64 primes).
 *
 * HMAC (RFC 2104): H((K ^ opad) || H((K ^ ipad) || m)), keys longer than
 * the block are hashed first, shorter ones zero-padded.  HKDF (RFC 5869) is
 * two uses of it.
 */
#include "proto/sha256.h"
#include "platform/platform.h"

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;

	for (int t = 0; t < 16; t++)
		w[t] = be32_get(p + 4 * t);
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; hh = h[7];
	for (int t = 0; t < 64; t++) {
		uint32_t S1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = hh + S1 + ch + sha256_k[t] + w[t];
		uint32_t S0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		hh = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void sha256_init(struct sha256 *c)
{
	/* FIPS 180-4 §5.3.3: fractional parts of the square roots of the
	 * first 8 primes. */
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	plat_memcpy(c->h, iv, sizeof(iv));
	c->total = 0;
	c->used = 0;
}

void sha256_update(struct sha256 *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	c->total += len;
	if (c->used) {
		size_t take = SHA256_BLOCK - c->used;
		if (take > len)
			take = len;
		plat_memcpy(c->buf + c->used, p, take);
		c->used += take;
		p += take;
		len -= take;
		if (c->used < SHA256_BLOCK)
			return;
		sha256_block(c->h, c->buf);
		c->used = 0;
	}
	for (; len >= SHA256_BLOCK; p += SHA256_BLOCK, len -= SHA256_BLOCK)
		sha256_block(c->h, p);
	if (len) {
		plat_memcpy(c->buf, p, len);
		c->used = len;
	}
}

void sha256_final(struct sha256 *c, uint8_t out[SHA256_DIGEST])
{
	uint64_t bits = c->total * 8;
	uint8_t pad[SHA256_BLOCK * 2] = { 0x80 };
	/* 0x80, zeroes up to 56 mod 64, then the 8-byte length. */
	size_t padlen = (c->used < 56 ? 56 : 120) - c->used;

	for (int i = 0; i < 8; i++)
		pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(c, pad, padlen + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
	proto_wipe(c, sizeof(*c));
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST])
{
	struct sha256 c;
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, out);
}

void proto_hmac_key_init(struct proto_hmac_key *k, const void *key, size_t key_len)
{
	uint8_t block[SHA256_BLOCK] = { 0 };

	if (key_len > SHA256_BLOCK)
		sha256(key, key_len, block);
	else
		plat_memcpy(block, key, key_len);
	for (int i = 0; i < SHA256_BLOCK; i++)
		block[i] ^= 0x36;
	sha256_init(&k->inner);
	sha256_update(&k->inner, block, SHA256_BLOCK);
	for (int i = 0; i < SHA256_BLOCK; i++)
		block[i] ^= 0x36 ^ 0x5c;
	sha256_init(&k->outer);
	sha256_update(&k->outer, block, SHA256_BLOCK);
	proto_wipe(block, sizeof(block));
}

void proto_hmac_start(struct proto_hmac *h, const struct proto_hmac_key *k)
{
	h->inner = k->inner;
	h->key = k;
}

void proto_hmac_update(struct proto_hmac *h, const void *data, size_t len)
{
	sha256_update(&h->inner, data, len);
}

void proto_hmac_final(struct proto_hmac *h, uint8_t out[SHA256_DIGEST])
{
	uint8_t ih[SHA256_DIGEST];
	struct sha256 outer = h->key->outer;

	sha256_final(&h->inner, ih);
	sha256_update(&outer, ih, sizeof(ih));
	sha256_final(&outer, out);
	proto_wipe(ih, sizeof(ih));
}

void proto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		       uint8_t out[SHA256_DIGEST])
{
	struct proto_hmac_key k;
	struct proto_hmac h;

	proto_hmac_key_init(&k, key, key_len);
	proto_hmac_start(&h, &k);
	proto_hmac_update(&h, data, len);
	proto_hmac_final(&h, out);
	proto_wipe(&k, sizeof(k));
}

void proto_hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
			uint8_t prk[SHA256_DIGEST])
{
	static const uint8_t zero_salt[SHA256_DIGEST];

	if (!salt_len) {        /* RFC 5869 §2.2: a string of HashLen zeros */
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	proto_hmac_sha256(salt, salt_len, ikm, ikm_len, prk);
}

/* T(i) = HMAC(PRK, T(i-1) || info || i), OKM = T(1) || T(2) || ... */
int proto_hkdf_expand(const uint8_t prk[SHA256_DIGEST], const void *info, size_t info_len,
		      uint8_t *out, size_t out_len)
{
	struct proto_hmac_key k;
	uint8_t t[SHA256_DIGEST];
	size_t done = 0;

	if (out_len > 255 * SHA256_DIGEST)
		return -PLAT_EINVAL;
	proto_hmac_key_init(&k, prk, SHA256_DIGEST);
	for (uint8_t i = 1; done < out_len; i++) {
		struct proto_hmac h;
		size_t n = out_len - done < SHA256_DIGEST ? out_len - done : SHA256_DIGEST;

		proto_hmac_start(&h, &k);
		if (i > 1)
			proto_hmac_update(&h, t, sizeof(t));
		proto_hmac_update(&h, info, info_len);
		proto_hmac_update(&h, &i, 1);
		proto_hmac_final(&h, t);
		plat_memcpy(out + done, t, n);
		done += n;
	}
	proto_wipe(t, sizeof(t));
	proto_wipe(&k, sizeof(k));
	return 0;
}

bool proto_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

void proto_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}
