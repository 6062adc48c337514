/*
 * The CPU's random number generator (kernel/random.h).
 */
#include "kernel/random.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/selftest.h"

#define RDSEED_TRIES 64         /* the entropy source refills in microseconds */
#define RDRAND_TRIES 10

enum { SRC_UNKNOWN, SRC_NONE, SRC_RDRAND, SRC_RDSEED };

static int src;                 /* probed once; races only repeat the probe */
static bool has_rdrand;
static struct random_stats stats;
static uint64_t last_word;

static void probe(void)
{
	uint32_t a, b, c, d;

	cpuid(0, 0, &a, &b, &c, &d);
	uint32_t max_leaf = a;
	cpuid(1, 0, &a, &b, &c, &d);
	has_rdrand = c & (1u << 30);
	bool rdseed = false;
	if (max_leaf >= 7) {
		cpuid(7, 0, &a, &b, &c, &d);
		rdseed = b & (1u << 18);
	}
	__atomic_store_n(&src, rdseed ? SRC_RDSEED : has_rdrand ? SRC_RDRAND : SRC_NONE, __ATOMIC_RELEASE);
}

static int source(void)
{
	if (!__atomic_load_n(&src, __ATOMIC_ACQUIRE))
		probe();
	return src;
}

static const char *source_name(int s)
{
	switch (s) {
	case SRC_RDSEED: return "RDSEED";
	case SRC_RDRAND: return "RDRAND";
	default: return "none";
	}
}

const char *random_source(void)
{
	return source_name(source());
}

static inline bool rdseed64(uint64_t *v)
{
	uint8_t ok;
	__asm__ volatile("rdseed %0; setc %1" : "=r"(*v), "=qm"(ok) :: "cc");
	return ok;
}

static inline bool rdrand64(uint64_t *v)
{
	uint8_t ok;
	__asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok) :: "cc");
	return ok;
}

static bool plausible(uint64_t v)
{
	return v != 0 && v != ~0ull && v != __atomic_load_n(&last_word, __ATOMIC_RELAXED);
}

/* One hardware word: RDSEED (bounded), then RDRAND (bounded). */
static bool hw_word(int s, uint64_t *out)
{
	uint64_t v;

	if (s == SRC_RDSEED) {
		for (int i = 0; i < RDSEED_TRIES; i++) {
			if (rdseed64(&v) && plausible(v))
				goto got;
			__atomic_add_fetch(&stats.retries, 1, __ATOMIC_RELAXED);
			__asm__ volatile("pause");
		}
	}
	if (has_rdrand) {
		for (int i = 0; i < RDRAND_TRIES; i++) {
			if (rdrand64(&v) && plausible(v))
				goto got;
			__atomic_add_fetch(&stats.retries, 1, __ATOMIC_RELAXED);
		}
	}
	return false;
got:
	__atomic_store_n(&last_word, v, __ATOMIC_RELAXED);
	*out = v;
	return true;
}

static uint64_t tsc_mix(void)
{
	uint64_t t = rdtsc() * 0x9e3779b97f4a7c15ull;
	return t ^ (t >> 29);
}

/* Fill from source s (the self-test passes SRC_NONE to see the refusal). */
static int random_fill(int s, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (s == SRC_NONE) {
		__atomic_add_fetch(&stats.failures, 1, __ATOMIC_RELAXED);
		return -ENODEV;
	}
	while (len) {
		uint64_t v;
		if (!hw_word(s, &v)) {
			__atomic_add_fetch(&stats.failures, 1, __ATOMIC_RELAXED);
			kprintf("random: the CPU's generator failed %d RDSEED and %d RDRAND tries in a row: "
				"no random bytes (hardware fault or firmware bug)\n",
				s == SRC_RDSEED ? RDSEED_TRIES : 0, has_rdrand ? RDRAND_TRIES : 0);
			return -EIO;
		}
		v ^= tsc_mix();
		size_t n = len < 8 ? len : 8;
		memcpy(p, &v, n);
		p += n;
		len -= n;
		__atomic_add_fetch(&stats.words, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

int random_bytes(void *buf, size_t len)
{
	return random_fill(source(), buf, len);
}

void random_get_stats(struct random_stats *s)
{
	s->words = __atomic_load_n(&stats.words, __ATOMIC_RELAXED);
	s->retries = __atomic_load_n(&stats.retries, __ATOMIC_RELAXED);
	s->failures = __atomic_load_n(&stats.failures, __ATOMIC_RELAXED);
}

/* ---- self-tests ------------------------------------------------------------- */
SELFTEST(random, hardware_source_present)
{
	/* the qemu tests run -cpu max, which has both instructions */
	ST_EXPECT(source() == SRC_RDSEED || source() == SRC_RDRAND);
}

SELFTEST(random, draws_differ_and_bits_balance)
{
	uint8_t *a = kmalloc(4096), b[32];
	unsigned ones = 0;

	ST_EXPECT(a != NULL);
	if (!a)
		return;

	ST_EXPECT(random_bytes(a, 4096) == 0);
	ST_EXPECT(random_bytes(b, sizeof(b)) == 0);
	ST_EXPECT(memcmp(a, b, sizeof(b)) != 0);
	for (size_t i = 0; i < 4096; i++)
		for (uint8_t x = a[i]; x; x &= (uint8_t)(x - 1))
			ones++;
	/* 32768 fair bits: mean 16384, sd 90; 800 is about 9 sd */
	ST_EXPECT(ones > 16384 - 800 && ones < 16384 + 800);
	/* no 64-bit word repeats within the draw */
	const uint64_t *w = (const uint64_t *)a;
	bool repeat = false;
	for (size_t i = 0; i < 4096 / 8 && !repeat; i++)
		for (size_t j = i + 1; j < 4096 / 8; j++)
			if (w[i] == w[j]) {
				repeat = true;
				break;
			}
	ST_EXPECT(!repeat);
	/* odd lengths fill exactly: the byte after stays */
	memset(b, 0xa5, sizeof(b));
	ST_EXPECT(random_bytes(b, 13) == 0);
	ST_EXPECT(b[13] == 0xa5 && b[31] == 0xa5);
	ST_EXPECT(random_bytes(b, 0) == 0);
	kfree(a);
}

SELFTEST(random, no_generator_refuses)
{
	uint8_t k[32];

	ST_EXPECT(random_fill(SRC_NONE, k, sizeof(k)) == -ENODEV);
	ST_EXPECT(!strcmp(source_name(SRC_NONE), "none"));
}
