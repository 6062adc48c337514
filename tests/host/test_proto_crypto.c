/*
 * SHA-256 against the FIPS 180-2 example vectors, HMAC-SHA256 against
 * RFC 4231, HKDF-SHA256 against RFC 5869 test case 1, incremental hashing
 * at every split point, and the constant-time compare.
 */
#define TEST_SUITE "proto_crypto"
#include "tests/host/test.h"
#include "proto/sha256.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

#define EXPECT_HEX(bytes, n, want)                      \
	do {                                            \
		char got_[2 * 64 + 1];                  \
		hex((bytes), (n), got_);                \
		EXPECT_STREQ(got_, want);               \
	} while (0)

static void sha_str(const char *s, char *out)
{
	uint8_t d[32];
	sha256(s, strlen(s), d);
	hex(d, 32, out);
}

TEST(sha256_fips_vectors)
{
	char got[65];

	sha_str("abc", got);
	EXPECT_STREQ(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_str("", got);
	EXPECT_STREQ(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", got);
	EXPECT_STREQ(got, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	sha_str("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
		"klmnopqrlmnopqrsmnopqrstnopqrstu", got);
	EXPECT_STREQ(got, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(sha256_million_a_in_odd_pieces)
{
	static uint8_t a[1000];
	struct sha256 c;
	uint8_t d[32];
	size_t done = 0, step = 1;

	memset(a, 'a', sizeof(a));
	sha256_init(&c);
	while (done < 1000000) {        /* pieces of 1..997 bytes cross every block offset */
		size_t n = step % 997 + 1;
		if (n > 1000000 - done)
			n = 1000000 - done;
		sha256_update(&c, a, n);
		done += n;
		step = step * 7 + 3;
	}
	sha256_final(&c, d);
	EXPECT_HEX(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundaries (55, 56, 63, 64, 119, 120 ...),
 * split at every point, agree with the one-shot hash. */
TEST(sha256_split_points)
{
	uint8_t msg[200], whole[32], split[32];

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	for (size_t len = 0; len <= sizeof(msg); len++) {
		sha256(msg, len, whole);
		for (size_t cut = 0; cut <= len; cut += 13) {
			struct sha256 c;
			sha256_init(&c);
			sha256_update(&c, msg, cut);
			sha256_update(&c, msg + cut, len - cut);
			sha256_final(&c, split);
			if (memcmp(whole, split, 32)) {
				EXPECT(!"split hash differs");
				return;
			}
		}
	}
}

TEST(hmac_rfc4231)
{
	uint8_t key[131], data[152], d[32];

	memset(key, 0x0b, 20);
	proto_hmac_sha256(key, 20, "Hi There", 8, d);
	EXPECT_HEX(d, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	proto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	EXPECT_HEX(d, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	proto_hmac_sha256(key, 20, data, 50, d);
	EXPECT_HEX(d, 32, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

	for (int i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	proto_hmac_sha256(key, 25, data, 50, d);
	EXPECT_HEX(d, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

	memset(key, 0x0c, 20);
	proto_hmac_sha256(key, 20, "Test With Truncation", 20, d);
	EXPECT_HEX(d, 16, "a3b6167473100ee06e0c796c2955552b");

	memset(key, 0xaa, 131);
	proto_hmac_sha256(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54, d);
	EXPECT_HEX(d, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

	const char *t7 = "This is a test using a larger than block-size key and a larger than block-size "
			 "data. The key needs to be hashed before being used by the HMAC algorithm.";
	proto_hmac_sha256(key, 131, t7, strlen(t7), d);
	EXPECT_HEX(d, 32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* The precomputed key gives the same MAC for many messages. */
TEST(hmac_precomputed_key_reuse)
{
	struct proto_hmac_key k;
	uint8_t a[32], b[32];

	proto_hmac_key_init(&k, "Jefe", 4);
	for (int i = 0; i < 3; i++) {
		struct proto_hmac h;
		proto_hmac_start(&h, &k);
		proto_hmac_update(&h, "what do ya ", 11);
		proto_hmac_update(&h, "want for nothing?", 17);
		proto_hmac_final(&h, a);
		EXPECT_HEX(a, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	}
	proto_hmac_sha256("Jefe", 4, "what do ya want for nothing!", 28, b);
	EXPECT(memcmp(a, b, 32) != 0);
}

TEST(hkdf_rfc5869_case1)
{
	uint8_t ikm[22], salt[13], info[10], prk[32], okm[42];

	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	proto_hkdf_extract(salt, sizeof(salt), ikm, sizeof(ikm), prk);
	EXPECT_HEX(prk, 32, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
	EXPECT_EQ_INT(proto_hkdf_expand(prk, info, sizeof(info), okm, sizeof(okm)), 0);
	char got[85];
	hex(okm, 42, got);
	EXPECT_STREQ(got, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
	EXPECT(proto_hkdf_expand(prk, info, sizeof(info), okm, 255 * 32 + 1) < 0);
}

TEST(ct_equal)
{
	uint8_t a[32], b[32];

	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	EXPECT(proto_ct_equal(a, b, 32));
	EXPECT(proto_ct_equal(a, b, 0));
	for (int i = 0; i < 32; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			if (proto_ct_equal(a, b, 32))
				EXPECT(!"difference not seen");
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
}

TEST_MAIN()
