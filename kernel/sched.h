/*
 * Kernel threads and the scheduler (kernel/thread.c, kernel/sched.c,
 * kernel/switch.asm).
 *
 * Every CPU has a run queue and an idle thread.  Threads are preempted on a
 * LAPIC timer tick (10 ms slice) and may be pinned to one CPU; unpinned
 * threads are placed on the least loaded CPU when created or woken.
 *
 * States: RUNNABLE -> RUNNING -> (BLOCKED | SLEEPING | RUNNABLE) ... -> DEAD.
 * A thread blocks only through a wait queue or thread_sleep_ns(); it is made
 * RUNNABLE again by wake-up or by its deadline, whichever first.
 */
#ifndef KERNEL_SCHED_H
#define KERNEL_SCHED_H

#include <stdint.h>
#include <stdbool.h>

struct thread;
typedef void (*thread_fn)(void *arg);

#define THREAD_ANY_CPU (-1)

void sched_init(void);                 /* BSP: makes the boot flow a thread */
void sched_start_cpu(void);            /* each AP, never returns */
struct thread *thread_create(const char *name, thread_fn fn, void *arg, int cpu);
struct thread *thread_current(void);
const char *thread_name(struct thread *t);
unsigned thread_id(struct thread *t);
__attribute__((noreturn)) void thread_exit(void);
/* Wait for t to exit and free it; 0 or -ETIMEDOUT (timeout 0 = forever). */
int thread_join(struct thread *t, uint64_t timeout_ns);
void thread_yield(void);
void thread_sleep_ns(uint64_t ns);
/* Called from the timer interrupt. */
void sched_tick(void);
/* Per-CPU count of context switches and idle time, for `cpus`. */
uint64_t sched_switches(unsigned cpu);
/* Per-CPU count of LAPIC timer programmings (sched_program_timer). */
uint64_t sched_timer_writes(unsigned cpu);
/* Timer writes on that CPU that replaced a timer not yet due. */
uint64_t sched_timer_replaced(unsigned cpu);
uint64_t sched_idle_ns(unsigned cpu);
unsigned sched_nthreads(void);
/* Print one line per thread (id, name, state, cpu). */
void sched_dump(void);

/* Called by the interrupt dispatcher after VEC_TIMER and VEC_IPI_RESCHED,
 * AFTER lapic_eoi(): may switch to another thread and returns when this one
 * runs again. */
void sched_preempt_check(void);

/* ---- Scheduler internals: kernel/thread.c, sched.c, sync.c, smp.c only ---- */
#include <stddef.h>
struct percpu;
struct waitq;

enum thread_state {
	THREAD_RUNNABLE = 0,   /* on a run queue */
	THREAD_RUNNING,        /* some CPU's current thread */
	THREAD_BLOCKED,        /* on a wait queue and/or a sleep list */
	THREAD_DEAD,           /* exited; stack freed once `reaped` */
};

struct thread {
	uint64_t rsp;                  /* offset 0: saved by switch.asm */
	unsigned id;
	char name[24];
	volatile int state;            /* enum thread_state; changed under the rq lock */
	int pinned;                    /* CPU index or THREAD_ANY_CPU */
	volatile unsigned cpu;         /* CPU whose run queue / sleep list holds it */
	bool is_idle;
	volatile bool reaped;          /* stack freed; thread_join may free the struct */
	uint8_t *stack;                /* lowest address; NULL for the boot stack */
	uint64_t stack_phys;           /* pmm pages to free at exit, 0 = not ours */
	size_t stack_size;
	struct thread *rq_next;        /* run queue link */
	struct thread *sleep_next;     /* per-CPU deadline-ordered sleep list */
	uint64_t wake_ns;
	bool sleeping;                 /* on its CPU's sleep list */
	struct waitq *wq;              /* wait queue it is linked on, or NULL */
	struct thread *wq_next;
	struct thread *all_next;       /* global thread list (thread.c) */
	uint64_t switches_in;
	uint32_t lockdep_word;         /* per-thread word for debug lock-order checkers
					 * (iomap/lock.c via plat_thread_lockdep) */
	struct kout_sink *out_sink;    /* output capture (kernel/kprintf.h), or NULL */
};

#define THREAD_STACK_ORDER 2           /* 16 KiB */
#define THREAD_STACK_SIZE (4096u << THREAD_STACK_ORDER)

/* switch.asm: save callee-saved registers of prev, resume next; returns the
 * thread that switched to us.  New threads start in sched_thread_trampoline. */
struct thread *sched_switch_to(struct thread *prev, struct thread *next);
void sched_thread_trampoline(void);
/* First thing after every switch, on the new thread: drop the run queue lock
 * carried across the switch and reap prev if it died. */
void sched_finish_switch(struct thread *prev);

/* True once this CPU schedules threads (after sched_init / sched_start_cpu). */
bool sched_active(void);
/* With IRQs off and current->state == THREAD_BLOCKED: switch away until woken
 * or until deadline_ns (UINT64_MAX = none).  Returns at once if a wake-up
 * already happened. */
void sched_block(uint64_t deadline_ns);
/* Undo a THREAD_BLOCKED set by current that turned out unnecessary. */
void sched_unblock_self(void);
/* Make a BLOCKED thread runnable; false if it was not blocked. IRQ safe. */
bool sched_wake(struct thread *t);
/* As sched_wake, but an idle CPU that must be started is added to *kick (a
 * bit per CPU index) instead of being sent its IPI: the caller sends them
 * with sched_kick_mask() after dropping its own locks (sync.c says why). */
bool sched_wake_deferred(struct thread *t, uint64_t *kick);
void sched_kick_mask(uint64_t kick);
/* Rescheduling IPIs this CPU sent, and how many spinlocks it held when it
 * sent the last one (statistics, tests). */
uint64_t sched_ipis(unsigned cpu);
uint64_t sched_ipi_spin_depth(unsigned cpu);
/* Queue a new RUNNABLE thread on t->cpu; 0 or -errno. */
int sched_enqueue_new(struct thread *t);
/* current thread dies (state DEAD, switch away forever). */
__attribute__((noreturn)) void sched_exit_current(void);
/* BSP, before starting an AP: run queue and idle thread running on `stack`
 * (the AP's boot stack). */
int sched_cpu_prepare(struct percpu *p, void *stack, size_t size);
/* Least loaded online CPU, preferring `prefer` on ties. */
unsigned sched_pick_cpu(unsigned prefer);

/* thread.c */
struct thread *thread_boot(void);      /* the static "main" thread */
struct thread *thread_alloc(const char *name, thread_fn fn, void *arg, int cpu);
struct thread *thread_adopt(const char *name, void *stack, size_t size, int cpu);
void thread_reap(struct thread *t);    /* free the stack of a DEAD thread */
void thread_check_stack(struct thread *t);

#endif
