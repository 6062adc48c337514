/*
 * cowfs: the appliance's copy-on-write extent filesystem (portable; over
 * platform/platform.h).  This header is the foundation layer: format, mount,
 * copy-on-write B+trees and commits.  Inodes, directories and the iomap
 * hooks build on it.
 *
 * Call order and states:
 *   cowfs_mkfs(bdev)                      writes an empty filesystem (commit 1)
 *   cowfs_mount(bdev, opts, &fs)          -> MOUNTED (transaction gen = newest
 *                                            valid superblock's gen + 1)
 *     cowfs_tree_open(fs, id, create, &t) a tree by id (>= CFS_TREE_FS)
 *     cowfs_bt_* on t                     changes go to the running
 *                                            transaction, in memory
 *     cowfs_commit(fs)                    makes them durable (docs/format.md §8)
 *   cowfs_unmount(fs)                     commits what is dirty, frees all
 *
 * A write or flush error during a commit, or corrupt metadata found on a
 * read, turns the filesystem read-only (cowfs_error(fs) says why); what was
 * committed before stays intact and later changes return -EROFS.
 *
 * Concurrency: one thread at a time per filesystem.  Callers serialise
 * (the VFS layer above will hold the filesystem lock).
 */
#ifndef FS_COWFS_H
#define FS_COWFS_H

#include "platform/platform.h"
#include "fs/format.h"

struct cowfs;
struct cowfs_tree;

/* Test hooks: NULL in production.  Called before each device write or
 * flush the filesystem submits (crash-point injection). */
struct cowfs_hooks {
	void (*before_write)(void *arg, uint64_t dev_off, const void *buf, uint64_t len, unsigned flags);
	void (*before_flush)(void *arg);
	void *arg;
};

struct cowfs_mkfs_opts {
	uint32_t node_size;          /* 4096, 8192 or 16384; 0 = 16384 */
	uint64_t total_blocks;       /* 0 = whole device */
	const char *label;           /* NULL = empty */
	const uint8_t *fsid;         /* 16 bytes; NULL = derived from the clock */
	bool bare;                   /* no subvolume tree and no root directory (the tree-level tests use
					tree 256 as a plain B+tree); a first read-write vfs mount adds them */
};

struct cowfs_mount_opts {
	uint64_t cache_bytes;        /* node cache budget; 0 = 16 MiB */
	bool readonly;
	uint64_t gen;                /* mount exactly this commit, read-only (fsck, tests); 0 = newest */
	const struct cowfs_hooks *hooks;
};

int cowfs_mkfs(struct plat_bdev *b, const struct cowfs_mkfs_opts *o);
int cowfs_mount(struct plat_bdev *b, const struct cowfs_mount_opts *o, struct cowfs **out);
int cowfs_commit(struct cowfs *fs);
/* Between two operations: commit when the running transaction's dirty
 * nodes reach half the node cache budget (they cannot be evicted, so
 * this is what keeps the cache within its budget).  Returns 1 when it
 * committed, 0 when not needed, or -errno. */
int cowfs_commit_if_needed(struct cowfs *fs);
/* Commits (unless read-only or failed), then frees everything.  Returns
 * the commit's status; the filesystem is gone either way. */
int cowfs_unmount(struct cowfs *fs);

/* First error that made the filesystem read-only (0 if none), and why. */
int cowfs_error(struct cowfs *fs, const char **reason);

struct cowfs_info {
	uint64_t gen;                /* running transaction */
	uint64_t committed_gen;
	uint64_t total_blocks, used_blocks, pinned_blocks;   /* pinned: freed or intent log, reusable after commits */
	uint32_t node_size;
	uint64_t cached_nodes, dirty_nodes, cache_bytes;
	uint64_t node_reads, node_writes, evictions;
	uint64_t verify_errors;      /* corrupt or misplaced blocks seen */
};
void cowfs_info(struct cowfs *fs, struct cowfs_info *out);
/* The filesystem's 16-byte id, chosen by mkfs (stable for its life). */
void cowfs_fsid(struct cowfs *fs, uint8_t out[16]);

/* ---- trees ---------------------------------------------------------------
 * Keys are (objectid, type, offset); item data is 0..cowfs_max_item_size()
 * bytes.  All return 0 or -errno: -ENOENT (no such key), -EEXIST,
 * -E2BIG... (too large: -EINVAL), -ENOSPC, -EIO (corrupt metadata),
 * -EROFS.  Lookups copy at most bufsize bytes and report the full length. */
int cowfs_tree_open(struct cowfs *fs, uint64_t id, bool create, struct cowfs_tree **out);
uint32_t cowfs_max_item_size(struct cowfs *fs);

int cowfs_bt_lookup(struct cowfs_tree *t, const struct cowfs_key *k, void *buf, uint32_t bufsize,
		    uint32_t *len);
int cowfs_bt_insert(struct cowfs_tree *t, const struct cowfs_key *k, const void *data, uint32_t len);
/* Replace the data of an existing item (any new length). */
int cowfs_bt_update(struct cowfs_tree *t, const struct cowfs_key *k, const void *data, uint32_t len);
int cowfs_bt_delete(struct cowfs_tree *t, const struct cowfs_key *k);
/* The first item with key >= *k: *k is set to its key.  -ENOENT at the end. */
int cowfs_bt_next(struct cowfs_tree *t, struct cowfs_key *k, void *buf, uint32_t bufsize, uint32_t *len);
/* The last item with key <= *k: *k is set to its key.  -ENOENT when every
 * key is larger.  One root-to-leaf descent. */
int cowfs_bt_prev(struct cowfs_tree *t, struct cowfs_key *k);
/* The same, and the item's data like cowfs_bt_lookup (one descent, not a
 * prev and then a lookup). */
int cowfs_bt_prev_item(struct cowfs_tree *t, struct cowfs_key *k, void *buf, uint32_t bufsize, uint32_t *len);
/* The last (largest) key in the tree; -ENOENT when empty. */
int cowfs_bt_last(struct cowfs_tree *t, struct cowfs_key *k);
/* In-order walk of [from, to] (inclusive); cb returns 0 to go on, > 0 to
 * stop (returned), < 0 error (returned).  cb must not change the tree. */
typedef int (*cowfs_iter_fn)(void *arg, const struct cowfs_key *k, const void *data, uint32_t len);
int cowfs_bt_iterate(struct cowfs_tree *t, const struct cowfs_key *from, const struct cowfs_key *to,
		     cowfs_iter_fn cb, void *arg);

/* ---- snapshots (fs/snapshot.c, docs/format.md §10) ----
 * A snapshot (readonly) or clone (writable) of subvolume tree src as a new
 * tree dst (both ids >= CFS_TREE_FS): constant cost, nodes shared until
 * changed.  Commits first when src's root changed in this transaction.
 * -EEXIST when dst exists.  A read-only tree refuses changes (-EROFS). */
int cowfs_snapshot_create(struct cowfs *fs, uint64_t src, uint64_t dst, bool readonly);
/* Deletes the tree: it disappears at once (name, lookups, lists) and is
 * marked DROPPING; its space is freed by cowfs_drop_step (nodes only it
 * references freed, shared ones lose a reference). */
int cowfs_snapshot_delete(struct cowfs *fs, uint64_t id);
/* One step of the background delete: frees up to `budget` nodes of a
 * DROPPING tree and records the progress in its ROOT_ITEM (the caller
 * commits; a power cut resumes from the last committed step).  *more =
 * work is left.  cowfs_drop_all runs steps until none is left. */
int cowfs_drop_step(struct cowfs *fs, unsigned budget, bool *more);
int cowfs_drop_all(struct cowfs *fs);
#define CFS_NAME_MAX_SNAP 255u
struct cowfs_subvol_info {
	uint64_t id, parent;         /* parent: the tree it was taken of, 0 = none */
	bool readonly;
	uint64_t root_gen;
	char name[CFS_NAME_MAX_SNAP + 1];   /* "" = unnamed */
};
/* Named snapshots of src (ROOT_REF items, docs/format.md §10): the new
 * tree gets the next free id (*id).  Names: 1..255 bytes, no '/' or NUL;
 * -EEXIST when taken.  Delete by name drops the tree like
 * cowfs_snapshot_delete, which also removes its name. */
int cowfs_snapshot_named(struct cowfs *fs, uint64_t src, const char *name, size_t len, bool readonly, uint64_t *id);
int cowfs_snapshot_lookup(struct cowfs *fs, uint64_t src, const char *name, size_t len, uint64_t *id);
int cowfs_snapshot_delete_named(struct cowfs *fs, uint64_t src, const char *name, size_t len);
/* Every subvolume tree in id order; cb returns 0 to go on, > 0 to stop,
 * < 0 an error (returned). */
typedef int (*cowfs_subvol_fn)(void *arg, const struct cowfs_subvol_info *si);
int cowfs_subvol_list(struct cowfs *fs, cowfs_subvol_fn cb, void *arg);

/* ---- integrity: scrub (fs/scrub.c) and repair (fs/repair.c) ---- */
typedef void (*cowfs_report_fn)(void *arg, const char *line);
typedef void (*cowfs_progress_fn)(void *arg, uint64_t done, uint64_t total);
struct cowfs_scrub_stats {
	uint64_t sb_valid, sb_bad;            /* superblock copies (16 in all) */
	uint64_t nodes, node_errors;          /* tree nodes read back and verified */
	uint64_t extent_errors;               /* EXTENT items pointing outside the data area */
	/* Data: each block any live subvolume tree names, read once. */
	uint64_t data_blocks;                 /* blocks read and checked */
	uint64_t data_errors;                 /* checksum mismatches */
	uint64_t data_no_csum;                /* blocks without a checksum item (damage: every block has one) */
	uint64_t data_read_errors;            /* blocks the device could not read */
	uint64_t data_shared;                 /* references met again to blocks already read (shared) */
	uint64_t data_unwritten;              /* blocks of UNWRITTEN extents: not data, not read */
	uint64_t data_reads;                  /* device reads issued for data (contiguous blocks batched) */
	uint64_t bytes;                       /* nodes and data read */
	uint64_t elapsed_ns;
};
/* Commits (unless read-only), then reads back and verifies everything
 * that commit references, bypassing the caches; each problem reported in
 * words (report may be NULL; a data block's line names its device
 * address, inode, file offset and subvolume or snapshot) and counted, the
 * scrub goes on.  progress (may be NULL) is called every 1024 blocks
 * (nodes and data) with done/total.  Returns 0 when the scrub ran
 * (problems are in *st), or -errno when it could not. */
int cowfs_scrub(struct cowfs *fs, struct cowfs_scrub_stats *st, cowfs_report_fn report, cowfs_progress_fn progress,
		void *arg);
/* All problems of every kind a scrub counted. */
uint64_t cowfs_scrub_errors(const struct cowfs_scrub_stats *st);
/* The one-line summary the host tool and the shell print: "clean: ..." or
 * "found damage: ...", counts, errors by kind, ending "N errors". */
void cowfs_scrub_summary(const struct cowfs_scrub_stats *st, char *out, size_t n);
/* fsck --repair: node reference counts, dangling snapshot names, leaked
 * or wrongly free space, from structurally sound trees; each fix reported;
 * commits.  -EIO (and the reason reported) when a tree is damaged. */
int cowfs_repair(struct cowfs *fs, cowfs_report_fn report, void *arg, unsigned *fixed);

/* Structure check of one tree (docs/format.md §4.3-4.6): key order and
 * bounds, fill, levels, owner, parent gen/csum of every child.  Returns 0
 * or -EUCLEAN-like -EIO with the first problem in words in msg. */
struct cowfs_tree_stats { uint64_t items, leaves, interior; unsigned height; };
int cowfs_bt_check(struct cowfs_tree *t, struct cowfs_tree_stats *st, char *msg, size_t msglen);
/* Whole-filesystem check: every tree, and the free-space bitmap equals the
 * set of blocks the trees reference plus the reserved ones. */
int cowfs_check(struct cowfs *fs, char *msg, size_t msglen);

#endif
