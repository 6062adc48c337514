/*
 * In-kernel self-tests (kernel/selftest.c).
 *
 *   SELFTEST(suite, name) { ST_EXPECT(x == 1); ... }
 *
 * Tests are collected in the .selftests linker section.  `selftest [SUITE]`
 * runs them from the shell; the boot argument "selftest" runs all at boot
 * and powers off with status 0 (all passed) or 1 (some failed) through
 * qemu's isa-debug-exit.  Each test prints "selftest: SUITE.NAME ok|FAIL";
 * the run ends with "selftest: N passed, N failed".
 */
#ifndef KERNEL_SELFTEST_H
#define KERNEL_SELFTEST_H

#include <stdbool.h>

struct selftest {
	const char *suite, *name;
	void (*fn)(bool *failed);
	int line;                /* runs go in source order: the compiler may
				    emit a file's tests in any order */
};

#define SELFTEST(suite, name)                                                     \
	static void selftest_##suite##_##name(bool *st_failed);                   \
	static const struct selftest selftest_desc_##suite##_##name               \
		__attribute__((used, section(".selftests"), aligned(8))) =        \
		{ #suite, #name, selftest_##suite##_##name, __LINE__ };           \
	static void selftest_##suite##_##name(bool *st_failed)

void selftest_fail(bool *failed, const char *file, int line, const char *expr);
#define ST_EXPECT(cond) \
	do { if (!(cond)) selftest_fail(st_failed, __FILE__, __LINE__, #cond); } while (0)

/* Returns the number of failures; suite NULL = all. */
int selftest_run(const char *suite);

#endif
