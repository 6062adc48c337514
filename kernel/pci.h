/*
 * PCI Express (kernel/pci.c, kernel/msi.c).
 *
 * pci_init() walks every ECAM segment from ACPI MCFG (legacy port 0xcf8
 * access when there is none), records every function with its BARs sized,
 * and prints one line per device.  Drivers find devices by class or ID and
 * then enable them; MSI-X is preferred, MSI the fallback.
 */
#ifndef KERNEL_PCI_H
#define KERNEL_PCI_H

#include <stdint.h>
#include <stdbool.h>

#define PCI_MAX_BARS 6

struct pci_bar {
	uint64_t phys;
	uint64_t size;        /* 0 when unimplemented */
	bool is_io, is_64, prefetchable;
};

struct pci_dev {
	uint16_t segment;
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class_code, subclass, prog_if, revision;
	uint8_t header_type;
	uint8_t irq_line, irq_pin;
	struct pci_bar bars[PCI_MAX_BARS];
	uint8_t msi_cap, msix_cap;   /* config-space offsets, 0 if absent */
	uint16_t msix_table_size;
	volatile uint32_t *cfg;      /* mapped ECAM window, NULL if legacy */
	uint8_t pcie_cap;            /* PCI Express capability offset, 0 if absent */
	volatile uint32_t *msix_table; /* mapped by pci_msix_enable, else NULL */
};

int pci_init(void);
unsigned pci_count(void);
struct pci_dev *pci_get(unsigned index);
/* Next device after `from` (NULL = first) with this class/subclass/prog-if;
 * pass -1 to match any value. */
struct pci_dev *pci_find_class(struct pci_dev *from, int class_code, int subclass, int prog_if);
const char *pci_class_name(uint8_t class_code, uint8_t subclass);
/* Like pci_class_name, refined by prog-if ("USB xHCI"). */
const char *pci_dev_name(const struct pci_dev *d);
/* First capability with this ID (legacy list), or 0. */
uint8_t pci_find_cap(struct pci_dev *d, uint8_t id);
/* Find by vendor/device ID (after `from`, NULL = first). */
struct pci_dev *pci_find_id(struct pci_dev *from, uint16_t vendor, uint16_t device);

uint32_t pci_read32(struct pci_dev *d, uint16_t off);
uint16_t pci_read16(struct pci_dev *d, uint16_t off);
uint8_t pci_read8(struct pci_dev *d, uint16_t off);
void pci_write32(struct pci_dev *d, uint16_t off, uint32_t v);
void pci_write16(struct pci_dev *d, uint16_t off, uint16_t v);
void pci_write8(struct pci_dev *d, uint16_t off, uint8_t v);

/* Turn on memory decoding and bus mastering, turn off INTx. */
void pci_enable(struct pci_dev *d);
/* Stop (or allow again) the function's DMA: the bus master enable bit.  A
 * driver that gives up on a device turns it off before it fails the
 * requests whose buffers the device could still write. */
void pci_set_bus_master(struct pci_dev *d, bool on);
/* Map a memory BAR uncached; NULL for I/O or absent BARs. */
volatile void *pci_map_bar(struct pci_dev *d, unsigned bar);

/* Allocate `count` MSI-X vectors (MSI when no MSI-X: count forced to 1),
 * entry i raising vectors[i] on CPU cpus[i % ncpus]; returns the number set
 * up or -errno. */
int pci_msix_enable(struct pci_dev *d, unsigned count, const uint8_t *vectors,
		    const uint32_t *dest_apic_ids);
void pci_msix_mask(struct pci_dev *d, unsigned entry, bool masked);
int pci_msi_enable(struct pci_dev *d, uint8_t vector, uint32_t dest_apic_id);
/* Program one MSI-X table entry and leave it masked (enables MSI-X with the
 * function masked if it was off); 0 or -errno. */
int pci_msix_set_entry(struct pci_dev *d, unsigned entry, uint8_t vector, uint32_t dest_apic_id);
/* Turn MSI-X (or MSI) off again; the device falls back to INTx (disabled). */
void pci_msix_disable(struct pci_dev *d);
void pci_msi_disable(struct pci_dev *d);

#endif
