/* Self-tests for PCI enumeration, BAR sizing and MSI-X programming (q35). */
#include "kernel/selftest.h"
#include "kernel/cpu.h"
#include "kernel/pci.h"
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/trap.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kstring.h"
#include "kernel/kprintf.h"

/* q35 is recognised by its host bridge (8086:29c0 at 00:00.0), read through
 * the legacy config ports so that this does not depend on the code under
 * test. */
static bool pci_test_is_q35(void)
{
	outl(0xcf8, 0x80000000u);
	return inl(0xcfc) == 0x29c08086u;
}

SELFTEST(pci, q35_bridges)
{
	if (!pci_test_is_q35())
		ST_SKIP("not a q35 machine");
	struct pci_dev *host = pci_find_id(NULL, 0x8086, 0x29c0);
	ST_EXPECT(host != NULL);
	if (host) {
		ST_EXPECT(host->bus == 0 && host->dev == 0 && host->fn == 0);
		ST_EXPECT(host->class_code == 0x06 && host->subclass == 0x00);
		ST_EXPECT(!strcmp(pci_class_name(host->class_code, host->subclass), "Host bridge"));
		ST_EXPECT(host->cfg != NULL);    /* q35 has an MCFG: ECAM access */
	}
	struct pci_dev *isa = pci_find_class(NULL, 0x06, 0x01, -1);
	ST_EXPECT(isa != NULL);
	ST_EXPECT(isa == NULL || pci_find_class(isa, 0x06, 0x01, -1) != isa);
	ST_EXPECT(pci_count() >= 3);
}

SELFTEST(pci, config_access_bounds)
{
	struct pci_dev *d = pci_get(0);
	ST_EXPECT(d != NULL);
	if (!d)
		return;
	ST_EXPECT(pci_read16(d, 0) == d->vendor);
	ST_EXPECT(pci_read16(d, 2) == d->device);
	ST_EXPECT(pci_read8(d, 1) == d->vendor >> 8);
	ST_EXPECT(pci_read32(d, 4096) == 0xffffffffu);
	ST_EXPECT(pci_read32(d, 2) == 0xffffffffu);
	ST_EXPECT(pci_read16(d, 0xffff) == 0xffff);
	pci_write32(d, 4096, 0);               /* dropped, must not fault */
	ST_EXPECT(pci_get(pci_count()) == NULL);
	ST_EXPECT(!strcmp(pci_class_name(0x01, 0x08), "NVMe controller"));
	ST_EXPECT(!strcmp(pci_class_name(0xfe, 0x00), "Other"));
}

/* Every sized BAR is a power of two and its address is aligned to it. */
SELFTEST(pci, bar_invariants)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		struct pci_dev *d = pci_get(i);
		for (unsigned b = 0; b < PCI_MAX_BARS; b++) {
			uint64_t size = d->bars[b].size;
			if (!size)
				continue;
			ST_EXPECT((size & (size - 1)) == 0);
			ST_EXPECT((d->bars[b].phys & (size - 1)) == 0);
		}
	}
}

/* q35's AHCI (8086:2922, 00:1f.2): BAR4 I/O 32 bytes, BAR5 ABAR 4 KiB. */
SELFTEST(pci, bar_sizing_ahci)
{
	if (!pci_test_is_q35())
		ST_SKIP("not a q35 machine");
	struct pci_dev *d = pci_find_id(NULL, 0x8086, 0x2922);
	ST_EXPECT(d != NULL);
	if (!d)
		return;
	ST_EXPECT(d->bars[4].is_io && d->bars[4].size == 0x20);
	ST_EXPECT(!d->bars[5].is_io && d->bars[5].size == 0x1000);
	/* Sizing restored the firmware's assignment. */
	ST_EXPECT((pci_read32(d, 0x24) & ~0xfu) == (uint32_t)d->bars[5].phys);
	ST_EXPECT(d->bars[5].phys != 0);
	ST_EXPECT(d->msi_cap != 0);
}

static void pci_test_irq(void *arg) { (void)arg; }

KERNEL_ARG_FLAG(expect_nvme, "self-tests fail when no NVMe namespace attached");

static bool pci_test_entry_is(struct pci_dev *d, unsigned e, uint32_t addr, uint32_t data, bool masked)
{
	volatile uint32_t *w = d->msix_table + e * 4;
	return w[0] == addr && w[1] == 0 && (w[2] & 0xffff) == data && (w[3] & 1) == masked;
}

/* With "expect_nvme" the qemu test attaches an NVMe (1b36:0010): check
 * MSI-X programming by reading the table back.  If a driver already owns
 * MSI-X, only its last entry is programmed, and left masked. */
SELFTEST(pci, msix_nvme)
{
	if (!arg_present("expect_nvme"))
		ST_SKIP("needs the boot argument expect_nvme and qemu's NVMe");
	struct pci_dev *d = pci_find_id(NULL, 0x1b36, 0x0010);
	ST_EXPECT(d != NULL);
	if (!d)
		return;
	ST_EXPECT(d->msix_cap != 0 && d->msix_table_size >= 1);
	ST_EXPECT(d->pcie_cap != 0);
	if (!d->msix_cap)
		return;
	int vec = irq_alloc_vector(pci_test_irq, NULL);
	ST_EXPECT(vec > 0);
	if (vec <= 0)
		return;
	uint8_t v = (uint8_t)vec;
	uint32_t dest = lapic_id(), bad = 256;
	uint32_t addr = 0xfee00000u | (dest << 12);
	ST_EXPECT(pci_msix_set_entry(d, 0, v, bad) == -ENOTSUP);

	uint16_t ctrl = pci_read16(d, d->msix_cap + 2);
	if (ctrl & (1u << 15)) {
		unsigned last = d->msix_table_size - 1;
		/* Left masked afterwards: a masked entry never fires. */
		ST_EXPECT(pci_msix_set_entry(d, last, v, dest) == 0);
		ST_EXPECT(d->msix_table && pci_test_entry_is(d, last, addr, v, true));
	} else {
		uint16_t cmd = pci_read16(d, 0x04);  /* msix_enable turns INTx off */
		ST_EXPECT(pci_msix_enable(d, 1, &v, &dest) == 1);
		ST_EXPECT(d->msix_table != NULL);
		if (d->msix_table) {
			ST_EXPECT(pci_test_entry_is(d, 0, addr, v, false));
			if (d->msix_table_size > 1)
				ST_EXPECT(d->msix_table[4 + 3] & 1);
			ctrl = pci_read16(d, d->msix_cap + 2);
			ST_EXPECT((ctrl & (1u << 15)) && !(ctrl & (1u << 14)));
			pci_msix_mask(d, 0, true);
			ST_EXPECT(d->msix_table[3] & 1);
		}
		pci_msix_disable(d);
		pci_write16(d, 0x04, cmd);
		ST_EXPECT(!(pci_read16(d, d->msix_cap + 2) & (1u << 15)));
	}
	irq_free_vector(vec);
}

/* MSI on q35's AHCI (64-bit capable, no per-vector mask), unless a driver
 * already uses it: program, read back, turn off again and restore the
 * command register. */
SELFTEST(pci, msi_ahci)
{
	if (!pci_test_is_q35())
		ST_SKIP("not a q35 machine");
	struct pci_dev *d = pci_find_id(NULL, 0x8086, 0x2922);
	if (!d || !d->msi_cap) {
		ST_EXPECT(d && d->msi_cap);
		return;
	}
	uint8_t cap = d->msi_cap;
	uint16_t ctrl = pci_read16(d, cap + 2);
	if (ctrl & 1)
		return;                 /* owned by a driver: leave it alone */
	uint16_t cmd = pci_read16(d, 0x04);     /* msi_enable turns INTx off */
	ST_EXPECT(pci_msi_enable(d, 0x60, 256) == -ENOTSUP);
	uint32_t dest = lapic_id();
	ST_EXPECT(pci_msi_enable(d, 0x61, dest) == 0);
	ctrl = pci_read16(d, cap + 2);
	unsigned data_off = (ctrl & (1u << 7)) ? 0x0c : 0x08;
	ST_EXPECT(ctrl & 1);
	ST_EXPECT(((ctrl >> 4) & 7) == 0);
	ST_EXPECT(pci_read32(d, cap + 4) == (0xfee00000u | (dest << 12)));
	ST_EXPECT(pci_read16(d, cap + data_off) == 0x61);
	pci_msi_disable(d);
	pci_write16(d, 0x04, cmd);
	ST_EXPECT(!(pci_read16(d, cap + 2) & 1));
	ST_EXPECT(pci_read16(d, 0x04) == cmd);
}
