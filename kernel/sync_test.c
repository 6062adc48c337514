/* Self-tests for spinlocks, wait queues and mutexes, across CPUs. */
#include "kernel/selftest.h"
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/time.h"
#include "kernel/errno.h"
#include "kernel/cpu.h"
#include "kernel/kprintf.h"

#define SYNC_TEST_THREADS 4

/* Run fn on SYNC_TEST_THREADS threads spread over the online CPUs and join
 * them; false if any could not be created or joined. */
static bool sync_test_spread(thread_fn fn, void *arg)
{
	struct thread *t[SYNC_TEST_THREADS];
	bool ok = true;
	for (unsigned i = 0; i < SYNC_TEST_THREADS; i++) {
		int cpu = (int)(i % ncpus_online);
		if (!cpus[cpu] || !cpus[cpu]->online)
			cpu = THREAD_ANY_CPU;
		t[i] = thread_create("st-sync", fn, arg, cpu);
		ok &= t[i] != NULL;
	}
	for (unsigned i = 0; i < SYNC_TEST_THREADS; i++)
		if (t[i])
			ok &= thread_join(t[i], 20 * NS_PER_S) == 0;
	return ok;
}

static struct mutex sync_test_mutex;
static volatile unsigned sync_test_counter;
static volatile bool sync_test_held_ok;
#define SYNC_MUTEX_ITERS 300

static void sync_test_mutex_worker(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < SYNC_MUTEX_ITERS; i++) {
		mutex_lock(&sync_test_mutex);
		if (!mutex_held(&sync_test_mutex))
			sync_test_held_ok = false;
		unsigned v = sync_test_counter;
		if (i % 16 == 0)
			thread_yield();     /* invite others in while holding it */
		sync_test_counter = v + 1;
		mutex_unlock(&sync_test_mutex);
	}
}

SELFTEST(sync, mutex_counter)
{
	mutex_init(&sync_test_mutex, "st-mutex");
	sync_test_counter = 0;
	sync_test_held_ok = true;
	ST_EXPECT(sync_test_spread(sync_test_mutex_worker, NULL));
	ST_EXPECT(sync_test_counter == SYNC_TEST_THREADS * SYNC_MUTEX_ITERS);
	ST_EXPECT(sync_test_held_ok);
	ST_EXPECT(!mutex_held(&sync_test_mutex));
}

SELFTEST(sync, mutex_trylock)
{
	struct mutex m;
	mutex_init(&m, "st-try");
	ST_EXPECT(!mutex_held(&m));
	ST_EXPECT(mutex_trylock(&m));
	ST_EXPECT(mutex_held(&m));
	ST_EXPECT(!mutex_trylock(&m));
	mutex_unlock(&m);
	ST_EXPECT(!mutex_held(&m));
}

static spinlock_t sync_test_spin = SPINLOCK_INIT("st-spin");
static volatile unsigned sync_test_spin_count;
#define SYNC_SPIN_ITERS 20000

static void sync_test_spin_worker(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < SYNC_SPIN_ITERS; i++) {
		uint64_t f = spin_lock_irqsave(&sync_test_spin);
		unsigned v = sync_test_spin_count;
		__asm__ volatile("pause");
		sync_test_spin_count = v + 1;
		spin_unlock_irqrestore(&sync_test_spin, f);
	}
}

SELFTEST(sync, spinlock_counter)
{
	sync_test_spin_count = 0;
	ST_EXPECT(sync_test_spread(sync_test_spin_worker, NULL));
	ST_EXPECT(sync_test_spin_count == SYNC_TEST_THREADS * SYNC_SPIN_ITERS);
	uint64_t f;
	ST_EXPECT(spin_trylock_irqsave(&sync_test_spin, &f));
	ST_EXPECT(!cpu_irqs_enabled());
	uint64_t g;
	ST_EXPECT(!spin_trylock_irqsave(&sync_test_spin, &g));
	spin_unlock_irqrestore(&sync_test_spin, f);
}

static bool sync_test_never(void *arg)
{
	(void)arg;
	return false;
}

SELFTEST(sync, waitq_timeout)
{
	struct waitq q;
	waitq_init(&q, "st-timeout");
	uint64_t t0 = time_ns();
	ST_EXPECT(waitq_wait_until(&q, sync_test_never, NULL, t0 + 20 * NS_PER_MS) == -ETIMEDOUT);
	uint64_t dt = time_ns() - t0;
	ST_EXPECT(dt >= 20 * NS_PER_MS);
	ST_EXPECT(dt < NS_PER_S);
	ST_EXPECT(q.head == NULL && q.tail == NULL);
}

/* A cond that takes a token (as a try-lock does), false on its first
 * call: true on the second, which is the check made after the thread is
 * queued.  The wait must return 0 with the token taken once -- not ask
 * again, find no token, and sleep to the deadline holding it. */
struct sync_test_token {
	unsigned calls, tokens;
};

static bool sync_test_take_token(void *arg)
{
	struct sync_test_token *t = arg;
	if (t->calls++ == 0 || !t->tokens)
		return false;
	t->tokens--;
	return true;
}

SELFTEST(sync, waitq_cond_that_takes_is_not_asked_again)
{
	struct waitq q;
	struct sync_test_token t = { 0, 1 };
	waitq_init(&q, "st-token");
	uint64_t t0 = time_ns();
	ST_EXPECT(waitq_wait_until(&q, sync_test_take_token, &t, t0 + 5 * NS_PER_S) == 0);
	ST_EXPECT(t.calls == 2);
	ST_EXPECT(t.tokens == 0);
	ST_EXPECT(q.head == NULL && q.tail == NULL);
}

/* wake_one: three waiters whose condition is already true but who are not
 * re-evaluated until woken or until their (late) deadline.  Exactly one
 * must come back early. */
#define SYNC_WAITERS 3
static struct waitq sync_test_q = WAITQ_INIT("st-wake");
static volatile bool sync_test_go;
static volatile uint64_t sync_test_returned_ns[SYNC_WAITERS];
static volatile int sync_test_result[SYNC_WAITERS];

static bool sync_test_go_cond(void *arg)
{
	(void)arg;
	return sync_test_go;
}

static void sync_test_waiter(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	sync_test_result[i] = waitq_wait_until(&sync_test_q, sync_test_go_cond, NULL,
					       time_ns() + 2 * NS_PER_S);
	sync_test_returned_ns[i] = time_ns();
}

static unsigned sync_test_queued(struct waitq *q)
{
	unsigned n = 0;
	uint64_t f = spin_lock_irqsave(&q->lock);
	for (struct thread *t = q->head; t; t = t->wq_next)
		n++;
	spin_unlock_irqrestore(&q->lock, f);
	return n;
}

static bool sync_test_start_waiters(struct thread **t)
{
	bool ok = true;
	sync_test_go = false;
	for (unsigned i = 0; i < SYNC_WAITERS; i++) {
		sync_test_returned_ns[i] = 0;
		sync_test_result[i] = 1;
		t[i] = thread_create("st-waiter", sync_test_waiter, (void *)(uintptr_t)i,
				     THREAD_ANY_CPU);
		ok &= t[i] != NULL;
	}
	uint64_t deadline = time_ns() + 2 * NS_PER_S;
	while (sync_test_queued(&sync_test_q) < SYNC_WAITERS && time_ns() < deadline)
		thread_sleep_ns(NS_PER_MS);
	return ok && sync_test_queued(&sync_test_q) == SYNC_WAITERS;
}

SELFTEST(sync, wake_one)
{
	struct thread *t[SYNC_WAITERS];
	ST_EXPECT(sync_test_start_waiters(t));
	sync_test_go = true;
	uint64_t t0 = time_ns();
	waitq_wake_one(&sync_test_q);
	unsigned early = 0;
	for (unsigned i = 0; i < SYNC_WAITERS; i++) {
		if (!t[i])
			continue;
		ST_EXPECT(thread_join(t[i], 5 * NS_PER_S) == 0);
		ST_EXPECT(sync_test_result[i] == 0);
		early += sync_test_returned_ns[i] - t0 < NS_PER_S;
	}
	ST_EXPECT(early == 1);
}

SELFTEST(sync, wake_all)
{
	struct thread *t[SYNC_WAITERS];
	ST_EXPECT(sync_test_start_waiters(t));
	sync_test_go = true;
	uint64_t t0 = time_ns();
	waitq_wake_all(&sync_test_q);
	for (unsigned i = 0; i < SYNC_WAITERS; i++) {
		if (!t[i])
			continue;
		ST_EXPECT(thread_join(t[i], 5 * NS_PER_S) == 0);
		ST_EXPECT(sync_test_result[i] == 0);
		ST_EXPECT(sync_test_returned_ns[i] - t0 < NS_PER_S);
	}
	ST_EXPECT(sync_test_queued(&sync_test_q) == 0);
}

/* Ping-pong between two threads on different CPUs (when there are two)
 * through two wait queues: a lost wake-up shows up as a timeout. */
#define SYNC_PINGPONG_ROUNDS 300
static struct waitq sync_test_ping = WAITQ_INIT("st-ping"), sync_test_pong = WAITQ_INIT("st-pong");
static volatile unsigned sync_test_turn;     /* even: ping's move, odd: pong's */
static volatile unsigned sync_test_pp_timeouts;

struct sync_test_pp {
	unsigned parity;
	struct waitq *mine, *other;
};

static bool sync_test_my_turn(void *arg)
{
	struct sync_test_pp *p = arg;
	return (__atomic_load_n(&sync_test_turn, __ATOMIC_ACQUIRE) & 1) == p->parity;
}

static void sync_test_pp_worker(void *arg)
{
	struct sync_test_pp *p = arg;
	for (unsigned i = 0; i < SYNC_PINGPONG_ROUNDS; i++) {
		if (waitq_wait_until(p->mine, sync_test_my_turn, p, time_ns() + 2 * NS_PER_S) != 0) {
			__atomic_add_fetch(&sync_test_pp_timeouts, 1, __ATOMIC_RELAXED);
			return;
		}
		__atomic_add_fetch(&sync_test_turn, 1, __ATOMIC_RELEASE);
		waitq_wake_one(p->other);
	}
}

SELFTEST(sync, pingpong)
{
	static struct sync_test_pp ping = { 0, &sync_test_ping, &sync_test_pong };
	static struct sync_test_pp pong = { 1, &sync_test_pong, &sync_test_ping };
	sync_test_turn = 0;
	sync_test_pp_timeouts = 0;
	int c1 = ncpus_online > 1 ? 1 : 0;
	struct thread *a = thread_create("st-ping", sync_test_pp_worker, &ping, 0);
	struct thread *b = thread_create("st-pong", sync_test_pp_worker, &pong, c1);
	ST_EXPECT(a && b);
	if (a)
		ST_EXPECT(thread_join(a, 30 * NS_PER_S) == 0);
	if (b)
		ST_EXPECT(thread_join(b, 30 * NS_PER_S) == 0);
	ST_EXPECT(sync_test_pp_timeouts == 0);
	ST_EXPECT(sync_test_turn == 2 * SYNC_PINGPONG_ROUNDS);
}

/* A waker sends the IPI that starts the woken thread's idle CPU only after
 * dropping the wait queue's lock (sync.c): the woken thread takes that
 * lock first.  A waiter on the other CPU is woken again and again with
 * this CPU's interrupts off, so every IPI counted in the window is the
 * wake's own. */
#define SYNC_IPI_ROUNDS 40
static struct waitq sync_test_ipi_q = WAITQ_INIT("st-ipi");
static volatile unsigned sync_test_ipi_seq, sync_test_ipi_seen;

static bool sync_test_ipi_next(void *arg)
{
	return __atomic_load_n(&sync_test_ipi_seq, __ATOMIC_ACQUIRE) != (unsigned)(uintptr_t)arg;
}

static void sync_test_ipi_waiter(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < SYNC_IPI_ROUNDS; i++) {
		if (waitq_wait_until(&sync_test_ipi_q, sync_test_ipi_next, (void *)(uintptr_t)i,
				     time_ns() + 5 * NS_PER_S) != 0)
			return;
		__atomic_store_n(&sync_test_ipi_seen, i + 1, __ATOMIC_RELEASE);
	}
}

static bool sync_test_ipi_linked(void)
{
	uint64_t f = spin_lock_irqsave(&sync_test_ipi_q.lock);
	bool linked = sync_test_ipi_q.head != NULL;
	spin_unlock_irqrestore(&sync_test_ipi_q.lock, f);
	return linked;
}

static uint64_t sync_test_ipis, sync_test_ipis_under;

/* Pinned to CPU 0 with the waiter on CPU 1. */
static void sync_test_ipi_waker(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < SYNC_IPI_ROUNDS; i++) {
		uint64_t until = time_ns() + 5 * NS_PER_S;
		while (!sync_test_ipi_linked() && time_ns() < until)
			thread_sleep_ns(NS_PER_MS);
		thread_sleep_ns(NS_PER_MS);        /* let its CPU go idle */
		uint64_t f = irq_save();
		unsigned me = this_cpu()->index;
		/* Depth relative to now: what this thread holds, none. */
		uint64_t i0 = sched_ipis(me), base = this_cpu()->spin_depth;
		__atomic_store_n(&sync_test_ipi_seq, i + 1, __ATOMIC_RELEASE);
		if (i & 1)
			waitq_wake_one(&sync_test_ipi_q);
		else
			waitq_wake_all(&sync_test_ipi_q);
		sync_test_ipis += sched_ipis(me) - i0;
		if (sched_ipis(me) != i0 && sched_ipi_spin_depth(me) != base)
			sync_test_ipis_under++;
		irq_restore(f);
		if (base && i == 0)
			kprintf("    CPU %u counts %llu spinlocks held at rest\n", me, (unsigned long long)base);
		until = time_ns() + 5 * NS_PER_S;
		while (__atomic_load_n(&sync_test_ipi_seen, __ATOMIC_ACQUIRE) != i + 1 && time_ns() < until)
			thread_sleep_ns(100 * 1000);
	}
}

SELFTEST(sync, wake_sends_its_ipi_after_the_lock)
{
	if (ncpus_online < 2)
		ST_SKIP("one CPU: no IPIs to send");
	sync_test_ipi_seq = 0;
	sync_test_ipi_seen = 0;
	sync_test_ipis = sync_test_ipis_under = 0;
	struct thread *w = thread_create("st-ipi-wait", sync_test_ipi_waiter, NULL, 1);
	struct thread *k = thread_create("st-ipi-wake", sync_test_ipi_waker, NULL, 0);
	ST_EXPECT(w && k);
	if (k)
		ST_EXPECT(thread_join(k, 30 * NS_PER_S) == 0);
	if (w)
		ST_EXPECT(thread_join(w, 10 * NS_PER_S) == 0);
	ST_EXPECT(sync_test_ipi_seen == SYNC_IPI_ROUNDS);
	/* The waiter's CPU was idle for most wakes, so they sent IPIs... */
	ST_EXPECT(sync_test_ipis >= SYNC_IPI_ROUNDS / 4);
	/* ...and none of them under a spinlock. */
	ST_EXPECT(sync_test_ipis_under == 0);
	if (sync_test_ipis < SYNC_IPI_ROUNDS / 4 || sync_test_ipis_under)
		kprintf("    %llu IPIs, %llu under a lock\n", (unsigned long long)sync_test_ipis,
			(unsigned long long)sync_test_ipis_under);
}
