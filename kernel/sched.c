/*
 * The scheduler: per-CPU run queues, round robin with a 10 ms slice, a
 * per-CPU deadline-ordered sleep list, and one LAPIC one-shot timer per CPU
 * programmed for min(slice end, earliest wake-up).
 *
 * Locking: each CPU's run queue lock protects its queue, its sleep list,
 * the state of every thread whose `cpu` is that CPU, and percpu->current.
 * The lock is held across a context switch and released by the thread
 * switched to (sched_finish_switch), so whoever takes the lock and finds a
 * thread that is not `current` knows its registers are completely saved and
 * may move it to another CPU.
 */
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/smp.h"
#include "kernel/apic.h"
#include "kernel/cpu.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/errno.h"
#include "kernel/panic.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/kernel.h"

#define SCHED_SLICE_NS (10 * NS_PER_MS)
#define SCHED_MIN_TIMER_NS (20 * NS_PER_US)

struct sched_rq {
	spinlock_t lock;
	struct thread *head, *tail;   /* RUNNABLE threads, FIFO */
	unsigned nr;
	struct thread *sleepers;      /* BLOCKED with a deadline, earliest first */
	uint64_t slice_end;
	uint64_t timer_at;            /* when the LAPIC timer fires; 0 = not armed (fired or stopped) */
	uint64_t timer_writes;        /* times it was programmed (statistics, tests) */
	uint64_t timer_replaced;      /* writes that moved a timer not yet due for a slice (tests) */
	uint64_t ipis;                /* rescheduling IPIs sent from this CPU */
	uint64_t ipi_spin_depth;      /* spinlocks it held at the last one */
	uint64_t switches;
	uint64_t idle_ns, idle_since;
	volatile bool running;
};

static struct sched_rq sched_rq_bsp;

static inline struct sched_rq *sched_rq_of(unsigned cpu)
{
	return cpus[cpu]->sched;
}

bool sched_active(void)
{
	if (!smp_percpu_ready)
		return false;
	struct sched_rq *rq = this_cpu()->sched;
	return rq && rq->running;
}

static void sched_rq_push(struct sched_rq *rq, struct thread *t)
{
	t->rq_next = NULL;
	if (rq->tail)
		rq->tail->rq_next = t;
	else
		rq->head = t;
	rq->tail = t;
	rq->nr++;
}

static struct thread *sched_rq_pop(struct sched_rq *rq)
{
	struct thread *t = rq->head;
	if (!t)
		return NULL;
	rq->head = t->rq_next;
	if (!rq->head)
		rq->tail = NULL;
	rq->nr--;
	t->rq_next = NULL;
	return t;
}

static void sched_sleep_insert(struct sched_rq *rq, struct thread *t)
{
	struct thread **pp = &rq->sleepers;
	while (*pp && (*pp)->wake_ns <= t->wake_ns)
		pp = &(*pp)->sleep_next;
	t->sleep_next = *pp;
	*pp = t;
	t->sleeping = true;
}

static void sched_sleep_remove(struct sched_rq *rq, struct thread *t)
{
	for (struct thread **pp = &rq->sleepers; *pp; pp = &(*pp)->sleep_next) {
		if (*pp == t) {
			*pp = t->sleep_next;
			break;
		}
	}
	t->sleep_next = NULL;
	t->sleeping = false;
}

/*
 * This CPU's rq lock held.  The idle thread needs no slice: only wake-ups
 * (and IPIs for new work) end its hlt.
 *
 * Programming the timer is a write to the LAPIC, which qemu's TCG emulates
 * under its global lock; written at every switch it was ~7 % of a busy
 * guest's time.  So a timer that is armed, still pending and due no later
 * than the new deadline is left alone: it fires early, and sched_tick()
 * (which marks it fired) programs the real deadline.  An armed timer that
 * is no longer wanted is left to fire as well, once.
 */
static void sched_program_timer(struct sched_rq *rq, uint64_t now)
{
	struct percpu *pc = this_cpu();
	uint64_t next = pc->current == pc->idle ? UINT64_MAX : rq->slice_end;
	if (rq->sleepers && rq->sleepers->wake_ns < next)
		next = rq->sleepers->wake_ns;
	if (rq->timer_at > now && rq->timer_at <= next)
		return;
	if (next == UINT64_MAX)
		return;             /* not armed, nothing due */
	uint64_t delta = next > now ? next - now : 0;
	delta = MAX(delta, SCHED_MIN_TIMER_NS);
	/* What the rule above forbids: a pending timer moved for the new
	 * slice alone.  Moving it earlier for a sleeper's wake-up is needed. */
	if (rq->timer_at > now && next == rq->slice_end)
		rq->timer_replaced++;
	lapic_timer_oneshot(delta);
	rq->timer_at = now + delta;
	rq->timer_writes++;
}

/*
 * This CPU's rq lock held, IRQs off.  current->state says what happens to
 * it: RUNNING stays runnable (requeued at the tail unless idle), BLOCKED or
 * DEAD leave it off the queue.  Returns with the lock released.
 */
static void sched_reschedule_locked(struct sched_rq *rq)
{
	struct percpu *pc = this_cpu();
	struct thread *prev = pc->current;
	struct thread *next = sched_rq_pop(rq);

	if (prev->state == THREAD_RUNNING) {
		if (!next) {
			spin_unlock_irqrestore(&rq->lock, 0);
			return;
		}
		/* The idle thread is never queued: it runs when nothing is. */
		prev->state = THREAD_RUNNABLE;
		if (!prev->is_idle)
			sched_rq_push(rq, prev);
	}
	if (!next)
		next = pc->idle;

	uint64_t now = time_ns();
	if (prev->is_idle)
		rq->idle_ns += now - rq->idle_since;
	if (next->is_idle)
		rq->idle_since = now;
	rq->switches++;
	next->switches_in++;
	next->state = THREAD_RUNNING;
	next->cpu = pc->index;
	pc->current = next;
	rq->slice_end = now + SCHED_SLICE_NS;
	sched_program_timer(rq, now);
	thread_check_stack(prev);

	prev = sched_switch_to(prev, next);
	sched_finish_switch(prev);
}

void sched_finish_switch(struct thread *prev)
{
	struct sched_rq *rq = this_cpu()->sched;
	/* Read before unlocking: once the lock is dropped a live prev may be
	 * woken elsewhere, run, exit and be reaped by that CPU. */
	bool dead = prev->state == THREAD_DEAD;
	spin_unlock_irqrestore(&rq->lock, 0);
	if (dead)
		thread_reap(prev);
}

unsigned sched_pick_cpu(unsigned prefer)
{
	unsigned best = prefer, best_load = UINT32_MAX;
	for (unsigned i = 0; i < MAX_CPUS && cpus[i]; i++) {
		struct percpu *pc = cpus[i];
		struct sched_rq *rq = pc->sched;
		if (!pc->online || !rq || !rq->running)
			continue;
		/* Racy read on purpose: placement is a heuristic. */
		unsigned load = rq->nr + (pc->current != pc->idle);
		if (load < best_load || (load == best_load && i == prefer)) {
			best = i;
			best_load = load;
		}
	}
	return best;
}

/* Target rq lock held: queue t there and say whether its CPU needs an IPI
 * (it idles; a busy CPU picks t up at its next slice end). */
static bool sched_queue_on(struct sched_rq *rq, unsigned cpu, struct thread *t)
{
	t->state = THREAD_RUNNABLE;
	t->cpu = cpu;
	sched_rq_push(rq, t);
	return cpus[cpu]->current == cpus[cpu]->idle;
}

static void sched_kick(unsigned cpu)
{
	struct percpu *me = this_cpu();
	if (cpu == me->index)
		return;
	struct sched_rq *rq = me->sched;
	rq->ipis++;
	rq->ipi_spin_depth = me->spin_depth;
	lapic_send_ipi(cpus[cpu]->apic_id, VEC_IPI_RESCHED);
}

void sched_kick_mask(uint64_t kick)
{
	while (kick) {
		unsigned cpu = (unsigned)__builtin_ctzll(kick);
		kick &= kick - 1;
		sched_kick(cpu);
	}
}

int sched_enqueue_new(struct thread *t)
{
	unsigned cpu = t->cpu;
	struct sched_rq *rq = sched_rq_of(cpu);
	uint64_t f = spin_lock_irqsave(&rq->lock);
	bool kick = sched_queue_on(rq, cpu, t);
	spin_unlock_irqrestore(&rq->lock, f);
	if (kick)
		sched_kick(cpu);
	return 0;
}

bool sched_wake(struct thread *t)
{
	uint64_t kick = 0;
	bool woke = sched_wake_deferred(t, &kick);
	sched_kick_mask(kick);
	return woke;
}

bool sched_wake_deferred(struct thread *t, uint64_t *kick_mask)
{
	struct sched_rq *rq;
	unsigned cpu;
	uint64_t f;
	/* t->cpu only changes under the lock of the CPU it names. */
	for (;;) {
		cpu = t->cpu;
		rq = sched_rq_of(cpu);
		f = spin_lock_irqsave(&rq->lock);
		if (t->cpu == cpu)
			break;
		spin_unlock_irqrestore(&rq->lock, f);
	}
	if (t->state != THREAD_BLOCKED) {
		spin_unlock_irqrestore(&rq->lock, f);
		return false;
	}
	if (t->sleeping)
		sched_sleep_remove(rq, t);
	if (cpus[cpu]->current == t) {
		/* Still on its way into sched_block(): it will not switch. */
		t->state = THREAD_RUNNING;
		spin_unlock_irqrestore(&rq->lock, f);
		return true;
	}
	unsigned target = t->pinned >= 0 ? (unsigned)t->pinned : sched_pick_cpu(cpu);
	bool kick;
	if (target == cpu) {
		kick = sched_queue_on(rq, cpu, t);
		spin_unlock_irqrestore(&rq->lock, f);
	} else {
		/* RUNNABLE and on no list: nobody else touches t until it is
		 * queued on the target. */
		t->state = THREAD_RUNNABLE;
		t->cpu = target;
		spin_unlock_irqrestore(&rq->lock, f);
		struct sched_rq *trq = sched_rq_of(target);
		f = spin_lock_irqsave(&trq->lock);
		kick = sched_queue_on(trq, target, t);
		spin_unlock_irqrestore(&trq->lock, f);
	}
	if (kick)
		*kick_mask |= 1ull << target;
	return true;
}

void sched_block(uint64_t deadline_ns)
{
	struct percpu *pc = this_cpu();
	struct sched_rq *rq = pc->sched;
	struct thread *me = pc->current;
	spin_lock_irqsave(&rq->lock);
	if (me->state != THREAD_BLOCKED) {
		spin_unlock_irqrestore(&rq->lock, 0);
		return;
	}
	if (deadline_ns != UINT64_MAX) {
		if (deadline_ns <= time_ns()) {
			me->state = THREAD_RUNNING;
			spin_unlock_irqrestore(&rq->lock, 0);
			return;
		}
		me->wake_ns = deadline_ns;
		sched_sleep_insert(rq, me);
	}
	sched_reschedule_locked(rq);
}

void sched_unblock_self(void)
{
	struct sched_rq *rq = this_cpu()->sched;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	struct thread *me = this_cpu()->current;
	if (me->state == THREAD_BLOCKED)
		me->state = THREAD_RUNNING;
	spin_unlock_irqrestore(&rq->lock, f);
}

void sched_exit_current(void)
{
	cpu_cli();
	struct sched_rq *rq = this_cpu()->sched;
	spin_lock_irqsave(&rq->lock);
	this_cpu()->current->state = THREAD_DEAD;
	sched_reschedule_locked(rq);
	panic("dead thread %s was scheduled again", thread_current()->name);
}

void thread_yield(void)
{
	if (!sched_active())
		return;
	struct sched_rq *rq = this_cpu()->sched;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	if (!rq->head) {
		spin_unlock_irqrestore(&rq->lock, f);
		return;
	}
	sched_reschedule_locked(rq);
	irq_restore(f);
}

void sched_tick(void)
{
	if (!sched_active())
		return;
	struct sched_rq *rq = this_cpu()->sched;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	uint64_t now = time_ns();
	rq->timer_at = 0;       /* a one-shot: it has fired */
	while (rq->sleepers && rq->sleepers->wake_ns <= now) {
		struct thread *t = rq->sleepers;
		sched_sleep_remove(rq, t);
		/* Expired sleepers stay on this CPU: they last ran here. */
		sched_queue_on(rq, this_cpu()->index, t);
	}
	if (!rq->head && now >= rq->slice_end)
		rq->slice_end = now + SCHED_SLICE_NS;   /* alone: keep running */
	sched_program_timer(rq, now);
	spin_unlock_irqrestore(&rq->lock, f);
}

void sched_preempt_check(void)
{
	if (!sched_active())
		return;
	struct percpu *pc = this_cpu();
	struct sched_rq *rq = pc->sched;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	if (rq->head && (pc->current == pc->idle || time_ns() >= rq->slice_end)) {
		sched_reschedule_locked(rq);
		irq_restore(f);
		return;
	}
	/* A busy CPU that was alone may have had no slice timer; now that
	 * work is queued, make sure the slice end interrupts it. */
	sched_program_timer(rq, time_ns());
	spin_unlock_irqrestore(&rq->lock, f);
}

/* Each CPU's idle thread: run whatever is queued, else halt until an
 * interrupt.  sti;hlt is one sequence so a wake-up IPI arriving between
 * the check and the hlt still ends the hlt. */
static void sched_idle_loop(void *arg)
{
	(void)arg;
	struct percpu *pc = this_cpu();
	struct sched_rq *rq = pc->sched;
	for (;;) {
		cpu_cli();
		spin_lock_irqsave(&rq->lock);
		if (rq->head) {
			sched_reschedule_locked(rq);
			continue;
		}
		spin_unlock_irqrestore(&rq->lock, 0);
		__asm__ volatile("sti; hlt" ::: "memory");
	}
}

void sched_init(void)
{
	struct percpu *pc = this_cpu();
	struct sched_rq *rq = &sched_rq_bsp;
	spin_init(&rq->lock, "runqueue0");
	pc->sched = rq;
	pc->apic_id = lapic_id();

	struct thread *main = thread_boot();
	main->cpu = pc->index;
	main->state = THREAD_RUNNING;
	struct thread *idle = thread_alloc("idle0", sched_idle_loop, NULL, (int)pc->index);
	if (!idle)
		panic("sched: no memory for the idle thread");
	idle->is_idle = true;
	pc->idle = idle;

	uint64_t f = spin_lock_irqsave(&rq->lock);
	pc->current = main;
	uint64_t now = time_ns();
	rq->slice_end = now + SCHED_SLICE_NS;
	rq->running = true;
	sched_program_timer(rq, now);
	spin_unlock_irqrestore(&rq->lock, f);
	kprintf("sched: round robin, %llu ms slice, %u KiB stacks\n",
		(unsigned long long)(SCHED_SLICE_NS / NS_PER_MS), THREAD_STACK_SIZE / 1024);
}

int sched_cpu_prepare(struct percpu *p, void *stack, size_t size)
{
	struct sched_rq *rq = kzalloc(sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	char name[24];
	ksnprintf(name, sizeof(name), "idle%u", p->index);
	struct thread *idle = thread_adopt(name, stack, size, (int)p->index);
	if (!idle) {
		kfree(rq);
		return -ENOMEM;
	}
	idle->is_idle = true;
	spin_init(&rq->lock, "runqueue");
	p->sched = rq;
	p->idle = idle;
	p->current = idle;
	return 0;
}

void sched_start_cpu(void)
{
	struct percpu *pc = this_cpu();
	struct sched_rq *rq = pc->sched;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	pc->current = pc->idle;
	pc->idle->state = THREAD_RUNNING;
	pc->idle->cpu = pc->index;
	uint64_t now = time_ns();
	rq->idle_since = now;
	rq->slice_end = now + SCHED_SLICE_NS;
	rq->running = true;
	sched_program_timer(rq, now);
	spin_unlock_irqrestore(&rq->lock, f);
	/* The BSP waits for this: from here on threads may be placed here. */
	__atomic_store_n(&pc->online, true, __ATOMIC_RELEASE);
	sched_idle_loop(NULL);
	panic("idle loop returned");
}

/* The run queue of a CPU for its counters; NULL if there is none. */
static struct sched_rq *sched_rq_stats(unsigned cpu)
{
	return cpu < MAX_CPUS && cpus[cpu] ? cpus[cpu]->sched : NULL;
}

#define SCHED_COUNTER(fn, field) \
	uint64_t fn(unsigned cpu) \
	{ \
		struct sched_rq *rq = sched_rq_stats(cpu); \
		return rq ? rq->field : 0; \
	}
SCHED_COUNTER(sched_switches, switches)
SCHED_COUNTER(sched_timer_writes, timer_writes)
SCHED_COUNTER(sched_timer_replaced, timer_replaced)
SCHED_COUNTER(sched_ipis, ipis)
SCHED_COUNTER(sched_ipi_spin_depth, ipi_spin_depth)

uint64_t sched_idle_ns(unsigned cpu)
{
	struct sched_rq *rq = sched_rq_stats(cpu);
	if (!rq)
		return 0;
	uint64_t f = spin_lock_irqsave(&rq->lock);
	uint64_t ns = rq->idle_ns;
	if (rq->running && cpus[cpu]->current == cpus[cpu]->idle)
		ns += time_ns() - rq->idle_since;
	spin_unlock_irqrestore(&rq->lock, f);
	return ns;
}
