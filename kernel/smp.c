/*
 * Per-CPU data and application processor bring-up.
 *
 * The BSP starts APs one at a time (they share one trampoline page and its
 * parameter block) with INIT, 10 ms, SIPI, 200 us, SIPI, then waits up to
 * 1 s for the AP to mark itself online.  Everything an AP needs (percpu,
 * stack, run queue, idle thread) is allocated here on the BSP, so the AP
 * never allocates before it is a scheduled CPU.
 */
#include "kernel/smp.h"
#include "kernel/sched.h"
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/trap.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"

#define SMP_AP_STACK_ORDER THREAD_STACK_ORDER
#define SMP_CHECKIN_NS NS_PER_S
#define CR0_WP (1ULL << 16)
#define EFER_NXE (1ULL << 11)
/* CR4 features the BSP runs with that an AP copies: PGE, OSFXSR,
 * OSXMMEXCPT, FSGSBASE, OSXSAVE, SMEP, SMAP.  Not LA57 or PCIDE, which
 * cannot be switched on in long mode with these tables. */
#define CR4_COPY_MASK ((1ULL << 7) | (1ULL << 9) | (1ULL << 10) | (1ULL << 16) | \
		       (1ULL << 18) | (1ULL << 20) | (1ULL << 21))

struct smp_tramp_params {
	uint64_t cr3;
	uint64_t stack_top;
	uint64_t percpu;
	uint64_t entry;
};

extern const char smp_trampoline_start[], smp_trampoline_params[], smp_trampoline_end[];

struct percpu *cpus[MAX_CPUS];
unsigned ncpus_online;
bool smp_percpu_ready;

static struct percpu smp_bsp;
static uint64_t smp_bsp_cr4;

static inline uint64_t smp_read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline void smp_write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
static inline uint64_t smp_read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void smp_write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }

static void smp_set_gs(struct percpu *p)
{
	wrmsr(MSR_GS_BASE, (uint64_t)p);
	wrmsr(MSR_KERNEL_GS, (uint64_t)p);
}

void percpu_init_bsp(void)
{
	smp_bsp.self = &smp_bsp;
	smp_bsp.index = 0;
	smp_bsp.online = true;
	smp_set_gs(&smp_bsp);
	cpus[0] = &smp_bsp;
	ncpus_online = 1;
	__atomic_store_n(&smp_percpu_ready, true, __ATOMIC_RELEASE);
}

/* First C code on an AP, on its own stack (the future idle thread's),
 * interrupts off, paging on with the kernel tables. */
__attribute__((noreturn)) static void smp_ap_entry(struct percpu *p)
{
	smp_set_gs(p);
	gdt_init_cpu(p->index);
	idt_load();
	smp_write_cr0(smp_read_cr0() | CR0_WP);
	smp_write_cr4(smp_read_cr4() | (smp_bsp_cr4 & CR4_COPY_MASK));
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	vmm_pat_init_cpu();
	lapic_init_cpu();
	p->apic_id = lapic_id();
	sched_start_cpu();          /* marks the CPU online; never returns */
	cpu_halt_forever();
}

static bool smp_wait_online(struct percpu *p, uint64_t deadline)
{
	while (!__atomic_load_n(&p->online, __ATOMIC_ACQUIRE)) {
		if (time_ns() >= deadline)
			return false;
		cpu_pause();
	}
	return true;
}

/* Start one AP as CPU `index`.  On timeout its resources stay allocated on
 * purpose: the AP might still wake up later and use them. */
static int smp_start_ap(uint32_t apic_id, unsigned index, uint64_t tramp_phys,
			volatile struct smp_tramp_params *params)
{
	struct percpu *p = kzalloc(sizeof(*p));
	if (!p)
		goto err_nomem;
	uint64_t stack_phys = pmm_alloc_pages(SMP_AP_STACK_ORDER);
	if (!stack_phys)
		goto err_free_percpu;
	uint8_t *stack = PHYS_TO_VIRT(stack_phys);
	p->self = p;
	p->index = index;
	p->apic_id = apic_id;
	int err = sched_cpu_prepare(p, stack, THREAD_STACK_SIZE);
	if (err)
		goto err_free_stack;
	cpus[index] = p;

	params->stack_top = (uint64_t)(stack + THREAD_STACK_SIZE);
	params->percpu = (uint64_t)p;
	params->entry = (uint64_t)smp_ap_entry;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	lapic_send_init(apic_id);
	time_delay_us(10000);
	lapic_send_startup(apic_id, (uint8_t)(tramp_phys >> PAGE_SHIFT));
	time_delay_us(200);
	/* The second SIPI is ignored by an AP that already left the
	 * wait-for-SIPI state. */
	if (!__atomic_load_n(&p->online, __ATOMIC_ACQUIRE))
		lapic_send_startup(apic_id, (uint8_t)(tramp_phys >> PAGE_SHIFT));
	if (!smp_wait_online(p, time_ns() + SMP_CHECKIN_NS)) {
		kprintf("smp: CPU with APIC ID %u did not check in within 1 s after INIT-SIPI-SIPI\n",
			apic_id);
		return -ETIMEDOUT;
	}
	ncpus_online++;
	return 0;

err_free_stack:
	pmm_free_pages(stack_phys, SMP_AP_STACK_ORDER);
err_free_percpu:
	kfree(p);
err_nomem:
	kprintf("smp: no memory to start CPU with APIC ID %u\n", apic_id);
	return -ENOMEM;
}

KERNEL_ARG_UINT(smp, 1, MAX_CPUS, "start at most N CPUs");

static unsigned smp_limit(unsigned enabled)
{
	const char *v = arg_get("smp");
	unsigned long long n;
	if (!v)
		return enabled;
	if (parse_u64(v, &n) != 0 || n == 0) {
		kprintf("smp: ignoring bad boot argument smp=%s\n", v);
		return enabled;
	}
	if (n > enabled)
		kprintf("smp: smp=%llu asks for more CPUs than the %u present; using %u\n", n, enabled, enabled);
	return n < enabled ? (unsigned)n : enabled;
}

int smp_init(void)
{
	smp_bsp.apic_id = lapic_id();
	smp_bsp_cr4 = smp_read_cr4();

	unsigned enabled = 0;
	for (unsigned i = 0; i < acpi.ncpus && i < ACPI_MAX_CPUS; i++)
		enabled += acpi.cpus[i].enabled;
	if (enabled == 0)
		enabled = 1;
	unsigned limit = MIN(smp_limit(enabled), (unsigned)MAX_CPUS);
	if (limit <= 1) {
		kprintf("smp: 1 of %u CPUs online%s\n", enabled, enabled > 1 ? " (smp=1)" : "");
		return 0;
	}

	int err;
	uint64_t cr3 = vmm_kernel_cr3();
	if (cr3 >> 32) {
		kprintf("smp: kernel page tables at %#llx are above 4 GiB, the trampoline cannot load them\n",
			(unsigned long long)cr3);
		err = -ERANGE;
		goto out;
	}
	uint64_t tramp = pmm_alloc_below(0x100000, 1);
	if (!tramp) {
		kprintf("smp: no free page below 1 MiB for the AP trampoline\n");
		err = -ENOMEM;
		goto out;
	}
	if ((err = vmm_identity_map(tramp, PAGE_SIZE)) != 0) {
		kprintf("smp: cannot identity-map the trampoline: %s\n", strerror(err));
		goto err_free_page;
	}
	size_t size = (size_t)(smp_trampoline_end - smp_trampoline_start);
	memcpy(PHYS_TO_VIRT(tramp), smp_trampoline_start, size);
	volatile struct smp_tramp_params *params = (void *)((uint8_t *)PHYS_TO_VIRT(tramp) +
		(smp_trampoline_params - smp_trampoline_start));
	params->cr3 = cr3;

	bool stuck = false;
	unsigned index = 1;
	for (unsigned i = 0; i < acpi.ncpus && i < ACPI_MAX_CPUS && index < limit; i++) {
		if (!acpi.cpus[i].enabled || acpi.cpus[i].apic_id == smp_bsp.apic_id)
			continue;
		int e = smp_start_ap(acpi.cpus[i].apic_id, index, tramp, params);
		if (e == -ETIMEDOUT)
			stuck = true;
		if (e != -ENOMEM)
			index++;    /* a stuck AP keeps its index and percpu */
	}
	err = 0;
	if (stuck) {
		/* Leave the page mapped and allocated: a late AP runs from it. */
		goto out;
	}
	vmm_identity_unmap(tramp, PAGE_SIZE);
err_free_page:
	pmm_free_pages(tramp, 0);
out:
	kprintf("smp: %u of %u CPUs online%s\n", ncpus_online, enabled,
		limit < enabled ? " (limited by smp=)" : "");
	return err;
}

void smp_halt_others(void)
{
	if (!smp_percpu_ready)
		return;
	unsigned me = this_cpu()->index;
	for (unsigned i = 0; i < MAX_CPUS && cpus[i]; i++)
		if (i != me && cpus[i]->online)
			lapic_send_ipi(cpus[i]->apic_id, VEC_IPI_HALT);
}
