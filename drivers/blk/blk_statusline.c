/*
 * The block layer's item on the screen's status line (kernel/statusline.h):
 * "disks: nvme0n1 sata0", a failed disk marked "!".
 */
#include "drivers/blk/blk.h"
#include "kernel/kprintf.h"
#include "kernel/statusline.h"

static void blk_status(char *buf, size_t size)
{
	size_t len = (size_t)ksnprintf(buf, size, "disks:");
	unsigned n = blk_count();

	for (unsigned i = 0; i < n && len + 1 < size; i++) {
		struct blk_dev *d = blk_get(i);
		if (d)
			len += (size_t)ksnprintf(buf + len, size - len, " %s%s", d->name,
						 d->dead ? "!" : "");
	}
	if (n == 0)
		ksnprintf(buf, size, "disks: none");
}
STATUSLINE_ITEM(disks, 20, blk_status);
