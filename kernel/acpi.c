/*
 * ACPI table discovery: RSDP -> XSDT/RSDT -> MADT, MCFG, HPET, FADT, DSDT.
 *
 * Every table is reached through the direct map (the loader maps all of RAM
 * and the firmware's ACPI ranges there) and checksum-verified before any
 * field of it is trusted; a bad table is reported by signature and skipped.
 * Results land in `acpi`, read-only once acpi_init() returns.
 */
#include "kernel/acpi.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/kernel.h"

struct acpi_info acpi;

struct acpi_rsdp {
	char sig[8];
	uint8_t checksum;
	char oem[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;        /* revision >= 2 from here on */
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_sdt {
	char sig[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem[6];
	char oem_table[8];
	uint32_t oem_revision;
	uint32_t creator, creator_revision;
} __attribute__((packed));

/* A table larger than this is treated as corrupt rather than walked. */
#define ACPI_MAX_TABLE_LEN (16u << 20)
#define ACPI_MAX_TABLES 64

static const struct acpi_sdt *acpi_tables[ACPI_MAX_TABLES];
static unsigned acpi_ntables;

bool acpi_checksum_ok(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum += b[i];
	return sum == 0;
}

static inline uint8_t acpi_rd8(const void *base, uint32_t off) { return ((const uint8_t *)base)[off]; }
static inline uint16_t acpi_rd16(const void *base, uint32_t off)
{
	uint16_t v; memcpy(&v, (const uint8_t *)base + off, 2); return v;
}
static inline uint32_t acpi_rd32(const void *base, uint32_t off)
{
	uint32_t v; memcpy(&v, (const uint8_t *)base + off, 4); return v;
}
static inline uint64_t acpi_rd64(const void *base, uint32_t off)
{
	uint64_t v; memcpy(&v, (const uint8_t *)base + off, 8); return v;
}

unsigned acpi_table_count(void) { return acpi_ntables; }
const void *acpi_table_at(unsigned i) { return i < acpi_ntables ? acpi_tables[i] : NULL; }

const void *acpi_find_table(const char *sig, unsigned index)
{
	for (unsigned i = 0; i < acpi_ntables; i++)
		if (memcmp(acpi_tables[i]->sig, sig, 4) == 0 && index-- == 0)
			return acpi_tables[i];
	return NULL;
}

/* Map, verify and remember one table; NULL when it is unusable. */
static const struct acpi_sdt *acpi_load_table(uint64_t phys)
{
	if (phys == 0)
		return NULL;
	const struct acpi_sdt *t = PHYS_TO_VIRT(phys);
	char sig[5] = { t->sig[0], t->sig[1], t->sig[2], t->sig[3], 0 };
	for (int i = 0; i < 4; i++)
		if (sig[i] < 0x20 || sig[i] > 0x7e)
			sig[i] = '?';
	if (t->length < sizeof(*t) || t->length > ACPI_MAX_TABLE_LEN) {
		kprintf("acpi: %s at 0x%llx has implausible length %u, skipped\n", sig,
			(unsigned long long)phys, t->length);
		return NULL;
	}
	if (!acpi_checksum_ok(t, t->length)) {
		kprintf("acpi: %s at 0x%llx has a bad checksum, skipped\n", sig, (unsigned long long)phys);
		return NULL;
	}
	kprintf("acpi: %s at 0x%llx rev %u len %u oem '%.6s'\n", sig, (unsigned long long)phys,
		t->revision, t->length, t->oem);
	if (acpi_ntables < ACPI_MAX_TABLES)
		acpi_tables[acpi_ntables++] = t;
	else
		kprintf("acpi: more than %u tables, %s not recorded\n", ACPI_MAX_TABLES, sig);
	return t;
}

static void acpi_add_cpu(uint32_t apic_id, uint32_t flags)
{
	/* Bit 0 enabled, bit 1 online capable; neither means "never usable". */
	if (!(flags & 3))
		return;
	for (unsigned i = 0; i < acpi.ncpus; i++)
		if (acpi.cpus[i].apic_id == apic_id)
			return;         /* firmware listed it as both xAPIC and x2APIC */
	if (acpi.ncpus >= ACPI_MAX_CPUS) {
		kprintf("acpi: CPU apic id %u ignored (more than %u CPUs)\n", apic_id, ACPI_MAX_CPUS);
		return;
	}
	acpi.cpus[acpi.ncpus].apic_id = apic_id;
	acpi.cpus[acpi.ncpus].enabled = flags & 1;
	acpi.ncpus++;
}

static void acpi_parse_madt(const struct acpi_sdt *t)
{
	if (t->length < 44)
		return;
	acpi.lapic_phys = acpi_rd32(t, 36);
	/* Entries are (type, length, body); a length below 2 would loop forever
	 * and one running past the table end is corrupt: stop at either. */
	for (uint32_t off = 44; off + 2 <= t->length;) {
		uint8_t type = acpi_rd8(t, off), len = acpi_rd8(t, off + 1);
		if (len < 2 || off + len > t->length) {
			kprintf("acpi: MADT entry type %u at offset %u is malformed, stop\n", type, off);
			break;
		}
		switch (type) {
		case 0:         /* processor local APIC */
			if (len >= 8)
				acpi_add_cpu(acpi_rd8(t, off + 3), acpi_rd32(t, off + 4));
			break;
		case 9:         /* processor local x2APIC */
			if (len >= 16)
				acpi_add_cpu(acpi_rd32(t, off + 4), acpi_rd32(t, off + 8));
			break;
		case 1:         /* IOAPIC */
			if (len >= 12 && acpi.nioapics < ACPI_MAX_IOAPICS) {
				unsigned n = acpi.nioapics++;
				acpi.ioapics[n].id = acpi_rd8(t, off + 2);
				acpi.ioapics[n].phys = acpi_rd32(t, off + 4);
				acpi.ioapics[n].gsi_base = acpi_rd32(t, off + 8);
			}
			break;
		case 2:         /* interrupt source override (bus 0 = ISA) */
			if (len >= 10 && acpi.noverrides < ACPI_MAX_OVERRIDES) {
				unsigned n = acpi.noverrides++;
				acpi.overrides[n].isa_irq = acpi_rd8(t, off + 3);
				acpi.overrides[n].gsi = acpi_rd32(t, off + 4);
				acpi.overrides[n].flags = acpi_rd16(t, off + 8);
			}
			break;
		case 5:         /* 64-bit local APIC address override */
			if (len >= 12)
				acpi.lapic_phys = acpi_rd64(t, off + 4);
			break;
		default:
			break;
		}
		off += len;
	}
}

static void acpi_parse_mcfg(const struct acpi_sdt *t)
{
	for (uint32_t off = 44; off + 16 <= t->length && acpi.necam < ACPI_MAX_ECAM; off += 16) {
		unsigned n = acpi.necam++;
		acpi.ecam[n].phys = acpi_rd64(t, off);
		acpi.ecam[n].segment = acpi_rd16(t, off + 8);
		acpi.ecam[n].bus_start = acpi_rd8(t, off + 10);
		acpi.ecam[n].bus_end = acpi_rd8(t, off + 11);
	}
}

static void acpi_parse_hpet(const struct acpi_sdt *t)
{
	/* Base address GAS at 40: only system memory (space 0) is usable. */
	if (t->length >= 56 && acpi_rd8(t, 40) == 0)
		acpi.hpet_phys = acpi_rd64(t, 44);
}

/* FADT: returns the DSDT's physical address (0 if none). */
static uint64_t acpi_parse_fadt(const struct acpi_sdt *t)
{
	uint32_t len = t->length;
	uint64_t dsdt = len >= 44 ? acpi_rd32(t, 40) : 0;
	if (len >= 148 && acpi_rd64(t, 140))
		dsdt = acpi_rd64(t, 140);
	if (len >= 72) {
		acpi.sci_irq = acpi_rd16(t, 46);
		acpi.smi_cmd = (uint16_t)acpi_rd32(t, 48);
		acpi.acpi_enable = acpi_rd8(t, 52);
		acpi.pm1a_evt = acpi_rd32(t, 56);
		acpi.pm1b_evt = acpi_rd32(t, 60);
		acpi.pm1a_cnt = acpi_rd32(t, 64);
		acpi.pm1b_cnt = acpi_rd32(t, 68);
	}
	if (len >= 93) {
		acpi.gpe0_blk = acpi_rd32(t, 80);
		acpi.pm1_evt_len = acpi_rd8(t, 88);
		acpi.gpe0_len = acpi_rd8(t, 92);
	}
	/* X_PM1a/b_EVT_BLK (GAS at 148, 160) when the legacy ones are empty. */
	if (len >= 160 && !acpi.pm1a_evt && acpi_rd8(t, 148) == 1)
		acpi.pm1a_evt = (uint32_t)acpi_rd64(t, 152);
	if (len >= 172 && !acpi.pm1b_evt && acpi_rd8(t, 160) == 1)
		acpi.pm1b_evt = (uint32_t)acpi_rd64(t, 164);
	/* ACPI 2.0+ extended blocks, used only if the legacy field is empty
	 * and the block lives in I/O space (space id 1). */
	if (len >= 184 && !acpi.pm1a_cnt && acpi_rd8(t, 172) == 1)
		acpi.pm1a_cnt = (uint32_t)acpi_rd64(t, 176);
	if (len >= 196 && !acpi.pm1b_cnt && acpi_rd8(t, 184) == 1)
		acpi.pm1b_cnt = (uint32_t)acpi_rd64(t, 188);
	/* Reset register: FADT revision 2+, GAS at 116, value at 128. */
	if (t->revision >= 2 && len >= 129) {
		uint8_t space = acpi_rd8(t, 116);
		uint64_t addr = acpi_rd64(t, 120);
		if (addr && space <= 2) {
			acpi.reset.space = space;
			acpi.reset.addr = addr;
			acpi.reset.value = acpi_rd8(t, 128);
			acpi.reset.valid = true;
		}
	}
	return dsdt;
}

static void acpi_parse_dsdt(uint64_t phys)
{
	const struct acpi_sdt *d = acpi_load_table(phys);
	if (!d) {
		kprintf("acpi: no usable DSDT, S5 power-off unavailable\n");
		return;
	}
	const uint8_t *aml = (const uint8_t *)d + sizeof(*d);
	int err = acpi_aml_find_s5(aml, d->length - sizeof(*d), &acpi.slp_typa, &acpi.slp_typb);
	if (err)
		kprintf("acpi: \\_S5 %s in DSDT, S5 power-off unavailable\n",
			err == -ENOENT ? "not found" : "malformed");
	acpi.s5_valid = err == 0;
}

/* Walk the RSDT (4-byte entries) or XSDT (8-byte entries). */
static int acpi_walk_root(const struct acpi_sdt *root, unsigned entry_size)
{
	uint64_t dsdt = 0;
	for (uint32_t off = sizeof(*root); off + entry_size <= root->length; off += entry_size) {
		uint64_t phys = entry_size == 8 ? acpi_rd64(root, off) : acpi_rd32(root, off);
		const struct acpi_sdt *t = acpi_load_table(phys);
		if (!t)
			continue;
		if (!memcmp(t->sig, "APIC", 4))
			acpi_parse_madt(t);
		else if (!memcmp(t->sig, "MCFG", 4))
			acpi_parse_mcfg(t);
		else if (!memcmp(t->sig, "HPET", 4))
			acpi_parse_hpet(t);
		else if (!memcmp(t->sig, "FACP", 4) && !dsdt)
			dsdt = acpi_parse_fadt(t);
	}
	if (dsdt)
		acpi_parse_dsdt(dsdt);
	else
		kprintf("acpi: no FADT/DSDT, power management unavailable\n");
	return 0;
}

int acpi_init(uint64_t rsdp_phys)
{
	if (rsdp_phys == 0) {
		kprintf("acpi: the loader found no RSDP\n");
		return -ENOENT;
	}
	const struct acpi_rsdp *r = PHYS_TO_VIRT(rsdp_phys);
	if (memcmp(r->sig, "RSD PTR ", 8) != 0) {
		kprintf("acpi: no RSDP signature at 0x%llx\n", (unsigned long long)rsdp_phys);
		return -EINVAL;
	}
	if (!acpi_checksum_ok(r, 20)) {
		kprintf("acpi: RSDP checksum bad\n");
		return -EIO;
	}
	memcpy(acpi.oem, r->oem, 6);
	acpi.oem[6] = 0;
	kprintf("acpi: RSDP at 0x%llx rev %u oem '%s'\n", (unsigned long long)rsdp_phys, r->revision, acpi.oem);

	const struct acpi_sdt *root = NULL;
	unsigned entry_size = 4;
	if (r->revision >= 2 && r->length >= sizeof(*r) && r->length < 4096 &&
	    acpi_checksum_ok(r, r->length) && r->xsdt) {
		root = acpi_load_table(r->xsdt);
		entry_size = 8;
	} else if (r->revision >= 2) {
		kprintf("acpi: RSDP extended part unusable, trying the RSDT\n");
	}
	if (!root) {
		root = acpi_load_table(r->rsdt);
		entry_size = 4;
	}
	if (!root) {
		kprintf("acpi: neither XSDT nor RSDT is usable\n");
		return -EIO;
	}
	acpi_walk_root(root, entry_size);

	if (acpi.ncpus == 0 || acpi.lapic_phys == 0) {
		kprintf("acpi: MADT missing or lists no CPUs\n");
		return -ENODEV;
	}
	unsigned enabled = 0;
	for (unsigned i = 0; i < acpi.ncpus; i++)
		enabled += acpi.cpus[i].enabled;
	kprintf("acpi: %u CPUs (%u enabled), %u IOAPICs, %u overrides, %u ECAM, HPET %s, "
		"S5 %s, reset %s\n", acpi.ncpus, enabled, acpi.nioapics, acpi.noverrides, acpi.necam,
		acpi.hpet_phys ? "yes" : "no", acpi.s5_valid ? "yes" : "no",
		acpi.reset.valid ? "register" : "legacy");
	return 0;
}

uint32_t acpi_isa_irq_to_gsi(uint8_t irq, uint16_t *flags)
{
	for (unsigned i = 0; i < acpi.noverrides; i++) {
		if (acpi.overrides[i].isa_irq == irq) {
			if (flags)
				*flags = acpi.overrides[i].flags;
			return acpi.overrides[i].gsi;
		}
	}
	if (flags)
		*flags = 0;     /* conforming: ISA default, edge / active high */
	return irq;
}
