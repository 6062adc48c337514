/*
 * AHCI self-tests: the pure pieces (PRDT, FIS, TRIM payload, IDENTIFY
 * parsing, error decoding) against hand-computed values, and, when a SATA
 * disk is attached, a read-only round trip in interrupt and polling mode.
 */
#include "drivers/ahci/ahci.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/selftest.h"
#include "kernel/sync.h"
#include "kernel/time.h"

static bool ahci_test_contains(const char *s, const char *sub)
{
	size_t n = strlen(sub);

	for (; *s; s++)
		if (!strncmp(s, sub, n))
			return true;
	return false;
}

SELFTEST(ahci, prdt_direct_map)
{
	/* 12 MiB + 512 contiguous bytes: three full 4 MiB entries and a tail.
	 * Direct-map addresses are translated arithmetically and never
	 * touched, so no memory is needed (pmm has no 16 MiB blocks). */
	uint64_t phys = 0x1000000;
	static struct ahci_prd prd[8];
	struct blk_seg seg = { PHYS_TO_VIRT(phys), (12u << 20) + 512 };
	int n = ahci_build_prdt(prd, 8, &seg, 1);
	ST_EXPECT(n == 4);
	ST_EXPECT(prd[0].dba == (uint32_t)phys && prd[0].dbc == AHCI_PRD_MAX_BYTES - 1);
	ST_EXPECT(prd[3].dba == (uint32_t)(phys + (12u << 20)) && prd[3].dbc == 511);
	/* Two segments that touch physically merge into one entry. */
	struct blk_seg two[2] = { { PHYS_TO_VIRT(phys), 4096 }, { PHYS_TO_VIRT(phys + 4096), 8192 } };
	ST_EXPECT(ahci_build_prdt(prd, 8, two, 2) == 1 && prd[0].dbc == 12287);
	/* Not touching: two entries; and the table limit is enforced. */
	two[1].buf = PHYS_TO_VIRT(phys + 65536);
	ST_EXPECT(ahci_build_prdt(prd, 8, two, 2) == 2);
	ST_EXPECT(ahci_build_prdt(prd, 1, two, 2) == -E2BIG);
	/* Odd lengths cannot be described (PRD byte counts are even). */
	struct blk_seg odd = { PHYS_TO_VIRT(phys), 511 };
	ST_EXPECT(ahci_build_prdt(prd, 8, &odd, 1) == -EINVAL);
}

SELFTEST(ahci, prdt_kernel_image_pages)
{
	/* A buffer in the kernel image (not the direct map) is walked page by
	 * page; every entry must point at the physical page vmm reports. */
	static uint8_t buf[3 * 4096] __attribute__((aligned(4096)));
	static struct ahci_prd prd[8];
	struct blk_seg seg = { buf + 512, 2 * 4096 };
	int n = ahci_build_prdt(prd, 8, &seg, 1);
	uint32_t total = 0;

	ST_EXPECT(n >= 1 && n <= 3);
	ST_EXPECT(n > 0 && prd[0].dba == (uint32_t)vmm_virt_to_phys(buf + 512));
	for (int i = 0; i < n; i++)
		total += (prd[i].dbc & 0x3fffff) + 1;
	ST_EXPECT(total == 2 * 4096);
}

SELFTEST(ahci, fis_ncq_and_dma)
{
	struct fis_h2d f;

	ahci_build_rw_fis(&f, true, true, true, 7, 0x123456789abcULL, 0x0102);
	ST_EXPECT(f.type == FIS_TYPE_H2D && f.pmc == FIS_H2D_CMD);
	ST_EXPECT(f.command == ATA_CMD_WRITE_FPDMA);
	ST_EXPECT(f.feature_lo == 0x02 && f.feature_hi == 0x01);   /* count in FEATURE */
	ST_EXPECT(f.count_lo == 7 << 3);                           /* tag in COUNT */
	ST_EXPECT(f.device == (ATA_DEV_LBA | ATA_DEV_FUA));
	ST_EXPECT(f.lba0 == 0xbc && f.lba1 == 0x9a && f.lba2 == 0x78 && f.lba3 == 0x56 &&
		  f.lba4 == 0x34 && f.lba5 == 0x12);
	ahci_build_rw_fis(&f, false, false, false, 0, 5, 65536);
	ST_EXPECT(f.command == ATA_CMD_READ_DMA_EXT && f.count_lo == 0 && f.count_hi == 0);
	ahci_build_rw_fis(&f, true, false, true, 0, 5, 8);
	ST_EXPECT(f.command == ATA_CMD_WRITE_DMA_FUA_EXT && f.count_lo == 8);
}

SELFTEST(ahci, trim_payload)
{
	static uint64_t pl[64];

	ST_EXPECT(ahci_build_trim(pl, 100, 8) == 1);
	ST_EXPECT(pl[0] == (100ULL | 8ULL << 48) && pl[1] == 0);
	ST_EXPECT(ahci_build_trim(pl, 0, 0x10000) == 2);
	ST_EXPECT(pl[0] == 0xffffULL << 48 && pl[1] == (0xffffULL | 1ULL << 48));
	ST_EXPECT(ahci_build_trim(pl, 0, 64ULL * 0xffff) == 64);
	ST_EXPECT(ahci_build_trim(pl, 0, 64ULL * 0xffff + 1) == -E2BIG);
}

SELFTEST(ahci, identify_parse)
{
	static uint16_t id[256];
	char s[41];

	memset(id, 0, sizeof id);
	/* "QEMU HARDDISK" as ATA stores it: two characters per word, swapped. */
	const char *m = "QEMU HARDDISK                           ";
	for (int i = 0; i < 20; i++)
		id[ID_MODEL + i] = (uint16_t)((uint8_t)m[2 * i] << 8 | (uint8_t)m[2 * i + 1]);
	ahci_id_string(id, ID_MODEL, 20, s);
	ST_EXPECT(!strcmp(s, "QEMU HARDDISK"));
	id[ID_LBA28] = 0x1000;
	ST_EXPECT(ahci_id_capacity(id) == 0x1000);
	id[ID_CMDSET_83] = 1u << 10;
	id[ID_LBA48] = 0x0000; id[ID_LBA48 + 1] = 0x0020; id[ID_LBA48 + 2] = 1;
	ST_EXPECT(ahci_id_capacity(id) == 0x100200000ULL);
	ST_EXPECT(ahci_id_lba_size(id) == 512);
	id[ID_SECTOR_SIZE] = 0x4000 | (1u << 12);
	id[ID_LOG_SECTOR] = 2048;                  /* words */
	ST_EXPECT(ahci_id_lba_size(id) == 4096);
}

SELFTEST(ahci, error_decoding)
{
	char b[128];

	ahci_decode_tfd(0x4051, b, sizeof b);         /* ERR + UNC */
	ST_EXPECT(ahci_test_contains(b, "uncorrectable") && ahci_test_contains(b, "0x51") &&
		  ahci_test_contains(b, "0x40"));
	ahci_decode_tfd(0x0441, b, sizeof b);
	ST_EXPECT(ahci_test_contains(b, "aborted"));
	ahci_decode_tfd(0x1051, b, sizeof b);
	ST_EXPECT(ahci_test_contains(b, "ID not found"));
	ahci_decode_tfd(0x0080, b, sizeof b);
	ST_EXPECT(ahci_test_contains(b, "busy"));
	ahci_decode_error(AHCI_PxIS_TFES | AHCI_PxIS_HBFS, 0x0441, 0x00200000, b, sizeof b);
	ST_EXPECT(ahci_test_contains(b, "host bus fatal") && ahci_test_contains(b, "CRC error"));
	ahci_decode_error(AHCI_PxIS_TFES, 0x0441, 0, b, sizeof b);
	ST_EXPECT(ahci_test_contains(b, "aborted") && !ahci_test_contains(b, "SError"));
	ST_EXPECT(!strcmp(ahci_sig_name(AHCI_SIG_ATAPI), "ATAPI device"));
}

/* With a SATA disk present: read its first sectors in both completion
 * modes and expect identical data (read-only: never touches contents). */
SELFTEST(ahci, disk_read_irq_and_poll)
{
	struct blk_dev *d = blk_find("sata0");
	if (!d)
		ST_SKIP("no SATA disk sata0");
	uint8_t *a = kmalloc(65536), *b = kmalloc(65536);
	char err[96] = "";
	bool was = d->polling;
	uint32_t n = 65536 / d->lba_size;

	ST_EXPECT(a && b);
	if (!a || !b)
		goto out;
	memset(a, 0xaa, 65536);
	memset(b, 0x55, 65536);
	ST_EXPECT(blk_set_polling(d, false) == 0 || d->polling);
	ST_EXPECT(blk_read(d, 0, n, a, err, sizeof err) == 0);
	ST_EXPECT(blk_set_polling(d, true) == 0);
	ST_EXPECT(blk_read(d, 0, n, b, err, sizeof err) == 0);
	ST_EXPECT(!memcmp(a, b, 65536));
	/* Past the end is refused by the block layer before the driver. */
	ST_EXPECT(blk_read(d, d->nblocks, 1, a, err, sizeof err) == -ERANGE);
out:
	ST_EXPECT(blk_set_polling(d, was) == 0 || was == d->polling);
	kfree(a);
	kfree(b);
}

/* Queued reads with a non-queued FLUSH in the middle (read-only for the
 * data): the FLUSH must wait for the NCQ reads before it, the reads after
 * it must wait for the FLUSH, and every request must complete. */
static volatile unsigned ahci_test_done, ahci_test_errors;
static struct waitq ahci_test_wq = WAITQ_INIT("ahci test");

static void ahci_test_cb(struct blk_req *r)
{
	if (r->status)
		__atomic_fetch_add(&ahci_test_errors, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&ahci_test_done, 1, __ATOMIC_SEQ_CST);
	waitq_wake_all(&ahci_test_wq);
}

static bool ahci_test_all_done(void *arg)
{
	return ahci_test_done >= (unsigned)(uintptr_t)arg;
}

SELFTEST(ahci, ncq_reads_around_flush)
{
	struct blk_dev *d = blk_find("sata0");
	enum { N = 33 };
	static struct blk_req req[N];
	static struct blk_seg seg[N];
	if (!d)
		ST_SKIP("no SATA disk sata0");
	uint8_t *buf = kmalloc(N * 4096);
	ST_EXPECT(buf != NULL);
	if (!buf)
		return;
	ahci_test_done = ahci_test_errors = 0;
	unsigned submitted = 0;
	for (unsigned i = 0; i < N; i++) {
		seg[i].buf = buf + i * 4096;
		seg[i].len = 4096;
		if (i == N / 2)
			blk_req_init(&req[i], BLK_OP_FLUSH, 0, 0, NULL, 0, ahci_test_cb, NULL);
		else
			blk_req_init(&req[i], BLK_OP_READ, (uint64_t)i * 64, 4096 / d->lba_size,
				     &seg[i], 1, ahci_test_cb, NULL);
		if (blk_submit(d, &req[i]) == 0)
			submitted++;
	}
	ST_EXPECT(submitted == N);
	uint64_t deadline = time_ns() + 30 * NS_PER_S;
	while (ahci_test_done < submitted && time_ns() < deadline) {
		if (d->polling)
			blk_poll(d);
		else
			waitq_wait_until(&ahci_test_wq, ahci_test_all_done, (void *)(uintptr_t)submitted,
					 time_ns() + 10 * NS_PER_MS);
	}
	ST_EXPECT(ahci_test_done == submitted);
	ST_EXPECT(ahci_test_errors == 0);
	if (ahci_test_done == submitted)
		kfree(buf);                 /* else the driver may still write it */
}

/* A request submitted while recovery owns the port (ahci.h) must not take
 * a command slot or touch slot 0's command table (which recovery borrows
 * for READ LOG EXT); it waits in the block layer and runs once recovery
 * ends.  Read-only.  The hook submits from inside a real recovery, after
 * its snapshot and before the port reset. */
static struct {
	struct ahci_port *port;
	struct blk_req req;
	struct blk_seg seg;
	int submit_rc;
	uint32_t used_before, used_after;
	bool ct0_same, called;
	volatile int done;
} ahci_rt;
static uint8_t ahci_rt_ct0[AHCI_CT_PRDT_OFF + 16];

static void ahci_rt_done(struct blk_req *r)
{
	(void)r;
	__atomic_store_n(&ahci_rt.done, 1, __ATOMIC_SEQ_CST);
	waitq_wake_all(&ahci_test_wq);
}

static void ahci_rt_hook(struct ahci_port *p)
{
	if (p != ahci_rt.port || ahci_rt.called)
		return;
	ahci_rt.called = true;
	memcpy(ahci_rt_ct0, p->ctables, sizeof ahci_rt_ct0);
	ahci_rt.used_before = p->used;
	ahci_rt.submit_rc = blk_submit(&p->blk, &ahci_rt.req);
	ahci_rt.used_after = p->used;
	ahci_rt.ct0_same = !memcmp(ahci_rt_ct0, p->ctables, sizeof ahci_rt_ct0);
}

static bool ahci_rt_is_done(void *arg)
{
	(void)arg;
	return ahci_rt.done != 0;
}

SELFTEST(ahci, submit_during_recovery)
{
	struct blk_dev *d = blk_find("sata0");
	if (!d)
		return;
	struct ahci_port *p = d->driver_data;
	uint8_t *buf = kmalloc(4096), *ref = kmalloc(4096);
	char err[96];
	ST_EXPECT(buf && ref);
	if (!buf || !ref)
		goto out;
	ST_EXPECT(blk_read(d, 128, 4096 / d->lba_size, ref, err, sizeof err) == 0);
	memset(buf, 0xee, 4096);
	memset(&ahci_rt, 0, sizeof ahci_rt);
	ahci_rt.port = p;
	ahci_rt.seg = (struct blk_seg){ buf, 4096 };
	blk_req_init(&ahci_rt.req, BLK_OP_READ, 128, 4096 / d->lba_size, &ahci_rt.seg, 1, ahci_rt_done, NULL);
	uint64_t resets = p->resets;
	ahci_recovery_test_hook = ahci_rt_hook;
	uint64_t fl = spin_lock_irqsave(&p->lock);
	p->recovering = true;          /* as process() does on an error bit */
	p->need_recovery = true;
	ahci_pwr(p, AHCI_PxIE, 0);
	spin_unlock_irqrestore(&p->lock, fl);
	waitq_wake_all(&p->hba->wd_wait);
	uint64_t deadline = time_ns() + 30 * NS_PER_S;
	while (!ahci_rt.done && time_ns() < deadline) {
		if (d->polling)
			blk_poll(d);
		waitq_wait_until(&ahci_test_wq, ahci_rt_is_done, NULL, time_ns() + 10 * NS_PER_MS);
	}
	ahci_recovery_test_hook = NULL;
	ST_EXPECT(ahci_rt.called);
	ST_EXPECT(ahci_rt.submit_rc == 0);
	ST_EXPECT(ahci_rt.used_after == ahci_rt.used_before);   /* no slot taken */
	ST_EXPECT(ahci_rt.ct0_same);
	ST_EXPECT(p->resets == resets + 1);
	ST_EXPECT(ahci_rt.done && ahci_rt.req.status == 0);
	ST_EXPECT(ahci_rt.done && !memcmp(buf, ref, 4096));
	if (!ahci_rt.done)
		buf = NULL;                    /* the device may still own it */
out:
	kfree(buf);
	kfree(ref);
}

/* 32-bit DMA (CAP.S64A clear or boot argument ahci_dma32): a read into a
 * buffer above 4 GiB goes through the bounce buffer and lands intact; one
 * into low memory does not bounce.  On a scratch disk (scratch=sata0) also
 * a bounced write, read back (the last blocks of the disk are
 * overwritten).  Skipped, saying so, when the port has 64-bit DMA or the
 * machine has no memory above 4 GiB. */
SELFTEST(ahci, dma32_bounce)
{
	struct blk_dev *d = blk_find("sata0");
	if (!d)
		ST_SKIP("no sata0");
	struct ahci_port *p = d->driver_data;
	if (!p->hba->dma32)
		ST_SKIP("the HBA does 64-bit DMA (boot argument ahci_dma32 forces 32-bit)");
	enum { ORDER = 4, TRIES = 256 };
	static uint64_t got[TRIES];
	uint64_t high = 0, low = pmm_alloc_below(1ULL << 32, 1u << (ORDER + 1));
	unsigned n = 0;
	char err[96];
	while (n < TRIES && !high) {
		uint64_t a = pmm_alloc_pages(ORDER + 3);
		if (!a)
			break;
		if (a >= (1ULL << 32))
			high = a;
		else
			got[n++] = a;
	}
	for (unsigned i = 0; i < n; i++)
		pmm_free_pages(got[i], ORDER + 3);
	ST_EXPECT(low != 0);
	if (!high || !low) {
		selftest_skip("no memory above 4 GiB (give the machine more than 4 GiB)");
		goto out;
	}
	uint8_t *a = PHYS_TO_VIRT(low), *b = PHYS_TO_VIRT(high);
	uint32_t cnt = (4096u << ORDER) / d->lba_size;
	memset(a, 0x11, 4096u << ORDER);
	memset(b, 0x22, 4096u << ORDER);
	uint64_t before = p->bounces;
	ST_EXPECT(blk_read(d, 64, cnt, a, err, sizeof err) == 0);
	ST_EXPECT(p->bounces == before);
	ST_EXPECT(blk_read(d, 64, cnt, b, err, sizeof err) == 0);
	ST_EXPECT(p->bounces > before);
	ST_EXPECT(!memcmp(a, b, 4096u << ORDER));
	if (blk_is_scratch(d)) {
		/* Write from above 4 GiB (bounced in), read back below. */
		uint64_t lba = d->nblocks - 2 * cnt;
		for (unsigned i = 0; i < (4096u << ORDER); i++)
			b[i] = (uint8_t)(i * 7 + 3);
		before = p->bounces;
		ST_EXPECT(blk_write(d, lba, cnt, b, 0, err, sizeof err) == 0);
		ST_EXPECT(p->bounces > before);
		memset(a, 0, 4096u << ORDER);
		ST_EXPECT(blk_read(d, lba, cnt, a, err, sizeof err) == 0);
		ST_EXPECT(!memcmp(a, b, 4096u << ORDER));
	} else {
		kprintf("selftest: ahci: dma32_bounce: %s is not named as scratch: bounced writes not tested\n",
			d->name);
	}
	kprintf("selftest: ahci: dma32_bounce: I/O through 0x%llx bounced (%llu bounces)\n",
		(unsigned long long)high, (unsigned long long)p->bounces);
out:
	if (high)
		pmm_free_pages(high, ORDER + 3);
	if (low)
		pmm_free_pages(low, ORDER + 1);
}
