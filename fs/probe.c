/*
 * Disk probe: blank, ours, or something a user would not want formatted.
 *
 * Signatures are looked for first, so the message names the thing ("an XFS
 * filesystem") rather than only "data".  A disk with no known signature but
 * any non-zero byte in the probed areas is still refused: a filesystem we
 * do not know, an encrypted volume or a raw database looks like that.
 */
#include "fs/probe.h"
#include "fs/format.h"

#define PROBE_CHUNK (256u << 10)    /* >= 96 KiB: every head signature is in the first chunk */

static const char probe_cowfs[] = "a cowfs filesystem";

static bool at(const uint8_t *h, size_t len, size_t off, const char *sig, size_t n)
{
	if (off + n > len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (h[off + i] != (uint8_t)sig[i])
			return false;
	return true;
}

/* Any of the four MBR partition entries in use (type byte non-zero). */
static bool mbr_has_partitions(const uint8_t *h)
{
	for (unsigned i = 0; i < 4; i++)
		if (h[446 + 16 * i + 4])
			return true;
	return false;
}

const char *cowfs_probe_signature(const uint8_t *h, size_t len, uint32_t lba)
{
	static const struct { size_t off; const char *sig; size_t n; const char *what; } sigs[] = {
		{ 65536 + 64, "_BHRfS_M", 8, "a btrfs filesystem" },
		{ 0, "XFSB", 4, "an XFS filesystem" },
		{ 1080, "\x53\xef", 2, "an ext2/3/4 filesystem" },
		{ 0, "LUKS\xba\xbe", 6, "a LUKS encrypted volume" },
		{ 4086, "SWAPSPACE2", 10, "Linux swap space" },
		{ 536, "LVM2 001", 8, "an LVM physical volume" },
		{ 32769, "CD001", 5, "an ISO 9660 image" },
		{ 3, "NTFS    ", 8, "an NTFS filesystem" },
		{ 3, "EXFAT   ", 8, "an exFAT filesystem" },
		{ 82, "FAT32   ", 8, "a FAT32 filesystem" },
		{ 54, "FAT1", 4, "a FAT12/16 filesystem" },
	};
	/* GPT header at LBA 1 (both sector sizes tried: the disk may have
	 * been partitioned under another logical block size). */
	if (at(h, len, lba, "EFI PART", 8) || at(h, len, 512, "EFI PART", 8) || at(h, len, 4096, "EFI PART", 8))
		return "a GPT partition table";
	/* cowfs: a superblock in any slot of area 0 (docs/format.md §3). */
	for (uint64_t slot = 0; slot < CFS_SB_SLOTS; slot++)
		if (at(h, len, (CFS_SB_AREA0 + slot) * CFS_BLOCK_SIZE + CFS_SB_MAGIC_OFF, CFS_SB_MAGIC, 8))
			return probe_cowfs;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (at(h, len, sigs[i].off, sigs[i].sig, sigs[i].n))
			return sigs[i].what;
	if (len >= 512 && h[510] == 0x55 && h[511] == 0xaa)
		return mbr_has_partitions(h) ? "an MBR partition table" : "a boot sector";
	return NULL;
}

static int64_t first_nonzero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return (int64_t)i;
	return -1;
}

/* Scans [off, off+len) chunk by chunk; the first chunk of the device goes
 * through the signature check.  *nz = offset of the first non-zero byte
 * or -1. */
static int probe_scan(struct plat_bdev *b, uint64_t off, uint64_t len, uint8_t *buf, const char **sig,
		      int64_t *nz)
{
	uint32_t lba = plat_bdev_block_size(b);
	for (uint64_t done = 0; done < len; done += PROBE_CHUNK) {
		uint64_t n = len - done < PROBE_CHUNK ? len - done : PROBE_CHUNK;
		int err = plat_bdev_rw(b, PLAT_BIO_READ, off + done, buf, n);
		if (err)
			return err;
		if (off + done == 0)
			*sig = cowfs_probe_signature(buf, n, lba);
		else if (done + n == len && off + len == plat_bdev_size(b) &&
			 (at(buf, n, n - 512, "EFI PART", 8) || at(buf, n, n - lba, "EFI PART", 8)))
			*sig = "a backup GPT partition table";
		int64_t i = *nz < 0 ? first_nonzero(buf, n) : -1;
		if (i >= 0)
			*nz = (int64_t)(off + done) + i;
		if (*sig)
			return 0;
	}
	return 0;
}

int cowfs_probe_disk(struct plat_bdev *b, struct cowfs_probe *out)
{
	uint64_t size = plat_bdev_size(b);
	uint32_t lba = plat_bdev_block_size(b);
	uint64_t head = size < COWFS_PROBE_HEAD ? size : COWFS_PROBE_HEAD;
	uint64_t tail = size - head < COWFS_PROBE_TAIL ? size - head : COWFS_PROBE_TAIL;
	const char *sig = NULL;
	int64_t nz = -1;
	int err;

	head -= head % lba;
	tail -= tail % lba;
	uint8_t *buf = plat_alloc_pages(PROBE_CHUNK);
	if (!buf)
		return -PLAT_ENOMEM;
	err = probe_scan(b, 0, head, buf, &sig, &nz);
	if (!err && !sig && tail)
		err = probe_scan(b, size - tail, tail, buf, &sig, &nz);
	plat_free_pages(buf, PROBE_CHUNK);
	if (err)
		return err;
	if (sig) {
		out->kind = sig == probe_cowfs ? COWFS_PROBE_COWFS : COWFS_PROBE_FOREIGN;
		plat_snprintf(out->what, sizeof(out->what), "%s", sig);
	} else if (nz >= 0) {
		out->kind = COWFS_PROBE_FOREIGN;
		plat_snprintf(out->what, sizeof(out->what), "data (non-zero bytes at offset %#llx)",
			      (unsigned long long)nz);
	} else {
		out->kind = COWFS_PROBE_BLANK;
		plat_snprintf(out->what, sizeof(out->what), "blank");
	}
	return 0;
}
