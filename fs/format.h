/*
 * cowfs on-disk format: constants, little-endian accessors and the byte
 * layout of superblocks and tree nodes.  docs/format.md is the reference;
 * every offset here is a row of a table there.  Nothing here does I/O.
 */
#ifndef FS_FORMAT_H
#define FS_FORMAT_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define CFS_BLOCK_SIZE      4096u
#define CFS_BLOCK_SHIFT     12
#define CFS_VERSION_MAJOR   1
#define CFS_VERSION_MINOR   0
#define CFS_SB_MAGIC        "cowfs-sb"      /* 8 bytes, no NUL */
#define CFS_NODE_MAGIC      0x4e736663u     /* "cfsN" read as LE u32 */
#define CFS_SB_SLOTS        8u
#define CFS_SB_AREA0        16u             /* block number of area 0 */
#define CFS_RESERVED_BLOCKS 24u             /* blocks 0..23: unused + area 0 */
#define CFS_MIN_BLOCKS      64u
#define CFS_FSID_SIZE       16u
#define CFS_LABEL_SIZE      64u

/* Feature bits known to this code (docs/format.md §3). */
#define CFS_INCOMPAT_LOG    1ull            /* the superblock may name an intent log to replay (§9) */
#define CFS_INCOMPAT_LOG_CSUM 2ull          /* its log blocks may be on media before their data: replay checks it (§9) */
#define CFS_INCOMPAT_LOG_NAMES 4ull         /* its log may hold ITEM, DELETE and UNLINKED records (§9) */
#define CFS_COMPAT_KNOWN    0ull
#define CFS_RO_COMPAT_KNOWN 0ull
#define CFS_INCOMPAT_KNOWN  (CFS_INCOMPAT_LOG | CFS_INCOMPAT_LOG_CSUM | CFS_INCOMPAT_LOG_NAMES)

/* Tree ids (docs/format.md §5). */
#define CFS_TREE_ROOT       1ull
#define CFS_TREE_FREE       2ull
#define CFS_TREE_REFCOUNT   3ull
#define CFS_TREE_CSUM       4ull
#define CFS_TREE_FS         256ull

/* ORPHAN items (docs/format.md §6) live under this reserved objectid. */
#define CFS_ORPHAN_OBJECTID 5ull

/* Item types (docs/format.md §6). */
enum {
	CFS_ITEM_INODE = 1, CFS_ITEM_INODE_REF = 2, CFS_ITEM_DIR_ENTRY = 3,
	CFS_ITEM_DIR_INDEX = 4, CFS_ITEM_EXTENT = 5, CFS_ITEM_XATTR = 6,
	CFS_ITEM_ORPHAN = 7, CFS_ITEM_SYMLINK = 8, CFS_ITEM_XATTR_VALUE = 9, CFS_ITEM_ROOT = 16, CFS_ITEM_ROOT_REF = 17,
	CFS_ITEM_FREE_BITMAP = 32, CFS_ITEM_REFCOUNT = 33, CFS_ITEM_DATA_REF = 34, CFS_ITEM_DATA_CSUM = 48,
};

/* Free space: one FREE_BITMAP item of 512 bytes per group of 4096 blocks. */
#define CFS_GROUP_BLOCKS    4096u
#define CFS_GROUP_BYTES     (CFS_GROUP_BLOCKS / 8)

/* ---- little-endian, unaligned ---- */
static inline uint16_t cfs_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t cfs_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t cfs_get64(const uint8_t *p)
{
	return (uint64_t)cfs_get32(p) | (uint64_t)cfs_get32(p + 4) << 32;
}
static inline void cfs_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void cfs_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void cfs_put64(uint8_t *p, uint64_t v) { cfs_put32(p, (uint32_t)v); cfs_put32(p + 4, (uint32_t)(v >> 32)); }

/* ---- keys: (objectid, type, offset), 17 bytes on disk ---- */
struct cowfs_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};
#define CFS_KEY_SIZE 17u

static inline int cfs_key_cmp(const struct cowfs_key *a, const struct cowfs_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}
static inline void cfs_key_get(const uint8_t *p, struct cowfs_key *k)
{
	k->objectid = cfs_get64(p);
	k->type = p[8];
	k->offset = cfs_get64(p + 9);
}
static inline void cfs_key_put(uint8_t *p, const struct cowfs_key *k)
{
	cfs_put64(p, k->objectid);
	p[8] = k->type;
	cfs_put64(p + 9, k->offset);
}

/* ---- block pointer: blocknr, gen, csum, level (24 bytes) ---- */
struct cowfs_bptr {
	uint64_t blocknr;
	uint64_t gen;
	uint32_t csum;
	uint8_t level;
};
#define CFS_BPTR_SIZE 24u
static inline void cfs_bptr_get(const uint8_t *p, struct cowfs_bptr *b)
{
	b->blocknr = cfs_get64(p);
	b->gen = cfs_get64(p + 8);
	b->csum = cfs_get32(p + 16);
	b->level = p[20];
}
static inline void cfs_bptr_put(uint8_t *p, const struct cowfs_bptr *b)
{
	cfs_put64(p, b->blocknr);
	cfs_put64(p + 8, b->gen);
	cfs_put32(p + 16, b->csum);
	p[20] = b->level;
	p[21] = p[22] = p[23] = 0;
}

/* ---- tree node header (64 bytes) ---- */
#define CFS_NH_CSUM     0
#define CFS_NH_MAGIC    4
#define CFS_NH_FSID     8
#define CFS_NH_BLOCKNR  24
#define CFS_NH_GEN      32
#define CFS_NH_OWNER    40
#define CFS_NH_NRITEMS  48
#define CFS_NH_LEVEL    50
#define CFS_NH_SIZE     64u
#define CFS_MAX_LEVELS  8

/* Leaf item header: key, data_off u16, data_len u16. */
#define CFS_LEAF_ITEM_SIZE  21u
/* Interior entry: key + block pointer. */
#define CFS_PTR_ENTRY_SIZE  (CFS_KEY_SIZE + CFS_BPTR_SIZE)

static inline uint32_t cfs_node_cap(uint32_t node_size) { return node_size - CFS_NH_SIZE; }
static inline uint32_t cfs_max_ptrs(uint32_t node_size) { return cfs_node_cap(node_size) / CFS_PTR_ENTRY_SIZE; }
static inline uint32_t cfs_min_ptrs(uint32_t node_size) { return cfs_max_ptrs(node_size) / 4; }
/* Largest item data: a split always leaves both halves a quarter full. */
static inline uint32_t cfs_max_item(uint32_t node_size) { return cfs_node_cap(node_size) / 4 - CFS_LEAF_ITEM_SIZE; }

/* ---- superblock (4096 bytes) ---- */
#define CFS_SB_CSUM      0
#define CFS_SB_SIZE_OFF  4
#define CFS_SB_MAGIC_OFF 8
#define CFS_SB_VMAJOR    16
#define CFS_SB_VMINOR    18
#define CFS_SB_SLOT      20
#define CFS_SB_COMPAT    24
#define CFS_SB_RO_COMPAT 32
#define CFS_SB_INCOMPAT  40
#define CFS_SB_FSID      48
#define CFS_SB_GEN       64
#define CFS_SB_BSIZE     72
#define CFS_SB_NODESIZE  76
#define CFS_SB_TOTAL     80
#define CFS_SB_LBA       88
#define CFS_SB_NSLOTS    92
#define CFS_SB_AREA0_OFF 96
#define CFS_SB_AREA1_OFF 104
#define CFS_SB_ROOT      112
#define CFS_SB_USED      136
#define CFS_SB_LOG_START 144
#define CFS_SB_LOG_ID   152
#define CFS_SB_LABEL     160
#define CFS_SB_BACKUP    224     /* 2 x 24 bytes */

/* ROOT_ITEM data (64 bytes). */
#define CFS_ROOT_ITEM_SIZE  64u
#define CFS_RI_PTR          0
#define CFS_RI_FLAGS        24
#define CFS_RI_PARENT       32
#define CFS_RI_DROP         40
#define CFS_ROOT_RDONLY     1ull     /* ROOT_ITEM flags: a read-only snapshot */
#define CFS_ROOT_DROPPING   2ull
/* EXTENT item data: disk_block u64, nblocks u32, flags u32, gen u64. */
#define CFS_EXTENT_ITEM_SIZE 24u
#define CFS_EXTENT_UNWRITTEN 1u      /* flags bit 0 (reserved: nothing writes it yet): no data, scrub skips */

/* ---- intent log block (docs/format.md §9), 4096 bytes ---- */
#define CFS_LOG_MAGIC       0x4c736663u     /* "cfsL" read as LE u32 */
#define CFS_LH_CSUM         0
#define CFS_LH_MAGIC        4
#define CFS_LH_FSID         8
#define CFS_LH_BLOCKNR      24
#define CFS_LH_LOG_ID      32
#define CFS_LH_SEQ          40
#define CFS_LH_NEXT         48
#define CFS_LH_NBYTES       56      /* u16: record bytes after the header */
#define CFS_LH_FLAGS        58      /* u16 */
#define CFS_LH_SIZE         64u
#define CFS_LOG_END         1u      /* flags: last block of one fsync */
/* Record header: type u8, zero u8, len u16 (whole record), tree u64, ino u64. */
#define CFS_LR_HDR          20u
enum { CFS_LR_INODE = 1, CFS_LR_EXTENT = 2, CFS_LR_ITEM = 3, CFS_LR_DELETE = 4, CFS_LR_UNLINKED = 5 };
/* INODE: the whole INODE item.  EXTENT: off u64, disk_block u64, nblocks
 * u32, then nblocks crc32c u32 (one per data block).  ITEM: item type u8,
 * offset u64, then the item's data (the header's ino is the objectid).
 * DELETE: item type u8, offset u64.  UNLINKED: nothing. */
#define CFS_LR_ITEM_FIXED   (CFS_LR_HDR + 9u)
#define CFS_LR_EXTENT_FIXED (CFS_LR_HDR + 20u)
#define CFS_LR_EXTENT_MAX   512u    /* blocks per EXTENT record */

#endif
