/*
 * ChaCha20 and Poly1305 against RFC 8439: the worked examples of §2.3.2
 * (block function), §2.4.2 (encryption), §2.5.2 (Poly1305), §2.6.2 (one-time
 * key generation), and the appendix test vectors A.1 (blocks), A.2
 * (encryption), A.3 (Poly1305 #1-#11, which exercise the carries and the
 * final reduction) and A.4 (key generation); incremental Poly1305 at every
 * split point agrees with the one-shot tag.
 */
#define TEST_SUITE "proto_chacha"
#include "tests/host/test.h"
#include "proto/chacha20.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	for (; s[0] && s[1]; s += 2) {
		unsigned v;
		if (n == cap || sscanf(s, "%2x", &v) != 1)
			abort();
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = 0;
}

static uint8_t key_0_1f[32], key_80_9f[32];

static void keys(void)
{
	for (int i = 0; i < 32; i++) {
		key_0_1f[i] = (uint8_t)i;
		key_80_9f[i] = (uint8_t)(0x80 + i);
	}
}

/* One key-stream block: hex key, counter, hex nonce, hex block. */
static void check_block(const char *k, uint32_t counter, const char *n, const char *want)
{
	uint8_t key[32], nonce[12], out[64];
	char got[129];

	unhex(k, key, 32);
	unhex(n, nonce, 12);
	proto_chacha20_block(key, counter, nonce, out);
	hex(out, 64, got);
	EXPECT_STREQ(got, want);
}

TEST(chacha20_block_2_3_2_and_a1)
{
	char k[65];
	keys();
	hex(key_0_1f, 32, k);
	check_block(k, 1, "000000090000004a00000000",
		    "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
		    "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
	const char *zero = "0000000000000000000000000000000000000000000000000000000000000000";
	check_block(zero, 0, "000000000000000000000000",
		    "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
		    "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586");
	check_block(zero, 1, "000000000000000000000000",
		    "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
		    "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f");
	check_block("0000000000000000000000000000000000000000000000000000000000000001", 1,
		    "000000000000000000000000",
		    "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
		    "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0");
	check_block("00ff000000000000000000000000000000000000000000000000000000000000", 2,
		    "000000000000000000000000",
		    "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"
		    "13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096");
	check_block(zero, 0, "000000000000000000000002",
		    "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
		    "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d");
}

static const char ietf_text[] =
	"416e79207375626d697373696f6e20746f20746865204945544620696e74656e"
	"6465642062792074686520436f6e7472696275746f7220666f72207075626c69"
	"636174696f6e20617320616c6c206f722070617274206f6620616e2049455446"
	"20496e7465726e65742d4472616674206f722052464320616e6420616e792073"
	"746174656d656e74206d6164652077697468696e2074686520636f6e74657874"
	"206f6620616e204945544620616374697669747920697320636f6e7369646572"
	"656420616e20224945544620436f6e747269627574696f6e222e205375636820"
	"73746174656d656e747320696e636c756465206f72616c2073746174656d656e"
	"747320696e20494554462073657373696f6e732c2061732077656c6c20617320"
	"7772697474656e20616e6420656c656374726f6e696320636f6d6d756e696361"
	"74696f6e73206d61646520617420616e792074696d65206f7220706c6163652c"
	"207768696368206172652061646472657373656420746f";

static const char jabberwocky[] =
	"2754776173206272696c6c69672c20616e642074686520736c6974687920746f"
	"7665730a446964206779726520616e642067696d626c6520696e207468652077"
	"6162653a0a416c6c206d696d737920776572652074686520626f726f676f7665"
	"732c0a416e6420746865206d6f6d65207261746873206f757467726162652e";

static void check_xor(const uint8_t key[32], uint32_t counter, const char *n, const uint8_t *pt,
		      size_t len, const char *want)
{
	uint8_t nonce[12], out[512];
	char got[1025];

	unhex(n, nonce, 12);
	proto_chacha20_xor(key, counter, nonce, pt, out, len);
	hex(out, len, got);
	EXPECT_STREQ(got, want);
	/* in place, and back again */
	memcpy(out, pt, len);
	proto_chacha20_xor(key, counter, nonce, out, out, len);
	proto_chacha20_xor(key, counter, nonce, out, out, len);
	EXPECT(memcmp(out, pt, len) == 0);
}

TEST(chacha20_encrypt_2_4_2_and_a2)
{
	static const char sunscreen[] = "Ladies and Gentlemen of the class of '99: If I could offer you only "
					"one tip for the future, sunscreen would be it.";
	uint8_t key[32] = { 0 }, pt[512];
	size_t n;

	keys();
	check_xor(key_0_1f, 1, "000000000000004a00000000", (const uint8_t *)sunscreen, strlen(sunscreen),
		  "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357"
		  "1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
		  "5af90bbf74a35be6b40b8eedf2785e42874d");
	memset(pt, 0, 64);
	check_xor(key, 0, "000000000000000000000000", pt, 64,
		  "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
		  "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586");
	key[31] = 1;
	n = unhex(ietf_text, pt, sizeof(pt));
	check_xor(key, 1, "000000000000000000000002", pt, n,
		  "a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec2a97948bd3722915c8f3d337f7d37005"
		  "0e9e96d647b7c39f56e031ca5eb6250d4042e02785ececfa4b4bb5e8ead0440e20b6e8db09d881a7c6132f420e527950"
		  "42bdfa7773d8a9051447b3291ce1411c680465552aa6c405b7764d5e87bea85ad00f8449ed8f72d0d662ab052691ca66"
		  "424bc86d2df80ea41f43abf937d3259dc4b2d0dfb48a6c9139ddd7f76966e928e635553ba76c5c879d7b35d49eb2e62b"
		  "0871cdac638939e25e8a1e0ef9d5280fa8ca328b351c3c765989cbcf3daa8b6ccc3aaf9f3979c92b3720fc88dc95ed84"
		  "a1be059c6499b9fda236e7e818b04b0bc39c1e876b193bfe5569753f88128cc08aaa9b63d1a16f80ef2554d7189c411f"
		  "5869ca52c5b83fa36ff216b9c1d30062bebcfd2dc5bce0911934fda79a86f6e698ced759c3ff9b6477338f3da4f9cd85"
		  "14ea9982ccafb341b2384dd902f3d1ab7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221");
	unhex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", key, 32);
	n = unhex(jabberwocky, pt, sizeof(pt));
	check_xor(key, 42, "000000000000000000000002", pt, n,
		  "62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf166d3df2d721caf9b21e5fb14c616871"
		  "fd84c54f9d65b283196c7fe4f60553ebf39c6402c42234e32a356b3e764312a61a5532055716ead6962568f87d3f3f77"
		  "04c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188d1");
}

/* Tag of a message one-shot and split at every point (state across
 * partial blocks). */
static void check_poly(const char *k, const uint8_t *m, size_t len, const char *want)
{
	uint8_t key[32], tag[16];
	char got[33];
	struct proto_poly1305 p;

	unhex(k, key, 32);
	proto_poly1305_init(&p, key);
	proto_poly1305_update(&p, m, len);
	proto_poly1305_final(&p, tag);
	hex(tag, 16, got);
	EXPECT_STREQ(got, want);
	for (size_t cut = 0; cut <= len; cut += (len > 64 ? 7 : 1)) {
		proto_poly1305_init(&p, key);
		proto_poly1305_update(&p, m, cut);
		proto_poly1305_update(&p, m + cut, len - cut);
		proto_poly1305_final(&p, tag);
		hex(tag, 16, got);
		if (strcmp(got, want)) {
			EXPECT_STREQ(got, want);
			break;
		}
	}
}

static void check_poly_hex(const char *k, const char *msg, const char *want)
{
	uint8_t m[512];
	size_t n = unhex(msg, m, sizeof(m));
	check_poly(k, m, n, want);
}

TEST(poly1305_2_5_2)
{
	static const char m[] = "Cryptographic Forum Research Group";
	check_poly("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b", (const uint8_t *)m,
		   strlen(m), "a8061dc1305136c6c22b8baf0c0127a9");
}

TEST(poly1305_a3_vectors)
{
	const char *z32 = "0000000000000000000000000000000000000000000000000000000000000000";
	char zeros[257];

	memset(zeros, '0', 256);
	zeros[256] = 0;
	check_poly_hex(z32, zeros, "00000000000000000000000000000000");                        /* #1 */
	check_poly_hex("0000000000000000000000000000000036e5f6b5c5e06070f0efca96227a863e", ietf_text,
		       "36e5f6b5c5e06070f0efca96227a863e");                                     /* #2 */
	check_poly_hex("36e5f6b5c5e06070f0efca96227a863e00000000000000000000000000000000", ietf_text,
		       "f3477e7cd95417af89a6b8794c310cf0");                                     /* #3 */
	check_poly_hex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", jabberwocky,
		       "4541669a7eaaee61e708dc7cbcc5eb62");                                     /* #4 */
	check_poly_hex("0200000000000000000000000000000000000000000000000000000000000000",
		       "ffffffffffffffffffffffffffffffff", "03000000000000000000000000000000"); /* #5 */
	check_poly_hex("02000000000000000000000000000000ffffffffffffffffffffffffffffffff",
		       "02000000000000000000000000000000", "03000000000000000000000000000000"); /* #6 */
	check_poly_hex("0100000000000000000000000000000000000000000000000000000000000000",
		       "fffffffffffffffffffffffffffffffff0ffffffffffffffffffffffffffffff"
		       "11000000000000000000000000000000", "05000000000000000000000000000000"); /* #7 */
	check_poly_hex("0100000000000000000000000000000000000000000000000000000000000000",
		       "fffffffffffffffffffffffffffffffffbfefefefefefefefefefefefefefefe"
		       "01010101010101010101010101010101", "00000000000000000000000000000000"); /* #8 */
	check_poly_hex("0200000000000000000000000000000000000000000000000000000000000000",
		       "fdffffffffffffffffffffffffffffff", "faffffffffffffffffffffffffffffff"); /* #9 */
	check_poly_hex("0100000000000000040000000000000000000000000000000000000000000000",
		       "e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000"
		       "0000000000000000000000000000000001000000000000000000000000000000",
		       "14000000000000005500000000000000");                                     /* #10 */
	check_poly_hex("0100000000000000040000000000000000000000000000000000000000000000",
		       "e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000"
		       "00000000000000000000000000000000", "13000000000000000000000000000000"); /* #11 */
}

static void check_keygen(const uint8_t key[32], const char *n, const char *want)
{
	uint8_t nonce[12], otk[32];
	char got[65];

	unhex(n, nonce, 12);
	proto_poly1305_keygen(key, nonce, otk);
	hex(otk, 32, got);
	EXPECT_STREQ(got, want);
}

TEST(poly1305_keygen_2_6_2_and_a4)
{
	uint8_t key[32] = { 0 };

	keys();
	check_keygen(key_80_9f, "000000000001020304050607",
		     "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646");
	check_keygen(key, "000000000000000000000000",
		     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7");
	key[31] = 1;
	check_keygen(key, "000000000000000000000002",
		     "ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739");
	unhex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", key, 32);
	check_keygen(key, "000000000000000000000002",
		     "965e3bc6f9ec7ed9560808f4d229f94b137ff275ca9b3fcbdd59deaad23310ae");
}

TEST_MAIN()
