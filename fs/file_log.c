/*
 * fsync of a file through the intent log (fs/log.c, docs/format.md §9)
 * instead of a whole-tree commit.
 *
 * What is logged: the common case only -- a regular file whose changes
 * since the last commit are data written to new blocks (writeback and
 * direct writes: fs/file.c remaps them, and every remapped range is noted
 * here) and attribute changes (size, times, mode...), while no name in the
 * filesystem changed in the running transaction.  The records are the
 * whole inode item, then the file's extents written in this transaction
 * that lie in the ranges noted since the file's last log (with their
 * data checksums).  Replaying them on the last commit gives that commit plus
 * this file as fsync saw it.
 *
 * Everything else commits (cowfs_fsync falls back on -EAGAIN): a name
 * created, removed or renamed anywhere in the running transaction (which
 * includes a file created since the last commit: its name is not durable
 * yet), extents removed from the file (truncate), directories, a log that
 * is full or closed (no space, a failed log write), a filesystem with
 * fewer than FILE_LOG_ROOM blocks beyond what buffered writes reserved, a
 * mount with no_fsync_log, and an fsync whose records would take more
 * than FILE_LOG_MAX_BYTES.
 *
 * The steps (filesystem lock held, the file's data written back and
 * waited for by the caller):
 *   1. records: the inode, then the transaction's extents in the noted
 *      ranges, with the data checksums;
 *   2. the log blocks, then one FLUSH for them and the data the extents
 *      name (cowfs_log_append; replay checks the data against the
 *      checksums, so the log block need not wait for the data's FLUSH);
 *   3. the noted ranges are forgotten.
 */
#include "fs/file.h"
#include "fs/inode.h"

#define BS CFS_BLOCK_SIZE
#define FILE_LOG_MAX_BYTES (COWFS_LOG_MAX_APPEND * (CFS_BLOCK_SIZE - CFS_LH_SIZE))
#define FILE_LOG_MAX_EXTENTS 128u
#define FILE_LOG_ROOM 128u          /* free blocks below which fsync commits instead */

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

int cowfs_file_log(struct cowfs_mount *m, struct cowfs_vnode *vn)
{
	struct cowfs *fs = m->fs;
	if (!m->fsync_log || !vn->fd || !CFS_S_ISREG(vn->rec.mode) || !vn->rec.nlink || m->ns_gen == fs->gen ||
	    vn->nolog_gen == fs->gen || !fs->log_next || fs->readonly)
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
	int err = r && x ? 0 : -PLAT_ENOMEM;
	if (err)
		goto out;
	r->len = 0;
	/* 1. Records: the inode, then the new extents in the noted ranges. */
	*x = (struct new_extents){ .lo = vn->log_lo, .hi = vn->log_hi, .gen = fs->gen };
	if (vn->log_range_gen == fs->gen && vn->log_lo < vn->log_hi) {
		struct cowfs_key from = cowfs_extent_scan_from(m->tree, vn->rec.ino, x->lo);
		struct cowfs_key to = { vn->rec.ino, CFS_ITEM_EXTENT, x->hi - 1 };
		err = cowfs_bt_iterate(m->tree, &from, &to, new_extent_cb, x);
		if (err > 0)
			err = 0;
		if (!err && x->too_many)
			err = -PLAT_EAGAIN;
	}
	if (!err) {
		uint8_t *p = rec_begin(r, CFS_LR_INODE, CFS_LR_HDR + CFS_INODE_ITEM_SIZE, m->tree->id, vn->rec.ino);
		if (p)
			cowfs_inode_encode(&vn->rec, p);
		else
			err = -PLAT_EAGAIN;
	}
	for (unsigned i = 0; i < x->n && !err; i++)
		err = rec_extent(m, r, vn->rec.ino, &x->e[i]);
	/* 2. The records and the data they name, durable when this returns. */
	if (!err && cowfs_log_append(fs, r->b, r->len))
		err = -PLAT_EAGAIN;           /* no room, or the write or FLUSH failed: a commit does it */
	/* 3. Logged. */
	if (!err) {
		vn->log_lo = vn->log_hi = 0;
		m->fsync_logged++;
	}
out:
	plat_free(r);
	plat_free(x);
	return err;
}
