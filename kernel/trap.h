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
/* Print "  #n 0xADDR func+0xoff" lines walking the frame-pointer chain. */
void backtrace_print(uint64_t rbp, uint64_t rip);

typedef void (*irq_handler_t)(void *arg);
/* Vectors 48..239 are free for devices; returns a vector or -ENOSPC. */
int irq_alloc_vector(irq_handler_t handler, void *arg);
void irq_free_vector(int vector);

#endif
