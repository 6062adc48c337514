/*
 * Locks and waiting (kernel/sync.c).
 *
 * spinlock: IRQ-saving, for short sections and anything an interrupt
 *   handler touches.  Never sleep while holding one.
 * mutex: sleeping lock, owner recorded; must not be taken in IRQ context.
 * waitq: a queue of sleeping threads.  waitq_wait_until() sleeps until
 *   cond(arg) is true or the deadline (absolute time_ns()) passes; every
 *   wait in the kernel has a deadline.  waitq_wake_*() may be called from
 *   interrupt handlers.
 */
#ifndef KERNEL_SYNC_H
#define KERNEL_SYNC_H

#include <stdint.h>
#include <stdbool.h>

typedef struct spinlock {
	volatile uint32_t locked;
	uint32_t owner_cpu;
	const char *name;
} spinlock_t;

#define SPINLOCK_INIT(n) { 0, 0xffffffffu, (n) }

void spin_init(spinlock_t *l, const char *name);
/* Returns the saved flags for spin_unlock_irqrestore. */
uint64_t spin_lock_irqsave(spinlock_t *l);
void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags);
bool spin_trylock_irqsave(spinlock_t *l, uint64_t *flags);
/*
 * Each CPU counts the spinlocks it holds (percpu.spin_depth); a thread
 * between lock operations sees 0 there.  Fatal paths release a lock whose
 * holder never will with spin_force_release(): the count drops if this
 * CPU was the holder, and a lock another CPU holds stays counted there
 * (that CPU is being halted).  spin_test_give_to() is for self-tests that
 * stage "another CPU holds it": the lock this CPU took becomes that CPU's,
 * and leaves this CPU's count.
 */
void spin_force_release(spinlock_t *l);
void spin_test_give_to(spinlock_t *l, unsigned cpu);

struct thread;
struct waitq {
	spinlock_t lock;
	struct thread *head, *tail;
};
#define WAITQ_INIT(n) { SPINLOCK_INIT(n), 0, 0 }

void waitq_init(struct waitq *q, const char *name);
/* 0 when cond became true, -ETIMEDOUT at the deadline (0 = no deadline is
 * NOT allowed: pass UINT64_MAX explicitly to wait forever).  cond may have
 * an effect (take a lock or a token): it is called until it first returns
 * true and never again in that wait, so 0 means it took exactly once and
 * -ETIMEDOUT that it never did. */
int waitq_wait_until(struct waitq *q, bool (*cond)(void *), void *arg, uint64_t deadline_ns);
void waitq_wake_one(struct waitq *q);
void waitq_wake_all(struct waitq *q);

struct mutex {
	spinlock_t lock;
	struct thread *owner;
	struct waitq waiters;
	const char *name;
};
void mutex_init(struct mutex *m, const char *name);
void mutex_lock(struct mutex *m);
bool mutex_trylock(struct mutex *m);
void mutex_unlock(struct mutex *m);
bool mutex_held(struct mutex *m);      /* by the current thread */

#endif
