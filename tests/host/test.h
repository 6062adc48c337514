/*
 * Minimal host unit-test framework.
 *
 *   TEST(name) { EXPECT(a == b); EXPECT_EQ_INT(x, 3); }
 *   int main(void) { return test_main(); }   (or TEST_MAIN())
 *
 * Output protocol shared by every test program and the qemu tests, read by
 * tests/summary.py:  one line per case, "ok - SUITE.NAME" or
 * "not ok - SUITE.NAME: reason".  The program exits 1 if any case failed.
 * TEST_SUITE must be #defined before including this header.
 */
#ifndef TESTS_HOST_TEST_H
#define TESTS_HOST_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>

#ifndef TEST_SUITE
#error "#define TEST_SUITE \"name\" before including tests/host/test.h"
#endif

struct test_case {
	const char *name;
	void (*fn)(void);
	struct test_case *next;
};

static struct test_case *test_cases_head, **test_cases_tail = &test_cases_head;
static bool test_current_failed;
static char test_current_reason[640];

static inline void test_register(struct test_case *tc)
{
	*test_cases_tail = tc;
	test_cases_tail = &tc->next;
}

#define TEST(name)                                                              \
	static void test_fn_##name(void);                                       \
	static struct test_case test_case_##name = { #name, test_fn_##name, 0 }; \
	__attribute__((constructor)) static void test_reg_##name(void)          \
	{ test_register(&test_case_##name); }                                   \
	static void test_fn_##name(void)

static inline void test_fail_at(const char *file, int line, const char *what)
{
	if (!test_current_failed)
		snprintf(test_current_reason, sizeof(test_current_reason), "%s:%d: %s",
			 file, line, what);
	test_current_failed = true;
}

#define EXPECT(cond) \
	do { if (!(cond)) test_fail_at(__FILE__, __LINE__, "expected " #cond); } while (0)
#define EXPECT_EQ_INT(a, b)                                                     \
	do {                                                                    \
		long long test_a_ = (long long)(a), test_b_ = (long long)(b);   \
		if (test_a_ != test_b_) {                                       \
			char test_m_[256];                                      \
			snprintf(test_m_, sizeof(test_m_), "%s == %s: %lld != %lld", \
				 #a, #b, test_a_, test_b_);                     \
			test_fail_at(__FILE__, __LINE__, test_m_);              \
		}                                                               \
	} while (0)
static inline void test_check_streq(const char *file, int line, const char *ea, const char *eb,
				    const char *a, const char *b)
{
	char m[480];
	if (a && b && strcmp(a, b) == 0)
		return;
	snprintf(m, sizeof(m), "%.60s == %.60s: \"%.160s\" != \"%.160s\"", ea, eb,
		 a ? a : "(null)", b ? b : "(null)");
	test_fail_at(file, line, m);
}
#define EXPECT_STREQ(a, b) test_check_streq(__FILE__, __LINE__, #a, #b, (a), (b))

/* TEST_ONLY=name[,name...]: run only those. */
static inline bool test_name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		p += len + (e != NULL);
	}
	return false;
}

static inline int test_main(void)
{
	int failed = 0, count = 0;
	const char *only = getenv("TEST_ONLY");
	for (struct test_case *tc = test_cases_head; tc; tc = tc->next) {
		if (only && !test_name_listed(only, tc->name))
			continue;
		test_current_failed = false;
		test_current_reason[0] = 0;
		tc->fn();
		count++;
		if (test_current_failed) {
			failed++;
			printf("not ok - %s.%s: %s\n", TEST_SUITE, tc->name, test_current_reason);
		} else {
			printf("ok - %s.%s\n", TEST_SUITE, tc->name);
		}
		fflush(stdout);
	}
	if (count == 0) {
		printf("not ok - %s: no test cases ran\n", TEST_SUITE);
		return 1;
	}
	return failed ? 1 : 0;
}
#define TEST_MAIN() int main(void) { return test_main(); }

#endif
