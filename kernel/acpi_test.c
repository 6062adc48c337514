/* Self-tests for ACPI parsing and the \_S5 AML decoder. */
#include "kernel/selftest.h"
#include "kernel/cpu.h"
#include "kernel/acpi.h"
#include "kernel/apic.h"
#include "kernel/errno.h"
#include "kernel/kstring.h"
#include "kernel/kernel.h"

/* q35 is recognised by its host bridge (8086:29c0 at 00:00.0), read through
 * the legacy config ports so that this does not depend on the code under
 * test. */
static bool acpi_test_is_q35(void)
{
	outl(0xcf8, 0x80000000u);
	return inl(0xcfc) == 0x29c08086u;
}

SELFTEST(acpi, cpus)
{
	unsigned enabled = 0;
	bool bsp_listed = false;
	for (unsigned i = 0; i < acpi.ncpus; i++) {
		enabled += acpi.cpus[i].enabled;
		bsp_listed |= acpi.cpus[i].apic_id == lapic_id();
	}
	ST_EXPECT(acpi.ncpus >= 1);
	ST_EXPECT(enabled >= 1);
	ST_EXPECT(bsp_listed || acpi.ncpus == 0);
	ST_EXPECT(acpi.lapic_phys != 0);
}

SELFTEST(acpi, q35_tables)
{
	if (!acpi_test_is_q35())
		ST_SKIP("not a q35 machine");
	ST_EXPECT(acpi.nioapics >= 1);
	ST_EXPECT(acpi.nioapics == 0 || acpi.ioapics[0].phys == 0xfec00000);
	ST_EXPECT(acpi.necam >= 1);
	ST_EXPECT(acpi.necam == 0 || acpi.ecam[0].bus_start == 0);
	ST_EXPECT(acpi.pm1a_cnt != 0);
	ST_EXPECT(acpi_find_table("APIC", 0) != NULL);
	ST_EXPECT(acpi_find_table("DSDT", 0) != NULL);
	ST_EXPECT(acpi_find_table("ZZZZ", 0) == NULL);
	/* qemu overrides ISA IRQ 0 (PIT) to GSI 2. */
	uint16_t flags;
	ST_EXPECT(acpi_isa_irq_to_gsi(0, &flags) == 2);
	/* ... and leaves IRQ 4 (COM1) alone: identity, ISA default flags. */
	ST_EXPECT(acpi_isa_irq_to_gsi(4, &flags) == 4 && flags == 0);
}

SELFTEST(acpi, checksums)
{
	ST_EXPECT(acpi_table_count() >= 3);
	for (unsigned i = 0; i < acpi_table_count(); i++) {
		const uint8_t *t = acpi_table_at(i);
		uint32_t len;
		memcpy(&len, t + 4, 4);
		ST_EXPECT(acpi_checksum_ok(t, len));
	}
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, (uint8_t)(256 - 28) };
	ST_EXPECT(acpi_checksum_ok(buf, sizeof(buf)));
	buf[3] ^= 0x10;
	ST_EXPECT(!acpi_checksum_ok(buf, sizeof(buf)));
}

SELFTEST(acpi, s5_from_dsdt)
{
	if (!acpi_test_is_q35())
		ST_SKIP("not a q35 machine");
	/* qemu: Name(_S5, Package(4){Zero, Zero, Zero, Zero}); SLP_TYP 0 = off. */
	ST_EXPECT(acpi.s5_valid);
	ST_EXPECT(acpi.slp_typa == 0);
}

SELFTEST(acpi, s5_decoder)
{
	uint16_t a = 99, b = 99;
	static const uint8_t byte_prefix[] = { 0x10, 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
					       0x0a, 0x05, 0x0a, 0x06, 0x00, 0x00 };
	ST_EXPECT(acpi_aml_find_s5(byte_prefix, sizeof(byte_prefix), &a, &b) == 0);
	ST_EXPECT(a == 5 && b == 6);

	static const uint8_t rooted_consts[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x06, 0x04,
						 0x01, 0x00, 0x00, 0x00 };
	ST_EXPECT(acpi_aml_find_s5(rooted_consts, sizeof(rooted_consts), &a, &b) == 0);
	ST_EXPECT(a == 1 && b == 0);

	/* Two-byte PkgLength (lead 0x47, extra byte 0) = 7. */
	static const uint8_t long_len[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x47, 0x00, 0x02,
					    0x0a, 0x07, 0x0a, 0x03 };
	ST_EXPECT(acpi_aml_find_s5(long_len, sizeof(long_len), &a, &b) == 0);
	ST_EXPECT(a == 7 && b == 3);

	/* Truncated: the package claims bytes past the end of the table. */
	ST_EXPECT(acpi_aml_find_s5(byte_prefix, 12, &a, &b) == -EINVAL);
	/* The name without NameOp before it is a reference, not a definition. */
	static const uint8_t reference[] = { 0x70, '_', 'S', '5', '_', 0x12, 0x04, 0x02, 0x00, 0x00 };
	ST_EXPECT(acpi_aml_find_s5(reference, sizeof(reference), &a, &b) == -ENOENT);
	/* A string element is not an integer. */
	static const uint8_t string_elem[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x02,
					       0x0d, 'x', 0x00, 0x00 };
	ST_EXPECT(acpi_aml_find_s5(string_elem, sizeof(string_elem), &a, &b) == -EINVAL);
	/* SLP_TYP is 3 bits wide. */
	static const uint8_t too_big[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x02,
					   0x0a, 0x09, 0x0a, 0x00 };
	ST_EXPECT(acpi_aml_find_s5(too_big, sizeof(too_big), &a, &b) == -EINVAL);
	/* Name at the very end, and junk: no crash, nothing found. */
	static const uint8_t at_end[] = { 0x00, 0x08, '_', 'S', '5', '_' };
	ST_EXPECT(acpi_aml_find_s5(at_end, sizeof(at_end), &a, &b) == -EINVAL);
	ST_EXPECT(acpi_aml_find_s5(at_end, 3, &a, &b) == -ENOENT);
	ST_EXPECT(acpi_aml_find_s5(NULL, 100, &a, &b) == -ENOENT);
}

/* IOAPIC routing refuses what it cannot do, without touching any pin. */
SELFTEST(acpi, ioapic_route_checks)
{
	if (acpi.nioapics == 0)
		return;
	ST_EXPECT(ioapic_route(100000, 0x40, 0, 0) == -ENOENT);
	ST_EXPECT(ioapic_route(acpi.ioapics[0].gsi_base, 0x40, 256, 0) == -ENOTSUP);
	ST_EXPECT(ioapic_route(acpi.ioapics[0].gsi_base, 0x10, 0, 0) == -EINVAL);
}
