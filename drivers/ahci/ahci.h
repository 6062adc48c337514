/*
 * AHCI driver internals (drivers/ahci/).
 *
 *   ahci_pci.c   finds class 01:06:01, maps ABAR (BAR5), sets up MSI or
 *                polling, registers DRIVER(ahci).
 *   ahci.c       HBA: BIOS/OS handoff, HBA reset, port enumeration, the
 *                interrupt handler and the watchdog thread.
 *   ahci_port.c  one SATA disk: port start/stop, COMRESET, IDENTIFY,
 *                polled commands, PRDT/FIS/TRIM builders.
 *   ahci_io.c    block-layer ops: command slots, NCQ or DMA EXT, flush,
 *                TRIM, completion, timeouts and recovery.
 *   ahci_err.c   task-file, PxIS and SError decoding into words.
 *
 * Port states: EMPTY/ATAPI/FAILED ports are reported and left stopped.  A
 * disk port is RUNNING; an error or a timeout moves it to RECOVERING
 * (the watchdog thread stops it, COMRESETs it, fails the guilty command and
 * reissues the others) and back to RUNNING, or to DEAD when the link does
 * not come back (blk_set_dead).
 *
 * Locking: port->lock protects slots, the deferred FIFO and PxCI/PxSACT
 * writes.  While `recovering` is set the watchdog thread owns the port:
 * its registers, and every command slot and command table not holding a
 * request (recovery borrows slot 0 for READ LOG EXT).  submit() therefore
 * refuses new requests with -EBUSY while recovering (the block layer parks
 * them) and recovery kicks the block layer when it ends.  At power-off the
 * port goes `off` the same way for good (ahci_shutdown_all).
 *
 * DMA below 4 GiB: on an HBA without CAP.S64A, or with the boot argument
 * ahci_dma32, `dma32` is set: the command list, received-FIS area, command
 * tables and the IDENTIFY/log buffer sit in one arena below 4 GiB, and a
 * request whose buffer lies above goes through the slot's bounce buffer
 * (below 4 GiB, AHCI_BOUNCE_BYTES, which caps max_transfer).
 *
 * Return values: ahci_hba_init() and the port functions return 0 or
 * -errno.
 */
#ifndef DRIVERS_AHCI_AHCI_H
#define DRIVERS_AHCI_AHCI_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include "drivers/ahci/ahci_reg.h"
#include "drivers/blk/blk.h"
#include "kernel/sync.h"

#define AHCI_MAX_PORTS 32
#define AHCI_MAX_SLOTS 32
#define AHCI_MAX_RETRIES 2
#define AHCI_BOUNCE_BYTES (64u * 1024)   /* per slot, dma32 only */

struct ahci_hba;

struct ahci_slot {
	struct blk_req *req;          /* NULL when free */
	uint64_t deadline_ns;         /* set when issued to the HBA */
	uint8_t retries;
	bool ncq;                     /* READ/WRITE FPDMA QUEUED */
	bool issued;                  /* written to PxCI */
	bool bounced;                 /* data goes through the bounce buffer */
};

struct ahci_port {
	struct ahci_hba *hba;
	unsigned index;
	volatile uint8_t *regs;       /* this port's register block */
	spinlock_t lock;

	/* DMA memory */
	struct ahci_cmd_hdr *cmdlist; /* 1 KiB, 32 headers */
	uint8_t *rfis;                /* 256 bytes */
	uint8_t *ctables;             /* AHCI_MAX_SLOTS * AHCI_CT_SIZE */
	uint64_t page_phys;           /* command list + received FIS */
	uint64_t ct_phys;             /* command tables */
	uint8_t *logbuf;              /* 512 bytes: IDENTIFY, READ LOG EXT */
	uint64_t arena_phys;          /* all of the above, one allocation */
	uint8_t *bounce;              /* dma32: AHCI_MAX_SLOTS bounce buffers */
	uint64_t bounce_phys;

	/* identity and features from IDENTIFY DEVICE */
	uint16_t id[256];
	bool ncq, trim, fua_ext, gpl, wcache;
	unsigned nslots;              /* HBA slots (CAP.NCS + 1) */
	unsigned depth;               /* commands we keep in flight */

	/* command state */
	struct ahci_slot slot[AHCI_MAX_SLOTS];
	uint32_t used;                /* slots holding a request */
	uint32_t ncq_active;          /* issued NCQ slots */
	int nq_active;                /* issued non-queued slot, or -1 */
	uint8_t fifo[AHCI_MAX_SLOTS]; /* accepted, not yet issued, in order */
	unsigned fifo_head, fifo_count;
	bool polling;
	volatile bool recovering;
	volatile bool need_recovery;
	uint32_t err_is;              /* PxIS error bits that started recovery */
	bool dead;
	bool off;                     /* stopped for power-off */

	uint64_t last_done_ns;        /* last completion, for the stall report */
	bool stall_reported;

	/* counters for lsblk -v */
	uint64_t resets, timeouts, device_errors, retries, bounces;

	struct blk_dev blk;
};

struct ahci_hba {
	struct pci_dev *pci;
	unsigned index;               /* ahci0, ahci1, ... */
	volatile uint8_t *abar;
	uint32_t cap, cap2, pi, vs;
	int vector;                   /* MSI vector, or -1: polling only */
	bool dma32;                   /* every DMA address below 4 GiB */
	struct ahci_port *port[AHCI_MAX_PORTS];
	struct waitq wd_wait;         /* wakes the watchdog for recovery */
	uint64_t timeout_ns;          /* per command (blk_timeout_ms) */
};

/* Register accessors. */
static inline uint32_t ahci_rd(struct ahci_hba *h, uint32_t off)
{
	return *(volatile uint32_t *)(h->abar + off);
}
static inline void ahci_wr(struct ahci_hba *h, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(h->abar + off) = v;
}
static inline uint32_t ahci_prd(struct ahci_port *p, uint32_t off)
{
	return *(volatile uint32_t *)(p->regs + off);
}
static inline void ahci_pwr(struct ahci_port *p, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(p->regs + off) = v;
}

/* ahci.c */
int ahci_hba_init(struct ahci_hba *h);          /* handoff, reset, ports */
void ahci_hba_intr(void *arg);
int ahci_hba_start_watchdog(struct ahci_hba *h);
/* Power-off step (order 40): every disk port quiesced, FLUSH CACHE EXT,
 * port stopped. */
int ahci_shutdown_all(uint64_t deadline_ns);
/* Every HBA attached (ahci_pci.c), for the shutdown step. */
extern struct ahci_hba *ahci_hbas[];
extern unsigned ahci_nhba;
/* Wait up to timeout_us for (reg & mask) == want; 0 or -ETIMEDOUT. */
int ahci_wait(volatile uint8_t *base, uint32_t off, uint32_t mask, uint32_t want,
	      uint64_t timeout_us);

/* ahci_port.c */
/* Bring up a port whose link is up; 0 when it holds an ATA disk, -ENODEV
 * for ATAPI/other devices (reported, port left stopped), -errno on failure. */
int ahci_port_init(struct ahci_port *p);
int ahci_port_register(struct ahci_port *p, unsigned disk_index);
/* Reap completions (IRQ and polling); returns how many. */
int ahci_port_process(struct ahci_port *p);
/* Watchdog: timeouts and recovery. */
void ahci_port_watchdog(struct ahci_port *p);
/* Self-tests: called by recovery while it owns the port (after the
 * snapshot, before the reset), NULL normally. */
extern void (*ahci_recovery_test_hook)(struct ahci_port *p);
int ahci_port_stop(struct ahci_port *p);
int ahci_port_start(struct ahci_port *p);
/* Stop, COMRESET, wait for link and device, start; 0 or -errno. */
int ahci_port_reset(struct ahci_port *p);
/* Run one command in `slot` and spin until done (port idle otherwise):
 * 0, -EIO (device error, *tfd says why) or -ETIMEDOUT. */
int ahci_exec_polled(struct ahci_port *p, unsigned slot, uint8_t cmd, uint8_t feature,
		     uint64_t lba, uint16_t count, void *buf, uint32_t len, uint32_t *tfd);

/* ahci_port.c, exposed for the self-tests: fill a PRDT from segments
 * (splitting at physical discontinuities and at 4 MiB); returns the
 * number of entries or -E2BIG. */
int ahci_build_prdt(struct ahci_prd *prd, unsigned max, const struct blk_seg *segs,
		    unsigned nsegs);
void ahci_build_rw_fis(struct fis_h2d *f, bool write, bool ncq, bool fua, unsigned tag,
		       uint64_t lba, uint32_t count);
/* ATA strings: byte-swapped words, trailing blanks removed. */
void ahci_id_string(const uint16_t *id, unsigned word, unsigned nwords, char *out);
uint64_t ahci_id_capacity(const uint16_t *id);
uint32_t ahci_id_lba_size(const uint16_t *id);
/* Fill a DSM TRIM payload (512 bytes, 64 ranges); returns ranges used or
 * -E2BIG. */
int ahci_build_trim(uint64_t *payload, uint64_t lba, uint64_t count);

/* ahci_err.c */
/* "uncorrectable media error (status 0x51 error 0x40)" etc. */
void ahci_decode_tfd(uint32_t tfd, char *buf, size_t len);
/* Names of the set PxIS error bits and SError bits, appended to buf. */
void ahci_decode_is(uint32_t is, char *buf, size_t len);
void ahci_decode_serr(uint32_t serr, char *buf, size_t len);
/* Full reason for a failed command. */
void ahci_decode_error(uint32_t is, uint32_t tfd, uint32_t serr, char *buf, size_t len);
const char *ahci_sig_name(uint32_t sig);

#endif
