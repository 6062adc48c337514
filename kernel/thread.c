/*
 * Kernel threads: creation, stacks, exit and join, the global thread list.
 * Scheduling decisions live in sched.c.
 */
#include "kernel/sched.h"
#include "kernel/sync.h"
#include "kernel/smp.h"
#include "kernel/mm.h"
#include "kernel/cpu.h"
#include "kernel/time.h"
#include "kernel/errno.h"
#include "kernel/panic.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"

/* Written at the lowest word of every stack we allocate; a thread that ran
 * past its 16 KiB has overwritten it by the time it is switched out. */
#define THREAD_STACK_CANARY 0x57ac4ca9a5f00d11ULL

/* The boot flow: "main" before and after sched_init(). */
static struct thread thread_main = {
	.name = "main",
	.state = THREAD_RUNNING,
	.pinned = THREAD_ANY_CPU,
};

static spinlock_t thread_list_lock = SPINLOCK_INIT("threads");
static struct thread *thread_list = &thread_main;
static unsigned thread_count = 1;
static unsigned thread_next_id = 1;
/* Joiners wait here for `reaped`; a static queue because the thread being
 * waited for is freed by the joiner right after. */
static struct waitq thread_reap_wq = WAITQ_INIT("thread-reap");

struct thread *thread_boot(void)
{
	return &thread_main;
}

struct thread *thread_current(void)
{
	if (!smp_percpu_ready)
		return &thread_main;
	struct thread *t = this_cpu()->current;
	return t ? t : &thread_main;
}

const char *thread_name(struct thread *t)
{
	return t ? t->name : "(none)";
}

unsigned thread_id(struct thread *t)
{
	return t->id;
}

unsigned sched_nthreads(void)
{
	return __atomic_load_n(&thread_count, __ATOMIC_RELAXED);
}

static void thread_list_add(struct thread *t)
{
	uint64_t f = spin_lock_irqsave(&thread_list_lock);
	t->id = thread_next_id++;
	t->all_next = thread_list;
	thread_list = t;
	thread_count++;
	spin_unlock_irqrestore(&thread_list_lock, f);
}

static void thread_list_remove(struct thread *t)
{
	uint64_t f = spin_lock_irqsave(&thread_list_lock);
	for (struct thread **pp = &thread_list; *pp; pp = &(*pp)->all_next) {
		if (*pp == t) {
			*pp = t->all_next;
			thread_count--;
			break;
		}
	}
	spin_unlock_irqrestore(&thread_list_lock, f);
}

static struct thread *thread_new(const char *name, int cpu)
{
	struct thread *t = kzalloc(sizeof(*t));
	if (!t)
		return NULL;
	strlcpy(t->name, name, sizeof(t->name));
	t->pinned = cpu;
	t->cpu = cpu >= 0 ? (unsigned)cpu : 0;
	t->state = THREAD_RUNNABLE;
	return t;
}

void thread_check_stack(struct thread *t)
{
	if (t->stack && *(volatile uint64_t *)t->stack != THREAD_STACK_CANARY)
		panic("thread %s (id %u) overflowed its %zu-byte stack", t->name, t->id,
		      t->stack_size);
}

/* A thread that will start in sched_thread_trampoline with fn in r12 and
 * arg in r13.  Frame, from the initial rsp up: r15 r14 r13 r12 rbx rbp,
 * return address; rsp is 16-byte aligned once that address is popped, as
 * the trampoline's calls expect. */
struct thread *thread_alloc(const char *name, thread_fn fn, void *arg, int cpu)
{
	struct thread *t = thread_new(name, cpu);
	if (!t)
		return NULL;
	uint64_t phys = pmm_alloc_pages(THREAD_STACK_ORDER);
	if (!phys) {
		kfree(t);
		return NULL;
	}
	t->stack_phys = phys;
	t->stack = PHYS_TO_VIRT(phys);
	t->stack_size = THREAD_STACK_SIZE;
	*(uint64_t *)t->stack = THREAD_STACK_CANARY;

	uint64_t *sp = (uint64_t *)(t->stack + t->stack_size);
	*--sp = (uint64_t)sched_thread_trampoline;
	*--sp = 0;                  /* rbp: ends backtraces */
	*--sp = 0;                  /* rbx */
	*--sp = (uint64_t)fn;       /* r12 */
	*--sp = (uint64_t)arg;      /* r13 */
	*--sp = 0;                  /* r14 */
	*--sp = 0;                  /* r15 */
	t->rsp = (uint64_t)sp;
	thread_list_add(t);
	return t;
}

/* A thread for a flow of control that already runs on `stack` (an AP's
 * boot stack becoming its idle thread). */
struct thread *thread_adopt(const char *name, void *stack, size_t size, int cpu)
{
	struct thread *t = thread_new(name, cpu);
	if (!t)
		return NULL;
	t->stack = stack;
	t->stack_size = size;
	if (stack)
		*(uint64_t *)stack = THREAD_STACK_CANARY;
	thread_list_add(t);
	return t;
}

struct thread *thread_create(const char *name, thread_fn fn, void *arg, int cpu)
{
	if (!sched_active()) {
		kprintf("thread: cannot create %s before the scheduler runs\n", name);
		return NULL;
	}
	if (cpu != THREAD_ANY_CPU &&
	    (cpu < 0 || cpu >= MAX_CPUS || !cpus[cpu] || !cpus[cpu]->online)) {
		kprintf("thread: cannot pin %s to CPU %d: not online\n", name, cpu);
		return NULL;
	}
	struct thread *t = thread_alloc(name, fn, arg, cpu);
	if (!t) {
		kprintf("thread: out of memory creating %s\n", name);
		return NULL;
	}
	t->cpu = cpu >= 0 ? (unsigned)cpu : sched_pick_cpu(this_cpu()->index);
	int err = sched_enqueue_new(t);
	if (err) {
		kprintf("thread: cannot start %s: %s\n", name, strerror(err));
		thread_list_remove(t);
		pmm_free_pages(t->stack_phys, THREAD_STACK_ORDER);
		kfree(t);
		return NULL;
	}
	return t;
}

void thread_exit(void)
{
	struct thread *t = thread_current();
	if (t == &thread_main || t->is_idle)
		panic("thread %s must not exit", t->name);
	sched_exit_current();
}

/* Runs on the next thread after t switched away for the last time, so t's
 * stack is no longer in use.  IRQs are off; pmm is IRQ safe. */
void thread_reap(struct thread *t)
{
	thread_check_stack(t);
	if (t->stack_phys)
		pmm_free_pages(t->stack_phys, THREAD_STACK_ORDER);
	t->stack = NULL;
	t->stack_phys = 0;
	__atomic_store_n(&t->reaped, true, __ATOMIC_RELEASE);
	waitq_wake_all(&thread_reap_wq);
}

static bool thread_is_reaped(void *arg)
{
	struct thread *t = arg;
	return __atomic_load_n(&t->reaped, __ATOMIC_ACQUIRE);
}

int thread_join(struct thread *t, uint64_t timeout_ns)
{
	if (!t || t == thread_current() || t == &thread_main || t->is_idle)
		return -EINVAL;
	uint64_t deadline = timeout_ns ? time_ns() + timeout_ns : UINT64_MAX;
	int err = waitq_wait_until(&thread_reap_wq, thread_is_reaped, t, deadline);
	if (err)
		return err;
	thread_list_remove(t);
	kfree(t);
	return 0;
}

void thread_sleep_ns(uint64_t ns)
{
	uint64_t deadline = time_ns() + ns;
	if (!sched_active()) {
		/* Early boot: nothing else to run, so busy-wait. */
		while (time_ns() < deadline)
			cpu_pause();
		return;
	}
	struct thread *me = thread_current();
	while (time_ns() < deadline) {
		uint64_t f = irq_save();
		me->state = THREAD_BLOCKED;
		sched_block(deadline);
		irq_restore(f);
	}
}

static const char *thread_state_name(int s)
{
	switch (s) {
	case THREAD_RUNNABLE: return "runnable";
	case THREAD_RUNNING: return "running";
	case THREAD_BLOCKED: return "blocked";
	case THREAD_DEAD: return "dead";
	}
	return "?";
}

void sched_dump(void)
{
	kprintf("  id name                     state     cpu pin switches\n");
	uint64_t f = spin_lock_irqsave(&thread_list_lock);
	for (struct thread *t = thread_list; t; t = t->all_next) {
		char pin[8] = "-";
		if (t->pinned >= 0)
			ksnprintf(pin, sizeof(pin), "%d", t->pinned);
		kprintf("%4u %-24s %-9s %3u %3s %llu\n", t->id, t->name,
			thread_state_name(t->state), t->cpu, pin,
			(unsigned long long)t->switches_in);
	}
	spin_unlock_irqrestore(&thread_list_lock, f);
}
