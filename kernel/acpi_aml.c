/*
 * Just enough AML to find \_S5: a byte scan of the DSDT for
 *     NameOp ['\'] "_S5_" PackageOp PkgLength NumElements elem0 elem1 ...
 * where the elements are integer constants.  No interpreter: firmware that
 * computes \_S5 in a method is not supported (it reports "not found").
 *
 * Invariant: every read goes through aml_byte(), which checks the index
 * against the buffer end, so truncated or hostile input cannot make us read
 * past the table.
 */
#include "kernel/acpi.h"
#include "kernel/errno.h"

#define AML_ZERO_OP     0x00
#define AML_ONE_OP      0x01
#define AML_NAME_OP     0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_PACKAGE_OP  0x12
#define AML_ROOT_CHAR   0x5c

/* Byte at i, or -1 past the end. */
static int aml_byte(const uint8_t *aml, uint32_t len, uint32_t i)
{
	return i < len ? aml[i] : -1;
}

/* PkgLength at *pos: 1-4 bytes, the top two bits of the lead byte count the
 * extra bytes.  Returns the encoded length (which includes the PkgLength
 * bytes themselves) or -1; advances *pos past the encoding. */
static int64_t aml_pkg_length(const uint8_t *aml, uint32_t len, uint32_t *pos)
{
	int lead = aml_byte(aml, len, *pos);
	if (lead < 0)
		return -1;
	unsigned extra = (unsigned)lead >> 6;
	int64_t value = extra ? (lead & 0x0f) : (lead & 0x3f);
	for (unsigned k = 0; k < extra; k++) {
		int b = aml_byte(aml, len, *pos + 1 + k);
		if (b < 0)
			return -1;
		value |= (int64_t)b << (4 + 8 * k);
	}
	*pos += 1 + extra;
	return value;
}

/* One integer constant element; -1 when it is anything else or truncated. */
static int64_t aml_integer(const uint8_t *aml, uint32_t end, uint32_t *pos)
{
	int op = aml_byte(aml, end, *pos);
	unsigned size;
	switch (op) {
	case AML_ZERO_OP: *pos += 1; return 0;
	case AML_ONE_OP: *pos += 1; return 1;
	case AML_BYTE_PREFIX: size = 1; break;
	case AML_WORD_PREFIX: size = 2; break;
	case AML_DWORD_PREFIX: size = 4; break;
	default: return -1;
	}
	int64_t v = 0;
	for (unsigned k = 0; k < size; k++) {
		int b = aml_byte(aml, end, *pos + 1 + k);
		if (b < 0)
			return -1;
		v |= (int64_t)b << (8 * k);
	}
	*pos += 1 + size;
	return v;
}

/* Decode the package that follows the name at `name` (index of '_'). */
static int aml_decode_s5(const uint8_t *aml, uint32_t len, uint32_t name,
			 uint16_t *typa, uint16_t *typb)
{
	uint32_t pos = name + 4;
	if (aml_byte(aml, len, pos) != AML_PACKAGE_OP)
		return -EINVAL;
	pos++;
	uint32_t pkg_start = pos;
	int64_t pkg_len = aml_pkg_length(aml, len, &pos);
	if (pkg_len < 0 || pkg_start + (uint64_t)pkg_len > len)
		return -EINVAL;
	uint32_t end = pkg_start + (uint32_t)pkg_len;   /* elements stay inside */
	int nelem = aml_byte(aml, end, pos++);
	if (nelem < 1)
		return -EINVAL;
	int64_t a = aml_integer(aml, end, &pos);
	int64_t b = nelem >= 2 ? aml_integer(aml, end, &pos) : 0;
	/* SLP_TYP is a 3-bit field of PM1x_CNT. */
	if (a < 0 || b < 0 || a > 7 || b > 7)
		return -EINVAL;
	*typa = (uint16_t)a;
	*typb = (uint16_t)b;
	return 0;
}

int acpi_aml_find_s5(const uint8_t *aml, uint32_t len, uint16_t *typa, uint16_t *typb)
{
	if (!aml || len < 5)
		return -ENOENT;
	int result = -ENOENT;
	for (uint32_t i = 1; i + 4 <= len; i++) {
		if (aml[i] != '_' || aml[i + 1] != 'S' || aml[i + 2] != '5' || aml[i + 3] != '_')
			continue;
		/* Only a NameOp definition counts; the same bytes inside a
		 * method or a string are not \_S5. */
		bool named = aml[i - 1] == AML_NAME_OP ||
			     (i >= 2 && aml[i - 1] == AML_ROOT_CHAR && aml[i - 2] == AML_NAME_OP);
		if (!named)
			continue;
		int err = aml_decode_s5(aml, len, i, typa, typb);
		if (err == 0)
			return 0;
		result = err;
	}
	return result;
}
