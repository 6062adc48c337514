/* The block layer's numbers for the status page and Prometheus (metrics.h). */
#include "drivers/blk/blk.h"
#include "kernel/metrics.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Upper edge (us) of the log2 bucket holding the q-th fraction (per mille)
 * of all completions: an upper bound within a factor of two. */
static int64_t blk_lat_quantile_us(const struct blk_stats *st, unsigned permille)
{
	uint64_t total = 0, seen = 0;
	for (unsigned i = 0; i < BLK_LAT_BUCKETS; i++)
		total += LOAD(st->lat_us_log2[i]);
	if (!total)
		return 0;
	uint64_t want = (total * permille + 999) / 1000;
	for (unsigned i = 0; i < BLK_LAT_BUCKETS; i++) {
		seen += LOAD(st->lat_us_log2[i]);
		if (seen >= want)
			return (int64_t)1 << i;
	}
	return (int64_t)1 << (BLK_LAT_BUCKETS - 1);
}

static void blk_metrics(struct metric_sink *s)
{
	for (unsigned i = 0; i < blk_count(); i++) {
		struct blk_dev *d = blk_get(i);
		const struct blk_stats *st = &d->stats;
		const char *n = d->name;
		metric(s, "appliance_disk_size_bytes", METRIC_GAUGE, "Disk capacity", "disk", n,
		       (int64_t)(d->nblocks * d->lba_size), 0);
		metric(s, "appliance_disk_reads_total", METRIC_COUNTER, "Read requests completed", "disk", n,
		       (int64_t)LOAD(st->ops[BLK_OP_READ]), 0);
		metric(s, "appliance_disk_writes_total", METRIC_COUNTER, "Write requests completed", "disk", n,
		       (int64_t)LOAD(st->ops[BLK_OP_WRITE]), 0);
		metric(s, "appliance_disk_flushes_total", METRIC_COUNTER, "Cache flushes completed", "disk", n,
		       (int64_t)LOAD(st->ops[BLK_OP_FLUSH]), 0);
		metric(s, "appliance_disk_discards_total", METRIC_COUNTER, "Discard (TRIM) requests completed",
		       "disk", n, (int64_t)LOAD(st->ops[BLK_OP_DISCARD]), 0);
		metric(s, "appliance_disk_read_bytes_total", METRIC_COUNTER, "Bytes read", "disk", n,
		       (int64_t)LOAD(st->bytes_read), 0);
		metric(s, "appliance_disk_written_bytes_total", METRIC_COUNTER, "Bytes written", "disk", n,
		       (int64_t)LOAD(st->bytes_written), 0);
		metric(s, "appliance_disk_errors_total", METRIC_COUNTER, "Requests that failed", "disk", n,
		       (int64_t)LOAD(st->errors), 0);
		metric(s, "appliance_disk_latency_p50_seconds", METRIC_GAUGE,
		       "Median request latency since boot (upper edge of its power-of-two bucket)", "disk", n,
		       blk_lat_quantile_us(st, 500), 6);
		metric(s, "appliance_disk_latency_p99_seconds", METRIC_GAUGE,
		       "99th percentile request latency since boot (upper edge of its power-of-two bucket)",
		       "disk", n, blk_lat_quantile_us(st, 990), 6);
	}
}
METRICS_PROVIDER(blk, blk_metrics);
