/*
 * Data transforms (COW-35) and encoded extents (COW-36/37).
 *
 * A filesystem that stores transformed data supplies an ordered list of
 * stages in inode->xform.  Each stage is switched on by one map flag
 * (IOMAP_F_CSUM, IOMAP_F_CRYPT, IOMAP_F_ENCODED; an IOMAP_ENCODED map
 * implies IOMAP_F_ENCODED).  The list order is the WRITE order; the core
 * runs the stages backwards on read.  The usual order is
 *     write: compress -> encrypt -> checksum the stored bytes
 *     read:  verify -> decrypt -> decompress
 * but it is the filesystem's to choose (Gao's caveat).
 *
 * Where the core calls them:
 *   - writeback: at ioend submission the ioend's bytes are copied into a
 *     bounce buffer and encoded; the bio writes the bounce (the cached
 *     folios keep plain data).  A map with IOMAP_F_ENCODED is written one
 *     ioend per extent, never merged, and end_io gets the stored size in
 *     map->io_size (and IOMAP_F_ENCODED cleared when the encoder declined);
 *   - buffered read: a map with stages is read synchronously into a bounce
 *     and decoded; an IOMAP_ENCODED map is read whole and decoded into
 *     every logical page it covers (COW-36);
 *   - RMW from a source map (write, zero, unshare): the source block is
 *     decoded first (COW-37);
 *   - direct I/O: reads decode (whole extent when ENCODED), writes encode
 *     through a bounce (size-preserving stages only: a direct write is
 *     never compressed).
 * A stage failure is an I/O error: the reader gets -EIO, never stale or
 * undecoded bytes, and the core logs which stage failed where.
 */
#ifndef IOMAP_XFORM_H
#define IOMAP_XFORM_H

#include "iomap/iomap.h"

struct iomap_xform_stage {
	const char *name;
	uint16_t flag;          /* map flag that turns the stage on */
	bool resizes;           /* output length may differ (compression) */
	/*
	 * in (n bytes) -> out (at most cap bytes).  pos is the file offset of
	 * the logical range, dev the device byte address of the stored bytes.
	 * Returns the output length or -errno.  A resizing encoder returns
	 * -ENOSPC when its output would not be smaller: the core then stores
	 * that stage's input as is and clears the stage's flag.  A resizing
	 * decoder produces exactly map->length bytes for [map->offset, +length).
	 */
	int64_t (*encode)(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			  const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap);
	int64_t (*decode)(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			  const uint8_t *in, uint64_t n, uint8_t *out, uint64_t cap);
	/* The stage only reads the bytes (a checksum): the runner passes
	 * out == in and the stage must not write them.  Saves a copy of
	 * every byte per stage. */
	bool in_place;
};

struct iomap_xform_ops {
	const struct iomap_xform_stage *const *stages;   /* write order */
	unsigned nstages;
};

/* Does this map need the transform path? */
static inline uint16_t iomap_xform_flags(const struct iomap *m)
{
	return (uint16_t)((m->flags & IOMAP_F_XFORM) | (m->type == IOMAP_ENCODED ? IOMAP_F_ENCODED : 0));
}
static inline bool iomap_xformed(const struct iomap_inode *inode, const struct iomap *m)
{
	return inode->xform && iomap_xform_flags(m);
}

/*
 * Encode n logical bytes at pos (stored at device address dev).  Returns a
 * plat_alloc'ed buffer in *out (block-rounded, zero-padded), the stored
 * length in *stored and the stage flags actually applied in *applied.
 */
int iomap_xform_encode(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
		       const uint8_t *in, uint64_t n, uint8_t **out, uint64_t *stored, uint16_t *applied);
/* The same over buf, a plat_alloc'ed buffer of n bytes rounded up to the
 * block size, which it consumes (returned in *out or freed): no copy. */
int iomap_xform_encode_owned(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			     uint8_t *buf, uint64_t n, uint8_t **out, uint64_t *stored, uint16_t *applied);
/* Whole blocks whose active stages only read the bytes (checksums): run
 * them over buf itself, which then goes to the device as it is (no
 * bounce copy).  1 = done, 0 = a stage rewrites or n is not whole blocks
 * (use iomap_xform_encode), < 0 = a stage failed (logged). */
int iomap_xform_encode_shared(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint64_t dev,
			      const uint8_t *buf, uint64_t n);
/*
 * Read and decode [pos, pos+n) of map into out.  ENCODED maps: the whole
 * extent is read (io_size bytes) and decoded; out receives [pos, pos+n).
 * Other maps: only the blocks of [pos, pos+n) are read.  0 or -errno.
 */
int iomap_xform_read(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint8_t *out, uint64_t n);
/*
 * Direct reads of size-preserving stages (checksums): the bytes are read
 * into the caller's buffer by ordinary asynchronous bios, and verified
 * there when they have all arrived.  iomap_xform_in_place() says whether
 * map qualifies (not ENCODED, no active stage resizes);
 * iomap_xform_verify() decodes [pos, pos+n) (block-aligned) in buf:
 * 0, or -EIO when a stage rejects the bytes (logged by the stage).
 */
bool iomap_xform_in_place(struct iomap_inode *inode, const struct iomap *map);
int iomap_xform_verify(struct iomap_inode *inode, const struct iomap *map, uint64_t pos, uint8_t *buf, uint64_t n);

/*
 * COW-42: may the block at pos be used as a physical mapping (swap, bmap)?
 * NULL when yes, else why not.  iomap_bmap returns the device address of
 * pos or -EINVAL after logging that reason.
 */
const char *iomap_physical_refusal(const struct iomap *m, const struct iomap *srcmap);
int64_t iomap_bmap(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops);
/* Every block of [0, len) must pass (swapfile activation); 0 or -EINVAL. */
int iomap_swap_activate(struct iomap_inode *inode, uint64_t len, const struct iomap_ops *ops);

#endif
