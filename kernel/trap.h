/*
 * CPU tables and exceptions (kernel/gdt.c, kernel/idt.c, kernel/trap.c,
 * kernel/isr.asm).
 *
 * gdt_init_cpu() and idt_load() run on every CPU; idt_init() once.
 * Exceptions print vector name, error code, all registers, CR2 for page
 * faults, and a symbolised backtrace (symbols from the kernel ELF that the
 * loader passes in boot_info), then panic.
 * Device interrupts are registered with irq_register(); the handler runs
 * with interrupts disabled and must not sleep.  The LAPIC EOI is sent by the
 * common stub after the handler returns.
 */
#ifndef KERNEL_TRAP_H
#define KERNEL_TRAP_H

#include <stdint.h>
#include "boot/bootinfo.h"

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

void gdt_init_cpu(unsigned cpu);   /* GDT + TSS (with IST stacks) for a CPU */
void idt_init(void);
void idt_load(void);

void symbols_init(const struct boot_info *bi);
/* Name of the function containing addr and the offset into it; NULL if none. */
const char *symbols_lookup(uint64_t addr, uint64_t *offset);
/* Print "  #n 0xADDR func+0xoff" lines walking the frame-pointer chain;
 * returns the number of lines (rip's included). */
unsigned backtrace_print(uint64_t rbp, uint64_t rip);

typedef void (*irq_handler_t)(void *arg);
/* Vectors 48..239 are free for devices; returns a vector or -ENOSPC. */
int irq_alloc_vector(irq_handler_t handler, void *arg);
void irq_free_vector(int vector);

/* IST slots in every CPU's TSS (kernel/gdt.c); each has its own 16 KiB stack. */
#define IST_DOUBLE_FAULT 1
#define IST_NMI          2
#define IST_MACHINE_CHECK 3
/* This CPU's TSS (for percpu->tss). */
void *gdt_tss(unsigned cpu);

/* Fatal exception report and panic (kernel/trap.c), called by idt.c. */
__attribute__((noreturn)) void trap_fatal(struct trap_frame *f);
/* Deliberately fault, for the shell and tests: "pf" (write to an unmapped
 * address), "ud" (ud2), "gp" (non-canonical access), "de" (divide by zero),
 * "df" (double fault: exception with an unmapped stack, handled on IST1).
 * Returns only for an unknown kind. */
void trap_trigger_fault(const char *kind);
/* Exception name for vectors 0..31, "?" otherwise. */
const char *trap_name(unsigned vector);
/* Number of symbols loaded by symbols_init(). */
unsigned symbols_count(void);

#endif
