#ifndef KERNEL_PANIC_H
#define KERNEL_PANIC_H

/* Print the message, a backtrace of the caller, stop the other CPUs and halt.
 * With the boot argument "panic=poweroff" (used by tests) the machine powers
 * off with a failure status instead of halting. */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#define ASSERT(cond) \
	do { if (!(cond)) panic("assertion failed: %s at %s:%d", #cond, __FILE__, __LINE__); } while (0)

#endif
