/* Self-tests for formatting, the log ring, string helpers and strerror. */
#include "kernel/selftest.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/sched.h"
#include "kernel/time.h"
#include <stdint.h>

static bool kprintf_test_is(const char *fmt_result, const char *want)
{
	return strcmp(fmt_result, want) == 0;
}

#define FMT_EXPECT(want, ...)                                  \
	do {                                                   \
		char b_[96];                                   \
		ksnprintf(b_, sizeof(b_), __VA_ARGS__);        \
		if (!kprintf_test_is(b_, want))                \
			kprintf("  got '%s' want '%s'\n", b_, want); \
		ST_EXPECT(kprintf_test_is(b_, want));          \
	} while (0)

SELFTEST(kprintf, integers)
{
	FMT_EXPECT("deadbeefcafef00d", "%llx", 0xdeadbeefcafef00dULL);
	FMT_EXPECT("DEADBEEF", "%X", 0xdeadbeefu);
	FMT_EXPECT("00001234", "%08x", 0x1234u);
	FMT_EXPECT("-2147483648", "%d", (int)(-2147483647 - 1));
	FMT_EXPECT("-9223372036854775808", "%lld", (long long)(-9223372036854775807LL - 1));
	FMT_EXPECT("18446744073709551615", "%llu", ~0ULL);
	FMT_EXPECT("123456789012", "%zu", (size_t)123456789012ULL);
	FMT_EXPECT("  -42", "%5d", -42);
	FMT_EXPECT("-0042", "%05d", -42);
	FMT_EXPECT("7    |", "%-5d|", 7);
	FMT_EXPECT("0", "%x", 0u);
	FMT_EXPECT("", "%.0d", 0);
	FMT_EXPECT("   007", "%6.3d", 7);
	FMT_EXPECT("0x1f", "%#x", 0x1fu);
	FMT_EXPECT("4294967295", "%lu", 4294967295UL);
}

SELFTEST(kprintf, strings_pointers)
{
	FMT_EXPECT("ab      |", "%-8s|", "ab");
	FMT_EXPECT("      ab", "%8s", "ab");
	FMT_EXPECT("abc", "%.3s", "abcdef");
	FMT_EXPECT("xy", "%.*s", 2, "xyz");
	FMT_EXPECT("   xy", "%*.*s", 5, 2, "xyz");
	const char *volatile null_str = NULL;   /* hidden from -Wformat */
	FMT_EXPECT("(null)", "%s", null_str);
	FMT_EXPECT("A%", "%c%%", 'A');
	FMT_EXPECT("0x0000000000001000", "%p", (void *)0x1000);
	FMT_EXPECT("0xffffffff80100000", "%p", (void *)0xffffffff80100000ULL);
}

SELFTEST(kprintf, truncation)
{
	char b[4];
	ST_EXPECT(ksnprintf(b, sizeof(b), "abcdef") == 6);
	ST_EXPECT(strcmp(b, "abc") == 0);
	ST_EXPECT(ksnprintf(NULL, 0, "%d", 12345) == 5);
	b[0] = 'z';
	ST_EXPECT(ksnprintf(b, 1, "q") == 1 && b[0] == '\0');
}

SELFTEST(kprintf, log_ring)
{
	static char buf[256];
	kprintf("kprintf-test marker %d\n", 4242);
	size_t n = log_read(buf, sizeof(buf) - 1);
	buf[n] = '\0';
	ST_EXPECT(n == sizeof(buf) - 1);
	/* The newest bytes come last, so the marker ends the copy. */
	const char *want = "kprintf-test marker 4242\n";
	size_t wl = strlen(want);
	ST_EXPECT(n >= wl && strcmp(buf + n - wl, want) == 0);
}

SELFTEST(kstring, parse_u64)
{
	unsigned long long v = 0;
	ST_EXPECT(parse_u64("4k", &v) == 0 && v == 4096);
	ST_EXPECT(parse_u64("0x10", &v) == 0 && v == 16);
	ST_EXPECT(parse_u64("16G", &v) == 0 && v == (16ULL << 30));
	ST_EXPECT(parse_u64("18446744073709551615", &v) == 0 && v == ~0ULL);
	ST_EXPECT(parse_u64("18446744073709551616", &v) == -EINVAL);
	ST_EXPECT(parse_u64("0x", &v) == -EINVAL);
	ST_EXPECT(parse_u64("12q", &v) == -EINVAL);
	ST_EXPECT(parse_u64("", &v) == -EINVAL);
	ST_EXPECT(parse_u64("0x100000000000000g", &v) == -EINVAL);
}

SELFTEST(kstring, memory)
{
	char a[32];
	memset(a, 'x', sizeof(a));
	memcpy(a, "0123456789", 10);
	memmove(a + 2, a, 8);           /* overlapping, forwards */
	ST_EXPECT(memcmp(a, "0101234567", 10) == 0);
	memmove(a, a + 2, 8);           /* overlapping, backwards */
	ST_EXPECT(memcmp(a, "0123456767", 10) == 0);
	ST_EXPECT(strlcpy(a, "hello world", 6) == 11 && strcmp(a, "hello") == 0);
	ST_EXPECT(strncmp("abcd", "abce", 3) == 0 && strncmp("abcd", "abce", 4) < 0);
	ST_EXPECT(strchr("abc", 'c') != NULL && strchr("abc", 'z') == NULL);
	ST_EXPECT(strcmp(strerror(-ENOMEM), "out of memory") == 0);
	ST_EXPECT(strcmp(strerror(ETIMEDOUT), "timed out") == 0);
}

/* memmove in both directions, every overlap distance 1..40 and length
 * 0..100, against a copy through a separate buffer. */
SELFTEST(kstring, memmove_every_overlap)
{
	static unsigned char buf[160], ref[160], tmp[160];
	for (unsigned shift = 1; shift <= 40; shift++)
		for (unsigned n = 0; n <= 100; n++)
			for (int up = 0; up < 2; up++) {
				for (unsigned i = 0; i < sizeof(buf); i++)
					buf[i] = ref[i] = (unsigned char)(i * 13 + shift);
				unsigned from = up ? 8 : 8 + shift, to = up ? 8 + shift : 8;
				for (unsigned i = 0; i < n; i++)
					tmp[i] = ref[from + i];
				for (unsigned i = 0; i < n; i++)
					ref[to + i] = tmp[i];
				ST_EXPECT(memmove(buf + to, buf + from, n) == buf + to);
				if (memcmp(buf, ref, sizeof(buf))) {
					kprintf("memmove %s by %u, %u bytes: wrong\n", up ? "up" : "down", shift, n);
					ST_EXPECT(memcmp(buf, ref, sizeof(buf)) == 0);
					return;
				}
			}
}

/* memcpy and memset work in words and tail bytes: every length 0..80 at
 * every source and destination misalignment 0..7 writes exactly its bytes
 * and not one byte either side. */
SELFTEST(kstring, word_copy_every_length_and_alignment)
{
	static unsigned char src[128], dst[128];
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 7 + 1);
	for (unsigned so = 0; so < 8; so++)
		for (unsigned dof = 0; dof < 8; dof++)
			for (unsigned n = 0; n <= 80; n++) {
				for (unsigned i = 0; i < sizeof(dst); i++)
					dst[i] = 0xEE;
				ST_EXPECT(memcpy(dst + dof, src + so, n) == dst + dof);
				for (unsigned i = 0; i < sizeof(dst); i++) {
					unsigned char want = i >= dof && i < dof + n ? src[so + i - dof] : 0xEE;
					if (dst[i] != want) {
						kprintf("memcpy(dst+%u, src+%u, %u): byte %u is %#x, expected %#x\n",
							dof, so, n, i, dst[i], want);
						ST_EXPECT(dst[i] == want);
						return;
					}
				}
				ST_EXPECT(memset(dst + dof, 0x5A, n) == dst + dof);
				for (unsigned i = 0; i < sizeof(dst); i++) {
					unsigned char want = i >= dof && i < dof + n ? 0x5A : 0xEE;
					if (dst[i] != want) {
						kprintf("memset(dst+%u, 0x5a, %u): byte %u is %#x\n", dof, n, i, dst[i]);
						ST_EXPECT(dst[i] == want);
						return;
					}
				}
			}
}

SELFTEST(kstring, boot_args)
{
	ST_EXPECT(arg_get("no-such-boot-argument") == NULL);
	ST_EXPECT(!arg_present("no-such-boot-argument"));
	if (arg_present("selftest")) {   /* set when tests run at boot */
		ST_EXPECT(strcmp(arg_get("selftest"), "") == 0);
		ST_EXPECT(!arg_present("selftest=yes"));
	}
	if (arg_get("panic"))
		ST_EXPECT(arg_present("panic=poweroff") == (strcmp(arg_get("panic"), "poweroff") == 0));
}

SELFTEST(kstring, strstr_strncasecmp)
{
	const char *h = "GET / HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n";
	ST_EXPECT(strstr(h, "\r\n") == h + 14);
	ST_EXPECT(strstr(h, "\r\n\r\n") == h + 39);
	ST_EXPECT(strstr(h, "nope") == NULL);
	ST_EXPECT(strstr(h, "") == h);
	ST_EXPECT(strncasecmp("AUTHORIZATION: x", "authorization: y", 15) == 0);
	ST_EXPECT(strncasecmp("Authorization", "Authorizatiom", 13) != 0);
	ST_EXPECT(strncasecmp("ab", "abc", 3) < 0);
}

/* A thread's sink takes what it prints (kprintf and console_write, '\r'
 * dropped, the excess counted), and nothing another thread prints. */
static void kout_other_thread(void *arg)
{
	(void)arg;
	kprintf("kout selftest: another thread prints to the console\n");
}

SELFTEST(kprintf, capture_sink)
{
	char buf[32];
	struct kout_sink k;

	kout_sink_init(&k, buf, sizeof(buf), NULL);

	kout_capture(&k);
	kprintf("hello %d\n", 5);
	console_write("a\r\nb", 4);
	struct thread *t = thread_create("kout-test", kout_other_thread, NULL, THREAD_ANY_CPU);
	int jrc = t ? thread_join(t, 5 * NS_PER_S) : -ENOMEM;
	kprintf("0123456789012345678901234567890123456789");
	kout_capture(NULL);
	ST_EXPECT(jrc == 0);
	ST_EXPECT(k.len == sizeof(buf));
	/* exactly these bytes: the other thread's line is not among them */
	ST_EXPECT(memcmp(buf, "hello 5\na\nb012345678901234567890", sizeof(buf)) == 0);
	ST_EXPECT(k.cut == 40 - (sizeof(buf) - 11));
	size_t before = k.len;
	kprintf("kout selftest: printed after the capture ended\n");
	ST_EXPECT(k.len == before);
}

/* A sink read while it fills: each line the printer adds wakes the reader,
 * who copies exactly the new bytes before the printer goes on (it waits
 * for the reader's word), so the bytes are seen while the capture runs. */
struct kout_stream_test {
	struct kout_sink k;
	struct waitq wq;
	unsigned acked;
	int err;
};

static unsigned kout_stream_line;

static bool kout_stream_acked(void *arg)
{
	struct kout_stream_test *s = arg;
	return __atomic_load_n(&s->acked, __ATOMIC_ACQUIRE) > kout_stream_line;
}

/* One line, then wait until the reader has it, three times.  The pause
 * before each line lets the reader fall asleep first, so only the print's
 * wake ends its wait in time: the reader's deadline (5 s) is later than
 * the printer's (2 s), which then fails the test. */
static void kout_stream_printer(void *arg)
{
	struct kout_stream_test *s = arg;
	kout_capture(&s->k);
	for (kout_stream_line = 0; kout_stream_line < 3 && !s->err; kout_stream_line++) {
		thread_sleep_ns(20 * NS_PER_MS);
		kprintf("line %u\n", kout_stream_line);
		s->err = waitq_wait_until(&s->wq, kout_stream_acked, s, time_ns() + 2 * NS_PER_S);
	}
	kout_capture(NULL);
}

struct kout_stream_wait {
	struct kout_stream_test *s;
	size_t off;
};

static bool kout_stream_more(void *arg)
{
	struct kout_stream_wait *w = arg;
	return kout_len(&w->s->k) > w->off;
}

SELFTEST(kprintf, capture_read_while_printing)
{
	static struct kout_stream_test s;
	char buf[64], got[64];
	size_t off = 0;
	int wrc = 0;

	memset(&s, 0, sizeof(s));
	waitq_init(&s.wq, "kout-test");
	kout_sink_init(&s.k, buf, sizeof(buf), &s.wq);
	struct thread *t = thread_create("kout-stream", kout_stream_printer, &s, THREAD_ANY_CPU);
	ST_EXPECT(t != NULL);
	if (!t)
		return;
	/* Each line is read while the printer waits for it to be read. */
	for (unsigned i = 0; i < 3 && !wrc; i++) {
		struct kout_stream_wait w = { &s, off };
		wrc = waitq_wait_until(&s.wq, kout_stream_more, &w, time_ns() + 5 * NS_PER_S);
		size_t n = kout_copy(&s.k, off, got + off, sizeof(got) - off);
		ST_EXPECT(n == 7);
		off += n;
		__atomic_store_n(&s.acked, i + 1, __ATOMIC_RELEASE);
		waitq_wake_all(&s.wq);
	}
	ST_EXPECT(wrc == 0);
	ST_EXPECT(thread_join(t, 5 * NS_PER_S) == 0);
	ST_EXPECT(s.err == 0);
	ST_EXPECT(off == 21 && !memcmp(got, "line 0\nline 1\nline 2\n", 21));
	ST_EXPECT(kout_copy(&s.k, off, got, sizeof(got)) == 0);
	kout_append(&s.k, "end\n", 4);
	ST_EXPECT(kout_len(&s.k) == 25 && kout_copy(&s.k, 21, got, sizeof(got)) == 4 && !memcmp(got, "end\n", 4));
}
