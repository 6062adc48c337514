/*
 * Self-test runner: walks the .selftests section, runs each test in its own
 * kernel thread and joins it with a deadline, so one hung test is reported
 * as a timeout and the run carries on.
 */
#include "kernel/selftest.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/shell.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/smp.h"
#include "kernel/cpu.h"
#include "kernel/time.h"
#include "kernel/errno.h"

#define SELFTEST_TIMEOUT_NS (30 * NS_PER_S)

extern const struct selftest __selftests_start[], __selftests_end[];

/* One test's run.  Heap allocated: a test that times out keeps running and
 * may still write to it, so its context is then leaked on purpose. */
struct selftest_ctx {
	bool failed;                  /* what ST_EXPECT gets as st_failed */
	const struct selftest *test;
	const char *file, *expr;      /* first failed expectation */
	int line;
	unsigned nfailed;
	bool skipped;
	char why[80];                 /* the first skip's reason */
};

enum selftest_result { SELFTEST_PASSED, SELFTEST_FAILED, SELFTEST_SKIPPED };

static spinlock_t selftest_lock = SPINLOCK_INIT("selftest");
static struct selftest_ctx *selftest_current;
static bool selftest_running;

void selftest_fail(bool *failed, const char *file, int line, const char *expr)
{
	bool known = false;
	uint64_t f = spin_lock_irqsave(&selftest_lock);
	struct selftest_ctx *c = selftest_current;
	/* Only the running test's flag identifies a context; anything else
	 * (a timed-out straggler, a private flag) is just marked and shown. */
	if (c && failed == &c->failed) {
		if (c->nfailed++ == 0) {
			c->file = file;
			c->line = line;
			c->expr = expr;
		}
		known = true;
	}
	if (failed)
		*failed = true;
	spin_unlock_irqrestore(&selftest_lock, f);
	if (!known)
		kprintf("selftest: FAIL outside the running test: %s:%d: %s\n", file, line, expr);
}

void selftest_skip(const char *why)
{
	bool known = false;
	uint64_t f = spin_lock_irqsave(&selftest_lock);
	struct selftest_ctx *c = selftest_current;
	if (c) {
		if (!c->skipped)
			strlcpy(c->why, why, sizeof(c->why));
		c->skipped = known = true;
	}
	spin_unlock_irqrestore(&selftest_lock, f);
	if (!known)
		kprintf("selftest: skip outside a running test: %s\n", why);
}

/* "SUITE" matches every test of the suite, "SUITE.NAME" one test. */
static bool selftest_match(const struct selftest *t, const char *filter)
{
	if (!filter)
		return true;
	size_t sl = strlen(t->suite);
	if (strncmp(filter, t->suite, sl) != 0)
		return false;
	if (filter[sl] == 0)
		return true;
	return filter[sl] == '.' && strcmp(filter + sl + 1, t->name) == 0;
}

static void selftest_thread(void *arg)
{
	struct selftest_ctx *c = arg;
	c->test->fn(&c->failed);
	/* Between lock operations a thread's CPU counts no spinlocks held
	 * (sync.h): a test that leaves one counted leaked a lock, or released
	 * it behind the count's back. */
	uint64_t f = irq_save();
	unsigned held = this_cpu()->spin_depth;
	irq_restore(f);
	if (held)
		selftest_fail(&c->failed, __FILE__, __LINE__, "the test leaves spinlocks counted as held on its CPU");
	thread_exit();
}

static void selftest_set_current(struct selftest_ctx *c)
{
	uint64_t f = spin_lock_irqsave(&selftest_lock);
	selftest_current = c;
	spin_unlock_irqrestore(&selftest_lock, f);
}

static enum selftest_result selftest_one(const struct selftest *t)
{
	struct selftest_ctx *c = kzalloc(sizeof(*c));
	if (!c) {
		kprintf("selftest: %s.%s FAIL: out of memory for the test context\n",
			t->suite, t->name);
		return SELFTEST_FAILED;
	}
	c->test = t;
	selftest_set_current(c);

	struct thread *th = thread_create(t->name, selftest_thread, c, THREAD_ANY_CPU);
	if (!th) {
		selftest_set_current(NULL);
		kprintf("selftest: %s.%s FAIL: cannot create a thread\n", t->suite, t->name);
		kfree(c);
		return SELFTEST_FAILED;
	}
	int err = thread_join(th, SELFTEST_TIMEOUT_NS);
	selftest_set_current(NULL);
	if (err) {
		/* c stays allocated: the thread may still be running. */
		if (err == -ETIMEDOUT)
			kprintf("selftest: %s.%s FAIL (timeout after %llu s)\n", t->suite, t->name,
				(unsigned long long)(SELFTEST_TIMEOUT_NS / NS_PER_S));
		else
			kprintf("selftest: %s.%s FAIL: join: %s\n", t->suite, t->name,
				strerror(err));
		return SELFTEST_FAILED;
	}

	enum selftest_result r = c->failed ? SELFTEST_FAILED
				 : c->skipped ? SELFTEST_SKIPPED : SELFTEST_PASSED;
	if (r == SELFTEST_SKIPPED)
		kprintf("selftest: %s.%s skipped: %s\n", t->suite, t->name, c->why);
	else if (r == SELFTEST_PASSED)
		kprintf("selftest: %s.%s ok\n", t->suite, t->name);
	else if (c->nfailed > 1)
		kprintf("selftest: %s.%s FAIL: %s:%d: %s (and %u more)\n", t->suite, t->name,
			c->file, c->line, c->expr, c->nfailed - 1);
	else if (c->nfailed == 1)
		kprintf("selftest: %s.%s FAIL: %s:%d: %s\n", t->suite, t->name,
			c->file, c->line, c->expr);
	else
		kprintf("selftest: %s.%s FAIL\n", t->suite, t->name);
	kfree(c);
	return r;
}

static void selftest_list_suites(void)
{
	kprintf("selftest: suites:");
	for (const struct selftest *t = __selftests_start; t < __selftests_end; t++) {
		bool seen = false;
		for (const struct selftest *u = __selftests_start; u < t && !seen; u++)
			seen = strcmp(u->suite, t->suite) == 0;
		if (!seen)
			kprintf(" %s", t->suite);
	}
	kprintf("\n");
}

/* The section groups tests by object file in link order, but within a file
 * the compiler may emit them in any order: sort by (first appearance of the
 * suite, source line) so a run reads like the source. */
struct selftest_entry {
	const struct selftest *test;
	unsigned rank;
};

static unsigned selftest_suite_rank(const struct selftest *t)
{
	for (const struct selftest *u = __selftests_start; u < t; u++)
		if (strcmp(u->suite, t->suite) == 0)
			return (unsigned)(u - __selftests_start);
	return (unsigned)(t - __selftests_start);
}

static bool selftest_before(const struct selftest_entry *a, const struct selftest_entry *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->test->line != b->test->line)
		return a->test->line < b->test->line;
	return a->test < b->test;
}

/* Matching tests in run order; NULL when out of memory. */
static struct selftest_entry *selftest_collect(const char *suite, unsigned total)
{
	struct selftest_entry *list = kmalloc(total * sizeof(*list));
	unsigned n = 0;

	if (!list)
		return NULL;
	for (const struct selftest *t = __selftests_start; t < __selftests_end && n < total; t++) {
		if (!selftest_match(t, suite))
			continue;
		struct selftest_entry e = { t, selftest_suite_rank(t) };
		unsigned j = n++;
		while (j > 0 && selftest_before(&e, &list[j - 1])) {
			list[j] = list[j - 1];
			j--;
		}
		list[j] = e;
	}
	return list;
}

int selftest_run(const char *suite)
{
	unsigned total = 0, counts[3] = { 0, 0, 0 };   /* by enum selftest_result */
	unsigned notrun = 0;

	for (const struct selftest *t = __selftests_start; t < __selftests_end; t++)
		total += selftest_match(t, suite);
	if (total == 0) {
		if (suite) {
			kprintf("selftest: no suite or test '%s'\n", suite);
			selftest_list_suites();
		} else {
			kprintf("selftest: no tests linked in\n");
		}
		return -ENOENT;
	}

	/* One run at a time: selftest_current names a single running test. */
	uint64_t f = spin_lock_irqsave(&selftest_lock);
	bool busy = selftest_running;
	selftest_running = true;
	spin_unlock_irqrestore(&selftest_lock, f);
	if (busy) {
		kprintf("selftest: a run is already in progress\n");
		return -EBUSY;
	}

	struct selftest_entry *list = selftest_collect(suite, total);
	kprintf("selftest: running %u tests\n", total);
	if (list) {
		for (unsigned i = 0; i < total; i++) {
			/* Ctrl-C in the shell stops between tests, never inside
			 * one (a test may hold devices or memory). */
			if (shell_interrupted()) {
				kprintf("selftest: interrupted after %u of %u tests\n", i, total);
				notrun = total - i;
				break;
			}
			counts[selftest_one(list[i].test)]++;
		}
		kfree(list);
	} else {
		/* Out of memory for sorting: section order still runs them all. */
		for (const struct selftest *t = __selftests_start; t < __selftests_end; t++)
			if (selftest_match(t, suite))
				counts[selftest_one(t)]++;
	}
	if (notrun)
		kprintf("selftest: %u passed, %u failed, %u skipped, %u not run (interrupted)\n",
			counts[SELFTEST_PASSED], counts[SELFTEST_FAILED], counts[SELFTEST_SKIPPED], notrun);
	else
		kprintf("selftest: %u passed, %u failed, %u skipped\n", counts[SELFTEST_PASSED],
			counts[SELFTEST_FAILED], counts[SELFTEST_SKIPPED]);

	f = spin_lock_irqsave(&selftest_lock);
	selftest_running = false;
	spin_unlock_irqrestore(&selftest_lock, f);
	return (int)(counts[SELFTEST_FAILED] + notrun);
}
