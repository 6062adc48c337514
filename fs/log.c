/*
 * The intent log: fsync without a whole-tree commit (docs/format.md §9).
 *
 * The protocol.  Every commit N names, in its superblock, the block the
 * log of the transaction after it starts at (log_start, taken in memory
 * before the superblock is written) and log_id, 64 bits it draws at
 * random.  An fsync then writes one or more log blocks: each carries
 * log_id, its sequence number
 * in the log, its own block number, and the number of the block the
 * following log block will go to (taken now, in memory).  So appending
 * never rewrites the superblock or an earlier log block, and mount finds
 * the log by following next pointers from log_start while blocks verify
 * (checksum, magic, fsid, blocknr, log_id, seq = 0, 1, 2 ...).  A stale
 * block at an address cannot pass: log_id belongs to one commit (random,
 * so not even a commit of the same generation written again after a
 * fall-back shares it), and only one mount appends to a log: a mount
 * that finds its commit's log empty does not append to it (a mount before
 * may have left blocks of it past a torn one); its first fsync commits.
 *
 * Records say what an fsync made durable, as results: an EXTENT record
 * "bytes [off, off + n blocks) of inode ino now live at disk_block..., with
 * these crc32c" and an INODE record with the whole inode item.  The data
 * is already on its own fresh blocks (copy-on-write writeback), so a
 * record only points at it -- and carries its checksums, which replay
 * compares with what the blocks hold (see Order).  The blocks of one fsync end with a block
 * flagged END; replay applies whole fsyncs only, in log order, and stops
 * at the first block that does not verify: a torn or lost log block ends
 * the log, and everything before it is replayed (prefix semantics).
 *
 * Order.  The caller (fs/file_log.c) writes the file's data back and
 * waits, builds the records; the log blocks are written (no FUA) and
 * waited for, then one FLUSH makes the data and the log durable
 * together: when fsync returns, the records and everything they name are
 * on stable media.  Before the FLUSH completes a log block may be on
 * media without the data it names (the device writes its cache back in
 * any order), so replay does not trust a record's blocks: it reads them
 * and compares each with the crc32c the record carries, and a mismatch
 * ends the log before that fsync -- which had not returned.  The next
 * log block is written only after this FLUSH (fsyncs hold the filesystem
 * lock), so a log never goes on past an fsync that was not durable.
 * This saves the FLUSH before the log write and the log block's FUA: one
 * device round trip and one cache flush per fsync.
 *
 * Space.  Log blocks and the data blocks records name are not in the
 * space map until a commit makes the trees point at them:
 *   - a log block is taken in memory (alloc.c inuse) when chosen, and
 *     pinned when the commit after it is durable (released one commit
 *     later, like any block freed by that transaction, so a mount that
 *     falls back one commit still finds its log intact);
 *   - the data blocks were claimed by their writeback in the running
 *     transaction; a block this transaction frees after it wrote a log
 *     block is pinned even when the transaction allocated it (alloc.c),
 *     so a logged block is never reused before the next commit.
 * The checker (cowfs_log_check) holds a pending log to exactly that: its
 * blocks and the blocks its records name are free in the space map.
 *
 * Replay at mount (read-write), cowfs_log_mount:
 *   1. walk the chain, keeping the whole fsyncs (up to the last END);
 *   2. cut before the first fsync naming a block the space map holds
 *      (a damaged log: what is before it is kept), and before the first
 *      one naming a data block that does not match its checksum (the
 *      power went before that fsync's FLUSH);
 *   3. take every kept log block and data block in memory, so nothing
 *      the replay allocates can land on them;
 *   4. apply each record: EXTENT releases what the range mapped (as the
 *      running system did), claims the blocks, inserts the extent and the
 *      checksums; INODE rewrites the inode item;
 *   5. commit: a new log starts, the replayed blocks are pinned.
 * A power cut during 4-5 leaves commit N and its log untouched (nothing
 * the replay wrote is referenced before its superblock, and the log's
 * blocks were taken), so the next mount replays the same log again.
 * A read-only mount leaves the log for the next read-write one.
 */
#include "fs/cowfs_int.h"
#include "fs/inode.h"

#define BS CFS_BLOCK_SIZE
#define LOG_ROOM (BS - CFS_LH_SIZE)

/* ---- blocks and records ---- */

static void lb_seal(struct cowfs *fs, uint8_t *b, uint64_t blk, uint64_t seq, uint64_t next, uint32_t nbytes,
		    unsigned flags)
{
	plat_memset(b, 0, CFS_LH_SIZE);
	plat_memset(b + CFS_LH_SIZE + nbytes, 0, LOG_ROOM - nbytes);
	cfs_put32(b + CFS_LH_MAGIC, CFS_LOG_MAGIC);
	plat_memcpy(b + CFS_LH_FSID, fs->fsid, CFS_FSID_SIZE);
	cfs_put64(b + CFS_LH_BLOCKNR, blk);
	cfs_put64(b + CFS_LH_LOG_ID, fs->log_id);
	cfs_put64(b + CFS_LH_SEQ, seq);
	cfs_put64(b + CFS_LH_NEXT, next);
	cfs_put16(b + CFS_LH_NBYTES, (uint16_t)nbytes);
	cfs_put16(b + CFS_LH_FLAGS, (uint16_t)flags);
	cfs_put32(b + CFS_LH_CSUM, crc32c(0, b + 4, BS - 4));
}

static bool data_block_ok(struct cowfs *fs, uint64_t blk, uint64_t n)
{
	return blk >= CFS_RESERVED_BLOCKS && n <= fs->total_blocks && blk <= fs->total_blocks - CFS_SB_SLOTS - n;
}

/* ITEM and DELETE: a namespace item type, an INODE item's exact size. */
static const char *item_rec_check(const uint8_t *r, uint32_t len)
{
	if (len < CFS_LR_ITEM_FIXED)
		return "ITEM or DELETE record too short";
	uint8_t type = r[CFS_LR_HDR];
	if (type != CFS_ITEM_INODE && type != CFS_ITEM_INODE_REF && type != CFS_ITEM_DIR_ENTRY &&
	    type != CFS_ITEM_DIR_INDEX && type != CFS_ITEM_ORPHAN && type != CFS_ITEM_SYMLINK)
		return "ITEM or DELETE record of an item type the log does not carry";
	if (r[0] == CFS_LR_DELETE)
		return len == CFS_LR_ITEM_FIXED ? NULL : "DELETE record of the wrong size";
	if (type == CFS_ITEM_INODE && len != CFS_LR_ITEM_FIXED + CFS_INODE_ITEM_SIZE)
		return "ITEM record of an inode of the wrong size";
	return NULL;
}

/* One record at r (avail bytes left in the block): NULL and *len, or why not. */
static const char *rec_check(struct cowfs *fs, const uint8_t *r, uint32_t avail, uint32_t *len)
{
	if (avail < CFS_LR_HDR)
		return "record header cut off";
	*len = cfs_get16(r + 2);
	if (*len < CFS_LR_HDR || *len > avail || r[1])
		return "record length out of the block";
	if (cfs_get64(r + 4) < CFS_TREE_FS)
		return "record names no subvolume";
	if (r[0] == CFS_LR_INODE)
		return *len == CFS_LR_HDR + CFS_INODE_ITEM_SIZE ? NULL : "INODE record of the wrong size";
	if (r[0] == CFS_LR_UNLINKED)
		return *len == CFS_LR_HDR ? NULL : "UNLINKED record of the wrong size";
	if (r[0] == CFS_LR_ITEM || r[0] == CFS_LR_DELETE)
		return item_rec_check(r, *len);
	if (r[0] != CFS_LR_EXTENT)
		return "unknown record type";
	if (*len < CFS_LR_EXTENT_FIXED)
		return "EXTENT record too short";
	uint64_t off = cfs_get64(r + CFS_LR_HDR), blk = cfs_get64(r + CFS_LR_HDR + 8);
	uint32_t n = cfs_get32(r + CFS_LR_HDR + 16);
	if (off % BS || !n || n > CFS_LR_EXTENT_MAX || *len != CFS_LR_EXTENT_FIXED + 4 * n)
		return "EXTENT record malformed";
	if (!data_block_ok(fs, blk, n))
		return "EXTENT record names blocks outside the data area";
	return NULL;
}

/* NULL when b is log block seq of the log at blk, with sound records. */
static const char *lb_verify(struct cowfs *fs, const uint8_t *b, uint64_t blk, uint64_t seq)
{
	if (cfs_get32(b + CFS_LH_MAGIC) != CFS_LOG_MAGIC)
		return "no log magic";
	if (cfs_get32(b + CFS_LH_CSUM) != crc32c(0, b + 4, BS - 4))
		return "checksum mismatch (torn or damaged)";
	if (plat_memcmp(b + CFS_LH_FSID, fs->fsid, CFS_FSID_SIZE))
		return "another filesystem's block";
	if (cfs_get64(b + CFS_LH_BLOCKNR) != blk)
		return "misplaced block";
	if (cfs_get64(b + CFS_LH_LOG_ID) != fs->log_id)
		return "block of another log";
	if (cfs_get64(b + CFS_LH_SEQ) != seq)
		return "out of sequence";
	uint32_t nbytes = cfs_get16(b + CFS_LH_NBYTES), len;
	if (nbytes > LOG_ROOM)
		return "record bytes past the block";
	for (uint32_t off = 0; off < nbytes; off += len) {
		const char *why = rec_check(fs, b + CFS_LH_SIZE + off, nbytes - off, &len);
		if (why)
			return why;
	}
	return NULL;
}

/* ---- writing ---- */

/* Bytes of rec[from..len) that fit in one block, whole records only. */
static uint32_t fit(const uint8_t *rec, uint32_t from, uint32_t len)
{
	uint32_t n = 0;
	while (from + n < len) {
		uint32_t r = cfs_get16(rec + from + n + 2);
		if (n + r > LOG_ROOM)
			break;
		n += r;
	}
	return n;
}

/* The blocks, then one FLUSH for them and the data they name (see Order). */
static int write_blocks(struct cowfs *fs, const uint8_t *bufs, const uint64_t *blk, uint32_t n)
{
	struct cowfs_iob *iob = cowfs_iob_new(fs);
	if (!iob)
		return -PLAT_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		cowfs_iob_write(iob, blk[i], bufs + (uint64_t)i * BS, BS, 0);
	int err = cowfs_iob_wait(iob);
	return err ? err : cowfs_flush(fs);
}

int cowfs_log_append(struct cowfs *fs, const uint8_t *rec, uint32_t len)
{
	if (fs->readonly)
		return fs->error ? fs->error : -PLAT_EROFS;
	if (!fs->log_next || !len)
		return -PLAT_EAGAIN;
	uint32_t need = 0;
	for (uint32_t off = 0, n; off < len; off += n, need++)
		if (!(n = fit(rec, off, len)))
			return -PLAT_EINVAL;             /* a record larger than a block */
	if (fs->log_n + need > COWFS_LOG_MAX_BLOCKS || need > COWFS_LOG_MAX_APPEND)
		return -PLAT_EAGAIN;                     /* log full: the caller commits */
	uint64_t blk[COWFS_LOG_MAX_APPEND + 1];
	uint8_t *bufs = plat_alloc_pages((uint64_t)need * BS);
	if (!bufs)
		return -PLAT_ENOMEM;
	/* Every block's successor is chosen before anything is written. */
	blk[0] = fs->log_next;
	uint32_t taken = 0;
	int err = 0;
	for (; taken < need && !err; taken++)
		err = cowfs_alloc_reserve(fs, 1, &blk[taken + 1]);
	if (err) {
		for (uint32_t i = 1; i < taken; i++)
			cowfs_alloc_unreserve(fs, blk[i], 1);
		plat_free_pages(bufs, (uint64_t)need * BS);
		return err == -PLAT_ENOSPC ? -PLAT_EAGAIN : err;
	}
	uint32_t off = 0;
	for (uint32_t i = 0; i < need; i++) {
		uint32_t n = fit(rec, off, len);
		uint8_t *b = bufs + (uint64_t)i * BS;
		plat_memcpy(b + CFS_LH_SIZE, rec + off, n);
		lb_seal(fs, b, blk[i], fs->log_seq + i, blk[i + 1], n, i + 1 == need ? CFS_LOG_END : 0);
		off += n;
	}
	err = write_blocks(fs, bufs, blk, need);
	plat_free_pages(bufs, (uint64_t)need * BS);
	/* Written or not, the blocks stay taken until the commit pins them. */
	for (uint32_t i = 0; i < need; i++)
		fs->log_blk[fs->log_n++] = blk[i];
	if (err) {
		/* Some of them may be on media: the chain cannot go on
		 * past them.  No more logging until the next commit. */
		plat_log(PLAT_LOG_ERR, "cowfs: %s: intent log write at block %llu failed (%s): fsync commits now",
			 plat_bdev_name(fs->bdev), (unsigned long long)blk[0], plat_strerror(err));
		cowfs_alloc_unreserve(fs, blk[need], 1);
		fs->log_next = 0;
		return err;
	}
	fs->log_next = blk[need];
	fs->log_seq += need;
	fs->log_writes += need;
	return 0;
}

/* ---- commits ---- */

void cowfs_log_commit_start(struct cowfs *fs, uint64_t gen)
{
	uint64_t blk, id;
	if (plat_random(&id, sizeof(id)))
		id = gen ^ plat_time_ns() * 0x9E3779B97F4A7C15ull;   /* no random source: clock and generation */
	/* Without a free block the new commit has no log: fsync commits. */
	if (cowfs_alloc_reserve(fs, 1, &blk))
		blk = 0;
	fs->log_old_next = fs->log_next;
	fs->log_start = blk;
	fs->log_id = id ? id : 1;
}

void cowfs_log_committed(struct cowfs *fs)
{
	for (uint32_t i = 0; i < fs->log_n; i++)
		cowfs_alloc_pin(fs, fs->log_blk[i]);
	if (fs->log_old_next)                    /* chosen, never written */
		cowfs_alloc_unreserve(fs, fs->log_old_next, 1);
	fs->log_old_next = 0;
	fs->log_n = 0;
	fs->log_seq = 0;
	fs->log_next = fs->log_start;
}

/* ---- reading ---- */

struct log_walk {
	uint8_t *buf;            /* the verified blocks, in order */
	uint64_t blk[COWFS_LOG_MAX_BLOCKS];
	uint32_t n;              /* verified */
	const char *end_why;     /* why the walk stopped */
};

static int log_walk(struct cowfs *fs, struct log_walk *w)
{
	plat_memset(w, 0, sizeof(*w));
	w->end_why = "log start";
	w->buf = plat_alloc_pages((uint64_t)COWFS_LOG_MAX_BLOCKS * BS);
	if (!w->buf)
		return -PLAT_ENOMEM;
	uint64_t blk = fs->log_start;
	while (blk && w->n < COWFS_LOG_MAX_BLOCKS) {
		uint8_t *b = w->buf + (uint64_t)w->n * BS;
		if (!data_block_ok(fs, blk, 1)) {
			w->end_why = "next block outside the data area";
			break;
		}
		int err = cowfs_read_blocks(fs, blk, b, BS);
		if (err) {
			w->end_why = "unreadable";
			break;
		}
		if ((w->end_why = lb_verify(fs, b, blk, w->n)))
			break;
		w->blk[w->n++] = blk;
		blk = cfs_get64(b + CFS_LH_NEXT);
	}
	return 0;
}

static void log_walk_free(struct log_walk *w)
{
	plat_free_pages(w->buf, (uint64_t)COWFS_LOG_MAX_BLOCKS * BS);
}

typedef int (*rec_fn)(struct cowfs *fs, const uint8_t *r, void *arg);

/* Every record of blocks [from, to) of the walk. */
static int each_record(struct cowfs *fs, struct log_walk *w, uint32_t from, uint32_t to, rec_fn fn, void *arg)
{
	for (uint32_t i = from; i < to; i++) {
		const uint8_t *b = w->buf + (uint64_t)i * BS;
		uint32_t nbytes = cfs_get16(b + CFS_LH_NBYTES);
		for (uint32_t off = 0; off < nbytes; off += cfs_get16(b + CFS_LH_SIZE + off + 2)) {
			int err = fn(fs, b + CFS_LH_SIZE + off, arg);
			if (err)
				return err;
		}
	}
	return 0;
}

/* The first block (of a fsync) naming a block the space map holds, or
 * one of the log's own blocks (what: a damaged log), or a data block
 * whose content is not what the record says (unwritten: the fsync's
 * FLUSH never completed, the normal end of a log after a power cut). */
struct conflict {
	const struct log_walk *w;
	uint64_t blk;
	const char *what;
	const char *unwritten;
	uint8_t *buf;            /* one block, for reading data */
};

static bool is_log_block(const struct log_walk *w, uint64_t blk)
{
	for (uint32_t i = 0; i < w->n; i++)
		if (w->blk[i] == blk)
			return true;
	return false;
}

static int rec_conflict(struct cowfs *fs, const uint8_t *r, void *arg)
{
	struct conflict *c = arg;
	if (r[0] != CFS_LR_EXTENT)
		return 0;
	uint64_t blk = cfs_get64(r + CFS_LR_HDR + 8);
	for (uint32_t i = 0; i < cfs_get32(r + CFS_LR_HDR + 16); i++)
		if (cowfs_alloc_test(fs, blk + i) || is_log_block(c->w, blk + i)) {
			c->blk = blk + i;
			c->what = "a data block an EXTENT record names";
			return 1;
		}
	/* Free and not the log's: does it hold what the fsync wrote? */
	for (uint32_t i = 0; i < cfs_get32(r + CFS_LR_HDR + 16); i++) {
		uint32_t want = cfs_get32(r + CFS_LR_EXTENT_FIXED + 4 * i);
		int err = cowfs_read_blocks(fs, blk + i, c->buf, BS);
		if (err || crc32c(0, c->buf, BS) != want) {
			c->blk = blk + i;
			c->unwritten = err ? "a data block of the last fsync is unreadable"
					   : "the data of the last fsync is not on media (power cut before its FLUSH)";
			return 1;
		}
	}
	return 0;
}

/* The blocks [0, *keep) to replay: whole fsyncs (up to an END block)
 * whose blocks are all free in the space map and whose data is on
 * media; the first problem in c. */
static int log_cut(struct cowfs *fs, struct log_walk *w, uint32_t *keep, struct conflict *c)
{
	*keep = 0;
	c->buf = plat_alloc_pages(BS);
	if (!c->buf)
		return -PLAT_ENOMEM;
	for (uint32_t i = 0; i < w->n; i++) {
		if (cowfs_alloc_test(fs, w->blk[i])) {
			c->blk = w->blk[i];
			c->what = "a log block";
			break;
		}
		if (each_record(fs, w, i, i + 1, rec_conflict, c))
			break;
		if (cfs_get16(w->buf + (uint64_t)i * BS + CFS_LH_FLAGS) & CFS_LOG_END)
			*keep = i + 1;
	}
	plat_free_pages(c->buf, BS);
	c->buf = NULL;
	return 0;
}

static int rec_take(struct cowfs *fs, const uint8_t *r, void *arg)
{
	(void)arg;
	if (r[0] != CFS_LR_EXTENT)
		return 0;
	uint64_t blk = cfs_get64(r + CFS_LR_HDR + 8);
	for (uint32_t i = 0; i < cfs_get32(r + CFS_LR_HDR + 16); i++)
		(void)cowfs_alloc_take(fs, blk + i);     /* free: log_cut checked */
	return 0;
}

/* Step 4 for a name record: the item as the fsync saw it, or gone; an
 * inode freed since the commit left orphaned for the mount's orphan pass. */
static int rec_apply_name(struct cowfs_tree *t, const uint8_t *r)
{
	uint16_t len = cfs_get16(r + 2);
	uint64_t ino = cfs_get64(r + 12);
	int err;
	if (r[0] == CFS_LR_UNLINKED) {
		struct cowfs_key k = { ino, CFS_ITEM_INODE, 0 };
		uint8_t b[CFS_INODE_ITEM_SIZE];
		uint32_t n;
		err = cowfs_bt_lookup(t, &k, b, sizeof(b), &n);
		if (err == -PLAT_ENOENT)
			return 0;             /* born and freed after the commit */
		if (!err && n != sizeof(b))
			err = -PLAT_EIO;
		if (!err) {
			struct cowfs_inode in;
			cowfs_inode_decode(b, &in);
			in.nlink = 0;
			cowfs_inode_encode(&in, b);
			err = cowfs_bt_update(t, &k, b, sizeof(b));
		}
		struct cowfs_key o = { CFS_ORPHAN_OBJECTID, CFS_ITEM_ORPHAN, ino };
		if (!err && (err = cowfs_bt_insert(t, &o, NULL, 0)) == -PLAT_EEXIST)
			err = 0;
		return err;
	}
	struct cowfs_key k = { ino, r[CFS_LR_HDR], cfs_get64(r + CFS_LR_HDR + 1) };
	if (r[0] == CFS_LR_DELETE) {
		err = cowfs_bt_delete(t, &k);
		return err == -PLAT_ENOENT ? 0 : err;
	}
	const uint8_t *data = r + CFS_LR_ITEM_FIXED;
	uint32_t dlen = len - CFS_LR_ITEM_FIXED;
	/* A new inode needs nothing more: the next inode number is found
	 * from the tree's last key at the first create, after the replay. */
	err = cowfs_bt_update(t, &k, data, dlen);
	return err == -PLAT_ENOENT ? cowfs_bt_insert(t, &k, data, dlen) : err;
}

/* Step 4: one record into the trees. */
static int rec_apply(struct cowfs *fs, const uint8_t *r, void *arg)
{
	(void)arg;
	struct cowfs_tree *t;
	uint64_t ino = cfs_get64(r + 12);
	int err = cowfs_tree_get(fs, cfs_get64(r + 4), false, &t);
	if (err) {
		cowfs_fail(fs, -PLAT_EIO, "intent log: record for tree %llu, which does not open (%s)",
			   (unsigned long long)cfs_get64(r + 4), plat_strerror(err));
		return -PLAT_EIO;
	}
	if (r[0] == CFS_LR_ITEM || r[0] == CFS_LR_DELETE || r[0] == CFS_LR_UNLINKED)
		return rec_apply_name(t, r);
	if (r[0] == CFS_LR_INODE) {
		struct cowfs_key k = { ino, CFS_ITEM_INODE, 0 };
		err = cowfs_bt_update(t, &k, r + CFS_LR_HDR, CFS_INODE_ITEM_SIZE);
		if (err == -PLAT_ENOENT)
			cowfs_fail(fs, -PLAT_EIO, "intent log: inode %llu is not in the committed tree",
				   (unsigned long long)ino);
		return err == -PLAT_ENOENT ? -PLAT_EIO : err;
	}
	uint64_t off = cfs_get64(r + CFS_LR_HDR), blk = cfs_get64(r + CFS_LR_HDR + 8), released = 0;
	uint32_t n = cfs_get32(r + CFS_LR_HDR + 16);
	struct cowfs_tree *csum;
	err = cowfs_extent_release(t, ino, off, off + (uint64_t)n * BS, &released);
	for (uint32_t i = 0; i < n && !err; i++)
		err = cowfs_alloc_take(fs, blk + i);    /* released above: taken again */
	if (err) {
		cowfs_fail(fs, -PLAT_EIO, "intent log: inode %llu: block of a logged extent in use", (unsigned long long)ino);
		return -PLAT_EIO;
	}
	cowfs_alloc_claim(fs, blk, n);
	err = cowfs_extent_item_put(t, ino, off, blk, n, fs->gen);
	if (!err)
		err = cowfs_tree_get(fs, CFS_TREE_CSUM, true, &csum);
	/* The record's checksums as one run (at most CFS_LR_EXTENT_MAX). */
	uint32_t *sums = err ? NULL : plat_alloc((n ? n : 1) * sizeof(*sums));
	if (!err && !sums)
		err = -PLAT_ENOMEM;
	for (uint32_t i = 0; i < n && !err; i++)
		sums[i] = cfs_get32(r + CFS_LR_EXTENT_FIXED + 4 * i);
	if (!err)
		err = cowfs_csum_put(csum, blk, sums, n);
	plat_free(sums);
	return err;
}

int cowfs_log_mount(struct cowfs *fs)
{
	fs->log_next = fs->log_n = 0;
	fs->log_seq = 0;
	if (!fs->log_start)
		return 0;                 /* no log (an image from before it): fsync commits until the first commit */
	struct log_walk *w = plat_alloc(sizeof(*w));
	if (!w)
		return -PLAT_ENOMEM;
	int err = log_walk(fs, w);
	if (err)
		goto out;
	if (fs->readonly) {
		if (w->n)
			plat_log(PLAT_LOG_INFO, "cowfs: %s: intent log of commit %llu holds %u block(s), not replayed "
				 "(read-only mount)", plat_bdev_name(fs->bdev), (unsigned long long)fs->committed_gen, w->n);
		goto out;
	}
	if (!w->n)
		goto out;                 /* empty: not appended to (see the top); the first fsync commits */
	/* 1-2. Whole fsyncs, cut before one naming a block in use. */
	struct conflict c = { w, 0, NULL, NULL, NULL };
	uint32_t keep;
	if ((err = log_cut(fs, w, &keep, &c)))
		goto out;
	if (c.what)
		plat_log(PLAT_LOG_ERR, "cowfs: %s: intent log: %s (block %llu) is in use: replay stops before it",
			 plat_bdev_name(fs->bdev), c.what, (unsigned long long)c.blk);
	if (c.unwritten && !c.what)
		fs->log_unwritten_cuts++;
	if (keep < w->n)
		plat_log(PLAT_LOG_INFO, "cowfs: %s: intent log ends after %u of %u block(s) (%s)",
			 plat_bdev_name(fs->bdev), keep, w->n,
			 c.what ? "damaged" : c.unwritten ? c.unwritten : "an fsync cut short");
	/* 3. Taken: nothing the replay allocates lands on them. */
	for (uint32_t i = 0; i < keep; i++) {
		(void)cowfs_alloc_take(fs, w->blk[i]);
		fs->log_blk[fs->log_n++] = w->blk[i];
	}
	if ((err = each_record(fs, w, 0, keep, rec_take, NULL)))
		goto out;
	/* 4. Apply. */
	if ((err = each_record(fs, w, 0, keep, rec_apply, NULL)))
		goto out;
	plat_log(PLAT_LOG_INFO, "cowfs: %s: intent log: %u block(s) replayed", plat_bdev_name(fs->bdev), keep);
	/* 5. Commit; it starts a new log and pins the replayed one. */
	fs->dirty_changes++;
	err = cowfs_commit(fs);
out:
	if (err)
		plat_log(PLAT_LOG_ERR, "cowfs: %s: intent log replay failed: %s", plat_bdev_name(fs->bdev),
			 plat_strerror(err));
	log_walk_free(w);
	plat_free(w);
	return err;
}

/* ---- checks ---- */

int cowfs_log_check(struct cowfs *fs, char *msg, size_t msglen)
{
	/* Only the log as on disk: once this mount appended, the space map
	 * holds the running transaction's claims. */
	if (!fs->log_start || fs->log_n)
		return 0;
	struct log_walk *w = plat_alloc(sizeof(*w));
	if (!w)
		return -PLAT_ENOMEM;
	int err = log_walk(fs, w);
	if (!err) {
		struct conflict c = { w, 0, NULL, NULL, NULL };
		uint32_t keep;
		err = log_cut(fs, w, &keep, &c);
		if (!err && c.what) {
			plat_snprintf(msg, msglen, "intent log of commit %llu: %s (block %llu) is in use (space map or log)",
				      (unsigned long long)fs->committed_gen, c.what, (unsigned long long)c.blk);
			err = -PLAT_EIO;
		}
	}
	log_walk_free(w);
	plat_free(w);
	return err;
}

int cowfs_log_blocks(struct cowfs *fs, void (*cb)(void *arg, uint64_t blk, uint64_t seq), void *arg)
{
	if (!fs->log_start)
		return 0;
	struct log_walk *w = plat_alloc(sizeof(*w));
	if (!w)
		return -PLAT_ENOMEM;
	int err = log_walk(fs, w);
	for (uint32_t i = 0; !err && i < w->n; i++)
		cb(arg, w->blk[i], i);
	log_walk_free(w);
	plat_free(w);
	return err;
}
