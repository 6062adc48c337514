/*
 * Host implementation of platform/platform.h: pthreads, a file as a block
 * device, a thread pool completing bios asynchronously.  The only file in
 * iomap/ that includes host headers.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <sys/random.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include "platform/host/platform_host.h"

int plat_init(void) { return 0; }
void plat_fini(void) {}

void *plat_alloc(size_t size) { return malloc(size ? size : 1); }
void *plat_zalloc(size_t size) { return calloc(1, size ? size : 1); }
void plat_free(void *p) { free(p); }

/* Large folio buffers come from mmap with MAP_POPULATE: the host kernel
 * fills them in one call instead of one page fault per 4 KiB on first
 * touch (the unikernel's pmm pages are mapped already). */
#define PLAT_HOST_MMAP_MIN (64u << 10)

void *plat_alloc_pages(size_t size)
{
	void *p = NULL;
	if (!size || size % PLAT_PAGE_SIZE)
		return NULL;
	if (size >= PLAT_HOST_MMAP_MIN) {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	if (posix_memalign(&p, PLAT_PAGE_SIZE, size))
		return NULL;
	return p;
}

void plat_free_pages(void *p, size_t size)
{
	if (size >= PLAT_HOST_MMAP_MIN)
		munmap(p, size);
	else
		free(p);
}

size_t plat_strlen(const char *s) { return strlen(s); }

/* ---- locks ---- */
struct plat_mutex {
	pthread_mutex_t m;
	unsigned owner; /* plat_thread_id of the holder, 0 = free */
	const char *name;
};

struct plat_mutex *plat_mutex_new(const char *name)
{
	struct plat_mutex *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->m, NULL);
	m->name = name;
	return m;
}

void plat_mutex_free(struct plat_mutex *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->m);
	free(m);
}

void plat_mutex_lock(struct plat_mutex *m)
{
	pthread_mutex_lock(&m->m);
	__atomic_store_n(&m->owner, plat_thread_id(), __ATOMIC_RELAXED);
}

bool plat_mutex_trylock(struct plat_mutex *m)
{
	if (pthread_mutex_trylock(&m->m))
		return false;
	__atomic_store_n(&m->owner, plat_thread_id(), __ATOMIC_RELAXED);
	return true;
}

void plat_mutex_unlock(struct plat_mutex *m)
{
	__atomic_store_n(&m->owner, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&m->m);
}

bool plat_mutex_held(struct plat_mutex *m)
{
	return __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == plat_thread_id();
}

struct plat_spin {
	pthread_mutex_t m;
};

struct plat_spin *plat_spin_new(const char *name)
{
	(void)name;
	struct plat_spin *s = calloc(1, sizeof(*s));
	if (s)
		pthread_mutex_init(&s->m, NULL);
	return s;
}

void plat_spin_free(struct plat_spin *s)
{
	if (s) {
		pthread_mutex_destroy(&s->m);
		free(s);
	}
}

void plat_spin_lock(struct plat_spin *s) { pthread_mutex_lock(&s->m); }
void plat_spin_unlock(struct plat_spin *s) { pthread_mutex_unlock(&s->m); }

/* ---- wait queues ----
 * The internal mutex makes "state change, then wake" race free: a waiter
 * evaluates cond under it, so it either sees the new state or is already
 * in pthread_cond_timedwait when the broadcast comes. */
struct plat_waitq {
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned waiters;
};

struct plat_waitq *plat_waitq_new(const char *name)
{
	(void)name;
	struct plat_waitq *q = calloc(1, sizeof(*q));
	pthread_condattr_t a;
	if (!q)
		return NULL;
	pthread_mutex_init(&q->m, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&q->c, &a);
	pthread_condattr_destroy(&a);
	return q;
}

void plat_waitq_free(struct plat_waitq *q)
{
	if (!q)
		return;
	pthread_cond_destroy(&q->c);
	pthread_mutex_destroy(&q->m);
	free(q);
}

int plat_wait_until(struct plat_waitq *q, bool (*cond)(void *), void *arg, uint64_t deadline)
{
	int ret = 0;
	pthread_mutex_lock(&q->m);
	q->waiters++;
	while (!cond(arg)) {
		if (deadline == PLAT_FOREVER) {
			pthread_cond_wait(&q->c, &q->m);
			continue;
		}
		if (plat_time_ns() >= deadline) {
			ret = -PLAT_ETIMEDOUT;
			break;
		}
		struct timespec ts = { (time_t)(deadline / 1000000000ull),
				       (long)(deadline % 1000000000ull) };
		pthread_cond_timedwait(&q->c, &q->m, &ts);
	}
	q->waiters--;
	pthread_mutex_unlock(&q->m);
	return ret;
}

void plat_wake_all(struct plat_waitq *q)
{
	pthread_mutex_lock(&q->m);
	if (q->waiters)
		pthread_cond_broadcast(&q->c);
	pthread_mutex_unlock(&q->m);
}

/* ---- threads and time ---- */
struct plat_thread {
	pthread_t t;
	void (*fn)(void *);
	void *arg;
	int done;
	pthread_mutex_t m;
	pthread_cond_t c;
};

static __thread unsigned plat_tid;
static unsigned plat_next_tid;

unsigned plat_thread_id(void)
{
	if (!plat_tid)
		plat_tid = __atomic_add_fetch(&plat_next_tid, 1, __ATOMIC_RELAXED);
	return plat_tid;
}

static void *plat_thread_tramp(void *p)
{
	struct plat_thread *t = p;
	t->fn(t->arg);
	pthread_mutex_lock(&t->m);
	t->done = 1;
	pthread_cond_broadcast(&t->c);
	pthread_mutex_unlock(&t->m);
	return NULL;
}

struct plat_thread *plat_thread_create(const char *name, void (*fn)(void *), void *arg)
{
	struct plat_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->m, NULL);
	pthread_cond_init(&t->c, NULL);
	if (pthread_create(&t->t, NULL, plat_thread_tramp, t)) {
		free(t);
		return NULL;
	}
	char n[16];
	snprintf(n, sizeof(n), "%s", name ? name : "plat");
	pthread_setname_np(t->t, n);
	return t;
}

int plat_thread_join(struct plat_thread *t, uint64_t deadline)
{
	pthread_mutex_lock(&t->m);
	while (!t->done) {
		if (deadline != PLAT_FOREVER && plat_time_ns() >= deadline) {
			pthread_mutex_unlock(&t->m);
			return -PLAT_ETIMEDOUT;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->c, &t->m, &ts);
	}
	pthread_mutex_unlock(&t->m);
	pthread_join(t->t, NULL);
	pthread_cond_destroy(&t->c);
	pthread_mutex_destroy(&t->m);
	free(t);
	return 0;
}

static __thread uint32_t plat_lockdep_word;
uint32_t *plat_thread_lockdep(void) { return &plat_lockdep_word; }

void plat_yield(void) { sched_yield(); }

void plat_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

uint64_t plat_time_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- randomness ---- */
int plat_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- logging ---- */
static int plat_log_level = PLAT_LOG_WARN;

void plat_log(int level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	if (level > plat_log_level && !getenv("IOMAP_LOG"))
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[iomap %s] ", names[level & 3]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int64_t plat_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *plat_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

int plat_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf(buf, size, fmt, ap);
}

void plat_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "PANIC %s:%d: %s\n", file, line, what);
	abort();
}
