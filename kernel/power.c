/*
 * Power-off and reset.  Both run with interrupts disabled on whichever CPU
 * calls them, touch only I/O ports, the ACPI data parsed at boot and busy
 * waits, so they also work from panic() and before the scheduler exists.
 */
#include "kernel/power.h"
#include "kernel/acpi.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/kstring.h"
#include "kernel/kprintf.h"
#include "kernel/initcall.h"
#include "kernel/sched.h"

#define QEMU_DEBUG_EXIT_PORT 0xf4
#define PM1_SCI_EN     (1u << 0)
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_TYP_MASK  (7u << 10)
#define PM1_SLP_EN     (1u << 13)
#define ACPI_ENABLE_WAIT_MS 3000
#define RESET_WAIT_MS  100

#define GAS_SPACE_MEMORY 0
#define GAS_SPACE_IO     1
#define GAS_SPACE_PCI    2

/* qemu (any accelerator) or its BOCHS-branded ACPI tables. */
static bool power_under_qemu(void)
{
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	if (c & (1u << 31)) {           /* hypervisor present */
		char sig[13];
		cpuid(0x40000000, 0, &a, &b, &c, &d);
		memcpy(sig, &b, 4);
		memcpy(sig + 4, &c, 4);
		memcpy(sig + 8, &d, 4);
		sig[12] = 0;
		if (!memcmp(sig, "TCGTCGTCGTCG", 12) || !memcmp(sig, "KVMKVMKVM\0\0\0", 12))
			return true;
	}
	if (!memcmp(acpi.oem, "BOCHS ", 6))
		return true;
	const char *fadt = acpi_find_table("FACP", 0);
	return fadt && !memcmp(fadt + 10, "BOCHS ", 6);   /* header OEM ID */
}

/* Firmware may leave the machine in legacy (SMM-owned) mode; SLP_EN is
 * ignored until the OS asks for ACPI mode through SMI_CMD. */
bool power_acpi_enable(void)
{
	if (inw(acpi.pm1a_cnt) & PM1_SCI_EN)
		return true;
	if (!acpi.smi_cmd || !acpi.acpi_enable) {
		kprintf("power: SCI_EN is off and the FADT gives no way to enable ACPI\n");
		return false;
	}
	outb(acpi.smi_cmd, acpi.acpi_enable);
	for (unsigned ms = 0; ms < ACPI_ENABLE_WAIT_MS; ms++) {
		if (inw(acpi.pm1a_cnt) & PM1_SCI_EN)
			return true;
		time_delay_us(1000);
	}
	kprintf("power: timed out after %u ms waiting for SCI_EN after ACPI_ENABLE\n",
		ACPI_ENABLE_WAIT_MS);
	return false;
}

static void power_acpi_s5(void)
{
	if (!acpi.s5_valid || !acpi.pm1a_cnt) {
		kprintf("power: ACPI S5 unavailable (%s)\n",
			!acpi.s5_valid ? "no \\_S5 in the DSDT" : "no PM1a control block");
		return;
	}
	if (!power_acpi_enable())
		return;
	uint16_t a = inw(acpi.pm1a_cnt) & ~PM1_SLP_TYP_MASK;
	if (acpi.pm1b_cnt) {
		uint16_t b = inw(acpi.pm1b_cnt) & ~PM1_SLP_TYP_MASK;
		outw(acpi.pm1b_cnt, b | (acpi.slp_typb << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN);
	}
	outw(acpi.pm1a_cnt, a | (acpi.slp_typa << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN);
	time_delay_us(RESET_WAIT_MS * 1000);
	kprintf("power: still running %u ms after ACPI S5 (SLP_TYPa %u)\n", RESET_WAIT_MS,
		acpi.slp_typa);
}

__attribute__((noreturn)) void power_off(int status)
{
	cpu_cli();
	kprintf("power: off (status %d)\n", status);
	if (power_under_qemu()) {
		/* isa-debug-exit: qemu exits with (status << 1) | 1; harmless
		 * if the device is not attached. */
		outl(QEMU_DEBUG_EXIT_PORT, (uint32_t)status);
	}
	power_acpi_s5();
	kprintf("power: could not power off; halted, switch off by hand\n");
	cpu_halt_forever();
}

/* PCI configuration space GAS: bus 0, device/function/offset in the address. */
static void power_pci_cfg_write8(uint64_t gas_addr, uint8_t value)
{
	uint32_t dev = (gas_addr >> 32) & 0x1f, fn = (gas_addr >> 16) & 7, off = gas_addr & 0xff;
	outl(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xfc));
	outb(0xcfc + (off & 3), value);
}

static void power_reset_register(void)
{
	if (!acpi.reset.valid)
		return;
	switch (acpi.reset.space) {
	case GAS_SPACE_IO:
		outb((uint16_t)acpi.reset.addr, acpi.reset.value);
		break;
	case GAS_SPACE_MEMORY: {
		volatile uint8_t *r = vmm_map_mmio(acpi.reset.addr & ~(PAGE_SIZE - 1), PAGE_SIZE);
		if (r)
			r[acpi.reset.addr & (PAGE_SIZE - 1)] = acpi.reset.value;
		break;
	}
	case GAS_SPACE_PCI:
		power_pci_cfg_write8(acpi.reset.addr, acpi.reset.value);
		break;
	}
	time_delay_us(RESET_WAIT_MS * 1000);
	kprintf("power: FADT reset register (space %u, 0x%llx) did not reset\n", acpi.reset.space,
		(unsigned long long)acpi.reset.addr);
}

__attribute__((noreturn)) void power_reset(void)
{
	cpu_cli();
	kprintf("power: reset\n");
	power_reset_register();

	/* PCI reset control: request a hard reset, then make it happen. */
	outb(0xcf9, 0x02);
	outb(0xcf9, 0x06);
	time_delay_us(RESET_WAIT_MS * 1000);
	kprintf("power: port 0xcf9 did not reset\n");

	/* 8042 pulse reset line; wait (bounded) for its input buffer first. */
	for (unsigned i = 0; i < 100000 && (inb(0x64) & 0x02); i++)
		cpu_pause();
	outb(0x64, 0xfe);
	time_delay_us(RESET_WAIT_MS * 1000);
	kprintf("power: keyboard controller did not reset; halted\n");
	cpu_halt_forever();
}

/* poweroff, reboot and the power button can race: the first runs the
 * shutdown list and powers off or resets; a later caller must not cut it
 * short by powering off at once, so it just waits. */
static volatile int power_clean_started;

static void power_clean_begin(const char *why)
{
	if (!__atomic_exchange_n(&power_clean_started, 1, __ATOMIC_SEQ_CST))
		return;
	kprintf("power: %s: a shutdown is already running; waiting for it\n", why);
	for (;;) {
		if (sched_active())
			thread_sleep_ns(NS_PER_S);
		else
			cpu_halt_forever();
	}
}

void power_off_clean(int status, const char *why)
{
	power_clean_begin(why);
	shutdown_run(why);
	power_off(status);
}

void power_reset_clean(const char *why)
{
	power_clean_begin(why);
	shutdown_run(why);
	power_reset();
}
