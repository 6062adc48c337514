/*
 * The file protocol server's numbers: METRICS_PROVIDER counters for the
 * status page and Prometheus, and the `proto` shell command (configuration,
 * counters, one line per connection; `proto stat`: the wait counters of
 * each stage as key=value lines, for people and scripts alike).
 */
#include "net/net.h"
#include "net/apfp.h"
#include "proto/wire.h"
#include "proto/codec.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
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
	/* Microseconds shown with 6 decimals: seconds. */
	const char *w = "appliance_proto_wait_seconds_total", *wh = "File protocol time spent in each stage";
	metric(s, w, METRIC_COUNTER, wh, "stage", "wake", (int64_t)(st.w.wake_ns / NS_PER_US), 6);
	metric(s, w, METRIC_COUNTER, wh, "stage", "handoff", (int64_t)(st.w.handoff_ns / NS_PER_US), 6);
	metric(s, w, METRIC_COUNTER, wh, "stage", "busy", (int64_t)(st.w.busy_ns / NS_PER_US), 6);
	metric(s, w, METRIC_COUNTER, wh, "stage", "stall", (int64_t)(st.w.stall_ns / NS_PER_US), 6);
	metric(s, w, METRIC_COUNTER, wh, "stage", "reply", (int64_t)(st.w.reply_wait_ns / NS_PER_US), 6);
	metric(s, w, METRIC_COUNTER, wh, "stage", "recv_gap_long", (int64_t)(st.w.recv_gap_long_ns / NS_PER_US), 6);
}
METRICS_PROVIDER(apfp, apfp_metrics);

static unsigned long long us(uint64_t ns)
{
	return (unsigned long long)(ns / NS_PER_US);
}

/* One scope's wait counters on one line (times in microseconds). */
static void print_waits(const char *scope, const struct apfp_waits *w)
{
	kprintf("%s wakes=%llu wake_us=%llu wake_max_us=%llu handoffs=%llu handoff_us=%llu handoff_max_us=%llu "
		"busy_us=%llu stalls=%llu stall_us=%llu feed_us=%llu", scope, (unsigned long long)w->wakes,
		us(w->wake_ns), us(w->wake_max_ns), (unsigned long long)w->handoffs, us(w->handoff_ns),
		us(w->handoff_max_ns), us(w->busy_ns), (unsigned long long)w->stalls, us(w->stall_ns),
		us(w->feed_ns));
	kprintf(" replies=%llu reply_wait_us=%llu reply_wait_max_us=%llu bytes_sent=%llu bytes_acked=%llu",
		(unsigned long long)w->replies, us(w->reply_wait_ns), us(w->reply_wait_max_ns),
		(unsigned long long)w->bytes_sent, (unsigned long long)w->bytes_acked);
	kprintf(" recv_cbs=%llu recv_bytes=%llu gap_long_us=%llu recved_calls=%llu recved_bytes=%llu "
		"wnd_updates=%llu gaps=", (unsigned long long)w->recv_cbs, (unsigned long long)w->recv_bytes,
		us(w->recv_gap_long_ns), (unsigned long long)w->recved_calls, (unsigned long long)w->recved_bytes,
		(unsigned long long)w->wnd_updates);
	for (unsigned i = 0; i < APFP_GAP_BUCKETS; i++)
		kprintf("%s%llu", i ? "," : "", (unsigned long long)w->recv_gap[i]);
	kprintf("\n");
}

/* `proto stat`: where a frame's time goes (net/apfp.h struct apfp_waits):
 * the total, busy time by opcode, then each open connection. */
static int cmd_proto_stat(const struct apfp_stats *st, struct apfp_conn_info *ci)
{
	static const uint64_t bounds[] = APFP_GAP_BOUNDS_US;
	char scope[40];

	kprintf("gap_buckets_us=");
	for (unsigned i = 0; i < APFP_GAP_BUCKETS - 1; i++)
		kprintf("<%llu,", (unsigned long long)bounds[i]);
	kprintf(">=%llu\n", (unsigned long long)bounds[APFP_GAP_BUCKETS - 2]);
	print_waits("total", &st->w);
	struct net_lock_stats ls;
	net_lock_stats(&ls);
	kprintf("net_lock acquires=%llu net_waits=%llu net_wait_us=%llu net_wait_max_us=%llu other_waits=%llu "
		"other_wait_us=%llu other_wait_max_us=%llu\n", (unsigned long long)ls.acquires,
		(unsigned long long)ls.contended[0], us(ls.wait_ns[0]), us(ls.wait_max_ns[0]),
		(unsigned long long)ls.contended[1], us(ls.wait_ns[1]), us(ls.wait_max_ns[1]));
	for (unsigned op = 0; op < APFP_OPS; op++)
		if (st->op_runs[op])
			kprintf("op %s runs=%llu busy_us=%llu\n", proto_op_name(op),
				(unsigned long long)st->op_runs[op], us(st->op_busy_ns[op]));
	unsigned n = apfp_list(ci, APFP_CONN_CAP);
	for (unsigned i = 0; i < n; i++) {
		uint32_t a = ci[i].peer_ip;
		ksnprintf(scope, sizeof(scope), "conn %u.%u.%u.%u:%u", a & 0xff, (a >> 8) & 0xff, (a >> 16) & 0xff,
			  a >> 24, ci[i].peer_port);
		print_waits(scope, &ci[i].w);
	}
	return 0;
}

static int cmd_proto(int argc, char **argv)
{
	static struct apfp_conn_info ci[APFP_CONN_CAP];
	static struct apfp_stats st;
	const char *why;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "stat"))) {
		kprintf("proto: takes no arguments or 'stat'\n");
		return 1;
	}
	if (!apfp_running(&why)) {
		kprintf("proto: the file server is off: %s\n", why);
		return 0;
	}
	apfp_get_stats(&st);
	if (argc == 2)
		return cmd_proto_stat(&st, ci);
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
SHELL_COMMAND(proto, "proto [stat]", "file protocol server: configuration, counters, connections; stat: wait counters by stage",
	      cmd_proto);
