/* CRC-32C against published vectors (RFC 3720 B.4, the "123456789" check
 * value), both implementations, every alignment, and chaining. */
#define TEST_SUITE "cowfs_crc32c"
#include "tests/host/test.h"
#include "fs/crc32c.h"

struct vec { uint8_t data[32]; size_t len; uint32_t crc; };

static void vectors(struct vec *v)
{
	memcpy(v[0].data, "123456789", 9);
	v[0].len = 9;
	v[0].crc = 0xE3069283u;
	memset(v[1].data, 0, 32);           /* RFC 3720 B.4: 32 bytes of zeros */
	v[1].len = 32;
	v[1].crc = 0x8A9136AAu;
	memset(v[2].data, 0xff, 32);        /* 32 bytes of ones */
	v[2].len = 32;
	v[2].crc = 0x62A8AB43u;
	for (int i = 0; i < 32; i++) {
		v[3].data[i] = (uint8_t)i;      /* incrementing */
		v[4].data[i] = (uint8_t)(31 - i); /* decrementing */
	}
	v[3].len = v[4].len = 32;
	v[3].crc = 0x46DD794Eu;
	v[4].crc = 0x113FDB5Cu;
	v[5].len = 0;
	v[5].crc = 0;
}

TEST(table_known_vectors)
{
	struct vec v[6];
	vectors(v);
	for (int i = 0; i < 6; i++)
		EXPECT_EQ_INT(crc32c_table(0, v[i].data, v[i].len), v[i].crc);
}

TEST(sse42_known_vectors)
{
	struct vec v[6];
	vectors(v);
	if (!crc32c_have_sse42()) {
		test_fail_at(__FILE__, __LINE__, "this CPU reports no SSE4.2: the instruction path is untested");
		return;
	}
	for (int i = 0; i < 6; i++)
		EXPECT_EQ_INT(crc32c_sse42(0, v[i].data, v[i].len), v[i].crc);
	EXPECT_EQ_INT(crc32c(0, v[0].data, v[0].len), v[0].crc);
}

TEST(slice8_known_vectors)
{
	struct vec v[6];
	vectors(v);
	for (int i = 0; i < 6; i++)
		EXPECT_EQ_INT(crc32c_slice8(0, v[i].data, v[i].len), v[i].crc);
}

/* Every start alignment and length 0..300, plus a 1 MiB buffer: the
 * implementations agree (the instruction and slice-by-8 paths have
 * separate head, body and tail loops), through crc32c() with each one
 * selected. */
TEST(paths_agree_all_alignments)
{
	static uint8_t buf[1 << 20];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	enum crc32c_impl was = crc32c_current();
	for (int impl = CRC32C_SLICE8; impl <= CRC32C_SSE42; impl++) {
		if (crc32c_use((enum crc32c_impl)impl)) {
			EXPECT(impl == CRC32C_SSE42 && !crc32c_have_sse42());
			continue;
		}
		EXPECT_EQ_INT(crc32c_current(), impl);
		for (size_t off = 0; off < 16; off++)
			for (size_t len = 0; len < 300; len++)
				if (crc32c_table(7, buf + off, len) != crc32c(7, buf + off, len)) {
					char m[96];
					snprintf(m, sizeof(m), "%s: mismatch at off %zu len %zu",
						 crc32c_impl_name((enum crc32c_impl)impl), off, len);
					test_fail_at(__FILE__, __LINE__, m);
					crc32c_use(was);
					return;
				}
		EXPECT_EQ_INT(crc32c_table(0, buf, sizeof(buf)), crc32c(0, buf, sizeof(buf)));
	}
	crc32c_use(was);
}

/* The calibration keeps the candidate the clock says is faster.  A fake
 * clock that charges the instruction path 100x makes it pick slice-by-8,
 * and the other way round; the measured rates are reported. */
static int fake_slow;                 /* which implementation the fake clock charges */
static uint64_t fake_t;
static uint64_t fake_clock(void)
{
	/* Called before and after each timed sum: the sum in between is
	 * charged by which implementation crc32c_calibrate is timing, told
	 * by the call count (2 reps of slice-by-8, then 2 of sse4.2). */
	static unsigned calls;
	unsigned timing = (calls++ / 4) % 2 == 0 ? CRC32C_SLICE8 : CRC32C_SSE42;
	fake_t += (calls % 2 == 0) ? ((int)timing == fake_slow ? 100000 : 1000) : 0;
	return fake_t;
}

TEST(calibrate_keeps_the_faster)
{
	enum crc32c_impl was = crc32c_current();
	uint64_t mbps[3] = { 0 };
	if (!crc32c_have_sse42()) {
		test_fail_at(__FILE__, __LINE__, "this CPU reports no SSE4.2: the choice is untested");
		return;
	}
	fake_slow = CRC32C_SSE42;
	EXPECT_EQ_INT(crc32c_calibrate(fake_clock, mbps), CRC32C_SLICE8);
	EXPECT_EQ_INT(crc32c_current(), CRC32C_SLICE8);
	EXPECT(mbps[CRC32C_SLICE8] > 10 * mbps[CRC32C_SSE42] && mbps[CRC32C_SSE42] > 0);
	fake_slow = CRC32C_SLICE8;
	EXPECT_EQ_INT(crc32c_calibrate(fake_clock, mbps), CRC32C_SSE42);
	EXPECT_EQ_INT(crc32c_current(), CRC32C_SSE42);
	crc32c_use(was);
}

TEST(chaining_equals_whole)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	uint32_t whole = crc32c(0, s, n);
	for (size_t k = 0; k <= n; k++) {
		EXPECT_EQ_INT(crc32c(crc32c(0, s, k), s + k, n - k), whole);
		EXPECT_EQ_INT(crc32c_table(crc32c_table(0, s, k), s + k, n - k), whole);
	}
	/* A single flipped bit changes the checksum. */
	char t[64];
	memcpy(t, s, n);
	t[10] ^= 4;
	EXPECT(crc32c(0, t, n) != whole);
}

TEST_MAIN()
