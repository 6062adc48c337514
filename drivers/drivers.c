/* Run every driver registered with DRIVER() (see driver.h). */
#include "drivers/driver.h"
#include "drivers/blk/blk.h"
#include "kernel/kprintf.h"
#include "kernel/errno.h"

extern const struct driver __drivers_start[], __drivers_end[];

void drivers_init(void)
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
	for (unsigned i = 0; i < n; i++) {
		int r = sorted[i]->attach_all();
		if (r < 0)
			kprintf("%s: attach failed: %s\n", sorted[i]->name, strerror(r));
	}
}
