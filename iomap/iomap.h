/*
 * iomap core: a filesystem answers "what is at this file range" (a mapping)
 * and the core does the page-cache and block I/O work.
 *
 * Iteration (iomap/iter.c):
 *
 *	struct iomap_iter it = { .inode = ino, .pos = pos, .len = len, .flags = IOMAP_WRITE };
 *	while ((ret = iomap_iter(&it, ops)) > 0)
 *		it.processed = actor(&it);      // bytes done, or -errno
 *
 * Each round the core calls ops->end for the previous mapping with the bytes
 * the actor really processed, advances pos, then (if bytes remain and no
 * error) zeroes iomap and srcmap and calls ops->begin for the next one.  The
 * actor works on iomap_length(&it) bytes at it.pos: the request, the
 * destination mapping and the source mapping clamped together (COW-4).
 *
 * Mapping types: HOLE (no data; reads as zeros), DELALLOC (space reserved,
 * data only in the page cache), MAPPED (data at addr on bdev), UNWRITTEN
 * (allocated, reads as zeros until written), INLINE (data in inline_data).
 * 0 (IOMAP_NONE) only ever appears in a srcmap the filesystem did not fill,
 * and means "no separate source": actors then read old data from the
 * destination itself (COW-1, COW-3).
 *
 * Copy-on-write (COW-2): the filesystem fills srcmap with where the old
 * bytes live and sets IOMAP_F_SHARED on the destination when the old extent
 * is shared.  A present srcmap means the destination holds no valid old
 * bytes: the core reads unchanged bytes of partially written blocks from
 * srcmap (read when MAPPED, zero when HOLE/UNWRITTEN or past EOF) and never
 * writes into the source.
 */
#ifndef IOMAP_IOMAP_H
#define IOMAP_IOMAP_H

#include "platform/platform.h"
#include "pcache/pagecache.h"
#include "iomap/lock.h"
#include "iomap/workq.h"

/* Internal status codes (never leave the core + filesystem pair). */
#define IOMAP_ENOTBLK    15   /* direct I/O: fall back to buffered */
#define IOMAP_EIOCBQUEUED 529 /* async direct I/O queued; completion follows */

enum iomap_type {
	IOMAP_NONE = 0,
	IOMAP_HOLE = 1,
	IOMAP_DELALLOC = 2,
	IOMAP_MAPPED = 3,
	IOMAP_UNWRITTEN = 4,
	IOMAP_INLINE = 5,
	IOMAP_ENCODED = 6,   /* stored transformed (compressed): io_size stored bytes
			      * at addr hold length logical bytes; whole-extent I/O
			      * only (COW-36, iomap/xform.h) */
};

/* Mapping flags (struct iomap.flags). */
#define IOMAP_F_NEW     0x0001u  /* blocks freshly allocated/reserved by begin */
#define IOMAP_F_DIRTY   0x0002u  /* metadata must be committed for O_DSYNC */
#define IOMAP_F_SHARED  0x0004u  /* destination's old extent is shared (COW) */
#define IOMAP_F_MERGED  0x0008u  /* mapping merges several extents (fiemap) */
#define IOMAP_F_STALE   0x0100u  /* core: validity lost, re-map from pos */
/* Data transform stages the mapping's stored bytes go through (COW-35,
 * iomap/xform.h).  ENCODED on a write map (writeback) asks the core to
 * encode what it writes; a read map of encoded data has type ENCODED. */
#define IOMAP_F_CSUM    0x0010u  /* stored bytes carry checksums */
#define IOMAP_F_CRYPT   0x0020u  /* stored bytes are encrypted */
#define IOMAP_F_ENCODED 0x0040u  /* stored bytes are compressed */
#define IOMAP_F_XFORM   (IOMAP_F_CSUM | IOMAP_F_CRYPT | IOMAP_F_ENCODED)

#define IOMAP_NULL_ADDR UINT64_MAX

struct iomap_inode;
struct iomap_iter;
struct iomap_folio_ops;
struct iomap_xform_ops;

struct iomap {
	uint64_t offset;            /* file offset of the mapping */
	uint64_t length;            /* bytes */
	uint64_t addr;              /* device byte address or IOMAP_NULL_ADDR */
	struct plat_bdev *bdev;     /* every mapping names its device (COW-9) */
	uint16_t type;              /* enum iomap_type */
	uint16_t flags;             /* IOMAP_F_* */
	uint64_t validity_cookie;   /* sampled with the lookup (DIO-32) */
	void *inline_data;          /* IOMAP_INLINE */
	void *private;              /* filesystem state, begin -> end (COW-6) */
	const struct iomap_folio_ops *folio_ops;
	uint64_t io_size;           /* ENCODED: stored bytes at addr (COW-36) */
};

/* Operation flags (iter.flags, passed to begin/end). */
#define IOMAP_READ       0x0000u
#define IOMAP_WRITE      0x0001u
#define IOMAP_ZERO       0x0002u
#define IOMAP_REPORT     0x0004u  /* seek / fiemap: no I/O */
#define IOMAP_FAULT      0x0008u
#define IOMAP_DIRECT     0x0010u
#define IOMAP_NOWAIT     0x0020u
#define IOMAP_OVERWRITE_ONLY 0x0040u
#define IOMAP_UNSHARE    0x0080u

struct iomap_ops {
	/* Map [pos, pos+len): fill iomap (offset <= pos < offset+length) and,
	 * for COW writes, srcmap.  May return a shorter mapping. */
	int (*begin)(struct iomap_inode *inode, uint64_t pos, uint64_t len, unsigned flags,
		     struct iomap *iomap, struct iomap *srcmap);
	/* Optional: written = bytes the actor processed (0..len); release what
	 * was reserved for the rest and unlock what begin locked (COW-5). */
	int (*end)(struct iomap_inode *inode, uint64_t pos, uint64_t len, int64_t written,
		   unsigned flags, struct iomap *iomap);
};

/*
 * Per-mapping folio hooks for buffered writes (DIO-23..27).
 * get_folio returns a locked, stable folio (or -errno; the core then never
 * calls put_folio).  An implementation may do pre-work and then call
 * iomap_get_folio(); it may also validate the mapping itself and return
 * -ESTALE after releasing the folio.  put_folio is called exactly once per
 * successful get_folio, also with copied = 0, and must unlock and release
 * the folio (iomap_put_folio_default does just that).  iomap_valid tells
 * whether a mapping is still current (cookie compare).
 */
struct iomap_folio_ops {
	int (*get_folio)(struct iomap_iter *iter, uint64_t pos, uint64_t len, struct folio **out);
	void (*put_folio)(struct iomap_inode *inode, uint64_t pos, uint64_t copied, struct folio *f);
	bool (*iomap_valid)(struct iomap_inode *inode, const struct iomap *iomap);
};

struct iomap_iter {
	struct iomap_inode *inode;
	uint64_t pos;
	uint64_t len;               /* bytes left */
	int64_t processed;          /* set by the actor each round */
	unsigned flags;
	struct iomap iomap;
	struct iomap srcmap;
	void *private;
	unsigned stale_restarts;    /* for forward-progress asserts (DIO-36) */
	uint64_t done;              /* total bytes processed so far */
};

int iomap_iter(struct iomap_iter *iter, const struct iomap_ops *ops);
/* DIO-36: stale restarts allowed per iteration before -EBUSY. */
extern unsigned iomap_max_stale_restarts;

static inline uint64_t iomap_min(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* COW-4: the request end, the destination end and the source end. */
static inline uint64_t iomap_length(const struct iomap_iter *it)
{
	uint64_t n = it->len;
	uint64_t end = it->iomap.offset + it->iomap.length;
	n = iomap_min(n, end > it->pos ? end - it->pos : 0);
	if (it->srcmap.type != IOMAP_NONE) {
		uint64_t send = it->srcmap.offset + it->srcmap.length;
		n = iomap_min(n, send > it->pos ? send - it->pos : 0);
	}
	return n;
}

/* COW-3: actors read old data from here. */
static inline const struct iomap *iomap_iter_srcmap(const struct iomap_iter *it)
{
	return it->srcmap.type != IOMAP_NONE ? &it->srcmap : &it->iomap;
}

/* Device address of file offset pos inside map (MAPPED/UNWRITTEN). */
static inline uint64_t iomap_sector_addr(const struct iomap *m, uint64_t pos)
{
	return m->addr + (pos - m->offset);
}

/*
 * The mapping validator (COW-7).  Returns NULL when the mapping returned
 * for the iterator's current position obeys every rule, else the name of
 * the first broken rule.  Always compiled (tests call it directly); the
 * iterator runs it on every begin only when built with IOMAP_DEBUG, so it
 * costs nothing otherwise.
 */
const char *iomap_check_mapping(const struct iomap_iter *it);
/* Debug checks (validator on every begin, lock-order checker): on when
 * built with IOMAP_DEBUG, or when set before any inode is created. */
extern bool iomap_debug;
/* Tests only: runs between clearing a folio's writeback flag and dropping
 * the ioend's reference to it, to widen that window (NULL: nothing). */
extern void (*iomap_test_ioend_finish_hook)(void);
extern unsigned long iomap_bad_mappings;

/* Test-only hooks (DIO-40, EXT "forced stale map"): NULL in production. */
struct iomap_hooks {
	void (*after_begin)(struct iomap_iter *it);          /* before folio lock */
	void (*after_valid)(struct iomap_iter *it, uint64_t pos);
	void (*wb_map)(struct iomap_inode *inode, uint64_t pos);  /* before each cached-map check */
	void (*after_read_begin)(struct iomap_iter *it);      /* buffered read, folios locked */
	/* DIO-T2: an O_DSYNC direct write finished its I/O and dropped its
	 * in-flight count, before its flush (caller's or worker thread). */
	void (*dio_before_flush)(struct iomap_inode *inode);
	void *arg;
};

struct iomap_writeback_ops;
struct iomap_ioend;

/*
 * The core's view of an inode; filesystems embed it.
 * size: in-memory i_size, grows only by bytes copied (COW-18); atomic.
 * disk_size: on-disk size, raised only at write completion (EXT-24/29).
 */
struct iomap_inode {
	uint64_t size;
	uint64_t disk_size;
	unsigned blkbits;
	struct pcache_mapping mapping;
	const struct iomap_writeback_ops *wb_ops;
	const struct iomap_ops *ops;        /* write ops used by background writeback helpers */
	struct iomap_workq *wq;             /* completion worker; NULL = complete inline */
	struct plat_bdev *flush_bdev;       /* flushed by fsync; NULL = none */
	struct iomap_rwsem io_lock;         /* DIO-1 */
	struct iomap_rwsem invalidate_lock; /* EXT-8 */
	int dio_count;                      /* direct I/O in flight, atomic */
	bool dio_needs_lock;                /* DIO-11: assert io_lock held in dio */
	int dio_wakers;                     /* completions inside the drain wake-up */
	struct plat_waitq *dio_wq;
	const struct iomap_hooks *hooks;
	/* Writeback completion (writeback.c): finished ioends wait here
	 * for one drain work item, which merges adjacent ones (EXT-28). */
	struct plat_spin *ioend_lock;
	struct iomap_ioend *ioend_done;
	int ioend_queued;
	struct iomap_work ioend_work;
	uint64_t ioend_completions;         /* filesystem end_io calls, atomic */
	void *fs_private;
	uint64_t ino;                       /* set by the filesystem; named in error messages */
	const struct iomap_xform_ops *xform;   /* data transform stages (COW-35), NULL = none */
	/* Readahead state (readpage.c), a heuristic: racing readers may
	 * overwrite each other's values, which costs only a window size. */
	uint64_t ra_next;                   /* where the last buffered read ended */
	uint64_t ra_size;                   /* next sequential window, 0 = IOMAP_RA_MIN */
	/* Asynchronous readahead (readpage.c): a sequential reader that
	 * reaches ra_mark has [ra_end, +window) read by ra_wq while it copies
	 * what is cached.  ra_busy is 1 from queueing until the work item's
	 * last touch of the inode; teardown waits for 0. */
	struct iomap_workq *ra_wq;          /* set by the filesystem; NULL = readahead only on a miss */
	uint64_t ra_mark, ra_end;
	uint64_t ra_work_pos, ra_work_len;
	const struct iomap_ops *ra_ops;
	int ra_busy;
	struct iomap_work ra_work;
	uint64_t ra_async_windows;          /* windows read by ra_wq (statistics, tests) */
};

int iomap_inode_init(struct iomap_inode *inode, struct pcache *pc, unsigned blkbits,
		     unsigned max_folio_order, const struct iomap_writeback_ops *wb_ops);
/* Writes back, then drops the cache.  Returns the first error. */
int iomap_inode_destroy(struct iomap_inode *inode);

static inline uint64_t iomap_isize(struct iomap_inode *inode) { return plat_load(&inode->size); }
/* Monotonic raise of *p to v (i_size / on-disk size, COW-28). */
static inline bool iomap_raise(uint64_t *p, uint64_t v)
{
	uint64_t old = plat_load(p);
	while (old < v)
		if (plat_cas(p, &old, v))
			return true;
	return false;
}

#endif
