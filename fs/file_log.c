/*
 * fsync through the intent log (fs/log.c, docs/format.md §9) instead of a
 * whole-tree commit: of a file's data, and of every name change.
 *
 * Names.  Each namespace operation (create, mkdir, mknod, symlink, link,
 * unlink, rmdir, rename) runs between cowfs_ns_begin and cowfs_ns_end,
 * which watch the subvolume's tree: the key of every item it changes, and
 * the INODE key of every vnode whose record it dirties, are noted
 * (m->ns_keys, each key once).  An fsync -- of any file or directory --
 * logs every key noted since the last log as the item is NOW (ITEM, or
 * DELETE when it is gone; an inode as its in-memory record, or UNLINKED
 * when it has been freed), then forgets them.  Because records are
 * results and each fsync carries every name change since the one before,
 * replaying the log up to an fsync gives the namespace exactly as it was
 * at that fsync: one global, ordered log, with prefix semantics.  No
 * per-directory bookkeeping, and none of the "which directory must this
 * fsync also log" cases of a per-inode log tree.
 *
 * A size never points past logged data.  A regular file whose INODE is
 * logged this way also gets its EXTENT records (below): its record's size
 * is the on-disk size (raised when written-back data is remapped), and
 * every remapped range since its last log is noted, so the records carry
 * all the data that size covers.  Data not yet written back is not
 * logged -- and not counted in that size.
 *
 * Data.  A regular file's records are its INODE and its extents written in
 * the running transaction that lie in the ranges noted since its last log
 * (writeback and direct writes: fs/file.c remaps them, and every remapped
 * range is noted here), with their data checksums.
 *
 * Everything else commits (cowfs_fsync falls back on -EAGAIN): extents
 * removed or moved (truncate, punch, collapse, reflink) or extended
 * attributes changed in this transaction, of the fsync'd file or of a file
 * the name records carry (nolog_gen); a name change the log did not see
 * (made outside a watched operation, more than COWFS_KEYSET_MAX keys, or
 * split by a commit: ns_gen); a log that is full or closed (no space, a
 * failed log write); a filesystem with fewer than FILE_LOG_ROOM blocks
 * beyond what buffered writes reserved; a mount with no_fsync_log; and an
 * fsync whose records would take more than FILE_LOG_MAX_BYTES.
 *
 * The steps (filesystem lock held, the fsync'd file's data written back
 * and waited for by the caller):
 *   1. name records, in the order the keys were first changed, then
 *      UNLINKED for the inodes freed since (after the ORPHAN deletes their
 *      freeing noted, so replay leaves each with its ORPHAN item);
 *   2. the fsync'd file's INODE (unless 1. carried it);
 *   3. the extents of every regular file in 1. and 2., in the noted ranges;
 *   4. the log blocks, then one FLUSH for them and the data the extents
 *      name (cowfs_log_append; replay checks the data against the
 *      checksums, so the log block need not wait for the data's FLUSH);
 *   5. the noted keys and ranges are forgotten.
 */
#include "fs/file.h"
#include "fs/inode.h"

#define BS CFS_BLOCK_SIZE
#define FILE_LOG_MAX_BYTES (COWFS_LOG_MAX_APPEND * (CFS_BLOCK_SIZE - CFS_LH_SIZE))
#define FILE_LOG_MAX_EXTENTS 128u
#define FILE_LOG_ROOM 128u          /* free blocks below which fsync commits instead */
#define FILE_LOG_MAX_FILES 128u     /* regular files in one fsync's records */

void cowfs_ns_begin(struct cowfs_mount *m)
{
	if (m->ns_keys_gen != m->fs->gen) {      /* a commit since: it holds them */
		m->ns_keys.n = 0;
		m->ns_keys.overflow = false;
		m->ns_keys_gen = m->fs->gen;
	}
	m->tree->watch = &m->ns_keys;
}

void cowfs_ns_end(struct cowfs_mount *m)
{
	if (!m->tree->watch)
		return;
	m->tree->watch = NULL;
	/* Keys lost, or a commit in the middle of the operation: what the
	 * set holds is not every change since the last commit. */
	if (m->ns_keys.overflow || m->ns_keys_gen != m->fs->gen)
		m->ns_gen = m->fs->gen;
}

void cowfs_file_log_note(struct cowfs_vnode *vn, uint64_t start, uint64_t end)
{
	uint64_t gen = vn->m->fs->gen;
	if (vn->log_range_gen != gen || vn->log_lo >= vn->log_hi) {
		vn->log_lo = start;
		vn->log_hi = end;
		vn->log_range_gen = gen;
		return;
	}
	if (start < vn->log_lo)
		vn->log_lo = start;
	if (end > vn->log_hi)
		vn->log_hi = end;
}

struct new_extents {
	uint64_t lo, hi, gen;
	struct cowfs_extent e[FILE_LOG_MAX_EXTENTS];
	unsigned n;
	bool too_many;
};

static int new_extent_cb(void *arg, const struct cowfs_key *k, const void *data, uint32_t len)
{
	struct new_extents *x = arg;
	const uint8_t *d = data;
	if (k->type != CFS_ITEM_EXTENT || len != CFS_EXTENT_SIZE)
		return 0;
	struct cowfs_extent e = { k->offset, cfs_get64(d), cfs_get32(d + 8), cfs_get64(d + 16) };
	if (e.off + (uint64_t)e.nblocks * BS <= x->lo || e.gen != x->gen)
		return 0;                  /* before the range, or committed */
	if (x->n == FILE_LOG_MAX_EXTENTS) {
		x->too_many = true;
		return 1;
	}
	x->e[x->n++] = e;
	return 0;
}

struct recbuf {
	uint8_t b[FILE_LOG_MAX_BYTES];
	uint32_t len;
};

static uint8_t *rec_begin(struct recbuf *r, uint8_t type, uint32_t len, uint64_t tree, uint64_t ino)
{
	if (r->len + len > sizeof(r->b))
		return NULL;
	uint8_t *p = r->b + r->len;
	p[0] = type;
	p[1] = 0;
	cfs_put16(p + 2, (uint16_t)len);
	cfs_put64(p + 4, tree);
	cfs_put64(p + 12, ino);
	r->len += len;
	return p + CFS_LR_HDR;
}

/* EXTENT records for e (CFS_LR_EXTENT_MAX blocks each) with the data
 * checksums the writeback recorded. */
static int rec_extent(struct cowfs_mount *m, struct recbuf *r, uint64_t ino, const struct cowfs_extent *e)
{
	for (uint32_t done = 0; done < e->nblocks;) {
		uint32_t n = e->nblocks - done < CFS_LR_EXTENT_MAX ? e->nblocks - done : CFS_LR_EXTENT_MAX;
		uint8_t *p = rec_begin(r, CFS_LR_EXTENT, CFS_LR_EXTENT_FIXED + 4 * n, m->tree->id, ino);
		if (!p || !m->csum_tree)
			return -PLAT_EAGAIN;
		cfs_put64(p, e->off + (uint64_t)done * BS);
		cfs_put64(p + 8, e->disk_block + done);
		cfs_put32(p + 16, n);
		/* Host-order sums, stored in place as the record's u32s. */
		for (uint32_t i = 0; i < n;) {
			uint32_t sums[64];
			uint64_t want = n - i < 64 ? n - i : 64, found;
			int err = cowfs_csum_get(m->csum_tree, e->disk_block + done + i, want, sums, &found);
			if (err || found < want)
				return err && err != -PLAT_EIO ? err : -PLAT_EAGAIN;
			for (uint32_t j = 0; j < want; j++)
				cfs_put32(p + 20 + 4 * (i + j), sums[j]);
			i += (uint32_t)want;
		}
		done += n;
	}
	return 0;
}

/* The regular files whose extents go in (referenced), and whether the
 * fsync'd file's record is already among the name records. */
struct log_files {
	struct cowfs_vnode *vn[FILE_LOG_MAX_FILES];
	unsigned n;
	bool target_inode;
};

static int files_add(struct log_files *f, struct cowfs_vnode *vn)
{
	if (f->n == FILE_LOG_MAX_FILES)
		return -PLAT_EAGAIN;
	f->vn[f->n++] = vn;
	return 0;
}

/* The items a namespace operation may change: nothing else is logged. */
static bool ns_item_type(uint8_t type)
{
	return type == CFS_ITEM_INODE || type == CFS_ITEM_INODE_REF || type == CFS_ITEM_DIR_ENTRY ||
	       type == CFS_ITEM_DIR_INDEX || type == CFS_ITEM_ORPHAN || type == CFS_ITEM_SYMLINK;
}

static int rec_item(struct cowfs_mount *m, struct recbuf *r, uint8_t rtype, const struct cowfs_key *k,
		    const void *data, uint32_t len)
{
	uint8_t *p = rec_begin(r, rtype, CFS_LR_ITEM_FIXED + len, m->tree->id, k->objectid);
	if (!p)
		return -PLAT_EAGAIN;
	p[0] = k->type;
	cfs_put64(p + 1, k->offset);
	if (len)
		plat_memcpy(p + 9, data, len);
	return 0;
}

/* An INODE key: the record as it is in memory, or UNLINKED (later). */
static int rec_ns_inode(struct cowfs_mount *m, struct recbuf *r, struct cowfs_vnode *target, const struct cowfs_key *k,
			struct log_files *f, bool *gone)
{
	struct cowfs_vnode *vn;
	uint8_t b[CFS_INODE_ITEM_SIZE];
	int err = cowfs_vget(m, k->objectid, &vn);
	if ((*gone = err == -PLAT_ENOENT))
		return 0;
	if (err)
		return err;
	if (vn->nolog_gen == m->fs->gen)
		err = -PLAT_EAGAIN;          /* extents removed or moved, or xattrs: not in the log */
	if (!err) {
		cowfs_inode_encode(&vn->rec, b);
		err = rec_item(m, r, CFS_LR_ITEM, k, b, sizeof(b));
	}
	if (!err && vn == target)
		f->target_inode = true;
	if (!err && CFS_S_ISREG(vn->rec.mode))
		return files_add(f, vn) ? (cowfs_vput(vn), -PLAT_EAGAIN) : 0;   /* keeps the reference */
	cowfs_vput(vn);
	return err;
}

/* Step 1: every key noted since the last log, as it is now. */
static int rec_names(struct cowfs_mount *m, struct recbuf *r, struct cowfs_vnode *target, struct log_files *f)
{
	struct cowfs_keyset *s = &m->ns_keys;
	if (m->ns_keys_gen != m->fs->gen || !s->n)
		return 0;
	uint32_t max = cowfs_max_item_size(m->fs), len;
	uint8_t *item = plat_alloc(max);
	bool *gone = plat_zalloc(s->n * sizeof(*gone));
	int err = item && gone ? 0 : -PLAT_ENOMEM;
	for (uint32_t i = 0; i < s->n && !err; i++) {
		const struct cowfs_key *k = &s->k[i];
		if (!ns_item_type(k->type))
			err = -PLAT_EAGAIN;
		else if (k->type == CFS_ITEM_INODE)
			err = rec_ns_inode(m, r, target, k, f, &gone[i]);
		else if (!(err = cowfs_bt_lookup(m->tree, k, item, max, &len)))
			err = rec_item(m, r, CFS_LR_ITEM, k, item, len);
		else if (err == -PLAT_ENOENT)
			err = rec_item(m, r, CFS_LR_DELETE, k, NULL, 0);
	}
	/* After the ORPHAN deletes of their freeing: replay leaves the
	 * freed inodes orphaned, and the mount's orphan pass frees them. */
	for (uint32_t i = 0; i < s->n && !err; i++)
		if (gone[i] && !rec_begin(r, CFS_LR_UNLINKED, CFS_LR_HDR, m->tree->id, s->k[i].objectid))
			err = -PLAT_EAGAIN;
	plat_free(item);
	plat_free(gone);
	return err;
}

/* Step 3 for one file: its extents of this transaction in the range
 * noted since its last log. */
static int rec_file_extents(struct cowfs_mount *m, struct recbuf *r, struct new_extents *x, struct cowfs_vnode *vn)
{
	uint64_t gen = m->fs->gen;
	if (vn->log_range_gen != gen || vn->log_lo >= vn->log_hi)
		return 0;
	*x = (struct new_extents){ .lo = vn->log_lo, .hi = vn->log_hi, .gen = gen };
	struct cowfs_key from = cowfs_extent_scan_from(m->tree, vn->rec.ino, x->lo);
	struct cowfs_key to = { vn->rec.ino, CFS_ITEM_EXTENT, x->hi - 1 };
	int err = cowfs_bt_iterate(m->tree, &from, &to, new_extent_cb, x);
	if (err > 0)
		err = 0;
	if (!err && x->too_many)
		err = -PLAT_EAGAIN;
	for (unsigned i = 0; i < x->n && !err; i++)
		err = rec_extent(m, r, vn->rec.ino, &x->e[i]);
	return err;
}

int cowfs_file_log(struct cowfs_mount *m, struct cowfs_vnode *vn)
{
	struct cowfs *fs = m->fs;
	if (!m->fsync_log || !vn->rec.nlink || m->ns_gen == fs->gen || vn->nolog_gen == fs->gen || !fs->log_next ||
	    fs->readonly)
		return -PLAT_EAGAIN;
	/* Log blocks come out of the free space buffered writes reserved
	 * against: leave their room (and a commit's) alone. */
	struct cowfs_info in;
	cowfs_info(fs, &in);
	uint64_t busy = in.used_blocks + in.pinned_blocks + m->reserved_blocks + m->inflight_blocks;
	if (busy + FILE_LOG_ROOM > in.total_blocks)
		return -PLAT_EAGAIN;
	struct recbuf *r = plat_alloc(sizeof(*r));
	struct new_extents *x = plat_alloc(sizeof(*x));
	struct log_files *f = plat_zalloc(sizeof(*f));
	int err = r && x && f ? 0 : -PLAT_ENOMEM;
	if (err)
		goto out;
	r->len = 0;
	/* 1. Every name change since the last log. */
	err = rec_names(m, r, vn, f);
	/* 2. The fsync'd file's record, unless 1. carried it. */
	if (!err && !f->target_inode) {
		uint8_t *p = rec_begin(r, CFS_LR_INODE, CFS_LR_HDR + CFS_INODE_ITEM_SIZE, m->tree->id, vn->rec.ino);
		if (p)
			cowfs_inode_encode(&vn->rec, p);
		else
			err = -PLAT_EAGAIN;
		struct cowfs_vnode *ref;
		if (!err && CFS_S_ISREG(vn->rec.mode) && !(err = cowfs_vget(m, vn->rec.ino, &ref)) &&
		    (err = files_add(f, ref)))
			cowfs_vput(ref);
	}
	/* 3. The data of every regular file in the records. */
	for (unsigned i = 0; i < f->n && !err; i++)
		err = rec_file_extents(m, r, x, f->vn[i]);
	/* 4. The records and the data they name, durable when this returns. */
	if (!err && cowfs_log_append(fs, r->b, r->len))
		err = -PLAT_EAGAIN;           /* no room, or the write or FLUSH failed: a commit does it */
	/* 5. Logged. */
	if (!err) {
		for (unsigned i = 0; i < f->n; i++)
			f->vn[i]->log_lo = f->vn[i]->log_hi = 0;
		m->ns_keys.n = 0;
		m->fsync_logged++;
	}
out:
	for (unsigned i = 0; f && i < f->n; i++)
		cowfs_vput(f->vn[i]);
	plat_free(r);
	plat_free(x);
	plat_free(f);
	return err;
}
