/*
 * The ACPI power button: a fixed event (ACPI 6.5, 4.8.3.1) signalled
 * through the SCI.
 *
 * At boot: ACPI mode on (SCI_EN), PWRBTN_STS cleared (write 1) and
 * PWRBTN_EN set in the PM1 enable register (the second half of the PM1
 * event block), every other fixed event and every general-purpose event
 * (GPE0 enables) disabled, since nothing here would clear their status and
 * a level-triggered SCI would then fire forever; the SCI's ISA IRQ
 * is routed to a vector through the IOAPIC, level-triggered as the spec
 * makes the SCI (active low unless a MADT override says otherwise).
 *
 * The handler runs in interrupt context: it clears the status bits it
 * found (the SCI is level-triggered: a set, enabled status bit would raise
 * it again at once) and wakes the power-button thread.  That thread runs
 * power_off_clean(), the same ordered shutdown as `poweroff`, which cannot
 * run in interrupt context (it waits for disks).
 */
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/cpu.h"
#include "kernel/errno.h"
#include "kernel/initcall.h"
#include "kernel/kprintf.h"
#include "kernel/power.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/trap.h"

#define PM1_PWRBTN (1u << 8)          /* PWRBTN_STS in status, PWRBTN_EN in enable */
#define SCI_FLAGS_DEFAULT 0x000f      /* MADT INTI flags: level, active low */

volatile unsigned acpi_power_button_presses;
static volatile int acpi_button_pending;
static struct waitq acpi_button_wq = WAITQ_INIT("power-button");

static void acpi_pm1_ack(uint32_t evt)
{
	if (!evt)
		return;
	uint16_t sts = inw((uint16_t)evt);
	if (sts)
		outw((uint16_t)evt, sts);          /* write 1 to clear, whatever was set */
	if (sts & PM1_PWRBTN)
		acpi_button_pending = 1;
}

static void acpi_sci_intr(void *arg)
{
	(void)arg;
	acpi_pm1_ack(acpi.pm1a_evt);
	acpi_pm1_ack(acpi.pm1b_evt);
	if (acpi_button_pending)
		waitq_wake_all(&acpi_button_wq);
}

static bool acpi_button_pressed(void *arg)
{
	(void)arg;
	return acpi_button_pending != 0;
}

static void acpi_button_thread(void *arg)
{
	(void)arg;
	for (;;) {
		waitq_wait_until(&acpi_button_wq, acpi_button_pressed, NULL, time_ns() + 60 * NS_PER_S);
		if (!acpi_button_pending)
			continue;
		acpi_button_pending = 0;
		acpi_power_button_presses++;
		kprintf("acpi: power button pressed: shutting down\n");
		power_off_clean(0, "power button");
	}
}

static void acpi_pm1_arm(uint32_t evt)
{
	if (!evt)
		return;
	uint16_t en = (uint16_t)(evt + acpi.pm1_evt_len / 2);
	outw((uint16_t)evt, PM1_PWRBTN);           /* stale press from the firmware */
	outw(en, PM1_PWRBTN);
}

static int acpi_button_init(void)
{
	if (!acpi.pm1a_evt || acpi.pm1_evt_len < 4) {
		kprintf("acpi: no PM1 event block in the FADT: power button ignored\n");
		return -ENODEV;
	}
	if (!power_acpi_enable())
		return -EIO;             /* power_acpi_enable said why */
	uint16_t flags;
	uint32_t gsi = acpi_isa_irq_to_gsi((uint8_t)acpi.sci_irq, &flags);
	if (!flags)
		flags = SCI_FLAGS_DEFAULT;
	if (!thread_create("power-button", acpi_button_thread, NULL, THREAD_ANY_CPU)) {
		kprintf("acpi: no thread for the power button: ignored\n");
		return -ENOMEM;
	}
	int vec = irq_alloc_vector(acpi_sci_intr, NULL);
	if (vec < 0)
		return vec;
	int err = ioapic_route(gsi, (uint8_t)vec, lapic_id(), flags);
	if (err) {
		irq_free_vector(vec);
		kprintf("acpi: cannot route the SCI (IRQ %u, GSI %u): %s; power button ignored\n",
			acpi.sci_irq, gsi, strerror(err));
		return err;
	}
	for (unsigned i = 0; acpi.gpe0_blk && i < acpi.gpe0_len / 2u; i++) {
		outb((uint16_t)(acpi.gpe0_blk + acpi.gpe0_len / 2u + i), 0);   /* enables off */
		outb((uint16_t)(acpi.gpe0_blk + i), 0xff);                      /* status cleared */
	}
	acpi_pm1_arm(acpi.pm1a_evt);
	acpi_pm1_arm(acpi.pm1b_evt);
	kprintf("acpi: power button on SCI IRQ %u (GSI %u, %s)\n", acpi.sci_irq, gsi,
		((flags >> 2) & 3) == 3 ? "level" : "edge");
	return 0;
}
INITCALL(acpi_button, INIT_CORE, 0, acpi_button_init);
