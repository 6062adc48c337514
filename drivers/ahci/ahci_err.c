/*
 * AHCI error decoding: the ATA task file (status + error register), the
 * port interrupt status error bits and SATA SError, all into words, so a
 * failed request tells its caller what the device or the link said.
 */
#include "drivers/ahci/ahci.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"

static void ahci_append(char *buf, size_t len, const char *s)
{
	size_t n = strnlen(buf, len);

	if (n + 1 < len)
		strlcpy(buf + n, s, len - n);
}

static void ahci_append_bits(char *buf, size_t len, uint32_t v, const char *const *names,
			     unsigned nnames, const char *prefix)
{
	bool first = true;

	for (unsigned i = 0; i < nnames; i++) {
		if (!(v & (1u << i)) || !names[i])
			continue;
		ahci_append(buf, len, first ? prefix : ", ");
		ahci_append(buf, len, names[i]);
		first = false;
	}
}

/* The most specific reason first: UNC and IDNF say more than ABRT. */
void ahci_decode_tfd(uint32_t tfd, char *buf, size_t len)
{
	uint8_t st = tfd & 0xff, er = (tfd >> 8) & 0xff;
	const char *what;

	if (st & ATA_SR_BSY)
		what = "device busy (BSY stuck)";
	else if (st & ATA_SR_DF)
		what = "device fault";
	else if (!(st & ATA_SR_ERR))
		what = (st & ATA_SR_DRQ) ? "device wants data (DRQ stuck)" : "no device error";
	else if (er & ATA_ER_ICRC)
		what = "interface CRC error";
	else if (er & ATA_ER_UNC)
		what = "uncorrectable data error (media)";
	else if (er & ATA_ER_IDNF)
		what = "ID not found (address out of range)";
	else if (er & ATA_ER_AMNF)
		what = "address mark not found (media)";
	else if (er & ATA_ER_MC)
		what = "media changed";
	else if (er & ATA_ER_MCR)
		what = "media change requested";
	else if (er & ATA_ER_NM)
		what = "no media";
	else if (er & ATA_ER_ABRT)
		what = "command aborted by device";
	else
		what = "device error";
	ksnprintf(buf, len, "%s (ATA status 0x%02x error 0x%02x)", what, st, er);
}

static const char *const ahci_is_names[32] = {
	[4] = "unknown FIS", [6] = "port connect change", [22] = "PhyRdy change",
	[23] = "incorrect port multiplier", [24] = "overflow",
	[26] = "interface non-fatal error", [27] = "interface fatal error",
	[28] = "host bus data error", [29] = "host bus fatal error",
	[30] = "task file error",
};

void ahci_decode_is(uint32_t is, char *buf, size_t len)
{
	ahci_append_bits(buf, len, is & AHCI_PxIS_ERRORS, ahci_is_names, 32, "");
}

/* SError: ERR in bits 11:0, DIAG in 26:16 (AHCI 3.3.12). */
static const char *const ahci_serr_names[32] = {
	[0] = "recovered data integrity error", [1] = "recovered communication error",
	[8] = "transient data integrity error", [9] = "persistent communication error",
	[10] = "protocol error", [11] = "internal error",
	[16] = "PhyRdy change", [17] = "phy internal error", [18] = "comm wake",
	[19] = "10b to 8b decode error", [20] = "disparity error", [21] = "CRC error",
	[22] = "handshake error", [23] = "link sequence error",
	[24] = "transport state transition error", [25] = "unknown FIS type",
	[26] = "device exchanged",
};

void ahci_decode_serr(uint32_t serr, char *buf, size_t len)
{
	ahci_append_bits(buf, len, serr, ahci_serr_names, 32, "");
}

void ahci_decode_error(uint32_t is, uint32_t tfd, uint32_t serr, char *buf, size_t len)
{
	char tmp[64];

	buf[0] = 0;
	if (is & ~AHCI_PxIS_TFES & AHCI_PxIS_ERRORS) {
		/* An HBA or link error: the task file is secondary. */
		ahci_decode_is(is & ~AHCI_PxIS_TFES, buf, len);
		ksnprintf(tmp, sizeof tmp, " (PxIS 0x%08x)", is);
		ahci_append(buf, len, tmp);
	} else {
		/* A task-file error whose status was already overwritten by a
		 * later good completion (NCQ): the error register still says
		 * why, so decode it as an error. */
		if ((is & AHCI_PxIS_TFES) && (tfd & 0xff00) && !(tfd & (ATA_SR_ERR | ATA_SR_DF)))
			tfd |= ATA_SR_ERR;
		ahci_decode_tfd(tfd, buf, len);
	}
	if (serr) {
		ahci_append(buf, len, "; SError: ");
		ahci_decode_serr(serr, buf, len);
	}
}

const char *ahci_sig_name(uint32_t sig)
{
	switch (sig) {
	case AHCI_SIG_ATA:   return "ATA disk";
	case AHCI_SIG_ATAPI: return "ATAPI device";
	case AHCI_SIG_SEMB:  return "enclosure bridge";
	case AHCI_SIG_PM:    return "port multiplier";
	default:             return "unknown device";
	}
}
