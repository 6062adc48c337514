/*
 * NVMe PCI attach: every function of class 01:08:02, BAR0 registers, MSI-X
 * (a vector per I/O queue, each aimed at its CPU), MSI (one shared vector)
 * or polling only when the function has neither.
 */
#include "drivers/driver.h"
#include "drivers/nvme/nvme_var.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/pci.h"
#include "kernel/smp.h"
#include "kernel/trap.h"

static void nvme_pci_admin_intr(void *arg)
{
	/* Admin commands are polled; entry 0 only needs somewhere to land. */
	(void)arg;
}

static uint32_t nvme_pci_cpu_apic(unsigned i)
{
	unsigned n = ncpus_online ? ncpus_online : 1;
	struct percpu *p = cpus[i % n];
	return p ? p->apic_id : cpus[0]->apic_id;
}

/* Undo what nvme_pci_intr_setup did: vectors freed, MSI/MSI-X off. */
static void nvme_pci_intr_unwind(struct nvme_ctrl *c, int admin_vec)
{
	int last = -1;

	if (c->pci->msix_cap)
		pci_msix_disable(c->pci);
	else
		pci_msi_disable(c->pci);
	for (unsigned i = 0; i < c->nqueues; i++) {
		int v = c->io[i].vector;
		c->io[i].vector = -1;
		if (v >= 0 && v != last)    /* a shared vector appears once per queue */
			irq_free_vector(v);
		last = v;
	}
	if (admin_vec >= 0)
		irq_free_vector(admin_vec);
}

static int nvme_pci_intr_setup(struct nvme_ctrl *c)
{
	struct pci_dev *d = c->pci;
	uint8_t vec[NVME_MAX_QUEUES + 1];
	uint32_t dest[NVME_MAX_QUEUES + 1];
	int v, admin_vec = -1, err;

	if (c->shared_vector) {
		if ((v = irq_alloc_vector(nvme_intr, &c->io[0])) < 0)
			return v;
		for (unsigned i = 0; i < c->nqueues; i++)
			c->io[i].vector = v;
		vec[0] = (uint8_t)v;
		dest[0] = nvme_pci_cpu_apic(0);
		int n = d->msix_cap ? pci_msix_enable(d, 1, vec, dest) : pci_msi_enable(d, (uint8_t)v, dest[0]);
		if (n < 0) {
			err = n;
			goto fail;
		}
		return 0;
	}
	if ((admin_vec = irq_alloc_vector(nvme_pci_admin_intr, c)) < 0)
		return admin_vec;
	vec[0] = (uint8_t)admin_vec;
	dest[0] = nvme_pci_cpu_apic(0);
	for (unsigned i = 0; i < c->nqueues; i++) {
		struct nvme_queue *q = &c->io[i];
		if ((v = irq_alloc_vector(nvme_intr, q)) < 0) {
			err = v;
			goto fail;
		}
		q->vector = v;
		vec[q->msix_entry] = (uint8_t)v;
		/* Queue i serves CPU i (the block layer picks cpu % nqueues). */
		dest[q->msix_entry] = nvme_pci_cpu_apic(i);
	}
	int n = pci_msix_enable(d, c->nqueues + 1, vec, dest);
	if (n < 0 || (unsigned)n < c->nqueues + 1) {
		err = n < 0 ? n : -ENOSPC;
		goto fail;
	}
	pci_msix_mask(d, 0, true);
	return 0;

fail:
	nvme_pci_intr_unwind(c, admin_vec);
	return err;
}

static unsigned nvme_pci_count;

KERNEL_ARG_FLAG(nvme_poll, "NVMe without interrupts: completions by polling only");

static int nvme_pci_attach(struct pci_dev *d)
{
	struct nvme_ctrl *c = kzalloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->index = nvme_pci_count++;
	ksnprintf(c->name, sizeof(c->name), "nvme%u", c->index);
	c->pci = d;
	pci_enable(d);
	c->regs = pci_map_bar(d, 0);
	if (!c->regs || d->bars[0].size < 0x2000) {
		kprintf("%s: %02x:%02x.%u: BAR0 missing or too small for the doorbells\n", c->name, d->bus,
			d->dev, d->fn);
		kfree(c);
		return -ENODEV;
	}
	if (d->msix_cap && d->msix_table_size >= 2)
		c->nvec = MIN((unsigned)d->msix_table_size, ncpus_online + 1);
	else if (d->msix_cap || d->msi_cap)
		c->nvec = 1;
	if (arg_present("nvme_poll"))           /* force the polling-only fallback */
		c->nvec = 0;
	c->intr_setup = nvme_pci_intr_setup;
	/* c stays even on failure: the core may have handed its memory to
	 * the device.  Its namespaces are counted by the caller. */
	int err = nvme_attach(c);
	return err ? err : (int)c->nns;
}

/* DRIVER() attach: the number of namespaces registered (driver.h). */
static int nvme_pci_attach_all(void)
{
	int found = 0;

	for (struct pci_dev *d = pci_find_class(NULL, 0x01, 0x08, 0x02); d;
	     d = pci_find_class(d, 0x01, 0x08, 0x02)) {
		int r = nvme_pci_attach(d);
		if (r > 0)
			found += r;
	}
	return found;
}

DRIVER(nvme, 10, nvme_pci_attach_all);
