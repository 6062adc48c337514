/*
 * Local APIC: per-CPU setup, IPIs and the one-shot timer.
 *
 * The mode is chosen once, by the first CPU through lapic_init_cpu(): x2APIC
 * (MSRs, 32-bit APIC IDs) when CPUID advertises it, else xAPIC through an
 * uncached MMIO mapping of the MADT's LAPIC address.  Every later CPU uses
 * the same mode, since all CPUs of a machine report the same CPUID bit.
 */
#include "kernel/apic.h"
#include "kernel/acpi.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/kprintf.h"
#include "kernel/panic.h"

#define LAPIC_ID        0x020
#define LAPIC_VERSION   0x030
#define LAPIC_TPR       0x080
#define LAPIC_EOI       0x0b0
#define LAPIC_SVR       0x0f0
#define LAPIC_ESR       0x280
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

#define LVT_MASKED      (1u << 16)
#define SVR_ENABLE      (1u << 8)
#define ICR_PENDING     (1u << 12)
#define ICR_ASSERT      (1u << 14)
#define ICR_FIXED       (0u << 8)
#define ICR_INIT        (5u << 8)
#define ICR_STARTUP     (6u << 8)
#define TIMER_DIV_16    0x3

#define APIC_BASE_ENABLE (1ull << 11)
#define APIC_BASE_X2APIC (1ull << 10)
#define MSR_X2APIC_BASE  0x800

static volatile uint32_t *lapic_mmio;
static bool lapic_x2;
static bool lapic_mode_chosen;
static uint64_t lapic_hz;

bool lapic_is_x2apic(void) { return lapic_x2; }

static uint32_t lapic_read(uint32_t reg)
{
	if (lapic_x2)
		return (uint32_t)rdmsr(MSR_X2APIC_BASE + (reg >> 4));
	return lapic_mmio[reg / 4];
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	if (lapic_x2)
		wrmsr(MSR_X2APIC_BASE + (reg >> 4), v);
	else
		lapic_mmio[reg / 4] = v;
}

/* Error status register bits, in words. */
static void lapic_print_esr(uint32_t esr)
{
	static const char *const bits[8] = {
		"send checksum", "receive checksum", "send accept", "receive accept",
		"redirectable IPI", "send illegal vector", "received illegal vector",
		"illegal register address",
	};
	kprintf("lapic: error status 0x%x:", esr);
	if (!(esr & 0xff))
		kprintf(" none");
	for (unsigned i = 0; i < 8; i++)
		if (esr & (1u << i))
			kprintf(" [%s]", bits[i]);
	kprintf("\n");
}

/* The ESR latches errors only when written; read it fresh. */
static uint32_t lapic_read_esr(void)
{
	lapic_write(LAPIC_ESR, 0);
	return lapic_read(LAPIC_ESR);
}

static void lapic_choose_mode(void)
{
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	lapic_x2 = (c >> 21) & 1;
	if (!lapic_x2) {
		uint64_t phys = acpi.lapic_phys;
		if (!phys)
			phys = rdmsr(MSR_APIC_BASE) & 0x000ffffffffff000ull;
		lapic_mmio = vmm_map_mmio(phys, PAGE_SIZE);
		if (!lapic_mmio)
			panic("lapic: cannot map the local APIC at 0x%llx", (unsigned long long)phys);
	}
	kprintf("lapic: %s mode\n", lapic_x2 ? "x2APIC" : "xAPIC (MMIO)");
	lapic_mode_chosen = true;
}

void lapic_init_cpu(void)
{
	if (!lapic_mode_chosen)
		lapic_choose_mode();
	uint64_t base = rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE;
	/* x2APIC must be entered from enabled xAPIC mode: two steps. */
	wrmsr(MSR_APIC_BASE, base);
	if (lapic_x2)
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_X2APIC);

	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	/* LINT0 (ExtINT from the 8259) and LINT1 (NMI) stay masked: every
	 * interrupt we use comes through the IOAPIC or MSI. */
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	/* ESR latches on write: two writes clear what firmware left. */
	lapic_write(LAPIC_ESR, 0);
	uint32_t esr = lapic_read_esr();
	if (esr & 0xff)
		lapic_print_esr(esr);
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
	lapic_eoi();            /* drop anything left in service by firmware */
}

uint32_t lapic_id(void)
{
	if (!lapic_mode_chosen) {
		uint32_t a, b, c, d;
		cpuid(1, 0, &a, &b, &c, &d);
		return b >> 24;
	}
	uint32_t id = lapic_read(LAPIC_ID);
	return lapic_x2 ? id : id >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

/* xAPIC only (x2APIC has no delivery status): wait until the ICR is idle. */
static void lapic_wait_icr_idle(const char *what, uint32_t apic_id)
{
	uint64_t hz = time_tsc_hz();
	/* Before calibration assume a fast 10 GHz TSC so the bound is >= 10 ms. */
	uint64_t limit = (hz ? hz : 10000000000ull) / 100;
	uint64_t start = rdtsc();
	while (lapic_mmio[LAPIC_ICR_LO / 4] & ICR_PENDING) {
		if (rdtsc() - start > limit) {
			kprintf("lapic: %s IPI to apic %u still pending after 10 ms\n", what, apic_id);
			lapic_print_esr(lapic_read_esr());
			return;
		}
		cpu_pause();
	}
}

static void lapic_send_icr(uint32_t apic_id, uint32_t low, const char *what)
{
	uint64_t f = irq_save();        /* HI and LO must not be split by an IRQ */
	if (lapic_x2) {
		wrmsr(MSR_X2APIC_BASE + (LAPIC_ICR_LO >> 4), ((uint64_t)apic_id << 32) | low);
	} else {
		lapic_wait_icr_idle(what, apic_id);
		lapic_mmio[LAPIC_ICR_HI / 4] = apic_id << 24;
		lapic_mmio[LAPIC_ICR_LO / 4] = low;
		lapic_wait_icr_idle(what, apic_id);
	}
	irq_restore(f);
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector)
{
	lapic_send_icr(apic_id, ICR_FIXED | ICR_ASSERT | vector, "fixed");
}

void lapic_send_init(uint32_t apic_id)
{
	lapic_send_icr(apic_id, ICR_INIT | ICR_ASSERT, "INIT");
}

void lapic_send_startup(uint32_t apic_id, uint8_t page)
{
	lapic_send_icr(apic_id, ICR_STARTUP | ICR_ASSERT | page, "STARTUP");
}

void lapic_timer_set_hz(uint64_t hz) { lapic_hz = hz; }
uint64_t lapic_timer_hz(void) { return lapic_hz; }

void lapic_timer_oneshot_vector(uint64_t ns, uint8_t vector)
{
	if (ns == 0 || lapic_hz == 0) {
		lapic_write(LAPIC_TIMER_INIT, 0);   /* a zero count stops the timer */
		return;
	}
	/* Split into seconds and remainder so nothing overflows 64 bits (and
	 * no 128-bit division, which would need libgcc). */
	uint64_t secs = ns / NS_PER_S, ticks;
	if (secs > 0xffffffffull / lapic_hz)
		ticks = 0xffffffffull;
	else
		ticks = secs * lapic_hz + (ns % NS_PER_S) * lapic_hz / NS_PER_S;
	uint32_t count = ticks > 0xffffffffull ? 0xffffffffu : ticks == 0 ? 1 : (uint32_t)ticks;
	/* A countdown still running when the vector changes would fire on the
	 * new vector at once: stop it first.  The divider is set once by
	 * calibration, and the LVT only rewritten when the vector changes, to
	 * keep the scheduler's per-switch cost to one register write. */
	uint32_t lvt = lapic_read(LAPIC_LVT_TIMER);
	if ((lvt & 0xff) != vector || (lvt & LVT_MASKED)) {
		lapic_write(LAPIC_TIMER_INIT, 0);
		lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
		lapic_write(LAPIC_LVT_TIMER, vector);        /* one-shot, unmasked */
	}
	lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_oneshot(uint64_t ns)
{
	lapic_timer_oneshot_vector(ns, VEC_TIMER);
}

void lapic_timer_calibrate_start(void)
{
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
}

uint32_t lapic_timer_count(void)
{
	return lapic_read(LAPIC_TIMER_CUR);
}
