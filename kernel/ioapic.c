/*
 * IOAPICs from the MADT: every pin masked at init, then routed on demand.
 *
 * Registers are reached through an index/data window (IOREGSEL, IOWIN), so
 * each access pair holds that IOAPIC's spinlock: two CPUs interleaving the
 * select and the data access would hit the wrong register.
 */
#include "kernel/apic.h"
#include "kernel/acpi.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"

#define IOAPIC_REGSEL  0x00
#define IOAPIC_WIN     0x10
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REDIR(n) (0x10 + 2 * (n))

#define REDIR_MASKED      (1u << 16)
#define REDIR_LEVEL       (1u << 15)
#define REDIR_ACTIVE_LOW  (1u << 13)

/* MADT MPS INTI flags. */
#define INTI_POLARITY(f) ((f) & 3)
#define INTI_TRIGGER(f)  (((f) >> 2) & 3)
#define INTI_ACTIVE_LOW  3
#define INTI_LEVEL       3

struct ioapic {
	volatile uint32_t *mmio;
	uint32_t gsi_base;
	unsigned pins;
	spinlock_t lock;
};

static struct ioapic ioapics[ACPI_MAX_IOAPICS];
static unsigned nioapics;

static uint32_t ioapic_read(struct ioapic *io, uint32_t reg)
{
	io->mmio[IOAPIC_REGSEL / 4] = reg;
	return io->mmio[IOAPIC_WIN / 4];
}

static void ioapic_write(struct ioapic *io, uint32_t reg, uint32_t v)
{
	io->mmio[IOAPIC_REGSEL / 4] = reg;
	io->mmio[IOAPIC_WIN / 4] = v;
}

void ioapic_init(void)
{
	for (unsigned i = 0; i < acpi.nioapics; i++) {
		struct ioapic *io = &ioapics[nioapics];
		io->mmio = vmm_map_mmio(acpi.ioapics[i].phys, PAGE_SIZE);
		if (!io->mmio) {
			kprintf("ioapic: cannot map IOAPIC %u at 0x%llx, skipped\n", acpi.ioapics[i].id,
				(unsigned long long)acpi.ioapics[i].phys);
			continue;
		}
		spin_init(&io->lock, "ioapic");
		io->gsi_base = acpi.ioapics[i].gsi_base;
		uint32_t ver = ioapic_read(io, IOAPIC_REG_VER);
		io->pins = ((ver >> 16) & 0xff) + 1;
		for (unsigned pin = 0; pin < io->pins; pin++) {
			ioapic_write(io, IOAPIC_REDIR(pin) + 1, 0);
			ioapic_write(io, IOAPIC_REDIR(pin), REDIR_MASKED);
		}
		kprintf("ioapic: id %u at 0x%llx version 0x%x, GSI %u-%u, all masked\n",
			acpi.ioapics[i].id, (unsigned long long)acpi.ioapics[i].phys, ver & 0xff,
			io->gsi_base, io->gsi_base + io->pins - 1);
		nioapics++;
	}
	if (nioapics == 0)
		kprintf("ioapic: none usable, device interrupts need MSI\n");
}

static struct ioapic *ioapic_for_gsi(uint32_t gsi)
{
	for (unsigned i = 0; i < nioapics; i++)
		if (gsi >= ioapics[i].gsi_base && gsi < ioapics[i].gsi_base + ioapics[i].pins)
			return &ioapics[i];
	return NULL;
}

int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t dest_apic_id, uint16_t flags)
{
	struct ioapic *io = ioapic_for_gsi(gsi);
	if (!io) {
		kprintf("ioapic: GSI %u is not handled by any IOAPIC\n", gsi);
		return -ENOENT;
	}
	/* Physical destination mode holds an 8-bit APIC ID; higher IDs need
	 * interrupt remapping, which we do not implement. */
	if (dest_apic_id > 255) {
		kprintf("ioapic: GSI %u: APIC id %u does not fit without interrupt remapping\n",
			gsi, dest_apic_id);
		return -ENOTSUP;
	}
	if (vector < 32)
		return -EINVAL;
	/* "Conforming" (0) means the bus default; for ISA that is edge
	 * triggered, active high, which is also what 1 says explicitly. */
	uint32_t low = vector;
	if (INTI_POLARITY(flags) == INTI_ACTIVE_LOW)
		low |= REDIR_ACTIVE_LOW;
	if (INTI_TRIGGER(flags) == INTI_LEVEL)
		low |= REDIR_LEVEL;
	unsigned pin = gsi - io->gsi_base;
	uint64_t f = spin_lock_irqsave(&io->lock);
	ioapic_write(io, IOAPIC_REDIR(pin), REDIR_MASKED);   /* mask while changing */
	ioapic_write(io, IOAPIC_REDIR(pin) + 1, dest_apic_id << 24);
	ioapic_write(io, IOAPIC_REDIR(pin), low);
	spin_unlock_irqrestore(&io->lock, f);
	return 0;
}

void ioapic_mask(uint32_t gsi)
{
	struct ioapic *io = ioapic_for_gsi(gsi);
	if (!io)
		return;
	unsigned pin = gsi - io->gsi_base;
	uint64_t f = spin_lock_irqsave(&io->lock);
	ioapic_write(io, IOAPIC_REDIR(pin), ioapic_read(io, IOAPIC_REDIR(pin)) | REDIR_MASKED);
	spin_unlock_irqrestore(&io->lock, f);
}
