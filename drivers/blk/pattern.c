/* Reproducible data patterns and CRC32 for block tests (see pattern.h). */
#include "drivers/blk/pattern.h"

uint64_t pattern_splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void pattern_fill(void *buf, uint64_t byte_off, size_t len, uint64_t seed)
{
	uint64_t *w = buf;
	uint64_t base = byte_off / 8, key = seed << 40;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = pattern_splitmix64(key ^ (base + i));
}

long pattern_check(const void *buf, uint64_t byte_off, size_t len, uint64_t seed,
		   uint64_t *got, uint64_t *want)
{
	const uint64_t *w = buf;
	uint64_t base = byte_off / 8, key = seed << 40;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t e = pattern_splitmix64(key ^ (base + i));
		if (w[i] != e) {
			if (got)
				*got = w[i];
			if (want)
				*want = e;
			return (long)(i * 8);
		}
	}
	return -1;
}

static uint32_t pattern_crc_table[256];
static volatile int pattern_crc_ready;

uint32_t pattern_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	if (!pattern_crc_ready) {      /* idempotent: racing builders agree */
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t v = i;
			for (int k = 0; k < 8; k++)
				v = (v & 1) ? 0xedb88320u ^ (v >> 1) : v >> 1;
			pattern_crc_table[i] = v;
		}
		__atomic_store_n(&pattern_crc_ready, 1, __ATOMIC_RELEASE);
	}
	while (len--)
		c = pattern_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}
