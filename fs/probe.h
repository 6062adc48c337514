/*
 * What a disk holds, before anyone formats it (portable, over the platform).
 *
 * The appliance formats a disk only when it is blank: its first
 * COWFS_PROBE_HEAD bytes and last COWFS_PROBE_TAIL bytes all zero.  Anything
 * else is named (a partition table, another filesystem's signature, or the
 * offset of the first non-zero byte) so the refusal can say what was found.
 * What lies between head and tail is not read: the probe is a safety net
 * against formatting a disk in use, not a proof that a disk is empty.
 */
#ifndef FS_PROBE_H
#define FS_PROBE_H

#include "platform/platform.h"

#define COWFS_PROBE_HEAD (4ull << 20)    /* first 4 MiB */
#define COWFS_PROBE_TAIL (1ull << 20)    /* last 1 MiB (backup GPT, cowfs's superblock mirror) */

enum cowfs_probe_kind {
	COWFS_PROBE_BLANK,       /* all zero where looked */
	COWFS_PROBE_COWFS,       /* a cowfs superblock (valid or not: never formatted over) */
	COWFS_PROBE_FOREIGN,     /* a partition table, another filesystem, or data */
};

struct cowfs_probe {
	enum cowfs_probe_kind kind;
	char what[96];           /* "a GPT partition table", "an ext2/3/4 filesystem",
				  * "data (non-zero bytes at offset 0x...)", "blank" */
};

/* Reads the head and tail of b.  Returns 0 with *out filled, or -errno
 * when the device cannot be read (then nothing is known: never format). */
int cowfs_probe_disk(struct plat_bdev *b, struct cowfs_probe *out);

/* The signature check alone, on the first bytes of a device (at least
 * 96 KiB of head, or fewer when the device is smaller; lba = logical block
 * size for the GPT header).  Returns the description or NULL. */
const char *cowfs_probe_signature(const uint8_t *head, size_t len, uint32_t lba);

#endif
