/*
 * Reporting actors (iomap/report.c): seek hole/data and fiemap.  They run
 * the iterator with IOMAP_REPORT and never do I/O.
 *
 * Data vs hole (COW-2 type switches handled explicitly):
 *   HOLE       hole
 *   DELALLOC   data (it exists only as dirty cache)
 *   MAPPED     data (also SHARED / COW destinations)
 *   UNWRITTEN  hole on disk, but data wherever the page cache holds
 *              uptodate blocks (written but not yet converted)
 *   INLINE     data
 */
#ifndef IOMAP_REPORT_H
#define IOMAP_REPORT_H

#include "iomap/iomap.h"

/* Offset of the first data byte >= pos, or -ENXIO at/after EOF or when
 * only holes follow. */
int64_t iomap_seek_data(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops);
/* Offset of the first hole byte >= pos (EOF counts as a hole), -ENXIO
 * when pos >= EOF. */
int64_t iomap_seek_hole(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops);

#define IOMAP_FIEMAP_LAST      0x0001u
#define IOMAP_FIEMAP_DELALLOC  0x0004u
#define IOMAP_FIEMAP_UNKNOWN   0x0002u   /* no physical address yet */
#define IOMAP_FIEMAP_UNWRITTEN 0x0800u
#define IOMAP_FIEMAP_MERGED    0x1000u
#define IOMAP_FIEMAP_SHARED    0x2000u
#define IOMAP_FIEMAP_INLINE    0x0200u
#define IOMAP_FIEMAP_ENCODED   0x0008u   /* stored transformed (COW-36) */

struct iomap_fiemap_extent {
	uint64_t logical, physical, length;
	uint32_t flags;
};

/* Extents (not holes) of [start, start+len), merged when contiguous on
 * disk with equal flags.  Returns the count (<= max) or -errno. */
int iomap_fiemap(struct iomap_inode *inode, uint64_t start, uint64_t len, const struct iomap_ops *ops,
		 struct iomap_fiemap_extent *out, unsigned max);

#endif
