/*
 * Per-CPU GDT and TSS.
 *
 * Layout: 0x00 null, 0x08 kernel code (64-bit), 0x10 kernel data, 0x18 TSS
 * (16-byte system descriptor).  The TSS carries no RSP0 (no user mode), only
 * IST stacks so that a double fault, NMI or machine check always runs on a
 * known-good stack even when the current one is overflowed or corrupt.
 * Each of the three gets its own stack so an NMI arriving in a double fault
 * handler cannot overwrite it.
 * CPU 0 uses static storage because gdt_init_cpu(0) runs before pmm_init;
 * the other CPUs take their IST stacks from the page allocator.
 */
#include "kernel/trap.h"
#include "kernel/smp.h"
#include "kernel/mm.h"
#include "kernel/panic.h"
#include "kernel/kstring.h"

struct gdt_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct gdt_cpu {
	uint64_t gdt[5];
	struct gdt_tss tss;
} __attribute__((aligned(64)));

#define IST_STACK_SIZE (16 * 1024)
#define IST_STACK_ORDER 2  /* 16 KiB in pages */

static struct gdt_cpu gdt_cpus[MAX_CPUS];
static uint8_t gdt_bsp_ist[3][IST_STACK_SIZE] __attribute__((aligned(16)));

static uint64_t gdt_tss_desc_low(uint64_t base, uint32_t limit)
{
	return (limit & 0xffffULL) | ((base & 0xffffffULL) << 16) |
	       (0x89ULL << 40) |                   /* present, 64-bit TSS available */
	       ((uint64_t)(limit >> 16) & 0xf) << 48 |
	       ((base >> 24) & 0xffULL) << 56;
}

static void gdt_load(struct gdt_cpu *g)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr = {
		sizeof(g->gdt) - 1, (uint64_t)g->gdt
	};

	/* CS needs a far return; DS/ES/SS take the data selector.  FS and GS
	 * are left alone: reloading them would clear the per-CPU GS base. */
	__asm__ volatile(
		"lgdt %0\n\t"
		"pushq $0x08\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movw $0x10, %%ax\n\t"
		"movw %%ax, %%ds\n\t"
		"movw %%ax, %%es\n\t"
		"movw %%ax, %%ss\n\t"
		"movw $0x18, %%ax\n\t"
		"ltr %%ax\n\t"
		:: "m"(gdtr) : "rax", "memory");
}

void gdt_init_cpu(unsigned cpu)
{
	if (cpu >= MAX_CPUS)
		panic("gdt: cpu index %u beyond MAX_CPUS %u", cpu, MAX_CPUS);
	struct gdt_cpu *g = &gdt_cpus[cpu];

	memset(g, 0, sizeof(*g));
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *stack;
		if (cpu == 0) {
			stack = gdt_bsp_ist[i];
		} else {
			uint64_t phys = pmm_alloc_pages(IST_STACK_ORDER);
			if (!phys)
				panic("gdt: no memory for IST stack %u of cpu %u", i + 1, cpu);
			stack = PHYS_TO_VIRT(phys);
		}
		g->tss.ist[i] = (uint64_t)(stack + IST_STACK_SIZE);
	}
	g->tss.iomap_base = sizeof(g->tss);   /* no I/O bitmap */

	g->gdt[0] = 0;
	g->gdt[1] = 0x00209a0000000000ULL;   /* code: present, L, exec/read */
	g->gdt[2] = 0x0000920000000000ULL;   /* data: present, read/write */
	g->gdt[3] = gdt_tss_desc_low((uint64_t)&g->tss, sizeof(g->tss) - 1);
	g->gdt[4] = (uint64_t)&g->tss >> 32;
	gdt_load(g);
}

void *gdt_tss(unsigned cpu)
{
	return cpu < MAX_CPUS ? &gdt_cpus[cpu].tss : NULL;
}
