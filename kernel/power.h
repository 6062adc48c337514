/* Reset and power-off (kernel/power.c). */
#ifndef KERNEL_POWER_H
#define KERNEL_POWER_H

#include <stdbool.h>

/* ACPI S5 through FADT/\_S5; if that fails, qemu's isa-debug-exit with the
 * status when present; then halt. */
__attribute__((noreturn)) void power_off(int status);
/* FADT reset register, then 0xcf9, then the keyboard controller. */
__attribute__((noreturn)) void power_reset(void);

/* ACPI mode on (SCI_EN, through SMI_CMD when the firmware left it off);
 * true when it is on.  Busy-waits at most 3 s. */
bool power_acpi_enable(void);

/* Orderly versions for poweroff, reboot and the power button: run the
 * shutdown list (kernel/initcall.h: page cache writeback, disk flushes,
 * controller shutdown; each step bounded) and then power off or reset
 * whatever the steps returned.  Never from panic(): it uses threads.  A
 * second caller while one runs (power button during poweroff) waits for
 * the first instead of cutting its shutdown short. */
__attribute__((noreturn)) void power_off_clean(int status, const char *why);
__attribute__((noreturn)) void power_reset_clean(const char *why);

#endif
