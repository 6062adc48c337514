/*
 * Status items: the short facts the screen's status line shows (kernel/
 * fbcon_status.c), filled in by whichever layer owns them.  kernel/ knows
 * nothing of disks or networks; the block layer, the network stack and the
 * filesystems each register an item in the .statusline_items linker section:
 *
 *     static void blk_status(char *buf, size_t size) { ... "disks: nvme0n1" }
 *     STATUSLINE_ITEM(disks, 20, blk_status);
 *
 * Items appear in ascending order, separated by " | ".  An item's function
 * runs in thread context about once a second; it must not block for long and
 * writes one short line without a newline (an empty string hides the item).
 * Conventional orders: 10 network address, 20 disks, 30 filesystem use.
 * While no item is named "net" the line says "net: down".
 */
#ifndef KERNEL_STATUSLINE_H
#define KERNEL_STATUSLINE_H

#include <stddef.h>

struct statusline_item {
	const char *name;
	int order;
	void (*fn)(char *buf, size_t size);
};

#define STATUSLINE_ITEM(sname, sorder, sfn)                                         \
	static const struct statusline_item statusline_item_desc_##sname                 \
		__attribute__((used, section(".statusline_items"), aligned(8))) =    \
		{ #sname, (sorder), (sfn) }

/* The whole status line as the screen shows it (for tests and the shell). */
void statusline_build(char *buf, size_t size);

#endif
