/*
 * Platform interface of the portable layers (pcache/, iomap/, fs/, proto/).
 *
 * Everything the portable code needs from its environment goes through these
 * functions.  There are two implementations:
 *   - platform/host/: pthreads, pread/pwrite on a file, a thread pool
 *     completing block I/O asynchronously, fault injection and power cuts
 *     (host unit tests, tools, benchmarks);
 *   - platform/kernel/: plat_mutex = struct mutex, plat_waitq = struct
 *     waitq + waitq_wait_until, plat_thread = thread_create/thread_join,
 *     plat_time_ns = time_ns, memory = kmalloc / pmm_alloc_pages, block
 *     devices = the block layer (drivers/blk: NVMe, AHCI, memdisk) with
 *     one completion thread per CPU.
 *
 * Objects are opaque and created by the platform (plat_*_new), so portable
 * structures only hold pointers and never depend on the size of a kernel or
 * pthread type.
 *
 * Call order and states:
 *   plat_init() once, before anything else; plat_fini() last.
 *   Block device: CLOSED -> plat_bdev_open_*() -> OPEN -> plat_bdev_close()
 *   (which waits for every submitted bio to complete) -> CLOSED.
 *   A bio: built by the caller -> plat_bdev_submit() -> IN FLIGHT ->
 *   end_io(bio) called exactly once, from a platform completion thread
 *   (host: pool thread; kernel: the driver's completion thread, never the
 *   interrupt handler itself).  end_io may take spinlocks, wake waiters
 *   and free memory, but must not sleep or wait for other I/O: real work
 *   (filesystem completion hooks) is deferred to an iomap work queue.
 *
 * Optional operations (Unikraft ukblkdev style) return -PLAT_ENOTSUP when a
 * platform or device does not provide them: plat_bdev_poll, FUA, discard.
 *
 * Waiting: every wait has a deadline, an absolute plat_time_ns() value;
 * PLAT_FOREVER must be passed explicitly.  Waits return 0 or
 * -PLAT_ETIMEDOUT.
 */
#ifndef PLATFORM_PLATFORM_H
#define PLATFORM_PLATFORM_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>
#include "platform/errno.h"

#define PLAT_FOREVER UINT64_MAX
#define PLAT_PAGE_SIZE 4096u
#define PLAT_PAGE_SHIFT 12

int plat_init(void);
void plat_fini(void);

/* ---- memory -------------------------------------------------------------
 * plat_alloc: 16-byte aligned, not zeroed; NULL when out of memory.
 * plat_alloc_pages: size a multiple of PLAT_PAGE_SIZE up to 2 MiB, aligned
 * to PLAT_PAGE_SIZE (the kernel returns naturally aligned power-of-two
 * blocks); freed with the same size.  Thread safe, never from end_io. */
void *plat_alloc(size_t size);
void *plat_zalloc(size_t size);
void plat_free(void *p);
void *plat_alloc_pages(size_t size);
void plat_free_pages(void *p, size_t size);

/* The compiler's builtins: both implementations provide memcpy & co
 * (libc on the host, kernel/kstring.c in the kernel). */
static inline void *plat_memcpy(void *d, const void *s, size_t n) { return __builtin_memcpy(d, s, n); }
static inline void *plat_memmove(void *d, const void *s, size_t n) { return __builtin_memmove(d, s, n); }
static inline void *plat_memset(void *d, int c, size_t n) { return __builtin_memset(d, c, n); }
static inline int plat_memcmp(const void *a, const void *b, size_t n) { return __builtin_memcmp(a, b, n); }
size_t plat_strlen(const char *s);

/* ---- locks ---------------------------------------------------------------
 * plat_mutex: sleeping lock with owner tracking; plat_mutex_held() is true
 * only for the calling thread (debug asserts).
 * plat_spin: short critical sections, may be taken from end_io; never sleep
 * while holding one (host: a pthread mutex, kernel: spin_lock_irqsave). */
struct plat_mutex;
struct plat_mutex *plat_mutex_new(const char *name);
void plat_mutex_free(struct plat_mutex *m);
void plat_mutex_lock(struct plat_mutex *m);
bool plat_mutex_trylock(struct plat_mutex *m);
void plat_mutex_unlock(struct plat_mutex *m);
bool plat_mutex_held(struct plat_mutex *m);

struct plat_spin;
struct plat_spin *plat_spin_new(const char *name);
void plat_spin_free(struct plat_spin *s);
void plat_spin_lock(struct plat_spin *s);
void plat_spin_unlock(struct plat_spin *s);

/* ---- wait queues -----------------------------------------------------------
 * Mirrors kernel/sync.h: plat_wait_until sleeps until cond(arg) is true or the
 * deadline passes.  cond is evaluated with no lock held by the platform
 * and must therefore read state with atomics (or its own short lock).  It
 * may take what it tests (iomap's rwsem takes the lock in its cond): it is
 * not called again once it has returned true.
 * The waker changes the state first, then calls plat_wake_all; a wakeup can
 * not be lost.  plat_wake_* may be called from end_io. */
struct plat_waitq;
struct plat_waitq *plat_waitq_new(const char *name);
void plat_waitq_free(struct plat_waitq *q);
int plat_wait_until(struct plat_waitq *q, bool (*cond)(void *), void *arg, uint64_t deadline_ns);
void plat_wake_all(struct plat_waitq *q);

struct plat_bdev;

/* Waiting for memory someone else still owns (platform/common.c).
 *
 * The buffer-lifetime rule: a bio's pages, and any structure an in-flight
 * bio or writeback points into, belong to the device from submission
 * until end_io has run.  A wait for such a completion may therefore never
 * give up and let the caller free or reuse the memory: a reset can
 * legitimately take longer than any deadline, and its resubmission would
 * then DMA into freed pages.  This is the one primitive for those waits:
 * it sleeps until cond(arg) holds (running plat_bdev_poll(poll_dev) while
 * waiting when the device is polled), logs "<what>: still waiting after N s"
 * every PLAT_OWNED_LOG_NS (q NULL: nobody wakes the waiter, it looks again
 * every millisecond), and returns only when cond holds: 0 if that was
 * before soft_deadline_ns, -PLAT_ETIMEDOUT if it was later (the caller then
 * reports the operation as late or failed, but the memory is free to go).
 * Waits that own nothing (locks, throttling) use plat_wait_until. */
#define PLAT_OWNED_LOG_NS (10ull * 1000000000ull)
int plat_wait_owned(struct plat_waitq *q, bool (*cond)(void *), void *arg,
		    struct plat_bdev *poll_dev, uint64_t soft_deadline_ns, const char *what);

/* ---- threads and time ---------------------------------------------------- */
struct plat_thread;
struct plat_thread *plat_thread_create(const char *name, void (*fn)(void *), void *arg);
/* Wait for the thread to return and free it: 0 or -ETIMEDOUT (it is then
 * still running and still owned by the caller). */
int plat_thread_join(struct plat_thread *t, uint64_t deadline_ns);
/* A small integer unique among live threads (lock owner tracking). */
unsigned plat_thread_id(void);
/* One word of per-thread storage for the debug lock-order checker
 * (iomap/lock.c); zero for a new thread. */
uint32_t *plat_thread_lockdep(void);
void plat_yield(void);
void plat_sleep_ns(uint64_t ns);
uint64_t plat_time_ns(void);   /* monotonic */
int64_t plat_realtime_ns(void); /* wall clock: UTC ns since 1970 (file timestamps) */

/* ---- randomness -----------------------------------------------------------
 * len bytes from the platform's cryptographic source, for keys, nonces and
 * verifiers (host: getrandom(2); kernel: the CPU's RDSEED/RDRAND mixed with
 * the TSC, kernel/random.h).  0, or -PLAT_ENODEV when the platform has no
 * source (a CPU without RDSEED and RDRAND), -PLAT_EIO when it failed; the
 * caller must then not make keys.  Any thread; never sleeps for long. */
int plat_random(void *buf, size_t len);

/* ---- logging and assertions ---------------------------------------------- */
enum { PLAT_LOG_ERR, PLAT_LOG_WARN, PLAT_LOG_INFO, PLAT_LOG_DEBUG };
void plat_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* plat_vsnprintf is the platform's formatter; plat_snprintf is built on it
 * (platform/common.c). */
/* Words for an error number (err or -err): "no space left", ... */
const char *plat_strerror(int err);
int plat_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int plat_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
__attribute__((noreturn)) void plat_panic(const char *file, int line, const char *what);
#define PLAT_ASSERT(c) do { if (!(c)) plat_panic(__FILE__, __LINE__, #c); } while (0)

/* ---- block devices ---------------------------------------------------------
 * Byte-addressed: dev_off and every segment length must be multiples of
 * plat_bdev_block_size() (the logical block size, 512 or 4096).  */
struct plat_bdev;
struct plat_bio;

/* PLAT_BIO_DISCARD (no vectors, len bytes at dev_off): the device may
 * forget those blocks (TRIM, NVMe deallocate); they then read back as
 * zeroes or as old data.  Optional: -PLAT_ENOTSUP when the device has
 * none.  Filesystems discard only space whose freeing is committed. */
enum plat_bio_op { PLAT_BIO_READ, PLAT_BIO_WRITE, PLAT_BIO_FLUSH, PLAT_BIO_DISCARD };
#define PLAT_BIO_FUA 0x1u       /* write through to stable media (optional) */

struct plat_bvec {
	void *buf;
	uint32_t len;
};

#define PLAT_BIO_INLINE_VECS 4
struct plat_bio {
	struct plat_bdev *bdev;
	enum plat_bio_op op;
	unsigned flags;             /* PLAT_BIO_FUA */
	uint64_t dev_off;           /* bytes */
	uint64_t len;               /* sum of vec[i].len */
	unsigned nvec, maxvec;
	struct plat_bvec *vec;      /* inline_vec or caller-allocated */
	struct plat_bvec inline_vec[PLAT_BIO_INLINE_VECS];
	int status;                 /* set before end_io: 0 or -errno */
	void (*end_io)(struct plat_bio *bio);
	void *private;
};

/* Building a bio: set it up over caller-owned vectors, then append
 * buffers.  plat_bio_append extends the last vector when `extend` is true
 * and buf continues it in memory, else takes a new vector; returns 1 (new
 * vector, index nvec - 1), 0 (the last one grew) or -PLAT_ENOSPC (full). */
static inline void plat_bio_setup(struct plat_bio *bio, struct plat_bdev *b, enum plat_bio_op op,
				  uint64_t dev_off, struct plat_bvec *vec, unsigned maxvec,
				  void (*end_io)(struct plat_bio *))
{
	bio->bdev = b;
	bio->op = op;
	bio->dev_off = dev_off;
	bio->len = 0;
	bio->nvec = 0;
	bio->vec = vec;
	bio->maxvec = maxvec;
	bio->end_io = end_io;
}

static inline int plat_bio_append(struct plat_bio *bio, void *buf, uint32_t len, bool extend)
{
	struct plat_bvec *last = bio->nvec ? &bio->vec[bio->nvec - 1] : NULL;
	bio->len += len;
	if (extend && last && (char *)last->buf + last->len == (char *)buf) {
		last->len += len;
		return 0;
	}
	if (bio->nvec == bio->maxvec) {
		bio->len -= len;
		return -PLAT_ENOSPC;
	}
	bio->vec[bio->nvec].buf = buf;
	bio->vec[bio->nvec].len = len;
	bio->nvec++;
	return 1;
}

uint32_t plat_bdev_block_size(struct plat_bdev *b);
uint64_t plat_bdev_size(struct plat_bdev *b);
const char *plat_bdev_name(struct plat_bdev *b);
/* Queue the bio; end_io is always called exactly once, also on error.
 * FLUSH makes every write completed before it stable. */
void plat_bdev_submit(struct plat_bio *bio);
/* Polled completion: run completions for up to `budget` bios on the calling
 * thread; returns how many, or -ENOTSUP when the device only interrupts. */
int plat_bdev_poll(struct plat_bdev *b, unsigned budget);
void plat_bdev_close(struct plat_bdev *b);

/* Synchronous helpers built on submit (portable, platform/common.c). */
/* Synchronous I/O taking longer than this is reported as -EIO once the bio
 * is back (tests shorten it). */
extern uint64_t plat_sync_io_timeout_ns;
int plat_bdev_rw(struct plat_bdev *b, enum plat_bio_op op, uint64_t dev_off, void *buf, size_t len);
int plat_bdev_flush(struct plat_bdev *b);
/* Synchronous discard: 0, -PLAT_ENOTSUP or -errno. */
int plat_bdev_discard(struct plat_bdev *b, uint64_t dev_off, uint64_t len);

/* ---- atomics (compiler builtins: available freestanding) ----------------- */
#define plat_load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define plat_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define plat_add(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define plat_sub(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)
#define plat_or(p, v) __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define plat_and(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)
#define plat_cas(p, oldp, v) \
	__atomic_compare_exchange_n((p), (oldp), (v), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#endif
