/* Kernel-wide facts and boot arguments (kernel/main.c, kernel/args.c). */
#ifndef KERNEL_KERNEL_H
#define KERNEL_KERNEL_H

#include <stdint.h>
#include <stdbool.h>
#include "boot/bootinfo.h"

#define KERNEL_VERSION "0.1.0"

extern const struct boot_info *boot_info;
/* time_ns() when kmain finished bring-up ("ready in N ms"); 0 before. */
extern uint64_t boot_ready_ns;

/* "Dec  3 2026 08:08:50": when the kernel was built (banner and `version`). */
extern const char kernel_build_time[];

/* Boot arguments from config.txt's "args" line: "key" or "key=value".
 * arg_get returns the value ("" for a bare key) or NULL when absent. */
const char *arg_get(const char *key);
bool arg_present(const char *key);

/* Every boot argument is declared once, beside the code that reads it, in
 * the .kernel_args linker section; the layer that owns it declares it, so
 * kernel/ knows nothing of the arguments of the layers above.  At boot
 * args_check() names each argument that no declaration knows, and each
 * value outside its declared range, so a typo is never ignored silently
 * (the reader still applies its own fallback).
 *   KERNEL_ARG_FLAG(selftest, "run the self-tests at boot, then power off");
 *   KERNEL_ARG_UINT(smp, 1, 64, "use at most N CPUs");
 *   KERNEL_ARG_WORD(panic, "poweroff|halt", "what a panic does at the end");
 *   KERNEL_ARG_TEXT(memdisk, "SIZE", "a RAM disk of SIZE bytes (64m)");
 * A FLAG takes no value; a UINT takes a number (parse_u64: decimal, 0x hex,
 * k/m/g suffixes) in [min, max]; a WORD one of its '|'-separated words; a
 * TEXT anything, checked by its reader. */
enum kernel_arg_kind { KARG_FLAG, KARG_UINT, KARG_WORD, KARG_TEXT };

struct kernel_arg {
	const char *name;
	enum kernel_arg_kind kind;
	unsigned long long min, max;   /* KARG_UINT */
	const char *values;            /* KARG_WORD: "a|b"; KARG_TEXT: shape for help */
	const char *help;
};

#define KERNEL_ARG_DECL(aid, aname, akind, amin, amax, avalues, ahelp)          \
	static const struct kernel_arg kernel_arg_desc_##aid                     \
		__attribute__((used, section(".kernel_args"), aligned(8))) =     \
		{ (aname), (akind), (amin), (amax), (avalues), (ahelp) }
#define KERNEL_ARG_FLAG(n, help)            KERNEL_ARG_DECL(n, #n, KARG_FLAG, 0, 0, NULL, help)
#define KERNEL_ARG_UINT(n, lo, hi, help)    KERNEL_ARG_DECL(n, #n, KARG_UINT, lo, hi, NULL, help)
#define KERNEL_ARG_WORD(n, words, help)     KERNEL_ARG_DECL(n, #n, KARG_WORD, 0, 0, words, help)
#define KERNEL_ARG_TEXT(n, shape, help)     KERNEL_ARG_DECL(n, #n, KARG_TEXT, 0, 0, shape, help)
/* Names that are no C identifier ("net.dhcp_timeout"): an identifier for
 * the declaration, then the name. */
#define KERNEL_ARG_UINT_NAMED(id, name, lo, hi, help) KERNEL_ARG_DECL(id, name, KARG_UINT, lo, hi, NULL, help)

/* Print one line per unknown, malformed or out-of-range boot argument
 * ("args: unknown boot argument 'smpp' ignored"); returns how many. */
unsigned args_check(void);
/* The declarations, for the `args` shell command: index 0.. until NULL. */
const struct kernel_arg *kernel_arg_at(unsigned index);
/* Why `value` does not fit `a` (a static string), or NULL when it does. */
const char *kernel_arg_reject(const struct kernel_arg *a, const char *value);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((typeof(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((typeof(x))(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
