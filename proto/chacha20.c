/*
 * ChaCha20 and Poly1305 after RFC 8439, written from the specification.
 *
 * Poly1305 keeps the accumulator h and the clamped multiplier r in three
 * limbs of 44, 44 and 42 bits, so one block costs nine 64x64->128-bit
 * multiplications and the reduction modulo p = 2^130 - 5 folds the bits
 * above 2^130 back as a multiple of 5 (2^130 = 5 mod p).  Every step is
 * constant time: no branch or index depends on the key or the data.
 */
#include "proto/chacha20.h"
#include "platform/platform.h"

typedef unsigned __int128 u128;

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* ---- ChaCha20 ------------------------------------------------------------------- */
static inline uint32_t rotl(uint32_t v, unsigned n)
{
	return (v << n) | (v >> (32 - n));
}

#define QR(a, b, c, d) do {                                   \
		a += b; d ^= a; d = rotl(d, 16);              \
		c += d; b ^= c; b = rotl(b, 12);              \
		a += b; d ^= a; d = rotl(d, 8);               \
		c += d; b ^= c; b = rotl(b, 7);               \
	} while (0)

void proto_chacha20_block(const uint8_t key[CHACHA20_KEY], uint32_t counter,
			  const uint8_t nonce[CHACHA20_NONCE], uint8_t out[CHACHA20_BLOCK])
{
	uint32_t in[16], x[16];

	in[0] = 0x61707865;     /* "expand 32-byte k" */
	in[1] = 0x3320646e;
	in[2] = 0x79622d32;
	in[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		in[4 + i] = rd32(key + 4 * i);
	in[12] = counter;
	for (int i = 0; i < 3; i++)
		in[13 + i] = rd32(nonce + 4 * i);
	plat_memcpy(x, in, sizeof(x));
	for (int round = 0; round < 10; round++) {      /* 20 rounds: column + diagonal */
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++)
		wr32(out + 4 * i, x[i] + in[i]);
	plat_memset(x, 0, sizeof(x));
	plat_memset(in, 0, sizeof(in));
}

void proto_chacha20_xor(const uint8_t key[CHACHA20_KEY], uint32_t counter,
			const uint8_t nonce[CHACHA20_NONCE], const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t ks[CHACHA20_BLOCK];

	while (len) {
		size_t n = len < CHACHA20_BLOCK ? len : CHACHA20_BLOCK;
		proto_chacha20_block(key, counter++, nonce, ks);
		for (size_t i = 0; i < n; i++)
			out[i] = (uint8_t)((in ? in[i] : 0) ^ ks[i]);
		if (in)
			in += n;
		out += n;
		len -= n;
	}
	plat_memset(ks, 0, sizeof(ks));
}

/* ---- Poly1305 --------------------------------------------------------------------- */
#define M44 0xfffffffffffull
#define M42 0x3ffffffffffull

void proto_poly1305_init(struct proto_poly1305 *p, const uint8_t key[POLY1305_KEY])
{
	/* r is clamped (§2.5): the top four bits of bytes 3, 7, 11, 15 and
	 * the bottom two bits of bytes 4, 8, 12 are cleared. */
	uint64_t t0 = rd64(key) & 0x0ffffffc0fffffffull;
	uint64_t t1 = rd64(key + 8) & 0x0ffffffc0ffffffcull;

	p->r[0] = t0 & M44;
	p->r[1] = ((t0 >> 44) | (t1 << 20)) & M44;
	p->r[2] = (t1 >> 24) & M42;
	p->s[0] = rd64(key + 16);
	p->s[1] = rd64(key + 24);
	p->h[0] = p->h[1] = p->h[2] = 0;
	p->used = 0;
}

/* h = (h + block) * r mod p for `n` whole 16-byte blocks; hibit is 2^128
 * in limb 2 (1 << 40) for full blocks, 0 for the padded last one. */
static void poly_blocks(struct proto_poly1305 *p, const uint8_t *m, size_t n, uint64_t hibit)
{
	const uint64_t r0 = p->r[0], r1 = p->r[1], r2 = p->r[2];
	const uint64_t s1 = r1 * 20, s2 = r2 * 20;      /* 2^132 = 4 * 5 mod p */
	uint64_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], c;

	while (n--) {
		uint64_t t0 = rd64(m), t1 = rd64(m + 8);
		h0 += t0 & M44;
		h1 += ((t0 >> 44) | (t1 << 20)) & M44;
		h2 += ((t1 >> 24) & M42) | hibit;

		u128 d0 = (u128)h0 * r0 + (u128)h1 * s2 + (u128)h2 * s1;
		u128 d1 = (u128)h0 * r1 + (u128)h1 * r0 + (u128)h2 * s2;
		u128 d2 = (u128)h0 * r2 + (u128)h1 * r1 + (u128)h2 * r0;

		c = (uint64_t)(d0 >> 44);
		h0 = (uint64_t)d0 & M44;
		d1 += c;
		c = (uint64_t)(d1 >> 44);
		h1 = (uint64_t)d1 & M44;
		d2 += c;
		c = (uint64_t)(d2 >> 42);
		h2 = (uint64_t)d2 & M42;
		h0 += c * 5;
		c = h0 >> 44;
		h0 &= M44;
		h1 += c;
		m += 16;
	}
	p->h[0] = h0;
	p->h[1] = h1;
	p->h[2] = h2;
}

void proto_poly1305_update(struct proto_poly1305 *p, const void *data, size_t len)
{
	const uint8_t *m = data;

	if (p->used) {
		size_t n = 16 - p->used < len ? 16 - p->used : len;
		plat_memcpy(p->buf + p->used, m, n);
		p->used += (unsigned)n;
		m += n;
		len -= n;
		if (p->used < 16)
			return;
		poly_blocks(p, p->buf, 1, 1ull << 40);
		p->used = 0;
	}
	if (len >= 16) {
		size_t whole = len & ~(size_t)15;
		poly_blocks(p, m, whole / 16, 1ull << 40);
		m += whole;
		len -= whole;
	}
	if (len) {
		plat_memcpy(p->buf, m, len);
		p->used = (unsigned)len;
	}
}

void proto_poly1305_final(struct proto_poly1305 *p, uint8_t tag[POLY1305_TAG])
{
	uint64_t h0, h1, h2, g0, g1, g2, c, mask, lo, hi;

	if (p->used) {          /* the last block: its bytes, then 0x01, then zeroes */
		p->buf[p->used] = 1;
		for (unsigned i = p->used + 1; i < 16; i++)
			p->buf[i] = 0;
		poly_blocks(p, p->buf, 1, 0);
	}
	h0 = p->h[0];
	h1 = p->h[1];
	h2 = p->h[2];
	/* carry fully: h < 2^130 + a little */
	c = h1 >> 44; h1 &= M44; h2 += c;
	c = h2 >> 42; h2 &= M42; h0 += c * 5;
	c = h0 >> 44; h0 &= M44; h1 += c;
	c = h1 >> 44; h1 &= M44; h2 += c;
	c = h2 >> 42; h2 &= M42; h0 += c * 5;
	c = h0 >> 44; h0 &= M44; h1 += c;
	/* g = h - p = h + 5 - 2^130; take it when it did not go negative */
	g0 = h0 + 5; c = g0 >> 44; g0 &= M44;
	g1 = h1 + c; c = g1 >> 44; g1 &= M44;
	g2 = h2 + c - (1ull << 42);
	mask = (g2 >> 63) - 1;          /* all ones when g >= 0 */
	h0 = (h0 & ~mask) | (g0 & mask);
	h1 = (h1 & ~mask) | (g1 & mask);
	h2 = (h2 & ~mask) | (g2 & mask);
	/* tag = (h + s) mod 2^128 */
	lo = h0 | (h1 << 44);
	hi = (h1 >> 20) | (h2 << 24);
	lo += p->s[0];
	hi += p->s[1] + (lo < p->s[0]);
	wr64(tag, lo);
	wr64(tag + 8, hi);
	plat_memset(p, 0, sizeof(*p));
}

void proto_poly1305_keygen(const uint8_t key[CHACHA20_KEY], const uint8_t nonce[CHACHA20_NONCE],
			   uint8_t otk[POLY1305_KEY])
{
	uint8_t block[CHACHA20_BLOCK];

	proto_chacha20_block(key, 0, nonce, block);
	plat_memcpy(otk, block, POLY1305_KEY);
	plat_memset(block, 0, sizeof(block));
}
