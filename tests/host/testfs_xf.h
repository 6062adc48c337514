/*
 * Transform test filesystem (tests/host/testfs_xf.c): an extent list per
 * inode, every write copy-on-write into fresh blocks (bump allocator), and
 * real data-transform stages for the core (COW-35/36/37):
 *   - "rle": a run-length compressor of our own (encoded extents);
 *   - "xor": a TEST-ONLY toy cipher, XOR with a keystream derived from a
 *     key and the device address; it hides nothing, it only proves that
 *     the core runs a size-preserving stage at the right place;
 *   - "crc32c": one CRC32C per stored device block, verified on read.
 * Write order rle -> xor -> crc32c (configurable by the stage list).
 */
#ifndef TESTS_HOST_TESTFS_XF_H
#define TESTS_HOST_TESTFS_XF_H

#include "iomap/buffered_io.h"
#include "iomap/direct_io.h"
#include "iomap/xform.h"
#include "platform/host/platform_host.h"

struct xt_ext {
	uint64_t off, len;          /* logical bytes */
	uint64_t addr;              /* device byte address of the stored bytes */
	uint64_t io_size;           /* stored bytes (ENCODED) */
	uint64_t enc_off, enc_len;  /* piece [enc_off, +len) of the decoded enc_len bytes */
	uint16_t type, flags;       /* IOMAP_MAPPED / IOMAP_ENCODED, IOMAP_F_CSUM|CRYPT */
};

#define XT_MAX_EXT 512

struct xt_fs {
	struct plat_bdev *bdev;
	struct pcache *pc;
	struct iomap_workq *wq;
	struct plat_mutex *lock;
	uint64_t next;              /* bump allocator, bytes */
	uint64_t dev_bytes;
	uint32_t *csum;             /* per device block */
	uint16_t wflags;            /* transform flags of new writes */
	uint64_t key;
	unsigned blkbits;
	uint64_t csum_failures, encodes, decodes;
	const uint8_t *crc_in;      /* the bytes the checksum stage last summed */
	struct iomap_xform_ops xops;
	char path[128];
};

struct xt_inode {
	struct iomap_inode ino;
	struct xt_fs *fs;
	struct xt_ext ext[XT_MAX_EXT];
	unsigned next;
	uint64_t seq;
	struct { uint64_t pos, addr; uint16_t flags; bool used; } dio[16];   /* begin -> end_io */
};

extern const struct iomap_ops xt_ops;
/* The stages, for tests that choose another order (fs->xops). */
extern const struct iomap_xform_stage xt_rle, xt_cipher, xt_crc;
extern const struct iomap_dio_ops xt_dio_ops;

int xt_create(uint16_t wflags, unsigned blkbits, struct xt_fs **out);
void xt_destroy(struct xt_fs *fs);
struct xt_inode *xt_inode_new(struct xt_fs *fs);
int xt_inode_free(struct xt_inode *xi);
/* Buffered write: partial overwrites of encoded extents COW the whole
 * extent first (COW-36). */
int64_t xt_write(struct xt_inode *xi, uint64_t pos, const void *buf, uint64_t len);
int64_t xt_read(struct xt_inode *xi, uint64_t pos, void *buf, uint64_t len);
/* fsync + drop every cached folio. */
int xt_sync_drop(struct xt_inode *xi);
/* Copy of the extent covering pos (type 0 = none). */
struct xt_ext xt_ext_at(struct xt_inode *xi, uint64_t pos);
uint32_t xt_crc32c(uint32_t crc, const uint8_t *p, uint64_t n);

#endif
