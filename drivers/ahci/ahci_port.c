/*
 * One AHCI port with an ATA disk: bring-up, IDENTIFY, command building and
 * issue.  Completion, timeouts and recovery are in ahci_io.c.
 *
 * Every accepted request takes a command slot (its NCQ tag) and goes on a
 * FIFO; ahci_port_kick() issues from the FIFO in order, obeying the one
 * ATA rule that matters: a non-queued command (DMA EXT, FLUSH, DSM) may
 * only be issued when nothing else is outstanding, and nothing may be
 * issued while it runs.
 */
#include "drivers/ahci/ahci.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/time.h"

#define AHCI_DIRECT_MAP_END (BOOT_HHDM_BASE + (1ULL << 46))  /* vmm.c MMIO_BASE */
#define AHCI_CT_ORDER 6    /* 32 slots * 8 KiB = 256 KiB */
/* One arena per port: page 0 command list + received FIS, page 1 the
 * IDENTIFY/log buffer, then the command tables (2^AHCI_CT_ORDER pages,
 * aligned so).  Below 4 GiB when the HBA needs it (ahci.h). */
#define AHCI_ARENA_PAGES (2u << AHCI_CT_ORDER)
#define AHCI_ARENA_ORDER (AHCI_CT_ORDER + 1)
#define AHCI_4G (1ULL << 32)

static struct ahci_cmd_hdr *ahci_hdr(struct ahci_port *p, unsigned slot)
{
	return &p->cmdlist[slot];
}

static uint8_t *ahci_ctab(struct ahci_port *p, unsigned slot)
{
	return p->ctables + (size_t)slot * AHCI_CT_SIZE;
}

static uint64_t ahci_phys(const void *va)
{
	uint64_t v = (uint64_t)va;

	if (v >= BOOT_HHDM_BASE && v < AHCI_DIRECT_MAP_END)
		return VIRT_TO_PHYS(va);
	return vmm_virt_to_phys(va);
}

/* ---- Pure builders (also used by the self-tests) ---- */

int ahci_build_prdt(struct ahci_prd *prd, unsigned max, const struct blk_seg *segs,
		    unsigned nsegs)
{
	unsigned n = 0;
	uint64_t prev_end = 0;

	for (unsigned s = 0; s < nsegs; s++) {
		const uint8_t *va = segs[s].buf;
		uint32_t left = segs[s].len;

		if (((uint64_t)va & 1) || (left & 1))
			return -EINVAL;            /* PRDs need word alignment */
		while (left) {
			uint64_t v = (uint64_t)va, phys;
			uint32_t chunk;

			if (v >= BOOT_HHDM_BASE && v < AHCI_DIRECT_MAP_END) {
				phys = v - BOOT_HHDM_BASE;
				chunk = left;
			} else {
				phys = vmm_virt_to_phys(va);
				if (!phys)
					return -EFAULT;
				chunk = (uint32_t)MIN((uint64_t)left, PAGE_SIZE - (v & (PAGE_SIZE - 1)));
			}
			while (chunk) {
				uint32_t piece = MIN(chunk, AHCI_PRD_MAX_BYTES);
				uint32_t cur = n ? (prd[n - 1].dbc & 0x3fffff) + 1 : 0;

				if (n && prev_end == phys && cur + piece <= AHCI_PRD_MAX_BYTES) {
					prd[n - 1].dbc = cur + piece - 1;
				} else {
					if (n == max)
						return -E2BIG;
					prd[n].dba = (uint32_t)phys;
					prd[n].dbau = (uint32_t)(phys >> 32);
					prd[n].rsvd = 0;
					prd[n].dbc = piece - 1;
					n++;
				}
				prev_end = phys + piece;
				phys += piece;
				va += piece;
				left -= piece;
				chunk -= piece;
			}
		}
	}
	return (int)n;
}

void ahci_build_rw_fis(struct fis_h2d *f, bool write, bool ncq, bool fua, unsigned tag,
		       uint64_t lba, uint32_t count)
{
	memset(f, 0, sizeof *f);
	f->type = FIS_TYPE_H2D;
	f->pmc = FIS_H2D_CMD;
	f->lba0 = (uint8_t)lba;
	f->lba1 = (uint8_t)(lba >> 8);
	f->lba2 = (uint8_t)(lba >> 16);
	f->lba3 = (uint8_t)(lba >> 24);
	f->lba4 = (uint8_t)(lba >> 32);
	f->lba5 = (uint8_t)(lba >> 40);
	f->device = ATA_DEV_LBA;
	if (ncq) {
		/* FPDMA QUEUED: count in FEATURE, tag in COUNT[7:3]. */
		f->command = write ? ATA_CMD_WRITE_FPDMA : ATA_CMD_READ_FPDMA;
		f->feature_lo = (uint8_t)count;
		f->feature_hi = (uint8_t)(count >> 8);
		f->count_lo = (uint8_t)(tag << 3);
		if (fua)
			f->device |= ATA_DEV_FUA;
	} else {
		f->command = !write ? ATA_CMD_READ_DMA_EXT :
			     fua ? ATA_CMD_WRITE_DMA_FUA_EXT : ATA_CMD_WRITE_DMA_EXT;
		f->count_lo = (uint8_t)count;      /* 65536 encodes as 0 */
		f->count_hi = (uint8_t)(count >> 8);
	}
}

int ahci_build_trim(uint64_t *payload, uint64_t lba, uint64_t count)
{
	int n = 0;

	memset(payload, 0, 512);
	while (count) {
		uint64_t len = MIN(count, 0xffffULL);

		if (n == 64)
			return -E2BIG;
		payload[n++] = (lba & 0xffffffffffffULL) | (len << 48);
		lba += len;
		count -= len;
	}
	return n;
}

void ahci_id_string(const uint16_t *id, unsigned word, unsigned nwords, char *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nwords; i++) {
		out[n++] = (char)(id[word + i] >> 8);
		out[n++] = (char)(id[word + i] & 0xff);
	}
	out[n] = 0;
	while (n && (out[n - 1] == ' ' || out[n - 1] == 0))
		out[--n] = 0;
	unsigned lead = 0;
	while (out[lead] == ' ')
		lead++;
	if (lead)
		memmove(out, out + lead, n - lead + 1);
}

uint64_t ahci_id_capacity(const uint16_t *id)
{
	if (id[ID_CMDSET_83] & (1u << 10))
		return (uint64_t)id[ID_LBA48] | (uint64_t)id[ID_LBA48 + 1] << 16 |
		       (uint64_t)id[ID_LBA48 + 2] << 32 | (uint64_t)id[ID_LBA48 + 3] << 48;
	return (uint64_t)id[ID_LBA28] | (uint64_t)id[ID_LBA28 + 1] << 16;
}

uint32_t ahci_id_lba_size(const uint16_t *id)
{
	uint16_t w = id[ID_SECTOR_SIZE];

	/* Valid when bit 14 set and bit 15 clear; bit 12: size in 117-118. */
	if ((w & 0xc000) == 0x4000 && (w & (1u << 12)))
		return 2 * ((uint32_t)id[ID_LOG_SECTOR] | (uint32_t)id[ID_LOG_SECTOR + 1] << 16);
	return 512;
}

/* ---- Port start/stop/reset (AHCI 10.1.2, 10.4.2) ---- */

int ahci_port_stop(struct ahci_port *p)
{
	uint32_t cmd = ahci_prd(p, AHCI_PxCMD);
	int r = 0;

	if (cmd & (AHCI_PxCMD_ST | AHCI_PxCMD_CR)) {
		ahci_pwr(p, AHCI_PxCMD, cmd & ~AHCI_PxCMD_ST);
		if (ahci_wait(p->regs, AHCI_PxCMD, AHCI_PxCMD_CR, 0, 500000) < 0) {
			kprintf("ahci%u port %u: command list did not stop (PxCMD.CR still set after 500 ms)\n",
				p->hba->index, p->index);
			r = -ETIMEDOUT;
		}
	}
	cmd = ahci_prd(p, AHCI_PxCMD);
	if (cmd & (AHCI_PxCMD_FRE | AHCI_PxCMD_FR)) {
		ahci_pwr(p, AHCI_PxCMD, cmd & ~AHCI_PxCMD_FRE);
		if (ahci_wait(p->regs, AHCI_PxCMD, AHCI_PxCMD_FR, 0, 500000) < 0) {
			kprintf("ahci%u port %u: FIS receive did not stop (PxCMD.FR still set after 500 ms)\n",
				p->hba->index, p->index);
			r = -ETIMEDOUT;
		}
	}
	return r;
}

/* Wait for the device to be idle, then set ST. */
int ahci_port_start(struct ahci_port *p)
{
	uint64_t t = p->hba->timeout_ns / 1000;

	ahci_pwr(p, AHCI_PxCMD, ahci_prd(p, AHCI_PxCMD) | AHCI_PxCMD_FRE);
	if (ahci_wait(p->regs, AHCI_PxTFD, ATA_SR_BSY | ATA_SR_DRQ, 0, MAX(t, 1000000ULL)) < 0) {
		char why[96];
		ahci_decode_tfd(ahci_prd(p, AHCI_PxTFD), why, sizeof why);
		kprintf("ahci%u port %u: device stays busy after reset: %s\n",
			p->hba->index, p->index, why);
		return -ETIMEDOUT;
	}
	ahci_pwr(p, AHCI_PxSERR, 0xffffffff);
	ahci_pwr(p, AHCI_PxIS, 0xffffffff);
	ahci_pwr(p, AHCI_PxIE, p->polling ? 0 : AHCI_PxIE_DEFAULT);
	ahci_pwr(p, AHCI_PxCMD, ahci_prd(p, AHCI_PxCMD) | AHCI_PxCMD_ST);
	return 0;
}

/* Stop, COMRESET, wait for the link and the device, start. */
int ahci_port_reset(struct ahci_port *p)
{
	uint32_t sctl;

	ahci_port_stop(p);
	sctl = ahci_prd(p, AHCI_PxSCTL) & ~0xfu;
	ahci_pwr(p, AHCI_PxSCTL, sctl | AHCI_SCTL_DET_COMRESET);
	time_delay_us(1100);          /* COMRESET must be held >= 1 ms */
	ahci_pwr(p, AHCI_PxSCTL, sctl);
	if (ahci_wait(p->regs, AHCI_PxSSTS, 0xf, AHCI_SSTS_DET_PRESENT, 1000000) < 0) {
		kprintf("ahci%u port %u: link did not come back after COMRESET (PxSSTS 0x%x)\n",
			p->hba->index, p->index, ahci_prd(p, AHCI_PxSSTS));
		return -EIO;
	}
	ahci_pwr(p, AHCI_PxSERR, 0xffffffff);
	return ahci_port_start(p);
}

/* ---- Polled commands (IDENTIFY at bring-up, READ LOG EXT in recovery) ---- */

int ahci_exec_polled(struct ahci_port *p, unsigned slot, uint8_t cmd, uint8_t feature,
		     uint64_t lba, uint16_t count, void *buf, uint32_t len, uint32_t *tfd)
{
	struct ahci_cmd_hdr *h = ahci_hdr(p, slot);
	struct fis_h2d *f = (struct fis_h2d *)ahci_ctab(p, slot);
	struct ahci_prd *prd = (struct ahci_prd *)(ahci_ctab(p, slot) + AHCI_CT_PRDT_OFF);
	uint64_t deadline, phys = buf ? ahci_phys(buf) : 0;

	ahci_build_rw_fis(f, false, false, false, 0, lba, count);
	f->command = cmd;
	f->feature_lo = feature;
	prd[0].dba = (uint32_t)phys;
	prd[0].dbau = (uint32_t)(phys >> 32);
	prd[0].rsvd = 0;
	prd[0].dbc = len - 1;
	h->flags = sizeof(struct fis_h2d) / 4;
	h->prdtl = buf && len ? 1 : 0;       /* FLUSH CACHE EXT: no data */
	h->prdbc = 0;
	ahci_pwr(p, AHCI_PxIS, 0xffffffff);
	__asm__ volatile("" ::: "memory");
	ahci_pwr(p, AHCI_PxCI, 1u << slot);
	deadline = time_ns() + p->hba->timeout_ns;
	for (;;) {
		uint32_t is = ahci_prd(p, AHCI_PxIS);
		*tfd = ahci_prd(p, AHCI_PxTFD);
		if (is & AHCI_PxIS_ERRORS)
			return -EIO;
		if (!(ahci_prd(p, AHCI_PxCI) & (1u << slot)))
			return 0;
		if (time_ns() > deadline) {
			kprintf("ahci%u port %u: polled command 0x%02x did not complete (PxCI 0x%x PxTFD 0x%x)\n",
				p->hba->index, p->index, cmd, ahci_prd(p, AHCI_PxCI), *tfd);
			return -ETIMEDOUT;
		}
		__builtin_ia32_pause();
	}
}

/* ---- Bring-up ---- */

static int ahci_port_alloc(struct ahci_port *p)
{
	uint64_t limit = p->hba->dma32 ? AHCI_4G : ~0ULL;

	p->arena_phys = pmm_alloc_below(limit, AHCI_ARENA_PAGES);
	if (!p->arena_phys)
		return -ENOMEM;
	if (p->hba->dma32) {
		p->bounce_phys = pmm_alloc_below(AHCI_4G, AHCI_MAX_SLOTS * AHCI_BOUNCE_BYTES / PAGE_SIZE);
		if (!p->bounce_phys)
			return -ENOMEM;
		p->bounce = PHYS_TO_VIRT(p->bounce_phys);
	}
	p->page_phys = p->arena_phys;
	p->ct_phys = p->arena_phys + ((uint64_t)PAGE_SIZE << AHCI_CT_ORDER);
	p->logbuf = (uint8_t *)PHYS_TO_VIRT(p->arena_phys + PAGE_SIZE);
	p->cmdlist = PHYS_TO_VIRT(p->page_phys);
	p->rfis = (uint8_t *)p->cmdlist + 1024;
	p->ctables = PHYS_TO_VIRT(p->ct_phys);
	memset(p->cmdlist, 0, PAGE_SIZE);
	/* Command tables are rewritten for every command: no memset (256 KiB
	 * cost ~90 ms of boot under TCG). */
	for (unsigned s = 0; s < AHCI_MAX_SLOTS; s++) {
		uint64_t ct = p->ct_phys + (uint64_t)s * AHCI_CT_SIZE;
		p->cmdlist[s].ctba = (uint32_t)ct;
		p->cmdlist[s].ctbau = (uint32_t)(ct >> 32);
	}
	return 0;
}

/* Only for a port whose command list and FIS receive are stopped: the
 * HBA may otherwise still write into this memory. */
static void ahci_port_free(struct ahci_port *p)
{
	if (p->arena_phys)
		pmm_free_pages(p->arena_phys, AHCI_ARENA_ORDER);
	if (p->bounce_phys)
		pmm_free_pages(p->bounce_phys, 9);
	_Static_assert(AHCI_MAX_SLOTS * AHCI_BOUNCE_BYTES == (PAGE_SIZE << 9), "bounce area is order 9");
	p->arena_phys = p->page_phys = p->ct_phys = p->bounce_phys = 0;
	p->logbuf = p->bounce = NULL;
}

KERNEL_ARG_FLAG(ahci_no_ncq, "AHCI: one command at a time, no native command queueing");

static int ahci_port_identify(struct ahci_port *p)
{
	uint32_t tfd = 0;
	int r = ahci_exec_polled(p, 0, ATA_CMD_IDENTIFY, 0, 0, 0, p->logbuf, 512, &tfd);

	if (r < 0) {
		char why[96];
		ahci_decode_tfd(tfd, why, sizeof why);
		kprintf("ahci%u port %u: IDENTIFY DEVICE failed: %s\n", p->hba->index, p->index,
			r == -ETIMEDOUT ? "timed out" : why);
		return r;
	}
	memcpy(p->id, p->logbuf, 512);
	const uint16_t *id = p->id;
	if (!(id[ID_CMDSET_83] & (1u << 10))) {
		kprintf("ahci%u port %u: disk has no 48-bit LBA, not supported\n",
			p->hba->index, p->index);
		return -ENOTSUP;
	}
	p->nslots = AHCI_CAP_NCS(p->hba->cap) + 1;
	p->ncq = (p->hba->cap & AHCI_CAP_SNCQ) && (id[ID_SATA_CAP] & (1u << 8)) &&
		 !arg_present("ahci_no_ncq");
	p->depth = p->ncq ? MIN((unsigned)(id[ID_QUEUE_DEPTH] & 0x1f) + 1, p->nslots) : 1;
	p->trim = id[ID_DSM] & 1;
	p->gpl = id[ID_CMDSET_84] & (1u << 5);
	p->fua_ext = id[ID_CMDSET_84] & (1u << 6);
	p->wcache = id[ID_CMDSET_85] & (1u << 5);
	return 0;
}

int ahci_port_init(struct ahci_port *p)
{
	struct ahci_hba *h = p->hba;
	uint32_t ssts, sig;
	int r;

	spin_init(&p->lock, "ahci port");
	p->nq_active = -1;
	ahci_port_stop(p);
	/* Staggered spin-up: the link only trains once SUD is set. */
	if (h->cap & AHCI_CAP_SSS)
		ahci_pwr(p, AHCI_PxCMD, ahci_prd(p, AHCI_PxCMD) | AHCI_PxCMD_SUD | AHCI_PxCMD_POD);
	ssts = ahci_prd(p, AHCI_PxSSTS);
	if (AHCI_SSTS_DET(ssts) == 1 || (h->cap & AHCI_CAP_SSS))   /* link still training */
		ahci_wait(p->regs, AHCI_PxSSTS, 0xf, AHCI_SSTS_DET_PRESENT, 20000);
	ssts = ahci_prd(p, AHCI_PxSSTS);
	if (AHCI_SSTS_DET(ssts) != AHCI_SSTS_DET_PRESENT) {
		kprintf("ahci%u port %u: empty\n", h->index, p->index);
		return -ENODEV;
	}
	if ((r = ahci_port_alloc(p)) < 0)
		goto fail;
	ahci_pwr(p, AHCI_PxCLB, (uint32_t)p->page_phys);
	ahci_pwr(p, AHCI_PxCLBU, (uint32_t)(p->page_phys >> 32));
	ahci_pwr(p, AHCI_PxFB, (uint32_t)(p->page_phys + 1024));
	ahci_pwr(p, AHCI_PxFBU, (uint32_t)((p->page_phys + 1024) >> 32));
	ahci_pwr(p, AHCI_PxSERR, 0xffffffff);
	p->polling = true;           /* IE stays 0 until registered */
	if ((r = ahci_port_start(p)) < 0)
		goto fail_stop;
	sig = ahci_prd(p, AHCI_PxSIG);
	if (sig != AHCI_SIG_ATA) {
		kprintf("ahci%u port %u: %s (signature 0x%08x), skipped\n", h->index, p->index,
			ahci_sig_name(sig), sig);
		r = -ENODEV;
		goto fail_stop;
	}
	if ((r = ahci_port_identify(p)) < 0)
		goto fail_stop;
	return 0;

fail_stop:
	if (ahci_port_stop(p) < 0) {
		/* The HBA may still fetch commands or post FISes into the
		 * port's memory: keep it (and the port struct) for good. */
		kprintf("ahci%u port %u: port did not stop; its memory stays allocated\n", h->index, p->index);
		return -EBUSY;
	}
fail:
	ahci_port_free(p);
	if (r != -ENODEV)
		kprintf("ahci%u port %u: bring-up failed: %s\n", h->index, p->index, strerror(r));
	return r;
}
