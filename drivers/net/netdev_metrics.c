/* The NICs' numbers for the status page and Prometheus (metrics.h). */
#include "drivers/net/netdev.h"
#include "kernel/metrics.h"

#define LOAD(x) ((int64_t)__atomic_load_n(&(x), __ATOMIC_RELAXED))

static void netdev_metrics(struct metric_sink *s)
{
	for (unsigned i = 0; i < netdev_count(); i++) {
		struct netdev *d = netdev_at(i);
		const char *n = d->name;
		metric(s, "appliance_nic_up", METRIC_GAUGE, "Link up (1) or down (0)", "nic", n, d->link_up, 0);
		metric(s, "appliance_nic_receive_packets_total", METRIC_COUNTER, "Frames received", "nic", n,
		       LOAD(d->rx.packets), 0);
		metric(s, "appliance_nic_receive_bytes_total", METRIC_COUNTER, "Bytes received", "nic", n,
		       LOAD(d->rx.bytes), 0);
		metric(s, "appliance_nic_receive_drops_total", METRIC_COUNTER,
		       "Frames dropped on receive (no buffer, bad length)", "nic", n, LOAD(d->rx.drops), 0);
		metric(s, "appliance_nic_transmit_packets_total", METRIC_COUNTER, "Frames sent", "nic", n,
		       LOAD(d->tx.packets), 0);
		metric(s, "appliance_nic_transmit_bytes_total", METRIC_COUNTER, "Bytes sent", "nic", n,
		       LOAD(d->tx.bytes), 0);
		metric(s, "appliance_nic_transmit_drops_total", METRIC_COUNTER, "Frames dropped on send (ring full)",
		       "nic", n, LOAD(d->tx.drops), 0);
		metric(s, "appliance_nic_errors_total", METRIC_COUNTER, "Errors the device reported", "nic", n,
		       LOAD(d->rx.errors) + LOAD(d->tx.errors), 0);
		metric(s, "appliance_nic_resets_total", METRIC_COUNTER, "Resets by the stall watchdog", "nic", n,
		       LOAD(d->resets), 0);
	}
}
METRICS_PROVIDER(netdev, netdev_metrics);
