/*
 * PCI enumeration and configuration access.
 *
 * With an MCFG, configuration space is memory mapped (ECAM): each bus's
 * 1 MiB window is mapped lazily, the first time the scan touches that bus.
 * Without one, the legacy 0xcf8/0xcfc port pair gives the first 256 bytes.
 * The scan is recursive from each segment's first bus through PCI-PCI
 * bridges, whose bus numbers the firmware has already assigned.
 *
 * The device array is built once by pci_init() and never grows afterwards,
 * so struct pci_dev pointers handed to drivers stay valid.
 */
#include "kernel/pci.h"
#include "kernel/acpi.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/kernel.h"

#define PCI_VENDOR     0x00
#define PCI_COMMAND    0x04
#define PCI_STATUS     0x06
#define PCI_REVISION   0x08
#define PCI_HEADER     0x0e
#define PCI_BAR0       0x10
#define PCI_SECONDARY  0x19
#define PCI_CAP_PTR    0x34
#define PCI_CARDBUS_CAP_PTR 0x14
#define PCI_IRQ_LINE   0x3c
#define PCI_IRQ_PIN    0x3d

#define CMD_IO         (1u << 0)
#define CMD_MEM        (1u << 1)
#define CMD_MASTER     (1u << 2)
#define CMD_INTX_OFF   (1u << 10)
#define STATUS_CAPS    (1u << 4)

#define CAP_MSI   0x05
#define CAP_PCIE  0x10
#define CAP_MSIX  0x11

static struct pci_dev *pci_devs;
static unsigned pci_ndevs, pci_alloc;
static volatile uint8_t *pci_bus_window[ACPI_MAX_ECAM][256];
static uint8_t pci_bus_seen[ACPI_MAX_ECAM][256 / 8];
static spinlock_t pci_legacy_lock = SPINLOCK_INIT("pci-cf8");

/* ---- configuration space access ---- */

static uint16_t pci_cfg_size(const struct pci_dev *d) { return d->cfg ? 4096 : 256; }

static uint32_t pci_legacy_addr(const struct pci_dev *d, uint16_t off)
{
	return 0x80000000u | ((uint32_t)d->bus << 16) | ((uint32_t)d->dev << 11) |
	       ((uint32_t)d->fn << 8) | (off & 0xfc);
}

/* Out-of-range or misaligned offsets read as all ones (like an absent
 * device) and writes to them are dropped: a driver bug must not turn into
 * an access to some other function's configuration space. */
uint32_t pci_read32(struct pci_dev *d, uint16_t off)
{
	if ((off & 3) || off >= pci_cfg_size(d))
		return 0xffffffffu;
	if (d->cfg)
		return d->cfg[off / 4];
	uint64_t f = spin_lock_irqsave(&pci_legacy_lock);
	outl(0xcf8, pci_legacy_addr(d, off));
	uint32_t v = inl(0xcfc);
	spin_unlock_irqrestore(&pci_legacy_lock, f);
	return v;
}

uint16_t pci_read16(struct pci_dev *d, uint16_t off)
{
	if (off & 1)
		return 0xffff;
	return (uint16_t)(pci_read32(d, off & ~3) >> (8 * (off & 2)));
}

uint8_t pci_read8(struct pci_dev *d, uint16_t off)
{
	return (uint8_t)(pci_read32(d, off & ~3) >> (8 * (off & 3)));
}

void pci_write32(struct pci_dev *d, uint16_t off, uint32_t v)
{
	if ((off & 3) || off >= pci_cfg_size(d))
		return;
	if (d->cfg) {
		d->cfg[off / 4] = v;
		return;
	}
	uint64_t f = spin_lock_irqsave(&pci_legacy_lock);
	outl(0xcf8, pci_legacy_addr(d, off));
	outl(0xcfc, v);
	spin_unlock_irqrestore(&pci_legacy_lock, f);
}

void pci_write16(struct pci_dev *d, uint16_t off, uint16_t v)
{
	if ((off & 1) || off >= pci_cfg_size(d))
		return;
	if (d->cfg) {
		*(volatile uint16_t *)((volatile uint8_t *)d->cfg + off) = v;
		return;
	}
	uint64_t f = spin_lock_irqsave(&pci_legacy_lock);
	outl(0xcf8, pci_legacy_addr(d, off));
	outw(0xcfc + (off & 2), v);
	spin_unlock_irqrestore(&pci_legacy_lock, f);
}

void pci_write8(struct pci_dev *d, uint16_t off, uint8_t v)
{
	if (off >= pci_cfg_size(d))
		return;
	if (d->cfg) {
		*((volatile uint8_t *)d->cfg + off) = v;
		return;
	}
	uint64_t f = spin_lock_irqsave(&pci_legacy_lock);
	outl(0xcf8, pci_legacy_addr(d, off));
	outb(0xcfc + (off & 3), v);
	spin_unlock_irqrestore(&pci_legacy_lock, f);
}

/* ECAM window of one function; NULL if the bus is outside the segment or
 * cannot be mapped.  The MCFG base corresponds to bus 0 of the segment. */
static volatile uint32_t *pci_ecam_window(unsigned seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
	if (bus < acpi.ecam[seg].bus_start || bus > acpi.ecam[seg].bus_end)
		return NULL;
	if (!pci_bus_window[seg][bus]) {
		uint64_t phys = acpi.ecam[seg].phys + ((uint64_t)bus << 20);
		pci_bus_window[seg][bus] = vmm_map_mmio(phys, 1u << 20);
		if (!pci_bus_window[seg][bus]) {
			kprintf("pci: cannot map ECAM for bus %u at 0x%llx\n", bus, (unsigned long long)phys);
			return NULL;
		}
	}
	return (volatile uint32_t *)(pci_bus_window[seg][bus] + ((uint32_t)dev << 15) + ((uint32_t)fn << 12));
}

/* ---- capabilities, BARs ---- */

uint8_t pci_find_cap(struct pci_dev *d, uint8_t id)
{
	if (!(pci_read16(d, PCI_STATUS) & STATUS_CAPS))
		return 0;
	uint8_t ptr = pci_read8(d, (d->header_type & 0x7f) == 2 ? PCI_CARDBUS_CAP_PTR : PCI_CAP_PTR);
	/* 48 entries fill the 192 bytes after the header: more means a loop. */
	for (unsigned n = 0; n < 48; n++) {
		ptr &= 0xfc;
		if (ptr < 0x40)
			return 0;
		if (pci_read8(d, ptr) == id)
			return ptr;
		ptr = pci_read8(d, ptr + 1);
	}
	return 0;
}

/* Decoding is off while a BAR holds all ones: otherwise the device would
 * briefly claim whatever address range that pattern denotes. */
static void pci_size_bars(struct pci_dev *d)
{
	unsigned nbars = (d->header_type & 0x7f) == 0 ? 6 : (d->header_type & 0x7f) == 1 ? 2 : 0;
	if (!nbars)
		return;
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(CMD_IO | CMD_MEM));
	for (unsigned i = 0; i < nbars; i++) {
		uint16_t off = PCI_BAR0 + 4 * i;
		uint32_t orig = pci_read32(d, off);
		pci_write32(d, off, 0xffffffffu);
		uint32_t probe = pci_read32(d, off);
		pci_write32(d, off, orig);
		struct pci_bar *b = &d->bars[i];
		if (orig & 1) {
			uint32_t mask = probe & ~3u;
			if (mask && !(mask & 0xffff0000u))
				mask |= 0xffff0000u;       /* 16-bit I/O decoder */
			b->is_io = true;
			b->phys = orig & ~3u;
			b->size = mask ? (uint32_t)(~mask + 1) : 0;
			continue;
		}
		b->is_64 = ((orig >> 1) & 3) == 2;
		b->prefetchable = orig & 8;
		uint64_t mask = probe & ~0xfu;
		b->phys = orig & ~0xfu;
		if (b->is_64 && i + 1 < nbars) {
			uint32_t orig_hi = pci_read32(d, off + 4);
			pci_write32(d, off + 4, 0xffffffffu);
			uint32_t probe_hi = pci_read32(d, off + 4);
			pci_write32(d, off + 4, orig_hi);
			b->phys |= (uint64_t)orig_hi << 32;
			mask = mask ? mask | ((uint64_t)probe_hi << 32) : (uint64_t)probe_hi << 32;
			i++;                            /* the upper half is not a BAR */
		} else if (mask) {
			mask |= 0xffffffff00000000ull;
		}
		b->size = mask ? ~mask + 1 : 0;
	}
	pci_write16(d, PCI_COMMAND, cmd);
}

/* ---- enumeration ---- */

static struct pci_dev *pci_add(const struct pci_dev *probe)
{
	if (pci_ndevs == pci_alloc) {
		unsigned n = pci_alloc ? pci_alloc * 2 : 32;
		struct pci_dev *p = krealloc(pci_devs, n * sizeof(*p));
		if (!p) {
			kprintf("pci: out of memory after %u functions\n", pci_ndevs);
			return NULL;
		}
		pci_devs = p;
		pci_alloc = n;
	}
	struct pci_dev *d = &pci_devs[pci_ndevs++];
	*d = *probe;
	return d;
}

static void pci_scan_bus(int seg, uint16_t segment, uint8_t bus, unsigned depth);

static void pci_probe_function(int seg, struct pci_dev *p, unsigned depth)
{
	uint32_t id = pci_read32(p, PCI_VENDOR);
	p->vendor = id & 0xffff;
	p->device = id >> 16;
	uint32_t cls = pci_read32(p, PCI_REVISION);
	p->revision = cls & 0xff;
	p->prog_if = (cls >> 8) & 0xff;
	p->subclass = (cls >> 16) & 0xff;
	p->class_code = cls >> 24;
	p->header_type = pci_read8(p, PCI_HEADER);
	p->irq_line = pci_read8(p, PCI_IRQ_LINE);
	p->irq_pin = pci_read8(p, PCI_IRQ_PIN);
	pci_size_bars(p);
	p->msi_cap = pci_find_cap(p, CAP_MSI);
	p->msix_cap = pci_find_cap(p, CAP_MSIX);
	p->pcie_cap = pci_find_cap(p, CAP_PCIE);
	if (p->msix_cap)
		p->msix_table_size = (pci_read16(p, p->msix_cap + 2) & 0x7ff) + 1;
	kprintf("pci %04x:%02x:%02x.%u %04x:%04x class %02x:%02x:%02x %s\n", p->segment, p->bus,
		p->dev, p->fn, p->vendor, p->device, p->class_code, p->subclass, p->prog_if,
		pci_dev_name(p));
	if (!pci_add(p))
		return;
	if ((p->header_type & 0x7f) == 1) {
		uint8_t secondary = pci_read8(p, PCI_SECONDARY);
		/* Unconfigured bridges say 0; anything not below us would
		 * loop back up the tree. */
		if (secondary > p->bus && depth < 32)
			pci_scan_bus(seg, p->segment, secondary, depth + 1);
	}
}

static void pci_scan_bus(int seg, uint16_t segment, uint8_t bus, unsigned depth)
{
	unsigned s = seg < 0 ? 0 : (unsigned)seg;
	if (pci_bus_seen[s][bus / 8] & (1u << (bus % 8)))
		return;
	pci_bus_seen[s][bus / 8] |= 1u << (bus % 8);
	for (uint8_t dev = 0; dev < 32; dev++) {
		unsigned nfn = 1;
		for (uint8_t fn = 0; fn < nfn; fn++) {
			struct pci_dev p = { .segment = segment, .bus = bus, .dev = dev, .fn = fn };
			if (seg >= 0 && !(p.cfg = pci_ecam_window(seg, bus, dev, fn)))
				return;
			if (pci_read16(&p, PCI_VENDOR) == 0xffff)
				continue;       /* functions may be sparse: keep looking */
			if (fn == 0 && (pci_read8(&p, PCI_HEADER) & 0x80))
				nfn = 8;
			pci_probe_function(seg, &p, depth);
		}
	}
}

int pci_init(void)
{
	if (acpi.necam == 0) {
		kprintf("pci: no MCFG, using legacy port 0xcf8 access (256-byte config space)\n");
		pci_scan_bus(-1, 0, 0, 0);
	}
	for (unsigned s = 0; s < acpi.necam; s++) {
		kprintf("pci: ECAM segment %u buses %u-%u at 0x%llx\n", acpi.ecam[s].segment,
			acpi.ecam[s].bus_start, acpi.ecam[s].bus_end, (unsigned long long)acpi.ecam[s].phys);
		pci_scan_bus(s, acpi.ecam[s].segment, acpi.ecam[s].bus_start, 0);
	}
	return pci_ndevs ? 0 : -ENODEV;
}

/* ---- lookup and helpers for drivers ---- */

unsigned pci_count(void) { return pci_ndevs; }

struct pci_dev *pci_get(unsigned index)
{
	return index < pci_ndevs ? &pci_devs[index] : NULL;
}

static unsigned pci_next_index(struct pci_dev *from)
{
	return from ? (unsigned)(from - pci_devs) + 1 : 0;
}

struct pci_dev *pci_find_class(struct pci_dev *from, int class_code, int subclass, int prog_if)
{
	for (unsigned i = pci_next_index(from); i < pci_ndevs; i++) {
		struct pci_dev *d = &pci_devs[i];
		if ((class_code < 0 || d->class_code == class_code) &&
		    (subclass < 0 || d->subclass == subclass) && (prog_if < 0 || d->prog_if == prog_if))
			return d;
	}
	return NULL;
}

struct pci_dev *pci_find_id(struct pci_dev *from, uint16_t vendor, uint16_t device)
{
	for (unsigned i = pci_next_index(from); i < pci_ndevs; i++)
		if (pci_devs[i].vendor == vendor && pci_devs[i].device == device)
			return &pci_devs[i];
	return NULL;
}

void pci_enable(struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND) | CMD_MEM | CMD_MASTER | CMD_INTX_OFF;
	for (unsigned i = 0; i < PCI_MAX_BARS; i++)
		if (d->bars[i].is_io && d->bars[i].size)
			cmd |= CMD_IO;
	pci_write16(d, PCI_COMMAND, cmd);
}

void pci_set_bus_master(struct pci_dev *d, bool on)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, on ? cmd | CMD_MASTER : cmd & ~CMD_MASTER);
}

volatile void *pci_map_bar(struct pci_dev *d, unsigned bar)
{
	if (bar >= PCI_MAX_BARS || d->bars[bar].is_io || !d->bars[bar].size || !d->bars[bar].phys)
		return NULL;
	return vmm_map_mmio(d->bars[bar].phys, d->bars[bar].size);
}

const char *pci_class_name(uint8_t class_code, uint8_t subclass)
{
	static const struct { uint8_t cls, sub; const char *name; } names[] = {
		{ 0x01, 0x00, "SCSI controller" }, { 0x01, 0x01, "IDE controller" },
		{ 0x01, 0x06, "SATA AHCI controller" }, { 0x01, 0x08, "NVMe controller" },
		{ 0x02, 0x00, "Ethernet controller" }, { 0x03, 0xff, "Display controller" },
		{ 0x06, 0x00, "Host bridge" }, { 0x06, 0x01, "ISA bridge" },
		{ 0x06, 0x04, "PCI bridge" }, { 0x0c, 0x03, "USB controller" },
		{ 0x0c, 0x05, "SMBus controller" }, { 0x07, 0x00, "Serial controller" },
		{ 0x01, 0xff, "Storage controller" }, { 0x02, 0xff, "Network controller" },
		{ 0x06, 0xff, "Bridge" },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].cls == class_code && (names[i].sub == subclass || names[i].sub == 0xff))
			return names[i].name;
	return "Other";
}

const char *pci_dev_name(const struct pci_dev *d)
{
	if (d->class_code == 0x0c && d->subclass == 0x03) {
		switch (d->prog_if) {
		case 0x00: return "USB UHCI";
		case 0x10: return "USB OHCI";
		case 0x20: return "USB EHCI";
		case 0x30: return "USB xHCI";
		}
	}
	return pci_class_name(d->class_code, d->subclass);
}
