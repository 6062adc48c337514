/*
 * The kernel's page cache and block-device files (see pcache_kernel.h).
 */
#include "platform/kernel/pcache_kernel.h"
#include "platform/kernel/bdev_file.h"
#include "iomap/iomap.h"
#include "platform/kernel/platform_kernel.h"
#include "drivers/blk/blk.h"
#include "kernel/kernel.h"
#include "kernel/errno.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/smp.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/initcall.h"
#include "kernel/metrics.h"

#define PCACHE_KERNEL_MAX_FILES 16
#define PCACHE_KERNEL_WB_THREADS 2        /* background writeback */
#define PCACHE_KERNEL_WQ_THREADS 2        /* completion work (fs end_io, dio) */

static struct pcache *pc_kpc;
static struct iomap_workq *pc_kwq;
static uint64_t pc_kbudget;
static struct mutex pc_kfiles_lock;
static struct bdev_file *pc_kfiles[PCACHE_KERNEL_MAX_FILES];
static unsigned pc_knfiles;

KERNEL_ARG_UINT(pcache_mb, 4, 1u << 20, "page cache budget in MiB (default a quarter of free memory)");
KERNEL_ARG_FLAG(iomap_debug, "iomap debug checks: mapping validator and lock order");
KERNEL_ARG_UINT(pcache_wb_ms, 1, 3600000, "periodic page cache writeback interval (default 1000 ms)");

int pcache_kernel_init(void)
{
	if (pc_kpc)
		return 0;
	uint64_t t0 = time_ns();
	mutex_init(&pc_kfiles_lock, "iomap-files");
	const char *a = arg_get("pcache_mb");
	unsigned long long mb = 0;
	uint64_t budget = pmm_free_bytes() / 4;
	if (a && (parse_u64(a, &mb) || mb == 0)) {
		kprintf("pcache: bad pcache_mb=%s, using a quarter of free memory\n", a);
		mb = 0;
	}
	if (mb)
		budget = mb << 20;
	budget &= ~((2ull << 20) - 1);     /* whole 2 MiB folios */
	if (budget < (4ull << 20))
		budget = 4ull << 20;
	/* Debug checks (mapping validator, lock order) must be on before the
	 * first inode exists. */
	if (arg_present("iomap_debug"))
		iomap_debug = true;
	int ret = plat_init();
	if (ret) {
		kprintf("pcache: platform start failed: %s\n", strerror(ret));
		return ret;
	}
	/* pcache_wb_ms: the periodic writeback interval (default 1 s); tests
	 * stretch it to show that shutdown, not the timer, wrote data back. */
	uint64_t wb_ns = NS_PER_S;
	unsigned long long wb_ms = 0;
	const char *w = arg_get("pcache_wb_ms");
	if (w && (parse_u64(w, &wb_ms) || wb_ms == 0 || wb_ms > 3600000))
		kprintf("pcache: bad pcache_wb_ms=%s (1..3600000), using 1000\n", w);
	else if (w)
		wb_ns = wb_ms * NS_PER_MS;
	/* Writers block at three quarters of the budget (the budget being a
	 * quarter of free memory: ~19% of it, Linux's vm.dirty_ratio is 20%);
	 * background writeback starts at half that (~9%, Linux's 10%).  At
	 * half the budget a random writer of a 64 MiB file on the 512 MiB
	 * machine spent half its time throttled (bench fs randwrite). */
	struct pcache_config cfg = { budget, budget / 4 * 3, 0, PCACHE_KERNEL_WB_THREADS, wb_ns };
	ret = pcache_create(&cfg, &pc_kpc);
	if (!ret)
		ret = iomap_workq_create("iomap-wq", PCACHE_KERNEL_WQ_THREADS, &pc_kwq);
	if (ret) {
		kprintf("pcache: not started: %s\n", strerror(ret));
		if (pc_kpc)
			pcache_destroy(pc_kpc);
		pc_kpc = NULL;
		return ret;
	}
	pc_kbudget = budget;
	kprintf("pcache: budget %llu MiB%s, %u writeback threads, %u bio completion threads (one per CPU), "
		"%u completion work threads%s (%llu us)\n",
		(unsigned long long)(budget >> 20), mb ? " (pcache_mb)" : " (1/4 of free)",
		PCACHE_KERNEL_WB_THREADS, ncpus_online, PCACHE_KERNEL_WQ_THREADS, iomap_debug ? ", debug checks on" : "",
		(unsigned long long)((time_ns() - t0) / NS_PER_US));
	return 0;
}

struct pcache *pcache_kernel_pcache(void) { return pc_kpc; }
uint64_t pcache_kernel_budget(void) { return pc_kbudget; }
struct iomap_workq *pcache_kernel_workq(void) { return pc_kwq; }

int pcache_kernel_file(const char *dev, struct bdev_file **out)
{
	if (!pc_kpc)
		return -ENODEV;
	struct blk_dev *d = blk_find(dev);
	if (!d)
		return -ENOENT;
	int ret = 0;
	mutex_lock(&pc_kfiles_lock);
	for (unsigned i = 0; i < pc_knfiles; i++)
		if (plat_kernel_bdev_dev(pc_kfiles[i]->bdev) == d) {
			*out = pc_kfiles[i];
			goto out;
		}
	if (pc_knfiles == PCACHE_KERNEL_MAX_FILES) {
		ret = -ENOSPC;
		goto out;
	}
	struct plat_bdev *b = plat_kernel_bdev_open(d);
	if (!b) {
		ret = -ENOMEM;
		goto out;
	}
	ret = bdev_file_open(pc_kpc, b, pc_kwq, out);
	if (ret) {
		plat_bdev_close(b);
		goto out;
	}
	pc_kfiles[pc_knfiles++] = *out;
out:
	mutex_unlock(&pc_kfiles_lock);
	return ret;
}

struct bdev_file *pcache_kernel_file_at(unsigned i)
{
	mutex_lock(&pc_kfiles_lock);
	struct bdev_file *bf = i < pc_knfiles ? pc_kfiles[i] : NULL;
	mutex_unlock(&pc_kfiles_lock);
	return bf;
}

void pcache_kernel_mem_line(void)
{
	if (!pc_kpc) {
		kprintf("page cache: off\n");
		return;
	}
	struct pcache_stats st;
	pcache_stats(pc_kpc, &st);
	kprintf("page cache: %llu KiB cached in %llu folios, %llu KiB dirty, budget %llu MiB\n",
		(unsigned long long)(st.used_bytes >> 10), (unsigned long long)st.nr_folios,
		(unsigned long long)(st.dirty_bytes >> 10), (unsigned long long)(pc_kbudget >> 20));
}
MEM_REPORT(pcache, pcache_kernel_mem_line);

static void pcache_kernel_metrics(struct metric_sink *s)
{
	if (!pc_kpc)
		return;
	struct pcache_stats st;
	pcache_stats(pc_kpc, &st);
	metric(s, "appliance_pagecache_cached_bytes", METRIC_GAUGE, "Bytes in the page cache", 0, 0,
	       (int64_t)st.used_bytes, 0);
	metric(s, "appliance_pagecache_dirty_bytes", METRIC_GAUGE, "Bytes in the page cache not yet written",
	       0, 0, (int64_t)st.dirty_bytes, 0);
	metric(s, "appliance_pagecache_budget_bytes", METRIC_GAUGE, "Page cache memory budget", 0, 0,
	       (int64_t)pc_kbudget, 0);
}
METRICS_PROVIDER(pcache, pcache_kernel_metrics);

static int pcache_kernel_initcall(void)
{
	return pcache_kernel_init();
}
INITCALL(pcache, INIT_SUBSYS, 0, pcache_kernel_initcall);

/* Shutdown: write back every dirty folio before the disks are flushed
 * (order 30) and shut down (40). */
static int pcache_kernel_shutdown(uint64_t deadline_ns)
{
	if (!pc_kpc)
		return 0;
	struct pcache_stats st;
	pcache_stats(pc_kpc, &st);
	int ret = pcache_sync(pc_kpc, deadline_ns);
	if (ret == 0 && st.dirty_bytes)
		kprintf("shutdown: page cache wrote back %llu KiB\n",
			(unsigned long long)(st.dirty_bytes >> 10));
	return ret;
}
SHUTDOWN_STEP(pcache, 20, pcache_kernel_shutdown);
