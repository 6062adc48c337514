/*
 * Bounded fuzz run of the decoder, the server handshake and the handle
 * check with a deterministic mutator (no clang needed): seeds are valid
 * frames of every message, mutated by bit flips, interesting values in
 * length fields, truncation, insertion and deletion.  The oracle
 * (proto_fuzz_one.c) aborts on a violated property; ASan/UBSan catch
 * out-of-bounds reads.  The long libFuzzer run is `make proto-fuzz`
 * (part of `make stress`).
 *
 *   test_proto_fuzz                   run the bounded test
 *   test_proto_fuzz --write-seeds DIR write the seed frames (libFuzzer corpus)
 */
#define TEST_SUITE "proto_fuzz"
#include "tests/host/test.h"
#include "tests/host/proto_samples.h"
#include "proto/auth.h"
#include "proto/handle.h"

#define MAX_SEEDS 256
#define FRAME_MAX 16384
#define ITERATIONS 1000000

static uint8_t seeds[MAX_SEEDS][FRAME_MAX];
static size_t seed_len[MAX_SEEDS];
static unsigned nseeds;
static struct sample smp;

static void add_seed(const uint8_t *p, size_t n)
{
	if (nseeds < MAX_SEEDS && n <= FRAME_MAX) {
		memcpy(seeds[nseeds], p, n);
		seed_len[nseeds++] = n;
	}
}

static void make_seeds(void)
{
	uint8_t buf[FRAME_MAX];
	struct proto_err err;
	struct proto_handle_key key;

	proto_handle_key_init(&key, proto_fuzz_handle_key, 32);
	nseeds = 0;
	for (unsigned op = 0; op < PROTO_OP_LIMIT; op++) {
		for (int reply = 0; reply < 2; reply++) {
			for (uint64_t seed = 1; seed <= 2; seed++) {
				int n;
				if (sample_fill(&smp, op, reply, seed) < 0)
					continue;
				if (!reply && seed == 2)        /* handles the fuzzed server accepts */
					sample_seal_handles(&smp, &key);
				if (reply)                      /* the id the fuzzed client waits on */
					smp.hdr.id = op;
				n = proto_encode(buf, sizeof(buf), &smp.hdr, smp.msg, 0, &err);
				if (n > 0)
					add_seed(buf, (size_t)n);
			}
		}
	}
	/* A real client HELLO, so mutations reach the handshake's checks. */
	{
		static const uint8_t psk[32] = "fuzz secret fuzz secret fuzz se";
		struct proto_client_cfg cfg = { psk, sizeof(psk), "fuzz", false, PROTO_MAX_BODY, 64 };
		uint8_t nonce[32] = { 9, 9, 9 };
		struct proto_auth_client c;
		struct proto_session sess;
		size_t n;
		proto_authc_init(&c, &cfg, nonce, &sess);
		if (proto_authc_step(&c, NULL, 0, buf, sizeof(buf), &n) == 0)
			add_seed(buf, n);
		cfg.want_anon = true;
		proto_authc_init(&c, &cfg, nonce, &sess);
		if (proto_authc_step(&c, NULL, 0, buf, sizeof(buf), &n) == 0)
			add_seed(buf, n);
	}
}

static const uint32_t interesting[] = { 0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000,
	0x7fffffff, 0x80000000u, 0xffffffffu, '/', '.', 255, 256, 4095, 4096, PROTO_MAX_IO,
	PROTO_MAX_IO + 1 };

static size_t mutate(uint8_t *p, size_t n, size_t cap, uint64_t *rng)
{
	unsigned count = 1 + sample_rand(rng) % 4;

	for (unsigned k = 0; k < count; k++) {
		uint64_t r = sample_rand(rng);
		size_t at = n ? (size_t)(sample_rand(rng) % n) : 0;
		switch (r % 8) {
		case 0: if (n) p[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
		case 1: if (n) p[at] = (uint8_t)interesting[(r >> 8) % 20]; break;
		case 2: /* a u16 or u32 length-like value */
			if (at + 4 <= n) {
				uint32_t v = interesting[(r >> 8) % 20];
				unsigned w = (r >> 16) & 1 ? 4 : 2;
				for (unsigned i = 0; i < w; i++)
					p[at + i] = (uint8_t)(v >> (8 * i));
			}
			break;
		case 3: n = n ? (size_t)(sample_rand(rng) % n) : 0; break;   /* truncate */
		case 4: /* insert a byte */
			if (n < cap) {
				memmove(p + at + 1, p + at, n - at);
				p[at] = (uint8_t)(r >> 8);
				n++;
			}
			break;
		case 5: /* delete a byte */
			if (n) {
				memmove(p + at, p + at + 1, n - at - 1);
				n--;
			}
			break;
		case 6: if (n) p[at] = (uint8_t)(r >> 8); break;
		case 7: break;
		}
	}
	/* Half the time keep the header's length consistent, so the body
	 * checks (not just the length check) are exercised. */
	if (n >= PROTO_HDR_SIZE && (sample_rand(rng) & 1)) {
		uint32_t body = (uint32_t)(n - PROTO_HDR_SIZE);
		for (int i = 0; i < 4; i++)
			p[12 + i] = (uint8_t)(body >> (8 * i));
	}
	return n;
}

TEST(mutated_frames)
{
	static uint8_t buf[FRAME_MAX + 64];
	uint64_t rng = 0x5eed;
	unsigned accepted = 0, rejected = 0;
	struct proto_hdr h;
	struct proto_err err;
	_Alignas(16) static uint8_t msg[SAMPLE_MSG_MAX];

	make_seeds();
	EXPECT(nseeds > 50);
	for (unsigned i = 0; i < ITERATIONS; i++) {
		unsigned s = (unsigned)(sample_rand(&rng) % nseeds);
		size_t n = seed_len[s];
		memcpy(buf, seeds[s], n);
		n = mutate(buf, n, sizeof(buf), &rng);
		proto_fuzz_one(buf, n);
		/* count, so a mutator that never gets past the header shows */
		uint8_t version = n > 5 && buf[5] == PROTO_OP_HELLO ? PROTO_HELLO_VERSION : PROTO_VERSION_MAX;
		if (proto_hdr_decode(buf, n, version, PROTO_MAX_BODY, &h, &err) == 0 &&
		    n - PROTO_HDR_SIZE == h.length &&
		    proto_decode_body(&h, buf + PROTO_HDR_SIZE, h.length, msg, &err) == 0)
			accepted++;
		else
			rejected++;
	}
	printf("# %u mutated frames: %u accepted (re-encoded identically), %u rejected, "
	       "%lu reached a server filesystem operation, %lu were accepted by the client\n", ITERATIONS,
	       accepted, rejected, proto_fuzz_fs_calls, proto_fuzz_client_accepts);
	EXPECT(proto_fuzz_client_accepts > ITERATIONS / 100);
	EXPECT(proto_fuzz_fs_calls > ITERATIONS / 100);
	EXPECT(accepted > ITERATIONS / 50);
	EXPECT(rejected > ITERATIONS / 2);
}

/* Every prefix of every seed: truncation anywhere never reads past it. */
TEST(all_prefixes)
{
	make_seeds();
	for (unsigned s = 0; s < nseeds; s++)
		for (size_t n = 0; n <= seed_len[s]; n++) {
			uint8_t *copy = malloc(n ? n : 1);      /* exact size: ASan sees overreads */
			memcpy(copy, seeds[s], n);
			proto_fuzz_one(copy, n);
			free(copy);
		}
	EXPECT(nseeds > 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
		make_seeds();
		for (unsigned s = 0; s < nseeds; s++) {
			char path[4096];
			FILE *f;
			snprintf(path, sizeof(path), "%s/seed-%03u", argv[2], s);
			if (!(f = fopen(path, "wb")) || fwrite(seeds[s], 1, seed_len[s], f) != seed_len[s]) {
				perror(path);
				return 1;
			}
			fclose(f);
		}
		printf("%u seeds written to %s\n", nseeds, argv[2]);
		return 0;
	}
	return test_main();
}
