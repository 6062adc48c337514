/*
 * In-kernel self-tests (kernel/selftest.c).
 *
 *   SELFTEST(suite, name) { ST_EXPECT(x == 1); ... }
 *
 * Tests are collected in the .selftests linker section.  `selftest [SUITE]`
 * runs them from the shell; the boot argument "selftest" runs all at boot
 * and powers off with status 0 (none failed) or 1 (some failed) through
 * qemu's isa-debug-exit.  Each test prints "selftest: SUITE.NAME ok|FAIL"
 * or "selftest: SUITE.NAME skipped: WHY"; the run ends with
 * "selftest: N passed, N failed, N skipped".
 *
 * A test that cannot run here (no such device, not a q35 machine) calls
 * ST_SKIP("why") and returns: it is counted as skipped, never as passed,
 * so a device that stopped attaching shows up as skips that a run which
 * expects the device (tests/qemu/test_selftest.py) turns into failures.
 * A failed expectation before or after the skip still fails the test.
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

/* Mark the running test skipped (why: a short reason, copied).  Helpers
 * that find no device call it; the test then returns. */
void selftest_skip(const char *why);
#define ST_SKIP(why) do { selftest_skip(why); return; } while (0)

/* Returns the number of failures; suite NULL = all. */
int selftest_run(const char *suite);

#endif
