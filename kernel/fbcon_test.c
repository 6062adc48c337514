/* Self-tests for the screen console (kernel/fbcon.c): the fault-path rule
 * (a fault while this CPU draws turns the screen off rather than deadlock
 * the exception report on the screen lock; a lock another CPU holds is
 * taken over and the screen stays on), and the framebuffer's
 * write-combining mapping with the same PAT on every CPU. */
#include "kernel/selftest.h"
#include "kernel/cpu.h"
#include "kernel/fbcon.h"
#include "kernel/mm.h"
#include "kernel/sched.h"
#include "kernel/smp.h"
#include "kernel/sync.h"
#include "kernel/time.h"

static unsigned fbcon_test_me(void)
{
	return smp_percpu_ready ? this_cpu()->index : 0;
}

SELFTEST(fbcon, fault_while_drawing_turns_screen_off)
{
	if (!fbcon_active())
		ST_SKIP("no framebuffer");
	uint64_t f = fbcon_test_hold(fbcon_test_me());
	fbcon_force_unlock();
	bool off = !fbcon_active();
	fbcon_test_resume(f);
	ST_EXPECT(off);
	ST_EXPECT(fbcon_active());
	fbcon_write("", 0);     /* the lock is free again: this must not spin */
}

SELFTEST(fbcon, lock_of_another_cpu_taken_over)
{
	if (!fbcon_active())
		ST_SKIP("no framebuffer");
	uint64_t f = fbcon_test_hold(fbcon_test_me() + 1);
	fbcon_force_unlock();
	bool on = fbcon_active();
	fbcon_test_resume(f);
	ST_EXPECT(on);
	fbcon_write("", 0);
}

static volatile uint64_t fbcon_test_pat[MAX_CPUS];

static void fbcon_test_read_pat(void *arg)
{
	fbcon_test_pat[(uintptr_t)arg] = rdmsr(MSR_PAT);
}

SELFTEST(fbcon, framebuffer_write_combining)
{
	if (!fbcon_active())
		ST_SKIP("no framebuffer");
	unsigned level = 0;
	uint64_t pte = vmm_query_pte(fbcon_test_mapping(), &level);
	/* PAT=1, PCD=0, PWT=0: entry 4 */
	ST_EXPECT(level == 1);
	ST_EXPECT((pte & (PTE_PAT4K | PTE_PCD | PTE_PWT)) == PTE_PAT4K);
	for (unsigned i = 0; i < ncpus_online; i++) {
		fbcon_test_pat[i] = 0;
		struct thread *t = thread_create("fbcon-pat", fbcon_test_read_pat, (void *)(uintptr_t)i,
						 (int)i);
		ST_EXPECT(t && thread_join(t, 10 * NS_PER_S) == 0);
		/* entry 4 (bits 32-39) is write-combining (1) on every CPU */
		ST_EXPECT(((fbcon_test_pat[i] >> 32) & 0xff) == 0x01);
	}
}
