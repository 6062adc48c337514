/*
 * CRC-32C: reflected polynomial 0x82F63B78, init and final XOR ~0.
 * See crc32c.h.  Portable: no library calls.
 */
#include "fs/crc32c.h"

#define CRC32C_POLY 0x82F63B78u

/* crc32c_tab[0] is the byte table; crc32c_tab[k][b] is the CRC of byte b
 * followed by k zero bytes, for slice-by-8. */
static uint32_t crc32c_tab[8][256];
static int crc32c_tab_ready;       /* 0 no, 1 yes (atomic) */
static int crc32c_hw = -1;         /* -1 unknown, 0 no, 1 yes (atomic) */
static int crc32c_impl = -1;       /* enum crc32c_impl; -1 = not chosen (atomic) */

/* Built on first use.  Two threads racing here write identical values,
 * and readers only look at the table after seeing the flag (acquire). */
static void crc32c_tab_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc32c_tab[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc32c_tab[t][i] = (crc32c_tab[t - 1][i] >> 8) ^ crc32c_tab[0][crc32c_tab[t - 1][i] & 0xff];
	__atomic_store_n(&crc32c_tab_ready, 1, __ATOMIC_RELEASE);
}

static void crc32c_tab_need(void)
{
	if (!__atomic_load_n(&crc32c_tab_ready, __ATOMIC_ACQUIRE))
		crc32c_tab_init();
}

uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	crc32c_tab_need();
	while (len--)
		c = crc32c_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* Eight bytes per step through eight tables (little-endian loads). */
uint32_t crc32c_slice8(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	crc32c_tab_need();
	for (; len && ((uintptr_t)p & 7); len--)
		c = crc32c_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
			     (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
		v ^= c;
		c = crc32c_tab[7][v & 0xff] ^ crc32c_tab[6][(v >> 8) & 0xff] ^
		    crc32c_tab[5][(v >> 16) & 0xff] ^ crc32c_tab[4][(v >> 24) & 0xff] ^
		    crc32c_tab[3][(v >> 32) & 0xff] ^ crc32c_tab[2][(v >> 40) & 0xff] ^
		    crc32c_tab[1][(v >> 48) & 0xff] ^ crc32c_tab[0][v >> 56];
	}
	while (len--)
		c = crc32c_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
bool crc32c_have_sse42(void)
{
	int hw = __atomic_load_n(&crc32c_hw, __ATOMIC_ACQUIRE);
	if (hw < 0) {
		uint32_t a = 1, b, c = 0, d;
		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		hw = (c >> 20) & 1;     /* CPUID.01H:ECX.SSE4_2[bit 20] */
		__atomic_store_n(&crc32c_hw, hw, __ATOMIC_RELEASE);
	}
	return hw;
}

uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	/* Bytes up to an 8-byte boundary, then 8 at a time, then the tail. */
	for (; len && ((uintptr_t)p & 7); len--, p++)
		__asm__("crc32b %1, %k0" : "+r"(c) : "rm"(*p));
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;
		__builtin_memcpy(&v, p, 8);
		__asm__("crc32q %1, %0" : "+r"(c) : "rm"(v));
	}
	for (; len; len--, p++)
		__asm__("crc32b %1, %k0" : "+r"(c) : "rm"(*p));
	return ~(uint32_t)c;
}
#else
bool crc32c_have_sse42(void)
{
	return false;
}

uint32_t crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_table(crc, buf, len);
}
#endif

static const char *const crc32c_impl_names[] = { "table", "slice-by-8", "sse4.2" };

const char *crc32c_impl_name(enum crc32c_impl impl)
{
	return (unsigned)impl < 3 ? crc32c_impl_names[impl] : "?";
}

enum crc32c_impl crc32c_current(void)
{
	int impl = __atomic_load_n(&crc32c_impl, __ATOMIC_RELAXED);
	if (impl < 0)
		impl = crc32c_have_sse42() ? CRC32C_SSE42 : CRC32C_SLICE8;
	return (enum crc32c_impl)impl;
}

int crc32c_use(enum crc32c_impl impl)
{
	if ((unsigned)impl > CRC32C_SSE42 || (impl == CRC32C_SSE42 && !crc32c_have_sse42()))
		return -1;
	__atomic_store_n(&crc32c_impl, (int)impl, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Measured, not assumed: the crc32 instruction is ~5x faster than
 * slice-by-8 on hardware, and ~5x slower under qemu's TCG, which emulates
 * it in a helper (135 against 730 MB/s).  Each candidate sums the same
 * 64 KiB twice; the better of its two times counts.
 */
enum crc32c_impl crc32c_calibrate(uint64_t (*now_ns)(void), uint64_t rate_mbps[3])
{
	static uint8_t buf[64 << 10];
	enum crc32c_impl best = CRC32C_SLICE8;
	uint64_t best_ns = UINT64_MAX;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (int impl = CRC32C_SLICE8; impl <= CRC32C_SSE42; impl++) {
		if (impl == CRC32C_SSE42 && !crc32c_have_sse42())
			break;
		uint64_t t_min = UINT64_MAX;
		for (int rep = 0; rep < 2; rep++) {
			uint64_t t0 = now_ns();
			volatile uint32_t sink = impl == CRC32C_SSE42 ? crc32c_sse42(0, buf, sizeof(buf))
								       : crc32c_slice8(0, buf, sizeof(buf));
			(void)sink;
			uint64_t dt = now_ns() - t0;
			t_min = dt < t_min ? dt : t_min;
		}
		if (rate_mbps)
			rate_mbps[impl] = sizeof(buf) * 1000ull / (t_min ? t_min : 1);
		if (t_min < best_ns) {
			best_ns = t_min;
			best = (enum crc32c_impl)impl;
		}
	}
	crc32c_use(best);
	return best;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	switch (crc32c_current()) {
	case CRC32C_SSE42:
		return crc32c_sse42(crc, buf, len);
	case CRC32C_SLICE8:
		return crc32c_slice8(crc, buf, len);
	default:
		return crc32c_table(crc, buf, len);
	}
}
