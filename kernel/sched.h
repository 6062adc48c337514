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
uint64_t sched_idle_ns(unsigned cpu);
unsigned sched_nthreads(void);
/* Print one line per thread (id, name, state, cpu). */
void sched_dump(void);

#endif
