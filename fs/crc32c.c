/*
 * CRC-32C: reflected polynomial 0x82F63B78, init and final XOR ~0.
 * See crc32c.h.  Portable: no library calls.
 */
#include "fs/crc32c.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_tab[256];
static int crc32c_tab_ready;       /* 0 no, 1 yes (atomic) */
static int crc32c_hw = -1;         /* -1 unknown, 0 no, 1 yes (atomic) */

/* Built on first use.  Two threads racing here write identical values,
 * and readers only look at the table after seeing the flag (acquire). */
static void crc32c_tab_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc32c_tab[i] = c;
	}
	__atomic_store_n(&crc32c_tab_ready, 1, __ATOMIC_RELEASE);
}

uint32_t crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	if (!__atomic_load_n(&crc32c_tab_ready, __ATOMIC_ACQUIRE))
		crc32c_tab_init();
	while (len--)
		c = crc32c_tab[(c ^ *p++) & 0xff] ^ (c >> 8);
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

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc32c_have_sse42())
		return crc32c_sse42(crc, buf, len);
	return crc32c_table(crc, buf, len);
}
