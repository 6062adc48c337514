/*
 * Kernel main: bring the machine up in dependency order, then hand the boot
 * thread to the serial shell.  Each step prints what it found; a failure that
 * leaves the machine unusable panics with the reason.
 */
#include "kernel/kernel.h"
#include "kernel/cpu.h"
#include "kernel/kprintf.h"
#include "kernel/panic.h"
#include "kernel/serial.h"
#include "kernel/fbcon.h"
#include "kernel/trap.h"
#include "kernel/mm.h"
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/time.h"
#include "kernel/realtime.h"
#include "kernel/smp.h"
#include "kernel/sched.h"
#include "kernel/pci.h"
#include "kernel/shell.h"
#include "kernel/selftest.h"
#include "kernel/initcall.h"
#include "kernel/power.h"
#include "kernel/errno.h"

const struct boot_info *boot_info;
uint64_t boot_ready_ns;

/* Boot phase marks: raw TSC values, converted once the TSC is calibrated,
 * so the phases before time_init() are measured too. */
static struct { const char *name; uint64_t tsc; } kmain_marks[16];
static unsigned kmain_nmarks;

static void kmain_mark(const char *name)
{
	if (kmain_nmarks < ARRAY_SIZE(kmain_marks))
		kmain_marks[kmain_nmarks++] = (typeof(kmain_marks[0])){ name, rdtsc() };
}

static void kmain_print_phases(void)
{
	uint64_t prev = time_entry_tsc(), khz = time_tsc_hz() / 1000;
	kprintf("boot phases (ms):");
	for (unsigned i = 0; i < kmain_nmarks && khz; i++) {
		uint64_t us = (kmain_marks[i].tsc - prev) * 1000 / khz;
		kprintf(" %s %llu.%01llu", kmain_marks[i].name, (unsigned long long)(us / 1000),
			(unsigned long long)(us % 1000 / 100));
		prev = kmain_marks[i].tsc;
	}
	kprintf("\n");
}

static void kmain_check_boot_info(const struct boot_info *bi)
{
	if (bi == NULL || bi->magic != BOOT_INFO_MAGIC)
		panic("boot info missing or bad magic: was the kernel started by boot/?");
	if (bi->version < BOOT_INFO_VERSION)
		panic("boot info version %u is older than the kernel's %u: rebuild the loader",
		      bi->version, BOOT_INFO_VERSION);
}

/* One build time for the banner and `version` (each file's own __TIME__
 * would differ by the seconds between their compiles). */
const char kernel_build_time[] = __DATE__ " " __TIME__;

static void kmain_banner(void)
{
	kprintf("\nappliance kernel %s (built %s)\n", KERNEL_VERSION, kernel_build_time);
}

static void kmain_report(void)
{
	kprintf("cpus: %u online\n", ncpus_online);
	kprintf("memory: %llu MiB total, %llu MiB free\n",
		(unsigned long long)(pmm_total_bytes() >> 20),
		(unsigned long long)(pmm_free_bytes() >> 20));
	kprintf("pci: %u functions\n", pci_count());
}

KERNEL_ARG_FLAG(selftest, "run every self-test at boot, then power off with the result");

void kmain(const struct boot_info *bi)
{
	time_early_init();
	boot_info = bi;
	serial_init(bi && bi->magic == BOOT_INFO_MAGIC ? bi->config.console_baud : 115200);
	if (bi && bi->magic == BOOT_INFO_MAGIC)
		fbcon_init(bi);   /* keeps text from here on; drawn once mapped */
	kmain_banner();
	kmain_check_boot_info(bi);
	args_check();

	gdt_init_cpu(0);
	idt_init();
	idt_load();
	kmain_mark("console");
	symbols_init(bi);
	kmain_mark("symbols");
	pmm_init(bi);
	kmain_mark("pmm");
	vmm_init(bi);
	kmain_mark("vmm");
	fbcon_map();
	kmain_mark("fbcon");
	heap_init();
	percpu_init_bsp();
	kmain_mark("heap");

	int err = acpi_init(bi->rsdp_phys);
	if (err)
		panic("ACPI tables unusable (%s): cannot find CPUs and interrupt controllers",
		      strerror(err));
	kmain_mark("acpi");
	lapic_init_cpu();
	ioapic_init();
	if ((err = time_init()) != 0)
		panic("timer calibration failed: %s", strerror(err));
	(void)realtime_init();           /* prints where the wall clock came from */
	kmain_mark("time");
	sched_init();
	cpu_sti();
	smp_init();
	kmain_mark("smp");
	pci_init();
	kmain_mark("pci");
	if ((err = serial_enable_irq()) != 0)
		kprintf("serial: interrupt input unavailable (%s), polling\n", strerror(err));
	kmain_mark("serial");
	initcalls_run(INIT_CORE);
	initcalls_run(INIT_DRIVERS);
	kmain_mark("drivers");
	initcalls_run(INIT_SUBSYS);
	kmain_mark("subsys");
	initcalls_run(INIT_LATE);
	kmain_mark("late");

	kmain_report();
	kmain_mark("report");
	kmain_print_phases();
	boot_ready_ns = time_ns();
	kprintf("ready in %llu ms\n", (unsigned long long)(boot_ready_ns / NS_PER_MS));

	if (arg_present("selftest")) {
		int failed = selftest_run(NULL);
		power_off_clean(failed ? 1 : 0, "self-tests done");
	}
	shell_run();
}
