/*
 * Spinlocks, wait queues and mutexes.
 *
 * Lock order: waitq lock -> run queue lock (sched.c).  Nothing that holds a
 * run queue lock takes a waitq lock, so wake-ups may come from anywhere,
 * including interrupt handlers.
 */
#include "kernel/sync.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/cpu.h"
#include "kernel/time.h"
#include "kernel/errno.h"
#include "kernel/panic.h"
#include "kernel/kprintf.h"

#define SPIN_NO_OWNER 0xffffffffu
/* A spinlock held this long (in TSC cycles) is a deadlock: about 10 s at
 * 3 GHz, longer than any console burst at 115200 baud.  Counted in cycles
 * so it works before time_init(). */
#define SPIN_DEADLOCK_CYCLES (30ULL * 1000 * 1000 * 1000)
#define MUTEX_WARN_NS (10 * NS_PER_S)

static inline unsigned sync_cpu(void)
{
	return smp_percpu_ready ? this_cpu()->index : 0;
}

void spin_init(spinlock_t *l, const char *name)
{
	l->locked = 0;
	l->owner_cpu = SPIN_NO_OWNER;
	l->name = name;
}

static inline bool spin_try_acquire(spinlock_t *l)
{
	return __atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE) == 0;
}

uint64_t spin_lock_irqsave(spinlock_t *l)
{
	uint64_t flags = irq_save();
	unsigned me = sync_cpu();

	if (spin_try_acquire(l))
		goto out;
	/* owner_cpu is written only by the holder after it acquired the lock
	 * and cleared before release, so it can equal `me` only if this CPU
	 * really holds it: waiting would never end. */
	if (__atomic_load_n(&l->owner_cpu, __ATOMIC_RELAXED) == me)
		panic("spinlock %s already held by this CPU", l->name ? l->name : "?");
	uint64_t start = rdtsc();
	for (;;) {
		for (unsigned i = 0; i < 1024; i++) {
			if (!__atomic_load_n(&l->locked, __ATOMIC_RELAXED) && spin_try_acquire(l))
				goto out;
			cpu_pause();
		}
		if (rdtsc() - start > SPIN_DEADLOCK_CYCLES)
			panic("spinlock %s: held by CPU %u for over %llu cycles (deadlock?)",
			      l->name ? l->name : "?", l->owner_cpu,
			      (unsigned long long)SPIN_DEADLOCK_CYCLES);
	}
out:
	l->owner_cpu = me;
	if (smp_percpu_ready)
		this_cpu()->spin_depth++;
	return flags;
}

bool spin_trylock_irqsave(spinlock_t *l, uint64_t *flags)
{
	uint64_t f = irq_save();
	if (!spin_try_acquire(l)) {
		irq_restore(f);
		return false;
	}
	l->owner_cpu = sync_cpu();
	if (smp_percpu_ready)
		this_cpu()->spin_depth++;
	*flags = f;
	return true;
}

void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags)
{
	__atomic_store_n(&l->owner_cpu, SPIN_NO_OWNER, __ATOMIC_RELAXED);
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	if (smp_percpu_ready)
		this_cpu()->spin_depth--;
	irq_restore(flags);
}

void spin_force_release(spinlock_t *l)
{
	uint64_t f = irq_save();
	if (__atomic_load_n(&l->locked, __ATOMIC_ACQUIRE) && smp_percpu_ready &&
	    l->owner_cpu == this_cpu()->index && this_cpu()->spin_depth)
		this_cpu()->spin_depth--;
	__atomic_store_n(&l->owner_cpu, SPIN_NO_OWNER, __ATOMIC_RELAXED);
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	irq_restore(f);
}

void spin_test_give_to(spinlock_t *l, unsigned cpu)
{
	if (smp_percpu_ready && l->owner_cpu == this_cpu()->index && cpu != l->owner_cpu)
		this_cpu()->spin_depth--;
	l->owner_cpu = cpu;
}

/* ---- wait queues ---- */

void waitq_init(struct waitq *q, const char *name)
{
	spin_init(&q->lock, name);
	q->head = q->tail = NULL;
}

static void waitq_link(struct waitq *q, struct thread *t)
{
	t->wq = q;
	t->wq_next = NULL;
	if (q->tail)
		q->tail->wq_next = t;
	else
		q->head = t;
	q->tail = t;
}

/* q->lock held.  A thread may already be gone (woken and unlinked). */
static void waitq_unlink(struct waitq *q, struct thread *t)
{
	struct thread *prev = NULL;
	for (struct thread *c = q->head; c; prev = c, c = c->wq_next) {
		if (c != t)
			continue;
		if (prev)
			prev->wq_next = c->wq_next;
		else
			q->head = c->wq_next;
		if (q->tail == c)
			q->tail = prev;
		break;
	}
	t->wq = NULL;
	t->wq_next = NULL;
}

static struct thread *waitq_pop(struct waitq *q)
{
	struct thread *t = q->head;
	if (t)
		waitq_unlink(q, t);
	return t;
}

/* Before the scheduler runs there is nobody to switch to: spin on the
 * condition until the deadline. */
static int waitq_poll(bool (*cond)(void *), void *arg, uint64_t deadline_ns)
{
	for (;;) {
		if (cond(arg))
			return 0;
		if (time_ns() >= deadline_ns)
			return -ETIMEDOUT;
		cpu_pause();
	}
}

int waitq_wait_until(struct waitq *q, bool (*cond)(void *), void *arg, uint64_t deadline_ns)
{
	if (!sched_active())
		return waitq_poll(cond, arg, deadline_ns);

	struct thread *me = thread_current();
	for (;;) {
		if (cond(arg))
			return 0;
		if (time_ns() >= deadline_ns)
			return -ETIMEDOUT;

		uint64_t flags = irq_save();
		/* Invariant against lost wake-ups: the thread is on the queue
		 * and marked BLOCKED before the condition is checked again, so
		 * a waker that makes it true after that check finds us on the
		 * queue, and sched_block() then returns at once. */
		spin_lock_irqsave(&q->lock);
		me->state = THREAD_BLOCKED;
		waitq_link(q, me);
		spin_unlock_irqrestore(&q->lock, 0);

		/* cond may take what it tests (a try-lock, a token): once it
		 * has said true it is not asked again -- a second call would
		 * take a second share, or find the lock it just took busy and
		 * sleep until the deadline holding it. */
		bool done = cond(arg);
		if (done)
			sched_unblock_self();
		else
			sched_block(deadline_ns);

		/* Woken by the deadline, or the cond was true: still linked. */
		spin_lock_irqsave(&q->lock);
		if (me->wq == q)
			waitq_unlink(q, me);
		spin_unlock_irqrestore(&q->lock, 0);
		irq_restore(flags);
		if (done)
			return 0;
	}
}

/*
 * Wakers send the IPI that starts an idle CPU only after dropping q->lock.
 * The woken thread's first step is to take q->lock (waitq_wait_until
 * unlinks itself), so an IPI sent under the lock has it spin on its CPU
 * until the waker's APIC write and ICR poll are done: under qemu's TCG
 * that spin was a third of a CPU in a stream of synchronous disk reads.
 * The threads themselves are still woken under the lock: once unlocked, a
 * thread whose deadline fired may return and exit, so the waker must not
 * touch it after the unlock; the kick needs only the CPU number.
 */
void waitq_wake_one(struct waitq *q)
{
	uint64_t kick = 0;
	uint64_t flags = spin_lock_irqsave(&q->lock);
	struct thread *t;
	/* A thread whose deadline fired is still linked but no longer
	 * blocked; skip it so exactly one sleeper is woken. */
	while ((t = waitq_pop(q)) != NULL)
		if (sched_wake_deferred(t, &kick))
			break;
	spin_unlock_irqrestore(&q->lock, flags);
	sched_kick_mask(kick);
}

void waitq_wake_all(struct waitq *q)
{
	uint64_t kick = 0;
	uint64_t flags = spin_lock_irqsave(&q->lock);
	struct thread *t;
	while ((t = waitq_pop(q)) != NULL)
		sched_wake_deferred(t, &kick);
	spin_unlock_irqrestore(&q->lock, flags);
	sched_kick_mask(kick);
}

/* ---- mutexes ---- */

void mutex_init(struct mutex *m, const char *name)
{
	spin_init(&m->lock, name);
	m->owner = NULL;
	waitq_init(&m->waiters, name);
	m->name = name;
}

bool mutex_trylock(struct mutex *m)
{
	struct thread *me = thread_current();
	uint64_t flags = spin_lock_irqsave(&m->lock);
	bool got = m->owner == NULL;
	if (got)
		m->owner = me;
	spin_unlock_irqrestore(&m->lock, flags);
	return got;
}

static bool mutex_is_free(void *arg)
{
	struct mutex *m = arg;
	return __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE) == NULL;
}

void mutex_lock(struct mutex *m)
{
	struct thread *me = thread_current();
	for (;;) {
		if (mutex_trylock(m))
			return;
		struct thread *owner = __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE);
		if (owner == me)
			panic("mutex %s: thread %s locks it again", m->name, thread_name(me));
		/* A mutex has no natural deadline; wait in slices and say
		 * who is stuck behind whom when one slice runs out. */
		if (waitq_wait_until(&m->waiters, mutex_is_free, m, time_ns() + MUTEX_WARN_NS) < 0) {
			owner = __atomic_load_n(&m->owner, __ATOMIC_ACQUIRE);
			kprintf("mutex %s: thread %s waiting over 10 s, held by %s\n", m->name,
				thread_name(me), owner ? thread_name(owner) : "nobody");
		}
	}
}

void mutex_unlock(struct mutex *m)
{
	struct thread *me = thread_current();
	uint64_t flags = spin_lock_irqsave(&m->lock);
	struct thread *owner = m->owner;
	if (owner != me) {
		spin_unlock_irqrestore(&m->lock, flags);
		panic("mutex %s unlocked by thread %s but owned by %s", m->name,
		      thread_name(me), owner ? thread_name(owner) : "nobody");
	}
	__atomic_store_n(&m->owner, NULL, __ATOMIC_RELEASE);
	spin_unlock_irqrestore(&m->lock, flags);
	waitq_wake_one(&m->waiters);
}

bool mutex_held(struct mutex *m)
{
	return __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == thread_current();
}
