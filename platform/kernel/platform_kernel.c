/*
 * Kernel implementation of platform/platform.h, part 1: memory, locks, wait
 * queues, threads, time and logging over kernel/ (mm.h, sync.h, sched.h,
 * time.h, kprintf.h).  Block devices are in platform_kernel_bdev.c.
 *
 * Objects are small kmalloc'd wrappers around the kernel types, so portable
 * structures never depend on a kernel type's size (see platform.h).
 */
#include "platform/platform.h"
#include "platform/kernel/platform_kernel.h"
#include "kernel/errno.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/mm.h"
#include "kernel/panic.h"
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/time.h"
#include "kernel/realtime.h"
#include "kernel/random.h"

int plat_init(void)
{
	return plat_kernel_bdev_init();
}

void plat_fini(void) {}

/* ---- memory ---- */
void *plat_alloc(size_t size) { return kmalloc(size ? size : 1); }
void *plat_zalloc(size_t size) { return kzalloc(size ? size : 1); }
void plat_free(void *p) { kfree(p); }

/* The buddy allocator hands out naturally aligned 2^order blocks; a size
 * that is not a power of two pages is rounded up (folios never are). */
static unsigned plat_pages_order(size_t size)
{
	unsigned order = 0;
	while ((PLAT_PAGE_SIZE << order) < size)
		order++;
	return order;
}

#define PLAT_MAX_PAGES_BYTES (2u << 20)

static uint64_t plat_pages_bytes;   /* folio data and other page blocks, atomic */

void *plat_alloc_pages(size_t size)
{
	if (!size || size % PLAT_PAGE_SIZE || size > PLAT_MAX_PAGES_BYTES)
		return NULL;
	unsigned order = plat_pages_order(size);
	uint64_t phys = pmm_alloc_pages(order);
	if (!phys)
		return NULL;
	plat_add(&plat_pages_bytes, (uint64_t)PLAT_PAGE_SIZE << order);
	return PHYS_TO_VIRT(phys);
}

void plat_free_pages(void *p, size_t size)
{
	if (!p)
		return;
	unsigned order = plat_pages_order(size);
	plat_sub(&plat_pages_bytes, (uint64_t)PLAT_PAGE_SIZE << order);
	pmm_free_pages(VIRT_TO_PHYS(p), order);
}

uint64_t plat_kernel_pages_bytes(void) { return plat_load(&plat_pages_bytes); }

size_t plat_strlen(const char *s) { return strlen(s); }

/* ---- locks ---- */
struct plat_mutex {
	struct mutex m;
};

struct plat_mutex *plat_mutex_new(const char *name)
{
	struct plat_mutex *m = kmalloc(sizeof(*m));
	if (m)
		mutex_init(&m->m, name);
	return m;
}

void plat_mutex_free(struct plat_mutex *m) { kfree(m); }
void plat_mutex_lock(struct plat_mutex *m) { mutex_lock(&m->m); }
bool plat_mutex_trylock(struct plat_mutex *m) { return mutex_trylock(&m->m); }
void plat_mutex_unlock(struct plat_mutex *m) { mutex_unlock(&m->m); }
bool plat_mutex_held(struct plat_mutex *m) { return mutex_held(&m->m); }

/* The saved IRQ flags live in the object: only the holder writes them, after
 * acquiring, and reads them back before releasing. */
struct plat_spin {
	spinlock_t l;
	uint64_t flags;
};

struct plat_spin *plat_spin_new(const char *name)
{
	struct plat_spin *s = kmalloc(sizeof(*s));
	if (s) {
		spin_init(&s->l, name);
		s->flags = 0;
	}
	return s;
}

void plat_spin_free(struct plat_spin *s) { kfree(s); }

void plat_spin_lock(struct plat_spin *s)
{
	uint64_t f = spin_lock_irqsave(&s->l);
	s->flags = f;
}

void plat_spin_unlock(struct plat_spin *s)
{
	uint64_t f = s->flags;
	spin_unlock_irqrestore(&s->l, f);
}

/* ---- wait queues: kernel waitq semantics are exactly platform.h's ---- */
struct plat_waitq {
	struct waitq q;
};

struct plat_waitq *plat_waitq_new(const char *name)
{
	struct plat_waitq *q = kmalloc(sizeof(*q));
	if (q)
		waitq_init(&q->q, name);
	return q;
}

void plat_waitq_free(struct plat_waitq *q) { kfree(q); }

int plat_wait_until(struct plat_waitq *q, bool (*cond)(void *), void *arg, uint64_t deadline)
{
	/* PLAT_FOREVER == UINT64_MAX is the kernel's "no deadline" too. */
	return waitq_wait_until(&q->q, cond, arg, deadline) ? -PLAT_ETIMEDOUT : 0;
}

void plat_wake_all(struct plat_waitq *q) { waitq_wake_all(&q->q); }

/* ---- threads and time ---- */
struct plat_thread {
	struct thread *t;
};

struct plat_thread *plat_thread_create(const char *name, void (*fn)(void *), void *arg)
{
	struct plat_thread *pt = kmalloc(sizeof(*pt));
	if (!pt)
		return NULL;
	/* Returning from fn ends the kernel thread (switch.asm trampoline). */
	pt->t = thread_create(name ? name : "iomap", fn, arg, THREAD_ANY_CPU);
	if (!pt->t) {
		kfree(pt);
		return NULL;
	}
	return pt;
}

int plat_thread_join(struct plat_thread *pt, uint64_t deadline)
{
	uint64_t timeout = 0;   /* thread_join: 0 = forever */
	if (deadline != PLAT_FOREVER) {
		uint64_t now = time_ns();
		timeout = deadline > now ? deadline - now : 1;
	}
	if (thread_join(pt->t, timeout))
		return -PLAT_ETIMEDOUT;
	kfree(pt);
	return 0;
}

unsigned plat_thread_id(void) { return thread_id(thread_current()); }
uint32_t *plat_thread_lockdep(void) { return &thread_current()->lockdep_word; }
void plat_yield(void) { thread_yield(); }
void plat_sleep_ns(uint64_t ns) { thread_sleep_ns(ns); }
uint64_t plat_time_ns(void) { return time_ns(); }

/* ---- randomness: the CPU's generator (kernel/random.h) ---- */
int plat_random(void *buf, size_t len)
{
	return random_bytes(buf, len);
}

/* ---- logging ---- */
static int plat_log_level = -1;

KERNEL_ARG_UINT(iomap_log, 0, 3, "iomap log level: 0 errors, 1 warnings (default), 2 info, 3 debug");

void plat_log(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	if (plat_log_level < 0) {
		/* Boot argument iomap_log=N (0 errors .. 3 debug), default warnings. */
		unsigned long long v = PLAT_LOG_WARN;
		const char *a = arg_get("iomap_log");
		if (a && parse_u64(a, &v))
			v = PLAT_LOG_WARN;
		plat_log_level = (int)MIN(v, 3ull);
	}
	if (level > plat_log_level)
		return;
	char buf[192];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("iomap %s: %s\n", names[level & 3], buf);
}

int64_t plat_realtime_ns(void)
{
	return realtime_ns();
}

const char *plat_strerror(int err)
{
	return strerror(err);
}

int plat_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	return kvsnprintf(buf, size, fmt, ap);
}

void plat_panic(const char *file, int line, const char *what)
{
	panic("iomap: %s:%d: %s", file, line, what);
}
