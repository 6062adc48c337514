/*
 * Buffered I/O, writeback and fsync entry points of the iomap core.
 */
#ifndef IOMAP_BUFFERED_IO_H
#define IOMAP_BUFFERED_IO_H

#include "iomap/iomap.h"

/*
 * Where written bytes come from.  copy() copies n bytes at offset off of the
 * source into dst and returns how many it copied; fewer than n models a
 * fault in a user buffer (COW-20 short copies).  copy = NULL means a plain
 * memory buffer at buf.
 */
struct iomap_source {
	const void *buf;
	uint64_t (*copy)(void *dst, const struct iomap_source *s, uint64_t off, uint64_t n);
	void *priv;
};

/* Buffered write of len bytes at pos.  Returns bytes written (> 0 even if
 * an error stopped it later) or a negative error.  Extra flags: NOWAIT. */
int64_t iomap_file_buffered_write(struct iomap_inode *inode, uint64_t pos, const struct iomap_source *src,
				  uint64_t len, const struct iomap_ops *ops, unsigned flags);
/* Buffered read into buf; stops at i_size.  Bytes read or -errno. */
int64_t iomap_file_read(struct iomap_inode *inode, uint64_t pos, void *buf, uint64_t len,
			const struct iomap_ops *ops);
/* Start reads for the uncached folios of [pos, pos+len) (no waiting,
 * except that reads through transform stages complete before it returns). */
void iomap_readahead(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops);
/* No asynchronous readahead work item holds the inode (teardown). */
bool iomap_ra_idle(void *inode);
/* Fill the non-uptodate blocks of a locked folio; unlocks it when the reads
 * complete.  0 or -errno (submission). */
int iomap_read_folio(struct folio *f, const struct iomap_ops *ops);

/* The core folio helpers behind iomap_folio_ops (DIO-24..27). */
int iomap_get_folio(struct iomap_iter *it, uint64_t pos, uint64_t len, struct folio **out);
void iomap_put_folio_default(struct iomap_inode *inode, uint64_t pos, uint64_t copied, struct folio *f);

/* Zero [pos, pos+len) through the write path (COW-13, EXT-34/35, DIO-38). */
int iomap_zero_range(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops);
/* Zero from pos to the end of its block (truncate-down tail, EXT-35). */
int iomap_truncate_page(struct iomap_inode *inode, uint64_t pos, const struct iomap_ops *ops);
/* Rewrite shared ranges into new blocks (COW-14). */
int iomap_file_unshare(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap_ops *ops);

/* ---- writeback (iomap/writeback.c) ---- */
struct iomap_writepage_ctx;

struct iomap_writeback_ops {
	/*
	 * Map the dirty range at pos for writeback into wpc->iomap (at least
	 * the block at pos; as far as len when cheap, EXT-25).  Called with
	 * the folio locked, so it must not block on an extent range lock:
	 * return -EAGAIN and the core redirties and skips (COW-39).  A
	 * returned HOLE is a race with truncate: no I/O (EXT-26).
	 */
	int (*map_blocks)(struct iomap_writepage_ctx *wpc, struct iomap_inode *inode,
			  uint64_t pos, uint64_t len);
	/* Optional cookie check of the cached wpc->iomap (DIO-37, EXT-4). */
	bool (*iomap_valid)(struct iomap_inode *inode, const struct iomap *iomap);
	/*
	 * Completion of the data write of [pos, pos+len) mapped by map, in
	 * thread context.  On error == 0 the filesystem converts unwritten
	 * extents / remaps COW extents and persists new_disk_size (= min(end,
	 * i_size)) when larger than what it has (EXT-29).  On error it must
	 * change no metadata (EXT-30, COW-23).  Returns 0 or -errno.
	 */
	int (*end_io)(struct iomap_inode *inode, uint64_t pos, uint64_t len, const struct iomap *map,
		      int error, uint64_t new_disk_size);
	/* Optional: writeback gave up on dirty blocks [pos, pos+len) (mapping
	 * failure): release their delalloc reservation (EXT-13). */
	void (*discard)(struct iomap_inode *inode, uint64_t pos, uint64_t len);
};

struct iomap_ioend;
struct iomap_wchain;

struct iomap_writepage_ctx {
	struct iomap iomap;          /* cached mapping, reused while valid */
	bool have_map;
	bool sync;                   /* wait for busy folios (fsync) */
	uint64_t range_start, range_end;
	struct iomap_ioend *ioend;   /* being built */
	struct iomap_ioend *held;    /* built, not sent: the next may share its device write */
	struct iomap_wchain *chain;  /* or several such, sent as one write */
	int err;                     /* first error */
	unsigned nr_ioends, nr_maps, nr_map_reuse, eagain;
};

int iomap_writepages(struct iomap_inode *inode, uint64_t start, uint64_t end, bool sync,
		     struct iomap_writepage_ctx *stats_out);
/* Finished ioends waiting for the completion worker (diagnostics). */
unsigned iomap_ioends_completed(struct iomap_inode *inode);
/* Write back and wait for [start, end), report (and clear) the first
 * writeback error, then flush the device (COW-19). */
int iomap_fsync(struct iomap_inode *inode, uint64_t start, uint64_t end);

#endif
