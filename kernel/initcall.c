/* Walk the INITCALL, MEM_REPORT and SHUTDOWN_STEP sections (initcall.h). */
#include "kernel/initcall.h"
#include "kernel/kprintf.h"
#include "kernel/errno.h"
#include "kernel/time.h"
#include "kernel/sync.h"

extern const struct initcall __initcalls_start[], __initcalls_end[];
extern const struct mem_report __mem_reports_start[], __mem_reports_end[];
extern const struct shutdown_step __shutdown_steps_start[], __shutdown_steps_end[];

#define MAX_ENTRIES 64

static const char *const level_names[] = {
	[INIT_CORE] = "core", [INIT_DRIVERS] = "drivers",
	[INIT_SUBSYS] = "subsys", [INIT_LATE] = "late",
};

void initcalls_run(enum init_level level)
{
	const struct initcall *sorted[MAX_ENTRIES];
	unsigned n = 0;

	for (const struct initcall *c = __initcalls_start; c < __initcalls_end; c++) {
		if (c->level != (int)level)
			continue;
		if (n == MAX_ENTRIES) {
			kprintf("init: more than %u initcalls at level %s, %s not run\n",
				MAX_ENTRIES, level_names[level], c->name);
			continue;
		}
		unsigned j = n++;
		while (j > 0 && sorted[j - 1]->order > c->order) {   /* insertion sort */
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = c;
	}
	if (!n)
		return;
	char report[200];
	size_t len = 0;
	report[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = time_ns();
		int r = sorted[i]->fn();
		uint64_t us = (time_ns() - t0) / 1000;
		if (r < 0)
			kprintf("%s: init failed: %s\n", sorted[i]->name, strerror(r));
		if (len < sizeof(report))
			len += (size_t)ksnprintf(report + len, sizeof(report) - len, " %s %llu.%llu",
						 sorted[i]->name, (unsigned long long)(us / 1000),
						 (unsigned long long)(us % 1000 / 100));
	}
	kprintf("init %s (ms):%s\n", level_names[level], report);
}

void mem_reports_print(void)
{
	for (const struct mem_report *m = __mem_reports_start; m < __mem_reports_end; m++)
		m->fn();
}

static volatile int shutdown_started;

int shutdown_run(const char *why)
{
	if (__atomic_exchange_n(&shutdown_started, 1, __ATOMIC_SEQ_CST))
		return 0;
	const struct shutdown_step *sorted[MAX_ENTRIES];
	unsigned n = 0;
	for (const struct shutdown_step *s = __shutdown_steps_start; s < __shutdown_steps_end; s++) {
		if (n == MAX_ENTRIES)
			break;
		unsigned j = n++;
		while (j > 0 && sorted[j - 1]->order > s->order) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = s;
	}
	kprintf("shutdown (%s): %u step%s\n", why, n, n == 1 ? "" : "s");
	int failed = 0;
	uint64_t t_all = time_ns();
	for (unsigned i = 0; i < n; i++) {
		uint64_t budget = sorted[i]->budget_ms ? sorted[i]->budget_ms : SHUTDOWN_DEFAULT_MS;
		uint64_t t0 = time_ns();
		int r = sorted[i]->fn(t0 + budget * NS_PER_MS);
		uint64_t ms = (time_ns() - t0) / NS_PER_MS;
		if (r < 0) {
			failed++;
			kprintf("shutdown: %s failed after %llu ms: %s\n", sorted[i]->name,
				(unsigned long long)ms, strerror(r));
		}
	}
	kprintf("shutdown: done in %llu ms, %d step%s failed\n",
		(unsigned long long)((time_ns() - t_all) / NS_PER_MS), failed, failed == 1 ? "" : "s");
	return failed;
}
