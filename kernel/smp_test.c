/* SMP self-tests: per-CPU data and threads on every online CPU. */
#include "kernel/selftest.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/apic.h"
#include "kernel/time.h"

SELFTEST(smp, percpu)
{
	struct percpu *p = this_cpu();
	ST_EXPECT(p->self == p);
	ST_EXPECT(p->index < MAX_CPUS && cpus[p->index] == p);
	ST_EXPECT(p->online);
	unsigned online = 0;
	for (unsigned i = 0; i < MAX_CPUS && cpus[i]; i++)
		online += cpus[i]->online;
	ST_EXPECT(online == ncpus_online);
	ST_EXPECT(ncpus_online >= 1);
}

struct smp_test_seen {
	volatile int index;
	volatile bool percpu_ok;
	volatile uint64_t start_ns;
};
static struct smp_test_seen smp_test_seen[MAX_CPUS];

static void smp_test_record(void *arg)
{
	struct smp_test_seen *s = arg;
	struct percpu *p = this_cpu();
	s->start_ns = time_ns();
	s->index = (int)p->index;
	s->percpu_ok = p->self == p && p->apic_id == lapic_id() && p->current == thread_current();
}

SELFTEST(smp, threads_on_every_cpu)
{
	struct thread *t[MAX_CPUS] = { 0 };
	uint64_t created[MAX_CPUS] = { 0 };
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_CPUS && cpus[i]; i++) {
		smp_test_seen[i].index = -1;
		smp_test_seen[i].percpu_ok = false;
		if (!cpus[i]->online)
			continue;
		created[i] = time_ns();
		t[i] = thread_create("st-pinned", smp_test_record, &smp_test_seen[i], (int)i);
		ST_EXPECT(t[i] != NULL);
		n++;
	}
	ST_EXPECT(n == ncpus_online);
	for (unsigned i = 0; i < MAX_CPUS; i++) {
		if (!t[i])
			continue;
		ST_EXPECT(thread_join(t[i], 5 * NS_PER_S) == 0);
		ST_EXPECT(smp_test_seen[i].index == (int)i);
		ST_EXPECT(smp_test_seen[i].percpu_ok);
		/* An idle CPU has no periodic tick: only the resched IPI
		 * gets the thread running this soon. */
		ST_EXPECT(smp_test_seen[i].start_ns - created[i] < NS_PER_S);
	}
}
