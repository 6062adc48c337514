/*
 * The file protocol server's numbers: METRICS_PROVIDER counters for the
 * status page and Prometheus, and the `proto` shell command (configuration,
 * counters, one line per connection).
 */
#include "net/apfp.h"
#include "proto/wire.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/metrics.h"
#include "kernel/shell.h"
#include "kernel/time.h"

static void apfp_metrics(struct metric_sink *s)
{
	struct apfp_stats st;
	const char *c = "appliance_proto_connections_total", *ch = "File protocol connections by outcome";

	if (!apfp_running(NULL))
		return;
	apfp_get_stats(&st);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "accepted", (int64_t)st.accepted, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "refused_limit", (int64_t)st.refused_limit, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "refused_nomem", (int64_t)st.refused_nomem, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "handshake_timeout", (int64_t)st.handshake_timeouts, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "idle_drop", (int64_t)st.idle_drops, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "auth_failed", (int64_t)st.auth_failures, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "protocol_error", (int64_t)st.protocol_closes, 0);
	metric(s, c, METRIC_COUNTER, ch, "outcome", "peer_closed", (int64_t)st.peer_closes, 0);
	metric(s, "appliance_proto_sessions_total", METRIC_COUNTER, "File protocol sessions established",
	       "kind", "keyed", (int64_t)st.sessions_keyed, 0);
	metric(s, "appliance_proto_sessions_total", METRIC_COUNTER, "File protocol sessions established",
	       "kind", "anonymous", (int64_t)st.sessions_anon, 0);
	metric(s, "appliance_proto_connections_open", METRIC_GAUGE, "File protocol connections open", 0, 0,
	       (int64_t)apfp_open_count(), 0);
	metric(s, "appliance_proto_requests_total", METRIC_COUNTER, "File protocol requests answered", 0, 0,
	       (int64_t)st.requests, 0);
	metric(s, "appliance_proto_request_errors_total", METRIC_COUNTER,
	       "File protocol requests answered with an error status", 0, 0, (int64_t)st.request_errors, 0);
	metric(s, "appliance_proto_frames_total", METRIC_COUNTER, "File protocol frames", "dir", "in",
	       (int64_t)st.frames_in, 0);
	metric(s, "appliance_proto_frames_total", METRIC_COUNTER, "File protocol frames", "dir", "out",
	       (int64_t)st.frames_out, 0);
	metric(s, "appliance_proto_bytes_total", METRIC_COUNTER, "File protocol bytes", "dir", "in",
	       (int64_t)st.bytes_in, 0);
	metric(s, "appliance_proto_bytes_total", METRIC_COUNTER, "File protocol bytes", "dir", "out",
	       (int64_t)st.bytes_out, 0);
	metric(s, "appliance_proto_buffer_bytes", METRIC_GAUGE, "File protocol frames and replies held", 0, 0,
	       (int64_t)st.mem, 0);
	metric(s, "appliance_proto_read_stalls_total", METRIC_COUNTER,
	       "Times a connection waited for buffer memory before reading", 0, 0, (int64_t)st.read_stalls, 0);
}
METRICS_PROVIDER(apfp, apfp_metrics);

static int cmd_proto(int argc, char **argv)
{
	static struct apfp_conn_info ci[APFP_CONN_CAP];
	struct apfp_stats st;
	const char *why;

	(void)argv;
	if (argc > 1) {
		kprintf("proto: takes no arguments\n");
		return 1;
	}
	if (!apfp_running(&why)) {
		kprintf("proto: the file server is off: %s\n", why);
		return 0;
	}
	apfp_get_stats(&st);
	kprintf("file server tcp/%u: %s, %s; up to %u connections, idle drop %u s, handshake %u s\n", APFP_PORT,
		apfp_keyed() ? "token required" : "no token: anonymous read-only only",
		apfp_anon() ? "anonymous read-only allowed" : "no anonymous access", apfp_max_conn(), apfp_idle_s(),
		PROTO_HANDSHAKE_TIMEOUT_S);
	kprintf("connections: %llu accepted, %llu refused (limit), %llu refused (memory), %llu handshake timeouts, "
		"%llu idle drops, %llu auth failures, %llu protocol errors, %llu closed by peer\n",
		(unsigned long long)st.accepted, (unsigned long long)st.refused_limit,
		(unsigned long long)st.refused_nomem, (unsigned long long)st.handshake_timeouts,
		(unsigned long long)st.idle_drops, (unsigned long long)st.auth_failures,
		(unsigned long long)st.protocol_closes, (unsigned long long)st.peer_closes);
	kprintf("sessions: %llu keyed, %llu anonymous; requests %llu (%llu errors); frames in %llu out %llu; "
		"bytes in %llu out %llu\n", (unsigned long long)st.sessions_keyed, (unsigned long long)st.sessions_anon,
		(unsigned long long)st.requests, (unsigned long long)st.request_errors,
		(unsigned long long)st.frames_in, (unsigned long long)st.frames_out,
		(unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
	kprintf("workers: %llu runs handed to another CPU than the network thread's\n",
		(unsigned long long)st.remote_runs);
	kprintf("frame tags: %llu computed while the frame was copied in, %llu by the worker\n",
		(unsigned long long)st.tags_on_copy, (unsigned long long)st.tags_late);
	kprintf("buffers: %llu bytes now, %llu high, %llu read stalls (limits %u KiB a connection, %u KiB in all)\n",
		(unsigned long long)st.mem, (unsigned long long)st.mem_high, (unsigned long long)st.read_stalls,
		APFP_CONN_MEM >> 10, APFP_TOTAL_MEM >> 10);
	unsigned n = apfp_list(ci, APFP_CONN_CAP);
	kprintf("open: %u\n", n);
	for (unsigned i = 0; i < n; i++) {
		uint32_t a = ci[i].peer_ip;
		kprintf("  %u.%u.%u.%u:%u %s%s age %llu s idle %llu s frames in %llu out %llu buffers %u\n", a & 0xff,
			(a >> 8) & 0xff, (a >> 16) & 0xff, a >> 24, ci[i].peer_port, ci[i].state,
			ci[i].anonymous ? " anonymous" : "", (unsigned long long)(ci[i].age_ns / NS_PER_S),
			(unsigned long long)(ci[i].idle_ns / NS_PER_S), (unsigned long long)ci[i].frames_in,
			(unsigned long long)ci[i].frames_out, ci[i].mem);
	}
	return 0;
}
SHELL_COMMAND(proto, "proto", "file protocol server: configuration, counters, connections", cmd_proto);
