/* Walk the METRICS_PROVIDER section (metrics.h); the kernel's own numbers. */
#include "kernel/metrics.h"
#include "kernel/mm.h"
#include "kernel/time.h"
#include "kernel/realtime.h"
#include "kernel/smp.h"

extern const struct metrics_provider __metrics_start[], __metrics_end[];

void metrics_collect(struct metric_sink *s)
{
	for (const struct metrics_provider *p = __metrics_start; p < __metrics_end; p++)
		p->fn(s);
}

static void kernel_metrics(struct metric_sink *s)
{
	metric(s, "appliance_uptime_seconds", METRIC_GAUGE, "Seconds since kernel entry", 0, 0,
	       (int64_t)time_ns(), 9);
	metric(s, "appliance_time_seconds", METRIC_GAUGE, "Wall clock, seconds since 1970 (UTC)", 0, 0,
	       realtime_ns() / 1000000, 3);
	metric(s, "appliance_memory_total_bytes", METRIC_GAUGE, "Physical memory", 0, 0,
	       (int64_t)pmm_total_bytes(), 0);
	metric(s, "appliance_memory_free_bytes", METRIC_GAUGE, "Free physical memory", 0, 0,
	       (int64_t)pmm_free_bytes(), 0);
	metric(s, "appliance_heap_used_bytes", METRIC_GAUGE, "Kernel heap in use", 0, 0,
	       (int64_t)heap_used_bytes(), 0);
	metric(s, "appliance_cpus_online", METRIC_GAUGE, "CPUs running", 0, 0, ncpus_online, 0);
}
METRICS_PROVIDER(kernel, kernel_metrics);
