/*
 * Counters and gauges for the status page and Prometheus (kernel/metrics.c).
 *
 * Every layer that has numbers to show registers a provider beside its code,
 *
 *     METRICS_PROVIDER(blk, blk_metrics);
 *
 * and the provider reports each value through the sink it is handed:
 *
 *     metric(s, "appliance_disk_read_bytes_total", METRIC_COUNTER,
 *            "Bytes read from the disk", "disk", dev->name, n, 0);
 *
 * so kernel/ (which walks the section) knows nothing of the layers, and the
 * HTTP server (net/) formats the same values as Prometheus text and JSON.
 * Providers run in thread context, may take their own locks, must not take
 * the network lock, and must not sleep for long.  Names follow Prometheus'
 * rules ([a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total, units in the
 * name); a value may carry one label (key, value), or none (key NULL).
 * The kernel has no floating point: a value is an integer with `decimals`
 * digits after the point (time_ns() with 9 is seconds).
 */
#ifndef KERNEL_METRICS_H
#define KERNEL_METRICS_H

#include <stdint.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct metric_sink {
	void (*emit)(struct metric_sink *s, const char *name, enum metric_type type, const char *help,
		     const char *label_key, const char *label_value, int64_t value, unsigned decimals);
	void *arg;
};

struct metrics_provider {
	const char *name;
	void (*fn)(struct metric_sink *s);
};

#define METRICS_PROVIDER(pname, pfn)                                             \
	static const struct metrics_provider metrics_provider_desc_##pname       \
		__attribute__((used, section(".metrics"), aligned(8))) =         \
		{ #pname, (pfn) }

static inline void metric(struct metric_sink *s, const char *name, enum metric_type type, const char *help,
			  const char *label_key, const char *label_value, int64_t value, unsigned decimals)
{
	s->emit(s, name, type, help, label_key, label_value, value, decimals);
}

/* Every provider, in link order. */
void metrics_collect(struct metric_sink *s);

#endif
