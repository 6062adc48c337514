/*
 * IDT, interrupt dispatch and device vector allocation.
 *
 * Vector map: 0-31 CPU exceptions (fatal), 32-47 the legacy 8259 PICs
 * (remapped here and fully masked; only their spurious IRQ 7/15 can still
 * arrive, and those must not be EOI'd at the LAPIC), 48-239 device vectors
 * handed out by irq_alloc_vector, 0xf0-0xf2 timer and IPIs, 0xff spurious.
 */
#include "kernel/trap.h"
#include "kernel/apic.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/sync.h"

#define IDT_VEC_DEV_FIRST 48
#define IDT_VEC_DEV_LAST  239

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

extern const uint64_t isr_stub_table[256];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct {
	irq_handler_t handler;
	void *arg;
} idt_handlers[256];
static spinlock_t idt_lock = SPINLOCK_INIT("irq-vectors");
static uint64_t idt_unexpected;

static void idt_set_gate(unsigned v, uint64_t addr, uint8_t ist)
{
	idt[v] = (struct idt_gate){
		.off_lo = addr & 0xffff, .sel = 0x08, .ist = ist,
		.type = 0x8e,          /* present, DPL 0, 64-bit interrupt gate */
		.off_mid = (addr >> 16) & 0xffff, .off_hi = addr >> 32,
	};
}

/* Remap the 8259s to 32-47 so anything they still raise cannot be mistaken
 * for an exception, then mask every line: the IOAPIC delivers ISA IRQs. */
static void idt_pic_disable(void)
{
	outb(0x20, 0x11); outb(0xa0, 0x11);     /* ICW1: init, ICW4 follows */
	outb(0x21, 32);   outb(0xa1, 40);       /* ICW2: vector bases */
	outb(0x21, 0x04); outb(0xa1, 0x02);     /* ICW3: cascade on IRQ 2 */
	outb(0x21, 0x01); outb(0xa1, 0x01);     /* ICW4: 8086 mode */
	outb(0x21, 0xff); outb(0xa1, 0xff);     /* mask all */
}

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++)
		idt_set_gate(v, isr_stub_table[v], 0);
	idt_set_gate(2, isr_stub_table[2], IST_NMI);
	idt_set_gate(8, isr_stub_table[8], IST_DOUBLE_FAULT);
	idt_set_gate(18, isr_stub_table[18], IST_MACHINE_CHECK);
	idt_pic_disable();
}

void idt_load(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = {
		sizeof(idt) - 1, (uint64_t)idt
	};
	__asm__ volatile("lidt %0" :: "m"(idtr) : "memory");
}

int irq_alloc_vector(irq_handler_t handler, void *arg)
{
	int vec = -ENOSPC;

	if (!handler)
		return -EINVAL;
	uint64_t f = spin_lock_irqsave(&idt_lock);
	for (int v = IDT_VEC_DEV_FIRST; v <= IDT_VEC_DEV_LAST; v++) {
		if (idt_handlers[v].handler)
			continue;
		/* arg first: the dispatcher reads handler, then arg. */
		idt_handlers[v].arg = arg;
		__atomic_store_n(&idt_handlers[v].handler, handler, __ATOMIC_RELEASE);
		vec = v;
		break;
	}
	spin_unlock_irqrestore(&idt_lock, f);
	return vec;
}

void irq_free_vector(int vector)
{
	if (vector < IDT_VEC_DEV_FIRST || vector > IDT_VEC_DEV_LAST) {
		kprintf("irq: free of vector %d outside the device range ignored\n", vector);
		return;
	}
	uint64_t f = spin_lock_irqsave(&idt_lock);
	__atomic_store_n(&idt_handlers[vector].handler, NULL, __ATOMIC_RELEASE);
	idt_handlers[vector].arg = NULL;
	spin_unlock_irqrestore(&idt_lock, f);
}

static void idt_count_irq(void)
{
	/* GS base is 0 until percpu_init_bsp()/the AP path set it up. */
	if (rdmsr(MSR_GS_BASE) != 0)
		this_cpu()->irq_count++;
}

void idt_dispatch(struct trap_frame *f);
void idt_dispatch(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (v < 32)
		trap_fatal(f);
	if (v < IDT_VEC_DEV_FIRST) {
		/* 8259 spurious IRQ 7/15: no EOI, the LAPIC never saw it. */
		idt_unexpected++;
		return;
	}
	switch (v) {
	case VEC_SPURIOUS:
		return;               /* spurious LAPIC interrupts take no EOI */
	case VEC_TIMER:
		sched_tick();
		lapic_eoi();
		sched_preempt_check();
		return;
	case VEC_IPI_RESCHED:
		lapic_eoi();
		sched_preempt_check();
		return;
	case VEC_IPI_HALT:
		lapic_eoi();
		cpu_halt_forever();
	}
	irq_handler_t h = __atomic_load_n(&idt_handlers[v].handler, __ATOMIC_ACQUIRE);
	if (h) {
		idt_count_irq();
		h(idt_handlers[v].arg);
	} else if (idt_unexpected++ < 10) {
		kprintf("irq: vector %u raised with no handler registered\n", v);
	}
	lapic_eoi();
}
