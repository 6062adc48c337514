/*
 * Block layer internals shared by blk.c (registry), blk_queue.c (pieces,
 * software queues, completion, polling) and blk_submit.c (validation,
 * splitting, submission).  Not for drivers.
 */
#ifndef DRIVERS_BLK_BLK_INTERNAL_H
#define DRIVERS_BLK_BLK_INTERNAL_H

#include "drivers/blk/blk.h"
#include "kernel/sync.h"

#define BLK_PIECE_SEGS   32      /* segments a piece or merged request holds */
#define BLK_POOL_PIECES  128     /* pieces per device */
#define BLK_MAX_DEVS     32
#define BLK_ZERO_BYTES   (64 * 1024)

/* bl_flags */
#define BLK_RF_PIECE     (1u << 0)   /* from the pool: freed on completion */
#define BLK_RF_MERGED    (1u << 1)   /* carries ->members */
#define BLK_RF_FUA_EMUL  (1u << 2)   /* parent: flush after the writes */
#define BLK_RF_SPLIT     (1u << 3)   /* parent: completes through pieces */

struct blk_piece {
	struct blk_req req;              /* first: a piece is a request */
	struct blk_seg segs[BLK_PIECE_SEGS];
	struct blk_piece *free_next;
};

struct blk_swq {
	spinlock_t lock;
	struct blk_req *head, *tail;     /* parked after -EBUSY */
	volatile uint64_t ncompleted;    /* completions seen (requeue race) */
	volatile uint32_t inflight;      /* handed to the driver */
	unsigned armed;                  /* hybrid pollers asleep (lock held) */
};

struct blk_priv {
	spinlock_t pool_lock;
	struct blk_piece *free;
	unsigned nfree;
	struct waitq pool_wq;
	struct blk_swq *swq;             /* [nqueues] */
};

extern bool blk_drop_flushes;       /* boot argument blk_drop_flush (tests) */
extern void *const blk_zero_buf;     /* BLK_ZERO_BYTES of zeros, never written */

/* blk_queue.c */
struct blk_piece *blk_piece_get(struct blk_dev *dev);
struct blk_piece *blk_piece_try(struct blk_priv *p);
void blk_piece_setup(struct blk_req *parent, struct blk_piece *pc, uint8_t op, uint32_t flags);
void blk_finish(struct blk_req *req);
void blk_parent_put(struct blk_req *parent);
void blk_set_error(struct blk_req *r, int status, const char *error);
bool blk_seg_joins(const struct blk_dev *dev, const struct blk_seg *a, const struct blk_seg *b);
void blk_dispatch(struct blk_dev *dev, struct blk_req *r);

#endif
