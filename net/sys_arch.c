/*
 * What lwIP needs from the kernel with NO_SYS = 1: a millisecond clock, a
 * random source (TCP initial sequence numbers, mDNS probe delays) and atoi.
 */
#include <stdint.h>
#include "lwip/sys.h"
#include "kernel/time.h"

u32_t sys_now(void)
{
	return (u32_t)(time_ns() / NS_PER_MS);
}

/* xorshift64* seeded from the TSC on first use, stirred with it on every
 * call: unpredictable enough for sequence numbers on a LAN appliance. */
uint32_t net_rand(void)
{
	static uint64_t s;
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	s ^= ((uint64_t)hi << 32 | lo) * 0x9e3779b97f4a7c15ULL;
	if (!s)
		s = 0x2545f4914f6cdd1dULL;
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return (uint32_t)((s * 0x2545f4914f6cdd1dULL) >> 32);
}

int atoi(const char *p)
{
	int v = 0, neg = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return neg ? -v : v;
}
