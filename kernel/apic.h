/*
 * Local APIC and IOAPIC (kernel/apic.c, kernel/ioapic.c).
 *
 * lapic_init_cpu() runs on every CPU (xAPIC MMIO, or x2APIC when present);
 * ioapic_init() once, masking every pin.  ioapic_route() steers a GSI to a
 * vector on a CPU.
 */
#ifndef KERNEL_APIC_H
#define KERNEL_APIC_H

#include <stdint.h>
#include <stdbool.h>

#define VEC_SPURIOUS 0xff
#define VEC_TIMER    0xf0
#define VEC_IPI_RESCHED 0xf1
#define VEC_IPI_HALT 0xf2

void lapic_init_cpu(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);
void lapic_send_init(uint32_t apic_id);
void lapic_send_startup(uint32_t apic_id, uint8_t page);
/* One-shot timer interrupt on VEC_TIMER after `ns` (0 cancels). */
void lapic_timer_oneshot(uint64_t ns);
/* Ticks per second of the LAPIC timer as calibrated by time_init(). */
void lapic_timer_set_hz(uint64_t hz);
uint64_t lapic_timer_hz(void);
/* One-shot on an arbitrary vector (self-tests); 0 ns cancels. */
void lapic_timer_oneshot_vector(uint64_t ns, uint8_t vector);
/* Calibration (time.c): free-run masked from 0xffffffff, divide 16. */
void lapic_timer_calibrate_start(void);
uint32_t lapic_timer_count(void);
bool lapic_is_x2apic(void);

void ioapic_init(void);
/* ISA-style flags from MADT overrides are honoured; returns 0 or -errno. */
int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t dest_apic_id, uint16_t flags);
void ioapic_mask(uint32_t gsi);

#endif
