/*
 * Multiprocessor bring-up and per-CPU data (kernel/smp.c,
 * kernel/trampoline.asm).
 *
 * smp_init() starts every enabled CPU from the MADT with INIT-SIPI-SIPI
 * through a real-mode trampoline copied below 1 MiB, waits for each with a
 * deadline, and reports which came up.  Each CPU finds its struct percpu
 * through GS base.  The boot argument "smp=N" limits the CPUs started.
 */
#ifndef KERNEL_SMP_H
#define KERNEL_SMP_H

#include <stdint.h>
#include <stdbool.h>

#define MAX_CPUS 64

struct thread;
struct percpu {
	struct percpu *self;        /* %gs:0 */
	unsigned index;             /* 0 = boot CPU */
	uint32_t apic_id;
	struct thread *current;
	struct thread *idle;
	void *sched;                /* scheduler's per-CPU run queue */
	void *tss;
	uint64_t irq_count;
	unsigned spin_depth;        /* spinlocks this CPU holds (sync.c) */
	bool online;
};

extern struct percpu *cpus[MAX_CPUS];
extern unsigned ncpus_online;
/* GS base is valid on the boot CPU (set by percpu_init_bsp); before that
 * this_cpu() must not be used. */
extern bool smp_percpu_ready;

static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(p));
	return p;
}

void percpu_init_bsp(void);
int smp_init(void);
/* Stop every other CPU (used by panic). */
void smp_halt_others(void);

#endif
