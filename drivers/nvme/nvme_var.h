/*
 * NVMe driver internals shared by nvme.c (controller core), nvme_io.c (the
 * I/O path) and nvme_pci.c (PCI attach).
 *
 * Call order (bus attach -> core):
 *   1. the attach fills ctrl->regs, ctrl->name, ctrl->nvec and the vectors
 *      (0 = polling only), then calls nvme_attach(ctrl);
 *   2. nvme_attach enables the controller, identifies it, creates the I/O
 *      queues, identifies every active namespace and registers one blk_dev
 *      per usable namespace, then starts the watchdog thread;
 *   3. the bus interrupt handler calls nvme_intr(queue).
 *
 * Controller states: ENABLING -> LIVE <-> RESETTING; RESETTING -> DEAD when
 * the controller does not come back; LIVE -> OFF at power-off (CC.SHN).
 * While RESETTING, submissions are accepted into command slots but not
 * written to the hardware queue (the queue is `held`); the reset writes
 * every in-flight command into the fresh queue when it ends.
 *
 * Queue lock invariant: `state` moves to DEAD or OFF, and a queue stops
 * being held, only with that queue's lock held, and nvme_submit() reads
 * `state` and `held` under the same lock.  So a request is either in a
 * slot before the failure path empties the slots under the lock (and is
 * failed there), or it sees DEAD/OFF and is refused: none is parked in a
 * held queue of a dead controller.
 *
 * Return values: nvme_attach() and nvme_ns_attach() return 0 or -errno;
 * the namespaces brought up are c->nns.
 */
#ifndef DRIVERS_NVME_NVME_VAR_H
#define DRIVERS_NVME_NVME_VAR_H

#include <stdint.h>
#include <stdbool.h>
#include "drivers/nvme/nvme_reg.h"
#include "drivers/blk/blk.h"
#include "kernel/sync.h"

#define NVME_MAX_QUEUES  16          /* I/O queues per controller */
#define NVME_MAX_NS      16          /* namespaces registered per controller */
#define NVME_ADMIN_DEPTH 32
#define NVME_IO_DEPTH    256         /* entries; one stays free (full != empty) */
#define NVME_MAX_XFER    (1u << 20)  /* one PRP list page covers it */
#define NVME_MAX_RETRIES 2           /* resubmissions of a timed-out command */

enum nvme_state { NVME_ENABLING, NVME_LIVE, NVME_RESETTING, NVME_DEAD, NVME_OFF };

struct nvme_ctrl;

struct nvme_cmd {
	struct blk_req *req;          /* NULL when the slot is free */
	uint64_t *prp;                /* PRP list / DSM range page */
	uint64_t prp_phys;
	uint32_t ticks;               /* watchdog periods in flight */
	bool aborted;                 /* an Abort was sent for it */
	bool expired;                 /* timed out: retry or fail at the reset */
	uint8_t retries;              /* times resubmitted after timing out */
};

struct nvme_queue {
	spinlock_t lock;
	struct nvme_ctrl *ctrl;
	uint16_t id;                  /* 0 = admin */
	uint16_t depth;
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	uint64_t sq_phys, cq_phys;
	volatile uint32_t *sq_db, *cq_db;
	uint16_t sq_tail, cq_head;
	uint16_t sq_rung;             /* SQ tail last written to the doorbell;
				       * != sq_tail while a batch (BLK_F_MORE)
				       * is being queued */
	uint16_t sq_head;             /* admin: last SQ head the controller
				       * reported (CQE sqhd) */
	uint64_t wd_submits;          /* watchdog: q->submits at its last pass */
	bool wd_unpub;                /* ... and SQEs were unpublished then */
	bool wd_behind;               /* watchdog: shadow EventIdx wd_ei short
				       * of tail wd_rung at its last pass */
	uint16_t wd_ei, wd_rung;
	/* Shadow doorbells (Doorbell Buffer Config), NULL when not in use:
	 * the tail/head we publish, and the EventIdx the controller writes
	 * (the index after which it wants an MMIO doorbell again). */
	volatile uint32_t *sq_shadow, *cq_shadow, *sq_ei, *cq_ei;
	uint16_t phase;
	bool held;                    /* controller resetting: do not touch hw */
	struct nvme_cmd *cmds;        /* [depth] by command id */
	uint16_t *free_ids;           /* stack of free command ids */
	uint16_t nfree;
	int vector;                   /* CPU vector, -1 when polled */
	unsigned msix_entry;
	uint64_t irqs, completions, submits;
	uint64_t sq_doorbells;        /* SQ tail doorbell writes (MMIO) */
	uint64_t cq_doorbells;        /* CQ head doorbell writes (MMIO) */
	uint64_t db_skipped;          /* doorbells left to the shadow buffer */
	uint64_t late_commits;        /* SQ tails the watchdog had to publish:
				       * a submitter left SQEs without a
				       * doorbell (a bug; tests expect 0) */
	uint64_t db_nudges;           /* MMIO SQ doorbells the watchdog wrote
				       * for a controller that had not read
				       * the shadow tail (tests expect 0) */
};

struct nvme_ns {
	struct blk_dev blk;
	struct nvme_ctrl *ctrl;
	uint32_t nsid;
	bool polling;                 /* interrupts turned off for it */
};

struct nvme_ctrl {
	char name[12];                /* "nvme0" */
	unsigned index;
	volatile uint8_t *regs;
	struct pci_dev *pci;          /* NULL if not on PCI */
	uint64_t cap;
	uint32_t vs;
	uint32_t dstrd;               /* doorbell stride in bytes */
	uint64_t ready_timeout_ns;    /* from CAP.TO */
	volatile int state;           /* enum nvme_state */

	/* Identify controller. */
	char model[41], serial[21], firmware[9];
	uint8_t mdts;
	uint16_t oncs;
	uint8_t vwc;
	uint32_t nn;
	uint32_t max_transfer;
	uint32_t rtd3e_us;            /* shutdown latency it promises, 0 = unknown */
	uint16_t oacs;

	/* Shadow doorbells: one page of doorbell values, one of EventIdx
	 * values, laid out like the doorbell registers.  dbbuf_on: the
	 * controller accepted Doorbell Buffer Config (again after every
	 * reset, which clears it); dbbuf_mmio: shell `nvme shadow CTRL off`,
	 * the shadow is still written (the controller reads it) but every
	 * doorbell also goes to MMIO. */
	uint64_t dbbuf_phys;          /* 2 pages, 0 when not allocated */
	bool dbbuf_on;
	volatile bool dbbuf_mmio;

	struct nvme_queue admin;
	struct mutex admin_lock;      /* one admin command at a time */
	struct mutex reset_lock;      /* one reset at a time */
	void *idbuf;                  /* 4 KiB identify buffer */
	uint64_t idbuf_phys;

	unsigned nqueues;             /* I/O queues */
	struct nvme_queue io[NVME_MAX_QUEUES];
	unsigned nvec;                /* interrupt vectors: 0 polled only */
	/* Bus hook: allocate a CPU vector for every I/O queue (q->vector) and
	 * route MSI-X entry q->msix_entry to it; 0 or -errno. */
	int (*intr_setup)(struct nvme_ctrl *c);
	bool shared_vector;           /* one vector for admin + I/O (MSI) */
	spinlock_t mode_lock;         /* npolling, ns->polling, irqs_masked */
	unsigned npolling;            /* namespaces in polling mode */
	bool irqs_masked;

	struct nvme_ns *ns[NVME_MAX_NS];
	unsigned nns;

	uint64_t timeout_ns;          /* per command (blk_timeout_ms) */
	uint64_t tick_ns;             /* watchdog period */
	uint64_t timeouts, aborts, resets;
	struct nvme_ctrl *next;
};

extern struct nvme_ctrl *nvme_ctrls;

/* Register access. */
static inline uint32_t nvme_read4(struct nvme_ctrl *c, uint32_t off)
{
	return *(volatile uint32_t *)(c->regs + off);
}
static inline void nvme_write4(struct nvme_ctrl *c, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(c->regs + off) = v;
}
static inline uint64_t nvme_read8(struct nvme_ctrl *c, uint32_t off)
{
	/* Two dword reads, low first: some bridges split 64-bit MMIO. */
	uint64_t lo = nvme_read4(c, off), hi = nvme_read4(c, off + 4);
	return lo | (hi << 32);
}
static inline void nvme_write8(struct nvme_ctrl *c, uint32_t off, uint64_t v)
{
	nvme_write4(c, off, (uint32_t)v);
	nvme_write4(c, off + 4, (uint32_t)(v >> 32));
}

/* nvme.c */
int nvme_attach(struct nvme_ctrl *c);
/* Disable, re-enable, recreate the queues and resubmit in-flight commands;
 * 0, or -errno after printing why: then bus mastering is off, every
 * command failed and the namespaces are dead (callers need do nothing
 * more).  -ENODEV when the controller was already dead or off. */
int nvme_reset(struct nvme_ctrl *c, const char *why);
/* Self-tests: the next resets fail as if the controller never came back. */
extern bool nvme_test_fail_reset;
/* Synchronous admin command (polled, sleeps); result in *cqe.  0, -EIO with
 * the decoded status printed, -ETIMEDOUT (the command stays in the queue
 * until a reset), or -EBUSY when the admin queue is full of such commands
 * (the watchdog's next reset empties it). */
int nvme_admin(struct nvme_ctrl *c, struct nvme_sqe *sqe, struct nvme_cqe *cqe, const char *what);
/* Mask or unmask every I/O queue's interrupt vector. */
void nvme_mask_irqs(struct nvme_ctrl *c, bool masked);
/* One queue's vector only, leaving irqs_masked alone (hybrid polling);
 * mode_lock held. */
void nvme_mask_queue_irq(struct nvme_ctrl *c, struct nvme_queue *q, bool masked);
void nvme_describe(struct blk_dev *dev);

/* nvme_io.c */
int nvme_queue_alloc(struct nvme_ctrl *c, struct nvme_queue *q, uint16_t id, uint16_t depth);
void nvme_queue_reset_ring(struct nvme_queue *q);
extern const struct blk_ops nvme_blk_ops;
/* Reap completions on q; returns how many.  IRQ safe. */
int nvme_queue_reap(struct nvme_queue *q);
/* Write the SQ tail doorbell if SQEs were queued since the last write
 * (nvme_ring_sq: q->lock held; nvme_queue_commit takes it). */
void nvme_ring_sq(struct nvme_queue *q);
void nvme_queue_commit(struct nvme_queue *q);
/* Publish the CQ head (q->lock held, or the admin lock for the admin
 * queue): shadow buffer, and MMIO when the EventIdx asks for it. */
void nvme_ring_cq(struct nvme_queue *q);
/* Point q at its shadow doorbell and EventIdx slots (c->dbbuf_on), or
 * back at MMIO only. */
void nvme_queue_shadow(struct nvme_ctrl *c, struct nvme_queue *q);
/* SQ entries written but not yet published (q->lock held). */
unsigned nvme_queue_unpublished(const struct nvme_queue *q);
void nvme_intr(void *queue);
/* Watchdog: one pass over the in-flight commands. */
void nvme_watchdog_scan(struct nvme_ctrl *c);
/* Write every in-flight command of q into its (fresh) ring and ring the
 * doorbell once; fail the ones marked expired.  Called by nvme_reset. */
void nvme_queue_resubmit(struct nvme_queue *q);
/* Controller dead or off: under q's lock set c->state to `state`, take
 * every in-flight command out of its slot and release the hold; then fail
 * them outside the lock.  Returns how many failed. */
unsigned nvme_queue_fail_all(struct nvme_queue *q, int state, const char *why);
/* Power-off step (order 40): CC.SHN on every live controller. */
int nvme_shutdown_all(uint64_t deadline_ns);

/* nvme_status.c */
/* "Unrecovered Read Error (media, status 0x0281)" into buf. */
void nvme_status_decode(char *buf, unsigned len, uint16_t sf);
const char *nvme_status_name(unsigned sct, unsigned sc);
const char *nvme_sct_name(unsigned sct);
int nvme_status_errno(uint16_t sf);

#endif
