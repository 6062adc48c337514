/* Reset and power-off (kernel/power.c). */
#ifndef KERNEL_POWER_H
#define KERNEL_POWER_H

#include <stdbool.h>

/* ACPI S5 through FADT/\_S5; if that fails, qemu's isa-debug-exit with the
 * status when present; then halt. */
__attribute__((noreturn)) void power_off(int status);
/* FADT reset register, then 0xcf9, then the keyboard controller. */
__attribute__((noreturn)) void power_reset(void);

#endif
