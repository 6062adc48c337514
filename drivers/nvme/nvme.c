/*
 * NVMe controller core, independent of the bus: enable/disable with CAP.TO
 * deadlines, the admin queue, Identify, I/O queue creation, namespaces, the
 * timeout watchdog and controller reset (see nvme_var.h for call order).
 */
#include "drivers/nvme/nvme_var.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/pci.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/initcall.h"

struct nvme_ctrl *nvme_ctrls;

static uint16_t nvme_admin_cid;
bool nvme_test_fail_reset;

/* Wait for CSTS.RDY == want within CAP.TO; CFS ends the wait early. */
static int nvme_wait_ready(struct nvme_ctrl *c, bool want)
{
	uint64_t deadline = time_ns() + c->ready_timeout_ns;

	for (;;) {
		uint32_t csts = nvme_read4(c, NVME_CSTS);
		if (csts == 0xffffffffu) {
			kprintf("%s: registers read all ones while waiting for CSTS.RDY=%d: device gone\n",
				c->name, want);
			return -ENODEV;
		}
		if (!!(csts & NVME_CSTS_RDY) == want)
			return 0;
		if (want && (csts & NVME_CSTS_CFS)) {
			kprintf("%s: controller fatal status while enabling (CSTS 0x%x)\n", c->name, csts);
			return -EIO;
		}
		if (time_ns() > deadline) {
			kprintf("%s: timed out after %llu ms waiting for CSTS.RDY=%d (CSTS 0x%x, CAP.TO)\n",
				c->name, (unsigned long long)(c->ready_timeout_ns / NS_PER_MS), want, csts);
			return -ETIMEDOUT;
		}
		if (sched_active())
			thread_sleep_ns(100 * NS_PER_US);
		else
			time_delay_us(100);
	}
}

static int nvme_disable(struct nvme_ctrl *c)
{
	uint32_t cc = nvme_read4(c, NVME_CC);

	if (!(cc & NVME_CC_EN) && !(nvme_read4(c, NVME_CSTS) & NVME_CSTS_RDY))
		return 0;
	/* EN=1 with RDY=0 means an enable is in progress: let it finish
	 * before clearing EN (the spec leaves the other order undefined). */
	if ((cc & NVME_CC_EN) && nvme_wait_ready(c, true) == -ENODEV)
		return -ENODEV;
	nvme_write4(c, NVME_CC, cc & ~NVME_CC_EN);
	return nvme_wait_ready(c, false);
}

/* Program the admin queue and enable; the admin rings must be empty. */
static int nvme_enable(struct nvme_ctrl *c)
{
	int err = nvme_disable(c);
	if (err)
		return err;
	nvme_queue_reset_ring(&c->admin);
	nvme_write4(c, NVME_AQA, ((uint32_t)(c->admin.depth - 1) << 16) | (c->admin.depth - 1u));
	nvme_write8(c, NVME_ASQ, c->admin.sq_phys);
	nvme_write8(c, NVME_ACQ, c->admin.cq_phys);
	nvme_write4(c, NVME_CC, NVME_CC_CSS_NVM | NVME_CC_MPS(0) | NVME_CC_AMS_RR |
				NVME_CC_IOSQES(6) | NVME_CC_IOCQES(4) | NVME_CC_EN);
	return nvme_wait_ready(c, true);
}

int nvme_admin(struct nvme_ctrl *c, struct nvme_sqe *sqe, struct nvme_cqe *out, const char *what)
{
	struct nvme_queue *q = &c->admin;
	uint64_t start = time_ns(), deadline = start + c->timeout_ns;
	int err = -ETIMEDOUT;

	mutex_lock(&c->admin_lock);
	/* Timed-out commands stay in the ring until they complete late or a
	 * reset empties it: never write over one. */
	if ((uint16_t)((q->sq_tail - q->sq_head + q->depth) % q->depth) >= q->depth - 1u) {
		mutex_unlock(&c->admin_lock);
		kprintf("%s: admin command %s not sent: the admin queue is full of commands that timed out\n",
			c->name, what);
		return -EBUSY;
	}
	uint16_t cid = ++nvme_admin_cid;
	sqe->cid = cid;
	q->sq[q->sq_tail] = *sqe;
	if (++q->sq_tail == q->depth)
		q->sq_tail = 0;
	__asm__ volatile("" ::: "memory");
	/* Admin doorbells always go to MMIO (rare, polled); the shadow slot
	 * is kept equal, as the spec asks of a host using shadow doorbells. */
	if (q->sq_shadow)
		*q->sq_shadow = q->sq_tail;
	*q->sq_db = q->sq_tail;
	for (;;) {
		volatile struct nvme_cqe *cqe = &q->cq[q->cq_head];
		if ((cqe->status & 1) == q->phase) {
			struct nvme_cqe got = *(struct nvme_cqe *)cqe;
			if (got.sqhd < q->depth)
				q->sq_head = got.sqhd;
			if (++q->cq_head == q->depth) {
				q->cq_head = 0;
				q->phase ^= 1;
			}
			if (q->cq_shadow)
				*q->cq_shadow = q->cq_head;
			*q->cq_db = q->cq_head;
			if (got.cid != cid)
				continue;          /* late completion of a timed-out command */
			if (out)
				*out = got;
			uint16_t sf = got.status >> 1;
			if (sf) {
				char why[96];
				nvme_status_decode(why, sizeof(why), sf);
				kprintf("%s: %s failed: %s\n", c->name, what, why);
				err = nvme_status_errno(sf) ? nvme_status_errno(sf) : -EIO;
			} else {
				err = 0;
			}
			break;
		}
		if (time_ns() > deadline) {
			kprintf("%s: admin command %s (opcode 0x%02x) timed out after %llu ms\n", c->name,
				what, sqe->opcode, (unsigned long long)(c->timeout_ns / NS_PER_MS));
			break;
		}
		if (time_ns() - start < 2 * NS_PER_MS || !sched_active())
			__builtin_ia32_pause();
		else
			thread_sleep_ns(200 * NS_PER_US);
	}
	mutex_unlock(&c->admin_lock);
	return err;
}

static int nvme_identify(struct nvme_ctrl *c, uint8_t cns, uint32_t nsid, const char *what)
{
	struct nvme_sqe sqe = { .opcode = NVME_ADM_IDENTIFY, .nsid = nsid };
	sqe.prp1 = c->idbuf_phys;
	sqe.cdw10 = cns;
	return nvme_admin(c, &sqe, NULL, what);
}

static void nvme_copy_ascii(char *dst, const uint8_t *src, unsigned n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == 0))
		dst[--n] = 0;
}

static int nvme_identify_ctrl(struct nvme_ctrl *c)
{
	int err = nvme_identify(c, NVME_CNS_CTRL, 0, "Identify Controller");
	if (err)
		return err;
	const uint8_t *id = c->idbuf;
	nvme_copy_ascii(c->serial, id + NVME_IDC_SN, 20);
	nvme_copy_ascii(c->model, id + NVME_IDC_MN, 40);
	nvme_copy_ascii(c->firmware, id + NVME_IDC_FR, 8);
	c->mdts = id[NVME_IDC_MDTS];
	c->oncs = (uint16_t)(id[NVME_IDC_ONCS] | id[NVME_IDC_ONCS + 1] << 8);
	c->vwc = id[NVME_IDC_VWC];
	c->oacs = (uint16_t)(id[NVME_IDC_OACS] | id[NVME_IDC_OACS + 1] << 8);
	memcpy(&c->rtd3e_us, id + NVME_IDC_RTD3E, 4);
	memcpy(&c->nn, id + NVME_IDC_NN, 4);
	/* MDTS is in units of the minimum page size (4 KiB here); 0 = no limit. */
	c->max_transfer = NVME_MAX_XFER;
	if (c->mdts && c->mdts < 20 && (4096u << c->mdts) < c->max_transfer)
		c->max_transfer = 4096u << c->mdts;
	return 0;
}

static int nvme_create_io_queue(struct nvme_ctrl *c, struct nvme_queue *q)
{
	struct nvme_sqe sqe = { .opcode = NVME_ADM_CREATE_CQ };
	int err;

	sqe.prp1 = q->cq_phys;
	sqe.cdw10 = q->id | ((uint32_t)(q->depth - 1) << 16);
	sqe.cdw11 = NVME_CQ_PC;
	if (q->vector >= 0)
		sqe.cdw11 |= NVME_CQ_IEN | ((uint32_t)q->msix_entry << 16);
	if ((err = nvme_admin(c, &sqe, NULL, "Create I/O Completion Queue")))
		return err;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = NVME_ADM_CREATE_SQ;
	sqe.prp1 = q->sq_phys;
	sqe.cdw10 = q->id | ((uint32_t)(q->depth - 1) << 16);
	sqe.cdw11 = NVME_SQ_PC | ((uint32_t)q->id << 16);
	return nvme_admin(c, &sqe, NULL, "Create I/O Submission Queue");
}

/* Set Features Number of Queues: how many I/O queues we may create. */
static int nvme_negotiate_queues(struct nvme_ctrl *c, unsigned want, unsigned *got)
{
	struct nvme_sqe sqe = { .opcode = NVME_ADM_SET_FEATURES };
	struct nvme_cqe cqe;

	sqe.cdw10 = NVME_FEAT_NUM_QUEUES;
	sqe.cdw11 = (want - 1) | ((uint32_t)(want - 1) << 16);
	int err = nvme_admin(c, &sqe, &cqe, "Set Features (Number of Queues)");
	if (err)
		return err;
	unsigned nsq = (cqe.dw0 & 0xffff) + 1, ncq = (cqe.dw0 >> 16) + 1;
	*got = MIN(want, MIN(nsq, ncq));
	return 0;
}

KERNEL_ARG_FLAG(nvme_shadow_db, "NVMe: use shadow doorbells (Doorbell Buffer Config) where the controller has them");

/* Shadow doorbells, on a freshly enabled controller (at attach and after
 * every reset: CC.EN cleared forgets the buffers), only with the boot
 * argument nvme_shadow_db: under qemu/TCG they did not cut the MMIO
 * doorbell writes of our I/O path (batches already take one doorbell, and
 * an idle controller asks for every one), so they are off by default
 * (numbers in docs/peer.md, "Shadow doorbells").  Both pages are zeroed
 * first: queues created afterwards start at index 0, and a stale shadow
 * tail from before the reset would make the controller fetch old SQEs.
 * Any failure leaves MMIO doorbells, which always work. */
static void nvme_dbbuf_setup(struct nvme_ctrl *c)
{
	const char *why = NULL;

	c->dbbuf_on = false;
	if (!arg_present("nvme_shadow_db"))
		why = "";                                /* the default: nothing to say */
	else if (!(c->oacs & NVME_OACS_DBBUF))
		why = "not supported (OACS bit 8 clear)";
	else if (!c->dbbuf_phys && !(c->dbbuf_phys = pmm_alloc_pages(1)))
		why = "no memory for the buffers";
	if (!why) {
		struct nvme_sqe sqe = { .opcode = NVME_ADM_DBBUF_CONFIG };
		memset(PHYS_TO_VIRT(c->dbbuf_phys), 0, 2 * 4096);
		sqe.prp1 = c->dbbuf_phys;                /* shadow doorbells */
		sqe.prp2 = c->dbbuf_phys + 4096;         /* EventIdx */
		if (nvme_admin(c, &sqe, NULL, "Doorbell Buffer Config") == 0)
			c->dbbuf_on = true;
		else
			why = "Doorbell Buffer Config failed";
	}
	if (why && why[0] && c->state == NVME_ENABLING)
		kprintf("%s: shadow doorbells %s: MMIO doorbells only\n", c->name, why);
	else if (why && why[0])
		kprintf("%s: shadow doorbells after reset: %s: MMIO doorbells only\n", c->name, why);
	else if (!why && c->state == NVME_ENABLING)
		kprintf("%s: shadow doorbells on (nvme_shadow_db)\n", c->name);
	nvme_queue_shadow(c, &c->admin);
	for (unsigned i = 0; i < c->nqueues; i++)
		nvme_queue_shadow(c, &c->io[i]);
}

static int nvme_create_io_queues(struct nvme_ctrl *c)
{
	unsigned got;
	int err = nvme_negotiate_queues(c, c->nqueues, &got);
	if (err)
		return err;
	nvme_dbbuf_setup(c);
	if (got < c->nqueues) {
		kprintf("%s: controller grants %u I/O queues of %u\n", c->name, got, c->nqueues);
		if (c->state != NVME_ENABLING)
			return -EIO;     /* after a reset the count must not shrink */
		c->nqueues = got;
	}
	for (unsigned i = 0; i < c->nqueues; i++) {
		nvme_queue_reset_ring(&c->io[i]);
		if ((err = nvme_create_io_queue(c, &c->io[i])))
			return err;
	}
	return 0;
}

void nvme_mask_irqs(struct nvme_ctrl *c, bool masked)
{
	if (c->irqs_masked == masked)
		return;
	c->irqs_masked = masked;
	if (c->shared_vector && c->pci && !c->pci->msix_cap) {
		/* Plain MSI: INTMS/INTMC mask vector 0 (not used with MSI-X). */
		nvme_write4(c, masked ? NVME_INTMS : NVME_INTMC, 1);
		return;
	}
	for (unsigned i = 0; i < c->nqueues; i++)
		if (c->io[i].vector >= 0 && c->pci)
			pci_msix_mask(c->pci, c->io[i].msix_entry, masked);
}

/* 0 when registered; -ENOENT inactive, -ENODEV not selected by config.txt
 * "disks", -ENOTSUP unusable format, other -errno on failure (each but
 * -ENOENT printed). */
void nvme_mask_queue_irq(struct nvme_ctrl *c, struct nvme_queue *q, bool masked)
{
	if (c->shared_vector && c->pci && !c->pci->msix_cap)
		nvme_write4(c, masked ? NVME_INTMS : NVME_INTMC, 1);
	else if (q->vector >= 0 && c->pci)
		pci_msix_mask(c->pci, q->msix_entry, masked);
}

static int nvme_ns_attach(struct nvme_ctrl *c, uint32_t nsid)
{
	char name[16];
	ksnprintf(name, sizeof(name), "%sn%u", c->name, nsid);
	int err = nvme_identify(c, NVME_CNS_NS, nsid, "Identify Namespace");
	if (err)
		return err;
	const uint8_t *id = c->idbuf;
	uint64_t nsze;
	memcpy(&nsze, id + NVME_IDN_NSZE, 8);
	if (nsze == 0)
		return -ENOENT;                 /* inactive */
	if (!blk_selected(name))
		return -ENODEV;
	unsigned fmt = id[NVME_IDN_FLBAS] & 0xf;
	uint32_t lbaf;
	memcpy(&lbaf, id + NVME_IDN_LBAF + 4 * fmt, 4);
	unsigned ms = lbaf & 0xffff, lbads = (lbaf >> 16) & 0xff, dps = id[NVME_IDN_DPS] & 7;
	if (ms || dps) {
		kprintf("%s: LBA format %u carries %u bytes of metadata (protection type %u): not supported, skipped\n",
			name, fmt, ms, dps);
		return -ENOTSUP;
	}
	if (lbads != 9 && lbads != 12) {
		kprintf("%s: LBA size 2^%u bytes not supported (512 or 4096 only), skipped\n", name, lbads);
		return -ENOTSUP;
	}
	if (c->nns == NVME_MAX_NS) {
		kprintf("%s: more than %u namespaces, skipped\n", name, NVME_MAX_NS);
		return -ENOSPC;
	}
	bool wce = false;
	if (c->vwc & 1) {
		struct nvme_sqe sqe = { .opcode = NVME_ADM_GET_FEATURES, .nsid = nsid };
		struct nvme_cqe cqe;
		sqe.cdw10 = NVME_FEAT_VWC;
		wce = nvme_admin(c, &sqe, &cqe, "Get Features (Volatile Write Cache)") == 0 && (cqe.dw0 & 1);
	}
	struct nvme_ns *ns = kzalloc(sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->ctrl = c;
	ns->nsid = nsid;
	struct blk_dev *b = &ns->blk;
	strlcpy(b->name, name, sizeof(b->name));
	strlcpy(b->model, c->model, sizeof(b->model));
	strlcpy(b->serial, c->serial, sizeof(b->serial));
	strlcpy(b->firmware, c->firmware, sizeof(b->firmware));
	b->lba_size = 1u << lbads;
	b->nblocks = nsze;
	b->max_transfer = c->max_transfer;
	b->max_segments = (uint16_t)(c->max_transfer / 4096 + 1);
	b->virt_boundary = 4096;
	if (c->oncs & NVME_ONCS_DSM)      /* qemu caps a range at ~2 GiB */
		b->max_discard_blocks = (1u << 30) >> lbads;
	if (c->oncs & NVME_ONCS_WRITE_ZEROES)
		b->max_write_zeroes_blocks = 65536;    /* NLB is 16 bits */
	b->write_cache = wce;
	/* qemu's NVMe model (1b36:0010, 7.2) accepts the FUA bit and drops
	 * it: the write reaches its block layer without FUA, so it is not
	 * durable until the next flush.  Not claiming FUA there makes the
	 * block layer send write + flush instead (tests/qemu/test_fs_powercut.py
	 * sees the difference in the write log). */
	b->fua = !(c->pci && c->pci->vendor == 0x1b36 && c->pci->device == 0x0010);
	b->nqueues = c->nqueues;
	b->queue_depth = c->io[0].depth - 1u;
	b->ops = &nvme_blk_ops;
	b->driver_data = ns;
	err = blk_register(b);
	if (err) {
		kprintf("%s: block layer registration failed: %s\n", name, strerror(err));
		kfree(ns);
		return err;
	}
	c->ns[c->nns++] = ns;
	if (c->nvec == 0) {
		/* No vector: polling is the only mode (nvme_set_interrupts
		 * counts the namespace in npolling). */
		err = blk_set_polling(b, true);
		if (err)
			kprintf("%s: cannot switch to polling: %s; I/O will not complete\n", name, strerror(err));
	}
	kprintf("%s: %llu x %u B (%llu MiB), write cache %s\n", name, (unsigned long long)nsze,
		b->lba_size, (unsigned long long)((nsze << lbads) >> 20), wce ? "on" : c->vwc ? "off" : "none");
	return 1;
}

static int nvme_namespaces(struct nvme_ctrl *c)
{
	uint32_t *list = kmalloc(4096);
	unsigned n = 0;

	if (!list)
		return -ENOMEM;

	/* Active NSID list (CNS 02h) since NVMe 1.1; before that, 1..NN. */
	if (c->vs >= 0x10100 && nvme_identify(c, NVME_CNS_ACTIVE_NSIDS, 0, "Identify Active Namespace List") == 0) {
		memcpy(list, c->idbuf, 4096);
		while (n < 1024 && list[n])
			n++;
	} else {
		for (uint32_t i = 1; i <= c->nn && n < 1024; i++)
			list[n++] = i;
	}
	for (unsigned i = 0; i < n; i++)
		nvme_ns_attach(c, list[i]);     /* prints its own failures */
	if (!c->nns)
		kprintf("%s: no usable namespace (%u listed)\n", c->name, n);
	kfree(list);
	return 0;
}

static int nvme_reset_locked(struct nvme_ctrl *c, const char *why);

int nvme_reset(struct nvme_ctrl *c, const char *why)
{
	mutex_lock(&c->reset_lock);
	int err = c->state == NVME_DEAD || c->state == NVME_OFF ? -ENODEV : nvme_reset_locked(c, why);
	mutex_unlock(&c->reset_lock);
	return err;
}

static int nvme_reset_locked(struct nvme_ctrl *c, const char *why)
{
	uint64_t t0 = time_ns();
	kprintf("%s: resetting controller: %s\n", c->name, why);
	c->resets++;
	c->state = NVME_RESETTING;
	for (unsigned i = 0; i < c->nqueues; i++) {
		uint64_t fl = spin_lock_irqsave(&c->io[i].lock);
		c->io[i].held = true;
		spin_unlock_irqrestore(&c->io[i].lock, fl);
	}
	/* Disabling drops every queue and every command in the controller,
	 * and its shadow doorbell buffers: MMIO only until they are set up
	 * again (nvme_create_io_queues). */
	mutex_lock(&c->admin_lock);
	c->dbbuf_on = false;
	nvme_queue_shadow(c, &c->admin);
	int err = nvme_test_fail_reset ? -ETIMEDOUT : nvme_enable(c);
	mutex_unlock(&c->admin_lock);
	if (!err)
		err = nvme_create_io_queues(c);
	if (err) {
		char reason[96];
		ksnprintf(reason, sizeof(reason), "%s: controller did not come back after reset (%s)", c->name,
			  strerror(err));
		kprintf("%s\n", reason);
		/* The controller may still hold commands whose buffers the
		 * callers free once we fail them: stop its DMA first. */
		if (c->pci)
			pci_set_bus_master(c->pci, false);
		for (unsigned i = 0; i < c->nns; i++)
			blk_set_dead(&c->ns[i]->blk, reason);
		unsigned nfailed = 0;
		for (unsigned i = 0; i < c->nqueues; i++)
			nfailed += nvme_queue_fail_all(&c->io[i], NVME_DEAD, reason);
		__atomic_store_n(&c->state, NVME_DEAD, __ATOMIC_RELEASE);   /* also with no queues */
		kprintf("%s: bus mastering off, %u in-flight commands failed\n", c->name, nfailed);
		return err;
	}
	c->state = NVME_LIVE;
	uint64_t fl = spin_lock_irqsave(&c->mode_lock);
	if (c->irqs_masked) {                   /* masking state survives the reset */
		c->irqs_masked = false;
		nvme_mask_irqs(c, true);
	}
	spin_unlock_irqrestore(&c->mode_lock, fl);
	for (unsigned i = 0; i < c->nqueues; i++)
		nvme_queue_resubmit(&c->io[i]);
	kprintf("%s: reset done in %llu ms\n", c->name, (unsigned long long)((time_ns() - t0) / NS_PER_MS));
	return 0;
}

static void nvme_watchdog(void *arg)
{
	struct nvme_ctrl *c = arg;

	for (;;) {
		thread_sleep_ns(c->tick_ns);
		if (c->state == NVME_LIVE)
			nvme_watchdog_scan(c);
	}
}

void nvme_describe(struct blk_dev *dev)
{
	struct nvme_ns *ns = dev->driver_data;
	struct nvme_ctrl *c = ns->ctrl;

	kprintf("  %s: NVMe %u.%u, firmware %s, MDTS %u (%u KiB), %u namespace(s), NSID %u\n", c->name,
		c->vs >> 16, (c->vs >> 8) & 0xff, c->firmware, c->mdts, c->max_transfer / 1024, c->nns, ns->nsid);
	kprintf("  ONCS 0x%x (write zeroes %s, deallocate %s), VWC %u, doorbell stride %u, ready timeout %llu ms\n",
		c->oncs, (c->oncs & NVME_ONCS_WRITE_ZEROES) ? "yes" : "no", (c->oncs & NVME_ONCS_DSM) ? "yes" : "no",
		c->vwc & 1, c->dstrd, (unsigned long long)(c->ready_timeout_ns / NS_PER_MS));
	kprintf("  shadow doorbells: %s\n",
		!c->dbbuf_on ? ((c->oacs & NVME_OACS_DBBUF) ? "off (supported: boot argument nvme_shadow_db)" :
				"not supported") :
		c->dbbuf_mmio ? "on, MMIO on every doorbell (nvme shadow off)" : "on");
	kprintf("  %u I/O queue(s) x %u, %s, command timeout %llu ms; timeouts %llu, aborts %llu, resets %llu\n",
		c->nqueues, c->io[0].depth - 1u,
		c->nvec == 0 ? "polled only" : c->shared_vector ? "one shared vector" : "MSI-X vector per queue",
		(unsigned long long)(c->timeout_ns / NS_PER_MS), (unsigned long long)c->timeouts,
		(unsigned long long)c->aborts, (unsigned long long)c->resets);
	for (unsigned i = 0; i < c->nqueues; i++) {
		struct nvme_queue *q = &c->io[i];
		kprintf("  queue %u: vector %d (MSI-X entry %u), %llu submitted, %llu completed, %llu interrupts, "
			"%u in flight\n",
			q->id, q->vector, q->msix_entry, (unsigned long long)q->submits,
			(unsigned long long)q->completions, (unsigned long long)q->irqs,
			(unsigned)(q->depth - 1u - q->nfree));
		kprintf("    MMIO doorbells: %llu SQ, %llu CQ; %llu left to the shadow buffer; "
			"watchdog: %llu late commits, %llu nudges\n",
			(unsigned long long)q->sq_doorbells, (unsigned long long)q->cq_doorbells,
			(unsigned long long)q->db_skipped, (unsigned long long)q->late_commits,
			(unsigned long long)q->db_nudges);
	}
}

static uint64_t nvme_timeout_arg(void)
{
	const char *s = arg_get("blk_timeout_ms");
	unsigned long long ms;

	if (s && parse_u64(s, &ms) == 0 && ms > 0)
		return ms * NS_PER_MS;
	return 5 * NS_PER_S;
}

int nvme_attach(struct nvme_ctrl *c)
{
	int err;

	c->cap = nvme_read8(c, NVME_CAP);
	c->vs = nvme_read4(c, NVME_VS);
	if (c->cap == ~0ULL) {
		kprintf("%s: registers read all ones: device not responding\n", c->name);
		return -ENODEV;
	}
	c->dstrd = 4u << NVME_CAP_DSTRD(c->cap);
	c->ready_timeout_ns = (uint64_t)MAX(NVME_CAP_TO(c->cap), 1u) * 500 * NS_PER_MS;
	c->timeout_ns = nvme_timeout_arg();
	c->tick_ns = MAX(MIN(c->timeout_ns / 4, 250 * NS_PER_MS), 10 * NS_PER_MS);
	if (!NVME_CAP_CSS_NVM(c->cap) || NVME_CAP_MPSMIN(c->cap) != 0) {
		kprintf("%s: needs the NVM command set and 4 KiB pages (CAP 0x%llx)\n", c->name,
			(unsigned long long)c->cap);
		return -ENOTSUP;
	}
	c->state = NVME_ENABLING;
	mutex_init(&c->admin_lock, "nvme-admin");
	mutex_init(&c->reset_lock, "nvme-reset");
	spin_init(&c->mode_lock, "nvme-mode");
	c->idbuf_phys = pmm_alloc_pages(0);
	if (!c->idbuf_phys)
		return -ENOMEM;
	c->idbuf = PHYS_TO_VIRT(c->idbuf_phys);
	if ((err = nvme_queue_alloc(c, &c->admin, 0, NVME_ADMIN_DEPTH)))
		goto fail_id;
	if ((err = nvme_enable(c)))
		goto fail_admin;
	if ((err = nvme_identify_ctrl(c)))
		goto fail_disable;

	/* One queue per CPU when there is an MSI-X vector for each (entry 0
	 * stays the admin queue's), else one queue shared by every CPU. */
	unsigned want = 1;
	if (c->nvec == 0)                       /* polled: no vector limit */
		want = MIN(ncpus_online, (unsigned)NVME_MAX_QUEUES);
	else if (c->nvec > 1)
		want = MIN(MIN(ncpus_online, c->nvec - 1), (unsigned)NVME_MAX_QUEUES);
	c->shared_vector = c->nvec == 1;
	c->nqueues = want;
	unsigned depth = MIN((unsigned)NVME_IO_DEPTH, NVME_CAP_MQES(c->cap) + 1);
	for (unsigned i = 0; i < want; i++) {
		if ((err = nvme_queue_alloc(c, &c->io[i], (uint16_t)(i + 1), (uint16_t)depth)))
			goto fail_disable;
		c->io[i].msix_entry = c->shared_vector ? 0 : i + 1;
	}
	if (c->nvec && c->intr_setup && (err = c->intr_setup(c))) {
		kprintf("%s: interrupt setup failed (%s), polling only\n", c->name, strerror(err));
		c->nvec = 0;
		c->shared_vector = false;
		for (unsigned i = 0; i < want; i++)
			c->io[i].vector = -1;
	}
	if ((err = nvme_create_io_queues(c)))
		goto fail_disable;
	c->state = NVME_LIVE;
	kprintf("%s: %s, serial %s, firmware %s, NVMe %u.%u, %u I/O queue(s) x %u, max transfer %u KiB, %s\n",
		c->name, c->model, c->serial, c->firmware, c->vs >> 16, (c->vs >> 8) & 0xff, c->nqueues,
		depth - 1, c->max_transfer / 1024,
		c->nvec == 0 ? "polling only" : c->shared_vector ? "one interrupt vector" : "an MSI-X vector per queue");

	err = nvme_namespaces(c);
	c->next = nvme_ctrls;
	nvme_ctrls = c;
	if (!thread_create("nvme-watchdog", nvme_watchdog, c, THREAD_ANY_CPU))
		kprintf("%s: no watchdog thread: command timeouts will not be detected\n", c->name);
	return err;

fail_disable:
	if (nvme_disable(c) && c->pci) {
		kprintf("%s: controller did not disable; bus mastering turned off instead\n", c->name);
		pci_set_bus_master(c->pci, false);
	}
fail_admin:
	/* Queue memory stays allocated: the controller may still DMA into it
	 * if disabling failed, and attach failures are rare and final. */
fail_id:
	kprintf("%s: attach failed: %s\n", c->name, strerror(err));
	return err;
}

/*
 * Power-off (NVMe 2.0 base spec 3.6.2, "normal shutdown"): stop taking
 * I/O, let what is in flight finish, set CC.SHN = 01b and wait for
 * CSTS.SHST = 10b.  The controller then has written its volatile cache
 * and metadata to media.  The wait is bounded by the controller's own
 * RTD3 entry latency (RTD3E, at least NVME_SHUTDOWN_MIN_NS when it gives
 * none or less) and by the shutdown step's deadline; every controller gets
 * its SHN before any is waited for.
 */
#define NVME_SHUTDOWN_MIN_NS (5 * NS_PER_S)

/* Refuse new I/O and wait (bounded) for the in-flight commands; fail
 * what is left.  reset_lock held. */
static void nvme_shutdown_quiesce(struct nvme_ctrl *c, uint64_t deadline)
{
	for (unsigned i = 0; i < c->nqueues; i++) {
		uint64_t fl = spin_lock_irqsave(&c->io[i].lock);
		__atomic_store_n(&c->state, NVME_OFF, __ATOMIC_RELEASE);
		spin_unlock_irqrestore(&c->io[i].lock, fl);
	}
	for (;;) {
		unsigned busy = 0;
		for (unsigned i = 0; i < c->nqueues; i++) {
			nvme_queue_commit(&c->io[i]);
			nvme_queue_reap(&c->io[i]);
			busy += c->io[i].depth - 1u - c->io[i].nfree;
		}
		if (!busy || time_ns() >= deadline)
			break;
		thread_sleep_ns(NS_PER_MS);
	}
	unsigned left = 0;
	for (unsigned i = 0; i < c->nqueues; i++)
		left += nvme_queue_fail_all(&c->io[i], NVME_OFF, "controller shut down for power-off");
	if (left)
		kprintf("%s: %u commands still in flight at power-off were failed\n", c->name, left);
}

static int nvme_shutdown_wait(struct nvme_ctrl *c, uint64_t t0, uint64_t deadline)
{
	uint64_t limit = MAX((uint64_t)c->rtd3e_us * NS_PER_US, NVME_SHUTDOWN_MIN_NS);
	deadline = MIN(deadline, t0 + limit);
	for (;;) {
		uint32_t csts = nvme_read4(c, NVME_CSTS);
		if (csts == 0xffffffffu) {
			kprintf("%s: registers read all ones during shutdown: device gone\n", c->name);
			return -ENODEV;
		}
		if ((csts & NVME_CSTS_SHST_MASK) == NVME_CSTS_SHST_DONE) {
			kprintf("%s: shutdown complete in %llu ms\n", c->name,
				(unsigned long long)((time_ns() - t0) / NS_PER_MS));
			return 0;
		}
		if (time_ns() >= deadline) {
			kprintf("%s: shutdown not complete after %llu ms (CSTS 0x%x%s, RTD3E %u us): the "
				"controller may lose what its cache holds\n", c->name,
				(unsigned long long)((time_ns() - t0) / NS_PER_MS), csts,
				(csts & NVME_CSTS_CFS) ? ", controller fatal status" : "", c->rtd3e_us);
			return -ETIMEDOUT;
		}
		thread_sleep_ns(NS_PER_MS);
	}
}

int nvme_shutdown_all(uint64_t deadline)
{
	int first = 0;
	uint64_t t0 = time_ns();

	for (struct nvme_ctrl *c = nvme_ctrls; c; c = c->next) {
		mutex_lock(&c->reset_lock);     /* no reset from here on */
		if (c->state != NVME_LIVE) {
			if (c->state == NVME_DEAD)
				kprintf("%s: dead, no shutdown notification\n", c->name);
			continue;
		}
		nvme_shutdown_quiesce(c, deadline);
		uint32_t cc = nvme_read4(c, NVME_CC);
		nvme_write4(c, NVME_CC, (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SHN_NORMAL);
	}
	for (struct nvme_ctrl *c = nvme_ctrls; c; c = c->next) {
		if (c->state == NVME_OFF) {
			int err = nvme_shutdown_wait(c, t0, deadline);
			if (err && !first)
				first = err;
		}
		mutex_unlock(&c->reset_lock);
	}
	return first;
}
SHUTDOWN_STEP(nvme_shutdown, 40, nvme_shutdown_all);
