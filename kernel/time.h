/*
 * Time (kernel/time.c, kernel/apic.c).
 *
 * time_init() calibrates the TSC and the LAPIC timer against the HPET when
 * ACPI lists one, else against PIT channel 2, and reports which.  After that
 * time_ns() is a monotonic nanosecond clock since kernel entry, consistent
 * across CPUs.  Each CPU's LAPIC timer drives scheduler ticks and one-shot
 * wake-ups (see sched.h).
 */
#ifndef KERNEL_TIME_H
#define KERNEL_TIME_H

#include <stdint.h>

void time_early_init(void);       /* records the entry TSC; first thing */
int time_init(void);
uint64_t time_ns(void);
uint64_t time_tsc_hz(void);
uint64_t time_entry_tsc(void);
const char *time_reference_name(void); /* "HPET" or "PIT" */
/* Busy-wait; usable before the scheduler, and with interrupts off. */
void time_delay_us(uint64_t us);

#define NS_PER_US 1000ULL
#define NS_PER_MS 1000000ULL
#define NS_PER_S  1000000000ULL

#endif
