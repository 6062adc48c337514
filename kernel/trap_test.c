/* Self-tests for symbols, backtraces, the GDT/IDT and vector allocation. */
#include "kernel/selftest.h"
#include "kernel/trap.h"
#include "kernel/apic.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/kstring.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include <stddef.h>

void kmain(const struct boot_info *bi);

SELFTEST(trap, symbols_kmain)
{
	uint64_t off = 99;
	const char *n = symbols_lookup((uint64_t)kmain, &off);
	ST_EXPECT(n && strcmp(n, "kmain") == 0 && off == 0);
	n = symbols_lookup((uint64_t)kmain + 5, &off);
	ST_EXPECT(n && strcmp(n, "kmain") == 0 && off == 5);
	ST_EXPECT(symbols_lookup(0x1000, &off) == NULL);
	ST_EXPECT(symbols_count() > 50);
}

SELFTEST(trap, backtrace_survives_garbage)
{
	/* Each of these must end the walk after rip's line, not fault. */
	ST_EXPECT(backtrace_print(0xdeadbeef, (uint64_t)kmain) == 1);              /* unaligned */
	ST_EXPECT(backtrace_print(0xffff8fff00000000ULL, (uint64_t)kmain) == 1);   /* unmapped */
	ST_EXPECT(backtrace_print(0x8000000000000000ULL, 0) == 1);                 /* lower half */
	uint64_t loop[2] = { 0, (uint64_t)kmain };
	loop[0] = (uint64_t)loop;   /* frame pointing at itself: one frame, then stop */
	ST_EXPECT(backtrace_print((uint64_t)loop, (uint64_t)kmain) == 2);
}

SELFTEST(trap, backtrace_walks_chain)
{
	/* Two frames at rising addresses, then a zero return address. */
	uint64_t f[6] = { 0, (uint64_t)kmain + 1, 0, (uint64_t)kmain + 2, 0, 0 };
	f[0] = (uint64_t)&f[2];
	f[2] = (uint64_t)&f[4];
	ST_EXPECT(backtrace_print((uint64_t)f, (uint64_t)kmain) == 3);
	/* Our own stack: this function, the runner's thread entry, ... */
	ST_EXPECT(backtrace_print((uint64_t)__builtin_frame_address(0),
				  (uint64_t)__builtin_return_address(0)) >= 2);
}

SELFTEST(trap, frame_layout)
{
	ST_EXPECT(offsetof(struct trap_frame, rax) == 14 * 8);
	ST_EXPECT(offsetof(struct trap_frame, vector) == 15 * 8);
	ST_EXPECT(offsetof(struct trap_frame, rip) == 17 * 8);
	ST_EXPECT(sizeof(struct trap_frame) == 22 * 8);
	ST_EXPECT(strcmp(trap_name(14), "page fault") == 0);
}

SELFTEST(trap, gdt_idt_loaded)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr, idtr;
	uint16_t tr, cs;
	__asm__ volatile("sgdt %0; sidt %1; str %2; mov %%cs, %3"
			 : "=m"(gdtr), "=m"(idtr), "=r"(tr), "=r"(cs));
	ST_EXPECT(gdtr.limit == 5 * 8 - 1);
	ST_EXPECT(idtr.limit == 256 * 16 - 1);
	ST_EXPECT(tr == 0x18 && cs == 0x08);
	/* The double-fault gate must switch to its IST stack. */
	const uint8_t *gate8 = (const uint8_t *)idtr.base + 8 * 16;
	ST_EXPECT((gate8[4] & 7) == IST_DOUBLE_FAULT && gate8[5] == 0x8e);
}

static void trap_test_handler(void *arg)
{
	(*(volatile int *)arg)++;
}

SELFTEST(irq, alloc_free)
{
	int dummy = 0;
	ST_EXPECT(irq_alloc_vector(NULL, NULL) == -EINVAL);
	int a = irq_alloc_vector(trap_test_handler, &dummy);
	int b = irq_alloc_vector(trap_test_handler, &dummy);
	ST_EXPECT(a >= 48 && a <= 239 && b >= 48 && b <= 239 && a != b);
	irq_free_vector(a);
	int c = irq_alloc_vector(trap_test_handler, &dummy);
	ST_EXPECT(c == a);          /* lowest free vector is reused */
	/* Exhaust the range, then give everything back. */
	static int got[192];
	int n = 0, v;
	while ((v = irq_alloc_vector(trap_test_handler, &dummy)) >= 0 && n < 192)
		got[n++] = v;
	ST_EXPECT(v == -ENOSPC);
	while (n > 0)
		irq_free_vector(got[--n]);
	irq_free_vector(b);
	irq_free_vector(c);
}

SELFTEST(irq, self_ipi_dispatch)
{
	volatile int hits = 0;
	if (!cpu_irqs_enabled()) {
		ST_EXPECT(!"interrupts must be enabled when selftests run");
		return;
	}
	int v = irq_alloc_vector(trap_test_handler, (void *)&hits);
	ST_EXPECT(v > 0);
	if (v < 0)
		return;
	uint64_t before = this_cpu()->irq_count;
	uint64_t f = irq_save();   /* stay on this CPU while sending */
	lapic_send_ipi(lapic_id(), (uint8_t)v);
	irq_restore(f);
	uint64_t deadline = time_ns() + 500 * NS_PER_MS;
	while (hits == 0 && time_ns() < deadline)
		cpu_pause();
	ST_EXPECT(hits == 1);
	ST_EXPECT(this_cpu()->irq_count > before);
	irq_free_vector(v);
}
