/*
 * How layers above kernel/ plug themselves in.  kernel/ includes nothing
 * from drivers/, platform/, iomap/, fs/ or net/; instead each of them
 * registers functions in linker sections that the kernel walks:
 *
 *     INITCALL(blk, INIT_DRIVERS, 0, blk_initcall);   boot, by level then order
 *     MEM_REPORT(pcache, pcache_mem_line);            a line in `mem`
 *     SHUTDOWN_STEP(pcache, 10, pcache_shutdown);     poweroff, reboot, power button
 *
 * Levels run in this order after PCI enumeration and serial input:
 *   INIT_CORE      kernel services that need threads (none yet)
 *   INIT_DRIVERS   block layer, then device drivers (drivers/drivers.c)
 *   INIT_SUBSYS    page cache, network stack, filesystems
 *   INIT_LATE      things that need all of the above (mounts, servers)
 * Inside a level, lower `order` runs first.  An initcall returns 0 or
 * -errno; a failure is printed in words and boot goes on.
 *
 * Shutdown steps run in ascending order, each with an absolute deadline
 * (time_ns() clock) that it must honour: it returns 0, or -ETIMEDOUT /
 * -errno after printing what it could not do.  A failed or late step never
 * stops the later ones, and the machine powers off or resets afterwards
 * in every case.  Conventional orders:
 *    10 filesystems commit       20 page cache writeback
 *    30 block layer: flush every disk with a write cache
 *    40 controller shutdown (NVMe CC.SHN, AHCI FLUSH CACHE EXT + port stop)
 */
#ifndef KERNEL_INITCALL_H
#define KERNEL_INITCALL_H

#include <stdint.h>

enum init_level { INIT_CORE = 1, INIT_DRIVERS, INIT_SUBSYS, INIT_LATE };

struct initcall {
	const char *name;
	int level;
	int order;
	int (*fn)(void);
};

struct mem_report {
	const char *name;
	void (*fn)(void);        /* prints one or more lines */
};

struct shutdown_step {
	const char *name;
	int order;
	int (*fn)(uint64_t deadline_ns);
	uint64_t budget_ms;      /* 0: SHUTDOWN_DEFAULT_MS */
};

#define SHUTDOWN_DEFAULT_MS 10000

#define INITCALL(iname, ilevel, iorder, ifn)                                    \
	static const struct initcall initcall_desc_##iname                       \
		__attribute__((used, section(".initcalls"), aligned(8))) =       \
		{ #iname, (ilevel), (iorder), (ifn) }

#define MEM_REPORT(mname, mfn)                                                  \
	static const struct mem_report mem_report_desc_##mname                   \
		__attribute__((used, section(".mem_reports"), aligned(8))) =     \
		{ #mname, (mfn) }

#define SHUTDOWN_STEP_BUDGET(sname, sorder, sfn, sms)                           \
	static const struct shutdown_step shutdown_desc_##sname                  \
		__attribute__((used, section(".shutdown_steps"), aligned(8))) =  \
		{ #sname, (sorder), (sfn), (sms) }
#define SHUTDOWN_STEP(sname, sorder, sfn) SHUTDOWN_STEP_BUDGET(sname, sorder, sfn, 0)

/* Run every initcall of `level`; the names and times go into the boot
 * report ("init LEVEL (ms): name t ..."). */
void initcalls_run(enum init_level level);
/* Every MEM_REPORT line, for `mem`. */
void mem_reports_print(void);
/* Every shutdown step in order; prints a line per failing step and one
 * summary line.  Returns the number of steps that failed.  Runs at most
 * once: a second caller (power button during poweroff) returns at once. */
int shutdown_run(const char *why);

#endif
