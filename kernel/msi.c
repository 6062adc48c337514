/*
 * Message-signalled interrupts: MSI-X preferred, MSI as the fallback.
 *
 * Messages go to one CPU in physical destination mode: address 0xfee00000
 * with the APIC ID in bits 19:12, data = vector (fixed, edge).  That field
 * holds 8 bits, so APIC IDs above 255 would need interrupt remapping, which
 * we do not implement: such requests fail with -ENOTSUP.
 */
#include "kernel/pci.h"
#include "kernel/mm.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"

#define PCI_COMMAND     0x04
#define CMD_MEM         (1u << 1)
#define CMD_MASTER      (1u << 2)
#define CMD_INTX_OFF    (1u << 10)

#define MSIX_CTRL       2
#define MSIX_TABLE      4
#define MSIX_CTRL_ENABLE (1u << 15)
#define MSIX_CTRL_FMASK  (1u << 14)
#define MSIX_ENTRY_WORDS 4            /* addr lo, addr hi, data, control */
#define MSIX_VEC_MASKED  1u

#define MSI_CTRL        2
#define MSI_ADDR        4
#define MSI_CTRL_ENABLE (1u << 0)
#define MSI_CTRL_MME    (7u << 4)
#define MSI_CTRL_64     (1u << 7)
#define MSI_CTRL_PVM    (1u << 8)

#define MSI_ADDR_BASE   0xfee00000u

static int msi_check_dest(struct pci_dev *d, uint32_t dest)
{
	if (dest <= 255)
		return 0;
	kprintf("msi %02x:%02x.%u: APIC id %u needs interrupt remapping (not supported)\n", d->bus,
		d->dev, d->fn, dest);
	return -ENOTSUP;
}

static uint32_t msi_address(uint32_t dest) { return MSI_ADDR_BASE | (dest << 12); }

static void msi_set_command(struct pci_dev *d, uint16_t bits)
{
	pci_write16(d, PCI_COMMAND, pci_read16(d, PCI_COMMAND) | bits);
}

/* Map the MSI-X table once; it lives in a memory BAR at an offset that the
 * capability gives, and must fit inside that BAR. */
static int msix_map_table(struct pci_dev *d)
{
	if (d->msix_table)
		return 0;
	uint32_t t = pci_read32(d, d->msix_cap + MSIX_TABLE);
	unsigned bir = t & 7;
	uint64_t off = t & ~7u;
	if (bir >= PCI_MAX_BARS || d->bars[bir].is_io ||
	    off + (uint64_t)d->msix_table_size * 16 > d->bars[bir].size) {
		kprintf("msi %02x:%02x.%u: MSI-X table (BAR %u + 0x%llx, %u entries) lies outside the BAR\n",
			d->bus, d->dev, d->fn, bir, (unsigned long long)off, d->msix_table_size);
		return -EIO;
	}
	volatile uint8_t *bar = (volatile uint8_t *)pci_map_bar(d, bir);
	if (!bar)
		return -ENOMEM;
	d->msix_table = (volatile uint32_t *)(bar + off);
	return 0;
}

static void msix_write_entry(struct pci_dev *d, unsigned i, uint8_t vector, uint32_t dest)
{
	volatile uint32_t *e = d->msix_table + i * MSIX_ENTRY_WORDS;
	e[3] |= MSIX_VEC_MASKED;        /* never expose a half-written entry */
	e[0] = msi_address(dest);
	e[1] = 0;
	e[2] = vector;
}

int pci_msix_enable(struct pci_dev *d, unsigned count, const uint8_t *vectors,
		    const uint32_t *dest_apic_ids)
{
	if (!d->msix_cap) {
		if (!d->msi_cap)
			return -ENOTSUP;
		int err = pci_msi_enable(d, vectors[0], dest_apic_ids[0]);
		return err ? err : 1;
	}
	if (count == 0)
		return -EINVAL;
	if (count > d->msix_table_size)
		count = d->msix_table_size;
	for (unsigned i = 0; i < count; i++)
		if (msi_check_dest(d, dest_apic_ids[i]))
			return -ENOTSUP;
	int err = msix_map_table(d);
	if (err)
		return err;
	if (d->msi_cap)
		pci_msi_disable(d);         /* MSI and MSI-X must not both be on */
	msi_set_command(d, CMD_MEM | CMD_MASTER | CMD_INTX_OFF);

	/* Enable with the function mask set, program, unmask, drop the mask:
	 * no message can be sent from a partially programmed table. */
	uint16_t ctrl = pci_read16(d, d->msix_cap + MSIX_CTRL);
	pci_write16(d, d->msix_cap + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	for (unsigned i = 0; i < count; i++)
		msix_write_entry(d, i, vectors[i], dest_apic_ids[i]);
	for (unsigned i = count; i < d->msix_table_size; i++)
		d->msix_table[i * MSIX_ENTRY_WORDS + 3] |= MSIX_VEC_MASKED;
	for (unsigned i = 0; i < count; i++)
		d->msix_table[i * MSIX_ENTRY_WORDS + 3] &= ~MSIX_VEC_MASKED;
	ctrl = pci_read16(d, d->msix_cap + MSIX_CTRL);
	pci_write16(d, d->msix_cap + MSIX_CTRL, (ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_FMASK);
	return (int)count;
}

int pci_msix_set_entry(struct pci_dev *d, unsigned entry, uint8_t vector, uint32_t dest_apic_id)
{
	if (!d->msix_cap || entry >= d->msix_table_size)
		return -EINVAL;
	int err = msi_check_dest(d, dest_apic_id);
	if (err || (err = msix_map_table(d)))
		return err;
	uint16_t ctrl = pci_read16(d, d->msix_cap + MSIX_CTRL);
	if (!(ctrl & MSIX_CTRL_ENABLE))
		pci_write16(d, d->msix_cap + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	msix_write_entry(d, entry, vector, dest_apic_id);
	return 0;
}

void pci_msix_mask(struct pci_dev *d, unsigned entry, bool masked)
{
	if (!d->msix_table || entry >= d->msix_table_size)
		return;
	volatile uint32_t *ctl = &d->msix_table[entry * MSIX_ENTRY_WORDS + 3];
	*ctl = masked ? (*ctl | MSIX_VEC_MASKED) : (*ctl & ~MSIX_VEC_MASKED);
}

void pci_msix_disable(struct pci_dev *d)
{
	if (!d->msix_cap)
		return;
	uint16_t ctrl = pci_read16(d, d->msix_cap + MSIX_CTRL);
	pci_write16(d, d->msix_cap + MSIX_CTRL, ctrl & ~(MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK));
}

int pci_msi_enable(struct pci_dev *d, uint8_t vector, uint32_t dest_apic_id)
{
	if (!d->msi_cap)
		return -ENOTSUP;
	int err = msi_check_dest(d, dest_apic_id);
	if (err)
		return err;
	pci_msix_disable(d);
	uint8_t cap = d->msi_cap;
	uint16_t ctrl = pci_read16(d, cap + MSI_CTRL);
	pci_write16(d, cap + MSI_CTRL, ctrl & ~MSI_CTRL_ENABLE);
	/* Layout after the address depends on 64-bit capability. */
	uint8_t data_off = (ctrl & MSI_CTRL_64) ? 0x0c : 0x08;
	pci_write32(d, cap + MSI_ADDR, msi_address(dest_apic_id));
	if (ctrl & MSI_CTRL_64)
		pci_write32(d, cap + 0x08, 0);
	pci_write16(d, cap + data_off, vector);
	if (ctrl & MSI_CTRL_PVM)
		pci_write32(d, cap + data_off + 4, 0);        /* unmask vector 0 */
	msi_set_command(d, CMD_MASTER | CMD_INTX_OFF);
	/* One vector: Multiple Message Enable = 0. */
	pci_write16(d, cap + MSI_CTRL, (ctrl & ~MSI_CTRL_MME) | MSI_CTRL_ENABLE);
	return 0;
}

void pci_msi_disable(struct pci_dev *d)
{
	if (!d->msi_cap)
		return;
	uint16_t ctrl = pci_read16(d, d->msi_cap + MSI_CTRL);
	pci_write16(d, d->msi_cap + MSI_CTRL, ctrl & ~MSI_CTRL_ENABLE);
}
