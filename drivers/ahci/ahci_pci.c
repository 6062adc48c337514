/*
 * AHCI PCI attach: every class 01:06:01 function, registers from ABAR
 * (BAR5, not BAR0), one MSI vector for the whole HBA, or polling when MSI
 * is unavailable (or the boot argument "ahci_poll" asks for it).  Disks are
 * named sata0, sata1, ... over all HBAs in PCI order, then port order.
 */
#include "drivers/ahci/ahci.h"
#include "drivers/driver.h"
#include "kernel/apic.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/mm.h"
#include "kernel/pci.h"
#include "kernel/trap.h"

#define AHCI_ABAR 5

#define AHCI_MAX_HBAS 8

struct ahci_hba *ahci_hbas[AHCI_MAX_HBAS];
unsigned ahci_nhba;
static unsigned ahci_ndisks;

KERNEL_ARG_FLAG(ahci_poll, "AHCI without interrupts: completions by polling only");

static int ahci_pci_attach(struct pci_dev *d)
{
	struct ahci_hba *h;
	int r;

	if (!d->bars[AHCI_ABAR].size || d->bars[AHCI_ABAR].is_io) {
		kprintf("ahci%u: %02x:%02x.%u has no memory BAR5 (ABAR); not an AHCI HBA we can drive\n",
			ahci_nhba, d->bus, d->dev, d->fn);
		return -ENODEV;
	}
	if (ahci_nhba == AHCI_MAX_HBAS) {
		kprintf("ahci: more than %u HBAs; %02x:%02x.%u ignored\n", AHCI_MAX_HBAS, d->bus, d->dev, d->fn);
		return -ENOSPC;
	}
	if (!(h = kzalloc(sizeof *h)))
		return -ENOMEM;
	h->pci = d;
	h->index = ahci_nhba;
	ahci_hbas[ahci_nhba++] = h;
	h->vector = -1;
	pci_enable(d);
	if (!(h->abar = pci_map_bar(d, AHCI_ABAR))) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = ahci_hba_init(h)) < 0)
		goto fail;

	if (!arg_present("ahci_poll")) {
		int v = irq_alloc_vector(ahci_hba_intr, h);
		if (v >= 0 && pci_msi_enable(d, (uint8_t)v, lapic_id()) == 0)
			h->vector = v;
		else {
			if (v >= 0)
				irq_free_vector(v);
			kprintf("ahci%u: no MSI (%s): completions by polling only\n", h->index,
				v < 0 ? strerror(v) : "enable failed");
		}
	}
	if (h->vector >= 0)
		ahci_wr(h, AHCI_GHC, ahci_rd(h, AHCI_GHC) | AHCI_GHC_IE);

	int n = 0;
	for (unsigned i = 0; i < AHCI_MAX_PORTS; i++) {
		if (!h->port[i])
			continue;
		/* Names stay put whether or not config.txt selects the disk. */
		if ((r = ahci_port_register(h->port[i], ahci_ndisks++)) < 0) {
			if (r != -ENODEV)
				kprintf("ahci%u port %u: blk_register failed: %s\n", h->index, i, strerror(r));
			continue;
		}
		n++;
	}
	if (n && (r = ahci_hba_start_watchdog(h)) < 0)
		kprintf("ahci%u: no watchdog thread (%s): timeouts will not be detected\n",
			h->index, strerror(r));
	return n;

fail:
	kprintf("ahci%u: attach failed: %s\n", h->index, strerror(r));
	/* The HBA struct stays allocated: ports may hold a pointer to it. */
	return r;
}

static int ahci_pci_attach_all(void)
{
	struct pci_dev *d = NULL;
	int total = 0;

	while ((d = pci_find_class(d, 0x01, 0x06, 0x01))) {
		int r = ahci_pci_attach(d);
		if (r > 0)
			total += r;
	}
	return total;
}

DRIVER(ahci, 20, ahci_pci_attach_all);
