/*
 * ACPI tables (kernel/acpi.c): parsed once at boot from the RSDP.
 * Everything found is kept in `acpi`, read-only after acpi_init().
 */
#ifndef KERNEL_ACPI_H
#define KERNEL_ACPI_H

#include <stdint.h>
#include <stdbool.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8
#define ACPI_MAX_OVERRIDES 16
#define ACPI_MAX_ECAM 4

struct acpi_info {
	char oem[7];
	unsigned ncpus;
	struct { uint32_t apic_id; bool enabled; } cpus[ACPI_MAX_CPUS];
	uint64_t lapic_phys;
	unsigned nioapics;
	struct { uint32_t id; uint64_t phys; uint32_t gsi_base; } ioapics[ACPI_MAX_IOAPICS];
	unsigned noverrides;   /* ISA IRQ -> GSI with polarity/trigger flags */
	struct { uint8_t isa_irq; uint32_t gsi; uint16_t flags; } overrides[ACPI_MAX_OVERRIDES];
	unsigned necam;        /* from MCFG */
	struct { uint64_t phys; uint16_t segment; uint8_t bus_start, bus_end; } ecam[ACPI_MAX_ECAM];
	uint64_t hpet_phys;    /* 0 when absent */
	/* FADT power management */
	uint32_t pm1a_cnt, pm1b_cnt;   /* I/O ports, 0 when absent */
	uint16_t slp_typa, slp_typb;   /* \_S5 sleep types, valid if s5_valid */
	bool s5_valid;
	struct { uint8_t space; uint64_t addr; uint8_t value; bool valid; } reset;
	uint16_t smi_cmd; uint8_t acpi_enable;
	/* FADT fixed events (power button) through the SCI */
	uint16_t sci_irq;              /* ISA IRQ of the SCI */
	uint32_t pm1a_evt, pm1b_evt;   /* PM1 event blocks (I/O ports), 0 if absent */
	uint8_t pm1_evt_len;           /* bytes: status half, then enable half */
	uint32_t gpe0_blk;             /* GPE0 block (I/O port), 0 if absent */
	uint8_t gpe0_len;              /* bytes: status half, then enable half */
};

extern struct acpi_info acpi;

/* 0 or -errno; prints one line per table found. */
int acpi_init(uint64_t rsdp_phys);
/* Map an ISA IRQ to its GSI and redirection flags (identity if no override). */
uint32_t acpi_isa_irq_to_gsi(uint8_t irq, uint16_t *flags);

/* Checksum-verified tables, in RSDT/XSDT order (the DSDT included).
 * acpi_find_table returns the index'th table with that signature, or NULL. */
const void *acpi_find_table(const char *sig, unsigned index);
unsigned acpi_table_count(void);
const void *acpi_table_at(unsigned i);
/* True when the bytes sum to zero modulo 256. */
bool acpi_checksum_ok(const void *p, uint32_t len);
/* Decode \_S5 from AML (kernel/acpi_aml.c): 0, -ENOENT when absent,
 * -EINVAL when malformed.  Never reads outside [aml, aml+len). */
/* Power button (kernel/acpi_sci.c): the SCI handler clears PM1
 * PWRBTN_STS and wakes a thread that runs power_off_clean(0, "power
 * button").  Presses since boot, for tests. */
extern volatile unsigned acpi_power_button_presses;
int acpi_aml_find_s5(const uint8_t *aml, uint32_t len, uint16_t *typa, uint16_t *typb);

#endif
