/* Run every driver registered with DRIVER() (see driver.h). */
#include "drivers/driver.h"
#include "drivers/blk/blk.h"
#include "kernel/kprintf.h"
#include "kernel/errno.h"
#include "kernel/time.h"
#include "kernel/initcall.h"

extern const struct driver __drivers_start[], __drivers_end[];

static int drivers_init(void)
{
	unsigned n = (unsigned)(__drivers_end - __drivers_start);
	const struct driver *sorted[32];

	if (n > 32)
		n = 32;
	for (unsigned i = 0; i < n; i++) {     /* insertion sort by order */
		const struct driver *d = &__drivers_start[i];
		unsigned j = i;
		while (j > 0 && sorted[j - 1]->order > d->order) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = d;
	}
	blk_init();
	/* Attach times go into the boot report: drivers are most of boot. */
	char report[160];
	size_t len = 0;
	report[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = time_ns();
		int r = sorted[i]->attach_all();
		uint64_t us = (time_ns() - t0) / 1000;
		if (r < 0)
			kprintf("%s: attach failed: %s\n", sorted[i]->name, strerror(r));
		if (len < sizeof(report))
			len += (size_t)ksnprintf(report + len, sizeof(report) - len, " %s %llu.%llu",
						 sorted[i]->name, (unsigned long long)(us / 1000),
						 (unsigned long long)(us % 1000 / 100));
	}
	kprintf("drivers (ms):%s\n", report);
	return 0;
}
INITCALL(drivers, INIT_DRIVERS, 0, drivers_init);
