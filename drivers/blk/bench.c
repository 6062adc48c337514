/*
 * Block benchmark: `bench blk DEV WORKLOAD bs=N qd=N secs=N [poll|irq]
 * [size=BYTES] [threads=N] [batch=0|1]`.
 *
 * Each submitter thread is pinned to its own CPU (thread i on CPU
 * (cpu + i) % ncpus, cpu=N defaulting to 0: the CPU the disks interrupt,
 * because cross-CPU wake-ups are expensive under TCG) and keeps qd requests in
 * flight, each with its own preallocated, page-aligned buffer.  The
 * completion callback only pushes the request on the thread's lock-free
 * done list (and wakes the thread if it sleeps); the thread takes one
 * timestamp per batch of completions, records latencies (submit to reap,
 * like fio's completion latency) and resubmits.  In polling mode the thread
 * polls its own hardware queue; in interrupt mode it sleeps until woken.
 * A batch of resubmissions goes out with BLK_F_MORE and one blk_commit()
 * (NVMe: one SQ doorbell per batch); batch=0 rings per request, to compare.
 * The first second is warm-up and not counted.
 *
 * The window counts completions reaped in it, whenever they were submitted:
 * a host stall (qemu's vCPU or I/O thread descheduled, host disk busy) can
 * hold every request in flight across a short window, and counting only
 * those submitted inside it then reported ops=0 for a device that worked.
 * If the window still ends with nothing counted while requests were in
 * flight, it starts again (once) at the first completion, which is counted,
 * and runs for secs from there; a note says how late it started.
 *
 * Teardown: every completion callback counts itself in t->callbacks for its
 * whole run; the caller frees the buffers only when, after the threads are
 * joined, that count is back to zero (with a deadline).
 *
 * Output, one line per run (parsed by tools/peer and the tests):
 *   bench blk dev=nvme0n1 workload=randread bs=4096 qd=32 secs=10 mode=poll
 *   threads=1 ops=.. iops=.. mbps=48.2 lat_p50_us=.. lat_p99_us=..
 *   lat_p999_us=.. errors=0
 */
#include "drivers/blk/blk.h"
#include "drivers/blk/pattern.h"
#include "kernel/shell.h"
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

#define BENCH_WARMUP_NS  NS_PER_S
#define BENCH_MAX_QD     256
#define BENCH_MAX_BS     (4u << 20)
/* Latency histogram: 1 us buckets below 1 ms, 10 us to 10 ms, 1 ms to 1 s. */
#define BENCH_H1   1000
#define BENCH_H2   (BENCH_H1 + 900)
#define BENCH_H3   (BENCH_H2 + 990)
#define BENCH_HBUCKETS (BENCH_H3 + 1)

enum bench_wl { BW_RANDREAD, BW_RANDWRITE, BW_READ, BW_WRITE, BW_MIXED };
static const char *const bench_wl_names[] = { "randread", "randwrite", "read", "write", "mixed" };

struct bench_thr;

struct bench_io {
	struct blk_req req;
	struct blk_seg seg;
	struct bench_thr *t;
	struct bench_io *next_done;
};

struct bench_thr {
	struct blk_dev *dev;
	enum bench_wl wl;
	uint32_t bs, qd, blocks_per_io;
	bool poll;
	bool batch;                    /* BLK_F_MORE + one blk_commit() per batch */
	uint64_t nslots;               /* bs-sized slots in the tested range */
	uint64_t seq_slot, rnd;
	uint64_t warm_end, end;
	uint64_t window_end;           /* counting stopped (set once); 0: open */
	uint64_t restart_late_ns;      /* window restarted after a stall */
	bool restarted;
	struct bench_io *ios;
	struct bench_io *done_list;    /* pushed by completions */
	volatile int sleeping;
	struct waitq wq;
	uint32_t *hist;
	uint64_t ops, bytes, errors, inflight;
	uint32_t callbacks;            /* completion callbacks still running */
	char first_error[128];
	bool timed_out, setup_failed;
	bool interrupted;              /* Ctrl-C ended the run early */
};

static void bench_done(struct blk_req *req)
{
	struct bench_io *io = req->priv;
	struct bench_thr *t = io->t;
	/* Counted before the push (the thread cannot reap io earlier), dropped
	 * after the wake-up: the last touch of *t. */
	__atomic_fetch_add(&t->callbacks, 1, __ATOMIC_SEQ_CST);
	struct bench_io *head = __atomic_load_n(&t->done_list, __ATOMIC_RELAXED);
	do
		io->next_done = head;
	while (!__atomic_compare_exchange_n(&t->done_list, &head, io, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	if (__atomic_load_n(&t->sleeping, __ATOMIC_SEQ_CST))
		waitq_wake_one(&t->wq);
	__atomic_fetch_sub(&t->callbacks, 1, __ATOMIC_RELEASE);
}

/* After the thread is joined: wait for callbacks still returning from their
 * wake-up.  0, or -ETIMEDOUT after 1 s (then the memory must leak). */
static int bench_callbacks_drain(struct bench_thr *t)
{
	uint64_t deadline = time_ns() + NS_PER_S;
	while (__atomic_load_n(&t->callbacks, __ATOMIC_ACQUIRE)) {
		if (time_ns() >= deadline)
			return -ETIMEDOUT;
		thread_yield();
	}
	return 0;
}

static bool bench_has_done(void *arg)
{
	return __atomic_load_n(&((struct bench_thr *)arg)->done_list, __ATOMIC_SEQ_CST) != NULL;
}

static unsigned bench_bucket(uint64_t us)
{
	if (us < 1000)
		return (unsigned)us;
	if (us < 10000)
		return BENCH_H1 + (unsigned)((us - 1000) / 10);
	if (us < 1000000)
		return BENCH_H2 + (unsigned)((us - 10000) / 1000);
	return BENCH_H3;
}

static uint64_t bench_bucket_us(unsigned b)
{
	if (b < BENCH_H1)
		return b;
	if (b < BENCH_H2)
		return 1000 + (uint64_t)(b - BENCH_H1) * 10;
	if (b < BENCH_H3)
		return 10000 + (uint64_t)(b - BENCH_H2) * 1000;
	return 1000000;
}

static int bench_issue(struct bench_thr *t, struct bench_io *io)
{
	uint64_t slot;
	uint8_t op;

	t->rnd = t->rnd * 6364136223846793005ull + 1442695040888963407ull;   /* LCG: cheap */
	uint64_t r = t->rnd >> 16;
	switch (t->wl) {
	case BW_READ:
	case BW_WRITE:
		slot = t->seq_slot++;
		if (t->seq_slot >= t->nslots)
			t->seq_slot = 0;
		op = t->wl == BW_READ ? BLK_OP_READ : BLK_OP_WRITE;
		break;
	default:
		slot = r % t->nslots;
		op = t->wl == BW_RANDREAD ? BLK_OP_READ : t->wl == BW_RANDWRITE ? BLK_OP_WRITE
			: ((r >> 32) % 10 < 7 ? BLK_OP_READ : BLK_OP_WRITE);
		break;
	}
	io->req.op = op;
	io->req.flags = t->batch ? BLK_F_MORE : 0;
	io->req.lba = slot * t->blocks_per_io;
	io->req.nblocks = t->blocks_per_io;
	io->req.segs = &io->seg;
	io->req.nsegs = 1;
	int rc = blk_submit(t->dev, &io->req);
	if (rc) {
		t->errors++;
		if (!t->first_error[0])
			ksnprintf(t->first_error, sizeof(t->first_error), "%s lba %llu: %s", blk_op_name(op),
				  (unsigned long long)io->req.lba, blk_req_reason(&io->req));
		return rc;
	}
	t->inflight++;
	return 0;
}

static void bench_thread(void *arg)
{
	struct bench_thr *t = arg;
	unsigned queue = blk_queue_of_cpu(t->dev);

	for (unsigned i = 0; i < t->qd; i++)
		if (bench_issue(t, &t->ios[i]))
			break;
	if (t->batch)
		blk_commit(t->dev);
	uint64_t progress = time_ns();        /* last reap: the spin budget's clock */
	for (;;) {
		uint64_t now = time_ns();
		if (!t->interrupted && shell_interrupted()) {
			/* Ctrl-C: end the run now; the caller prints no result. */
			t->interrupted = true;
			t->end = MIN(t->end, now);
			t->warm_end = MIN(t->warm_end, t->end);
			t->restarted = true;           /* no window restart either */
		}
		if (now >= t->end && !t->window_end && (t->ops || !t->inflight ||
							 now >= t->end + 30 * NS_PER_S))
			t->window_end = t->ops ? t->end : now;
		if (now >= t->end && t->inflight == 0)
			break;
		if (now >= t->end + 30 * NS_PER_S) {
			t->timed_out = true;   /* requests still out: the caller leaks them */
			break;
		}
		if (t->poll) {
			blk_poll_queue(t->dev, queue);
			if (!__atomic_load_n(&t->done_list, __ATOMIC_SEQ_CST)) {
				/* Hybrid polling (blk.h): spin, then sleep on the
				 * interrupt of our queue. */
				if (now - progress < blk_poll_spin_budget(t->dev, (unsigned)t->inflight))
					continue;    /* our requests are all on our queue */
				__atomic_store_n(&t->sleeping, 1, __ATOMIC_SEQ_CST);
				blk_poll_sleep(t->dev, queue, &t->wq, bench_has_done, t, now + 100 * NS_PER_MS);
				__atomic_store_n(&t->sleeping, 0, __ATOMIC_SEQ_CST);
				if (!__atomic_load_n(&t->done_list, __ATOMIC_SEQ_CST))
					continue;
			}
			progress = time_ns();
		} else if (!__atomic_load_n(&t->done_list, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&t->sleeping, 1, __ATOMIC_SEQ_CST);
			if (waitq_wait_until(&t->wq, bench_has_done, t, now + 100 * NS_PER_MS) < 0)
				blk_kick(t->dev);   /* parked requests with nothing to restart them */
			__atomic_store_n(&t->sleeping, 0, __ATOMIC_SEQ_CST);
		}
		struct bench_io *io = __atomic_exchange_n(&t->done_list, NULL, __ATOMIC_SEQ_CST);
		now = time_ns();
		/* Past the end with nothing counted yet: a stall, not the
		 * device, emptied the window; it restarts here, counting this
		 * batch. */
		bool count = now >= t->warm_end && !t->window_end && (now < t->end || !t->ops);
		if (count && now >= t->end && io && !t->restarted) {
			uint64_t len = t->end - t->warm_end;
			t->restarted = true;
			t->restart_late_ns = now - t->end;
			t->warm_end = now;
			t->end = now + len;
		}
		count = count && now < t->end;
		while (io) {
			struct bench_io *next = io->next_done;
			t->inflight--;
			if (io->req.status) {
				t->errors++;
				if (!t->first_error[0])
					ksnprintf(t->first_error, sizeof(t->first_error), "%s lba %llu: %s",
						  blk_op_name(io->req.op), (unsigned long long)io->req.lba,
						  blk_req_reason(&io->req));
			} else if (count) {
				t->ops++;
				t->bytes += t->bs;
				t->hist[bench_bucket((now - io->req.submit_ns) / NS_PER_US)]++;
			}
			if (now < t->end)
				bench_issue(t, io);
			io = next;
		}
		if (t->batch)
			blk_commit(t->dev);   /* the batch's one doorbell */
	}
}

static uint64_t bench_percentile(const uint32_t *h, uint64_t total, uint64_t num, uint64_t den)
{
	uint64_t want = (total * num + den - 1) / den, acc = 0;
	if (!total)
		return 0;
	for (unsigned b = 0; b < BENCH_HBUCKETS; b++) {
		acc += h[b];
		if (acc >= want)
			return bench_bucket_us(b);
	}
	return bench_bucket_us(BENCH_H3);
}

static unsigned bench_order(uint32_t bytes)
{
	unsigned o = 0;
	while ((PAGE_SIZE << o) < bytes)
		o++;
	return o;
}

static void bench_free_thr(struct bench_thr *t)
{
	if (!t->ios)
		return;
	for (unsigned i = 0; i < t->qd; i++)
		if (t->ios[i].seg.buf)
			pmm_free_pages(VIRT_TO_PHYS(t->ios[i].seg.buf), bench_order(t->bs));
	kfree(t->ios);
	kfree(t->hist);
}

static int bench_setup_thr(struct bench_thr *t, unsigned idx, uint64_t size)
{
	t->blocks_per_io = t->bs / t->dev->lba_size;
	t->nslots = size / t->bs;
	t->rnd = pattern_splitmix64(0xbe7c + idx + time_ns());
	waitq_init(&t->wq, "bench");
	t->ios = kzalloc(sizeof(*t->ios) * t->qd);
	t->hist = kzalloc(sizeof(uint32_t) * BENCH_HBUCKETS);
	if (!t->ios || !t->hist)
		return -ENOMEM;
	for (unsigned i = 0; i < t->qd; i++) {
		uint64_t p = pmm_alloc_pages(bench_order(t->bs));
		if (!p)
			return -ENOMEM;
		t->ios[i].seg.buf = PHYS_TO_VIRT(p);
		t->ios[i].seg.len = t->bs;
		t->ios[i].t = t;
		t->ios[i].req.done = bench_done;
		t->ios[i].req.priv = &t->ios[i];
		pattern_fill(t->ios[i].seg.buf, 0, t->bs, idx);   /* writes carry data, not zeros */
	}
	return 0;
}

struct bench_progress {
	struct bench_thr *ts;
	unsigned threads;
	struct blk_dev *dev;
	enum bench_wl wl;
	unsigned long long secs;
	uint64_t start;
};

static void bench_progress(void *arg)
{
	struct bench_progress *p = arg;
	uint64_t ops = 0, now = time_ns();
	for (unsigned i = 0; i < p->threads; i++)
		ops += __atomic_load_n(&p->ts[i].ops, __ATOMIC_RELAXED);
	uint64_t s = (now - p->start) / NS_PER_S;
	kprintf("bench: %s %s: %llu of %llu s (1 s warm-up), %llu ops counted so far\n", p->dev->name,
		bench_wl_names[p->wl], (unsigned long long)s, p->secs + BENCH_WARMUP_NS / NS_PER_S,
		(unsigned long long)ops);
}

static int bench_blk(int argc, char **argv)
{
	unsigned long long bs = 4096, qd = 1, secs = 10, size = 0, threads = 1, cpu = ~0ull, batch = 1;
	int mode = -1;     /* -1: the device's current mode */
	enum bench_wl wl = BW_RANDREAD;
	unsigned i;

	if (argc < 4)
		return -EINVAL;
	struct blk_dev *dev = blk_find(argv[2]);
	if (!dev) {
		kprintf("bench: no device '%s' (see lsblk)\n", argv[2]);
		return 1;
	}
	for (i = 0; i < ARRAY_SIZE(bench_wl_names); i++)
		if (!strcmp(argv[3], bench_wl_names[i]))
			break;
	if (i == ARRAY_SIZE(bench_wl_names)) {
		kprintf("bench: unknown workload '%s' (randread randwrite read write mixed)\n", argv[3]);
		return SHELL_REPORTED;
	}
	wl = (enum bench_wl)i;
	uint64_t devbytes = dev->nblocks * dev->lba_size;
	for (int a = 4; a < argc; a++) {
		/* Every value is refused rather than silently changed: cpu=7 on
		 * two CPUs is an error, not CPU 1. */
		static const struct { const char *key; unsigned long long min; } keys[] = {
			{ "bs", 1 }, { "qd", 1 }, { "secs", 1 }, { "size", 1 }, { "threads", 1 }, { "cpu", 0 },
			{ "batch", 0 },
		};
		unsigned long long *dsts[] = { &bs, &qd, &secs, &size, &threads, &cpu, &batch };
		unsigned long long maxs[] = { BENCH_MAX_BS, BENCH_MAX_QD, 3600, devbytes, ncpus_online,
					      ncpus_online - 1, 1 };
		const char *s = argv[a];
		int rc = SHELL_NOT_KEY;
		if (!strcmp(s, "poll") || !strcmp(s, "irq")) {
			mode = s[0] == 'p';
			continue;
		}
		for (unsigned k = 0; k < ARRAY_SIZE(keys) && rc == SHELL_NOT_KEY; k++)
			rc = shell_arg_kv("bench", keys[k].key, s, keys[k].min, maxs[k], dsts[k]);
		if (rc == SHELL_NOT_KEY) {
			kprintf("bench: unknown option '%s' (bs= qd= secs= size= threads= cpu= batch= poll irq)\n", s);
			return SHELL_REPORTED;
		}
		if (rc)
			return rc;
	}
	if (!size)
		size = MIN(devbytes, 1ull << 30);
	if (bs % dev->lba_size) {
		kprintf("bench: bs '%llu' is not a multiple of %s's %u-byte blocks\n", bs, dev->name, dev->lba_size);
		return SHELL_REPORTED;
	}
	if (size < bs) {
		kprintf("bench: size '%llu' is smaller than bs (%llu)\n", size, bs);
		return SHELL_REPORTED;
	}
	if (cpu == ~0ull)
		cpu = 0;
	bool was_polling = dev->polling;
	bool poll = mode < 0 ? was_polling : mode == 1;
	if (poll != was_polling) {
		int rc = blk_set_polling(dev, poll);
		if (rc) {
			kprintf("bench: %s: cannot switch to %s mode: %s\n", dev->name, poll ? "poll" : "irq", strerror(rc));
			return 1;
		}
	}

	struct bench_thr *ts = kzalloc(sizeof(*ts) * threads);
	struct thread **th = kzalloc(sizeof(*th) * threads);
	int rc = 0;
	if (!ts || !th) {
		rc = -ENOMEM;
		goto out;
	}
	uint64_t start = time_ns() + 10 * NS_PER_MS;
	for (i = 0; i < threads; i++) {
		struct bench_thr *t = &ts[i];
		t->dev = dev;
		t->wl = wl;
		t->bs = (uint32_t)bs;
		t->qd = (uint32_t)qd;
		t->poll = poll;
		t->batch = batch;
		if (bench_setup_thr(t, i, size)) {
			kprintf("bench: out of memory for %llu buffers of %llu bytes\n", qd * threads, bs);
			rc = 1;
			goto out;
		}
		t->seq_slot = t->nslots * i / threads;
	}
	start = time_ns();
	for (i = 0; i < threads; i++) {
		ts[i].warm_end = start + BENCH_WARMUP_NS;
		ts[i].end = ts[i].warm_end + secs * NS_PER_S;
		th[i] = thread_create("bench", bench_thread, &ts[i], (int)((i + cpu) % ncpus_online));
		if (!th[i])
			kprintf("bench: cannot start thread %u\n", i);
	}
	uint64_t ops = 0, bytes = 0, errors = 0;
	bool leak = false;
	for (i = 0; i < threads; i++) {
		if (!th[i]) {
			errors++;
			continue;
		}
		struct bench_progress bp = { ts, (unsigned)threads, dev, wl, secs, start };
		if (shell_join_progress(th[i], (2 * secs + 90) * NS_PER_S, bench_progress, &bp) != 0 ||
		    ts[i].timed_out) {
			kprintf("bench: thread %u: timed out after %llu s waiting for %llu requests on %s\n", i,
				secs + 31, (unsigned long long)ts[i].inflight, dev->name);
			leak = true;
		}
		ops += ts[i].ops;
		bytes += ts[i].bytes;
		errors += ts[i].errors;
		if (ts[i].first_error[0])
			kprintf("bench: %s: first error: %s\n", dev->name, ts[i].first_error);
	}
	/* A completion callback may still be returning from its wake-up of a
	 * thread that already reaped it: wait until none is (microseconds). */
	uint64_t late_ns = 0;
	for (i = 0; i < threads; i++) {
		if (!th[i])
			continue;
		if (!leak && bench_callbacks_drain(&ts[i]) < 0) {
			kprintf("bench: thread %u: a completion callback still running after 1 s; "
				"buffers not freed\n", i);
			leak = true;
		}
		if (ts[i].restarted)
			late_ns = MAX(late_ns, ts[i].restart_late_ns + 1);
	}
	bool stopped = false;
	for (i = 0; i < threads; i++)
		stopped |= ts[i].interrupted;
	if (stopped) {
		kprintf("bench: %s: interrupted; no result (%llu ops before Ctrl-C)\n", dev->name,
			(unsigned long long)ops);
		rc = 1;
		if (leak)
			ts = NULL;
		goto out;
	}
	if (late_ns)
		kprintf("bench: %s: nothing completed inside the %llu s window (host stall?); "
			"restarted it %llu ms late at the first completion\n", dev->name, secs,
			(unsigned long long)(late_ns / NS_PER_MS));
	uint32_t *h = kzalloc(sizeof(uint32_t) * BENCH_HBUCKETS);
	if (h) {
		for (i = 0; i < threads; i++)
			for (unsigned b = 0; b < BENCH_HBUCKETS && ts[i].hist; b++)
				h[b] += ts[i].hist[b];
	}
	uint64_t us = secs * 1000000ull;    /* a restarted window is as long */
	uint64_t mbps10 = bytes * 10 / us;
	kprintf("bench blk dev=%s workload=%s bs=%llu qd=%llu secs=%llu mode=%s threads=%llu ops=%llu iops=%llu "
		"mbps=%llu.%llu lat_p50_us=%llu lat_p99_us=%llu lat_p999_us=%llu errors=%llu\n",
		dev->name, bench_wl_names[wl], bs, qd, secs, poll ? "poll" : "irq", threads,
		(unsigned long long)ops, (unsigned long long)(ops / secs), (unsigned long long)(mbps10 / 10),
		(unsigned long long)(mbps10 % 10),
		(unsigned long long)(h ? bench_percentile(h, ops, 50, 100) : 0),
		(unsigned long long)(h ? bench_percentile(h, ops, 99, 100) : 0),
		(unsigned long long)(h ? bench_percentile(h, ops, 999, 1000) : 0), (unsigned long long)errors);
	kfree(h);
	rc = errors ? 1 : 0;
	if (leak) {
		rc = 1;
		ts = NULL;      /* requests may still complete into them */
	}
out:
	if (ts) {
		for (i = 0; i < threads; i++)
			bench_free_thr(&ts[i]);
		kfree(ts);
	}
	kfree(th);
	if (poll != was_polling) {
		int mrc = blk_set_polling(dev, was_polling);
		if (mrc) {
			kprintf("bench: %s: cannot switch back to %s mode: %s\n", dev->name,
				was_polling ? "poll" : "irq", strerror(mrc));
			rc = 1;
		}
	}
	return rc;
}

static int cmd_bench(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "blk"))
		return bench_blk(argc, argv);
	/* Other layers' benchmarks are commands named bench_KIND (bench net
	 * lives in net/); `bench KIND ARGS` runs them. */
	if (argc >= 2) {
		char name[32];
		ksnprintf(name, sizeof(name), "bench_%s", argv[1]);
		const struct shell_cmd *c = shell_find(name);
		if (c)
			return c->run(argc - 1, argv + 1);
	}
	return -EINVAL;
}
SHELL_COMMAND(bench, "bench blk DEV randread|randwrite|read|write|mixed [bs=N] [qd=N] [secs=N] [poll|irq] "
	      "[size=BYTES] [threads=N] [cpu=N]", "storage benchmarks (one result line per run; Ctrl-C stops)",
	      cmd_bench);
