/*
 * panic(): the one way the kernel gives up.
 *
 * Recursion guard: panic_depth counts entries machine-wide.  The first
 * entry does the full report; a second one (a fault inside the report, or
 * another CPU panicking at the same time) prints only its message and goes
 * straight to power-off/halt; any deeper entry halts silently, so a broken
 * console or backtrace can never loop.
 */
#include "kernel/panic.h"
#include "kernel/kprintf.h"
#include "kernel/kernel.h"
#include "kernel/cpu.h"
#include "kernel/trap.h"
#include "kernel/smp.h"
#include "kernel/power.h"
#include <stdarg.h>

static volatile int panic_depth;

KERNEL_ARG_WORD(panic, "poweroff|halt", "after a panic: power off with status 3, or halt (default)");

static __attribute__((noreturn)) void panic_stop(void)
{
	if (arg_present("panic=poweroff"))
		power_off(3);
	kprintf("system halted\n");
	cpu_halt_forever();
}

void panic(const char *fmt, ...)
{
	va_list ap;

	cpu_cli();
	int depth = __atomic_add_fetch(&panic_depth, 1, __ATOMIC_SEQ_CST);
	if (depth > 2)
		cpu_halt_forever();
	kprintf_force_unlock();
	va_start(ap, fmt);
	kprintf("\nPANIC%s: ", depth > 1 ? " (nested)" : "");
	kvprintf(fmt, ap);
	kprintf("\n");
	va_end(ap);
	if (depth > 1)
		panic_stop();

	uint64_t *fp = __builtin_frame_address(0);
	backtrace_print(fp[0], (uint64_t)__builtin_return_address(0));
	smp_halt_others();
	panic_stop();
}
