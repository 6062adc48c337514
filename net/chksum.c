/*
 * The Internet checksum for lwIP (LWIP_CHKSUM in lwipopts.h): the
 * non-inverted ones'-complement sum of 16-bit words in memory order, as
 * lwip_standard_chksum computes it, but summed 64 bits at a time.  A
 * ones'-complement sum is the same whatever the word size as long as
 * carries wrap around, so eight bytes per load give the same result as
 * two.  lwIP's version was ~6 % of the guest's time receiving a file
 * under qemu's TCG, where every load is costly.
 */
#include "net/net.h"
#include "kernel/kstring.h"
#include "kernel/selftest.h"
#include "kernel/kprintf.h"

uint16_t net_chksum(const void *data, int len)
{
	const uint8_t *p = data;
	uint64_t sum = 0;
	uint16_t edge = 0;
	bool odd = (uintptr_t)p & 1;

	if (odd && len > 0) {           /* the first byte is the high half of a word */
		((uint8_t *)&edge)[1] = *p++;
		len--;
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		sum += v;
		sum += sum < v;         /* end-around carry */
	}
	for (; len >= 2; p += 2, len -= 2) {
		uint16_t v;
		memcpy(&v, p, 2);
		sum += v;
		sum += sum < v;
	}
	if (len > 0)
		((uint8_t *)&edge)[0] = *p;
	sum += edge;
	sum += sum < edge;
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	if (odd)
		sum = ((sum & 0xff) << 8) | ((sum >> 8) & 0xff);
	return (uint16_t)sum;
}

/* Against the definition (16-bit words, carries folded at the end) at
 * every start alignment and many lengths, including sums that carry. */
static uint16_t chksum_reference(const uint8_t *p, int len, bool odd_start)
{
	uint32_t sum = 0;
	/* Words as the bytes lie in memory, pairs starting at an even address. */
	int i = 0;
	if (odd_start && len > 0) {
		uint16_t w = 0;
		((uint8_t *)&w)[1] = p[0];
		sum += w;
		i = 1;
	}
	for (; i + 1 < len; i += 2) {
		uint16_t w;
		memcpy(&w, p + i, 2);
		sum += w;
	}
	if (i < len) {
		uint16_t w = 0;
		((uint8_t *)&w)[0] = p[i];
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (odd_start)
		sum = ((sum & 0xff) << 8) | (sum >> 8);
	return (uint16_t)sum;
}

SELFTEST(net, chksum_matches_the_definition)
{
	static uint8_t buf[2048 + 16];
	uint32_t x = 2463534242u;
	for (unsigned i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	for (unsigned i = 0; i < 64; i++)
		buf[1000 + i] = 0xff;   /* runs of ones: carries out of every word */
	for (unsigned off = 0; off < 16; off++)
		for (int len = 0; len <= 2048; len += len < 80 ? 1 : 61) {
			uint16_t want = chksum_reference(buf + off, len, ((uintptr_t)(buf + off)) & 1);
			uint16_t got = net_chksum(buf + off, len);
			if (got != want) {
				kprintf("    offset %u length %d: 0x%04x, want 0x%04x\n", off, len, got, want);
				ST_EXPECT(got == want);
				return;
			}
		}
	ST_EXPECT(net_chksum(buf, 0) == 0);
}
