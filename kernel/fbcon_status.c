/*
 * The screen's status line: "appliance VERSION | net: down | disks: ... |
 * up H:MM:SS", rebuilt once a second by the fbcon-status thread from the
 * STATUSLINE_ITEM entries (kernel/statusline.h).  The scheduler has no priorities;
 * the thread is cheap (one line of text, a few dozen cells redrawn) and sleeps
 * the rest of the second.
 */
#include "kernel/statusline.h"
#include "kernel/fbcon.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/sched.h"
#include "kernel/shell.h"
#include "kernel/errno.h"
#include "kernel/time.h"

#define STATUS_LINE_MAX 256
#define STATUSLINE_ITEM_MAX 96
#define STATUS_PERIOD_NS NS_PER_S

extern const struct statusline_item __statusline_items_start[], __statusline_items_end[];

static void status_append(char *buf, size_t size, size_t *len, const char *text)
{
	if (!text[0] || *len + 1 >= size)
		return;
	int n = ksnprintf(buf + *len, size - *len, "%s%s", *len ? " | " : "", text);
	*len = MIN(*len + (size_t)n, size - 1);
}

void statusline_build(char *buf, size_t size)
{
	char item[STATUSLINE_ITEM_MAX];
	size_t len = 0;
	bool have_net = false;
	int last = -2147483647 - 1;

	buf[0] = 0;
	ksnprintf(item, sizeof(item), "appliance %s", KERNEL_VERSION);
	status_append(buf, size, &len, item);
	for (const struct statusline_item *it = __statusline_items_start; it < __statusline_items_end; it++)
		have_net |= strcmp(it->name, "net") == 0;
	if (!have_net)
		status_append(buf, size, &len, "net: down");
	/* Ascending order without sorting the read-only section: repeatedly
	 * take the smallest order above the last one printed. */
	for (;;) {
		const struct statusline_item *next = NULL;
		for (const struct statusline_item *it = __statusline_items_start; it < __statusline_items_end; it++)
			if (it->order > last && (!next || it->order < next->order))
				next = it;
		if (!next)
			break;
		for (const struct statusline_item *it = __statusline_items_start; it < __statusline_items_end; it++) {
			if (it->order != next->order)
				continue;
			item[0] = 0;
			it->fn(item, sizeof(item));
			status_append(buf, size, &len, item);
		}
		last = next->order;
	}
	uint64_t s = time_ns() / NS_PER_S;
	ksnprintf(item, sizeof(item), "up %llu:%02llu:%02llu", (unsigned long long)(s / 3600),
		  (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
	status_append(buf, size, &len, item);
}

static void status_thread(void *arg)
{
	char line[STATUS_LINE_MAX];

	(void)arg;
	for (;;) {
		statusline_build(line, sizeof(line));
		fbcon_set_status(line);
		thread_sleep_ns(STATUS_PERIOD_NS);
	}
}

static int status_init(void)
{
	if (!fbcon_active())
		return 0;
	if (!thread_create("fbcon-status", status_thread, NULL, THREAD_ANY_CPU))
		return -ENOMEM;
	return 0;
}
INITCALL(fbcon_status, INIT_LATE, 90, status_init);

static int cmd_status(int argc, char **argv)
{
	char line[STATUS_LINE_MAX];

	(void)argv;
	if (argc != 1)
		return -EINVAL;
	statusline_build(line, sizeof(line));
	kprintf("%s\n", line);
	return 0;
}
SHELL_COMMAND(status, "status", "the status line the screen shows (network, disks, uptime)",
	      cmd_status);
