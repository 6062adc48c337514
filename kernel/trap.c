/*
 * Fatal exception reports and deliberate faults.
 *
 * Every CPU exception is fatal in this kernel (no user mode, no demand
 * paging), so the report is built for the reader of a serial log: what
 * happened, where, with which registers, on which CPU and thread.
 */
#include "kernel/trap.h"
#include "kernel/cpu.h"
#include "kernel/kprintf.h"
#include "kernel/panic.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/kstring.h"

static const char *const trap_names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow",
	"bound range exceeded", "invalid opcode", "device not available",
	"double fault", "coprocessor segment overrun", "invalid TSS",
	"segment not present", "stack-segment fault", "general protection fault",
	"page fault", "reserved 15", "x87 floating-point error", "alignment check",
	"machine check", "SIMD floating-point error", "virtualization exception",
	"control protection exception", "reserved 22", "reserved 23", "reserved 24",
	"reserved 25", "reserved 26", "reserved 27", "hypervisor injection",
	"VMM communication", "security exception", "reserved 31",
};

const char *trap_name(unsigned vector)
{
	return vector < 32 ? trap_names[vector] : "?";
}

static void trap_print_sym(const char *label, uint64_t addr)
{
	uint64_t off;
	const char *name = symbols_lookup(addr, &off);
	if (name)
		kprintf("%s %016llx <%s+0x%llx>\n", label, (unsigned long long)addr, name,
			(unsigned long long)off);
	else
		kprintf("%s %016llx\n", label, (unsigned long long)addr);
}

static void trap_print_error(const struct trap_frame *f)
{
	uint64_t e = f->error_code;

	if (f->vector == 14) {
		kprintf("error %#llx: %s, %s, %s mode%s%s\n", (unsigned long long)e,
			e & 1 ? "protection violation" : "page not present",
			e & 2 ? "write" : "read", e & 4 ? "user" : "kernel",
			e & 8 ? ", reserved bit set in page table" : "",
			e & 16 ? ", instruction fetch" : "");
		return;
	}
	if (f->vector == 10 || f->vector == 11 || f->vector == 12 || f->vector == 13) {
		if (e == 0) {
			kprintf("error 0\n");
			return;
		}
		/* Selector error code: which table and index faulted. */
		static const char *const tbl[4] = { "GDT", "IDT", "LDT", "IDT" };
		kprintf("error %#llx: %s selector index %llu%s\n", (unsigned long long)e,
			tbl[(e >> 1) & 3], (unsigned long long)((e >> 3) & 0x1fff),
			e & 1 ? ", external event" : "");
		return;
	}
	kprintf("error %#llx\n", (unsigned long long)e);
}

void trap_fatal(struct trap_frame *f)
{
	unsigned cpu = 0;
	const char *tname = NULL;

	/* This CPU may have faulted inside kprintf with the console lock held. */
	kprintf_force_unlock();
	if (rdmsr(MSR_GS_BASE) != 0) {
		struct percpu *pc = this_cpu();
		cpu = pc->index;
		if (pc->current)
			tname = thread_name(pc->current);
	}
	kprintf("\n*** exception %llu (%s) on cpu %u, thread %s\n",
		(unsigned long long)f->vector, trap_name((unsigned)f->vector), cpu,
		tname ? tname : "(none)");
	trap_print_error(f);
	trap_print_sym("RIP", f->rip);
	if (f->vector == 14)
		kprintf("CR2 %016llx (faulting address)\n", (unsigned long long)read_cr2());
	kprintf("RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n",
		(unsigned long long)f->rax, (unsigned long long)f->rbx,
		(unsigned long long)f->rcx, (unsigned long long)f->rdx);
	kprintf("RSI %016llx RDI %016llx RBP %016llx RSP %016llx\n",
		(unsigned long long)f->rsi, (unsigned long long)f->rdi,
		(unsigned long long)f->rbp, (unsigned long long)f->rsp);
	kprintf("R8  %016llx R9  %016llx R10 %016llx R11 %016llx\n",
		(unsigned long long)f->r8, (unsigned long long)f->r9,
		(unsigned long long)f->r10, (unsigned long long)f->r11);
	kprintf("R12 %016llx R13 %016llx R14 %016llx R15 %016llx\n",
		(unsigned long long)f->r12, (unsigned long long)f->r13,
		(unsigned long long)f->r14, (unsigned long long)f->r15);
	kprintf("CS %04llx SS %04llx RFLAGS %016llx CR3 %016llx\n",
		(unsigned long long)f->cs, (unsigned long long)f->ss,
		(unsigned long long)f->rflags, (unsigned long long)read_cr3());
	kprintf("backtrace:\n");
	backtrace_print(f->rbp, f->rip);
	panic("unhandled exception %llu (%s) at %016llx", (unsigned long long)f->vector,
	      trap_name((unsigned)f->vector), (unsigned long long)f->rip);
}

void trap_trigger_fault(const char *kind)
{
	if (strcmp(kind, "pf") == 0) {
		/* The top of the lower half: never mapped (no identity map). */
		*(volatile uint64_t *)0x00007ffffffff000ULL = 0xdead;
	} else if (strcmp(kind, "ud") == 0) {
		__asm__ volatile("ud2");
	} else if (strcmp(kind, "gp") == 0) {
		(void)*(volatile uint64_t *)0x8000000000000000ULL;
	} else if (strcmp(kind, "de") == 0) {
		uint64_t zero = 0;
		__asm__ volatile("xor %%edx, %%edx\n\tmov $1, %%eax\n\tdivq %0"
				 :: "r"(zero) : "rax", "rdx");
	} else if (strcmp(kind, "df") == 0) {
		/* An exception with an unusable stack: delivering #UD faults,
		 * so the CPU raises #DF, which runs on its IST stack. */
		__asm__ volatile("mov $0x00007fff00000000, %%rsp\n\tud2" ::: "memory");
	} else {
		kprintf("trap: unknown fault kind '%s' (pf, ud, gp, de, df)\n", kind);
	}
}
