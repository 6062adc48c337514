/*
 * Block layer: registry of devices, boot arguments, names (see blk.h).
 * The request path lives in blk_submit.c (validation, splitting) and
 * blk_queue.c (software queues, completion, polling).
 */
#include <stdarg.h>
#include "drivers/blk/blk.h"
#include "drivers/blk/blk_internal.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/errno.h"
#include "kernel/mm.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/cpu.h"
#include "kernel/initcall.h"

static spinlock_t blk_reg_lock = SPINLOCK_INIT("blk-reg");
static struct blk_dev *blk_devs[BLK_MAX_DEVS];
static unsigned blk_ndevs;
/* Zeros for write-zeroes emulation.  In .bss, zeroed by the loader with the
 * rest of the image: allocating and clearing it at boot cost tens of ms
 * under qemu, where the first write to fresh guest RAM is slow. */
static uint8_t blk_zero_area[BLK_ZERO_BYTES] __attribute__((aligned(4096)));
void *const blk_zero_buf = blk_zero_area;
static uint32_t blk_timeout;
bool blk_drop_flushes;

static const char *const blk_op_names[] = { "read", "write", "flush", "discard", "write-zeroes" };

const char *blk_op_name(enum blk_op op)
{
	return (unsigned)op < ARRAY_SIZE(blk_op_names) ? blk_op_names[op] : "?";
}

uint32_t blk_timeout_ms(void)
{
	return blk_timeout ? blk_timeout : 5000;
}

const char *blk_req_reason(const struct blk_req *req)
{
	return req->error[0] ? req->error : strerror(req->status);
}

KERNEL_ARG_UINT(blk_timeout_ms, 1, 3600000, "I/O timeout of every disk driver (default 5000 ms)");
KERNEL_ARG_TEXT(scratch, "DEV[,DEV...]", "disks self-tests may overwrite (never any other)");
KERNEL_ARG_FLAG(blk_drop_flush, "tests only: flushes complete without reaching the disk");

void blk_init(void)
{
	const char *t = arg_get("blk_timeout_ms");
	unsigned long long v;

	if (t && parse_u64(t, &v) == 0 && v > 0 && v < 3600000)
		blk_timeout = (uint32_t)v;
	/* Test only: proves the durability test sees a missing FLUSH. */
	blk_drop_flushes = arg_present("blk_drop_flush");
	if (blk_drop_flushes)
		kprintf("blk: blk_drop_flush: flush requests complete WITHOUT reaching the disks "
			"(test argument: data is not durable)\n");
}

/* ---- registry ---- */

/* Is `name` one of the comma-separated names in list? */
static bool blk_name_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (*list) {
		const char *e = strchr(list, ',');
		size_t len = e ? (size_t)(e - list) : strlen(list);
		if (len == n && strncmp(list, name, n) == 0)
			return true;
		if (!e)
			break;
		list = e + 1;
	}
	return false;
}

static const char *blk_config_disks(void)
{
	return boot_info ? boot_info->config.disks : "";
}

bool blk_selected(const char *name)
{
	const char *s = blk_config_disks();

	if (!s[0] || strcmp(s, "all") == 0 || blk_name_in_list(s, name))
		return true;
	kprintf("blk: %s: not in config.txt disks (%s): left alone\n", name, s);
	return false;
}

bool blk_is_scratch(const struct blk_dev *dev)
{
	const char *s = arg_get("scratch");
	return dev->ramdisk || (s && blk_name_in_list(s, dev->name));
}

/* After every driver attached: name each disk that config.txt "disks" or
 * the boot argument "scratch" asks for and no driver found (a typo would
 * otherwise pass silently). */
static void blk_check_names(const char *list, const char *what)
{
	char name[32];

	while (list && *list) {
		const char *e = strchr(list, ',');
		size_t len = e ? (size_t)(e - list) : strlen(list);
		if (len && len < sizeof(name)) {
			memcpy(name, list, len);
			name[len] = 0;
			if (!blk_find(name))
				kprintf("blk: %s names disk '%s', but no driver found a disk of that name\n",
					what, name);
		}
		if (!e)
			break;
		list = e + 1;
	}
}

static int blk_check_selection(void)
{
	const char *s = blk_config_disks();
	if (s[0] && strcmp(s, "all") != 0)
		blk_check_names(s, "config.txt disks");
	blk_check_names(arg_get("scratch"), "boot argument scratch");
	return 0;
}
INITCALL(blk_names, INIT_DRIVERS, 100, blk_check_selection);

int blk_register(struct blk_dev *dev)
{
	struct blk_priv *p;
	uint64_t fl;

	if (!dev->name[0] || !dev->ops || !dev->ops->submit || !dev->lba_size ||
	    (dev->lba_size & (dev->lba_size - 1)) || dev->lba_size < 512 || !dev->nblocks) {
		kprintf("blk: %s: refusing to register: incomplete description\n", dev->name);
		return -EINVAL;
	}
	if (!dev->nqueues)
		dev->nqueues = 1;
	if (!dev->queue_depth)
		dev->queue_depth = 1;
	if (dev->max_transfer < dev->lba_size)
		dev->max_transfer = 128 * 1024;
	if (!dev->max_segments)
		dev->max_segments = 1;
	if (dev->virt_boundary & (dev->virt_boundary - 1)) {
		kprintf("blk: %s: virt_boundary %u is not a power of two\n", dev->name, dev->virt_boundary);
		return -EINVAL;
	}
	p = kzalloc(sizeof(*p));
	struct blk_piece *pieces = kzalloc(sizeof(*pieces) * BLK_POOL_PIECES);
	struct blk_swq *swq = kzalloc(sizeof(*swq) * dev->nqueues);
	if (!p || !pieces || !swq) {
		kfree(p);
		kfree(pieces);
		kfree(swq);
		kprintf("blk: %s: out of memory registering\n", dev->name);
		return -ENOMEM;
	}
	spin_init(&p->pool_lock, "blk-pool");
	waitq_init(&p->pool_wq, "blk-pool");
	for (unsigned i = 0; i < BLK_POOL_PIECES; i++) {
		pieces[i].free_next = p->free;
		p->free = &pieces[i];
	}
	p->nfree = BLK_POOL_PIECES;
	for (unsigned i = 0; i < dev->nqueues; i++)
		spin_init(&swq[i].lock, "blk-swq");
	p->swq = swq;
	dev->blk_private = p;
	dev->dead = false;
	memset(&dev->stats, 0, sizeof(dev->stats));

	fl = spin_lock_irqsave(&blk_reg_lock);
	int rc = 0;
	if (blk_ndevs == BLK_MAX_DEVS)
		rc = -ENOSPC;
	for (unsigned i = 0; i < blk_ndevs && !rc; i++)
		if (strcmp(blk_devs[i]->name, dev->name) == 0)
			rc = -EEXIST;
	if (!rc)
		blk_devs[blk_ndevs++] = dev;
	spin_unlock_irqrestore(&blk_reg_lock, fl);
	if (rc) {
		kprintf("blk: %s: cannot register: %s\n", dev->name, strerror(rc));
		dev->blk_private = NULL;
		kfree(p);
		kfree(pieces);
		kfree(swq);
	}
	return rc;
}

unsigned blk_count(void)
{
	return blk_ndevs;
}

struct blk_dev *blk_get(unsigned index)
{
	return index < blk_ndevs ? blk_devs[index] : NULL;
}

struct blk_dev *blk_find(const char *name)
{
	for (unsigned i = 0; i < blk_ndevs; i++)
		if (strcmp(blk_devs[i]->name, name) == 0)
			return blk_devs[i];
	return NULL;
}

void blk_stats_reset(struct blk_dev *dev)
{
	memset(&dev->stats, 0, sizeof(dev->stats));
}

unsigned blk_queue_of_cpu(const struct blk_dev *dev)
{
	return smp_percpu_ready ? this_cpu()->index % dev->nqueues : 0;
}

