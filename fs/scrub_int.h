/*
 * The scrub's state, shared by the tree walk (fs/scrub.c) and the data
 * part (fs/scrub_data.c).  Internal to fs/.
 */
#ifndef FS_SCRUB_INT_H
#define FS_SCRUB_INT_H

#include "fs/node.h"

/* Data is read in runs of device-contiguous blocks, up to 1 MiB per read:
 * a large file is a few hundred large reads, not one per block. */
#define SCRUB_RUN_BLOCKS 256u

/* Who names a data block of the run: the first reference the walk met. */
struct scrub_ref { uint64_t tree, ino, off; };

struct scrub_run {
	uint64_t dev;                          /* first block of the run */
	uint32_t n;
	struct scrub_ref ref[SCRUB_RUN_BLOCKS];
	uint32_t csum[SCRUB_RUN_BLOCKS];
	bool has_csum[SCRUB_RUN_BLOCKS];
	uint8_t *buf;                          /* SCRUB_RUN_BLOCKS blocks */
};

struct scrub {
	struct cowfs *fs;
	struct cowfs_scrub_stats *st;
	cowfs_report_fn report;
	cowfs_progress_fn progress;
	void *arg;
	uint64_t *seen;                        /* nodes and data blocks read (once each) */
	uint64_t total, next_progress;
	uint8_t *bufs[CFS_MAX_LEVELS + 1];
	struct cowfs_tree *csum;               /* NULL: no data was ever written */
	struct scrub_run *run;
};

void scrub_say(struct scrub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void scrub_tick(struct scrub *s);
/* Seen before (then true), else marked seen now. */
bool scrub_seen(struct scrub *s, uint64_t blk);

/* fs/scrub_data.c: the EXTENT items of one leaf of subvolume tree `tree`
 * queue their blocks (each once) into the run, which is verified when it
 * can grow no further; scrub_data_flush verifies what is queued. */
void scrub_data_leaf(struct scrub *s, uint64_t tree, const uint8_t *leaf);
void scrub_data_flush(struct scrub *s);

#endif
