/* Self-tests for the TSC clock, its calibration and the LAPIC timer. */
#include "kernel/selftest.h"
#include "kernel/time.h"
#include "kernel/apic.h"
#include "kernel/acpi.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/trap.h"
#include "kernel/kstring.h"
#include "kernel/kprintf.h"

SELFTEST(time, calibrated)
{
	ST_EXPECT(time_tsc_hz() >= 100000000ull && time_tsc_hz() <= 10000000000ull);
	ST_EXPECT(lapic_timer_hz() >= 100000ull);
	ST_EXPECT(time_entry_tsc() != 0 && time_entry_tsc() < rdtsc());
	const char *ref = time_reference_name();
	ST_EXPECT(!strcmp(ref, acpi.hpet_phys ? "HPET" : "PIT"));
}

SELFTEST(time, monotonic)
{
	uint64_t prev = time_ns();
	bool ok = true;
	for (unsigned i = 0; i < 100000; i++) {
		uint64_t now = time_ns();
		ok &= now >= prev;
		prev = now;
	}
	ST_EXPECT(ok);
	ST_EXPECT(prev > 0);
}

/* time_delay_us and time_ns share the TSC, so also measure the delay with
 * the HPET directly: that checks the calibration, not just consistency.
 * TCG is slow and noisy: accept 15..200 ms for 20 ms. */
SELFTEST(time, delay_matches_clock)
{
	volatile uint64_t *hpet = acpi.hpet_phys ? vmm_map_mmio(acpi.hpet_phys, PAGE_SIZE) : NULL;
	uint64_t period_fs = hpet ? hpet[0] >> 32 : 0;
	uint64_t h0 = hpet ? hpet[0xf0 / 8] : 0;
	uint64_t t0 = time_ns();
	time_delay_us(20000);
	uint64_t t1 = time_ns();
	uint64_t h1 = hpet ? hpet[0xf0 / 8] : 0;
	uint64_t dt = t1 - t0;
	ST_EXPECT(dt >= 15 * NS_PER_MS && dt <= 200 * NS_PER_MS);
	if (hpet) {
		uint64_t hpet_ns = (h1 - h0) * period_fs / 1000000;
		ST_EXPECT(hpet_ns >= 15 * NS_PER_MS && hpet_ns <= 200 * NS_PER_MS);
		/* The two clocks agree within 10% over the same interval. */
		ST_EXPECT(dt * 10 >= hpet_ns * 9 && dt * 10 <= hpet_ns * 11);
	}
}

struct time_test_irq {
	volatile uint64_t fired_ns;
	volatile unsigned count;
};

static void time_test_timer_handler(void *arg)
{
	struct time_test_irq *t = arg;
	if (t->count++ == 0)
		t->fired_ns = time_ns();
}

/* VEC_TIMER belongs to the scheduler, so fire the LAPIC timer on a vector
 * of our own, then give the scheduler its tick back. */
SELFTEST(time, lapic_oneshot)
{
	struct time_test_irq t = { 0, 0 };
	int vec = irq_alloc_vector(time_test_timer_handler, &t);
	ST_EXPECT(vec > 0);
	if (vec <= 0)
		return;
	uint64_t f = irq_save();
	uint64_t start = time_ns();
	lapic_timer_oneshot_vector(5 * NS_PER_MS, (uint8_t)vec);
	/* Interrupts stay on for the whole wait: qemu's TCG only takes an
	 * interrupt between translation blocks, so a short sti..cli window
	 * might never see it.  The scheduler's tick is not armed meanwhile. */
	cpu_sti();
	while (t.count == 0 && time_ns() - start < 500 * NS_PER_MS)
		cpu_pause();
	cpu_cli();
	uint64_t waited = t.count ? t.fired_ns - start : 0;
	lapic_timer_oneshot_vector(0, VEC_TIMER);
	lapic_timer_oneshot(NS_PER_MS);     /* restart the scheduler's tick */
	irq_restore(f);
	irq_free_vector(vec);
	ST_EXPECT(t.count == 1);
	/* Not early (that would mean a bad LAPIC calibration); late is TCG. */
	ST_EXPECT(waited >= 4 * NS_PER_MS && waited <= 300 * NS_PER_MS);
	kprintf("time: LAPIC one-shot of 5 ms fired after %llu us\n",
		(unsigned long long)(waited / NS_PER_US));
}
