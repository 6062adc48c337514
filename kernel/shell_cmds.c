/*
 * Built-in shell commands.  Each checks its arguments strictly: a missing,
 * extra or malformed argument returns -EINVAL so the shell prints the usage.
 */
#include "kernel/shell.h"
#include "kernel/initcall.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/serial.h"
#include "kernel/mm.h"
#include "kernel/smp.h"
#include "kernel/sched.h"
#include "kernel/pci.h"
#include "kernel/time.h"
#include "kernel/realtime.h"
#include "kernel/civil.h"
#include "kernel/power.h"
#include "kernel/selftest.h"
#include "kernel/trap.h"
#include "kernel/errno.h"

/* ---- formatting helpers ---- */

/* Append to a line buffer, silently truncating: a long `pci` line is still
 * worth printing cut short. */
struct cmd_line {
	char buf[256];
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void cmd_line_add(struct cmd_line *l, const char *fmt, ...)
{
	va_list ap;
	if (l->len >= sizeof(l->buf) - 1)
		return;
	va_start(ap, fmt);
	int n = kvsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = MIN(l->len + (size_t)n, sizeof(l->buf) - 1);
}

/* ---- help ---- */

static int cmd_help(int argc, char **argv)
{
	const struct shell_cmd *c;

	if (argc > 2)
		return -EINVAL;
	if (argc == 2) {
		c = shell_find(argv[1]);
		if (!c) {
			kprintf("unknown command '%s': type 'help'\n", argv[1]);
			return 1;
		}
		shell_print_usage(c, "usage: ", false);
		kprintf("  %s\n", c->help);
		return 0;
	}

	/* Alphabetical, by insertion sort into a bounded table. */
	const struct shell_cmd *sorted[128];
	unsigned n = 0;
	for (unsigned i = 0; (c = shell_cmd_at(i)) != NULL && n < ARRAY_SIZE(sorted); i++) {
		unsigned j = n++;
		while (j > 0 && strcmp(sorted[j - 1]->name, c->name) > 0) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = c;
	}
	for (unsigned i = 0; i < n; i++)
		shell_print_usage(sorted[i], "  ", true);
	return 0;
}
SHELL_COMMAND(help, "help [CMD]", "list commands, or show one command's usage", cmd_help);

/* ---- mem ---- */

static int cmd_mem(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -EINVAL;
	uint64_t total = pmm_total_bytes(), free = pmm_free_bytes();
	char t[24], f[24], h[24];
	kfmt_size(t, sizeof(t), total, 0);
	kfmt_size(f, sizeof(f), free, 0);
	kfmt_size(h, sizeof(h), heap_used_bytes(), 0);
	kprintf("physical: %s total, %s free (%llu%%)\n", t, f,
		(unsigned long long)(total ? free * 100 / total : 0));
	kprintf("heap: %s used\n", h);
	mem_reports_print();
	return 0;
}
SHELL_COMMAND(mem, "mem", "physical memory and kernel heap usage", cmd_mem);

/* ---- cpus ---- */

static int cmd_cpus(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "threads") == 0) {
		sched_dump();
		return 0;
	}
	if (argc != 1)
		return -EINVAL;

	/* Idle share is against total uptime, so an AP that started late reads
	 * slightly low; good enough to spot a busy CPU. */
	uint64_t now = time_ns();
	kprintf("cpu  apic  switches       idle  irqs\n");
	for (unsigned i = 0; i < MAX_CPUS; i++) {
		struct percpu *p = cpus[i];
		if (!p || !p->online)
			continue;
		uint64_t idle = sched_idle_ns(i);
		uint64_t permille = now ? MIN(idle / (now / 1000 + 1), 1000ULL) : 0;
		kprintf("%-4u %-5u %-12llu %5llu.%llu%%  %llu\n", i, p->apic_id,
			(unsigned long long)sched_switches(i),
			(unsigned long long)(permille / 10), (unsigned long long)(permille % 10),
			(unsigned long long)p->irq_count);
	}
	kprintf("%u online, %u threads\n", ncpus_online, sched_nthreads());
	return 0;
}
SHELL_COMMAND(cpus, "cpus [threads]", "per-CPU switches, idle, IRQs; or threads",
	      cmd_cpus);

/* ---- pci ---- */

static void cmd_pci_line(struct pci_dev *d)
{
	struct cmd_line l = { .len = 0 };
	char sz[24];

	cmd_line_add(&l, "%04x:%02x:%02x.%u %04x:%04x %02x%02x%02x %s",
		     d->segment, d->bus, d->dev, d->fn, d->vendor, d->device,
		     d->class_code, d->subclass, d->prog_if,
		     pci_class_name(d->class_code, d->subclass));
	for (unsigned b = 0; b < PCI_MAX_BARS; b++) {
		const struct pci_bar *bar = &d->bars[b];
		if (bar->size == 0)
			continue;
		kfmt_size(sz, sizeof(sz), bar->size, 0);
		cmd_line_add(&l, " bar%u=%s%s%s:%llx(%s)", b,
			     bar->is_io ? "io" : "mem", bar->is_64 ? "64" : "",
			     bar->prefetchable ? "pf" : "", (unsigned long long)bar->phys, sz);
	}
	if (d->msi_cap)
		cmd_line_add(&l, " msi");
	if (d->msix_cap)
		cmd_line_add(&l, " msix(%u)", d->msix_table_size);
	kprintf("%s\n", l.buf);
}

static int cmd_pci(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -EINVAL;
	unsigned n = pci_count();
	for (unsigned i = 0; i < n; i++) {
		struct pci_dev *d = pci_get(i);
		if (d)
			cmd_pci_line(d);
	}
	kprintf("%u functions\n", n);
	return 0;
}
SHELL_COMMAND(pci, "pci", "PCI functions, IDs, BARs, MSI/MSI-X", cmd_pci);

/* ---- uptime ---- */

static int cmd_uptime(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -EINVAL;
	uint64_t ms = time_ns() / NS_PER_MS;
	uint64_t s = ms / 1000;
	kprintf("up %llu:%02llu:%02llu.%03llu, ready in %llu ms\n",
		(unsigned long long)(s / 3600), (unsigned long long)(s / 60 % 60),
		(unsigned long long)(s % 60), (unsigned long long)(ms % 1000),
		(unsigned long long)(boot_ready_ns / NS_PER_MS));
	return 0;
}
SHELL_COMMAND(uptime, "uptime", "time since kernel entry and boot time", cmd_uptime);

static int cmd_date(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -EINVAL;
	char buf[48];
	civil_format(buf, sizeof(buf), realtime_ns());
	kprintf("%s (clock from %s)\n", buf, realtime_source());
	uint64_t at;
	int64_t step;
	if (realtime_last_set(&at, &step)) {
		int64_t ms = step / 1000000;
		kprintf("last set %llu s ago, moved by %s%lld.%03lld s\n",
			(unsigned long long)((time_ns() - at) / NS_PER_S), step < 0 ? "-" : "+",
			(long long)((ms < 0 ? -ms : ms) / 1000), (long long)((ms < 0 ? -ms : ms) % 1000));
	}
	return 0;
}
SHELL_COMMAND(date, "date", "the wall clock (UTC) and where it came from", cmd_date);

/* ---- log ---- */

/* Start of the last `lines` lines in buf[0..n); a final unterminated line
 * counts as one. */
static size_t cmd_log_tail(const char *buf, size_t n, unsigned long long lines)
{
	size_t i = n;
	if (i > 0 && buf[i - 1] == '\n')
		i--;
	while (i > 0) {
		if (buf[i - 1] == '\n' && --lines == 0)
			return i;
		i--;
	}
	return 0;
}

/* The dump goes straight to the consoles: through kprintf it would copy the
 * log into itself. */
static void cmd_log_write(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\n')
			continue;
		console_write(s + start, i - start);
		console_write("\r\n", 2);
		start = i + 1;
	}
	if (start < n) {
		console_write(s + start, n - start);
		console_write("\r\n", 2);
	}
}

static int cmd_log(int argc, char **argv)
{
	unsigned long long lines = 0;

	if (argc > 2)
		return -EINVAL;
	if (argc == 2 && shell_arg_num("log", "N", argv[1], 1, 1ULL << 20, &lines))
		return SHELL_REPORTED;

	char *buf = kmalloc(LOG_RING_SIZE);
	if (!buf)
		return -ENOMEM;
	size_t n = log_read(buf, LOG_RING_SIZE);
	size_t start = 0;
	/* A full ring has most likely wrapped mid-line: drop the fragment. */
	if (n == LOG_RING_SIZE) {
		while (start < n && buf[start] != '\n')
			start++;
		if (start < n)
			start++;
	}
	if (lines)
		start = MAX(start, cmd_log_tail(buf, n, lines));
	cmd_log_write(buf + start, n - start);
	kfree(buf);
	return 0;
}
SHELL_COMMAND(log, "log [N]", "print the kernel log, or its last N lines", cmd_log);

/* ---- power ---- */

/* The argument checks of the commands that do not return (reboot,
 * poweroff, fault) are functions of their own, so the self-tests check
 * them without resetting, powering off or crashing the machine. */
int cmd_reboot_parse(int argc, char **argv)
{
	(void)argv;
	return argc == 1 ? 0 : -EINVAL;
}

int cmd_poweroff_parse(int argc, char **argv, int *status)
{
	unsigned long long v = 0;

	if (argc > 2)
		return -EINVAL;
	if (argc == 2 && shell_arg_num("poweroff", "STATUS", argv[1], 0, 255, &v))
		return SHELL_REPORTED;
	*status = (int)v;
	return 0;
}

static int cmd_reboot(int argc, char **argv)
{
	if (cmd_reboot_parse(argc, argv))
		return -EINVAL;
	kprintf("rebooting\n");
	power_reset_clean("reboot");
}
SHELL_COMMAND(reboot, "reboot", "reset the machine", cmd_reboot);

static int cmd_poweroff(int argc, char **argv)
{
	int status;

	int rc = cmd_poweroff_parse(argc, argv, &status);
	if (rc)
		return rc;
	kprintf("powering off (status %d)\n", status);
	power_off_clean(status, "poweroff");
}
SHELL_COMMAND(poweroff, "poweroff [STATUS]", "power off; STATUS 0-255: qemu exit code",
	      cmd_poweroff);

/* ---- tests and debugging ---- */

static int cmd_selftest(int argc, char **argv)
{
	if (argc > 2)
		return -EINVAL;
	/* selftest_run() reports everything itself, including a bad suite. */
	return selftest_run(argc == 2 ? argv[1] : NULL) != 0 ? 1 : 0;
}
SHELL_COMMAND(selftest, "selftest [SUITE|SUITE.NAME]", "run in-kernel self-tests (Ctrl-C stops)", cmd_selftest);

int cmd_fault_parse(int argc, char **argv, const char **kind)
{
	static const char *const kinds[] = { "pf", "ud", "gp", "de" };

	if (argc != 2)
		return -EINVAL;
	for (unsigned i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (strcmp(argv[1], kinds[i]) == 0) {
			*kind = kinds[i];
			return 0;
		}
	}
	return -EINVAL;
}

static int cmd_fault(int argc, char **argv)
{
	const char *kind;

	if (cmd_fault_parse(argc, argv, &kind))
		return -EINVAL;
	kprintf("fault: triggering '%s' on purpose\n", kind);
	trap_trigger_fault(kind);
	kprintf("fault: '%s' did not fault\n", kind);
	return -EIO;
}
SHELL_COMMAND(fault, "fault pf|ud|gp|de", "crash on purpose to show the exception report",
	      cmd_fault);

static int cmd_echo(int argc, char **argv)
{
	struct cmd_line l = { .len = 0 };
	for (int i = 1; i < argc; i++)
		cmd_line_add(&l, i > 1 ? " %s" : "%s", argv[i]);
	kprintf("%s\n", l.buf);
	return 0;
}
SHELL_COMMAND(echo, "echo [ARGS...]", "print the arguments", cmd_echo);

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -EINVAL;
	kprintf("appliance kernel %s, built %s\n", KERNEL_VERSION, kernel_build_time);
	return 0;
}
SHELL_COMMAND(version, "version", "kernel version and build time", cmd_version);

/* ---- boot arguments ---- */

static int cmd_args(int argc, char **argv)
{
	static const char *const kinds[] = { "", "=N", "=", "=" };
	const struct kernel_arg *a;

	(void)argv;
	if (argc != 1)
		return -EINVAL;
	kprintf("boot arguments (config.txt 'args' line): %s\n",
		boot_info->config.cmdline[0] ? boot_info->config.cmdline : "(none)");
	for (unsigned i = 0; (a = kernel_arg_at(i)) != NULL; i++) {
		char shape[48];
		if (a->kind == KARG_UINT)
			ksnprintf(shape, sizeof(shape), "%s=%llu..%llu", a->name, a->min, a->max);
		else
			ksnprintf(shape, sizeof(shape), "%s%s%s", a->name, kinds[a->kind],
				  a->values ? a->values : "");
		const char *v = arg_get(a->name);
		if (!v)
			kprintf("  %-28s %s\n", shape, a->help);
		else
			kprintf("  %-28s %s [given%s%s]\n", shape, a->help, v[0] ? ": " : "", v);
	}
	return 0;
}
SHELL_COMMAND(args, "args", "boot arguments given, and every known one", cmd_args);
