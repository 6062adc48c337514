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

/* Boot arguments from config.txt's "args" line: "key" or "key=value".
 * arg_get returns the value ("" for a bare key) or NULL when absent. */
const char *arg_get(const char *key);
bool arg_present(const char *key);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((typeof(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((typeof(x))(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
